//! The metrics of the export: cumulative counters and histograms of requests and rounds, the
//! gauges of each target's last assessment, and their `ExportMetricsServiceRequest`.

use super::genai::{self, gen_ai_attrs};
use super::{Attrs, OwnedAssessment, RoundRecord, ms_to_ns, resource_msg, s, scope_msg};
use crate::telemetry::proto::{Msg, attributes};
use crate::telemetry::quality::{Distribution, LATENCY_BUCKETS, LENGTH_BUCKETS, TargetQuality};
use std::collections::BTreeMap;

/// The response-length histogram (`modelwatch_response_length_chars` on `/metrics`).
/// The per-target distributions of successful responses, each the OTel spelling of a
/// `/metrics` histogram: (name, unit, description, bounds, reading).
type DistributionOf = fn(&TargetQuality) -> &Distribution;
const DISTRIBUTIONS: [(&str, &str, &str, &[f64], DistributionOf); 2] = [
    (
        "modelwatch.response.length_chars",
        "{char}",
        "Response length in characters of successful probe responses since start.",
        &LENGTH_BUCKETS,
        |q| &q.lengths,
    ),
    (
        "modelwatch.response.latency_seconds",
        "s",
        "Latency of successful probe responses since start.",
        &LATENCY_BUCKETS,
        |q| &q.latency,
    ),
];

/// Advised bucket boundaries of the GenAI conventions.
const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The gauges of an assessment: (name, unit, description); each is the OTel spelling of the
/// `/metrics` family of the same meaning. No unit: the OTLP → Prometheus translation turns
/// unit `1` into a `_ratio` suffix, which would move them away from the `/metrics` names.
const GAUGES: [(&str, &str, &str); 10] = [
    (
        "modelwatch.metric.value",
        "",
        "Deprecated (removed in the next release): modelwatch.quality.ratio for rates, modelwatch.length.placement for length_chars.",
    ),
    (
        "modelwatch.metric.baseline_value",
        "",
        "Baseline value of a monitored metric.",
    ),
    (
        "modelwatch.metric.e_value",
        "",
        "Anytime-valid e-value of the monitored metric against its interval null.",
    ),
    (
        "modelwatch.metric.e_value_threshold",
        "",
        "E-value at which the metric alarms (metrics / alpha).",
    ),
    (
        "modelwatch.alert.firing",
        "",
        "1 while the alert of a target and metric fires.",
    ),
    (
        "modelwatch.round.metric_value",
        "",
        "Deprecated: the same as modelwatch.round.quality_ratio; removed in the next release.",
    ),
    (
        "modelwatch.quality.ratio",
        "",
        "Bad-outcome rate (0-1, higher is worse) of a monitored rate metric in this episode.",
    ),
    (
        "modelwatch.quality.baseline_ratio",
        "",
        "Bad-outcome rate (0-1) of a monitored rate metric in the target's baseline.",
    ),
    (
        "modelwatch.length.placement",
        "",
        "Mean placement (0-1) of this episode's response lengths among the baseline's: 0.5 is the baseline, higher is longer.",
    ),
    (
        "modelwatch.round.quality_ratio",
        "",
        "Bad-outcome rate (0-1, higher is worse) of the target's last round, by rate metric.",
    ),
];

