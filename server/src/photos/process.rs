//! Turning verified original bytes into what is served: a display JPEG and a thumbnail JPEG.
//!
//! Everything here is synchronous and CPU-bound; the store runs it on the blocking pool under a
//! semaphore. Order matters for safety: sniff the type, check the header's dimensions, and only then
//! let a decoder allocate, under a memory limit. Both outputs are re-encoded from pixels, so no EXIF,
//! XMP, ICC or comment survives; the orientation the camera recorded is applied to the pixels.
//!
//! The thumbnail of a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8 through a reduced inverse
//! DCT in `jpeg-decoder`), which skips most of the decoding work, then resized with SIMD by
//! `fast_image_resize`. That full pass over the entropy-coded data also proves the file is complete
//! before the full-size decode runs: a truncated JPEG is refused here, never stored half-grey.

use std::io::Cursor;

use fast_image_resize::{self as fir, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, RgbImage};

use super::error::PhotoError;
use super::meta::{ExifSummary, read_exif};
use super::probe::{MediaType, check_dimensions, dimensions, sniff};

/// Limits and output settings for processing; part of [`super::PhotoConfig`].
#[derive(Debug, Clone)]
pub struct ProcessingLimits {
    /// Longest side a photo may declare. Default 20 000 px.
    pub max_side: u32,
    /// Most pixels a photo may declare. Default 50 megapixels.
    pub max_pixels: u64,
    /// Longest edge of the thumbnail. Default 320 px.
    pub thumbnail_edge: u32,
    /// JPEG quality of the thumbnail. Default 80.
    pub thumbnail_quality: u8,
    /// JPEG quality of the display copy. Default 88.
    pub display_quality: u8,
}

impl Default for ProcessingLimits {
    fn default() -> Self {
        Self {
            max_side: sync_core::photo::MAX_SIDE,
            max_pixels: sync_core::photo::MAX_PIXELS,
            thumbnail_edge: 320,
            thumbnail_quality: 80,
            display_quality: 88,
        }
    }
}

impl ProcessingLimits {
    /// Bytes a decoder may allocate: the largest allowed image at 4 bytes per pixel, plus slack.
    fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(4).saturating_add(16 << 20)
    }
}

/// An encoded JPEG and its size.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedJpeg {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for EncodedJpeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedJpeg")
            .field("bytes", &self.bytes.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// The outcome of processing one original.
#[derive(Debug, Clone)]
pub struct ProcessedPhoto {
    pub media_type: MediaType,
    /// Width and height of the original as stored.
    pub width: u32,
    pub height: u32,
    pub exif: ExifSummary,
    /// Full size, orientation applied, no metadata.
    pub display: EncodedJpeg,
    /// Longest edge [`ProcessingLimits::thumbnail_edge`], orientation applied, no metadata.
    pub thumbnail: EncodedJpeg,
}

/// What processing a photo of these dimensions may hold in memory at its peak, in bytes: the
/// decoded image (PNG up to 8 bytes a pixel, 16-bit RGBA, bounded by the decoder's own
/// allocation limit; JPEG 4, CMYK), the 8-bit RGB copy it is flattened to, the original's bytes
/// and a margin for the encoders.
pub fn decode_memory_estimate(
    media: MediaType,
    width: u32,
    height: u32,
    file_bytes: u64,
    limits: &ProcessingLimits,
) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    let per_pixel = match media {
        MediaType::Png => 8,
        MediaType::Jpeg => 4,
    };
    pixels
        .saturating_mul(per_pixel)
        .min(limits.max_alloc())
        .saturating_add(pixels.saturating_mul(3))
        .saturating_add(file_bytes)
        .saturating_add(16 << 20)
}

/// Checks type and declared dimensions without decoding.
pub fn inspect(
    bytes: &[u8],
    limits: &ProcessingLimits,
) -> Result<(MediaType, u32, u32), PhotoError> {
    let media = sniff(bytes)?;
    let (width, height) = dimensions(bytes, media)?;
    check_dimensions(width, height, limits.max_side, limits.max_pixels)?;
    Ok((media, width, height))
}

/// Validates, reads EXIF from, and renders the display and thumbnail copies of an original.
pub fn process_photo(
    bytes: &[u8],
    limits: &ProcessingLimits,
) -> Result<ProcessedPhoto, PhotoError> {
    let (media_type, width, height) = inspect(bytes, limits)?;
    let exif = read_exif(bytes);
    let orientation = orientation_of(exif.orientation);
    // Thumbnail first: for JPEG it is the cheap full pass that rejects truncated data.
    let thumbnail = thumbnail_checked(bytes, media_type, limits, orientation)?;
    let mut full = decode_full(bytes, media_type, limits)?;
    full.apply_orientation(orientation);
    let display = encode_jpeg(&full, limits.display_quality)?;
    Ok(ProcessedPhoto {
        media_type,
        width,
        height,
        exif,
        display,
        thumbnail,
    })
}

