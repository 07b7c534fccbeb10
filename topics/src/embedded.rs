//! The embedded log and store, on one redb database: topics with partitions and offsets,
//! consumer positions, and the key-value tables processors project into. Because they share one
//! database, one write transaction commits a batch's output records, its input positions and its
//! projection rows together: a kill -9 at any moment loses nothing and doubles nothing.

use crate::murmur2::partition_for;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// (topic, partition, offset) → encoded record
const RECORDS: TableDefinition<(&str, u32, u64), &[u8]> = TableDefinition::new("log_records");
/// (topic, partition) → next offset (the log end)
const ENDS: TableDefinition<(&str, u32), u64> = TableDefinition::new("log_ends");
/// (group, topic, partition) → next offset to read
const POSITIONS: TableDefinition<(&str, &str, u32), u64> = TableDefinition::new("log_positions");
/// (table, key) → value: the embedded store's projection rows
const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("store_rows");

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("embedded database: {0}")]
    Db(#[from] redb::Error),
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("corrupt record at {0}")]
    Corrupt(String),
    #[error("{0}")]
    Aborted(String),
    /// A record that cannot be handled; the batch is rolled back and redone without it.
    #[error("record {topic}/{partition}@{offset} cannot be handled: {reason}")]
    Poison {
        topic: String,
        partition: u32,
        offset: u64,
        reason: String,
    },
}

macro_rules! db_err {
    ($($t:ty),+) => {$(
        impl From<$t> for LogError {
            fn from(e: $t) -> Self { LogError::Db(e.into()) }
        }
    )+};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// One record of a topic partition.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// Append time, microseconds since the epoch.
    pub timestamp: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

fn encode_record(ts: i64, key: &[u8], value: &[u8], headers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + key.len() + value.len());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(&(headers.len() as u16).to_le_bytes());
    for (k, v) in headers {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

struct Cursor<'a>(&'a [u8]);
impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    }
    fn u32(&mut self) -> Option<usize> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
}

fn decode_record(topic: &str, partition: u32, offset: u64, bytes: &[u8]) -> Option<LogRecord> {
    let mut c = Cursor(bytes);
    let ts = i64::from_le_bytes(c.take(8)?.try_into().ok()?);
    let kl = c.u32()?;
    let key = c.take(kl)?.to_vec();
    let vl = c.u32()?;
    let value = c.take(vl)?.to_vec();
    let n = c.u16()?;
    let mut headers = Vec::with_capacity(n);
    for _ in 0..n {
        let hl = c.u16()?;
        let hk = String::from_utf8(c.take(hl)?.to_vec()).ok()?;
        let hvl = c.u32()?;
        headers.push((hk, c.take(hvl)?.to_vec()));
    }
    Some(LogRecord {
        topic: topic.to_string(),
        partition,
        offset,
        timestamp: ts,
        key,
        value,
        headers,
    })
}

/// Wakes readers when a transaction commits.
#[derive(Default)]
struct Notifier {
    seq: Mutex<u64>,
    cv: Condvar,
}

/// The embedded log and store.
pub struct EmbeddedLog {
    db: Database,
    partitions: u32,
    topics: Vec<String>,
    notifier: Notifier,
    /// The same commit sequence for async waiters.
    commits: tokio::sync::watch::Sender<u64>,
    /// Called after every commit.
    listeners: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

/// A record to append.
pub struct Append<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub headers: Vec<(String, Vec<u8>)>,
}

/// One atomic batch: appends, consumer positions and store rows, all or nothing.
pub struct LogTxn<'t> {
    records: redb::Table<'t, (&'static str, u32, u64), &'static [u8]>,
    ends: redb::Table<'t, (&'static str, u32), u64>,
    positions: redb::Table<'t, (&'static str, &'static str, u32), u64>,
    kv: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    partitions: u32,
    topics: &'t [String],
    now: i64,
}

