//! The batch path: accepted at once, applied only when the handle finishes, item by item.

use crate::{batch, poll, poll_until_finished, post_batch, shirt, start, submit, CATALOG};
use porch_fake_meta::{FakeConfig, ItemMethod};
use serde_json::{json, Value};

#[tokio::test]
async fn a_create_is_applied_on_the_third_poll_and_not_before() {
    let fake = start(FakeConfig {
        polls_to_finish: (3, 3),
        ..FakeConfig::default()
    })
    .await;
    let handle = submit(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;

    for expected in ["scheduled", "dispatched"] {
        let status = poll(&fake, &handle).await;
        assert_eq!(status["status"], expected);
        assert_eq!(status["handle"], handle.as_str());
        assert!(fake.items(CATALOG).is_empty(), "applied before finishing");
        assert!(fake.log().is_empty());
    }
    let finished = poll(&fake, &handle).await;
    assert_eq!(finished["status"], "finished");
    assert_eq!(finished["errors_total_count"], 0);
    assert_eq!(finished["ids_of_invalid_requests"], json!([]));

    let items = fake.items(CATALOG);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["title"], "Linen shirt");
    let log = fake.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, ItemMethod::Create);
    assert_eq!(log[0].retailer_id, "sku-1");
    assert_eq!(log[0].handle, handle);
    assert_eq!(log[0].catalog, CATALOG);
    assert!(log[0].created);

    let again = poll(&fake, &handle).await;
    assert_eq!(again["status"], "finished");
    assert_eq!(fake.log().len(), 1, "a finished batch never runs twice");
}

#[tokio::test]
async fn a_missing_brand_is_reported_with_its_field_and_the_item_is_not_stored() {
    let fake = start(FakeConfig::default()).await;
    let mut no_brand = shirt("sku-2");
    if let Some(fields) = no_brand.as_object_mut() {
        fields.remove("brand");
    }
    let handle = submit(
        &fake,
        json!([
            {"method": "CREATE", "data": shirt("sku-1")},
            {"method": "CREATE", "data": no_brand},
        ]),
    )
    .await;
    let status = poll_until_finished(&fake, &handle).await;

    assert_eq!(status["errors_total_count"], 1);
    let error = &status["errors"][0];
    assert_eq!(error["line"], 1);
    assert_eq!(error["id"], "sku-2");
    let message = error["message"].as_str().expect("a message");
    assert!(message.ends_with("(field: brand)"), "{message}");
    assert!(
        error.get("field").is_none(),
        "Meta's errors carry no field key"
    );
    assert_eq!(status["ids_of_invalid_requests"], json!(["sku-2"]));

    let stored: Vec<Value> = fake
        .items(CATALOG)
        .into_iter()
        .map(|item| item["id"].clone())
        .collect();
    assert_eq!(stored, vec![json!("sku-1")]);
    assert_eq!(fake.log().len(), 1);
}

#[tokio::test]
async fn malformed_requests_come_back_at_once_in_validation_status() {
    let fake = start(FakeConfig::default()).await;
    let (status, answer) = post_batch(
        &fake,
        &batch(json!([
            {"method": "CREATE", "data": shirt("sku-1")},
            {"method": "UPSERT", "data": shirt("sku-2")},
            {"method": "CREATE", "data": {"title": "no id"}},
        ])),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let refused = answer["validation_status"].as_array().expect("a list");
    assert_eq!(refused.len(), 2, "{answer}");
    assert_eq!(refused[0]["retailer_id"], "sku-2");
    let method_error = refused[0]["errors"][0]["message"].as_str().expect("text");
    assert!(method_error.ends_with("(field: method)"), "{method_error}");
    assert_eq!(refused[0]["warnings"], json!([]));
    assert_eq!(refused[1]["retailer_id"], "");
    let id_error = refused[1]["errors"][0]["message"].as_str().expect("text");
    assert!(id_error.ends_with("(field: id)"), "{id_error}");

    let handle = answer["handles"][0].as_str().expect("a handle");
    let finished = poll_until_finished(&fake, handle).await;
    assert_eq!(
        finished["errors_total_count"], 0,
        "shape errors are not repeated"
    );
    let logged: Vec<String> = fake.log().into_iter().map(|a| a.retailer_id).collect();
    assert_eq!(logged, vec!["sku-1".to_owned()]);
}

#[tokio::test]
async fn deleting_an_unknown_item_is_only_a_warning() {
    let fake = start(FakeConfig::default()).await;
    let handle = submit(
        &fake,
        json!([{"method": "DELETE", "data": {"id": "ghost"}}]),
    )
    .await;
    let status = poll_until_finished(&fake, &handle).await;
    assert_eq!(status["errors_total_count"], 0);
    assert_eq!(status["warnings_total_count"], 1);
    assert_eq!(
        status["warnings"][0],
        json!({"line": 0, "id": "ghost", "message": "Item does not exist, nothing deleted"})
    );
    assert!(fake.log().is_empty(), "nothing was deleted");

    let created = submit(&fake, json!([{"method": "CREATE", "data": shirt("sku-1")}])).await;
    poll_until_finished(&fake, &created).await;
    let deleted = submit(
        &fake,
        json!([{"method": "DELETE", "data": {"id": "sku-1"}}]),
    )
    .await;
    let status = poll_until_finished(&fake, &deleted).await;
    assert_eq!(status["warnings_total_count"], 0);
    assert!(fake.items(CATALOG).is_empty());
    let methods: Vec<ItemMethod> = fake.log().iter().map(|a| a.method).collect();
    assert_eq!(methods, vec![ItemMethod::Create, ItemMethod::Delete]);
}

#[tokio::test]
async fn an_update_merges_and_needs_upsert_to_create() {
    let fake = start(FakeConfig::default()).await;
    let mut body = batch(json!([{"method": "UPDATE", "data": shirt("sku-1")}]));
    body["allow_upsert"] = json!(false);
    let (_, answer) = post_batch(&fake, &body).await;
    let handle = answer["handles"][0].as_str().expect("a handle");
    let refused = poll_until_finished(&fake, handle).await;
    assert_eq!(
        refused["errors"][0]["message"],
        "(#10800) Item with retailer id sku-1 does not exist (field: id)"
    );
    assert!(fake.items(CATALOG).is_empty());

    let upserted = submit(&fake, json!([{"method": "UPDATE", "data": shirt("sku-1")}])).await;
    poll_until_finished(&fake, &upserted).await;
    let price_cut = submit(
        &fake,
        json!([{"method": "UPDATE", "data": {"id": "sku-1", "price": "19.99 GBP"}}]),
    )
    .await;
    let status = poll_until_finished(&fake, &price_cut).await;
    assert_eq!(status["errors_total_count"], 0, "{status}");
    let items = fake.items(CATALOG);
    assert_eq!(items[0]["price"], "19.99 GBP");
    assert_eq!(items[0]["title"], "Linen shirt");
    let created: Vec<bool> = fake.log().iter().map(|a| a.created).collect();
    assert_eq!(created, vec![true, false]);
}
