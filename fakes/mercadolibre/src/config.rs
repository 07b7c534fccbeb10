//! What a test, the benchmark or the demo can turn: how slow and unreliable the fake is, how
//! often a good PUT answers `{}`, how long access tokens live, and how fast a seller's rate limit
//! bites. All of it can change while the fake runs ([`crate::FakeMercadoLibre::set_config`],
//! `PUT /_fake/config`), so a test can break the channel in the middle of a scenario and heal it.

use serde::{Deserialize, Serialize};

/// Six hours: the lifetime Mercado Libre gives an access token (`expires_in: 21600`).
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 21_600;

/// The longest title this fake accepts. Mercado Libre's limit is per category (60 is the common
/// one); the fake applies one limit everywhere.
pub const DEFAULT_MAX_TITLE_CHARS: usize = 60;

/// The fake's behaviour. Every field has a default, so a JSON config names only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeConfig {
    /// Delay before every answer of the API (token endpoint included).
    pub latency_ms: u64,
    /// Share of API calls (token endpoint included) that fail with a fault, 0 to 1.
    pub fault_rate: f64,
    /// The faults drawn from, each equally likely. Empty: no faults whatever the rate.
    pub fault_kinds: Vec<FaultKind>,
    /// How long a [`FaultKind::Timeout`] holds the request before dropping the connection.
    pub hang_ms: u64,
    /// Seeds the fake's random draws (faults and `{}` answers; tokens are always fresh).
    pub seed: u64,
    /// Share of successful `PUT /items/{id}` calls answered 200 `{}` instead of the item, 0 to 1.
    pub empty_put_rate: f64,
    /// The `expires_in` of every access token issued from now on.
    pub access_token_ttl_secs: u64,
    /// The longest `title` accepted, in characters.
    pub max_title_chars: usize,
    /// API calls one seller may make per window; 0 = unlimited. The token endpoint never counts.
    pub calls_per_window: u32,
    /// The rate limit's window.
    pub window_ms: u64,
    /// A `Retry-After` to put on every 429. Mercado Libre publishes no limit and sends none, so
    /// by default the fake sends none either.
    pub retry_after_secs: Option<u64>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            fault_rate: 0.0,
            fault_kinds: FaultKind::ALL.to_vec(),
            hang_ms: 5000,
            seed: 0,
            empty_put_rate: 0.0,
            access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
            max_title_chars: DEFAULT_MAX_TITLE_CHARS,
            calls_per_window: 0,
            window_ms: 0,
            retry_after_secs: None,
        }
    }
}

/// A config the fake cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be between 0 and 1, not {1}")]
    Rate(&'static str, f64),
    #[error("calls_per_window needs a window_ms above 0")]
    NoWindow,
    #[error("access_token_ttl_secs must be above 0")]
    NoTokenLifetime,
    #[error("max_title_chars must be above 0")]
    NoTitle,
}

impl FakeConfig {
    /// Refuses a config whose numbers make no sense, rather than guessing what was meant.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (name, rate) in [
            ("fault_rate", self.fault_rate),
            ("empty_put_rate", self.empty_put_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::Rate(name, rate));
            }
        }
        if self.calls_per_window > 0 && self.window_ms == 0 {
            return Err(ConfigError::NoWindow);
        }
        if self.access_token_ttl_secs == 0 {
            return Err(ConfigError::NoTokenLifetime);
        }
        if self.max_title_chars == 0 {
            return Err(ConfigError::NoTitle);
        }
        Ok(())
    }
}

/// The ways a call can go wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 429 `too_many_requests`, with no `Retry-After` unless the config sets one.
    TooManyRequests,
    /// HTTP 500, 502, 503 and 504 in turn.
    ServerError,
    /// No answer: the request is held `hang_ms`, then the connection is dropped. Every second
    /// `POST /items` timeout happens after the item was created.
    Timeout,
}

impl FaultKind {
    pub const ALL: [FaultKind; 3] = [
        FaultKind::TooManyRequests,
        FaultKind::ServerError,
        FaultKind::Timeout,
    ];
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
        assert_eq!(config.access_token_ttl_secs, 21_600);
        assert_eq!(config.max_title_chars, 60);
        assert_eq!(config.retry_after_secs, None);
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
                empty_put_rate: -0.1,
                ..FakeConfig::default()
            },
            FakeConfig {
                calls_per_window: 5,
                ..FakeConfig::default()
            },
            FakeConfig {
                access_token_ttl_secs: 0,
                ..FakeConfig::default()
            },
            FakeConfig {
                max_title_chars: 0,
                ..FakeConfig::default()
            },
        ];
        for config in bad {
            assert!(config.check().is_err(), "{config:?}");
        }
    }
}
