//! The vocabulary of one observation: what a provider returned ([`Completion`]), how it failed
//! ([`SampleError`]), what evaluation measured ([`Measurements`]) and the stored [`Sample`].
//!
//! Infrastructure failures and quality measurements are different types on purpose: a sample
//! either has measurements or an error, so a timeout can never be counted as a refusal.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why generation stopped, normalised across providers (`finish_reason`, `done_reason`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Hit `max_tokens` / `num_predict`: the answer is truncated.
    Length,
    /// The provider filtered the content.
    ContentFilter,
    /// The model asked for a tool call.
    ToolCalls,
    /// Anything else, kept as the provider spelled it (cut by [`FinishReason::parse`]).
    #[serde(untagged)]
    Other(String),
}

impl FinishReason {
    /// The most characters of an unknown reason that are kept: the string is the server's to
    /// choose, and it is stored with every sample and printed in reports.
    pub const MAX_OTHER_CHARS: usize = 64;

    /// Maps a provider's reason string (`stop`, `eos`, `length`, `content_filter`, …); an
    /// unknown one is kept, cut to [`Self::MAX_OTHER_CHARS`].
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" | "eos" | "stop_sequence" | "end_turn" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.chars().take(Self::MAX_OTHER_CHARS).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(s) => s,
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful response from a model server, before evaluation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text (concatenated deltas when streaming).
    pub text: String,
    /// OpenAI's explicit `refusal` field, when the provider sets it.
    pub refusal: Option<String>,
    pub finish_reason: Option<FinishReason>,
    /// Output tokens reported by the server (`usage.completion_tokens`, `eval_count`).
    pub output_tokens: Option<u32>,
    pub input_tokens: Option<u32>,
    /// The model name the server says answered.
    pub response_model: Option<String>,
    /// OpenAI-compatible `system_fingerprint`.
    pub system_fingerprint: Option<String>,
    /// Wall time from sending the request to the end of the body, in milliseconds.
    pub latency_ms: f64,
    /// Time to the first generated content (streaming only), in milliseconds.
    pub ttft_ms: Option<f64>,
    /// Attempts made, including retries (1 when the first attempt succeeded).
    pub attempts: u32,
}

/// Classes of infrastructure failure. These are availability, never model quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Could not connect (refused, unresolvable host, TLS handshake).
    Connect,
    /// A connect, first-byte or total timeout elapsed.
    Timeout,
    /// The server answered with a non-success HTTP status.
    HttpStatus,
    /// The body was not what the API promises (bad JSON, wrong shape, broken stream).
    MalformedBody,
    /// The body exceeded the configured size cap.
    TooLarge,
    /// The request was cancelled (shutdown).
    Cancelled,
    /// The round deadline passed before the request finished: cancelled in flight, or never
    /// sent.
    Deadline,
    /// The model answered, but checking the answer ran past its budget (e.g. a backtracking
    /// pattern against a huge answer): the sample is unjudged, not a quality failure.
    CheckTimeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::HttpStatus,
        ErrorKind::MalformedBody,
        ErrorKind::TooLarge,
        ErrorKind::Cancelled,
        ErrorKind::Deadline,
        ErrorKind::CheckTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::MalformedBody => "malformed_body",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Deadline => "deadline",
            ErrorKind::CheckTimeout => "check_timeout",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// True when the model server did answer (the failure came after the answer).
    pub fn answered(self) -> bool {
        self == ErrorKind::CheckTimeout
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: the kind, the HTTP status when there was one, and a message that never
/// contains credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
pub struct SampleError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
    /// Attempts made, including retries.
    pub attempts: u32,
    /// Wall time spent until giving up, in milliseconds.
    pub latency_ms: f64,
}

/// Marks, in a message, a failure to open a connection at all (as opposed to one that broke
/// after the server accepted it): written by the HTTP transport, read by [`SampleError::unreachable`].
pub const COULD_NOT_CONNECT: &str = "could not connect";
/// See [`COULD_NOT_CONNECT`]: the connection was not established within `connect_timeout`.
pub const CONNECT_TIMED_OUT: &str = "connecting timed out (connect_timeout)";

impl SampleError {
    /// True when no connection to the server could be opened (refused, unresolvable host, TLS
    /// handshake, connect timeout): the server is down or unreachable, not slow or broken.
    pub fn unreachable(&self) -> bool {
        match self.kind {
            ErrorKind::Connect => self.message.contains(COULD_NOT_CONNECT),
            ErrorKind::Timeout => self.message.contains(CONNECT_TIMED_OUT),
            _ => false,
        }
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SampleError {
            kind,
            status: None,
            message: message.into(),
            attempts: 1,
            latency_ms: 0.0,
        }
    }
}

/// Outcome of a probe that expects structured (JSON) output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutcome {
    Ok,
    /// No JSON found in the response.
    NoJson,
    /// Something JSON-like was found but did not parse.
    InvalidJson,
    /// Parsed, but violates the probe's JSON Schema.
    SchemaViolation,
    /// Cut off by the token limit with broken JSON.
    Truncated,
    /// The model refused instead of answering.
    Refused,
}

