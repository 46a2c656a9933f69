//! OTLP/HTTP (protobuf) export of metrics and traces through the OpenTelemetry SDK.
//!
//! The scheduler hands each finished round to [`OtlpExporter`] through a bounded channel
//! (`try_send`: when the exporter is behind, the round is dropped and counted), so a slow or
//! dead collector never slows probing. The exporter task feeds the SDK ([`pipeline`]): a
//! tracer provider with a batch span processor and a meter provider with a periodic reader,
//! both tasks on the tokio runtime, exporting with `opentelemetry-otlp` over the project's own
//! reqwest client ([`client`]) to `{endpoint}/v1/traces` and `{endpoint}/v1/metrics`; the
//! exporter retries refused and failed exports with its own backoff.
//!
//! Metrics follow the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
//! `gen_ai.client.operation.time_to_first_chunk`; names in [`genai`]) plus modelwatch's own
//! quality metrics, each the OTel spelling of a `/metrics` family (`modelwatch.metric.e_value`
//! ↔ `modelwatch_metric_e_value`, attribute `modelwatch.target` ↔ label `target`): rounds,
//! requests, per-metric values, baselines and e-values (the evidence), alert state, last-round
//! rates, response-length and latency histograms, and `modelwatch.build_info` (so every push
//! carries at least one point). Gauges carry no unit, so the OTLP → Prometheus translation adds
//! no `_ratio` suffix and the names stay those of `/metrics`; they are observed at each
//! collection from the last assessment, so a series that is no longer reported disappears.
//! Metrics go out once the scheduler has assessed a round ([`RoundObserver::round_assessed`],
//! a flush of the reader) and every `$OTEL_METRIC_EXPORT_INTERVAL` (default 60 s); spans in
//! batches (`$OTEL_BSP_*`, default every 5 s): per round a root span `round {target}` with one
//! client span `{operation} {model}` per request, each with a `gen_ai.evaluation.result` event
//! per evaluation outcome.

mod client;
mod export;
mod genai;
mod metrics;
pub mod pipeline;
mod traces;

pub use export::{ExportSettings, ExportStats, OtlpExporter};
pub use genai::RequestInfo;
pub use traces::round_trace_id;

use super::observer::{Assessment, MetricSnapshot};
use super::quality::TargetQuality;
use crate::sample::Sample;
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Attributes of a resource, point, span or event.
pub type Attrs = Vec<KeyValue>;

/// The resource: `service.name` (`$OTEL_SERVICE_NAME`, default `modelwatch`), `host.name`,
/// `service.version`, `service.instance.id` (random per process, so two daemons watching the
/// same model never send the same series), and `$OTEL_RESOURCE_ATTRIBUTES` (`k=v,k=v`,
/// percent-decoded; explicit keys win).
pub fn resource(env: &dyn Fn(&str) -> Option<String>, host: Option<String>) -> Attrs {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    map.insert("service.name".into(), "modelwatch".into());
    map.insert("service.version".into(), env!("CARGO_PKG_VERSION").into());
    map.insert("service.instance.id".into(), instance_id().to_string());
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
                crate::config::sinks::percent_decode(v.trim()),
            );
        }
    }
    if let Some(s) = env("OTEL_SERVICE_NAME").filter(|s| !s.is_empty()) {
        map.insert("service.name".into(), s);
    }
    map.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect()
}

/// This process's `service.instance.id`: a random (version 4) UUID, the same for every
/// exporter the process builds (a reload keeps it).
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid_v4(crate::rng::os_bytes()))
}

fn uuid_v4(b: [u8; 32]) -> String {
    let mut u = [0u8; 16];
    u.copy_from_slice(&b[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    let h = crate::provider::trace::hex(&u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
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
    /// Operation, server and parameters of the target's requests.
    pub request: RequestInfo,
    pub started_ms: i64,
    pub status: String,
    pub samples: Vec<Sample>,
}

pub(super) fn s(k: &str, v: impl Into<Value>) -> KeyValue {
    KeyValue::new(k.to_string(), v)
}

pub(super) fn ms_to_ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

/// The instrumentation scope of every signal: `modelwatch` at its version.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("modelwatch")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
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
        let map = |r: Attrs| -> BTreeMap<String, String> {
            r.into_iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect()
        };
        let r = map(resource(&env, Some("host-1".into())));
        assert_eq!(r["service.name"], "watcher");
        assert_eq!(r["host.name"], "host-1");
        assert_eq!(r["team"], "ml ops");
        assert_eq!(r["deployment.environment.name"], "prod");
        assert!(r.contains_key("service.version"));
        let plain = map(resource(&|_: &str| None, None));
        assert_eq!(plain["service.name"], "modelwatch");
        assert!(!plain.contains_key("host.name"));
        // One id per process, across exporters; the environment's wins.
        assert_eq!(plain["service.instance.id"], instance_id());
        let again = map(resource(&|_: &str| None, None));
        assert_eq!(again["service.instance.id"], plain["service.instance.id"]);
        let given = |k: &str| {
            (k == "OTEL_RESOURCE_ATTRIBUTES").then(|| "service.instance.id=pod-7%2Ca".to_string())
        };
        assert_eq!(
            map(resource(&given, None))["service.instance.id"],
            "pod-7,a"
        );
    }

    #[test]
    fn instance_ids_are_version_4_uuids() {
        let id = uuid_v4([0xff; 32]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = instance_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(
            uuid_v4(crate::rng::os_bytes()),
            uuid_v4(crate::rng::os_bytes())
        );
    }
}
