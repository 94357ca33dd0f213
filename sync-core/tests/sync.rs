//! Sync across replicas through the real hub and the real wire format.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::World;
use proptest::prelude::*;
use sync_core::automerge::ChangeHash;
use sync_core::doc::visit::{CheckResult, ChecklistItem};
use sync_core::doc::{DocKind, HazardDoc, TypedDoc, VisitDoc};
use sync_core::domain::{Author, Deadline, Grade};
use sync_core::edit;
use sync_core::engine::{Hub, HubLimits, Replica};
use sync_core::ids::{EventId, HazardId, VisitId};
use sync_core::protocol::{self, SyncResponse};
use sync_core::rectification::{EventKind, fold};
use sync_core::store::{MemoryStore, block_on};

const T: i64 = 1_760_000_100_000;

struct Phone {
    author: Author,
    replica: Replica,
    /// Responses the network held back, delivered later (reordering).
    stale: Vec<(HashMap<uuid::Uuid, Vec<ChangeHash>>, SyncResponse)>,
}

/// One round trip over the real wire format. Returns the bytes (request, response).
fn sync(hub: &Hub<MemoryStore>, w: &World, p: &mut Phone, fault: u8) -> (usize, usize) {
    let (req, heads) = p.replica.request();
    let wire_req = protocol::encode_request(&req);
    let decoded = protocol::decode_request(&wire_req).expect("decodes");
    let scope = w.scope(&p.author);
    let out = block_on(hub.sync(&p.author, &scope, &decoded)).expect("hub");
    if fault == 1 {
        // Duplicate: the same request arrives twice; the second answer is the one delivered.
        let again = block_on(hub.sync(&p.author, &scope, &decoded)).expect("hub");
        assert!(
            again.applied.is_empty(),
            "a replayed batch applies nothing new"
        );
    }
    let wire_resp = protocol::encode_response(&out.response);
    let resp = protocol::decode_response(&wire_resp).expect("decodes");
    match fault {
        2 => {}                           // dropped: the phone never hears back and will resend
        3 => p.stale.push((heads, resp)), // delayed: delivered later, out of order
        _ => {
            p.replica.apply(&heads, &resp).expect("applies");
        }
    }
    (wire_req.len(), wire_resp.len())
}

fn world_with_docs() -> (World, Hub<MemoryStore>, Vec<Phone>, VisitId, HazardId) {
    let w = World::new();
    let hub = Hub::new(MemoryStore::new(), HubLimits::default());
    let mut phones: Vec<Phone> = [&w.inspector, &w.inspector2, &w.manager, &w.supervisor]
        .into_iter()
        .map(|a| Phone {
            author: a.clone(),
            replica: Replica::default(),
            stale: vec![],
        })
        .collect();
    let vid = VisitId::new_random();
    let hid = HazardId::new_random();
    let (_, vdoc, _) = w.visit(vid);
    let (hdoc, _) = w.hazard(hid, vid, Grade::Major);
    for (id, kind, doc) in [
        (*vid.as_uuid(), DocKind::Visit, vdoc),
        (*hid.as_uuid(), DocKind::Hazard, hdoc),
    ] {
        phones[0].replica.docs.insert(
            id,
            sync_core::engine::ReplicaDoc {
                kind,
                doc,
                synced: vec![],
                refused: None,
            },
        );
    }
    for phone in phones.iter_mut() {
        sync(&hub, &w, phone, 0);
    }
    (w, hub, phones, vid, hid)
}

#[derive(Debug, Clone)]
enum Action {
    /// An inspector edits a field (phone, which field, value).
    Edit(usize, u8, u16),
    /// Someone records an event (phone, which kind).
    Event(usize, u8),
    /// A phone syncs, with a network fault (0 none, 1 duplicate, 2 drop, 3 delay).
    Sync(usize, u8),
    /// A delayed response finally arrives.
    Deliver(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0usize..4, 0u8..6, any::<u16>()).prop_map(|(p, f, v)| Action::Edit(p, f, v)),
        2 => (0usize..4, 0u8..8).prop_map(|(p, k)| Action::Event(p, k)),
        3 => (0usize..4, 0u8..4).prop_map(|(p, f)| Action::Sync(p, f)),
        1 => (0usize..4).prop_map(Action::Deliver),
    ]
}

