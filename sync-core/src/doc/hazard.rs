//! The hazard document: details recorded by the inspector and the append-only rectification
//! history that everyone involved adds to.

use automerge::Automerge;
use autosurgeon::{Hydrate, Reconcile};

use super::{DocError, DocKind, Header, RawHeader, SCHEMA_VERSION, shape_err};
use crate::domain::{Deadline, Grade, PhotoRef};
use crate::ids::VisitId;
use crate::rectification::Event;

/// A hazard document.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct HazardDoc {
    // ---- header (immutable) ----
    /// Schema version.
    pub schema: u64,
    /// Always `"hazard"`.
    pub kind: String,
    /// Hazard id.
    pub id: String,
    /// The visit that found it.
    pub visit_id: String,
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
    /// Where on site (车间、部位).
    pub location: String,
    /// What is wrong; several people may type into it.
    pub description: super::TextField,
    /// One of [`crate::domain::HAZARD_CATEGORIES`].
    pub category: String,
    /// General or major.
    pub grade: Grade,
    /// The criterion it matches (依据), e.g. an article of MEM order No. 10.
    pub criterion: String,
    /// The required rectification measure.
    pub measure: super::TextField,
    /// Deadline, `YYYY-MM-DD` in China Standard Time.
    pub deadline: String,
    /// Responsible person at the enterprise.
    pub responsible_person: String,
    /// Funds set aside (major hazards, 五落实), in yuan.
    pub funds_yuan: Option<i64>,
    /// Emergency plan while it is being fixed (major hazards, 五落实).
    pub emergency_plan: String,
    /// Photos of the hazard as found.
    pub photos: Vec<PhotoRef>,
    // ---- history (append-only) ----
    /// Rectification events, in causal order.
    pub events: Vec<Event>,
}

impl HazardDoc {
    /// A new hazard with empty details.
    pub fn new(header: &Header, visit: VisitId, grade: Grade, deadline: Deadline) -> Self {
        let raw = RawHeader::from_header(header);
        Self {
            schema: SCHEMA_VERSION,
            kind: DocKind::Hazard.as_str().to_owned(),
            id: raw.id,
            visit_id: visit.to_string(),
            enterprise_id: raw.enterprise_id,
            agency_id: raw.agency_id,
            township_id: raw.township_id,
            created_by: raw.created_by,
            created_at: raw.created_at,
            location: String::new(),
            description: super::TextField::default(),
            category: "other".into(),
            grade,
            criterion: String::new(),
            measure: super::TextField::default(),
            deadline: deadline.to_string(),
            responsible_person: String::new(),
            funds_yuan: None,
            emergency_plan: String::new(),
            photos: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Hydrates and checks the shape.
    pub fn hydrate_from(doc: &Automerge) -> Result<Self, DocError> {
        let h: Self = autosurgeon::hydrate(doc).map_err(shape_err("hazard"))?;
        h.header()?;
        if h.kind != DocKind::Hazard.as_str() {
            return Err(DocError::Shape {
                kind: "hazard",
                detail: format!("kind {:?}", h.kind),
            });
        }
        VisitId::parse(&h.visit_id).map_err(|e| DocError::Shape {
            kind: "hazard",
            detail: e.to_string(),
        })?;
        Ok(h)
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

    /// SHA-256 (hex) of the content the enterprise head signs: the id and every detail a
    /// rectification notice shows. Each field is length-prefixed, so no two contents collide by
    /// shifting text between fields.
    pub fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut d = Sha256::new();
        let funds = self.funds_yuan.map(|f| f.to_string()).unwrap_or_default();
        let photos: Vec<&str> = self.photos.iter().map(|p| p.sha256.as_str()).collect();
        let photos = photos.join(",");
        for part in [
            self.id.as_str(),
            self.location.as_str(),
            self.description.as_str(),
            self.category.as_str(),
            self.grade.as_str(),
            self.criterion.as_str(),
            self.measure.as_str(),
            self.deadline.as_str(),
            self.responsible_person.as_str(),
            funds.as_str(),
            self.emergency_plan.as_str(),
            photos.as_str(),
        ] {
            d.update((part.len() as u64).to_be_bytes());
            d.update(part.as_bytes());
        }
        hex::encode(d.finalize())
    }

    /// Which of 五落实 (responsible person, measure, funds, deadline, emergency plan) are
    /// missing, by field key. Empty when all five are in place.
    pub fn missing_five_in_place(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.responsible_person.trim().is_empty() {
            missing.push("responsible_person");
        }
        if self.measure.as_str().trim().is_empty() {
            missing.push("measure");
        }
        if self.funds_yuan.is_none_or(|f| f <= 0) {
            missing.push("funds_yuan");
        }
        if self.original_deadline().is_none() {
            missing.push("deadline");
        }
        if self.emergency_plan.trim().is_empty() {
            missing.push("emergency_plan");
        }
        missing
    }

    /// The current state of the hazard, folded from its history.
    pub fn status(&self) -> Result<crate::rectification::HazardStatus, DocError> {
        let header = self.header()?;
        Ok(crate::rectification::fold(
            &header,
            self.grade,
            self.original_deadline(),
            &self.events,
        ))
    }

    /// The original deadline, if it parses.
    pub fn original_deadline(&self) -> Option<Deadline> {
        Deadline::parse(&self.deadline).ok()
    }
}
