//! What a change costs to decode, measured before automerge decodes it.
//!
//! A sync message is small on the wire and can be enormous once decoded (issue #19): a change
//! chunk may be DEFLATE-compressed as a whole (a 4 kB message became a 3,000,000-character
//! description), and every column of a change is run-length encoded, so a few bytes can declare
//! a run of 2^60 operations that automerge would iterate while parsing. [`measure`] reads the
//! chunk header, inflates a compressed body only up to [`MAX_CHANGE_BYTES`], and walks the
//! run-length headers of every column (never expanding a run) to count the rows each declares.
//! The validator refuses a change or batch past [`MAX_CHANGE_BYTES`], [`MAX_CHANGE_OPS`],
//! [`MAX_BATCH_BYTES`] or [`MAX_BATCH_OPS`] before anything is applied, so a refused batch costs
//! about as much as reading it.
//!
//! The layout read here is automerge's binary format (magic, checksum, chunk type, LEB128
//! length; a change body of dependencies, actor, sequence, start op, time, message, other
//! actors, column metadata, column data). Anything that does not parse is left for
//! `Change::from_bytes` to refuse with its own error: this module only bounds work.

use std::io::Read as _;

/// Decoded bytes of one change (after inflating a compressed chunk).
pub const MAX_CHANGE_BYTES: usize = 4 * 1024 * 1024;
/// Operations (rows) one change may declare in any column.
pub const MAX_CHANGE_OPS: u64 = 100_000;
/// Decoded bytes of one document's batch.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Operations of one document's batch.
pub const MAX_BATCH_OPS: u64 = 400_000;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;

/// What one change declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Bytes of the change's body once inflated.
    pub decoded_bytes: usize,
    /// The most rows any column declares (for a group column, also the rows of the columns
    /// it groups): an upper bound on the operations automerge iterates.
    pub ops: u64,
}

/// Why a change is refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooBig {
    /// Inflating the change passed the byte limit.
    #[error("change decodes to more than {max} bytes")]
    Bytes {
        /// The limit.
        max: usize,
    },
    /// A column declares more rows than the operation limit.
    #[error("change declares {ops} operations, above the limit of {max}")]
    Ops {
        /// Rows declared (at least).
        ops: u64,
        /// The limit.
        max: u64,
    },
}

/// Measures one raw change. `Ok(None)`: not a change chunk this module can read (automerge
/// refuses it); `Err`: past a per-change limit, with inflating and counting stopped there.
pub fn measure(raw: &[u8]) -> Result<Option<Cost>, TooBig> {
    let mut r = Reader(raw);
    let Some(magic) = r.take(4) else {
        return Ok(None);
    };
    if magic != MAGIC || r.take(4).is_none() {
        return Ok(None);
    }
    let Some(kind) = r.byte() else {
        return Ok(None);
    };
    let Some(len) = r.uleb().and_then(|l| usize::try_from(l).ok()) else {
        return Ok(None);
    };
    let Some(body) = r.take(len) else {
        return Ok(None);
    };
    match kind {
        CHUNK_CHANGE => Ok(count_ops(body)?.map(|ops| Cost {
            decoded_bytes: body.len(),
            ops,
        })),
        CHUNK_COMPRESSED => {
            let mut inflated = Vec::new();
            let read = flate2::read::DeflateDecoder::new(body)
                .take(MAX_CHANGE_BYTES as u64 + 1)
                .read_to_end(&mut inflated);
            if read.is_err() {
                return Ok(None);
            }
            if inflated.len() > MAX_CHANGE_BYTES {
                return Err(TooBig::Bytes {
                    max: MAX_CHANGE_BYTES,
                });
            }
            Ok(count_ops(&inflated)?.map(|ops| Cost {
                decoded_bytes: inflated.len(),
                ops,
            }))
        }
        _ => Ok(None),
    }
}

