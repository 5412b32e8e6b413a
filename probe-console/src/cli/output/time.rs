//! Times for people: UTC calendar dates and "5m ago" from Unix seconds, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `(year, month, day, hour, minute, second)` in UTC of `secs` since the Unix epoch.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rem / 3_600) as u32, (rem % 3_600 / 60) as u32, (rem % 60) as u32)
}

/// `2024-05-01 12:34:56 UTC`.
pub fn utc(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `2024-05-01T12:34:56Z` (RFC 3339), for JSON.
pub fn rfc3339(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// How long before `now` `then` was: `42s ago`, `5m ago`, `3h ago`, `2d ago`; `just now` for
/// times at or after `now`.
pub fn ago(then: u64, now: u64) -> String {
    let elapsed = now.saturating_sub(then);
    match elapsed {
        0 => "just now".to_owned(),
        1..60 => format!("{elapsed}s ago"),
        60..3_600 => format!("{}m ago", elapsed / 60),
        3_600..86_400 => format!("{}h ago", elapsed / 3_600),
        _ => format!("{}d ago", elapsed / 86_400),
    }
}

/// `2024-05-01 12:34:56 UTC (5m ago)`.
pub fn utc_ago(secs: u64) -> String {
    format!("{} ({})", utc(secs), ago(secs, now_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_are_right() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_714_566_896), "2024-05-01 12:34:56 UTC");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn ages_round_down_to_one_unit() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(200, 100), "just now");
        assert_eq!(ago(58, 100), "42s ago");
        assert_eq!(ago(0, 359), "5m ago");
        assert_eq!(ago(0, 3 * 3_600 + 59), "3h ago");
        assert_eq!(ago(0, 2 * 86_400 + 1), "2d ago");
    }
}
