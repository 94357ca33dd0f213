//! Domain vocabulary shared by every part of the system: roles, grades, categories, photo
//! references, deadlines in China Standard Time.
//!
//! Values that come from outside are parsed here (`parse` / `TryFrom`) so that the documents
//! and the policy only ever see valid values.

use std::fmt;

use autosurgeon::{Hydrate, Reconcile};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, OrgId, Sha256, UserId};

/// What a user is, which decides what they may change (see [`crate::policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Agency staff who record visits and hazards and verify rectification.
    Inspector,
    /// The enterprise's responsible person: signs, rectifies, submits evidence.
    EnterpriseManager,
    /// A township / county regulator: oversees, closes major hazards.
    Supervisor,
    /// Agency back office: staff, contracts, reports. Reads documents, writes none.
    AgencyAdmin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Inspector,
        Role::EnterpriseManager,
        Role::Supervisor,
        Role::AgencyAdmin,
    ];

    /// The stable text form used in databases, tokens and URLs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Role::Inspector => "inspector",
            Role::EnterpriseManager => "enterprise_manager",
            Role::Supervisor => "supervisor",
            Role::AgencyAdmin => "agency_admin",
        }
    }

    /// Parses the stable text form.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(match s {
            "inspector" => Role::Inspector,
            "enterprise_manager" => Role::EnterpriseManager,
            "supervisor" => Role::Supervisor,
            "agency_admin" => Role::AgencyAdmin,
            other => return Err(DomainError::UnknownRole(other.chars().take(40).collect())),
        })
    }

    /// Simplified Chinese label for interfaces.
    pub const fn label_zh(&self) -> &'static str {
        match self {
            Role::Inspector => "检查员",
            Role::EnterpriseManager => "企业负责人",
            Role::Supervisor => "监管人员",
            Role::AgencyAdmin => "机构管理员",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated party behind an edit: who, in which role and organisation, on which device.
///
/// The server builds it from the access token; the phone from its enrolment. `actors` are the
/// Automerge actor ids enrolled for this device: every change in a batch must carry one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The user.
    pub user: UserId,
    /// The user's role.
    pub role: Role,
    /// The agency, enterprise or township the user belongs to.
    pub org: OrgId,
    /// The device the edit comes from.
    pub device: DeviceId,
    /// Automerge actor ids bound to this user and device.
    pub actors: Vec<automerge::ActorId>,
}

/// Hazard grade (隐患等级).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// 一般隐患: low harm, fixable at once.
    General,
    /// 重大事故隐患: needs stoppage and time, or cannot be fixed by the enterprise alone.
    Major,
}

impl Grade {
    /// Stable text form.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Grade::General => "general",
            Grade::Major => "major",
        }
    }
    /// Parses the stable text form.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "general" => Ok(Grade::General),
            "major" => Ok(Grade::Major),
            other => Err(DomainError::UnknownGrade(other.chars().take(40).collect())),
        }
    }
    /// Simplified Chinese label.
    pub const fn label_zh(&self) -> &'static str {
        match self {
            Grade::General => "一般隐患",
            Grade::Major => "重大事故隐患",
        }
    }
}

/// Hazard categories used in the field (a closed list so that figures can be grouped).
pub const HAZARD_CATEGORIES: &[(&str, &str, &str)] = &[
    ("management", "安全管理", "Safety management"),
    ("electrical", "电气安全", "Electrical"),
    ("fire", "消防安全", "Fire safety"),
    ("machinery", "机械防护", "Machinery guarding"),
    ("hazardous_chemicals", "危险化学品", "Hazardous chemicals"),
    ("combustible_dust", "粉尘防爆", "Combustible dust"),
    ("confined_space", "有限空间", "Confined spaces"),
    ("ammonia_refrigeration", "涉氨制冷", "Ammonia refrigeration"),
    ("special_equipment", "特种设备", "Special equipment"),
    ("work_at_height", "高处作业", "Work at height"),
    ("occupational_health", "职业健康", "Occupational health"),
    ("site_and_housekeeping", "作业环境", "Site and housekeeping"),
    ("other", "其他", "Other"),
];

/// Checks that `code` is one of [`HAZARD_CATEGORIES`].
pub fn parse_category(code: &str) -> Result<&'static str, DomainError> {
    HAZARD_CATEGORIES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(c, _, _)| *c)
        .ok_or_else(|| DomainError::UnknownCategory(code.chars().take(40).collect()))
}

