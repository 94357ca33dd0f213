//! Batches that break the rules are refused whole, with their reasons, and nothing of them is
//! applied.
#![allow(clippy::unwrap_used)]

mod common;

use common::World;
use sync_core::automerge::Automerge;
use sync_core::doc::{DocKind, HazardDoc};
use sync_core::domain::{Author, Grade};
use sync_core::edit;
use sync_core::engine::{Hub, HubLimits};
use sync_core::ids::{EventId, HazardId, VisitId};
use sync_core::rectification::EventKind;
use sync_core::store::{DocumentStore, MemoryStore, block_on};
use sync_core::validate::{RefusalCode, validate_batch};

const T: i64 = 1_760_000_100_000;

/// Makes an edit *without* the local policy check, as a tampered or buggy client would.
fn raw_edit(doc: &Automerge, author: &Author, f: impl FnOnce(&mut HazardDoc)) -> Vec<u8> {
    let e = edit::modify::<HazardDoc>(doc, &author.actors[0], T, f).expect("edit");
    e.change.expect("a change")
}

fn hub_with_hazard(w: &World) -> (Hub<MemoryStore>, HazardId, Automerge) {
    let hub = Hub::new(MemoryStore::new(), HubLimits::default());
    let hid = HazardId::new_random();
    let vid = VisitId::new_random();
    let scope = w.scope(&w.inspector);
    // The server takes a new hazard only on a visit of its own enterprise and agency that it
    // holds: the visit goes first.
    let (_, _, visit) = w.visit(vid);
    block_on(hub.ingest(
        &w.inspector,
        &scope,
        *vid.as_uuid(),
        DocKind::Visit,
        &[visit],
    ))
    .expect("store")
    .expect("visit accepted");
    let (doc, change) = w.hazard(hid, vid, Grade::Major);
    let (doc, notice) = w.notify(&doc);
    block_on(hub.ingest(
        &w.inspector,
        &scope,
        *hid.as_uuid(),
        DocKind::Hazard,
        &[change, notice],
    ))
    .expect("store")
    .expect("accepted");
    (hub, hid, doc)
}

#[test]
fn an_enterprise_editing_the_grade_is_refused_whole_and_nothing_is_applied() {
    let w = World::new();
    let (hub, hid, doc) = hub_with_hazard(&w);
    let seq_before = block_on(hub.store().max_seq()).expect("seq");

    // A batch with an allowed event and a forbidden grade edit.
    let ok = edit::record_event(
        &doc,
        &w.manager,
        EventId::new_random(),
        T,
        EventKind::SignedFor {
            signer: "张三".into(),
        },
    )
    .expect("signing is allowed");
    let bad = raw_edit(&ok.doc, &w.manager, |h| h.grade = Grade::General);
    let batch = vec![ok.change.expect("change"), bad];

    let scope = w.scope(&w.manager);
    let refusal = block_on(hub.ingest(&w.manager, &scope, *hid.as_uuid(), DocKind::Hazard, &batch))
        .expect("store")
        .expect_err("refused");
    assert_eq!(refusal.reasons.len(), 1);
    assert_eq!(refusal.reasons[0].code, RefusalCode::NotPermitted);
    assert_eq!(refusal.reasons[0].detail, "grade");
    assert!(
        refusal.reasons[0].change.is_some(),
        "the grade change is named"
    );

    assert_eq!(
        block_on(hub.store().max_seq()).expect("seq"),
        seq_before,
        "nothing stored"
    );
    let stored = block_on(hub.load(*hid.as_uuid()))
        .expect("load")
        .expect("doc");
    let h = HazardDoc::hydrate_from(&stored).expect("hazard");
    assert_eq!(h.grade, Grade::Major);
    assert_eq!(
        h.events.len(),
        1,
        "only the notice: the allowed part of the batch is not applied either"
    );
}

