//! Events out: webhooks per organisation, and the reminders time derives (ADR 0013).
//!
//! Every hazard event that took effect becomes a row of `webhook_events` in the projection's
//! own transaction ([`crate::projection`]), and a delivery to every webhook of the hazard's
//! enterprise, agency and township ([`FAN_OUT_HAZARD`]). What time derives (overdue, a deadline
//! near, a major hazard not reported in time, evidence or an extension request waiting for an
//! answer) is added by [`derive_timed`] the same way, once per hazard and date. Deliveries are
//! POSTed by [`spawn`]'s loop, signed with HMAC-SHA256 over `<timestamp>.<body>`, and retried
//! with doubling back-off until a 2xx or [`MAX_ATTEMPTS`]; each attempt is in the delivery log
//! an organisation's admin reads (`GET /api/v1/webhooks/deliveries`).
//!
//! Webhooks are registered on the command line (`server admin add-webhook`): the server posts
//! to whatever address is registered, so only an operator may choose one.

use std::time::Duration;

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::auth::AuthUser;
use crate::clock::to_millis;
use crate::db::plan::{Arg, Plan};
use crate::db::{Db, DbError, DbResult, with_pool};
use crate::error::{ApiError, Json};
use crate::model::Role;
use crate::{AppState, scope};

/// Attempts before a delivery is given up (about a day and a half of back-off at the default
/// 30 s base, capped at an hour between attempts).
pub const MAX_ATTEMPTS: i64 = 40;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long an attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries attempted per pass, and at once.
const PER_PASS: i64 = 64;
const AT_ONCE: usize = 8;

/// Deliveries of a hazard's events to the webhooks that existed when each event was seen.
pub const FAN_OUT_HAZARD: &str = "INSERT INTO webhook_deliveries (hazard_id, event_id, webhook_id, next_attempt_at) \
     SELECT e.hazard_id, e.event_id, w.id, e.created_at FROM webhook_events e \
     JOIN webhooks w ON w.org_id IN (e.enterprise_id, e.agency_id, e.township_id) \
     WHERE e.hazard_id = $1 AND w.disabled_at IS NULL AND w.created_at <= e.created_at \
     ON CONFLICT DO NOTHING";

/// The same for the events a pass of [`derive_timed`] created (at `$1`).
const FAN_OUT_CREATED_AT: &str = "INSERT INTO webhook_deliveries (hazard_id, event_id, webhook_id, next_attempt_at) \
     SELECT e.hazard_id, e.event_id, w.id, e.created_at FROM webhook_events e \
     JOIN webhooks w ON w.org_id IN (e.enterprise_id, e.agency_id, e.township_id) \
     WHERE e.created_at = $1 AND w.disabled_at IS NULL AND w.created_at <= e.created_at \
     ON CONFLICT DO NOTHING";

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `X-Inspect-Signature` of a delivery: `sha256=` and the hex HMAC of
/// `<timestamp>.<body>` under the webhook's secret. A receiver recomputes it and compares in
/// constant time, and refuses timestamps far from its clock (replays).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

/// A registered webhook, as its organisation's admins see it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

/// Checks a webhook address: http or https, a host, at most 2,000 characters.
pub fn check_url(url: &str) -> anyhow::Result<reqwest::Url> {
    if url.len() > 2000 {
        anyhow::bail!("地址过长 / the address is longer than 2,000 characters");
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("地址无效 / not a valid address: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        anyhow::bail!(
            "地址须以 http:// 或 https:// 开头并含主机名 / the address must be http(s) with a host"
        );
    }
    Ok(parsed)
}

