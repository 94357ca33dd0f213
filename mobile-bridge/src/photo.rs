//! Photo intake: check the file the user picked before decoding it (type, declared size, a
//! JPEG's end), take its capture time and GPS from EXIF, turn it upright, downscale it to a
//! longest edge (default 2048 px; a JPEG decoded at a DCT scale may end up to 1/16 below it),
//! composite any transparency onto white, and re-encode it as JPEG quality 85.
//!
//! The prepared bytes are what is uploaded and what the document's [`PhotoRef`] names (its
//! `sha256` is the hash of the prepared bytes, because the server verifies the hash of what it
//! receives); the original's hash travels in the same reference (`original_sha256`) and in the
//! local `photos` table, while the original file stays on the phone. Re-encoding also
//! drops the EXIF block, so a phone's serial number or the owner's name never leave the device;
//! the capture time and position travel as fields of the reference.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader};
use sha2::{Digest, Sha256};
use sync_core::domain::GeoPoint;

/// Default longest edge after downscaling.
pub const DEFAULT_MAX_EDGE: u32 = 2048;
/// JPEG quality of prepared photos.
pub const JPEG_QUALITY: u8 = 85;

/// Most bytes decoding one photo may allocate: a 50-megapixel photo at 4 bytes a pixel, and some
/// slack. A file claiming more is refused from its header before any decoder runs.
const MAX_DECODE_BYTES: u64 = sync_core::photo::MAX_PIXELS * 4 + (16 << 20);

/// Something wrong with a picked photo.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file could not be read.
    #[error("无法读取照片 / cannot read photo: {0}")]
    Io(#[from] std::io::Error),
    /// Not a JPEG or PNG, too large by its header, or a damaged header.
    #[error("{zh} / {0}", zh = probe_zh(.0))]
    Probe(#[from] sync_core::photo::ProbeError),
    /// The image data stops before its end (an interrupted copy or download).
    #[error("照片文件不完整 / the photo file is cut short: its image data has no end")]
    Truncated,
    /// A broken image.
    #[error("照片无法解码 / the photo cannot be decoded: {0}")]
    Decode(String),
    /// Larger than any photo accepted.
    #[error("照片过大 / photo too large: {0} bytes")]
    TooLarge(u64),
}

/// The Chinese text of a refusal from the header checks.
fn probe_zh(e: &sync_core::photo::ProbeError) -> String {
    use sync_core::photo::ProbeError as P;
    match e {
        P::UnsupportedType { detected } => {
            format!("只接受 JPEG 或 PNG 照片（此文件像是 {detected}）")
        }
        P::DimensionsTooLarge {
            width,
            height,
            max_side,
            max_pixels,
        } => format!(
            "照片尺寸 {width}x{height} 超过上限（每边最多 {max_side} 像素，共 {max_pixels} 像素）"
        ),
        P::Corrupt(_) => "照片文件头已损坏".to_owned(),
    }
}

/// A photo ready to store and upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The bytes to upload (JPEG).
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lowercase hex.
    pub sha256: String,
    /// SHA-256 of the original file, lowercase hex.
    pub original_sha256: String,
    /// Size of the original file.
    pub original_size: u64,
    /// Always `image/jpeg`.
    pub media_type: String,
    /// Width and height after downscaling.
    pub width: u32,
    /// Height after downscaling.
    pub height: u32,
    /// Capture time from EXIF, ms since the Unix epoch.
    pub captured_at: Option<i64>,
    /// Position from EXIF.
    pub gps: Option<GeoPoint>,
    /// The file has an EXIF block that could not be read: its capture time and position, if
    /// it held them, are lost, and the record says so.
    pub exif_unreadable: bool,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads and prepares the photo at `path`.
pub fn prepare_file(path: &Path, max_edge: u32) -> Result<Prepared, PhotoError> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_ORIGINAL_BYTES {
        return Err(PhotoError::TooLarge(size));
    }
    let original = std::fs::read(path)?;
    prepare(&original, max_edge)
}

/// Largest original file accepted.
const MAX_ORIGINAL_BYTES: u64 = sync_core::domain::MAX_PHOTO_BYTES * 4;