/// A place on earth (WGS-84 degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct GeoPoint {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

impl GeoPoint {
    /// Validates the ranges.
    pub fn new(lat: f64, lon: f64) -> Result<Self, DomainError> {
        if lat.is_finite()
            && lon.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon)
        {
            Ok(Self { lat, lon })
        } else {
            Err(DomainError::BadGeoPoint)
        }
    }
}

/// A reference to a photo kept in the blob store. Documents never carry photo bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PhotoRef {
    /// SHA-256 of the bytes uploaded to the server (lowercase hex): the key in the blob store,
    /// which the server verifies on upload. A phone uploads a downscaled, re-encoded copy, so
    /// this is the copy's hash; the camera original's is [`PhotoRef::original_sha256`].
    #[key]
    pub sha256: String,
    /// Size of the uploaded bytes.
    pub size: u64,
    /// `image/jpeg` or `image/png`.
    pub media_type: String,
    /// Capture time, milliseconds since the Unix epoch, when known.
    pub captured_at: Option<i64>,
    /// Where it was taken, when known.
    pub gps: Option<GeoPoint>,
    /// Who added it.
    pub added_by: String,
    /// SHA-256 (64 lowercase hex digits) of the file the uploaded bytes were prepared from,
    /// when they differ: the camera original stays on the phone as evidence and this hash lets
    /// anyone holding it prove it is the source of the uploaded copy. `None` when the uploaded
    /// bytes are the original (web uploads) and in references written before the field existed.
    ///
    /// Absent from the Automerge document when `None` (never written as null): documents
    /// written before the field existed hold no such key, and reconciling them must not add
    /// one, because a reference inside a recorded rectification event may not change.
    #[autosurgeon(reconcile = "reconcile_if_present", missing = "Option::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_sha256: Option<String>,
    /// `Some(true)` when the file had an EXIF block that could not be read, so its capture time
    /// and position are unknown for that reason (not because the camera recorded none). Absent
    /// otherwise, like [`PhotoRef::original_sha256`].
    #[autosurgeon(reconcile = "reconcile_if_present", missing = "Option::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif_unreadable: Option<bool>,
}

/// Writes an optional value only when it is present, never as null: a key added to a type
/// after documents were written stays absent from them until it has a value, so reconciling an
/// old value adds nothing (see [`PhotoRef::original_sha256`], `Event::rules`).
pub(crate) fn reconcile_if_present<T: Reconcile, R: autosurgeon::Reconciler>(
    value: &Option<T>,
    reconciler: R,
) -> Result<(), R::Error> {
    match value {
        Some(v) => v.reconcile(reconciler),
        None => Ok(()),
    }
}

/// Whether `s` is a SHA-256 in its canonical text form: 64 lowercase hex digits.
pub fn is_lowercase_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl PhotoRef {
    /// Validates a photo reference coming from outside.
    pub fn validate(&self) -> Result<(), DomainError> {
        Sha256::parse(&self.sha256).map_err(|_| DomainError::BadPhoto("sha256"))?;
        if let Some(o) = &self.original_sha256
            && !is_lowercase_sha256(o)
        {
            return Err(DomainError::BadPhoto("original_sha256"));
        }
        if self.size == 0 || self.size > MAX_PHOTO_BYTES {
            return Err(DomainError::BadPhoto("size"));
        }
        if !matches!(self.media_type.as_str(), "image/jpeg" | "image/png") {
            return Err(DomainError::BadPhoto("media_type"));
        }
        if let Some(g) = self.gps {
            GeoPoint::new(g.lat, g.lon)?;
        }
        Ok(())
    }
}

/// Largest photo accepted anywhere (bytes of the original).
pub const MAX_PHOTO_BYTES: u64 = 25 * 1024 * 1024;

/// China Standard Time, UTC+8, no daylight saving: deadlines are calendar days here.
pub fn china_standard_time() -> TimeZone {
    TimeZone::fixed(Offset::constant(8))
}

/// A rectification deadline: a calendar day in China Standard Time. A hazard is overdue once
/// that whole day has passed in Beijing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Deadline(Date);

