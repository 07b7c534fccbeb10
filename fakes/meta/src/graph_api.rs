//! The Graph endpoints porch's Meta connector calls (`items_batch`, `check_batch_request_status`
//! and the catalog's `products` edge), in the order Meta's front door works: latency, then an
//! injected fault (if one is drawn), then body limits, auth, the catalog's rate limit (batches
//! only), the call's parameters, and only then the work itself.

use crate::answer::Call;
use crate::batch_body::BatchBody;
use crate::config::FaultKind;
use crate::graph_error::{GraphError, MAX_BATCH_BYTES};
use crate::products::{next_page_url, ProductsQuery};
use crate::records::CallKind;
use crate::request_shape::ValidationStatus;
use crate::world::{SharedWorld, World};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<SharedWorld> {
    Router::new()
        .route("/{version}/{catalog}/items_batch", post(items_batch))
        .route(
            "/{version}/{catalog}/check_batch_request_status",
            get(batch_status),
        )
        .route("/{version}/{catalog}/products", get(products))
}

/// `POST /{version}/{catalog}/items_batch`.
async fn items_batch(
    State(world): State<SharedWorld>,
    Path((version, catalog)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call = Call::arrived(CallKind::ItemsBatch, &catalog);
    wait_latency(&world).await;
    if !is_graph_version(&version) {
        let path = format!("{version}/{catalog}/items_batch");
        return call.answer(&world, Err(GraphError::unknown_path(&path)));
    }
    let token = token_outside_body(&headers, &params);
    match world.with(World::draw_fault) {
        None => match accept(&world, call.catalog(), token, body).await {
            Ok(accepted) => {
                let handle = accepted.handle.clone();
                call.about(Some(handle))
                    .answer(&world, Ok(accepted.answer()))
            }
            Err(error) => call.answer(&world, Err(error)),
        },
        Some(FaultKind::Timeout) => {
            let handle = if world.with(World::next_batch_timeout_is_after_accept) {
                accept(&world, call.catalog(), token, body)
                    .await
                    .ok()
                    .map(|accepted| {
                        world.with(|world| world.finish_now(&accepted.handle));
                        accepted.handle
                    })
            } else {
                None
            };
            call.about(handle).hang_up(&world).await
        }
        Some(fault) => call.answer_fault(&world, fault).await,
    }
}

/// A batch Meta took on.
struct Accepted {
    handle: String,
    validation_status: Vec<ValidationStatus>,
}

impl Accepted {
    fn answer(self) -> Value {
        json!({
            "handles": [self.handle],
            "validation_status": self.validation_status,
        })
    }
}

async fn accept(
    world: &SharedWorld,
    catalog: &str,
    token: Option<String>,
    body: Body,
) -> Result<Accepted, GraphError> {
    let bytes = read_limited(body).await?;
    let batch = BatchBody::parse(&bytes)?;
    let token = token.or_else(|| batch.access_token().map(str::to_owned));
    world.with(|world| {
        world.authorize(catalog, token.as_deref(), "post")?;
        world.admit_batch_call(catalog)?;
        let checked = batch.check()?;
        let handle = world.accept_batch(catalog, checked.requests, checked.allow_upsert);
        Ok(Accepted {
            handle,
            validation_status: checked.validation_status,
        })
    })
}

/// The body, refused past Meta's 28 MB without reading the rest.
async fn read_limited(body: Body) -> Result<Vec<u8>, GraphError> {
    let mut bytes = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            GraphError::invalid_parameter(format_args!("The request body could not be read: {e}"))
        })?;
        if bytes.len() + chunk.len() > MAX_BATCH_BYTES {
            return Err(GraphError::payload_too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `GET /{version}/{catalog}/check_batch_request_status?handle=…`.
async fn batch_status(
    State(world): State<SharedWorld>,
    Path((version, catalog)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let handle = params.get("handle").cloned();
    let call = Call::arrived(CallKind::Status, &catalog).about(handle.clone());
    wait_latency(&world).await;
    if !is_graph_version(&version) {
        let path = format!("{version}/{catalog}/check_batch_request_status");
        return call.answer(&world, Err(GraphError::unknown_path(&path)));
    }
    if let Some(fault) = world.with(World::draw_fault) {
        return call.answer_fault(&world, fault).await;
    }
    let token = token_outside_body(&headers, &params);
    let load_ids = params
        .get("load_ids_of_invalid_requests")
        .is_some_and(|value| value == "true" || value == "1");
    let result = world.with(|world| {
        world.authorize(&catalog, token.as_deref(), "get")?;
        let handle = handle
            .ok_or_else(|| GraphError::invalid_parameter("The parameter handle is required"))?;
        world.poll(&catalog, &handle, load_ids)
    });
    call.answer(&world, result.map(|status| json!({ "data": [status] })))
}

/// `GET /{version}/{catalog}/products?filter=…&fields=id,retailer_id&limit=n&after=cursor`:
/// the items the catalog holds now. Like a status poll, never counted against the rate window.
async fn products(
    State(world): State<SharedWorld>,
    Path((version, catalog)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let call = Call::arrived(CallKind::Products, &catalog);
    wait_latency(&world).await;
    if !is_graph_version(&version) {
        let path = format!("{version}/{catalog}/products");
        return call.answer(&world, Err(GraphError::unknown_path(&path)));
    }
    if let Some(fault) = world.with(World::draw_fault) {
        return call.answer_fault(&world, fault).await;
    }
    let token = token_outside_body(&headers, &params);
    let query = ProductsQuery::parse(&params);
    let result = world.with(|world| {
        world.authorize(&catalog, token.as_deref(), "get")?;
        let query = query?;
        let page = world.products(&catalog, &query);
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        Ok(query.answer(&page, |cursor| {
            host.map(|host| next_page_url(host, uri.path(), &params, cursor))
        }))
    });
    call.answer(&world, result)
}

/// Any other path, answered the way Graph answers a path it does not know.
pub(crate) async fn unknown_path(State(world): State<SharedWorld>, uri: Uri) -> Response {
    let error = GraphError::unknown_path(uri.path().trim_start_matches('/'));
    let body = world.with(|world| error.body(&world.fbtrace_id()));
    (error.status, Json(body)).into_response()
}

async fn wait_latency(world: &SharedWorld) {
    let latency = world.with(|world| world.config().latency_ms);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

/// The token from `Authorization: Bearer …` (or Graph's `OAuth …`), else from `?access_token=`.
fn token_outside_body(headers: &HeaderMap, params: &Params) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("OAuth "))
        })
        .map(|token| token.trim().to_owned());
    from_header.or_else(|| params.get("access_token").cloned())
}

/// `v<digits>.<digits>`, e.g. `v24.0`.
fn is_graph_version(segment: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    segment
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_v_major_dot_minor() {
        for good in ["v24.0", "v3.10", "v100.1"] {
            assert!(is_graph_version(good), "{good}");
        }
        for bad in [
            "24.0", "v24", "v24.", "v.0", "V24.0", "v24.0.1", "v2a.0", "_fake",
        ] {
            assert!(!is_graph_version(bad), "{bad}");
        }
    }

    #[test]
    fn the_header_token_wins_over_the_query() {
        let mut headers = HeaderMap::new();
        let params: Params = [("access_token".to_owned(), "from-query".to_owned())].into();
        assert_eq!(
            token_outside_body(&headers, &params).as_deref(),
            Some("from-query")
        );
        headers.insert(
            header::AUTHORIZATION,
            axum::http::HeaderValue::from_static("Bearer from-header"),
        );
        assert_eq!(
            token_outside_body(&headers, &params).as_deref(),
            Some("from-header")
        );
        assert_eq!(
            token_outside_body(&headers, &Params::new()).as_deref(),
            Some("from-header")
        );
    }
}