/// The most rows any column of a change body declares.
fn count_ops(body: &[u8]) -> Result<Option<u64>, TooBig> {
    let mut r = Reader(body);
    let Some(()) = skip_preamble(&mut r) else {
        return Ok(None);
    };
    let Some(columns) = r.uleb() else {
        return Ok(None);
    };
    // Each column's metadata is at least two bytes.
    if columns > r.0.len() as u64 / 2 {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(columns as usize);
    for _ in 0..columns {
        let (Some(spec), Some(len)) = (r.uleb(), r.uleb()) else {
            return Ok(None);
        };
        specs.push((spec, len));
    }
    let mut most = 0u64;
    for (spec, len) in specs {
        let Some(data) = usize::try_from(len).ok().and_then(|l| r.take(l)) else {
            return Ok(None);
        };
        let rows = match rows_of(spec, data) {
            Ok(Some(rows)) => rows,
            Ok(None) => return Ok(None),
            Err(ops) => {
                return Err(TooBig::Ops {
                    ops,
                    max: MAX_CHANGE_OPS,
                });
            }
        };
        most = most.max(rows);
    }
    Ok(Some(most))
}

/// Dependencies, actor, sequence, start op, time, message, other actors.
fn skip_preamble(r: &mut Reader<'_>) -> Option<()> {
    let deps = r.uleb()?;
    r.take(usize::try_from(deps.checked_mul(32)?).ok()?)?;
    r.bytes()?; // actor
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    r.bytes()?; // message
    let others = r.uleb()?;
    for _ in 0..others {
        r.bytes()?;
    }
    Some(())
}

/// Rows a column declares: `Ok(None)` when unreadable, `Err(rows)` as soon as the count passes
/// [`MAX_CHANGE_OPS`]. For a group column the values (the rows of its grouped columns) count too.
fn rows_of(spec: u64, data: &[u8]) -> Result<Option<u64>, u64> {
    const DEFLATE: u64 = 0x08;
    if spec & DEFLATE != 0 {
        // automerge refuses compressed columns in a change.
        return Ok(None);
    }
    let mut r = Reader(data);
    let mut rows = 0u64;
    let mut grouped = 0u64;
    let over = |n: u64| n > MAX_CHANGE_OPS;
    match spec & 0x07 {
        // Boolean: alternating run lengths.
        4 => {
            while !r.0.is_empty() {
                let Some(n) = r.uleb() else {
                    return Ok(None);
                };
                rows = rows.saturating_add(n);
                if over(rows) {
                    return Err(rows);
                }
            }
        }
        // Raw values: their rows come from the metadata column.
        7 => {}
        kind => {
            let group = kind == 0;
            while !r.0.is_empty() {
                let Some(n) = r.sleb() else {
                    return Ok(None);
                };
                match n {
                    0 => {
                        let Some(nulls) = r.uleb() else {
                            return Ok(None);
                        };
                        rows = rows.saturating_add(nulls);
                    }
                    n if n > 0 => {
                        let n = n as u64;
                        let Some(value) = read_value(&mut r, kind) else {
                            return Ok(None);
                        };
                        rows = rows.saturating_add(n);
                        if group {
                            grouped = grouped.saturating_add(n.saturating_mul(value));
                        }
                    }
                    n => {
                        let n = n.unsigned_abs();
                        if n > r.0.len() as u64 {
                            // Each literal takes at least one byte.
                            return Ok(None);
                        }
                        for _ in 0..n {
                            let Some(value) = read_value(&mut r, kind) else {
                                return Ok(None);
                            };
                            if group {
                                grouped = grouped.saturating_add(value);
                            }
                        }
                        rows = rows.saturating_add(n);
                    }
                }
                if over(rows) || over(grouped) {
                    return Err(rows.max(grouped));
                }
            }
        }
    }
    Ok(Some(rows.max(grouped)))
}

/// One value of a run-length encoded column; its magnitude where it is a count.
fn read_value(r: &mut Reader<'_>, kind: u64) -> Option<u64> {
    match kind {
        // Group, actor, integer, value metadata: unsigned.
        0 | 1 | 2 | 6 => r.uleb(),
        // Delta integer: signed.
        3 => r.sleb().map(|_| 0),
        // String: length-prefixed bytes.
        5 => r.bytes().map(|_| 0),
        _ => None,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut value = 0i64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return None;
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
        }
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uleb()?).ok()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable as _;
    use automerge::{AutoCommit, ROOT};

    /// A change that writes `chars` characters into a text field, and its compressed form.
    fn text_change(chars: usize) -> (Vec<u8>, Vec<u8>) {
        let mut doc = AutoCommit::new();
        let text = doc
            .put_object(ROOT, "description", automerge::ObjType::Text)
            .unwrap();
        doc.splice_text(&text, 0, 0, &"a".repeat(chars)).unwrap();
        let mut change = doc.get_last_local_change().unwrap().clone();
        (change.raw_bytes().to_vec(), change.bytes().into_owned())
    }

    #[test]
    fn an_ordinary_change_is_measured_by_its_rows() {
        let (raw, compressed) = text_change(300);
        let cost = measure(&raw).unwrap().unwrap();
        assert!((300..=302).contains(&cost.ops), "{cost:?}");
        assert!(cost.decoded_bytes < raw.len() && cost.decoded_bytes > 300);
        // The compressed form (if automerge compressed it) measures the same.
        let cost2 = measure(&compressed).unwrap().unwrap();
        assert_eq!(cost2.ops, cost.ops);
        assert_eq!(cost2.decoded_bytes, cost.decoded_bytes);
    }

    #[test]
    fn a_compressed_bomb_is_stopped_while_inflating() {
        // 300,000 characters: a few kB compressed, three times the operation limit decoded.
        let (raw, compressed) = text_change(300_000);
        assert!(compressed.len() < 64 * 1024, "{} bytes", compressed.len());
        assert!(raw.len() < MAX_CHANGE_BYTES, "{}", raw.len());
        assert!(
            matches!(measure(&compressed), Err(TooBig::Ops { .. })),
            "{:?}",
            measure(&compressed)
        );
    }

    #[test]
    fn a_run_of_two_to_the_sixty_operations_is_refused_without_iterating_it() {
        // An uncompressed change body whose action column declares one run of 2^60 rows.
        let mut body = vec![0u8]; // no dependencies
        body.extend([1, 0xaa]); // actor of one byte
        body.extend([1, 1, 0]); // seq 1, start op 1, time 0
        body.extend([0, 0]); // no message, no other actors
        let mut column = Vec::new();
        leb128_s(&mut column, 1i64 << 60); // a run of 2^60 ...
        column.push(3); // ... of action 3
        body.push(1); // one column
        body.push((7 << 4) | 2); // id 7, integer
        body.push(column.len() as u8);
        body.extend(&column);
        let mut raw = MAGIC.to_vec();
        raw.extend([0, 0, 0, 0, CHUNK_CHANGE, body.len() as u8]);
        raw.extend(&body);
        assert!(
            matches!(measure(&raw), Err(TooBig::Ops { .. })),
            "{:?}",
            measure(&raw)
        );
        // A group column of one row whose group holds 2^60 entries.
        let mut group = Vec::new();
        leb128_s(&mut group, 1);
        group.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]); // 2^60, ULEB
        let mut grouped = body[..body.len() - column.len() - 3].to_vec();
        grouped.push(1);
        grouped.push(7 << 4); // id 7, group
        grouped.push(group.len() as u8);
        grouped.extend(&group);
        assert!(
            matches!(measure_body(&grouped), Err(TooBig::Ops { .. })),
            "{:?}",
            measure_body(&grouped)
        );
    }

    #[test]
    fn garbage_is_left_to_automerge() {
        assert_eq!(measure(b""), Ok(None));
        assert_eq!(
            measure(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 9, 0]),
            Ok(None)
        );
        assert_eq!(
            measure(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 200]),
            Ok(None)
        );
    }

    fn measure_body(body: &[u8]) -> Result<Option<Cost>, TooBig> {
        let mut raw = MAGIC.to_vec();
        raw.extend([0, 0, 0, 0, CHUNK_CHANGE, body.len() as u8]);
        raw.extend(body);
        measure(&raw)
    }

    fn leb128_s(out: &mut Vec<u8>, mut v: i64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
            out.push(if done { b } else { b | 0x80 });
            if done {
                return;
            }
        }
    }
}
