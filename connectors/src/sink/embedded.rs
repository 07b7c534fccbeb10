//! A connector on the embedded log and store (`porch up`): its input positions are the log's
//! consumer positions of its group, and one write transaction holds a completion's outcomes, dead
//! letters and positions together.

use super::{Completion, PortError, RowStore, SinkPort, Swap};
use porch_processors::store::{BoxFuture, RowWrite};
use porch_topics::{Append, EmbeddedLog, LogRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Records read from one partition per poll at most, so partitions take turns.
const PER_PARTITION: usize = 512;

pub struct EmbeddedPort {
    log: Arc<EmbeddedLog>,
    group: String,
    redrive_group: String,
    input: String,
    dead_letters: String,
    /// Next offset to read, per (topic, partition); empty until the first poll or after a rewind.
    cursors: BTreeMap<(String, u32), u64>,
    /// While a redrive runs: the end of each dead-letter partition when it was asked for.
    redrive_until: Option<Vec<u64>>,
    commits: tokio::sync::watch::Receiver<u64>,
}

impl EmbeddedPort {
    /// The port of connector `name` reading `input` (channel.events).
    pub fn new(log: Arc<EmbeddedLog>, name: &str, input: &str) -> Self {
        let commits = log.subscribe();
        EmbeddedPort {
            log,
            group: super::group_of(name),
            redrive_group: super::redrive_group_of(name),
            input: input.to_string(),
            dead_letters: super::dead_letter_topic(name),
            cursors: BTreeMap::new(),
            redrive_until: None,
            commits,
        }
    }

    fn group_for(&self, topic: &str) -> &str {
        if topic == self.dead_letters {
            &self.redrive_group
        } else {
            &self.group
        }
    }

    fn cursor(&mut self, topic: &str, partition: u32) -> Result<u64, PortError> {
        if let Some(c) = self.cursors.get(&(topic.to_string(), partition)) {
            return Ok(*c);
        }
        let c = self
            .log
            .position(self.group_for(topic), topic, partition)
            .map_err(PortError::of)?;
        self.cursors.insert((topic.to_string(), partition), c);
        Ok(c)
    }

    fn read_some(&mut self, max: usize) -> Result<Vec<LogRecord>, PortError> {
        let mut out = Vec::new();
        let input = self.input.clone();
        for p in 0..self.log.partitions() {
            if out.len() >= max {
                break;
            }
            let from = self.cursor(&input, p)?;
            let records = self
                .log
                .read(&input, p, from, PER_PARTITION.min(max - out.len()))
                .map_err(PortError::of)?;
            if let Some(last) = records.last() {
                self.cursors.insert((input.clone(), p), last.offset + 1);
            }
            out.extend(records);
        }
        if let Some(until) = self.redrive_until.clone() {
            let dlq = self.dead_letters.clone();
            let mut done = true;
            for (p, end) in until.iter().enumerate() {
                let p = p as u32;
                let from = self.cursor(&dlq, p)?;
                if from >= *end || out.len() >= max {
                    done &= from >= *end;
                    continue;
                }
                let room = ((*end - from) as usize)
                    .min(max - out.len())
                    .min(PER_PARTITION);
                let records = self.log.read(&dlq, p, from, room).map_err(PortError::of)?;
                if let Some(last) = records.last() {
                    self.cursors.insert((dlq.clone(), p), last.offset + 1);
                    done &= last.offset + 1 >= *end;
                }
                out.extend(records);
            }
            if done {
                self.redrive_until = None;
            }
        }
        Ok(out)
    }
}

impl SinkPort for EmbeddedPort {
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<LogRecord>, PortError>> {
        Box::pin(async move {
            self.commits.borrow_and_update();
            let records = self.read_some(max)?;
            if !records.is_empty() || wait.is_zero() {
                return Ok(records);
            }
            let _ = tokio::time::timeout(wait, self.commits.changed()).await;
            self.read_some(max)
        })
    }

    fn complete(&mut self, done: Completion) -> BoxFuture<'_, Result<(), PortError>> {
        let log = self.log.clone();
        let groups: Vec<String> = done
            .positions
            .iter()
            .map(|(t, _, _)| self.group_for(t).to_string())
            .collect();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                log.write(|txn| {
                    for (_, w) in &done.rows {
                        match &w.value {
                            Some(v) => txn.put(&w.table, &w.key, v)?,
                            None => txn.remove(&w.table, &w.key)?,
                        }
                    }
                    for r in &done.records {
                        let rec = Append {
                            topic: &r.topic,
                            key: &r.key,
                            value: &r.value,
                            headers: r.headers.clone(),
                        };
                        match r.partition {
                            Some(p) => txn.append_to(p, rec)?,
                            None => txn.append(rec)?,
                        };
                    }
                    for ((topic, partition, next), group) in done.positions.iter().zip(&groups) {
                        txn.commit_position(group, topic, *partition, *next)?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(PortError::of)?
            .map_err(PortError::of)
        })
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<(), PortError>> {
        self.cursors.clear();
        Box::pin(async { Ok(()) })
    }

    fn redrive(&mut self) -> BoxFuture<'_, Result<(), PortError>> {
        Box::pin(async move {
            let dlq = self.dead_letters.clone();
            let ends = (0..self.log.partitions())
                .map(|p| self.log.end_offset(&dlq, p))
                .collect::<Result<Vec<u64>, _>>()
                .map_err(PortError::of)?;
            self.cursors.retain(|(t, _), _| *t != dlq);
            self.redrive_until = Some(ends);
            Ok(())
        })
    }

    fn lag(&mut self) -> BoxFuture<'_, Result<u64, PortError>> {
        Box::pin(async move {
            let mut lag = 0;
            for p in 0..self.log.partitions() {
                let end = self.log.end_offset(&self.input, p).map_err(PortError::of)?;
                let at = self
                    .log
                    .position(&self.group, &self.input, p)
                    .map_err(PortError::of)?;
                lag += end.saturating_sub(at);
            }
            Ok(lag)
        })
    }
}

