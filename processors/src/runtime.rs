//! The processor runtime: it owns the loop, positions, batching, dead letters and retries.
//! A processor only decides; one batch of input records becomes one atomic write of output
//! events, projection rows, command outcomes and input positions.

use crate::store::{key, tables, CommandState, CommandStatus, HistoryItem, HistoryRow};
use porch_schemas::*;
use porch_topics::{dlq_of, product_key, Append, BatchTxn, LogError, LogRecord, LogTxn, Pending};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a record could not be handled, and so what the runtime does about it.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The record itself is at fault (undecodable, inconsistent): dead-letter it and move on.
    #[error("{0}")]
    Poison(String),
    /// The store or log failed: abort the batch and retry it after a pause.
    #[error(transparent)]
    Retry(#[from] LogError),
}

/// A decoded input record.
pub enum Input {
    Command(CommandRecord),
    Event(EventRecord),
}

/// What caused the events being emitted: a command or an input event.
#[derive(Clone)]
pub struct Cause {
    pub id: String,
    pub tenant: TenantId,
    pub correlation_id: String,
    pub command: Option<(CommandId, &'static str)>,
}

impl Cause {
    pub fn of(input: &Input) -> Self {
        match input {
            Input::Command(c) => Cause {
                id: c.envelope.command_id.to_string(),
                tenant: c.envelope.tenant.clone(),
                correlation_id: c.envelope.correlation_id.clone(),
                command: Some((c.envelope.command_id.clone(), c.command.type_name())),
            },
            Input::Event(e) => Cause {
                id: e.envelope.event_id.clone(),
                tenant: e.envelope.tenant.clone(),
                correlation_id: e.envelope.correlation_id.clone(),
                command: None,
            },
        }
    }
}

/// A processor: its consumer group, its inputs, its output, and how it handles one record.
pub trait Processor: Send + Sync + 'static {
    /// The module name; also the consumer group.
    fn name(&self) -> &'static str;
    fn inputs(&self) -> Vec<String>;
    /// The events topic it writes (its changelog).
    fn output(&self) -> String;
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError>;
    /// Whether `punctuate` has work to look for.
    fn has_timers(&self) -> bool {
        false
    }
    /// Work due at `now` without an input record (timers); returns whether it did any.
    fn punctuate(&self, _ctx: &mut Ctx<'_, '_>, _now: Micros) -> Result<bool, HandleError> {
        Ok(false)
    }
}

/// The handle a processor decides through, inside one batch transaction.
pub struct Ctx<'a, 't> {
    txn: &'a mut (dyn BatchTxn + 't),
    codec: &'a Codec,
    module: &'static str,
    output: &'a str,
    cause: Option<Cause>,
    emitted: u32,
    /// Event types emitted for the current command.
    command_events: Vec<String>,
    /// The partition of the input record being handled (none while punctuating).
    partition: Option<u32>,
    /// The history row of the current cause, written when the cause is done.
    history: Option<(String, HistoryRow)>,
}

impl<'a, 't> Ctx<'a, 't> {
    pub fn now(&self) -> Micros {
        self.txn.now()
    }

    /// The partition (task) of the input record being handled; every domain topic being
    /// co-partitioned, that is the partition of the record's product on every topic.
    pub fn partition(&self) -> Option<u32> {
        self.partition
    }

    /// Appends an event to a given partition of `topic` without recording it in any history:
    /// a processor's note to itself on one of its own input topics (work continued in a later
    /// turn, as a Kafka Streams app writes to its own repartition topic).
    pub fn send_to(
        &mut self,
        topic: &str,
        partition: u32,
        key: &str,
        event: Event,
    ) -> Result<(), HandleError> {
        if self.txn.dry_run() {
            return Ok(());
        }
        let (bytes, correlation) = self.unrecorded(topic, event, key)?;
        self.txn.append_to(
            partition,
            Append {
                topic,
                key: key.as_bytes(),
                value: &bytes,
                headers: vec![("correlation_id".into(), correlation.into_bytes())],
            },
        )?;
        Ok(())
    }

