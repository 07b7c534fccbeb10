//! Point reads: one row (`get`), and many rows of one table in few requests (`get_rows`).

use super::{CqlStore, IN_FLIGHT};
use crate::layout::{self, Place};
use futures::{stream, StreamExt};
use porch_processors::store::{BoxFuture, StoreError};
use std::collections::HashMap;

/// Rows of one partition in one read (`rest IN ?`), or partitions (`key IN ?`), at most:
/// ScyllaDB refuses an IN list of more than 100 by default
/// (`max_clustering_key_restrictions_per_query`, `max_partition_key_restrictions_per_query`).
const IN_ROWS: usize = 50;

/// One read of `rows_by_product`: a tenant, its products, their rows (`product IN ? AND rest
/// IN ?`, every product's rows among them).
type ProductRead<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>);

/// Packs what products ask for, (tenant, sorted rows, product), into reads that ask for at most
/// IN_ROWS cells (products × rows) each: products asking for the same rows share a read, and
/// products asking for a few different rows share one too (reading the cells none asked for,
/// which costs the database less than a request each). A product asking for more rows than
/// one read takes gets reads of its own.
fn pack_reads<'a>(mut asks: Vec<(&'a str, Vec<&'a str>, &'a str)>) -> Vec<ProductRead<'a>> {
    asks.sort_unstable();
    let mut reads = Vec::new();
    let mut open: Option<ProductRead<'a>> = None;
    for (tenant, rests, product) in asks {
        if rests.len() > IN_ROWS / 2 {
            for rests in rests.chunks(IN_ROWS) {
                reads.push((tenant, vec![product], rests.to_vec()));
            }
            continue;
        }
        if let Some((t, products, union)) = &mut open {
            if *t == tenant {
                let mut wider = union.clone();
                wider.extend(rests.iter().copied());
                wider.sort_unstable();
                wider.dedup();
                if (products.len() + 1) * wider.len() <= IN_ROWS {
                    products.push(product);
                    *union = wider;
                    continue;
                }
            }
        }
        reads.extend(open.replace((tenant, vec![product], rests)));
    }
    reads.extend(open);
    reads
}

/// A row an `IN` read found, at every position that asked for it (none asked: nowhere).
fn spread(asked: Option<&Vec<usize>>, value: Option<Vec<u8>>) -> Found {
    match (asked, value) {
        (Some(at), Some(v)) => at.iter().map(|i| (*i, Some(v.clone()))).collect(),
        _ => Vec::new(),
    }
}

/// Rows a request of `get_rows` found: (position asked, value); a position no request fills
/// stays none.
type Found = Vec<(usize, Option<Vec<u8>>)>;

