//! OTLP/HTTP (protobuf) export of metrics and traces after every round.
//!
//! The scheduler hands each finished round to [`OtlpExporter`] through a bounded channel
//! (`try_send`: when the exporter is behind, the round is dropped and counted), so a slow or
//! dead collector never slows probing. The exporter task keeps cumulative metric state and
//! posts `ExportTraceServiceRequest` to `{endpoint}/v1/traces` and
//! `ExportMetricsServiceRequest` to `{endpoint}/v1/metrics`.
//!
//! Metrics follow the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`) plus modelwatch's own
//! quality metrics, each the OTel spelling of a `/metrics` family (`modelwatch.metric.e_value`
//! ↔ `modelwatch_metric_e_value`, attribute `modelwatch.target` ↔ label `target`): rounds,
//! requests, per-metric values, baselines and e-values (the evidence), alert state, last-round
//! rates and response-length quantiles. Traces go out when a round finishes, metrics once the
//! scheduler has assessed it ([`RoundObserver::round_assessed`]). Each probe request is a client
//! span `chat {model}` with one `gen_ai.evaluation.result` event per evaluation outcome.

use super::observer::{Assessment, MetricSnapshot, ObserverCounter, RoundObserver};
use super::proto::{Msg, Value, attributes};
use super::quality::{LENGTH_BUCKETS, LengthWindow, TargetQuality};
use crate::config::{Otlp, Target};
use crate::rng::Rng;
use crate::runner::RoundOutcome;
use crate::sample::{Sample, StructuredOutcome};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Rounds waiting for export; more are dropped.
const QUEUE: usize = 64;
/// The response-length histogram (`modelwatch_response_length_chars` on `/metrics`).
const LENGTH_NAME: &str = "modelwatch.response.length_chars";

/// Advised bucket boundaries of the GenAI conventions.
const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The gauges of an assessment: (name, unit, description); each is the OTel spelling of the
/// `/metrics` family of the same meaning.
const GAUGES: [(&str, &str, &str); 10] = [
    (
        "modelwatch.metric.value",
        "1",
        "Deprecated (removed in the next release): modelwatch.quality.ratio for rates, modelwatch.length.placement for length_chars.",
    ),
    (
        "modelwatch.metric.baseline_value",
        "1",
        "Baseline value of a monitored metric.",
    ),
    (
        "modelwatch.metric.e_value",
        "1",
        "Anytime-valid e-value of the monitored metric against its interval null.",
    ),
    (
        "modelwatch.metric.e_value_threshold",
        "1",
        "E-value at which the metric alarms (metrics / alpha).",
    ),
    (
        "modelwatch.alert.firing",
        "1",
        "1 while the alert of a target and metric fires.",
    ),
    (
        "modelwatch.round.metric_value",
        "1",
        "Deprecated: the same as modelwatch.round.quality_ratio; removed in the next release.",
    ),
    (
        "modelwatch.quality.ratio",
        "1",
        "Bad-outcome rate (0-1, higher is worse) of a monitored rate metric in this episode.",
    ),
    (
        "modelwatch.quality.baseline_ratio",
        "1",
        "Bad-outcome rate (0-1) of a monitored rate metric in the target's baseline.",
    ),
    (
        "modelwatch.length.placement",
        "1",
        "Mean placement (0-1) of this episode's response lengths among the baseline's: 0.5 is the baseline, higher is longer.",
    ),
    (
        "modelwatch.round.quality_ratio",
        "1",
        "Bad-outcome rate (0-1, higher is worse) of the target's last round, by rate metric.",
    ),
];

pub type Attrs = Vec<(String, Value)>;

/// The resource: `service.name` (`$OTEL_SERVICE_NAME`, default `modelwatch`), `host.name`,
/// `service.version`, and `$OTEL_RESOURCE_ATTRIBUTES` (`k=v,k=v`; explicit keys win).
pub fn resource(env: &dyn Fn(&str) -> Option<String>, host: Option<String>) -> Attrs {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    map.insert("service.name".into(), "modelwatch".into());
    map.insert("service.version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        map.insert("host.name".into(), h);
    }
    for pair in env("OTEL_RESOURCE_ATTRIBUTES")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = pair.split_once('=')
            && !k.trim().is_empty()
        {
            map.insert(
                k.trim().into(),
                v.trim().replace("%20", " ").replace("%2C", ","),
            );
        }
    }
    if let Some(s) = env("OTEL_SERVICE_NAME").filter(|s| !s.is_empty()) {
        map.insert("service.name".into(), s);
    }
    map.into_iter().map(|(k, v)| (k, Value::Str(v))).collect()
}

