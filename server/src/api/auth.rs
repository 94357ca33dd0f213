//! Login, refresh, logout and `me`.

use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{self, AuthUser, TokenPair, UserInfo};
use crate::error::{ApiError, Json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Binds the session to this enrolled device of the user.
    #[serde(default)]
    pub device_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SessionResponse {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    /// Seconds the access token lives from issue (like OAuth's `expires_in`): a client whose clock
    /// differs from the server's plans its refresh from this, not from `access_expires_at`.
    pub access_expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
    pub user: UserInfo,
}

impl SessionResponse {
    fn new(state: &AppState, pair: TokenPair, user: UserInfo) -> Self {
        SessionResponse {
            access_token: pair.access_token,
            access_expires_at: pair.access_expires_at,
            access_expires_in: state.config.access_token_ttl.as_secs(),
            refresh_token: pair.refresh_token,
            refresh_expires_at: pair.refresh_expires_at,
            user,
        }
    }
}

/// Passwords longer than this are refused before hashing, so nobody can make Argon2 chew megabytes.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The address of the client, when the server was started with connection info (`serve`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(request): Json<LoginRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    if request.username.len() > 256 || request.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::InvalidCredentials);
    }
    // Counted before the password is checked, so that parallel guesses stop at the limit.
    let mut keys = vec![crate::throttle::Key::account(&request.username)];
    keys.extend(addr.map(crate::throttle::Key::Address));
    let now_ms = crate::clock::to_millis(state.clock.now());
    let attempt = state
        .login_throttle
        .attempt(keys, now_ms)
        .map_err(|retry_after| {
            tracing::warn!(client = ?addr, retry_after, "login refused: too many failed attempts");
            ApiError::TooManyAttempts { retry_after }
        })?;
    let user = match auth::authenticate(&state, &request.username, &request.password).await {
        Ok(user) => {
            state.login_throttle.succeeded(attempt);
            user
        }
        Err(ApiError::InvalidCredentials) => {
            state.login_throttle.failed(attempt, now_ms);
            return Err(ApiError::InvalidCredentials);
        }
        Err(other) => {
            state.login_throttle.abandoned(attempt);
            return Err(other);
        }
    };
    if let Some(device_id) = &request.device_id {
        let device = state.db.device_by_id(device_id).await?;
        match device {
            Some(device) if device.user_id == user.id => {
                if device.revoked_at.is_some() {
                    return Err(ApiError::DeviceRevoked);
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    "unknown_device",
                    "设备不存在或不属于此用户",
                    "no such device for this user",
                ));
            }
        }
    }
    let pair = auth::start_session(&state, &user.id, request.device_id.as_deref()).await?;
    tracing::info!(user_id = %user.id, device_id = ?request.device_id, "login");
    Ok(Json(SessionResponse::new(
        &state,
        pair,
        UserInfo::from(&user),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let (pair, user) = auth::rotate(&state, &request.refresh_token).await?;
    Ok(Json(SessionResponse::new(
        &state,
        pair,
        UserInfo::from(&user),
    )))
}

/// Ends the caller's session: its access and refresh tokens stop working.
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    state
        .db
        .revoke_session(&user.session_id, state.clock.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub struct MeResponse {
    #[serde(flatten)]
    pub user: UserInfo,
    pub device_id: Option<String>,
}

/// `GET /api/v1/colleagues`: the users of the caller's own organisation (an inspector's agency,
/// a manager's enterprise, a supervisor's township), so an app can add inspectors to a visit.
/// Nobody outside the organisation is listed.
pub async fn colleagues(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    let users = state.db.users_of_org(&caller.org_id).await?;
    Ok(Json(users.iter().map(UserInfo::from).collect()))
}

pub async fn me(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<MeResponse>, ApiError> {
    let user = state
        .db
        .user_by_id(&caller.user_id)
        .await?
        .ok_or(ApiError::UnknownToken)?;
    Ok(Json(MeResponse {
        user: UserInfo::from(&user),
        device_id: caller.device_id,
    }))
}