fn do_edit(p: &mut Phone, vid: VisitId, hid: HazardId, field: u8, v: u16) {
    let a = p.author.clone();
    let (id, r) = if field < 3 {
        let d = &p.replica.docs[hid.as_uuid()].doc;
        let r = edit::edit_hazard(d, &a, T, |h| match field {
            0 => h.location = format!("车间{v}"),
            1 => {
                let s = h.description.0.clone();
                let at = (v as usize) % (s.chars().count() + 1);
                let mut chars: Vec<char> = s.chars().collect();
                chars.insert(
                    at,
                    char::from_u32(0x4e00 + (v as u32 % 200)).unwrap_or('字'),
                );
                h.description.0 = chars.into_iter().collect();
            }
            _ => h.deadline = format!("2026-{:02}-{:02}", 1 + v % 12, 1 + v % 28),
        });
        (hid, r.map(|e| (e, DocKind::Hazard)))
    } else {
        let d = &p.replica.docs[vid.as_uuid()].doc;
        let r = edit::edit_visit(d, &a, T, |vd| match field {
            3 => vd.place = format!("厂区{v}"),
            4 => vd.checklist.push(ChecklistItem {
                id: uuid::Uuid::from_u128(v as u128 * 1000 + a.device.as_uuid().as_u128() % 1000)
                    .to_string(),
                title: format!("检查项{v}"),
                result: CheckResult::Fail,
                note: String::new(),
            }),
            _ => {
                if let Some(item) = vd.checklist.first_mut() {
                    item.result = if v.is_multiple_of(2) {
                        CheckResult::Pass
                    } else {
                        CheckResult::NotApplicable
                    };
                }
            }
        });
        (
            HazardId::from_uuid(*vid.as_uuid()),
            r.map(|e| (e, DocKind::Visit)),
        )
    };
    match r {
        Ok((e, _)) => p.replica.docs.get_mut(id.as_uuid()).expect("doc").doc = e.doc,
        // The local policy check refuses edits this role may not make: nothing is committed.
        // (An inspector is refused only a deadline edit after the notice.)
        Err(edit::EditError::Refused(r)) => assert!(
            a.role != sync_core::domain::Role::Inspector
                || r.iter()
                    .all(|r| r.code == sync_core::validate::RefusalCode::TermsFixed)
        ),
        Err(e) => panic!("edit failed: {e}"),
    }
}

