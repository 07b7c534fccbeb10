//! Injected faults: what porch must retry, and the timeout that makes a blind retry apply a
//! batch twice.

use crate::{
    batch, client, items_batch_url, poll, poll_until_finished, shirt, start, status_url, submit,
    usage, CATALOG,
};
use porch_fake_meta::{FakeConfig, FakeMeta, FaultKind, ItemMethod};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn always(kind: FaultKind) -> FakeConfig {
    FakeConfig {
        fault_rate: 1.0,
        fault_kinds: vec![kind],
        ..FakeConfig::default()
    }
}

async fn create(fake: &FakeMeta, id: &str) -> reqwest::Result<reqwest::Response> {
    create_with(&client(), fake, id).await
}

async fn create_with(
    client: &reqwest::Client,
    fake: &FakeMeta,
    id: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(items_batch_url(fake, CATALOG))
        .json(&batch(json!([{"method": "CREATE", "data": shirt(id)}])))
        .send()
        .await
}

#[tokio::test]
async fn too_many_requests_is_a_429_with_retry_after_on_both_endpoints() {
    let fake = start(FakeConfig {
        retry_after_secs: 7,
        ..always(FaultKind::TooManyRequests)
    })
    .await;
    let batch_answer = create(&fake, "sku-1").await.expect("an answer");
    let status_answer = client()
        .get(status_url(&fake, CATALOG, "any"))
        .send()
        .await
        .expect("an answer");
    for answer in [batch_answer, status_answer] {
        assert_eq!(answer.status(), 429);
        assert_eq!(
            answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
        assert!(usage(answer.headers())["fake-business"].is_array());
        let error: Value = answer.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], 4);
        assert_eq!(error["error"]["is_transient"], true);
    }
    let faults: Vec<_> = fake.calls().iter().map(|c| (c.fault, c.status)).collect();
    assert_eq!(
        faults,
        vec![(Some(FaultKind::TooManyRequests), Some(429)); 2]
    );
    assert!(fake.items(CATALOG).is_empty());
}

#[tokio::test]
async fn an_injected_throttle_is_80014_with_usage_at_100() {
    let fake = start(always(FaultKind::CatalogThrottled)).await;
    let answer = create(&fake, "sku-1").await.expect("an answer");
    assert_eq!(answer.status(), 400);
    let use_case = usage(answer.headers())["fake-business"][0].clone();
    assert_eq!(use_case["call_count"], 100);
    assert_eq!(use_case["total_time"], 100);
    let error: Value = answer.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], 80014);
    assert_eq!(error["error"]["type"], "OAuthException");
}

#[tokio::test]
async fn server_errors_alternate_500_and_503_and_are_transient() {
    let fake = start(always(FaultKind::ServerError)).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let answer = create(&fake, "sku-1").await.expect("an answer");
        let status = answer.status().as_u16();
        let error: Value = answer.json().await.expect("JSON");
        assert_eq!(error["error"]["is_transient"], true);
        seen.push((status, error["error"]["code"].as_i64()));
    }
    assert_eq!(seen, vec![(500, Some(1)), (503, Some(2)), (500, Some(1))]);
}

#[tokio::test]
async fn a_timeout_after_accept_stores_the_item_and_a_blind_retry_applies_it_again() {
    let fake = start(FakeConfig {
        hang_ms: 2_000,
        ..always(FaultKind::Timeout)
    })
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("a client");

    let before = create_with(&impatient, &fake, "sku-1").await;
    assert!(
        before.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{before:?}"
    );
    assert!(
        fake.items(CATALOG).is_empty(),
        "the first timeout comes before the batch"
    );

    let after = create_with(&impatient, &fake, "sku-1").await;
    assert!(
        after.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{after:?}"
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.fault == Some(FaultKind::Timeout) && c.status.is_none()));
    assert_eq!(calls[0].handle, None);
    let lost = calls[1]
        .handle
        .clone()
        .expect("the second timeout came after accepting");
    assert_eq!(
        fake.items(CATALOG).len(),
        1,
        "the unanswered batch was applied"
    );

    fake.set_config(FakeConfig::default());
    assert_eq!(poll(&fake, &lost).await["status"], "finished");
    let retried = submit(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    assert_ne!(retried, lost);
    poll_until_finished(&fake, &retried).await;
    let log: Vec<(ItemMethod, bool, String)> = fake
        .log()
        .into_iter()
        .map(|a| (a.method, a.created, a.handle))
        .collect();
    assert_eq!(
        log,
        vec![
            (ItemMethod::Create, true, lost),
            (ItemMethod::Create, false, retried)
        ]
    );
    assert_eq!(fake.items(CATALOG).len(), 1, "one retailer id, one item");
}

#[tokio::test]
async fn a_timeout_ends_with_a_closed_connection_and_no_answer() {
    let fake = start(FakeConfig {
        hang_ms: 100,
        ..always(FaultKind::Timeout)
    })
    .await;
    let started = Instant::now();
    let outcome = client().get(status_url(&fake, CATALOG, "any")).send().await;
    let held = started.elapsed();
    let error = outcome.expect_err("no answer");
    assert!(!error.is_timeout(), "{error:?}");
    assert_eq!(error.status(), None);
    assert!(held >= Duration::from_millis(100), "{held:?}");
    assert!(held < Duration::from_secs(5), "{held:?}");
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let fake = start(FakeConfig {
        latency_ms: 150,
        ..FakeConfig::default()
    })
    .await;
    let started = Instant::now();
    let answer = create(&fake, "sku-1").await.expect("an answer");
    assert_eq!(answer.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_same_seed_fails_the_same_calls() {
    let config = FakeConfig {
        fault_rate: 0.5,
        fault_kinds: vec![FaultKind::ServerError],
        seed: 9,
        ..FakeConfig::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let fake = start(config.clone()).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let answer = create(&fake, "sku-1").await.expect("an answer");
            statuses.push(answer.status().as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let faults = runs[0].iter().filter(|status| **status >= 500).count();
    assert!((3..=17).contains(&faults), "{:?}", runs[0]);
}
