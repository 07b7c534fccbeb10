//! The machinery every channel connector shares (DESIGN §8), as a Vector sink is built: the
//! input is `channel.events` read by the connector's own consumer group; its requests are
//! batched per account, acted on by the channel's [`ChannelService`] through one [`Retrier`]
//! (classification, backoff, pause), and what the channel confirmed goes to `channel.outcomes`.
//! An input position moves only once the outcomes of every record before it are written.
//! Requests whose retries run out go to the connector's dead-letter topic, from which an
//! operator can redrive them.
//!
//! The loop ([`driver`]) is written once against two ports: [`SinkPort`] (the input, the
//! outcomes and positions: the embedded log, or Kafka) and [`RowStore`] (the connector's ledger
//! and status rows: the embedded store, or ScyllaDB), so the same connector serves `porch up`
//! and `porch connector <name>`.

pub mod driver;
pub mod embedded;
pub mod kafka;
pub mod ledger;
mod positions;
pub mod retry;
pub mod status;

pub use driver::{Sink, SinkSettings};
pub use retry::{Attempt, CallError, Exhausted, Gate, Retrier, RetryClass, RetryPolicy};
pub use status::{ConnectorState, ConnectorStatus, ControlRow, StatusRow, StatusSnapshot};

use porch_processors::domain::channel::Action;
use porch_processors::store::{BoxFuture, RowWrite};
use porch_schemas::{Channel, ListingRequested, Reason, TenantId};
use porch_topics::LogRecord;
use std::time::Duration;

/// The input of every channel connector.
pub const CHANNEL_EVENTS: &str = "channel.events";

/// The dead-letter topic of a connector.
pub fn dead_letter_topic(connector: &str) -> String {
    format!("connector.{connector}.dlq")
}

/// The consumer group of a connector on `channel.events` (before any cluster prefix).
pub fn group_of(connector: &str) -> String {
    format!("connector-{connector}")
}

/// The group that keeps a connector's place in its dead-letter topic while redriving it.
pub fn redrive_group_of(connector: &str) -> String {
    format!("connector-{connector}-redrive")
}

/// One listing request as a connector acts on it.
#[derive(Debug, Clone)]
pub struct SinkRequest {
    pub tenant: TenantId,
    /// The ListingRequested's event id: what an outcome answers.
    pub event_id: String,
    pub correlation_id: String,
    pub request: ListingRequested,
    pub action: Action,
    /// What the connector knows of the item on the channel, from its ledger.
    pub on_channel: OnChannel,
    /// The record as read, for the dead-letter topic.
    pub raw: LogRecord,
}

impl SinkRequest {
    /// The item's key in the connector's ledger: one per tenant and retailer id.
    pub fn item_key(&self) -> String {
        format!("{}/{}", self.tenant, self.request.retailer_id)
    }
}

/// Whether the channel holds an item, as far as the connector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChannel {
    /// Never created, or its deletion was confirmed: an upsert is a create.
    Absent,
    /// A create was sent and never answered: ask the channel before creating it again.
    Unknown,
    /// The channel confirmed it: an upsert is an update.
    Present,
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    /// The channel confirmed the item as requested.
    Live { channel_item_id: Option<String> },
    /// The channel refused the item, with its issues.
    Rejected(Vec<Reason>),
    /// The channel confirmed the item is gone.
    Unpublished,
    /// The retries ran out: to the dead-letter topic.
    Failed(Exhausted),
}

/// A channel as a connector talks to it.
pub trait ChannelService: Send + Sync + 'static {
    fn channel(&self) -> Channel;

    /// Whether this connector serves the tenant's connection a request is for. A connection it
    /// does not serve (one an external adapter serves, say) is left alone: no call, no outcome,
    /// no dead letter. An error is a store that cannot be read now (asked again).
    fn serves<'a>(
        &'a self,
        _tenant: &'a TenantId,
        _request: &'a ListingRequested,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async { Ok(true) })
    }

    /// Acts on a batch of requests of one account, in order, and says what became of each,
    /// only from what the channel confirmed. Every call goes through `retrier`.
    fn submit<'a>(
        &'a self,
        batch: &'a [SinkRequest],
        retrier: &'a Retrier,
    ) -> BoxFuture<'a, Vec<ItemResult>>;
}

