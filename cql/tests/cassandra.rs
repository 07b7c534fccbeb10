//! `CqlStore` and `migrate` against a real Cassandra (or ScyllaDB) at `PORCH_CQL`
//! (default 127.0.0.1:9042; `scripts/engines up cassandra` starts one). No engine is a failure,
//! not a skip. Each run works in a fresh keyspace `porch_test_<random>` and drops it at the end.

use futures::FutureExt;
use porch_cql::{migrate, CqlConfig, CqlStore};
use porch_processors::store::{ProjectionStore, RowWrite, Store};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for the engine to answer before failing.
const ENGINE_WAIT: Duration = Duration::from_secs(240);
const HOUR: i64 = 3_600_000_000;

fn put(table: &str, key: &str, value: &str) -> RowWrite {
    RowWrite {
        table: table.into(),
        key: key.into(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn del(table: &str, key: &str) -> RowWrite {
    RowWrite {
        table: table.into(),
        key: key.into(),
        value: None,
    }
}

fn keys(rows: &[(String, Vec<u8>)]) -> Vec<String> {
    rows.iter().map(|(k, _)| k.clone()).collect()
}

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8(v).unwrap())
}

fn test_config() -> CqlConfig {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let random = nanos ^ (u64::from(std::process::id()) << 40);
    CqlConfig {
        keyspace: format!("porch_test_{random:016x}"),
        ..CqlConfig::from_env().expect("CQL settings")
    }
}

/// A session of our own, for setting up and inspecting what the store keeps.
async fn admin_session(config: &CqlConfig) -> Session {
    let started = Instant::now();
    loop {
        let attempt = async {
            let session = SessionBuilder::new()
                .known_nodes(&config.nodes)
                .connection_timeout(Duration::from_secs(3))
                .build()
                .await
                .map_err(|e| e.to_string())?;
            session
                .query_unpaged("SELECT release_version FROM system.local", ())
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(session)
        };
        match attempt.await {
            Ok(session) => return session,
            Err(e) if started.elapsed() < ENGINE_WAIT => {
                eprintln!("waiting for Cassandra at {:?}: {e}", config.nodes);
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Err(e) => panic!(
                "Cassandra does not answer at {:?} after {ENGINE_WAIT:?} ({e}); \
                 start it with `scripts/engines up cassandra`",
                config.nodes
            ),
        }
    }
}

async fn count(admin: &Session, cql: String) -> usize {
    admin
        .query_unpaged(cql, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_on_cassandra() {
    let config = test_config();
    let admin = admin_session(&config).await;
    dropping_the_keyspace_after(&config, &admin, scenario(&config, &admin)).await;
}

/// Runs `test`, then drops the test keyspace of `config`, whether it passed or failed.
async fn dropping_the_keyspace_after(
    config: &CqlConfig,
    admin: &Session,
    test: impl std::future::Future<Output = ()>,
) {
    let outcome = AssertUnwindSafe(test).catch_unwind().await;
    let dropped = admin
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", config.keyspace), ())
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.expect("dropping the test keyspace");
}

async fn scenario(config: &CqlConfig, admin: &Session) {
    migrations(config, admin).await;
    let store = CqlStore::connect(config).await.expect("connect");
    assert!(store.ready().await, "ready");
    point_rows(&store).await;
    product_scoped_scans(&store).await;
    many_rows(&store).await;
    history(&store).await;
    product_list(&store, admin).await;
    deadlines(&store, admin).await;
    write_times(&store).await;
    concurrent_applies(&store).await;
    claims(&store).await;
    swaps(&store).await;
    checkpoints(&store).await;
    blocking_reads(&store).await;
}

async fn migrations(config: &CqlConfig, admin: &Session) {
    let ks = &config.keyspace;
    assert_eq!(migrate(config).await.unwrap(), vec!["0001_store"]);
    assert_eq!(
        migrate(config).await.unwrap(),
        Vec::<String>::new(),
        "a second run applies nothing"
    );
    let (sum,): (String,) = admin
        .query_unpaged(
            format!("SELECT checksum FROM {ks}.schema_migrations WHERE version = 1"),
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    // As if the file had been edited after it was applied.
    let set = |sum: String| {
        admin.query_unpaged(
            format!("UPDATE {ks}.schema_migrations SET checksum = ? WHERE version = 1"),
            (sum,),
        )
    };
    set("0000000000000000".into()).await.unwrap();
    let err = migrate(config).await.unwrap_err().to_string();
    assert!(err.contains("0001_store"), "{err}");
    assert!(err.contains("changed"), "{err}");
    set(sum).await.unwrap();
    assert!(migrate(config).await.unwrap().is_empty());
}

async fn point_rows(store: &CqlStore) {
    let rows = [
        put("sku", "acme/SKU-1", "p1"),
        put("variant", "acme/p1", "variants"),
        put("offer", "acme/p1/o1", "offer"),
        put("activation_deadline_of", "acme/p1", "due"),
        put(
            "activation_deadline",
            &format!("{:020}/acme/p1", 7 * HOUR),
            "",
        ),
    ];
    store.apply(rows.to_vec(), 10).await.unwrap();
    for w in &rows {
        let got = store.get_async(&w.table, &w.key).await.unwrap();
        assert_eq!(got, w.value, "{}/{}", w.table, w.key);
    }
    assert_eq!(store.get_async("sku", "acme/SKU-2").await.unwrap(), None);
    assert_eq!(store.get_async("sku", "other/SKU-1").await.unwrap(), None);
    store
        .apply(rows.iter().map(|w| del(&w.table, &w.key)).collect(), 11)
        .await
        .unwrap();
    for w in &rows {
        assert_eq!(store.get_async(&w.table, &w.key).await.unwrap(), None);
    }
    assert!(
        store.scan_async("sku", "acme/", None, 10).await.is_err(),
        "point-lookup tables are not scanned"
    );
    assert!(store.scan_async("offer", "acme/", None, 10).await.is_err());
}

/// `get_many` answers in the order asked, absent rows as none, and reads together the rows of
/// products that ask for the same rows, and point rows.
async fn many_rows(store: &CqlStore) {
    let mixed = || {
        store
            .requests()
            .with_label_values(&["batch", "mixed"])
            .get()
    };
    let offers = || store.rows_written().with_label_values(&["offer"]).get();
    let (mixed_before, offers_before) = (mixed(), offers());
    store
        .apply(
            vec![
                put("offer", "many/p1/o1", "a"),
                put("offer", "many/p1/o2", "b"),
                put("offer", "many/p1/o3", "c"),
                put("offer", "many/p2/o1", "d"),
                put("sku", "many/SKU-1", "p1"),
            ],
            10,
        )
        .await
        .unwrap();
    // Small partitions of two tables share one request; each row is counted under its table.
    assert_eq!(mixed() - mixed_before, 1, "five rows in one request");
    assert_eq!(offers() - offers_before, 4);
    store
        .apply(vec![del("offer", "many/p1/o2")], 11)
        .await
        .unwrap();
    let reads = || store.requests().with_label_values(&["read", "offer"]).get();
    let before = reads();
    let asked: Vec<String> = [
        "many/p1/o3",
        "many/p1/o2",
        "many/p2/o1",
        "many/p1/o1",
        "many/p3/o1",
        "many/p1/o3",
    ]
    .map(String::from)
    .to_vec();
    let got: Vec<Option<String>> = store
        .get_many("offer", &asked)
        .await
        .unwrap()
        .into_iter()
        .map(text)
        .collect();
    assert_eq!(
        got,
        [Some("c"), None, Some("d"), Some("a"), None, Some("c")].map(|v| v.map(String::from))
    );
    assert_eq!(
        reads() - before,
        1,
        "p1's three rows, o1 of p2 and o1 of p3 in one request"
    );
    // Each request is timed as well as counted, under the same labels.
    let registry = prometheus::Registry::new();
    for c in store.collectors() {
        registry.register(c).unwrap();
    }
    let read_seconds: f64 = registry
        .gather()
        .iter()
        .filter(|f| f.name() == "porch_cql_request_seconds_total")
        .flat_map(|f| f.get_metric())
        .filter(|m| {
            let labels: Vec<(&str, &str)> = m
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            labels == [("kind", "read"), ("table", "offer")]
        })
        .map(|m| m.get_counter().get_value())
        .sum();
    assert!(read_seconds > 0.0, "the reads took time: {read_seconds}");
    let sku_reads = || store.requests().with_label_values(&["read", "sku"]).get();
    let before = sku_reads();
    let skus = ["many/SKU-1", "many/SKU-2"].map(String::from);
    assert_eq!(
        store.get_many("sku", &skus).await.unwrap(),
        vec![Some(b"p1".to_vec()), None]
    );
    assert_eq!(sku_reads() - before, 1, "point rows in one request");
    assert!(store.get_many("offer", &[]).await.unwrap().is_empty());

    // Many rows of one partition go in reads of at most 50 (ScyllaDB caps an IN list at 100).
    let wide: Vec<String> = (0..120).map(|i| format!("many/p4/o{i:03}")).collect();
    store
        .apply(wide.iter().map(|k| put("offer", k, k)).collect(), 12)
        .await
        .unwrap();
    let before = reads();
    let got = store.get_many("offer", &wide).await.unwrap();
    assert_eq!(
        reads() - before,
        3,
        "120 rows of one partition in reads of 50, 50 and 20"
    );
    let want: Vec<Option<Vec<u8>>> = wide.iter().map(|k| Some(k.as_bytes().to_vec())).collect();
    assert_eq!(got, want);

    // Products asking for the same two rows: 25 products (50 rows asked) a read.
    let across: Vec<String> = (0..30)
        .flat_map(|p| [format!("many/q{p:02}/o1"), format!("many/q{p:02}/o2")])
        .collect();
    let written: Vec<RowWrite> = across
        .iter()
        .filter(|k| !k.starts_with("many/q07/"))
        .map(|k| put("offer", k, k))
        .collect();
    store.apply(written, 13).await.unwrap();
    let before = reads();
    let got = store.get_many("offer", &across).await.unwrap();
    assert_eq!(
        reads() - before,
        2,
        "30 products × 2 rows in reads of 25 and 5 products"
    );
    let want: Vec<Option<Vec<u8>>> = across
        .iter()
        .map(|k| (!k.starts_with("many/q07/")).then(|| k.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
}

async fn product_scoped_scans(store: &CqlStore) {
    let mut writes: Vec<RowWrite> = (1..=5)
        .rev()
        .map(|i| put("offer", &format!("acme/p1/o{i}"), &format!("v{i}")))
        .collect();
    writes.push(put("offer", "acme/p10/o1", "x"));
    writes.push(put("offer", "acme/p2/o1", "x"));
    writes.push(put("offer", "acme2/p1/o9", "x"));
    writes.push(put("listing", "acme/p1/o1", "x"));
    writes.push(put("inventory", "acme/p1/s1/SKU-1/DE", "a"));
    writes.push(put("inventory", "acme/p1/s1/SKU-1/IN", "b"));
    writes.push(put("inventory", "acme/p1/s10/SKU-1/DE", "c"));
    writes.push(put("compliance", "acme/p1/DE", "ok"));
    store.apply(writes, 20).await.unwrap();

    let all = store
        .scan_async("offer", "acme/p1/", None, 100)
        .await
        .unwrap();
    assert_eq!(
        keys(&all),
        (1..=5).map(|i| format!("acme/p1/o{i}")).collect::<Vec<_>>()
    );
    assert_eq!(all[2].1, b"v3");
    let unbounded = store
        .scan_async("offer", "acme/p1/", Some("acme/p1/o1"), usize::MAX)
        .await
        .unwrap();
    assert_eq!(unbounded.len(), 4);
    let page = store
        .scan_async("offer", "acme/p1/", Some("acme/p1/o2"), 2)
        .await
        .unwrap();
    assert_eq!(keys(&page), ["acme/p1/o3", "acme/p1/o4"]);
    let last = store
        .scan_async("offer", "acme/p1/", Some("acme/p1/o5"), 2)
        .await
        .unwrap();
    assert!(last.is_empty());
    assert!(store
        .scan_async("offer", "acme/p1/", None, 0)
        .await
        .unwrap()
        .is_empty());
    let stock = store
        .scan_async("inventory", "acme/p1/s1/", None, 10)
        .await
        .unwrap();
    assert_eq!(keys(&stock), ["acme/p1/s1/SKU-1/DE", "acme/p1/s1/SKU-1/IN"]);
    let stock = store
        .scan_async("inventory", "acme/p1/", None, 10)
        .await
        .unwrap();
    assert_eq!(stock.len(), 3);
    assert_eq!(
        keys(
            &store
                .scan_async("compliance", "acme/p1/", None, 10)
                .await
                .unwrap()
        ),
        ["acme/p1/DE"]
    );
    assert_eq!(
        keys(
            &store
                .scan_async("listing", "acme/p1/", None, 10)
                .await
                .unwrap()
        ),
        ["acme/p1/o1"]
    );
}

async fn history(store: &CqlStore) {
    let at = [
        1_700_000_000_000_003i64,
        1_700_000_000_000_001,
        1_700_000_000_000_002,
    ];
    let writes = at
        .iter()
        .flat_map(|t| {
            ["e2", "e1"].map(|e| put("history", &format!("acme/p1/{t:020}/{e}"), &format!("{t}")))
        })
        .collect();
    store.apply(writes, 30).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan_async("history", "acme/p1/", after.as_deref(), 4)
            .await
            .unwrap();
        seen.extend(keys(&page));
        if page.len() < 4 {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
    }
    let mut want: Vec<String> = at
        .iter()
        .flat_map(|t| ["e1", "e2"].map(|e| format!("acme/p1/{t:020}/{e}")))
        .collect();
    want.sort();
    assert_eq!(seen, want);
}

async fn product_list(store: &CqlStore, admin: &Session) {
    // Inserted out of order, over several batches, beside another tenant's products.
    let ids: Vec<String> = (0..40).map(|i| format!("p{:03}", (i * 17) % 40)).collect();
    for chunk in ids.chunks(15) {
        let writes = chunk
            .iter()
            .map(|id| put("product", &format!("acme/{id}"), &format!("state of {id}")))
            .chain(std::iter::once(put("product", "acmf/p000", "other tenant")))
            .collect();
        store.apply(writes, 40).await.unwrap();
    }
    store
        .apply(vec![put("product", "acm/p999", "other tenant")], 40)
        .await
        .unwrap();
    let buckets = count(
        admin,
        format!(
            "SELECT bucket FROM {}.product_list WHERE tenant = 'acme' AND bucket IN \
             (0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15) PER PARTITION LIMIT 1",
            store.keyspace()
        ),
    )
    .await;
    assert!(buckets > 4, "the products spread over buckets ({buckets})");

    let mut want = ids.clone();
    want.sort();
    let want: Vec<String> = want.iter().map(|id| format!("acme/{id}")).collect();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .scan_async("product", "acme/", after.as_deref(), 7)
            .await
            .unwrap();
        pages += 1;
        for (k, v) in &page {
            assert_eq!(
                String::from_utf8(v.clone()).unwrap(),
                format!("state of {}", &k["acme/".len()..])
            );
        }
        seen.extend(keys(&page));
        if page.len() < 7 {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
    }
    assert_eq!(seen, want);
    assert_eq!(pages, 6);

    store
        .apply(vec![del("product", "acme/p005")], 41)
        .await
        .unwrap();
    assert_eq!(store.get_async("product", "acme/p005").await.unwrap(), None);
    let page = store
        .scan_async("product", "acme/", Some("acme/p003"), 3)
        .await
        .unwrap();
    assert_eq!(keys(&page), ["acme/p004", "acme/p006", "acme/p007"]);
    let narrow = store
        .scan_async("product", "acme/p01", None, 100)
        .await
        .unwrap();
    assert_eq!(keys(&narrow), want[10..20].to_vec());
}

async fn deadlines(store: &CqlStore, admin: &Session) {
    const T: &str = "activation_deadline";
    let due = |at: i64, p: &str| format!("{at:020}/acme/{p}");
    let entries = [
        due(HOUR + 5, "a"),
        due(HOUR + 9, "b"),
        due(3 * HOUR, "c"),
        due(5 * HOUR + 1, "d"),
    ];
    store
        .apply(entries.iter().rev().map(|k| put(T, k, "")).collect(), 50)
        .await
        .unwrap();
    let first = store.scan_async(T, "", None, 2).await.unwrap();
    assert_eq!(keys(&first), entries[..2].to_vec());
    assert_eq!(first[0].1, b"");
    let next = store
        .scan_async(T, "", Some(&entries[1]), 10)
        .await
        .unwrap();
    assert_eq!(keys(&next), entries[2..].to_vec());
    let one = store
        .scan_async(T, &format!("{:020}/", 3 * HOUR), None, 10)
        .await
        .unwrap();
    assert_eq!(keys(&one), [entries[2].clone()]);

    // The earliest hour empties: the scan starts later and forgets that hour.
    store
        .apply(vec![del(T, &entries[0]), del(T, &entries[1])], 51)
        .await
        .unwrap();
    let rest = store.scan_async(T, "", None, 10).await.unwrap();
    assert_eq!(keys(&rest), entries[2..].to_vec());
    let index = format!(
        "SELECT bucket FROM {}.bucket_index WHERE tbl = '{T}'",
        store.keyspace()
    );
    // Hour 7 held an entry of `point_rows`, deleted there: it goes too.
    assert_eq!(count(admin, index.clone()).await, 2);
    // A new entry in that hour comes back first.
    let again = due(HOUR + 7, "e");
    store.apply(vec![put(T, &again, "")], 52).await.unwrap();
    let all = store.scan_async(T, "", None, 10).await.unwrap();
    assert_eq!(keys(&all), [again, entries[2].clone(), entries[3].clone()]);
    assert_eq!(count(admin, index).await, 3);
}

/// Concurrent applies of a row or two each, as the ingest API's requests make them, share
/// requests, each at its own write time; each answers only once its rows are written.
async fn concurrent_applies(store: &CqlStore) {
    let requests = || {
        let r = store.requests();
        ["write", "batch"]
            .iter()
            .map(|kind| {
                r.with_label_values(&[*kind, "command"]).get()
                    + r.with_label_values(&[*kind, "mixed"]).get()
            })
            .sum::<u64>()
    };
    let before = requests();
    let n = 200;
    let keys: Vec<String> = (0..n).map(|i| format!("together/c{i}")).collect();
    let applies = keys.iter().enumerate().map(|(i, k)| async move {
        store
            .apply(vec![put("command", k, "v")], 1000 + i as i64)
            .await
            .unwrap();
        // Written by the time the apply answers.
        assert_eq!(
            text(store.get_async("command", k).await.unwrap()).as_deref(),
            Some("v"),
            "{k}"
        );
    });
    futures::future::join_all(applies).await;
    let sent = requests() - before;
    assert!(sent < n as u64 / 2, "{n} applies in {sent} requests");
    // Each kept its own write time: an older write of the row does not replace it.
    store
        .apply(vec![put("command", &keys[7], "older")], 1006)
        .await
        .unwrap();
    store
        .apply(vec![put("command", &keys[8], "newer")], 1009)
        .await
        .unwrap();
    let keys = &keys;
    let got = |i: usize| async move { text(store.get_async("command", &keys[i]).await.unwrap()) };
    assert_eq!(got(7).await.as_deref(), Some("v"));
    assert_eq!(got(8).await.as_deref(), Some("newer"));
}

async fn write_times(store: &CqlStore) {
    let get = |k: &'static str| async move { text(store.get_async("command", k).await.unwrap()) };
    store
        .apply(vec![put("command", "acme/c1", "new")], 200)
        .await
        .unwrap();
    store
        .apply(vec![put("command", "acme/c1", "old")], 100)
        .await
        .unwrap();
    assert_eq!(get("acme/c1").await.as_deref(), Some("new"), "older put");
    store
        .apply(vec![del("command", "acme/c1")], 150)
        .await
        .unwrap();
    assert_eq!(get("acme/c1").await.as_deref(), Some("new"), "older delete");
    store
        .apply(vec![put("command", "acme/c1", "new")], 200)
        .await
        .unwrap();
    assert_eq!(
        get("acme/c1").await.as_deref(),
        Some("new"),
        "same batch again"
    );
    store
        .apply(vec![del("command", "acme/c1")], 300)
        .await
        .unwrap();
    store
        .apply(vec![put("command", "acme/c1", "late")], 250)
        .await
        .unwrap();
    assert_eq!(get("acme/c1").await, None, "a put older than the delete");

    // Within one batch the last write of a row wins, whatever CQL does with equal times.
    store
        .apply(
            vec![
                put("command", "acme/c2", "b"),
                put("command", "acme/c2", "a"),
            ],
            10,
        )
        .await
        .unwrap();
    assert_eq!(get("acme/c2").await.as_deref(), Some("a"));
    store
        .apply(
            vec![del("command", "acme/c3"), put("command", "acme/c3", "z")],
            10,
        )
        .await
        .unwrap();
    assert_eq!(get("acme/c3").await.as_deref(), Some("z"));

    // Writes to one product's partition go in one request (an unlogged batch), each still at
    // the batch's write time: puts and deletes of several rows, then an older batch that
    // changes nothing, a row of another product beside them.
    let scan = |prefix: &'static str| async move {
        store
            .scan_async("offer", prefix, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect::<Vec<_>>()
    };
    let owned = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    store
        .apply(
            vec![
                put("offer", "acme/p9/o1", "a"),
                put("offer", "acme/p9/o2", "b"),
                put("offer", "acme/p8/o1", "other"),
                put("offer", "acme/p9/o3", "c"),
            ],
            100,
        )
        .await
        .unwrap();
    store
        .apply(
            vec![del("offer", "acme/p9/o2"), put("offer", "acme/p9/o3", "c2")],
            200,
        )
        .await
        .unwrap();
    store
        .apply(
            vec![
                put("offer", "acme/p9/o2", "back"),
                put("offer", "acme/p9/o3", "older"),
            ],
            150,
        )
        .await
        .unwrap();
    assert_eq!(
        scan("acme/p9/").await,
        owned(&[("acme/p9/o1", "a"), ("acme/p9/o3", "c2")])
    );
    assert_eq!(scan("acme/p8/").await, owned(&[("acme/p8/o1", "other")]));
    // More values than one batch takes go in several.
    let big = |c: char| c.to_string().repeat(200 * 1024);
    let (x, y, z) = (big('x'), big('y'), big('z'));
    store
        .apply(
            vec![
                put("offer", "acme/p7/o1", &x),
                put("offer", "acme/p7/o2", &y),
                put("offer", "acme/p7/o3", &z),
            ],
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        scan("acme/p7/").await,
        vec![
            ("acme/p7/o1".to_string(), x),
            ("acme/p7/o2".to_string(), y),
            ("acme/p7/o3".to_string(), z)
        ]
    );

    // The product list follows the product row's write times.
    store
        .apply(vec![put("product", "zeta/p1", "v")], 200)
        .await
        .unwrap();
    store
        .apply(vec![del("product", "zeta/p1")], 100)
        .await
        .unwrap();
    let listed = store
        .scan_async("product", "zeta/", None, 10)
        .await
        .unwrap();
    assert_eq!(keys(&listed), ["zeta/p1"]);
    store
        .apply(vec![del("product", "zeta/p1")], 300)
        .await
        .unwrap();
    assert!(store
        .scan_async("product", "zeta/", None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn claims(store: &CqlStore) {
    for table in [
        "idempotency",
        "sku",
        "offer_key",
        "offer_ref",
        "product_id",
        "reservation",
        "location",
        "command",
    ] {
        let key = format!("acme/{table}-claimed");
        assert_eq!(
            store.claim(table, &key, b"first".to_vec()).await.unwrap(),
            None,
            "{table}"
        );
        assert_eq!(
            store.claim(table, &key, b"second".to_vec()).await.unwrap(),
            Some(b"first".to_vec()),
            "{table}"
        );
        assert_eq!(
            store.get_async(table, &key).await.unwrap(),
            Some(b"first".to_vec())
        );
    }
    assert_eq!(
        store
            .claim("product_id", "acme/empty", Vec::new())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim("product_id", "acme/empty", b"x".to_vec())
            .await
            .unwrap(),
        Some(Vec::new())
    );
    assert!(store
        .claim("offer", "acme/p1/o1", b"x".to_vec())
        .await
        .is_err());
}

async fn swaps(store: &CqlStore) {
    let (table, key) = ("mercadolibre_auth", "acme/7");
    assert_eq!(
        store
            .compare_and_set(table, key, b"x".to_vec(), b"y".to_vec())
            .await
            .unwrap(),
        Err(None),
        "no row: nothing to swap"
    );
    assert_eq!(
        store.claim(table, key, b"one".to_vec()).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .compare_and_set(table, key, b"zero".to_vec(), b"two".to_vec())
            .await
            .unwrap(),
        Err(Some(b"one".to_vec()))
    );
    assert_eq!(
        store
            .compare_and_set(table, key, b"one".to_vec(), b"two".to_vec())
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store.get_async(table, key).await.unwrap(),
        Some(b"two".to_vec())
    );
    assert!(store
        .compare_and_set("offer", "acme/p1/o1", b"x".to_vec(), b"y".to_vec())
        .await
        .is_err());
}

async fn checkpoints(store: &CqlStore) {
    assert_eq!(store.load_checkpoint("offer", 3).await.unwrap(), None);
    store
        .save_checkpoint("offer", 3, b"offset 10".to_vec(), 1_000)
        .await
        .unwrap();
    store
        .save_checkpoint("offer", 3, b"offset 12".to_vec(), 2_000)
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint("offer", 3).await.unwrap(),
        Some(b"offset 12".to_vec())
    );
    // A member fenced out of its group after its offsets were taken may save its checkpoint
    // late, after the member now owning the task saved a later one: it must not replace it.
    store
        .save_checkpoint("offer", 3, b"offset 11 (late)".to_vec(), 1_500)
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint("offer", 3).await.unwrap(),
        Some(b"offset 12".to_vec())
    );
    assert_eq!(store.load_checkpoint("offer", 4).await.unwrap(), None);
    assert_eq!(store.load_checkpoint("listing", 3).await.unwrap(), None);
}

async fn blocking_reads(store: &CqlStore) {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let store: &dyn Store = &store;
        assert_eq!(
            store.get_raw("offer", "acme/p1/o1").unwrap(),
            Some(b"v1".to_vec())
        );
        let rows = store
            .scan_raw("offer", "acme/p1/", Some("acme/p1/o1"), 1)
            .unwrap();
        assert_eq!(keys(&rows), ["acme/p1/o2"]);
        let products = store.scan_raw("product", "acme/", None, 2).unwrap();
        assert_eq!(keys(&products), ["acme/p000", "acme/p001"]);
    })
    .await
    .unwrap();
}

/// The certificate the engine's CQL port presents for TLS: `PORCH_CQL_TLS_CA` if set, else
/// the one `scripts/engines` made (`scripts/engines env cassandra` names it).
fn engine_ca() -> std::path::PathBuf {
    if let Ok(ca) = std::env::var("PORCH_CQL_TLS_CA") {
        return ca.into();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/engines");
    let out = std::process::Command::new(script)
        .args(["env", "cassandra"])
        .output()
        .expect("run scripts/engines env cassandra");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ca: std::path::PathBuf = text
        .lines()
        .find_map(|l| l.strip_prefix("PORCH_CQL_CA="))
        .unwrap_or_else(|| panic!("scripts/engines env cassandra printed no PORCH_CQL_CA: {text}"))
        .into();
    assert!(
        ca.is_file(),
        "no certificate at {}: a Cassandra started before its CQL port took TLS needs \
         `scripts/engines down cassandra && scripts/engines up cassandra`",
        ca.display()
    );
    ca
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_over_tls_verifies_the_nodes_certificate() {
    let plain = test_config();
    let admin = admin_session(&plain).await;
    let config = CqlConfig {
        tls: Some(porch_cql::CqlTls {
            ca: Some(engine_ca()),
        }),
        ..plain.clone()
    };
    let test = async {
        // Migrations and the store's reads and writes, all over TLS.
        assert_eq!(migrate(&config).await.unwrap(), vec!["0001_store"]);
        let store = CqlStore::connect(&config).await.expect("connect over TLS");
        assert!(store.ready().await, "ready over TLS");
        let row = put("sku", "acme/SKU-TLS", "p-tls");
        store.apply(vec![row.clone()], 1).await.unwrap();
        assert_eq!(
            store.get_async("sku", "acme/SKU-TLS").await.unwrap(),
            row.value
        );

        // A node whose certificate no trusted authority signed is refused, not used.
        let untrusted = CqlConfig {
            tls: Some(porch_cql::CqlTls { ca: None }),
            ..plain.clone()
        };
        let refused = CqlStore::connect(&untrusted)
            .await
            .expect_err("a self-signed certificate is not trusted by the system's roots")
            .to_string();
        assert!(refused.contains("certificate verify failed"), "{refused}");
    };
    dropping_the_keyspace_after(&plain, &admin, test).await;
}
