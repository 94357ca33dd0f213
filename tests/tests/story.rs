//! The main path across server and protocol, on SQLite and PostgreSQL: an inspector records a
//! visit and a major hazard offline, the server reports it to the township, the enterprise signs
//! and submits evidence, the inspector verifies, the supervisor closes it; forbidden batches are
//! refused with nothing persisted; another tenant sees nothing; projections rebuild identically.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use sync_core::doc::{DocKind, HazardDoc};
use sync_core::domain::Grade;
use sync_core::edit;
use sync_core::engine::ReplicaDoc;
use sync_core::ids::EventId;
use sync_core::protocol;
use sync_core::rectification::EventKind;
use tests::{TestApp, users};

use tests::scenario::{T, event, hazard_state, record_visit};

async fn a_major_hazard_is_followed_to_closure(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let mut manager = app.phone(users::MANAGER).await;
    let mut supervisor = app.phone(users::SUPERVISOR).await;
    let (vid, hid) = record_visit(&seed, &mut inspector, Grade::Major, "2026-03-20");

    let resp = app.sync(&mut inspector).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);
    assert!(
        inspector
            .replica
            .docs
            .values()
            .all(|d| d.pending().is_empty())
    );

    // The projection shows it to the supervisor, and it was reported to the township.
    let sup = app.login(users::SUPERVISOR).await;
    let (status, list) = app.get(&sup.token, "/api/v1/hazards?grade=major").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], hid.to_string());
    assert_eq!(rows[0]["state"], "notified");
    assert_eq!(rows[0]["enterprise_name"], "宏达机械厂");
    let (_, reports) = app.get(&sup.token, "/api/v1/reports/major").await;
    assert_eq!(reports.as_array().unwrap().len(), 1);
    assert_eq!(reports[0]["hazard_id"], hid.to_string());
    assert_eq!(reports[0]["township_id"], seed.township);
    let (_, visit) = app.get(&sup.token, &format!("/api/v1/visits/{vid}")).await;
    assert_eq!(visit["visit"]["place"], "一号车间");
    assert_eq!(visit["hazards"].as_array().unwrap().len(), 1);

    // The enterprise receives it, signs and submits evidence.
    app.sync(&mut manager).await;
    assert!(manager.replica.docs.contains_key(hid.as_uuid()));
    event(
        &mut manager,
        hid,
        EventKind::SignedFor {
            signer: "王厂长".into(),
        },
    );
    event(
        &mut manager,
        hid,
        EventKind::RectificationSubmitted {
            note: "已更换光电保护装置".into(),
            // A major hazard's rectification carries a photo (ADR 0009).
            photos: vec![sync_core::domain::PhotoRef {
                sha256: "ab".repeat(32),
                size: 4096,
                media_type: "image/jpeg".into(),
                captured_at: None,
                gps: None,
                added_by: String::new(),
                original_sha256: None,
                exif_unreadable: None,
            }],
        },
    );
    let resp = app.sync(&mut manager).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);
    assert_eq!(hazard_state(&app, &sup.token, hid).await, "submitted");

    // The inspector verifies; an inspector may not close a major hazard: the phone refuses it.
    app.sync(&mut inspector).await;
    event(
        &mut inspector,
        hid,
        EventKind::Verified {
            accepted: true,
            note: "复查合格".into(),
        },
    );
    let close = sync_core::edit::record_event(
        &inspector.replica.docs[hid.as_uuid()].doc,
        &inspector.author,
        sync_core::ids::EventId::new_random(),
        T,
        EventKind::Closed {
            note: String::new(),
        },
    );
    assert!(matches!(
        close,
        Err(sync_core::edit::EditError::NotNow(
            sync_core::rectification::Why::MajorNeedsRegulator
        ))
    ));
    app.sync(&mut inspector).await;
    assert_eq!(hazard_state(&app, &sup.token, hid).await, "accepted");

    // The supervisor closes it.
    app.sync(&mut supervisor).await;
    event(
        &mut supervisor,
        hid,
        EventKind::Closed {
            note: "验收销号".into(),
        },
    );
    app.sync(&mut supervisor).await;
    assert_eq!(hazard_state(&app, &sup.token, hid).await, "closed");
    let (_, detail) = app.get(&sup.token, &format!("/api/v1/hazards/{hid}")).await;
    let history = detail["history"].as_array().unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "notified",
            "signed_for",
            "rectification_submitted",
            "verified",
            "closed"
        ]
    );
    assert!(
        history.iter().all(|e| e["ignored"].is_null()),
        "every recorded event took effect: the inspector's close was refused before recording"
    );

    // Every phone converges on the server's document.
    for p in [&mut inspector, &mut manager, &mut supervisor] {
        app.sync(p).await;
    }
    let server_doc = app.state.hub.load(*hid.as_uuid()).await.unwrap().unwrap();
    for p in [&inspector, &manager, &supervisor] {
        assert_eq!(
            p.replica.docs[hid.as_uuid()].doc.get_heads(),
            server_doc.get_heads()
        );
    }

    // The enterprise file (一企一档) holds the visit and the hazard with its history.
    let (status, file) = app
        .get(
            &sup.token,
            &format!("/api/v1/enterprises/{}/file", seed.enterprise),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file["visits"].as_array().unwrap().len(), 1);
    assert_eq!(file["hazards"][0]["history"].as_array().unwrap().len(), 5);

    // Projections rebuilt from the documents equal the incrementally maintained ones.
    let (_, before) = app.get(&sup.token, "/api/v1/hazards").await;
    let (_, before_hist) = app.get(&sup.token, &format!("/api/v1/hazards/{hid}")).await;
    let n = server::projection::rebuild(&app.state.db, T).await.unwrap();
    assert_eq!(n, 2);
    let (_, after) = app.get(&sup.token, "/api/v1/hazards").await;
    let (_, after_hist) = app.get(&sup.token, &format!("/api/v1/hazards/{hid}")).await;
    let strip = |mut v: serde_json::Value| {
        for r in v.as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("updated_at");
        }
        v
    };
    assert_eq!(strip(before), strip(after));
    assert_eq!(before_hist["history"], after_hist["history"]);
}

