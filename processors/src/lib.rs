//! Processors: the pure domain cores, the runtime that runs them over the log, the seven
//! processors, and the store with its embedded backend.

pub mod checkpoint;
pub mod distributed;
pub mod distributed_api;
pub mod domain;
pub mod embedded;
pub mod modules;
pub mod retention;
pub mod runtime;
pub mod store;

pub use embedded::EmbeddedBackend;
pub use retention::Retention;
pub use runtime::{Processor, RuntimeConfig, Stages};
