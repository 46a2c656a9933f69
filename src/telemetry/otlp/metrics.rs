//! The metrics of the export, as SDK instruments: cumulative counters and histograms of
//! requests and rounds (recorded per round), and observable gauges of each target's last
//! assessment (observed at each collection, so a series no longer reported disappears).

use super::genai::{self, gen_ai_attrs};
use super::{Attrs, OwnedAssessment, RoundRecord, s};
use crate::telemetry::quality::{LATENCY_BUCKETS, LENGTH_BUCKETS};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
const GAUGES: [(&str, &str, &str); 11] = [
    (
        "modelwatch.metric.value",
        "",
        "Deprecated (removed in the next release): modelwatch.quality.ratio for rates, modelwatch.length.placement for length_chars, modelwatch.length.spread for length_shape.",
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
        "Bad-outcome rate (0-1, higher is worse) of the target's newest round with answers, by rate metric (a round without answers keeps it: see modelwatch_target_up).",
    ),
    (
        "modelwatch.length.spread",
        "",
        "Mean spread (0-1) of this episode's answer lengths away from the middle of their probe's baseline: 0.5 is the baseline, higher means more answers in both tails (a change of shape).",
    ),
];

/// Per target: the gauges of its last assessment (replaced whole, so a metric that is no
/// longer monitored disappears), read by the gauges' callbacks.
pub type Gauges = Arc<Mutex<BTreeMap<String, Vec<(&'static str, Attrs, f64)>>>>;

/// The synchronous instruments; the observable gauges live in the meter.
pub struct Instruments {
    rounds: Counter<u64>,
    requests: Counter<u64>,
    duration: Histogram<f64>,
    first_chunk: Histogram<f64>,
    tokens: Histogram<u64>,
    lengths: Histogram<f64>,
    latency: Histogram<f64>,
    _gauges: Vec<ObservableGauge<f64>>,
    _build: ObservableGauge<u64>,
}

fn histogram(
    meter: &Meter,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    bounds: &[f64],
) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit(unit)
        .with_description(desc)
        .with_boundaries(bounds.to_vec())
        .build()
}

