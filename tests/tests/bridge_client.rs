//! The phone bridge against the real server, for what the Python field suite does not play: a
//! change the server refuses and its repair from the server's state, background sync, logout.
//!
//! The bridge's calls block on its own runtime, so they run on `spawn_blocking` threads.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mobile_bridge::InspectionClient;
use mobile_bridge::records::{HazardInput, ItemState, VisitKindRecord, VisitPatch};
use sync_core::doc::{DocKind, HazardDoc};
use sync_core::ids::EnterpriseId;
use tests::{Backend, PASSWORD, TestApp, spawn_app, users};

fn phone(app: &TestApp, dir: &std::path::Path, name: &str, user: &str) -> Arc<InspectionClient> {
    let c = InspectionClient::new(dir.join(name).display().to_string(), app.base.clone()).unwrap();
    c.login(user.into(), PASSWORD.into(), name.into(), "android".into())
        .unwrap();
    c
}

fn hazard_input() -> HazardInput {
    HazardInput {
        location: "配电房".into(),
        description: "配电柜未上锁".into(),
        category: "electrical".into(),
        grade: "general".into(),
        criterion: String::new(),
        measure: "加锁并张贴警示标识".into(),
        deadline: "2026-04-30".into(),
        responsible_person: "王师傅".into(),
        funds_yuan: None,
        emergency_plan: String::new(),
    }
}

/// An inspector's phone with a synced visit and hazard in the seeded enterprise.
fn inspector_with_hazard(
    app: &TestApp,
    dir: &std::path::Path,
    enterprise: &str,
) -> (Arc<InspectionClient>, String) {
    let a = phone(app, dir, "phone-a", users::INSPECTOR);
    a.sync_now().unwrap();
    let visit = a
        .start_visit(
            enterprise.into(),
            VisitKindRecord::Routine,
            "一号车间".into(),
        )
        .unwrap();
    let hazard = a.add_hazard(visit, hazard_input()).unwrap();
    assert!(a.sync_now().unwrap().refused.is_empty());
    (a, hazard)
}

