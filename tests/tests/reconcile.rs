//! The read models never stay behind the documents (issue #21), on SQLite and PostgreSQL:
//! concurrent projections of many hazards of one township and month never deadlock; a
//! projection that fails mid-way leaves nothing half-written and is caught up by the
//! reconciler, by a pass and by the background loop; a document stored before the heads were
//! recorded is found, read and projected.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use server::db::Db;
use server::reconcile::reconcile_once;
use sync_core::doc::{DocKind, HazardDoc, TypedDoc};
use sync_core::domain::{Deadline, Grade, Role};
use sync_core::edit;
use sync_core::ids::{HazardId, UserId, VisitId};
use sync_core::rectification::{Event, EventKind};
use tests::scenario::{T, hazard_state, header_by, record_visit};
use tests::{Phone, TestApp, on_every_backend, users};

async fn exec(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(s) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&s.pool)
                .await
                .unwrap();
        }
        Db::Postgres(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .unwrap();
        }
    };
}

/// From now on the database refuses every write of `hazards_view`: a projection gets as far as
/// its first statement (the document's projected heads) and fails at the second.
async fn break_hazards_view(db: &Db) {
    match db {
        Db::Sqlite(_) => {
            for op in ["INSERT", "UPDATE"] {
                exec(
                    db,
                    &format!(
                        "CREATE TRIGGER injected_failure_{op} BEFORE {op} ON hazards_view \
                         BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                    ),
                )
                .await;
            }
        }
        Db::Postgres(_) => {
            exec(
                db,
                "CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
                 CREATE TRIGGER injected_failure BEFORE INSERT OR UPDATE ON hazards_view \
                 FOR EACH ROW EXECUTE FUNCTION injected_failure();",
            )
            .await;
        }
    }
}

async fn repair_hazards_view(db: &Db) {
    match db {
        Db::Sqlite(_) => {
            exec(
                db,
                "DROP TRIGGER injected_failure_INSERT; DROP TRIGGER injected_failure_UPDATE;",
            )
            .await
        }
        Db::Postgres(_) => {
            exec(
                db,
                "DROP TRIGGER injected_failure ON hazards_view; DROP FUNCTION injected_failure();",
            )
            .await
        }
    }
}

async fn location(app: &TestApp, token: &str, hid: HazardId) -> String {
    let (status, body) = app.get(token, &format!("/api/v1/hazards/{hid}")).await;
    assert!(status.is_success(), "{body}");
    body["hazard"]["location"].as_str().unwrap().to_owned()
}

fn move_hazard(phone: &mut Phone, hid: HazardId, to: &str) {
    let d = &phone.replica.docs[hid.as_uuid()].doc;
    let edited = edit::edit_hazard(d, &phone.author, T, |h| h.location = to.to_owned()).unwrap();
    phone.replica.docs.get_mut(hid.as_uuid()).unwrap().doc = edited.doc;
}

async fn unprojected(db: &Db) -> usize {
    db.unprojected_docs("", 1000).await.unwrap().len()
}

async fn a_projection_that_fails_midway_is_caught_up_by_the_reconciler(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let web = app.login(users::INSPECTOR).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    app.sync(&mut inspector).await;
    assert_eq!(location(&app, &web.token, hid).await, "冲压车间");
    assert_eq!(unprojected(&app.state.db).await, 0);

    // The edit is accepted and durable; its projection fails after its first statement.
    break_hazards_view(&app.state.db).await;
    move_hazard(&mut inspector, hid, "二号仓库");
    let resp = app.sync(&mut inspector).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);
    assert!(
        inspector
            .replica
            .docs
            .values()
            .all(|d| d.pending().is_empty()),
        "the phone's edit is acknowledged"
    );
    // Nothing of the failed projection was kept, not even its first statement: the document
    // is known to be behind its read model.
    assert_eq!(location(&app, &web.token, hid).await, "冲压车间");
    assert_eq!(unprojected(&app.state.db).await, 1);

    // A pass while the database still refuses: it fails again and says so.
    let pass = reconcile_once(&app.state).await.unwrap();
    assert_eq!((pass.projected, pass.failed), (0, 1), "{pass:?}");
    assert_eq!(location(&app, &web.token, hid).await, "冲压车间");

    // Once the database accepts writes again, a pass brings the list level with the document.
    repair_hazards_view(&app.state.db).await;
    let pass = reconcile_once(&app.state).await.unwrap();
    assert_eq!((pass.projected, pass.failed), (1, 0), "{pass:?}");
    assert_eq!(location(&app, &web.token, hid).await, "二号仓库");
    assert_eq!(unprojected(&app.state.db).await, 0);
    // And the next pass has nothing to do.
    assert_eq!(
        reconcile_once(&app.state).await.unwrap(),
        server::reconcile::Pass::default()
    );
}

