//! The operator's window on the log: topics, their partitions' end offsets, and records as JSON.

use crate::auth::Operator;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::params::{parse_limit, parse_number};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use porch_processors::store::{TopicReader, TopicRecordJson};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

const MAX_RECORDS: usize = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/topics", get(list_topics))
        .route("/v1/topics/{topic}", get(describe_topic))
        .route(
            "/v1/topics/{topic}/partitions/{partition}/records",
            get(read_records),
        )
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<String>,
    /// Every domain topic has this many partitions.
    pub partitions: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicDescription {
    pub topic: String,
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionInfo {
    pub partition: u32,
    /// The offset the next record will get.
    pub end_offset: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordPage {
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<TopicRecordJson>,
    /// The offset to read from next.
    pub next_offset: u64,
    pub end_offset: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// First offset to read, 0 by default.
    #[param(value_type = Option<u64>)]
    from: Option<String>,
    /// 1 to 1000, 100 by default.
    #[param(value_type = Option<usize>)]
    limit: Option<String>,
}

async fn on_reader<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn TopicReader) -> Result<T, ApiError> + Send + 'static,
{
    let reader: Arc<dyn TopicReader> = state.topics.clone();
    tokio::task::spawn_blocking(move || f(&*reader))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

fn known_topic(reader: &dyn TopicReader, topic: &str) -> Result<(), ApiError> {
    if reader.topics().iter().any(|t| t == topic) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("topic '{topic}'")))
    }
}

/// Every topic (operator key only).
#[utoipa::path(
    get,
    path = "/v1/topics",
    tag = "operations",
    responses((status = 200, body = TopicList), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn list_topics(
    State(state): State<AppState>,
    _op: Operator,
) -> Result<Json<TopicList>, ApiError> {
    let list = on_reader(&state, |r| {
        Ok(TopicList {
            topics: r.topics(),
            partitions: r.partitions(),
        })
    })
    .await?;
    Ok(Json(list))
}

/// A topic's partitions and their end offsets (operator key only).
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}",
    tag = "operations",
    params(("topic" = String, Path, description = "topic name")),
    responses((status = 200, body = TopicDescription), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn describe_topic(
    State(state): State<AppState>,
    _op: Operator,
    ApiPath(topic): ApiPath<String>,
) -> Result<Json<TopicDescription>, ApiError> {
    let description = on_reader(&state, move |r| {
        known_topic(r, &topic)?;
        let partitions = (0..r.partitions())
            .map(|p| {
                Ok(PartitionInfo {
                    partition: p,
                    end_offset: r.end_offset(&topic, p)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(TopicDescription { topic, partitions })
    })
    .await?;
    Ok(Json(description))
}

/// Records of one partition from an offset, decoded to JSON (operator key only).
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}/partitions/{partition}/records",
    tag = "operations",
    params(("topic" = String, Path, description = "topic name"), ("partition" = u32, Path, description = "partition"), RecordsQuery),
    responses((status = 200, body = RecordPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn read_records(
    State(state): State<AppState>,
    _op: Operator,
    ApiPath((topic, partition)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RecordsQuery>,
) -> Result<Json<RecordPage>, ApiError> {
    let partition: u32 = partition
        .parse()
        .map_err(|_| ApiError::not_found(format!("partition '{partition}'")))?;
    let from = parse_number::<u64>("from", q.from.as_deref(), 0, 0..=u64::MAX)?;
    let limit = parse_limit(q.limit.as_deref(), 100, MAX_RECORDS)?;
    let page = on_reader(&state, move |r| {
        known_topic(r, &topic)?;
        if partition >= r.partitions() {
            return Err(ApiError::not_found(format!(
                "partition {partition} of '{topic}'"
            )));
        }
        let records = r.read_json(&topic, partition, from, limit)?;
        let end_offset = r.end_offset(&topic, partition)?;
        let next_offset = records.last().map(|rec| rec.offset + 1).unwrap_or(from);
        Ok(RecordPage {
            records,
            next_offset,
            end_offset,
        })
    })
    .await?;
    Ok(Json(page))
}
