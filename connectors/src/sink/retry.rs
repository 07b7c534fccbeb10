//! Every call to a channel is classified before anything else happens: retry (rate limits, the
//! channel's own throttling codes, 5xx, timeouts, a broken connection) with backoff that honours
//! what the channel said (Retry-After, usage headers), or permanent (the channel refused what was
//! sent: never retried blindly). The [`Retrier`] owns the loop, so every service retries alike and
//! every retry is counted by class.

use super::status::ConnectorStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a call may succeed if made again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryClass {
    /// HTTP 429: too many requests.
    RateLimited,
    /// The channel's own throttling answer (Meta 80014, a usage header at 100 %).
    Throttled,
    /// HTTP 5xx, or a channel error marked transient.
    ServerError,
    /// No answer in time: the call may or may not have been applied.
    Timeout,
    /// The connection failed before an answer.
    Network,
    /// The channel refused the credentials: retried, as an operator may fix them meanwhile.
    Auth,
}

impl RetryClass {
    pub const ALL: [RetryClass; 6] = [
        RetryClass::RateLimited,
        RetryClass::Throttled,
        RetryClass::ServerError,
        RetryClass::Timeout,
        RetryClass::Network,
        RetryClass::Auth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::RateLimited => "rate_limited",
            RetryClass::Throttled => "throttled",
            RetryClass::ServerError => "server_error",
            RetryClass::Timeout => "timeout",
            RetryClass::Network => "network",
            RetryClass::Auth => "auth",
        }
    }
}

impl std::fmt::Display for RetryClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// Worth another try; `after` is the least wait the channel asked for.
    #[error("{class}: {message}")]
    Retry {
        class: RetryClass,
        after: Option<Duration>,
        message: String,
    },
    /// The channel refused the call itself; trying it again cannot help.
    #[error("{0}")]
    Permanent(String),
}

impl CallError {
    pub fn retry(class: RetryClass, message: impl Into<String>) -> Self {
        CallError::Retry {
            class,
            after: None,
            message: message.into(),
        }
    }

    /// A transport error from the HTTP client: a timeout, or a connection that failed.
    pub fn from_transport(e: &reqwest::Error) -> Self {
        let class = if e.is_timeout() {
            RetryClass::Timeout
        } else {
            RetryClass::Network
        };
        // reqwest's message can carry the URL, and a URL can carry a token: say only the kind.
        CallError::retry(class, format!("{class} talking to the channel"))
    }
}

/// A call that kept failing: the retries are spent (or the failure was permanent).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("after {attempts} attempts: {last}")]
pub struct Exhausted {
    pub attempts: u32,
    /// The class of the last failure, when it was a retryable one.
    pub class: Option<RetryClass>,
    pub last: String,
}