/// Registers a webhook for organisation `org_id`; returns its id and its secret (shown once).
pub async fn register(
    db: &Db,
    now: jiff::Timestamp,
    org_id: &str,
    url: &str,
) -> anyhow::Result<(String, String)> {
    check_url(url)?;
    if db.organisation_kind(org_id).await?.is_none() {
        anyhow::bail!("组织 {org_id} 不存在 / no organisation {org_id}");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let secret = {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let mut plan = Plan::default();
    plan.push(
        "INSERT INTO webhooks (id, org_id, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            Arg::from(&id),
            Arg::from(org_id),
            Arg::from(url),
            Arg::from(&secret),
            Arg::from(to_millis(now)),
        ],
    );
    plan.run(db).await?;
    Ok((id, secret))
}

/// Stops deliveries to a webhook (those pending are given up).
pub async fn disable(db: &Db, now: jiff::Timestamp, id: &str) -> anyhow::Result<()> {
    let mut plan = Plan::default();
    plan.push(
        "UPDATE webhooks SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
        vec![Arg::from(id), Arg::from(to_millis(now))],
    );
    plan.push(
        "UPDATE webhook_deliveries SET failed_at = $2, last_error = 'webhook disabled' \
         WHERE webhook_id = $1 AND delivered_at IS NULL AND failed_at IS NULL",
        vec![Arg::from(id), Arg::from(to_millis(now))],
    );
    plan.run(db).await?;
    Ok(())
}

/// Adds the events time derives, as of `now` (`today` its China date), with their deliveries.
/// Each is added once (its id carries the date it concerns), so a pass run again, or by another
/// instance, adds nothing.
pub async fn derive_timed(
    db: &Db,
    now_ms: i64,
    today: jiff::civil::Date,
    near_days: i64,
    report_window_ms: i64,
) -> DbResult<()> {
    let soon = today
        .checked_add(jiff::Span::new().days(near_days))
        .unwrap_or(today)
        .to_string();
    let today = today.to_string();
    let day_ms: i64 = 24 * 3600 * 1000;
    let mut plan = Plan::default();
    // Overdue: the rectification is owed and its deadline has passed.
    plan.push(
        "INSERT INTO webhook_events (hazard_id, event_id, kind, enterprise_id, agency_id, township_id, detail, at, author, created_at) \
         SELECT h.id, 'overdue:' || h.current_deadline, 'hazard.overdue', h.enterprise_id, h.agency_id, h.township_id, \
         '{\"deadline\":\"' || h.current_deadline || '\"}', $2, '', $2 \
         FROM hazards_view h WHERE h.state IN ('open', 'notified', 'in_progress') AND h.current_deadline < $1 \
         ON CONFLICT (hazard_id, event_id) DO NOTHING",
        vec![Arg::from(today.clone()), Arg::from(now_ms)],
    );
    // A deadline within `near_days`.
    plan.push(
        "INSERT INTO webhook_events (hazard_id, event_id, kind, enterprise_id, agency_id, township_id, detail, at, author, created_at) \
         SELECT h.id, 'deadline_near:' || h.current_deadline, 'reminder.deadline_near', h.enterprise_id, h.agency_id, h.township_id, \
         '{\"deadline\":\"' || h.current_deadline || '\"}', $3, '', $3 \
         FROM hazards_view h WHERE h.state IN ('open', 'notified', 'in_progress') \
         AND h.current_deadline >= $1 AND h.current_deadline <= $2 \
         ON CONFLICT (hazard_id, event_id) DO NOTHING",
        vec![Arg::from(today), Arg::from(soon), Arg::from(now_ms)],
    );
    // Evidence submitted a day ago or more and not verified yet.
    plan.push(
        "INSERT INTO webhook_events (hazard_id, event_id, kind, enterprise_id, agency_id, township_id, detail, at, author, created_at) \
         SELECT h.id, 'awaiting_verification:' || ev.event_id, 'reminder.awaiting_verification', h.enterprise_id, h.agency_id, h.township_id, \
         '{}', $1, '', $1 \
         FROM hazards_view h JOIN hazard_events_view ev ON ev.hazard_id = h.id \
         WHERE h.state = 'submitted' AND ev.kind = 'rectification_submitted' AND ev.ignored IS NULL AND ev.at <= $2 \
         AND ev.position = (SELECT MAX(l.position) FROM hazard_events_view l \
             WHERE l.hazard_id = h.id AND l.kind = 'rectification_submitted' AND l.ignored IS NULL) \
         ON CONFLICT (hazard_id, event_id) DO NOTHING",
        vec![Arg::from(now_ms), Arg::from(now_ms - day_ms)],
    );
    // An extension requested a day ago or more that nobody answered.
    plan.push(
        "INSERT INTO webhook_events (hazard_id, event_id, kind, enterprise_id, agency_id, township_id, detail, at, author, created_at) \
         SELECT h.id, 'extension_pending:' || ev.event_id, 'reminder.extension_pending', h.enterprise_id, h.agency_id, h.township_id, \
         ev.detail, $1, '', $1 \
         FROM hazards_view h JOIN hazard_events_view ev ON ev.hazard_id = h.id \
         WHERE h.state <> 'closed' AND ev.kind = 'extension_requested' AND ev.ignored IS NULL AND ev.at <= $2 \
         AND NOT EXISTS (SELECT 1 FROM hazard_events_view d WHERE d.hazard_id = h.id \
             AND d.kind IN ('extension_granted', 'extension_refused') \
             AND d.detail LIKE '%\"request\":\"' || ev.event_id || '\"%') \
         ON CONFLICT (hazard_id, event_id) DO NOTHING",
        vec![Arg::from(now_ms), Arg::from(now_ms - day_ms)],
    );
    // A major hazard not reported to the township within the window (or reported after it).
    plan.push(
        "INSERT INTO webhook_events (hazard_id, event_id, kind, enterprise_id, agency_id, township_id, detail, at, author, created_at) \
         SELECT m.hazard_id, 'report_late', 'major_hazard.report_late', h.enterprise_id, h.agency_id, h.township_id, \
         '{}', $1, '', $1 \
         FROM major_hazard_reports m JOIN hazards_view h ON h.id = m.hazard_id \
         WHERE h.grade = 'major' AND m.found_at IS NOT NULL AND m.found_at + $2 < $1 \
         AND (m.report_claimed_at IS NULL OR m.report_claimed_at > m.found_at + $2) \
         ON CONFLICT (hazard_id, event_id) DO NOTHING",
        vec![Arg::from(now_ms), Arg::from(report_window_ms)],
    );
    plan.push(FAN_OUT_CREATED_AT, vec![Arg::from(now_ms)]);
    plan.push(crate::mail::FAN_OUT_EMAIL, vec![Arg::from(now_ms)]);
    plan.run(db).await
}

/// A delivery due now, with what is needed to send it.
#[derive(Debug, Clone)]
struct Due {
    hazard_id: String,
    event_id: String,
    webhook_id: String,
    attempts: i64,
    next_attempt_at: i64,
    url: String,
    secret: String,
    body: serde_json::Value,
}

type DueRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
);

