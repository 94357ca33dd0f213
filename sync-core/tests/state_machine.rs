//! Property tests of the rectification state machine: whatever events arrive, in whatever order
//! and from whomever, the fold never closes a hazard without an accepted verification, never
//! lets a role outside the policy move a hazard, and never closes a major hazard without a
//! supervisor of its township.
#![allow(clippy::unwrap_used)]

mod common;

use common::World;
use proptest::prelude::*;
use sync_core::doc::DocKind;
use sync_core::domain::{Author, Deadline, Grade, Role};
use sync_core::policy::{self, Relation};
use sync_core::rectification::{Event, EventKind, HazardState, fold};

fn kinds() -> Vec<EventKind> {
    let mut v = policy::sample_kinds();
    // Requests and grants that refer to each other.
    v.push(EventKind::ExtensionRequested {
        until: "2026-04-01".into(),
        reason: "设备到货慢".into(),
    });
    v
}

fn authors(w: &World) -> Vec<Author> {
    vec![
        w.inspector.clone(),
        w.foreign_inspector.clone(),
        w.manager.clone(),
        w.supervisor.clone(),
        w.other_supervisor.clone(),
    ]
}

prop_compose! {
    fn events()(picks in proptest::collection::vec((0usize..5, 0usize..14, any::<bool>()), 0..40)) -> Vec<(usize, usize, bool)> {
        picks
    }
}

