//! Rectification (隐患整改) as an append-only history of events per hazard, and the fold that
//! turns that history into the hazard's current state.
//!
//! The fold is a pure function of the document: replicas that hold the same document compute
//! the same state, whatever order the events reached them in. An event that is not valid in the
//! state the fold has reached (a close before acceptance, a verification by the wrong role) is
//! kept in the history but has no effect; the fold records why. This is what lets the sync layer
//! accept events that were each valid when recorded but raced with another one offline.

use autosurgeon::{Hydrate, Reconcile};
use jiff::Timestamp;
use serde::Serialize;

use crate::doc::Header;
use crate::domain::{Deadline, Grade, PhotoRef, Role};
use crate::policy::{self, Relation};

/// The rules an event was recorded under. Events written by this build carry
/// [`RULES_VERSION`]; events without the key were written before it and fold under the first
/// rules, so old documents keep the states they had (see `docs/adr/0009-rules-that-hold.md`).
pub const RULES_VERSION: u64 = 2;

/// One event in a hazard's history. Never edited or removed once recorded.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Event {
    /// Event id (UUID string): list items merge by it.
    #[key]
    pub id: String,
    /// When it was recorded on the author's device, ms since the Unix epoch.
    pub at: i64,
    /// The author's user id.
    pub author: String,
    /// The author's role when recording it.
    pub role: Role,
    /// The author's organisation id.
    pub org: String,
    /// The device it was recorded on.
    pub device: String,
    /// What happened.
    pub kind: EventKind,
    /// The rules it was recorded under: [`RULES_VERSION`], or `None` for events written before
    /// rules were versioned. Absent from the document when `None`, so old events read back
    /// unchanged.
    #[autosurgeon(
        reconcile = "crate::domain::reconcile_if_present",
        missing = "Option::default"
    )]
    pub rules: Option<u64>,
}

impl Event {
    /// A new event recorded by `author` now, under this build's rules.
    pub fn by(author: &crate::domain::Author, id: String, at: i64, kind: EventKind) -> Self {
        Self {
            id,
            at,
            author: author.user.to_string(),
            role: author.role,
            org: author.org.hyphenated().to_string(),
            device: author.device.to_string(),
            kind,
            rules: Some(RULES_VERSION),
        }
    }
}

/// What happened to a hazard.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub enum EventKind {
    /// The rectification notice (整改通知书) was issued, as written before notices carried their
    /// terms. Read in old documents; never recorded any more.
    Notified,
    /// The rectification notice (整改通知书) was issued to the enterprise with these terms: from
    /// here on the grade changes only by [`EventKind::Regraded`] and the deadline only by a
    /// granted extension.
    NoticeIssued {
        /// The grade the notice states.
        grade: Grade,
        /// The deadline the notice states, `YYYY-MM-DD`.
        deadline: String,
    },
    /// The grade changed after notification (a regrade, with its reason).
    Regraded {
        /// The new grade.
        grade: Grade,
        /// Why.
        reason: String,
    },
    /// The enterprise signed for the notice.
    SignedFor {
        /// Name as signed.
        signer: String,
    },
    /// The enterprise asks for more time (延期申请).
    ExtensionRequested {
        /// Requested new deadline, `YYYY-MM-DD`.
        until: String,
        /// Why.
        reason: String,
    },
    /// An extension was granted: the deadline moves.
    ExtensionGranted {
        /// The request's event id.
        request: String,
        /// The new deadline, `YYYY-MM-DD`.
        until: String,
    },
    /// An extension was refused.
    ExtensionRefused {
        /// The request's event id.
        request: String,
        /// Why.
        reason: String,
    },
    /// The enterprise submits its rectification with evidence.
    RectificationSubmitted {
        /// What was done.
        note: String,
        /// Evidence photos (after).
        photos: Vec<PhotoRef>,
    },
    /// Re-inspection (复查验收): accepted, or rejected and back in progress.
    Verified {
        /// Accepted or not.
        accepted: bool,
        /// Remarks.
        note: String,
    },
    /// Reported to the regulator (major hazards).
    ReportedToRegulator {
        /// To whom.
        to: String,
    },
    /// Put under supervision (挂牌督办).
    SupervisionPut {
        /// Remarks.
        note: String,
    },
    /// Supervision lifted.
    SupervisionLifted {
        /// Remarks.
        note: String,
    },
    /// Closed (销号).
    Closed {
        /// Remarks.
        note: String,
    },
    /// Reopened after acceptance or closure.
    Reopened {
        /// Why.
        reason: String,
    },
}

