//! Schema registries with Confluent semantics: subjects with versions, global ids, one id per
//! distinct schema, a compatibility level per subject (default BACKWARD_TRANSITIVE).
//!
//! - [`SchemaRegistry`] is what the codec needs: register a schema, fetch one by id. It is
//!   synchronous because the codec runs on plain threads and inside `spawn_blocking`.
//! - [`RegistryState`] is the registry itself as data, rebuilt by applying [`RegistryRecord`]s in
//!   order. Every implementation shares it, so they all decide ids, versions and compatibility
//!   the same way: the embedded registry, and the `porch registry` server over a Kafka topic.
//! - [`EmbeddedRegistry`] keeps the state in a JSON file of the data directory.
//! - [`RegistryClient`] talks to any Confluent-compatible registry by URL.

mod client;

pub use client::RegistryClient;

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema for subject {subject} is not valid Avro: {reason}")]
    InvalidSchema { subject: String, reason: String },
    #[error("schema for subject {subject} is incompatible with an earlier version: {}", messages.join("; "))]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },
    #[error("subject {0} not found")]
    SubjectNotFound(String),
    #[error("version {version} of subject {subject} not found")]
    VersionNotFound { subject: String, version: String },
    #[error("schema not found under subject {0}")]
    SchemaNotFound(String),
    #[error("{0:?} is not a version: expected a number from 1 to 2147483647 or \"latest\"")]
    InvalidVersion(String),
    #[error("{0:?} is not a compatibility level: expected one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE")]
    InvalidCompatibilityLevel(String),
    #[error("registry file {path}: {reason}")]
    Storage { path: String, reason: String },
    #[error("schema registry at {url} is unreachable: {reason}")]
    Unavailable { url: String, reason: String },
    #[error("schema registry answered {status} (error code {code}): {message}")]
    Remote {
        status: u16,
        code: i64,
        message: String,
    },
}

impl RegistryError {
    /// Whether asking again later may succeed: the registry was unreachable or failed, as
    /// opposed to refusing the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Storage { .. } => true,
            Self::Remote { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }
}

/// A schema registry as the codec uses it.
pub trait SchemaRegistry: Send + Sync {
    /// Registers `schema` under `subject` and returns its global id. Registering a schema the
    /// subject already has returns the existing id; a new version must pass the subject's
    /// compatibility level (default BACKWARD_TRANSITIVE).
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError>;

    /// The schema text with this id, if the registry knows it.
    fn schema_by_id(&self, id: u32) -> Result<Option<String>, RegistryError>;
}

/// Which earlier versions a new version must be compatible with, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema reads data written with the latest version.
    Backward,
    /// The new schema reads data written with every earlier version.
    #[default]
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every earlier version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    /// Case-insensitive, as Confluent's registry reads it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(s.into()))
    }
}

/// A version of a subject and the global id of its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectVersion {
    pub version: u32,
    pub id: u32,
}

/// Names a version of a subject, as REST paths do: a number or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Latest,
    Number(u32),
}

impl FromStr for VersionRef {
    type Err = RegistryError;

    /// `latest`, `-1` (Confluent's alias of latest) or 1..=2^31-1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "latest" | "-1" => Ok(Self::Latest),
            _ => match s.parse::<u32>() {
                Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(Self::Number(n)),
                _ => Err(RegistryError::InvalidVersion(s.into())),
            },
        }
    }
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One change to a registry. Applying a registry's records in order rebuilds it; this is what
/// the Kafka-backed server writes to its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRecord {
    /// `schema` is version `version` of `subject`, with global id `id`.
    Schema {
        subject: String,
        version: u32,
        id: u32,
        schema: String,
    },
    /// The compatibility level of `subject`, or the global one when `subject` is `None`;
    /// `level: None` clears a subject's own level.
    Config {
        subject: Option<String>,
        level: Option<CompatibilityLevel>,
    },
}

