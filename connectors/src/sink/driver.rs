//! The loop of a channel connector: read requests, batch them per account, act on each batch
//! through the channel's service, write what the channel confirmed, and only then move the input
//! positions. It reads its control row (pause, resume, restart, redrive) and writes its status row
//! as it goes.

use super::ledger::{ledger_key, write_time, LedgerEntry, Step, LEDGER_TABLE};
use super::positions::Positions;
use super::retry::{Exhausted, Gate, Retrier, RetryClass, RetryPolicy};
use super::status::{
    status_key, ConnectorState, ConnectorStatus, ControlRow, CONTROL_TABLE, STATUS_EVERY,
    STATUS_TABLE,
};
use super::{
    dead_letter_topic, ChannelService, Completion, ItemResult, OnChannel, OutRecord, PortError,
    RowStore, SinkPort, SinkRequest, CHANNEL_EVENTS,
};
use porch_processors::domain::channel::Action;
use porch_processors::store::RowWrite;
use porch_schemas::{
    now_micros, Codec, Event, EventEnvelope, EventRecord, ListingOutcome, Reason, RegionCode,
    TenantId,
};
use porch_topics::{product_key, LogRecord};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The topic outcomes go to.
const OUTCOMES: &str = "channel.outcomes";

/// How a connector batches and retries.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Requests per call at most.
    pub batch_size: usize,
    /// How long a batch that is not full waits for more requests.
    pub linger: Duration,
    /// Batches under way at once, over every account (a batch waiting for its confirmation
    /// holds its place).
    pub max_in_flight: usize,
    /// Batches under way at once for one account: the channel's limits are per account, and no
    /// account waits behind the others'.
    pub max_in_flight_per_account: usize,
    /// Requests read ahead of the batches.
    pub max_queue: usize,
    pub retry: RetryPolicy,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            batch_size: 1_000,
            linger: Duration::from_millis(100),
            max_in_flight: 64,
            max_in_flight_per_account: 4,
            max_queue: 20_000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Completions that fail this many times in a row stop the connector (FAILED) until a restart.
const FAIL_AFTER: u32 = 10;

/// A connector: its name, the channel's service, and the ports it runs on.
pub struct Sink {
    pub name: String,
    /// This instance's name in its group (its status row).
    pub instance: String,
    pub service: Arc<dyn ChannelService>,
    pub settings: SinkSettings,
    pub codec: Arc<Codec>,
    pub rows: Arc<dyn RowStore>,
    pub status: Arc<ConnectorStatus>,
    pub gate: Gate,
}

/// A batch's end: each request with what became of it, and the ledger rows that record it.
struct BatchDone {
    requests: Vec<SinkRequest>,
    results: Vec<Done>,
    /// Ledger rows with their write times.
    ledger: Vec<(i64, RowWrite)>,
}

/// What became of one request, as the loop reports it.
#[derive(Debug, Clone)]
enum Done {
    Result(ItemResult),
    /// A newer request for the item was acted on already: nothing to send, nothing to report.
    Superseded,
}

struct Queued {
    request: SinkRequest,
    since: Instant,
}

/// Something the loop still has to write: outcomes and dead letters, and the records they
/// finish.
#[derive(Default)]
struct Unwritten {
    /// Ledger rows of what the channels confirmed, with their write times.
    ledger: Vec<(i64, RowWrite)>,
    records: Vec<OutRecord>,
    finished: Vec<(String, u32, u64)>,
    since: Option<Instant>,
}

