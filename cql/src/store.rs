//! `CqlStore`: the store of the distributed mode on ScyllaDB (or Apache Cassandra).

use crate::config::CqlConfig;
use crate::layout::{self, Listed, Lower, Place, ScanPlan, PRODUCT_BUCKETS};
use futures::{stream, StreamExt, TryStreamExt};
use porch_processors::store::{BoxFuture, ProjectionStore, RowWrite, Store, StoreError};
use prometheus::core::Collector;
use prometheus::{Counter, CounterVec, IntCounterVec, Opts};
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::serialize::SerializationError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Requests of one `apply` (or one product page's lookups) in flight at once.
const IN_FLIGHT: usize = 64;
/// Flushes of queued `apply`s under way at once, at most: while they are, further `apply`s
/// queue up and go out together in the next one (see [`Queue`]).
const FLUSHES: usize = 4;
/// Bytes in one batch of writes to one partition, at most (a larger write goes alone): well
/// under the mutation size a database takes (half a commit log segment in Cassandra).
const BATCH_BYTES: usize = 256 * 1024;
/// Writes in one batch to one partition, at most.
const BATCH_STATEMENTS: usize = 500;
/// Bytes in one batch that spans partitions, at most: Cassandra refuses such a batch over
/// `batch_size_fail_threshold` (50 KiB by default), ScyllaDB over 1 MiB.
const SHARED_BYTES: usize = 32 * 1024;
/// Writes in one batch that spans partitions, at most.
const SHARED_STATEMENTS: usize = 100;
/// Bytes a write costs beyond its key and value, about (column names, timestamps).
const WRITE_OVERHEAD: usize = 32;
/// How long `ready` waits for an answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Rows of one partition in one read (`rest IN ?`), or partitions (`key IN ?`), at most:
/// ScyllaDB refuses an IN list of more than 100 by default
/// (`max_clustering_key_restrictions_per_query`, `max_partition_key_restrictions_per_query`).
const IN_ROWS: usize = 50;
/// Rows of the bucket index fetched per page while looking for the earliest bucket.
const INDEX_PAGE: i32 = 64;

/// The projection store on CQL. Cheap to clone: clones share one session.
#[derive(Clone)]
pub struct CqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    keyspace: String,
    session: Session,
    st: Statements,
    /// The runtime the session runs on; the blocking `Store` methods wait on it.
    runtime: Handle,
    /// Requests sent, by kind and logical table (see [`CqlStore::requests`]).
    requests: IntCounterVec,
    /// Seconds those requests took, summed, by the same labels.
    seconds: CounterVec,
    /// Rows written or deleted, by logical table, whichever request carried them.
    rows_written: IntCounterVec,
    /// The `apply`s waiting to be written.
    queue: Mutex<Queue>,
}

/// The `apply`s of concurrent callers (the ingest API's requests, each writing a row or two)
/// wait here while FLUSHES flushes are under way, then go out together: a flush packs every
/// queued `apply`'s writes into shared batches, where a request each would cost the database
/// far more. An `apply` arriving when fewer flushes are under way starts one at once, so
/// nothing waits for a timer.
#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    flushing: usize,
}

/// A flush under way, one of [`Queue::flushing`]: a flush that ends early (its task panicked
/// or was dropped with its runtime) frees its slot when this drops, so that later applies
/// still start flushes; one that ends normally frees it itself.
struct Slot<'a>(&'a Mutex<Queue>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        queue.flushing -= 1;
    }
}

/// One queued `apply`: its writes, their write time, and whom to tell how they went.
struct Job {
    writes: Vec<RowWrite>,
    ts: i64,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// A request under way: counted when it starts, its time added when it ends (dropped).
#[must_use = "a request's time is taken when this is dropped"]
struct Timing {
    seconds: Counter,
    started: std::time::Instant,
}

impl Drop for Timing {
    fn drop(&mut self) {
        self.seconds.inc_by(self.started.elapsed().as_secs_f64());
    }
}

impl fmt::Debug for CqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CqlStore")
            .field("keyspace", &self.inner.keyspace)
            .finish_non_exhaustive()
    }
}

/// Every statement, prepared once at connect.
struct Statements {
    key_get: PreparedStatement,
    key_put: PreparedStatement,
    key_del: PreparedStatement,
    key_claim: PreparedStatement,
    product_get: PreparedStatement,
    product_get_many: PreparedStatement,
    key_get_many: PreparedStatement,
    product_put: PreparedStatement,
    product_del: PreparedStatement,
    product_scan: PreparedStatement,
    product_scan_upto: PreparedStatement,
    list_put: PreparedStatement,
    list_del: PreparedStatement,
    list_scan: PreparedStatement,
    list_scan_upto: PreparedStatement,
    time_get: PreparedStatement,
    time_put: PreparedStatement,
    time_del: PreparedStatement,
    time_scan: PreparedStatement,
    time_scan_upto: PreparedStatement,
    index_touch: PreparedStatement,
    index_scan: PreparedStatement,
    index_drop: PreparedStatement,
    checkpoint_get: PreparedStatement,
    checkpoint_put: PreparedStatement,
    ready: PreparedStatement,
}

