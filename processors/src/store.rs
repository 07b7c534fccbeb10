//! The store: projection rows of every module keyed by tenant, and the ingest side's registries.
//! Processors write rows inside their batch transaction; the API reads them through `Store`.
//! Every key starts with the tenant, so no read can reach across tenants.

use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Rows of a scan: (key, value) in key order.
pub type Rows = Vec<(String, Vec<u8>)>;

/// What a compare-and-set did: `Ok` written; `Err` what the row held instead (`None`: no row).
pub type Swapped = Result<(), Option<Vec<u8>>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    /// The store refused this client's login, or asked for one it was not given: trying
    /// again with the same settings cannot help.
    #[error("store: {0}")]
    Refused(String),
    #[error("row {table}/{key} does not decode: {reason}")]
    Corrupt {
        table: String,
        key: String,
        reason: String,
    },
    #[error("the command writer has stopped")]
    Closed,
}

impl From<porch_topics::LogError> for StoreError {
    fn from(e: porch_topics::LogError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Table names and key layouts. Keys are `/`-joined ids (ids never contain `/`).
pub mod tables {
    /// tenant/product → ProductState
    pub const PRODUCT: &str = "product";
    /// tenant/product → VariantSetState
    pub const VARIANT: &str = "variant";
    /// tenant/product/offer → OfferState
    pub const OFFER: &str = "offer";
    /// tenant/product/seller/sku/region → InventoryState
    pub const INVENTORY: &str = "inventory";
    /// tenant/product/region → ComplianceState
    pub const COMPLIANCE: &str = "compliance";
    /// tenant/product → ActivationState
    pub const ACTIVATION: &str = "activation";
    /// tenant/product/offer → ListingState
    pub const LISTING: &str = "listing";
    /// tenant/product/<occurred_at, 20 digits>/<first event id> → HistoryRow (one per cause and
    /// module; rows written before hold one HistoryEntry)
    pub const HISTORY: &str = "history";
    /// tenant/command → CommandStatus
    pub const COMMAND: &str = "command";
    /// tenant/idempotency key → IdempotencyRecord
    pub const IDEMPOTENCY: &str = "idempotency";
    /// <accepted_at, 20 digits>/tenant/command → idempotency key or "" (embedded: what the
    /// command retention removes, oldest first)
    pub const COMMAND_EXPIRY: &str = "command_expiry";
    /// tenant/product → "" for every product whose creation was accepted (routing, existence)
    pub const PRODUCT_ID: &str = "product_id";
    /// tenant/sku → product id (a SKU belongs to one product)
    pub const SKU: &str = "sku";
    /// tenant/offer → OfferRef
    pub const OFFER_REF: &str = "offer_ref";
    /// tenant/seller/sku/region → offer id (one offer per seller, SKU and region)
    pub const OFFER_KEY: &str = "offer_key";
    /// tenant/reservation → StockLine
    pub const RESERVATION: &str = "reservation";
    /// tenant/location → region code
    pub const LOCATION: &str = "location";
    /// tenant/product/seller/sku/region/reservation → HoldRow (a hold, or what became of it)
    pub const INVENTORY_HOLD: &str = "inventory_hold";
    /// tenant/sku → a merchant's hot flag (the SKU's reservations take the hot lane)
    pub const HOT_SKU: &str = "hot_sku";
    /// <expires micros, 20 digits>/tenant/product/seller/sku/region/reservation → "" (the
    /// inventory processor's timers: holds to expire)
    pub const RESERVATION_EXPIRY: &str = "reservation_expiry";
    /// tenant/product → ChannelState (every listing of the product's offers on each channel)
    pub const CHANNEL: &str = "channel";
    /// tenant/~p<partition>/product → "" (the products the channel processor holds, per task)
    pub const CHANNEL_INDEX: &str = "channel_index";
    /// tenant/~p<partition> → TenantChannels (each task's copy of the tenant's settings)
    pub const CHANNEL_SETTINGS: &str = "channel_settings";
    /// tenant → ChannelAccounts (the tenant's connections with their secrets; API and connectors)
    pub const CHANNEL_ACCOUNTS: &str = "channel_accounts";
}

/// Joins key parts with `/`.
pub fn key(parts: &[&str]) -> String {
    parts.join("/")
}

/// The key of a (seller, sku, region) inventory aggregate's row in `tables::INVENTORY`.
pub fn inventory_key(
    tenant: &TenantId,
    product: &ProductId,
    seller: &SellerId,
    sku: &Sku,
    region: &RegionCode,
) -> String {
    key(&[
        tenant.as_str(),
        product.as_str(),
        seller.as_str(),
        sku.as_str(),
        region.as_str(),
    ])
}

/// The key of a reservation's row in `tables::INVENTORY_HOLD`: its aggregate's row key, then
/// its id.
pub fn hold_key(inventory_row: &str, id: &ReservationId) -> String {
    format!("{inventory_row}/{id}")
}

/// The key of a SKU's row in `tables::SKU` (the product that claimed it).
pub fn sku_key(tenant: &str, sku: &Sku) -> String {
    key(&[tenant, sku.as_str()])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandState {
    Accepted,
    Applied,
    Rejected,
}

/// What became of a command (GET /v1/commands/{id}).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandStatus {
    pub command_id: CommandId,
    pub command_type: String,
    pub status: CommandState,
    pub aggregate_id: String,
    pub product_id: ProductId,
    pub reasons: Vec<Reason>,
    /// Types of the events the command caused.
    pub events: Vec<String>,
    pub accepted_at: Micros,
    pub completed_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub command_id: CommandId,
    /// A digest of the request, so a key reused for a different request is refused.
    pub request_hash: String,
}

/// Where an offer lives, for routing commands that name only the offer id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferRef {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
}

/// One transition of a product's history (any module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Micros,
    pub module: String,
    pub event: String,
    pub aggregate_id: String,
    pub version: i64,
    pub event_id: String,
    pub causation_id: String,
    /// The event body as JSON.
    pub detail: serde_json::Value,
}