fn build(w: &World, picks: &[(usize, usize, bool)]) -> Vec<Event> {
    let authors = authors(w);
    let kinds = kinds();
    let mut last_request: Option<String> = None;
    picks
        .iter()
        .enumerate()
        .map(|(i, (a, k, flag))| {
            let author = &authors[*a];
            let id = uuid::Uuid::from_u128(i as u128 + 1).to_string();
            let mut kind = kinds[*k % kinds.len()].clone();
            match &mut kind {
                EventKind::ExtensionRequested { until, .. } => {
                    *until = "2026-05-01".into();
                    last_request = Some(id.clone());
                }
                EventKind::ExtensionGranted { request, until } => {
                    *request = last_request.clone().unwrap_or_default();
                    *until = "2026-05-01".into();
                }
                EventKind::ExtensionRefused { request, .. } => {
                    *request = last_request.clone().unwrap_or_default()
                }
                EventKind::Verified { accepted, .. } => *accepted = *flag,
                _ => {}
            }
            Event {
                id,
                at: i as i64,
                author: author.user.to_string(),
                role: author.role,
                org: author.org.to_string(),
                device: author.device.to_string(),
                kind,
                rules: None,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_events_breaks_the_rules(picks in events(), major in any::<bool>()) {
        let w = World::new();
        let header = w.header(DocKind::Hazard, uuid::Uuid::from_u128(9), &w.inspector);
        let grade = if major { Grade::Major } else { Grade::General };
        let evs = build(&w, &picks);
        let status = fold(&header, grade, Deadline::parse("2026-03-01").ok(), &evs);

        let mut accepted_since_reopen = false;
        for (ev, outcome) in evs.iter().zip(&status.outcomes) {
            prop_assert_eq!(&outcome.event, &ev.id);
            if outcome.ignored.is_some() {
                continue;
            }
            let relation = policy::relation(ev.role, &ev.org, &header);
            prop_assert!(policy::may_record(ev.role, relation, &ev.kind), "{} moved the hazard with {}", ev.role, ev.kind.name());
            match &ev.kind {
                EventKind::Verified { accepted: true, .. } => accepted_since_reopen = true,
                EventKind::Verified { accepted: false, .. } | EventKind::Reopened { .. } => accepted_since_reopen = false,
                EventKind::Closed { .. } => {
                    prop_assert!(accepted_since_reopen, "closed without an accepted verification");
                    if grade == Grade::Major {
                        prop_assert_eq!(ev.role, Role::Supervisor);
                        prop_assert_eq!(relation, Relation::Township);
                    } else {
                        prop_assert_eq!(ev.role, Role::Inspector);
                    }
                    accepted_since_reopen = false;
                }
                _ => {}
            }
        }
        if status.state == HazardState::Closed {
            prop_assert!(status.accepted_by.is_some());
            prop_assert!(status.closed_by.is_some());
        }
        // Overdue only while a rectification is owed.
        let late: jiff::Timestamp = "2027-01-01T00:00:00Z".parse().expect("time");
        prop_assert_eq!(status.is_overdue(late), status.state.awaits_rectification());
    }
}

#[test]
fn the_full_path_closes_a_major_hazard_only_through_the_supervisor() {
    let w = World::new();
    let header = w.header(DocKind::Hazard, uuid::Uuid::from_u128(9), &w.inspector);
    let mk = |i: u128, a: &Author, kind: EventKind| Event {
        id: uuid::Uuid::from_u128(i).to_string(),
        at: i as i64,
        author: a.user.to_string(),
        role: a.role,
        org: a.org.to_string(),
        device: a.device.to_string(),
        kind,
        rules: None,
    };
    let mut evs = vec![
        mk(1, &w.inspector, EventKind::Notified),
        mk(
            2,
            &w.manager,
            EventKind::SignedFor {
                signer: "张三".into(),
            },
        ),
        mk(
            3,
            &w.manager,
            EventKind::RectificationSubmitted {
                note: "已加装防护罩".into(),
                photos: vec![],
            },
        ),
        mk(
            4,
            &w.inspector,
            EventKind::Verified {
                accepted: true,
                note: String::new(),
            },
        ),
        mk(
            5,
            &w.inspector,
            EventKind::Closed {
                note: String::new(),
            },
        ),
    ];
    let s = fold(&header, Grade::Major, None, &evs);
    assert_eq!(
        s.state,
        HazardState::Accepted,
        "an inspector cannot close a major hazard"
    );
    assert_eq!(
        s.outcomes[4].ignored,
        Some(sync_core::rectification::Why::MajorNeedsRegulator)
    );
    evs.push(mk(
        6,
        &w.supervisor,
        EventKind::Closed {
            note: "验收合格".into(),
        },
    ));
    let s = fold(&header, Grade::Major, None, &evs);
    assert_eq!(s.state, HazardState::Closed);
    assert_eq!(
        s.closed_by.as_deref(),
        Some(w.supervisor.user.to_string().as_str())
    );
}

#[test]
fn a_granted_extension_moves_the_deadline_and_lifts_overdue() {
    let w = World::new();
    let header = w.header(DocKind::Hazard, uuid::Uuid::from_u128(9), &w.inspector);
    let mk = |i: u128, a: &Author, kind: EventKind| Event {
        id: uuid::Uuid::from_u128(i).to_string(),
        at: i as i64,
        author: a.user.to_string(),
        role: a.role,
        org: a.org.to_string(),
        device: a.device.to_string(),
        kind,
        rules: None,
    };
    let req = uuid::Uuid::from_u128(1).to_string();
    let evs = vec![
        mk(
            1,
            &w.manager,
            EventKind::ExtensionRequested {
                until: "2026-04-30".into(),
                reason: "停产检修".into(),
            },
        ),
        mk(
            2,
            &w.inspector,
            EventKind::ExtensionGranted {
                request: req,
                until: "2026-04-30".into(),
            },
        ),
    ];
    let now: jiff::Timestamp = "2026-03-10T02:00:00Z".parse().expect("time");
    let before = fold(
        &header,
        Grade::General,
        Deadline::parse("2026-03-01").ok(),
        &evs[..1],
    );
    assert!(before.is_overdue(now));
    let after = fold(
        &header,
        Grade::General,
        Deadline::parse("2026-03-01").ok(),
        &evs,
    );
    assert_eq!(after.deadline, Deadline::parse("2026-04-30").ok());
    assert!(!after.is_overdue(now));
}
