//! The search connector's loop: `search.events` into the full-text index, written once for both
//! modes. Its position in the topic is the payload of each index commit, so the index and its
//! place can never disagree after a crash; it reads from there on the embedded log (`porch up`)
//! or with a Kafka reader (`porch connector search`). Like every connector it writes its status
//! row, and pause stops it between batches.

use super::{IndexChange, SearchIndex};
use crate::sink::status::{
    status_key, ConnectorState, ConnectorStatus, ControlRow, CONTROL_TABLE, STATUS_EVERY,
    STATUS_TABLE,
};
use crate::sink::{PortError, RowStore};
use porch_processors::store::{BoxFuture, RowWrite};
use porch_schemas::{Codec, Event};
use porch_topics::kafka_admin::KafkaConfig;
use porch_topics::kafka_read::TopicReader;
use porch_topics::{EmbeddedLog, LogRecord};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The connector's name.
pub const NAME: &str = "search";
const TOPIC: &str = "search.events";
/// Changes per index commit at most.
const BATCH: usize = 1_024;

/// Reads one topic from given offsets.
pub trait LogReader: Send {
    /// Reads every partition from `offsets` (one per partition) on.
    fn start(&mut self, offsets: &[u64]) -> BoxFuture<'_, Result<(), PortError>>;
    /// Records past the last ones returned, at most `max`, waiting up to `wait` for the first.
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<LogRecord>, PortError>>;
    /// Records not read yet, with the index at `offsets`.
    fn lag(&mut self, offsets: &[u64]) -> BoxFuture<'_, Result<u64, PortError>>;
}

/// The search connector.
pub struct SearchSink {
    pub index: Arc<SearchIndex>,
    pub codec: Arc<Codec>,
    pub partitions: u32,
    pub instance: String,
    pub rows: Arc<dyn RowStore>,
    pub status: Arc<ConnectorStatus>,
}

impl SearchSink {
    /// The index's position in the topic: its last commit's payload.
    fn offsets(&self) -> Vec<u64> {
        let n = self.partitions as usize;
        self.index
            .checkpoint()
            .and_then(|c| serde_json::from_str(&c).ok())
            .filter(|o: &Vec<u64>| o.len() == n)
            .unwrap_or_else(|| vec![0; n])
    }

    /// Runs until `stop` is set.
    pub async fn run(self, mut reader: Box<dyn LogReader>, stop: Arc<AtomicBool>) {
        let mut offsets = self.offsets();
        let mut started = false;
        let mut paused = false;
        let mut last_status = Instant::now() - Duration::from_secs(60);
        let mut last_control = last_status;
        while !stop.load(Ordering::Relaxed) {
            if last_control.elapsed() >= Duration::from_secs(1) {
                last_control = Instant::now();
                if let Ok(Some(bytes)) = self.rows.get(CONTROL_TABLE, NAME).await {
                    if let Ok(control) = serde_json::from_slice::<ControlRow>(&bytes) {
                        paused = control.paused;
                    }
                }
                self.status.set_state(if paused {
                    ConnectorState::Paused
                } else {
                    ConnectorState::Running
                });
            }
            if last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                if let Ok(lag) = reader.lag(&offsets).await {
                    self.status.set_lag(lag);
                }
                self.write_status().await;
            }
            if paused {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if !started {
                match reader.start(&offsets).await {
                    Ok(()) => started = true,
                    Err(e) => {
                        self.failed(&format!("reading {TOPIC}: {e}")).await;
                        continue;
                    }
                }
            }
            let records = match reader.poll(BATCH, Duration::from_millis(200)).await {
                Ok(r) => r,
                Err(e) => {
                    // Start again from what the index holds.
                    started = false;
                    offsets = self.offsets();
                    self.failed(&format!("reading {TOPIC}: {e}")).await;
                    continue;
                }
            };
            if records.is_empty() {
                continue;
            }
            let mut changes = Vec::new();
            for r in &records {
                offsets[r.partition as usize] = r.offset + 1;
                match self.codec.decode_event(&r.value) {
                    Ok(rec) => match rec.event {
                        Event::ListingVisible(v) => changes.push(IndexChange::Upsert {
                            tenant: rec.envelope.tenant,
                            listing: v.listing,
                        }),
                        Event::ListingHidden(h) => changes.push(IndexChange::Remove {
                            tenant: rec.envelope.tenant,
                            offer_id: h.offer_id,
                        }),
                        _ => {}
                    },
                    Err(e) => {
                        tracing::warn!(partition = r.partition, offset = r.offset, error = %e, "skipping undecodable search event")
                    }
                }
            }
            let checkpoint = serde_json::to_string(&offsets).unwrap_or_default();
            let (index, n) = (self.index.clone(), changes.len() as u64);
            loop {
                let (index, changes, checkpoint) =
                    (index.clone(), changes.clone(), checkpoint.clone());
                let applied =
                    tokio::task::spawn_blocking(move || index.apply(&changes, &checkpoint)).await;
                match applied {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => self.failed(&format!("search index commit: {e}")).await,
                    Err(e) => self.failed(&format!("search index commit: {e}")).await,
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            for _ in 0..n {
                self.status.request_done("indexed");
            }
        }
        self.write_status().await;
    }

    async fn failed(&self, error: &str) {
        tracing::error!(error, "search connector; retrying");
        self.status.set_last_error(error);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    async fn write_status(&self) {
        let row = self.status.row(&self.instance);
        let write = RowWrite {
            table: STATUS_TABLE.into(),
            key: status_key(NAME, &self.instance),
            value: serde_json::to_vec(&row).ok(),
        };
        if let Err(e) = self.rows.put(vec![write]).await {
            tracing::debug!(error = %e, "writing the search connector's status");
        }
    }
}

/// `search.events` on the embedded log.
pub struct EmbeddedReader {
    log: Arc<EmbeddedLog>,
    cursors: Vec<u64>,
    commits: tokio::sync::watch::Receiver<u64>,
}

impl EmbeddedReader {
    pub fn new(log: Arc<EmbeddedLog>) -> Self {
        let commits = log.subscribe();
        EmbeddedReader {
            log,
            cursors: Vec::new(),
            commits,
        }
    }

    fn read(&mut self, max: usize) -> Result<Vec<LogRecord>, PortError> {
        let mut out = Vec::new();
        for (p, cursor) in self.cursors.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            let records = self
                .log
                .read(TOPIC, p as u32, *cursor, max - out.len())
                .map_err(PortError::of)?;
            if let Some(last) = records.last() {
                *cursor = last.offset + 1;
            }
            out.extend(records);
        }
        Ok(out)
    }
}

impl LogReader for EmbeddedReader {
    fn start(&mut self, offsets: &[u64]) -> BoxFuture<'_, Result<(), PortError>> {
        self.cursors = offsets.to_vec();
        Box::pin(async { Ok(()) })
    }

    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<LogRecord>, PortError>> {
        Box::pin(async move {
            self.commits.borrow_and_update();
            let records = self.read(max)?;
            if !records.is_empty() {
                return Ok(records);
            }
            let _ = tokio::time::timeout(wait, self.commits.changed()).await;
            self.read(max)
        })
    }

    fn lag(&mut self, offsets: &[u64]) -> BoxFuture<'_, Result<u64, PortError>> {
        let offsets = offsets.to_vec();
        Box::pin(async move {
            let mut lag = 0;
            for (p, at) in offsets.iter().enumerate() {
                let end = self
                    .log
                    .end_offset(TOPIC, p as u32)
                    .map_err(PortError::of)?;
                lag += end.saturating_sub(*at);
            }
            Ok(lag)
        })
    }
}

