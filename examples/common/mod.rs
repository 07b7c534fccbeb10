//! What the benchmarks share: their arguments, tenants and keys, `porch up` started for them,
//! the HTTP client that sends commands through 503s and reads topics back, and the figures read
//! from /proc. What only the sales-channel benchmarks share is in [`channels`].

pub mod channels;
pub mod cluster;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const OPERATOR: &str = "bench-operator";
pub const TENANTS: usize = 20;
/// The topics the pipeline writes, watched until none grows: the catalogue's, then the sales
/// channels'.
pub const PIPELINE: [&str; 10] = [
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
/// The catalogue's topics of [`PIPELINE`], without the sales channels'.
pub const CATALOGUE_PIPELINE: &[&str] = PIPELINE.split_at(7).0;

/// A request to send: its method, key, path and body.
pub type Request = (reqwest::Method, String, String, Value);

pub struct Args {
    pub products: usize,
    pub concurrency: usize,
    pub rate: usize,
    pub latency_offers: usize,
}

/// Parses `--products N --concurrency C --rate R --latency-offers M` over `defaults`.
pub fn parse_args(name: &str, defaults: Args) -> Args {
    let mut a = defaults;
    parse_flags(
        &format!("{name} [--products N] [--concurrency C] [--rate R] [--latency-offers M]"),
        |flag, v| {
            match flag {
                "--products" => a.products = v() as usize,
                "--concurrency" => a.concurrency = v() as usize,
                "--rate" => a.rate = v() as usize,
                "--latency-offers" => a.latency_offers = v() as usize,
                _ => return false,
            }
            true
        },
    );
    assert!(
        a.concurrency > 0 && a.rate > 0,
        "concurrency and rate must be positive"
    );
    a
}

/// Reads the command line as flags, each followed by a number: `set(flag, v)` sets what the
/// flag stands for to `v()` (which panics when no number follows) and says whether it knew the
/// flag. `--help` prints `usage: <usage>` and exits; an unknown flag panics.
pub fn parse_flags(usage: &str, mut set: impl FnMut(&str, &dyn Fn() -> u64) -> bool) {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = || -> u64 {
            argv.get(i + 1)
                .and_then(|s| s.parse().ok())
                .expect("a number after the flag")
        };
        match argv[i].as_str() {
            "--help" | "-h" => {
                println!("usage: {usage}");
                std::process::exit(0);
            }
            other if !set(other, &v) => panic!("unknown argument {other}"),
            _ => {}
        }
        i += 2;
    }
}

/// The admin key of tenant `t<t>`.
pub fn key(t: usize) -> String {
    format!("bench-t{t:02}-key")
}

/// The benchmark's tenants, keys and compliance rules.
pub fn config() -> String {
    config_with("\"storefront\"", |_| String::new())
}

/// [`config`] with the tenants' `channels` list (TOML, without its brackets) and, after each
/// tenant's key, what `tenant_extra(t)` adds to tenant `t` (its `[[tenant.connection]]`s, say).
pub fn config_with(channels: &str, tenant_extra: impl Fn(usize) -> String) -> String {
    let mut s = format!("[operator]\napi_key = \"{OPERATOR}\"\n\n");
    for t in 0..TENANTS {
        s.push_str(&format!(
            "[[tenant]]\nid = \"t{t:02}\"\nmode = \"single_brand\"\nregions = [\"GB\", \"IN\", \"DE\", \"BR\"]\nchannels = [{channels}]\n\n[[tenant.key]]\nkey = \"{}\"\nrole = \"admin\"\n\n",
            key(t)
        ));
        s.push_str(&tenant_extra(t));
    }
    s.push_str("[compliance.IN]\nrequired_attributes = [\"tax_code\"]\n\n[compliance.BR]\nrequired_attributes = [\"tax_code\"]\n");
    s
}

/// A field of /proc/<pid>/status in MiB (VmRSS:, VmHWM:).
pub fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A process's resident set and its peak: `R MiB (peak P MiB)`.
pub fn rss(pid: u32) -> String {
    format!(
        "{:.0} MiB (peak {:.0} MiB)",
        status_mib(pid, "VmRSS:"),
        status_mib(pid, "VmHWM:")
    )
}

/// CPU seconds (user + system) a process has used, all threads.
pub fn cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(format!("/proc/{pid}/stat"))
}

/// CPU seconds (user + system) in a `stat` file of /proc (a process's or a thread's).
pub fn stat_cpu_secs(path: impl AsRef<std::path::Path>) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            // Fields after the command name, which may hold spaces: state is field 3, utime 14.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
        })
        .unwrap_or(f64::NAN)
}

/// The machine's CPU time so far from /proc/stat, in clock ticks: the fields of its `cpu` line
/// (user nice system idle iowait irq softirq steal guest guest_nice).
pub fn cpu_ticks() -> Vec<f64> {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// The `p` quantile (0..=1) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// How long to wait before sending a request answered 503 again: its Retry-After (in seconds;
/// 1 s when missing, at least 5 ms), stretched by up to a quarter at random so that the requests
/// shed together do not all come back in the same instant.
fn retry_after(r: &reqwest::Response) -> Duration {
    let secs: f64 = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u32>().ok())
        .map_or(1.0, f64::from);
    // A fresh std hasher's keys differ each time: enough randomness for a spread.
    let random = std::hash::BuildHasher::build_hasher(&std::hash::RandomState::new());
    let jitter = (std::hash::Hasher::finish(&random) % 1000) as f64 / 4000.0;
    Duration::from_secs_f64(secs.max(0.005) * (1.0 + jitter))
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    /// Requests answered 503 (overloaded or a backend unavailable) and sent again.
    pub retries: AtomicU64,
}

