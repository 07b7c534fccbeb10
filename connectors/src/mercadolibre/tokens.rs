//! Sellers' access tokens. Mercado Libre's access tokens last hours; a refresh
//! (`POST /oauth/token`, `grant_type=refresh_token`) gives a new access token AND a new refresh
//! token, and the refresh token just used is spent: presenting it again is `invalid_grant`, and
//! the seller must connect the app again. So a seller's refresh happens once, wherever porch
//! runs, and its result is stored before it is used:
//!
//! - In the process, one refresh per seller at a time: callers that need one wait on the
//!   seller's lock and find the new token when they get it.
//! - Across processes, the seller's row in [`AUTH_TABLE`] holds the current pair, written only
//!   by compare-and-set ([`RowStore::compare_and_set`]). A process takes a short lease on the
//!   row (a compare-and-set that names it holder until a deadline), refreshes with the refresh
//!   token of the very row it leased, and writes the new pair with the lease released in one
//!   compare-and-set, before anything uses it. A process that finds the row leased waits and
//!   reads it again; a lease whose holder died expires.
//! - Mercado Libre refusing the refresh token (`invalid_grant`) marks the row NEEDS_REAUTH: no
//!   call is made for the seller from then on (its listings show NEEDS_REAUTH, and the seller
//!   is listed under [`reauth_marks_prefix`] for operators), until the account holds a new grant
//!   (the seller connected again), which the row then starts over from.
//!
//! The row starts from the grant the connect flow stored on the tenant's channel account
//! ([`MercadoLibreCredentials`]); the connector never writes that account, so an operator's
//! change to it and a refresh can never undo each other. The only window in which a rotated pair
//! can be lost is between Mercado Libre answering a refresh and the compare-and-set that stores
//! it (a crash there leaves the seller NEEDS_REAUTH), and nothing else happens in it.

use super::answer::redact;
use crate::accounts::{Accounts, MercadoLibreCredentials, Secret};
use crate::sink::{CallError, PortError, RetryClass, RowStore, Swap};
use porch_processors::store::RowWrite;
use porch_schemas::TenantId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `<tenant>/<user id>` → the seller's current token pair, lease and NEEDS_REAUTH mark.
pub const AUTH_TABLE: &str = "mercadolibre_auth";

/// A seller's row key in [`AUTH_TABLE`].
pub fn auth_key(tenant: &TenantId, user_id: &str) -> String {
    format!("{tenant}/{user_id}")
}

/// Where the sellers marked NEEDS_REAUTH are listed for operators: rows of the connectors'
/// status table under this prefix, `<prefix><tenant>/<user id>` → [`ReauthMark`] (one partition
/// to scan on CQL, as a connector's instances are).
pub fn reauth_marks_prefix() -> String {
    crate::sink::status::status_prefix(&format!("{}-reauth", super::NAME))
}

/// One seller waiting for a new grant, as listed under [`reauth_marks_prefix`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReauthMark {
    pub why: String,
    pub since_ms: i64,
}

/// How long a token this process holds is used before the row is read again (another process
/// may have marked the seller NEEDS_REAUTH, or the seller connected again).
const RECHECK: Duration = Duration::from_secs(5);
/// The wait between reads of a row another process is refreshing.
const POLL: Duration = Duration::from_millis(50);
/// Tries to store a rotated pair before giving it up (it is lost then: NEEDS_REAUTH).
const STORE_TRIES: u32 = 6;

