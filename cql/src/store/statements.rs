//! Every statement, prepared once at connect, and the ways a request is sent with one.

use super::CqlStore;
use porch_processors::store::StoreError;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use std::fmt;
use std::time::Duration;

/// How long `ready` waits for an answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Rows of the bucket index fetched per page while looking for the earliest bucket.
const INDEX_PAGE: i32 = 64;

/// Every statement, prepared once at connect.
pub(super) struct Statements {
    pub(super) key_get: PreparedStatement,
    pub(super) key_put: PreparedStatement,
    pub(super) key_del: PreparedStatement,
    pub(super) key_claim: PreparedStatement,
    pub(super) key_swap: PreparedStatement,
    pub(super) product_get: PreparedStatement,
    pub(super) product_get_many: PreparedStatement,
    pub(super) key_get_many: PreparedStatement,
    pub(super) product_put: PreparedStatement,
    pub(super) product_del: PreparedStatement,
    pub(super) product_scan: PreparedStatement,
    pub(super) product_scan_upto: PreparedStatement,
    pub(super) list_put: PreparedStatement,
    pub(super) list_del: PreparedStatement,
    pub(super) list_scan: PreparedStatement,
    pub(super) list_scan_upto: PreparedStatement,
    pub(super) time_get: PreparedStatement,
    pub(super) time_put: PreparedStatement,
    pub(super) time_del: PreparedStatement,
    pub(super) time_scan: PreparedStatement,
    pub(super) time_scan_upto: PreparedStatement,
    pub(super) index_touch: PreparedStatement,
    pub(super) index_scan: PreparedStatement,
    pub(super) index_drop: PreparedStatement,
    pub(super) checkpoint_get: PreparedStatement,
    pub(super) checkpoint_put: PreparedStatement,
    pub(super) ready: PreparedStatement,
}

