//! Per-stream readings of production traffic (a stream is a target × route): the same
//! measurements as the probes' (length, refusal, partial refusal, empty answers, truncation,
//! finish reasons, latency), counted since the daemon started. Pure: rows in, numbers out.

use crate::sample::StructuredOutcome;
use crate::store::TrafficRow;
use crate::telemetry::quality::LENGTH_BUCKETS;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Finish reasons counted by name; any other is counted as `other` (bounded labels).
const FINISH_REASONS: [&str; 4] = ["stop", "length", "content_filter", "tool_calls"];

/// A stream's identity.
pub type StreamKey = (String, String);

/// Counts of one stream since the start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    pub completions: u64,
    /// Completions whose text was sent, so refusal and emptiness could be judged.
    pub judged: u64,
    pub refusals: u64,
    pub partial_refusals: u64,
    pub empty: u64,
    /// Completions whose finish reason was sent.
    pub with_finish_reason: u64,
    pub truncated: u64,
    pub finish_reasons: BTreeMap<String, u64>,
    /// Per bound of [`LENGTH_BUCKETS`] (cumulative), with the sum and count of known lengths.
    pub length_buckets: [u64; LENGTH_BUCKETS.len()],
    pub length_sum: f64,
    pub length_count: u64,
    pub latency_sum_ms: f64,
    pub latency_count: u64,
    pub last_received_ms: i64,
    /// Completions received while the route declared a JSON Schema.
    pub schema: u64,
    /// Of these, the ones with a structured-output outcome (sent with their text), by outcome.
    pub structured: BTreeMap<StructuredOutcome, u64>,
}

impl StreamStats {
    pub fn observe(&mut self, r: &TrafficRow) {
        self.completions += 1;
        self.last_received_ms = self.last_received_ms.max(r.received_at_ms);
        if let Some(refusal) = r.refusal {
            self.judged += 1;
            self.refusals += u64::from(refusal);
            self.partial_refusals += u64::from(r.partial_refusal == Some(true));
            self.empty += u64::from(r.empty == Some(true));
        }
        if let Some(f) = &r.finish_reason {
            self.with_finish_reason += 1;
            self.truncated += u64::from(r.truncated);
            let name = if FINISH_REASONS.contains(&f.as_str()) {
                f.as_str()
            } else {
                "other"
            };
            *self.finish_reasons.entry(name.to_string()).or_default() += 1;
        }
        if let Some(c) = r.chars {
            let c = f64::from(c);
            self.length_sum += c;
            self.length_count += 1;
            for (n, bound) in self.length_buckets.iter_mut().zip(LENGTH_BUCKETS) {
                *n += u64::from(c <= bound);
            }
        }
        if let Some(l) = r.latency_ms.filter(|l| l.is_finite()) {
            self.latency_sum_ms += l;
            self.latency_count += 1;
        }
        self.schema += u64::from(r.declares_schema);
        if let Some(o) = r.structured {
            *self.structured.entry(o).or_default() += 1;
        }
    }

    /// Completions with a structured-output outcome, and the failures among them.
    pub fn structured_counts(&self) -> (u64, u64) {
        self.structured.iter().fold((0, 0), |(n, bad), (o, c)| {
            (n + c, bad + c * u64::from(o.is_failure()))
        })
    }

    /// The bad-outcome rates, named like the probes' metrics; a rate is absent until something
    /// it can be computed from arrived.
    pub fn rates(&self) -> Vec<(&'static str, f64)> {
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        [
            ("refusal_rate", ratio(self.refusals, self.judged)),
            (
                "partial_refusal_rate",
                ratio(self.partial_refusals, self.judged),
            ),
            ("empty_rate", ratio(self.empty, self.judged)),
            (
                "truncation_rate",
                ratio(self.truncated, self.with_finish_reason),
            ),
            ("structured_failure_rate", {
                let (n, bad) = self.structured_counts();
                ratio(bad, n)
            }),
        ]
        .into_iter()
        .filter_map(|(m, v)| v.map(|v| (m, v)))
        .collect()
    }
}

/// One stream in `/api/v1/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamStatus {
    pub target: String,
    pub route: String,
    pub completions: u64,
    /// Completions sent with their text (the denominator of the refusal and empty rates).
    pub judged: u64,
    /// Bad-outcome rates by metric id (`refusal_rate`, `partial_refusal_rate`, `empty_rate`,
    /// `truncation_rate`).
    pub rates: BTreeMap<String, f64>,
    pub mean_length_chars: Option<f64>,
    pub mean_latency_ms: Option<f64>,
    pub finish_reasons: BTreeMap<String, u64>,
    pub last_received_ms: i64,
    /// Only for a route that declares a JSON Schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredStatus>,
}

/// The structured-output outcomes of a stream whose route declares a JSON Schema.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StructuredStatus {
    /// Completions with an outcome (sent with their text): the denominator of
    /// `structured_failure_rate`.
    pub checked: u64,
    /// Completions sent as lengths only: no outcome.
    pub lengths_only: u64,
    /// By outcome (`ok`, `no_json`, `invalid_json`, `schema_violation`, `truncated`,
    /// `refused`).
    pub outcomes: BTreeMap<String, u64>,
}

