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
}

/// What happened to a hazard.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub enum EventKind {
    /// The rectification notice (整改通知书) was issued to the enterprise.
    Notified,
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
            EventKind::Notified => "notified",
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
            EventKind::Notified => "下达整改通知",
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

/// What the fold did with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventOutcome {
    /// The event id.
    pub event: String,
    /// `None` when applied; otherwise why it had no effect.
    pub ignored: Option<&'static str>,
}

/// The current state of a hazard, folded from its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HazardStatus {
    /// Current state.
    pub state: HazardState,
    /// Grade (from the details).
    pub grade: Grade,
    /// Current deadline (after granted extensions).
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
    /// When it was first reported to the regulator, ms.
    pub reported_at: Option<i64>,
    /// Under supervision (挂牌督办).
    pub under_supervision: bool,
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
/// `events` are in document order. Each event is applied only if its author's role and
/// organisation may record it ([`policy::may_record`]) and it is valid in the state reached so
/// far; otherwise it is kept with the reason it had no effect.
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
        reported_at: None,
        under_supervision: false,
        outcomes: Vec::with_capacity(events.len()),
    };
    let mut seen = std::collections::HashSet::new();
    for ev in events {
        let ignored = if !seen.insert(ev.id.as_str()) {
            Some("duplicate event id")
        } else {
            apply(&mut s, header, ev).err()
        };
        s.outcomes.push(EventOutcome {
            event: ev.id.clone(),
            ignored,
        });
    }
    s
}

fn apply(s: &mut HazardStatus, header: &Header, ev: &Event) -> Result<(), &'static str> {
    use HazardState::*;
    let relation = policy::relation(ev.role, &ev.org, header);
    if !policy::may_record(ev.role, relation, &ev.kind) {
        return Err("author may not record this event");
    }
    match &ev.kind {
        EventKind::Notified => match s.state {
            Open => s.state = Notified,
            _ => return Err("already notified"),
        },
        EventKind::SignedFor { .. } => match s.state {
            Open | Notified => s.state = InProgress,
            _ => return Err("not awaiting signature"),
        },
        EventKind::ExtensionRequested { until, .. } => {
            if s.state == Closed || s.state == Accepted {
                return Err("nothing left to extend");
            }
            let until = Deadline::parse(until).map_err(|_| "invalid requested date")?;
            s.pending_extension = Some((ev.id.clone(), until));
        }
        EventKind::ExtensionGranted { request, until } => {
            let Some((pending, _)) = &s.pending_extension else {
                return Err("no pending extension request");
            };
            if pending != request {
                return Err("not the pending extension request");
            }
            let until = Deadline::parse(until).map_err(|_| "invalid granted date")?;
            s.deadline = Some(until);
            s.pending_extension = None;
        }
        EventKind::ExtensionRefused { request, .. } => match &s.pending_extension {
            Some((pending, _)) if pending == request => s.pending_extension = None,
            _ => return Err("not the pending extension request"),
        },
        EventKind::RectificationSubmitted { .. } => match s.state {
            Open | Notified | InProgress => s.state = Submitted,
            _ => return Err("not awaiting rectification"),
        },
        EventKind::Verified { accepted: true, .. } => match s.state {
            // An inspector may accept a fix made on the spot, or one that was submitted.
            Open | Notified | InProgress | Submitted => {
                s.state = Accepted;
                s.accepted_by = Some(ev.author.clone());
            }
            _ => return Err("nothing to verify"),
        },
        EventKind::Verified {
            accepted: false, ..
        } => match s.state {
            Submitted => {
                s.state = InProgress;
                s.rejections += 1;
            }
            _ => return Err("no submitted rectification to reject"),
        },
        EventKind::ReportedToRegulator { .. } => {
            if s.reported_at.is_none() {
                s.reported_at = Some(ev.at);
            }
        }
        EventKind::SupervisionPut { .. } => {
            if s.state == Closed {
                return Err("hazard is closed");
            }
            s.under_supervision = true;
        }
        EventKind::SupervisionLifted { .. } => {
            if !s.under_supervision {
                return Err("not under supervision");
            }
            s.under_supervision = false;
        }
        EventKind::Closed { .. } => {
            if s.state != Accepted {
                return Err("closing needs an accepted verification");
            }
            let allowed = match s.grade {
                Grade::General => ev.role == Role::Inspector && relation == Relation::Agency,
                Grade::Major => ev.role == Role::Supervisor && relation == Relation::Township,
            };
            if !allowed {
                return Err("this role may not close a hazard of this grade");
            }
            s.state = Closed;
            s.closed_at = Some(ev.at);
            s.closed_by = Some(ev.author.clone());
            s.under_supervision = false;
        }
        EventKind::Reopened { .. } => match s.state {
            Accepted | Closed => {
                s.state = InProgress;
                s.accepted_by = None;
                s.closed_at = None;
                s.closed_by = None;
            }
            _ => return Err("only an accepted or closed hazard can be reopened"),
        },
    }
    Ok(())
}