async fn a_forbidden_batch_is_refused_and_nothing_is_persisted(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let mut manager = app.phone(users::MANAGER).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::Major, "2026-03-20");
    app.sync(&mut inspector).await;
    app.sync(&mut manager).await;

    // A tampered phone: a valid signature plus a downgrade of the grade, in one batch.
    let doc = manager.replica.docs[hid.as_uuid()].doc.clone();
    let signed = edit::record_event(
        &doc,
        &manager.author,
        EventId::new_random(),
        T,
        EventKind::SignedFor {
            signer: "王厂长".into(),
        },
    )
    .unwrap();
    let downgraded = edit::modify::<HazardDoc>(&signed.doc, &manager.author.actors[0], T, |h| {
        h.grade = Grade::General
    })
    .unwrap();
    manager.replica.docs.get_mut(hid.as_uuid()).unwrap().doc = downgraded.doc;

    let seq_before = sync_core::store::DocumentStore::max_seq(&app.state.db)
        .await
        .unwrap();
    let resp = app.sync(&mut manager).await;
    assert_eq!(resp.refused.len(), 1);
    assert_eq!(resp.refused[0].id, *hid.as_uuid());
    let codes: Vec<_> = resp.refused[0]
        .reasons
        .iter()
        .map(|r| r.code.as_str())
        .collect();
    assert_eq!(codes, ["not_permitted"]);
    assert_eq!(resp.refused[0].reasons[0].detail, "grade");
    assert_eq!(
        sync_core::store::DocumentStore::max_seq(&app.state.db)
            .await
            .unwrap(),
        seq_before,
        "nothing stored"
    );
    let sup = app.login(users::SUPERVISOR).await;
    let (_, detail) = app.get(&sup.token, &format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(detail["hazard"]["grade"], "major");
    assert_eq!(
        detail["history"].as_array().unwrap().len(),
        1,
        "the signature in the refused batch is not applied"
    );
    assert!(
        manager.replica.docs[hid.as_uuid()].refused.is_some(),
        "the phone knows the item was refused"
    );
}

async fn overdue_hazards_are_found_by_the_china_date(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-12");
    app.sync(&mut inspector).await;
    let sup = app.login(users::SUPERVISOR).await;
    let (status, rows) = app.get(&sup.token, "/api/v1/hazards?overdue=true").await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert!(rows.as_array().unwrap().is_empty());
    // 2026-03-12 23:30 in Beijing: still on time.
    app.clock.set("2026-03-12T15:30:00Z".parse().unwrap());
    let sup = app.login(users::SUPERVISOR).await; // the old access token has expired by now
    let (_, rows) = app.get(&sup.token, "/api/v1/hazards?overdue=true").await;
    assert!(rows.as_array().unwrap().is_empty());
    // 2026-03-13 00:30 in Beijing (still 12 March in UTC): overdue.
    app.clock.set("2026-03-12T16:30:00Z".parse().unwrap());
    let sup = app.login(users::SUPERVISOR).await;
    let (_, rows) = app.get(&sup.token, "/api/v1/hazards?overdue=true").await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["id"], hid.to_string());
    assert_eq!(rows[0]["overdue"], true);
}

