//! The sales-channel benchmark: starts `porch up` (the release binary) with its tenants connected
//! to a fake Meta Graph API running in this process (`porch-fake-meta`, 50 ms per call by
//! default, each batch finished on its 1st to 3rd status poll), drives it over HTTP and prints
//! figures. Not a test: it asserts nothing, it measures.
//!
//!   cargo build --release && cargo run --release --example bench_channels -- [--listings N]
//!       [--latency-listings M] [--rate R] [--batch-size B] [--linger-ms L] [--max-in-flight K]
//!       [--poll-interval-ms P] [--max-poll-interval-ms Q] [--concurrency C] [--meta-latency-ms D]
//!
//! The connector's settings go into `[connectors.meta]`; their defaults are the connector's own.
//!
//! 1. throughput: with the Meta connector paused, N listings are loaded (products of 5 variants,
//!    each offered in GB and IN on the storefront and Meta) until every one is SUBMITTED
//!    (a ListingRequested on channel.events) and the connector's lag has stopped growing; then
//!    the connector is resumed and timed until every listing is LIVE → listings confirmed/s
//! 2. calls: the fake's record of the Graph calls → items_batch calls, status polls and products
//!    lookups per listing
//! 3. latency: M more listings, their stock set first, their offers created at R/s with the
//!    connector running → OfferActivated → ListingStateChanged(LIVE) p50/p99/max, from the
//!    events' own `occurred_at`, with the hops in between
//! 4. memory: resident set of `porch up` (and its peak)

use porch_fake_meta::{CallKind, FakeConfig, FakeMeta};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// The other benchmarks' argument parser is not used here.
#[allow(dead_code)]
mod common;

use common::*;

/// Variants per product; each is offered in two regions, so a product makes 2 × VARIANTS
/// listings.
const VARIANTS: usize = 5;
/// The regions offered in, with their location, currency and price.
const REGIONS: [(&str, &str, &str, u64); 2] =
    [("GB", "lon", "GBP", 2500), ("IN", "mum", "INR", 199_900)];
/// The topics the pipeline writes, watched until none grows.
const PIPELINE: [&str; 10] = [
    "product.events",
    "compliance.events",
    "variant.events",
    "offer.events",
    "inventory.events",
    "activation.events",
    "search.events",
    "channel.settings",
    "channel.events",
    "channel.outcomes",
];

struct Args {
    listings: usize,
    latency_listings: usize,
    rate: usize,
    batch_size: usize,
    linger_ms: u64,
    max_in_flight: usize,
    poll_interval_ms: u64,
    max_poll_interval_ms: u64,
    concurrency: usize,
    meta_latency_ms: u64,
}

