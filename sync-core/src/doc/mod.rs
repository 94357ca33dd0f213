//! Typed Automerge documents.
//!
//! One document per visit (what inspectors record on site) and one per hazard (its details and
//! its rectification history), so a hazard outlives the visit that found it and a phone syncs
//! only what it needs. See `docs/adr/0002-document-granularity.md`.
//!
//! Every document starts with the same immutable *header* (id, kind, schema version, the
//! enterprise / agency / township it belongs to, creator): the header decides who may see and
//! change the document, so once written it never changes. The rest of the keys are split into
//! *details* (edited field by field, merged by Automerge) and, for hazards, the append-only
//! *events* list.

pub mod hazard;
pub mod visit;

use automerge::{Automerge, ReadDoc};
use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::ids::{AgencyId, EnterpriseId, TownshipId, UserId};

pub use hazard::HazardDoc;
pub use visit::VisitDoc;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// Largest number of bytes a saved document may have (a guard against abuse, far above real use).
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// Which kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// An inspection visit.
    Visit,
    /// A hazard with its rectification history.
    Hazard,
}

impl DocKind {
    /// Stable text form (also the `kind` key in the document).
    pub const fn as_str(&self) -> &'static str {
        match self {
            DocKind::Visit => "visit",
            DocKind::Hazard => "hazard",
        }
    }
    /// Parses the stable text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visit" => Some(DocKind::Visit),
            "hazard" => Some(DocKind::Hazard),
            _ => None,
        }
    }
}

/// Keys that form the immutable header, in both kinds of document.
pub const HEADER_KEYS: &[&str] = &[
    "schema",
    "kind",
    "id",
    "visit_id",
    "enterprise_id",
    "agency_id",
    "township_id",
    "created_by",
    "created_at",
];

/// The immutable part of every document: who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    /// The document's kind.
    pub kind: DocKind,
    /// The document id (a visit id or hazard id).
    pub id: uuid::Uuid,
    /// Schema version it was written with.
    pub schema: u64,
    /// The enterprise inspected.
    pub enterprise: EnterpriseId,
    /// The agency under contract that recorded it.
    pub agency: AgencyId,
    /// The township the enterprise belongs to.
    pub township: TownshipId,
    /// Who created it.
    pub created_by: UserId,
    /// When, milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// A document that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Automerge could not load the bytes.
    #[error("not an Automerge document: {0}")]
    Load(String),
    /// The content does not have the expected shape.
    #[error("document does not match the {kind} schema: {detail}")]
    Shape {
        /// Expected kind.
        kind: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Written by a newer schema than this build understands.
    #[error("document schema {found} is newer than supported {supported}; update the app")]
    SchemaTooNew {
        /// Version in the document.
        found: u64,
        /// Version this build supports.
        supported: u64,
    },
    /// Too large.
    #[error("document is {0} bytes, above the limit")]
    TooLarge(usize),
}

/// Raw header fields as stored in a document (ids as canonical UUID strings).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub(crate) struct RawHeader {
    pub schema: u64,
    pub kind: String,
    pub id: String,
    pub enterprise_id: String,
    pub agency_id: String,
    pub township_id: String,
    pub created_by: String,
    pub created_at: i64,
}

impl RawHeader {
    pub(crate) fn parse(&self) -> Result<Header, DocError> {
        let shape = |detail: String| DocError::Shape {
            kind: "header",
            detail,
        };
        if self.schema > SCHEMA_VERSION {
            return Err(DocError::SchemaTooNew {
                found: self.schema,
                supported: SCHEMA_VERSION,
            });
        }
        let kind =
            DocKind::parse(&self.kind).ok_or_else(|| shape(format!("kind {:?}", self.kind)))?;
        let id = uuid::Uuid::parse_str(&self.id).map_err(|_| shape("id".into()))?;
        Ok(Header {
            kind,
            id,
            schema: self.schema,
            enterprise: EnterpriseId::parse(&self.enterprise_id)
                .map_err(|e| shape(e.to_string()))?,
            agency: AgencyId::parse(&self.agency_id).map_err(|e| shape(e.to_string()))?,
            township: TownshipId::parse(&self.township_id).map_err(|e| shape(e.to_string()))?,
            created_by: UserId::parse(&self.created_by).map_err(|e| shape(e.to_string()))?,
            created_at: self.created_at,
        })
    }