fn do_event(p: &mut Phone, hid: HazardId, k: u8, n: u128) {
    let a = p.author.clone();
    let kind = match k {
        0 => {
            let d = &p.replica.docs[hid.as_uuid()].doc;
            let h = sync_core::doc::HazardDoc::hydrate_from(d).expect("hazard");
            edit::notice_for(&h)
        }
        1 => EventKind::SignedFor {
            signer: "张三".into(),
        },
        2 => EventKind::RectificationSubmitted {
            note: "已整改".into(),
            photos: vec![],
        },
        3 => EventKind::Verified {
            accepted: true,
            note: String::new(),
        },
        4 => EventKind::Verified {
            accepted: false,
            note: "未达标".into(),
        },
        5 => EventKind::Closed {
            note: String::new(),
        },
        6 => EventKind::SupervisionPut {
            note: String::new(),
        },
        _ => EventKind::Reopened {
            reason: "复查发现问题".into(),
        },
    };
    let d = &p.replica.docs[hid.as_uuid()].doc;
    match edit::record_event(d, &a, EventId::from_uuid(uuid::Uuid::from_u128(n)), T, kind) {
        Ok(e) => p.replica.docs.get_mut(hid.as_uuid()).expect("doc").doc = e.doc,
        // Refused by the policy, or allowed but without effect where the hazard stands now.
        Err(edit::EditError::Refused(_) | edit::EditError::NotNow(_)) => {}
        Err(e) => panic!("event failed: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("CONVERGENCE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_converge_whatever_the_network_does(actions in proptest::collection::vec(action(), 1..30)) {
        let (w, hub, mut phones, vid, hid) = world_with_docs();
        for (n, act) in actions.iter().enumerate() {
            match act {
                Action::Edit(p, f, v) => do_edit(&mut phones[*p], vid, hid, *f, *v),
                Action::Event(p, k) => do_event(&mut phones[*p], hid, *k, n as u128 + 1),
                Action::Sync(p, f) => { sync(&hub, &w, &mut phones[*p], *f); }
                Action::Deliver(p) => {
                    let ph = &mut phones[*p];
                    if !ph.stale.is_empty() {
                        let (heads, resp) = ph.stale.remove(0);
                        ph.replica.apply(&heads, &resp).expect("applies");
                    }
                }
            }
        }
        // The network heals: everyone syncs until nothing moves.
        for _ in 0..2 {
            for p in phones.iter_mut() {
                sync(&hub, &w, p, 0);
            }
        }
        let server_h = block_on(hub.load(*hid.as_uuid())).expect("load").expect("hazard");
        let server_v = block_on(hub.load(*vid.as_uuid())).expect("load").expect("visit");
        let hz = HazardDoc::hydrate_from(&server_h).expect("hazard");
        let header = hz.header().expect("header");
        let server_state = fold(&header, hz.grade, Deadline::parse(&hz.deadline).ok(), &hz.events);
        for p in &phones {
            prop_assert!(p.replica.docs.values().all(|d| d.pending().is_empty()), "nothing left unsent");
            let h = &p.replica.docs[hid.as_uuid()].doc;
            let v = &p.replica.docs[vid.as_uuid()].doc;
            prop_assert_eq!(h.get_heads(), server_h.get_heads());
            prop_assert_eq!(v.get_heads(), server_v.get_heads());
            let TypedDoc::Hazard(ph) = TypedDoc::hydrate(h).expect("typed") else { panic!("kind") };
            prop_assert_eq!(&*ph, &hz);
            prop_assert_eq!(VisitDoc::hydrate_from(v).expect("visit"), VisitDoc::hydrate_from(&server_v).expect("visit"));
            let state = fold(&header, ph.grade, Deadline::parse(&ph.deadline).ok(), &ph.events);
            prop_assert_eq!(&state, &server_state);
        }
    }
}

#[test]
fn two_inspectors_editing_different_fields_offline_both_keep_their_edit() {
    let (w, hub, mut phones, _vid, hid) = world_with_docs();
    let a = phones[0].author.clone();
    let d = phones[0].replica.docs[hid.as_uuid()].doc.clone();
    phones[0]
        .replica
        .docs
        .get_mut(hid.as_uuid())
        .expect("d")
        .doc = edit::edit_hazard(&d, &a, T, |h| h.location = "锅炉房".into())
        .expect("e")
        .doc;
    let b = phones[1].author.clone();
    let d = phones[1].replica.docs[hid.as_uuid()].doc.clone();
    phones[1]
        .replica
        .docs
        .get_mut(hid.as_uuid())
        .expect("d")
        .doc = edit::edit_hazard(&d, &b, T, |h| h.measure = "加装漏电保护器".into())
        .expect("e")
        .doc;
    for _ in 0..2 {
        for p in phones.iter_mut() {
            sync(&hub, &w, p, 0);
        }
    }
    for p in &phones {
        let h = HazardDoc::hydrate_from(&p.replica.docs[hid.as_uuid()].doc).expect("h");
        assert_eq!(h.location, "锅炉房");
        assert_eq!(h.measure.as_str(), "加装漏电保护器");
    }
}

#[test]
fn protocol_sizes_for_an_edit_a_new_hazard_and_a_fresh_device() {
    let (w, hub, mut phones, vid, _hid) = world_with_docs();
    // Settle cursors.
    for p in phones.iter_mut() {
        sync(&hub, &w, p, 0);
    }
    // One-field edit.
    let a = phones[0].author.clone();
    let d = phones[0].replica.docs[vid.as_uuid()].doc.clone();
    let e = edit::edit_visit(&d, &a, T, |v| v.place = "二号仓库".into()).expect("edit");
    let change_len = e.change.as_ref().expect("change").len();
    phones[0]
        .replica
        .docs
        .get_mut(vid.as_uuid())
        .expect("d")
        .doc = e.doc;
    let (req, resp) = sync(&hub, &w, &mut phones[0], 0);
    println!(
        "one-field edit: change {change_len} B, request {req} B, response {resp} B, total {} B",
        req + resp
    );
    assert!(
        req + resp <= 2 * change_len,
        "a one-field edit costs at most twice the change itself"
    );

    // The other inspector receives it.
    let (req2, resp2) = sync(&hub, &w, &mut phones[1], 0);
    println!("receiving that edit: request {req2} B, response {resp2} B");

    // A new hazard.
    let hid2 = HazardId::new_random();
    let (hdoc, hchange) = w.hazard(hid2, vid, Grade::General);
    phones[0].replica.docs.insert(
        *hid2.as_uuid(),
        sync_core::engine::ReplicaDoc {
            kind: DocKind::Hazard,
            doc: hdoc,
            synced: vec![],
            refused: None,
        },
    );
    let (req3, resp3) = sync(&hub, &w, &mut phones[0], 0);
    println!(
        "new hazard: change {} B, request {req3} B, response {resp3} B",
        hchange.len()
    );

    // A fresh device of the second inspector.
    let mut fresh = Phone {
        author: w.inspector2.clone(),
        replica: Replica::default(),
        stale: vec![],
    };
    let (req4, resp4) = sync(&hub, &w, &mut fresh, 0);
    println!(
        "fresh device: request {req4} B, response {resp4} B for {} documents",
        fresh.replica.docs.len()
    );
    assert_eq!(fresh.replica.docs.len(), 3);
    let (_, resp5) = sync(&hub, &w, &mut fresh, 0);
    assert!(
        resp5 < 16,
        "a second sync with nothing new is a few bytes, got {resp5}"
    );
}

/// Phone `p` edits its hazard and its visit offline (one field each).
fn edit_both_offline(p: &mut Phone, vid: VisitId, hid: HazardId) {
    let a = p.author.clone();
    let hazard = &p.replica.docs[hid.as_uuid()].doc;
    let hazard = edit::edit_hazard(hazard, &a, T, |h| h.location = "锅炉房".into()).expect("edit");
    let visit = &p.replica.docs[vid.as_uuid()].doc;
    let visit = edit::edit_visit(visit, &a, T, |v| v.place = "二号车间".into()).expect("edit");
    for (id, doc) in [(hid.as_uuid(), hazard.doc), (vid.as_uuid(), visit.doc)] {
        p.replica.docs.get_mut(id).expect("held").doc = doc;
    }
}

#[test]
fn request_for_sends_only_the_named_documents_and_keeps_the_rest_pending() {
    let (w, hub, mut phones, vid, hid) = world_with_docs();
    edit_both_offline(&mut phones[0], vid, hid);

    // Only the visit, named twice, plus an id the replica does not hold.
    let unknown = uuid::Uuid::from_u128(7);
    let (req, heads) = phones[0]
        .replica
        .request_for(&[*vid.as_uuid(), unknown, *vid.as_uuid()]);
    let ids: Vec<uuid::Uuid> = req.docs.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![*vid.as_uuid()]);
    assert_eq!(heads.keys().copied().collect::<Vec<_>>(), ids);
    let scope = w.scope(&phones[0].author);
    let out = block_on(hub.sync(&phones[0].author, &scope, &req)).expect("hub");
    phones[0]
        .replica
        .apply(&heads, &out.response)
        .expect("applies");

    // The hazard's edit is still pending and goes with the next full request.
    let (rest, _) = phones[0].replica.request();
    let ids: Vec<uuid::Uuid> = rest.docs.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![*hid.as_uuid()]);
}

