//! The exporter task: takes rounds and assessments from the scheduler and hands them to the
//! OpenTelemetry SDK pipeline ([`super::pipeline`]): instruments and spans; plus the export
//! settings the OpenTelemetry SDKs read from the environment.

use super::metrics::{Gauges, Instruments, assess};
use super::pipeline::{Providers, Target as SignalTarget};
use super::traces::record_trace;
use super::{Attrs, OwnedAssessment, RequestInfo, RoundRecord};
use crate::config::{Otlp, Target};
use crate::provider::trace::IdKey;
use crate::runner::RoundOutcome;
use crate::telemetry::observer::{Assessment, ObserverCounter, RoundObserver};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::Temporality;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Rounds waiting for export; more are dropped.
const QUEUE: usize = 64;
/// The SDK default of `OTEL_METRIC_EXPORT_INTERVAL`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The only protocol spoken.
const PROTOCOL: &str = "http/protobuf";

/// What the environment says about the export beyond `[telemetry.otlp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// How often metrics are pushed (`$OTEL_METRIC_EXPORT_INTERVAL`, milliseconds).
    pub interval: Duration,
    /// `$OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: `cumulative` (the default),
    /// `delta` or `lowmemory`.
    pub temporality: Temporality,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            interval: DEFAULT_INTERVAL,
            temporality: Temporality::Cumulative,
        }
    }
}

impl ExportSettings {
    /// Reads `OTEL_METRIC_EXPORT_INTERVAL` (a positive number of milliseconds; anything else
    /// keeps the default, as the SDKs do) and refuses an `OTEL_EXPORTER_OTLP_*PROTOCOL` other
    /// than `http/protobuf`: a collector expecting gRPC or JSON would reject every export;
    /// refuses a compression other than gzip or none ([`check_compression`]).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ExportSettings, String> {
        for var in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ] {
            let Some(p) = env(var).map(|p| p.trim().to_string()) else {
                continue;
            };
            if !p.is_empty() && p != PROTOCOL {
                return Err(format!(
                    "{var}={p} is not supported: modelwatch exports OTLP over HTTP with protobuf \
                     bodies only; unset {var} or set it to {PROTOCOL}, and point the endpoint at \
                     the collector's OTLP/HTTP port (4318 by default)"
                ));
            }
        }
        check_compression(env)?;
        let interval = match env("OTEL_METRIC_EXPORT_INTERVAL") {
            None => DEFAULT_INTERVAL,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    tracing::warn!(value = %v, "OTEL_METRIC_EXPORT_INTERVAL is not a positive number of milliseconds; using 60000");
                    DEFAULT_INTERVAL
                }
            },
        };
        let temporality = match env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("cumulative") => Temporality::Cumulative,
            Some("delta") => Temporality::Delta,
            Some("lowmemory") => Temporality::LowMemory,
            Some(other) => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={other} is not one of \
                     cumulative, delta or lowmemory; set one of them or unset the variable"
                ));
            }
        };
        Ok(ExportSettings {
            interval,
            temporality,
        })
    }
}

/// The compression variables, general and per signal: the SDK's exporters read them
/// themselves (a signal's own variable over the general one) and gzip the bodies for `gzip`;
/// `none` or unset sends them as they are. Anything else the SDK would only warn about and send
/// uncompressed, so it is refused here, at start, with what to set instead.
fn check_compression(env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    for var in [
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    ] {
        let Some(value) = env(var).map(|v| v.trim().to_ascii_lowercase()) else {
            continue;
        };
        let why = match value.as_str() {
            "" | "none" | "gzip" => continue,
            "zstd" => "zstd is not built in (it would bring the C zstd library)",
            _ => "it is not a compression the OTLP exporters know",
        };
        return Err(format!(
            "{var}={value} is not supported: {why}; set it to gzip or none, or unset it"
        ));
    }
    Ok(())
}

/// Work for the exporter task.
enum Work {
    /// A finished round: counters, histograms, and its trace.
    Round(RoundRecord),
    /// The scheduler's assessment of a target after a round: gauges, then the metrics export.
    Assessed {
        target: String,
        assessment: Box<OwnedAssessment>,
    },
}

