//! Kafka topic administration: `porch topics apply` makes a cluster match the catalogue.
//!
//! Applying creates what is missing and reconciles the topic configs the catalogue owns
//! (`retention.ms`, `cleanup.policy`, `min.insync.replicas`). It never changes a partition count
//! (that would move keys between partitions and break co-partitioning, DESIGN §4) nor a
//! replication factor (that needs a partition reassignment, an operator's decision): those
//! differences are reported as drift and left alone. Applying twice is a no-op, and two applies
//! racing each other are safe.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::catalogue::{dlq_of, Catalogue};
use crate::client_properties::{ClientProperties, PropertiesError};
use crate::liveness::Liveness;

/// Retention of dead-letter topics: long enough for someone to notice, inspect and replay.
pub const DLQ_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// How long one admin request may take before apply gives up.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`KafkaConfig::diagnose`] waits for a client to report why it cannot connect.
const DIAGNOSE_PATIENCE: Duration = Duration::from_secs(10);

/// Where the Kafka cluster is, how porch's clients talk to it and how porch names its topics
/// there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Prepended to every catalogue name (DESIGN §4's optional cluster prefix); lets several
    /// installations, or test suites, share one cluster.
    pub topic_prefix: String,
    /// The operator's librdkafka properties for every client (security, tuning).
    pub properties: ClientProperties,
}

impl KafkaConfig {
    /// `PORCH_KAFKA` (default `127.0.0.1:9092`), `PORCH_TOPIC_PREFIX` (default none) and the
    /// client properties of `PORCH_KAFKA_CONFIG_FILE` and `PORCH_KAFKA_CONFIG_*`.
    pub fn from_env() -> Result<Self, PropertiesError> {
        Ok(Self {
            bootstrap: std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into()),
            topic_prefix: std::env::var("PORCH_TOPIC_PREFIX").unwrap_or_default(),
            properties: ClientProperties::from_env()?,
        })
    }

    /// The name of a catalogue topic on the cluster.
    pub fn physical(&self, logical: &str) -> String {
        format!("{}{logical}", self.topic_prefix)
    }

    /// The catalogue name of a cluster topic, if it carries this configuration's prefix.
    pub fn logical<'a>(&self, physical: &'a str) -> Option<&'a str> {
        physical.strip_prefix(self.topic_prefix.as_str())
    }

    /// The settings every porch client starts from, the operator's properties included;
    /// callers add their role's settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = client_config(&self.bootstrap);
        for (key, value) in self.properties.iter() {
            c.set(key, value);
        }
        c
    }

    /// Why a client of this configuration cannot reach the cluster, in librdkafka's words: the
    /// first error it reports within `patience` (a SASL login refused, a certificate not
    /// trusted, no broker at the address). None if it connects, or reports nothing. Admin
    /// clients and failed metadata requests say only "broker transport failure": a consumer
    /// (whose poll serves the client's error events) asks again.
    pub fn diagnose(&self, patience: Duration) -> Option<String> {
        match self.reach(patience, true) {
            Ok(()) => None,
            Err(unreachable) => unreachable.reported,
        }
    }

    /// Waits until a broker answers a metadata request, for up to `PORCH_KAFKA_WAIT_SECS`
    /// (default 300) seconds: for suites that need the cluster and must fail, not skip,
    /// without it. The error names the last reason the client gave and says how to start one.
    pub fn wait_for_broker(&self) -> Result<(), String> {
        let patience = std::env::var("PORCH_KAFKA_WAIT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300);
        self.reach(Duration::from_secs(patience), false)
            .map_err(|unreachable| {
                format!(
                    "no Kafka broker at {} after {patience}s ({}); start one with \
                     `scripts/engines up`",
                    self.bootstrap,
                    unreachable.reported.unwrap_or(unreachable.metadata)
                )
            })
    }

    /// Asks the cluster for its metadata until a broker answers or `patience` runs out, with a
    /// consumer whose poll serves the client's error events. With `first_error`, gives up at
    /// the first error the client reports (a cause, for a diagnosis); otherwise waits through
    /// them (a broker still starting refuses connections).
    fn reach(&self, patience: Duration, first_error: bool) -> Result<(), Unreachable> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let liveness = Liveness::default();
        let consumer: BaseConsumer<Liveness> = self
            .client_config()
            .create_with_context(liveness.clone())
            .map_err(|e| Unreachable {
                reported: Some(format!("a client for {}: {e}", self.bootstrap)),
                metadata: String::new(),
            })?;
        let deadline = std::time::Instant::now() + patience;
        loop {
            // A diagnosis asks often, for the first error reported; a wait gives each request
            // time for a handshake of TLS and SASL on a loaded machine, within its patience.
            let round = if first_error {
                Duration::from_millis(500)
            } else {
                deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .clamp(Duration::from_millis(500), Duration::from_secs(5))
            };
            let metadata = match consumer.fetch_metadata(None, round) {
                Ok(md) if !md.brokers().is_empty() => return Ok(()),
                Ok(_) => "the cluster named no broker".to_string(),
                Err(e) => e.to_string(),
            };
            let _ = consumer.poll(Duration::from_millis(100));
            let reported = liveness.last_error();
            if (first_error && reported.is_some()) || std::time::Instant::now() >= deadline {
                return Err(Unreachable { reported, metadata });
            }
            if !first_error {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// Deletes every topic whose name starts with this configuration's topic prefix and says
    /// how many; an empty prefix deletes nothing (never every topic of the cluster). Blocks,
    /// with its requests on a thread and runtime of its own, so that a `Drop` inside an async
    /// runtime may call it.
    pub fn delete_prefixed_topics(&self) -> Result<usize, AdminError> {
        if self.topic_prefix.is_empty() {
            return Ok(0);
        }
        let cfg = self.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AdminError::Join(e.to_string()))?;
            let admin: AdminClient<DefaultClientContext> = cfg.client_config().create()?;
            let md = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
            let names: Vec<&str> = md
                .topics()
                .iter()
                .map(|t| t.name())
                .filter(|n| n.starts_with(&cfg.topic_prefix))
                .collect();
            if names.is_empty() {
                return Ok(0);
            }
            let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
            let results = rt.block_on(admin.delete_topics(&names, &opts))?;
            Ok(results.iter().filter(|r| r.is_ok()).count())
        })
        .join()
        .map_err(|_| AdminError::Join("the deleting thread panicked".into()))?
    }
}