    /// Appends an event to another topic than the processor's output, keyed by its product like
    /// every domain topic, without recording it in any history: a record for the readers of
    /// that topic (an order system's outcomes), in the same transaction as the decision.
    pub fn publish(
        &mut self,
        topic: &str,
        event: Event,
        aggregate_id: &str,
    ) -> Result<(), HandleError> {
        if self.txn.dry_run() {
            return Ok(());
        }
        let product = event.product_id().cloned().ok_or_else(|| {
            HandleError::Poison(format!("{} is about no product", event.full_name()))
        })?;
        let tenant = self.cause()?.tenant.clone();
        let (bytes, correlation) = self.unrecorded(topic, event, aggregate_id)?;
        let k = product_key(tenant.as_str(), product.as_str());
        self.txn.append(Append {
            topic,
            key: k.as_bytes(),
            value: &bytes,
            headers: vec![("correlation_id".into(), correlation.into_bytes())],
        })?;
        Ok(())
    }

    /// An event recorded in no history, encoded for `topic` under an envelope from the current
    /// cause (version 0), with the cause's correlation id.
    fn unrecorded(
        &mut self,
        topic: &str,
        event: Event,
        aggregate_id: &str,
    ) -> Result<(Vec<u8>, String), HandleError> {
        let cause = self.cause()?.clone();
        let envelope = EventEnvelope {
            event_id: format!("{}.{}.{}", cause.id, self.module, self.emitted),
            tenant: cause.tenant,
            aggregate_id: aggregate_id.to_string(),
            aggregate_version: 0,
            occurred_at: self.now(),
            causation_id: cause.id,
            correlation_id: cause.correlation_id.clone(),
        };
        self.emitted += 1;
        let record = EventRecord { envelope, event };
        let bytes = self.codec.encode_event(topic, &record).map_err(|e| {
            HandleError::Poison(format!("cannot encode {}: {e}", record.event.full_name()))
        })?;
        Ok((bytes, cause.correlation_id))
    }

