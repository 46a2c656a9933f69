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
//! (`modelwatch.rounds`, `modelwatch.requests`, `modelwatch.round.metric_value`), named like the
//! Prometheus families. Each probe request is a client span `chat {model}` with one
//! `gen_ai.evaluation.result` event per evaluation outcome.

use super::proto::{Msg, Value, attributes};
use crate::config::{Otlp, Target};
use crate::daemon::RoundObserver;
use crate::rng::Rng;
use crate::runner::RoundOutcome;
use crate::sample::{Sample, StructuredOutcome};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Rounds waiting for export; more are dropped.
const QUEUE: usize = 64;

/// Advised bucket boundaries of the GenAI conventions.
const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Response length buckets in characters (length quantiles come from these).
const LENGTH_BOUNDS: [f64; 11] = [
    16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
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
    gauges: BTreeMap<(&'static str, String), (Attrs, f64)>,
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

    fn set(&mut self, name: &'static str, attrs: Attrs, v: f64) {
        self.gauges.insert((name, attr_key(&attrs)), (attrs, v));
    }

    /// Adds a round.
    pub fn record(&mut self, r: &RoundRecord) {
        let target = || s("modelwatch.target", r.target.as_str());
        self.add(
            "modelwatch.rounds",
            vec![target(), s("modelwatch.status", r.status.as_str())],
            1,
        );
        let mut bad: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
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
            if let Some(m) = &sample.measurements {
                self.observe(
                    "modelwatch.response.length_chars",
                    &LENGTH_BOUNDS,
                    vec![target()],
                    f64::from(m.chars),
                );
                let mut count = |k: &'static str, b: Option<bool>| {
                    if let Some(b) = b {
                        let e = bad.entry(k).or_default();
                        e.0 += u64::from(b);
                        e.1 += 1;
                    }
                };
                count("refusal_rate", Some(m.refusal));
                count("empty_rate", Some(m.empty));
                count("truncation_rate", Some(m.truncated));
                count(
                    "structured_failure_rate",
                    m.structured.map(|s| s != StructuredOutcome::Ok),
                );
                count("task_failure_rate", m.task_success.map(|t| !t));
            }
        }
        for (metric, (n, d)) in bad {
            if d > 0 {
                self.set(
                    "modelwatch.round.metric_value",
                    vec![target(), s("modelwatch.metric", metric)],
                    n as f64 / d as f64,
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
                "modelwatch.response.length_chars" => &LENGTH_BOUNDS,
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
                "modelwatch.response.length_chars" => ("{char}", "Response length in characters."),
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
            let mut m = Msg::new();
            m.string(1, name).string(3, "1").msg(7, &sum);
            metrics.insert(name, m);
        }
        let mut gauge_points: BTreeMap<&'static str, Vec<Msg>> = BTreeMap::new();
        for ((name, _), (attrs, v)) in &self.gauges {
            let mut p = Msg::new();
            p.fixed64(3, now).double(4, *v);
            attributes(&mut p, 7, attrs);
            gauge_points.entry(name).or_default().push(p);
        }
        for (name, points) in gauge_points {
            let mut g = Msg::new();
            for p in &points {
                g.msg(1, p);
            }
            let mut m = Msg::new();
            m.string(1, name)
                .string(2, "Bad-outcome rate of the last round, by metric.")
                .string(3, "1")
                .msg(5, &g);
            metrics.insert(name, m);
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

/// Counters of the exporter (for logs and tests).
#[derive(Debug, Default)]
pub struct ExportStats {
    pub exported: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// The round observer that exports; see the module documentation.
pub struct OtlpExporter {
    tx: mpsc::Sender<RoundRecord>,
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
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("modelwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
        let (tx, mut rx) = mpsc::channel::<RoundRecord>(QUEUE);
        let stats = Arc::new(ExportStats::default());
        let base = config.endpoint.trim_end_matches('/').to_string();
        let headers = config.headers.clone();
        let st = stats.clone();
        tokio::spawn(async move {
            let mut state = MetricState::new(start_ms);
            let mut rng = Rng::new(seed);
            while let Some(r) = rx.recv().await {
                state.record(&r);
                let now_ms = r
                    .samples
                    .iter()
                    .map(|s| s.started_at_ms + s.latency_ms.max(0.0) as i64)
                    .max()
                    .unwrap_or(r.started_ms)
                    .max(r.started_ms);
                let bodies = [
                    ("/v1/traces", encode_traces(&resource, &r, &mut rng)),
                    ("/v1/metrics", state.encode(&resource, now_ms)),
                ];
                for (path, body) in bodies {
                    let mut req = client
                        .post(format!("{base}{path}"))
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
                            tracing::debug!(status = %resp.status(), path, "OTLP export refused");
                        }
                        Err(e) => {
                            st.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(error = %e.without_url(), path, "OTLP export failed");
                        }
                    }
                }
            }
        });
        Ok(OtlpExporter { tx, stats })
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
        let record = RoundRecord {
            target: target.name.clone(),
            provider: target.provider.as_str().to_string(),
            model: target.model.clone(),
            started_ms,
            status: status.to_string(),
            samples: outcome.map(|o| o.samples.clone()).unwrap_or_default(),
        };
        if self.tx.try_send(record).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