impl Statements {
    async fn prepare(session: &Session, ks: &str) -> Result<Self, StoreError> {
        let prepare = |cql: String| async move {
            let mut st = session.prepare(cql.as_str()).await.map_err(|e| {
                StoreError::Backend(format!(
                    "preparing {cql:?} (has the keyspace been migrated?): {e}"
                ))
            })?;
            // Reads, timestamped writes and upserts may be retried or sent twice safely; the
            // claim (a lightweight transaction) may not.
            st.set_is_idempotent(!cql.contains("IF NOT EXISTS"));
            Ok::<_, StoreError>(st)
        };
        let mut index_scan = prepare(format!(
            "SELECT bucket, WRITETIME(live) FROM {ks}.bucket_index WHERE tbl = ? AND bucket >= ?"
        ))
        .await?;
        index_scan.set_page_size(INDEX_PAGE);
        let mut ready = prepare("SELECT release_version FROM system.local".into()).await?;
        ready.set_request_timeout(Some(READY_TIMEOUT));
        Ok(Statements {
            key_get: prepare(format!(
                "SELECT v FROM {ks}.rows_by_key WHERE tbl = ? AND key = ?"
            ))
            .await?,
            key_put: prepare(format!(
                "INSERT INTO {ks}.rows_by_key (tbl, key, v) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            key_del: prepare(format!(
                "DELETE FROM {ks}.rows_by_key USING TIMESTAMP ? WHERE tbl = ? AND key = ?"
            ))
            .await?,
            key_claim: prepare(format!(
                "INSERT INTO {ks}.rows_by_key (tbl, key, v) VALUES (?, ?, ?) IF NOT EXISTS"
            ))
            .await?,
            product_get: prepare(format!(
                "SELECT v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest = ?"
            ))
            .await?,
            product_get_many: prepare(format!(
                "SELECT product, rest, v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product IN ? AND tbl = ? AND rest IN ?"
            ))
            .await?,
            key_get_many: prepare(format!(
                "SELECT key, v FROM {ks}.rows_by_key WHERE tbl = ? AND key IN ?"
            ))
            .await?,
            product_put: prepare(format!(
                "INSERT INTO {ks}.rows_by_product (tenant, product, tbl, rest, v) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            product_del: prepare(format!(
                "DELETE FROM {ks}.rows_by_product USING TIMESTAMP ? \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest = ?"
            ))
            .await?,
            product_scan: prepare(format!(
                "SELECT rest, v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest >= ? LIMIT ?"
            ))
            .await?,
            product_scan_upto: prepare(format!(
                "SELECT rest, v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest >= ? AND rest < ? LIMIT ?"
            ))
            .await?,
            list_put: prepare(format!(
                "INSERT INTO {ks}.product_list (tenant, bucket, product) VALUES (?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            list_del: prepare(format!(
                "DELETE FROM {ks}.product_list USING TIMESTAMP ? \
                 WHERE tenant = ? AND bucket = ? AND product = ?"
            ))
            .await?,
            list_scan: prepare(format!(
                "SELECT product FROM {ks}.product_list \
                 WHERE tenant = ? AND bucket = ? AND product >= ? LIMIT ?"
            ))
            .await?,
            list_scan_upto: prepare(format!(
                "SELECT product FROM {ks}.product_list \
                 WHERE tenant = ? AND bucket = ? AND product >= ? AND product < ? LIMIT ?"
            ))
            .await?,
            time_get: prepare(format!(
                "SELECT v FROM {ks}.rows_by_bucket WHERE tbl = ? AND bucket = ? AND key = ?"
            ))
            .await?,
            time_put: prepare(format!(
                "INSERT INTO {ks}.rows_by_bucket (tbl, bucket, key, v) VALUES (?, ?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            time_del: prepare(format!(
                "DELETE FROM {ks}.rows_by_bucket USING TIMESTAMP ? \
                 WHERE tbl = ? AND bucket = ? AND key = ?"
            ))
            .await?,
            time_scan: prepare(format!(
                "SELECT key, v FROM {ks}.rows_by_bucket \
                 WHERE tbl = ? AND bucket = ? AND key >= ? LIMIT ?"
            ))
            .await?,
            time_scan_upto: prepare(format!(
                "SELECT key, v FROM {ks}.rows_by_bucket \
                 WHERE tbl = ? AND bucket = ? AND key >= ? AND key < ? LIMIT ?"
            ))
            .await?,
            // No USING TIMESTAMP: the client's clock, so that a touch always follows the
            // reading that made a cleaner drop the bucket (see `scan_timeline`).
            index_touch: prepare(format!(
                "UPDATE {ks}.bucket_index SET live = true WHERE tbl = ? AND bucket = ?"
            ))
            .await?,
            index_scan,
            index_drop: prepare(format!(
                "DELETE FROM {ks}.bucket_index USING TIMESTAMP ? WHERE tbl = ? AND bucket = ?"
            ))
            .await?,
            checkpoint_get: prepare(format!(
                "SELECT body FROM {ks}.checkpoint WHERE grp = ? AND task = ?"
            ))
            .await?,
            checkpoint_put: prepare(format!(
                "INSERT INTO {ks}.checkpoint (grp, task, body) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            ready,
        })
    }
}

/// A write of a flush: which queued `apply` (job) it is of, its write time and what it writes.
struct Write<'a> {
    job: usize,
    ts: i64,
    op: Op<'a>,
}

/// One CQL write of an `apply`.
enum Op<'a> {
    Row(Place<'a>, Option<&'a [u8]>),
    List(Listed<'a>, bool),
}

impl<'a> Op<'a> {
    /// The logical table it writes (`product_list` for a product's list entry).
    fn table(&self) -> &'a str {
        match self {
            Op::Row(
                Place::Key { tbl, .. } | Place::Product { tbl, .. } | Place::Timeline { tbl, .. },
                _,
            ) => tbl,
            Op::List(..) => "product_list",
        }
    }

    /// Bytes of the value it writes.
    fn value_bytes(&self) -> usize {
        match self {
            Op::Row(_, Some(v)) => v.len(),
            _ => 0,
        }
    }

    /// The partition the write lands in: its writes go together (one mutation for the
    /// database, atomic and isolated within the partition).
    fn partition(&self) -> Partition<'a> {
        match self {
            Op::Row(Place::Key { tbl, key }, _) => Partition::Key(tbl, key),
            Op::Row(
                Place::Product {
                    tenant, product, ..
                },
                _,
            ) => Partition::Product(tenant, product),
            Op::Row(Place::Timeline { tbl, bucket, .. }, _) => Partition::Timeline(tbl, *bucket),
            Op::List(l, _) => Partition::List(l.tenant, l.bucket),
        }
    }

    /// Bytes the database counts for the write, about: its key, clustering and value.
    fn size(&self) -> usize {
        let keys = match self {
            Op::Row(Place::Key { tbl, key }, _) => tbl.len() + key.len(),
            Op::Row(
                Place::Product {
                    tenant,
                    product,
                    tbl,
                    rest,
                },
                _,
            ) => tenant.len() + product.len() + tbl.len() + rest.len(),
            Op::Row(Place::Timeline { tbl, key, .. }, _) => tbl.len() + 8 + key.len(),
            Op::List(l, _) => l.tenant.len() + 4 + l.product.len(),
        };
        keys + self.value_bytes() + WRITE_OVERHEAD
    }
}