async fn history_len(app: &TestApp, token: &str, hid: HazardId) -> usize {
    let (status, body) = app.get(token, &format!("/api/v1/hazards/{hid}")).await;
    assert!(status.is_success(), "{body}");
    body["history"].as_array().unwrap().len()
}

/// A web action whose projection fails is still recorded, once: it answers success (before,
/// a 500 made the user record the event again), and the lists catch up.
async fn a_web_action_whose_projection_fails_is_recorded_once_and_caught_up(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let manager = app.login(users::MANAGER).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    app.sync(&mut inspector).await;
    assert_eq!(history_len(&app, &manager.token, hid).await, 1);

    break_hazards_view(&app.state.db).await;
    tests::world::act(
        &app,
        &manager.token,
        &hid.to_string(),
        serde_json::json!({"kind": "signed_for", "signer": "王厂长"}),
    )
    .await;
    assert_eq!(
        history_len(&app, &manager.token, hid).await,
        1,
        "lists behind"
    );

    repair_hazards_view(&app.state.db).await;
    let pass = reconcile_once(&app.state).await.unwrap();
    assert_eq!((pass.projected, pass.failed), (1, 0), "{pass:?}");
    assert_eq!(history_len(&app, &manager.token, hid).await, 2);
}

async fn the_background_reconciler_catches_up_after_a_failure(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let web = app.login(users::INSPECTOR).await;
    break_hazards_view(&app.state.db).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    app.sync(&mut inspector).await;
    // Never projected: the API does not know the hazard yet.
    let (status, _) = app.get(&web.token, &format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);

    // The failed projection nudged the reconciler; its pass failed too. When the database is
    // repaired, the next failure's nudge (here: the one a later failing sync would give) makes
    // the loop project the hazard without anyone calling it.
    repair_hazards_view(&app.state.db).await;
    app.state.reconciler.nudge();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = app.get(&web.token, &format!("/api/v1/hazards/{hid}")).await;
        if status.is_success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reconciler did not project the hazard"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hazard_state(&app, &web.token, hid).await, "notified");
}

async fn a_document_stored_before_heads_were_recorded_is_projected(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let web = app.login(users::INSPECTOR).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    app.sync(&mut inspector).await;

    // As a database migrated to 0009 with a read model that lost the hazard.
    exec(
        &app.state.db,
        &format!(
            "UPDATE documents SET heads = NULL, projected_heads = NULL; \
             DELETE FROM hazard_events_view WHERE hazard_id = '{hid}'; \
             DELETE FROM hazards_view WHERE id = '{hid}';"
        ),
    )
    .await;
    let (status, _) = app.get(&web.token, &format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);

    let pass = reconcile_once(&app.state).await.unwrap();
    assert_eq!(pass.heads_filled, 2, "{pass:?}"); // the visit and the hazard
    assert_eq!(pass.projected, 2, "{pass:?}");
    assert_eq!(hazard_state(&app, &web.token, hid).await, "notified");
    assert_eq!(unprojected(&app.state.db).await, 0);

    // The heads read back are the ones an append keeps: the next edit appends on top of them
    // and the document is level again after its own projection.
    move_hazard(&mut inspector, hid, "三号车间");
    app.sync(&mut inspector).await;
    assert_eq!(location(&app, &web.token, hid).await, "三号车间");
    assert_eq!(unprojected(&app.state.db).await, 0);
}

