//! `POST /api/v1/sync`: the sync-core protocol over HTTP.
//!
//! The body is a binary [`sync_core::protocol`] request (media type
//! `application/vnd.inspect.sync.v1`). The device must be enrolled and the token bound to it:
//! its Automerge actor id is what every change in the batch must carry. Accepted changes are
//! durable (committed to the database) before the response is sent, and projected into the read
//! models in the same request.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use sync_core::domain::Author;
use sync_core::ids::{DeviceId, UserId};
use sync_core::protocol;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::{AppState, projection, scope};

/// How many documents of one request are projected at the same time: each holds a database
/// connection while it runs, so a few, not all.
const PROJECTIONS_AT_ONCE: usize = 4;

/// Handles one sync round trip.
pub async fn sync(
    State(state): State<AppState>,
    user: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let answered = sync_inner(&state, user, body).await;
    match &answered {
        Ok((outcome, _)) => state.metrics.sync_answered(
            started.elapsed(),
            &outcome.applied,
            &outcome.response.refused,
        ),
        Err(e) if e.status().is_server_error() => state.metrics.sync_failed(started.elapsed()),
        Err(_) => {}
    }
    answered.map(|(_, response)| response)
}

async fn sync_inner(
    state: &AppState,
    user: AuthUser,
    body: Bytes,
) -> Result<(sync_core::engine::SyncOutcome, Response), ApiError> {
    let device_id = user.require_device()?.to_owned();
    let request = protocol::decode_request(&body).map_err(|e| {
        ApiError::bad_request(e.code(), format!("同步消息无效：{e}"), e.to_string())
    })?;

    let author = author_of(state, &user, &device_id).await?;
    let scope = scope::scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let enterprises = scope.reach();

    // Storing and projecting run in their own task: a phone that drops the connection (killed,
    // out of signal) must not cancel them half way, between the commit and the hub's cache or
    // between the commit and the read models. The answer is then simply not delivered; the
    // phone re-sends, and what is stored is skipped.
    let task_state = state.clone();
    let outcome = tokio::spawn(async move {
        let state = task_state;
        let outcome = state
            .hub
            .sync(&author, &enterprises, &request)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "sync failed in the store");
                ApiError::Internal(anyhow::anyhow!(e.to_string()))
            })?;
        project_applied(&state, &outcome.applied).await;
        Ok::<_, ApiError>(outcome)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("sync task failed: {e}")))??;
    if !outcome.response.refused.is_empty() {
        tracing::info!(refused = outcome.response.refused.len(), user = %user.user_id, "sync batches refused");
    }
    let bytes = protocol::encode_response(&outcome.response);
    let response = ([(CONTENT_TYPE, protocol::MEDIA_TYPE)], bytes).into_response();
    Ok((outcome, response))
}

/// Projects the documents a sync stored into the read models, a few at a time.
async fn project_applied(state: &AppState, applied: &[sync_core::engine::Applied]) {
    let now_ms = crate::clock::to_millis(state.clock.now());
    // The changes are durable already; a projection failure is logged and repaired by the
    // reconciler, never reported as a failed sync (the phone would resend what is stored).
    // Projections of different documents are independent (each is its own transaction, taking
    // its rows in one order), so a few run at once; of one document, the stored heads decide
    // which copy is written.
    futures_util::stream::iter(applied)
        .for_each_concurrent(PROJECTIONS_AT_ONCE, |applied| {
            let state = &state;
            async move {
                // The batch's own copy is what the store holds after the (conditional)
                // append; if another request has moved the document on meanwhile, on this
                // instance or another, the projection's guard drops this copy and that
                // request's projection writes the newer one.
                if let Err(e) =
                    projection::project(&state.db, &applied.typed, &applied.heads, now_ms).await
                {
                    tracing::error!(error = %e, doc = %applied.header.id, "projection failed");
                    state.metrics.projection_failed();
                    state.reconciler.nudge();
                } else {
                    state.changes.announce(&applied.header);
                }
            }
        })
        .await;
}

/// The sync-core author of a request: user, role, organisation, device and its actor id.
pub async fn author_of(
    state: &AppState,
    user: &AuthUser,
    device_id: &str,
) -> Result<Author, ApiError> {
    // The token's query already checked the device is not revoked and read its actor id.
    let actor_hex = match (&user.device_id, &user.device_actor_id) {
        (Some(bound), Some(actor)) if bound == device_id => actor.clone(),
        _ => {
            state
                .db
                .device_by_id(device_id)
                .await?
                .filter(|d| d.user_id == user.user_id && d.revoked_at.is_none())
                .ok_or_else(|| {
                    ApiError::forbidden("设备未登记或已停用", "device not enrolled or revoked")
                })?
                .actor_id
        }
    };
    let actor = hex::decode(&actor_hex).map_err(|_| {
        ApiError::Internal(anyhow::anyhow!(
            "device {device_id} has a malformed actor id"
        ))
    })?;
    Ok(Author {
        user: UserId::parse(&user.user_id).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        role: user.role,
        org: uuid::Uuid::parse_str(&user.org_id)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        device: DeviceId::parse(device_id).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        actors: vec![sync_core::automerge::ActorId::from(actor)],
    })
}
