//! The visit document: what inspectors record on site.

use automerge::Automerge;
use autosurgeon::{Hydrate, Reconcile};

use super::{DocError, DocKind, Header, RawHeader, SCHEMA_VERSION, shape_err};
use crate::domain::{GeoPoint, PhotoRef};

/// What kind of visit (the first visit to a newly contracted enterprise carries a service plan
/// and an overall assessment).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VisitKind {
    /// 首次服务: the first visit after the contract.
    First,
    /// 定期检查: a regular visit.
    Routine,
    /// 复查: a re-inspection to verify rectification.
    Reinspection,
}

/// The result of one checklist item.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// Not looked at yet.
    Unchecked,
    /// 符合.
    Pass,
    /// 不符合: usually leads to a hazard.
    Fail,
    /// 不适用.
    NotApplicable,
}

/// One checklist line. Items merge by `id`, so two inspectors filling different items offline
/// both keep their work.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct ChecklistItem {
    /// Stable item id (a UUID string).
    #[key]
    pub id: String,
    /// What is checked.
    pub title: String,
    /// The outcome.
    pub result: CheckResult,
    /// Remarks.
    pub note: String,
}

/// The first visit's service plan (人员数量、专业、技术等级).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct ServicePlan {
    /// How many staff the agency assigns.
    pub staff_count: u64,
    /// Their specialties.
    pub specialties: Vec<String>,
    /// Their technical grades or qualifications.
    pub grades: Vec<String>,
    /// How often the agency will visit.
    pub frequency: String,
}

/// The enterprise head's signature on the hazard list.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Signature {
    /// The signer's name as written.
    pub signer_name: String,
    /// The signature image.
    pub image: PhotoRef,
    /// When, ms since the Unix epoch.
    pub signed_at: i64,
}

/// One hazard as the enterprise head saw it when signing: its id and the digest of its content
/// ([`crate::doc::HazardDoc::content_digest`]). A hazard whose content changed since, or that was
/// added later, is not covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Reconcile, Hydrate)]
pub struct SignedHazard {
    /// The hazard id.
    pub hazard: String,
    /// SHA-256 (hex) of the hazard's content at signing.
    pub digest: String,
}

/// The enterprise head's signature on the visit's hazard list. Immutable once recorded: the list
/// of signatures is append-only, and a new signature (after a hazard was added, say) is a new
/// record beside the old one.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct ListSignature {
    /// Signature id (UUID string): list items merge by it.
    #[key]
    pub id: String,
    /// The signer's name as written.
    pub signer_name: String,
    /// The signature image.
    pub image: PhotoRef,
    /// When, ms since the Unix epoch (the device's clock).
    pub signed_at: i64,
    /// The hazards the signature covers, with the content they had.
    pub hazards: Vec<SignedHazard>,
}

/// Whether a hazard is covered by a visit's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedState {
    /// A signature covers the hazard with the content it has now.
    Signed,
    /// A signature covers the hazard, but its content changed since.
    ChangedSinceSigning,
    /// No signature covers it (added after signing, or not signed yet).
    NotSigned,
}

impl SignedState {
    /// Simplified Chinese label, English beside it.
    pub const fn label(&self) -> &'static str {
        match self {
            SignedState::Signed => "已签字 / signed",
            SignedState::ChangedSinceSigning => "签字后有修改 / changed since signing",
            SignedState::NotSigned => "未签字 / not signed",
        }
    }
}