/// Eight writers project their own hazards of one enterprise, township and China month at once,
/// each move changing the tally keys in the opposite direction of a neighbour's (general to
/// major and back, open to notified and back), which is what made PostgreSQL kill projections
/// under the tally triggers of migration 0007. Every projection succeeds, the tallies equal
/// the rows, and PostgreSQL counted no deadlock in the test's database.
async fn concurrent_projections_of_one_township_and_month_never_deadlock(app: TestApp) {
    const WRITERS: usize = 8;
    const HAZARDS: usize = 3;
    const ROUNDS: usize = 40;
    let seed = app.seed().await;
    let creator = UserId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let header = |id| header_by(&seed, DocKind::Hazard, id, creator);
    let notified = Event {
        id: uuid::Uuid::new_v4().to_string(),
        at: T,
        author: uuid::Uuid::new_v4().to_string(),
        role: Role::Inspector,
        org: seed.agency.clone(),
        device: uuid::Uuid::new_v4().to_string(),
        kind: EventKind::Notified,
        // A notice as written before rules were versioned: the grade stays the field's.
        rules: None,
    };
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let db = app.state.db.clone();
        let hazards: Vec<HazardDoc> = (0..HAZARDS)
            .map(|_| {
                HazardDoc::new(
                    &header(uuid::Uuid::new_v4()),
                    VisitId::new_random(),
                    Grade::General,
                    Deadline::parse("2026-03-20").unwrap(),
                )
            })
            .collect();
        // Every projected document has its row in the change log's table (a projection
        // records its heads there first); these have no heads yet, so any copy goes.
        for h in &hazards {
            const ROW: &str = "INSERT INTO documents (id, kind, enterprise_id, last_seq) VALUES ($1, 'hazard', $2, 0)";
            match &db {
                Db::Sqlite(s) => sqlx::query(ROW)
                    .bind(&h.id)
                    .bind(&h.enterprise_id)
                    .execute(&s.pool)
                    .await
                    .map(drop),
                Db::Postgres(p) => sqlx::query(ROW)
                    .bind(&h.id)
                    .bind(&h.enterprise_id)
                    .execute(p)
                    .await
                    .map(drop),
            }
            .unwrap();
        }
        let notified = notified.clone();
        tasks.push(tokio::spawn(async move {
            let mut hazards = hazards;
            for round in 0..ROUNDS {
                for (i, h) in hazards.iter_mut().enumerate() {
                    let flip = (round + i + w) % 2 == 1;
                    h.grade = if flip { Grade::Major } else { Grade::General };
                    h.events = if (round / 2 + w) % 2 == 1 {
                        vec![notified.clone()]
                    } else {
                        Vec::new()
                    };
                    let typed = TypedDoc::Hazard(Box::new(h.clone()));
                    let written = server::projection::project(&db, &typed, &[], T)
                        .await
                        .unwrap_or_else(|e| panic!("writer {w} round {round}: {e}"));
                    assert!(written, "writer {w} round {round}: not written");
                }
            }
            hazards
        }));
    }
    let mut expected: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for t in tasks {
        for h in t.await.unwrap() {
            let state = if h.events.is_empty() {
                "open"
            } else {
                "notified"
            };
            *expected
                .entry((state.to_owned(), h.grade.as_str().to_owned()))
                .or_default() += 1;
        }
    }
    const TALLIES: &str =
        "SELECT state, grade, n FROM hazard_tallies WHERE n <> 0 ORDER BY state, grade";
    let tallies: Vec<(String, String, i64)> = match &app.state.db {
        Db::Sqlite(s) => sqlx::query_as(TALLIES).fetch_all(&s.pool).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(TALLIES).fetch_all(p).await.unwrap(),
    };
    let tallied: std::collections::BTreeMap<(String, String), i64> =
        tallies.into_iter().map(|(s, g, n)| ((s, g), n)).collect();
    assert_eq!(tallied, expected);

    app.state.db.close().await;
    if let Some(deadlocks) = app.postgres_deadlocks().await {
        assert_eq!(
            deadlocks, 0,
            "PostgreSQL detected deadlocks during the projections"
        );
    }
}

