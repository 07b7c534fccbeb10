//! A poison record on a command topic goes to its dead-letter topic with the error in headers,
//! and the partition keeps flowing: the valid command behind it is applied.

use porch_processors::modules::{self, ProductProcessor};
use porch_processors::store::{key, tables, CommandState, CommandStatus};
use porch_processors::{EmbeddedBackend, RuntimeConfig, Stages};
use porch_schemas::*;
use porch_topics::{product_key, Append, Catalogue, EmbeddedLog};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let dir = std::env::temp_dir().join(format!("porch-dlq-{}", new_uuid_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let catalogue = Catalogue::builtin();
    let codec = Arc::new(Codec::new(Arc::new(EmbeddedRegistry::in_memory())));
    for (topic, types) in modules::topic_record_types() {
        codec.register_topic(&topic, &types).unwrap();
    }
    let log = Arc::new(
        EmbeddedLog::open(
            &dir.join("log.redb"),
            catalogue.partitions,
            catalogue.all_names(),
            1 << 20,
        )
        .unwrap(),
    );

    let tenant = TenantId::parse("acme").unwrap();
    let product = ProductId::parse("p-1").unwrap();
    let k = product_key(tenant.as_str(), product.as_str());
    let command_id = CommandId::generate();
    let good = codec
        .encode_command(
            "product.commands",
            &CommandRecord {
                envelope: CommandEnvelope {
                    command_id: command_id.clone(),
                    tenant: tenant.clone(),
                    seller: None,
                    aggregate_id: product.to_string(),
                    issued_at: now_micros(),
                    correlation_id: command_id.to_string(),
                    lane: None,
                    expected_version: None,
                },
                command: CreateProduct {
                    product: ProductData {
                        product_id: product.clone(),
                        title: "Lamp".into(),
                        description: Some("Bright".into()),
                        brand: None,
                        category: Some("home".into()),
                        attributes: BTreeMap::new(),
                        images: vec![],
                        channel_overrides: BTreeMap::new(),
                    },
                }
                .into(),
            },
        )
        .unwrap();
    let partition = log
        .write(|t| {
            t.append(Append {
                topic: "product.commands",
                key: k.as_bytes(),
                value: b"\xde\xad\xbe\xef garbage",
                headers: vec![],
            })?;
            t.append(Append {
                topic: "product.commands",
                key: k.as_bytes(),
                value: &[0, 0, 0, 0, 250, 1, 2, 3],
                headers: vec![],
            })?;
            t.append(Append {
                topic: "product.commands",
                key: k.as_bytes(),
                value: &good,
                headers: vec![],
            })
        })
        .unwrap()
        .0;

    let stop = Arc::new(AtomicBool::new(false));
    let stages = Stages::new(
        vec![Arc::new(ProductProcessor)],
        codec.clone(),
        RuntimeConfig::default(),
    );
    let (_backend, thread) =
        EmbeddedBackend::start(log.clone(), codec.clone(), stages, stop.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while log
        .position("product", "product.commands", partition)
        .unwrap()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "the partition did not move past the poison"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();

    let dead = log.read("product.commands.dlq", partition, 0, 10).unwrap();
    assert_eq!(dead.len(), 2, "both poison records are dead-lettered");
    assert_eq!(dead[0].value, b"\xde\xad\xbe\xef garbage");
    for d in &dead {
        let header = |name: &str| {
            d.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert!(header("dlq.error").is_some_and(|e| !e.is_empty()));
        assert_eq!(header("dlq.topic").as_deref(), Some("product.commands"));
        assert_eq!(header("dlq.consumer_group").as_deref(), Some("product"));
    }
    assert_eq!(
        dead[1]
            .headers
            .iter()
            .find(|(k, _)| k == "dlq.offset")
            .map(|(_, v)| v.as_slice()),
        Some(&b"1"[..])
    );

    let events = log.read("product.events", partition, 0, 10).unwrap();
    assert_eq!(
        events.len(),
        1,
        "the valid command behind the poison was applied"
    );
    assert!(matches!(
        codec.decode_event(&events[0].value).unwrap().event,
        Event::ProductCreated(_)
    ));
    let status: CommandStatus = serde_json::from_slice(
        &log.get(
            tables::COMMAND,
            &key(&[tenant.as_str(), command_id.as_str()]),
        )
        .unwrap()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(status.status, CommandState::Applied);
    std::fs::remove_dir_all(dir).unwrap();
}
