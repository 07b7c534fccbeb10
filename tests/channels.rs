//! Sales channels end to end (DESIGN §8): the channel processor, the Meta connector and a fake
//! Meta Graph API that behaves as CONTRACTS.md says (handles, asynchronous status over several
//! polls, per-item errors, throttling). Runs on `porch up`, and on Kafka and Cassandra with
//! PORCH_TEST_BACKEND=distributed.

mod common;

use common::*;
use porch_fake_meta::{FakeConfig, FakeMeta, ItemMethod, RejectRule};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const TOKEN_GB: &str = "token-for-gb";
const TOKEN_IN: &str = "token-for-in";

/// A fake Meta with a catalog (and its token) per region.
async fn fake_meta(config: FakeConfig) -> FakeMeta {
    let catalogs: BTreeMap<String, String> = [
        ("catalog-gb".to_string(), TOKEN_GB.to_string()),
        ("catalog-in".to_string(), TOKEN_IN.to_string()),
    ]
    .into_iter()
    .collect();
    FakeMeta::start(
        "127.0.0.1:0".parse().unwrap(),
        FakeConfig { catalogs, ..config },
    )
    .await
    .expect("start the fake Meta")
}

/// The Meta connector pointed at the fake, tuned for tests: short waits, quick retries.
fn meta_config(fake: &FakeMeta, max_attempts: u32) -> String {
    format!(
        "[connectors.meta]\ngraph_url = \"{}\"\nbatch_size = 500\nlinger_ms = 50\n\
         poll_interval_ms = 100\nmax_poll_interval_ms = 400\ntimeout_ms = 1000\n\
         backoff_ms = 50\nmax_backoff_ms = 400\nmax_throttle_ms = 1000\nmax_attempts = {max_attempts}\n",
        fake.graph_url()
    )
}

