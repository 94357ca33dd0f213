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
    an_import_with_bad_rows_stores_nothing_and_names_each_bad_cell,
    gbk_csv_and_xlsx_files_import,
    users_and_contracts_import_by_name,
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

async fn an_import_with_bad_rows_stores_nothing_and_names_each_bad_cell(app: TestApp) {
    app.seed().await;
    let (csv, bad) = csv_with_one_bad_row();
    let csv = format!(
        "{csv}丁厂,{},路 4 号,不存在镇,机械\n",
        uscc("91440300MA5DXXX04")
    );
    let hidden = indicatif::ProgressBar::hidden();
    let report = server::import::enterprises(
        &app.state.db,
        app.clock.as_ref(),
        csv.as_bytes(),
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");

    assert!(report.imported.is_empty(), "{:?}", report.imported);
    let at: Vec<(u64, Option<&str>)> = report
        .errors
        .iter()
        .map(|e| (e.row, e.column.as_deref()))
        .collect();
    assert_eq!(
        at,
        vec![
            (3, Some("B 列「统一社会信用代码」")),
            (5, Some("D 列「乡镇」")),
        ]
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
    // Not even the good rows were stored.
    for code in [uscc("91440300MA5DXXX01"), uscc("91440300MA5DXXX02"), bad] {
        let parsed = server::model::Uscc::parse(&code);
        if let Ok(parsed) = parsed {
            assert_eq!(
                app.state
                    .db
                    .enterprise_id_by_uscc(&parsed)
                    .await
                    .expect("query"),
                None
            );
        }
    }

    // Fixed, the same file imports whole; imported again, every row is a repeat.
    let (fixed, _) = csv_with_one_bad_row();
    let fixed: String = fixed
        .lines()
        .filter(|l| !l.starts_with("乙厂"))
        .map(|l| format!("{l}\n"))
        .collect();
    let report = server::import::enterprises(
        &app.state.db,
        app.clock.as_ref(),
        fixed.as_bytes(),
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.imported.iter().map(|r| r.row).collect::<Vec<_>>(),
        vec![2, 3]
    );
    for row in &report.imported {
        let stored = app
            .state
            .db
            .enterprise_by_id(&row.id)
            .await
            .expect("query")
            .expect("enterprise");
        assert_eq!(stored.uscc, row.key);
    }
    let again = server::import::enterprises(
        &app.state.db,
        app.clock.as_ref(),
        fixed.as_bytes(),
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert!(again.imported.is_empty());
    assert_eq!(again.errors.len(), 2);
    assert!(
        again.errors.iter().all(|e| e.message.contains("已登记")),
        "{:?}",
        again.errors
    );
}

/// An enterprise list as Excel on Chinese Windows saves it ("CSV (逗号分隔)": GBK), and as a
/// workbook with the heads in another order and a park column, both import.
async fn gbk_csv_and_xlsx_files_import(app: TestApp) {
    app.seed().await;
    let hidden = indicatif::ProgressBar::hidden();
    let text = format!(
        "企业名称,统一社会信用代码,地址,乡镇,行业\r\n戊厂（锻造）,{},镇南路 8 号,城关镇,机械\r\n",
        uscc("91440300MA5DXXX05")
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&gbk).is_err(), "the file really is GBK");
    let report = server::import::enterprises(
        &app.state.db,
        app.clock.as_ref(),
        &gbk,
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert_eq!(report.encoding, "GBK/GB18030");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let stored = app
        .state
        .db
        .enterprise_by_id(&report.imported[0].id)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(stored.name, "戊厂（锻造）");
    assert_eq!(stored.address, "镇南路 8 号");

    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows = [
        [
            "统一社会信用代码",
            "企业名称",
            "行业",
            "乡镇",
            "地址",
            "园区",
        ]
        .map(str::to_owned),
        [
            uscc("91440300MA5DXXX06"),
            "己厂".into(),
            "化工".into(),
            "城关镇".into(),
            "园区路 2 号".into(),
            "东区工业园".into(),
        ],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, v).expect("cell");
        }
    }
    let xlsx = book.save_to_buffer().expect("xlsx");
    let report = server::import::enterprises(
        &app.state.db,
        app.clock.as_ref(),
        &xlsx,
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert_eq!(report.encoding, "xlsx");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let stored = app
        .state
        .db
        .enterprise_by_id(&report.imported[0].id)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        (stored.name.as_str(), stored.park.as_deref()),
        ("己厂", Some("东区工业园"))
    );
}

/// Users and contracts import from tables too, by name where people know names; a bad cell
/// anywhere stores nothing.
async fn users_and_contracts_import_by_name(app: TestApp) {
    let world = app.seed().await;
    let hidden = indicatif::ProgressBar::hidden();
    let users = "用户名,姓名,角色,所属单位,初始密码,邮箱\n\
                 zhang.san,张三,检查员,安泰安全服务,correct-horse-1,zhang.san@antai.example.cn\n\
                 li.si,李四,supervisor,城关镇,correct-horse-2,\n";
    let report = server::import::users(
        &app.state.db,
        app.clock.as_ref(),
        users.as_bytes(),
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let zhang = app
        .state
        .db
        .user_by_username("zhang.san")
        .await
        .expect("query")
        .expect("user");
    assert_eq!(
        (zhang.role, zhang.org_id.as_str()),
        (server::model::Role::Inspector, world.agency_a.as_str())
    );
    let listed = server::users::list(&app.state.db, Some(&world.agency_a))
        .await
        .expect("list");
    let zhang_row = listed
        .iter()
        .find(|u| u.username == "zhang.san")
        .expect("row");
    assert_eq!(
        zhang_row.email.as_deref(),
        Some("zhang.san@antai.example.cn")
    );
    // The imported password works.
    assert_eq!(
        app.login_response("zhang.san", "correct-horse-1")
            .await
            .status(),
        200
    );

    let bad = "用户名,角色,所属单位,初始密码,邮箱\nwang.wu,监管人员,安泰安全服务,correct-horse-3,\nzhao.liu,检查员,安泰安全服务,short,\nqian.qi,检查员,安泰安全服务,correct-horse-4,qian qi@antai\n";
    let report = server::import::users(
        &app.state.db,
        app.clock.as_ref(),
        bad.as_bytes(),
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert_eq!(
        report
            .errors
            .iter()
            .map(|e| (e.row, e.column.clone().unwrap_or_default()))
            .collect::<Vec<_>>(),
        vec![
            (2, "C 列「所属单位」".to_owned()),
            (3, "D 列「初始密码」".to_owned()),
            (4, "E 列「邮箱」".to_owned()),
        ]
    );
    assert!(
        app.state
            .db
            .user_by_username("wang.wu")
            .await
            .expect("query")
            .is_none()
    );

    let contracts = format!(
        "服务机构,企业,起始日期,终止日期,已备案\n平安技术咨询,{},2026/1/1,2026年12月31日,是\n",
        uscc("91350100M000100Y4")
    );
    let report = server::import::contracts(
        &app.state.db,
        app.clock.as_ref(),
        contracts.as_bytes(),
        &server::import::Within::Anything,
        &hidden,
    )
    .await
    .expect("import runs");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.imported.len(), 1);
    assert_eq!(
        report.imported[0].key,
        format!("{} {}", world.agency_b, world.e1)
    );
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
    assert_eq!(stdout.lines().count(), 0, "nothing imported: {stdout}");
    assert!(stderr.contains("row 3"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
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
                email: None,
            },
            app.clock.now(),
        )
        .await;
    assert!(
        matches!(direct, Err(server::db::DbError::Constraint(_))),
        "{direct:?}"
    );
}

/// `server config` prints a commented file that the server reads back.
#[test]
fn server_config_prints_the_defaults_as_a_commented_file() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("config")
        .env_remove("INSPECT_CONFIG")
        .output()
        .expect("run server config");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(text.contains("# bind = \"127.0.0.1:8080\""), "{text}");
    assert!(
        text.contains("默认值") && text.contains("defaults"),
        "{text}"
    );
    // Every line is a comment or blank: the file as printed changes nothing.
    assert!(
        text.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "{text}"
    );
    server::config::parse_toml(&text).expect("the printed file is a valid config");
}

/// Started with its log going to a file, the server writes no colour codes; with
/// `INSPECT_LOG_FORMAT=json` every line is a JSON object.
#[test]
fn the_log_in_a_file_is_plain_text_or_json() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("server.log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .env_remove("INSPECT_CONFIG")
            .env("INSPECT_DATA_DIR", dir.path())
            .env("INSPECT_BIND", "127.0.0.1:0")
            .env("INSPECT_LOG_FORMAT", format)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("listening") || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(text.contains("listening"), "{format}: {text}");
        assert!(
            !text.contains('\u{1b}'),
            "{format}: colour codes in a file: {text:?}"
        );
        if format == "json" {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                assert!(v["level"].is_string(), "{line}");
            }
        }
    }
}
