//! What operators rely on: `/metrics` counts syncs, refusals and answers and is readable from
//! the monitoring network only; `/readyz` checks the database and the photo store; a backup
//! taken while phones write restores to an intact database that holds every change
//! acknowledged before the backup began. (The log format and `server config` are tested on the
//! server binary, in `server/tests/api.rs`.)
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use sync_core::store::DocumentStore as _;
use tests::world::FOUND as FOUND_AT;
use tests::world::record_visit;
use tests::{Backend, TestApp, spawn_app, spawn_app_with, users};

/// The samples of a Prometheus text exposition, by name with labels.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(key.to_owned(), value);
    }
    out
}

async fn metrics(app: &TestApp) -> BTreeMap<String, f64> {
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse_metrics(&r.text().await.unwrap())
}

async fn the_metrics_count_syncs_refusals_and_answers(app: TestApp) {
    let seed = app.seed().await;
    let before = metrics(&app).await;
    assert_eq!(before["inspect_sync_requests_total{outcome=\"ok\"}"], 0.0);

    let mut phone = app.phone(users::INSPECTOR).await;
    for i in 0..3 {
        record_visit(&mut phone, &seed, FOUND_AT + i);
    }
    let resp = app.sync(&mut phone).await;
    assert!(resp.refused.is_empty());
    // A change made under an actor the device was not enrolled with is refused, and counted.
    let mut forger = app.phone(users::INSPECTOR2).await;
    forger.author.actors = vec![sync_core::automerge::ActorId::random()];
    record_visit(&mut forger, &seed, FOUND_AT);
    let resp = app.sync(&mut forger).await;
    assert_eq!(resp.refused.len(), 1);

    let after = metrics(&app).await;
    assert_eq!(after["inspect_sync_requests_total{outcome=\"ok\"}"], 2.0);
    assert_eq!(after["inspect_sync_requests_total{outcome=\"error\"}"], 0.0);
    assert_eq!(after["inspect_sync_duration_seconds_count"], 2.0);
    assert_eq!(
        after["inspect_sync_duration_seconds_bucket{le=\"+Inf\"}"],
        2.0
    );
    assert!(after["inspect_sync_duration_seconds_sum"] > 0.0);
    assert_eq!(after["inspect_sync_documents_applied_total"], 3.0);
    assert!(after["inspect_sync_changes_accepted_total"] >= 3.0);
    let refused: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("inspect_sync_refusals_total{"))
        .map(|(_, v)| v)
        .sum();
    assert!(refused >= 1.0, "{after:?}");
    assert!(
        after["inspect_http_responses_total{class=\"2xx\"}"]
            > before["inspect_http_responses_total{class=\"2xx\"}"]
    );
    assert_eq!(after["inspect_read_models_behind"], 0.0);
    assert!(after.contains_key("inspect_db_pool_connections{state=\"idle\"}"));
    assert!(after["inspect_connections{slot=\"ordinary\"}"] >= 1.0);
}

async fn readyz_checks_the_database_and_the_photo_store(app: TestApp) {
    let r = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["photo_store"], "ok");

    // The photo store's temporary directory gone (a disk unmounted): not ready, and says which.
    std::fs::remove_dir_all(app.dir.path().join("photos").join("tmp")).unwrap();
    let r = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["photo_store"], "unavailable");
    assert_eq!(body["ready"], false);
}

tests::on_every_backend!(
    the_metrics_count_syncs_refusals_and_answers,
    readyz_checks_the_database_and_the_photo_store,
);

/// `/metrics` is for the monitoring network: another address gets 404, as if it did not
/// exist, unless it is configured (`health_check_from`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_to_the_monitoring_addresses_only() {
    async fn from_127_0_0_2(app: &TestApp) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let answer = from_127_0_0_2(&app).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(!answer.contains("inspect_sync"), "{answer}");
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.health_check_from = vec!["127.0.0.2".parse().unwrap()];
    })
    .await
    .unwrap();
    let answer = from_127_0_0_2(&app).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("inspect_sync_requests_total"), "{answer}");
}

/// A backup taken while a phone keeps syncing restores to a database that passes
/// `integrity_check` and holds every document acknowledged before the backup began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_with_every_acknowledged_change() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let seed = app.seed().await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = Arc::new(app);
    let writer = {
        let (app, seed, acked, stop) = (app.clone(), seed.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut phone = app.phone(users::INSPECTOR).await;
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 400 {
                let ids: Vec<String> = (0..5)
                    .map(|k| record_visit(&mut phone, &seed, FOUND_AT + i * 5 + k))
                    .collect();
                let resp = app.sync(&mut phone).await;
                assert!(resp.refused.is_empty());
                acked.lock().unwrap().extend(ids);
                i += 1;
            }
        })
    };
    while acked.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Several backups while the phone keeps writing; each must hold what was acknowledged
    // before it began. The last one is restored below.
    let source =
        server::backup::sqlite_path(app.state.config.database_url.as_deref().unwrap()).unwrap();
    let mut before: Vec<String> = Vec::new();
    let mut dest = std::path::PathBuf::new();
    let mut overlapped = 0;
    for n in 0..5 {
        before = acked.lock().unwrap().clone();
        dest = app.dir.path().join(format!("backup-{n}.db"));
        let report = {
            let (source, dest) = (source.clone(), dest.clone());
            tokio::task::spawn_blocking(move || server::backup::backup_sqlite(&source, &dest))
                .await
                .unwrap()
                .unwrap()
        };
        assert!(report.changes as usize >= before.len(), "{report:?}");
        if acked.lock().unwrap().len() > before.len() {
            overlapped += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    eprintln!(
        "5 backups, {overlapped} while a sync was acknowledged; the last began after {} acknowledged visits",
        before.len()
    );
    // A second backup to the same file is refused, not overwritten.
    assert!(server::backup::backup_sqlite(&source, &dest).is_err());

    let restored_dir = tempfile::tempdir().unwrap();
    let target = restored_dir.path().join("inspect.db");
    assert_eq!(
        server::backup::restore_sqlite(&dest, &target, jiff::Timestamp::now()).unwrap(),
        None
    );
    let conn = rusqlite_free_integrity(&target);
    assert_eq!(conn, "ok");
    let db = server::Db::connect(&format!("sqlite://{}", target.display()))
        .await
        .unwrap();
    for id in &before {
        let uid = uuid::Uuid::parse_str(id).unwrap();
        let loaded = db.load(uid).await.unwrap();
        assert!(
            loaded.is_some(),
            "acknowledged visit {id} missing from the backup"
        );
        loaded.unwrap().into_automerge().unwrap();
    }
    db.close().await;

    // Restoring over a database keeps the old one beside it; a file that is not ours is refused.
    let kept = server::backup::restore_sqlite(&dest, &target, jiff::Timestamp::now()).unwrap();
    assert!(kept.unwrap().exists());
    let junk = restored_dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    assert!(server::backup::restore_sqlite(&junk, &target, jiff::Timestamp::now()).is_err());
}

/// `PRAGMA integrity_check` of a SQLite file through sqlx (no other driver in this crate).
fn rusqlite_free_integrity(path: &std::path::Path) -> String {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let rt = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        rt.block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let row: (String,) = sqlx::query_as("PRAGMA integrity_check")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            row.0
        })
    })
}