/// A registry as data: schemas by id, subjects with their versions, compatibility levels.
///
/// Ids are global and issued one per distinct schema: two texts that differ only in whitespace
/// or key order are the same schema. The text kept is the first one registered, verbatim (the
/// Avro parsing canonical form would drop defaults, docs and logical types, which readers need).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryState {
    /// The id the next new schema gets.
    next_id: u32,
    /// id → schema text
    schemas: BTreeMap<u32, String>,
    /// subject → versions, oldest first
    subjects: BTreeMap<String, Vec<SubjectVersion>>,
    /// The global level, when set; [`CompatibilityLevel::default`] otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compatibility: Option<CompatibilityLevel>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    subject_compatibility: BTreeMap<String, CompatibilityLevel>,
    /// normal form → id; derived from `schemas`.
    #[serde(skip)]
    ids_by_form: HashMap<String, u32>,
}

impl Default for RegistryState {
    fn default() -> Self {
        Self {
            next_id: 1,
            schemas: BTreeMap::new(),
            subjects: BTreeMap::new(),
            compatibility: None,
            subject_compatibility: BTreeMap::new(),
            ids_by_form: HashMap::new(),
        }
    }
}

/// A schema text checked to be Avro, with the key that identifies it.
struct ParsedSchema {
    schema: Schema,
    normal_form: String,
}

fn parse_schema(subject: &str, text: &str) -> Result<ParsedSchema, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidSchema {
        subject: subject.into(),
        reason,
    };
    let json: Json = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let schema = Schema::parse(&json).map_err(|e| invalid(e.to_string()))?;
    let mut normal_form = String::with_capacity(text.len());
    write_normal_form(&json, &mut normal_form);
    Ok(ParsedSchema {
        schema,
        normal_form,
    })
}

