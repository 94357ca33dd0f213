//! `POST /api/v1/hazards/{id}/events`: rectification actions from the web pages.
//!
//! A web action is an edit like any other: the server makes it as the signed-in user on that
//! user's *web device* (enrolled on first use, with its own Automerge actor id), with
//! `sync_core::edit::record_event` (the policy check the phone runs), then passes it through
//! the hub's validation and durable append, exactly like a synced change. A page can never do
//! what the phone could not.

use std::collections::HashSet;

use axum::extract::{Path, State};
use serde::Deserialize;
use sync_core::doc::DocKind;
use sync_core::domain::{Author, PhotoRef};
use sync_core::ids::{DeviceId, EnterpriseId, EventId, UserId};
use sync_core::rectification::EventKind;

use crate::auth::{AuthUser, new_actor_id};
use crate::db::NewDevice;
use crate::error::{ApiError, Json};
use crate::{AppState, projection, scope};

/// An action, as the web sends it.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Issue the rectification notice.
    Notified,
    /// The enterprise signs for the notice.
    SignedFor { signer: String },
    /// The enterprise asks for more time.
    ExtensionRequested { until: String, reason: String },
    /// Grant a pending extension request.
    ExtensionGranted { request: String, until: String },
    /// Refuse a pending extension request.
    ExtensionRefused { request: String, reason: String },
    /// The enterprise submits its rectification with evidence photos (uploaded first).
    RectificationSubmitted {
        note: String,
        #[serde(default)]
        photos: Vec<PhotoRef>,
    },
    /// Re-inspection result.
    Verified { accepted: bool, note: String },
    /// Report to the regulator.
    ReportedToRegulator { to: String },
    /// Put under supervision.
    SupervisionPut { note: String },
    /// Lift supervision.
    SupervisionLifted { note: String },
    /// Close (销号).
    Closed { note: String },
    /// Reopen.
    Reopened { reason: String },
}

fn text(field: &'static str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("字段 {field} 不超过 {max} 个字符"),
            format!("field {field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

impl Action {
    fn into_kind(self) -> Result<EventKind, ApiError> {
        use sync_core::domain::Deadline;
        let date = |field: &'static str, v: &str| {
            Deadline::parse(v).map_err(|e| {
                ApiError::invalid(
                    "invalid_field",
                    format!("字段 {field} 无效：{e}"),
                    format!("field {field}: {e}"),
                )
            })
        };
        Ok(match self {
            Action::Notified => EventKind::Notified,
            Action::SignedFor { signer } => {
                crate::api::check_text("signer", &signer, 50)?;
                EventKind::SignedFor { signer }
            }
            Action::ExtensionRequested { until, reason } => {
                date("until", &until)?;
                crate::api::check_text("reason", &reason, 2000)?;
                EventKind::ExtensionRequested { until, reason }
            }
            Action::ExtensionGranted { request, until } => {
                date("until", &until)?;
                EventKind::ExtensionGranted { request, until }
            }
            Action::ExtensionRefused { request, reason } => {
                text("reason", &reason, 2000)?;
                EventKind::ExtensionRefused { request, reason }
            }
            Action::RectificationSubmitted { note, photos } => {
                crate::api::check_text("note", &note, 4000)?;
                if photos.len() > 50 {
                    return Err(ApiError::invalid(
                        "invalid_field",
                        "照片最多 50 张",
                        "at most 50 photos",
                    ));
                }
                for p in &photos {
                    p.validate().map_err(|e| {
                        ApiError::invalid("invalid_photo", format!("照片无效：{e}"), e.to_string())
                    })?;
                }
                EventKind::RectificationSubmitted { note, photos }
            }
            Action::Verified { accepted, note } => {
                text("note", &note, 4000)?;
                EventKind::Verified { accepted, note }
            }
            Action::ReportedToRegulator { to } => {
                crate::api::check_text("to", &to, 200)?;
                EventKind::ReportedToRegulator { to }
            }
            Action::SupervisionPut { note } => {
                text("note", &note, 4000)?;
                EventKind::SupervisionPut { note }
            }
            Action::SupervisionLifted { note } => {
                text("note", &note, 4000)?;
                EventKind::SupervisionLifted { note }
            }
            Action::Closed { note } => {
                text("note", &note, 4000)?;
                EventKind::Closed { note }
            }
            Action::Reopened { reason } => {
                crate::api::check_text("reason", &reason, 2000)?;
                EventKind::Reopened { reason }
            }
        })
    }
}

/// The user's web device (enrolled on first use).
pub async fn web_author(state: &AppState, user: &AuthUser) -> Result<Author, ApiError> {
    let device = match state
        .db
        .devices_of_user(&user.user_id)
        .await?
        .into_iter()
        .find(|d| d.platform == "web" && d.revoked_at.is_none())
    {
        Some(d) => d,
        None => {
            let id = state
                .db
                .create_device(
                    &NewDevice {
                        user_id: user.user_id.clone(),
                        name: "网页 / web".into(),
                        platform: "web".into(),
                        actor_id: new_actor_id(),
                    },
                    state.clock.now(),
                )
                .await?;
            state
                .db
                .device_by_id(&id)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("web device vanished")))?
        }
    };
    let actor =
        hex::decode(&device.actor_id).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    Ok(Author {
        user: UserId::parse(&user.user_id).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        role: crate::api::sync::core_role(user.role),
        org: uuid::Uuid::parse_str(&user.org_id)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        device: DeviceId::parse(&device.id).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        actors: vec![sync_core::automerge::ActorId::from(actor)],
    })
}

