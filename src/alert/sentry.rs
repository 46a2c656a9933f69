//! Sentry sink: an event per alert transition and cron check-ins per round, as envelopes built
//! here (no SDK).
//!
//! - Events group by `fingerprint = ["modelwatch", target, metric]`, so one regression is one
//!   Sentry issue however often it fires, reminds or resolves; the event id is the
//!   notification's idempotency key, so a retried delivery is dropped by Sentry.
//! - Level: `error` for hard failures (an unapproved model), `warning` for drift, `info` for
//!   swaps and resolutions.
//! - Check-ins (`check_in` items) open at each round (`in_progress`) and close it (`ok` or
//!   `error`): a Sentry cron monitor notices when the daemon stops running rounds.

use super::{AlertSink, Notification, NotificationKind, Severity, SinkError, SinkFuture};
use crate::config::Sentry;
pub use crate::config::sinks::Dsn;
use crate::time::rfc3339_utc;
use crate::util::hex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the sink knows about a target beyond the notification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetInfo {
    pub provider: String,
    pub model: String,
    /// The served model's fingerprint id, short (the last one seen by a round).
    pub fingerprint: Option<String>,
}

/// Sentry's limit on tag values.
const TAG_MAX: usize = 200;

fn tag(v: &str) -> String {
    v.chars().take(TAG_MAX).collect()
}

/// Level of a notification's event.
pub fn level(n: &Notification) -> &'static str {
    match (n.kind, n.severity) {
        (NotificationKind::Resolved | NotificationKind::Info, _) | (_, Severity::Info) => "info",
        (_, Severity::Critical) => "error",
        (_, Severity::Warning) => "warning",
    }
}

