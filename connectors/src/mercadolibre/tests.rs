//! The Mercado Libre service against the fake Mercado Libre API (in process), with its rows in
//! the embedded store: what the fake holds and the calls it saw are the ground truth.

use super::service::MercadoLibreService;
use super::tokens::{auth_state, AUTH_TABLE};
use super::MercadoLibreConfig;
use crate::accounts::{
    Accounts, ChannelAccount, ChannelAccounts, MercadoLibreCredentials, Secret, ACCOUNTS_TABLE,
};
use crate::sink::embedded::EmbeddedRows;
use crate::sink::{
    ChannelService, ConnectorStatus, Gate, ItemResult, OnChannel, Retrier, RetryClass, RetryPolicy,
    RowStore, SinkRequest,
};
use porch_fake_mercadolibre::{
    AccountSeed, CallKind, ChangeKind, FakeConfig, FakeMercadoLibre, FaultKind, ItemStatus, Site,
    TokenPair,
};
use porch_processors::domain::channel::Action;
use porch_processors::store::RowWrite;
use porch_schemas::{
    Channel, ChannelConnection, ChannelItem, Currency, ListingRequested, Money, OfferId, ProductId,
    RegionCode, SellerId, Sku, TenantId,
};
use porch_topics::{EmbeddedLog, LogRecord};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const USER: u64 = 7001;
const CLIENT_ID: &str = "porch-app";
const CLIENT_SECRET: &str = "app-secret-value";
const IMAGE: &str = "https://media.example/acme/p1/linen.jpg";

/// A fake Mercado Libre, one seller on it, and porch's store holding the seller's grant.
struct World {
    fake: FakeMercadoLibre,
    rows: Arc<dyn RowStore>,
    tenant: TenantId,
    dir: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now_ms() -> i64 {
    porch_schemas::now_micros() / 1_000
}

impl World {
    async fn new() -> World {
        let fake = FakeMercadoLibre::start("127.0.0.1:0".parse().unwrap(), FakeConfig::default())
            .await
            .expect("the fake starts");
        // Tests run side by side: each world gets a directory of its own.
        static WORLDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "porch-mercadolibre-{}-{}-{}",
            std::process::id(),
            porch_schemas::now_micros(),
            WORLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = EmbeddedLog::open(&dir.join("log.redb"), 1, vec![], 4 << 20).unwrap();
        let world = World {
            fake,
            rows: Arc::new(EmbeddedRows(Arc::new(log))),
            tenant: TenantId::parse("acme").unwrap(),
            dir,
        };
        let pair = world.seed_seller();
        world.connect(&pair, None).await;
        world
    }

    /// Seeds (or re-authorises) the seller on the fake: a fresh token pair.
    fn seed_seller(&self) -> TokenPair {
        self.fake
            .add_account(AccountSeed {
                user_id: USER,
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                site: Site::Mlb,
                tokens: true,
            })
            .expect("seeded")
            .tokens
            .expect("a token pair")
    }

    /// Stores the tenant's Mercado Libre account in Brazil with `pair` as its grant; the access
    /// token expires when the fake says, or at `expires_at_ms`.
    async fn connect(&self, pair: &TokenPair, expires_at_ms: Option<i64>) {
        let accounts = ChannelAccounts {
            version: porch_schemas::now_micros(),
            accounts: vec![ChannelAccount {
                connection: ChannelConnection {
                    channel: Channel::MercadoLibre,
                    region: RegionCode::parse("BR").unwrap(),
                    account: USER.to_string(),
                    enabled: true,
                    link_template: None,
                },
                access_token: None,
                mercadolibre: Some(MercadoLibreCredentials {
                    client_id: CLIENT_ID.into(),
                    client_secret: Secret::new(CLIENT_SECRET),
                    user_id: USER.to_string(),
                    refresh_token: Secret::new(&pair.refresh_token),
                    access_token: Some(Secret::new(&pair.access_token)),
                    access_expires_at_ms: Some(
                        expires_at_ms.unwrap_or(now_ms() + pair.expires_in as i64 * 1_000),
                    ),
                }),
            }],
        };
        self.rows
            .put(vec![RowWrite {
                table: ACCOUNTS_TABLE.into(),
                key: self.tenant.to_string(),
                value: Some(serde_json::to_vec(&accounts).unwrap()),
            }])
            .await
            .unwrap();
    }

