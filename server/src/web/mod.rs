//! The web pages: one page application (vanilla JS, CSS, SVG charts) embedded in the binary and
//! served at `/`, plus the JSON and PDF routes only the pages need (change history, a visit's full
//! record, the rectification notice PDF).
//!
//! The pages never write documents themselves: every action goes through
//! `POST /api/v1/hazards/{id}/events` (see [`crate::api::actions`]), the same policy as the phones.

pub mod history;
pub mod notice;
pub mod pdf;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn index() -> Response {
    let mut response = asset(INDEX_HTML, "text/html; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// The pages and their assets (merged at the root by [`crate::router`]).
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
}

/// The API routes of the pages (merged into `/api/v1` by [`crate::api::routes`]).
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/visits/{id}/history", get(history::visit_history))
        .route("/visits/{id}/record", get(notice::record))
        .route("/visits/{id}/notice.pdf", get(notice::notice_pdf))
        .route("/hazards/{id}/changes", get(history::hazard_changes))
        .route(
            "/enterprises/{id}/file.pdf",
            get(notice::enterprise_file_pdf),
        )
}