impl Deadline {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let date: Date = s
            .parse()
            .map_err(|_| DomainError::BadDeadline(s.chars().take(40).collect()))?;
        if date.year() < 2000 || date.year() > 2200 {
            return Err(DomainError::BadDeadline(s.chars().take(40).collect()));
        }
        Ok(Self(date))
    }
    /// Wraps a date.
    pub const fn from_date(date: Date) -> Self {
        Self(date)
    }
    /// The calendar day.
    pub const fn date(&self) -> Date {
        self.0
    }
    /// Whether the deadline day has fully passed in China Standard Time at `now`.
    pub fn is_past(&self, now: Timestamp) -> bool {
        let today = now.to_zoned(china_standard_time()).date();
        today > self.0
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A value from outside that does not fit the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Unknown role text.
    #[error(
        "unknown role {0:?}: expected inspector, enterprise_manager, supervisor or agency_admin"
    )]
    UnknownRole(String),
    /// Unknown grade text.
    #[error("unknown hazard grade {0:?} (expected general or major)")]
    UnknownGrade(String),
    /// Unknown category code.
    #[error("unknown hazard category {0:?}")]
    UnknownCategory(String),
    /// Latitude / longitude out of range.
    #[error("GPS position out of range")]
    BadGeoPoint,
    /// A deadline that is not a plausible `YYYY-MM-DD`.
    #[error("invalid deadline {0:?}: expected YYYY-MM-DD")]
    BadDeadline(String),
    /// A photo reference with an invalid field.
    #[error("invalid photo reference: bad {0}")]
    BadPhoto(&'static str),
    /// A required text field is empty or too long.
    #[error("field {field} must be 1 to {max} characters")]
    BadText {
        /// The field.
        field: &'static str,
        /// Its maximum length in characters.
        max: usize,
    },
}

