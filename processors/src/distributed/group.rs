//! Group membership and liveness: the lateness bound a turn keeps under the group's settings,
//! what a member reports, the fences of its producer, and its consumer's rebalance events.
use super::txn::TurnError;
use porch_topics::kafka_admin::KafkaConfig;
use porch_topics::Liveness;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a turn's transaction may have been open when it comes to save its checkpoints; a
/// turn later than that saves and writes nothing (see [`DistributedRuntime::finish`]). Far
/// above a turn's usual second, and below the group's session timeout less its heartbeat
/// interval (10 s and 2 s on the engines' Kafka, 45 s and 5 s by Kafka's default); a group
/// that drops its members sooner gets a shorter bound ([`late_after`]).
///
/// [`DistributedRuntime::finish`]: super::DistributedRuntime::finish
pub const LATE_AFTER: Duration = Duration::from_secs(5);

/// The lateness bound of a member of a group whose coordinator drops a silent member after
/// `session` and hears from members every `heartbeat`: [`LATE_AFTER`], or a second less than
/// the earliest another member could be given a task (`session - heartbeat`) when that is
/// sooner, but never under a second (a group that drops members that fast gives turns no room;
/// the role warns).
pub fn late_after(session: Duration, heartbeat: Duration) -> Duration {
    session
        .saturating_sub(heartbeat)
        .saturating_sub(Duration::from_secs(1))
        .clamp(Duration::from_secs(1), LATE_AFTER)
}

/// A member's lateness bound ([`late_after`]), shared so that it follows the group's settings
/// while the member runs ([`watch_late_bound`]).
#[derive(Debug, Default)]
pub struct LateBound {
    millis: AtomicU64,
    /// Whether the group's settings have been read once (or the read has failed).
    read: Mutex<bool>,
    first_read: std::sync::Condvar,
}

impl LateBound {
    pub fn new(bound: Duration) -> Self {
        let b = LateBound::default();
        b.set(bound);
        b
    }

    pub fn get(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }

    fn set(&self, bound: Duration) {
        self.millis
            .store(bound.as_millis() as u64, Ordering::Relaxed);
    }

    fn mark_read(&self) {
        *self.read.lock().expect("late bound") = true;
        self.first_read.notify_all();
    }

    /// Waits until the group's settings have been read once, or the read has failed, for at
    /// most `limit`: whether they have. A member waits for it before its first turn, so that
    /// no turn of a group that drops members fast runs under the longest bound.
    pub fn wait_first_read(&self, limit: Duration) -> bool {
        let read = self.read.lock().expect("late bound");
        let (read, _) = self
            .first_read
            .wait_timeout_while(read, limit, |read| !*read)
            .expect("late bound");
        *read
    }
}

/// How long a member waits for its group's settings before its first turn: two reads' time
/// ([`porch_topics::kafka_admin::group_liveness`] waits 10 s for each request).
pub const LATE_BOUND_FIRST_WAIT: Duration = Duration::from_secs(25);

/// How often a member reads its group's session timeout and heartbeat interval again: a change
/// (`kafka-configs --alter --entity-type groups`) applies to the group's members as they next
/// join or heartbeat, and to the bound within this.
pub const LATE_BOUND_REFRESH: Duration = Duration::from_secs(60);

