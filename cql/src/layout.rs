//! Where a logical row lives in CQL: the one mapping from (table, key) to partition and
//! clustering, and from (table, prefix, start_after) to the range a scan reads.
//!
//! Logical keys are `/`-joined ids. Four shapes cover every table (see README.md):
//! - by product: `tenant/product/rest…` in partition (tenant, product), clustering (tbl, rest);
//! - product: `tenant/product` by key, listed in partition (tenant, hash bucket), clustering product;
//! - timeline: `<zero-padded number>/…` in partition (tbl, number / width), clustering key;
//! - by key: everything else, one row per partition (tbl, key).

use porch_processors::store::{tables, StoreError};

/// Buckets of a tenant's product list. A constant of the data: changing it needs a rebuild.
pub(crate) const PRODUCT_BUCKETS: i32 = 16;
/// Width of a timeline bucket for activation deadlines: one hour of due times, in micros.
pub(crate) const DEADLINE_BUCKET_MICROS: i64 = 3_600_000_000;
/// Activation's due timers, `<due micros, 20 digits>/<tenant>/<product>` (processors/modules.rs).
pub(crate) const ACTIVATION_DEADLINE: &str = "activation_deadline";

/// Connectors' status rows (porch-connectors' `sink::status::STATUS_TABLE`).
const CONNECTOR_STATUS: &str = "connector_status";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    ByProduct,
    Product,
    Timeline { width: i64 },
    ByKey,
}

fn layout(table: &str) -> Layout {
    match table {
        tables::OFFER
        | tables::INVENTORY
        | tables::INVENTORY_HOLD
        | tables::COMPLIANCE
        | tables::LISTING
        | tables::HISTORY
        // `tenant/~p<partition>/product`: one partition per tenant and task, walked in pages.
        | tables::CHANNEL_INDEX
        // `~connectors/<connector>/<instance>` (porch-connectors' status rows): one partition per
        // connector, listing its instances.
        | CONNECTOR_STATUS => Layout::ByProduct,
        tables::PRODUCT => Layout::Product,
        ACTIVATION_DEADLINE | tables::RESERVATION_EXPIRY => Layout::Timeline {
            width: DEADLINE_BUCKET_MICROS,
        },
        // Point lookups only; an unknown table is safest here, as no partition can grow.
        _ => Layout::ByKey,
    }
}

/// The CQL row that holds one logical row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    /// `rows_by_key`, partition (tbl, key).
    Key { tbl: &'a str, key: &'a str },
    /// `rows_by_product`, partition (tenant, product), clustering (tbl, rest).
    Product {
        tenant: &'a str,
        product: &'a str,
        tbl: &'a str,
        rest: &'a str,
    },
    /// `rows_by_bucket`, partition (tbl, bucket), clustering key; `bucket_index` lists buckets.
    Timeline {
        tbl: &'a str,
        bucket: i64,
        key: &'a str,
    },
}

/// A product's entry in `product_list`, partition (tenant, bucket), clustering product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed<'a> {
    pub tenant: &'a str,
    pub bucket: i32,
    pub product: &'a str,
}

/// Where a logical row lives, with the index row that must change with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement<'a> {
    pub place: Place<'a>,
    pub listed: Option<Listed<'a>>,
}

fn bad_key(table: &str, key: &str, shape: &str) -> StoreError {
    StoreError::Backend(format!("key {key:?} of table {table} is not {shape}"))
}

/// Where the row `key` of `table` lives.
pub(crate) fn place<'a>(table: &'a str, key: &'a str) -> Result<Placement<'a>, StoreError> {
    let plain = |place| Placement {
        place,
        listed: None,
    };
    match layout(table) {
        Layout::ByKey => Ok(plain(Place::Key { tbl: table, key })),
        Layout::Product => {
            let (tenant, product) = key
                .split_once('/')
                .filter(|(t, p)| !t.is_empty() && !p.is_empty() && !p.contains('/'))
                .ok_or_else(|| bad_key(table, key, "tenant/product"))?;
            Ok(Placement {
                place: Place::Key { tbl: table, key },
                listed: Some(Listed {
                    tenant,
                    bucket: product_bucket(product),
                    product,
                }),
            })
        }
        Layout::ByProduct => {
            let mut parts = key.splitn(3, '/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(tenant), Some(product), Some(rest)) => Ok(plain(Place::Product {
                    tenant,
                    product,
                    tbl: table,
                    rest,
                })),
                _ => Err(bad_key(table, key, "tenant/product/…")),
            }
        }
        Layout::Timeline { width } => Ok(plain(Place::Timeline {
            tbl: table,
            bucket: timeline_bucket(table, key, width)?,
            key,
        })),
    }
}

/// The bucket of a product in its tenant's list: FNV-1a of the id, stable across builds and
/// platforms (the data depends on it).
pub(crate) fn product_bucket(product: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in product.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % PRODUCT_BUCKETS as u32) as i32
}