/// Checks a required free-text field: non-empty after trimming and at most `max` characters.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    let n = value.trim().chars().count();
    if n == 0 || value.chars().count() > max {
        Err(DomainError::BadText { field, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_past_only_after_the_whole_day_in_beijing() {
        let d = Deadline::parse("2026-03-01").unwrap();
        // 2026-03-01 23:30 in Beijing is 15:30 UTC: still the deadline day.
        let late_evening: Timestamp = "2026-03-01T15:30:00Z".parse().unwrap();
        assert!(!d.is_past(late_evening));
        // 2026-03-02 00:10 in Beijing is 2026-03-01 16:10 UTC: overdue, although UTC says 1 March.
        let just_after: Timestamp = "2026-03-01T16:10:00Z".parse().unwrap();
        assert!(d.is_past(just_after));
    }

    #[test]
    fn roles_and_grades_round_trip_and_refuse_unknown_text() {
        for r in [
            Role::Inspector,
            Role::EnterpriseManager,
            Role::Supervisor,
            Role::AgencyAdmin,
        ] {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("admin").is_err());
        assert_eq!(Grade::parse("major"), Ok(Grade::Major));
        assert!(Grade::parse("huge").is_err());
        assert!(Deadline::parse("2026-02-30").is_err());
        assert!(parse_category("fire").is_ok());
        assert!(parse_category("nope").is_err());
    }

    fn photo(original: Option<&str>) -> PhotoRef {
        PhotoRef {
            sha256: "ab".repeat(32),
            size: 1234,
            media_type: "image/jpeg".into(),
            captured_at: Some(1_773_108_900_000),
            gps: Some(GeoPoint {
                lat: 30.27,
                lon: 120.15,
            }),
            added_by: "0195a000-0000-7000-8000-000000000004".into(),
            original_sha256: original.map(str::to_owned),
            exif_unreadable: None,
        }
    }

    /// A document holding one photo reference under `photo`.
    #[derive(Debug, PartialEq, Reconcile, Hydrate)]
    struct Holder<P> {
        photo: P,
    }

    fn write<P: Reconcile>(value: &Holder<P>) -> automerge::AutoCommit {
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, value).unwrap();
        doc
    }

    fn photo_keys(doc: &automerge::AutoCommit) -> Vec<String> {
        use automerge::ReadDoc;
        let (_, obj) = doc.get(automerge::ROOT, "photo").unwrap().unwrap();
        doc.keys(&obj).collect()
    }

    #[test]
    fn a_photo_reference_round_trips_with_and_without_the_original_hash() {
        for original in [Some("cd".repeat(32)), None] {
            let written = Holder {
                photo: photo(original.as_deref()),
            };
            let mut doc = write(&written);
            assert_eq!(
                photo_keys(&doc).contains(&"original_sha256".to_owned()),
                original.is_some(),
                "the key is written only when there is a value"
            );
            let back: Holder<PhotoRef> = autosurgeon::hydrate(&doc).unwrap();
            assert_eq!(back, written);
            // Loading a saved document gives the same value.
            let loaded = automerge::AutoCommit::load(&doc.save()).unwrap();
            let back: Holder<PhotoRef> = autosurgeon::hydrate(&loaded).unwrap();
            assert_eq!(back, written);
            // JSON (the web API) carries it only when present, and reads it back.
            let json = serde_json::to_value(&written.photo).unwrap();
            assert_eq!(json.get("original_sha256").is_some(), original.is_some());
            assert_eq!(
                serde_json::from_value::<PhotoRef>(json).unwrap(),
                written.photo
            );
        }
    }

    /// The photo reference as documents stored it before `original_sha256` existed.
    #[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
    struct PhotoRefBeforeOriginalHash {
        #[key]
        sha256: String,
        size: u64,
        media_type: String,
        captured_at: Option<i64>,
        gps: Option<GeoPoint>,
        added_by: String,
    }

    #[test]
    fn an_old_photo_reference_loads_and_reconciling_it_adds_nothing() {
        let p = photo(None);
        let old = Holder {
            photo: PhotoRefBeforeOriginalHash {
                sha256: p.sha256.clone(),
                size: p.size,
                media_type: p.media_type.clone(),
                captured_at: p.captured_at,
                gps: p.gps,
                added_by: p.added_by.clone(),
            },
        };
        let mut doc = write(&old);
        let heads = doc.get_heads();
        let back: Holder<PhotoRef> = autosurgeon::hydrate(&doc).unwrap();
        assert_eq!(back.photo, p);
        // Writing the hydrated value back is a no-op: an old reference inside a recorded
        // rectification event must not be touched by a newer phone's edit.
        autosurgeon::reconcile(&mut doc, &back).unwrap();
        doc.commit();
        assert_eq!(doc.get_heads(), heads);
        // Old JSON without the field parses too.
        let json = serde_json::json!({
            "sha256": p.sha256, "size": 1234, "media_type": "image/jpeg",
            "captured_at": null, "gps": null, "added_by": p.added_by,
        });
        let parsed: PhotoRef = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.original_sha256, None);
    }

    #[test]
    fn an_original_hash_that_is_not_64_lowercase_hex_digits_is_refused() {
        assert_eq!(photo(Some(&"cd".repeat(32))).validate(), Ok(()));
        assert_eq!(photo(None).validate(), Ok(()));
        for bad in [
            "CD".repeat(32),
            "cd".repeat(31),
            "cd".repeat(33),
            format!("{}zz", "cd".repeat(31)),
            String::new(),
        ] {
            assert_eq!(
                photo(Some(&bad)).validate(),
                Err(DomainError::BadPhoto("original_sha256")),
                "{bad:?}"
            );
        }
    }
}

/// What a phone keeps of an enterprise (from the server's enterprise list), to show and to fill
/// document headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseInfo {
    /// Id.
    pub id: crate::ids::EnterpriseId,
    /// Name.
    pub name: String,
    /// Unified social credit code (统一社会信用代码).
    pub uscc: String,
    /// Address.
    pub address: String,
    /// Township it belongs to.
    pub township: crate::ids::TownshipId,
    /// Industry.
    pub industry: String,
    /// Industrial park, when in one.
    pub park: Option<String>,
}

/// What a phone keeps of an agency or township: id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInfo {
    /// Organisation id.
    pub id: OrgId,
    /// Name.
    pub name: String,
}

/// The signed-in user as the phone knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Id.
    pub id: UserId,
    /// Role.
    pub role: Role,
    /// Organisation (agency, enterprise or township).
    pub org: OrgId,
    /// Display name.
    pub display_name: String,
}

/// The device an edit is made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Id.
    pub id: DeviceId,
    /// The Automerge actor id bound to this user and device, hex.
    pub actor_hex: String,
}
