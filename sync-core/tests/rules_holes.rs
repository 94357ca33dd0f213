//! One regression test per hole that let a role get round the rules (issue #12), each named as
//! the rule it restores. Every test plays the attack through the same paths a phone and the
//! server use: `edit` (the local check) and `validate_batch` (the server's check), and reads the
//! outcome from the fold.
#![allow(clippy::unwrap_used)]

mod common;

use common::World;
use sync_core::automerge::Automerge;
use sync_core::doc::visit::SignedState;
use sync_core::doc::{DocKind, HazardDoc, VisitDoc};
use sync_core::domain::{Author, Grade, PhotoRef};
use sync_core::edit::{self, EditError};
use sync_core::ids::{EventId, HazardId, VisitId};
use sync_core::rectification::{Event, EventKind, HazardState, RULES_VERSION, Why, fold};
use sync_core::validate::{RefusalCode, validate_batch};

const T: i64 = 1_760_000_100_000;

fn photo() -> PhotoRef {
    PhotoRef {
        sha256: "cd".repeat(32),
        size: 2048,
        media_type: "image/jpeg".into(),
        captured_at: None,
        gps: None,
        added_by: String::new(),
        original_sha256: None,
        exif_unreadable: None,
    }
}

fn ev(doc: &Automerge, a: &Author, kind: EventKind) -> Result<Automerge, EditError> {
    edit::record_event(doc, a, EventId::new_random(), T, kind).map(|e| e.doc)
}

fn state(doc: &Automerge) -> sync_core::rectification::HazardStatus {
    HazardDoc::hydrate_from(doc).unwrap().status().unwrap()
}

/// A notified hazard of `grade`, with 五落实 in place.
fn notified(w: &World, grade: Grade) -> Automerge {
    let (doc, _) = w.hazard(HazardId::new_random(), VisitId::new_random(), grade);
    w.notify(&doc).0
}

/// A hazard carried to acceptance by the enterprise and the agency.
fn accepted(w: &World, grade: Grade) -> Automerge {
    let d = notified(w, grade);
    let d = ev(
        &d,
        &w.manager,
        EventKind::SignedFor {
            signer: "张三".into(),
        },
    )
    .unwrap();
    let d = ev(
        &d,
        &w.manager,
        EventKind::RectificationSubmitted {
            note: "已整改".into(),
            photos: vec![photo()],
        },
    )
    .unwrap();
    ev(
        &d,
        &w.inspector,
        EventKind::Verified {
            accepted: true,
            note: String::new(),
        },
    )
    .unwrap()
}

/// Appends an event without the local check, as a tampered client would, and returns the
/// document as the fold would see it once the server accepted the batch (or the refusals).
fn tampered(doc: &Automerge, a: &Author, kind: EventKind) -> Result<Automerge, Vec<RefusalCode>> {
    let e = edit::modify::<HazardDoc>(doc, &a.actors[0], T, |h| {
        h.events.push(Event {
            id: EventId::new_random().to_string(),
            at: T,
            author: a.user.to_string(),
            role: a.role,
            org: a.org.to_string(),
            device: a.device.to_string(),
            kind,
            rules: Some(RULES_VERSION),
        })
    })
    .unwrap();
    let h = sync_core::doc::read_header(doc).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    validate_batch(
        Some(doc),
        h.id,
        DocKind::Hazard,
        &[e.change.unwrap()],
        a,
        &all,
    )
    .map(|acc| (*acc.doc).clone())
    .map_err(|r| r.into_iter().map(|r| r.code).collect())
}

