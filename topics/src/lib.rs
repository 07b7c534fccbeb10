//! Topics: the catalogue, Kafka's partitioner, and the log with its embedded backend.

pub mod catalogue;
pub mod embedded;
pub mod murmur2;

pub use catalogue::{commands_topic, dlq_of, events_topic, product_key, Catalogue, TopicSpec};
pub use embedded::{Append, EmbeddedLog, LogError, LogRecord, LogTxn};
pub use murmur2::partition_for;
