//! The Confluent-framed Avro codec: magic byte 0, 4-byte big-endian schema id, Avro binary.
//! Subjects follow TopicRecordNameStrategy (`<topic>-<record full name>`), so one topic carries
//! several record types and a new type never breaks the readers of the old ones.

use crate::avsc;
use crate::messages::*;
use crate::registry::{EmbeddedRegistry, RegistryError, SchemaRegistry};
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record is not Confluent-framed Avro (no magic byte 0 and schema id)")]
    NotFramed,
    #[error("schema id {0} is unknown to the registry")]
    UnknownSchemaId(u32),
    #[error("record type {0} is not one porch reads on this topic")]
    UnknownType(String),
    #[error("no schema registered for {0} on topic {1}")]
    NotRegistered(String, String),
    #[error("avro: {0}")]
    Avro(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl CodecError {
    /// Whether the same record may encode or decode later: the registry could not be asked,
    /// as opposed to a record that never will. Back off and retry these; do not dead-letter.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CodecError::Registry(e) if e.is_retryable())
    }
}

impl From<apache_avro::Error> for CodecError {
    fn from(e: apache_avro::Error) -> Self {
        CodecError::Avro(e.to_string())
    }
}

/// A schema porch writes with: parsed, its names resolved and its datum writer built once.
struct Known {
    schema: &'static Schema,
    names: ResolvedSchema<'static>,
    writer: GenericDatumWriter<'static>,
    /// The record's first field, its envelope, and a record of the fields after it: a record's
    /// binary form is its fields' one after another, so a record is written as the envelope
    /// and then the body, each straight from its struct.
    envelope: &'static Schema,
    body: &'static Schema,
    /// Readers of the envelope and of the body, for records written with this very schema.
    envelope_reader: GenericDatumReader<'static>,
    body_reader: GenericDatumReader<'static>,
}

/// A record schema's envelope (its first field) and the record of the fields after it.
fn split(full_name: &str, schema: &'static Schema) -> (&'static Schema, &'static Schema) {
    let Schema::Record(record) = schema else {
        panic!("{full_name} is not a record");
    };
    let first = record.fields.first().map(|f| f.name.as_str());
    assert_eq!(
        first,
        Some("envelope"),
        "{full_name} starts with its envelope"
    );
    let mut body = record.clone();
    body.fields.remove(0);
    body.lookup = body
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), i))
        .collect();
    (&record.fields[0].schema, leak(Schema::Record(body)))
}

/// Parsing and resolving a schema is far dearer than encoding a record with it, so every
/// schema is prepared once per process. Schemas live as long as the process: the compiled-in
/// ones are constants, and writer schemas met on a topic are few and never change under an id.
fn leak(schema: Schema) -> &'static Schema {
    Box::leak(Box::new(schema))
}

/// The compiled-in schemas, by full name.
fn known() -> &'static HashMap<String, Known> {
    static KNOWN: OnceLock<HashMap<String, Known>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        avsc::message_names()
            .into_iter()
            .map(|n| {
                let text = avsc::resolved(&n).expect("listed schema resolves");
                let schema = leak(
                    Schema::parse_str(&text)
                        .unwrap_or_else(|e| panic!("schema {n} does not parse: {e}")),
                );
                let names = ResolvedSchema::try_from(schema).expect("schema names resolve");
                let writer = GenericDatumWriter::builder(schema)
                    .validate(false)
                    .build()
                    .expect("datum writer");
                let (envelope, body) = split(&n, schema);
                let part_reader = |part: &'static Schema| {
                    GenericDatumReader::builder(part)
                        .resolved_writer_schemata(
                            ResolvedSchema::try_from(schema).expect("schema names resolve"),
                        )
                        .build()
                        .expect("datum reader")
                };
                (
                    n,
                    Known {
                        schema,
                        names,
                        writer,
                        envelope,
                        body,
                        envelope_reader: part_reader(envelope),
                        body_reader: part_reader(body),
                    },
                )
            })
            .collect()
    })
}

