//! `/_fake/…`, the controls the benchmark and the demo use from another process.

use crate::{client, poll, shirt, start, submit, CATALOG};
use porch_fake_meta::{FakeConfig, FakeMeta};
use serde_json::{json, Value};

fn control_url(fake: &FakeMeta, path: &str) -> String {
    format!("http://{}/_fake/{path}", fake.addr())
}

async fn get_json(fake: &FakeMeta, path: &str) -> Value {
    let answer = client()
        .get(control_url(fake, path))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200, "{path}");
    answer.json().await.expect("JSON")
}

#[tokio::test]
async fn config_rules_records_and_reset_over_http() {
    let fake = start(FakeConfig::default()).await;

    let set = client()
        .put(control_url(&fake, "config"))
        .json(&json!({"polls_to_finish": [2, 2], "business_id": "demo"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(set.status(), 200);
    assert_eq!(fake.config().polls_to_finish, (2, 2));
    assert_eq!(get_json(&fake, "config").await["business_id"], "demo");
    for bad in [json!({"fault_rate": 2.0}), json!({"latency": 5})] {
        let refused = client()
            .put(control_url(&fake, "config"))
            .json(&bad)
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status(), 400, "{bad}");
    }
    assert_eq!(
        fake.config().business_id,
        "demo",
        "a refused config changes nothing"
    );

    let rule = client()
        .post(control_url(&fake, "rules"))
        .json(&json!({
            "field": "title",
            "contains": "counterfeit",
            "message": "Counterfeit goods are not allowed.",
        }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(rule.status(), 201);

    let mut fake_bag = shirt("sku-2");
    fake_bag["title"] = json!("Counterfeit designer bag");
    let handle = submit(
        &fake,
        json!([
            {"method": "CREATE", "data": shirt("sku-1")},
            {"method": "CREATE", "data": fake_bag},
        ]),
    )
    .await;
    assert_eq!(poll(&fake, &handle).await["status"], "scheduled");
    let finished = poll(&fake, &handle).await;
    assert_eq!(finished["status"], "finished");
    assert_eq!(
        finished["errors"],
        json!([{
            "line": 1,
            "id": "sku-2",
            "message": "Counterfeit goods are not allowed. (field: title)",
        }])
    );

    let items = get_json(&fake, &format!("items/{CATALOG}")).await;
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(items[0]["id"], "sku-1");
    let log = get_json(&fake, "log").await;
    assert_eq!(log.as_array().map(Vec::len), Some(1));
    assert_eq!(log[0]["method"], "CREATE");
    assert_eq!(log[0]["created"], true);
    assert_eq!(log[0]["handle"], handle.as_str());
    let calls = get_json(&fake, "calls").await;
    let kinds: Vec<&Value> = calls
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| &c["kind"])
        .collect();
    assert_eq!(kinds, vec!["items_batch", "status", "status"]);
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(calls[0]["fault"], Value::Null);
    assert_eq!(
        get_json(&fake, "rules").await.as_array().map(Vec::len),
        Some(1)
    );

    let reset = client()
        .post(control_url(&fake, "reset"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(reset.status(), 204);
    for path in ["log", "calls", "rules", &format!("items/{CATALOG}")] {
        assert_eq!(get_json(&fake, path).await, json!([]), "{path}");
    }
    assert_eq!(
        fake.config().polls_to_finish,
        (2, 2),
        "reset keeps the config"
    );
    let forgotten = client()
        .get(crate::status_url(&fake, CATALOG, &handle))
        .send()
        .await
        .expect("an answer");
    assert_eq!(forgotten.status(), 400, "handles are forgotten too");
}