/// Keeps `bound` at [`late_after`] of the group's settings as `read` gives them, reading them
/// now and then every `every`. A read that fails keeps the bound it had ([`LATE_AFTER`] before
/// the first that succeeds). Tells what it found when that changes: a bound below
/// [`LATE_AFTER`] as a warning, a failure as one.
pub async fn watch_late_bound<R, F, E>(
    group: String,
    bound: Arc<LateBound>,
    every: Duration,
    mut read: R,
) where
    R: FnMut() -> F,
    F: std::future::Future<Output = Result<(Duration, Duration), E>>,
    E: std::fmt::Display,
{
    let mut told: Option<Result<(Duration, Duration), String>> = None;
    loop {
        let found = read().await.map_err(|e| e.to_string());
        if told.as_ref() != Some(&found) {
            match &found {
                Ok((session, heartbeat)) => {
                    let late = late_after(*session, *heartbeat);
                    let (session_ms, heartbeat_ms, late_after_ms) = (
                        session.as_millis() as u64,
                        heartbeat.as_millis() as u64,
                        late.as_millis() as u64,
                    );
                    if late < LATE_AFTER {
                        tracing::warn!(
                            group,
                            session_ms,
                            heartbeat_ms,
                            late_after_ms,
                            "the group drops a silent member soon after its last heartbeat: a \
                             turn whose transaction is open longer than late_after_ms when it \
                             comes to save gives up"
                        );
                    } else {
                        tracing::info!(
                            group,
                            session_ms,
                            heartbeat_ms,
                            late_after_ms,
                            "the group's session settings"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    group,
                    error = %e,
                    "cannot read the group's session timeout; keeping a turn open for {} ms for late",
                    bound.get().as_millis()
                ),
            }
            told = Some(found.clone());
        }
        if let Ok((session, heartbeat)) = found {
            bound.set(late_after(session, heartbeat));
        }
        bound.mark_read();
        tokio::time::sleep(every).await;
    }
}

/// The consumer group of a processor (its name under the cluster's topic prefix): what its
/// members join, and whose settings they read.
pub fn group_of(kafka: &KafkaConfig, processor: &str) -> String {
    format!("{}{processor}", kafka.topic_prefix)
}

/// What a role reports on /readyz and /metrics.
#[derive(Default)]
pub struct Health {
    /// Up to date with its dependencies: the last turn reached the store and Kafka.
    pub ready: AtomicBool,
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub failures: AtomicU64,
    pub recoveries: AtomicU64,
    pub tasks: AtomicU64,
    /// Times another producer took this member's transactional id (see [`Fences`]).
    pub fenced: AtomicU64,
}

/// How close together two fences of a member's producer must come to be taken for a second
/// process under the same transactional id, and how long the member then reports not ready.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(60);

/// When another producer took this member's transactional id (a fence after a turn longer than
/// the transaction timeout is not counted: the coordinator aborting the transaction fences the
/// producer too). Once is a zombie's lot (this process paused and was replaced) or a one-off;
/// twice within
/// [`DUPLICATE_WINDOW`] is a second process started under the same instance id: each new
/// producer of one fences the other's, both make progress between fences (exactly-once holds),
/// and neither can settle until one of them goes. Such a member says so and is not ready.
#[derive(Default)]
pub(super) struct Fences {
    last: Option<Instant>,
    repeated: bool,
    told: Option<Instant>,
}

impl Fences {
    /// A fence at `now`; true when it is to be told (repeated, and not told within the window).
    pub(super) fn fenced(&mut self, now: Instant) -> bool {
        self.repeated = self
            .last
            .is_some_and(|t| now.duration_since(t) < DUPLICATE_WINDOW);
        self.last = Some(now);
        let tell = self.repeated
            && self
                .told
                .is_none_or(|t| now.duration_since(t) >= DUPLICATE_WINDOW);
        if tell {
            self.told = Some(now);
        }
        tell
    }

    /// Fenced repeatedly, the last time within the window.
    pub(super) fn duplicate(&self, now: Instant) -> bool {
        self.repeated
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < DUPLICATE_WINDOW)
    }
}

/// Rebalance events since the loop last looked, in the order librdkafka's callbacks (run
/// inside `poll`) saw them: a partition lost and assigned again, or assigned and revoked at
/// once, must end up as the last event says.
#[derive(Default)]
pub(super) struct Assignment {
    /// (assigned, topic, partition): `false` for a partition revoked or lost.
    pub(super) events: Vec<(bool, String, u32)>,
}

pub(super) struct GroupContext {
    pub(super) assignment: Mutex<Assignment>,
    pub(super) prefix: String,
    pub(super) liveness: Liveness,
}

impl ClientContext for GroupContext {
    fn stats_raw(&self, statistics: &[u8]) {
        self.liveness.observe(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.liveness.report_error(error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut a = self.assignment.lock().expect("assignment lock");
            for e in tpl.elements() {
                let t = e.topic().strip_prefix(&self.prefix).unwrap_or(e.topic());
                a.events.push((false, t.to_string(), e.partition() as u32));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut a = self.assignment.lock().expect("assignment lock");
            for e in tpl.elements() {
                let t = e.topic().strip_prefix(&self.prefix).unwrap_or(e.topic());
                a.events.push((true, t.to_string(), e.partition() as u32));
            }
        }
    }
}

pub(super) type GroupConsumer = BaseConsumer<GroupContext>;

/// The consumer's membership of its group as it knows it, for the transaction's offsets.
pub(super) fn member(consumer: &GroupConsumer) -> Result<Arc<ConsumerGroupMetadata>, TurnError> {
    consumer
        .group_metadata()
        .map(Arc::new)
        .ok_or_else(|| TurnError::kafka(KafkaError::Subscription("no group metadata".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_is_late_a_second_before_the_group_could_give_its_tasks_away() {
        let s = Duration::from_secs;
        // The engines' Kafka: 10 s and 2 s; Kafka's defaults: 45 s and 5 s.
        assert_eq!(late_after(s(10), s(2)), LATE_AFTER);
        assert_eq!(late_after(s(45), s(5)), LATE_AFTER);
        assert_eq!(late_after(s(6), s(2)), s(3));
        assert_eq!(late_after(s(6), s(5)), s(1), "never under a second");
        assert_eq!(late_after(s(2), s(5)), s(1));
    }

    #[test]
    fn the_bound_follows_the_groups_settings_and_keeps_the_last_through_failed_reads() {
        let s = Duration::from_secs;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        // What each read finds, in turn: a failure (the first read), a group that drops
        // members after 6 s, a failure, the brokers' defaults, a failure.
        let away = || Err::<(Duration, Duration), String>("coordinator away".into());
        let answers = vec![away(), Ok((s(6), s(2))), away(), Ok((s(10), s(2))), away()];
        let bound = Arc::new(LateBound::new(LATE_AFTER));
        let every = Duration::from_secs(60);
        assert!(
            !bound.wait_first_read(Duration::ZERO),
            "read before any read"
        );
        let seen = rt.block_on(async {
            let next = Arc::new(Mutex::new(answers.into_iter()));
            let watch = tokio::spawn(watch_late_bound("g".into(), bound.clone(), every, {
                let next = next.clone();
                move || {
                    let answer = next.lock().unwrap().next();
                    async move { answer.expect("five reads") }
                }
            }));
            let mut seen = Vec::new();
            for _ in 0..5 {
                // Halfway between two reads.
                tokio::time::sleep(every / 2).await;
                seen.push(bound.get());
                tokio::time::sleep(every / 2).await;
            }
            watch.abort();
            seen
        });
        // A failed first read counts as read: the member goes on under the longest bound.
        assert!(bound.wait_first_read(Duration::ZERO));
        assert_eq!(seen, vec![LATE_AFTER, s(3), s(3), LATE_AFTER, LATE_AFTER]);
    }

    #[test]
    fn a_second_fence_within_the_window_is_a_duplicate_told_once_a_window() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut f = Fences::default();
        assert!(!f.duplicate(t0), "never fenced");
        assert!(!f.fenced(at(0)), "one fence is not told");
        assert!(!f.duplicate(at(1)), "one fence is not a duplicate");
        assert!(f.fenced(at(10)), "a second within the window is told");
        assert!(f.duplicate(at(11)));
        assert!(!f.fenced(at(20)), "told once a window");
        assert!(f.duplicate(at(79)), "not ready until the window has passed");
        assert!(!f.duplicate(at(80)), "ready a window after the last fence");
        assert!(!f.fenced(at(200)), "a fence long after is a one-off again");
        assert!(!f.duplicate(at(201)));
        assert!(f.fenced(at(230)), "and a repeat is told again");
    }
}
