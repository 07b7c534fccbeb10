//! Products: create, patch (JSON merge patch), deactivate, reactivate, list and history.
//! The aggregated view of one product is in `product_view`, images in `images`.

use crate::auth::{Caller, Writer};
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem, Violations};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::images::is_image_ref;
use crate::params::{non_blank, parse_limit};
use crate::reads::{blocking, existing_product, known_product, product_prefix};
use crate::{product_view, AppState};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use porch_processors::domain::activation::ActivationState;
use porch_processors::domain::product::{ProductState, ProductStatus};
use porch_processors::store::{key, tables, Claim, HistoryEntry, Store, StoredHistory};
use porch_schemas::{
    Attributes, Channel, CreateProduct, DeactivateProduct, ProductData, ProductId,
    ReactivateProduct, SellerId, TenantId, UpdateProduct,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

const MAX_TITLE: usize = 500;
const MAX_TEXT: usize = 10_000;
const MAX_SHORT_TEXT: usize = 200;
const MAX_ATTRIBUTES: usize = 200;
const MAX_ATTRIBUTE_KEY: usize = 100;
const MAX_ATTRIBUTE_VALUE: usize = 2_000;
const MAX_IMAGES: usize = 50;
/// Rows a list request may look at before it answers with what it found and a cursor.
const LIST_SCAN_BUDGET: usize = 5_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products", post(create_product).get(list_products))
        .route(
            "/v1/products/{id}",
            get(product_view::get_product).patch(patch_product),
        )
        .route("/v1/products/{id}/deactivate", post(deactivate_product))
        .route("/v1/products/{id}/reactivate", post(reactivate_product))
        .route("/v1/products/{id}/history", get(product_history))
}

/// A new product: its identity and story (never price or stock).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductBody {
    /// The merchant's own product id; porch assigns a UUIDv7 when absent.
    pub id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// Free attributes per vertical (material, tax_code…).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Image names uploaded with PUT …/images/{name}, or http(s) URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// Per channel (storefront, meta, mercadolibre): field → value overrides.
    #[serde(default)]
    pub channel_overrides: BTreeMap<String, BTreeMap<String, String>>,
}

/// A JSON merge patch of a product: absent fields stay, `null` removes (an attribute, or empties
/// description, brand or category).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProductBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub brand: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub category: Option<Option<String>>,
    /// Attributes to set; an attribute set to null is removed.
    #[serde(default)]
    pub attributes: BTreeMap<String, Option<String>>,
    pub images: Option<Vec<String>>,
    pub channel_overrides: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// Tells a field sent as `null` (Some(None)) from an absent one (None, by `default`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Creates a product: DRAFT while incomplete, READY when complete.
#[utoipa::path(
    post,
    path = "/v1/products",
    tag = "products",
    request_body = CreateProductBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_product(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    body: ApiJson<CreateProductBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let mut v = Violations::default();
    let product_id = match b.id {
        Some(id) => v.check("id", parse_product_id(id)),
        None => Some(ProductId::generate()),
    };
    check_text(&mut v, "title", Some(&b.title), MAX_TITLE);
    check_text(&mut v, "description", b.description.as_deref(), MAX_TEXT);
    check_text(&mut v, "brand", b.brand.as_deref(), MAX_SHORT_TEXT);
    check_text(&mut v, "category", b.category.as_deref(), MAX_SHORT_TEXT);
    check_attributes(&mut v, b.attributes.iter().map(|(k, v)| (k, Some(v))));
    check_images(&mut v, &b.images);
    check_overrides(&mut v, &b.channel_overrides);
    let Some(product_id) = product_id else {
        return Err(v.into_error());
    };
    v.finish()?;
    let product = ProductData {
        product_id: product_id.clone(),
        title: b.title,
        description: b.description,
        brand: b.brand,
        category: b.category,
        attributes: b.attributes,
        images: b.images,
        channel_overrides: b.channel_overrides,
    };
    let command = NewCommand::new(CreateProduct { product }, product_id.as_str()).claiming(vec![
        Claim::Product {
            product_id: product_id.clone(),
        },
    ]);
    submit(&state, &writer, &meta, &body.raw, command).await
}

