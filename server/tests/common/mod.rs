//! What the server's integration tests share: a real server on port 0 per test with a fresh
//! database (SQLite, and PostgreSQL when `TEST_DATABASE_URL` is set), a seeded world, request
//! helpers, and `on_every_backend!`. Each test binary uses part of it.
#![allow(dead_code, unused_imports)]

pub use jiff::{SignedDuration, Timestamp};
pub use reqwest::StatusCode;
pub use serde_json::{Value, json};
pub use server::admin::{self, EnterpriseInput, UserInput};
pub use server::auth::AuthUser;
pub use server::model::Role;
pub use server::{AppState, Clock as _, Config, TestClock};
pub use std::sync::Arc;

/// 2025-06-15 12:00 in China.
pub const NOW: &str = "2025-06-15T04:00:00Z";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub database_url: String,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub dir: tempfile::TempDir,
    pub _postgres: Option<PgDatabase>,
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A throwaway PostgreSQL database, dropped when the test ends.
pub struct PgDatabase {
    pub admin_url: String,
    pub name: String,
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

pub async fn create_pg_database() -> Option<(String, PgDatabase)> {
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
pub async fn spawn_app_on(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
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

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A valid unified social credit code built from 17 characters by appending the GB 32100-2015 check
/// character (computed here independently of the server's parser).
pub fn uscc(body: &str) -> String {
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
pub struct World {
    pub agency_a: String,
    pub agency_b: String,
    pub e1: String,
    pub e2: String,
    pub e3: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn seed(&self) -> World {
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
            agency_b,
            e1,
            e2,
            e3,
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn login_response(&self, username: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Logs in and returns the session JSON.
    pub async fn login(&self, username: &str) -> Value {
        let response = self.login_response(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn access_token(&self, username: &str) -> String {
        token(&self.login(username).await, "access_token")
    }
}

pub fn token(session: &Value, field: &str) -> String {
    session[field].as_str().expect("token field").to_owned()
}

/// Asserts the API's error shape and returns the stable code.
pub async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
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
