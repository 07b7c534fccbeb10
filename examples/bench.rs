//! The porch benchmark: starts `porch up` (the release binary), drives it over HTTP and prints
//! figures. Not a test: it asserts nothing, it measures.
//!
//!   cargo build --release && cargo run --release --example bench -- [--products N]
//!       [--concurrency C] [--rate R] [--latency-offers M]
//!
//! 1. throughput: N products created over HTTP by C concurrent clients → commands accepted/s
//! 2. catalogue: waits until the pipeline has processed them (N products loaded)
//! 3. latency: M offers at R commands/s, each making a listing visible → from the client's 202 to
//!    the listing being searchable (the index the API searches past its ListingVisible record,
//!    sampled through `GET /v1/search/position`) p50/p99
//! 4. memory: resident set of `porch up` with the catalogue loaded

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The sales-channel benchmarks' helpers (common::channels) are not used here.
#[allow(dead_code)]
mod common;

use common::*;

#[tokio::main]
async fn main() {
    let args = parse_args(
        "bench",
        Args {
            products: 100_000,
            concurrency: 64,
            rate: 1000,
            latency_offers: 5000,
        },
    );
    let porch = Porch::start("porch-bench", &config()).await;
    let (client, pid) = (porch.client.clone(), porch.pid);
    println!(
        "porch bench: {} products over {TENANTS} tenants, concurrency {}, machine cores {}",
        args.products,
        args.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // 1. Throughput of accepted commands.
    let started = Instant::now();
    load(&client, args.products, args.concurrency, create_product).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "accepted: {} commands in {secs:.2} s = {:.0} commands/s (concurrency {})",
        args.products,
        args.products as f64 / secs,
        args.concurrency
    );
    println!("rss after accepting: {:.0} MiB", status_mib(pid, "VmRSS:"));

    let t0 = Instant::now();
    client.drained(CATALOGUE_PIPELINE).await;
    println!(
        "pipeline drained {} products (× 4 regions of compliance) in {:.1} s after the last accept",
        args.products,
        t0.elapsed().as_secs_f64()
    );

    // 3. Latency at a steady rate: each offer completes a product that already has variant and stock.
    let m = args.latency_offers.min(args.products);
    for t in 0..TENANTS {
        client
            .send(
                reqwest::Method::POST,
                &key(t),
                "/v1/locations",
                &json!({ "location_id": "lon", "region": "GB" }),
            )
            .await;
    }
    load(&client, m, args.concurrency, stock_variant).await;
    client.drained(CATALOGUE_PIPELINE).await;
    let search_from = client.ends("search.events").await;
    // How far the index the API searches has got, sampled as often as the API answers: a
    // listing is searchable from the first sample past its ListingVisible record.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (client, sampling) = (client.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut samples: Vec<(Instant, Vec<u64>)> = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                let v = client.get(OPERATOR, "/v1/search/position").await;
                let at = Instant::now();
                let offsets: Vec<u64> = v["offsets"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                if samples.last().is_none_or(|(_, last)| *last != offsets) {
                    samples.push((at, offsets));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples
        })
    };
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..m {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({ "sku": format!("s{i}"), "region": "GB", "price": { "amount_minor": 1000 + i, "currency": "GBP" } });
            let reply = client.send(reqwest::Method::POST, &key(i % TENANTS), "/v1/offers", &body).await;
            let command = reply["command_id"].as_str().unwrap_or_default().to_string();
            (command, Instant::now())
        }));
    }
    // The client's 202, by command id (a command's correlation id when the client names none).
    let mut accepted_at: HashMap<String, Instant> = HashMap::new();
    for t in tasks {
        let (command, at) = t.await.unwrap();
        accepted_at.insert(command, at);
    }
    let achieved = m as f64 / started.elapsed().as_secs_f64();
    client.drained(CATALOGUE_PIPELINE).await;
    let visible = client.read_from("search.events", &search_from).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let mut lat_ms: Vec<f64> = visible
        .iter()
        .filter(|r| r["record_type"] == "porch.search.ListingVisible")
        .filter_map(|r| {
            let corr = r["value"]["envelope"]["correlation_id"].as_str()?;
            let accepted = accepted_at.get(corr)?;
            let (p, offset) = (r["partition"].as_u64()? as usize, r["offset"].as_u64()?);
            let (searchable, _) = samples
                .iter()
                .find(|(_, o)| o.get(p).is_some_and(|&at| at > offset))?;
            Some(
                searchable
                    .saturating_duration_since(*accepted)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    lat_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "202 accepted → searchable at {achieved:.0} commands/s ({} of {m} offers matched): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat_ms.len(),
        percentile(&lat_ms, 0.50),
        percentile(&lat_ms, 0.99),
        lat_ms.last().copied().unwrap_or(f64::NAN)
    );

    // 4. Memory with the catalogue loaded.
    println!(
        "rss of porch up with {} products loaded: {}",
        args.products,
        rss(pid)
    );
    let data = porch.dir.join("data");
    let size: u64 = walk_size(&data);
    println!(
        "data directory: {:.0} MiB, {:.1} KiB per product",
        size as f64 / (1024.0 * 1024.0),
        size as f64 / 1024.0 / args.products as f64
    );

    // PORCH_BENCH_KEEP=1 keeps the data directory, to look into it (`porch usage`).
    let keep = std::env::var("PORCH_BENCH_KEEP").as_deref() == Ok("1");
    porch.stop(keep);
    if keep {
        println!("kept: {}", data.display());
    }
}

fn walk_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) {
                        walk_size(&e.path())
                    } else {
                        m.map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
