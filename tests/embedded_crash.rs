//! Nothing lost, nothing doubled: a load across 20 tenants while `porch up` is killed with
//! SIGKILL and restarted. Clients retry with their Idempotency-Key, as a real client would.

mod common;

use common::load::{run_load, verify};
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_nothing_and_doubles_nothing() {
    let mut p = Porch::start().await;
    // 20 tenants × 25 products × 4 commands = 2,000 commands; killed half-way, restarted.
    let sent = run_load(&mut p, 20, 25, async |p: &mut Porch| {
        p.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        p.restart().await;
    })
    .await;
    verify(&p, &sent).await;
}
