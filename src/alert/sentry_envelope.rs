//! What the Sentry sink sends, as the `sentry` SDK's types: an alert event
//! ([`sentry::protocol::Event`]) per notification and a check-in
//! ([`sentry::protocol::MonitorCheckIn`]) per round opened or closed, each written by the SDK's
//! [`sentry::Envelope`]. Pure: the sink ([`super::sentry`]) posts the bytes.
//!
//! The events' grouping, ids, levels and tags are described in [`super::sentry`].

use super::{Notification, NotificationKind, Severity};
use crate::time::rfc3339_utc;
use sentry::protocol::{self as proto, Level, Uuid};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

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
pub fn level(n: &Notification) -> Level {
    match (n.kind, n.severity) {
        (NotificationKind::Resolved | NotificationKind::Info, _) | (_, Severity::Info) => {
            Level::Info
        }
        (_, Severity::Critical) => Level::Error,
        (_, Severity::Warning) => Level::Warning,
    }
}

/// The event id of an idempotency key: its 32 hex read as a UUID, so that every delivery of a
/// notification carries the same id. A key that is no UUID (none is written) is hashed into
/// one, the same for the same key.
pub fn event_id(key: &str) -> Uuid {
    Uuid::try_parse(key).unwrap_or_else(|_| {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

/// The tags of a notification's event (each value at most [`TAG_MAX`] characters).
fn tags(
    n: &Notification,
    target: Option<&TargetInfo>,
    environment: &str,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    let mut put = |k: &str, v: String| tags.insert(k.to_string(), v);
    put("target", tag(&n.key.target));
    put("metric", tag(&n.key.metric));
    put("alert.state", n.kind.as_str().to_string());
    put("alert.severity", n.severity.as_str().to_string());
    put("environment", tag(environment));
    // A short fingerprint of the alert, for searching: the first 12 hex of its group hash.
    put(
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
        put("model", tag(&t.model));
        put("provider", tag(&t.provider));
        if let Some(f) = &t.fingerprint {
            put("model.fingerprint", tag(f));
        }
    }
    tags
}

/// The event of one notification, as the SDK's type; `key` is its idempotency key (see
/// [`event_id`]).
pub fn alert_event(
    key: &str,
    n: &Notification,
    target: Option<&TargetInfo>,
    environment: &str,
    release: &str,
    server_name: Option<&str>,
) -> proto::Event<'static> {
    let summary = n
        .evidence
        .as_ref()
        .map(|e| e.summary.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{} {}", n.key, n.kind.as_str()));
    let fingerprint =
        ["modelwatch", &n.key.target, &n.key.metric].map(|p| Cow::Owned(p.to_string()));
    let mut extra = proto::Map::new();
    extra.insert("incident".to_string(), json!(n.incident));
    extra.insert("at".to_string(), json!(rfc3339_utc(n.at_ms)));
    // Contexts are objects; a notification without evidence has none.
    let mut contexts = proto::Map::new();
    if let Some(Value::Object(e)) = n
        .evidence
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok())
    {
        contexts.insert(
            "evidence".to_string(),
            proto::Context::Other(e.into_iter().collect()),
        );
    }
    proto::Event {
        event_id: event_id(key),
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_millis(n.at_ms.max(0) as u64),
        logger: Some("modelwatch".to_string()),
        level: level(n),
        message: Some(format!("{} {}: {summary}", n.key, n.kind.as_str())),
        fingerprint: Cow::Owned(fingerprint.to_vec()),
        environment: Some(Cow::Owned(environment.to_string())),
        release: Some(Cow::Owned(release.to_string())),
        server_name: server_name.map(|h| Cow::Owned(tag(h))),
        tags: tags(n, target, environment).into_iter().collect(),
        extra,
        contexts,
        ..Default::default()
    }
}

/// The event of one notification as Sentry receives it (the payload of its envelope item).
pub fn event(
    key: &str,
    n: &Notification,
    target: Option<&TargetInfo>,
    environment: &str,
    release: &str,
    server_name: Option<&str>,
) -> Value {
    let ev = alert_event(key, n, target, environment, release, server_name);
    serde_json::to_value(ev).unwrap_or(Value::Null)
}

/// The envelope of one notification's event, written by the SDK: `sent_at` is the time of this
/// delivery attempt (Sentry corrects event timestamps by the drift between `sent_at` and its
/// own clock; the notification's time there would move an event delivered late to its
/// arrival). The envelope header's `event_id` is the event's, in the SDK's hyphenated form.
pub fn alert_envelope(
    event: proto::Event<'static>,
    sent_at: SystemTime,
) -> Result<Vec<u8>, String> {
    let headers = proto::EnvelopeHeaders::new()
        .with_event_id(event.event_id)
        .with_sent_at(sent_at);
    write(sentry::Envelope::from(event).with_headers(headers))
}

/// The envelope of one check-in, written by the SDK.
pub fn check_in_envelope(
    check_in: proto::MonitorCheckIn,
    sent_at: SystemTime,
) -> Result<Vec<u8>, String> {
    let headers = proto::EnvelopeHeaders::new().with_sent_at(sent_at);
    write(sentry::Envelope::from(check_in).with_headers(headers))
}

/// An envelope's bytes.
fn write(envelope: sentry::Envelope) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    envelope
        .to_writer(&mut body)
        .map_err(|e| format!("cannot write the envelope: {e}"))?;
    Ok(body)
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

    fn sdk(self) -> proto::MonitorCheckInStatus {
        match self {
            CheckInStatus::InProgress => proto::MonitorCheckInStatus::InProgress,
            CheckInStatus::Ok => proto::MonitorCheckInStatus::Ok,
            CheckInStatus::Error => proto::MonitorCheckInStatus::Error,
        }
    }
}

/// What Sentry expects of the round monitor, sent with every check-in so that the first one
/// creates the monitor (and a changed interval updates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSchedule {
    /// Time between rounds (the shortest of the targets seen).
    pub interval: Duration,
    /// Random delay added to an interval (the longest seen).
    pub jitter: Duration,
    /// A round still running after this long is cut off (the longest seen).
    pub deadline: Duration,
}

