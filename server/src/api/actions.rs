//! `POST /api/v1/hazards/{id}/events`: rectification actions from the web pages.
//!
//! A web action is an edit like any other: the server makes it as the signed-in user on that
//! user's *web device* (enrolled on first use, with its own Automerge actor id), with
//! `sync_core::edit::record_event` (the policy check the phone runs), then passes it through
//! the hub's validation and durable append, exactly like a synced change. A page can never do
//! what the phone could not.

use axum::extract::{Path, State};
use serde::Deserialize;
use sync_core::doc::DocKind;
use sync_core::domain::{Author, PhotoRef};
use sync_core::ids::{DeviceId, EventId, UserId};
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
    /// Change the grade after the notice (`general` or `major`), with the reason.
    Regraded { grade: String, reason: String },
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
                crate::api::check_text("signer", &signer, sync_core::limits::max_chars("signer"))?;
                EventKind::SignedFor { signer }
            }
            Action::ExtensionRequested { until, reason } => {
                date("until", &until)?;
                crate::api::check_text("reason", &reason, sync_core::limits::max_chars("reason"))?;
                EventKind::ExtensionRequested { until, reason }
            }
            Action::ExtensionGranted { request, until } => {
                date("until", &until)?;
                EventKind::ExtensionGranted { request, until }
            }
            Action::ExtensionRefused { request, reason } => {
                text("reason", &reason, sync_core::limits::max_chars("reason"))?;
                EventKind::ExtensionRefused { request, reason }
            }
            Action::RectificationSubmitted { note, photos } => {
                crate::api::check_text("note", &note, sync_core::limits::max_chars("note"))?;
                if photos.len() > sync_core::limits::max_items("photos") {
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
                text("note", &note, sync_core::limits::max_chars("note"))?;
                EventKind::Verified { accepted, note }
            }
            Action::ReportedToRegulator { to } => {
                crate::api::check_text("to", &to, sync_core::limits::max_chars("to"))?;
                EventKind::ReportedToRegulator { to }
            }
            Action::SupervisionPut { note } => {
                text("note", &note, sync_core::limits::max_chars("note"))?;
                EventKind::SupervisionPut { note }
            }
            Action::SupervisionLifted { note } => {
                text("note", &note, sync_core::limits::max_chars("note"))?;
                EventKind::SupervisionLifted { note }
            }
            Action::Closed { note } => {
                text("note", &note, sync_core::limits::max_chars("note"))?;
                EventKind::Closed { note }
            }
            Action::Reopened { reason } => {
                crate::api::check_text("reason", &reason, sync_core::limits::max_chars("reason"))?;
                EventKind::Reopened { reason }
            }
            Action::Regraded { grade, reason } => {
                let grade = sync_core::domain::Grade::parse(&grade).map_err(|e| {
                    ApiError::invalid(
                        "invalid_field",
                        format!("隐患等级无效：{e}"),
                        format!("grade: {e}"),
                    )
                })?;
                crate::api::check_text("reason", &reason, sync_core::limits::max_chars("reason"))?;
                EventKind::Regraded { grade, reason }
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
        role: user.role,
        org: uuid::Uuid::parse_str(&user.org_id)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        device: DeviceId::parse(&device.id).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        actors: vec![sync_core::automerge::ActorId::from(actor)],
    })
}

/// Splits a "中文 / English" message into its two halves.
fn halves(message: &str) -> (String, String) {
    match message.split_once(" / ") {
        Some((zh, en)) => (zh.to_owned(), en.to_owned()),
        None => (message.to_owned(), message.to_owned()),
    }
}

/// A refusal by the policy: 403, each distinct rule once, in words a user knows.
pub(crate) fn refused(reasons: &[sync_core::validate::ChangeRefusal]) -> ApiError {
    let mut zh = Vec::new();
    let mut en = Vec::new();
    for r in reasons {
        let (z, e) = halves(&r.message());
        if !zh.contains(&z) {
            zh.push(z);
            en.push(e);
        }
    }
    if zh.is_empty() {
        return ApiError::forbidden("不允许此操作", "not allowed");
    }
    ApiError::forbidden(zh.join("；"), en.join("; "))
}

/// Why an edit could not be made, as an API error: a rule about the user is 403, a rule about
/// where the hazard stands is 409 with the rule's code.
pub(crate) fn edit_error(e: sync_core::edit::EditError) -> ApiError {
    use sync_core::edit::EditError;
    match e {
        EditError::Refused(reasons) => refused(&reasons),
        EditError::NotNow(why) => {
            let (zh, en) = halves(why.message());
            if why.is_role() {
                ApiError::forbidden(zh, en)
            } else {
                ApiError::Conflict {
                    code: why.code(),
                    zh: zh.into(),
                    en: en.into(),
                }
            }
        }
        other => ApiError::Internal(anyhow::anyhow!(other.to_string())),
    }
}

