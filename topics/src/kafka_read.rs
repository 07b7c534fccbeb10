//! Reading Kafka topics for people (`porch tap`) and checkers, as a processor would see them.
//!
//! Every read is `read_committed`: records of aborted transactions are never returned, and
//! records of open transactions are not visible yet. Under `read_committed` a partition "ends" at
//! its last stable offset (LSO): the first offset of the oldest open transaction, or the high
//! watermark when none is open. Offsets of a transactional topic have gaps (each commit or abort
//! leaves a control record, and aborted records are skipped), so a read stops when the
//! consumer's position reaches the end, never by counting records.
//!
//! The calls block; async callers wrap them in `spawn_blocking`. A [`TopicReader`] holds one
//! consumer and can be reused for many reads; the free functions make one per call.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::embedded::LogRecord;
use crate::kafka_admin::KafkaConfig;
use crate::liveness::Liveness;

/// How long a metadata or offset lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("no topic {0} on the cluster")]
    UnknownTopic(String),
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition { topic: String, partition: u32 },
    #[error("{topic}[{partition}]: still at offset {position} of {end} after {timeout:?}")]
    TimedOut {
        topic: String,
        partition: u32,
        position: u64,
        end: u64,
        timeout: Duration,
    },
}

/// Reaching a partition's end is how a read knows it is done, not an error to log. The
/// reader's statistics go to its [`Liveness`].
pub struct EndIsNoError(pub Liveness);

