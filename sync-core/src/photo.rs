//! Cheap checks on photo bytes before any decoder runs, the same on the server and the phone:
//! what the bytes are, how big the image says it is, whether a JPEG's data reaches its end.
//!
//! They read only headers and allocate nothing, so a hostile file that claims 60000x60000
//! pixels is refused before a decoder could reserve memory for it. Also the one way transparent
//! pixels become opaque ([`flatten_rgba_onto_white`]): a signature drawn in black on a
//! transparent pad must stay black on white, not become a black box.

use serde::{Deserialize, Serialize};

/// Longest side a photo may declare (both sides of the sync accept the same).
pub const MAX_SIDE: u32 = 20_000;
/// Most pixels a photo may declare: 50 megapixels.
pub const MAX_PIXELS: u64 = 50_000_000;

/// What is wrong with photo bytes, found without decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The content is not a JPEG or PNG; `detected` is a rough guess of what it is.
    #[error("unsupported content ({detected}): only JPEG and PNG photos are accepted")]
    UnsupportedType {
        /// What the bytes look like (`html`, `pdf`, `heif_or_mp4`, `unknown`, …).
        detected: &'static str,
    },
    /// The header declares dimensions above the limits.
    #[error(
        "image of {width}x{height} px exceeds the limit of {max_side} px per side and {max_pixels} pixels"
    )]
    DimensionsTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The per-side limit.
        max_side: u32,
        /// The pixel limit.
        max_pixels: u64,
    },
    /// The header is damaged or truncated.
    #[error("image could not be decoded: {0}")]
    Corrupt(String),
}

impl ProbeError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedType { .. } => "unsupported_media_type",
            Self::DimensionsTooLarge { .. } => "dimensions_too_large",
            Self::Corrupt(_) => "corrupt_image",
        }
    }
}

/// The photo formats the pipeline accepts, sniffed from magic bytes (never from a name or a hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaType {
    /// JPEG.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// PNG.
    #[serde(rename = "image/png")]
    Png,
}

impl MediaType {
    /// The MIME type of the original.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

const PNG_MAGIC: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Identifies JPEG and PNG by their magic bytes; anything else is refused with a rough guess of what
/// it is, so the client's error message can say "this is an HTML page, not a photo".
pub fn sniff(bytes: &[u8]) -> Result<MediaType, ProbeError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(MediaType::Jpeg);
    }
    if bytes.starts_with(PNG_MAGIC) {
        return Ok(MediaType::Png);
    }
    Err(ProbeError::UnsupportedType {
        detected: guess(bytes),
    })
}

fn guess(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(512)];
    let text = head.trim_ascii_start();
    let lower: Vec<u8> = text.iter().take(16).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        "html"
    } else if lower.starts_with(b"<?xml") || lower.starts_with(b"<svg") {
        "xml_or_svg"
    } else if bytes.starts_with(b"GIF8") {
        "gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "webp"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "heif_or_mp4"
    } else if bytes.starts_with(b"%PDF") {
        "pdf"
    } else {
        "unknown"
    }
}

/// Width and height as declared by the header (before any EXIF orientation).
pub fn dimensions(bytes: &[u8], media: MediaType) -> Result<(u32, u32), ProbeError> {
    match media {
        MediaType::Png => png_dimensions(bytes),
        MediaType::Jpeg => jpeg_dimensions(bytes),
    }
}

/// Refuses dimensions above the per-side or total-pixel limit.
pub fn check_dimensions(
    width: u32,
    height: u32,
    max_side: u32,
    max_pixels: u64,
) -> Result<(), ProbeError> {
    if width == 0 || height == 0 {
        return Err(ProbeError::Corrupt(format!(
            "header declares an empty image ({width}x{height})"
        )));
    }
    if width > max_side || height > max_side || u64::from(width) * u64::from(height) > max_pixels {
        return Err(ProbeError::DimensionsTooLarge {
            width,
            height,
            max_side,
            max_pixels,
        });
    }
    Ok(())
}

fn png_dimensions(bytes: &[u8]) -> Result<(u32, u32), ProbeError> {
    // Signature (8), then the IHDR chunk: length (4), type (4), width (4), height (4).
    let ihdr = bytes
        .get(8..24)
        .ok_or_else(|| ProbeError::Corrupt("PNG header is truncated".into()))?;
    if &ihdr[4..8] != b"IHDR" {
        return Err(ProbeError::Corrupt("PNG does not start with IHDR".into()));
    }
    let width = u32::from_be_bytes([ihdr[8], ihdr[9], ihdr[10], ihdr[11]]);
    let height = u32::from_be_bytes([ihdr[12], ihdr[13], ihdr[14], ihdr[15]]);
    Ok((width, height))
}

