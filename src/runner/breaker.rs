//! The per-round circuit breaker and the samples of requests a round did not finish.
//!
//! A server that is down must cost one connection attempt per round, not every request's
//! retries: once a request (or the fingerprint) of a round finds the server unreachable
//! ([`SampleError::unreachable`]), the round's remaining requests fail at once with the same
//! error kind, without touching the network. The breaker lives for one round only, so the next
//! round tries again.

use super::{PlanItem, RoundOutcome};
use crate::sample::{ErrorKind, Sample, SampleError};
use std::sync::Mutex;

/// Trips on the first unreachable-server error of a round.
#[derive(Debug)]
pub struct Breaker {
    target: String,
    tripped: Mutex<Option<SampleError>>,
}

impl Breaker {
    pub fn new(target: &str) -> Breaker {
        Breaker {
            target: target.to_string(),
            tripped: Mutex::new(None),
        }
    }

    /// Looks at a failed request: an unreachable server trips the breaker.
    pub fn observe(&self, error: &SampleError) {
        if !error.unreachable() {
            return;
        }
        if let Ok(mut t) = self.tripped.lock()
            && t.is_none()
        {
            *t = Some(error.clone());
        }
    }

    /// The first unreachable-server error of the round, when there was one.
    pub fn tripped(&self) -> Option<SampleError> {
        self.tripped.lock().ok().and_then(|t| t.clone())
    }

    /// The error a request gets instead of being sent once the breaker has tripped: the same
    /// kind, the original cause, no attempt made.
    pub fn fast_fail(&self) -> Option<SampleError> {
        let first = self.tripped()?;
        Some(SampleError {
            kind: first.kind,
            status: first.status,
            message: format!(
                "not sent: {} was unreachable earlier in this round ({})",
                self.target, first.message
            ),
            attempts: 0,
            latency_ms: 0.0,
        })
    }
}

/// The error of a request the round deadline cut: `sent_at_ms` is when it was sent (then it
/// was cancelled in flight), `None` when it was never sent.
pub fn deadline_error(
    target: &str,
    deadline: &str,
    sent_at_ms: Option<i64>,
    cut_at_ms: i64,
) -> SampleError {
    let (message, attempts, latency_ms) = match sent_at_ms {
        Some(at) => (
            format!(
                "{target}: no answer before the round deadline ({deadline}); the request was \
                 cancelled. Raise round_deadline or lower the samples per round"
            ),
            1,
            (cut_at_ms - at).max(0) as f64,
        ),
        None => (
            format!(
                "{target}: not sent before the round deadline ({deadline}): the round's earlier \
                 requests took all of it (slow answers, or retries of failures: see their \
                 errors). Check the server; else raise round_deadline or max_concurrency, or \
                 lower the samples per round"
            ),
            0,
            0.0,
        ),
    };
    SampleError {
        kind: ErrorKind::Deadline,
        status: None,
        message,
        attempts,
        latency_ms,
    }
}

/// The round deadline passed before the server answered the fingerprint request, the round's
/// first: that request was sent and hung (`sent`), no probe was sent (the others). The advice is
/// about the server, not the deadline.
pub fn fingerprint_hung(
    target: &str,
    deadline: &str,
    sent: bool,
    started_at_ms: i64,
    cut_at_ms: i64,
) -> SampleError {
    let what = if sent {
        "no answer to the fingerprint request"
    } else {
        "not sent: no answer to the fingerprint request, sent first,"
    };
    SampleError {
        kind: ErrorKind::Deadline,
        status: None,
        message: format!(
            "{target}: {what} before the round deadline ({deadline}); no probe was sent. The \
             server hangs or is overloaded: check it with `modelwatch doctor`"
        ),
        attempts: u32::from(sent),
        latency_ms: if sent {
            (cut_at_ms - started_at_ms).max(0) as f64
        } else {
            0.0
        },
    }
}

/// The sample of a plan item the round deadline cut (see [`deadline_error`]).
pub fn deadline_sample(
    target: &str,
    item: &PlanItem,
    deadline: &str,
    sent_at_ms: Option<i64>,
    cut_at_ms: i64,
) -> Sample {
    let error = deadline_error(target, deadline, sent_at_ms, cut_at_ms);
    cut_sample(target, item, error, sent_at_ms.unwrap_or(cut_at_ms))
}

/// The sample of a plan item that failed with `error` at `at_ms`, before or without an answer.
pub fn cut_sample(target: &str, item: &PlanItem, error: SampleError, at_ms: i64) -> Sample {
    let mut sample = item.pending_sample(target, at_ms);
    sample.attempts = error.attempts;
    sample.latency_ms = error.latency_ms;
    sample.error = Some(error);
    sample
}

/// The first error of a round that measured nothing (the fingerprint's, else a sample's).
fn first_error(outcome: &RoundOutcome) -> Option<&SampleError> {
    if outcome.measured() {
        return None;
    }
    let fingerprint = outcome.fingerprint.as_ref().err();
    fingerprint
        .filter(|e| e.unreachable())
        .or_else(|| outcome.samples.iter().find_map(|s| s.error.as_ref()))
        .or(fingerprint)
}

