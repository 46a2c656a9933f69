//! What `baseline show` prints: rates with intervals, length quantiles and a per-probe table.

use super::Baseline;
use crate::drift::Metric;
use crate::sample::Measurements;
use crate::stats::wilson;
use serde::Serialize;

/// Confidence of the rate intervals shown.
const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub target: String,
    pub fingerprint_id: String,
    pub model: String,
    pub recorded_at: String,
    pub samples: usize,
    pub errors: usize,
    pub metrics: Vec<MetricSummary>,
    pub probes: Vec<ProbeSummary>,
}

/// A rate (with its Wilson interval) or a distribution (with quantiles).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    pub metric: String,
    pub n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// 10th, 50th and 90th percentiles (lengths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<[f64; 3]>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    pub suite: String,
    pub id: String,
    pub samples: usize,
    pub errors: usize,
    /// The probe expects a refusal: refusing is correct here.
    pub refusal_expected: bool,
    /// Share of answered samples that refused.
    pub refusal_rate: Option<f64>,
    pub structured_failure_rate: Option<f64>,
    /// Share of samples with a task check that failed it.
    pub task_failure_rate: Option<f64>,
    pub truncation_rate: Option<f64>,
    pub median_chars: Option<f64>,
}

type Pick = fn(&Measurements) -> Option<bool>;
type Value = fn(&Measurements) -> f64;

/// Rates shown, read exactly as the verdict engine reads them.
const RATES: [Metric; 6] = crate::drift::BINARY;

/// (events, applicable samples) of `metric`; each measurement with whether its probe expects
/// a refusal.
fn rate(ms: &[(&Measurements, bool)], metric: Metric) -> (usize, usize) {
    let vals: Vec<bool> = ms
        .iter()
        .filter_map(|(m, e)| metric.outcome(m, *e))
        .collect();
    (vals.iter().filter(|&&b| b).count(), vals.len())
}

fn share(ms: &[&Measurements], pick: Pick) -> Option<f64> {
    let vals: Vec<bool> = ms.iter().filter_map(|m| pick(m)).collect();
    (!vals.is_empty()).then(|| vals.iter().filter(|&&b| b).count() as f64 / vals.len() as f64)
}

impl Baseline {
    /// Summarises the stored samples.
    pub fn summary(&self) -> Summary {
        let (samples, errors) = self.counts();
        let all: Vec<(&Measurements, bool)> = self
            .probes
            .values()
            .flat_map(|p| {
                p.samples
                    .iter()
                    .filter_map(|s| Some((s.measurements.as_ref()?, p.refusal_expected)))
            })
            .collect();
        let mut metrics: Vec<MetricSummary> = RATES
            .iter()
            .filter_map(|&metric| {
                let (x, n) = rate(&all, metric);
                let ci = wilson(x as u64, n as u64, CONFIDENCE).ok()?;
                Some(MetricSummary {
                    metric: metric.id(),
                    n,
                    rate: Some(ci.estimate),
                    lower: Some(ci.lower),
                    upper: Some(ci.upper),
                    quantiles: None,
                })
            })
            .collect();
        let lengths: [(&'static str, Value); 2] = [
            ("length_chars", |m| f64::from(m.chars)),
            ("length_tokens", |m| f64::from(m.output_tokens)),
        ];
        for (name, f) in lengths {
            let mut v: Vec<f64> = all.iter().map(|(m, _)| f(m)).collect();
            v.sort_by(f64::total_cmp);
            if let (Some(a), Some(b), Some(c)) = (
                crate::stats::quantile(&v, 0.1),
                crate::stats::quantile(&v, 0.5),
                crate::stats::quantile(&v, 0.9),
            ) {
                metrics.push(MetricSummary {
                    metric: name.to_string(),
                    n: v.len(),
                    rate: None,
                    lower: None,
                    upper: None,
                    quantiles: Some([a, b, c]),
                });
            }
        }
        let probes = self
            .probes
            .iter()
            .map(|(id, p)| {
                let ms: Vec<&Measurements> = p
                    .samples
                    .iter()
                    .filter_map(|s| s.measurements.as_ref())
                    .collect();
                let mut chars: Vec<f64> = ms.iter().map(|m| f64::from(m.chars)).collect();
                chars.sort_by(f64::total_cmp);
                ProbeSummary {
                    suite: p.suite.clone(),
                    id: id.clone(),
                    samples: p.samples.len(),
                    errors: p.samples.iter().filter(|s| s.error.is_some()).count(),
                    refusal_expected: p.refusal_expected,
                    refusal_rate: share(&ms, |m| Some(m.refusal)),
                    structured_failure_rate: share(&ms, |m| m.structured.map(|s| s.is_failure())),
                    task_failure_rate: share(&ms, |m| m.task_success.map(|ok| !ok)),
                    truncation_rate: share(&ms, |m| Some(m.truncated)),
                    median_chars: crate::stats::quantile(&chars, 0.5),
                }
            })
            .collect();
        Summary {
            target: self.target.clone(),
            fingerprint_id: self.fingerprint.id(),
            model: self.fingerprint.model.clone(),
            recorded_at: self.recorded.at.clone(),
            samples,
            errors,
            metrics,
            probes,
        }
    }
}
