//! What a test, the benchmark or the demo can turn: which catalogs and tokens exist, how slow
//! and how unreliable the fake is, and how fast its rate limit bites. All of it can change while
//! the fake runs ([`crate::FakeMeta::set_config`], `PUT /_fake/config`), so a test can break the
//! channel in the middle of a scenario and heal it again.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fake's behaviour. Every field has a default, so a JSON config names only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeConfig {
    /// Catalog id → the access token it accepts. Empty: any catalog exists and any non-empty
    /// token is accepted.
    pub catalogs: BTreeMap<String, String>,
    /// Delay before every answer of the Graph endpoints.
    pub latency_ms: u64,
    /// Inclusive range: each batch handle reports `finished` on a status poll whose number is
    /// drawn from it (1 = the first poll).
    pub polls_to_finish: (u32, u32),
    /// Share of Graph calls (every endpoint) that fail with a fault, 0 to 1.
    pub fault_rate: f64,
    /// The faults drawn from, each equally likely. Empty: no faults whatever the rate.
    pub fault_kinds: Vec<FaultKind>,
    /// The `Retry-After` of a [`FaultKind::TooManyRequests`] answer.
    pub retry_after_secs: u64,
    /// How long a [`FaultKind::Timeout`] holds the request before dropping the connection.
    pub hang_ms: u64,
    /// `items_batch` calls a catalog may make per window; 0 = unlimited.
    pub calls_per_window: u32,
    /// The rate limit's window.
    pub window_ms: u64,
    /// Seeds the fake's random draws (faults, polls to finish, trace ids; handles are always
    /// fresh).
    pub seed: u64,
    /// The business the usage header reports on.
    pub business_id: String,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            catalogs: BTreeMap::new(),
            latency_ms: 0,
            polls_to_finish: (1, 1),
            fault_rate: 0.0,
            fault_kinds: FaultKind::ALL.to_vec(),
            retry_after_secs: 1,
            hang_ms: 5000,
            calls_per_window: 0,
            window_ms: 0,
            seed: 0,
            business_id: "fake-business".into(),
        }
    }
}

/// A config the fake cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("fault_rate must be between 0 and 1, not {0}")]
    FaultRate(f64),
    #[error("polls_to_finish must be a range of at least 1 poll with low <= high, not [{0}, {1}]")]
    PollsToFinish(u32, u32),
    #[error("calls_per_window needs a window_ms above 0")]
    NoWindow,
    #[error("business_id must not be empty")]
    NoBusiness,
}

impl FakeConfig {
    /// Refuses a config whose numbers make no sense, rather than guessing what was meant.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(ConfigError::FaultRate(self.fault_rate));
        }
        let (low, high) = self.polls_to_finish;
        if low == 0 || low > high {
            return Err(ConfigError::PollsToFinish(low, high));
        }
        if self.calls_per_window > 0 && self.window_ms == 0 {
            return Err(ConfigError::NoWindow);
        }
        if self.business_id.is_empty() {
            return Err(ConfigError::NoBusiness);
        }
        Ok(())
    }
}

/// The ways a call can go wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 429 with `Retry-After`, Graph error code 4 (application request limit).
    TooManyRequests,
    /// HTTP 400, Graph error code 80014 (too many calls for this catalog), usage at 100 %.
    CatalogThrottled,
    /// HTTP 500 or 503 in turn, Graph error code 1 or 2, transient.
    ServerError,
    /// No answer: the request is held `hang_ms`, then the connection is dropped. Every second
    /// `items_batch` timeout happens after the batch was accepted and applied.
    Timeout,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::TooManyRequests,
        FaultKind::CatalogThrottled,
        FaultKind::ServerError,
        FaultKind::Timeout,
    ];
}

/// A per-item check on top of Meta's own: an item whose `field` (text) contains `contains`,
/// case-insensitively, is rejected with `message` — how a test makes one item of a batch fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRule {
    pub field: String,
    pub contains: String,
    pub message: String,
}

impl RejectRule {
    /// Whether the rule rejects an item with these fields.
    pub fn rejects(&self, item: &serde_json::Map<String, serde_json::Value>) -> bool {
        item.get(&self.field)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|text| text.to_lowercase().contains(&self.contains.to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_partial_config_takes_defaults_for_the_rest() {
        let config: FakeConfig =
            serde_json::from_value(json!({"fault_rate": 0.5, "fault_kinds": ["timeout"]}))
                .expect("config");
        assert_eq!(config.fault_kinds, vec![FaultKind::Timeout]);
        assert_eq!(config.polls_to_finish, (1, 1));
        assert_eq!(config.hang_ms, 5000);
        assert!(config.check().is_ok());
    }

    #[test]
    fn a_misspelt_field_is_refused() {
        assert!(serde_json::from_value::<FakeConfig>(json!({"latency": 5})).is_err());
    }

    #[test]
    fn nonsense_numbers_are_refused() {
        let bad = [
            FakeConfig {
                fault_rate: 1.5,
                ..FakeConfig::default()
            },
            FakeConfig {
                polls_to_finish: (3, 2),
                ..FakeConfig::default()
            },
            FakeConfig {
                polls_to_finish: (0, 2),
                ..FakeConfig::default()
            },
            FakeConfig {
                calls_per_window: 5,
                ..FakeConfig::default()
            },
        ];
        for config in bad {
            assert!(config.check().is_err(), "{config:?}");
        }
    }

    #[test]
    fn a_rule_matches_text_whatever_its_case() {
        let rule = RejectRule {
            field: "title".into(),
            contains: "Counterfeit".into(),
            message: "no fakes".into(),
        };
        let item = json!({"title": "A COUNTERFEIT bag", "price": 3});
        assert!(rule.rejects(item.as_object().expect("object")));
        let other = json!({"title": "A bag"});
        assert!(!rule.rejects(other.as_object().expect("object")));
        let not_text = json!({"title": 7});
        assert!(!rule.rejects(not_text.as_object().expect("object")));
    }
}