/// Compact JSON with object keys sorted at every level: whitespace and key order do not make
/// a schema distinct. Written by hand so that no serde_json feature can change it.
fn write_normal_form(json: &Json, out: &mut String) {
    match json {
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push(':');
                write_normal_form(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_normal_form(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn normal_form_of_stored(text: &str) -> String {
    match serde_json::from_str::<Json>(text) {
        Ok(json) => {
            let mut out = String::new();
            write_normal_form(&json, &mut out);
            out
        }
        // Stored schemas were parsed before they were stored; keep the text as its own key
        // rather than fail on a hand-edited file.
        Err(_) => text.to_string(),
    }
}

impl RegistryState {
    /// Reads the JSON form written by `serde_json::to_vec(&state)`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut st: Self = serde_json::from_slice(bytes)?;
        st.next_id = st.next_id.max(1);
        st.ids_by_form = st
            .schemas
            .iter()
            .map(|(id, text)| (normal_form_of_stored(text), *id))
            .collect();
        Ok(st)
    }

    /// Applies one record. Records are facts: re-applying one is harmless, and a later record
    /// for the same subject version replaces the earlier (as compaction would).
    pub fn apply(&mut self, record: &RegistryRecord) {
        match record {
            RegistryRecord::Schema {
                subject,
                version,
                id,
                schema,
            } => {
                if !self.schemas.contains_key(id) {
                    self.schemas.insert(*id, schema.clone());
                    self.ids_by_form
                        .entry(normal_form_of_stored(schema))
                        .or_insert(*id);
                }
                self.next_id = self.next_id.max(id.saturating_add(1));
                let versions = self.subjects.entry(subject.clone()).or_default();
                let entry = SubjectVersion {
                    version: *version,
                    id: *id,
                };
                match versions.binary_search_by_key(version, |v| v.version) {
                    Ok(i) => versions[i] = entry,
                    Err(i) => versions.insert(i, entry),
                }
            }
            RegistryRecord::Config {
                subject: None,
                level,
            } => self.compatibility = *level,
            RegistryRecord::Config {
                subject: Some(subject),
                level: Some(level),
            } => {
                self.subject_compatibility.insert(subject.clone(), *level);
            }
            RegistryRecord::Config {
                subject: Some(subject),
                level: None,
            } => {
                self.subject_compatibility.remove(subject);
            }
        }
    }

    /// The schema text with this id.
    pub fn schema(&self, id: u32) -> Option<&str> {
        self.schemas.get(&id).map(String::as_str)
    }

    /// Number of distinct schemas.
    pub fn schema_count(&self) -> usize {
        self.schemas.len()
    }

    /// Every subject, sorted.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.subjects.keys().map(String::as_str)
    }

    /// The versions of `subject`, oldest first.
    pub fn versions(&self, subject: &str) -> Result<&[SubjectVersion], RegistryError> {
        self.subjects
            .get(subject)
            .filter(|v| !v.is_empty())
            .map(Vec::as_slice)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))
    }

    /// One version of `subject`.
    pub fn version(
        &self,
        subject: &str,
        version: VersionRef,
    ) -> Result<SubjectVersion, RegistryError> {
        let versions = self.versions(subject)?;
        let found = match version {
            VersionRef::Latest => versions.last(),
            VersionRef::Number(n) => versions.iter().find(|v| v.version == n),
        };
        found
            .copied()
            .ok_or_else(|| RegistryError::VersionNotFound {
                subject: subject.into(),
                version: version.to_string(),
            })
    }

    /// Every (subject, version) that uses the schema with this id.
    pub fn subject_versions_of(&self, id: u32) -> Vec<(&str, u32)> {
        self.subjects
            .iter()
            .flat_map(|(s, vs)| {
                vs.iter()
                    .filter(|v| v.id == id)
                    .map(move |v| (s.as_str(), v.version))
            })
            .collect()
    }

    /// The version of `subject` whose schema is `schema`.
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<SubjectVersion, RegistryError> {
        let parsed = parse_schema(subject, schema)?;
        let versions = self.versions(subject)?;
        self.ids_by_form
            .get(&parsed.normal_form)
            .and_then(|id| versions.iter().find(|v| v.id == *id))
            .copied()
            .ok_or_else(|| RegistryError::SchemaNotFound(subject.into()))
    }

    /// The global level.
    pub fn global_compatibility(&self) -> CompatibilityLevel {
        self.compatibility.unwrap_or_default()
    }

    /// The level set on `subject` itself, if any.
    pub fn subject_compatibility(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subject_compatibility.get(subject).copied()
    }

    /// The level that applies to `subject`.
    pub fn compatibility(&self, subject: &str) -> CompatibilityLevel {
        self.subject_compatibility(subject)
            .unwrap_or_else(|| self.global_compatibility())
    }

    /// Decides what registering `schema` under `subject` means: the existing version when the
    /// subject already has this schema (`None` record), otherwise the record of a new version,
    /// provided it passes the subject's compatibility level. Changes nothing.
    pub fn plan_registration(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<(SubjectVersion, Option<RegistryRecord>), RegistryError> {
        let parsed = parse_schema(subject, schema)?;
        let existing_id = self.ids_by_form.get(&parsed.normal_form).copied();
        let versions = self.subjects.get(subject).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(v) = existing_id.and_then(|id| versions.iter().find(|v| v.id == id)) {
            return Ok((*v, None));
        }
        let level = self.compatibility(subject);
        let against = if level.transitive() {
            versions
        } else {
            &versions[versions.len().saturating_sub(1)..]
        };
        let messages = self.problems(level, &parsed.schema, against);
        if !messages.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.into(),
                messages,
            });
        }
        let id = existing_id.unwrap_or(self.next_id);
        let version = versions.last().map_or(1, |v| v.version + 1);
        let record = RegistryRecord::Schema {
            subject: subject.into(),
            version,
            id,
            schema: self
                .schemas
                .get(&id)
                .cloned()
                .unwrap_or_else(|| schema.to_string()),
        };
        Ok((SubjectVersion { version, id }, Some(record)))
    }

    /// Why `schema` would not pass `subject`'s compatibility level against `against` (one
    /// version), or against the versions the level names when `against` is `None`. Empty when
    /// compatible.
    pub fn compatibility_problems(
        &self,
        subject: &str,
        schema: &str,
        against: Option<VersionRef>,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = parse_schema(subject, schema)?;
        let level = self.compatibility(subject);
        let versions = self.versions(subject)?;
        Ok(match against {
            Some(v) => {
                let one = self.version(subject, v)?;
                self.problems(level, &parsed.schema, &[one])
            }
            None if level.transitive() => self.problems(level, &parsed.schema, versions),
            None => self.problems(level, &parsed.schema, &versions[versions.len() - 1..]),
        })
    }

    fn problems(
        &self,
        level: CompatibilityLevel,
        new: &Schema,
        against: &[SubjectVersion],
    ) -> Vec<String> {
        let mut out = Vec::new();
        if level == CompatibilityLevel::None {
            return out;
        }
        for v in against {
            let Some(old) = self
                .schemas
                .get(&v.id)
                .and_then(|t| Schema::parse_str(t).ok())
            else {
                out.push(format!(
                    "version {}: the stored schema {} does not parse",
                    v.version, v.id
                ));
                continue;
            };
            if level.backward() {
                if let Some(why) = cannot_read(&old, new) {
                    out.push(format!(
                        "version {}: the new schema cannot read data written with it: {why}",
                        v.version
                    ));
                }
            }
            if level.forward() {
                if let Some(why) = cannot_read(new, &old) {
                    out.push(format!(
                        "version {}: it cannot read data written with the new schema: {why}",
                        v.version
                    ));
                }
            }
        }
        out
    }
}

