//! The rules checked against a reference model written apart from the fold.
//!
//! The model is a plain table: who (by role and relation to the hazard) may record which event
//! in which state, and what it does. Random sequences of events and detail edits, by every role
//! (including an inspector of another agency and a supervisor of another township), are made on
//! three replicas of one hazard that merge in random orders. After every step, on the replica
//! that changed, the folded state and `allowed_actions` of every author must equal the model's,
//! and four invariants hold: no major hazard is closed without a regulator's close (or a
//! regulator's downgrade first), no acceptance without a submission since the last rejection,
//! no deadline change without a grant, and the events recorded are never changed. A second
//! property plays signatures on a visit: tampering below the edit API by any role is refused by
//! the server's validation, and no signature once made changes or goes, however replicas merge.
#![allow(clippy::unwrap_used)]

mod common;

use common::World;
use proptest::prelude::*;
use sync_core::actions::{Action, allowed_actions};
use sync_core::automerge::Automerge;
use sync_core::doc::HazardDoc;
use sync_core::domain::{Author, Grade, PhotoRef, Role};
use sync_core::edit::{self, EditError};
use sync_core::ids::{EventId, HazardId, VisitId};
use sync_core::rectification::{EventKind, HazardState, fold};

// ---------------------------------------------------------------------------------------------
// The reference model.

/// Who speaks, by relation to the hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Agency,
    OtherAgency,
    Enterprise,
    Township,
    OtherTownship,
}

const WHO: [Who; 5] = [
    Who::Agency,
    Who::OtherAgency,
    Who::Enterprise,
    Who::Township,
    Who::OtherTownship,
];

fn author(w: &World, who: Who) -> &Author {
    match who {
        Who::Agency => &w.inspector,
        Who::OtherAgency => &w.foreign_inspector,
        Who::Enterprise => &w.manager,
        Who::Township => &w.supervisor,
        Who::OtherTownship => &w.other_supervisor,
    }
}

