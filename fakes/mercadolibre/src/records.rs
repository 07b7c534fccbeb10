//! What the fake remembers for its users to assert on: every item change it made (the ground
//! truth a test compares porch's LIVE states with) and every API call it answered (how many,
//! which failed and how, which seller refreshed how often — what the benchmark counts).

use crate::config::FaultKind;
use crate::item::ItemStatus;
use serde::{Deserialize, Serialize};

/// Which endpoint a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// `POST /oauth/token`.
    Token,
    /// `POST /items`.
    CreateItem,
    /// `GET /items/{id}`.
    GetItem,
    /// `GET /items?ids=…`.
    Multiget,
    /// `PUT /items/{id}`.
    UpdateItem,
    /// `GET /users/{user_id}/items/search`.
    SearchItems,
}

/// One API call and how it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub kind: CallKind,
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The seller the call was made for, once known: from the access token, or from the code or
    /// refresh token at the token endpoint. `None` when the token was missing or unknown.
    pub user_id: Option<u64>,
    /// The HTTP status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// The fault injected into this call, if one was.
    pub fault: Option<FaultKind>,
    /// Whether a successful PUT was answered `{}` instead of the item.
    pub empty_answer: bool,
    /// The refusal's first cause code, or its `error` (`invalid_grant`, `too_many_requests`…).
    pub error: Option<String>,
    /// The item created, read or changed; for a dropped `POST /items`, the item it created
    /// anyway.
    pub item_id: Option<String>,
    /// The token endpoint's `grant_type`, as sent.
    pub grant_type: Option<String>,
    /// When the call arrived, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// What a change did to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// `POST /items`.
    Create,
    /// `PUT /items/{id}`.
    Update,
    /// `POST /_fake/items/{id}/sale`: a buyer bought units.
    Sale,
}

/// One change the fake made to an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    pub item_id: String,
    pub seller_id: u64,
    /// The item's SKU after the change (`seller_custom_field`, else its `SELLER_SKU` attribute).
    pub sku: Option<String>,
    pub kind: ChangeKind,
    /// The request body as sent; for a sale, `{"quantity": n}`.
    pub data: serde_json::Value,
    /// The item's status after the change.
    pub status: ItemStatus,
    /// When the change was made, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A SKU with more than one item that is not closed, for one seller: what a blind retry of a
/// create leaves behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicate {
    pub seller_id: u64,
    pub sku: String,
    /// The items, oldest first.
    pub item_ids: Vec<String>,
}