/// A request that names one document twice (a hostile or buggy client) is one batch validated
/// in order: the second part is checked against the document with the first applied, both are
/// stored together, and the document is projected once.
#[test]
fn a_document_named_twice_in_one_request_is_validated_in_order_and_stored_once() {
    let (w, hub, mut phones, vid, hid) = world_with_docs();
    do_edit(&mut phones[0], vid, hid, 0, 1);
    do_edit(&mut phones[0], vid, hid, 0, 2);
    let (mut req, _) = phones[0].replica.request();
    let at = req
        .docs
        .iter()
        .position(|d| d.id == *hid.as_uuid())
        .expect("the hazard is pending");
    let mut second = req.docs[at].clone();
    assert_eq!(second.changes.len(), 2, "two edits, two changes");
    let later = second.changes.split_off(1);
    req.docs[at].changes = second.changes;
    req.docs.push(sync_core::protocol::DocChanges {
        changes: later,
        ..req.docs[at].clone()
    });
    let scope = w.scope(&phones[0].author);
    let out = block_on(hub.sync(&phones[0].author, &scope, &req)).expect("hub");
    assert!(
        out.response.refused.is_empty(),
        "{:?}",
        out.response.refused
    );
    let hazard: Vec<_> = out
        .applied
        .iter()
        .filter(|a| a.header.id == *hid.as_uuid())
        .collect();
    assert_eq!(hazard.len(), 1, "projected once");
    assert_eq!(hazard[0].new_changes, 2, "both parts stored");
    let TypedDoc::Hazard(h) = &hazard[0].typed else {
        panic!("a hazard")
    };
    assert_eq!(h.location, "车间2", "the later edit wins, as on the phone");
    // Another phone receives both changes.
    sync(&hub, &w, &mut phones[1], 0);
    let got = TypedDoc::hydrate(&phones[1].replica.docs[hid.as_uuid()].doc).expect("hydrates");
    let TypedDoc::Hazard(h) = got else {
        panic!("a hazard")
    };
    assert_eq!(h.location, "车间2");
}

