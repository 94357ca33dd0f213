//! Device enrolment: each phone or browser a user works from gets its own Automerge actor id, so every
//! change in a document is attributable to one user on one device, and a lost phone can be revoked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::check_text;
use crate::AppState;
use crate::auth::{AuthUser, new_actor_id};
use crate::db::{Device, NewDevice};
use crate::error::{ApiError, Json};
use crate::model::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub name: String,
    pub platform: String,
}

#[derive(Debug, Serialize)]
pub struct EnrolResponse {
    pub device_id: String,
    pub actor_id: String,
}

pub async fn enrol(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(request): Json<EnrolRequest>,
) -> Result<(StatusCode, Json<EnrolResponse>), ApiError> {
    check_text("name", &request.name, 100)?;
    check_text("platform", &request.platform, 32)?;
    let actor_id = new_actor_id();
    let device_id = state
        .db
        .create_device(
            &NewDevice {
                user_id: caller.user_id.clone(),
                name: request.name.trim().to_owned(),
                platform: request.platform.trim().to_owned(),
                actor_id: actor_id.clone(),
            },
            state.clock.now(),
        )
        .await?;
    tracing::info!(user_id = %caller.user_id, %device_id, "device enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrolResponse {
            device_id,
            actor_id,
        }),
    ))
}

/// The caller's own devices, revoked ones included.
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<Device>>, ApiError> {
    Ok(Json(state.db.devices_of_user(&caller.user_id).await?))
}

/// Revokes a device and every token bound to it. Allowed to the device's user and to an admin of the
/// agency that user belongs to; anyone else is told the device does not exist.
pub async fn revoke(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(device_id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let not_found = || ApiError::not_found("设备不存在", "no such device");
    let device = state
        .db
        .device_by_id(&device_id)
        .await?
        .ok_or_else(not_found)?;
    let allowed = if device.user_id == caller.user_id {
        true
    } else if caller.role == Role::AgencyAdmin {
        let owner = state.db.user_by_id(&device.user_id).await?;
        owner.is_some_and(|owner| owner.org_id == caller.org_id)
    } else {
        false
    };
    if !allowed {
        return Err(not_found());
    }
    state
        .db
        .revoke_device(&device_id, state.clock.now())
        .await?;
    tracing::info!(by = %caller.user_id, %device_id, "device revoked");
    let device = state
        .db
        .device_by_id(&device_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(device))
}
