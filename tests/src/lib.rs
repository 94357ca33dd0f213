//! Support for the end-to-end tests: a real server on 127.0.0.1:0 with a fresh SQLite or
//! PostgreSQL database, a seeded world of organisations and users, and phones that sync over
//! HTTP with the real protocol.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

pub mod balancer;
pub mod fieldsim;
pub mod phones;
pub mod proxy;
pub mod scenario;
pub mod world;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::admin::{self, EnterpriseInput, UserInput};
use server::model::{Role, Uscc};
use server::{AppState, Config, TestClock};
use sync_core::domain::Author;
use sync_core::engine::Replica;
use sync_core::protocol::{self, SyncResponse};

/// 2026-03-10 10:00 in China.
pub const NOW: &str = "2026-03-10T02:00:00Z";
/// Every seeded user's password.
pub const PASSWORD: &str = "correct horse battery";

/// Which database backs a test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on the PostgreSQL of `TEST_DATABASE_URL`.
    Postgres,
}

/// A running server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _postgres: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
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
    let (server, _) = url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL ends in /<database>");
    let admin_url = format!("{server}/postgres");
    let name = format!("inspect_e2e_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    Some((format!("{server}/{name}"), PgDatabase { admin_url, name }))
}

/// Serves `state` on 127.0.0.1 at a free port until the returned sender is dropped or sent to;
/// returns its base URL.
async fn serve_on_loopback(state: &AppState) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state.clone(), async {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx)
}

/// Starts a server; `None` for PostgreSQL when `TEST_DATABASE_URL` is not set.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server with its configuration adjusted by `configure` (limits, timeouts).
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (database_url, pg) = match backend {
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
        database_url: Some(database_url),
        ..Config::default()
    };
    configure(&mut config);
    let clock = Arc::new(TestClock::new(NOW.parse().unwrap()));
    let state = server::build_state_with_clock(config, clock.clone())
        .await
        .expect("state");
    let (base, tx) = serve_on_loopback(&state).await;
    Some(TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        clock,
        dir,
        shutdown: Some(tx),
        _postgres: pg,
    })
}

