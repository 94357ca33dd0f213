//! The benchmark suite: one command prints a short table and writes the same figures as JSON.
//!
//! ```sh
//! cargo run --release -p tests --bin bench -- [--out bench.json] [--quick] [--only sync,memory,thumbnail,dashboard,phone,phonesync,fieldsim,instances]
//! ```
//!
//! The phone figures come from `mobile-bridge`'s `bridgebench`, which this command builds in
//! release (with the bridge's cdylib, whose stripped size is reported) and runs.
//!
//! Everything runs against a real server on 127.0.0.1 (in this process, over real HTTP) with a
//! fresh SQLite database; the dashboard queries also run on PostgreSQL when `TEST_DATABASE_URL`
//! (or `BENCH_DATABASE_URL`) is set. Loads are bounded in count and time and only target loopback.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sync_core::doc::visit::VisitKind;
use sync_core::doc::{DocKind, Header, VisitDoc};
use sync_core::edit;
use sync_core::engine::{Hub, HubLimits};
use sync_core::ids::{AgencyId, EnterpriseId, TownshipId, VisitId};
use sync_core::protocol;
use tests::{Backend, Phone, Seed, TestApp, spawn_app, users};

/// The server's own allocator, so that figures are the server binary's.
#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator;

const T: i64 = 1_773_108_000_000;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU time (user + system) this process has used, in milliseconds.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) * 10.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn create_visits(seed: &Seed, phone: &mut Phone, n: usize) -> Vec<VisitId> {
    (0..n)
        .map(|_| {
            let vid = VisitId::new_random();
            let h = Header {
                kind: DocKind::Visit,
                id: *vid.as_uuid(),
                schema: sync_core::doc::SCHEMA_VERSION,
                enterprise: EnterpriseId::parse(&seed.enterprise).unwrap(),
                agency: AgencyId::parse(&seed.agency).unwrap(),
                township: TownshipId::parse(&seed.township).unwrap(),
                created_by: phone.author.user,
                created_at: T,
            };
            let mut v = VisitDoc::new(&h, VisitKind::Routine, T);
            v.place = "一号车间".into();
            let e = edit::new_visit(&v, &phone.author, T).unwrap();
            phone.hold(DocKind::Visit, *vid.as_uuid(), e.doc);
            vid
        })
        .collect()
}

fn edit_place(phone: &mut Phone, vid: VisitId, i: usize) -> usize {
    let d = &phone.replica.docs[vid.as_uuid()].doc;
    let e = edit::edit_visit(d, &phone.author, T, |v| v.place = format!("车间{i}")).unwrap();
    let len = e.change.as_ref().map_or(0, Vec::len);
    phone.replica.docs.get_mut(vid.as_uuid()).unwrap().doc = e.doc;
    len
}

/// A sync request to send.
type Prepared = (
    protocol::SyncRequest,
    std::collections::HashMap<uuid::Uuid, Vec<sync_core::automerge::ChangeHash>>,
);

/// The phone's part of a crowd pass, done before the timed window: one edit of each of `mine`
/// and its request, each marked as sent so that the next request holds only the next edit.
fn prepare_edits(ph: &mut Phone, mine: &[VisitId], pass: usize) -> Vec<Prepared> {
    let mut requests = Vec::with_capacity(mine.len());
    for (i, vid) in mine.iter().enumerate() {
        edit_place(ph, *vid, (pass + 1) * 1_000_000 + i);
        let (req, heads) = ph.replica.request_for(&[*vid.as_uuid()]);
        if let Some(d) = ph.replica.docs.get_mut(vid.as_uuid()) {
            d.synced = heads[vid.as_uuid()].clone();
        }
        requests.push((req, heads));
    }
    requests
}

/// One sync over HTTP; returns (request bytes, response bytes).
async fn sync_bytes(app: &TestApp, phone: &mut Phone) -> (usize, usize) {
    sync_docs(app, phone, None).await
}

/// One sync over HTTP sending the changes of `edited` only (all pending documents when `None`),
/// as a phone's store knows its pending rows without looking at every document.
async fn sync_docs(
    app: &TestApp,
    phone: &mut Phone,
    edited: Option<&[uuid::Uuid]>,
) -> (usize, usize) {
    let (req, heads) = match edited {
        Some(ids) => phone.replica.request_for(ids),
        None => phone.replica.request(),
    };
    let body = protocol::encode_request(&req);
    let n = body.len();
    let (status, bytes) = app.post_sync(&phone.session.token, body).await;
    assert!(status.is_success(), "sync failed: {status}");
    let resp = protocol::decode_response(&bytes).unwrap();
    assert!(resp.refused.is_empty());
    phone.replica.apply(&heads, &resp).unwrap();
    (n, bytes.len())
}