async fn due(db: &Db, now_ms: i64) -> DbResult<Vec<Due>> {
    let rows: Vec<DueRow> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT d.hazard_id, d.event_id, d.webhook_id, d.attempts, d.next_attempt_at, w.url, w.secret, \
             e.kind, e.enterprise_id, e.agency_id, e.township_id, e.detail, e.at, e.author, e.created_at \
             FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             JOIN webhook_events e ON e.hazard_id = d.hazard_id AND e.event_id = d.event_id \
             WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= $1 \
             ORDER BY d.next_attempt_at LIMIT $2",
        )
        .bind(now_ms)
        .bind(PER_PASS)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(
                hazard_id,
                event_id,
                webhook_id,
                attempts,
                next_attempt_at,
                url,
                secret,
                kind,
                enterprise_id,
                agency_id,
                township_id,
                detail,
                at,
                author,
                created_at,
            )| Due {
                body: serde_json::json!({
                    "id": format!("{hazard_id}/{event_id}"),
                    "type": kind,
                    "hazard_id": hazard_id,
                    "event_id": event_id,
                    "enterprise_id": enterprise_id,
                    "agency_id": agency_id,
                    "township_id": township_id,
                    "detail": serde_json::from_str::<serde_json::Value>(&detail).unwrap_or(serde_json::Value::Null),
                    "at": at,
                    "author": author,
                    "created_at": created_at,
                }),
                hazard_id,
                event_id,
                webhook_id,
                attempts,
                next_attempt_at,
                url,
                secret,
            },
        )
        .collect())
}

