//! The catalog's `products` edge: which retailer ids the catalog holds now, under their Meta ids.

use crate::{client, poll, poll_until_finished, shirt, start, submit, usage, CATALOG, TOKEN};
use porch_fake_meta::{CallKind, FakeConfig, FakeMeta, FaultKind, ItemMethod};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const BOTH: (&str, &str) = ("fields", "id,retailer_id");

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn products_url(fake: &FakeMeta, catalog: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    format!(
        "{}/{catalog}/products?{}",
        fake.graph_url(),
        query.join("&")
    )
}

fn is_any(ids: &[&str]) -> String {
    json!({"retailer_id": {"is_any": ids}}).to_string()
}

/// One `products` call with the token as a bearer header: status, usage header, JSON body.
async fn list(fake: &FakeMeta, params: &[(&str, &str)]) -> (u16, Value, Value) {
    get(&products_url(fake, CATALOG, params)).await
}

async fn get(url: &str) -> (u16, Value, Value) {
    let answer = client()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    let usage = usage(answer.headers());
    (status, usage, answer.json().await.expect("a JSON body"))
}

/// The retailer ids of an answer's `data`, in order.
fn retailer_ids(answer: &Value) -> Vec<&str> {
    answer["data"]
        .as_array()
        .expect("a data list")
        .iter()
        .map(|item| item["retailer_id"].as_str().expect("a retailer id"))
        .collect()
}

/// The Meta id each retailer id had after the last request the fake applied to it.
fn meta_ids(fake: &FakeMeta) -> BTreeMap<String, Option<String>> {
    fake.log()
        .into_iter()
        .map(|applied| (applied.retailer_id, applied.item_id))
        .collect()
}

async fn apply(fake: &FakeMeta, requests: Value) {
    let handle = submit(fake, requests).await;
    let status = poll_until_finished(fake, &handle).await;
    assert_eq!(status["errors_total_count"], 0, "{status}");
}

#[tokio::test]
async fn is_any_finds_exactly_the_stored_ids_under_their_meta_ids() {
    let fake = start(FakeConfig::default()).await;
    apply(
        &fake,
        json!([
            {"method": "CREATE", "data": shirt("sku-3")},
            {"method": "CREATE", "data": shirt("sku-1")},
            {"method": "UPDATE", "data": shirt("sku-2")},
            {"method": "CREATE", "data": shirt("sku-4")},
        ]),
    )
    .await;
    apply(
        &fake,
        json!([{"method": "DELETE", "data": {"id": "sku-4"}}]),
    )
    .await;

    let asked = is_any(&["sku-4", "ghost", "sku-3", "sku-2", "sku-1"]);
    let (status, use_case, answer) = list(&fake, &[("filter", &asked), BOTH]).await;
    assert_eq!(status, 200, "{answer}");
    assert!(use_case["fake-business"].is_array());
    assert_eq!(
        retailer_ids(&answer),
        vec!["sku-1", "sku-2", "sku-3"],
        "{answer}"
    );

    let ids = meta_ids(&fake);
    assert_eq!(ids["sku-4"], None, "a delete leaves no Meta id");
    for item in answer["data"].as_array().expect("a list") {
        let retailer_id = item["retailer_id"].as_str().expect("text");
        assert_eq!(item.as_object().map(|o| o.len()), Some(2), "{item}");
        let id = item["id"].as_str().expect("a Meta id");
        assert!(id.parse::<u64>().is_ok_and(|n| n >= 1_000_000_000_000_000));
        assert_eq!(ids[retailer_id].as_deref(), Some(id));
    }
    let upserted = fake
        .log()
        .into_iter()
        .find(|a| a.retailer_id == "sku-2")
        .expect("the upsert");
    assert_eq!(
        (upserted.method, upserted.created),
        (ItemMethod::Update, true)
    );
    assert_eq!(
        answer["paging"]["cursors"]["before"].as_str().map(str::len),
        Some(10)
    );
    assert!(answer["paging"].get("next").is_none(), "{answer}");
}

