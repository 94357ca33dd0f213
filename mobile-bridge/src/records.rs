//! Records the app sees: plain mirrors of sync-core types, converted with `From`/`TryFrom` so
//! that sync-core never appears in the generated Kotlin, Swift or Python.

use serde::Serialize;
use sync_core::doc::visit::{CheckResult, ChecklistItem, VisitKind};
use sync_core::doc::{HazardDoc, VisitDoc};
use sync_core::domain::{GeoPoint, PhotoRef};
use sync_core::rectification::{Event, EventKind, HazardStatus};

use crate::BridgeError;

mod enums;
mod inputs;

pub use enums::*;
pub use inputs::*;

/// The logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserRecord {
    /// User id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// `inspector`, `enterprise_manager`, `supervisor` or `agency_admin`.
    pub role: RoleRecord,
    /// Organisation id.
    pub org_id: String,
    /// Display name.
    pub display_name: String,
    /// This phone's enrolled device id.
    pub device_id: String,
}

/// An enterprise the user may see (cached for offline use).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnterpriseRecord {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Unified social credit code.
    pub uscc: String,
    /// Address.
    pub address: String,
    /// Township id.
    pub township_id: String,
    /// Industry.
    pub industry: String,
    /// Industrial park.
    pub park: Option<String>,
}

impl From<crate::store::EnterpriseRow> for EnterpriseRecord {
    fn from(e: crate::store::EnterpriseRow) -> Self {
        Self {
            id: e.id,
            name: e.name,
            uscc: e.uscc,
            address: e.address,
            township_id: e.township_id,
            industry: e.industry,
            park: e.park,
        }
    }
}

/// A place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, uniffi::Record)]
pub struct GeoRecord {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

impl From<GeoPoint> for GeoRecord {
    fn from(g: GeoPoint) -> Self {
        Self {
            lat: g.lat,
            lon: g.lon,
        }
    }
}

impl TryFrom<GeoRecord> for GeoPoint {
    type Error = BridgeError;
    fn try_from(g: GeoRecord) -> Result<Self, BridgeError> {
        Ok(GeoPoint::new(g.lat, g.lon)?)
    }
}

/// A photo reference.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct PhotoRecord {
    /// SHA-256 of the uploaded (prepared: downscaled, re-encoded) bytes; the server verifies it.
    pub sha256: String,
    /// SHA-256 of the file the photo was taken from (the camera original, kept as evidence),
    /// when the uploaded bytes were prepared from another file. `None` for web uploads and for
    /// references recorded before the platform kept it.
    pub original_sha256: Option<String>,
    /// Size of the uploaded bytes.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// Capture time, ms.
    pub captured_at: Option<i64>,
    /// Where.
    pub gps: Option<GeoRecord>,
    /// Who added it.
    pub added_by: String,
    /// Where the prepared file is on this phone, if it is here.
    pub local_path: Option<String>,
    /// The file had EXIF metadata that could not be read: capture time and position are
    /// unknown for that reason. Show it beside the photo.
    pub exif_unreadable: bool,
}

impl From<&PhotoRef> for PhotoRecord {
    fn from(p: &PhotoRef) -> Self {
        Self {
            sha256: p.sha256.clone(),
            original_sha256: p.original_sha256.clone(),
            size: p.size,
            media_type: p.media_type.clone(),
            captured_at: p.captured_at,
            gps: p.gps.map(Into::into),
            added_by: p.added_by.clone(),
            local_path: None,
            exif_unreadable: p.exif_unreadable == Some(true),
        }
    }
}

/// One checklist line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct ChecklistItemRecord {
    /// Stable id; leave empty to add a new line.
    pub id: String,
    /// What is checked.
    pub title: String,
    /// Outcome.
    pub result: CheckResultRecord,
    /// Remarks.
    pub note: String,
}

impl From<&ChecklistItem> for ChecklistItemRecord {
    fn from(c: &ChecklistItem) -> Self {
        Self {
            id: c.id.clone(),
            title: c.title.clone(),
            result: c.result.into(),
            note: c.note.clone(),
        }
    }
}