/// How long and how often to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries of one call, the first included.
    pub max_attempts: u32,
    /// The first wait; each next one doubles, up to `max_backoff`.
    pub base: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1` after `attempt` failures: exponential with equal jitter
    /// (half fixed, half random, so callers that failed together do not come back together),
    /// and never less than what the channel asked for.
    pub fn backoff(&self, attempt: u32, asked: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let jittered = exp / 2 + exp.mul_f64(jitter.clamp(0.0, 1.0) / 2.0);
        asked.map_or(jittered, |a| a.max(jittered))
    }
}

/// A small, fast source of jitter (SplitMix64); not for anything that needs to be unguessable.
pub struct Jitter(AtomicU64);

impl Jitter {
    pub fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        Jitter(AtomicU64::new(nanos ^ u64::from(std::process::id())))
    }

    /// A number in [0, 1).
    pub fn next(&self) -> f64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The pause switch every call waits on: a paused connector makes no calls.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Gate {
    pub fn set_paused(&self, paused: bool) {
        self.0
            .send_if_modified(|p| std::mem::replace(p, paused) != paused);
    }

    pub fn paused(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once the gate is open.
    pub async fn open(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|paused| !paused).await;
    }
}

/// Calls held back for everyone: a channel that said it is overloaded (a usage header at its
/// limit, a throttling code with a time to wait) is given that time by every call, not only by
/// the one that heard it.
#[derive(Default)]
pub struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    /// Holds every call until `after` from now (a longer hold already in place stays).
    pub fn hold_for(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_none_or(|h| h < until) {
            *held = Some(until);
        }
    }

    fn remaining(&self) -> Option<Duration> {
        let held = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.and_then(|until| until.checked_duration_since(Instant::now()))
    }
}

/// How many times `max_attempts` a call may be told to wait before it is given up.
const THROTTLED_TRIES: u32 = 10;

/// What one kind of call is (for metrics): Meta's `items_batch` or `status`, say.
pub type CallKind = &'static str;

/// Which try of a call this is, and whether an earlier try may have been applied by the channel
/// without an answer (it timed out, the connection broke, or the channel failed with a 5xx): a
/// write tried again must then not assume the channel holds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub number: u32,
    pub ambiguous: bool,
}

impl RetryClass {
    /// Whether a call that failed so may still have been applied.
    pub fn ambiguous(self) -> bool {
        matches!(
            self,
            RetryClass::Timeout | RetryClass::Network | RetryClass::ServerError
        )
    }
}

/// Runs calls with the connector's policy: waits while paused or throttled, classifies, backs
/// off, counts.
pub struct Retrier {
    pub policy: RetryPolicy,
    pub gate: Gate,
    pub throttle: Throttle,
    pub status: Arc<ConnectorStatus>,
    jitter: Jitter,
}

impl Retrier {
    pub fn new(policy: RetryPolicy, gate: Gate, status: Arc<ConnectorStatus>) -> Self {
        Retrier {
            policy,
            gate,
            throttle: Throttle::default(),
            status,
            jitter: Jitter::seeded(),
        }
    }

    /// Makes the call until it succeeds, fails permanently, or has failed `max_attempts` times.
    pub async fn call<T, F, Fut>(&self, kind: CallKind, mut make: F) -> Result<T, Exhausted>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut attempt = 0;
        // Failures that count against `max_attempts`: being told to wait (429, throttling) is not
        // a failure of the call, so those count only against a far larger bound.
        let mut failed = 0;
        let mut ambiguous = false;
        loop {
            self.gate.open().await;
            if let Some(wait) = self.throttle.remaining() {
                tokio::time::sleep(wait).await;
                self.gate.open().await;
            }
            attempt += 1;
            let started = Instant::now();
            let result = make(Attempt {
                number: attempt,
                ambiguous,
            })
            .await;
            let elapsed = started.elapsed();
            match result {
                Ok(value) => {
                    self.status.call_done(kind, "ok", elapsed);
                    return Ok(value);
                }
                Err(CallError::Permanent(message)) => {
                    self.status.call_done(kind, "permanent", elapsed);
                    self.status.set_last_error(&message);
                    return Err(Exhausted {
                        attempts: attempt,
                        class: None,
                        last: message,
                    });
                }
                Err(CallError::Retry {
                    class,
                    after,
                    message,
                }) => {
                    self.status.call_done(kind, class.as_str(), elapsed);
                    self.status.retried(class);
                    ambiguous |= class.ambiguous();
                    self.status.set_last_error(&message);
                    let told_to_wait =
                        matches!(class, RetryClass::RateLimited | RetryClass::Throttled);
                    if !told_to_wait {
                        failed += 1;
                    }
                    if failed >= self.policy.max_attempts
                        || attempt >= self.policy.max_attempts.saturating_mul(THROTTLED_TRIES)
                    {
                        return Err(Exhausted {
                            attempts: attempt,
                            class: Some(class),
                            last: message,
                        });
                    }
                    if let (RetryClass::Throttled, Some(after)) = (class, after) {
                        self.throttle.hold_for(after);
                    }
                    let wait = self.policy.backoff(attempt, after, self.jitter.next());
                    tracing::debug!(kind, %class, attempt, wait_ms = wait.as_millis() as u64, "retrying a channel call");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.backoff(1, None, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, None, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(30, None, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn a_channels_retry_after_is_a_floor() {
        let p = policy();
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(3)), 0.5),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.backoff(5, Some(Duration::from_millis(10)), 1.0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let j = Jitter::seeded();
        let draws: Vec<f64> = (0..1000).map(|_| j.next()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.iter().any(|d| *d < 0.1) && draws.iter().any(|d| *d > 0.9));
    }

    fn retrier() -> Retrier {
        Retrier::new(
            RetryPolicy {
                base: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
                ..policy()
            },
            Gate::default(),
            Arc::new(ConnectorStatus::new("test")),
        )
    }

    #[tokio::test]
    async fn retryable_failures_are_retried_and_counted_by_class() {
        let r = retrier();
        let got = r
            .call("batch", |attempt| async move {
                match attempt.number {
                    1 => Err(CallError::retry(RetryClass::RateLimited, "429")),
                    2 => Err(CallError::retry(RetryClass::Timeout, "slow")),
                    _ => Ok(attempt),
                }
            })
            .await;
        assert_eq!(
            got,
            Ok(Attempt {
                number: 3,
                ambiguous: true
            }),
            "a timeout before makes the third try ambiguous"
        );
        let counts = r.status.snapshot().retries;
        assert_eq!(counts.get("rate_limited"), Some(&1));
        assert_eq!(counts.get("timeout"), Some(&1));
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried() {
        let r = retrier();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got: Result<(), _> = r
            .call("batch", |_| {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(CallError::Permanent("bad request".into())) }
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(got.unwrap_err().class, None);
    }

    #[tokio::test]
    async fn retries_end_after_max_attempts() {
        let r = retrier();
        let got: Result<(), _> = r
            .call("batch", |_| async {
                Err(CallError::retry(RetryClass::ServerError, "503"))
            })
            .await;
        let e = got.unwrap_err();
        assert_eq!((e.attempts, e.class), (4, Some(RetryClass::ServerError)));
    }

    #[tokio::test]
    async fn a_paused_gate_holds_calls_until_resumed() {
        let r = Arc::new(retrier());
        r.gate.set_paused(true);
        let calls = Arc::new(AtomicU64::new(0));
        let (r2, c2) = (r.clone(), calls.clone());
        let task = tokio::spawn(async move {
            r2.call("batch", |_| {
                c2.fetch_add(1, Ordering::Relaxed);
                async { Ok::<_, CallError>(()) }
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(calls.load(Ordering::Relaxed), 0, "no call while paused");
        r.gate.set_paused(false);
        assert!(task.await.unwrap().is_ok());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
