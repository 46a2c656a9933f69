//! Where notifications go. A sink delivers one notification; failures are reported, never
//! panicked on, and never turn into quality alerts.

use super::Notification;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A delivery failure (network, remote rejection).
#[derive(Debug, thiserror::Error)]
#[error("alert sink {sink} could not deliver {incident}: {reason}")]
pub struct SinkError {
    pub sink: String,
    pub incident: String,
    pub reason: String,
    /// The receiver refused the notification itself (a 4xx other than 408 and 429): sending
    /// it again cannot succeed, so it is not retried.
    pub permanent: bool,
    /// How long the receiver asked to be left alone (`Retry-After` of a 429 or 503).
    pub retry_after: Option<Duration>,
    /// Nothing was sent: the sink waits out a rate limit the receiver announced earlier. Not
    /// an attempt: it never brings the notification closer to expiry.
    pub deferred: bool,
}

impl SinkError {
    /// A failure worth retrying (network error, timeout, 408, 429, 5xx).
    pub fn transient(
        sink: impl Into<String>,
        incident: impl Into<String>,
        reason: impl Into<String>,
    ) -> SinkError {
        SinkError {
            sink: sink.into(),
            incident: incident.into(),
            reason: reason.into(),
            permanent: false,
            retry_after: None,
            deferred: false,
        }
    }

    /// Not sent: the receiver's rate limit lasts `wait` more.
    pub fn deferred(
        sink: impl Into<String>,
        incident: impl Into<String>,
        reason: impl Into<String>,
        wait: Duration,
    ) -> SinkError {
        SinkError {
            deferred: true,
            retry_after: Some(wait),
            ..SinkError::transient(sink, incident, reason)
        }
    }

    /// A refusal that retrying cannot change.
    pub fn permanent(
        sink: impl Into<String>,
        incident: impl Into<String>,
        reason: impl Into<String>,
    ) -> SinkError {
        SinkError {
            permanent: true,
            ..SinkError::transient(sink, incident, reason)
        }
    }
}

/// How a receiver's HTTP answer is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVerdict {
    /// 2xx.
    Accepted,
    /// 408, 429, 5xx (and anything unexpected): retried with backoff, after `Retry-After`.
    Retry(Option<Duration>),
    /// Any other 4xx, or a redirect (never followed): given up at once.
    Reject,
}

/// Classifies a receiver's answer; `retry_after` is the raw `Retry-After` header, if any.
pub fn classify(status: u16, retry_after: Option<&str>, now: SystemTime) -> HttpVerdict {
    match status {
        200..=299 => HttpVerdict::Accepted,
        408 | 429 => HttpVerdict::Retry(retry_after.and_then(|v| parse_retry_after(v, now))),
        300..=499 => HttpVerdict::Reject,
        _ => HttpVerdict::Retry(retry_after.and_then(|v| parse_retry_after(v, now))),
    }
}

pub use crate::time::parse_retry_after;

/// Turns a receiver's answer into the sink's result.
pub fn check_response(
    sink: &str,
    incident: &str,
    resp: &reqwest::Response,
) -> Result<(), SinkError> {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    match classify(status.as_u16(), retry_after, SystemTime::now()) {
        HttpVerdict::Accepted => Ok(()),
        HttpVerdict::Retry(after) => Err(SinkError {
            retry_after: after,
            ..SinkError::transient(sink, incident, format!("the receiver answered {status}"))
        }),
        HttpVerdict::Reject if status.is_redirection() => Err(SinkError::permanent(
            sink,
            incident,
            format!(
                "the receiver answered {status}; redirects are not followed (they would carry \
                 the credentials elsewhere): configure the final URL"
            ),
        )),
        HttpVerdict::Reject => Err(SinkError::permanent(
            sink,
            incident,
            format!("the receiver rejected the notification: {status}"),
        )),
    }
}

pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Delivers notifications somewhere (logs, Sentry, OpenTelemetry, a webhook).
pub trait AlertSink: Send + Sync {
    /// A short name for logs and status (`log`, `sentry`).
    fn name(&self) -> &str;
    fn deliver<'a>(&'a self, notification: &'a Notification) -> SinkFuture<'a>;

    /// Delivers with the notification's idempotency key (the same on every retry), for sinks
    /// whose receivers can drop repeats. Defaults to [`AlertSink::deliver`].
    fn deliver_keyed<'a>(&'a self, key: &'a str, notification: &'a Notification) -> SinkFuture<'a> {
        let _ = key;
        self.deliver(notification)
    }
}

/// Writes every notification to the log (tracing): warnings for firing and reminders, info for
/// resolutions and swaps.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

impl AlertSink for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> SinkFuture<'a> {
        let summary = n
            .evidence
            .as_ref()
            .map(|e| e.summary.as_str())
            .unwrap_or("");
        match n.kind {
            super::NotificationKind::Firing | super::NotificationKind::Reminder => {
                tracing::warn!(
                    alert = %n.key,
                    incident = %n.incident,
                    kind = n.kind.as_str(),
                    severity = n.severity.as_str(),
                    "alert: {summary}"
                )
            }
            _ => tracing::info!(
                alert = %n.key,
                incident = %n.incident,
                kind = n.kind.as_str(),
                "alert: {summary}"
            ),
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod http_tests {
    use super::*;

    #[test]
    fn answers_are_classified_and_retry_after_is_read_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        assert_eq!(classify(204, None, now), HttpVerdict::Accepted);
        for s in [400, 401, 403, 404, 410, 413, 422, 301] {
            assert_eq!(classify(s, Some("5"), now), HttpVerdict::Reject, "{s}");
        }
        assert_eq!(
            classify(429, Some("7"), now),
            HttpVerdict::Retry(Some(Duration::from_secs(7)))
        );
        assert_eq!(classify(408, None, now), HttpVerdict::Retry(None));
        assert_eq!(
            classify(503, Some("Sun, 06 Nov 1994 08:50:07 GMT"), now),
            HttpVerdict::Retry(Some(Duration::from_secs(30)))
        );
        assert_eq!(classify(500, Some("soon"), now), HttpVerdict::Retry(None));
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 25:00:00 GMT", now),
            None
        );
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", epoch),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 19:31:17 GMT", epoch),
            Some(crate::time::MAX_RETRY_AFTER)
        );
    }
}

/// Keeps every delivered notification in memory (tests), optionally failing every delivery.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    delivered: Arc<Mutex<Vec<Notification>>>,
    fail: bool,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A sink whose every delivery fails (to test that failures are survived).
    pub fn failing() -> MemorySink {
        MemorySink {
            fail: true,
            ..MemorySink::default()
        }
    }

    pub fn delivered(&self) -> Vec<Notification> {
        self.delivered.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl AlertSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> SinkFuture<'a> {
        Box::pin(async move {
            if self.fail {
                return Err(SinkError::transient(
                    "memory",
                    n.incident.clone(),
                    "configured to fail",
                ));
            }
            if let Ok(mut v) = self.delivered.lock() {
                v.push(n.clone());
            }
            Ok(())
        })
    }
}