impl Sink {
    /// Runs until `stop` is set.
    pub async fn run(self, mut port: Box<dyn SinkPort>, stop: Arc<AtomicBool>) {
        let this = Arc::new(self);
        let retrier = Arc::new(Retrier::new(
            this.settings.retry.clone(),
            this.gate.clone(),
            this.status.clone(),
        ));
        let mut queue: VecDeque<Queued> = VecDeque::new();
        let mut locked: HashSet<String> = HashSet::new();
        let mut positions = Positions::default();
        let mut batches: JoinSet<BatchDone> = JoinSet::new();
        let mut per_account: std::collections::HashMap<Account, usize> = Default::default();
        let mut unwritten = Unwritten::default();
        let mut failures = 0u32;
        // A restart whose rewind failed: when, so that it is tried again before any read.
        let mut rewind_failed: Option<Instant> = None;
        let mut seen: Option<ControlRow> = None;
        let mut last_control = Instant::now() - Duration::from_secs(60);
        let mut last_status = Instant::now() - Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) {
            if last_control.elapsed() >= Duration::from_secs(1) {
                last_control = Instant::now();
                if let Some(control) = this.read_control().await {
                    let restart = seen.as_ref().is_some_and(|s| control.restarts > s.restarts);
                    let redrive = seen.as_ref().is_some_and(|s| control.redrives > s.redrives);
                    this.gate.set_paused(control.paused);
                    if restart {
                        tracing::info!(connector = %this.name, "restarting: in-flight work dropped, reading again from the committed positions");
                        batches.abort_all();
                        while batches.join_next().await.is_some() {}
                        queue.clear();
                        locked.clear();
                        per_account.clear();
                        positions.clear();
                        unwritten = Unwritten::default();
                        failures = 0;
                        this.status.set_state(ConnectorState::Running);
                        if let Err(e) = port.rewind().await {
                            this.status
                                .set_last_error(&format!("rewinding the input: {e}"));
                            rewind_failed = Some(Instant::now());
                        }
                    }
                    if redrive {
                        tracing::info!(connector = %this.name, "redriving the dead-letter topic");
                        if let Err(e) = port.redrive().await {
                            this.status.set_last_error(&e.to_string());
                        }
                    }
                    if this.status.state() != ConnectorState::Failed {
                        this.status.set_state(if control.paused {
                            ConnectorState::Paused
                        } else {
                            ConnectorState::Running
                        });
                    }
                    seen = Some(control);
                }
            }
            if last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                match port.lag().await {
                    Ok(lag) => this.status.set_lag(lag),
                    Err(e) => tracing::debug!(error = %e, "reading the connector's lag"),
                }
                this.status
                    .set_in_flight((queue.len() + locked.len()) as u64);
                this.write_status().await;
            }
            if this.status.state() == ConnectorState::Failed {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let paused = this.gate.paused();
            if let Some(since) = rewind_failed {
                // Nothing is read until the input is back at its committed positions.
                if since.elapsed() < Duration::from_millis(500) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                match port.rewind().await {
                    Ok(()) => rewind_failed = None,
                    Err(e) => {
                        this.status
                            .set_last_error(&format!("rewinding the input: {e}"));
                        rewind_failed = Some(Instant::now());
                        continue;
                    }
                }
            }
            if !paused && queue.len() < this.settings.max_queue {
                // Idle: wait for input. Requests lingering with no batch under way: a short wait,
                // not a spin. Batches under way: the select below waits.
                let wait = Duration::from_millis(match (queue.is_empty(), batches.is_empty()) {
                    (true, true) => 200,
                    (false, true) => 10,
                    _ => 0,
                });
                match port.poll(this.settings.max_queue - queue.len(), wait).await {
                    Ok(records) => {
                        for r in records {
                            positions.read(&r.topic, r.partition, r.offset);
                            match this.decode(&r).await {
                                Ok(Some(request)) => queue.push_back(Queued {
                                    request,
                                    since: Instant::now(),
                                }),
                                Ok(None) => positions.done(&r.topic, r.partition, r.offset),
                                Err(reason) => unwritten.dead_letter(&this.name, &r, &reason),
                            }
                        }
                    }
                    Err(e) => {
                        this.status
                            .set_last_error(&format!("reading the input: {e}"));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            } else {
                // Paused, or as much read ahead as allowed: read nothing, but stay in the group.
                let wait = Duration::from_millis(if batches.is_empty() { 100 } else { 0 });
                if let Err(e) = port.hold(wait).await {
                    this.status
                        .set_last_error(&format!("holding the input: {e}"));
                }
            }
            let revoked = port.revoked();
            if !revoked.is_empty() {
                let gone = |topic: &str, p: u32| topic == CHANNEL_EVENTS && revoked.contains(&p);
                queue.retain(|q| !gone(&q.request.raw.topic, q.request.raw.partition));
                positions.retain(|t, p| !gone(t, p));
            }
            while !paused && batches.len() < this.settings.max_in_flight {
                let full: HashSet<Account> = per_account
                    .iter()
                    .filter(|(_, n)| **n >= this.settings.max_in_flight_per_account)
                    .map(|(a, _)| a.clone())
                    .collect();
                let Some(batch) = take_batch(&mut queue, &locked, &full, &this.settings) else {
                    break;
                };
                for r in &batch {
                    locked.insert(r.item_key());
                }
                *per_account.entry(account_of(&batch[0])).or_default() += 1;
                let (sink, retrier) = (this.clone(), retrier.clone());
                batches.spawn(async move { sink.act(batch, &retrier).await });
            }
            if !batches.is_empty() {
                let mut done = Vec::new();
                tokio::select! {
                    first = batches.join_next() => done.extend(first),
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
                // Every batch finished by now is written with this one: one write for many.
                while let Some(more) = batches.try_join_next() {
                    done.push(more);
                }
                for d in done.into_iter().flatten() {
                    for r in &d.requests {
                        locked.remove(&r.item_key());
                    }
                    if let Some(first) = d.requests.first() {
                        let account = account_of(first);
                        if let Some(n) = per_account.get_mut(&account) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                per_account.remove(&account);
                            }
                        }
                    }
                    this.finish(d, &mut unwritten);
                }
            }
            // Positions of records that were not requests move with the next write, or on
            // their own after a second.
            let due = !unwritten.records.is_empty()
                || !unwritten.finished.is_empty()
                || !unwritten.ledger.is_empty()
                || (positions.has_committable()
                    && unwritten.since.get_or_insert_with(Instant::now).elapsed()
                        >= Duration::from_secs(1));
            if due {
                for (t, p, o) in &unwritten.finished {
                    positions.done(t, *p, *o);
                }
                let completion = Completion {
                    rows: std::mem::take(&mut unwritten.ledger),
                    records: std::mem::take(&mut unwritten.records),
                    positions: positions.committable(),
                };
                let finished = std::mem::take(&mut unwritten.finished);
                match port.complete(completion.clone()).await {
                    Ok(()) => {
                        failures = 0;
                        unwritten.since = None;
                    }
                    Err(e) => {
                        failures += 1;
                        this.status
                            .set_last_error(&format!("writing outcomes: {e}"));
                        tracing::warn!(connector = %this.name, error = %e, "writing outcomes failed; retrying");
                        // Written again with the next completion; the positions are asked for
                        // again, as nothing was committed.
                        unwritten.records = completion.records;
                        unwritten.ledger = completion.rows;
                        unwritten.finished = finished;
                        positions.uncommit(&completion.positions);
                        if failures >= FAIL_AFTER {
                            tracing::error!(connector = %this.name, "outcomes cannot be written; the connector stops until restarted");
                            this.status.set_state(ConnectorState::Failed);
                        }
                        tokio::time::sleep(Duration::from_millis(
                            200 * u64::from(failures.min(10)),
                        ))
                        .await;
                    }
                }
            }
        }
        batches.abort_all();
        this.write_status().await;
    }