/// Why [`KafkaConfig::reach`] gave up: the last error the client reported, if any, and what
/// the last metadata request said.
struct Unreachable {
    reported: Option<String>,
    metadata: String,
}

/// Deletes every topic under a configuration's (non-empty) topic prefix when dropped, passed
/// or failed: for test suites that make their topics under a prefix of their own.
pub struct DeletePrefixOnDrop(pub KafkaConfig);

impl Drop for DeletePrefixOnDrop {
    fn drop(&mut self) {
        let _ = self.0.delete_prefixed_topics();
    }
}

/// The settings every porch Kafka client starts from, for a cluster at `bootstrap`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "porch")
        // When every broker it knows is down at once (a one-broker cluster restarting),
        // librdkafka's default re-bootstrap drops the brokers it knew; a consumer group whose
        // coordinator was one of them then never finds a coordinator again ("no broker
        // available for coordinator query"), and a transactional call waiting for one blocks
        // past its timeout. Reconnecting to the known brokers is what a cluster whose brokers
        // keep their addresses needs. A client left knowing no broker at all (a Metadata
        // answer from a broker in controlled shutdown lists none) never recovers this way:
        // long-lived clients watch for that and are replaced (see `Liveness`).
        .set("metadata.recovery.strategy", "none");
    // librdkafka's own debug contexts (`cgrp`, `eos`, `fetch`, `all`…), for a look inside a
    // client; its lines go to the log at debug level (PORCH_LOG=librdkafka=debug).
    if let Ok(debug) = std::env::var("PORCH_KAFKA_DEBUG") {
        if !debug.is_empty() {
            c.set("debug", debug);
        }
    }
    c
}

