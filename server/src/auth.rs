//! Who is calling: password hashing, opaque bearer tokens and the [`AuthUser`] extractor.
//!
//! Tokens are 32 random bytes, base64url, meaningless to the client and stored only as their SHA-256,
//! so a database leak does not leak usable tokens. Access tokens are short-lived; a refresh token is
//! spent on use and replaced (rotation), and presenting a spent refresh token again revokes its whole
//! session, since only a thief or a confused client would do that.

use std::sync::OnceLock;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::db::{NewToken, TokenKind, User};
use crate::error::ApiError;
use crate::model::Role;

/// Hashes a password with Argon2id and default parameters into a PHC string. CPU-heavy: call it from
/// blocking code or through [`hash_password_blocking`].
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("salt encoding: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("password hashing: {e}"))?
        .to_string())
}

/// [`hash_password`] on the blocking thread pool.
pub async fn hash_password_blocking(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .context("password hashing task")?
}

/// Checks `password` against a PHC hash on the blocking thread pool.
pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .context("password verification task")?
}

/// A hash to verify against when the user does not exist, so that an unknown username takes as long
/// to refuse as a wrong password.
fn decoy_hash() -> anyhow::Result<String> {
    static DECOY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DECOY.get() {
        return Ok(hash.clone());
    }
    let hash = hash_password("decoy password, never matches a real login")?;
    Ok(DECOY.get_or_init(|| hash).clone())
}

/// A fresh opaque token: 32 random bytes, base64url without padding.
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a token: its SHA-256, lowercase hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh Automerge actor id: 16 random bytes, lowercase hex.
pub fn new_actor_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The tokens handed to a client at login or refresh.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
}

/// The public part of a user, as returned at login and by `GET /api/v1/me`.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub org_id: String,
    pub display_name: String,
}

impl From<&User> for UserInfo {
    fn from(user: &User) -> Self {
        UserInfo {
            id: user.id.clone(),
            username: user.username.clone(),
            role: user.role,
            org_id: user.org_id.clone(),
            display_name: user.display_name.clone(),
        }
    }
}

