//! The ingest API (DESIGN §7): merchants' commands in, accepted with 202 and appended to their
//! topics; the aggregated product view, search and command outcomes out. Routes per resource,
//! one problem+json error type, keys that name the tenant, OpenAPI from the handlers' own types.

mod auth;
mod channels;
mod commands;
mod compliance;
pub mod config;
mod connectors;
mod error;
mod extract;
pub mod hot;
mod images;
mod inventory;
mod media;
mod metrics;
mod offers;
mod openapi;
mod ops;
mod params;
mod product_view;
mod products;
mod reads;
mod search;
mod topics;
mod variants;

#[cfg(test)]
mod tests;

pub use channels::apply_configured as apply_configured_connections;
pub use config::{
    ApiKeyConfig, Config, ConfigError, HttpLimits, MediaConfig, OperatorConfig, Role, S3Config,
    TenantConfig, TenantMode,
};
pub use connectors::CONNECTORS;
pub use error::{ApiError, FieldError, Problem};
pub use media::{Media, MediaError, MediaSettings, S3Settings};
pub use metrics::Metrics;
pub use openapi::ApiDoc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::{middleware, BoxError, Router};
use porch_connectors::search::SearchIndex;
use porch_processors::store::{CommandSink, Store, TopicReader};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sink: Arc<dyn CommandSink>,
    pub topics: Arc<dyn TopicReader>,
    pub search: Arc<SearchIndex>,
    pub config: Arc<Config>,
    /// Product images, as objects `<tenant>/<product>/<name>`, and their public base URL.
    pub media: Arc<Media>,
    pub metrics: Arc<Metrics>,
    /// Set once the process serves requests; `/readyz` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    /// Which SKUs' reservations take the hot lane.
    pub hot: Arc<hot::HotSkus>,
}

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let limits = &state.config.http;
    // Back-pressure in front of the command writer: shed what cannot start now, bound what runs.
    // The concurrency limit is global (one semaphore for every route), and operations routes
    // stay outside it so probes answer under load.
    let back_pressure = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overload_error))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight.max(1),
        ))
        .timeout(Duration::from_millis(limits.request_timeout_ms.max(1)));
    let api = Router::new()
        .merge(products::router())
        .merge(images::router())
        .merge(variants::router())
        .merge(offers::router())
        .merge(inventory::router())
        .merge(hot::router())
        .merge(compliance::router())
        .merge(search::router())
        .merge(commands::router())
        .merge(topics::router())
        .merge(channels::router())
        .merge(connectors::router())
        .layer(back_pressure);
    Router::new()
        .merge(api)
        .merge(ops::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT))
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Answers 413 before reading a byte of a body whose declared length is over the limit, so the
/// client gets the problem instead of a connection closed under it mid-upload.
async fn refuse_declared_oversize(
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let limit = if req.method() == axum::http::Method::PUT && req.uri().path().contains("/images/")
    {
        extract::IMAGE_BODY_LIMIT
    } else {
        extract::JSON_BODY_LIMIT
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => {
            axum::response::IntoResponse::into_response(ApiError::payload_too_large(limit))
        }
        _ => next.run(req).await,
    }
}

async fn overload_error(err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::overloaded()
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::timeout()
    } else {
        ApiError::internal(&err)
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