fn parse_args() -> Args {
    // The connector's own defaults (connectors/src/meta/config.rs) for its settings.
    let meta = porch_connectors::meta::MetaConfig::default();
    let mut a = Args {
        listings: 20_000,
        latency_listings: 3_000,
        rate: 200,
        batch_size: meta.batch_size,
        linger_ms: meta.linger_ms,
        max_in_flight: meta.max_in_flight,
        poll_interval_ms: meta.poll_interval_ms,
        max_poll_interval_ms: meta.max_poll_interval_ms,
        concurrency: 64,
        meta_latency_ms: 50,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = || -> u64 {
            argv.get(i + 1)
                .and_then(|s| s.parse().ok())
                .expect("a number after the flag")
        };
        match argv[i].as_str() {
            "--listings" => a.listings = v() as usize,
            "--latency-listings" => a.latency_listings = v() as usize,
            "--rate" => a.rate = v() as usize,
            "--batch-size" => a.batch_size = v() as usize,
            "--linger-ms" => a.linger_ms = v(),
            "--max-in-flight" => a.max_in_flight = v() as usize,
            "--poll-interval-ms" => a.poll_interval_ms = v(),
            "--max-poll-interval-ms" => a.max_poll_interval_ms = v(),
            "--concurrency" => a.concurrency = v() as usize,
            "--meta-latency-ms" => a.meta_latency_ms = v(),
            "--help" | "-h" => {
                println!(
                    "usage: bench_channels [--listings N] [--latency-listings M] [--rate R] \
                     [--batch-size B] [--linger-ms L] [--max-in-flight K] [--poll-interval-ms P] \
                     [--max-poll-interval-ms Q] [--concurrency C] [--meta-latency-ms D]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    assert!(
        a.concurrency > 0 && a.rate > 0 && a.listings > 0,
        "listings, concurrency and rate must be positive"
    );
    a
}

/// The benchmark's tenants, each connected to Meta in GB and IN (a catalog per tenant and
/// region), and the connector's settings.
fn channel_config(graph_url: &str, a: &Args) -> String {
    let mut s = config_with("\"storefront\", \"meta\"", |t| {
        REGIONS
            .iter()
            .map(|(region, ..)| {
                format!(
                    "[[tenant.connection]]\nchannel = \"meta\"\nregion = \"{region}\"\n\
                     account = \"{}\"\naccess_token = \"token-t{t:02}\"\n\
                     link_template = \"https://shop-t{t:02}.example/products/{{product}}?sku={{sku}}\"\n\n",
                    catalog(t, region)
                )
            })
            .collect()
    });
    s.push_str(&format!(
        "\n[connectors.meta]\ngraph_url = \"{graph_url}\"\nbatch_size = {}\nlinger_ms = {}\nmax_in_flight = {}\n\
         poll_interval_ms = {}\nmax_poll_interval_ms = {}\n",
        a.batch_size, a.linger_ms, a.max_in_flight, a.poll_interval_ms, a.max_poll_interval_ms
    ));
    s
}

fn catalog(t: usize, region: &str) -> String {
    format!("catalog-t{t:02}-{}", region.to_ascii_lowercase())
}

/// N listings: listing j is variant (j / 2) % VARIANTS of product j / (2 × VARIANTS), offered in
/// region j % 2; product p belongs to tenant p % TENANTS.
struct Catalogue {
    prefix: &'static str,
    listings: usize,
}

impl Catalogue {
    fn products(&self) -> usize {
        self.listings.div_ceil(2 * VARIANTS)
    }
    fn product(&self, p: usize) -> String {
        format!("{}{p}", self.prefix)
    }
    fn sku(&self, p: usize, v: usize) -> String {
        format!("{}{p}-{v}", self.prefix)
    }
    /// (tenant, product, sku, region index) of listing j.
    fn listing(&self, j: usize) -> (usize, usize, String, usize) {
        let p = j / (2 * VARIANTS);
        (p % TENANTS, p, self.sku(p, (j / 2) % VARIANTS), j % 2)
    }
    fn product_request(&self, p: usize) -> Request {
        let id = self.product(p);
        (
            Method::POST,
            key(p % TENANTS),
            "/v1/products".into(),
            json!({ "id": id, "title": format!("Linen shirt {id}"), "description": "Soft and breathable linen",
                "category": "apparel", "brand": "Bench", "attributes": { "tax_code": "6205" }, "images": ["front.jpg"] }),
        )
    }
    fn variants_request(&self, p: usize) -> Request {
        let variants: Vec<Value> = (0..VARIANTS)
            .map(|v| json!({ "sku": self.sku(p, v), "options": { "size": format!("S{v}") } }))
            .collect();
        (
            Method::POST,
            key(p % TENANTS),
            format!("/v1/products/{}/variants", self.product(p)),
            json!({ "variants": variants }),
        )
    }
    fn stock_request(&self, j: usize) -> Request {
        let (t, _, sku, r) = self.listing(j);
        (
            Method::PUT,
            key(t),
            format!("/v1/inventory/{sku}/{}", REGIONS[r].1),
            json!({ "on_hand": 5 }),
        )
    }
    fn offer_request(&self, j: usize) -> Request {
        let (t, _, sku, r) = self.listing(j);
        let (region, _, currency, price) = REGIONS[r];
        (
            Method::POST,
            key(t),
            "/v1/offers".into(),
            json!({ "sku": sku, "region": region, "price": { "amount_minor": price, "currency": currency },
                "channels": ["storefront", "meta"] }),
        )
    }
}

type Request = (Method, String, String, Value);

/// offer id → a time, in µs since the epoch.
type Stamps = HashMap<String, i64>;

impl Client {
    async fn get(&self, key: &str, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn ends(&self, topic: &str) -> Vec<u64> {
        let v = self.get(OPERATOR, &format!("/v1/topics/{topic}")).await;
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["end_offset"].as_u64().unwrap())
            .collect()
    }

    /// Records of a topic from the given offsets on.
    async fn read_from(&self, topic: &str, from: &[u64]) -> Vec<Value> {
        let mut out = Vec::new();
        for (p, start) in from.iter().enumerate() {
            let mut at = *start;
            loop {
                let page = self
                    .get(
                        OPERATOR,
                        &format!("/v1/topics/{topic}/partitions/{p}/records?from={at}&limit=1000"),
                    )
                    .await;
                let recs = page["records"].as_array().cloned().unwrap_or_default();
                if recs.is_empty() {
                    break;
                }
                at = recs.last().unwrap()["offset"].as_u64().unwrap() + 1;
                out.extend(recs);
            }
        }
        out
    }

    /// Waits until no topic of the pipeline grows for a while.
    async fn drained(&self) {
        let mut last = Vec::new();
        let mut stable_since = Instant::now();
        loop {
            let mut now = Vec::new();
            for t in PIPELINE {
                now.push(self.ends(t).await);
            }
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() > Duration::from_secs(2) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn connector(&self) -> Value {
        self.get(OPERATOR, "/v1/connectors/meta").await
    }

    /// Sends `count` requests, `concurrency` at a time; the rate they were accepted at.
    async fn each(
        self: &Arc<Self>,
        count: usize,
        concurrency: usize,
        request: impl Fn(usize) -> Request + Send + Sync + 'static,
    ) -> f64 {
        let request = Arc::new(request);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, next, request) = (self.clone(), next.clone(), request.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let (method, key, path, body) = request(i);
                    client.send(method, &key, &path, &body).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        count as f64 / started.elapsed().as_secs_f64()
    }
}

/// A number the topic API gives as a JSON number, or wrapped in an Avro union's object.
fn number(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_object()?.values().next().and_then(number))
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.as_object()?.values().next().and_then(Value::as_str))
}

fn occurred_at(r: &Value) -> Option<i64> {
    number(&r["value"]["envelope"]["occurred_at"])
}

fn is(r: &Value, name: &str) -> bool {
    r["record_type"]
        .as_str()
        .is_some_and(|t| t.rsplit('.').next() == Some(name))
}

fn on_meta(r: &Value) -> bool {
    text(&r["value"]["channel"]) == Some("meta")
}

/// offer id → the first `occurred_at` (µs) of the records `pick` keeps.
fn first_by_offer(
    records: &[Value],
    pick: impl Fn(&Value) -> bool,
    offer: impl Fn(&Value) -> Option<&str>,
) -> Stamps {
    let mut out: Stamps = HashMap::new();
    for r in records.iter().filter(|r| pick(r)) {
        if let (Some(o), Some(at)) = (offer(r), occurred_at(r)) {
            let e = out.entry(o.to_string()).or_insert(at);
            *e = (*e).min(at);
        }
    }
    out
}

fn live_states(channel_events: &[Value]) -> Stamps {
    first_by_offer(
        channel_events,
        |r| is(r, "ListingStateChanged") && on_meta(r) && text(&r["value"]["to"]) == Some("LIVE"),
        |r| text(&r["value"]["offer_id"]),
    )
}

fn requests(channel_events: &[Value]) -> Stamps {
    first_by_offer(
        channel_events,
        |r| is(r, "ListingRequested") && on_meta(r),
        |r| text(&r["value"]["offer_id"]),
    )
}

fn live_outcomes(outcomes: &[Value]) -> Stamps {
    first_by_offer(
        outcomes,
        |r| on_meta(r) && text(&r["value"]["result"]) == Some("LIVE"),
        |r| text(&r["value"]["offer_id"]),
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// CPU seconds (user + system) a process has used. /proc counts in clock ticks: 100 a second
/// on Linux.
fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the command: state is field 3, utime 14, stime 15.
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// The machine's (busy, total) clock ticks so far.
fn machine_ticks() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// What the machine and `porch up` used from a starting point.
struct Usage {
    at: Instant,
    porch_cpu: f64,
    machine: (f64, f64),
}

impl Usage {
    fn start(pid: u32) -> Self {
        Usage {
            at: Instant::now(),
            porch_cpu: cpu_secs(pid),
            machine: machine_ticks(),
        }
    }
    fn report(&self, pid: u32) -> String {
        let secs = self.at.elapsed().as_secs_f64();
        let (busy, total) = machine_ticks();
        format!(
            "porch up used {:.2} cores, the machine was {:.0} % busy over {secs:.1} s",
            (cpu_secs(pid) - self.porch_cpu) / secs,
            100.0 * (busy - self.machine.0) / (total - self.machine.1).max(1.0)
        )
    }
}

/// What else runs on the machine: a test suite beside the benchmark makes every figure noisy.
fn neighbours() -> String {
    let suites = Command::new("pgrep")
        .args(["-f", "cargo test"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "load average {}; {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if suites > 0 {
            "a `cargo test` is running beside the benchmark"
        } else {
            "no `cargo test` running"
        }
    )
}

/// Graph calls by kind.
fn calls_by_kind(fake: &FakeMeta, from: usize) -> (usize, usize, usize, usize) {
    let calls = fake.calls();
    let calls = &calls[from.min(calls.len())..];
    let n = |k: CallKind| calls.iter().filter(|c| c.kind == k).count();
    (
        n(CallKind::ItemsBatch),
        n(CallKind::Status),
        n(CallKind::Products),
        calls.len(),
    )
}

fn print_calls(fake: &FakeMeta, from: usize, listings: usize, what: &str) {
    let (batches, polls, products, all) = calls_by_kind(fake, from);
    let l = listings.max(1) as f64;
    println!(
        "calls per listing ({what}, {listings} listings): items_batch {:.4} ({batches} calls, {:.0} listings each), \
         status polls {:.4} ({polls}), products lookups {:.4} ({products}), total {:.4} ({all})",
        batches as f64 / l,
        l / batches.max(1) as f64,
        polls as f64 / l,
        products as f64 / l,
        all as f64 / l,
    );
}

/// Sorted milliseconds between two timestamps (µs) of the same offers.
fn gaps(from: &Stamps, to: &Stamps) -> Vec<f64> {
    let mut v: Vec<f64> = from
        .iter()
        .filter_map(|(o, a)| to.get(o).map(|b| (b - a) as f64 / 1000.0))
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn quantiles(v: &[f64]) -> String {
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(v, 0.50),
        percentile(v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// Waits until the connector has done `target` requests (live, rejected or dead-lettered), or
/// nothing moved for two minutes; its status.
async fn settled(client: &Client, target: u64) -> Value {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let c = client.connector().await;
        let o = &c["outcomes"];
        let done = ["live", "rejected", "dead_lettered", "unpublished"]
            .iter()
            .map(|k| o[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        if done >= target {
            return c;
        }
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(120) {
            println!("  (gave up waiting: {done} of {target} requests done in two minutes: {c})");
            return c;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates locations, products, variants and stock for a catalogue (stock before offers: each
/// offer becomes ACTIVE once, in stock) and waits for the pipeline.
async fn prepare(client: &Arc<Client>, cat: &Arc<Catalogue>, concurrency: usize) {
    let c = cat.clone();
    let products = client
        .each(cat.products(), concurrency, move |p| c.product_request(p))
        .await;
    client.drained().await;
    let c = cat.clone();
    let variants = client
        .each(cat.products(), concurrency, move |p| c.variants_request(p))
        .await;
    client.drained().await;
    let c = cat.clone();
    let stock = client
        .each(cat.listings, concurrency, move |j| c.stock_request(j))
        .await;
    client.drained().await;
    println!(
        "  prepared {} products ({products:.0}/s accepted), their variants ({variants:.0} requests/s) and {} stock levels ({stock:.0}/s)",
        cat.products(),
        cat.listings
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let fake = FakeMeta::start(
        "127.0.0.1:0".parse().unwrap(),
        FakeConfig {
            latency_ms: args.meta_latency_ms,
            polls_to_finish: (1, 3),
            seed: 1,
            ..FakeConfig::default()
        },
    )
    .await
    .expect("start the fake Meta");
    let exe = std::env::current_exe().unwrap();
    let porch = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("porch"))
        .unwrap();
    assert!(
        porch.exists(),
        "build the binary first: cargo build --release ({} missing)",
        porch.display()
    );
    let dir = std::env::temp_dir().join(format!("porch-bench-channels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("porch.toml"),
        channel_config(&fake.graph_url(), &args),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&porch)
        .args(["up", "--config"])
        .arg(dir.join("porch.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env(
            "PORCH_LOG",
            std::env::var("PORCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let client = Arc::new(Client::new(format!("http://127.0.0.1:{port}")));
    while client
        .http
        .get(format!("{}/readyz", client.base))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "porch bench_channels: {} listings, then {} at {}/s, over {TENANTS} tenants × 2 Meta catalogs; \
         connector batch_size {}, linger_ms {}, max_in_flight {}, poll_interval_ms {} (growing by half up to {}); fake Meta {} ms a call, batches finished \
         on poll 1–3; machine cores {}; porch up pid {pid}",
        args.listings,
        args.latency_listings,
        args.rate,
        args.batch_size,
        args.linger_ms,
        args.max_in_flight,
        args.poll_interval_ms,
        args.max_poll_interval_ms,
        args.meta_latency_ms,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("{}", neighbours());

    // 1. Throughput: load with the connector paused, then resume and time it.
    client
        .send(
            Method::POST,
            OPERATOR,
            "/v1/connectors/meta/pause",
            &json!({}),
        )
        .await;
    let paused_at = Instant::now();
    while client.connector().await["state"] != "PAUSED" {
        assert!(
            paused_at.elapsed() < Duration::from_secs(60),
            "the connector did not pause"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in 0..TENANTS {
        for (region, location, ..) in REGIONS {
            client
                .send(
                    Method::POST,
                    &key(t),
                    "/v1/locations",
                    &json!({ "location_id": location, "region": region }),
                )
                .await;
        }
    }
    let n = args.listings;
    let cat = Arc::new(Catalogue {
        prefix: "c",
        listings: n,
    });
    let loading = Instant::now();
    prepare(&client, &cat, args.concurrency).await;
    let c = cat.clone();
    let offers = client
        .each(n, args.concurrency, move |j| c.offer_request(j))
        .await;
    client.drained().await;
    let channel_from = vec![0; client.ends("channel.events").await.len()];
    let events = client.read_from("channel.events", &channel_from).await;
    let requested = requests(&events);
    let submitted = events
        .iter()
        .filter(|r| {
            is(r, "ListingStateChanged")
                && on_meta(r)
                && text(&r["value"]["to"]) == Some("SUBMITTED")
        })
        .count();
    let request_records = events
        .iter()
        .filter(|r| is(r, "ListingRequested") && on_meta(r))
        .count();
    // The lag is written every 2 s: wait until two readings agree.
    let mut lag = client.connector().await["lag"].as_u64().unwrap_or(0);
    let lag_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let now = client.connector().await["lag"].as_u64().unwrap_or(0);
        if (now == lag && now > 0) || lag_since.elapsed() > Duration::from_secs(60) {
            break;
        }
        lag = now;
    }
    println!(
        "loaded {n} listings in {:.1} s (offers accepted at {offers:.0}/s): {} listings requested on Meta \
         ({request_records} ListingRequested records), {submitted} SUBMITTED; connector lag {lag} records \
         (channel.events holds {}); {} Graph calls while paused",
        loading.elapsed().as_secs_f64(),
        requested.len(),
        events.len(),
        fake.calls().len()
    );
    println!(
        "rss of porch up with {n} listings loaded: {:.0} MiB (peak {:.0} MiB)",
        status_mib(pid, "VmRSS:"),
        status_mib(pid, "VmHWM:")
    );
    println!("{}", neighbours());

    let usage = Usage::start(pid);
    let resumed_ms = now_ms();
    let resumed = Instant::now();
    client
        .send(
            Method::POST,
            OPERATOR,
            "/v1/connectors/meta/resume",
            &json!({}),
        )
        .await;
    let status = settled(&client, requested.len() as u64).await;
    let seen_done = resumed.elapsed().as_secs_f64();
    let during = usage.report(pid);
    client.drained().await;
    let outcomes_from = vec![0; client.ends("channel.outcomes").await.len()];
    let outcomes = client.read_from("channel.outcomes", &outcomes_from).await;
    let events = client.read_from("channel.events", &channel_from).await;
    let live_out = live_outcomes(&outcomes);
    let live = live_states(&events);
    let calls = fake.calls();
    let first_batch_ms = calls
        .iter()
        .filter(|c| c.kind == CallKind::ItemsBatch)
        .map(|c| c.at_ms as i64)
        .min()
        .unwrap_or(resumed_ms);
    let applied_last_ms = fake.log().iter().map(|r| r.at_ms as i64).max().unwrap_or(0);
    let last_outcome_ms = live_out.values().max().copied().unwrap_or(0) / 1000;
    let last_live_ms = live.values().max().copied().unwrap_or(0) / 1000;
    let rate = |count: usize, from: i64, to: i64| count as f64 * 1000.0 / (to - from).max(1) as f64;
    println!(
        "throughput: {} of {} listings confirmed LIVE by the connector in {:.2} s from its first items_batch call \
         = {:.0} listings/s ({:.0}/s from the resume request, {:.2} s; the connector reads its control row every second)",
        live_out.len(),
        requested.len(),
        (last_outcome_ms - first_batch_ms) as f64 / 1000.0,
        rate(live_out.len(), first_batch_ms, last_outcome_ms),
        rate(live_out.len(), resumed_ms, last_outcome_ms),
        (last_outcome_ms - resumed_ms) as f64 / 1000.0,
    );
    println!(
        "  LIVE in the catalogue (ListingStateChanged): {} listings, the last {:.2} s after the first items_batch call \
         = {:.0} listings/s; the fake applied its last item {:.2} s after it",
        live.len(),
        (last_live_ms - first_batch_ms) as f64 / 1000.0,
        rate(live.len(), first_batch_ms, last_live_ms),
        (applied_last_ms - first_batch_ms) as f64 / 1000.0,
    );
    println!(
        "  connector status: outcomes {}, retries {}, seen done after {seen_done:.1} s; {during}",
        status["outcomes"], status["retries"]
    );

    // 2. Calls per listing.
    print_calls(
        &fake,
        0,
        requested.len(),
        "bulk, connector resumed on a backlog",
    );

    // 3. Latency at a steady rate, the connector running.
    let m = args.latency_listings;
    if m > 0 {
        let lat = Arc::new(Catalogue {
            prefix: "l",
            listings: m,
        });
        prepare(&client, &lat, args.concurrency).await;
        let activation_from = client.ends("activation.events").await;
        let channel_from = client.ends("channel.events").await;
        let outcomes_from = client.ends("channel.outcomes").await;
        let calls_from = fake.calls().len();
        let log_from = fake.log().len();
        let done_before: u64 = {
            let o = &client.connector().await["outcomes"];
            ["live", "rejected", "dead_lettered", "unpublished"]
                .iter()
                .map(|k| o[k].as_u64().unwrap_or(0))
                .sum()
        };
        println!("{}", neighbours());
        let usage = Usage::start(pid);
        let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for j in 0..m {
            tokio::time::sleep_until((started + interval * j as u32).into()).await;
            let (client, lat) = (client.clone(), lat.clone());
            tasks.push(tokio::spawn(async move {
                let (method, key, path, body) = lat.offer_request(j);
                client.send(method, &key, &path, &body).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let achieved = m as f64 / started.elapsed().as_secs_f64();
        let during = usage.report(pid);
        settled(&client, done_before + m as u64).await;
        client.drained().await;
        let activated = first_by_offer(
            &client
                .read_from("activation.events", &activation_from)
                .await,
            |r| is(r, "OfferActivated"),
            |r| text(&r["value"]["listing"]["offer_id"]),
        );
        let events = client.read_from("channel.events", &channel_from).await;
        let requested = requests(&events);
        let live = live_states(&events);
        let reported = live_outcomes(&client.read_from("channel.outcomes", &outcomes_from).await);
        let total = gaps(&activated, &live);
        println!(
            "latency OfferActivated → ListingStateChanged(LIVE) at {achieved:.0} offers/s ({} of {m} listings LIVE, \
             {} activated): {}",
            live.len(),
            activated.len(),
            quantiles(&total)
        );
        // The hops: the channel processor's request, the connector's queue and linger until its
        // items_batch call, Meta's batch until the poll that saw it finished, the connector's
        // outcome, the channel processor's LIVE.
        let calls = fake.calls();
        let sent_at: HashMap<&str, i64> = calls[calls_from.min(calls.len())..]
            .iter()
            .filter(|c| c.kind == CallKind::ItemsBatch)
            .filter_map(|c| Some((c.handle.as_deref()?, c.at_ms as i64 * 1000)))
            .collect();
        let log = fake.log();
        let mut sent: Stamps = HashMap::new();
        let mut applied: Stamps = HashMap::new();
        for r in &log[log_from.min(log.len())..] {
            if let Some(at) = sent_at.get(r.handle.as_str()) {
                sent.entry(r.retailer_id.clone()).or_insert(*at);
            }
            applied
                .entry(r.retailer_id.clone())
                .or_insert(r.at_ms as i64 * 1000);
        }
        let hops = [
            ("OfferActivated → ListingRequested", &activated, &requested),
            ("ListingRequested → items_batch call", &requested, &sent),
            ("items_batch call → finished (applied)", &sent, &applied),
            ("finished → LIVE outcome", &applied, &reported),
            ("LIVE outcome → ListingStateChanged", &reported, &live),
        ];
        for (what, from, to) in hops {
            println!("  {what}: {}", quantiles(&gaps(from, to)));
        }
        println!("  while offers were sent: {during}");
        print_calls(&fake, calls_from, m, &format!("at {achieved:.0} offers/s"));
    }

    // 4. Memory.
    println!(
        "rss of porch up at the end ({} listings): {:.0} MiB (peak {:.0} MiB)",
        n + m,
        status_mib(pid, "VmRSS:"),
        status_mib(pid, "VmHWM:")
    );
    println!("{}", neighbours());
    let outcome_kinds: BTreeMap<String, Value> = client.connector().await["outcomes"]
        .as_object()
        .map(|o| o.clone().into_iter().collect())
        .unwrap_or_default();
    println!("connector outcomes in all: {outcome_kinds:?}");

    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