/// Why applying the catalogue failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("kafka: {error} ({cause})")]
    Cluster { error: KafkaError, cause: String },
    #[error("{op} {topic}: {code}")]
    Topic {
        op: &'static str,
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("replication factor must be at least 1, got {0}")]
    ReplicationFactor(i32),
    #[error("metadata lookup did not finish: {0}")]
    Join(String),
    #[error("configs of {of}: {what}")]
    Configs { of: String, what: String },
}

/// How long each of [`group_liveness`]'s requests may take: a processor starting serves its
/// probes once it has the answer or has given up on it.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);

/// How the coordinator of consumer group `group` (the consumer protocol, KIP-848) judges its
/// members alive: the session timeout after which a silent member's partitions go to others,
/// and the interval at which members heartbeat. The group's own `consumer.session.timeout.ms`
/// and `consumer.heartbeat.interval.ms`, which default to the brokers' `group.consumer.*`.
/// rdkafka cannot read a group's configs once the group has settings of its own (their source,
/// GROUP_CONFIG, is unknown to it): then the least a broker allows any group, its
/// `group.consumer.min.session.timeout.ms` and `group.consumer.max.heartbeat.interval.ms`.
pub async fn group_liveness(
    cfg: &KafkaConfig,
    group: &str,
) -> Result<(Duration, Duration), AdminError> {
    LivenessReader::new(cfg)?.read(group).await
}

/// Reads groups' session timeouts and heartbeat intervals ([`group_liveness`]) again and again
/// on one admin client, its connections kept between reads.
pub struct LivenessReader {
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl LivenessReader {
    pub fn new(cfg: &KafkaConfig) -> Result<Self, AdminError> {
        Ok(LivenessReader {
            admin: Arc::new(cfg.client_config().create()?),
        })
    }

    /// See [`group_liveness`].
    pub async fn read(&self, group: &str) -> Result<(Duration, Duration), AdminError> {
        read_liveness(&self.admin, group).await
    }
}

async fn read_liveness(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    group: &str,
) -> Result<(Duration, Duration), AdminError> {
    let own = liveness_configs(
        admin,
        ResourceSpecifier::Group(group),
        [
            "consumer.session.timeout.ms",
            "consumer.heartbeat.interval.ms",
        ],
    )
    .await;
    let own_error = match own {
        Ok(liveness) => return Ok(liveness),
        Err(e) => e,
    };
    // Metadata requests block the calling thread.
    let broker = tokio::task::spawn_blocking({
        let admin = Arc::clone(admin);
        move || {
            let md = admin.inner().fetch_metadata(None, LIVENESS_TIMEOUT)?;
            Ok::<_, KafkaError>(md.brokers().first().map(|b| b.id()))
        }
    })
    .await
    .map_err(|e| AdminError::Join(e.to_string()))?
    .map_err(AdminError::from)
    .and_then(|id| {
        id.ok_or_else(|| AdminError::Configs {
            of: format!("group {group}"),
            what: "no broker in the metadata".into(),
        })
    });
    let least = match broker {
        Ok(broker) => {
            liveness_configs(
                admin,
                ResourceSpecifier::Broker(broker),
                [
                    "group.consumer.min.session.timeout.ms",
                    "group.consumer.max.heartbeat.interval.ms",
                ],
            )
            .await
        }
        Err(e) => Err(e),
    };
    least.map_err(|e| AdminError::Configs {
        of: format!("group {group}"),
        what: format!("{own_error}; then the brokers' least: {e}"),
    })
}

/// Two durations in milliseconds from a resource's configs: a session timeout and a heartbeat
/// interval.
async fn liveness_configs(
    admin: &AdminClient<DefaultClientContext>,
    resource: ResourceSpecifier<'_>,
    keys: [&str; 2],
) -> Result<(Duration, Duration), AdminError> {
    let opts = AdminOptions::new().request_timeout(Some(LIVENESS_TIMEOUT));
    let failed = |what: String| AdminError::Configs {
        of: format!("{resource:?}"),
        what,
    };
    let described = admin
        .describe_configs([&resource], &opts)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| failed("no answer".into()))?
        .map_err(|code| failed(code.to_string()))?;
    if described.entries.is_empty() {
        // rdkafka does not pass on an error about one resource: an empty answer is one.
        return Err(failed(
            "no configs in the answer (not authorised to describe them?)".into(),
        ));
    }
    let ms = |key: &str| {
        let value = described.get(key).and_then(|e| e.value.as_deref());
        value
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .ok_or_else(|| failed(format!("{key} is {value:?}")))
    };
    Ok((ms(keys[0])?, ms(keys[1])?))
}

