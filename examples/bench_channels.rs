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
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

// The other benchmarks' argument parser is not used here.
#[allow(dead_code)]
mod common;

use common::channels::*;
use common::*;

/// The regions offered in, with their location, currency and price: each variant is offered in
/// both, so a product makes 2 × VARIANTS listings.
const REGIONS: [Region; 2] = [("GB", "lon", "GBP", 2500), ("IN", "mum", "INR", 199_900)];
/// The Meta connector, and its outcome counters that end a request.
const META: Connector = Connector {
    name: "meta",
    done: &["live", "rejected", "dead_lettered", "unpublished"],
};

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
    parse_flags(
        "bench_channels [--listings N] [--latency-listings M] [--rate R] \
         [--batch-size B] [--linger-ms L] [--max-in-flight K] [--poll-interval-ms P] \
         [--max-poll-interval-ms Q] [--concurrency C] [--meta-latency-ms D]",
        |flag, v| {
            match flag {
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
                _ => return false,
            }
            true
        },
    );
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
/// region j % 2 on the storefront and Meta; product p belongs to tenant p % TENANTS.
fn catalogue(prefix: &'static str, listings: usize) -> Arc<Catalogue> {
    Arc::new(Catalogue {
        prefix,
        listings,
        tenants: TENANTS,
        regions: &REGIONS,
        channels: &["storefront", "meta"],
        overrides: None,
    })
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
    let porch = Porch::start(
        "porch-bench-channels",
        &channel_config(&fake.graph_url(), &args),
    )
    .await;
    let (client, pid) = (porch.client.clone(), porch.pid);
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
    META.pause(&client).await;
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
    let cat = catalogue("c", n);
    let loading = Instant::now();
    let offers = load_offers(&client, &cat, args.concurrency).await;
    let events = client.read_all("channel.events").await;
    let requested = META.requests(&events);
    let submitted = events
        .iter()
        .filter(|r| META.changed_to(r, "SUBMITTED"))
        .count();
    let request_records = META.request_records(&events).count();
    let lag = META.steady_lag(&client).await;
    println!(
        "loaded {n} listings in {:.1} s (offers accepted at {offers:.0}/s): {} listings requested on Meta \
         ({request_records} ListingRequested records), {submitted} SUBMITTED; connector lag {lag} records \
         (channel.events holds {}); {} Graph calls while paused",
        loading.elapsed().as_secs_f64(),
        requested.len(),
        events.len(),
        fake.calls().len()
    );
    println!("rss of porch up with {n} listings loaded: {}", rss(pid));
    println!("{}", neighbours());

    let backlog = META.resume(&client, pid, requested.len()).await;
    let calls = fake.calls();
    let first_batch_ms = calls
        .iter()
        .filter(|c| c.kind == CallKind::ItemsBatch)
        .map(|c| c.at_ms as i64)
        .min()
        .unwrap_or(backlog.resumed_ms);
    let applied_last_ms = fake.log().iter().map(|r| r.at_ms as i64).max().unwrap_or(0);
    backlog.print_throughput(requested.len(), "items_batch call", first_batch_ms);
    let last_live_ms = backlog.last_live_ms();
    println!(
        "  LIVE in the catalogue (ListingStateChanged): {} listings, the last {:.2} s after the first items_batch call \
         = {:.0} listings/s; the fake applied its last item {:.2} s after it",
        backlog.live.len(),
        (last_live_ms - first_batch_ms) as f64 / 1000.0,
        per_second(backlog.live.len(), first_batch_ms, last_live_ms),
        (applied_last_ms - first_batch_ms) as f64 / 1000.0,
    );
    println!(
        "  connector status: outcomes {}, retries {}, seen done after {:.1} s; {}",
        backlog.status["outcomes"], backlog.status["retries"], backlog.seen_done, backlog.during
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
        let lat = catalogue("l", m);
        prepare(&client, &lat, args.concurrency).await;
        let from = META.marks(&client).await;
        let calls_from = fake.calls().len();
        let log_from = fake.log().len();
        println!("{}", neighbours());
        let l = META.latency(&client, pid, &lat, args.rate, from).await;
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
        let achieved = format!("{:.0}", l.achieved);
        l.print(
            &achieved,
            m,
            [
                ("ListingRequested → items_batch call", &l.requested, &sent),
                ("items_batch call → finished (applied)", &sent, &applied),
                ("finished → LIVE outcome", &applied, &l.reported),
            ],
        );
        print_calls(&fake, calls_from, m, &format!("at {achieved} offers/s"));
    }

    // 4. Memory.
    println!(
        "rss of porch up at the end ({} listings): {}",
        n + m,
        rss(pid)
    );
    println!("{}", neighbours());
    let kinds = outcome_kinds(&META.status(&client).await);
    println!("connector outcomes in all: {kinds:?}");

    porch.stop(false);
}