/// A device's first sync after capturing offline: the answer carries none of what it sent, and
/// of a document it sent that the server holds more of, only the rest.
#[test]
fn a_first_sync_does_not_send_back_what_the_device_just_sent() {
    let w = World::new();
    let hub = Hub::new(MemoryStore::new(), HubLimits::default());
    let phone = |author: &Author| Phone {
        author: author.clone(),
        replica: Replica::default(),
        stale: vec![],
    };
    let new_doc = |kind, doc| sync_core::engine::ReplicaDoc {
        kind,
        doc,
        synced: vec![],
        refused: None,
    };
    // A visit reached the server from the inspector's first phone; a colleague then changed
    // its place. The inspector's new phone holds a copy of the visit as the first phone had it
    // (restored from a backup, so nothing of it counts as synced) and edits it.
    let mut first = phone(&w.inspector);
    let shared = VisitId::new_random();
    let (_, vdoc, _) = w.visit(shared);
    first
        .replica
        .docs
        .insert(*shared.as_uuid(), new_doc(DocKind::Visit, vdoc.clone()));
    sync(&hub, &w, &mut first, 0);
    let mut colleague = phone(&w.inspector2);
    sync(&hub, &w, &mut colleague, 0);
    let held = colleague.replica.docs[shared.as_uuid()].doc.clone();
    let later =
        edit::edit_visit(&held, &colleague.author, T, |v| v.place = "锅炉房".into()).expect("edit");
    colleague
        .replica
        .docs
        .get_mut(shared.as_uuid())
        .expect("held")
        .doc = later.doc;
    sync(&hub, &w, &mut colleague, 0);

    let mut p = phone(&Author {
        device: sync_core::ids::DeviceId::new_random(),
        ..w.inspector.clone()
    });
    let mine =
        edit::edit_visit(&vdoc, &p.author, T + 1, |v| v.ended_at = Some(T + 1)).expect("edit");
    p.replica
        .docs
        .insert(*shared.as_uuid(), new_doc(DocKind::Visit, mine.doc));
    // And a visit of its own with forty hazards.
    let vid = VisitId::new_random();
    let (_, own, _) = w.visit(vid);
    p.replica
        .docs
        .insert(*vid.as_uuid(), new_doc(DocKind::Visit, own));
    for _ in 0..40 {
        let hid = HazardId::new_random();
        let (hdoc, _) = w.hazard(hid, vid, Grade::General);
        p.replica
            .docs
            .insert(*hid.as_uuid(), new_doc(DocKind::Hazard, hdoc));
    }

    let (req, heads) = p.replica.request();
    let scope = w.scope(&p.author);
    let out = block_on(hub.sync(&p.author, &scope, &req)).expect("hub");
    assert!(
        out.response.refused.is_empty(),
        "{:?}",
        out.response.refused
    );
    let up = protocol::encode_request(&req).len();
    let down = protocol::encode_response(&out.response).len();
    assert!(down * 10 <= up, "{down} B down for {up} B up");
    let shared_update: Vec<_> = out
        .response
        .updates
        .iter()
        .filter(|u| u.id == *shared.as_uuid())
        .collect();
    assert_eq!(
        out.response.updates.len(),
        shared_update.len(),
        "only the shared visit comes back"
    );
    let [update] = shared_update.as_slice() else {
        panic!("the shared visit comes back once: {shared_update:?}")
    };
    let protocol::Payload::Changes(changes) = &update.payload else {
        panic!("as changes, not the whole document")
    };
    assert_eq!(changes.len(), 1, "only the colleague's later edit");
    p.replica.apply(&heads, &out.response).expect("applies");
    let TypedDoc::Visit(v) =
        TypedDoc::hydrate(&p.replica.docs[shared.as_uuid()].doc).expect("hydrates")
    else {
        panic!("a visit")
    };
    assert_eq!(v.place, "锅炉房");
    assert_eq!(v.ended_at, Some(T + 1));
}

