//! A tenant's sales channels (DESIGN §8): its connection to each channel per region (Meta: the
//! catalog and its access token), set by the tenant's admin or the operator without a restart,
//! and the outcomes external adapters report.
//!
//! A change is written as the tenant's accounts row (secrets included, for the connectors) and,
//! in the same write, sent to every partition of `channel.settings` without its secrets, so that
//! every task of the channel processor decides the tenant's listings again. Secrets are never
//! shown: a view says only whether a token is set.

use crate::auth::{Adapter, Caller, Operator, Writer};
use crate::error::{ApiError, Problem, Violations};
use crate::extract::{ApiJson, ApiPath};
use crate::reads::{blocking, offer_ref, read};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use porch_connectors::accounts::{
    ChannelAccount, ChannelAccounts, MercadoLibreCredentials, Secret, ACCOUNTS_TABLE,
};
use porch_connectors::mercadolibre::{auth_key, decode_auth_state, AUTH_TABLE};
use porch_processors::modules::{CHANNEL_OUTCOMES, CHANNEL_SETTINGS};
use porch_processors::store::{Published, RowWrite};
use porch_schemas::{
    now_micros, Channel, ChannelConnection, ChannelSettingsChanged, EventEnvelope, EventRecord,
    ListingOutcome, OfferId, Reason, RegionCode, TenantId,
};
use porch_topics::product_key;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use utoipa::ToSchema;

const MAX_ACCOUNT: usize = 100;
const MAX_TOKEN: usize = 4_096;
const MAX_URL: usize = 2_048;
const MAX_OUTCOMES: usize = 500;
const MAX_ISSUES: usize = 50;
const MAX_TEXT: usize = 2_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/channels", get(list_connections))
        .route(
            "/v1/channels/{channel}/regions/{region}",
            put(connect).delete(disconnect),
        )
        .route(
            "/v1/tenants/{tenant}/channels/{channel}/regions/{region}",
            put(operator_connect),
        )
        .route("/v1/channels/{channel}/outcomes", post(report_outcomes))
}

/// A connection as anyone may see it: the token only as set or not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectionView {
    pub channel: String,
    pub region: String,
    /// The channel's account: Meta's catalog id.
    pub account: String,
    pub enabled: bool,
    pub link_template: Option<String>,
    pub access_token_set: bool,
    /// Mercado Libre: a seller's OAuth grant is stored (its secrets are never shown).
    pub grant_set: bool,
    /// Why the channel refused porch's authorisation (NEEDS_REAUTH: Mercado Libre refused the
    /// seller's refresh token); the connection's listings wait until a new grant is set.
    pub needs_reauth: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionView>,
    /// Increases with every change.
    pub version: i64,
}

fn view(a: &ChannelAccount) -> ConnectionView {
    ConnectionView {
        channel: a.connection.channel.to_string(),
        region: a.connection.region.to_string(),
        account: a.connection.account.clone(),
        enabled: a.connection.enabled,
        link_template: a.connection.link_template.clone(),
        access_token_set: a.access_token.as_ref().is_some_and(|t| !t.is_empty()),
        grant_set: a.mercadolibre.is_some(),
        needs_reauth: None,
    }
}

/// The connection's view with its NEEDS_REAUTH mark, read from the connector's token row.
async fn view_with_auth(
    state: &AppState,
    tenant: &TenantId,
    a: &ChannelAccount,
) -> Result<ConnectionView, ApiError> {
    let mut shown = view(a);
    if let Some(grant) = &a.mercadolibre {
        shown.needs_reauth = reauth_of(state, tenant, grant).await?;
    }
    Ok(shown)
}

/// Why a Mercado Libre seller must connect again, if it must.
pub async fn reauth_of(
    state: &AppState,
    tenant: &TenantId,
    grant: &MercadoLibreCredentials,
) -> Result<Option<String>, ApiError> {
    let k = auth_key(tenant, &grant.user_id);
    let row = blocking(state, move |store| Ok(store.get_raw(AUTH_TABLE, &k)?)).await?;
    Ok(row
        .and_then(|bytes| decode_auth_state(&bytes, Some(grant)).ok())
        .and_then(|auth| auth.needs_reauth))
}

