//! Mercado Libre end to end (DESIGN §8): the channel processor and the Mercado Libre connector
//! against a fake Mercado Libre API that behaves as CONTRACTS.md says (items confirmed by a read,
//! PUTs answering `{}`, frozen fields after a sale, rotating single-use refresh tokens,
//! `invalid_grant`, 429s and 5xx with no published limit). Runs on `porch up`, and on Kafka and
//! Cassandra with PORCH_TEST_BACKEND=distributed.

mod common;

use common::*;
use porch_fake_mercadolibre::{
    AccountSeed, CallKind, ChangeKind, FakeConfig, FakeMercadoLibre, ItemStatus, ItemSummary,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The tenant every test lists for: its config allows Mercado Libre and Meta in BR and GB.
const TENANT: &str = "beta";
const SELLER: u64 = 7001;
const CLIENT_ID: &str = "porch-app";
const CLIENT_SECRET: &str = "app-secret-never-shown";

async fn fake_ml(config: FakeConfig) -> FakeMercadoLibre {
    FakeMercadoLibre::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("start the fake Mercado Libre")
}

/// The Mercado Libre connector pointed at the fake, tuned for tests: short waits, quick retries,
/// `per_account` requests of one seller under way at once.
fn ml_config(fake: &FakeMercadoLibre, max_attempts: u32, per_account: usize) -> String {
    format!(
        "[connectors.mercadolibre]\napi_url = \"{url}\"\ntoken_url = \"{url}/oauth/token\"\n\
         batch_size = 1\nlinger_ms = 20\nmax_in_flight = 32\nmax_in_flight_per_account = {per_account}\n\
         calls_per_batch = 1\ntimeout_ms = 1000\ntoken_lease_ms = 3000\nbackoff_ms = 50\n\
         max_backoff_ms = 400\nmax_attempts = {max_attempts}\n",
        url = fake.api_url()
    )
}

/// Seeds the seller on the fake and connects it to the tenant in BR with its grant; the refresh
/// token given.
async fn connect_ml(p: &Porch, fake: &FakeMercadoLibre) -> String {
    let seeded = fake
        .add_account(AccountSeed {
            user_id: SELLER,
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            site: Default::default(),
            tokens: true,
        })
        .expect("seed the seller");
    let refresh = seeded.tokens.expect("a token pair").refresh_token;
    let (s, body) = p
        .req(
            Method::PUT,
            &admin_key(TENANT),
            "/v1/channels/mercadolibre/regions/BR",
            Some(json!({
                "account": SELLER.to_string(),
                "link_template": "https://beta.example/products/{product}",
                "grant": { "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": refresh }
            })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["grant_set"], true, "{body}");
    for secret in [CLIENT_SECRET, refresh.as_str()] {
        assert!(!body.to_string().contains(secret), "never shown: {body}");
    }
    refresh
}

/// A product with one variant (`<id>-1`), offered in BR on Mercado Libre at R$ 129,90 (and in GB
/// on Meta when `meta`), with `stock` in BR (and 10 in GB): the BR offer's id.
async fn list_ml(p: &Porch, id: &str, stock: i64, meta: bool) -> String {
    let key = admin_key(TENANT);
    let mut body = product_body(id, &format!("Linen shirt {id}"), "apparel", true);
    body["channel_overrides"] = json!({
        "mercadolibre": { "title": format!("Camisa de linho {id}"), "category_id": "MLB31447" }
    });
    p.applied(Method::POST, &key, "/v1/products", body).await;
    let sku = format!("{id}-1");
    p.applied(
        Method::POST,
        &key,
        &format!("/v1/products/{id}/variants"),
        json!({ "variants": [{ "sku": sku, "options": { "size": "M" } }] }),
    )
    .await;
    let mut offers = vec![("sp-1", "BR", 12_990, "BRL", "mercadolibre", stock)];
    if meta {
        offers.push(("lon-1", "GB", 2_500, "GBP", "meta", 10));
    }
    let mut br_offer = String::new();
    for (loc, region, price, currency, channel, on_hand) in offers {
        let (s, b) = p
            .post(
                &key,
                "/v1/locations",
                json!({ "location_id": loc, "region": region }),
            )
            .await;
        assert!(s == 200 || s == 201, "{b}");
        let offer = p
            .applied(
                Method::POST,
                &key,
                "/v1/offers",
                json!({ "sku": sku, "region": region, "price": { "amount_minor": price, "currency": currency }, "channels": [channel] }),
            )
            .await;
        if region == "BR" {
            br_offer = offer["aggregate_id"].as_str().unwrap().to_string();
        }
        p.applied(
            Method::PUT,
            &key,
            &format!("/v1/inventory/{sku}/{loc}"),
            json!({ "on_hand": on_hand }),
        )
        .await;
    }
    br_offer
}

/// The product's listing on `channel` as merchants see it: (status, issues, channel item id).
async fn listing(p: &Porch, product: &str, channel: &str) -> Option<(String, Value, Value)> {
    channel_listings(p, &admin_key(TENANT), product)
        .await
        .into_iter()
        .find(|((_, c), _)| c == channel)
        .map(|(_, l)| (l.status, l.issues, l.channel_item_id))
}

/// Waits until the product's Mercado Libre listing shows `status`; its issues.
async fn ml_status(p: &Porch, product: &str, status: &str, secs: u64) -> Value {
    p.eventually(
        &format!("the Mercado Libre listing of {product} {status}"),
        secs,
        || async {
            let (s, issues, _) = listing(p, product, "mercadolibre").await?;
            (s == status).then_some(issues)
        },
    )
    .await
}

/// The Mercado Libre listing's state changes in the product's history: (from, to, at micros).
async fn ml_moves(p: &Porch, product: &str, offer: &str) -> Vec<(String, String, i64)> {
    let (s, history) = p
        .get(
            &admin_key(TENANT),
            &format!("/v1/products/{product}/history?limit=1000"),
        )
        .await;
    assert_eq!(s, 200, "{history}");
    history["entries"]
        .as_array()
        .expect("history entries")
        .iter()
        .filter(|e| {
            e["event"] == "ListingStateChanged"
                && e["detail"]["channel"] == "mercadolibre"
                && e["detail"]["offer_id"] == offer
        })
        .map(|e| {
            (
                e["detail"]["from"].as_str().unwrap().to_string(),
                e["detail"]["to"].as_str().unwrap().to_string(),
                e["at"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The seller's items for a SKU that are not closed.
fn open_items(fake: &FakeMercadoLibre, sku: &str) -> Vec<ItemSummary> {
    fake.items()
        .into_values()
        .filter(|i| i.sku.as_deref() == Some(sku) && i.status != ItemStatus::Closed)
        .collect()
}

/// The one item listed for a SKU.
fn the_item(fake: &FakeMercadoLibre, sku: &str) -> ItemSummary {
    let items: Vec<ItemSummary> = fake
        .items()
        .into_values()
        .filter(|i| i.sku.as_deref() == Some(sku))
        .collect();
    assert_eq!(items.len(), 1, "one item for {sku}: {items:?}");
    items.into_iter().next().unwrap()
}

/// Items created per SKU, from the fake's log of changes.
fn creates(fake: &FakeMercadoLibre) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in fake.log() {
        if c.kind == ChangeKind::Create {
            *out.entry(c.sku.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    out
}

/// The seller's successful and refused refreshes so far.
fn refreshes(fake: &FakeMercadoLibre) -> (u64, u64) {
    fake.accounts()
        .iter()
        .find(|a| a.user_id == SELLER)
        .map(|a| (a.refreshes, a.refused_refreshes))
        .unwrap_or_default()
}

async fn connector(p: &Porch) -> Value {
    let (s, body) = p.get(OPERATOR_KEY, "/v1/connectors/mercadolibre").await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn set_stock(p: &Porch, sku: &str, on_hand: i64) {
    p.applied(
        Method::PUT,
        &admin_key(TENANT),
        &format!("/v1/inventory/{sku}/sp-1"),
        json!({ "on_hand": on_hand }),
    )
    .await;
}

/// Waits until the fake's item for `sku` satisfies `check`, and the listing is LIVE again.
async fn item_becomes(
    p: &Porch,
    fake: &FakeMercadoLibre,
    product: &str,
    sku: &str,
    what: &str,
    check: impl Fn(&ItemSummary) -> bool,
) {
    p.eventually(what, 60, || async {
        let item = fake
            .items()
            .into_values()
            .find(|i| i.sku.as_deref() == Some(sku))?;
        check(&item).then_some(())
    })
    .await;
    ml_status(p, product, "LIVE", 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_follows_its_offer_and_stock_on_mercado_libre_and_is_live_only_once_read_back() {
    // Every good PUT answers `{}`: only a read shows what an update did.
    let fake = fake_ml(FakeConfig {
        empty_put_rate: 1.0,
        ..FakeConfig::default()
    })
    .await;
    let p = Porch::start_with_config(&ml_config(&fake, 8, 4)).await;
    connect_ml(&p, &fake).await;
    let offer = list_ml(&p, "linen", 7, false).await;
    ml_status(&p, "linen", "LIVE", 60).await;

    let item = the_item(&fake, "linen-1");
    assert_eq!(item.site_id, porch_fake_mercadolibre::Site::Mlb);
    assert_eq!(item.status, ItemStatus::Active);
    let shown = &item.item;
    assert_eq!(shown["title"], "Camisa de linho linen");
    assert_eq!(shown["currency_id"], "BRL");
    assert_eq!(shown["price"].as_f64(), Some(129.9));
    assert_eq!(shown["available_quantity"], 7);
    assert_eq!(shown["seller_custom_field"], "linen-1");
    assert_eq!(shown["category_id"], "MLB31447");
    let picture = shown["pictures"][0]["url"].as_str().unwrap_or_default();
    assert!(
        picture.starts_with("http") && picture.ends_with("front.jpg"),
        "{shown}"
    );
    let (_, _, item_id) = listing(&p, "linen", "mercadolibre").await.unwrap();
    assert_eq!(
        item_id,
        item.id.as_str(),
        "the view names the channel's item"
    );

    // LIVE came after the item was read back: the LIVE transition is later than a GET of it
    // that followed its creation.
    let moves = ml_moves(&p, "linen", &offer).await;
    let live_at_ms = (moves.iter().find(|m| m.1 == "LIVE").unwrap().2 / 1000) as u64;
    let calls = fake.calls();
    let created = calls
        .iter()
        .find(|c| c.kind == CallKind::CreateItem && c.status == Some(201))
        .expect("a create");
    assert!(
        calls.iter().any(|c| {
            c.kind == CallKind::GetItem
                && c.item_id.as_deref() == Some(item.id.as_str())
                && c.at_ms >= created.at_ms
                && c.at_ms <= live_at_ms
        }),
        "no read of the item between its creation and LIVE"
    );

    // Stock: an update of available_quantity; a stock-out pauses, a restock activates.
    set_stock(&p, "linen-1", 3).await;
    item_becomes(&p, &fake, "linen", "linen-1", "quantity 3", |i| {
        i.item["available_quantity"] == 3 && i.status == ItemStatus::Active
    })
    .await;
    set_stock(&p, "linen-1", 0).await;
    item_becomes(
        &p,
        &fake,
        "linen",
        "linen-1",
        "paused on a stock-out",
        |i| i.status == ItemStatus::Paused,
    )
    .await;
    set_stock(&p, "linen-1", 5).await;
    item_becomes(&p, &fake, "linen", "linen-1", "active on a restock", |i| {
        i.status == ItemStatus::Active && i.item["available_quantity"] == 5
    })
    .await;
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.kind == CallKind::UpdateItem && c.empty_answer),
        "the updates were answered {{}}"
    );

    // Deactivation closes the item: UNPUBLISHED.
    p.applied(
        Method::POST,
        &admin_key(TENANT),
        "/v1/products/linen/deactivate",
        json!({}),
    )
    .await;
    ml_status(&p, "linen", "UNPUBLISHED", 60).await;
    assert_eq!(the_item(&fake, "linen-1").status, ItemStatus::Closed);
    assert_eq!(creates(&fake)["linen-1"], 1, "one item, ever");

    // History tells each step of the listing.
    let moves = ml_moves(&p, "linen", &offer).await;
    let moves: Vec<(&str, &str)> = moves
        .iter()
        .map(|(from, to, _)| (from.as_str(), to.as_str()))
        .collect();
    let mut expected = vec![("PENDING", "SUBMITTED"), ("SUBMITTED", "LIVE")];
    for _ in 0..3 {
        expected.extend([("LIVE", "SUBMITTED"), ("SUBMITTED", "LIVE")]);
    }
    expected.extend([("LIVE", "SUBMITTED"), ("SUBMITTED", "UNPUBLISHED")]);
    assert_eq!(moves, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_change_after_a_sale_is_rejected_naming_the_field_and_not_retried() {
    if distributed() {
        return; // the connector's own refusal, the same code on both backends
    }
    let fake = fake_ml(FakeConfig::default()).await;
    let p = Porch::start_with_config(&ml_config(&fake, 8, 4)).await;
    connect_ml(&p, &fake).await;
    list_ml(&p, "sold", 5, false).await;
    ml_status(&p, "sold", "LIVE", 60).await;
    let item = the_item(&fake, "sold-1");
    fake.sell(&item.id, 1).expect("a buyer buys one");

    let mut body = json!({ "channel_overrides": {
        "mercadolibre": { "title": "Camisa de linho nova", "category_id": "MLB31447" }
    }});
    p.applied(
        Method::PATCH,
        &admin_key(TENANT),
        "/v1/products/sold",
        body.take(),
    )
    .await;
    let issues = ml_status(&p, "sold", "REJECTED", 60).await;
    assert_eq!(issues[0]["field"], "title", "{issues}");
    let message = issues[0]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{issues}");
    let puts = || {
        fake.calls()
            .iter()
            .filter(|c| c.kind == CallKind::UpdateItem)
            .count()
    };
    let refused = puts();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(puts(), refused, "a refused change is not sent again");
    assert_eq!(
        the_item(&fake, "sold-1").item["title"],
        "Camisa de linho sold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_processes_meeting_an_expired_token_refresh_it_once() {
    let fake = fake_ml(FakeConfig::default()).await;
    let mut p = Porch::start_with_config(&ml_config(&fake, 8, 8)).await;
    connect_ml(&p, &fake).await;
    if distributed() {
        // A second connector process in the group: the seller's requests split between them.
        p.start_connector("connector-mercadolibre-2", "mercadolibre");
    }
    list_ml(&p, "first", 2, false).await;
    ml_status(&p, "first", "LIVE", 60).await;
    assert_eq!(refreshes(&fake), (1, 0), "the grant's token refreshed once");

    // Requests pile up while paused; the token expires; every worker meets it at once.
    let (s, _) = p
        .post(OPERATOR_KEY, "/v1/connectors/mercadolibre/pause", json!({}))
        .await;
    assert_eq!(s, 202);
    p.eventually("the connector PAUSED", 30, || async {
        (connector(&p).await["state"] == "PAUSED").then_some(())
    })
    .await;
    let products: Vec<String> = (0..24).map(|i| format!("rush{i:02}")).collect();
    for chunk in products.chunks(8) {
        futures::future::join_all(chunk.iter().map(|id| list_ml(&p, id, 3, false))).await;
    }
    p.eventually("24 requests waiting", 60, || async {
        (connector(&p).await["lag"].as_u64().unwrap_or(0) >= 24).then_some(())
    })
    .await;
    assert!(fake.expire_tokens(SELLER));
    let (s, _) = p
        .post(
            OPERATOR_KEY,
            "/v1/connectors/mercadolibre/resume",
            json!({}),
        )
        .await;
    assert_eq!(s, 202);
    for id in &products {
        ml_status(&p, id, "LIVE", 120).await;
    }

    assert_eq!(
        refreshes(&fake),
        (2, 0),
        "one more refresh, and no spent refresh token sent again"
    );
    let calls = fake.calls();
    let refresh = calls
        .iter()
        .rposition(|c| c.kind == CallKind::Token && c.status == Some(200))
        .unwrap();
    let unauthorized = calls.iter().filter(|c| c.status == Some(401)).count();
    let concurrency = if distributed() { 16 } else { 8 };
    assert!(
        (1..=concurrency).contains(&unauthorized),
        "{unauthorized} calls met the expired token"
    );
    // After the refresh every call succeeds, but for calls already under way with the old
    // token (counted above: at most one a worker), each retried once with the new one.
    let failed: Vec<_> = calls[refresh..]
        .iter()
        .filter(|c| !c.status.is_some_and(|s| s < 300 || s == 401))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    for id in &products {
        assert_eq!(open_items(&fake, &format!("{id}-1")).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_killed_right_after_a_refresh_restarts_with_the_new_token() {
    let fake = fake_ml(FakeConfig::default()).await;
    let mut p = Porch::start_with_config(&ml_config(&fake, 8, 4)).await;
    connect_ml(&p, &fake).await;
    // Kill it right after its first refresh (the first call of a new grant is one): the moment
    // the new access token is first used, which is once the new pair is stored. (Killed between
    // the token endpoint's answer and the store, the pair would exist nowhere: the seller would
    // have to connect again, which the next test shows.)
    let list = list_ml(&p, "kept", 4, false);
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let calls = fake.calls();
            let refreshed = calls
                .iter()
                .position(|c| c.kind == CallKind::Token && c.status == Some(200));
            if refreshed.is_some_and(|at| calls[at..].iter().any(|c| c.kind != CallKind::Token)) {
                break;
            }
            assert!(Instant::now() < deadline, "no refresh");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let (_, ()) = tokio::join!(list, watch);
    if distributed() {
        p.kill_role("connector-mercadolibre");
        p.start_connector("connector-mercadolibre", "mercadolibre");
    } else {
        p.restart().await;
    }
    ml_status(&p, "kept", "LIVE", 120).await;
    // A stock change, and then a new pair once the access token expires: both with the stored
    // rotation, never the spent refresh token.
    set_stock(&p, "kept-1", 2).await;
    item_becomes(&p, &fake, "kept", "kept-1", "quantity 2", |i| {
        i.item["available_quantity"] == 2
    })
    .await;
    assert!(fake.expire_tokens(SELLER));
    set_stock(&p, "kept-1", 1).await;
    item_becomes(&p, &fake, "kept", "kept-1", "quantity 1", |i| {
        i.item["available_quantity"] == 1
    })
    .await;
    let (done, refused) = refreshes(&fake);
    assert_eq!(refused, 0, "a spent refresh token was sent");
    assert_eq!(
        done, 2,
        "the restart used the stored pair; the expiry one refresh"
    );
    assert_eq!(creates(&fake)["kept-1"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_shows_needs_reauth_on_the_account_and_its_listings_until_reconnected() {
    let fake = fake_ml(FakeConfig::default()).await;
    let p = Porch::start_with_config(&ml_config(&fake, 8, 4)).await;
    connect_ml(&p, &fake).await;
    list_ml(&p, "before", 6, false).await;
    ml_status(&p, "before", "LIVE", 60).await;

    // The seller revokes porch's access: the next refresh is invalid_grant.
    assert!(fake.revoke(SELLER));
    assert!(fake.expire_tokens(SELLER));
    set_stock(&p, "before-1", 2).await;
    list_ml(&p, "during", 3, false).await;
    for product in ["before", "during"] {
        let issues = ml_status(&p, product, "NEEDS_REAUTH", 60).await;
        assert_eq!(issues[0]["code"], "NEEDS_REAUTH", "{issues}");
    }
    let (s, channels) = p.get(&admin_key(TENANT), "/v1/channels").await;
    assert_eq!(s, 200);
    let ml = channels["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "mercadolibre")
        .unwrap()
        .clone();
    assert!(ml["needs_reauth"].is_string(), "{ml}");
    let status = connector(&p).await;
    assert_eq!(
        status["needs_reauth"][0]["account"],
        SELLER.to_string(),
        "{status}"
    );
    assert_eq!(status["needs_reauth"][0]["tenant"], TENANT, "{status}");
    assert_eq!(
        refreshes(&fake).1,
        1,
        "one refused refresh, not one per request"
    );
    let calls_while_waiting = fake.calls().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fake.calls().len(),
        calls_while_waiting,
        "no calls while waiting"
    );

    // The seller authorises porch again; the admin connects the new grant: both resume.
    connect_ml(&p, &fake).await;
    item_becomes(&p, &fake, "before", "before-1", "quantity 2", |i| {
        i.item["available_quantity"] == 2
    })
    .await;
    ml_status(&p, "during", "LIVE", 60).await;
    assert_eq!(the_item(&fake, "during-1").item["available_quantity"], 3);
    let (_, channels) = p.get(&admin_key(TENANT), "/v1/channels").await;
    assert!(
        channels["connections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["needs_reauth"].is_null()),
        "{channels}"
    );
    assert_eq!(connector(&p).await["needs_reauth"], json!([]));
}

/// The Meta connector pointed at a fake Meta, as tests/channels.rs tunes it.
fn meta_config(fake: &porch_fake_meta::FakeMeta) -> String {
    format!(
        "[connectors.meta]\ngraph_url = \"{}\"\nbatch_size = 500\nlinger_ms = 50\n\
         poll_interval_ms = 100\nmax_poll_interval_ms = 400\ntimeout_ms = 1000\n\
         backoff_ms = 50\nmax_backoff_ms = 400\nmax_throttle_ms = 1000\nmax_attempts = 12\n",
        fake.graph_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_both_channels_with_a_connector_killed_ends_settled_with_no_duplicate_item() {
    if distributed() {
        return; // the distributed connectors' kill and restart: tests/channels.rs, and above
    }
    let ml = fake_ml(FakeConfig {
        fault_rate: 0.3,
        empty_put_rate: 0.3,
        hang_ms: 1500,
        seed: 5,
        ..FakeConfig::default()
    })
    .await;
    let meta = porch_fake_meta::FakeMeta::start(
        "127.0.0.1:0".parse().unwrap(),
        porch_fake_meta::FakeConfig {
            catalogs: [("catalog-gb".to_string(), "meta-token".to_string())]
                .into_iter()
                .collect(),
            fault_rate: 0.3,
            polls_to_finish: (1, 4),
            hang_ms: 1500,
            seed: 5,
            ..porch_fake_meta::FakeConfig::default()
        },
    )
    .await
    .expect("start the fake Meta");
    let mut p = Porch::start_with_config(&format!(
        "{}\n{}",
        ml_config(&ml, 12, 4),
        meta_config(&meta)
    ))
    .await;
    // Connecting itself goes through the faults: the first refresh may take a few tries.
    connect_ml(&p, &ml).await;
    let (s, body) = p
        .req(
            Method::PUT,
            &admin_key(TENANT),
            "/v1/channels/meta/regions/GB",
            Some(json!({
                "account": "catalog-gb", "access_token": "meta-token",
                "link_template": "https://beta.example/products/{product}"
            })),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    let products: Vec<String> = (0..300).map(|i| format!("chaos{i:03}")).collect();
    let mut killed = false;
    for chunk in products.chunks(10) {
        futures::future::join_all(chunk.iter().map(|id| list_ml(&p, id, 4, true))).await;
        // Midway through the load, with items on both channels, the connectors die at once.
        if !killed && ml.log().len() >= 40 && !meta.log().is_empty() {
            p.restart().await;
            killed = true;
        }
    }
    assert!(killed, "the connectors were killed midway");
    let states: BTreeMap<String, String> = all_settled(
        &p,
        &admin_key(TENANT),
        &products,
        &["mercadolibre", "meta"],
        2,
        420,
    )
    .await
    .into_iter()
    .map(|((product, _, channel), status)| (format!("{product}/{channel}"), status))
    .collect();
    assert_eq!(states.len(), 600);

    assert_eq!(
        ml.duplicates(),
        vec![],
        "a SKU listed twice on Mercado Libre"
    );
    let made = creates(&ml);
    assert!(made.values().all(|n| *n == 1), "{made:?}");
    for id in &products {
        if states[&format!("{id}/mercadolibre")] == "LIVE" {
            assert_eq!(made.get(&format!("{id}-1")), Some(&1), "{id}");
        }
    }
    let mut meta_creates: BTreeMap<String, usize> = BTreeMap::new();
    for r in meta.log() {
        if r.method == porch_fake_meta::ItemMethod::Create {
            *meta_creates.entry(r.retailer_id.clone()).or_default() += 1;
        }
    }
    assert!(
        meta_creates.values().all(|n| *n == 1),
        "a second Meta create: {:?}",
        meta_creates
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    // The faults were met and retried, on both channels.
    let calls = ml.calls();
    for fault in [
        porch_fake_mercadolibre::FaultKind::TooManyRequests,
        porch_fake_mercadolibre::FaultKind::ServerError,
        porch_fake_mercadolibre::FaultKind::Timeout,
    ] {
        assert!(calls.iter().any(|c| c.fault == Some(fault)), "{fault:?}");
    }
    assert!(calls.iter().any(|c| c.empty_answer));
}