/// Why a reader with `reader` cannot read every datum written with `writer`, as Confluent
/// judges it: a partial match (only some union branches or enum symbols readable) fails too.
fn cannot_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(_) => Some(
            "only some values can be read (a union branch or an enum symbol has no counterpart)"
                .into(),
        ),
        Err(e) => Some(e.to_string()),
    }
}

/// The registry persisted in `<data dir>/schema-registry.json`.
pub struct EmbeddedRegistry {
    path: Option<PathBuf>,
    /// Replaced whole on every change, so a snapshot is a cheap, consistent read.
    state: Mutex<Arc<RegistryState>>,
}

impl EmbeddedRegistry {
    /// Opens (or creates) the registry file in `dir`.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        let path = dir.join("schema-registry.json");
        let storage_error = |reason: String| RegistryError::Storage {
            path: path.display().to_string(),
            reason,
        };
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                RegistryState::from_json(&bytes).map_err(|e| storage_error(e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RegistryState::default(),
            Err(e) => return Err(storage_error(e.to_string())),
        };
        Ok(Self {
            path: Some(path),
            state: Mutex::new(Arc::new(state)),
        })
    }

    /// A registry that lives in memory only (unit tests, tools).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new(Arc::default()),
        }
    }

    /// The file this registry lives in, unless it is in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The registry as it is now.
    pub fn snapshot(&self) -> Arc<RegistryState> {
        self.state.lock().expect("registry lock").clone()
    }

    /// Registers `schema` under `subject` and returns its global id; see
    /// [`SchemaRegistry::register`].
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let mut state = self.state.lock().expect("registry lock");
        let (version, record) = state.plan_registration(subject, schema)?;
        if let Some(record) = record {
            self.commit(&mut state, &record)?;
        }
        Ok(version.id)
    }

    /// Applies `record` and persists the result; on a storage error nothing changes.
    pub fn apply(&self, record: &RegistryRecord) -> Result<(), RegistryError> {
        let mut state = self.state.lock().expect("registry lock");
        self.commit(&mut state, record)
    }

    fn commit(
        &self,
        state: &mut Arc<RegistryState>,
        record: &RegistryRecord,
    ) -> Result<(), RegistryError> {
        let mut next = RegistryState::clone(state);
        next.apply(record);
        self.persist(&next)?;
        *state = Arc::new(next);
        Ok(())
    }

    /// The latest version registered under `subject`.
    pub fn latest(&self, subject: &str) -> Option<SubjectVersion> {
        self.snapshot().version(subject, VersionRef::Latest).ok()
    }

    pub fn subjects(&self) -> Vec<String> {
        self.snapshot().subjects().map(str::to_owned).collect()
    }

    fn persist(&self, st: &RegistryState) -> Result<(), RegistryError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |e: std::io::Error| RegistryError::Storage {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(st).expect("registry state serialises");
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }
}

