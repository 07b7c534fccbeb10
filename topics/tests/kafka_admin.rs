//! Topic administration and committed reads against a real Kafka broker (`scripts/engines up`).
//!
//! The broker is at `PORCH_KAFKA` (default 127.0.0.1:9092). These tests wait for it up to
//! `PORCH_KAFKA_WAIT_SECS` (default 300) and fail, not skip, when it never answers. Each test
//! works under a random topic prefix and deletes its topics afterwards.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use porch_topics::kafka_admin::{group_liveness, DeletePrefixOnDrop};
use porch_topics::kafka_read::{end_offsets, offsets_for_time, read_partition};
use porch_topics::{apply_topics, Catalogue, KafkaConfig, TopicReader};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const WAIT: Duration = Duration::from_secs(30);

/// A configuration with a prefix no other test or run uses, once the broker answers.
fn fresh_cluster() -> KafkaConfig {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let cfg = KafkaConfig {
        topic_prefix: format!(
            "t{:x}{:x}{}.",
            std::process::id(),
            nanos % 0xffff_ffff,
            SEQ.fetch_add(1, Ordering::Relaxed)
        ),
        ..KafkaConfig::from_env().expect("Kafka client properties")
    };
    cfg.wait_for_broker().unwrap_or_else(|e| panic!("{e}"));
    cfg
}

fn admin(cfg: &KafkaConfig) -> AdminClient<DefaultClientContext> {
    cfg.client_config().create().unwrap()
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(WAIT))
}

/// Partition count and replica count of partition 0, from a fresh metadata request.
fn shape(cfg: &KafkaConfig, physical: &str) -> (usize, usize) {
    let probe: BaseConsumer = cfg.client_config().create().unwrap();
    let md = probe.fetch_metadata(Some(physical), WAIT).unwrap();
    let t = &md.topics()[0];
    assert!(t.error().is_none(), "{physical}: {:?}", t.error());
    (t.partitions().len(), t.partitions()[0].replicas().len())
}

