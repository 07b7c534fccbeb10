//! Topics: the catalogue, Kafka's partitioner, and the log with its embedded backend.

pub mod catalogue;
pub mod client_properties;
pub mod embedded;
pub mod kafka_admin;
pub mod kafka_read;
pub mod liveness;
pub mod murmur2;
pub mod txn;

pub use catalogue::{
    carries_commands, command_topic, commands_topic, dlq_of, events_topic, product_key, Catalogue,
    TopicSpec, HOT_LANE, HOT_LANE_TOPIC,
};
pub use client_properties::{ClientProperties, PropertiesError};
pub use embedded::{Append, EmbeddedLog, LogError, LogRecord, LogTxn, Pending, Usage};
pub use kafka_admin::{apply_topics, client_config, AdminError, ApplyReport, KafkaConfig};
pub use kafka_read::{ReadError, TopicReader};
pub use liveness::{Liveness, WatchedProducer};
pub use murmur2::partition_for;
pub use txn::BatchTxn;