fn timeline_bucket(table: &str, key: &str, width: i64) -> Result<i64, StoreError> {
    let first = key.split('/').next().unwrap_or_default();
    first
        .parse::<u64>()
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .map(|n| n / width)
        .ok_or_else(|| bad_key(table, key, "<zero-padded number>/…"))
}

/// The least key a scan may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lower {
    pub value: String,
    /// `start_after` itself is not returned.
    pub exclusive: bool,
}

impl Lower {
    /// How many rows to ask for so that `want` remain after dropping `start_after`.
    pub fn ask(&self, want: usize) -> usize {
        want.saturating_add(usize::from(self.exclusive))
    }
    /// Whether `key` (in the same space as `value`) may be returned.
    pub fn admits(&self, key: &str) -> bool {
        !(self.exclusive && key == self.value)
    }
}

/// What a scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanPlan<'a> {
    /// Nothing can match (start_after lies past the prefix).
    Empty,
    /// One partition of `rows_by_product`; `from`/`upto` are over `rest`.
    Product {
        tenant: &'a str,
        product: &'a str,
        tbl: &'a str,
        from: Lower,
        upto: Option<String>,
    },
    /// A tenant's `product_list` buckets merged, rows from `rows_by_key`; `from`/`upto` are
    /// over the product id.
    List {
        tbl: &'a str,
        tenant: &'a str,
        from: Lower,
        upto: Option<String>,
    },
    /// `rows_by_bucket` partitions from `first_bucket` on (one if `only`); over the full key.
    Timeline {
        tbl: &'a str,
        from: Lower,
        upto: Option<String>,
        /// The bucket of `from`, when `from` names a whole first part; else start at the earliest.
        first_bucket: Option<i64>,
        /// The prefix names the first part: that bucket alone.
        only: bool,
    },
}

fn unscannable(table: &str, prefix: &str, shape: &str) -> StoreError {
    StoreError::Backend(format!(
        "table {table} cannot be scanned by prefix {prefix:?}; it is scanned by {shape}"
    ))
}

/// The range of CQL rows that answers `scan(table, prefix, start_after, …)`.
pub(crate) fn scan_plan<'a>(
    table: &'a str,
    prefix: &'a str,
    start_after: Option<&str>,
) -> Result<ScanPlan<'a>, StoreError> {
    let Some(from) = lower_bound(prefix, start_after) else {
        return Ok(ScanPlan::Empty);
    };
    match layout(table) {
        Layout::ByKey => Err(unscannable(table, prefix, "full key only")),
        Layout::ByProduct => {
            let mut parts = prefix.splitn(3, '/');
            let (Some(tenant), Some(product), Some(rest)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(unscannable(table, prefix, "a prefix tenant/product/…"));
            };
            let head = prefix.len() - rest.len();
            Ok(ScanPlan::Product {
                tenant,
                product,
                tbl: table,
                from: Lower {
                    value: from.value[head..].to_string(),
                    exclusive: from.exclusive,
                },
                upto: successor(rest),
            })
        }
        Layout::Product => {
            let Some((tenant, rest)) = prefix.split_once('/') else {
                return Err(unscannable(table, prefix, "a prefix tenant/…"));
            };
            let head = tenant.len() + 1;
            Ok(ScanPlan::List {
                tbl: table,
                tenant,
                from: Lower {
                    value: from.value[head..].to_string(),
                    exclusive: from.exclusive,
                },
                upto: successor(rest),
            })
        }
        Layout::Timeline { width } => {
            // A whole first part is known when `from` is a real key or contains a `/`; a
            // partial one ("00001") says nothing about the bucket.
            let whole_part = from.value.contains('/') || (from.exclusive && !from.value.is_empty());
            let first_bucket = if whole_part {
                Some(timeline_bucket(table, &from.value, width)?)
            } else {
                None
            };
            Ok(ScanPlan::Timeline {
                tbl: table,
                upto: successor(prefix),
                first_bucket,
                only: prefix.contains('/'),
                from,
            })
        }
    }
}

/// The least key with `prefix` that comes after `start_after`; `None` when `start_after` lies
/// past every key with the prefix.
fn lower_bound(prefix: &str, start_after: Option<&str>) -> Option<Lower> {
    match start_after {
        Some(after) if after >= prefix => after.starts_with(prefix).then(|| Lower {
            value: after.to_string(),
            exclusive: true,
        }),
        _ => Some(Lower {
            value: prefix.to_string(),
            exclusive: false,
        }),
    }
}

