//! Knowing when a Kafka client has lost its cluster for good, so that it can be replaced.
//!
//! librdkafka (2.10 and later) forgets every broker a Metadata response leaves out. A broker
//! in controlled shutdown answers Metadata without itself, so when the only broker of a
//! cluster restarts (or every broker does), a client that asks at that moment is left
//! knowing no broker at all; with `metadata.recovery.strategy=none` (see
//! [`crate::client_config`]) it never looks for one again, and logs "no usable brokers" for
//! as long as it lives (confluentinc/librdkafka#5301). The client's statistics say how many
//! brokers it knows; a [`Liveness`] reads them, and the role owning the client makes a new
//! one when [`Liveness::lost`] says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{
    DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::{ClientConfig, ClientContext};

/// How often a watched client reports its statistics.
const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// How long a client may know no broker before it is taken as lost: a few reports, so that a
/// passing state between two metadata responses is not mistaken for it.
const LOST_AFTER: Duration = Duration::from_secs(6);

/// What a client's statistics say about the brokers it knows. Shared between the client's
/// context, which is told, and its owner, which asks.
#[derive(Clone, Default)]
pub struct Liveness(Arc<AtomicU64>);

#[derive(serde::Deserialize)]
struct Stats {
    #[serde(default)]
    brokers: HashMap<String, BrokerStats>,
}

#[derive(serde::Deserialize)]
struct BrokerStats {
    /// learned, configured, internal or logical (a coordinator handle standing for one of
    /// the others).
    #[serde(default)]
    source: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
        .max(1)
}

impl Liveness {
    /// Makes `cfg` report the statistics a [`Liveness`] reads.
    pub fn watch(cfg: &mut ClientConfig) -> &mut ClientConfig {
        cfg.set(
            "statistics.interval.ms",
            STATS_INTERVAL.as_millis().to_string(),
        )
    }

    /// Takes in one statistics report of the client.
    pub fn observe(&self, statistics: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<Stats>(statistics) else {
            return;
        };
        let known = stats
            .brokers
            .values()
            .filter(|b| b.source == "learned" || b.source == "configured")
            .count();
        self.record(known, now_ms());
    }

    fn record(&self, known_brokers: usize, at_ms: u64) {
        if known_brokers > 0 {
            self.0.store(0, Ordering::Relaxed);
        } else {
            // Keeps the first report that found none.
            let _ = self
                .0
                .compare_exchange(0, at_ms, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The client has known no broker for a while: it will not find one again by itself.
    /// A client whose statistics nobody serves (it is not polled) is never taken as lost.
    pub fn lost(&self) -> bool {
        self.lost_at(now_ms())
    }

    fn lost_at(&self, now_ms: u64) -> bool {
        let since = self.0.load(Ordering::Relaxed);
        since != 0 && now_ms.saturating_sub(since) >= LOST_AFTER.as_millis() as u64
    }
}

/// A context that only watches: for clients that need nothing else from theirs.
impl ClientContext for Liveness {
    fn stats_raw(&self, statistics: &[u8]) {
        self.observe(statistics);
    }
}

impl ConsumerContext for Liveness {}

impl ProducerContext for Liveness {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// A producer that sends on a new one, made from the same settings, once it has lost its
/// cluster for good.
pub struct WatchedProducer {
    cfg: ClientConfig,
    current: RwLock<Watched>,
}

#[derive(Clone)]
struct Watched {
    producer: FutureProducer<Liveness>,
    liveness: Liveness,
}

impl WatchedProducer {
    pub fn new(mut cfg: ClientConfig) -> Result<Self, KafkaError> {
        Liveness::watch(&mut cfg);
        let current = RwLock::new(Self::create(&cfg)?);
        Ok(Self { cfg, current })
    }

    fn create(cfg: &ClientConfig) -> Result<Watched, KafkaError> {
        let liveness = Liveness::default();
        let producer = cfg.create_with_context(liveness.clone())?;
        Ok(Watched { producer, liveness })
    }

    /// The producer to send with: a new one if the current one is lost, whose waiting
    /// records are then failed at once (their senders try again on the new one).
    fn get(&self) -> Watched {
        let current = self.current.read().expect("producer lock").clone();
        if !current.liveness.lost() {
            return current;
        }
        let mut slot = self.current.write().expect("producer lock");
        if slot.liveness.lost() {
            match Self::create(&self.cfg) {
                Ok(fresh) => {
                    tracing::error!("a producer knows no broker any more; replaced by a new one");
                    let old = std::mem::replace(&mut *slot, fresh);
                    old.producer
                        .purge(PurgeConfig::default().queue().inflight());
                }
                Err(e) => tracing::error!(error = %e, "cannot create a new producer"),
            }
        }
        slot.clone()
    }

    /// Sends the record `make` builds and waits for its delivery; a record that was waiting
    /// in a producer found lost is sent once more on the new one.
    pub async fn send<'a, K, P>(
        &self,
        make: impl Fn() -> FutureRecord<'a, K, P>,
        queue_timeout: Duration,
    ) -> Result<Delivery, KafkaError>
    where
        K: ToBytes + ?Sized + 'a,
        P: ToBytes + ?Sized + 'a,
    {
        let mut again = true;
        loop {
            let watched = self.get();
            match watched.producer.send(make(), queue_timeout).await {
                Ok(delivery) => return Ok(delivery),
                Err(_) if again && watched.liveness.lost() => again = false,
                Err((e, _)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(brokers: &[(&str, &str)]) -> Vec<u8> {
        let brokers: serde_json::Map<String, serde_json::Value> = brokers
            .iter()
            .map(|(name, source)| (name.to_string(), serde_json::json!({ "source": source })))
            .collect();
        serde_json::to_vec(&serde_json::json!({ "name": "porch", "brokers": brokers })).unwrap()
    }

    #[test]
    fn a_client_that_knows_a_broker_is_not_lost() {
        let l = Liveness::default();
        l.observe(&report(&[
            ("127.0.0.1:9092/1", "learned"),
            ("GroupCoordinator", "logical"),
        ]));
        assert!(!l.lost_at(now_ms() + 60_000));
    }

    #[test]
    fn a_client_left_with_only_coordinator_handles_is_lost_after_a_while() {
        let l = Liveness::default();
        let only_logical = report(&[("GroupCoordinator", "logical"), (":0/internal", "internal")]);
        l.observe(&only_logical);
        let t0 = l.0.load(Ordering::Relaxed);
        assert!(t0 > 0);
        assert!(!l.lost_at(t0 + 1_000), "not at the first report");
        l.observe(&only_logical);
        assert_eq!(l.0.load(Ordering::Relaxed), t0, "the first report is kept");
        assert!(l.lost_at(t0 + LOST_AFTER.as_millis() as u64));
        // A broker learned again (a re-bootstrap) clears it.
        l.observe(&report(&[("127.0.0.1:9092/bootstrap", "configured")]));
        assert!(!l.lost_at(t0 + 60_000));
    }

    #[test]
    fn a_client_never_reported_on_or_with_unreadable_statistics_is_not_lost() {
        let l = Liveness::default();
        assert!(!l.lost_at(now_ms() + 60_000));
        l.observe(b"not json");
        assert!(!l.lost_at(now_ms() + 60_000));
    }
}
