//! The rules through the server, on SQLite and PostgreSQL: what the hazard detail offers each
//! role is exactly what the server accepts from it, step by step along a hazard's life; and two
//! inspectors who set one field offline leave a hazard the manager can still act on, whose two
//! values the API shows until an inspector picks one.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_core::domain::Grade;
use sync_core::edit;
use tests::scenario::{T, hazard_state, record_visit};
use tests::{TestApp, users};

/// The web body that takes `action` on a hazard whose detail is `detail`, or `None` for the
/// actions that are detail edits (the phone's, not the web's).
fn body(action: &str, detail: &Value) -> Option<Value> {
    let pending = &detail["pending_extension"];
    let request = pending["request"]
        .as_str()
        .unwrap_or("0195a000-0000-7000-8000-00000000abcd");
    let until = pending["until"].as_str().unwrap_or("2027-01-01");
    let photo = json!({
        "sha256": "ab".repeat(32), "size": 4096, "media_type": "image/jpeg",
        "captured_at": null, "gps": null, "added_by": ""
    });
    Some(match action {
        "notify" => json!({ "kind": "notified" }),
        "sign_for" => json!({ "kind": "signed_for", "signer": "王厂长" }),
        "request_extension" => {
            json!({ "kind": "extension_requested", "until": "2027-01-01", "reason": "设备到货慢" })
        }
        "grant_extension" => {
            json!({ "kind": "extension_granted", "request": request, "until": until })
        }
        "refuse_extension" => {
            json!({ "kind": "extension_refused", "request": request, "reason": "理由不充分" })
        }
        "submit_rectification" => {
            json!({ "kind": "rectification_submitted", "note": "已整改", "photos": [photo] })
        }
        "accept" => json!({ "kind": "verified", "accepted": true, "note": "复查合格" }),
        "reject" => json!({ "kind": "verified", "accepted": false, "note": "未达标" }),
        "report_to_regulator" => json!({ "kind": "reported_to_regulator", "to": "镇应急办" }),
        "put_under_supervision" => json!({ "kind": "supervision_put", "note": "挂牌" }),
        "lift_supervision" => json!({ "kind": "supervision_lifted", "note": "解除" }),
        "close" => json!({ "kind": "closed", "note": "销号" }),
        "reopen" => json!({ "kind": "reopened", "reason": "复查发现问题" }),
        "upgrade" => json!({ "kind": "regraded", "grade": "major", "reason": "重新判定" }),
        "downgrade" => json!({ "kind": "regraded", "grade": "general", "reason": "复核" }),
        _ => return None,
    })
}

const ROLES: [&str; 4] = [
    users::INSPECTOR,
    users::MANAGER,
    users::SUPERVISOR,
    users::AGENCY_ADMIN,
];

