//! Offers: one per seller, SKU and region, with price, validity window and channels.

use crate::auth::{Caller, Writer};
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem, Violations};
use crate::extract::{ApiJson, ApiPath};
use crate::reads::{blocking, offer_ref, sku_owner};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{patch, post};
use axum::Router;
use porch_processors::store::{Claim, OfferRef};
use porch_schemas::{
    Channel, CreateOffer, Currency, Micros, Money, OfferData, OfferId, ProductId, SellerId, Sku,
    UpdateOffer, WithdrawOffer,
};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/offers", post(create_offer))
        .route("/v1/offers/{id}", patch(patch_offer))
        .route("/v1/offers/{id}/withdraw", post(withdraw_offer))
}

/// An amount in minor units (pence, paise, centavos) and an ISO 4217 currency.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    pub amount_minor: i64,
    pub currency: String,
}

/// A seller's offer of a SKU in a region.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOfferBody {
    pub sku: String,
    /// One of the tenant's regions (ISO 3166-1 alpha-2).
    pub region: String,
    pub price: MoneyInput,
    pub compare_at: Option<MoneyInput>,
    /// Microseconds since the Unix epoch.
    pub valid_from: Option<i64>,
    /// Microseconds since the Unix epoch.
    pub valid_until: Option<i64>,
    /// Channels to list on; all of the tenant's by default.
    pub channels: Option<Vec<String>>,
    /// The seller; the key's own, or the tenant's in single-brand mode, by default.
    pub seller: Option<String>,
    /// The SKU's product, for a SKU created so recently the API may not know it yet.
    pub product_id: Option<String>,
}

/// Changes to an offer; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOfferBody {
    pub price: Option<MoneyInput>,
    pub compare_at: Option<MoneyInput>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub channels: Option<Vec<String>>,
}

fn money(v: &mut Violations, field: &str, input: MoneyInput) -> Option<Money> {
    let currency = v.check(
        &format!("{field}.currency"),
        Currency::parse(input.currency),
    );
    v.ensure(
        input.amount_minor >= 0,
        &format!("{field}.amount_minor"),
        "must not be negative",
    );
    Money::new(input.amount_minor, currency?).ok()
}

fn channels(v: &mut Violations, caller: &Caller, input: Vec<String>) -> Vec<Channel> {
    let mut out = Vec::new();
    for (i, name) in input.iter().enumerate() {
        if let Some(channel) = v.check(&format!("channels[{i}]"), caller.parse_channel(name)) {
            if !out.contains(&channel) {
                out.push(channel);
            }
        }
    }
    out
}

fn check_window(v: &mut Violations, from: Option<Micros>, until: Option<Micros>) {
    v.ensure(
        from.is_none_or(|t| t >= 0),
        "valid_from",
        "microseconds since the epoch, not negative",
    );
    v.ensure(
        until.is_none_or(|t| t >= 0),
        "valid_until",
        "microseconds since the epoch, not negative",
    );
    if let (Some(from), Some(until)) = (from, until) {
        v.ensure(from < until, "valid_until", "must be after valid_from");
    }
}