impl Statements {
    pub(super) async fn prepare(session: &Session, ks: &str) -> Result<Self, StoreError> {
        let prepare = |cql: String| async move {
            let mut st = session.prepare(cql.as_str()).await.map_err(|e| {
                StoreError::Backend(format!(
                    "preparing {cql:?} (has the keyspace been migrated?): {e}"
                ))
            })?;
            // Reads, timestamped writes and upserts may be retried or sent twice safely; the
            // claim and the swap (lightweight transactions) may not.
            st.set_is_idempotent(!cql.contains(" IF "));
            Ok::<_, StoreError>(st)
        };
        let mut index_scan = prepare(format!(
            "SELECT bucket, WRITETIME(live) FROM {ks}.bucket_index WHERE tbl = ? AND bucket >= ?"
        ))
        .await?;
        index_scan.set_page_size(INDEX_PAGE);
        let mut ready = prepare("SELECT release_version FROM system.local".into()).await?;
        ready.set_request_timeout(Some(READY_TIMEOUT));
        Ok(Statements {
            key_get: prepare(format!(
                "SELECT v FROM {ks}.rows_by_key WHERE tbl = ? AND key = ?"
            ))
            .await?,
            key_put: prepare(format!(
                "INSERT INTO {ks}.rows_by_key (tbl, key, v) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            key_del: prepare(format!(
                "DELETE FROM {ks}.rows_by_key USING TIMESTAMP ? WHERE tbl = ? AND key = ?"
            ))
            .await?,
            key_claim: prepare(format!(
                "INSERT INTO {ks}.rows_by_key (tbl, key, v) VALUES (?, ?, ?) IF NOT EXISTS"
            ))
            .await?,
            key_swap: prepare(format!(
                "UPDATE {ks}.rows_by_key SET v = ? WHERE tbl = ? AND key = ? IF v = ?"
            ))
            .await?,
            product_get: prepare(format!(
                "SELECT v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest = ?"
            ))
            .await?,
            product_get_many: prepare(format!(
                "SELECT product, rest, v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product IN ? AND tbl = ? AND rest IN ?"
            ))
            .await?,
            key_get_many: prepare(format!(
                "SELECT key, v FROM {ks}.rows_by_key WHERE tbl = ? AND key IN ?"
            ))
            .await?,
            product_put: prepare(format!(
                "INSERT INTO {ks}.rows_by_product (tenant, product, tbl, rest, v) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            product_del: prepare(format!(
                "DELETE FROM {ks}.rows_by_product USING TIMESTAMP ? \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest = ?"
            ))
            .await?,
            product_scan: prepare(format!(
                "SELECT rest, v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest >= ? LIMIT ?"
            ))
            .await?,
            product_scan_upto: prepare(format!(
                "SELECT rest, v FROM {ks}.rows_by_product \
                 WHERE tenant = ? AND product = ? AND tbl = ? AND rest >= ? AND rest < ? LIMIT ?"
            ))
            .await?,
            list_put: prepare(format!(
                "INSERT INTO {ks}.product_list (tenant, bucket, product) VALUES (?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            list_del: prepare(format!(
                "DELETE FROM {ks}.product_list USING TIMESTAMP ? \
                 WHERE tenant = ? AND bucket = ? AND product = ?"
            ))
            .await?,
            list_scan: prepare(format!(
                "SELECT product FROM {ks}.product_list \
                 WHERE tenant = ? AND bucket = ? AND product >= ? LIMIT ?"
            ))
            .await?,
            list_scan_upto: prepare(format!(
                "SELECT product FROM {ks}.product_list \
                 WHERE tenant = ? AND bucket = ? AND product >= ? AND product < ? LIMIT ?"
            ))
            .await?,
            time_get: prepare(format!(
                "SELECT v FROM {ks}.rows_by_bucket WHERE tbl = ? AND bucket = ? AND key = ?"
            ))
            .await?,
            time_put: prepare(format!(
                "INSERT INTO {ks}.rows_by_bucket (tbl, bucket, key, v) VALUES (?, ?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            time_del: prepare(format!(
                "DELETE FROM {ks}.rows_by_bucket USING TIMESTAMP ? \
                 WHERE tbl = ? AND bucket = ? AND key = ?"
            ))
            .await?,
            time_scan: prepare(format!(
                "SELECT key, v FROM {ks}.rows_by_bucket \
                 WHERE tbl = ? AND bucket = ? AND key >= ? LIMIT ?"
            ))
            .await?,
            time_scan_upto: prepare(format!(
                "SELECT key, v FROM {ks}.rows_by_bucket \
                 WHERE tbl = ? AND bucket = ? AND key >= ? AND key < ? LIMIT ?"
            ))
            .await?,
            // No USING TIMESTAMP: the client's clock, so that a touch always follows the
            // reading that made a cleaner drop the bucket (see `scan_timeline`).
            index_touch: prepare(format!(
                "UPDATE {ks}.bucket_index SET live = true WHERE tbl = ? AND bucket = ?"
            ))
            .await?,
            index_scan,
            index_drop: prepare(format!(
                "DELETE FROM {ks}.bucket_index USING TIMESTAMP ? WHERE tbl = ? AND bucket = ?"
            ))
            .await?,
            checkpoint_get: prepare(format!(
                "SELECT body FROM {ks}.checkpoint WHERE grp = ? AND task = ?"
            ))
            .await?,
            checkpoint_put: prepare(format!(
                "INSERT INTO {ks}.checkpoint (grp, task, body) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            ready,
        })
    }
}

pub(super) fn failed(st: &PreparedStatement, e: impl fmt::Display) -> StoreError {
    StoreError::Backend(format!("{}: {e}", st.get_statement()))
}

/// The rows of an answer; an error names `what` was asked.
pub(crate) fn rows_of<R>(answer: QueryResult, what: &str) -> Result<Vec<R>, StoreError>
where
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let fail = |e: &dyn fmt::Display| StoreError::Backend(format!("{what}: {e}"));
    answer
        .into_rows_result()
        .map_err(|e| fail(&e))?
        .rows::<R>()
        .map_err(|e| fail(&e))?
        .collect::<Result<Vec<R>, _>>()
        .map_err(|e| fail(&e))
}

pub(super) fn cql_limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl CqlStore {
    pub(super) async fn exec(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<(), StoreError> {
        self.inner
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| failed(st, e))?;
        Ok(())
    }

    pub(super) async fn rows<R>(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let answer = self
            .inner
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| failed(st, e))?;
        rows_of(answer, st.get_statement())
    }

    pub(super) async fn blob(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let rows: Vec<(Option<Vec<u8>>,)> = self.rows(st, values).await?;
        Ok(rows.into_iter().next().and_then(|(v,)| v))
    }

    pub(super) async fn ready_now(&self) -> bool {
        let st = &self.inner.st.ready;
        matches!(
            tokio::time::timeout(READY_TIMEOUT, self.inner.session.execute_unpaged(st, ())).await,
            Ok(Ok(_))
        )
    }
}