impl ClientContext for EndIsNoError {
    fn stats_raw(&self, statistics: &[u8]) {
        self.0.observe(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for EndIsNoError {}

/// A read_committed consumer with manually assigned partitions: it joins no group and commits
/// nothing, so reading never disturbs a processor.
pub struct TopicReader {
    consumer: BaseConsumer<EndIsNoError>,
    cfg: KafkaConfig,
    /// Logical name of the topic currently assigned.
    assigned: Option<String>,
}

impl TopicReader {
    pub fn new(cfg: &KafkaConfig) -> Result<Self, ReadError> {
        Self::open(cfg, false)
    }

    /// A reader that watches its [`Liveness`] (see [`TopicReader::lost`]): only for a reader
    /// polled all the time, since its statistics wait in its queue until a poll serves them.
    pub fn watched(cfg: &KafkaConfig) -> Result<Self, ReadError> {
        Self::open(cfg, true)
    }

    fn open(cfg: &KafkaConfig, watch: bool) -> Result<Self, ReadError> {
        let mut config = cfg.client_config();
        let liveness = if watch {
            Liveness::watch(&mut config)
        } else {
            Liveness::default()
        };
        let consumer: BaseConsumer<EndIsNoError> = config
            // librdkafka needs a group id to assign partitions, but the group is never joined
            // (no subscribe) and never written to (no commits).
            .set("group.id", "porch-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            // Only reached when a start offset has been deleted by retention.
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true")
            // An empty fetch at the end of a partition returns after this long, which bounds
            // how long a read waits to learn it has reached the end.
            .set("fetch.wait.max.ms", "100")
            .create_with_context(EndIsNoError(liveness))?;
        Ok(Self {
            consumer,
            cfg: cfg.clone(),
            assigned: None,
        })
    }

    /// A [`TopicReader::watched`] reader has lost its cluster for good (see [`Liveness`]):
    /// make a new one. Never for a reader made with [`TopicReader::new`].
    pub fn lost(&self) -> bool {
        self.consumer.context().0.lost()
    }

    /// Number of partitions of a catalogue topic.
    pub fn partition_count(&self, topic: &str) -> Result<u32, ReadError> {
        let physical = self.cfg.physical(topic);
        let md = self
            .consumer
            .fetch_metadata(Some(&physical), LOOKUP_TIMEOUT)?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == physical)
            .ok_or_else(|| ReadError::UnknownTopic(physical.clone()))?;
        if t.error().is_some() || t.partitions().is_empty() {
            return Err(ReadError::UnknownTopic(physical));
        }
        Ok(t.partitions().len() as u32)
    }

    /// The end of each partition as read_committed sees it: the last stable offset, which is the
    /// high watermark unless a transaction is open. The query goes to the partition leaders with
    /// this consumer's isolation level, so reading up to it returns every committed record.
    pub fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, ReadError> {
        let physical = self.cfg.physical(topic);
        (0..self.partition_count(topic)?)
            .map(|p| {
                let (_, high) =
                    self.consumer
                        .fetch_watermarks(&physical, p as i32, LOOKUP_TIMEOUT)?;
                Ok(high.max(0) as u64)
            })
            .collect()
    }

    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, ReadError> {
        let physical = self.cfg.physical(topic);
        match self
            .consumer
            .fetch_watermarks(&physical, partition as i32, LOOKUP_TIMEOUT)
        {
            Ok((_, high)) => Ok(high.max(0) as u64),
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownPartition) => {
                Err(ReadError::UnknownPartition {
                    topic: physical,
                    partition,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Per partition, the offset of the first record with a timestamp at or after `micros`, or
    /// the partition's end when there is none.
    pub fn offsets_for_time(&self, topic: &str, micros: i64) -> Result<Vec<u64>, ReadError> {
        let physical = self.cfg.physical(topic);
        let partitions = self.partition_count(topic)?;
        // Kafka timestamps are milliseconds: a record at `ms` is at or after `micros` when
        // ms * 1000 >= micros.
        let millis = micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) != 0);
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&physical, p as i32, Offset::Offset(millis))?;
        }
        let found = self.consumer.offsets_for_times(tpl, LOOKUP_TIMEOUT)?;
        let ends = self.end_offsets(topic)?;
        (0..partitions)
            .map(|p| {
                let offset = found
                    .find_partition(&physical, p as i32)
                    .map(|e| e.offset())
                    .unwrap_or(Offset::End);
                Ok(match offset {
                    Offset::Offset(o) if o >= 0 => o as u64,
                    _ => ends[p as usize],
                })
            })
            .collect()
    }

    /// Up to `max` records of one partition from `from_offset`, stopping at the partition's end
    /// as it was when the call began. A `from_offset` older than the log's start begins at the
    /// start. Fails with [`ReadError::TimedOut`] rather than return a silently short read.
    pub fn read_partition(
        &mut self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<LogRecord>, ReadError> {
        let end = self.end_offset(topic, partition)?;
        if from_offset >= end || max == 0 {
            return Ok(Vec::new());
        }
        self.assign(topic, &[(partition, from_offset)])?;
        let read = self.read_assigned(topic, partition, from_offset, end, max, timeout);
        // Stop fetching: lookups on this reader would otherwise queue behind idle fetches.
        self.unassign()?;
        read
    }

    fn read_assigned(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        end: u64,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<LogRecord>, ReadError> {
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.poll(left.min(Duration::from_millis(100)))? {
                Some(rec) => {
                    let next = rec.offset + 1;
                    out.push(rec);
                    if out.len() >= max || next >= end {
                        return Ok(out);
                    }
                }
                None => {
                    // Control records and aborted batches move the position without yielding
                    // a record.
                    let position = self.position(partition)?.unwrap_or(from_offset);
                    if position >= end {
                        return Ok(out);
                    }
                    if left.is_zero() {
                        return Err(ReadError::TimedOut {
                            topic: self.cfg.physical(topic),
                            partition,
                            position,
                            end,
                            timeout,
                        });
                    }
                }
            }
        }
    }

    /// Reads `topic` from these (partition, offset) starts on, replacing what was assigned.
    ///
    /// While partitions are assigned the consumer keeps a fetch waiting at the broker (up to
    /// `fetch.wait.max.ms`, 100 ms, when there is nothing new), and a broker answers one
    /// connection's requests in order, so lookups such as [`Self::end_offsets`] on this reader
    /// are slower until [`Self::unassign`].
    pub fn assign(&mut self, topic: &str, starts: &[(u32, u64)]) -> Result<(), ReadError> {
        let physical = self.cfg.physical(topic);
        let mut tpl = TopicPartitionList::new();
        for &(p, offset) in starts {
            tpl.add_partition_offset(&physical, p as i32, Offset::Offset(offset as i64))?;
        }
        self.consumer.assign(&tpl)?;
        self.assigned = Some(topic.to_string());
        Ok(())
    }

    /// Stops reading every assigned partition.
    pub fn unassign(&mut self) -> Result<(), ReadError> {
        self.consumer.unassign()?;
        self.assigned = None;
        Ok(())
    }

    /// The next committed record of the assignment; `None` when nothing came within `timeout` or
    /// a partition just reached its end.
    pub fn poll(&self, timeout: Duration) -> Result<Option<LogRecord>, ReadError> {
        let msg = match self.consumer.poll(timeout) {
            None => return Ok(None),
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => m,
        };
        let topic = match &self.assigned {
            Some(t) => t.clone(),
            None => msg.topic().to_string(),
        };
        Ok(Some(record_of(&msg, topic)))
    }

    /// Offset of the next record this reader will return from an assigned partition: past the
    /// last returned record and any control records after it. `None` before the first fetch.
    pub fn position(&self, partition: u32) -> Result<Option<u64>, ReadError> {
        let positions = self.consumer.position()?;
        Ok(positions
            .elements()
            .iter()
            .find(|e| e.partition() == partition as i32)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o as u64),
                _ => None,
            }))
    }
}

/// A Kafka message as a log record of `topic` (its catalogue name).
pub fn record_of(msg: &impl Message, topic: String) -> LogRecord {
    let headers = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    LogRecord {
        topic,
        partition: msg.partition() as u32,
        offset: msg.offset() as u64,
        timestamp: msg.timestamp().to_millis().unwrap_or(0) * 1000,
        key: msg.key().unwrap_or_default().to_vec(),
        value: msg.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

/// [`TopicReader::end_offsets`] with a reader of its own.
pub fn end_offsets(cfg: &KafkaConfig, topic: &str) -> Result<Vec<u64>, ReadError> {
    TopicReader::new(cfg)?.end_offsets(topic)
}

/// [`TopicReader::read_partition`] with a reader of its own.
pub fn read_partition(
    cfg: &KafkaConfig,
    topic: &str,
    partition: u32,
    from_offset: u64,
    max: usize,
    timeout: Duration,
) -> Result<Vec<LogRecord>, ReadError> {
    TopicReader::new(cfg)?.read_partition(topic, partition, from_offset, max, timeout)
}

/// [`TopicReader::offsets_for_time`] with a reader of its own.
pub fn offsets_for_time(
    cfg: &KafkaConfig,
    topic: &str,
    micros: i64,
) -> Result<Vec<u64>, ReadError> {
    TopicReader::new(cfg)?.offsets_for_time(topic, micros)
}
