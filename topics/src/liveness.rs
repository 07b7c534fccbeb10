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
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders, ToBytes};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{
    DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::types::RDKafkaErrorCode;
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
    /// The listeners speak TLS (`security.protocol` SSL or SASL_SSL): the check cannot send
    /// a plaintext request and takes an accepted connection as the cluster's answer.
    tls: bool,
    /// Since when (ms) no broker connection has been up; 0 while one is.
    unconnected_since: AtomicU64,
    /// Since when (ms) the cluster has answered while the client had no connection; 0 if not.
    reachable_since: AtomicU64,
    /// When (ms) the cluster was last checked.
    last_probe: AtomicU64,
    /// Once lost, always lost (a producer's waiting records may time out meanwhile, which
    /// must not make it look well again before it is replaced).
    lost: AtomicBool,
    errors: std::sync::Mutex<Errors>,
}

/// What the client reported last.
#[derive(Default)]
struct Errors {
    /// The last error report, and when (ms) it was last logged.
    logged: Option<(String, u64)>,
    /// The last error report that names a cause (an authentication or TLS failure, a refused
    /// connection), for errors that otherwise say only "broker transport failure": librdkafka's
    /// summary that all brokers are down (AllBrokersDown) does not replace it.
    cause: Option<String>,
}

/// How often the same error of a client is logged at error level: librdkafka reports a
/// refused connection on every retry (each second or so) while a broker is away.
const REPEAT_ERROR_EVERY: Duration = Duration::from_secs(30);

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

/// Milliseconds on a monotonic clock (never 0, which means "not set" in [`State`]).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// How long the cluster check may wait for one broker's answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// `host:port` of each bootstrap server, as librdkafka reads them: a `PROTOCOL://` prefix
/// dropped, port 9092 where none is given.
fn bootstrap_addresses(servers: &str) -> Vec<String> {
    servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s.split_once("://").map_or(s, |(_, rest)| rest);
            let has_port = s
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.ends_with(':') && port.parse::<u16>().is_ok());
            if has_port {
                s.to_string()
            } else {
                format!("{s}:9092")
            }
        })
        .collect()
}

/// Whether a broker at one of the bootstrap addresses serves requests: it answers an
/// ApiVersions request (v0), which a broker still starting (its port open, its requests not
/// yet served) or a port with nothing behind it does not. A TLS listener would take that
/// request for a broken handshake: there, a connection accepted is the answer (porch links
/// no TLS library of its own, and the grace period covers a broker that accepts before it
/// serves).
fn cluster_answers(bootstrap: &[String], tls: bool) -> bool {
    bootstrap.iter().any(|server| {
        server.to_socket_addrs().is_ok_and(|mut addrs| {
            addrs.any(|a| {
                if tls {
                    TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok()
                } else {
                    api_versions_answered(&a)
                }
            })
        })
    })
}

fn api_versions_answered(addr: &std::net::SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(addr, PROBE_TIMEOUT) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(PROBE_TIMEOUT));
    const CORRELATION: i32 = 0x706f_7263;
    let client = b"porch-liveness";
    // Request header v1: api key 18 (ApiVersions), version 0, correlation id, client id.
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&CORRELATION.to_be_bytes());
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    if stream.write_all(&request).is_err() {
        return false;
    }
    // Response: size, correlation id, error code.
    let mut head = [0u8; 10];
    stream.read_exact(&mut head).is_ok()
        && i32::from_be_bytes(head[4..8].try_into().expect("4 bytes")) == CORRELATION
        && i16::from_be_bytes(head[8..10].try_into().expect("2 bytes")) == 0
}

/// Drops a replaced client on a thread of its own: librdkafka's close and teardown block
/// (a lost consumer's close may wait for a coordinator it never finds), which must not hold
/// up a processor's loop or a runtime's thread. If no thread can be had, it is dropped here.
pub fn drop_aside<T: Send + 'static>(name: &str, client: T) {
    let _ = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || drop(client));
}

