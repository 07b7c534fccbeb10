use super::*;
use porch_schemas::{Channel, Currency, Money};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "porch-search-{name}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, AtomicOrdering::Relaxed),
            porch_schemas::now_micros()
        );
        Self(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn region(s: &str) -> RegionCode {
    RegionCode::parse(s).unwrap()
}

fn listing(offer: &str, region_code: &str, title: &str, price: i64) -> Listing {
    let currency = if region_code == "IN" { "INR" } else { "GBP" };
    Listing {
        offer_id: OfferId::parse(offer).unwrap(),
        product_id: ProductId::parse(format!("p-{offer}")).unwrap(),
        sku: Sku::parse(format!("SKU-{offer}")).unwrap(),
        seller: SellerId::parse("acme").unwrap(),
        region: region(region_code),
        title: title.to_owned(),
        description: Some("A plain description".to_owned()),
        brand: Some("Acme".to_owned()),
        category: Some("Apparel".to_owned()),
        image: Some("https://img.example/1.png".to_owned()),
        options: BTreeMap::from([("colour".to_owned(), "red".to_owned())]),
        price: Money::new(price, Currency::parse(currency).unwrap()).unwrap(),
        compare_at: None,
        available: 5,
        channels: vec![Channel::Storefront, Channel::Meta],
    }
}

fn upsert(t: &str, l: Listing) -> IndexChange {
    IndexChange::Upsert {
        tenant: tenant(t),
        listing: l,
    }
}

fn remove(t: &str, offer: &str) -> IndexChange {
    IndexChange::Remove {
        tenant: tenant(t),
        offer_id: OfferId::parse(offer).unwrap(),
    }
}

fn query(t: &str, region_code: Option<&str>, text: Option<&str>) -> SearchQuery {
    SearchQuery {
        tenant: tenant(t),
        region: region_code.map(region),
        text: text.map(str::to_owned),
        limit: 100,
        cursor: None,
    }
}

fn offer_ids(page: &SearchPage) -> Vec<&str> {
    page.hits.iter().map(|h| h.offer_id.as_str()).collect()
}

#[test]
fn the_index_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<SearchIndex>();

    let index = Arc::new(SearchIndex::open_in_ram().unwrap());
    let writer = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            index.apply(
                &[upsert("acme", listing("o-1", "GB", "Shirt", 100))],
                "cp-1",
            )
        })
    };
    writer.join().unwrap().unwrap();
    assert_eq!(index.search(&query("acme", None, None)).unwrap().total, 1);
}

#[test]
fn region_filter_finds_only_that_region() {
    let index = SearchIndex::open_in_ram().unwrap();
    index
        .apply(
            &[
                upsert("acme", listing("o-1", "GB", "Red shirt", 1500)),
                upsert("acme", listing("o-2", "IN", "Red shirt", 99900)),
                upsert("acme", listing("o-3", "GB", "Blue shirt", 1700)),
            ],
            "cp-1",
        )
        .unwrap();

    let gb = index.search(&query("acme", Some("GB"), None)).unwrap();
    assert_eq!(offer_ids(&gb), ["o-1", "o-3"]);
    assert_eq!(gb.total, 2);
    assert!(gb.hits.iter().all(|h| h.region.as_str() == "GB"));

    let india = index
        .search(&query("acme", Some("IN"), Some("shirt")))
        .unwrap();
    assert_eq!(offer_ids(&india), ["o-2"]);
    let hit = &india.hits[0];
    assert_eq!(hit.price_minor, 99900);
    assert_eq!(hit.currency, "INR");
    assert_eq!(hit.channels, ["storefront", "meta"]);
    assert_eq!(hit.options.get("colour").map(String::as_str), Some("red"));
    assert_eq!(hit.product_id.as_str(), "p-o-2");

    assert_eq!(
        index
            .search(&query("acme", Some("DE"), None))
            .unwrap()
            .total,
        0
    );
    assert_eq!(index.search(&query("acme", None, None)).unwrap().total, 3);
}

