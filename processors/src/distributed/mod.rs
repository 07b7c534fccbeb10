//! The distributed runtime: a processor as one member of a Kafka consumer group, its state in
//! ScyllaDB (or Cassandra), exactly-once by Kafka transactions (EOS v2).
//!
//! A task is one partition number of every input topic (the topics are co-partitioned, and the
//! group uses the broker's range assignor, so a member owns whole tasks). One turn of the loop:
//! 1. poll records; group them by task; a task first assigned to this member is *recovered*;
//! 2. decide each task's records against its state: the rows it wrote that the store may not
//!    have yet (pending), its cache, then the store, buffering row writes and output records
//!    in a [`DistTxn`] (the same `process_batch` the embedded runtime runs);
//! 3. open a Kafka transaction and produce the records and send the input offsets (each carrying
//!    the checkpoint id as metadata) into it, while, alongside, each task's [`Checkpoint`]
//!    (its pending rows and the batch's writes, records, next input offsets) is saved in the
//!    store, one row per task;
//! 4. once both are done, commit;
//! 5. after the commit, off the turn's critical path, the pending rows go to the store with the
//!    checkpoint's id as their write time, one write per task at a time, taking every row
//!    pending when it starts (a row written by several turns meanwhile is written once).
//!
//! No input offset is committed before its rows are in a saved checkpoint, and a checkpoint
//! holds every committed row the store may not have. A crash after the checkpoint is saved
//! leaves one whose id is not the committed offsets' metadata: recovery finishes it (3 and 4
//! again, idempotent) instead of deciding the batch anew; either way recovery writes the
//! checkpoint's rows before the task decides anything, so the store and the changelog agree.
//! A crash before leaves only an open transaction, aborted when the member's transactional id
//! is taken up again, or by the broker after transaction.timeout.ms if it never is. Rows that
//! a member writes late (paused after its commit) carry an older write time than the next
//! owner's and lose to them; they are rows of a committed decision, never stray ones.
//!
//! Here: the runtime and its loop. What a task reads and writes in a turn is in `state`, the
//! Kafka transaction calls and their failures in `txn`, group membership and liveness in `group`.

mod group;
mod state;
#[cfg(test)]
mod test_store;
mod txn;

pub use group::{
    group_of, late_after, watch_late_bound, Health, LateBound, LATE_AFTER, LATE_BOUND_FIRST_WAIT,
    LATE_BOUND_REFRESH,
};
pub use state::DistTxn;
pub use txn::TurnError;

