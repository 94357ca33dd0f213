//! What a user may do with a hazard now, and why not: the one answer every interface shows.
//!
//! [`allowed_actions`] asks the policy ([`crate::policy`]) who may speak at all, then dry-runs
//! each action through the fold's own step ([`crate::rectification::step`]) on the hazard as it
//! stands. The web pages build their forms from it, the bridge hands it to the phone app, and
//! [`crate::edit::record_event`] refuses exactly what it refuses, so no interface offers an action
//! the server would refuse, or hides one it would accept.

use serde::Serialize;

use crate::doc::HazardDoc;
use crate::domain::{Author, Deadline, Grade, PhotoRef};
use crate::policy::{self, Relation};
use crate::rectification::{Event, EventKind, HazardState, Why, step};

/// Something a user can do with a hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Issue the rectification notice (agency).
    Notify,
    /// Sign for the notice (enterprise).
    SignFor,
    /// Ask for more time (enterprise).
    RequestExtension,
    /// Grant the pending extension request.
    GrantExtension,
    /// Refuse the pending extension request.
    RefuseExtension,
    /// Submit the rectification with evidence (enterprise).
    SubmitRectification,
    /// Accept the submitted rectification on re-inspection (agency).
    Accept,
    /// Reject the submitted rectification (agency).
    Reject,
    /// Report the major hazard to the regulator (agency).
    ReportToRegulator,
    /// Put the major hazard under supervision (regulator).
    PutUnderSupervision,
    /// Lift supervision (regulator).
    LiftSupervision,
    /// Close (销号).
    Close,
    /// Reopen an accepted or closed hazard.
    Reopen,
    /// Raise the grade to major after the notice.
    Upgrade,
    /// Lower a major hazard to general after the notice (regulator).
    Downgrade,
    /// Edit the details (location, description, measure, ...).
    EditDetails,
    /// Edit the grade and deadline fields (before the notice only).
    EditTerms,
}

impl Action {
    /// Every action, in the order interfaces list them.
    pub const ALL: [Action; 17] = [
        Action::Notify,
        Action::SignFor,
        Action::RequestExtension,
        Action::GrantExtension,
        Action::RefuseExtension,
        Action::SubmitRectification,
        Action::Accept,
        Action::Reject,
        Action::ReportToRegulator,
        Action::PutUnderSupervision,
        Action::LiftSupervision,
        Action::Close,
        Action::Reopen,
        Action::Upgrade,
        Action::Downgrade,
        Action::EditDetails,
        Action::EditTerms,
    ];

    /// Stable snake_case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Action::Notify => "notify",
            Action::SignFor => "sign_for",
            Action::RequestExtension => "request_extension",
            Action::GrantExtension => "grant_extension",
            Action::RefuseExtension => "refuse_extension",
            Action::SubmitRectification => "submit_rectification",
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::ReportToRegulator => "report_to_regulator",
            Action::PutUnderSupervision => "put_under_supervision",
            Action::LiftSupervision => "lift_supervision",
            Action::Close => "close",
            Action::Reopen => "reopen",
            Action::Upgrade => "upgrade",
            Action::Downgrade => "downgrade",
            Action::EditDetails => "edit_details",
            Action::EditTerms => "edit_terms",
        }
    }

    /// Simplified Chinese label, English beside it.
    pub const fn label(&self) -> &'static str {
        match self {
            Action::Notify => "下达整改通知 / issue the notice",
            Action::SignFor => "签收 / sign for the notice",
            Action::RequestExtension => "申请延期 / ask for more time",
            Action::GrantExtension => "同意延期 / grant the extension",
            Action::RefuseExtension => "不同意延期 / refuse the extension",
            Action::SubmitRectification => "提交整改 / submit the rectification",
            Action::Accept => "复查通过 / accept",
            Action::Reject => "复查不通过 / reject",
            Action::ReportToRegulator => "上报监管部门 / report to the regulator",
            Action::PutUnderSupervision => "挂牌督办 / put under supervision",
            Action::LiftSupervision => "解除督办 / lift supervision",
            Action::Close => "销号 / close",
            Action::Reopen => "重新打开 / reopen",
            Action::Upgrade => "升为重大事故隐患 / upgrade to major",
            Action::Downgrade => "降为一般隐患 / downgrade to general",
            Action::EditDetails => "修改隐患信息 / edit the details",
            Action::EditTerms => "修改等级和期限 / edit grade and deadline",
        }
    }
}

/// Whether an action is possible now, and if not, the rule that stops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    /// The action.
    pub action: Action,
    /// `None` when possible; otherwise why not.
    pub why_not: Option<Why>,
}

impl Availability {
    /// Whether the action is possible.
    pub fn allowed(&self) -> bool {
        self.why_not.is_none()
    }
}