impl LogTxn<'_> {
    /// Appends to the partition murmur2 chooses for the key; returns (partition, offset).
    pub fn append(&mut self, rec: Append<'_>) -> Result<(u32, u64), LogError> {
        let p = partition_for(rec.key, self.partitions);
        self.append_to(p, rec)
    }

    /// Appends to a given partition (dead letters keep their source partition).
    pub fn append_to(&mut self, partition: u32, rec: Append<'_>) -> Result<(u32, u64), LogError> {
        if !self.topics.iter().any(|t| t == rec.topic) {
            return Err(LogError::UnknownTopic(rec.topic.to_string()));
        }
        let end = self
            .ends
            .get((rec.topic, partition))?
            .map(|v| v.value())
            .unwrap_or(0);
        let bytes = encode_record(self.now, rec.key, rec.value, &rec.headers);
        self.records
            .insert((rec.topic, partition, end), bytes.as_slice())?;
        self.ends.insert((rec.topic, partition), end + 1)?;
        Ok((partition, end))
    }

    /// Commits a consumer group's position: the next offset it will read.
    pub fn commit_position(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), LogError> {
        self.positions.insert((group, topic, partition), next)?;
        Ok(())
    }

    pub fn position(&self, group: &str, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self
            .positions
            .get((group, topic, partition))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// A store row, seeing this batch's own writes.
    pub fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.kv.get((table, key))?.map(|v| v.value().to_vec()))
    }

    pub fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), LogError> {
        self.kv.insert((table, key), value)?;
        Ok(())
    }

    /// Store rows of `table` whose key starts with `prefix`, in key order, after `start_after`,
    /// seeing this batch.
    pub fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        let mut out = Vec::new();
        let start = start_after.unwrap_or(prefix);
        for item in self.kv.range((table, start)..)? {
            let (k, v) = item?;
            let (tbl, key) = k.value();
            if tbl != table || !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            if Some(key) == start_after {
                continue;
            }
            out.push((key.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub fn remove(&mut self, table: &str, key: &str) -> Result<(), LogError> {
        self.kv.remove((table, key))?;
        Ok(())
    }

    /// The batch's clock (append timestamp of its records).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Removes the records of a partition appended before `before` (microseconds), from its
    /// start up to `below` (an offset no reader may still need) and at most `budget` of them;
    /// offsets are never reused (the log end stays). Returns how many went.
    pub fn trim(
        &mut self,
        topic: &str,
        partition: u32,
        before: i64,
        below: u64,
        budget: usize,
    ) -> Result<usize, LogError> {
        let mut old = Vec::new();
        for item in self
            .records
            .range((topic, partition, 0)..(topic, partition, below))?
            .take(budget)
        {
            let (k, v) = item?;
            let ts = v
                .value()
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_le_bytes)
                .unwrap_or(i64::MAX);
            if ts >= before {
                break;
            }
            old.push(k.value().2);
        }
        for offset in &old {
            self.records.remove((topic, partition, *offset))?;
        }
        Ok(old.len())
    }

    /// The least position of the consumer groups on each partition they read, in one pass
    /// over the positions (a partition no group has a position on is absent).
    pub fn least_positions(
        &self,
    ) -> Result<std::collections::HashMap<(String, u32), u64>, LogError> {
        let mut least = std::collections::HashMap::new();
        for item in self.positions.iter()? {
            let (k, v) = item?;
            let (_, t, p) = k.value();
            let at = least.entry((t.to_string(), p)).or_insert(u64::MAX);
            *at = (*at).min(v.value());
        }
        Ok(least)
    }

    /// Store rows of `table` with keys in `[from, to)`, at most `limit`, in key order.
    pub fn range(
        &self,
        table: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        let mut out = Vec::new();
        for item in self.kv.range((table, from)..(table, to))?.take(limit) {
            let (k, v) = item?;
            out.push((k.value().1.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// What a consumer group has not yet read, this transaction's appends and positions included:
    /// one stage of a round reads what the stages before it wrote, before anything is committed.
    pub fn read_pending(&self, want: Pending<'_>) -> Result<Vec<LogRecord>, LogError> {
        pending(
            &self.records,
            &self.ends,
            &self.positions,
            self.partitions,
            want,
        )
    }
}

/// Gives free space back to the file system at start, when at least a quarter of the file is
/// free (after a retention pass trimmed old commands, say): redb reuses free pages while it
/// runs, but only compaction, which needs the database to itself, shrinks the file.
fn compact_if_sparse(db: &mut Database, path: &Path) -> Result<(), LogError> {
    let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    // Pages the last commit before a stop freed are released by a later commit: with none
    // since (a process killed right after its retention pass), count them free first.
    for _ in 0..2 {
        db.begin_write()?.commit()?;
    }
    let used = {
        let txn = db.begin_write()?;
        let stats = txn.stats()?;
        let used = stats.allocated_pages() * stats.page_size() as u64;
        txn.abort()?;
        used
    };
    if file < 1 << 20 || file.saturating_sub(used) < file / 4 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    for _ in 0..64 {
        match db.compact() {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => return Err(LogError::Aborted(format!("compacting the database: {e}"))),
        }
    }
    let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    tracing::info!(
        before = file,
        after,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compacted the embedded database"
    );
    Ok(())
}

/// What one topic or store table holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// "topic" or "table".
    pub kind: &'static str,
    pub name: String,
    /// Records or rows.
    pub entries: u64,
    /// Their keys and values, before the database's own overhead.
    pub bytes: u64,
}

/// What a consumer group has not yet read, and how much of it to take.
pub struct Pending<'a> {
    pub group: &'a str,
    pub topics: &'a [String],
    pub per_partition: usize,
    pub max: usize,
}

/// A group's unread records from its committed positions, through any view of the tables (a
/// read snapshot, or a write transaction that sees its own appends).
fn pending(
    records: &impl ReadableTable<(&'static str, u32, u64), &'static [u8]>,
    ends: &impl ReadableTable<(&'static str, u32), u64>,
    positions: &impl ReadableTable<(&'static str, &'static str, u32), u64>,
    partitions: u32,
    want: Pending<'_>,
) -> Result<Vec<LogRecord>, LogError> {
    let mut out = Vec::new();
    for topic in want.topics {
        for p in 0..partitions {
            if out.len() >= want.max {
                return Ok(out);
            }
            let from = positions
                .get((want.group, topic.as_str(), p))?
                .map(|v| v.value())
                .unwrap_or(0);
            let end = ends
                .get((topic.as_str(), p))?
                .map(|v| v.value())
                .unwrap_or(0);
            if end <= from {
                continue;
            }
            let room = want.per_partition.min(want.max - out.len());
            read_range(records, topic, p, from..end, room, &mut out)?;
        }
    }
    Ok(out)
}

/// Up to `max` records of a partition with offsets in `offsets`, decoded, onto `out`.
fn read_range(
    records: &impl ReadableTable<(&'static str, u32, u64), &'static [u8]>,
    topic: &str,
    partition: u32,
    offsets: std::ops::Range<u64>,
    max: usize,
    out: &mut Vec<LogRecord>,
) -> Result<(), LogError> {
    for item in records
        .range((topic, partition, offsets.start)..(topic, partition, offsets.end))?
        .take(max)
    {
        let (k, v) = item?;
        let (_, _, offset) = k.value();
        let rec = decode_record(topic, partition, offset, v.value())
            .ok_or_else(|| LogError::Corrupt(format!("{topic}/{partition}@{offset}")))?;
        out.push(rec);
    }
    Ok(())
}

impl EmbeddedLog {
    /// Opens (or creates) the database file and the catalogue's topics.
    pub fn open(
        path: &Path,
        partitions: u32,
        topics: Vec<String>,
        cache_bytes: usize,
    ) -> Result<Self, LogError> {
        Self::open_with(path, partitions, topics, cache_bytes, true)
    }

    /// Opens the database to look into it: as `open`, but never compacts it.
    pub fn inspect(path: &Path, partitions: u32, topics: Vec<String>) -> Result<Self, LogError> {
        Self::open_with(path, partitions, topics, 16 << 20, false)
    }

    fn open_with(
        path: &Path,
        partitions: u32,
        topics: Vec<String>,
        cache_bytes: usize,
        compact: bool,
    ) -> Result<Self, LogError> {
        let mut db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        if compact {
            compact_if_sparse(&mut db, path)?;
        }
        let log = Self {
            db,
            partitions,
            topics,
            notifier: Notifier::default(),
            commits: tokio::sync::watch::Sender::new(0),
            listeners: Mutex::new(Vec::new()),
        };
        // Create the tables so readers never see a missing table.
        log.write(|_| Ok(()))?;
        Ok(log)
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
    }

    /// Runs `f` in one write transaction and commits it durably (fsync) before returning.
    /// If `f` fails, nothing of it is written.
    pub fn write<R>(
        &self,
        f: impl FnOnce(&mut LogTxn<'_>) -> Result<R, LogError>,
    ) -> Result<R, LogError> {
        self.write_when(|t| f(t).map(Some))
            .map(|r| r.expect("a write always commits"))
    }

    /// Like `write`, but `f` may find there was nothing to do (`None`): then the transaction is
    /// dropped, with no commit, no fsync and no wake-up of the log's readers.
    pub fn write_when<R>(
        &self,
        f: impl FnOnce(&mut LogTxn<'_>) -> Result<Option<R>, LogError>,
    ) -> Result<Option<R>, LogError> {
        self.write_now(f)
    }

    /// Calls `f` after every commit, whoever made it (the embedded pipeline learns of input
    /// written by connectors this way, with no polling).
    pub fn on_commit(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    fn write_now<R>(
        &self,
        f: impl FnOnce(&mut LogTxn<'_>) -> Result<Option<R>, LogError>,
    ) -> Result<Option<R>, LogError> {
        let txn = self.db.begin_write()?;
        let result = {
            let mut t = LogTxn {
                records: txn.open_table(RECORDS)?,
                ends: txn.open_table(ENDS)?,
                positions: txn.open_table(POSITIONS)?,
                kv: txn.open_table(KV)?,
                partitions: self.partitions,
                topics: &self.topics,
                now: porch_schemas::now_micros(),
            };
            f(&mut t)
        };
        match result {
            Ok(Some(r)) => {
                txn.commit()?;
                {
                    let mut seq = self.notifier.seq.lock().unwrap_or_else(|e| e.into_inner());
                    *seq += 1;
                    self.notifier.cv.notify_all();
                    self.commits.send_replace(*seq);
                }
                for f in self
                    .listeners
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    f();
                }
                Ok(Some(r))
            }
            Ok(None) => {
                txn.abort()?;
                Ok(None)
            }
            Err(e) => {
                txn.abort()?;
                Err(e)
            }
        }
    }

    /// Up to `max` records of a partition from `from` on.
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        let txn = self.db.begin_read()?;
        let mut out = Vec::new();
        // u64::MAX itself is never an offset: a partition ends long before it.
        read_range(
            &txn.open_table(RECORDS)?,
            topic,
            partition,
            from..u64::MAX,
            max,
            &mut out,
        )?;
        Ok(out)
    }

    /// What a consumer group has not yet consumed of `topics`, from its committed positions:
    /// at most `per_partition` records of each partition and `max` in all, read in one snapshot.
    pub fn read_pending(
        &self,
        group: &str,
        topics: &[String],
        per_partition: usize,
        max: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        let txn = self.db.begin_read()?;
        pending(
            &txn.open_table(RECORDS)?,
            &txn.open_table(ENDS)?,
            &txn.open_table(POSITIONS)?,
            self.partitions,
            Pending {
                group,
                topics,
                per_partition,
                max,
            },
        )
    }

    /// The next offset a partition will be given (its log end).
    pub fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENDS)?;
        Ok(table
            .get((topic, partition))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// A consumer group's committed position on a partition.
    pub fn position(&self, group: &str, topic: &str, partition: u32) -> Result<u64, LogError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(POSITIONS)?;
        Ok(table
            .get((group, topic, partition))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// A store row.
    pub fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(KV)?;
        Ok(t.get((table, key))?.map(|v| v.value().to_vec()))
    }

    /// Store rows of `table` whose key starts with `prefix`, in key order, after `start_after`.
    pub fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(KV)?;
        let mut out = Vec::new();
        let start = start_after.unwrap_or(prefix);
        for item in t.range((table, start)..)? {
            let (k, v) = item?;
            let (tbl, key) = k.value();
            if tbl != table || !key.starts_with(prefix) {
                break;
            }
            if Some(key) == start_after {
                continue;
            }
            out.push((key.to_string(), v.value().to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// What the database holds: records and bytes (keys and values) per topic, and rows and
    /// bytes per store table, largest first. Reads everything once.
    pub fn usage(&self) -> Result<Vec<Usage>, LogError> {
        let txn = self.db.begin_read()?;
        let mut by: std::collections::BTreeMap<(&'static str, String), (u64, u64)> =
            Default::default();
        for item in txn.open_table(RECORDS)?.iter()? {
            let (k, v) = item?;
            let (topic, _, _) = k.value();
            let e = by.entry(("topic", topic.to_string())).or_default();
            e.0 += 1;
            e.1 += (topic.len() + 12 + v.value().len()) as u64;
        }
        for item in txn.open_table(KV)?.iter()? {
            let (k, v) = item?;
            let (table, key) = k.value();
            let e = by.entry(("table", table.to_string())).or_default();
            e.0 += 1;
            e.1 += (table.len() + key.len() + v.value().len()) as u64;
        }
        let mut out: Vec<Usage> = by
            .into_iter()
            .map(|((kind, name), (entries, bytes))| Usage {
                kind,
                name,
                entries,
                bytes,
            })
            .collect();
        out.sort_by_key(|u| std::cmp::Reverse(u.bytes));
        Ok(out)
    }

    /// Async waiters: the receiver changes after every commit.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// A number that grows with every commit; see `wait_for_commit`.
    pub fn commit_seq(&self) -> u64 {
        *self.notifier.seq.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until a commit after `seen` or the timeout; returns the current sequence.
    pub fn wait_for_commit(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self.notifier.seq.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .notifier
            .cv
            .wait_timeout_while(guard, timeout, |s| *s <= seen)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_log(partitions: u32) -> (EmbeddedLog, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("porch-log-{}", porch_schemas::new_uuid_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = EmbeddedLog::open(
            &dir.join("log.redb"),
            partitions,
            vec!["a".into(), "b".into()],
            1 << 20,
        )
        .unwrap();
        (log, dir)
    }

    #[test]
    fn appends_get_offsets_per_partition_and_keys_stay_on_their_partition() {
        let (log, dir) = temp_log(4);
        let placed: Vec<(u32, u64)> = log
            .write(|t| {
                (0..20)
                    .map(|i| {
                        let key = format!("acme/p-{}", i % 5);
                        t.append(Append {
                            topic: "a",
                            key: key.as_bytes(),
                            value: b"v",
                            headers: vec![("h".into(), b"x".to_vec())],
                        })
                    })
                    .collect()
            })
            .unwrap();
        for p in 0..4 {
            let recs = log.read("a", p, 0, 100).unwrap();
            assert_eq!(recs.len() as u64, log.end_offset("a", p).unwrap());
            for (i, r) in recs.iter().enumerate() {
                assert_eq!(r.offset, i as u64);
                assert_eq!(partition_for(&r.key, 4), p);
                assert_eq!(r.headers, vec![("h".to_string(), b"x".to_vec())]);
            }
        }
        assert_eq!(placed.len(), 20);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_batch_writes_nothing() {
        let (log, dir) = temp_log(1);
        let r: Result<(), LogError> = log.write(|t| {
            t.append(Append {
                topic: "a",
                key: b"k",
                value: b"v",
                headers: vec![],
            })?;
            t.put("rows", "k", b"v")?;
            t.commit_position("g", "b", 0, 7)?;
            Err(LogError::Aborted("decided to fail".into()))
        });
        assert!(r.is_err());
        assert_eq!(log.end_offset("a", 0).unwrap(), 0);
        assert_eq!(log.get("rows", "k").unwrap(), None);
        assert_eq!(log.position("g", "b", 0).unwrap(), 0);
        assert!(log
            .write(|t| t.append(Append {
                topic: "nope",
                key: b"k",
                value: b"v",
                headers: vec![]
            }))
            .is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn positions_rows_and_records_survive_reopening() {
        let (log, dir) = temp_log(2);
        log.write(|t| {
            t.append_to(
                1,
                Append {
                    topic: "b",
                    key: b"k",
                    value: b"v1",
                    headers: vec![],
                },
            )?;
            t.commit_position("g", "b", 1, 1)?;
            t.put("rows", "acme/p1", b"one")?;
            t.put("rows", "acme/p2", b"two")?;
            t.put("rows", "beta/p1", b"other tenant")
        })
        .unwrap();
        drop(log);
        let log = EmbeddedLog::open(
            &dir.join("log.redb"),
            2,
            vec!["a".into(), "b".into()],
            1 << 20,
        )
        .unwrap();
        assert_eq!(log.read("b", 1, 0, 10).unwrap()[0].value, b"v1");
        assert_eq!(log.position("g", "b", 1).unwrap(), 1);
        let rows = log.scan("rows", "acme/", None, 10).unwrap();
        assert_eq!(rows.len(), 2);
        let after = log.scan("rows", "acme/", Some("acme/p1"), 10).unwrap();
        assert_eq!(after, vec![("acme/p2".to_string(), b"two".to_vec())]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