/// At every step of a hazard's life, for every role, each action the detail does not offer is
/// refused by the server (and changes nothing); then the step's action, which must be offered,
/// is accepted.
async fn what_the_detail_offers_is_what_the_server_accepts(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    assert!(app.sync(&mut inspector).await.refused.is_empty());
    let mut tokens = Vec::new();
    for r in ROLES {
        tokens.push((r, app.login(r).await.token));
    }
    let stranger = app.login(users::OTHER_INSPECTOR).await.token;
    let path = format!("/api/v1/hazards/{hid}");
    let steps = [
        (users::MANAGER, "sign_for"),
        (users::MANAGER, "request_extension"),
        (users::INSPECTOR, "grant_extension"),
        (users::INSPECTOR, "upgrade"),
        (users::SUPERVISOR, "put_under_supervision"),
        (users::INSPECTOR, "report_to_regulator"),
        (users::MANAGER, "submit_rectification"),
        (users::INSPECTOR, "reject"),
        (users::MANAGER, "submit_rectification"),
        (users::INSPECTOR, "accept"),
        (users::SUPERVISOR, "close"),
        (users::SUPERVISOR, "reopen"),
    ];
    for (who, step) in steps {
        for (role, token) in &tokens {
            let (status, detail) = app.get(token, &path).await;
            assert_eq!(status, StatusCode::OK);
            let history_len = detail["history"].as_array().unwrap().len();
            for a in detail["actions"].as_array().unwrap() {
                let name = a["action"].as_str().unwrap();
                if a["allowed"].as_bool().unwrap() {
                    assert!(a["why_not"].is_null());
                    continue;
                }
                let reason = a["reason"].as_str().unwrap();
                assert!(
                    reason.contains(" / "),
                    "a reason in both languages: {reason}"
                );
                let Some(b) = body(name, &detail) else {
                    continue;
                };
                let (status, refusal) = app.post(token, &format!("{path}/events"), &b).await;
                assert!(
                    status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT,
                    "{role} {name} before {step}: not offered ({reason}) but answered {status} {refusal}"
                );
            }
            let (_, after) = app.get(token, &path).await;
            assert_eq!(
                after["history"].as_array().unwrap().len(),
                history_len,
                "a refused action recorded nothing"
            );
            // Another agency's inspector gets nothing at all.
            let (status, _) = app
                .post(
                    &stranger,
                    &format!("{path}/events"),
                    &json!({ "kind": "notified" }),
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let token = &tokens.iter().find(|(r, _)| *r == who).unwrap().1;
        let (_, detail) = app.get(token, &path).await;
        let offered = detail["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == step)
            .unwrap();
        assert_eq!(
            offered["allowed"], true,
            "{who} is offered {step}: {offered}"
        );
        let (status, answer) = app
            .post(
                token,
                &format!("{path}/events"),
                &body(step, &detail).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{who} {step}: {answer}");
        let history = answer["history"].as_array().unwrap();
        assert!(
            history.last().unwrap()["ignored"].is_null(),
            "{who} {step} took effect"
        );
    }
    assert_eq!(hazard_state(&app, &tokens[2].1, hid).await, "in_progress");
}

/// Two inspectors set the responsible person offline and sync. The manager still signs for and
/// submits on the web; the API shows both values; the manager and the supervisor may not pick
/// one, another agency's inspector does not see the hazard, and an inspector of the agency
/// resolves it.
async fn two_inspectors_set_one_field_offline_and_the_manager_still_acts(app: TestApp) {
    let seed = app.seed().await;
    let mut a = app.phone(users::INSPECTOR).await;
    let mut b = app.phone(users::INSPECTOR2).await;
    let (_, hid) = record_visit(&seed, &mut a, Grade::General, "2026-03-20");
    assert!(app.sync(&mut a).await.refused.is_empty());
    app.sync(&mut b).await;
    for (phone, name) in [(&mut a, "王五"), (&mut b, "赵六")] {
        let d = &phone.replica.docs[hid.as_uuid()].doc;
        let e =
            edit::edit_hazard(d, &phone.author, T, |h| h.responsible_person = name.into()).unwrap();
        phone.replica.docs.get_mut(hid.as_uuid()).unwrap().doc = e.doc;
    }
    assert!(app.sync(&mut a).await.refused.is_empty());
    assert!(app.sync(&mut b).await.refused.is_empty());

    let path = format!("/api/v1/hazards/{hid}");
    let insp = app.login(users::INSPECTOR).await.token;
    let (_, detail) = app.get(&insp, &path).await;
    let conflicts = detail["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{detail}");
    assert_eq!(conflicts[0]["field"], "responsible_person");
    let mut values: Vec<&str> = conflicts[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["王五", "赵六"]);

    let mgr = app.login(users::MANAGER).await.token;
    for b in [
        json!({ "kind": "signed_for", "signer": "王厂长" }),
        json!({ "kind": "rectification_submitted", "note": "已更换插座", "photos": [] }),
    ] {
        let (status, answer) = app.post(&mgr, &format!("{path}/events"), &b).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(hazard_state(&app, &insp, hid).await, "submitted");

    let pick = json!({ "field": "responsible_person", "value": "赵六" });
    for (who, want) in [
        (users::MANAGER, StatusCode::FORBIDDEN),
        (users::SUPERVISOR, StatusCode::FORBIDDEN),
        (users::OTHER_INSPECTOR, StatusCode::NOT_FOUND),
    ] {
        let token = app.login(who).await.token;
        let (status, answer) = app.post(&token, &format!("{path}/resolve"), &pick).await;
        assert_eq!(status, want, "{who}: {answer}");
    }
    let (status, answer) = app.post(&insp, &format!("{path}/resolve"), &pick).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["conflicts"].as_array().unwrap().is_empty());
    assert_eq!(answer["hazard"]["responsible_person"], "赵六");
    let (status, answer) = app.post(&insp, &format!("{path}/resolve"), &pick).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "nothing left to resolve: {answer}"
    );
    assert_eq!(answer["error"], "no_conflict");
    // The phones converge on the chosen value.
    for p in [&mut a, &mut b] {
        app.sync(p).await;
        let h =
            sync_core::doc::HazardDoc::hydrate_from(&p.replica.docs[hid.as_uuid()].doc).unwrap();
        assert_eq!(h.responsible_person, "赵六");
        assert!(edit::conflicts(&p.replica.docs[hid.as_uuid()].doc).is_empty());
    }
}

/// A second agency holds a contract with the same enterprise. Neither agency receives or reads
/// the other's visits and hazards, on the phone or over the API, nor acts on them; the
/// enterprise and its township see the work of both.
async fn another_agency_on_the_same_enterprise_reads_none_of_this_agencys_work(app: TestApp) {
    let seed = app.seed().await;
    let start: jiff::civil::Date = "2026-01-01".parse().unwrap();
    let end: jiff::civil::Date = "2026-12-31".parse().unwrap();
    server::admin::create_contract(
        &app.state.db,
        app.clock.as_ref(),
        &seed.other_agency,
        &seed.enterprise,
        start,
        end,
        true,
    )
    .await
    .unwrap();
    let mut one = app.phone(users::INSPECTOR).await;
    let mut two = app.phone(users::OTHER_INSPECTOR).await;
    let (v1, h1) = record_visit(&seed, &mut one, Grade::General, "2026-03-20");
    let seed2 = tests::Seed {
        agency: seed.other_agency.clone(),
        ..seed.clone()
    };
    let (v2, h2) = record_visit(&seed2, &mut two, Grade::General, "2026-03-25");
    assert!(app.sync(&mut one).await.refused.is_empty());
    assert!(app.sync(&mut two).await.refused.is_empty());
    // Both sync again: each receives only its own agency's documents.
    app.sync(&mut one).await;
    app.sync(&mut two).await;
    for (phone, own, theirs) in [
        (
            &one,
            [v1.as_uuid(), h1.as_uuid()],
            [v2.as_uuid(), h2.as_uuid()],
        ),
        (
            &two,
            [v2.as_uuid(), h2.as_uuid()],
            [v1.as_uuid(), h1.as_uuid()],
        ),
    ] {
        for id in own {
            assert!(phone.replica.docs.contains_key(id));
        }
        for id in theirs {
            assert!(
                !phone.replica.docs.contains_key(id),
                "received another agency's document"
            );
        }
    }
    // A fresh phone of each agency (a whole-enterprise first sync) gets only its own too.
    let mut fresh = app.phone(users::OTHER_INSPECTOR).await;
    app.sync(&mut fresh).await;
    assert!(fresh.replica.docs.contains_key(h2.as_uuid()));
    assert!(!fresh.replica.docs.contains_key(h1.as_uuid()));
    assert!(!fresh.replica.docs.contains_key(v1.as_uuid()));

    let t1 = app.login(users::INSPECTOR).await.token;
    let t2 = app.login(users::OTHER_INSPECTOR).await.token;
    for (token, mine, theirs, their_visit) in [(&t1, h1, h2, v2), (&t2, h2, h1, v1)] {
        let (_, list) = app.get(token, "/api/v1/hazards").await;
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&mine.to_string().as_str()));
        assert!(!ids.contains(&theirs.to_string().as_str()));
        let (status, _) = app.get(token, &format!("/api/v1/hazards/{theirs}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for path in [
            format!("/api/v1/visits/{their_visit}"),
            format!("/api/v1/visits/{their_visit}/record"),
            format!("/api/v1/visits/{their_visit}/notice.pdf"),
            format!("/api/v1/visits/{their_visit}/history"),
            format!("/api/v1/hazards/{theirs}/changes"),
        ] {
            let (status, _) = app.get(token, &path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        let (_, visits) = app.get(token, "/api/v1/visits").await;
        assert!(
            visits
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["id"] != their_visit.to_string())
        );
        let (status, file) = app
            .get(
                token,
                &format!("/api/v1/enterprises/{}/file", seed.enterprise),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            file["hazards"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["hazard"]["id"] != theirs.to_string())
        );
        assert!(
            file["visits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["id"] != their_visit.to_string())
        );
        let (status, _) = app
            .post(
                token,
                &format!("/api/v1/hazards/{theirs}/events"),
                &json!({ "kind": "verified", "accepted": false, "note": "x" }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // The enterprise and its township see both agencies' hazards.
    for who in [users::MANAGER, users::SUPERVISOR] {
        let token = app.login(who).await.token;
        let (_, list) = app.get(&token, "/api/v1/hazards").await;
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        for h in [h1, h2] {
            assert!(ids.contains(&h.to_string().as_str()), "{who} sees {h}");
        }
        let mut phone = app.phone(who).await;
        app.sync(&mut phone).await;
        assert!(
            phone.replica.docs.contains_key(h1.as_uuid())
                && phone.replica.docs.contains_key(h2.as_uuid())
        );
    }
}

/// A major hazard's report to the township runs on a clock (2 hours by default): the
/// supervisor's list and the dashboard show a report due, missing, on time or late, with the
/// device's claim beside the time the server received it, which a rebuild does not move.
async fn a_major_hazards_report_is_on_the_clock(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let (_, a) = record_visit(&seed, &mut inspector, Grade::Major, "2026-03-20");
    let (_, b) = record_visit(&seed, &mut inspector, Grade::Major, "2026-03-20");
    assert!(app.sync(&mut inspector).await.refused.is_empty());
    let sup = app.login(users::SUPERVISOR).await.token;
    let report = |rows: &Value, id: sync_core::ids::HazardId| {
        rows.as_array()
            .unwrap_or_else(|| panic!("not a list: {rows}"))
            .iter()
            .find(|r| r["hazard_id"] == id.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {rows}"))
    };
    let (status, rows) = app.get(&sup, "/api/v1/reports/major").await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(report(&rows, a)["report_status"], "pending");
    assert_eq!(report(&rows, a)["found_at"], T);

    // Three hours later nobody has reported either: both missing, on the dashboard too.
    // (Sessions expire meanwhile: everyone signs in again.)
    app.clock.advance(jiff::SignedDuration::from_hours(3));
    let sup = app.login(users::SUPERVISOR).await.token;
    let (_, rows) = app.get(&sup, "/api/v1/reports/major").await;
    assert_eq!(report(&rows, a)["report_status"], "missing");
    let (_, dash) = app.get(&sup, "/api/v1/dashboard").await;
    assert_eq!(dash["major_reports_missing"], 2);
    assert_eq!(dash["major_reports_late"], 0);

    // The inspector's phone, offline, says it reported A after one hour and B after three.
    let mut inspector = app.phone(users::INSPECTOR).await;
    app.sync(&mut inspector).await;
    for (id, after_ms) in [(a, 3_600_000), (b, 3 * 3_600_000)] {
        let d = &inspector.replica.docs[id.as_uuid()].doc;
        let e = edit::record_event(
            d,
            &inspector.author,
            sync_core::ids::EventId::new_random(),
            T + after_ms,
            sync_core::rectification::EventKind::ReportedToRegulator {
                to: "镇应急办".into(),
            },
        )
        .unwrap();
        inspector.replica.docs.get_mut(id.as_uuid()).unwrap().doc = e.doc;
    }
    assert!(app.sync(&mut inspector).await.refused.is_empty());
    let received = T + 3 * 3_600_000;
    let (_, rows) = app.get(&sup, "/api/v1/reports/major").await;
    let ra = report(&rows, a);
    assert_eq!(ra["report_status"], "on_time");
    assert_eq!(ra["report_claimed_at"], T + 3_600_000);
    assert_eq!(ra["report_received_at"], received);
    assert_eq!(
        ra["received_late"], true,
        "the server got it after the window"
    );
    assert_eq!(report(&rows, b)["report_status"], "late");
    let (_, dash) = app.get(&sup, "/api/v1/dashboard").await;
    assert_eq!(dash["major_reports_missing"], 0);
    assert_eq!(dash["major_reports_late"], 1);

    // A rebuild a day later keeps the time the server received the report.
    app.clock.advance(jiff::SignedDuration::from_hours(24));
    server::projection::rebuild(&app.state.db, crate_now(&app))
        .await
        .unwrap();
    let sup = app.login(users::SUPERVISOR).await.token;
    let (_, rows) = app.get(&sup, "/api/v1/reports/major").await;
    assert_eq!(report(&rows, a)["report_received_at"], received);
    assert_eq!(report(&rows, a)["report_status"], "on_time");
    // Another township's supervisor sees none of them.
    let other = app.login(users::OTHER_SUPERVISOR).await.token;
    let (_, rows) = app.get(&other, "/api/v1/reports/major").await;
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["hazard_id"] != a.to_string())
    );
}

fn crate_now(app: &TestApp) -> i64 {
    use server::clock::Clock;
    server::clock::to_millis(app.clock.now())
}

/// The agency's contract ends. Its inspector still reads the agency's own records of that
/// enterprise on the web and over the API, but records nothing there any more, and the phone no
/// longer receives them; the township still sees the hazard.
async fn a_former_agency_keeps_reading_its_own_records_and_changes_nothing(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let (vid, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    assert!(app.sync(&mut inspector).await.refused.is_empty());
    // The contract ran until 2026-12-31.
    app.clock.set("2027-01-02T02:00:00Z".parse().unwrap());
    let token = app.login(users::INSPECTOR).await.token;
    for path in [
        format!("/api/v1/hazards/{hid}"),
        format!("/api/v1/visits/{vid}"),
        format!("/api/v1/visits/{vid}/record"),
        format!("/api/v1/hazards/{hid}/changes"),
        format!("/api/v1/enterprises/{}/file", seed.enterprise),
    ] {
        let (status, body) = app.get(&token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, list) = app.get(&token, "/api/v1/hazards").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == hid.to_string())
    );
    let (status, answer) = app
        .post(
            &token,
            &format!("/api/v1/hazards/{hid}/events"),
            &json!({ "kind": "signed_for", "signer": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = app
        .post(
            &token,
            &format!("/api/v1/hazards/{hid}/events"),
            &json!({ "kind": "reported_to_regulator", "to": "镇应急办" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the contract ended: {answer}"
    );
    // The phone no longer receives the enterprise's documents.
    let mut fresh = app.phone(users::INSPECTOR).await;
    app.sync(&mut fresh).await;
    assert!(!fresh.replica.docs.contains_key(hid.as_uuid()));
    // The township still sees the hazard.
    let sup = app.login(users::SUPERVISOR).await.token;
    let (status, _) = app.get(&sup, &format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(status, StatusCode::OK);
}

tests::on_every_backend!(
    a_former_agency_keeps_reading_its_own_records_and_changes_nothing,
    a_major_hazards_report_is_on_the_clock,
    what_the_detail_offers_is_what_the_server_accepts,
    two_inspectors_set_one_field_offline_and_the_manager_still_acts,
    another_agency_on_the_same_enterprise_reads_none_of_this_agencys_work,
);
