//! How `porch connector meta` (and `porch up`) reaches Meta's Graph API and batches its calls:
//! `[connectors.meta]` in the config file.

use crate::sink::{RetryPolicy, SinkSettings};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaConfig {
    /// The Graph API with its version: `https://graph.facebook.com/v24.0`, or a fake's URL.
    pub graph_url: String,
    /// Requests per `items_batch` call (Meta takes up to 5,000 and recommends 3,000 or fewer).
    pub batch_size: usize,
    /// How long a batch that is not full waits for more requests.
    pub linger_ms: u64,
    /// `items_batch` calls under way at once (each with its status polls), over every catalog.
    pub max_in_flight: usize,
    /// … and for one catalog: Meta limits batch calls per catalog, and no catalog waits behind
    /// the others'.
    pub max_in_flight_per_catalog: usize,
    /// A call with no answer after this long is a timeout (retried; the batch is sent again as
    /// updates).
    pub timeout_ms: u64,
    /// The first wait before polling a batch's status; it grows by half up to
    /// `max_poll_interval_ms`.
    pub poll_interval_ms: u64,
    pub max_poll_interval_ms: u64,
    /// A batch whose status has not finished after this long is given up (dead letters).
    pub max_poll_ms: u64,
    /// Tries of one call, the first included, before its requests are dead letters.
    pub max_attempts: u32,
    /// The first retry's wait; each next one doubles, up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// The longest Meta's own throttling is waited for at once (its usage header counts in
    /// minutes); a call after that may be throttled again, which is harmless.
    pub max_throttle_ms: u64,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            graph_url: "https://graph.facebook.com/v24.0".into(),
            batch_size: 1_000,
            linger_ms: 200,
            max_in_flight: 64,
            max_in_flight_per_catalog: 4,
            timeout_ms: 30_000,
            poll_interval_ms: 250,
            max_poll_interval_ms: 2_000,
            max_poll_ms: 600_000,
            max_attempts: 8,
            backoff_ms: 200,
            max_backoff_ms: 30_000,
            max_throttle_ms: 300_000,
        }
    }
}

impl MetaConfig {
    /// Refuses settings that cannot work, naming them.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.graph_url.starts_with("https://") || self.graph_url.starts_with("http://")) {
            return Err(format!(
                "connectors.meta.graph_url must be an http(s) URL, not {:?}",
                self.graph_url
            ));
        }
        if !(1..=5_000).contains(&self.batch_size) {
            return Err("connectors.meta.batch_size must be 1 to 5000 (Meta's limit)".into());
        }
        if self.max_in_flight == 0
            || self.max_in_flight_per_catalog == 0
            || self.max_attempts == 0
            || self.timeout_ms == 0
        {
            return Err(
                "connectors.meta.max_in_flight, max_in_flight_per_catalog, max_attempts and \
                 timeout_ms must be above zero"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn sink_settings(&self) -> SinkSettings {
        SinkSettings {
            batch_size: self.batch_size,
            linger: Duration::from_millis(self.linger_ms),
            max_in_flight: self.max_in_flight,
            max_in_flight_per_account: self.max_in_flight_per_catalog,
            max_queue: (self.batch_size * 20).max(1_000),
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                base: Duration::from_millis(self.backoff_ms),
                max_backoff: Duration::from_millis(self.max_backoff_ms),
            },
        }
    }
}
