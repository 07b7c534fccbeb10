//! Step 2, the variants of a product: ∅ → SKU_CREATED → DISCONTINUED.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantEntry {
    pub data: VariantData,
    pub discontinued: bool,
}

/// All variants of one product (the aggregate is the product's variant set, so one command can
/// create many SKUs atomically).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VariantSetState {
    pub product_id: Option<ProductId>,
    pub variants: BTreeMap<Sku, VariantEntry>,
    pub version: i64,
}

pub struct Variants;