/// The wait after `attempts` failed attempts: `base`, doubled each time, at most an hour.
pub(crate) fn backoff(base: Duration, attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 20) as u32;
    base.saturating_mul(2u32.saturating_pow(exp.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// Attempts every delivery due at `now`; returns how many were delivered.
pub async fn deliver_due(
    db: &Db,
    client: &reqwest::Client,
    now: jiff::Timestamp,
    retry_base: Duration,
    metrics: &crate::metrics::Metrics,
) -> DbResult<usize> {
    let now_ms = to_millis(now);
    let due = due(db, now_ms).await?;
    let mut delivered = 0;
    use futures_util::StreamExt as _;
    let mut results = futures_util::stream::iter(due)
        .map(|d| async move {
            // Claimed by moving its next attempt past the attempt's timeout: another instance
            // that read the same row finds it changed and leaves it.
            let lease = now_ms + (ATTEMPT_TIMEOUT.as_millis() as i64) * 3;
            let claimed = crate::db::plan::execute_counted(
                db,
                "UPDATE webhook_deliveries SET next_attempt_at = $4 \
                 WHERE hazard_id = $1 AND event_id = $2 AND webhook_id = $3 AND next_attempt_at = $5 \
                 AND delivered_at IS NULL AND failed_at IS NULL",
                vec![
                    Arg::from(&d.hazard_id),
                    Arg::from(&d.event_id),
                    Arg::from(&d.webhook_id),
                    Arg::from(lease),
                    Arg::from(d.next_attempt_at),
                ],
            )
            .await?;
            if claimed == 0 {
                return Ok::<_, DbError>(false);
            }
            let body = serde_json::to_vec(&d.body).unwrap_or_default();
            let timestamp = now.as_second();
            let kind = d.body["type"].as_str().unwrap_or("").to_owned();
            let sent = client
                .post(&d.url)
                .timeout(ATTEMPT_TIMEOUT)
                .header("content-type", "application/json")
                .header("user-agent", concat!("inspect-webhooks/", env!("CARGO_PKG_VERSION")))
                .header("x-inspect-event", kind)
                .header("x-inspect-delivery", format!("{}/{}", d.hazard_id, d.event_id))
                .header("x-inspect-timestamp", timestamp.to_string())
                .header("x-inspect-signature", signature(&d.secret, timestamp, &body))
                .body(body)
                .send()
                .await;
            let attempts = d.attempts + 1;
            let (ok, status, error) = match sent {
                Ok(r) if r.status().is_success() => (true, Some(i64::from(r.status().as_u16())), None),
                Ok(r) => (false, Some(i64::from(r.status().as_u16())), Some(format!("HTTP {}", r.status().as_u16()))),
                Err(e) => (false, None, Some(e.without_url().to_string().chars().take(300).collect::<String>())),
            };
            let mut plan = Plan::default();
            let key = || vec![Arg::from(&d.hazard_id), Arg::from(&d.event_id), Arg::from(&d.webhook_id)];
            if ok {
                let mut args = key();
                args.extend([Arg::from(attempts), Arg::from(status), Arg::from(now_ms)]);
                plan.push(
                    "UPDATE webhook_deliveries SET attempts = $4, last_status = $5, last_error = NULL, delivered_at = $6 \
                     WHERE hazard_id = $1 AND event_id = $2 AND webhook_id = $3",
                    args,
                );
            } else {
                let next = now_ms + backoff(retry_base, attempts).as_millis() as i64;
                let failed = (attempts >= MAX_ATTEMPTS).then_some(now_ms);
                let mut args = key();
                args.extend([
                    Arg::from(attempts),
                    Arg::from(status),
                    Arg::from(error),
                    Arg::from(next),
                    Arg::from(failed),
                ]);
                plan.push(
                    "UPDATE webhook_deliveries SET attempts = $4, last_status = $5, last_error = $6, \
                     next_attempt_at = $7, failed_at = $8 \
                     WHERE hazard_id = $1 AND event_id = $2 AND webhook_id = $3",
                    args,
                );
            }
            plan.run(db).await?;
            metrics.webhook_attempted(ok);
            Ok(ok)
        })
        .buffer_unordered(AT_ONCE);
    while let Some(result) = results.next().await {
        if result? {
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// The lease of the delivery loop among instances sharing a database ([`crate::runs_here`]).
pub const LEASE: &str = "webhooks";

/// The loop `serve` runs: deliveries every second, timed events every minute (and at start).
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: no HTTP client; deliveries stopped");
                return;
            }
        };
        let mailer = match &state.config.smtp_url {
            Some(url) => match crate::mail::Mailer::from_url(url, &state.config.smtp_from) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(error = %e, "reminder emails are off: the SMTP settings are invalid");
                    None
                }
            },
            None => None,
        };
        let mut tick = tokio::time::interval(state.config.webhook_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_derived: Option<std::time::Instant> = None;
        let ttl = (state.config.webhook_poll_interval * 10).max(Duration::from_secs(30));
        loop {
            tick.tick().await;
            // Instances sharing a database deliver (and derive reminders) one at a time: the
            // claims would keep a delivery single anyway, but reminders are derived once.
            if !crate::runs_here(&state, LEASE, ttl).await {
                last_derived = None;
                continue;
            }
            if last_derived.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_derived = Some(std::time::Instant::now());
                let now = state.clock.now();
                if let Err(e) = derive_timed(
                    &state.db,
                    to_millis(now),
                    crate::clock::china_date(now),
                    i64::from(state.config.reminder_days),
                    state.config.major_report_window.as_millis() as i64,
                )
                .await
                {
                    tracing::warn!(error = %e, "webhooks: deriving timed events failed");
                }
            }
            if let Err(e) = deliver_due(
                &state.db,
                &client,
                state.clock.now(),
                state.config.webhook_retry_base,
                &state.metrics,
            )
            .await
            {
                tracing::warn!(error = %e, "webhooks: a delivery pass failed");
            }
            if let Some(mailer) = &mailer
                && let Err(e) = crate::mail::send_due(
                    &state.db,
                    mailer,
                    state.clock.now(),
                    state.config.webhook_retry_base,
                )
                .await
            {
                tracing::warn!(error = %e, "reminder emails: a pass failed");
            }
        }
    })
}

