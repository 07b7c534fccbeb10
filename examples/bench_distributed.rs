//! The porch benchmark on Kafka and Cassandra: starts the distributed roles as processes (the
//! release binary), drives them over HTTP, and prints their figures beside a raw baseline
//! measured in the same run on the same broker. Not a test: it asserts nothing, it measures.
//!
//!   cargo build --release && cargo run --release --example bench_distributed -- [--products N]
//!       [--concurrency C] [--rate R] [--latency-offers M]
//!
//! Kafka and Cassandra come from `scripts/engines up` (PORCH_KAFKA, PORCH_CQL). Each run gets a
//! fresh topic prefix and keyspace, its own `porch registry`, then `topics apply` and
//! `schema migrate`, then `porch ingest-api`, the seven `porch processor`s and
//! `porch connector search`.
//!
//! 1. throughput: N products created over HTTP by C concurrent clients → commands accepted/s
//! 2. pipeline: waits until the pipeline has processed them (end offsets stable, every group's
//!    committed offsets at the end) → pipeline records/s: the data records (read_committed, so
//!    no transaction markers and no aborted records) the pipeline wrote to every porch topic
//!    (commands, events, dead letters) over the time from the first command's log timestamp to
//!    the last record's
//! 3. latency: M offers at R commands/s, each making a listing visible → accepted →
//!    ListingVisible p50/p99, from the log timestamps of the command and of its ListingVisible
//! 4. memory: resident set (VmRSS) and peak (VmHWM) of every role process
//! 5. backlog: the processors stopped, N more products accepted, the processors started again
//!    → backlog records/s: the records they write while catching up (first to last log
//!    timestamp), the pipeline's own rate, without the API in front of it
//! 6. baseline: every record the pipeline wrote (keys, values, headers, partitions) produced to
//!    scratch topics with an idempotent acks=all producer, then consumed back read_committed
//!    → baseline records/s = records / (produce + consume time)
//! 7. where the time goes: CPU seconds per role, per engine (Kafka, Cassandra), for the rest of
//!    the machine and per phase; each processor's turns and records per turn; the latency of
//!    each hop of an offer (offer → activation → search) from the log timestamps
//! 8. what the targets would take here: the machine's CPU per record in the baseline, the
//!    pipeline and the backlog (and per offer in the latency phase), split into Kafka, Cassandra
//!    and the rest, times the target's rate: the cores that rate needs, beside the cores there are
//!
//! On exit it kills the roles, deletes the run's topics and drops its keyspace.

// The helpers of the benchmarks on `porch up` (starting it, reading its topics over HTTP,
// common::channels) are not used here.
#[allow(dead_code)]
mod common;

use common::cluster::*;
use common::*;
use porch_processors::modules::{self, ChannelConfig, ComplianceConfig};
use porch_schemas::{Codec, Event, RegistryClient};
use porch_topics::{Catalogue, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const MIB: f64 = 1024.0 * 1024.0;
/// Targets of the issue.
const TARGET_RATIO: f64 = 0.5;
const TARGET_P99_MS: f64 = 500.0;
const TARGET_RSS_MIB: f64 = 256.0;

// ------------------------------------------------------------------------------- arguments

// ------------------------------------------------------------------------------- /proc

/// CPU seconds a JVM's just-in-time compiler threads have used (HotSpot names them
/// "C1 CompilerThread0", "C2 CompilerThread0", ...). Zero for a process that is no JVM. HotSpot
/// keeps the first thread of each kind; on a machine with more cores it adds threads when there
/// is much to compile and drops them when idle, taking their time out of the sum: a phase in
/// which the sum fell is printed as n/a.
fn jit_secs(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("C1 Compiler") || c.starts_with("C2 Compiler"))
        })
        .map(|t| stat_cpu_secs(t.path().join("stat")))
        .filter(|s| !s.is_nan())
        .sum()
}

/// CPU seconds the machine spent between two samples: the engines' own work with their
/// just-in-time compilers (a start-up cost) left out, the compilers', and the rest (the roles,
/// the benchmark, everything else the machine ran). Read from the machine's ticks and the
/// engines' processes only, so that it holds across roles that were restarted in between.
struct Spent {
    kafka: f64,
    cassandra: f64,
    jit: f64,
    rest: f64,
}

impl Spent {
    fn between(watched: &[(String, u32)], a: &Sample, b: &Sample) -> Spent {
        let of = |name: &str| {
            watched
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| (b.procs[i] - a.procs[i], (b.jit[i] - a.jit[i]).max(0.0)))
                .unwrap_or((0.0, 0.0))
        };
        let (kafka, kafka_jit) = of("kafka");
        let (cassandra, cassandra_jit) = of("cassandra");
        let busy = (b.machine.0 - a.machine.0) / 100.0; // ticks of USER_HZ
        Spent {
            kafka: kafka - kafka_jit,
            cassandra: cassandra - cassandra_jit,
            jit: kafka_jit + cassandra_jit,
            rest: busy - kafka - cassandra,
        }
    }

    /// All but the compilers.
    fn total(&self) -> f64 {
        self.kafka + self.cassandra + self.rest
    }
}

/// The pid of a running engine, by a word of its command line (`-Dporch.engine=kafka`).
fn engine_pid(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        cmd.split(|b| *b == 0)
            .any(|arg| arg == needle.as_bytes())
            .then_some(pid)
    })
}

/// The machine's CPU time from /proc/stat, in ticks: (busy, steal, total).
fn machine_ticks() -> (f64, f64, f64) {
    let v = cpu_ticks();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    let idle = at(3) + at(4);
    let steal = at(7);
    let total: f64 = v.iter().take(8).sum();
    (total - idle - steal, steal, total)
}

