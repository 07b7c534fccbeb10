//! The wire contract of porch: typed ids and values, commands and events with their envelopes,
//! the Avro schemas in `schemas/avro/`, the Confluent-framed codec and the embedded registry.

pub mod avsc;
pub mod codec;
mod messages;
pub mod registry;
pub mod values;

pub use codec::{Codec, CodecError};
pub use messages::*;
pub use registry::EmbeddedRegistry;
pub use values::*;

#[cfg(test)]
mod roundtrip_tests;