/// `search.events` on Kafka: a reader assigned every partition (no group: the index holds the
/// position), replaced when it lost its cluster for good.
pub struct KafkaReader {
    kafka: KafkaConfig,
    reader: Option<TopicReader>,
    /// Where each partition is, to start a replacement reader from.
    offsets: Vec<u64>,
}

impl KafkaReader {
    pub fn new(kafka: &KafkaConfig) -> Self {
        KafkaReader {
            kafka: kafka.clone(),
            reader: None,
            offsets: Vec::new(),
        }
    }

    fn open(&mut self) -> Result<(), PortError> {
        let mut reader = TopicReader::watched(&self.kafka).map_err(PortError::of)?;
        let starts: Vec<(u32, u64)> = self
            .offsets
            .iter()
            .enumerate()
            .map(|(p, o)| (p as u32, *o))
            .collect();
        reader.assign(TOPIC, &starts).map_err(PortError::of)?;
        self.reader = Some(reader);
        Ok(())
    }
}

impl LogReader for KafkaReader {
    fn start(&mut self, offsets: &[u64]) -> BoxFuture<'_, Result<(), PortError>> {
        self.offsets = offsets.to_vec();
        let opened = self.open();
        Box::pin(async move { opened })
    }

    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<LogRecord>, PortError>> {
        Box::pin(async move {
            let lost = self.reader.as_ref().is_none_or(|r| r.lost());
            if lost {
                tracing::error!("the search.events reader has no broker connection while the cluster answers; replacing it");
                self.reader = None;
                self.open()?;
            }
            let reader = self.reader.as_ref().expect("opened");
            let mut out = Vec::new();
            let mut first = wait;
            tokio::task::block_in_place(|| {
                while out.len() < max {
                    match reader.poll(first) {
                        Ok(Some(r)) => out.push(r),
                        Ok(None) => break,
                        Err(e) if out.is_empty() => return Err(PortError::of(e)),
                        Err(_) => break,
                    }
                    first = Duration::ZERO;
                }
                Ok(())
            })?;
            for r in &out {
                self.offsets[r.partition as usize] = r.offset + 1;
            }
            Ok(out)
        })
    }

    fn lag(&mut self, offsets: &[u64]) -> BoxFuture<'_, Result<u64, PortError>> {
        let kafka = self.kafka.clone();
        // The reader's position is past the transaction markers after the records it returned;
        // the index's offsets are not.
        let positions: Vec<Option<u64>> = (0..offsets.len())
            .map(|p| {
                self.reader
                    .as_ref()
                    .and_then(|r| r.position(p as u32).ok().flatten())
            })
            .collect();
        let offsets = offsets.to_vec();
        Box::pin(async move {
            let ends = tokio::task::spawn_blocking(move || {
                porch_topics::kafka_read::end_offsets(&kafka, TOPIC).map_err(PortError::of)
            })
            .await
            .map_err(PortError::of)??;
            Ok(ends
                .iter()
                .zip(offsets.iter().zip(&positions))
                .map(|(end, (at, position))| end.saturating_sub((*at).max(position.unwrap_or(0))))
                .sum())
        })
    }
}
