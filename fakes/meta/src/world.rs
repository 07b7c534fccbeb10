//! Everything the fake knows, behind one lock: config, catalogs, batches, rate windows, rules,
//! the random source and what it recorded. Each HTTP call takes the lock for short, synchronous
//! steps and never across a wait, so concurrent calls interleave the way Meta's would and the
//! records stay consistent with the items.

use crate::batch::Batch;
use crate::catalog::{Catalog, ItemIds};
use crate::config::{FakeConfig, FaultKind, RejectRule};
use crate::graph_error::GraphError;
use crate::products::{Page, ProductsQuery};
use crate::records::{now_ms, AppliedRequest, CallRecord};
use crate::request_shape::ItemRequest;
use crate::rng::Rng;
use crate::usage::{minutes_rounded_up, RateWindow, Usage};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const HANDLE_CHARS: usize = 32;
const FBTRACE_CHARS: usize = 11;

#[derive(Debug)]
pub(crate) struct World {
    config: FakeConfig,
    /// Faults, polls to finish and trace ids: repeatable from the config's seed.
    rng: Rng,
    /// Handles: seeded from the clock instead, so a restarted fake never hands out a handle a
    /// client still holds from the previous run.
    handles: Rng,
    catalogs: BTreeMap<String, Catalog>,
    /// Meta ids for items: one counter for every catalog, kept across a reset so an id is never
    /// given twice while the fake runs.
    item_ids: ItemIds,
    batches: HashMap<String, Batch>,
    windows: HashMap<String, RateWindow>,
    rules: Vec<RejectRule>,
    log: Vec<AppliedRequest>,
    calls: Vec<CallRecord>,
    /// Server errors answered so far: they alternate between 500 and 503.
    server_errors: u64,
    /// `items_batch` timeouts so far: every second one happens after the batch was accepted.
    batch_timeouts: u64,
}

impl World {
    pub(crate) fn new(config: FakeConfig) -> Self {
        Self {
            rng: Rng::new(config.seed),
            handles: Rng::new(now_nanos()),
            config,
            catalogs: BTreeMap::new(),
            item_ids: ItemIds::default(),
            batches: HashMap::new(),
            windows: HashMap::new(),
            rules: Vec::new(),
            log: Vec::new(),
            calls: Vec::new(),
            server_errors: 0,
            batch_timeouts: 0,
        }
    }

    pub(crate) fn config(&self) -> &FakeConfig {
        &self.config
    }

    /// Takes a new config (already checked) and restarts the random draws from its seed.
    pub(crate) fn set_config(&mut self, config: FakeConfig) {
        self.rng = Rng::new(config.seed);
        self.config = config;
    }

    /// Forgets every item, batch, rule, record and rate window; the config stays, and so does
    /// the Meta id counter (ids are never given twice).
    pub(crate) fn reset(&mut self) {
        let item_ids = std::mem::take(&mut self.item_ids);
        *self = Self::new(self.config.clone());
        self.item_ids = item_ids;
    }

    pub(crate) fn add_rule(&mut self, rule: RejectRule) {
        self.rules.push(rule);
    }

    pub(crate) fn rules(&self) -> &[RejectRule] {
        &self.rules
    }

    pub(crate) fn log(&self) -> &[AppliedRequest] {
        &self.log
    }

    pub(crate) fn calls(&self) -> &[CallRecord] {
        &self.calls
    }

    pub(crate) fn record(&mut self, call: CallRecord) {
        self.calls.push(call);
    }

    pub(crate) fn items(&self, catalog: &str) -> Vec<Value> {
        self.catalogs
            .get(catalog)
            .map(|catalog| catalog.items().cloned().map(Value::Object).collect())
            .unwrap_or_default()
    }

    /// One page of the `products` edge of `catalog`: the stored items `query` asks for.
    pub(crate) fn products(&self, catalog: &str, query: &ProductsQuery) -> Page {
        self.catalogs
            .get(catalog)
            .map(|catalog| query.page(catalog))
            .unwrap_or_default()
    }

    pub(crate) fn fbtrace_id(&mut self) -> String {
        self.rng.alphanumeric(FBTRACE_CHARS)
    }

    /// Whether this call fails on purpose, and how.
    pub(crate) fn draw_fault(&mut self) -> Option<FaultKind> {
        if !self.rng.chance(self.config.fault_rate) {
            return None;
        }
        self.rng.pick(&self.config.fault_kinds)
    }

    /// The next server error: 500 and 503 in turn.
    pub(crate) fn next_server_error(&mut self) -> GraphError {
        let error = GraphError::server_error(self.server_errors);
        self.server_errors += 1;
        error
    }

    /// Whether this `items_batch` timeout drops the answer after accepting the batch (every
    /// second one, starting with the second) rather than before.
    pub(crate) fn next_batch_timeout_is_after_accept(&mut self) -> bool {
        self.batch_timeouts += 1;
        self.batch_timeouts.is_multiple_of(2)
    }

