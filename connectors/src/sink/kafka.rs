//! A connector on Kafka and ScyllaDB (`porch connector <name>`): a member of the connector's
//! consumer group on `channel.events` (start more instances to share its partitions), an
//! idempotent producer for outcomes and dead letters, offsets committed only after what comes
//! before them is delivered, and its rows in the store.

use super::{Completion, PortError, RowStore, SinkPort, Swap};
use porch_processors::store::{BoxFuture, ProjectionStore, RowWrite};
use porch_schemas::now_micros;
use porch_topics::kafka_admin::KafkaConfig;
use porch_topics::{partition_for, LogRecord, WatchedProducer};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a produced record may wait in the producer before its delivery fails.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a metadata, offsets or commit request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The partitions of `channel.events` this member owns, as its rebalance callbacks tell them.
#[derive(Default)]
struct Owned(Mutex<BTreeSet<u32>>);

struct GroupContext {
    owned: Arc<Owned>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut owned = self.owned.0.lock().unwrap_or_else(|e| e.into_inner());
            for e in tpl.elements() {
                owned.remove(&(e.partition() as u32));
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut owned = self.owned.0.lock().unwrap_or_else(|e| e.into_inner());
            for e in tpl.elements() {
                owned.insert(e.partition() as u32);
            }
        }
    }
}

/// Reads the dead-letter topic once, from the redrive group's committed offsets up to the ends
/// it had when the redrive was asked for.
struct Redrive {
    reader: BaseConsumer,
    /// Partition → end offset to reach.
    until: Vec<(u32, u64)>,
    /// Every partition reached its end: nothing more is read, and the reader stays to commit
    /// how far the redrive got as its records finish.
    read: bool,
}

pub struct KafkaPort {
    kafka: KafkaConfig,
    /// Where a completion's rows (the ledger) go, before its records.
    rows: Arc<dyn RowStore>,
    consumer: StreamConsumer<GroupContext>,
    producer: WatchedProducer,
    owned: Arc<Owned>,
    input: String,
    dead_letters: String,
    redrive_group: String,
    redrive: Option<Redrive>,
    partitions: u32,
    /// Partition → the offset after the last record handed out: where a paused partition
    /// resumes.
    fetched: std::collections::BTreeMap<u32, u64>,
    /// The assignment is paused (the connector is): resume it at the next poll.
    held: bool,
}

fn record_of(kafka: &KafkaConfig, m: &impl Message) -> LogRecord {
    let topic = kafka.logical(m.topic()).unwrap_or(m.topic()).to_string();
    porch_topics::kafka_read::record_of(m, topic)
}

