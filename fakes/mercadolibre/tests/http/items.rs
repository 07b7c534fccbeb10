//! The item path: create, read one or many, update, pause, close, and find again by SKU.

use crate::{create_ok, get, put, seller, shirt, start, SELLER};
use porch_fake_mercadolibre::{ChangeKind, FakeConfig, ItemStatus, Site};
use serde_json::{json, Value};

#[tokio::test]
async fn a_created_item_is_active_under_a_site_prefixed_id_and_reads_back() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;

    let (status, created) = crate::create(&fake, &token, &shirt("SKU-1")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(id, "MLB1000000000");
    assert_eq!(created["status"], "active");
    assert_eq!(created["site_id"], "MLB");
    assert_eq!(created["seller_id"], SELLER);
    assert_eq!(created["seller_custom_field"], "SKU-1");
    assert_eq!(created["sold_quantity"], 0);
    assert_eq!(
        created["pictures"][0]["url"],
        "https://shop.example/shirt.jpg"
    );

    let (status, read) = get(&fake, &token, &format!("/items/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    let second = create_ok(&fake, &token, &shirt("SKU-2")).await;
    assert_eq!(second, "MLB1000000001", "one counter, counting up");

    let log = fake.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].kind, ChangeKind::Create);
    assert_eq!(log[0].item_id, id);
    assert_eq!(log[0].seller_id, SELLER);
    assert_eq!(log[0].sku.as_deref(), Some("SKU-1"));
    assert_eq!(log[0].status, ItemStatus::Active);
    assert_eq!(fake.calls()[0].item_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn without_stock_an_item_is_created_paused() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let mut item = shirt("SKU-1");
    item["available_quantity"] = json!(0);
    let (status, created) = crate::create(&fake, &token, &item).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "paused");
    assert_eq!(created["sub_status"], json!(["out_of_stock"]));
}

#[tokio::test]
async fn an_item_updates_pauses_activates_and_closes_for_good() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let id = create_ok(&fake, &token, &shirt("SKU-1")).await;

    let (status, updated) = put(
        &fake,
        &token,
        &id,
        &json!({"price": 99.5, "available_quantity": 2}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["price"], 99.5);
    assert_eq!(updated["available_quantity"], 2);
    assert_eq!(updated["title"], "Camisa de linho azul", "fields merge");

    for wanted in ["paused", "active", "closed"] {
        let (status, item) = put(&fake, &token, &id, &json!({"status": wanted})).await;
        assert_eq!(status, 200, "{item}");
        assert_eq!(item["status"], wanted);
    }

    let (status, refused) = put(&fake, &token, &id, &json!({"status": "active"})).await;
    assert_eq!(status, 400, "closed is final");
    assert_eq!(refused["error"], "validation_error");
    assert_eq!(
        refused["message"],
        format!("Cannot update item {id} [status:closed, has_bids:false]")
    );
    assert_eq!(refused["cause"][0]["code"], "item.status.not_modifiable");
    assert_eq!(fake.items()[&id].status, ItemStatus::Closed);

    let kinds: Vec<ChangeKind> = fake.log().iter().map(|change| change.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Create,
            ChangeKind::Update,
            ChangeKind::Update,
            ChangeKind::Update,
            ChangeKind::Update,
        ],
        "the refused PUT changed nothing"
    );
}

#[tokio::test]
async fn an_empty_put_answer_still_made_the_change_a_get_shows() {
    let fake = start(FakeConfig {
        empty_put_rate: 1.0,
        ..FakeConfig::default()
    })
    .await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let id = create_ok(&fake, &token, &shirt("SKU-1")).await;

    let (status, answer) = put(&fake, &token, &id, &json!({"price": 10.0})).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({}));
    let (_, read) = get(&fake, &token, &format!("/items/{id}")).await;
    assert_eq!(read["price"], 10.0);

    let put_call = fake.calls().into_iter().nth(1).expect("the PUT's record");
    assert!(put_call.empty_answer);
    assert_eq!(put_call.status, Some(200));
    assert_eq!(put_call.fault, None);
}