/// Changes a product (JSON merge patch).
#[utoipa::path(
    patch,
    path = "/v1/products/{id}",
    tag = "products",
    params(("id" = String, Path, description = "product id"),
        ("If-Match" = Option<String>, Header, description = "the version the change is meant for, as an ETag (\"3\"): at any other, REJECTED with VERSION_CONFLICT"),
        crate::commands::WaitQuery,
    ),
    request_body = PatchProductBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 200, body = crate::commands::CommandView, description = "with ?wait: the outcome"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "VERSION_CONFLICT"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_product(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<PatchProductBody>,
) -> Result<Response, ApiError> {
    let product_id = path_product(id)?;
    let b = body.value;
    let mut v = Violations::default();
    let title = match b.title {
        Some(None) => {
            v.add(
                "title",
                "a product keeps its title: send a new one instead of null",
            );
            None
        }
        Some(Some(title)) => Some(title),
        None => None,
    };
    check_text(&mut v, "title", title.as_deref(), MAX_TITLE);
    // Removing a text field empties it; the product module counts blank text as absent.
    let description = b.description.map(Option::unwrap_or_default);
    let brand = b.brand.map(Option::unwrap_or_default);
    let category = b.category.map(Option::unwrap_or_default);
    check_text(&mut v, "description", description.as_deref(), MAX_TEXT);
    check_text(&mut v, "brand", brand.as_deref(), MAX_SHORT_TEXT);
    check_text(&mut v, "category", category.as_deref(), MAX_SHORT_TEXT);
    check_attributes(&mut v, b.attributes.iter().map(|(k, v)| (k, v.as_ref())));
    if let Some(images) = &b.images {
        check_images(&mut v, images);
    }
    if let Some(overrides) = &b.channel_overrides {
        check_overrides(&mut v, overrides);
    }
    v.finish()?;
    let tenant = writer.caller().tenant().clone();
    let pid = product_id.clone();
    blocking(&state, move |store| known_product(store, &tenant, &pid)).await?;
    let mut attributes_set = Attributes::new();
    let mut attributes_removed = Vec::new();
    for (name, value) in b.attributes {
        match value {
            Some(value) => {
                attributes_set.insert(name, value);
            }
            None => attributes_removed.push(name),
        }
    }
    let update = UpdateProduct {
        product_id: product_id.clone(),
        title,
        description,
        brand,
        category,
        attributes_set,
        attributes_removed,
        images: b.images,
        channel_overrides: b.channel_overrides,
    };
    submit(
        &state,
        &writer,
        &meta,
        &body.raw,
        NewCommand::new(update, product_id.as_str()).conditional(),
    )
    .await
}

/// Deactivates a product: a soft delete that unpublishes it everywhere.
#[utoipa::path(
    post,
    path = "/v1/products/{id}/deactivate",
    tag = "products",
    params(("id" = String, Path, description = "product id"),
        ("If-Match" = Option<String>, Header, description = "the version the change is meant for, as an ETag (\"3\"): at any other, REJECTED with VERSION_CONFLICT"),
        crate::commands::WaitQuery,
    ),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 200, body = crate::commands::CommandView, description = "with ?wait: the outcome"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "VERSION_CONFLICT"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn deactivate_product(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let product_id = checked_product(&state, &writer, id).await?;
    let command = NewCommand::new(
        DeactivateProduct {
            product_id: product_id.clone(),
        },
        product_id.as_str(),
    )
    .conditional();
    submit(&state, &writer, &meta, b"", command).await
}