/// A seller's row: what every process agrees on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AuthRow {
    /// The grant's refresh token this row started from: the account naming another one means
    /// the seller connected again.
    seed: Secret,
    /// The one refresh token that works now.
    refresh_token: Secret,
    access_token: Option<Secret>,
    /// When `access_token` expires, in milliseconds since the Unix epoch.
    expires_at_ms: i64,
    /// Refreshes since the seed.
    refreshes: u64,
    lease: Option<Lease>,
    needs_reauth: Option<Reauth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lease {
    holder: String,
    until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reauth {
    since_ms: i64,
    why: String,
}

impl AuthRow {
    fn seeded(grant: &MercadoLibreCredentials) -> Self {
        AuthRow {
            seed: grant.refresh_token.clone(),
            refresh_token: grant.refresh_token.clone(),
            access_token: grant.access_token.clone(),
            expires_at_ms: grant.access_expires_at_ms.unwrap_or(0),
            refreshes: 0,
            lease: None,
            needs_reauth: None,
        }
    }

    /// The access token, if it is good for longer than `margin_ms` and is not `refused`.
    fn usable(&self, now_ms: i64, margin_ms: i64, refused: Option<&Secret>) -> Option<Secret> {
        let access = self.access_token.as_ref().filter(|a| !a.is_empty())?;
        (self.expires_at_ms - margin_ms > now_ms && Some(access) != refused).then(|| access.clone())
    }

    /// Whether `other` is this row's pair (the same grant, no refresh since).
    fn same_pair(&self, other: &AuthRow) -> bool {
        self.seed == other.seed && self.refreshes == other.refreshes
    }
}

/// What an operator may see of a seller's tokens: nothing secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthState {
    /// Why the seller must connect again, when it must.
    pub needs_reauth: Option<String>,
    pub needs_reauth_since_ms: Option<i64>,
    pub access_expires_at_ms: i64,
    pub refreshes: u64,
    /// Whether a process holds the seller's refresh now.
    pub refreshing: bool,
}

/// A seller's token state, as the admin API shows it (`None`: never used).
pub async fn auth_state(
    rows: &dyn RowStore,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Option<AuthState>, PortError> {
    let keys = [auth_key(tenant, user_id)];
    let Some(bytes) = rows.get_many(AUTH_TABLE, &keys).await?.pop().flatten() else {
        return Ok(None);
    };
    decode_auth_state(&bytes, None).map(Some).map_err(PortError)
}

/// The token state in a seller's auth row (its bytes, read from [`AUTH_TABLE`]). With the grant
/// the tenant holds now, a NEEDS_REAUTH mark from an older grant is not shown: the seller
/// connected again, and the next call starts from the new grant.
pub fn decode_auth_state(
    bytes: &[u8],
    grant: Option<&MercadoLibreCredentials>,
) -> Result<AuthState, String> {
    let row: AuthRow = serde_json::from_slice(bytes)
        .map_err(|e| format!("a Mercado Libre auth row does not decode: {e}"))?;
    let reconnected = grant.is_some_and(|g| g.refresh_token != row.seed);
    let reauth = row.needs_reauth.as_ref().filter(|_| !reconnected);
    Ok(AuthState {
        needs_reauth: reauth.map(|r| r.why.clone()),
        needs_reauth_since_ms: reauth.map(|r| r.since_ms),
        access_expires_at_ms: row.expires_at_ms,
        refreshes: row.refreshes,
        refreshing: row.lease.is_some_and(|l| l.until_ms > now_ms()),
    })
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenError {
    /// The seller must connect the app again; no call is made for it until then.
    NeedsReauth(String),
    /// This try failed: retry it, or give it up, as classified.
    Call(CallError),
}

/// The seller a token is for.
#[derive(Clone, Copy)]
pub struct Seller<'a> {
    pub tenant: &'a TenantId,
    pub credentials: &'a MercadoLibreCredentials,
}

/// One process's keeper of sellers' tokens.
pub struct Tokens {
    http: reqwest::Client,
    token_url: String,
    rows: Arc<dyn RowStore>,
    accounts: Arc<Accounts>,
    /// This keeper's name on the leases it takes.
    holder: String,
    margin_ms: i64,
    lease_ms: i64,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One seller in this process.
#[derive(Default)]
struct Slot {
    /// Held while the row is read, leased or refreshed: one at a time per seller.
    flight: tokio::sync::Mutex<()>,
    held: Mutex<Option<Held>>,
}

#[derive(Clone)]
struct Held {
    access: Secret,
    expires_at_ms: i64,
    read_at: Instant,
}

impl Slot {
    fn fresh(&self, margin_ms: i64, refused: Option<&Secret>) -> Option<Secret> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|h| h.read_at.elapsed() < RECHECK)
            .filter(|h| h.expires_at_ms - margin_ms > now_ms())
            .filter(|h| Some(&h.access) != refused)
            .map(|h| h.access.clone())
    }

    fn hold(&self, held: Option<Held>) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = held;
    }
}

