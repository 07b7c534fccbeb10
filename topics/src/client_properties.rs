//! librdkafka properties an operator gives every Kafka client of porch: what a secured cluster
//! asks of its clients (`security.protocol`, `sasl.*`, `ssl.*`) and any tuning of their own.
//!
//! They come from a properties file (`PORCH_KAFKA_CONFIG_FILE`, `key=value` lines like the
//! `--command-config` file of Kafka's tools) and from `PORCH_KAFKA_CONFIG_<NAME>` variables,
//! which win over the file: `PORCH_KAFKA_CONFIG_SASL_USERNAME` is `sasl.username`. Settings
//! porch's guarantees rest on (idempotence, transactions, read_committed, offset commits,
//! the consumer group) and the bootstrap servers (`PORCH_KAFKA`) are refused, so a typo in an
//! operator's file cannot turn exactly-once into at-least-once. librdkafka checks the rest
//! when a client is made and names a property it does not know.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The variable naming a properties file.
pub const FILE_VAR: &str = "PORCH_KAFKA_CONFIG_FILE";
/// The prefix of one-property variables.
pub const VAR_PREFIX: &str = "PORCH_KAFKA_CONFIG_";

/// Properties porch sets itself for its guarantees, or takes from elsewhere.
const REFUSED: &[(&str, &str)] = &[
    ("bootstrap.servers", "set PORCH_KAFKA (--kafka) instead"),
    ("metadata.broker.list", "set PORCH_KAFKA (--kafka) instead"),
    ("enable.idempotence", "porch's producers are idempotent"),
    ("transactional.id", "each processor instance names its own"),
    ("transaction.timeout.ms", "porch's processors set it"),
    ("isolation.level", "porch reads read_committed"),
    (
        "enable.auto.commit",
        "porch commits offsets in transactions",
    ),
    (
        "auto.commit.enable",
        "porch commits offsets in transactions",
    ),
    (
        "enable.auto.offset.store",
        "porch commits offsets in transactions",
    ),
    ("group.id", "each role names its consumer group"),
    ("group.protocol", "porch's processors choose it"),
    ("acks", "porch's producers need acks=all"),
    ("request.required.acks", "porch's producers need acks=all"),
];

/// Why the properties could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    #[error("reading Kafka client properties from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: `{line}` is not `key=value`")]
    Syntax { origin: String, line: String },
    #[error("{origin}: Kafka client property `{key}` cannot be set ({why})")]
    Refused {
        origin: String,
        key: String,
        why: &'static str,
    },
}

/// librdkafka properties for every client, in the order they are applied.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties(BTreeMap<String, String>);

impl ClientProperties {
    /// From `PORCH_KAFKA_CONFIG_FILE` (if set) and `PORCH_KAFKA_CONFIG_*` variables.
    pub fn from_env() -> Result<Self, PropertiesError> {
        let file = std::env::var(FILE_VAR).ok().filter(|f| !f.is_empty());
        Self::load(file.as_deref().map(Path::new), env_vars())
    }

    /// From a properties file (if any), then `PORCH_KAFKA_CONFIG_*` entries of `vars`.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, PropertiesError> {
        let mut props = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| PropertiesError::Read {
                path: path.display().to_string(),
                source,
            })?;
            props.read_file(&path.display().to_string(), &text)?;
        }
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(VAR_PREFIX) else {
                continue;
            };
            if name == FILE_VAR || rest.is_empty() {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace('_', ".");
            props.set(&name, key, value)?;
        }
        Ok(props)
    }

    /// `key=value` (or `key: value`) lines; `#` and `!` start comments, as in Java's
    /// properties files.
    fn read_file(&mut self, origin: &str, text: &str) -> Result<(), PropertiesError> {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                return Err(PropertiesError::Syntax {
                    origin: format!("{origin} line {}", n + 1),
                    line: line.into(),
                });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(PropertiesError::Syntax {
                    origin: format!("{origin} line {}", n + 1),
                    line: line.into(),
                });
            }
            self.set(
                &format!("{origin} line {}", n + 1),
                key.into(),
                value.trim().into(),
            )?;
        }
        Ok(())
    }

    fn set(&mut self, origin: &str, key: String, value: String) -> Result<(), PropertiesError> {
        if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
            return Err(PropertiesError::Refused {
                origin: origin.into(),
                key,
                why,
            });
        }
        self.0.insert(key, value);
        Ok(())
    }

    /// One property (for tests and for callers that build their own).
    pub fn with(mut self, key: &str, value: &str) -> Result<Self, PropertiesError> {
        self.set("with", key.into(), value.into())?;
        Ok(self)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The process's environment variables that are valid UTF-8 (others name no property).
pub fn env_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Whether a property's value is a secret, kept out of logs and debug output.
fn secret(key: &str) -> bool {
    [
        "password",
        "passphrase",
        "secret",
        ".pem",
        "jaas",
        "token",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| key.contains(s))
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (k, if secret(k) { "<redacted>" } else { v.as_str() })),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_name_properties_and_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("porch-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("client.properties");
        std::fs::write(
            &file,
            "# a secured cluster\nsecurity.protocol=SASL_SSL\n! also a comment\n\n\
             sasl.mechanism = PLAIN\nsasl.username: porch\nssl.ca.location=/etc/ca.pem\n",
        )
        .unwrap();
        let props = ClientProperties::load(
            Some(&file),
            vars(&[
                ("PORCH_KAFKA_CONFIG_SASL_USERNAME", "other"),
                ("PORCH_KAFKA_CONFIG_SASL_PASSWORD", "s3cret"),
                ("PORCH_KAFKA_CONFIG_FILE", "ignored"),
                ("PORCH_KAFKA", "ignored"),
                ("HOME", "ignored"),
            ]),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let all: Vec<_> = props.iter().collect();
        assert_eq!(
            all,
            vec![
                ("sasl.mechanism", "PLAIN"),
                ("sasl.password", "s3cret"),
                ("sasl.username", "other"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", "/etc/ca.pem"),
            ]
        );
    }

    #[test]
    fn settings_of_the_guarantees_are_refused_with_where_they_came_from() {
        let err =
            ClientProperties::load(None, vars(&[("PORCH_KAFKA_CONFIG_ISOLATION_LEVEL", "x")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("PORCH_KAFKA_CONFIG_ISOLATION_LEVEL"), "{err}");
        assert!(err.contains("isolation.level"), "{err}");
        let mut props = ClientProperties::default();
        let err = props
            .read_file("client.properties", "acks=1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("client.properties line 1"), "{err}");
        assert!(err.contains("`acks`"), "{err}");
        // librdkafka's aliases of refused settings too.
        for alias in ["request.required.acks=1", "auto.commit.enable=true"] {
            assert!(props.read_file("f", alias).is_err(), "{alias}");
        }
        let err = props
            .read_file("f", "security.protocol=SSL\njust words\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f line 2") && err.contains("just words"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = ClientProperties::load(Some(Path::new("/nonexistent/porch.properties")), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/porch.properties"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let props = ClientProperties::default()
            .with("sasl.password", "s3cret")
            .unwrap()
            .with("ssl.key.password", "k3y")
            .unwrap()
            .with("sasl.username", "porch")
            .unwrap();
        let props = props
            .with("ssl.key.passphrase", "phr4se")
            .unwrap()
            .with("sasl.oauthbearer.config", "principal=x t0ken")
            .unwrap();
        let shown = format!("{props:?}");
        for secret in ["s3cret", "k3y", "phr4se", "t0ken"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("porch"), "{shown}");
    }
}