/// A topic apply created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub topic: String,
    pub partitions: u32,
    pub replication_factor: i32,
}

/// One config value apply changed on an existing topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconfigured {
    pub topic: String,
    pub key: String,
    /// `None` when the broker reported no value.
    pub old: Option<String>,
    pub new: String,
}

/// A difference apply found and deliberately left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub topic: String,
    pub what: String,
}

/// What one apply did, topic names as they are on the cluster (prefixed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: Vec<Created>,
    pub reconfigured: Vec<Reconfigured>,
    pub drift: Vec<Drift>,
    /// Topics that already matched the catalogue.
    pub unchanged: Vec<String>,
}

impl ApplyReport {
    /// Nothing created, nothing changed, nothing out of line.
    pub fn is_unchanged(&self) -> bool {
        self.created.is_empty() && self.reconfigured.is_empty() && self.drift.is_empty()
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.created {
            writeln!(
                f,
                "created {} ({} partitions, replication factor {})",
                c.topic, c.partitions, c.replication_factor
            )?;
        }
        for r in &self.reconfigured {
            let old = r.old.as_deref().unwrap_or("(none)");
            writeln!(f, "reconfigured {} {}: {old} -> {}", r.topic, r.key, r.new)?;
        }
        for d in &self.drift {
            writeln!(f, "drift {}: {}", d.topic, d.what)?;
        }
        if self.is_unchanged() {
            writeln!(f, "unchanged ({} topics)", self.unchanged.len())
        } else if !self.unchanged.is_empty() {
            writeln!(f, "unchanged {} other topics", self.unchanged.len())
        } else {
            Ok(())
        }
    }
}

