//! Tables that people bring: CSV as Excel and WPS save it on Chinese Windows (UTF-8 with or
//! without a byte-order mark, GBK, GB18030, UTF-16 "Unicode text") and Excel workbooks (.xlsx,
//! the first sheet). Read into rows of trimmed text with the row numbers a person sees in the
//! spreadsheet, within limits on the file's size, the workbook's decoded size and the row count.

use std::io::Read as _;

/// The largest file accepted.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// The most a workbook may declare it decodes to (its parts inflated).
pub const MAX_XLSX_DECODED_BYTES: u64 = 200 * 1024 * 1024;
/// The most data rows (the header not counted).
pub const MAX_ROWS: usize = 100_000;
/// The most columns a row may have.
pub const MAX_COLUMNS: usize = 64;

/// A table read from a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// The header row's cells.
    pub header: Vec<String>,
    /// Data rows: the row number in the spreadsheet (the header is row 1 in a CSV file) and the
    /// cells. Rows with no text in any cell are left out.
    pub rows: Vec<(u64, Vec<String>)>,
    /// Which encoding the file was read as (`UTF-8`, `GBK/GB18030`, `UTF-16`, `xlsx`).
    pub encoding: &'static str,
}

/// Why a file could not be read as a table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("文件超过 {max} 字节 / the file is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("文件为空或没有表头 / the file is empty or has no header row")]
    Empty,
    #[error(
        "无法识别文件编码：既不是 UTF-8，也不是 GBK/GB18030（请另存为 CSV UTF-8 或 Excel 工作簿） / the file is neither UTF-8 nor GBK/GB18030 (save it as CSV UTF-8 or as an Excel workbook)"
    )]
    Encoding,
    #[error("第 {row} 行 CSV 格式错误：{detail} / row {row}: malformed CSV: {detail}")]
    Malformed { row: u64, detail: String },
    #[error("超过 {max} 行，请分批导入 / more than {max} rows: import the file in parts")]
    TooManyRows { max: usize },
    #[error("第 {row} 行超过 {max} 列 / row {row} has more than {max} columns")]
    TooManyColumns { row: u64, max: usize },
    #[error("无法读取 Excel 工作簿：{0} / cannot read the Excel workbook: {0}")]
    Xlsx(String),
    #[error(
        "Excel 工作簿解压后超过 {max} 字节，拒绝读取 / the workbook inflates to more than {max} bytes; refused"
    )]
    XlsxTooBig { max: u64 },
    #[error(
        "这是旧版 Excel（.xls）文件，请另存为 .xlsx 或 CSV / this is an old Excel (.xls) file: save it as .xlsx or CSV"
    )]
    LegacyXls,
}

/// Reads `bytes` as a table: an Excel workbook when it is one (by its magic bytes), CSV
/// otherwise.
pub fn read_table(bytes: &[u8]) -> Result<Table, TableError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TableError::TooLarge {
            max: MAX_FILE_BYTES,
        });
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return read_xlsx(bytes);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(TableError::LegacyXls);
    }
    let (text, encoding) = decode_text(bytes)?;
    read_csv(&text, encoding)
}

/// The text of a CSV file and the encoding it was read as.
pub fn decode_text(bytes: &[u8]) -> Result<(String, &'static str), TableError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .map(|s| (s.to_owned(), "UTF-8"))
            .map_err(|_| TableError::Encoding);
    }
    for (bom, enc) in [
        (&b"\xFF\xFE"[..], encoding_rs::UTF_16LE),
        (&b"\xFE\xFF"[..], encoding_rs::UTF_16BE),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return enc
                .decode_without_bom_handling_and_without_replacement(rest)
                .map(|s| (s.into_owned(), "UTF-16"))
                .ok_or(TableError::Encoding);
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((s.to_owned(), "UTF-8"));
    }
    // GB18030 is a superset of GBK (and of GB2312): one decoder reads all three.
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| (s.into_owned(), "GBK/GB18030"))
        .ok_or(TableError::Encoding)
}

fn read_csv(text: &str, encoding: &'static str) -> Result<Table, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut table = Table {
        encoding,
        ..Table::default()
    };
    for (index, record) in reader.records().enumerate() {
        let fallback = index as u64 + 1;
        let record = record.map_err(|e| TableError::Malformed {
            row: e.position().map_or(fallback, |p| p.line()),
            detail: e.to_string(),
        })?;
        let row = record.position().map_or(fallback, |p| p.line());
        if record.len() > MAX_COLUMNS {
            return Err(TableError::TooManyColumns {
                row,
                max: MAX_COLUMNS,
            });
        }
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
        push_row(&mut table, row, cells)?;
    }
    if table.header.is_empty() {
        return Err(TableError::Empty);
    }
    Ok(table)
}