/// Roles that administer their organisation and read its webhooks' log.
fn administers(user: &AuthUser) -> Result<(), ApiError> {
    match user.role {
        Role::AgencyAdmin | Role::Supervisor | Role::EnterpriseManager => Ok(()),
        Role::Inspector => Err(ApiError::forbidden(
            "只有机构管理员、监管人员和企业负责人可查看本单位的推送记录",
            "only agency admins, supervisors and enterprise managers read their organisation's webhooks",
        )),
    }
}

/// `GET /api/v1/webhooks`: the caller's organisation's webhooks (without secrets).
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<WebhookRow>>, ApiError> {
    administers(&user)?;
    let rows: Vec<(String, String, String, i64, Option<i64>)> = with_pool!(&state.db, pool => {
        sqlx::query_as("SELECT id, org_id, url, created_at, disabled_at FROM webhooks WHERE org_id = $1 ORDER BY created_at")
            .bind(&user.org_id)
            .fetch_all(pool)
            .await
            .map_err(DbError::from)?
    });
    Ok(Json(
        rows.into_iter()
            .map(|(id, org_id, url, created_at, disabled_at)| WebhookRow {
                id,
                org_id,
                url,
                created_at,
                disabled_at,
            })
            .collect(),
    ))
}

/// One delivery in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub webhook_id: String,
    pub hazard_id: String,
    pub event_id: String,
    pub kind: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    limit: Option<u32>,
}

/// `GET /api/v1/webhooks/deliveries`: the newest deliveries to the caller's organisation's
/// webhooks, with every attempt's outcome.
pub async fn deliveries(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<DeliveryFilter>,
) -> Result<Json<Vec<DeliveryRow>>, ApiError> {
    administers(&user)?;
    let limit = i64::from(f.limit.unwrap_or(100).clamp(1, 1000));
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = with_pool!(&state.db, pool => {
        sqlx::query_as(
            "SELECT d.webhook_id, d.hazard_id, d.event_id, e.kind, d.attempts, d.next_attempt_at, d.delivered_at, \
             d.failed_at, d.last_status, d.last_error \
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             JOIN webhook_events e ON e.hazard_id = d.hazard_id AND e.event_id = d.event_id \
             WHERE w.org_id = $1 ORDER BY e.created_at DESC, d.event_id LIMIT $2",
        )
        .bind(&user.org_id)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(DbError::from)?
    });
    Ok(Json(
        rows.into_iter()
            .map(
                |(
                    webhook_id,
                    hazard_id,
                    event_id,
                    kind,
                    attempts,
                    next_attempt_at,
                    delivered_at,
                    failed_at,
                    last_status,
                    last_error,
                )| DeliveryRow {
                    webhook_id,
                    hazard_id,
                    event_id,
                    kind,
                    attempts,
                    next_attempt_at,
                    delivered_at,
                    failed_at,
                    last_status,
                    last_error,
                },
            )
            .collect(),
    ))
}