#[tokio::test]
async fn meta_ids_stay_across_updates_and_only_applied_items_are_listed() {
    let fake = start(FakeConfig {
        polls_to_finish: (2, 2),
        ..FakeConfig::default()
    })
    .await;
    let created = submit(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    let filter = is_any(&["sku-1"]);
    assert_eq!(poll(&fake, &created).await["status"], "scheduled");
    let (status, _, before) = list(&fake, &[("filter", &filter), BOTH]).await;
    assert_eq!(
        (status, before),
        (200, json!({"data": []})),
        "accepted is not applied"
    );
    assert_eq!(poll(&fake, &created).await["status"], "finished");
    let (_, _, listed) = list(&fake, &[("filter", &filter), BOTH]).await;
    let first_id = listed["data"][0]["id"].clone();
    assert!(first_id.is_string(), "{listed}");

    let price_cut = json!([{"method": "UPDATE", "data": {"id": "sku-1", "price": "9.00 GBP"}}]);
    let again = json!([{"method": "CREATE", "data": shirt("sku-1")}]);
    for requests in [price_cut, again] {
        let handle = submit(&fake, requests).await;
        poll_until_finished(&fake, &handle).await;
        let (_, _, listed) = list(&fake, &[("filter", &filter), BOTH]).await;
        assert_eq!(listed["data"][0]["id"], first_id, "{listed}");
    }
    let deleted = submit(
        &fake,
        json!([{"method": "DELETE", "data": {"id": "sku-1"}}]),
    )
    .await;
    poll_until_finished(&fake, &deleted).await;
    let (_, _, gone) = list(&fake, &[("filter", &filter), BOTH]).await;
    assert_eq!(gone, json!({"data": []}), "a deleted id is not found");
    let recreated = submit(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    poll_until_finished(&fake, &recreated).await;
    let (_, _, back) = list(&fake, &[("filter", &filter), BOTH]).await;
    assert!(back["data"][0]["id"].is_string(), "{back}");
    assert_ne!(back["data"][0]["id"], first_id, "re-created, so a new id");

    let logged: Vec<(ItemMethod, Option<String>)> = fake
        .log()
        .into_iter()
        .map(|a| (a.method, a.item_id))
        .collect();
    let first = first_id.as_str().map(str::to_owned);
    let new = back["data"][0]["id"].as_str().map(str::to_owned);
    assert_eq!(
        logged,
        vec![
            (ItemMethod::Create, first.clone()),
            (ItemMethod::Update, first.clone()),
            (ItemMethod::Create, first),
            (ItemMethod::Delete, None),
            (ItemMethod::Create, new),
        ]
    );
}

#[tokio::test]
async fn eq_finds_one_and_fields_pick_the_keys() {
    let fake = start(FakeConfig::default()).await;
    apply(
        &fake,
        json!([
            {"method": "CREATE", "data": shirt("sku-1")},
            {"method": "CREATE", "data": shirt("sku-2")},
        ]),
    )
    .await;
    let eq = json!({"retailer_id": {"eq": "sku-2"}}).to_string();
    let (status, _, answer) = list(&fake, &[("filter", &eq), BOTH]).await;
    assert_eq!(status, 200);
    assert_eq!(retailer_ids(&answer), vec!["sku-2"]);

    let (_, _, only_retailer) = list(&fake, &[("filter", &eq), ("fields", "retailer_id")]).await;
    assert_eq!(only_retailer["data"], json!([{"retailer_id": "sku-2"}]));
    let (_, _, only_id) = list(&fake, &[("filter", &eq), ("fields", "id")]).await;
    let keys: Vec<&String> = only_id["data"][0]
        .as_object()
        .expect("an item")
        .keys()
        .collect();
    assert_eq!(keys, vec!["id"]);
    let (_, _, default) = list(&fake, &[("filter", &eq)]).await;
    assert_eq!(default["data"], only_id["data"], "Graph's default is id");

    let missing = json!({"retailer_id": {"eq": "ghost"}}).to_string();
    let (status, _, nothing) = list(&fake, &[("filter", &missing), BOTH]).await;
    assert_eq!((status, nothing), (200, json!({"data": []})));
}

#[tokio::test]
async fn a_bad_filter_is_400_code_100_naming_the_parameter() {
    let fake = start(FakeConfig::default()).await;
    for filter in [
        "not json",
        r#"{"title":{"eq":"Linen shirt"}}"#,
        r#"{"retailer_id":{"contains":"sku"}}"#,
        r#"{"retailer_id":{"is_any":"sku-1"}}"#,
    ] {
        let (status, use_case, error) = list(&fake, &[("filter", filter), BOTH]).await;
        assert_eq!(status, 400, "{filter}");
        assert!(use_case["fake-business"].is_array());
        assert_eq!(error["error"]["code"], 100, "{error}");
        let message = error["error"]["message"].as_str().expect("text");
        assert!(message.contains("Param filter"), "{message}");
        assert!(error["error"]["fbtrace_id"].is_string());
    }
    let (status, _, error) = list(&fake, &[("limit", "none")]).await;
    assert_eq!((status, &error["error"]["code"]), (400, &json!(100)));
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    assert!(calls
        .iter()
        .all(|c| c.kind == CallKind::Products && c.error_code == Some(100)));
}

#[tokio::test]
async fn every_item_in_retailer_id_order_a_page_at_a_time() {
    let fake = start(FakeConfig::default()).await;
    let ids = ["e", "b", "d", "a", "c"];
    let requests: Vec<Value> = ids
        .iter()
        .map(|id| json!({"method": "CREATE", "data": shirt(id)}))
        .collect();
    apply(&fake, json!(requests)).await;

    let (_, _, all) = list(&fake, &[BOTH]).await;
    assert_eq!(retailer_ids(&all), vec!["a", "b", "c", "d", "e"]);
    assert!(all["paging"].get("next").is_none());

    let (status, _, first) = list(&fake, &[BOTH, ("limit", "2")]).await;
    assert_eq!(status, 200);
    assert_eq!(retailer_ids(&first), vec!["a", "b"]);
    let next = first["paging"]["next"].as_str().expect("a next page");
    let (_, _, second) = get(next).await;
    assert_eq!(retailer_ids(&second), vec!["c", "d"]);
    let after = second["paging"]["cursors"]["after"]
        .as_str()
        .expect("a cursor");
    let (_, _, last) = list(&fake, &[BOTH, ("limit", "2"), ("after", after)]).await;
    assert_eq!(retailer_ids(&last), vec!["e"]);
    assert!(last["paging"].get("next").is_none(), "{last}");

    let filtered = is_any(&["a", "c", "e"]);
    let (_, _, page) = list(&fake, &[("filter", &filtered), BOTH, ("limit", "1")]).await;
    let next = page["paging"]["next"].as_str().expect("a next page");
    let (_, _, rest) = get(next).await;
    assert_eq!(retailer_ids(&rest), vec!["c"], "the filter carries on");

    let (_, _, huge) = list(&fake, &[BOTH, ("limit", "100000")]).await;
    assert_eq!(retailer_ids(&huge).len(), 5);
    let (status, _, _) = list(&fake, &[BOTH, ("after", "not-a-cursor")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn auth_and_unknown_catalogs_as_for_status_polls() {
    let fake = start(FakeConfig {
        catalogs: [(CATALOG.to_owned(), TOKEN.to_owned())].into(),
        ..FakeConfig::default()
    })
    .await;
    apply(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    let url = products_url(&fake, CATALOG, &[BOTH]);

    let by_oauth = client()
        .get(&url)
        .header("authorization", format!("OAuth {TOKEN}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(by_oauth.status(), 200);
    let by_query = client()
        .get(format!("{url}&access_token={TOKEN}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(by_query.status(), 200);
    let listed: Value = by_query.json().await.expect("JSON");
    assert_eq!(retailer_ids(&listed), vec!["sku-1"]);

    for refused in [
        client().get(&url),
        client().get(&url).bearer_auth("not-the-token"),
    ] {
        let answer = refused.send().await.expect("an answer");
        assert_eq!(answer.status(), 400);
        let error: Value = answer.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], 190, "{error}");
    }
    let (status, _, error) = get(&products_url(&fake, "cat-9", &[BOTH])).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], 100);
    let message = error["error"]["message"].as_str().expect("text");
    assert!(message.contains("Unsupported get request"), "{message}");
}

#[tokio::test]
async fn products_calls_do_not_count_against_the_window() {
    let fake = start(FakeConfig {
        calls_per_window: 1,
        window_ms: 60_000,
        ..FakeConfig::default()
    })
    .await;
    for _ in 0..3 {
        let (status, use_case, _) = list(&fake, &[BOTH]).await;
        assert_eq!(status, 200);
        assert_eq!(use_case["fake-business"][0]["call_count"], 0);
    }
    apply(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    let (status, use_case, answer) = list(&fake, &[BOTH]).await;
    assert_eq!(status, 200);
    assert_eq!(use_case["fake-business"][0]["call_count"], 100);
    assert_eq!(retailer_ids(&answer), vec!["sku-1"]);
}

fn always(kind: FaultKind) -> FakeConfig {
    FakeConfig {
        fault_rate: 1.0,
        fault_kinds: vec![kind],
        hang_ms: 100,
        retry_after_secs: 3,
        ..FakeConfig::default()
    }
}

#[tokio::test]
async fn faults_and_latency_apply_to_products_calls() {
    let fake = start(FakeConfig::default()).await;
    apply(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    let before = fake.calls().len();

    fake.set_config(always(FaultKind::TooManyRequests));
    let answer = client()
        .get(products_url(&fake, CATALOG, &[BOTH]))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 429);
    assert_eq!(
        answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert!(usage(answer.headers())["fake-business"].is_array());

    fake.set_config(always(FaultKind::ServerError));
    let (status, _, error) = list(&fake, &[BOTH]).await;
    assert!(status >= 500, "{status}");
    assert_eq!(error["error"]["is_transient"], true);

    fake.set_config(always(FaultKind::CatalogThrottled));
    let (status, use_case, error) = list(&fake, &[BOTH]).await;
    assert_eq!((status, &error["error"]["code"]), (400, &json!(80014)));
    assert_eq!(use_case["fake-business"][0]["call_count"], 100);

    fake.set_config(always(FaultKind::Timeout));
    let started = Instant::now();
    let dropped = client()
        .get(products_url(&fake, CATALOG, &[BOTH]))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));

    let faults: Vec<_> = fake.calls()[before..]
        .iter()
        .map(|c| (c.kind, c.fault, c.status))
        .collect();
    assert_eq!(
        faults,
        vec![
            (
                CallKind::Products,
                Some(FaultKind::TooManyRequests),
                Some(429)
            ),
            (CallKind::Products, Some(FaultKind::ServerError), Some(500)),
            (
                CallKind::Products,
                Some(FaultKind::CatalogThrottled),
                Some(400)
            ),
            (CallKind::Products, Some(FaultKind::Timeout), None),
        ]
    );
    assert_eq!(fake.items(CATALOG).len(), 1, "faults change nothing");

    fake.set_config(FakeConfig {
        latency_ms: 150,
        ..FakeConfig::default()
    });
    let started = Instant::now();
    let (status, _, answer) = list(&fake, &[BOTH]).await;
    assert_eq!(status, 200);
    assert_eq!(retailer_ids(&answer), vec!["sku-1"]);
    assert!(started.elapsed() >= Duration::from_millis(150));
}
