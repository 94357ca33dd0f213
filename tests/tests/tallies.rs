//! The dashboard's tallies (migration 0007) are kept by triggers on `hazards_view`. After a seeded
//! random run of inserts, upserts that change state, grade, closing time and agency, and deletes,
//! every tally equals the same figure counted directly over `hazards_view`, on SQLite and on
//! PostgreSQL. Month boundaries are China months (UTC+8).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use server::db::Db;
use tests::TestApp;

/// xorshift64*: a small seeded generator so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STATES: [&str; 7] = [
    "open",
    "notified",
    "in_progress",
    "submitted",
    "accepted",
    "closed",
    "closed",
];

/// 2026-02-28T16:00:00Z, which is 1 March 00:00 in China: created times straddle it.
const BOUNDARY_MS: i64 = 1_772_294_400_000;

async fn exec(db: &Db, sql: &str, binds: &[Bind]) {
    macro_rules! run {
        ($pool:expr) => {{
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
            for b in binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Int(i) => q.bind(*i),
                    Bind::OptInt(i) => q.bind(*i),
                };
            }
            q.execute($pool).await.unwrap();
        }};
    }
    match db {
        Db::Sqlite(s) => run!(&s.pool),
        Db::Postgres(p) => run!(p),
    }
}

enum Bind {
    Text(String),
    Int(i64),
    OptInt(Option<i64>),
}

async fn rows(db: &Db, sql: &str) -> Vec<Vec<String>> {
    macro_rules! run {
        ($pool:expr) => {{
            use sqlx::Row as _;
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_all($pool)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<String, _>(i)
                                .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .unwrap()
                        })
                        .collect()
                })
                .collect()
        }};
    }
    match db {
        Db::Sqlite(s) => run!(&s.pool),
        Db::Postgres(p) => run!(p),
    }
}

fn china_month(ms: i64) -> String {
    let date = server::clock::china_date(jiff::Timestamp::from_millisecond(ms).unwrap());
    format!("{:04}-{:02}", date.year(), date.month())
}

#[derive(Clone)]
struct Hazard {
    enterprise: String,
    agency: String,
    state: &'static str,
    grade: &'static str,
    created_at: i64,
    closed_at: Option<i64>,
}

async fn upsert(db: &Db, id: &str, h: &Hazard) {
    exec(
        db,
        "INSERT INTO hazards_view (id, visit_id, enterprise_id, agency_id, township_id, location, description, \
         category, grade, criterion, measure, deadline, current_deadline, responsible_person, state, created_at, \
         closed_at, reported_at, under_supervision, photo_count, updated_at) \
         VALUES ($1,'v',$2,$3,'t1','l','d','fire',$4,'','m','2026-03-01','2026-03-01','p',$5,$6,$7,NULL,0,0,0) \
         ON CONFLICT (id) DO UPDATE SET agency_id = excluded.agency_id, grade = excluded.grade, \
         state = excluded.state, closed_at = excluded.closed_at",
        &[
            Bind::Text(id.to_owned()),
            Bind::Text(h.enterprise.clone()),
            Bind::Text(h.agency.clone()),
            Bind::Text(h.grade.to_owned()),
            Bind::Text(h.state.to_owned()),
            Bind::Int(h.created_at),
            Bind::OptInt(h.closed_at),
        ],
    )
    .await;
}

