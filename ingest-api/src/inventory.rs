//! Inventory: locations and their regions, stock on hand, reservations, and availability checks.

use crate::auth::{Caller, Writer};
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem, Violations};
use crate::extract::{ApiJson, ApiPath};
use crate::reads::{blocking, product_prefix, read, scan_all, sku_owner};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use porch_processors::domain::inventory::InventoryState;
use porch_processors::store::{key, sku_key, tables, Claim, Store, SubmitOutcome};
use porch_schemas::{
    LocationId, ProductId, RegionCode, ReleaseReservation, ReservationId, ReserveStock, SellerId,
    SetStock, Sku, StockLine, TenantId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// More stock than this at one location is surely a mistake.
const MAX_QUANTITY: i64 = 1_000_000_000;
const MAX_CHECK_ITEMS: usize = 100;
/// Stock rows of one product an availability check reads at most.
const MAX_STOCK_ROWS: usize = 5_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/locations", post(register_location))
        .route("/v1/inventory/{sku}/{location}", put(set_stock))
        .route("/v1/inventory/reservations", post(reserve_stock))
        .route(
            "/v1/inventory/reservations/{id}",
            delete(release_reservation),
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
    pub location: String,
    pub quantity: i64,
    pub seller: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    pub items: Vec<AvailabilityItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityItem {
    pub sku: String,
    pub region: String,
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
    pub sku: String,
    pub region: String,
    pub requested: i64,
    pub available: i64,
    pub is_available: bool,
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

/// Reserves stock at a location; the reservation id is the command's aggregate id.
#[utoipa::path(
    post,
    path = "/v1/inventory/reservations",
    tag = "inventory",
    request_body = ReserveBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
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
    let location = v.check("location", LocationId::parse(b.location));
    v.ensure(
        (1..=MAX_QUANTITY).contains(&b.quantity),
        "quantity",
        format!("between 1 and {MAX_QUANTITY}"),
    );
    let requested = b.seller.and_then(|s| v.check("seller", SellerId::parse(s)));
    let (Some(sku), Some(location)) = (sku, location) else {
        return Err(v.into_error());
    };
    v.finish()?;
    let seller = writer.acting_seller("seller", requested)?;
    let line = stock_line(&state, writer.caller().tenant(), seller, sku, location)
        .await
        .map_err(|e| {
            if e.status() == StatusCode::NOT_FOUND {
                ApiError::invalid("sku", "the SKU is not known")
            } else {
                e
            }
        })?;
    let reservation_id = ReservationId::generate();
    let claim = Claim::Reservation {
        reservation_id: reservation_id.clone(),
        line: line.clone(),
    };
    let command = ReserveStock {
        reservation_id: reservation_id.clone(),
        line,
        quantity: b.quantity,
    };
    let new = NewCommand::new(command, reservation_id.as_str()).claiming(vec![claim]);
    submit(&state, &writer, &meta, &body.raw, new).await
}

/// Releases a reservation.
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
    let reservation_id =
        ReservationId::parse(id).map_err(|_| ApiError::not_found("reservation"))?;
    let tenant = writer.caller().tenant().clone();
    let lookup = reservation_id.clone();
    let line: Option<StockLine> = blocking(&state, move |store| {
        Ok(store.get(
            tables::RESERVATION,
            &key(&[tenant.as_str(), lookup.as_str()]),
        )?)
    })
    .await?;
    let line =
        line.ok_or_else(|| ApiError::not_found(format!("reservation '{reservation_id}'")))?;
    writer.may_act_for(&line.seller)?;
    let command = ReleaseReservation {
        reservation_id: reservation_id.clone(),
        line,
    };
    submit(
        &state,
        &writer,
        &meta,
        b"",
        NewCommand::new(command, reservation_id.as_str()),
    )
    .await
}

/// Whether each item can be had in its region now (a read: nothing is reserved).
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
        let sku = v.check(&format!("items[{i}].sku"), Sku::parse(item.sku));
        let region = v.check(
            &format!("items[{i}].region"),
            RegionCode::parse(item.region),
        );
        v.ensure(
            item.quantity >= 1,
            &format!("items[{i}].quantity"),
            "at least 1",
        );
        let seller = item
            .seller
            .and_then(|s| v.check(&format!("items[{i}].seller"), SellerId::parse(s)));
        if let (Some(sku), Some(region)) = (sku, region) {
            wanted.push((sku, region, item.quantity, seller));
        }
    }
    v.finish()?;
    let tenant = caller.tenant().clone();
    let answer = blocking(&state, move |store| {
        let mut items = Vec::with_capacity(wanted.len());
        for (sku, region, requested, seller) in wanted {
            let available = available(store, &tenant, &sku, &region, seller.as_ref())?;
            items.push(ItemAvailability {
                sku: sku.to_string(),
                region: region.to_string(),
                requested,
                available,
                is_available: available >= requested,
            });
        }
        Ok(AvailabilityAnswer {
            all_available: items.iter().all(|i| i.is_available),
            items,
        })
    })
    .await?;
    Ok(Json(answer))
}

/// Available stock of a SKU in a region: one seller's, or every seller's. An unknown SKU has none.
fn available(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    sku: &Sku,
    region: &RegionCode,
    seller: Option<&SellerId>,
) -> Result<i64, ApiError> {
    let owner = store.get::<ProductId>(tables::SKU, &sku_key(tenant.as_str(), sku))?;
    let Some(product) = owner else {
        return Ok(0);
    };
    if let Some(seller) = seller {
        let row_key = key(&[
            tenant.as_str(),
            product.as_str(),
            seller.as_str(),
            sku.as_str(),
            region.as_str(),
        ]);
        let line: Option<InventoryState> = store.get(tables::INVENTORY, &row_key)?;
        return Ok(line.map(|l| l.available()).unwrap_or(0));
    }
    let prefix = product_prefix(tenant, &product);
    let rows: Vec<(String, InventoryState)> =
        scan_all(store, tables::INVENTORY, &prefix, MAX_STOCK_ROWS)?;
    Ok(rows
        .iter()
        .filter(|(row_key, _)| {
            // seller/sku/region after the product prefix
            let mut parts = row_key
                .strip_prefix(&prefix)
                .unwrap_or_default()
                .split('/')
                .skip(1);
            parts.next() == Some(sku.as_str()) && parts.next() == Some(region.as_str())
        })
        .map(|(_, line)| line.available())
        .sum())
}