/// A visit document.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct VisitDoc {
    // ---- header (immutable) ----
    /// Schema version.
    pub schema: u64,
    /// Always `"visit"`.
    pub kind: String,
    /// Visit id.
    pub id: String,
    /// Enterprise id.
    pub enterprise_id: String,
    /// Agency id.
    pub agency_id: String,
    /// Township id.
    pub township_id: String,
    /// Creator's user id.
    pub created_by: String,
    /// Creation time, ms.
    pub created_at: i64,
    // ---- details (inspectors of the agency) ----
    /// Kind of visit.
    pub visit_kind: VisitKind,
    /// User ids of the inspectors on this visit.
    pub inspectors: Vec<String>,
    /// Start, ms since the Unix epoch.
    pub started_at: i64,
    /// End, when finished.
    pub ended_at: Option<i64>,
    /// Place description (workshop, building).
    pub place: String,
    /// Where, when the phone knew.
    pub gps: Option<GeoPoint>,
    /// Checklist results.
    pub checklist: Vec<ChecklistItem>,
    /// Only on a first visit.
    pub service_plan: Option<ServicePlan>,
    /// Overall assessment of the enterprise's safety status (first visit), typed by several.
    pub overall_assessment: super::TextField,
    /// Free notes.
    pub notes: super::TextField,
    /// The enterprise head's signature on the hazard list, as written before signatures were
    /// kept as a list: set once, never changed (the validator refuses any later write).
    pub signature: Option<Signature>,
    /// Signatures on the hazard list, append-only; each names the hazards it covers.
    #[autosurgeon(missing = "Vec::new")]
    pub signatures: Vec<ListSignature>,
}

impl VisitDoc {
    /// A new visit with an empty checklist.
    pub fn new(header: &Header, visit_kind: VisitKind, started_at: i64) -> Self {
        let raw = RawHeader::from_header(header);
        Self {
            schema: SCHEMA_VERSION,
            kind: DocKind::Visit.as_str().to_owned(),
            id: raw.id,
            enterprise_id: raw.enterprise_id,
            agency_id: raw.agency_id,
            township_id: raw.township_id,
            created_by: raw.created_by.clone(),
            created_at: raw.created_at,
            visit_kind,
            inspectors: vec![raw.created_by],
            started_at,
            ended_at: None,
            place: String::new(),
            gps: None,
            checklist: Vec::new(),
            service_plan: None,
            overall_assessment: super::TextField::default(),
            notes: super::TextField::default(),
            signature: None,
            signatures: Vec::new(),
        }
    }

    /// Whether the hazard `id`, whose content digest is now `digest`, is covered by a signature.
    /// The legacy single signature covers nothing by name: it shows as signed for the hazards of
    /// documents written before signatures named their hazards only through [`Self::signature`].
    pub fn signed_state(&self, id: &str, digest: &str) -> SignedState {
        let mut seen = false;
        for s in &self.signatures {
            for h in &s.hazards {
                if h.hazard == id {
                    if h.digest == digest {
                        return SignedState::Signed;
                    }
                    seen = true;
                }
            }
        }
        if seen {
            SignedState::ChangedSinceSigning
        } else {
            SignedState::NotSigned
        }
    }

    /// The latest signature on the hazard list (a recorded one, else the legacy one), as the
    /// notice shows it.
    pub fn latest_signature(&self) -> Option<Signature> {
        self.signatures
            .iter()
            .max_by_key(|s| (s.signed_at, s.id.clone()))
            .map(|s| Signature {
                signer_name: s.signer_name.clone(),
                image: s.image.clone(),
                signed_at: s.signed_at,
            })
            .or_else(|| self.signature.clone())
    }

    /// Whether the hazard list bears any signature at all (the legacy one or a new one).
    pub fn is_signed(&self) -> bool {
        self.signature.is_some() || !self.signatures.is_empty()
    }

    /// Hydrates and checks the shape.
    pub fn hydrate_from(doc: &Automerge) -> Result<Self, DocError> {
        let v: Self = autosurgeon::hydrate(doc).map_err(shape_err("visit"))?;
        v.header()?;
        if v.kind != DocKind::Visit.as_str() {
            return Err(DocError::Shape {
                kind: "visit",
                detail: format!("kind {:?}", v.kind),
            });
        }
        Ok(v)
    }

    /// The parsed header.
    pub fn header(&self) -> Result<Header, DocError> {
        RawHeader {
            schema: self.schema,
            kind: self.kind.clone(),
            id: self.id.clone(),
            enterprise_id: self.enterprise_id.clone(),
            agency_id: self.agency_id.clone(),
            township_id: self.township_id.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
        }
        .parse()
    }
}
