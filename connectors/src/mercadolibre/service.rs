//! Mercado Libre's item API as a channel service. Each request is its own few calls, in order:
//!
//! - An upsert of an item the service knows (its id remembered in [`ITEMS_TABLE`]) is a
//!   `PUT /items/{id}`, then a `GET /items/{id}`: a good PUT may answer `{}`, so LIVE comes only
//!   from a read that shows what was asked. Without stock the item is `paused`, with stock
//!   `active`.
//! - An upsert of an item that may exist without the service knowing its id (a create sent and
//!   not answered, a retry after a timeout, a restart) first looks for it by SKU
//!   (`GET /users/{id}/items/search?seller_sku=…`) and adopts an item that is not closed, so a
//!   replay never lists the SKU twice. Otherwise it is a `POST /items`, remembered at once and
//!   confirmed by a read.
//! - A delete closes the item (`PUT {"status": "closed"}`), confirmed by a read: UNPUBLISHED.
//!   A closed item is final; an upsert after it lists a new item.
//!
//! Every call goes through the [`Retrier`] and every answer is classified ([`super::answer`]).
//! A 401 gets one refresh of the seller's token and one more try; a second 401, or Mercado
//! Libre refusing the refresh token, marks the seller NEEDS_REAUTH ([`super::tokens`]): its
//! requests are answered NEEDS_REAUTH without a call (the listings wait for a reconnect, which
//! sends them again).

use super::answer::{Answer, Failure};
use super::config::MercadoLibreConfig;
use super::request_builder::{
    after_update, create_body, item_fields, mismatches, update_body, ItemFields, KnownItem,
    FROZEN_AFTER_SALE, NOT_MODIFIABLE,
};
use super::site::Site;
use super::tokens::{Seller, TokenError, Tokens};
use crate::accounts::{Accounts, MercadoLibreCredentials, Secret};
use crate::sink::{
    Attempt, CallError, ChannelService, Exhausted, ItemResult, OnChannel, Retrier, RetryClass,
    RowStore, SinkRequest,
};
use futures::StreamExt;
use porch_processors::domain::channel::Action;
use porch_processors::store::{BoxFuture, RowWrite};
use porch_schemas::{Channel, ListingRequested, Reason, TenantId};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `<tenant>/<retailer id>` → [`KnownItem`]: the item the service listed for an offer, as it
/// last showed it.
pub const ITEMS_TABLE: &str = "mercadolibre_items";

/// Items per page of a seller search (the first page is enough: a SKU has one live item).
const SEARCH_LIMIT: &str = "50";

pub struct MercadoLibreService {
    config: MercadoLibreConfig,
    http: reqwest::Client,
    accounts: Arc<Accounts>,
    rows: Arc<dyn RowStore>,
    tokens: Tokens,
}

/// The seller account a request is acted on with.
struct Account {
    tenant: TenantId,
    credentials: MercadoLibreCredentials,
}

impl Account {
    fn seller(&self) -> Seller<'_> {
        Seller {
            tenant: &self.tenant,
            credentials: &self.credentials,
        }
    }

    fn user_id(&self) -> &str {
        &self.credentials.user_id
    }
}

/// Why a request stopped before the channel confirmed anything.
enum Stop {
    /// Retries spent, or a refusal of the call itself: to the dead letters.
    Exhausted(Exhausted),
    /// The channel refused the item: REJECTED.
    Refused(Vec<Reason>),
}

impl Stop {
    fn into_result(self) -> ItemResult {
        match self {
            Stop::Exhausted(e) => ItemResult::Failed(e),
            Stop::Refused(issues) => ItemResult::Rejected(issues),
        }
    }

    fn store(what: &str, e: impl std::fmt::Display) -> Self {
        Stop::Exhausted(Exhausted {
            attempts: 0,
            class: Some(RetryClass::ServerError),
            last: format!("{what}: {e}"),
        })
    }
}

/// What a PUT did.
enum Put {
    Applied,
    /// The item is closed (or unknown to the channel): nothing about it changes again.
    Gone,
}

/// What a create did.
enum Created {
    New(String),
    /// An earlier, unanswered try had created it: found by SKU.
    Found(String),
}