/// The host name (`$HOSTNAME`, else `/etc/hostname`).
pub fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
}

/// One finished round, as the exporter needs it.
#[derive(Debug, Clone)]
pub struct RoundRecord {
    pub target: String,
    pub provider: String,
    pub model: String,
    pub started_ms: i64,
    pub status: String,
    pub samples: Vec<Sample>,
}

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
    /// Per target: response lengths (the summary `modelwatch.response.length_chars`).
    lengths: BTreeMap<String, LengthWindow>,
}

fn attr_key(a: &Attrs) -> String {
    a.iter().map(|(k, v)| format!("{k}={v:?};")).collect()
}

fn s(k: &str, v: impl Into<Value>) -> (String, Value) {
    (k.to_string(), v.into())
}

fn gen_ai_attrs(r: &RoundRecord, sample: &Sample) -> Attrs {
    let mut a = vec![
        s("gen_ai.operation.name", "chat"),
        s("gen_ai.provider.name", r.provider.as_str()),
        s("gen_ai.request.model", r.model.as_str()),
    ];
    if let Some(m) = &sample.response_model {
        a.push(s("gen_ai.response.model", m.as_str()));
    }
    if let Some(e) = &sample.error {
        a.push(s("error.type", e.kind.as_str()));
    }
    a
}

