//! Practical margins: how large a change must be before it matters, per metric.
//!
//! A regression needs statistical evidence *and* an effect beyond the margin; a pass needs the
//! confidence interval to exclude a regression beyond the margin (non-inferiority).

use serde::{Deserialize, Serialize};

/// Margins and decision parameters. Every field has a documented default (see
/// `docs/verdicts.md`); configuration may override any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Margins {
    /// Refusal rate: +2 percentage points …
    pub refusal_points: f64,
    /// … and a relative risk of at least 1.5 (both needed for a regression).
    pub refusal_relative_risk: f64,
    /// Empty responses: +1 point.
    pub empty_points: f64,
    /// Structured-output (JSON) failures, overall and per kind: +1 point.
    pub structured_points: f64,
    /// Task success: −3 points.
    pub task_failure_points: f64,
    /// Truncation (finish reason `length`): +2 points.
    pub truncation_points: f64,
    /// Length: |Cliff's delta| ≥ 0.147 (the "small" threshold of Romano et al. 2006) …
    pub length_cliffs_delta: f64,
    /// … or a Hodges–Lehmann shift of log length ≥ ln 1.15 (15 % longer or shorter).
    pub length_log_ratio: f64,
    /// Length shape: a Kolmogorov–Smirnov distance ≥ 0.25 between the suite's answer-length
    /// distributions (normalised per probe) is a change of shape that matters.
    pub length_shape_ks: f64,
    /// Latency and time to first token: a Hodges–Lehmann shift of log time ≥ ln 1.25 …
    pub latency_log_ratio: f64,
    /// … or Cliff's delta ≥ 0.147 toward slower.
    pub latency_cliffs_delta: f64,
    /// Significance level for the Benjamini–Hochberg adjusted p-values.
    pub alpha: f64,
    /// Significance level of the behavioural identity test (its own family: a warning that
    /// the served model's texts changed, never a quality verdict).
    pub behaviour_alpha: f64,
    /// Confidence level of every reported interval.
    pub confidence: f64,
    /// Above this share of failed requests on either side the overall verdict is
    /// inconclusive: infrastructure errors never count as quality, but too many of them leave
    /// too little to judge.
    pub max_error_rate: f64,
    /// Whether latency/TTFT regressions change the overall verdict (off: reported only).
    pub performance_gates: bool,
    /// A probe counts as flipped when its rate moved this far in the bad direction (or its
    /// adjusted per-probe test is significant).
    pub flip_min_change: f64,
    /// How many probes with the largest length change to list.
    pub max_length_flips: usize,
}

impl Default for Margins {
    fn default() -> Self {
        Margins {
            refusal_points: 0.02,
            refusal_relative_risk: 1.5,
            empty_points: 0.01,
            structured_points: 0.01,
            task_failure_points: 0.03,
            truncation_points: 0.02,
            length_cliffs_delta: 0.147,
            length_log_ratio: 1.15f64.ln(),
            length_shape_ks: 0.25,
            latency_log_ratio: 1.25f64.ln(),
            latency_cliffs_delta: 0.147,
            alpha: 0.05,
            behaviour_alpha: 0.01,
            confidence: 0.95,
            max_error_rate: 0.20,
            performance_gates: false,
            flip_min_change: 0.5,
            max_length_flips: 5,
        }
    }
}
