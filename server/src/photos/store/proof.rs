//! Proof of holding: someone who did not upload a stored photo sends its bytes like any
//! upload, to show they hold it (they may have taken the same file). The bytes are kept apart,
//! hashed at the last one, compared and discarded; the stored photo is never touched. Until
//! the last byte the answers are those of an ordinary upload, so nobody learns from them that
//! a photo exists (ADR 0010).

use std::fmt::Display;
use std::path::PathBuf;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt as _;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use super::{PhotoError, PhotoHash, PhotoStore, hash_prefix};

/// Answer to [`PhotoStore::prove_chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofOutcome {
    /// The chunk was appended; `received` is the next offset.
    Progress { received: u64 },
    /// Every byte arrived and they are the stored photo's: the sender holds it.
    Proven,
}

impl PhotoStore {
    /// Bytes received so far of `who`'s proof that they hold the stored photo `hash` (see
    /// [`Self::prove_chunk`]), `None` when none is under way.
    pub async fn proof_received(
        &self,
        hash: PhotoHash,
        who: uuid::Uuid,
    ) -> Result<Option<u64>, PhotoError> {
        match tokio::fs::metadata(self.proof_path(hash, who)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PhotoError::io("reading a proof upload")(e)),
        }
    }

    /// Appends to `who`'s proof that they hold the stored photo `hash`: someone who did not
    /// upload a stored photo sends its bytes like any upload (same offsets, same chunks), and
    /// when the last byte arrives they are hashed and compared. The bytes are then discarded;
    /// the stored photo is not touched. A mismatch discards the proof.
    pub async fn prove_chunk<S, E>(
        &self,
        hash: PhotoHash,
        who: uuid::Uuid,
        offset: u64,
        size: u64,
        body: S,
    ) -> Result<ProofOutcome, PhotoError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Display,
    {
        let stored = self.meta(hash).await?.ok_or(PhotoError::NotStored(hash))?;
        if size != stored.byte_size {
            return Err(PhotoError::SizeConflict {
                hash,
                existing: stored.byte_size,
                requested: size,
            });
        }
        let path = self.proof_path(hash, who);
        let lease = self.lease(hash);
        let _slot = lease.handle.lock().await;
        // A new proof counts against its sender's allowance of unfinished uploads, as a new
        // upload does: otherwise proofs left unfinished would hold disk without bound.
        let starting = match tokio::fs::try_exists(&path).await {
            Ok(true) => None,
            _ => Some(self.reserve_unfinished(who, size).await?),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .await
            .map_err(PhotoError::io("opening a proof upload"))?;
        // The proof's file exists now, so later starts count it.
        drop(starting);
        let received = file
            .metadata()
            .await
            .map_err(PhotoError::io("reading a proof upload's size"))?
            .len();
        if offset != received {
            return Err(PhotoError::WrongOffset {
                expected: received,
                got: offset,
            });
        }
        let mut position = received;
        let mut body = std::pin::pin!(body);
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| PhotoError::BodyStream {
                received: position,
                message: e.to_string(),
            })?;
            if position + piece.len() as u64 > size {
                drop(file);
                let _ = tokio::fs::remove_file(&path).await;
                return Err(PhotoError::ExceedsDeclaredSize { declared: size });
            }
            if let Err(e) = file.write_all(&piece).await {
                drop(file);
                let _ = tokio::fs::remove_file(&path).await;
                return Err(PhotoError::io("writing a proof upload")(e));
            }
            position += piece.len() as u64;
        }
        file.flush()
            .await
            .map_err(PhotoError::io("flushing a proof upload"))?;
        drop(file);
        if position < size {
            return Ok(ProofOutcome::Progress { received: position });
        }
        let actual = PhotoHash::from_bytes(hash_prefix(&path, size).await?.finalize().into());
        let _ = tokio::fs::remove_file(&path).await;
        if actual != hash {
            return Err(PhotoError::HashMismatch {
                expected: hash,
                actual,
            });
        }
        Ok(ProofOutcome::Proven)
    }

    fn proof_path(&self, hash: PhotoHash, who: uuid::Uuid) -> PathBuf {
        self.inner
            .root
            .join("uploads")
            .join(format!("{hash}.{}.proof", who.simple()))
    }
}
