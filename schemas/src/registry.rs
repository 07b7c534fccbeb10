//! The embedded schema registry: Confluent semantics (subjects with versions, global ids, one id
//! per distinct schema, BACKWARD_TRANSITIVE compatibility), persisted as a JSON file in the data
//! directory so ids stay stable across restarts.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema for subject {subject} is not valid Avro: {reason}")]
    InvalidSchema { subject: String, reason: String },
    #[error("schema for subject {subject} is incompatible with version {version}: {reason}")]
    Incompatible {
        subject: String,
        version: u32,
        reason: String,
    },
    #[error("registry file {path}: {reason}")]
    Storage { path: String, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectVersion {
    pub version: u32,
    pub id: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_id: u32,
    /// id → canonical schema text
    schemas: BTreeMap<u32, String>,
    subjects: BTreeMap<String, Vec<SubjectVersion>>,
}

/// The registry persisted in `<data dir>/schema-registry.json`.
pub struct EmbeddedRegistry {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl EmbeddedRegistry {
    /// Opens (or creates) the registry file in `dir`.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        let path = dir.join("schema-registry.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Storage {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                next_id: 1,
                ..Default::default()
            },
            Err(e) => {
                return Err(RegistryError::Storage {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        Ok(Self {
            path: Some(path),
            state: Mutex::new(state),
        })
    }

    /// A registry that lives in memory only (unit tests, tools).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new(State {
                next_id: 1,
                ..Default::default()
            }),
        }
    }

    /// Registers `schema` under `subject` and returns its global id. Registering a schema the
    /// subject already has returns the existing id; a new version must be able to read every
    /// earlier version's data (BACKWARD_TRANSITIVE).
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let parsed = Schema::parse_str(schema).map_err(|e| RegistryError::InvalidSchema {
            subject: subject.into(),
            reason: e.to_string(),
        })?;
        let canonical = parsed.canonical_form();
        let mut st = self.state.lock().expect("registry lock");
        let existing_id = st
            .schemas
            .iter()
            .find(|(_, s)| **s == canonical)
            .map(|(id, _)| *id);
        let versions = st.subjects.get(subject).cloned().unwrap_or_default();
        if let Some(id) = existing_id {
            if versions.iter().any(|v| v.id == id) {
                return Ok(id);
            }
        }
        for v in &versions {
            let old = Schema::parse_str(&st.schemas[&v.id]).expect("stored schemas parse");
            if let Err(e) = SchemaCompatibility::can_read(&old, &parsed) {
                return Err(RegistryError::Incompatible {
                    subject: subject.into(),
                    version: v.version,
                    reason: e.to_string(),
                });
            }
        }
        let id = match existing_id {
            Some(id) => id,
            None => {
                let id = st.next_id;
                st.next_id += 1;
                st.schemas.insert(id, canonical);
                id
            }
        };
        let version = versions.last().map(|v| v.version + 1).unwrap_or(1);
        st.subjects
            .entry(subject.into())
            .or_default()
            .push(SubjectVersion { version, id });
        self.persist(&st)?;
        Ok(id)
    }

    /// The schema text with this id, if any.
    pub fn schema_by_id(&self, id: u32) -> Option<String> {
        self.state
            .lock()
            .expect("registry lock")
            .schemas
            .get(&id)
            .cloned()
    }

    /// The latest version registered under `subject`.
    pub fn latest(&self, subject: &str) -> Option<SubjectVersion> {
        self.state
            .lock()
            .expect("registry lock")
            .subjects
            .get(subject)
            .and_then(|v| v.last().cloned())
    }

    pub fn subjects(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("registry lock")
            .subjects
            .keys()
            .cloned()
            .collect()
    }

    fn persist(&self, st: &State) -> Result<(), RegistryError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"}]}"#;
    const V2_OPTIONAL: &str = r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","long"],"default":null}]}"#;
    const V2_REQUIRED: &str = r#"{"type":"record","name":"T","namespace":"t","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"}]}"#;

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
    }

    #[test]
    fn incompatible_change_is_refused() {
        let r = EmbeddedRegistry::in_memory();
        r.register("s", V1).unwrap();
        let err = r.register("s", V2_REQUIRED).unwrap_err();
        assert!(matches!(err, RegistryError::Incompatible { .. }), "{err}");
    }

    #[test]
    fn ids_survive_reopening() {
        let dir =
            std::env::temp_dir().join(format!("porch-registry-{}", crate::values::new_uuid_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = EmbeddedRegistry::open(&dir)
            .unwrap()
            .register("s", V1)
            .unwrap();
        let again = EmbeddedRegistry::open(&dir).unwrap();
        assert_eq!(again.register("s", V1).unwrap(), id);
        assert!(again.schema_by_id(id).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
