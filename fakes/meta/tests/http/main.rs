//! The fake driven over real HTTP, the way porch's connector and the benchmark reach it: one
//! test binary, one fake per test on port 0.

mod batches;
mod control;
mod faults;
mod products;
mod refusals;

use porch_fake_meta::{FakeConfig, FakeMeta};
use serde_json::{json, Value};
use std::time::Duration;

pub const CATALOG: &str = "cat-1";
pub const TOKEN: &str = "token-1";

pub async fn start(config: FakeConfig) -> FakeMeta {
    let listen = "127.0.0.1:0".parse().expect("an address");
    FakeMeta::start(listen, config)
        .await
        .expect("the fake starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

/// A product item Meta accepts.
pub fn shirt(id: &str) -> Value {
    json!({
        "id": id,
        "title": "Linen shirt",
        "description": "A shirt of washed linen.",
        "availability": "in stock",
        "condition": "new",
        "price": "25.00 GBP",
        "link": format!("https://shop.example/{id}"),
        "image_link": format!("https://shop.example/{id}.jpg"),
        "brand": "Porch",
        "item_group_id": "shirts",
    })
}

/// An `items_batch` body with the token in it.
pub fn batch(requests: Value) -> Value {
    json!({
        "access_token": TOKEN,
        "item_type": "PRODUCT_ITEM",
        "allow_upsert": true,
        "requests": requests,
    })
}

pub fn items_batch_url(fake: &FakeMeta, catalog: &str) -> String {
    format!("{}/{catalog}/items_batch", fake.graph_url())
}

pub fn status_url(fake: &FakeMeta, catalog: &str, handle: &str) -> String {
    format!(
        "{}/{catalog}/check_batch_request_status?handle={handle}&load_ids_of_invalid_requests=true&access_token={TOKEN}",
        fake.graph_url()
    )
}

/// Posts a batch and returns its answer's status and JSON body.
pub async fn post_batch(fake: &FakeMeta, body: &Value) -> (u16, Value) {
    let answer = client()
        .post(items_batch_url(fake, CATALOG))
        .json(body)
        .send()
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("a JSON body"))
}

/// Posts a batch that must be accepted and returns its handle.
pub async fn submit(fake: &FakeMeta, requests: Value) -> String {
    let (status, answer) = post_batch(fake, &batch(requests)).await;
    assert_eq!(status, 200, "{answer}");
    answer["handles"][0].as_str().expect("a handle").to_owned()
}

/// One status poll: the handle's entry of `data`.
pub async fn poll(fake: &FakeMeta, handle: &str) -> Value {
    let answer = client()
        .get(status_url(fake, CATALOG, handle))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("a JSON body");
    body["data"][0].clone()
}

/// Polls until `finished` (at most 20 polls).
pub async fn poll_until_finished(fake: &FakeMeta, handle: &str) -> Value {
    for _ in 0..20 {
        let status = poll(fake, handle).await;
        if status["status"] == "finished" {
            return status;
        }
    }
    panic!("{handle} never finished");
}

/// The usage header of an answer, parsed.
pub fn usage(headers: &reqwest::header::HeaderMap) -> Value {
    let text = headers
        .get(porch_fake_meta::USAGE_HEADER)
        .expect("the usage header")
        .to_str()
        .expect("text");
    serde_json::from_str(text).expect("JSON")
}