/// Prepares photo bytes. The checks come first and cost nothing: the type from the magic bytes,
/// the dimensions from the header ([`sync_core::photo`], as the server checks them), and for a
/// JPEG that its data reaches its end; only then does a decoder run, under a memory limit.
/// A JPEG is decoded at a reduced scale through the DCT when the result is still close to the
/// longest edge wanted, which skips most of the decoding work of a 12-megapixel photo.
pub fn prepare(original: &[u8], max_edge: u32) -> Result<Prepared, PhotoError> {
    use sync_core::photo::{self as probe, MediaType};
    let size = original.len() as u64;
    if size > MAX_ORIGINAL_BYTES {
        return Err(PhotoError::TooLarge(size));
    }
    let media = probe::sniff(original)?;
    let (width, height) = probe::dimensions(original, media)?;
    probe::check_dimensions(width, height, probe::MAX_SIDE, probe::MAX_PIXELS)?;
    if media == MediaType::Jpeg && !probe::jpeg_is_complete(original) {
        return Err(PhotoError::Truncated);
    }
    let exif = read_exif_summary(original);
    let edge = max_edge.max(64);
    let decoded = match media {
        MediaType::Jpeg => decode_jpeg_scaled(original, width, height, edge)?,
        MediaType::Png => None,
    };
    let (rgb_w, rgb_h, rgb) = match decoded {
        Some(px) => px,
        None => decode_general(original, media)?,
    };
    let (mut w, mut h, mut rgb) = resize_rgb(rgb_w, rgb_h, rgb, edge)?;
    if let Some(o) = exif.orientation {
        let mut img = image::RgbImage::from_raw(w, h, std::mem::take(&mut rgb))
            .map(DynamicImage::ImageRgb8)
            .ok_or_else(|| PhotoError::Decode("pixel buffer does not match its size".into()))?;
        img.apply_orientation(o);
        (w, h) = (img.width(), img.height());
        rgb = img.into_rgb8().into_raw();
    }
    let mut bytes = Vec::with_capacity(512 * 1024);
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| PhotoError::Decode("too wide for JPEG".into()))?,
        u16::try_from(h).map_err(|_| PhotoError::Decode("too tall for JPEG".into()))?,
    );
    jpeg_encoder::Encoder::new(&mut bytes, JPEG_QUALITY)
        .encode(&rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| PhotoError::Decode(e.to_string()))?;
    Ok(Prepared {
        sha256: sha256_hex(&bytes),
        original_sha256: sha256_hex(original),
        original_size: size,
        media_type: "image/jpeg".into(),
        width: w,
        height: h,
        bytes,
        captured_at: exif.captured_at,
        gps: exif.gps,
        exif_unreadable: exif.unreadable,
    })
}

/// A JPEG decoded at the coarsest DCT scale (1/8 to 1) whose longest edge is still at least
/// 15/16 of `edge`, as 8-bit RGB. `None` when the decoder lacks a feature the file uses (CMYK,
/// arithmetic coding): the general decoder takes it.
fn decode_jpeg_scaled(
    bytes: &[u8],
    width: u32,
    height: u32,
    edge: u32,
) -> Result<Option<(u32, u32, Vec<u8>)>, PhotoError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(MAX_DECODE_BYTES).unwrap_or(usize::MAX));
    match decoder.read_info() {
        Ok(()) => {}
        Err(jpeg_decoder::Error::Unsupported(_)) => return Ok(None),
        Err(e) => return Err(PhotoError::Decode(e.to_string())),
    }
    let Some(info) = decoder.info() else {
        return Err(PhotoError::Decode("JPEG header could not be read".into()));
    };
    if !matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
    ) {
        return Ok(None);
    }
    let longest = width.max(height);
    let want = (edge - edge / 16).min(longest);
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX).max(1);
    let (req_w, req_h) = (
        clamp(u32::try_from(u64::from(width) * u64::from(want) / u64::from(longest)).unwrap_or(1)),
        clamp(u32::try_from(u64::from(height) * u64::from(want) / u64::from(longest)).unwrap_or(1)),
    );
    let (w, h) = decoder
        .scale(req_w, req_h)
        .map_err(|e| PhotoError::Decode(e.to_string()))?;
    let data = match decoder.decode() {
        Ok(d) => d,
        Err(jpeg_decoder::Error::Unsupported(_)) => return Ok(None),
        Err(e) => return Err(PhotoError::Decode(e.to_string())),
    };
    let (w, h) = (u32::from(w), u32::from(h));
    let pixels = w as usize * h as usize;
    let rgb = if info.pixel_format == jpeg_decoder::PixelFormat::L8 {
        data.iter().flat_map(|&g| [g, g, g]).collect()
    } else {
        data
    };
    if rgb.len() != pixels * 3 {
        return Err(PhotoError::Decode(format!(
            "JPEG decoded to {} bytes, expected {}",
            rgb.len(),
            pixels * 3
        )));
    }
    Ok(Some((w, h, rgb)))
}