/// A topic config once it reads `want`, or what it still reads after a while. KRaft brokers
/// answer DescribeConfigs from a metadata cache that trails a change by some milliseconds.
async fn topic_config(cfg: &KafkaConfig, physical: &str, key: &str, want: &str) -> Option<String> {
    let admin = admin(cfg);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = admin
            .describe_configs(&[ResourceSpecifier::Topic(physical)], &opts())
            .await
            .unwrap();
        let value = res
            .into_iter()
            .next()
            .unwrap()
            .ok()
            .and_then(|r| r.get(key).and_then(|e| e.value.clone()));
        if value.as_deref() == Some(want) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A group's liveness settings are the brokers' (the engines' server.properties) until the
/// group has its own; those rdkafka cannot read, and the least any group may have is told
/// instead (the engines' minimum session timeout, Kafka's default maximum heartbeat interval).
#[tokio::test]
async fn a_groups_session_timeout_and_heartbeat_are_the_brokers_unless_its_own() {
    let cfg = fresh_cluster();
    let group = format!("{}liveness", cfg.topic_prefix);
    let s = Duration::from_secs;
    assert_eq!(group_liveness(&cfg, &group).await.unwrap(), (s(10), s(2)));
    let mut own = AlterConfig::new(ResourceSpecifier::Group(&group));
    own = own.set("consumer.session.timeout.ms", "20000");
    for r in admin(&cfg).alter_configs([&own], &opts()).await.unwrap() {
        r.unwrap_or_else(|(_, code)| panic!("alter the group's configs: {code}"));
    }
    assert_eq!(group_liveness(&cfg, &group).await.unwrap(), (s(6), s(15)));
}

#[tokio::test]
async fn apply_creates_every_catalogue_topic_then_reports_unchanged() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let catalogue = Catalogue::builtin();

    let first = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    let all = catalogue.all_names();
    assert_eq!(first.created.len(), all.len(), "{first}");
    assert!(
        first.reconfigured.is_empty() && first.drift.is_empty(),
        "{first}"
    );
    for name in &all {
        let physical = cfg.physical(name);
        assert_eq!(
            shape(&cfg, &physical),
            (catalogue.partitions as usize, 1),
            "{physical}"
        );
        assert_eq!(
            topic_config(&cfg, &physical, "cleanup.policy", "delete")
                .await
                .as_deref(),
            Some("delete")
        );
        assert_eq!(
            topic_config(&cfg, &physical, "min.insync.replicas", "1")
                .await
                .as_deref(),
            Some("1")
        );
    }
    for (name, want) in [
        ("offer.commands", "604800000"),
        ("offer.events", "-1"),
        ("offer.events.dlq", "2592000000"),
    ] {
        let got = topic_config(&cfg, &cfg.physical(name), "retention.ms", want).await;
        assert_eq!(got.as_deref(), Some(want), "{name}");
    }

    let second = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    assert!(second.is_unchanged(), "{second}");
    assert_eq!(second.unchanged.len(), all.len());
    assert_eq!(
        second.to_string(),
        format!("unchanged ({} topics)\n", all.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_racing_both_succeed() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let catalogue = Catalogue::builtin();
    let (a, b) = tokio::join!(
        apply_topics(&cfg, &catalogue, 1),
        apply_topics(&cfg, &catalogue, 1)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut created: Vec<&str> = a
        .created
        .iter()
        .chain(&b.created)
        .map(|c| c.topic.as_str())
        .collect();
    created.sort_unstable();
    let mut all: Vec<String> = catalogue
        .all_names()
        .iter()
        .map(|n| cfg.physical(n))
        .collect();
    all.sort_unstable();
    assert_eq!(created, all, "each topic created exactly once:\n{a}\n{b}");
    assert!(a.drift.is_empty() && b.drift.is_empty(), "{a}\n{b}");
    let third = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    assert!(third.is_unchanged(), "{third}");
}

#[tokio::test]
async fn apply_reconciles_a_config_changed_by_hand() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let catalogue = Catalogue::builtin();
    apply_topics(&cfg, &catalogue, 1).await.unwrap();
    let physical = cfg.physical("offer.events");

    // An operator sets retention to one day (and, AlterConfigs being what it is, resets the
    // topic's other overrides), plus an override of their own that apply must keep.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&physical))
        .set("retention.ms", "86400000")
        .set("segment.ms", "3600000");
    for r in admin(&cfg).alter_configs(&[alter], &opts()).await.unwrap() {
        r.unwrap();
    }
    assert_eq!(
        topic_config(&cfg, &physical, "retention.ms", "86400000")
            .await
            .as_deref(),
        Some("86400000")
    );

    let report = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    assert!(
        report.created.is_empty() && report.drift.is_empty(),
        "{report}"
    );
    let retention = report
        .reconfigured
        .iter()
        .find(|r| r.key == "retention.ms")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(retention.topic, physical);
    assert_eq!(retention.old.as_deref(), Some("86400000"));
    assert_eq!(retention.new, "-1");
    assert!(report.reconfigured.iter().all(|r| r.topic == physical));
    assert!(
        report.to_string().contains(&format!(
            "reconfigured {physical} retention.ms: 86400000 -> -1"
        )),
        "{report}"
    );
    assert_eq!(
        topic_config(&cfg, &physical, "retention.ms", "-1")
            .await
            .as_deref(),
        Some("-1")
    );
    assert_eq!(
        topic_config(&cfg, &physical, "segment.ms", "3600000")
            .await
            .as_deref(),
        Some("3600000"),
        "an operator's own override survives apply"
    );
    let again = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    assert!(again.is_unchanged(), "{again}");
}

#[tokio::test]
async fn apply_reports_a_wrong_partition_count_and_leaves_it() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let catalogue = Catalogue::builtin();
    let physical = cfg.physical("inventory.events");
    let by_hand = NewTopic::new(&physical, 3, TopicReplication::Fixed(1));
    for r in admin(&cfg)
        .create_topics(&[by_hand], &opts())
        .await
        .unwrap()
    {
        r.unwrap();
    }

    let report = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    assert_eq!(report.drift.len(), 1, "{report}");
    assert_eq!(report.drift[0].topic, physical);
    assert!(
        report.drift[0].what.starts_with(&format!(
            "3 partitions, catalogue says {}",
            catalogue.partitions
        )),
        "{report}"
    );
    assert_eq!(report.created.len(), catalogue.all_names().len() - 1);
    assert_eq!(shape(&cfg, &physical).0, 3, "partition count left alone");
    // Its configs are still the catalogue's business.
    assert_eq!(
        topic_config(&cfg, &physical, "retention.ms", "-1")
            .await
            .as_deref(),
        Some("-1")
    );

    // The drift is reported again on every apply, and nothing else is.
    let again = apply_topics(&cfg, &catalogue, 1).await.unwrap();
    assert_eq!(again.drift, report.drift);
    assert!(
        again.created.is_empty() && again.reconfigured.is_empty(),
        "{again}"
    );
}

#[tokio::test]
async fn apply_reports_a_replication_factor_it_cannot_give() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let physical = cfg.physical("offer.commands");
    for r in admin(&cfg)
        .create_topics(
            &[NewTopic::new(&physical, 8, TopicReplication::Fixed(1))],
            &opts(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let mut catalogue = Catalogue::builtin();
    catalogue.topics.retain(|t| t.name == "offer.commands");
    catalogue.topics[0].dlq = false;
    // Asking for 3 replicas of an existing one-replica topic: drift, not an error, no change.
    let report = apply_topics(&cfg, &catalogue, 3).await.unwrap();
    assert_eq!(report.drift.len(), 1, "{report}");
    assert!(
        report.drift[0]
            .what
            .starts_with("replication factor 1, wanted 3"),
        "{report}"
    );
    assert_eq!(shape(&cfg, &physical), (8, 1));
}

#[tokio::test]
async fn read_partition_sees_committed_transactions_only_and_stops_at_the_end() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let topic = "txn.events";
    let physical = cfg.physical(topic);
    for r in admin(&cfg)
        .create_topics(
            &[NewTopic::new(&physical, 1, TopicReplication::Fixed(1))],
            &opts(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;

    let producer: BaseProducer = cfg
        .client_config()
        .set("transactional.id", format!("{}tx", cfg.topic_prefix))
        .create()
        .unwrap();
    producer.init_transactions(WAIT).unwrap();
    let send = |txn: &str, n: usize| {
        for i in 0..n {
            let value = format!("{txn}-{i}");
            let headers = OwnedHeaders::new().insert(Header {
                key: "txn",
                value: Some(txn),
            });
            producer
                .send(
                    BaseRecord::to(&physical)
                        .key("tenant/product")
                        .payload(&value)
                        .headers(headers),
                )
                .unwrap();
        }
    };
    producer.begin_transaction().unwrap();
    send("committed", 3);
    producer.commit_transaction(WAIT).unwrap();
    producer.begin_transaction().unwrap();
    send("aborted", 2);
    producer.flush(WAIT).unwrap();
    producer.abort_transaction(WAIT).unwrap();

    // 3 records, a commit marker, 2 aborted records, an abort marker.
    assert_eq!(end_offsets(&cfg, topic).unwrap(), vec![7]);
    let started = Instant::now();
    let records = read_partition(&cfg, topic, 0, 0, 1000, WAIT).unwrap();
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    assert_eq!(values, ["committed-0", "committed-1", "committed-2"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the read ends at the end, not at its timeout: {:?}",
        started.elapsed()
    );
    let r = &records[1];
    assert_eq!((r.topic.as_str(), r.partition, r.offset), (topic, 0, 1));
    assert_eq!(r.key, b"tenant/product");
    assert_eq!(r.headers, vec![("txn".to_string(), b"committed".to_vec())]);
    assert!(r.timestamp >= before - 1000, "{} < {before}", r.timestamp);

    // A committed transaction after the aborted one: the read skips the gap and the reader
    // can be reused.
    producer.begin_transaction().unwrap();
    send("later", 1);
    producer.commit_transaction(WAIT).unwrap();
    let mut reader = TopicReader::new(&cfg).unwrap();
    let tail = reader.read_partition(topic, 0, 3, 1000, WAIT).unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(
        (tail[0].offset, tail[0].value.as_slice()),
        (7, &b"later-0"[..])
    );
    let two = reader.read_partition(topic, 0, 0, 2, WAIT).unwrap();
    assert_eq!(two.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1]);
    assert!(reader
        .read_partition(topic, 0, 9, 10, WAIT)
        .unwrap()
        .is_empty());

    // An open transaction holds the end back: read_committed readers stop before it.
    producer.begin_transaction().unwrap();
    send("open", 1);
    producer.flush(WAIT).unwrap();
    assert_eq!(reader.end_offsets(topic).unwrap(), vec![9]);
    let all = reader.read_partition(topic, 0, 0, 1000, WAIT).unwrap();
    assert_eq!(all.len(), 4);
    producer.abort_transaction(WAIT).unwrap();

    assert_eq!(offsets_for_time(&cfg, topic, 0).unwrap(), vec![0]);
    let future = before + 3_600_000_000;
    assert_eq!(
        offsets_for_time(&cfg, topic, future).unwrap(),
        end_offsets(&cfg, topic).unwrap()
    );
}

/// Liveness on real librdkafka statistics: a reader whose only broker answers the cluster
/// check (ApiVersions v0) but never librdkafka's own requests, so the reader never gets a
/// connection up, is taken as lost after the grace; a reader fetching from the real broker
/// all that time is not.
#[tokio::test]
async fn a_reader_that_cannot_use_an_answering_cluster_is_lost_and_a_working_one_is_not() {
    let cfg = fresh_cluster();
    let _cleanup = DeletePrefixOnDrop(cfg.clone());
    let topic = "liveness.events";
    for r in admin(&cfg)
        .create_topics(
            &[NewTopic::new(
                &cfg.physical(topic),
                1,
                TopicReplication::Fixed(1),
            )],
            &opts(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let half_broker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let half_broker_at = half_broker.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut held = Vec::new();
        for mut stream in half_broker.incoming().flatten() {
            // size, api key, api version, correlation id
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).is_ok() && head[6..8] == [0, 0] {
                let size = i32::from_be_bytes(head[0..4].try_into().unwrap()) as usize;
                let mut rest = vec![0u8; size.saturating_sub(8)];
                let _ = stream.read_exact(&mut rest);
                let mut reply = 10i32.to_be_bytes().to_vec();
                reply.extend_from_slice(&head[8..12]);
                reply.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // no error, no api keys
                let _ = stream.write_all(&reply);
            }
            held.push(stream); // anything else: never answered
        }
    });
    let stuck = TopicReader::watched(&KafkaConfig {
        bootstrap: half_broker_at,
        ..cfg.clone()
    })
    .unwrap();
    let mut working = TopicReader::watched(&cfg).unwrap();
    working.assign(topic, &[(0, 0)]).unwrap();
    let unwatched = TopicReader::new(&KafkaConfig {
        bootstrap: "127.0.0.1:9".into(),
        ..cfg.clone()
    })
    .unwrap();

    let started = Instant::now();
    while !stuck.lost() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a reader with no usable broker was never taken as lost"
        );
        // Statistics are served by polls.
        let _ = stuck.poll(Duration::from_millis(100));
        let _ = working.poll(Duration::from_millis(100));
        let _ = unwatched.poll(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() >= Duration::from_secs(15),
        "lost after {:?}, before the grace",
        started.elapsed()
    );
    assert!(!working.lost(), "a reader fetching from the broker is well");
    assert!(
        !unwatched.lost(),
        "a reader that does not watch is never lost"
    );
}