/// A partition of one of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Partition<'a> {
    Key(&'a str, &'a str),
    Product(&'a str, &'a str),
    Timeline(&'a str, i64),
    List(&'a str, i32),
}

/// The bound values of one write, whichever statement it binds.
struct Bound<'a>(Box<dyn SerializeRow + Send + Sync + 'a>);

impl<'a> Bound<'a> {
    fn new(values: impl SerializeRow + Send + Sync + 'a) -> Self {
        Bound(Box::new(values))
    }
}

impl SerializeRow for Bound<'_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        self.0.serialize(ctx, writer)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The writes of a flush as requests. The writes of one partition by one `apply` stay
/// together, up to BATCH_BYTES and BATCH_STATEMENTS a request (a larger partition is split);
/// small partitions share a request, up to SHARED_BYTES and SHARED_STATEMENTS: one request for
/// many rows costs the database far less than one request each, and a batch spanning
/// partitions is within what Cassandra and ScyllaDB take by default (Cassandra refuses one
/// over 50 KiB).
fn group_writes(writes: Vec<Write<'_>>) -> Vec<Vec<Write<'_>>> {
    // Partitions of each apply in order of first write; each partition's writes in order.
    let mut partitions: Vec<Vec<Write<'_>>> = Vec::new();
    let mut index: HashMap<(usize, Partition<'_>), usize> = HashMap::with_capacity(writes.len());
    for w in writes {
        let i = *index.entry((w.job, w.op.partition())).or_insert_with(|| {
            partitions.push(Vec::new());
            partitions.len() - 1
        });
        partitions[i].push(w);
    }
    let mut requests = Vec::new();
    let mut shared = Filling::new(SHARED_BYTES, SHARED_STATEMENTS);
    for writes in partitions {
        let bytes: usize = writes.iter().map(|w| w.op.size()).sum();
        if bytes <= SHARED_BYTES && writes.len() <= SHARED_STATEMENTS {
            shared.add(writes, bytes, &mut requests);
            continue;
        }
        // A large partition: batches of its own.
        let mut own = Filling::new(BATCH_BYTES, BATCH_STATEMENTS);
        for w in writes {
            let size = w.op.size();
            own.add(vec![w], size, &mut requests);
        }
        own.finish(&mut requests);
    }
    shared.finish(&mut requests);
    requests
}

/// A request being filled with writes, up to a number of bytes and of writes.
struct Filling<'a> {
    writes: Vec<Write<'a>>,
    bytes: usize,
    max_bytes: usize,
    max_writes: usize,
}

impl<'a> Filling<'a> {
    fn new(max_bytes: usize, max_writes: usize) -> Self {
        Self {
            writes: Vec::new(),
            bytes: 0,
            max_bytes,
            max_writes,
        }
    }

    /// Adds writes that go together, first ending the request when they would not fit.
    fn add(&mut self, writes: Vec<Write<'a>>, bytes: usize, requests: &mut Vec<Vec<Write<'a>>>) {
        if self.bytes + bytes > self.max_bytes || self.writes.len() + writes.len() > self.max_writes
        {
            self.finish(requests);
        }
        self.bytes += bytes;
        self.writes.extend(writes);
    }

    fn finish(&mut self, requests: &mut Vec<Vec<Write<'a>>>) {
        if !self.writes.is_empty() {
            requests.push(std::mem::take(&mut self.writes));
        }
        self.bytes = 0;
    }
}

/// One read of `rows_by_product`: a tenant, its products, their rows (`product IN ? AND rest
/// IN ?`, every product's rows among them).
type ProductRead<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>);

/// Packs what products ask for, (tenant, sorted rows, product), into reads that ask for at most
/// IN_ROWS cells (products × rows) each: products asking for the same rows share a read, and
/// products asking for a few different rows share one too (reading the cells none asked for,
/// which costs the database less than a request each). A product asking for more rows than
/// one read takes gets reads of its own.
fn pack_reads<'a>(mut asks: Vec<(&'a str, Vec<&'a str>, &'a str)>) -> Vec<ProductRead<'a>> {
    asks.sort_unstable();
    let mut reads = Vec::new();
    let mut open: Option<ProductRead<'a>> = None;
    for (tenant, rests, product) in asks {
        if rests.len() > IN_ROWS / 2 {
            for rests in rests.chunks(IN_ROWS) {
                reads.push((tenant, vec![product], rests.to_vec()));
            }
            continue;
        }
        if let Some((t, products, union)) = &mut open {
            if *t == tenant {
                let mut wider = union.clone();
                wider.extend(rests.iter().copied());
                wider.sort_unstable();
                wider.dedup();
                if (products.len() + 1) * wider.len() <= IN_ROWS {
                    products.push(product);
                    *union = wider;
                    continue;
                }
            }
        }
        reads.extend(open.replace((tenant, vec![product], rests)));
    }
    reads.extend(open);
    reads
}

/// A row an `IN` read found, at every position that asked for it (none asked: nowhere).
fn spread(asked: Option<&Vec<usize>>, value: Option<Vec<u8>>) -> Found {
    match (asked, value) {
        (Some(at), Some(v)) => at.iter().map(|i| (*i, Some(v.clone()))).collect(),
        _ => Vec::new(),
    }
}

fn failed(st: &PreparedStatement, e: impl fmt::Display) -> StoreError {
    StoreError::Backend(format!("{}: {e}", st.get_statement()))
}

