//! Change history of a document — who changed what, when, from which device — read from the
//! Automerge document itself rather than from a second log: every change carries its actor id and
//! time, and each actor id belongs to exactly one enrolled device of one user (`devices.actor_id`).
//!
//! `GET /api/v1/visits/{id}/history` and `GET /api/v1/hazards/{id}/changes` answer the same shape.
//! Both are scope-limited: an id outside the caller's scope answers 404.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sync_core::automerge::{Automerge, PatchAction, Prop};

use crate::auth::AuthUser;
use crate::error::{ApiError, Json};
use crate::{AppState, scope};

/// One Automerge change, attributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// Change hash (hex).
    pub hash: String,
    /// When the author's device made it, milliseconds since the Unix epoch (second precision).
    pub at: i64,
    /// Automerge actor id (hex).
    pub actor: String,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub platform: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub role: Option<String>,
    /// The top-level fields this change touched, e.g. `["checklist", "place"]`.
    pub fields: Vec<String>,
    /// The same fields with their names in Chinese and English and their values before and
    /// after the change, as a person reads them.
    #[serde(default)]
    pub changes: Vec<FieldChange>,
}

/// One field changed by a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    /// `整改措施 / measure`.
    pub label: String,
    /// The value before the change (`None`: the field did not exist).
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Longest value shown; longer ones end in `…`.
const SHOWN_CHARS: usize = 200;

/// The value of top-level `key` at `heads`, as a person reads it: text as text, instants as
/// China times, lists by their length, a record as filled in.
fn shown_value(
    doc: &Automerge,
    key: &str,
    heads: &[sync_core::automerge::ChangeHash],
) -> Option<String> {
    use sync_core::automerge::{ObjType, ROOT, ReadDoc as _, ScalarValue, Value};
    let (value, obj) = doc.get_at(ROOT, key, heads).ok().flatten()?;
    let text = match value {
        Value::Object(ObjType::Text) => doc.text_at(&obj, heads).unwrap_or_default(),
        Value::Object(ObjType::List) => {
            format!("{} 项 / items", doc.length_at(&obj, heads))
        }
        Value::Object(ObjType::Map | ObjType::Table) => "（已填写） / (filled in)".to_owned(),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(v) => v.to_string(),
            ScalarValue::Int(ms) if key.ends_with("_at") => crate::clock::from_millis(*ms)
                .to_zoned(crate::clock::china_standard_time())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            ScalarValue::Int(v) => v.to_string(),
            ScalarValue::Uint(v) => v.to_string(),
            ScalarValue::F64(v) => v.to_string(),
            ScalarValue::Boolean(true) => "是 / yes".to_owned(),
            ScalarValue::Boolean(false) => "否 / no".to_owned(),
            ScalarValue::Null => return None,
            other => other.to_string(),
        },
    };
    Some(if text.chars().count() > SHOWN_CHARS {
        let mut cut: String = text.chars().take(SHOWN_CHARS).collect();
        cut.push('…');
        cut
    } else {
        text
    })
}

/// Lists the changes of `doc` in causal order with the top-level keys each one touched.
pub fn changes_of(doc: &Automerge) -> Vec<ChangeRow> {
    doc.get_changes(&[])
        .iter()
        .map(|change| {
            let after = [change.hash()];
            let fields: BTreeSet<String> = doc
                .diff(change.deps(), &after)
                .into_iter()
                .filter_map(|patch| match patch.path.first() {
                    Some((_, Prop::Map(key))) => Some(key.clone()),
                    Some((_, Prop::Seq(_))) => None,
                    None => match patch.action {
                        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
                            Some(key)
                        }
                        PatchAction::Increment {
                            prop: Prop::Map(key),
                            ..
                        }
                        | PatchAction::Conflict {
                            prop: Prop::Map(key),
                        } => Some(key),
                        _ => None,
                    },
                })
                .collect();
            let changes = fields
                .iter()
                .map(|field| FieldChange {
                    field: field.clone(),
                    label: format!(
                        "{} / {}",
                        sync_core::limits::field_label_zh(field),
                        sync_core::limits::field_label_en(field)
                    ),
                    old: shown_value(doc, field, change.deps()),
                    new: shown_value(doc, field, &after),
                })
                .collect();
            ChangeRow {
                hash: change.hash().to_string(),
                at: change.timestamp().saturating_mul(1000),
                actor: change.actor_id().to_hex_string(),
                device_id: None,
                device_name: None,
                platform: None,
                user_id: None,
                user_name: None,
                role: None,
                fields: fields.into_iter().collect(),
                changes,
            }
        })
        .collect()
}

/// Fills in device and user of each change from the `devices` and `users` tables.
pub async fn attribute(state: &AppState, rows: &mut [ChangeRow]) -> Result<(), ApiError> {
    let actors: Vec<String> = rows
        .iter()
        .map(|r| r.actor.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if actors.is_empty() {
        return Ok(());
    }
    let who: HashMap<String, crate::db::DeviceAuthor> = state
        .db
        .devices_by_actor(&actors)
        .await?
        .into_iter()
        .collect();
    for row in rows {
        if let Some(crate::db::DeviceAuthor {
            device_id: device,
            device_name: name,
            platform,
            user_id: user,
            display_name: display,
            role,
        }) = who.get(&row.actor)
        {
            row.device_id = Some(device.clone());
            row.device_name = Some(name.clone());
            row.platform = Some(platform.clone());
            row.user_id = Some(user.clone());
            row.user_name = Some(display.clone());
            row.role = Some(role.clone());
        }
    }
    Ok(())
}

/// Loads a document of `kind` that is in scope (its enterprise as the read models hold it).
pub(crate) async fn load_in_scope(
    state: &AppState,
    user: &AuthUser,
    kind: sync_core::doc::DocKind,
    id: &str,
    not_found: fn() -> ApiError,
) -> Result<Automerge, ApiError> {
    let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
    let enterprise = state.db.document_enterprise(kind, id).await?;
    let enterprise = enterprise.ok_or_else(not_found)?;
    if !scope::may_read_enterprise(&state.db, state.clock.as_ref(), user, &enterprise).await? {
        return Err(not_found());
    }
    let doc = state
        .hub
        .load(uuid)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.to_string())))?
        .ok_or_else(not_found)?;
    // Agency staff read their own agency's documents only.
    let agency = sync_core::doc::read_header(&doc).map(|h| h.agency.to_string());
    if scope::own_agency(user).is_some_and(|own| agency.as_deref() != Ok(own)) {
        return Err(not_found());
    }
    Ok(doc)
}

pub(crate) fn no_visit() -> ApiError {
    ApiError::not_found("没有这次检查", "no such visit")
}

pub(crate) fn no_hazard() -> ApiError {
    ApiError::not_found("没有这个隐患", "no such hazard")
}

/// `GET /api/v1/visits/{id}/history`.
pub async fn visit_history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<ChangeRow>>, ApiError> {
    let doc = load_in_scope(&state, &user, sync_core::doc::DocKind::Visit, &id, no_visit).await?;
    let mut rows = changes_of(&doc);
    attribute(&state, &mut rows).await?;
    Ok(Json(rows))
}

/// `GET /api/v1/hazards/{id}/changes`.
pub async fn hazard_changes(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<ChangeRow>>, ApiError> {
    let doc = load_in_scope(
        &state,
        &user,
        sync_core::doc::DocKind::Hazard,
        &id,
        no_hazard,
    )
    .await?;
    let mut rows = changes_of(&doc);
    attribute(&state, &mut rows).await?;
    Ok(Json(rows))
}