/// What one cause did to one product in one module: its history entries in order, in one row
/// (a compliance decision for four regions is one row, not four). The shared fields are stored
/// once; an entry's event id is `<causation id>.<module>.<n>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub at: Micros,
    pub module: String,
    pub causation_id: String,
    pub entries: Vec<HistoryItem>,
}

/// One event of a `HistoryRow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "a")]
    pub aggregate_id: String,
    #[serde(rename = "v")]
    pub version: i64,
    /// The event's number within its cause and module.
    #[serde(rename = "n")]
    pub n: u32,
    #[serde(rename = "d")]
    pub detail: serde_json::Value,
}

/// A stored history row: one per cause, or one per event as rows were written before.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StoredHistory {
    Row(HistoryRow),
    Entry(HistoryEntry),
}

impl StoredHistory {
    /// Its entries, in order.
    pub fn entries(self) -> Vec<HistoryEntry> {
        match self {
            StoredHistory::Entry(e) => vec![e],
            StoredHistory::Row(row) => row
                .entries
                .into_iter()
                .map(|i| HistoryEntry {
                    at: row.at,
                    module: row.module.clone(),
                    event: i.event,
                    aggregate_id: i.aggregate_id,
                    version: i.version,
                    event_id: format!("{}.{}.{}", row.causation_id, row.module, i.n),
                    causation_id: row.causation_id.clone(),
                    detail: i.detail,
                })
                .collect(),
        }
    }
}

/// An identity the ingest API claims atomically with the command that introduces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Claim {
    /// A product whose creation was accepted: later commands may address it at once, before
    /// the product processor has applied the creation.
    Product { product_id: ProductId },
    /// The SKU belongs to this product (a SKU already owned by another product is a conflict).
    Sku { sku: Sku, product_id: ProductId },
    /// A new offer (a second offer for the same seller, SKU and region is a conflict).
    Offer(OfferRef),
    /// A new reservation, to route its release and commit later (on the lane it took).
    Reservation {
        reservation_id: ReservationId,
        line: StockLine,
        #[serde(default)]
        hot: bool,
    },
}