impl Client {
    pub fn new(base: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base,
            retries: AtomicU64::new(0),
        }
    }

    /// Sends a request until it is answered 2xx, again after each 503 (once its Retry-After has
    /// passed) or refused connection;
    /// panics on anything else, with the error's causes.
    pub async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: &Value,
    ) -> Value {
        loop {
            match self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(key)
                .json(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return r.json().await.unwrap_or(Value::Null),
                Ok(r) if r.status().as_u16() == 503 => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(retry_after(&r)).await
                }
                Ok(r) => panic!(
                    "{path}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ),
                // Never sent (the API's accept queue full while it is saturated, say): sending
                // it again cannot make a second command.
                Err(e) if e.is_connect() => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => {
                    let mut cause = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        cause.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    panic!("{path}: {cause}")
                }
            }
        }
    }

    /// GET `path`'s JSON.
    pub async fn get(&self, key: &str, path: &str) -> Value {
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

    /// A topic's end offset, per partition.
    pub async fn ends(&self, topic: &str) -> Vec<u64> {
        let v = self.get(OPERATOR, &format!("/v1/topics/{topic}")).await;
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["end_offset"].as_u64().unwrap())
            .collect()
    }

    /// Records of a topic from the given offsets on.
    pub async fn read_from(&self, topic: &str, from: &[u64]) -> Vec<Value> {
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

    /// Waits until none of `topics` grows for a while: the pipeline has drained.
    pub async fn drained(&self, topics: &[&str]) {
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

    /// Sends `count` requests, `concurrency` at a time; the rate they were accepted at.
    pub async fn each(
        self: &Arc<Self>,
        count: usize,
        concurrency: usize,
        request: impl Fn(usize) -> Request + Send + Sync + 'static,
    ) -> f64 {
        let started = Instant::now();
        load(self, count, concurrency, move |i| vec![request(i)]).await;
        count as f64 / started.elapsed().as_secs_f64()
    }
}

/// Sends `n` commands from `concurrency` clients; `make(i)` gives command i's requests, sent one
/// after the other. Returns each request's time to its answer, in milliseconds, sorted.
pub async fn load<F>(client: &Arc<Client>, n: usize, concurrency: usize, make: F) -> Vec<f64>
where
    F: Fn(usize) -> Vec<Request> + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, make) = (client.clone(), next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break took;
                }
                for (method, key, path, body) in make(i) {
                    let sent = Instant::now();
                    client.send(method, &key, &path, &body).await;
                    took.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }));
    }
    let mut took = Vec::new();
    for t in tasks {
        took.extend(t.await.unwrap());
    }
    took.sort_by(|a, b| a.partial_cmp(b).unwrap());
    took
}

/// The request that creates product `i` (`p<i>`, of tenant i % TENANTS).
pub fn create_product(i: usize) -> Vec<Request> {
    let body = json!({ "id": format!("p{i}"), "title": format!("Product {i} linen shirt"), "description": "Soft and breathable",
        "category": "apparel", "brand": "Bench", "attributes": { "tax_code": "6205" }, "images": ["a.jpg"] });
    vec![(
        reqwest::Method::POST,
        key(i % TENANTS),
        "/v1/products".into(),
        body,
    )]
}

/// The requests that give product `i` a variant (`s<i>`) and stock of it in `lon` (GB), ready
/// to be offered: an offer of it makes a listing visible.
pub fn stock_variant(i: usize) -> Vec<Request> {
    stock_variant_with(i, 5)
}

/// [`stock_variant`] with `on_hand` units in `lon`.
pub fn stock_variant_with(i: usize, on_hand: u64) -> Vec<Request> {
    vec![
        (
            reqwest::Method::POST,
            key(i % TENANTS),
            format!("/v1/products/p{i}/variants"),
            json!({ "variants": [{ "sku": format!("s{i}") }] }),
        ),
        (
            reqwest::Method::PUT,
            key(i % TENANTS),
            format!("/v1/inventory/s{i}/lon"),
            json!({ "on_hand": on_hand }),
        ),
    ]
}

/// `porch up`, the release binary beside the examples, run with its configuration and data in
/// a directory of its own, and a client of its API.
pub struct Porch {
    child: Child,
    pub pid: u32,
    /// Its porch.toml, and its data directory `data`.
    pub dir: PathBuf,
    pub client: Arc<Client>,
}

impl Porch {
    /// Starts `porch up` with `config` in `<temp dir>/<name>-<this process's id>`, listening on
    /// a free port of 127.0.0.1 and logging at `PORCH_LOG` (`warn` by default), and waits
    /// until it is ready.
    pub async fn start(name: &str, config: &str) -> Porch {
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
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("porch.toml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&porch)
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
        Porch {
            pid: child.id(),
            child,
            dir,
            client,
        }
    }

    /// Kills it and, unless `keep`, deletes its directory.
    pub fn stop(mut self, keep: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
