//! The one error type of the photo pipeline.
//!
//! Every variant is specific enough for the HTTP edge to pick a status and a message without parsing
//! text: [`PhotoError::code`] gives a stable snake_case code and [`PhotoError::is_client_error`] says
//! whether the client caused it (4xx) or the server did (5xx, to be logged and kept opaque).

use std::io;

use super::hash::PhotoHash;

/// What can go wrong while receiving, verifying, processing or serving a photo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhotoError {
    /// The hash given by the client is not 64 hexadecimal digits.
    #[error("invalid SHA-256 hash {0:?}: expected 64 hexadecimal digits")]
    InvalidHash(String),

    /// The declared size is zero.
    #[error("an upload must declare a size of at least one byte")]
    EmptyUpload,

    /// The declared size, or the bytes streamed so far, exceed the configured maximum.
    #[error("photo of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: u64, max: u64 },

    /// The stream carried more bytes than the size declared at `begin_upload`; the upload is discarded.
    #[error("upload streamed more than its declared {declared} bytes; the upload was discarded")]
    ExceedsDeclaredSize { declared: u64 },

    /// A new upload would take its starter past their allowance of unfinished uploads.
    #[error(
        "{uploads} unfinished uploads of {bytes} bytes are yours already; at most {max_uploads} \
         uploads or {max_bytes} bytes may be unfinished at once: finish them or wait until they expire"
    )]
    UnfinishedQuota {
        uploads: usize,
        bytes: u64,
        max_uploads: usize,
        max_bytes: u64,
    },

    /// A second `begin_upload` for the same hash declared a different size.
    #[error(
        "an upload of {hash} with {existing} bytes is in progress; {requested} bytes were declared now"
    )]
    SizeConflict {
        hash: PhotoHash,
        existing: u64,
        requested: u64,
    },

    /// No upload was begun for this hash (or it was discarded).
    #[error("no upload in progress for {0}")]
    UploadNotFound(PhotoHash),

    /// A chunk was sent for an offset other than the number of bytes received so far.
    #[error("chunk sent at offset {got}, but the upload expects offset {expected}")]
    WrongOffset { expected: u64, got: u64 },

    /// `finish` was called before all declared bytes arrived.
    #[error("upload incomplete: {received} of {expected} bytes received")]
    Incomplete { received: u64, expected: u64 },

    /// The received bytes do not hash to the declared SHA-256; the upload is discarded.
    #[error("content hashes to {actual}, not the declared {expected}; the upload was discarded")]
    HashMismatch {
        expected: PhotoHash,
        actual: PhotoHash,
    },

    /// The request body failed mid-stream (client went away). Bytes before it are kept.
    #[error("request body failed after {received} bytes were stored: {message}")]
    BodyStream { received: u64, message: String },

    /// The content is not a JPEG or PNG (sniffed from its first bytes, whatever its name or hint).
    #[error("unsupported content ({detected}): only JPEG and PNG photos are accepted")]
    UnsupportedType { detected: &'static str },

    /// The header declares dimensions above the configured limits. Refused before decoding.
    #[error(
        "image of {width}x{height} px exceeds the limit of {max_side} px per side and {max_pixels} pixels"
    )]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },

    /// The image data is damaged or truncated, or uses a feature the decoders do not support.
    #[error("image could not be decoded: {0}")]
    Corrupt(String),

    /// A stored photo or derivative was asked for that does not exist.
    #[error("photo {0} is not stored")]
    NotStored(PhotoHash),

    /// Filesystem failure on the server side.
    #[error("photo storage failed while {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },

    /// The disk is full (or the store's quota reached): what the request brought was not kept.
    #[error("photo storage is full while {context}")]
    StorageFull { context: &'static str },

    /// A bug or a runtime failure on the server side (worker panicked, encoder failed, ...).
    #[error("internal photo pipeline error: {0}")]
    Internal(String),
}

impl PhotoError {
    /// A stable snake_case code for clients and logs. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidHash(_) => "invalid_hash",
            Self::EmptyUpload => "empty_upload",
            Self::TooLarge { .. } => "photo_too_large",
            Self::ExceedsDeclaredSize { .. } => "exceeds_declared_size",
            Self::SizeConflict { .. } => "upload_size_conflict",
            Self::UnfinishedQuota { .. } => "too_many_unfinished_uploads",
            Self::UploadNotFound(_) => "upload_not_found",
            Self::WrongOffset { .. } => "wrong_offset",
            Self::Incomplete { .. } => "upload_incomplete",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::BodyStream { .. } => "body_stream_failed",
            Self::UnsupportedType { .. } => "unsupported_media_type",
            Self::DimensionsTooLarge { .. } => "dimensions_too_large",
            Self::Corrupt(_) => "corrupt_image",
            Self::NotStored(_) => "photo_not_found",
            Self::Io { .. } => "storage_io",
            Self::StorageFull { .. } => "storage_full",
            Self::Internal(_) => "internal",
        }
    }

    /// True when the client caused the error (map to 4xx); false for server faults (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Self::Io { .. } | Self::StorageFull { .. } | Self::Internal(_)
        )
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| {
            if matches!(
                source.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ) {
                Self::StorageFull { context }
            } else {
                Self::Io { context, source }
            }
        }
    }
}