impl EventKind {
    /// Stable snake_case name for logs, SQL and the web.
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::Notified | EventKind::NoticeIssued { .. } => "notified",
            EventKind::Regraded { .. } => "regraded",
            EventKind::SignedFor { .. } => "signed_for",
            EventKind::ExtensionRequested { .. } => "extension_requested",
            EventKind::ExtensionGranted { .. } => "extension_granted",
            EventKind::ExtensionRefused { .. } => "extension_refused",
            EventKind::RectificationSubmitted { .. } => "rectification_submitted",
            EventKind::Verified { .. } => "verified",
            EventKind::ReportedToRegulator { .. } => "reported_to_regulator",
            EventKind::SupervisionPut { .. } => "supervision_put",
            EventKind::SupervisionLifted { .. } => "supervision_lifted",
            EventKind::Closed { .. } => "closed",
            EventKind::Reopened { .. } => "reopened",
        }
    }

    /// Simplified Chinese label.
    pub const fn label_zh(&self) -> &'static str {
        match self {
            EventKind::Notified | EventKind::NoticeIssued { .. } => "下达整改通知",
            EventKind::Regraded { .. } => "变更隐患等级",
            EventKind::SignedFor { .. } => "企业签收",
            EventKind::ExtensionRequested { .. } => "申请延期",
            EventKind::ExtensionGranted { .. } => "同意延期",
            EventKind::ExtensionRefused { .. } => "不同意延期",
            EventKind::RectificationSubmitted { .. } => "提交整改",
            EventKind::Verified { accepted: true, .. } => "复查通过",
            EventKind::Verified {
                accepted: false, ..
            } => "复查未通过",
            EventKind::ReportedToRegulator { .. } => "上报监管部门",
            EventKind::SupervisionPut { .. } => "挂牌督办",
            EventKind::SupervisionLifted { .. } => "解除督办",
            EventKind::Closed { .. } => "销号",
            EventKind::Reopened { .. } => "重新打开",
        }
    }
}

/// Where a hazard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HazardState {
    /// Recorded, notice not issued yet.
    Open,
    /// Notice issued (已通知).
    Notified,
    /// Being fixed (整改中): signed for, or rejected on re-inspection.
    InProgress,
    /// Rectification submitted with evidence (待复查).
    Submitted,
    /// Accepted on re-inspection (复查通过), awaiting closure.
    Accepted,
    /// Closed (已销号).
    Closed,
}

impl HazardState {
    /// Stable snake_case text.
    pub const fn as_str(&self) -> &'static str {
        match self {
            HazardState::Open => "open",
            HazardState::Notified => "notified",
            HazardState::InProgress => "in_progress",
            HazardState::Submitted => "submitted",
            HazardState::Accepted => "accepted",
            HazardState::Closed => "closed",
        }
    }
    /// Simplified Chinese label.
    pub const fn label_zh(&self) -> &'static str {
        match self {
            HazardState::Open => "待通知",
            HazardState::Notified => "已通知",
            HazardState::InProgress => "整改中",
            HazardState::Submitted => "待复查",
            HazardState::Accepted => "复查通过",
            HazardState::Closed => "已销号",
        }
    }
    /// Whether the enterprise still owes a rectification (deadline applies).
    pub const fn awaits_rectification(&self) -> bool {
        matches!(
            self,
            HazardState::Open | HazardState::Notified | HazardState::InProgress
        )
    }
}

