//! A flush's writes as requests: grouped by partition into bounded batches, each write bound
//! to its statement.

use super::CqlStore;
use crate::layout::{Listed, Place};
use porch_processors::store::StoreError;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::serialize::SerializationError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use std::collections::HashMap;

/// Bytes in one batch of writes to one partition, at most (a larger write goes alone): well
/// under the mutation size a database takes (half a commit log segment in Cassandra).
const BATCH_BYTES: usize = 256 * 1024;
/// Writes in one batch to one partition, at most.
const BATCH_STATEMENTS: usize = 500;

/// Bytes in one batch that spans partitions, at most: Cassandra refuses such a batch over
/// `batch_size_fail_threshold` (50 KiB by default), ScyllaDB over 1 MiB.
const SHARED_BYTES: usize = 32 * 1024;
/// Writes in one batch that spans partitions, at most.
const SHARED_STATEMENTS: usize = 100;

/// Bytes a write costs beyond its key and value, about (column names, timestamps).
const WRITE_OVERHEAD: usize = 32;

/// A write of a flush: which queued `apply` (job) it is of, its write time and what it writes.
pub(super) struct Write<'a> {
    pub(super) job: usize,
    pub(super) ts: i64,
    pub(super) op: Op<'a>,
}

/// One CQL write of an `apply`.
pub(super) enum Op<'a> {
    Row(Place<'a>, Option<&'a [u8]>),
    List(Listed<'a>, bool),
}

impl<'a> Op<'a> {
    /// The logical table it writes (`product_list` for a product's list entry).
    fn table(&self) -> &'a str {
        match self {
            Op::Row(
                Place::Key { tbl, .. } | Place::Product { tbl, .. } | Place::Timeline { tbl, .. },
                _,
            ) => tbl,
            Op::List(..) => "product_list",
        }
    }

    /// Bytes of the value it writes.
    fn value_bytes(&self) -> usize {
        match self {
            Op::Row(_, Some(v)) => v.len(),
            _ => 0,
        }
    }

    /// The partition the write lands in: its writes go together (one mutation for the
    /// database, atomic and isolated within the partition).
    fn partition(&self) -> Partition<'a> {
        match self {
            Op::Row(Place::Key { tbl, key }, _) => Partition::Key(tbl, key),
            Op::Row(
                Place::Product {
                    tenant, product, ..
                },
                _,
            ) => Partition::Product(tenant, product),
            Op::Row(Place::Timeline { tbl, bucket, .. }, _) => Partition::Timeline(tbl, *bucket),
            Op::List(l, _) => Partition::List(l.tenant, l.bucket),
        }
    }

    /// Bytes the database counts for the write, about: its key, clustering and value.
    fn size(&self) -> usize {
        let keys = match self {
            Op::Row(Place::Key { tbl, key }, _) => tbl.len() + key.len(),
            Op::Row(
                Place::Product {
                    tenant,
                    product,
                    tbl,
                    rest,
                },
                _,
            ) => tenant.len() + product.len() + tbl.len() + rest.len(),
            Op::Row(Place::Timeline { tbl, key, .. }, _) => tbl.len() + 8 + key.len(),
            Op::List(l, _) => l.tenant.len() + 4 + l.product.len(),
        };
        keys + self.value_bytes() + WRITE_OVERHEAD
    }
}

/// A partition of one of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Partition<'a> {
    Key(&'a str, &'a str),
    Product(&'a str, &'a str),
    Timeline(&'a str, i64),
    List(&'a str, i32),
}

/// The bound values of one write, whichever statement it binds.
struct Bound<'a>(Box<dyn SerializeRow + Send + Sync + 'a>);

impl<'a> Bound<'a> {
    fn new(values: impl SerializeRow + Send + Sync + 'a) -> Self {
        Bound(Box::new(values))
    }
}

