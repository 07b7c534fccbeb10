//! `CqlStore`: the store of the distributed mode on ScyllaDB (or Apache Cassandra).
//!
//! Here: the store, its connection and its metrics. One topic a module besides: `statements`
//! (prepared once at connect, and how a request is sent), `reads` and `scans`, `queue` (the
//! `apply`s of concurrent callers, written together) and `batches` (a flush's writes as
//! requests), `claim`, and `ports` (the processors' `Store` and `ProjectionStore`).

mod batches;
mod claim;
mod ports;
mod queue;
mod reads;
mod scans;
mod statements;

pub(crate) use statements::rows_of;

use crate::config::CqlConfig;
use porch_processors::store::StoreError;
use prometheus::core::Collector;
use prometheus::{Counter, CounterVec, IntCounterVec, Opts};
use queue::Queue;
use scylla::client::session::Session;
use statements::Statements;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

/// Requests of one `apply` (or one product page's lookups) in flight at once.
const IN_FLIGHT: usize = 64;

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
}