/// Runs `porch <args> --api <this porch> --key <operator>` and returns what it printed.
fn porch_cli(p: &Porch, args: &[&str]) -> String {
    let url = p.url("");
    let out = porch_command()
        .args(args)
        .args(["--api", &url, "--key", OPERATOR_KEY])
        .output()
        .expect("run porch");
    assert!(
        out.status.success(),
        "porch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Connects tenant `acme` to Meta in GB and IN through the API.
async fn connect_meta(p: &Porch) {
    let key = admin_key("acme");
    for (region, catalog, token) in [
        ("GB", "catalog-gb", TOKEN_GB),
        ("IN", "catalog-in", TOKEN_IN),
    ] {
        let (s, body) = p
            .req(
                Method::PUT,
                &key,
                &format!("/v1/channels/meta/regions/{region}"),
                Some(json!({
                    "account": catalog,
                    "access_token": token,
                    "link_template": "https://shop.acme.example/products/{product}?sku={sku}"
                })),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["access_token_set"], true);
        assert!(
            !body.to_string().contains(token),
            "the token is never shown: {body}"
        );
    }
    let (s, listed) = p.get(&key, "/v1/channels").await;
    assert_eq!(s, 200, "{listed}");
    assert_eq!(listed["connections"].as_array().map(Vec::len), Some(2));
    for token in [TOKEN_GB, TOKEN_IN] {
        assert!(!listed.to_string().contains(token), "{listed}");
    }
    // Nor on the topic every task of the channel processor reads.
    for r in p.topic("channel.settings").await {
        let text = r.to_string();
        assert!(
            !text.contains(TOKEN_GB) && !text.contains(TOKEN_IN),
            "{text}"
        );
    }
}

struct Listed {
    /// (sku, region) → offer id
    offers: BTreeMap<(String, String), String>,
}

/// A product with `variants` variants (sizes), an offer for each in GB and IN on the storefront
/// and Meta, and stock everywhere: every offer becomes ACTIVE.
async fn list_product(p: &Porch, id: &str, variants: &[&str], brand: Option<&str>) -> Listed {
    let key = admin_key("acme");
    let mut body = product_body(id, &format!("Linen shirt {id}"), "apparel", true);
    body["channel_overrides"] =
        json!({ "meta": { "title": format!("Linen shirt {id} — on Meta") } });
    match brand {
        Some(b) => body["brand"] = json!(b),
        None => {
            body.as_object_mut().unwrap().remove("brand");
        }
    }
    p.applied(Method::POST, &key, "/v1/products", body).await;
    let skus: Vec<String> = variants.iter().map(|v| format!("{id}-{v}")).collect();
    p.applied(
        Method::POST,
        &key,
        &format!("/v1/products/{id}/variants"),
        json!({ "variants": skus.iter().zip(variants).map(|(s, v)| json!({ "sku": s, "options": { "size": v } })).collect::<Vec<_>>() }),
    )
    .await;
    let mut offers = BTreeMap::new();
    for (loc, region, price, currency) in [
        ("lon-1", "GB", 2500, "GBP"),
        ("mum-1", "IN", 199_900, "INR"),
    ] {
        let (s, b) = p
            .post(
                &key,
                "/v1/locations",
                json!({ "location_id": loc, "region": region }),
            )
            .await;
        assert!(s == 200 || s == 201, "{b}");
        for sku in &skus {
            let offer = p
                .applied(
                    Method::POST,
                    &key,
                    "/v1/offers",
                    json!({ "sku": sku, "region": region, "price": { "amount_minor": price, "currency": currency }, "channels": ["storefront", "meta"] }),
                )
                .await;
            offers.insert(
                (sku.clone(), region.to_string()),
                offer["aggregate_id"].as_str().unwrap().to_string(),
            );
            p.applied(
                Method::PUT,
                &key,
                &format!("/v1/inventory/{sku}/{loc}"),
                json!({ "on_hand": 10 }),
            )
            .await;
        }
    }
    Listed { offers }
}

/// Each offer's Meta listing in the product view: offer id → (status, issues).
async fn meta_listings(p: &Porch, product: &str) -> BTreeMap<String, (String, Value)> {
    channel_listings(p, &admin_key("acme"), product)
        .await
        .into_iter()
        .filter(|((_, channel), _)| channel == "meta")
        .map(|((offer, _), l)| (offer, (l.status, l.issues)))
        .collect()
}

/// Waits until every Meta listing of the product shows `status`.
async fn all_meta(p: &Porch, product: &str, status: &str, secs: u64) {
    p.eventually(
        &format!("every Meta listing of {product} {status}"),
        secs,
        || async {
            let listings = meta_listings(p, product).await;
            (!listings.is_empty() && listings.values().all(|(s, _)| s == status)).then_some(())
        },
    )
    .await;
}

fn creates(fake: &FakeMeta) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in fake.log() {
        if r.method == ItemMethod::Create {
            *out.entry(r.retailer_id.clone()).or_default() += 1;
        }
    }
    out
}

fn item(fake: &FakeMeta, catalog: &str, retailer_id: &str) -> Option<Value> {
    fake.items(catalog)
        .into_iter()
        .find(|i| i["id"] == retailer_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_reaches_meta_in_both_regions_and_is_live_only_once_confirmed() {
    let fake = fake_meta(FakeConfig {
        polls_to_finish: (4, 4),
        ..FakeConfig::default()
    })
    .await;
    let p = Porch::start_with_config(&meta_config(&fake, 8)).await;
    connect_meta(&p).await;
    let key = admin_key("acme");
    let image = b"\x89PNG not really, but these bytes".to_vec();
    let listed = list_product(&p, "shirt", &["M", "L"], Some("Acme")).await;
    let r = p
        .http
        .put(p.url("/v1/products/shirt/images/front.jpg"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // SUBMITTED first: the batch's status takes several polls to finish.
    p.eventually("a Meta listing SUBMITTED", 60, || async {
        meta_listings(&p, "shirt")
            .await
            .values()
            .any(|(s, _)| s == "SUBMITTED")
            .then_some(())
    })
    .await;
    all_meta(&p, "shirt", "LIVE", 60).await;

    let made = creates(&fake);
    assert_eq!(made.len(), 4, "one CREATE per offer: {made:?}");
    assert!(made.values().all(|n| *n == 1), "{made:?}");
    let gb_m = &listed.offers[&("shirt-M".into(), "GB".into())];
    let gb_l = &listed.offers[&("shirt-L".into(), "GB".into())];
    let item_m = item(&fake, "catalog-gb", gb_m).expect("the GB item is in the GB catalog");
    let item_l = item(&fake, "catalog-gb", gb_l).expect("the other variant too");
    assert_eq!(item_m["title"], "Linen shirt shirt — on Meta");
    assert_eq!(item_m["price"], "25.00 GBP");
    assert_eq!(item_m["availability"], "in stock");
    assert_eq!(item_m["brand"], "Acme");
    assert_eq!(item_m["item_group_id"], item_l["item_group_id"]);
    assert_eq!(item_m["item_group_id"], "shirt");
    let in_m = &listed.offers[&("shirt-M".into(), "IN".into())];
    assert_eq!(
        item(&fake, "catalog-in", in_m).unwrap()["price"],
        "1999.00 INR"
    );
    let link = item_m["image_link"].as_str().unwrap().to_string();
    assert!(link.starts_with("http"), "{link}");
    let fetched = reqwest::get(&link).await.unwrap();
    assert_eq!(fetched.status(), 200, "{link}");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), image);
    // LIVE came from the status, after the batch call: every item was confirmed by a poll.
    let calls = fake.calls();
    assert!(
        calls
            .iter()
            .filter(|c| c.kind == porch_fake_meta::CallKind::Status)
            .count()
            >= 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meta_validation_error_ends_rejected_with_its_field_and_is_not_retried() {
    let fake = fake_meta(FakeConfig::default()).await;
    fake.add_rule(RejectRule {
        field: "title".into(),
        contains: "replica".into(),
        message: "Items must not be replicas (field: title)".into(),
    });
    let p = Porch::start_with_config(&meta_config(&fake, 8)).await;
    connect_meta(&p).await;
    let key = admin_key("acme");
    let mut body = product_body("bag", "Replica bag", "apparel", true);
    body["channel_overrides"] = json!({ "meta": { "title": "Replica bag" } });
    p.applied(Method::POST, &key, "/v1/products", body).await;
    p.applied(
        Method::POST,
        &key,
        "/v1/products/bag/variants",
        json!({ "variants": [{ "sku": "bag-1", "options": {} }] }),
    )
    .await;
    let (s, b) = p
        .post(
            &key,
            "/v1/locations",
            json!({ "location_id": "lon-1", "region": "GB" }),
        )
        .await;
    assert!(s == 200 || s == 201, "{b}");
    p.applied(
        Method::POST,
        &key,
        "/v1/offers",
        json!({ "sku": "bag-1", "region": "GB", "price": { "amount_minor": 900, "currency": "GBP" }, "channels": ["meta"] }),
    )
    .await;
    p.applied(
        Method::PUT,
        &key,
        "/v1/inventory/bag-1/lon-1",
        json!({ "on_hand": 3 }),
    )
    .await;
    all_meta(&p, "bag", "REJECTED", 60).await;
    let (_, issues) = meta_listings(&p, "bag").await.into_values().next().unwrap();
    assert_eq!(issues[0]["field"], "title", "{issues}");
    // Let any retry show up, then count: one batch call, never again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let batches = fake
        .calls()
        .iter()
        .filter(|c| c.kind == porch_fake_meta::CallKind::ItemsBatch)
        .count();
    assert_eq!(batches, 1, "a refused item is not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_stock_and_deactivation_change_only_what_they_must_and_history_tells_it() {
    let fake = fake_meta(FakeConfig::default()).await;
    let p = Porch::start_with_config(&meta_config(&fake, 8)).await;
    connect_meta(&p).await;
    let key = admin_key("acme");
    let listed = list_product(&p, "tee", &["M"], Some("Acme")).await;
    all_meta(&p, "tee", "LIVE", 60).await;
    let gb = listed.offers[&("tee-M".into(), "GB".into())].clone();
    let inn = listed.offers[&("tee-M".into(), "IN".into())].clone();
    let before = fake.log().len();

    // A GB price change: one UPDATE, for the GB item.
    p.applied(
        Method::PATCH,
        &key,
        &format!("/v1/offers/{gb}"),
        json!({ "price": { "amount_minor": 2700, "currency": "GBP" } }),
    )
    .await;
    p.eventually("the GB price on Meta", 30, || async {
        (item(&fake, "catalog-gb", &gb)?["price"] == "27.00 GBP").then_some(())
    })
    .await;
    all_meta(&p, "tee", "LIVE", 30).await;
    let since: Vec<_> = fake.log()[before..].to_vec();
    assert_eq!(since.len(), 1, "{since:?}");
    assert_eq!(
        (since[0].method, since[0].retailer_id.as_str()),
        (ItemMethod::Update, gb.as_str())
    );

    // An IN stock-out: out of stock in IN only.
    let before = fake.log().len();
    p.applied(
        Method::PUT,
        &key,
        "/v1/inventory/tee-M/mum-1",
        json!({ "on_hand": 0 }),
    )
    .await;
    p.eventually("IN out of stock on Meta", 30, || async {
        (item(&fake, "catalog-in", &inn)?["availability"] == "out of stock").then_some(())
    })
    .await;
    all_meta(&p, "tee", "LIVE", 30).await;
    let since: Vec<_> = fake.log()[before..].to_vec();
    assert!(since.iter().all(|r| r.retailer_id == inn), "{since:?}");
    assert_eq!(
        item(&fake, "catalog-gb", &gb).unwrap()["availability"],
        "in stock"
    );

    // Deactivation: a DELETE for every item, then UNPUBLISHED.
    p.applied(Method::POST, &key, "/v1/products/tee/deactivate", json!({}))
        .await;
    all_meta(&p, "tee", "UNPUBLISHED", 30).await;
    let deleted: BTreeSet<String> = fake
        .log()
        .iter()
        .filter(|r| r.method == ItemMethod::Delete)
        .map(|r| r.retailer_id.clone())
        .collect();
    assert_eq!(deleted, [gb.clone(), inn.clone()].into_iter().collect());
    assert!(item(&fake, "catalog-gb", &gb).is_none());

    // Reactivation brings them back (IN restocked).
    p.applied(
        Method::PUT,
        &key,
        "/v1/inventory/tee-M/mum-1",
        json!({ "on_hand": 4 }),
    )
    .await;
    p.applied(Method::POST, &key, "/v1/products/tee/reactivate", json!({}))
        .await;
    all_meta(&p, "tee", "LIVE", 60).await;
    assert_eq!(
        item(&fake, "catalog-in", &inn).unwrap()["availability"],
        "in stock"
    );

    // History tells every transition of the GB listing.
    let (s, history) = p.get(&key, "/v1/products/tee/history?limit=1000").await;
    assert_eq!(s, 200);
    let moves: Vec<(String, String)> = history["entries"]
        .as_array()
        .expect("history entries")
        .iter()
        .filter(|e| e["event"] == "ListingStateChanged" && e["detail"]["offer_id"] == gb.as_str())
        .map(|e| {
            (
                e["detail"]["from"].as_str().unwrap().to_string(),
                e["detail"]["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("PENDING", "SUBMITTED"),
        ("SUBMITTED", "LIVE"),
        ("LIVE", "SUBMITTED"),
        ("SUBMITTED", "LIVE"),
        ("LIVE", "SUBMITTED"),
        ("SUBMITTED", "UNPUBLISHED"),
        ("UNPUBLISHED", "SUBMITTED"),
        ("SUBMITTED", "LIVE"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(moves, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_without_a_brand_is_blocked_for_meta_until_it_has_one() {
    if distributed() {
        return; // the pre-flight is the channel processor's, the same code on both backends
    }
    let fake = fake_meta(FakeConfig::default()).await;
    let p = Porch::start_with_config(&meta_config(&fake, 8)).await;
    connect_meta(&p).await;
    list_product(&p, "plain", &["M"], None).await;
    all_meta(&p, "plain", "BLOCKED", 60).await;
    let (_, issues) = meta_listings(&p, "plain")
        .await
        .into_values()
        .next()
        .unwrap();
    assert_eq!(issues[0]["field"], "brand", "{issues}");
    assert!(
        issues[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("meta: brand"),
        "{issues}"
    );
    assert!(fake.calls().is_empty(), "no call while blocked");
    p.applied(
        Method::PATCH,
        &admin_key("acme"),
        "/v1/products/plain",
        json!({ "brand": "Acme" }),
    )
    .await;
    all_meta(&p, "plain", "LIVE", 60).await;
    assert_eq!(creates(&fake).len(), 2);
}

/// Lists `n` products with one variant each, offered in GB and IN: 2n listings.
async fn list_many(p: &Porch, prefix: &str, n: usize) -> Vec<String> {
    let mut products = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let lists = chunk.iter().map(|i| {
            let id = format!("{prefix}{i:03}");
            async move {
                list_product(p, &id, &["U"], Some("Acme")).await;
                id
            }
        });
        products.extend(futures::future::join_all(lists).await);
    }
    products
}

/// Waits until every Meta listing of every product (two each) is LIVE or REJECTED.
async fn all_settled(p: &Porch, products: &[String], secs: u64) -> Vec<String> {
    common::all_settled(p, &admin_key("acme"), products, &["meta"], 2, secs)
        .await
        .into_values()
        .collect()
}

async fn connector(p: &Porch) -> Value {
    let (s, body) = p.get(OPERATOR_KEY, "/v1/connectors/meta").await;
    assert_eq!(s, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_listing_settles_with_one_create_per_retailer_id() {
    if distributed() {
        return; // the distributed twin is the SIGKILL test below
    }
    let fake = fake_meta(FakeConfig {
        fault_rate: 0.3,
        polls_to_finish: (1, 5),
        hang_ms: 1500,
        seed: 7,
        ..FakeConfig::default()
    })
    .await;
    let p = Porch::start_with_config(&meta_config(&fake, 12)).await;
    connect_meta(&p).await;
    let products = list_many(&p, "chaos", 150).await;
    let states = all_settled(&p, &products, 240).await;
    assert_eq!(states.len(), 300);
    let made = creates(&fake);
    assert_eq!(made.len(), 300, "every retailer id created");
    assert!(
        made.values().all(|n| *n == 1),
        "a second CREATE: {:?}",
        made.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    // The status is written every few seconds: it catches up.
    let status = p
        .eventually("the connector's count of live listings", 30, || async {
            let status = connector(&p).await;
            (status["outcomes"]["live"].as_u64() >= Some(300)).then_some(status)
        })
        .await;
    let retries = &status["retries"];
    for class in ["rate_limited", "throttled", "server_error", "timeout"] {
        assert!(
            retries[class].as_u64().unwrap_or(0) > 0,
            "{class} not retried: {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meta_connector_killed_mid_load_ends_the_same_with_no_second_create() {
    let fake = fake_meta(FakeConfig {
        fault_rate: 0.2,
        polls_to_finish: (1, 3),
        hang_ms: 1500,
        seed: 11,
        latency_ms: 30,
        ..FakeConfig::default()
    })
    .await;
    let mut p = Porch::start_with_config(&meta_config(&fake, 12)).await;
    connect_meta(&p).await;
    let products = list_many(&p, "kill", 60).await;
    // Kill it once some items are in and many are not.
    p.eventually("the first items on Meta", 60, || async {
        (fake.log().len() >= 10).then_some(())
    })
    .await;
    if distributed() {
        p.kill_role("connector-meta");
        p.start_connector("connector-meta", "meta");
    } else {
        p.restart().await;
    }
    let states = all_settled(&p, &products, 240).await;
    assert!(states.iter().all(|s| s == "LIVE"), "{states:?}");
    let made = creates(&fake);
    assert_eq!(made.len(), 120);
    assert!(
        made.values().all(|n| *n == 1),
        "a second CREATE: {:?}",
        made.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_every_call_and_a_dead_letter_is_redriven_to_live() {
    let fake = fake_meta(FakeConfig::default()).await;
    let p = Porch::start_with_config(&meta_config(&fake, 2)).await;
    connect_meta(&p).await;
    // The operator's command line, as the API's own route would.
    let said = porch_cli(&p, &["connector", "pause", "meta"]);
    assert!(said.contains("meta: pause asked"), "{said}");
    p.eventually("the connector PAUSED", 30, || async {
        (connector(&p).await["state"] == "PAUSED").then_some(())
    })
    .await;
    list_product(&p, "held", &["M"], Some("Acme")).await;
    p.eventually("lag while paused", 60, || async {
        (connector(&p).await["lag"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(fake.calls().is_empty(), "no calls while paused");
    let shown: Value = serde_json::from_str(&porch_cli(&p, &["connector", "status", "meta"]))
        .expect("JSON status");
    assert_eq!(shown["state"], "PAUSED", "{shown}");
    assert!(shown["lag"].as_u64().unwrap_or(0) > 0, "{shown}");
    let (s, _) = p
        .post(OPERATOR_KEY, "/v1/connectors/meta/resume", json!({}))
        .await;
    assert_eq!(s, 202);
    all_meta(&p, "held", "LIVE", 60).await;
    p.eventually("no lag once drained", 30, || async {
        (connector(&p).await["lag"] == 0).then_some(())
    })
    .await;

    // Every call fails: the retries (two) run out and the request goes to the dead letters.
    fake.set_config(FakeConfig {
        fault_rate: 1.0,
        fault_kinds: vec![porch_fake_meta::FaultKind::ServerError],
        ..fake.config()
    });
    let offer = list_product(&p, "dead", &["M"], Some("Acme"))
        .await
        .offers
        .into_values()
        .next()
        .unwrap();
    p.eventually("requests dead-lettered", 60, || async {
        (connector(&p).await["outcomes"]["dead_lettered"]
            .as_u64()
            .unwrap_or(0)
            >= 2)
            .then_some(())
    })
    .await;
    assert!(p.topic_len("connector.meta.dlq").await >= 2);
    assert_eq!(meta_listings(&p, "dead").await[&offer].0, "SUBMITTED");
    fake.set_config(FakeConfig {
        fault_rate: 0.0,
        ..fake.config()
    });
    let (s, _) = p
        .post(OPERATOR_KEY, "/v1/connectors/meta/redrive", json!({}))
        .await;
    assert_eq!(s, 202);
    all_meta(&p, "dead", "LIVE", 60).await;
}

/// Runs tests/python/external_adapter.py against this porch until it handled `expect` requests
/// of `channel`; its JSON summary.
fn run_adapter(p: &Porch, channel: &str, expect: usize) -> Value {
    let cluster = p.cluster().expect("a distributed porch");
    let python = python::python_venv();
    let out = std::process::Command::new(python)
        .arg(format!("{}/external_adapter.py", python::PYTHON_DIR))
        .env(
            "PORCH_KAFKA",
            std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        )
        .env(
            "PORCH_REGISTRY_URL",
            format!("http://127.0.0.1:{}", cluster.registry_port),
        )
        .env("PORCH_TOPIC_PREFIX", &cluster.prefix)
        .env("PORCH_API", p.url(""))
        .env("PORCH_ADAPTER_KEY", adapter_key("beta"))
        .env("PORCH_CHANNEL", channel)
        .env("PORCH_GROUP", "adapter-mercadolibre")
        .env("PORCH_EXPECT", expect.to_string())
        .output()
        .expect("run the adapter");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the adapter failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no summary from the adapter: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_adapter_reads_its_requests_in_its_own_group_and_reports_live() {
    if !distributed() {
        return; // a Kafka consumer group: the distributed backend
    }
    let fake = fake_meta(FakeConfig::default()).await;
    let p = Porch::start_with_config(&meta_config(&fake, 8)).await;
    let key = admin_key("beta");
    let (s, body) = p
        .req(
            Method::PUT,
            &key,
            "/v1/channels/mercadolibre/regions/BR",
            Some(json!({ "account": "MLB-seller-9", "link_template": "https://beta.example/{product}" })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let mut body = product_body("mate", "Mate gourd", "home", true);
    body["channel_overrides"] = json!({ "mercadolibre": { "category_id": "MLB1234" } });
    p.applied(Method::POST, &key, "/v1/products", body).await;
    p.applied(
        Method::POST,
        &key,
        "/v1/products/mate/variants",
        json!({ "variants": [{ "sku": "mate-1", "options": {} }] }),
    )
    .await;
    let (s, b) = p
        .post(
            &key,
            "/v1/locations",
            json!({ "location_id": "sp-1", "region": "BR" }),
        )
        .await;
    assert!(s == 200 || s == 201, "{b}");
    let offer = p
        .applied(
            Method::POST,
            &key,
            "/v1/offers",
            json!({ "sku": "mate-1", "region": "BR", "price": { "amount_minor": 4990, "currency": "BRL" }, "channels": ["mercadolibre"] }),
        )
        .await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_string();
    p.applied(
        Method::PUT,
        &key,
        "/v1/inventory/mate-1/sp-1",
        json!({ "on_hand": 5 }),
    )
    .await;
    let summary = tokio::task::block_in_place(|| run_adapter(&p, "mercadolibre", 1));
    assert_eq!(
        summary["handled"][0]["offer_id"],
        offer.as_str(),
        "{summary}"
    );
    assert_eq!(summary["handled"][0]["account"], "MLB-seller-9");
    p.eventually("the Mercado Libre listing LIVE", 60, || async {
        let (_, view) = p.get(&key, "/v1/products/mate").await;
        let ml = view["listings"][0]["channels"]
            .as_array()?
            .iter()
            .find(|c| c["channel"] == "mercadolibre")?
            .clone();
        (ml["status"] == "LIVE").then_some(())
    })
    .await;
    assert!(fake.calls().is_empty(), "Meta is not involved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_settings_and_outcomes_refuse_bad_input_naming_the_field() {
    if distributed() {
        return; // the API's validation, the same code on both backends
    }
    let p = Porch::start().await;
    let key = admin_key("acme");
    let field_of = |body: &Value| {
        body["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let put = |path: &'static str, body: Value| {
        let (p, key) = (&p, &key);
        async move { p.req(Method::PUT, key, path, Some(body)).await }
    };
    let (s, body) = put(
        "/v1/channels/meta/regions/GB",
        json!({ "account": "no spaces", "access_token": "t" }),
    )
    .await;
    assert_eq!((s, field_of(&body)), (422, "account".to_string()), "{body}");
    let (s, body) = put("/v1/channels/meta/regions/GB", json!({ "account": "c1" })).await;
    assert_eq!(
        (s, field_of(&body)),
        (422, "access_token".to_string()),
        "{body}"
    );
    let (s, body) = put(
        "/v1/channels/storefront/regions/GB",
        json!({ "account": "c1" }),
    )
    .await;
    assert_eq!((s, field_of(&body)), (422, "channel".to_string()), "{body}");
    let (s, body) = put(
        "/v1/channels/meta/regions/US",
        json!({ "account": "c1", "access_token": "t" }),
    )
    .await;
    assert_eq!((s, field_of(&body)), (422, "region".to_string()), "{body}");
    let (s, body) = put(
        "/v1/channels/meta/regions/GB",
        json!({ "account": "c1", "access_token": "t", "link_template": "https://x/{nope}" }),
    )
    .await;
    assert_eq!(
        (s, field_of(&body)),
        (422, "link_template".to_string()),
        "{body}"
    );
    assert_eq!(body["status"], 422);
    let (s, _) = p
        .req(
            Method::PUT,
            &reader_key("acme"),
            "/v1/channels/meta/regions/GB",
            Some(json!({ "account": "c1", "access_token": "t" })),
        )
        .await;
    assert_eq!(s, 403, "a reader key connects nothing");

    // An adapter key reports outcomes and does nothing else.
    let adapter = adapter_key("acme");
    let (s, _) = p.get(&adapter, "/v1/products").await;
    assert_eq!(s, 403);
    let (s, body) = p
        .post(&adapter, "/v1/channels/meta/outcomes", json!({ "outcomes": [
            { "offer_id": "01a2504c-b662-72ff-bc54-a44741cf0d38", "version": 1, "result": "LIVE" }
        ]}))
        .await;
    assert_eq!(s, 404, "an offer the tenant does not have: {body}");
    let (s, body) = p
        .post(&adapter, "/v1/channels/meta/outcomes", json!({ "outcomes": [
            { "offer_id": "01a2504c-b662-72ff-bc54-a44741cf0d38", "version": 0, "result": "MAYBE" }
        ]}))
        .await;
    assert_eq!(s, 422, "{body}");
    let fields: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, vec!["outcomes[0].version", "outcomes[0].result"]);
    let (s, _) = p
        .post(
            &adapter,
            "/v1/channels/meta/outcomes",
            json!({ "outcomes": [] }),
        )
        .await;
    assert_eq!(s, 422);
    // Connectors are the operator's.
    let (s, _) = p.get(&key, "/v1/connectors").await;
    assert_eq!(s, 403);
    let (s, _) = p
        .post(OPERATOR_KEY, "/v1/connectors/nope/pause", json!({}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = p
        .post(OPERATOR_KEY, "/v1/connectors/meta/explode", json!({}))
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_the_config_file_is_applied_at_start() {
    // Appended after the last tenant of the test config (t19): its connection.
    let p = Porch::start_with_config(
        "[[tenant.connection]]\nchannel = \"meta\"\nregion = \"GB\"\naccount = \"catalog-t19\"\n\
         access_token = \"t19-secret-token\"\nlink_template = \"https://t19.example/{product}\"\n",
    )
    .await;
    let (s, body) = p.get(&admin_key("t19"), "/v1/channels").await;
    assert_eq!(s, 200, "{body}");
    let c = &body["connections"][0];
    assert_eq!(
        (
            c["channel"].as_str(),
            c["region"].as_str(),
            c["account"].as_str()
        ),
        (Some("meta"), Some("GB"), Some("catalog-t19")),
        "{body}"
    );
    assert_eq!(c["access_token_set"], true);
    assert!(!body.to_string().contains("t19-secret-token"));
    // Every partition of channel.settings has it, without its token.
    let settings = p.topic("channel.settings").await;
    assert_eq!(settings.len(), 8, "one record per partition");
    assert!(settings
        .iter()
        .all(|r| r["value"]["connections"][0]["account"] == "catalog-t19"));
    assert!(!settings
        .iter()
        .any(|r| r.to_string().contains("t19-secret-token")));
}
