//! The Kafka transaction calls and how they fail: each bounded in time, retried while
//! librdkafka says so, and what a failure means for the turn and its producer.
use porch_topics::Liveness;
use rdkafka::error::KafkaError;
use rdkafka::producer::ThreadedProducer;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// A producer that serves its delivery reports (and statistics) on a thread of its own, so
/// that flushing in commit and abort never waits on a queue nobody polls.
pub(super) type TxnProducer = ThreadedProducer<Liveness>;

/// How a transaction call failed.
#[derive(Debug)]
pub(super) enum TxnFailure {
    Kafka(KafkaError),
    /// The call did not return within the limit it was given (see [`bounded`]).
    Hung(&'static str, Duration),
    /// The transaction coordinator did not answer the call in time (see [`after_txn_error`]).
    Unanswered(&'static str, String),
}

impl From<KafkaError> for TxnFailure {
    fn from(e: KafkaError) -> Self {
        Self::Kafka(e)
    }
}

impl std::fmt::Display for TxnFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kafka(e) => write!(f, "{e}"),
            Self::Hung(what, limit) if limit.is_zero() => {
                write!(
                    f,
                    "{what} of the transaction was not made: no thread to run it on"
                )
            }
            Self::Unanswered(what, e) => write!(
                f,
                "{what} of the transaction: no answer from the transaction coordinator ({e})"
            ),
            Self::Hung(what, limit) => write!(
                f,
                "{what} of the transaction did not return within {} s",
                limit.as_secs_f32()
            ),
        }
    }
}

/// How long a transaction call given [`KAFKA_TIMEOUT`] may take before it is taken as hung.
const HUNG_AFTER: Duration = Duration::from_secs(45);

/// Runs a transaction call on a thread of its own and waits for it at most [`HUNG_AFTER`].
/// librdkafka can block in a transaction call far past its timeout while the group or
/// transaction coordinator is away (send_offsets_to_transaction never checks its coordinator
/// request's deadline: confluentinc/librdkafka#5456); the processor would stop polling, and
/// its group would move on without it. A call still running then is left to itself, and the
/// turn fails with the producer marked for replacement: the new producer's
/// init_transactions, under the same transactional id, fences the old one and aborts its
/// transaction.
pub(super) fn bounded(
    what: &'static str,
    producer: &Arc<TxnProducer>,
    call: impl FnOnce(&TxnProducer) -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), TxnFailure> {
    bounded_for(HUNG_AFTER, what, producer, call)
}

fn bounded_for(
    limit: Duration,
    what: &'static str,
    producer: &Arc<TxnProducer>,
    call: impl FnOnce(&TxnProducer) -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), TxnFailure> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let p = producer.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("txn-{}", what.replace(' ', "-")))
        .spawn(move || {
            let _ = tx.send(call(&p));
        });
    if let Err(e) = spawned {
        // Without a thread to wait on, the call is not made: the turn fails as if it hung.
        tracing::warn!(error = %e, "no thread for {what} of the transaction");
        return Err(TxnFailure::Hung(what, Duration::ZERO));
    }
    match rx.recv_timeout(limit) {
        Ok(r) => r.map_err(TxnFailure::Kafka),
        Err(_) => Err(TxnFailure::Hung(what, limit)),
    }
}

/// Runs a transaction call again while librdkafka says retrying it is right (a timeout resumes
/// the same operation), for up to two minutes.
pub(super) fn retry_txn(
    what: &'static str,
    mut op: impl FnMut() -> Result<(), TxnFailure>,
) -> Result<(), TxnFailure> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match op() {
            Err(TxnFailure::Kafka(KafkaError::Transaction(e))) => {
                match after_txn_error(e.code(), e.is_retriable()) {
                    AfterTxnError::Retry if Instant::now() < deadline => {
                        tracing::warn!(error = %e, "{what} of the transaction: retrying");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    AfterTxnError::Replace => {
                        return Err(TxnFailure::Unanswered(what, e.to_string()))
                    }
                    _ => return Err(TxnFailure::Kafka(KafkaError::Transaction(e))),
                }
            }
            r => return r,
        }
    }
}

/// What a transaction call's error calls for.
#[derive(Debug, PartialEq, Eq)]
enum AfterTxnError {
    Retry,
    /// Fail the turn and replace the producer.
    Replace,
    Fail,
}

