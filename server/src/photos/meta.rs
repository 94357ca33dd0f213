//! What the server keeps about a photo besides its bytes: the [`PhotoMeta`] record, mostly from EXIF.
//!
//! Capture time and place are part of the evidence, so they are read here from the original before
//! the served copies are re-encoded without any metadata. A photo with damaged or missing EXIF is
//! still accepted: the fields are simply absent.

use std::io::Cursor;

use exif::{In, Tag, Value};
use serde::{Deserialize, Serialize};

use super::hash::PhotoHash;
use super::probe::MediaType;

/// Version of the [`PhotoMeta`] record layout; bump it when a field changes meaning.
pub const PHOTO_META_VERSION: u32 = 1;

/// Everything the integrator stores in the database about one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Layout version, [`PHOTO_META_VERSION`].
    pub version: u32,
    /// SHA-256 of the original bytes: the evidence.
    pub sha256: PhotoHash,
    /// Size of the original in bytes.
    pub byte_size: u64,
    /// Sniffed type of the original.
    pub media_type: MediaType,
    /// Width of the original as stored (before orientation is applied).
    pub width: u32,
    /// Height of the original as stored (before orientation is applied).
    pub height: u32,
    /// EXIF orientation, 1 to 8 (1 when absent); already applied to the display and thumbnail.
    pub orientation: u16,
    /// Width of the display JPEG (orientation applied).
    pub display_width: u32,
    /// Height of the display JPEG (orientation applied).
    pub display_height: u32,
    /// Width of the thumbnail JPEG.
    pub thumbnail_width: u32,
    /// Height of the thumbnail JPEG.
    pub thumbnail_height: u32,
    /// When the camera says the photo was taken.
    pub captured_at: Option<CaptureTime>,
    /// Where the camera says the photo was taken.
    pub gps: Option<GpsPosition>,
    /// EXIF `Make`.
    pub camera_make: Option<String>,
    /// EXIF `Model`.
    pub camera_model: Option<String>,
}

/// EXIF `DateTimeOriginal`, with `OffsetTimeOriginal` and `SubSecTimeOriginal` when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureTime {
    /// The camera's wall-clock time, as written (time zone unknown unless `utc_offset` is set).
    pub local: jiff::civil::DateTime,
    /// Offset from UTC, like `+08:00`, when the camera recorded it.
    pub utc_offset: Option<String>,
    /// The instant, only when the offset is known.
    pub instant: Option<jiff::Timestamp>,
}

/// GPS position in signed decimal degrees (south and west negative), WGS 84 as EXIF defines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpsPosition {
    pub latitude: f64,
    pub longitude: f64,
    /// Metres above sea level (negative below), when recorded.
    pub altitude_m: Option<f64>,
}

/// The EXIF part of [`PhotoMeta`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExifSummary {
    pub captured_at: Option<CaptureTime>,
    pub gps: Option<GpsPosition>,
    /// 1 to 8; 1 when absent or out of range.
    pub orientation: u16,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
}

/// Reads EXIF from a JPEG (APP1) or PNG (eXIf); never fails, absent or damaged EXIF gives defaults.
pub fn read_exif(bytes: &[u8]) -> ExifSummary {
    let exif = match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Ok(exif) => exif,
        Err(exif::Error::NotFound(_)) => {
            return ExifSummary {
                orientation: 1,
                ..ExifSummary::default()
            };
        }
        Err(err) => {
            tracing::warn!(error = %err, "photo has unreadable EXIF; keeping it without metadata");
            return ExifSummary {
                orientation: 1,
                ..ExifSummary::default()
            };
        }
    };
    let field = |tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let orientation = field(Tag::Orientation)
        .and_then(|v| v.get_uint(0))
        .and_then(|o| u16::try_from(o).ok())
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1);
    ExifSummary {
        captured_at: capture_time(
            field(Tag::DateTimeOriginal),
            field(Tag::OffsetTimeOriginal),
            field(Tag::SubSecTimeOriginal),
        ),
        gps: gps(
            field(Tag::GPSLatitude),
            field(Tag::GPSLatitudeRef),
            field(Tag::GPSLongitude),
            field(Tag::GPSLongitudeRef),
            field(Tag::GPSAltitude),
            field(Tag::GPSAltitudeRef),
        ),
        orientation,
        camera_make: field(Tag::Make).and_then(ascii),
        camera_model: field(Tag::Model).and_then(ascii),
    }
}

fn ascii_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

fn ascii(value: &Value) -> Option<String> {
    let text = String::from_utf8_lossy(ascii_bytes(value)?);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.chars().take(128).collect())
}

fn capture_time(
    datetime: Option<&Value>,
    offset: Option<&Value>,
    subsec: Option<&Value>,
) -> Option<CaptureTime> {
    let mut dt = exif::DateTime::from_ascii(ascii_bytes(datetime?)?).ok()?;
    if let Some(sub) = subsec.and_then(ascii_bytes) {
        let _ = dt.parse_subsec(sub);
    }
    if let Some(off) = offset.and_then(ascii_bytes) {
        let _ = dt.parse_offset(off);
    }
    let local = jiff::civil::DateTime::new(
        i16::try_from(dt.year).ok()?,
        i8::try_from(dt.month).ok()?,
        i8::try_from(dt.day).ok()?,
        i8::try_from(dt.hour).ok()?,
        i8::try_from(dt.minute).ok()?,
        i8::try_from(dt.second).ok()?,
        i32::try_from(dt.nanosecond.unwrap_or(0)).ok()?,
    )
    .ok()?;
    let offset = dt
        .offset
        .and_then(|minutes| jiff::tz::Offset::from_seconds(i32::from(minutes) * 60).ok());
    let instant = offset.and_then(|o| o.to_timestamp(local).ok());
    let utc_offset = dt.offset.map(|minutes| {
        let sign = if minutes < 0 { '-' } else { '+' };
        let abs = minutes.unsigned_abs();
        format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
    });
    Some(CaptureTime {
        local,
        utc_offset: utc_offset.filter(|_| instant.is_some()),
        instant,
    })
}

fn degrees(value: &Value) -> Option<f64> {
    let Value::Rational(parts) = value else {
        return None;
    };
    let mut total = 0.0;
    for (part, scale) in parts.iter().zip([1.0, 60.0, 3600.0]) {
        if part.denom == 0 {
            return None;
        }
        total += part.to_f64() / scale;
    }
    (!parts.is_empty()).then_some(total)
}

fn gps(
    lat: Option<&Value>,
    lat_ref: Option<&Value>,
    lon: Option<&Value>,
    lon_ref: Option<&Value>,
    alt: Option<&Value>,
    alt_ref: Option<&Value>,
) -> Option<GpsPosition> {
    let sign =
        |r: Option<&Value>, negative: u8| match r.and_then(ascii_bytes).and_then(|b| b.first()) {
            Some(c) if c.eq_ignore_ascii_case(&negative) => -1.0,
            _ => 1.0,
        };
    let latitude = degrees(lat?)? * sign(lat_ref, b'S');
    let longitude = degrees(lon?)? * sign(lon_ref, b'W');
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return None;
    }
    let altitude_m = alt.and_then(|v| match v {
        Value::Rational(r) if r.first().is_some_and(|r| r.denom != 0) => {
            let below = matches!(alt_ref.and_then(|r| r.get_uint(0)), Some(1));
            r.first()
                .map(|r| if below { -r.to_f64() } else { r.to_f64() })
        }
        _ => None,
    });
    Some(GpsPosition {
        latitude,
        longitude,
        altitude_m,
    })
}
