//! Where the cluster is and how to talk to it.

use porch_processors::store::StoreError;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, MetadataError,
    NewSessionError,
};
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::Consistency;
use std::fmt;
use std::path::PathBuf;
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
    /// A login, for a cluster with password authentication; None for one without.
    pub credentials: Option<Credentials>,
    /// TLS to every node; None for plaintext.
    pub tls: Option<CqlTls>,
}

/// A user and password for the cluster's PasswordAuthenticator (ScyllaDB's or Cassandra's).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// TLS to the nodes: each node's certificate is verified against the trusted certificates and
/// against the address it is reached at (an IP address in its subjectAltName).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CqlTls {
    /// PEM file of the certificates to trust; None trusts the system's.
    pub ca: Option<PathBuf>,
}

/// A login with a user and no password: refused from the environment and again on connecting.
const NO_PASSWORD: &str = "PORCH_CQL_USER is set but PORCH_CQL_PASSWORD is not";

impl Default for CqlConfig {
    fn default() -> Self {
        CqlConfig {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "porch".into(),
            replication_factor: 1,
            request_timeout: Duration::from_secs(10),
            credentials: None,
            tls: None,
        }
    }
}

impl CqlConfig {
    /// `PORCH_CQL` (comma-separated contact points, default 127.0.0.1:9042),
    /// `PORCH_CQL_KEYSPACE` (default porch), `PORCH_CQL_USER` and `PORCH_CQL_PASSWORD` (a
    /// login), `PORCH_CQL_TLS_CA` (TLS, trusting the certificates of that PEM file) or
    /// `PORCH_CQL_TLS=true` (TLS, trusting the system's); the rest are defaults. A setting
    /// that cannot mean what it says is refused, naming the variable: a `PORCH_CQL_TLS` that is
    /// neither on nor off, a password with no user, a user with no password.
    pub fn from_env() -> Result<Self, StoreError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, StoreError> {
        let mut config = CqlConfig::default();
        if let Some(nodes) = var("PORCH_CQL") {
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
        if let Some(keyspace) = var("PORCH_CQL_KEYSPACE") {
            if !keyspace.trim().is_empty() {
                config.keyspace = keyspace.trim().to_string();
            }
        }
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let refused = |why: String| Err(StoreError::Backend(why));
        match (set("PORCH_CQL_USER"), set("PORCH_CQL_PASSWORD")) {
            (Some(user), Some(password)) => {
                config.credentials = Some(Credentials {
                    user: user.trim().to_string(),
                    password,
                })
            }
            (Some(_), None) => return refused(NO_PASSWORD.into()),
            (None, Some(_)) => {
                return refused("PORCH_CQL_PASSWORD is set but PORCH_CQL_USER is not".into())
            }
            (None, None) => {}
        }
        let tls_on = match set("PORCH_CQL_TLS") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return refused(format!(
                        "PORCH_CQL_TLS={v:?}: expected true or false (or 1/0, yes/no, on/off)"
                    ))
                }
            },
        };
        let ca = set("PORCH_CQL_TLS_CA").map(|p| PathBuf::from(p.trim()));
        if tls_on || ca.is_some() {
            config.tls = Some(CqlTls { ca });
        }
        Ok(config)
    }

    /// The TLS context of `tls`: a client connector that verifies the nodes' certificates.
    fn tls_context(tls: &CqlTls) -> Result<openssl::ssl::SslConnectorBuilder, StoreError> {
        let failed = |what: String, e: openssl::error::ErrorStack| {
            StoreError::Backend(format!("{what}: {e}"))
        };
        let mut builder =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
                .map_err(|e| failed("a TLS context for CQL".into(), e))?;
        if let Some(ca) = &tls.ca {
            if !ca.is_file() {
                return Err(StoreError::Backend(format!(
                    "PORCH_CQL_TLS_CA: no certificate file at {}",
                    ca.display()
                )));
            }
            builder
                .set_ca_file(ca)
                .map_err(|e| failed(format!("PORCH_CQL_TLS_CA: reading {}", ca.display()), e))?;
        }
        Ok(builder)
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
        let mut builder = SessionBuilder::new()
            .known_nodes(&self.nodes)
            .default_execution_profile_handle(profile.into_handle())
            // Writes without an explicit timestamp (checkpoints, the bucket index) get the
            // client's clock, never going backwards within this process.
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
        if let Some(c) = &self.credentials {
            if c.password.is_empty() {
                return Err(StoreError::Refused(NO_PASSWORD.into()));
            }
            builder = builder.user(&c.user, &c.password);
        }
        if let Some(tls) = &self.tls {
            builder = builder.tls_context(Some(Self::tls_context(tls)?));
        }
        let security = match (&self.tls, &self.credentials) {
            (None, None) => String::new(),
            (tls, login) => format!(
                " ({}{})",
                if tls.is_some() { "TLS" } else { "plaintext" },
                login
                    .as_ref()
                    .map(|c| format!(", as {}", c.user))
                    .unwrap_or_default()
            ),
        };
        builder.build().await.map_err(|e| {
            let at = format!("connecting to CQL at {:?}{security}: {e}", self.nodes);
            match login_refused(&e) {
                Some(why) => StoreError::Refused(format!("{at} ({why})")),
                None => StoreError::Backend(at),
            }
        })
    }
}