fn who_of(w: &World, user: &str) -> Who {
    *WHO.iter()
        .find(|x| author(w, **x).user.to_string() == user)
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Open,
    Notified,
    InProgress,
    Submitted,
    Accepted,
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
struct Model {
    st: St,
    major: bool,
    deadline: String,
    pending: Option<(String, String)>,
    supervised: bool,
    closed_by_township: bool,
    terms_fixed: bool,
    reported: bool,
}

/// One event as the model sees it.
#[derive(Debug, Clone)]
enum Ev {
    Notice { major: bool, deadline: String },
    SignFor,
    Request { id: String, until: String },
    Grant { req: String, until: String },
    Refuse { req: String },
    Submit { photo: bool, note: bool },
    Verify { accepted: bool },
    Report,
    SupPut,
    SupLift,
    Close,
    Reopen,
    Regrade { major: bool },
}

fn may_grant(who: Who, major: bool) -> bool {
    who == Who::Township || (who == Who::Agency && !major)
}

/// The table: `Some(new model)` when `who` may record `ev` in `m` and it takes effect.
fn model_step(m: &Model, who: Who, ev: &Ev) -> Option<Model> {
    use St::*;
    let mut n = m.clone();
    let ok = match (who, ev) {
        (Who::Agency, Ev::Notice { major, deadline }) if m.st == Open => {
            n.st = Notified;
            n.major = *major;
            n.deadline = deadline.clone();
            n.terms_fixed = true;
            true
        }
        (Who::Enterprise, Ev::SignFor) if m.st == Notified => {
            n.st = InProgress;
            true
        }
        (Who::Enterprise, Ev::Request { id, until })
            if matches!(m.st, Notified | InProgress)
                && m.pending.is_none()
                && *until > m.deadline =>
        {
            n.pending = Some((id.clone(), until.clone()));
            true
        }
        (w, Ev::Grant { req, until })
            if may_grant(w, m.major)
                && m.st != Closed
                && m.pending.as_ref().is_some_and(|(p, _)| p == req)
                && *until > m.deadline =>
        {
            n.deadline = until.clone();
            n.pending = None;
            true
        }
        (w, Ev::Refuse { req })
            if may_grant(w, m.major)
                && m.st != Closed
                && m.pending.as_ref().is_some_and(|(p, _)| p == req) =>
        {
            n.pending = None;
            true
        }
        (Who::Enterprise, Ev::Submit { photo, note })
            if matches!(m.st, Notified | InProgress) && (*photo || (!m.major && *note)) =>
        {
            n.st = Submitted;
            true
        }
        (Who::Agency, Ev::Verify { accepted }) if m.st == Submitted => {
            n.st = if *accepted { Accepted } else { InProgress };
            true
        }
        (Who::Agency, Ev::Report) if m.st != Closed && m.major => {
            n.reported = true;
            true
        }
        (Who::Township, Ev::SupPut) if m.st != Closed && m.major && !m.supervised => {
            n.supervised = true;
            true
        }
        (Who::Township, Ev::SupLift) if m.supervised => {
            n.supervised = false;
            true
        }
        (Who::Agency | Who::Township, Ev::Close)
            if m.st == Accepted && (!m.major || who == Who::Township) =>
        {
            n.st = Closed;
            n.closed_by_township = who == Who::Township;
            n.supervised = false;
            n.pending = None;
            true
        }
        (Who::Agency | Who::Township, Ev::Reopen)
            if m.st == Accepted
                || (m.st == Closed && (!m.closed_by_township || who == Who::Township)) =>
        {
            n.st = InProgress;
            n.closed_by_township = false;
            true
        }
        (Who::Agency | Who::Township, Ev::Regrade { major })
            if !matches!(m.st, Open | Closed)
                && *major != m.major
                && (*major || who == Who::Township) =>
        {
            n.major = *major;
            if !n.major {
                n.supervised = false;
            }
            true
        }
        _ => false,
    };
    ok.then_some(n)
}

fn ev_of(kind: &EventKind) -> Ev {
    match kind {
        EventKind::NoticeIssued { grade, deadline } => Ev::Notice {
            major: *grade == Grade::Major,
            deadline: deadline.clone(),
        },
        EventKind::SignedFor { .. } => Ev::SignFor,
        EventKind::ExtensionRequested { until, .. } => Ev::Request {
            id: String::new(),
            until: until.clone(),
        },
        EventKind::ExtensionGranted { request, until } => Ev::Grant {
            req: request.clone(),
            until: until.clone(),
        },
        EventKind::ExtensionRefused { request, .. } => Ev::Refuse {
            req: request.clone(),
        },
        EventKind::RectificationSubmitted { note, photos } => Ev::Submit {
            photo: !photos.is_empty(),
            note: !note.trim().is_empty(),
        },
        EventKind::Verified { accepted, .. } => Ev::Verify {
            accepted: *accepted,
        },
        EventKind::ReportedToRegulator { .. } => Ev::Report,
        EventKind::SupervisionPut { .. } => Ev::SupPut,
        EventKind::SupervisionLifted { .. } => Ev::SupLift,
        EventKind::Closed { .. } => Ev::Close,
        EventKind::Reopened { .. } => Ev::Reopen,
        EventKind::Regraded { grade, .. } => Ev::Regrade {
            major: *grade == Grade::Major,
        },
        EventKind::Notified => unreachable!("never recorded under the current rules"),
    }
}

/// The model's fold of a document: the details' grade and deadline, then every event in
/// document order. Also returns, per event, whether it took effect.
fn model_fold(w: &World, h: &HazardDoc) -> (Model, Vec<bool>) {
    let mut m = Model {
        st: St::Open,
        major: h.grade == Grade::Major,
        deadline: h.deadline.clone(),
        pending: None,
        supervised: false,
        closed_by_township: false,
        terms_fixed: false,
        reported: false,
    };
    let mut applied = Vec::new();
    for e in &h.events {
        let mut ev = ev_of(&e.kind);
        if let Ev::Request { id, .. } = &mut ev {
            *id = e.id.clone();
        }
        match model_step(&m, who_of(w, &e.author), &ev) {
            Some(n) => {
                m = n;
                applied.push(true);
            }
            None => applied.push(false),
        }
    }
    (m, applied)
}

/// The model's answer to "may `who` take `action` now": the candidate event an interface would
/// record, through the table.
fn model_allows(m: &Model, who: Who, action: Action, five_in_place: bool) -> bool {
    let later = "2100-01-01".to_owned();
    let (req, until) = m.pending.clone().unwrap_or((String::new(), later.clone()));
    let ev = match action {
        Action::Notify => {
            return model_step(
                m,
                who,
                &Ev::Notice {
                    major: m.major,
                    deadline: m.deadline.clone(),
                },
            )
            .is_some()
                && (!m.major || five_in_place);
        }
        Action::SignFor => Ev::SignFor,
        Action::RequestExtension => Ev::Request {
            id: String::new(),
            until: later,
        },
        Action::GrantExtension => Ev::Grant { req, until },
        Action::RefuseExtension => Ev::Refuse { req },
        Action::SubmitRectification => Ev::Submit {
            photo: true,
            note: true,
        },
        Action::Accept => Ev::Verify { accepted: true },
        Action::Reject => Ev::Verify { accepted: false },
        Action::ReportToRegulator => Ev::Report,
        Action::PutUnderSupervision => Ev::SupPut,
        Action::LiftSupervision => Ev::SupLift,
        Action::Close => Ev::Close,
        Action::Reopen => Ev::Reopen,
        Action::Upgrade => Ev::Regrade { major: true },
        Action::Downgrade => Ev::Regrade { major: false },
        Action::EditDetails => return who == Who::Agency && m.st != St::Closed,
        Action::EditTerms => return who == Who::Agency && m.st != St::Closed && !m.terms_fixed,
    };
    model_step(m, who, &ev).is_some()
}

// ---------------------------------------------------------------------------------------------
// The random walk.

#[derive(Debug, Clone)]
enum Step {
    /// On replica `r`, `who` records an event of kind `k` with parameter `p`.
    Event { r: usize, who: usize, k: u8, p: u8 },
    /// On replica `r`, the agency's inspector edits grade, deadline or the emergency plan.
    Edit { r: usize, field: u8, p: u8 },
    /// Replica `a` receives everything replica `b` has.
    Merge { a: usize, b: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        // Mostly the role an event kind belongs to, so that walks reach every state; sometimes
        // anyone, including another agency and another township.
        6 => (0usize..3, 0usize..20, 0u8..13, any::<u8>()).prop_map(|(r, who, k, p)| Step::Event {
            r,
            who: if who < 5 { who } else { natural(k, p) },
            k,
            p,
        }),
        1 => (0usize..3, 0u8..3, any::<u8>()).prop_map(|(r, field, p)| Step::Edit { r, field, p }),
        2 => (0usize..3, 0usize..3).prop_map(|(a, b)| Step::Merge { a, b }),
    ]
}

/// The role that records event kind `k` in practice (an index into [`WHO`]).
fn natural(k: u8, p: u8) -> usize {
    let agency_or_township = if p.is_multiple_of(2) { 0 } else { 3 };
    match k {
        0 | 6 | 7 => 0,
        1 | 2 | 5 => 2,
        8 | 9 => 3,
        _ => agency_or_township,
    }
}

const DATES: [&str; 4] = ["2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01"];

fn photo() -> PhotoRef {
    PhotoRef {
        sha256: "ab".repeat(32),
        size: 1000,
        media_type: "image/jpeg".into(),
        captured_at: None,
        gps: None,
        added_by: String::new(),
        original_sha256: None,
        exif_unreadable: None,
    }
}

fn kind_for(h: &HazardDoc, k: u8, p: u8) -> EventKind {
    let status = h.status().unwrap();
    let date = DATES[p as usize % DATES.len()].to_owned();
    // Answers usually name the pending request, sometimes an old or unknown one.
    let req = match (&status.pending_extension, p % 4) {
        (Some((id, _)), 0..=2) => id.clone(),
        _ => h
            .events
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::ExtensionRequested { .. }))
            .map(|e| e.id.clone())
            .unwrap_or_else(|| uuid::Uuid::from_u128(7).to_string()),
    };
    match k {
        0 => EventKind::Notified,
        1 => EventKind::SignedFor {
            signer: "张三".into(),
        },
        2 => EventKind::ExtensionRequested {
            until: date,
            reason: "设备到货慢".into(),
        },
        3 => EventKind::ExtensionGranted {
            request: req,
            until: date,
        },
        4 => EventKind::ExtensionRefused {
            request: req,
            reason: "理由不充分".into(),
        },
        5 => EventKind::RectificationSubmitted {
            note: if p.is_multiple_of(2) {
                "已整改".into()
            } else {
                String::new()
            },
            photos: if p.is_multiple_of(3) {
                vec![]
            } else {
                vec![photo()]
            },
        },
        6 => EventKind::Verified {
            accepted: !p.is_multiple_of(3),
            note: String::new(),
        },
        7 => EventKind::ReportedToRegulator {
            to: "镇应急办".into(),
        },
        8 => EventKind::SupervisionPut {
            note: String::new(),
        },
        9 => EventKind::SupervisionLifted {
            note: String::new(),
        },
        10 => EventKind::Closed {
            note: String::new(),
        },
        11 => EventKind::Reopened {
            reason: "复查发现问题".into(),
        },
        _ => EventKind::Regraded {
            grade: if p.is_multiple_of(2) {
                Grade::Major
            } else {
                Grade::General
            },
            reason: "重新判定".into(),
        },
    }
}

