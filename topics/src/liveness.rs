//! Knowing when a Kafka client has lost its cluster for good, so that it can be replaced.
//!
//! librdkafka (2.10 and later) forgets the brokers a Metadata response leaves out, and a
//! broker in controlled shutdown answers Metadata without itself. When the only broker of a
//! cluster restarts (or every broker does), a client that asks at that moment is left with
//! no broker (with `metadata.recovery.strategy=none`, see [`crate::client_config`], it never
//! looks for one again: "no usable brokers", confluentinc/librdkafka#5301), or with a
//! broker handle that is being taken down and never finishes ("Handle is terminating in
//! state INIT"), while its coordinator handles wait for an address forever. Either way the
//! client has no connection to any broker while the cluster is back and answering others.
//!
//! That is what a [`Liveness`] looks for: the client's statistics say whether any broker
//! connection is up; when none has been for a while, it checks that the cluster answers at
//! all (a TCP connection to a bootstrap address), and once the cluster has been answering for
//! a grace period while the client still has no connection, the client is lost and the role
//! owning it makes a new one. A cluster that is down loses no client: they wait for it.

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// How long a client may have no broker connection before the cluster is checked.
const SUSPECT_AFTER: Duration = Duration::from_secs(5);

/// How long the cluster must have been answering, with the client still unconnected, before
/// the client is taken as lost: longer than librdkafka's longest reconnect backoff (10 s),
/// so a client that is merely waiting to reconnect is not replaced.
const GRACE: Duration = Duration::from_secs(15);

/// How often the cluster is checked while a client is suspect.
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// What a client's statistics say about its broker connections. Shared between the
/// client's context, which is told, and its owner, which asks.
#[derive(Clone, Default)]
pub struct Liveness(Arc<State>);

#[derive(Default)]
struct State {
    /// `host:port` of the cluster's bootstrap servers (none: the client is never lost).
    bootstrap: Vec<String>,
    /// Since when (ms) no broker connection has been up; 0 while one is.
    unconnected_since: AtomicU64,
    /// Since when (ms) the cluster has answered while the client had no connection; 0 if not.
    reachable_since: AtomicU64,
    /// When (ms) the cluster was last checked.
    last_probe: AtomicU64,
    /// Once lost, always lost (a producer's waiting records may time out meanwhile, which
    /// must not make it look well again before it is replaced).
    lost: AtomicBool,
}

#[derive(serde::Deserialize)]
struct Stats {
    /// producer or consumer.
    #[serde(default, rename = "type")]
    kind: String,
    /// Messages waiting in a producer's queues.
    #[serde(default)]
    msg_cnt: u64,
    #[serde(default)]
    brokers: HashMap<String, BrokerStats>,
}

#[derive(serde::Deserialize)]
struct BrokerStats {
    /// learned, configured, internal or logical (a coordinator handle).
    #[serde(default)]
    source: String,
    #[serde(default)]
    state: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
        .max(1)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Whether anything listens at one of the bootstrap addresses.
fn cluster_answers(bootstrap: &[String]) -> bool {
    bootstrap.iter().any(|server| {
        server.to_socket_addrs().is_ok_and(|mut addrs| {
            addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
        })
    })
}

impl Liveness {
    /// Makes `cfg` report the statistics a [`Liveness`] reads, and returns the one for the
    /// client made from it (to be given to, or kept by, its context).
    pub fn watch(cfg: &mut ClientConfig) -> Liveness {
        cfg.set("statistics.interval.ms", ms(STATS_INTERVAL).to_string());
        let bootstrap = cfg
            .get("bootstrap.servers")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Liveness(Arc::new(State {
            bootstrap,
            ..State::default()
        }))
    }

    /// Takes in one statistics report of the client.
    pub fn observe(&self, statistics: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<Stats>(statistics) else {
            return;
        };
        let connected = stats
            .brokers
            .values()
            .any(|b| (b.source == "learned" || b.source == "configured") && b.state == "UP");
        // A producer connects only when it has something to send (librdkafka's sparse
        // connections), so an idle one without a connection is well.
        let idle = stats.kind == "producer" && stats.msg_cnt == 0;
        self.record(connected || idle, now_ms());
    }

