//! DESIGN §5 on the real engines: loads of 5,000+ commands while a processor is SIGKILLed, the
//! ingest API is SIGKILLed (1,600 commands), the Kafka broker restarts or Cassandra is away for
//! 30 s, two members of one group share and
//! hand over partitions, and two members run under one instance id. Afterwards every command
//! is APPLIED, on its topic once, its events once each (read_committed), and, once every
//! processor has consumed its inputs, every projection row equals the replay of its changelog.
//! Needs `scripts/engines up` (the README's test command runs it).

mod common;

use common::checker::{check_projections, committed};
use common::load::{run_load, verify, Sent};
use common::*;
use porch_topics::{commands_topic, events_topic};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::process::Command;
use std::time::{Duration, Instant};

/// The faults stop shared engines: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 20 tenants × 63 products × 4 commands = 5,040 commands.
const TENANTS: usize = 20;
const PRODUCTS: usize = 63;

/// Brings every engine back up when a fault test ends, even by a failed assertion mid-fault, so
/// the tests after it start on running engines.
struct EnginesBack;

impl Drop for EnginesBack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // No second panic while unwinding: a failure here shows in the next test.
            let _ = run_engines(&["up"]);
        }
    }
}

fn run_engines(args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/engines"))
        .args(args)
        .status()
}

fn engines(args: &[&str]) {
    let status = run_engines(args).expect("run scripts/engines");
    assert!(status.success(), "scripts/engines {args:?} failed");
}