/// Why an event had no effect, or why an action is not possible now: the rule that stopped it,
/// in words a user knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// The same event id appears twice.
    DuplicateEvent,
    /// The author's role or organisation may not record this kind of event at all.
    NotYourRole,
    /// An event kind this build no longer records (an outdated app).
    Outdated,
    /// The notice was already issued.
    AlreadyNotified,
    /// The notice has not been issued yet.
    NotNotifiedYet,
    /// Signing for needs an issued notice that is not signed for yet.
    NotAwaitingSignature,
    /// Nothing is owed any more: accepted or closed, or not notified.
    NothingToExtend,
    /// An extension request is already waiting for an answer.
    ExtensionPending,
    /// There is no extension request waiting for an answer.
    NoPendingExtension,
    /// The answer names another request than the one waiting.
    NotThePendingExtension,
    /// The new deadline is not later than the current one.
    DeadlineNotLater,
    /// A date that does not parse.
    BadDate,
    /// Extensions of a major hazard are granted or refused by its regulator.
    MajorExtensionNeedsRegulator,
    /// The enterprise can submit only while a rectification is owed.
    NotAwaitingRectification,
    /// A major hazard's rectification needs at least one photo.
    MajorNeedsPhoto,
    /// A submission needs a photo or a note.
    NeedsEvidence,
    /// Verification needs a submission made after the last rejection.
    NothingSubmitted,
    /// Reporting and supervision concern major hazards only.
    NotMajor,
    /// The hazard is already under supervision.
    AlreadySupervised,
    /// The hazard is not under supervision.
    NotSupervised,
    /// The hazard is closed.
    HazardClosed,
    /// Closing needs an accepted re-inspection.
    NotAccepted,
    /// A major hazard is closed only by its regulator.
    MajorNeedsRegulator,
    /// Only an accepted or closed hazard can be reopened.
    NotAcceptedOrClosed,
    /// A hazard the regulator closed is reopened only by a regulator.
    ClosedByRegulator,
    /// The grade is already that.
    SameGrade,
    /// Downgrading a major hazard is the regulator's decision.
    DowngradeNeedsRegulator,
    /// A major hazard needs all of 五落实 before its notice.
    FiveInPlaceMissing,
}

