//! The one aggregated view of a product (DESIGN §7): the product, its variants, its offers with
//! their buy-box state and reasons, availability and compliance per region, channel listings and
//! image URLs, read from the projections of every module.

use crate::auth::Caller;
use crate::commands::ReasonView;
use crate::error::{ApiError, Problem};
use crate::extract::ApiPath;
use crate::media::Media;
use crate::products::path_product;
use crate::reads::{blocking, existing_product, product_prefix, scan_all};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use porch_processors::domain::activation::{ActivationState, ActivationStatus};
use porch_processors::domain::channel::{ChannelState, OfferChannels};
use porch_processors::domain::compliance::{ComplianceState, ComplianceStatus};
use porch_processors::domain::inventory::{InventoryState, StockStatus};
use porch_processors::domain::listing::{ListingState, ListingStatus};
use porch_processors::domain::offer::OfferState;
use porch_processors::domain::product::ProductState;
use porch_processors::domain::variant::VariantSetState;
use porch_processors::store::{key, tables, Store};
use porch_schemas::{Channel, Money, OfferData, OfferId, ProductId, RegionCode, TenantId};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Rows per module a view reads at most; a product with more offers or stock lines than this is
/// shown in part.
const MAX_ROWS: usize = 5_000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductView {
    pub product_id: String,
    /// DRAFT, READY, ACTIVE or INACTIVE.
    pub status: String,
    /// The product module's row: data, status, missing fields, published channels, version.
    #[schema(value_type = Object)]
    pub product: ProductState,
    pub variants: Vec<VariantView>,
    pub offers: Vec<OfferView>,
    /// Region → available stock.
    pub availability: BTreeMap<String, RegionAvailability>,
    /// Region → compliance verdict.
    pub compliance: BTreeMap<String, ComplianceView>,
    pub listings: Vec<ListingView>,
    pub images: Vec<ImageView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VariantView {
    pub sku: String,
    pub options: BTreeMap<String, String>,
    pub weight_grams: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub dimensions: Option<porch_schemas::Dimensions>,
    pub gtin: Option<String>,
    pub discontinued: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
}

impl From<&Money> for MoneyView {
    fn from(m: &Money) -> Self {
        Self {
            amount_minor: m.amount_minor(),
            currency: m.currency().to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferView {
    pub offer_id: String,
    pub seller: String,
    pub sku: String,
    pub region: String,
    pub price: MoneyView,
    pub compare_at: Option<MoneyView>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub channels: Vec<String>,
    pub withdrawn: bool,
    /// The buy box: PENDING_ACTIVATION, ACTIVE, SUSPENDED or ENDED.
    pub status: String,
    /// Why the offer is not ACTIVE.
    pub reasons: Vec<ReasonView>,
    /// The search listing: VISIBLE or HIDDEN.
    pub listing: String,
    pub version: i64,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RegionAvailability {
    /// Available across sellers, SKUs and locations of the region.
    pub available: i64,
    pub lines: Vec<StockView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockView {
    pub seller: String,
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// STOCK_READY or OUT_OF_STOCK.
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComplianceView {
    /// PENDING, APPROVED, REJECTED or MANUAL_REVIEW.
    pub status: String,
    pub reasons: Vec<ReasonView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListingView {
    pub offer_id: String,
    pub region: String,
    /// The search listing: VISIBLE or HIDDEN.
    pub search: String,
    pub reasons: Vec<ReasonView>,
    pub channels: Vec<ChannelListingView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelListingView {
    pub channel: String,
    /// PENDING, BLOCKED, SUBMITTED, LIVE, REJECTED, NEEDS_REAUTH or UNPUBLISHED.
    pub status: String,
    /// Why it is BLOCKED (the fields the channel needs) or REJECTED (the channel's issues).
    pub issues: Vec<ReasonView>,
    /// The latest request sent to the channel (0: none yet).
    pub version: i64,
    /// The channel's own id of the item, where it gave one.
    pub channel_item_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageView {
    /// As the product lists it: an uploaded name or an http(s) URL.
    pub name: String,
    /// Absolute: an uploaded name under the public base URL, a URL as given.
    pub url: String,
}

/// Everything porch knows about one product, in one view.
#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = "products",
    params(("id" = String, Path, description = "product id")),
    responses(
        (status = 200, body = ProductView, headers(("ETag" = String, description = "the product's version, for If-Match on its changes"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let product_id = path_product(id)?;
    let tenant = caller.tenant().clone();
    let regions = caller.regions().to_vec();
    let media = state.media.clone();
    let view = blocking(&state, move |store| {
        build_view(store, &media, &tenant, &product_id, &regions)
    })
    .await?;
    let etag = crate::commands::etag(view.product.version);
    let mut response = Json(view).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

fn build_view(
    store: &(dyn Store + 'static),
    media: &Media,
    tenant: &TenantId,
    product_id: &ProductId,
    regions: &[RegionCode],
) -> Result<ProductView, ApiError> {
    let product = existing_product(store, tenant, product_id)?;
    let row_key = key(&[tenant.as_str(), product_id.as_str()]);
    let prefix = product_prefix(tenant, product_id);
    let variants: VariantSetState = store.get(tables::VARIANT, &row_key)?.unwrap_or_default();
    let activation: ActivationState = store.get(tables::ACTIVATION, &row_key)?.unwrap_or_default();
    let offers: Vec<(String, OfferState)> = scan_all(store, tables::OFFER, &prefix, MAX_ROWS)?;
    let listings: BTreeMap<OfferId, ListingState> =
        scan_all::<ListingState>(store, tables::LISTING, &prefix, MAX_ROWS)?
            .into_iter()
            .filter_map(|(k, l)| {
                OfferId::parse(k.strip_prefix(&prefix)?)
                    .ok()
                    .map(|id| (id, l))
            })
            .collect();
    let stock: Vec<(String, InventoryState)> =
        scan_all(store, tables::INVENTORY, &prefix, MAX_ROWS)?;
    let channels: ChannelState = store.get(tables::CHANNEL, &row_key)?.unwrap_or_default();
    let compliance: Vec<(String, ComplianceState)> =
        scan_all(store, tables::COMPLIANCE, &prefix, MAX_ROWS)?;

    let images = product
        .product
        .as_ref()
        .map(|p| {
            p.images
                .iter()
                .map(|name| ImageView {
                    name: name.clone(),
                    url: media.public_url(tenant, product_id, name),
                })
                .collect()
        })
        .unwrap_or_default();
    let offer_data: Vec<(OfferData, bool, i64)> = offers
        .into_iter()
        .filter_map(|(_, o)| o.offer.map(|d| (d, o.withdrawn, o.version)))
        .collect();
    Ok(ProductView {
        product_id: product_id.to_string(),
        status: product.status.as_str().to_string(),
        variants: variant_views(variants),
        offers: offer_data
            .iter()
            .map(|(d, w, v)| offer_view(d, *w, *v, &activation, listings.get(&d.offer_id)))
            .collect(),
        listings: offer_data
            .iter()
            .map(|(d, _, _)| {
                listing_view(
                    d,
                    listings.get(&d.offer_id),
                    channels.offers.get(&d.offer_id),
                )
            })
            .collect(),
        availability: availability(stock),
        compliance: compliance_views(compliance, regions),
        images,
        product,
    })
}

fn variant_views(set: VariantSetState) -> Vec<VariantView> {
    set.variants
        .into_values()
        .map(|v| VariantView {
            sku: v.data.sku.to_string(),
            options: v.data.options,
            weight_grams: v.data.weight_grams,
            dimensions: v.data.dimensions,
            gtin: v.data.gtin,
            discontinued: v.discontinued,
        })
        .collect()
}

fn activation_status(s: ActivationStatus) -> &'static str {
    match s {
        ActivationStatus::PendingActivation => "PENDING_ACTIVATION",
        ActivationStatus::Active => "ACTIVE",
        ActivationStatus::Suspended => "SUSPENDED",
        ActivationStatus::Ended => "ENDED",
    }
}

fn listing_status(l: Option<&ListingState>) -> &'static str {
    match l.map(|l| l.status) {
        Some(ListingStatus::Visible) => "VISIBLE",
        Some(ListingStatus::Hidden) | None => "HIDDEN",
    }
}

fn offer_view(
    d: &OfferData,
    withdrawn: bool,
    version: i64,
    activation: &ActivationState,
    listing: Option<&ListingState>,
) -> OfferView {
    let (status, reasons) = match activation.offers.get(&d.offer_id) {
        Some(a) => (
            activation_status(a.status),
            a.reasons.iter().cloned().map(ReasonView::from).collect(),
        ),
        None => (
            activation_status(ActivationStatus::PendingActivation),
            Vec::new(),
        ),
    };
    OfferView {
        offer_id: d.offer_id.to_string(),
        seller: d.seller.to_string(),
        sku: d.sku.to_string(),
        region: d.region.to_string(),
        price: MoneyView::from(&d.price),
        compare_at: d.compare_at.as_ref().map(MoneyView::from),
        valid_from: d.valid_from,
        valid_until: d.valid_until,
        channels: d.channels.iter().map(|c| c.to_string()).collect(),
        withdrawn,
        status: status.to_string(),
        reasons,
        listing: listing_status(listing).to_string(),
        version,
    }
}

/// Per channel of the offer: the storefront is LIVE exactly when the search listing is VISIBLE
/// (porch is its channel); other channels as the channel processor holds them, PENDING until
/// it has decided anything.
fn listing_view(
    d: &OfferData,
    listing: Option<&ListingState>,
    on_channels: Option<&OfferChannels>,
) -> ListingView {
    let channels = d
        .channels
        .iter()
        .map(|c| {
            let held = on_channels.and_then(|o| o.channels.get(c));
            let (status, issues) = match (c, listing, held) {
                (Channel::Storefront, Some(l), _) if l.status == ListingStatus::Visible => {
                    ("LIVE", vec![])
                }
                (Channel::Storefront, Some(l), _) if l.version > 0 => ("UNPUBLISHED", vec![]),
                (Channel::Storefront, _, _) | (_, _, None) => ("PENDING", vec![]),
                (_, _, Some(h)) => {
                    let (status, issues) = h.shown();
                    (
                        status.as_str(),
                        issues.iter().cloned().map(ReasonView::from).collect(),
                    )
                }
            };
            ChannelListingView {
                channel: c.to_string(),
                status: status.to_string(),
                issues,
                version: held.map(|h| h.version).unwrap_or(0),
                channel_item_id: held.and_then(|h| h.channel_item_id.clone()),
            }
        })
        .collect();
    ListingView {
        offer_id: d.offer_id.to_string(),
        region: d.region.to_string(),
        search: listing_status(listing).to_string(),
        reasons: listing
            .map(|l| l.reasons.iter().cloned().map(ReasonView::from).collect())
            .unwrap_or_default(),
        channels,
    }
}

fn availability(stock: Vec<(String, InventoryState)>) -> BTreeMap<String, RegionAvailability> {
    let mut by_region: BTreeMap<String, RegionAvailability> = BTreeMap::new();
    for (_, line) in stock {
        let (Some(seller), Some(sku), Some(region)) = (&line.seller, &line.sku, &line.region)
        else {
            continue;
        };
        let available = line.available();
        let entry = by_region.entry(region.to_string()).or_default();
        entry.available += available;
        entry.lines.push(StockView {
            seller: seller.to_string(),
            sku: sku.to_string(),
            on_hand: line.locations.values().map(|l| l.on_hand).sum(),
            reserved: line.locations.values().map(|l| l.reserved).sum(),
            available,
            status: line.status.map(|s| match s {
                StockStatus::StockReady => "STOCK_READY".to_string(),
                StockStatus::OutOfStock => "OUT_OF_STOCK".to_string(),
            }),
        });
    }
    by_region
}

/// A verdict for every region of the tenant: PENDING until compliance has evaluated it.
fn compliance_views(
    rows: Vec<(String, ComplianceState)>,
    regions: &[RegionCode],
) -> BTreeMap<String, ComplianceView> {
    let mut views: BTreeMap<String, ComplianceView> = regions
        .iter()
        .map(|r| {
            (
                r.to_string(),
                ComplianceView {
                    status: "PENDING".into(),
                    reasons: Vec::new(),
                },
            )
        })
        .collect();
    for (row_key, c) in rows {
        let region = match &c.region {
            Some(r) => r.to_string(),
            None => row_key.rsplit('/').next().unwrap_or_default().to_string(),
        };
        let status = match c.status {
            ComplianceStatus::Pending => "PENDING",
            ComplianceStatus::Approved => "APPROVED",
            ComplianceStatus::Rejected => "REJECTED",
            ComplianceStatus::ManualReview => "MANUAL_REVIEW",
        };
        views.insert(
            region,
            ComplianceView {
                status: status.to_string(),
                reasons: c.reasons.into_iter().map(ReasonView::from).collect(),
            },
        );
    }
    views
}