#[test]
fn a_tenant_never_sees_another_tenants_listings() {
    let index = SearchIndex::open_in_ram().unwrap();
    index
        .apply(
            &[
                upsert("acme", listing("o-1", "GB", "Red shirt", 1500)),
                upsert("globex", listing("o-2", "GB", "Red shirt", 1500)),
                // The same offer id under two tenants is two documents.
                upsert("globex", listing("o-1", "GB", "Globex shirt", 900)),
            ],
            "cp-1",
        )
        .unwrap();

    let acme = index.search(&query("acme", None, Some("shirt"))).unwrap();
    assert_eq!(offer_ids(&acme), ["o-1"]);
    assert_eq!(acme.hits[0].title, "Red shirt");

    let globex = index.search(&query("globex", None, None)).unwrap();
    assert_eq!(offer_ids(&globex), ["o-1", "o-2"]);
    assert_eq!(globex.hits[0].title, "Globex shirt");

    // Query syntax cannot lift the tenant filter.
    for text in [
        "tenant:globex",
        "tenant:globex OR shirt",
        "*",
        "key:globex/o-2",
    ] {
        let page = index.search(&query("acme", None, Some(text))).unwrap();
        assert!(
            offer_ids(&page).iter().all(|id| *id == "o-1"),
            "{text}: {page:?}"
        );
        assert!(page.hits.iter().all(|h| h.title == "Red shirt"), "{text}");
    }
    assert_eq!(
        index.search(&query("initech", None, None)).unwrap().total,
        0
    );

    // Removing one tenant's offer leaves the other's alone.
    index.apply(&[remove("globex", "o-1")], "cp-2").unwrap();
    assert_eq!(index.search(&query("acme", None, None)).unwrap().total, 1);
    assert_eq!(
        offer_ids(&index.search(&query("globex", None, None)).unwrap()),
        ["o-2"]
    );
}

#[test]
fn remove_hides_and_is_idempotent() {
    let index = SearchIndex::open_in_ram().unwrap();
    index
        .apply(
            &[
                upsert("acme", listing("o-1", "GB", "Red shirt", 1500)),
                upsert("acme", listing("o-2", "GB", "Blue shirt", 1500)),
            ],
            "cp-1",
        )
        .unwrap();
    index.apply(&[remove("acme", "o-1")], "cp-2").unwrap();
    let page = index.search(&query("acme", None, Some("red"))).unwrap();
    assert_eq!(page.total, 0);
    assert!(page.hits.is_empty());

    // Removing again, or removing what never existed, is harmless.
    index
        .apply(&[remove("acme", "o-1"), remove("acme", "o-9")], "cp-3")
        .unwrap();
    assert_eq!(
        offer_ids(&index.search(&query("acme", None, None)).unwrap()),
        ["o-2"]
    );

    // Within one batch the order of changes holds: upsert then remove leaves nothing.
    index
        .apply(
            &[
                upsert("acme", listing("o-3", "GB", "Green shirt", 1500)),
                remove("acme", "o-3"),
            ],
            "cp-4",
        )
        .unwrap();
    assert_eq!(
        offer_ids(&index.search(&query("acme", None, None)).unwrap()),
        ["o-2"]
    );
}

#[test]
fn upsert_twice_keeps_one_document_with_the_new_values() {
    let index = SearchIndex::open_in_ram().unwrap();
    index
        .apply(
            &[upsert("acme", listing("o-1", "GB", "Red shirt", 1500))],
            "cp-1",
        )
        .unwrap();
    index
        .apply(
            &[upsert("acme", listing("o-1", "GB", "Red shirt", 1200))],
            "cp-2",
        )
        .unwrap();
    // A replayed batch changes nothing either.
    let again = listing("o-1", "GB", "Red shirt", 1200);
    index
        .apply(
            &[upsert("acme", again.clone()), upsert("acme", again)],
            "cp-2",
        )
        .unwrap();

    let page = index.search(&query("acme", None, Some("shirt"))).unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.hits[0].price_minor, 1200);

    // A new title replaces the old words too.
    index
        .apply(
            &[upsert("acme", listing("o-1", "GB", "Linen trousers", 1200))],
            "cp-3",
        )
        .unwrap();
    assert_eq!(
        index
            .search(&query("acme", None, Some("shirt")))
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        index
            .search(&query("acme", None, Some("trousers")))
            .unwrap()
            .total,
        1
    );
}

