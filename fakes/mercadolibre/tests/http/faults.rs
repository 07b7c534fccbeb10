//! Injected faults and the rate limit: what porch must retry, and the timeout that makes a blind
//! retry of a create list a SKU twice.

use crate::{client, create, create_ok, get, refresh, seller, shirt, start, url, SELLER};
use porch_fake_mercadolibre::{CallKind, Duplicate, FakeConfig, FaultKind, Site};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn always(kind: FaultKind) -> FakeConfig {
    FakeConfig {
        fault_rate: 1.0,
        fault_kinds: vec![kind],
        ..FakeConfig::default()
    }
}

#[tokio::test]
async fn an_injected_429_has_no_retry_after_unless_configured() {
    let fake = start(always(FaultKind::TooManyRequests)).await;
    let pair = seller(&fake, SELLER, Site::Mlb);
    let answer = client()
        .post(url(&fake, "/items"))
        .bearer_auth(&pair.access_token)
        .json(&shirt("SKU-1"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 429);
    assert!(answer.headers().get("retry-after").is_none());
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["error"], "too_many_requests");
    assert_eq!(body["status"], 429);
    assert!(fake.items().is_empty());

    fake.set_config(FakeConfig {
        retry_after_secs: Some(3),
        ..always(FaultKind::TooManyRequests)
    });
    let (status, _) = refresh(&fake, &pair.refresh_token).await;
    assert_eq!(status, 429, "the token endpoint is faulted too");
    let answer = client()
        .get(url(&fake, "/items/MLB1"))
        .bearer_auth(&pair.access_token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert!(fake
        .calls()
        .iter()
        .all(|call| call.fault == Some(FaultKind::TooManyRequests) && call.status == Some(429)));
    assert_eq!(
        fake.accounts()[0].refreshes,
        0,
        "a faulted refresh spent nothing"
    );
}

#[tokio::test]
async fn server_errors_go_round_500_502_503_and_504() {
    let fake = start(always(FaultKind::ServerError)).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (status, body) = create(&fake, &token, &shirt("SKU-1")).await;
        assert_eq!(body["status"], status);
        seen.push((
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let statuses: Vec<u16> = seen.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, vec![500, 502, 503, 504, 500]);
    assert_eq!(seen[2].1, "service_not_available");
    assert!(fake.items().is_empty());
}

#[tokio::test]
async fn a_timeout_after_create_leaves_the_item_for_a_sku_search_to_find() {
    let fake = start(FakeConfig {
        hang_ms: 2_000,
        ..always(FaultKind::Timeout)
    })
    .await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("a client");
    let attempt = || {
        impatient
            .post(url(&fake, "/items"))
            .bearer_auth(&token)
            .json(&shirt("SKU-1"))
            .send()
    };

    let before = attempt().await;
    assert!(
        before.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{before:?}"
    );
    assert!(
        fake.items().is_empty(),
        "the first timeout comes before the create"
    );

    let after = attempt().await;
    assert!(
        after.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{after:?}"
    );
    let items = fake.items();
    assert_eq!(items.len(), 1, "the unanswered create made the item");
    let lost = items.keys().next().cloned().unwrap_or_default();
    let calls = fake.calls();
    assert!(calls
        .iter()
        .all(|c| c.fault == Some(FaultKind::Timeout) && c.status.is_none()));
    assert_eq!(calls[0].item_id, None);
    assert_eq!(calls[1].item_id.as_deref(), Some(lost.as_str()));

    fake.set_config(FakeConfig::default());
    let search = format!("/users/{SELLER}/items/search?seller_sku=SKU-1");
    let (status, found) = get(&fake, &token, &search).await;
    assert_eq!(status, 200);
    assert_eq!(found["results"], json!([lost]), "search by SKU finds it");
    assert!(fake.duplicates().is_empty());

    let retried = create_ok(&fake, &token, &shirt("SKU-1")).await;
    assert_eq!(
        fake.duplicates(),
        vec![Duplicate {
            seller_id: SELLER,
            sku: "SKU-1".into(),
            item_ids: vec![lost, retried],
        }],
        "a blind retry lists the SKU twice"
    );
}

#[tokio::test]
async fn a_timeout_ends_with_a_closed_connection_and_no_answer() {
    let fake = start(FakeConfig {
        hang_ms: 100,
        ..always(FaultKind::Timeout)
    })
    .await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let started = Instant::now();
    let outcome = client()
        .get(url(&fake, "/items/MLB1"))
        .bearer_auth(&token)
        .send()
        .await;
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
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let started = Instant::now();
    let (status, _) = get(&fake, &token, &format!("/users/{SELLER}/items/search")).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_same_seed_fails_the_same_calls() {
    let config = FakeConfig {
        fault_rate: 0.5,
        fault_kinds: vec![FaultKind::ServerError, FaultKind::TooManyRequests],
        seed: 9,
        ..FakeConfig::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let fake = start(config.clone()).await;
        let token = seller(&fake, SELLER, Site::Mlb).access_token;
        let mut statuses = Vec::new();
        for n in 0..20 {
            let (status, _) = create(&fake, &token, &shirt(&format!("SKU-{n}"))).await;
            statuses.push(status);
        }
        let faults: Vec<Option<FaultKind>> = fake.calls().iter().map(|c| c.fault).collect();
        runs.push((statuses, faults));
    }
    assert_eq!(runs[0], runs[1]);
    let failed = runs[0].0.iter().filter(|status| **status != 201).count();
    assert!((3..=17).contains(&failed), "{:?}", runs[0].0);
    assert!(runs[0].0.contains(&429) && runs[0].0.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn a_sellers_rate_limit_answers_429_past_its_calls_and_spares_other_sellers() {
    let fake = start(FakeConfig {
        calls_per_window: 2,
        window_ms: 60_000,
        ..FakeConfig::default()
    })
    .await;
    let busy = seller(&fake, SELLER, Site::Mlb);
    let other = seller(&fake, 77, Site::Mlb).access_token;
    let path = format!("/users/{SELLER}/items/search");
    for _ in 0..2 {
        let (status, _) = get(&fake, &busy.access_token, &path).await;
        assert_eq!(status, 200);
    }
    let (status, throttled) = get(&fake, &busy.access_token, &path).await;
    assert_eq!(status, 429);
    assert_eq!(throttled["error"], "too_many_requests");
    let (status, _) = get(&fake, &other, "/users/77/items/search").await;
    assert_eq!(status, 200, "the limit is per seller");
    let (status, _) = refresh(&fake, &busy.refresh_token).await;
    assert_eq!(status, 200, "the token endpoint is not counted");

    let last = fake
        .calls()
        .into_iter()
        .rfind(|call| call.kind == CallKind::SearchItems && call.user_id == Some(SELLER))
        .expect("the throttled call");
    assert_eq!(last.status, Some(429));
    assert_eq!(last.fault, None, "a limit, not an injected fault");
    assert_eq!(last.error.as_deref(), Some("too_many_requests"));
}
