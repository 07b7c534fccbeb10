//! Inventory: locations and their regions, stock on hand, reservations, and availability checks.

use crate::auth::{Caller, Writer};
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand, ReasonView};
use crate::error::{ApiError, Problem, Violations};
use crate::extract::{ApiJson, ApiPath};
use crate::reads::{blocking, read, sku_owner};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use porch_processors::domain::activation::{ActivationState, ActivationStatus};
use porch_processors::domain::inventory::{Finished, HoldRow, InventoryState};
use porch_processors::store::{
    hold_key, inventory_key, key, sku_key, tables, Claim, ReservationRef, Store, SubmitOutcome,
};
use porch_schemas::{
    now_micros, Command, CommitReservation, LocationId, ProductId, Reason, RegionCode,
    ReleaseReservation, ReservationId, ReserveStock, SellerId, SetStock, Sku, StockLine, TenantId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// More stock than this at one location is surely a mistake.
const MAX_QUANTITY: i64 = 1_000_000_000;
const MAX_CHECK_ITEMS: usize = 100;
/// How long a hold lasts when the request does not say: a shopping cart's quarter of an hour.
const DEFAULT_TTL_SECONDS: i64 = 15 * 60;
const MAX_TTL_SECONDS: i64 = 7 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/locations", post(register_location))
        .route("/v1/inventory/{sku}/{location}", put(set_stock))
        .route("/v1/inventory/reservations", post(reserve_stock))
        .route(
            "/v1/inventory/reservations/{id}",
            delete(release_reservation).get(get_reservation),
        )
        .route(
            "/v1/inventory/reservations/{id}/commit",
            post(commit_reservation),
        )
        .route("/v1/products/check-availability", post(check_availability))
}

/// A stock location and the region it belongs to (for ever).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    pub location_id: String,
    pub region: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStockBody {
    pub on_hand: i64,
    pub seller: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    pub sku: String,
    /// Hold at this location…
    pub location: Option<String>,
    /// …or anywhere in this region: the most available locations first, all or nothing.
    pub region: Option<String>,
    pub quantity: i64,
    pub seller: Option<String>,
    /// How long the hold lasts unless it is released or committed: 1 s to 7 days, 15 minutes
    /// when absent. It then expires by itself.
    pub ttl_seconds: Option<i64>,
    /// The request's id, chosen by the caller so that a retry applies once (the same id for
    /// the same SKU is the same reservation); porch makes one otherwise.
    pub reservation_id: Option<String>,
}