/// Connecting a channel in a region.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectBody {
    /// The channel's account: Meta's catalog id.
    pub account: String,
    /// The credential (Meta: a system user's token). Absent keeps the one set before.
    pub access_token: Option<String>,
    /// False keeps the connection but unpublishes every listing from it. True by default.
    pub enabled: Option<bool>,
    /// The product page listings link to; {tenant}, {product}, {sku} and {offer} are replaced.
    pub link_template: Option<String>,
    /// Mercado Libre: the seller's OAuth grant (the `account` is the seller's user id), for
    /// porch's own connector; a connection without one is left to an external adapter. A new
    /// one reconnects a seller whose grant was refused (NEEDS_REAUTH); absent keeps the one set
    /// before.
    pub grant: Option<GrantBody>,
}

/// A seller's OAuth grant for Mercado Libre: the app's credentials and the refresh token the
/// seller's authorization gave it. porch rotates the refresh token from then on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

// Never printed with its token.
impl std::fmt::Debug for ConnectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectBody")
            .field("account", &self.account)
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("enabled", &self.enabled)
            .field("link_template", &self.link_template)
            .field("grant", &self.grant.as_ref().map(|_| "***"))
            .finish()
    }
}

/// One writer per tenant at a time in this process, so two changes never lose each other.
fn tenant_lock(tenant: &TenantId) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(tenant.clone())
        .or_default()
        .clone()
}

async fn accounts_of(state: &AppState, tenant: &TenantId) -> Result<ChannelAccounts, ApiError> {
    Ok(
        read::<ChannelAccounts>(state, ACCOUNTS_TABLE, tenant.to_string())
            .await?
            .unwrap_or_default(),
    )
}

/// The tenant's channel connections (any key of the tenant).
#[utoipa::path(
    get,
    path = "/v1/channels",
    tag = "channels",
    responses((status = 200, body = ConnectionList)),
    security(("bearer" = []))
)]
pub async fn list_connections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ConnectionList>, ApiError> {
    let accounts = accounts_of(&state, caller.tenant()).await?;
    let mut connections = Vec::new();
    for a in &accounts.accounts {
        connections.push(view_with_auth(&state, caller.tenant(), a).await?);
    }
    Ok(Json(ConnectionList {
        connections,
        version: accounts.version,
    }))
}

