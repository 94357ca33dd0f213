//! The phone SDK's calls against the real server that app developers meet first: every event a
//! role records is a call, and an app older than the server serves is told to update without
//! losing its work. The bridge's calls block on its own runtime, so they run on
//! `spawn_blocking` threads.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mobile_bridge::InspectionClient;
use mobile_bridge::records::GradeRecord;
use tests::phones::{hazard_input, inspector_with_hazard, phone};
use tests::{Backend, PASSWORD, spawn_app, spawn_app_with, users};

/// A server that no longer serves this app's SDK tells it to update, Chinese first, naming the
/// versions, before any handler runs; the work on the phone waits, whole, and goes up once a
/// server serves the app again. Requests without the SDK header (the web) pass; a header that
/// is not a version is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_older_than_the_server_serves_is_told_to_update_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", data.path().join("inspect.db").display());
    let start = |min: Option<&'static str>| {
        let (path, url) = (data.path().to_owned(), database_url.clone());
        spawn_app_with(Backend::Sqlite, move |c| {
            c.data_dir = path;
            c.database_url = Some(url);
            if let Some(min) = min {
                c.min_sdk_version = min.parse().unwrap();
            }
        })
    };
    let version = env!("CARGO_PKG_VERSION");

    // Today's server: the phone records a hazard, syncs, then records another offline.
    let app = Arc::new(start(None).await.unwrap());
    let seed = app.seed().await;
    let (phones, a2) = (dir.path().to_owned(), app.clone());
    let offline = tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &phones, &seed.enterprise);
        let visit = a.get_hazard(hazard).unwrap().visit_id;
        a.add_hazard(visit, hazard_input()).unwrap()
    })
    .await
    .unwrap();
    app.state.db.close().await;
    drop(app);

    // The same database, served by a server that wants SDK 99.0.0 or later.
    let strict = Arc::new(start(Some("99.0.0")).await.unwrap());
    let (phones, base) = (dir.path().to_owned(), strict.base.clone());
    tokio::task::spawn_blocking(move || {
        let a = InspectionClient::new(phones.join("phone-a").display().to_string(), base.clone())
            .unwrap();
        let before = a.unsynced_work().unwrap();
        assert!(before.documents > 0);
        match a.sync_now() {
            Err(mobile_bridge::BridgeError::UpdateRequired { detail }) => {
                assert!(
                    detail.starts_with(&format!("此应用版本（{version}）过旧，请更新到 99.0.0")),
                    "{detail}"
                );
                assert!(detail.contains("update it to 99.0.0 or later"), "{detail}");
            }
            other => panic!("an old app: {other:?}"),
        }
        assert_eq!(
            a.unsynced_work().unwrap(),
            before,
            "nothing lost, nothing sent"
        );
        // A colleague's fresh install of the same app cannot even log in.
        let b = InspectionClient::new(phones.join("phone-b").display().to_string(), base).unwrap();
        let refused = b.login(
            users::INSPECTOR2.into(),
            PASSWORD.into(),
            "phone-b".into(),
            "android".into(),
        );
        assert!(
            matches!(
                refused,
                Err(mobile_bridge::BridgeError::UpdateRequired { .. })
            ),
            "{refused:?}"
        );
    })
    .await
    .unwrap();
    // Over HTTP: the code and the status; the web (no header) passes; junk is refused.
    let login = serde_json::json!({"username": users::INSPECTOR, "password": PASSWORD});
    let post = |sdk: Option<&str>| {
        let mut r = strict
            .client
            .post(format!("{}/api/v1/auth/login", strict.base))
            .json(&login);
        if let Some(v) = sdk {
            r = r.header("x-inspect-sdk", v);
        }
        r.send()
    };
    let old = post(Some(version)).await.unwrap();
    assert_eq!(old.status().as_u16(), 426);
    let body: serde_json::Value = old.json().await.unwrap();
    assert_eq!(body["error"], "sdk_too_old");
    assert_eq!(post(Some("99.0.0")).await.unwrap().status().as_u16(), 200);
    assert_eq!(post(None).await.unwrap().status().as_u16(), 200);
    // Not versions: too few parts, full-width digits (a version that would sort past any
    // minimum if read loosely), and a number too long to be a version.
    for bad in ["1.2", "９９.０.０", "99999999.0.0"] {
        let junk = post(Some(bad)).await.unwrap();
        assert_eq!(junk.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = junk.json().await.unwrap();
        assert_eq!(body["error"], "sdk_version_invalid", "{bad}");
    }
    strict.state.db.close().await;
    drop(strict);

    // Served again: the waiting work goes up, all of it.
    let app = Arc::new(start(None).await.unwrap());
    let (phones, base) = (dir.path().to_owned(), app.base.clone());
    tokio::task::spawn_blocking(move || {
        let a = InspectionClient::new(phones.join("phone-a").display().to_string(), base).unwrap();
        assert!(a.sync_now().unwrap().refused.is_empty());
        assert_eq!(a.unsynced_work().unwrap().documents, 0);
    })
    .await
    .unwrap();
    let web = app.login(users::INSPECTOR).await;
    let (status, v) = app
        .get(&web.token, &format!("/api/v1/hazards/{offline}"))
        .await;
    assert!(status.is_success(), "{v}");
}

