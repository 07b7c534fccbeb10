//! The fake's random draws come from a seeded SplitMix64, so a run with the same seed and the
//! same sequence of calls draws the same faults and poll counts. Quality is not the
//! point: repeatability and no dependency are.

/// SplitMix64 (Steele, Lea and Flood): one 64-bit state, a fixed increment, a mixing step.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64's mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `low..=high` (`low <= high`).
    pub(crate) fn between(&mut self, low: u32, high: u32) -> u32 {
        let span = u64::from(high - low) + 1;
        low + (self.next_u64() % span) as u32
    }

    /// Whether an event of probability `p` happens.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One of `choices`, each equally likely; `None` when there is none.
    pub(crate) fn pick<T: Copy>(&mut self, choices: &[T]) -> Option<T> {
        if choices.is_empty() {
            return None;
        }
        let index = (self.next_u64() % choices.len() as u64) as usize;
        choices.get(index).copied()
    }

    /// `len` letters and digits, for trace ids and handles.
    pub(crate) fn alphanumeric(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                let index = (self.next_u64() % ALPHANUMERIC.len() as u64) as usize;
                char::from(ALPHANUMERIC[index])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_numbers() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let drawn: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(drawn, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(drawn, (0..5).map(|_| c.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn between_covers_both_ends_and_nothing_else() {
        let mut rng = Rng::new(7);
        let drawn: Vec<u32> = (0..1000).map(|_| rng.between(2, 4)).collect();
        assert!(drawn.iter().all(|n| (2..=4).contains(n)));
        for n in 2..=4 {
            assert!(drawn.contains(&n), "{n} never drawn");
        }
        assert_eq!(rng.between(3, 3), 3);
    }

    #[test]
    fn chance_follows_the_probability() {
        let mut rng = Rng::new(1);
        let hits = (0..10_000).filter(|_| rng.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
    }
}