/// The signature on the hazard list.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct SignatureRecord {
    /// Signer's name.
    pub signer_name: String,
    /// Signature image.
    pub image: PhotoRecord,
    /// When, ms.
    pub signed_at: i64,
}

/// A visit.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct VisitRecord {
    /// Id.
    pub id: String,
    /// Enterprise.
    pub enterprise_id: String,
    /// Agency.
    pub agency_id: String,
    /// Township.
    pub township_id: String,
    /// Creator.
    pub created_by: String,
    /// Kind.
    pub visit_kind: VisitKindRecord,
    /// Inspectors' user ids.
    pub inspectors: Vec<String>,
    /// Start, ms.
    pub started_at: i64,
    /// End, ms.
    pub ended_at: Option<i64>,
    /// Place.
    pub place: String,
    /// Where.
    pub gps: Option<GeoRecord>,
    /// Checklist.
    pub checklist: Vec<ChecklistItemRecord>,
    /// Overall assessment (first visit).
    pub overall_assessment: String,
    /// Notes.
    pub notes: String,
    /// Signature.
    pub signature: Option<SignatureRecord>,
}

impl From<&VisitDoc> for VisitRecord {
    fn from(v: &VisitDoc) -> Self {
        Self {
            id: v.id.clone(),
            enterprise_id: v.enterprise_id.clone(),
            agency_id: v.agency_id.clone(),
            township_id: v.township_id.clone(),
            created_by: v.created_by.clone(),
            visit_kind: v.visit_kind.into(),
            inspectors: v.inspectors.clone(),
            started_at: v.started_at,
            ended_at: v.ended_at,
            place: v.place.clone(),
            gps: v.gps.map(Into::into),
            checklist: v.checklist.iter().map(Into::into).collect(),
            overall_assessment: v.overall_assessment.to_string(),
            notes: v.notes.to_string(),
            // The latest signature (recorded ones first, else the one written before signatures
            // were kept as a list).
            signature: v.latest_signature().map(|s| SignatureRecord {
                signer_name: s.signer_name,
                image: (&s.image).into(),
                signed_at: s.signed_at,
            }),
        }
    }
}

/// One rectification event.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct EventRecord {
    /// Id.
    pub id: String,
    /// Kind (`notified`, `signed_for`, `rectification_submitted`, `verified`, `closed`, …).
    pub kind: EventKindRecord,
    /// Chinese label.
    pub label_zh: String,
    /// When, ms.
    pub at: i64,
    /// Author's user id.
    pub author: String,
    /// Author's role.
    pub role: RoleRecord,
    /// Free text of the event (note, reason, signer, date).
    pub text: String,
    /// Photos (rectification evidence).
    pub photos: Vec<PhotoRecord>,
    /// Why the event had no effect, when it had none.
    pub ignored: Option<String>,
    /// The date the event names, `YYYY-MM-DD`: the deadline of a notice, the date an extension
    /// asks for or grants.
    pub date: Option<String>,
    /// The grade a notice or a regrade sets.
    pub grade: Option<GradeRecord>,
}

fn event_record(e: &Event, status: &HazardStatus) -> EventRecord {
    let (date, grade) = match &e.kind {
        EventKind::NoticeIssued { grade, deadline } => {
            (Some(deadline.clone()), Some((*grade).into()))
        }
        EventKind::Regraded { grade, .. } => (None, Some((*grade).into())),
        EventKind::ExtensionRequested { until, .. } | EventKind::ExtensionGranted { until, .. } => {
            (Some(until.clone()), None)
        }
        _ => (None, None),
    };
    let (text, photos) = match &e.kind {
        EventKind::Notified => (String::new(), vec![]),
        EventKind::NoticeIssued { grade, deadline } => {
            (format!("{} {deadline}", grade.label_zh()), vec![])
        }
        EventKind::Regraded { grade, reason } => (format!("{} {reason}", grade.label_zh()), vec![]),
        EventKind::SignedFor { signer } => (signer.clone(), vec![]),
        EventKind::ExtensionRequested { reason, .. } => (reason.clone(), vec![]),
        EventKind::ExtensionGranted { until, .. } => (until.clone(), vec![]),
        EventKind::ExtensionRefused { reason, .. } => (reason.clone(), vec![]),
        EventKind::RectificationSubmitted { note, photos } => {
            (note.clone(), photos.iter().map(Into::into).collect())
        }
        EventKind::Verified { note, .. }
        | EventKind::SupervisionPut { note }
        | EventKind::SupervisionLifted { note }
        | EventKind::Closed { note } => (note.clone(), vec![]),
        EventKind::ReportedToRegulator { to } => (to.clone(), vec![]),
        EventKind::Reopened { reason } => (reason.clone(), vec![]),
    };
    EventRecord {
        id: e.id.clone(),
        kind: (&e.kind).into(),
        label_zh: e.kind.label_zh().to_owned(),
        at: e.at,
        author: e.author.clone(),
        role: e.role.into(),
        text,
        photos,
        ignored: status
            .outcomes
            .iter()
            .find(|o| o.event == e.id)
            .and_then(|o| o.ignored.map(|w| w.message().to_owned())),
        date,
        grade,
    }
}

