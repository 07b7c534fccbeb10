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
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::*;

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

    /// Waits until no topic grows for a while: the pipeline has drained.
    async fn drained(&self) {
        let topics = [
            "product.events",
            "compliance.events",
            "variant.events",
            "offer.events",
            "inventory.events",
            "activation.events",
            "search.events",
        ];
        let mut last = Vec::new();
        let mut stable_since = Instant::now();
        loop {
            let mut now = Vec::new();
            for t in topics {
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
}

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
    let dir = std::env::temp_dir().join(format!("porch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("porch.toml"), config()).unwrap();
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
        "porch bench: {} products over {TENANTS} tenants, concurrency {}, machine cores {}",
        args.products,
        args.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // 1. Throughput of accepted commands.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, next, n) = (client.clone(), next.clone(), args.products);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = i % TENANTS;
                let body = json!({ "id": format!("p{i}"), "title": format!("Product {i} linen shirt"), "description": "Soft and breathable",
                    "category": "apparel", "brand": "Bench", "attributes": { "tax_code": "6205" }, "images": ["a.jpg"] });
                client.send(reqwest::Method::POST, &key(t), "/v1/products", &body).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "accepted: {} commands in {secs:.2} s = {:.0} commands/s (concurrency {})",
        args.products,
        args.products as f64 / secs,
        args.concurrency
    );
    println!("rss after accepting: {:.0} MiB", status_mib(pid, "VmRSS:"));

    let t0 = Instant::now();
    client.drained().await;
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
    let setup = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, setup) = (client.clone(), setup.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = setup.fetch_add(1, Ordering::Relaxed);
                if i >= m {
                    break;
                }
                let k = key(i % TENANTS);
                client
                    .send(
                        reqwest::Method::POST,
                        &k,
                        &format!("/v1/products/p{i}/variants"),
                        &json!({ "variants": [{ "sku": format!("s{i}") }] }),
                    )
                    .await;
                client
                    .send(
                        reqwest::Method::PUT,
                        &k,
                        &format!("/v1/inventory/s{i}/lon"),
                        &json!({ "on_hand": 5 }),
                    )
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    client.drained().await;
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
    client.drained().await;
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
        "rss of porch up with {} products loaded: {:.0} MiB (peak {:.0} MiB)",
        args.products,
        status_mib(pid, "VmRSS:"),
        status_mib(pid, "VmHWM:")
    );
    let size: u64 = walk_size(&dir.join("data"));
    println!(
        "data directory: {:.0} MiB, {:.1} KiB per product",
        size as f64 / (1024.0 * 1024.0),
        size as f64 / 1024.0 / args.products as f64
    );

    let _ = child.kill();
    let _ = child.wait();
    // PORCH_BENCH_KEEP=1 keeps the data directory, to look into it (`porch usage`).
    if std::env::var("PORCH_BENCH_KEEP").as_deref() == Ok("1") {
        println!("kept: {}", dir.join("data").display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
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
