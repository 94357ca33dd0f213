//! `GET /api/v1/ledger`, `/ledger.csv` and `/ledger.xlsx`: the hazard ledger ([`crate::ledger`])
//! of the caller's read scope, filtered by township, agency, enterprise, dates, grade and state.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthUser;
use crate::error::{ApiError, Json};
use crate::ledger::{self, LedgerFilter, LedgerRow};
use crate::{AppState, scope};

async fn rows_for(
    state: &AppState,
    user: &AuthUser,
    filter: &LedgerFilter,
) -> Result<Vec<LedgerRow>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let query = ledger::query_of(filter, ids, scope::own_agency(user).map(str::to_owned))?;
    let today = crate::clock::china_date(state.clock.now());
    ledger::rows(&state.db, &query, today).await
}

/// `GET /api/v1/ledger`: the rows as JSON.
pub async fn json(
    State(state): State<AppState>,
    user: AuthUser,
    Query(filter): Query<LedgerFilter>,
) -> Result<Json<Vec<LedgerRow>>, ApiError> {
    Ok(Json(rows_for(&state, &user, &filter).await?))
}

/// `GET /api/v1/ledger.csv`: UTF-8 with a byte-order mark, for Chinese Excel.
pub async fn csv(
    State(state): State<AppState>,
    user: AuthUser,
    Query(filter): Query<LedgerFilter>,
) -> Result<Response, ApiError> {
    let rows = rows_for(&state, &user, &filter).await?;
    let body = ledger::to_csv(&rows)?;
    Ok(download(&state, body, "text/csv; charset=utf-8", "csv"))
}

/// `GET /api/v1/ledger.xlsx`: an Excel workbook.
pub async fn xlsx(
    State(state): State<AppState>,
    user: AuthUser,
    Query(filter): Query<LedgerFilter>,
) -> Result<Response, ApiError> {
    let rows = rows_for(&state, &user, &filter).await?;
    let body = tokio::task::spawn_blocking(move || ledger::to_xlsx(&rows))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("ledger workbook task failed: {e}")))??;
    Ok(download(
        &state,
        body,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ))
}

/// An attachment named `隐患台账-<date>.<ext>` (with an ASCII fallback name for old clients).
pub(crate) fn download(
    state: &AppState,
    body: Vec<u8>,
    content_type: &'static str,
    ext: &str,
) -> Response {
    let today = crate::clock::china_date(state.clock.now());
    attachment(
        body,
        content_type,
        "隐患台账",
        "hazard-ledger",
        &format!("{today}.{ext}"),
    )
}

/// `body` as a download: `Content-Disposition` with an ASCII name and the UTF-8 name of RFC 5987.
pub(crate) fn attachment(
    body: Vec<u8>,
    content_type: &'static str,
    name_zh: &str,
    name_ascii: &str,
    suffix: &str,
) -> Response {
    let utf8: String = format!("{name_zh}-{suffix}")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let disposition =
        format!("attachment; filename=\"{name_ascii}-{suffix}\"; filename*=UTF-8''{utf8}");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
