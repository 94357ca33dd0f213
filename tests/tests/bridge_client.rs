//! The phone bridge against the real server, for what the Python field suite does not play: a
//! change the server refuses and its repair from the server's state, background sync, logout.
//!
//! The bridge's calls block on its own runtime, so they run on `spawn_blocking` threads.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mobile_bridge::InspectionClient;
use mobile_bridge::records::{GradeRecord, ItemState, VisitKindRecord, VisitPatch};
use sync_core::doc::{DocKind, HazardDoc};
use sync_core::ids::EnterpriseId;
use tests::phones::{hazard_input, inspector_with_hazard, phone};
use tests::{Backend, PASSWORD, TestApp, spawn_app, users};

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

/// The hazards of the seeded enterprise as the server lists them to the inspector.
async fn server_hazards(app: &TestApp) -> Vec<serde_json::Value> {
    let web = app.login(users::INSPECTOR).await;
    let (status, v) = app.get(&web.token, "/api/v1/hazards?limit=1000").await;
    assert!(status.is_success(), "{v}");
    v["items"]
        .as_array()
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default()
}

/// A backlog on a 30 kB/s link with a short timeout goes in several requests, each sized to the
/// link; the link is cut mid-way (the phone leaves the signal) and the app restarts: what was
/// acknowledged stays acknowledged, the rest goes on the next sync, nothing is sent twice to
/// the server's store, and the answers never carry back what the phone sent.
#[tokio::test]
async fn a_slow_link_takes_a_backlog_in_batches_and_a_cut_keeps_what_was_acknowledged() {
    const HAZARDS: usize = 200;
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let proxy = tests::proxy::Proxy::start(&app.base, 30_000).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("phone-slow").display().to_string();
    let base = proxy.base.clone();
    let enterprise = seed.enterprise.clone();
    let client = tokio::task::spawn_blocking({
        let (data, base) = (data.clone(), base.clone());
        move || {
            let c = InspectionClient::new(data, base).unwrap();
            c.login(
                users::INSPECTOR.into(),
                PASSWORD.into(),
                "phone-slow".into(),
                "android".into(),
            )
            .unwrap();
            c.sync_now().unwrap();
            c.set_network_timeout(8).unwrap();
            let visit = c
                .start_visit(enterprise, VisitKindRecord::Routine, "一号车间".into())
                .unwrap();
            for i in 0..HAZARDS {
                let mut input = hazard_input();
                input.description =
                    format!("第{i}号隐患：配电柜未上锁，柜门破损，线缆裸露，未张贴警示标识");
                c.add_hazard(visit.clone(), input).unwrap();
            }
            c
        }
    })
    .await
    .unwrap();
    assert_eq!(
        client.unsynced_work().unwrap().documents as usize,
        HAZARDS + 1
    );

    // The first sync runs until about a third of the backlog is through, then the link drops.
    let before = proxy.bytes_up();
    let syncing = tokio::task::spawn_blocking({
        let c = client.clone();
        move || c.sync_now()
    });
    let until = Instant::now() + Duration::from_secs(60);
    while client.unsynced_work().unwrap().documents as usize > HAZARDS * 2 / 3 {
        assert!(Instant::now() < until, "no batch was acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    let first = syncing.await.unwrap();
    assert!(first.is_err(), "the cut ends the sync: {first:?}");
    let left = client.unsynced_work().unwrap().documents as usize;
    assert!(
        left > 0 && left <= HAZARDS * 2 / 3,
        "acknowledged batches stay acknowledged: {left} left"
    );
    let sent_before_cut = proxy.bytes_up() - before;
    drop(client);

    // The app starts again on the same data directory; the link is back.
    proxy.restore();
    let report = tokio::task::spawn_blocking(move || {
        let c = InspectionClient::new(data, base).unwrap();
        c.set_network_timeout(8).unwrap();
        let report = c.sync_now().unwrap();
        assert_eq!(c.unsynced_work().unwrap().documents, 0);
        report
    })
    .await
    .unwrap();
    println!("cut after {sent_before_cut} B up with {left} documents left; then {report:?}");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(
        report.sent as usize >= left,
        "what was left is sent: {} of {left}",
        report.sent
    );
    // 8 s timeout: batches of about 2 s of a 30 kB/s link.
    let backlog_bytes = report.bytes_up as usize;
    assert!(
        report.requests as usize >= backlog_bytes / 80_000,
        "{} requests for {backlog_bytes} bytes",
        report.requests
    );
    assert!(
        report.bytes_down * 10 <= report.bytes_up,
        "the answers carry back nothing the phone sent: {} down, {} up",
        report.bytes_down,
        report.bytes_up
    );
    assert!(sent_before_cut > 0);
    let hazards = server_hazards(&app).await;
    let described = hazards
        .iter()
        .filter(|h| {
            h["description"]
                .as_str()
                .is_some_and(|d| d.starts_with('第'))
        })
        .count();
    assert_eq!(described, HAZARDS, "every hazard arrived once");
}

/// A backlog larger than one request's worth of documents goes in several requests.
#[tokio::test]
async fn a_backlog_beyond_the_batch_limit_goes_in_several_requests() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let a2 = app.clone();
    let path = dir.path().to_owned();
    let report = tokio::task::spawn_blocking(move || {
        let c = phone(&a2, &path, "phone-b", users::INSPECTOR);
        c.sync_now().unwrap();
        let visit = c
            .start_visit(seed.enterprise, VisitKindRecord::Routine, "仓库".into())
            .unwrap();
        for _ in 0..60 {
            c.add_hazard(visit.clone(), hazard_input()).unwrap();
        }
        c.set_sync_batch_limit(25);
        let report = c.sync_now().unwrap();
        assert_eq!(c.unsynced_work().unwrap().documents, 0);
        report
    })
    .await
    .unwrap();
    assert_eq!(report.sent, 61);
    assert!(
        report.requests >= 3,
        "61 documents, 25 a request: {report:?}"
    );
    assert!(
        report.refused.is_empty(),
        "the visit goes before its hazards"
    );
}

/// The agency revokes a phone that holds unsent work. The user logs in again: the bridge enrols
/// a new device, re-records the pending edits under it (events now name the new device, the
/// change says where it came from), and they reach the server.
#[tokio::test]
async fn a_revoked_phone_logs_in_again_and_its_pending_work_arrives() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let a2 = app.clone();
    let path = dir.path().to_owned();
    let (a, hazard, new_hazard, old_device) = tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &path, &seed.enterprise);
        let visit = a.get_hazard(hazard.clone()).unwrap().visit_id;
        // Offline: a detail edit, the notice, and a new hazard.
        a.edit_hazard(
            hazard.clone(),
            mobile_bridge::records::HazardPatch {
                location: Some("配电房北侧".into()),
                ..Default::default()
            },
        )
        .unwrap();
        a.notify(hazard.clone()).unwrap();
        let new_hazard = a.add_hazard(visit, hazard_input()).unwrap();
        let device = a.current_user().unwrap().unwrap().device_id;
        (a, hazard, new_hazard, device)
    })
    .await
    .unwrap();

    let admin = app.login(users::AGENCY_ADMIN).await;
    let (status, v) = app
        .post(
            &admin.token,
            &format!("/api/v1/devices/{old_device}/revoke"),
            &serde_json::json!({}),
        )
        .await;
    assert!(status.is_success(), "{v}");

    let (hazard2, old2) = (hazard.clone(), old_device.clone());
    let (new_device, last_message) = tokio::task::spawn_blocking(move || {
        let (hazard, old_device) = (hazard2, old2);
        assert!(a.sync_now().is_err(), "a revoked device cannot sync");
        let user = a
            .login(
                users::INSPECTOR.into(),
                PASSWORD.into(),
                "phone-a".into(),
                "android".into(),
            )
            .unwrap();
        assert_ne!(user.device_id, old_device, "enrolled as a new device");
        let report = a.sync_now().unwrap();
        assert!(report.refused.is_empty(), "{:?}", report.refused);
        assert_eq!(a.unsynced_work().unwrap().documents, 0);
        let id = uuid::Uuid::parse_str(&hazard).unwrap();
        let doc = a.store().load_doc(id).unwrap().unwrap();
        let message = doc
            .get_changes(&[])
            .iter()
            .filter_map(|c| c.message().map(str::to_owned))
            .next_back();
        (user.device_id, message)
    })
    .await
    .unwrap();
    assert_eq!(
        last_message.as_deref(),
        Some(format!("{}{old_device}", sync_core::edit::RERECORDED_FROM).as_str()),
        "the history says where the edits came from"
    );

    let web = app.login(users::INSPECTOR).await;
    let (status, v) = app
        .get(&web.token, &format!("/api/v1/hazards/{hazard}"))
        .await;
    assert!(status.is_success(), "{v}");
    assert_eq!(v["hazard"]["location"], "配电房北侧");
    assert_eq!(v["hazard"]["state"], "notified");
    let devices: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["device"].as_str())
        .collect();
    assert_eq!(
        devices,
        vec![new_device.as_str()],
        "the notice names the new device"
    );
    let (status, v) = app
        .get(&web.token, &format!("/api/v1/hazards/{new_hazard}"))
        .await;
    assert!(
        status.is_success(),
        "the hazard recorded offline arrived: {v}"
    );
}

