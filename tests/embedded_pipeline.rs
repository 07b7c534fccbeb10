//! The seven steps end to end on `porch up` (embedded log, store and search), over HTTP.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

struct Listed {
    product: String,
    sku: String,
    gb_offer: String,
    in_offer: String,
}

/// Steps 1–4 for one product: two variants, offers in GB and IN, stock in both.
async fn list_product(p: &Porch, key: &str, id: &str, category: &str, tax_code: bool) -> Listed {
    p.applied(
        Method::POST,
        key,
        "/v1/products",
        product_body(id, &format!("Linen shirt {id}"), category, tax_code),
    )
    .await;
    let sku = format!("{id}-M");
    p.applied(
        Method::POST,
        key,
        &format!("/v1/products/{id}/variants"),
        json!({ "variants": [
            { "sku": sku, "options": { "size": "M", "colour": "sand" }, "weight_grams": 210 },
            { "sku": format!("{id}-L"), "options": { "size": "L", "colour": "sand" }, "weight_grams": 230 }
        ]}),
    )
    .await;
    for (loc, region) in [("lon-1", "GB"), ("mum-1", "IN")] {
        let (s, body) = p
            .post(
                key,
                "/v1/locations",
                json!({ "location_id": loc, "region": region }),
            )
            .await;
        assert!(s == 200 || s == 201, "{body}");
    }
    let gb = p
        .applied(Method::POST, key, "/v1/offers", json!({ "sku": sku, "region": "GB", "price": { "amount_minor": 2500, "currency": "GBP" }, "channels": ["storefront"] }))
        .await;
    let inn = p
        .applied(Method::POST, key, "/v1/offers", json!({ "sku": sku, "region": "IN", "price": { "amount_minor": 199900, "currency": "INR" }, "channels": ["storefront"] }))
        .await;
    for loc in ["lon-1", "mum-1"] {
        p.applied(
            Method::PUT,
            key,
            &format!("/v1/inventory/{sku}/{loc}"),
            json!({ "on_hand": 10 }),
        )
        .await;
    }
    Listed {
        product: id.to_string(),
        sku,
        gb_offer: gb["aggregate_id"].as_str().unwrap().to_string(),
        in_offer: inn["aggregate_id"].as_str().unwrap().to_string(),
    }
}

