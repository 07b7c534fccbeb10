//! Command retention on `porch up`: commands older than it are trimmed (records, outcomes,
//! idempotency keys), the data directory gives the space back, and every product's state,
//! view, history and search result stays as it was, also after a restart. Events are kept.

mod common;

use common::*;
use futures::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PRODUCTS: [&str; 3] = ["shirt", "scarf", "coat"];
/// Commands that change nothing: each is a record, an outcome and an idempotency key, and no event.
const NO_OPS: usize = 1_000;

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// What a reader sees of the catalogue: each product's view and whole history, and the search.
async fn catalogue(p: &Porch, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for id in PRODUCTS {
        let (s, view) = p.get(key, &format!("/v1/products/{id}")).await;
        assert_eq!(s, 200, "{view}");
        let (s, history) = p
            .get(key, &format!("/v1/products/{id}/history?limit=1000"))
            .await;
        assert_eq!(s, 200, "{history}");
        assert!(
            history["entries"].as_array().is_some_and(|e| e.len() > 3),
            "{id} has a history: {history}"
        );
        out.push(view);
        out.push(history);
    }
    let hits = p.search(key, "q=linen&limit=100").await;
    assert_eq!(
        hits.len(),
        PRODUCTS.len(),
        "every listing is found: {hits:?}"
    );
    out.push(Value::Array(hits));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_past_their_retention_are_trimmed_and_the_catalogue_is_unchanged() {
    if distributed() {
        // Kafka's own retention trims the distributed topics; this is the embedded log's.
        return;
    }
    // Only this test's binary runs in this process, and `porch up` inherits it.
    std::env::set_var("PORCH_COMMAND_RETENTION", "10s");
    let mut p = Porch::start().await;
    let key = admin_key("acme");
    for id in PRODUCTS {
        list_one_offer(&p, &key, id).await;
    }
    let long = "Woven from Irish linen, washed soft. ".repeat(160);
    p.applied(
        reqwest::Method::PATCH,
        &key,
        "/v1/products/shirt",
        json!({ "description": long }),
    )
    .await;
    let first = p
        .command(
            reqwest::Method::PATCH,
            &key,
            "/v1/products/shirt",
            json!({ "description": long }),
        )
        .await;
    let first_id = first["command_id"].as_str().unwrap().to_string();
    for chunk in 0..NO_OPS / 50 {
        let sent = join_all((0..50).map(|i| {
            let (p, key, long) = (&p, &key, &long);
            async move {
                p.req(
                    reqwest::Method::PATCH,
                    key,
                    "/v1/products/shirt",
                    Some(json!({ "description": long })),
                )
                .await
                .0 == 202
                    || panic!("no-op {} refused", chunk * 50 + i)
            }
        }))
        .await;
        assert!(sent.into_iter().all(|ok| ok));
    }
    let last = p
        .applied(
            reqwest::Method::PATCH,
            &key,
            "/v1/products/shirt",
            json!({ "description": long }),
        )
        .await;
    assert_eq!(last["events"], json!([]), "a no-op emits nothing: {last}");
    let events_before = p.topic_len("product.events").await;
    let commands_before = p.topic("product.commands").await.len();
    assert!(commands_before > NO_OPS, "{commands_before} commands kept");
    let size_before = dir_size(&p.dir.join("data"));
    let before = catalogue(&p, &key).await;

    // Past the retention every command goes: its record and its outcome.
    let started = Instant::now();
    p.eventually("every command trimmed", 60, || async {
        (p.topic("product.commands").await.is_empty() && p.topic("offer.commands").await.is_empty())
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "nothing went before its retention"
    );
    let (s, gone) = p.get(&key, &format!("/v1/commands/{first_id}")).await;
    assert_eq!(s, 404, "a trimmed command's outcome is gone: {gone}");
    assert_eq!(
        p.topic_len("product.events").await,
        events_before,
        "events are kept"
    );
    assert_eq!(catalogue(&p, &key).await, before);

    // The space comes back: at the latest when the database is opened again.
    p.restart().await;
    let size_after = dir_size(&p.dir.join("data"));
    eprintln!(
        "data directory: {size_before} bytes before the trim, {size_after} after it and a restart"
    );
    assert!(
        size_after * 10 < size_before * 7,
        "the data directory shrinks: {size_before} bytes before, {size_after} after"
    );
    assert_eq!(catalogue(&p, &key).await, before);
    // The pipeline still works on what it kept.
    p.applied(
        reqwest::Method::PATCH,
        &key,
        "/v1/products/scarf",
        json!({ "title": "Linen scarf, long" }),
    )
    .await;
}
