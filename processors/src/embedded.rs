//! The embedded backend of the store and the command sink, and the embedded pipeline: one
//! thread runs rounds, and a round is one durable transaction (one fsync) holding the commands
//! accepted in it and everything every processor did with them and with whatever else was
//! waiting. Clients are answered after the round commits. Projections are read straight from the
//! embedded database.

use crate::runtime::Stages;
use crate::store::*;
use porch_schemas::*;
use porch_topics::{command_topic, product_key, Append, EmbeddedLog, LogError, LogTxn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

enum Job {
    Submit {
        submission: Box<Submission>,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<SubmitOutcome, StoreError>>,
    },
    Location {
        tenant: TenantId,
        location: LocationId,
        region: RegionCode,
        reply: oneshot::Sender<Result<SubmitOutcome, StoreError>>,
    },
    Write {
        rows: Vec<RowWrite>,
        /// Each record with its encoded value and headers.
        records: Vec<(Published, Encoded)>,
        reply: oneshot::Sender<Result<SubmitOutcome, StoreError>>,
    },
    /// Something else committed (a connector's outcomes): the stages may have input.
    Wake,
}

/// The embedded store and command sink.
pub struct EmbeddedBackend {
    log: Arc<EmbeddedLog>,
    codec: Arc<Codec>,
    jobs: mpsc::SyncSender<Job>,
}

/// Requests waiting for the writer beyond this are back-pressure (callers wait to enqueue).
const QUEUE: usize = 8192;
/// Requests per transaction at most.
const GROUP: usize = 2048;

impl EmbeddedBackend {
    /// The store and command sink, with the pipeline thread that runs `stages` in its rounds
    /// until `stop` is set.
    pub fn start(
        log: Arc<EmbeddedLog>,
        codec: Arc<Codec>,
        stages: Stages,
        stop: Arc<AtomicBool>,
    ) -> (Arc<Self>, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let waker = tx.clone();
        // Full means a round is coming anyway.
        log.on_commit(Box::new(move || {
            let _ = waker.try_send(Job::Wake);
        }));
        let pipeline_log = log.clone();
        let thread = std::thread::Builder::new()
            .name("porch-pipeline".into())
            .spawn(move || pipeline(&pipeline_log, rx, stages, &stop))
            .expect("spawn the pipeline thread");
        (
            Arc::new(Self {
                log,
                codec,
                jobs: tx,
            }),
            thread,
        )
    }

    pub fn log(&self) -> &Arc<EmbeddedLog> {
        &self.log
    }

    fn enqueue(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.send(job).map_err(|_| StoreError::Closed)
    }
}

/// The pipeline loop: a round whenever there are requests or the stages may have input; a
/// round that did nothing commits nothing, and then the loop sleeps until a request, a commit
/// by someone else, or the next timer.
fn pipeline(log: &EmbeddedLog, rx: mpsc::Receiver<Job>, mut stages: Stages, stop: &AtomicBool) {
    // Input may be waiting from before a restart.
    let mut busy = true;
    while !stop.load(Ordering::Relaxed) {
        let mut jobs = Vec::new();
        if !busy {
            match rx.recv_timeout(stages.idle_wait()) {
                Ok(job) => jobs.push(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        jobs.retain(|j| !matches!(j, Job::Wake));
        let started = std::time::Instant::now();
        let (result, worked) = round(log, &jobs, &mut stages);
        tracing::debug!(
            requests = jobs.len(),
            worked,
            elapsed_us = started.elapsed().as_micros() as u64,
            "round"
        );
        busy = worked;
        match result {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    reply(job, Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "round failed");
                for job in jobs {
                    reply(job, Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }
}

/// One round: the requests, then every stage, in one transaction. A record at fault is noted
/// and the round redone without it; a stage failing otherwise pauses processing, and the
/// requests are committed without it. Returns the requests' outcomes and whether the stages
/// did anything.
fn round(
    log: &EmbeddedLog,
    jobs: &[Job],
    stages: &mut Stages,
) -> (Result<Vec<SubmitOutcome>, LogError>, bool) {
    loop {
        let processing = stages.active();
        let mut failure = None;
        let result = log.write_when(|txn| {
            let outcomes = jobs
                .iter()
                .map(|j| apply(txn, j))
                .collect::<Result<Vec<_>, LogError>>()?;
            let worked = if processing {
                match stages.run(txn) {
                    Ok(w) => w,
                    Err(f) => {
                        failure = Some(f);
                        return Err(LogError::Aborted("a stage failed".into()));
                    }
                }
            } else {
                false
            };
            Ok((!jobs.is_empty() || worked).then_some((outcomes, worked)))
        });
        if let Some(f) = failure {
            stages.failed(&f);
            continue;
        }
        return match result {
            Ok(Some((outcomes, worked))) => {
                if processing {
                    stages.committed();
                }
                (Ok(outcomes), worked)
            }
            Ok(None) => (Ok(vec![]), false),
            Err(e) => (Err(e), false),
        };
    }
}

fn reply(job: Job, r: Result<SubmitOutcome, StoreError>) {
    let tx = match job {
        Job::Submit { reply, .. } => reply,
        Job::Location { reply, .. } => reply,
        Job::Write { reply, .. } => reply,
        Job::Wake => return,
    };
    let _ = tx.send(r);
}

fn get_json<T: serde::de::DeserializeOwned>(
    txn: &LogTxn<'_>,
    table: &str,
    k: &str,
) -> Result<Option<T>, LogError> {
    match txn.get(table, k)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| LogError::Corrupt(format!("{table}/{k}: {e}"))),
    }
}

fn put_json<T: serde::Serialize>(
    txn: &mut LogTxn<'_>,
    table: &str,
    k: &str,
    v: &T,
) -> Result<(), LogError> {
    let bytes = serde_json::to_vec(v).map_err(|e| LogError::Corrupt(e.to_string()))?;
    txn.put(table, k, &bytes)
}

/// One request inside the group transaction. Everything is checked before anything is
/// written, so a conflict leaves no trace.
fn apply(txn: &mut LogTxn<'_>, job: &Job) -> Result<SubmitOutcome, LogError> {
    match job {
        Job::Location {
            tenant,
            location,
            region,
            ..
        } => {
            let k = key(&[tenant.as_str(), location.as_str()]);
            let existing = get_json::<RegionCode>(txn, tables::LOCATION, &k)?;
            if existing.is_none() {
                put_json(txn, tables::LOCATION, &k, region)?;
            }
            Ok(location_outcome(location, region, existing.as_ref()))
        }
        Job::Submit {
            submission, bytes, ..
        } => submit(txn, submission, bytes),
        Job::Write { rows, records, .. } => {
            for w in rows {
                match &w.value {
                    Some(v) => txn.put(&w.table, &w.key, v)?,
                    None => txn.remove(&w.table, &w.key)?,
                }
            }
            for (r, (value, headers)) in records {
                let rec = Append {
                    topic: &r.topic,
                    key: r.key.as_bytes(),
                    value,
                    headers: headers.clone(),
                };
                match r.partition {
                    Some(p) => txn.append_to(p, rec)?,
                    None => txn.append(rec)?,
                };
            }
            Ok(SubmitOutcome::Accepted {
                command_id: CommandId::parse("write").expect("valid id"),
            })
        }
        Job::Wake => unreachable!("wake-ups are not requests"),
    }
}

fn submit(txn: &mut LogTxn<'_>, s: &Submission, bytes: &[u8]) -> Result<SubmitOutcome, LogError> {
    let env = &s.record.envelope;
    let tenant = env.tenant.as_str();
    let idem_key = s.idempotency_key.as_ref().map(|k| key(&[tenant, k]));
    if let Some(ik) = &idem_key {
        if let Some(prev) = get_json::<IdempotencyRecord>(txn, tables::IDEMPOTENCY, ik)? {
            if prev.request_hash == s.request_hash {
                return Ok(SubmitOutcome::Replayed {
                    command_id: prev.command_id,
                });
            }
            return Ok(SubmitOutcome::Conflict(Reason::on_field(
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency-Key",
                "this Idempotency-Key was used for a different request",
            )));
        }
    }
    let command_key = key(&[tenant, env.command_id.as_str()]);
    if txn.get(tables::COMMAND, &command_key)?.is_some() {
        return Ok(SubmitOutcome::Replayed {
            command_id: env.command_id.clone(),
        });
    }
    for claim in &s.claims {
        if let Some(conflict) = check_claim(txn, tenant, claim)? {
            return Ok(SubmitOutcome::Conflict(conflict));
        }
    }
    for claim in &s.claims {
        write_claim(txn, tenant, claim)?;
    }
    if let Some(ik) = &idem_key {
        put_json(
            txn,
            tables::IDEMPOTENCY,
            ik,
            &IdempotencyRecord {
                command_id: env.command_id.clone(),
                request_hash: s.request_hash.clone(),
            },
        )?;
    }
    let product = s.record.command.product_id();
    let status = CommandStatus {
        command_id: env.command_id.clone(),
        command_type: s.record.command.type_name().to_string(),
        status: CommandState::Accepted,
        aggregate_id: env.aggregate_id.clone(),
        product_id: product.clone(),
        reasons: vec![],
        events: vec![],
        accepted_at: txn.now(),
        completed_at: None,
    };
    put_json(txn, tables::COMMAND, &command_key, &status)?;
    // What the command retention removes, oldest first.
    txn.put(
        tables::COMMAND_EXPIRY,
        &key(&[
            &format!("{:020}", status.accepted_at),
            tenant,
            env.command_id.as_str(),
        ]),
        s.idempotency_key.as_deref().unwrap_or_default().as_bytes(),
    )?;
    let topic = command_topic(&s.record);
    let k = product_key(tenant, product.as_str());
    txn.append(Append {
        topic: &topic,
        key: k.as_bytes(),
        value: bytes,
        headers: vec![(
            "correlation_id".into(),
            env.correlation_id.clone().into_bytes(),
        )],
    })?;
    Ok(SubmitOutcome::Accepted {
        command_id: env.command_id.clone(),
    })
}

fn check_claim(txn: &LogTxn<'_>, tenant: &str, claim: &Claim) -> Result<Option<Reason>, LogError> {
    let rows = claim.rows(tenant);
    Ok(txn
        .get(&rows[0].table, &rows[0].key)?
        .and_then(|existing| claim.conflict(&existing)))
}

fn write_claim(txn: &mut LogTxn<'_>, tenant: &str, claim: &Claim) -> Result<(), LogError> {
    for row in claim.rows(tenant) {
        txn.put(
            &row.table,
            &row.key,
            row.value.as_deref().unwrap_or_default(),
        )?;
    }
    Ok(())
}

impl Store for EmbeddedBackend {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.log.get(table, key)?)
    }
    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.log.scan(table, prefix, start_after, limit)?)
    }
}

impl CommandSink for EmbeddedBackend {
    fn submit(&self, submission: Submission) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>> {
        Box::pin(async move {
            let topic = command_topic(&submission.record);
            let bytes = self
                .codec
                .encode_command(&topic, &submission.record)
                .map_err(|e| StoreError::Backend(format!("encoding command: {e}")))?;
            let (reply, rx) = oneshot::channel();
            let jobs = self.jobs.clone();
            let job = Job::Submit {
                submission: Box::new(submission),
                bytes,
                reply,
            };
            // The queue is bounded: waiting for room is back-pressure, off the async threads.
            tokio::task::spawn_blocking(move || jobs.send(job).map_err(|_| StoreError::Closed))
                .await
                .map_err(|_| StoreError::Closed)??;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn register_location(
        &self,
        tenant: TenantId,
        location: LocationId,
        region: RegionCode,
    ) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            self.enqueue(Job::Location {
                tenant,
                location,
                region,
                reply,
            })?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn write(
        &self,
        rows: Vec<RowWrite>,
        records: Vec<Published>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let records = records
                .into_iter()
                .map(|r| {
                    let encoded = r.encode(&self.codec)?;
                    Ok((r, encoded))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let (reply, rx) = oneshot::channel();
            self.enqueue(Job::Write {
                rows,
                records,
                reply,
            })?;
            rx.await.map_err(|_| StoreError::Closed)?.map(|_| ())
        })
    }

    fn changed(&self, timeout_ms: u64) -> BoxFuture<'_, ()> {
        let mut rx = self.log.subscribe();
        Box::pin(async move {
            // Capped: a commit between the caller's read and this subscription is not missed
            // for longer than the cap.
            let wait = std::time::Duration::from_millis(timeout_ms.min(20));
            let _ = tokio::time::timeout(wait, rx.changed()).await;
        })
    }
}

impl TopicReader for EmbeddedBackend {
    fn topics(&self) -> Vec<String> {
        self.log.topics().to_vec()
    }
    fn partitions(&self) -> u32 {
        self.log.partitions()
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, StoreError> {
        Ok(self.log.end_offset(topic, partition)?)
    }
    fn read_json(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<TopicRecordJson>, StoreError> {
        let records = self.log.read(topic, partition, from, max)?;
        Ok(records
            .into_iter()
            .map(|r| TopicRecordJson::decode(&self.codec, r))
            .collect())
    }
}