    /// Loads a projection row, or the default state when there is none.
    pub fn load<S: DeserializeOwned + Default>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<S, HandleError> {
        match self.txn.get(table, key)? {
            None => Ok(S::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                HandleError::Poison(format!("row {table}/{key} does not decode: {e}"))
            }),
        }
    }

    /// Loads a raw row (no default).
    pub fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, HandleError> {
        Ok(self.txn.get(table, key)?)
    }

    pub fn save<S: Serialize>(
        &mut self,
        table: &str,
        key: &str,
        state: &S,
    ) -> Result<(), HandleError> {
        let bytes = serde_json::to_vec(state).map_err(|e| HandleError::Poison(e.to_string()))?;
        self.txn.put(table, key, &bytes)?;
        Ok(())
    }

    pub fn put_raw(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), HandleError> {
        self.txn.put(table, key, value)?;
        Ok(())
    }

    /// Rows of `table` whose key starts with `prefix`, seeing this batch's writes.
    pub fn scan(
        &self,
        table: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, HandleError> {
        self.scan_after(table, prefix, None, limit)
    }

    /// Rows of `table` whose key starts with `prefix`, after `start_after` (a page of a longer
    /// walk), seeing this batch's writes.
    pub fn scan_after(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, HandleError> {
        Ok(self.txn.scan(table, prefix, start_after, limit)?)
    }

    pub fn remove(&mut self, table: &str, key: &str) -> Result<(), HandleError> {
        self.txn.remove(table, key)?;
        Ok(())
    }

    /// Sets the cause of what follows (used by punctuation, which has no input record).
    pub fn set_cause(&mut self, cause: Cause) -> Result<(), HandleError> {
        self.flush_history()?;
        self.cause = Some(cause);
        self.emitted = 0;
        Ok(())
    }

    fn cause(&self) -> Result<&Cause, HandleError> {
        self.cause
            .as_ref()
            .ok_or_else(|| HandleError::Poison("no cause set".into()))
    }

    /// Appends an event of `aggregate_id` at `version` to the output topic, with its envelope,
    /// and records it in the product's history.
    pub fn emit(
        &mut self,
        event: Event,
        aggregate_id: &str,
        version: i64,
    ) -> Result<(), HandleError> {
        let cause = self.cause()?.clone();
        // Deterministic from the cause, and unique across modules: two modules reacting to
        // the same cause (or to causes at the same depth) never share an id.
        let envelope = EventEnvelope {
            event_id: format!("{}.{}.{}", cause.id, self.module, self.emitted),
            tenant: cause.tenant.clone(),
            aggregate_id: aggregate_id.to_string(),
            aggregate_version: version,
            occurred_at: self.now(),
            causation_id: cause.id.clone(),
            correlation_id: cause.correlation_id.clone(),
        };
        self.emitted += 1;
        let product = event.product_id().cloned().ok_or_else(|| {
            HandleError::Poison(format!("{} is about no product", event.full_name()))
        })?;
        let record = EventRecord { envelope, event };
        if !self.txn.dry_run() {
            let bytes = self.codec.encode_event(self.output, &record).map_err(|e| {
                HandleError::Poison(format!("cannot encode {}: {e}", record.event.full_name()))
            })?;
            let k = product_key(cause.tenant.as_str(), product.as_str());
            self.txn.append(Append {
                topic: self.output,
                key: k.as_bytes(),
                value: &bytes,
                headers: vec![(
                    "correlation_id".into(),
                    cause.correlation_id.clone().into_bytes(),
                )],
            })?;
        }
        if !matches!(record.event, Event::CommandRejected(_)) {
            self.command_events
                .push(record.event.type_name().to_string());
            // History is written for readers outside the processors, never read by them.
            if self.txn.dry_run() {
                return Ok(());
            }
            let item = HistoryItem {
                event: record.event.type_name().to_string(),
                aggregate_id: record.envelope.aggregate_id.clone(),
                version,
                n: self.emitted - 1,
                detail: event_json(&record.event),
            };
            let hkey_prefix = key(&[cause.tenant.as_str(), product.as_str()]);
            match &mut self.history {
                Some((k, row))
                    if k.strip_prefix(hkey_prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/')) =>
                {
                    row.entries.push(item)
                }
                _ => {
                    self.flush_history()?;
                    let hkey = key(&[
                        &hkey_prefix,
                        &format!("{:020}", record.envelope.occurred_at),
                        &record.envelope.event_id,
                    ]);
                    let row = HistoryRow {
                        at: record.envelope.occurred_at,
                        module: self.module.to_string(),
                        causation_id: cause.id.clone(),
                        entries: vec![item],
                    };
                    self.history = Some((hkey, row));
                }
            }
        }
        Ok(())
    }

    /// Writes the history row of the current cause, if it has one.
    fn flush_history(&mut self) -> Result<(), HandleError> {
        if let Some((k, row)) = self.history.take() {
            self.save(tables::HISTORY, &k, &row)?;
        }
        Ok(())
    }

    /// Refuses the current command: a CommandRejected outcome on the output topic and status
    /// REJECTED with the reasons.
    pub fn reject(&mut self, product: &ProductId, reasons: Vec<Reason>) -> Result<(), HandleError> {
        let cause = self.cause()?.clone();
        let Some((command_id, command_type)) = cause.command.clone() else {
            return Ok(());
        };
        let rejected = CommandRejected {
            command_id: command_id.clone(),
            command_type: command_type.to_string(),
            product_id: product.clone(),
            reasons: reasons.clone(),
        };
        self.emit(rejected.into(), command_id.as_str(), 0)?;
        self.finish_command(CommandState::Rejected, product, reasons)
    }

    /// Marks the current command APPLIED with the events it caused.
    pub fn applied(&mut self, product: &ProductId) -> Result<(), HandleError> {
        self.finish_command(CommandState::Applied, product, vec![])
    }

    fn finish_command(
        &mut self,
        state: CommandState,
        product: &ProductId,
        reasons: Vec<Reason>,
    ) -> Result<(), HandleError> {
        let cause = self.cause()?.clone();
        let Some((command_id, command_type)) = cause.command else {
            return Ok(());
        };
        let k = key(&[cause.tenant.as_str(), command_id.as_str()]);
        let mut status: CommandStatus = match self.txn.get(tables::COMMAND, &k)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| HandleError::Poison(e.to_string()))?
            }
            None => CommandStatus {
                command_id: command_id.clone(),
                command_type: command_type.to_string(),
                status: CommandState::Accepted,
                aggregate_id: product.to_string(),
                product_id: product.clone(),
                reasons: vec![],
                events: vec![],
                accepted_at: self.now(),
                completed_at: None,
            },
        };
        status.status = state;
        status.reasons = reasons;
        status.events = std::mem::take(&mut self.command_events);
        status.completed_at = Some(self.now());
        self.save(tables::COMMAND, &k, &status)
    }

    /// Whether a command was already applied or rejected (a processor applies a command once).
    pub fn command_done(
        &self,
        tenant: &TenantId,
        command_id: &CommandId,
    ) -> Result<bool, HandleError> {
        let k = key(&[tenant.as_str(), command_id.as_str()]);
        Ok(match self.txn.get(tables::COMMAND, &k)? {
            None => false,
            Some(bytes) => serde_json::from_slice::<CommandStatus>(&bytes)
                .map(|s| s.status != CommandState::Accepted)
                .unwrap_or(false),
        })
    }
}