#[test]
fn an_inspector_of_another_agency_cannot_verify() {
    let w = World::new();
    let (_, hid, doc) = hub_with_hazard(&w);
    // Pretend the foreign inspector somehow has the enterprise in scope: the relation still fails.
    let e = edit::modify::<HazardDoc>(&doc, &w.foreign_inspector.actors[0], T, |h| {
        h.events.push(sync_core::rectification::Event {
            id: EventId::new_random().to_string(),
            at: T,
            author: w.foreign_inspector.user.to_string(),
            role: w.foreign_inspector.role,
            org: w.foreign_inspector.org.to_string(),
            device: w.foreign_inspector.device.to_string(),
            kind: EventKind::Verified {
                accepted: true,
                note: String::new(),
            },
            rules: Some(sync_core::rectification::RULES_VERSION),
        })
    })
    .expect("edit");
    let all = |_: &sync_core::doc::Header| true;
    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[e.change.expect("c")],
        &w.foreign_inspector,
        &all,
    )
    .expect_err("refused");
    assert_eq!(reasons[0].code, RefusalCode::NotInScope);

    // And the local check refuses it before it is committed.
    let local = edit::record_event(
        &doc,
        &w.foreign_inspector,
        EventId::new_random(),
        T,
        EventKind::Verified {
            accepted: true,
            note: String::new(),
        },
    );
    assert!(matches!(local, Err(edit::EditError::Refused(_))));
}

#[test]
fn a_change_whose_actor_is_not_the_senders_device_is_refused() {
    let w = World::new();
    let (hub, hid, doc) = hub_with_hazard(&w);
    // inspector2's change sent by inspector (another device).
    let c = raw_edit(&doc, &w.inspector2, |h| h.location = "二号车间".into());
    let scope = w.scope(&w.inspector);
    let refusal = block_on(hub.ingest(&w.inspector, &scope, *hid.as_uuid(), DocKind::Hazard, &[c]))
        .expect("store")
        .expect_err("refused");
    assert_eq!(refusal.reasons[0].code, RefusalCode::ForeignActor);
    let h = HazardDoc::hydrate_from(&block_on(hub.load(*hid.as_uuid())).expect("l").expect("d"))
        .expect("h");
    assert_eq!(h.location, "一号车间");
}

#[test]
fn an_event_signed_with_someone_elses_name_is_refused() {
    let w = World::new();
    let (_, hid, doc) = hub_with_hazard(&w);
    let c = raw_edit(&doc, &w.manager, |h| {
        h.events.push(sync_core::rectification::Event {
            id: EventId::new_random().to_string(),
            at: T,
            author: w.inspector.user.to_string(),
            role: w.inspector.role,
            org: w.inspector.org.to_string(),
            device: w.manager.device.to_string(),
            kind: EventKind::Verified {
                accepted: true,
                note: String::new(),
            },
            rules: Some(sync_core::rectification::RULES_VERSION),
        })
    });
    let scope = |_: &sync_core::doc::Header| true;
    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[c],
        &w.manager,
        &scope,
    )
    .expect_err("refused");
    assert_eq!(reasons[0].code, RefusalCode::EventForged);
}

