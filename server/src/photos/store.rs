//! The filesystem photo store: resumable uploads in, content-addressed originals and derived copies out.
//!
//! Layout under the root (the integrator passes `<data>/photos`):
//!
//! ```text
//! blobs/ab/cd/<sha256>               the original bytes, never modified, never served
//! derived/ab/cd/<sha256>.display.jpg full size, orientation applied, no metadata
//! derived/ab/cd/<sha256>.thumb.jpg   thumbnail, no metadata
//! derived/ab/cd/<sha256>.meta.json   the PhotoMeta record
//! uploads/<sha256>.part              bytes received so far (its length is the resume offset)
//! uploads/<sha256>.upload.json       declared size and type hint of an upload in progress
//! tmp/                               files being written before their atomic rename
//! ```
//!
//! Invariants:
//! - A blob exists only if its bytes hash to its name and its derived copies and meta were written
//!   first: the rename of the original into `blobs/` is the commit point, made after fsync.
//! - Every operation on one hash holds that hash's async lock, so two phones uploading the same photo
//!   cannot interleave; the second one sees `AlreadyStored` or a `WrongOffset` telling it where to go on.
//! - Upload state lives on disk, so a restarted server resumes where the phone left off. The running
//!   SHA-256 is kept in memory as a shortcut only; when it is missing (restart, cancelled request) the
//!   partial file is re-hashed, and `finish` always checks the hash before anything is stored.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;

mod proof;

pub use proof::ProofOutcome;

use super::error::PhotoError;
use super::hash::PhotoHash;
use super::meta::{PHOTO_META_VERSION, PhotoMeta};
use super::process::{ProcessingLimits, process_photo};

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct PhotoConfig {
    /// Largest original accepted, in bytes. Default 25 MiB.
    pub max_photo_bytes: u64,
    /// How many photos are decoded and encoded at once. Default: the number of cores.
    pub max_concurrent_processing: usize,
    /// Dimension limits and output settings.
    pub limits: ProcessingLimits,
    /// Declared bytes of unfinished uploads one user may have started (they free up as the
    /// uploads finish or expire). Default 256 MiB.
    pub max_unfinished_bytes_per_user: u64,
    /// Unfinished uploads one user may have started. Default 64.
    pub max_unfinished_uploads_per_user: usize,
    /// Bytes that photos being processed may hold at once, by
    /// [`super::process::decode_memory_estimate`]; a photo waits until its estimate fits (one
    /// larger than the whole budget runs alone). Default 1 GiB.
    pub decode_memory_budget: u64,
}

impl Default for PhotoConfig {
    fn default() -> Self {
        Self {
            max_photo_bytes: 25 * 1024 * 1024,
            max_concurrent_processing: std::thread::available_parallelism().map_or(2, usize::from),
            limits: ProcessingLimits::default(),
            max_unfinished_bytes_per_user: 256 * 1024 * 1024,
            max_unfinished_uploads_per_user: 64,
            decode_memory_budget: 1 << 30,
        }
    }
}

/// Answer to [`PhotoStore::begin_upload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginOutcome {
    /// Send bytes from `offset` (0 for a new upload, more when resuming).
    Ready { offset: u64, expected_size: u64 },
    /// The photo is already stored; nothing to send.
    AlreadyStored,
}

/// Answer to [`PhotoStore::upload_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStatus {
    /// No upload and no stored photo with this hash.
    NotStarted,
    /// `received` bytes are stored; resume from that offset.
    InProgress { received: u64, expected_size: u64 },
    /// The photo is stored.
    Stored,
}

/// Answer to [`PhotoStore::write_chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The chunk was appended and synced; `received` is the next offset.
    Progress { received: u64, expected_size: u64 },
    /// Someone else finished the same photo meanwhile; stop sending.
    AlreadyStored,
}

/// Answer to [`PhotoStore::finish`].
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    /// Verified, processed and stored now.
    Stored(PhotoMeta),
    /// It was stored before (by this or another upload); nothing changed.
    AlreadyStored(PhotoMeta),
}