async fn bench_sync(n_docs: usize, phones: usize, rounds: usize, passes: usize) -> Value {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let seed = app.seed().await;
    let mut first = app.phone(users::INSPECTOR).await;
    let vids = create_visits(&seed, &mut first, n_docs);
    sync_bytes(&app, &mut first).await;

    // Initial sync of every visit onto a fresh device.
    let mut fresh = app.phone(users::INSPECTOR2).await;
    let t = Instant::now();
    let (_, initial_bytes) = sync_bytes(&app, &mut fresh).await;
    let initial_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(fresh.replica.docs.len(), n_docs);

    // Sequential one-edit round trips from one phone (nobody else writing): latency and bytes.
    let mut lat = Vec::new();
    let mut wire = Vec::new();
    let mut change_len = 0;
    for (i, vid) in vids.iter().take(rounds.min(n_docs)).enumerate() {
        change_len = edit_place(&mut first, *vid, i);
        let t = Instant::now();
        let (rq, rs) = sync_docs(&app, &mut first, Some(&[*vid.as_uuid()])).await;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        wire.push(rq + rs);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    wire.sort();

    // Concurrent phones, each syncing after every one-field edit on its own slice of the documents.
    let mut crowd = Vec::new();
    for p in 0..phones {
        let mut ph = app.phone(users::INSPECTOR3).await;
        sync_bytes(&app, &mut ph).await;
        let mine: Vec<VisitId> = vids.iter().copied().skip(p).step_by(phones).collect();
        crowd.push((ph, mine));
    }
    // Several passes (each phone edits and syncs each of its documents once per pass); the
    // median pass is the figure, as one pass of ~1 s on a 2-core machine is noisy.
    //
    // The phones share this machine's two cores with the server, but on the road each has its
    // own CPU. So that the figure is the server's, a phone makes its edits and builds each
    // request (the Automerge work of the phone) before the timed window; in the window it only
    // sends them one after another, each carrying the cursor of the previous answer as a phone
    // does, and decodes the answer; after the window it applies the answers in order (each
    // carries the other phones' edits). A second figure times the same loop with the phones'
    // edits and merges inside the window, as before.
    let app = std::sync::Arc::new(app);
    let mut per_pass = Vec::new();
    let mut per_pass_inline = Vec::new();
    let mut total = 0;
    let mut cpu_ms_crowd = 0.0;
    let mut wall_ms_crowd = 0.0;
    for pass in 0..passes {
        // Prepared: the phones' part outside the window.
        let mut prepared = Vec::new();
        for (mut ph, mine) in crowd.drain(..) {
            let requests = prepare_edits(&mut ph, &mine, pass);
            prepared.push((ph, mine, requests));
        }
        let cpu = cpu_ms();
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (ph, mine, requests) in prepared {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let mut cursor = ph.replica.cursor;
                let mut answers = Vec::with_capacity(requests.len());
                for (mut req, heads) in requests {
                    req.cursor = cursor;
                    let (status, bytes) = app
                        .post_sync(&ph.session.token, protocol::encode_request(&req))
                        .await;
                    assert!(status.is_success(), "sync failed: {status}");
                    let resp = protocol::decode_response(&bytes).unwrap();
                    assert!(resp.refused.is_empty());
                    cursor = resp.cursor;
                    answers.push((heads, resp));
                }
                (ph, mine, answers)
            }));
        }
        let mut n = 0;
        let mut answered = Vec::new();
        for t in tasks {
            let (ph, mine, answers) = t.await.unwrap();
            n += answers.len();
            answered.push((ph, mine, answers));
        }
        let secs = t.elapsed().as_secs_f64();
        cpu_ms_crowd += cpu_ms() - cpu;
        wall_ms_crowd += secs * 1e3;
        per_pass.push(n as f64 / secs);
        total += n;
        for (mut ph, mine, answers) in answered {
            for (heads, resp) in answers {
                ph.replica.apply(&heads, &resp).unwrap();
            }
            crowd.push((ph, mine));
        }

        // Inline: the phones edit and merge inside the window.
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (mut ph, mine) in crowd.drain(..) {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                for (i, vid) in mine.iter().enumerate() {
                    edit_place(&mut ph, *vid, (pass + 1) * 1_000_000 + 500_000 + i);
                    sync_docs(&app, &mut ph, Some(&[*vid.as_uuid()])).await;
                }
                (ph, mine)
            }));
        }
        let mut n = 0;
        for t in tasks {
            let (ph, mine) = t.await.unwrap();
            n += mine.len();
            crowd.push((ph, mine));
        }
        per_pass_inline.push(n as f64 / t.elapsed().as_secs_f64());
    }
    // Every phone holds every edit: the server lost nothing and each answer was applied.
    let server_heads = |id: &uuid::Uuid| {
        let hub = &app.state.hub;
        let id = *id;
        async move { hub.load(id).await.unwrap().unwrap().get_heads() }
    };
    for (ph, _) in crowd.iter_mut() {
        sync_bytes(&app, ph).await; // what the others sent after this phone's last sync
    }
    for (ph, _) in &crowd {
        for (id, d) in ph.replica.docs.iter().step_by(7) {
            assert_eq!(
                d.doc.get_heads(),
                server_heads(id).await,
                "phone and server differ"
            );
        }
    }
    // CPU used per sync by the server (and the phones' sending) in the window, and the cores
    // busy: against the wall time it tells whether the crowd is bound by CPU or by waiting.
    let cpu_per_sync = cpu_ms_crowd / total.max(1) as f64;
    let cores_busy = cpu_ms_crowd / wall_ms_crowd;
    per_pass_inline.sort_by(f64::total_cmp);
    let mut sorted = per_pass.clone();
    sorted.sort_by(f64::total_cmp);
    json!({
        "documents": n_docs,
        "concurrent_phones": phones,
        "one_edit_syncs": total,
        "one_edit_syncs_per_second": pct(&sorted, 0.5),
        "one_edit_syncs_per_second_passes": per_pass,
        "one_edit_syncs_per_second_phones_inline": pct(&per_pass_inline, 0.5),
        "cpu_ms_per_sync": cpu_per_sync,
        "cores_busy_during_crowd": cores_busy,
        "round_trip_ms_p50": pct(&lat, 0.5),
        "round_trip_ms_p90": pct(&lat, 0.9),
        "one_field_edit_body_bytes_median": wire.get(wire.len() / 2).copied().unwrap_or(0),
        "one_field_edit_change_bytes": change_len,
        "initial_sync_ms": initial_ms,
        "initial_sync_response_bytes": initial_bytes,
    })
}

