//! What an app sends: a new hazard and the patches of a visit's and a hazard's details.

use super::*;

/// Changes to a visit's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct VisitPatch {
    /// Place.
    #[uniffi(default = None)]
    pub place: Option<String>,
    /// Notes (merged character by character with others' typing).
    #[uniffi(default = None)]
    pub notes: Option<String>,
    /// Overall assessment.
    #[uniffi(default = None)]
    pub overall_assessment: Option<String>,
    /// GPS.
    #[uniffi(default = None)]
    pub gps: Option<GeoRecord>,
    /// Marks the visit finished at this time, ms.
    #[uniffi(default = None)]
    pub ended_at: Option<i64>,
    /// Adds inspectors (user ids) to the visit.
    #[uniffi(default = [])]
    pub add_inspectors: Vec<String>,
}

/// A new hazard's details.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HazardInput {
    /// Where on site.
    pub location: String,
    /// What is wrong.
    pub description: String,
    /// Category code (see sync-core `HAZARD_CATEGORIES`).
    pub category: String,
    /// `general` or `major`.
    pub grade: GradeRecord,
    /// Criterion (依据).
    pub criterion: String,
    /// Required measure.
    pub measure: String,
    /// Deadline, `YYYY-MM-DD`.
    pub deadline: String,
    /// Responsible person at the enterprise.
    pub responsible_person: String,
    /// Funds, yuan (major hazards).
    #[uniffi(default = None)]
    pub funds_yuan: Option<i64>,
    /// Emergency plan (major hazards).
    #[uniffi(default = "")]
    pub emergency_plan: String,
}

/// Changes to a hazard's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct HazardPatch {
    /// Location.
    #[uniffi(default = None)]
    pub location: Option<String>,
    /// Description.
    #[uniffi(default = None)]
    pub description: Option<String>,
    /// Category.
    #[uniffi(default = None)]
    pub category: Option<String>,
    /// Grade.
    #[uniffi(default = None)]
    pub grade: Option<GradeRecord>,
    /// Criterion.
    #[uniffi(default = None)]
    pub criterion: Option<String>,
    /// Measure.
    #[uniffi(default = None)]
    pub measure: Option<String>,
    /// Deadline.
    #[uniffi(default = None)]
    pub deadline: Option<String>,
    /// Responsible person.
    #[uniffi(default = None)]
    pub responsible_person: Option<String>,
    /// Funds.
    #[uniffi(default = None)]
    pub funds_yuan: Option<i64>,
    /// Emergency plan.
    #[uniffi(default = None)]
    pub emergency_plan: Option<String>,
}
