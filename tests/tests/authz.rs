//! The authorisation matrix: every route × every role × own / other tenant, with the expected
//! status from one table, and a third tenant: a second agency under contract with the *same*
//! enterprise, whose documents the enterprise and its township see as their own and the first
//! agency's staff as another tenant's. Lists must never contain an id a role may not see.
#![allow(clippy::unwrap_used)]

use reqwest::{Method, StatusCode};
use sync_core::doc::visit::VisitKind;
use sync_core::doc::{DocKind, HazardDoc, Header, VisitDoc};
use sync_core::domain::{Deadline, Grade};
use sync_core::edit;
use sync_core::ids::{AgencyId, EnterpriseId, HazardId, TownshipId, VisitId};
use tests::{Phone, TestApp, users};

const T: i64 = 1_773_108_000_000;

/// (method, path, expected for own-tenant resources, expected for the other tenant's).
/// `{e}`, `{h}`, `{v}` are replaced by an enterprise, hazard and visit id of the tenant.
const MATRIX: &[(&str, &str, u16, u16)] = &[
    ("GET", "/api/v1/me", 200, 200),
    // Always the caller's own organisation (who is listed: `colleagues_are_the_callers_organisation_only`).
    ("GET", "/api/v1/colleagues", 200, 200),
    ("GET", "/api/v1/openapi.json", 200, 200),
    ("GET", "/api/v1/devices", 200, 200),
    ("GET", "/api/v1/enterprises", 200, 200),
    ("GET", "/api/v1/enterprises/{e}", 200, 404),
    ("GET", "/api/v1/enterprises/{e}/file", 200, 404),
    ("GET", "/api/v1/enterprises/{e}/file.zip", 200, 404),
    ("GET", "/api/v1/hazards", 200, 200),
    ("GET", "/api/v1/hazards?enterprise={e}", 200, 200),
    ("GET", "/api/v1/hazards/{h}", 200, 404),
    ("GET", "/api/v1/visits", 200, 200),
    ("GET", "/api/v1/visits/{v}", 200, 404),
    ("GET", "/api/v1/reports/major", 200, 200),
    ("GET", "/api/v1/dashboard", 200, 200),
    // The ledger is a list: the other tenant's rows never appear (the workbook's rows are the
    // JSON's: `tests/ledger.rs`).
    ("GET", "/api/v1/ledger", 200, 200),
    ("GET", "/api/v1/ledger?enterprise={e}", 200, 200),
    ("GET", "/api/v1/ledger.csv", 200, 200),
    ("GET", "/api/v1/ledger.csv?enterprise={e}", 200, 200),
    ("GET", "/api/v1/ledger.xlsx", 200, 200),
    ("GET", "/api/v1/inbox", 200, 200),
    ("GET", "/api/v1/statistics", 200, 200),
    ("GET", "/api/v1/statistics.xlsx", 200, 200),
    // Who reads the delivery log is by role (`tests/webhooks.rs`); here only that it needs a token.
    ("GET", "/api/v1/visits/{v}/history", 200, 404),
    ("GET", "/api/v1/visits/{v}/record", 200, 404),
    ("GET", "/api/v1/hazards/{h}/changes", 200, 404),
    ("GET", "/api/v1/photos/{p}", 200, 404),
    ("GET", "/api/v1/photos/{p}/thumb", 200, 404),
    // Only those a photo concerns learn that it exists (ADR 0010).
    ("GET", "/api/v1/photos/{p}/status", 200, 404),
    // A web session (no device) may not sync, whoever it is.
    ("POST", "/api/v1/sync", 403, 403),
];

