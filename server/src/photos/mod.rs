//! The photo pipeline: photos are legal evidence, so they are stored by content hash, exactly as
//! received, and only re-encoded copies without metadata are ever served.
//!
//! Transport-agnostic: an HTTP handler calls [`PhotoStore::begin_upload`], streams the request body
//! into [`PhotoStore::write_chunk`] (any `Stream<Item = Result<Bytes, E>>`, e.g. axum's
//! `Body::into_data_stream()`), then [`PhotoStore::finish`], which verifies the SHA-256 and size,
//! processes the photo off the async threads and returns the [`PhotoMeta`] to store in the database.
//!
//! ```no_run
//! use axum::body::Body;
//! use axum::extract::{Path, State};
//! use server::photos::{PhotoError, PhotoHash, PhotoStore, WriteOutcome};
//!
//! // PUT /photos/{sha256}/content?offset=N, the body streamed straight to disk.
//! async fn put_chunk(
//!     State(store): State<PhotoStore>,
//!     Path((sha, offset)): Path<(String, u64)>,
//!     body: Body,
//! ) -> Result<String, String> {
//!     let hash: PhotoHash = sha.parse().map_err(|e: PhotoError| e.code().to_owned())?;
//!     match store.write_chunk(hash, offset, body.into_data_stream()).await {
//!         Ok(WriteOutcome::Progress { received, .. }) => Ok(received.to_string()),
//!         Ok(WriteOutcome::AlreadyStored) => Ok("already_stored".into()),
//!         Err(err) => Err(err.code().to_owned()), // the integrator maps codes to 4xx/5xx
//!     }
//! }
//! ```
//!
//! One process owns a store root: the per-hash locks are in memory, not on disk.
//!
//! - [`store`]: layout on disk, resumable uploads, per-hash locking, atomic commits.
//! - [`process`]: type sniffing, dimension limits, decoding, display and thumbnail rendering.
//! - [`meta`]: EXIF capture time, GPS, orientation and camera into [`PhotoMeta`].
//! - [`probe`]: magic bytes and header dimensions, read without decoding.

pub mod error;
pub mod hash;
pub mod meta;
pub mod probe;
pub mod process;
pub mod store;

pub use error::PhotoError;
pub use hash::PhotoHash;
pub use meta::{CaptureTime, GpsPosition, PHOTO_META_VERSION, PhotoMeta};
pub use probe::MediaType;
pub use process::{EncodedJpeg, ProcessedPhoto, ProcessingLimits, make_thumbnail, process_photo};
pub use store::{
    BeginOutcome, FinishOutcome, PhotoConfig, PhotoStore, UploadStatus, Variant, WriteOutcome,
};
