//! Time: the wall-clock source behind a trait (so round logic is testable without real time)
//! and RFC 3339 formatting without a date library; `Retry-After` parsing over `httpdate`.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` is taken at: a server asking for more gets a day (callers
/// cap it further at their own longest backoff).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Longest `Retry-After` value read; anything longer is not a valid one.
const RETRY_AFTER_MAX_LEN: usize = 64;

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date (IMF-fixdate, and the
/// obsolete RFC 850 and asctime forms senders may still use). A date in the past is 0, a delay
/// past [`MAX_RETRY_AFTER`] is capped there; anything else (empty, negative, fractional,
/// overlong, garbage) is `None`, and the caller falls back to its own backoff.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() || v.len() > RETRY_AFTER_MAX_LEN {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: a delay. More digits than a u64 holds is still a (very long) delay.
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Wall-clock source, so the round logic is testable without real time.
pub trait Clock: Send + Sync {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Unix milliseconds now, from the system clock.
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// Formats unix milliseconds as RFC 3339 UTC (`2026-11-26T16:30:00.123Z`), without a clock or
/// a date library (civil-from-days, H. Hinnant's algorithm).
pub fn rfc3339_utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_refuses_garbage() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let d = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(parse_retry_after("120", now), d(120));
        assert_eq!(parse_retry_after(" 0 ", now), d(0));
        // Capped: a huge delay, even past u64, is a day.
        assert_eq!(parse_retry_after("999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        // The three HTTP-date forms.
        for date in [
            "Sun, 06 Nov 1994 08:50:07 GMT",
            "Sunday, 06-Nov-94 08:50:07 GMT",
            "Sun Nov  6 08:50:07 1994",
        ] {
            assert_eq!(parse_retry_after(date, now), d(30), "{date}");
        }
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            d(0),
            "a date in the past"
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 19:31:17 GMT", at(1_795_721_477 - 90)),
            d(90)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", at(0)),
            d(0)
        );
        assert_eq!(
            parse_retry_after("Fri, 06 Nov 2099 08:49:37 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        for garbage in [
            "",
            "soon",
            "-5",
            "1.5",
            "+3",
            "0x10",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "06 Nov 1994",
            &"9".repeat(65),
            &format!("Sun, 06 Nov 1994 08:49:37 GMT{}", " x".repeat(40)),
        ] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }
}