/// Web actions: (role, JSON body, expected on own tenant's hazard, on the other's).
/// The hazard is fresh and open (not notified yet), with 五落实 in place; each row runs on a new
/// hazard. What the role may do but the open state does not allow answers 409.
const ACTIONS: &[(&str, &str, u16, u16)] = &[
    (users::INSPECTOR, r#"{"kind":"notified"}"#, 200, 404),
    (users::MANAGER, r#"{"kind":"notified"}"#, 403, 404),
    (
        users::MANAGER,
        r#"{"kind":"signed_for","signer":"王厂长"}"#,
        409,
        404,
    ),
    (
        users::INSPECTOR,
        r#"{"kind":"signed_for","signer":"王厂长"}"#,
        403,
        404,
    ),
    (
        users::MANAGER,
        r#"{"kind":"extension_requested","until":"2026-05-30","reason":"设备到货需要时间"}"#,
        409,
        404,
    ),
    (
        users::SUPERVISOR,
        r#"{"kind":"extension_requested","until":"2026-05-30","reason":"代为申请"}"#,
        403,
        404,
    ),
    (
        users::SUPERVISOR,
        r#"{"kind":"verified","accepted":true,"note":""}"#,
        403,
        404,
    ),
    (
        users::AGENCY_ADMIN,
        r#"{"kind":"verified","accepted":true,"note":""}"#,
        403,
        404,
    ),
    (
        users::INSPECTOR,
        r#"{"kind":"verified","accepted":true,"note":"现场整改"}"#,
        409,
        404,
    ),
    (
        users::SUPERVISOR,
        r#"{"kind":"supervision_put","note":"挂牌督办"}"#,
        200,
        404,
    ),
    (
        users::MANAGER,
        r#"{"kind":"supervision_put","note":""}"#,
        403,
        404,
    ),
    // Closing before acceptance is refused by state, not by role.
    (
        users::SUPERVISOR,
        r#"{"kind":"closed","note":""}"#,
        409,
        404,
    ),
    (users::INSPECTOR, r#"{"kind":"bogus"}"#, 422, 422),
];

const ROLES: &[&str] = &[
    users::INSPECTOR,
    users::MANAGER,
    users::SUPERVISOR,
    users::AGENCY_ADMIN,
];

struct Tenant {
    photo: String,
    enterprise: String,
    hazard: String,
    visit: String,
}

async fn record(
    app: &TestApp,
    phone: &mut Phone,
    enterprise: &str,
    agency: &str,
    township: &str,
) -> Tenant {
    let creator = phone.author.user;
    let h = |kind, id: uuid::Uuid| Header {
        kind,
        id,
        schema: sync_core::doc::SCHEMA_VERSION,
        enterprise: EnterpriseId::parse(enterprise).unwrap(),
        agency: AgencyId::parse(agency).unwrap(),
        township: TownshipId::parse(township).unwrap(),
        created_by: creator,
        created_at: T,
    };
    let vid = VisitId::new_random();
    let v = edit::new_visit(
        &VisitDoc::new(&h(DocKind::Visit, *vid.as_uuid()), VisitKind::First, T),
        &phone.author,
        T,
    )
    .unwrap();
    phone.hold(DocKind::Visit, *vid.as_uuid(), v.doc);
    // A photo of the hazard, uploaded by this tenant's inspector. Its pixels spell a fresh
    // random id, losslessly: two records never upload the same bytes (a shared hash is rightly
    // visible to both, and the one random shade of 200 used before collided now and then).
    let mut img = std::io::Cursor::new(Vec::new());
    let id = uuid::Uuid::new_v4().into_bytes();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([id[(x as usize) % 16], id[(y as usize) % 16], 160])
    }))
    .write_to(&mut img, image::ImageFormat::Png)
    .unwrap();
    let bytes = img.into_inner();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let r = app
        .client
        .put(format!("{}/api/v1/photos/{sha}?offset=0", app.base))
        .bearer_auth(&phone.session.token)
        .header("x-photo-size", bytes.len().to_string())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hid = HazardId::new_random();
    let mut doc = HazardDoc::new(
        &h(DocKind::Hazard, *hid.as_uuid()),
        vid,
        Grade::Major,
        Deadline::parse("2026-04-01").unwrap(),
    );
    doc.responsible_person = "王厂长".into();
    doc.measure = "立即停用并修复光电保护装置".into();
    doc.funds_yuan = Some(20_000);
    doc.emergency_plan = "停用冲床，设置警戒区".into();
    doc.photos.push(sync_core::domain::PhotoRef {
        sha256: sha.clone(),
        size: bytes.len() as u64,
        media_type: "image/png".into(),
        captured_at: None,
        gps: None,
        added_by: phone.author.user.to_string(),
        original_sha256: None,
        exif_unreadable: None,
    });
    let hz = edit::new_hazard(&doc, &phone.author, T).unwrap();
    phone.hold(DocKind::Hazard, *hid.as_uuid(), hz.doc);
    let resp = app.sync(phone).await;
    assert!(resp.refused.is_empty());
    Tenant {
        photo: sha,
        enterprise: enterprise.to_owned(),
        hazard: hid.to_string(),
        visit: vid.to_string(),
    }
}

