//! The enterprises the caller may see.

use axum::extract::{Path, State};

use crate::AppState;
use crate::auth::AuthUser;
use crate::db::Enterprise;
use crate::error::{ApiError, Json};
use crate::scope::{may_see_enterprise, scope_rule};

pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<Enterprise>>, ApiError> {
    let today = crate::clock::china_date(state.clock.now());
    let rule = scope_rule(caller.role, &caller.org_id, today);
    Ok(Json(state.db.scope_enterprises(&rule).await?))
}

/// One enterprise; 404 both when it does not exist and when the caller may not see it.
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Enterprise>, ApiError> {
    let not_found =
        || ApiError::not_found("企业不存在或无权查看", "no such enterprise in your scope");
    if !may_see_enterprise(&state.db, state.clock.as_ref(), &caller, &id).await? {
        return Err(not_found());
    }
    state
        .db
        .enterprise_by_id(&id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}
