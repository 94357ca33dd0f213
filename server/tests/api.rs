//! The server's integration tests of scopes, contracts, CSV import and request bodies: a real
//! server on port 0 per test, with a fresh database (fixtures in `common/`; sessions and login
//! limits are in `auth.rs`).
//!
//! Every scenario runs on SQLite, and again on PostgreSQL when `TEST_DATABASE_URL` points at a server
//! whose user may create databases (each test gets its own database, dropped at the end). Without that
//! variable the PostgreSQL variants return at once.

#[macro_use]
mod common;
use common::*;

on_every_backend!(
    each_role_sees_exactly_the_enterprises_of_its_scope,
    contract_terms_are_read_as_china_standard_time_dates,
    csv_import_reports_the_bad_row_by_number_and_imports_the_good_ones,
    the_import_command_exits_nonzero_when_a_row_is_refused,
    a_malformed_json_body_gets_the_json_error_shape,
    an_oversized_body_is_refused_with_413_in_the_json_error_shape,
    a_user_cannot_belong_to_an_organisation_of_the_wrong_kind,
);

async fn user(app: &TestApp, username: &str) -> AuthUser {
    let user = app
        .state
        .db
        .user_by_username(username)
        .await
        .expect("query")
        .expect("user");
    AuthUser {
        user_id: user.id,
        role: user.role,
        org_id: user.org_id,
        device_id: None,
        session_id: String::new(),
        device_actor_id: None,
    }
}

async fn visible_ids(app: &TestApp, username: &str) -> Vec<String> {
    let scope = server::scope::scope_of(
        &app.state.db,
        app.clock.as_ref(),
        &user(app, username).await,
    )
    .await
    .expect("scope");
    let mut ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    // The HTTP listing agrees with the library.
    let token = app.access_token(username).await;
    let listed: Vec<Value> = app
        .get("/api/v1/enterprises", &token)
        .await
        .json()
        .await
        .expect("json");
    let mut listed: Vec<String> = listed
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(
        ids, listed,
        "scope_of and GET /api/v1/enterprises disagree for {username}"
    );
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn each_role_sees_exactly_the_enterprises_of_its_scope(app: TestApp) {
    let w = app.seed().await;

    // Contract with E1 ends today (inclusive); E2's ended yesterday; E3's starts tomorrow.
    assert_eq!(visible_ids(&app, "inspector").await, vec![w.e1.clone()]);
    assert_eq!(visible_ids(&app, "admin").await, vec![w.e1.clone()]);
    assert_eq!(visible_ids(&app, "manager").await, vec![w.e1.clone()]);
    assert_eq!(
        visible_ids(&app, "supervisor").await,
        sorted(vec![w.e1.clone(), w.e2.clone()])
    );
    assert_eq!(visible_ids(&app, "stranger").await, Vec::<String>::new());

    let inspector = user(&app, "inspector").await;
    let may_see = |id: String| {
        let app = &app;
        let inspector = inspector.clone();
        async move {
            server::scope::may_see_enterprise(&app.state.db, app.clock.as_ref(), &inspector, &id)
                .await
                .expect("query")
        }
    };
    assert!(may_see(w.e1.clone()).await);
    assert!(!may_see(w.e2.clone()).await);
    assert!(!may_see(w.e3.clone()).await);
    let token = app.access_token("inspector").await;
    assert_eq!(
        app.get(&format!("/api/v1/enterprises/{}", w.e1), &token)
            .await
            .status(),
        StatusCode::OK
    );
    let hidden = app
        .get(&format!("/api/v1/enterprises/{}", w.e2), &token)
        .await;
    assert_eq!(error_code(hidden, StatusCode::NOT_FOUND).await, "not_found");

    // A day later the E3 contract is in force and the E1 one has ended.
    app.clock.advance(SignedDuration::from_hours(24));
    assert_eq!(visible_ids(&app, "inspector").await, vec![w.e3.clone()]);
}

async fn contract_terms_are_read_as_china_standard_time_dates(app: TestApp) {
    let w = app.seed().await;
    // 2025-06-15T16:30Z is already 2025-06-16 00:30 in China: the E3 contract has started.
    app.clock
        .set("2025-06-15T16:30:00Z".parse().expect("timestamp"));
    assert_eq!(visible_ids(&app, "inspector").await, vec![w.e3.clone()]);
    // At 15:59Z it is still the 15th in China: E1's last day.
    app.clock
        .set("2025-06-15T15:59:00Z".parse().expect("timestamp"));
    assert_eq!(visible_ids(&app, "inspector").await, vec![w.e1.clone()]);
}

fn csv_with_one_bad_row() -> (String, String) {
    let good_1 = uscc("91440300MA5DXXX01");
    let good_2 = uscc("91440300MA5DXXX02");
    let mut bad = uscc("91440300MA5DXXX03");
    // Break the check character.
    let last = bad.pop().expect("char");
    bad.push(if last == '0' { '1' } else { '0' });
    let csv = format!(
        "名称,统一社会信用代码,地址,乡镇,行业\n\
         甲厂,{good_1},路 1 号,城关镇,机械\n\
         乙厂,{bad},路 2 号,城关镇,纺织\n\
         丙厂,{good_2},路 3 号,城关镇,轻工\n"
    );
    (csv, bad)
}

async fn csv_import_reports_the_bad_row_by_number_and_imports_the_good_ones(app: TestApp) {
    app.seed().await;
    let (csv, _) = csv_with_one_bad_row();
    let csv = format!(
        "{csv}丁厂,{},路 4 号,不存在镇,机械\n",
        uscc("91440300MA5DXXX04")
    );

    let report = admin::import_enterprises(
        &app.state.db,
        app.clock.as_ref(),
        csv.as_bytes(),
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("import runs");

    assert_eq!(
        report.imported.iter().map(|r| r.row).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(
        report.errors.iter().map(|e| e.row).collect::<Vec<_>>(),
        vec![3, 5]
    );
    assert!(
        report.errors[0].message.contains("check character"),
        "{}",
        report.errors[0].message
    );
    assert!(
        report.errors[1].message.contains("不存在镇"),
        "{}",
        report.errors[1].message
    );
    for row in &report.imported {
        let stored = app
            .state
            .db
            .enterprise_by_id(&row.id)
            .await
            .expect("query")
            .expect("enterprise");
        assert_eq!(stored.uscc, row.uscc);
    }
}

async fn the_import_command_exits_nonzero_when_a_row_is_refused(app: TestApp) {
    app.seed().await;
    let (csv, bad) = csv_with_one_bad_row();
    let file = app.dir.path().join("enterprises.csv");
    std::fs::write(&file, csv).expect("write csv");

    let database_url = app.database_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .arg("admin")
            .arg("import-enterprises")
            .arg(&file)
            .env("DATABASE_URL", database_url)
            .env_remove("INSPECT_CONFIG")
            .output()
    })
    .await
    .expect("join")
    .expect("run server binary");

    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stdout.lines().count(),
        2,
        "one line per imported row: {stdout}"
    );
    assert!(stderr.contains("row 3"), "{stderr}");
    assert!(!stdout.contains(&bad));
}

