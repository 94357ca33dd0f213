//! Several server instances on one PostgreSQL database (issue #18): phones of the field
//! simulator reach three instances through a load balancer that sends each connection to one
//! drawn at random, one instance is killed with SIGKILL while the phones sync, and the others
//! carry on. Every phone converges with the server and nothing is lost (the simulator's check,
//! which also compares each phone's documents with the in-process instance's copy, so that a
//! copy cached before the other instances wrote would be caught), and the read models equal a
//! rebuild from the change log.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use server::Clock as _;
use server::db::Db;
use tests::balancer::Balancer;
use tests::fieldsim::{self, Options, ServerHandle, Simulation, Target};
use tests::{Backend, spawn_app_with};

/// Every read model as text, in a fixed order, without the projection times (a rebuild writes
/// its own): hazards, their events, visits, and the tallies the dashboard reads.
async fn read_models(pool: &sqlx::PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT (to_jsonb(h) - 'updated_at')::text FROM hazards_view h ORDER BY id",
        "SELECT to_jsonb(e)::text FROM hazard_events_view e ORDER BY 1",
        "SELECT (to_jsonb(v) - 'updated_at')::text FROM visits_view v ORDER BY id",
        "SELECT to_jsonb(t)::text FROM hazard_tallies t WHERE n <> 0 ORDER BY 1",
        "SELECT to_jsonb(t)::text FROM hazard_month_tallies t WHERE created <> 0 OR closed <> 0 ORDER BY 1",
        "SELECT to_jsonb(t)::text FROM hazard_close_tallies t WHERE n <> 0 ORDER BY 1",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push(format!("-- {sql}"));
        out.extend(rows);
    }
    out
}

/// Documents whose read model is behind their stored heads.
async fn behind(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM documents WHERE heads IS NOT NULL AND projected_heads IS DISTINCT FROM heads",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgres_converge_and_one_killed_loses_nothing() {
    const PHONES: usize = 6;
    let Some(app) = spawn_app_with(Backend::Postgres, |c| {
        c.reconcile_interval = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let accounts = fieldsim::prepare_world(&app, PHONES).await.unwrap();
    let database_url = app.state.config.database_url.clone().unwrap();
    // The instances share the photo directory, as they would share a network file system.
    let env = [("INSPECT_RECONCILE_INTERVAL_SECS", "1")];
    let (mut doomed, doomed_base) = tests::start_server_binary(app.dir.path(), &database_url, &env);
    let (other, other_base) = tests::start_server_binary(app.dir.path(), &database_url, &env);
    let _other = KillOnDrop(other);
    let balancer =
        Arc::new(Balancer::start(&[app.base.clone(), doomed_base, other_base], 18).await);

    // SIGKILL instance 1 while the phones sync through it: as soon as it has taken its fourth
    // connection (a phone is about to send, or sending, a request on it).
    let killed = Arc::new(AtomicBool::new(false));
    let taken_at_kill = Arc::new(std::sync::Mutex::new(None));
    let killer = {
        let (balancer, killed, taken_at_kill) =
            (balancer.clone(), killed.clone(), taken_at_kill.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            while balancer.taken(1) < 4 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            doomed.kill().unwrap(); // SIGKILL on Unix
            doomed.wait().unwrap();
            killed.store(true, Ordering::SeqCst);
            *taken_at_kill.lock().unwrap() =
                Some((balancer.taken(0) + balancer.taken(2), balancer.taken(1)));
        })
    };

    let target = Target {
        base: balancer.base.clone(),
        accounts,
        server: Some(ServerHandle {
            state: app.state.clone(),
            runtime: tokio::runtime::Handle::current(),
        }),
    };
    let opts = Options {
        phones: PHONES,
        edits: 40,
        seed: 18,
        photos: 0.3,
        quiet: true,
        survive_outages: true,
    };
    let sim = tokio::task::spawn_blocking(move || {
        let mut sim = Simulation::new(opts, target).unwrap();
        sim.run().unwrap();
        sim
    })
    .await
    .unwrap();
    killer.join().unwrap();
    assert!(killed.load(Ordering::SeqCst), "instance 1 was killed");

    let Db::Postgres(pool) = &app.state.db else {
        unreachable!("a PostgreSQL test")
    };
    // A projection the killed instance committed no further is repaired by the reconciler of
    // whichever instance holds its lease.
    let mut waited = 0;
    while behind(pool).await > 0 {
        waited += 1;
        assert!(waited < 200, "read models still behind after 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The simulation owns a runtime of its own: it is dropped off the test's runtime.
    let (report, figures) = tokio::task::spawn_blocking(move || {
        let report = sim.check();
        (report, sim.figures().clone())
    })
    .await
    .unwrap();
    assert!(report.passed(), "{:#?}", report.failures);
    assert!(report.checked > 100, "only {} comparisons", report.checked);
    assert_eq!(figures.edits, figures.edits_planned);
    assert_eq!(figures.refused, 0);

    // Every instance served, and the living ones carried on after the kill.
    let (others_at_kill, doomed_at_kill) = taken_at_kill.lock().unwrap().unwrap();
    assert_eq!(
        balancer.taken(1),
        doomed_at_kill,
        "nothing reached the dead"
    );
    assert!(
        balancer.taken(0) + balancer.taken(2) > others_at_kill,
        "the phones went on through the other instances"
    );
    assert!(balancer.taken(0) > 0 && balancer.taken(2) > 0);

    // The read models the three instances wrote equal a rebuild from the change log.
    let incremental = read_models(pool).await;
    assert!(incremental.len() > 20, "{incremental:?}");
    let now_ms = server::clock::to_millis(app.clock.now());
    server::projection::rebuild(&app.state.db, now_ms)
        .await
        .unwrap();
    let rebuilt = read_models(pool).await;
    assert_eq!(incremental, rebuilt);
}

/// A server process that does not outlive the test, whatever way the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