impl SchemaRegistry for EmbeddedRegistry {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        EmbeddedRegistry::register(self, subject, schema)
    }

    fn schema_by_id(&self, id: u32) -> Result<Option<String>, RegistryError> {
        Ok(self.snapshot().schema(id).map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"}]}"#;
    const V2_OPTIONAL: &str = r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","long"],"default":null}]}"#;
    const V2_REQUIRED: &str = r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"}]}"#;
    /// V1 without field `a`: readers of V1 cannot read it (no default), it reads V1 fine.
    const V_DROPPED: &str = r#"{"type":"record","name":"T","namespace":"t","fields":[]}"#;

    #[test]
    fn same_schema_same_id_and_versions_grow() {
        let r = EmbeddedRegistry::in_memory();
        let id1 = r.register("topic-t.T", V1).unwrap();
        assert_eq!(r.register("topic-t.T", V1).unwrap(), id1);
        assert_eq!(
            r.register("other-t.T", V1).unwrap(),
            id1,
            "ids are global per schema"
        );
        let id2 = r.register("topic-t.T", V2_OPTIONAL).unwrap();
        assert_ne!(id1, id2);
        assert_eq!(r.latest("topic-t.T").unwrap().version, 2);
        assert_eq!(
            r.register("topic-t.T", V1).unwrap(),
            id1,
            "an older version is found, not registered again"
        );
        assert_eq!(r.latest("topic-t.T").unwrap().version, 2);
    }

    #[test]
    fn whitespace_and_key_order_do_not_make_a_new_schema() {
        let r = EmbeddedRegistry::in_memory();
        let id = r.register("s", V1).unwrap();
        let reordered = r#"{ "fields": [ {"type": "string", "name": "a"} ],
            "namespace": "t", "name": "T", "type": "record" }"#;
        assert_eq!(r.register("s", reordered).unwrap(), id);
        assert_eq!(r.snapshot().versions("s").unwrap().len(), 1);
        assert_eq!(
            r.schema_by_id(id).unwrap().as_deref(),
            Some(V1),
            "the first text is kept verbatim"
        );
    }

    #[test]
    fn defaults_and_logical_types_are_kept() {
        let r = EmbeddedRegistry::in_memory();
        let text = r#"{"type":"record","name":"T","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},{"name":"b","type":["null","long"],"default":null}]}"#;
        let id = r.register("s", text).unwrap();
        assert_eq!(r.schema_by_id(id).unwrap().as_deref(), Some(text));
    }

    #[test]
    fn incompatible_change_is_refused() {
        let r = EmbeddedRegistry::in_memory();
        r.register("s", V1).unwrap();
        let err = r.register("s", V2_REQUIRED).unwrap_err();
        assert!(matches!(err, RegistryError::Incompatible { .. }), "{err}");
        assert_eq!(r.snapshot().versions("s").unwrap().len(), 1);
    }

    #[test]
    fn invalid_schema_is_refused() {
        let r = EmbeddedRegistry::in_memory();
        for bad in ["{", r#"{"type":"record","name":"T"}"#, r#""nope""#] {
            let err = r.register("s", bad).unwrap_err();
            assert!(matches!(err, RegistryError::InvalidSchema { .. }), "{err}");
        }
    }

    fn with_level(level: CompatibilityLevel) -> EmbeddedRegistry {
        let r = EmbeddedRegistry::in_memory();
        r.apply(&RegistryRecord::Config {
            subject: Some("s".into()),
            level: Some(level),
        })
        .unwrap();
        r
    }

    #[test]
    fn each_level_checks_its_direction() {
        use CompatibilityLevel::*;
        // (level, second version, accepted)
        let cases = [
            (None, V2_REQUIRED, true),
            (Backward, V2_REQUIRED, false),
            (Backward, V2_OPTIONAL, true),
            (Backward, V_DROPPED, true),
            (Forward, V2_REQUIRED, true),
            (Forward, V_DROPPED, false),
            (Full, V2_OPTIONAL, true),
            (Full, V2_REQUIRED, false),
            (Full, V_DROPPED, false),
        ];
        for (level, next, accepted) in cases {
            let r = with_level(level);
            r.register("s", V1).unwrap();
            assert_eq!(
                r.register("s", next).is_ok(),
                accepted,
                "{level} then {next}"
            );
        }
    }

    #[test]
    fn transitive_levels_check_every_version() {
        // V1 → V2 (adds b with default) → V3 (b required). BACKWARD only checks V3 against V2,
        // which has b; BACKWARD_TRANSITIVE also checks V1, which has not.
        let v3 = r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","long"]}]}"#;
        let plain = with_level(CompatibilityLevel::Backward);
        plain.register("s", V1).unwrap();
        plain.register("s", V2_OPTIONAL).unwrap();
        assert!(plain.register("s", v3).is_ok());

        let transitive = EmbeddedRegistry::in_memory();
        transitive.register("s", V1).unwrap();
        transitive.register("s", V2_OPTIONAL).unwrap();
        let err = transitive.register("s", v3).unwrap_err();
        let RegistryError::Incompatible { messages, .. } = err else {
            panic!("{err}")
        };
        assert!(messages[0].starts_with("version 1:"), "{messages:?}");
    }

    #[test]
    fn partial_union_match_is_incompatible() {
        let r = EmbeddedRegistry::in_memory();
        r.register("s", r#"["int","string"]"#).unwrap();
        assert!(r.register("s", r#""int""#).is_err());
    }

    #[test]
    fn lookup_and_versions() {
        let r = EmbeddedRegistry::in_memory();
        let id = r.register("s", V1).unwrap();
        let st = r.snapshot();
        assert_eq!(
            st.lookup("s", V1).unwrap(),
            SubjectVersion { version: 1, id }
        );
        assert!(matches!(
            st.lookup("s", V2_OPTIONAL),
            Err(RegistryError::SchemaNotFound(_))
        ));
        assert!(matches!(
            st.lookup("nope", V1),
            Err(RegistryError::SubjectNotFound(_))
        ));
        assert!(matches!(
            st.version("s", VersionRef::Number(2)),
            Err(RegistryError::VersionNotFound { .. })
        ));
        assert_eq!("latest".parse::<VersionRef>().unwrap(), VersionRef::Latest);
        assert!("0".parse::<VersionRef>().is_err());
        assert!("x".parse::<VersionRef>().is_err());
        assert_eq!(
            "full_transitive".parse::<CompatibilityLevel>().unwrap(),
            CompatibilityLevel::FullTransitive
        );
        assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
    }

    #[test]
    fn ids_survive_reopening() {
        let dir =
            std::env::temp_dir().join(format!("porch-registry-{}", crate::values::new_uuid_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = EmbeddedRegistry::open(&dir).unwrap();
        let id = first.register("s", V1).unwrap();
        first
            .apply(&RegistryRecord::Config {
                subject: Some("s".into()),
                level: Some(CompatibilityLevel::None),
            })
            .unwrap();
        let again = EmbeddedRegistry::open(&dir).unwrap();
        assert_eq!(again.register("s", V1).unwrap(), id);
        assert!(again.schema_by_id(id).unwrap().is_some());
        assert_eq!(
            again.snapshot().compatibility("s"),
            CompatibilityLevel::None
        );
        assert_eq!(again.register("t", V2_REQUIRED).unwrap(), id + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_written_before_compatibility_levels_still_open() {
        let old = r#"{"next_id":2,"schemas":{"1":"{\"type\":\"record\",\"name\":\"t.T\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}"},"subjects":{"s":[{"version":1,"id":1}]}}"#;
        let st = RegistryState::from_json(old.as_bytes()).unwrap();
        assert_eq!(
            st.compatibility("s"),
            CompatibilityLevel::BackwardTransitive
        );
        assert_eq!(st.version("s", VersionRef::Latest).unwrap().id, 1);
    }
}