    fn config(&self) -> MercadoLibreConfig {
        let api = self.fake.api_url();
        MercadoLibreConfig {
            token_url: format!("{api}/oauth/token"),
            api_url: api,
            timeout_ms: 2_000,
            token_lease_ms: 5_000,
            ..MercadoLibreConfig::default()
        }
    }

    fn service_with(&self, config: MercadoLibreConfig) -> Arc<MercadoLibreService> {
        config.validate().unwrap();
        let accounts = Arc::new(Accounts::new(self.rows.clone()));
        Arc::new(MercadoLibreService::new(config, accounts, self.rows.clone()).unwrap())
    }

    fn service(&self) -> Arc<MercadoLibreService> {
        self.service_with(self.config())
    }

    fn calls(&self, kind: CallKind) -> Vec<porch_fake_mercadolibre::CallRecord> {
        self.fake
            .calls()
            .into_iter()
            .filter(|c| c.kind == kind)
            .collect()
    }

    fn status_of(&self, item_id: &str) -> ItemStatus {
        self.fake.items()[item_id].status
    }

    fn refreshes(&self) -> (u64, u64) {
        let a = self
            .fake
            .accounts()
            .into_iter()
            .find(|a| a.user_id == USER)
            .expect("the seller");
        (a.refreshes, a.refused_refreshes)
    }
}

fn retrier_with(base: Duration) -> Retrier {
    Retrier::new(
        RetryPolicy {
            max_attempts: 8,
            base,
            max_backoff: base * 4,
        },
        Gate::default(),
        Arc::new(ConnectorStatus::new("mercadolibre")),
    )
}

fn retrier() -> Retrier {
    retrier_with(Duration::from_millis(2))
}

fn money(minor: i64, currency: &str) -> Money {
    Money::new(minor, Currency::parse(currency).unwrap()).unwrap()
}

/// The item the channel processor sends: the Mercado Libre title override applied, the
/// category from the product's `category_id` override.
fn item(title: &str, price: Money, quantity: i64) -> ChannelItem {
    ChannelItem {
        title: title.into(),
        description: "Linho lavado".into(),
        brand: Some("Porch".into()),
        gtin: None,
        mpn: None,
        category: None,
        condition: "new".into(),
        availability: if quantity > 0 {
            "in stock"
        } else {
            "out of stock"
        }
        .into(),
        quantity,
        price,
        compare_at: None,
        link: String::new(),
        image_link: IMAGE.into(),
        additional_image_links: vec![],
        item_group_id: "p1".into(),
        options: [("color".to_string(), "azul".to_string())]
            .into_iter()
            .collect(),
        extra: [("category_id".to_string(), "MLB31447".to_string())]
            .into_iter()
            .collect(),
    }
}

fn shirt(quantity: i64) -> ChannelItem {
    item("Camisa de linho azul", money(12_990, "BRL"), quantity)
}

fn request(
    sku: &str,
    version: i64,
    item: Option<ChannelItem>,
    on_channel: OnChannel,
) -> SinkRequest {
    let offer = format!("offer-{}", sku.to_ascii_lowercase());
    let action = if item.is_some() {
        Action::Upsert
    } else {
        Action::Delete
    };
    SinkRequest {
        tenant: TenantId::parse("acme").unwrap(),
        event_id: format!("e-{sku}-{version}"),
        correlation_id: "c".into(),
        request: ListingRequested {
            channel: Channel::MercadoLibre,
            account: USER.to_string(),
            offer_id: OfferId::parse(offer.clone()).unwrap(),
            product_id: ProductId::parse("p1").unwrap(),
            sku: Sku::parse(sku).unwrap(),
            seller: SellerId::parse("s1").unwrap(),
            region: RegionCode::parse("BR").unwrap(),
            retailer_id: offer,
            version,
            action: action.as_str().into(),
            item: item.map(Box::new),
        },
        action,
        on_channel,
        raw: LogRecord {
            topic: "channel.events".into(),
            partition: 0,
            offset: version as u64,
            timestamp: 0,
            key: vec![],
            value: vec![],
            headers: vec![],
        },
    }
}

async fn one(service: &MercadoLibreService, r: SinkRequest, retrier: &Retrier) -> ItemResult {
    use crate::sink::ChannelService;
    let mut results = service.submit(std::slice::from_ref(&r), retrier).await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

fn live_id(result: &ItemResult) -> String {
    match result {
        ItemResult::Live {
            channel_item_id: Some(id),
        } => id.clone(),
        other => panic!("not LIVE with an item id: {other:?}"),
    }
}

fn fields_of(result: &ItemResult) -> Vec<(String, String)> {
    match result {
        ItemResult::Rejected(issues) => issues
            .iter()
            .map(|i| (i.code.clone(), i.field.clone().unwrap_or_default()))
            .collect(),
        other => panic!("not REJECTED: {other:?}"),
    }
}

#[tokio::test]
async fn a_new_item_is_created_as_asked_and_live_only_after_a_read_confirms_it() {
    let w = World::new().await;
    let service = w.service();
    let result = one(
        &service,
        request("SKU-1", 1, Some(shirt(3)), OnChannel::Absent),
        &retrier(),
    )
    .await;
    let id = live_id(&result);
    assert!(id.starts_with("MLB"), "{id}");
    let listed = &w.fake.items()[&id].item;
    assert_eq!(
        listed["title"], "Camisa de linho azul",
        "the channel's title"
    );
    assert_eq!(listed["price"], 129.9);
    assert_eq!(listed["currency_id"], "BRL");
    assert_eq!(listed["available_quantity"], 3);
    assert_eq!(listed["pictures"][0]["url"], IMAGE);
    assert_eq!(listed["seller_custom_field"], "SKU-1");
    assert_eq!(listed["category_id"], "MLB31447");
    assert_eq!(listed["listing_type_id"], "gold_special");
    assert_eq!(listed["buying_mode"], "buy_it_now");
    assert_eq!(listed["status"], "active");
    let kinds: Vec<CallKind> = w.fake.calls().iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![CallKind::CreateItem, CallKind::GetItem],
        "created, then read back before LIVE"
    );
}

#[tokio::test]
async fn an_update_answered_with_an_empty_body_is_confirmed_by_a_read() {
    let w = World::new().await;
    let service = w.service();
    let r = retrier();
    let id = live_id(
        &one(
            &service,
            request("SKU-2", 1, Some(shirt(3)), OnChannel::Absent),
            &r,
        )
        .await,
    );
    w.fake.set_config(FakeConfig {
        empty_put_rate: 1.0,
        ..FakeConfig::default()
    });
    let cheaper = item("Camisa de linho azul", money(9_990, "BRL"), 3);
    let result = one(
        &service,
        request("SKU-2", 2, Some(cheaper), OnChannel::Present),
        &r,
    )
    .await;
    assert_eq!(live_id(&result), id, "the same item, updated");
    assert_eq!(w.fake.items()[&id].item["price"], 99.9);
    let calls = w.fake.calls();
    let put = calls
        .iter()
        .position(|c| c.kind == CallKind::UpdateItem)
        .expect("a PUT");
    assert!(calls[put].empty_answer, "the PUT answered {{}}");
    assert!(
        calls[put + 1..]
            .iter()
            .any(|c| c.kind == CallKind::GetItem && c.status == Some(200)),
        "LIVE came from a read after the PUT"
    );
    assert_eq!(
        w.calls(CallKind::CreateItem).len(),
        1,
        "never created again"
    );
}

#[tokio::test]
async fn a_stock_out_pauses_the_item_and_a_restock_activates_it() {
    let w = World::new().await;
    let service = w.service();
    let r = retrier();
    let id = live_id(
        &one(
            &service,
            request("SKU-3", 1, Some(shirt(3)), OnChannel::Absent),
            &r,
        )
        .await,
    );
    let out = one(
        &service,
        request("SKU-3", 2, Some(shirt(0)), OnChannel::Present),
        &r,
    )
    .await;
    assert_eq!(live_id(&out), id);
    assert_eq!(w.status_of(&id), ItemStatus::Paused);
    assert_eq!(w.fake.items()[&id].item["available_quantity"], 0);
    let back = one(
        &service,
        request("SKU-3", 3, Some(shirt(5)), OnChannel::Present),
        &r,
    )
    .await;
    assert_eq!(live_id(&back), id);
    assert_eq!(w.status_of(&id), ItemStatus::Active);
    assert_eq!(w.fake.items()[&id].item["available_quantity"], 5);
}

#[tokio::test]
async fn a_delete_closes_the_item_and_a_later_upsert_lists_a_new_one() {
    let w = World::new().await;
    let service = w.service();
    let r = retrier();
    let first = live_id(
        &one(
            &service,
            request("SKU-4", 1, Some(shirt(3)), OnChannel::Absent),
            &r,
        )
        .await,
    );
    let gone = one(&service, request("SKU-4", 2, None, OnChannel::Present), &r).await;
    assert_eq!(gone, ItemResult::Unpublished);
    assert_eq!(w.status_of(&first), ItemStatus::Closed);
    // After a confirmed delete the ledger says the channel holds nothing.
    let again = one(
        &service,
        request("SKU-4", 3, Some(shirt(2)), OnChannel::Absent),
        &r,
    )
    .await;
    let second = live_id(&again);
    assert_ne!(second, first, "a closed item is never reused");
    assert_eq!(w.status_of(&first), ItemStatus::Closed);
    assert_eq!(w.status_of(&second), ItemStatus::Active);
    // Even a ledger unsure of the item does not bring the closed one back.
    let unsure = one(
        &service,
        request("SKU-4", 4, Some(shirt(2)), OnChannel::Unknown),
        &r,
    )
    .await;
    assert_eq!(live_id(&unsure), second);
    assert!(w.fake.duplicates().is_empty(), "{:?}", w.fake.duplicates());
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_by_sku_and_not_listed_twice() {
    let w = World::new().await;
    w.fake.set_config(FakeConfig {
        fault_rate: 1.0,
        fault_kinds: vec![FaultKind::Timeout],
        hang_ms: 500,
        ..FakeConfig::default()
    });
    // The fake's first create timeout comes before the create, the second after it: spend the
    // first, so that porch's create is applied and its answer lost.
    let spent = reqwest::Client::new()
        .post(format!("{}/items", w.fake.api_url()))
        .timeout(Duration::from_millis(100))
        .json(&serde_json::json!({}))
        .send()
        .await;
    assert!(spent.is_err(), "the first create times out");
    // Heal the fake as soon as porch's create has been applied, before its retry.
    let fake_calls = {
        let url = w.fake.api_url();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let calls: serde_json::Value = client
                    .get(format!("{url}/_fake/calls"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let applied = calls.as_array().unwrap().iter().any(|c| {
                    c["kind"] == "create_item" && c["status"].is_null() && c["item_id"].is_string()
                });
                if applied {
                    client
                        .put(format!("{url}/_fake/config"))
                        .json(&serde_json::json!({}))
                        .send()
                        .await
                        .unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let service = w.service_with(MercadoLibreConfig {
        timeout_ms: 200,
        ..w.config()
    });
    let result = one(
        &service,
        request("SKU-5", 1, Some(shirt(3)), OnChannel::Absent),
        &retrier_with(Duration::from_millis(300)),
    )
    .await;
    fake_calls.await.unwrap();
    let id = live_id(&result);
    let creates = w.calls(CallKind::CreateItem);
    let lost: Vec<_> = creates.iter().filter(|c| c.status.is_none()).collect();
    assert_eq!(lost.len(), 2, "the spent timeout and porch's: {creates:?}");
    assert_eq!(
        lost[1].item_id.as_deref(),
        Some(id.as_str()),
        "porch adopted it"
    );
    assert!(
        creates.iter().all(|c| c.status.is_none()),
        "no create was sent again: {creates:?}"
    );
    assert!(!w.calls(CallKind::SearchItems).is_empty(), "found by SKU");
    let listed: Vec<_> = w
        .fake
        .items()
        .into_values()
        .filter(|i| i.sku.as_deref() == Some("SKU-5"))
        .collect();
    assert_eq!(listed.len(), 1, "one listing for the SKU");
    assert!(w.fake.duplicates().is_empty());
}

#[tokio::test]
async fn a_frozen_field_changed_after_a_sale_is_rejected_naming_it_without_a_retry() {
    let w = World::new().await;
    let service = w.service();
    let r = retrier();
    let id = live_id(
        &one(
            &service,
            request("SKU-6", 1, Some(shirt(3)), OnChannel::Absent),
            &r,
        )
        .await,
    );
    w.fake.sell(&id, 1).expect("a sale");
    let renamed = item("Camisa de linho natural", money(12_990, "BRL"), 2);
    let result = one(
        &service,
        request("SKU-6", 2, Some(renamed.clone()), OnChannel::Present),
        &r,
    )
    .await;
    let named = fields_of(&result);
    assert!(
        named.contains(&("MERCADOLIBRE_NOT_MODIFIABLE".into(), "title".into())),
        "{named:?}"
    );
    let puts = w.calls(CallKind::UpdateItem);
    assert_eq!(puts.len(), 1, "refused once, never retried: {puts:?}");
    assert_eq!(puts[0].status, Some(400));
    assert_eq!(puts[0].error.as_deref(), Some("item.title.not_modifiable"));
    // Asked again, the change is refused without a call: the item is known to have sold.
    let again = one(
        &service,
        request("SKU-6", 3, Some(renamed), OnChannel::Present),
        &r,
    )
    .await;
    assert!(fields_of(&again).contains(&("MERCADOLIBRE_NOT_MODIFIABLE".into(), "title".into())));
    assert_eq!(w.calls(CallKind::UpdateItem).len(), 1);
    // Other changes go through, without naming the frozen title.
    let cheaper = item("Camisa de linho azul", money(11_990, "BRL"), 2);
    let result = one(
        &service,
        request("SKU-6", 4, Some(cheaper), OnChannel::Present),
        &r,
    )
    .await;
    assert_eq!(live_id(&result), id);
    let update = w
        .fake
        .log()
        .into_iter()
        .rfind(|c| c.kind == ChangeKind::Update)
        .expect("an update");
    assert!(update.data.get("title").is_none(), "{}", update.data);
    assert_eq!(w.fake.items()[&id].item["price"], 119.9);
}

#[tokio::test]
async fn a_validation_error_is_rejected_naming_the_field_without_a_retry() {
    let w = World::new().await;
    w.fake.set_config(FakeConfig {
        max_title_chars: 10,
        ..FakeConfig::default()
    });
    let service = w.service();
    let result = one(
        &service,
        request("SKU-7", 1, Some(shirt(3)), OnChannel::Absent),
        &retrier(),
    )
    .await;
    assert_eq!(
        fields_of(&result),
        vec![("MERCADOLIBRE_INVALID".to_string(), "title".to_string())]
    );
    let creates = w.calls(CallKind::CreateItem);
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(
        creates[0].error.as_deref(),
        Some("item.title.length.invalid")
    );
    assert!(w.fake.items().is_empty());
}

#[tokio::test]
async fn an_offer_priced_in_another_currency_than_its_sites_is_rejected_without_a_call() {
    let w = World::new().await;
    let service = w.service();
    let dollars = item("Camisa de linho azul", money(2_500, "USD"), 3);
    let result = one(
        &service,
        request("SKU-8", 1, Some(dollars), OnChannel::Absent),
        &retrier(),
    )
    .await;
    assert_eq!(
        fields_of(&result),
        vec![(
            "MERCADOLIBRE_INVALID".to_string(),
            "currency_id".to_string()
        )]
    );
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_until_they_pass() {
    let w = World::new().await;
    w.fake.set_config(FakeConfig {
        fault_rate: 0.4,
        fault_kinds: vec![FaultKind::TooManyRequests, FaultKind::ServerError],
        seed: 11,
        ..FakeConfig::default()
    });
    let service = w.service();
    let r = retrier();
    let id = live_id(
        &one(
            &service,
            request("SKU-9", 1, Some(shirt(3)), OnChannel::Absent),
            &r,
        )
        .await,
    );
    let cheaper = item("Camisa de linho azul", money(9_990, "BRL"), 0);
    assert_eq!(
        live_id(
            &one(
                &service,
                request("SKU-9", 2, Some(cheaper), OnChannel::Present),
                &r
            )
            .await
        ),
        id
    );
    assert_eq!(w.status_of(&id), ItemStatus::Paused);
    assert_eq!(
        one(&service, request("SKU-9", 3, None, OnChannel::Present), &r).await,
        ItemResult::Unpublished
    );
    assert_eq!(w.status_of(&id), ItemStatus::Closed);
    let faults: Vec<_> = w
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.fault.is_some())
        .collect();
    assert!(
        faults.iter().any(|c| c.status == Some(429))
            && faults.iter().any(|c| c.status.is_some_and(|s| s >= 500)),
        "both kinds of fault were met: {faults:?}"
    );
    let retried = r.status.snapshot().retries;
    assert!(
        retried.get("rate_limited").is_some_and(|n| *n > 0),
        "{retried:?}"
    );
    assert!(
        retried.get("server_error").is_some_and(|n| *n > 0),
        "{retried:?}"
    );
    assert_eq!(w.fake.items().len(), 1, "one item, whatever the retries");
}

#[tokio::test]
async fn eight_requests_on_an_expired_token_refresh_it_once() {
    let w = World::new().await;
    w.fake.set_config(FakeConfig {
        latency_ms: 20,
        ..FakeConfig::default()
    });
    // Mercado Libre ends the token before porch expected: every call answers 401 first.
    assert!(w.fake.expire_tokens(USER));
    let service = w.service();
    let r = Arc::new(retrier());
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (service, r) = (service.clone(), r.clone());
            tokio::spawn(async move {
                let sku = format!("SKU-T{n}");
                one(
                    &service,
                    request(&sku, 1, Some(shirt(1)), OnChannel::Absent),
                    &r,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        live_id(&t.await.unwrap());
    }
    assert_eq!(w.refreshes(), (1, 0), "one refresh; no spent token reused");
    let tokens = w.calls(CallKind::Token);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].grant_type.as_deref(), Some("refresh_token"));
    let state = auth_state(w.rows.as_ref(), &w.tenant, &USER.to_string())
        .await
        .unwrap()
        .expect("the seller's tokens");
    assert_eq!((state.refreshes, state.needs_reauth), (1, None));
}

#[tokio::test]
async fn two_services_sharing_a_store_refresh_a_seller_once() {
    let w = World::new().await;
    w.fake.set_config(FakeConfig {
        latency_ms: 30,
        ..FakeConfig::default()
    });
    // The grant's access token is about to expire: both processes refresh before calling.
    let pair = w.seed_seller();
    w.connect(&pair, Some(now_ms() + 1_000)).await;
    let (a, b) = (w.service(), w.service());
    let r = Arc::new(retrier());
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let service = if n % 2 == 0 { a.clone() } else { b.clone() };
            let r = r.clone();
            tokio::spawn(async move {
                let sku = format!("SKU-P{n}");
                one(
                    &service,
                    request(&sku, 1, Some(shirt(1)), OnChannel::Absent),
                    &r,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        live_id(&t.await.unwrap());
    }
    assert_eq!(w.refreshes(), (1, 0), "one refresh over both processes");
    assert!(
        w.fake.calls().iter().all(|c| c.status != Some(401)),
        "no call was made with the expiring token after the refresh"
    );
    let state = auth_state(w.rows.as_ref(), &w.tenant, &USER.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !state.refreshing,
        "the lease was released with the new pair"
    );
    assert!(state.access_expires_at_ms > now_ms() + 3_600_000);
}

#[tokio::test]
async fn a_refused_refresh_token_stops_the_seller_until_it_connects_again() {
    let w = World::new().await;
    let service = w.service();
    let r = retrier();
    // The seller revoked the app: its tokens stop working and the refresh is refused.
    assert!(w.fake.revoke(USER) && w.fake.expire_tokens(USER));
    let result = one(
        &service,
        request("SKU-R1", 1, Some(shirt(1)), OnChannel::Absent),
        &r,
    )
    .await;
    match &result {
        ItemResult::Failed(e) => assert_eq!(e.class, Some(RetryClass::Auth), "{e:?}"),
        other => panic!("held for a redrive, not {other:?}"),
    }
    let state = auth_state(w.rows.as_ref(), &w.tenant, &USER.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(
        state
            .needs_reauth
            .as_deref()
            .is_some_and(|w| w.contains("invalid_grant")),
        "{state:?}"
    );
    assert_eq!(w.refreshes(), (0, 1));
    let seen = w.fake.calls().len();
    // Until the seller connects again, nothing is sent for it, by this process or another.
    for service in [service.clone(), w.service()] {
        let held = one(
            &service,
            request("SKU-R2", 1, Some(shirt(1)), OnChannel::Absent),
            &r,
        )
        .await;
        assert!(matches!(held, ItemResult::Failed(ref e) if e.class == Some(RetryClass::Auth)));
    }
    assert_eq!(
        w.fake.calls().len(),
        seen,
        "no call for a seller that must connect again"
    );
    // No secret reached the connector's status.
    let shown = format!("{:?}", r.status.snapshot());
    for secret in [CLIENT_SECRET, "TG-", "APP_USR-"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // The seller connects again: a new grant on the account, and work resumes.
    let pair = w.seed_seller();
    w.connect(&pair, None).await;
    let back = one(
        &service,
        request("SKU-R2", 2, Some(shirt(1)), OnChannel::Absent),
        &r,
    )
    .await;
    live_id(&back);
    let state = auth_state(w.rows.as_ref(), &w.tenant, &USER.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.needs_reauth, None);
    let rows = w
        .rows
        .get_many(AUTH_TABLE, &[format!("acme/{USER}")])
        .await
        .unwrap();
    let row = String::from_utf8(rows[0].clone().unwrap()).unwrap();
    assert!(
        row.contains(&pair.refresh_token),
        "the row starts from the new grant"
    );
}

#[tokio::test]
async fn a_refresh_lease_whose_holder_died_runs_out_and_another_process_refreshes() {
    let w = World::new().await;
    let pair = w.seed_seller();
    w.connect(&pair, Some(now_ms() - 1)).await;
    // Another process leased the seller's refresh and died before it refreshed.
    let until = now_ms() + 400;
    let row = serde_json::json!({
        "seed": pair.refresh_token, "refresh_token": pair.refresh_token,
        "access_token": pair.access_token, "expires_at_ms": now_ms() - 1, "refreshes": 0,
        "lease": {"holder": "a-process-that-died", "until_ms": until}, "needs_reauth": null,
    });
    w.rows
        .put(vec![RowWrite {
            table: AUTH_TABLE.into(),
            key: format!("acme/{USER}"),
            value: Some(serde_json::to_vec(&row).unwrap()),
        }])
        .await
        .unwrap();
    let service = w.service();
    let result = one(
        &service,
        request("SKU-L1", 1, Some(shirt(1)), OnChannel::Absent),
        &retrier(),
    )
    .await;
    live_id(&result);
    let token = w.calls(CallKind::Token);
    assert_eq!(token.len(), 1, "{token:?}");
    assert!(
        token[0].at_ms as i64 >= until,
        "no refresh while the lease held: refreshed at {}, lease until {until}",
        token[0].at_ms
    );
    assert_eq!(w.refreshes(), (1, 0));
}

#[tokio::test]
async fn a_connection_without_a_grant_is_left_to_an_external_adapter() {
    let world = World::new().await;
    let service = world.service();
    let r = request("SHIRT-1", 1, Some(shirt(3)), OnChannel::Absent);
    assert!(
        service.serves(&r.tenant, &r.request).await.unwrap(),
        "a seller with a grant is the connector's"
    );
    // The same connection without a grant, in another tenant, and a region not connected.
    let mut accounts: ChannelAccounts = serde_json::from_slice(
        &world
            .rows
            .get_many(ACCOUNTS_TABLE, &[world.tenant.to_string()])
            .await
            .unwrap()[0]
            .clone()
            .unwrap(),
    )
    .unwrap();
    accounts.accounts[0].mercadolibre = None;
    world
        .rows
        .put(vec![RowWrite {
            table: ACCOUNTS_TABLE.into(),
            key: "beta".into(),
            value: Some(serde_json::to_vec(&accounts).unwrap()),
        }])
        .await
        .unwrap();
    let beta = TenantId::parse("beta").unwrap();
    assert!(!service.serves(&beta, &r.request).await.unwrap());
    let mut mexico = r.request.clone();
    mexico.region = RegionCode::parse("MX").unwrap();
    assert!(!service.serves(&r.tenant, &mexico).await.unwrap());
    assert!(
        world.fake.calls().is_empty(),
        "deciding whose a request is makes no call"
    );
}
