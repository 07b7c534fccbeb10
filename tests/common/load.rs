//! A load of commands across tenants, with a fault in the middle, and the checks that nothing
//! was lost or doubled afterwards: the crash suites of both backends share them.
#![allow(dead_code)]

use super::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Sent {
    pub tenant: String,
    pub module: Module,
    pub command_id: String,
    pub aggregate_id: String,
    /// When its 202 came.
    pub accepted_at: Instant,
}

/// Sends one command until it is accepted, retrying through the crash with the same key.
async fn send(
    http: &reqwest::Client,
    port: u16,
    tenant: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
    idem: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = http
            .request(method.clone(), format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(admin_key(tenant))
            .header("Idempotency-Key", idem)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(r) = r {
            let status = r.status().as_u16();
            if status == 202 {
                return r.json().await.unwrap();
            }
            assert!(
                status >= 500,
                "{path} refused with {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{path} never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tenant_load(
    http: reqwest::Client,
    port: u16,
    tenant: String,
    products: usize,
    accepted: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;
    for i in 0..products {
        let pid = format!("p{i:03}");
        let sku = format!("{pid}-s");
        let steps: Vec<(Module, reqwest::Method, String, Value)> = vec![
            (
                Module::Product,
                post.clone(),
                "/v1/products".into(),
                product_body(&pid, &format!("Item {pid} of {tenant}"), "apparel", true),
            ),
            (
                Module::Variant,
                post.clone(),
                format!("/v1/products/{pid}/variants"),
                json!({ "variants": [{ "sku": sku }] }),
            ),
            (
                Module::Offer,
                post.clone(),
                "/v1/offers".into(),
                json!({ "sku": sku, "region": "GB", "price": { "amount_minor": 1000 + i, "currency": "GBP" } }),
            ),
            (
                Module::Inventory,
                put.clone(),
                format!("/v1/inventory/{sku}/lon-1"),
                json!({ "on_hand": 5 }),
            ),
        ];
        for (n, (module, method, path, body)) in steps.into_iter().enumerate() {
            let idem = format!("{tenant}-{pid}-{n}");
            let a = send(&http, port, &tenant, method, &path, &body, &idem).await;
            accepted.fetch_add(1, Ordering::Relaxed);
            sent.push(Sent {
                tenant: tenant.clone(),
                module,
                command_id: a["command_id"].as_str().unwrap().to_string(),
                aggregate_id: a["aggregate_id"].as_str().unwrap().to_string(),
                accepted_at: Instant::now(),
            });
        }
    }
    sent
}

/// Runs `products` products × 4 commands for each of `tenants` tenants (t00, t01, …), and
/// calls `fault` once half of the commands are accepted. Returns every accepted command.
pub async fn run_load<F>(p: &mut Porch, tenants: usize, products: usize, fault: F) -> Vec<Sent>
where
    F: AsyncFnOnce(&mut Porch),
{
    let names: Vec<String> = (0..tenants).map(|i| format!("t{i:02}")).collect();
    for t in &names {
        let (s, b) = p
            .post(
                &admin_key(t),
                "/v1/locations",
                json!({ "location_id": "lon-1", "region": "GB" }),
            )
            .await;
        assert!(s == 200 || s == 201, "{b}");
    }
    let total = tenants * products * 4;
    let accepted = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = names
        .iter()
        .map(|t| {
            tokio::spawn(tenant_load(
                p.http.clone(),
                p.port,
                t.clone(),
                products,
                accepted.clone(),
            ))
        })
        .collect();
    while accepted.load(Ordering::Relaxed) < total / 2 {
        if tasks.iter().any(|t| t.is_finished()) {
            // A client stopped early: surface its failure instead of waiting for ever.
            for t in tasks {
                t.await.unwrap();
            }
            panic!("a tenant's load ended before the fault");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_fault = accepted.load(Ordering::Relaxed);
    fault(p).await;
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    assert_eq!(sent.len(), total);
    assert!(at_fault < sent.len(), "the fault happened mid-load");
    sent
}

/// Every accepted command APPLIED, on its commands topic once; its events once each; no event
/// id twice on any topic; each tenant's search equal to its offers.
pub async fn verify(p: &Porch, sent: &[Sent]) {
    let tenants: Vec<String> = {
        let mut t: Vec<String> = sent.iter().map(|s| s.tenant.clone()).collect();
        t.sort();
        t.dedup();
        t
    };
    // Every accepted command reaches its outcome, within two minutes of the load's end
    // (after a fault a processor may first have to join its group again).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for s in sent {
        let (code, st) = loop {
            let (code, st) = p
                .get(
                    &admin_key(&s.tenant),
                    &format!("/v1/commands/{}?wait=30000", s.command_id),
                )
                .await;
            if code != 200 || st["status"] != "ACCEPTED" || std::time::Instant::now() > deadline {
                break (code, st);
            }
        };
        assert_eq!(code, 200, "{st}");
        if st["status"] != "APPLIED" {
            // Where the command stands on its topic tells a command never written from one
            // written and not (or not visibly) handled.
            let topic = format!("{}.commands", s.module);
            let on_topic: Vec<String> = p
                .topic(&topic)
                .await
                .iter()
                .filter(|r| r["value"]["envelope"]["command_id"] == s.command_id.as_str())
                .map(|r| format!("partition {} offset {}", r["partition"], r["offset"]))
                .collect();
            panic!("{st} is not APPLIED; on {topic}: {on_topic:?}");
        }
    }

    // Each command is on its commands topic exactly once.
    let mut by_module: HashMap<Module, Vec<&Sent>> = HashMap::new();
    for s in sent {
        by_module.entry(s.module).or_default().push(s);
    }
    for (module, cmds) in &by_module {
        let records = p.topic(&format!("{module}.commands")).await;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in &records {
            *counts
                .entry(
                    r["value"]["envelope"]["command_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
                .or_default() += 1;
        }
        // `porch up` appends a command and its acceptance in one transaction: exactly once.
        // The distributed ingest produces to Kafka and records acceptance in the store; when the
        // store or the broker goes away between the two, a retry with the same Idempotency-Key
        // produces the same command (same command id) again, which its processor applies once.
        let exact = p.cluster().is_none();
        for c in cmds {
            let n = counts.get(&c.command_id).copied().unwrap_or(0);
            assert!(
                n == 1 || (!exact && n > 1),
                "{module} command {} is on its topic {n} times",
                c.command_id
            );
        }
        let distinct: HashSet<&String> = counts.keys().collect();
        assert_eq!(
            distinct.len(),
            cmds.len(),
            "{module}.commands holds exactly the accepted commands"
        );
        if records.len() > cmds.len() {
            println!(
                "{module}.commands: {} records for {} commands (redelivered after a fault)",
                records.len(),
                cmds.len()
            );
        }
    }

    // Each command's effect is in its events topic exactly once, and no event appears twice.
    let expected: HashMap<Module, &[&str]> = HashMap::from([
        (Module::Product, &["ProductCreated"][..]),
        (Module::Variant, &["VariantsCreated"][..]),
        (Module::Offer, &["OfferCreated"][..]),
        (
            Module::Inventory,
            &["StockAdjusted", "InventoryAvailable"][..],
        ),
    ]);
    let mut all_event_ids = HashSet::new();
    for (module, cmds) in &by_module {
        let events = p.topic(&format!("{module}.events")).await;
        let mut per_cause: HashMap<String, Vec<String>> = HashMap::new();
        for e in &events {
            let env = &e["value"]["envelope"];
            assert!(
                all_event_ids.insert(env["event_id"].as_str().unwrap().to_string()),
                "event {} appears twice",
                env["event_id"]
            );
            let ty = e["record_type"]
                .as_str()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .to_string();
            per_cause
                .entry(env["causation_id"].as_str().unwrap().to_string())
                .or_default()
                .push(ty);
        }
        for c in cmds {
            let got = per_cause.get(&c.command_id).cloned().unwrap_or_default();
            assert_eq!(
                got, expected[module],
                "{module} events of command {}",
                c.command_id
            );
        }
    }
    for topic in ["activation.events", "search.events"] {
        let mut seen: HashMap<String, Value> = HashMap::new();
        for e in p.topic(topic).await {
            let id = e["value"]["envelope"]["event_id"]
                .as_str()
                .unwrap()
                .to_string();
            let place = json!({ "partition": e["partition"], "offset": e["offset"], "timestamp": e["timestamp"] });
            if let Some(first) = seen.get(&id) {
                panic!("{topic}: event {id} appears twice: at {first} and at {place}");
            }
            assert!(
                all_event_ids.insert(id.clone()),
                "{topic}: event {id} appears twice"
            );
            seen.insert(id, place);
        }
    }

    // The final search is right for every tenant: all its offers, in GB, once each.
    for t in &tenants {
        let mut want: Vec<String> = sent
            .iter()
            .filter(|s| &s.tenant == t && s.module == Module::Offer)
            .map(|s| s.aggregate_id.clone())
            .collect();
        want.sort();
        let key = admin_key(t);
        let got = p
            .eventually(&format!("{t}'s listings visible"), 60, || async {
                let hits = p.search(&key, "region=GB&limit=100").await;
                let mut ids: Vec<String> = hits
                    .iter()
                    .map(|h| h["offer_id"].as_str().unwrap().to_string())
                    .collect();
                ids.sort();
                (ids.len() >= want.len()).then_some(ids)
            })
            .await;
        assert_eq!(got, want, "tenant {t}");
    }
}
