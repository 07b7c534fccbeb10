//! Optimistic concurrency (issue "merchants at scale", item 3): the product view carries the
//! product's version as an ETag; `If-Match` on a change to a product or an offer makes the command
//! conditional, and a stale one is REJECTED with VERSION_CONFLICT (`?wait` answers 412), never
//! applied. Runs on `porch up`, and on Kafka and Cassandra with PORCH_TEST_BACKEND=distributed.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const TENANT: &str = "acme";

/// Sends a request with `If-Match` (when given): its status, body and ETag.
async fn send(
    p: &Porch,
    method: Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut r = p
        .http
        .request(method, p.url(path))
        .bearer_auth(admin_key(TENANT));
    if let Some(tag) = if_match {
        r = r.header("If-Match", tag);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        etag,
    )
}

/// The product view and its ETag.
async fn view(p: &Porch, product: &str) -> (Value, String) {
    let (s, view, etag) = send(
        p,
        Method::GET,
        &format!("/v1/products/{product}"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{view}");
    let etag = etag.expect("the product view carries an ETag");
    assert_eq!(
        etag,
        format!("\"{}\"", view["product"]["version"]),
        "the ETag is the product's version"
    );
    (view, etag)
}

/// The outcome of command `id`.
async fn outcome(p: &Porch, id: &str) -> Value {
    loop {
        let (s, o) = p
            .get(&admin_key(TENANT), &format!("/v1/commands/{id}?wait=10000"))
            .await;
        assert_eq!(s, 200, "{o}");
        if o["status"] != "ACCEPTED" {
            return o;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_patches_with_the_same_if_match_apply_once_and_a_stale_one_answers_412() {
    let p = Porch::start().await;
    let key = admin_key(TENANT);
    p.applied(
        Method::POST,
        &key,
        "/v1/products",
        product_body("shirt", "Linen shirt", "apparel", true),
    )
    .await;
    let (_, tag) = view(&p, "shirt").await;

    // Two people edit what they both read: one change applies, the other is refused.
    let patch = |title: &'static str| {
        let (p, tag) = (&p, tag.clone());
        async move {
            let (s, accepted, _) = send(
                p,
                Method::PATCH,
                "/v1/products/shirt",
                Some(&tag),
                Some(json!({ "title": title })),
            )
            .await;
            assert_eq!(s, 202, "{accepted}");
            (
                title,
                outcome(p, accepted["command_id"].as_str().unwrap()).await,
            )
        }
    };
    let (a, b) = tokio::join!(patch("Shirt by Ann"), patch("Shirt by Bob"));
    let (won, lost) = match (a.1["status"].as_str(), b.1["status"].as_str()) {
        (Some("APPLIED"), Some("REJECTED")) => (a, b),
        (Some("REJECTED"), Some("APPLIED")) => (b, a),
        other => panic!(
            "one must apply and one be rejected: {other:?} {} {}",
            a.1, b.1
        ),
    };
    assert_eq!(
        lost.1["reasons"][0]["code"], "VERSION_CONFLICT",
        "{}",
        lost.1
    );
    assert_eq!(lost.1["reasons"][0]["field"], "If-Match", "{}", lost.1);
    assert_eq!(lost.1["events"], json!([]), "nothing applied: {}", lost.1);
    let (shown, after) = view(&p, "shirt").await;
    assert_eq!(shown["product"]["product"]["title"], won.0, "{shown}");
    assert_ne!(after, tag, "the version moved on");

    // With ?wait, a stale If-Match answers 412 (problem+json naming If-Match) and deactivates
    // nothing; the current one answers 200 with the outcome.
    let (s, problem, _) = send(
        &p,
        Method::POST,
        "/v1/products/shirt/deactivate?wait=10000",
        Some(&tag),
        None,
    )
    .await;
    assert_eq!(s, 412, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "If-Match", "{problem}");
    let (shown, same) = view(&p, "shirt").await;
    assert_ne!(shown["status"], "INACTIVE", "{shown}");
    assert_eq!(same, after);
    let (s, done, _) = send(
        &p,
        Method::POST,
        "/v1/products/shirt/deactivate?wait=10000",
        Some(&after),
        None,
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["status"], "APPLIED", "{done}");
    let (shown, _) = view(&p, "shirt").await;
    assert_eq!(shown["status"], "INACTIVE", "{shown}");

    // `*` matches any version; a weak ETag never matches; a malformed one, or If-Match on a
    // command that is not conditional, is refused before anything is sent.
    let (s, done, _) = send(
        &p,
        Method::POST,
        "/v1/products/shirt/reactivate?wait=10000",
        Some("*"),
        None,
    )
    .await;
    assert_eq!((s, &done["status"]), (200, &json!("APPLIED")), "{done}");
    let (_, now) = view(&p, "shirt").await;
    let weak = format!("W/{now}");
    for (tag, path, want) in [
        (weak.as_str(), "/v1/products/shirt/deactivate", 412),
        ("3", "/v1/products/shirt/deactivate", 400),
        (now.as_str(), "/v1/products/shirt/variants", 400),
    ] {
        let body = path
            .ends_with("variants")
            .then(|| json!({ "variants": [{ "sku": "SHIRT-M" }] }));
        let (s, problem, _) = send(&p, Method::POST, path, Some(tag), body).await;
        assert_eq!(s, want, "{tag} on {path}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "If-Match", "{problem}");
    }
    let (shown, unchanged) = view(&p, "shirt").await;
    assert_eq!(unchanged, now, "nothing was sent: {shown}");
    assert_eq!(shown["variants"], json!([]), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_change_applies_only_at_the_version_it_was_read_at() {
    let p = Porch::start().await;
    let key = admin_key(TENANT);
    let offer = list_one_offer(&p, &key, "coat").await;
    let (shown, _) = view(&p, "coat").await;
    let version = shown["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["offer_id"] == offer.as_str())
        .map(|o| o["version"].as_i64().unwrap())
        .unwrap();
    let current = format!("\"{version}\"");
    let stale = format!("\"{}\"", version - 1);

    let price = |amount: i64| json!({ "price": { "amount_minor": amount, "currency": "GBP" } });
    let (s, problem, _) = send(
        &p,
        Method::PATCH,
        &format!("/v1/offers/{offer}?wait=10000"),
        Some(&stale),
        Some(price(1999)),
    )
    .await;
    assert_eq!(s, 412, "{problem}");
    let (s, done, _) = send(
        &p,
        Method::PATCH,
        &format!("/v1/offers/{offer}?wait=10000"),
        Some(&current),
        Some(price(2199)),
    )
    .await;
    assert_eq!((s, &done["status"]), (200, &json!("APPLIED")), "{done}");
    // The withdrawal read the offer before that change: refused, and the offer still sells.
    let (s, problem, _) = send(
        &p,
        Method::POST,
        &format!("/v1/offers/{offer}/withdraw?wait=10000"),
        Some(&current),
        None,
    )
    .await;
    assert_eq!(s, 412, "{problem}");
    let (shown, _) = view(&p, "coat").await;
    let o = shown["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["offer_id"] == offer.as_str())
        .unwrap()
        .clone();
    assert_eq!(o["withdrawn"], false, "{o}");
    assert_eq!(o["price"]["amount_minor"], 2199, "{o}");
    assert_eq!(o["version"], version + 1, "{o}");
}
