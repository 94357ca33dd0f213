//! The web pages' server side, on SQLite and PostgreSQL: the dashboard's figures equal counts
//! taken independently from `GET /api/v1/hazards`; change history names user and device; the
//! notice PDF carries the Chinese text; the new routes refuse another tenant (404) and no token
//! (401); the pages themselves are served.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;
use tests::world::{DAYS_TO_CLOSE, World, populate};
use tests::{TestApp, users};

fn count(rows: &Value, f: impl Fn(&Value) -> bool) -> i64 {
    rows.as_array().unwrap().iter().filter(|r| f(r)).count() as i64
}

fn is_open(r: &Value) -> bool {
    r["state"] != "closed"
}

async fn hazards(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, rows) = app.get(token, &format!("/api/v1/hazards?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    rows
}

async fn the_dashboard_equals_the_hazard_lists(app: TestApp) {
    let world = populate(&app).await;
    for user in [
        users::SUPERVISOR,
        users::INSPECTOR,
        users::MANAGER,
        users::AGENCY_ADMIN,
        users::OTHER_SUPERVISOR,
    ] {
        let s = app.login(user).await;
        let (status, d) = app.get(&s.token, "/api/v1/dashboard").await;
        assert_eq!(status, StatusCode::OK, "{d}");
        let all = hazards(&app, &s.token, "").await;
        let overdue = hazards(&app, &s.token, "overdue=true").await;
        let major = hazards(&app, &s.token, "grade=major").await;
        assert_eq!(d["total"], count(&all, |_| true), "{user} total");
        assert_eq!(d["open"], count(&all, is_open), "{user} open");
        assert_eq!(d["overdue"], count(&overdue, |_| true), "{user} overdue");
        assert_eq!(d["overdue"], count(&all, |r| r["overdue"] == true));
        assert_eq!(d["major"], count(&major, |_| true), "{user} major");
        assert_eq!(d["major_open"], count(&major, is_open), "{user} major_open");
        assert_eq!(d["closed"], count(&all, |r| !is_open(r)), "{user} closed");
        let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
        for r in all.as_array().unwrap() {
            *by_state
                .entry(r["state"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        assert_eq!(d["by_state"], serde_json::to_value(&by_state).unwrap());
        for group in d["by_enterprise"].as_array().unwrap() {
            let id = group["id"].as_str().unwrap();
            let rows = hazards(&app, &s.token, &format!("enterprise={id}")).await;
            assert_eq!(group["total"], count(&rows, |_| true));
            assert_eq!(group["open"], count(&rows, is_open));
            assert_eq!(group["overdue"], count(&rows, |r| r["overdue"] == true));
        }
        for (key, filter) in [("by_township", "township"), ("by_agency", "agency")] {
            for group in d[key].as_array().unwrap() {
                let id = group["id"].as_str().unwrap();
                let rows = hazards(&app, &s.token, &format!("{filter}={id}")).await;
                assert_eq!(group["total"], count(&rows, |_| true), "{user} {key}");
                assert_eq!(
                    group["major_open"],
                    count(&rows, |r| r["grade"] == "major" && is_open(r))
                );
            }
        }
    }

    // And the figures are the ones the world was built with.
    let s = app.login(users::SUPERVISOR).await;
    let (_, d) = app.get(&s.token, "/api/v1/dashboard").await;
    assert_eq!(d["today"], "2026-03-10");
    assert_eq!(d["total"], 4);
    assert_eq!(d["overdue"], 1);
    assert_eq!(d["major_open"], 1);
    assert_eq!(d["closed"], 1);
    assert_eq!(d["closure_rate"], 0.25);
    assert_eq!(d["median_days_to_close"], DAYS_TO_CLOSE);
    assert_eq!(d["by_township"][0]["name"], "城东街道");
    assert_eq!(d["by_enterprise"][0]["name"], world.enterprise_name);
    let months: Vec<(String, i64, i64)> = d["by_month"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap().to_owned(),
                m["created"].as_i64().unwrap(),
                m["closed"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        months,
        [("2026-02".to_owned(), 4, 0), ("2026-03".to_owned(), 0, 1)]
    );
    let other = app.login(users::OTHER_SUPERVISOR).await;
    let (_, d) = app.get(&other.token, "/api/v1/dashboard").await;
    assert_eq!(d["total"], 1, "the other township sees only its own hazard");
    assert_eq!(d["overdue"], 1);
}

async fn change_history_names_the_user_and_the_device(app: TestApp) {
    let world = populate(&app).await;
    let s = app.login(users::SUPERVISOR).await;
    let (status, changes) = app
        .get(&s.token, &format!("/api/v1/visits/{}/history", world.visit))
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let first = &changes[0];
    assert_eq!(first["user_name"], "inspector 测试");
    assert_eq!(first["role"], "inspector");
    assert_eq!(first["platform"], "android");
    assert_eq!(first["device_name"], "inspector 的手机");
    assert!(
        first["fields"]
            .as_array()
            .unwrap()
            .contains(&"checklist".into())
    );
    assert!(first["at"].as_i64().unwrap() > 0);

    let (status, changes) = app
        .get(
            &s.token,
            &format!("/api/v1/hazards/{}/changes", world.closed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let rows = changes.as_array().unwrap();
    // Created and notified on the phone; submitted by the manager and verified and closed by the
    // inspector on the web.
    let who: Vec<(&str, &str)> = rows
        .iter()
        .map(|c| (c["role"].as_str().unwrap(), c["platform"].as_str().unwrap()))
        .collect();
    assert_eq!(
        &who[who.len() - 3..],
        [
            ("enterprise_manager", "web"),
            ("inspector", "web"),
            ("inspector", "web")
        ]
    );
    assert_eq!(
        rows.last().unwrap()["fields"],
        serde_json::json!(["events"])
    );

    // The visit record carries the checklist, the signature and the photos.
    let (status, rec) = app
        .get(&s.token, &format!("/api/v1/visits/{}/record", world.visit))
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["checklist"].as_array().unwrap().len(), 3);
    assert_eq!(rec["checklist"][1]["result"], "fail");
    assert_eq!(rec["signature"]["signer_name"], "王厂长");
    assert_eq!(rec["enterprise"]["name"], world.enterprise_name);
    let major = rec["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == world.major.as_str())
        .unwrap();
    assert_eq!(major["photos"][0]["sha256"], world.photo.as_str());
    assert_eq!(
        major["photos"][0]["original_sha256"],
        world.photo_original.as_str()
    );
    assert_eq!(major["funds_yuan"], 50_000);
}

fn pdftotext(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(&path)
        .arg("-")
        .output()
        .ok()?;
    assert!(out.status.success(), "pdftotext failed");
    Some(String::from_utf8(out.stdout).unwrap())
}

async fn the_notice_pdf_carries_the_chinese_text(app: TestApp) {
    let world: World = populate(&app).await;
    let s = app.login(users::MANAGER).await;
    let r = app
        .client
        .get(format!(
            "{}/api/v1/visits/{}/notice.pdf",
            app.base, world.visit
        ))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    if r.status() == StatusCode::SERVICE_UNAVAILABLE {
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "pdf_font_missing");
        eprintln!(
            "no CJK font installed: {} — PDF text not checked",
            body["message"]
        );
        return;
    }
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let Some(text) = pdftotext(&pdf) else {
        eprintln!("pdftotext not installed (apt-get install poppler-utils): PDF text not checked");
        return;
    };
    // pdftotext may break a long line anywhere; compare without whitespace.
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for needle in std::iter::once(&world.enterprise_name).chain(&world.descriptions) {
        assert!(flat.contains(needle.as_str()), "{needle} not in:\n{text}");
    }
    for needle in ["隐患整改通知书", "重大事故隐患", "50000元", "王厂长"] {
        assert!(flat.contains(needle), "{needle} not in:\n{text}");
    }
}

async fn the_new_routes_refuse_another_tenant_and_no_token(app: TestApp) {
    let world = populate(&app).await;
    let routes = [
        format!("/api/v1/visits/{}/history", world.visit),
        format!("/api/v1/visits/{}/record", world.visit),
        format!("/api/v1/visits/{}/notice.pdf", world.visit),
        format!("/api/v1/hazards/{}/changes", world.major),
    ];
    for user in [
        users::OTHER_SUPERVISOR,
        users::OTHER_INSPECTOR,
        users::OTHER_MANAGER,
        users::OTHER_AGENCY_ADMIN,
    ] {
        let s = app.login(user).await;
        for path in &routes {
            let (status, body) = app.get(&s.token, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{user} {path}");
            assert_eq!(body["error"], "not_found");
        }
        let (status, d) = app.get(&s.token, "/api/v1/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !d.to_string().contains(&world.seed.enterprise),
            "{user} sees the enterprise"
        );
    }
    let own = app.login(users::SUPERVISOR).await;
    for path in &routes {
        let (status, _) = app.get(&own.token, path).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {status}"
        );
    }
    for path in routes
        .iter()
        .chain(std::iter::once(&"/api/v1/dashboard".to_owned()))
    {
        let (status, body) = app.get("", path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"], "missing_token");
    }
    // Malformed and unknown ids are 404, not 500.
    for path in [
        "/api/v1/visits/nope/history",
        "/api/v1/hazards/nope/changes",
        "/api/v1/visits/nope/notice.pdf",
    ] {
        let (status, _) = app.get(&own.token, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

async fn the_pages_are_served_from_the_binary(app: TestApp) {
    for (path, kind, needle) in [
        ("/", "text/html", "/assets/app.js"),
        ("/assets/app.js", "text/javascript", "crypto.subtle.digest"),
        ("/assets/app.css", "text/css", "@media print"),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
}

tests::on_every_backend!(
    the_dashboard_equals_the_hazard_lists,
    change_history_names_the_user_and_the_device,
    the_notice_pdf_carries_the_chinese_text,
    the_new_routes_refuse_another_tenant_and_no_token,
    the_pages_are_served_from_the_binary,
);