/// How to read records written with one schema id.
struct WriterSchema {
    full_name: String,
    reader: GenericDatumReader<'static>,
    /// Written with the schema porch reads with: records are read straight into their structs.
    direct: bool,
}

/// Writer schemas by canonical text, shared by every codec of the process.
fn writer_schema_for(text: &str) -> Result<Arc<WriterSchema>, CodecError> {
    static WRITERS: OnceLock<RwLock<HashMap<String, Arc<WriterSchema>>>> = OnceLock::new();
    let cache = WRITERS.get_or_init(RwLock::default);
    if let Some(w) = cache.read().expect("codec lock").get(text) {
        return Ok(w.clone());
    }
    let schema = leak(Schema::parse_str(text)?);
    let full_name = match schema {
        Schema::Record(r) => r.name.fullname(None),
        _ => {
            return Err(CodecError::UnknownType(
                "a schema that is not a record".into(),
            ))
        }
    };
    let reader_schema = known()
        .get(&full_name)
        .ok_or_else(|| CodecError::UnknownType(full_name.clone()))?
        .schema;
    // Resolution is needed only when the writer's schema differs from the one we read with.
    let direct = reader_schema.canonical_form() == schema.canonical_form();
    let reader = if direct {
        GenericDatumReader::builder(schema).build()?
    } else {
        GenericDatumReader::builder(schema)
            .reader_schema(reader_schema)
            .build()?
    };
    let w = Arc::new(WriterSchema {
        full_name,
        reader,
        direct,
    });
    cache
        .write()
        .expect("codec lock")
        .insert(text.to_string(), w.clone());
    Ok(w)
}

/// Encodes and decodes porch's records, with the ids the registry issued for each
/// (topic, record) pair.
pub struct Codec {
    registry: Arc<dyn SchemaRegistry>,
    /// The cluster prefix of topic names (DESIGN §4): subjects name the topic as it is on the
    /// cluster, so that any client's TopicRecordNameStrategy finds them.
    topic_prefix: String,
    ids: RwLock<HashMap<(String, &'static str), u32>>,
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
}

/// Subject name under TopicRecordNameStrategy.
pub fn subject(topic: &str, full_name: &str) -> String {
    format!("{topic}-{full_name}")
}

impl Codec {
    /// A codec over the embedded registry.
    pub fn new(registry: Arc<EmbeddedRegistry>) -> Self {
        Self::with_registry(registry)
    }

    /// A codec over any registry: the embedded one, or a Confluent-compatible one by URL
    /// ([`crate::RegistryClient`]).
    pub fn with_registry(registry: Arc<dyn SchemaRegistry>) -> Self {
        known();
        Self {
            registry,
            topic_prefix: String::new(),
            ids: RwLock::default(),
            writers: RwLock::default(),
        }
    }

    /// Subjects under the topic names as they are on a cluster with this prefix.
    pub fn with_topic_prefix(mut self, prefix: &str) -> Self {
        self.topic_prefix = prefix.to_string();
        self
    }

    pub fn registry(&self) -> &Arc<dyn SchemaRegistry> {
        &self.registry
    }

