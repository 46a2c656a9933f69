//! Sentry sink: an event per alert transition and cron check-ins per round.
//!
//! - Events are the SDK's types: a [`sentry::protocol::Event`] per notification, written by the
//!   SDK's [`sentry::Envelope`] ([`super::sentry_envelope`]). They are not captured through the SDK's client (that would give
//!   them its random ids and its in-memory queue): the alert outbox keeps the notification, and
//!   each delivery attempt builds the same event again and posts it here.
//! - Events group by `fingerprint = ["modelwatch", target, metric]`, so one regression is one
//!   Sentry issue however often it fires, reminds or resolves; the event id is the
//!   notification's idempotency key (its 32 hex read as a UUID), so a retried delivery, even
//!   from a restarted daemon, is dropped by Sentry.
//! - Level: `error` for hard failures (an unapproved model), `warning` for drift, `info` for
//!   swaps and resolutions.
//! - Check-ins (`check_in` items) open at each round (`in_progress`) and close it (`ok` or
//!   `error`): a Sentry cron monitor notices when the daemon stops running rounds. Each carries
//!   a `monitor_config` (an interval schedule from the round interval), so the first check-in
//!   creates the monitor.
//! - Rate limits ([`super::ratelimit`]) are honoured per category, events by the SDK's
//!   `RateLimiter`, check-ins by the project's own (the SDK's has no `monitor` category): a
//!   limited event is deferred (it waits in the outbox, delivered once the limit passes), a
//!   limited check-in is skipped.
//! - Events carry `server_name` (the host name), to tell the daemons of a fleet apart.

use super::ratelimit::{Category, EventLimits, RateLimits};
pub use super::sentry_envelope::*;
use super::{AlertSink, Notification, SinkError, SinkFuture};
use crate::config::Sentry;
pub use crate::config::sinks::Dsn;
use crate::util::hex;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// Why a check-in was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInError {
    /// Not sent: Sentry's rate limit on check-ins lasts this long more.
    RateLimited(Duration),
    /// Sent and not accepted (network error, non-2xx).
    Failed(String),
}