/// CPU seconds of every watched process, the machine's ticks and each processor's
/// (batches, records) counters, at one moment.
struct Sample {
    at: Instant,
    procs: Vec<f64>,
    /// Of `procs`, what each process's just-in-time compiler used (see [`jit_secs`]).
    jit: Vec<f64>,
    machine: (f64, f64, f64),
    turns: Vec<(f64, f64)>,
    /// CQL requests of each role with a store, by kind and table.
    /// Per role: CQL requests so far and the seconds they took, by "kind table".
    cql: Vec<BTreeMap<String, (f64, f64)>>,
    /// The API's own count of `POST /v1/offers` requests and the seconds they took, from
    /// request to response inside the API.
    offers_served: (f64, f64),
}

async fn sample(
    watched: &[(String, u32)],
    client: &Client,
    processors: &[(String, u16)],
    stored: &[(String, u16)],
) -> Sample {
    // Each role's /metrics once: the API and the processors (`stored` names them all).
    let mut series: HashMap<u16, Vec<(String, f64)>> = HashMap::new();
    for (_, port) in stored.iter().chain(processors) {
        if !series.contains_key(port) {
            series.insert(*port, client.metrics(*port).await);
        }
    }
    let cql = stored
        .iter()
        .map(|(_, port)| cql_requests(&series[port]))
        .collect();
    let turns = processors
        .iter()
        .map(|(_, port)| {
            let of = |metric| value(&series[port], metric).unwrap_or(f64::NAN);
            (of("porch_batches_total"), of("porch_records_total"))
        })
        .collect();
    Sample {
        at: Instant::now(),
        procs: watched.iter().map(|(_, pid)| cpu_secs(*pid)).collect(),
        jit: watched.iter().map(|(_, pid)| jit_secs(*pid)).collect(),
        machine: machine_ticks(),
        turns,
        cql,
        offers_served: served(&series[&stored[0].1], "POST", "/v1/offers"),
    }
}

/// How many requests of a route the API answered and the seconds they took inside it.
fn served(series: &[(String, f64)], method: &str, route: &str) -> (f64, f64) {
    let of = |part: &str| {
        series
            .iter()
            .find(|(s, _)| {
                s.starts_with(&format!("porch_http_request_duration_seconds_{part}{{"))
                    && label(s, "method").as_deref() == Some(method)
                    && label(s, "route").as_deref() == Some(route)
            })
            .map_or(0.0, |(_, v)| *v)
    };
    (of("count"), of("sum"))
}

/// A label's value in a series' name (`metric{name="value",...}`).
fn label(series: &str, name: &str) -> Option<String> {
    let at = series.find(&format!("{name}=\""))? + name.len() + 2;
    Some(series[at..].split('"').next()?.to_string())
}

/// The CQL requests each role sent between two samples, per unit of work, by kind and table,
/// each with the mean time it took; a role that sent none is left out.
fn print_cql_requests(per: &str, roles: &[(String, u16)], a: &Sample, b: &Sample, units: usize) {
    println!(
        "CQL requests per {per}, by role, kind and table (mean time of one), and rows written by table:"
    );
    for (i, (name, _)) in roles.iter().enumerate() {
        let sent: Vec<(&String, f64, f64)> = b.cql[i]
            .iter()
            .map(|(k, (n, secs))| {
                let (n0, secs0) = a.cql[i].get(k).copied().unwrap_or_default();
                let mean_ms = if n > &n0 {
                    (secs - secs0) / (n - n0) * 1000.0
                } else {
                    0.0
                };
                (k, (n - n0) / units.max(1) as f64, mean_ms)
            })
            .filter(|(_, per_unit, _)| *per_unit >= 0.005)
            .collect();
        let (rows, sent): (Vec<_>, Vec<_>) = sent
            .into_iter()
            .partition(|(k, _, _)| k.starts_with("wrote "));
        if !sent.is_empty() {
            let total: f64 = sent.iter().map(|(_, v, _)| v).sum();
            let parts: Vec<String> = sent
                .iter()
                .map(|(k, v, ms)| format!("{k} {v:.2} ({ms:.1} ms)"))
                .collect();
            println!("  {name:<20} {total:>6.2}   {}", parts.join(", "));
        }
        if !rows.is_empty() {
            let total: f64 = rows.iter().map(|(_, v, _)| v).sum();
            let parts: Vec<String> = rows
                .iter()
                .map(|(k, v, _)| format!("{} {v:.2}", &k["wrote ".len()..]))
                .collect();
            println!(
                "  {:<20} {total:>6.2}   rows written: {}",
                "",
                parts.join(", ")
            );
        }
    }
}

// ------------------------------------------------------------------------------- HTTP

/// A role's CQL requests so far and the seconds they took, by kind and logical table
/// ("write product").
fn cql_requests(series: &[(String, f64)]) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (s, v) in series {
        // Rows written (or deleted) by table, under "wrote <table>", beside the requests.
        if s.starts_with("porch_cql_rows_written_total{") {
            if let Some(table) = label(s, "table") {
                out.entry(format!("wrote {table}")).or_default().0 = *v;
            }
            continue;
        }
        let seconds = s.starts_with("porch_cql_request_seconds_total{");
        if !seconds && !s.starts_with("porch_cql_requests_total{") {
            continue;
        }
        let (Some(kind), Some(table)) = (label(s, "kind"), label(s, "table")) else {
            continue;
        };
        let entry = out.entry(format!("{kind} {table}")).or_default();
        if seconds {
            entry.1 = *v;
        } else {
            entry.0 = *v;
        }
    }
    out
}