/// Reactivates a deactivated product (back to DRAFT or READY).
#[utoipa::path(
    post,
    path = "/v1/products/{id}/reactivate",
    tag = "products",
    params(("id" = String, Path, description = "product id"),
        ("If-Match" = Option<String>, Header, description = "the version the change is meant for, as an ETag (\"3\"): at any other, REJECTED with VERSION_CONFLICT"),
        crate::commands::WaitQuery,
    ),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 200, body = crate::commands::CommandView, description = "with ?wait: the outcome"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "VERSION_CONFLICT"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reactivate_product(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let product_id = checked_product(&state, &writer, id).await?;
    let command = NewCommand::new(
        ReactivateProduct {
            product_id: product_id.clone(),
        },
        product_id.as_str(),
    )
    .conditional();
    submit(&state, &writer, &meta, b"", command).await
}

/// The product id of a path, 404 unless the caller's tenant has that product.
pub async fn checked_product(
    state: &AppState,
    writer: &Writer,
    id: String,
) -> Result<ProductId, ApiError> {
    let product_id = path_product(id)?;
    let tenant = writer.caller().tenant().clone();
    let pid = product_id.clone();
    blocking(state, move |store| known_product(store, &tenant, &pid)).await?;
    Ok(product_id)
}

/// A product id from a path: one that cannot be valid cannot exist either, so it is a 404.
pub fn path_product(id: String) -> Result<ProductId, ApiError> {
    parse_product_id(id).map_err(|_| ApiError::not_found("product"))
}

/// Product ids name files (images) too, so the two path-like ids are refused.
fn parse_product_id(id: String) -> Result<ProductId, porch_schemas::InvalidValue> {
    if id == "." || id == ".." {
        return Err(porch_schemas::InvalidValue(
            "product id may not be '.' or '..'".into(),
        ));
    }
    ProductId::parse(id)
}

fn check_text(v: &mut Violations, field: &str, text: Option<&str>, max: usize) {
    if let Some(text) = text {
        v.ensure(
            text.chars().count() <= max,
            field,
            format!("at most {max} characters"),
        );
    }
}

fn check_attributes<'a>(
    v: &mut Violations,
    attributes: impl ExactSizeIterator<Item = (&'a String, Option<&'a String>)>,
) {
    v.ensure(
        attributes.len() <= MAX_ATTRIBUTES,
        "attributes",
        format!("at most {MAX_ATTRIBUTES} attributes"),
    );
    for (name, value) in attributes {
        let field = format!("attributes.{name}");
        v.ensure(
            !name.trim().is_empty() && name.chars().count() <= MAX_ATTRIBUTE_KEY,
            &field,
            format!("an attribute name has 1 to {MAX_ATTRIBUTE_KEY} characters"),
        );
        if let Some(value) = value {
            v.ensure(
                value.chars().count() <= MAX_ATTRIBUTE_VALUE,
                &field,
                format!("at most {MAX_ATTRIBUTE_VALUE} characters"),
            );
        }
    }
}

fn check_images(v: &mut Violations, images: &[String]) {
    v.ensure(
        images.len() <= MAX_IMAGES,
        "images",
        format!("at most {MAX_IMAGES} images"),
    );
    for (i, image) in images.iter().enumerate() {
        v.ensure(
            is_image_ref(image),
            &format!("images[{i}]"),
            "an image is a name uploaded with PUT /v1/products/{id}/images/{name} or an http(s) URL",
        );
    }
}

