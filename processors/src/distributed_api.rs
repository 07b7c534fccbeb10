//! What the ingest API stands on in the distributed mode: commands produced to Kafka, claims
//! and statuses in the store, topics read back from Kafka with read_committed.

use crate::store::*;
use porch_schemas::*;
use porch_topics::kafka_admin::KafkaConfig;
use porch_topics::kafka_read::TopicReader as KafkaReader;
use porch_topics::WatchedProducer;
use porch_topics::{command_topic, partition_for, product_key, Catalogue};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long librdkafka keeps trying to deliver a command (message.timeout.ms).
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows of commands produced, or about to be: `tenant/command` → when it was written (8 bytes,
/// micros) and the encoded command, until it is on its topic; then empty. A retry with the
/// same Idempotency-Key finishes a command its first attempt left unproduced. Only commands a
/// retry can name have one.
pub const COMMAND_PENDING: &str = "command_pending";

/// Rows of submissions under an Idempotency-Key: `tenant/key` → [`SavedSubmission`], written
/// right after the key is claimed, so that a retry finishes the first attempt with the ids
/// and claims it was given (a retried request carries ids porch generates anew).
pub const IDEMPOTENT_SUBMISSION: &str = "idempotency_submission";

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSubmission {
    /// When the first attempt saved it (micros).
    written_at: i64,
    command: Vec<u8>,
    claims: Vec<Claim>,
}

/// The write time of an ACCEPTED status: earlier than any outcome's, so that whichever lands
/// last, the outcome is what a read finds (CQL keeps the write with the latest write time).
const ACCEPTED_WRITE_TIME: i64 = 1;

/// The ACCEPTED status row of a command, to be written at [`ACCEPTED_WRITE_TIME`].
fn accepted_status(record: &CommandRecord) -> RowWrite {
    let env = &record.envelope;
    let status = CommandStatus {
        command_id: env.command_id.clone(),
        command_type: record.command.type_name().to_string(),
        status: CommandState::Accepted,
        aggregate_id: env.aggregate_id.clone(),
        product_id: record.command.product_id().clone(),
        reasons: vec![],
        events: vec![],
        accepted_at: now_micros(),
        completed_at: None,
    };
    RowWrite {
        table: tables::COMMAND.into(),
        key: key(&[env.tenant.as_str(), env.command_id.as_str()]),
        value: Some(serde_json::to_vec(&status).expect("status serialises")),
    }
}

/// Which attempt at a submission `carry_out` makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A submission with no Idempotency-Key and no X-Command-Id: porch generated its command
    /// id, so no retry can name it, and nothing is kept to finish it (no pending command).
    Unnamed,
    /// The first attempt at a submission a retry can name.
    First,
    /// A retry finishing a first attempt: a claim row holding exactly what it would write is
    /// its own.
    Retry,
}

/// The ingest side of the distributed mode.
pub struct DistributedSink {
    store: Arc<dyn ProjectionStore>,
    codec: Arc<Codec>,
    kafka: KafkaConfig,
    /// Idempotent; replaced by a new one when it has lost its cluster (see [`porch_topics::Liveness`]).
    producer: Arc<WatchedProducer>,
    partitions: u32,
}

impl DistributedSink {
    pub fn new(
        store: Arc<dyn ProjectionStore>,
        codec: Arc<Codec>,
        kafka: KafkaConfig,
        partitions: u32,
    ) -> anyhow::Result<Self> {
        let mut cfg = kafka.client_config();
        cfg.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set(
                "message.timeout.ms",
                PRODUCE_TIMEOUT.as_millis().to_string(),
            );
        let producer = Arc::new(WatchedProducer::new(cfg)?);
        Ok(Self {
            store,
            codec,
            kafka,
            producer,
            partitions,
        })
    }