async fn another_tenant_sees_and_receives_nothing(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let (vid, hid) = record_visit(&seed, &mut inspector, Grade::Major, "2026-03-20");
    app.sync(&mut inspector).await;

    for user in [
        users::OTHER_SUPERVISOR,
        users::OTHER_INSPECTOR,
        users::OTHER_MANAGER,
    ] {
        let s = app.login(user).await;
        let (_, rows) = app.get(&s.token, "/api/v1/hazards").await;
        assert!(rows.as_array().unwrap().is_empty(), "{user} sees nothing");
        let (status, _) = app.get(&s.token, &format!("/api/v1/hazards/{hid}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}");
        let (status, _) = app.get(&s.token, &format!("/api/v1/visits/{vid}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}");
        let (status, _) = app
            .get(
                &s.token,
                &format!("/api/v1/enterprises/{}/file", seed.enterprise),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}");
        let (_, reports) = app.get(&s.token, "/api/v1/reports/major").await;
        assert!(reports.as_array().unwrap().is_empty());
        let mut phone = app.phone(user).await;
        app.sync(&mut phone).await;
        assert!(
            phone.replica.docs.is_empty(),
            "{user}'s phone receives nothing"
        );
    }

    // An inspector of another agency cannot push changes into the enterprise either.
    let mut other = app.phone(users::OTHER_INSPECTOR).await;
    let doc = inspector.replica.docs[hid.as_uuid()].doc.clone();
    let forged = edit::modify::<HazardDoc>(&doc, &other.author.actors[0], T, |h| {
        h.location = "X".into()
    })
    .unwrap();
    other.replica.docs.insert(
        *hid.as_uuid(),
        ReplicaDoc {
            kind: DocKind::Hazard,
            doc: forged.doc,
            synced: doc.get_heads(),
            refused: None,
        },
    );
    let resp = app.sync(&mut other).await;
    assert_eq!(resp.refused.len(), 1);
    assert_eq!(resp.refused[0].reasons[0].code.as_str(), "not_in_scope");
}

async fn bad_sync_messages_get_a_clear_4xx_and_the_server_stays_up(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    let (req, _) = inspector.replica.request();
    let good = protocol::encode_request(&req);
    let token = inspector.session.token.clone();

    let (status, body) = app.post_sync(&token, good[..good.len() / 2].to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"], "sync_malformed");
    let (status, body) = app.post_sync(&token, b"<html>hello</html>".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"], "sync_version");
    let (status, _) = app.post_sync(&token, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .post_sync(&token, vec![1u8; protocol::MAX_MESSAGE_BYTES + 10])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Garbage Automerge inside a well-formed message: refused per document, nothing stored.
    let mut bad = req.clone();
    bad.docs.truncate(1);
    bad.docs[0].changes = vec![vec![0x85, 0x6f, 0x4a, 0x83, 9, 9, 9]];
    let (status, body) = app.post_sync(&token, protocol::encode_request(&bad)).await;
    assert_eq!(status, StatusCode::OK);
    let resp = protocol::decode_response(&body).unwrap();
    assert_eq!(resp.refused[0].reasons[0].code.as_str(), "malformed");
    assert_eq!(
        sync_core::store::DocumentStore::max_seq(&app.state.db)
            .await
            .unwrap(),
        0
    );
    // A web session without a device may not sync.
    let web = app.login(users::INSPECTOR).await;
    let (status, _) = app.post_sync(&web.token, good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No token at all.
    let (status, _) = app.post_sync("", good.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same request twice is harmless, and the server is still up.
    let (s1, _) = app.post_sync(&token, good.clone()).await;
    let (s2, b2) = app.post_sync(&token, good).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert!(protocol::decode_response(&b2).unwrap().refused.is_empty());
    let (status, _) = app.get(&token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
}

tests::on_every_backend!(
    a_major_hazard_is_followed_to_closure,
    a_forbidden_batch_is_refused_and_nothing_is_persisted,
    overdue_hazards_are_found_by_the_china_date,
    another_tenant_sees_and_receives_nothing,
    bad_sync_messages_get_a_clear_4xx_and_the_server_stays_up,
);

/// What the server acknowledged survives a restart: a new server on the same database has every
/// change, and the phone's next sync brings nothing back and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_a_restart() {
    let app = tests::spawn_app(tests::Backend::Sqlite).await.unwrap();
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    let resp = app.sync(&mut inspector).await;
    assert!(resp.refused.is_empty());
    let heads = inspector.replica.docs[hid.as_uuid()].doc.get_heads();

    // A second server process on the same files (the first one's memory is gone).
    let config = server::Config {
        data_dir: app.dir.path().to_owned(),
        database_url: Some(format!(
            "sqlite://{}",
            app.dir.path().join("test.db").display()
        )),
        ..server::Config::default()
    };
    let state = server::build_state_with_clock(config, app.clock.clone())
        .await
        .unwrap();
    let doc = state.hub.load(*hid.as_uuid()).await.unwrap().unwrap();
    assert_eq!(doc.get_heads(), heads);
    let hz = HazardDoc::hydrate_from(&doc).unwrap();
    assert_eq!(hz.location, "冲压车间");
    assert_eq!(hz.events.len(), 1);
}
