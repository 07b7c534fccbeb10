//! How `porch connector mercadolibre` (and `porch up`) reaches Mercado Libre's API, lists items
//! and refreshes sellers' tokens: `[connectors.mercadolibre]` in the config file.

use crate::sink::{RetryPolicy, SinkSettings};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Listing types Mercado Libre takes (`listing_type_id`).
pub const LISTING_TYPES: [&str; 7] = [
    "free",
    "bronze",
    "silver",
    "gold",
    "gold_special",
    "gold_premium",
    "gold_pro",
];

/// Buying modes Mercado Libre takes (`buying_mode`).
pub const BUYING_MODES: [&str; 3] = ["buy_it_now", "classified", "auction"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MercadoLibreConfig {
    /// The API: `https://api.mercadolibre.com`, or a fake's URL.
    pub api_url: String,
    /// The OAuth token endpoint (refresh tokens are exchanged here).
    pub token_url: String,
    /// The listing type of a new item, unless the product's `listing_type_id` override says
    /// otherwise.
    pub listing_type_id: String,
    pub buying_mode: String,
    /// Requests of one account acted on together (Mercado Libre has no batch write: each is its
    /// own calls).
    pub batch_size: usize,
    /// How long a batch that is not full waits for more requests.
    pub linger_ms: u64,
    /// Batches under way at once, over every account.
    pub max_in_flight: usize,
    /// … and for one seller account: Mercado Libre's limits are per app and user.
    pub max_in_flight_per_account: usize,
    /// Requests of one batch under way at once (each a few calls in turn).
    pub calls_per_batch: usize,
    /// A call with no answer after this long is a timeout (retried; a create then looks for the
    /// item by SKU before sending it again).
    pub timeout_ms: u64,
    /// Tries of one call, the first included, before its request is a dead letter.
    pub max_attempts: u32,
    /// The first retry's wait; each next one doubles (with jitter), up to `max_backoff_ms`.
    /// Mercado Libre publishes no rate limit and sends no Retry-After.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// An access token is refreshed this long before it expires.
    pub refresh_margin_secs: u64,
    /// How long one process holds a seller's refresh (others wait for its result meanwhile).
    /// Longer than `timeout_ms`, so a refresh never outlives its lease.
    pub token_lease_ms: u64,
}

impl Default for MercadoLibreConfig {
    fn default() -> Self {
        MercadoLibreConfig {
            api_url: "https://api.mercadolibre.com".into(),
            token_url: "https://api.mercadolibre.com/oauth/token".into(),
            listing_type_id: "gold_special".into(),
            buying_mode: "buy_it_now".into(),
            batch_size: 20,
            linger_ms: 100,
            max_in_flight: 64,
            max_in_flight_per_account: 4,
            calls_per_batch: 4,
            timeout_ms: 15_000,
            max_attempts: 8,
            backoff_ms: 250,
            max_backoff_ms: 30_000,
            refresh_margin_secs: 300,
            token_lease_ms: 30_000,
        }
    }
}

impl MercadoLibreConfig {
    /// Refuses settings that cannot work, naming them.
    pub fn validate(&self) -> Result<(), String> {
        for (name, url) in [("api_url", &self.api_url), ("token_url", &self.token_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!(
                    "connectors.mercadolibre.{name} must be an http(s) URL, not {url:?}"
                ));
            }
        }
        if !LISTING_TYPES.contains(&self.listing_type_id.as_str()) {
            return Err(format!(
                "connectors.mercadolibre.listing_type_id must be one of {}",
                LISTING_TYPES.join(", ")
            ));
        }
        if !BUYING_MODES.contains(&self.buying_mode.as_str()) {
            return Err(format!(
                "connectors.mercadolibre.buying_mode must be one of {}",
                BUYING_MODES.join(", ")
            ));
        }
        if !(1..=1_000).contains(&self.batch_size) {
            return Err("connectors.mercadolibre.batch_size must be 1 to 1000".into());
        }
        if self.max_in_flight == 0
            || self.max_in_flight_per_account == 0
            || self.calls_per_batch == 0
            || self.max_attempts == 0
            || self.timeout_ms == 0
        {
            return Err(
                "connectors.mercadolibre.max_in_flight, max_in_flight_per_account, \
                 calls_per_batch, max_attempts and timeout_ms must be above zero"
                    .into(),
            );
        }
        if self.token_lease_ms <= self.timeout_ms {
            return Err(
                "connectors.mercadolibre.token_lease_ms must be longer than timeout_ms: a \
                 refresh must end before another process may take it over"
                    .into(),
            );
        }
        // Access tokens live six hours: a margin of hours would refresh on every call.
        if self.refresh_margin_secs > 3_600 {
            return Err("connectors.mercadolibre.refresh_margin_secs must be at most 3600".into());
        }
        Ok(())
    }

    pub fn sink_settings(&self) -> SinkSettings {
        SinkSettings {
            batch_size: self.batch_size,
            linger: Duration::from_millis(self.linger_ms),
            max_in_flight: self.max_in_flight,
            max_in_flight_per_account: self.max_in_flight_per_account,
            max_queue: (self.batch_size * self.max_in_flight * 4).max(1_000),
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                base: Duration::from_millis(self.backoff_ms),
                max_backoff: Duration::from_millis(self.max_backoff_ms),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_nonsense_is_named() {
        assert_eq!(MercadoLibreConfig::default().validate(), Ok(()));
        let bad = [
            (
                MercadoLibreConfig {
                    api_url: "api.mercadolibre.com".into(),
                    ..Default::default()
                },
                "api_url",
            ),
            (
                MercadoLibreConfig {
                    listing_type_id: "platinum".into(),
                    ..Default::default()
                },
                "listing_type_id",
            ),
            (
                MercadoLibreConfig {
                    buying_mode: "haggle".into(),
                    ..Default::default()
                },
                "buying_mode",
            ),
            (
                MercadoLibreConfig {
                    token_lease_ms: 1_000,
                    ..Default::default()
                },
                "token_lease_ms",
            ),
            (
                MercadoLibreConfig {
                    calls_per_batch: 0,
                    ..Default::default()
                },
                "calls_per_batch",
            ),
        ];
        for (config, field) in bad {
            let e = config.validate().expect_err(field);
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn a_config_file_names_only_what_it_changes() {
        let c: MercadoLibreConfig =
            serde_json::from_str(r#"{"api_url": "http://127.0.0.1:9310"}"#).unwrap();
        assert_eq!(c.listing_type_id, "gold_special");
        assert_eq!(c.buying_mode, "buy_it_now");
        assert!(serde_json::from_str::<MercadoLibreConfig>(r#"{"apiurl": "x"}"#).is_err());
        assert_eq!(c.sink_settings().retry.max_attempts, 8);
    }
}