/// Connects the tenant to a channel in a region, or changes the connection (admin keys).
#[utoipa::path(
    put,
    path = "/v1/channels/{channel}/regions/{region}",
    tag = "channels",
    params(("channel" = String, Path, description = "meta or mercadolibre"), ("region" = String, Path, description = "one of the tenant's regions")),
    request_body = ConnectBody,
    responses(
        (status = 200, body = ConnectionView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn connect(
    State(state): State<AppState>,
    writer: Writer,
    ApiPath((channel, region)): ApiPath<(String, String)>,
    body: ApiJson<ConnectBody>,
) -> Result<Json<ConnectionView>, ApiError> {
    writer.require_admin()?;
    let caller = writer.caller();
    let (channel, region) = checked_place(caller, &channel, &region)?;
    let change = Change::Connect(checked_body(body.value)?);
    apply(&state, caller.tenant(), channel, region, change)
        .await
        .map(Json)
}

/// The operator connects any tenant (as the tenant's admin would).
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/channels/{channel}/regions/{region}",
    tag = "channels",
    params(("tenant" = String, Path, description = "tenant id"), ("channel" = String, Path, description = "meta or mercadolibre"), ("region" = String, Path, description = "one of the tenant's regions")),
    request_body = ConnectBody,
    responses(
        (status = 200, body = ConnectionView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn operator_connect(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath((tenant, channel, region)): ApiPath<(String, String, String)>,
    body: ApiJson<ConnectBody>,
) -> Result<Json<ConnectionView>, ApiError> {
    let caller = TenantId::parse_tenant(&tenant)
        .ok()
        .and_then(|t| state.config.tenant(&t))
        .map(Caller::admin_of)
        .ok_or_else(|| ApiError::not_found(format!("tenant '{tenant}'")))?;
    let (channel, region) = checked_place(&caller, &channel, &region)?;
    let change = Change::Connect(checked_body(body.value)?);
    apply(&state, caller.tenant(), channel, region, change)
        .await
        .map(Json)
}

/// Removes the tenant's connection to a channel in a region (admin keys): porch stops managing
/// its listings there (they show BLOCKED); to take them down first, set `enabled` false.
#[utoipa::path(
    delete,
    path = "/v1/channels/{channel}/regions/{region}",
    tag = "channels",
    params(("channel" = String, Path, description = "meta or mercadolibre"), ("region" = String, Path, description = "one of the tenant's regions")),
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn disconnect(
    State(state): State<AppState>,
    writer: Writer,
    ApiPath((channel, region)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    writer.require_admin()?;
    let caller = writer.caller();
    let (channel, region) = checked_place(caller, &channel, &region)?;
    apply(&state, caller.tenant(), channel, region, Change::Remove).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn checked_place(
    caller: &Caller,
    channel: &str,
    region: &str,
) -> Result<(Channel, RegionCode), ApiError> {
    let mut v = Violations::default();
    let channel = v.check("channel", caller.parse_channel(channel));
    let region = v.check("region", caller.parse_region(region));
    if channel == Some(Channel::Storefront) {
        v.add(
            "channel",
            "the storefront is porch's own search: there is nothing to connect",
        );
    }
    v.finish()?;
    Ok((channel.expect("checked"), region.expect("checked")))
}

/// A connection's settings, checked.
struct Connect {
    account: String,
    access_token: Option<Secret>,
    enabled: bool,
    link_template: Option<String>,
    /// (client id, client secret, refresh token)
    grant: Option<(String, Secret, Secret)>,
}

enum Change {
    Connect(Connect),
    Remove,
}

fn checked_body(b: ConnectBody) -> Result<Connect, ApiError> {
    let mut v = Violations::default();
    let account = b.account.trim().to_string();
    v.ensure(
        !account.is_empty()
            && account.len() <= MAX_ACCOUNT
            && account
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "account",
        format!("1 to {MAX_ACCOUNT} of A-Z a-z 0-9 - _ ."),
    );
    if let Some(t) = &b.access_token {
        v.ensure(
            !t.is_empty() && t.len() <= MAX_TOKEN && t.chars().all(|c| c.is_ascii_graphic()),
            "access_token",
            format!("1 to {MAX_TOKEN} visible ASCII characters"),
        );
    }
    if let Some(l) = &b.link_template {
        let absolute = l.starts_with("https://") || l.starts_with("http://");
        v.ensure(
            absolute && l.len() <= MAX_URL && !l.chars().any(char::is_whitespace),
            "link_template",
            "an absolute http(s) URL without spaces",
        );
        let unknown = l
            .split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name))
            .find(|name| !["tenant", "product", "sku", "offer"].contains(name));
        if let Some(name) = unknown {
            v.add(
                "link_template",
                format!("{{{name}}} is not one of {{tenant}}, {{product}}, {{sku}}, {{offer}}"),
            );
        }
    }
    if let Some(g) = &b.grant {
        let visible = |t: &str| {
            !t.is_empty() && t.len() <= MAX_TOKEN && t.chars().all(|c| c.is_ascii_graphic())
        };
        for (field, value) in [
            ("grant.client_id", &g.client_id),
            ("grant.client_secret", &g.client_secret),
            ("grant.refresh_token", &g.refresh_token),
        ] {
            v.ensure(
                visible(value),
                field,
                format!("1 to {MAX_TOKEN} visible ASCII characters"),
            );
        }
    }
    v.finish()?;
    Ok(Connect {
        account,
        access_token: b.access_token.map(Secret::new),
        enabled: b.enabled.unwrap_or(true),
        link_template: b.link_template,
        grant: b.grant.map(|g| {
            (
                g.client_id,
                Secret::new(g.client_secret),
                Secret::new(g.refresh_token),
            )
        }),
    })
}

/// Applies a change to the tenant's accounts and sends the new settings to every partition of
/// `channel.settings`, in one write.
async fn apply(
    state: &AppState,
    tenant: &TenantId,
    channel: Channel,
    region: RegionCode,
    change: Change,
) -> Result<ConnectionView, ApiError> {
    let lock = tenant_lock(tenant);
    let _held = lock.lock().await;
    let mut accounts = accounts_of(state, tenant).await?;
    let at = accounts
        .accounts
        .iter()
        .position(|a| a.connection.channel == channel && a.connection.region == region);
    let shown = match change {
        Change::Remove => {
            let Some(i) = at else {
                return Err(ApiError::not_found(format!(
                    "a connection to {channel} in {region}"
                )));
            };
            let removed = accounts.accounts.remove(i);
            view(&removed)
        }
        Change::Connect(c) => {
            let previous_token = at.and_then(|i| accounts.accounts[i].access_token.clone());
            let previous_grant = at.and_then(|i| accounts.accounts[i].mercadolibre.clone());
            let grant = match c.grant {
                Some((client_id, client_secret, refresh_token)) => Some(MercadoLibreCredentials {
                    client_id,
                    client_secret,
                    user_id: c.account.clone(),
                    refresh_token,
                    access_token: None,
                    access_expires_at_ms: None,
                }),
                // The seller's user id is the account: another account needs its own grant.
                None => previous_grant.filter(|g| g.user_id == c.account),
            };
            let account = ChannelAccount {
                connection: ChannelConnection {
                    channel,
                    region: region.clone(),
                    account: c.account,
                    enabled: c.enabled,
                    link_template: c.link_template,
                },
                access_token: c.access_token.or(previous_token),
                mercadolibre: grant,
            };
            if channel == Channel::Meta && account.access_token.is_none() {
                return Err(ApiError::invalid(
                    "access_token",
                    "Meta needs an access token for the catalog",
                ));
            }
            let shown = view_with_auth(state, tenant, &account).await?;
            match at {
                Some(i) => accounts.accounts[i] = account,
                None => accounts.accounts.push(account),
            }
            shown
        }
    };
    accounts.version = now_micros().max(accounts.version + 1);
    let row = RowWrite {
        table: ACCOUNTS_TABLE.into(),
        key: tenant.to_string(),
        value: Some(serde_json::to_vec(&accounts).map_err(|e| ApiError::internal(&e))?),
    };
    let changed = ChannelSettingsChanged {
        version: accounts.version,
        connections: accounts.connections(),
    };
    let records = (0..state.topics.partitions())
        .map(|p| Published {
            topic: CHANNEL_SETTINGS.into(),
            partition: Some(p),
            key: tenant.to_string(),
            record: EventRecord {
                envelope: EventEnvelope {
                    event_id: format!("settings.{tenant}.{}.p{p}", accounts.version),
                    tenant: tenant.clone(),
                    aggregate_id: tenant.to_string(),
                    aggregate_version: accounts.version,
                    occurred_at: now_micros(),
                    causation_id: format!("settings.{tenant}.{}", accounts.version),
                    correlation_id: format!("settings.{tenant}.{}", accounts.version),
                },
                event: changed.clone().into(),
            },
        })
        .collect();
    state.sink.write(vec![row], records).await?;
    tracing::info!(%tenant, %channel, %region, version = accounts.version, "channel settings changed");
    Ok(shown)
}

/// Writes the channel connections of the config file where they differ from what is stored (at
/// start), through the same path as the API, so the config and the API never disagree for long.
pub async fn apply_configured(state: &AppState) -> Result<usize, String> {
    let mut changed = 0;
    for tenant in &state.config.tenants {
        let accounts = tenant
            .connections
            .iter()
            .map(|c| c.account())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        if accounts.is_empty() {
            continue;
        }
        changed += apply_tenant(state, &tenant.id, accounts)
            .await
            .map_err(|e| {
                format!(
                    "connecting tenant {}'s channels: {}",
                    tenant.id,
                    e.problem().detail
                )
            })?;
    }
    Ok(changed)
}

async fn apply_tenant(
    state: &AppState,
    tenant: &TenantId,
    configured: Vec<ChannelAccount>,
) -> Result<usize, ApiError> {
    let stored = accounts_of(state, tenant).await?;
    let mut changed = 0;
    for account in configured {
        if stored.accounts.contains(&account) {
            continue;
        }
        let c = &account.connection;
        apply(
            state,
            tenant,
            c.channel,
            c.region.clone(),
            Change::Connect(Connect {
                account: c.account.clone(),
                access_token: account.access_token.clone(),
                enabled: c.enabled,
                link_template: c.link_template.clone(),
                grant: None,
            }),
        )
        .await?;
        changed += 1;
    }
    Ok(changed)
}

/// One outcome an adapter reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    /// The offer (its retailer id on the channel).
    pub offer_id: String,
    /// The `version` of the ListingRequested this answers.
    pub version: i64,
    /// LIVE, REJECTED, UNPUBLISHED or NEEDS_REAUTH.
    pub result: String,
    /// The channel's issues, field by field (REJECTED).
    #[serde(default)]
    pub issues: Vec<IssueInput>,
    /// The channel's own id of the item.
    pub channel_item_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    pub code: Option<String>,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomesBody {
    pub outcomes: Vec<OutcomeInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomesAccepted {
    pub accepted: usize,
}

/// An external adapter reports what its channel confirmed (adapter or admin keys); the channel
/// processor folds each outcome into its listing's state.
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/outcomes",
    tag = "channels",
    params(("channel" = String, Path, description = "the adapter's channel")),
    request_body = OutcomesBody,
    responses(
        (status = 202, body = OutcomesAccepted),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn report_outcomes(
    State(state): State<AppState>,
    adapter: Adapter,
    ApiPath(channel): ApiPath<String>,
    body: ApiJson<OutcomesBody>,
) -> Result<(StatusCode, Json<OutcomesAccepted>), ApiError> {
    let caller = adapter.caller();
    let mut v = Violations::default();
    let channel = v.check("channel", caller.parse_channel(&channel));
    let outcomes = body.value.outcomes;
    v.ensure(
        (1..=MAX_OUTCOMES).contains(&outcomes.len()),
        "outcomes",
        format!("1 to {MAX_OUTCOMES} outcomes"),
    );
    let mut checked = Vec::new();
    for (i, o) in outcomes.into_iter().enumerate() {
        let field = |f: &str| format!("outcomes[{i}].{f}");
        let offer = v.check(&field("offer_id"), OfferId::parse(o.offer_id.clone()));
        v.ensure(
            o.version > 0,
            &field("version"),
            "the request's version, from 1",
        );
        v.ensure(
            ["LIVE", "REJECTED", "UNPUBLISHED", "NEEDS_REAUTH"].contains(&o.result.as_str()),
            &field("result"),
            "LIVE, REJECTED, UNPUBLISHED or NEEDS_REAUTH",
        );
        v.ensure(
            o.issues.len() <= MAX_ISSUES
                && o.issues.iter().all(|is| {
                    !is.message.is_empty()
                        && is.message.len() <= MAX_TEXT
                        && is.code.as_ref().is_none_or(|c| c.len() <= 100)
                        && is.field.as_ref().is_none_or(|f| f.len() <= 100)
                }),
            &field("issues"),
            format!("at most {MAX_ISSUES}, each with a message of 1 to {MAX_TEXT} characters"),
        );
        v.ensure(
            o.channel_item_id.as_ref().is_none_or(|id| id.len() <= 200),
            &field("channel_item_id"),
            "at most 200 characters",
        );
        if let Some(offer) = offer {
            checked.push((offer, o));
        }
    }
    v.finish()?;
    let channel = channel.expect("checked");
    let tenant = caller.tenant().clone();
    let routed = {
        let tenant = tenant.clone();
        blocking(&state, move |store| {
            checked
                .into_iter()
                .map(|(offer, o)| offer_ref(store, &tenant, &offer).map(|r| (r, o)))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?
    };
    let accepted = routed.len();
    let records = routed
        .into_iter()
        .map(|(r, o)| {
            let id = format!(
                "adapter.{tenant}.{}.{channel}.{}.{}",
                r.offer_id,
                o.version,
                o.result.to_ascii_lowercase()
            );
            Published {
                topic: CHANNEL_OUTCOMES.into(),
                partition: None,
                key: product_key(tenant.as_str(), r.product_id.as_str()),
                record: EventRecord {
                    envelope: EventEnvelope {
                        event_id: id.clone(),
                        tenant: tenant.clone(),
                        aggregate_id: format!("{}/{channel}", r.offer_id),
                        aggregate_version: o.version,
                        occurred_at: now_micros(),
                        causation_id: id.clone(),
                        correlation_id: id,
                    },
                    event: ListingOutcome {
                        channel,
                        offer_id: r.offer_id.clone(),
                        product_id: r.product_id.clone(),
                        retailer_id: r.offer_id.to_string(),
                        version: o.version,
                        result: o.result,
                        issues: o
                            .issues
                            .into_iter()
                            .map(|i| Reason {
                                code: i.code.unwrap_or_else(|| "CHANNEL_ISSUE".into()),
                                message: i.message,
                                field: i.field,
                            })
                            .collect(),
                        channel_item_id: o.channel_item_id,
                        reporter: format!("adapter:{channel}"),
                    }
                    .into(),
                },
            }
        })
        .collect();
    state.sink.write(vec![], records).await?;
    Ok((StatusCode::ACCEPTED, Json(OutcomesAccepted { accepted })))
}
