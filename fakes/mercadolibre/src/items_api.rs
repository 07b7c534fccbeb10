//! The item endpoints porch's Mercado Libre connector calls: create, read (one or up to 20 at
//! once), update, and the seller's item search that finds an item again by SKU.

use crate::answer::Call;
use crate::api_error::ApiError;
use crate::config::FaultKind;
use crate::front_door::{bearer, serve, wait_latency};
use crate::records::CallKind;
use crate::world::{SharedWorld, World};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<SharedWorld> {
    Router::new()
        .route("/items", get(multiget).post(create_item))
        .route("/items/{id}", get(get_item).put(update_item))
        .route("/users/{user_id}/items/search", get(search_items))
}

/// `POST /items`. Every second timeout comes after the item was created: the seller has a new
/// listing and the caller never learns its id, so a blind retry lists the SKU twice.
async fn create_item(
    State(world): State<SharedWorld>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut call = Call::arrived(CallKind::CreateItem, "POST", "/items");
    let token = bearer(&headers);
    wait_latency(&world).await;
    match world.with(World::draw_fault) {
        None => {
            let result = world.with(|world| world.create_item(&mut call, token.as_deref(), &body));
            call.answer(&world, result)
        }
        Some(FaultKind::Timeout) => {
            if world.with(World::next_create_timeout_is_after_create) {
                let created =
                    world.with(|world| world.create_item(&mut call, token.as_deref(), &body));
                if let Err(refused) = created {
                    tracing::debug!(%refused, "the create behind a timeout was refused");
                }
            }
            call.hang_up(&world).await
        }
        Some(fault) => call.answer_fault(&world, fault).await,
    }
}

/// `GET /items/{id}`.
async fn get_item(
    State(world): State<SharedWorld>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let call = Call::arrived(CallKind::GetItem, "GET", &format!("/items/{id}"));
    let token = bearer(&headers);
    serve(&world, call, |world, call| {
        world.get_item(call, token.as_deref(), &id)
    })
    .await
}

/// `GET /items?ids=a,b`.
async fn multiget(
    State(world): State<SharedWorld>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let call = Call::arrived(CallKind::Multiget, "GET", "/items");
    let token = bearer(&headers);
    serve(&world, call, |world, call| {
        world.multiget(call, token.as_deref(), &params)
    })
    .await
}

/// `PUT /items/{id}`.
async fn update_item(
    State(world): State<SharedWorld>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::arrived(CallKind::UpdateItem, "PUT", &format!("/items/{id}"));
    let token = bearer(&headers);
    serve(&world, call, |world, call| {
        world.update_item(call, token.as_deref(), &id, &body)
    })
    .await
}

/// `GET /users/{user_id}/items/search?seller_sku=…&status=…&offset=…&limit=…`.
async fn search_items(
    State(world): State<SharedWorld>,
    Path(user_id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/users/{user_id}/items/search");
    let call = Call::arrived(CallKind::SearchItems, "GET", &path);
    let token = bearer(&headers);
    serve(&world, call, |world, call| {
        world.search(call, token.as_deref(), &user_id, &params)
    })
    .await
}

/// Any other path, answered the way Mercado Libre answers a resource it does not have. Not
/// recorded: no connector means to call it.
pub(crate) async fn unknown_path(uri: Uri) -> Response {
    let error = ApiError::unknown_resource(uri.path());
    (error.status, Json(error.body)).into_response()
}