/// The next try: another agency serving the same enterprise names this agency's visit in its
/// own first request (with a change of its own to it), hoping the "send only the rest" path
/// hands it the visit. The change is refused and nothing of the visit comes back.
#[test]
fn naming_another_agencys_document_in_a_first_sync_returns_nothing_of_it() {
    let w = World::new();
    let hub = Hub::new(MemoryStore::new(), HubLimits::default());
    let vid = VisitId::new_random();
    let (_, vdoc, _) = w.visit(vid);
    let mut owner = Phone {
        author: w.inspector.clone(),
        replica: Replica::default(),
        stale: vec![],
    };
    owner.replica.docs.insert(
        *vid.as_uuid(),
        sync_core::engine::ReplicaDoc {
            kind: DocKind::Visit,
            doc: vdoc.clone(),
            synced: vec![],
            refused: None,
        },
    );
    sync(&hub, &w, &mut owner, 0);

    let rival = w.foreign_inspector.clone();
    let forged = edit::modify::<VisitDoc>(&vdoc, &rival.actors[0], T, |v| {
        v.place = "另一家机构写的".into()
    })
    .expect("a change below the edit API");
    let req = protocol::SyncRequest {
        cursor: 0,
        docs: vec![protocol::DocChanges {
            id: *vid.as_uuid(),
            kind: DocKind::Visit,
            changes: vec![forged.change.expect("a change")],
        }],
    };
    // The rival agency has a contract with the same enterprise: it is in its scope.
    let scope: sync_core::engine::Reach = [(w.enterprise, w.township)].into_iter().collect();
    let out = block_on(hub.sync(&rival, &scope, &req)).expect("hub");
    assert!(
        out.response.refused.iter().any(|r| r.id == *vid.as_uuid()),
        "the rival's change is refused"
    );
    assert!(
        out.response.updates.iter().all(|u| u.id != *vid.as_uuid()),
        "nothing of the visit is sent: {:?}",
        out.response
            .updates
            .iter()
            .map(|u| u.id)
            .collect::<Vec<_>>()
    );
}
