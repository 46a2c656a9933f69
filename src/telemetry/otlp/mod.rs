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

mod genai;
mod metrics;
mod traces;

pub use metrics::MetricState;
pub use traces::encode_traces;

use super::observer::{Assessment, MetricSnapshot, ObserverCounter, RoundObserver};
use super::proto::{Msg, Value, attributes};
use super::quality::TargetQuality;
use crate::config::{Otlp, Target};
use crate::rng::Rng;
use crate::runner::RoundOutcome;
use crate::sample::Sample;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Rounds waiting for export; more are dropped.
const QUEUE: usize = 64;

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

pub(super) fn s(k: &str, v: impl Into<Value>) -> (String, Value) {
    (k.to_string(), v.into())
}

pub(super) fn ms_to_ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

pub(super) fn scope_msg() -> Msg {
    let mut s = Msg::new();
    s.string(1, "modelwatch")
        .string(2, env!("CARGO_PKG_VERSION"));
    s
}

pub(super) fn resource_msg(attrs: &Attrs) -> Msg {
    let mut r = Msg::new();
    attributes(&mut r, 1, attrs);
    r
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