/// An event body as JSON (for history).
fn event_json(event: &Event) -> serde_json::Value {
    macro_rules! j {
        ($($v:ident),+) => {
            match event { $(Event::$v(b) => serde_json::to_value(b),)+ }
        };
    }
    j!(
        ProductCreated,
        ProductUpdated,
        ProductReady,
        ProductDeactivated,
        ProductReactivated,
        ProductPublished,
        VariantsCreated,
        VariantUpdated,
        VariantDiscontinued,
        OfferCreated,
        OfferUpdated,
        OfferWithdrawn,
        StockAdjusted,
        StockReserved,
        ReservationReleased,
        ReservationFailed,
        ReservationCommitted,
        ReservationExpired,
        ReservationOutcome,
        InventoryAvailable,
        InventoryDepleted,
        ComplianceApproved,
        ComplianceRejected,
        ComplianceReviewRequested,
        OfferActivated,
        OfferSuspended,
        OfferEnded,
        ListingVisible,
        ListingHidden,
        ChannelSettingsChanged,
        ChannelResyncRequested,
        ListingRequested,
        ListingStateChanged,
        ListingOutcome,
        CommandRejected
    )
    .unwrap_or(serde_json::Value::Null)
}

/// Tuning of the loop.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Records read per partition per batch.
    pub max_per_partition: usize,
    /// Records per batch (one transaction).
    pub max_batch: usize,
    /// How often to check timers when idle.
    pub idle_wait: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_per_partition: 256,
            max_batch: 2048,
            idle_wait: Duration::from_millis(500),
        }
    }
}

/// The processors of the embedded pipeline, run one after another inside each round's single
/// transaction, in pipeline order: a command accepted in a round flows through every stage of
/// that round (each stage reads what the ones before it appended, uncommitted), and the round's
/// commands, records, rows and positions are committed together, with one fsync.
pub struct Stages {
    stages: Vec<Stage>,
    codec: Arc<Codec>,
    config: RuntimeConfig,
    /// Processing is held after a failure that is not a record's fault, until this instant.
    paused_until: Option<Instant>,
    backoff: Duration,
    retention: Option<crate::retention::Retention>,
}

struct Stage {
    processor: Arc<dyn Processor>,
    inputs: Vec<String>,
    last_timers: Instant,
    /// Records found poisonous: dead-lettered, not handled, when their round is redone.
    poison: Poison,
}

/// Why a round's stages failed.
pub enum StageFailure {
    /// A record is at fault: it is noted, and the round is redone with it dead-lettered.
    Poison,
    /// The store failed: processing pauses (with a growing backoff), accepting goes on.
    Paused(LogError),
}

const FIRST_BACKOFF: Duration = Duration::from_millis(50);