fn push_row(table: &mut Table, row: u64, mut cells: Vec<String>) -> Result<(), TableError> {
    while cells.last().is_some_and(String::is_empty) {
        cells.pop();
    }
    if cells.is_empty() {
        return Ok(());
    }
    if table.header.is_empty() {
        table.header = cells;
        return Ok(());
    }
    if table.rows.len() == MAX_ROWS {
        return Err(TableError::TooManyRows { max: MAX_ROWS });
    }
    table.rows.push((row, cells));
    Ok(())
}

fn read_xlsx(bytes: &[u8]) -> Result<Table, TableError> {
    use calamine::{Data, Reader as _};
    // What the parts declare they inflate to, read from the central directory before any is
    // inflated: a workbook that is a zip bomb is refused here.
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| TableError::Xlsx(e.to_string()))?;
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let part = archive
            .by_index_raw(i)
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        declared = declared.saturating_add(part.size());
    }
    if declared > MAX_XLSX_DECODED_BYTES {
        return Err(TableError::XlsxTooBig {
            max: MAX_XLSX_DECODED_BYTES,
        });
    }
    // The declared sizes can lie: the shared strings and the sheet are inflated with a cap.
    let mut inflated: u64 = 0;
    for i in 0..archive.len() {
        let part = archive
            .by_index(i)
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        let room = MAX_XLSX_DECODED_BYTES - inflated;
        inflated += std::io::copy(&mut part.take(room + 1), &mut std::io::sink())
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        if inflated > MAX_XLSX_DECODED_BYTES {
            return Err(TableError::XlsxTooBig {
                max: MAX_XLSX_DECODED_BYTES,
            });
        }
    }
    let mut book: calamine::Xlsx<std::io::Cursor<&[u8]>> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
            .map_err(|e: calamine::XlsxError| TableError::Xlsx(e.to_string()))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or(TableError::Empty)?
        .map_err(|e| TableError::Xlsx(e.to_string()))?;
    let (first_row, _) = range.start().unwrap_or((0, 0));
    let (_, first_col) = range.start().unwrap_or((0, 0));
    let mut table = Table {
        encoding: "xlsx",
        ..Table::default()
    };
    for (i, cells) in range.rows().enumerate() {
        let row = u64::from(first_row) + i as u64 + 1;
        if cells.len() + first_col as usize > MAX_COLUMNS {
            return Err(TableError::TooManyColumns {
                row,
                max: MAX_COLUMNS,
            });
        }
        // Cells left of the used range are empty: keep column positions as the sheet shows them.
        let mut out: Vec<String> = vec![String::new(); first_col as usize];
        out.extend(cells.iter().map(|c| match c.clone() {
            Data::Empty | Data::Error(_) => String::new(),
            Data::String(s) => s.trim().to_owned(),
            Data::Int(n) => n.to_string(),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            Data::Float(f) => f.to_string(),
            Data::Bool(b) => if b { "是" } else { "否" }.to_owned(),
            Data::DateTime(d) => {
                let (y, m, day, ..) = d.to_ymd_hms_milli();
                format!("{y:04}-{m:02}-{day:02}")
            }
            Data::DateTimeIso(s) | Data::DurationIso(s) => s.chars().take(10).collect(),
        }));
        push_row(&mut table, row, out)?;
    }
    if table.header.is_empty() {
        return Err(TableError::Empty);
    }
    Ok(table)
}