#[test]
fn recorded_events_cannot_be_edited_or_removed() {
    let w = World::new();
    let (_, hid, doc) = hub_with_hazard(&w);
    let signed = edit::record_event(
        &doc,
        &w.manager,
        EventId::new_random(),
        T,
        EventKind::SignedFor {
            signer: "张三".into(),
        },
    )
    .expect("sign");
    let scope = |_: &sync_core::doc::Header| true;
    // The manager tries to rewrite their own event.
    let rewrite = raw_edit(&signed.doc, &w.manager, |h| {
        if let Some(EventKind::SignedFor { signer }) = h.events.last_mut().map(|e| &mut e.kind) {
            *signer = "李四".into();
        }
    });
    let reasons = validate_batch(
        Some(&signed.doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[rewrite],
        &w.manager,
        &scope,
    )
    .expect_err("refused");
    assert!(
        reasons
            .iter()
            .any(|r| r.code == RefusalCode::EventsAppendOnly)
    );
    // The inspector tries to delete it.
    let delete = raw_edit(&signed.doc, &w.inspector, |h| h.events.clear());
    let reasons = validate_batch(
        Some(&signed.doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[delete],
        &w.inspector,
        &scope,
    )
    .expect_err("refused");
    assert!(
        reasons
            .iter()
            .any(|r| r.code == RefusalCode::EventsAppendOnly)
    );
}

#[test]
fn the_header_cannot_move_a_document_to_another_enterprise() {
    let w = World::new();
    let (_, hid, doc) = hub_with_hazard(&w);
    let c = raw_edit(&doc, &w.inspector, |h| {
        h.enterprise_id = uuid::Uuid::from_u128(77).to_string()
    });
    let scope = |_: &sync_core::doc::Header| true;
    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[c],
        &w.inspector,
        &scope,
    )
    .expect_err("refused");
    assert_eq!(reasons[0].code, RefusalCode::HeaderImmutable);
}

#[test]
fn garbage_and_missing_dependencies_are_refused_with_a_reason() {
    let w = World::new();
    let (_, hid, doc) = hub_with_hazard(&w);
    let scope = |_: &sync_core::doc::Header| true;
    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[vec![0x85, 0x6f, 0x4a, 0x83, 1, 2]],
        &w.inspector,
        &scope,
    )
    .expect_err("refused");
    assert_eq!(reasons[0].code, RefusalCode::Malformed);
    // Two edits, sending only the second: it depends on the first.
    let first = edit::edit_hazard(&doc, &w.inspector, T, |h| h.location = "A".into()).expect("e1");
    let second =
        edit::edit_hazard(&first.doc, &w.inspector, T, |h| h.location = "B".into()).expect("e2");
    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &[second.change.expect("c")],
        &w.inspector,
        &scope,
    )
    .expect_err("refused");
    assert_eq!(reasons[0].code, RefusalCode::MissingDependencies);
}

#[test]
fn an_enterprise_manager_cannot_create_documents() {
    let w = World::new();
    let hid = HazardId::new_random();
    let h = w.header(DocKind::Hazard, *hid.as_uuid(), &w.manager);
    let doc = HazardDoc::new(
        &h,
        VisitId::new_random(),
        Grade::General,
        sync_core::domain::Deadline::parse("2026-01-01").expect("d"),
    );
    let r = edit::new_hazard(&doc, &w.manager, T);
    assert!(
        matches!(r, Err(edit::EditError::Refused(ref v)) if v[0].code == RefusalCode::NotPermitted)
    );
}

/// The next try after a single bomb (issue #19): the same text split into changes that are
/// each under the per-change operation limit. The batch bound refuses it whole, before any of
/// it is decoded or applied; the first of those changes alone passes the bound (and is then
/// refused by the ordinary rules, as a field no document has).
#[test]
fn a_bomb_split_into_changes_under_the_per_change_limit_is_refused_by_the_batch_bound() {
    use sync_core::automerge::transaction::Transactable as _;
    use sync_core::automerge::{AutoCommit, ObjType, ROOT};
    use sync_core::bounds::{MAX_BATCH_OPS, MAX_CHANGE_OPS};
    let w = World::new();
    let (_, hid, doc) = hub_with_hazard(&w);
    let mut fork = AutoCommit::load(&doc.save()).unwrap();
    fork.set_actor(w.inspector.actors[0].clone());
    let text = fork.put_object(ROOT, "bomb", ObjType::Text).unwrap();
    fork.commit();
    let piece = usize::try_from(MAX_CHANGE_OPS).unwrap() - 1_000;
    let pieces = usize::try_from(MAX_BATCH_OPS).unwrap() / piece + 1;
    let mut changes = vec![fork.get_last_local_change().unwrap().raw_bytes().to_vec()];
    for i in 0..pieces {
        fork.splice_text(&text, i * piece, 0, &"x".repeat(piece))
            .unwrap();
        fork.commit();
        let mut c = fork.get_last_local_change().unwrap().clone();
        changes.push(c.bytes().into_owned());
    }
    let all = |_: &sync_core::doc::Header| true;
    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &changes,
        &w.inspector,
        &all,
    )
    .expect_err("refused");
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].code, RefusalCode::TooBig, "{reasons:?}");
    assert!(reasons[0].detail.contains("batch"), "{reasons:?}");

    let reasons = validate_batch(
        Some(&doc),
        *hid.as_uuid(),
        DocKind::Hazard,
        &changes[..2],
        &w.inspector,
        &all,
    )
    .expect_err("refused");
    assert_ne!(reasons[0].code, RefusalCode::TooBig, "{reasons:?}");
}
