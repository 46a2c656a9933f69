//! The metrics a verdict is given for, and how each is read from a sample's measurements.

use crate::sample::{Measurements, StructuredOutcome};
use serde::{Serialize, Serializer};

/// What a metric says about the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Answer quality: decides the overall verdict.
    Quality,
    /// A breakdown of a quality metric (structured-output failures by kind): explains, does
    /// not decide.
    Diagnostic,
    /// Latency and time to first token: reported separately, decides only when
    /// `Margins::performance_gates` is on.
    Performance,
    /// Whether the served model behaves like the reference (its texts): a warning, never a
    /// quality verdict.
    Behaviour,
}

/// One measured quantity compared between two sample sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Refusals on probes that do not expect one (benign prompts).
    RefusalRate,
    /// Answers that did not refuse, on probes that expect a refusal (`expect.refusal = true`).
    MissedRefusalRate,
    /// Partial refusals (answers, but withholds the specific part asked for) on probes that do
    /// not expect a refusal: a breakdown of `refusal_rate`, since "answers less" is a distinct
    /// degradation from "refuses".
    PartialRefusalRate,
    EmptyRate,
    /// Any structured-output failure among samples of probes expecting JSON.
    StructuredFailureRate,
    /// One kind of structured-output failure.
    StructuredKind(StructuredOutcome),
    /// Failed task checks among samples of probes with one.
    TaskFailureRate,
    TruncationRate,
    LengthChars,
    LengthTokens,
    /// The shape of answers' length distribution per suite (beyond its location).
    LengthShape,
    /// The response texts themselves: a two-sample test of "is this the same model?".
    Behaviour,
    Latency,
    Ttft,
}

/// Binary metrics in report order (structured kinds are added after these).
pub const BINARY: [Metric; 6] = [
    Metric::RefusalRate,
    Metric::MissedRefusalRate,
    Metric::EmptyRate,
    Metric::StructuredFailureRate,
    Metric::TaskFailureRate,
    Metric::TruncationRate,
];

/// Diagnostic rate metrics (they explain a quality metric, never decide), reported when either
/// side has an occurrence; structured failure kinds are added beside them.
pub const DIAGNOSTIC_RATES: [Metric; 1] = [Metric::PartialRefusalRate];

/// Deprecated metric ids and their successors (accepted as input for one release).
pub const DEPRECATED_IDS: [(&str, &str); 1] = [("task_success_rate", "task_failure_rate")];

/// Distribution metrics in report order.
pub const CONTINUOUS: [Metric; 4] = [
    Metric::LengthChars,
    Metric::LengthTokens,
    Metric::Latency,
    Metric::Ttft,
];

impl Metric {
    /// Stable machine name (`refusal_rate`, `structured_failure_rate.no_json`, …).
    pub fn id(&self) -> String {
        match self {
            Metric::RefusalRate => "refusal_rate".into(),
            Metric::MissedRefusalRate => "missed_refusal_rate".into(),
            Metric::PartialRefusalRate => "partial_refusal_rate".into(),
            Metric::EmptyRate => "empty_rate".into(),
            Metric::StructuredFailureRate => "structured_failure_rate".into(),
            Metric::StructuredKind(k) => format!("structured_failure_rate.{}", k.as_str()),
            Metric::TaskFailureRate => "task_failure_rate".into(),
            Metric::TruncationRate => "truncation_rate".into(),
            Metric::LengthChars => "length_chars".into(),
            Metric::LengthTokens => "length_tokens".into(),
            Metric::LengthShape => "length_shape".into(),
            Metric::Behaviour => "behaviour".into(),
            Metric::Latency => "latency".into(),
            Metric::Ttft => "ttft".into(),
        }
    }

    /// Human name.
    pub fn label(&self) -> String {
        match self {
            Metric::RefusalRate => "Refusal rate".into(),
            Metric::MissedRefusalRate => "Missed refusals".into(),
            Metric::PartialRefusalRate => "of which partial refusals".into(),
            Metric::EmptyRate => "Empty responses".into(),
            Metric::StructuredFailureRate => "Structured-output failures".into(),
            Metric::StructuredKind(k) => format!("of which {}", k.as_str().replace('_', " ")),
            Metric::TaskFailureRate => "Task failures".into(),
            Metric::TruncationRate => "Truncation rate".into(),
            Metric::LengthChars => "Length (chars)".into(),
            Metric::LengthTokens => "Length (tokens)".into(),
            Metric::LengthShape => "Length shape".into(),
            Metric::Behaviour => "Behaviour (texts)".into(),
            Metric::Latency => "Latency".into(),
            Metric::Ttft => "Time to first token".into(),
        }
    }

    pub fn category(&self) -> Category {
        match self {
            Metric::StructuredKind(_) | Metric::PartialRefusalRate => Category::Diagnostic,
            Metric::Latency | Metric::Ttft => Category::Performance,
            Metric::Behaviour => Category::Behaviour,
            _ => Category::Quality,
        }
    }

    pub fn is_rate(&self) -> bool {
        !CONTINUOUS.contains(self) && !self.is_distance()
    }

    /// Metrics whose effect is a distance between distributions (no rate, no shift).
    pub fn is_distance(&self) -> bool {
        matches!(self, Metric::LengthShape | Metric::Behaviour)
    }

    /// The binary outcome of a rate metric on one sample, when the metric applies to it.
    /// `refusal_expected`: the sample's probe expects a refusal.
    pub fn outcome(&self, m: &Measurements, refusal_expected: bool) -> Option<bool> {
        match self {
            Metric::RefusalRate => (!refusal_expected).then_some(m.refusal),
            Metric::MissedRefusalRate => refusal_expected.then_some(!m.refusal),
            Metric::PartialRefusalRate => (!refusal_expected).then_some(m.partial_refusal),
            Metric::EmptyRate => Some(m.empty),
            Metric::StructuredFailureRate => m.structured.map(StructuredOutcome::is_failure),
            Metric::StructuredKind(k) => m.structured.map(|s| s == *k),
            Metric::TaskFailureRate => m.task_success.map(|ok| !ok),
            Metric::TruncationRate => Some(m.truncated),
            _ => None,
        }
    }

    /// For rates: whether a higher rate is worse. Every rate counts the bad outcome, so this
    /// is always true; callers that orient a difference keep asking rather than assuming.
    pub fn higher_is_worse(&self) -> bool {
        true
    }

    /// The current id of a metric name, mapping deprecated names (kept for one release where
    /// they were inputs: silences, stored alert keys, `--metric` flags) to their successors.
    pub fn canonical_id(name: &str) -> &str {
        DEPRECATED_IDS
            .iter()
            .find(|(old, _)| *old == name)
            .map_or(name, |(_, new)| new)
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id())
    }
}
