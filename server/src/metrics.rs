//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4), and `GET /readyz`.
//!
//! Counters are atomics bumped where things happen (syncs, refusals, photos, HTTP answers);
//! gauges are read when scraped (connections, database pool, documents whose read model is
//! behind, unfinished photo uploads). No dependency: the format is a few lines of text.
//!
//! `/metrics` answers 127.0.0.1, ::1 and the `health_check_from` addresses only (the monitoring
//! network); anyone else gets 404, as for a route that does not exist.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Upper bounds (seconds) of the sync latency histogram's buckets.
const SYNC_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram with fixed buckets; `sum` in microseconds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; SYNC_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in SYNC_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }
}

/// The counters the server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    sync_ok: AtomicU64,
    sync_failed: AtomicU64,
    sync_seconds: Histogram,
    changes_accepted: AtomicU64,
    documents_applied: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    photos_stored: AtomicU64,
    photo_bytes_stored: AtomicU64,
    thumbnails_made: AtomicU64,
    projection_failures: AtomicU64,
    webhook_ok: AtomicU64,
    webhook_failed: AtomicU64,
    http: [AtomicU64; 5],
}

impl Metrics {
    /// A sync answered: how long it took, what it stored and what it refused (by reason).
    pub fn sync_answered(
        &self,
        took: Duration,
        applied: &[sync_core::engine::Applied],
        refused: &[sync_core::protocol::DocRefusal],
    ) {
        self.sync_ok.fetch_add(1, Ordering::Relaxed);
        self.sync_seconds.observe(took);
        self.documents_applied
            .fetch_add(applied.len() as u64, Ordering::Relaxed);
        self.changes_accepted.fetch_add(
            applied.iter().map(|a| a.new_changes as u64).sum(),
            Ordering::Relaxed,
        );
        if !refused.is_empty()
            && let Ok(mut map) = self.refusals.lock()
        {
            for r in refused {
                for reason in &r.reasons {
                    *map.entry(reason.code.as_str()).or_default() += 1;
                }
            }
        }
    }

    /// A sync that failed with an error (not a refusal).
    pub fn sync_failed(&self, took: Duration) {
        self.sync_failed.fetch_add(1, Ordering::Relaxed);
        self.sync_seconds.observe(took);
    }

    /// A photo verified and stored, with its display copy and thumbnail.
    pub fn photo_stored(&self, bytes: u64) {
        self.photos_stored.fetch_add(1, Ordering::Relaxed);
        self.photo_bytes_stored.fetch_add(bytes, Ordering::Relaxed);
        self.thumbnails_made.fetch_add(1, Ordering::Relaxed);
    }