impl FinishOutcome {
    /// The metadata, however the photo came to be stored.
    pub fn meta(&self) -> &PhotoMeta {
        match self {
            Self::Stored(meta) | Self::AlreadyStored(meta) => meta,
        }
    }
}

/// The copies of a photo that may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Full size, orientation applied, no metadata.
    Display,
    /// Small, orientation applied, no metadata.
    Thumbnail,
}

const UPLOAD_SIDECAR_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct UploadSidecar {
    version: u32,
    sha256: PhotoHash,
    expected_size: u64,
    media_type_hint: Option<String>,
    started_at: jiff::Timestamp,
    /// Who began it, counted against their allowance; absent in sidecars of older versions.
    #[serde(default)]
    started_by: Option<uuid::Uuid>,
}

/// The decode memory budget in MiB permits (at least one, at most what a semaphore holds).
fn budget_mib(config: &PhotoConfig) -> usize {
    usize::try_from(config.decode_memory_budget.div_ceil(1 << 20))
        .unwrap_or(u32::MAX as usize)
        .clamp(1, u32::MAX as usize)
}

/// In-memory state of one hash, guarded by its lock.
#[derive(Default)]
struct Slot {
    /// Running hash of the first `.0` bytes of the partial file.
    hasher: Option<(u64, Sha256)>,
}

type SlotHandle = Arc<tokio::sync::Mutex<Slot>>;