impl Why {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Why::DuplicateEvent => "duplicate_event",
            Why::NotYourRole => "not_your_role",
            Why::Outdated => "outdated",
            Why::AlreadyNotified => "already_notified",
            Why::NotNotifiedYet => "not_notified_yet",
            Why::NotAwaitingSignature => "not_awaiting_signature",
            Why::NothingToExtend => "nothing_to_extend",
            Why::ExtensionPending => "extension_pending",
            Why::NoPendingExtension => "no_pending_extension",
            Why::NotThePendingExtension => "not_the_pending_extension",
            Why::DeadlineNotLater => "deadline_not_later",
            Why::BadDate => "bad_date",
            Why::MajorExtensionNeedsRegulator => "major_extension_needs_regulator",
            Why::NotAwaitingRectification => "not_awaiting_rectification",
            Why::MajorNeedsPhoto => "major_needs_photo",
            Why::NeedsEvidence => "needs_evidence",
            Why::NothingSubmitted => "nothing_submitted",
            Why::NotMajor => "not_major",
            Why::AlreadySupervised => "already_supervised",
            Why::NotSupervised => "not_supervised",
            Why::HazardClosed => "hazard_closed",
            Why::NotAccepted => "not_accepted",
            Why::MajorNeedsRegulator => "major_needs_regulator",
            Why::NotAcceptedOrClosed => "not_accepted_or_closed",
            Why::ClosedByRegulator => "closed_by_regulator",
            Why::SameGrade => "same_grade",
            Why::DowngradeNeedsRegulator => "downgrade_needs_regulator",
            Why::FiveInPlaceMissing => "five_in_place_missing",
        }
    }

    /// Whether the rule is about who the user is (role, organisation) rather than about where
    /// the hazard stands.
    pub fn is_role(&self) -> bool {
        matches!(
            self,
            Why::NotYourRole
                | Why::MajorExtensionNeedsRegulator
                | Why::MajorNeedsRegulator
                | Why::ClosedByRegulator
                | Why::DowngradeNeedsRegulator
        )
    }

    /// The message for people: Simplified Chinese, then English.
    pub fn message(&self) -> &'static str {
        match self {
            Why::DuplicateEvent => "重复的记录 / the same record was sent twice",
            Why::NotYourRole => "您的角色不能进行此操作 / your role cannot do this",
            Why::Outdated => "应用版本过旧，请更新 / this app is outdated, please update",
            Why::AlreadyNotified => "整改通知已下达 / the notice was already issued",
            Why::NotNotifiedYet => "尚未下达整改通知 / the notice has not been issued yet",
            Why::NotAwaitingSignature => {
                "没有待签收的整改通知 / there is no notice waiting to be signed for"
            }
            Why::NothingToExtend => "当前状态不能申请延期 / no deadline to extend in this state",
            Why::ExtensionPending => {
                "已有延期申请等待答复 / an extension request is already waiting for an answer"
            }
            Why::NoPendingExtension => "没有待答复的延期申请 / no extension request is waiting",
            Why::NotThePendingExtension => {
                "不是待答复的那份延期申请 / that is not the request waiting for an answer"
            }
            Why::DeadlineNotLater => {
                "新期限必须晚于当前整改期限 / the new date must be later than the current deadline"
            }
            Why::BadDate => "日期无效 / invalid date",
            Why::MajorExtensionNeedsRegulator => {
                "重大事故隐患的延期由属地监管部门审批 / extensions of a major hazard are decided by its regulator"
            }
            Why::NotAwaitingRectification => {
                "当前状态不能提交整改 / no rectification is owed in this state"
            }
            Why::MajorNeedsPhoto => {
                "重大事故隐患的整改须附照片 / a major hazard's rectification needs a photo"
            }
            Why::NeedsEvidence => {
                "提交整改须附照片或说明 / a rectification needs a photo or a note"
            }
            Why::NothingSubmitted => {
                "企业尚未提交整改 / the enterprise has not submitted a rectification"
            }
            Why::NotMajor => "仅适用于重大事故隐患 / only for major hazards",
            Why::AlreadySupervised => "已在挂牌督办中 / already under supervision",
            Why::NotSupervised => "未挂牌督办 / not under supervision",
            Why::HazardClosed => "隐患已销号 / the hazard is closed",
            Why::NotAccepted => "尚未复查通过 / not accepted on re-inspection yet",
            Why::MajorNeedsRegulator => {
                "重大事故隐患由属地监管部门销号 / a major hazard is closed by its regulator"
            }
            Why::NotAcceptedOrClosed => {
                "只有复查通过或已销号的隐患可以重新打开 / only an accepted or closed hazard can be reopened"
            }
            Why::ClosedByRegulator => {
                "监管部门销号的隐患只能由监管部门重新打开 / a hazard the regulator closed is reopened by a regulator"
            }
            Why::SameGrade => "隐患已是该等级 / the hazard already has this grade",
            Why::DowngradeNeedsRegulator => {
                "重大事故隐患降级由监管部门决定 / only a regulator downgrades a major hazard"
            }
            Why::FiveInPlaceMissing => {
                "重大事故隐患须先落实责任人、措施、资金、期限和应急预案 / a major hazard needs responsible person, measure, funds, deadline and emergency plan first"
            }
        }
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// What the fold did with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventOutcome {
    /// The event id.
    pub event: String,
    /// `None` when applied; otherwise the rule that stopped it.
    pub ignored: Option<Why>,
}

/// The current state of a hazard, folded from its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HazardStatus {
    /// Current state.
    pub state: HazardState,
    /// Grade: the details' grade until the notice, then the notice's and later regrades'.
    pub grade: Grade,
    /// Current deadline: the details' until the notice, then the notice's and granted ones.
    pub deadline: Option<Deadline>,
    /// A pending extension request: (request event id, requested date).
    pub pending_extension: Option<(String, Deadline)>,
    /// Times the rectification was rejected.
    pub rejections: u32,
    /// Who accepted it, when accepted or closed.
    pub accepted_by: Option<String>,
    /// When it was closed, ms.
    pub closed_at: Option<i64>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// The role of who closed it.
    pub closed_by_role: Option<Role>,
    /// When the notice was issued (device time), ms.
    pub notified_at: Option<i64>,
    /// When it was first reported to the regulator (device time), ms.
    pub reported_at: Option<i64>,
    /// Since when it is a major hazard (device time), ms: its creation when found major, the
    /// notice or an upgrade otherwise; `None` while general. The report clock runs from here.
    pub major_since: Option<i64>,
    /// Under supervision (挂牌督办).
    pub under_supervision: bool,
    /// Whether the grade and deadline are fixed by a notice (edits of those fields no longer
    /// count; only events change them).
    pub terms_fixed: bool,
    /// Per event, whether it took effect.
    pub outcomes: Vec<EventOutcome>,
}

