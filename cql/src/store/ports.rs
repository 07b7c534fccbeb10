//! `CqlStore` as the processors' ports: the blocking `Store` and the async `ProjectionStore`
//! (checkpoints among them).

use super::CqlStore;
use porch_processors::store::{BoxFuture, ProjectionStore, RowWrite, Store, StoreError, Swapped};

fn task_number(task: u32) -> Result<i32, StoreError> {
    i32::try_from(task).map_err(|_| StoreError::Backend(format!("task number {task} is too large")))
}

/// The blocking read API. Each blocking call blocks the calling thread on the runtime given at
/// connect, so it must run on a blocking thread (`spawn_blocking`, a plain thread): on an
/// async worker thread it would panic (tokio refuses to block there). `get_raw_async` does not
/// block.
impl Store for CqlStore {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.runtime.block_on(self.get(table, key))
    }

    fn get_raw_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> Option<BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>> {
        Some(Box::pin(self.get(table, key)))
    }

    fn scan_raw(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner
            .runtime
            .block_on(self.scan(table, prefix, start_after, limit))
    }
}

impl ProjectionStore for CqlStore {
    fn get_async<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.get(table, key))
    }

    fn get_many<'a>(
        &'a self,
        table: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(self.get_rows(table, keys))
    }

    fn scan_async<'a>(
        &'a self,
        table: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, Vec<u8>)>, StoreError>> {
        Box::pin(self.scan(table, prefix, start_after, limit))
    }

    fn apply(
        &self,
        writes: Vec<RowWrite>,
        timestamp: i64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.apply_writes(writes, timestamp))
    }

    fn load_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let task = task_number(task)?;
            let _timing = self.count("read", "checkpoint");
            self.blob(&self.inner.st.checkpoint_get, (group, task))
                .await
        })
    }

    fn save_checkpoint<'a>(
        &'a self,
        group: &'a str,
        task: u32,
        checkpoint: Vec<u8>,
        timestamp: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let task = task_number(task)?;
            let _timing = self.count("write", "checkpoint");
            self.exec(
                &self.inner.st.checkpoint_put,
                (group, task, checkpoint.as_slice(), timestamp),
            )
            .await
        })
    }

    fn claim<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.claim_row(table, key, value))
    }

    fn compare_and_set<'a>(
        &'a self,
        table: &'a str,
        key: &'a str,
        expected: Vec<u8>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<Swapped, StoreError>> {
        Box::pin(self.swap_row(table, key, expected, value))
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.ready_now())
    }
}