/// A call that got no answer from the transaction coordinator within librdkafka's own timeout
/// (a local timeout) is not retried on the same producer: after a broker restart librdkafka can
/// keep a producer whose coordinator requests wait in a queue that never drains ("1 out-queue"),
/// and retrying it stalled a processor for minutes (a commit retried for two minutes, then an
/// abort refused for two more as a "conflicting commit_transaction call"). Like a hung call, it
/// fails the turn and the producer is replaced before the next one; the new producer's
/// init_transactions, under the same transactional id, settles what the old one left open:
/// the coordinator completes a commit it prepared and aborts anything else, before it answers.
/// Recovery then finds the outcome settled, as it does after a commit resumed to its end.
fn after_txn_error(code: RDKafkaErrorCode, retriable: bool) -> AfterTxnError {
    // Records that timed out carry the same code but require an abort, which `abort` does.
    if code == RDKafkaErrorCode::OperationTimedOut && retriable {
        AfterTxnError::Replace
    } else if retriable {
        AfterTxnError::Retry
    } else {
        AfterTxnError::Fail
    }
}

/// Why a turn failed.
#[derive(Debug)]
pub struct TurnError {
    pub(super) message: String,
    /// The producer cannot go on (fenced or fatal): make a new one.
    pub(super) fatal_producer: bool,
    /// The consumer's group coordinator did not answer a committed-offsets query in time.
    pub(super) coordinator_unanswered: bool,
}

impl TurnError {
    pub(super) fn store(message: String) -> Self {
        Self {
            message: format!("store: {message}"),
            fatal_producer: false,
            coordinator_unanswered: false,
        }
    }
    /// A Kafka error about one partition: never the producer's.
    pub(super) fn kafka_context(what: String, e: KafkaError) -> Self {
        Self {
            message: format!("kafka: {what}: {e}"),
            fatal_producer: false,
            coordinator_unanswered: false,
        }
    }
    pub(super) fn txn(e: TxnFailure) -> Self {
        match e {
            TxnFailure::Kafka(e) => Self::kafka(e),
            hung @ (TxnFailure::Hung(..) | TxnFailure::Unanswered(..)) => Self {
                message: format!("kafka: {hung}"),
                fatal_producer: true,
                coordinator_unanswered: false,
            },
        }
    }
    pub(super) fn kafka(e: KafkaError) -> Self {
        let fatal = match &e {
            KafkaError::Transaction(t) => {
                t.is_fatal() || !t.txn_requires_abort() && !t.is_retriable()
            }
            _ => false,
        };
        Self {
            message: format!("kafka: {e}"),
            fatal_producer: fatal,
            coordinator_unanswered: false,
        }
    }
}

impl std::fmt::Display for TurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transactional producer that never reaches a broker: bounded() only needs a handle.
    fn offline_producer() -> Arc<TxnProducer> {
        let producer: TxnProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("transactional.id", "bounded-test")
            .create_with_context(Liveness::default())
            .expect("producer");
        Arc::new(producer)
    }

    #[test]
    fn a_transaction_call_that_does_not_return_in_time_is_hung() {
        let p = offline_producer();
        let started = Instant::now();
        let r = bounded_for(Duration::from_millis(200), "commit", &p, |_| {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        });
        assert!(matches!(r, Err(TxnFailure::Hung("commit", _))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        let e = TurnError::txn(r.unwrap_err());
        assert_eq!(
            e.to_string(),
            "kafka: commit of the transaction did not return within 0.2 s",
            "the message names the limit the call was given"
        );
        assert!(e.fatal_producer, "a hung call replaces the producer");
    }

    #[test]
    fn a_transaction_call_the_coordinator_never_answered_replaces_the_producer() {
        use rdkafka::types::RDKafkaErrorCode::{CoordinatorLoadInProgress, OperationTimedOut};
        // Any call, the commit included: the producer is replaced, the new one settles what
        // it left open.
        assert_eq!(
            after_txn_error(OperationTimedOut, true),
            AfterTxnError::Replace
        );
        // Records that timed out in the transaction: abort it, keep the producer.
        assert_eq!(
            after_txn_error(OperationTimedOut, false),
            AfterTxnError::Fail
        );
        assert_eq!(
            after_txn_error(CoordinatorLoadInProgress, true),
            AfterTxnError::Retry
        );
        assert_eq!(
            after_txn_error(CoordinatorLoadInProgress, false),
            AfterTxnError::Fail
        );
        let failed = TurnError::txn(TxnFailure::Unanswered("send offsets", "timed out".into()));
        assert!(failed.fatal_producer, "{failed}");
    }

    #[test]
    fn a_transaction_call_that_returns_gives_its_own_answer() {
        let p = offline_producer();
        let ok = bounded_for(Duration::from_secs(5), "commit", &p, |_| Ok(()));
        assert!(ok.is_ok());
        let err = bounded_for(Duration::from_secs(5), "commit", &p, |_| {
            Err(KafkaError::Canceled)
        });
        assert!(
            matches!(err, Err(TxnFailure::Kafka(KafkaError::Canceled))),
            "{err:?}"
        );
        assert!(!TurnError::txn(err.unwrap_err()).fatal_producer);
    }
}
