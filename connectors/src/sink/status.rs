//! How a connector is doing, as Kafka Connect tells it: a state (RUNNING, PAUSED, FAILED,
//! UNASSIGNED), the lag of its input, its last error, and counts by outcome and by retry class.
//! Each running instance keeps a [`ConnectorStatus`] in memory (and as Prometheus metrics) and
//! writes it to the store as a [`StatusRow`] every few seconds; operators change a connector
//! through its [`ControlRow`] (pause, resume, restart, redrive), which every instance reads.
//! The store carries both, so the API answers the same whether the connector runs inside
//! `porch up` or as `porch connector meta` processes of their own.

use porch_schemas::{now_micros, Micros};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::retry::RetryClass;

/// The store table of instances' statuses: `~connectors/<name>/<instance>` → [`StatusRow`].
pub const STATUS_TABLE: &str = "connector_status";
/// The store table of operators' wishes: `<name>` → [`ControlRow`].
pub const CONTROL_TABLE: &str = "connector_control";

/// The key of an instance's status row.
pub fn status_key(connector: &str, instance: &str) -> String {
    format!("{}{instance}", status_prefix(connector))
}

/// The prefix of every status row of a connector (`~` is in no tenant id).
pub fn status_prefix(connector: &str) -> String {
    format!("~connectors/{connector}/")
}

/// How long an instance's status row counts as current: it writes one every
/// [`STATUS_EVERY`]; older rows are instances that stopped.
pub const STATUS_FRESH: Duration = Duration::from_secs(15);
pub const STATUS_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectorState {
    Running,
    Paused,
    /// Stopped by an error it cannot get past; `restart` clears it.
    Failed,
    /// No instance is running.
    Unassigned,
}

/// What an operator asked of a connector. Counters rather than flags, so that every instance
/// acts on a restart or a redrive once, whenever it reads the row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRow {
    pub paused: bool,
    pub restarts: u64,
    pub redrives: u64,
}

/// One instance's status as written to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRow {
    pub instance: String,
    pub state: ConnectorState,
    /// Records of its input not yet done (end offsets less committed positions, over the
    /// partitions it owns).
    pub lag: u64,
    pub in_flight: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Micros>,
    /// Requests by what became of them: live, rejected, unpublished, needs_reauth,
    /// dead_lettered, superseded.
    pub outcomes: BTreeMap<String, u64>,
    /// Failed calls that were retried, by class.
    pub retries: BTreeMap<String, u64>,
    /// Calls made, by kind.
    pub calls: BTreeMap<String, u64>,
    pub updated_at: Micros,
}

struct Inner {
    state: ConnectorState,
    lag: u64,
    in_flight: u64,
    last_error: Option<(String, Micros)>,
    outcomes: BTreeMap<String, u64>,
    retries: BTreeMap<String, u64>,
    calls: BTreeMap<String, u64>,
}

/// A running instance's status, shared by its loop, its calls and its metrics.
pub struct ConnectorStatus {
    name: String,
    inner: Mutex<Inner>,
    metrics: &'static Metrics,
}

/// The process's connector metrics, labelled by connector: one set, however many connectors run.
fn metrics() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The Prometheus collectors of every connector of the process, for the role's registry
/// (register them once).
pub fn collectors() -> Vec<Box<dyn prometheus::core::Collector>> {
    let m = metrics();
    vec![
        Box::new(m.calls.clone()),
        Box::new(m.call_seconds.clone()),
        Box::new(m.items.clone()),
        Box::new(m.lag.clone()),
    ]
}

struct Metrics {
    calls: prometheus::IntCounterVec,
    call_seconds: prometheus::HistogramVec,
    items: prometheus::IntCounterVec,
    lag: prometheus::IntGaugeVec,
}

impl Metrics {
    fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)
                .expect("metric names are valid")
        };
        Metrics {
            calls: counter(
                "porch_connector_calls_total",
                "Calls to a channel, by kind and outcome (ok, permanent, or the retry class).",
                &["connector", "kind", "outcome"],
            ),
            call_seconds: prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new(
                    "porch_connector_call_seconds",
                    "Time a call to a channel took, by kind.",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
                &["connector", "kind"],
            )
            .expect("metric names are valid"),
            items: counter(
                "porch_connector_requests_total",
                "Listing requests done, by what became of them.",
                &["connector", "outcome"],
            ),
            lag: prometheus::IntGaugeVec::new(
                prometheus::Opts::new(
                    "porch_connector_lag",
                    "Records of the connector's input not done yet.",
                ),
                &["connector"],
            )
            .expect("metric names are valid"),
        }
    }
}

/// A status as the API shows it: one instance's, or several summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub state: ConnectorState,
    pub lag: u64,
    pub in_flight: u64,
    pub last_error: Option<String>,
    pub outcomes: BTreeMap<String, u64>,
    pub retries: BTreeMap<String, u64>,
    pub calls: BTreeMap<String, u64>,
}

