//! Prometheus metrics of the registry server.

use porch_schemas::RegistryState;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) latency: HistogramVec,
    pub(crate) registrations: IntCounterVec,
    schemas: IntGauge,
    subjects: IntGauge,
    ready: IntGauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "porch_registry_http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "porch_registry_http_request_duration_seconds",
                "Time to answer an HTTP request, by route",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["route"],
        )
        .expect("metric");
        let registrations = IntCounterVec::new(
            Opts::new(
                "porch_registry_registrations_total",
                "Schema registrations, by outcome (new, existing, incompatible, invalid, failed)",
            ),
            &["outcome"],
        )
        .expect("metric");
        let schemas =
            IntGauge::new("porch_registry_schemas", "Distinct schemas (ids) held").expect("metric");
        let subjects = IntGauge::new("porch_registry_subjects", "Subjects held").expect("metric");
        let ready = IntGauge::new(
            "porch_registry_ready",
            "1 once the storage has been read to its end",
        )
        .expect("metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(registrations.clone()),
            Box::new(schemas.clone()),
            Box::new(subjects.clone()),
            Box::new(ready.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            latency,
            registrations,
            schemas,
            subjects,
            ready,
        }
    }

    /// The text exposition, with the gauges read from `state` now.
    pub(crate) fn render(&self, state: &RegistryState, ready: bool) -> String {
        self.schemas.set(state.schema_count() as i64);
        self.subjects.set(state.subjects().count() as i64);
        self.ready.set(i64::from(ready));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}