/// A reservation's row in `tables::RESERVATION`: its stock line, and whether it took the hot
/// lane (rows written before lanes read as not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationRef {
    #[serde(flatten)]
    pub line: StockLine,
    #[serde(default)]
    pub hot: bool,
}

impl Claim {
    /// The rows that record the claim: the first is the one whose existence decides a
    /// conflict; the others ride along (an offer's reference row).
    pub fn rows(&self, tenant: &str) -> Vec<RowWrite> {
        let json = |v: &dyn erased::Json| Some(v.to_json());
        match self {
            Claim::Product { product_id } => vec![RowWrite {
                table: tables::PRODUCT_ID.into(),
                key: key(&[tenant, product_id.as_str()]),
                value: Some(Vec::new()),
            }],
            Claim::Sku { sku, product_id } => vec![RowWrite {
                table: tables::SKU.into(),
                key: sku_key(tenant, sku),
                value: json(product_id),
            }],
            Claim::Offer(r) => vec![
                RowWrite {
                    table: tables::OFFER_KEY.into(),
                    key: key(&[tenant, r.seller.as_str(), r.sku.as_str(), r.region.as_str()]),
                    value: json(&r.offer_id),
                },
                RowWrite {
                    table: tables::OFFER_REF.into(),
                    key: key(&[tenant, r.offer_id.as_str()]),
                    value: json(r),
                },
            ],
            Claim::Reservation {
                reservation_id,
                line,
                hot,
            } => vec![RowWrite {
                table: tables::RESERVATION.into(),
                key: key(&[tenant, reservation_id.as_str()]),
                value: json(&ReservationRef {
                    line: line.clone(),
                    hot: *hot,
                }),
            }],
        }
    }

    /// Whether another request can hold this claim: only then must it be taken atomically (a
    /// lightweight transaction); a claim nothing can refuse is written like any row.
    pub fn exclusive(&self) -> bool {
        !matches!(self, Claim::Product { .. })
    }

    /// Whether an existing claim row (the first of `rows`) refuses this claim.
    pub fn conflict(&self, existing: &[u8]) -> Option<Reason> {
        match self {
            Claim::Product { .. } => None,
            Claim::Sku { sku, product_id } => match serde_json::from_slice::<ProductId>(existing) {
                Ok(owner) if owner == *product_id => None,
                owner => Some(Reason::on_field(
                    "SKU_TAKEN",
                    "sku",
                    format!(
                        "SKU {sku} already belongs to product {}",
                        owner.map(|o| o.to_string()).unwrap_or_default()
                    ),
                )),
            },
            Claim::Offer(r) => match serde_json::from_slice::<OfferId>(existing) {
                Ok(id) if id == r.offer_id => None,
                existing => Some(Reason::on_field(
                    "OFFER_EXISTS",
                    "sku",
                    format!(
                        "seller {} already has offer {} for SKU {} in {}",
                        r.seller,
                        existing.map(|o| o.to_string()).unwrap_or_default(),
                        r.sku,
                        r.region
                    ),
                )),
            },
            // The same request again (its id chosen by the caller) applies once: the inventory
            // processor answers it from what the reservation became. Another SKU's is a conflict.
            Claim::Reservation { line, .. } => {
                match serde_json::from_slice::<StockLine>(existing) {
                    Ok(held)
                        if (&held.product_id, &held.seller, &held.sku, &held.region)
                            == (&line.product_id, &line.seller, &line.sku, &line.region) =>
                    {
                        None
                    }
                    _ => Some(Reason::on_field(
                        "RESERVATION_EXISTS",
                        "reservation_id",
                        "reservation id already used for other stock",
                    )),
                }
            }
        }
    }
}

/// Serialising claim values without naming their types.
mod erased {
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("claim values serialise")
        }
    }
}

