//! Times as Mercado Libre writes them: items carry ISO 8601 dates (`date_created`,
//! `last_updated`), and an access token carries its creation as `MMddHH`. The fake keeps
//! milliseconds since the Unix epoch and turns them into text here, in UTC, without a date
//! library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, comparable across processes (the benchmark reads them
/// over HTTP).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A UTC date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`, for the proleptic Gregorian calendar.
    fn from_ms(ms: u64) -> Self {
        let days = (ms / 86_400_000) as i64;
        let in_day = ms % 86_400_000;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: in_day / 3_600_000,
            minute: in_day / 60_000 % 60,
            second: in_day / 1_000 % 60,
            millis: in_day % 1_000,
        }
    }
}

/// `2024-05-06T07:08:09.010Z`.
pub(crate) fn iso8601(ms: u64) -> String {
    let t = Civil::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

/// `MMddHH`, the creation stamp inside an access token (`APP_USR-…-090515-…`).
pub(crate) fn token_stamp(ms: u64) -> String {
    let t = Civil::from_ms(ms);
    format!("{:02}{:02}{:02}", t.month, t.day, t.hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_and_known_days_read_right() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day) at 12:34:56.789.
        assert_eq!(iso8601(951_827_696_789), "2000-02-29T12:34:56.789Z");
        // 2024-12-31 23:59:59.999, the last millisecond of a leap year.
        assert_eq!(iso8601(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        assert_eq!(iso8601(1_735_689_600_000), "2025-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_token_stamp_is_month_day_hour() {
        assert_eq!(token_stamp(951_827_696_789), "022912");
        assert_eq!(token_stamp(0), "010100");
    }
}