/// The spreadsheet name of column `index` (0 → A, 26 → AA).
pub fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Finds the columns named in the header: for each wanted column its aliases (Chinese and
/// English, compared without spaces and case). `Err` lists the required columns not found.
pub fn locate(
    header: &[String],
    wanted: &[(&'static str, &[&str], bool)],
) -> Result<Vec<Option<usize>>, String> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '*')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let heads: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let mut missing = Vec::new();
    let found: Vec<Option<usize>> = wanted
        .iter()
        .map(|(name, aliases, required)| {
            let at = heads.iter().position(|h| {
                aliases.iter().any(|a| norm(a) == *h)
                    || h.split('/')
                        .any(|part| aliases.iter().any(|a| norm(a) == part))
            });
            if at.is_none() && *required {
                missing.push(*name);
            }
            at
        })
        .collect();
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing.join("、"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_and_gb18030_and_utf8_with_bom_read_the_same() {
        let text = "名称,地址\n甲厂,城关镇路 1 号\n";
        let (gbk, _, bad) = encoding_rs::GBK.encode(text);
        assert!(!bad);
        let utf8_bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let a = read_table(&gbk).expect("gbk");
        let b = read_table(&utf8_bom).expect("bom");
        let c = read_table(text.as_bytes()).expect("utf-8");
        assert_eq!(a.encoding, "GBK/GB18030");
        assert_eq!(a.rows, b.rows);
        assert_eq!(b.rows, c.rows);
        assert_eq!(a.header, vec!["名称", "地址"]);
        assert_eq!(
            a.rows,
            vec![(2, vec!["甲厂".to_owned(), "城关镇路 1 号".to_owned()])]
        );
    }

    #[test]
    fn bytes_in_no_encoding_are_refused_with_advice() {
        // 0x80 alone, then 0xFF: invalid in UTF-8 and in GB18030.
        assert_eq!(read_table(b"a,b\n\x80\xFF,c\n"), Err(TableError::Encoding));
    }

    #[test]
    fn limits_hold() {
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(matches!(read_table(&big), Err(TableError::TooLarge { .. })));
        let wide = format!("{}\n", vec!["x"; MAX_COLUMNS + 1].join(","));
        assert!(matches!(
            read_table(wide.as_bytes()),
            Err(TableError::TooManyColumns { row: 1, .. })
        ));
        assert_eq!(read_table(b"\n\n"), Err(TableError::Empty));
    }

    /// A workbook that inflates to more than the cap is refused before it is parsed, however
    /// small the file (here 200 MiB of zeros in about 200 kB).
    #[test]
    fn a_workbook_bomb_is_refused_before_parsing() {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file("xl/sharedStrings.xml", options)
            .expect("entry");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_XLSX_DECODED_BYTES >> 20) {
            zip.write_all(&zeros).expect("write");
        }
        let bytes = zip.finish().expect("zip").into_inner();
        assert!(
            bytes.len() < MAX_FILE_BYTES,
            "the bomb is a small file: {}",
            bytes.len()
        );
        assert_eq!(
            read_table(&bytes),
            Err(TableError::XlsxTooBig {
                max: MAX_XLSX_DECODED_BYTES
            })
        );
    }

    /// A part whose headers claim 1,000 bytes but whose data inflates to 201 MiB gets past the
    /// declared-size check and is refused while inflating: the zip reader stops at the declared
    /// size and reports the lie ("larger than its declared uncompressed size"), and the capped
    /// inflation stands behind it. Never inflated whole, never parsed.
    #[test]
    fn a_workbook_part_that_lies_about_its_size_is_refused() {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/sharedStrings.xml", options)
            .expect("entry");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_XLSX_DECODED_BYTES >> 20) {
            zip.write_all(&zeros).expect("write");
        }
        let mut bytes = zip.finish().expect("zip").into_inner();
        // The uncompressed size in the local header (offset 22) and in the central directory
        // entry (offset 24) both say 1,000 bytes.
        let lie = 1_000u32.to_le_bytes();
        let find = |bytes: &[u8], sig: [u8; 4]| {
            bytes
                .windows(4)
                .position(|w| w == sig)
                .expect("a zip header")
        };
        let local = find(&bytes, [0x50, 0x4b, 0x03, 0x04]);
        bytes[local + 22..local + 26].copy_from_slice(&lie);
        let central = find(&bytes, [0x50, 0x4b, 0x01, 0x02]);
        bytes[central + 24..central + 28].copy_from_slice(&lie);
        let refused = read_table(&bytes);
        assert!(
            matches!(
                refused,
                Err(TableError::XlsxTooBig { .. }) | Err(TableError::Xlsx(_))
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(701), "ZZ");
    }

    #[test]
    fn columns_are_found_by_chinese_or_english_heads() {
        let header: Vec<String> = ["统一社会信用代码", "Name", "地址 / Address"]
            .map(str::to_owned)
            .to_vec();
        let found = locate(
            &header,
            &[
                ("名称", &["名称", "企业名称", "name"], true),
                ("代码", &["统一社会信用代码", "uscc"], true),
                ("地址", &["地址", "address"], true),
                ("园区", &["园区", "park"], false),
            ],
        )
        .expect("found");
        assert_eq!(found, vec![Some(1), Some(0), Some(2), None]);
        let missing = locate(&header, &[("行业", &["行业", "industry"], true)]);
        assert_eq!(missing, Err("行业".to_owned()));
    }
}