/// Content-addressed photo store with resumable uploads. Cheap to clone; share one per server.
#[derive(Clone)]
pub struct PhotoStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    config: PhotoConfig,
    slots: Mutex<HashMap<PhotoHash, SlotHandle>>,
    processing: Arc<Semaphore>,
    /// The decode memory budget, one permit per MiB.
    decode_memory: Arc<Semaphore>,
    /// Held while a new upload is checked against its starter's allowance and recorded, so two
    /// uploads begun at once cannot both fit into the last room.
    starting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PhotoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhotoStore")
            .field("root", &self.inner.root)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl PhotoStore {
    /// Opens (creating if needed) the store under `root`. Uploads in progress survive a reopen.
    pub async fn open(root: impl Into<PathBuf>, config: PhotoConfig) -> Result<Self, PhotoError> {
        let root = root.into();
        for dir in ["blobs", "derived", "uploads", "tmp"] {
            tokio::fs::create_dir_all(root.join(dir))
                .await
                .map_err(PhotoError::io("creating the photo store directories"))?;
        }
        // Leftovers of writes cut short by a crash; nothing refers to them.
        let mut tmp = tokio::fs::read_dir(root.join("tmp"))
            .await
            .map_err(PhotoError::io("listing the temporary directory"))?;
        while let Some(entry) = tmp
            .next_entry()
            .await
            .map_err(PhotoError::io("listing the temporary directory"))?
        {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
        let permits = config.max_concurrent_processing.max(1);
        let decode_memory = Arc::new(Semaphore::new(budget_mib(&config)));
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                config,
                slots: Mutex::new(HashMap::new()),
                processing: Arc::new(Semaphore::new(permits)),
                decode_memory,
                starting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The settings this store runs with.
    pub fn config(&self) -> &PhotoConfig {
        &self.inner.config
    }

    /// Starts an upload, or reports where to resume one, or that the photo is already stored.
    ///
    /// `media_type_hint` is what the client claims (kept for diagnostics only; the type is sniffed).
    /// A new upload begun by `started_by` must fit their allowance of unfinished uploads
    /// ([`PhotoConfig::max_unfinished_bytes_per_user`]); resuming one is always allowed.
    pub async fn begin_upload(
        &self,
        hash: PhotoHash,
        expected_size: u64,
        media_type_hint: Option<&str>,
        started_by: Option<uuid::Uuid>,
    ) -> Result<BeginOutcome, PhotoError> {
        if expected_size == 0 {
            return Err(PhotoError::EmptyUpload);
        }
        let max = self.inner.config.max_photo_bytes;
        if expected_size > max {
            return Err(PhotoError::TooLarge {
                size: expected_size,
                max,
            });
        }
        let lease = self.lease(hash);
        let _slot = lease.handle.lock().await;
        if self.is_stored(hash).await? {
            return Ok(BeginOutcome::AlreadyStored);
        }
        if let Some(sidecar) = self.read_sidecar(hash).await? {
            if sidecar.expected_size != expected_size {
                return Err(PhotoError::SizeConflict {
                    hash,
                    existing: sidecar.expected_size,
                    requested: expected_size,
                });
            }
            let offset = self.received(hash).await?;
            return Ok(BeginOutcome::Ready {
                offset,
                expected_size,
            });
        }
        let _starting = match started_by {
            Some(who) => Some(self.reserve_unfinished(who, expected_size).await?),
            None => None,
        };
        tokio::fs::File::create(self.part_path(hash))
            .await
            .map_err(PhotoError::io("creating the partial upload"))?;
        let sidecar = UploadSidecar {
            version: UPLOAD_SIDECAR_VERSION,
            sha256: hash,
            expected_size,
            media_type_hint: media_type_hint.map(|h| h.chars().take(100).collect()),
            started_at: jiff::Timestamp::now(),
            started_by,
        };
        let json = serde_json::to_vec(&sidecar)
            .map_err(|e| PhotoError::Internal(format!("serializing upload state: {e}")))?;
        let root = self.inner.root.clone();
        let target = self.sidecar_path(hash);
        blocking(move || write_atomic(&root, &target, &json)).await?;
        Ok(BeginOutcome::Ready {
            offset: 0,
            expected_size,
        })
    }

    /// Where an upload stands: how many bytes are stored (the offset to resume from).
    pub async fn upload_status(&self, hash: PhotoHash) -> Result<UploadStatus, PhotoError> {
        let lease = self.lease(hash);
        let _slot = lease.handle.lock().await;
        if self.is_stored(hash).await? {
            return Ok(UploadStatus::Stored);
        }
        match self.read_sidecar(hash).await? {
            None => Ok(UploadStatus::NotStarted),
            Some(sidecar) => Ok(UploadStatus::InProgress {
                received: self.received(hash).await?,
                expected_size: sidecar.expected_size,
            }),
        }
    }

    /// Appends a stream of bytes at `offset`, which must equal the bytes received so far.
    ///
    /// Streams: each piece is written and hashed as it arrives, never buffered whole. The bytes are
    /// fsynced before returning, so the returned offset survives a crash. If the body fails midway,
    /// what arrived is kept and [`PhotoError::BodyStream`] carries the offset to resume from. More
    /// bytes than declared discard the upload.
    pub async fn write_chunk<S, E>(
        &self,
        hash: PhotoHash,
        offset: u64,
        body: S,
    ) -> Result<WriteOutcome, PhotoError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Display,
    {
        let lease = self.lease(hash);
        let mut slot = lease.handle.lock().await;
        if self.is_stored(hash).await? {
            return Ok(WriteOutcome::AlreadyStored);
        }
        let sidecar = self
            .read_sidecar(hash)
            .await?
            .ok_or(PhotoError::UploadNotFound(hash))?;
        let declared = sidecar.expected_size;
        let part = self.part_path(hash);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .await
            .map_err(PhotoError::io("opening the partial upload"))?;
        let received = file
            .metadata()
            .await
            .map_err(PhotoError::io("reading the partial upload's size"))?
            .len();
        if offset != received {
            return Err(PhotoError::WrongOffset {
                expected: received,
                got: offset,
            });
        }
        // Taken out of the slot while writing: if this future is dropped midway, the slot is
        // left without a hasher and the next user re-hashes from disk.
        let mut hasher = match slot.hasher.take() {
            Some((at, hasher)) if at == received => hasher,
            _ => hash_prefix(&part, received).await?,
        };
        file.seek(SeekFrom::Start(received))
            .await
            .map_err(PhotoError::io("seeking in the partial upload"))?;
        let mut position = received;
        let mut body = std::pin::pin!(body);
        let mut body_error = None;
        while let Some(piece) = body.next().await {
            let piece = match piece {
                Ok(piece) => piece,
                Err(err) => {
                    body_error = Some(err.to_string());
                    break;
                }
            };
            if position + piece.len() as u64 > declared {
                drop(file);
                self.discard_upload(hash).await;
                return Err(PhotoError::ExceedsDeclaredSize { declared });
            }
            if let Err(e) = file.write_all(&piece).await {
                let e = PhotoError::io("writing the partial upload")(e);
                if matches!(e, PhotoError::StorageFull { .. }) {
                    // Nothing half-written is kept when the disk is full: the phone resends
                    // from its own copy once there is room.
                    drop(file);
                    self.discard_upload(hash).await;
                }
                return Err(e);
            }
            hasher.update(&piece);
            position += piece.len() as u64;
        }
        let synced = match file.flush().await {
            Ok(()) => file.sync_data().await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            let e = PhotoError::io("syncing the partial upload")(e);
            if matches!(e, PhotoError::StorageFull { .. }) {
                drop(file);
                self.discard_upload(hash).await;
            }
            return Err(e);
        }
        slot.hasher = Some((position, hasher));
        if let Some(message) = body_error {
            return Err(PhotoError::BodyStream {
                received: position,
                message,
            });
        }
        Ok(WriteOutcome::Progress {
            received: position,
            expected_size: declared,
        })
    }

    /// Verifies size and SHA-256, processes the photo and commits it. A mismatch or a photo that is
    /// refused (type, dimensions, damage) discards the upload and stores nothing.
    pub async fn finish(&self, hash: PhotoHash) -> Result<FinishOutcome, PhotoError> {
        let lease = self.lease(hash);
        let mut slot = lease.handle.lock().await;
        if self.is_stored(hash).await? {
            self.discard_upload(hash).await;
            let meta = self.meta(hash).await?.ok_or(PhotoError::NotStored(hash))?;
            return Ok(FinishOutcome::AlreadyStored(meta));
        }
        let sidecar = self
            .read_sidecar(hash)
            .await?
            .ok_or(PhotoError::UploadNotFound(hash))?;
        let received = self.received(hash).await?;
        if received != sidecar.expected_size {
            return Err(PhotoError::Incomplete {
                received,
                expected: sidecar.expected_size,
            });
        }
        let part = self.part_path(hash);
        let hasher = match slot.hasher.take() {
            Some((at, hasher)) if at == received => hasher,
            _ => hash_prefix(&part, received).await?,
        };
        let actual = PhotoHash::from_bytes(hasher.finalize().into());
        if actual != hash {
            self.discard_upload(hash).await;
            return Err(PhotoError::HashMismatch {
                expected: hash,
                actual,
            });
        }

        let permit = Arc::clone(&self.inner.processing)
            .acquire_owned()
            .await
            .map_err(|_| PhotoError::Internal("processing semaphore closed".into()))?;
        let limits = self.inner.config.limits.clone();
        let bytes = tokio::fs::read(&part)
            .await
            .map_err(PhotoError::io("reading the upload"))?;
        // Unreadable headers are refused by processing itself; they reserve the margin only.
        let estimate = super::process::inspect(&bytes, &limits).map_or(16 << 20, |(m, w, h)| {
            super::process::decode_memory_estimate(m, w, h, bytes.len() as u64, &limits)
        });
        let memory = self.hold_decode_memory(estimate).await?;
        let processed = blocking(move || {
            let _permit = permit;
            let _memory = memory;
            // A decoder panic on hostile input is the input's fault: refuse it like damage.
            std::panic::catch_unwind(|| process_photo(&bytes, &limits)).unwrap_or_else(|_| {
                Err(PhotoError::Corrupt("a decoder failed on this image".into()))
            })
        })
        .await;
        let processed = match processed {
            Ok(processed) => processed,
            Err(err) => {
                if err.is_client_error() {
                    self.discard_upload(hash).await;
                }
                return Err(err);
            }
        };

        let meta = PhotoMeta {
            version: PHOTO_META_VERSION,
            sha256: hash,
            byte_size: received,
            media_type: processed.media_type,
            width: processed.width,
            height: processed.height,
            orientation: processed.exif.orientation,
            display_width: processed.display.width,
            display_height: processed.display.height,
            thumbnail_width: processed.thumbnail.width,
            thumbnail_height: processed.thumbnail.height,
            captured_at: processed.exif.captured_at,
            gps: processed.exif.gps,
            camera_make: processed.exif.camera_make,
            camera_model: processed.exif.camera_model,
        };
        let meta_json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| PhotoError::Internal(format!("serializing photo meta: {e}")))?;
        let root = self.inner.root.clone();
        let derived = [
            (
                self.variant_path(hash, Variant::Display),
                processed.display.bytes,
            ),
            (
                self.variant_path(hash, Variant::Thumbnail),
                processed.thumbnail.bytes,
            ),
            (self.meta_path(hash), meta_json),
        ];
        let blob = self.blob_path(hash);
        let sidecar_path = self.sidecar_path(hash);
        blocking(move || {
            for (path, bytes) in &derived {
                write_atomic(&root, path, bytes)?;
            }
            commit_original(&part, &blob)?;
            // The blob is committed; a leftover sidecar would only be cleaned up later.
            let _ = std::fs::remove_file(&sidecar_path);
            Ok(())
        })
        .await?;
        Ok(FinishOutcome::Stored(meta))
    }

    /// Drops an upload in progress. Returns whether there was one.
    pub async fn abort_upload(&self, hash: PhotoHash) -> Result<bool, PhotoError> {
        let lease = self.lease(hash);
        let mut slot = lease.handle.lock().await;
        slot.hasher = None;
        let existed = self.read_sidecar(hash).await?.is_some();
        self.discard_upload(hash).await;
        Ok(existed)
    }

    /// Discards uploads with no bytes received for `idle` (phones that never came back), so partial
    /// files do not fill the disk. Meant for a periodic task. Returns how many were discarded.
    pub async fn discard_idle_uploads(
        &self,
        idle: std::time::Duration,
    ) -> Result<usize, PhotoError> {
        let list_err = PhotoError::io("listing uploads in progress");
        let mut entries = tokio::fs::read_dir(self.inner.root.join("uploads"))
            .await
            .map_err(list_err)?;
        let mut idle_hashes = Vec::new();
        let mut proofs = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(PhotoError::io("listing uploads in progress"))?
        {
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| n.ends_with(".proof")) {
                let modified = entry.metadata().await.and_then(|m| m.modified());
                if modified
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|e| e >= idle)
                {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                    proofs += 1;
                }
                continue;
            }
            let Some(hash) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".upload.json"))
                .and_then(|h| h.parse::<PhotoHash>().ok())
            else {
                continue;
            };
            // Last activity: the partial file's mtime, or the sidecar's if no byte arrived yet.
            let part = tokio::fs::metadata(self.part_path(hash)).await;
            let modified = match part {
                Ok(meta) => meta.modified(),
                Err(_) => entry.metadata().await.and_then(|m| m.modified()),
            };
            let elapsed = modified.ok().and_then(|m| m.elapsed().ok());
            if elapsed.is_some_and(|e| e >= idle) {
                idle_hashes.push(hash);
            }
        }
        let mut discarded = proofs;
        for hash in idle_hashes {
            let lease = self.lease(hash);
            let mut slot = lease.handle.lock().await;
            slot.hasher = None;
            self.discard_upload(hash).await;
            discarded += 1;
        }
        Ok(discarded)
    }

    /// Whether the original with this hash is stored.
    pub async fn is_stored(&self, hash: PhotoHash) -> Result<bool, PhotoError> {
        tokio::fs::try_exists(self.blob_path(hash))
            .await
            .map_err(PhotoError::io("checking for a stored photo"))
    }

    /// The metadata of a stored photo.
    pub async fn meta(&self, hash: PhotoHash) -> Result<Option<PhotoMeta>, PhotoError> {
        match tokio::fs::read(self.meta_path(hash)).await {
            Ok(json) => serde_json::from_slice(&json)
                .map(Some)
                .map_err(|e| PhotoError::Internal(format!("photo meta of {hash} unreadable: {e}"))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(PhotoError::io("reading photo meta")(err)),
        }
    }

    /// Opens a servable copy (always `image/jpeg`) and returns it with its length, for streaming.
    /// The original is deliberately not servable.
    pub async fn open_variant(
        &self,
        hash: PhotoHash,
        variant: Variant,
    ) -> Result<(tokio::fs::File, u64), PhotoError> {
        let file = match tokio::fs::File::open(self.variant_path(hash, variant)).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(PhotoError::NotStored(hash));
            }
            Err(err) => return Err(PhotoError::io("opening a photo copy")(err)),
        };
        let len = file
            .metadata()
            .await
            .map_err(PhotoError::io("reading a photo copy's size"))?
            .len();
        Ok((file, len))
    }

    /// Re-hashes a stored original: true when its bytes still match its name (evidence audit).
    pub async fn verify_original(&self, hash: PhotoHash) -> Result<bool, PhotoError> {
        let path = self.blob_path(hash);
        let len = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(PhotoError::NotStored(hash));
            }
            Err(err) => return Err(PhotoError::io("reading a stored photo")(err)),
        };
        let hasher = hash_prefix(&path, len).await?;
        Ok(PhotoHash::from_bytes(hasher.finalize().into()) == hash)
    }

    // ---- locking -------------------------------------------------------------------------------

    /// Takes a share of the hash's lock; it is forgotten on drop if nobody else needs it.
    fn lease(&self, hash: PhotoHash) -> SlotLease<'_> {
        let handle = {
            let mut slots = self
                .inner
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(hash).or_default())
        };
        SlotLease {
            store: self,
            hash,
            handle,
        }
    }

    fn release_slot(&self, hash: PhotoHash, handle: &SlotHandle) {
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // New clones are only made under the map lock, so a count of 2 (map + us) cannot grow now.
        if Arc::strong_count(handle) == 2
            && handle.try_lock().is_ok_and(|slot| slot.hasher.is_none())
        {
            slots.remove(&hash);
        }
    }

    // ---- paths and files -----------------------------------------------------------------------

    fn shard(&self, base: &str, hash: PhotoHash) -> PathBuf {
        let hex = hash.to_hex();
        self.inner.root.join(base).join(&hex[0..2]).join(&hex[2..4])
    }

    fn blob_path(&self, hash: PhotoHash) -> PathBuf {
        self.shard("blobs", hash).join(hash.to_hex())
    }

    pub(crate) fn variant_path(&self, hash: PhotoHash, variant: Variant) -> PathBuf {
        let suffix = match variant {
            Variant::Display => "display.jpg",
            Variant::Thumbnail => "thumb.jpg",
        };
        self.shard("derived", hash).join(format!("{hash}.{suffix}"))
    }

    fn meta_path(&self, hash: PhotoHash) -> PathBuf {
        self.shard("derived", hash)
            .join(format!("{hash}.meta.json"))
    }

    fn part_path(&self, hash: PhotoHash) -> PathBuf {
        self.inner.root.join("uploads").join(format!("{hash}.part"))
    }

    fn sidecar_path(&self, hash: PhotoHash) -> PathBuf {
        self.inner
            .root
            .join("uploads")
            .join(format!("{hash}.upload.json"))
    }

    async fn read_sidecar(&self, hash: PhotoHash) -> Result<Option<UploadSidecar>, PhotoError> {
        match tokio::fs::read(self.sidecar_path(hash)).await {
            Ok(json) => match serde_json::from_slice::<UploadSidecar>(&json) {
                Ok(sidecar) if sidecar.sha256 == hash => Ok(Some(sidecar)),
                // Unreadable or foreign state cannot be resumed; start over.
                _ => {
                    self.discard_upload(hash).await;
                    Ok(None)
                }
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(PhotoError::io("reading upload state")(err)),
        }
    }

    /// Reserves `bytes` of the decode memory budget (at most the whole budget), waiting until
    /// they are free; released when the permit drops. `finish` reserves each photo's estimate;
    /// public so a benchmark or test can take part of the budget.
    pub async fn hold_decode_memory(
        &self,
        bytes: u64,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, PhotoError> {
        let mib = bytes
            .div_ceil(1 << 20)
            .clamp(1, budget_mib(&self.inner.config) as u64);
        Arc::clone(&self.inner.decode_memory)
            .acquire_many_owned(u32::try_from(mib).unwrap_or(u32::MAX))
            .await
            .map_err(|_| PhotoError::Internal("decode memory semaphore closed".into()))
    }

    /// How many unfinished uploads `who` began, and their declared bytes. Reads every upload's
    /// record: called only when a new upload begins, and each user's count is bounded by the
    /// allowance itself.
    /// Checks that `who` may start one more unfinished upload (or proof of holding) of `size`
    /// bytes. The guard it returns must be held until the new upload's files exist, so that
    /// two starts at once cannot both pass the check.
    pub(super) async fn reserve_unfinished(
        &self,
        who: uuid::Uuid,
        size: u64,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, PhotoError> {
        let guard = self.inner.starting.lock().await;
        let (uploads, bytes) = self.unfinished_of(who).await?;
        let config = &self.inner.config;
        if uploads >= config.max_unfinished_uploads_per_user
            || bytes.saturating_add(size) > config.max_unfinished_bytes_per_user
        {
            return Err(PhotoError::UnfinishedQuota {
                uploads,
                bytes,
                max_uploads: config.max_unfinished_uploads_per_user,
                max_bytes: config.max_unfinished_bytes_per_user,
            });
        }
        Ok(guard)
    }

    /// How many uploads are begun and not finished (for the metrics).
    pub async fn unfinished_uploads(&self) -> Result<usize, PhotoError> {
        let list_err = || PhotoError::io("listing uploads in progress");
        let mut entries = tokio::fs::read_dir(self.inner.root.join("uploads"))
            .await
            .map_err(list_err())?;
        let mut n = 0;
        while let Some(entry) = entries.next_entry().await.map_err(list_err())? {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".upload.json"))
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Whether the store can be written now: a probe file is written, synced and removed in
    /// its temporary directory (for `/readyz`).
    pub async fn probe(&self) -> Result<(), PhotoError> {
        let path = self
            .inner
            .root
            .join("tmp")
            .join(format!("ready-{}.probe", uuid::Uuid::new_v4().simple()));
        let err = PhotoError::io("probing the photo store");
        let mut file = tokio::fs::File::create(&path).await.map_err(err)?;
        let written = async {
            use tokio::io::AsyncWriteExt as _;
            file.write_all(b"ok").await?;
            file.sync_all().await
        }
        .await;
        let removed = tokio::fs::remove_file(&path).await;
        written.map_err(PhotoError::io("probing the photo store"))?;
        removed.map_err(PhotoError::io("probing the photo store"))
    }

    /// What `who` holds unfinished: uploads they began (counted at their declared size) and
    /// proofs of holding under way (counted at the stored photo's size, which a proof must
    /// reach).
    async fn unfinished_of(&self, who: uuid::Uuid) -> Result<(usize, u64), PhotoError> {
        let proof_suffix = format!(".{}.proof", who.simple());
        let list_err = || PhotoError::io("listing uploads in progress");
        let mut entries = tokio::fs::read_dir(self.inner.root.join("uploads"))
            .await
            .map_err(list_err())?;
        let (mut uploads, mut bytes) = (0usize, 0u64);
        while let Some(entry) = entries.next_entry().await.map_err(list_err())? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if let Some(hex) = name.strip_suffix(proof_suffix.as_str()) {
                if let Ok(hash) = hex.parse::<PhotoHash>()
                    && let Some(stored) = self.meta(hash).await?
                {
                    uploads += 1;
                    bytes = bytes.saturating_add(stored.byte_size);
                }
                continue;
            }
            if !name.ends_with(".upload.json") {
                continue;
            }
            // A record removed meanwhile (finished or expired) no longer counts.
            let Ok(json) = tokio::fs::read(entry.path()).await else {
                continue;
            };
            if let Ok(sidecar) = serde_json::from_slice::<UploadSidecar>(&json)
                && sidecar.started_by == Some(who)
            {
                uploads += 1;
                bytes = bytes.saturating_add(sidecar.expected_size);
            }
        }
        Ok((uploads, bytes))
    }

    async fn received(&self, hash: PhotoHash) -> Result<u64, PhotoError> {
        match tokio::fs::metadata(self.part_path(hash)).await {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(err) => Err(PhotoError::io("reading the partial upload's size")(err)),
        }
    }

    async fn discard_upload(&self, hash: PhotoHash) {
        let _ = tokio::fs::remove_file(self.sidecar_path(hash)).await;
        let _ = tokio::fs::remove_file(self.part_path(hash)).await;
    }
}

/// A share of one hash's lock (see [`PhotoStore::lease`]).
struct SlotLease<'a> {
    store: &'a PhotoStore,
    hash: PhotoHash,
    handle: SlotHandle,
}