impl ConnectorStatus {
    pub fn new(name: &str) -> Self {
        ConnectorStatus {
            name: name.to_string(),
            inner: Mutex::new(Inner {
                state: ConnectorState::Running,
                lag: 0,
                in_flight: 0,
                last_error: None,
                outcomes: BTreeMap::new(),
                retries: RetryClass::ALL
                    .iter()
                    .map(|c| (c.as_str().to_string(), 0))
                    .collect(),
                calls: BTreeMap::new(),
            }),
            metrics: metrics(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn call_done(&self, kind: &str, outcome: &str, took: Duration) {
        self.metrics
            .calls
            .with_label_values(&[&self.name, kind, outcome])
            .inc();
        self.metrics
            .call_seconds
            .with_label_values(&[&self.name, kind])
            .observe(took.as_secs_f64());
        self.with(|i| *i.calls.entry(kind.to_string()).or_default() += 1);
    }

    pub fn retried(&self, class: RetryClass) {
        self.with(|i| *i.retries.entry(class.as_str().to_string()).or_default() += 1);
    }

    /// A request is done: `outcome` is live, rejected, unpublished, dead_lettered or superseded.
    pub fn request_done(&self, outcome: &str) {
        self.metrics
            .items
            .with_label_values(&[&self.name, outcome])
            .inc();
        self.with(|i| *i.outcomes.entry(outcome.to_string()).or_default() += 1);
    }

    /// The last error, kept as said: callers never put secrets into errors.
    pub fn set_last_error(&self, error: &str) {
        self.with(|i| i.last_error = Some((error.to_string(), now_micros())));
    }

    pub fn set_state(&self, state: ConnectorState) {
        self.with(|i| i.state = state);
    }

    pub fn state(&self) -> ConnectorState {
        self.with(|i| i.state)
    }

    pub fn set_lag(&self, lag: u64) {
        self.metrics
            .lag
            .with_label_values(&[&self.name])
            .set(lag as i64);
        self.with(|i| i.lag = lag);
    }

    pub fn set_in_flight(&self, n: u64) {
        self.with(|i| i.in_flight = n);
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        self.with(|i| StatusSnapshot {
            state: i.state,
            lag: i.lag,
            in_flight: i.in_flight,
            last_error: i.last_error.as_ref().map(|(e, _)| e.clone()),
            outcomes: i.outcomes.clone(),
            retries: i.retries.clone(),
            calls: i.calls.clone(),
        })
    }

    /// The row this instance writes to the store.
    pub fn row(&self, instance: &str) -> StatusRow {
        self.with(|i| StatusRow {
            instance: instance.to_string(),
            state: i.state,
            lag: i.lag,
            in_flight: i.in_flight,
            last_error: i.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: i.last_error.as_ref().map(|(_, at)| *at),
            outcomes: i.outcomes.clone(),
            retries: i.retries.clone(),
            calls: i.calls.clone(),
            updated_at: now_micros(),
        })
    }
}

/// The connector's status over its instances' rows: counts and lag summed, the last error the
/// newest; the state FAILED if any current instance failed, PAUSED once every current instance
/// has paused (a pause asked for and not yet taken up shows RUNNING), UNASSIGNED if none is
/// current.
pub fn combine(rows: &[StatusRow], now: Micros) -> StatusSnapshot {
    let fresh: Vec<&StatusRow> = rows
        .iter()
        .filter(|r| now - r.updated_at <= STATUS_FRESH.as_micros() as i64)
        .collect();
    let sum = |pick: fn(&StatusRow) -> &BTreeMap<String, u64>| {
        let mut out = BTreeMap::new();
        for r in rows {
            for (k, v) in pick(r) {
                *out.entry(k.clone()).or_insert(0) += v;
            }
        }
        out
    };
    let state = if fresh.is_empty() {
        ConnectorState::Unassigned
    } else if fresh.iter().any(|r| r.state == ConnectorState::Failed) {
        ConnectorState::Failed
    } else if fresh.iter().all(|r| r.state == ConnectorState::Paused) {
        ConnectorState::Paused
    } else {
        ConnectorState::Running
    };
    StatusSnapshot {
        state,
        lag: fresh.iter().map(|r| r.lag).sum(),
        in_flight: fresh.iter().map(|r| r.in_flight).sum(),
        last_error: rows
            .iter()
            .filter(|r| r.last_error.is_some())
            .max_by_key(|r| r.last_error_at)
            .and_then(|r| r.last_error.clone()),
        outcomes: sum(|r| &r.outcomes),
        retries: sum(|r| &r.retries),
        calls: sum(|r| &r.calls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(instance: &str, state: ConnectorState, lag: u64, at: Micros) -> StatusRow {
        StatusRow {
            instance: instance.into(),
            state,
            lag,
            in_flight: 0,
            last_error: Some(format!("error of {instance}")),
            last_error_at: Some(at),
            outcomes: [("live".to_string(), 2)].into_iter().collect(),
            retries: BTreeMap::new(),
            calls: BTreeMap::new(),
            updated_at: at,
        }
    }

    #[test]
    fn instances_add_up_and_the_newest_error_is_told() {
        let now = 100_000_000;
        let rows = [
            row("a", ConnectorState::Running, 3, now - 1_000),
            row("b", ConnectorState::Running, 4, now - 2_000),
        ];
        let s = combine(&rows, now);
        assert_eq!((s.state, s.lag), (ConnectorState::Running, 7));
        assert_eq!(s.outcomes["live"], 4);
        assert_eq!(s.last_error.as_deref(), Some("error of a"));
    }

    #[test]
    fn the_state_says_failed_then_paused_then_unassigned() {
        let now = 100_000_000;
        let asked = [row("a", ConnectorState::Running, 0, now)];
        assert_eq!(
            combine(&asked, now).state,
            ConnectorState::Running,
            "paused once the instance took the pause up"
        );
        let taken = [row("a", ConnectorState::Paused, 0, now)];
        assert_eq!(combine(&taken, now).state, ConnectorState::Paused);
        let failed = [
            row("a", ConnectorState::Running, 0, now),
            row("b", ConnectorState::Failed, 0, now),
        ];
        assert_eq!(combine(&failed, now).state, ConnectorState::Failed);
        let stale = [row("a", ConnectorState::Running, 9, now - 60_000_000)];
        let s = combine(&stale, now);
        assert_eq!((s.state, s.lag), (ConnectorState::Unassigned, 0));
    }
}
