//! The Mercado Libre benchmark: starts `porch up` (the release binary) with its tenants each
//! connected to a seller on a fake Mercado Libre API running in this process
//! (`porch-fake-mercadolibre`, 100 ms per call by default), drives it over HTTP and prints
//! figures. Not a test: it asserts nothing, it measures. Modelled on `bench_channels` (Meta).
//!
//!   cargo build --release && cargo run --release --example bench_mercadolibre -- [--listings N]
//!       [--latency-listings M] [--rate R] [--sellers S] [--batch-size B] [--linger-ms L]
//!       [--max-in-flight K] [--max-in-flight-per-account A] [--calls-per-batch P]
//!       [--concurrency C] [--ml-latency-ms D]
//!
//! The connector's settings go into `[connectors.mercadolibre]`; their defaults are the
//! connector's own. Each of the first S tenants (of 20) connects one seller in BR with a grant
//! (the app's credentials and a refresh token the fake issued), so the connector refreshes each
//! seller's token once before its first call.
//!
//! 1. throughput: with the Mercado Libre connector paused, N listings are loaded (products of 5
//!    variants, each offered in BR on Mercado Libre) until every one is SUBMITTED and the
//!    connector's lag has stopped growing; then the connector is resumed and timed until every
//!    listing is LIVE → listings confirmed/s
//! 2. calls: the fake's record of the API calls → creates, confirming reads (`GET /items/{id}`,
//!    multigets), updates, searches by SKU and token refreshes per listing
//! 3. latency: M more listings, their stock set first, their offers created at R/s with the
//!    connector running → OfferActivated → ListingStateChanged(LIVE) p50/p99/max, from the
//!    events' own `occurred_at`, with the hops in between
//! 4. memory: resident set of `porch up` (and its peak)

use porch_fake_mercadolibre::{AccountSeed, CallKind, FakeConfig, FakeMercadoLibre, Site};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

// The other benchmarks' argument parser is not used here.
#[allow(dead_code)]
mod common;

use common::channels::*;
use common::*;

/// The Mercado Libre connector (its status, pause and resume are under
/// `/v1/connectors/mercadolibre`), and its outcome counters that end a request.
const ML: Connector = Connector {
    name: "mercadolibre",
    done: &[
        "live",
        "rejected",
        "dead_lettered",
        "unpublished",
        "needs_reauth",
    ],
};
/// The region, its location (one per tenant), currency and price (R$ 129.90). Each variant is
/// offered in BR alone: a product makes VARIANTS listings.
const REGION: Region = ("BR", "sp", "BRL", 12_990);
/// A Mercado Libre Brasil category (the fake takes any `MLB<digits>`).
const CATEGORY: &str = "MLB31447";
/// The app every seller authorized.
const CLIENT_ID: &str = "porch-bench";
const CLIENT_SECRET: &str = "porch-bench-secret";
/// Seller `t`'s user id is `SELLER_BASE + t`.
const SELLER_BASE: u64 = 700_000;

struct Args {
    listings: usize,
    latency_listings: usize,
    rate: usize,
    sellers: usize,
    batch_size: usize,
    linger_ms: u64,
    max_in_flight: usize,
    max_in_flight_per_account: usize,
    calls_per_batch: usize,
    concurrency: usize,
    ml_latency_ms: u64,
}