#[test]
fn text_search_ranks_the_matching_title_first() {
    let index = SearchIndex::open_in_ram().unwrap();
    let mut in_description = listing("o-1", "GB", "Summer dress", 3000);
    in_description.description = Some("Pairs well with a linen jacket".to_owned());
    index
        .apply(
            &[
                upsert("acme", in_description),
                upsert("acme", listing("o-2", "GB", "Linen jacket", 9000)),
                upsert("acme", listing("o-3", "GB", "Wool coat", 12000)),
            ],
            "cp-1",
        )
        .unwrap();

    let page = index
        .search(&query("acme", None, Some("linen jacket")))
        .unwrap();
    assert_eq!(offer_ids(&page), ["o-2", "o-1"]);
    assert_eq!(page.total, 2);
    assert!(page.hits[0].score > page.hits[1].score);
    assert!(page.hits[1].score > 0.0);

    // Case and accents are folded; brand and category are searched too.
    let mut cafe = listing("o-4", "GB", "Café crème mug", 800);
    cafe.brand = Some("Nordwerk".to_owned());
    index.apply(&[upsert("acme", cafe)], "cp-2").unwrap();
    assert_eq!(
        offer_ids(
            &index
                .search(&query("acme", None, Some("CAFE creme")))
                .unwrap()
        ),
        ["o-4"]
    );
    assert_eq!(
        offer_ids(
            &index
                .search(&query("acme", None, Some("nordwerk")))
                .unwrap()
        ),
        ["o-4"]
    );
    assert_eq!(
        index
            .search(&query("acme", None, Some("apparel")))
            .unwrap()
            .total,
        4
    );

    // Equal scores fall back to offer id order; blank text lists everything by offer id.
    let tied = index.search(&query("acme", None, Some("acme"))).unwrap();
    assert_eq!(offer_ids(&tied), ["o-1", "o-2", "o-3"]);
    let all = index.search(&query("acme", None, Some("   "))).unwrap();
    assert_eq!(offer_ids(&all), ["o-1", "o-2", "o-3", "o-4"]);
    assert!(all.hits.iter().all(|h| h.score == 0.0));
}

fn walk(index: &SearchIndex, mut q: SearchQuery) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = index.search(&q).unwrap();
        pages += 1;
        assert!(page.hits.len() <= q.limit.clamp(1, MAX_LIMIT));
        seen.extend(page.hits.iter().map(|h| h.offer_id.to_string()));
        match page.next_cursor {
            Some(cursor) => q.cursor = Some(cursor),
            None => return (seen, pages),
        }
    }
}

#[test]
fn pagination_walks_every_listing_exactly_once() {
    let index = SearchIndex::open_in_ram().unwrap();
    // Several commits make several segments; the walk must cross them in order.
    for batch in 0..5 {
        let changes: Vec<IndexChange> = (0..50)
            .map(|i| {
                let n = batch * 50 + i;
                let title = if n % 3 == 0 { "striped shirt" } else { "shirt" };
                upsert("acme", listing(&format!("o-{n:04}"), "GB", title, 100 + n))
            })
            .collect();
        index.apply(&changes, &format!("cp-{batch}")).unwrap();
    }
    index
        .apply(
            &[upsert("globex", listing("o-0001", "GB", "shirt", 1))],
            "cp-x",
        )
        .unwrap();

    let mut q = query("acme", Some("GB"), None);
    q.limit = 7;
    let (listed, pages) = walk(&index, q);
    assert_eq!(listed.len(), 250);
    assert_eq!(pages, 36);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "no text lists by offer id");

    let mut q = query("acme", None, Some("striped shirt"));
    q.limit = 9;
    let (ranked, _) = walk(&index, q);
    assert_eq!(ranked.len(), 250);
    assert_eq!(
        ranked.iter().collect::<BTreeSet<_>>().len(),
        250,
        "no duplicates"
    );
    assert!(ranked[..84]
        .iter()
        .all(|id| id[2..].parse::<i64>().unwrap() % 3 == 0));

    // Limits are clamped to 1..=100.
    let mut q = query("acme", None, None);
    q.limit = 0;
    assert_eq!(index.search(&q).unwrap().hits.len(), 1);
    q.limit = 10_000;
    let page = index.search(&q).unwrap();
    assert_eq!(page.hits.len(), MAX_LIMIT);
    assert_eq!(page.next_cursor.as_deref(), Some("100"));

    // A cursor past the end is an empty last page; a foreign one is the caller's error.
    q.cursor = Some("1000".to_owned());
    let past = index.search(&q).unwrap();
    assert!(past.hits.is_empty() && past.next_cursor.is_none() && past.total == 250);
    for bad in ["", "abc", "-1", "99999999999999999999999"] {
        q.cursor = Some(bad.to_owned());
        let err = index.search(&q).unwrap_err();
        assert!(err.is_bad_request(), "{bad}: {err}");
    }
}

