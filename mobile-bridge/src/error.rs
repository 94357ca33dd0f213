//! The one error an app sees: few variants, each telling the app what to do
//! (retry later, log in again, show the reason, fix the field, report a bug, refresh the list).
//! Messages are Simplified Chinese first, English beside.

use sync_core::edit::EditError;
use sync_core::store::StoreError;

/// What went wrong, in terms an app can act on.
///
/// `Display` is exported: the text is Chinese first, English beside, and is what Kotlin's
/// `toString()` and Swift's `description` give. (UniFFI builds Kotlin's `message` from the
/// fields, `detail=…`; apps read the fields for the parts.)
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum BridgeError {
    /// The server could not be reached or answered unexpectedly: keep working offline, retry later.
    #[error("网络不可用，稍后自动重试 / network unavailable, will retry: {detail}")]
    Network {
        /// Details.
        detail: String,
    },
    /// The session is gone or was never there: show the login screen.
    #[error("请重新登录 / please log in again: {detail}")]
    Unauthorized {
        /// Details.
        detail: String,
    },
    /// The agency revoked this device: log in again, which enrols the phone as a new device and
    /// re-records its unsent work under it.
    #[error(
        "此设备已被停用，请重新登录以登记新设备 / this device was revoked: log in again to enrol it anew: {detail}"
    )]
    DeviceRevoked {
        /// Details.
        detail: String,
    },
    /// The rules forbid this (the same check the server makes): show the reason.
    #[error("操作不被允许 / not allowed: {reason}")]
    Refused {
        /// Why, Chinese first.
        reason: String,
    },
    /// A field the user typed is not acceptable: show it next to the field.
    #[error("输入无效（{field}）/ invalid {field}: {detail}")]
    InvalidInput {
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// The phone's storage failed (disk full, corrupt file): report it.
    #[error("本地存储出错 / local storage failed: {detail}")]
    Storage {
        /// Details.
        detail: String,
    },
    /// No such record on this phone: refresh the list.
    #[error("记录不存在 / not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The server no longer serves this version of the app: ask the user to update it. Nothing
    /// recorded on the phone is lost; it syncs once the app is updated.
    #[error("请更新应用 / update the app: {detail}")]
    UpdateRequired {
        /// The server's message, Chinese first, naming the oldest version it serves.
        detail: String,
    },
}

impl BridgeError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        BridgeError::InvalidInput {
            field: field.to_owned(),
            detail: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        BridgeError::NotFound { what: what.into() }
    }

    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        BridgeError::Storage {
            detail: e.to_string(),
        }
    }

    pub(crate) fn network(e: impl std::fmt::Display) -> Self {
        BridgeError::Network {
            detail: e.to_string(),
        }
    }
}

impl From<StoreError> for BridgeError {
    fn from(e: StoreError) -> Self {
        BridgeError::storage(e)
    }
}

impl From<rusqlite::Error> for BridgeError {
    fn from(e: rusqlite::Error) -> Self {
        BridgeError::storage(e)
    }
}

impl From<std::io::Error> for BridgeError {
    fn from(e: std::io::Error) -> Self {
        BridgeError::storage(e)
    }
}

impl From<reqwest::Error> for BridgeError {
    fn from(e: reqwest::Error) -> Self {
        BridgeError::network(e)
    }
}

impl From<sync_core::domain::DomainError> for BridgeError {
    fn from(e: sync_core::domain::DomainError) -> Self {
        use sync_core::domain::DomainError as D;
        let field = match &e {
            D::UnknownRole(_) => "role",
            D::UnknownGrade(_) => "grade",
            D::UnknownCategory(_) => "category",
            D::BadGeoPoint => "gps",
            D::BadDeadline(_) => "deadline",
            D::BadPhoto(f) => f,
            D::BadText { field, .. } => field,
        };
        BridgeError::invalid(field, e.to_string())
    }
}

impl From<sync_core::ids::IdError> for BridgeError {
    fn from(e: sync_core::ids::IdError) -> Self {
        BridgeError::invalid(e.kind, e.to_string())
    }
}

impl From<EditError> for BridgeError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Refused(reasons) => {
                // One line per distinct rule, in words a user knows.
                let mut lines: Vec<String> = reasons.iter().map(|r| r.message()).collect();
                lines.dedup();
                BridgeError::Refused {
                    reason: lines.join("；"),
                }
            }
            EditError::NotNow(why) => BridgeError::Refused {
                reason: why.message().to_owned(),
            },
            EditError::Doc(d) => BridgeError::storage(d),
            EditError::Write(w) => BridgeError::storage(w),
        }
    }
}