fn bootstrap() -> String {
    std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

async fn finish(p: &Porch, sent: &[Sent]) {
    verify(p, sent).await;
    let rows = check_projections(p).await;
    assert!(rows >= sent.len() / 2, "compared only {rows} rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processor_killed_with_sigkill_and_restarted_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    let mut p = Porch::start_distributed().await;
    let before = instance_of(&p, "activation").await;
    let sent = run_load(&mut p, TENANTS, PRODUCTS, async |p: &mut Porch| {
        p.kill_role("activation");
        tokio::time::sleep(Duration::from_millis(500)).await;
        p.start_processor("activation", "activation");
    })
    .await;
    // The restarted copy took its predecessor's instance id, and with it its transactional id.
    assert_eq!(instance_of(&p, "activation").await, before);
    finish(&p, &sent).await;
}

/// The ingest API SIGKILLed under load: clients retrying with their Idempotency-Keys are
/// accepted within 5 s of its restart (a first attempt the kill cut short is finished by the
/// retry at once, not waited for), and every command applies once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ingest_api_killed_under_load_accepts_retries_within_5s_and_applies_each_once() {
    let _serial = SERIAL.lock().await;
    let mut p = Porch::start_distributed().await;
    let restarted = std::sync::OnceLock::new();
    let sent = run_load(&mut p, TENANTS, 20, async |p: &mut Porch| {
        p.kill_role("ingest-api");
        tokio::time::sleep(Duration::from_millis(300)).await;
        p.start_ingest_api().await;
        restarted.set(Instant::now()).unwrap();
    })
    .await;
    let restarted = *restarted.get().unwrap();
    // Each tenant's client sends one command at a time and retries it until it is accepted:
    // its first acceptance after the restart is the command the kill caught.
    let mut waits = Vec::new();
    for t in 0..TENANTS {
        let tenant = format!("t{t:02}");
        if let Some(first) = sent
            .iter()
            .filter(|s| s.tenant == tenant && s.accepted_at >= restarted)
            .map(|s| s.accepted_at)
            .min()
        {
            waits.push((tenant, first - restarted));
        }
    }
    assert!(
        waits.len() >= TENANTS / 2,
        "most tenants went on after the restart: {waits:?}"
    );
    let longest = waits.iter().map(|(_, w)| *w).max().unwrap_or_default();
    println!("retries accepted within {longest:?} of the ingest API's restart");
    for (tenant, wait) in &waits {
        assert!(
            *wait <= Duration::from_secs(5),
            "{tenant}'s retry was accepted {wait:?} after the restart"
        );
    }
    verify(&p, &sent).await;
}

/// A processor's instance id, once it answers /metrics.
async fn instance_of(p: &Porch, name: &str) -> String {
    p.eventually(&format!("{name}'s instance id"), 60, || {
        p.role_instance(name)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_under_load_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    let _back = EnginesBack;
    let mut p = Porch::start_distributed().await;
    let sent = run_load(&mut p, TENANTS, PRODUCTS, async |_p: &mut Porch| {
        engines(&["down", "kafka"]);
        tokio::time::sleep(Duration::from_secs(3)).await;
        engines(&["up", "kafka"]);
    })
    .await;
    finish(&p, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cassandra_away_for_30s_stops_processors_then_everything_completes() {
    let _serial = SERIAL.lock().await;
    let _back = EnginesBack;
    let mut p = Porch::start_distributed().await;
    let sent = run_load(&mut p, TENANTS, PRODUCTS, async |p: &mut Porch| {
        engines(&["down", "cassandra"]);
        let down_at = Instant::now();
        // In-flight batches fail; then nothing advances and nobody claims to be ready.
        p.eventually("processors report not ready", 30, || async {
            let mut all = true;
            for name in ["product", "offer", "activation"] {
                all &= p.role_ready(name).await == Some(false);
            }
            all.then_some(())
        })
        .await;
        let (s, _) = p.get(OPERATOR_KEY, "/readyz").await;
        assert_eq!(s, 503, "the ingest API is not ready without its store");
        let before: Vec<_> = PROCESSORS
            .iter()
            .map(|n| committed(p, n.as_str(), &inputs_of(*n)))
            .collect();
        tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
        let after: Vec<_> = PROCESSORS
            .iter()
            .map(|n| committed(p, n.as_str(), &inputs_of(*n)))
            .collect();
        assert_eq!(
            before, after,
            "no input offset was committed while the store was away"
        );
        engines(&["up", "cassandra"]);
    })
    .await;
    finish(&p, &sent).await;
}

/// The first input topic of a processor (whose offsets show whether it advanced).
fn inputs_of(processor: Module) -> String {
    match processor {
        Module::Activation => events_topic(Module::Offer),
        Module::Search | Module::Channel => events_topic(Module::Activation),
        m => commands_topic(m),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_split_the_partitions_and_one_takes_over_when_the_other_dies() {
    let _serial = SERIAL.lock().await;
    let mut p = Porch::start_distributed().await;
    // Both started without an instance id, as a second copy beside the first would be.
    p.start_processor("offer-2", "offer");
    let split = p
        .eventually("both offer members own tasks", 90, || async {
            let a = p.role_metric("offer", "porch_tasks").await?;
            let b = p.role_metric("offer-2", "porch_tasks").await?;
            (a > 0.0 && b > 0.0 && a + b == 8.0).then_some((a, b))
        })
        .await;
    println!("offer members own {} and {} tasks", split.0, split.1);
    // Each took a number of this machine of its own: `<host>[-<machine id>]-0` and `-1`.
    let ids = [
        instance_of(&p, "offer").await,
        instance_of(&p, "offer-2").await,
    ];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut numbers: Vec<&str> = ids
        .iter()
        .map(|id| {
            assert!(id.starts_with(host.trim()), "instance id {id}");
            id.rsplit_once('-').unwrap().1
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["0", "1"], "instance ids {ids:?}");
    assert_eq!(
        ids[0].rsplit_once('-').unwrap().0,
        ids[1].rsplit_once('-').unwrap().0
    );
    // A third copy on this machine under one of their ids is refused before it connects.
    let (status, stderr) = p.processor_refused("offer", &ids[1]);
    assert!(
        !status.success(),
        "a copy under a held id exited with {status}"
    );
    assert!(
        stderr.contains(&format!(
            "another process on this machine runs as instance {:?}",
            ids[1]
        )),
        "its error: {stderr}"
    );
    let sent = run_load(&mut p, TENANTS, PRODUCTS, async |p: &mut Porch| {
        p.kill_role("offer-2");
    })
    .await;
    p.eventually("the survivor owns every task", 120, || async {
        (p.role_metric("offer", "porch_tasks").await? == 8.0).then_some(())
    })
    .await;
    finish(&p, &sent).await;
}

/// A second process of one processor started under the first one's instance id on another
/// machine (a copied setting), where the first one's lock cannot be seen: each new producer of
/// one fences the other's. Both count the fences and the one fenced twice reports not ready;
/// nothing is lost or doubled; once the copy is stopped, the other owns every task and is ready
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_under_one_instance_id_say_so_and_lose_and_double_nothing() {
    let _serial = SERIAL.lock().await;
    let mut p = Porch::start_distributed().await;
    let id = instance_of(&p, "offer").await;
    p.start_processor_elsewhere_as("offer-copy", "offer", &id);
    let sent = run_load(&mut p, TENANTS, PRODUCTS, async |p: &mut Porch| {
        let members = ["offer", "offer-copy"];
        let (fenced, name) = p
            .eventually("a member fenced twice", 60, || async {
                let mut fenced = Vec::new();
                for name in members {
                    fenced.push(p.role_metric(name, "porch_producer_fenced_total").await?);
                }
                let i = (0..2).find(|&i| fenced[i] >= 2.0)?;
                Some((fenced, members[i]))
            })
            .await;
        println!("offer members fenced {fenced:?} times");
        // Not ready throughout, not only in the moments after each fence: the turns in
        // between go through.
        for _ in 0..25 {
            assert_eq!(
                p.role_ready(name).await,
                Some(false),
                "{name}, fenced twice, reports ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    p.kill_role("offer-copy");
    p.eventually(
        "the remaining member owns every task, ready again",
        150,
        || async {
            let tasks = p.role_metric("offer", "porch_tasks").await?;
            (tasks == 8.0 && p.role_ready("offer").await?).then_some(())
        },
    )
    .await;
    finish(&p, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_command_topic_is_dead_lettered_and_the_partition_flows() {
    let _serial = SERIAL.lock().await;
    let p = Porch::start_distributed().await;
    let prefix = p.cluster().unwrap().prefix.clone();
    let producer: BaseProducer = porch_topics::client_config(&bootstrap()).create().unwrap();
    for partition in 0..8 {
        producer
            .send(
                BaseRecord::to(&format!("{prefix}product.commands"))
                    .partition(partition)
                    .key("acme/garbage")
                    .payload(&b"\x00\x00\x00\x00\x01not avro at all"[..]),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    // Commands behind the garbage, on every partition, are applied.
    for i in 0..16 {
        p.applied(
            reqwest::Method::POST,
            &admin_key("acme"),
            "/v1/products",
            product_body(&format!("after-garbage-{i}"), "Shirt", "apparel", true),
        )
        .await;
    }
    let dead = p
        .eventually("8 dead letters", 60, || async {
            let recs = p.topic("product.commands.dlq").await;
            (recs.len() >= 8).then_some(recs)
        })
        .await;
    assert_eq!(dead.len(), 8, "each garbage record dead-lettered once");
    for r in &dead {
        assert_eq!(r["headers"]["dlq.topic"], "product.commands");
        assert_eq!(r["headers"]["dlq.consumer_group"], "product");
        assert!(
            !r["headers"]["dlq.error"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{r}"
        );
    }
}