/// A placeholder photo standing for the evidence a submission will carry: the dry run asks
/// whether a submission *with evidence* is possible; the evidence itself is the user's input.
fn evidence_photo() -> PhotoRef {
    PhotoRef {
        sha256: "0".repeat(64),
        size: 1,
        media_type: "image/jpeg".into(),
        captured_at: None,
        gps: None,
        added_by: String::new(),
        original_sha256: None,
        exif_unreadable: None,
    }
}

/// The event an action records, as a dry run would try it, or `None` for detail edits.
fn candidate(
    action: Action,
    hazard: &HazardDoc,
    pending: Option<&(String, Deadline)>,
    deadline: Option<Deadline>,
) -> Option<EventKind> {
    let later = || {
        deadline
            .and_then(|d| d.date().checked_add(jiff::Span::new().days(30)).ok())
            .map(|d| Deadline::from_date(d).to_string())
            .unwrap_or_else(|| "2100-01-01".into())
    };
    let (request, until) = match pending {
        Some((id, until)) => (id.clone(), until.to_string()),
        None => (String::new(), later()),
    };
    Some(match action {
        Action::Notify => crate::edit::notice_for(hazard),
        Action::SignFor => EventKind::SignedFor { signer: "-".into() },
        Action::RequestExtension => EventKind::ExtensionRequested {
            until: later(),
            reason: "-".into(),
        },
        Action::GrantExtension => EventKind::ExtensionGranted { request, until },
        Action::RefuseExtension => EventKind::ExtensionRefused {
            request,
            reason: "-".into(),
        },
        Action::SubmitRectification => EventKind::RectificationSubmitted {
            note: "-".into(),
            photos: vec![evidence_photo()],
        },
        Action::Accept => EventKind::Verified {
            accepted: true,
            note: String::new(),
        },
        Action::Reject => EventKind::Verified {
            accepted: false,
            note: String::new(),
        },
        Action::ReportToRegulator => EventKind::ReportedToRegulator { to: "-".into() },
        Action::PutUnderSupervision => EventKind::SupervisionPut {
            note: String::new(),
        },
        Action::LiftSupervision => EventKind::SupervisionLifted {
            note: String::new(),
        },
        Action::Close => EventKind::Closed {
            note: String::new(),
        },
        Action::Reopen => EventKind::Reopened { reason: "-".into() },
        Action::Upgrade => EventKind::Regraded {
            grade: Grade::Major,
            reason: "-".into(),
        },
        Action::Downgrade => EventKind::Regraded {
            grade: Grade::General,
            reason: "-".into(),
        },
        Action::EditDetails | Action::EditTerms => return None,
    })
}

/// Every action with whether `author` may take it on `hazard` now. `in_scope` tells whether
/// the hazard's enterprise is in the author's scope (an active contract for agency staff).
pub fn allowed_actions(author: &Author, hazard: &HazardDoc, in_scope: bool) -> Vec<Availability> {
    let Ok(header) = hazard.header() else {
        return Action::ALL
            .iter()
            .map(|a| Availability {
                action: *a,
                why_not: Some(Why::NotYourRole),
            })
            .collect();
    };
    let status = crate::rectification::fold(
        &header,
        hazard.grade,
        hazard.original_deadline(),
        &hazard.events,
    );
    let relation = if in_scope {
        policy::relation_uuid(author.role, &author.org, &header)
    } else {
        Relation::None
    };
    Action::ALL
        .iter()
        .map(|&action| {
            let why_not = match candidate(
                action,
                hazard,
                status.pending_extension.as_ref(),
                status.deadline,
            ) {
                None => {
                    let may = policy::may_edit_details(author, &header, in_scope);
                    if !may {
                        Some(Why::NotYourRole)
                    } else if status.state == HazardState::Closed {
                        Some(Why::HazardClosed)
                    } else if action == Action::EditTerms && status.terms_fixed {
                        Some(Why::AlreadyNotified)
                    } else {
                        None
                    }
                }
                Some(kind) => {
                    if relation == Relation::None {
                        Some(Why::NotYourRole)
                    } else {
                        let five_missing = matches!(
                            kind,
                            EventKind::NoticeIssued {
                                grade: Grade::Major,
                                ..
                            }
                        ) && !hazard.missing_five_in_place().is_empty();
                        let ev = Event::by(author, String::new(), 0, kind);
                        let mut s = status.clone();
                        match step(&mut s, &header, &ev) {
                            Err(why) => Some(why),
                            Ok(()) if five_missing => Some(Why::FiveInPlaceMissing),
                            Ok(()) => None,
                        }
                    }
                }
            };
            Availability { action, why_not }
        })
        .collect()
}
