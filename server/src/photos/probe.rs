//! The photo checks made before any decoder runs live in [`sync_core::photo`], shared with the
//! phone; here they answer in the pipeline's error type.

pub use sync_core::photo::MediaType;

use super::error::PhotoError;

impl From<sync_core::photo::ProbeError> for PhotoError {
    fn from(e: sync_core::photo::ProbeError) -> Self {
        use sync_core::photo::ProbeError as P;
        match e {
            P::UnsupportedType { detected } => PhotoError::UnsupportedType { detected },
            P::DimensionsTooLarge {
                width,
                height,
                max_side,
                max_pixels,
            } => PhotoError::DimensionsTooLarge {
                width,
                height,
                max_side,
                max_pixels,
            },
            P::Corrupt(detail) => PhotoError::Corrupt(detail),
        }
    }
}

/// See [`sync_core::photo::sniff`].
pub fn sniff(bytes: &[u8]) -> Result<MediaType, PhotoError> {
    Ok(sync_core::photo::sniff(bytes)?)
}

/// See [`sync_core::photo::dimensions`].
pub fn dimensions(bytes: &[u8], media: MediaType) -> Result<(u32, u32), PhotoError> {
    Ok(sync_core::photo::dimensions(bytes, media)?)
}

/// See [`sync_core::photo::check_dimensions`].
pub fn check_dimensions(
    width: u32,
    height: u32,
    max_side: u32,
    max_pixels: u64,
) -> Result<(), PhotoError> {
    Ok(sync_core::photo::check_dimensions(
        width, height, max_side, max_pixels,
    )?)
}