/// The answer to registering a location that is already known.
pub fn location_conflict(location: &LocationId, existing: &RegionCode) -> Reason {
    Reason::on_field(
        "LOCATION_IN_OTHER_REGION",
        "region",
        format!("location {location} already belongs to region {existing}"),
    )
}

/// The answer to registering a location, given the region it already had (None: it is new
/// and has just been recorded).
pub fn location_outcome(
    location: &LocationId,
    region: &RegionCode,
    existing: Option<&RegionCode>,
) -> SubmitOutcome {
    let command_id = CommandId::parse("location").expect("valid id");
    match existing {
        None => SubmitOutcome::Accepted { command_id },
        Some(r) if r == region => SubmitOutcome::Replayed { command_id },
        Some(r) => SubmitOutcome::Conflict(location_conflict(location, r)),
    }
}

/// A command the API accepted, with what must be recorded atomically alongside it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub record: CommandRecord,
    /// The Idempotency-Key, or else the client's own command id; none when the command id is
    /// one porch generated for this request (no retry can name it).
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub claims: Vec<Claim>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    /// Appended to its commands topic; status ACCEPTED.
    Accepted { command_id: CommandId },
    /// The idempotency key (or command id) was seen before: the earlier command's id.
    Replayed { command_id: CommandId },
    /// Refused before anything was written (a claim or idempotency conflict).
    Conflict(Reason),
}

/// Read access to the projections (the API's query side).
pub trait Store: Send + Sync {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The row, read without holding a thread while it waits, where the backend reads over the
    /// network; `None` where reads are local (they are then made on a blocking thread).
    fn get_raw_async<'a>(
        &'a self,
        _table: &'a str,
        _key: &'a str,
    ) -> Option<BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>> {
        None
    }
    /// Rows of `table` whose key starts with `prefix`, in key order, after `start_after`.
    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// A row's JSON decoded into `T`; a row that does not decode is corrupt.
pub fn decode_row<T: serde::de::DeserializeOwned>(
    table: &str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: table.into(),
        key: key.into(),
        reason: e.to_string(),
    })
}

impl dyn Store {
    /// A row decoded as JSON into `T`.
    pub fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_raw(table, key)?
            .map(|bytes| decode_row(table, key, &bytes))
            .transpose()
    }

    /// Rows decoded as JSON into `T`.
    pub fn scan<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.scan_raw(table, prefix, start_after, limit)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| StoreError::Corrupt {
                        table: table.into(),
                        key: k,
                        reason: e.to_string(),
                    })
            })
            .collect()
    }
}

/// The write side the API uses: submitting commands and registering locations.
pub trait CommandSink: Send + Sync {
    /// Appends the command to its topic with status ACCEPTED, its idempotency key and claims,
    /// atomically and durably, before the future resolves.
    fn submit(&self, submission: Submission) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>>;
    /// Registers a location of a tenant in a region. A location keeps its region for ever:
    /// registering it again in the same region is fine, in another is a conflict.
    fn register_location(
        &self,
        tenant: TenantId,
        location: LocationId,
        region: RegionCode,
    ) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>>;
    /// Resolves after the next commit of any batch, or after `timeout_ms`.
    fn changed(&self, timeout_ms: u64) -> BoxFuture<'_, ()>;
    /// Writes `rows` and appends `records`, durably, before the future resolves: on the embedded
    /// log and store in one transaction; distributed, the rows first, then the records (a
    /// tenant's channel accounts, then their broadcast; an adapter's outcomes).
    fn write(
        &self,
        rows: Vec<RowWrite>,
        records: Vec<Published>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = (rows, records);
        Box::pin(async {
            Err(StoreError::Backend(
                "this sink writes no rows or records".into(),
            ))
        })
    }
}

/// A record's value and headers, as they go on the log.
pub type Encoded = (Vec<u8>, Vec<(String, Vec<u8>)>);

/// An event the API appends (not a command): to the partition its key chooses, or to a given
/// one.
#[derive(Debug, Clone)]
pub struct Published {
    pub topic: String,
    pub partition: Option<u32>,
    pub key: String,
    pub record: EventRecord,
}

