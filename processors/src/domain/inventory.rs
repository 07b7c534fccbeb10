//! Step 4, inventory per (seller, sku, region): ∅ → STOCK_READY ↔ OUT_OF_STOCK, built from stock
//! at each location of the region. available = on hand − reserved, never below zero.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StockStatus {
    StockReady,
    OutOfStock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocationStock {
    pub on_hand: i64,
    pub reserved: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub location: LocationId,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InventoryState {
    pub product_id: Option<ProductId>,
    pub seller: Option<SellerId>,
    pub sku: Option<Sku>,
    pub region: Option<RegionCode>,
    pub locations: BTreeMap<LocationId, LocationStock>,
    pub reservations: BTreeMap<ReservationId, Reservation>,
    /// None until the first stock arrives.
    pub status: Option<StockStatus>,
    pub version: i64,
}

impl InventoryState {
    /// Available across every location of the region.
    pub fn available(&self) -> i64 {
        self.locations.values().map(|l| (l.on_hand - l.reserved).max(0)).sum()
    }
}

pub struct Inventory;