#[test]
fn only_a_regulator_downgrades_and_closes_a_major_hazard() {
    let w = World::new();
    let d = accepted(&w, Grade::Major);
    // The inspector's downgrade is refused on the phone, and has no effect if forced through.
    let r = ev(
        &d,
        &w.inspector,
        EventKind::Regraded {
            grade: Grade::General,
            reason: "判定有误".into(),
        },
    );
    assert!(matches!(
        r,
        Err(EditError::NotNow(Why::DowngradeNeedsRegulator))
    ));
    let forced = tampered(
        &d,
        &w.inspector,
        EventKind::Regraded {
            grade: Grade::General,
            reason: "判定有误".into(),
        },
    )
    .unwrap();
    assert_eq!(state(&forced).grade, Grade::Major);
    // Editing the grade field after the notice is refused.
    let r = edit::edit_hazard(&d, &w.inspector, T, |h| h.grade = Grade::General);
    assert!(
        matches!(&r, Err(EditError::Refused(rs)) if rs.iter().all(|r| r.code == RefusalCode::TermsFixed)),
        "{r:?}"
    );
    // Closing stays the regulator's.
    let close = EventKind::Closed {
        note: String::new(),
    };
    assert!(matches!(
        ev(&forced, &w.inspector, close.clone()),
        Err(EditError::NotNow(Why::MajorNeedsRegulator))
    ));
    let closed = ev(&d, &w.supervisor, close).unwrap();
    assert_eq!(state(&closed).state, HazardState::Closed);
    // A regulator's downgrade is what lets the agency close it.
    let down = ev(
        &d,
        &w.supervisor,
        EventKind::Regraded {
            grade: Grade::General,
            reason: "复核为一般隐患".into(),
        },
    )
    .unwrap();
    let by_agency = ev(
        &down,
        &w.inspector,
        EventKind::Closed {
            note: String::new(),
        },
    )
    .unwrap();
    assert_eq!(state(&by_agency).state, HazardState::Closed);
}

#[test]
fn a_close_keeps_counting_whatever_the_grade_field_says_later() {
    let w = World::new();
    let d = accepted(&w, Grade::General);
    let closed = ev(
        &d,
        &w.inspector,
        EventKind::Closed {
            note: String::new(),
        },
    )
    .unwrap();
    // Another inspector, offline since before the notice, set the grade to major; it merges in.
    let (fresh, _) = (d.clone(), ());
    let mut before_notice = fresh.clone();
    // Rewind: fork at the hazard's creation and edit the grade there.
    let first = before_notice.get_changes(&[])[0].hash();
    before_notice = before_notice.fork_at(&[first]).unwrap();
    let concurrent =
        edit::edit_hazard(&before_notice, &w.inspector2, T, |h| h.grade = Grade::Major).unwrap();
    let mut merged = closed.clone();
    merged.merge(&mut concurrent.doc.clone()).unwrap();
    assert_eq!(
        HazardDoc::hydrate_from(&merged).unwrap().grade,
        Grade::Major
    );
    let s = state(&merged);
    assert_eq!(s.state, HazardState::Closed, "the close still counts");
    assert_eq!(s.grade, Grade::General, "the notice's grade stays in force");
    // And the server accepts the concurrent edit (its author never saw the notice).
    let all = |_: &sync_core::doc::Header| true;
    let h = sync_core::doc::read_header(&closed).unwrap();
    assert!(
        validate_batch(
            Some(&closed),
            h.id,
            DocKind::Hazard,
            &[concurrent.change.unwrap()],
            &w.inspector2,
            &all
        )
        .is_ok()
    );
}

#[test]
fn the_deadline_moves_only_by_a_granted_extension_to_a_later_date() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    let r = edit::edit_hazard(&d, &w.inspector, T, |h| h.deadline = "2026-12-31".into());
    assert!(matches!(r, Err(EditError::Refused(_))), "{r:?}");
    // Asking for a date that is not later is refused.
    let r = ev(
        &d,
        &w.manager,
        EventKind::ExtensionRequested {
            until: "2026-02-01".into(),
            reason: "停产".into(),
        },
    );
    assert!(matches!(r, Err(EditError::NotNow(Why::DeadlineNotLater))));
    let asked = ev(
        &d,
        &w.manager,
        EventKind::ExtensionRequested {
            until: "2026-04-01".into(),
            reason: "设备到货慢".into(),
        },
    )
    .unwrap();
    let request = state(&asked).pending_extension.unwrap().0;
    let grant = |until: &str| EventKind::ExtensionGranted {
        request: request.clone(),
        until: until.into(),
    };
    assert!(matches!(
        ev(&asked, &w.inspector, grant("2026-02-15")),
        Err(EditError::NotNow(Why::DeadlineNotLater))
    ));
    let granted = ev(&asked, &w.inspector, grant("2026-04-01")).unwrap();
    assert_eq!(state(&granted).deadline.unwrap().to_string(), "2026-04-01");
}

