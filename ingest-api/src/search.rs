//! Search over the tenant's VISIBLE listings.

use crate::auth::{Caller, Operator};
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;
use crate::params::{non_blank, parse_limit};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use porch_connectors::search::{SearchPage, SearchQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/search", get(search))
        .route("/v1/search/position", get(position))
}

/// How far into `search.events` the index this API searches has got, per partition: a listing
/// whose event is below its partition's offset can be found. Operator key only.
pub async fn position(State(state): State<AppState>, _operator: Operator) -> Json<Value> {
    let offsets: Option<Vec<u64>> = state
        .search
        .checkpoint()
        .and_then(|c| serde_json::from_str(&c).ok());
    Json(json!({ "offsets": offsets.unwrap_or_default() }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to look for in title, description, brand and category.
    q: Option<String>,
    /// Only listings of this region.
    region: Option<String>,
    /// 1 to 100, 20 by default.
    #[param(value_type = Option<usize>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Listings that can be bought now, by relevance.
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "a page of hits: {hits, next_cursor, total}", body = Object),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<Json<SearchPage>, ApiError> {
    let limit = parse_limit(p.limit.as_deref(), 20, porch_connectors::search::MAX_LIMIT)?;
    let region = non_blank(p.region)
        .map(|r| {
            caller
                .parse_region(r)
                .map_err(|e| ApiError::invalid("region", e.0))
        })
        .transpose()?;
    let query = SearchQuery {
        tenant: caller.tenant().clone(),
        region,
        text: non_blank(p.q),
        limit,
        cursor: non_blank(p.cursor),
    };
    let index = state.search.clone();
    let page = tokio::task::spawn_blocking(move || index.search(&query))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match page {
        Ok(page) => Ok(Json(page)),
        Err(e) if e.is_bad_request() => Err(ApiError::bad_request("cursor", e.to_string())),
        Err(e) => Err(ApiError::internal(&e)),
    }
}
