//! The write queue: `apply`s of concurrent callers wait while flushes are under way, then go
//! out together in the next flush.

use super::batches::{group_writes, Op, Write};
use super::{CqlStore, IN_FLIGHT};
use crate::layout::{self, Place};
use futures::{stream, StreamExt, TryStreamExt};
use porch_processors::store::{RowWrite, StoreError};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Flushes of queued `apply`s under way at once, at most: while they are, further `apply`s
/// queue up and go out together in the next one (see [`Queue`]).
const FLUSHES: usize = 4;

/// The `apply`s of concurrent callers (the ingest API's requests, each writing a row or two)
/// wait here while FLUSHES flushes are under way, then go out together: a flush packs every
/// queued `apply`'s writes into shared batches, where a request each would cost the database
/// far more. An `apply` arriving when fewer flushes are under way starts one at once, so
/// nothing waits for a timer.
#[derive(Default)]
pub(super) struct Queue {
    jobs: Vec<Job>,
    flushing: usize,
}

/// A flush under way, one of [`Queue::flushing`]: a flush that ends early (its task panicked
/// or was dropped with its runtime) frees its slot when this drops, so that later applies
/// still start flushes; one that ends normally frees it itself.
struct Slot<'a>(&'a Mutex<Queue>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        queue.flushing -= 1;
    }
}

/// One queued `apply`: its writes, their write time, and whom to tell how they went.
struct Job {
    writes: Vec<RowWrite>,
    ts: i64,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl CqlStore {
    pub(super) async fn apply_writes(
        &self,
        writes: Vec<RowWrite>,
        ts: i64,
    ) -> Result<(), StoreError> {
        // All writes share one write time, so two writes to one row would tie and CQL would
        // keep the delete or the larger value; the last one of the apply wins, as in order.
        let last: HashMap<(&str, &str), usize> = writes
            .iter()
            .enumerate()
            .map(|(i, w)| ((w.table.as_str(), w.key.as_str()), i))
            .collect();
        let kept: Vec<bool> = writes
            .iter()
            .enumerate()
            .map(|(i, w)| last[&(w.table.as_str(), w.key.as_str())] == i)
            .collect();
        let writes: Vec<RowWrite> = writes
            .into_iter()
            .zip(kept)
            .filter_map(|(w, kept)| kept.then_some(w))
            .collect();
        // A write to a timeline marks its bucket in the index, after the rows, never with
        // them (see `scan_timeline`). A key that places nowhere fails the apply, unwritten.
        let mut touched = BTreeSet::new();
        for w in &writes {
            if let (Place::Timeline { tbl, bucket, .. }, Some(_)) =
                (layout::place(&w.table, &w.key)?.place, &w.value)
            {
                touched.insert((tbl.to_string(), bucket));
            }
        }
        let (done, written) = oneshot::channel();
        let start = {
            let mut queue = self.inner.queue.lock().expect("queue lock");
            queue.jobs.push(Job { writes, ts, done });
            let start = queue.flushing < FLUSHES;
            queue.flushing += usize::from(start);
            start
        };
        if start {
            // A task of its own: a caller that gives up does not stop the others' writes.
            let store = self.clone();
            self.inner
                .runtime
                .spawn(async move { store.flush_queued().await });
        }
        written
            .await
            .map_err(|_| StoreError::Backend("a flush of writes stopped".into()))??;
        let st = &self.inner.st;
        let touches: Vec<_> = touched
            .iter()
            .map(|(tbl, bucket)| async move {
                let _timing = self.count("write", "bucket_index");
                self.exec(&st.index_touch, (tbl.as_str(), *bucket)).await
            })
            .collect();
        stream::iter(touches)
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// Flushes what is queued, again and again, until nothing is.
    async fn flush_queued(&self) {
        let slot = Slot(&self.inner.queue);
        loop {
            let jobs = {
                let mut queue = self.inner.queue.lock().expect("queue lock");
                if queue.jobs.is_empty() {
                    // Under the lock that found the queue empty: an apply queued after this
                    // finds the slot free and starts a flush.
                    queue.flushing -= 1;
                    std::mem::forget(slot);
                    return;
                }
                std::mem::take(&mut queue.jobs)
            };
            self.flush(jobs).await;
        }
    }

    /// Writes the queued `apply`s in shared requests and tells each how its writes went: it
    /// fails if any request carrying one of them failed.
    async fn flush(&self, jobs: Vec<Job>) {
        let mut outcomes: Vec<Result<(), String>> = vec![Ok(()); jobs.len()];
        let mut all = Vec::new();
        for (job, j) in jobs.iter().enumerate() {
            // Placed already when queued: this places them alike.
            let placed: Result<Vec<_>, _> = j
                .writes
                .iter()
                .map(|w| layout::place(&w.table, &w.key).map(|p| (w, p)))
                .collect();
            let placed = match placed {
                Ok(placed) => placed,
                Err(e) => {
                    outcomes[job] = Err(e.to_string());
                    continue;
                }
            };
            for (w, placement) in placed {
                if let Some(listed) = placement.listed {
                    let op = Op::List(listed, w.value.is_some());
                    all.push(Write { job, ts: j.ts, op });
                }
                let op = Op::Row(placement.place, w.value.as_deref());
                all.push(Write { job, ts: j.ts, op });
            }
        }
        let requests: Vec<_> = group_writes(all)
            .into_iter()
            .map(|group| async move {
                let of: BTreeSet<usize> = group.iter().map(|w| w.job).collect();
                (of, self.write_together(group).await)
            })
            .collect();
        let results: Vec<_> = stream::iter(requests)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (of, result) in results {
            if let Err(e) = result {
                for job in of {
                    outcomes[job] = Err(e.to_string());
                }
            }
        }
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            // A caller that stopped waiting no longer hears.
            let _ = job.done.send(outcome.map_err(StoreError::Backend));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_that_ends_early_frees_its_slot() {
        let queue = Mutex::new(Queue {
            jobs: Vec::new(),
            flushing: 2,
        });
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _slot = Slot(&queue);
            panic!("a flush ends early");
        }));
        assert!(ended.is_err());
        assert_eq!(queue.lock().unwrap().flushing, 1);
    }
}
