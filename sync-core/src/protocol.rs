//! The sync protocol, version 1.
//!
//! In the steady state a sync of any number of documents is **one request and one response**:
//!
//! 1. The client sends its `cursor` (the last server sequence number it has fully received) and,
//!    for each document it changed, the Automerge changes made since the server heads it last saw.
//! 2. The server validates each document's batch against the policy ([`crate::validate`]),
//!    makes the accepted ones durable, and answers with the batches it refused (with reasons), the
//!    changes the client lacks in documents that changed since the cursor, whole documents that
//!    are newly in the client's scope (a fresh device gets whole documents, not Bloom-filter
//!    rounds), the ids of documents that left its scope, and the new cursor.
//!
//! Every message is one version byte followed by a [postcard] body. Messages are bounded
//! ([`MAX_MESSAGE_BYTES`], [`MAX_DOCS_PER_REQUEST`], [`MAX_CHANGES_PER_DOC`]); truncated,
//! oversized or garbage input is a [`ProtocolError`], never a panic. Re-sending a request is
//! harmless: changes the server already has are skipped, and changes the client already has are
//! ignored by Automerge; so duplicated, replayed or reordered messages lose nothing.
//!
//! ```
//! use sync_core::protocol::{SyncRequest, DocChanges, decode_request, encode_request};
//! use sync_core::doc::DocKind;
//! let req = SyncRequest { cursor: 0, docs: vec![DocChanges {
//!     id: uuid::Uuid::nil(), kind: DocKind::Visit, changes: vec![vec![1, 2, 3]] }] };
//! let bytes = encode_request(&req);
//! assert_eq!(decode_request(&bytes).unwrap(), req);
//! assert!(decode_request(&bytes[..bytes.len() - 1]).is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::doc::DocKind;
use crate::validate::ChangeRefusal;

/// The protocol version this build speaks (the first byte of every message).
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest message accepted either way.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Most documents in one request.
pub const MAX_DOCS_PER_REQUEST: usize = 5_000;
/// Most changes for one document in one request.
pub const MAX_CHANGES_PER_DOC: usize = 20_000;
/// HTTP media type of protocol messages.
pub const MEDIA_TYPE: &str = "application/vnd.inspect.sync.v1";

/// Changes the client made to one document since the server heads it last saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChanges {
    /// Document id.
    pub id: uuid::Uuid,
    /// Kind of document.
    pub kind: DocKind,
    /// Raw Automerge changes.
    pub changes: Vec<Bytes>,
}

/// Raw bytes, encoded compactly.
pub type Bytes = Vec<u8>;

/// A client's sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Last server sequence number fully received (0 on a fresh device).
    pub cursor: u64,
    /// Documents with local changes.
    pub docs: Vec<DocChanges>,
}

/// A refused batch for one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocRefusal {
    /// Document id.
    pub id: uuid::Uuid,
    /// Every reason, with the change to blame where one is.
    pub reasons: Vec<ChangeRefusal>,
}

/// What the client lacks of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Changes since the client's cursor.
    Changes(#[serde(with = "serde_bytes_vec")] Vec<Bytes>),
    /// The whole document (`Automerge::save`), for documents newly in scope.
    Whole(#[serde(with = "serde_bytes")] Bytes),
}

/// An update to one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocUpdate {
    /// Document id.
    pub id: uuid::Uuid,
    /// Kind of document.
    pub kind: DocKind,
    /// The content.
    pub payload: Payload,
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncResponse {
    /// The cursor to send next time.
    pub cursor: u64,
    /// Batches refused; every other batch in the request was accepted and is durable.
    pub refused: Vec<DocRefusal>,
    /// Documents the client lacks changes of, or lacks entirely.
    pub updates: Vec<DocUpdate>,
    /// Documents that left the client's scope (the phone drops them).
    pub removed: Vec<uuid::Uuid>,
    /// More updates are waiting: sync again at once.
    pub more: bool,
}

/// A message that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Empty body.
    #[error("empty sync message")]
    Empty,
    /// Larger than allowed.
    #[error("sync message is {0} bytes, above the limit of {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// Unknown version byte.
    #[error("unsupported sync protocol version {0} (this side speaks {PROTOCOL_VERSION})")]
    Version(u8),
    /// Truncated or garbage body.
    #[error("malformed sync message: {0}")]
    Malformed(String),
    /// Bytes after the end of the message.
    #[error("{0} unexpected bytes after the sync message")]
    Trailing(usize),
    /// A count above the limits.
    #[error("sync message has too many {what}: {count} (limit {limit})")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// Stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            ProtocolError::Empty => "sync_empty",
            ProtocolError::TooLarge(_) => "sync_too_large",
            ProtocolError::Version(_) => "sync_version",
            ProtocolError::Malformed(_) => "sync_malformed",
            ProtocolError::Trailing(_) => "sync_trailing_bytes",
            ProtocolError::TooMany { .. } => "sync_too_many",
        }
    }
}

fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let out = vec![PROTOCOL_VERSION];
    // Serialising plain structs into a Vec cannot fail.
    match postcard::to_extend(msg, out) {
        Ok(v) => v,
        Err(_) => unreachable!("postcard serialisation into a Vec is infallible"),
    }
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ProtocolError> {
    let (&version, body) = bytes.split_first().ok_or(ProtocolError::Empty)?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge(bytes.len()));
    }
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::Version(version));
    }
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtocolError::Trailing(rest.len()));
    }
    Ok(msg)
}

/// Encodes a request.
pub fn encode_request(req: &SyncRequest) -> Vec<u8> {
    encode(&WireRequest::from(req))
}

/// Decodes and bounds-checks a request.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, ProtocolError> {
    let wire: WireRequest = decode(bytes)?;
    let req = SyncRequest::from(wire);
    if req.docs.len() > MAX_DOCS_PER_REQUEST {
        return Err(ProtocolError::TooMany {
            what: "documents",
            count: req.docs.len(),
            limit: MAX_DOCS_PER_REQUEST,
        });
    }
    if let Some(d) = req
        .docs
        .iter()
        .find(|d| d.changes.len() > MAX_CHANGES_PER_DOC)
    {
        return Err(ProtocolError::TooMany {
            what: "changes in one document",
            count: d.changes.len(),
            limit: MAX_CHANGES_PER_DOC,
        });
    }
    Ok(req)
}

/// Encodes a response.
pub fn encode_response(resp: &SyncResponse) -> Vec<u8> {
    encode(resp)
}

/// Decodes a response.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, ProtocolError> {
    decode(bytes)
}

// The wire form of a request: byte strings encoded as bytes (length + raw) rather than as
// sequences of integers, which postcard would encode the same way but slower.
#[derive(Serialize, Deserialize)]
struct WireRequest {
    cursor: u64,
    docs: Vec<WireDoc>,
}

#[derive(Serialize, Deserialize)]
struct WireDoc {
    id: uuid::Uuid,
    kind: DocKind,
    #[serde(with = "serde_bytes_vec")]
    changes: Vec<Bytes>,
}

impl From<&SyncRequest> for WireRequest {
    fn from(r: &SyncRequest) -> Self {
        WireRequest {
            cursor: r.cursor,
            docs: r
                .docs
                .iter()
                .map(|d| WireDoc {
                    id: d.id,
                    kind: d.kind,
                    changes: d.changes.clone(),
                })
                .collect(),
        }
    }
}

impl From<WireRequest> for SyncRequest {
    fn from(w: WireRequest) -> Self {
        SyncRequest {
            cursor: w.cursor,
            docs: w
                .docs
                .into_iter()
                .map(|d| DocChanges {
                    id: d.id,
                    kind: d.kind,
                    changes: d.changes,
                })
                .collect(),
        }
    }
}

mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let wrapped: Vec<&serde_bytes::Bytes> =
            v.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
        wrapped.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<serde_bytes::ByteBuf> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(serde_bytes::ByteBuf::into_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SyncResponse {
        SyncResponse {
            cursor: 42,
            refused: vec![],
            updates: vec![DocUpdate {
                id: uuid::Uuid::nil(),
                kind: DocKind::Hazard,
                payload: Payload::Changes(vec![vec![9; 10]]),
            }],
            removed: vec![],
            more: false,
        }
    }

    #[test]
    fn garbage_wrong_version_and_trailing_bytes_are_errors() {
        assert_eq!(decode_request(&[]), Err(ProtocolError::Empty));
        assert_eq!(decode_request(&[9, 0, 0]), Err(ProtocolError::Version(9)));
        let mut ok = encode_response(&sample());
        assert_eq!(decode_response(&ok), Ok(sample()));
        ok.push(0);
        assert_eq!(decode_response(&ok), Err(ProtocolError::Trailing(1)));
        assert!(matches!(
            decode_request(&[1, 0xff, 0xff, 0xff]),
            Err(ProtocolError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn no_byte_string_makes_the_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }

        #[test]
        fn every_truncation_of_a_valid_message_is_an_error(cut in 0usize..1000) {
            let bytes = encode_response(&sample());
            let cut = cut % bytes.len();
            prop_assert!(decode_response(&bytes[..cut]).is_err());
        }
    }
}