/// The rows of an answer; an error names `what` was asked.
pub(crate) fn rows_of<R>(answer: QueryResult, what: &str) -> Result<Vec<R>, StoreError>
where
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let fail = |e: &dyn fmt::Display| StoreError::Backend(format!("{what}: {e}"));
    answer
        .into_rows_result()
        .map_err(|e| fail(&e))?
        .rows::<R>()
        .map_err(|e| fail(&e))?
        .collect::<Result<Vec<R>, _>>()
        .map_err(|e| fail(&e))
}

fn cql_limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Rows a request of `get_rows` found: (position asked, value); a position no request fills
/// stays none.
type Found = Vec<(usize, Option<Vec<u8>>)>;

impl CqlStore {
    /// Connects and prepares every statement; the keyspace must have been migrated
    /// (`crate::migrate`). Call it inside the multi-threaded tokio runtime that will run the
    /// store: its handle is kept for the blocking `Store` methods.
    pub async fn connect(config: &CqlConfig) -> Result<Self, StoreError> {
        let runtime = Handle::try_current().map_err(|e| {
            StoreError::Backend(format!("CqlStore::connect needs a tokio runtime: {e}"))
        })?;
        let keyspace = config.keyspace()?.to_string();
        let session = config.open().await?;
        let st = Statements::prepare(&session, &keyspace).await?;
        let requests = IntCounterVec::new(
            Opts::new(
                "porch_cql_requests_total",
                "CQL requests sent to the store, by kind (read, scan, write, batch, claim) and \
                 logical table; a scan counts once, whatever pages it reads.",
            ),
            &["kind", "table"],
        )
        .expect("a valid metric");
        let seconds = CounterVec::new(
            Opts::new(
                "porch_cql_request_seconds_total",
                "Seconds the CQL requests of porch_cql_requests_total took, summed (a scan's \
                 pages together); over the count, the mean time of a request.",
            ),
            &["kind", "table"],
        )
        .expect("a valid metric");
        let rows_written = IntCounterVec::new(
            Opts::new(
                "porch_cql_rows_written_total",
                "Rows written or deleted in the store, by logical table, whichever request \
                 carried them (a batch spanning tables counts as table \"mixed\" in \
                 porch_cql_requests_total).",
            ),
            &["table"],
        )
        .expect("a valid metric");
        Ok(CqlStore {
            inner: Arc::new(Inner {
                keyspace,
                session,
                st,
                runtime,
                requests,
                seconds,
                rows_written,
                queue: Mutex::default(),
            }),
        })
    }

    pub fn keyspace(&self) -> &str {
        &self.inner.keyspace
    }

    /// The count of requests sent, by kind and logical table, as a Prometheus metric
    /// (`porch_cql_requests_total`) for a role to expose; clones count together.
    pub fn requests(&self) -> IntCounterVec {
        self.inner.requests.clone()
    }

    /// Rows written or deleted, by logical table (`porch_cql_rows_written_total`).
    pub fn rows_written(&self) -> IntCounterVec {
        self.inner.rows_written.clone()
    }