#[test]
fn checkpoint_and_documents_persist_across_reopen() {
    let dir = TempDir::new("reopen");
    {
        let index = SearchIndex::open(&dir.0).unwrap();
        assert_eq!(index.checkpoint(), None);
        index
            .apply(
                &[
                    upsert("acme", listing("o-1", "GB", "Red shirt", 1500)),
                    upsert("acme", listing("o-2", "IN", "Red shirt", 99900)),
                ],
                "cp-1",
            )
            .unwrap();
        assert_eq!(index.checkpoint().as_deref(), Some("cp-1"));
    }
    {
        let index = SearchIndex::open(&dir.0).unwrap();
        assert_eq!(index.checkpoint().as_deref(), Some("cp-1"));
        let page = index.search(&query("acme", None, Some("red"))).unwrap();
        assert_eq!(offer_ids(&page), ["o-1", "o-2"]);

        // An empty batch still moves the checkpoint, and a repeated one is a no-op.
        index.apply(&[], "cp-2").unwrap();
        index.apply(&[], "cp-2").unwrap();
        index.apply(&[remove("acme", "o-1")], "cp-3").unwrap();
    }
    let index = SearchIndex::open(&dir.0).unwrap();
    assert_eq!(index.checkpoint().as_deref(), Some("cp-3"));
    assert_eq!(
        offer_ids(&index.search(&query("acme", None, None)).unwrap()),
        ["o-2"]
    );
}

#[test]
fn an_open_index_refuses_a_second_writer() {
    let dir = TempDir::new("lock");
    let _first = SearchIndex::open(&dir.0).unwrap();
    assert!(SearchIndex::open(&dir.0).is_err());
}

#[test]
fn weird_query_strings_never_fail() {
    let index = SearchIndex::open_in_ram().unwrap();
    index
        .apply(
            &[upsert("acme", listing("o-1", "GB", "Red shirt", 1500))],
            "cp-1",
        )
        .unwrap();
    let long = "shirt ".repeat(500);
    let weird = [
        "\"unbalanced",
        "AND OR",
        "OR",
        "NOT",
        "-",
        "+",
        "(",
        ")",
        "((shirt",
        "shirt)",
        "title:",
        ":",
        "nosuchfield:shirt",
        "listing:shirt",
        "price:[1 TO",
        "title:[a TO b}",
        "/[unclosed regex/",
        "/.*/",
        "*",
        "shirt*",
        "sh?rt",
        "~2",
        "shirt~",
        "shirt^",
        "shirt^abc",
        "*^2",
        "title:/bar/^2",
        "\\",
        "\"\"",
        "{}[]<>!@#$%^&*()",
        "日本語のシャツ",
        "शर्ट",
        "\u{0}\u{7}",
        long.as_str(),
    ];
    for text in weird {
        let page = index.search(&query("acme", None, Some(text)));
        assert!(page.is_ok(), "{text:?}: {page:?}");
    }
    // Lenient parsing still finds what the words say.
    let page = index
        .search(&query("acme", None, Some("\"red shirt")))
        .unwrap();
    assert_eq!(offer_ids(&page), ["o-1"]);
    let page = index.search(&query("acme", None, Some("shirt)"))).unwrap();
    assert_eq!(offer_ids(&page), ["o-1"]);
}