impl KafkaPort {
    /// Joins connector `name`'s group on `input`.
    pub fn new(
        kafka: &KafkaConfig,
        name: &str,
        input: &str,
        partitions: u32,
        rows: Arc<dyn RowStore>,
    ) -> Result<Self, PortError> {
        let owned = Arc::new(Owned::default());
        let mut cfg = kafka.client_config();
        cfg.set("group.id", kafka.physical(&super::group_of(name)))
            .set("group.protocol", "consumer")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100");
        let consumer: StreamConsumer<GroupContext> = cfg
            .create_with_context(GroupContext {
                owned: owned.clone(),
            })
            .map_err(PortError::of)?;
        consumer
            .subscribe(&[&kafka.physical(input)])
            .map_err(PortError::of)?;
        let mut pcfg = kafka.client_config();
        pcfg.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                PRODUCE_TIMEOUT.as_millis().to_string(),
            );
        let producer = WatchedProducer::new(pcfg).map_err(PortError::of)?;
        Ok(KafkaPort {
            kafka: kafka.clone(),
            rows,
            consumer,
            producer,
            owned,
            input: input.to_string(),
            dead_letters: super::dead_letter_topic(name),
            redrive_group: kafka.physical(&super::redrive_group_of(name)),
            redrive: None,
            partitions,
            fetched: Default::default(),
            held: false,
        })
    }

    fn owned(&self) -> BTreeSet<u32> {
        self.owned
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn read_redrive(&mut self, max: usize, out: &mut Vec<LogRecord>) {
        let Some(redrive) = self.redrive.as_mut().filter(|r| !r.read) else {
            return;
        };
        while out.len() < max {
            match redrive.reader.poll(Duration::ZERO) {
                Some(Ok(m)) => {
                    let r = record_of(&self.kafka, &m);
                    if redrive
                        .until
                        .iter()
                        .any(|(p, end)| *p == r.partition && r.offset < *end)
                    {
                        out.push(r);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the dead-letter topic to redrive it");
                    break;
                }
                None => break,
            }
        }
        // Done once every partition's position reached its end.
        let positions = redrive.reader.position().ok();
        let done = redrive.until.iter().all(|(p, end)| {
            positions
                .as_ref()
                .and_then(|tpl| {
                    tpl.find_partition(&self.kafka.physical(&self.dead_letters), *p as i32)
                })
                .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o as u64 >= *end))
        });
        redrive.read = done;
    }

    fn commit<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        topic: &str,
        positions: &[(u32, u64)],
    ) {
        if positions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, next) in positions {
            let _ = tpl.add_partition_offset(
                &self.kafka.physical(topic),
                *p as i32,
                Offset::Offset(*next as i64),
            );
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error = %e, topic, "committing the connector's positions");
        }
    }
}

impl KafkaPort {
    /// Resumes the paused assignment where each partition's records were last handed out (or
    /// from the group's committed offset).
    fn unhold(&mut self) -> Result<(), PortError> {
        let assignment = self.consumer.assignment().map_err(PortError::of)?;
        let topic = self.kafka.physical(&self.input);
        let committed = tokio::task::block_in_place(|| {
            self.consumer
                .committed_offsets(assignment.clone(), REQUEST_TIMEOUT)
        })
        .map_err(PortError::of)?;
        let mut at = TopicPartitionList::new();
        for e in committed.elements() {
            let p = e.partition() as u32;
            let offset = match (self.fetched.get(&p), e.offset()) {
                (Some(next), _) => Offset::Offset(*next as i64),
                (None, Offset::Offset(o)) => Offset::Offset(o),
                (None, _) => Offset::Beginning,
            };
            let _ = at.add_partition_offset(&topic, e.partition(), offset);
        }
        self.consumer.resume(&assignment).map_err(PortError::of)?;
        if at.count() > 0 {
            tokio::task::block_in_place(|| self.consumer.seek_partitions(at, REQUEST_TIMEOUT))
                .map_err(PortError::of)?;
        }
        self.held = false;
        Ok(())
    }
}