async fn bench_memory(n: usize) -> Value {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let seed = app.seed().await;
    let mut phone = app.phone(users::INSPECTOR).await;
    let vids = create_visits(&seed, &mut phone, n);
    // Typical visits: a filled checklist.
    for (i, vid) in vids.iter().enumerate() {
        let d = &phone.replica.docs[vid.as_uuid()].doc;
        let e = edit::edit_visit(d, &phone.author, T, |v| {
            for k in 0..8 {
                v.checklist.push(sync_core::doc::visit::ChecklistItem {
                    id: format!("{i}-{k}"),
                    title: "消防设施完好有效".into(),
                    result: sync_core::doc::visit::CheckResult::Pass,
                    note: String::new(),
                });
            }
            v.notes = "现场检查发现的问题已当场告知企业负责人。".into();
        })
        .unwrap();
        phone.replica.docs.get_mut(vid.as_uuid()).unwrap().doc = e.doc;
    }
    sync_bytes(&app, &mut phone).await;
    drop(phone);
    let hub = Hub::new(
        app.state.db.clone(),
        HubLimits {
            cache_docs: n + 10,
            ..HubLimits::default()
        },
    );
    let before = rss_kib();
    for vid in &vids {
        hub.load(*vid.as_uuid()).await.unwrap().unwrap();
    }
    let after = rss_kib();
    assert_eq!(hub.cached_docs(), n);
    json!({ "documents": n, "rss_delta_kib": after.saturating_sub(before), "kib_per_document": (after.saturating_sub(before)) as f64 / n as f64 })
}

