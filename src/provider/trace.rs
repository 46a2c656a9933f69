//! W3C trace context for provider requests: a round runs inside its trace
//! ([`in_round`]), each request inside its span ([`in_request`]), and the HTTP transport sends
//! `traceparent` for the request it is in, so a traced model server (vLLM, TGI) joins the
//! round's trace.
//!
//! Ids are derived, not stored: the round's trace id from the target and the round's start,
//! a request's span id from the trace id and the sample's identity, each keyed by a secret
//! drawn from the operating system once per process. The exporter derives the same ids from
//! the finished round, so nothing has to travel from the request to the export, while two
//! processes (a restart that reuses a PID, containers that all run as PID 1) never share
//! a sequence.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A 128-bit trace id.
pub type TraceId = [u8; 16];
/// A 64-bit span id.
pub type SpanId = [u8; 8];

tokio::task_local! {
    static ROUND: TraceId;
    static REQUEST: (TraceId, SpanId);
}

/// The key ids are derived with; one per process ([`IdKey::process`]).
#[derive(Clone)]
pub struct IdKey([u8; 32]);

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey([redacted])")
    }
}

impl IdKey {
    /// A fresh key from the operating system's randomness.
    pub fn from_os() -> IdKey {
        IdKey(crate::rng::os_bytes())
    }

    /// This process's key, drawn on first use.
    pub fn process() -> &'static IdKey {
        static KEY: OnceLock<IdKey> = OnceLock::new();
        KEY.get_or_init(IdKey::from_os)
    }

    fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.0);
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().into()
    }

    /// The trace id of a target's round that started at `started_ms`.
    pub fn round_trace(&self, target: &str, started_ms: i64) -> TraceId {
        let d = self.digest(&[b"round", target.as_bytes(), &started_ms.to_le_bytes()]);
        nonzero(d[..16].try_into().expect("16 bytes"))
    }
}

/// The span id of a round's root span.
pub fn round_span(trace: &TraceId) -> SpanId {
    span(trace, &[b"round"])
}

/// The span id of one request of a round: a sample is identified by its probe and index.
pub fn request_span(trace: &TraceId, suite: &str, probe: &str, index: u32) -> SpanId {
    span(
        trace,
        &[
            b"request",
            suite.as_bytes(),
            probe.as_bytes(),
            &index.to_le_bytes(),
        ],
    )
}

fn span(trace: &TraceId, parts: &[&[u8]]) -> SpanId {
    let mut all: Vec<&[u8]> = vec![trace];
    all.extend_from_slice(parts);
    let d = IdKey::process().digest(&all);
    nonzero(d[..8].try_into().expect("8 bytes"))
}

/// All-zero ids are invalid in W3C trace context and OTLP.
fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id.iter().all(|b| *b == 0) {
        id[N - 1] = 1;
    }
    id
}

/// Runs a round inside its trace.
pub async fn in_round<F: std::future::Future>(trace: TraceId, round: F) -> F::Output {
    ROUND.scope(trace, round).await
}

/// Runs one request of the current round (if any) inside its span.
pub async fn in_request<F: std::future::Future>(
    suite: &str,
    probe: &str,
    index: u32,
    request: F,
) -> F::Output {
    match ROUND.try_with(|t| *t) {
        Ok(trace) => {
            let span = request_span(&trace, suite, probe, index);
            REQUEST.scope((trace, span), request).await
        }
        Err(_) => request.await,
    }
}

/// The `traceparent` header value of the request being sent, when it runs inside a round.
pub fn traceparent() -> Option<String> {
    REQUEST
        .try_with(|(trace, span)| format!("00-{}-{}-01", hex(trace), hex(span)))
        .ok()
}

/// Lower-case hex, as W3C trace context and OTLP/JSON spell ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_the_os_differ_where_a_pid_seed_repeats() {
        // Two keys in one process stand for two processes that got the same PID.
        let (a, b) = (IdKey::from_os(), IdKey::from_os());
        assert_ne!(a.round_trace("t", 1000), b.round_trace("t", 1000));
        assert_eq!(a.round_trace("t", 1000), a.round_trace("t", 1000));
        assert_ne!(a.round_trace("t", 1000), a.round_trace("t", 1001));
        assert_ne!(a.round_trace("t", 1000), a.round_trace("u", 1000));
    }

    #[tokio::test]
    async fn a_request_in_a_round_carries_its_span_in_traceparent() {
        assert_eq!(traceparent(), None);
        let trace = IdKey::process().round_trace("t", 5);
        let seen = in_round(trace, async {
            in_request("s", "p", 3, async { traceparent() }).await
        })
        .await
        .unwrap();
        let want = format!(
            "00-{}-{}-01",
            hex(&trace),
            hex(&request_span(&trace, "s", "p", 3))
        );
        assert_eq!(seen, want);
        assert_eq!(seen.len(), 55);
        assert_ne!(
            request_span(&trace, "s", "p", 3),
            request_span(&trace, "s", "p", 4)
        );
        assert_ne!(request_span(&trace, "s", "p", 3), round_span(&trace));
        // Outside a round, a request sends no header.
        assert_eq!(in_request("s", "p", 3, async { traceparent() }).await, None);
    }
}