#[tokio::test]
async fn a_multiget_answers_code_and_body_per_id() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let first = create_ok(&fake, &token, &shirt("SKU-1")).await;
    let second = create_ok(&fake, &token, &shirt("SKU-2")).await;

    let path = format!("/items?ids={first},MLB1,{second}");
    let (status, answers) = get(&fake, &token, &path).await;
    assert_eq!(status, 200, "{answers}");
    let codes: Vec<&Value> = answers
        .as_array()
        .expect("a list")
        .iter()
        .map(|answer| &answer["code"])
        .collect();
    assert_eq!(codes, vec![200, 404, 200]);
    assert_eq!(answers[0]["body"]["id"], first.as_str());
    assert_eq!(answers[1]["body"]["error"], "not_found");
    assert_eq!(answers[1]["body"]["status"], 404);
    assert_eq!(answers[2]["body"]["seller_custom_field"], "SKU-2");

    let (_, narrow) = get(
        &fake,
        &token,
        &format!("/items?ids={first}&attributes=id,status"),
    )
    .await;
    assert_eq!(
        narrow,
        json!([{"code": 200, "body": {"id": first, "status": "active"}}])
    );

    let many: Vec<String> = (0..21).map(|n| format!("MLB{n}")).collect();
    let (status, refused) = get(&fake, &token, &format!("/items?ids={}", many.join(","))).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "bad_request");
}

#[tokio::test]
async fn an_unknown_item_is_404() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let (status, body) = get(&fake, &token, "/items/MLB42").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({
            "message": "Item with id MLB42 not found",
            "error": "not_found",
            "status": 404,
            "cause": [],
        })
    );
    let (status, _) = put(&fake, &token, "MLB42", &json!({"price": 1})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn search_finds_a_sellers_items_by_sku_and_status() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let other = seller(&fake, 99, Site::Mlb).access_token;
    let by_field = create_ok(&fake, &token, &shirt("SKU-1")).await;
    let mut by_attribute = shirt("ignored");
    by_attribute["seller_custom_field"] = Value::Null;
    by_attribute["attributes"] = json!([{"id": "SELLER_SKU", "value_name": "SKU-1"}]);
    let by_attribute = create_ok(&fake, &token, &by_attribute).await;
    create_ok(&fake, &token, &shirt("SKU-2")).await;
    create_ok(&fake, &other, &shirt("SKU-1")).await;
    put(&fake, &token, &by_attribute, &json!({"status": "paused"})).await;

    let base = format!("/users/{SELLER}/items/search");
    let (status, found) = get(&fake, &token, &format!("{base}?seller_sku=SKU-1")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["seller_id"], SELLER.to_string());
    assert_eq!(found["results"], json!([by_field, by_attribute]));
    assert_eq!(
        found["paging"],
        json!({"total": 2, "offset": 0, "limit": 50})
    );

    let (_, active) = get(
        &fake,
        &token,
        &format!("{base}?seller_sku=SKU-1&status=active"),
    )
    .await;
    assert_eq!(active["results"], json!([by_field]));
    let (_, none) = get(&fake, &token, &format!("{base}?seller_sku=SKU-9")).await;
    assert_eq!(none["results"], json!([]));
    assert_eq!(none["paging"]["total"], 0);
    let (_, page) = get(&fake, &token, &format!("{base}?offset=1&limit=1")).await;
    assert_eq!(page["results"], json!([by_attribute]));
    assert_eq!(page["paging"], json!({"total": 3, "offset": 1, "limit": 1}));

    let (status, forbidden) = get(&fake, &other, &base).await;
    assert_eq!(status, 403, "another seller's items are not searchable");
    assert_eq!(forbidden["error"], "access_denied");
}

#[tokio::test]
async fn only_the_owner_may_update_an_item_but_anyone_may_read_it() {
    let fake = start(FakeConfig::default()).await;
    let owner = seller(&fake, SELLER, Site::Mlb).access_token;
    let stranger = seller(&fake, 99, Site::Mlb).access_token;
    let id = create_ok(&fake, &owner, &shirt("SKU-1")).await;
    let (status, _) = get(&fake, &stranger, &format!("/items/{id}")).await;
    assert_eq!(status, 200);
    let (status, refused) = put(&fake, &stranger, &id, &json!({"price": 1.0})).await;
    assert_eq!(status, 403);
    assert_eq!(refused["status"], 403);
    assert_eq!(fake.items()[&id].item["price"], 129.9);
}
