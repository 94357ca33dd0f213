//! The inspection platform's server: accounts, devices, scopes and the HTTP API, over SQLite or
//! PostgreSQL.
//!
//! Startup is a library so tests drive it: [`build_state`] opens the database and applies migrations,
//! [`router`] builds the routes with their layers, and [`serve`] runs them on a listener the caller
//! bound until a shutdown future resolves.

// The OpenAPI document is one `json!` literal (api/openapi.rs), deeper than the default limit.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod auth;
pub mod backup;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod import;
pub mod ledger;
pub mod listen;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod photos;
pub mod projection;
pub mod reconcile;
pub mod scope;
pub mod sdk;
pub mod statistics;
pub mod table;
pub mod throttle;
pub mod users;
pub mod web;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;

pub use crate::clock::{Clock, SystemClock, TestClock};
pub use crate::config::Config;
pub use crate::db::Db;

pub use crate::error::ApiError;
/// The memory allocator the server's binaries install (`#[global_allocator]`): mimalloc. Under
/// the sync load glibc's malloc took ~18% of all CPU, in per-thread arena locking and
/// consolidation; mimalloc's thread-local free lists cost a fraction of that (ADR 0007).
/// Re-exported so that every binary that runs the server (this crate's, the bench, the field
/// simulator) installs the same one.
pub use mimalloc::MiMalloc as Allocator;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// The sync hub: validation, durable change log, hot documents in memory.
    pub hub: Arc<sync_core::engine::Hub<Db>>,
    /// The photo store under `<data_dir>/photos`.
    pub photos: photos::PhotoStore,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// Wakes the read-model reconciler when a projection failed.
    pub reconciler: Arc<reconcile::Reconciler>,
    /// Failed logins per account and client address.
    pub login_throttle: Arc<throttle::LoginThrottle>,
    /// Connections open and turned away ([`listen`]).
    pub connections: Arc<listen::ConnGauge>,
    /// Counters for `/metrics` ([`metrics`]).
    pub metrics: Arc<metrics::Metrics>,
    /// Documents that changed, for the pages' event streams ([`changes`]).
    pub changes: Arc<changes::Changes>,
    /// This process among the server instances sharing a database: the holder named in the
    /// leases of background work ([`runs_here`]).
    pub instance: Arc<str>,
}

/// Whether this instance should run background work `name` now. Always on SQLite (one server
/// per file). On PostgreSQL, several instances may share the database: the work runs where its
/// lease is held, taken or renewed here for `ttl` (a few of the work's intervals, so that a
/// busy holder keeps it and a dead one loses it soon). A database failure answers `false`:
/// the work waits for the next turn rather than running twice.
pub async fn runs_here(state: &AppState, name: &str, ttl: std::time::Duration) -> bool {
    if !state.db.is_shared() {
        return true;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    match state
        .db
        .hold_lease(name, &state.instance, now_ms, ttl_ms)
        .await
    {
        Ok(held) => held,
        Err(error) => {
            tracing::warn!(%error, lease = name, "cannot take the lease of background work");
            false
        }
    }
}

/// Opens the configured database (creating the data directory and SQLite file if needed), applies
/// migrations, and returns the state with the system clock.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    build_state_with_clock(config, Arc::new(SystemClock)).await
}

/// [`build_state`] with a chosen clock, for tests.
pub async fn build_state_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    http::parse_cors_origins(&config.cors_origins)?;
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "创建数据目录失败 / cannot create data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let db = Db::connect(&config.effective_database_url()).await?;
    let hub = Arc::new(sync_core::engine::Hub::new(
        db.clone(),
        sync_core::engine::HubLimits::default(),
    ));
    let photos = photos::PhotoStore::open(
        config.data_dir.join("photos"),
        photos::PhotoConfig {
            max_unfinished_bytes_per_user: config.unfinished_upload_bytes_per_user,
            ..photos::PhotoConfig::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "照片存储无法打开 / cannot open the photo store in {}",
            config.data_dir.display()
        )
    })?;
    Ok(AppState {
        hub,
        photos,
        db,
        clock,
        config: Arc::new(config),
        reconciler: Arc::default(),
        login_throttle: Arc::default(),
        connections: Arc::default(),
        metrics: Arc::default(),
        changes: Arc::default(),
        instance: uuid::Uuid::new_v4().to_string().into(),
    })
}

/// All routes with their layers.
///
/// Routes added later (sync, uploads) go in [`api::routes`] or are merged here before the layers; a
/// streaming upload route raises its own body limit with `DefaultBodyLimit::max`.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::serve))
        .nest("/api/v1", api::routes())
        .merge(web::page_routes())
        .fallback(not_found);
    let routes = routes
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sdk::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_answers,
        ));
    http::apply_layers(routes, &state.config).with_state(state)
}

/// Counts every answer by status class for `/metrics`.
async fn count_answers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    state.metrics.answered(response.status());
    response
}

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> ApiError {
    ApiError::not_found("没有这个地址", "no such route")
}

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in flight finish.
/// The read-model reconciler ([`reconcile::spawn`]) and the sweeper of abandoned partial photo
/// uploads ([`photos::spawn_upload_sweeper`]) run meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let reconciler = reconcile::spawn(state.clone(), state.config.reconcile_interval);
    let webhooks = webhooks::spawn(state.clone());
    let idle = state.config.upload_idle_expiry;
    let sweeper = photos::spawn_upload_sweeper(
        state.photos.clone(),
        idle,
        (idle / 4).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(3600),
        ),
    );
    let limits = listen::ConnLimits::of(&state.config, listen::descriptor_limit());
    let gauge = state.connections.clone();
    let (state_db, instance) = (state.db.clone(), state.instance.clone());
    let served = listen::serve(listener, router(state), limits, gauge, shutdown)
        .await
        .context("HTTP server failed");
    reconciler.abort();
    webhooks.abort();
    sweeper.abort();
    if state_db.is_shared() {
        for lease in [reconcile::LEASE, webhooks::LEASE] {
            if let Err(error) = state_db.release_lease(lease, &instance).await {
                tracing::warn!(%error, lease, "cannot give the lease up");
            }
        }
    }
    served
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("正在停止 / shutting down");
}