fn offer_ids(hits: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = hits
        .iter()
        .map(|h| h["offer_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn visible_in(p: &Porch, key: &str, region: &str) -> Vec<String> {
    offer_ids(&p.search(key, &format!("region={region}&limit=100")).await)
}

async fn wait_visible(p: &Porch, key: &str, region: &str, offer: &str, want: bool) {
    p.eventually(
        &format!("offer {offer} visible={want} in {region}"),
        15,
        || async {
            (visible_in(p, key, region).await.iter().any(|o| o == offer) == want).then_some(())
        },
    )
    .await
}

/// The activation state of an offer in the aggregated view: (status, reason codes).
async fn offer_state(p: &Porch, key: &str, product: &str, offer: &str) -> (String, Vec<String>) {
    let (s, view) = p.get(key, &format!("/v1/products/{product}")).await;
    assert_eq!(s, 200, "{view}");
    let o = view["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["offer_id"] == offer)
        .unwrap_or_else(|| panic!("offer {offer} in {view}"))
        .clone();
    let codes = o["reasons"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| r["code"].as_str().unwrap_or("").to_string())
        .collect();
    (o["status"].as_str().unwrap_or("").to_string(), codes)
}

async fn wait_offer_status(
    p: &Porch,
    key: &str,
    product: &str,
    offer: &str,
    status: &str,
) -> Vec<String> {
    wait_offer(p, key, product, offer, status, |s, _| s == status).await
}

/// Waits until the offer is suspended for `reason`. A new listing passes
/// through other suspensions first (no stock yet, compliance pending), so
/// the status alone does not say the decision under test has been made.
async fn wait_suspended_for(
    p: &Porch,
    key: &str,
    product: &str,
    offer: &str,
    reason: &str,
) -> Vec<String> {
    let what = format!("SUSPENDED for {reason}");
    wait_offer(p, key, product, offer, &what, |s, codes| {
        s == "SUSPENDED" && codes.iter().any(|c| c == reason)
    })
    .await
}

/// Waits until the offer's status and reason codes satisfy `wanted`; returns the codes.
async fn wait_offer(
    p: &Porch,
    key: &str,
    product: &str,
    offer: &str,
    what: &str,
    wanted: impl Fn(&str, &[String]) -> bool,
) -> Vec<String> {
    p.eventually(&format!("offer {offer} {what}"), 15, || async {
        let (s, codes) = offer_state(p, key, product, offer).await;
        wanted(&s, &codes).then_some(codes)
    })
    .await
}

#[tokio::test]
async fn seven_steps_make_listings_visible_in_their_own_region_only() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    let l = list_product(&p, &key, "shirt-1", "apparel", true).await;

    wait_visible(&p, &key, "GB", &l.gb_offer, true).await;
    wait_visible(&p, &key, "IN", &l.in_offer, true).await;
    assert_eq!(
        visible_in(&p, &key, "GB").await,
        vec![l.gb_offer.clone()],
        "GB shows only the GB listing"
    );
    assert_eq!(
        visible_in(&p, &key, "IN").await,
        vec![l.in_offer.clone()],
        "IN shows only the IN listing"
    );

    let gb_hit = p.search(&key, "region=GB&q=linen").await;
    assert_eq!(gb_hit.len(), 1);
    assert_eq!(gb_hit[0]["price_minor"], 2500);
    assert_eq!(gb_hit[0]["currency"], "GBP");
    assert_eq!(gb_hit[0]["available"], 10);

    // The aggregated view shows every step's state.
    let (s, view) = p.get(&key, &format!("/v1/products/{}", l.product)).await;
    assert_eq!(s, 200);
    assert_eq!(
        view["product"]["status"], "ACTIVE",
        "published once a listing is visible: {view}"
    );
    assert_eq!(view["variants"].as_array().unwrap().len(), 2, "{view}");
    let offers = view["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 2);
    assert!(offers.iter().all(|o| o["status"] == "ACTIVE"), "{view}");
    for region in ["GB", "IN"] {
        let avail = &view["availability"][region];
        assert_eq!(avail["available"], 10, "availability in {region}: {view}");
        assert_eq!(view["compliance"][region]["status"], "APPROVED", "{view}");
    }
    let listings = view["listings"].as_array().unwrap();
    assert_eq!(listings.len(), 2, "{view}");
    assert!(listings.iter().all(|x| x["search"] == "VISIBLE"), "{view}");
    assert!(
        listings
            .iter()
            .all(|x| x["channels"][0]["status"] == "LIVE"),
        "{view}"
    );
    let img = view["images"][0]["url"].as_str().unwrap_or_default();
    assert!(
        img.starts_with("http://") && img.ends_with("/media/acme/shirt-1/front.jpg"),
        "{view}"
    );
    if distributed() {
        // The roles on the store count the CQL requests they send, by kind and table.
        let api = p.http.get(p.url("/metrics")).send().await.unwrap();
        let api = api.text().await.unwrap();
        let product = p.role_metrics("product").await.unwrap_or_default();
        // Sent with no Idempotency-Key, no command here can be named by a retry: the API
        // keeps no pending command to finish one with.
        assert!(
            !api.contains("table=\"command_pending\""),
            "no pending command for a command no retry can name:\n{api}"
        );
        for (role, text, table) in [
            ("ingest-api", api, "command"),
            ("product", product, "product"),
        ] {
            let at_least_one = |prefix: &str, labels: &[&str]| {
                text.lines().any(|l| {
                    l.starts_with(prefix)
                        && labels.iter().all(|label| l.contains(label))
                        && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) >= Some(1.0)
                })
            };
            let table_label = format!("table=\"{table}\"");
            assert!(
                at_least_one("porch_cql_rows_written_total{", &[&table_label]),
                "{role} counts its rows written to {table}:\n{text}"
            );
            // Each request is counted too: the processor writes a turn's rows in shared
            // batches, the API a command's status alone.
            let request = if role == "ingest-api" {
                at_least_one(
                    "porch_cql_requests_total{",
                    &["kind=\"write\"", &table_label],
                )
            } else {
                at_least_one("porch_cql_requests_total{", &["kind=\"batch\""])
                    || at_least_one(
                        "porch_cql_requests_total{",
                        &["kind=\"write\"", &table_label],
                    )
            };
            assert!(request, "{role} counts its write requests:\n{text}");
        }
    }
}

#[tokio::test]
async fn stock_out_suspends_only_its_region_and_price_change_touches_only_its_offer() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    let l = list_product(&p, &key, "shirt-2", "apparel", true).await;
    wait_visible(&p, &key, "IN", &l.in_offer, true).await;
    wait_visible(&p, &key, "GB", &l.gb_offer, true).await;

    // Stock-out in Mumbai.
    p.applied(
        Method::PUT,
        &key,
        &format!("/v1/inventory/{}/mum-1", l.sku),
        json!({ "on_hand": 0 }),
    )
    .await;
    let reasons = wait_offer_status(&p, &key, &l.product, &l.in_offer, "SUSPENDED").await;
    assert_eq!(reasons, vec!["OUT_OF_STOCK".to_string()]);
    wait_visible(&p, &key, "IN", &l.in_offer, false).await;
    assert_eq!(
        offer_state(&p, &key, &l.product, &l.gb_offer).await.0,
        "ACTIVE"
    );
    assert_eq!(visible_in(&p, &key, "GB").await, vec![l.gb_offer.clone()]);

    // Restock brings it back.
    p.applied(
        Method::PUT,
        &key,
        &format!("/v1/inventory/{}/mum-1", l.sku),
        json!({ "on_hand": 4 }),
    )
    .await;
    wait_offer_status(&p, &key, &l.product, &l.in_offer, "ACTIVE").await;
    wait_visible(&p, &key, "IN", &l.in_offer, true).await;

    // A price change in GB changes only the GB listing's price.
    p.applied(
        Method::PATCH,
        &key,
        &format!("/v1/offers/{}", l.gb_offer),
        json!({ "price": { "amount_minor": 1999, "currency": "GBP" } }),
    )
    .await;
    p.eventually("GB price 1999", 15, || async {
        let hits = p.search(&key, "region=GB").await;
        (hits.len() == 1 && hits[0]["price_minor"] == 1999).then_some(())
    })
    .await;
    let in_hits = p.search(&key, "region=IN").await;
    assert_eq!(in_hits.len(), 1);
    assert_eq!(in_hits[0]["price_minor"], 199900, "IN price untouched");
}

#[tokio::test]
async fn compliance_holds_back_what_a_region_forbids_until_resolved() {
    let p = Porch::start().await;
    let key = admin_key("acme");

    // No tax code: IN requires one, GB does not.
    let l = list_product(&p, &key, "notax", "apparel", false).await;
    wait_visible(&p, &key, "GB", &l.gb_offer, true).await;
    wait_suspended_for(&p, &key, &l.product, &l.in_offer, "COMPLIANCE_REJECTED").await;
    let (_, view) = p.get(&key, "/v1/products/notax").await;
    let in_reasons = view["compliance"]["IN"]["reasons"].to_string();
    assert!(
        in_reasons.contains("tax_code"),
        "the reason names the missing tax code: {view}"
    );
    assert!(!visible_in(&p, &key, "IN").await.contains(&l.in_offer));

    // Adding the tax code re-evaluates and activates.
    p.applied(
        Method::PATCH,
        &key,
        "/v1/products/notax",
        json!({ "attributes": { "tax_code": "6205" } }),
    )
    .await;
    wait_visible(&p, &key, "IN", &l.in_offer, true).await;

    // A review category waits for a person in IN, then activates on approval.
    let r = list_product(&p, &key, "vitamins", "supplements", true).await;
    wait_suspended_for(&p, &key, &r.product, &r.in_offer, "COMPLIANCE_REVIEW").await;
    wait_visible(&p, &key, "GB", &r.gb_offer, true).await;
    let d = p
        .applied(
            Method::POST,
            &key,
            "/v1/compliance/vitamins/IN/decision",
            json!({ "approve": true, "note": "label checked" }),
        )
        .await;
    assert_eq!(d["status"], "APPLIED");
    wait_visible(&p, &key, "IN", &r.in_offer, true).await;
}

#[tokio::test]
async fn deactivation_hides_everything_and_reactivation_restores_with_history() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    let l = list_product(&p, &key, "lamp", "home", true).await;
    wait_visible(&p, &key, "GB", &l.gb_offer, true).await;
    wait_visible(&p, &key, "IN", &l.in_offer, true).await;

    p.applied(
        Method::POST,
        &key,
        "/v1/products/lamp/deactivate",
        json!({}),
    )
    .await;
    wait_visible(&p, &key, "GB", &l.gb_offer, false).await;
    wait_visible(&p, &key, "IN", &l.in_offer, false).await;
    let reasons = wait_offer_status(&p, &key, "lamp", &l.gb_offer, "SUSPENDED").await;
    assert!(
        reasons.contains(&"PRODUCT_INACTIVE".to_string()),
        "{reasons:?}"
    );
    let (_, view) = p.get(&key, "/v1/products/lamp").await;
    assert_eq!(view["product"]["status"], "INACTIVE");

    p.applied(
        Method::POST,
        &key,
        "/v1/products/lamp/reactivate",
        json!({}),
    )
    .await;
    wait_visible(&p, &key, "GB", &l.gb_offer, true).await;
    wait_visible(&p, &key, "IN", &l.in_offer, true).await;

    let (s, history) = p.get(&key, "/v1/products/lamp/history").await;
    assert_eq!(s, 200);
    let events: Vec<String> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "ProductCreated",
        "VariantsCreated",
        "OfferCreated",
        "StockAdjusted",
        "InventoryAvailable",
        "ComplianceApproved",
        "OfferActivated",
        "ListingVisible",
        "ProductPublished",
        "ProductDeactivated",
        "OfferSuspended",
        "ListingHidden",
        "ProductReactivated",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "history lacks {want}: {events:?}"
        );
    }
    let deact = events
        .iter()
        .position(|e| e == "ProductDeactivated")
        .unwrap();
    let react = events
        .iter()
        .position(|e| e == "ProductReactivated")
        .unwrap();
    assert!(deact < react, "history is in order");
    assert!(
        events[react..].iter().any(|e| e == "ListingVisible"),
        "visible again after reactivation"
    );
}

