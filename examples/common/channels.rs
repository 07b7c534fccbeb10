//! What the sales-channel benchmarks share (`bench_channels` on Meta, `bench_mercadolibre`): a
//! catalogue of listings and its requests, the connector's status and controls, the records of
//! the channel's topics as times by offer, and what the machine and `porch up` used.

use super::{cpu_secs, cpu_ticks, key, percentile, Client, Request, OPERATOR, PIPELINE};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Variants per product.
pub const VARIANTS: usize = 5;

/// A region offered in: its code, the location stocked, the currency and the price (in minor
/// units).
pub type Region = (&'static str, &'static str, &'static str, u64);

/// N listings over R `regions`: listing j is variant (j / R) % VARIANTS of product
/// j / (R × VARIANTS), offered in region j % R; product p belongs to tenant p % `tenants`.
pub struct Catalogue {
    pub prefix: &'static str,
    pub listings: usize,
    pub tenants: usize,
    pub regions: &'static [Region],
    /// The channels every offer is on.
    pub channels: &'static [&'static str],
    /// A product's `channel_overrides`, from its id (none without).
    pub overrides: Option<fn(&str) -> Value>,
}

impl Catalogue {
    pub fn products(&self) -> usize {
        self.listings.div_ceil(self.regions.len() * VARIANTS)
    }
    pub fn product(&self, p: usize) -> String {
        format!("{}{p}", self.prefix)
    }
    fn sku(&self, p: usize, v: usize) -> String {
        format!("{}{p}-{v}", self.prefix)
    }
    fn tenant(&self, p: usize) -> usize {
        p % self.tenants
    }
    /// (tenant, sku, region) of listing j.
    fn listing(&self, j: usize) -> (usize, String, Region) {
        let r = self.regions.len();
        let p = j / (r * VARIANTS);
        (
            self.tenant(p),
            self.sku(p, (j / r) % VARIANTS),
            self.regions[j % r],
        )
    }
    fn product_request(&self, p: usize) -> Request {
        let id = self.product(p);
        let mut body = json!({ "id": id, "title": format!("Linen shirt {id}"), "description": "Soft and breathable linen",
            "category": "apparel", "brand": "Bench", "attributes": { "tax_code": "6205" }, "images": ["front.jpg"] });
        if let Some(overrides) = self.overrides {
            body["channel_overrides"] = overrides(&id);
        }
        (
            Method::POST,
            key(self.tenant(p)),
            "/v1/products".into(),
            body,
        )
    }
    fn variants_request(&self, p: usize) -> Request {
        let variants: Vec<Value> = (0..VARIANTS)
            .map(|v| json!({ "sku": self.sku(p, v), "options": { "size": format!("S{v}") } }))
            .collect();
        (
            Method::POST,
            key(self.tenant(p)),
            format!("/v1/products/{}/variants", self.product(p)),
            json!({ "variants": variants }),
        )
    }
    fn stock_request(&self, j: usize) -> Request {
        let (t, sku, (_, location, ..)) = self.listing(j);
        (
            Method::PUT,
            key(t),
            format!("/v1/inventory/{sku}/{location}"),
            json!({ "on_hand": 5 }),
        )
    }
    pub fn offer_request(&self, j: usize) -> Request {
        let (t, sku, (region, _, currency, price)) = self.listing(j);
        (
            Method::POST,
            key(t),
            "/v1/offers".into(),
            json!({ "sku": sku, "region": region, "price": { "amount_minor": price, "currency": currency },
                "channels": self.channels }),
        )
    }
}

