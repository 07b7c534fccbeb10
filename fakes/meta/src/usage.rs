//! The catalog batch rate limit and the `X-Business-Use-Case-Usage` header that reports it.
//! Meta limits `items_batch` calls per catalog and reports usage as a percentage, throttling
//! (error 80014) from 100 %; porch paces itself from this header, so every answer carries it.
//! The fake's limit is a fixed window of `calls_per_window` calls that starts at a catalog's
//! first counted call.

use serde_json::json;
use std::time::{Duration, Instant};

/// The usage header's name.
pub const USAGE_HEADER: &str = "x-business-use-case-usage";

/// One catalog's calls in its current window.
#[derive(Debug, Default, Clone)]
pub(crate) struct RateWindow {
    started: Option<Instant>,
    calls: u32,
}

/// What the usage header reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Share of the window's calls used, 0 to 100.
    pub(crate) percent: u32,
    /// Minutes until calls are accepted again; 0 unless throttled.
    pub(crate) minutes_to_regain: u64,
}

impl Usage {
    pub(crate) const NONE: Usage = Usage {
        percent: 0,
        minutes_to_regain: 0,
    };

    /// The header's value: `{"<business>": [{"type": "catalog_batch", ...}]}`.
    pub(crate) fn header_value(self, business_id: &str) -> String {
        json!({
            business_id: [{
                "type": "catalog_batch",
                "call_count": self.percent,
                "total_cputime": self.percent,
                "total_time": self.percent,
                "estimated_time_to_regain_access": self.minutes_to_regain,
            }]
        })
        .to_string()
    }
}

/// Whole minutes, rounded up: never "0" while access is still blocked.
pub(crate) fn minutes_rounded_up(wait: Duration) -> u64 {
    wait.as_millis()
        .div_ceil(60_000)
        .try_into()
        .unwrap_or(u64::MAX)
}

impl RateWindow {
    /// Counts a call at `now` when the window has room for it; false when it is throttled.
    /// `limit` 0 admits everything and counts nothing.
    pub(crate) fn admit(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        if limit == 0 {
            return true;
        }
        if self.elapsed(now, window) {
            self.started = Some(now);
            self.calls = 0;
        }
        if self.calls >= limit {
            return false;
        }
        self.calls += 1;
        true
    }

    /// The usage at `now`.
    pub(crate) fn usage(&self, now: Instant, limit: u32, window: Duration) -> Usage {
        let Some(started) = self.started else {
            return Usage::NONE;
        };
        if limit == 0 || self.elapsed(now, window) {
            return Usage::NONE;
        }
        let percent = (u64::from(self.calls) * 100 / u64::from(limit)).min(100);
        let minutes_to_regain = if self.calls >= limit {
            minutes_rounded_up((started + window).saturating_duration_since(now))
        } else {
            0
        };
        Usage {
            percent: u32::try_from(percent).unwrap_or(100),
            minutes_to_regain,
        }
    }

    fn elapsed(&self, now: Instant, window: Duration) -> bool {
        self.started
            .is_none_or(|started| now.saturating_duration_since(started) >= window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_throttles_past_its_calls_and_frees_when_it_ends() {
        let mut window = RateWindow::default();
        let length = Duration::from_secs(90);
        let start = Instant::now();
        assert_eq!(window.usage(start, 3, length), Usage::NONE);
        assert!(window.admit(start, 3, length));
        assert_eq!(window.usage(start, 3, length).percent, 33);
        assert!(window.admit(start, 3, length));
        assert!(window.admit(start, 3, length));
        assert_eq!(
            window.usage(start, 3, length),
            Usage {
                percent: 100,
                minutes_to_regain: 2
            }
        );
        assert!(!window.admit(start + Duration::from_secs(89), 3, length));
        assert_eq!(
            window
                .usage(start + Duration::from_secs(89), 3, length)
                .minutes_to_regain,
            1
        );
        let later = start + length;
        assert_eq!(window.usage(later, 3, length), Usage::NONE);
        assert!(window.admit(later, 3, length));
        assert_eq!(window.usage(later, 3, length).percent, 33);
    }

    #[test]
    fn no_limit_admits_everything() {
        let mut window = RateWindow::default();
        let now = Instant::now();
        assert!((0..1000).all(|_| window.admit(now, 0, Duration::ZERO)));
        assert_eq!(window.usage(now, 0, Duration::ZERO), Usage::NONE);
    }

    #[test]
    fn the_header_names_the_business() {
        let value: serde_json::Value = serde_json::from_str(
            &Usage {
                percent: 100,
                minutes_to_regain: 3,
            }
            .header_value("biz"),
        )
        .expect("json");
        assert_eq!(value["biz"][0]["type"], "catalog_batch");
        assert_eq!(value["biz"][0]["call_count"], 100);
        assert_eq!(value["biz"][0]["estimated_time_to_regain_access"], 3);
    }
}
