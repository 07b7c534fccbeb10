//! Calls Meta refuses as a whole: auth, the catalog's rate limit, the per-call limits.

use crate::{
    batch, client, items_batch_url, post_batch, shirt, start, status_url, submit, usage, CATALOG,
    TOKEN,
};
use porch_fake_meta::{FakeConfig, MAX_REQUESTS_PER_BATCH};
use serde_json::{json, Value};
use std::time::Duration;

fn one_catalog() -> FakeConfig {
    FakeConfig {
        catalogs: [(CATALOG.to_owned(), TOKEN.to_owned())].into(),
        ..FakeConfig::default()
    }
}

fn create_one() -> Value {
    json!([{"method": "CREATE", "data": shirt("sku-1")}])
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_error_190() {
    let fake = start(one_catalog()).await;
    let mut wrong = batch(create_one());
    wrong["access_token"] = json!("not-the-token");
    let mut missing = batch(create_one());
    if let Some(fields) = missing.as_object_mut() {
        fields.remove("access_token");
    }
    for body in [wrong, missing] {
        let answer = client()
            .post(items_batch_url(&fake, CATALOG))
            .json(&body)
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 400);
        assert!(answer.headers().contains_key("x-business-use-case-usage"));
        let error: Value = answer.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], 190, "{error}");
        assert_eq!(error["error"]["type"], "OAuthException");
        assert_eq!(error["error"]["is_transient"], false);
        assert_eq!(
            error["error"]["message"],
            "Invalid OAuth access token - Cannot parse access token"
        );
        let trace = error["error"]["fbtrace_id"].as_str().expect("a trace id");
        assert!(!trace.is_empty());
    }
    assert!(fake.items(CATALOG).is_empty());
    let codes: Vec<Option<i64>> = fake.calls().iter().map(|c| c.error_code).collect();
    assert_eq!(codes, vec![Some(190), Some(190)]);
}

#[tokio::test]
async fn the_token_may_come_as_a_bearer_header_or_a_query_parameter() {
    let fake = start(one_catalog()).await;
    let mut body = batch(create_one());
    if let Some(fields) = body.as_object_mut() {
        fields.remove("access_token");
    }
    let by_header = client()
        .post(items_batch_url(&fake, CATALOG))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("an answer");
    assert_eq!(by_header.status(), 200);
    let by_query = client()
        .post(format!(
            "{}?access_token={TOKEN}",
            items_batch_url(&fake, CATALOG)
        ))
        .json(&body)
        .send()
        .await
        .expect("an answer");
    assert_eq!(by_query.status(), 200);
    let handle: Value = by_query.json().await.expect("JSON");
    let handle = handle["handles"][0].as_str().expect("a handle");
    let no_token = client()
        .get(status_url(&fake, CATALOG, handle).replace(TOKEN, ""))
        .send()
        .await
        .expect("an answer");
    assert_eq!(no_token.status(), 400);
    let error: Value = no_token.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], 190);
}

#[tokio::test]
async fn an_unknown_catalog_or_handle_is_error_100() {
    let fake = start(one_catalog()).await;
    let answer = client()
        .post(items_batch_url(&fake, "cat-9"))
        .json(&batch(create_one()))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 400);
    let error: Value = answer.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], 100);
    let message = error["error"]["message"].as_str().expect("text");
    assert!(
        message.contains("Object with ID 'cat-9' does not exist"),
        "{message}"
    );

    let unknown = client()
        .get(status_url(&fake, CATALOG, "no-such-handle"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(unknown.status(), 400);
    let error: Value = unknown.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], 100);
}

#[tokio::test]
async fn calls_past_the_window_are_error_80014_until_it_ends() {
    let fake = start(FakeConfig {
        calls_per_window: 2,
        window_ms: 60_000,
        business_id: "biz-7".into(),
        ..FakeConfig::default()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let answer = client()
            .post(items_batch_url(&fake, CATALOG))
            .json(&batch(create_one()))
            .send()
            .await
            .expect("an answer");
        let use_case = usage(answer.headers())["biz-7"][0].clone();
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.expect("JSON");
        seen.push((
            status,
            body["error"]["code"].as_i64(),
            use_case["call_count"].as_u64(),
            use_case["estimated_time_to_regain_access"].as_u64(),
        ));
        assert_eq!(use_case["type"], "catalog_batch");
    }
    assert_eq!(
        seen,
        vec![
            (200, None, Some(50), Some(0)),
            (200, None, Some(100), Some(1)),
            (400, Some(80014), Some(100), Some(1)),
        ]
    );

    let freed = start(FakeConfig {
        calls_per_window: 1,
        window_ms: 300,
        ..FakeConfig::default()
    })
    .await;
    assert_eq!(post_batch(&freed, &batch(create_one())).await.0, 200);
    let (status, throttled) = post_batch(&freed, &batch(create_one())).await;
    assert_eq!((status, &throttled["error"]["code"]), (400, &json!(80014)));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(post_batch(&freed, &batch(create_one())).await.0, 200);
}

#[tokio::test]
async fn status_polls_do_not_count_against_the_window() {
    let fake = start(FakeConfig {
        calls_per_window: 1,
        window_ms: 60_000,
        ..FakeConfig::default()
    })
    .await;
    let handle = submit(&fake, create_one()).await;
    for _ in 0..3 {
        let answer = client()
            .get(status_url(&fake, CATALOG, &handle))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200);
        assert_eq!(
            usage(answer.headers())["fake-business"][0]["call_count"],
            100
        );
    }
}

#[tokio::test]
async fn a_batch_is_at_most_5000_requests_and_28_mb() {
    let fake = start(FakeConfig::default()).await;
    let requests =
        vec![json!({"method": "DELETE", "data": {"id": "a"}}); MAX_REQUESTS_PER_BATCH + 1];
    let (status, error) = post_batch(&fake, &batch(json!(requests))).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], 100);
    let message = error["error"]["message"].as_str().expect("text");
    assert!(message.contains("5000"), "{message}");

    let mut huge = shirt("sku-1");
    huge["description"] = json!("x".repeat(28_000_000));
    let (status, error) =
        post_batch(&fake, &batch(json!([{"method": "CREATE", "data": huge}]))).await;
    assert_eq!(status, 413);
    assert!(error["error"]["fbtrace_id"].is_string(), "{error}");
}

#[tokio::test]
async fn only_versioned_graph_paths_are_served() {
    let fake = start(FakeConfig::default()).await;
    for version in ["v24.0", "v3.2"] {
        let url = format!("http://{}/{version}/{CATALOG}/items_batch", fake.addr());
        let answer = client()
            .post(url)
            .json(&batch(create_one()))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200, "{version}");
    }
    for path in ["v24/cat-1/items_batch", "cat-1/items_batch"] {
        let answer = client()
            .post(format!("http://{}/{path}", fake.addr()))
            .json(&batch(create_one()))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 400, "{path}");
        let error: Value = answer.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], 2500, "{path}");
    }
}