/// Which action an event kind is, for comparing a recording with `allowed_actions`.
fn action_of(kind: &EventKind) -> Action {
    match kind {
        EventKind::Notified | EventKind::NoticeIssued { .. } => Action::Notify,
        EventKind::SignedFor { .. } => Action::SignFor,
        EventKind::ExtensionRequested { .. } => Action::RequestExtension,
        EventKind::ExtensionGranted { .. } => Action::GrantExtension,
        EventKind::ExtensionRefused { .. } => Action::RefuseExtension,
        EventKind::RectificationSubmitted { .. } => Action::SubmitRectification,
        EventKind::Verified { accepted: true, .. } => Action::Accept,
        EventKind::Verified { .. } => Action::Reject,
        EventKind::ReportedToRegulator { .. } => Action::ReportToRegulator,
        EventKind::SupervisionPut { .. } => Action::PutUnderSupervision,
        EventKind::SupervisionLifted { .. } => Action::LiftSupervision,
        EventKind::Closed { .. } => Action::Close,
        EventKind::Reopened { .. } => Action::Reopen,
        EventKind::Regraded {
            grade: Grade::Major,
            ..
        } => Action::Upgrade,
        EventKind::Regraded { .. } => Action::Downgrade,
    }
}

fn hydrate(d: &Automerge) -> HazardDoc {
    HazardDoc::hydrate_from(d).unwrap()
}