#[test]
fn a_major_hazards_extension_is_the_regulators_to_grant() {
    let w = World::new();
    let d = notified(&w, Grade::Major);
    let asked = ev(
        &d,
        &w.manager,
        EventKind::ExtensionRequested {
            until: "2026-05-01".into(),
            reason: "需停产改造".into(),
        },
    )
    .unwrap();
    let request = state(&asked).pending_extension.unwrap().0;
    let grant = EventKind::ExtensionGranted {
        request,
        until: "2026-05-01".into(),
    };
    assert!(matches!(
        ev(&asked, &w.inspector, grant.clone()),
        Err(EditError::NotNow(Why::MajorExtensionNeedsRegulator))
    ));
    let granted = ev(&asked, &w.supervisor, grant).unwrap();
    assert_eq!(state(&granted).deadline.unwrap().to_string(), "2026-05-01");
}

#[test]
fn acceptance_follows_a_submission_made_after_the_last_rejection() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    let accept = EventKind::Verified {
        accepted: true,
        note: String::new(),
    };
    assert!(matches!(
        ev(&d, &w.inspector, accept.clone()),
        Err(EditError::NotNow(Why::NothingSubmitted))
    ));
    let forced = tampered(&d, &w.inspector, accept.clone()).unwrap();
    assert_eq!(state(&forced).state, HazardState::Notified);
    let submitted = ev(
        &d,
        &w.manager,
        EventKind::RectificationSubmitted {
            note: "已更换插座".into(),
            photos: vec![],
        },
    )
    .unwrap();
    let rejected = ev(
        &submitted,
        &w.inspector,
        EventKind::Verified {
            accepted: false,
            note: "未达标".into(),
        },
    )
    .unwrap();
    assert!(matches!(
        ev(&rejected, &w.inspector, accept.clone()),
        Err(EditError::NotNow(Why::NothingSubmitted))
    ));
    let again = ev(
        &rejected,
        &w.manager,
        EventKind::RectificationSubmitted {
            note: "重新整改".into(),
            photos: vec![photo()],
        },
    )
    .unwrap();
    assert_eq!(
        state(&ev(&again, &w.inspector, accept).unwrap()).state,
        HazardState::Accepted
    );
}

#[test]
fn a_submission_carries_evidence() {
    let w = World::new();
    let major = notified(&w, Grade::Major);
    let note_only = EventKind::RectificationSubmitted {
        note: "已整改".into(),
        photos: vec![],
    };
    assert!(matches!(
        ev(&major, &w.manager, note_only.clone()),
        Err(EditError::NotNow(Why::MajorNeedsPhoto))
    ));
    let general = notified(&w, Grade::General);
    assert!(ev(&general, &w.manager, note_only).is_ok());
    let nothing = EventKind::RectificationSubmitted {
        note: "  ".into(),
        photos: vec![],
    };
    assert_eq!(
        tampered(&general, &w.manager, nothing).unwrap_err(),
        vec![RefusalCode::EvidenceMissing]
    );
}

#[test]
fn what_a_regulator_closed_only_a_regulator_reopens() {
    let w = World::new();
    let d = accepted(&w, Grade::Major);
    let closed = ev(
        &d,
        &w.supervisor,
        EventKind::Closed {
            note: "验收合格".into(),
        },
    )
    .unwrap();
    let reopen = EventKind::Reopened {
        reason: "发现问题".into(),
    };
    assert!(matches!(
        ev(&closed, &w.inspector, reopen.clone()),
        Err(EditError::NotNow(Why::ClosedByRegulator))
    ));
    assert_eq!(
        state(&ev(&closed, &w.supervisor, reopen).unwrap()).state,
        HazardState::InProgress
    );
}

#[test]
fn supervision_is_for_major_hazards_and_only_by_regulators() {
    let w = World::new();
    let put = EventKind::SupervisionPut {
        note: "挂牌".into(),
    };
    let general = notified(&w, Grade::General);
    assert!(matches!(
        ev(&general, &w.supervisor, put.clone()),
        Err(EditError::NotNow(Why::NotMajor))
    ));
    let major = notified(&w, Grade::Major);
    assert!(matches!(
        ev(&major, &w.inspector, put.clone()),
        Err(EditError::Refused(_))
    ));
    assert!(state(&ev(&major, &w.supervisor, put).unwrap()).under_supervision);
}

