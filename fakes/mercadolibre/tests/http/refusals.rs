//! What Mercado Libre refuses, field by field: validation causes, a currency or category of
//! another site, and the fields frozen once an item has sold.

use crate::{cause_codes, client, create, create_ok, put, seller, send, shirt, start, url, SELLER};
use porch_fake_mercadolibre::{FakeConfig, Site};
use serde_json::{json, Value};

#[tokio::test]
async fn validation_errors_name_every_field_at_fault() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let mut item = shirt("SKU-1");
    item["title"] = json!("Camisa de linho azul com bolso, gola italiana e botões de madrepérola");
    item["price"] = json!(0);
    item["listing_type_id"] = json!("platinum");
    item["pictures"] = json!([{"source": "not a url"}]);
    if let Some(fields) = item.as_object_mut() {
        fields.remove("condition");
    }

    let (status, refused) = create(&fake, &token, &item).await;
    assert_eq!(status, 400);
    assert_eq!(refused["message"], "Validation error");
    assert_eq!(refused["error"], "validation_error");
    assert_eq!(refused["status"], 400);
    assert_eq!(
        cause_codes(&refused),
        vec![
            "body.required_fields",
            "item.title.length.invalid",
            "item.price.invalid",
            "item.listing_type_id.invalid",
            "item.pictures.invalid",
        ]
    );
    let references: Vec<&Value> = refused["cause"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|cause| &cause["references"])
        .collect();
    assert_eq!(
        references,
        vec![
            &json!(["item.condition"]),
            &json!(["item.title"]),
            &json!(["item.price"]),
            &json!(["item.listing_type_id"]),
            &json!(["item.pictures"]),
        ]
    );
    for cause in refused["cause"].as_array().expect("causes") {
        assert_eq!(cause["type"], "error");
        assert_eq!(cause["department"], "items");
        assert!(cause["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(fake.items().is_empty(), "nothing was created");
    assert_eq!(
        fake.calls()[0].error.as_deref(),
        Some("body.required_fields")
    );
}

#[tokio::test]
async fn sixty_characters_is_the_longest_title() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let mut item = shirt("SKU-1");
    item["title"] = json!("a".repeat(60));
    create_ok(&fake, &token, &item).await;
    item["title"] = json!("a".repeat(61));
    let (status, refused) = create(&fake, &token, &item).await;
    assert_eq!(status, 400);
    assert_eq!(cause_codes(&refused), vec!["item.title.length.invalid"]);
}

#[tokio::test]
async fn a_wrong_json_type_is_refused_before_any_value_is_checked() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let mut item = shirt("SKU-1");
    item["price"] = json!("p");
    item["title"] = json!("x".repeat(100));
    let (status, refused) = create(&fake, &token, &item).await;
    assert_eq!(status, 400);
    assert_eq!(refused["message"], "body.invalid_field_types");
    assert_eq!(
        refused["error"],
        "[invalid property type: [price] expected Number but was String value: p]"
    );
    assert_eq!(refused["cause"], json!([]));

    let not_json = client()
        .post(url(&fake, "/items"))
        .bearer_auth(&token)
        .body("{title:");
    let (status, refused) = send(not_json).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "bad_request");
}

#[tokio::test]
async fn the_currency_and_category_must_be_of_the_sellers_site() {
    let fake = start(FakeConfig::default()).await;
    let brazil = seller(&fake, SELLER, Site::Mlb).access_token;
    let argentina = seller(&fake, 77, Site::Mla).access_token;

    let mut pesos = shirt("SKU-1");
    pesos["currency_id"] = json!("ARS");
    let (status, refused) = create(&fake, &brazil, &pesos).await;
    assert_eq!(status, 400);
    assert_eq!(cause_codes(&refused), vec!["item.currency_id.invalid"]);
    assert_eq!(
        refused["cause"][0]["references"],
        json!(["item.currency_id"])
    );

    let mut argentine = shirt("SKU-1");
    argentine["category_id"] = json!("MLA3530");
    argentine["currency_id"] = json!("ARS");
    let (status, refused) = create(&fake, &brazil, &argentine).await;
    assert_eq!(status, 400);
    assert_eq!(
        cause_codes(&refused),
        vec!["item.category_id.invalid", "item.currency_id.invalid"],
        "an Argentine item is wrong twice for a Brazilian seller"
    );

    let (status, created) = create(&fake, &argentina, &argentine).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("MLA")));
    assert_eq!(created["site_id"], "MLA");

    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let (status, refused) = put(&fake, &argentina, &id, &json!({"currency_id": "BRL"})).await;
    assert_eq!(status, 400);
    assert_eq!(cause_codes(&refused), vec!["item.currency_id.invalid"]);
}

#[tokio::test]
async fn after_a_sale_title_condition_and_buying_mode_are_frozen() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let id = create_ok(&fake, &token, &shirt("SKU-1")).await;

    let (status, _) = put(&fake, &token, &id, &json!({"title": "Camisa de linho"})).await;
    assert_eq!(status, 200, "before a sale the title may change");

    let sale = client().post(url(&fake, &format!("/_fake/items/{id}/sale")));
    let (status, sold) = send(sale).await;
    assert_eq!(status, 200, "{sold}");
    assert_eq!(sold["sold"], true);
    assert_eq!(sold["item"]["sold_quantity"], 1);
    assert_eq!(sold["item"]["available_quantity"], 4);

    for (field, value) in [
        ("title", json!("Camisa de algodão")),
        ("condition", json!("used")),
        ("buying_mode", json!("classified")),
    ] {
        let (status, refused) = put(&fake, &token, &id, &json!({ field: value })).await;
        assert_eq!(status, 400, "{field}");
        assert_eq!(refused["error"], "validation_error");
        assert_eq!(
            cause_codes(&refused),
            vec![format!("item.{field}.not_modifiable")]
        );
        assert_eq!(
            refused["cause"][0]["references"],
            json!([format!("item.{field}")])
        );
    }
    let (status, item) = put(
        &fake,
        &token,
        &id,
        &json!({"price": 89.9, "available_quantity": 9}),
    )
    .await;
    assert_eq!(status, 200, "price and stock still change: {item}");
    assert_eq!(item["title"], "Camisa de linho");
}

#[tokio::test]
async fn the_category_never_changes_and_the_listing_type_changes_once() {
    let fake = start(FakeConfig::default()).await;
    let token = seller(&fake, SELLER, Site::Mlb).access_token;
    let id = create_ok(&fake, &token, &shirt("SKU-1")).await;

    let (status, refused) = put(&fake, &token, &id, &json!({"category_id": "MLB1055"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        cause_codes(&refused),
        vec!["item.category_id.not_modifiable"]
    );

    let (status, _) = put(&fake, &token, &id, &json!({"listing_type_id": "gold_pro"})).await;
    assert_eq!(status, 200);
    let (status, refused) = put(
        &fake,
        &token,
        &id,
        &json!({"listing_type_id": "gold_special"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        cause_codes(&refused),
        vec!["item.listing_type_id.not_modifiable"]
    );
    assert!(fake.items()[&id].listing_type_changed);
}