pub fn stream_status(key: &StreamKey, s: &StreamStats) -> StreamStatus {
    let mean = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
    StreamStatus {
        target: key.0.clone(),
        route: key.1.clone(),
        completions: s.completions,
        judged: s.judged,
        rates: s
            .rates()
            .into_iter()
            .map(|(m, v)| (m.to_string(), v))
            .collect(),
        mean_length_chars: mean(s.length_sum, s.length_count),
        mean_latency_ms: mean(s.latency_sum_ms, s.latency_count),
        finish_reasons: s.finish_reasons.clone(),
        last_received_ms: s.last_received_ms,
        structured: (s.schema > 0 || !s.structured.is_empty()).then(|| {
            let (checked, _) = s.structured_counts();
            StructuredStatus {
                checked,
                lengths_only: s.schema.saturating_sub(checked),
                outcomes: s
                    .structured
                    .iter()
                    .map(|(o, n)| (o.as_str().to_string(), *n))
                    .collect(),
            }
        }),
    }
}

/// A label value escaped for the Prometheus text exposition.
pub(super) fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// The per-stream families of `/metrics`.
pub fn render_streams(o: &mut String, streams: &BTreeMap<StreamKey, StreamStats>) {
    family(
        o,
        "modelwatch_traffic_completions_total",
        "counter",
        "Production completions measured, by target and route.",
    );
    for ((t, r), s) in streams {
        let _ = writeln!(
            o,
            "modelwatch_traffic_completions_total{{target=\"{}\",route=\"{}\"}} {}",
            esc(t),
            esc(r),
            s.completions
        );
    }
    family(
        o,
        "modelwatch_traffic_quality_ratio",
        "gauge",
        "Bad-outcome rate of production completions since the start (0-1, higher is worse), by target, route and metric.",
    );
    for ((t, r), s) in streams {
        for (m, v) in s.rates() {
            let _ = writeln!(
                o,
                "modelwatch_traffic_quality_ratio{{target=\"{}\",route=\"{}\",metric=\"{m}\"}} {v}",
                esc(t),
                esc(r)
            );
        }
    }
    family(
        o,
        "modelwatch_traffic_structured_outcomes_total",
        "counter",
        "Structured-output outcomes of production completions on routes that declare a JSON Schema, by target, route and outcome.",
    );
    for ((t, r), s) in streams {
        for (outcome, n) in &s.structured {
            let _ = writeln!(
                o,
                "modelwatch_traffic_structured_outcomes_total{{target=\"{}\",route=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(t),
                esc(r)
            );
        }
    }
    family(
        o,
        "modelwatch_traffic_response_length_chars",
        "histogram",
        "Length in characters of production completions, by target and route.",
    );
    for ((t, r), s) in streams {
        let labels = format!("target=\"{}\",route=\"{}\"", esc(t), esc(r));
        for (n, bound) in s.length_buckets.iter().zip(LENGTH_BUCKETS) {
            let _ = writeln!(
                o,
                "modelwatch_traffic_response_length_chars_bucket{{{labels},le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "modelwatch_traffic_response_length_chars_bucket{{{labels},le=\"+Inf\"}} {}",
            s.length_count
        );
        let _ = writeln!(
            o,
            "modelwatch_traffic_response_length_chars_sum{{{labels}}} {}",
            s.length_sum
        );
        let _ = writeln!(
            o,
            "modelwatch_traffic_response_length_chars_count{{{labels}}} {}",
            s.length_count
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(refusal: Option<bool>, finish: Option<&str>, chars: Option<u32>) -> TrafficRow {
        TrafficRow {
            target: "chat".into(),
            route: "/support".into(),
            received_at_ms: 5,
            chars,
            finish_reason: finish.map(str::to_string),
            truncated: finish == Some("length"),
            refusal,
            empty: refusal.map(|_| false),
            partial_refusal: refusal.map(|_| false),
            latency_ms: Some(100.0),
            ..TrafficRow::default()
        }
    }

    #[test]
    fn rates_use_only_the_completions_they_can_be_computed_from() {
        let mut s = StreamStats::default();
        s.observe(&row(Some(true), Some("stop"), Some(20)));
        s.observe(&row(Some(false), Some("length"), Some(40)));
        s.observe(&row(None, None, Some(3000)));
        s.observe(&row(None, Some("eos_weird"), None));
        let rates: BTreeMap<_, _> = s.rates().into_iter().collect();
        assert_eq!(rates["refusal_rate"], 0.5);
        assert_eq!(rates["truncation_rate"], 1.0 / 3.0);
        assert_eq!(s.finish_reasons["other"], 1);
        let status = stream_status(&("chat".into(), "/support".into()), &s);
        assert_eq!(status.completions, 4);
        assert_eq!(status.judged, 2);
        assert_eq!(status.mean_length_chars, Some(1020.0));
        let mut o = String::new();
        render_streams(
            &mut o,
            &BTreeMap::from([(("chat".into(), "/support".into()), s)]),
        );
        assert!(o.contains(
            "modelwatch_traffic_quality_ratio{target=\"chat\",route=\"/support\",metric=\"refusal_rate\"} 0.5\n"
        ));
        assert!(o.contains(
            "modelwatch_traffic_response_length_chars_bucket{target=\"chat\",route=\"/support\",le=\"32\"} 1\n"
        ));
        assert!(o.contains(
            "modelwatch_traffic_completions_total{target=\"chat\",route=\"/support\"} 4\n"
        ));
    }

    #[test]
    fn nothing_judged_means_no_rate_rather_than_zero() {
        let mut s = StreamStats::default();
        s.observe(&row(None, None, Some(10)));
        assert!(s.rates().is_empty());
    }
}