#[tokio::test]
async fn a_refused_change_is_repaired_from_the_server_state_and_the_typed_value_is_returned() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().to_owned();
    let shared = Arc::new(app);
    let app = shared.clone();
    let (hazard, manager) = tokio::task::spawn_blocking(move || {
        let (_a, hazard) = inspector_with_hazard(&app, &base_dir, &seed.enterprise);
        let m = phone(&app, &base_dir, "phone-m", users::MANAGER);
        m.sync_now().unwrap();

        // An older app without the local policy check: the manager's phone rewrites the
        // hazard's location, which only inspectors may change. Written below the bridge's API.
        let id = uuid::Uuid::parse_str(&hazard).unwrap();
        let doc = m.store().load_doc(id).unwrap().unwrap();
        let actor_hex = m.store().session().unwrap().unwrap().actor_id;
        let actor = sync_core::automerge::ActorId::from(hex::decode(actor_hex).unwrap());
        let edited = sync_core::edit::modify::<HazardDoc>(&doc, &actor, 1_773_100_000_000, |h| {
            h.location = "经理改写的位置".into()
        })
        .unwrap();
        let enterprise = EnterpriseId::parse(&seed.enterprise).unwrap();
        m.store()
            .commit_local(
                id,
                DocKind::Hazard,
                enterprise,
                &edited.doc,
                &[edited.change.unwrap()],
            )
            .unwrap();
        assert_eq!(m.item_state(hazard.clone()).unwrap(), ItemState::Pending);

        let report = m.sync_now().unwrap();
        assert_eq!(report.refused.len(), 1, "{report:?}");
        assert_eq!(report.refused[0].doc_id, hazard);
        match m.item_state(hazard.clone()).unwrap() {
            // The rule and the field's name, once, Chinese first; no key or id.
            ItemState::Refused { reason } => assert_eq!(
                reason,
                "您的角色无权修改此项（隐患部位） / your role may not change this (location)"
            ),
            other => panic!("expected refused, got {other:?}"),
        }
        // What the user typed is still shown until they repair.
        assert_eq!(
            m.get_hazard(hazard.clone()).unwrap().location,
            "经理改写的位置"
        );
        (hazard, m)
    })
    .await
    .unwrap();

    // The server kept its own value.
    let web = shared.login(users::INSPECTOR).await;
    let (status, h) = shared
        .get(&web.token, &format!("/api/v1/hazards/{hazard}"))
        .await;
    assert!(status.is_success());
    assert_eq!(h["hazard"]["location"], "配电房");

    let h2 = hazard.clone();
    tokio::task::spawn_blocking(move || {
        let repaired = manager.repair(h2.clone()).unwrap();
        assert_eq!(
            repaired.kept_versions, 1,
            "the refused version stays on the phone"
        );
        let location = repaired
            .discarded
            .iter()
            .find(|d| d.field == "location")
            .expect("the typed location is returned");
        assert!(location.local_value.contains("经理改写的位置"));
        assert!(location.server_value.contains("配电房"));
        assert_eq!(manager.item_state(h2.clone()).unwrap(), ItemState::Synced);
        assert_eq!(manager.get_hazard(h2.clone()).unwrap().location, "配电房");
        let again = manager.sync_now().unwrap();
        assert!(again.refused.is_empty() && again.sent == 0, "{again:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn background_sync_sends_an_offline_edit_and_logout_keeps_the_data() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().to_owned();
    let a2 = app.clone();
    let visit = tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &base_dir, &seed.enterprise);
        let visit = a.get_hazard(hazard.clone()).unwrap().visit_id;
        a.edit_visit(
            visit.clone(),
            VisitPatch {
                place: Some("二号车间".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.item_state(visit.clone()).unwrap(), ItemState::Pending);

        // Nobody calls sync: the background loop sends it (bounded wait, 1 s interval).
        let handle = a.start_auto_sync(1);
        let until = Instant::now() + Duration::from_secs(30);
        while a.item_state(visit.clone()).unwrap() != ItemState::Synced {
            assert!(
                Instant::now() < until,
                "background sync did not send the edit"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        handle.cancel();

        // Logout forgets the session, not the data; syncing needs a login again.
        a.logout().unwrap();
        assert!(a.current_user().unwrap().is_none());
        assert_eq!(a.get_hazard(hazard.clone()).unwrap().location, "配电房");
        assert!(a.sync_now().is_err(), "no sync without a session");
        visit
    })
    .await
    .unwrap();

    let web = app.login(users::INSPECTOR).await;
    let (status, v) = app
        .get(&web.token, &format!("/api/v1/visits/{visit}"))
        .await;
    assert!(status.is_success(), "{v}");
    assert_eq!(v["visit"]["place"], "二号车间");
}

/// The agency's contract with the enterprise ends while an inspector's phone holds an unsent
/// edit (the last contract day's work, offline). The phone never deletes it: the edit is sent,
/// the server's refusal is shown with its reason, the document stays; a document with nothing
/// unsent goes. Once the user has discarded the refused edit, the document goes too.
#[tokio::test]
async fn a_document_that_leaves_the_scope_keeps_its_unsent_edits() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().to_owned();
    let a2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &base_dir, &seed.enterprise);
        let visit = a.get_hazard(hazard.clone()).unwrap().visit_id;
        a.edit_hazard(
            hazard.clone(),
            mobile_bridge::records::HazardPatch {
                location: Some("配电房东侧".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.item_state(hazard.clone()).unwrap(), ItemState::Pending);

        // The contract ended on 2026-12-31; the phone signs in again on New Year's Day.
        a2.clock.set("2027-01-01T02:00:00Z".parse().unwrap());
        a.logout().unwrap();
        a.login(
            users::INSPECTOR.into(),
            PASSWORD.into(),
            "phone-a".into(),
            "android".into(),
        )
        .unwrap();
        a.sync_now().unwrap();

        // The edited hazard is kept, with the server's reason; the untouched visit is gone.
        let h = a.get_hazard(hazard.clone()).unwrap();
        assert_eq!(h.location, "配电房东侧", "the unsent edit is still there");
        match a.item_state(hazard.clone()).unwrap() {
            ItemState::Refused { reason } => {
                assert!(reason.contains("无权访问该企业"), "{reason}")
            }
            other => panic!("expected the server's refusal, got {other:?}"),
        }
        assert!(
            a.get_visit(visit.clone()).is_err(),
            "the visit left with the scope"
        );

        // The user discards the refused edit: nothing is left to send, the hazard goes.
        a.repair(hazard.clone()).unwrap();
        a.sync_now().unwrap();
        assert!(a.get_hazard(hazard.clone()).is_err());
    })
    .await
    .unwrap();
}

/// Two inspectors set the responsible person offline. Each phone shows both values; the
/// manager's phone still offers and records signing for and submitting; the manager may not
/// pick a value; an inspector picks one and every phone converges on it.
#[tokio::test]
async fn two_offline_writers_of_one_field_are_shown_and_resolved_on_the_phone() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().to_owned();
    let a2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &base_dir, &seed.enterprise);
        a.notify(hazard.clone()).unwrap();
        a.sync_now().unwrap();
        let b = phone(&a2, &base_dir, "phone-b", users::INSPECTOR2);
        b.sync_now().unwrap();
        for (p, name) in [(&a, "王五"), (&b, "赵六")] {
            p.edit_hazard(
                hazard.clone(),
                mobile_bridge::records::HazardPatch {
                    responsible_person: Some(name.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        assert!(a.sync_now().unwrap().refused.is_empty());
        assert!(b.sync_now().unwrap().refused.is_empty());
        a.sync_now().unwrap();
        let conflicts = a.get_hazard(hazard.clone()).unwrap().conflicts;
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].field, "responsible_person");
        let mut values = conflicts[0].values.clone();
        values.sort();
        assert_eq!(values, ["王五", "赵六"]);

        let m = phone(&a2, &base_dir, "phone-m", users::MANAGER);
        m.sync_now().unwrap();
        let offered = |c: &InspectionClient, action: &str| {
            c.allowed_actions(hazard.clone())
                .unwrap()
                .into_iter()
                .find(|x| x.action == action)
                .unwrap()
        };
        assert!(offered(&m, "sign_for").allowed);
        let close = offered(&m, "close");
        assert!(!close.allowed);
        assert!(close.reason.unwrap().contains(" / "));
        m.sign_for(hazard.clone(), "王厂长".into()).unwrap();
        assert!(offered(&m, "submit_rectification").allowed);
        assert!(m.sync_now().unwrap().refused.is_empty());
        assert!(
            m.resolve_conflict(hazard.clone(), "responsible_person".into(), "王五".into())
                .is_err(),
            "the manager may not pick"
        );

        assert!(offered(&a, "edit_details").allowed);
        a.resolve_conflict(hazard.clone(), "responsible_person".into(), "赵六".into())
            .unwrap();
        assert!(a.sync_now().unwrap().refused.is_empty());
        b.sync_now().unwrap();
        for p in [&a, &b] {
            let h = p.get_hazard(hazard.clone()).unwrap();
            assert!(h.conflicts.is_empty());
            assert_eq!(h.responsible_person, "赵六");
        }
    })
    .await
    .unwrap();
}
