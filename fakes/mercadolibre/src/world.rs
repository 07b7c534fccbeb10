//! Everything the fake knows, behind one lock: config, accounts and tokens, items, rate windows,
//! the random sources and what it recorded. Each HTTP call takes the lock for short, synchronous
//! steps and never across a wait, so concurrent calls interleave the way Mercado Libre's would
//! and the records stay consistent with the items.

use crate::accounts::{
    AccountSeed, AccountSummary, Accounts, Grant, Minting, SeedError, SeededAccount,
};
use crate::answer::{Call, Reply};
use crate::api_error::ApiError;
use crate::config::{FakeConfig, FaultKind};
use crate::dates::now_ms;
use crate::item::ItemSummary;
use crate::item_checks::{check_types, missing_fields, parse_body, value_causes};
use crate::listings::Listings;
use crate::rate::RateWindow;
use crate::records::{CallRecord, ChangeKind, Duplicate, ItemChange};
use crate::rng::Rng;
use crate::search::SearchQuery;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The most ids one multiget may ask for.
pub const MAX_MULTIGET_IDS: usize = 20;

#[derive(Debug)]
pub(crate) struct World {
    config: FakeConfig,
    /// Faults and `{}` answers: repeatable from the config's seed.
    rng: Rng,
    /// Tokens and codes: seeded from the clock instead, so a restarted fake never hands out a
    /// token a client still holds from the previous run.
    tokens: Rng,
    accounts: Accounts,
    listings: Listings,
    windows: HashMap<u64, RateWindow>,
    log: Vec<ItemChange>,
    calls: Vec<CallRecord>,
    /// Server errors answered so far: they go round 500, 502, 503, 504.
    server_errors: u64,
    /// `POST /items` timeouts so far: every second one happens after the item was created.
    create_timeouts: u64,
}

