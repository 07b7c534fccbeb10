//! The distributed checker: waits until every processor has consumed every committed record of
//! its inputs, reads every changelog with read_committed straight from Kafka, and compares each
//! projection row in the CQL store with the replay of its aggregate's events.
#![allow(dead_code)]

use super::Porch;
use porch_cql::{CqlConfig, CqlStore};
use porch_processors::domain::activation::Activation;
use porch_processors::domain::compliance::Compliance;
use porch_processors::domain::inventory::Inventory;
use porch_processors::domain::listing::SearchListing;
use porch_processors::domain::offer::Offer;
use porch_processors::domain::product::Product;
use porch_processors::domain::variant::Variants;
use porch_processors::domain::{replay, Aggregate};
use porch_processors::modules::{self, ChannelConfig, ComplianceConfig};
use porch_processors::store::{key, tables, ProjectionStore};
use porch_schemas::{Codec, Event, EventRecord, Module, RegistryClient};
use porch_topics::kafka_read::TopicReader;
use porch_topics::{KafkaConfig, LogRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn kafka_bootstrap() -> String {
    std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn kafka(p: &Porch) -> KafkaConfig {
    KafkaConfig {
        bootstrap: kafka_bootstrap(),
        topic_prefix: p.cluster().expect("a distributed porch").prefix.clone(),
        ..KafkaConfig::default()
    }
}

/// Every committed record of a topic (read_committed), per partition, in offset order.
fn records(reader: &mut TopicReader, topic: &str) -> Vec<Vec<LogRecord>> {
    let ends = reader.end_offsets(topic).expect("end offsets");
    let mut out = Vec::new();
    for (partition, end) in ends.iter().enumerate() {
        let mut part = Vec::new();
        let mut from = 0u64;
        while from < *end {
            let read = reader
                .read_partition(topic, partition as u32, from, 5000, Duration::from_secs(30))
                .expect("read a partition");
            let Some(last) = read.last() else { break };
            from = last.offset + 1;
            part.extend(read);
        }
        out.push(part);
    }
    out
}

/// Every committed event of a module's changelog, decoded, in partition order.
pub fn changelog(p: &Porch, topic: &str) -> Vec<EventRecord> {
    let cluster = p.cluster().expect("a distributed porch");
    let registry = RegistryClient::new(&format!("http://127.0.0.1:{}", cluster.registry_port))
        .expect("registry client");
    let codec = Codec::with_registry(Arc::new(registry));
    let mut reader = TopicReader::new(&kafka(p)).expect("topic reader");
    records(&mut reader, topic)
        .into_iter()
        .enumerate()
        .flat_map(|(partition, part)| part.into_iter().map(move |r| (partition, r)))
        .map(|(partition, r)| {
            codec
                .decode_event(&r.value)
                .unwrap_or_else(|e| panic!("{topic}/{partition}@{}: undecodable: {e}", r.offset))
        })
        .collect()
}

/// The committed offsets of a processor's consumer group on a topic, per partition (-1: none).
pub fn committed(p: &Porch, processor: &str, topic: &str) -> Vec<i64> {
    let kafka = kafka(p);
    let consumer: BaseConsumer = porch_topics::client_config(&kafka.bootstrap)
        .set("group.id", format!("{}{processor}", kafka.topic_prefix))
        .create()
        .expect("a consumer to read committed offsets");
    let mut tpl = TopicPartitionList::new();
    let partitions = TopicReader::new(&kafka)
        .expect("topic reader")
        .partition_count(topic)
        .expect("partition count");
    for partition in 0..partitions {
        tpl.add_partition(&kafka.physical(topic), partition as i32);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

/// Waits until every processor's group has committed past the last committed record of every
/// partition of each of its inputs, and that stays so once more: the pipeline is at rest, so
/// each projection row is what its changelog says (a turn writes its rows before it commits).
pub async fn wait_consumed(p: &Porch) {
    let mut reader = TopicReader::new(&kafka(p)).expect("topic reader");
    let wanted = |reader: &mut TopicReader| -> Vec<(&'static str, String, Vec<i64>)> {
        modules::all(ComplianceConfig::default(), ChannelConfig::default())
            .iter()
            .flat_map(|proc| {
                proc.inputs()
                    .into_iter()
                    .map(|t| (proc.name(), t))
                    .collect::<Vec<_>>()
            })
            .map(|(name, topic)| {
                let next = records(reader, &topic)
                    .iter()
                    .map(|part| part.last().map_or(0, |r| r.offset as i64 + 1))
                    .collect();
                (name, topic, next)
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut want = wanted(&mut reader);
    loop {
        let behind: Vec<String> = want
            .iter()
            .filter_map(|(name, topic, next)| {
                let done = committed(p, name, topic);
                let lagging = next.iter().zip(&done).any(|(n, d)| *n > 0 && d < n);
                lagging
                    .then(|| format!("{name} on {topic}: committed {done:?}, records end {next:?}"))
            })
            .collect();
        if behind.is_empty() {
            let again = wanted(&mut reader);
            if again == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the processors' inputs still grew after 120 s: {again:?}"
            );
            want = again; // more arrived meanwhile: wait for those too
            continue;
        }
        assert!(
            Instant::now() < deadline,
            "processors still behind their inputs after 120 s: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Events grouped by the projection row they make, in replay order.
type ByRow = BTreeMap<String, Vec<Event>>;

fn group(rows: &mut ByRow, events: &[EventRecord], row_key: impl Fn(&EventRecord) -> String) {
    for e in events {
        if matches!(e.event, Event::CommandRejected(_)) {
            continue;
        }
        rows.entry(row_key(e)).or_default().push(e.event.clone());
    }
}

/// Compares the rows of one aggregate kind with the replay of their events.
async fn check_rows<A: Aggregate>(store: &CqlStore, table: &str, by_row: &ByRow) -> usize {
    for (k, evs) in by_row {
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
    println!(
        "{table}: {} rows equal the replay of their events",
        by_row.len()
    );
    by_row.len()
}

/// Once the pipeline is at rest: no event id twice on any changelog, and every projection row
/// (product, variant set, offer, stock, compliance per region, activation's view of a product,
/// search listing) equal to the replay of its events. Returns how many rows were compared.
pub async fn check_projections(p: &Porch) -> usize {
    wait_consumed(p).await;
    let cluster = p.cluster().expect("a distributed porch");
    let store = CqlStore::connect(&CqlConfig {
        keyspace: cluster.keyspace.clone(),
        ..CqlConfig::from_env().expect("CQL settings")
    })
    .await
    .expect("connect to the store");
    let mut ids = HashSet::new();
    let mut load = |module: Module| {
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
    let product = load(Module::Product);
    let variant = load(Module::Variant);
    let offer = load(Module::Offer);
    let inventory = load(Module::Inventory);
    let compliance = load(Module::Compliance);
    let activation = load(Module::Activation);
    let search = load(Module::Search);

    let t = |e: &EventRecord| e.envelope.tenant.to_string();
    // Rows of one aggregate: tenant/aggregate id (a compliance aggregate is product/region).
    let own = |e: &EventRecord| key(&[&t(e), &e.envelope.aggregate_id]);
    // Rows of an aggregate within its product: tenant/product/aggregate id.
    let in_product = |e: &EventRecord| {
        key(&[
            &t(e),
            e.event.product_id().map(|p| p.as_str()).unwrap_or_default(),
            &e.envelope.aggregate_id,
        ])
    };
    let by_product = |e: &EventRecord| {
        key(&[
            &t(e),
            e.event.product_id().map(|p| p.as_str()).unwrap_or_default(),
        ])
    };
    let rows_of = |events: &[EventRecord], row_key: &dyn Fn(&EventRecord) -> String| {
        let mut rows = ByRow::new();
        group(&mut rows, events, row_key);
        rows
    };
    // Activation's view absorbs its inputs and then its own decisions: an input only sets what
    // inputs set and a decision only what decisions set, so the view at rest is every input in
    // its partition's order followed by every decision in order.
    let mut views = ByRow::new();
    for inputs in [&product, &variant, &offer, &inventory, &compliance] {
        group(&mut views, inputs, by_product);
    }
    group(&mut views, &activation, by_product);

    let mut rows = 0;
    rows += check_rows::<Product>(&store, tables::PRODUCT, &rows_of(&product, &own)).await;
    rows += check_rows::<Variants>(&store, tables::VARIANT, &rows_of(&variant, &own)).await;
    rows += check_rows::<Offer>(&store, tables::OFFER, &rows_of(&offer, &in_product)).await;
    rows +=
        check_rows::<Inventory>(&store, tables::INVENTORY, &rows_of(&inventory, &in_product)).await;
    rows += check_rows::<Compliance>(&store, tables::COMPLIANCE, &rows_of(&compliance, &own)).await;
    rows += check_rows::<Activation>(&store, tables::ACTIVATION, &views).await;
    rows +=
        check_rows::<SearchListing>(&store, tables::LISTING, &rows_of(&search, &in_product)).await;
    rows
}