/// After logout no edit is accepted. Another user cannot log in while the first user's work is
/// unsynced; once it is discarded (with the count the user was shown), the second user logs in
/// on a phone that holds nothing of the first.
#[tokio::test]
async fn after_logout_nothing_is_recorded_and_another_user_never_sees_the_first_users_work() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let a2 = app.clone();
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &path, &seed.enterprise);
        let visit = a.get_hazard(hazard.clone()).unwrap().visit_id;
        let unsent = a.add_hazard(visit.clone(), hazard_input()).unwrap();
        // Discarding is for a logged-out phone only: a signed-in user cannot wipe their work.
        assert!(matches!(
            a.discard_unsynced_work(1, 0),
            Err(mobile_bridge::BridgeError::Refused { .. })
        ));
        a.logout().unwrap();
        match a.add_hazard(visit.clone(), hazard_input()) {
            Err(mobile_bridge::BridgeError::Unauthorized { .. }) => {}
            other => panic!("an edit after logout: {other:?}"),
        }
        assert!(a.notify(hazard.clone()).is_err());

        let login2 = || {
            a.login(
                users::INSPECTOR2.into(),
                PASSWORD.into(),
                "phone-a".into(),
                "android".into(),
            )
        };
        match login2() {
            Err(mobile_bridge::BridgeError::Refused { reason }) => {
                assert!(reason.contains("1 份记录"), "{reason}")
            }
            other => panic!("another user while work is unsynced: {other:?}"),
        }
        let work = a.unsynced_work().unwrap();
        assert_eq!((work.documents, work.photos), (1, 0));
        assert!(
            a.discard_unsynced_work(0, 0).is_err(),
            "a count the user was not shown discards nothing"
        );
        assert!(a.get_hazard(unsent.clone()).is_ok());
        a.discard_unsynced_work(1, 0).unwrap();

        let user = login2().unwrap();
        assert_eq!(user.username, users::INSPECTOR2);
        a.sync_now().unwrap();
        assert!(
            a.get_hazard(unsent.clone()).is_err(),
            "the first user's unsent hazard is gone"
        );
        // The first user's synced hazard is the agency's: the second inspector receives it
        // from the server, under the second user's session.
        assert!(a.get_hazard(hazard.clone()).is_ok());
        a.add_hazard(visit, hazard_input()).unwrap();
        assert!(a.sync_now().unwrap().refused.is_empty());
    })
    .await
    .unwrap();
}