fn jpeg_dimensions(bytes: &[u8]) -> Result<(u32, u32), ProbeError> {
    let truncated = || ProbeError::Corrupt("JPEG header is truncated".into());
    let mut pos = 2; // after SOI
    loop {
        // Markers are 0xFF followed by a code; any number of 0xFF fill bytes may precede the code.
        if *bytes.get(pos).ok_or_else(truncated)? != 0xFF {
            return Err(ProbeError::Corrupt(format!(
                "JPEG marker expected at byte {pos}"
            )));
        }
        while *bytes.get(pos).ok_or_else(truncated)? == 0xFF {
            pos += 1;
        }
        let marker = bytes[pos];
        pos += 1;
        match marker {
            // Standalone markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => {
                return Err(ProbeError::Corrupt(
                    "JPEG has no frame header before its image data".into(),
                ));
            }
            _ => {}
        }
        let len_bytes = bytes.get(pos..pos + 2).ok_or_else(truncated)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(ProbeError::Corrupt("JPEG segment length below 2".into()));
        }
        let is_sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof {
            // Length (2), precision (1), height (2), width (2).
            let sof = bytes.get(pos..pos + 7).ok_or_else(truncated)?;
            let height = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
            let width = u32::from(u16::from_be_bytes([sof[5], sof[6]]));
            return Ok((width, height));
        }
        pos += len;
    }
}

/// Whether a JPEG's image data reaches its end: an end-of-image marker follows the first
/// start-of-scan. Entropy-coded data cannot hold that marker (a 0xFF byte in it is stuffed), so
/// a file cut short, the way an interrupted copy or a partial download leaves it, has none.
/// Data after the marker (a motion photo's video, a polyglot's archive) is not the image's and
/// is dropped when the photo is re-encoded.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(scan) = jpeg_scan_start(bytes) else {
        return false;
    };
    bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Where the first start-of-scan segment begins, walking the segments from the start.
fn jpeg_scan_start(bytes: &[u8]) -> Option<usize> {
    let mut pos = 2;
    loop {
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        while *bytes.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *bytes.get(pos)?;
        pos += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xDA => return Some(pos),
            0xD9 => return None,
            _ => {}
        }
        let len = bytes.get(pos..pos + 2)?;
        pos += usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
}

/// Composites 8-bit RGBA pixels onto white and returns 8-bit RGB: JPEG has no transparency, and
/// dropping the alpha channel instead would turn a transparent background black.
pub fn flatten_rgba_onto_white(rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let alpha = u16::from(px[3]);
        for &c in &px[..3] {
            let blended = (u16::from(c) * alpha + 255 * (255 - alpha) + 127) / 255;
            out.push(u8::try_from(blended).unwrap_or(u8::MAX));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_names_an_html_page_as_html() {
        let err = sniff(b"  <!DOCTYPE html><html>").expect_err("html is not a photo");
        assert!(matches!(
            err,
            ProbeError::UnsupportedType { detected: "html" }
        ));
    }

    #[test]
    fn jpeg_dimensions_are_read_after_app_segments_and_fill_bytes() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x06, b'E', b'x', b'i', b'f']);
        jpeg.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08, 0x0B, 0xB8, 0x0F, 0xA0]);
        assert_eq!(jpeg_dimensions(&jpeg).expect("dims"), (4000, 3000));
    }

    #[test]
    fn jpeg_header_cut_short_is_corrupt_not_a_panic() {
        for cut in 0..12 {
            let jpeg = [
                0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x0B, 0xB8, 0x0F, 0xA0, 0x03,
            ];
            let _ = jpeg_dimensions(&jpeg[..cut]);
        }
    }

    #[test]
    fn a_60000_pixel_side_exceeds_the_limits() {
        let err = check_dimensions(60_000, 60_000, MAX_SIDE, MAX_PIXELS).expect_err("too big");
        assert_eq!(err.code(), "dimensions_too_large");
        assert!(check_dimensions(8_000, 6_000, MAX_SIDE, MAX_PIXELS).is_ok());
        assert!(check_dimensions(10_000, 6_000, MAX_SIDE, MAX_PIXELS).is_err());
    }

    #[test]
    fn a_jpeg_cut_short_is_incomplete_and_trailing_data_does_not_matter() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x04, 0xFF, 0xD9]); // an EOI inside APP1
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34]);
        assert!(!jpeg_is_complete(&jpeg), "no end after the scan");
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_is_complete(&jpeg));
        jpeg.extend_from_slice(b"PK\x03\x04 an archive after the image");
        assert!(jpeg_is_complete(&jpeg));
        for cut in 0..jpeg.len() {
            let _ = jpeg_is_complete(&jpeg[..cut]);
        }
    }

    #[test]
    fn transparent_pixels_become_white_and_opaque_strokes_stay() {
        let rgba = [0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 128];
        assert_eq!(
            flatten_rgba_onto_white(&rgba),
            vec![255, 255, 255, 0, 0, 0, 255, 127, 127]
        );
    }
}