impl Liveness {
    /// Makes `cfg` report the statistics a [`Liveness`] reads, and returns the one for the
    /// client made from it (to be given to, or kept by, its context).
    pub fn watch(cfg: &mut ClientConfig) -> Liveness {
        cfg.set("statistics.interval.ms", ms(STATS_INTERVAL).to_string());
        let bootstrap = bootstrap_addresses(cfg.get("bootstrap.servers").unwrap_or_default());
        let tls = cfg
            .get("security.protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("ssl") || p.eq_ignore_ascii_case("sasl_ssl"));
        Liveness(Arc::new(State {
            bootstrap,
            tls,
            ..State::default()
        }))
    }

    /// Logs an error librdkafka reported for the client and keeps it as its last.
    /// The same error again within [`REPEAT_ERROR_EVERY`] of its last logging is logged at
    /// debug level only.
    pub fn report_error(&self, error: KafkaError, reason: &str) {
        let summary = matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown));
        if self.keep_error(reason, summary, now_ms()) {
            tracing::error!("librdkafka: {error}: {reason}");
        } else {
            tracing::debug!("librdkafka: {error}: {reason}");
        }
    }

    /// Keeps `reason` as the last error (as its cause too, unless it is a `summary` that all
    /// brokers are down and a cause is known); true if it is to be logged (not the same error
    /// as one logged less than [`REPEAT_ERROR_EVERY`] before `at_ms`).
    fn keep_error(&self, reason: &str, summary: bool, at_ms: u64) -> bool {
        let mut errors = self.0.errors.lock().expect("errors lock");
        if errors.cause.is_none() || !summary {
            errors.cause = Some(reason.to_string());
        }
        let last = &mut errors.logged;
        let repeated = last.as_ref().is_some_and(|(previous, logged_at)| {
            previous == reason && at_ms.saturating_sub(*logged_at) < ms(REPEAT_ERROR_EVERY)
        });
        if !repeated {
            *last = Some((reason.to_string(), at_ms));
        }
        !repeated
    }

    /// The last error librdkafka reported for the client that says why, if any: a summary
    /// that all brokers are down only when nothing else was reported.
    pub fn last_error(&self) -> Option<String> {
        self.0.errors.lock().expect("errors lock").cause.clone()
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

    /// Whether the client was found lost (by [`Liveness::lost`]); never checks the cluster.
    pub fn found_lost(&self) -> bool {
        self.0.lost.load(Ordering::Relaxed)
    }

    /// [`Liveness::lost`] for async code: the cluster check blocks, so it runs off the
    /// runtime's threads.
    pub async fn lost_async(&self) -> bool {
        if self.found_lost() {
            return true;
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.lost())
            .await
            .unwrap_or(false)
    }

    /// The client has had no broker connection for a while although the cluster answers:
    /// it will not find one again by itself. A client whose statistics nobody serves (it is
    /// not polled) is never taken as lost.
    pub fn lost(&self) -> bool {
        let (bootstrap, tls) = (&self.0.bootstrap, self.0.tls);
        self.lost_at(now_ms(), || cluster_answers(bootstrap, tls))
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
                // A mark left from before this spell without a connection does not count.
                let r = s.reachable_since.load(Ordering::Relaxed);
                if r == 0 || r < since {
                    s.reachable_since.store(now, Ordering::Relaxed);
                }
            } else {
                s.reachable_since.store(0, Ordering::Relaxed);
            }
        }
        let reachable = s.reachable_since.load(Ordering::Relaxed);
        let lost =
            reachable != 0 && reachable >= since && now.saturating_sub(reachable) >= ms(GRACE);
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

    fn error(&self, error: KafkaError, reason: &str) {
        self.report_error(error, reason);
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
        if !current.liveness.found_lost() {
            return current;
        }
        let (old, current) = {
            let mut slot = self.current.write().expect("producer lock");
            if !slot.liveness.found_lost() {
                return slot.clone();
            }
            match Self::create(&self.cfg) {
                Ok(fresh) => {
                    tracing::error!("a producer has no broker connection while the cluster answers; replaced by a new one");
                    (std::mem::replace(&mut *slot, fresh), slot.clone())
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot create a new producer");
                    return slot.clone();
                }
            }
        };
        // Its waiting records fail at once; their senders send them again on the new one.
        old.producer
            .purge(PurgeConfig::default().queue().inflight());
        // The last handle may be dropped here.
        drop_aside("lost-producer", old);
        current
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
            let delivery = watched.producer.send(make(), queue_timeout);
            tokio::pin!(delivery);
            // While the record waits, the producer is looked at every few seconds: one found
            // lost is replaced, which fails the record at once.
            let sent = loop {
                tokio::select! {
                    sent = &mut delivery => break sent,
                    () = tokio::time::sleep(STATS_INTERVAL) => {
                        if watched.liveness.lost_async().await {
                            self.get();
                        }
                    }
                }
            };
            match sent {
                Ok(delivery) => return Ok(delivery),
                Err(_) if again && watched.liveness.found_lost() => again = false,
                Err((e, _)) => return Err(e),
            }
        }
    }
}