#[test]
fn an_extension_request_waits_for_one_answer_and_none_after_closure() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    let ask = |until: &str| EventKind::ExtensionRequested {
        until: until.into(),
        reason: "资金未到位".into(),
    };
    let asked = ev(&d, &w.manager, ask("2026-04-01")).unwrap();
    assert!(matches!(
        ev(&asked, &w.manager, ask("2026-05-01")),
        Err(EditError::NotNow(Why::ExtensionPending))
    ));
    let request = state(&asked).pending_extension.unwrap().0;
    let refused = ev(
        &asked,
        &w.inspector,
        EventKind::ExtensionRefused {
            request: request.clone(),
            reason: "理由不充分".into(),
        },
    )
    .unwrap();
    // Answered once: a grant of the same request now has nothing to answer.
    assert!(matches!(
        ev(
            &refused,
            &w.inspector,
            EventKind::ExtensionGranted {
                request: request.clone(),
                until: "2026-04-01".into(),
            }
        ),
        Err(EditError::NotNow(Why::NoPendingExtension))
    ));
    // A request still pending when the hazard closes cannot be granted afterwards.
    let acc = accepted(&w, Grade::General);
    let open_request = tampered(&acc, &w.manager, ask("2026-06-01")).unwrap();
    let closed = ev(
        &open_request,
        &w.inspector,
        EventKind::Closed {
            note: String::new(),
        },
    )
    .unwrap();
    let any = HazardDoc::hydrate_from(&closed)
        .unwrap()
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ExtensionRequested { .. }))
        .map(|e| e.id.clone())
        .unwrap();
    assert!(matches!(
        ev(
            &closed,
            &w.inspector,
            EventKind::ExtensionGranted {
                request: any,
                until: "2026-06-01".into(),
            }
        ),
        Err(EditError::NotNow(Why::HazardClosed))
    ));
}

#[test]
fn a_major_hazard_is_notified_only_with_five_in_place() {
    let w = World::new();
    let (doc, _) = w.hazard(HazardId::new_random(), VisitId::new_random(), Grade::Major);
    let doc = edit::edit_hazard(&doc, &w.inspector, T, |h| h.funds_yuan = None)
        .unwrap()
        .doc;
    let r = edit::notify(&doc, &w.inspector, EventId::new_random(), T);
    assert!(
        matches!(&r, Err(EditError::Refused(rs)) if rs.iter().all(|r| r.code == RefusalCode::FiveInPlaceMissing)),
        "{r:?}"
    );
    let forced = tampered(
        &doc,
        &w.inspector,
        EventKind::NoticeIssued {
            grade: Grade::Major,
            deadline: "2026-03-01".into(),
        },
    );
    assert_eq!(forced.unwrap_err(), vec![RefusalCode::FiveInPlaceMissing]);
}

#[test]
fn events_written_before_rules_were_versioned_fold_as_they_did() {
    // The first rules let an inspector accept from open (an on-the-spot fix): an old document
    // keeps that state, while a new event cannot do the same.
    let w = World::new();
    let (doc, _) = w.hazard(
        HazardId::new_random(),
        VisitId::new_random(),
        Grade::General,
    );
    let h = HazardDoc::hydrate_from(&doc).unwrap();
    let header = h.header().unwrap();
    let legacy = Event {
        id: EventId::new_random().to_string(),
        at: T,
        author: w.inspector.user.to_string(),
        role: w.inspector.role,
        org: w.inspector.org.to_string(),
        device: w.inspector.device.to_string(),
        kind: EventKind::Verified {
            accepted: true,
            note: String::new(),
        },
        rules: None,
    };
    let s = fold(
        &header,
        h.grade,
        h.original_deadline(),
        std::slice::from_ref(&legacy),
    );
    assert_eq!(s.state, HazardState::Accepted);
    let current = Event {
        rules: Some(RULES_VERSION),
        ..legacy.clone()
    };
    let s = fold(&header, h.grade, h.original_deadline(), &[current]);
    assert_eq!(s.state, HazardState::Open);
    // And the server refuses a new event that claims the old rules.
    let e = edit::modify::<HazardDoc>(&doc, &w.inspector.actors[0], T, |h| {
        h.events.push(Event {
            id: EventId::new_random().to_string(),
            ..legacy
        })
    })
    .unwrap();
    let all = |_: &sync_core::doc::Header| true;
    let r = validate_batch(
        Some(&doc),
        header.id,
        DocKind::Hazard,
        &[e.change.unwrap()],
        &w.inspector,
        &all,
    )
    .unwrap_err();
    assert_eq!(r[0].code, RefusalCode::Outdated);
}