impl MercadoLibreService {
    pub fn new(
        config: MercadoLibreConfig,
        accounts: Arc<Accounts>,
        rows: Arc<dyn RowStore>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(10_000)))
            .build()?;
        let tokens = Tokens::new(
            http.clone(),
            &config.token_url,
            rows.clone(),
            accounts.clone(),
            Duration::from_secs(config.refresh_margin_secs),
            Duration::from_millis(config.token_lease_ms),
        );
        Ok(MercadoLibreService {
            config,
            http,
            accounts,
            rows,
            tokens,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_url.trim_end_matches('/'))
    }

    /// The tenant's Mercado Libre account in the request's region.
    async fn account(&self, r: &SinkRequest) -> Result<Account, ItemResult> {
        let failed = |class, last: String| {
            ItemResult::Failed(Exhausted {
                attempts: 0,
                class: Some(class),
                last,
            })
        };
        let accounts = self.accounts.of(&r.tenant).await.map_err(|e| {
            failed(
                RetryClass::ServerError,
                format!("reading the channel accounts: {e}"),
            )
        })?;
        let Some(credentials) = accounts
            .get(Channel::MercadoLibre, &r.request.region)
            .and_then(|a| a.mercadolibre.clone())
        else {
            return Err(failed(
                RetryClass::Auth,
                format!(
                    "tenant {} has no Mercado Libre account connected in {}",
                    r.tenant, r.request.region
                ),
            ));
        };
        if credentials.user_id != r.request.account {
            return Err(failed(
                RetryClass::Auth,
                format!(
                    "the request is for Mercado Libre seller {}, but {} of tenant {} is \
                     connected as seller {}",
                    r.request.account, r.request.region, r.tenant, credentials.user_id
                ),
            ));
        }
        Ok(Account {
            tenant: r.tenant.clone(),
            credentials,
        })
    }

    /// Acts on one request, from start to what the channel confirmed.
    async fn act(&self, r: &SinkRequest, retrier: &Retrier) -> ItemResult {
        let Some(site) = Site::of_region(&r.request.region) else {
            return ItemResult::Rejected(vec![Reason::on_field(
                super::request_builder::INVALID,
                "region",
                format!("Mercado Libre has no site in {}", r.request.region),
            )]);
        };
        let fields = match r.action {
            Action::Upsert => match item_fields(r, &self.config, site) {
                Ok(fields) => Some(fields),
                Err(issues) => return ItemResult::Rejected(issues),
            },
            Action::Delete => None,
        };
        let account = match self.account(r).await {
            Ok(account) => account,
            Err(result) => return result,
        };
        let done = match &fields {
            Some(fields) => self.upsert(r, &account, fields, retrier).await,
            None => self.delete(r, &account, retrier).await,
        };
        done.unwrap_or_else(Stop::into_result)
    }

    async fn upsert(
        &self,
        r: &SinkRequest,
        account: &Account,
        fields: &ItemFields,
        retrier: &Retrier,
    ) -> Result<ItemResult, Stop> {
        let known = self
            .remembered(r)
            .await?
            .filter(|k| !k.is_closed() && k.user_id == account.user_id());
        let target = match known {
            Some(known) => Some((known.item_id.clone(), Some(known))),
            // The channel may hold the item without the service knowing its id: a create sent
            // and never answered, or a memory lost. Find it before creating a second one.
            None if r.on_channel != OnChannel::Absent => self
                .call(retrier, "search_items", |_| {
                    self.search_once(account, &fields.sku, &["active", "paused"], 1)
                })
                .await?
                .into_iter()
                .next()
                .map(|id| (id, None)),
            None => None,
        };
        if let Some((id, known)) = target {
            if let Some(result) = self.update(r, account, fields, &id, known, retrier).await? {
                return Ok(result);
            }
        }
        self.create(r, account, fields, retrier).await
    }

    async fn create(
        &self,
        r: &SinkRequest,
        account: &Account,
        fields: &ItemFields,
        retrier: &Retrier,
    ) -> Result<ItemResult, Stop> {
        let body = create_body(fields);
        let created = self
            .call(retrier, "create_item", |attempt: Attempt| {
                let body = &body;
                async move {
                    if attempt.ambiguous {
                        // An earlier try may have created the item without an answer.
                        let found = self
                            .search_once(account, &fields.sku, &["active", "paused"], 1)
                            .await?;
                        if let Some(id) = found.into_iter().next() {
                            return Ok(Created::Found(id));
                        }
                    }
                    let answer = self
                        .json(account, |token| {
                            self.http
                                .post(self.url("/items"))
                                .bearer_auth(token)
                                .json(body)
                        })
                        .await?;
                    match answer["id"].as_str() {
                        Some(id) => Ok(Created::New(id.to_string())),
                        None => Err(Failure::Permanent(
                            "Mercado Libre created an item without telling its id".into(),
                        )),
                    }
                }
            })
            .await?;
        match created {
            Created::New(id) => {
                // Remembered before anything else: a retry, a replay or a restart updates this
                // item by its id.
                let known = KnownItem::sent(&id, account.user_id(), fields);
                self.remember(r, &known).await;
                self.confirm(r, account, fields, &known, retrier).await
            }
            Created::Found(id) => {
                tracing::info!(tenant = %r.tenant, retailer_id = %r.request.retailer_id, item_id = %id, "adopting the Mercado Libre item an unanswered create made");
                match self.update(r, account, fields, &id, None, retrier).await? {
                    Some(result) => Ok(result),
                    None => Err(Stop::Exhausted(Exhausted {
                        attempts: 1,
                        class: Some(RetryClass::ServerError),
                        last: format!("item {id}, found by SKU, was closed at once"),
                    })),
                }
            }
        }
    }

    /// Makes item `id` show `fields`; `None` when the item is closed or unknown to the channel
    /// (a new item is listed instead).
    async fn update(
        &self,
        r: &SinkRequest,
        account: &Account,
        fields: &ItemFields,
        id: &str,
        known: Option<KnownItem>,
        retrier: &Retrier,
    ) -> Result<Option<ItemResult>, Stop> {
        let known = match known {
            Some(known) => known,
            None => match self
                .call(retrier, "get_item", |_| self.read_once(account, id))
                .await?
            {
                Some(read) => KnownItem::read(id, account.user_id(), &read, vec![]),
                None => return Ok(None),
            },
        };
        if known.is_closed() {
            return Ok(None);
        }
        let body = match update_body(fields, &known) {
            Ok(body) => body,
            Err(issues) => return Ok(Some(ItemResult::Rejected(issues))),
        };
        match self
            .call(retrier, "update_item", |_| {
                self.put_once(account, id, &body)
            })
            .await
        {
            Ok(Put::Applied) => {}
            Ok(Put::Gone) => {
                self.remember(
                    r,
                    &KnownItem {
                        status: "closed".into(),
                        ..known
                    },
                )
                .await;
                return Ok(None);
            }
            Err(Stop::Refused(issues)) => {
                // Refused for a frozen field: the item has sold since it was last read, and the
                // next change to it is refused without a call.
                let frozen = issues.iter().any(|i| {
                    i.code == NOT_MODIFIABLE
                        && i.field
                            .as_deref()
                            .is_some_and(|f| FROZEN_AFTER_SALE.contains(&f))
                });
                if frozen && known.sold_quantity == 0 {
                    self.remember(
                        r,
                        &KnownItem {
                            sold_quantity: 1,
                            ..known
                        },
                    )
                    .await;
                }
                return Ok(Some(ItemResult::Rejected(issues)));
            }
            Err(e) => return Err(e),
        }
        let sent = after_update(&known, fields);
        self.confirm(r, account, fields, &sent, retrier)
            .await
            .map(Some)
    }

    /// Reads the item until it shows `fields` (or the retries run out): LIVE.
    async fn confirm(
        &self,
        r: &SinkRequest,
        account: &Account,
        fields: &ItemFields,
        sent: &KnownItem,
        retrier: &Retrier,
    ) -> Result<ItemResult, Stop> {
        let id = sent.item_id.as_str();
        let read = self
            .call(retrier, "get_item", |_| async move {
                let Some(read) = self.read_once(account, id).await? else {
                    return Err(Failure::Retry(CallError::retry(
                        RetryClass::ServerError,
                        format!("item {id} cannot be read yet"),
                    )));
                };
                let wrong = mismatches(&read, fields, sent.sold_quantity);
                if !wrong.is_empty() {
                    return Err(Failure::Retry(CallError::retry(
                        RetryClass::ServerError,
                        format!("item {id} does not show its {} yet", wrong.join(", ")),
                    )));
                }
                Ok(read)
            })
            .await?;
        let shown = KnownItem::read(id, account.user_id(), &read, fields.pictures.clone());
        self.remember(r, &shown).await;
        Ok(ItemResult::Live {
            channel_item_id: Some(id.to_string()),
        })
    }

    async fn delete(
        &self,
        r: &SinkRequest,
        account: &Account,
        retrier: &Retrier,
    ) -> Result<ItemResult, Stop> {
        let known = self
            .remembered(r)
            .await?
            .filter(|k| k.user_id == account.user_id());
        let ids = match &known {
            Some(k) if k.is_closed() => vec![],
            Some(k) => vec![k.item_id.clone()],
            None if r.on_channel == OnChannel::Absent => vec![],
            // Whatever the channel holds for the SKU goes.
            None => {
                self.call(retrier, "search_items", |_| {
                    self.search_once(account, r.request.sku.as_str(), &["active", "paused"], 50)
                })
                .await?
            }
        };
        for id in &ids {
            self.close(account, id, retrier).await?;
        }
        let closed = match known {
            Some(k) => KnownItem {
                status: "closed".into(),
                ..k
            },
            None => match ids.last() {
                Some(id) => KnownItem {
                    item_id: id.clone(),
                    user_id: account.user_id().to_string(),
                    status: "closed".into(),
                    title: String::new(),
                    condition: String::new(),
                    buying_mode: String::new(),
                    category_id: String::new(),
                    listing_type_id: String::new(),
                    sold_quantity: 0,
                    pictures: vec![],
                },
                None => return Ok(ItemResult::Unpublished),
            },
        };
        self.remember(r, &closed).await;
        Ok(ItemResult::Unpublished)
    }

    /// Closes item `id` and reads it until it shows closed.
    async fn close(&self, account: &Account, id: &str, retrier: &Retrier) -> Result<(), Stop> {
        let body = json!({ "status": "closed" });
        if let Put::Gone = self
            .call(retrier, "update_item", |_| {
                self.put_once(account, id, &body)
            })
            .await?
        {
            // Closed already, or never there.
            return Ok(());
        }
        self.call(retrier, "get_item", |_| async move {
            match self.read_once(account, id).await? {
                Some(read) if read["status"] != "closed" => Err(Failure::Retry(CallError::retry(
                    RetryClass::ServerError,
                    format!("item {id} does not show closed yet"),
                ))),
                _ => Ok(()),
            }
        })
        .await
    }

    /// Runs one kind of call through the retrier; what stops it for good is told apart from
    /// retries that ran out.
    async fn call<T, F, Fut>(
        &self,
        retrier: &Retrier,
        kind: &'static str,
        mut make: F,
    ) -> Result<T, Stop>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let refused: Mutex<Option<(Vec<Reason>, bool)>> = Mutex::new(None);
        let result = retrier
            .call(kind, |attempt| {
                let attempt_done = make(attempt);
                let refused = &refused;
                async move {
                    match attempt_done.await {
                        Ok(value) => Ok(value),
                        Err(Failure::Retry(e)) => Err(e),
                        Err(failure) => {
                            let message = failure.message();
                            let stop = match failure {
                                Failure::Refused(issues) => Some((issues, false)),
                                Failure::NeedsReauth(_) => Some((vec![], true)),
                                _ => None,
                            };
                            *refused.lock().unwrap_or_else(|e| e.into_inner()) = stop;
                            Err(CallError::Permanent(message))
                        }
                    }
                }
            })
            .await;
        let refused = refused.into_inner().unwrap_or_else(|e| e.into_inner());
        match (result, refused) {
            (Ok(value), _) => Ok(value),
            (Err(_), Some((issues, false))) => Err(Stop::Refused(issues)),
            // The account cannot be used: dead letters, marked as an auth failure, to be
            // redriven once the seller has connected again.
            (Err(e), Some((_, true))) => Err(Stop::Exhausted(Exhausted {
                class: Some(RetryClass::Auth),
                ..e
            })),
            (Err(e), None) => Err(Stop::Exhausted(e)),
        }
    }

    /// One call with the seller's token: a 401 gets one refresh and one more try; a second 401
    /// marks the seller NEEDS_REAUTH.
    async fn send(
        &self,
        account: &Account,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<(Answer, Secret), Failure> {
        let seller = account.seller();
        let token = self
            .tokens
            .access_token(seller, None)
            .await
            .map_err(token_failure)?;
        let answer = self.answer(request(token.expose())).await?;
        if answer.status != 401 {
            return Ok((answer, token));
        }
        let again = self
            .tokens
            .access_token(seller, Some(&token))
            .await
            .map_err(token_failure)?;
        let answer = self.answer(request(again.expose())).await?;
        if answer.status != 401 {
            return Ok((answer, again));
        }
        let why = "Mercado Libre refused a freshly refreshed access token (HTTP 401)";
        self.tokens.refused_after_refresh(seller, &again, why).await;
        Err(Failure::NeedsReauth(format!(
            "Mercado Libre seller {} needs to connect again: {why}",
            account.user_id()
        )))
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Answer, Failure> {
        let resp = request
            .send()
            .await
            .map_err(|e| Failure::Retry(CallError::from_transport(&e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Retry(CallError::from_transport(&e)))?;
        Ok(Answer {
            status,
            retry_after,
            text,
        })
    }

    /// The JSON of a 2xx, or the failure.
    async fn json(
        &self,
        account: &Account,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Value, Failure> {
        let (answer, token) = self.send(account, request).await?;
        answer.json(token.expose())
    }

    /// `GET /items/{id}`: `None` for an item the channel does not have.
    async fn read_once(&self, account: &Account, id: &str) -> Result<Option<Value>, Failure> {
        let url = self.url(&format!("/items/{id}"));
        match self
            .json(account, |token| self.http.get(&url).bearer_auth(token))
            .await
        {
            Ok(read) => Ok(Some(read)),
            Err(Failure::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /items/{id}`.
    async fn put_once(&self, account: &Account, id: &str, body: &Value) -> Result<Put, Failure> {
        let url = self.url(&format!("/items/{id}"));
        match self
            .json(account, |token| {
                self.http.put(&url).bearer_auth(token).json(body)
            })
            .await
        {
            Ok(_) => Ok(Put::Applied),
            Err(Failure::Closed | Failure::NotFound) => Ok(Put::Gone),
            Err(e) => Err(e),
        }
    }

    /// The seller's items with `sku` in any of `statuses`, oldest first, at most `want`.
    async fn search_once(
        &self,
        account: &Account,
        sku: &str,
        statuses: &[&str],
        want: usize,
    ) -> Result<Vec<String>, Failure> {
        let url = self.url(&format!("/users/{}/items/search", account.user_id()));
        let mut found = Vec::new();
        for &status in statuses {
            let page = self
                .json(account, |token| {
                    self.http.get(&url).bearer_auth(token).query(&[
                        ("seller_sku", sku),
                        ("status", status),
                        ("limit", SEARCH_LIMIT),
                    ])
                })
                .await
                .map_err(|e| match e {
                    // A seller the search does not know is nothing an item can fix.
                    Failure::NotFound => {
                        Failure::Permanent("Mercado Libre does not know the seller".into())
                    }
                    e => e,
                })?;
            found.extend(
                page["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| id.as_str().map(String::from)),
            );
            if found.len() >= want {
                break;
            }
        }
        found.truncate(want.max(1));
        Ok(found)
    }

    /// What the service remembers of the request's item.
    async fn remembered(&self, r: &SinkRequest) -> Result<Option<KnownItem>, Stop> {
        let keys = [r.item_key()];
        let row = self
            .rows
            .get_many(ITEMS_TABLE, &keys)
            .await
            .map_err(|e| Stop::store("reading the Mercado Libre items row", e))?
            .pop()
            .flatten();
        // A row that does not decode is forgotten: the item is found again by SKU.
        Ok(row.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Remembers the request's item. A failure is logged, not fatal: the ledger knows a create
    /// was sent, so the item is found again by SKU.
    async fn remember(&self, r: &SinkRequest, known: &KnownItem) {
        let write = RowWrite {
            table: ITEMS_TABLE.into(),
            key: r.item_key(),
            value: serde_json::to_vec(known).ok(),
        };
        if let Err(e) = self.rows.put(vec![write]).await {
            tracing::warn!(tenant = %r.tenant, retailer_id = %r.request.retailer_id, error = %e, "remembering a Mercado Libre item");
        }
    }
}

fn token_failure(e: TokenError) -> Failure {
    match e {
        TokenError::NeedsReauth(why) => Failure::NeedsReauth(why),
        TokenError::Call(e) => Failure::from(e),
    }
}

impl ChannelService for MercadoLibreService {
    fn channel(&self) -> Channel {
        Channel::MercadoLibre
    }

    /// A connection with a seller's grant is this connector's; one without is an external
    /// adapter's (it lists the items with credentials porch does not hold).
    fn serves<'a>(
        &'a self,
        tenant: &'a TenantId,
        request: &'a ListingRequested,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let accounts = self
                .accounts
                .of(tenant)
                .await
                .map_err(|e| format!("reading the channel accounts of {tenant}: {e}"))?;
            Ok(accounts
                .get(Channel::MercadoLibre, &request.region)
                .is_some_and(|a| a.mercadolibre.is_some()))
        })
    }

    fn submit<'a>(
        &'a self,
        batch: &'a [SinkRequest],
        retrier: &'a Retrier,
    ) -> BoxFuture<'a, Vec<ItemResult>> {
        Box::pin(async move {
            // A batch never holds two requests for one item, so its requests may run side by
            // side; results come back in the batch's order. (The futures are made before the
            // stream, so no closure is part of the future's type: it stays Send.)
            let requests: Vec<_> = batch.iter().map(|r| self.act(r, retrier)).collect();
            futures::stream::iter(requests)
                .buffered(self.config.calls_per_batch)
                .collect::<Vec<_>>()
                .await
        })
    }
}
