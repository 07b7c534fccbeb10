//! Stock reservations for order systems (DESIGN §9): holds that cannot overbook, expire by
//! themselves, are committed when an order is placed or released, apply once per request id, and
//! move the buy box; availability checks in seed 004's shape. Runs on `porch up`, and on Kafka
//! and Cassandra with PORCH_TEST_BACKEND=distributed.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// The inventory events of one reservation (or all with `None`), by record type.
async fn inventory_events(p: &Porch, reservation: Option<&str>) -> Vec<(String, Value)> {
    p.topic("inventory.events")
        .await
        .into_iter()
        .filter(|r| reservation.is_none_or(|id| r["value"]["reservation_id"] == id))
        .map(|r| {
            let kind = r["record_type"]
                .as_str()
                .unwrap_or_default()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string();
            (kind, r["value"].clone())
        })
        .collect()
}

fn count(events: &[(String, Value)], kind: &str) -> usize {
    events.iter().filter(|(k, _)| k == kind).count()
}

/// The GB availability line of the product's only SKU: (on hand, reserved, available).
async fn gb_stock(p: &Porch, key: &str, product: &str) -> (i64, i64, i64) {
    let (s, view) = p.get(key, &format!("/v1/products/{product}")).await;
    assert_eq!(s, 200, "{view}");
    let line = &view["availability"]["GB"]["lines"][0];
    (
        line["on_hand"].as_i64().unwrap_or(-1),
        line["reserved"].as_i64().unwrap_or(-1),
        line["available"].as_i64().unwrap_or(-1),
    )
}