fn test_jpeg_12mp() -> Vec<u8> {
    let mut state = 0x1234_5678u32;
    let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 24) as u8;
        image::Rgb([
            ((x / 16) as u8).wrapping_add(n),
            ((y / 12) as u8).wrapping_add(n),
            (((x + y) / 28) as u8).wrapping_add(n),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(enc)
        .unwrap();
    out.into_inner()
}

fn bench_thumbnail(runs: usize) -> Value {
    let photo = test_jpeg_12mp();
    let limits = server::photos::ProcessingLimits::default();
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        server::photos::make_thumbnail(&photo, &limits).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jpg");
    std::fs::write(&path, &photo).unwrap();
    let mut vips = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let ok = std::process::Command::new("vipsthumbnail")
            .arg(&path)
            .args(["--size", "320", "-o"])
            .arg(dir.path().join("t_%s.jpg"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            vips.clear();
            break;
        }
        vips.push(t.elapsed().as_secs_f64() * 1e3);
    }
    vips.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // Peak memory: one thumbnail in a fresh process of this binary each time, so that nothing
    // else this run allocated counts (see `thumbnail_child`).
    let exe = std::env::current_exe().unwrap();
    let mut peak_kib: Vec<f64> = (0..3)
        .map(|_| {
            let out = std::process::Command::new(&exe)
                .arg("--thumbnail-child")
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "thumbnail child failed: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
        .collect();
    peak_kib.sort_by(f64::total_cmp);
    json!({
        "photo_bytes": photo.len(),
        "ours_ms_median": pct(&ms, 0.5),
        "ours_peak_rss_growth_mib": pct(&peak_kib, 0.5) / 1024.0,
        "vipsthumbnail_ms_median": if vips.is_empty() { Value::Null } else { json!(pct(&vips, 0.5)) },
    })
}

/// `bench --thumbnail-child FILE`: makes one thumbnail of FILE in this fresh process and prints
/// by how many KiB the peak resident memory (VmHWM) grew meanwhile.
fn thumbnail_child(path: &str) {
    let hwm = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .expect("VmHWM in /proc/self/status")
    };
    let bytes = std::fs::read(path).unwrap();
    let before = hwm();
    let thumb =
        server::photos::make_thumbnail(&bytes, &server::photos::ProcessingLimits::default())
            .unwrap();
    std::hint::black_box(thumb);
    println!("{}", hwm().saturating_sub(before));
}

/// Fills `app` with `rows` hazards over 500 enterprises of the seeded township, then times the
/// dashboard's own SQL (`server::api::dashboard::DashboardSql`) for the township supervisor's scope
/// and the whole `GET /api/v1/dashboard` request.
async fn bench_dashboard(app: &TestApp, rows: usize, runs: usize) -> Value {
    use server::db::Db;
    let seed = app.seed().await;
    let db = &app.state.db;
    let states = [
        "open",
        "notified",
        "in_progress",
        "submitted",
        "accepted",
        "closed",
    ];
    let mut enterprises = vec![seed.enterprise.clone()];
    for i in 1..500 {
        let input = server::admin::EnterpriseInput {
            name: format!("基准企业{i:03}"),
            uscc: server::model::Uscc::with_check_digit(&format!("91330100MA{i:07}"))
                .unwrap()
                .as_str()
                .to_owned(),
            address: "工业路 8 号".into(),
            township: seed.township.clone(),
            industry: "机械".into(),
            park: (i % 2 == 0).then(|| "城东工业园".to_owned()),
        };
        enterprises.push(
            server::admin::create_enterprise(db, app.clock.as_ref(), &input)
                .await
                .unwrap(),
        );
    }
    let agencies = [seed.agency.clone(), seed.other_agency.clone()];
    let mut i = 0usize;
    while i < rows {
        let n = (rows - i).min(500);
        let mut sql = String::from(
            "INSERT INTO hazards_view (id, visit_id, enterprise_id, agency_id, township_id, location, description, category, grade, criterion, measure, deadline, current_deadline, responsible_person, state, created_at, closed_at, reported_at, under_supervision, photo_count, updated_at) VALUES ",
        );
        for k in 0..n {
            let j = i + k;
            let state = states[j % states.len()];
            let deadline = format!("2026-{:02}-{:02}", 1 + j % 12, 1 + j % 28);
            let created = T - (j as i64) * 60_000;
            let closed = if state == "closed" {
                (created + (j as i64 % 40) * 86_400_000).to_string()
            } else {
                "NULL".into()
            };
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{}','v','{}','{}','{}','l','d','fire','{}','','m','{deadline}','{deadline}','p','{state}',{created},{closed},NULL,0,1,0)",
                uuid::Uuid::new_v4(),
                enterprises[j % enterprises.len()],
                agencies[j % agencies.len()],
                seed.township,
                if j.is_multiple_of(10) { "major" } else { "general" },
            ));
        }
        match db {
            Db::Sqlite(s) => {
                let p = &s.pool;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(p)
                    .await
                    .unwrap();
            }
            Db::Postgres(p) => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
        i += n;
    }
    // What a production database has after autovacuum / a quiet moment.
    match db {
        Db::Sqlite(s) => {
            let p = &s.pool;
            sqlx::query("ANALYZE").execute(p).await.unwrap();
        }
        Db::Postgres(p) => {
            sqlx::query("VACUUM ANALYZE").execute(p).await.unwrap();
        }
    }
    let mut scope = enterprises.clone();
    scope.sort();
    let today = "2026-06-15".to_owned();
    let sql = server::api::dashboard::DashboardSql::new(scope.len());
    let scope_binds: Vec<String> = scope.clone();
    let overdue_binds: Vec<String> = scope.iter().cloned().chain([today]).collect();
    let queries = [
        ("tallies", sql.tallies.clone(), &scope_binds),
        ("states", sql.states.clone(), &scope_binds),
        ("overdue", sql.overdue.clone(), &overdue_binds),
        ("months", sql.months.clone(), &scope_binds),
    ];
    let mut out = serde_json::Map::new();
    // The overdue query's plan, to show which index each planner chose.
    let explain = match db {
        Db::Sqlite(_) => format!("EXPLAIN QUERY PLAN {}", sql.overdue),
        Db::Postgres(_) => format!("EXPLAIN {}", sql.overdue),
    };
    let mut plan: Vec<String> = Vec::new();
    match db {
        Db::Sqlite(s) => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
            for b in overdue_binds.iter() {
                query = query.bind(b.clone());
            }
            for row in query.fetch_all(&s.pool).await.unwrap() {
                plan.push(sqlx::Row::get::<String, _>(&row, 3));
            }
        }
        Db::Postgres(p) => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
            for b in overdue_binds.iter() {
                query = query.bind(b.clone());
            }
            for row in query.fetch_all(p).await.unwrap() {
                let line: String = sqlx::Row::get(&row, 0);
                // Index conditions carry the whole list of ids; the shape is what matters.
                plan.push(line.chars().take(120).collect());
            }
        }
    }
    eprintln!("overdue plan: {}", plan.join(" | "));
    out.insert("overdue_plan".into(), json!(plan));
    for (name, q, binds) in queries {
        let mut ms = Vec::new();
        let mut n_rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            macro_rules! run {
                ($p:expr) => {{
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(q.clone()));
                    for b in binds.iter() {
                        query = query.bind(b.clone());
                    }
                    n_rows = query.fetch_all($p).await.unwrap().len();
                }};
            }
            match db {
                Db::Sqlite(s) => run!(&s.pool),
                Db::Postgres(p) => run!(p),
            }
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out.insert(format!("{name}_ms_p95"), json!(pct(&ms, 0.95)));
        out.insert(format!("{name}_rows"), json!(n_rows));
    }
    // The whole request as the supervisor's browser makes it.
    let s = app.login(users::SUPERVISOR).await;
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let (status, d) = app.get(&s.token, "/api/v1/dashboard").await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(status.is_success());
        assert_eq!(
            d["total"].as_u64(),
            Some(rows as u64),
            "the dashboard counts every hazard"
        );
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out.insert("request_ms_p95".into(), json!(pct(&ms, 0.95)));
    out.insert("rows".into(), json!(rows));
    Value::Object(out)
}

/// Builds the bridge library and `bridgebench` in release and runs it; its figures as JSON.
fn bench_phone() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(&cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "build",
            "--release",
            "-p",
            "mobile-bridge",
            "--lib",
            "--bin",
            "bridgebench",
        ])
        .status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!("could not build bridgebench: phone figures skipped");
        return Value::Null;
    }
    let exe = std::env::current_exe().unwrap();
    let bridgebench = exe.with_file_name("bridgebench");
    let out = std::env::temp_dir().join(format!("bridgebench-{}.json", std::process::id()));
    let ran = std::process::Command::new(&bridgebench)
        .arg("--json")
        .arg(&out)
        .status();
    if !ran.is_ok_and(|s| s.success()) {
        eprintln!("bridgebench failed: phone figures skipped");
        return Value::Null;
    }
    let v = std::fs::read_to_string(&out)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(&out);
    v
}