impl HazardStatus {
    /// Whether the enterprise is late at `now`: it still owes a rectification and the deadline
    /// day has passed in China Standard Time.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.state.awaits_rectification() && self.deadline.is_some_and(|d| d.is_past(now))
    }
}

/// Folds a hazard's history into its current state.
///
/// `grade` and `deadline` are the hazard's detail fields: they count until the notice is
/// issued. `events` are in document order. Each event is applied only if its author's role and
/// organisation may record it ([`policy::may_record`]) and it is valid in the state reached so
/// far; otherwise it is kept with the rule that stopped it. Events without a rules version fold
/// under the first rules ([`apply_v1`]), so documents written before keep their states.
pub fn fold(
    header: &Header,
    grade: Grade,
    deadline: Option<Deadline>,
    events: &[Event],
) -> HazardStatus {
    let mut s = HazardStatus {
        state: HazardState::Open,
        grade,
        deadline,
        pending_extension: None,
        rejections: 0,
        accepted_by: None,
        closed_at: None,
        closed_by: None,
        closed_by_role: None,
        notified_at: None,
        reported_at: None,
        major_since: (grade == Grade::Major).then_some(header.created_at),
        under_supervision: false,
        terms_fixed: false,
        outcomes: Vec::with_capacity(events.len()),
    };
    let mut seen = std::collections::HashSet::new();
    for ev in events {
        let ignored = if !seen.insert(ev.id.as_str()) {
            Some(Why::DuplicateEvent)
        } else {
            step(&mut s, header, ev).err()
        };
        s.outcomes.push(EventOutcome {
            event: ev.id.clone(),
            ignored,
        });
    }
    s
}

/// Applies one event to a status (the fold's step; also the dry run of an action).
pub fn step(s: &mut HazardStatus, header: &Header, ev: &Event) -> Result<(), Why> {
    let relation = policy::relation(ev.role, &ev.org, header);
    if !policy::may_record(ev.role, relation, &ev.kind) {
        return Err(Why::NotYourRole);
    }
    match ev.rules {
        None | Some(1) => apply_v1(s, relation, ev),
        Some(_) => apply_v2(s, relation, ev),
    }?;
    match s.grade {
        Grade::Major => {
            s.major_since.get_or_insert(ev.at);
        }
        Grade::General => s.major_since = None,
    }
    Ok(())
}

/// The rules as they were before rules were versioned, unchanged, for events recorded then.
fn apply_v1(s: &mut HazardStatus, relation: Relation, ev: &Event) -> Result<(), Why> {
    use HazardState::*;
    match &ev.kind {
        EventKind::Notified => match s.state {
            Open => {
                s.state = Notified;
                s.notified_at = Some(ev.at);
                s.terms_fixed = true;
            }
            _ => return Err(Why::AlreadyNotified),
        },
        EventKind::SignedFor { .. } => match s.state {
            Open | Notified => s.state = InProgress,
            _ => return Err(Why::NotAwaitingSignature),
        },
        EventKind::ExtensionRequested { until, .. } => {
            if s.state == Closed || s.state == Accepted {
                return Err(Why::NothingToExtend);
            }
            let until = Deadline::parse(until).map_err(|_| Why::BadDate)?;
            s.pending_extension = Some((ev.id.clone(), until));
        }
        EventKind::ExtensionGranted { request, until } => {
            let Some((pending, _)) = &s.pending_extension else {
                return Err(Why::NoPendingExtension);
            };
            if pending != request {
                return Err(Why::NotThePendingExtension);
            }
            let until = Deadline::parse(until).map_err(|_| Why::BadDate)?;
            s.deadline = Some(until);
            s.pending_extension = None;
        }
        EventKind::ExtensionRefused { request, .. } => match &s.pending_extension {
            Some((pending, _)) if pending == request => s.pending_extension = None,
            Some(_) => return Err(Why::NotThePendingExtension),
            None => return Err(Why::NoPendingExtension),
        },
        EventKind::RectificationSubmitted { .. } => match s.state {
            Open | Notified | InProgress => s.state = Submitted,
            _ => return Err(Why::NotAwaitingRectification),
        },
        EventKind::Verified { accepted: true, .. } => match s.state {
            Open | Notified | InProgress | Submitted => {
                s.state = Accepted;
                s.accepted_by = Some(ev.author.clone());
            }
            _ => return Err(Why::NothingSubmitted),
        },
        EventKind::Verified {
            accepted: false, ..
        } => match s.state {
            Submitted => {
                s.state = InProgress;
                s.rejections += 1;
            }
            _ => return Err(Why::NothingSubmitted),
        },
        EventKind::ReportedToRegulator { .. } => {
            if s.reported_at.is_none() {
                s.reported_at = Some(ev.at);
            }
        }
        EventKind::SupervisionPut { .. } => {
            if s.state == Closed {
                return Err(Why::HazardClosed);
            }
            s.under_supervision = true;
        }
        EventKind::SupervisionLifted { .. } => {
            if !s.under_supervision {
                return Err(Why::NotSupervised);
            }
            s.under_supervision = false;
        }
        EventKind::Closed { .. } => {
            if s.state != Accepted {
                return Err(Why::NotAccepted);
            }
            let allowed = match s.grade {
                Grade::General => ev.role == Role::Inspector && relation == Relation::Agency,
                Grade::Major => ev.role == Role::Supervisor && relation == Relation::Township,
            };
            if !allowed {
                return Err(Why::MajorNeedsRegulator);
            }
            close(s, ev);
        }
        EventKind::Reopened { .. } => match s.state {
            Accepted | Closed => reopen(s),
            _ => return Err(Why::NotAcceptedOrClosed),
        },
        // Kinds that did not exist under the first rules.
        EventKind::NoticeIssued { .. } | EventKind::Regraded { .. } => return Err(Why::Outdated),
    }
    Ok(())
}