/// A topic as the catalogue wants it on the cluster.
struct Desired {
    name: String,
    configs: Vec<(&'static str, String)>,
}

fn desired_topics(cfg: &KafkaConfig, catalogue: &Catalogue) -> Vec<Desired> {
    let mut out = Vec::new();
    let mut push = |name: String, retention_ms: i64, cleanup: &str| {
        out.push(Desired {
            name,
            configs: vec![
                ("retention.ms", retention_ms.to_string()),
                ("cleanup.policy", cleanup.to_string()),
            ],
        })
    };
    for t in &catalogue.topics {
        push(cfg.physical(&t.name), t.retention_ms, &t.cleanup_policy);
        if t.dlq {
            push(cfg.physical(&dlq_of(&t.name)), DLQ_RETENTION_MS, "delete");
        }
    }
    out
}

/// `min.insync.replicas` for a topic with this many replicas: with one there is nothing to wait
/// for; with three, one may be down while producers with `acks=all` keep going.
fn min_insync_replicas(replication_factor: usize) -> String {
    replication_factor.saturating_sub(1).clamp(1, 2).to_string()
}

/// Partition count and replication factor of a topic on the cluster.
#[derive(Debug, Clone, Copy)]
struct Shape {
    partitions: usize,
    /// Replica counts seen across partitions (normally one value).
    min_rf: usize,
    max_rf: usize,
}

/// Makes the cluster hold every catalogue topic (dead-letter topics included) with the
/// catalogue's partition count and configs. See the module documentation for what it leaves alone.
pub async fn apply_topics(
    cfg: &KafkaConfig,
    catalogue: &Catalogue,
    replication_factor: i32,
) -> Result<ApplyReport, AdminError> {
    if replication_factor < 1 {
        return Err(AdminError::ReplicationFactor(replication_factor));
    }
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(cfg.client_config().create()?);
    match apply_with(cfg, catalogue, replication_factor, &admin).await {
        // "Broker transport failure" alone does not say that the credentials or the
        // certificate were refused: ask a client that reports what happened.
        Err(AdminError::Kafka(error)) => {
            let cfg = cfg.clone();
            let cause = tokio::task::spawn_blocking(move || cfg.diagnose(DIAGNOSE_PATIENCE))
                .await
                .ok()
                .flatten();
            Err(match cause {
                Some(cause) => AdminError::Cluster { error, cause },
                None => AdminError::Kafka(error),
            })
        }
        other => other,
    }
}

async fn apply_with(
    cfg: &KafkaConfig,
    catalogue: &Catalogue,
    replication_factor: i32,
    admin: &Arc<AdminClient<DefaultClientContext>>,
) -> Result<ApplyReport, AdminError> {
    let opts = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let desired = desired_topics(cfg, catalogue);
    let min_isr = min_insync_replicas(replication_factor as usize);
    let partitions = catalogue.partitions as i32;
    let mut report = ApplyReport::default();

    let mut shapes = shapes(admin).await?;
    let missing: Vec<&Desired> = desired
        .iter()
        .filter(|d| !shapes.contains_key(&d.name))
        .collect();
    if !missing.is_empty() {
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|d| {
                d.configs.iter().fold(
                    NewTopic::new(
                        &d.name,
                        partitions,
                        TopicReplication::Fixed(replication_factor),
                    )
                    .set("min.insync.replicas", &min_isr),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let mut raced = false;
        for result in admin.create_topics(&new_topics, &opts).await? {
            match result {
                Ok(topic) => report.created.push(Created {
                    topic,
                    partitions: catalogue.partitions,
                    replication_factor,
                }),
                // Someone else created it since we looked: reconcile it like any existing topic.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => raced = true,
                Err((topic, code)) => {
                    return Err(AdminError::Topic {
                        op: "create",
                        topic,
                        code,
                    })
                }
            }
        }
        if raced {
            shapes = shapes_of_all(admin, &desired).await?;
        }
    }
    let existing: Vec<&Desired> = desired
        .iter()
        .filter(|d| !report.created.iter().any(|c| c.topic == d.name))
        .collect();
    if existing.is_empty() {
        settle(admin, &opts, expectations(&report, &desired, &min_isr)).await;
        return Ok(report);
    }

    let specifiers: Vec<ResourceSpecifier<'_>> = existing
        .iter()
        .map(|d| ResourceSpecifier::Topic(&d.name))
        .collect();
    let described = admin.describe_configs(&specifiers, &opts).await?;
    let mut changes: Vec<(&Desired, BTreeMap<String, String>)> = Vec::new();
    for (d, described) in existing.iter().zip(described) {
        let resource = described.map_err(|code| AdminError::Topic {
            op: "describe configs of",
            topic: d.name.clone(),
            code,
        })?;
        let mut clean = true;
        let mut configs = d.configs.clone();
        if let Some(shape) = shapes.get(&d.name) {
            // Sized for the replicas the topic has, not the ones asked for: a min.insync.replicas
            // above its replica count would refuse every acks=all write.
            configs.push(("min.insync.replicas", min_insync_replicas(shape.min_rf)));
            if shape.partitions != partitions as usize {
                clean = false;
                report.drift.push(Drift {
                    topic: d.name.clone(),
                    what: format!(
                        "{} partitions, catalogue says {partitions} (left alone: changing it \
                         would move keys and break co-partitioning)",
                        shape.partitions
                    ),
                });
            }
            let rf = replication_factor as usize;
            if shape.min_rf != rf || shape.max_rf != rf {
                clean = false;
                let seen = if shape.min_rf == shape.max_rf {
                    shape.min_rf.to_string()
                } else {
                    format!("{}..{}", shape.min_rf, shape.max_rf)
                };
                report.drift.push(Drift {
                    topic: d.name.clone(),
                    what: format!(
                        "replication factor {seen}, wanted {rf} (left alone: needs a partition \
                         reassignment)"
                    ),
                });
            }
        }
        let entries = resource.entry_map();
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        for (key, value) in &configs {
            let current = entries.get(key).and_then(|e| e.value.as_deref());
            if current != Some(value.as_str()) {
                report.reconfigured.push(Reconfigured {
                    topic: d.name.clone(),
                    key: key.to_string(),
                    old: current.map(str::to_string),
                    new: value.clone(),
                });
                wanted.push((key, value));
            }
        }
        if wanted.is_empty() {
            if clean {
                report.unchanged.push(d.name.clone());
            }
            continue;
        }
        // AlterConfigs replaces a topic's whole dynamic config, so resend the overrides set on
        // the topic (by us or an operator) with ours on top. IncrementalAlterConfigs would not
        // need this but rdkafka does not wrap it. Sensitive values cannot be read back and are
        // not expected on topics.
        let mut full: BTreeMap<String, String> = resource
            .entries
            .iter()
            .filter(|e| e.source == ConfigSource::DynamicTopic && !e.is_read_only)
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        for (k, v) in wanted {
            full.insert(k.to_string(), v.to_string());
        }
        changes.push((d, full));
    }

    if !changes.is_empty() {
        let alters: Vec<AlterConfig<'_>> = changes
            .iter()
            .map(|(d, full)| {
                full.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(&d.name)),
                    |a, (k, v)| a.set(k, v),
                )
            })
            .collect();
        for result in admin.alter_configs(&alters, &opts).await? {
            if let Err((spec, code)) = result {
                let topic = match spec {
                    rdkafka::admin::OwnedResourceSpecifier::Topic(t) => t,
                    other => format!("{other:?}"),
                };
                return Err(AdminError::Topic {
                    op: "alter configs of",
                    topic,
                    code,
                });
            }
        }
    }
    settle(admin, &opts, expectations(&report, &desired, &min_isr)).await;
    Ok(report)
}

/// (topic, key, value) that this apply set and should now read back.
fn expectations(
    report: &ApplyReport,
    desired: &[Desired],
    min_isr: &str,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for c in &report.created {
        if let Some(d) = desired.iter().find(|d| d.name == c.topic) {
            for (k, v) in &d.configs {
                out.push((d.name.clone(), k.to_string(), v.clone()));
            }
            out.push((d.name.clone(), "min.insync.replicas".into(), min_isr.into()));
        }
    }
    for r in &report.reconfigured {
        out.push((r.topic.clone(), r.key.clone(), r.new.clone()));
    }
    out
}

/// Waits until DescribeConfigs shows what this apply set. KRaft brokers answer it from their
/// metadata cache, which trails a successful CreateTopics or AlterConfigs by some milliseconds;
/// without the wait an apply right after this one could read old values and "fix" them again.
/// Gives up quietly after a while: the changes are committed either way.
async fn settle(
    admin: &AdminClient<DefaultClientContext>,
    opts: &AdminOptions,
    mut expected: Vec<(String, String, String)>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !expected.is_empty() {
        let mut topics: Vec<&str> = expected.iter().map(|(t, _, _)| t.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        let specifiers: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let mut seen: HashMap<(String, String), String> = HashMap::new();
        if let Ok(described) = admin.describe_configs(&specifiers, opts).await {
            for (topic, resource) in topics.iter().zip(described) {
                for e in resource.iter().flat_map(|r| &r.entries) {
                    if let Some(v) = &e.value {
                        seen.insert((topic.to_string(), e.name.clone()), v.clone());
                    }
                }
            }
        }
        expected.retain(|(t, k, v)| seen.get(&(t.clone(), k.clone())) != Some(v));
        if expected.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                pending = expected.len(),
                "topic configs set by apply are not visible yet"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Shapes of every topic on the cluster, by name.
async fn shapes(
    admin: &Arc<AdminClient<DefaultClientContext>>,
) -> Result<HashMap<String, Shape>, AdminError> {
    let admin = Arc::clone(admin);
    // Metadata requests block the calling thread.
    tokio::task::spawn_blocking(move || {
        let md = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| {
                let rfs = t.partitions().iter().map(|p| p.replicas().len());
                let shape = Shape {
                    partitions: t.partitions().len(),
                    min_rf: rfs.clone().min().unwrap_or(0),
                    max_rf: rfs.max().unwrap_or(0),
                };
                (t.name().to_string(), shape)
            })
            .collect())
    })
    .await
    .map_err(|e| AdminError::Join(e.to_string()))?
}

/// Shapes after a creation race: retried until every desired topic shows up in metadata, which
/// may lag a creation by another client.
async fn shapes_of_all(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    desired: &[Desired],
) -> Result<HashMap<String, Shape>, AdminError> {
    let deadline = tokio::time::Instant::now() + ADMIN_TIMEOUT;
    loop {
        let shapes = shapes(admin).await?;
        let absent = desired.iter().find(|d| !shapes.contains_key(&d.name));
        match absent {
            None => return Ok(shapes),
            Some(d) if tokio::time::Instant::now() >= deadline => {
                return Err(AdminError::Topic {
                    op: "find",
                    topic: d.name.clone(),
                    code: RDKafkaErrorCode::UnknownTopicOrPartition,
                })
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_cluster_is_named_with_the_clients_reason() {
        let cfg = KafkaConfig {
            bootstrap: "127.0.0.1:9".into(),
            ..KafkaConfig::default()
        };
        let unreachable = cfg
            .reach(Duration::from_secs(3), false)
            .expect_err("nothing listens on port 9");
        let reason = unreachable.reported.expect("the client says why");
        assert!(reason.contains("127.0.0.1:9"), "{reason}");
        assert!(cfg.diagnose(Duration::from_secs(3)).is_some());
    }

    #[test]
    fn physical_names_carry_the_prefix() {
        let cfg = KafkaConfig {
            bootstrap: "127.0.0.1:9092".into(),
            topic_prefix: "t1-".into(),
            ..KafkaConfig::default()
        };
        assert_eq!(cfg.physical("offer.events"), "t1-offer.events");
        assert_eq!(cfg.logical("t1-offer.events"), Some("offer.events"));
        assert_eq!(cfg.logical("offer.events"), None);
    }

    #[test]
    fn desired_topics_cover_dead_letters_with_their_own_retention() {
        let cfg = KafkaConfig {
            bootstrap: String::new(),
            topic_prefix: "p.".into(),
            ..KafkaConfig::default()
        };
        let catalogue = Catalogue::builtin();
        let desired = desired_topics(&cfg, &catalogue);
        assert_eq!(desired.len(), catalogue.all_names().len());
        let dlq = desired
            .iter()
            .find(|d| d.name == "p.offer.events.dlq")
            .unwrap();
        assert!(dlq
            .configs
            .contains(&("retention.ms", DLQ_RETENTION_MS.to_string())));
        assert!(dlq.configs.contains(&("cleanup.policy", "delete".into())));
    }

    #[test]
    fn min_insync_replicas_leaves_room_for_one_replica_down() {
        let got: Vec<String> = (1..=5).map(min_insync_replicas).collect();
        assert_eq!(got, ["1", "1", "2", "2", "2"]);
    }

    #[test]
    fn an_empty_report_says_unchanged() {
        let report = ApplyReport {
            unchanged: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(report.to_string(), "unchanged (2 topics)\n");
        let report = ApplyReport {
            drift: vec![Drift {
                topic: "a".into(),
                what: "3 partitions".into(),
            }],
            ..Default::default()
        };
        assert_eq!(report.to_string(), "drift a: 3 partitions\n");
    }
}
