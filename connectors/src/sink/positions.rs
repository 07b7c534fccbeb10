//! Where a connector may commit: per input partition, past every record read whose work is done,
//! and not past the first one still under way (requests finish out of order when batches run
//! side by side).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
struct Part {
    /// Offsets read and not done.
    open: BTreeSet<u64>,
    /// One past the last offset read.
    next_read: Option<u64>,
    /// The position last handed out for commit.
    committed: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Positions {
    parts: BTreeMap<(String, u32), Part>,
}

impl Positions {
    pub fn read(&mut self, topic: &str, partition: u32, offset: u64) {
        let p = self
            .parts
            .entry((topic.to_string(), partition))
            .or_default();
        p.open.insert(offset);
        p.next_read = Some(p.next_read.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    pub fn done(&mut self, topic: &str, partition: u32, offset: u64) {
        if let Some(p) = self.parts.get_mut(&(topic.to_string(), partition)) {
            p.open.remove(&offset);
        }
    }

    /// Positions that moved since last asked: (topic, partition, next offset to read).
    pub fn committable(&mut self) -> Vec<(String, u32, u64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &mut self.parts {
            let Some(next_read) = p.next_read else {
                continue;
            };
            let next = p.open.first().copied().unwrap_or(next_read);
            if p.committed.is_none_or(|c| next > c) {
                p.committed = Some(next);
                out.push((topic.clone(), *partition, next));
            }
        }
        out
    }

    /// Whether any position could move.
    pub fn has_committable(&self) -> bool {
        self.parts.values().any(|p| {
            p.next_read.is_some_and(|n| {
                let next = p.open.first().copied().unwrap_or(n);
                p.committed.is_none_or(|c| next > c)
            })
        })
    }

    /// Hands these positions out again: their commit failed.
    pub fn uncommit(&mut self, positions: &[(String, u32, u64)]) {
        for (topic, partition, _) in positions {
            if let Some(p) = self.parts.get_mut(&(topic.clone(), *partition)) {
                p.committed = None;
            }
        }
    }

    /// Forgets everything (the input is read again from its committed positions).
    pub fn clear(&mut self) {
        self.parts.clear();
    }

    /// Keeps only the partitions `keep` says are still owned.
    pub fn retain(&mut self, keep: impl Fn(&str, u32) -> bool) {
        self.parts.retain(|(t, p), _| keep(t, *p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_waits_for_the_first_record_still_under_way() {
        let mut p = Positions::default();
        for o in 10..15 {
            p.read("t", 0, o);
        }
        p.done("t", 0, 10);
        p.done("t", 0, 12);
        assert_eq!(p.committable(), vec![("t".into(), 0, 11)]);
        assert!(p.committable().is_empty(), "nothing moved since");
        p.done("t", 0, 11);
        p.done("t", 0, 13);
        p.done("t", 0, 14);
        assert_eq!(p.committable(), vec![("t".into(), 0, 15)]);
    }

    #[test]
    fn partitions_move_on_their_own() {
        let mut p = Positions::default();
        p.read("t", 0, 1);
        p.read("t", 1, 7);
        p.done("t", 1, 7);
        assert!(p.has_committable());
        assert_eq!(
            p.committable(),
            vec![("t".into(), 0, 1), ("t".into(), 1, 8)]
        );
        assert!(!p.has_committable());
    }
}
