//! Sentry's rate limits, honoured per data category: `X-Sentry-Rate-Limits`, else `Retry-After`
//! (60 s for a bare 429) for every category. While a category is limited nothing of it is sent:
//! alert events wait in the outbox (a deferral, not a failed attempt), check-ins are skipped and
//! counted.
//!
//! Two keepers, one per kind of request:
//! - Events (alert events and the daemon's own) follow [`EventLimits`], the SDK's
//!   [`sentry::transports::RateLimiter`] (the one Sentry's own transports use), read as those
//!   transports read an answer. The limiter is compiled with the SDK's `httpdate` feature
//!   alone: it needs no transport feature, so no second HTTP stack.
//! - Check-ins follow [`RateLimits`]: the SDK's limiter has no `monitor` category (0.49 knows
//!   `error`, `session`, `transaction`, `attachment`, `log_item` and `trace_metric`; a
//!   `monitor` entry of the header is ignored by it).
//!
//! Header grammar (Sentry's "Rate Limiting" developer documentation): a comma-separated list of
//! `retry_after:categories:scope[:reason_code[:namespaces]]`, `retry_after` in seconds,
//! `categories` separated by `;`, empty for all.

use std::time::{Duration, Instant, SystemTime};

/// What a request sends, as Sentry's rate limits name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Events: the `error` category, which Sentry's ingestion counts message events in (see
    /// [`EventLimits`]; the sink asks it). [`RateLimits`] pauses them on a `default` entry too.
    Event,
    /// Crons check-ins: the `monitor` category.
    Monitor,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Event => "error",
            Category::Monitor => "monitor",
        }
    }

    fn limited_by(self, name: &str) -> bool {
        match self {
            Category::Event => name == "error" || name == "default",
            Category::Monitor => name == "monitor",
        }
    }
}

/// The wait of an entry without a readable `retry_after`, and of a bare 429.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The longest a category is paused for by one answer (a quota past it is asked again then).
pub const MAX_WAIT: Duration = crate::time::MAX_RETRY_AFTER;

/// Longest `X-Sentry-Rate-Limits` value read; a longer one is ignored as a whole.
const HEADER_MAX_LEN: usize = 4096;

/// Until when each category is paused: `X-Sentry-Rate-Limits` on any answer, else a 429's
/// `Retry-After`. The sink reads it for check-ins (`monitor`); events follow [`EventLimits`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RateLimits {
    event: Option<Instant>,
    monitor: Option<Instant>,
}

impl RateLimits {
    /// How long `category` is still paused at `now`, if it is.
    pub fn remaining(&self, category: Category, now: Instant) -> Option<Duration> {
        let until = match category {
            Category::Event => self.event,
            Category::Monitor => self.monitor,
        }?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Reads one answer: its status, `X-Sentry-Rate-Limits` and `Retry-After` headers. A pause
    /// only ever grows: a shorter one never ends a longer one early.
    pub fn update(
        &mut self,
        status: u16,
        rate_limits: Option<&str>,
        retry_after: Option<&str>,
        now: Instant,
        wall: SystemTime,
    ) {
        if let Some(header) = rate_limits.filter(|h| h.len() <= HEADER_MAX_LEN) {
            for (wait, categories) in parse(header) {
                for c in [Category::Event, Category::Monitor] {
                    if categories.is_empty() || categories.iter().any(|n| c.limited_by(n)) {
                        self.pause(c, now + wait);
                    }
                }
            }
        } else if status == 429 {
            let wait = retry_after
                .and_then(|v| crate::time::parse_retry_after(v, wall))
                .unwrap_or(DEFAULT_WAIT);
            self.pause(Category::Event, now + wait);
            self.pause(Category::Monitor, now + wait);
        }
    }

    fn pause(&mut self, c: Category, until: Instant) {
        let slot = match c {
            Category::Event => &mut self.event,
            Category::Monitor => &mut self.monitor,
        };
        *slot = Some(slot.map_or(until, |u| u.max(until)));
    }
}

/// The pause of the `error` category, as the SDK keeps it: the category Sentry's ingestion counts
/// message events (type `default`, the alert events) in as well as errors (Relay,
/// `relay-base-schema/src/data_category.rs`: `impl From<EventType> for DataCategory` maps
/// `EventType::Default | EventType::Error` to `DataCategory::Error`).
///
/// Unlike [`RateLimits`] it reads `Retry-After` on any answer (a 503 with one pauses events
/// too), a later entry replaces an earlier one of its category, and it counts in wall-clock
/// time ([`SystemTime`]), as the SDK does.
#[derive(Debug, Default)]
pub struct EventLimits(sentry::transports::RateLimiter);

impl EventLimits {
    /// Reads one answer as the SDK's transports do: `X-Sentry-Rate-Limits` if present (an
    /// overlong one is ignored), else `Retry-After`, else a 429 pauses everything for a minute.
    pub fn update(&mut self, status: u16, rate_limits: Option<&str>, retry_after: Option<&str>) {
        if let Some(header) = rate_limits.filter(|h| h.len() <= HEADER_MAX_LEN) {
            self.0.update_from_sentry_header(header);
        } else if let Some(value) = retry_after {
            self.0.update_from_retry_after(value);
        } else if status == 429 {
            self.0.update_from_429();
        }
    }