/// Renders only the thumbnail (what the benchmark measures). Applies EXIF orientation.
pub fn make_thumbnail(bytes: &[u8], limits: &ProcessingLimits) -> Result<EncodedJpeg, PhotoError> {
    let (media, _, _) = inspect(bytes, limits)?;
    let orientation = orientation_of(read_exif(bytes).orientation);
    thumbnail_checked(bytes, media, limits, orientation)
}

fn orientation_of(exif: u16) -> Orientation {
    u8::try_from(exif)
        .ok()
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms)
}

fn thumbnail_checked(
    bytes: &[u8],
    media: MediaType,
    limits: &ProcessingLimits,
    orientation: Orientation,
) -> Result<EncodedJpeg, PhotoError> {
    let pixels = match media {
        MediaType::Jpeg => match decode_jpeg_scaled(bytes, limits)? {
            Some(pixels) => pixels,
            // A JPEG feature jpeg-decoder lacks (e.g. arithmetic coding): decode at full size.
            None => Pixels::from_dynamic(decode_full(bytes, media, limits)?),
        },
        MediaType::Png => Pixels::from_dynamic(decode_full(bytes, media, limits)?),
    };
    let small = resize_to_edge(pixels, limits.thumbnail_edge)?;
    let mut image = small.into_dynamic()?;
    image.apply_orientation(orientation);
    encode_jpeg(&image, limits.thumbnail_quality)
}

/// Decoded 8-bit pixels, RGB or grey, in a buffer `fast_image_resize` can take.
struct Pixels {
    width: u32,
    height: u32,
    gray: bool,
    data: Vec<u8>,
}

impl Pixels {
    fn from_dynamic(image: DynamicImage) -> Self {
        let (width, height) = (image.width(), image.height());
        match image {
            DynamicImage::ImageLuma8(gray) => Self {
                width,
                height,
                gray: true,
                data: gray.into_raw(),
            },
            other => Self {
                width,
                height,
                gray: false,
                data: flatten_to_rgb(other).into_raw(),
            },
        }
    }

    fn into_dynamic(self) -> Result<DynamicImage, PhotoError> {
        let bad = || PhotoError::Internal("pixel buffer does not match its dimensions".into());
        Ok(if self.gray {
            DynamicImage::ImageLuma8(
                GrayImage::from_raw(self.width, self.height, self.data).ok_or_else(bad)?,
            )
        } else {
            DynamicImage::ImageRgb8(
                RgbImage::from_raw(self.width, self.height, self.data).ok_or_else(bad)?,
            )
        })
    }
}

/// Decodes a JPEG at the smallest DCT scale that still leaves at least twice the thumbnail edge.
/// `Ok(None)` means "unsupported by this decoder, use the general path".
fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: &ProcessingLimits,
) -> Result<Option<Pixels>, PhotoError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc()).unwrap_or(usize::MAX));
    match decoder.read_info() {
        Ok(()) => {}
        Err(jpeg_decoder::Error::Unsupported(_)) => return Ok(None),
        Err(err) => return Err(corrupt(err)),
    }
    let info = decoder
        .info()
        .ok_or_else(|| PhotoError::Corrupt("JPEG header could not be read".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_dimensions(width, height, limits.max_side, limits.max_pixels)?;
    if !matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
    ) {
        return Ok(None); // CMYK and 16-bit: rare in photos, left to the general decoder.
    }
    let (want_w, want_h) = fit(width, height, limits.thumbnail_edge.saturating_mul(2));
    let (scaled_w, scaled_h) = decoder
        .scale(clamp_u16(want_w), clamp_u16(want_h))
        .map_err(corrupt)?;
    let data = match decoder.decode() {
        Ok(data) => data,
        Err(jpeg_decoder::Error::Unsupported(_)) => return Ok(None),
        Err(err) => return Err(corrupt(err)),
    };
    let gray = info.pixel_format == jpeg_decoder::PixelFormat::L8;
    let (width, height) = (u32::from(scaled_w), u32::from(scaled_h));
    let expected = width as usize * height as usize * if gray { 1 } else { 3 };
    if data.len() != expected {
        return Err(PhotoError::Corrupt(format!(
            "JPEG decoded to {} bytes, expected {expected}",
            data.len()
        )));
    }
    Ok(Some(Pixels {
        width,
        height,
        gray,
        data,
    }))
}

fn clamp_u16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX).max(1)
}

fn corrupt(err: impl std::fmt::Display) -> PhotoError {
    PhotoError::Corrupt(err.to_string())
}

/// Scales (w, h) so its longest edge is `edge` (never up), keeping the aspect ratio.
fn fit(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= edge {
        return (width, height);
    }
    let scale = |v: u32| {
        let scaled = (u64::from(v) * u64::from(edge) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(edge).max(1)
    };
    (scale(width), scale(height))
}

fn resize_to_edge(pixels: Pixels, edge: u32) -> Result<Pixels, PhotoError> {
    let (width, height) = fit(pixels.width, pixels.height, edge);
    if (width, height) == (pixels.width, pixels.height) {
        return Ok(pixels);
    }
    let pixel_type = if pixels.gray {
        PixelType::U8
    } else {
        PixelType::U8x3
    };
    let src = fir::images::Image::from_vec_u8(pixels.width, pixels.height, pixels.data, pixel_type)
        .map_err(|e| PhotoError::Internal(format!("resize source: {e}")))?;
    let mut dst = fir::images::Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| PhotoError::Internal(format!("resize: {e}")))?;
    Ok(Pixels {
        width,
        height,
        gray: pixels.gray,
        data: dst.into_vec(),
    })
}

