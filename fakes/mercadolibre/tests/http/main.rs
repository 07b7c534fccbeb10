//! The fake driven over real HTTP, the way porch's connector and the benchmark reach it: one
//! test binary, one fake per test on port 0.

mod auth;
mod control;
mod faults;
mod items;
mod refusals;

use porch_fake_mercadolibre::{AccountSeed, FakeConfig, FakeMercadoLibre, Site, TokenPair};
use serde_json::{json, Value};
use std::time::Duration;

pub const CLIENT_ID: &str = "4934588586838432";
pub const CLIENT_SECRET: &str = "fake-client-secret";
/// The seller most tests list for, on MLB (Brazil).
pub const SELLER: u64 = 241_983_636;

pub async fn start(config: FakeConfig) -> FakeMercadoLibre {
    let listen = "127.0.0.1:0".parse().expect("an address");
    FakeMercadoLibre::start(listen, config)
        .await
        .expect("the fake starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

pub fn seed(user_id: u64, site: Site, tokens: bool) -> AccountSeed {
    AccountSeed {
        user_id,
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        site,
        tokens,
    }
}

/// Seeds `user_id` on `site` and returns its first token pair.
pub fn seller(fake: &FakeMercadoLibre, user_id: u64, site: Site) -> TokenPair {
    fake.add_account(seed(user_id, site, true))
        .expect("seeded")
        .tokens
        .expect("a token pair")
}

/// A Brazilian item the fake accepts.
pub fn shirt(sku: &str) -> Value {
    json!({
        "title": "Camisa de linho azul",
        "category_id": "MLB31447",
        "price": 129.9,
        "currency_id": "BRL",
        "available_quantity": 5,
        "buying_mode": "buy_it_now",
        "listing_type_id": "gold_special",
        "condition": "new",
        "pictures": [{"source": "https://shop.example/shirt.jpg"}],
        "attributes": [{"id": "BRAND", "value_name": "Porch"}],
        "seller_custom_field": sku,
    })
}

/// Sends a request and returns its status and JSON body (`null` when the body is empty).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let answer = request.send().await.expect("an answer");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("a JSON body")
    };
    (status, body)
}

pub fn url(fake: &FakeMercadoLibre, path: &str) -> String {
    format!("{}{path}", fake.api_url())
}

pub async fn get(fake: &FakeMercadoLibre, token: &str, path: &str) -> (u16, Value) {
    send(client().get(url(fake, path)).bearer_auth(token)).await
}

pub async fn create(fake: &FakeMercadoLibre, token: &str, item: &Value) -> (u16, Value) {
    send(
        client()
            .post(url(fake, "/items"))
            .bearer_auth(token)
            .json(item),
    )
    .await
}

/// Creates an item that must be accepted and returns its id.
pub async fn create_ok(fake: &FakeMercadoLibre, token: &str, item: &Value) -> String {
    let (status, body) = create(fake, token, item).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

pub async fn put(fake: &FakeMercadoLibre, token: &str, id: &str, change: &Value) -> (u16, Value) {
    let request = client()
        .put(url(fake, &format!("/items/{id}")))
        .bearer_auth(token)
        .json(change);
    send(request).await
}

/// `POST /oauth/token` with a form body, as Mercado Libre documents it.
pub async fn token(fake: &FakeMercadoLibre, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let request = client()
        .post(url(fake, "/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body);
    send(request).await
}

pub async fn refresh(fake: &FakeMercadoLibre, refresh_token: &str) -> (u16, Value) {
    token(
        fake,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// The `code` of every cause of a validation error.
pub fn cause_codes(body: &Value) -> Vec<String> {
    body["cause"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|cause| cause["code"].as_str().map(str::to_owned))
        .collect()
}
