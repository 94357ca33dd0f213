//! Which phone SDK versions the server accepts. The bridge names its version in the
//! `x-inspect-sdk` header of every request; a version older than `min_sdk_version` is answered
//! 426 `sdk_too_old` with a bilingual "update the app" message before any handler runs, so an
//! app built against an old protocol is told what to do instead of meeting refusals it cannot
//! read. Requests without the header (the web pages, integrations) are not SDK requests and
//! pass.

use std::fmt;
use std::str::FromStr;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::AppState;
use crate::error::ApiError;

/// The header the bridge sends.
pub const HEADER: &str = "x-inspect-sdk";

/// The oldest SDK this server's protocol works with: the default minimum.
pub const OLDEST_SUPPORTED: SdkVersion = SdkVersion(0, 1, 0);

/// `major.minor.patch`, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct SdkVersion(pub u32, pub u32, pub u32);

impl fmt::Display for SdkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A version that is not `major.minor.patch`.
#[derive(Debug, thiserror::Error)]
#[error("版本号应为“主.次.修订”，如 0.1.0 / a version is major.minor.patch, such as 0.1.0: {0:?}")]
pub struct BadVersion(String);

impl FromStr for SdkVersion {
    type Err = BadVersion;

    fn from_str(s: &str) -> Result<Self, BadVersion> {
        let bad = || BadVersion(s.chars().take(40).collect());
        if s.len() > 32 {
            return Err(bad());
        }
        let mut parts = s.split('.').map(|p| {
            if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()) {
                Err(bad())
            } else {
                p.parse::<u32>().map_err(|_| bad())
            }
        });
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(SdkVersion(major?, minor?, patch?))
    }
}

impl TryFrom<String> for SdkVersion {
    type Error = BadVersion;

    fn try_from(s: String) -> Result<Self, BadVersion> {
        s.parse()
    }
}

/// The layer: refuses an SDK older than the configured minimum, and a header that is not a
/// version.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(value) = request.headers().get(HEADER) {
        let parsed = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<SdkVersion>().ok());
        let Some(version) = parsed else {
            return ApiError::bad_request(
                "sdk_version_invalid",
                "应用版本号无效",
                "the x-inspect-sdk header is not a major.minor.patch version",
            )
            .into_response();
        };
        let min = state.config.min_sdk_version;
        if version < min {
            return ApiError::UpgradeRequired {
                zh: format!("此应用版本（{version}）过旧，请更新到 {min} 或更高版本").into(),
                en: format!("this app version ({version}) is too old: update it to {min} or later")
                    .into(),
            }
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly_and_compare_numerically() {
        assert_eq!("0.1.0".parse::<SdkVersion>().unwrap(), SdkVersion(0, 1, 0));
        assert!("0.10.0".parse::<SdkVersion>().unwrap() > "0.9.9".parse().unwrap());
        assert!("1.0.0".parse::<SdkVersion>().unwrap() > "0.99.99".parse().unwrap());
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.x.3",
            "-1.2.3",
            "1..3",
            "1.2.3-beta",
            " 1.2.3",
            "9999999.0.0",
        ] {
            assert!(bad.parse::<SdkVersion>().is_err(), "{bad:?}");
        }
        assert_eq!(OLDEST_SUPPORTED.to_string(), "0.1.0");
    }
}