    /// Whether `token` may use `catalog` (`verb` words the refusal of an unknown catalog).
    pub(crate) fn authorize(
        &self,
        catalog: &str,
        token: Option<&str>,
        verb: &str,
    ) -> Result<(), GraphError> {
        let token = token
            .filter(|token| !token.is_empty())
            .ok_or_else(GraphError::invalid_token)?;
        if self.config.catalogs.is_empty() {
            return Ok(());
        }
        match self.config.catalogs.get(catalog) {
            None => Err(GraphError::unknown_object(verb, catalog)),
            Some(accepted) if accepted == token => Ok(()),
            Some(_) => Err(GraphError::invalid_token()),
        }
    }

    /// Counts an `items_batch` call against the catalog's rate window, or refuses it (80014).
    pub(crate) fn admit_batch_call(&mut self, catalog: &str) -> Result<(), GraphError> {
        let (limit, window) = self.limit();
        let admitted = self.windows.entry(catalog.to_owned()).or_default().admit(
            Instant::now(),
            limit,
            window,
        );
        if admitted {
            Ok(())
        } else {
            Err(GraphError::catalog_throttled())
        }
    }

    /// The catalog's usage now, for the usage header.
    pub(crate) fn usage(&self, catalog: &str) -> Usage {
        let (limit, window) = self.limit();
        self.windows
            .get(catalog)
            .map(|rate| rate.usage(Instant::now(), limit, window))
            .unwrap_or(Usage::NONE)
    }

    /// What an injected 80014 reports: usage at 100 %, access back after `retry_after_secs`.
    pub(crate) fn throttled_usage(&self) -> Usage {
        Usage {
            percent: 100,
            minutes_to_regain: minutes_rounded_up(Duration::from_secs(
                self.config.retry_after_secs,
            )),
        }
    }

    fn limit(&self) -> (u32, Duration) {
        (
            self.config.calls_per_window,
            Duration::from_millis(self.config.window_ms),
        )
    }

    /// Accepts a batch of shape-checked requests and returns its handle.
    pub(crate) fn accept_batch(
        &mut self,
        catalog: &str,
        requests: Vec<ItemRequest>,
        allow_upsert: bool,
    ) -> String {
        let handle = loop {
            let handle = self.handles.alphanumeric(HANDLE_CHARS);
            if !self.batches.contains_key(&handle) {
                break handle;
            }
        };
        let (low, high) = self.config.polls_to_finish;
        let polls_to_finish = self.rng.between(low, high);
        let batch = Batch::new(
            catalog.to_owned(),
            handle.clone(),
            requests,
            allow_upsert,
            polls_to_finish,
        );
        self.batches.insert(handle.clone(), batch);
        handle
    }

    /// Runs a batch now, without waiting for polls: the batch whose handle its caller never
    /// received is processed anyway, as Meta would.
    pub(crate) fn finish_now(&mut self, handle: &str) {
        if let Some(mut batch) = self.batches.remove(handle) {
            if !batch.is_finished() {
                self.run(&mut batch);
            }
            self.batches.insert(handle.to_owned(), batch);
        }
    }

    /// A status poll of `handle` in `catalog`: counts it, runs the batch on its finishing poll,
    /// and returns the status.
    pub(crate) fn poll(
        &mut self,
        catalog: &str,
        handle: &str,
        load_ids_of_invalid_requests: bool,
    ) -> Result<Value, GraphError> {
        let mut batch = match self.batches.remove(handle) {
            Some(batch) if batch.catalog == catalog => batch,
            Some(other) => {
                self.batches.insert(handle.to_owned(), other);
                return Err(GraphError::unknown_handle(handle));
            }
            None => return Err(GraphError::unknown_handle(handle)),
        };
        if batch.poll() {
            self.run(&mut batch);
        }
        let status = batch.status(load_ids_of_invalid_requests);
        self.batches.insert(handle.to_owned(), batch);
        Ok(status)
    }

    fn run(&mut self, batch: &mut Batch) {
        let catalog = self.catalogs.entry(batch.catalog.clone()).or_default();
        let applied = batch.run(catalog, &self.rules, &mut self.item_ids, now_ms());
        self.log.extend(applied);
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0)
}

/// The world as the server's handlers and [`crate::FakeMeta`] share it.
#[derive(Debug, Clone)]
pub(crate) struct SharedWorld(std::sync::Arc<std::sync::Mutex<World>>);

impl SharedWorld {
    pub(crate) fn new(world: World) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(world)))
    }

    /// Runs `step` under the lock. A step that panicked left nothing half-done worth refusing
    /// every later call for, so a poisoned lock is taken as it is.
    pub(crate) fn with<R>(&self, step: impl FnOnce(&mut World) -> R) -> R {
        let mut world = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        step(&mut world)
    }
}
