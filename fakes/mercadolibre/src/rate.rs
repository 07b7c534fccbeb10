//! A seller's rate limit. Mercado Libre limits calls per application and per seller without
//! publishing the numbers, and answers 429 past them; the fake's limit is a fixed window of
//! `calls_per_window` API calls per seller, starting at the seller's first counted call.

use std::time::{Duration, Instant};

/// One seller's calls in its current window.
#[derive(Debug, Default, Clone)]
pub(crate) struct RateWindow {
    started: Option<Instant>,
    calls: u32,
}

impl RateWindow {
    /// Counts a call at `now` when the window has room for it; false when it is throttled.
    /// `limit` 0 admits everything and counts nothing.
    pub(crate) fn admit(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        if limit == 0 {
            return true;
        }
        let elapsed = self
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= window);
        if elapsed {
            self.started = Some(now);
            self.calls = 0;
        }
        if self.calls >= limit {
            return false;
        }
        self.calls += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_throttles_past_its_calls_and_frees_when_it_ends() {
        let mut window = RateWindow::default();
        let length = Duration::from_secs(10);
        let start = Instant::now();
        assert!(window.admit(start, 2, length));
        assert!(window.admit(start, 2, length));
        assert!(!window.admit(start + Duration::from_secs(9), 2, length));
        assert!(window.admit(start + length, 2, length));
    }

    #[test]
    fn no_limit_admits_everything() {
        let mut window = RateWindow::default();
        let now = Instant::now();
        assert!((0..1000).all(|_| window.admit(now, 0, Duration::ZERO)));
    }
}
