//! The registry's records in a compacted, single-partition Kafka topic (default
//! `_porch_schemas`), keyed and valued as Confluent's registry keeps its `_schemas` topic:
//!
//! - `{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}` →
//!   `{"subject":"s","version":1,"id":7,"schema":"…","deleted":false}`
//! - `{"keytype":"CONFIG","subject":"s","magic":0}` (`"subject":null` for the global level) →
//!   `{"compatibilityLevel":"FULL"}`, or no value when a subject's level is cleared.
//!
//! The topic is the registry: on start the server reads it from the beginning and is ready once
//! it reaches the end; a write is produced (idempotent producer, acks=all) and acknowledged only
//! once the reader has applied it, so every answer comes from the one state the topic builds.
//!
//! There must be a single writer: run one `porch registry` per topic. Ids and versions are
//! decided from the state this process has read, so two writers could issue the same id for
//! different schemas. (Confluent elects a leader for this; porch does not need more than one
//! instance, and every codec caches what it was told.)

use crate::storage::{Storage, StorageError, StorageFuture};
use porch_schemas::{CompatibilityLevel, RegistryRecord, RegistryState};
use porch_topics::kafka_read::EndIsNoError;
use porch_topics::liveness::drop_aside;
use porch_topics::{KafkaConfig, Liveness, WatchedProducer};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The topic the registry keeps its records in unless told otherwise.
pub const DEFAULT_TOPIC: &str = "_porch_schemas";

/// How long a cluster request (metadata, topic creation) may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a write may take to be produced and read back.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A compacted Kafka topic as the registry's storage.
pub struct KafkaStorage {
    topic: String,
    kafka: KafkaConfig,
    /// Replaced by a new one when it has lost its cluster (see [`porch_topics::Liveness`]).
    producer: WatchedProducer,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

/// What the reader task maintains.
struct Shared {
    state: RwLock<Arc<RegistryState>>,
    /// Offset of the next record to read: a write at offset `o` is visible once this is > `o`.
    next_offset: watch::Sender<i64>,
    /// Whether the reader has once reached the end of the topic.
    caught_up: watch::Sender<bool>,
}

impl KafkaStorage {
    /// Connects to the cluster of `cfg` (its topic prefix is not used: `topic` is the
    /// name), creates `topic` if it is missing (1 partition, cleanup.policy=compact) or
    /// checks it if present, and starts reading it from the beginning. Returns at once;
    /// [`Storage::is_ready`] says when the reader has caught up.
    pub async fn open(cfg: &KafkaConfig, topic: &str) -> Result<Self, StorageError> {
        ensure_topic(cfg, topic).await?;
        let kafka = |e: KafkaError| StorageError::Kafka(e.to_string());
        let consumer = reader(cfg, topic, Offset::Beginning).map_err(kafka)?;
        let mut producer = cfg.client_config();
        producer
            .set("client.id", "porch-registry")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", WRITE_TIMEOUT.as_millis().to_string());
        let producer = WatchedProducer::new(producer).map_err(kafka)?;
        let shared = Arc::new(Shared {
            state: RwLock::default(),
            next_offset: watch::Sender::new(0),
            caught_up: watch::Sender::new(false),
        });
        let reader = tokio::spawn(read(
            consumer,
            cfg.clone(),
            shared.clone(),
            topic.to_string(),
        ));
        Ok(Self {
            topic: topic.into(),
            kafka: cfg.clone(),
            producer,
            shared,
            reader,
        })
    }

    /// Waits until the reader has reached the end of the topic once.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), StorageError> {
        let mut rx = self.shared.caught_up.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .map_err(|_| StorageError::Timeout(format!("reading {} to its end", self.topic)))?
            .map_err(|_| StorageError::Internal("the topic reader stopped".into()))?;
        Ok(())
    }
}

impl Drop for KafkaStorage {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Storage for KafkaStorage {
    fn snapshot(&self) -> Arc<RegistryState> {
        self.shared.state.read().expect("state lock").clone()
    }

    fn append(&self, record: RegistryRecord) -> StorageFuture<'_> {
        Box::pin(async move {
            let (key, value) = encode(&record);
            let produced = || {
                let r = FutureRecord::<String, String>::to(&self.topic)
                    .partition(0)
                    .key(&key);
                match &value {
                    Some(value) => r.payload(value),
                    None => r,
                }
            };
            let delivery = self
                .producer
                .send(produced, WRITE_TIMEOUT)
                .await
                .map_err(|e| StorageError::Kafka(e.to_string()))?;
            let mut next = self.shared.next_offset.subscribe();
            tokio::time::timeout(WRITE_TIMEOUT, next.wait_for(|n| *n > delivery.offset))
                .await
                .map_err(|_| {
                    StorageError::Timeout(format!(
                        "reading back the record at offset {} of {}",
                        delivery.offset, self.topic
                    ))
                })?
                .map_err(|_| StorageError::Internal("the topic reader stopped".into()))?;
            Ok(())
        })
    }

    fn is_ready(&self) -> bool {
        *self.shared.caught_up.borrow()
    }

