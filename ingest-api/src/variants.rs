//! Variants: the SKUs of a product (one or many per request), changed and discontinued by SKU.

use crate::auth::Writer;
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem, Violations};
use crate::extract::{from_value, ApiJson, ApiPath};
use crate::products::checked_product;
use crate::reads::sku_owner;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{patch, post};
use axum::Router;
use porch_processors::store::Claim;
use porch_schemas::{
    CreateVariants, Dimensions, DiscontinueVariant, ProductId, Sku, UpdateVariant, VariantData,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

const MAX_VARIANTS: usize = 100;
const MAX_OPTIONS: usize = 50;
const MAX_OPTION_TEXT: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products/{id}/variants", post(create_variants))
        .route("/v1/variants/{sku}", patch(patch_variant))
        .route("/v1/variants/{sku}/discontinue", post(discontinue_variant))
}

/// One SKU: its physical reality (never price or stock).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    pub sku: String,
    /// Size, colour…
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub weight_grams: Option<i64>,
    pub dimensions: Option<DimensionsInput>,
    /// GTIN-8, -12, -13 or -14.
    pub gtin: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DimensionsInput {
    pub length_mm: i64,
    pub width_mm: i64,
    pub height_mm: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantList {
    pub variants: Vec<VariantInput>,
}

/// Either `{"variants": [...]}` or a single variant. Parsed by `from_json` (which tells the
/// forms apart by their shape, so errors name the field); serde's untagged form describes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CreateVariantsBody {
    Many(VariantList),
    One(VariantInput),
}

impl CreateVariantsBody {
    /// The list form is told by its `variants` member, so errors name fields of the form meant.
    fn from_json(value: serde_json::Value) -> Result<Self, ApiError> {
        if value.get("variants").is_some() {
            from_value(value).map(CreateVariantsBody::Many)
        } else {
            from_value(value).map(CreateVariantsBody::One)
        }
    }

    /// The variants, with the path prefix of each in the request.
    fn into_variants(self) -> Vec<(String, VariantInput)> {
        match self {
            CreateVariantsBody::Many(list) => list
                .variants
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("variants[{i}]."), v))
                .collect(),
            CreateVariantsBody::One(v) => vec![(String::new(), v)],
        }
    }
}

/// Changes to a variant; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchVariantBody {
    pub options: Option<BTreeMap<String, String>>,
    pub weight_grams: Option<i64>,
    pub dimensions: Option<DimensionsInput>,
    pub gtin: Option<String>,
}

/// Creates one or many SKUs of a product, atomically; a SKU another product owns is a conflict.
#[utoipa::path(
    post,
    path = "/v1/products/{id}/variants",
    tag = "variants",
    params(("id" = String, Path, description = "product id")),
    request_body(content = CreateVariantsBody, description = "one variant, or {\"variants\": [...]}"),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_variants(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let inputs = CreateVariantsBody::from_json(body.value)?.into_variants();
    let mut v = Violations::default();
    v.ensure(!inputs.is_empty(), "variants", "at least one variant");
    v.ensure(
        inputs.len() <= MAX_VARIANTS,
        "variants",
        format!("at most {MAX_VARIANTS} variants per request"),
    );
    let mut seen = BTreeSet::new();
    let mut variants = Vec::new();
    for (prefix, input) in inputs {
        if let Some(variant) = variant_data(&mut v, &prefix, input) {
            v.ensure(
                seen.insert(variant.sku.clone()),
                &format!("{prefix}sku"),
                "the same SKU is listed twice",
            );
            variants.push(variant);
        }
    }
    v.finish()?;
    let product_id = checked_product(&state, &writer, id).await?;
    let claims = variants
        .iter()
        .map(|d| Claim::Sku {
            sku: d.sku.clone(),
            product_id: product_id.clone(),
        })
        .collect();
    let command = CreateVariants {
        product_id: product_id.clone(),
        variants,
    };
    submit(
        &state,
        &writer,
        &meta,
        &body.raw,
        NewCommand::new(command, product_id.as_str()).claiming(claims),
    )
    .await
}

fn variant_data(v: &mut Violations, prefix: &str, input: VariantInput) -> Option<VariantData> {
    let sku = v.check(&format!("{prefix}sku"), Sku::parse(input.sku));
    check_options(v, prefix, &input.options);
    check_weight(v, prefix, input.weight_grams);
    let dimensions = input.dimensions.map(|d| dimensions(v, prefix, d));
    check_gtin(v, prefix, input.gtin.as_deref());
    Some(VariantData {
        sku: sku?,
        options: input.options,
        weight_grams: input.weight_grams,
        dimensions,
        gtin: input.gtin,
    })
}