/// The host's name for `server_name`: `$HOSTNAME`, else the kernel's, else `/etc/hostname`.
pub fn host_name() -> Option<String> {
    let read = |p: &str| crate::files::read_text_limited(std::path::Path::new(p), 256).ok();
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| read("/proc/sys/kernel/hostname"))
        .or_else(|| read("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Sends events and check-ins to one Sentry project.
pub struct SentrySink {
    config: Sentry,
    dsn: Dsn,
    targets: std::sync::Mutex<BTreeMap<String, TargetInfo>>,
    client: reqwest::Client,
    /// Check-ins' rate limits (the `monitor` category).
    limits: std::sync::Mutex<RateLimits>,
    /// Events' rate limits (the `error` category), kept by the SDK's limiter.
    events: std::sync::Mutex<EventLimits>,
    server_name: Option<String>,
}

impl SentrySink {
    pub fn new(
        config: Sentry,
        targets: BTreeMap<String, TargetInfo>,
        timeout: Duration,
    ) -> Result<SentrySink, SinkError> {
        let err = |reason: String| SinkError::permanent("sentry", "", reason);
        let dsn = Dsn::parse(config.dsn.expose()).map_err(|e| err(format!("invalid DSN: {e}")))?;
        let builder = config
            .trust()
            .apply(crate::provider::http::outbound_client().timeout(timeout))
            .map_err(|e| match &config.ca_file {
                Some(ca) => err(format!("ca_file `{}`: {e}", ca.path.display())),
                None => err(e),
            })?;
        let client = builder
            .build()
            .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
        Ok(SentrySink {
            config,
            dsn,
            targets: std::sync::Mutex::new(targets),
            client,
            limits: std::sync::Mutex::new(RateLimits::default()),
            events: std::sync::Mutex::new(EventLimits::default()),
            server_name: host_name(),
        })
    }

    /// Remembers the fingerprint a target serves (first 12 characters), for the events' tags.
    pub fn note_fingerprint(&self, target: &str, id: &str) {
        if let Ok(mut t) = self.targets.lock() {
            t.entry(target.to_string()).or_default().fingerprint =
                Some(id.chars().take(12).collect());
        }
    }

    /// How long `category` is still rate-limited, if it is.
    pub fn limited(&self, category: Category) -> Option<Duration> {
        match category {
            Category::Event => self.events.lock().ok().and_then(|l| l.remaining()),
            Category::Monitor => self
                .limits
                .lock()
                .ok()
                .and_then(|l| l.remaining(category, Instant::now())),
        }
    }

    /// Posts one envelope of `category`; 408, 429 (Sentry's rate limit) and 5xx are transient,
    /// other 4xx (a revoked key, an envelope Sentry refuses) permanent. Nothing is sent while
    /// the category is rate-limited (a deferral); every answer's limits are recorded.
    async fn post(
        &self,
        category: Category,
        incident: &str,
        body: Vec<u8>,
    ) -> Result<(), SinkError> {
        if let Some(wait) = self.limited(category) {
            return Err(SinkError::deferred(
                "sentry",
                incident,
                format!(
                    "Sentry rate-limits the `{}` category for {} s more",
                    category.as_str(),
                    wait.as_secs_f64().ceil()
                ),
                wait,
            ));
        }
        let resp = self
            .client
            .post(self.dsn.envelope_url())
            .header("content-type", "application/x-sentry-envelope")
            .header("x-sentry-auth", self.dsn.auth_header())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                SinkError::transient("sentry", incident, crate::provider::tls::request_failure(e))
            })?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (status, limits, retry_after) = (
            resp.status().as_u16(),
            header("x-sentry-rate-limits"),
            header("retry-after"),
        );
        if let Ok(mut l) = self.limits.lock() {
            let now = (Instant::now(), SystemTime::now());
            l.update(
                status,
                limits.as_deref(),
                retry_after.as_deref(),
                now.0,
                now.1,
            );
        }
        if let Ok(mut l) = self.events.lock() {
            l.update(status, limits.as_deref(), retry_after.as_deref());
        }
        super::sink::check_response("sentry", incident, &resp).map_err(|mut e| {
            // The category's own limit may be longer than the answer's Retry-After.
            if let Some(wait) = self.limited(category) {
                e.retry_after = Some(e.retry_after.map_or(wait, |r| r.max(wait)));
            }
            e
        })
    }

    /// Posts an envelope the SDK built (an event of the daemon's own), under the same rate
    /// limits as the alert events.
    pub async fn post_envelope(&self, body: Vec<u8>) -> Result<(), SinkError> {
        self.post(Category::Event, "daemon event", body).await
    }

    /// Sends one check-in of the round monitor (best effort: errors are returned, not retried;
    /// nothing is sent while Sentry rate-limits check-ins).
    pub async fn send_check_in(
        &self,
        check_in_id: &str,
        status: CheckInStatus,
        duration: Option<Duration>,
        now_ms: i64,
        schedule: Option<&MonitorSchedule>,
    ) -> Result<(), CheckInError> {
        if let Some(wait) = self.limited(Category::Monitor) {
            return Err(CheckInError::RateLimited(wait));
        }
        let payload = sdk_check_in(
            check_in_id,
            &self.config.monitor,
            status,
            duration,
            &self.config.environment,
            schedule,
        );
        let sent_at = SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
        let body = check_in_envelope(payload, sent_at).map_err(CheckInError::Failed)?;
        match self.post(Category::Monitor, "check-in", body).await {
            Ok(()) => Ok(()),
            Err(e) if e.deferred => {
                Err(CheckInError::RateLimited(e.retry_after.unwrap_or_default()))
            }
            Err(e) => Err(CheckInError::Failed(e.reason)),
        }
    }

    /// A fresh check-in id (32 hex) derived from a round's identity.
    pub fn check_in_id(target: &str, started_ms: i64) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(target.as_bytes());
        h.update(started_ms.to_le_bytes());
        hex(&h.finalize()[..16])
    }
}

impl AlertSink for SentrySink {
    fn name(&self) -> &str {
        "sentry"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> SinkFuture<'a> {
        Box::pin(async move {
            let key = super::idempotency_key(n);
            self.deliver_keyed(&key, n).await
        })
    }