/// Creates products, variants and stock for a catalogue (stock before offers: each offer
/// becomes ACTIVE once, in stock) and waits for the pipeline.
pub async fn prepare(client: &Arc<Client>, cat: &Arc<Catalogue>, concurrency: usize) {
    let c = cat.clone();
    let products = client
        .each(cat.products(), concurrency, move |p| c.product_request(p))
        .await;
    client.drained(&PIPELINE).await;
    let c = cat.clone();
    let variants = client
        .each(cat.products(), concurrency, move |p| c.variants_request(p))
        .await;
    client.drained(&PIPELINE).await;
    let c = cat.clone();
    let stock = client
        .each(cat.listings, concurrency, move |j| c.stock_request(j))
        .await;
    client.drained(&PIPELINE).await;
    println!(
        "  prepared {} products ({products:.0}/s accepted), their variants ({variants:.0} requests/s) and {} stock levels ({stock:.0}/s)",
        cat.products(),
        cat.listings
    );
}

/// Loads a catalogue: its products, variants and stock (see [`prepare`]), then its offers,
/// `concurrency` requests at a time, and waits for the pipeline; the rate the offers were
/// accepted at.
pub async fn load_offers(client: &Arc<Client>, cat: &Arc<Catalogue>, concurrency: usize) -> f64 {
    prepare(client, cat, concurrency).await;
    let c = cat.clone();
    let offers = client
        .each(cat.listings, concurrency, move |j| c.offer_request(j))
        .await;
    client.drained(&PIPELINE).await;
    offers
}