    /// Registers the schema of every record type that may travel on `topic`.
    pub fn register_topic(
        &self,
        topic: &str,
        full_names: &[&'static str],
    ) -> Result<(), CodecError> {
        for name in full_names {
            self.id_for(topic, name)?;
        }
        Ok(())
    }

    fn id_for(&self, topic: &str, full_name: &'static str) -> Result<u32, CodecError> {
        if let Some(id) = self
            .ids
            .read()
            .expect("codec lock")
            .get(&(topic.to_string(), full_name))
        {
            return Ok(*id);
        }
        let text =
            avsc::resolved(full_name).ok_or_else(|| CodecError::UnknownType(full_name.into()))?;
        let physical = format!("{}{topic}", self.topic_prefix);
        let id = self
            .registry
            .register(&subject(&physical, full_name), &text)?;
        self.ids
            .write()
            .expect("codec lock")
            .insert((topic.to_string(), full_name), id);
        Ok(id)
    }

    fn writer_schema(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        if let Some(w) = self.writers.read().expect("codec lock").get(&id) {
            return Ok(w.clone());
        }
        let text = self
            .registry
            .schema_by_id(id)?
            .ok_or(CodecError::UnknownSchemaId(id))?;
        let w = writer_schema_for(&text)?;
        self.writers
            .write()
            .expect("codec lock")
            .insert(id, w.clone());
        Ok(w)
    }

    fn frame(
        &self,
        topic: &str,
        full_name: &'static str,
        envelope: Value,
        body: Value,
    ) -> Result<Vec<u8>, CodecError> {
        let id = self.id_for(topic, full_name)?;
        let known = known()
            .get(full_name)
            .ok_or_else(|| CodecError::UnknownType(full_name.into()))?;
        let Value::Record(mut fields) = body else {
            return Err(CodecError::Avro(format!(
                "{full_name} did not serialise to a record"
            )));
        };
        fields.insert(0, ("envelope".to_string(), envelope));
        // Resolving checks the value against the schema (and fills unions), so the writer
        // need not validate again.
        let value =
            Value::Record(fields).resolve_with_names(known.schema, known.names.get_names())?;
        let mut out = Vec::with_capacity(256);
        out.push(0u8);
        out.extend_from_slice(&id.to_be_bytes());
        known.writer.write_value_ref(&mut out, &value)?;
        Ok(out)
    }

    pub fn encode_command(&self, topic: &str, rec: &CommandRecord) -> Result<Vec<u8>, CodecError> {
        let name = rec.command.full_name();
        self.write_direct(topic, name, &rec.envelope, |schema, names, out| {
            rec.command.write_body(schema, names, out)
        })
        .or_else(|e| {
            tracing::debug!(record = name, error = %e, "writing through a value instead");
            self.encode_command_as_value(topic, rec)
        })
    }

    pub fn encode_event(&self, topic: &str, rec: &EventRecord) -> Result<Vec<u8>, CodecError> {
        let name = rec.event.full_name();
        self.write_direct(topic, name, &rec.envelope, |schema, names, out| {
            rec.event.write_body(schema, names, out)
        })
        .or_else(|e| {
            tracing::debug!(record = name, error = %e, "writing through a value instead");
            self.encode_event_as_value(topic, rec)
        })
    }

    /// The same bytes through an Avro `Value` (checked against the schema as it resolves).
    pub fn encode_command_as_value(
        &self,
        topic: &str,
        rec: &CommandRecord,
    ) -> Result<Vec<u8>, CodecError> {
        let env = apache_avro::to_value(&rec.envelope)?;
        self.frame(topic, rec.command.full_name(), env, rec.command.to_body()?)
    }

    /// The same bytes through an Avro `Value` (checked against the schema as it resolves).
    pub fn encode_event_as_value(
        &self,
        topic: &str,
        rec: &EventRecord,
    ) -> Result<Vec<u8>, CodecError> {
        let env = apache_avro::to_value(&rec.envelope)?;
        self.frame(topic, rec.event.full_name(), env, rec.event.to_body()?)
    }

    /// Confluent framing, then the envelope and the body written straight from their structs.
    pub(crate) fn write_direct<E: serde::Serialize>(
        &self,
        topic: &str,
        full_name: &'static str,
        envelope: &E,
        body: impl FnOnce(
            &Schema,
            &apache_avro::schema::NamesRef<'_>,
            &mut Vec<u8>,
        ) -> Result<usize, apache_avro::Error>,
    ) -> Result<Vec<u8>, CodecError> {
        let id = self.id_for(topic, full_name)?;
        let known = known()
            .get(full_name)
            .ok_or_else(|| CodecError::UnknownType(full_name.into()))?;
        let names = known.names.get_names();
        let mut out = Vec::with_capacity(256);
        out.push(0u8);
        out.extend_from_slice(&id.to_be_bytes());
        apache_avro::write_avro_datum_ref(known.envelope, names, envelope, &mut out)?;
        body(known.body, names, &mut out)?;
        Ok(out)
    }

    /// Splits a framed record into (schema id, writer schema's full name, envelope, body).
    fn unframe(&self, bytes: &[u8]) -> Result<(String, Value, Value), CodecError> {
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(CodecError::NotFramed);
        }
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let writer = self.writer_schema(id)?;
        let full_name = writer.full_name.clone();
        let mut slice = &bytes[5..];
        let value = writer.reader.read_value(&mut slice)?;
        if !slice.is_empty() {
            return Err(CodecError::Avro(format!(
                "{} trailing bytes after the record",
                slice.len()
            )));
        }
        let Value::Record(mut fields) = value else {
            return Err(CodecError::UnknownType(full_name));
        };
        let pos = fields
            .iter()
            .position(|(n, _)| n == "envelope")
            .ok_or_else(|| CodecError::Avro("record has no envelope".into()))?;
        let (_, envelope) = fields.remove(pos);
        Ok((full_name, envelope, Value::Record(fields)))
    }