/// One line naming why a round measured nothing, for the end of `run`: the unreachable server
/// in plain words ("target chat: connection refused at http://127.0.0.1:9/v1 — is the server
/// running?"), or the first error otherwise. `None` when the round measured something.
pub fn failure_line(target: &str, base_url: &str, outcome: &RoundOutcome) -> Option<String> {
    let error = first_error(outcome)?;
    let url = crate::provider::http::display_url(base_url);
    if !error.unreachable() {
        return Some(format!(
            "target {target}: every request failed at {url}; the first: {error}"
        ));
    }
    let text = error.message.to_lowercase();
    let cause = if text.contains("connection refused") {
        "connection refused"
    } else if error.kind == ErrorKind::Timeout {
        "no connection within connect_timeout"
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        "host name not found"
    } else if text.contains("certificate") || text.contains("tls") || text.contains("ssl") {
        "TLS handshake failed"
    } else {
        "could not connect"
    };
    Some(format!(
        "target {target}: {cause} at {url} — is the server running?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::COULD_NOT_CONNECT;

    fn refused() -> SampleError {
        SampleError::new(
            ErrorKind::Connect,
            format!(
                "POST /v1/chat/completions on 127.0.0.1:9: {}: tcp connect error: Connection \
                 refused (os error 111); is the server running at base_url?",
                crate::sample::COULD_NOT_CONNECT
            ),
        )
    }

    #[test]
    fn trips_only_on_unreachable_servers_and_keeps_the_first_cause() {
        let b = Breaker::new("chat");
        let mut status = SampleError::new(ErrorKind::HttpStatus, "server answered 503");
        status.status = Some(503);
        b.observe(&status);
        let reset = SampleError::new(
            ErrorKind::Connect,
            "POST /x on h:1: connection failed before a response: reset",
        );
        b.observe(&reset);
        let slow = SampleError::new(ErrorKind::Timeout, "no response headers within 60s");
        b.observe(&slow);
        assert!(
            b.fast_fail().is_none(),
            "503, reset and slow are not a dead server"
        );

        b.observe(&refused());
        let timed_out = SampleError::new(
            ErrorKind::Timeout,
            format!(
                "GET /v1/models on h:1: {}: x",
                crate::sample::CONNECT_TIMED_OUT
            ),
        );
        assert!(timed_out.unreachable());
        b.observe(&timed_out);
        let fast = b.fast_fail().expect("tripped");
        assert_eq!(fast.kind, ErrorKind::Connect);
        assert_eq!(fast.attempts, 0);
        assert!(fast.message.starts_with("not sent: chat was unreachable"));
        assert!(
            fast.message.contains("Connection refused"),
            "{}",
            fast.message
        );
    }

    #[test]
    fn deadline_errors_say_whether_the_request_was_sent() {
        let sent = deadline_error("t", "10s", Some(1_000), 4_000);
        assert_eq!(sent.kind, ErrorKind::Deadline);
        assert_eq!((sent.attempts, sent.latency_ms), (1, 3_000.0));
        assert!(sent.message.contains("cancelled"), "{}", sent.message);
        let unsent = deadline_error("t", "10s", None, 4_000);
        assert_eq!((unsent.attempts, unsent.latency_ms), (0, 0.0));
        assert!(
            unsent
                .message
                .contains("not sent before the round deadline (10s)")
        );
    }

    #[test]
    fn the_failure_line_names_the_cause_and_hides_credentials() {
        let outcome =
            |fingerprint: Result<crate::provider::Fingerprint, SampleError>| RoundOutcome {
                fingerprint,
                started_at_ms: 0,
                ended_at_ms: 0,
                samples: vec![],
                cut: false,
            };
        let url = "http://user:secret@10.0.0.1:8000/v1";
        let line = failure_line("chat", url, &outcome(Err(refused()))).unwrap();
        assert_eq!(
            line,
            "target chat: connection refused at http://user:%5Bredacted%5D@10.0.0.1:8000/v1 — is the server running?"
        );
        let timeout = SampleError::new(
            ErrorKind::Timeout,
            format!(
                "GET /v1/models on h:1: {}: x",
                crate::sample::CONNECT_TIMED_OUT
            ),
        );
        let line = failure_line("chat", url, &outcome(Err(timeout))).unwrap();
        assert!(
            line.contains(": no connection within connect_timeout at"),
            "{line}"
        );
        let dns = SampleError::new(
            ErrorKind::Connect,
            format!(
                "GET /v1/models on nohost:1: {}: dns error: failed to lookup address",
                COULD_NOT_CONNECT
            ),
        );
        let line = failure_line("chat", url, &outcome(Err(dns))).unwrap();
        assert!(line.contains(": host name not found at"), "{line}");
        let mut not_found = SampleError::new(ErrorKind::HttpStatus, "server answered 404");
        not_found.status = Some(404);
        let line = failure_line("chat", url, &outcome(Err(not_found))).unwrap();
        assert!(line.contains("every request failed"), "{line}");
        assert!(
            line.contains("http_status 404: server answered 404"),
            "{line}"
        );
        // Nothing failed, nothing to explain.
        assert!(failure_line("chat", url, &outcome(Ok(Default::default()))).is_none());
    }
}
