//! The exporter task: takes rounds and assessments from the scheduler, keeps the metric state,
//! and posts traces and metrics with bounded, jittered retries; plus the export settings the
//! OpenTelemetry SDKs read from the environment.

use super::{Attrs, RequestInfo};
use super::{MetricState, OwnedAssessment, RoundRecord, encode_traces};
use crate::config::{Otlp, Secret, Target};
use crate::provider::trace::IdKey;
use crate::rng::Rng;
use crate::runner::{Clock, RoundOutcome, SystemClock};
use crate::telemetry::observer::{Assessment, ObserverCounter, RoundObserver};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Rounds waiting for export; more are dropped.
const QUEUE: usize = 64;
/// The SDK default of `OTEL_METRIC_EXPORT_INTERVAL`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Attempts per export (the first and two retries).
const ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The only protocol spoken.
const PROTOCOL: &str = "http/protobuf";

/// What the environment says about the export beyond `[telemetry.otlp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// How often metrics are pushed (`$OTEL_METRIC_EXPORT_INTERVAL`, milliseconds).
    pub interval: Duration,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl ExportSettings {
    /// Reads `OTEL_METRIC_EXPORT_INTERVAL` (a positive number of milliseconds; anything else
    /// keeps the default, as the SDKs do) and refuses an `OTEL_EXPORTER_OTLP_*PROTOCOL` other
    /// than `http/protobuf`: a collector expecting gRPC or JSON would reject every export.
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
        Ok(ExportSettings { interval })
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
    },
}

/// Counters of the exporter, shown on `/metrics` as `modelwatch_otlp_exports_total`.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Requests the collector accepted.
    pub exported: AtomicU64,
    /// Requests that failed after every attempt (network error, no answer within the
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

/// Where and how one signal is posted.
struct Signal {
    name: &'static str,
    url: String,
    headers: Vec<(String, Secret)>,
}

struct Poster {
    client: reqwest::Client,
    stats: Arc<ExportStats>,
    /// Retry jitter, seeded from the OS so daemons restarted together do not retry in step.
    rng: Rng,
}

impl Poster {
    /// Posts `body`, retrying network failures, 429 and 5xx a bounded number of times.
    async fn post(&mut self, signal: &Signal, body: Vec<u8>) {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let wait = crate::provider::http::full_jitter(
                    &mut self.rng,
                    BACKOFF_BASE,
                    BACKOFF_MAX,
                    attempt - 1,
                );
                tokio::time::sleep(wait).await;
            }
            let mut req = self
                .client
                .post(signal.url.as_str())
                .header("content-type", "application/x-protobuf");
            for (k, v) in &signal.headers {
                req = req.header(k.as_str(), v.expose());
            }
            let retryable = match req.body(body.clone()).send().await {
                Ok(resp) if resp.status().is_success() => {
                    self.stats.exported.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(resp) => {
                    let st = resp.status();
                    tracing::debug!(status = %st, signal = signal.name, attempt, "OTLP export refused");
                    st.as_u16() == 429 || st.is_server_error()
                }
                Err(e) => {
                    tracing::debug!(error = %e.without_url(), signal = signal.name, attempt, "OTLP export failed");
                    true
                }
            };
            if !retryable {
                break;
            }
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
    }
}

impl OtlpExporter {
    /// Starts the exporter task (needs a tokio runtime). The task ends when the exporter is
    /// dropped (a reload that replaces it).
    pub fn start(
        config: &Otlp,
        settings: ExportSettings,
        resource: Attrs,
        start_ms: i64,
    ) -> Result<OtlpExporter, String> {
        let client = crate::provider::http::outbound_client()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
        let (tx, rx) = mpsc::channel::<Work>(QUEUE);
        let stats = Arc::new(ExportStats::default());
        let traces = Signal {
            name: "traces",
            url: config.traces_url(),
            headers: config.traces_headers.clone(),
        };
        let metrics = Signal {
            name: "metrics",
            url: config.metrics_url(),
            headers: config.metrics_headers.clone(),
        };
        let poster = Poster {
            client,
            stats: stats.clone(),
            rng: Rng::new(crate::rng::os_seed()),
        };
        tokio::spawn(run(
            rx,
            poster,
            [traces, metrics],
            settings,
            resource,
            start_ms,
        ));
        Ok(OtlpExporter { tx, stats })
    }

    fn queue(&self, work: Work) {
        if self.tx.try_send(work).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The exporter task: metrics after every assessment and on the periodic timer, a trace per
/// round.
async fn run(
    mut rx: mpsc::Receiver<Work>,
    mut poster: Poster,
    [traces, metrics]: [Signal; 2],
    settings: ExportSettings,
    resource: Attrs,
    start_ms: i64,
) {
    let mut state = MetricState::new(start_ms);
    let key = IdKey::process();
    let first = tokio::time::Instant::now() + settings.interval;
    let mut tick = tokio::time::interval_at(first, settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let work = tokio::select! {
            w = rx.recv() => match w {
                Some(w) => w,
                None => break,
            },
            _ = tick.tick() => {
                let body = state.encode(&resource, SystemClock.now_ms());
                poster.post(&metrics, body).await;
                continue;
            }
        };
        match work {
            Work::Round(r) => {
                state.record(&r);
                if !r.samples.is_empty() {
                    poster
                        .post(&traces, encode_traces(&resource, &r, key))
                        .await;
                }
            }
            Work::Assessed { target, assessment } => {
                state.assess(&target, &assessment);
                let body = state.encode(&resource, SystemClock.now_ms());
                poster.post(&metrics, body).await;
                // The timer counts from the last push.
                tick.reset();
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
}
