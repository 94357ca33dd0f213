//! Documents as stored by earlier schema versions still load and mean what they meant (issue
//! #18). Each version's documents are committed under `tests/fixtures/schema-<n>/` as the
//! bytes a store holds (`Automerge::save`); a later schema must upgrade them on load, and this
//! test keeps every earlier version's files. Schema 1 is today's: its fixture is a visit and a
//! general hazard taken to closure (notice, signature, evidence, acceptance, closure), written once by
//! running this test with `INSPECT_WRITE_FIXTURES=1`.
#![allow(clippy::unwrap_used)]

mod common;

use common::World;
use sync_core::automerge::Automerge;
use sync_core::doc::{DocKind, TypedDoc};
use sync_core::domain::Grade;
use sync_core::edit;
use sync_core::ids::{EventId, HazardId, VisitId};
use sync_core::rectification::{EventKind, HazardState};

const T: i64 = 1_760_000_100_000;

fn fixture_dir(schema: u64) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("schema-{schema}"))
}

/// Today's visit and hazard, with fixed ids, times and actors.
fn schema_1_documents() -> (Automerge, Automerge) {
    let w = World::new();
    let vid = VisitId::from_uuid(uuid::Uuid::from_u128(0x51));
    let hid = HazardId::from_uuid(uuid::Uuid::from_u128(0x52));
    let (_, visit, _) = w.visit(vid);
    let (doc, _) = w.hazard(hid, vid, Grade::General);
    let event = |n: u128| EventId::from_uuid(uuid::Uuid::from_u128(0x600 + n));
    let doc = edit::notify(&doc, &w.inspector, event(1), T).unwrap().doc;
    let steps = [
        (
            &w.manager,
            EventKind::SignedFor {
                signer: "张三".into(),
            },
        ),
        (
            &w.manager,
            EventKind::RectificationSubmitted {
                note: "已加装漏电保护器".into(),
                photos: Vec::new(),
            },
        ),
        (
            &w.inspector,
            EventKind::Verified {
                accepted: true,
                note: "复查合格".into(),
            },
        ),
        (
            &w.inspector,
            EventKind::Closed {
                note: "一般隐患，复查合格销号".into(),
            },
        ),
    ];
    let mut doc = doc;
    for (i, (author, kind)) in steps.into_iter().enumerate() {
        let at = T + 1_000 * (i as i64 + 1);
        doc = edit::record_event(&doc, author, event(i as u128 + 2), at, kind)
            .unwrap()
            .doc;
    }
    (visit, doc)
}

#[test]
fn schema_1_documents_load_and_mean_what_they_meant() {
    let dir = fixture_dir(1);
    if std::env::var_os("INSPECT_WRITE_FIXTURES").is_some() {
        let (visit, hazard) = schema_1_documents();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("visit.automerge"), visit.save()).unwrap();
        std::fs::write(dir.join("hazard.automerge"), hazard.save()).unwrap();
    }
    let read = |name: &str| {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!("{name}: {e} (write the fixtures with INSPECT_WRITE_FIXTURES=1)")
        });
        sync_core::doc::load(&bytes).unwrap()
    };

    let visit = TypedDoc::hydrate(&read("visit.automerge")).unwrap();
    let TypedDoc::Visit(visit) = visit else {
        panic!("the visit fixture is a visit")
    };
    assert_eq!(visit.id, uuid::Uuid::from_u128(0x51).to_string());
    let header = sync_core::doc::read_header(&read("visit.automerge")).unwrap();
    assert_eq!((header.kind, header.schema), (DocKind::Visit, 1));

    let doc = read("hazard.automerge");
    let header = sync_core::doc::read_header(&doc).unwrap();
    assert_eq!((header.kind, header.schema), (DocKind::Hazard, 1));
    let TypedDoc::Hazard(hazard) = TypedDoc::hydrate(&doc).unwrap() else {
        panic!("the hazard fixture is a hazard")
    };
    assert_eq!(hazard.visit_id, visit.id);
    assert_eq!(hazard.location, "一号车间");
    assert_eq!(hazard.measure, "加装漏电保护器".into());
    assert_eq!(hazard.funds_yuan, Some(5_000));
    assert_eq!(hazard.events.len(), 5);
    let status = hazard.status().unwrap();
    assert_eq!(status.state, HazardState::Closed, "{status:?}");
    assert_eq!(status.grade, Grade::General);
    assert!(
        status.outcomes.iter().all(|o| o.ignored.is_none()),
        "{status:?}"
    );
    assert_eq!(status.closed_at, Some(T + 4_000));

    // What today's code writes from the same steps means the same.
    let (_, today) = schema_1_documents();
    let TypedDoc::Hazard(now) = TypedDoc::hydrate(&today).unwrap() else {
        unreachable!()
    };
    assert_eq!(now.status().unwrap().state, status.state);
    assert_eq!(now.events.len(), hazard.events.len());
}