/// Records a rectification event on a hazard as the signed-in user.
pub async fn record(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(action): Json<Action>,
) -> Result<Json<crate::api::hazards::HazardDetail>, ApiError> {
    let not_found = || ApiError::not_found("没有这个隐患", "no such hazard");
    let hazard = crate::api::hazards::hazard_in_scope(&state, &user, &id).await?;
    let doc_id = uuid::Uuid::parse_str(&hazard.id).map_err(|_| not_found())?;
    let kind = action.into_kind()?;
    let author = web_author(&state, &user).await?;
    let doc = state
        .hub
        .load(doc_id)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.to_string())))?
        .ok_or_else(not_found)?;
    let now = state.clock.now();
    let now_ms = crate::clock::to_millis(now);
    let edited = sync_core::edit::record_event(&doc, &author, EventId::new_random(), now_ms, kind)
        .map_err(|e| match e {
            sync_core::edit::EditError::Refused(reasons) => {
                let first = reasons
                    .first()
                    .map(|r| r.code.message())
                    .unwrap_or("不允许 / not allowed");
                ApiError::forbidden(
                    format!("不允许此操作：{first}"),
                    format!("not allowed: {first}"),
                )
            }
            other => ApiError::Internal(anyhow::anyhow!(other.to_string())),
        })?;
    // Online, the server knows the current state: an action the fold would ignore (closing
    // before acceptance, verifying nothing) is refused rather than recorded without effect.
    if let Ok(h) = sync_core::doc::HazardDoc::hydrate_from(&edited.doc)
        && let Ok(header) = h.header()
    {
        let status = sync_core::rectification::fold(
            &header,
            h.grade,
            sync_core::domain::Deadline::parse(&h.deadline).ok(),
            &h.events,
        );
        if let Some(reason) = status.outcomes.last().and_then(|o| o.ignored) {
            return Err(ApiError::Conflict {
                code: "not_in_this_state",
                zh: format!("当前状态下不能进行此操作：{reason}").into(),
                en: format!("not possible in the current state: {reason}").into(),
            });
        }
    }
    let Some(change) = edited.change else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "an event made no change"
        )));
    };
    let scope = scope::scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let enterprises: HashSet<EnterpriseId> = scope
        .enterprise_ids()
        .iter()
        .filter_map(|e| EnterpriseId::parse(e).ok())
        .collect();
    let accepted = state
        .hub
        .ingest(&author, &enterprises, doc_id, DocKind::Hazard, &[change])
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.to_string())))?
        .map_err(|refusal| {
            let first = refusal
                .reasons
                .first()
                .map(|r| r.code.message())
                .unwrap_or("不允许 / not allowed");
            ApiError::forbidden(
                format!("不允许此操作：{first}"),
                format!("not allowed: {first}"),
            )
        })?;
    let heads = accepted.doc.get_heads();
    let hydrated = Some((heads.as_slice(), &accepted.typed));
    if let Err(e) =
        projection::project_current(&state.hub, &state.db, accepted.header.id, hydrated, now_ms)
            .await
    {
        // The event is durable: answering 500 would make the user record it again. The
        // reconciler brings the lists level with the document.
        tracing::error!(error = %e, doc = %accepted.header.id, "projection failed");
        state.reconciler.nudge();
    }
    let hazard = crate::api::hazards::hazard_in_scope(&state, &user, &id).await?;
    let history = crate::api::hazards::history(&state, &id).await?;
    let photos = match &accepted.typed {
        sync_core::doc::TypedDoc::Hazard(h) => h.photos.clone(),
        sync_core::doc::TypedDoc::Visit(_) => Vec::new(),
    };
    Ok(Json(crate::api::hazards::HazardDetail {
        hazard,
        history,
        photos,
    }))
}
