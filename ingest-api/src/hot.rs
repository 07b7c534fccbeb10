//! Hot SKUs (DESIGN §9): during a flash sale one SKU's reservation requests can outnumber every
//! other SKU's. Those of a hot SKU travel on a lane of their own (`inventory.hot.requests`,
//! read by the inventory processor beside its commands topic, co-partitioned), so that other
//! SKUs' requests never queue behind them. A SKU is hot when its merchant flags it
//! (`PUT /v1/inventory/{sku}/hot`), or while its requests arrive faster than
//! `[reservations] hot_requests_per_sec` at this API instance (and `hot_for_secs` after). A
//! release or a commit follows its reservation's lane, so it never overtakes it.

use crate::auth::{Caller, Writer};
use crate::config::ReservationSettings;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::reads::read;
use crate::AppState;
use axum::extract::State;
use axum::routing::put;
use axum::{Json, Router};
use porch_processors::store::{key, tables, RowWrite};
use porch_schemas::{now_micros, Sku, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// How long a merchant's flag, read from the store, is trusted before it is read again.
const FLAG_FRESH: Duration = Duration::from_secs(2);
/// SKUs whose rate is tracked at most; the quietest are forgotten first.
const MAX_TRACKED: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/inventory/{sku}/hot", put(flag).get(shown))
}

/// A merchant's flag, as stored: `tenant/sku` → this.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flag {
    hot: bool,
    at: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HotBody {
    /// True puts the SKU's reservations on the hot lane until it is set false.
    pub hot: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HotView {
    pub sku: String,
    /// On the hot lane now.
    pub hot: bool,
    /// Flagged by the merchant.
    pub flagged: bool,
    /// Detected by its request rate at this API instance.
    pub detected: bool,
}

struct Seen {
    window: Instant,
    count: u32,
    hot_until: Option<Instant>,
}

/// Which SKUs are hot, as this API instance sees them.
pub struct HotSkus {
    settings: ReservationSettings,
    seen: Mutex<HashMap<(TenantId, Sku), Seen>>,
    flags: Mutex<HashMap<(TenantId, Sku), (bool, Instant)>>,
}

impl HotSkus {
    pub fn new(settings: &ReservationSettings) -> Self {
        Self {
            settings: settings.clone(),
            seen: Mutex::default(),
            flags: Mutex::default(),
        }
    }

    /// Counts one reservation request for the SKU; whether its rate makes it hot.
    fn observe(&self, tenant: &TenantId, sku: &Sku) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, s| s.hot_until.is_some_and(|t| t > now));
        }
        let s = seen.entry((tenant.clone(), sku.clone())).or_insert(Seen {
            window: now,
            count: 0,
            hot_until: None,
        });
        if now.duration_since(s.window) >= Duration::from_secs(1) {
            s.window = now;
            s.count = 0;
        }
        s.count += 1;
        if s.count > self.settings.hot_requests_per_sec {
            s.hot_until = Some(now + Duration::from_secs(self.settings.hot_for_secs));
        }
        s.hot_until.is_some_and(|t| t > now)
    }

    fn detected(&self, tenant: &TenantId, sku: &Sku) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&(tenant.clone(), sku.clone()))
            .and_then(|s| s.hot_until)
            .is_some_and(|t| t > Instant::now())
    }

    async fn flagged(
        &self,
        state: &AppState,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<bool, ApiError> {
        let k = (tenant.clone(), sku.clone());
        let cached = self
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
            .filter(|(_, at)| at.elapsed() < FLAG_FRESH)
            .map(|(hot, _)| *hot);
        if let Some(hot) = cached {
            return Ok(hot);
        }
        let flag: Option<Flag> = read(
            state,
            tables::HOT_SKU,
            key(&[tenant.as_str(), sku.as_str()]),
        )
        .await?;
        let hot = flag.is_some_and(|f| f.hot);
        self.flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, (hot, Instant::now()));
        Ok(hot)
    }

    /// Counts a new reservation request for the SKU; whether it goes on the hot lane.
    pub async fn reserve_on_hot_lane(
        &self,
        state: &AppState,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<bool, ApiError> {
        let detected = self.observe(tenant, sku);
        Ok(detected || self.flagged(state, tenant, sku).await?)
    }
}

/// Flags a SKU hot (its merchant expects a flash sale), or clears the flag (admin keys).
#[utoipa::path(
    put,
    path = "/v1/inventory/{sku}/hot",
    tag = "inventory",
    params(("sku" = String, Path, description = "SKU")),
    request_body = HotBody,
    responses(
        (status = 200, body = HotView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn flag(
    State(state): State<AppState>,
    writer: Writer,
    ApiPath(sku): ApiPath<String>,
    body: ApiJson<HotBody>,
) -> Result<Json<HotView>, ApiError> {
    writer.require_admin()?;
    let sku = Sku::parse(sku).map_err(|_| ApiError::not_found("sku"))?;
    let tenant = writer.caller().tenant().clone();
    let row = RowWrite {
        table: tables::HOT_SKU.into(),
        key: key(&[tenant.as_str(), sku.as_str()]),
        value: Some(
            serde_json::to_vec(&Flag {
                hot: body.value.hot,
                at: now_micros(),
            })
            .map_err(|e| ApiError::internal(&e))?,
        ),
    };
    state.sink.write(vec![row], vec![]).await?;
    state
        .hot
        .flags
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            (tenant.clone(), sku.clone()),
            (body.value.hot, Instant::now()),
        );
    Ok(Json(view(&state, &tenant, sku, body.value.hot)))
}

/// Whether a SKU's reservations take the hot lane now, and why.
#[utoipa::path(
    get,
    path = "/v1/inventory/{sku}/hot",
    tag = "inventory",
    params(("sku" = String, Path, description = "SKU")),
    responses((status = 200, body = HotView)),
    security(("bearer" = []))
)]
pub async fn shown(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(sku): ApiPath<String>,
) -> Result<Json<HotView>, ApiError> {
    let sku = Sku::parse(sku).map_err(|_| ApiError::not_found("sku"))?;
    let tenant = caller.tenant().clone();
    let flagged = state.hot.flagged(&state, &tenant, &sku).await?;
    Ok(Json(view(&state, &tenant, sku, flagged)))
}

fn view(state: &AppState, tenant: &TenantId, sku: Sku, flagged: bool) -> HotView {
    let detected = state.hot.detected(tenant, &sku);
    HotView {
        sku: sku.to_string(),
        hot: flagged || detected,
        flagged,
        detected,
    }
}