/// The evaluation outcomes of a sample: (name, score, label, explanation).
fn evaluations(sample: &Sample) -> Vec<(&'static str, f64, String, String)> {
    let Some(m) = &sample.measurements else {
        return Vec::new();
    };
    let yes = |b: bool| if b { 1.0 } else { 0.0 };
    let mut out = vec![
        (
            "refusal",
            yes(m.refusal),
            if m.refusal { "refused" } else { "answered" }.to_string(),
            m.refusal_rule
                .clone()
                .map(|r| format!("matched refusal rule {r}"))
                .unwrap_or_default(),
        ),
        (
            "empty",
            yes(m.empty),
            if m.empty { "empty" } else { "non_empty" }.into(),
            String::new(),
        ),
        (
            "truncated",
            yes(m.truncated),
            if m.truncated { "truncated" } else { "complete" }.into(),
            String::new(),
        ),
    ];
    if let Some(st) = m.structured {
        out.push((
            "structured_output",
            yes(st == StructuredOutcome::Ok),
            st.as_str().to_string(),
            String::new(),
        ));
    }
    if let Some(t) = m.task_success {
        out.push((
            "task",
            yes(t),
            if t { "pass" } else { "fail" }.into(),
            String::new(),
        ));
    }
    out
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
        self.lengths
            .insert(target.to_string(), a.quality.length.clone());
    }

    /// Forgets a target (removed from the configuration).
    pub fn forget(&mut self, target: &str) {
        self.gauges.remove(target);
        self.lengths.remove(target);
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
                    "gen_ai.client.operation.duration",
                    &DURATION_BOUNDS,
                    attrs.clone(),
                    secs,
                );
            }
            if sample.error.is_none() {
                let mut tokens = |ty: &str, n: Option<u32>| {
                    if let Some(n) = n {
                        let mut a = attrs.clone();
                        a.push(s("gen_ai.token.type", ty));
                        self.observe("gen_ai.client.token.usage", &TOKEN_BOUNDS, a, f64::from(n));
                    }
                };
                tokens("input", sample.input_tokens);
                tokens(
                    "output",
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
                "gen_ai.client.token.usage" => &TOKEN_BOUNDS,
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
                "gen_ai.client.token.usage" => {
                    ("{token}", "Tokens used per request, by token type.")
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
        if let Some(m) = self.encode_lengths(now) {
            metrics.insert(LENGTH_NAME, m);
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

    /// The response-length histogram of every target that has seen a response.
    fn encode_lengths(&self, now: u64) -> Option<Msg> {
        if self.lengths.values().all(|w| w.count == 0) {
            return None;
        }
        let mut hist = Msg::new();
        for (target, w) in self.lengths.iter().filter(|(_, w)| w.count > 0) {
            // OTLP bucket counts are per bucket, the window's cumulative.
            let mut below = 0;
            let mut counts: Vec<u64> = Vec::with_capacity(LENGTH_BUCKETS.len() + 1);
            for &c in &w.buckets {
                counts.push(c.saturating_sub(below));
                below = c;
            }
            counts.push(w.count.saturating_sub(below));
            let mut p = Msg::new();
            p.fixed64(2, self.start_ns)
                .fixed64(3, now)
                .fixed64(4, w.count)
                .double(5, w.sum)
                .packed_fixed64(6, counts.into_iter())
                .packed_fixed64(7, LENGTH_BUCKETS.iter().map(|b| b.to_bits()));
            attributes(&mut p, 9, &[s("modelwatch.target", target.as_str())]);
            hist.msg(1, &p);
        }
        hist.uint(2, 2); // cumulative
        let mut m = Msg::new();
        m.string(1, LENGTH_NAME)
            .string(
                2,
                "Response length in characters of successful probe responses since start.",
            )
            .string(3, "{char}")
            .msg(9, &hist);
        Some(m)
    }
}

fn ms_to_ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

fn scope_msg() -> Msg {
    let mut s = Msg::new();
    s.string(1, "modelwatch")
        .string(2, env!("CARGO_PKG_VERSION"));
    s
}

fn resource_msg(attrs: &Attrs) -> Msg {
    let mut r = Msg::new();
    attributes(&mut r, 1, attrs);
    r
}

/// `ExportTraceServiceRequest`: one trace per round, one client span per request.
pub fn encode_traces(resource: &Attrs, r: &RoundRecord, rng: &mut Rng) -> Vec<u8> {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    trace_id[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    let mut scope = Msg::new();
    scope.msg(1, &scope_msg());
    for sample in &r.samples {
        let latency = sample
            .error
            .as_ref()
            .map(|e| e.latency_ms)
            .unwrap_or(sample.latency_ms);
        let start = ms_to_ns(sample.started_at_ms);
        let end = start + (latency.max(0.0) * 1e6) as u64;
        let mut span = Msg::new();
        span.bytes(1, &trace_id)
            .bytes(2, &rng.next_u64().max(1).to_le_bytes())
            .string(5, &format!("chat {}", r.model))
            .uint(6, 3) // SPAN_KIND_CLIENT
            .fixed64(7, start)
            .fixed64(8, end);
        let mut attrs = gen_ai_attrs(r, sample);
        if let Some(n) = sample.input_tokens {
            attrs.push(s("gen_ai.usage.input_tokens", Value::Int(i64::from(n))));
        }
        if let Some(m) = &sample.measurements {
            attrs.push(s(
                "gen_ai.usage.output_tokens",
                Value::Int(i64::from(m.output_tokens)),
            ));
        }
        attrs.push(s("modelwatch.target", r.target.as_str()));
        attrs.push(s(
            "modelwatch.probe",
            format!("{}/{}", sample.suite, sample.probe_id),
        ));
        attributes(&mut span, 9, &attrs);
        for (name, score, label, explanation) in evaluations(sample) {
            let mut ev = Msg::new();
            ev.fixed64(1, end).string(2, "gen_ai.evaluation.result");
            let mut a = vec![
                s("gen_ai.evaluation.name", name),
                s("gen_ai.evaluation.score.value", Value::Double(score)),
                s("gen_ai.evaluation.score.label", label),
            ];
            if !explanation.is_empty() {
                a.push(s("gen_ai.evaluation.explanation", explanation));
            }
            attributes(&mut ev, 3, &a);
            span.msg(11, &ev);
        }
        let mut status = Msg::new();
        match &sample.error {
            Some(e) => status.string(2, &e.message).uint(3, 2),
            None => status.uint(3, 1),
        };
        span.msg(15, &status);
        scope.msg(2, &span);
    }
    let mut rs = Msg::new();
    rs.msg(1, &resource_msg(resource)).msg(2, &scope);
    let mut req = Msg::new();
    req.msg(1, &rs);
    req.0
}

/// A target's assessment, owned (it crosses to the exporter task).
#[derive(Debug, Clone, Default)]
pub struct OwnedAssessment {
    pub metrics: Vec<MetricSnapshot>,
    pub alerts: Vec<crate::alert::AlertState>,
    pub quality: TargetQuality,
}

impl From<&Assessment<'_>> for OwnedAssessment {
    fn from(a: &Assessment<'_>) -> Self {
        OwnedAssessment {
            metrics: a.metrics.to_vec(),
            alerts: a.alerts.to_vec(),
            quality: a.quality.clone(),
        }
    }
}

/// Work for the exporter task.
enum Work {
    /// A finished round: counters, histograms, and its trace.
    Round(RoundRecord),
    /// The scheduler's assessment of a target after a round: gauges, then the metrics export.
    Assessed {
        target: String,
        assessment: Box<OwnedAssessment>,
        now_ms: i64,
    },
}

/// Counters of the exporter, shown on `/metrics` as `modelwatch_otlp_exports_total`.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Requests the collector accepted.
    pub exported: AtomicU64,
    /// Requests that failed (network error, no answer within the timeout, non-2xx).
    pub failed: AtomicU64,
    /// Rounds or assessments not exported because the queue was full (collector slow or dead).
    pub dropped: AtomicU64,
}

/// The round observer that exports; see the module documentation.
pub struct OtlpExporter {
    tx: mpsc::Sender<Work>,
    pub stats: Arc<ExportStats>,
}

impl OtlpExporter {
    /// Starts the exporter task (needs a tokio runtime).
    pub fn start(
        config: &Otlp,
        resource: Attrs,
        seed: u64,
        start_ms: i64,
    ) -> Result<OtlpExporter, String> {
        let client = crate::provider::http::outbound_client()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
        let (tx, mut rx) = mpsc::channel::<Work>(QUEUE);
        let stats = Arc::new(ExportStats::default());
        let (traces_url, metrics_url) = (config.traces_url(), config.metrics_url());
        let headers = config.headers.clone();
        let st = stats.clone();
        tokio::spawn(async move {
            let mut state = MetricState::new(start_ms);
            let mut rng = Rng::new(seed);
            while let Some(work) = rx.recv().await {
                let (signal, url, body) = match work {
                    Work::Round(r) => {
                        state.record(&r);
                        if r.samples.is_empty() {
                            continue;
                        }
                        (
                            "traces",
                            &traces_url,
                            encode_traces(&resource, &r, &mut rng),
                        )
                    }
                    Work::Assessed {
                        target,
                        assessment,
                        now_ms,
                    } => {
                        state.assess(&target, &assessment);
                        ("metrics", &metrics_url, state.encode(&resource, now_ms))
                    }
                };
                let mut req = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf");
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.expose());
                }
                match req.body(body).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        st.exported.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => {
                        st.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(status = %resp.status(), signal, "OTLP export refused");
                    }
                    Err(e) => {
                        st.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e.without_url(), signal, "OTLP export failed");
                    }
                }
            }
        });
        Ok(OtlpExporter { tx, stats })
    }

    fn queue(&self, work: Work) {
        if self.tx.try_send(work).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl RoundObserver for OtlpExporter {
    fn round_finished(
        &self,
        target: &Target,
        started_ms: i64,
        outcome: Option<&RoundOutcome>,
        status: &str,
    ) {
        self.queue(Work::Round(RoundRecord {
            target: target.name.clone(),
            provider: target.provider.as_str().to_string(),
            model: target.model.clone(),
            started_ms,
            status: status.to_string(),
            samples: outcome.map(|o| o.samples.clone()).unwrap_or_default(),
        }));
    }

    fn round_assessed(&self, target: &Target, assessment: &Assessment<'_>) {
        use crate::runner::Clock;
        self.queue(Work::Assessed {
            target: target.name.clone(),
            assessment: Box::new(assessment.into()),
            now_ms: crate::runner::SystemClock.now_ms(),
        });
    }

    fn counters(&self) -> Vec<ObserverCounter> {
        ObserverCounter::by_outcome(
            "modelwatch_otlp_exports_total",
            "OTLP export requests by outcome: exported, failed; dropped counts rounds not exported because the queue was full.",
            &[
                ("exported", &self.stats.exported),
                ("failed", &self.stats.failed),
                ("dropped", &self.stats.dropped),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_reads_the_otel_variables_and_the_host() {
        let env = |k: &str| match k {
            "OTEL_SERVICE_NAME" => Some("watcher".to_string()),
            "OTEL_RESOURCE_ATTRIBUTES" => Some(
                "deployment.environment.name=prod, team=ml%20ops,service.name=ignored,broken"
                    .into(),
            ),
            _ => None,
        };
        let r: BTreeMap<String, String> = resource(&env, Some("host-1".into()))
            .into_iter()
            .map(|(k, v)| (k, format!("{v:?}")))
            .collect();
        assert_eq!(r["service.name"], format!("{:?}", Value::from("watcher")));
        assert_eq!(r["host.name"], format!("{:?}", Value::from("host-1")));
        assert_eq!(r["team"], format!("{:?}", Value::from("ml ops")));
        assert_eq!(
            r["deployment.environment.name"],
            format!("{:?}", Value::from("prod"))
        );
        assert!(r.contains_key("service.version"));
        let plain = resource(&|_: &str| None, None);
        assert!(plain.iter().any(|(k, v)| k == "service.name"
            && format!("{v:?}") == format!("{:?}", Value::from("modelwatch"))));
        assert!(!plain.iter().any(|(k, _)| k == "host.name"));
    }
}