async fn tallies_equal_direct_counts(app: TestApp) {
    let db = &app.state.db;
    let mut rng = Rng(0x05EE_D7A1_11E5_u64);
    let mut model: BTreeMap<String, Hazard> = BTreeMap::new();
    for step in 0..400 {
        let op = rng.below(10);
        if op < 5 || model.is_empty() {
            let id = format!("h{step}");
            let state = STATES[rng.below(STATES.len() as u64) as usize];
            let created_at = BOUNDARY_MS + (rng.below(20) as i64 - 10) * 3_600_000;
            let h = Hazard {
                enterprise: format!("e{}", rng.below(5)),
                agency: format!("a{}", rng.below(2)),
                state,
                grade: if rng.below(4) == 0 {
                    "major"
                } else {
                    "general"
                },
                created_at,
                closed_at: (state == "closed")
                    .then(|| created_at + rng.below(30 * 86_400_000) as i64),
            };
            upsert(db, &id, &h).await;
            model.insert(id, h);
        } else if op < 9 {
            let keys: Vec<String> = model.keys().cloned().collect();
            let id = keys[rng.below(keys.len() as u64) as usize].clone();
            let mut h = model[&id].clone();
            h.state = STATES[rng.below(STATES.len() as u64) as usize];
            h.closed_at =
                (h.state == "closed").then(|| h.created_at + rng.below(30 * 86_400_000) as i64);
            if rng.below(3) == 0 {
                h.grade = if h.grade == "major" {
                    "general"
                } else {
                    "major"
                };
            }
            if rng.below(5) == 0 {
                h.agency = format!("a{}", rng.below(2));
            }
            upsert(db, &id, &h).await;
            model.insert(id, h);
        } else {
            let keys: Vec<String> = model.keys().cloned().collect();
            let id = keys[rng.below(keys.len() as u64) as usize].clone();
            exec(
                db,
                "DELETE FROM hazards_view WHERE id = $1",
                &[Bind::Text(id.clone())],
            )
            .await;
            model.remove(&id);
        }
    }
    assert!(model.len() > 100, "the run leaves a sizeable table");

    // Per (enterprise, agency, township, state, grade).
    let mut expected: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for h in model.values() {
        *expected
            .entry(vec![
                h.enterprise.clone(),
                h.agency.clone(),
                "t1".into(),
                h.state.into(),
                h.grade.into(),
            ])
            .or_default() += 1;
    }
    let got: BTreeMap<Vec<String>, i64> = rows(
        db,
        "SELECT enterprise_id, agency_id, township_id, state, grade, n FROM hazard_tallies WHERE n <> 0",
    )
    .await
    .into_iter()
    .map(|mut r| {
        let n = r.pop().unwrap().parse().unwrap();
        (r, n)
    })
    .collect();
    assert_eq!(got, expected, "hazard_tallies");

    // Per China month: found and closed.
    let mut expected: BTreeMap<Vec<String>, (i64, i64)> = BTreeMap::new();
    for h in model.values() {
        expected
            .entry(vec![h.enterprise.clone(), china_month(h.created_at)])
            .or_default()
            .0 += 1;
        if let Some(c) = h.closed_at {
            expected
                .entry(vec![h.enterprise.clone(), china_month(c)])
                .or_default()
                .1 += 1;
        }
    }
    assert!(
        expected.keys().any(|k| k[1] == "2026-02") && expected.keys().any(|k| k[1] == "2026-03"),
        "created times straddle the China month boundary"
    );
    let got: BTreeMap<Vec<String>, (i64, i64)> = rows(
        db,
        "SELECT enterprise_id, month, created, closed FROM hazard_month_tallies WHERE created <> 0 OR closed <> 0",
    )
    .await
    .into_iter()
    .map(|r| {
        (
            vec![r[0].clone(), r[1].clone()],
            (r[2].parse().unwrap(), r[3].parse().unwrap()),
        )
    })
    .collect();
    assert_eq!(got, expected, "hazard_month_tallies");

    // Closing times in tenths of a day, rounded half up.
    let mut expected: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for h in model.values() {
        if let Some(c) = h.closed_at {
            let tenths = ((c - h.created_at) + 4_320_000) / 8_640_000;
            *expected
                .entry(vec![h.enterprise.clone(), tenths.to_string()])
                .or_default() += 1;
        }
    }
    let got: BTreeMap<Vec<String>, i64> = rows(
        db,
        "SELECT enterprise_id, tenths, n FROM hazard_close_tallies WHERE n <> 0",
    )
    .await
    .into_iter()
    .map(|mut r| {
        let n = r.pop().unwrap().parse().unwrap();
        (r, n)
    })
    .collect();
    assert_eq!(got, expected, "hazard_close_tallies");
}

tests::on_every_backend!(tallies_equal_direct_counts);

/// The dashboard's overdue count reads only the covering index `hazards_view_overdue`
/// (migration 0008), with statistics as `Db::optimize` keeps them in production. Before the
/// index, SQLite used `(state, current_deadline)` and read the table for every overdue row: 3×
/// slower at 100,000 hazards (`bench --only dashboard`).
#[tokio::test]
async fn sqlite_counts_overdue_from_the_covering_index() {
    let app = tests::spawn_app(tests::Backend::Sqlite).await.unwrap();
    let db = &app.state.db;
    let enterprises: Vec<String> = (0..40).map(|e| format!("e{e:02}")).collect();
    let mut rng = Rng(0x0DDE_ADE1_u64);
    for i in 0..1200 {
        let h = Hazard {
            enterprise: enterprises[i % enterprises.len()].clone(),
            agency: format!("a{}", i % 2),
            state: STATES[rng.below(STATES.len() as u64) as usize],
            grade: "general",
            created_at: BOUNDARY_MS,
            closed_at: None,
        };
        upsert(db, &format!("h{i}"), &h).await;
    }
    db.optimize().await.unwrap();

    let sql = server::api::dashboard::DashboardSql::new(enterprises.len());
    let Db::Sqlite(s) = db else {
        unreachable!("spawned on SQLite")
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {}",
        sql.overdue
    )));
    for e in &enterprises {
        q = q.bind(e.clone());
    }
    q = q.bind("2026-06-15");
    let plan: Vec<String> = q
        .fetch_all(&s.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, 3))
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("COVERING INDEX hazards_view_overdue")),
        "overdue plan: {plan:?}"
    );
}