#[test]
fn a_managers_event_on_a_field_with_two_values_touches_only_the_events() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    // Two inspectors set the responsible person offline.
    let a = edit::edit_hazard(&d, &w.inspector, T, |h| {
        h.responsible_person = "王五".into()
    })
    .unwrap();
    let b = edit::edit_hazard(&d, &w.inspector2, T, |h| {
        h.responsible_person = "赵六".into()
    })
    .unwrap();
    let mut merged = a.doc.clone();
    merged.merge(&mut b.doc.clone()).unwrap();
    let conflicts = edit::conflicts(&merged);
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, "responsible_person");
    let mut values = conflicts[0].values.clone();
    values.sort();
    assert_eq!(values, vec!["王五".to_owned(), "赵六".to_owned()]);
    // The manager signs for and submits: both pass the server's check.
    let h = sync_core::doc::read_header(&merged).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    let signed = edit::record_event(
        &merged,
        &w.manager,
        EventId::new_random(),
        T,
        EventKind::SignedFor {
            signer: "张三".into(),
        },
    )
    .unwrap();
    validate_batch(
        Some(&merged),
        h.id,
        DocKind::Hazard,
        &[signed.change.clone().unwrap()],
        &w.manager,
        &all,
    )
    .unwrap();
    let submitted = edit::record_event(
        &signed.doc,
        &w.manager,
        EventId::new_random(),
        T,
        EventKind::RectificationSubmitted {
            note: "已整改".into(),
            photos: vec![],
        },
    )
    .unwrap();
    assert_eq!(state(&submitted.doc).state, HazardState::Submitted);
    assert_eq!(
        edit::conflicts(&submitted.doc).len(),
        1,
        "the two values are still there"
    );
    // The manager cannot resolve it; an inspector can.
    assert!(
        edit::resolve_conflict(&submitted.doc, &w.manager, T, "responsible_person", "王五")
            .is_err()
    );
    let resolved = edit::resolve_conflict(
        &submitted.doc,
        &w.inspector,
        T,
        "responsible_person",
        "赵六",
    )
    .unwrap();
    assert!(edit::conflicts(&resolved.doc).is_empty());
    assert_eq!(
        HazardDoc::hydrate_from(&resolved.doc)
            .unwrap()
            .responsible_person,
        "赵六"
    );
}

#[test]
fn a_signature_never_changes_and_names_the_hazards_it_covers() {
    let w = World::new();
    let (_, vdoc, _) = w.visit(VisitId::new_random());
    let (h1, _) = w.hazard(
        HazardId::new_random(),
        VisitId::new_random(),
        Grade::General,
    );
    let h1 = HazardDoc::hydrate_from(&h1).unwrap();
    let signed = edit::sign_hazard_list(
        &vdoc,
        std::slice::from_ref(&h1),
        &w.inspector,
        uuid::Uuid::new_v4(),
        "张三",
        photo(),
        T,
    )
    .unwrap();
    let v = VisitDoc::hydrate_from(&signed.doc).unwrap();
    assert_eq!(
        v.signed_state(&h1.id, &h1.content_digest()),
        SignedState::Signed
    );
    // A hazard added later is not signed; one changed since shows as changed.
    let (h2, _) = w.hazard(
        HazardId::new_random(),
        VisitId::new_random(),
        Grade::General,
    );
    let h2 = HazardDoc::hydrate_from(&h2).unwrap();
    assert_eq!(
        v.signed_state(&h2.id, &h2.content_digest()),
        SignedState::NotSigned
    );
    let mut changed = h1.clone();
    changed.measure = "改为更换设备".into();
    assert_eq!(
        v.signed_state(&h1.id, &changed.content_digest()),
        SignedState::ChangedSinceSigning
    );
    // Another inspector rewrites the signer's name, or removes the signature: refused.
    let h = sync_core::doc::read_header(&signed.doc).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    for f in [
        (|v: &mut VisitDoc| v.signatures[0].signer_name = "李四".into()) as fn(&mut VisitDoc),
        |v: &mut VisitDoc| v.signatures.clear(),
    ] {
        let e = edit::modify::<VisitDoc>(&signed.doc, &w.inspector2.actors[0], T, f).unwrap();
        let r = validate_batch(
            Some(&signed.doc),
            h.id,
            DocKind::Visit,
            &[e.change.unwrap()],
            &w.inspector2,
            &all,
        )
        .unwrap_err();
        assert!(
            r.iter().any(|r| matches!(
                r.code,
                RefusalCode::EventsAppendOnly | RefusalCode::SignatureImmutable
            )),
            "{r:?}"
        );
    }
    // A new signature is a new record beside the old one.
    let again = edit::sign_hazard_list(
        &signed.doc,
        &[h1.clone(), h2.clone()],
        &w.inspector2,
        uuid::Uuid::new_v4(),
        "张三",
        photo(),
        T + 1,
    )
    .unwrap();
    let v = VisitDoc::hydrate_from(&again.doc).unwrap();
    assert_eq!(v.signatures.len(), 2);
    assert_eq!(
        v.signed_state(&h2.id, &h2.content_digest()),
        SignedState::Signed
    );
    // The legacy single signature, once set, cannot be replaced either.
    let legacy = edit::edit_visit(&vdoc, &w.inspector, T, |v| {
        v.signature = Some(sync_core::doc::visit::Signature {
            signer_name: "张三".into(),
            image: photo(),
            signed_at: T,
        })
    })
    .unwrap();
    let r = edit::edit_visit(&legacy.doc, &w.inspector2, T, |v| v.signature = None);
    assert!(matches!(r, Err(EditError::Refused(_))), "{r:?}");
}