fn parse_args() -> Args {
    // The connector's own defaults (connectors/src/mercadolibre/config.rs) for its settings.
    let ml = porch_connectors::mercadolibre::MercadoLibreConfig::default();
    let mut a = Args {
        listings: 10_000,
        latency_listings: 3_000,
        rate: 50,
        sellers: TENANTS,
        batch_size: ml.batch_size,
        linger_ms: ml.linger_ms,
        max_in_flight: ml.max_in_flight,
        max_in_flight_per_account: ml.max_in_flight_per_account,
        calls_per_batch: ml.calls_per_batch,
        concurrency: 64,
        ml_latency_ms: 100,
    };
    parse_flags(
        "bench_mercadolibre [--listings N] [--latency-listings M] [--rate R] \
         [--sellers S] [--batch-size B] [--linger-ms L] [--max-in-flight K] \
         [--max-in-flight-per-account A] [--calls-per-batch P] [--concurrency C] \
         [--ml-latency-ms D]",
        |flag, v| {
            match flag {
                "--listings" => a.listings = v() as usize,
                "--latency-listings" => a.latency_listings = v() as usize,
                "--rate" => a.rate = v() as usize,
                "--sellers" => a.sellers = v() as usize,
                "--batch-size" => a.batch_size = v() as usize,
                "--linger-ms" => a.linger_ms = v(),
                "--max-in-flight" => a.max_in_flight = v() as usize,
                "--max-in-flight-per-account" => a.max_in_flight_per_account = v() as usize,
                "--calls-per-batch" => a.calls_per_batch = v() as usize,
                "--concurrency" => a.concurrency = v() as usize,
                "--ml-latency-ms" => a.ml_latency_ms = v(),
                _ => return false,
            }
            true
        },
    );
    assert!(
        a.concurrency > 0 && a.rate > 0 && a.listings > 0,
        "listings, concurrency and rate must be positive"
    );
    assert!(
        (1..=TENANTS).contains(&a.sellers),
        "sellers must be 1 to {TENANTS} (one a tenant)"
    );
    a
}

/// The benchmark's tenants (on the storefront and Mercado Libre) and the connector's settings,
/// pointed at the fake.
fn channel_config(api_url: &str, a: &Args) -> String {
    let mut s = config_with("\"storefront\", \"mercadolibre\"", |_| String::new());
    s.push_str(&format!(
        "\n[connectors.mercadolibre]\napi_url = \"{api_url}\"\ntoken_url = \"{api_url}/oauth/token\"\n\
         batch_size = {}\nlinger_ms = {}\nmax_in_flight = {}\nmax_in_flight_per_account = {}\n\
         calls_per_batch = {}\n",
        a.batch_size, a.linger_ms, a.max_in_flight, a.max_in_flight_per_account, a.calls_per_batch
    ));
    s
}

fn seller(t: usize) -> u64 {
    SELLER_BASE + t as u64
}

/// N listings: listing j is variant j % VARIANTS of product j / VARIANTS, offered in BR on
/// Mercado Libre; product p belongs to tenant p % sellers.
fn catalogue(prefix: &'static str, listings: usize, sellers: usize) -> Arc<Catalogue> {
    Arc::new(Catalogue {
        prefix,
        listings,
        tenants: sellers,
        regions: &[REGION],
        channels: &["mercadolibre"],
        overrides: Some(
            |id| json!({ "mercadolibre": { "category_id": CATEGORY, "title": format!("Camisa de linho {id}") } }),
        ),
    })
}

/// sku → offer id, from the Mercado Libre requests.
fn offers_by_sku(channel_events: &[Value]) -> HashMap<String, String> {
    ML.request_records(channel_events)
        .filter_map(|r| {
            Some((
                text(&r["value"]["sku"])?.to_string(),
                text(&r["value"]["offer_id"])?.to_string(),
            ))
        })
        .collect()
}

/// Listing states on Mercado Libre in the channel.events records: state → listings whose
/// latest state it is.
fn final_states(channel_events: &[Value]) -> BTreeMap<String, usize> {
    let mut last: HashMap<&str, &str> = HashMap::new();
    for r in channel_events
        .iter()
        .filter(|r| is(r, "ListingStateChanged") && ML.on(r))
    {
        if let (Some(o), Some(to)) = (text(&r["value"]["offer_id"]), text(&r["value"]["to"])) {
            last.insert(o, to);
        }
    }
    let mut out = BTreeMap::new();
    for to in last.values() {
        *out.entry(to.to_string()).or_insert(0) += 1;
    }
    out
}

/// What else runs on the machine: a test suite or a build beside the benchmark makes every
/// figure noisy.
fn neighbours_and_builds() -> String {
    format!("{}; {} rustc running", neighbours(), running("rustc "))
}