/// Every action a role has is a call on the phone: the agency regrades a notified hazard to
/// major and reports it; the township puts it under supervision, refuses the enterprise's
/// extension, lifts its supervision after acceptance, closes it and reopens it. The server
/// holds each event as it was recorded, in effect; a call outside the role is refused on the
/// phone with the rule's reason, and a blank or oversized reason is invalid input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_the_agency_and_the_township_is_a_call_on_the_phone() {
    use mobile_bridge::BridgeError;
    use mobile_bridge::records::HazardStateRecord;
    let app = Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let (a2, path) = (app.clone(), dir.path().to_owned());
    let hazard = tokio::task::spawn_blocking(move || {
        let (a, hazard) = inspector_with_hazard(&a2, &path, &seed.enterprise);
        a.notify(hazard.clone()).unwrap();
        // Blank and oversized reasons never reach the document.
        for bad in [String::new(), "  ".into(), "很".repeat(2_001)] {
            match a.regrade(hazard.clone(), GradeRecord::Major, bad) {
                Err(BridgeError::InvalidInput { field, .. }) => assert_eq!(field, "reason"),
                other => panic!("a bad reason: {other:?}"),
            }
        }
        a.regrade(
            hazard.clone(),
            GradeRecord::Major,
            "涉及危化品仓库，升为重大隐患".into(),
        )
        .unwrap();
        a.report_to_regulator(hazard.clone(), "城东街道应急管理办公室".into())
            .unwrap();
        assert!(a.sync_now().unwrap().refused.is_empty());
        let r = a.get_hazard(hazard.clone()).unwrap();
        assert_eq!(r.grade, GradeRecord::Major);
        assert!(r.reported_at.is_some());
        // Supervision is the township's.
        match a.put_under_supervision(hazard.clone(), "督办".into()) {
            Err(BridgeError::Refused { reason }) => assert!(!reason.is_empty()),
            other => panic!("an inspector putting under supervision: {other:?}"),
        }

        let m = phone(&a2, &path, "phone-m", users::MANAGER);
        m.sync_now().unwrap();
        m.sign_for(hazard.clone(), "王五".into()).unwrap();
        m.request_extension(
            hazard.clone(),
            "2026-05-30".into(),
            "设备到货需要时间".into(),
        )
        .unwrap();
        assert!(m.sync_now().unwrap().refused.is_empty());

        let s = phone(&a2, &path, "phone-s", users::SUPERVISOR);
        s.sync_now().unwrap();
        s.put_under_supervision(hazard.clone(), "重大隐患挂牌督办".into())
            .unwrap();
        let request = s
            .get_hazard(hazard.clone())
            .unwrap()
            .pending_extension
            .expect("the request is pending")
            .request_event_id;
        s.refuse_extension(hazard.clone(), request, "现有期限内可以完成".into())
            .unwrap();
        assert!(s.sync_now().unwrap().refused.is_empty());
        let r = s.get_hazard(hazard.clone()).unwrap();
        assert!(r.under_supervision);
        assert!(r.pending_extension.is_none());
        assert_eq!(
            r.current_deadline.as_deref(),
            Some("2026-04-30"),
            "the deadline stays"
        );

        m.sync_now().unwrap();
        let evidence = path.join("evidence.jpg");
        std::fs::write(&evidence, tests::world::tiny_jpeg(7)).unwrap();
        m.submit_rectification(
            hazard.clone(),
            "已整改完毕".into(),
            vec![evidence.display().to_string()],
        )
        .unwrap();
        m.sync_now().unwrap();
        a.sync_now().unwrap();
        a.verify(hazard.clone(), true, "复查合格".into()).unwrap();
        a.sync_now().unwrap();
        s.sync_now().unwrap();
        s.lift_supervision(hazard.clone(), "整改验收合格，解除督办".into())
            .unwrap();
        assert!(!s.get_hazard(hazard.clone()).unwrap().under_supervision);
        s.close(hazard.clone(), "验收合格，予以销号".into())
            .unwrap();
        assert_eq!(
            s.get_hazard(hazard.clone()).unwrap().state,
            HazardStateRecord::Closed
        );
        s.reopen(hazard.clone(), "抽查发现隐患仍然存在".into())
            .unwrap();
        assert!(s.sync_now().unwrap().refused.is_empty());
        let r = s.get_hazard(hazard.clone()).unwrap();
        assert_ne!(r.state, HazardStateRecord::Closed);
        assert!(!r.under_supervision);
        hazard
    })
    .await
    .unwrap();

    // The server holds each event, in effect, in the order recorded.
    let web = app.login(users::SUPERVISOR).await;
    let (status, v) = app
        .get(&web.token, &format!("/api/v1/hazards/{hazard}"))
        .await;
    assert!(status.is_success(), "{v}");
    let kinds: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "regraded",
        "reported_to_regulator",
        "supervision_put",
        "extension_refused",
        "closed",
        "supervision_lifted",
        "reopened",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(v["hazard"]["grade"], "major");
    assert_ne!(v["hazard"]["state"], "closed");
    assert_eq!(v["hazard"]["under_supervision"], false);
}