fn check_options(v: &mut Violations, prefix: &str, options: &BTreeMap<String, String>) {
    v.ensure(
        options.len() <= MAX_OPTIONS,
        &format!("{prefix}options"),
        format!("at most {MAX_OPTIONS} options"),
    );
    for (name, value) in options {
        v.ensure(
            !name.trim().is_empty()
                && name.len() <= MAX_OPTION_TEXT
                && value.len() <= MAX_OPTION_TEXT,
            &format!("{prefix}options.{name}"),
            format!("an option's name and value have 1 to {MAX_OPTION_TEXT} characters"),
        );
    }
}

fn check_weight(v: &mut Violations, prefix: &str, weight: Option<i64>) {
    v.ensure(
        weight.is_none_or(|w| w >= 0),
        &format!("{prefix}weight_grams"),
        "must not be negative",
    );
}

fn dimensions(v: &mut Violations, prefix: &str, d: DimensionsInput) -> Dimensions {
    for (name, value) in [
        ("length_mm", d.length_mm),
        ("width_mm", d.width_mm),
        ("height_mm", d.height_mm),
    ] {
        v.ensure(
            value >= 0,
            &format!("{prefix}dimensions.{name}"),
            "must not be negative",
        );
    }
    Dimensions {
        length_mm: d.length_mm,
        width_mm: d.width_mm,
        height_mm: d.height_mm,
    }
}

fn check_gtin(v: &mut Violations, prefix: &str, gtin: Option<&str>) {
    if let Some(gtin) = gtin {
        v.ensure(
            matches!(gtin.len(), 8 | 12 | 13 | 14) && gtin.chars().all(|c| c.is_ascii_digit()),
            &format!("{prefix}gtin"),
            "a GTIN is 8, 12, 13 or 14 digits",
        );
    }
}

/// The SKU of a path and the product that owns it, or 404.
async fn sku_product(
    state: &AppState,
    writer: &Writer,
    sku: String,
) -> Result<(Sku, ProductId), ApiError> {
    let sku = Sku::parse(sku).map_err(|_| ApiError::not_found("sku"))?;
    let product = sku_owner(state, writer.caller().tenant(), &sku).await?;
    let product = product.ok_or_else(|| ApiError::not_found(format!("sku '{sku}'")))?;
    Ok((sku, product))
}

/// Changes a variant's options, weight, dimensions or GTIN.
#[utoipa::path(
    patch,
    path = "/v1/variants/{sku}",
    tag = "variants",
    params(("sku" = String, Path, description = "SKU")),
    request_body = PatchVariantBody,
    responses(
        (status = 202, body = CommandAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_variant(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(sku): ApiPath<String>,
    body: ApiJson<PatchVariantBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let mut v = Violations::default();
    if let Some(options) = &b.options {
        check_options(&mut v, "", options);
    }
    check_weight(&mut v, "", b.weight_grams);
    let dimensions = b.dimensions.map(|d| dimensions(&mut v, "", d));
    check_gtin(&mut v, "", b.gtin.as_deref());
    v.finish()?;
    let (sku, product_id) = sku_product(&state, &writer, sku).await?;
    let command = UpdateVariant {
        product_id: product_id.clone(),
        sku,
        options: b.options,
        weight_grams: b.weight_grams,
        dimensions,
        gtin: b.gtin,
    };
    submit(
        &state,
        &writer,
        &meta,
        &body.raw,
        NewCommand::new(command, product_id.as_str()),
    )
    .await
}

/// Discontinues a variant: its offers end.
#[utoipa::path(
    post,
    path = "/v1/variants/{sku}/discontinue",
    tag = "variants",
    params(("sku" = String, Path, description = "SKU")),
    responses((status = 202, body = CommandAccepted), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn discontinue_variant(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    ApiPath(sku): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (sku, product_id) = sku_product(&state, &writer, sku).await?;
    let command = DiscontinueVariant {
        product_id: product_id.clone(),
        sku,
    };
    submit(
        &state,
        &writer,
        &meta,
        b"",
        NewCommand::new(command, product_id.as_str()),
    )
    .await
}
