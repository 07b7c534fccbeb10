//! The reservations benchmark: starts `porch up` (the release binary), holds stock over HTTP and
//! prints figures. Not a test: it asserts nothing, it measures.
//!
//!   cargo build --release && cargo run --release --example bench_reservations -- [--skus N]
//!       [--one-sku A] [--spread B] [--concurrency C] [--rate R] [--latency-requests M]
//!       [--background-rate G] [--phase-secs S] [--flash-stock F] [--offers 0|1] [--contrast 0|1]
//!       [--distributed 0|1]
//!
//! Every request holds one unit region-wide in GB for an hour (no hold expires during the run);
//! its outcome is its `ReservationOutcome` on `inventory.reservation.outcomes` (matched by
//! `request_id`, the command id of the 202), timed by the outcome's envelope `occurred_at`.
//!
//! 0. setup: N products of one SKU each with stock in GB (plenty), each offered in GB unless
//!    `--offers 0` (so that every hold moves a buy box, as in a shop), and three more SKUs: one for
//!    (1a), two flash-sale SKUs with F units
//! 1. throughput: (a) A requests on ONE SKU (with A units, flagged hot as porch would detect it
//!    at that rate), (b) B requests spread over the N SKUs, both sent by C concurrent clients
//!    → reservations decided per second, from the first request sent to the last outcome's
//!    `occurred_at`
//! 2. latency: M requests at R a second over the N SKUs, each sent by a task of its own (an open
//!    loop) → request sent (the client's clock, before the request) → outcome's `occurred_at`
//!    p50/p99, beside the 202's own time
//! 3. hot lane: requests at G a second over the N SKUs for S seconds, (i) alone, (ii) during a
//!    flash sale on one SKU flagged hot (C clients sending its requests as fast as they are
//!    answered), (iii) unless `--contrast 0`, the same flash sale on the other flash SKU, not
//!    flagged (the benchmark's porch has `[reservations] hot_requests_per_sec` out of reach, so
//!    it never becomes hot and its requests share `inventory.commands` with the others') → the
//!    other SKUs' request → outcome p50/p99, and flash p99 / idle p99
//! 4. memory: resident set of `porch up` (and its peak), or of the roles a reservation goes through
//!
//! With `--distributed 1` the same runs against porch's roles as separate processes on Kafka and
//! Cassandra (`scripts/engines up`; a fresh topic prefix and keyspace, deleted at the end).

use porch_schemas::now_micros;
use reqwest::Method;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The other benchmarks' argument parser and most of the channel helpers are not used here.
#[allow(dead_code)]
mod common;

use common::channels::{neighbours, occurred_at, text, Usage};
use common::cluster::Cluster;
use common::*;

const OUTCOMES: &str = "inventory.reservation.outcomes";
const HOT_LANE: &str = "inventory.hot.requests";
/// Longer than any run: no hold expires while the benchmark measures.
const TTL_SECONDS: u64 = 3600;
/// Stock of each SKU the requests are spread over: none runs out.
const PLENTY: u64 = 1_000_000;

struct Args {
    skus: usize,
    one_sku: usize,
    spread: usize,
    concurrency: usize,
    rate: usize,
    latency_requests: usize,
    background_rate: usize,
    phase_secs: u64,
    flash_stock: u64,
    offers: bool,
    contrast: bool,
    distributed: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        skus: 10_000,
        one_sku: 20_000,
        spread: 20_000,
        concurrency: 64,
        rate: 1000,
        latency_requests: 10_000,
        background_rate: 100,
        phase_secs: 20,
        flash_stock: 1000,
        offers: true,
        contrast: true,
        distributed: false,
    };
    parse_flags(
        "bench_reservations [--skus N] [--one-sku A] [--spread B] [--concurrency C] [--rate R] \
         [--latency-requests M] [--background-rate G] [--phase-secs S] [--flash-stock F] \
         [--offers 0|1] [--contrast 0|1] [--distributed 0|1]",
        |flag, v| {
            match flag {
                "--skus" => a.skus = v() as usize,
                "--one-sku" => a.one_sku = v() as usize,
                "--spread" => a.spread = v() as usize,
                "--concurrency" => a.concurrency = v() as usize,
                "--rate" => a.rate = v() as usize,
                "--latency-requests" => a.latency_requests = v() as usize,
                "--background-rate" => a.background_rate = v() as usize,
                "--phase-secs" => a.phase_secs = v(),
                "--flash-stock" => a.flash_stock = v(),
                "--offers" => a.offers = v() != 0,
                "--contrast" => a.contrast = v() != 0,
                "--distributed" => a.distributed = v() != 0,
                _ => return false,
            }
            true
        },
    );
    assert!(
        a.skus > 0 && a.concurrency > 0 && a.rate > 0 && a.background_rate > 0,
        "skus, concurrency and rates must be positive"
    );
    a
}