/// The field simulator (issue #21's run: 8 phones, 100 edits each, no photos) on one backend:
/// its figures, whether its check passed, and on PostgreSQL the deadlocks counted in the
/// server's database. `Null` when the backend is not available.
/// One-edit syncs per second from `phones` concurrent phones through `instances` server
/// instances on one database (phone `p` talks to instance `p % instances`), each phone
/// editing its own slice of `n_docs` visits, with the phones' Automerge work prepared outside
/// the timed window as in [`bench_sync`]. The median of `passes` passes is the figure. `Null`
/// when the backend is not available (PostgreSQL without `TEST_DATABASE_URL`).
async fn bench_instances(
    backend: Backend,
    instances: usize,
    n_docs: usize,
    phones: usize,
    passes: usize,
) -> Value {
    let Some(app) = spawn_app(backend).await else {
        return Value::Null;
    };
    let seed = app.seed().await;
    let mut first = app.phone(users::INSPECTOR).await;
    let vids = create_visits(&seed, &mut first, n_docs);
    sync_bytes(&app, &mut first).await;
    let mut bases = vec![app.base.clone()];
    let mut others = Vec::new();
    for _ in 1..instances {
        let instance = app.another_instance().await;
        bases.push(instance.base.clone());
        others.push(instance);
    }
    let mut crowd = Vec::new();
    for p in 0..phones {
        let mut ph = app.phone(users::INSPECTOR3).await;
        sync_bytes(&app, &mut ph).await;
        let mine: Vec<VisitId> = vids.iter().copied().skip(p).step_by(phones).collect();
        crowd.push((ph, mine, bases[p % instances].clone()));
    }
    let client = reqwest::Client::new();
    let mut per_pass = Vec::new();
    for pass in 0..passes {
        let mut prepared = Vec::new();
        for (mut ph, mine, base) in crowd.drain(..) {
            let requests = prepare_edits(&mut ph, &mine, pass);
            prepared.push((ph, mine, base, requests));
        }
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (ph, mine, base, requests) in prepared {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut cursor = ph.replica.cursor;
                let mut answers = Vec::with_capacity(requests.len());
                for (mut req, heads) in requests {
                    req.cursor = cursor;
                    let r = client
                        .post(format!("{base}/api/v1/sync"))
                        .bearer_auth(&ph.session.token)
                        .header("content-type", protocol::MEDIA_TYPE)
                        .body(protocol::encode_request(&req))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "sync failed: {}", r.status());
                    let resp = protocol::decode_response(&r.bytes().await.unwrap()).unwrap();
                    assert!(resp.refused.is_empty());
                    cursor = resp.cursor;
                    answers.push((heads, resp));
                }
                (ph, mine, base, answers)
            }));
        }
        let mut n = 0;
        let mut answered = Vec::new();
        for t in tasks {
            let (ph, mine, base, answers) = t.await.unwrap();
            n += answers.len();
            answered.push((ph, mine, base, answers));
        }
        per_pass.push(n as f64 / t.elapsed().as_secs_f64());
        for (mut ph, mine, base, answers) in answered {
            for (heads, resp) in answers {
                ph.replica.apply(&heads, &resp).unwrap();
            }
            crowd.push((ph, mine, base));
        }
    }
    // Nothing lost: after a last sync every phone holds the server's copy of every document.
    for (ph, _, _) in crowd.iter_mut() {
        sync_bytes(&app, ph).await;
    }
    for (ph, _, _) in &crowd {
        for (id, d) in ph.replica.docs.iter().step_by(11) {
            let server = app.state.hub.load(*id).await.unwrap().unwrap();
            assert_eq!(d.doc.get_heads(), server.get_heads(), "document {id}");
        }
    }
    drop(others);
    let mut sorted = per_pass.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "instances": instances,
        "documents": n_docs,
        "phones": phones,
        "one_edit_syncs_per_second": pct(&sorted, 0.5),
        "per_pass": per_pass,
    })
}

async fn bench_fieldsim(backend: Backend, phones: usize, edits: usize) -> Value {
    let Some(app) = spawn_app(backend).await else {
        return Value::Null;
    };
    let accounts = tests::fieldsim::prepare_world(&app, phones).await.unwrap();
    let target = tests::fieldsim::Target {
        base: app.base.clone(),
        accounts,
        server: Some(tests::fieldsim::ServerHandle {
            state: app.state.clone(),
            runtime: tokio::runtime::Handle::current(),
        }),
    };
    let opts = tests::fieldsim::Options {
        phones,
        edits,
        seed: 6,
        photos: 0.0,
        quiet: true,
        ..Default::default()
    };
    let (figures, report) =
        tokio::task::spawn_blocking(move || tests::fieldsim::simulate(opts, target))
            .await
            .unwrap()
            .unwrap();
    let mut v = figures.to_json();
    v["check_passed"] = report.passed().into();
    v["checked"] = report.checked.into();
    app.state.db.close().await;
    if let Some(n) = app.postgres_deadlocks().await {
        v["deadlocks"] = n.into();
    }
    v
}