use crate::checkpoint::{Checkpoint, OutRecord};
use crate::runtime::{note_poison, process_batch, Poison, Processor, RuntimeConfig};
use crate::store::{ProjectionStore, StoreError};
use porch_schemas::Codec;
use porch_topics::kafka_admin::KafkaConfig;
use porch_topics::liveness::drop_aside;
use porch_topics::{Liveness, LogRecord};
use rdkafka::consumer::{Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use group::{member, Fences, GroupConsumer, GroupContext};
use state::{Applied, Pages, Pending, RowCache, RowId, CACHE_ROWS, PENDING_ROWS};
use txn::{bounded, retry_txn, TxnFailure, TxnProducer, KAFKA_TIMEOUT};

/// The transaction timeout of a processor's producer: how long an open transaction of a member
/// that died and never came back holds read_committed readers at its partitions' last stable
/// offset.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs one processor as a member of its consumer group until `stop` is set.
pub struct DistributedRuntime {
    pub kafka: KafkaConfig,
    pub store: Arc<dyn ProjectionStore>,
    pub codec: Arc<Codec>,
    pub handle: tokio::runtime::Handle,
    pub config: RuntimeConfig,
    pub partitions: u32,
    pub stop: Arc<AtomicBool>,
    pub health: Arc<Health>,
    /// This member's stable name within its group: its transactional id is `<group>-<instance>`,
    /// so a restarted member fences its predecessor and aborts what it left open at once.
    pub instance: String,
    /// How long a turn's transaction may be open before it saves ([`late_after`]).
    pub late_after: Arc<LateBound>,
}

/// A task's state in this member.
#[derive(Default)]
struct Task {
    recovered: bool,
    /// Next offset to handle, per input (topic, partition); records below are skipped.
    next: HashMap<(String, u32), u64>,
    /// Poison records found in the batch being decided.
    poison: Poison,
    /// Id of the task's last checkpoint (ids increase per task).
    last_id: i64,
    cache: RowCache,
    /// Row writes committed and not yet in the store.
    pending: Pending,
    /// The checkpoint id whose pending rows are being written to the store.
    applying: Option<i64>,
    /// When a failed write of the pending rows may be tried again.
    apply_after: Option<Instant>,
}

impl DistributedRuntime {
    pub fn run(&self, p: Arc<dyn Processor>) -> anyhow::Result<()> {
        let group = group_of(&self.kafka, p.name());
        let inputs = p.inputs();
        let mut consumer = self.consumer(&group)?;
        let physical: Vec<String> = inputs.iter().map(|t| self.kafka.physical(t)).collect();
        let refs: Vec<&str> = physical.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let mut producer = Arc::new(self.producer(&group)?);
        let mut tasks: BTreeMap<u32, Task> = BTreeMap::new();
        let applied = Applied::default();
        let mut last_timers = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut poll_warned: Option<Instant> = None;
        // Turns failed in a row because the group coordinator did not answer.
        let mut unanswered = 0u32;
        // The producer must be replaced before the next turn (fenced, fatal, or a call that
        // went unanswered). Until a new one can be made (its coordinator still loading, say),
        // no turn runs.
        let mut replace_producer = false;
        let mut fences = Fences::default();
        // The producer's fence has been looked at (once per producer, however many tries its
        // replacement takes).
        let mut fence_seen = false;
        // How long the last failed turn took: a transaction open past the transaction timeout
        // is aborted by its coordinator, which fences its producer as another process would.
        let mut failed_turn_took = Duration::ZERO;
        tracing::info!(processor = p.name(), group = %group, "joining the consumer group");
        while !self.stop.load(Ordering::Relaxed) {
            // Twice in a row (a minute) without an answer from the coordinator: librdkafka can
            // keep a consumer whose coordinator handle never finds its broker again while its
            // fetch connections are up, which its statistics do not show.
            let stuck = unanswered >= 2;
            if stuck {
                unanswered = 0;
            }
            replace_producer |=
                self.replace_lost(&group, &refs, &mut consumer, &producer, &mut tasks, stuck);
            if replace_producer && !fence_seen {
                fence_seen = true;
                let fenced = matches!(
                    producer.client().fatal_error(),
                    Some((
                        RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced,
                        _
                    ))
                );
                if fenced && failed_turn_took >= TRANSACTION_TIMEOUT {
                    tracing::warn!(
                        processor = p.name(),
                        turn_ms = failed_turn_took.as_millis() as u64,
                        "the producer was fenced after a turn longer than the transaction \
                         timeout: its coordinator aborted the transaction"
                    );
                } else if fenced {
                    self.health.fenced.fetch_add(1, Ordering::Relaxed);
                    if fences.fenced(Instant::now()) {
                        tracing::error!(
                            processor = p.name(),
                            transactional_id = format!("{group}-{}", self.instance),
                            "another producer took this member's transactional id twice within \
                             a minute: a second process runs this processor under the same \
                             instance id {:?}, on another machine (or one with the same host \
                             name and machine id). Each takes the id from the other in turn; \
                             neither reports ready until one is stopped or given an instance id \
                             of its own (--instance / PORCH_INSTANCE)",
                            self.instance
                        );
                    }
                }
                // A new producer, under the same transactional id, aborts what the old one
                // left open; every task recovers on it.
                match self.producer(&group) {
                    Ok(np) => {
                        producer = Arc::new(np);
                        replace_producer = false;
                        fence_seen = false;
                        for t in tasks.values_mut() {
                            t.recovered = false;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot recreate the producer yet"),
                }
            }
            let poll_started = Instant::now();
            let polled = self.poll_batch(&consumer);
            tracing::trace!(
                group,
                poll_ms = poll_started.elapsed().as_millis() as u64,
                "polled"
            );
            self.track_assignment(&consumer, &mut tasks);
            self.project(&mut tasks, &applied);
            if replace_producer {
                // No turn runs on a producer marked for replacement: its last call may still be
                // running (a hung abort makes every later begin a conflict). The consumer keeps
                // polling to stay in the group; every task is unrecovered, so what it polled now
                // comes again after recovery seeks back to the committed offsets.
                self.health.ready.store(false, Ordering::Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            let records = match polled {
                Ok(r) => r,
                Err(e) => {
                    // librdkafka reconnects by itself; say so every few seconds, not every poll.
                    if poll_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!(processor = p.name(), error = %e, "poll failed");
                        poll_warned = Some(Instant::now());
                    }
                    self.health.ready.store(false, Ordering::Relaxed);
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            let timers_due = p.has_timers() && last_timers.elapsed() >= self.config.idle_wait;
            if timers_due {
                last_timers = Instant::now();
            }
            // Tasks still to recover (after a failure, or newly assigned) are recovered even when
            // nothing new arrives: recovery seeks back to what is not committed yet.
            if records.is_empty() && !timers_due && tasks.values().all(|t| t.recovered) {
                self.health
                    .ready
                    .store(!fences.duplicate(Instant::now()), Ordering::Relaxed);
                continue;
            }
            // A checkpoint carries its task's pending rows: the store takes them before they
            // grow past a bound.
            if !self.drain_projection(&mut tasks, &applied, PENDING_ROWS, Duration::from_secs(10)) {
                // What was polled is dropped: recovery seeks back to the committed offsets.
                tracing::warn!(
                    processor = p.name(),
                    "the store is not taking the projection's rows; tasks will recover"
                );
                self.health.ready.store(false, Ordering::Relaxed);
                for t in tasks.values_mut() {
                    t.recovered = false;
                }
                continue;
            }
            let turn_started = Instant::now();
            match self.turn(
                &consumer,
                &producer,
                &group,
                p.as_ref(),
                &mut tasks,
                records,
                timers_due,
            ) {
                Ok(()) => {
                    self.project(&mut tasks, &applied);
                    unanswered = 0;
                    backoff = Duration::from_millis(100);
                    self.health
                        .ready
                        .store(!fences.duplicate(Instant::now()), Ordering::Relaxed);
                }
                Err(e) => {
                    failed_turn_took = turn_started.elapsed();
                    self.health.ready.store(false, Ordering::Relaxed);
                    self.health.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(processor = p.name(), error = %e, "turn failed; tasks will recover and retry");
                    for t in tasks.values_mut() {
                        t.recovered = false;
                    }
                    unanswered = if e.coordinator_unanswered {
                        unanswered + 1
                    } else {
                        0
                    };
                    // Replaced before the next turn.
                    replace_producer |= e.fatal_producer;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // What was committed goes to the store before the member leaves (a member that does
        // not get that far leaves it to the tasks' next owners, which write it on recovery).
        if !self.drain_projection(&mut tasks, &applied, 0, Duration::from_secs(10)) {
            tracing::warn!(
                processor = p.name(),
                "rows still pending at stop; the tasks' next owners write them"
            );
        }
        consumer.unsubscribe();
        Ok(())
    }

    /// Writes the tasks' pending rows to the store, off the turns' critical path: one write of a
    /// task's rows at a time, with its last checkpoint's id as write time (a write that lands
    /// late loses to newer ones), taking every row pending when it starts, so rows written
    /// again while one is under way go to the store once. What finished is taken in first.
    fn project(&self, tasks: &mut BTreeMap<u32, Task>, applied: &Applied) {
        for (task, id, failed) in applied.lock().expect("applied lock").drain(..) {
            let Some(t) = tasks.get_mut(&task) else {
                continue; // revoked: its next owner writes them on recovery
            };
            if t.applying == Some(id) {
                t.applying = None;
            }
            match failed {
                None => t.pending.retain(|_, (_, written)| *written > id),
                Some(e) => {
                    tracing::warn!(task, error = %e, "writing the projection failed; will retry");
                    t.apply_after = Some(Instant::now() + Duration::from_millis(500));
                }
            }
        }
        let now = Instant::now();
        for (task, t) in tasks.iter_mut() {
            if t.pending.is_empty()
                || t.applying.is_some()
                || !t.recovered
                || t.apply_after.is_some_and(|at| at > now)
            {
                continue;
            }
            let id = t.last_id;
            let writes = state::pending_writes(&t.pending);
            t.applying = Some(id);
            t.apply_after = None;
            let (store, applied, task) = (self.store.clone(), applied.clone(), *task);
            self.handle.spawn(async move {
                let failed = store.apply(writes, id).await.err().map(|e| e.to_string());
                applied
                    .lock()
                    .expect("applied lock")
                    .push((task, id, failed));
            });
        }
    }

    /// Waits until no task has more than `most` pending rows, writing them as [`Self::project`] does,
    /// for at most `limit`; false if some still have.
    fn drain_projection(
        &self,
        tasks: &mut BTreeMap<u32, Task>,
        applied: &Applied,
        most: usize,
        limit: Duration,
    ) -> bool {
        let until = Instant::now() + limit;
        loop {
            self.project(tasks, applied);
            // An unrecovered task's rows are written by its recovery.
            if tasks
                .values()
                .all(|t| !t.recovered || t.pending.len() <= most)
            {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Replaces a consumer that has lost its cluster for good (see [`Liveness`]): a new one
    /// joins the group again and its tasks recover from what was committed. True when the
    /// producer must be replaced too: it has lost its cluster, or the consumer was replaced.
    fn replace_lost(
        &self,
        group: &str,
        topics: &[&str],
        consumer: &mut GroupConsumer,
        producer: &TxnProducer,
        tasks: &mut BTreeMap<u32, Task>,
        coordinator_stuck: bool,
    ) -> bool {
        let mut consumer_replaced = false;
        let why = if coordinator_stuck {
            Some("the group coordinator has not answered two turns in a row")
        } else if consumer.context().liveness.lost() {
            Some("the consumer has no broker connection while the cluster answers")
        } else {
            None
        };
        if let Some(why) = why {
            tracing::error!(group, "{why}; joining with a new consumer");
            let fresh = self
                .consumer(group)
                .and_then(|c| c.subscribe(topics).map(|()| c).map_err(Into::into));
            match fresh {
                Ok(fresh) => {
                    drop_aside("lost-consumer", std::mem::replace(consumer, fresh));
                    tasks.clear();
                    self.health.tasks.store(0, Ordering::Relaxed);
                    consumer_replaced = true;
                }
                Err(e) => tracing::error!(error = %e, "cannot create a new consumer"),
            }
        }
        // A consumer that could not be replaced is tried again next time, without making a
        // new producer each time.
        if !consumer_replaced && producer.context().lost() {
            tracing::error!(
                group,
                "the transactional producer has no broker connection while the cluster answers; replacing it"
            );
            return true;
        }
        consumer_replaced
    }

    fn consumer(&self, group: &str) -> anyhow::Result<GroupConsumer> {
        let mut cfg = self.kafka.client_config();
        cfg.set("group.id", group)
            .set("group.protocol", "consumer")
            .set("group.remote.assignor", "range")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50");
        let ctx = GroupContext {
            assignment: Mutex::default(),
            prefix: self.kafka.topic_prefix.clone(),
            liveness: Liveness::watch(&mut cfg),
        };
        Ok(cfg.create_with_context(ctx)?)
    }

    fn producer(&self, group: &str) -> anyhow::Result<TxnProducer> {
        let mut cfg = self.kafka.client_config();
        cfg.set("transactional.id", format!("{group}-{}", self.instance))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "transaction.timeout.ms",
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            );
        let liveness = Liveness::watch(&mut cfg);
        let producer: TxnProducer = cfg.create_with_context(liveness)?;
        producer.init_transactions(KAFKA_TIMEOUT)?;
        Ok(producer)
    }

    /// Polls up to a batch of records: waits for the first, then takes what is already there.
    fn poll_batch(&self, consumer: &GroupConsumer) -> Result<Vec<LogRecord>, KafkaError> {
        let mut out = Vec::new();
        let mut wait = Duration::from_millis(100);
        while out.len() < self.config.max_batch {
            match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    if out.is_empty() {
                        return Err(e);
                    }
                    break;
                }
                Some(Ok(m)) => {
                    let topic = m
                        .topic()
                        .strip_prefix(&self.kafka.topic_prefix)
                        .unwrap_or(m.topic())
                        .to_string();
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(LogRecord {
                        topic,
                        partition: m.partition() as u32,
                        offset: m.offset() as u64,
                        timestamp: m.timestamp().to_millis().unwrap_or(0) * 1000,
                        key: m.key().unwrap_or_default().to_vec(),
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                    wait = Duration::ZERO;
                }
            }
        }
        Ok(out)
    }

    fn track_assignment(&self, consumer: &GroupConsumer, tasks: &mut BTreeMap<u32, Task>) {
        let mut a = consumer
            .context()
            .assignment
            .lock()
            .expect("assignment lock");
        for (assigned, topic, partition) in a.events.drain(..) {
            tracing::info!(assigned, %topic, partition, "rebalance");
            if assigned {
                let t = tasks.entry(partition).or_default();
                t.recovered = false;
                t.next.entry((topic, partition)).or_insert(0);
            } else if let Some(t) = tasks.get_mut(&partition) {
                t.next.remove(&(topic, partition));
                if t.next.is_empty() {
                    tasks.remove(&partition);
                }
            }
        }
        self.health
            .tasks
            .store(tasks.len() as u64, Ordering::Relaxed);
    }

    #[allow(clippy::too_many_arguments)]
    fn turn(
        &self,
        consumer: &GroupConsumer,
        producer: &Arc<TxnProducer>,
        group: &str,
        p: &dyn Processor,
        tasks: &mut BTreeMap<u32, Task>,
        records: Vec<LogRecord>,
        timers_due: bool,
    ) -> Result<(), TurnError> {
        // Tasks first assigned (or failed) finish their last checkpoint before anything else.
        let unrecovered: Vec<u32> = tasks
            .iter()
            .filter(|(_, t)| !t.recovered)
            .map(|(k, _)| *k)
            .collect();
        // A recovered task was sought back to its committed offsets: what was polled for it
        // before the seek comes again, in order, from the next poll.
        let mut sought = BTreeSet::new();
        for task in unrecovered {
            self.recover(consumer, producer, group, task, tasks)?;
            sought.insert(task);
        }
        let mut by_task: BTreeMap<u32, Vec<LogRecord>> = BTreeMap::new();
        for r in records {
            if sought.contains(&r.partition) {
                continue;
            }
            let Some(t) = tasks.get(&r.partition) else {
                continue; // revoked while polled
            };
            let next = t
                .next
                .get(&(r.topic.clone(), r.partition))
                .copied()
                .unwrap_or(0);
            if r.offset < next {
                continue; // already handled by a recovered checkpoint
            }
            by_task.entry(r.partition).or_default().push(r);
        }
        if timers_due {
            for task in tasks.keys().filter(|t| !sought.contains(t)) {
                by_task.entry(*task).or_default();
            }
        }
        let started = Instant::now();
        self.prefetch(p, tasks, &by_task)?;
        let pages = Pages::default();
        let prefetched = started.elapsed();
        let mut checkpoints = Vec::new();
        // Each checkpoint's own writes (its others are the task's pending rows).
        let mut owns = Vec::new();
        let mut handled = 0u64;
        // Rows the prefetch did not foresee, read one at a time while deciding.
        let mut read_while_deciding = 0usize;
        for (task_id, batch) in by_task {
            let task = tasks.get_mut(&task_id).expect("task exists");
            let id = (porch_schemas::now_micros()).max(task.last_id + 1);
            let cache = std::mem::take(&mut task.cache);
            let decided = loop {
                let mut txn = DistTxn::new(
                    &*self.store,
                    &cache,
                    &task.pending,
                    &pages,
                    &self.handle,
                    id,
                    task_id,
                    self.partitions,
                );
                match process_batch(&mut txn, &self.codec, p, &batch, timers_due, &task.poison) {
                    Ok(_) => {
                        let reads = txn.reads.take();
                        break Ok((txn.into_checkpoint(id), reads));
                    }
                    Err(e) => {
                        if let Err(e) = note_poison(&mut task.poison, e) {
                            break Err(TurnError::store(e.to_string()));
                        }
                    }
                }
            };
            task.cache = cache;
            let ((mut cp, own), reads) = decided?;
            task.poison.clear();
            read_while_deciding += reads.len();
            if task.cache.len() + reads.len() > CACHE_ROWS {
                task.cache.clear();
            }
            task.cache.extend(reads);
            if cp.records.is_empty() && cp.writes.is_empty() && cp.offsets.is_empty() {
                continue; // timers with nothing due
            }
            handled += batch.len() as u64;
            // A timer-only batch still names the task's input positions, so that its id is
            // committed as their metadata and recovery can tell whether it was committed.
            for ((topic, partition), next) in &task.next {
                if !cp
                    .offsets
                    .iter()
                    .any(|(t, p, _)| t == topic && p == partition)
                    && *next > 0
                {
                    cp.offsets.push((topic.clone(), *partition, *next));
                }
            }
            if cp.offsets.is_empty() {
                tracing::debug!(
                    task = task_id,
                    "timer output with no input position yet; deferred"
                );
                continue;
            }
            checkpoints.push((task_id, cp));
            owns.push(own);
        }
        if checkpoints.is_empty() {
            return Ok(());
        }
        let decided = started.elapsed();
        let (stored, sent) = self.finish(
            producer,
            &member(consumer)?,
            Some(group),
            &checkpoints,
            started,
        )?;
        tracing::debug!(
            group,
            records = handled,
            tasks = checkpoints.len(),
            prefetch_ms = prefetched.as_millis() as u64,
            decide_ms = (decided - prefetched).as_millis() as u64,
            read_while_deciding,
            stored_ms = (stored - decided).as_millis() as u64,
            sent_ms = (sent - decided).as_millis() as u64,
            commit_ms = (started.elapsed() - stored.max(sent)).as_millis() as u64,
            "turn"
        );
        for ((task, cp), own) in checkpoints.into_iter().zip(owns) {
            let t = tasks.get_mut(&task).expect("task exists");
            t.last_id = cp.id;
            for (topic, partition, next) in cp.offsets {
                t.next.insert((topic, partition), next);
            }
            if t.cache.len() + own.len() > CACHE_ROWS {
                t.cache.clear();
            }
            for w in own {
                let k = (w.table, w.key);
                t.cache.insert(k.clone(), w.value.clone());
                t.pending.insert(k, (w.value, cp.id));
            }
        }
        self.health.batches.fetch_add(1, Ordering::Relaxed);
        self.health.records.fetch_add(handled, Ordering::Relaxed);
        Ok(())
    }

    /// Reads ahead the rows the tasks' batches will read: each batch is decided once as a probe
    /// (rows not cached read as absent), and every row a probe asked for is fetched into its
    /// task's cache, all tasks' rows concurrently. A row found this way can lead a decision to
    /// rows it did not ask for while it was absent, so probes run again over what was fetched,
    /// a few rounds; whatever is left is read one by one while deciding. Nothing a probe
    /// decides is kept.
    fn prefetch(
        &self,
        p: &dyn Processor,
        tasks: &mut BTreeMap<u32, Task>,
        by_task: &BTreeMap<u32, Vec<LogRecord>>,
    ) -> Result<(), TurnError> {
        const ROUNDS: usize = 3;
        // Probes do not scan.
        let pages = Pages::default();
        let no_poison = HashMap::new();
        // A task whose probe missed nothing would miss nothing again: only the others probe on.
        let mut probing: Vec<u32> = by_task
            .iter()
            .filter(|(_, batch)| !batch.is_empty())
            .map(|(task, _)| *task)
            .collect();
        for _ in 0..ROUNDS {
            let mut wanted: Vec<(u32, RowId)> = Vec::new();
            for task_id in &probing {
                let batch = &by_task[task_id];
                let task = &tasks[task_id];
                let mut txn = DistTxn::new(
                    &*self.store,
                    &task.cache,
                    &task.pending,
                    &pages,
                    &self.handle,
                    porch_schemas::now_micros(),
                    *task_id,
                    self.partitions,
                );
                txn.probe = Some(Default::default());
                // Record by record, so that a record the probe cannot decide does not hide
                // the rows of the records after it.
                for rec in batch {
                    let _ = process_batch(
                        &mut txn,
                        &self.codec,
                        p,
                        std::slice::from_ref(rec),
                        false,
                        &no_poison,
                    );
                }
                let misses = txn.probe.take().unwrap_or_default().into_inner();
                wanted.extend(misses.into_iter().map(|k| (*task_id, k)));
            }
            probing = wanted.iter().map(|(task, _)| *task).collect();
            probing.dedup();
            if wanted.is_empty() {
                return Ok(());
            }
            // By table, so that the rows of one product partition come in one request.
            let mut by_table: BTreeMap<String, (Vec<u32>, Vec<String>)> = BTreeMap::new();
            for (task, (table, key)) in wanted {
                let (tasks, keys) = by_table.entry(table).or_default();
                tasks.push(task);
                keys.push(key);
            }
            let store = &*self.store;
            let fetched: Vec<(u32, RowId, Option<Vec<u8>>)> = self
                .handle
                .block_on(futures::future::try_join_all(by_table.into_iter().map(
                    |(table, (tasks, keys))| async move {
                        let values = store.get_many(&table, &keys).await?;
                        Ok::<_, StoreError>(
                            tasks
                                .into_iter()
                                .zip(keys)
                                .zip(values)
                                .map(|((task, key), v)| (task, (table.clone(), key), v))
                                .collect::<Vec<_>>(),
                        )
                    },
                )))
                .map_err(|e| TurnError::store(e.to_string()))?
                .into_iter()
                .flatten()
                .collect();
            for (task, k, v) in fetched {
                if let Some(t) = tasks.get_mut(&task) {
                    t.cache.insert(k, v);
                }
            }
        }
        Ok(())
    }

    /// Steps 3 and 4 for decided checkpoints: one Kafka transaction takes their records and
    /// input offsets; then the checkpoints are saved in `save_in`'s rows (none when a recovery
    /// finishes one saved before); it commits once both are done. Their rows go to the store
    /// after the commit ([`Self::project`], or the recovery). Returns how long into the turn
    /// the store's part and the sending took, for the turn's log line.
    ///
    /// A checkpoint is saved only once the group coordinator has taken the input offsets into
    /// the transaction, which it does only for a current member of the group (KIP-447: the
    /// member's epoch rides with them). A member that was fenced out of its group while it
    /// decided (a process paused past its session, say) learns it there, before it writes
    /// anything. A member paused after that point, past the transaction timeout, saves late,
    /// but with its checkpoint's id as write time, earlier than any id of the member given the
    /// task after the coordinator dropped this one: its checkpoint loses to that member's. So
    /// that such a checkpoint cannot stand in for a batch another member decided again, a
    /// member that finds its transaction open for `late_after` when it comes to save (a pause,
    /// a coordinator slow to answer) aborts instead: another member can decide the batch only
    /// once the group has given it the task, after this member's session lapsed, which is at
    /// least the session timeout less a heartbeat interval after it took these offsets.
    fn finish(
        &self,
        producer: &Arc<TxnProducer>,
        member: &Arc<ConsumerGroupMetadata>,
        save_in: Option<&str>,
        checkpoints: &[(u32, Checkpoint)],
        started: Instant,
    ) -> Result<(Duration, Duration), TurnError> {
        // Nothing of the transaction is visible before its commit; once the checkpoints are
        // saved the batch is decided (a recovery finishes it), and no row is written before.
        retry_txn("begin", || {
            producer.begin_transaction().map_err(TxnFailure::Kafka)
        })
        .map_err(TurnError::txn)?;
        let opened = Instant::now();
        if let Err(e) = self.send_all(producer, member, checkpoints) {
            return Err(self.abort(producer, TurnError::txn(e)));
        }
        let sent_at = started.elapsed();
        let open_for = opened.elapsed();
        let late_after = self.late_after.get();
        if save_in.is_some() && open_for >= late_after {
            let late = TurnError {
                message: format!(
                    "late: the transaction was open {} ms before its checkpoints could be \
                     saved (at most {} ms); nothing was saved",
                    open_for.as_millis(),
                    late_after.as_millis()
                ),
                fatal_producer: false,
                coordinator_unanswered: false,
            };
            return Err(self.abort(producer, late));
        }
        let saves: Vec<_> = save_in
            .map(|group| {
                checkpoints
                    .iter()
                    .map(|(task, cp)| (group, *task, cp.encode(), cp.id))
                    .collect()
            })
            .unwrap_or_default();
        let store = &*self.store;
        let stored = self.handle.block_on(futures_join(
            saves
                .into_iter()
                .map(|(group, task, body, id)| store.save_checkpoint(group, task, body, id)),
        ));
        let err = match stored {
            Ok(()) => {
                let stored_at = started.elapsed();
                // A commit is never abandoned on a producer that goes on: the next turn's
                // recovery must see the transaction's outcome settled, or it could finish it
                // twice. A commit the coordinator left unanswered replaces the producer (see
                // `after_txn_error`); the new one's init_transactions settles it first.
                match retry_txn("commit", || {
                    bounded("commit", producer, |p| p.commit_transaction(KAFKA_TIMEOUT))
                }) {
                    Ok(()) => return Ok((stored_at, sent_at)),
                    Err(e) => TurnError::txn(e),
                }
            }
            // Rows not written: nothing of the transaction may be committed.
            Err(e) => TurnError::store(e.to_string()),
        };
        Err(self.abort(producer, err))
    }

    /// The records and input offsets of decided checkpoints, into the open transaction.
    fn send_all(
        &self,
        producer: &Arc<TxnProducer>,
        member: &Arc<ConsumerGroupMetadata>,
        checkpoints: &[(u32, Checkpoint)],
    ) -> Result<(), TxnFailure> {
        let mut offsets = TopicPartitionList::new();
        for (_, cp) in checkpoints {
            for r in &cp.records {
                self.send(producer, r)?;
            }
            for (topic, partition, next) in &cp.offsets {
                offsets.add_partition_offset(
                    &self.kafka.physical(topic),
                    *partition as i32,
                    Offset::Offset(*next as i64),
                )?;
                if let Some(mut e) =
                    offsets.find_partition(&self.kafka.physical(topic), *partition as i32)
                {
                    e.set_metadata(cp.id.to_string());
                }
            }
        }
        let offsets = Arc::new(offsets);
        retry_txn("send offsets", || {
            let (offsets, meta) = (offsets.clone(), member.clone());
            bounded("send offsets", producer, move |p| {
                p.send_offsets_to_transaction(&offsets, &meta, KAFKA_TIMEOUT)
            })
        })
    }

    /// Aborts the open transaction of a failed turn; a producer that cannot abort is marked
    /// for replacement (a new one with the same transactional id settles what it left open).
    fn abort(&self, producer: &Arc<TxnProducer>, mut err: TurnError) -> TurnError {
        if !err.fatal_producer {
            if let Err(abort) = retry_txn("abort", || {
                bounded("abort", producer, |p| p.abort_transaction(KAFKA_TIMEOUT))
            }) {
                tracing::warn!(error = %abort, "abort failed; the producer will be replaced");
                err.fatal_producer = true;
            }
        }
        err
    }

    fn send(&self, producer: &TxnProducer, r: &OutRecord) -> Result<(), KafkaError> {
        let topic = self.kafka.physical(&r.topic);
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record = BaseRecord::to(&topic)
            .partition(r.partition as i32)
            .key(&r.key)
            .payload(&r.value)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    rec,
                )) => {
                    std::thread::sleep(Duration::from_millis(5));
                    record = rec;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Brings a task's projection up to its changelog: a checkpoint saved but not committed is
    /// finished (rows re-applied, records and offsets committed); then reading resumes at the
    /// committed offsets.
    fn recover(
        &self,
        consumer: &GroupConsumer,
        producer: &Arc<TxnProducer>,
        group: &str,
        task_id: u32,
        tasks: &mut BTreeMap<u32, Task>,
    ) -> Result<(), TurnError> {
        let task = tasks.get_mut(&task_id).expect("task exists");
        let mut wanted = TopicPartitionList::new();
        for (topic, partition) in task.next.keys() {
            wanted.add_partition(&self.kafka.physical(topic), *partition as i32);
        }
        let committed = consumer
            .committed_offsets(wanted, KAFKA_TIMEOUT)
            .map_err(|e| {
                // No answer from the group coordinator in all that time, while the rest of
                // the cluster may be answering: the consumer's coordinator handle may be
                // stuck for good (see `replace_lost`).
                let unanswered = matches!(
                    e,
                    KafkaError::MetadataFetch(rdkafka::types::RDKafkaErrorCode::OperationTimedOut)
                );
                let mut err = TurnError::kafka(e);
                err.coordinator_unanswered = unanswered;
                err
            })?;
        let mut metadata_ids = BTreeSet::new();
        let mut next: HashMap<(String, u32), u64> = HashMap::new();
        for e in committed.elements() {
            // A partition's own error (its offsets being loaded, an offset commit still in a
            // transaction) is no answer: taken for "nothing committed", it would resume the
            // partition wherever the consumer happens to be.
            e.error().map_err(|err| {
                TurnError::kafka_context(
                    format!("committed offset of {} [{}]", e.topic(), e.partition()),
                    err,
                )
            })?;
            let topic = e
                .topic()
                .strip_prefix(&self.kafka.topic_prefix)
                .unwrap_or(e.topic())
                .to_string();
            if let Offset::Offset(o) = e.offset() {
                next.insert((topic, e.partition() as u32), o as u64);
                if let Ok(id) = e.metadata().parse::<i64>() {
                    metadata_ids.insert(id);
                }
            }
        }
        let saved = self
            .handle
            .block_on(self.store.load_checkpoint(group, task_id))
            .map_err(|e| TurnError::store(e.to_string()))?;
        if let Some(bytes) = saved {
            let mut cp = Checkpoint::decode(&bytes)
                .map_err(|e| TurnError::store(format!("checkpoint of task {task_id}: {e}")))?;
            let committed_here = cp.offsets.iter().any(|(t, p, _)| {
                next.contains_key(&(t.clone(), *p)) && metadata_ids.contains(&cp.id)
            });
            task.last_id = task.last_id.max(cp.id);
            tracing::info!(task = task_id, checkpoint = cp.id, committed = ?metadata_ids, "recovering a task");
            if !committed_here {
                tracing::info!(
                    task = task_id,
                    checkpoint = cp.id,
                    records = cp.records.len(),
                    "finishing an uncommitted checkpoint"
                );
                self.health.recoveries.fetch_add(1, Ordering::Relaxed);
                let one = [(task_id, cp)];
                self.finish(producer, &member(consumer)?, None, &one, Instant::now())?;
                let [(_, done)] = one;
                cp = done;
                for (topic, partition, n) in &cp.offsets {
                    next.insert((topic.clone(), *partition), *n);
                }
            }
            // Its rows may not all be in the store yet (they are written after the commit):
            // they are before this task decides anything.
            self.handle
                .block_on(self.store.apply(cp.writes, cp.id))
                .map_err(|e| TurnError::store(e.to_string()))?;
        }
        // Resume at the committed offsets, or at the beginning where the group never committed
        // (what auto.offset.reset=earliest would do): records this member fetched past them
        // and dropped, in a turn that failed, come again. A partition whose seek fails is not
        // recovered: the turn fails and recovery runs again.
        let mut seek = TopicPartitionList::new();
        for (topic, partition) in task.next.keys() {
            let offset = next
                .get(&(topic.clone(), *partition))
                .map_or(Offset::Beginning, |n| Offset::Offset(*n as i64));
            seek.add_partition_offset(&self.kafka.physical(topic), *partition as i32, offset)
                .map_err(TurnError::kafka)?;
        }
        tracing::info!(
            task = task_id,
            ?next,
            "resuming a task at its committed offsets"
        );
        if seek.count() > 0 {
            let sought = consumer
                .seek_partitions(seek, KAFKA_TIMEOUT)
                .map_err(TurnError::kafka)?;
            for e in sought.elements() {
                if let Err(err) = e.error() {
                    return Err(TurnError::kafka_context(
                        format!("seeking {} [{}] after recovery", e.topic(), e.partition()),
                        err,
                    ));
                }
            }
        }
        for (k, v) in task.next.iter_mut() {
            *v = next.get(k).copied().unwrap_or(0);
        }
        task.cache.clear();
        task.pending.clear();
        task.recovered = true;
        Ok(())
    }
}

/// Runs store futures concurrently; the first error wins.
async fn futures_join<'a, I>(futs: I) -> Result<(), StoreError>
where
    I: IntoIterator<Item = crate::store::BoxFuture<'a, Result<(), StoreError>>>,
{
    let handles: Vec<_> = futs.into_iter().collect();
    for r in futures::future::join_all(handles).await {
        r?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RowWrite;
    use rdkafka::consumer::BaseConsumer;
    use test_store::MemStore;

    /// The broker of `PORCH_KAFKA` (`scripts/engines up`), waited for up to
    /// `PORCH_KAFKA_WAIT_SECS` (300): the test fails, never skips, without one.
    fn kafka() -> KafkaConfig {
        let cfg = KafkaConfig {
            topic_prefix: format!("fenced{:x}.", porch_schemas::now_micros()),
            ..KafkaConfig::from_env().expect("Kafka client properties")
        };
        cfg.wait_for_broker().unwrap_or_else(|e| panic!("{e}"));
        cfg
    }

    /// Joins the group and polls until the consumer owns a partition.
    fn member_of(rt: &DistributedRuntime, group: &str, topic: &str) -> GroupConsumer {
        let consumer = rt.consumer(group).expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer.assignment().expect("assignment").count() == 0 {
            assert!(Instant::now() < deadline, "{group}: no partition assigned");
            let _ = consumer.poll(Duration::from_millis(200));
        }
        consumer
    }

    fn checkpoint(id: i64, topic: &str, row: &str) -> Checkpoint {
        Checkpoint {
            id,
            offsets: vec![(topic.to_string(), 0, id as u64)],
            writes: vec![RowWrite {
                table: "t".into(),
                key: row.into(),
                value: Some(b"v".to_vec()),
            }],
            records: vec![OutRecord {
                topic: topic.to_string(),
                partition: 0,
                key: row.as_bytes().to_vec(),
                value: b"v".to_vec(),
                headers: vec![],
            }],
        }
    }

    /// A runtime over the broker of `PORCH_KAFKA` and a store in memory, with one input topic
    /// of one partition made for it (deleted with the prefix when the cleanup drops).
    struct Fixture {
        rt: DistributedRuntime,
        store: Arc<MemStore>,
        physical: String,
        _cleanup: porch_topics::kafka_admin::DeletePrefixOnDrop,
        // Last: the runtime's handle must outlive the runtime using it.
        _runtime: tokio::runtime::Runtime,
    }

    const INPUT: &str = "input";

    fn fixture(late_after: Duration) -> Fixture {
        let kafka = kafka();
        let cleanup = porch_topics::kafka_admin::DeletePrefixOnDrop(kafka.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let physical = kafka.physical(INPUT);
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            kafka.client_config().create().expect("admin");
        let created = runtime
            .block_on(admin.create_topics(
                &[rdkafka::admin::NewTopic::new(
                    &physical,
                    1,
                    rdkafka::admin::TopicReplication::Fixed(1),
                )],
                &rdkafka::admin::AdminOptions::new(),
            ))
            .expect("create topic");
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        let store = Arc::new(MemStore::default());
        let rt = DistributedRuntime {
            kafka,
            store: store.clone(),
            codec: Arc::new(Codec::new(Arc::new(
                porch_schemas::EmbeddedRegistry::in_memory(),
            ))),
            handle: runtime.handle().clone(),
            config: RuntimeConfig::default(),
            partitions: 1,
            stop: Arc::default(),
            health: Arc::default(),
            instance: "0".into(),
            late_after: Arc::new(LateBound::new(late_after)),
        };
        Fixture {
            rt,
            store,
            physical,
            _cleanup: cleanup,
            _runtime: runtime,
        }
    }

    /// A member fenced out of its group while it decided (paused past its session, say)
    /// writes nothing to the store when it goes on: the coordinator refuses its offsets
    /// first, so its checkpoint cannot replace the one of the member that took the task
    /// over. The member now in the group, with the same producer and store, saves its
    /// checkpoint: the refusal is the fencing, not the setup. Rows are written after the
    /// commit, never by `finish`.
    #[test]
    fn a_member_fenced_out_of_its_group_writes_nothing_to_the_store() {
        let Fixture {
            rt,
            store,
            physical,
            ..
        } = &fixture(LATE_AFTER);
        let (kafka, topic) = (&rt.kafka, INPUT);
        let group = format!("{}group", kafka.topic_prefix);
        let producer = Arc::new(rt.producer(&group).expect("transactional producer"));

        // The zombie's view of its membership, taken while it was a member; then it is gone
        // and another member owns the partition.
        let zombie = member_of(rt, &group, physical);
        let stale = member(&zombie).expect("membership");
        zombie.unsubscribe();
        drop(zombie);
        let successor = member_of(rt, &group, physical);

        let err = rt
            .finish(
                &producer,
                &stale,
                Some(&group),
                &[(0, checkpoint(1, topic, "zombie"))],
                Instant::now(),
            )
            .expect_err("the coordinator refuses a fenced member's offsets");
        println!("fenced: {err}");
        assert!(
            store.checkpoints.lock().unwrap().is_empty(),
            "a fenced member saved a checkpoint"
        );
        assert!(store.keys().is_empty(), "a fenced member wrote rows");

        let producer = if err.fatal_producer {
            Arc::new(rt.producer(&group).expect("transactional producer"))
        } else {
            producer
        };
        rt.finish(
            &producer,
            &member(&successor).expect("membership"),
            Some(&group),
            &[(0, checkpoint(2, topic, "owner"))],
            Instant::now(),
        )
        .expect("the member owning the task commits");
        assert!(store.keys().is_empty(), "rows written before the commit");
        let (id, saved) = store.checkpoints.lock().unwrap()[&(group.clone(), 0)].clone();
        assert_eq!(id, 2);
        assert_eq!(Checkpoint::decode(&saved).expect("checkpoint").id, 2);
    }

    /// A turn that comes to save its checkpoints with its transaction open for its limit (here
    /// zero: always) aborts and writes nothing: the task may have gone to another member by
    /// then, whose decision the late checkpoint would stand in for. A recovery finishing a
    /// checkpoint saved before still commits it, on the same producer.
    #[test]
    fn a_turn_whose_transaction_was_open_too_long_writes_nothing() {
        let Fixture {
            rt,
            store,
            physical,
            ..
        } = &fixture(Duration::ZERO);
        let group = format!("{}late", rt.kafka.topic_prefix);
        let producer = Arc::new(rt.producer(&group).expect("transactional producer"));
        let owner = member_of(rt, &group, physical);
        let membership = member(&owner).expect("membership");

        let err = rt
            .finish(
                &producer,
                &membership,
                Some(&group),
                &[(0, checkpoint(1, INPUT, "late"))],
                Instant::now(),
            )
            .expect_err("a transaction open too long saves nothing");
        assert!(err.to_string().contains("nothing was saved"), "{err}");
        assert!(!err.fatal_producer, "{err}");
        assert!(
            store.checkpoints.lock().unwrap().is_empty(),
            "a late turn saved a checkpoint"
        );
        assert!(store.keys().is_empty(), "a late turn wrote rows");

        rt.finish(
            &producer,
            &membership,
            None,
            &[(0, checkpoint(2, INPUT, "recovered"))],
            Instant::now(),
        )
        .expect("a recovery finishes its checkpoint");
        assert!(store.checkpoints.lock().unwrap().is_empty());

        // Only the recovery's record was committed; the late turn's was aborted.
        let reader: BaseConsumer = rt
            .kafka
            .client_config()
            // Assigned, never joined nor committed: the group is only librdkafka's requirement.
            .set("group.id", format!("{group}-reader"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        let mut from_start = TopicPartitionList::new();
        from_start
            .add_partition_offset(physical, 0, Offset::Beginning)
            .expect("partition");
        reader.assign(&from_start).expect("assign");
        // Up to 20 s for the first record, then until 2 s pass with no other.
        let mut keys = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let quiet = if keys.is_empty() { 200 } else { 2_000 };
            match reader.poll(Duration::from_millis(quiet)) {
                Some(m) => {
                    let m = m.expect("read");
                    keys.push(String::from_utf8_lossy(m.key().unwrap_or_default()).to_string());
                }
                None if !keys.is_empty() => break,
                None => {}
            }
        }
        assert_eq!(keys, vec!["recovered".to_string()]);
    }
}