fn fill(path: &str, t: &Tenant) -> String {
    path.replace("{p}", &t.photo)
        .replace("{e}", &t.enterprise)
        .replace("{h}", &t.hazard)
        .replace("{v}", &t.visit)
}

async fn every_route_every_role_own_and_other_tenant(app: TestApp) {
    let seed = app.seed().await;
    let mut a = app.phone(users::INSPECTOR).await;
    let own = record(&app, &mut a, &seed.enterprise, &seed.agency, &seed.township).await;
    let mut b = app.phone(users::OTHER_INSPECTOR).await;
    let other = record(
        &app,
        &mut b,
        &seed.other_enterprise,
        &seed.other_agency,
        &seed.other_township,
    )
    .await;

    // The other agency also serves our enterprise, and records a visit and hazard there.
    server::admin::create_contract(
        &app.state.db,
        app.clock.as_ref(),
        &seed.other_agency,
        &seed.enterprise,
        "2026-01-01".parse().unwrap(),
        "2026-12-31".parse().unwrap(),
        true,
    )
    .await
    .unwrap();
    let neighbour = record(
        &app,
        &mut b,
        &seed.enterprise,
        &seed.other_agency,
        &seed.township,
    )
    .await;
    // Agency staff see the neighbour's documents as another tenant's; the enterprise and the
    // township as their own. Enterprise routes are the shared enterprise's, the same for all.
    let agency_staff = |role: &str| role == users::INSPECTOR || role == users::AGENCY_ADMIN;
    let of_documents =
        |path: &str| path.contains("{h}") || path.contains("{v}") || path.contains("{p}");

    let mut failures = Vec::new();
    for role in ROLES {
        let s = app.login(role).await;
        for (method, path, want_own, want_other) in MATRIX {
            let want_neighbour = if agency_staff(role) && of_documents(path) {
                want_other
            } else {
                want_own
            };
            for (tenant, want) in [
                (&own, want_own),
                (&other, want_other),
                (&neighbour, want_neighbour),
            ] {
                let url = format!("{}{}", app.base, fill(path, tenant));
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let resp = app
                    .client
                    .request(method.clone(), &url)
                    .bearer_auth(&s.token)
                    .body(vec![1u8])
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                if status != *want {
                    failures.push(format!(
                        "{role} {method} {url}: {status}, expected {want}: {body}"
                    ));
                }
                // Whatever the route, the other tenant's ids never appear (the user is of `own`),
                // nor, to agency staff, the neighbour agency's documents.
                let mut hidden = vec![&other.hazard, &other.visit, &other.enterprise];
                if agency_staff(role) {
                    hidden.extend([&neighbour.hazard, &neighbour.visit]);
                }
                for id in hidden {
                    if body.contains(id.as_str()) {
                        failures.push(format!("{role} {method} {url} leaks {id}"));
                    }
                }
            }
            // And without a token every route but the public ones refuses.
            if !path.ends_with("openapi.json") {
                let url = format!("{}{}", app.base, fill(path, &own));
                let resp = app
                    .client
                    .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                    .send()
                    .await
                    .unwrap();
                if resp.status() != StatusCode::UNAUTHORIZED {
                    failures.push(format!("no token {method} {url}: {}", resp.status()));
                }
            }
        }
    }
    for (role, body, want_own, want_other) in ACTIONS {
        let s = app.login(role).await;
        // The first agency's staff cannot act on the neighbour agency's hazard at all.
        if agency_staff(role) {
            let url = format!("{}/api/v1/hazards/{}/events", app.base, neighbour.hazard);
            let resp = app
                .client
                .post(&url)
                .bearer_auth(&s.token)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            // A body the route cannot read is refused as such before the hazard is looked up.
            let want = if *want_own == 422 { 422 } else { 404 };
            if status != want {
                failures.push(format!(
                    "{role} POST {url} {body}: {status}, expected {want}"
                ));
            }
        }
        let fresh_own = record(&app, &mut a, &seed.enterprise, &seed.agency, &seed.township).await;
        for (tenant, want) in [(&fresh_own, want_own), (&other, want_other)] {
            let url = format!("{}/api/v1/hazards/{}/events", app.base, tenant.hazard);
            let resp = app
                .client
                .post(&url)
                .bearer_auth(&s.token)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            if status != *want {
                failures.push(format!(
                    "{role} POST {url} {body}: {status}, expected {want}: {text}"
                ));
            }
        }
        let resp = app
            .client
            .post(format!(
                "{}/api/v1/hazards/{}/events",
                app.base, other.hazard
            ))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::UNAUTHORIZED {
            failures.push(format!("no token POST events: {}", resp.status()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every route in the matrix is described in the OpenAPI document.
    // Writes outside documents, per role: enrol a device (everyone), upload a photo (those who
    // record hazards or evidence), revoke another tenant's device (nobody: 404).
    let foreign_device = b.session.device.clone().unwrap().0;
    let mut write_failures = Vec::new();
    for (role, want_upload) in [
        (users::INSPECTOR, 200u16),
        (users::MANAGER, 200),
        (users::SUPERVISOR, 403),
        (users::AGENCY_ADMIN, 403),
    ] {
        let s = app.login(role).await;
        let r = app
            .client
            .post(format!("{}/api/v1/devices", app.base))
            .bearer_auth(&s.token)
            .json(&serde_json::json!({ "name": "测试机", "platform": "android" }))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() != 201 {
            write_failures.push(format!("{role} POST /devices: {}", r.status()));
        }
        let mut img = std::io::Cursor::new(Vec::new());
        let shade = (uuid::Uuid::new_v4().as_u128() % 250) as u8;
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            20,
            20,
            image::Rgb([shade, 1, 2]),
        ))
        .write_to(&mut img, image::ImageFormat::Jpeg)
        .unwrap();
        let bytes = img.into_inner();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let r = app
            .client
            .put(format!("{}/api/v1/photos/{sha}?offset=0", app.base))
            .bearer_auth(&s.token)
            .header("x-photo-size", bytes.len().to_string())
            .body(bytes)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() != want_upload {
            write_failures.push(format!(
                "{role} PUT photo: {}, expected {want_upload}",
                r.status()
            ));
        }
        let r = app
            .client
            .post(format!(
                "{}/api/v1/devices/{foreign_device}/revoke",
                app.base
            ))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() != 404 {
            write_failures.push(format!(
                "{role} revoke another tenant's device: {}",
                r.status()
            ));
        }
    }
    for (method, path) in [
        ("POST", "/api/v1/devices"),
        ("PUT", "/api/v1/photos/00"),
        ("POST", "/api/v1/auth/logout"),
    ] {
        let r = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", app.base),
            )
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::UNAUTHORIZED {
            write_failures.push(format!("no token {method} {path}: {}", r.status()));
        }
    }
    assert!(write_failures.is_empty(), "{}", write_failures.join("\n"));

    let (_, doc) = app.get("", "/api/v1/openapi.json").await;
    for (method, path, ..) in MATRIX {
        let p = path
            .split('?')
            .next()
            .unwrap()
            .replace("{e}", "{id}")
            .replace("{h}", "{id}")
            .replace("{v}", "{id}")
            .replace("{p}", "{sha256}");
        assert!(
            doc["paths"][&p][method.to_lowercase()].is_object(),
            "{method} {p} is not in openapi.json"
        );
    }
}

tests::on_every_backend!(every_route_every_role_own_and_other_tenant);

/// The colleagues list names the caller's own organisation and nobody else: an inspector sees
/// the agency's inspectors and admin, never another agency's; a manager only the enterprise's.
#[tokio::test]
async fn colleagues_are_the_callers_organisation_only() {
    let app = tests::spawn_app(tests::Backend::Sqlite).await.unwrap();
    app.seed().await;
    for user in [
        users::INSPECTOR,
        users::MANAGER,
        users::SUPERVISOR,
        users::AGENCY_ADMIN,
        users::OTHER_INSPECTOR,
    ] {
        let s = app.login(user).await;
        let org = s.org_id.clone();
        let (status, list) = app.get(&s.token, "/api/v1/colleagues").await;
        assert_eq!(status, StatusCode::OK, "{user}: {list}");
        let list = list.as_array().unwrap();
        assert!(
            list.iter().all(|u| u["org_id"] == org.as_str()),
            "{user} sees someone of another organisation: {list:?}"
        );
        assert!(
            list.iter().any(|u| u["username"] == user),
            "{user} is listed"
        );
        assert!(
            list.iter().all(|u| u.get("password_hash").is_none()),
            "no secrets"
        );
    }
    let s = app.login(users::INSPECTOR).await;
    let (_, list) = app.get(&s.token, "/api/v1/colleagues").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(names.contains(&users::INSPECTOR2), "{names:?}");
    assert!(!names.contains(&users::OTHER_INSPECTOR), "{names:?}");
}