/// An extension request waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct ExtensionRequestRecord {
    /// The request's event id (what `grant_extension` answers).
    pub request_event_id: String,
    /// The date asked for, `YYYY-MM-DD`.
    pub until: String,
    /// Why, as the enterprise wrote it.
    pub reason: String,
}

/// A hazard with its current state.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct HazardRecord {
    /// Id.
    pub id: String,
    /// Visit that found it.
    pub visit_id: String,
    /// Enterprise.
    pub enterprise_id: String,
    /// Agency.
    pub agency_id: String,
    /// Township.
    pub township_id: String,
    /// Creator.
    pub created_by: String,
    /// Location.
    pub location: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Grade.
    pub grade: GradeRecord,
    /// Criterion.
    pub criterion: String,
    /// Measure.
    pub measure: String,
    /// Original deadline.
    pub deadline: String,
    /// Deadline after granted extensions.
    pub current_deadline: Option<String>,
    /// Responsible person.
    pub responsible_person: String,
    /// Funds.
    pub funds_yuan: Option<i64>,
    /// Emergency plan.
    pub emergency_plan: String,
    /// Photos as found.
    pub photos: Vec<PhotoRecord>,
    /// State (`open`, `notified`, `in_progress`, `submitted`, `accepted`, `closed`).
    pub state: HazardStateRecord,
    /// State label in Chinese.
    pub state_zh: String,
    /// History.
    pub events: Vec<EventRecord>,
    /// Fields two people set at once, offline: every value is kept until an inspector of the
    /// agency picks one (`resolve_conflict`).
    pub conflicts: Vec<ConflictRecord>,
    /// The extension request waiting for an answer, if any.
    pub pending_extension: Option<ExtensionRequestRecord>,
    /// Under a regulator's supervision (挂牌督办).
    pub under_supervision: bool,
    /// When the hazard was reported to the regulator, ms, if it was.
    pub reported_at: Option<i64>,
    /// Past its current deadline by the phone's date in China and not yet rectified (as in
    /// the summaries).
    pub overdue: bool,
}

/// A field holding concurrent values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct ConflictRecord {
    /// The field's key (`responsible_person`, ...).
    pub field: String,
    /// The field's name, Chinese first.
    pub label: String,
    /// Every value; the first is the one shown until resolved.
    pub values: Vec<String>,
}

/// Whether the signed-in user may take an action on a hazard now, and if not, why
/// (`sync_core::actions::allowed_actions`, the same answer the server and the web give).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct ActionRecord {
    /// Stable name (`notify`, `sign_for`, `close`, ...).
    pub action: String,
    /// Label, Chinese first.
    pub label: String,
    /// Whether it is possible now.
    pub allowed: bool,
    /// When not: the rule's stable code.
    pub why_not: Option<String>,
    /// When not: the rule in words, Chinese first.
    pub reason: Option<String>,
}