/// The phone's side of sync through the real bridge against a real server (SQLite), issue #13:
/// the first upload of 2,000 hazards (time, bytes up and down); a one-edit sync and an idle sync
/// on a phone holding 10,000 documents (medians of 21); a backlog of `backlog` documents, over the
/// server's 5,000 a request, syncing in batches (time and requests).
async fn bench_phone_sync(backlog: usize) -> Value {
    use mobile_bridge::InspectionClient;
    use mobile_bridge::records::{HazardInput, HazardPatch, VisitKindRecord};
    let app = std::sync::Arc::new(spawn_app(Backend::Sqlite).await.unwrap());
    let seed = app.seed().await;
    // The phone reads token expiry against its own clock: the server's must agree with it, or
    // every sync would first refresh its token.
    app.clock.set(jiff::Timestamp::now());
    let dir = tempfile::tempdir().unwrap();
    let base = app.base.clone();
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let phone = |name: &str, user: &str| {
            let c =
                InspectionClient::new(path.join(name).display().to_string(), base.clone()).unwrap();
            c.login(
                user.into(),
                tests::PASSWORD.into(),
                name.into(),
                "android".into(),
            )
            .unwrap();
            c.sync_now().unwrap();
            c
        };
        let input = |i: usize| HazardInput {
            location: format!("{}号车间", i % 40),
            description: format!("第{i}号隐患：配电柜未上锁，柜门破损，线缆裸露"),
            category: "electrical".into(),
            grade: mobile_bridge::records::GradeRecord::General,
            criterion: String::new(),
            measure: "加锁并张贴警示标识".into(),
            deadline: "2026-12-30".into(),
            responsible_person: "王师傅".into(),
            funds_yuan: None,
            emergency_plan: String::new(),
        };
        let capture = |c: &InspectionClient, n: usize| {
            let mut visit = String::new();
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                // A visit per hundred hazards, as a day's work.
                if i % 100 == 0 {
                    visit = c
                        .start_visit(
                            seed.enterprise.clone(),
                            VisitKindRecord::Routine,
                            "厂区".into(),
                        )
                        .unwrap();
                }
                ids.push(c.add_hazard(visit.clone(), input(i)).unwrap());
            }
            ids
        };
        let mut out = serde_json::Map::new();

        let a = phone("first-upload", users::INSPECTOR);
        capture(&a, 2_000);
        let t = Instant::now();
        let r = a.sync_now().unwrap();
        let took = t.elapsed().as_secs_f64() * 1e3;
        assert!(r.refused.is_empty());
        out.insert("first_upload_2000_ms".into(), took.into());
        out.insert("first_upload_2000_bytes_up".into(), r.bytes_up.into());
        out.insert("first_upload_2000_bytes_down".into(), r.bytes_down.into());
        out.insert("first_upload_2000_requests".into(), r.requests.into());
        drop(a);

        // Beside it, the server's share: the same kind of backlog from another device of the
        // same user, posted as one raw request (no phone store, no batching, no applying).
        let raw = phone("first-upload-raw", users::INSPECTOR);
        capture(&raw, 2_000);
        let mut pending = raw.store().pending().unwrap();
        let request = protocol::SyncRequest {
            cursor: raw.cursor().unwrap(),
            docs: pending
                .iter_mut()
                .map(mobile_bridge::store::PendingDoc::take_for_request)
                .collect(),
        };
        let token = raw
            .store()
            .session()
            .unwrap()
            .unwrap()
            .access_token
            .unwrap();
        let body = protocol::encode_request(&request);
        let t = Instant::now();
        let (status, _) = tokio::runtime::Handle::current().block_on(app.post_sync(&token, body));
        assert!(status.is_success(), "{status}");
        out.insert(
            "first_upload_2000_server_ms".into(),
            (t.elapsed().as_secs_f64() * 1e3).into(),
        );
        drop(raw);

        // A phone holding 10,000 documents (its own 8,000 plus the 2,000 above, all synced).
        let b = phone("holding", users::INSPECTOR2);
        let ids = capture(&b, 8_000);
        b.sync_now().unwrap();
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (mut one, mut idle) = (Vec::new(), Vec::new());
        for i in 0..21 {
            b.edit_hazard(
                ids[i * 97].clone(),
                HazardPatch {
                    location: Some(format!("东区{i}")),
                    ..Default::default()
                },
            )
            .unwrap();
            let t = Instant::now();
            b.sync_now().unwrap();
            one.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            b.sync_now().unwrap();
            idle.push(t.elapsed().as_secs_f64() * 1e3);
        }
        out.insert(
            "held_documents".into(),
            b.store().summaries(None, None).unwrap().len().into(),
        );
        out.insert("one_edit_sync_ms".into(), median(one).into());
        out.insert("idle_sync_ms".into(), median(idle).into());
        drop(b);

        let c = phone("backlog", users::INSPECTOR3);
        capture(&c, backlog);
        let t = Instant::now();
        let r = c.sync_now().unwrap();
        out.insert("backlog_documents".into(), r.sent.into());
        out.insert(
            "backlog_ms".into(),
            (t.elapsed().as_secs_f64() * 1e3).into(),
        );
        out.insert("backlog_requests".into(), r.requests.into());
        out.insert(
            "backlog_left".into(),
            c.unsynced_work().unwrap().documents.into(),
        );
        Value::Object(out)
    })
    .await
    .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, path] = args.as_slice()
        && flag == "--thumbnail-child"
    {
        return thumbnail_child(path);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let out_path = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "bench.json".into());
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_owned).collect());
    let want = |section: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == section));
    let deadline = Instant::now() + Duration::from_secs(900);
    let (rounds, mut phones, rows, runs, passes) = if quick {
        (50, 4, 10_000, 10, 2)
    } else {
        (300, 8, 100_000, 50, 5)
    };
    if let Some(n) = args
        .iter()
        .position(|a| a == "--phones")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=256).contains(n))
    {
        phones = n;
    }

    let (mut s200, mut s1000, mut mem, mut thumb) =
        (Value::Null, Value::Null, Value::Null, Value::Null);
    let (mut dash_sqlite, mut dash_pg, mut phone) = (Value::Null, Value::Null, Value::Null);
    let (mut sim_sqlite, mut sim_pg) = (Value::Null, Value::Null);
    let mut phone_sync = Value::Null;
    let (mut inst_sqlite, mut inst_pg1, mut inst_pg3) = (Value::Null, Value::Null, Value::Null);
    if want("instances") {
        let (docs, passes) = if quick { (200, 3) } else { (1000, 5) };
        eprintln!("one-edit syncs, SQLite, one instance…");
        inst_sqlite = bench_instances(Backend::Sqlite, 1, docs, phones, passes).await;
        eprintln!("one-edit syncs, PostgreSQL, one instance…");
        inst_pg1 = bench_instances(Backend::Postgres, 1, docs, phones, passes).await;
        eprintln!("one-edit syncs, PostgreSQL, three instances…");
        inst_pg3 = bench_instances(Backend::Postgres, 3, docs, phones, passes).await;
    }
    if want("fieldsim") {
        let edits = if quick { 30 } else { 100 };
        eprintln!("field simulator on SQLite…");
        sim_sqlite = bench_fieldsim(Backend::Sqlite, 8, edits).await;
        eprintln!("field simulator on PostgreSQL…");
        sim_pg = bench_fieldsim(Backend::Postgres, 8, edits).await;
    }
    if want("sync") {
        eprintln!("sync, 200 documents…");
        s200 = bench_sync(200, phones, rounds, passes).await;
        if Instant::now() < deadline {
            eprintln!("sync, 1000 documents…");
            s1000 = bench_sync(1000, phones, rounds, passes).await;
        }
    }
    if want("memory") {
        eprintln!("server memory per visit document…");
        mem = bench_memory(if quick { 200 } else { 1000 }).await;
    }
    if want("thumbnail") {
        eprintln!("thumbnail…");
        thumb = bench_thumbnail(if quick { 3 } else { 9 });
    }
    if want("dashboard") {
        eprintln!("dashboard queries on SQLite…");
        let sqlite_app = spawn_app(Backend::Sqlite).await.unwrap();
        dash_sqlite = bench_dashboard(&sqlite_app, rows, runs).await;
        if let Some(app) = spawn_app(Backend::Postgres).await {
            eprintln!("dashboard queries on PostgreSQL…");
            dash_pg = bench_dashboard(&app, rows, runs).await;
        }
    }
    if want("phone") {
        eprintln!("phone: bridge library and store…");
        phone = bench_phone();
    }
    if want("phonesync") {
        eprintln!("phone sync through the bridge…");
        phone_sync = bench_phone_sync(if quick { 6_000 } else { 20_000 }).await;
    }
    let figures = json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "sync_200": s200,
        "sync_1000": s1000,
        "server_memory": mem,
        "thumbnail_12mp_to_320": thumb,
        "dashboard_sqlite": dash_sqlite,
        "dashboard_postgres": dash_pg,
        "phone": phone,
        "phone_sync": phone_sync,
        "fieldsim_sqlite": sim_sqlite,
        "fieldsim_postgres": sim_pg,
        "instances_sqlite_1": inst_sqlite,
        "instances_postgres_1": inst_pg1,
        "instances_postgres_3": inst_pg3,
    });
    std::fs::write(&out_path, serde_json::to_string_pretty(&figures).unwrap()).unwrap();

    let f = |v: &Value| match v {
        Value::Number(n) => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let rows_out = [
        (
            "one-edit syncs/s, 200 docs",
            &figures["sync_200"]["one_edit_syncs_per_second"],
            "≥ 3000",
        ),
        (
            "one-edit syncs/s, 1000 docs",
            &figures["sync_1000"]["one_edit_syncs_per_second"],
            "≥ 3000",
        ),
        (
            "  phones editing in this process, 200 docs",
            &figures["sync_200"]["one_edit_syncs_per_second_phones_inline"],
            "",
        ),
        (
            "  phones editing in this process, 1000 docs",
            &figures["sync_1000"]["one_edit_syncs_per_second_phones_inline"],
            "",
        ),
        (
            "  server CPU ms per sync, 1000 docs",
            &figures["sync_1000"]["cpu_ms_per_sync"],
            "",
        ),
        (
            "round trip p50 ms (1000 docs)",
            &figures["sync_1000"]["round_trip_ms_p50"],
            "≤ 10",
        ),
        (
            "round trip p90 ms (1000 docs)",
            &figures["sync_1000"]["round_trip_ms_p90"],
            "",
        ),
        (
            "body bytes per one-field edit",
            &figures["sync_1000"]["one_field_edit_body_bytes_median"],
            "≤ 240",
        ),
        (
            "  Automerge change bytes",
            &figures["sync_1000"]["one_field_edit_change_bytes"],
            "",
        ),
        (
            "initial sync of 1000 visits, ms",
            &figures["sync_1000"]["initial_sync_ms"],
            "≤ 500",
        ),
        (
            "server KiB per loaded visit",
            &figures["server_memory"]["kib_per_document"],
            "≤ 64",
        ),
        (
            "thumbnail 12 MP → 320 px, ms",
            &figures["thumbnail_12mp_to_320"]["ours_ms_median"],
            "≤ vips",
        ),
        (
            "  vipsthumbnail, ms",
            &figures["thumbnail_12mp_to_320"]["vipsthumbnail_ms_median"],
            "",
        ),
        (
            "  thumbnail peak memory growth, MiB",
            &figures["thumbnail_12mp_to_320"]["ours_peak_rss_growth_mib"],
            "",
        ),
        (
            "dashboard open + by township p95 ms, SQLite",
            &figures["dashboard_sqlite"]["tallies_ms_p95"],
            "≤ 20",
        ),
        (
            "dashboard by state p95 ms, SQLite",
            &figures["dashboard_sqlite"]["states_ms_p95"],
            "≤ 20",
        ),
        (
            "dashboard overdue p95 ms, SQLite",
            &figures["dashboard_sqlite"]["overdue_ms_p95"],
            "≤ 20",
        ),
        (
            "  whole dashboard request p95 ms, SQLite",
            &figures["dashboard_sqlite"]["request_ms_p95"],
            "",
        ),
        (
            "dashboard open + by township p95 ms, PostgreSQL",
            &figures["dashboard_postgres"]["tallies_ms_p95"],
            "≤ 20",
        ),
        (
            "dashboard by state p95 ms, PostgreSQL",
            &figures["dashboard_postgres"]["states_ms_p95"],
            "≤ 20",
        ),
        (
            "dashboard overdue p95 ms, PostgreSQL",
            &figures["dashboard_postgres"]["overdue_ms_p95"],
            "≤ 20",
        ),
        (
            "  whole dashboard request p95 ms, PostgreSQL",
            &figures["dashboard_postgres"]["request_ms_p95"],
            "",
        ),
        (
            "phone: open store of 10,000 hazards, ms",
            &figures["phone"]["store_open_ms"],
            "",
        ),
        (
            "  open and list them all, ms",
            &figures["phone"]["store_open_and_list_ms"],
            "",
        ),
        (
            "phone: bridge library, stripped bytes",
            &figures["phone"]["cdylib_stripped_bytes"],
            "",
        ),
        (
            "phone: ingest one 12 MP photo, median ms",
            &figures["phone"]["photo_12mp_ingest_ms"],
            "≤ 150",
        ),
        (
            "  full decode through image (before), ms",
            &figures["phone"]["photo_12mp_ingest_baseline_ms"],
            "",
        ),
        (
            "phone: first upload of 2,000 hazards, ms",
            &figures["phone_sync"]["first_upload_2000_ms"],
            "≤ 1000",
        ),
        (
            "  the server's share (one raw request), ms",
            &figures["phone_sync"]["first_upload_2000_server_ms"],
            "",
        ),
        (
            "  bytes up",
            &figures["phone_sync"]["first_upload_2000_bytes_up"],
            "",
        ),
        (
            "  bytes down",
            &figures["phone_sync"]["first_upload_2000_bytes_down"],
            "≤ 10 % of up",
        ),
        (
            "phone holding 10,000 docs: one-edit sync ms",
            &figures["phone_sync"]["one_edit_sync_ms"],
            "≤ 5",
        ),
        (
            "  idle sync ms",
            &figures["phone_sync"]["idle_sync_ms"],
            "≤ 2",
        ),
        (
            "phone: backlog documents synced in batches",
            &figures["phone_sync"]["backlog_documents"],
            "",
        ),
        (
            "  requests / ms / left",
            &json!(format!(
                "{} / {:.0} / {}",
                figures["phone_sync"]["backlog_requests"],
                figures["phone_sync"]["backlog_ms"].as_f64().unwrap_or(0.0),
                figures["phone_sync"]["backlog_left"]
            )),
            "0 left",
        ),
        (
            "one-edit syncs/s, SQLite, 1 instance",
            &figures["instances_sqlite_1"]["one_edit_syncs_per_second"],
            "",
        ),
        (
            "one-edit syncs/s, PostgreSQL, 1 instance",
            &figures["instances_postgres_1"]["one_edit_syncs_per_second"],
            "",
        ),
        (
            "one-edit syncs/s, PostgreSQL, 3 instances",
            &figures["instances_postgres_3"]["one_edit_syncs_per_second"],
            "≥ 3000",
        ),
    ];
    println!("{:<42} {:>12}  target", "figure", "value");
    for (name, v, target) in rows_out {
        println!("{name:<42} {:>12}  {target}", f(v));
    }
    if want("fieldsim") {
        // Side by side: the same scenario (seed, phones, edits) on both backends.
        let (s, p) = (&figures["fieldsim_sqlite"], &figures["fieldsim_postgres"]);
        let ratio = match (
            s["edits_per_sync_s"].as_f64(),
            p["edits_per_sync_s"].as_f64(),
        ) {
            (Some(s), Some(p)) if s > 0.0 => Value::from(p / s),
            _ => Value::Null,
        };
        println!();
        println!(
            "{:<42} {:>12} {:>12}  target",
            "field simulator (8 phones)", "SQLite", "PostgreSQL"
        );
        for (name, key, target) in [
            ("check passed", "check_passed", "both"),
            ("edits/s during sync", "edits_per_sync_s", "PG ≥ ½ SQLite"),
            ("sync_now p50 ms", "sync_p50_ms", ""),
            ("sync_now p90 ms", "sync_p90_ms", "PG < 250"),
            ("sync_now max ms", "sync_max_ms", ""),
            ("PostgreSQL deadlocks", "deadlocks", "0"),
        ] {
            println!("{name:<42} {:>12} {:>12}  {target}", f(&s[key]), f(&p[key]));
        }
        println!("{:<42} {:>25}", "PostgreSQL / SQLite edits/s", f(&ratio));
    }
    println!("figures written to {out_path}");
}