impl WatchedProducer {
    /// Sends one record with its headers to a given partition of `topic` (a cluster name) and
    /// waits for its delivery.
    pub async fn send_to(
        &self,
        topic: &str,
        partition: u32,
        key: &[u8],
        value: &[u8],
        headers: &[(String, Vec<u8>)],
        queue_timeout: Duration,
    ) -> Result<Delivery, KafkaError> {
        self.send(
            || {
                let mut owned = OwnedHeaders::new();
                for (k, v) in headers {
                    owned = owned.insert(Header {
                        key: k,
                        value: Some(v.as_slice()),
                    });
                }
                FutureRecord::to(topic)
                    .partition(partition as i32)
                    .key(key)
                    .payload(value)
                    .headers(owned)
            },
            queue_timeout,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched() -> Liveness {
        Liveness::watch(ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9"))
    }

    #[test]
    fn the_same_error_is_logged_again_only_after_a_while() {
        let l = watched();
        let every = ms(REPEAT_ERROR_EVERY);
        assert_eq!(l.last_error(), None);
        assert!(l.keep_error("connection refused", false, 1_000));
        assert!(!l.keep_error("connection refused", false, 2_000));
        assert!(l.keep_error("SASL authentication failed", false, 3_000));
        assert_eq!(
            l.last_error().as_deref(),
            Some("SASL authentication failed")
        );
        assert!(!l.keep_error("SASL authentication failed", false, 3_000 + every - 1));
        assert!(l.keep_error("SASL authentication failed", false, 3_000 + every));
    }

    #[test]
    fn the_summary_that_brokers_are_down_does_not_hide_why() {
        let l = watched();
        assert!(l.keep_error("1/1 brokers are down", true, 1_000));
        assert_eq!(l.last_error().as_deref(), Some("1/1 brokers are down"));
        l.keep_error(
            "Connect to ipv4#127.0.0.1:9 failed: Connection refused",
            false,
            2_000,
        );
        assert!(l.keep_error("1/1 brokers are down", true, 3_000));
        assert_eq!(
            l.last_error().as_deref(),
            Some("Connect to ipv4#127.0.0.1:9 failed: Connection refused")
        );
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
    fn bootstrap_servers_are_read_as_librdkafka_reads_them() {
        assert_eq!(
            bootstrap_addresses(" PLAINTEXT://kafka-1:9093, kafka-2 ,127.0.0.1:9092,[::1]:9094,,"),
            vec![
                "kafka-1:9093",
                "kafka-2:9092",
                "127.0.0.1:9092",
                "[::1]:9094"
            ]
        );
    }

    /// A port that answers ApiVersions (error 0) with `answer`, or accepts and stays silent.
    fn fake_broker(answer: Option<i16>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut stream in listener.incoming().flatten() {
                if let Some(error) = answer {
                    let mut head = [0u8; 12];
                    if stream.read_exact(&mut head).is_ok() {
                        let size = i32::from_be_bytes(head[0..4].try_into().unwrap()) as usize;
                        let mut rest = vec![0u8; size - 8];
                        let _ = stream.read_exact(&mut rest);
                        let mut reply = 10i32.to_be_bytes().to_vec();
                        reply.extend_from_slice(&head[8..12]); // correlation id
                        reply.extend_from_slice(&error.to_be_bytes());
                        reply.extend_from_slice(&0i32.to_be_bytes()); // no api keys
                        let _ = stream.write_all(&reply);
                    }
                }
                held.push(stream);
            }
        });
        at
    }

    #[test]
    fn tls_listeners_are_known_from_the_security_protocol() {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", "127.0.0.1:9");
        assert!(!Liveness::watch(&mut cfg).0.tls);
        cfg.set("security.protocol", "SASL_SSL");
        assert!(Liveness::watch(&mut cfg).0.tls);
        cfg.set("security.protocol", "ssl");
        assert!(Liveness::watch(&mut cfg).0.tls);
        cfg.set("security.protocol", "sasl_plaintext");
        assert!(!Liveness::watch(&mut cfg).0.tls);
    }

    #[test]
    fn the_cluster_answers_where_a_broker_answers_api_versions() {
        let serving = fake_broker(Some(0));
        let silent = fake_broker(None);
        let failing = fake_broker(Some(35));
        assert!(cluster_answers(std::slice::from_ref(&serving), false));
        assert!(cluster_answers(&["127.0.0.1:9".into(), serving], false));
        assert!(
            !cluster_answers(std::slice::from_ref(&silent), false),
            "a port open but not served"
        );
        assert!(!cluster_answers(&[failing], false), "an error answer");
        assert!(
            !cluster_answers(&["127.0.0.1:9".into()], false),
            "nothing listens"
        );
        // Over TLS an accepted connection answers; nothing listening still does not.
        assert!(cluster_answers(&[silent], true));
        assert!(!cluster_answers(&["127.0.0.1:9".into()], true));
    }
}
