//! The compatibility guard: a change to `schemas/avro/` must not break BACKWARD_TRANSITIVE for
//! any record type porch has released, or registries would refuse it and readers of old records
//! could fail. `schemas/compat/released.json` holds every released version of every record type
//! (full name → resolved schemas, oldest first); each current schema must be accepted after
//! them by a registry at BACKWARD_TRANSITIVE.
//!
//! When releasing, record the current schemas (new types and changed ones are appended):
//!
//! ```sh
//! UPDATE_SCHEMA_SNAPSHOT=1 cargo test -p porch-schemas --test compatibility_guard
//! ```

use porch_schemas::{avsc, EmbeddedRegistry, RegistryError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// full name → released versions, oldest first
type Released = BTreeMap<String, Vec<Value>>;

const UPDATE: &str =
    "UPDATE_SCHEMA_SNAPSHOT=1 cargo test -p porch-schemas --test compatibility_guard";

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/released.json")
}

/// Object keys in sorted order whatever serde_json's features, so the file never churns.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let entries: BTreeMap<_, _> = map.into_iter().collect();
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Every record type's current schema, as the codec registers it.
fn current() -> BTreeMap<String, Value> {
    avsc::message_names()
        .into_iter()
        .map(|name| {
            let text = avsc::resolved(&name).expect("listed schemas resolve");
            (
                name,
                sorted(serde_json::from_str(&text).expect("schemas are JSON")),
            )
        })
        .collect()
}

fn load() -> Released {
    let text = std::fs::read_to_string(snapshot_path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with {UPDATE}",
            snapshot_path().display()
        )
    });
    serde_json::from_str(&text).expect("the snapshot is a map of full names to schema lists")
}

/// Appends each current schema that differs from its type's last released version.
fn record_release(released: &mut Released) {
    for (name, schema) in current() {
        let versions = released.entry(name).or_default();
        if versions.last() != Some(&schema) {
            versions.push(schema);
        }
    }
    let text = serde_json::to_string_pretty(released).expect("snapshot serialises") + "\n";
    std::fs::write(snapshot_path(), text).expect("writing the snapshot");
}

/// Registers the released versions, then `schema`, under one subject of a fresh registry at
/// the default level (BACKWARD_TRANSITIVE).
fn register_after(name: &str, released: &[Value], schema: &str) -> Result<u32, RegistryError> {
    let registry = EmbeddedRegistry::in_memory();
    for (i, v) in released.iter().enumerate() {
        registry
            .register(name, &v.to_string())
            .unwrap_or_else(|e| panic!("released version {} of {name} is refused: {e}", i + 1));
    }
    registry.register(name, schema)
}

#[test]
fn current_schemas_read_every_released_version() {
    let mut released = load();
    if std::env::var("UPDATE_SCHEMA_SNAPSHOT").is_ok_and(|v| v == "1") {
        record_release(&mut released);
    }
    let current = current();
    let mut failures = Vec::new();
    for (name, versions) in &released {
        match current.get(name) {
            None => failures.push(format!(
                "{name} was released but has no schema any more: readers still meet its records"
            )),
            Some(schema) => {
                if let Err(e) = register_after(name, versions, &schema.to_string()) {
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
    }
    for name in current.keys().filter(|n| !released.contains_key(*n)) {
        failures.push(format!(
            "{name} is not in the snapshot: record it with {UPDATE}"
        ));
    }
    assert!(
        failures.is_empty(),
        "schemas/avro no longer matches what was released:\n{}",
        failures.join("\n")
    );
}

/// Edits the current schema of OfferCreated and registers the result after its released
/// versions.
fn edited(edit: impl FnOnce(&mut Value)) -> Result<u32, RegistryError> {
    let name = "porch.offer.OfferCreated";
    let mut schema = current().remove(name).expect("OfferCreated has a schema");
    edit(&mut schema);
    let released = load().remove(name).unwrap_or_default();
    register_after(name, &released, &schema.to_string())
}

fn fields(schema: &mut Value) -> &mut Vec<Value> {
    schema["fields"]
        .as_array_mut()
        .expect("a record has fields")
}

#[test]
fn the_guard_refuses_incompatible_edits() {
    let required_field = edited(|schema| {
        fields(schema).push(serde_json::json!({"name": "added_without_default", "type": "string"}))
    });
    assert!(
        matches!(required_field, Err(RegistryError::Incompatible { .. })),
        "a new field without a default cannot be read from old records: {required_field:?}"
    );

    let retyped = edited(|schema| {
        let envelope = &mut fields(schema)[0]["type"];
        let event_id = &mut fields(envelope)[0];
        assert_eq!(event_id["name"], "event_id");
        event_id["type"] = "long".into();
    });
    assert!(
        matches!(retyped, Err(RegistryError::Incompatible { .. })),
        "a string field cannot become a long: {retyped:?}"
    );
}

#[test]
fn the_guard_accepts_compatible_edits() {
    let optional_field = edited(|schema| {
        fields(schema).push(serde_json::json!({
            "name": "added_with_default", "type": ["null", "string"], "default": null
        }))
    });
    assert!(optional_field.is_ok(), "{optional_field:?}");
}
