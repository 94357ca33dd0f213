//! The web pages' server side, on SQLite and PostgreSQL: the dashboard's figures equal counts
//! taken independently from `GET /api/v1/hazards`; change history names user and device; the
//! notice PDF carries the Chinese text, the hazards' photos and the signature image (and says so
//! when a photo is not uploaded yet); visits are filtered by China date on the server; the new
//! routes refuse another tenant (404) and no token (401); the pages themselves are served.
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
    // Each field with its name in both languages and its values, never a raw key alone.
    let shown = first["changes"].as_array().unwrap();
    assert_eq!(shown.len(), first["fields"].as_array().unwrap().len());
    for f in shown {
        assert!(
            !f["label"].as_str().unwrap().starts_with("字段"),
            "unlabelled: {f}"
        );
    }
    let place = shown.iter().find(|f| f["field"] == "place").unwrap();
    assert_eq!(place["label"], "检查地点 / place");
    assert_eq!(place["old"], serde_json::Value::Null);
    assert_eq!(place["new"], "一号冲压车间");
    let created = shown.iter().find(|f| f["field"] == "created_at").unwrap();
    assert_eq!(
        created["new"], "2026-02-10 10:00:00",
        "an instant in China time"
    );

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
    let closing = &rows.last().unwrap()["changes"][0];
    assert_eq!(closing["label"], "整改记录 / rectification history");
    let count = |v: &serde_json::Value| -> u64 {
        v.as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        count(&closing["new"]),
        count(&closing["old"]) + 1,
        "{closing}"
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

/// Images listed by `pdfimages -list` (poppler-utils); `None` only when the tool is not installed.
fn pdfimages(pdf: &[u8]) -> Option<usize> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = match Command::new("pdfimages").arg("-list").arg(&path).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("pdfimages: {e}"),
    };
    assert!(out.status.success(), "pdfimages failed");
    let listing = String::from_utf8(out.stdout).unwrap();
    // Two header lines, then one line per image: page num type width height ...
    Some(
        listing
            .lines()
            .skip(2)
            .filter(|l| l.split_whitespace().nth(2) == Some("image"))
            .count(),
    )
}

/// Image XObjects in the file itself (`/Subtype /Image`, spaced or not), counted without any
/// tool so this check always runs. Image dictionaries head streams, which are never compressed
/// into object streams, so they are plain bytes in the file.
fn image_xobjects(pdf: &[u8]) -> usize {
    let key = b"/Subtype";
    (0..pdf.len())
        .filter(|&i| pdf[i..].starts_with(key))
        .filter(|&i| {
            let rest = &pdf[i + key.len()..];
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let rest = &rest[skip..];
            rest.starts_with(b"/Image")
                && !rest
                    .get(b"/Image".len())
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        })
        .count()
}

/// The notice PDF of `visit` as `user`; `None` (with the reason printed) without a CJK font.
async fn notice_pdf(app: &TestApp, user: &str, visit: &str) -> Option<Vec<u8>> {
    pdf_at(app, user, &format!("/api/v1/visits/{visit}/notice.pdf")).await
}

/// A PDF route's answer; `None` when the server has no CJK font (503 `pdf_font_missing`).
async fn pdf_at(app: &TestApp, user: &str, path: &str) -> Option<Vec<u8>> {
    let s = app.login(user).await;
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    if r.status() == StatusCode::SERVICE_UNAVAILABLE {
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "pdf_font_missing");
        eprintln!(
            "no CJK font installed: {} — PDF not checked",
            body["message"]
        );
        return None;
    }
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    Some(pdf)
}

/// Checks the number of images two ways; pdfimages only when installed.
fn assert_images(pdf: &[u8], expected: usize) {
    assert_eq!(image_xobjects(pdf), expected, "image XObjects in the PDF");
    match pdfimages(pdf) {
        Some(n) => assert_eq!(n, expected, "images listed by pdfimages"),
        None => eprintln!(
            "pdfimages not installed (apt-get install poppler-utils): image listing not checked"
        ),
    }
}

/// The PDF's text without whitespace (pdftotext may break a long line anywhere); `None` without
/// pdftotext.
fn flat_text(pdf: &[u8]) -> Option<String> {
    let Some(text) = pdftotext(pdf) else {
        eprintln!("pdftotext not installed (apt-get install poppler-utils): PDF text not checked");
        return None;
    };
    Some(text.chars().filter(|c| !c.is_whitespace()).collect())
}

