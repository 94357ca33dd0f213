//! The server's integration tests: a real server on port 0 per test, with a fresh database.
//!
//! Every scenario runs on SQLite, and again on PostgreSQL when `TEST_DATABASE_URL` points at a server
//! whose user may create databases (each test gets its own database, dropped at the end). Without that
//! variable the PostgreSQL variants return at once.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::admin::{self, EnterpriseInput, UserInput};
use server::auth::AuthUser;
use server::model::Role;
use server::{AppState, Clock as _, Config, TestClock};

/// 2025-06-15 12:00 in China.
const NOW: &str = "2025-06-15T04:00:00Z";
const PASSWORD: &str = "correct horse battery";

struct TestApp {
    base: String,
    client: reqwest::Client,
    state: AppState,
    clock: Arc<TestClock>,
    database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    dir: tempfile::TempDir,
    _postgres: Option<PgDatabase>,
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A throwaway PostgreSQL database, dropped when the test ends.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on async work; use a thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

async fn create_pg_database() -> Option<(String, PgDatabase)> {
    use sqlx::Connection as _;
    let url = std::env::var("TEST_DATABASE_URL").ok()?;
    let (server, _db) = url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL ends in /<database>");
    let admin_url = format!("{server}/postgres");
    let name = format!("inspect_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the postgres database of TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    Some((format!("{server}/{name}"), PgDatabase { admin_url, name }))
}

/// Starts a server on 127.0.0.1:0 with a fresh database; `None` for PostgreSQL when it is not
/// configured.
async fn spawn_app_on(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (database_url, postgres) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("test.db").display()),
            None,
        ),
        Backend::Postgres => {
            let (url, db) = create_pg_database().await?;
            (url, Some(db))
        }
    };
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        database_url: Some(database_url.clone()),
        ..Config::default()
    };
    adjust(&mut config);
    let clock = Arc::new(TestClock::new(NOW.parse().expect("timestamp")));
    let state = server::build_state_with_clock(config, clock.clone())
        .await
        .expect("build state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state.clone(), async {
        let _ = stop.await;
    }));
    Some(TestApp {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        state,
        clock,
        database_url,
        shutdown: Some(shutdown),
        dir,
        _postgres: postgres,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Then `postgres` (if any) is dropped, which drops the database and its connections.
    }
}

