//! Where the cluster is and how to talk to it.

use porch_processors::store::StoreError;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::Consistency;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    /// Used only when `migrate` creates the keyspace; an existing keyspace keeps its own.
    pub replication_factor: u32,
    /// Client-side limit of one request.
    pub request_timeout: Duration,
}

impl Default for CqlConfig {
    fn default() -> Self {
        CqlConfig {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "porch".into(),
            replication_factor: 1,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl CqlConfig {
    /// `PORCH_CQL` (comma-separated contact points, default 127.0.0.1:9042) and
    /// `PORCH_CQL_KEYSPACE` (default porch); the rest are defaults.
    pub fn from_env() -> Self {
        let mut config = CqlConfig::default();
        if let Ok(nodes) = std::env::var("PORCH_CQL") {
            let nodes: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect();
            if !nodes.is_empty() {
                config.nodes = nodes;
            }
        }
        if let Ok(keyspace) = std::env::var("PORCH_CQL_KEYSPACE") {
            if !keyspace.trim().is_empty() {
                config.keyspace = keyspace.trim().to_string();
            }
        }
        config
    }

    /// The keyspace name, checked: it is spliced into statement text.
    pub(crate) fn keyspace(&self) -> Result<&str, StoreError> {
        let ks = self.keyspace.as_str();
        let ok = ks.len() <= 48
            && ks.starts_with(|c: char| c.is_ascii_alphabetic())
            && ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(ks)
        } else {
            Err(StoreError::Backend(format!(
                "keyspace name {ks:?} must be a letter then up to 47 letters, digits or _"
            )))
        }
    }

    pub(crate) async fn open(&self) -> Result<Session, StoreError> {
        let profile = ExecutionProfile::builder()
            .consistency(Consistency::LocalQuorum)
            .request_timeout(Some(self.request_timeout))
            .build();
        SessionBuilder::new()
            .known_nodes(&self.nodes)
            .default_execution_profile_handle(profile.into_handle())
            // Writes without an explicit timestamp (checkpoints, the bucket index) get the
            // client's clock, never going backwards within this process.
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .build()
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to CQL at {:?}: {e}", self.nodes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_names_are_checked() {
        let named = |ks: &str| CqlConfig {
            keyspace: ks.into(),
            ..CqlConfig::default()
        };
        assert!(named("porch").keyspace().is_ok());
        assert!(named("porch_test_0a1b").keyspace().is_ok());
        assert!(named("1porch").keyspace().is_err());
        assert!(named("porch; DROP").keyspace().is_err());
        assert!(named("").keyspace().is_err());
        assert!(named(&"k".repeat(49)).keyspace().is_err());
    }
}