/// The event of one notification. `event_id` must be 32 hex characters.
pub fn event(
    event_id: &str,
    n: &Notification,
    target: Option<&TargetInfo>,
    environment: &str,
    release: &str,
) -> Value {
    let summary = n
        .evidence
        .as_ref()
        .map(|e| e.summary.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{} {}", n.key, n.kind.as_str()));
    let mut tags = BTreeMap::new();
    tags.insert("target", tag(&n.key.target));
    tags.insert("metric", tag(&n.key.metric));
    tags.insert("alert.state", n.kind.as_str().to_string());
    tags.insert("alert.severity", n.severity.as_str().to_string());
    tags.insert("environment", tag(environment));
    // A short fingerprint of the alert, for searching: the first 12 hex of its group hash.
    tags.insert(
        "alert.fingerprint",
        crate::alert::idempotency_key(&Notification {
            at_ms: 0,
            incident: String::new(),
            kind: NotificationKind::Info,
            ..n.clone()
        })[..12]
            .to_string(),
    );
    if let Some(t) = target {
        tags.insert("model", tag(&t.model));
        tags.insert("provider", tag(&t.provider));
        if let Some(f) = &t.fingerprint {
            tags.insert("model.fingerprint", tag(f));
        }
    }
    let mut ev = json!({
        "event_id": event_id,
        "timestamp": n.at_ms as f64 / 1000.0,
        "platform": "other",
        "logger": "modelwatch",
        "level": level(n),
        "message": { "formatted": format!("{} {}: {summary}", n.key, n.kind.as_str()) },
        "fingerprint": ["modelwatch", n.key.target, n.key.metric],
        "environment": environment,
        "release": release,
        "tags": tags,
        "extra": { "incident": n.incident, "at": rfc3339_utc(n.at_ms) },
    });
    // Contexts are objects; a notification without evidence has none.
    if let Some(e) = &n.evidence {
        ev["contexts"] = json!({ "evidence": e });
    }
    ev
}

/// An envelope: header line, then per item a header line and a payload line.
pub fn envelope(event_id: Option<&str>, sent_at_ms: i64, items: &[(&str, Value)]) -> Vec<u8> {
    let mut head = json!({ "sent_at": rfc3339_utc(sent_at_ms) });
    if let Some(id) = event_id {
        head["event_id"] = json!(id);
    }
    let mut out = head.to_string().into_bytes();
    out.push(b'\n');
    for (ty, payload) in items {
        let body = payload.to_string();
        out.extend_from_slice(
            json!({ "type": ty, "length": body.len() })
                .to_string()
                .as_bytes(),
        );
        out.push(b'\n');
        out.extend_from_slice(body.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The status of a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInStatus {
    InProgress,
    Ok,
    Error,
}

impl CheckInStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckInStatus::InProgress => "in_progress",
            CheckInStatus::Ok => "ok",
            CheckInStatus::Error => "error",
        }
    }
}

/// A check-in payload; `check_in_id` (32 hex) ties the closing check-in to the opening one.
pub fn check_in(
    check_in_id: &str,
    monitor: &str,
    status: CheckInStatus,
    duration: Option<Duration>,
    environment: &str,
    release: &str,
) -> Value {
    let mut v = json!({
        "check_in_id": check_in_id,
        "monitor_slug": monitor,
        "status": status.as_str(),
        "environment": environment,
        "release": release,
    });
    if let Some(d) = duration {
        v["duration"] = json!(d.as_secs_f64());
    }
    v
}

/// Sends events and check-ins to one Sentry project.
pub struct SentrySink {
    config: Sentry,
    dsn: Dsn,
    targets: std::sync::Mutex<BTreeMap<String, TargetInfo>>,
    client: reqwest::Client,
}

impl SentrySink {
    pub fn new(
        config: Sentry,
        targets: BTreeMap<String, TargetInfo>,
        timeout: Duration,
    ) -> Result<SentrySink, SinkError> {
        let err = |reason: String| SinkError::permanent("sentry", "", reason);
        let dsn = Dsn::parse(config.dsn.expose()).map_err(|e| err(format!("invalid DSN: {e}")))?;
        let client = crate::provider::http::outbound_client()
            .timeout(timeout)
            .build()
            .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
        Ok(SentrySink {
            config,
            dsn,
            targets: std::sync::Mutex::new(targets),
            client,
        })
    }

    /// Remembers the fingerprint a target serves (first 12 characters), for the events' tags.
    pub fn note_fingerprint(&self, target: &str, id: &str) {
        if let Ok(mut t) = self.targets.lock() {
            t.entry(target.to_string()).or_default().fingerprint =
                Some(id.chars().take(12).collect());
        }
    }

    /// Posts one envelope; 408, 429 (Sentry's rate limit) and 5xx are transient, other 4xx
    /// (a revoked key, an envelope Sentry refuses) permanent.
    async fn post(&self, incident: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let resp = self
            .client
            .post(self.dsn.envelope_url())
            .header("content-type", "application/x-sentry-envelope")
            .header("x-sentry-auth", self.dsn.auth_header())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                SinkError::transient(
                    "sentry",
                    incident,
                    format!("request failed: {}", e.without_url()),
                )
            })?;
        super::sink::check_response("sentry", incident, &resp)
    }

    /// Sends one check-in of the round monitor (best effort: errors are returned, not retried).
    pub async fn send_check_in(
        &self,
        check_in_id: &str,
        status: CheckInStatus,
        duration: Option<Duration>,
        now_ms: i64,
    ) -> Result<(), String> {
        let payload = check_in(
            check_in_id,
            &self.config.monitor,
            status,
            duration,
            &self.config.environment,
            &self.config.release,
        );
        self.post("check-in", envelope(None, now_ms, &[("check_in", payload)]))
            .await
            .map_err(|e| e.reason)
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
            let ev = event(
                key,
                n,
                info.as_ref(),
                &self.config.environment,
                &self.config.release,
            );
            self.post(&n.incident, envelope(Some(key), n.at_ms, &[("event", ev)]))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, Evidence};

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

    #[test]
    fn events_group_by_target_and_metric_with_levels_and_tags() {
        let n = |kind, severity, at| Notification {
            kind,
            key: AlertKey::new("chat", "refusal_rate"),
            severity,
            incident: "chat/refusal_rate#1".into(),
            at_ms: at,
            evidence: Some(Evidence {
                summary: "refusals up".into(),
                e_value: Some(55.0),
                ..Evidence::default()
            }),
            muted: false,
        };
        let a = event(
            "a",
            &n(NotificationKind::Firing, Severity::Warning, 1),
            None,
            "prod",
            "r",
        );
        let b = event(
            "b",
            &n(NotificationKind::Resolved, Severity::Warning, 9),
            None,
            "prod",
            "r",
        );
        assert_eq!(
            a["fingerprint"],
            json!(["modelwatch", "chat", "refusal_rate"])
        );
        assert_eq!(a["fingerprint"], b["fingerprint"]);
        assert_eq!(
            a["tags"]["alert.fingerprint"],
            b["tags"]["alert.fingerprint"]
        );
        assert_eq!(a["level"], "warning");
        assert_eq!(b["level"], "info");
        assert_eq!(a["contexts"]["evidence"]["e_value"], 55.0);
        let c = event(
            "c",
            &n(NotificationKind::Firing, Severity::Critical, 1),
            None,
            "prod",
            "r",
        );
        assert_eq!(c["level"], "error");
        let env = envelope(Some("a"), 5, &[("event", a)]);
        let text = String::from_utf8(env).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["length"].as_u64().unwrap() as usize, lines[2].len());
    }
}