/// The least string greater than every string that starts with `prefix` (text compares by
/// UTF-8 bytes in CQL as in Rust, which is code point order); `None` for no bound.
pub(crate) fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(value: &str, exclusive: bool) -> Lower {
        Lower {
            value: value.into(),
            exclusive,
        }
    }

    #[test]
    fn product_scoped_tables_share_the_product_partition() {
        let p = place("inventory", "acme/p1/s1/SKU-1/DE").unwrap();
        assert_eq!(
            p.place,
            Place::Product {
                tenant: "acme",
                product: "p1",
                tbl: "inventory",
                rest: "s1/SKU-1/DE"
            }
        );
        assert_eq!(p.listed, None);
        assert!(place("offer", "acme/p1").is_err());
    }

    #[test]
    fn products_are_rows_by_key_listed_in_a_bucket() {
        let p = place("product", "acme/p1").unwrap();
        assert_eq!(
            p.place,
            Place::Key {
                tbl: "product",
                key: "acme/p1"
            }
        );
        assert_eq!(
            p.listed,
            Some(Listed {
                tenant: "acme",
                bucket: product_bucket("p1"),
                product: "p1"
            })
        );
        assert!(place("product", "acme").is_err());
        assert!(place("product", "acme/p1/x").is_err());
    }

    #[test]
    fn other_tables_are_point_lookups() {
        for t in [
            "sku",
            "command",
            "variant",
            "activation_deadline_of",
            "whatever",
        ] {
            assert_eq!(
                place(t, "a/b/c").unwrap().place,
                Place::Key {
                    tbl: t,
                    key: "a/b/c"
                }
            );
            assert!(scan_plan(t, "a/", None).is_err());
        }
    }

    #[test]
    fn deadlines_are_bucketed_by_the_hour_of_their_due_time() {
        let key = format!("{:020}/acme/p1", 7_200_000_001i64);
        let p = place(ACTIVATION_DEADLINE, &key).unwrap();
        assert_eq!(
            p.place,
            Place::Timeline {
                tbl: ACTIVATION_DEADLINE,
                bucket: 2,
                key: &key
            }
        );
        assert!(place(ACTIVATION_DEADLINE, "soon/acme/p1").is_err());
    }

    #[test]
    fn product_bucket_is_stable_and_spreads() {
        // Pinned: stored data depends on these values.
        assert_eq!(product_bucket(""), (0x811c_9dc5u32 % 16) as i32);
        assert_eq!(product_bucket("a"), (0xe40c_292cu32 % 16) as i32);
        let used: std::collections::BTreeSet<i32> =
            (0..200).map(|i| product_bucket(&format!("p{i}"))).collect();
        assert_eq!(used.len(), PRODUCT_BUCKETS as usize);
    }

    #[test]
    fn bounds() {
        assert_eq!(lower_bound("a/", None), Some(from("a/", false)));
        assert_eq!(lower_bound("a/", Some("a/x")), Some(from("a/x", true)));
        assert_eq!(lower_bound("a/", Some("a")), Some(from("a/", false)));
        assert_eq!(lower_bound("a/", Some("b")), None);
        assert_eq!(lower_bound("", Some("b")), Some(from("b", true)));
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor(""), None);
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn scan_plans() {
        assert_eq!(
            scan_plan("offer", "acme/p1/", Some("acme/p1/o2")).unwrap(),
            ScanPlan::Product {
                tenant: "acme",
                product: "p1",
                tbl: "offer",
                from: from("o2", true),
                upto: None
            }
        );
        assert_eq!(
            scan_plan("inventory", "acme/p1/s1/", None).unwrap(),
            ScanPlan::Product {
                tenant: "acme",
                product: "p1",
                tbl: "inventory",
                from: from("s1/", false),
                upto: Some("s10".into())
            }
        );
        assert!(scan_plan("offer", "acme/", None).is_err());
        assert_eq!(
            scan_plan("offer", "acme/p1/", Some("acme/p2/o1")).unwrap(),
            ScanPlan::Empty
        );
        assert_eq!(
            scan_plan("product", "acme/", Some("acme/p7")).unwrap(),
            ScanPlan::List {
                tbl: "product",
                tenant: "acme",
                from: from("p7", true),
                upto: None
            }
        );
        assert!(scan_plan("product", "", None).is_err());
        assert_eq!(
            scan_plan(ACTIVATION_DEADLINE, "", None).unwrap(),
            ScanPlan::Timeline {
                tbl: ACTIVATION_DEADLINE,
                from: from("", false),
                upto: None,
                first_bucket: None,
                only: false
            }
        );
        let after = format!("{:020}/acme/p1", 3_600_000_000i64);
        assert_eq!(
            scan_plan(ACTIVATION_DEADLINE, "", Some(&after)).unwrap(),
            ScanPlan::Timeline {
                tbl: ACTIVATION_DEADLINE,
                from: from(&after, true),
                upto: None,
                first_bucket: Some(1),
                only: false
            }
        );
        let due = format!("{:020}/", 3_600_000_000i64);
        assert_eq!(
            scan_plan(ACTIVATION_DEADLINE, &due, None).unwrap(),
            ScanPlan::Timeline {
                tbl: ACTIVATION_DEADLINE,
                from: from(&due, false),
                upto: successor(&due),
                first_bucket: Some(1),
                only: true
            }
        );
    }
}