/// Any accepted photo through `image`, under the memory limit, as 8-bit RGB with transparency
/// composited onto white.
fn decode_general(
    bytes: &[u8],
    media: sync_core::photo::MediaType,
) -> Result<(u32, u32, Vec<u8>), PhotoError> {
    let format = match media {
        sync_core::photo::MediaType::Jpeg => image::ImageFormat::Jpeg,
        sync_core::photo::MediaType::Png => image::ImageFormat::Png,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(sync_core::photo::MAX_SIDE);
    limits.max_image_height = Some(sync_core::photo::MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| PhotoError::Decode(e.to_string()))?;
    let (w, h) = (img.width(), img.height());
    let rgb = if img.color().has_alpha() {
        sync_core::photo::flatten_rgba_onto_white(img.into_rgba8().as_raw())
    } else {
        img.into_rgb8().into_raw()
    };
    Ok((w, h, rgb))
}

/// Downscales RGB pixels so the longest edge is at most `edge` (bilinear, SIMD).
fn resize_rgb(w: u32, h: u32, rgb: Vec<u8>, edge: u32) -> Result<(u32, u32, Vec<u8>), PhotoError> {
    use fast_image_resize as fir;
    let longest = w.max(h);
    if longest <= edge {
        return Ok((w, h, rgb));
    }
    let scale = |v: u32| {
        u32::try_from(
            (u64::from(v) * u64::from(edge) + u64::from(longest) / 2) / u64::from(longest),
        )
        .unwrap_or(edge)
        .max(1)
    };
    let (dw, dh) = (scale(w), scale(h));
    let src = fir::images::Image::from_vec_u8(w, h, rgb, fir::PixelType::U8x3)
        .map_err(|e| PhotoError::Decode(format!("resize: {e}")))?;
    let mut dst = fir::images::Image::new(dw, dh, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| PhotoError::Decode(format!("resize: {e}")))?;
    Ok((dw, dh, dst.into_vec()))
}

/// What the EXIF block says, and whether it could be read.
#[derive(Debug, Default)]
struct ExifSummary {
    captured_at: Option<i64>,
    gps: Option<GeoPoint>,
    orientation: Option<image::metadata::Orientation>,
    unreadable: bool,
}

fn read_exif_summary(bytes: &[u8]) -> ExifSummary {
    let exif = match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Ok(exif) => exif,
        Err(exif::Error::NotFound(_)) => return ExifSummary::default(),
        Err(_) => {
            return ExifSummary {
                unreadable: true,
                ..ExifSummary::default()
            };
        }
    };
    let (captured_at, gps) = exif_fields(&exif);
    let orientation = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u8::try_from(v).ok())
        .and_then(image::metadata::Orientation::from_exif);
    ExifSummary {
        captured_at,
        gps,
        orientation,
        unreadable: false,
    }
}

/// Capture time and GPS from the EXIF block, when present. A capture time without an offset is
/// taken as China Standard Time (the phones this serves are set to it).
pub fn read_exif(bytes: &[u8]) -> (Option<i64>, Option<GeoPoint>) {
    let summary = read_exif_summary(bytes);
    (summary.captured_at, summary.gps)
}

fn exif_fields(exif: &exif::Exif) -> (Option<i64>, Option<GeoPoint>) {
    let ascii = |tag: exif::Tag| -> Option<String> {
        let f = exif.get_field(tag, exif::In::PRIMARY)?;
        match &f.value {
            exif::Value::Ascii(v) => v
                .first()
                .map(|s| String::from_utf8_lossy(s).trim().to_owned()),
            _ => None,
        }
    };
    let captured_at = ascii(exif::Tag::DateTimeOriginal)
        .or_else(|| ascii(exif::Tag::DateTime))
        .and_then(|dt| {
            let offset = ascii(exif::Tag::OffsetTimeOriginal).unwrap_or_else(|| "+08:00".into());
            // EXIF: "YYYY:MM:DD HH:MM:SS".
            let (date, time) = dt.split_once(' ')?;
            let iso = format!("{}T{}{}", date.replace(':', "-"), time, offset);
            iso.parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.as_millisecond())
        });
    let coord = |tag: exif::Tag, ref_tag: exif::Tag, neg: &str| -> Option<f64> {
        let f = exif.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Rational(r) = &f.value else {
            return None;
        };
        if r.len() < 3 {
            return None;
        }
        let v = r[0].to_f64() + r[1].to_f64() / 60.0 + r[2].to_f64() / 3600.0;
        let sign = match ascii(ref_tag) {
            Some(s) if s.eq_ignore_ascii_case(neg) => -1.0,
            _ => 1.0,
        };
        Some(sign * v)
    };
    let gps = match (
        coord(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, "S"),
        coord(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, "W"),
    ) {
        (Some(lat), Some(lon)) => GeoPoint::new(lat, lon).ok(),
        _ => None,
    };
    (captured_at, gps)
}