/// Weeks offline: the refresh token expires. Work goes on offline, the user logs in again on
/// the same device, and everything recorded meanwhile arrives.
#[tokio::test]
async fn an_expired_session_offline_loses_nothing_after_login() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let a2 = app.clone();
    let path = dir.path().to_owned();
    let hazard = tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &path, &seed.enterprise);
        let device = a.current_user().unwrap().unwrap().device_id;
        a2.clock.advance(jiff::SignedDuration::from_hours(24 * 40));
        let visit = a.get_hazard(hazard.clone()).unwrap().visit_id;
        let offline = a.add_hazard(visit, hazard_input()).unwrap();
        match a.sync_now() {
            Err(mobile_bridge::BridgeError::Unauthorized { .. }) => {}
            other => panic!("an expired session: {other:?}"),
        }
        a.notify(hazard.clone()).unwrap();
        let user = a
            .login(
                users::INSPECTOR.into(),
                PASSWORD.into(),
                "phone-a".into(),
                "android".into(),
            )
            .unwrap();
        assert_eq!(user.device_id, device, "the same device");
        assert!(a.sync_now().unwrap().refused.is_empty());
        assert_eq!(a.unsynced_work().unwrap().documents, 0);
        offline
    })
    .await
    .unwrap();
    let web = app.login(users::INSPECTOR).await;
    let (status, v) = app
        .get(&web.token, &format!("/api/v1/hazards/{hazard}"))
        .await;
    assert!(status.is_success(), "{v}");
}