impl StructuredOutcome {
    pub const ALL: [StructuredOutcome; 6] = [
        StructuredOutcome::Ok,
        StructuredOutcome::NoJson,
        StructuredOutcome::InvalidJson,
        StructuredOutcome::SchemaViolation,
        StructuredOutcome::Truncated,
        StructuredOutcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StructuredOutcome::Ok => "ok",
            StructuredOutcome::NoJson => "no_json",
            StructuredOutcome::InvalidJson => "invalid_json",
            StructuredOutcome::SchemaViolation => "schema_violation",
            StructuredOutcome::Truncated => "truncated",
            StructuredOutcome::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_failure(self) -> bool {
        self != StructuredOutcome::Ok
    }
}

impl fmt::Display for StructuredOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What evaluation measured on one successful response. Pure data, produced by `eval`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Measurements {
    pub chars: u32,
    /// Unicode-aware word count.
    pub words: u32,
    pub lines: u32,
    /// From the server's usage when given, else estimated (see `tokens_estimated`).
    pub output_tokens: u32,
    pub tokens_estimated: bool,
    /// Finish reason was `length`.
    pub truncated: bool,
    /// Empty or whitespace-only response (its own outcome, not a refusal).
    pub empty: bool,
    pub refusal: bool,
    /// The rule that decided the refusal judgement (e.g. `provider:refusal_field`,
    /// `lexicon:en:cant_help`), when one fired.
    pub refusal_rule: Option<String>,
    /// The refusal withholds only part of an answer ("I can't give exact dosages, but in
    /// general …"); such a response also counts in `refusal`. Absent (false) in older files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial_refusal: bool,
    /// Present when the probe expects JSON.
    pub structured: Option<StructuredOutcome>,
    /// Present when the probe has a task check.
    pub task_success: Option<bool>,
}

/// One response to one probe, as stored: identity, timing, and either measurements or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub target: String,
    pub suite: String,
    pub probe_id: String,
    /// Content hash of the probe that was sent (see `probe::Probe::hash`).
    pub probe_hash: String,
    /// Index of this sample within its probe in the round (0-based).
    pub index: u32,
    /// Unix time in milliseconds when the request started.
    pub started_at_ms: i64,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub attempts: u32,
    pub finish_reason: Option<FinishReason>,
    pub input_tokens: Option<u32>,
    pub response_model: Option<String>,
    pub system_fingerprint: Option<String>,
    /// Quality measurements; `None` exactly when `error` is set.
    pub measurements: Option<Measurements>,
    /// Infrastructure failure; never a quality outcome.
    pub error: Option<SampleError>,
    /// The `seed` the request was sent with, if any: samples of one probe sent the same seed
    /// to servers that honour it pair up (`compare` by seed, the canary).
    pub seed: Option<u64>,
    /// Raw response text, kept subject to the store's retention.
    pub text: Option<String>,
}

impl Sample {
    /// Sample `index` of a probe whose request started at `started_at_ms`, before anything is
    /// known of the answer: no measurements, no error, no text yet.
    pub fn pending(
        target: &str,
        suite: &str,
        probe_id: &str,
        probe_hash: &str,
        index: u32,
        started_at_ms: i64,
    ) -> Sample {
        Sample {
            seed: None,
            target: target.to_string(),
            suite: suite.to_string(),
            probe_id: probe_id.to_string(),
            probe_hash: probe_hash.to_string(),
            index,
            started_at_ms,
            latency_ms: 0.0,
            ttft_ms: None,
            attempts: 1,
            finish_reason: None,
            input_tokens: None,
            response_model: None,
            system_fingerprint: None,
            measurements: None,
            error: None,
            text: None,
        }
    }

    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_normalise_across_providers() {
        assert_eq!(FinishReason::parse("eos"), FinishReason::Stop);
        assert_eq!(FinishReason::parse("length"), FinishReason::Length);
        assert_eq!(
            FinishReason::parse("weird"),
            FinishReason::Other("weird".into())
        );
        let long = FinishReason::parse(&"y".repeat(50_000));
        assert_eq!(long.as_str().len(), FinishReason::MAX_OTHER_CHARS);
        let json = serde_json::to_string(&FinishReason::Other("weird".into())).unwrap();
        assert_eq!(json, "\"weird\"");
        let back: FinishReason = serde_json::from_str("\"length\"").unwrap();
        assert_eq!(back, FinishReason::Length);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        for k in StructuredOutcome::ALL {
            assert_eq!(StructuredOutcome::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn sample_error_message_includes_status() {
        let mut e = SampleError::new(ErrorKind::HttpStatus, "server error");
        e.status = Some(503);
        assert_eq!(e.to_string(), "http_status 503: server error");
    }
}