impl MonitorSchedule {
    /// Takes in one more target: the monitor expects the most frequent check-ins, and allows
    /// the longest jitter and round.
    pub fn merge(self, other: MonitorSchedule) -> MonitorSchedule {
        MonitorSchedule {
            interval: self.interval.min(other.interval),
            jitter: self.jitter.max(other.jitter),
            deadline: self.deadline.max(other.deadline),
        }
    }

    /// Sentry's `monitor_config`: an interval schedule in whole minutes (at least one), a
    /// check-in margin of the jitter plus a minute, a maximum runtime of the round deadline.
    pub fn config(&self) -> proto::MonitorConfig {
        let minutes = |d: Duration| d.as_secs().div_ceil(60).max(1);
        proto::MonitorConfig {
            schedule: proto::MonitorSchedule::Interval {
                value: minutes(self.interval),
                unit: proto::MonitorIntervalUnit::Minute,
            },
            checkin_margin: Some(self.jitter.as_secs().div_ceil(60) + 1),
            max_runtime: Some(minutes(self.deadline)),
            timezone: Some("UTC".to_string()),
            failure_issue_threshold: None,
            recovery_threshold: None,
        }
    }

    /// [`Self::config`] as Sentry receives it.
    pub fn monitor_config(&self) -> Value {
        serde_json::to_value(self.config()).unwrap_or(Value::Null)
    }
}

/// A check-in, as the SDK's type; `check_in_id` (32 hex, see [`event_id`]) ties the closing
/// check-in to the opening one. No `release`: Sentry's check-ins have none.
pub fn sdk_check_in(
    check_in_id: &str,
    monitor: &str,
    status: CheckInStatus,
    duration: Option<Duration>,
    environment: &str,
    schedule: Option<&MonitorSchedule>,
) -> proto::MonitorCheckIn {
    proto::MonitorCheckIn {
        check_in_id: event_id(check_in_id),
        monitor_slug: monitor.to_string(),
        status: status.sdk(),
        environment: Some(environment.to_string()),
        duration: duration.map(|d| d.as_secs_f64()),
        monitor_config: schedule.map(MonitorSchedule::config),
    }
}