/// Counters of the exporter, shown on `/metrics` as `modelwatch_otlp_exports_total`.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Requests the collector accepted.
    pub exported: AtomicU64,
    /// Exports that failed after every attempt (network error, no answer within the
    /// timeout, non-2xx).
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
    /// Builds the SDK pipeline and starts the exporter task (needs a tokio runtime). The task
    /// ends, and the pipeline shuts down after a last export, when the exporter is dropped (a
    /// reload that replaces it).
    pub fn start(
        config: &Otlp,
        settings: ExportSettings,
        resource: Attrs,
    ) -> Result<OtlpExporter, String> {
        let stats = Arc::new(ExportStats::default());
        let traces = SignalTarget {
            url: config.traces_url(),
            headers: &config.traces_headers,
            timeout: config.timeout,
        };
        let metrics = SignalTarget {
            url: config.metrics_url(),
            headers: &config.metrics_headers,
            timeout: config.timeout,
        };
        let providers = Providers::build(&traces, &metrics, &settings, &resource, &stats)?;
        let (tx, rx) = mpsc::channel::<Work>(QUEUE);
        tokio::spawn(run(rx, providers));
        Ok(OtlpExporter { tx, stats })
    }

    fn queue(&self, work: Work) {
        if self.tx.try_send(work).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The exporter task: instruments and a trace per round, a metrics push after every
/// assessment (the periodic reader pushes on its interval besides).
async fn run(mut rx: mpsc::Receiver<Work>, providers: Providers) {
    let scope = super::scope();
    let tracer = providers.tracer.tracer_with_scope(scope.clone());
    let meter = providers.meter.meter_with_scope(scope);
    let gauges = Gauges::default();
    let instruments = Instruments::new(&meter, &gauges);
    let key = IdKey::process();
    while let Some(work) = rx.recv().await {
        match work {
            Work::Round(r) => {
                instruments.record(&r);
                if !r.samples.is_empty() {
                    record_trace(&tracer, &r, key);
                }
            }
            Work::Assessed { target, assessment } => {
                assess(&gauges, &target, &assessment);
                providers.flush_metrics().await;
            }
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
            request: RequestInfo::of(target),
            started_ms,
            status: status.to_string(),
            samples: outcome.map(|o| o.samples.clone()).unwrap_or_default(),
        }));
    }

    fn round_assessed(&self, target: &Target, assessment: &Assessment<'_>) {
        self.queue(Work::Assessed {
            target: target.name.clone(),
            assessment: Box::new(assessment.into()),
        });
    }

    fn counters(&self) -> Vec<ObserverCounter> {
        ObserverCounter::by_outcome(
            "modelwatch_otlp_exports_total",
            "OTLP export requests by outcome: exported, failed (after every retry); dropped counts rounds not exported because the queue was full.",
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
    fn settings_read_the_interval_and_refuse_other_protocols() {
        let none = |_: &str| None;
        assert_eq!(
            ExportSettings::from_env(&none).unwrap().interval,
            DEFAULT_INTERVAL
        );
        let env = |k: &str| match k {
            "OTEL_METRIC_EXPORT_INTERVAL" => Some("15000".to_string()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".into()),
            _ => None,
        };
        assert_eq!(
            ExportSettings::from_env(&env).unwrap().interval,
            Duration::from_secs(15)
        );
        let bad = |k: &str| (k == "OTEL_METRIC_EXPORT_INTERVAL").then(|| "soon".to_string());
        assert_eq!(
            ExportSettings::from_env(&bad).unwrap().interval,
            DEFAULT_INTERVAL
        );
        const PREFERENCE: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        assert_eq!(
            ExportSettings::from_env(&none).unwrap().temporality,
            Temporality::Cumulative
        );
        let delta = |k: &str| (k == PREFERENCE).then(|| "Delta".to_string());
        assert_eq!(
            ExportSettings::from_env(&delta).unwrap().temporality,
            Temporality::Delta
        );
        let odd = |k: &str| (k == PREFERENCE).then(|| "sometimes".to_string());
        let e = ExportSettings::from_env(&odd).unwrap_err();
        assert!(e.contains("sometimes") && e.contains("cumulative"), "{e}");
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
        ] {
            let env = |k: &str| (k == var).then(|| value.to_string());
            let e = ExportSettings::from_env(&env).unwrap_err();
            assert!(
                e.contains(var) && e.contains(value) && e.contains("http/protobuf"),
                "{e}"
            );
        }
    }

    #[test]
    fn gzip_and_none_pass_and_other_compressions_are_refused() {
        for value in ["gzip", "GZIP", "none", ""] {
            let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_COMPRESSION").then(|| value.to_string());
            assert!(ExportSettings::from_env(&env).is_ok(), "{value}");
        }
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli"),
        ] {
            let env = |k: &str| (k == var).then(|| value.to_string());
            let e = ExportSettings::from_env(&env).unwrap_err();
            assert!(
                e.contains(var) && e.contains(value) && e.contains("gzip or none"),
                "{e}"
            );
        }
    }
}