impl From<sync_core::actions::Availability> for ActionRecord {
    fn from(a: sync_core::actions::Availability) -> Self {
        Self {
            action: a.action.as_str().to_owned(),
            label: a.action.label().to_owned(),
            allowed: a.allowed(),
            why_not: a.why_not.map(|w| w.code().to_owned()),
            reason: a.why_not.map(|w| w.message().to_owned()),
        }
    }
}

impl From<sync_core::edit::FieldConflict> for ConflictRecord {
    fn from(c: sync_core::edit::FieldConflict) -> Self {
        Self {
            field: c.field.to_owned(),
            label: format!(
                "{} / {}",
                sync_core::limits::field_label_zh(c.field),
                sync_core::limits::field_label_en(c.field)
            ),
            values: c.values,
        }
    }
}

impl From<&HazardDoc> for HazardRecord {
    fn from(h: &HazardDoc) -> Self {
        let status = match h.header() {
            Ok(header) => {
                sync_core::rectification::fold(&header, h.grade, h.original_deadline(), &h.events)
            }
            Err(_) => sync_core::rectification::fold(
                &placeholder_header(),
                h.grade,
                h.original_deadline(),
                &h.events,
            ),
        };
        Self {
            id: h.id.clone(),
            visit_id: h.visit_id.clone(),
            enterprise_id: h.enterprise_id.clone(),
            agency_id: h.agency_id.clone(),
            township_id: h.township_id.clone(),
            created_by: h.created_by.clone(),
            location: h.location.clone(),
            description: h.description.to_string(),
            category: h.category.clone(),
            // The grade in force (the notice's and later regrades'), not an edited field.
            grade: status.grade.into(),
            criterion: h.criterion.clone(),
            measure: h.measure.to_string(),
            deadline: h.deadline.clone(),
            current_deadline: status.deadline.map(|d| d.to_string()),
            responsible_person: h.responsible_person.clone(),
            funds_yuan: h.funds_yuan,
            emergency_plan: h.emergency_plan.clone(),
            photos: h.photos.iter().map(Into::into).collect(),
            state: status.state.into(),
            state_zh: status.state.label_zh().to_owned(),
            events: h.events.iter().map(|e| event_record(e, &status)).collect(),
            conflicts: Vec::new(),
            pending_extension: status.pending_extension.as_ref().map(|(id, until)| {
                ExtensionRequestRecord {
                    request_event_id: id.clone(),
                    until: until.to_string(),
                    reason: h
                        .events
                        .iter()
                        .find(|e| &e.id == id)
                        .and_then(|e| match &e.kind {
                            EventKind::ExtensionRequested { reason, .. } => Some(reason.clone()),
                            _ => None,
                        })
                        .unwrap_or_default(),
                }
            }),
            under_supervision: status.under_supervision,
            reported_at: status.reported_at,
            // Filled in with the phone's date by the client (a conversion has no clock).
            overdue: false,
        }
    }
}

fn placeholder_header() -> sync_core::doc::Header {
    sync_core::doc::Header {
        kind: sync_core::doc::DocKind::Hazard,
        id: uuid::Uuid::nil(),
        schema: sync_core::doc::SCHEMA_VERSION,
        enterprise: sync_core::ids::EnterpriseId::from_uuid(uuid::Uuid::nil()),
        agency: sync_core::ids::AgencyId::from_uuid(uuid::Uuid::nil()),
        township: sync_core::ids::TownshipId::from_uuid(uuid::Uuid::nil()),
        created_by: sync_core::ids::UserId::from_uuid(uuid::Uuid::nil()),
        created_at: 0,
    }
}

/// A row of a list: a document's summary, without hydrating it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HazardSummary {
    /// Id.
    pub id: String,
    /// Enterprise.
    pub enterprise_id: String,
    /// Visit.
    pub visit_id: Option<String>,
    /// State.
    pub state: HazardStateRecord,
    /// Grade.
    pub grade: GradeRecord,
    /// Current deadline.
    pub deadline: Option<String>,
    /// Location.
    pub location: String,
    /// Description.
    pub description: String,
    /// Past its deadline while rectification is still owed (by the phone's date in China).
    pub overdue: bool,
    /// Photos as found.
    pub photo_count: u32,
    /// The date a pending extension request asks for.
    pub pending_extension_until: Option<String>,
    /// Under a regulator's supervision.
    pub under_supervision: bool,
    /// When it was reported to the regulator, ms.
    pub reported_at: Option<i64>,
    /// When it was recorded, ms.
    pub created_at: i64,
    /// Sync state of the row.
    pub sync_state: ItemState,
}

