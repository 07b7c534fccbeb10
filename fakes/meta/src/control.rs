//! `/_fake/…`: the same controls [`crate::FakeMeta`] gives in-process tests, over HTTP for the
//! benchmark and the demo, which run the fake as its own process. Not part of what is faked:
//! no latency, no faults, no usage header, never recorded as calls.

use crate::config::{FakeConfig, RejectRule};
use crate::world::SharedWorld;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

pub(crate) fn routes() -> Router<SharedWorld> {
    Router::new()
        .route("/_fake/log", get(log))
        .route("/_fake/calls", get(calls))
        .route("/_fake/items/{catalog}", get(items))
        .route("/_fake/config", get(config).put(set_config))
        .route("/_fake/rules", get(rules).post(add_rule))
        .route("/_fake/reset", post(reset))
}

async fn log(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.log().to_vec())).into_response()
}

async fn calls(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.calls().to_vec())).into_response()
}

async fn items(State(world): State<SharedWorld>, Path(catalog): Path<String>) -> Response {
    Json(world.with(|world| world.items(&catalog))).into_response()
}

async fn config(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.config().clone())).into_response()
}

async fn set_config(State(world): State<SharedWorld>, body: Bytes) -> Response {
    let config = match parse::<FakeConfig>(&body).and_then(|config| {
        config.check().map_err(|e| e.to_string())?;
        Ok(config)
    }) {
        Ok(config) => config,
        Err(reason) => return refuse(reason),
    };
    world.with(|world| world.set_config(config.clone()));
    Json(config).into_response()
}

async fn rules(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.rules().to_vec())).into_response()
}

async fn add_rule(State(world): State<SharedWorld>, body: Bytes) -> Response {
    let rule = match parse::<RejectRule>(&body) {
        Ok(rule) => rule,
        Err(reason) => return refuse(reason),
    };
    world.with(|world| world.add_rule(rule.clone()));
    (StatusCode::CREATED, Json(rule)).into_response()
}

async fn reset(State(world): State<SharedWorld>) -> Response {
    world.with(|world| world.reset());
    StatusCode::NO_CONTENT.into_response()
}

/// The body as JSON, whatever its content type (curl users forget it).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

fn refuse(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": reason }))).into_response()
}