    /// Produces the command and then, unless no retry can name it, marks it produced, on a
    /// task of its own: a client that hangs up does not stop it half-way, so a retry never
    /// finds a record on its way out unmarked (and produces it a second time).
    async fn produce(
        &self,
        record: &CommandRecord,
        bytes: Vec<u8>,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let env = &record.envelope;
        let topic = self.kafka.physical(&command_topic(record));
        let key = product_key(env.tenant.as_str(), record.command.product_id().as_str());
        let partition = partition_for(key.as_bytes(), self.partitions);
        let correlation = env.correlation_id.clone();
        let pending_key = crate::store::key(&[env.tenant.as_str(), env.command_id.as_str()]);
        let producer = self.producer.clone();
        let store = self.store.clone();
        let task = tokio::spawn(async move {
            let record = || {
                FutureRecord::to(&topic)
                    .partition(partition as i32)
                    .key(key.as_bytes())
                    .payload(&bytes)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "correlation_id",
                        value: Some(correlation.as_bytes()),
                    }))
            };
            producer
                .send(record, PRODUCE_TIMEOUT)
                .await
                .map_err(|e| StoreError::Backend(format!("producing to {topic}: {e}")))?;
            if attempt == Attempt::Unnamed {
                return Ok(());
            }
            let produced = RowWrite {
                table: COMMAND_PENDING.into(),
                key: pending_key,
                value: Some(Vec::new()),
            };
            store.apply(vec![produced], now_micros()).await
        });
        task.await
            .map_err(|e| StoreError::Backend(format!("producing a command: {e}")))?
    }

    async fn put(&self, table: &str, key: &str, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        let write = RowWrite {
            table: table.into(),
            key: key.into(),
            value,
        };
        self.store.apply(vec![write], now_micros()).await
    }

    /// A command whose Idempotency-Key was seen: if its first attempt stopped before the
    /// command reached its topic, finish that attempt now.
    async fn finish_earlier(
        &self,
        tenant: &str,
        command_id: &CommandId,
    ) -> Result<bool, StoreError> {
        let k = key(&[tenant, command_id.as_str()]);
        let Some(bytes) = self.store.get_async(COMMAND_PENDING, &k).await? else {
            return Ok(false);
        };
        if bytes.is_empty() {
            return Ok(true); // produced
        }
        // Whether the first attempt is dead (its API killed) or still at work cannot be told
        // from here, and need not be: finishing it now produces the same command under the
        // same id, which its processor applies once. So a retry is never kept waiting.
        let (_written_at, command) = bytes.split_at(8.min(bytes.len()));
        let record = self
            .codec
            .decode_command(command)
            .map_err(|e| StoreError::Backend(format!("pending command {k}: {e}")))?;
        // The first attempt may have stopped before its status: write it before the record.
        self.store
            .apply(vec![accepted_status(&record)], ACCEPTED_WRITE_TIME)
            .await?;
        self.produce(&record, command.to_vec(), Attempt::Retry)
            .await?;
        Ok(true)
    }

    async fn submit_new(&self, s: Submission) -> Result<SubmitOutcome, StoreError> {
        let env = &s.record.envelope;
        let tenant = env.tenant.as_str();
        let encode = |record: &CommandRecord| {
            self.codec
                .encode_command(&command_topic(record), record)
                .map_err(|e| StoreError::Backend(format!("encoding command: {e}")))
        };
        let Some(idempotency_key) = &s.idempotency_key else {
            // Neither Idempotency-Key nor X-Command-Id: the command id is porch's own, new.
            let bytes = encode(&s.record)?;
            return self
                .carry_out(&s.record, bytes, &s.claims, Attempt::Unnamed)
                .await;
        };
        let ik = key(&[tenant, idempotency_key]);
        let record = IdempotencyRecord {
            command_id: env.command_id.clone(),
            request_hash: s.request_hash.clone(),
        };
        let value = serde_json::to_vec(&record).expect("idempotency record serialises");
        let Some(existing) = self.store.claim(tables::IDEMPOTENCY, &ik, value).await? else {
            let bytes = encode(&s.record)?;
            let saved = SavedSubmission {
                written_at: now_micros(),
                command: bytes.clone(),
                claims: s.claims.clone(),
            };
            self.put(
                IDEMPOTENT_SUBMISSION,
                &ik,
                Some(serde_json::to_vec(&saved).expect("submission serialises")),
            )
            .await?;
            return self
                .carry_out(&s.record, bytes, &s.claims, Attempt::First)
                .await;
        };
        let prev: IdempotencyRecord = serde_json::from_slice(&existing)
            .map_err(|e| StoreError::Backend(format!("idempotency row {ik}: {e}")))?;
        if prev.request_hash != s.request_hash {
            return Ok(SubmitOutcome::Conflict(Reason::on_field(
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency-Key",
                "this Idempotency-Key was used for a different request",
            )));
        }
        if self.finish_earlier(tenant, &prev.command_id).await? {
            return Ok(SubmitOutcome::Replayed {
                command_id: prev.command_id,
            });
        }
        // The first attempt stopped before its command was written: carry out the submission
        // it saved, or, if it saved none, this one under the first attempt's command id.
        let outcome = match self.store.get_async(IDEMPOTENT_SUBMISSION, &ik).await? {
            Some(saved) => {
                let saved: SavedSubmission = serde_json::from_slice(&saved)
                    .map_err(|e| StoreError::Backend(format!("saved submission {ik}: {e}")))?;
                let record = self
                    .codec
                    .decode_command(&saved.command)
                    .map_err(|e| StoreError::Backend(format!("saved submission {ik}: {e}")))?;
                self.carry_out(&record, saved.command, &saved.claims, Attempt::Retry)
                    .await?
            }
            None => {
                let mut record = s.record.clone();
                record.envelope.command_id = prev.command_id;
                let bytes = encode(&record)?;
                self.carry_out(&record, bytes, &s.claims, Attempt::Retry)
                    .await?
            }
        };
        Ok(match outcome {
            SubmitOutcome::Accepted { command_id } => SubmitOutcome::Replayed { command_id },
            other => other,
        })
    }

    /// Claims, the pending command (unless the submission is [`Attempt::Unnamed`]), status
    /// ACCEPTED, the record on its topic.
    async fn carry_out(
        &self,
        record: &CommandRecord,
        bytes: Vec<u8>,
        claims: &[Claim],
        attempt: Attempt,
    ) -> Result<SubmitOutcome, StoreError> {
        let env = &record.envelope;
        let tenant = env.tenant.as_str();
        // Exclusive claims, each a lightweight transaction; a refused one releases those taken
        // before. The rows of the others ride with the status below.
        let mut taken: Vec<RowWrite> = Vec::new();
        let mut rows: Vec<RowWrite> = Vec::new();
        for claim in claims {
            let mut claim_rows = claim.rows(tenant);
            if !claim.exclusive() {
                rows.append(&mut claim_rows);
                continue;
            }
            let first = claim_rows.remove(0);
            let existing = self
                .store
                .claim(
                    &first.table,
                    &first.key,
                    first.value.clone().unwrap_or_default(),
                )
                .await?;
            let ours = |e: &Vec<u8>| attempt == Attempt::Retry && Some(e) == first.value.as_ref();
            if let Some(reason) =
                existing.and_then(|e| (!ours(&e)).then(|| claim.conflict(&e)).flatten())
            {
                let release = taken
                    .into_iter()
                    .map(|w| RowWrite { value: None, ..w })
                    .collect();
                self.store.apply(release, now_micros()).await?;
                return Ok(SubmitOutcome::Conflict(reason));
            }
            taken.push(first);
            rows.append(&mut claim_rows);
        }
        if attempt != Attempt::Unnamed {
            rows.push(RowWrite {
                table: COMMAND_PENDING.into(),
                key: key(&[tenant, env.command_id.as_str()]),
                value: Some([&now_micros().to_be_bytes()[..], &bytes].concat()),
            });
        }
        // The pending command, then the status, then the record: a retry that finds the status
        // finds the pending command too, and finishes it if the record never got out.
        // ACCEPTED is written at the earliest write time there is, so it never replaces an
        // outcome the processor wrote (at the time of its batch), whenever a late retry
        // writes it.
        // A command no retry can name has no pending row to keep in step with: its claims'
        // rows and its status go together, and the record only once both are written.
        let status = self
            .store
            .apply(vec![accepted_status(record)], ACCEPTED_WRITE_TIME);
        if attempt == Attempt::Unnamed {
            futures::try_join!(self.store.apply(rows, now_micros()), status)?;
        } else {
            self.store.apply(rows, now_micros()).await?;
            status.await?;
        }
        self.produce(record, bytes, attempt).await?;
        Ok(SubmitOutcome::Accepted {
            command_id: env.command_id.clone(),
        })
    }
}