impl SinkPort for KafkaPort {
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<LogRecord>, PortError>> {
        Box::pin(async move {
            if self.held {
                self.unhold()?;
            }
            let mut out = Vec::new();
            self.read_redrive(max, &mut out);
            let mut first_wait = if out.is_empty() { wait } else { Duration::ZERO };
            while out.len() < max {
                let next = tokio::time::timeout(first_wait, self.consumer.recv()).await;
                first_wait = Duration::ZERO;
                match next {
                    Err(_) => break,
                    Ok(Ok(m)) => {
                        let r = record_of(&self.kafka, &m);
                        self.fetched.insert(r.partition, r.offset + 1);
                        out.push(r);
                    }
                    Ok(Err(e)) => {
                        if out.is_empty() {
                            return Err(PortError::of(e));
                        }
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    fn complete(&mut self, done: Completion) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            if !done.rows.is_empty() {
                self.rows.put_timed(done.rows.clone()).await?;
            }
            let sends = done.records.iter().map(|r| {
                let topic = self.kafka.physical(&r.topic);
                let partition = r
                    .partition
                    .unwrap_or_else(|| partition_for(&r.key, self.partitions));
                let producer = &self.producer;
                async move {
                    producer
                        .send_to(
                            &topic,
                            partition,
                            &r.key,
                            &r.value,
                            &r.headers,
                            PRODUCE_TIMEOUT,
                        )
                        .await
                        .map_err(|e| PortError(format!("producing to {topic}: {e}")))
                }
            });
            futures::future::try_join_all(sends).await?;
            let owned = self.owned();
            let mut input = Vec::new();
            let mut redriven = Vec::new();
            // A partition done up to what was fetched is committed at the consumer's position,
            // past the transaction markers after its last record: otherwise they would count as
            // lag for ever.
            let at = self.consumer.position().ok();
            for (topic, p, next) in &done.positions {
                if *topic == self.input && owned.contains(p) {
                    let past_markers = at
                        .as_ref()
                        .filter(|_| self.fetched.get(p) == Some(next))
                        .and_then(|tpl| {
                            tpl.find_partition(&self.kafka.physical(&self.input), *p as i32)
                        })
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) if o as u64 > *next => Some(o as u64),
                            _ => None,
                        });
                    input.push((*p, past_markers.unwrap_or(*next)));
                } else if *topic == self.dead_letters {
                    redriven.push((*p, *next));
                }
            }
            self.commit(&self.consumer, &self.input, &input);
            if let Some(r) = &self.redrive {
                self.commit(&r.reader, &self.dead_letters, &redriven);
            }
            Ok(())
        })
    }

    fn hold(&mut self, wait: Duration) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            // Paused partitions fetch nothing, but the member keeps polling: it stays in its
            // group and takes part in rebalances. A partition assigned meanwhile is paused too,
            // and anything it delivered first is read again after the resume.
            let assignment = self.consumer.assignment().map_err(PortError::of)?;
            self.consumer.pause(&assignment).map_err(PortError::of)?;
            self.held = true;
            if let Ok(Ok(m)) = tokio::time::timeout(wait, self.consumer.recv()).await {
                tracing::debug!(
                    partition = m.partition(),
                    "a record while paused; read again on resume"
                );
            }
            Ok(())
        })
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            self.fetched.clear();
            self.redrive = None;
            let assignment = self.consumer.assignment().map_err(PortError::of)?;
            if assignment.count() == 0 {
                return Ok(());
            }
            let committed = tokio::task::block_in_place(|| {
                self.consumer.committed_offsets(assignment, REQUEST_TIMEOUT)
            })
            .map_err(PortError::of)?;
            let mut seek = TopicPartitionList::new();
            for e in committed.elements() {
                let offset = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                let _ = seek.add_partition_offset(e.topic(), e.partition(), offset);
            }
            tokio::task::block_in_place(|| self.consumer.seek_partitions(seek, REQUEST_TIMEOUT))
                .map_err(PortError::of)?;
            Ok(())
        })
    }

    fn redrive(&mut self) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            let topic = self.kafka.physical(&self.dead_letters);
            let mut cfg = self.kafka.client_config();
            cfg.set("group.id", &self.redrive_group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("isolation.level", "read_committed")
                .set("auto.offset.reset", "earliest");
            let reader: BaseConsumer = cfg.create().map_err(PortError::of)?;
            let owned = self.owned();
            let mut until = Vec::new();
            let mut tpl = TopicPartitionList::new();
            for p in &owned {
                let _ = tpl.add_partition(&topic, *p as i32);
            }
            let committed =
                tokio::task::block_in_place(|| reader.committed_offsets(tpl, REQUEST_TIMEOUT))
                    .map_err(PortError::of)?;
            let mut assign = TopicPartitionList::new();
            for e in committed.elements() {
                let (_, high) = tokio::task::block_in_place(|| {
                    reader.fetch_watermarks(&topic, e.partition(), REQUEST_TIMEOUT)
                })
                .map_err(PortError::of)?;
                let from = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                let _ = assign.add_partition_offset(&topic, e.partition(), from);
                until.push((e.partition() as u32, high.max(0) as u64));
            }
            reader.assign(&assign).map_err(PortError::of)?;
            self.redrive = Some(Redrive {
                reader,
                until,
                read: false,
            });
            Ok(())
        })
    }

    fn lag(&mut self) -> BoxFuture<'_, Result<u64, PortError>> {
        Box::pin(async move {
            let topic = self.kafka.physical(&self.input);
            let owned = self.owned();
            if owned.is_empty() {
                return Ok(0);
            }
            let mut tpl = TopicPartitionList::new();
            for p in &owned {
                let _ = tpl.add_partition(&topic, *p as i32);
            }
            let at = self.consumer.position().ok();
            let (lag, past_markers) = tokio::task::block_in_place(|| {
                let committed = self
                    .consumer
                    .committed_offsets(tpl, REQUEST_TIMEOUT)
                    .map_err(PortError::of)?;
                let mut lag = 0u64;
                let mut past_markers = Vec::new();
                for e in committed.elements() {
                    let p = e.partition() as u32;
                    let (low, high) = self
                        .consumer
                        .fetch_watermarks(&topic, e.partition(), REQUEST_TIMEOUT)
                        .map_err(PortError::of)?;
                    let mut done = match e.offset() {
                        Offset::Offset(o) => o,
                        _ => low,
                    };
                    // Done with everything fetched, and the consumer has moved past the
                    // transaction markers that follow: commit that.
                    let position = at
                        .as_ref()
                        .and_then(|tpl| tpl.find_partition(&topic, e.partition()))
                        .and_then(|x| match x.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                    if let Some(position) = position {
                        if self.fetched.get(&p).is_some_and(|f| *f as i64 == done)
                            && position > done
                        {
                            past_markers.push((p, position as u64));
                            done = position;
                        }
                    }
                    lag += (high - done).max(0) as u64;
                }
                Ok::<_, PortError>((lag, past_markers))
            })?;
            self.commit(&self.consumer, &self.input, &past_markers);
            Ok(lag)
        })
    }

    fn revoked(&mut self) -> Vec<u32> {
        let owned = self.owned();
        // A partition given back later resumes from its committed offset, not from where this
        // member once fetched it.
        self.fetched.retain(|p, _| owned.contains(p));
        (0..self.partitions)
            .filter(|p| !owned.contains(p))
            .collect()
    }
}