    /// The store's metrics for a role to expose: `porch_cql_requests_total`,
    /// `porch_cql_request_seconds_total` and `porch_cql_rows_written_total`; clones count
    /// together.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.inner.requests.clone()),
            Box::new(self.inner.seconds.clone()),
            Box::new(self.inner.rows_written.clone()),
        ]
    }

    /// Counts a request of this kind to this table and times it until the result is dropped.
    fn count(&self, kind: &str, table: &str) -> Timing {
        self.inner.requests.with_label_values(&[kind, table]).inc();
        Timing {
            seconds: self.inner.seconds.with_label_values(&[kind, table]),
            started: std::time::Instant::now(),
        }
    }

    async fn exec(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<(), StoreError> {
        self.inner
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| failed(st, e))?;
        Ok(())
    }

    async fn rows<R>(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let answer = self
            .inner
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| failed(st, e))?;
        rows_of(answer, st.get_statement())
    }

    async fn blob(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let rows: Vec<(Option<Vec<u8>>,)> = self.rows(st, values).await?;
        Ok(rows.into_iter().next().and_then(|(v,)| v))
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _timing = self.count("read", table);
        let st = &self.inner.st;
        match layout::place(table, key)?.place {
            Place::Key { tbl, key } => self.blob(&st.key_get, (tbl, key)).await,
            Place::Product {
                tenant,
                product,
                tbl,
                rest,
            } => {
                self.blob(&st.product_get, (tenant, product, tbl, rest))
                    .await
            }
            Place::Timeline { tbl, bucket, key } => {
                self.blob(&st.time_get, (tbl, bucket, key)).await
            }
        }
    }

    /// Rows of one table, all of them concurrently, in few requests: the rows of products of a
    /// tenant that ask for the same rows together (`product IN ? AND rest IN ?`), point rows
    /// together (`key IN ?`), every other row alone.
    async fn get_rows(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut by_product: HashMap<(&str, &str), Vec<(usize, &str)>> = HashMap::new();
        // Where each point row asked goes in the answer (a key asked twice, twice).
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut alone = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match layout::place(table, k)?.place {
                Place::Product {
                    tenant,
                    product,
                    rest,
                    ..
                } => by_product
                    .entry((tenant, product))
                    .or_default()
                    .push((i, rest)),
                Place::Key { key, .. } => by_key.entry(key).or_default().push(i),
                Place::Timeline { .. } => alone.push(i),
            }
        }
        // Where each row asked goes in the answer (a key asked twice, twice), and the rows each
        // product asks for.
        let mut positions: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        let mut asks: Vec<(&str, Vec<&str>, &str)> = Vec::with_capacity(by_product.len());
        for ((tenant, product), rows) in by_product {
            let mut rests: Vec<&str> = Vec::with_capacity(rows.len());
            for (i, rest) in rows {
                positions
                    .entry((tenant, product, rest))
                    .or_default()
                    .push(i);
                rests.push(rest);
            }
            rests.sort_unstable();
            rests.dedup();
            asks.push((tenant, rests, product));
        }
        let positions = &positions;
        let mut requests: Vec<BoxFuture<'_, Result<Found, StoreError>>> = Vec::new();
        for (tenant, products, rests) in pack_reads(asks) {
            requests.push(Box::pin(async move {
                let _timing = self.count("read", table);
                let found = self
                    .rows::<(String, String, Option<Vec<u8>>)>(
                        &self.inner.st.product_get_many,
                        (tenant, &products, table, &rests),
                    )
                    .await?;
                // The read also finds cells nobody asked for: those have no position.
                Ok(found
                    .into_iter()
                    .flat_map(|(p, r, v)| {
                        spread(positions.get(&(tenant, p.as_str(), r.as_str())), v)
                    })
                    .collect())
            }));
        }
        let by_key = &by_key;
        let points: Vec<&str> = by_key.keys().copied().collect();
        for points in points.chunks(IN_ROWS).map(<[_]>::to_vec) {
            requests.push(Box::pin(async move {
                let _timing = self.count("read", table);
                let found = self
                    .rows::<(String, Option<Vec<u8>>)>(&self.inner.st.key_get_many, (table, points))
                    .await?;
                Ok(found
                    .into_iter()
                    .flat_map(|(k, v)| spread(by_key.get(k.as_str()), v))
                    .collect())
            }));
        }
        for i in alone {
            requests.push(Box::pin(async move {
                Ok(vec![(i, self.get(table, &keys[i]).await?)])
            }));
        }
        let mut out = vec![None; keys.len()];
        let mut answers = stream::iter(requests).buffer_unordered(IN_FLIGHT);
        while let Some(answer) = answers.next().await {
            for (i, v) in answer? {
                out[i] = v;
            }
        }
        Ok(out)
    }

    async fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let _timing = self.count("scan", table);
        let st = &self.inner.st;
        match layout::scan_plan(table, prefix, start_after)? {
            ScanPlan::Empty => Ok(Vec::new()),
            ScanPlan::Product {
                tenant,
                product,
                tbl,
                from,
                upto,
            } => {
                let ask = cql_limit(from.ask(limit));
                let from_rest = from.value.as_str();
                let rows: Vec<(String, Vec<u8>)> = match upto.as_deref() {
                    None => {
                        self.rows(&st.product_scan, (tenant, product, tbl, from_rest, ask))
                            .await?
                    }
                    Some(upto) => {
                        self.rows(
                            &st.product_scan_upto,
                            (tenant, product, tbl, from_rest, upto, ask),
                        )
                        .await?
                    }
                };
                Ok(rows
                    .into_iter()
                    .filter(|(rest, _)| from.admits(rest))
                    .take(limit)
                    .map(|(rest, v)| (format!("{tenant}/{product}/{rest}"), v))
                    .collect())
            }
            ScanPlan::List {
                tbl,
                tenant,
                from,
                upto,
            } => {
                self.scan_products(tbl, tenant, from, upto.as_deref(), limit)
                    .await
            }
            ScanPlan::Timeline {
                tbl,
                from,
                upto,
                first_bucket,
                only,
            } => {
                self.scan_timeline(tbl, &from, upto.as_deref(), first_bucket, only, limit)
                    .await
            }
        }
    }

    /// A page of a tenant's products: the least ids of all buckets merged, then their rows.
    /// Each bucket can contribute at most `limit` ids, so one concurrent read of `limit` ids
    /// per bucket is enough for a page.
    async fn scan_products(
        &self,
        tbl: &str,
        tenant: &str,
        mut from: Lower,
        upto: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let st = &self.inner.st;
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let want = limit - out.len();
            let ask = cql_limit(from.ask(want));
            let after = from.value.as_str();
            let per_bucket: Vec<Vec<(String,)>> = stream::iter(0..PRODUCT_BUCKETS)
                .map(|bucket| async move {
                    match upto {
                        None => self.rows(&st.list_scan, (tenant, bucket, after, ask)).await,
                        Some(upto) => {
                            self.rows(&st.list_scan_upto, (tenant, bucket, after, upto, ask))
                                .await
                        }
                    }
                })
                .buffer_unordered(PRODUCT_BUCKETS as usize)
                .try_collect()
                .await?;
            let mut ids: Vec<String> = per_bucket
                .into_iter()
                .flatten()
                .map(|(id,)| id)
                .filter(|id| from.admits(id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.truncate(want);
            // Fewer than wanted means no bucket was cut short: the list is exhausted.
            let exhausted = ids.len() < want;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            // Futures built first: a stream mapping by a closure over borrowed items is not
            // general enough for the boxed, `Send` futures of the trait.
            let reads: Vec<_> = ids
                .iter()
                .map(|id| async move {
                    let key = format!("{tenant}/{id}");
                    self.blob(&st.key_get, (tbl, key.as_str())).await
                })
                .collect();
            let rows: Vec<Option<Vec<u8>>> = stream::iter(reads)
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
            // A listed id without its row is a write half applied (the batch will be applied
            // again); leave it out and read on to fill the page.
            out.extend(
                ids.into_iter()
                    .zip(rows)
                    .filter_map(|(id, v)| Some((format!("{tenant}/{id}"), v?))),
            );
            if exhausted {
                break;
            }
            from = Lower {
                value: last,
                exclusive: true,
            };
        }
        Ok(out)
    }

    /// Keys of a timeline in order: the buckets the index lists, from the earliest (or the one
    /// of `from`), each read in key order until the page is full. Bucket order is key order
    /// because the first key part is a zero-padded number.
    ///
    /// A bucket read whole and found empty is dropped from the index, with the write time of
    /// its index row: a writer touches the index only after its row is written and with a
    /// later clock, so its touch outlives the drop (a tie goes to the drop, but the touch
    /// follows the empty read that led to it).
    async fn scan_timeline(
        &self,
        tbl: &str,
        from: &Lower,
        upto: Option<&str>,
        first_bucket: Option<i64>,
        only: bool,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if only {
            if let Some(bucket) = first_bucket {
                self.scan_bucket(tbl, bucket, from, upto, limit, &mut out)
                    .await?;
            }
            return Ok(out);
        }
        let st = &self.inner.st;
        let mut buckets = self
            .inner
            .session
            .execute_iter(
                st.index_scan.clone(),
                (tbl, first_bucket.unwrap_or(i64::MIN)),
            )
            .await
            .map_err(|e| failed(&st.index_scan, e))?
            .rows_stream::<(i64, Option<i64>)>()
            .map_err(|e| failed(&st.index_scan, e))?;
        while out.len() < limit {
            let Some((bucket, written)) = buckets
                .try_next()
                .await
                .map_err(|e| failed(&st.index_scan, e))?
            else {
                break;
            };
            let before = out.len();
            self.scan_bucket(tbl, bucket, from, upto, limit - before, &mut out)
                .await?;
            let read_whole = upto.is_none()
                && (from.value.is_empty() || first_bucket.is_some_and(|b| bucket > b));
            if read_whole && out.len() == before {
                if let Some(written) = written {
                    // Only tidiness is lost if this fails; the next scan tries again.
                    if let Err(e) = self.exec(&st.index_drop, (written, tbl, bucket)).await {
                        tracing::warn!(table = tbl, bucket, error = %e, "dropping an empty bucket");
                    }
                }
            }
        }
        Ok(out)
    }

    async fn scan_bucket(
        &self,
        tbl: &str,
        bucket: i64,
        from: &Lower,
        upto: Option<&str>,
        want: usize,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let st = &self.inner.st;
        let ask = cql_limit(from.ask(want));
        let after = from.value.as_str();
        let rows: Vec<(String, Vec<u8>)> = match upto {
            None => self.rows(&st.time_scan, (tbl, bucket, after, ask)).await?,
            Some(upto) => {
                self.rows(&st.time_scan_upto, (tbl, bucket, after, upto, ask))
                    .await?
            }
        };
        out.extend(rows.into_iter().filter(|(k, _)| from.admits(k)).take(want));
        Ok(())
    }

    async fn apply_writes(&self, writes: Vec<RowWrite>, ts: i64) -> Result<(), StoreError> {
        // All writes share one write time, so two writes to one row would tie and CQL would
        // keep the delete or the larger value; the last one of the apply wins, as in order.
        let last: HashMap<(&str, &str), usize> = writes
            .iter()
            .enumerate()
            .map(|(i, w)| ((w.table.as_str(), w.key.as_str()), i))
            .collect();
        let kept: Vec<bool> = writes
            .iter()
            .enumerate()
            .map(|(i, w)| last[&(w.table.as_str(), w.key.as_str())] == i)
            .collect();
        let writes: Vec<RowWrite> = writes
            .into_iter()
            .zip(kept)
            .filter_map(|(w, kept)| kept.then_some(w))
            .collect();
        // A write to a timeline marks its bucket in the index, after the rows, never with
        // them (see `scan_timeline`). A key that places nowhere fails the apply, unwritten.
        let mut touched = BTreeSet::new();
        for w in &writes {
            if let (Place::Timeline { tbl, bucket, .. }, Some(_)) =
                (layout::place(&w.table, &w.key)?.place, &w.value)
            {
                touched.insert((tbl.to_string(), bucket));
            }
        }
        let (done, written) = oneshot::channel();
        let start = {
            let mut queue = self.inner.queue.lock().expect("queue lock");
            queue.jobs.push(Job { writes, ts, done });
            let start = queue.flushing < FLUSHES;
            queue.flushing += usize::from(start);
            start
        };
        if start {
            // A task of its own: a caller that gives up does not stop the others' writes.
            let store = self.clone();
            self.inner
                .runtime
                .spawn(async move { store.flush_queued().await });
        }
        written
            .await
            .map_err(|_| StoreError::Backend("a flush of writes stopped".into()))??;
        let st = &self.inner.st;
        let touches: Vec<_> = touched
            .iter()
            .map(|(tbl, bucket)| async move {
                let _timing = self.count("write", "bucket_index");
                self.exec(&st.index_touch, (tbl.as_str(), *bucket)).await
            })
            .collect();
        stream::iter(touches)
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// Flushes what is queued, again and again, until nothing is.
    async fn flush_queued(&self) {
        let slot = Slot(&self.inner.queue);
        loop {
            let jobs = {
                let mut queue = self.inner.queue.lock().expect("queue lock");
                if queue.jobs.is_empty() {
                    // Under the lock that found the queue empty: an apply queued after this
                    // finds the slot free and starts a flush.
                    queue.flushing -= 1;
                    std::mem::forget(slot);
                    return;
                }
                std::mem::take(&mut queue.jobs)
            };
            self.flush(jobs).await;
        }
    }

    /// Writes the queued `apply`s in shared requests and tells each how its writes went: it
    /// fails if any request carrying one of them failed.
    async fn flush(&self, jobs: Vec<Job>) {
        let mut outcomes: Vec<Result<(), String>> = vec![Ok(()); jobs.len()];
        let mut all = Vec::new();
        for (job, j) in jobs.iter().enumerate() {
            // Placed already when queued: this places them alike.
            let placed: Result<Vec<_>, _> = j
                .writes
                .iter()
                .map(|w| layout::place(&w.table, &w.key).map(|p| (w, p)))
                .collect();
            let placed = match placed {
                Ok(placed) => placed,
                Err(e) => {
                    outcomes[job] = Err(e.to_string());
                    continue;
                }
            };
            for (w, placement) in placed {
                if let Some(listed) = placement.listed {
                    let op = Op::List(listed, w.value.is_some());
                    all.push(Write { job, ts: j.ts, op });
                }
                let op = Op::Row(placement.place, w.value.as_deref());
                all.push(Write { job, ts: j.ts, op });
            }
        }
        let requests: Vec<_> = group_writes(all)
            .into_iter()
            .map(|group| async move {
                let of: BTreeSet<usize> = group.iter().map(|w| w.job).collect();
                (of, self.write_together(group).await)
            })
            .collect();
        let results: Vec<_> = stream::iter(requests)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (of, result) in results {
            if let Err(e) = result {
                for job in of {
                    outcomes[job] = Err(e.to_string());
                }
            }
        }
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            // A caller that stopped waiting no longer hears.
            let _ = job.done.send(outcome.map_err(StoreError::Backend));
        }
    }

    /// Writes in one request: a single statement as itself, more as an unlogged batch (atomic
    /// and isolated within each of its partitions, with no batch log).
    async fn write_together(&self, writes: Vec<Write<'_>>) -> Result<(), StoreError> {
        let _timing = writes.first().map(|first| {
            let kind = if writes.len() == 1 { "write" } else { "batch" };
            let table = first.op.table();
            let one_table = writes.iter().all(|w| w.op.table() == table);
            self.count(kind, if one_table { table } else { "mixed" })
        });
        for w in &writes {
            self.inner
                .rows_written
                .with_label_values(&[w.op.table()])
                .inc();
        }
        let mut bound: Vec<(&PreparedStatement, Bound<'_>)> =
            writes.into_iter().map(|w| self.bind(w.op, w.ts)).collect();
        if bound.len() == 1 {
            let (st, values) = bound.pop().expect("one write");
            return self.exec(st, values).await;
        }
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_is_idempotent(true);
        let mut values = Vec::with_capacity(bound.len());
        for (st, v) in bound {
            batch.append_statement(st.clone());
            values.push(v);
        }
        self.inner
            .session
            .batch(&batch, values)
            .await
            .map_err(|e| StoreError::Backend(format!("a batch of writes: {e}")))?;
        Ok(())
    }

    /// The statement of one write and its values.
    fn bind<'a>(&'a self, op: Op<'a>, ts: i64) -> (&'a PreparedStatement, Bound<'a>) {
        let st = &self.inner.st;
        match op {
            Op::Row(Place::Key { tbl, key }, Some(v)) => {
                (&st.key_put, Bound::new((tbl, key, v, ts)))
            }
            Op::Row(Place::Key { tbl, key }, None) => (&st.key_del, Bound::new((ts, tbl, key))),
            Op::Row(
                Place::Product {
                    tenant,
                    product,
                    tbl,
                    rest,
                },
                Some(v),
            ) => (
                &st.product_put,
                Bound::new((tenant, product, tbl, rest, v, ts)),
            ),
            Op::Row(
                Place::Product {
                    tenant,
                    product,
                    tbl,
                    rest,
                },
                None,
            ) => (
                &st.product_del,
                Bound::new((ts, tenant, product, tbl, rest)),
            ),
            Op::Row(Place::Timeline { tbl, bucket, key }, Some(v)) => {
                (&st.time_put, Bound::new((tbl, bucket, key, v, ts)))
            }
            Op::Row(Place::Timeline { tbl, bucket, key }, None) => {
                (&st.time_del, Bound::new((ts, tbl, bucket, key)))
            }
            Op::List(l, true) => (
                &st.list_put,
                Bound::new((l.tenant, l.bucket, l.product, ts)),
            ),
            Op::List(l, false) => (
                &st.list_del,
                Bound::new((ts, l.tenant, l.bucket, l.product)),
            ),
        }
    }

    async fn claim_row(
        &self,
        table: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let placement = layout::place(table, key)?;
        let (Place::Key { tbl, key }, None) = (placement.place, placement.listed) else {
            return Err(StoreError::Backend(format!(
                "table {table} is not a point-lookup table and cannot be claimed"
            )));
        };
        let _timing = self.count("claim", table);
        let st = &self.inner.st.key_claim;
        let result = self
            .inner
            .session
            .execute_unpaged(st, (tbl, key, value.as_slice()))
            .await
            .map_err(|e| failed(st, e))?
            .into_rows_result()
            .map_err(|e| failed(st, e))?;
        let specs = result.column_specs();
        let column = |name: &str| specs.get_by_name(name).map(|(i, _)| i);
        let row: Row = result.first_row().map_err(|e| failed(st, e))?;
        let cell = |i: Option<usize>| i.and_then(|i| row.columns.get(i).cloned().flatten());
        let applied = cell(column("[applied]"))
            .and_then(|c| c.as_boolean())
            .ok_or_else(|| failed(st, "the answer has no [applied] column"))?;
        if applied {
            return Ok(None);
        }
        // The row that holds the key comes with the answer; should it be missing, read it.
        match cell(column("v")).and_then(|c| c.into_blob()) {
            Some(existing) => Ok(Some(existing)),
            None => Ok(Some(self.get(table, key).await?.unwrap_or_default())),
        }
    }

    async fn ready_now(&self) -> bool {
        let st = &self.inner.st.ready;
        matches!(
            tokio::time::timeout(READY_TIMEOUT, self.inner.session.execute_unpaged(st, ())).await,
            Ok(Ok(_))
        )
    }
}

