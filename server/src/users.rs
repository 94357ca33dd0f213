//! User management: list, disable and enable, reset a password; on the command line
//! (`server admin list-users | disable-user | enable-user | reset-password`) and on the API for
//! the admins of an organisation (`/api/v1/users…`: an agency admin for the agency's staff, a
//! supervisor for the township's). Disabling a user or resetting a password ends every session
//! of the user at once; a disabled user's password is refused with `account_disabled` (only
//! after it was right, so the refusal tells a guesser nothing).

use axum::extract::{Path, State};
use serde::Deserialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::clock::to_millis;
use crate::db::{Db, DbError};
use crate::error::{ApiError, Json};
use crate::model::Role;

pub use crate::db::UserSummary as UserRow;

/// The users of `org_id`, or of every organisation.
pub async fn list(db: &Db, org_id: Option<&str>) -> Result<Vec<UserRow>, DbError> {
    db.list_users(org_id).await
}

/// Disables (`Some(now)`) or enables (`None`) user `id`; disabling ends its sessions.
pub async fn set_disabled(db: &Db, id: &str, at: Option<jiff::Timestamp>) -> Result<(), DbError> {
    db.set_user_disabled(id, at.map(to_millis)).await
}

/// Sets user `id`'s password (already checked for length) and ends its sessions.
pub async fn reset_password(
    db: &Db,
    id: &str,
    password: String,
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    if password.chars().count() < crate::admin::MIN_PASSWORD_CHARS {
        let n = crate::admin::MIN_PASSWORD_CHARS;
        anyhow::bail!("密码至少 {n} 个字符 / the password needs at least {n} characters");
    }
    let hash = crate::auth::hash_password_blocking(password).await?;
    db.set_user_password(id, hash, to_millis(now)).await?;
    Ok(())
}

/// The id of the user named `username`.
pub async fn id_of(db: &Db, username: &str) -> anyhow::Result<String> {
    Ok(db
        .user_by_username(username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("用户“{username}”不存在 / no user {username:?}"))?
        .id)
}

/// Whether `user` may manage the users of its own organisation.
fn manages(user: &AuthUser) -> Result<(), ApiError> {
    match user.role {
        Role::AgencyAdmin | Role::Supervisor => Ok(()),
        _ => Err(ApiError::forbidden(
            "只有机构管理员和监管人员可以管理本单位的账号",
            "only agency admins and supervisors manage their organisation's accounts",
        )),
    }
}

/// The user `id` if it belongs to the caller's organisation (else 404, as if it did not exist).
async fn own_user(state: &AppState, caller: &AuthUser, id: &str) -> Result<UserRow, ApiError> {
    manages(caller)?;
    list(&state.db, Some(&caller.org_id))
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| ApiError::not_found("没有这个用户", "no such user"))
}

/// `GET /api/v1/users`: the caller's organisation's users.
pub async fn api_list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<UserRow>>, ApiError> {
    manages(&caller)?;
    Ok(Json(list(&state.db, Some(&caller.org_id)).await?))
}

/// `POST /api/v1/users/{id}/disable`.
pub async fn api_disable(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<UserRow>, ApiError> {
    let user = own_user(&state, &caller, &id).await?;
    if user.id == caller.user_id {
        return Err(ApiError::invalid(
            "cannot_disable_self",
            "不能停用自己的账号",
            "you cannot disable your own account",
        ));
    }
    set_disabled(&state.db, &id, Some(state.clock.now())).await?;
    Ok(Json(own_user(&state, &caller, &id).await?))
}

/// `POST /api/v1/users/{id}/enable`.
pub async fn api_enable(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<UserRow>, ApiError> {
    own_user(&state, &caller, &id).await?;
    set_disabled(&state.db, &id, None).await?;
    Ok(Json(own_user(&state, &caller, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    password: String,
}

/// `POST /api/v1/users/{id}/password` with `{"password": …}`: sets a new password and ends
/// the user's sessions.
pub async fn api_reset_password(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<ResetPassword>,
) -> Result<Json<UserRow>, ApiError> {
    own_user(&state, &caller, &id).await?;
    let n = crate::admin::MIN_PASSWORD_CHARS;
    let chars = body.password.chars().count();
    if chars < n || body.password.len() > 1024 {
        return Err(ApiError::invalid(
            "invalid_password",
            format!("密码须为 {n} 至 1024 个字符"),
            format!("the password must be {n} to 1,024 characters"),
        ));
    }
    reset_password(&state.db, &id, body.password, state.clock.now()).await?;
    Ok(Json(own_user(&state, &caller, &id).await?))
}