/// The SKUs: `s0` … `s<N-1>` spread over, then the one of (1a) and the two flash-sale SKUs; SKU
/// `s<i>` is the only variant of product `p<i>` of tenant `i % TENANTS`.
struct Skus {
    spread: usize,
}

impl Skus {
    fn one(&self) -> usize {
        self.spread
    }
    fn flash_hot(&self) -> usize {
        self.spread + 1
    }
    fn flash_cold(&self) -> usize {
        self.spread + 2
    }
    fn all(&self) -> usize {
        self.spread + 3
    }
}

/// The request that holds one unit of SKU `s<i>` anywhere in GB.
fn reserve(i: usize) -> Request {
    (
        Method::POST,
        key(i % TENANTS),
        "/v1/inventory/reservations".into(),
        json!({ "sku": format!("s{i}"), "region": "GB", "quantity": 1, "ttl_seconds": TTL_SECONDS }),
    )
}

/// The request that offers SKU `s<i>` in GB.
fn offer(i: usize) -> Vec<Request> {
    vec![(
        Method::POST,
        key(i % TENANTS),
        "/v1/offers".into(),
        json!({ "sku": format!("s{i}"), "region": "GB", "price": { "amount_minor": 1000 + i, "currency": "GBP" } }),
    )]
}

/// Flags SKU `s<i>` hot (its merchant expects a flash sale).
async fn flag_hot(client: &Client, i: usize) {
    let view = client
        .send(
            Method::PUT,
            &key(i % TENANTS),
            &format!("/v1/inventory/s{i}/hot"),
            &json!({ "hot": true }),
        )
        .await;
    assert_eq!(view["hot"], true, "s{i} not hot: {view}");
}

/// One request sent: its command id, when it was sent (µs since the epoch, before the request)
/// and how long its answer took (ms).
struct Sent {
    command: String,
    at_us: i64,
    answered_ms: f64,
}

