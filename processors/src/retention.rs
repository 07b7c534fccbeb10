//! Retention of the embedded log. Records of a topic with a finite retention go once they are
//! older than it (commands after the command retention, 7 days unless set), never before every
//! consumer group has read them; with a command go its outcome and its idempotency key. Events
//! have no retention: they are the changelog and the history. A pass runs inside a pipeline
//! round, so what it removes goes atomically with that round, and is bounded, so a round stays
//! short; a pass that used its whole budget is followed by another soon.

use crate::store::{key, tables};
use porch_topics::{Catalogue, LogError, LogTxn};
use std::time::{Duration, Instant};

/// Entries (records and rows) one pass removes at most.
const BUDGET: usize = 20_000;

pub struct Retention {
    /// Topics with a finite retention, in microseconds.
    topics: Vec<(String, i64)>,
    commands: i64,
    partitions: u32,
    every: Duration,
    next: Instant,
}

impl Retention {
    /// The catalogue's retentions, with `commands` for every topic of commands and for the
    /// commands' outcomes and idempotency keys.
    pub fn new(catalogue: &Catalogue, commands: Duration) -> Self {
        let commands = commands.as_micros().min(i64::MAX as u128) as i64;
        let topics = catalogue
            .topics
            .iter()
            .filter(|t| t.retention_ms > 0)
            .map(|t| {
                let retention = if porch_topics::carries_commands(&t.name) {
                    commands
                } else {
                    t.retention_ms.saturating_mul(1000)
                };
                (t.name.clone(), retention)
            })
            .collect();
        // Often enough that nothing outlives its retention by much more than a quarter of it.
        let every = Duration::from_micros((commands / 4).max(0) as u64)
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        Self {
            topics,
            commands,
            partitions: catalogue.partitions,
            every,
            next: Instant::now() + every,
        }
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// One pass at `now` (microseconds); returns how many records and rows it removed.
    pub fn run(&mut self, txn: &mut LogTxn<'_>, now: i64) -> Result<usize, LogError> {
        let mut budget = BUDGET;
        let least = txn.least_positions()?;
        for (topic, retention) in &self.topics {
            for p in 0..self.partitions {
                if budget == 0 {
                    break;
                }
                // Never past what a group has still to read.
                let below = least.get(&(topic.clone(), p)).copied().unwrap_or(u64::MAX);
                budget -= txn.trim(topic, p, now - retention, below, budget)?;
            }
        }
        let cutoff = format!("{:020}", (now - self.commands).max(0));
        let expired = txn.range(tables::COMMAND_EXPIRY, "", &cutoff, budget / 3)?;
        for (k, idempotency_key) in &expired {
            let mut parts = k.splitn(3, '/').skip(1);
            if let (Some(tenant), Some(command)) = (parts.next(), parts.next()) {
                txn.remove(tables::COMMAND, &key(&[tenant, command]))?;
                if !idempotency_key.is_empty() {
                    let idem = String::from_utf8_lossy(idempotency_key);
                    txn.remove(tables::IDEMPOTENCY, &key(&[tenant, &idem]))?;
                }
            }
            txn.remove(tables::COMMAND_EXPIRY, k)?;
        }
        budget = budget.saturating_sub(expired.len() * 3);
        let removed = BUDGET - budget;
        // A pass that ran out of budget has more to do.
        self.next = Instant::now()
            + if budget == 0 {
                Duration::from_millis(100)
            } else {
                self.every
            };
        if removed > 0 {
            tracing::debug!(removed, "retention pass");
        }
        Ok(removed)
    }
}
