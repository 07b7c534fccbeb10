//! Step 6, activation: the buy box. Keeps its own view of the product built from the other
//! modules' events (event-carried state transfer) and decides, per offer,
//! PENDING_ACTIVATION → ACTIVE ↔ SUSPENDED (with reasons) → ENDED.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivationStatus {
    #[default]
    PendingActivation,
    Active,
    Suspended,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductView {
    pub data: ProductData,
    /// DRAFT, READY, ACTIVE or INACTIVE, as the product module last said.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferView {
    pub data: OfferData,
    pub withdrawn: bool,
    pub status: ActivationStatus,
    pub reasons: Vec<Reason>,
    /// The listing last published in OfferActivated (to tell a real change from a repeat).
    pub listing: Option<Listing>,
    /// The offer's own version in activation.events.
    pub version: i64,
}

/// Activation's view of one product and every offer on it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivationState {
    pub product: Option<ProductView>,
    /// sku → discontinued
    pub variants: BTreeMap<Sku, VariantData>,
    pub discontinued: Vec<Sku>,
    /// region → compliance status (PENDING, APPROVED, REJECTED, MANUAL_REVIEW) with reasons
    pub compliance: BTreeMap<RegionCode, (String, Vec<Reason>)>,
    /// "seller/sku/region" → available
    pub stock: BTreeMap<String, i64>,
    pub offers: BTreeMap<OfferId, OfferView>,
}

pub enum ActivationInput {
    /// An event from product, variant, offer, inventory or compliance, with the time it is
    /// processed at (for validity windows).
    Observed { event: Event, now: Micros },
    /// Time passed: re-check validity windows.
    Tick { now: Micros },
}

pub struct Activation;
