//! A fake Mercado Libre API: the item endpoints porch's Mercado Libre connector calls
//! (`POST /items`, `GET /items/{id}`, `GET /items?ids=…`, `PUT /items/{id}`,
//! `GET /users/{user_id}/items/search`) and the OAuth token endpoint with its rotating,
//! single-use refresh tokens — with Mercado Libre's validation causes, frozen fields after a
//! sale, error bodies and rate limit, plus the faults and delays a real channel has on a bad day.
//! porch's tests, its benchmark and a newcomer's demo run against it instead of Mercado Libre,
//! so a connector that survives the fake survives the contract
//! (Mercado Libre's items and OAuth API; docs/channels.md says what porch relies on).
//!
//! Tests start it in-process ([`FakeMercadoLibre::start`]), seed a seller
//! ([`FakeMercadoLibre::add_account`]) and steer it with [`FakeMercadoLibre`]'s methods; other
//! processes run the `fake-mercadolibre` binary and use the same controls under `/_fake/`. What
//! it records — the item changes it made ([`ItemChange`]) and the calls it answered
//! ([`CallRecord`]) — is the ground truth to compare porch's view with.

mod accounts;
mod answer;
mod api_error;
mod config;
mod control;
mod dates;
mod front_door;
mod item;
mod item_checks;
mod items_api;
mod listings;
mod oauth;
mod rate;
mod records;
mod rng;
mod search;
mod site;
mod world;

pub use accounts::{
    AccountSeed, AccountSummary, SeedError, SeededAccount, TokenPair, CODE_TTL_MS, SCOPE,
};
pub use config::{
    ConfigError, FakeConfig, FaultKind, DEFAULT_ACCESS_TOKEN_TTL_SECS, DEFAULT_MAX_TITLE_CHARS,
};
pub use item::{ItemStatus, ItemSummary};
pub use listings::FIRST_ITEM_NUMBER;
pub use records::{CallKind, CallRecord, ChangeKind, Duplicate, ItemChange};
pub use search::{DEFAULT_SEARCH_LIMIT, MAX_SEARCH_DEPTH, MAX_SEARCH_LIMIT};
pub use site::Site;
pub use world::{SaleError, MAX_MULTIGET_IDS};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use world::{SharedWorld, World};

/// A running fake. It serves until dropped.
#[derive(Debug)]
pub struct FakeMercadoLibre {
    addr: SocketAddr,
    world: SharedWorld,
    server: tokio::task::JoinHandle<()>,
}

impl FakeMercadoLibre {
    /// Listens on `listen` (port 0 picks a free one) and serves on the current tokio runtime.
    /// An invalid `config` is refused as [`std::io::ErrorKind::InvalidInput`].
    pub async fn start(listen: SocketAddr, config: FakeConfig) -> std::io::Result<Self> {
        config
            .check()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let world = SharedWorld::new(World::new(config));
        let app = items_api::routes()
            .merge(oauth::routes())
            .merge(control::routes())
            .fallback(items_api::unknown_path)
            .with_state(world.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake mercado libre stopped serving");
            }
        });
        tracing::info!(%addr, "fake mercado libre api listening");
        Ok(Self {
            addr,
            world,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a Mercado Libre client is given instead of `https://api.mercadolibre.com`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the config while the fake runs; the random draws restart from its seed.
    /// Accounts, tokens, items, records and rate windows stay.
    ///
    /// # Panics
    /// When the config is invalid ([`FakeConfig::check`]): a test that asks for nonsense should
    /// stop there. [`FakeMercadoLibre::try_set_config`] returns the error instead.
    pub fn set_config(&self, config: FakeConfig) {
        if let Err(e) = self.try_set_config(config) {
            panic!("fake mercado libre config refused: {e}");
        }
    }

    /// [`FakeMercadoLibre::set_config`] without the panic.
    pub fn try_set_config(&self, config: FakeConfig) -> Result<(), ConfigError> {
        config.check()?;
        self.world.with(|world| world.set_config(config));
        Ok(())
    }

    pub fn config(&self) -> FakeConfig {
        self.world.with(|world| world.config().clone())
    }

    /// Adds a seller who authorized the app `seed.client_id` (or re-authorizes one) and returns
    /// a fresh authorization code, plus a token pair when `seed.tokens` is set.
    pub fn add_account(&self, seed: AccountSeed) -> Result<SeededAccount, SeedError> {
        self.world.with(|world| world.seed_account(&seed))
    }

    /// The sellers, with how often each refreshed.
    pub fn accounts(&self) -> Vec<AccountSummary> {
        self.world.with(|world| world.accounts())
    }

    /// Expires every access token of `user_id` at once (false for an unknown seller).
    pub fn expire_tokens(&self, user_id: u64) -> bool {
        self.world.with(|world| world.expire_tokens(user_id))
    }

    /// Revokes the refresh token and pending codes of `user_id`: its next refresh is
    /// `invalid_grant` (false for an unknown seller).
    pub fn revoke(&self, user_id: u64) -> bool {
        self.world.with(|world| world.revoke(user_id))
    }

    /// A buyer buys `quantity` units of an active item: from now on its title, condition and
    /// buying mode are frozen.
    pub fn sell(&self, item_id: &str, quantity: u64) -> Result<ItemSummary, SaleError> {
        self.world.with(|world| world.sell(item_id, quantity))
    }

    /// Every item, by id.
    pub fn items(&self) -> BTreeMap<String, ItemSummary> {
        self.world.with(|world| world.items())
    }

    /// Every change made to an item, in the order made.
    pub fn log(&self) -> Vec<ItemChange> {
        self.world.with(|world| world.log().to_vec())
    }

    /// Every API call answered or dropped so far, in that order (a timeout counts when its hang
    /// starts).
    pub fn calls(&self) -> Vec<CallRecord> {
        self.world.with(|world| world.calls().to_vec())
    }

    /// SKUs with more than one item that is not closed, per seller.
    pub fn duplicates(&self) -> Vec<Duplicate> {
        self.world.with(|world| world.duplicates())
    }

    /// Forgets accounts, tokens, items, records and rate windows; keeps the config and the item
    /// id counter (an item id is never given twice).
    pub fn reset(&self) {
        self.world.with(|world| world.reset());
    }
}

impl Drop for FakeMercadoLibre {
    fn drop(&mut self) {
        self.server.abort();
    }
}
