//! Claims and swaps: a row written only if no row holds its key yet, or only if it still holds
//! what the writer read (lightweight transactions).

use super::statements::failed;
use super::CqlStore;
use crate::layout::{self, Place};
use porch_processors::store::{StoreError, Swapped};
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;

impl CqlStore {
    pub(super) async fn claim_row(
        &self,
        table: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let placement = layout::place(table, key)?;
        let (Place::Key { tbl, key }, None) = (placement.place, placement.listed) else {
            return Err(StoreError::Backend(format!(
                "table {table} is not a point-lookup table and cannot be claimed"
            )));
        };
        let _timing = self.count("claim", table);
        let st = &self.inner.st.key_claim;
        let (applied, held) = self.lightweight(st, (tbl, key, value.as_slice())).await?;
        if applied {
            return Ok(None);
        }
        // The row that holds the key comes with the answer; should it be missing, read it.
        match held {
            Some(existing) => Ok(Some(existing)),
            None => Ok(Some(self.get(table, key).await?.unwrap_or_default())),
        }
    }

    pub(super) async fn swap_row(
        &self,
        table: &str,
        key: &str,
        expected: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<Swapped, StoreError> {
        let placement = layout::place(table, key)?;
        let (Place::Key { tbl, key }, None) = (placement.place, placement.listed) else {
            return Err(StoreError::Backend(format!(
                "table {table} is not a point-lookup table and cannot be swapped"
            )));
        };
        let _timing = self.count("swap", table);
        let st = &self.inner.st.key_swap;
        let (applied, held) = self
            .lightweight(st, (value.as_slice(), tbl, key, expected.as_slice()))
            .await?;
        if applied {
            return Ok(Ok(()));
        }
        // The value that failed the condition comes with the answer; without it (no row, or an
        // engine that leaves it out), read it.
        match held {
            Some(existing) => Ok(Err(Some(existing))),
            None => Ok(Err(self.get(table, key).await?)),
        }
    }

    /// Runs a lightweight transaction: whether it applied, and the row's `v` when the answer
    /// carries it (the value that failed the condition).
    async fn lightweight(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<(bool, Option<Vec<u8>>), StoreError> {
        let result = self
            .inner
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| failed(st, e))?
            .into_rows_result()
            .map_err(|e| failed(st, e))?;
        let specs = result.column_specs();
        let column = |name: &str| specs.get_by_name(name).map(|(i, _)| i);
        let row: Row = result.first_row().map_err(|e| failed(st, e))?;
        let cell = |i: Option<usize>| i.and_then(|i| row.columns.get(i).cloned().flatten());
        let applied = cell(column("[applied]"))
            .and_then(|c| c.as_boolean())
            .ok_or_else(|| failed(st, "the answer has no [applied] column"))?;
        Ok((applied, cell(column("v")).and_then(|c| c.into_blob())))
    }
}
