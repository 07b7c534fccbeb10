//! What a processor's batch writes through, whichever backend holds the log and the store.

use crate::embedded::{Append, LogError, LogTxn};

/// One atomic batch of a processor: store rows it reads and writes, records it appends and the
/// input positions it commits. The embedded log commits all of it in one redb transaction; the
/// distributed runtime checkpoints it in the store and commits it in one Kafka transaction.
pub trait BatchTxn {
    /// The batch's clock, microseconds since the epoch.
    fn now(&self) -> i64;
    /// A store row, seeing this batch's own writes.
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, LogError>;
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), LogError>;
    fn remove(&mut self, table: &str, key: &str) -> Result<(), LogError>;
    /// Store rows of `table` whose key starts with `prefix`, in key order, after `start_after`,
    /// seeing this batch.
    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError>;
    /// Appends to the partition murmur2 chooses for the key.
    fn append(&mut self, rec: Append<'_>) -> Result<(), LogError>;
    /// Appends to a given partition (dead letters keep their source partition).
    fn append_to(&mut self, partition: u32, rec: Append<'_>) -> Result<(), LogError>;
    /// Records the next offset the group will read from an input partition.
    fn commit_position(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), LogError>;
    /// Whether the batch is a dry run whose records and writes are thrown away (a read-ahead
    /// probe of the rows a batch will read): what only shapes records, or rows no processor
    /// reads, may be skipped.
    fn dry_run(&self) -> bool {
        false
    }
}

impl BatchTxn for LogTxn<'_> {
    fn now(&self) -> i64 {
        LogTxn::now(self)
    }
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        LogTxn::get(self, table, key)
    }
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), LogError> {
        LogTxn::put(self, table, key, value)
    }
    fn remove(&mut self, table: &str, key: &str) -> Result<(), LogError> {
        LogTxn::remove(self, table, key)
    }
    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        LogTxn::scan(self, table, prefix, start_after, limit)
    }
    fn append(&mut self, rec: Append<'_>) -> Result<(), LogError> {
        LogTxn::append(self, rec).map(|_| ())
    }
    fn append_to(&mut self, partition: u32, rec: Append<'_>) -> Result<(), LogError> {
        LogTxn::append_to(self, partition, rec).map(|_| ())
    }
    fn commit_position(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), LogError> {
        LogTxn::commit_position(self, group, topic, partition, next)
    }
}