impl Store for DistributedSink {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get_raw(table, key)
    }
    fn get_raw_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> Option<BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>> {
        Some(self.store.get_async(table, key))
    }
    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store.scan_raw(table, prefix, start_after, limit)
    }
}

impl CommandSink for DistributedSink {
    fn submit(&self, submission: Submission) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>> {
        Box::pin(self.submit_new(submission))
    }

    fn register_location(
        &self,
        tenant: TenantId,
        location: LocationId,
        region: RegionCode,
    ) -> BoxFuture<'_, Result<SubmitOutcome, StoreError>> {
        Box::pin(async move {
            let k = key(&[tenant.as_str(), location.as_str()]);
            let value = serde_json::to_vec(&region).expect("region serialises");
            let existing = match self.store.claim(tables::LOCATION, &k, value).await? {
                None => None,
                Some(bytes) => Some(
                    serde_json::from_slice::<RegionCode>(&bytes)
                        .map_err(|e| StoreError::Backend(format!("location row {k}: {e}")))?,
                ),
            };
            Ok(location_outcome(&location, &region, existing.as_ref()))
        })
    }

    fn changed(&self, timeout_ms: u64) -> BoxFuture<'_, ()> {
        // Processors run elsewhere: look again shortly.
        Box::pin(tokio::time::sleep(Duration::from_millis(
            timeout_ms.min(25),
        )))
    }

    fn write(
        &self,
        rows: Vec<RowWrite>,
        records: Vec<Published>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if !rows.is_empty() {
                self.store.apply(rows, now_micros()).await?;
            }
            let encoded = records
                .iter()
                .map(|r| r.encode(&self.codec))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let sends = records.iter().zip(&encoded).map(|(r, (value, headers))| {
                let topic = self.kafka.physical(&r.topic);
                let partition = r
                    .partition
                    .unwrap_or_else(|| partition_for(r.key.as_bytes(), self.partitions));
                async move {
                    self.producer
                        .send_to(
                            &topic,
                            partition,
                            r.key.as_bytes(),
                            value,
                            headers,
                            PRODUCE_TIMEOUT,
                        )
                        .await
                        .map_err(|e| StoreError::Backend(format!("producing to {topic}: {e}")))
                }
            });
            futures::future::try_join_all(sends).await?;
            Ok(())
        })
    }
}

