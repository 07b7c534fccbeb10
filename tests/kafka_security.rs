//! porch on a secured Kafka listener, as a managed cluster asks of its clients: TLS, then a
//! SASL/PLAIN login. `scripts/engines up` gives its Kafka such a listener (SASL_SSL, user
//! `porch`) beside the plaintext one, with a self-signed certificate; every role here reaches
//! Kafka only through it, configured by PORCH_KAFKA_CONFIG_* variables or a properties file.
//! Its Cassandra takes TLS beside plaintext on the CQL port, and the roles of the first test
//! reach the store over TLS too (PORCH_CQL_TLS_CA). The tests' own clients (clean-up) stay on
//! the plaintext listeners of PORCH_KAFKA and PORCH_CQL.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Output};

/// One setting that `scripts/engines env <engine>` prints.
fn engine_setting(engine: &str, name: &str) -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/engines"))
        .args(["env", engine])
        .output()
        .expect("run scripts/engines env");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("scripts/engines env {engine} printed no {name}: {text}"))
        .to_string()
}

/// The certificate an engine of `scripts/engines` presents for TLS, named by `setting`.
fn engine_certificate(engine: &str, setting: &str) -> PathBuf {
    let ca = PathBuf::from(engine_setting(engine, setting));
    assert!(
        ca.is_file(),
        "no certificate at {}: {engine} started before it took TLS needs \
         `scripts/engines down {engine} && scripts/engines up {engine}`",
        ca.display()
    );
    ca
}

/// The SASL_SSL listener of `scripts/engines` and the certificate that signs it.
fn secured_listener() -> (String, PathBuf) {
    (
        engine_setting("kafka", "PORCH_KAFKA_SASL_SSL"),
        engine_certificate("kafka", "PORCH_KAFKA_CA"),
    )
}