fn ttl(duration: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

/// Creates an access/refresh pair in `session_id` without storing it.
pub(crate) fn mint_pair(
    state: &AppState,
    user_id: &str,
    device_id: Option<&str>,
    session_id: &str,
) -> (TokenPair, [NewToken; 2]) {
    let now = state.clock.now();
    let access_expires_at = now
        .saturating_add(ttl(state.config.access_token_ttl))
        .unwrap_or(Timestamp::MAX);
    let refresh_expires_at = now
        .saturating_add(ttl(state.config.refresh_token_ttl))
        .unwrap_or(Timestamp::MAX);
    let access_token = new_token();
    let refresh_token = new_token();
    let row = |token: &str, kind, expires_at| NewToken {
        hash: token_hash(token),
        kind,
        session_id: session_id.to_owned(),
        user_id: user_id.to_owned(),
        device_id: device_id.map(str::to_owned),
        expires_at,
    };
    let rows = [
        row(&access_token, TokenKind::Access, access_expires_at),
        row(&refresh_token, TokenKind::Refresh, refresh_expires_at),
    ];
    (
        TokenPair {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
        },
        rows,
    )
}

/// Checks a username and password; the same error whether the user is unknown or the password wrong.
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<User, ApiError> {
    let user = state.db.user_by_username(username).await?;
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => decoy_hash()?,
    };
    let matches = verify_password(password.to_owned(), hash).await?;
    match user {
        // Told only to one who knows the password: a guesser learns nothing.
        Some(user) if matches && state.db.user_disabled(&user.id).await? => {
            Err(ApiError::AccountDisabled)
        }
        Some(user) if matches => Ok(user),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// Starts a new session for `user`, bound to `device_id` if given (which the caller has checked).
pub async fn start_session(
    state: &AppState,
    user_id: &str,
    device_id: Option<&str>,
) -> Result<TokenPair, ApiError> {
    let session_id = uuid::Uuid::new_v4().to_string();
    let (pair, rows) = mint_pair(state, user_id, device_id, &session_id);
    state.db.insert_tokens(&rows, state.clock.now()).await?;
    Ok(pair)
}

/// Spends a refresh token and returns the next pair of its session with the session's user.
pub async fn rotate(state: &AppState, refresh_token: &str) -> Result<(TokenPair, User), ApiError> {
    let now = state.clock.now();
    let hash = token_hash(refresh_token);
    let token = state
        .db
        .token_by_hash(&hash)
        .await?
        .filter(|token| token.kind == TokenKind::Refresh)
        .ok_or(ApiError::UnknownToken)?;
    if token.device_revoked_at.is_some() {
        return Err(ApiError::DeviceRevoked);
    }
    if token.revoked_at.is_some() {
        tracing::warn!(session_id = %token.session_id, "spent refresh token presented again; revoking its session");
        state.db.revoke_session(&token.session_id, now).await?;
        return Err(ApiError::TokenRevoked);
    }
    if token.expires_at <= now {
        return Err(ApiError::TokenExpired);
    }
    let (pair, rows) = mint_pair(
        state,
        &token.user_id,
        token.device_id.as_deref(),
        &token.session_id,
    );
    if !state
        .db
        .rotate_refresh_token(&hash, &token.session_id, &rows, now)
        .await?
    {
        // Another request spent it between our read and our write.
        state.db.revoke_session(&token.session_id, now).await?;
        return Err(ApiError::TokenRevoked);
    }
    let user = state
        .db
        .user_by_id(&token.user_id)
        .await?
        .ok_or(ApiError::UnknownToken)?;
    Ok((pair, user))
}

/// The caller of a request, authenticated by its bearer access token.
///
/// Extracting it refuses (401) a missing, unknown, expired or revoked token, a refresh token used as an
/// access token, and any token of a revoked device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: String,
    pub role: Role,
    pub org_id: String,
    /// The enrolled device the session is bound to, if the client logged in with one.
    pub device_id: Option<String>,
    pub session_id: String,
    /// That device's Automerge actor id (hex), read with the token so a sync needs no second
    /// lookup; `None` when there is no device or it is not the user's own.
    pub device_actor_id: Option<String>,
}

impl AuthUser {
    /// The device the session is bound to, or 403 `device_required`: for routes, like sync, where every
    /// change must be attributable to one enrolled device (and its Automerge actor id).
    pub fn require_device(&self) -> Result<&str, ApiError> {
        self.device_id.as_deref().ok_or(ApiError::DeviceRequired)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::MissingToken)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::MissingToken)?;
        authenticate_access_token(state, token).await
    }
}

/// Resolves an access token to its user; what the extractor does, for callers without a request
/// (e.g. a WebSocket that sends its token in the first message).
pub async fn authenticate_access_token(
    state: &AppState,
    token: &str,
) -> Result<AuthUser, ApiError> {
    let row = state
        .db
        .token_by_hash(&token_hash(token))
        .await?
        .filter(|row| row.kind == TokenKind::Access)
        .ok_or(ApiError::UnknownToken)?;
    if row.device_revoked_at.is_some() {
        return Err(ApiError::DeviceRevoked);
    }
    if row.revoked_at.is_some() {
        return Err(ApiError::TokenRevoked);
    }
    if row.expires_at <= state.clock.now() {
        return Err(ApiError::TokenExpired);
    }
    Ok(AuthUser {
        user_id: row.user_id,
        role: row.role,
        org_id: row.org_id,
        device_id: row.device_id,
        session_id: row.session_id,
        device_actor_id: row.device_actor_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").expect("hash");
        let parsed = PasswordHash::new(&hash).expect("phc string");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }

    #[test]
    fn tokens_are_32_bytes_and_hash_to_64_hex_digits() {
        let token = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).expect("base64url").len(), 32);
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(new_token(), token);
    }

    #[test]
    fn actor_ids_are_16_bytes_of_hex() {
        assert_eq!(hex::decode(new_actor_id()).expect("hex").len(), 16);
    }
}