impl Stages {
    pub fn new(
        processors: Vec<Arc<dyn Processor>>,
        codec: Arc<Codec>,
        config: RuntimeConfig,
    ) -> Self {
        let now = Instant::now();
        Self {
            stages: processors
                .into_iter()
                .map(|processor| Stage {
                    inputs: processor.inputs(),
                    processor,
                    last_timers: now,
                    poison: HashMap::new(),
                })
                .collect(),
            codec,
            config,
            paused_until: None,
            backoff: FIRST_BACKOFF,
            retention: None,
        }
    }

    /// Trims the log by `retention` in the rounds.
    pub fn with_retention(mut self, retention: crate::retention::Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Whether processing runs in the next round (it is held for a while after a failure).
    pub fn active(&self) -> bool {
        self.paused_until.is_none_or(|t| Instant::now() >= t)
    }

    /// How long an idle pipeline may wait before a timer is due.
    pub fn idle_wait(&self) -> Duration {
        self.config.idle_wait
    }

    /// Runs every stage once over what its group has not read (and its timers when due), in
    /// `txn`. Returns whether anything was written.
    pub fn run(&mut self, txn: &mut LogTxn<'_>) -> Result<bool, StageFailure> {
        let mut wrote = false;
        for stage in &mut self.stages {
            let p = stage.processor.as_ref();
            let batch = txn
                .read_pending(Pending {
                    group: p.name(),
                    topics: &stage.inputs,
                    per_partition: self.config.max_per_partition,
                    max: self.config.max_batch,
                })
                .map_err(StageFailure::Paused)?;
            let timers = p.has_timers() && stage.last_timers.elapsed() >= self.config.idle_wait;
            if batch.is_empty() && !timers {
                continue;
            }
            if timers {
                stage.last_timers = Instant::now();
            }
            match process_batch(txn, &self.codec, p, &batch, timers, &stage.poison) {
                Ok(timed) => wrote |= timed || !batch.is_empty(),
                Err(e) => match note_poison(&mut stage.poison, e) {
                    Ok(()) => return Err(StageFailure::Poison),
                    Err(e) => {
                        tracing::error!(processor = p.name(), error = %e, "processing failed; retrying");
                        return Err(StageFailure::Paused(e));
                    }
                },
            }
        }
        if let Some(retention) = self.retention.as_mut().filter(|r| r.due()) {
            let now = txn.now();
            wrote |= retention.run(txn, now).map_err(StageFailure::Paused)? > 0;
        }
        Ok(wrote)
    }

    /// After a round failed in its stages: hold processing for a while unless a record was at
    /// fault (then the round is redone at once, without it).
    pub fn failed(&mut self, failure: &StageFailure) {
        if let StageFailure::Paused(_) = failure {
            self.paused_until = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// After a round committed: poison noted for it has been dead-lettered.
    pub fn committed(&mut self) {
        self.paused_until = None;
        self.backoff = FIRST_BACKOFF;
        for s in &mut self.stages {
            s.poison.clear();
        }
    }
}

/// Records found poisonous, by (topic, partition, offset), with why: the batch is redone with
/// them dead-lettered.
pub(crate) type Poison = HashMap<(String, u32, u64), String>;

/// Notes the record a `LogError::Poison` names; any other error is handed back.
pub(crate) fn note_poison(poison: &mut Poison, e: LogError) -> Result<(), LogError> {
    match e {
        LogError::Poison {
            topic,
            partition,
            offset,
            reason,
        } => {
            poison.insert((topic, partition, offset), reason);
            Ok(())
        }
        other => Err(other),
    }
}

/// Handles a batch, and due timers, inside one transaction; returns whether the timers did work.
pub(crate) fn process_batch(
    txn: &mut dyn BatchTxn,
    codec: &Codec,
    p: &dyn Processor,
    batch: &[LogRecord],
    timers: bool,
    poison: &Poison,
) -> Result<bool, LogError> {
    let output = p.output();
    let mut positions: std::collections::BTreeMap<(&str, u32), u64> = Default::default();
    for rec in batch {
        if let Some(reason) = poison.get(&(rec.topic.clone(), rec.partition, rec.offset)) {
            dead_letter(txn, p.name(), rec, reason)?;
            positions.insert((rec.topic.as_str(), rec.partition), rec.offset + 1);
            continue;
        }
        let outcome = match decode(codec, rec) {
            Ok(input) => {
                let mut ctx = Ctx {
                    txn,
                    codec,
                    module: p.name(),
                    output: &output,
                    cause: Some(Cause::of(&input)),
                    emitted: 0,
                    command_events: vec![],
                    partition: Some(rec.partition),
                    history: None,
                };
                handle_one(&mut ctx, p, &input).and_then(|()| ctx.flush_history())
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {}
            Err(HandleError::Retry(e)) => return Err(e),
            // Roll the whole batch back so nothing of the record's partial work remains.
            Err(HandleError::Poison(reason)) => {
                return Err(LogError::Poison {
                    topic: rec.topic.clone(),
                    partition: rec.partition,
                    offset: rec.offset,
                    reason,
                })
            }
        }
        positions.insert((rec.topic.as_str(), rec.partition), rec.offset + 1);
    }
    // Once per partition: the batch commits as a whole, so only where it ends matters.
    for ((topic, partition), next) in positions {
        txn.commit_position(p.name(), topic, partition, next)?;
    }
    if !timers {
        return Ok(false);
    }
    let mut ctx = Ctx {
        txn,
        codec,
        module: p.name(),
        output: &output,
        cause: None,
        emitted: 0,
        command_events: vec![],
        partition: None,
        history: None,
    };
    let now = ctx.now();
    match p
        .punctuate(&mut ctx, now)
        .and_then(|w| ctx.flush_history().map(|()| w))
    {
        Ok(worked) => Ok(worked),
        Err(HandleError::Retry(e)) => Err(e),
        Err(HandleError::Poison(reason)) => {
            tracing::error!(processor = p.name(), %reason, "timer failed");
            Ok(false)
        }
    }
}

/// Applies a command once: a command already applied or rejected is skipped.
fn handle_one(ctx: &mut Ctx<'_, '_>, p: &dyn Processor, input: &Input) -> Result<(), HandleError> {
    if let Input::Command(c) = input {
        if ctx.command_done(&c.envelope.tenant, &c.envelope.command_id)? {
            return Ok(());
        }
    }
    p.handle(ctx, input)
}

/// Decodes an input record. A record that does not decode is poison; a registry that cannot be
/// asked right now is not the record's fault, so the batch is retried instead.
fn decode(codec: &Codec, rec: &LogRecord) -> Result<Input, HandleError> {
    let fail = |e: CodecError| {
        if e.is_retryable() {
            HandleError::Retry(LogError::Aborted(format!("schema registry: {e}")))
        } else {
            HandleError::Poison(e.to_string())
        }
    };
    if porch_topics::carries_commands(&rec.topic) {
        codec
            .decode_command(&rec.value)
            .map(Input::Command)
            .map_err(fail)
    } else {
        codec
            .decode_event(&rec.value)
            .map(Input::Event)
            .map_err(fail)
    }
}

/// Puts a record on its topic's dead-letter topic, same partition, with the error in headers.
fn dead_letter(
    txn: &mut dyn BatchTxn,
    group: &str,
    rec: &LogRecord,
    reason: &str,
) -> Result<(), LogError> {
    tracing::warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, %reason, "dead-lettering record");
    let mut headers = rec.headers.clone();
    headers.extend([
        ("dlq.error".to_string(), reason.as_bytes().to_vec()),
        ("dlq.topic".to_string(), rec.topic.as_bytes().to_vec()),
        (
            "dlq.partition".to_string(),
            rec.partition.to_string().into_bytes(),
        ),
        (
            "dlq.offset".to_string(),
            rec.offset.to_string().into_bytes(),
        ),
        ("dlq.consumer_group".to_string(), group.as_bytes().to_vec()),
    ]);
    let dlq = dlq_of(&rec.topic);
    txn.append_to(
        rec.partition,
        Append {
            topic: &dlq,
            key: &rec.key,
            value: &rec.value,
            headers,
        },
    )?;
    Ok(())
}