/// A check-in as Sentry receives it (the payload of its envelope item).
pub fn check_in(
    check_in_id: &str,
    monitor: &str,
    status: CheckInStatus,
    duration: Option<Duration>,
    environment: &str,
    schedule: Option<&MonitorSchedule>,
) -> Value {
    let c = sdk_check_in(
        check_in_id,
        monitor,
        status,
        duration,
        environment,
        schedule,
    );
    serde_json::to_value(c).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, Evidence};

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
            None,
        );
        let b = event(
            "b",
            &n(NotificationKind::Resolved, Severity::Warning, 9),
            None,
            "prod",
            "r",
            None,
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
            None,
        );
        // `error` is the protocol's default level: the SDK leaves it out.
        assert_eq!(c["level"].as_str().unwrap_or("error"), "error");
        assert!(c.get("server_name").is_none());
        let h = event(
            "h",
            &n(NotificationKind::Firing, Severity::Warning, 1),
            None,
            "prod",
            "r",
            Some("gpu-node-7"),
        );
        assert_eq!(h["server_name"], "gpu-node-7");
        let n1 = n(NotificationKind::Firing, Severity::Warning, 1);
        let env = alert_envelope(
            alert_event("a", &n1, None, "prod", "r", None),
            SystemTime::now(),
        );
        let text = String::from_utf8(env.unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["length"].as_u64().unwrap() as usize, lines[2].len());
    }

    #[test]
    fn check_ins_carry_a_monitor_config_from_the_round_interval() {
        let s = MonitorSchedule {
            interval: Duration::from_secs(600),
            jitter: Duration::from_secs(60),
            deadline: Duration::from_secs(600),
        };
        let c = check_in(
            "0".repeat(32).as_str(),
            "m",
            CheckInStatus::InProgress,
            None,
            "e",
            Some(&s),
        );
        assert_eq!(
            c["monitor_config"],
            json!({
                "schedule": { "type": "interval", "value": 10, "unit": "minute" },
                "checkin_margin": 2,
                "max_runtime": 10,
                "timezone": "UTC",
            })
        );
        // Sub-minute rounds are a one-minute schedule; merging keeps the most demanding.
        let fast = MonitorSchedule {
            interval: Duration::from_millis(200),
            jitter: Duration::ZERO,
            deadline: Duration::from_secs(5),
        };
        let m = s.merge(fast);
        assert_eq!(m.interval, Duration::from_millis(200));
        assert_eq!((m.jitter, m.deadline), (s.jitter, s.deadline));
        assert_eq!(fast.monitor_config()["schedule"]["value"], 1);
        assert_eq!(fast.monitor_config()["checkin_margin"], 1);
        // The SDK's envelope: one `check_in` item, no event id; the id is the 32 hex given.
        let id = "0123456789abcdef0123456789abcdef";
        let c = sdk_check_in(
            id,
            "m",
            CheckInStatus::Ok,
            Some(Duration::from_millis(1500)),
            "e",
            None,
        );
        let body = check_in_envelope(c, SystemTime::UNIX_EPOCH).unwrap();
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], r#"{"sent_at":"1970-01-01T00:00:00Z"}"#);
        assert_eq!(
            serde_json::from_str::<Value>(lines[1]).unwrap()["type"],
            "check_in"
        );
        assert_eq!(
            serde_json::from_str::<Value>(lines[2]).unwrap(),
            json!({"check_in_id": id, "monitor_slug": "m", "status": "ok", "environment": "e", "duration": 1.5})
        );
        assert!(
            check_in("x", "m", CheckInStatus::Ok, None, "e", None)
                .get("monitor_config")
                .is_none()
        );
    }
}