    /// A projection that failed (the reconciler repairs it).
    pub fn projection_failed(&self) {
        self.projection_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook delivery attempted.
    pub fn webhook_attempted(&self, delivered: bool) {
        if delivered {
            self.webhook_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.webhook_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An HTTP answer with `status`.
    pub fn answered(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.http[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn one(value: f64) -> Vec<(String, f64)> {
    vec![(String::new(), value)]
}

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// The exposition text: the counters, and the gauges read now.
pub async fn render(state: &AppState) -> String {
    let m = &state.metrics;
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "inspect_sync_requests_total",
        "counter",
        "Sync round trips, by outcome (a refused batch is part of an ok answer).",
        &[
            ("{outcome=\"ok\"}".into(), load(&m.sync_ok)),
            ("{outcome=\"error\"}".into(), load(&m.sync_failed)),
        ],
    );
    let mut buckets: Vec<(String, f64)> = SYNC_BUCKETS
        .iter()
        .zip(&m.sync_seconds.buckets)
        .map(|(le, n)| (format!("_bucket{{le=\"{le}\"}}"), load(n)))
        .collect();
    buckets.push(("_bucket{le=\"+Inf\"}".into(), load(&m.sync_seconds.count)));
    let _ = writeln!(
        out,
        "# HELP inspect_sync_duration_seconds Time to answer a sync, storing and projecting included."
    );
    let _ = writeln!(out, "# TYPE inspect_sync_duration_seconds histogram");
    for (suffix, v) in &buckets {
        let _ = writeln!(out, "inspect_sync_duration_seconds{suffix} {v}");
    }
    let _ = writeln!(
        out,
        "inspect_sync_duration_seconds_sum {}",
        load(&m.sync_seconds.sum_micros) / 1e6
    );
    let _ = writeln!(
        out,
        "inspect_sync_duration_seconds_count {}",
        load(&m.sync_seconds.count)
    );
    family(
        &mut out,
        "inspect_sync_changes_accepted_total",
        "counter",
        "Changes accepted and stored by syncs.",
        &one(load(&m.changes_accepted)),
    );
    family(
        &mut out,
        "inspect_sync_documents_applied_total",
        "counter",
        "Documents changed by syncs.",
        &one(load(&m.documents_applied)),
    );
    let refusals: Vec<(String, f64)> = m
        .refusals
        .lock()
        .map(|map| {
            map.iter()
                .map(|(code, n)| (format!("{{reason=\"{code}\"}}"), *n as f64))
                .collect()
        })
        .unwrap_or_default();
    family(
        &mut out,
        "inspect_sync_refusals_total",
        "counter",
        "Refused changes or batches, by reason.",
        &refusals,
    );
    family(
        &mut out,
        "inspect_photos_stored_total",
        "counter",
        "Photos verified and stored.",
        &one(load(&m.photos_stored)),
    );
    family(
        &mut out,
        "inspect_photo_bytes_stored_total",
        "counter",
        "Bytes of the photo originals stored.",
        &one(load(&m.photo_bytes_stored)),
    );
    family(
        &mut out,
        "inspect_thumbnails_total",
        "counter",
        "Display copies and thumbnails made.",
        &one(load(&m.thumbnails_made)),
    );
    family(
        &mut out,
        "inspect_projection_failures_total",
        "counter",
        "Read-model projections that failed (repaired by the reconciler).",
        &one(load(&m.projection_failures)),
    );
    family(
        &mut out,
        "inspect_webhook_attempts_total",
        "counter",
        "Webhook delivery attempts, by outcome.",
        &[
            ("{outcome=\"delivered\"}".into(), load(&m.webhook_ok)),
            ("{outcome=\"failed\"}".into(), load(&m.webhook_failed)),
        ],
    );
    match state.db.webhook_backlog().await {
        Ok(n) => family(
            &mut out,
            "inspect_webhook_deliveries_pending",
            "gauge",
            "Webhook deliveries not yet delivered nor given up.",
            &one(n as f64),
        ),
        Err(e) => tracing::warn!(error = %e, "metrics: counting webhook deliveries failed"),
    }
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    family(
        &mut out,
        "inspect_http_responses_total",
        "counter",
        "HTTP answers, by status class.",
        &classes
            .iter()
            .zip(&m.http)
            .map(|(c, n)| (format!("{{class=\"{c}\"}}"), load(n)))
            .collect::<Vec<_>>(),
    );
    let conn = &state.connections;
    family(
        &mut out,
        "inspect_connections",
        "gauge",
        "Client connections being served, by slot.",
        &[
            ("{slot=\"ordinary\"}".into(), conn.open() as f64),
            ("{slot=\"reserve\"}".into(), conn.in_reserve() as f64),
        ],
    );
    family(
        &mut out,
        "inspect_connections_refused_total",
        "counter",
        "Connections closed on arrival because every slot was taken.",
        &one(conn.refused() as f64),
    );
    let (size, idle) = state.db.pool_use();
    family(
        &mut out,
        "inspect_db_pool_connections",
        "gauge",
        "Database pool connections, by state.",
        &[
            ("{state=\"idle\"}".into(), idle as f64),
            (
                "{state=\"in_use\"}".into(),
                (size as usize).saturating_sub(idle) as f64,
            ),
        ],
    );
    match state.db.documents_behind().await {
        Ok(n) => family(
            &mut out,
            "inspect_read_models_behind",
            "gauge",
            "Documents whose read model is behind them (the reconciler's queue).",
            &one(n as f64),
        ),
        Err(e) => tracing::warn!(error = %e, "metrics: counting documents behind failed"),
    }
    match state.photos.unfinished_uploads().await {
        Ok(n) => family(
            &mut out,
            "inspect_photo_uploads_unfinished",
            "gauge",
            "Photo uploads begun and not finished.",
            &one(n as f64),
        ),
        Err(e) => tracing::warn!(error = %e, "metrics: counting unfinished uploads failed"),
    }
    out
}

/// 127.0.0.1, ::1 and the configured monitoring addresses (not the whole loopback range: the
/// same rule as the reserve connection slots of [`crate::listen`]).
fn may_scrape(allowed: &[std::net::IpAddr], peer: std::net::IpAddr) -> bool {
    let peer = match peer {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, std::net::IpAddr::V4),
        v4 => v4,
    };
    peer == std::net::Ipv4Addr::LOCALHOST
        || peer == std::net::Ipv6Addr::LOCALHOST
        || allowed.contains(&peer)
}

/// `GET /metrics`.
pub async fn serve(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
) -> Result<Response, ApiError> {
    if !may_scrape(&state.config.health_check_from, peer.ip()) {
        return Err(ApiError::not_found("没有这个地址", "no such route"));
    }
    let mut response = render(&state).await.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /readyz`: 200 when the database answers and the photo store can be written, else 503
/// naming what failed. For load balancers: an instance that is up but cannot serve is taken out.
pub async fn readyz(State(state): State<AppState>) -> Response {
    // What failed is logged; the answer names only which part, not its insides.
    let database = match tokio::time::timeout(Duration::from_secs(5), state.db.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: database failed");
            "unavailable"
        }
        Err(_) => "timed out",
    };
    let photos = match tokio::time::timeout(Duration::from_secs(5), state.photos.probe()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: photo store failed");
            "unavailable"
        }
        Err(_) => "timed out",
    };
    let ready = database == "ok" && photos == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "ready": ready,
            "database": database,
            "photo_store": photos,
        })),
    )
        .into_response()
}