/// What a role needs to log in on the secured listener, as environment variables.
fn secured_env(password: &str) -> Vec<(String, String)> {
    let (listener, ca) = secured_listener();
    [
        ("PORCH_KAFKA", listener.as_str()),
        ("PORCH_KAFKA_CONFIG_SECURITY_PROTOCOL", "SASL_SSL"),
        ("PORCH_KAFKA_CONFIG_SASL_MECHANISM", "PLAIN"),
        ("PORCH_KAFKA_CONFIG_SASL_USERNAME", "porch"),
        ("PORCH_KAFKA_CONFIG_SASL_PASSWORD", password),
        ("PORCH_KAFKA_CONFIG_SSL_CA_LOCATION", ca.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `porch <args>` with `env`, and nothing of the caller's Kafka client properties or CQL
/// security settings.
fn porch(args: &[&str], env: &[(String, String)]) -> Output {
    porch_command()
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .expect("run porch")
}

fn prefix() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("sec{}.", &id[id.len() - 10..])
}

/// Plaintext topics of `prefix` (the tests' own view of the cluster).
fn topics_of(prefix: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let cfg = porch_topics::KafkaConfig::from_env().expect("Kafka client properties");
    let consumer: BaseConsumer = cfg.client_config().create().expect("a client");
    let md = consumer
        .fetch_metadata(None, std::time::Duration::from_secs(10))
        .expect("metadata");
    md.topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// How many client connections of the CQL port (of PORCH_CQL, asked in plaintext) speak TLS.
async fn tls_cql_connections() -> usize {
    let node = std::env::var("PORCH_CQL").unwrap_or_else(|_| "127.0.0.1:9042".into());
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(node.split(',').next().unwrap_or_default().trim())
        .build()
        .await
        .expect("a plaintext CQL session");
    let rows = session
        .query_unpaged("SELECT ssl_enabled FROM system_views.clients", ())
        .await
        .expect("system_views.clients")
        .into_rows_result()
        .expect("rows");
    rows.rows::<(Option<bool>,)>()
        .expect("ssl_enabled")
        .filter(|row| matches!(row, Ok((Some(true),))))
        .count()
}

#[tokio::test]
async fn every_role_reaches_kafka_through_a_sasl_ssl_listener_and_the_store_over_tls() {
    // Topics, registry, ingest API, the seven processors and the search connector, all over
    // TLS with a SASL login: idempotent and transactional producers, consumer groups,
    // read_committed readers and the registry's compacted topic; the schema migration, the
    // API's reads and claims and the processors' rows over TLS to the CQL port.
    let mut env = secured_env("porch-secret");
    let cql_ca = engine_certificate("cassandra", "PORCH_CQL_CA");
    env.push(("PORCH_CQL_TLS_CA".to_string(), cql_ca.display().to_string()));
    let tls_before = tls_cql_connections().await;
    let p = Porch::start_distributed_with(env).await;
    let key = admin_key("acme");
    let offer = list_one_offer(&p, &key, "shirt-1").await;
    let hits = p
        .eventually("the listing visible in GB", 60, || async {
            let hits = p.search(&key, "region=GB&q=linen").await;
            (!hits.is_empty()).then_some(hits)
        })
        .await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["offer_id"], offer.as_str());
    assert_eq!(hits[0]["available"], 10);

    // The roles' store sessions are the TLS connections the CQL port has (the Cassandra of
    // `scripts/engines` takes both; nothing else of this suite speaks TLS to it): the API's
    // and each processor's at least.
    let tls_sessions = tls_cql_connections().await.saturating_sub(tls_before);
    assert!(
        tls_sessions >= 8,
        "{tls_sessions} TLS connections to the CQL port: the roles did not reach the store over TLS"
    );

    // A data team's tap reads the events, decoded, over the same listener.
    let tapped = p.tool(&["tap", "product.events", "--max", "1"]);
    let first: serde_json::Value = serde_json::from_str(tapped.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("tap printed no JSON line ({e}): {tapped}"));
    assert!(
        tapped.contains("shirt-1"),
        "tap shows the product's event: {first}"
    );
}

#[tokio::test]
async fn a_properties_file_configures_the_clients_and_a_refused_login_is_named() {
    let env = secured_env("porch-secret");
    let dir = std::env::temp_dir().join(format!("porch-sec-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.properties");
    let props: String = env
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("PORCH_KAFKA_CONFIG_")?;
            Some(format!(
                "{}={v}\n",
                key.to_ascii_lowercase().replace('_', ".")
            ))
        })
        .collect();
    std::fs::write(&file, format!("# the secured listener\n{props}")).unwrap();
    let listener = &env[0];
    assert_eq!(listener.0, "PORCH_KAFKA");
    let with_file = [
        listener.clone(),
        (
            "PORCH_KAFKA_CONFIG_FILE".to_string(),
            file.display().to_string(),
        ),
    ];

    // The file alone logs in: the catalogue's topics are made through the secured listener.
    let prefix = prefix();
    let _cleanup = porch_topics::kafka_admin::DeletePrefixOnDrop(porch_topics::KafkaConfig {
        topic_prefix: prefix.clone(),
        ..porch_topics::KafkaConfig::from_env().expect("Kafka client properties")
    });
    let mut args = vec!["topics", "apply", "--topic-prefix", &prefix];
    let applied = porch(&args, &with_file);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let expected = porch_topics::Catalogue::builtin().all_names().len();
    assert_eq!(topics_of(&prefix).len(), expected);

    // A wrong password (a variable wins over the file) fails, and says why.
    let wrong = [
        with_file[0].clone(),
        with_file[1].clone(),
        (
            "PORCH_KAFKA_CONFIG_SASL_PASSWORD".to_string(),
            "not-the-password".to_string(),
        ),
    ];
    let other = prefix.replace("sec", "bad");
    args[3] = &other;
    let refused = porch(&args, &wrong);
    assert!(!refused.status.success(), "a wrong password was accepted");
    // The error itself, not only librdkafka's log lines before it.
    let error = error_line(&refused);
    assert!(
        error.contains("Authentication failed"),
        "the error names the refused login: {error}"
    );
    assert!(topics_of(&other).is_empty(), "nothing made without a login");

    // Settings exactly-once rests on are refused before anything connects.
    let unsafe_setting = [
        with_file[0].clone(),
        (
            "PORCH_KAFKA_CONFIG_ISOLATION_LEVEL".to_string(),
            "read_uncommitted".to_string(),
        ),
    ];
    let refused = porch(&args, &unsafe_setting);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("PORCH_KAFKA_CONFIG_ISOLATION_LEVEL") && stderr.contains("isolation.level"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A CQL setting that cannot mean what it says stops a role at start, before it waits on the
/// registry or the store, naming the variable: never a silent plaintext or anonymous session.
#[test]
fn a_half_given_cql_setting_stops_a_role_at_start() {
    let nowhere = |extra: (&str, &str)| -> Vec<(String, String)> {
        [
            // Nothing listens here: a role that went past its settings would wait, not fail.
            ("PORCH_REGISTRY_URL", "http://127.0.0.1:9"),
            ("PORCH_CQL", "127.0.0.1:9"),
            extra,
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    for (role, setting, named) in [
        (
            &["processor", "offer"][..],
            ("PORCH_CQL_TLS", "ture"),
            "PORCH_CQL_TLS=\"ture\"",
        ),
        (
            &["ingest-api", "--config", "porch.example.toml"][..],
            ("PORCH_CQL_USER", "porch"),
            "PORCH_CQL_PASSWORD is not",
        ),
        (
            &["schema", "migrate"][..],
            ("PORCH_CQL_PASSWORD", "s3cret"),
            "PORCH_CQL_USER is not",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = porch(role, &nowhere(setting));
        assert!(!out.status.success(), "{role:?} started with {setting:?}");
        let error = error_line(&out);
        assert!(error.contains(named), "{role:?}: {error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{role:?} took {:?} to refuse",
            started.elapsed()
        );
    }
}
