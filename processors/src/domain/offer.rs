//! Step 3, the offer: ∅ → PENDING_ACTIVATION → WITHDRAWN. Activation (step 6) decides ACTIVE.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OfferState {
    pub offer: Option<OfferData>,
    pub withdrawn: bool,
    pub version: i64,
}

pub struct Offer;