/// Full-size decode through `image`, under memory and dimension limits.
fn decode_full(
    bytes: &[u8],
    media: MediaType,
    limits: &ProcessingLimits,
) -> Result<DynamicImage, PhotoError> {
    let format = match media {
        MediaType::Jpeg => ImageFormat::Jpeg,
        MediaType::Png => ImageFormat::Png,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    decode_limits.max_alloc = Some(limits.max_alloc());
    reader.limits(decode_limits);
    let image = reader.decode().map_err(|err| match err {
        image::ImageError::Limits(_) => {
            PhotoError::Corrupt(format!("decoder memory limit reached: {err}"))
        }
        other => corrupt(other),
    })?;
    Ok(match image {
        gray @ DynamicImage::ImageLuma8(_) => gray,
        rgb @ DynamicImage::ImageRgb8(_) => rgb,
        other => DynamicImage::ImageRgb8(flatten_to_rgb(other)),
    })
}

/// 8-bit RGB; transparent pixels are composited onto white (JPEG has no alpha).
fn flatten_to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let rgb = sync_core::photo::flatten_rgba_onto_white(rgba.as_raw());
    RgbImage::from_raw(width, height, rgb).unwrap_or_else(|| RgbImage::new(width, height))
}

fn encode_jpeg(image: &DynamicImage, quality: u8) -> Result<EncodedJpeg, PhotoError> {
    let (width, height) = (image.width(), image.height());
    let (data, color) = match image {
        DynamicImage::ImageLuma8(gray) => (gray.as_raw().as_slice(), jpeg_encoder::ColorType::Luma),
        DynamicImage::ImageRgb8(rgb) => (rgb.as_raw().as_slice(), jpeg_encoder::ColorType::Rgb),
        _ => {
            return Err(PhotoError::Internal(
                "encoder given a non 8-bit image".into(),
            ));
        }
    };
    let too_wide = || PhotoError::Internal(format!("{width}x{height} is too large for JPEG"));
    let (w16, h16) = (
        u16::try_from(width).map_err(|_| too_wide())?,
        u16::try_from(height).map_err(|_| too_wide())?,
    );
    let mut bytes = Vec::with_capacity(data.len() / 8);
    // jpeg-encoder writes only SOI, JFIF APP0, tables, frame and scan: no EXIF, XMP or ICC.
    jpeg_encoder::Encoder::new(&mut bytes, quality)
        .encode(data, w16, h16, color)
        .map_err(|e| PhotoError::Internal(format!("JPEG encoding failed: {e}")))?;
    Ok(EncodedJpeg {
        bytes,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(4000, 3000, 320), (320, 240));
        assert_eq!(fit(3000, 4000, 320), (240, 320));
        assert_eq!(fit(200, 100, 320), (200, 100));
        assert_eq!(fit(20_000, 1, 320), (320, 1));
    }

    fn noisy_jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut state = 0x2545_F491_u32;
        let img = RgbImage::from_fn(width, height, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let n = (state % 64) as u8;
            image::Rgb([(x % 256) as u8 ^ n, (y % 256) as u8, n])
        });
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(
                img.as_raw(),
                width as u16,
                height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .expect("encode");
        out
    }

    #[test]
    fn a_jpeg_cut_anywhere_in_its_image_data_is_corrupt() {
        let jpeg = noisy_jpeg(640, 480);
        let limits = ProcessingLimits::default();
        assert!(process_photo(&jpeg, &limits).is_ok());
        for percent in [20, 50, 90, 99] {
            let cut = &jpeg[..jpeg.len() * percent / 100];
            let err = process_photo(cut, &limits).expect_err("truncated");
            assert_eq!(err.code(), "corrupt_image", "cut at {percent}%: {err}");
        }
        // Only the final EOI marker missing: every pixel is there, so decoders may accept it.
        let _ = process_photo(&jpeg[..jpeg.len() - 2], &limits);
    }

    #[test]
    fn the_thumbnail_alone_keeps_the_aspect_ratio_and_the_pixel_limit() {
        let jpeg = noisy_jpeg(1000, 500);
        let limits = ProcessingLimits {
            thumbnail_edge: 100,
            ..ProcessingLimits::default()
        };
        let thumb = make_thumbnail(&jpeg, &limits).expect("thumbnail");
        assert_eq!((thumb.width, thumb.height), (100, 50));
        let tight = ProcessingLimits {
            max_pixels: 400_000,
            ..ProcessingLimits::default()
        };
        assert_eq!(
            make_thumbnail(&jpeg, &tight)
                .expect_err("too many pixels")
                .code(),
            "dimensions_too_large"
        );
    }

    #[test]
    fn transparent_png_pixels_become_white() {
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 0]));
        let rgb = flatten_to_rgb(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    }
}