impl World {
    pub(crate) fn new(config: FakeConfig) -> Self {
        Self {
            rng: Rng::new(config.seed),
            tokens: Rng::from_clock(),
            config,
            accounts: Accounts::default(),
            listings: Listings::default(),
            windows: HashMap::new(),
            log: Vec::new(),
            calls: Vec::new(),
            server_errors: 0,
            create_timeouts: 0,
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

    /// Forgets accounts, tokens, items, records and rate windows; the config stays, and so does
    /// the item id counter (ids are never given twice).
    pub(crate) fn reset(&mut self) {
        let mut listings = std::mem::take(&mut self.listings);
        listings.clear();
        *self = Self::new(self.config.clone());
        self.listings = listings;
    }

    pub(crate) fn log(&self) -> &[ItemChange] {
        &self.log
    }

    pub(crate) fn calls(&self) -> &[CallRecord] {
        &self.calls
    }

    pub(crate) fn record(&mut self, call: CallRecord) {
        self.calls.push(call);
    }

    pub(crate) fn items(&self) -> BTreeMap<String, ItemSummary> {
        self.listings.summaries()
    }

    pub(crate) fn duplicates(&self) -> Vec<Duplicate> {
        self.listings.duplicates()
    }

    /// Whether this call fails on purpose, and how.
    pub(crate) fn draw_fault(&mut self) -> Option<FaultKind> {
        if !self.rng.chance(self.config.fault_rate) {
            return None;
        }
        self.rng.pick(&self.config.fault_kinds)
    }

    /// The next server error: 500, 502, 503 and 504 in turn.
    pub(crate) fn next_server_error(&mut self) -> ApiError {
        let error = ApiError::server_error(self.server_errors);
        self.server_errors += 1;
        error
    }

    /// Whether this `POST /items` timeout drops the answer after creating the item (every
    /// second one, starting with the second) rather than before.
    pub(crate) fn next_create_timeout_is_after_create(&mut self) -> bool {
        self.create_timeouts += 1;
        self.create_timeouts.is_multiple_of(2)
    }

    pub(crate) fn seed_account(&mut self, seed: &AccountSeed) -> Result<SeededAccount, SeedError> {
        let minting = minting(&mut self.tokens, &self.config);
        self.accounts.seed(seed, minting)
    }

    pub(crate) fn accounts(&self) -> Vec<AccountSummary> {
        self.accounts.summaries()
    }

    pub(crate) fn expire_tokens(&mut self, user_id: u64) -> bool {
        self.accounts.expire(user_id)
    }

    pub(crate) fn revoke(&mut self, user_id: u64) -> bool {
        self.accounts.revoke(user_id)
    }

    /// `POST /oauth/token` with its form (or JSON) parameters.
    pub(crate) fn token(
        &mut self,
        call: &mut Call,
        params: &HashMap<String, String>,
    ) -> Result<Reply, ApiError> {
        let param = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        call.grant_type = param("grant_type").map(str::to_owned);
        let grant_type = param("grant_type")
            .ok_or_else(|| ApiError::oauth("invalid_request", "grant_type is required"))?;
        let (Some(client_id), Some(client_secret)) = (param("client_id"), param("client_secret"))
        else {
            return Err(ApiError::oauth(
                "invalid_request",
                "client_id and client_secret are required",
            ));
        };
        let grant = match grant_type {
            "authorization_code" => Grant::AuthorizationCode(
                param("code")
                    .ok_or_else(|| ApiError::oauth("invalid_request", "code is required"))?,
            ),
            "refresh_token" => {
                Grant::RefreshToken(param("refresh_token").ok_or_else(|| {
                    ApiError::oauth("invalid_request", "refresh_token is required")
                })?)
            }
            other => {
                return Err(ApiError::oauth(
                    "unsupported_grant_type",
                    format!(
                    "grant_type {other} is not supported: use authorization_code or refresh_token"
                ),
                ))
            }
        };
        let minting = minting(&mut self.tokens, &self.config);
        let (user_id, result) = self
            .accounts
            .grant(client_id, client_secret, grant, minting);
        call.user_id = user_id;
        let pair = result?;
        Ok(Reply::ok(serde_json::to_value(pair).unwrap_or_default()))
    }

    /// The seller behind the call's access token, counted against its rate window.
    fn admit(&mut self, call: &mut Call, token: Option<&str>) -> Result<u64, ApiError> {
        let user_id = self.accounts.authenticate(token, now_ms())?;
        call.user_id = Some(user_id);
        let limit = self.config.calls_per_window;
        let window = Duration::from_millis(self.config.window_ms);
        let admitted =
            self.windows
                .entry(user_id)
                .or_default()
                .admit(Instant::now(), limit, window);
        if admitted {
            Ok(user_id)
        } else {
            Err(ApiError::too_many_requests())
        }
    }

    /// `POST /items`.
    pub(crate) fn create_item(
        &mut self,
        call: &mut Call,
        token: Option<&str>,
        bytes: &[u8],
    ) -> Result<Reply, ApiError> {
        let seller_id = self.admit(call, token)?;
        let site = self.accounts.site(seller_id).unwrap_or_default();
        let body = parse_body(bytes)?;
        check_types(&body)?;
        let mut causes: Vec<_> = missing_fields(&body).into_iter().collect();
        causes.extend(value_causes(&body, site, self.config.max_title_chars));
        if !causes.is_empty() {
            return Err(ApiError::validation(causes));
        }
        let now = now_ms();
        let item = self
            .listings
            .create(site, seller_id, &body, now)
            .map_err(|cause| ApiError::validation(vec![cause]))?;
        let (id, sku, status, rendered) = (
            item.id().to_owned(),
            item.sku(),
            item.status(),
            item.render(),
        );
        call.item_id = Some(id.clone());
        self.log.push(ItemChange {
            item_id: id,
            seller_id,
            sku,
            kind: ChangeKind::Create,
            data: Value::Object(body),
            status,
            at_ms: now,
        });
        Ok(Reply::created(rendered))
    }

    /// `GET /items/{id}`: any seller may read any item.
    pub(crate) fn get_item(
        &mut self,
        call: &mut Call,
        token: Option<&str>,
        id: &str,
    ) -> Result<Reply, ApiError> {
        self.admit(call, token)?;
        call.item_id = Some(id.to_owned());
        let item = self
            .listings
            .get(id)
            .ok_or_else(|| ApiError::item_not_found(id))?;
        Ok(Reply::ok(item.render()))
    }

    /// `GET /items?ids=a,b&attributes=x,y`: `[{code, body}]`, one per id, in the order asked.
    pub(crate) fn multiget(
        &mut self,
        call: &mut Call,
        token: Option<&str>,
        params: &HashMap<String, String>,
    ) -> Result<Reply, ApiError> {
        self.admit(call, token)?;
        let ids = comma_list(params.get("ids"));
        if ids.is_empty() {
            return Err(ApiError::bad_request("ids is required"));
        }
        if ids.len() > MAX_MULTIGET_IDS {
            return Err(ApiError::bad_request(format!(
                "The number of ids must be lower or equal than {MAX_MULTIGET_IDS}, not {}",
                ids.len()
            )));
        }
        let attributes = comma_list(params.get("attributes"));
        let answers: Vec<Value> = ids
            .iter()
            .map(|id| match self.listings.get(id) {
                Some(item) => json!({"code": 200, "body": only(item.render(), &attributes)}),
                None => {
                    let error = ApiError::item_not_found(id);
                    json!({"code": error.status.as_u16(), "body": error.body})
                }
            })
            .collect();
        Ok(Reply::ok(Value::Array(answers)))
    }

    /// `PUT /items/{id}`: the owner only; answers the item, or `{}` at `empty_put_rate`.
    pub(crate) fn update_item(
        &mut self,
        call: &mut Call,
        token: Option<&str>,
        id: &str,
        bytes: &[u8],
    ) -> Result<Reply, ApiError> {
        let seller_id = self.admit(call, token)?;
        call.item_id = Some(id.to_owned());
        let max_title_chars = self.config.max_title_chars;
        let item = self
            .listings
            .get_mut(id)
            .ok_or_else(|| ApiError::item_not_found(id))?;
        if item.seller_id() != seller_id {
            return Err(ApiError::forbidden());
        }
        let body = parse_body(bytes)?;
        let now = now_ms();
        item.update(&body, max_title_chars, now)?;
        let (sku, status, rendered) = (item.sku(), item.status(), item.render());
        self.log.push(ItemChange {
            item_id: id.to_owned(),
            seller_id,
            sku,
            kind: ChangeKind::Update,
            data: Value::Object(body),
            status,
            at_ms: now,
        });
        if self.rng.chance(self.config.empty_put_rate) {
            Ok(Reply::empty())
        } else {
            Ok(Reply::ok(rendered))
        }
    }

    /// `GET /users/{user_id}/items/search`: the seller's own items only.
    pub(crate) fn search(
        &mut self,
        call: &mut Call,
        token: Option<&str>,
        user_id: &str,
        params: &HashMap<String, String>,
    ) -> Result<Reply, ApiError> {
        let seller_id = self.admit(call, token)?;
        if user_id != seller_id.to_string() {
            return Err(ApiError::forbidden());
        }
        let query = SearchQuery::parse(params)?;
        let ids = self.listings.search(seller_id, &query);
        Ok(Reply::ok(query.answer(seller_id, &ids)))
    }

    /// `POST /_fake/items/{id}/sale`: a buyer buys `quantity` units of an active item.
    pub(crate) fn sell(&mut self, id: &str, quantity: u64) -> Result<ItemSummary, SaleError> {
        let now = now_ms();
        let item = self.listings.get_mut(id).ok_or(SaleError::NoItem)?;
        item.sell(quantity, now).map_err(SaleError::Refused)?;
        let summary = item.summary();
        self.log.push(ItemChange {
            item_id: id.to_owned(),
            seller_id: summary.seller_id,
            sku: summary.sku.clone(),
            kind: ChangeKind::Sale,
            data: json!({ "quantity": quantity }),
            status: summary.status,
            at_ms: now,
        });
        Ok(summary)
    }
}

/// Why a sale was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error("no such item")]
    NoItem,
    #[error("{0}")]
    Refused(String),
}

/// What a token is made with now.
fn minting<'a>(tokens: &'a mut Rng, config: &FakeConfig) -> Minting<'a> {
    Minting {
        rng: tokens,
        now_ms: now_ms(),
        ttl_secs: config.access_token_ttl_secs,
    }
}

fn comma_list(text: Option<&String>) -> Vec<String> {
    text.map(|text| {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The item with only the `attributes` asked for (all of it when none are).
fn only(item: Value, attributes: &[String]) -> Value {
    match item {
        Value::Object(fields) if !attributes.is_empty() => Value::Object(
            fields
                .into_iter()
                .filter(|(key, _)| attributes.iter().any(|wanted| wanted == key))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// The world as the server's handlers and [`crate::FakeMercadoLibre`] share it.
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
