//! What a task reads and writes in a turn: its cached and pending rows, the store pages the
//! turn shares, and the [`DistTxn`] that decides its batch through them.
use crate::checkpoint::{Checkpoint, OutRecord};
use crate::store::{ProjectionStore, RowWrite, StoreError};
use porch_topics::{partition_for, Append, BatchTxn, LogError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Rows a task read or wrote, by (table, key); `None` is a row known to be absent. A task's
/// rows are written by its owner alone, so while the task stays owned and recovered the cache
/// is exact; it is dropped on recovery and when it grows past [`CACHE_ROWS`].
pub(super) type RowCache = HashMap<RowId, Option<Vec<u8>>>;

/// (table, key)
pub(super) type RowId = (String, String);

pub(super) const CACHE_ROWS: usize = 20_000;

/// Row writes of committed turns not yet known to be in the store, by (table, key): the value
/// (`None` a removal) and the id of the turn that wrote it. A task's reads see them before the
/// store's, and every checkpoint carries them all, so the projection can be written after the
/// turn's commit, off its critical path, and a recovery still finds every committed write.
pub(super) type Pending = BTreeMap<RowId, (Option<Vec<u8>>, i64)>;

/// The pending rows as writes, in key order.
pub(super) fn pending_writes(pending: &Pending) -> Vec<RowWrite> {
    pending
        .iter()
        .map(|((table, key), (value, _))| RowWrite {
            table: table.clone(),
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Pending rows of a task past which its next turn waits for the store to take them: a
/// checkpoint carries them all, so they bound its size.
pub(super) const PENDING_ROWS: usize = 8_000;

/// Projection writes that finished: (task, checkpoint id, error if it failed).
pub(super) type Applied = Arc<Mutex<Vec<(u32, i64, Option<String>)>>>;

/// Store pages read by a turn's scans, by (table, prefix, after, size). Nothing of the turn is
/// written before its tasks are decided, and a task's scan keeps only its own rows, so tasks
/// asking for the same page share one read: every task's timers scan the same table from its
/// start.
pub(super) type Pages = std::cell::RefCell<HashMap<PageId, std::rc::Rc<crate::store::Rows>>>;

/// (table, prefix, after, size)
type PageId = (String, String, Option<String>, usize);

/// One task's batch: reads through the task's cache to the store, buffers everything it writes.
pub struct DistTxn<'s> {
    store: &'s dyn ProjectionStore,
    cache: &'s RowCache,
    pending: &'s Pending,
    pages: &'s Pages,
    /// Rows read from the store in this batch, for the cache.
    pub(super) reads: std::cell::RefCell<Vec<(RowId, Option<Vec<u8>>)>>,
    handle: &'s tokio::runtime::Handle,
    now: i64,
    task: u32,
    partitions: u32,
    overlay: BTreeMap<(String, String), Option<Vec<u8>>>,
    records: Vec<OutRecord>,
    positions: BTreeMap<(String, u32), u64>,
    /// A probe decides without the store: a row neither written nor cached reads as absent
    /// and is noted here, so that the batch's rows can be fetched at once, concurrently.
    pub(super) probe: Option<std::cell::RefCell<BTreeSet<RowId>>>,
}

fn store_err(e: StoreError) -> LogError {
    LogError::Aborted(e.to_string())
}

impl<'s> DistTxn<'s> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        store: &'s dyn ProjectionStore,
        cache: &'s RowCache,
        pending: &'s Pending,
        pages: &'s Pages,
        handle: &'s tokio::runtime::Handle,
        now: i64,
        task: u32,
        partitions: u32,
    ) -> Self {
        Self {
            store,
            cache,
            pending,
            pages,
            reads: Default::default(),
            handle,
            now,
            task,
            partitions,
            overlay: BTreeMap::new(),
            records: Vec::new(),
            positions: BTreeMap::new(),
            probe: None,
        }
    }

    /// The batch's checkpoint, whose writes are the task's pending rows and the batch's own,
    /// and the batch's own writes.
    pub(super) fn into_checkpoint(self, id: i64) -> (Checkpoint, Vec<RowWrite>) {
        let own: Vec<RowWrite> = self
            .overlay
            .into_iter()
            .map(|((table, key), value)| RowWrite { table, key, value })
            .collect();
        let mut writes = pending_writes(self.pending);
        // The apply keeps the last write of a row.
        writes.extend(own.iter().cloned());
        let cp = Checkpoint {
            id,
            offsets: self
                .positions
                .into_iter()
                .map(|((t, p), n)| (t, p, n))
                .collect(),
            writes,
            records: self.records,
        };
        (cp, own)
    }

    /// Whether a row key belongs to this task: keys that start with a tenant and a product
    /// belong to that product's partition. Scans with an empty prefix (timers) see only the
    /// task's own rows, whose `<tenant>/<product>` follows the first key part.
    fn owns_timer_row(&self, key: &str) -> bool {
        let mut parts = key.splitn(4, '/');
        let (_, Some(tenant), Some(product)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let k = porch_topics::product_key(tenant, product);
        partition_for(k.as_bytes(), self.partitions) == self.task
    }
}

impl BatchTxn for DistTxn<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        let k = (table.to_string(), key.to_string());
        if let Some(v) = self.overlay.get(&k) {
            return Ok(v.clone());
        }
        if let Some((v, _)) = self.pending.get(&k) {
            return Ok(v.clone());
        }
        if let Some(v) = self.cache.get(&k) {
            return Ok(v.clone());
        }
        if let Some(misses) = &self.probe {
            misses.borrow_mut().insert(k);
            return Ok(None);
        }
        let v = self
            .handle
            .block_on(self.store.get_async(table, key))
            .map_err(store_err)?;
        self.reads.borrow_mut().push((k, v.clone()));
        Ok(v)
    }

    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), LogError> {
        self.overlay
            .insert((table.to_string(), key.to_string()), Some(value.to_vec()));
        Ok(())
    }

    fn remove(&mut self, table: &str, key: &str) -> Result<(), LogError> {
        self.overlay
            .insert((table.to_string(), key.to_string()), None);
        Ok(())
    }

    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        if self.probe.is_some() {
            return Ok(Vec::new());
        }
        let timers = prefix.is_empty();
        let size = limit.max(64);
        let from = (table.to_string(), prefix.to_string());
        let within = |t: &String, k: &String| {
            t == table && k.starts_with(prefix) && start_after.is_none_or(|a| k.as_str() > a)
        };
        let own = || {
            self.overlay
                .range(from.clone()..)
                .take_while(|((t, k), _)| t == table && k.starts_with(prefix))
                .filter(|((t, k), _)| within(t, k))
        };
        let pending = || {
            self.pending
                .range(from.clone()..)
                .take_while(|((t, k), _)| t == table && k.starts_with(prefix))
                .filter(|((t, k), _)| within(t, k))
                .map(|(id, (v, _))| (id, v))
        };
        // Removals not yet in the store can hide rows of the store's pages.
        let removed = own().filter(|(_, v)| v.is_none()).count()
            + pending().filter(|(_, v)| v.is_none()).count();
        let mut merged: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        let mut after: Option<String> = start_after.map(String::from);
        // Read pages until `limit` rows survive the batch's removals and the task filter.
        loop {
            let id = (table.to_string(), prefix.to_string(), after.clone(), size);
            let shared = self.pages.borrow().get(&id).cloned();
            let page = match shared {
                Some(page) => page,
                None => {
                    let page = self
                        .handle
                        .block_on(self.store.scan_async(table, prefix, after.as_deref(), size))
                        .map_err(store_err)?;
                    let page = std::rc::Rc::new(page);
                    self.pages.borrow_mut().insert(id, page.clone());
                    page
                }
            };
            let full = page.len() >= size;
            after = page.last().map(|(k, _)| k.clone());
            for (k, v) in page.iter() {
                if !timers || self.owns_timer_row(k) {
                    merged.insert(k.clone(), Some(v.clone()));
                }
            }
            if !full || merged.len() >= limit + removed {
                break;
            }
        }
        for ((_, k), v) in pending().chain(own()) {
            merged.insert(k.clone(), v.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .take(limit)
            .collect())
    }

    fn append(&mut self, rec: Append<'_>) -> Result<(), LogError> {
        let p = partition_for(rec.key, self.partitions);
        self.append_to(p, rec)
    }

    fn append_to(&mut self, partition: u32, rec: Append<'_>) -> Result<(), LogError> {
        self.records.push(OutRecord {
            topic: rec.topic.to_string(),
            partition,
            key: rec.key.to_vec(),
            value: rec.value.to_vec(),
            headers: rec.headers,
        });
        Ok(())
    }

    fn commit_position(
        &mut self,
        _group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), LogError> {
        self.positions.insert((topic.to_string(), partition), next);
        Ok(())
    }

    fn dry_run(&self) -> bool {
        self.probe.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_store::MemStore;
    use super::*;
    use std::sync::atomic::Ordering;

    const PARTITIONS: u32 = 4;

    /// Timer rows `<due>/acme/<product>` of products p0..p{n}, and each one's task.
    fn timers(n: usize) -> (MemStore, Vec<(String, u32)>) {
        let mut store = MemStore::default();
        let mut owned = Vec::new();
        for i in 0..n {
            let product = format!("p{i}");
            let key = format!("{:020}/acme/{product}", 1_000 + i);
            let k = porch_topics::product_key("acme", &product);
            owned.push((key.clone(), partition_for(k.as_bytes(), PARTITIONS)));
            let rows = store.rows.get_mut().unwrap();
            rows.insert(("deadline".into(), key), b"".to_vec());
        }
        (store, owned)
    }

    fn keys(rows: Vec<(String, Vec<u8>)>) -> Vec<String> {
        rows.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn the_tasks_of_a_turn_share_the_pages_their_timers_read() {
        // Three pages of 256: no task owns 256 rows, so each reads them all.
        let (store, owned) = timers(600);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (cache, pages, pending) = (RowCache::new(), Pages::default(), Pending::new());
        for task in 0..PARTITIONS {
            let txn = DistTxn::new(
                &store,
                &cache,
                &pending,
                &pages,
                runtime.handle(),
                0,
                task,
                PARTITIONS,
            );
            let mine: Vec<String> = owned
                .iter()
                .filter(|(_, t)| *t == task)
                .map(|(k, _)| k.clone())
                .collect();
            assert!(!mine.is_empty(), "task {task} owns none of the rows");
            let scanned = keys(txn.scan("deadline", "", None, 256).expect("scan"));
            assert_eq!(scanned, mine, "task {task}");
        }
        // The first task read the three pages, the others shared them.
        assert_eq!(store.scans.load(Ordering::Relaxed), 3);
        // A turn of its own reads them again.
        let pages = Pages::default();
        let txn = DistTxn::new(
            &store,
            &cache,
            &pending,
            &pages,
            runtime.handle(),
            0,
            0,
            PARTITIONS,
        );
        txn.scan("deadline", "", None, 256).expect("scan");
        assert_eq!(store.scans.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_scan_reads_past_the_rows_its_batch_removed_and_no_further() {
        let (store, _) = timers(200);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (cache, pages, pending) = (RowCache::new(), Pages::default(), Pending::new());
        let mut txn = DistTxn::new(&store, &cache, &pending, &pages, runtime.handle(), 0, 0, 1);
        // Writes to other tables do not make the scan read more pages.
        for i in 0..100 {
            txn.put("other", &format!("k{i}"), b"v").expect("put");
        }
        let first = keys(txn.scan("deadline", "", None, 3).expect("scan"));
        assert_eq!(first.len(), 3);
        assert_eq!(
            store.scans.load(Ordering::Relaxed),
            1,
            "one page of 64 is enough"
        );
        // Removing the first page's rows: the scan goes on to the next page for three more.
        let stored = store.keys();
        for k in &stored[..64] {
            txn.remove("deadline", k).expect("remove");
        }
        let after = keys(txn.scan("deadline", "", None, 3).expect("scan"));
        assert_eq!(after, stored[64..67]);
        // The first page came from the turn's pages; only the second was read.
        assert_eq!(store.scans.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn rows_committed_but_not_yet_in_the_store_are_read_and_scanned_before_the_stores() {
        let (store, _) = timers(200);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let stored = store.keys();
        let row = |k: &str| ("deadline".to_string(), k.to_string());
        let mut pending = Pending::new();
        // The store's first two rows removed, its third changed, one row added before them.
        pending.insert(row(&stored[0]), (None, 1));
        pending.insert(row(&stored[1]), (None, 1));
        pending.insert(row(&stored[2]), (Some(b"changed".to_vec()), 2));
        let added = format!("{}!", &stored[0][..stored[0].len() - 1]);
        pending.insert(row(&added), (Some(b"added".to_vec()), 2));
        pending.insert(("other".into(), "k".into()), (Some(b"v".to_vec()), 2));
        let (cache, pages) = (RowCache::new(), Pages::default());
        let mut txn = DistTxn::new(&store, &cache, &pending, &pages, runtime.handle(), 0, 0, 1);
        assert_eq!(txn.get("deadline", &stored[0]).expect("get"), None);
        assert_eq!(
            txn.get("deadline", &stored[2]).expect("get"),
            Some(b"changed".to_vec())
        );
        assert_eq!(txn.get("other", "k").expect("get"), Some(b"v".to_vec()));
        let scanned = txn.scan("deadline", "", None, 3).expect("scan");
        let want = {
            let mut w = vec![added.clone(), stored[2].clone(), stored[3].clone()];
            w.sort();
            w
        };
        assert_eq!(keys(scanned.clone()), want);
        assert!(scanned.contains(&(stored[2].clone(), b"changed".to_vec())));
        // The batch's own writes come before the pending ones.
        txn.put("deadline", &stored[2], b"mine").expect("put");
        assert_eq!(
            txn.get("deadline", &stored[2]).expect("get"),
            Some(b"mine".to_vec())
        );
        // The checkpoint carries the pending rows and the batch's own, its own last.
        let (cp, own) = txn.into_checkpoint(3);
        assert_eq!(own.len(), 1);
        assert_eq!(cp.writes.len(), pending.len() + 1);
        let last = cp
            .writes
            .iter()
            .rev()
            .find(|w| w.key == stored[2])
            .expect("row");
        assert_eq!(last.value.as_deref(), Some(&b"mine"[..]));
    }
}