impl CqlStore {
    pub(super) async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _timing = self.count("read", table);
        let st = &self.inner.st;
        match layout::place(table, key)?.place {
            Place::Key { tbl, key } => self.blob(&st.key_get, (tbl, key)).await,
            Place::Product {
                tenant,
                product,
                tbl,
                rest,
            } => {
                self.blob(&st.product_get, (tenant, product, tbl, rest))
                    .await
            }
            Place::Timeline { tbl, bucket, key } => {
                self.blob(&st.time_get, (tbl, bucket, key)).await
            }
        }
    }

    /// Rows of one table, all of them concurrently, in few requests: the rows of products of a
    /// tenant that ask for the same rows together (`product IN ? AND rest IN ?`), point rows
    /// together (`key IN ?`), every other row alone.
    pub(super) async fn get_rows(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut by_product: HashMap<(&str, &str), Vec<(usize, &str)>> = HashMap::new();
        // Where each point row asked goes in the answer (a key asked twice, twice).
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut alone = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match layout::place(table, k)?.place {
                Place::Product {
                    tenant,
                    product,
                    rest,
                    ..
                } => by_product
                    .entry((tenant, product))
                    .or_default()
                    .push((i, rest)),
                Place::Key { key, .. } => by_key.entry(key).or_default().push(i),
                Place::Timeline { .. } => alone.push(i),
            }
        }
        // Where each row asked goes in the answer (a key asked twice, twice), and the rows each
        // product asks for.
        let mut positions: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        let mut asks: Vec<(&str, Vec<&str>, &str)> = Vec::with_capacity(by_product.len());
        for ((tenant, product), rows) in by_product {
            let mut rests: Vec<&str> = Vec::with_capacity(rows.len());
            for (i, rest) in rows {
                positions
                    .entry((tenant, product, rest))
                    .or_default()
                    .push(i);
                rests.push(rest);
            }
            rests.sort_unstable();
            rests.dedup();
            asks.push((tenant, rests, product));
        }
        let positions = &positions;
        let mut requests: Vec<BoxFuture<'_, Result<Found, StoreError>>> = Vec::new();
        for (tenant, products, rests) in pack_reads(asks) {
            requests.push(Box::pin(async move {
                let _timing = self.count("read", table);
                let found = self
                    .rows::<(String, String, Option<Vec<u8>>)>(
                        &self.inner.st.product_get_many,
                        (tenant, &products, table, &rests),
                    )
                    .await?;
                // The read also finds cells nobody asked for: those have no position.
                Ok(found
                    .into_iter()
                    .flat_map(|(p, r, v)| {
                        spread(positions.get(&(tenant, p.as_str(), r.as_str())), v)
                    })
                    .collect())
            }));
        }
        let by_key = &by_key;
        let points: Vec<&str> = by_key.keys().copied().collect();
        for points in points.chunks(IN_ROWS).map(<[_]>::to_vec) {
            requests.push(Box::pin(async move {
                let _timing = self.count("read", table);
                let found = self
                    .rows::<(String, Option<Vec<u8>>)>(&self.inner.st.key_get_many, (table, points))
                    .await?;
                Ok(found
                    .into_iter()
                    .flat_map(|(k, v)| spread(by_key.get(k.as_str()), v))
                    .collect())
            }));
        }
        for i in alone {
            requests.push(Box::pin(async move {
                Ok(vec![(i, self.get(table, &keys[i]).await?)])
            }));
        }
        let mut out = vec![None; keys.len()];
        let mut answers = stream::iter(requests).buffer_unordered(IN_FLIGHT);
        while let Some(answer) = answers.next().await {
            for (i, v) in answer? {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_shape(reads: &[ProductRead<'_>]) -> Vec<(usize, usize)> {
        reads.iter().map(|(_, p, r)| (p.len(), r.len())).collect()
    }

    #[test]
    fn product_reads_are_packed_up_to_the_cells_one_read_asks() {
        // The same two rows of 30 products: 25 products a read.
        let two = vec!["o1", "o2"];
        let names: Vec<String> = (0..30).map(|i| format!("p{i:02}")).collect();
        let asks = names
            .iter()
            .map(|p| ("acme", two.clone(), p.as_str()))
            .collect();
        assert_eq!(reads_shape(&pack_reads(asks)), [(25, 2), (5, 2)]);
        // A different row each: 7 products and their 7 rows (49 cells) a read.
        let rows: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
        let asks = (0..10)
            .map(|i| ("acme", vec![rows[i].as_str()], names[i].as_str()))
            .collect();
        let reads = pack_reads(asks);
        assert_eq!(reads_shape(&reads), [(7, 7), (3, 3)]);
        // Every product's rows are among its read's rows.
        for (_, products, rests) in &reads {
            for p in products {
                let i = names.iter().position(|n| n == p).unwrap();
                assert!(rests.contains(&rows[i].as_str()));
            }
        }
        // Tenants never share a read; a product asking for many rows gets reads of its own.
        let many: Vec<String> = (0..60).map(|i| format!("r{i:02}")).collect();
        let asks = vec![
            ("acme", vec!["o1"], "p1"),
            ("beta", vec!["o1"], "p1"),
            ("beta", many.iter().map(String::as_str).collect(), "p2"),
        ];
        assert_eq!(
            reads_shape(&pack_reads(asks)),
            [(1, 1), (1, 50), (1, 10), (1, 1)]
        );
    }
}