impl Published {
    /// The record as it goes on the log: Confluent-framed Avro, the correlation id in a header.
    pub fn encode(&self, codec: &Codec) -> Result<Encoded, StoreError> {
        let value = codec.encode_event(&self.topic, &self.record).map_err(|e| {
            StoreError::Backend(format!("encoding an event for {}: {e}", self.topic))
        })?;
        let headers = vec![(
            "correlation_id".to_string(),
            self.record.envelope.correlation_id.clone().into_bytes(),
        )];
        Ok((value, headers))
    }
}

/// One record of a topic, decoded for people (operator's topic reader, taps, tests).
#[derive(Debug, Clone, Serialize)]
pub struct TopicRecordJson {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: Micros,
    pub key: String,
    pub headers: std::collections::BTreeMap<String, String>,
    /// Record type full name, or null when it did not decode (dead letters).
    pub record_type: Option<String>,
    pub value: serde_json::Value,
}

impl TopicRecordJson {
    /// A record decoded through the codec; one that does not decode keeps its size and error.
    pub fn decode(codec: &Codec, r: porch_topics::LogRecord) -> Self {
        let (record_type, value) = match codec.decode_json(&r.value) {
            Ok((name, json)) => (Some(name), json),
            Err(e) => (
                None,
                serde_json::json!({ "undecodable": e.to_string(), "bytes": r.value.len() }),
            ),
        };
        TopicRecordJson {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: String::from_utf8_lossy(&r.key).into_owned(),
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect(),
            record_type,
            value,
        }
    }
}

/// Reading topics as JSON, for operators.
pub trait TopicReader: Send + Sync {
    fn topics(&self) -> Vec<String>;
    fn partitions(&self) -> u32;
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, StoreError>;
    fn read_json(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<TopicRecordJson>, StoreError>;
}

/// One row write of a batch: a put (`Some`) or a delete (`None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowWrite {
    pub table: String,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// The store of the distributed mode, as processors and the ingest API use it: asynchronous
/// reads, idempotent timestamped writes, per-task checkpoints and atomic claims.
///
/// Every write of a batch carries the batch's timestamp (a Cassandra/ScyllaDB write time, in
/// micros): writing the same batch again is idempotent and an older batch written late cannot
/// overwrite a newer one.
pub trait ProjectionStore: Store {
    fn get_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Several rows of `table`, in the order of `keys`; rows that live together (one
    /// product's) may come in one request.
    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>>;
    /// Rows of `table` whose key starts with `prefix`, in key order, after `start_after`.
    fn scan_async<'a>(
        &'a self,
        table: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Rows, StoreError>>;
    /// Applies every write with write time `timestamp`.
    fn apply(&self, writes: Vec<RowWrite>, timestamp: i64)
        -> BoxFuture<'_, Result<(), StoreError>>;
    /// The checkpoint of one task (a consumer group's partition number), if any.
    fn load_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Replaces the checkpoint of one task (one row, written atomically) with write time
    /// `timestamp` (the checkpoint's id): a save that arrives late, with an earlier id than the
    /// checkpoint there, changes nothing.
    fn save_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
        checkpoint: Vec<u8>,
        timestamp: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Inserts the row if no row has the key (a lightweight transaction); returns the existing
    /// value when the key was taken.
    fn claim<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Replaces the row's value with `value` only if it holds `expected` now (a lightweight
    /// transaction); `Err` inside holds what the row holds instead (`None`: no row). Rows
    /// written this way must be written only this way (or by `claim`). A store that cannot do
    /// it says so.
    fn compare_and_set<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        expected: Vec<u8>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Swapped, StoreError>> {
        let _ = (key, expected, value);
        Box::pin(async move {
            Err(StoreError::Backend(format!(
                "this store cannot compare-and-set rows of {table}"
            )))
        })
    }
    /// Whether the database answers now.
    fn ready(&self) -> BoxFuture<'_, bool>;
}
