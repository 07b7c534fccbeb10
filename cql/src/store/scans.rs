//! Scans by prefix: a product's rows, a tenant's product list, a timeline's buckets in order.

use super::statements::{cql_limit, failed};
use super::{CqlStore, IN_FLIGHT};
use crate::layout::{self, Lower, ScanPlan, PRODUCT_BUCKETS};
use futures::{stream, StreamExt, TryStreamExt};
use porch_processors::store::StoreError;

impl CqlStore {
    pub(super) async fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let _timing = self.count("scan", table);
        let st = &self.inner.st;
        match layout::scan_plan(table, prefix, start_after)? {
            ScanPlan::Empty => Ok(Vec::new()),
            ScanPlan::Product {
                tenant,
                product,
                tbl,
                from,
                upto,
            } => {
                let ask = cql_limit(from.ask(limit));
                let from_rest = from.value.as_str();
                let rows: Vec<(String, Vec<u8>)> = match upto.as_deref() {
                    None => {
                        self.rows(&st.product_scan, (tenant, product, tbl, from_rest, ask))
                            .await?
                    }
                    Some(upto) => {
                        self.rows(
                            &st.product_scan_upto,
                            (tenant, product, tbl, from_rest, upto, ask),
                        )
                        .await?
                    }
                };
                Ok(rows
                    .into_iter()
                    .filter(|(rest, _)| from.admits(rest))
                    .take(limit)
                    .map(|(rest, v)| (format!("{tenant}/{product}/{rest}"), v))
                    .collect())
            }
            ScanPlan::List {
                tbl,
                tenant,
                from,
                upto,
            } => {
                self.scan_products(tbl, tenant, from, upto.as_deref(), limit)
                    .await
            }
            ScanPlan::Timeline {
                tbl,
                from,
                upto,
                first_bucket,
                only,
            } => {
                self.scan_timeline(tbl, &from, upto.as_deref(), first_bucket, only, limit)
                    .await
            }
        }
    }

    /// A page of a tenant's products: the least ids of all buckets merged, then their rows.
    /// Each bucket can contribute at most `limit` ids, so one concurrent read of `limit` ids
    /// per bucket is enough for a page.
    async fn scan_products(
        &self,
        tbl: &str,
        tenant: &str,
        mut from: Lower,
        upto: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let st = &self.inner.st;
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let want = limit - out.len();
            let ask = cql_limit(from.ask(want));
            let after = from.value.as_str();
            let per_bucket: Vec<Vec<(String,)>> = stream::iter(0..PRODUCT_BUCKETS)
                .map(|bucket| async move {
                    match upto {
                        None => self.rows(&st.list_scan, (tenant, bucket, after, ask)).await,
                        Some(upto) => {
                            self.rows(&st.list_scan_upto, (tenant, bucket, after, upto, ask))
                                .await
                        }
                    }
                })
                .buffer_unordered(PRODUCT_BUCKETS as usize)
                .try_collect()
                .await?;
            let mut ids: Vec<String> = per_bucket
                .into_iter()
                .flatten()
                .map(|(id,)| id)
                .filter(|id| from.admits(id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.truncate(want);
            // Fewer than wanted means no bucket was cut short: the list is exhausted.
            let exhausted = ids.len() < want;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            // Futures built first: a stream mapping by a closure over borrowed items is not
            // general enough for the boxed, `Send` futures of the trait.
            let reads: Vec<_> = ids
                .iter()
                .map(|id| async move {
                    let key = format!("{tenant}/{id}");
                    self.blob(&st.key_get, (tbl, key.as_str())).await
                })
                .collect();
            let rows: Vec<Option<Vec<u8>>> = stream::iter(reads)
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
            // A listed id without its row is a write half applied (the batch will be applied
            // again); leave it out and read on to fill the page.
            out.extend(
                ids.into_iter()
                    .zip(rows)
                    .filter_map(|(id, v)| Some((format!("{tenant}/{id}"), v?))),
            );
            if exhausted {
                break;
            }
            from = Lower {
                value: last,
                exclusive: true,
            };
        }
        Ok(out)
    }

    /// Keys of a timeline in order: the buckets the index lists, from the earliest (or the one
    /// of `from`), each read in key order until the page is full. Bucket order is key order
    /// because the first key part is a zero-padded number.
    ///
    /// A bucket read whole and found empty is dropped from the index, with the write time of
    /// its index row: a writer touches the index only after its row is written and with a
    /// later clock, so its touch outlives the drop (a tie goes to the drop, but the touch
    /// follows the empty read that led to it).
    async fn scan_timeline(
        &self,
        tbl: &str,
        from: &Lower,
        upto: Option<&str>,
        first_bucket: Option<i64>,
        only: bool,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if only {
            if let Some(bucket) = first_bucket {
                self.scan_bucket(tbl, bucket, from, upto, limit, &mut out)
                    .await?;
            }
            return Ok(out);
        }
        let st = &self.inner.st;
        let mut buckets = self
            .inner
            .session
            .execute_iter(
                st.index_scan.clone(),
                (tbl, first_bucket.unwrap_or(i64::MIN)),
            )
            .await
            .map_err(|e| failed(&st.index_scan, e))?
            .rows_stream::<(i64, Option<i64>)>()
            .map_err(|e| failed(&st.index_scan, e))?;
        while out.len() < limit {
            let Some((bucket, written)) = buckets
                .try_next()
                .await
                .map_err(|e| failed(&st.index_scan, e))?
            else {
                break;
            };
            let before = out.len();
            self.scan_bucket(tbl, bucket, from, upto, limit - before, &mut out)
                .await?;
            let read_whole = upto.is_none()
                && (from.value.is_empty() || first_bucket.is_some_and(|b| bucket > b));
            if read_whole && out.len() == before {
                if let Some(written) = written {
                    // Only tidiness is lost if this fails; the next scan tries again.
                    if let Err(e) = self.exec(&st.index_drop, (written, tbl, bucket)).await {
                        tracing::warn!(table = tbl, bucket, error = %e, "dropping an empty bucket");
                    }
                }
            }
        }
        Ok(out)
    }

    async fn scan_bucket(
        &self,
        tbl: &str,
        bucket: i64,
        from: &Lower,
        upto: Option<&str>,
        want: usize,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let st = &self.inner.st;
        let ask = cql_limit(from.ask(want));
        let after = from.value.as_str();
        let rows: Vec<(String, Vec<u8>)> = match upto {
            None => self.rows(&st.time_scan, (tbl, bucket, after, ask)).await?,
            Some(upto) => {
                self.rows(&st.time_scan_upto, (tbl, bucket, after, upto, ask))
                    .await?
            }
        };
        out.extend(rows.into_iter().filter(|(k, _)| from.admits(k)).take(want));
        Ok(())
    }
}