/// A server instance whose copy of a hazard is older than the stored one (another instance, or
/// another request, stored newer changes) projects it last: the projection is dropped, and the
/// lists keep the newer state. Without the guard the older copy would put the hazard back to
/// `notified` until the reconciler's next pass.
async fn an_older_copy_projected_last_does_not_turn_the_lists_back(app: TestApp) {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let web = app.login(users::SUPERVISOR).await;
    let (_, hid) = record_visit(&seed, &mut inspector, Grade::General, "2026-03-20");
    app.sync(&mut inspector).await;
    // The inspector's copy stays at the notice; the enterprise then signs for it.
    let older = inspector.replica.docs[hid.as_uuid()].doc.clone();
    assert_eq!(hazard_state(&app, &web.token, hid).await, "notified");
    let mut manager = app.phone(users::MANAGER).await;
    app.sync(&mut manager).await;
    tests::scenario::event(
        &mut manager,
        hid,
        EventKind::SignedFor {
            signer: "王厂长".into(),
        },
    );
    app.sync(&mut manager).await;
    let newer = hazard_state(&app, &web.token, hid).await;
    assert_ne!(newer, "notified", "signing moved it on");

    let typed = TypedDoc::hydrate(&older).unwrap();
    let written = server::projection::project(&app.state.db, &typed, &older.get_heads(), T)
        .await
        .unwrap();
    assert!(!written, "the older copy is superseded");
    assert_eq!(hazard_state(&app, &web.token, hid).await, newer);
    assert_eq!(
        unprojected(&app.state.db).await,
        0,
        "the read model is level"
    );
}

on_every_backend!(
    an_older_copy_projected_last_does_not_turn_the_lists_back,
    a_projection_that_fails_midway_is_caught_up_by_the_reconciler,
    a_web_action_whose_projection_fails_is_recorded_once_and_caught_up,
    the_background_reconciler_catches_up_after_a_failure,
    a_document_stored_before_heads_were_recorded_is_projected,
    concurrent_projections_of_one_township_and_month_never_deadlock,
);

/// Two transactions take two rows in opposite orders and wait in between: PostgreSQL kills one
/// of them (40P01, after `deadlock_timeout`), and the plan runs it again instead of failing.
/// Both commit, each update counted once. (SQLite has one writer: nothing to deadlock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_postgresql_kills_in_a_deadlock_is_run_again() {
    use server::db::plan::{Arg, Plan};
    let Some(app) = tests::spawn_app(tests::Backend::Postgres).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL test not run");
        return;
    };
    let db = &app.state.db;
    exec(
        db,
        "CREATE TABLE retry_probe (k BIGINT PRIMARY KEY, v BIGINT NOT NULL); \
         INSERT INTO retry_probe VALUES (1, 0), (2, 0);",
    )
    .await;
    let crossing = |first: i64, second: i64| {
        let mut plan = Plan::default();
        plan.push(
            "UPDATE retry_probe SET v = v + 1 WHERE k = $1",
            vec![Arg::from(first)],
        );
        plan.push("SELECT pg_sleep(0.3)", Vec::new());
        plan.push(
            "UPDATE retry_probe SET v = v + 1 WHERE k = $1",
            vec![Arg::from(second)],
        );
        plan
    };
    let (a, b) = tokio::join!(crossing(1, 2).run(db), crossing(2, 1).run(db));
    a.unwrap();
    b.unwrap();
    let Db::Postgres(pool) = db else {
        unreachable!("a PostgreSQL app")
    };
    let values: Vec<(i64, i64)> = sqlx::query_as("SELECT k, v FROM retry_probe ORDER BY k")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(values, vec![(1, 2), (2, 2)]);
    app.state.db.close().await;
    // The deadlock did happen: the retry is what made both commit.
    assert!(app.postgres_deadlocks().await.unwrap() >= 1);
}
