//! The distributed checker: reads every changelog with read_committed straight from Kafka and
//! compares each projection row in the CQL store with the replay of its aggregate's events.
#![allow(dead_code)]

use super::Porch;
use porch_cql::{CqlConfig, CqlStore};
use porch_processors::domain::inventory::Inventory;
use porch_processors::domain::offer::Offer;
use porch_processors::domain::product::Product;
use porch_processors::domain::variant::Variants;
use porch_processors::domain::{replay, Aggregate};
use porch_processors::store::{key, tables, ProjectionStore};
use porch_schemas::{Codec, Event, EventRecord, RegistryClient};
use porch_topics::kafka_read::TopicReader;
use porch_topics::KafkaConfig;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

fn kafka_bootstrap() -> String {
    std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Every committed event of a module's changelog, decoded, in partition order.
pub fn changelog(p: &Porch, topic: &str) -> Vec<EventRecord> {
    let cluster = p.cluster().expect("a distributed porch");
    let kafka = KafkaConfig {
        bootstrap: kafka_bootstrap(),
        topic_prefix: cluster.prefix.clone(),
    };
    let registry = RegistryClient::new(&format!("http://127.0.0.1:{}", cluster.registry_port))
        .expect("registry client");
    let codec = Codec::with_registry(Arc::new(registry));
    let mut reader = TopicReader::new(&kafka).expect("topic reader");
    let ends = reader.end_offsets(topic).expect("end offsets");
    let mut out = Vec::new();
    for (partition, end) in ends.iter().enumerate() {
        let mut from = 0u64;
        while from < *end {
            let records = reader
                .read_partition(topic, partition as u32, from, 5000, Duration::from_secs(30))
                .expect("read changelog");
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            for r in records {
                out.push(codec.decode_event(&r.value).unwrap_or_else(|e| {
                    panic!("{topic}/{partition}@{}: undecodable: {e}", r.offset)
                }));
            }
        }
    }
    out
}

/// Compares the rows of one aggregate kind with the replay of their events.
async fn check_rows<A: Aggregate>(
    store: &CqlStore,
    table: &str,
    events: &[EventRecord],
    row_key: impl Fn(&EventRecord) -> String,
) -> usize {
    let mut by_row: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in events {
        if matches!(e.event, Event::CommandRejected(_)) {
            continue;
        }
        by_row.entry(row_key(e)).or_default().push(e.event.clone());
    }
    for (k, evs) in &by_row {
        let replayed = replay::<A>(evs);
        let row = store
            .get_async(table, k)
            .await
            .unwrap_or_else(|e| panic!("reading {table}/{k}: {e}"))
            .unwrap_or_else(|| panic!("{table}/{k}: no row for {} events", evs.len()));
        let stored: serde_json::Value = serde_json::from_slice(&row).expect("row is JSON");
        assert_eq!(
            stored,
            serde_json::to_value(&replayed).unwrap(),
            "{table}/{k} differs from the replay of its {} events",
            evs.len()
        );
    }
    by_row.len()
}

/// No event id twice on any changelog, and every product, variant set, offer and stock row
/// equal to the replay of its events. Returns how many rows were compared.
pub async fn check_projections(p: &Porch) -> usize {
    let cluster = p.cluster().expect("a distributed porch");
    let store = CqlStore::connect(&CqlConfig {
        keyspace: cluster.keyspace.clone(),
        ..CqlConfig::from_env()
    })
    .await
    .expect("connect to the store");
    let mut ids = HashSet::new();
    let mut load = |module: &str| {
        let events = changelog(p, &format!("{module}.events"));
        for e in &events {
            assert!(
                ids.insert(e.envelope.event_id.clone()),
                "{module}.events: event {} twice",
                e.envelope.event_id
            );
        }
        events
    };
    let (product, variant, offer, inventory) = (
        load("product"),
        load("variant"),
        load("offer"),
        load("inventory"),
    );
    let t = |e: &EventRecord| e.envelope.tenant.to_string();
    let mut rows = 0;
    rows += check_rows::<Product>(&store, tables::PRODUCT, &product, |e| {
        key(&[&t(e), &e.envelope.aggregate_id])
    })
    .await;
    rows += check_rows::<Variants>(&store, tables::VARIANT, &variant, |e| {
        key(&[&t(e), &e.envelope.aggregate_id])
    })
    .await;
    rows += check_rows::<Offer>(&store, tables::OFFER, &offer, |e| {
        key(&[
            &t(e),
            e.event.product_id().as_str(),
            &e.envelope.aggregate_id,
        ])
    })
    .await;
    rows += check_rows::<Inventory>(&store, tables::INVENTORY, &inventory, |e| {
        key(&[
            &t(e),
            e.event.product_id().as_str(),
            &e.envelope.aggregate_id,
        ])
    })
    .await;
    rows
}