impl Drop for SlotLease<'_> {
    fn drop(&mut self) {
        self.store.release_slot(self.hash, &self.handle);
    }
}

/// SHA-256 of the first `len` bytes of a file, read in blocks.
async fn hash_prefix(path: &Path, len: u64) -> Result<Sha256, PhotoError> {
    let mut hasher = Sha256::new();
    if len == 0 {
        return Ok(hasher);
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(PhotoError::io("opening a file to hash it"))?;
    let mut reader = file.take(len);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(PhotoError::io("reading a file to hash it"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PhotoError> + Send + 'static,
) -> Result<T, PhotoError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PhotoError::Internal(format!("photo worker failed: {e}")))?
}

/// Writes `bytes` to `target` via a temp file in `<root>/tmp`: fsync, rename, fsync the directory.
fn write_atomic(root: &Path, target: &Path, bytes: &[u8]) -> Result<(), PhotoError> {
    use std::io::Write as _;
    let dir = target
        .parent()
        .ok_or_else(|| PhotoError::Internal("target path has no directory".into()))?;
    std::fs::create_dir_all(dir).map_err(PhotoError::io("creating a shard directory"))?;
    let mut tmp = tempfile_in(&root.join("tmp"))?;
    tmp.1
        .write_all(bytes)
        .and_then(|()| tmp.1.sync_all())
        .map_err(PhotoError::io("writing a temporary file"))?;
    drop(tmp.1);
    std::fs::rename(&tmp.0, target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp.0);
        PhotoError::io("renaming a file into place")(e)
    })?;
    sync_dir(dir)
}

fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), PhotoError> {
    loop {
        let name = format!(".{:016x}.tmp", rand_u64());
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(PhotoError::io("creating a temporary file")(err)),
        }
    }
}

/// Unique-enough names for temp files without a RNG dependency: hash of time, pid and a counter.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((COUNTER.fetch_add(1, Ordering::Relaxed), std::process::id()))
}

/// Moves the verified partial file into `blobs/`: the commit point of an upload.
fn commit_original(part: &Path, blob: &Path) -> Result<(), PhotoError> {
    let dir = blob
        .parent()
        .ok_or_else(|| PhotoError::Internal("blob path has no directory".into()))?;
    std::fs::create_dir_all(dir).map_err(PhotoError::io("creating a shard directory"))?;
    std::fs::File::open(part)
        .and_then(|f| f.sync_all())
        .map_err(PhotoError::io("syncing the verified upload"))?;
    std::fs::rename(part, blob).map_err(PhotoError::io("committing the original"))?;
    sync_dir(dir)?;
    if let Some(uploads) = part.parent() {
        sync_dir(uploads)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), PhotoError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(PhotoError::io("syncing a directory"))
}
