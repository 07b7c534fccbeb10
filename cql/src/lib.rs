//! The ScyllaDB (CQL) backend of the store: `CqlStore` implements the processors' `Store` and
//! `ProjectionStore` on ScyllaDB or Apache Cassandra, and `migrate` brings a keyspace to the
//! schema this build expects. The table design and its reasons are in README.md.

mod config;
mod layout;
mod migrate;
mod store;

pub use config::{CqlConfig, CqlTls, Credentials};
pub use migrate::{drop_keyspace, migrate};
pub use store::CqlStore;
