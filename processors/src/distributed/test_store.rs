//! A store in memory for the tests of the runtime and of a task's reads.
use crate::store::Store;
use crate::store::{ProjectionStore, RowWrite, StoreError};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// A task: its consumer group and partition number.
type TaskOf = (String, u32);

/// A store in memory: rows with their write times (a later write time wins, as in CQL),
/// checkpoints and claims; counts the scans that reach it.
#[derive(Default)]
pub(super) struct MemStore {
    pub(super) rows: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    /// The write time of each row written by `apply`, removed rows included.
    written: Mutex<HashMap<(String, String), i64>>,
    /// Each task's checkpoint with its write time.
    pub(super) checkpoints: Mutex<HashMap<TaskOf, (i64, Vec<u8>)>>,
    pub(super) scans: std::sync::atomic::AtomicUsize,
}

impl MemStore {
    pub(super) fn keys(&self) -> Vec<String> {
        let rows = self.rows.lock().unwrap();
        rows.keys().map(|(_, k)| k.clone()).collect()
    }
}

impl Store for MemStore {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows.get(&(table.into(), key.into())).cloned())
    }
    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scans.fetch_add(1, Ordering::Relaxed);
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .range((table.to_string(), prefix.to_string())..)
            .take_while(|((t, k), _)| t == table && k.starts_with(prefix))
            .filter(|((_, k), _)| start_after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl ProjectionStore for MemStore {
    fn get_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { self.get_raw(table, key) })
    }
    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move { keys.iter().map(|k| self.get_raw(table, k)).collect() })
    }
    fn scan_async<'a>(
        &'a self,
        table: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<crate::store::Rows, StoreError>> {
        Box::pin(async move { self.scan_raw(table, prefix, start_after, limit) })
    }
    fn apply(
        &self,
        writes: Vec<RowWrite>,
        timestamp: i64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut rows = self.rows.lock().unwrap();
            let mut written = self.written.lock().unwrap();
            for w in writes {
                let id = (w.table, w.key);
                if written.get(&id).is_some_and(|t| *t > timestamp) {
                    continue;
                }
                written.insert(id.clone(), timestamp);
                match w.value {
                    Some(v) => rows.insert(id, v),
                    None => rows.remove(&id),
                };
            }
            Ok(())
        })
    }
    fn load_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let checkpoints = self.checkpoints.lock().unwrap();
        let found = checkpoints
            .get(&(group.to_string(), task))
            .map(|(_, body)| body.clone());
        Box::pin(async move { Ok(found) })
    }
    fn save_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
        checkpoint: Vec<u8>,
        timestamp: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut checkpoints = self.checkpoints.lock().unwrap();
        let slot = checkpoints
            .entry((group.to_string(), task))
            .or_insert((i64::MIN, Vec::new()));
        if timestamp >= slot.0 {
            *slot = (timestamp, checkpoint);
        }
        Box::pin(async { Ok(()) })
    }
    fn claim<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let mut rows = self.rows.lock().unwrap();
        let taken = match rows.entry((table.to_string(), key.to_string())) {
            std::collections::btree_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(value);
                None
            }
        };
        Box::pin(async move { Ok(taken) })
    }
    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}