    /// A record of the input as a request of this channel; `None` for anything else. An error
    /// is a record that can never be read (to the dead-letter topic); a registry that cannot be
    /// asked now is waited for.
    async fn decode(&self, r: &LogRecord) -> Result<Option<SinkRequest>, String> {
        let mut wait = Duration::from_millis(100);
        let record = loop {
            match self.codec.decode_event(&r.value) {
                Ok(record) => break record,
                Err(e) if e.is_retryable() => {
                    self.status.set_last_error(&format!("schema registry: {e}"));
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let Event::ListingRequested(request) = record.event else {
            return Ok(None);
        };
        if request.channel != self.service.channel() {
            return Ok(None);
        }
        let mut wait = Duration::from_millis(100);
        loop {
            match self.service.serves(&record.envelope.tenant, &request).await {
                Ok(true) => break,
                Ok(false) => return Ok(None),
                Err(e) => {
                    self.status.set_last_error(&e);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        let action = Action::parse(&request.action)
            .ok_or_else(|| format!("action {:?} is neither UPSERT nor DELETE", request.action))?;
        if action == Action::Upsert && request.item.is_none() {
            return Err("an UPSERT without its item".into());
        }
        Ok(Some(SinkRequest {
            tenant: record.envelope.tenant,
            event_id: record.envelope.event_id,
            correlation_id: record.envelope.correlation_id,
            request,
            action,
            on_channel: super::OnChannel::Absent,
            raw: r.clone(),
        }))
    }

    async fn read_control(&self) -> Option<ControlRow> {
        match self.rows.get(CONTROL_TABLE, &self.name).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => Some(ControlRow::default()),
            Err(e) => {
                tracing::debug!(error = %e, "reading the connector's control row");
                None
            }
        }
    }

    async fn write_status(&self) {
        let row = self.status.row(&self.instance);
        let write = RowWrite {
            table: STATUS_TABLE.into(),
            key: status_key(&self.name, &self.instance),
            value: serde_json::to_vec(&row).ok(),
        };
        if let Err(e) = self.rows.put(vec![write]).await {
            tracing::debug!(error = %e, "writing the connector's status");
        }
    }

    /// Acts on one batch: drops what the ledger shows superseded, answers again what it shows
    /// confirmed, marks creates before they are sent, then calls the channel.
    async fn act(&self, mut batch: Vec<SinkRequest>, retrier: &Retrier) -> BatchDone {
        let keys: Vec<String> = batch
            .iter()
            .map(|r| ledger_key(&self.name, &r.item_key()))
            .collect();
        let entries = match self.ledger(&keys).await {
            Ok(entries) => entries,
            Err(e) => return self.all_failed(batch, &format!("reading the ledger: {e}")),
        };
        let mut results: Vec<Option<Done>> = vec![None; batch.len()];
        let mut ledger = Vec::new();
        let mut to_send = Vec::new();
        for (i, (r, entry)) in batch.iter_mut().zip(&entries).enumerate() {
            let v = r.request.version;
            if v < entry.version {
                results[i] = Some(Done::Superseded);
            } else if v == entry.version && entry.confirmed.is_some() {
                results[i] = Some(Done::Result(replayed(entry)));
            } else {
                r.on_channel = entry.on_channel();
                to_send.push(i);
                if r.action == Action::Upsert && !entry.created {
                    ledger.push((
                        write_time(v, Step::Marked),
                        self.ledger_row(
                            &keys[i],
                            LedgerEntry {
                                version: v,
                                created: true,
                                ..LedgerEntry::default()
                            },
                        ),
                    ));
                }
            }
        }
        if !ledger.is_empty() {
            if let Err(e) = self.write_ledger(std::mem::take(&mut ledger)).await {
                return self.all_failed(batch, &format!("marking creates in the ledger: {e}"));
            }
        }
        let sending: Vec<SinkRequest> = to_send.iter().map(|i| batch[*i].clone()).collect();
        let answers = if sending.is_empty() {
            vec![]
        } else {
            self.service.submit(&sending, retrier).await
        };
        for (i, answer) in to_send.into_iter().zip(answers) {
            let r = &batch[i];
            let entry = match &answer {
                ItemResult::Live { channel_item_id } => Some(LedgerEntry {
                    version: r.request.version,
                    created: true,
                    present: true,
                    confirmed: Some("LIVE".into()),
                    issues: vec![],
                    channel_item_id: channel_item_id.clone(),
                }),
                ItemResult::Rejected(issues) => Some(LedgerEntry {
                    version: r.request.version,
                    // A refused create may still have been applied by an earlier, unanswered
                    // try: only a confirmed delete says the channel holds nothing.
                    created: r.on_channel != OnChannel::Absent || r.action == Action::Upsert,
                    present: r.on_channel == OnChannel::Present,
                    confirmed: Some("REJECTED".into()),
                    issues: issues.clone(),
                    channel_item_id: None,
                }),
                ItemResult::Unpublished => Some(LedgerEntry {
                    version: r.request.version,
                    created: false,
                    present: false,
                    confirmed: Some("UNPUBLISHED".into()),
                    issues: vec![],
                    channel_item_id: None,
                }),
                ItemResult::Failed(_) => None,
            };
            if let Some(entry) = entry {
                let at = write_time(entry.version, Step::Confirmed);
                ledger.push((at, self.ledger_row(&keys[i], entry)));
            }
            results[i] = Some(Done::Result(answer));
        }
        let results = results
            .into_iter()
            .map(|d| {
                d.unwrap_or_else(|| {
                    Done::Result(ItemResult::Failed(Exhausted {
                        attempts: 0,
                        class: None,
                        last: "the channel's service gave no answer for the request".into(),
                    }))
                })
            })
            .collect();
        BatchDone {
            requests: batch,
            results,
            ledger,
        }
    }

    async fn ledger(&self, keys: &[String]) -> Result<Vec<LedgerEntry>, PortError> {
        let rows = self.rows.get_many(LEDGER_TABLE, keys).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Writes ledger rows, each at its write time.
    async fn write_ledger(&self, rows: Vec<(i64, RowWrite)>) -> Result<(), PortError> {
        self.rows.put_timed(rows).await
    }

    fn ledger_row(&self, key: &str, entry: LedgerEntry) -> RowWrite {
        RowWrite {
            table: LEDGER_TABLE.into(),
            key: key.to_string(),
            value: serde_json::to_vec(&entry).ok(),
        }
    }

    fn all_failed(&self, batch: Vec<SinkRequest>, why: &str) -> BatchDone {
        self.status.set_last_error(why);
        let results = batch
            .iter()
            .map(|_| {
                Done::Result(ItemResult::Failed(Exhausted {
                    attempts: 0,
                    class: None,
                    last: why.to_string(),
                }))
            })
            .collect();
        BatchDone {
            requests: batch,
            results,
            ledger: vec![],
        }
    }

    /// Turns a batch's results into outcomes and dead letters, with its ledger rows, all
    /// written by the next completion.
    fn finish(&self, done: BatchDone, unwritten: &mut Unwritten) {
        unwritten.ledger.extend(done.ledger);
        for (r, d) in done.requests.iter().zip(done.results) {
            let raw = &r.raw;
            unwritten
                .finished
                .push((raw.topic.clone(), raw.partition, raw.offset));
            let result = match d {
                Done::Superseded => {
                    self.status.request_done("superseded");
                    continue;
                }
                Done::Result(result) => result,
            };
            let (outcome, issues, item_id) = match result {
                ItemResult::Live { channel_item_id } => ("LIVE", vec![], channel_item_id),
                ItemResult::Rejected(issues) => ("REJECTED", issues, None),
                ItemResult::Unpublished => ("UNPUBLISHED", vec![], None),
                // The account refused porch: the listing shows it and waits for a reconnect
                // (which sends the request again); a dead letter would only wait for a redrive.
                ItemResult::Failed(e) if e.class == Some(RetryClass::Auth) => (
                    "NEEDS_REAUTH",
                    vec![Reason::new("NEEDS_REAUTH", e.last)],
                    None,
                ),
                ItemResult::Failed(e) => {
                    self.status.request_done("dead_lettered");
                    unwritten.dead_letter_exhausted(&self.name, raw, &e);
                    continue;
                }
            };
            self.status.request_done(&outcome.to_ascii_lowercase());
            match self.outcome_record(r, outcome, issues, item_id) {
                Ok(rec) => unwritten.records.push(rec),
                Err(e) => {
                    tracing::error!(connector = %self.name, error = %e, "encoding an outcome");
                    unwritten.dead_letter(&self.name, raw, &e);
                }
            }
        }
    }

    fn outcome_record(
        &self,
        r: &SinkRequest,
        result: &str,
        issues: Vec<Reason>,
        channel_item_id: Option<String>,
    ) -> Result<OutRecord, String> {
        let q = &r.request;
        let record = EventRecord {
            envelope: EventEnvelope {
                event_id: format!(
                    "{}.{}.{}",
                    r.event_id,
                    self.name,
                    result.to_ascii_lowercase()
                ),
                tenant: r.tenant.clone(),
                aggregate_id: format!("{}/{}", q.offer_id, q.channel),
                aggregate_version: q.version,
                occurred_at: now_micros(),
                causation_id: r.event_id.clone(),
                correlation_id: r.correlation_id.clone(),
            },
            event: ListingOutcome {
                channel: q.channel,
                offer_id: q.offer_id.clone(),
                product_id: q.product_id.clone(),
                retailer_id: q.retailer_id.clone(),
                version: q.version,
                result: result.into(),
                issues,
                channel_item_id,
                reporter: self.name.clone(),
            }
            .into(),
        };
        let value = self
            .codec
            .encode_event(OUTCOMES, &record)
            .map_err(|e| e.to_string())?;
        Ok(OutRecord {
            topic: OUTCOMES.into(),
            partition: None,
            key: product_key(r.tenant.as_str(), q.product_id.as_str()).into_bytes(),
            value,
            headers: vec![(
                "correlation_id".into(),
                r.correlation_id.clone().into_bytes(),
            )],
        })
    }
}

/// The outcome the ledger recorded for a request already confirmed.
fn replayed(entry: &LedgerEntry) -> ItemResult {
    match entry.confirmed.as_deref() {
        Some("REJECTED") => ItemResult::Rejected(entry.issues.clone()),
        Some("UNPUBLISHED") => ItemResult::Unpublished,
        _ => ItemResult::Live {
            channel_item_id: entry.channel_item_id.clone(),
        },
    }
}

impl Unwritten {
    /// A record for the dead-letter topic: the record as read, on its source partition, with
    /// why in its headers (as the processors' dead letters).
    fn dead_letter(&mut self, connector: &str, r: &LogRecord, reason: &str) {
        self.dead_letter_with(connector, r, reason, vec![]);
    }

    fn dead_letter_exhausted(&mut self, connector: &str, r: &LogRecord, e: &Exhausted) {
        let mut extra = vec![(
            "dlq.attempts".to_string(),
            e.attempts.to_string().into_bytes(),
        )];
        if let Some(class) = e.class {
            extra.push(("dlq.class".into(), class.as_str().as_bytes().to_vec()));
        }
        self.dead_letter_with(connector, r, &e.last, extra);
    }

    fn dead_letter_with(
        &mut self,
        connector: &str,
        r: &LogRecord,
        reason: &str,
        extra: Vec<(String, Vec<u8>)>,
    ) {
        tracing::warn!(connector, topic = %r.topic, partition = r.partition, offset = r.offset, %reason, "dead-lettering a request");
        // A redriven dead letter keeps the headers of its first trip.
        let mut headers: Vec<(String, Vec<u8>)> = r
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq."))
            .cloned()
            .collect();
        let source = r
            .headers
            .iter()
            .find(|(k, _)| k == "dlq.topic")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| r.topic.clone());
        headers.extend([
            ("dlq.error".to_string(), reason.as_bytes().to_vec()),
            ("dlq.topic".to_string(), source.into_bytes()),
            (
                "dlq.partition".to_string(),
                r.partition.to_string().into_bytes(),
            ),
            ("dlq.offset".to_string(), r.offset.to_string().into_bytes()),
            ("dlq.connector".to_string(), connector.as_bytes().to_vec()),
        ]);
        headers.extend(extra);
        self.records.push(OutRecord {
            topic: dead_letter_topic(connector),
            partition: Some(r.partition),
            key: r.key.clone(),
            value: r.value.clone(),
            headers,
        });
        self.finished.push((r.topic.clone(), r.partition, r.offset));
    }
}

/// One batch, one tenant's account in one region: one set of credentials.
type Account = (TenantId, RegionCode, String);

fn account_of(r: &SinkRequest) -> Account {
    (
        r.tenant.clone(),
        r.request.region.clone(),
        r.request.account.clone(),
    )
}

/// The next batch to send: requests of one account, none of whose items is under way, oldest
/// first; only once it is full or its oldest request has waited `linger`.
fn take_batch(
    queue: &mut VecDeque<Queued>,
    locked: &HashSet<String>,
    full: &HashSet<Account>,
    settings: &SinkSettings,
) -> Option<Vec<SinkRequest>> {
    let first = queue.iter().position(|q| {
        !locked.contains(&q.request.item_key()) && !full.contains(&account_of(&q.request))
    })?;
    let batch_of = account_of;
    let account = batch_of(&queue[first].request);
    let oldest = queue[first].since;
    let mut keys: HashSet<String> = HashSet::new();
    let mut picked = Vec::new();
    for (i, q) in queue.iter().enumerate().skip(first) {
        if picked.len() >= settings.batch_size {
            break;
        }
        let key = q.request.item_key();
        if batch_of(&q.request) != account || locked.contains(&key) {
            continue;
        }
        // A second request for the same item waits for the first to finish: its order holds.
        if !keys.insert(key) {
            continue;
        }
        picked.push(i);
    }
    if picked.len() < settings.batch_size && oldest.elapsed() < settings.linger {
        return None;
    }
    let mut batch = Vec::with_capacity(picked.len());
    for i in picked.into_iter().rev() {
        if let Some(q) = queue.remove(i) {
            batch.push(q.request);
        }
    }
    batch.reverse();
    Some(batch)
}