/// One entry of the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub hazard_id: String,
    pub event_id: String,
    pub kind: String,
    /// What happened, Chinese first.
    pub label: String,
    pub description: String,
    pub enterprise_name: String,
    pub detail: serde_json::Value,
    pub at: i64,
    pub created_at: i64,
}

/// The label of an event kind, Chinese first.
pub fn kind_label(kind: &str) -> String {
    let (zh, en) = match kind {
        "hazard.overdue" => ("隐患整改已逾期", "rectification overdue"),
        "reminder.deadline_near" => ("整改期限将至", "deadline near"),
        "reminder.awaiting_verification" => ("整改材料待复查", "evidence awaiting verification"),
        "reminder.extension_pending" => ("延期申请待审批", "extension request awaiting a decision"),
        "major_hazard.report_late" => ("重大隐患未按时上报", "major hazard not reported in time"),
        "hazard.reported_to_regulator" => ("重大隐患已上报", "major hazard reported"),
        other => {
            let event = other.strip_prefix("hazard.").unwrap_or(other);
            return format!("{} / {}", event_label_zh(event), event.replace('_', " "));
        }
    };
    format!("{zh} / {en}")
}

fn event_label_zh(kind: &str) -> &'static str {
    match kind {
        "notified" => "下达整改通知",
        "regraded" => "变更隐患等级",
        "signed_for" => "企业签收",
        "extension_requested" => "申请延期",
        "extension_granted" => "同意延期",
        "extension_refused" => "不同意延期",
        "rectification_submitted" => "提交整改",
        "verified" => "复查验收",
        "supervision_put" => "挂牌督办",
        "supervision_lifted" => "解除督办",
        "closed" => "销号",
        "reopened" => "重新打开",
        _ => "事件",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxFilter {
    /// Only entries the server added after this instant (ms), for polling.
    since: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/inbox`: what happened to the hazards in the caller's scope and what time
/// reminds of, newest first.
pub async fn inbox(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<InboxFilter>,
) -> Result<Json<Vec<InboxItem>>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    if ids.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let limit = f.limit.unwrap_or(100).clamp(1, 500);
    let mut binds: Vec<String> = ids;
    let ph: Vec<String> = (1..=binds.len()).map(|i| format!("${i}")).collect();
    let mut sql = format!(
        "SELECT e.hazard_id, e.event_id, e.kind, COALESCE(h.description, ''), COALESCE(o.name, ''), e.detail, e.at, e.created_at \
         FROM webhook_events e LEFT JOIN hazards_view h ON h.id = e.hazard_id \
         LEFT JOIN organisations o ON o.id = e.enterprise_id \
         WHERE e.enterprise_id IN ({})",
        ph.join(",")
    );
    if let Some(own) = scope::own_agency(&user) {
        binds.push(own.to_owned());
        sql.push_str(&format!(" AND e.agency_id = ${}", binds.len()));
    }
    let since = f.since.unwrap_or(0);
    sql.push_str(&format!(
        " AND e.created_at > ${} ORDER BY e.created_at DESC, e.at DESC LIMIT {limit}",
        binds.len() + 1
    ));
    type Row = (String, String, String, String, String, String, i64, i64);
    let rows: Vec<Row> = with_pool!(&state.db, pool => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
        for b in &binds {
            q = q.bind(b);
        }
        q.bind(since).fetch_all(pool).await.map_err(DbError::from)?
    });
    Ok(Json(
        rows.into_iter()
            .map(
                |(
                    hazard_id,
                    event_id,
                    kind,
                    description,
                    enterprise_name,
                    detail,
                    at,
                    created_at,
                )| {
                    InboxItem {
                        hazard_id,
                        event_id,
                        label: kind_label(&kind),
                        kind,
                        description,
                        enterprise_name,
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                        at,
                        created_at,
                    }
                },
            )
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 5), base * 16);
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
    }

    #[test]
    fn only_web_addresses_are_accepted() {
        assert!(check_url("https://hooks.example.com/inspect").is_ok());
        assert!(check_url("http://127.0.0.1:9000/x").is_ok());
        for bad in ["ftp://x/y", "file:///etc/passwd", "not a url", "https://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
