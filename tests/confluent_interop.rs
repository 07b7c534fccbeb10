//! A real Confluent client reads and writes porch's topics: the Python confluent-kafka package
//! (from PyPI), its SchemaRegistryClient pointed at `porch registry`, AvroDeserializer for the
//! events porch produced and AvroSerializer for a command that porch then consumes
//! (tests/python/confluent_interop.py does the Python side).
//!
//! Runs on the distributed backend (Kafka at 127.0.0.1:9092 and Cassandra, from
//! `scripts/engines up`). The Python venv is tests/common/python.rs's, built on first use and
//! reused while the pinned requirements and the Python version stay the same; if it cannot be
//! built, the test fails.

mod common;

use common::python::{python_venv, PYTHON_DIR};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the script to completion (killing it after `limit`); its exit status and stdout.
fn run_script(python: &Path, env: &[(&str, String)], limit: Duration) -> (bool, String) {
    let (out, killed) = output_within(
        Command::new(python)
            .arg(Path::new(PYTHON_DIR).join("confluent_interop.py"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
        limit,
    );
    assert!(!killed, "the python script did not finish within {limit:?}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_python_client_reads_porch_events_and_writes_commands_porch_consumes() {
    // Before porch starts: a venv that cannot be built fails the test here, quickly.
    let python = tokio::task::spawn_blocking(python_venv)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    let p = Porch::start_distributed().await;
    let cluster = p.cluster().unwrap().clone();
    let tenant = "acme";
    let key = admin_key(tenant);
    let product = "interop-1";
    let offer = list_one_offer(&p, &key, product).await;

    // The Python side: decode porch's events, then produce a CreateProduct of its own.
    let new_product = format!("py-{}", uuid::Uuid::now_v7().simple());
    let command_id = uuid::Uuid::now_v7().to_string();
    let env = vec![
        (
            "PORCH_KAFKA",
            std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        ),
        (
            "PORCH_REGISTRY_URL",
            format!("http://127.0.0.1:{}", cluster.registry_port),
        ),
        ("PORCH_TOPIC_PREFIX", cluster.prefix.clone()),
        ("PORCH_TENANT", tenant.to_string()),
        ("PORCH_EXPECT_PRODUCT", product.to_string()),
        ("PORCH_EXPECT_OFFER", offer.clone()),
        ("PORCH_NEW_PRODUCT", new_product.clone()),
        ("PORCH_NEW_COMMAND", command_id.clone()),
    ];
    let started = Instant::now();
    let (ok, stdout) =
        tokio::task::spawn_blocking(move || run_script(&python, &env, Duration::from_secs(180)))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    eprintln!(
        "python script ({:.1} s): {}",
        started.elapsed().as_secs_f64(),
        stdout.trim()
    );
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary from the script: {stdout}"));
    assert!(
        ok && summary["ok"] == true,
        "python checks failed: {summary}"
    );
    assert!(summary["decoded"].as_u64().unwrap() >= 3, "{summary}");
    let produced = &summary["produced"];
    assert_eq!(produced["command_id"], command_id.as_str());
    assert_eq!(produced["key"], format!("{tenant}/{new_product}"));
    let partition = produced["partition"].as_u64().expect("partition");
    let offset = produced["offset"].as_u64().expect("offset");

    // porch decoded the Python-framed record (or it would sit on the dead-letter topic)…
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, view) = p.get(&key, &format!("/v1/products/{new_product}")).await;
        if s == 200 {
            assert_eq!(
                view["product"]["product"]["title"], "Linen shirt from Python",
                "{view}"
            );
            break;
        }
        if Instant::now() > deadline {
            let dlq = p.topic("product.commands.dlq").await;
            panic!("product {new_product} never appeared; product.commands.dlq: {dlq:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …applied it, as a command porch never accepted over HTTP…
    let outcome = p
        .eventually("the command's outcome", 30, || async {
            let (s, v) = p
                .get(&key, &format!("/v1/commands/{command_id}?wait=10000"))
                .await;
            (s == 200 && v["status"] != "ACCEPTED").then_some(v)
        })
        .await;
    assert_eq!(outcome["status"], "APPLIED", "{outcome}");
    assert_eq!(outcome["command_type"], "CreateProduct", "{outcome}");
    // …read it from the partition and offset the Python producer was told…
    let commands = p.topic("product.commands").await;
    let rec = commands
        .iter()
        .find(|r| r["partition"] == partition && r["offset"] == offset)
        .unwrap_or_else(|| panic!("no product.commands record at {partition}@{offset}"));
    assert_eq!(rec["record_type"], "porch.product.CreateProduct", "{rec:#}");
    assert_eq!(rec["value"]["envelope"]["command_id"], command_id.as_str());
    // …and its ProductCreated names the command as its cause, on the same partition number.
    let events = p.topic("product.events").await;
    let created = events
        .iter()
        .find(|r| {
            r["record_type"] == "porch.product.ProductCreated"
                && r["value"]["envelope"]["causation_id"] == command_id.as_str()
        })
        .unwrap_or_else(|| panic!("no ProductCreated caused by {command_id}"));
    assert_eq!(
        created["key"],
        format!("{tenant}/{new_product}"),
        "{created:#}"
    );
    assert_eq!(
        created["partition"], partition,
        "co-partitioned: {created:#}"
    );
    assert_eq!(
        created["value"]["envelope"]["correlation_id"], produced["correlation_id"],
        "{created:#}"
    );
}
