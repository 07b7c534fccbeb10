//! `/_fake/…`, the controls the benchmark and the demo use from another process.

use crate::{client, create_ok, send, shirt, start, token, url, CLIENT_ID, CLIENT_SECRET};
use porch_fake_mercadolibre::{CallKind, FakeConfig, FakeMercadoLibre, FaultKind};
use serde_json::{json, Value};

async fn get_json(fake: &FakeMercadoLibre, path: &str) -> Value {
    let (status, body) = send(client().get(url(fake, &format!("/_fake/{path}")))).await;
    assert_eq!(status, 200, "{path}");
    body
}

#[tokio::test]
async fn accounts_items_records_and_reset_over_http() {
    let fake = start(FakeConfig::default()).await;

    let seeding = client().post(url(&fake, "/_fake/accounts")).json(&json!({
        "user_id": 5,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "site": "MLM",
    }));
    let (status, seeded) = send(seeding).await;
    assert_eq!(status, 201, "{seeded}");
    assert_eq!(seeded["site"], "MLM");
    assert!(seeded.get("tokens").is_none(), "only a code unless asked");
    let code = seeded["code"].as_str().expect("a code").to_owned();
    let (status, pair) = token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let access = pair["access_token"].as_str().expect("a token").to_owned();

    let mut tacos = shirt("SKU-1");
    tacos["category_id"] = json!("MLM1234");
    tacos["currency_id"] = json!("MXN");
    let id = create_ok(&fake, &access, &tacos).await;
    assert!(id.starts_with("MLM"));
    create_ok(&fake, &access, &tacos).await;

    let items = get_json(&fake, "items").await;
    assert_eq!(items[&id]["seller_id"], 5);
    assert_eq!(items[&id]["sku"], "SKU-1");
    assert_eq!(items[&id]["status"], "active");
    assert_eq!(items[&id]["sold"], false);
    assert_eq!(items[&id]["item"]["currency_id"], "MXN");
    let duplicates = get_json(&fake, "duplicates").await;
    assert_eq!(duplicates[0]["sku"], "SKU-1");
    assert_eq!(duplicates[0]["item_ids"].as_array().map(Vec::len), Some(2));
    let log = get_json(&fake, "log").await;
    assert_eq!(log.as_array().map(Vec::len), Some(2));
    assert_eq!(log[0]["kind"], "create");
    assert_eq!(log[0]["item_id"], id.as_str());
    let calls = get_json(&fake, "calls").await;
    let kinds: Vec<&Value> = calls
        .as_array()
        .expect("a list")
        .iter()
        .map(|call| &call["kind"])
        .collect();
    assert_eq!(kinds, vec!["token", "create_item", "create_item"]);
    assert_eq!(calls[0]["grant_type"], "authorization_code");
    assert_eq!(calls[0]["user_id"], 5);
    assert_eq!(calls[1]["status"], 201);
    assert_eq!(calls[1]["path"], "/items");
    assert_eq!(calls[1]["fault"], Value::Null);
    assert_eq!(get_json(&fake, "accounts").await[0]["codes_exchanged"], 1);

    let sold_out = client()
        .post(url(&fake, &format!("/_fake/items/{id}/sale")))
        .json(&json!({"quantity": 99}));
    let (status, _) = send(sold_out).await;
    assert_eq!(status, 409, "more than the stock");
    let (status, _) = send(client().post(url(&fake, "/_fake/items/MLM1/sale"))).await;
    assert_eq!(status, 404);

    let (status, _) = send(client().post(url(&fake, "/_fake/reset"))).await;
    assert_eq!(status, 204);
    for path in ["log", "calls", "duplicates", "accounts"] {
        assert_eq!(get_json(&fake, path).await, json!([]), "{path}");
    }
    assert_eq!(get_json(&fake, "items").await, json!({}));
    let (status, _) = send(
        client()
            .get(url(&fake, &format!("/items/{id}")))
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(status, 401, "tokens are forgotten too");
    let recorded: Vec<(CallKind, Option<u16>, Option<u64>)> = fake
        .calls()
        .iter()
        .map(|call| (call.kind, call.status, call.user_id))
        .collect();
    assert_eq!(
        recorded,
        vec![(CallKind::GetItem, Some(401), None)],
        "control calls are never recorded"
    );
}

#[tokio::test]
async fn the_config_is_read_and_replaced_over_http() {
    let fake = start(FakeConfig::default()).await;
    let set = client()
        .put(url(&fake, "/_fake/config"))
        .json(&json!({"fault_rate": 0.25, "fault_kinds": ["timeout"], "empty_put_rate": 0.5}));
    let (status, _) = send(set).await;
    assert_eq!(status, 200);
    assert_eq!(fake.config().fault_kinds, vec![FaultKind::Timeout]);
    let config = get_json(&fake, "config").await;
    assert_eq!(config["empty_put_rate"], 0.5);
    assert_eq!(config["access_token_ttl_secs"], 21_600);
    assert_eq!(config["retry_after_secs"], Value::Null);

    for bad in [
        json!({"fault_rate": 2.0}),
        json!({"latency": 5}),
        json!({"calls_per_window": 3}),
    ] {
        let refused = client().put(url(&fake, "/_fake/config")).json(&bad);
        let (status, body) = send(refused).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        fake.config().fault_rate,
        0.25,
        "a refused config changes nothing"
    );
}

#[tokio::test]
async fn bad_seeds_and_unknown_accounts_are_refused() {
    let fake = start(FakeConfig::default()).await;
    for bad in [
        json!({"user_id": 0, "client_id": "1", "client_secret": "s"}),
        json!({"user_id": 1, "client_id": "", "client_secret": "s"}),
        json!({"user_id": 1, "client_id": "1", "client_secret": "s", "site": "XXX"}),
        json!({"user_id": 1, "client_id": "1", "client_secret": "s", "nickname": "x"}),
    ] {
        let (status, _) = send(client().post(url(&fake, "/_fake/accounts")).json(&bad)).await;
        assert_eq!(status, 400, "{bad}");
    }
    for action in ["expire", "revoke"] {
        let (status, _) =
            send(client().post(url(&fake, &format!("/_fake/accounts/9/{action}")))).await;
        assert_eq!(status, 404, "{action}");
    }
    let (status, body) = send(client().get(url(&fake, "/sites/MLB/categories"))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}