/// The enterprise file as one PDF: the enterprise, every hazard with its course, the photo of
/// the major hazard; another township's supervisor gets 404.
async fn the_enterprise_file_pdf_carries_every_hazard_and_its_course(app: TestApp) {
    let world: World = populate(&app).await;
    let path = format!("/api/v1/enterprises/{}/file.pdf", world.seed.enterprise);
    let other = app.login(users::OTHER_SUPERVISOR).await;
    let (status, _) = app.get(&other.token, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let Some(pdf) = pdf_at(&app, users::SUPERVISOR, &path).await else {
        return;
    };
    assert_images(&pdf, 1);
    let Some(flat) = flat_text(&pdf) else { return };
    for needle in std::iter::once(&world.enterprise_name).chain(&world.descriptions) {
        assert!(flat.contains(needle.as_str()), "{needle} not in:\n{flat}");
    }
    for needle in [
        "企业安全生产档案（一企一档）",
        "隐患排查治理台账（4条）",
        "通过：复查合格",
        "已销号",
        "50000",
    ] {
        assert!(flat.contains(needle), "{needle} not in:\n{flat}");
    }
}

/// The OpenAPI document's request bodies are what the handlers take: a login built from the
/// schema's properties logs in and answers the described fields; every event kind of the
/// events body, with the fields the schema requires, gets past the body's parsing (a refusal by
/// rule or state is fine), while a kind the schema does not list is refused as a bad body.
async fn the_openapi_bodies_are_what_the_handlers_take(app: TestApp) {
    let world: World = populate(&app).await;
    let (_, doc) = app.get("", "/api/v1/openapi.json").await;
    let login = &doc["paths"]["/api/v1/auth/login"]["post"];
    let schema = &login["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        schema["required"],
        serde_json::json!(["username", "password"])
    );
    let r = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&serde_json::json!({"username": users::INSPECTOR, "password": tests::PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let answer = &login["responses"]["200"]["content"]["application/json"]["schema"];
    for field in answer["required"].as_array().unwrap() {
        assert!(
            body.get(field.as_str().unwrap()).is_some(),
            "{field} missing from {body}"
        );
    }
    let token = body["access_token"].as_str().unwrap().to_owned();
    let events = &doc["paths"]["/api/v1/hazards/{id}/events"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["oneOf"];
    let variants = events.as_array().unwrap();
    assert_eq!(variants.len(), server::api::openapi::ACTION_KINDS.len());
    let post = |body: Value| {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/api/v1/hazards/{}/events", app.base, world.submitted),
            token.clone(),
        );
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for v in variants {
        let kind = v["properties"]["kind"]["const"].as_str().unwrap();
        let mut body = serde_json::json!({"kind": kind});
        for field in v["required"].as_array().unwrap() {
            let f = field.as_str().unwrap();
            if f == "kind" {
                continue;
            }
            body[f] = match v["properties"][f]["type"].as_str() {
                Some("boolean") => Value::Bool(false),
                _ if f == "until" => "2026-06-30".into(),
                _ if f == "grade" => "major".into(),
                _ => "说明".into(),
            };
        }
        let (status, answer) = post(body.clone()).await;
        assert!(
            !matches!(
                answer["error"].as_str(),
                Some("invalid_body" | "invalid_json")
            ),
            "{body} is described but not taken: {status} {answer}"
        );
    }
    let (status, answer) = post(serde_json::json!({"kind": "bogus"})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
}

async fn the_notice_pdf_carries_the_chinese_text(app: TestApp) {
    let world: World = populate(&app).await;
    let Some(pdf) = notice_pdf(&app, users::MANAGER, &world.visit).await else {
        return;
    };
    // The major hazard's photo and the signature image.
    assert_images(&pdf, 2);
    let Some(flat) = flat_text(&pdf) else { return };
    for needle in std::iter::once(&world.enterprise_name).chain(&world.descriptions) {
        assert!(flat.contains(needle.as_str()), "{needle} not in:\n{flat}");
    }
    for needle in [
        "隐患整改通知书",
        "重大事故隐患",
        "50000元",
        "王厂长",
        "现场照片：1张",
    ] {
        assert!(flat.contains(needle), "{needle} not in:\n{flat}");
    }
    assert!(
        !flat.contains("照片尚未上传"),
        "every photo is uploaded:\n{flat}"
    );
}

async fn a_photo_not_uploaded_yet_is_noted_in_the_notice(app: TestApp) {
    let world = populate(&app).await;
    let (visit, missing) = tests::world::visit_with_a_photo_not_uploaded(&app, &world.seed).await;
    let Some(pdf) = notice_pdf(&app, users::SUPERVISOR, &visit).await else {
        return;
    };
    // The uploaded photo and the signature are drawn; the missing one is a note.
    assert_images(&pdf, 2);
    if let Some(flat) = flat_text(&pdf) {
        for needle in [
            "照片尚未上传/photonotuploadedyet",
            &missing[..12],
            "砂轮机防护罩缺失",
            "李主任",
            &world.enterprise_name,
        ] {
            assert!(flat.contains(needle), "{needle} not in:\n{flat}");
        }
    }

    // Once the phone uploads it, the notice shows it.
    let inspector = app.login(users::INSPECTOR).await;
    let user = inspector.user_id.clone();
    tests::world::upload_photo(&app, &inspector.token, &tests::world::tiny_jpeg(4), &user).await;
    let pdf = notice_pdf(&app, users::SUPERVISOR, &visit).await.unwrap();
    assert_images(&pdf, 3);
    if let Some(flat) = flat_text(&pdf) {
        assert!(!flat.contains("照片尚未上传"), "{flat}");
    }
}

/// Ids of the visits `user` gets for `query`, sorted.
async fn visit_ids(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, rows) = app.get(token, &format!("/api/v1/visits?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {rows}");
    let mut ids: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    v.sort();
    v
}

async fn visits_are_filtered_by_china_date_on_the_server(app: TestApp) {
    let world = populate(&app).await;
    // 2026-02-10 00:00 in Beijing; the world's visits started at 10:00 that day.
    const DAY0: i64 = 1_770_652_800_000;
    const DAY: i64 = 86_400_000;
    let v = tests::world::visits_started_at(
        &app,
        &world.seed,
        &[
            DAY0 + 2 * DAY - 1,              // 2026-02-11 23:59:59.999
            DAY0 + 2 * DAY,                  // 2026-02-12 00:00
            DAY0 + 3 * DAY + 12 * 3_600_000, // 2026-02-13 12:00
        ],
    )
    .await;
    let (late_11, midnight_12, noon_13) = (&v[0], &v[1], &v[2]);
    let sup = app.login(users::SUPERVISOR).await;
    let t = sup.token.as_str();
    assert_eq!(
        visit_ids(&app, t, "from=2026-02-12&to=2026-02-12").await,
        sorted(&[midnight_12])
    );
    assert_eq!(
        visit_ids(&app, t, "to=2026-02-11").await,
        sorted(&[&world.visit, late_11])
    );
    assert_eq!(
        visit_ids(&app, t, "from=2026-02-11").await,
        sorted(&[late_11, midnight_12, noon_13])
    );
    assert_eq!(
        visit_ids(&app, t, "from=2026-02-10&to=2026-02-13")
            .await
            .len(),
        4
    );
    assert_eq!(
        visit_ids(&app, t, "from=2026-02-14").await,
        Vec::<String>::new()
    );
    assert_eq!(
        visit_ids(
            &app,
            t,
            &format!(
                "from=2026-02-13&to=2026-02-13&enterprise={}",
                world.seed.enterprise
            )
        )
        .await,
        sorted(&[noon_13])
    );

    // Tenant scope still applies: the same day shows each township its own visit only.
    assert_eq!(
        visit_ids(&app, t, "from=2026-02-10&to=2026-02-10").await,
        sorted(&[&world.visit])
    );
    let other = app.login(users::OTHER_SUPERVISOR).await;
    assert_eq!(
        visit_ids(&app, &other.token, "from=2026-02-10&to=2026-02-10").await,
        sorted(&[&world.other_visit])
    );
    assert_eq!(
        visit_ids(&app, &other.token, "from=2026-02-11").await,
        Vec::<String>::new()
    );
    let manager = app.login(users::MANAGER).await;
    assert_eq!(
        visit_ids(&app, &manager.token, "from=2026-02-12&to=2026-02-12").await,
        sorted(&[midnight_12])
    );

    // Bad input is 400 with a message in both languages.
    for (query, code) in [
        ("from=2026-13-01", "bad_date"),
        ("to=2026-02-30", "bad_date"),
        ("from=2026-2-1", "bad_date"),
        ("to=yesterday", "bad_date"),
        ("from=2026-02-12T00:00:00Z", "bad_date"),
        ("from=2026-02-12&to=2026-02-11", "bad_date_range"),
    ] {
        let (status, body) = app.get(t, &format!("/api/v1/visits?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], code, "{query}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(" / ")
                && message
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{query}: {message}"
        );
    }

    // The OpenAPI document describes the parameters.
    let (_, doc) = app.get("", "/api/v1/openapi.json").await;
    let params = doc["paths"]["/api/v1/visits"]["get"]["parameters"].to_string();
    for name in ["\"from\"", "\"to\"", "\"format\":\"date\""] {
        assert!(params.contains(name), "{name} not in {params}");
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
    the_enterprise_file_pdf_carries_every_hazard_and_its_course,
    the_openapi_bodies_are_what_the_handlers_take,
    a_photo_not_uploaded_yet_is_noted_in_the_notice,
    visits_are_filtered_by_china_date_on_the_server,
    the_new_routes_refuse_another_tenant_and_no_token,
    the_pages_are_served_from_the_binary,
);