/// Sends `count` requests at `rate` a second, each by a task of its own (an open loop: a slow
/// answer does not slow the sending); what was sent, and the rate it was sent at.
async fn at_rate(
    client: &Arc<Client>,
    count: usize,
    rate: usize,
    make: impl Fn(usize) -> Request,
) -> (Vec<Sent>, f64) {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for j in 0..count {
        tokio::time::sleep_until((started + interval.mul_f64(j as f64)).into()).await;
        let (client, (method, key, path, body)) = (client.clone(), make(j));
        tasks.push(tokio::spawn(async move {
            let (at_us, t) = (now_micros(), Instant::now());
            let reply = client.send(method, &key, &path, &body).await;
            Sent {
                command: text(&reply["command_id"]).unwrap_or_default().to_string(),
                at_us,
                answered_ms: t.elapsed().as_secs_f64() * 1000.0,
            }
        }));
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let mut sent = Vec::with_capacity(count);
    for t in tasks {
        sent.push(t.await.unwrap());
    }
    (sent, rate)
}

/// A flash sale: `concurrency` clients sending reservations of SKU `s<sku>` one after another,
/// each as soon as the one before is answered, until stopped.
struct Flash {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
    started_us: i64,
}

impl Flash {
    fn start(client: &Arc<Client>, sku: usize, concurrency: usize) -> Flash {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let (started, started_us) = (Instant::now(), now_micros());
        let tasks = (0..concurrency)
            .map(|_| {
                let (client, stop, sent) = (client.clone(), stop.clone(), sent.clone());
                tokio::spawn(async move {
                    let (method, key, path, body) = reserve(sku);
                    while !stop.load(Ordering::Relaxed) {
                        client.send(method.clone(), &key, &path, &body).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Flash {
            stop,
            sent,
            tasks,
            started,
            started_us,
        }
    }

    /// Stops it; the requests sent and their rate a second.
    async fn stop(self) -> (usize, f64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let n = self.sent.load(Ordering::Relaxed);
        (n, n as f64 / self.started.elapsed().as_secs_f64())
    }
}

/// A reservation request decided: its `ReservationOutcome`.
struct Outcome {
    /// The request's command id (none for a hold that expired).
    request: Option<String>,
    sku: String,
    result: String,
    at_us: i64,
    partition: u64,
}

/// Waits until `n` outcomes have been written past `from` (or none for a minute), then reads
/// them.
async fn outcomes(client: &Client, from: &[u64], n: usize) -> Vec<Outcome> {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let ends = client.ends(OUTCOMES).await;
        let have: u64 = ends.iter().zip(from).map(|(e, f)| e - f).sum();
        if have as usize >= n {
            break;
        }
        if have != last.0 {
            last = (have, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            println!("  (gave up waiting: {have} of {n} outcomes, none for a minute)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .read_from(OUTCOMES, from)
        .await
        .iter()
        .filter_map(|r| {
            let v = &r["value"];
            Some(Outcome {
                request: text(&v["request_id"]).map(str::to_string),
                sku: text(&v["sku"])?.to_string(),
                result: text(&v["result"])?.to_string(),
                at_us: occurred_at(r)?,
                partition: r["partition"].as_u64()?,
            })
        })
        .collect()
}

/// Outcomes by result: `RESERVED 19000, FAILED 1000`.
fn results(outs: &[&Outcome]) -> String {
    let mut by: Vec<(String, usize)> = outs
        .iter()
        .fold(HashMap::new(), |mut m: HashMap<String, usize>, o| {
            *m.entry(o.result.clone()).or_default() += 1;
            m
        })
        .into_iter()
        .collect();
    by.sort();
    by.iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sorted milliseconds from each request sent to its outcome, and the outcomes matched, by
/// command id.
fn latencies<'a>(sent: &[Sent], outs: &'a [Outcome]) -> Vec<(f64, &'a Outcome)> {
    let by_request: HashMap<&str, &Outcome> = outs
        .iter()
        .filter_map(|o| Some((o.request.as_deref()?, o)))
        .collect();
    let mut v: Vec<(f64, &Outcome)> = sent
        .iter()
        .filter_map(|s| {
            let o = by_request.get(s.command.as_str())?;
            Some(((o.at_us - s.at_us) as f64 / 1000.0, *o))
        })
        .collect();
    v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    v
}

fn quantiles(sorted: &[f64]) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(sorted, 0.50),
        percentile(sorted, 0.99),
        sorted.last().copied().unwrap_or(f64::NAN)
    )
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// (1) `n` requests from `concurrency` clients, request i on SKU `sku(i)`: decided per second
/// from the first request sent to the last outcome.
async fn throughput(
    client: &Arc<Client>,
    pids: &[u32],
    what: &str,
    n: usize,
    concurrency: usize,
    sku: impl Fn(usize) -> usize + Send + Sync + 'static,
) {
    let from = client.ends(OUTCOMES).await;
    let (usage, retries) = (Usage::of(pids), client.retries.load(Ordering::Relaxed));
    let first_us = now_micros();
    let started = Instant::now();
    let answered = load(client, n, concurrency, move |i| vec![reserve(sku(i))]).await;
    let accept_secs = started.elapsed().as_secs_f64();
    let outs = outcomes(client, &from, n).await;
    let during = usage.report();
    let decided: Vec<&Outcome> = outs.iter().filter(|o| o.request.is_some()).collect();
    let at = sorted(decided.iter().map(|o| o.at_us as f64).collect());
    let secs = |from: f64, to: f64| (to - from) / 1e6;
    let last = at.last().copied().unwrap_or(f64::NAN);
    let tenth = (at.len() / 10).max(1);
    println!(
        "(1{what}: {n} requests sent in {accept_secs:.2} s = {:.0}/s (202 p50 {:.1} ms, p99 {:.1} ms; {} answered 503 \
         and sent again); {} outcomes ({}), the last {:.2} s after the first request = {:.0} reservations decided/s",
        n as f64 / accept_secs,
        percentile(&answered, 0.5),
        percentile(&answered, 0.99),
        client.retries.load(Ordering::Relaxed) - retries,
        decided.len(),
        results(&decided),
        secs(first_us as f64, last),
        decided.len() as f64 / secs(first_us as f64, last),
    );
    if at.len() >= 20 {
        println!(
            "    first tenth decided at {:.0}/s, last tenth at {:.0}/s; {during}",
            tenth as f64 / secs(first_us as f64, at[tenth - 1]),
            tenth as f64 / secs(at[at.len() - 1 - tenth], last),
        );
    }
}

/// (3) requests at `args.background_rate` over the spread SKUs (from the `offset`th on) for
/// `args.phase_secs`, beside a flash sale on SKU `flash` when there is one; the other SKUs'
/// sorted latencies.
async fn lane_phase(
    client: &Arc<Client>,
    pids: &[u32],
    args: &Args,
    what: &str,
    flash: Option<usize>,
    offset: usize,
) -> Vec<f64> {
    let from = client.ends(OUTCOMES).await;
    let hot_from: u64 = client.ends(HOT_LANE).await.iter().sum();
    let usage = Usage::of(pids);
    let flood = flash.map(|sku| Flash::start(client, sku, args.concurrency));
    if flood.is_some() {
        // The sale at full speed before the other SKUs' requests are timed.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let count = args.background_rate * args.phase_secs as usize;
    let skus = args.skus;
    let (sent, rate) = at_rate(client, count, args.background_rate, |j| {
        reserve((offset + j) % skus)
    })
    .await;
    let (flash_sent, flash_rate, flash_from_us) = match flood {
        Some(f) => {
            let from_us = f.started_us;
            let (n, rate) = f.stop().await;
            (n, rate, from_us)
        }
        None => (0, 0.0, 0),
    };
    let during = usage.report();
    let outs = outcomes(client, &from, count + flash_sent).await;
    let hot_lane = client.ends(HOT_LANE).await.iter().sum::<u64>() - hot_from;
    let lat = latencies(&sent, &outs);
    let all = sorted(lat.iter().map(|(ms, _)| *ms).collect());
    let answered = sorted(sent.iter().map(|s| s.answered_ms).collect());
    println!(
        "  ({what}) {} other SKUs' requests at {rate:.0}/s ({} of {count} outcomes matched): request → outcome {}; \
         202 p50 {:.1} ms, p99 {:.1} ms",
        count,
        all.len(),
        quantiles(&all),
        percentile(&answered, 0.5),
        percentile(&answered, 0.99),
    );
    if let Some(sku) = flash {
        let sku = format!("s{sku}");
        let sale: Vec<&Outcome> = outs.iter().filter(|o| o.sku == sku).collect();
        let last_us = sale.iter().map(|o| o.at_us).max().unwrap_or(flash_from_us);
        let partition = sale.first().map(|o| o.partition);
        let beside = sorted(
            lat.iter()
                .filter(|(_, o)| Some(o.partition) == partition)
                .map(|(ms, _)| *ms)
                .collect(),
        );
        println!(
            "      flash sale on {sku}: {flash_sent} requests at {flash_rate:.0}/s from {} clients, {} decided ({}) \
             at {:.0}/s until its last outcome; {hot_lane} records on {HOT_LANE}",
            args.concurrency,
            sale.len(),
            results(&sale),
            sale.len() as f64 * 1e6 / (last_us - flash_from_us).max(1) as f64,
        );
        println!(
            "      other SKUs on the sale's partition {} ({} requests): {}",
            partition.map_or("?".into(), |p| p.to_string()),
            beside.len(),
            quantiles(&beside)
        );
    }
    println!("      {during}");
    all
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let skus = Skus { spread: args.skus };
    // Nothing becomes hot by its rate: the hot lane is what the merchant's flag makes it, so
    // that (iii) can show the same sale without it.
    let config = format!(
        "{}\n[reservations]\nhot_requests_per_sec = 4000000000\nhot_for_secs = 300\n",
        config()
    );
    let target = if args.distributed {
        Target::Cluster(
            Cluster::start("porch-bench-reservations", &config)
                .await
                .expect("start porch's roles on Kafka and Cassandra"),
        )
    } else {
        Target::Up(Porch::start("porch-bench-reservations", &config).await)
    };
    let (client, pids) = (target.client(), target.pids());
    let pids = &pids[..];
    println!(
        "porch bench_reservations: {} SKUs over {TENANTS} tenants{}, concurrency {}, machine cores {}; {}",
        args.skus,
        if args.offers { ", each offered in GB" } else { ", not offered" },
        args.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        target.describe(),
    );
    println!("{}", neighbours());

    // 0. Setup: locations, products, their SKUs' stock and offers.
    let setup = Instant::now();
    for t in 0..TENANTS {
        client
            .send(
                Method::POST,
                &key(t),
                "/v1/locations",
                &json!({ "location_id": "lon", "region": "GB" }),
            )
            .await;
    }
    let n = skus.all();
    load(&client, n, args.concurrency, create_product).await;
    client.drained(CATALOGUE_PIPELINE).await;
    let (one, flash_stock, one_sku) = (skus.one(), args.flash_stock, args.one_sku as u64);
    load(&client, n, args.concurrency, move |i| {
        let on_hand = match i {
            i if i == one => one_sku,
            i if i > one => flash_stock,
            _ => PLENTY,
        };
        stock_variant_with(i, on_hand)
    })
    .await;
    if args.offers {
        client.drained(CATALOGUE_PIPELINE).await;
        load(&client, n, args.concurrency, offer).await;
    }
    client.drained(CATALOGUE_PIPELINE).await;
    println!(
        "setup: {n} products, SKUs and stock levels{} in {:.1} s; rss {}",
        if args.offers { " and offers" } else { "" },
        setup.elapsed().as_secs_f64(),
        target.rss()
    );

    // 1. Throughput.
    if args.one_sku > 0 {
        flag_hot(&client, one).await;
        throughput(
            &client,
            pids,
            &format!("a) one SKU (s{one}, {} units, flagged hot)", args.one_sku),
            args.one_sku,
            args.concurrency,
            move |_| one,
        )
        .await;
        client.drained(CATALOGUE_PIPELINE).await;
    }
    if args.spread > 0 {
        let spread = args.skus;
        throughput(
            &client,
            pids,
            &format!("b) spread over {spread} SKUs"),
            args.spread,
            args.concurrency,
            move |i| i % spread,
        )
        .await;
        client.drained(CATALOGUE_PIPELINE).await;
    }

    // 2. Latency at a steady rate.
    let mut offset = args.spread;
    if args.latency_requests > 0 {
        let from = client.ends(OUTCOMES).await;
        let usage = Usage::of(pids);
        let spread = args.skus;
        let (sent, rate) = at_rate(&client, args.latency_requests, args.rate, |j| {
            reserve((offset + j) % spread)
        })
        .await;
        let during = usage.report();
        let outs = outcomes(&client, &from, args.latency_requests).await;
        let lat = sorted(latencies(&sent, &outs).iter().map(|(ms, _)| *ms).collect());
        let answered = sorted(sent.iter().map(|s| s.answered_ms).collect());
        println!(
            "(2) latency at {rate:.0} reservations/s over {spread} SKUs ({} of {} outcomes matched): \
             request sent → outcome's occurred_at {}; 202 p50 {:.1} ms, p99 {:.1} ms; {during}",
            lat.len(),
            args.latency_requests,
            quantiles(&lat),
            percentile(&answered, 0.5),
            percentile(&answered, 0.99),
        );
        offset += args.latency_requests;
        client.drained(CATALOGUE_PIPELINE).await;
    }

    // 3. The hot lane: other SKUs' latency, idle and during a flash sale.
    if args.phase_secs > 0 {
        println!(
            "(3) hot lane: other SKUs' reservations at {}/s for {} s, request sent → outcome's occurred_at",
            args.background_rate, args.phase_secs
        );
        let step = args.background_rate * args.phase_secs as usize;
        let idle = lane_phase(&client, pids, &args, "i: idle", None, offset).await;
        client.drained(CATALOGUE_PIPELINE).await;
        let hot = skus.flash_hot();
        flag_hot(&client, hot).await;
        let during = lane_phase(
            &client,
            pids,
            &args,
            "ii: flash sale, its SKU flagged hot",
            Some(hot),
            offset + step,
        )
        .await;
        client.drained(CATALOGUE_PIPELINE).await;
        let p99 = |v: &[f64]| percentile(v, 0.99);
        let mut ratios = format!(
            "flash p99 / idle p99: hot lane {:.1} / {:.1} ms = {:.2}×",
            p99(&during),
            p99(&idle),
            p99(&during) / p99(&idle)
        );
        if args.contrast {
            let cold = lane_phase(
                &client,
                pids,
                &args,
                "iii: the same flash sale, not flagged: no hot lane",
                Some(skus.flash_cold()),
                offset + 2 * step,
            )
            .await;
            client.drained(CATALOGUE_PIPELINE).await;
            ratios.push_str(&format!(
                "; without it {:.1} / {:.1} ms = {:.2}×",
                p99(&cold),
                p99(&idle),
                p99(&cold) / p99(&idle)
            ));
        }
        println!("  {ratios} (aim: within 2×)");
    }

    // 4. Memory.
    println!("(4) rss at the end: {}", target.rss());
    println!("{}", neighbours());
    match target {
        Target::Up(porch) => {
            let keep = std::env::var("PORCH_BENCH_KEEP").as_deref() == Ok("1");
            let data = porch.dir.join("data");
            porch.stop(keep);
            if keep {
                println!("kept: {}", data.display());
            }
        }
        Target::Cluster(cluster) => drop(cluster),
    }
}

/// What the benchmark measures: `porch up`, or porch's roles on Kafka and Cassandra.
enum Target {
    Up(Porch),
    Cluster(Cluster),
}

impl Target {
    fn client(&self) -> Arc<Client> {
        match self {
            Target::Up(p) => p.client.clone(),
            Target::Cluster(c) => c.client.clone(),
        }
    }

    /// porch's processes.
    fn pids(&self) -> Vec<u32> {
        match self {
            Target::Up(p) => vec![p.pid],
            Target::Cluster(c) => c.pids().into_iter().map(|(_, pid)| pid).collect(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Up(p) => format!("porch up pid {}", p.pid),
            Target::Cluster(c) => format!(
                "porch's roles on Kafka {} and CQL {} (topic prefix {}, keyspace {})",
                c.kafka.bootstrap,
                std::env::var("PORCH_CQL").unwrap_or_else(|_| "127.0.0.1:9042".into()),
                c.kafka.topic_prefix,
                c.keyspace
            ),
        }
    }

    /// Resident sets: of `porch up`, or of the roles that take part in a reservation.
    fn rss(&self) -> String {
        match self {
            Target::Up(p) => format!("of porch up {}", rss(p.pid)),
            Target::Cluster(c) => ["ingest-api", "inventory", "activation", "connector-search"]
                .iter()
                .filter_map(|name| Some(format!("{name} {}", rss(c.pid(name)?))))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}
