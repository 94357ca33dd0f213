//! The one error type of the HTTP edge.
//!
//! Clients get `{"error": "<stable_code>", "message": "<中文> / <English>"}`. A 4xx says what was wrong
//! so that the user or the app can fix it; a 5xx says nothing about the server's insides, and the cause
//! is logged instead. The `error` codes are part of the API: apps branch on them, so never rename one.

use std::borrow::Cow;

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("missing bearer token")]
    MissingToken,
    #[error("unknown token")]
    UnknownToken,
    #[error("token expired")]
    TokenExpired,
    #[error("token revoked")]
    TokenRevoked,
    #[error("device revoked")]
    DeviceRevoked,
    /// The password was right but the account is disabled (`crate::users`).
    #[error("account disabled")]
    AccountDisabled,
    /// Too many failed logins for this account or from this address (`crate::throttle`).
    #[error("too many login attempts; retry after {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    /// The route needs a session bound to an enrolled device.
    #[error("device required")]
    DeviceRequired,
    #[error("forbidden: {en}")]
    Forbidden {
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    #[error("not found: {en}")]
    NotFound {
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    /// Well-formed request whose content is not acceptable.
    #[error("invalid input ({code}): {en}")]
    Invalid {
        code: &'static str,
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    /// A body that cannot be read at all (truncated, garbage, wrong version).
    #[error("bad request ({code}): {en}")]
    BadRequest {
        code: &'static str,
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    /// The server cannot take the request now (every connection slot taken); try again.
    #[error("unavailable ({code}): {en}")]
    Unavailable {
        code: &'static str,
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    /// The disk is full: nothing was kept of the request.
    #[error("insufficient storage: {en}")]
    StorageFull {
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    /// The app (an SDK older than the server accepts) must be updated first (`crate::sdk`).
    #[error("upgrade required: {en}")]
    UpgradeRequired {
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    #[error("conflict ({code}): {en}")]
    Conflict {
        code: &'static str,
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
    },
    /// The body could not be read as the JSON the route expects.
    #[error("bad JSON body: {0}")]
    Json(#[from] JsonRejection),
    /// A response the framework or a layer produced without a JSON body, reshaped (see
    /// [`crate::http`]).
    #[error("{status}")]
    Status { status: StatusCode },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn forbidden(zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Forbidden {
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn not_found(zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        ApiError::NotFound {
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn bad_request(
        code: &'static str,
        zh: impl Into<Cow<'static, str>>,
        en: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError::BadRequest {
            code,
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn invalid(
        code: &'static str,
        zh: impl Into<Cow<'static, str>>,
        en: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError::Invalid {
            code,
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn unavailable(
        code: &'static str,
        zh: impl Into<Cow<'static, str>>,
        en: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError::Unavailable {
            code,
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidCredentials
            | ApiError::MissingToken
            | ApiError::UnknownToken
            | ApiError::TokenExpired
            | ApiError::TokenRevoked
            | ApiError::DeviceRevoked => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::DeviceRequired | ApiError::AccountDisabled => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UpgradeRequired { .. } => StatusCode::UPGRADE_REQUIRED,
            ApiError::Json(rejection) => rejection.status(),
            ApiError::Status { status } => *status,
            ApiError::Db(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code and the bilingual message.
    pub fn body(&self) -> ErrorBody {
        let (error, zh, en): (&'static str, Cow<'_, str>, Cow<'_, str>) = match self {
            ApiError::InvalidCredentials => (
                "invalid_credentials",
                "用户名或密码错误".into(),
                "wrong username or password".into(),
            ),
            ApiError::MissingToken => (
                "missing_token",
                "缺少访问令牌，请先登录".into(),
                "missing bearer token: log in first".into(),
            ),
            ApiError::UnknownToken => (
                "invalid_token",
                "访问令牌无效".into(),
                "unknown token".into(),
            ),
            ApiError::TokenExpired => (
                "token_expired",
                "访问令牌已过期，请刷新或重新登录".into(),
                "token expired: refresh it or log in again".into(),
            ),
            ApiError::TokenRevoked => (
                "token_revoked",
                "访问令牌已被撤销，请重新登录".into(),
                "token revoked: log in again".into(),
            ),
            ApiError::DeviceRevoked => (
                "device_revoked",
                "此设备已被停用".into(),
                "this device has been revoked".into(),
            ),
            ApiError::AccountDisabled => (
                "account_disabled",
                "此账号已停用，请联系本单位管理员".into(),
                "this account is disabled: ask your organisation's administrator".into(),
            ),
            ApiError::DeviceRequired => (
                "device_required",
                "请先登记设备并以该设备登录".into(),
                "enrol this device and log in with its device_id first".into(),
            ),
            ApiError::TooManyAttempts { retry_after } => (
                "too_many_attempts",
                format!("登录失败次数过多，请 {retry_after} 秒后再试").into(),
                format!("too many failed logins: try again in {retry_after} s").into(),
            ),
            ApiError::Forbidden { zh, en } => ("forbidden", zh.clone(), en.clone()),
            ApiError::NotFound { zh, en } => ("not_found", zh.clone(), en.clone()),
            ApiError::Invalid { code, zh, en }
            | ApiError::BadRequest { code, zh, en }
            | ApiError::Conflict { code, zh, en }
            | ApiError::Unavailable { code, zh, en } => (code, zh.clone(), en.clone()),
            ApiError::StorageFull { zh, en } => ("storage_full", zh.clone(), en.clone()),
            ApiError::UpgradeRequired { zh, en } => ("sdk_too_old", zh.clone(), en.clone()),
            ApiError::Json(rejection) => json_rejection_body(rejection),
            ApiError::Status { status } => status_body(*status),
            ApiError::Db(_) | ApiError::Internal(_) => (
                "internal_error",
                "服务器内部错误".into(),
                "internal server error".into(),
            ),
        };
        ErrorBody {
            error,
            message: format!("{zh} / {en}"),
        }
    }
}

fn json_rejection_body(
    rejection: &JsonRejection,
) -> (&'static str, Cow<'static, str>, Cow<'static, str>) {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => (
            "unsupported_media_type",
            "请求体应为 JSON（Content-Type: application/json）".into(),
            "expected a JSON body with Content-Type: application/json".into(),
        ),
        JsonRejection::JsonSyntaxError(e) => (
            "invalid_json",
            "请求体不是有效的 JSON".into(),
            format!("malformed JSON: {}", e.body_text()).into(),
        ),
        JsonRejection::JsonDataError(e) => (
            "invalid_body",
            "请求体字段缺失或类型错误".into(),
            format!("JSON does not match the expected shape: {}", e.body_text()).into(),
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            status_body(StatusCode::PAYLOAD_TOO_LARGE)
        }
        other => (
            "invalid_body",
            "无法读取请求体".into(),
            format!("cannot read the request body: {}", other.body_text()).into(),
        ),
    }
}

/// Bodies for statuses produced outside our handlers (framework, layers, fallback).
fn status_body(status: StatusCode) -> (&'static str, Cow<'static, str>, Cow<'static, str>) {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "请求体过大".into(),
            "request body too large".into(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "没有这个地址".into(), "no such route".into()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "此地址不支持该请求方法".into(),
            "method not allowed on this route".into(),
        ),
        StatusCode::REQUEST_TIMEOUT => {
            ("timeout", "请求处理超时".into(), "request timed out".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "不支持的请求体类型".into(),
            "unsupported media type".into(),
        ),
        s if s.is_server_error() => (
            "internal_error",
            "服务器内部错误".into(),
            "internal server error".into(),
        ),
        _ => ("bad_request", "请求无效".into(), "bad request".into()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request refused");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::TooManyAttempts { retry_after } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if matches!(
            self,
            ApiError::MissingToken
                | ApiError::UnknownToken
                | ApiError::TokenExpired
                | ApiError::TokenRevoked
                | ApiError::DeviceRevoked
                | ApiError::InvalidCredentials
        ) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `axum::Json` whose rejection is an [`ApiError`], so a bad body gets the same JSON error shape.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
