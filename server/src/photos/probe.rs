//! Cheap checks before any decoder runs: what the bytes are, and how big the image says it is.
//!
//! Both read only the first few header bytes and allocate nothing, so a hostile file that claims
//! 60000x60000 pixels is refused before a decoder could reserve memory for it.

use serde::{Deserialize, Serialize};

use super::error::PhotoError;

/// The photo formats the pipeline accepts, sniffed from magic bytes (never from a name or a hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
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
pub fn sniff(bytes: &[u8]) -> Result<MediaType, PhotoError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(MediaType::Jpeg);
    }
    if bytes.starts_with(PNG_MAGIC) {
        return Ok(MediaType::Png);
    }
    Err(PhotoError::UnsupportedType {
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
pub fn dimensions(bytes: &[u8], media: MediaType) -> Result<(u32, u32), PhotoError> {
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
) -> Result<(), PhotoError> {
    if width == 0 || height == 0 {
        return Err(PhotoError::Corrupt(format!(
            "header declares an empty image ({width}x{height})"
        )));
    }
    if width > max_side || height > max_side || u64::from(width) * u64::from(height) > max_pixels {
        return Err(PhotoError::DimensionsTooLarge {
            width,
            height,
            max_side,
            max_pixels,
        });
    }
    Ok(())
}

fn png_dimensions(bytes: &[u8]) -> Result<(u32, u32), PhotoError> {
    // Signature (8), then the IHDR chunk: length (4), type (4), width (4), height (4).
    let ihdr = bytes
        .get(8..24)
        .ok_or_else(|| PhotoError::Corrupt("PNG header is truncated".into()))?;
    if &ihdr[4..8] != b"IHDR" {
        return Err(PhotoError::Corrupt("PNG does not start with IHDR".into()));
    }
    let width = u32::from_be_bytes([ihdr[8], ihdr[9], ihdr[10], ihdr[11]]);
    let height = u32::from_be_bytes([ihdr[12], ihdr[13], ihdr[14], ihdr[15]]);
    Ok((width, height))
}

fn jpeg_dimensions(bytes: &[u8]) -> Result<(u32, u32), PhotoError> {
    let truncated = || PhotoError::Corrupt("JPEG header is truncated".into());
    let mut pos = 2; // after SOI
    loop {
        // Markers are 0xFF followed by a code; any number of 0xFF fill bytes may precede the code.
        if *bytes.get(pos).ok_or_else(truncated)? != 0xFF {
            return Err(PhotoError::Corrupt(format!(
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
                return Err(PhotoError::Corrupt(
                    "JPEG has no frame header before its image data".into(),
                ));
            }
            _ => {}
        }
        let len_bytes = bytes.get(pos..pos + 2).ok_or_else(truncated)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(PhotoError::Corrupt("JPEG segment length below 2".into()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_names_an_html_page_as_html() {
        let err = sniff(b"  <!DOCTYPE html><html>").expect_err("html is not a photo");
        assert!(matches!(
            err,
            PhotoError::UnsupportedType { detected: "html" }
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
        let err = check_dimensions(60_000, 60_000, 20_000, 50_000_000).expect_err("too big");
        assert_eq!(err.code(), "dimensions_too_large");
        assert!(check_dimensions(8_000, 6_000, 20_000, 50_000_000).is_ok());
        assert!(check_dimensions(10_000, 6_000, 20_000, 50_000_000).is_err());
    }
}