#[derive(Debug, Clone, Default)]
struct Hist {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

/// Cumulative metric state, keyed by metric name and encoded attributes.
#[derive(Debug, Default)]
pub struct MetricState {
    start_ns: u64,
    hists: BTreeMap<(&'static str, String), (Attrs, Hist)>,
    sums: BTreeMap<(&'static str, String), (Attrs, u64)>,
    /// Per target: the gauges of its last assessment (replaced whole, so a metric that is no
    /// longer monitored disappears).
    gauges: BTreeMap<String, Vec<(&'static str, Attrs, f64)>>,
    /// Per target: the quality readings of its last assessment (length and latency
    /// distributions).
    quality: BTreeMap<String, TargetQuality>,
}

fn attr_key(a: &Attrs) -> String {
    a.iter().map(|(k, v)| format!("{k}={v:?};")).collect()
}

impl MetricState {
    pub fn new(start_ms: i64) -> MetricState {
        MetricState {
            start_ns: ms_to_ns(start_ms),
            ..MetricState::default()
        }
    }

    fn observe(&mut self, name: &'static str, bounds: &[f64], attrs: Attrs, v: f64) {
        let e = self
            .hists
            .entry((name, attr_key(&attrs)))
            .or_insert_with(|| (attrs, Hist::default()));
        if e.1.counts.len() != bounds.len() + 1 {
            e.1.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
        e.1.counts[i] += 1;
        e.1.count += 1;
        e.1.sum += v;
    }

    fn add(&mut self, name: &'static str, attrs: Attrs, n: u64) {
        self.sums
            .entry((name, attr_key(&attrs)))
            .or_insert_with(|| (attrs, 0))
            .1 += n;
    }

    /// Takes a target's assessment: evidence, alert states, last-round rates, lengths.
    pub fn assess(&mut self, target: &str, a: &OwnedAssessment) {
        let t = || s("modelwatch.target", target);
        let mut g: Vec<(&'static str, Attrs, f64)> = Vec::new();
        for m in &a.metrics {
            let attrs = vec![t(), s("modelwatch.metric", m.metric.as_str())];
            let length = m.metric == crate::drift::Metric::LengthChars.id();
            if let Some(v) = m.current {
                g.push((GAUGES[0].0, attrs.clone(), v));
                g.push((GAUGES[if length { 8 } else { 6 }].0, attrs.clone(), v));
            }
            if !length {
                g.push((GAUGES[7].0, attrs.clone(), m.baseline));
            }
            g.push((GAUGES[1].0, attrs.clone(), m.baseline));
            g.push((GAUGES[2].0, attrs, m.e_value));
        }
        if let Some(m) = a.metrics.first() {
            g.push((GAUGES[3].0, vec![t()], m.threshold));
        }
        for al in &a.alerts {
            g.push((
                GAUGES[4].0,
                vec![
                    t(),
                    s("modelwatch.metric", al.key.metric.as_str()),
                    s("modelwatch.severity", al.severity.as_str()),
                ],
                f64::from(u8::from(al.status == crate::alert::Status::Firing)),
            ));
        }
        for (metric, v) in a.quality.round_rates() {
            let attrs = vec![t(), s("modelwatch.metric", metric)];
            g.push((GAUGES[5].0, attrs.clone(), v));
            g.push((GAUGES[9].0, attrs, v));
        }
        self.gauges.insert(target.to_string(), g);
        self.quality.insert(target.to_string(), a.quality.clone());
    }

    /// Forgets a target (removed from the configuration).
    pub fn forget(&mut self, target: &str) {
        self.gauges.remove(target);
        self.quality.remove(target);
    }

    /// Adds a round.
    pub fn record(&mut self, r: &RoundRecord) {
        let target = || s("modelwatch.target", r.target.as_str());
        self.add(
            "modelwatch.rounds",
            vec![target(), s("modelwatch.status", r.status.as_str())],
            1,
        );
        for sample in &r.samples {
            let outcome = sample
                .error
                .as_ref()
                .map(|e| e.kind.as_str())
                .unwrap_or("ok");
            self.add(
                "modelwatch.requests",
                vec![target(), s("modelwatch.outcome", outcome)],
                1,
            );
            let attrs = gen_ai_attrs(r, sample);
            let secs = sample
                .error
                .as_ref()
                .map(|e| e.latency_ms)
                .unwrap_or(sample.latency_ms)
                / 1000.0;
            if secs.is_finite() {
                self.observe(
                    genai::METRIC_OPERATION_DURATION,
                    &DURATION_BOUNDS,
                    attrs.clone(),
                    secs,
                );
            }
            if let Some(ms) = sample
                .ttft_ms
                .filter(|v| v.is_finite() && sample.error.is_none())
            {
                self.observe(
                    genai::METRIC_TIME_TO_FIRST_CHUNK,
                    &DURATION_BOUNDS,
                    attrs.clone(),
                    ms / 1000.0,
                );
            }
            if sample.error.is_none() {
                let mut tokens = |ty: &str, n: Option<u32>| {
                    if let Some(n) = n {
                        let mut a = attrs.clone();
                        a.push(s(genai::TOKEN_TYPE, ty));
                        let n = f64::from(n);
                        self.observe(genai::METRIC_TOKEN_USAGE, &TOKEN_BOUNDS, a, n);
                    }
                };
                tokens(genai::TOKEN_INPUT, sample.input_tokens);
                tokens(
                    genai::TOKEN_OUTPUT,
                    sample.measurements.as_ref().map(|m| m.output_tokens),
                );
            }
        }
    }

    /// `ExportMetricsServiceRequest` with every metric, cumulative since the start.
    pub fn encode(&self, resource: &Attrs, now_ms: i64) -> Vec<u8> {
        let now = ms_to_ns(now_ms);
        let mut metrics: BTreeMap<&'static str, Msg> = BTreeMap::new();
        let mut hist_points: BTreeMap<&'static str, Vec<Msg>> = BTreeMap::new();
        for ((name, _), (attrs, h)) in &self.hists {
            let bounds: &[f64] = match *name {
                genai::METRIC_TOKEN_USAGE => &TOKEN_BOUNDS,
                _ => &DURATION_BOUNDS,
            };
            let mut p = Msg::new();
            p.fixed64(2, self.start_ns)
                .fixed64(3, now)
                .fixed64(4, h.count)
                .double(5, h.sum)
                .packed_fixed64(6, h.counts.iter().copied())
                .packed_fixed64(7, bounds.iter().map(|b| b.to_bits()));
            attributes(&mut p, 9, attrs);
            hist_points.entry(name).or_default().push(p);
        }
        for (name, points) in hist_points {
            let mut h = Msg::new();
            for p in &points {
                h.msg(1, p);
            }
            h.uint(2, 2); // cumulative
            let (unit, desc) = match name {
                genai::METRIC_TOKEN_USAGE => ("{token}", "Tokens used per request, by token type."),
                genai::METRIC_TIME_TO_FIRST_CHUNK => {
                    ("s", "Time to the first chunk of streamed probe responses.")
                }
                _ => ("s", "Duration of GenAI client operations (probe requests)."),
            };
            let mut m = Msg::new();
            m.string(1, name).string(2, desc).string(3, unit).msg(9, &h);
            metrics.insert(name, m);
        }
        let mut sum_points: BTreeMap<&'static str, Vec<Msg>> = BTreeMap::new();
        for ((name, _), (attrs, v)) in &self.sums {
            let mut p = Msg::new();
            p.fixed64(2, self.start_ns).fixed64(3, now).fixed64(6, *v);
            attributes(&mut p, 7, attrs);
            sum_points.entry(name).or_default().push(p);
        }
        for (name, points) in sum_points {
            let mut sum = Msg::new();
            for p in &points {
                sum.msg(1, p);
            }
            sum.uint(2, 2).boolean(3, true);
            let (unit, desc) = match name {
                "modelwatch.rounds" => ("{round}", "Rounds by target and status."),
                _ => (
                    "{request}",
                    "Probe requests by target and outcome (ok or the infrastructure error kind).",
                ),
            };
            let mut m = Msg::new();
            m.string(1, name)
                .string(2, desc)
                .string(3, unit)
                .msg(7, &sum);
            metrics.insert(name, m);
        }
        for (name, unit, desc) in GAUGES {
            let mut g = Msg::new();
            let mut any = false;
            for (n, attrs, v) in self.gauges.values().flatten() {
                if *n == name {
                    let mut p = Msg::new();
                    p.fixed64(3, now).double(4, *v);
                    attributes(&mut p, 7, attrs);
                    g.msg(1, &p);
                    any = true;
                }
            }
            if any {
                let mut m = Msg::new();
                m.string(1, name).string(2, desc).string(3, unit).msg(5, &g);
                metrics.insert(name, m);
            }
        }
        for d in &DISTRIBUTIONS {
            if let Some(m) = self.encode_distribution(d, now) {
                metrics.insert(d.0, m);
            }
        }
        let mut scope = Msg::new();
        scope.msg(1, &scope_msg());
        for m in metrics.values() {
            scope.msg(2, m);
        }
        let mut rm = Msg::new();
        rm.msg(1, &resource_msg(resource)).msg(2, &scope);
        let mut req = Msg::new();
        req.msg(1, &rm);
        req.0
    }

    /// One distribution's histogram, a point per target that has seen a response.
    fn encode_distribution(
        &self,
        (name, unit, desc, bounds, of): &(&str, &str, &str, &[f64], DistributionOf),
        now: u64,
    ) -> Option<Msg> {
        let mut hist = Msg::new();
        let mut any = false;
        for (target, q) in &self.quality {
            let d = of(q);
            if d.count() == 0 {
                continue;
            }
            any = true;
            let mut p = Msg::new();
            p.fixed64(2, self.start_ns)
                .fixed64(3, now)
                .fixed64(4, d.count())
                .double(5, d.sum)
                .packed_fixed64(6, d.bucket_counts(bounds).into_iter())
                .packed_fixed64(7, bounds.iter().map(|b| b.to_bits()));
            attributes(&mut p, 9, &[s("modelwatch.target", target.as_str())]);
            hist.msg(1, &p);
        }
        if !any {
            return None;
        }
        hist.uint(2, 2); // cumulative
        let mut m = Msg::new();
        m.string(1, name)
            .string(2, desc)
            .string(3, unit)
            .msg(9, &hist);
        Some(m)
    }
}