    pub(crate) fn from_header(h: &Header) -> Self {
        Self {
            schema: h.schema,
            kind: h.kind.as_str().to_owned(),
            id: h.id.hyphenated().to_string(),
            enterprise_id: h.enterprise.to_string(),
            agency_id: h.agency.to_string(),
            township_id: h.township.to_string(),
            created_by: h.created_by.to_string(),
            created_at: h.created_at,
        }
    }
}

/// Reads the header of any document.
pub fn read_header(doc: &Automerge) -> Result<Header, DocError> {
    let raw: RawHeader = autosurgeon::hydrate(doc).map_err(|e| DocError::Shape {
        kind: "header",
        detail: e.to_string(),
    })?;
    raw.parse()
}

/// Reads which kind a document is without hydrating the rest.
pub fn read_kind(doc: &Automerge) -> Option<DocKind> {
    match doc.get(automerge::ROOT, "kind") {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(k) => DocKind::parse(k),
            _ => None,
        },
        _ => None,
    }
}

/// Loads a document from bytes with a size guard.
pub fn load(bytes: &[u8]) -> Result<Automerge, DocError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(DocError::TooLarge(bytes.len()));
    }
    Automerge::load(bytes).map_err(|e| DocError::Load(e.to_string()))
}

/// A typed view of one of the documents.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedDoc {
    /// A visit.
    Visit(Box<VisitDoc>),
    /// A hazard.
    Hazard(Box<HazardDoc>),
}

impl TypedDoc {
    /// Hydrates whichever kind `doc` is, checking its shape.
    pub fn hydrate(doc: &Automerge) -> Result<Self, DocError> {
        match read_kind(doc) {
            Some(DocKind::Visit) => {
                VisitDoc::hydrate_from(doc).map(|v| TypedDoc::Visit(Box::new(v)))
            }
            Some(DocKind::Hazard) => {
                HazardDoc::hydrate_from(doc).map(|h| TypedDoc::Hazard(Box::new(h)))
            }
            None => Err(DocError::Shape {
                kind: "document",
                detail: "missing or unknown kind".into(),
            }),
        }
    }

    /// The document's header.
    pub fn header(&self) -> Result<Header, DocError> {
        match self {
            TypedDoc::Visit(v) => v.header(),
            TypedDoc::Hazard(h) => h.header(),
        }
    }

    /// Every photo the document references: a hazard's photos and its rectification evidence,
    /// a visit's signature images. Who may see a photo follows from these.
    pub fn photo_refs(&self) -> Vec<&crate::domain::PhotoRef> {
        match self {
            TypedDoc::Hazard(h) => {
                let mut out: Vec<_> = h.photos.iter().collect();
                for ev in &h.events {
                    if let crate::rectification::EventKind::RectificationSubmitted {
                        photos, ..
                    } = &ev.kind
                    {
                        out.extend(photos.iter());
                    }
                }
                out
            }
            TypedDoc::Visit(v) => v
                .signature
                .iter()
                .map(|s| &s.image)
                .chain(v.signatures.iter().map(|s| &s.image))
                .collect(),
        }
    }
}

pub(crate) fn shape_err(kind: &'static str) -> impl Fn(autosurgeon::HydrateError) -> DocError {
    move |e| DocError::Shape {
        kind,
        detail: e.to_string(),
    }
}

/// Free text that several people may type into at once: stored as an Automerge text object and
/// written back as a character diff (`update_text`), so concurrent typing in different places
/// merges instead of one writer's value winning.
///
/// Chosen over `autosurgeon::Text` because that type refuses to reconcile when the document
/// gained changes since it was hydrated, which a typed whole-struct edit routinely hits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TextField(pub String);

impl TextField {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for TextField {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for TextField {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Display for TextField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Reconcile for TextField {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        use autosurgeon::reconcile::TextReconciler;
        let mut t = reconciler.text()?;
        t.update(&self.0)
    }
}

impl Hydrate for TextField {
    fn hydrate_text<D: autosurgeon::ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
    ) -> Result<Self, autosurgeon::HydrateError> {
        Ok(Self(doc.text(obj)?))
    }

    fn hydrate_string(s: &str) -> Result<Self, autosurgeon::HydrateError> {
        Ok(Self(s.to_owned()))
    }
}