fn task_number(task: u32) -> Result<i32, StoreError> {
    i32::try_from(task).map_err(|_| StoreError::Backend(format!("task number {task} is too large")))
}

/// The blocking read API. Each blocking call blocks the calling thread on the runtime given at
/// connect, so it must run on a blocking thread (`spawn_blocking`, a plain thread): on an
/// async worker thread it would panic (tokio refuses to block there). `get_raw_async` does not
/// block.
impl Store for CqlStore {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.runtime.block_on(self.get(table, key))
    }

    fn get_raw_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> Option<BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>> {
        Some(Box::pin(self.get(table, key)))
    }

    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner
            .runtime
            .block_on(self.scan(table, prefix, start_after, limit))
    }
}

impl ProjectionStore for CqlStore {
    fn get_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.get(table, key))
    }

    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(self.get_rows(table, keys))
    }

    fn scan_async<'a>(
        &'a self,
        table: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, Vec<u8>)>, StoreError>> {
        Box::pin(self.scan(table, prefix, start_after, limit))
    }

    fn apply(
        &self,
        writes: Vec<RowWrite>,
        timestamp: i64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.apply_writes(writes, timestamp))
    }

    fn load_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let task = task_number(task)?;
            let _timing = self.count("read", "checkpoint");
            self.blob(&self.inner.st.checkpoint_get, (group, task))
                .await
        })
    }

    fn save_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
        checkpoint: Vec<u8>,
        timestamp: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let task = task_number(task)?;
            let _timing = self.count("write", "checkpoint");
            self.exec(
                &self.inner.st.checkpoint_put,
                (group, task, checkpoint.as_slice(), timestamp),
            )
            .await
        })
    }

    fn claim<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.claim_row(table, key, value))
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.ready_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(product: &'a str, rest: &'a str, value: &'a [u8]) -> Op<'a> {
        Op::Row(
            Place::Product {
                tenant: "acme",
                product,
                tbl: "offer",
                rest,
            },
            Some(value),
        )
    }

    fn shape(groups: &[Vec<Write<'_>>]) -> Vec<usize> {
        groups.iter().map(Vec::len).collect()
    }

    /// The writes of one apply (job 0).
    fn one(ops: Vec<Op<'_>>) -> Vec<Write<'_>> {
        ops.into_iter()
            .map(|op| Write { job: 0, ts: 1, op })
            .collect()
    }

    fn key<'a>(k: &'a str) -> Op<'a> {
        Op::Row(
            Place::Key {
                tbl: "command",
                key: k,
            },
            Some(b"s"),
        )
    }

    #[test]
    fn small_partitions_share_a_request_and_a_partition_stays_together() {
        let ops = vec![
            row("p1", "o1", b"a"),
            key("acme/c1"),
            row("p2", "o1", b"b"),
            row("p1", "o2", b"c"),
            key("acme/c2"),
            row("p1", "o3", b"d"),
        ];
        let groups = group_writes(one(ops));
        assert_eq!(shape(&groups), [6]);
        // p1's writes follow one another, in order.
        let p1: Vec<usize> = groups[0]
            .iter()
            .enumerate()
            .filter(|(_, w)| w.op.partition() == Partition::Product("acme", "p1"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(p1, [0, 1, 2]);
    }

    #[test]
    fn a_flush_that_ends_early_frees_its_slot() {
        let queue = Mutex::new(Queue {
            jobs: Vec::new(),
            flushing: 2,
        });
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _slot = Slot(&queue);
            panic!("a flush ends early");
        }));
        assert!(ended.is_err());
        assert_eq!(queue.lock().unwrap().flushing, 1);
    }

    #[test]
    fn each_apply_keeps_its_partition_together_in_a_shared_request() {
        let w = |job, rest| Write {
            job,
            ts: job as i64,
            op: row("p1", rest, b"v"),
        };
        let groups = group_writes(vec![w(0, "o1"), w(1, "o1"), w(0, "o2"), w(2, "o3")]);
        assert_eq!(shape(&groups), [4]);
        let order: Vec<(usize, i64)> = groups[0].iter().map(|w| (w.job, w.ts)).collect();
        assert_eq!(order, [(0, 0), (0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn a_shared_request_is_bounded_by_bytes_and_count() {
        let third = vec![0u8; SHARED_BYTES / 3];
        let ops = vec![
            row("p1", "o1", &third),
            row("p2", "o1", &third),
            row("p3", "o1", &third),
        ];
        assert_eq!(shape(&group_writes(one(ops))), [2, 1]);
        let keys: Vec<String> = (0..SHARED_STATEMENTS + 1)
            .map(|i| format!("acme/c{i}"))
            .collect();
        let ops = keys.iter().map(|k| key(k)).collect();
        assert_eq!(shape(&group_writes(one(ops))), [SHARED_STATEMENTS, 1]);
    }

    fn reads_shape(reads: &[ProductRead<'_>]) -> Vec<(usize, usize)> {
        reads.iter().map(|(_, p, r)| (p.len(), r.len())).collect()
    }

    #[test]
    fn product_reads_are_packed_up_to_the_cells_one_read_asks() {
        // The same two rows of 30 products: 25 products a read.
        let two = vec!["o1", "o2"];
        let names: Vec<String> = (0..30).map(|i| format!("p{i:02}")).collect();
        let asks = names
            .iter()
            .map(|p| ("acme", two.clone(), p.as_str()))
            .collect();
        assert_eq!(reads_shape(&pack_reads(asks)), [(25, 2), (5, 2)]);
        // A different row each: 7 products and their 7 rows (49 cells) a read.
        let rows: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
        let asks = (0..10)
            .map(|i| ("acme", vec![rows[i].as_str()], names[i].as_str()))
            .collect();
        let reads = pack_reads(asks);
        assert_eq!(reads_shape(&reads), [(7, 7), (3, 3)]);
        // Every product's rows are among its read's rows.
        for (_, products, rests) in &reads {
            for p in products {
                let i = names.iter().position(|n| n == p).unwrap();
                assert!(rests.contains(&rows[i].as_str()));
            }
        }
        // Tenants never share a read; a product asking for many rows gets reads of its own.
        let many: Vec<String> = (0..60).map(|i| format!("r{i:02}")).collect();
        let asks = vec![
            ("acme", vec!["o1"], "p1"),
            ("beta", vec!["o1"], "p1"),
            ("beta", many.iter().map(String::as_str).collect(), "p2"),
        ];
        assert_eq!(
            reads_shape(&pack_reads(asks)),
            [(1, 1), (1, 50), (1, 10), (1, 1)]
        );
    }

    #[test]
    fn a_large_partition_gets_batches_of_its_own() {
        let big = vec![0u8; BATCH_BYTES / 2];
        let ops = vec![
            row("p0", "o1", b"x"),
            row("p1", "o1", &big),
            row("p1", "o2", &big),
            row("p1", "o3", b"x"),
            row("p2", "o1", b"y"),
        ];
        assert_eq!(shape(&group_writes(one(ops))), [1, 2, 2]);
        let rests: Vec<String> = (0..BATCH_STATEMENTS + 1).map(|i| format!("o{i}")).collect();
        let ops = rests.iter().map(|r| row("p1", r, b"v")).collect();
        assert_eq!(shape(&group_writes(one(ops))), [BATCH_STATEMENTS, 1]);
    }
}