#[test]
fn refusals_name_the_rule_in_chinese_first_without_keys_or_ids() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    let EditError::Refused(rs) =
        edit::edit_hazard(&d, &w.manager, T, |h| h.location = "x".into()).unwrap_err()
    else {
        panic!("refused")
    };
    let m = rs[0].message();
    assert!(m.starts_with("您的角色无权修改此项（隐患部位）"), "{m}");
    assert!(
        m.contains("your role may not change this (location)"),
        "{m}"
    );
    assert!(!m.contains("location)") || !m.contains("\"location\""));
    for why in [
        Why::NotAccepted,
        Why::MajorNeedsRegulator,
        Why::ExtensionPending,
    ] {
        let (zh, en) = why.message().split_once(" / ").unwrap();
        assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
        assert!(en.is_ascii());
    }
}

#[test]
fn an_inspector_cannot_claim_to_be_the_regulator_for_a_downgrade() {
    let w = World::new();
    let d = accepted(&w, Grade::Major);
    // The inspector's device writes the regrade in the supervisor's name and role.
    let e = edit::modify::<HazardDoc>(&d, &w.inspector.actors[0], T, |h| {
        h.events.push(Event::by(
            &w.supervisor,
            EventId::new_random().to_string(),
            T,
            EventKind::Regraded {
                grade: Grade::General,
                reason: "冒充监管".into(),
            },
        ))
    })
    .unwrap();
    let h = sync_core::doc::read_header(&d).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    let r = validate_batch(
        Some(&d),
        h.id,
        DocKind::Hazard,
        &[e.change.unwrap()],
        &w.inspector,
        &all,
    )
    .unwrap_err();
    assert_eq!(r[0].code, RefusalCode::EventForged);
}

#[test]
fn an_event_that_claims_other_rules_is_refused() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    let h = sync_core::doc::read_header(&d).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    // The first rules accepted a verification without a submission; a future version is not
    // this build's to interpret.
    for rules in [Some(1), Some(RULES_VERSION + 1), None] {
        let e = edit::modify::<HazardDoc>(&d, &w.inspector.actors[0], T, |hz| {
            hz.events.push(Event {
                rules,
                ..Event::by(
                    &w.inspector,
                    EventId::new_random().to_string(),
                    T,
                    EventKind::Verified {
                        accepted: true,
                        note: String::new(),
                    },
                )
            })
        })
        .unwrap();
        let r = validate_batch(
            Some(&d),
            h.id,
            DocKind::Hazard,
            &[e.change.unwrap()],
            &w.inspector,
            &all,
        )
        .unwrap_err();
        assert_eq!(r[0].code, RefusalCode::Outdated, "rules {rules:?}");
    }
}

