//! The closed sets an app switches on: roles, grades, states, event kinds, visit kinds,
//! checklist results and a document's sync state, each with its conversions from sync-core.

use super::*;

/// Kind of visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, uniffi::Enum)]
pub enum VisitKindRecord {
    /// 首次服务.
    First,
    /// 定期检查.
    Routine,
    /// 复查.
    Reinspection,
}

impl From<VisitKindRecord> for VisitKind {
    fn from(k: VisitKindRecord) -> Self {
        match k {
            VisitKindRecord::First => VisitKind::First,
            VisitKindRecord::Routine => VisitKind::Routine,
            VisitKindRecord::Reinspection => VisitKind::Reinspection,
        }
    }
}

impl From<VisitKind> for VisitKindRecord {
    fn from(k: VisitKind) -> Self {
        match k {
            VisitKind::First => VisitKindRecord::First,
            VisitKind::Routine => VisitKindRecord::Routine,
            VisitKind::Reinspection => VisitKindRecord::Reinspection,
        }
    }
}

/// Checklist outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, uniffi::Enum)]
pub enum CheckResultRecord {
    /// Not looked at.
    Unchecked,
    /// 符合.
    Pass,
    /// 不符合.
    Fail,
    /// 不适用.
    NotApplicable,
}

impl From<CheckResultRecord> for CheckResult {
    fn from(k: CheckResultRecord) -> Self {
        match k {
            CheckResultRecord::Unchecked => CheckResult::Unchecked,
            CheckResultRecord::Pass => CheckResult::Pass,
            CheckResultRecord::Fail => CheckResult::Fail,
            CheckResultRecord::NotApplicable => CheckResult::NotApplicable,
        }
    }
}

impl From<CheckResult> for CheckResultRecord {
    fn from(k: CheckResult) -> Self {
        match k {
            CheckResult::Unchecked => CheckResultRecord::Unchecked,
            CheckResult::Pass => CheckResultRecord::Pass,
            CheckResult::Fail => CheckResultRecord::Fail,
            CheckResult::NotApplicable => CheckResultRecord::NotApplicable,
        }
    }
}

/// Where one document stands with the server.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ItemState {
    /// Local changes wait for the next sync.
    Pending,
    /// The server has everything this phone has.
    Synced,
    /// The server refused the last changes; see `repair`.
    Refused {
        /// The server's reasons, Chinese first.
        reason: String,
    },
    /// The document left the user's scope (a contract ended, the enterprise changed agency)
    /// while it held unsent edits: kept on the phone until they are sent, then removed.
    OutOfScope,
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum RoleRecord {
    /// Agency staff who record visits and hazards and verify rectification.
    Inspector,
    /// The enterprise's responsible person.
    EnterpriseManager,
    /// A regulator.
    Supervisor,
    /// Agency back office.
    AgencyAdmin,
}

impl From<sync_core::domain::Role> for RoleRecord {
    fn from(r: sync_core::domain::Role) -> Self {
        use sync_core::domain::Role as R;
        match r {
            R::Inspector => Self::Inspector,
            R::EnterpriseManager => Self::EnterpriseManager,
            R::Supervisor => Self::Supervisor,
            R::AgencyAdmin => Self::AgencyAdmin,
        }
    }
}

/// A hazard's grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum GradeRecord {
    /// 一般隐患.
    General,
    /// 重大事故隐患.
    Major,
}

impl From<sync_core::domain::Grade> for GradeRecord {
    fn from(g: sync_core::domain::Grade) -> Self {
        match g {
            sync_core::domain::Grade::General => Self::General,
            sync_core::domain::Grade::Major => Self::Major,
        }
    }
}

impl From<GradeRecord> for sync_core::domain::Grade {
    fn from(g: GradeRecord) -> Self {
        match g {
            GradeRecord::General => Self::General,
            GradeRecord::Major => Self::Major,
        }
    }
}

impl GradeRecord {
    /// The stable text form (`general`, `major`), as the server's API writes it.
    pub fn as_str(self) -> &'static str {
        sync_core::domain::Grade::from(self).as_str()
    }
}

/// Where a hazard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum HazardStateRecord {
    /// Recorded, notice not issued yet (待通知).
    Open,
    /// Notice issued (已通知).
    Notified,
    /// Being fixed (整改中).
    InProgress,
    /// Rectification submitted, awaiting re-inspection (待复查).
    Submitted,
    /// Accepted on re-inspection (复查通过).
    Accepted,
    /// Closed (已销号).
    Closed,
}

impl From<sync_core::rectification::HazardState> for HazardStateRecord {
    fn from(s: sync_core::rectification::HazardState) -> Self {
        use sync_core::rectification::HazardState as S;
        match s {
            S::Open => Self::Open,
            S::Notified => Self::Notified,
            S::InProgress => Self::InProgress,
            S::Submitted => Self::Submitted,
            S::Accepted => Self::Accepted,
            S::Closed => Self::Closed,
        }
    }
}

impl HazardStateRecord {
    /// Every state.
    pub const ALL: [HazardStateRecord; 6] = [
        Self::Open,
        Self::Notified,
        Self::InProgress,
        Self::Submitted,
        Self::Accepted,
        Self::Closed,
    ];

    /// The stable text form (`open` … `closed`), as the server's API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Notified => "notified",
            Self::InProgress => "in_progress",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Closed => "closed",
        }
    }

    /// Parses the stable text form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What kind of event a hazard's history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum EventKindRecord {
    /// The rectification notice (下达整改通知).
    Notified,
    /// The grade changed, with a reason.
    Regraded,
    /// The enterprise signed for the notice.
    SignedFor,
    /// The enterprise asked for more time.
    ExtensionRequested,
    /// More time was granted.
    ExtensionGranted,
    /// More time was refused.
    ExtensionRefused,
    /// The enterprise submitted its rectification with evidence.
    RectificationSubmitted,
    /// Re-inspected: accepted or rejected.
    Verified,
    /// A major hazard reported to the regulator.
    ReportedToRegulator,
    /// Put under supervision (挂牌督办).
    SupervisionPut,
    /// Supervision lifted.
    SupervisionLifted,
    /// Closed (销号).
    Closed,
    /// Reopened after closure.
    Reopened,
}

impl From<&EventKind> for EventKindRecord {
    fn from(k: &EventKind) -> Self {
        match k {
            EventKind::Notified | EventKind::NoticeIssued { .. } => Self::Notified,
            EventKind::Regraded { .. } => Self::Regraded,
            EventKind::SignedFor { .. } => Self::SignedFor,
            EventKind::ExtensionRequested { .. } => Self::ExtensionRequested,
            EventKind::ExtensionGranted { .. } => Self::ExtensionGranted,
            EventKind::ExtensionRefused { .. } => Self::ExtensionRefused,
            EventKind::RectificationSubmitted { .. } => Self::RectificationSubmitted,
            EventKind::Verified { .. } => Self::Verified,
            EventKind::ReportedToRegulator { .. } => Self::ReportedToRegulator,
            EventKind::SupervisionPut { .. } => Self::SupervisionPut,
            EventKind::SupervisionLifted { .. } => Self::SupervisionLifted,
            EventKind::Closed { .. } => Self::Closed,
            EventKind::Reopened { .. } => Self::Reopened,
        }
    }
}