impl TestApp {
    /// Deadlocks PostgreSQL detected in this server's database since it was created
    /// (`pg_stat_database.deadlocks`); `None` on SQLite. A backend reports its statistics when
    /// it goes idle or exits, so call this after closing the server's pool
    /// (`app.state.db.close()`), which makes every backend of the server exit.
    pub async fn postgres_deadlocks(&self) -> Option<i64> {
        use sqlx::Connection as _;
        let pg = self._postgres.as_ref()?;
        let mut conn = sqlx::PgConnection::connect(&pg.admin_url)
            .await
            .expect("connect to postgres");
        // Statistics of exited backends reach the shared counters at once; poll briefly in
        // case one is still on its way out.
        let mut last = 0;
        for _ in 0..20 {
            sqlx::query("SELECT pg_stat_clear_snapshot()")
                .execute(&mut conn)
                .await
                .expect("clear stats snapshot");
            let n: Option<i64> =
                sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = $1")
                    .bind(&pg.name)
                    .fetch_optional(&mut conn)
                    .await
                    .expect("read pg_stat_database");
            last = n.unwrap_or(0);
            if last > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Some(last)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs each scenario as `sqlite::<name>` and `postgres::<name>` (which passes at once without
/// `TEST_DATABASE_URL`).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::spawn_app($crate::Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::spawn_app($crate::Backend::Postgres).await else {
                        eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant not run");
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// The seeded world: two townships, two agencies, enterprises, one user of every role.
#[derive(Debug, Clone)]
pub struct Seed {
    pub township: String,
    pub other_township: String,
    pub agency: String,
    pub other_agency: String,
    /// In `township`, under contract with `agency`.
    pub enterprise: String,
    /// In `other_township`, under contract with `other_agency`.
    pub other_enterprise: String,
}

/// Usernames of the seeded users.
pub mod users {
    pub const INSPECTOR: &str = "inspector";
    pub const INSPECTOR2: &str = "inspector2";
    pub const INSPECTOR3: &str = "inspector3";
    pub const MANAGER: &str = "manager";
    pub const SUPERVISOR: &str = "supervisor";
    pub const AGENCY_ADMIN: &str = "agency_admin";
    pub const OTHER_INSPECTOR: &str = "other_inspector";
    pub const OTHER_MANAGER: &str = "other_manager";
    pub const OTHER_SUPERVISOR: &str = "other_supervisor";
    pub const OTHER_AGENCY_ADMIN: &str = "other_agency_admin";
}

impl TestApp {
    /// Seeds organisations, contracts and users.
    pub async fn seed(&self) -> Seed {
        let db = &self.state.db;
        let clock = self.clock.as_ref();
        let township = admin::create_township(db, clock, "城东街道", &["城东工业园".into()])
            .await
            .unwrap();
        let other_township = admin::create_township(db, clock, "河西镇", &[])
            .await
            .unwrap();
        let agency = admin::create_agency(db, clock, "安邦安全咨询有限公司")
            .await
            .unwrap();
        let other_agency = admin::create_agency(db, clock, "恒安技术服务中心")
            .await
            .unwrap();
        let mk = |name: &str, code: &str, township: &str| EnterpriseInput {
            name: name.into(),
            uscc: Uscc::with_check_digit(code).unwrap().as_str().to_owned(),
            address: "工业路 8 号".into(),
            township: township.into(),
            industry: "机械".into(),
            park: None,
        };
        let enterprise =
            admin::create_enterprise(db, clock, &mk("宏达机械厂", "91330100MA2AAAAA1", &township))
                .await
                .unwrap();
        let other_enterprise = admin::create_enterprise(
            db,
            clock,
            &mk("河西五金厂", "91330100MA2BBBBB2", &other_township),
        )
        .await
        .unwrap();
        let start: jiff::civil::Date = "2026-01-01".parse().unwrap();
        let end: jiff::civil::Date = "2026-12-31".parse().unwrap();
        admin::create_contract(db, clock, &agency, &enterprise, start, end, true)
            .await
            .unwrap();
        admin::create_contract(
            db,
            clock,
            &other_agency,
            &other_enterprise,
            start,
            end,
            true,
        )
        .await
        .unwrap();
        let user = |name: &str, role: Role, org: &str| UserInput {
            username: name.into(),
            password: PASSWORD.into(),
            role,
            org_id: org.into(),
            display_name: Some(format!("{name} 测试")),
        };
        for u in [
            user(users::INSPECTOR, Role::Inspector, &agency),
            user(users::INSPECTOR2, Role::Inspector, &agency),
            user(users::INSPECTOR3, Role::Inspector, &agency),
            user(users::MANAGER, Role::EnterpriseManager, &enterprise),
            user(users::SUPERVISOR, Role::Supervisor, &township),
            user(users::AGENCY_ADMIN, Role::AgencyAdmin, &agency),
            user(users::OTHER_INSPECTOR, Role::Inspector, &other_agency),
            user(
                users::OTHER_MANAGER,
                Role::EnterpriseManager,
                &other_enterprise,
            ),
            user(users::OTHER_SUPERVISOR, Role::Supervisor, &other_township),
            user(users::OTHER_AGENCY_ADMIN, Role::AgencyAdmin, &other_agency),
        ] {
            admin::create_user(db, clock, &u).await.unwrap();
        }
        Seed {
            township,
            other_township,
            agency,
            other_agency,
            enterprise,
            other_enterprise,
        }
    }

    /// Logs in without a device (web session).
    pub async fn login(&self, username: &str) -> Session {
        self.login_with(username, PASSWORD).await
    }

    /// Logs in with a given password (web session).
    pub async fn login_with(&self, username: &str, password: &str) -> Session {
        let body: Value = self
            .client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Session::from_login(&body, None)
    }

    /// Logs in, enrols a device, and logs in again bound to it (a phone).
    pub async fn login_phone(&self, username: &str) -> Session {
        let web = self.login(username).await;
        let dev: Value = self
            .client
            .post(format!("{}/api/v1/devices", self.base))
            .bearer_auth(&web.token)
            .json(&json!({ "name": format!("{username} 的手机"), "platform": "android" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device_id = dev["device_id"].as_str().unwrap().to_owned();
        let actor_id = dev["actor_id"].as_str().unwrap().to_owned();
        let body: Value = self
            .client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "username": username, "password": PASSWORD, "device_id": device_id }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Session::from_login(&body, Some((device_id, actor_id)))
    }

    /// GET with a token; returns status and JSON body (Null when not JSON).
    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST a JSON body with a token; returns status and JSON body (Null when not JSON).
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Another server instance on this server's PostgreSQL database and data directory, in
    /// this process, on its own port: what a second instance behind a load balancer is. Its
    /// cache, locks and background work are its own; only the database is shared.
    pub async fn another_instance(&self) -> Instance {
        assert!(
            self.state.db.is_shared(),
            "only PostgreSQL takes several instances; an SQLite file has one server"
        );
        let config = (*self.state.config).clone();
        let state = server::build_state_with_clock(config, self.clock.clone())
            .await
            .expect("state");
        let (base, tx) = serve_on_loopback(&state).await;
        Instance {
            base,
            state,
            _shutdown: tx,
        }
    }

    /// Posts raw sync bytes.
    pub async fn post_sync(&self, token: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let r = self
            .client
            .post(format!("{}/api/v1/sync", self.base))
            .bearer_auth(token)
            .header("content-type", protocol::MEDIA_TYPE)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.bytes().await.unwrap().to_vec())
    }

    /// A phone for `username` with an empty replica.
    pub async fn phone(&self, username: &str) -> Phone {
        let session = self.login_phone(username).await;
        Phone {
            author: session.author(),
            session,
            replica: Replica::default(),
        }
    }

    /// Syncs a phone once; panics on a transport error.
    pub async fn sync(&self, phone: &mut Phone) -> SyncResponse {
        let (req, heads) = phone.replica.request();
        let (status, bytes) = self
            .post_sync(&phone.session.token, protocol::encode_request(&req))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "sync failed: {}",
            String::from_utf8_lossy(&bytes)
        );
        let resp = protocol::decode_response(&bytes).expect("response decodes");
        phone
            .replica
            .apply(&heads, &resp)
            .expect("response applies");
        resp
    }
}

/// A further server instance of a [`TestApp`] ([`TestApp::another_instance`]); stops when
/// dropped.
pub struct Instance {
    pub base: String,
    pub state: AppState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub role: String,
    pub org_id: String,
    pub device: Option<(String, String)>,
}

impl Session {
    fn from_login(body: &Value, device: Option<(String, String)>) -> Self {
        Self {
            token: body["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("login failed: {body}"))
                .to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            role: body["user"]["role"].as_str().unwrap().to_owned(),
            org_id: body["user"]["org_id"].as_str().unwrap().to_owned(),
            device,
        }
    }

    /// The sync-core author this session edits as.
    pub fn author(&self) -> Author {
        let (device, actor) = self.device.clone().expect("a phone session");
        Author {
            user: sync_core::ids::UserId::parse(&self.user_id).unwrap(),
            role: sync_core::domain::Role::parse(&self.role).unwrap(),
            org: uuid::Uuid::parse_str(&self.org_id).unwrap(),
            device: sync_core::ids::DeviceId::parse(&device).unwrap(),
            actors: vec![sync_core::automerge::ActorId::from(hex_decode(&actor))],
        }
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A phone: a session and its replica (in memory; the bridge keeps the same durably).
pub struct Phone {
    pub session: Session,
    pub author: Author,
    pub replica: Replica,
}

impl Phone {
    /// Keeps a document made on this phone, not yet sent to the server.
    pub fn hold(
        &mut self,
        kind: sync_core::doc::DocKind,
        id: uuid::Uuid,
        doc: sync_core::automerge::Automerge,
    ) {
        self.replica.docs.insert(
            id,
            sync_core::engine::ReplicaDoc {
                kind,
                doc,
                synced: vec![],
                refused: None,
            },
        );
    }
}

/// The server binary next to the running test's (cargo builds it for the server's own tests).
pub fn server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("server");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p server` (the workspace test run does)",
        bin.display()
    );
    bin
}

/// Starts the server binary on data directory `dir` and `database_url`, with `env` set besides;
/// returns the process and its address once it listens.
pub fn start_server_binary(
    dir: &std::path::Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut command = std::process::Command::new(server_binary());
    command
        .env_remove("INSPECT_CONFIG")
        .env("INSPECT_DATA_DIR", dir)
        .env("DATABASE_URL", database_url)
        .env("INSPECT_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_owned();
        }
    };
    // Keep reading its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}