    /// A record written with the schema porch reads with, read straight into its envelope and
    /// body structs; `None` when it was written with another schema (it is then resolved
    /// through a `Value`) or cannot be read so.
    pub(crate) fn read_direct<E: serde::de::DeserializeOwned, B>(
        &self,
        bytes: &[u8],
        body: impl FnOnce(
            &str,
            &GenericDatumReader<'static>,
            &mut &[u8],
        ) -> Option<Result<B, apache_avro::Error>>,
    ) -> Option<(E, B)> {
        if bytes.len() < 5 || bytes[0] != 0 {
            return None;
        }
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let writer = self.writer_schema(id).ok()?;
        if !writer.direct {
            return None;
        }
        let known = known().get(&writer.full_name)?;
        let mut slice = &bytes[5..];
        let envelope = known.envelope_reader.read_deser::<E>(&mut slice).ok()?;
        let body = body(&writer.full_name, &known.body_reader, &mut slice)?.ok()?;
        slice.is_empty().then_some((envelope, body))
    }

    pub fn decode_command(&self, bytes: &[u8]) -> Result<CommandRecord, CodecError> {
        match self.read_direct(bytes, Command::read_body) {
            Some((envelope, command)) => Ok(CommandRecord { envelope, command }),
            None => self.decode_command_as_value(bytes),
        }
    }

    pub fn decode_event(&self, bytes: &[u8]) -> Result<EventRecord, CodecError> {
        match self.read_direct(bytes, Event::read_body) {
            Some((envelope, event)) => Ok(EventRecord { envelope, event }),
            None => self.decode_event_as_value(bytes),
        }
    }

    /// A command read through an Avro `Value` (resolved to porch's schema when written with
    /// another).
    pub fn decode_command_as_value(&self, bytes: &[u8]) -> Result<CommandRecord, CodecError> {
        let (name, env, body) = self.unframe(bytes)?;
        let command = Command::from_body(&name, body).ok_or(CodecError::UnknownType(name))??;
        Ok(CommandRecord {
            envelope: apache_avro::from_value(&env)?,
            command,
        })
    }

    /// An event read through an Avro `Value` (resolved to porch's schema when written with
    /// another).
    pub fn decode_event_as_value(&self, bytes: &[u8]) -> Result<EventRecord, CodecError> {
        let (name, env, body) = self.unframe(bytes)?;
        let event = Event::from_body(&name, body).ok_or(CodecError::UnknownType(name))??;
        Ok(EventRecord {
            envelope: apache_avro::from_value(&env)?,
            event,
        })
    }

    /// Any porch record as JSON (for taps and the operator's topic reader), with its type name.
    pub fn decode_json(&self, bytes: &[u8]) -> Result<(String, serde_json::Value), CodecError> {
        let (name, env, body) = self.unframe(bytes)?;
        let Value::Record(mut fields) = body else {
            unreachable!("unframe returns records")
        };
        fields.insert(0, ("envelope".into(), env));
        let json = serde_json::Value::try_from(Value::Record(fields))
            .map_err(|e| CodecError::Avro(e.to_string()))?;
        Ok((name, json))
    }
}