impl SerializeRow for Bound<'_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        self.0.serialize(ctx, writer)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The writes of a flush as requests. The writes of one partition by one `apply` stay
/// together, up to BATCH_BYTES and BATCH_STATEMENTS a request (a larger partition is split);
/// small partitions share a request, up to SHARED_BYTES and SHARED_STATEMENTS: one request for
/// many rows costs the database far less than one request each, and a batch spanning
/// partitions is within what Cassandra and ScyllaDB take by default (Cassandra refuses one
/// over 50 KiB).
pub(super) fn group_writes(writes: Vec<Write<'_>>) -> Vec<Vec<Write<'_>>> {
    // Partitions of each apply in order of first write; each partition's writes in order.
    let mut partitions: Vec<Vec<Write<'_>>> = Vec::new();
    let mut index: HashMap<(usize, Partition<'_>), usize> = HashMap::with_capacity(writes.len());
    for w in writes {
        let i = *index.entry((w.job, w.op.partition())).or_insert_with(|| {
            partitions.push(Vec::new());
            partitions.len() - 1
        });
        partitions[i].push(w);
    }
    let mut requests = Vec::new();
    let mut shared = Filling::new(SHARED_BYTES, SHARED_STATEMENTS);
    for writes in partitions {
        let bytes: usize = writes.iter().map(|w| w.op.size()).sum();
        if bytes <= SHARED_BYTES && writes.len() <= SHARED_STATEMENTS {
            shared.add(writes, bytes, &mut requests);
            continue;
        }
        // A large partition: batches of its own.
        let mut own = Filling::new(BATCH_BYTES, BATCH_STATEMENTS);
        for w in writes {
            let size = w.op.size();
            own.add(vec![w], size, &mut requests);
        }
        own.finish(&mut requests);
    }
    shared.finish(&mut requests);
    requests
}

/// A request being filled with writes, up to a number of bytes and of writes.
struct Filling<'a> {
    writes: Vec<Write<'a>>,
    bytes: usize,
    max_bytes: usize,
    max_writes: usize,
}

impl<'a> Filling<'a> {
    fn new(max_bytes: usize, max_writes: usize) -> Self {
        Self {
            writes: Vec::new(),
            bytes: 0,
            max_bytes,
            max_writes,
        }
    }

    /// Adds writes that go together, first ending the request when they would not fit.
    fn add(&mut self, writes: Vec<Write<'a>>, bytes: usize, requests: &mut Vec<Vec<Write<'a>>>) {
        if self.bytes + bytes > self.max_bytes || self.writes.len() + writes.len() > self.max_writes
        {
            self.finish(requests);
        }
        self.bytes += bytes;
        self.writes.extend(writes);
    }

    fn finish(&mut self, requests: &mut Vec<Vec<Write<'a>>>) {
        if !self.writes.is_empty() {
            requests.push(std::mem::take(&mut self.writes));
        }
        self.bytes = 0;
    }
}

impl CqlStore {
    /// Writes in one request: a single statement as itself, more as an unlogged batch (atomic
    /// and isolated within each of its partitions, with no batch log).
    pub(super) async fn write_together(&self, writes: Vec<Write<'_>>) -> Result<(), StoreError> {
        let _timing = writes.first().map(|first| {
            let kind = if writes.len() == 1 { "write" } else { "batch" };
            let table = first.op.table();
            let one_table = writes.iter().all(|w| w.op.table() == table);
            self.count(kind, if one_table { table } else { "mixed" })
        });
        for w in &writes {
            self.inner
                .rows_written
                .with_label_values(&[w.op.table()])
                .inc();
        }
        let mut bound: Vec<(&PreparedStatement, Bound<'_>)> =
            writes.into_iter().map(|w| self.bind(w.op, w.ts)).collect();
        if bound.len() == 1 {
            let (st, values) = bound.pop().expect("one write");
            return self.exec(st, values).await;
        }
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_is_idempotent(true);
        let mut values = Vec::with_capacity(bound.len());
        for (st, v) in bound {
            batch.append_statement(st.clone());
            values.push(v);
        }
        self.inner
            .session
            .batch(&batch, values)
            .await
            .map_err(|e| StoreError::Backend(format!("a batch of writes: {e}")))?;
        Ok(())
    }

    /// The statement of one write and its values.
    fn bind<'a>(&'a self, op: Op<'a>, ts: i64) -> (&'a PreparedStatement, Bound<'a>) {
        let st = &self.inner.st;
        match op {
            Op::Row(Place::Key { tbl, key }, Some(v)) => {
                (&st.key_put, Bound::new((tbl, key, v, ts)))
            }
            Op::Row(Place::Key { tbl, key }, None) => (&st.key_del, Bound::new((ts, tbl, key))),
            Op::Row(
                Place::Product {
                    tenant,
                    product,
                    tbl,
                    rest,
                },
                Some(v),
            ) => (
                &st.product_put,
                Bound::new((tenant, product, tbl, rest, v, ts)),
            ),
            Op::Row(
                Place::Product {
                    tenant,
                    product,
                    tbl,
                    rest,
                },
                None,
            ) => (
                &st.product_del,
                Bound::new((ts, tenant, product, tbl, rest)),
            ),
            Op::Row(Place::Timeline { tbl, bucket, key }, Some(v)) => {
                (&st.time_put, Bound::new((tbl, bucket, key, v, ts)))
            }
            Op::Row(Place::Timeline { tbl, bucket, key }, None) => {
                (&st.time_del, Bound::new((ts, tbl, bucket, key)))
            }
            Op::List(l, true) => (
                &st.list_put,
                Bound::new((l.tenant, l.bucket, l.product, ts)),
            ),
            Op::List(l, false) => (
                &st.list_del,
                Bound::new((ts, l.tenant, l.bucket, l.product)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(product: &'a str, rest: &'a str, value: &'a [u8]) -> Op<'a> {
        Op::Row(
            Place::Product {
                tenant: "acme",
                product,
                tbl: "offer",
                rest,
            },
            Some(value),
        )
    }

    fn shape(groups: &[Vec<Write<'_>>]) -> Vec<usize> {
        groups.iter().map(Vec::len).collect()
    }

    /// The writes of one apply (job 0).
    fn one(ops: Vec<Op<'_>>) -> Vec<Write<'_>> {
        ops.into_iter()
            .map(|op| Write { job: 0, ts: 1, op })
            .collect()
    }

    fn key<'a>(k: &'a str) -> Op<'a> {
        Op::Row(
            Place::Key {
                tbl: "command",
                key: k,
            },
            Some(b"s"),
        )
    }

    #[test]
    fn small_partitions_share_a_request_and_a_partition_stays_together() {
        let ops = vec![
            row("p1", "o1", b"a"),
            key("acme/c1"),
            row("p2", "o1", b"b"),
            row("p1", "o2", b"c"),
            key("acme/c2"),
            row("p1", "o3", b"d"),
        ];
        let groups = group_writes(one(ops));
        assert_eq!(shape(&groups), [6]);
        // p1's writes follow one another, in order.
        let p1: Vec<usize> = groups[0]
            .iter()
            .enumerate()
            .filter(|(_, w)| w.op.partition() == Partition::Product("acme", "p1"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(p1, [0, 1, 2]);
    }

    #[test]
    fn each_apply_keeps_its_partition_together_in_a_shared_request() {
        let w = |job, rest| Write {
            job,
            ts: job as i64,
            op: row("p1", rest, b"v"),
        };
        let groups = group_writes(vec![w(0, "o1"), w(1, "o1"), w(0, "o2"), w(2, "o3")]);
        assert_eq!(shape(&groups), [4]);
        let order: Vec<(usize, i64)> = groups[0].iter().map(|w| (w.job, w.ts)).collect();
        assert_eq!(order, [(0, 0), (0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn a_shared_request_is_bounded_by_bytes_and_count() {
        let third = vec![0u8; SHARED_BYTES / 3];
        let ops = vec![
            row("p1", "o1", &third),
            row("p2", "o1", &third),
            row("p3", "o1", &third),
        ];
        assert_eq!(shape(&group_writes(one(ops))), [2, 1]);
        let keys: Vec<String> = (0..SHARED_STATEMENTS + 1)
            .map(|i| format!("acme/c{i}"))
            .collect();
        let ops = keys.iter().map(|k| key(k)).collect();
        assert_eq!(shape(&group_writes(one(ops))), [SHARED_STATEMENTS, 1]);
    }

    #[test]
    fn a_large_partition_gets_batches_of_its_own() {
        let big = vec![0u8; BATCH_BYTES / 2];
        let ops = vec![
            row("p0", "o1", b"x"),
            row("p1", "o1", &big),
            row("p1", "o2", &big),
            row("p1", "o3", b"x"),
            row("p2", "o1", b"y"),
        ];
        assert_eq!(shape(&group_writes(one(ops))), [1, 2, 2]);
        let rests: Vec<String> = (0..BATCH_STATEMENTS + 1).map(|i| format!("o{i}")).collect();
        let ops = rests.iter().map(|r| row("p1", r, b"v")).collect();
        assert_eq!(shape(&group_writes(one(ops))), [BATCH_STATEMENTS, 1]);
    }
}