#[test]
fn two_inspectors_notifying_offline_agree_on_one_notice_whatever_the_merge_order() {
    let w = World::new();
    let (doc, _) = w.hazard(
        HazardId::new_random(),
        VisitId::new_random(),
        Grade::General,
    );
    // Each sets a different deadline, then issues the notice, without seeing the other.
    let notice = |a: &Author, deadline: &str| {
        let e = edit::edit_hazard(&doc, a, T, |h| h.deadline = deadline.into()).unwrap();
        edit::notify(&e.doc, a, EventId::new_random(), T)
            .unwrap()
            .doc
    };
    let one = notice(&w.inspector, "2026-04-01");
    let two = notice(&w.inspector2, "2026-05-01");
    let mut ab = one.clone();
    ab.merge(&mut two.clone()).unwrap();
    let mut ba = two.clone();
    ba.merge(&mut one.clone()).unwrap();
    let (s_ab, s_ba) = (state(&ab), state(&ba));
    assert_eq!(s_ab, s_ba);
    assert_eq!(s_ab.state, HazardState::Notified);
    let applied = s_ab.outcomes.iter().filter(|o| o.ignored.is_none()).count();
    assert_eq!(applied, 1, "one notice counts");
    assert!(
        s_ab.outcomes
            .iter()
            .any(|o| o.ignored == Some(Why::AlreadyNotified))
    );
    // The deadline in force is the counted notice's, whichever deadline field won.
    let counted = HazardDoc::hydrate_from(&ab)
        .unwrap()
        .events
        .into_iter()
        .zip(&s_ab.outcomes)
        .find(|(_, o)| o.ignored.is_none())
        .map(|(e, _)| e.kind)
        .unwrap();
    let EventKind::NoticeIssued { deadline, .. } = counted else {
        panic!("a notice")
    };
    assert_eq!(s_ab.deadline.unwrap().to_string(), deadline);
}

#[test]
fn a_text_above_its_limit_is_refused_whole_whoever_wrote_it() {
    let w = World::new();
    let d = notified(&w, Grade::General);
    let h = sync_core::doc::read_header(&d).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    // A tampered phone skips the local check and sends a description of 50,000 characters.
    let e = edit::modify::<HazardDoc>(&d, &w.inspector.actors[0], T, |hz| {
        hz.description = "危".repeat(50_000).into()
    })
    .unwrap();
    let r = validate_batch(
        Some(&d),
        h.id,
        DocKind::Hazard,
        &[e.change.unwrap()],
        &w.inspector,
        &all,
    )
    .unwrap_err();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].code, RefusalCode::TooLong);
    assert!(
        r[0].message().starts_with("隐患描述不能超过 4000 个字"),
        "{}",
        r[0].message()
    );
    // And an event's text: a signer's name of 51 characters.
    let e = edit::modify::<HazardDoc>(&d, &w.manager.actors[0], T, |hz| {
        hz.events.push(Event::by(
            &w.manager,
            EventId::new_random().to_string(),
            T,
            EventKind::SignedFor {
                signer: "张".repeat(51),
            },
        ))
    })
    .unwrap();
    let r = validate_batch(
        Some(&d),
        h.id,
        DocKind::Hazard,
        &[e.change.unwrap()],
        &w.manager,
        &all,
    )
    .unwrap_err();
    assert_eq!(r[0].code, RefusalCode::TooLong);
}

#[test]
fn a_closed_hazards_record_does_not_change_until_it_is_reopened() {
    let w = World::new();
    let accepted = accepted(&w, Grade::General);
    let closed = ev(
        &accepted,
        &w.inspector,
        EventKind::Closed {
            note: "销号".into(),
        },
    )
    .unwrap();
    // After the close, the agency rewrites what was found: refused.
    let r = edit::edit_hazard(&closed, &w.inspector, T, |h| {
        h.measure = "事后改写的措施".into()
    });
    assert!(
        matches!(&r, Err(EditError::Refused(rs)) if rs.iter().all(|r| r.code == RefusalCode::HazardClosed)),
        "{r:?}"
    );
    // An edit made offline before the close reached the phone is kept.
    let concurrent = edit::edit_hazard(&accepted, &w.inspector2, T, |h| {
        h.location = "一号车间北侧".into()
    })
    .unwrap();
    let h = sync_core::doc::read_header(&closed).unwrap();
    let all = |_: &sync_core::doc::Header| true;
    assert!(
        validate_batch(
            Some(&closed),
            h.id,
            DocKind::Hazard,
            &[concurrent.change.unwrap()],
            &w.inspector2,
            &all
        )
        .is_ok()
    );
    // Reopened, the record can be corrected again.
    let reopened = ev(
        &closed,
        &w.inspector,
        EventKind::Reopened {
            reason: "复查发现问题".into(),
        },
    )
    .unwrap();
    assert!(
        edit::edit_hazard(&reopened, &w.inspector, T, |h| h.measure =
            "补充措施".into())
        .is_ok()
    );
}