/// A fresh phone on a 30 kB/s link with a 2 s timeout downloads an answer that takes several
/// times that long: the timeout is for silence, not for a long answer that keeps arriving.
#[tokio::test]
async fn a_long_answer_on_a_slow_link_is_read_to_the_end() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let proxy = tests::proxy::Proxy::start(&app.base, 30_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (a2, path, base) = (app.clone(), dir.path().to_owned(), proxy.base.clone());
    let (took, report) = tokio::task::spawn_blocking(move || {
        let a = phone(&a2, &path, "phone-fast", users::INSPECTOR);
        a.sync_now().unwrap();
        let visit = a
            .start_visit(seed.enterprise, VisitKindRecord::Routine, "一号车间".into())
            .unwrap();
        for _ in 0..150 {
            a.add_hazard(visit.clone(), hazard_input()).unwrap();
        }
        assert!(a.sync_now().unwrap().refused.is_empty());

        let b = InspectionClient::new(path.join("phone-slow").display().to_string(), base).unwrap();
        b.set_network_timeout(2).unwrap();
        b.login(
            users::INSPECTOR2.into(),
            PASSWORD.into(),
            "phone-slow".into(),
            "android".into(),
        )
        .unwrap();
        let started = Instant::now();
        let report = b.sync_now().unwrap();
        (started.elapsed(), report)
    })
    .await
    .unwrap();
    assert!(report.received >= 151, "{report:?}");
    assert!(
        report.bytes_down > 60_000,
        "an answer of two seconds of link at least: {report:?}"
    );
    assert!(
        took > Duration::from_secs(2),
        "longer than the timeout: {took:?}"
    );
}

/// Background sync tells the app what it does: started, finished with its report, and when
/// the agency revokes the device, failed with `Revoked` (and a sync now says `DeviceRevoked`,
/// not a bare "log in again").
#[tokio::test]
async fn auto_sync_reports_its_syncs_and_a_revoked_device() {
    use mobile_bridge::{SyncFailure, SyncObserver};
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);
    struct Observer(Arc<Seen>);
    impl SyncObserver for Observer {
        fn on_started(&self) {
            self.0.0.lock().unwrap().push("started".into());
        }
        fn on_finished(&self, report: mobile_bridge::records::SyncReport) {
            self.0
                .0
                .lock()
                .unwrap()
                .push(format!("finished {}", report.sent));
        }
        fn on_failed(&self, failure: SyncFailure, message: String) {
            assert!(!message.is_empty());
            self.0.0.lock().unwrap().push(format!("failed {failure:?}"));
        }
    }
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let (a2, path, s2) = (app.clone(), dir.path().to_owned(), seen.clone());
    let (a, device) = tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &path, &seed.enterprise);
        let visit = a.get_hazard(hazard).unwrap().visit_id;
        a.add_hazard(visit, hazard_input()).unwrap();
        let handle = a.start_auto_sync_observed(1, Box::new(Observer(s2.clone())));
        let until = Instant::now() + Duration::from_secs(30);
        while !s2.0.lock().unwrap().iter().any(|e| e == "finished 1") {
            assert!(Instant::now() < until, "no sync reported");
            std::thread::sleep(Duration::from_millis(50));
        }
        let device = a.current_user().unwrap().unwrap().device_id;
        std::mem::forget(handle); // keeps running while the device is revoked
        (a, device)
    })
    .await
    .unwrap();
    let admin = app.login(users::AGENCY_ADMIN).await;
    let (status, v) = app
        .post(
            &admin.token,
            &format!("/api/v1/devices/{device}/revoke"),
            &serde_json::json!({}),
        )
        .await;
    assert!(status.is_success(), "{v}");
    let seen2 = seen.clone();
    tokio::task::spawn_blocking(move || {
        let until = Instant::now() + Duration::from_secs(30);
        while !seen2
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e == "failed Revoked")
        {
            assert!(
                Instant::now() < until,
                "revocation not reported: {:?}",
                seen2.0.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        match a.sync_now() {
            Err(mobile_bridge::BridgeError::DeviceRevoked { detail }) => {
                assert!(detail.contains("停用"), "{detail}")
            }
            other => panic!("a revoked device's sync: {other:?}"),
        }
    })
    .await
    .unwrap();
    let events = seen.0.lock().unwrap().clone();
    assert_eq!(
        events.first().map(String::as_str),
        Some("started"),
        "{events:?}"
    );
}