/// A reservation and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    pub reservation_id: String,
    pub sku: String,
    pub seller: String,
    pub region: String,
    /// PENDING (not decided yet), HELD, FAILED (not enough stock), RELEASED, COMMITTED or
    /// EXPIRED.
    pub status: String,
    /// Units held now, by location.
    #[schema(value_type = Object)]
    pub holds: std::collections::BTreeMap<String, i64>,
    /// When the hold expires, micros since the epoch.
    pub expires_at: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    pub items: Vec<AvailabilityItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityItem {
    /// The product (every variant of it counts)…
    pub product_id: Option<String>,
    /// …or one of its SKUs.
    pub sku: Option<String>,
    /// Only this region; every region of the tenant by default.
    pub region: Option<String>,
    pub quantity: i64,
    /// Only this seller's stock; every seller's by default.
    pub seller: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AvailabilityAnswer {
    pub all_available: bool,
    pub items: Vec<ItemAvailability>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemAvailability {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub region: Option<String>,
    pub requested: i64,
    /// Units the buy box would sell now: stock less holds, of offers that are ACTIVE (or only
    /// out of stock).
    pub available: i64,
    pub is_available: bool,
    /// Why offers of the item do not sell (an inactive product, a compliance rejection, a
    /// withdrawn offer…), when it is not available.
    pub reasons: Vec<ReasonView>,
}

/// Registers a location in a region: 201 when new, 200 when already there, 409 in another region.
#[utoipa::path(
    post,
    path = "/v1/locations",
    tag = "inventory",
    request_body = LocationBody,
    responses(
        (status = 201, body = LocationBody),
        (status = 200, body = LocationBody),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn register_location(
    State(state): State<AppState>,
    writer: Writer,
    body: ApiJson<LocationBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let mut v = Violations::default();
    let location = v.check("location_id", LocationId::parse(b.location_id));
    let region = v.check("region", writer.caller().parse_region(b.region));
    let (Some(location), Some(region)) = (location, region) else {
        return Err(v.into_error());
    };
    let answer = LocationBody {
        location_id: location.to_string(),
        region: region.to_string(),
    };
    match state
        .sink
        .register_location(writer.caller().tenant().clone(), location, region)
        .await?
    {
        SubmitOutcome::Accepted { .. } => Ok((StatusCode::CREATED, Json(answer)).into_response()),
        SubmitOutcome::Replayed { .. } => Ok((StatusCode::OK, Json(answer)).into_response()),
        SubmitOutcome::Conflict(reason) => Err(ApiError::conflict(&reason)),
    }
}

/// The stock line of a seller's SKU at a location: the SKU's product and the location's region.
async fn stock_line(
    state: &AppState,
    tenant: &TenantId,
    seller: SellerId,
    sku: Sku,
    location: LocationId,
) -> Result<StockLine, ApiError> {
    let (product, region) = tokio::try_join!(
        sku_owner(state, tenant, &sku),
        read::<RegionCode>(
            state,
            tables::LOCATION,
            key(&[tenant.as_str(), location.as_str()])
        ),
    )?;
    let product_id = product.ok_or_else(|| ApiError::not_found(format!("sku '{sku}'")))?;
    let region = region.ok_or_else(|| {
        ApiError::invalid(
            "location",
            format!("location '{location}' is not registered: POST /v1/locations first"),
        )
    })?;
    Ok(StockLine {
        product_id,
        seller,
        sku,
        location,
        region,
    })
}

/// Sets the stock on hand of a seller's SKU at a location.
#[utoipa::path(
    put,
    path = "/v1/inventory/{sku}/{location}",
    tag = "inventory",
    params(("sku" = String, Path, description = "SKU"), ("location" = String, Path, description = "location id")),
    request_body = SetStockBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_stock(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath((sku, location)): ApiPath<(String, String)>,
    body: ApiJson<SetStockBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let sku = Sku::parse(sku).map_err(|_| ApiError::not_found("sku"))?;
    let mut v = Violations::default();
    let location = v.check("location", LocationId::parse(location));
    v.ensure(
        (0..=MAX_QUANTITY).contains(&b.on_hand),
        "on_hand",
        format!("between 0 and {MAX_QUANTITY}"),
    );
    let requested = b.seller.and_then(|s| v.check("seller", SellerId::parse(s)));
    let Some(location) = location else {
        return Err(v.into_error());
    };
    v.finish()?;
    let seller = writer.acting_seller("seller", requested)?;
    let line = stock_line(&state, writer.caller().tenant(), seller, sku, location).await?;
    let aggregate = format!("{}@{}", line.sku, line.region);
    let command = SetStock {
        line,
        on_hand: b.on_hand,
    };
    submit(
        &state,
        &writer,
        &meta,
        &body.raw,
        NewCommand::new(command, aggregate),
    )
    .await
}

/// Holds stock for an order system, at a location or anywhere in a region, until it is
/// released, committed or expires; the reservation id is the command's aggregate id.
#[utoipa::path(
    post,
    path = "/v1/inventory/reservations",
    tag = "inventory",
    request_body = ReserveBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reserve_stock(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    body: ApiJson<ReserveBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let mut v = Violations::default();
    let sku = v.check("sku", Sku::parse(b.sku));
    v.ensure(
        b.location.is_some() != b.region.is_some(),
        "location",
        "either a location or a region (region-wide), not both",
    );
    let location = b
        .location
        .and_then(|l| v.check("location", LocationId::parse(l)));
    let region = b
        .region
        .and_then(|r| v.check("region", writer.caller().parse_region(r)));
    v.ensure(
        (1..=MAX_QUANTITY).contains(&b.quantity),
        "quantity",
        format!("between 1 and {MAX_QUANTITY}"),
    );
    let ttl = b.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    v.ensure(
        (1..=MAX_TTL_SECONDS).contains(&ttl),
        "ttl_seconds",
        format!("between 1 and {MAX_TTL_SECONDS}"),
    );
    let reservation_id = match b.reservation_id {
        Some(id) => v.check("reservation_id", ReservationId::parse(id)),
        None => Some(ReservationId::generate()),
    };
    let requested = b.seller.and_then(|s| v.check("seller", SellerId::parse(s)));
    let (Some(sku), Some(reservation_id)) = (sku, reservation_id) else {
        return Err(v.into_error());
    };
    v.finish()?;
    let seller = writer.acting_seller("seller", requested)?;
    let tenant = writer.caller().tenant();
    let unknown_sku = |e: ApiError| {
        if e.status() == StatusCode::NOT_FOUND {
            ApiError::invalid("sku", "the SKU is not known")
        } else {
            e
        }
    };
    let region_wide = region.is_some();
    let line = match (location, region) {
        (Some(location), _) => stock_line(&state, tenant, seller, sku, location)
            .await
            .map_err(unknown_sku)?,
        (None, Some(region)) => {
            let product_id = sku_owner(&state, tenant, &sku)
                .await?
                .ok_or_else(|| ApiError::invalid("sku", "the SKU is not known"))?;
            StockLine {
                product_id,
                seller,
                sku,
                // Region-wide: the inventory processor picks the locations.
                location: LocationId::parse("any").expect("a valid location id"),
                region,
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    let hot = state
        .hot
        .reserve_on_hot_lane(&state, tenant, &line.sku)
        .await?;
    let claim = Claim::Reservation {
        reservation_id: reservation_id.clone(),
        line: line.clone(),
        hot,
    };
    let command = ReserveStock {
        reservation_id: reservation_id.clone(),
        line,
        quantity: b.quantity,
        expires_at: Some(now_micros() + ttl * 1_000_000),
        region_wide,
    };
    let new = NewCommand::new(command, reservation_id.as_str())
        .claiming(vec![claim])
        .on_hot_lane(hot);
    submit(&state, &writer, &meta, &body.raw, new).await
}

/// The stock line a reservation was made for and whether it took the hot lane, or 404 (a
/// seller key asking for another seller's: 404 too).
async fn reservation_line(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<(ReservationId, ReservationRef), ApiError> {
    let reservation_id =
        ReservationId::parse(id).map_err(|_| ApiError::not_found("reservation"))?;
    let tenant = caller.tenant().clone();
    let held: Option<ReservationRef> = read(
        state,
        tables::RESERVATION,
        key(&[tenant.as_str(), reservation_id.as_str()]),
    )
    .await?;
    match held {
        Some(held) if caller.bound_seller().is_none_or(|s| *s == held.line.seller) => {
            Ok((reservation_id, held))
        }
        _ => Err(ApiError::not_found(format!(
            "reservation '{reservation_id}'"
        ))),
    }
}

/// Releases a reservation: its units are available again.
#[utoipa::path(
    delete,
    path = "/v1/inventory/reservations/{id}",
    tag = "inventory",
    params(("id" = String, Path, description = "reservation id")),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn release_reservation(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    end_reservation(&state, &writer, &meta, id, |reservation_id, line| {
        ReleaseReservation {
            reservation_id,
            line,
        }
        .into()
    })
    .await
}

/// Commits a reservation (an order was placed): its units leave on hand.
#[utoipa::path(
    post,
    path = "/v1/inventory/reservations/{id}/commit",
    tag = "inventory",
    params(("id" = String, Path, description = "reservation id")),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn commit_reservation(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    end_reservation(&state, &writer, &meta, id, |reservation_id, line| {
        CommitReservation {
            reservation_id,
            line,
        }
        .into()
    })
    .await
}

/// Sends the command that ends reservation `id` (a release or a commit) on the lane its
/// reservation took, so that it never overtakes it.
async fn end_reservation(
    state: &AppState,
    writer: &Writer,
    meta: &CommandMeta,
    id: String,
    command: impl FnOnce(ReservationId, StockLine) -> Command,
) -> Result<Response, ApiError> {
    let (reservation_id, held) = reservation_line(state, writer.caller(), id).await?;
    let new = NewCommand::new(
        command(reservation_id.clone(), held.line),
        reservation_id.as_str(),
    )
    .on_hot_lane(held.hot);
    submit(state, writer, meta, b"", new).await
}

/// A reservation: held (where, until when), or what became of it.
#[utoipa::path(
    get,
    path = "/v1/inventory/reservations/{id}",
    tag = "inventory",
    params(("id" = String, Path, description = "reservation id")),
    responses(
        (status = 200, body = ReservationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_reservation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let (reservation_id, held) = reservation_line(&state, &caller, id).await?;
    let line = held.line;
    let tenant = caller.tenant();
    let row = inventory_key(
        tenant,
        &line.product_id,
        &line.seller,
        &line.sku,
        &line.region,
    );
    let hold: Option<HoldRow> = read(
        &state,
        tables::INVENTORY_HOLD,
        hold_key(&row, &reservation_id),
    )
    .await?;
    // A hold from before holds had rows of their own is in the aggregate's row.
    let hold = match hold {
        Some(hold) => Some(hold),
        None => read::<InventoryState>(&state, tables::INVENTORY, row)
            .await?
            .and_then(|s| s.hold_row(&reservation_id)),
    };
    let held = match &hold {
        Some(HoldRow::Held(r)) => Some(r),
        _ => None,
    };
    let status = match &hold {
        Some(HoldRow::Held(_)) => "HELD",
        Some(HoldRow::Finished(Finished::Failed)) => "FAILED",
        Some(HoldRow::Finished(Finished::Released)) => "RELEASED",
        Some(HoldRow::Finished(Finished::Committed)) => "COMMITTED",
        Some(HoldRow::Finished(Finished::Expired)) => "EXPIRED",
        None => "PENDING",
    };
    Ok(Json(ReservationView {
        reservation_id: reservation_id.to_string(),
        sku: line.sku.to_string(),
        seller: line.seller.to_string(),
        region: line.region.to_string(),
        status: status.into(),
        holds: held
            .map(|r| {
                r.held()
                    .into_iter()
                    .map(|(l, q)| (l.to_string(), q))
                    .collect()
            })
            .unwrap_or_default(),
        expires_at: held.and_then(|r| r.expires_at),
    }))
}

/// Whether each item can be had now, as the buy box would sell it (a read: nothing is held).
/// Items name a product (seed 004's order systems) or a SKU, in a region or in all the
/// tenant's.
#[utoipa::path(
    post,
    path = "/v1/products/check-availability",
    tag = "inventory",
    request_body = AvailabilityRequest,
    responses((status = 200, body = AvailabilityAnswer), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn check_availability(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<AvailabilityRequest>,
) -> Result<Json<AvailabilityAnswer>, ApiError> {
    let items = body.value.items;
    let mut v = Violations::default();
    v.ensure(!items.is_empty(), "items", "at least one item");
    v.ensure(
        items.len() <= MAX_CHECK_ITEMS,
        "items",
        format!("at most {MAX_CHECK_ITEMS} items"),
    );
    let mut wanted = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let field = |name: &str| format!("items[{i}].{name}");
        v.ensure(
            item.product_id.is_some() != item.sku.is_some(),
            &field("product_id"),
            "either a product_id or a sku",
        );
        let product = item
            .product_id
            .and_then(|p| v.check(&field("product_id"), ProductId::parse(p)));
        let sku = item.sku.and_then(|s| v.check(&field("sku"), Sku::parse(s)));
        let region = item
            .region
            .and_then(|r| v.check(&field("region"), caller.parse_region(r)));
        v.ensure(item.quantity >= 1, &field("quantity"), "at least 1");
        let seller = item
            .seller
            .and_then(|s| v.check(&field("seller"), SellerId::parse(s)));
        wanted.push(Wanted {
            product,
            sku,
            region,
            requested: item.quantity,
            seller,
        });
    }
    v.finish()?;
    let tenant = caller.tenant().clone();
    let answer = blocking(&state, move |store| {
        let mut items = Vec::with_capacity(wanted.len());
        for w in wanted {
            items.push(sellable(store, &tenant, w)?);
        }
        Ok(AvailabilityAnswer {
            all_available: items.iter().all(|i| i.is_available),
            items,
        })
    })
    .await?;
    Ok(Json(answer))
}

/// One item of an availability check, checked.
struct Wanted {
    product: Option<ProductId>,
    sku: Option<Sku>,
    region: Option<RegionCode>,
    requested: i64,
    seller: Option<SellerId>,
}

/// What the buy box would sell of an item: for each of its offers that sells (ACTIVE, or
/// suspended only for want of stock, which the stock itself then tells), the stock of its
/// seller's SKU in its region less what is held; the reasons of the offers that do not sell.
fn sellable(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    w: Wanted,
) -> Result<ItemAvailability, ApiError> {
    let product = match (&w.product, &w.sku) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(sku)) => store.get::<ProductId>(tables::SKU, &sku_key(tenant.as_str(), sku))?,
        (None, None) => None,
    };
    let activation: Option<ActivationState> = match &product {
        Some(p) => store.get(tables::ACTIVATION, &key(&[tenant.as_str(), p.as_str()]))?,
        None => None,
    };
    let mut available = 0;
    let mut reasons: Vec<Reason> = Vec::new();
    let mut offers = 0;
    for offer in activation.iter().flat_map(|a| a.offers.values()) {
        let o = &offer.data;
        if w.sku.as_ref().is_some_and(|s| *s != o.sku)
            || w.region.as_ref().is_some_and(|r| *r != o.region)
            || w.seller.as_ref().is_some_and(|s| *s != o.seller)
        {
            continue;
        }
        offers += 1;
        let only_out_of_stock = offer.status == ActivationStatus::Suspended
            && offer.reasons.iter().all(|r| r.code == "OUT_OF_STOCK");
        if !offer.withdrawn && (offer.status == ActivationStatus::Active || only_out_of_stock) {
            let row = inventory_key(tenant, &o.product_id, &o.seller, &o.sku, &o.region);
            let stock: Option<InventoryState> = store.get(tables::INVENTORY, &row)?;
            available += stock.map_or(0, |s| s.available());
        }
        for r in &offer.reasons {
            if !reasons.iter().any(|known| known.code == r.code) {
                reasons.push(r.clone());
            }
        }
    }
    if offers == 0 {
        reasons.push(Reason::new(
            "NO_OFFER",
            match (&product, &w.region) {
                (None, _) => "no such product or SKU".to_string(),
                (Some(_), Some(region)) => format!("nothing of it is offered in {region}"),
                (Some(_), None) => "nothing of it is offered".to_string(),
            },
        ));
    }
    let is_available = available >= w.requested;
    Ok(ItemAvailability {
        product_id: product.map(|p| p.to_string()),
        sku: w.sku.map(|s| s.to_string()),
        region: w.region.map(|r| r.to_string()),
        requested: w.requested,
        available,
        is_available,
        reasons: if is_available {
            vec![]
        } else {
            reasons.into_iter().map(ReasonView::from).collect()
        },
    })
}