/// Creates an offer: PENDING_ACTIVATION until the buy box says ACTIVE.
#[utoipa::path(
    post,
    path = "/v1/offers",
    tag = "offers",
    request_body = CreateOfferBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_offer(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    body: ApiJson<CreateOfferBody>,
) -> Result<Response, ApiError> {
    let caller = writer.caller();
    let b = body.value;
    let mut v = Violations::default();
    let sku = v.check("sku", Sku::parse(b.sku));
    let region = v.check("region", caller.parse_region(b.region));
    let price = money(&mut v, "price", b.price);
    let compare_at = b.compare_at.map(|m| money(&mut v, "compare_at", m));
    check_window(&mut v, b.valid_from, b.valid_until);
    let channels = match b.channels {
        Some(list) => channels(&mut v, caller, list),
        None => caller.channels().to_vec(),
    };
    let requested_seller = b.seller.and_then(|s| v.check("seller", SellerId::parse(s)));
    let given_product = b
        .product_id
        .and_then(|p| v.check("product_id", ProductId::parse(p)));
    let (Some(sku), Some(region), Some(price)) = (sku, region, price) else {
        return Err(v.into_error());
    };
    let compare_at = match compare_at {
        Some(None) => return Err(v.into_error()),
        Some(Some(m)) => Some(m),
        None => None,
    };
    v.finish()?;
    let seller = writer.acting_seller("seller", requested_seller)?;

    let tenant = caller.tenant().clone();
    // A second offer for the same seller, SKU and region is refused by the offer's claim when
    // it is submitted, after the Idempotency-Key is looked at: a retried request is replayed,
    // not refused.
    let owner = sku_owner(&state, &tenant, &sku).await?;
    let product_id = match (owner, given_product) {
        (Some(owner), Some(given)) if owner != given => {
            return Err(ApiError::invalid(
                "product_id",
                format!("SKU '{sku}' belongs to product '{owner}'"),
            ));
        }
        (Some(owner), _) => owner,
        (None, Some(given)) => given,
        (None, None) => {
            return Err(ApiError::invalid(
                "sku",
                format!("SKU '{sku}' is not known"),
            ))
        }
    };
    let offer_id = OfferId::generate();
    let claim = Claim::Offer(OfferRef {
        offer_id: offer_id.clone(),
        product_id: product_id.clone(),
        seller: seller.clone(),
        sku: sku.clone(),
        region: region.clone(),
    });
    let offer = OfferData {
        offer_id: offer_id.clone(),
        product_id,
        seller,
        sku,
        region,
        price,
        compare_at,
        valid_from: b.valid_from,
        valid_until: b.valid_until,
        channels,
    };
    let command = NewCommand::new(CreateOffer { offer }, offer_id.as_str()).claiming(vec![claim]);
    submit(&state, &writer, &meta, &body.raw, command).await
}

/// The offer of a path, 404 unless the tenant has it, 403 unless the key may act for its seller.
async fn owned_offer(state: &AppState, writer: &Writer, id: String) -> Result<OfferRef, ApiError> {
    let offer_id = OfferId::parse(id).map_err(|_| ApiError::not_found("offer"))?;
    let tenant = writer.caller().tenant().clone();
    let offer = blocking(state, move |store| offer_ref(store, &tenant, &offer_id)).await?;
    writer.may_act_for(&offer.seller)?;
    Ok(offer)
}

/// Changes an offer's price, compare-at price, validity window or channels.
#[utoipa::path(
    patch,
    path = "/v1/offers/{id}",
    tag = "offers",
    params(("id" = String, Path, description = "offer id"),
        ("If-Match" = Option<String>, Header, description = "the version the change is meant for, as an ETag (\"3\"): at any other, REJECTED with VERSION_CONFLICT"),
        crate::commands::WaitQuery,
    ),
    request_body = PatchOfferBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 200, body = crate::commands::CommandView, description = "with ?wait: the outcome"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "VERSION_CONFLICT"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_offer(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<PatchOfferBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let mut v = Violations::default();
    let price = b.price.map(|m| money(&mut v, "price", m));
    let compare_at = b.compare_at.map(|m| money(&mut v, "compare_at", m));
    check_window(&mut v, b.valid_from, b.valid_until);
    let channels = b
        .channels
        .map(|list| channels(&mut v, writer.caller(), list));
    v.finish()?;
    let offer = owned_offer(&state, &writer, id).await?;
    let command = UpdateOffer {
        offer_id: offer.offer_id.clone(),
        product_id: offer.product_id,
        price: price.flatten(),
        compare_at: compare_at.flatten(),
        valid_from: b.valid_from,
        valid_until: b.valid_until,
        channels,
    };
    submit(
        &state,
        &writer,
        &meta,
        &body.raw,
        NewCommand::new(command, offer.offer_id.as_str()).conditional(),
    )
    .await
}

/// Withdraws an offer: it ends and is never sold again.
#[utoipa::path(
    post,
    path = "/v1/offers/{id}/withdraw",
    tag = "offers",
    params(("id" = String, Path, description = "offer id"),
        ("If-Match" = Option<String>, Header, description = "the version the change is meant for, as an ETag (\"3\"): at any other, REJECTED with VERSION_CONFLICT"),
        crate::commands::WaitQuery,
    ),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 200, body = crate::commands::CommandView, description = "with ?wait: the outcome"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "VERSION_CONFLICT"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn withdraw_offer(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let offer = owned_offer(&state, &writer, id).await?;
    let command = WithdrawOffer {
        offer_id: offer.offer_id.clone(),
        product_id: offer.product_id,
    };
    submit(
        &state,
        &writer,
        &meta,
        b"",
        NewCommand::new(command, offer.offer_id.as_str()).conditional(),
    )
    .await
}