fn check_overrides(v: &mut Violations, overrides: &BTreeMap<String, BTreeMap<String, String>>) {
    for (channel, fields) in overrides {
        let field = format!("channel_overrides.{channel}");
        if let Err(e) = Channel::parse(channel) {
            v.add(&field, e.0);
        }
        for (name, value) in fields {
            check_text(v, &format!("{field}.{name}"), Some(value), MAX_TEXT);
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// DRAFT, READY, ACTIVE or INACTIVE.
    status: Option<String>,
    /// Only products a seller has an offer on.
    seller: Option<String>,
    /// Only products with an offer on this channel.
    channel: Option<String>,
    /// 1 to 100, 20 by default.
    #[param(value_type = Option<usize>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductSummary {
    pub product_id: String,
    pub title: String,
    pub status: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// What keeps the product in DRAFT.
    pub missing: Vec<String>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductList {
    pub items: Vec<ProductSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

struct ListFilter {
    status: Option<ProductStatus>,
    seller: Option<SellerId>,
    channel: Option<Channel>,
}

impl ListFilter {
    fn needs_offers(&self) -> bool {
        self.seller.is_some() || self.channel.is_some()
    }

    fn offers_match(&self, activation: &ActivationState) -> bool {
        activation.offers.values().any(|o| {
            self.seller.as_ref().is_none_or(|s| o.data.seller == *s)
                && self.channel.is_none_or(|c| o.data.channels.contains(&c))
        })
    }
}

/// The tenant's products in id order, filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/products",
    tag = "products",
    params(ListQuery),
    responses((status = 200, body = ProductList), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ProductList>, ApiError> {
    let mut v = Violations::default();
    let limit = parse_limit(q.limit.as_deref(), 20, 100)?;
    let status = non_blank(q.status).and_then(|s| {
        let parsed =
            ProductStatus::parse(&s.to_ascii_uppercase()).filter(|s| *s != ProductStatus::Absent);
        v.ensure(
            parsed.is_some(),
            "status",
            "one of DRAFT, READY, ACTIVE, INACTIVE",
        );
        parsed
    });
    let seller = non_blank(q.seller).and_then(|s| v.check("seller", SellerId::parse(s)));
    let channel = non_blank(q.channel).and_then(|c| v.check("channel", Channel::parse(&c)));
    let cursor = non_blank(q.cursor).and_then(|c| v.check("cursor", ProductId::parse(c)));
    v.finish()?;
    let filter = ListFilter {
        status,
        seller,
        channel,
    };
    let tenant = caller.tenant().clone();
    let list = blocking(&state, move |store| {
        list_page(store, &tenant, &filter, cursor.as_ref(), limit)
    })
    .await?;
    Ok(Json(list))
}

fn list_page(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    filter: &ListFilter,
    cursor: Option<&ProductId>,
    limit: usize,
) -> Result<ProductList, ApiError> {
    let prefix = format!("{tenant}/");
    let mut after = cursor.map(|c| format!("{prefix}{c}"));
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let want = (limit * 2).clamp(20, 200);
        let page = store.scan::<ProductState>(tables::PRODUCT, &prefix, after.as_deref(), want)?;
        let exhausted = page.len() < want;
        for (row_key, state) in page {
            scanned += 1;
            let id = row_key
                .strip_prefix(&prefix)
                .unwrap_or(&row_key)
                .to_string();
            after = Some(row_key);
            if let Some(summary) = matching_summary(store, tenant, filter, state)? {
                items.push(summary);
                if items.len() == limit {
                    return Ok(ProductList {
                        items,
                        next_cursor: Some(id),
                    });
                }
            }
            if scanned >= LIST_SCAN_BUDGET {
                return Ok(ProductList {
                    items,
                    next_cursor: Some(id),
                });
            }
        }
        if exhausted {
            return Ok(ProductList {
                items,
                next_cursor: None,
            });
        }
    }
}

fn matching_summary(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    filter: &ListFilter,
    state: ProductState,
) -> Result<Option<ProductSummary>, ApiError> {
    let Some(product) = state.product else {
        return Ok(None);
    };
    if state.status == ProductStatus::Absent || filter.status.is_some_and(|s| s != state.status) {
        return Ok(None);
    }
    if filter.needs_offers() {
        let activation: Option<ActivationState> = store.get(
            tables::ACTIVATION,
            &key(&[tenant.as_str(), product.product_id.as_str()]),
        )?;
        if !activation.is_some_and(|a| filter.offers_match(&a)) {
            return Ok(None);
        }
    }
    Ok(Some(ProductSummary {
        product_id: product.product_id.to_string(),
        title: product.title,
        status: state.status.as_str().to_string(),
        brand: product.brand,
        category: product.category,
        missing: state.missing,
        version: state.version,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// 1 to 1000, 100 by default.
    #[param(value_type = Option<usize>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One transition of the product's history, in any module.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryView {
    /// Microseconds since the epoch.
    pub at: i64,
    pub module: String,
    pub event: String,
    pub aggregate_id: String,
    pub version: i64,
    pub event_id: String,
    pub causation_id: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        Self {
            at: h.at,
            module: h.module,
            event: h.event,
            aggregate_id: h.aggregate_id,
            version: h.version,
            event_id: h.event_id,
            causation_id: h.causation_id,
            detail: h.detail,
        }
    }
}

/// A page of history from `cursor` on. A row holds what one cause did in one module (one entry
/// or several), so a cursor names a row and, when the page ended inside it, the entry to go on
/// from (`<row>~<entry>`).
fn history_page(
    store: &(dyn Store + 'static),
    prefix: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<HistoryPage, ApiError> {
    let mut entries: Vec<HistoryView> = Vec::new();
    let mut after = None;
    if let Some(c) = cursor {
        let (row, skip) = match c.rsplit_once('~') {
            Some((row, skip)) => (
                row,
                skip.parse::<usize>()
                    .map_err(|_| ApiError::invalid("cursor", "not a cursor of this history"))?,
            ),
            None => (c, usize::MAX),
        };
        let row_key = format!("{prefix}{row}");
        if skip != usize::MAX {
            if let Some(stored) = store.get::<StoredHistory>(tables::HISTORY, &row_key)? {
                let rest: Vec<HistoryEntry> = stored.entries().into_iter().skip(skip).collect();
                if rest.len() > limit {
                    let entries = rest
                        .into_iter()
                        .take(limit)
                        .map(HistoryView::from)
                        .collect();
                    return Ok(HistoryPage {
                        entries,
                        next_cursor: Some(format!("{row}~{}", skip + limit)),
                    });
                }
                entries.extend(rest.into_iter().map(HistoryView::from));
            }
        }
        if entries.len() == limit {
            return Ok(HistoryPage {
                entries,
                next_cursor: Some(row.to_string()),
            });
        }
        after = Some(row_key);
    }
    let mut next_cursor = None;
    while entries.len() < limit {
        let rows = store.scan::<StoredHistory>(tables::HISTORY, prefix, after.as_deref(), limit)?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = Some(last.clone());
        let full = rows.len() == limit;
        for (k, stored) in rows {
            let row_entries = stored.entries();
            let room = limit - entries.len();
            let suffix = k.strip_prefix(prefix).unwrap_or(&k).to_string();
            if row_entries.len() > room {
                entries.extend(row_entries.into_iter().take(room).map(HistoryView::from));
                next_cursor = Some(format!("{suffix}~{room}"));
                break;
            }
            entries.extend(row_entries.into_iter().map(HistoryView::from));
            if entries.len() == limit {
                next_cursor = Some(suffix);
                break;
            }
        }
        if next_cursor.is_some() || !full {
            break;
        }
    }
    Ok(HistoryPage {
        entries,
        next_cursor,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryPage {
    pub entries: Vec<HistoryView>,
    pub next_cursor: Option<String>,
}

/// Every transition of the product, oldest first.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/history",
    tag = "products",
    params(("id" = String, Path, description = "product id"), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn product_history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let product_id = path_product(id)?;
    let limit = parse_limit(q.limit.as_deref(), 100, 1000)?;
    let cursor = non_blank(q.cursor);
    let tenant = caller.tenant().clone();
    let page = blocking(&state, move |store| {
        existing_product(store, &tenant, &product_id)?;
        let prefix = product_prefix(&tenant, &product_id);
        history_page(store, &prefix, cursor.as_deref(), limit)
    })
    .await?;
    Ok(Json(page))
}