fn now_ms() -> i64 {
    porch_schemas::now_micros() / 1_000
}

/// A name for this keeper that no other process or keeper shares.
fn holder_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{:x}-{}",
        std::process::id(),
        porch_schemas::now_micros(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn store_failure(e: PortError) -> TokenError {
    TokenError::Call(CallError::retry(
        RetryClass::ServerError,
        format!("reading or writing a Mercado Libre seller's tokens: {e}"),
    ))
}

/// What the token endpoint said to a refresh.
enum Exchanged {
    Pair {
        access_token: Secret,
        refresh_token: Secret,
        expires_in: i64,
    },
    InvalidGrant,
    Failed(CallError),
}

impl Tokens {
    pub fn new(
        http: reqwest::Client,
        token_url: &str,
        rows: Arc<dyn RowStore>,
        accounts: Arc<Accounts>,
        margin: Duration,
        lease: Duration,
    ) -> Self {
        Tokens {
            http,
            token_url: token_url.to_string(),
            rows,
            accounts,
            holder: holder_name(),
            margin_ms: margin.as_millis() as i64,
            lease_ms: lease.as_millis() as i64,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// An access token for the seller, refreshed first if it is about to expire or is
    /// `refused` (Mercado Libre answered 401 to it).
    pub async fn access_token(
        &self,
        seller: Seller<'_>,
        refused: Option<&Secret>,
    ) -> Result<Secret, TokenError> {
        let key = auth_key(seller.tenant, &seller.credentials.user_id);
        let slot = self.slot(&key);
        if let Some(access) = slot.fresh(self.margin_ms, refused) {
            return Ok(access);
        }
        let _flight = slot.flight.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(access) = slot.fresh(self.margin_ms, refused) {
            return Ok(access);
        }
        match self.settle(&key, seller, refused).await {
            Ok((access, expires_at_ms)) => {
                slot.hold(Some(Held {
                    access: access.clone(),
                    expires_at_ms,
                    read_at: Instant::now(),
                }));
                Ok(access)
            }
            Err(e) => {
                slot.hold(None);
                Err(e)
            }
        }
    }

    /// Marks the seller NEEDS_REAUTH after Mercado Libre refused `refused`, a token just
    /// refreshed (unless the row moved on since: another process refreshed, or the seller
    /// connected again).
    pub async fn refused_after_refresh(&self, seller: Seller<'_>, refused: &Secret, why: &str) {
        let key = auth_key(seller.tenant, &seller.credentials.user_id);
        self.slot(&key).hold(None);
        for _ in 0..STORE_TRIES {
            let Ok(Some(bytes)) = self.rows_get(&key).await else {
                return;
            };
            let Ok(row) = serde_json::from_slice::<AuthRow>(&bytes) else {
                return;
            };
            if row.access_token.as_ref() != Some(refused) || row.needs_reauth.is_some() {
                return;
            }
            let marked = AuthRow {
                needs_reauth: Some(Reauth {
                    since_ms: now_ms(),
                    why: why.to_string(),
                }),
                ..row
            };
            match self.swap(&key, Some(&bytes), &marked).await {
                Ok(Swap::Done) => {
                    tracing::warn!(tenant = %seller.tenant, user_id = %seller.credentials.user_id, %why, "a Mercado Libre seller needs to connect again");
                    self.list_reauth(&key, marked.needs_reauth.as_ref()).await;
                    return;
                }
                Ok(Swap::Conflict(_)) => continue,
                Err(_) => return,
            }
        }
    }

    /// Lists the seller (its [`AUTH_TABLE`] key) as waiting for a new grant, or takes it off.
    /// Only what operators read: the auth row is what every process acts on.
    async fn list_reauth(&self, key: &str, mark: Option<&Reauth>) {
        let value = mark.and_then(|m| {
            serde_json::to_vec(&ReauthMark {
                why: m.why.clone(),
                since_ms: m.since_ms,
            })
            .ok()
        });
        let write = RowWrite {
            table: crate::sink::status::STATUS_TABLE.into(),
            key: format!("{}{key}", reauth_marks_prefix()),
            value,
        };
        if let Err(e) = self.rows.put(vec![write]).await {
            tracing::warn!(error = %e, "listing a Mercado Libre seller's NEEDS_REAUTH for operators");
        }
    }

    async fn rows_get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let keys = [key.to_string()];
        Ok(self.rows.get_many(AUTH_TABLE, &keys).await?.pop().flatten())
    }

    async fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        row: &AuthRow,
    ) -> Result<Swap, PortError> {
        let value = serde_json::to_vec(row).map_err(PortError::of)?;
        self.rows
            .compare_and_set(AUTH_TABLE, key, expected, value)
            .await
    }

    /// The account's credentials as stored now, past the accounts' cache.
    async fn stored_credentials(
        &self,
        seller: Seller<'_>,
    ) -> Result<MercadoLibreCredentials, TokenError> {
        self.accounts.forget(seller.tenant);
        let accounts = self
            .accounts
            .of(seller.tenant)
            .await
            .map_err(store_failure)?;
        accounts
            .accounts
            .iter()
            .filter_map(|a| a.mercadolibre.as_ref())
            .find(|c| c.user_id == seller.credentials.user_id)
            .cloned()
            .ok_or_else(|| {
                TokenError::NeedsReauth(format!(
                    "Mercado Libre seller {} is no longer connected for tenant {}",
                    seller.credentials.user_id, seller.tenant
                ))
            })
    }

    /// The row's token, or the row's refresh done (by this process, or by another while this
    /// one waited).
    async fn settle(
        &self,
        key: &str,
        seller: Seller<'_>,
        refused: Option<&Secret>,
    ) -> Result<(Secret, i64), TokenError> {
        let mut grant = seller.credentials.clone();
        let mut grant_read = false;
        // Long enough for a holder to finish (a lease lasts `lease_ms`) and for its lease to
        // expire should it have died.
        let give_up = Instant::now() + Duration::from_millis(2 * self.lease_ms as u64);
        loop {
            let bytes = self.rows_get(key).await.map_err(store_failure)?;
            let Some(bytes) = bytes else {
                // The first call for this grant: the row starts from it.
                self.swap(key, None, &AuthRow::seeded(&grant))
                    .await
                    .map_err(store_failure)?;
                continue;
            };
            let row: AuthRow = serde_json::from_slice(&bytes).map_err(|e| {
                TokenError::Call(CallError::Permanent(format!(
                    "the tokens of Mercado Libre seller {} do not decode: {e}",
                    grant.user_id
                )))
            })?;
            if row.seed != grant.refresh_token || row.needs_reauth.is_some() {
                // Either the seller connected again (a new grant), or the row needs one: look
                // at the account as stored now, not as cached.
                if !grant_read {
                    grant = self.stored_credentials(seller).await?;
                    grant_read = true;
                    continue;
                }
                if row.seed != grant.refresh_token {
                    tracing::info!(tenant = %seller.tenant, user_id = %grant.user_id, "a Mercado Libre seller connected again: its tokens start from the new grant");
                    self.swap(key, Some(&bytes), &AuthRow::seeded(&grant))
                        .await
                        .map_err(store_failure)?;
                    if row.needs_reauth.is_some() {
                        self.list_reauth(key, None).await;
                    }
                    continue;
                }
                let why = row.needs_reauth.map(|r| r.why).unwrap_or_default();
                return Err(TokenError::NeedsReauth(format!(
                    "Mercado Libre seller {} needs to connect again: {why}",
                    grant.user_id
                )));
            }
            let now = now_ms();
            if let Some(access) = row.usable(now, self.margin_ms, refused) {
                return Ok((access, row.expires_at_ms));
            }
            if let Some(lease) = &row.lease {
                if lease.until_ms > now && lease.holder != self.holder {
                    if Instant::now() >= give_up {
                        return Err(TokenError::Call(CallError::retry(
                            RetryClass::Auth,
                            format!(
                                "another process is refreshing the tokens of Mercado Libre \
                                 seller {} and has not finished",
                                grant.user_id
                            ),
                        )));
                    }
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
            let leased = AuthRow {
                lease: Some(Lease {
                    holder: self.holder.clone(),
                    until_ms: now + self.lease_ms,
                }),
                ..row
            };
            match self
                .swap(key, Some(&bytes), &leased)
                .await
                .map_err(store_failure)?
            {
                Swap::Conflict(_) => continue,
                Swap::Done => return self.refresh(key, seller, &grant, leased).await,
            }
        }
    }

    /// Refreshes with the leased row's refresh token, and stores what came of it (releasing
    /// the lease in the same write).
    async fn refresh(
        &self,
        key: &str,
        seller: Seller<'_>,
        grant: &MercadoLibreCredentials,
        leased: AuthRow,
    ) -> Result<(Secret, i64), TokenError> {
        let asked_at = now_ms();
        let released = AuthRow {
            lease: None,
            ..leased.clone()
        };
        match self.exchange(grant, &leased.refresh_token).await {
            Exchanged::Pair {
                access_token,
                refresh_token,
                expires_in,
            } => {
                let rotated = AuthRow {
                    refresh_token,
                    access_token: Some(access_token.clone()),
                    expires_at_ms: asked_at + expires_in.saturating_mul(1_000),
                    refreshes: leased.refreshes + 1,
                    ..released
                };
                // Stored before it is used: the refresh token just spent is worthless, and this
                // pair exists nowhere else.
                if let Err(e) = self.store_leased(key, &leased, &rotated).await {
                    tracing::error!(tenant = %seller.tenant, user_id = %grant.user_id, error = %e, "the rotated tokens of a Mercado Libre seller could not be stored: it will need to connect again");
                    return Err(TokenError::Call(CallError::retry(
                        RetryClass::ServerError,
                        format!(
                            "the rotated tokens of Mercado Libre seller {} could not be stored",
                            grant.user_id
                        ),
                    )));
                }
                tracing::debug!(tenant = %seller.tenant, user_id = %grant.user_id, refreshes = rotated.refreshes, "refreshed a Mercado Libre seller's tokens");
                Ok((access_token, rotated.expires_at_ms))
            }
            Exchanged::InvalidGrant => {
                let why = "Mercado Libre refused its refresh token (invalid_grant)";
                let marked = AuthRow {
                    needs_reauth: Some(Reauth {
                        since_ms: now_ms(),
                        why: why.into(),
                    }),
                    ..released
                };
                if let Err(e) = self.store_leased(key, &leased, &marked).await {
                    tracing::warn!(error = %e, "marking a Mercado Libre seller NEEDS_REAUTH");
                }
                self.list_reauth(key, marked.needs_reauth.as_ref()).await;
                tracing::warn!(tenant = %seller.tenant, user_id = %grant.user_id, "a Mercado Libre seller needs to connect again: its refresh token was refused");
                Err(TokenError::NeedsReauth(format!(
                    "Mercado Libre seller {} needs to connect again: {why}",
                    grant.user_id
                )))
            }
            Exchanged::Failed(e) => {
                // Nothing was spent (a refusal spends nothing; the token endpoint is asked again
                // with the same token on the next try): let the next holder go at once.
                let _ = self.store_leased(key, &leased, &released).await;
                Err(TokenError::Call(e))
            }
        }
    }

    /// Writes `next` over the row this keeper leased. Should the row have changed meanwhile
    /// without a new pair (a lease that outlived its time, taken over but not used yet), it is
    /// written over that; a new pair or a new grant there wins.
    async fn store_leased(
        &self,
        key: &str,
        leased: &AuthRow,
        next: &AuthRow,
    ) -> Result<(), PortError> {
        let mut expected = serde_json::to_vec(leased).map_err(PortError::of)?;
        let mut last = PortError("no try made".into());
        for attempt in 0..STORE_TRIES {
            match self.swap(key, Some(&expected), next).await {
                Ok(Swap::Done) => return Ok(()),
                Ok(Swap::Conflict(Some(current))) => {
                    let same = serde_json::from_slice::<AuthRow>(&current)
                        .is_ok_and(|c| c.same_pair(leased));
                    if !same {
                        return Err(PortError(
                            "the seller's tokens changed under the lease".into(),
                        ));
                    }
                    expected = current;
                }
                Ok(Swap::Conflict(None)) => {
                    return Err(PortError("the seller's token row is gone".into()))
                }
                Err(e) => {
                    last = e;
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        Err(last)
    }

    /// `POST /oauth/token` with `grant_type=refresh_token`.
    async fn exchange(&self, grant: &MercadoLibreCredentials, refresh: &Secret) -> Exchanged {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", grant.client_id.as_str()),
            ("client_secret", grant.client_secret.expose()),
            ("refresh_token", refresh.expose()),
        ];
        let sent = self
            .http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return Exchanged::Failed(CallError::from_transport(&e)),
        };
        let status = resp.status().as_u16();
        let text = match resp.text().await {
            Ok(text) => text,
            Err(e) => return Exchanged::Failed(CallError::from_transport(&e)),
        };
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if (200..300).contains(&status) {
            let secret = |k: &str| body[k].as_str().filter(|s| !s.is_empty()).map(Secret::new);
            return match (secret("access_token"), secret("refresh_token")) {
                (Some(access_token), Some(refresh_token)) => Exchanged::Pair {
                    access_token,
                    refresh_token,
                    expires_in: body["expires_in"].as_i64().unwrap_or(21_600),
                },
                _ => Exchanged::Failed(CallError::Permanent(
                    "Mercado Libre's token endpoint answered without a token pair".into(),
                )),
            };
        }
        let error = body["error"].as_str().unwrap_or("");
        if error == "invalid_grant" {
            return Exchanged::InvalidGrant;
        }
        let described = body["error_description"]
            .as_str()
            .or(body["message"].as_str())
            .unwrap_or("");
        let message = redact(
            &redact(
                &format!(
                    "Mercado Libre's token endpoint answered HTTP {status} ({error}): {described}"
                ),
                refresh.expose(),
            ),
            grant.client_secret.expose(),
        );
        let class = match status {
            429 => Some(RetryClass::RateLimited),
            500..=599 => Some(RetryClass::ServerError),
            _ => None,
        };
        match class {
            Some(class) => Exchanged::Failed(CallError::Retry {
                class,
                after: None,
                message,
            }),
            // invalid_client, invalid_request…: the app's settings, not the seller's grant.
            None => Exchanged::Failed(CallError::Permanent(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AuthRow {
        AuthRow {
            seed: Secret::new("TG-seed"),
            refresh_token: Secret::new("TG-now"),
            access_token: Some(Secret::new("APP_USR-now")),
            expires_at_ms: 10_000,
            refreshes: 2,
            lease: None,
            needs_reauth: None,
        }
    }

    #[test]
    fn a_token_is_used_only_while_it_is_good_for_longer_than_the_margin() {
        let r = row();
        assert!(r.usable(1_000, 5_000, None).is_some());
        assert!(r.usable(6_000, 5_000, None).is_none(), "within the margin");
        let refused = Secret::new("APP_USR-now");
        assert!(r.usable(1_000, 5_000, Some(&refused)).is_none());
    }

    #[test]
    fn the_row_never_prints_its_tokens() {
        let shown = format!("{:?}", row());
        assert!(
            !shown.contains("TG-now") && !shown.contains("APP_USR-now"),
            "{shown}"
        );
    }
}
