//! The rectification notice (整改通知书) as a PDF, with `krilla`: it embeds a *subset* of a CJK
//! TrueType/OpenType font (collections such as `wqy-microhei.ttc` included) with a ToUnicode map,
//! so the Chinese text is both drawn and extractable (`pdftotext`). No font ships with the
//! binary: one is found at runtime from [`FONT_ENV`] or the usual Debian/Ubuntu/Fedora paths.
//!
//! Layout is done here, line by line: A4 portrait, text wrapped by an estimate of each
//! character's advance (CJK one em, others about half), which is enough for a form.

use std::path::PathBuf;

use krilla::Document;
use krilla::geom::{PathBuilder, Point};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};

use super::notice::VisitRecord;

/// Environment variable naming the font file for PDF notices (`path` or `path#index` for a
/// collection).
pub const FONT_ENV: &str = "INSPECT_PDF_FONT";

/// Where CJK fonts are usually installed, in order of preference.
const DEFAULT_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/// A loaded font file and the face to use in it.
#[derive(Debug, Clone)]
pub struct FontFile {
    pub path: PathBuf,
    pub index: u32,
    pub data: Vec<u8>,
}

/// Finds and reads the notice font; on failure returns the paths tried.
pub fn find_font() -> Result<FontFile, Vec<String>> {
    let mut candidates: Vec<(PathBuf, u32)> = Vec::new();
    if let Ok(v) = std::env::var(FONT_ENV)
        && !v.trim().is_empty()
    {
        let (path, index) = match v.rsplit_once('#') {
            Some((p, i)) if i.parse::<u32>().is_ok() => (p.to_owned(), i.parse().unwrap_or(0)),
            _ => (v.clone(), 0),
        };
        candidates.push((PathBuf::from(path), index));
    }
    candidates.extend(DEFAULT_FONTS.iter().map(|p| (PathBuf::from(p), 0)));
    for (path, index) in &candidates {
        if let Ok(data) = std::fs::read(path)
            && Font::new(data.clone().into(), *index).is_some()
        {
            return Ok(FontFile {
                path: path.clone(),
                index: *index,
                data,
            });
        }
    }
    Err(candidates
        .into_iter()
        .map(|(p, _)| p.display().to_string())
        .collect())
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;

/// What is drawn on a page.
#[derive(Debug, Clone)]
enum Item {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Rule {
        y: f32,
    },
}

/// Estimated advance of a character in ems.
fn advance(c: char) -> f32 {
    if c.is_ascii() {
        if c.is_ascii_uppercase() || c == 'm' || c == 'w' {
            0.65
        } else {
            0.5
        }
    } else {
        1.0
    }
}

/// Breaks `text` into lines no wider than `width` at font `size`.
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut w = 0.0;
        for c in para.chars() {
            let a = advance(c) * size;
            if w + a > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                w = 0.0;
            }
            line.push(c);
            w += a;
        }
        lines.push(line);
    }
    lines
}

/// Lays out pages top to bottom.
#[derive(Debug, Default)]
struct Layout {
    pages: Vec<Vec<Item>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn room(&mut self, height: f32) {
        if self.y + height > PAGE_H - MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn push(&mut self, item: Item) {
        if let Some(page) = self.pages.last_mut() {
            page.push(item);
        }
    }

    /// A paragraph at `indent`, wrapped.
    fn text(&mut self, indent: f32, size: f32, text: &str) {
        let lead = size * 1.5;
        for line in wrap(text, size, PAGE_W - 2.0 * MARGIN - indent) {
            self.room(lead);
            self.y += lead;
            let y = self.y - size * 0.35;
            self.push(Item::Text {
                x: MARGIN + indent,
                y,
                size,
                text: line,
            });
        }
    }

    /// A labelled field: `label：value`, the value wrapped under itself.
    fn field(&mut self, label: &str, value: &str) {
        let value = if value.trim().is_empty() {
            "—"
        } else {
            value
        };
        self.text(0.0, 10.5, &format!("{label}：{value}"));
    }

    fn centred(&mut self, size: f32, text: &str) {
        let w: f32 = text.chars().map(advance).sum::<f32>() * size;
        self.room(size * 2.0);
        self.y += size * 2.0;
        let y = self.y - size * 0.5;
        self.push(Item::Text {
            x: ((PAGE_W - w) / 2.0).max(MARGIN),
            y,
            size,
            text: text.to_owned(),
        });
    }

    fn rule(&mut self) {
        self.room(10.0);
        self.y += 6.0;
        let y = self.y;
        self.push(Item::Rule { y });
        self.y += 4.0;
    }

    fn gap(&mut self, h: f32) {
        self.y += h;
    }
}

fn china_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(crate::clock::china_standard_time())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn grade_zh(grade: &str) -> &'static str {
    match grade {
        "major" => "重大事故隐患",
        "general" => "一般隐患",
        _ => "—",
    }
}

