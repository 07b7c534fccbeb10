//! What the fake remembers for its users to assert on: every item request it applied (the
//! ground truth a test compares porch's LIVE states with) and every Graph call it answered (how
//! many, which failed and how — what the benchmark counts).

use crate::config::FaultKind;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// An item request's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ItemMethod {
    Create,
    Update,
    Delete,
}

impl ItemMethod {
    /// The method as the batch names it; anything but the three upper-case names is refused.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "CREATE" => Some(ItemMethod::Create),
            "UPDATE" => Some(ItemMethod::Update),
            "DELETE" => Some(ItemMethod::Delete),
            _ => None,
        }
    }
}

/// One item request the fake applied: an item stored (created or changed) or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedRequest {
    pub catalog: String,
    pub method: ItemMethod,
    pub retailer_id: String,
    /// The request's `data`, as sent.
    pub data: serde_json::Value,
    /// The batch it came in.
    pub handle: String,
    /// When it was applied, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Whether the item did not exist before.
    pub created: bool,
    /// The item's Meta id after the request (the `id` the catalog's `products` edge lists);
    /// `None` for a DELETE. Given when the item is first stored, kept across updates, new for an
    /// item deleted and stored again.
    #[serde(default)]
    pub item_id: Option<String>,
}

/// Which Graph endpoint a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    ItemsBatch,
    Status,
    /// `GET /{catalog}/products`.
    Products,
}

/// One Graph call and how it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub kind: CallKind,
    pub catalog: String,
    /// The HTTP status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// The fault injected into this call, if one was.
    pub fault: Option<FaultKind>,
    /// The Graph error code answered, if the answer was an error.
    pub error_code: Option<i64>,
    /// The batch handle issued (`items_batch`, even when the answer was then dropped) or asked
    /// about (status); `None` for `products`.
    pub handle: Option<String>,
    /// When the call arrived, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Milliseconds since the Unix epoch, comparable across processes (the benchmark reads them
/// over HTTP).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