    fn record(&self, connected: bool, at_ms: u64) {
        let s = &self.0;
        if connected {
            s.unconnected_since.store(0, Ordering::Relaxed);
            s.reachable_since.store(0, Ordering::Relaxed);
        } else {
            // Keeps the first report that found none.
            let _ = s.unconnected_since.compare_exchange(
                0,
                at_ms,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// The client has had no broker connection for a while although the cluster answers:
    /// it will not find one again by itself. A client whose statistics nobody serves (it is
    /// not polled) is never taken as lost.
    pub fn lost(&self) -> bool {
        let bootstrap = &self.0.bootstrap;
        self.lost_at(now_ms(), || cluster_answers(bootstrap))
    }

    fn lost_at(&self, now: u64, probe: impl FnOnce() -> bool) -> bool {
        let s = &self.0;
        if s.lost.load(Ordering::Relaxed) {
            return true;
        }
        let since = s.unconnected_since.load(Ordering::Relaxed);
        if s.bootstrap.is_empty() || since == 0 || now.saturating_sub(since) < ms(SUSPECT_AFTER) {
            return false;
        }
        let last = s.last_probe.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= ms(PROBE_EVERY)
            && s.last_probe
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if probe() {
                let _ = s.reachable_since.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            } else {
                s.reachable_since.store(0, Ordering::Relaxed);
            }
        }
        let reachable = s.reachable_since.load(Ordering::Relaxed);
        let lost = reachable != 0 && now.saturating_sub(reachable) >= ms(GRACE);
        if lost {
            s.lost.store(true, Ordering::Relaxed);
        }
        lost
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
    pub fn new(cfg: ClientConfig) -> Result<Self, KafkaError> {
        let current = RwLock::new(Self::create(&cfg)?);
        Ok(Self { cfg, current })
    }

    fn create(cfg: &ClientConfig) -> Result<Watched, KafkaError> {
        let mut cfg = cfg.clone();
        let liveness = Liveness::watch(&mut cfg);
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
                    tracing::error!("a producer has no broker connection while the cluster answers; replaced by a new one");
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

    fn watched() -> Liveness {
        Liveness::watch(ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9"))
    }

    fn report(brokers: &[(&str, &str, &str)]) -> Vec<u8> {
        let brokers: serde_json::Map<String, serde_json::Value> = brokers
            .iter()
            .map(|(name, source, state)| {
                let b = serde_json::json!({ "source": source, "state": state });
                (name.to_string(), b)
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "name": "porch", "brokers": brokers })).unwrap()
    }

    const UNCONNECTED: &[(&str, &str, &str)] = &[
        ("127.0.0.1:9092/1", "learned", "INIT"),
        ("GroupCoordinator", "logical", "UP"),
    ];

    #[test]
    fn a_client_with_a_connection_up_is_not_lost() {
        let l = watched();
        l.observe(&report(&[("127.0.0.1:9092/1", "learned", "UP")]));
        assert!(!l.lost_at(now_ms() + 600_000, || true));
    }

    #[test]
    fn a_client_unconnected_while_the_cluster_answers_is_lost_after_the_grace() {
        let l = watched();
        l.observe(&report(UNCONNECTED));
        let t0 = l.0.unconnected_since.load(Ordering::Relaxed);
        assert!(t0 > 0, "a coordinator handle is no connection of its own");
        let suspect = t0 + ms(SUSPECT_AFTER);
        assert!(!l.lost_at(suspect - 1, || panic!("not checked before it is suspect")));
        assert!(
            !l.lost_at(suspect, || true),
            "the cluster answers: the grace starts"
        );
        assert!(!l.lost_at(suspect + ms(GRACE) - 1, || true));
        assert!(l.lost_at(suspect + ms(GRACE), || true));
        // Lost for good, whatever comes after: the client is to be replaced.
        l.observe(&report(&[("127.0.0.1:9092/1", "learned", "UP")]));
        assert!(l.lost_at(suspect + ms(GRACE) * 2, || false));
    }

    #[test]
    fn a_connection_up_again_within_the_grace_clears_the_suspicion() {
        let l = watched();
        l.observe(&report(UNCONNECTED));
        let t0 = l.0.unconnected_since.load(Ordering::Relaxed);
        assert!(!l.lost_at(t0 + ms(SUSPECT_AFTER), || true));
        l.observe(&report(&[("127.0.0.1:9092/1", "learned", "UP")]));
        assert!(!l.lost_at(t0 + ms(SUSPECT_AFTER) + ms(GRACE) * 2, || true));
    }

    #[test]
    fn an_idle_producer_without_a_connection_is_well_and_a_waiting_one_is_not() {
        let producer = |msg_cnt: u64| {
            let mut r: serde_json::Value = serde_json::from_slice(&report(UNCONNECTED)).unwrap();
            r["type"] = "producer".into();
            r["msg_cnt"] = msg_cnt.into();
            serde_json::to_vec(&r).unwrap()
        };
        let l = watched();
        l.observe(&producer(0));
        assert_eq!(l.0.unconnected_since.load(Ordering::Relaxed), 0);
        l.observe(&producer(3));
        assert!(l.0.unconnected_since.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn no_client_is_lost_while_the_cluster_is_down() {
        let l = watched();
        l.observe(&report(UNCONNECTED));
        let t0 = l.0.unconnected_since.load(Ordering::Relaxed);
        for step in 0..100 {
            let now = t0 + ms(SUSPECT_AFTER) + step * ms(PROBE_EVERY);
            assert!(!l.lost_at(now, || false));
        }
        // The cluster comes back: the grace counts from then, not from the outage.
        let back = t0 + ms(SUSPECT_AFTER) + 100 * ms(PROBE_EVERY);
        assert!(!l.lost_at(back, || true));
        assert!(!l.lost_at(back + ms(GRACE) - 1, || true));
        assert!(l.lost_at(back + ms(GRACE), || true));
    }

    #[test]
    fn a_client_without_statistics_or_bootstrap_is_never_lost() {
        let l = watched();
        l.observe(b"not json");
        assert!(!l.lost_at(now_ms() + 600_000, || true));
        let unwatched = Liveness::default();
        unwatched.observe(&report(UNCONNECTED));
        assert!(!unwatched.lost_at(now_ms() + 600_000, || true));
    }

    #[test]
    fn the_cluster_answers_where_something_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().to_string();
        assert!(cluster_answers(std::slice::from_ref(&open)));
        assert!(cluster_answers(&["127.0.0.1:9".into(), open.clone()]));
        drop(listener);
        assert!(!cluster_answers(&[open]));
    }
}