/// One refused document in a sync.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefusedItem {
    /// Document id.
    pub doc_id: String,
    /// Reasons.
    pub reasons: Vec<String>,
}

/// What one `sync_now` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Documents whose changes were sent.
    pub sent: u32,
    /// Documents updated from the server.
    pub received: u32,
    /// Documents refused.
    pub refused: Vec<RefusedItem>,
    /// Documents removed from this phone (left the user's scope).
    pub removed: u32,
    /// Photos whose upload finished in this sync.
    pub photos_uploaded: u32,
    /// Photos still waiting.
    pub photos_pending: u32,
    /// Why photos did not upload, if they did not.
    pub photo_error: Option<String>,
    /// Sync requests made (a backlog goes in several).
    pub requests: u32,
    /// Bytes of sync requests sent.
    pub bytes_up: u64,
    /// Bytes of sync answers received.
    pub bytes_down: u64,
}

/// A visit in a list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VisitSummary {
    /// Id.
    pub id: String,
    /// Enterprise.
    pub enterprise_id: String,
    /// Place (workshop, building).
    pub place: String,
    /// Whether the visit has ended.
    pub ended: bool,
    /// Hazards of the visit this phone holds.
    pub hazards: u32,
    /// Whether the server has it all.
    pub item_state: ItemState,
}

/// A user of the phone user's own organisation (for adding inspectors to a visit).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ColleagueRecord {
    /// User id (what `VisitPatch::add_inspectors` takes).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Role.
    pub role: RoleRecord,
}

/// One entry of the user's inbox: something that happened to a hazard in scope, or a reminder
/// (overdue, deadline near, evidence or an extension waiting, a major hazard reported late).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InboxItemRecord {
    pub hazard_id: String,
    /// The event's id, or for a reminder what it concerns (`overdue:2026-03-05`).
    pub event_id: String,
    /// Stable kind: `hazard.<event kind>`, `hazard.overdue`, `reminder.deadline_near`,
    /// `reminder.awaiting_verification`, `reminder.extension_pending`,
    /// `major_hazard.report_late`.
    pub kind: String,
    /// What happened, Chinese first (`隐患整改已逾期 / rectification overdue`).
    pub label: String,
    /// The hazard's description.
    pub description: String,
    pub enterprise_name: String,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: i64,
    /// When the server noted it, ms: pass the newest as `since_ms` to fetch only what is new.
    pub received_at_ms: i64,
}

/// A hazard category an app offers: its code (what `HazardInput::category` takes) and names.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CategoryRecord {
    /// Code.
    pub code: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
}

/// The hazard categories a hazard may have, in the order an app offers them.
#[uniffi::export]
pub fn hazard_categories() -> Vec<CategoryRecord> {
    sync_core::domain::HAZARD_CATEGORIES
        .iter()
        .map(|(code, zh, en)| CategoryRecord {
            code: (*code).to_owned(),
            name_zh: (*zh).to_owned(),
            name_en: (*en).to_owned(),
        })
        .collect()
}

/// Work on the phone the server does not have yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct UnsyncedWork {
    /// Documents with edits not yet acknowledged.
    pub documents: u32,
    /// Photos not yet uploaded.
    pub photos: u32,
}

/// A value the user typed that `repair` discarded, to offer again.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DiscardedValue {
    /// Field name (`description`, `events`, `checklist`, …).
    pub field: String,
    /// The user's value, JSON.
    pub local_value: String,
    /// The value kept (the server's), JSON.
    pub server_value: String,
}

/// What `repair` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RepairReport {
    /// Document.
    pub doc_id: String,
    /// What the refused version had that the repaired one has not.
    pub discarded: Vec<DiscardedValue>,
    /// Refused versions kept on this phone for this document.
    pub kept_versions: u64,
}