fn close(s: &mut HazardStatus, ev: &Event) {
    s.state = HazardState::Closed;
    s.closed_at = Some(ev.at);
    s.closed_by = Some(ev.author.clone());
    s.closed_by_role = Some(ev.role);
    s.under_supervision = false;
    s.pending_extension = None;
}

fn reopen(s: &mut HazardStatus) {
    s.state = HazardState::InProgress;
    s.accepted_by = None;
    s.closed_at = None;
    s.closed_by = None;
    s.closed_by_role = None;
}

/// Who may answer an extension request of a hazard of `grade`: the agency for a general hazard
/// (its regulator too), only the regulator for a major one (ADR 0009).
pub fn may_answer_extension(role: Role, grade: Grade) -> bool {
    match grade {
        Grade::General => matches!(role, Role::Inspector | Role::Supervisor),
        Grade::Major => role == Role::Supervisor,
    }
}

/// Who may close an accepted hazard of `grade`: the agency or the regulator for a general
/// hazard, only the regulator for a major one.
pub fn may_close(role: Role, grade: Grade) -> bool {
    match grade {
        Grade::General => matches!(role, Role::Inspector | Role::Supervisor),
        Grade::Major => role == Role::Supervisor,
    }
}

/// Whether a submission carries the evidence its grade needs.
pub fn has_evidence(
    grade: Grade,
    note: &str,
    photos: &[crate::domain::PhotoRef],
) -> Result<(), Why> {
    match grade {
        Grade::Major if photos.is_empty() => Err(Why::MajorNeedsPhoto),
        Grade::General if photos.is_empty() && note.trim().is_empty() => Err(Why::NeedsEvidence),
        _ => Ok(()),
    }
}

