//! What a connector has done to each item, kept in the store by tenant and retailer id: the
//! latest request version it acted on, whether the channel may hold the item, and what the
//! channel confirmed. It makes every call idempotent by the channel's own keys: a create is
//! marked before it is sent, so a retry, a replay after a crash or another instance sends an
//! update instead; a request older than one already acted on (a stale dead letter redriven) is
//! dropped; a request already confirmed is answered again without a call.

use super::OnChannel;
use porch_schemas::Reason;
use serde::{Deserialize, Serialize};

/// `<connector>/<tenant>/<retailer id>` → [`LedgerEntry`].
pub const LEDGER_TABLE: &str = "connector_ledger";

pub fn ledger_key(connector: &str, item_key: &str) -> String {
    format!("{connector}/{item_key}")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The latest request version acted on.
    pub version: i64,
    /// A create was sent (maybe unanswered) and no delete confirmed since.
    pub created: bool,
    /// The channel confirmed it holds the item, and no delete since.
    #[serde(default)]
    pub present: bool,
    /// What the channel confirmed for `version`: LIVE, REJECTED or UNPUBLISHED.
    pub confirmed: Option<String>,
    #[serde(default)]
    pub issues: Vec<Reason>,
    #[serde(default)]
    pub channel_item_id: Option<String>,
}

impl LedgerEntry {
    pub fn on_channel(&self) -> OnChannel {
        if self.present {
            OnChannel::Present
        } else if self.created {
            OnChannel::Unknown
        } else {
            OnChannel::Absent
        }
    }
}

/// What a ledger write records, in the order it happens for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A create about to be sent.
    Marked = 1,
    /// What the channel confirmed.
    Confirmed = 2,
}

/// The write time of a ledger row: by request version, then step, so that a write for an
/// older request (from an instance whose partition moved on while its call was under way) can
/// never replace a newer one, whatever the clocks say.
pub fn write_time(version: i64, step: Step) -> i64 {
    version.saturating_mul(4) + step as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_request_always_writes_later() {
        assert!(write_time(1, Step::Confirmed) > write_time(1, Step::Marked));
        assert!(write_time(2, Step::Marked) > write_time(1, Step::Confirmed));
    }
}
