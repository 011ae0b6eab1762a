//! Time as Maestro counts it: unix milliseconds, UTC windows.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

/// Milliseconds since the unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

// These run several times per call: plain integer formatting, not strftime.

/// `yyyymmddHHMM`: the minute window a timestamp falls in.
pub fn minute_window(ms: i64) -> String {
    let t = at(ms);
    format!("{:04}{:02}{:02}{:02}{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

/// `yyyymmdd`: the day window a timestamp falls in.
pub fn day_window(ms: i64) -> String {
    let t = at(ms);
    format!("{:04}{:02}{:02}", t.year(), t.month(), t.day())
}

/// `yyyy-mm-dd`: the stats date of a timestamp.
pub fn stats_date(ms: i64) -> String {
    let t = at(ms);
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

/// `yyyy-mm-ddTHH`: the call-log partition of a timestamp.
pub fn log_hour(ms: i64) -> String {
    let t = at(ms);
    format!("{:04}-{:02}-{:02}T{:02}", t.year(), t.month(), t.day(), t.hour())
}

/// `yyyy-mm-ddTHH:MM`: the minute of a timestamp, as minute stats rows are keyed.
pub fn stats_minute(ms: i64) -> String {
    let t = at(ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

/// RFC 3339 text of a timestamp, for humans and JSON.
pub fn rfc3339(ms: i64) -> String {
    at(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// End (exclusive, unix ms) of the minute window containing `ms`.
pub fn minute_window_end(ms: i64) -> i64 {
    (ms.div_euclid(60_000) + 1) * 60_000
}

/// End (exclusive, unix ms) of the UTC day containing `ms`.
pub fn day_window_end(ms: i64) -> i64 {
    (ms.div_euclid(86_400_000) + 1) * 86_400_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_utc_and_end_where_the_next_begins() {
        let t = 1_764_000_000_123; // 2025-11-24T16:00:00.123Z
        assert_eq!(minute_window(t), "202511241600");
        assert_eq!(day_window(t), "20251124");
        assert_eq!(stats_date(t), "2025-11-24");
        assert_eq!(log_hour(t), "2025-11-24T16");
        assert_eq!(minute_window_end(t), 1_764_000_060_000);
        assert_eq!(minute_window(minute_window_end(t)), "202511241601");
        assert_eq!(day_window(day_window_end(t)), "20251125");
        // Padding, and agreement with strftime across a year.
        let early = 1_767_229_384_000; // 2026-01-01T01:03:04Z
        assert_eq!(minute_window(early), "202601010103");
        assert_eq!(log_hour(early), "2026-01-01T01");
        for ms in (0..400).map(|d| early + d * 86_400_000 + d * 61_000) {
            assert_eq!(minute_window(ms), at(ms).format("%Y%m%d%H%M").to_string());
            assert_eq!(stats_date(ms), at(ms).format("%Y-%m-%d").to_string());
        }
    }
}