/// Why a session could not be made, when the cluster refused its login or asked for one it
/// was not given; None for every other failure (a node down, say), which may pass. Only the
/// last node the driver tried is heard, and a node that cannot check a login yet answers as it
/// does a wrong password: a caller that waits for the cluster takes a refusal for final only
/// when it lasts.
fn login_refused(e: &NewSessionError) -> Option<&'static str> {
    let NewSessionError::MetadataError(MetadataError::ConnectionPoolError(
        ConnectionPoolError::Broken {
            last_connection_error: ConnectionError::ConnectionSetupRequestError(setup),
        },
    )) = e
    else {
        return None;
    };
    match setup.get_error() {
        ConnectionSetupRequestErrorKind::MissingAuthentication => {
            Some("the cluster asks for a login: set PORCH_CQL_USER and PORCH_CQL_PASSWORD")
        }
        ConnectionSetupRequestErrorKind::DbError(DbError::AuthenticationError, _) => {
            Some("the cluster refused the login of PORCH_CQL_USER and PORCH_CQL_PASSWORD")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<CqlConfig, StoreError> {
        CqlConfig::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn from(vars: &[(&str, &str)]) -> CqlConfig {
        parse(vars).expect("valid CQL settings")
    }

    fn refusal(vars: &[(&str, &str)]) -> String {
        parse(vars).expect_err("refused").to_string()
    }

    #[test]
    fn login_and_tls_come_from_the_environment() {
        let plain = from(&[("PORCH_CQL", "10.0.0.1:9042, 10.0.0.2:9042")]);
        assert_eq!(plain.nodes, ["10.0.0.1:9042", "10.0.0.2:9042"]);
        assert_eq!((plain.credentials, plain.tls), (None, None));

        let secured = from(&[
            ("PORCH_CQL_USER", "porch"),
            ("PORCH_CQL_PASSWORD", "s3cret"),
            ("PORCH_CQL_TLS_CA", "/etc/porch/ca.pem"),
        ]);
        let login = secured.credentials.clone().expect("a login");
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("porch", "s3cret")
        );
        assert_eq!(
            secured.tls,
            Some(CqlTls {
                ca: Some("/etc/porch/ca.pem".into())
            })
        );
        let shown = format!("{secured:?}");
        assert!(!shown.contains("s3cret"), "{shown}");

        assert_eq!(
            from(&[("PORCH_CQL_TLS", "true")]).tls,
            Some(CqlTls { ca: None })
        );
        assert_eq!(from(&[("PORCH_CQL_TLS", "false")]).tls, None);
        assert_eq!(from(&[("PORCH_CQL_TLS", " Off ")]).tls, None);
        assert_eq!(from(&[("PORCH_CQL_USER", " ")]).credentials, None);
    }

    #[test]
    fn settings_that_cannot_mean_what_they_say_are_refused_by_name() {
        let e = refusal(&[("PORCH_CQL_TLS", "ture")]);
        assert!(e.contains("PORCH_CQL_TLS=\"ture\""), "{e}");
        let e = refusal(&[("PORCH_CQL_USER", "porch")]);
        assert!(e.contains("PORCH_CQL_PASSWORD is not"), "{e}");
        let e = refusal(&[("PORCH_CQL_PASSWORD", "s3cret")]);
        assert!(e.contains("PORCH_CQL_USER is not"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn a_login_without_a_password_or_a_missing_ca_is_refused_before_connecting() {
        // Set in code rather than from the environment: open() checks again.
        let no_password = CqlConfig {
            credentials: Some(Credentials {
                user: "porch".into(),
                password: String::new(),
            }),
            ..CqlConfig::default()
        };
        let e = no_password.open().await.expect_err("refused").to_string();
        assert!(e.contains("PORCH_CQL_PASSWORD"), "{e}");
        let no_ca = from(&[("PORCH_CQL_TLS_CA", "/nonexistent/ca.pem")]);
        let e = no_ca.open().await.expect_err("refused").to_string();
        assert!(
            e.contains("PORCH_CQL_TLS_CA") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }

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