/// Records a rectification event on a hazard as the signed-in user.
pub async fn record(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(action): Json<Action>,
) -> Result<Json<crate::api::hazards::HazardDetail>, ApiError> {
    let mut kind = action.into_kind()?;
    // Evidence is added in the signed-in user's name, whatever the body said.
    if let EventKind::RectificationSubmitted { photos, .. } = &mut kind {
        for p in photos {
            p.added_by = user.user_id.clone();
        }
    }
    let (doc_id, author, doc) = editable(&state, &user, &id).await?;
    let now = state.clock.now();
    let now_ms = crate::clock::to_millis(now);
    let edited = sync_core::edit::record_event(&doc, &author, EventId::new_random(), now_ms, kind)
        .map_err(edit_error)?;
    commit(&state, &user, &author, doc_id, &id, edited, now_ms).await
}

/// A choice between the values of a field two people set concurrently.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// The field's key.
    pub field: String,
    /// The value chosen (one of the concurrent values, or a new one).
    pub value: String,
}

/// `POST /api/v1/hazards/{id}/resolve`: an inspector of the agency picks the value of a field
/// that holds two concurrent values.
pub async fn resolve(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(choice): Json<Resolve>,
) -> Result<Json<crate::api::hazards::HazardDetail>, ApiError> {
    if choice.value.chars().count() > sync_core::limits::max_chars(&choice.field) {
        return Err(ApiError::invalid(
            "invalid_field",
            format!(
                "取值过长（最多 {} 个字）",
                sync_core::limits::max_chars(&choice.field)
            ),
            "the value is too long",
        ));
    }
    let (doc_id, author, doc) = editable(&state, &user, &id).await?;
    if !sync_core::edit::conflicts(&doc)
        .iter()
        .any(|c| c.field == choice.field)
    {
        return Err(ApiError::Conflict {
            code: "no_conflict",
            zh: "该字段只有一个值，无需选择".into(),
            en: "the field holds a single value: nothing to resolve".into(),
        });
    }
    let now_ms = crate::clock::to_millis(state.clock.now());
    let edited =
        sync_core::edit::resolve_conflict(&doc, &author, now_ms, &choice.field, &choice.value)
            .map_err(|e| match e {
                sync_core::edit::EditError::Write(w) => {
                    let (zh, en) = halves(&w);
                    ApiError::invalid("invalid_field", zh, en)
                }
                sync_core::edit::EditError::Doc(d) => ApiError::invalid(
                    "invalid_field",
                    "取值不符合该字段的格式",
                    format!("the value does not fit the field: {d}"),
                ),
                other => edit_error(other),
            })?;
    commit(&state, &user, &author, doc_id, &id, edited, now_ms).await
}

/// The hazard `id` if it is in the caller's scope (404 otherwise), as its document, with the
/// caller's web author: what every web edit starts from.
async fn editable(
    state: &AppState,
    user: &AuthUser,
    id: &str,
) -> Result<(uuid::Uuid, Author, sync_core::automerge::Automerge), ApiError> {
    let not_found = || ApiError::not_found("没有这个隐患", "no such hazard");
    let hazard = crate::api::hazards::hazard_in_scope(state, user, id).await?;
    let doc_id = uuid::Uuid::parse_str(&hazard.id).map_err(|_| not_found())?;
    // Readable is not writable: a former agency reads its records, and changes nothing.
    if !scope::may_see_enterprise(&state.db, state.clock.as_ref(), user, &hazard.enterprise_id)
        .await?
    {
        let (zh, en) = halves(sync_core::validate::RefusalCode::NotInScope.message());
        return Err(ApiError::forbidden(zh, en));
    }
    let author = web_author(state, user).await?;
    let doc = state
        .hub
        .load(doc_id)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.to_string())))?
        .ok_or_else(not_found)?;
    Ok((doc_id, author, doc))
}

/// Passes a web edit through the hub's validation and durable append, projects it, and answers
/// the hazard as it now stands.
async fn commit(
    state: &AppState,
    user: &AuthUser,
    author: &Author,
    doc_id: uuid::Uuid,
    id: &str,
    edited: sync_core::edit::Edited,
    now_ms: i64,
) -> Result<Json<crate::api::hazards::HazardDetail>, ApiError> {
    let Some(change) = edited.change else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "an edit made no change"
        )));
    };
    let scope = scope::scope_of(&state.db, state.clock.as_ref(), user).await?;
    let enterprises = scope.reach();
    // Stored and projected in a task of its own, so a browser that goes away mid-request does
    // not cancel them between the commit and the hub's cache or the read models.
    let (task_state, author) = (state.clone(), author.clone());
    let accepted = tokio::spawn(async move {
        let state = task_state;
        let accepted = state
            .hub
            .ingest(&author, &enterprises, doc_id, DocKind::Hazard, &[change])
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.to_string())))?
            .map_err(|refusal| refused(&refusal.reasons))?;
        let heads = accepted.doc.get_heads();
        let hydrated = Some((heads.as_slice(), &accepted.typed));
        if let Err(e) =
            projection::project_current(&state.hub, &state.db, accepted.header.id, hydrated, now_ms)
                .await
        {
            // The edit is durable: answering 500 would make the user make it again. The
            // reconciler brings the lists level with the document.
            tracing::error!(error = %e, doc = %accepted.header.id, "projection failed");
            state.reconciler.nudge();
        } else {
            state.changes.announce(&accepted.header);
        }
        Ok::<_, ApiError>(accepted)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("edit task failed: {e}")))??;
    crate::api::hazards::detail(state, user, id, Some(&accepted.doc)).await
}