    fn describe(&self) -> String {
        format!("kafka topic {} at {}", self.topic, self.kafka.bootstrap)
    }
}

/// A consumer of the registry topic from `from`, assigned (so no group is joined nor
/// committed to).
fn reader(
    kafka: &KafkaConfig,
    topic: &str,
    from: Offset,
) -> Result<StreamConsumer<EndIsNoError>, KafkaError> {
    let mut cfg = kafka.client_config();
    let liveness = Liveness::watch(&mut cfg);
    let consumer: StreamConsumer<EndIsNoError> = cfg
        .set("client.id", "porch-registry")
        .set("group.id", "porch-registry")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        // A registration waits for its record to come back: keep that short.
        .set("fetch.wait.max.ms", "50")
        .create_with_context(EndIsNoError(liveness))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, from)?;
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Applies every record of the topic, for as long as the storage lives. A consumer that has
/// lost its cluster for good is replaced by one reading on from the next offset.
async fn read(
    mut consumer: StreamConsumer<EndIsNoError>,
    kafka: KafkaConfig,
    shared: Arc<Shared>,
    topic: String,
) {
    loop {
        if consumer.context().0.lost_async().await {
            let next = *shared.next_offset.borrow();
            match reader(&kafka, &topic, Offset::Offset(next)) {
                Ok(fresh) => {
                    tracing::error!(
                        topic,
                        "the registry reader has no broker connection while the cluster answers; replaced"
                    );
                    drop_aside(
                        "lost-registry-reader",
                        std::mem::replace(&mut consumer, fresh),
                    );
                }
                Err(e) => tracing::error!(topic, error = %e, "cannot create a new registry reader"),
            }
        }
        // Wakes up now and then to look at the consumer's liveness even when nothing comes.
        let Ok(received) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await
        else {
            continue;
        };
        match received {
            Ok(message) => {
                match decode(message.key(), message.payload()) {
                    Ok(Some(record)) => {
                        let mut state = shared.state.write().expect("state lock");
                        Arc::make_mut(&mut state).apply(&record);
                    }
                    Ok(None) => {}
                    Err(reason) => tracing::warn!(
                        topic,
                        offset = message.offset(),
                        reason,
                        "skipping a registry record porch cannot read"
                    ),
                }
                shared.next_offset.send_replace(message.offset() + 1);
            }
            Err(KafkaError::PartitionEOF(_)) => {
                if !shared.caught_up.send_replace(true) {
                    let st = shared.state.read().expect("state lock").clone();
                    tracing::info!(
                        topic,
                        schemas = st.schema_count(),
                        subjects = st.subjects().count(),
                        "schema registry caught up with its topic"
                    );
                }
            }
            Err(e) => {
                // librdkafka reconnects by itself; say so and do not spin.
                tracing::warn!(topic, error = %e, "reading the registry topic");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[derive(Serialize)]
struct SchemaKey<'a> {
    keytype: &'static str,
    subject: &'a str,
    version: u32,
    magic: u32,
}

#[derive(Serialize)]
struct ConfigKey<'a> {
    keytype: &'static str,
    subject: Option<&'a str>,
    magic: u32,
}

#[derive(Deserialize)]
struct AnyKey {
    keytype: String,
    #[serde(default)]
    subject: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SchemaValue {
    subject: String,
    version: u32,
    id: u32,
    schema: String,
    #[serde(default)]
    deleted: bool,
    #[serde(
        default,
        rename = "schemaType",
        skip_serializing_if = "Option::is_none"
    )]
    schema_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel", default)]
    compatibility_level: Option<String>,
}

/// The key and value of a record (`None`: a tombstone).
fn encode(record: &RegistryRecord) -> (String, Option<String>) {
    match record {
        RegistryRecord::Schema {
            subject,
            version,
            id,
            schema,
        } => (
            json(&SchemaKey {
                keytype: "SCHEMA",
                subject,
                version: *version,
                magic: 1,
            }),
            Some(json(&SchemaValue {
                subject: subject.clone(),
                version: *version,
                id: *id,
                schema: schema.clone(),
                deleted: false,
                schema_type: None,
            })),
        ),
        RegistryRecord::Config { subject, level } => (
            json(&ConfigKey {
                keytype: "CONFIG",
                subject: subject.as_deref(),
                magic: 0,
            }),
            level.map(|l| {
                json(&ConfigValue {
                    compatibility_level: Some(l.as_str().into()),
                })
            }),
        ),
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("registry records serialise")
}

/// The record a topic entry stands for; `None` for entries the registry does not serve
/// (other key types, deletions, schema types other than Avro).
fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<RegistryRecord>, String> {
    let key: AnyKey = serde_json::from_slice(key.ok_or("no key")?)
        .map_err(|e| format!("the key is not a registry key: {e}"))?;
    match key.keytype.as_str() {
        "SCHEMA" => {
            let Some(value) = value else {
                return Ok(None);
            };
            let v: SchemaValue = serde_json::from_slice(value)
                .map_err(|e| format!("the value is not a schema record: {e}"))?;
            if v.deleted || v.schema_type.as_deref().is_some_and(|t| t != "AVRO") {
                return Ok(None);
            }
            Ok(Some(RegistryRecord::Schema {
                subject: v.subject,
                version: v.version,
                id: v.id,
                schema: v.schema,
            }))
        }
        "CONFIG" => {
            let level = match value {
                None => None,
                Some(value) => serde_json::from_slice::<ConfigValue>(value)
                    .map_err(|e| format!("the value is not a config record: {e}"))?
                    .compatibility_level
                    .map(|l| l.parse::<CompatibilityLevel>())
                    .transpose()
                    .map_err(|e| e.to_string())?,
            };
            Ok(Some(RegistryRecord::Config {
                subject: key.subject,
                level,
            }))
        }
        _ => Ok(None),
    }
}

/// Creates the topic if it is missing; refuses one that cannot hold the registry.
async fn ensure_topic(cfg: &KafkaConfig, topic: &str) -> Result<(), StorageError> {
    let kafka = |e: KafkaError| StorageError::Kafka(e.to_string());
    let unusable = |reason: String| StorageError::Topic {
        topic: topic.into(),
        reason,
    };
    let admin: AdminClient<DefaultClientContext> = cfg
        .client_config()
        .set("client.id", "porch-registry")
        .create()
        .map_err(kafka)?;
    let admin = Arc::new(admin);
    // Metadata of every topic (asking for one could auto-create it with broker defaults).
    let (brokers, partitions) = {
        let admin = admin.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let md = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
            let partitions = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len());
            Ok::<_, KafkaError>((md.brokers().len(), partitions))
        })
        .await
        .map_err(|e| StorageError::Internal(e.to_string()))?
        .map_err(kafka)?
    };
    let opts = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    match partitions {
        None => {
            let replication = brokers.clamp(1, 3) as i32;
            let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication))
                .set("cleanup.policy", "compact");
            for result in admin.create_topics([&new], &opts).await.map_err(kafka)? {
                match result {
                    Ok(_) => tracing::info!(topic, replication, "created the registry topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((_, code)) => return Err(unusable(format!("creating it: {code}"))),
                }
            }
            Ok(())
        }
        Some(1) => {
            let configs = admin
                .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
                .await
                .map_err(kafka)?;
            let policy = configs
                .into_iter()
                .next()
                .and_then(|r| r.ok())
                .and_then(|r| r.get("cleanup.policy").and_then(|e| e.value.clone()))
                .unwrap_or_default();
            if policy != "compact" {
                return Err(unusable(format!(
                    "cleanup.policy is {policy:?}; it must be \"compact\" or old schemas would be deleted"
                )));
            }
            Ok(())
        }
        Some(n) => Err(unusable(format!(
            "it has {n} partitions; the registry needs exactly 1 to read its records in order"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: RegistryRecord) -> (String, Option<String>) {
        let (key, value) = encode(&record);
        let back = decode(Some(key.as_bytes()), value.as_deref().map(str::as_bytes)).unwrap();
        assert_eq!(back, Some(record));
        (key, value)
    }

    #[test]
    fn records_are_keyed_as_confluent_keys_them() {
        let (key, value) = round_trip(RegistryRecord::Schema {
            subject: "offer.events-porch.offer.OfferCreated".into(),
            version: 2,
            id: 7,
            schema: r#""string""#.into(),
        });
        assert_eq!(
            key,
            r#"{"keytype":"SCHEMA","subject":"offer.events-porch.offer.OfferCreated","version":2,"magic":1}"#
        );
        assert_eq!(
            value.unwrap(),
            r#"{"subject":"offer.events-porch.offer.OfferCreated","version":2,"id":7,"schema":"\"string\"","deleted":false}"#
        );
        let (key, value) = round_trip(RegistryRecord::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        });
        assert_eq!(key, r#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
        assert_eq!(value.unwrap(), r#"{"compatibilityLevel":"FULL"}"#);
        let (key, value) = round_trip(RegistryRecord::Config {
            subject: Some("s".into()),
            level: None,
        });
        assert_eq!(key, r#"{"keytype":"CONFIG","subject":"s","magic":0}"#);
        assert_eq!(value, None, "clearing a level is a tombstone");
    }

    #[test]
    fn what_porch_does_not_serve_is_skipped() {
        let schema_key = br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#;
        let deleted = br#"{"subject":"s","version":1,"id":1,"schema":"\"int\"","deleted":true}"#;
        let protobuf =
            br#"{"subject":"s","version":1,"id":1,"schema":"syntax","schemaType":"PROTOBUF"}"#;
        for (key, value) in [
            (&schema_key[..], Some(&deleted[..])),
            (&schema_key[..], Some(&protobuf[..])),
            (&schema_key[..], None),
            (&br#"{"keytype":"NOOP","magic":0}"#[..], None),
        ] {
            assert_eq!(decode(Some(key), value).unwrap(), None);
        }
        assert!(decode(None, None).is_err());
        assert!(decode(Some(b"not json"), None).is_err());
    }
}
