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
    /// SHA-256 of the bytes uploaded to the server (lowercase hex): the key in the blob store.
    /// A phone that downscales before upload keeps the camera original's hash locally.
    #[key]
    pub sha256: String,
    /// Size of the original in bytes.
    pub size: u64,
    /// `image/jpeg` or `image/png`.
    pub media_type: String,
    /// Capture time, milliseconds since the Unix epoch, when known.
    pub captured_at: Option<i64>,
    /// Where it was taken, when known.
    pub gps: Option<GeoPoint>,
    /// Who added it.
    pub added_by: String,
}

impl PhotoRef {
    /// Validates a photo reference coming from outside.
    pub fn validate(&self) -> Result<(), DomainError> {
        Sha256::parse(&self.sha256).map_err(|_| DomainError::BadPhoto("sha256"))?;
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
    #[error("unknown role {0:?}")]
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