    /// How long events are still paused, if they are (at most [`MAX_WAIT`] at a time: a longer
    /// pause is asked about again then).
    pub fn remaining(&self) -> Option<Duration> {
        use sentry::transports::RateLimitingCategory;
        self.0
            .is_disabled(RateLimitingCategory::Error)
            .filter(|d| !d.is_zero())
            .map(|d| d.min(MAX_WAIT))
    }
}

/// The entries of an `X-Sentry-Rate-Limits` value: (wait, categories; empty for all).
fn parse(header: &str) -> Vec<(Duration, Vec<&str>)> {
    header
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let mut parts = entry.split(':');
            let wait = parts
                .next()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(MAX_WAIT.as_secs_f64())))
                .unwrap_or(DEFAULT_WAIT);
            let categories = parts
                .next()
                .unwrap_or("")
                .split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (wait, categories)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn after(
        status: u16,
        limits: Option<&str>,
        retry_after: Option<&str>,
    ) -> (RateLimits, Instant) {
        let now = Instant::now();
        let mut l = RateLimits::default();
        l.update(status, limits, retry_after, now, SystemTime::UNIX_EPOCH);
        (l, now)
    }

    #[test]
    fn categories_pause_for_the_stated_time() {
        let (l, now) = after(
            429,
            Some("60:error;transaction:key, 2700:monitor:organization:quota_exceeded:custom"),
            Some("5"),
        );
        assert_eq!(l.remaining(Category::Event, now), Some(S(60)));
        assert_eq!(l.remaining(Category::Monitor, now), Some(S(2700)));
        assert_eq!(l.remaining(Category::Event, now + S(60)), None, "over");
        // The header is read on a 200 too; `default` pauses events; the longer pause wins.
        let (mut l, now) = after(200, Some("10:default:project"), None);
        assert_eq!(l.remaining(Category::Event, now), Some(S(10)));
        assert_eq!(l.remaining(Category::Monitor, now), None);
        l.update(200, Some("3:error:key"), None, now, SystemTime::UNIX_EPOCH);
        assert_eq!(l.remaining(Category::Event, now), Some(S(10)));
        // Empty categories: everything.
        let (l, now) = after(429, Some("7::organization"), None);
        assert_eq!(l.remaining(Category::Event, now), Some(S(7)));
        assert_eq!(l.remaining(Category::Monitor, now), Some(S(7)));
        // Only other categories: nothing paused.
        let (l, now) = after(200, Some("30:transaction;attachment:key"), None);
        assert_eq!(l, RateLimits::default());
        assert_eq!(l.remaining(Category::Event, now), None);
    }

    #[test]
    fn a_bare_429_pauses_everything_for_its_retry_after_or_a_minute() {
        let (l, now) = after(429, None, Some("12"));
        assert_eq!(l.remaining(Category::Event, now), Some(S(12)));
        assert_eq!(l.remaining(Category::Monitor, now), Some(S(12)));
        let (l, now) = after(429, None, Some("whenever"));
        assert_eq!(l.remaining(Category::Event, now), Some(DEFAULT_WAIT));
        // Any other answer without the header changes nothing.
        for status in [200, 500, 503] {
            assert_eq!(after(status, None, Some("12")).0, RateLimits::default());
        }
    }

    /// The SDK's limiter counts from the wall clock: a pause of `s` seconds reads as at most
    /// `s` and more than `s - 2` (the test's own time).
    fn about(d: Option<Duration>, s: u64) -> bool {
        d.is_some_and(|d| d <= S(s) && d > S(s.saturating_sub(2)))
    }

    #[test]
    fn events_pause_as_the_sdk_reads_an_answer() {
        let read = |status, limits: Option<&str>, retry_after: Option<&str>| {
            let mut l = EventLimits::default();
            l.update(status, limits, retry_after);
            l.remaining()
        };
        // The header wins over Retry-After; `error` and empty categories pause events.
        assert!(about(
            read(
                429,
                Some("60:error;transaction:key, 2700:monitor:org"),
                Some("5")
            ),
            60
        ));
        assert!(about(read(200, Some("7::organization"), None), 7));
        // `monitor` and other categories only: events go on (check-ins are `RateLimits`').
        assert_eq!(read(429, Some("30:monitor;attachment:key"), None), None);
        // Without the header: Retry-After on any answer, else a bare 429 is a minute.
        assert!(about(read(503, None, Some("12")), 12));
        assert!(about(read(429, None, None), 60));
        assert_eq!(read(200, None, None), None);
        assert_eq!(read(500, None, None), None);
        // An overlong header is ignored; the answer's Retry-After still counts.
        let long = format!("60:error:key,{}", " ".repeat(HEADER_MAX_LEN));
        assert!(about(read(429, Some(&long), Some("2")), 2));
        // A day at most per answer.
        assert_eq!(read(200, Some("9999999:error:key"), None), Some(MAX_WAIT));
    }

    #[test]
    fn garbage_and_huge_values_are_bounded() {
        let (l, now) = after(429, Some("soon:monitor:key, -4:error:key"), None);
        assert_eq!(l.remaining(Category::Monitor, now), Some(DEFAULT_WAIT));
        assert_eq!(l.remaining(Category::Event, now), Some(DEFAULT_WAIT));
        let (l, now) = after(200, Some("1e300:error:key"), None);
        assert_eq!(l.remaining(Category::Event, now), Some(MAX_WAIT));
        let (l, now) = after(200, Some("0.5:monitor:key"), None);
        assert_eq!(
            l.remaining(Category::Monitor, now),
            Some(Duration::from_millis(500))
        );
        // An overlong header is ignored; a 429 still pauses for its Retry-After.
        let long = format!("60:error:key,{}", " ".repeat(HEADER_MAX_LEN));
        let (l, now) = after(429, Some(&long), Some("2"));
        assert_eq!(l.remaining(Category::Event, now), Some(S(2)));
    }
}