impl Instruments {
    /// Creates every instrument on `meter`; the gauges read `gauges`.
    pub fn new(meter: &Meter, gauges: &Gauges) -> Instruments {
        let observable = GAUGES
            .iter()
            .map(|&(name, _unit, desc)| {
                let gauges = gauges.clone();
                meter
                    .f64_observable_gauge(name)
                    .with_description(desc)
                    .with_callback(move |o| {
                        let g = gauges.lock().unwrap_or_else(|p| p.into_inner());
                        for (n, attrs, v) in g.values().flatten() {
                            if *n == name {
                                o.observe(*v, attrs);
                            }
                        }
                    })
                    .build()
            })
            .collect();
        let build = meter
            .u64_observable_gauge("modelwatch.build_info")
            .with_description("Build information; always 1.")
            .with_callback(|o| {
                o.observe(
                    1,
                    &[
                        KeyValue::new("version", env!("CARGO_PKG_VERSION")),
                        KeyValue::new("revision", env!("MODELWATCH_GIT_COMMIT")),
                    ],
                )
            })
            .build();
        Instruments {
            rounds: meter
                .u64_counter("modelwatch.rounds")
                .with_unit("{round}")
                .with_description("Rounds by target and status.")
                .build(),
            requests: meter
                .u64_counter("modelwatch.requests")
                .with_unit("{request}")
                .with_description(
                    "Probe requests by target and outcome (ok or the infrastructure error kind).",
                )
                .build(),
            duration: histogram(
                meter,
                genai::METRIC_OPERATION_DURATION,
                "s",
                "Duration of GenAI client operations (probe requests).",
                &DURATION_BOUNDS,
            ),
            first_chunk: histogram(
                meter,
                genai::METRIC_TIME_TO_FIRST_CHUNK,
                "s",
                "Time to the first chunk of streamed probe responses.",
                &DURATION_BOUNDS,
            ),
            tokens: meter
                .u64_histogram(genai::METRIC_TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Tokens used per request, by token type.")
                .with_boundaries(TOKEN_BOUNDS.to_vec())
                .build(),
            lengths: histogram(
                meter,
                "modelwatch.response.length_chars",
                "{char}",
                "Response length in characters of successful probe responses since start.",
                &LENGTH_BUCKETS,
            ),
            latency: histogram(
                meter,
                "modelwatch.response.latency_seconds",
                "s",
                "Latency of successful probe responses since start.",
                &LATENCY_BUCKETS,
            ),
            _gauges: observable,
            _build: build,
        }
    }

    /// Adds a round.
    pub fn record(&self, r: &RoundRecord) {
        let target = || s("modelwatch.target", r.target.clone());
        self.rounds
            .add(1, &[target(), s("modelwatch.status", r.status.clone())]);
        for sample in &r.samples {
            let outcome = sample
                .error
                .as_ref()
                .map(|e| e.kind.as_str())
                .unwrap_or("ok");
            self.requests
                .add(1, &[target(), s("modelwatch.outcome", outcome.to_string())]);
            let attrs = gen_ai_attrs(r, sample);
            let secs = sample
                .error
                .as_ref()
                .map(|e| e.latency_ms)
                .unwrap_or(sample.latency_ms)
                / 1000.0;
            if secs.is_finite() {
                self.duration.record(secs, &attrs);
            }
            if sample.error.is_some() {
                continue;
            }
            if let Some(ms) = sample.ttft_ms.filter(|v| v.is_finite()) {
                self.first_chunk.record(ms / 1000.0, &attrs);
            }
            let tokens = |ty: &'static str, n: Option<u32>| {
                if let Some(n) = n {
                    let mut a = attrs.clone();
                    a.push(s(genai::TOKEN_TYPE, ty));
                    self.tokens.record(u64::from(n), &a);
                }
            };
            tokens(genai::TOKEN_INPUT, sample.input_tokens);
            tokens(
                genai::TOKEN_OUTPUT,
                sample.measurements.as_ref().map(|m| m.output_tokens),
            );
            // The same responses, at the same bounds, as the HDR distributions of /metrics.
            if let Some(m) = &sample.measurements {
                self.lengths.record(f64::from(m.chars), &[target()]);
            }
            let latency = sample.latency_ms / 1000.0;
            if latency.is_finite() && latency >= 0.0 {
                self.latency.record(latency, &[target()]);
            }
        }
    }
}

/// Takes a target's assessment: evidence, alert states, last-round rates.
pub fn assess(gauges: &Gauges, target: &str, a: &OwnedAssessment) {
    let t = || s("modelwatch.target", target.to_string());
    let metric = |m: &str| s("modelwatch.metric", m.to_string());
    let mut g: Vec<(&'static str, Attrs, f64)> = Vec::new();
    for m in &a.metrics {
        let attrs = vec![t(), metric(m.metric.as_str())];
        // Rates, the length placement and the length spread each have their own gauge.
        let placement = m.metric == crate::drift::Metric::LengthChars.id();
        let spread = m.metric == crate::drift::Metric::LengthShape.id();
        let length = placement || spread;
        if let Some(v) = m.current {
            g.push((GAUGES[0].0, attrs.clone(), v));
            let gauge = if placement {
                8
            } else if spread {
                10
            } else {
                6
            };
            g.push((GAUGES[gauge].0, attrs.clone(), v));
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
                metric(al.key.metric.as_str()),
                s("modelwatch.severity", al.severity.as_str().to_string()),
            ],
            f64::from(u8::from(al.status == crate::alert::Status::Firing)),
        ));
    }
    for (m, v) in a.quality.round_rates() {
        let attrs = vec![t(), metric(&m)];
        g.push((GAUGES[5].0, attrs.clone(), v));
        g.push((GAUGES[9].0, attrs, v));
    }
    gauges
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(target.to_string(), g);
}
