//! Step 5, compliance per (product, region): PENDING → APPROVED / REJECTED / MANUAL_REVIEW, by
//! rules per region, re-run whenever the product changes; MANUAL_REVIEW ends by a person's decision.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

/// The rules of one region, from the config file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionRules {
    /// Product attributes every product must carry in this region (e.g. `tax_code`).
    #[serde(default)]
    pub required_attributes: Vec<String>,
    /// Categories that may not be sold in this region.
    #[serde(default)]
    pub banned_categories: Vec<String>,
    /// Categories a person must approve in this region.
    #[serde(default)]
    pub review_categories: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
    ManualReview,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ComplianceState {
    pub product_id: Option<ProductId>,
    pub region: Option<RegionCode>,
    pub status: ComplianceStatus,
    pub reasons: Vec<Reason>,
    /// The category a person decided on, and what they decided; it stands while the category
    /// stays the same.
    pub manual_decision: Option<(String, bool)>,
    /// The category seen at the last evaluation.
    pub category: Option<String>,
    pub version: i64,
}

pub enum ComplianceInput {
    /// The product was created or changed: evaluate it against this region's rules.
    ProductChanged { product: ProductData, region: RegionCode, rules: RegionRules },
    /// A person's decision on a product in MANUAL_REVIEW.
    Decision(DecideCompliance),
}

pub struct Compliance;