// ------------------------------------------------------------------------------- Kafka

/// End offset per (catalogue topic, partition).
type Ends = BTreeMap<(String, u32), i64>;

/// One record as read from a topic, everything needed to write it again.
struct Rec {
    topic: String,
    partition: u32,
    offset: i64,
    /// Log timestamp, milliseconds.
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Rec {
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Watches the run's topics and consumer groups.
struct Probe {
    cfg: KafkaConfig,
    partitions: u32,
    /// Every catalogue topic, dead-letter topics included (catalogue names).
    topics: Vec<String>,
    /// read_uncommitted: ends are high watermarks, which move with every write.
    uncommitted: BaseConsumer,
    /// read_committed: ends are last stable offsets.
    committed: BaseConsumer,
    /// Per processor: its group's inputs and a consumer that only looks up the group's offsets.
    groups: Vec<(String, Vec<String>, BaseConsumer)>,
}

impl Probe {
    fn new(cfg: &KafkaConfig) -> anyhow::Result<Probe> {
        let catalogue = Catalogue::builtin();
        let consumer = |group: &str, isolation: &str| -> anyhow::Result<BaseConsumer> {
            Ok(cfg
                .client_config()
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .set("isolation.level", isolation)
                .create()?)
        };
        let reader_group = format!("{}bench-probe", cfg.topic_prefix);
        let groups = modules::all(ComplianceConfig::default(), ChannelConfig::default())
            .iter()
            .map(|p| {
                let group = porch_processors::distributed::group_of(cfg, p.name());
                Ok((
                    p.name().to_string(),
                    p.inputs(),
                    consumer(&group, "read_committed")?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Probe {
            cfg: cfg.clone(),
            partitions: catalogue.partitions,
            topics: catalogue.all_names(),
            uncommitted: consumer(&reader_group, "read_uncommitted")?,
            committed: consumer(&reader_group, "read_committed")?,
            groups,
        })
    }

    /// End offsets of every topic in one request per broker (a ListOffsets for "latest").
    fn ends(&self, read_committed: bool) -> anyhow::Result<Ends> {
        let consumer = if read_committed {
            &self.committed
        } else {
            &self.uncommitted
        };
        let mut tpl = TopicPartitionList::new();
        for t in &self.topics {
            for p in 0..self.partitions {
                tpl.add_partition_offset(&self.cfg.physical(t), p as i32, Offset::End)?;
            }
        }
        let found = consumer.offsets_for_times(tpl, KAFKA_TIMEOUT)?;
        let mut out = Ends::new();
        for e in found.elements() {
            let Offset::Offset(o) = e.offset() else {
                anyhow::bail!("no end offset for {}[{}]", e.topic(), e.partition());
            };
            let topic = self.cfg.logical(e.topic()).unwrap_or(e.topic());
            out.insert((topic.to_string(), e.partition() as u32), o);
        }
        Ok(out)
    }

    /// Records the processors have still to handle: per group and input partition, the end
    /// minus the committed offset. An input of events is written in transactions, so its last
    /// offset is a commit marker no one consumes: one offset short of the end counts as done.
    fn lag(&self, ends: &Ends) -> anyhow::Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for (name, inputs, consumer) in &self.groups {
            let mut tpl = TopicPartitionList::new();
            for t in inputs {
                for p in 0..self.partitions {
                    tpl.add_partition(&self.cfg.physical(t), p as i32);
                }
            }
            let committed = consumer.committed_offsets(tpl, KAFKA_TIMEOUT)?;
            let mut lag = 0;
            for e in committed.elements() {
                let topic = self.cfg.logical(e.topic()).unwrap_or(e.topic());
                let end = ends
                    .get(&(topic.to_string(), e.partition() as u32))
                    .copied()
                    .unwrap_or(0);
                let at = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                let marker = i64::from(topic.ends_with(".events") && at > 0);
                lag += (end - at - marker).max(0);
            }
            out.push((name.clone(), lag));
        }
        Ok(out)
    }

    /// Waits until the pipeline has drained: no topic has grown for a second and every group
    /// has committed up to its inputs' ends (or nothing has grown for 15 s: then it says what
    /// is left). Returns the high watermarks at that moment.
    fn drained(&self, what: &str) -> anyhow::Result<Ends> {
        let mut last = self.ends(false)?;
        let mut stable_since = Instant::now();
        let mut reported = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.ends(false)?;
            if now != last {
                last = now;
                stable_since = Instant::now();
                continue;
            }
            let stable = stable_since.elapsed();
            if stable < Duration::from_secs(1) {
                continue;
            }
            let lag = self.lag(&now)?;
            let behind: Vec<String> = lag
                .iter()
                .filter(|(_, l)| *l > 0)
                .map(|(n, l)| format!("{n} {l}"))
                .collect();
            if behind.is_empty() {
                // A transaction that committed between the two lookups moved the committed
                // offsets past records these ends do not show yet: look again.
                let again = self.ends(false)?;
                if again == now {
                    return Ok(now);
                }
                last = again;
                stable_since = Instant::now();
                continue;
            }
            if stable > Duration::from_secs(15) {
                eprintln!(
                    "{what}: no topic moved for 15 s but groups are behind ({}); going on",
                    behind.join(", ")
                );
                return Ok(now);
            }
            if reported.elapsed() > Duration::from_secs(5) {
                reported = Instant::now();
                eprintln!("{what}: waiting for {}", behind.join(", "));
            }
        }
    }
}

/// Reads every committed record of `topics` up to `ends` (physical names from `cfg`, offsets
/// from the beginning), with a read_committed consumer of its own.
fn read_all(cfg: &KafkaConfig, ends: &Ends, group: &str) -> anyhow::Result<Vec<Rec>> {
    let consumer: BaseConsumer = cfg
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        // As porch's processors: an empty fetch at a partition's end returns after 50 ms.
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut left: HashMap<(String, u32), i64> = HashMap::new();
    for ((t, p), end) in ends {
        if *end > 0 {
            tpl.add_partition_offset(&cfg.physical(t), *p as i32, Offset::Beginning)?;
            left.insert((cfg.physical(t), *p), *end);
        }
    }
    if left.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut since_check = 0;
    while !left.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reading timed out, {} partitions left",
            left.len()
        );
        let idle = match consumer.poll(Duration::from_millis(100)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => true,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let tp = (m.topic().to_string(), m.partition() as u32);
                if let Some(end) = left.get(&tp) {
                    if m.offset() < *end {
                        out.push(Rec {
                            topic: cfg.logical(m.topic()).unwrap_or(m.topic()).to_string(),
                            partition: m.partition() as u32,
                            offset: m.offset(),
                            ts: m.timestamp().to_millis().unwrap_or(0),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                            headers: m
                                .headers()
                                .map(|hs| {
                                    hs.iter()
                                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        });
                    }
                    if m.offset() + 1 >= *end {
                        left.remove(&tp);
                    }
                }
                false
            }
        };
        since_check += 1;
        // Transaction markers and aborted records move a position without yielding a record.
        if idle || since_check >= 10_000 {
            since_check = 0;
            for e in consumer.position()?.elements() {
                let tp = (e.topic().to_string(), e.partition() as u32);
                if let (Offset::Offset(at), Some(end)) = (e.offset(), left.get(&tp)) {
                    if at >= *end {
                        left.remove(&tp);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Counts failed deliveries of the baseline producer.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Baseline {
    produce: Duration,
    consume: Duration,
    consumed: usize,
}

/// Produces `recs` to the scratch topics (same partition, key, value and headers) with an
/// idempotent acks=all producer, then reads them back with a read_committed consumer.
fn baseline(
    cfg: &KafkaConfig,
    recs: &[Rec],
    scratch: &HashMap<String, String>,
) -> anyhow::Result<Baseline> {
    let producer: BaseProducer<Deliveries> = cfg
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create_with_context(Deliveries::default())?;
    // Metadata of every scratch topic first, so that the clock does not run while they appear.
    for physical in scratch.values() {
        let deadline = Instant::now() + KAFKA_TIMEOUT;
        loop {
            let md = producer
                .client()
                .fetch_metadata(Some(physical), KAFKA_TIMEOUT)?;
            let ready = md.topics().iter().any(|t| {
                t.name() == physical
                    && t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ready {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{physical} did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let started = Instant::now();
    for (i, r) in recs.iter().enumerate() {
        let topic = &scratch[&r.topic];
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(r.partition as i32)
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(v) = &r.value {
            record = record.payload(v);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let produce = started.elapsed();
    let failed = producer.context().failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} baseline records were not delivered");

    let mut ends = Ends::new();
    for r in recs {
        *ends.entry((r.topic.clone(), r.partition)).or_default() += 1;
    }
    // Scratch topics are named from the run's prefix too: read them back under their own names.
    let scratch_cfg = KafkaConfig {
        topic_prefix: String::new(),
        ..cfg.clone()
    };
    let scratch_ends: Ends = ends
        .into_iter()
        .map(|((t, p), n)| ((scratch[&t].clone(), p), n))
        .collect();
    let started = Instant::now();
    let back = read_all(
        &scratch_cfg,
        &scratch_ends,
        &format!("{}bench-baseline", cfg.topic_prefix),
    )?;
    let consume = started.elapsed();
    Ok(Baseline {
        produce,
        consume,
        consumed: back.len(),
    })
}

async fn create_topics(cfg: &KafkaConfig, names: &[String], partitions: u32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = cfg.client_config().create()?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions as i32, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT));
    for r in admin.create_topics(&topics, &opts).await? {
        if let Err((t, code)) = r {
            anyhow::bail!("creating {t}: {code}");
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------- the run

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> {
    let h = tokio::task::spawn_blocking(f);
    async move { h.await.expect("blocking task") }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args(
        "bench_distributed",
        Args {
            products: 10_000,
            concurrency: 64,
            rate: 1000,
            latency_offers: 3000,
        },
    );
    let started = Instant::now();
    let mut cluster = Cluster::start("porch-bench-dist", &config()).await?;
    let (client, kafka) = (cluster.client.clone(), cluster.kafka.clone());
    let partitions = Catalogue::builtin().partitions;
    let probe = Arc::new(
        blocking({
            let kafka = kafka.clone();
            move || Probe::new(&kafka)
        })
        .await?,
    );
    println!(
        "porch distributed bench: {} products over {TENANTS} tenants, concurrency {}, machine cores {}; \
         Kafka {} / CQL {}, topic prefix {}, keyspace {}; roles ready in {:.1} s",
        args.products,
        args.concurrency,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        kafka.bootstrap,
        std::env::var("PORCH_CQL").unwrap_or_else(|_| "127.0.0.1:9042".into()),
        kafka.topic_prefix,
        cluster.keyspace,
        started.elapsed().as_secs_f64()
    );

    // Who is watched for CPU: the roles, the engines and the benchmark itself.
    let mut watched: Vec<(String, u32)> = cluster.pids();
    for (name, needle) in [
        // The engine's own mark on its command line: the login node is a Cassandra too.
        ("kafka", "-Dporch.engine=kafka"),
        ("cassandra", "-Dporch.engine=cassandra"),
    ] {
        if let Some(pid) = engine_pid(needle) {
            watched.push((name.into(), pid));
        }
    }
    watched.push(("bench (this process)".into(), std::process::id()));
    let processor_ports: Vec<(String, u16)> = cluster
        .roles
        .iter()
        .filter(|(n, _, _)| PROCESSORS.iter().any(|p| p.as_str() == n))
        .filter_map(|(n, _, port)| Some((n.clone(), (*port)?)))
        .collect();
    // The roles that use the store: the API and the processors.
    let stored: Vec<(String, u16)> = std::iter::once(("ingest-api".to_string(), cluster.api_port))
        .chain(processor_ports.iter().cloned())
        .collect();
    let sample = || sample(&watched, &client, &processor_ports, &stored);

    // 1. Throughput of accepted commands.
    let s0 = sample().await;
    let accept_started = Instant::now();
    let took = load(&client, args.products, args.concurrency, create_product).await;
    let accept_secs = accept_started.elapsed().as_secs_f64();
    let s_accepted = sample().await;
    println!(
        "accepted: {} commands in {accept_secs:.2} s = {:.0} commands/s (concurrency {}; \
         answer p50 {:.0} ms, p99 {:.0} ms; {} retries after 503 (waiting its Retry-After) or a refused connection)",
        args.products,
        args.products as f64 / accept_secs,
        args.concurrency,
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        client.retries.load(Ordering::Relaxed)
    );

    // 2. The pipeline catches up.
    let t_drain = Instant::now();
    let ends2 = blocking({
        let probe = probe.clone();
        move || probe.drained("pipeline")
    })
    .await?;
    let s1 = sample().await;
    cluster.check_alive();
    println!(
        "pipeline drained {:.1} s after the last accept (detected with ~1 s of quiet)",
        t_drain.elapsed().as_secs_f64()
    );
    let rss_loaded: Vec<f64> = cluster
        .pids()
        .iter()
        .map(|(_, pid)| status_mib(*pid, "VmRSS:"))
        .collect();

    // 3. Latency at a steady rate: each offer completes a product that has variant and stock.
    let m = args.latency_offers.min(args.products);
    load(&client, TENANTS, args.concurrency, |t| {
        vec![(
            reqwest::Method::POST,
            key(t),
            "/v1/locations".into(),
            json!({ "location_id": "lon", "region": "GB" }),
        )]
    })
    .await;
    load(&client, m, args.concurrency, stock_variant).await;
    let ends3 = blocking({
        let probe = probe.clone();
        move || probe.drained("latency setup")
    })
    .await?;
    let s2 = sample().await;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let offers_started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..m {
        tokio::time::sleep_until((offers_started + interval * i as u32).into()).await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({ "sku": format!("s{i}"), "region": "GB", "price": { "amount_minor": 1000 + i, "currency": "GBP" } });
            let sent = Instant::now();
            client
                .send(reqwest::Method::POST, &key(i % TENANTS), "/v1/offers", &body)
                .await;
            sent.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut offer_took = Vec::new();
    for t in tasks {
        offer_took.push(t.await?);
    }
    offer_took.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let achieved = m as f64 / offers_started.elapsed().as_secs_f64();
    blocking({
        let probe = probe.clone();
        move || probe.drained("latency")
    })
    .await?;
    let s3 = sample().await;
    cluster.check_alive();

    // 4. Memory, now that everything has run.
    let memory: Vec<(String, f64, f64, f64)> = cluster
        .pids()
        .into_iter()
        .zip(rss_loaded)
        .map(|((name, pid), loaded)| {
            (
                name,
                loaded,
                status_mib(pid, "VmRSS:"),
                status_mib(pid, "VmHWM:"),
            )
        })
        .collect();

    // 5. Backlog: the processors stopped, as many products again accepted, the processors
    //    started again; the pipeline's own rate is that of what they write while catching up.
    let stopped: Vec<(&str, u16)> = PROCESSORS
        .iter()
        .filter_map(|p| Some((p.as_str(), cluster.stop_role(p.as_str())?)))
        .collect();
    let backlog_from = args.products;
    load(&client, args.products, args.concurrency, move |i| {
        create_product(backlog_from + i)
    })
    .await;
    let ends4 = blocking({
        let probe = probe.clone();
        move || probe.ends(false)
    })
    .await?;
    // The processors are new processes from here: of this phase's CPU only the machine's and
    // the engines' are read (see `Spent`).
    let s4 = sample().await;
    let restarted = Instant::now();
    for (p, port) in &stopped {
        cluster.start_processor(p, *port);
    }
    blocking({
        let probe = probe.clone();
        move || probe.drained("backlog")
    })
    .await?;
    let backlog_drained_secs = restarted.elapsed().as_secs_f64();
    let s5 = sample().await;
    cluster.check_alive();

    // Every record the pipeline wrote, read back once: the figures and the baseline's input.
    let final_ends = blocking({
        let probe = probe.clone();
        move || probe.ends(true)
    })
    .await?;
    let offsets_total: i64 = final_ends.values().sum();
    let read_started = Instant::now();
    let recs = Arc::new(
        blocking({
            let (kafka, ends) = (kafka.clone(), final_ends.clone());
            let group = format!("{}bench-reader", kafka.topic_prefix);
            move || read_all(&kafka, &ends, &group)
        })
        .await?,
    );
    let read_secs = read_started.elapsed().as_secs_f64();

    // Figures of phase 2: the records below the ends seen when it drained.
    let in_phase2 = |r: &Rec| {
        r.offset
            < ends2
                .get(&(r.topic.clone(), r.partition))
                .copied()
                .unwrap_or(0)
    };
    // Per topic: records, bytes, first and last log timestamp.
    let mut per_topic: BTreeMap<String, (usize, usize, i64, i64)> = BTreeMap::new();
    let (mut first_ms, mut last_ms) = (i64::MAX, i64::MIN);
    for r in recs.iter().filter(|r| in_phase2(r)) {
        let e = per_topic
            .entry(r.topic.clone())
            .or_insert((0, 0, i64::MAX, i64::MIN));
        e.0 += 1;
        e.1 += r.size();
        e.2 = e.2.min(r.ts);
        e.3 = e.3.max(r.ts);
        if r.topic == "product.commands" {
            first_ms = first_ms.min(r.ts);
        }
        last_ms = last_ms.max(r.ts);
    }
    let phase2_records: usize = per_topic.values().map(|v| v.0).sum();
    let phase2_bytes: usize = per_topic.values().map(|v| v.1).sum();
    let pipeline_secs = (last_ms - first_ms) as f64 / 1000.0;
    let pipeline_rate = phase2_records as f64 / pipeline_secs;
    // Figures of phase 5: what the processors wrote past ends4, first to last log timestamp.
    let (mut backlog_records, mut backlog_first, mut backlog_last) = (0usize, i64::MAX, i64::MIN);
    for r in recs.iter().filter(|r| !r.topic.ends_with(".commands")) {
        if r.offset
            >= ends4
                .get(&(r.topic.clone(), r.partition))
                .copied()
                .unwrap_or(0)
        {
            backlog_records += 1;
            backlog_first = backlog_first.min(r.ts);
            backlog_last = backlog_last.max(r.ts);
        }
    }
    let backlog_rate =
        backlog_records as f64 * 1000.0 / (backlog_last - backlog_first).max(1) as f64;

    // Latency of phase 3: commands at or after ends3 on offer.commands, ListingVisible after
    // ends3 on search.events, matched by correlation id.
    let after3 = |r: &Rec| {
        r.offset
            >= ends3
                .get(&(r.topic.clone(), r.partition))
                .copied()
                .unwrap_or(0)
    };
    // Per hop: the first record of each correlation id on each topic of the offer's path.
    let first_by_corr = |topic: &str| -> HashMap<Vec<u8>, i64> {
        let mut out: HashMap<Vec<u8>, i64> = HashMap::new();
        for r in recs.iter().filter(|r| r.topic == topic && after3(r)) {
            if let Some(corr) = r.header("correlation_id") {
                let e = out.entry(corr.to_vec()).or_insert(r.ts);
                *e = (*e).min(r.ts);
            }
        }
        out
    };
    let accepted_at = first_by_corr("offer.commands");
    // The rate the offers were accepted at (their commands' log timestamps, first to last):
    // the rate the pipeline saw, whatever the requests' answer times.
    let accepted_rate = match (accepted_at.values().min(), accepted_at.values().max()) {
        (Some(first), Some(last)) if last > first => {
            (accepted_at.len() - 1) as f64 * 1000.0 / (last - first) as f64
        }
        _ => f64::NAN,
    };
    let offer_events = first_by_corr("offer.events");
    let activation_events = first_by_corr("activation.events");
    let registry_url = format!("http://127.0.0.1:{}", cluster.registry_port);
    let visible: Vec<(Vec<u8>, i64)> = blocking({
        let recs = recs.clone();
        let ends3 = ends3.clone();
        move || -> anyhow::Result<Vec<(Vec<u8>, i64)>> {
            let codec = Codec::with_registry(Arc::new(RegistryClient::new(&registry_url)?));
            Ok(recs
                .iter()
                .filter(|r| r.topic == "search.events")
                .filter(|r| {
                    r.offset
                        >= ends3
                            .get(&(r.topic.clone(), r.partition))
                            .copied()
                            .unwrap_or(0)
                })
                .filter(|r| {
                    r.value.as_ref().is_some_and(|v| {
                        matches!(
                            codec.decode_event(v).map(|e| e.event),
                            Ok(Event::ListingVisible(_))
                        )
                    })
                })
                .filter_map(|r| Some((r.header("correlation_id")?.to_vec(), r.ts)))
                .collect())
        }
    })
    .await?;
    let mut first_visible: HashMap<Vec<u8>, i64> = HashMap::new();
    for (corr, ts) in visible {
        let e = first_visible.entry(corr).or_insert(ts);
        *e = (*e).min(ts);
    }
    let mut lat_ms: Vec<f64> = first_visible
        .iter()
        .filter_map(|(corr, ts)| accepted_at.get(corr).map(|a| (ts - a) as f64))
        .collect();
    lat_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let hop = |from: &HashMap<Vec<u8>, i64>, to: &HashMap<Vec<u8>, i64>| -> Vec<f64> {
        let mut d: Vec<f64> = first_visible
            .keys()
            .filter_map(|c| Some((to.get(c)? - from.get(c)?) as f64))
            .collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        d
    };
    let hops = [
        (
            "offer.commands → offer.events (offer)",
            hop(&accepted_at, &offer_events),
        ),
        (
            "offer.events → activation.events (activation)",
            hop(&offer_events, &activation_events),
        ),
        (
            "activation.events → ListingVisible (search)",
            hop(&activation_events, &first_visible),
        ),
    ];

    // 5. The baseline: the same records, produced and consumed with no processing.
    let mut topics_written: Vec<String> = recs.iter().map(|r| r.topic.clone()).collect();
    topics_written.sort();
    topics_written.dedup();
    let scratch: HashMap<String, String> = topics_written
        .iter()
        .map(|t| (t.clone(), kafka.physical(&format!("bench-raw.{t}"))))
        .collect();
    let scratch_topics: Vec<String> = scratch.values().cloned().collect();
    create_topics(&kafka, &scratch_topics, partitions).await?;
    let s6 = sample().await;
    let base = blocking({
        let (kafka, recs, scratch) = (kafka.clone(), recs.clone(), scratch.clone());
        move || baseline(&kafka, &recs, &scratch)
    })
    .await?;
    let s7 = sample().await;
    let total_records = recs.len();
    let total_bytes: usize = recs.iter().map(Rec::size).sum();
    anyhow::ensure!(
        base.consumed == total_records,
        "baseline read back {} of {total_records} records",
        base.consumed
    );
    let produce_s = base.produce.as_secs_f64();
    let consume_s = base.consume.as_secs_f64();
    let baseline_rate = total_records as f64 / (produce_s + consume_s);

    // ---------------------------------------------------------------------- the report
    println!();
    println!(
        "records the pipeline wrote while loading {} products ({} per product):",
        args.products,
        phase2_records as f64 / args.products as f64
    );
    for (t, (n, b, first, last)) in &per_topic {
        println!(
            "  {t:<22} {n:>9} records {:>9.2} MiB  avg {:>5.0} B  written {:>6.2} s → {:>6.2} s after the first command",
            *b as f64 / MIB,
            *b as f64 / *n as f64,
            (first - first_ms) as f64 / 1000.0,
            (last - first_ms) as f64 / 1000.0
        );
    }
    println!(
        "  {:<22} {phase2_records:>9} records {:>9.2} MiB, first command → last record {pipeline_secs:.2} s",
        "total",
        phase2_bytes as f64 / MIB
    );
    println!(
        "whole run: {total_records} data records ({:.1} MiB) in {offsets_total} offsets ({} transaction markers or aborted); read back read_committed in {read_secs:.2} s",
        total_bytes as f64 / MIB,
        offsets_total - total_records as i64
    );
    println!(
        "baseline on the same broker, {total_records} records into {} scratch topics × {partitions} partitions: \
         produce (idempotent, acks=all) {produce_s:.2} s = {:.0} records/s; consume (read_committed) {consume_s:.2} s = {:.0} records/s",
        scratch.len(),
        total_records as f64 / produce_s,
        total_records as f64 / consume_s
    );
    println!();
    println!("{:<44} {:>14} {:>14} {:>8}", "", "porch", "target", "met");
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let ratio = pipeline_rate / baseline_rate;
    println!(
        "{:<44} {:>14.0} {:>14.0} {:>8}",
        "pipeline records/s (vs baseline records/s)", pipeline_rate, baseline_rate, ""
    );
    println!(
        "{:<44} {:>13.1}% {:>13.0}% {:>8}",
        "pipeline / baseline",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        yes(ratio >= TARGET_RATIO)
    );
    println!("    (bounded by the API: the pipeline writes what is accepted as it is accepted)");
    let backlog_ratio = backlog_rate / baseline_rate;
    println!(
        "{:<44} {:>14.0} {:>14.0} {:>8}",
        "backlog records/s (vs baseline records/s)", backlog_rate, baseline_rate, ""
    );
    println!(
        "{:<44} {:>13.1}% {:>13.0}% {:>8}",
        "backlog / baseline",
        backlog_ratio * 100.0,
        TARGET_RATIO * 100.0,
        yes(backlog_ratio >= TARGET_RATIO)
    );
    println!(
        "    (processors stopped, {} products accepted, processors started again: {backlog_records} \
         records written, first to last {:.2} s; drained {backlog_drained_secs:.1} s after the restart)",
        args.products,
        (backlog_last - backlog_first) as f64 / 1000.0
    );
    let p99 = percentile(&lat_ms, 0.99);
    let p99_met = match (p99 <= TARGET_P99_MS, accepted_rate + 0.5 >= 1000.0) {
        (true, true) => "yes",
        (true, false) => "<1000/s",
        (false, _) => "NO",
    };
    println!(
        "{:<44} {:>11.0} ms {:>11.0} ms {:>8}",
        format!("p99 accepted → ListingVisible at {accepted_rate:.0}/s"),
        p99,
        TARGET_P99_MS,
        p99_met
    );
    println!(
        "    ({} of {m} offers matched: p50 {:.0} ms, p99 {p99:.0} ms, max {:.0} ms; the target is at 1000 commands/s)",
        lat_ms.len(),
        percentile(&lat_ms, 0.50),
        lat_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "    offers sent at {}/s, accepted at {accepted_rate:.0}/s, all {m} answered at {achieved:.0}/s; \
         requests answered in p50 {:.0} ms, p99 {:.0} ms (the API answered {:.0} requests, \
         inside it a mean {:.0} ms each; {} retries after 503 (waiting its Retry-After) or a refused connection so far); per hop (log timestamps):",
        args.rate,
        percentile(&offer_took, 0.5),
        percentile(&offer_took, 0.99),
        s3.offers_served.0 - s2.offers_served.0,
        (s3.offers_served.1 - s2.offers_served.1) * 1000.0
            / (s3.offers_served.0 - s2.offers_served.0),
        client.retries.load(Ordering::Relaxed)
    );
    for (name, d) in &hops {
        println!(
            "      {name:<48} p50 {:>6.0} ms  p99 {:>6.0} ms",
            percentile(d, 0.5),
            percentile(d, 0.99)
        );
    }
    for (name, loaded, rss, hwm) in &memory {
        println!(
            "{:<44} {:>10.0} MiB {:>10.0} MiB {:>8}",
            format!("{name}: peak RSS (now {rss:.0}, loaded {loaded:.0})"),
            hwm,
            TARGET_RSS_MIB,
            yes(*hwm <= TARGET_RSS_MIB)
        );
    }

    // Where the time went: CPU per process per phase.
    println!();
    let phases = [
        ("accept", &s0, &s_accepted),
        ("drain", &s_accepted, &s1),
        ("latency setup", &s1, &s2),
        ("latency", &s2, &s3),
    ];
    print!("{:<22}", "CPU seconds (cores)");
    for (name, a, b) in &phases {
        print!(
            " {:>20}",
            format!("{name} {:.1} s", (b.at - a.at).as_secs_f64())
        );
    }
    println!();
    for (i, (name, _)) in watched.iter().enumerate() {
        print!("{name:<22}");
        for (_, a, b) in &phases {
            let cpu = b.procs[i] - a.procs[i];
            print!(
                " {:>20}",
                format!("{cpu:.1} ({:.2})", cpu / (b.at - a.at).as_secs_f64())
            );
        }
        println!();
        // A JVM engine's compiler works hardest in the first minutes after it starts.
        if phases.iter().any(|(_, a, b)| b.jit[i] - a.jit[i] > 0.0) {
            print!("{:<22}", "  of which JIT");
            for (_, a, b) in &phases {
                let jit = b.jit[i] - a.jit[i];
                let shown = if jit < 0.0 {
                    "n/a".to_string()
                } else {
                    format!("{jit:.1} ({:.2})", jit / (b.at - a.at).as_secs_f64())
                };
                print!(" {shown:>20}");
            }
            println!();
        }
    }
    print!("{:<22}", "other processes");
    for (_, a, b) in &phases {
        let busy = (b.machine.0 - a.machine.0) / 100.0;
        let ours: f64 = b.procs.iter().zip(&a.procs).map(|(b, a)| b - a).sum();
        let other = busy - ours;
        print!(
            " {:>20}",
            format!("{other:.1} ({:.2})", other / (b.at - a.at).as_secs_f64())
        );
    }
    println!();
    print!("{:<22}", "machine busy / steal");
    for (_, a, b) in &phases {
        let total = b.machine.2 - a.machine.2;
        print!(
            " {:>20}",
            format!(
                "{:.0}% / {:.0}%",
                100.0 * (b.machine.0 - a.machine.0) / total,
                100.0 * (b.machine.1 - a.machine.1) / total
            )
        );
    }
    println!();
    println!();

    // What the targets would take here: each phase's CPU per record, times the target's rate.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(f64::NAN);
    let target_rate = TARGET_RATIO * baseline_rate;
    println!(
        "CPU per 1,000 records, and the cores it would take at {:.0}% of the baseline ({target_rate:.0} records/s); \
         this machine has {cores:.0} (the engines' JIT compilers, a start-up cost, left out):",
        TARGET_RATIO * 100.0
    );
    println!(
        "  {:<36} {:>8} {:>8} {:>10} {:>11} {:>8} {:>14} {:>18}",
        "",
        "records",
        "kafka",
        "cassandra",
        "roles+rest",
        "total",
        "cores needed",
        "engines' alone"
    );
    for (name, a, b, records) in [
        ("baseline (produce + consume only)", &s6, &s7, total_records),
        ("pipeline (accept + drain)", &s0, &s1, phase2_records),
        ("backlog (processors alone)", &s4, &s5, backlog_records),
    ] {
        let spent = Spent::between(&watched, a, b);
        let per = |cpu: f64| cpu * 1000.0 / records as f64;
        println!(
            "  {name:<36} {records:>8} {:>8.3} {:>10.3} {:>11.3} {:>8.3} {:>14.1} {:>18.1}",
            per(spent.kafka),
            per(spent.cassandra),
            per(spent.rest),
            per(spent.total()),
            spent.total() / records as f64 * target_rate,
            (spent.kafka + spent.cassandra) / records as f64 * target_rate,
        );
    }
    let spent = Spent::between(&watched, &s2, &s3);
    let per_offer = |cpu: f64| cpu * 1000.0 / m as f64;
    println!(
        "CPU per offer made visible (latency): kafka {:.2} ms, cassandra {:.2} ms, roles+rest {:.2} ms \
         (JIT {:.2} ms more); at 1000 offers/s that is {:.1} cores, the engines' alone {:.1}; this machine has {cores:.0}",
        per_offer(spent.kafka),
        per_offer(spent.cassandra),
        per_offer(spent.rest),
        per_offer(spent.jit),
        spent.total() / m as f64 * 1000.0,
        (spent.kafka + spent.cassandra) / m as f64 * 1000.0,
    );
    println!();
    print!("{:<22}", "turns (records/turn)");
    for (name, _, _) in &phases {
        print!(" {name:>20}");
    }
    println!();
    for (i, (name, _)) in processor_ports.iter().enumerate() {
        print!("{name:<22}");
        for (_, a, b) in &phases {
            let turns = b.turns[i].0 - a.turns[i].0;
            let records = b.turns[i].1 - a.turns[i].1;
            print!(
                " {:>20}",
                format!("{turns:.0} ({:.1})", records / turns.max(1.0))
            );
        }
        println!();
    }
    println!();
    let per_product = format!(
        "product created (accept + drain, {} products)",
        args.products
    );
    print_cql_requests(&per_product, &stored, &s0, &s1, args.products);
    let per_offer = format!("offer made visible (latency, {m} offers)");
    print_cql_requests(&per_offer, &stored, &s2, &s3, m);
    drop(cluster);
    Ok(())
}