/// Compares the fold and `allowed_actions` of one replica with the model, and checks the
/// invariants on its history.
fn check(w: &World, d: &Automerge) -> Result<(), TestCaseError> {
    let h = hydrate(d);
    let header = h.header().unwrap();
    let s = fold(&header, h.grade, h.original_deadline(), &h.events);
    let (m, applied) = model_fold(w, &h);
    let state = match s.state {
        HazardState::Open => St::Open,
        HazardState::Notified => St::Notified,
        HazardState::InProgress => St::InProgress,
        HazardState::Submitted => St::Submitted,
        HazardState::Accepted => St::Accepted,
        HazardState::Closed => St::Closed,
    };
    prop_assert_eq!(state, m.st);
    prop_assert_eq!(s.grade == Grade::Major, m.major);
    prop_assert_eq!(s.deadline.map(|d| d.to_string()), Some(m.deadline.clone()));
    prop_assert_eq!(
        s.pending_extension
            .as_ref()
            .map(|(i, d)| (i.clone(), d.to_string())),
        m.pending.clone()
    );
    prop_assert_eq!(s.under_supervision, m.supervised);
    prop_assert_eq!(s.terms_fixed, m.terms_fixed);
    prop_assert_eq!(s.reported_at.is_some(), m.reported);
    let fold_applied: Vec<bool> = s.outcomes.iter().map(|o| o.ignored.is_none()).collect();
    prop_assert_eq!(&fold_applied, &applied);

    for who in WHO {
        let a = author(w, who);
        let in_scope = !w.scope(a).is_empty();
        for av in allowed_actions(a, &h, in_scope) {
            let five = h.missing_five_in_place().is_empty();
            prop_assert_eq!(
                av.allowed(),
                model_allows(&m, who, av.action, five),
                "{:?} {:?} in {:?}: fold says {:?}",
                who,
                av.action,
                m.st,
                av.why_not
            );
        }
    }

    // Invariants, on the history that took effect.
    let mut major = h.grade == Grade::Major;
    let mut deadline = h.deadline.clone();
    let mut submitted = false;
    for (e, ok) in h.events.iter().zip(&applied) {
        if !ok {
            continue;
        }
        let who = who_of(w, &e.author);
        match &e.kind {
            EventKind::NoticeIssued { grade, deadline: d } => {
                major = *grade == Grade::Major;
                deadline = d.clone();
            }
            EventKind::Regraded { grade, .. } => {
                if major && *grade == Grade::General {
                    prop_assert_eq!(who, Who::Township, "only a regulator downgrades");
                }
                major = *grade == Grade::Major;
            }
            EventKind::ExtensionGranted { until, .. } => deadline = until.clone(),
            EventKind::RectificationSubmitted { .. } => submitted = true,
            EventKind::Verified { accepted, .. } => {
                prop_assert!(submitted, "verified without a submission");
                submitted = false;
                let _ = accepted;
            }
            EventKind::Closed { .. } if major => {
                prop_assert_eq!(who, Who::Township, "a major hazard closed by {:?}", who);
            }
            _ => {}
        }
    }
    prop_assert_eq!(
        s.deadline.map(|d| d.to_string()),
        Some(deadline),
        "the deadline moved without a grant"
    );
    Ok(())
}

