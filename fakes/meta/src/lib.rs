//! A fake Meta Graph API: the commerce catalog endpoints porch's Meta connector calls
//! (`items_batch`, `check_batch_request_status` and the catalog's `products` edge), with Meta's asynchronous handles, field
//! checks, error bodies, rate limit and usage header, plus the faults and delays a real channel
//! has on a bad day. porch's tests, its benchmark and a newcomer's demo run against it instead
//! of Meta, so a connector that survives the fake survives the contract
//! (Meta's commerce catalog API; docs/channels.md says what porch relies on).
//!
//! Tests start it in-process ([`FakeMeta::start`]) and steer it with [`FakeMeta`]'s methods;
//! other processes run the `fake-meta` binary and use the same controls under `/_fake/`.
//! What it records — the item requests it applied ([`AppliedRequest`]) and the calls it answered
//! ([`CallRecord`]) — is the ground truth to compare porch's view with.

mod answer;
mod batch;
mod batch_body;
mod catalog;
mod config;
mod control;
mod graph_api;
mod graph_error;
mod item_fields;
mod products;
mod records;
mod request_shape;
mod rng;
mod usage;
mod world;

pub use config::{ConfigError, FakeConfig, FaultKind, RejectRule};
pub use graph_error::{MAX_BATCH_BYTES, MAX_REQUESTS_PER_BATCH};
pub use products::{DEFAULT_PRODUCTS_LIMIT, MAX_PRODUCTS_LIMIT};
pub use records::{AppliedRequest, CallKind, CallRecord, ItemMethod};
pub use usage::USAGE_HEADER;

use std::net::SocketAddr;
use world::{SharedWorld, World};

/// The Graph API version in [`FakeMeta::graph_url`]; any `v<digits>.<digits>` is served.
pub const GRAPH_VERSION: &str = "v24.0";

/// A running fake. It serves until dropped.
#[derive(Debug)]
pub struct FakeMeta {
    addr: SocketAddr,
    world: SharedWorld,
    server: tokio::task::JoinHandle<()>,
}

impl FakeMeta {
    /// Listens on `listen` (port 0 picks a free one) and serves on the current tokio runtime.
    /// An invalid `config` is refused as [`std::io::ErrorKind::InvalidInput`].
    pub async fn start(listen: SocketAddr, config: FakeConfig) -> std::io::Result<FakeMeta> {
        config
            .check()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let world = SharedWorld::new(World::new(config));
        let app = graph_api::routes()
            .merge(control::routes())
            .fallback(graph_api::unknown_path)
            .with_state(world.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake meta stopped serving");
            }
        });
        tracing::info!(%addr, "fake meta graph api listening");
        Ok(FakeMeta {
            addr,
            world,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a Graph client is given: `http://ADDR/v24.0`.
    pub fn graph_url(&self) -> String {
        format!("http://{}/{GRAPH_VERSION}", self.addr)
    }

    /// Changes the config while the fake runs; the random draws restart from its seed. Items,
    /// handles, records and rate windows stay.
    ///
    /// # Panics
    /// When the config is invalid ([`FakeConfig::check`]): a test that asks for nonsense should
    /// stop there. [`FakeMeta::try_set_config`] returns the error instead.
    pub fn set_config(&self, config: FakeConfig) {
        if let Err(e) = self.try_set_config(config) {
            panic!("fake meta config refused: {e}");
        }
    }

    /// [`FakeMeta::set_config`] without the panic.
    pub fn try_set_config(&self, config: FakeConfig) -> Result<(), ConfigError> {
        config.check()?;
        self.world.with(|world| world.set_config(config));
        Ok(())
    }

    pub fn config(&self) -> FakeConfig {
        self.world.with(|world| world.config().clone())
    }

    /// Every item request applied so far (stored or deleted), in the order applied.
    pub fn log(&self) -> Vec<AppliedRequest> {
        self.world.with(|world| world.log().to_vec())
    }

    /// Every Graph call answered or dropped so far, in that order (a timeout counts when its
    /// hang starts).
    pub fn calls(&self) -> Vec<CallRecord> {
        self.world.with(|world| world.calls().to_vec())
    }

    /// The data of the items `catalog` holds now, by retailer id. (Their Meta ids are in
    /// [`AppliedRequest::item_id`].)
    pub fn items(&self, catalog: &str) -> Vec<serde_json::Value> {
        self.world.with(|world| world.items(catalog))
    }

    /// Adds a per-item check for every catalog, applied by every batch that finishes from now on.
    pub fn add_rule(&self, rule: RejectRule) {
        self.world.with(|world| world.add_rule(rule));
    }

    /// Forgets items, handles, rules, records and rate windows; keeps the config and the Meta id
    /// counter (an item id is never given twice).
    pub fn reset(&self) {
        self.world.with(|world| world.reset());
    }
}

impl Drop for FakeMeta {
    fn drop(&mut self) {
        self.server.abort();
    }
}