    fn deliver_keyed<'a>(&'a self, key: &'a str, n: &'a Notification) -> SinkFuture<'a> {
        Box::pin(async move {
            let info = self
                .targets
                .lock()
                .ok()
                .and_then(|t| t.get(&n.key.target).cloned());
            let ev = alert_event(
                key,
                n,
                info.as_ref(),
                &self.config.environment,
                &self.config.release,
                self.server_name.as_deref(),
            );
            let body = alert_envelope(ev, SystemTime::now())
                .map_err(|e| SinkError::permanent("sentry", &n.incident, e))?;
            self.post(Category::Event, &n.incident, body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, Evidence, NotificationKind, Severity};
    use sentry::protocol::{self as proto, Level, Uuid};
    use serde_json::Value;

    #[test]
    fn dsn_parses_and_hides_the_key() {
        let d = Dsn::parse("https://abc123@o1.ingest.sentry.io/42").unwrap();
        assert_eq!(
            d.envelope_url(),
            "https://o1.ingest.sentry.io/api/42/envelope/"
        );
        assert!(d.auth_header().contains("sentry_key=abc123"));
        assert!(!format!("{d:?}").contains("abc123"));
        let d = Dsn::parse("http://k@127.0.0.1:9000/sub/7").unwrap();
        assert_eq!(
            d.envelope_url(),
            "http://127.0.0.1:9000/sub/api/7/envelope/"
        );
        for bad in [
            "",
            "k@h/1",
            "ftp://k@h/1",
            "https://h/1",
            "https://k@h",
            "https://k@h/x-y",
        ] {
            let e = Dsn::parse(bad).unwrap_err();
            assert!(!e.is_empty());
        }
    }

    /// The envelope the SDK writes for an alert event, read back with the SDK's parser: the
    /// grouping, the level, the tags, and the notification's id on every attempt.
    #[test]
    fn the_sdks_envelope_of_an_alert_carries_its_grouping_and_the_same_id_on_every_retry() {
        let n = Notification {
            kind: NotificationKind::Firing,
            key: AlertKey::new("chat", "unapproved_model"),
            severity: Severity::Critical,
            incident: "chat/unapproved_model#3".into(),
            at_ms: 1_700_000_000_000,
            evidence: Some(Evidence {
                summary: "served model not approved".into(),
                ..Evidence::default()
            }),
            muted: false,
        };
        let key = crate::alert::idempotency_key(&n);
        let target = TargetInfo {
            provider: "ollama".into(),
            model: "llama3".into(),
            fingerprint: Some("abc123def456".into()),
        };
        let write = |sent_s: u64| {
            let ev = alert_event(&key, &n, Some(&target), "prod", "r@1", Some("gpu-7"));
            alert_envelope(ev, SystemTime::UNIX_EPOCH + Duration::from_secs(sent_s)).unwrap()
        };
        let (first, retry) = (write(1_700_000_001), write(1_700_090_000));
        assert_ne!(first, retry, "`sent_at` is the attempt's");
        let id = Uuid::try_parse(&key).unwrap();
        for body in [&first, &retry] {
            let envelope = sentry::Envelope::from_slice(body).unwrap();
            assert_eq!(envelope.uuid(), Some(&id));
            let ev = envelope.event().unwrap();
            assert_eq!(ev.event_id, id);
            assert_eq!(
                ev.fingerprint.as_ref(),
                ["modelwatch", "chat", "unapproved_model"]
            );
            assert_eq!(ev.level, Level::Error);
            assert_eq!(
                ev.timestamp,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
            );
            let expected = [
                ("target", "chat"),
                ("metric", "unapproved_model"),
                ("alert.state", "firing"),
                ("alert.severity", "critical"),
                ("environment", "prod"),
                ("model", "llama3"),
                ("provider", "ollama"),
                ("model.fingerprint", "abc123def456"),
            ];
            for (k, v) in expected {
                assert_eq!(ev.tags.get(k).map(String::as_str), Some(v), "{k}");
            }
            assert_eq!(ev.tags["alert.fingerprint"], key_of_group(&n));
            assert_eq!(ev.tags.len(), expected.len() + 1);
            assert_eq!(ev.server_name.as_deref(), Some("gpu-7"));
            assert_eq!(ev.environment.as_deref(), Some("prod"));
            assert_eq!(ev.release.as_deref(), Some("r@1"));
            assert_eq!(
                ev.message.as_deref(),
                Some("chat/unapproved_model firing: served model not approved")
            );
            assert_eq!(ev.extra["incident"], "chat/unapproved_model#3");
            let Some(proto::Context::Other(evidence)) = ev.contexts.get("evidence") else {
                panic!("no evidence context: {:?}", ev.contexts);
            };
            assert_eq!(evidence["summary"], "served model not approved");
        }
        // On the wire: the item's id is the key itself; the header's is the same UUID in the
        // SDK's hyphenated form; `sent_at` is the attempt's time.
        let text = String::from_utf8(first).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let head: Value = serde_json::from_str(lines[0]).unwrap();
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        let body: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(body["event_id"], key.as_str());
        assert_eq!(head["event_id"], id.hyphenated().to_string());
        assert_eq!(head["sent_at"], "2023-11-14T22:13:21Z");
        assert_eq!(item["type"], "event");
        assert_eq!(item["length"].as_u64().unwrap() as usize, lines[2].len());
        // A warning states its level; `error` is the protocol's default, left out.
        assert!(body.get("level").is_none(), "{body}");
        let warn = Notification {
            severity: Severity::Warning,
            ..n.clone()
        };
        assert_eq!(event(&key, &warn, None, "p", "r", None)["level"], "warning");
        // A key that is no UUID still gives one id, the same every time.
        assert_eq!(event_id("not-hex"), event_id("not-hex"));
        assert_ne!(event_id("not-hex"), event_id("not-hex2"));
    }

    /// The `alert.fingerprint` tag of a notification: its group's hash, 12 hex.
    fn key_of_group(n: &Notification) -> String {
        crate::alert::idempotency_key(&Notification {
            at_ms: 0,
            incident: String::new(),
            kind: NotificationKind::Info,
            ..n.clone()
        })[..12]
            .to_string()
    }
}