async fn a_malformed_json_body_gets_the_json_error_shape(app: TestApp) {
    let send = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let syntax = send("{\"username\": ", "application/json")
        .await
        .expect("request");
    assert_eq!(
        error_code(syntax, StatusCode::BAD_REQUEST).await,
        "invalid_json"
    );
    let shape = send("{\"username\": \"a\"}", "application/json")
        .await
        .expect("request");
    assert_eq!(
        error_code(shape, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_body"
    );
    let media = send("username=a", "application/x-www-form-urlencoded")
        .await
        .expect("request");
    assert_eq!(
        error_code(media, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );
}

async fn an_oversized_body_is_refused_with_413_in_the_json_error_shape(app: TestApp) {
    let password = "x".repeat(app.state.config.json_body_limit + 1);
    let response = app.login_response("inspector", &password).await;
    assert_eq!(
        error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "body_too_large"
    );
}

async fn a_user_cannot_belong_to_an_organisation_of_the_wrong_kind(app: TestApp) {
    let w = app.seed().await;
    let input = UserInput {
        username: "misplaced".to_owned(),
        password: PASSWORD.to_owned(),
        role: Role::Supervisor,
        org_id: w.agency_a.clone(),
        display_name: None,
    };

    let refused = admin::create_user(&app.state.db, app.clock.as_ref(), &input).await;
    assert!(format!("{:#}", refused.expect_err("refused")).contains("township"));

    // The database holds the rule too, for writers that skip the admin layer.
    let direct = app
        .state
        .db
        .create_user(
            &server::db::NewUser {
                username: input.username.clone(),
                display_name: "x".to_owned(),
                password_hash: "x".to_owned(),
                role: Role::Supervisor,
                org_id: w.agency_a.clone(),
            },
            app.clock.now(),
        )
        .await;
    assert!(
        matches!(direct, Err(server::db::DbError::Constraint(_))),
        "{direct:?}"
    );
}