/// An extension request reads as separate fields: the date and the reason, on the event and as
/// the hazard's pending request; a notice carries its deadline and grade.
#[tokio::test]
async fn an_extension_request_shows_its_date_and_reason_apart() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let (a2, path) = (app.clone(), dir.path().to_owned());
    tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &path, &seed.enterprise);
        a.notify(hazard.clone()).unwrap();
        a.sync_now().unwrap();
        let m = phone(&a2, &path, "phone-m", users::MANAGER);
        m.sync_now().unwrap();
        m.request_extension(hazard.clone(), "2026-05-20".into(), "设备采购周期长".into())
            .unwrap();
        let h = m.get_hazard(hazard.clone()).unwrap();
        let pending = h.pending_extension.expect("a pending request");
        assert_eq!(
            (pending.until.as_str(), pending.reason.as_str()),
            ("2026-05-20", "设备采购周期长")
        );
        let notice = &h.events[0];
        assert_eq!(
            notice.kind,
            mobile_bridge::records::EventKindRecord::Notified,
            "a notice, by its name in the history"
        );
        assert_eq!(notice.date.as_deref(), Some("2026-04-30"));
        assert_eq!(notice.grade, Some(GradeRecord::General));
        let request = h.events.last().unwrap();
        assert_eq!(request.id, pending.request_event_id);
        assert_eq!(request.date.as_deref(), Some("2026-05-20"));
        assert_eq!(request.text, "设备采购周期长");
        assert!(!h.under_supervision);
    })
    .await
    .unwrap();
}

/// The phone lists the user's colleagues (fetched at login) for adding inspectors to a visit:
/// the agency's own, never another agency's.
#[tokio::test]
async fn the_phone_lists_the_agencys_colleagues_only() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let (a2, path) = (app.clone(), dir.path().to_owned());
    tokio::task::spawn_blocking(move || {
        let a = phone(&a2, &path, "phone-a", users::INSPECTOR);
        let colleagues = a.colleagues().unwrap();
        let names: Vec<&str> = colleagues.iter().map(|c| c.username.as_str()).collect();
        assert!(names.contains(&users::INSPECTOR2), "{names:?}");
        assert!(!names.contains(&users::OTHER_INSPECTOR), "{names:?}");
        let two = colleagues
            .iter()
            .find(|c| c.username == users::INSPECTOR2)
            .unwrap();
        assert_eq!(two.role, mobile_bridge::records::RoleRecord::Inspector);
    })
    .await
    .unwrap();
}

/// The phone fetches the inbox: its agency's hazards' events, another agency's never; `since_ms`
/// returns only what is newer; a bad argument is refused before any request.
#[tokio::test]
async fn the_phone_fetches_its_inbox_within_its_scope() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let world = tests::world::populate(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (a2, path) = (app.clone(), dir.path().to_owned());
    tokio::task::spawn_blocking(move || {
        let a = phone(&a2, &path, "phone-a", users::INSPECTOR);
        let items = a.fetch_inbox(None, 100).unwrap();
        assert!(
            items
                .iter()
                .any(|i| i.kind == "hazard.closed" && i.hazard_id == world.closed),
            "{items:?}"
        );
        assert!(items.iter().all(|i| i.hazard_id != world.other_hazard));
        assert!(items.iter().all(|i| i.label.contains(" / ")));
        let newest = items.iter().map(|i| i.received_at_ms).max().unwrap();
        assert!(a.fetch_inbox(Some(newest), 100).unwrap().is_empty());
        let other = phone(&a2, &path, "phone-b", users::OTHER_INSPECTOR);
        let theirs = other.fetch_inbox(None, 100).unwrap();
        assert!(
            theirs.iter().all(|i| i.hazard_id == world.other_hazard),
            "{theirs:?}"
        );
        assert!(matches!(
            a.fetch_inbox(Some(-1), 100),
            Err(mobile_bridge::BridgeError::InvalidInput { .. })
        ));
        assert!(matches!(
            a.fetch_inbox(None, 0),
            Err(mobile_bridge::BridgeError::InvalidInput { .. })
        ));
    })
    .await
    .unwrap();
}