/// A failure of a port: the log or the store could not be read or written now.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

impl PortError {
    pub fn of(e: impl std::fmt::Display) -> Self {
        PortError(e.to_string())
    }
}

/// Rows of the connector's own tables in the store: its ledger, its status, its control row,
/// the tenants' channel accounts.
pub trait RowStore: Send + Sync + 'static {
    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, PortError>>;
    fn put(&self, writes: Vec<RowWrite>) -> BoxFuture<'_, Result<(), PortError>>;
    /// Writes rows with their write times where the store keeps them (ScyllaDB): a write older
    /// than the row's changes nothing. Elsewhere (one writer) as `put`.
    fn put_timed(&self, writes: Vec<(i64, RowWrite)>) -> BoxFuture<'_, Result<(), PortError>> {
        self.put(writes.into_iter().map(|(_, w)| w).collect())
    }
    /// Writes `value` only if the row holds `expected` now (`None`: no row), in one atomic step
    /// against every other writer of the row, in this process or another (a lightweight
    /// transaction on ScyllaDB). What several processes must agree on (a lease, a rotated
    /// credential) is written this way, and only this way: a row mixed with plain writes loses
    /// the guarantee.
    fn compare_and_set<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Swap, PortError>>;
}

/// What a [`RowStore::compare_and_set`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The row held what was expected and now holds the new value.
    Done,
    /// The row held this instead (`None`: no row); nothing was written.
    Conflict(Option<Vec<u8>>),
}

impl dyn RowStore {
    pub async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let keys = [key.to_string()];
        Ok(self.get_many(table, &keys).await?.pop().flatten())
    }
}

/// A record a completion writes: an outcome (`partition` none: by its key) or a dead letter
/// (its source partition).
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    pub partition: Option<u32>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// What finishing some requests writes: their outcomes and dead letters, then the input
/// positions past them (with the positions of the records that were not requests for this
/// channel).
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The connector's own rows (its ledger), with their write times: written first.
    pub rows: Vec<(i64, RowWrite)>,
    pub records: Vec<OutRecord>,
    /// (topic, partition, next offset)
    pub positions: Vec<(String, u32, u64)>,
}

/// The connector's input and output on the log.
pub trait SinkPort: Send {
    /// Records read past the last ones returned, at most `max`, waiting up to `wait` for the
    /// first. While a redrive runs, its dead letters come too (their `topic` is the dead-letter
    /// topic).
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<LogRecord>, PortError>>;
    /// Writes the records, then moves the positions: a position never moves before what comes
    /// before it is written.
    fn complete(&mut self, done: Completion) -> BoxFuture<'_, Result<(), PortError>>;
    /// Reads again from the committed positions (a restart).
    fn rewind(&mut self) -> BoxFuture<'_, Result<(), PortError>>;
    /// Reads the dead-letter topic from where the last redrive stopped up to its end now, for
    /// the partitions this instance owns.
    fn redrive(&mut self) -> BoxFuture<'_, Result<(), PortError>>;
    /// Records of the input not done yet, over the partitions this instance owns.
    fn lag(&mut self) -> BoxFuture<'_, Result<u64, PortError>>;
    /// Keeps the connector's place in its group while it is paused, reading nothing, for up to
    /// `wait`.
    fn hold(&mut self, wait: Duration) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            tokio::time::sleep(wait).await;
            Ok(())
        })
    }
    /// Partitions of the input this instance does not own now (another member of the group has
    /// them): what was read from them and not started is dropped, as their new owner reads it.
    fn revoked(&mut self) -> Vec<u32> {
        Vec::new()
    }
}