#[tokio::test]
async fn another_tenant_sees_nothing() {
    let p = Porch::start().await;
    let a = admin_key("acme");
    let b = admin_key("beta");
    let l = list_product(&p, &a, "secret", "apparel", true).await;
    wait_visible(&p, &a, "GB", &l.gb_offer, true).await;
    let (_, accepted) = p
        .post(
            &a,
            "/v1/products",
            product_body("secret-2", "Another", "apparel", true),
        )
        .await;
    let cmd = accepted["command_id"].as_str().unwrap().to_string();

    assert_eq!(p.get(&b, "/v1/products/secret").await.0, 404);
    assert_eq!(p.get(&b, "/v1/products/secret/history").await.0, 404);
    assert_eq!(p.get(&b, &format!("/v1/commands/{cmd}")).await.0, 404);
    assert_eq!(
        p.get(&b, &format!("/v1/offers/{}", l.gb_offer)).await.0 / 100,
        4
    );
    let (s, list) = p.get(&b, "/v1/products").await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    assert!(p.search(&b, "region=GB").await.is_empty());
    assert!(p.search(&b, "q=linen").await.is_empty());
    // Writes cannot reach it either.
    let (s, _) = p
        .req(
            Method::PATCH,
            &b,
            "/v1/products/secret",
            Some(json!({ "title": "mine" })),
        )
        .await;
    assert_eq!(s, 404);
    // And the owner still sees it.
    assert_eq!(p.get(&a, "/v1/products/secret").await.0, 200);
    let (s, list) = p.get(&a, "/v1/products").await;
    assert_eq!(s, 200);
    assert!(!list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_a_problem_and_enqueues_nothing() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    p.applied(
        Method::POST,
        &key,
        "/v1/products",
        product_body("base", "Base", "apparel", true),
    )
    .await;
    p.applied(
        Method::POST,
        &key,
        "/v1/products/base/variants",
        json!({ "variants": [{ "sku": "base-1" }] }),
    )
    .await;
    let before: Vec<u64> = futures_len(&p).await;

    let raw = |body: &'static str| {
        let http = p.http.clone();
        let url = p.url("/v1/products");
        let key = key.clone();
        async move {
            http.post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = raw("{\"title\": ").await;
    check_problem(r, 400, None).await;
    let r = raw("{\"title\": \"x\", \"colour\": \"red\"}").await;
    check_problem(r, 422, Some("colour")).await;

    let (s, b) = p.post(&key, "/v1/offers", json!({ "sku": "base-1", "region": "GB", "price": { "amount_minor": -5, "currency": "GBP" } })).await;
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("price"), "names the price: {b}");
    let (s, b) = p.post(&key, "/v1/offers", json!({ "sku": "base-1", "region": "ZZ", "price": { "amount_minor": 5, "currency": "GBP" } })).await;
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("region"), "names the region: {b}");

    // A 10 MiB body: refused from its declared length, before the body is read.
    let head = ten_mib_request(&p, &key).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("\"status\":413"), "{head}");

    assert_eq!(futures_len(&p).await, before, "nothing was enqueued");
}