/// Creates the catalogue's offers at `rate` a second, each sent by a task of its own; the rate
/// achieved.
pub async fn offer_at_rate(client: &Arc<Client>, cat: &Arc<Catalogue>, rate: usize) -> f64 {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for j in 0..cat.listings {
        tokio::time::sleep_until((started + interval * j as u32).into()).await;
        let (client, cat) = (client.clone(), cat.clone());
        tasks.push(tokio::spawn(async move {
            let (method, key, path, body) = cat.offer_request(j);
            client.send(method, &key, &path, &body).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    cat.listings as f64 / started.elapsed().as_secs_f64()
}

/// A channel's connector: its status, pause and resume are under `/v1/connectors/<name>`.
pub struct Connector {
    pub name: &'static str,
    /// Its outcome counters that end a request.
    pub done: &'static [&'static str],
}

impl Connector {
    pub async fn status(&self, client: &Client) -> Value {
        client
            .get(OPERATOR, &format!("/v1/connectors/{}", self.name))
            .await
    }

    /// Requests the connector has finished with (live, rejected, dead-lettered…).
    pub async fn finished(&self, client: &Client) -> u64 {
        self.count(&self.status(client).await)
    }

    fn count(&self, status: &Value) -> u64 {
        let o = &status["outcomes"];
        self.done.iter().map(|k| o[k].as_u64().unwrap_or(0)).sum()
    }

    /// Pauses or resumes the connector (`what`).
    pub async fn control(&self, client: &Client, what: &str) {
        client
            .send(
                Method::POST,
                OPERATOR,
                &format!("/v1/connectors/{}/{what}", self.name),
                &json!({}),
            )
            .await;
    }

    /// Pauses the connector and waits until it says it is paused.
    pub async fn pause(&self, client: &Client) {
        self.control(client, "pause").await;
        let paused_at = Instant::now();
        while self.status(client).await["state"] != "PAUSED" {
            assert!(
                paused_at.elapsed() < Duration::from_secs(60),
                "the connector did not pause"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The connector's lag, once it has stopped growing (it is written every 2 s: two readings
    /// that agree), or after a minute.
    pub async fn steady_lag(&self, client: &Client) -> u64 {
        let mut lag = self.status(client).await["lag"].as_u64().unwrap_or(0);
        let lag_since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let now = self.status(client).await["lag"].as_u64().unwrap_or(0);
            if (now == lag && now > 0) || lag_since.elapsed() > Duration::from_secs(60) {
                return lag;
            }
            lag = now;
        }
    }

    /// Waits until the connector has finished `target` requests (live, rejected,
    /// dead-lettered…), or nothing moved for two minutes; its status.
    pub async fn settled(&self, client: &Client, target: u64) -> Value {
        let mut last = (u64::MAX, Instant::now());
        loop {
            let c = self.status(client).await;
            let done = self.count(&c);
            if done >= target {
                return c;
            }
            if done != last.0 {
                last = (done, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(120) {
                println!(
                    "  (gave up waiting: {done} of {target} requests done in two minutes: {c})"
                );
                return c;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Whether a record is about this channel.
    pub fn on(&self, r: &Value) -> bool {
        text(&r["value"]["channel"]) == Some(self.name)
    }

    /// Whether a record is a ListingStateChanged of the channel to state `to`.
    pub fn changed_to(&self, r: &Value, to: &str) -> bool {
        is(r, "ListingStateChanged") && self.on(r) && text(&r["value"]["to"]) == Some(to)
    }

    /// offer id → when its listing on the channel first went to state `to`.
    pub fn states(&self, channel_events: &[Value], to: &str) -> Stamps {
        first_by_offer(
            channel_events,
            |r| self.changed_to(r, to),
            |r| text(&r["value"]["offer_id"]),
        )
    }

    /// Whether a record is a ListingRequested of the channel.
    fn requested(&self, r: &Value) -> bool {
        is(r, "ListingRequested") && self.on(r)
    }

    /// The ListingRequested records of the channel.
    pub fn request_records<'a>(
        &'a self,
        channel_events: &'a [Value],
    ) -> impl Iterator<Item = &'a Value> + 'a {
        channel_events.iter().filter(|r| self.requested(r))
    }

    /// offer id → when the channel processor first requested its listing on the channel.
    pub fn requests(&self, channel_events: &[Value]) -> Stamps {
        first_by_offer(
            channel_events,
            |r| self.requested(r),
            |r| text(&r["value"]["offer_id"]),
        )
    }

    /// offer id → when the connector first reported its listing LIVE.
    pub fn live_outcomes(&self, outcomes: &[Value]) -> Stamps {
        first_by_offer(
            outcomes,
            |r| self.on(r) && text(&r["value"]["result"]) == Some("LIVE"),
            |r| text(&r["value"]["offer_id"]),
        )
    }

    /// Resumes the connector on its backlog of `requested` requests and waits until it has
    /// finished them and the pipeline has drained.
    pub async fn resume(&self, client: &Client, pid: u32, requested: usize) -> Backlog {
        let usage = Usage::start(pid);
        let resumed_ms = now_ms();
        let resumed = Instant::now();
        self.control(client, "resume").await;
        let status = self.settled(client, requested as u64).await;
        let seen_done = resumed.elapsed().as_secs_f64();
        let during = usage.report();
        client.drained(&PIPELINE).await;
        let outcomes = client.read_all("channel.outcomes").await;
        let events = client.read_all("channel.events").await;
        Backlog {
            resumed_ms,
            status,
            seen_done,
            during,
            live_out: self.live_outcomes(&outcomes),
            live: self.states(&events, "LIVE"),
            events,
        }
    }

    /// Where the latency phase starts: the ends of the topics it reads, and the requests the
    /// connector has finished.
    pub async fn marks(&self, client: &Client) -> Marks {
        Marks {
            activation: client.ends("activation.events").await,
            channel: client.ends("channel.events").await,
            outcomes: client.ends("channel.outcomes").await,
            done: self.finished(client).await,
        }
    }

    /// Sends the catalogue's offers at `rate` a second with the connector running, waits until
    /// it has finished them and the pipeline has drained, and reads what happened to them since
    /// `from`.
    pub async fn latency(
        &self,
        client: &Arc<Client>,
        pid: u32,
        cat: &Arc<Catalogue>,
        rate: usize,
        from: Marks,
    ) -> Latency {
        let usage = Usage::start(pid);
        let achieved = offer_at_rate(client, cat, rate).await;
        let during = usage.report();
        self.settled(client, from.done + cat.listings as u64).await;
        client.drained(&PIPELINE).await;
        let activated = first_by_offer(
            &client
                .read_from("activation.events", &from.activation)
                .await,
            |r| is(r, "OfferActivated"),
            |r| text(&r["value"]["listing"]["offer_id"]),
        );
        let events = client.read_from("channel.events", &from.channel).await;
        let outcomes = client.read_from("channel.outcomes", &from.outcomes).await;
        Latency {
            achieved,
            during,
            activated,
            requested: self.requests(&events),
            live: self.states(&events, "LIVE"),
            reported: self.live_outcomes(&outcomes),
            events,
        }
    }
}

/// Where the latency phase starts (see [`Connector::marks`]).
pub struct Marks {
    activation: Vec<u64>,
    channel: Vec<u64>,
    outcomes: Vec<u64>,
    done: u64,
}

/// The connector resumed on its backlog, and done.
pub struct Backlog {
    /// When it was resumed, in ms since the epoch.
    pub resumed_ms: i64,
    /// Its status once done.
    pub status: Value,
    /// Seconds from the resume until its status said it was done.
    pub seen_done: f64,
    /// What `porch up` and the machine used until then.
    pub during: String,
    /// All of channel.events.
    pub events: Vec<Value>,
    /// offer id → when the connector reported its listing LIVE.
    pub live_out: Stamps,
    /// offer id → when its listing went LIVE.
    pub live: Stamps,
}

impl Backlog {
    /// Prints how fast the connector confirmed the listings LIVE: from its first call to the
    /// channel (at `first_ms`, what it is in `first`) and from the resume request.
    pub fn print_throughput(&self, requested: usize, first: &str, first_ms: i64) {
        let last_ms = self.live_out.values().max().copied().unwrap_or(0) / 1000;
        let count = self.live_out.len();
        println!(
            "throughput: {count} of {requested} listings confirmed LIVE by the connector in {:.2} s from its first {first} \
             = {:.0} listings/s ({:.0}/s from the resume request, {:.2} s; the connector reads its control row every second)",
            (last_ms - first_ms) as f64 / 1000.0,
            per_second(count, first_ms, last_ms),
            per_second(count, self.resumed_ms, last_ms),
            (last_ms - self.resumed_ms) as f64 / 1000.0,
        );
    }

    /// When the last listing went LIVE, in ms since the epoch.
    pub fn last_live_ms(&self) -> i64 {
        self.live.values().max().copied().unwrap_or(0) / 1000
    }
}

/// How many a second `count` things in the milliseconds from `from_ms` to `to_ms` are.
pub fn per_second(count: usize, from_ms: i64, to_ms: i64) -> f64 {
    count as f64 * 1000.0 / (to_ms - from_ms).max(1) as f64
}

/// The latency phase: offers sent at a steady rate with the connector running.
pub struct Latency {
    /// The rate the offers were sent at, a second.
    pub achieved: f64,
    /// What `porch up` and the machine used while they were sent.
    pub during: String,
    /// channel.events from the phase's start on.
    pub events: Vec<Value>,
    /// offer id → when it was activated (OfferActivated).
    pub activated: Stamps,
    /// offer id → when its listing was requested on the channel (ListingRequested).
    pub requested: Stamps,
    /// offer id → when the connector reported its listing LIVE.
    pub reported: Stamps,
    /// offer id → when its listing went LIVE (ListingStateChanged).
    pub live: Stamps,
}

impl Latency {
    /// Prints the latency from OfferActivated to LIVE at the rate achieved (`achieved`, as it
    /// is to be shown) for `m` listings, then of each hop in between: the channel processor's
    /// request, the connector's three `hops` to its LIVE outcome, the channel processor's LIVE.
    pub fn print(&self, achieved: &str, m: usize, hops: [(&str, &Stamps, &Stamps); 3]) {
        println!(
            "latency OfferActivated → ListingStateChanged(LIVE) at {achieved} offers/s ({} of {m} listings LIVE, \
             {} activated): {}",
            self.live.len(),
            self.activated.len(),
            quantiles(&gaps(&self.activated, &self.live))
        );
        let first = (
            "OfferActivated → ListingRequested",
            &self.activated,
            &self.requested,
        );
        let last = (
            "LIVE outcome → ListingStateChanged",
            &self.reported,
            &self.live,
        );
        for (what, from, to) in std::iter::once(first).chain(hops).chain([last]) {
            println!("  {what}: {}", quantiles(&gaps(from, to)));
        }
        println!("  while offers were sent: {}", self.during);
    }
}

/// The connector's outcome counters in its status, by name.
pub fn outcome_kinds(status: &Value) -> BTreeMap<String, Value> {
    status["outcomes"]
        .as_object()
        .map(|o| o.clone().into_iter().collect())
        .unwrap_or_default()
}

impl Client {
    /// All the records of a topic.
    pub async fn read_all(&self, topic: &str) -> Vec<Value> {
        let from = vec![0; self.ends(topic).await.len()];
        self.read_from(topic, &from).await
    }
}

/// offer id → a time, in µs since the epoch.
pub type Stamps = HashMap<String, i64>;

/// A number the topic API gives as a JSON number, or wrapped in an Avro union's object.
fn number(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_object()?.values().next().and_then(number))
}

/// A string the topic API gives as a JSON string, or wrapped in an Avro union's object.
pub fn text(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.as_object()?.values().next().and_then(Value::as_str))
}

/// A record's `occurred_at`, in µs since the epoch.
pub fn occurred_at(r: &Value) -> Option<i64> {
    number(&r["value"]["envelope"]["occurred_at"])
}

/// Whether a record is of the type named `name` (the last part of its record type).
pub fn is(r: &Value, name: &str) -> bool {
    r["record_type"]
        .as_str()
        .is_some_and(|t| t.rsplit('.').next() == Some(name))
}

/// offer id → the first `occurred_at` (µs) of the records `pick` keeps.
pub fn first_by_offer(
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

/// Sorted milliseconds between two timestamps (µs) of the same offers.
pub fn gaps(from: &Stamps, to: &Stamps) -> Vec<f64> {
    let mut v: Vec<f64> = from
        .iter()
        .filter_map(|(o, a)| to.get(o).map(|b| (b - a) as f64 / 1000.0))
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

pub fn quantiles(v: &[f64]) -> String {
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(v, 0.50),
        percentile(v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The machine's (busy, total) clock ticks so far.
fn machine_ticks() -> (f64, f64) {
    let v = cpu_ticks();
    let total: f64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// What the machine and `porch up` used from a starting point.
pub struct Usage {
    at: Instant,
    pids: Vec<u32>,
    porch_cpu: f64,
    machine: (f64, f64),
}

impl Usage {
    /// From now on, of the process `pid` (`porch up`).
    pub fn start(pid: u32) -> Self {
        Self::of(&[pid])
    }
    /// From now on, of the processes `pids` together (porch's roles).
    pub fn of(pids: &[u32]) -> Self {
        Usage {
            at: Instant::now(),
            pids: pids.to_vec(),
            porch_cpu: pids.iter().map(|p| cpu_secs(*p)).sum(),
            machine: machine_ticks(),
        }
    }
    pub fn report(&self) -> String {
        let secs = self.at.elapsed().as_secs_f64();
        let (busy, total) = machine_ticks();
        let cpu: f64 = self.pids.iter().map(|p| cpu_secs(*p)).sum();
        format!(
            "porch used {:.2} cores, the machine was {:.0} % busy over {secs:.1} s",
            (cpu - self.porch_cpu) / secs,
            100.0 * (busy - self.machine.0) / (total - self.machine.1).max(1.0)
        )
    }
}

/// How many processes run with `pattern` in their command line (`pgrep -f`).
pub fn running(pattern: &str) -> usize {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

/// What else runs on the machine: a test suite beside the benchmark makes every figure noisy.
pub fn neighbours() -> String {
    let suites = running("cargo test");
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
