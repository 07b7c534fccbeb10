//! `/_fake/…`: the same controls [`crate::FakeMercadoLibre`] gives in-process tests, over HTTP
//! for the benchmark and the demo, which run the fake as its own process. Not part of what is
//! faked: no auth, no latency, no faults, never recorded as calls.

use crate::accounts::AccountSeed;
use crate::config::FakeConfig;
use crate::world::{SaleError, SharedWorld};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

pub(crate) fn routes() -> Router<SharedWorld> {
    Router::new()
        .route("/_fake/log", get(log))
        .route("/_fake/calls", get(calls))
        .route("/_fake/items", get(items))
        .route("/_fake/items/{id}/sale", post(sale))
        .route("/_fake/duplicates", get(duplicates))
        .route("/_fake/accounts", get(accounts).post(add_account))
        .route("/_fake/accounts/{user_id}/expire", post(expire))
        .route("/_fake/accounts/{user_id}/revoke", post(revoke))
        .route("/_fake/config", get(config).put(set_config))
        .route("/_fake/reset", post(reset))
}

async fn log(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.log().to_vec())).into_response()
}

async fn calls(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.calls().to_vec())).into_response()
}

async fn items(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.items())).into_response()
}

async fn duplicates(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.duplicates())).into_response()
}

/// A sale's body: how many units a buyer takes (1 when the body is empty).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sale {
    #[serde(default = "one")]
    quantity: u64,
}

fn one() -> u64 {
    1
}

async fn sale(State(world): State<SharedWorld>, Path(id): Path<String>, body: Bytes) -> Response {
    let quantity = if body.iter().all(u8::is_ascii_whitespace) {
        1
    } else {
        match parse::<Sale>(&body) {
            Ok(sale) => sale.quantity,
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, reason),
        }
    };
    match world.with(|world| world.sell(&id, quantity)) {
        Ok(item) => Json(item).into_response(),
        Err(SaleError::NoItem) => refuse(StatusCode::NOT_FOUND, format!("no item {id}")),
        Err(SaleError::Refused(reason)) => refuse(StatusCode::CONFLICT, reason),
    }
}

async fn accounts(State(world): State<SharedWorld>) -> Response {
    Json(world.with(|world| world.accounts())).into_response()
}

async fn add_account(State(world): State<SharedWorld>, body: Bytes) -> Response {
    let seed = match parse::<AccountSeed>(&body) {
        Ok(seed) => seed,
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, reason),
    };
    match world.with(|world| world.seed_account(&seed)) {
        Ok(seeded) => (StatusCode::CREATED, Json(seeded)).into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn expire(State(world): State<SharedWorld>, Path(user_id): Path<u64>) -> Response {
    if world.with(|world| world.expire_tokens(user_id)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refuse(StatusCode::NOT_FOUND, format!("no account {user_id}"))
    }
}

async fn revoke(State(world): State<SharedWorld>, Path(user_id): Path<u64>) -> Response {
    if world.with(|world| world.revoke(user_id)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refuse(StatusCode::NOT_FOUND, format!("no account {user_id}"))
    }
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
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, reason),
    };
    world.with(|world| world.set_config(config.clone()));
    Json(config).into_response()
}

async fn reset(State(world): State<SharedWorld>) -> Response {
    world.with(|world| world.reset());
    StatusCode::NO_CONTENT.into_response()
}

/// The body as JSON, whatever its content type (curl users forget it).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

fn refuse(status: StatusCode, reason: String) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}