/// Runs each scenario once per backend: `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = super::spawn_app_on(super::Backend::Sqlite, |_| {}).await
                        .expect("sqlite is always available");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(app) = super::spawn_app_on(super::Backend::Postgres, |_| {}).await else {
                        eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant not run");
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

on_every_backend!(
    health_check_answers_ok,
    every_answer_carries_the_security_headers,
    repeated_failed_logins_lock_the_account_with_429_until_the_lockout_ends,
    a_forged_forwarded_for_header_does_not_escape_the_address_limit,
    a_burst_of_parallel_guesses_is_cut_off_at_the_limit,
    login_with_the_right_password_returns_tokens_and_the_user,
    login_with_a_wrong_password_is_refused_with_401,
    login_as_an_unknown_user_is_refused_like_a_wrong_password,
    refresh_rotates_the_pair_and_the_old_refresh_token_is_refused,
    logout_revokes_the_session,
    a_device_is_enrolled_listed_and_revoked_and_its_tokens_are_then_refused,
    an_agency_admin_may_revoke_staff_devices_but_a_stranger_may_not,
    an_access_token_is_refused_once_the_clock_passes_its_expiry,
    missing_and_unknown_tokens_are_refused_with_a_clear_code,
    each_role_sees_exactly_the_enterprises_of_its_scope,
    contract_terms_are_read_as_china_standard_time_dates,
    csv_import_reports_the_bad_row_by_number_and_imports_the_good_ones,
    the_import_command_exits_nonzero_when_a_row_is_refused,
    a_malformed_json_body_gets_the_json_error_shape,
    an_oversized_body_is_refused_with_413_in_the_json_error_shape,
    a_user_cannot_belong_to_an_organisation_of_the_wrong_kind,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A valid unified social credit code built from 17 characters by appending the GB 32100-2015 check
/// character (computed here independently of the server's parser).
fn uscc(body: &str) -> String {
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    assert_eq!(body.len(), 17);
    let sum: usize = body
        .chars()
        .enumerate()
        .map(|(i, c)| ALPHABET.find(c).expect("alphabet") * 3usize.pow(i as u32) % 31)
        .sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", &ALPHABET[check..=check])
}

/// Two townships, two agencies, three enterprises and one user per role.
///
/// Agency A's contracts: E1 in force (ends today), E2 ended yesterday, E3 starts tomorrow.
struct World {
    agency_a: String,
    e1: String,
    e2: String,
    e3: String,
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn seed(&self) -> World {
        let db = &self.state.db;
        let clock = self.clock.as_ref();
        let township = admin::create_township(db, clock, "城关镇", &["东区工业园".to_owned()])
            .await
            .expect("township");
        let other_township = admin::create_township(db, clock, "河西街道", &[])
            .await
            .expect("township");
        let agency_a = admin::create_agency(db, clock, "安泰安全服务")
            .await
            .expect("agency");
        let agency_b = admin::create_agency(db, clock, "平安技术咨询")
            .await
            .expect("agency");
        let enterprise = |name: &str, code: String, township: &str| EnterpriseInput {
            name: name.to_owned(),
            uscc: code,
            address: "工业路 1 号".to_owned(),
            township: township.to_owned(),
            industry: "机械".to_owned(),
            park: None,
        };
        let e1 = admin::create_enterprise(
            db,
            clock,
            &enterprise("一号厂", uscc("91350100M000100Y4"), &township),
        )
        .await
        .expect("e1");
        let e2 = admin::create_enterprise(
            db,
            clock,
            &enterprise("二号厂", uscc("91350100MA2XYW012"), "城关镇"),
        )
        .await
        .expect("e2");
        let e3 = admin::create_enterprise(
            db,
            clock,
            &enterprise("三号厂", uscc("91330100MA2ABC345"), &other_township),
        )
        .await
        .expect("e3");
        let date = |s: &str| s.parse().expect("date");
        for (enterprise, start, end) in [
            (&e1, "2025-01-01", "2025-06-15"),
            (&e2, "2024-06-15", "2025-06-14"),
            (&e3, "2025-06-16", "2026-06-15"),
        ] {
            admin::create_contract(
                db,
                clock,
                &agency_a,
                enterprise,
                date(start),
                date(end),
                true,
            )
            .await
            .expect("contract");
        }
        for (username, role, org) in [
            ("inspector", Role::Inspector, &agency_a),
            ("admin", Role::AgencyAdmin, &agency_a),
            ("manager", Role::EnterpriseManager, &e1),
            ("supervisor", Role::Supervisor, &township),
            ("stranger", Role::Inspector, &agency_b),
        ] {
            admin::create_user(
                db,
                clock,
                &UserInput {
                    username: username.to_owned(),
                    password: PASSWORD.to_owned(),
                    role,
                    org_id: org.clone(),
                    display_name: None,
                },
            )
            .await
            .expect("user");
        }
        World {
            agency_a,
            e1,
            e2,
            e3,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    async fn login_response(&self, username: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Logs in and returns the session JSON.
    async fn login(&self, username: &str) -> Value {
        let response = self.login_response(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    async fn access_token(&self, username: &str) -> String {
        token(&self.login(username).await, "access_token")
    }
}

fn token(session: &Value, field: &str) -> String {
    session[field].as_str().expect("token field").to_owned()
}

/// Asserts the API's error shape and returns the stable code.
async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.expect("json error body");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains(" / "), "bilingual message: {message}");
    body["error"].as_str().expect("error code").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn health_check_answers_ok(app: TestApp) {
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
}

/// API answers (success and error) are never cached or sniffed; no page leaks its address as a
/// referrer (issue #19, item 10).
async fn every_answer_carries_the_security_headers(app: TestApp) {
    app.seed().await;
    let token = app.access_token("inspector").await;
    let json_answers = [
        app.get("/api/v1/me", &token).await,
        app.get("/api/v1/hazards", &token).await,
        app.get(
            "/api/v1/hazards/00000000-0000-4000-8000-000000000000",
            &token,
        )
        .await,
        app.login_response("inspector", "wrong").await,
        app.post("/api/v1/auth/login", None, &serde_json::json!({"bad": 1}))
            .await,
    ];
    for response in json_answers {
        let h = response.headers();
        assert!(
            h[reqwest::header::CONTENT_TYPE]
                .to_str()
                .expect("ascii content type")
                .starts_with("application/json"),
            "{h:?}"
        );
        assert_eq!(h["cache-control"], "no-store", "{}", response.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
    }
    let page = app.client.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
}

/// 40 wrong passwords then the right one no longer succeed (issue #19, item 3): after five
/// failures the account answers 429 with `Retry-After`, even for the right password, until the
/// lockout has passed. An unknown username is locked the same way, so the answers do not tell
/// which accounts exist.
async fn repeated_failed_logins_lock_the_account_with_429_until_the_lockout_ends(app: TestApp) {
    app.seed().await;
    for username in ["inspector", "nobody"] {
        for spelling in [
            username.to_owned(),
            username.to_uppercase(),
            format!(" {username} "),
        ]
        .iter()
        .cycle()
        .take(5)
        {
            // Other spellings of the name are the same account to the throttle.
            let response = app.login_response(spelling, "not the password").await;
            assert_eq!(
                error_code(response, StatusCode::UNAUTHORIZED).await,
                "invalid_credentials"
            );
        }
        let response = app.login_response(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert_eq!(retry_after, 15 * 60);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "too_many_attempts");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("秒后再试")
        );
    }
    // Another account from the same address is not locked.
    assert_eq!(
        app.login_response("manager", PASSWORD).await.status(),
        StatusCode::OK
    );
    app.clock.advance(SignedDuration::from_mins(15));
    assert_eq!(
        app.login_response("inspector", PASSWORD).await.status(),
        StatusCode::OK
    );
}

/// An attacker spreading guesses over many accounts and naming a new client address in
/// `X-Forwarded-For` each time is still one address to the server: after 50 failures from it,
/// the next attempt (another account, the right password even) answers 429.
async fn a_forged_forwarded_for_header_does_not_escape_the_address_limit(app: TestApp) {
    app.seed().await;
    for i in 0..50 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("x-real-ip", format!("198.51.100.{i}"))
            .json(&json!({"username": format!("guess{i}"), "password": "x"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "192.0.2.77")
        .json(&json!({"username": "manager", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(response, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_attempts"
    );
}

/// 80 parallel guesses at one account: at most five are checked, the rest answer 429 at once,
/// and the server stays responsive.
async fn a_burst_of_parallel_guesses_is_cut_off_at_the_limit(app: TestApp) {
    app.seed().await;
    let guesses = (0..80).map(|i| {
        let app = &app;
        async move {
            app.login_response("inspector", &format!("guess {i}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + refused, 80, "{statuses:?}");
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
}

async fn login_with_the_right_password_returns_tokens_and_the_user(app: TestApp) {
    let world = app.seed().await;

    let session = app.login("inspector").await;

    assert_eq!(session["user"]["role"], "inspector");
    assert_eq!(session["user"]["org_id"], world.agency_a.as_str());
    assert_eq!(session["user"]["display_name"], "inspector");
    let now: Timestamp = NOW.parse().expect("timestamp");
    let access_expiry: Timestamp = session["access_expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("rfc3339");
    let refresh_expiry: Timestamp = session["refresh_expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("rfc3339");
    assert_eq!(access_expiry, now + SignedDuration::from_mins(15));
    assert_eq!(session["access_expires_in"], 15 * 60);
    assert_eq!(refresh_expiry, now + SignedDuration::from_hours(24 * 30));
    let me: Value = app
        .get("/api/v1/me", &token(&session, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "inspector");
    assert_eq!(me["device_id"], Value::Null);
}

async fn login_with_a_wrong_password_is_refused_with_401(app: TestApp) {
    app.seed().await;
    let response = app.login_response("inspector", "not the password").await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials"
    );
}

async fn login_as_an_unknown_user_is_refused_like_a_wrong_password(app: TestApp) {
    app.seed().await;
    let response = app.login_response("nobody", PASSWORD).await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials"
    );
}

async fn refresh_rotates_the_pair_and_the_old_refresh_token_is_refused(app: TestApp) {
    app.seed().await;
    let first = app.login("inspector").await;

    let response = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&first, "refresh_token")}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.expect("json");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["user"]["username"], "inspector");
    assert_eq!(
        app.get("/api/v1/me", &token(&second, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    // The access token issued with the spent refresh token goes with it.
    let old_access = app.get("/api/v1/me", &token(&first, "access_token")).await;
    assert_eq!(
        error_code(old_access, StatusCode::UNAUTHORIZED).await,
        "token_revoked"
    );

    let reuse = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&first, "refresh_token")}),
        )
        .await;
    assert_eq!(
        error_code(reuse, StatusCode::UNAUTHORIZED).await,
        "token_revoked"
    );
    // Reuse of a spent refresh token means it leaked: the whole session is ended.
    let after_reuse = app.get("/api/v1/me", &token(&second, "access_token")).await;
    assert_eq!(
        error_code(after_reuse, StatusCode::UNAUTHORIZED).await,
        "token_revoked"
    );
}

async fn logout_revokes_the_session(app: TestApp) {
    app.seed().await;
    let session = app.login("inspector").await;
    let other_session = app.login("inspector").await;
    let access = token(&session, "access_token");

    let response = app
        .post("/api/v1/auth/logout", Some(&access), &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        error_code(
            app.get("/api/v1/me", &access).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "token_revoked"
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    // Other sessions of the same user are untouched.
    assert_eq!(
        app.get("/api/v1/me", &token(&other_session, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_device_is_enrolled_listed_and_revoked_and_its_tokens_are_then_refused(app: TestApp) {
    app.seed().await;
    let access = app.access_token("inspector").await;

    let response = app
        .post(
            "/api/v1/devices",
            Some(&access),
            &json!({"name": "张工的手机", "platform": "android"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let enrolled: Value = response.json().await.expect("json");
    let device_id = enrolled["device_id"]
        .as_str()
        .expect("device id")
        .to_owned();
    let actor_id = enrolled["actor_id"].as_str().expect("actor id");
    assert_eq!(actor_id.len(), 32);
    assert!(actor_id.chars().all(|c| c.is_ascii_hexdigit()));

    let listed: Value = app
        .get("/api/v1/devices", &access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], device_id.as_str());
    assert_eq!(listed[0]["revoked_at"], Value::Null);

    let bound = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "inspector", "password": PASSWORD, "device_id": device_id}),
        )
        .await;
    assert_eq!(bound.status(), StatusCode::OK);
    let bound: Value = bound.json().await.expect("json");
    let device_access = token(&bound, "access_token");
    let me: Value = app
        .get("/api/v1/me", &device_access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["device_id"], device_id.as_str());

    let revoked = app
        .post(
            &format!("/api/v1/devices/{device_id}/revoke"),
            Some(&access),
            &json!({}),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);

    let refused = app.get("/api/v1/me", &device_access).await;
    assert_eq!(
        error_code(refused, StatusCode::UNAUTHORIZED).await,
        "device_revoked"
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&bound, "refresh_token")}),
        )
        .await;
    assert_eq!(
        error_code(refresh, StatusCode::UNAUTHORIZED).await,
        "device_revoked"
    );
    let relogin = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "inspector", "password": PASSWORD, "device_id": device_id}),
        )
        .await;
    assert_eq!(
        error_code(relogin, StatusCode::UNAUTHORIZED).await,
        "device_revoked"
    );
    // The session that was not bound to the device goes on.
    assert_eq!(
        app.get("/api/v1/me", &access).await.status(),
        StatusCode::OK
    );
}

async fn an_agency_admin_may_revoke_staff_devices_but_a_stranger_may_not(app: TestApp) {
    app.seed().await;
    let inspector = app.access_token("inspector").await;
    let enrolled: Value = app
        .post(
            "/api/v1/devices",
            Some(&inspector),
            &json!({"name": "phone", "platform": "ios"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let path = format!(
        "/api/v1/devices/{}/revoke",
        enrolled["device_id"].as_str().expect("id")
    );

    let stranger = app.access_token("stranger").await;
    let refused = app.post(&path, Some(&stranger), &json!({})).await;
    assert_eq!(
        error_code(refused, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let supervisor = app.access_token("supervisor").await;
    assert_eq!(
        app.post(&path, Some(&supervisor), &json!({}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let admin = app.access_token("admin").await;
    let revoked = app.post(&path, Some(&admin), &json!({})).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let device: Value = revoked.json().await.expect("json");
    assert_eq!(device["revoked_at"], NOW);
}

async fn an_access_token_is_refused_once_the_clock_passes_its_expiry(app: TestApp) {
    app.seed().await;
    let session = app.login("inspector").await;
    let access = token(&session, "access_token");

    app.clock.advance(SignedDuration::from_mins(14));
    assert_eq!(
        app.get("/api/v1/me", &access).await.status(),
        StatusCode::OK
    );

    app.clock.advance(SignedDuration::from_mins(1));
    let refused = app.get("/api/v1/me", &access).await;
    assert_eq!(
        error_code(refused, StatusCode::UNAUTHORIZED).await,
        "token_expired"
    );

    // The refresh token still works and yields a usable access token.
    let refreshed: Value = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        app.get("/api/v1/me", &token(&refreshed, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );

    app.clock.advance(SignedDuration::from_hours(24 * 31));
    let expired = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&refreshed, "refresh_token")}),
        )
        .await;
    assert_eq!(
        error_code(expired, StatusCode::UNAUTHORIZED).await,
        "token_expired"
    );
}

async fn missing_and_unknown_tokens_are_refused_with_a_clear_code(app: TestApp) {
    let missing = app
        .client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("request");
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(
        error_code(missing, StatusCode::UNAUTHORIZED).await,
        "missing_token"
    );
    let unknown = app.get("/api/v1/me", "not-a-token").await;
    assert_eq!(
        error_code(unknown, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );
}

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