/// The connector's rows in the embedded store.
pub struct EmbeddedRows(pub Arc<EmbeddedLog>);

impl RowStore for EmbeddedRows {
    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, PortError>> {
        Box::pin(async move {
            keys.iter()
                .map(|k| self.0.get(table, k).map_err(PortError::of))
                .collect()
        })
    }

    fn put(&self, writes: Vec<RowWrite>) -> BoxFuture<'_, Result<(), PortError>> {
        let log = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                log.write(|txn| {
                    for w in &writes {
                        match &w.value {
                            Some(v) => txn.put(&w.table, &w.key, v)?,
                            None => txn.remove(&w.table, &w.key)?,
                        }
                    }
                    Ok(())
                })
            })
            .await
            .map_err(PortError::of)?
            .map_err(PortError::of)
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Swap, PortError>> {
        let log = self.0.clone();
        let (table, key) = (table.to_string(), key.to_string());
        let expected = expected.map(<[u8]>::to_vec);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || -> Result<Swap, porch_topics::LogError> {
                // One write transaction at a time: the read and the write inside it are atomic.
                let mut found = None;
                let done = log.write_when(|txn| {
                    let current = txn.get(&table, &key)?;
                    if current != expected {
                        found = Some(current);
                        return Ok(None);
                    }
                    txn.put(&table, &key, &value)?;
                    Ok(Some(()))
                })?;
                Ok(match (done, found) {
                    (Some(()), _) => Swap::Done,
                    (None, found) => Swap::Conflict(found.flatten()),
                })
            })
            .await
            .map_err(PortError::of)?
            .map_err(PortError::of)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_compare_and_set_writes_only_over_what_it_expected() {
        let dir = std::env::temp_dir().join(format!(
            "porch-embedded-rows-{}-{}",
            std::process::id(),
            porch_schemas::now_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = Arc::new(EmbeddedLog::open(&dir.join("log.redb"), 1, vec![], 1 << 20).unwrap());
        let rows = EmbeddedRows(log);
        let cas = |expected: Option<&'static [u8]>, value: &'static [u8]| {
            rows.compare_and_set("t", "k", expected, value.to_vec())
        };
        assert_eq!(cas(None, b"one").await.unwrap(), Swap::Done);
        assert_eq!(
            cas(None, b"two").await.unwrap(),
            Swap::Conflict(Some(b"one".to_vec())),
            "a row that exists is not created again"
        );
        assert_eq!(
            cas(Some(b"zero"), b"two").await.unwrap(),
            Swap::Conflict(Some(b"one".to_vec()))
        );
        assert_eq!(cas(Some(b"one"), b"two").await.unwrap(), Swap::Done);
        let keys = ["k".to_string()];
        assert_eq!(
            rows.get_many("t", &keys).await.unwrap(),
            vec![Some(b"two".to_vec())]
        );
        assert_eq!(
            rows.compare_and_set("t", "absent", Some(b"x"), b"y".to_vec())
                .await
                .unwrap(),
            Swap::Conflict(None)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