/// Sends the head of a request declaring a 10 MiB JSON body and returns the raw response.
async fn ten_mib_request(p: &Porch, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", p.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/products HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        10 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

async fn futures_len(p: &Porch) -> Vec<u64> {
    let mut v = Vec::new();
    for m in Module::COMMANDED {
        v.push(p.topic_len(&format!("{m}.commands")).await);
    }
    v
}

async fn check_problem(r: reqwest::Response, status: u16, field: Option<&str>) {
    assert_eq!(r.status().as_u16(), status);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    if let Some(f) = field {
        assert!(body.to_string().contains(f), "problem names {f}: {body}");
    }
}

#[tokio::test]
async fn one_idempotency_key_one_command_one_set_of_events() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    let send = || async {
        let r = p
            .http
            .post(p.url("/v1/products"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "create-once-1")
            .json(&product_body("once", "Once", "apparel", true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        r.json::<Value>().await.unwrap()["command_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(first, second);
    let (_, outcome) = p
        .get(&key, &format!("/v1/commands/{first}?wait=10000"))
        .await;
    assert_eq!(outcome["status"], "APPLIED");
    let third = send().await;
    assert_eq!(first, third);
    let (_, after) = p.get(&key, &format!("/v1/commands/{first}")).await;
    assert_eq!(
        after["status"], "APPLIED",
        "a late retry leaves the outcome"
    );
    p.eventually("compliance evaluated", 10, || async {
        let (_, v) = p.get(&key, "/v1/products/once").await;
        (v["compliance"]["IN"]["status"] == "APPROVED").then_some(())
    })
    .await;
    let commands = p.topic("product.commands").await;
    assert_eq!(
        commands
            .iter()
            .filter(|r| r["value"]["envelope"]["command_id"] == first.as_str())
            .count(),
        1
    );
    let events = p.topic("product.events").await;
    let created: Vec<_> = events
        .iter()
        .filter(|r| r["value"]["envelope"]["causation_id"] == first.as_str())
        .collect();
    assert_eq!(created.len(), 1, "one ProductCreated");
    assert_eq!(created[0]["record_type"], "porch.product.ProductCreated");
}

#[tokio::test]
async fn an_offer_activates_when_its_validity_window_opens() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    // A second product whose offer opens at the same microsecond: the two ticks' events must
    // not share ids.
    for (product, title) in [("later", "Later lamp"), ("twin", "Twin lamp")] {
        p.applied(
            Method::POST,
            &key,
            "/v1/products",
            product_body(product, title, "home", true),
        )
        .await;
        p.applied(
            Method::POST,
            &key,
            &format!("/v1/products/{product}/variants"),
            json!({ "variants": [{ "sku": format!("{product}-1") }] }),
        )
        .await;
    }
    let (s, b) = p
        .post(
            &key,
            "/v1/locations",
            json!({ "location_id": "lon-1", "region": "GB" }),
        )
        .await;
    assert!(s == 200 || s == 201, "{b}");
    for sku in ["later-1", "twin-1"] {
        p.applied(
            Method::PUT,
            &key,
            &format!("/v1/inventory/{sku}/lon-1"),
            json!({ "on_hand": 3 }),
        )
        .await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let opens = now + 8_000_000;
    let mut offers = Vec::new();
    for sku in ["later-1", "twin-1"] {
        let offer = p
            .applied(
                Method::POST,
                &key,
                "/v1/offers",
                json!({ "sku": sku, "region": "GB", "price": { "amount_minor": 900, "currency": "GBP" }, "valid_from": opens }),
            )
            .await;
        offers.push(offer["aggregate_id"].as_str().unwrap().to_string());
    }
    let offer = offers[0].clone();
    // Activation reads five topics with no order between them: until it has absorbed the
    // variant, the stock and the compliance verdict the offer may wait on those too. Once
    // settled, only the window holds it back.
    p.eventually("the offer waits on its window alone", 8, || async {
        let (s, codes) = offer_state(&p, &key, "later", &offer).await;
        (s == "SUSPENDED" && codes == ["NOT_YET_VALID"]).then_some(())
    })
    .await;
    assert!(visible_in(&p, &key, "GB").await.is_empty());
    // No command arrives: the window opening alone activates it.
    wait_offer_status(&p, &key, "later", &offer, "ACTIVE").await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!(at >= opens, "not active before the window opens");
    wait_visible(&p, &key, "GB", &offer, true).await;
    wait_offer_status(&p, &key, "twin", &offers[1], "ACTIVE").await;
    let ids: Vec<String> = p
        .topic("activation.events")
        .await
        .iter()
        .map(|r| {
            r["value"]["envelope"]["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "activation event ids repeat: {ids:?}"
    );
}
