//! Webhook sink: one JSON POST per notification.
//!
//! The body is the documented [`payload`] (format `json`) or `{"text": "…"}` (format `slack`,
//! for Slack incoming webhooks and compatible services). Every request carries
//! `Idempotency-Key` (the same on every retry of one notification) and, with a secret, the
//! Standard Webhooks signature headers:
//!
//! - `webhook-id`: the idempotency key;
//! - `webhook-timestamp`: Unix seconds of this attempt (so a receiver can refuse a replay);
//! - `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
//!   decoded key of a `whsec_<base64>` secret, else with the secret's bytes.
//!
//! `X-Modelwatch-Signature: sha256=<hex HMAC-SHA256 of the body>` is still sent, deprecated: it
//! covers no timestamp, and goes away in the next release.
//!
//! Any 2xx is success; 408, 429, 5xx and no answer are retried by the outbox (after
//! `Retry-After`); any other 4xx is a rejection, not retried.

use super::hmac::{hmac_sha256, hmac_sha256_parts};
use super::{AlertSink, Notification, NotificationKind, SinkError, SinkFuture};
use crate::config::{Secret, Webhook, WebhookFormat};
use crate::time::rfc3339_utc;
use crate::util::hex;
use serde_json::{Value, json};
use std::time::Duration;

/// Version of the JSON payload; bumped only for incompatible changes.
pub const PAYLOAD_VERSION: u32 = 1;

/// The `json` payload of one notification.
pub fn payload(key: &str, n: &Notification) -> Value {
    json!({
        "version": PAYLOAD_VERSION,
        "idempotency_key": key,
        "kind": n.kind.as_str(),
        "severity": n.severity.as_str(),
        "target": n.key.target,
        "metric": n.key.metric,
        "incident": n.incident,
        "at": rfc3339_utc(n.at_ms),
        "summary": n.evidence.as_ref().map(|e| e.summary.as_str()).unwrap_or(""),
        "evidence": n.evidence,
    })
}

/// One line of text for chat tools.
pub fn text(n: &Notification) -> String {
    let icon = match (n.kind, n.severity) {
        (NotificationKind::Resolved, _) => ":white_check_mark:",
        (NotificationKind::Info, _) => ":information_source:",
        (_, super::Severity::Critical) => ":rotating_light:",
        _ => ":warning:",
    };
    let summary = n
        .evidence
        .as_ref()
        .map(|e| e.summary.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("");
    let mut t = format!(
        "{icon} modelwatch {} {} `{}` ({})",
        n.severity.as_str(),
        n.kind.as_str(),
        n.key,
        n.incident
    );
    if !summary.is_empty() {
        t.push_str(": ");
        t.push_str(summary);
    }
    t
}

/// The `webhook-signature` value (Standard Webhooks `v1`) of one attempt: `key` is
/// [`Webhook::signing_key`] of the secret, `id` the `webhook-id`, `timestamp` the
/// `webhook-timestamp`.
pub fn standard_signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    use base64::Engine;
    let ts = timestamp.to_string();
    let mac = hmac_sha256_parts(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    )
}

/// The deprecated `X-Modelwatch-Signature` value of a body (HMAC over the body alone).
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex(&hmac_sha256(secret.expose().as_bytes(), body))
    )
}

pub struct WebhookSink {
    config: Webhook,
    /// The `webhook-signature` key, decoded once.
    key: Option<Vec<u8>>,
    client: reqwest::Client,
}

impl WebhookSink {
    pub fn new(config: Webhook, timeout: Duration) -> Result<WebhookSink, SinkError> {
        let err = |e: String| {
            SinkError::permanent("webhook", "", format!("cannot build the HTTP client: {e}"))
        };
        let builder = config
            .trust()
            .apply(crate::provider::http::outbound_client().timeout(timeout))
            .map_err(err)?;
        let client = builder.build().map_err(|e| err(e.to_string()))?;
        let key = match &config.secret {
            Some(s) => Some(Webhook::signing_key(s).map_err(|e| {
                SinkError::permanent("webhook", "", format!("invalid signing secret: {e}"))
            })?),
            None => None,
        };
        Ok(WebhookSink {
            config,
            key,
            client,
        })
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> SinkFuture<'a> {
        Box::pin(async move {
            let key = super::idempotency_key(n);
            self.send(&key, n).await
        })
    }

    fn deliver_keyed<'a>(&'a self, key: &'a str, n: &'a Notification) -> SinkFuture<'a> {
        Box::pin(self.send(key, n))
    }
}

impl WebhookSink {
    async fn send(&self, key: &str, n: &Notification) -> Result<(), SinkError> {
        let err = |reason: String| SinkError::transient("webhook", n.incident.clone(), reason);
        let body = match self.config.format {
            WebhookFormat::Json => payload(key, n),
            WebhookFormat::Slack => json!({ "text": text(n) }),
        };
        let body = serde_json::to_vec(&body).map_err(|e| err(e.to_string()))?;
        let mut req = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("idempotency-key", key);
        if let (Some(secret), Some(k)) = (&self.config.secret, &self.key) {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            req = req
                .header("webhook-id", key)
                .header("webhook-timestamp", ts)
                .header("webhook-signature", standard_signature(k, key, ts, &body))
                .header("x-modelwatch-signature", signature(secret, &body));
        }
        // The URL may carry a token (Slack): errors name the host only.
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| err(crate::provider::tls::request_failure(e)))?;
        super::sink::check_response("webhook", &n.incident, &resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, Evidence, Severity};

    #[test]
    fn payload_and_text_carry_the_notification() {
        let n = Notification {
            kind: NotificationKind::Firing,
            key: AlertKey::new("chat", "refusal_rate"),
            severity: Severity::Warning,
            incident: "chat/refusal_rate#2".into(),
            at_ms: 1_764_000_000_000,
            evidence: Some(Evidence {
                summary: "refusals 2% → 20%".into(),
                samples: 40,
                ..Evidence::default()
            }),
            muted: false,
        };
        let p = payload("k", &n);
        assert_eq!(p["version"], 1);
        assert_eq!(p["kind"], "firing");
        assert_eq!(p["target"], "chat");
        assert_eq!(p["evidence"]["samples"], 40);
        assert_eq!(p["at"], "2025-11-24T16:00:00.000Z");
        let t = text(&n);
        assert!(
            t.contains("chat/refusal_rate") && t.contains("refusals 2% → 20%"),
            "{t}"
        );
        let sig = signature(&Secret::new("0123456789abcdef"), b"{}");
        assert_eq!(sig.len(), 7 + 64);
        assert!(sig.starts_with("sha256="));
    }

    /// The specification's own example (secret, id, timestamp, body and signature).
    #[test]
    fn standard_signature_matches_the_specification_example() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = Webhook::signing_key(&secret).unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // A plain secret is its own bytes; the timestamp is covered.
        let plain = Webhook::signing_key(&Secret::new("0123456789abcdef")).unwrap();
        assert_eq!(plain, b"0123456789abcdef");
        assert_ne!(
            standard_signature(&plain, "a", 1, b"{}"),
            standard_signature(&plain, "a", 2, b"{}")
        );
        for bad in ["whsec_not base64!", "whsec_c2hvcnQ="] {
            assert!(Webhook::signing_key(&Secret::new(bad)).is_err(), "{bad}");
        }
    }
}
