//! The JSON API under `/api/v1`, one submodule per resource.
//!
//! Handlers parse their input, call the database or a service, and map failures to
//! [`ApiError`](crate::error::ApiError); rules about who may see what live in [`crate::scope`].

pub mod actions;
mod auth;
pub mod dashboard;
mod devices;
mod enterprises;
pub mod hazards;
pub mod imports;
pub mod ledger;
pub mod openapi;
pub mod photos;
pub mod sync;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// The `/api/v1` routes (without the HTTP layers, which [`crate::router`] adds).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/colleagues", get(auth::colleagues))
        .route("/users", get(crate::users::api_list))
        .route("/users/{id}/disable", post(crate::users::api_disable))
        .route("/users/{id}/enable", post(crate::users::api_enable))
        .route(
            "/users/{id}/password",
            post(crate::users::api_reset_password),
        )
        .route("/openapi.json", get(openapi::serve))
        .route("/devices", post(devices::enrol).get(devices::list))
        .route("/devices/{id}/revoke", post(devices::revoke))
        .route("/enterprises", get(enterprises::list))
        .route("/enterprises/{id}", get(enterprises::get))
        .route("/enterprises/{id}/file", get(hazards::enterprise_file))
        .route(
            "/enterprises/{id}/file.zip",
            get(hazards::enterprise_file_zip),
        )
        .route("/hazards", get(hazards::list))
        .route("/hazards/{id}", get(hazards::get))
        .route("/hazards/{id}/events", post(actions::record))
        .route("/hazards/{id}/resolve", post(actions::resolve))
        .route("/visits", get(hazards::visits))
        .route("/visits/{id}", get(hazards::visit))
        .route("/reports/major", get(hazards::major_reports))
        .route("/dashboard", get(dashboard::get))
        .route("/inbox", get(crate::webhooks::inbox))
        .route("/events/stream", get(crate::changes::stream))
        .route("/webhooks", get(crate::webhooks::list))
        .route("/webhooks/deliveries", get(crate::webhooks::deliveries))
        .route("/statistics", get(crate::statistics::json))
        .route("/statistics.xlsx", get(crate::statistics::xlsx))
        .route("/ledger", get(ledger::json))
        .route("/ledger.csv", get(ledger::csv))
        .route("/ledger.xlsx", get(ledger::xlsx))
        .route(
            "/imports/{kind}",
            post(imports::import).layer(axum::extract::DefaultBodyLimit::max(imports::MAX_BODY)),
        )
        .merge(crate::web::api_routes())
        .route(
            "/photos/{sha256}",
            axum::routing::put(photos::put_chunk)
                .get(photos::display)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::photos::PhotoConfig::default().max_photo_bytes as usize + 1024,
                )),
        )
        .route("/photos/{sha256}/status", get(photos::status))
        .route("/photos/{sha256}/thumb", get(photos::thumb))
        .route(
            "/sync",
            post(sync::sync).layer(axum::extract::DefaultBodyLimit::max(
                sync_core::protocol::MAX_MESSAGE_BYTES,
            )),
        )
}

/// Refuses an empty or over-long text field with a 422 naming it.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<(), crate::error::ApiError> {
    let count = value.trim().chars().count();
    if count == 0 || count > max_chars {
        return Err(crate::error::ApiError::invalid(
            "invalid_field",
            format!("字段 {field} 不能为空，且不超过 {max_chars} 个字符"),
            format!("field {field} must be 1 to {max_chars} characters"),
        ));
    }
    Ok(())
}