/// The same user on replica `r`'s device: its own device id and Automerge actor, as every
/// phone has.
fn on_replica(a: &Author, r: usize) -> Author {
    let n = a.user.as_uuid().as_u128() * 8 + r as u128;
    Author {
        device: sync_core::ids::DeviceId::from_uuid(uuid::Uuid::from_u128(0x7000_0000 + n)),
        actors: vec![sync_core::automerge::ActorId::from(
            uuid::Uuid::from_u128(0x9000_0000 + n).as_bytes().to_vec(),
        )],
        ..a.clone()
    }
}

struct Replica {
    doc: Automerge,
}

fn run(w: &World, five_in_place: bool, grade: Grade, steps: &[Step]) -> Result<(), TestCaseError> {
    let hid = HazardId::from_uuid(uuid::Uuid::from_u128(0xfeed));
    let (doc, _) = w.hazard(
        hid,
        VisitId::from_uuid(uuid::Uuid::from_u128(0xbeef)),
        grade,
    );
    let doc = if five_in_place {
        doc
    } else {
        edit::edit_hazard(&doc, &w.inspector, 1_760_000_010_000, |h| {
            h.emergency_plan = String::new()
        })
        .unwrap()
        .doc
    };
    let mut replicas: Vec<Replica> = (0..3).map(|_| Replica { doc: doc.clone() }).collect();
    let mut recorded: Vec<sync_core::rectification::Event> = Vec::new();
    for (n, st) in steps.iter().enumerate() {
        let at = 1_760_000_100_000 + n as i64;
        let touched = match st {
            Step::Event { r, who, k, p } => {
                let who = WHO[*who];
                let a = &on_replica(author(w, who), *r);
                let d = &replicas[*r].doc;
                let h = hydrate(d);
                let kind = kind_for(&h, *k, *p);
                let in_scope = !w.scope(a).is_empty();
                let expected = allowed_actions(a, &h, in_scope)
                    .into_iter()
                    .find(|x| x.action == action_of(&kind))
                    .unwrap();
                let id = EventId::from_uuid(uuid::Uuid::from_u128(0x1_0000 + n as u128));
                match edit::record_event(d, a, id, at, kind.clone()) {
                    Ok(e) => {
                        // What allowed_actions offers can be recorded; parameters the dry run
                        // does not choose (an old request, a date not later, no evidence) may
                        // still stop an offered action, never the other way round.
                        prop_assert!(
                            expected.allowed(),
                            "{:?} recorded {:?} that was not offered",
                            who,
                            kind
                        );
                        recorded.push(hydrate(&e.doc).events.last().unwrap().clone());
                        replicas[*r].doc = e.doc;
                    }
                    Err(EditError::NotNow(_) | EditError::Refused(_)) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("edit failed: {e}"))),
                }
                *r
            }
            Step::Edit { r, field, p } => {
                let d = &replicas[*r].doc;
                let result =
                    edit::edit_hazard(d, &on_replica(&w.inspector, *r), at, |h| match field {
                        0 => {
                            h.grade = if p.is_multiple_of(2) {
                                Grade::Major
                            } else {
                                Grade::General
                            }
                        }
                        1 => h.deadline = DATES[*p as usize % DATES.len()].to_owned(),
                        _ => {
                            h.emergency_plan = if p.is_multiple_of(2) {
                                String::new()
                            } else {
                                "停用设备".into()
                            }
                        }
                    });
                let seen = hydrate(d).status().unwrap();
                let fixed = seen.terms_fixed;
                let closed = seen.state == HazardState::Closed;
                match result {
                    Ok(e) => {
                        prop_assert!(
                            e.change.is_none() || !(closed || (fixed && *field < 2)),
                            "a term edited after the notice, or a closed hazard edited"
                        );
                        replicas[*r].doc = e.doc;
                    }
                    Err(EditError::Refused(rs)) => {
                        prop_assert!(closed || (fixed && *field < 2), "refused {:?}", rs);
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("edit failed: {e}"))),
                }
                *r
            }
            Step::Merge { a, b } => {
                if a == b {
                    continue;
                }
                let mut other = replicas[*b].doc.clone();
                replicas[*a].doc.merge(&mut other).unwrap();
                *a
            }
        };
        check(w, &replicas[touched].doc)?;
    }
    // Everyone merges everything: the same state everywhere, and no recorded event changed.
    let mut all = replicas[0].doc.clone();
    for r in &mut replicas[1..] {
        all.merge(&mut r.doc).unwrap();
    }
    check(w, &all)?;
    let events = hydrate(&all).events;
    for e in &recorded {
        prop_assert!(events.contains(e), "event {} changed or lost", e.id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("RULES_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_fold_and_allowed_actions_follow_the_model(
        steps in proptest::collection::vec(step(), 1..28),
        five in any::<bool>(),
        major in any::<bool>(),
    ) {
        let w = World::new();
        run(&w, five, if major { Grade::Major } else { Grade::General }, &steps)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures on the hazard list: whatever anyone does, on whichever replica, a signature once
// made never changes and never goes.

#[derive(Debug, Clone)]
enum SigStep {
    /// On replica `r`, author `who` records a new signature covering the hazard.
    Sign { r: usize, who: usize },
    /// On replica `r`, author `who` writes a change below the edit API that alters signature
    /// `k` (`how`: rename the signer, remove it, drop its hazards, move its time, replace the
    /// whole list), and the server's validation is asked to take it.
    Tamper {
        r: usize,
        who: usize,
        k: usize,
        how: u8,
    },
    /// On replica `r`, the inspector edits the visit's notes.
    Notes { r: usize, p: u8 },
    /// Replica `a` receives everything replica `b` has.
    Merge { a: usize, b: usize },
}

fn sig_step() -> impl Strategy<Value = SigStep> {
    prop_oneof![
        2 => (0usize..3, 0usize..4).prop_map(|(r, who)| SigStep::Sign { r, who }),
        3 => (0usize..3, 0usize..4, 0usize..4, 0u8..5)
            .prop_map(|(r, who, k, how)| SigStep::Tamper { r, who, k, how }),
        1 => (0usize..3, any::<u8>()).prop_map(|(r, p)| SigStep::Notes { r, p }),
        2 => (0usize..3, 0usize..3).prop_map(|(a, b)| SigStep::Merge { a, b }),
    ]
}

fn signatures(d: &Automerge) -> Vec<sync_core::doc::visit::ListSignature> {
    sync_core::doc::VisitDoc::hydrate_from(d)
        .unwrap()
        .signatures
}

/// Plays `steps`; returns how many signatures were made and how many tampers were refused.
fn run_signatures(w: &World, steps: &[SigStep]) -> Result<(usize, usize), TestCaseError> {
    let vid = VisitId::from_uuid(uuid::Uuid::from_u128(0xbeef));
    let (_, visit, _) = w.visit(vid);
    let (hazard, _) = w.hazard(
        HazardId::from_uuid(uuid::Uuid::from_u128(0xfeed)),
        vid,
        Grade::General,
    );
    let hazard = hydrate(&hazard);
    let header = sync_core::doc::read_header(&visit).unwrap();
    let authors = [
        &w.inspector,
        &w.inspector2,
        &w.foreign_inspector,
        &w.manager,
    ];
    let all = |_: &sync_core::doc::Header| true;
    let mut replicas = vec![visit.clone(), visit.clone(), visit];
    // Every signature accepted, as it was made.
    let mut made: std::collections::HashMap<String, sync_core::doc::visit::ListSignature> =
        std::collections::HashMap::new();
    let mut refused = 0;
    for (n, st) in steps.iter().enumerate() {
        let at = 1_760_000_100_000 + n as i64;
        match st {
            SigStep::Sign { r, who } => {
                let a = on_replica(authors[*who], *r);
                let id = uuid::Uuid::from_u128(0x5_0000 + n as u128);
                if let Ok(e) = edit::sign_hazard_list(
                    &replicas[*r],
                    std::slice::from_ref(&hazard),
                    &a,
                    id,
                    "王厂长",
                    photo(),
                    at,
                ) {
                    let sig = signatures(&e.doc)
                        .into_iter()
                        .find(|s| s.id == id.hyphenated().to_string())
                        .unwrap();
                    made.insert(sig.id.clone(), sig);
                    replicas[*r] = e.doc;
                }
            }
            SigStep::Tamper { r, who, k, how } => {
                let before = &replicas[*r];
                let present = signatures(before);
                if present.is_empty() {
                    continue;
                }
                let k = *k % present.len();
                let a = on_replica(authors[*who], *r);
                let e =
                    edit::modify::<sync_core::doc::VisitDoc>(
                        before,
                        &a.actors[0],
                        at,
                        |v| match how {
                            0 => v.signatures[k].signer_name = "李四".into(),
                            1 => {
                                v.signatures.remove(k);
                            }
                            2 => v.signatures[k].hazards.clear(),
                            3 => v.signatures[k].signed_at += 1,
                            _ => v.signatures = vec![v.signatures[k].clone()],
                        },
                    )
                    .unwrap();
                let Some(change) = e.change else {
                    continue; // nothing to change (the list already was that one signature)
                };
                let verdict = sync_core::validate::validate_batch(
                    Some(before),
                    header.id,
                    sync_core::doc::DocKind::Visit,
                    &[change],
                    &a,
                    &all,
                );
                prop_assert!(
                    verdict.is_err(),
                    "{:?} changed signature {} ({how}) and the server took it",
                    a.role,
                    present[k].id
                );
                refused += 1;
            }
            SigStep::Notes { r, p } => {
                let a = on_replica(&w.inspector, *r);
                let e = edit::edit_visit(&replicas[*r], &a, at, |v| {
                    v.notes = format!("现场记录 {p}").as_str().into()
                })
                .unwrap();
                replicas[*r] = e.doc;
            }
            SigStep::Merge { a, b } => {
                if a != b {
                    let mut other = replicas[*b].clone();
                    replicas[*a].merge(&mut other).unwrap();
                }
            }
        }
        for d in &replicas {
            for s in signatures(d) {
                prop_assert_eq!(Some(&s), made.get(&s.id), "a signature changed");
            }
        }
    }
    let mut all_docs = replicas[0].clone();
    for d in &mut replicas[1..] {
        all_docs.merge(d).unwrap();
    }
    let kept = signatures(&all_docs);
    prop_assert_eq!(kept.len(), made.len(), "a signature went");
    for s in kept {
        prop_assert_eq!(Some(&s), made.get(&s.id));
    }
    Ok((made.len(), refused))
}

/// The property is not empty: inspectors of the agency sign on two replicas, every kind of
/// tamper is tried by the agency's own inspector and refused, and both signatures survive.
#[test]
fn signatures_are_made_and_every_kind_of_tamper_is_refused() {
    let w = World::new();
    let mut steps = vec![
        SigStep::Sign { r: 0, who: 0 },
        SigStep::Sign { r: 1, who: 1 },
    ];
    for how in 0..5 {
        steps.push(SigStep::Tamper {
            r: 0,
            who: 0,
            k: 0,
            how,
        });
    }
    steps.push(SigStep::Merge { a: 2, b: 0 });
    steps.push(SigStep::Merge { a: 2, b: 1 });
    for how in 0..5 {
        steps.push(SigStep::Tamper {
            r: 2,
            who: 1,
            k: 1,
            how,
        });
    }
    let (made, refused) = run_signatures(&w, &steps).unwrap();
    assert_eq!(made, 2);
    // Replacing a one-signature list by that signature changes nothing on replica 0, so four
    // tampers there and five on the merged replica.
    assert_eq!(refused, 9);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("RULES_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_signature_once_made_never_changes_whoever_edits_and_however_replicas_merge(
        steps in proptest::collection::vec(sig_step(), 1..20),
    ) {
        let w = World::new();
        run_signatures(&w, &steps)?;
    }
}

#[test]
fn the_model_says_no_to_every_other_agency_and_township() {
    // A sanity check of the table itself: strangers can do nothing in any state.
    for st in [
        St::Open,
        St::Notified,
        St::InProgress,
        St::Submitted,
        St::Accepted,
        St::Closed,
    ] {
        let m = Model {
            st,
            major: true,
            deadline: DATES[0].into(),
            pending: Some(("r".into(), DATES[1].into())),
            supervised: true,
            closed_by_township: false,
            terms_fixed: st != St::Open,
            reported: false,
        };
        for who in [Who::OtherAgency, Who::OtherTownship] {
            for a in Action::ALL {
                assert!(!model_allows(&m, who, a, true), "{who:?} {a:?} in {st:?}");
            }
        }
    }
    let _ = Role::Inspector;
}