/// The operator's topic reader over Kafka (read_committed).
pub struct KafkaTopics {
    kafka: KafkaConfig,
    reader: Mutex<KafkaReader>,
    codec: Arc<Codec>,
    catalogue: Catalogue,
}

impl KafkaTopics {
    pub fn new(kafka: &KafkaConfig, codec: Arc<Codec>) -> anyhow::Result<Self> {
        Ok(Self {
            kafka: kafka.clone(),
            reader: Mutex::new(KafkaReader::new(kafka)?),
            codec,
            catalogue: Catalogue::builtin(),
        })
    }
}

impl KafkaTopics {
    /// Runs a read; after a failure (a broker that went away and came back leaves a consumer
    /// in a state of its own) it tries once more on a new consumer.
    fn with_reader<T>(
        &self,
        read: impl Fn(&mut KafkaReader) -> Result<T, porch_topics::ReadError>,
    ) -> Result<T, StoreError> {
        let mut reader = self.reader.lock().expect("reader lock");
        match read(&mut reader) {
            Ok(t) => Ok(t),
            Err(first) => {
                tracing::warn!(error = %first, "reading a topic failed; retrying on a new consumer");
                *reader = KafkaReader::new(&self.kafka)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                read(&mut reader).map_err(|e| StoreError::Backend(e.to_string()))
            }
        }
    }
}

impl TopicReader for KafkaTopics {
    fn topics(&self) -> Vec<String> {
        self.catalogue.all_names()
    }
    fn partitions(&self) -> u32 {
        self.catalogue.partitions
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, StoreError> {
        self.with_reader(|r| r.end_offsets(topic))?
            .get(partition as usize)
            .copied()
            .ok_or_else(|| StoreError::Backend(format!("{topic} has no partition {partition}")))
    }
    fn read_json(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<TopicRecordJson>, StoreError> {
        let records = self.with_reader(|r| {
            r.read_partition(topic, partition, from, max, Duration::from_secs(10))
        })?;
        Ok(records
            .into_iter()
            .map(|r| TopicRecordJson::decode(&self.codec, r))
            .collect())
    }
}