async fn reservation(p: &Porch, key: &str, id: &str) -> Value {
    let (s, body) = p
        .get(key, &format!("/v1/inventory/reservations/{id}"))
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn set_stock(p: &Porch, key: &str, sku: &str, on_hand: i64) {
    p.applied(
        Method::PUT,
        key,
        &format!("/v1/inventory/{sku}/lon-1"),
        json!({ "on_hand": on_hand }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_holds_on_fifty_units_hold_exactly_fifty() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    list_one_offer(&p, &key, "rush").await;
    set_stock(&p, &key, "rush-M", 50).await;
    let requests = (0..200).map(|i| {
        let p = &p;
        let key = &key;
        async move {
            let (s, body) = p
                .post(
                    key,
                    "/v1/inventory/reservations",
                    json!({ "sku": "rush-M", "region": "GB", "quantity": 1, "reservation_id": format!("rush-{i:03}") }),
                )
                .await;
            assert_eq!(s, 202, "{body}");
        }
    });
    futures::future::join_all(requests).await;
    let events = p
        .eventually("an outcome for every hold", 120, || async {
            let events = inventory_events(&p, None).await;
            (count(&events, "StockReserved") + count(&events, "ReservationFailed") >= 200)
                .then_some(events)
        })
        .await;
    assert_eq!(count(&events, "StockReserved"), 50);
    assert_eq!(count(&events, "ReservationFailed"), 150);
    for (_, failed) in events.iter().filter(|(k, _)| k == "ReservationFailed") {
        assert_eq!(failed["available"], 0, "{failed}");
        assert_eq!(failed["requested"], 1, "{failed}");
    }
    assert_eq!(gb_stock(&p, &key, "rush").await, (50, 50, 0));
    // A caller that waits on its command sees a refusal naming the shortfall.
    let body = p
        .command(
            Method::POST,
            &key,
            "/v1/inventory/reservations",
            json!({ "sku": "rush-M", "location": "lon-1", "quantity": 1 }),
        )
        .await;
    assert_eq!(body["status"], "REJECTED", "{body}");
    assert_eq!(body["reasons"][0]["code"], "INSUFFICIENT_STOCK", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_commit_and_release_and_a_request_applies_once() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    list_one_offer(&p, &key, "cart").await;
    set_stock(&p, &key, "cart-M", 5).await;
    let hold = |id: &str, quantity: i64, ttl: i64| json!({ "sku": "cart-M", "location": "lon-1", "quantity": quantity, "ttl_seconds": ttl, "reservation_id": id });

    // The same request twice: one hold.
    for _ in 0..2 {
        let (s, body) = p
            .post(&key, "/v1/inventory/reservations", hold("cart-a", 2, 2))
            .await;
        assert_eq!(s, 202, "{body}");
    }
    let held = p
        .eventually("cart-a held", 30, || async {
            let r = reservation(&p, &key, "cart-a").await;
            (r["status"] == "HELD").then_some(r)
        })
        .await;
    assert_eq!(held["holds"]["lon-1"], 2, "{held}");
    assert!(held["expires_at"].as_i64().is_some(), "{held}");
    assert_eq!(gb_stock(&p, &key, "cart").await, (5, 2, 3));

    // A 2 s hold lapses by itself, with no command: the units are sellable again.
    p.eventually("cart-a expired", 30, || async {
        (reservation(&p, &key, "cart-a").await["status"] == "EXPIRED").then_some(())
    })
    .await;
    assert_eq!(gb_stock(&p, &key, "cart").await, (5, 0, 5));
    let events = inventory_events(&p, Some("cart-a")).await;
    assert_eq!(count(&events, "StockReserved"), 1, "{events:?}");
    assert_eq!(count(&events, "ReservationExpired"), 1, "{events:?}");
    // Sent again after it expired: still applied once, not held again.
    let (s, _) = p
        .post(&key, "/v1/inventory/reservations", hold("cart-a", 2, 2))
        .await;
    assert_eq!(s, 202);

    // Committed: on hand falls by the held units. Released: available again.
    for (id, quantity) in [("cart-b", 3), ("cart-c", 1)] {
        let (s, body) = p
            .post(&key, "/v1/inventory/reservations", hold(id, quantity, 600))
            .await;
        assert_eq!(s, 202, "{body}");
    }
    p.eventually("both held", 30, || async {
        (gb_stock(&p, &key, "cart").await == (5, 4, 1)).then_some(())
    })
    .await;
    p.applied(
        Method::POST,
        &key,
        "/v1/inventory/reservations/cart-b/commit",
        json!({}),
    )
    .await;
    assert_eq!(gb_stock(&p, &key, "cart").await, (2, 1, 1));
    p.applied(
        Method::DELETE,
        &key,
        "/v1/inventory/reservations/cart-c",
        json!({}),
    )
    .await;
    assert_eq!(gb_stock(&p, &key, "cart").await, (2, 0, 2));
    assert_eq!(reservation(&p, &key, "cart-b").await["status"], "COMMITTED");
    assert_eq!(reservation(&p, &key, "cart-c").await["status"], "RELEASED");
    let events = inventory_events(&p, Some("cart-a")).await;
    assert_eq!(count(&events, "StockReserved"), 1, "held once: {events:?}");
    // Nothing lapses twice or after it ended.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = inventory_events(&p, None).await;
    assert_eq!(count(&all, "ReservationExpired"), 1, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_held_sku_leaves_search_until_its_hold_expires() {
    if distributed() {
        return; // the buy box follows holds through activation, the same code on both backends
    }
    let p = Porch::start().await;
    let key = admin_key("acme");
    let offer = list_one_offer(&p, &key, "last").await;
    set_stock(&p, &key, "last-M", 3).await;
    let in_search = || async {
        p.search(&key, "region=GB&limit=100")
            .await
            .iter()
            .any(|h| h["offer_id"] == offer.as_str())
    };
    p.eventually("listed", 30, || async { in_search().await.then_some(()) })
        .await;
    let (s, body) = p
        .post(
            &key,
            "/v1/inventory/reservations",
            json!({ "sku": "last-M", "region": "GB", "quantity": 3, "ttl_seconds": 3 }),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    p.eventually("gone from search while held", 30, || async {
        (!in_search().await).then_some(())
    })
    .await;
    p.eventually("back once the hold expired", 60, || async {
        in_search().await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_answers_seed_004_by_product_and_counts_only_what_sells() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    list_one_offer(&p, &key, "mug").await;
    list_one_offer(&p, &key, "jug").await;
    set_stock(&p, &key, "mug-M", 7).await;
    let check = |items: Value| {
        let p = &p;
        let key = &key;
        async move {
            let (s, body) = p
                .post(
                    key,
                    "/v1/products/check-availability",
                    json!({ "items": items }),
                )
                .await;
            assert_eq!(s, 200, "{body}");
            body
        }
    };
    let answer = check(json!([
        { "product_id": "mug", "quantity": 7 },
        { "product_id": "jug", "quantity": 2 }
    ]))
    .await;
    assert_eq!(answer["all_available"], true, "{answer}");
    assert_eq!(answer["items"][0]["requested"], 7);
    assert_eq!(answer["items"][0]["available"], 7);
    assert_eq!(answer["items"][0]["is_available"], true);
    let answer = check(json!([{ "product_id": "mug", "quantity": 8 }])).await;
    assert_eq!(answer["all_available"], false);
    assert_eq!(answer["items"][0]["is_available"], false);

    // An inactive product sells nothing, and says why.
    p.applied(Method::POST, &key, "/v1/products/jug/deactivate", json!({}))
        .await;
    let answer = p
        .eventually("the jug no longer sells", 30, || async {
            let a = check(json!([{ "sku": "jug-M", "region": "GB", "quantity": 1 }])).await;
            (a["items"][0]["available"] == 0).then_some(a)
        })
        .await;
    assert_eq!(answer["all_available"], false);
    assert_eq!(
        answer["items"][0]["reasons"][0]["code"], "PRODUCT_INACTIVE",
        "{answer}"
    );
    // Neither a product and a SKU, nor none: the item is named.
    let (s, body) = p
        .post(
            &key,
            "/v1/products/check-availability",
            json!({ "items": [{ "product_id": "mug", "sku": "mug-M", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(body.to_string().contains("items[0].product_id"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_saga_over_kafka_gets_one_outcome_per_request_with_the_processor_killed() {
    if !distributed() {
        return; // the Kafka contract: the distributed backend (the HTTP routes are above)
    }
    let mut p = Porch::start().await;
    let key = admin_key("acme");
    list_one_offer(&p, &key, "saga").await;
    set_stock(&p, &key, "saga-M", 10).await;
    let cluster = p.cluster().expect("a distributed porch").clone();
    let orders = 12;
    let mut saga = std::process::Command::new(python::python_venv());
    saga.arg(format!("{}/reservation_saga.py", python::PYTHON_DIR))
        .env(
            "PORCH_KAFKA",
            std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        )
        .env(
            "PORCH_REGISTRY_URL",
            format!("http://127.0.0.1:{}", cluster.registry_port),
        )
        .env("PORCH_TOPIC_PREFIX", &cluster.prefix)
        .env("PORCH_TENANT", "acme")
        .env("PORCH_PRODUCT", "saga")
        .env("PORCH_SKU", "saga-M")
        .env("PORCH_SELLER", "acme")
        .env("PORCH_REGION", "GB")
        .env("PORCH_ORDERS", orders.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let running = tokio::task::spawn_blocking(move || {
        let (out, killed) = output_within(&mut saga, Duration::from_secs(300));
        assert!(!killed, "the saga still ran after 300 s");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    // Midway through the saga, the inventory processor is SIGKILLed and started again.
    p.eventually("the saga's first outcomes", 120, || async {
        (p.topic_len("inventory.reservation.outcomes").await >= 6).then_some(())
    })
    .await;
    p.kill_role("inventory");
    p.start_processor("inventory", "inventory");
    let out = running.await.unwrap();
    let summary: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the saga's summary: {e}: {out}"));
    let sent = summary["sent"].as_array().expect("requests sent");
    assert!(sent.len() >= orders, "{summary}");
    // On the topic itself: one outcome per request, whatever the crash did.
    let outcomes = p.topic("inventory.reservation.outcomes").await;
    let mut commits = 0;
    for request in sent {
        let id = request["request_id"].as_str().unwrap();
        let mine: Vec<&Value> = outcomes
            .iter()
            .filter(|o| o["value"]["request_id"] == id)
            .collect();
        assert_eq!(mine.len(), 1, "{request}: {mine:?}");
        let result = mine[0]["value"]["result"].as_str().unwrap();
        let expected = match request["kind"].as_str().unwrap() {
            "reserve" => "RESERVED",
            "CommitReservation" => {
                commits += 1;
                "COMMITTED"
            }
            _ => "RELEASED",
        };
        assert_eq!(result, expected, "{request}");
    }
    assert_eq!(commits, orders / 2);
    assert_eq!(
        gb_stock(&p, &key, "saga").await,
        (10 - commits as i64, 0, 10 - commits as i64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_sku_takes_a_lane_of_its_own_flagged_or_detected_and_its_releases_follow() {
    let p = Porch::start().await;
    let key = admin_key("acme");
    list_one_offer(&p, &key, "flash").await;
    list_one_offer(&p, &key, "calm").await;
    set_stock(&p, &key, "flash-M", 500).await;
    set_stock(&p, &key, "calm-M", 500).await;
    let lane = "inventory.hot.requests";

    // Flagged by the merchant: its reservations and their releases take the hot lane.
    let (s, flag) = p
        .req(
            Method::PUT,
            &key,
            "/v1/inventory/flash-M/hot",
            Some(json!({ "hot": true })),
        )
        .await;
    assert_eq!(s, 200, "{flag}");
    assert_eq!(
        (flag["hot"].clone(), flag["flagged"].clone()),
        (json!(true), json!(true))
    );
    let (s, refused) = p
        .req(
            Method::PUT,
            &reader_key("acme"),
            "/v1/inventory/flash-M/hot",
            Some(json!({ "hot": false })),
        )
        .await;
    assert_eq!(s, 403, "{refused}");
    let held = p
        .command(
            Method::POST,
            &key,
            "/v1/inventory/reservations",
            json!({ "sku": "flash-M", "region": "GB", "quantity": 2, "reservation_id": "flash-1" }),
        )
        .await;
    assert_eq!(held["status"], "APPLIED", "{held}");
    assert_eq!(p.topic_len(lane).await, 1);
    p.applied(
        Method::DELETE,
        &key,
        "/v1/inventory/reservations/flash-1",
        json!({}),
    )
    .await;
    assert_eq!(
        p.topic_len(lane).await,
        2,
        "the release followed its reservation"
    );
    assert_eq!(reservation(&p, &key, "flash-1").await["status"], "RELEASED");
    assert_eq!(
        p.topic_len("inventory.commands").await,
        4,
        "stock only, not the holds"
    );

    // Detected by its rate: a burst on another SKU moves it to the lane, and every request is
    // decided once.
    let burst = (0..120).map(|i| {
        let p = &p;
        let key = &key;
        async move {
            let (s, body) = p
                .post(
                    key,
                    "/v1/inventory/reservations",
                    json!({ "sku": "calm-M", "region": "GB", "quantity": 1, "reservation_id": format!("calm-{i:03}") }),
                )
                .await;
            assert_eq!(s, 202, "{body}");
        }
    });
    futures::future::join_all(burst).await;
    let (_, shown) = p.get(&key, "/v1/inventory/calm-M/hot").await;
    assert_eq!(shown["detected"], true, "{shown}");
    assert!(p.topic_len(lane).await > 2, "the burst took the lane");
    p.eventually("every hold of the burst", 60, || async {
        (gb_stock(&p, &key, "calm").await == (500, 120, 380)).then_some(())
    })
    .await;
}
