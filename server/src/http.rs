//! The HTTP layers every route runs inside: request id, tracing, CORS, compression, timeout, body
//! limit, and a last pass that gives bodiless error responses the API's JSON error shape.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Parses the configured CORS origins; an invalid one is a configuration error.
pub fn parse_cors_origins(origins: &[String]) -> anyhow::Result<Vec<HeaderValue>> {
    origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin.trim_end_matches('/'))
                .map_err(|_| anyhow::anyhow!("CORS 来源无效 / invalid CORS origin {origin:?}"))
        })
        .collect()
}

/// Wraps `router` in the standard layers configured by `config`.
///
/// The body limit is axum's [`DefaultBodyLimit`], which a route that streams uploads can raise for
/// itself with its own `.layer(DefaultBodyLimit::max(..))`.
pub fn apply_layers<S>(router: Router<S>, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Closed by default: without configured origins no CORS headers are sent and browsers keep to the
    // same origin.
    let cors = match parse_cors_origins(&config.cors_origins) {
        Ok(origins) if !origins.is_empty() => Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([REQUEST_ID])
                .max_age(std::time::Duration::from_secs(3600)),
        ),
        Ok(_) => None,
        Err(error) => {
            // build_state validated the origins; reaching here means a Config built by hand.
            tracing::error!(%error, "ignoring CORS origins");
            None
        }
    };
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        uri = %request.uri().path(),
                        request_id = %request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .option_layer(cors)
        .layer(axum::middleware::map_response(security_headers))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::map_response(json_error_shape))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(config.json_body_limit));
    router.layer(layers)
}

/// Headers every answer carries: no referrer leaves the site, no content is sniffed into another
/// type, and no API answer (tokens, hazards, names) is kept by a cache. A handler that chose its
/// own `Cache-Control` (photos, static assets) keeps it.
async fn security_headers<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

/// Gives an error response that is not JSON (axum's 404/405, the timeout's 408, ...) the API's error
/// body, so that clients can parse every error the same way.
async fn json_error_shape<B>(response: Response<B>) -> axum::response::Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (mut parts, _) = response.into_parts();
        let reshaped = ApiError::Status { status }.into_response();
        parts.headers.remove(header::CONTENT_LENGTH);
        let (new_parts, body) = reshaped.into_parts();
        parts.headers.extend(new_parts.headers);
        return axum::response::Response::from_parts(parts, body);
    }
    response.map(axum::body::Body::new)
}
