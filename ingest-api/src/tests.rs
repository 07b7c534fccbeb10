//! The API driven through `oneshot` against in-memory fakes of the store, the command sink and
//! the topic reader.

use crate::{app, AppState, Config, Media, Metrics};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use porch_connectors::search::SearchIndex;
use porch_processors::domain::activation::{ActivationState, ActivationStatus, OfferView};
use porch_processors::domain::compliance::{ComplianceState, ComplianceStatus};
use porch_processors::domain::inventory::{InventoryState, LocationStock, StockStatus};
use porch_processors::domain::listing::{ListingState, ListingStatus};
use porch_processors::domain::offer::OfferState;
use porch_processors::domain::product::{ProductState, ProductStatus};
use porch_processors::store::{
    key, sku_key, tables, BoxFuture, Claim, CommandSink, CommandState, CommandStatus,
    IdempotencyRecord, Store, StoreError, Submission, SubmitOutcome, TopicReader, TopicRecordJson,
};
use porch_schemas::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

// ---------------------------------------------------------------- fakes

#[derive(Default)]
struct FakeStore {
    rows: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl FakeStore {
    fn put<T: Serialize>(&self, table: &str, key: &str, value: &T) {
        let bytes = serde_json::to_vec(value).unwrap();
        self.rows
            .lock()
            .unwrap()
            .insert((table.to_string(), key.to_string()), bytes);
    }

    fn has(&self, table: &str, key: &str) -> bool {
        self.rows
            .lock()
            .unwrap()
            .contains_key(&(table.to_string(), key.to_string()))
    }
}

impl Store for FakeStore {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .get(&(table.to_string(), key.to_string()))
            .cloned())
    }

    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|((t, k), _)| {
                t == table && k.starts_with(prefix) && start_after.is_none_or(|a| k.as_str() > a)
            })
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Records submissions and honours idempotency keys and claims, as the real sink does.
struct FakeSink {
    store: Arc<FakeStore>,
    submissions: Mutex<Vec<Submission>>,
}

impl FakeSink {
    fn count(&self) -> usize {
        self.submissions.lock().unwrap().len()
    }

    fn last(&self) -> Submission {
        self.submissions
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a submission")
    }

    fn decide(&self, s: &Submission) -> SubmitOutcome {
        let tenant = s.record.envelope.tenant.as_str();
        if let Some(k) = &s.idempotency_key {
            let row_key = key(&[tenant, k]);
            if let Some(Some(earlier)) = self
                .store
                .get_raw(tables::IDEMPOTENCY, &row_key)
                .ok()
                .map(|b| b.map(|b| serde_json::from_slice::<IdempotencyRecord>(&b).unwrap()))
            {
                return if earlier.request_hash == s.request_hash {
                    SubmitOutcome::Replayed {
                        command_id: earlier.command_id,
                    }
                } else {
                    SubmitOutcome::Conflict(Reason::on_field(
                        "IDEMPOTENCY_KEY_REUSED",
                        "Idempotency-Key",
                        "the key was used for another request",
                    ))
                };
            }
        }
        for claim in &s.claims {
            match claim {
                Claim::Sku { sku, product_id } => {
                    let owner = self
                        .store
                        .get_raw(tables::SKU, &sku_key(tenant, sku))
                        .unwrap();
                    if owner.is_some_and(|o| {
                        serde_json::from_slice::<ProductId>(&o).unwrap() != *product_id
                    }) {
                        return SubmitOutcome::Conflict(Reason::on_field(
                            "SKU_TAKEN",
                            "sku",
                            "owned elsewhere",
                        ));
                    }
                }
                Claim::Offer(r) => {
                    let k = key(&[tenant, r.seller.as_str(), r.sku.as_str(), r.region.as_str()]);
                    if self.store.has(tables::OFFER_KEY, &k) {
                        return SubmitOutcome::Conflict(Reason::on_field(
                            "OFFER_EXISTS",
                            "sku",
                            "offer exists",
                        ));
                    }
                }
                Claim::Product { .. } | Claim::Reservation { .. } => {}
            }
        }
        SubmitOutcome::Accepted {
            command_id: s.record.envelope.command_id.clone(),
        }
    }

    fn record(&self, s: &Submission) {
        let env = &s.record.envelope;
        let tenant = env.tenant.as_str();
        if let Some(k) = &s.idempotency_key {
            let rec = IdempotencyRecord {
                command_id: env.command_id.clone(),
                request_hash: s.request_hash.clone(),
            };
            self.store
                .put(tables::IDEMPOTENCY, &key(&[tenant, k]), &rec);
        }
        for claim in &s.claims {
            match claim {
                Claim::Product { product_id } => self.store.put(
                    tables::PRODUCT_ID,
                    &key(&[tenant, product_id.as_str()]),
                    &"",
                ),
                Claim::Sku { sku, product_id } => {
                    self.store
                        .put(tables::SKU, &sku_key(tenant, sku), product_id)
                }
                Claim::Offer(r) => {
                    let k = key(&[tenant, r.seller.as_str(), r.sku.as_str(), r.region.as_str()]);
                    self.store.put(tables::OFFER_KEY, &k, &r.offer_id);
                    self.store
                        .put(tables::OFFER_REF, &key(&[tenant, r.offer_id.as_str()]), r);
                }
                Claim::Reservation {
                    reservation_id,
                    line,
                    hot,
                } => self.store.put(
                    tables::RESERVATION,
                    &key(&[tenant, reservation_id.as_str()]),
                    &porch_processors::store::ReservationRef {
                        line: line.clone(),
                        hot: *hot,
                    },
                ),
            }
        }
        let status = CommandStatus {
            command_id: env.command_id.clone(),
            command_type: s.record.command.type_name().to_string(),
            status: CommandState::Accepted,
            aggregate_id: env.aggregate_id.clone(),
            product_id: s.record.command.product_id().clone(),
            reasons: vec![],
            events: vec![],
            accepted_at: env.issued_at,
            completed_at: None,
        };
        self.store.put(
            tables::COMMAND,
            &key(&[tenant, env.command_id.as_str()]),
            &status,
        );
        self.submissions.lock().unwrap().push(s.clone());
    }
}