/// Prints the API calls the fake answered from call `from` on, per listing.
fn print_calls(fake: &FakeMercadoLibre, from: usize, listings: usize, what: &str) {
    let calls = fake.calls();
    let calls = &calls[from.min(calls.len())..];
    let n = |k: CallKind| calls.iter().filter(|c| c.kind == k).count();
    let refreshes = calls
        .iter()
        .filter(|c| c.kind == CallKind::Token && c.grant_type.as_deref() == Some("refresh_token"))
        .count();
    let failed = calls
        .iter()
        .filter(|c| !c.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    let l = listings.max(1) as f64;
    let per = |count: usize| format!("{:.3} ({count})", count as f64 / l);
    println!(
        "calls per listing ({what}, {listings} listings): creates {}, confirming reads: get_item {} + multiget {}, \
         updates {}, searches {}, token refreshes {} (token calls {}), total {}; not answered 2xx: {failed}",
        per(n(CallKind::CreateItem)),
        per(n(CallKind::GetItem)),
        per(n(CallKind::Multiget)),
        per(n(CallKind::UpdateItem)),
        per(n(CallKind::SearchItems)),
        per(refreshes),
        n(CallKind::Token),
        per(calls.len()),
    );
}

/// Seeds seller `t` on the fake and connects tenant `t` to it in BR with the grant, and gives
/// the tenant its BR location.
async fn connect_seller(client: &Client, fake: &FakeMercadoLibre, t: usize) {
    let tokens = fake
        .add_account(AccountSeed {
            user_id: seller(t),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            site: Site::Mlb,
            tokens: true,
        })
        .expect("seed the seller")
        .tokens
        .expect("a token pair");
    client
        .send(
            Method::PUT,
            &key(t),
            "/v1/channels/mercadolibre/regions/BR",
            &json!({ "account": seller(t).to_string(),
                "grant": { "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": tokens.refresh_token },
                "link_template": format!("https://shop-t{t:02}.example/products/{{product}}") }),
        )
        .await;
    client
        .send(
            Method::POST,
            &key(t),
            "/v1/locations",
            &json!({ "location_id": REGION.1, "region": REGION.0 }),
        )
        .await;
}

/// The Mercado Libre statuses of a product's listings, from its view.
async fn view_statuses(client: &Client, t: usize, product: &str) -> Vec<String> {
    let view = client
        .get(&key(t), &format!("/v1/products/{product}"))
        .await;
    view["listings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["channels"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["channel"] == ML.name)
        .map(|c| c["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let fake = FakeMercadoLibre::start(
        "127.0.0.1:0".parse().unwrap(),
        FakeConfig {
            latency_ms: args.ml_latency_ms,
            seed: 1,
            ..FakeConfig::default()
        },
    )
    .await
    .expect("start the fake Mercado Libre");
    let porch = Porch::start(
        "porch-bench-mercadolibre",
        &channel_config(&fake.api_url(), &args),
    )
    .await;
    let (client, pid) = (porch.client.clone(), porch.pid);
    // At most this many batches run at once, each with calls_per_batch requests under way.
    let batches = args
        .max_in_flight
        .min(args.sellers * args.max_in_flight_per_account);
    println!(
        "porch bench_mercadolibre: {} listings, then {} at {}/s, over {} tenants each with one Mercado Libre seller in BR; \
         connector batch_size {}, linger_ms {}, max_in_flight {}, max_in_flight_per_account {}, calls_per_batch {} \
         (so at most {batches} batches and {} requests under way at once); fake Mercado Libre {} ms a call; \
         machine cores {}; porch up pid {pid}",
        args.listings,
        args.latency_listings,
        args.rate,
        args.sellers,
        args.batch_size,
        args.linger_ms,
        args.max_in_flight,
        args.max_in_flight_per_account,
        args.calls_per_batch,
        batches * args.calls_per_batch,
        args.ml_latency_ms,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("{}", neighbours_and_builds());

    // 1. Throughput: load with the connector paused, then resume and time it.
    ML.pause(&client).await;
    for t in 0..args.sellers {
        connect_seller(&client, &fake, t).await;
    }
    let n = args.listings;
    let cat = catalogue("c", n, args.sellers);
    let loading = Instant::now();
    let offers = load_offers(&client, &cat, args.concurrency).await;
    let events = client.read_all("channel.events").await;
    let requested = ML.requests(&events);
    let request_records = ML.request_records(&events).count();
    let lag = ML.steady_lag(&client).await;
    println!(
        "loaded {n} listings in {:.1} s (offers accepted at {offers:.0}/s): {} listings requested on Mercado Libre \
         ({request_records} ListingRequested records), states {:?}; connector lag {lag} records \
         (channel.events holds {}); {} API calls while paused",
        loading.elapsed().as_secs_f64(),
        requested.len(),
        final_states(&events),
        events.len(),
        fake.calls().len()
    );
    println!("rss of porch up with {n} listings loaded: {}", rss(pid));
    println!("{}", neighbours_and_builds());

    let calls_before = fake.calls().len();
    let backlog = ML.resume(&client, pid, requested.len()).await;
    let calls = fake.calls();
    let first_call_ms = calls[calls_before.min(calls.len())..]
        .iter()
        .map(|c| c.at_ms as i64)
        .min()
        .unwrap_or(backlog.resumed_ms);
    let last_call_ms = calls.iter().map(|c| c.at_ms as i64).max().unwrap_or(0);
    backlog.print_throughput(requested.len(), "call", first_call_ms);
    let last_live_ms = backlog.last_live_ms();
    println!(
        "  LIVE in the catalogue (ListingStateChanged): {} listings, the last {:.2} s after the first call \
         = {:.0} listings/s; the fake got its last call {:.2} s after the first; final states {:?}",
        backlog.live.len(),
        (last_live_ms - first_call_ms) as f64 / 1000.0,
        per_second(backlog.live.len(), first_call_ms, last_live_ms),
        (last_call_ms - first_call_ms) as f64 / 1000.0,
        final_states(&backlog.events),
    );
    println!(
        "  connector status: outcomes {}, retries {}; {}",
        backlog.status["outcomes"], backlog.status["retries"], backlog.during
    );

    // 2. Calls per listing.
    print_calls(
        &fake,
        calls_before,
        requested.len(),
        "bulk, connector resumed on a backlog",
    );
    println!(
        "  the fake holds {} items; {} SKUs listed twice",
        fake.items().len(),
        fake.duplicates().len()
    );

    // 3. Latency at a steady rate, the connector running.
    let m = args.latency_listings;
    if m > 0 {
        let lat = catalogue("l", m, args.sellers);
        prepare(&client, &lat, args.concurrency).await;
        let from = ML.marks(&client).await;
        let calls_from = fake.calls().len();
        println!("{}", neighbours_and_builds());
        let l = ML.latency(&client, pid, &lat, args.rate, from).await;
        // The hops: the channel processor's request, the connector's queue and linger until its
        // POST /items arrives, the create and the reads until the last one that confirmed the
        // item arrives, that read's answer and the connector's outcome, the channel processor's
        // LIVE.
        let by_sku = offers_by_sku(&l.events);
        let items = fake.items();
        let offer_of = |item: &str| {
            items
                .get(item)
                .and_then(|i| i.sku.as_deref())
                .and_then(|sku| by_sku.get(sku))
        };
        let calls = fake.calls();
        let mut created: Stamps = HashMap::new();
        let mut confirmed: Stamps = HashMap::new();
        for c in &calls[calls_from.min(calls.len())..] {
            let ok = c.status.is_some_and(|s| (200..300).contains(&s));
            let Some(offer) = c.item_id.as_deref().and_then(offer_of) else {
                continue;
            };
            let at = c.at_ms as i64 * 1000;
            match c.kind {
                CallKind::CreateItem => {
                    created.entry(offer.clone()).or_insert(at);
                }
                CallKind::GetItem if ok => {
                    let e = confirmed.entry(offer.clone()).or_insert(at);
                    *e = (*e).max(at);
                }
                _ => {}
            }
        }
        let achieved = format!("{:.1}", l.achieved);
        l.print(
            &achieved,
            m,
            [
                ("ListingRequested → POST /items", &l.requested, &created),
                ("POST /items → confirming GET", &created, &confirmed),
                ("confirming GET → LIVE outcome", &confirmed, &l.reported),
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
    println!("{}", neighbours_and_builds());
    let c = ML.status(&client).await;
    println!(
        "connector outcomes in all: {:?}; retries {}; last error {}",
        outcome_kinds(&c),
        c["retries"],
        c["last_error"]
    );
    let refreshes: u64 = fake.accounts().iter().map(|a| a.refreshes).sum();
    let refused: u64 = fake.accounts().iter().map(|a| a.refused_refreshes).sum();
    println!(
        "token refreshes over the run: {refreshes} for {} sellers ({refused} refused); the first product's listings in its view: {:?}",
        args.sellers,
        view_statuses(&client, 0, &cat.product(0)).await
    );

    porch.stop(false);
}
