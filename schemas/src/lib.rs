//! The wire contract of porch: typed ids and values, commands and events with their envelopes,
//! the Avro schemas in `schemas/avro/`, the Confluent-framed codec, and the schema registries
//! (the embedded one, or any Confluent-compatible one by URL).

pub mod avsc;
pub mod codec;
pub mod media;
mod messages;
mod module;
pub mod registry;
pub mod values;

pub use codec::{Codec, CodecError};
pub use media::{image_key, public_image_url};
pub use messages::*;
pub use module::{Module, UnknownModule};
pub use registry::{
    CompatibilityLevel, EmbeddedRegistry, RegistryClient, RegistryError, RegistryRecord,
    RegistryState, SchemaRegistry, SubjectVersion, VersionRef,
};
pub use values::*;

#[cfg(test)]
mod roundtrip_tests;