/// The rules of this build (rules version 2, ADR 0009). `relation` has passed
/// [`policy::may_record`] already.
fn apply_v2(s: &mut HazardStatus, _relation: Relation, ev: &Event) -> Result<(), Why> {
    use HazardState::*;
    let closed = s.state == Closed;
    match &ev.kind {
        EventKind::Notified => return Err(Why::Outdated),
        EventKind::NoticeIssued { grade, deadline } => {
            if s.state != Open {
                return Err(Why::AlreadyNotified);
            }
            let deadline = Deadline::parse(deadline).map_err(|_| Why::BadDate)?;
            s.grade = *grade;
            s.deadline = Some(deadline);
            s.terms_fixed = true;
            s.state = Notified;
            s.notified_at = Some(ev.at);
        }
        EventKind::SignedFor { .. } => match s.state {
            Notified => s.state = InProgress,
            _ => return Err(Why::NotAwaitingSignature),
        },
        EventKind::ExtensionRequested { until, .. } => {
            if !matches!(s.state, Notified | InProgress) {
                return Err(Why::NothingToExtend);
            }
            if s.pending_extension.is_some() {
                return Err(Why::ExtensionPending);
            }
            let until = Deadline::parse(until).map_err(|_| Why::BadDate)?;
            if s.deadline.is_some_and(|d| until <= d) {
                return Err(Why::DeadlineNotLater);
            }
            s.pending_extension = Some((ev.id.clone(), until));
        }
        EventKind::ExtensionGranted { request, until } => {
            answerable(s, request, ev.role)?;
            let until = Deadline::parse(until).map_err(|_| Why::BadDate)?;
            if s.deadline.is_some_and(|d| until <= d) {
                return Err(Why::DeadlineNotLater);
            }
            s.deadline = Some(until);
            s.pending_extension = None;
        }
        EventKind::ExtensionRefused { request, .. } => {
            answerable(s, request, ev.role)?;
            s.pending_extension = None;
        }
        EventKind::RectificationSubmitted { note, photos } => {
            if !matches!(s.state, Notified | InProgress) {
                return Err(Why::NotAwaitingRectification);
            }
            has_evidence(s.grade, note, photos)?;
            s.state = Submitted;
        }
        EventKind::Verified { accepted, .. } => {
            if s.state != Submitted {
                return Err(Why::NothingSubmitted);
            }
            if *accepted {
                s.state = Accepted;
                s.accepted_by = Some(ev.author.clone());
            } else {
                s.state = InProgress;
                s.rejections += 1;
            }
        }
        EventKind::ReportedToRegulator { .. } => {
            if closed {
                return Err(Why::HazardClosed);
            }
            if s.grade != Grade::Major {
                return Err(Why::NotMajor);
            }
            if s.reported_at.is_none() {
                s.reported_at = Some(ev.at);
            }
        }
        EventKind::SupervisionPut { .. } => {
            if closed {
                return Err(Why::HazardClosed);
            }
            if s.grade != Grade::Major {
                return Err(Why::NotMajor);
            }
            if s.under_supervision {
                return Err(Why::AlreadySupervised);
            }
            s.under_supervision = true;
        }
        EventKind::SupervisionLifted { .. } => {
            if !s.under_supervision {
                return Err(Why::NotSupervised);
            }
            s.under_supervision = false;
        }
        EventKind::Closed { .. } => {
            if s.state != Accepted {
                return Err(if closed {
                    Why::HazardClosed
                } else {
                    Why::NotAccepted
                });
            }
            if !may_close(ev.role, s.grade) {
                return Err(Why::MajorNeedsRegulator);
            }
            close(s, ev);
        }
        EventKind::Reopened { .. } => match s.state {
            Accepted => reopen(s),
            Closed => {
                if s.closed_by_role == Some(Role::Supervisor) && ev.role != Role::Supervisor {
                    return Err(Why::ClosedByRegulator);
                }
                reopen(s)
            }
            _ => return Err(Why::NotAcceptedOrClosed),
        },
        EventKind::Regraded { grade, .. } => {
            if closed {
                return Err(Why::HazardClosed);
            }
            if s.state == Open {
                return Err(Why::NotNotifiedYet);
            }
            if *grade == s.grade {
                return Err(Why::SameGrade);
            }
            if s.grade == Grade::Major && ev.role != Role::Supervisor {
                return Err(Why::DowngradeNeedsRegulator);
            }
            s.grade = *grade;
            if s.grade == Grade::General {
                s.under_supervision = false;
            }
        }
    }
    Ok(())
}

fn answerable(s: &HazardStatus, request: &str, role: Role) -> Result<(), Why> {
    if s.state == HazardState::Closed {
        return Err(Why::HazardClosed);
    }
    match &s.pending_extension {
        None => return Err(Why::NoPendingExtension),
        Some((pending, _)) if pending != request => return Err(Why::NotThePendingExtension),
        Some(_) => {}
    }
    if !may_answer_extension(role, s.grade) {
        return Err(Why::MajorExtensionNeedsRegulator);
    }
    Ok(())
}
