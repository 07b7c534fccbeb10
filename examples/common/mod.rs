//! What the benchmarks share: their arguments, tenants and keys, the HTTP client that sends
//! commands through 503s, and the figures read from /proc.

use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const OPERATOR: &str = "bench-operator";
pub const TENANTS: usize = 20;

pub struct Args {
    pub products: usize,
    pub concurrency: usize,
    pub rate: usize,
    pub latency_offers: usize,
}

/// Parses `--products N --concurrency C --rate R --latency-offers M` over `defaults`.
pub fn parse_args(name: &str, defaults: Args) -> Args {
    let mut a = defaults;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = || {
            argv.get(i + 1)
                .and_then(|s| s.parse().ok())
                .expect("a number after the flag")
        };
        match argv[i].as_str() {
            "--products" => a.products = v(),
            "--concurrency" => a.concurrency = v(),
            "--rate" => a.rate = v(),
            "--latency-offers" => a.latency_offers = v(),
            "--help" | "-h" => {
                println!(
                    "usage: {name} [--products N] [--concurrency C] [--rate R] [--latency-offers M]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    assert!(
        a.concurrency > 0 && a.rate > 0,
        "concurrency and rate must be positive"
    );
    a
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
}
