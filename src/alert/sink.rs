//! Where notifications go. A sink delivers one notification; failures are reported, never
//! panicked on, and never turn into quality alerts.

use super::Notification;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A delivery failure (network, remote rejection).
#[derive(Debug, thiserror::Error)]
#[error("alert sink {sink} could not deliver {incident}: {reason}")]
pub struct SinkError {
    pub sink: String,
    pub incident: String,
    pub reason: String,
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
                return Err(SinkError {
                    sink: "memory".into(),
                    incident: n.incident.clone(),
                    reason: "configured to fail".into(),
                });
            }
            if let Ok(mut v) = self.delivered.lock() {
                v.push(n.clone());
            }
            Ok(())
        })
    }
}
