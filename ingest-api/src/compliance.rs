//! Compliance: a person's decision on a product held for manual review in a region.

use crate::auth::Writer;
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::products::checked_product;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use porch_schemas::DecideCompliance;
use serde::Deserialize;
use utoipa::ToSchema;

const MAX_NOTE: usize = 2_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/compliance/{product}/{region}/decision", post(decide))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub approve: bool,
    pub note: Option<String>,
}

/// Approves or rejects a product in a region after manual review (admin keys only).
#[utoipa::path(
    post,
    path = "/v1/compliance/{product}/{region}/decision",
    tag = "compliance",
    params(("product" = String, Path, description = "product id"), ("region" = String, Path, description = "region code")),
    request_body = DecisionBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn decide(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath((product, region)): ApiPath<(String, String)>,
    body: ApiJson<DecisionBody>,
) -> Result<Response, ApiError> {
    writer.require_admin()?;
    let region = writer
        .caller()
        .parse_region(region)
        .map_err(|e| ApiError::invalid("region", e.0))?;
    let b = body.value;
    if b.note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE)
    {
        return Err(ApiError::invalid(
            "note",
            format!("at most {MAX_NOTE} characters"),
        ));
    }
    let product_id = checked_product(&state, &writer, product).await?;
    let aggregate = format!("{product_id}@{region}");
    let command = DecideCompliance {
        product_id,
        region,
        approve: b.approve,
        note: b.note,
    };
    submit(
        &state,
        &writer,
        &meta,
        &body.raw,
        NewCommand::new(command, aggregate),
    )
    .await
}
