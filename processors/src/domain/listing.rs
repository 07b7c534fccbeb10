//! Step 7, the search listing per offer: HIDDEN → VISIBLE ↔ HIDDEN, from activation's events.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListingStatus {
    #[default]
    Hidden,
    Visible,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListingState {
    pub status: ListingStatus,
    pub listing: Option<Listing>,
    pub reasons: Vec<Reason>,
    pub version: i64,
}

pub struct SearchListing;