impl CommandSink for FakeSink {
    fn submit(&self, submission: Submission) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>> {
        Box::pin(async move {
            let outcome = self.decide(&submission);
            if matches!(outcome, SubmitOutcome::Accepted { .. }) {
                self.record(&submission);
            }
            Ok(outcome)
        })
    }

    fn register_location(
        &self,
        tenant: TenantId,
        location: LocationId,
        region: RegionCode,
    ) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>> {
        Box::pin(async move {
            let k = key(&[tenant.as_str(), location.as_str()]);
            let existing: Option<RegionCode> =
                (&*self.store as &(dyn Store + 'static)).get(tables::LOCATION, &k)?;
            Ok(match existing {
                None => {
                    self.store.put(tables::LOCATION, &k, &region);
                    SubmitOutcome::Accepted {
                        command_id: CommandId::generate(),
                    }
                }
                Some(r) if r == region => SubmitOutcome::Replayed {
                    command_id: CommandId::generate(),
                },
                Some(r) => SubmitOutcome::Conflict(Reason::on_field(
                    "LOCATION_REGION",
                    "region",
                    format!("location is in {r}"),
                )),
            })
        })
    }

    fn changed(&self, timeout_ms: u64) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(
            timeout_ms.min(5),
        )))
    }
}

struct FakeTopics;

impl TopicReader for FakeTopics {
    fn topics(&self) -> Vec<String> {
        vec!["product.commands".into(), "product.events".into()]
    }
    fn partitions(&self) -> u32 {
        2
    }
    fn end_offset(&self, _topic: &str, partition: u32) -> Result<u64, StoreError> {
        Ok(u64::from(partition) * 10)
    }
    fn read_json(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<TopicRecordJson>, StoreError> {
        Ok((from..self.end_offset(topic, partition)?)
            .take(max)
            .map(|offset| TopicRecordJson {
                topic: topic.into(),
                partition,
                offset,
                timestamp: 0,
                key: "acme/p1".into(),
                headers: BTreeMap::new(),
                record_type: Some("porch.product.ProductCreated".into()),
                value: json!({}),
            })
            .collect())
    }
}

// ---------------------------------------------------------------- harness

const CONFIG: &str = r#"
[operator]
api_key = "op-key"

[[tenant]]
id = "acme"
mode = "single_brand"
regions = ["GB", "IN"]
channels = ["storefront", "meta"]
[[tenant.key]]
key = "acme-admin"
role = "admin"
[[tenant.key]]
key = "acme-reader"
role = "reader"

[[tenant]]
id = "beta"
mode = "mall"
regions = ["BR", "GB"]
[[tenant.key]]
key = "beta-admin"
role = "admin"
[[tenant.key]]
key = "beta-seller"
role = "seller"
seller = "shop-1"
"#;

/// The public base URL of the harness's images.
const MEDIA_BASE: &str = "http://porch.test/media";

struct Harness {
    app: Router,
    store: Arc<FakeStore>,
    sink: Arc<FakeSink>,
    ready: Arc<AtomicBool>,
    images_dir: std::path::PathBuf,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    bytes: Vec<u8>,
}

impl Reply {
    fn is_problem(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/problem+json")
            && self.body["status"] == self.status.as_u16()
    }

    fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn harness() -> Harness {
    harness_with(CONFIG)
}

fn harness_with(config: &str) -> Harness {
    let store = Arc::new(FakeStore::default());
    let sink = Arc::new(FakeSink {
        store: store.clone(),
        submissions: Mutex::new(Vec::new()),
    });
    let ready = Arc::new(AtomicBool::new(true));
    let images_dir = std::env::temp_dir().join(format!(
        "porch-ingest-test-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let media = Media::local(&images_dir, MEDIA_BASE).unwrap();
    let state = AppState {
        store: store.clone(),
        sink: sink.clone(),
        topics: Arc::new(FakeTopics),
        search: Arc::new(SearchIndex::open_in_ram().unwrap()),
        config: Arc::new(Config::from_toml(config).unwrap()),
        media: Arc::new(media),
        metrics: Arc::new(Metrics::new()),
        ready: ready.clone(),
        hot: Arc::new(crate::hot::HotSkus::new(&Default::default())),
    };
    Harness {
        app: app(state),
        store,
        sink,
        ready,
        images_dir,
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.images_dir);
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            bytes,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        self.call_with(method, uri, key, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body
            .map(|b| Body::from(b.to_string()))
            .unwrap_or_else(Body::empty);
        self.send(request.body(body).unwrap()).await
    }

    fn seed_product(&self, tenant: &str, id: &str) {
        let product = ProductData {
            product_id: ProductId::parse(id).unwrap(),
            title: "Linen shirt".into(),
            description: Some("Breathable".into()),
            brand: Some("Acme".into()),
            category: Some("shirts".into()),
            attributes: BTreeMap::new(),
            images: vec![
                "front.jpg".into(),
                "https://cdn.example.com/back.jpg".into(),
            ],
            channel_overrides: BTreeMap::new(),
        };
        let state = ProductState {
            product: Some(product),
            status: ProductStatus::Ready,
            version: 1,
            ..Default::default()
        };
        self.store.put(tables::PRODUCT, &key(&[tenant, id]), &state);
    }

    fn seed_sku(&self, tenant: &str, sku: &str, product: &str) {
        self.store.put(
            tables::SKU,
            &key(&[tenant, sku]),
            &ProductId::parse(product).unwrap(),
        );
    }
}

fn offer_data(offer: &str, product: &str, seller: &str, sku: &str, region: &str) -> OfferData {
    OfferData {
        offer_id: OfferId::parse(offer).unwrap(),
        product_id: ProductId::parse(product).unwrap(),
        seller: SellerId::parse(seller).unwrap(),
        sku: Sku::parse(sku).unwrap(),
        region: RegionCode::parse(region).unwrap(),
        price: Money::new(2500, Currency::parse("GBP").unwrap()).unwrap(),
        compare_at: None,
        valid_from: None,
        valid_until: None,
        channels: vec![Channel::Storefront, Channel::Meta],
    }
}

fn stock(
    product: &str,
    seller: &str,
    sku: &str,
    region: &str,
    on_hand: i64,
    reserved: i64,
) -> InventoryState {
    let mut locations = BTreeMap::new();
    locations.insert(
        LocationId::parse("wh-1").unwrap(),
        LocationStock { on_hand, reserved },
    );
    InventoryState {
        product_id: Some(ProductId::parse(product).unwrap()),
        seller: Some(SellerId::parse(seller).unwrap()),
        sku: Some(Sku::parse(sku).unwrap()),
        region: Some(RegionCode::parse(region).unwrap()),
        locations,
        reservations: BTreeMap::new(),
        finished: Default::default(),
        status: Some(StockStatus::StockReady),
        version: 1,
    }
}

const OFFER: &str =
    r#"{"sku":"SHIRT-M","region":"GB","price":{"amount_minor":2500,"currency":"GBP"}}"#;

// ---------------------------------------------------------------- authentication and tenancy

#[tokio::test]
async fn requests_without_a_known_key_are_401_problems() {
    let h = harness();
    let r = h.call(Method::GET, "/v1/products", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.is_problem());
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("nobody"),
            Some(r#"{"title":"x"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.is_problem());
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn another_tenants_product_and_command_are_not_found() {
    let h = harness();
    h.seed_product("acme", "p1");
    let created = h
        .call(
            Method::POST,
            "/v1/products/p1/deactivate",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let command = created.body["command_id"].as_str().unwrap().to_string();

    assert_eq!(
        h.call(Method::GET, "/v1/products/p1", Some("acme-admin"), None)
            .await
            .status,
        StatusCode::OK
    );
    let uri = format!("/v1/commands/{command}");
    assert_eq!(
        h.call(Method::GET, &uri, Some("acme-reader"), None)
            .await
            .status,
        StatusCode::OK
    );

    for uri in ["/v1/products/p1", "/v1/products/p1/history", uri.as_str()] {
        let r = h.call(Method::GET, uri, Some("beta-admin"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(r.is_problem());
    }
    let r = h
        .call(
            Method::PATCH,
            "/v1/products/p1",
            Some("beta-admin"),
            Some(r#"{"title":"mine"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.sink.count(), 1);
}

#[tokio::test]
async fn a_reader_key_cannot_write() {
    let h = harness();
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-reader"),
            Some(r#"{"title":"Shirt"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.is_problem());
    assert_eq!(h.sink.count(), 0);
    let r = h
        .call(Method::GET, "/v1/products", Some("acme-reader"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_seller_key_acts_only_for_its_seller() {
    let h = harness();
    h.seed_sku("beta", "SHIRT-M", "p1");
    let other = r#"{"sku":"SHIRT-M","region":"GB","seller":"shop-2","price":{"amount_minor":100,"currency":"GBP"}}"#;
    let r = h
        .call(Method::POST, "/v1/offers", Some("beta-seller"), Some(other))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::POST, "/v1/offers", Some("beta-seller"), Some(OFFER))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let Command::CreateOffer(c) = h.sink.last().record.command else {
        panic!("not an offer")
    };
    assert_eq!(c.offer.seller.as_str(), "shop-1");
    assert_eq!(
        h.sink.last().record.envelope.seller.unwrap().as_str(),
        "shop-1"
    );
    // An admin of a mall must name the seller.
    let r = h
        .call(Method::POST, "/v1/offers", Some("beta-admin"), Some(OFFER))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.fields(), vec!["seller"]);
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn malformed_json_is_a_400_problem_and_nothing_is_submitted() {
    let h = harness();
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"title": "x",}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.is_problem());
    assert!(
        r.body["detail"].as_str().unwrap().contains("line 1"),
        "{}",
        r.body
    );
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn unknown_missing_and_mistyped_fields_are_named() {
    let h = harness();
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"title":"x","colour":"red"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.is_problem());
    assert_eq!(r.fields(), vec!["colour"]);
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"brand":"x"}"#),
        )
        .await;
    assert_eq!(r.fields(), vec!["title"]);
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"title":"x","attributes":{"size":4}}"#),
        )
        .await;
    assert_eq!(r.fields(), vec!["attributes.size"]);
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"title":"x","channel_overrides":{"myspace":{}}}"#),
        )
        .await;
    assert_eq!(r.fields(), vec!["channel_overrides.myspace"]);
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn a_negative_price_and_an_unknown_region_are_422_naming_the_field() {
    let h = harness();
    h.seed_sku("acme", "SHIRT-M", "p1");
    let negative =
        r#"{"sku":"SHIRT-M","region":"GB","price":{"amount_minor":-1,"currency":"GBP"}}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/offers",
            Some("acme-admin"),
            Some(negative),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.is_problem());
    assert_eq!(r.fields(), vec!["price.amount_minor"]);

    for region in ["DE", "de"] {
        let body = OFFER.replace("\"GB\"", &format!("\"{region}\""));
        let r = h
            .call(Method::POST, "/v1/offers", Some("acme-admin"), Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.fields(), vec!["region"]);
    }
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn wrong_content_type_is_415_problem() {
    let h = harness();
    let request = Request::post("/v1/products")
        .header(header::AUTHORIZATION, "Bearer acme-admin")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"title":"x"}"#))
        .unwrap();
    let r = h.send(request).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.is_problem());
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn a_10_mib_body_is_413_problem_and_nothing_is_submitted() {
    let h = harness();
    let huge = format!(r#"{{"title":"{}"}}"#, "x".repeat(10 * 1024 * 1024));
    let r = h
        .call(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(&huge),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.is_problem(),
        "{:?}",
        String::from_utf8_lossy(&r.bytes[..r.bytes.len().min(200)])
    );
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = harness();
    let r = h
        .call(Method::GET, "/v2/nothing", Some("acme-admin"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.is_problem());
    let r = h
        .call(Method::DELETE, "/v1/products", Some("acme-admin"), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.is_problem());
}

// ---------------------------------------------------------------- commands

#[tokio::test]
async fn creating_a_product_answers_202_with_the_command() {
    let h = harness();
    let r = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"id":"p9","title":"Shirt","attributes":{"tax_code":"6109"}}"#),
            &[("x-correlation-id", "order-77")],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let command_id = r.body["command_id"].as_str().unwrap();
    assert_eq!(r.body["aggregate_id"], "p9");
    assert_eq!(r.body["product_id"], "p9");
    assert_eq!(r.body["status"], "ACCEPTED");
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/commands/{command_id}").as_str()
    );
    let s = h.sink.last();
    assert_eq!(s.record.envelope.tenant.as_str(), "acme");
    assert_eq!(s.record.envelope.correlation_id, "order-77");
    assert_eq!(s.record.envelope.command_id.as_str(), command_id);
    let Command::CreateProduct(c) = s.record.command else {
        panic!("not CreateProduct")
    };
    assert_eq!(c.product.attributes["tax_code"], "6109");

    let r = h
        .call(
            Method::GET,
            &format!("/v1/commands/{command_id}?wait=20"),
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ACCEPTED");
    assert_eq!(r.body["command_type"], "CreateProduct");
}

#[tokio::test]
async fn an_idempotency_key_sent_twice_yields_one_command() {
    let h = harness();
    let body = r#"{"title":"Shirt"}"#;
    let headers = [("idempotency-key", "create-shirt-1")];
    let first = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(body),
            &headers,
        )
        .await;
    let second = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(body),
            &headers,
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.body["command_id"], second.body["command_id"]);
    // The product id porch generated the first time is the one reported again.
    assert_eq!(first.body["product_id"], second.body["product_id"]);
    assert_eq!(h.sink.count(), 1);

    let other = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(r#"{"title":"Hat"}"#),
            &headers,
        )
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert!(other.is_problem());
    assert_eq!(other.fields(), vec!["Idempotency-Key"]);
    assert_eq!(h.sink.count(), 1);
}

#[tokio::test]
async fn a_client_command_id_is_the_idempotency_key() {
    let h = harness();
    let headers = [("x-command-id", "cmd-1")];
    let body = r#"{"id":"p1","title":"Shirt"}"#;
    let first = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(body),
            &headers,
        )
        .await;
    let second = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(body),
            &headers,
        )
        .await;
    assert_eq!(first.body["command_id"], "cmd-1");
    assert_eq!(second.body["command_id"], "cmd-1");
    assert_eq!(h.sink.count(), 1);
    let bad = h
        .call_with(
            Method::POST,
            "/v1/products",
            Some("acme-admin"),
            Some(body),
            &[("x-command-id", "a b")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.fields(), vec!["X-Command-Id"]);
}

#[tokio::test]
async fn patching_a_product_is_a_merge_patch() {
    let h = harness();
    let r = h
        .call(
            Method::PATCH,
            "/v1/products/p1",
            Some("acme-admin"),
            Some(r#"{"title":"x"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.seed_product("acme", "p1");
    let patch = r#"{"brand":null,"attributes":{"tax_code":"6109","old":null}}"#;
    let r = h
        .call(
            Method::PATCH,
            "/v1/products/p1",
            Some("acme-admin"),
            Some(patch),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let Command::UpdateProduct(u) = h.sink.last().record.command else {
        panic!("not UpdateProduct")
    };
    assert_eq!(u.title, None);
    assert_eq!(u.brand, Some(String::new()));
    assert_eq!(u.attributes_set["tax_code"], "6109");
    assert_eq!(u.attributes_removed, vec!["old".to_string()]);
    let r = h
        .call(
            Method::PATCH,
            "/v1/products/p1",
            Some("acme-admin"),
            Some(r#"{"title":null}"#),
        )
        .await;
    assert_eq!(r.fields(), vec!["title"]);
}

#[tokio::test]
async fn variants_come_one_or_many_and_claim_their_skus() {
    let h = harness();
    h.seed_product("acme", "p1");
    let one = r#"{"sku":"SHIRT-M","options":{"size":"M"}}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/products/p1/variants",
            Some("acme-admin"),
            Some(one),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let many = r#"{"variants":[{"sku":"SHIRT-L"},{"sku":"SHIRT-XL","gtin":"12"}]}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/products/p1/variants",
            Some("acme-admin"),
            Some(many),
        )
        .await;
    assert_eq!(r.fields(), vec!["variants[1].gtin"]);
    let many = r#"{"variants":[{"sku":"SHIRT-L"},{"sku":"SHIRT-XL","weight":1}]}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/products/p1/variants",
            Some("acme-admin"),
            Some(many),
        )
        .await;
    assert_eq!(r.fields(), vec!["variants[1].weight"]);
    let many = r#"{"variants":[{"sku":"SHIRT-L"},{"sku":"SHIRT-XL"}]}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/products/p1/variants",
            Some("acme-admin"),
            Some(many),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.sink.last().claims.len(), 2);

    let r = h
        .call(
            Method::PATCH,
            "/v1/variants/SHIRT-L",
            Some("acme-admin"),
            Some(r#"{"weight_grams":200}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body["product_id"], "p1");
    let r = h
        .call(
            Method::POST,
            "/v1/variants/NOPE/discontinue",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.sink.count(), 3);
}

#[tokio::test]
async fn offers_are_routed_by_their_skus_product_and_unique_per_seller_sku_region() {
    let h = harness();
    let r = h
        .call(Method::POST, "/v1/offers", Some("acme-admin"), Some(OFFER))
        .await;
    assert_eq!(r.fields(), vec!["sku"]);
    h.seed_sku("acme", "SHIRT-M", "p1");
    let r = h
        .call(Method::POST, "/v1/offers", Some("acme-admin"), Some(OFFER))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["product_id"], "p1");
    let offer_id = r.body["aggregate_id"].as_str().unwrap().to_string();
    let Command::CreateOffer(c) = h.sink.last().record.command else {
        panic!("not CreateOffer")
    };
    assert_eq!(c.offer.seller.as_str(), "acme");
    assert_eq!(c.offer.channels, vec![Channel::Storefront, Channel::Meta]);

    let again = h
        .call(Method::POST, "/v1/offers", Some("acme-admin"), Some(OFFER))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.fields(), vec!["sku"]);

    let r = h
        .call(
            Method::PATCH,
            &format!("/v1/offers/{offer_id}"),
            Some("acme-admin"),
            Some(r#"{"price":{"amount_minor":1999,"currency":"GBP"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = h
        .call(
            Method::POST,
            &format!("/v1/offers/{offer_id}/withdraw"),
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = h
        .call(
            Method::POST,
            &format!("/v1/offers/{offer_id}/withdraw"),
            Some("beta-admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.sink.count(), 3);
}

#[tokio::test]
async fn stock_needs_a_registered_location_and_reservations_route_their_release() {
    let h = harness();
    h.seed_sku("acme", "SHIRT-M", "p1");
    let r = h
        .call(
            Method::PUT,
            "/v1/inventory/SHIRT-M/wh-1",
            Some("acme-admin"),
            Some(r#"{"on_hand":5}"#),
        )
        .await;
    assert_eq!(r.fields(), vec!["location"]);
    let location = r#"{"location_id":"wh-1","region":"IN"}"#;
    assert_eq!(
        h.call(
            Method::POST,
            "/v1/locations",
            Some("acme-admin"),
            Some(location)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        h.call(
            Method::POST,
            "/v1/locations",
            Some("acme-admin"),
            Some(location)
        )
        .await
        .status,
        StatusCode::OK
    );
    let moved = r#"{"location_id":"wh-1","region":"GB"}"#;
    assert_eq!(
        h.call(
            Method::POST,
            "/v1/locations",
            Some("acme-admin"),
            Some(moved)
        )
        .await
        .status,
        StatusCode::CONFLICT
    );

    let r = h
        .call(
            Method::PUT,
            "/v1/inventory/SHIRT-M/wh-1",
            Some("acme-admin"),
            Some(r#"{"on_hand":-1}"#),
        )
        .await;
    assert_eq!(r.fields(), vec!["on_hand"]);
    let r = h
        .call(
            Method::PUT,
            "/v1/inventory/SHIRT-M/wh-1",
            Some("acme-admin"),
            Some(r#"{"on_hand":5}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body["aggregate_id"], "SHIRT-M@IN");
    let Command::SetStock(s) = h.sink.last().record.command else {
        panic!("not SetStock")
    };
    assert_eq!(
        (s.line.region.as_str(), s.line.seller.as_str(), s.on_hand),
        ("IN", "acme", 5)
    );

    let reserve = r#"{"sku":"SHIRT-M","location":"wh-1","quantity":2}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/inventory/reservations",
            Some("acme-admin"),
            Some(reserve),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let reservation = r.body["aggregate_id"].as_str().unwrap().to_string();
    let uri = format!("/v1/inventory/reservations/{reservation}");
    assert_eq!(
        h.call(Method::DELETE, &uri, Some("beta-admin"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = h.call(Method::DELETE, &uri, Some("acme-admin"), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let Command::ReleaseReservation(rel) = h.sink.last().record.command else {
        panic!("not a release")
    };
    assert_eq!(rel.line.location.as_str(), "wh-1");
}

#[tokio::test]
async fn compliance_decisions_are_for_admins() {
    let h = harness();
    h.seed_product("beta", "p1");
    let decision = r#"{"approve":true,"note":"checked"}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/compliance/p1/BR/decision",
            Some("beta-seller"),
            Some(decision),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::POST,
            "/v1/compliance/p1/IN/decision",
            Some("beta-admin"),
            Some(decision),
        )
        .await;
    assert_eq!(r.fields(), vec!["region"]);
    let r = h
        .call(
            Method::POST,
            "/v1/compliance/p1/BR/decision",
            Some("beta-admin"),
            Some(decision),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.sink.count(), 1);
}

// ---------------------------------------------------------------- reads

#[tokio::test]
async fn the_product_view_joins_every_module() {
    let h = harness();
    h.seed_product("acme", "p1");
    let offer = offer_data("o1", "p1", "acme", "SHIRT-M", "GB");
    h.store.put(
        tables::OFFER,
        "acme/p1/o1",
        &OfferState {
            offer: Some(offer.clone()),
            withdrawn: false,
            version: 1,
        },
    );
    let mut activation = ActivationState::default();
    activation.offers.insert(
        offer.offer_id.clone(),
        OfferView {
            data: offer,
            withdrawn: false,
            status: ActivationStatus::Active,
            reasons: vec![],
            listing: None,
            listed_at: None,
            version: 2,
        },
    );
    h.store.put(tables::ACTIVATION, "acme/p1", &activation);
    h.store.put(
        tables::LISTING,
        "acme/p1/o1",
        &ListingState {
            status: ListingStatus::Visible,
            listing: None,
            reasons: vec![],
            version: 1,
        },
    );
    h.store.put(
        tables::INVENTORY,
        "acme/p1/acme/SHIRT-M/GB",
        &stock("p1", "acme", "SHIRT-M", "GB", 7, 2),
    );
    let rejected = ComplianceState {
        product_id: Some(ProductId::parse("p1").unwrap()),
        region: Some(RegionCode::parse("IN").unwrap()),
        status: ComplianceStatus::Rejected,
        reasons: vec![Reason::on_field(
            "MISSING_ATTRIBUTE",
            "attributes.tax_code",
            "IN needs a tax code",
        )],
        ..Default::default()
    };
    h.store.put(tables::COMPLIANCE, "acme/p1/IN", &rejected);
    // Another product whose id starts the same must not leak in.
    h.store.put(
        tables::INVENTORY,
        "acme/p10/acme/HAT/GB",
        &stock("p10", "acme", "HAT", "GB", 100, 0),
    );

    let r = h
        .call(Method::GET, "/v1/products/p1", Some("acme-reader"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = &r.body;
    assert_eq!(b["status"], "READY");
    assert_eq!(b["product"]["product"]["title"], "Linen shirt");
    assert_eq!(b["offers"][0]["status"], "ACTIVE");
    assert_eq!(b["offers"][0]["price"]["amount_minor"], 2500);
    assert_eq!(b["offers"][0]["listing"], "VISIBLE");
    assert_eq!(b["availability"]["GB"]["available"], 5);
    assert_eq!(b["compliance"]["IN"]["status"], "REJECTED");
    assert_eq!(b["compliance"]["GB"]["status"], "PENDING");
    assert_eq!(
        b["listings"][0]["channels"],
        json!([
            {"channel":"storefront","status":"LIVE","issues":[],"version":0,"channel_item_id":null},
            {"channel":"meta","status":"PENDING","issues":[],"version":0,"channel_item_id":null}
        ])
    );
    assert_eq!(
        b["images"][0]["url"],
        "http://porch.test/media/acme/p1/front.jpg"
    );
    assert_eq!(b["images"][1]["url"], "https://cdn.example.com/back.jpg");
}

#[tokio::test]
async fn products_list_in_pages_and_filter() {
    let h = harness();
    for id in ["a1", "a2", "a3"] {
        h.seed_product("acme", id);
    }
    h.seed_product("beta", "b1");
    let mut draft = ProductState {
        status: ProductStatus::Draft,
        ..Default::default()
    };
    draft.product = Some(ProductData {
        product_id: ProductId::parse("a4").unwrap(),
        title: "Draft".into(),
        description: None,
        brand: None,
        category: None,
        attributes: BTreeMap::new(),
        images: vec![],
        channel_overrides: BTreeMap::new(),
    });
    h.store.put(tables::PRODUCT, "acme/a4", &draft);

    let r = h
        .call(
            Method::GET,
            "/v1/products?limit=2",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next_cursor"], "a2");
    let r = h
        .call(
            Method::GET,
            "/v1/products?limit=2&cursor=a2",
            Some("acme-admin"),
            None,
        )
        .await;
    let ids: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["product_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("a3"), json!("a4")]);
    let r = h
        .call(
            Method::GET,
            "/v1/products?status=draft",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["next_cursor"], Value::Null);
    let r = h
        .call(
            Method::GET,
            "/v1/products?limit=0",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.fields(), vec!["limit"]);
    let r = h
        .call(
            Method::GET,
            "/v1/products?channel=myspace",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.fields(), vec!["channel"]);

    let mut activation = ActivationState::default();
    let offer = offer_data("o1", "a3", "acme", "SKU", "GB");
    activation.offers.insert(
        offer.offer_id.clone(),
        OfferView {
            data: offer,
            withdrawn: false,
            status: ActivationStatus::Active,
            reasons: vec![],
            listing: None,
            listed_at: None,
            version: 1,
        },
    );
    h.store.put(tables::ACTIVATION, "acme/a3", &activation);
    let r = h
        .call(
            Method::GET,
            "/v1/products?seller=acme&channel=meta",
            Some("acme-admin"),
            None,
        )
        .await;
    let ids: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["product_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("a3")]);
}

#[tokio::test]
async fn availability_sums_sellers_unless_one_is_named() {
    let h = harness();
    h.seed_sku("beta", "SHIRT-M", "p1");
    h.store.put(
        tables::INVENTORY,
        "beta/p1/shop-1/SHIRT-M/BR",
        &stock("p1", "shop-1", "SHIRT-M", "BR", 3, 0),
    );
    h.store.put(
        tables::INVENTORY,
        "beta/p1/shop-2/SHIRT-M/BR",
        &stock("p1", "shop-2", "SHIRT-M", "BR", 4, 1),
    );
    h.store.put(
        tables::INVENTORY,
        "beta/p1/shop-2/SHIRT-M/GB",
        &stock("p1", "shop-2", "SHIRT-M", "GB", 50, 0),
    );
    // The buy box sells shop-1's and shop-2's BR offers; the GB offer is suspended for a
    // compliance rejection, so its stock does not count.
    let view = |offer: &str, seller: &str, region: &str, status, reasons: Vec<Reason>| {
        (
            OfferId::parse(offer).unwrap(),
            OfferView {
                data: offer_data(offer, "p1", seller, "SHIRT-M", region),
                withdrawn: false,
                status,
                reasons,
                listing: None,
                listed_at: None,
                version: 1,
            },
        )
    };
    let rejected = Reason::new("COMPLIANCE_REJECTED", "not sold in GB");
    h.store.put(
        tables::ACTIVATION,
        "beta/p1",
        &ActivationState {
            offers: [
                view("o-1", "shop-1", "BR", ActivationStatus::Active, vec![]),
                view("o-2", "shop-2", "BR", ActivationStatus::Active, vec![]),
                view(
                    "o-3",
                    "shop-2",
                    "GB",
                    ActivationStatus::Suspended,
                    vec![rejected],
                ),
            ]
            .into_iter()
            .collect(),
            ..ActivationState::default()
        },
    );
    let body = r#"{"items":[
        {"sku":"SHIRT-M","region":"BR","quantity":6},
        {"sku":"SHIRT-M","region":"BR","quantity":4,"seller":"shop-1"},
        {"sku":"NOPE","region":"BR","quantity":1},
        {"product_id":"p1","quantity":6},
        {"product_id":"p1","region":"GB","quantity":1}]}"#;
    let r = h
        .call(
            Method::POST,
            "/v1/products/check-availability",
            Some("beta-seller"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["all_available"], false);
    assert_eq!(r.body["items"][0]["available"], 6);
    assert_eq!(r.body["items"][0]["is_available"], true);
    assert_eq!(r.body["items"][1]["available"], 3);
    assert_eq!(r.body["items"][1]["is_available"], false);
    assert_eq!(r.body["items"][2]["available"], 0);
    assert_eq!(r.body["items"][2]["reasons"][0]["code"], "NO_OFFER");
    assert_eq!(r.body["items"][3]["available"], 6, "{}", r.body);
    assert_eq!(r.body["items"][3]["is_available"], true);
    assert_eq!(r.body["items"][4]["available"], 0);
    assert_eq!(
        r.body["items"][4]["reasons"][0]["code"],
        "COMPLIANCE_REJECTED"
    );
    assert_eq!(h.sink.count(), 0);
}

#[tokio::test]
async fn history_lists_transitions_in_order() {
    let h = harness();
    h.seed_product("acme", "p1");
    for (i, event) in ["ProductCreated", "ProductReady"].iter().enumerate() {
        let entry = porch_processors::store::HistoryEntry {
            at: i as i64,
            module: "product".into(),
            event: event.to_string(),
            aggregate_id: "p1".into(),
            version: i as i64 + 1,
            event_id: format!("e{i}"),
            causation_id: "c".into(),
            detail: json!({}),
        };
        h.store
            .put(tables::HISTORY, &format!("acme/p1/{i:020}/e{i}"), &entry);
    }
    let r = h
        .call(
            Method::GET,
            "/v1/products/p1/history",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.body["entries"][0]["event"], "ProductCreated");
    assert_eq!(r.body["entries"][1]["event"], "ProductReady");
    let r = h
        .call(
            Method::GET,
            "/v1/products/p1/history?limit=1",
            Some("acme-admin"),
            None,
        )
        .await;
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = h
        .call(
            Method::GET,
            &format!("/v1/products/p1/history?limit=1&cursor={cursor}"),
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.body["entries"][0]["event"], "ProductReady");
}

#[tokio::test]
async fn history_pages_walk_rows_of_several_entries_once_each_in_order() {
    use porch_processors::store::{HistoryItem, HistoryRow};
    let h = harness();
    h.seed_product("acme", "p1");
    // Three causes: one event, four (a decision per region), two.
    let mut expected = Vec::new();
    for (cause, count) in [("c0", 1u32), ("c1", 4), ("c2", 2)] {
        let at = expected.len() as i64;
        let entries = (0..count)
            .map(|n| {
                expected.push(format!("{cause}.compliance.{n}"));
                HistoryItem {
                    event: "ComplianceApproved".into(),
                    aggregate_id: "p1".into(),
                    version: n as i64,
                    n,
                    detail: json!({ "n": n }),
                }
            })
            .collect();
        let row = HistoryRow {
            at,
            module: "compliance".into(),
            causation_id: cause.into(),
            entries,
        };
        h.store.put(
            tables::HISTORY,
            &format!("acme/p1/{at:020}/{cause}.compliance.0"),
            &row,
        );
    }
    for limit in 1..=8 {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let path = match &cursor {
                Some(c) => format!("/v1/products/p1/history?limit={limit}&cursor={c}"),
                None => format!("/v1/products/p1/history?limit={limit}"),
            };
            let r = h.call(Method::GET, &path, Some("acme-admin"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let page = r.body["entries"].as_array().unwrap();
            assert!(page.len() <= limit, "limit {limit}: {}", r.body);
            seen.extend(
                page.iter()
                    .map(|e| e["event_id"].as_str().unwrap().to_string()),
            );
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
    let r = h
        .call(
            Method::GET,
            "/v1/products/p1/history?cursor=x~y",
            Some("acme-admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn images_are_stored_per_tenant_and_served_back() {
    let h = harness();
    h.seed_product("acme", "p1");
    let upload = |name: &str, bytes: Vec<u8>| {
        Request::put(format!("/v1/products/p1/images/{name}"))
            .header(header::AUTHORIZATION, "Bearer acme-admin")
            .header(header::CONTENT_TYPE, "image/png")
            .body(Body::from(bytes))
            .unwrap()
    };
    let r = h.send(upload("front.png", b"\x89PNG fake".to_vec())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let Command::AddProductImage(a) = h.sink.last().record.command else {
        panic!("not AddProductImage")
    };
    assert_eq!(a.name, "front.png");
    assert!(h.images_dir.join("acme/p1/front.png").exists());

    let r = h
        .call(
            Method::GET,
            "/v1/products/p1/images/front.png",
            Some("acme-reader"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, b"\x89PNG fake");
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    let r = h
        .call(
            Method::GET,
            "/v1/products/p1/images/front.png",
            Some("beta-admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = h.send(upload("..hidden", b"x".to_vec())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = h
        .send(upload("big.png", vec![0u8; 5 * 1024 * 1024 + 1]))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.is_problem());
    // Between the JSON limit and the image limit: fine for an image.
    let r = h
        .send(upload("large.png", vec![0u8; 2 * 1024 * 1024]))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.sink.count(), 2);
}

#[tokio::test]
async fn an_uploaded_image_is_public_at_the_absolute_url_its_product_view_gives() {
    let h = harness();
    h.seed_product("acme", "p1");
    let bytes = b"\xff\xd8\xff fake jpeg".to_vec();
    let r = h
        .send(
            Request::put("/v1/products/p1/images/front.jpg")
                .header(header::AUTHORIZATION, "Bearer acme-admin")
                .header(header::CONTENT_TYPE, "image/jpeg")
                .body(Body::from(bytes.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    let r = h
        .call(Method::GET, "/v1/products/p1", Some("acme-reader"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let url = r.body["images"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{MEDIA_BASE}/acme/p1/front.jpg"));
    let path = url.strip_prefix("http://porch.test").unwrap();

    // No key: the URL a channel fetches.
    let r = h.call(Method::GET, path, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.bytes, bytes);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::CACHE_CONTROL], "public, max-age=300");
    // The tenant's own route answers the same bytes.
    let r = h
        .call(
            Method::GET,
            "/v1/products/p1/images/front.jpg",
            Some("acme-reader"),
            None,
        )
        .await;
    assert_eq!(r.bytes, bytes);

    for missing in [
        "/media/acme/p1/back.jpg",
        "/media/beta/p1/front.jpg",
        "/media/acme/p2/front.jpg",
        "/media/Acme/p1/front.jpg",
        "/media/acme/p1/..",
        "/media/acme/p1/%2E%2E",
        "/media/acme/../front.jpg",
        "/media/acme/p1/..%2Fp1%2Ffront.jpg",
        "/media/acme/p1/a%2Fb.jpg",
    ] {
        let r = h.call(Method::GET, missing, None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(r.is_problem(), "{missing}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn search_is_scoped_to_the_tenant() {
    let h = harness();
    let r = h
        .call(
            Method::GET,
            "/v1/search?q=shirt&region=GB",
            Some("acme-reader"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 0);
    let r = h
        .call(
            Method::GET,
            "/v1/search?region=BR",
            Some("acme-reader"),
            None,
        )
        .await;
    assert_eq!(r.fields(), vec!["region"]);
    let r = h
        .call(
            Method::GET,
            "/v1/search?cursor=garbage",
            Some("acme-reader"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.is_problem());
}

// ---------------------------------------------------------------- operations

#[tokio::test]
async fn topics_are_for_the_operator_only() {
    let h = harness();
    let r = h
        .call(Method::GET, "/v1/topics", Some("acme-admin"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, "/v1/products", Some("op-key"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, "/v1/topics", Some("op-key"), None)
        .await;
    assert_eq!(
        r.body["topics"],
        json!(["product.commands", "product.events"])
    );
    let r = h
        .call(
            Method::GET,
            "/v1/topics/product.events",
            Some("op-key"),
            None,
        )
        .await;
    assert_eq!(r.body["partitions"][1]["end_offset"], 10);
    let r = h
        .call(
            Method::GET,
            "/v1/topics/product.events/partitions/1/records?from=8&limit=5",
            Some("op-key"),
            None,
        )
        .await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next_offset"], 10);
    let r = h
        .call(
            Method::GET,
            "/v1/topics/product.events/partitions/1/records?limit=1001",
            Some("op-key"),
            None,
        )
        .await;
    assert_eq!(r.fields(), vec!["limit"]);
    let r = h
        .call(Method::GET, "/v1/topics/nope", Some("op-key"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let h = harness();
    assert_eq!(
        h.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    h.ready.store(false, Ordering::Release);
    let r = h.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.is_problem());

    h.call(
        Method::POST,
        "/v1/products",
        Some("acme-admin"),
        Some(r#"{"title":"Shirt"}"#),
    )
    .await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    let text = String::from_utf8(r.bytes).unwrap();
    assert!(
        text.contains(
            r#"porch_http_requests_total{method="POST",route="/v1/products",status="202"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"porch_commands_accepted_total{type="CreateProduct"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("porch_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_lists_the_routes() {
    let h = harness();
    let r = h.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for path in [
        "/v1/products",
        "/v1/products/{id}",
        "/v1/offers",
        "/v1/commands/{id}",
        "/v1/search",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    let schemas = r.body["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("CreateOfferBody"));
    assert!(schemas.contains_key("Problem"));
}

#[tokio::test]
async fn requests_beyond_the_limits_are_shed_or_timed_out_as_problems() {
    let limited = format!("[http]\nmax_in_flight = 1\nrequest_timeout_ms = 300\n{CONFIG}");
    let h = harness_with(&limited);
    h.seed_product("acme", "p1");
    let r = h
        .call(
            Method::POST,
            "/v1/products/p1/deactivate",
            Some("acme-admin"),
            None,
        )
        .await;
    let uri = format!(
        "/v1/commands/{}?wait=30000",
        r.body["command_id"].as_str().unwrap()
    );

    // The command stays ACCEPTED, so this wait holds the only slot until the timeout ends it.
    let waiting = h.call(Method::GET, &uri, Some("acme-admin"), None);
    let shed = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        h.call(Method::GET, "/v1/products/p1", Some("acme-admin"), None)
            .await
    };
    let (waited, shed) = tokio::join!(waiting, shed);
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(shed.is_problem());
    assert_eq!(shed.headers[header::RETRY_AFTER], "1");
    assert_eq!(waited.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(waited.is_problem());
    // Probes are outside the limit.
    assert_eq!(
        h.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
}