/// The connector's rows in ScyllaDB (or Cassandra), written with the current time as their write
/// time.
pub struct StoreRows(pub Arc<dyn ProjectionStore>);

impl RowStore for StoreRows {
    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, PortError>> {
        Box::pin(async move { self.0.get_many(table, keys).await.map_err(PortError::of) })
    }

    fn put(&self, writes: Vec<RowWrite>) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            self.0
                .apply(writes, now_micros())
                .await
                .map_err(PortError::of)
        })
    }

    fn put_timed(&self, writes: Vec<(i64, RowWrite)>) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            let mut by_time: std::collections::BTreeMap<i64, Vec<RowWrite>> = Default::default();
            for (at, w) in writes {
                by_time.entry(at).or_default().push(w);
            }
            for (at, writes) in by_time {
                self.0.apply(writes, at).await.map_err(PortError::of)?;
            }
            Ok(())
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Swap, PortError>> {
        Box::pin(async move {
            let found = match expected {
                // No row expected: a claim (INSERT … IF NOT EXISTS).
                None => match self.0.claim(table, key, value).await {
                    Ok(None) => return Ok(Swap::Done),
                    Ok(Some(existing)) => Some(existing),
                    Err(e) => return Err(PortError::of(e)),
                },
                Some(expected) => match self
                    .0
                    .compare_and_set(table, key, expected.to_vec(), value)
                    .await
                {
                    Ok(Ok(())) => return Ok(Swap::Done),
                    Ok(Err(found)) => found,
                    Err(e) => return Err(PortError::of(e)),
                },
            };
            Ok(Swap::Conflict(found))
        })
    }
}