/// Lays the notice out.
fn layout(r: &VisitRecord) -> Layout {
    let mut l = Layout::new();
    let enterprise = r.enterprise.as_ref().map(|e| e.name.as_str()).unwrap_or("");
    l.centred(18.0, "隐患整改通知书");
    l.centred(10.0, "Rectification notice");
    l.gap(6.0);
    l.field("被检查单位", enterprise);
    if let Some(e) = &r.enterprise {
        l.field("统一社会信用代码", &e.uscc);
        l.field("地址", &e.address);
    }
    l.field("所属乡镇（街道）", &r.township_name);
    l.field("服务机构", &r.agency_name);
    l.field("检查地点", &r.visit.place);
    l.field("检查时间", &china_time(r.visit.started_at));
    l.field("文书编号", &r.visit.id);
    l.rule();
    l.text(
        0.0,
        10.5,
        &format!(
            "{enterprise}：经检查，你单位存在下列安全生产问题和事故隐患，请按要求落实整改措施，于期限内完成整改，并将整改情况书面报告。共 {} 项。",
            r.hazards.len()
        ),
    );
    for (i, h) in r.hazards.iter().enumerate() {
        let row = &h.row;
        l.gap(6.0);
        l.room(60.0);
        l.text(
            0.0,
            12.0,
            &format!("{}、{}（{}）", i + 1, row.description, grade_zh(&row.grade)),
        );
        l.field("　部位", &row.location);
        l.field("　隐患描述", &row.description);
        l.field("　判定依据", &row.criterion);
        l.field("　隐患等级", grade_zh(&row.grade));
        l.field("　整改措施", &row.measure);
        l.field("　整改期限", row.deadline.as_deref().unwrap_or("—"));
        l.field("　整改责任人", &row.responsible_person);
        if row.grade == "major" {
            l.field(
                "　整改资金",
                &h.funds_yuan
                    .map(|f| format!("{f} 元"))
                    .unwrap_or_else(|| "—".into()),
            );
            l.field("　应急预案", &h.emergency_plan);
        }
        let photos: Vec<String> = h
            .photos
            .iter()
            .map(|p| p.sha256.chars().take(12).collect())
            .collect();
        l.field(
            "　现场照片",
            &if photos.is_empty() {
                "无".to_owned()
            } else {
                format!("{} 张（{}）", photos.len(), photos.join("，"))
            },
        );
    }
    l.rule();
    match &r.signature {
        Some(s) => {
            l.field("企业负责人签收", &s.signer_name);
            l.field("签收时间", &china_time(s.signed_at));
            l.field("签名图像", &s.image.sha256);
        }
        None => l.field("企业负责人签收", "（未签收）"),
    }
    l.gap(10.0);
    l.text(
        0.0,
        9.0,
        "重大事故隐患须落实整改责任、措施、资金、时限和应急预案（五落实），并报告属地政府有关部门。",
    );
    l
}

/// Renders the notice.
pub fn notice(record: &VisitRecord, font: FontFile) -> anyhow::Result<Vec<u8>> {
    let font = Font::new(font.data.into(), font.index)
        .ok_or_else(|| anyhow::anyhow!("the notice font cannot be read"))?;
    let layout = layout(record);
    let mut document = Document::new();
    let settings =
        PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| anyhow::anyhow!("page size"))?;
    let pages = layout.pages.len();
    for (n, items) in layout.pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for item in items {
            match item {
                Item::Text { x, y, size, text } => surface.draw_text(
                    Point::from_xy(x, y),
                    font.clone(),
                    size,
                    &text,
                    false,
                    TextDirection::Auto,
                ),
                Item::Rule { y } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(MARGIN, y);
                    pb.line_to(PAGE_W - MARGIN, y);
                    if let Some(path) = pb.finish() {
                        surface.set_stroke(Some(Stroke {
                            width: 0.5,
                            ..Stroke::default()
                        }));
                        surface.draw_path(&path);
                        surface.set_stroke(None);
                    }
                }
            }
        }
        let footer = format!("第 {} 页 / 共 {pages} 页", n + 1);
        surface.draw_text(
            Point::from_xy(PAGE_W / 2.0 - 30.0, PAGE_H - 25.0),
            font.clone(),
            8.0,
            &footer,
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| anyhow::anyhow!("PDF rendering failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character_and_respects_the_width() {
        let text = "冲床光电保护装置失效，需立即停用并修复 (GB 5083)";
        let lines = wrap(text, 10.0, 100.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), text);
        for line in &lines {
            assert!(line.chars().map(advance).sum::<f32>() * 10.0 <= 100.0);
        }
    }
}
