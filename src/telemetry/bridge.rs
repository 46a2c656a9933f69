//! The daemon's own `tracing` spans and log records, exported through OpenTelemetry: the
//! `tracing-opentelemetry` layer (spans) and the OTel logs bridge
//! (`opentelemetry-appender-tracing`, events), installed with the log subscriber by
//! [`layer`]. The configuration that says where they go comes later and may change on a
//! reload, so the layers feed switches: [`install`] puts a batch span processor and a batch log
//! processor (tokio tasks) for `[telemetry.otlp]` into them, or empties them. Until then, and
//! without `[telemetry.otlp]`, records go nowhere.

use crate::config::Otlp;
use crate::telemetry::otlp::Attrs;
use crate::telemetry::otlp::pipeline::{Target, log_exporter, sdk_resource, span_exporter};
use opentelemetry::logs::Severity;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

type Spans = Arc<BatchSpanProcessor<Tokio>>;
type Logs = Arc<BatchLogProcessor<Tokio>>;

/// The processors in use; set once [`layer`] has been installed.
struct Switch {
    spans: RwLock<Option<Spans>>,
    logs: RwLock<Option<Logs>>,
    /// Kept so the layers' providers outlive every reload.
    _providers: (SdkTracerProvider, SdkLoggerProvider),
}

static SWITCH: OnceLock<Switch> = OnceLock::new();

fn current<T: Clone>(slot: &RwLock<Option<T>>) -> Option<T> {
    slot.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Log records of these targets stay out of the export: the SDK's and the HTTP stack's own
/// records would report on the export itself.
fn exported(target: &str) -> bool {
    !["opentelemetry", "hyper", "reqwest", "h2", "tower", "rustls"]
        .iter()
        .any(|p| target.starts_with(p))
}

#[derive(Debug)]
struct SpanSwitch;

impl SpanProcessor for SpanSwitch {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        if let Some(p) = SWITCH.get().and_then(|s| current(&s.spans)) {
            p.on_end(span);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        match SWITCH.get().and_then(|s| current(&s.spans)) {
            Some(p) => p.force_flush(),
            None => Ok(()),
        }
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[derive(Debug)]
struct LogSwitch;

impl LogProcessor for LogSwitch {
    fn emit(&self, data: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if let Some(p) = SWITCH.get().and_then(|s| current(&s.logs)) {
            p.emit(data, scope);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        match SWITCH.get().and_then(|s| current(&s.logs)) {
            Some(p) => p.force_flush(),
            None => Ok(()),
        }
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
    fn event_enabled(&self, _level: Severity, target: &str, _name: Option<&str>) -> bool {
        exported(target)
            && SWITCH
                .get()
                .is_some_and(|s| s.logs.read().map(|l| l.is_some()).unwrap_or(false))
    }
}

/// The layer that exports the daemon's spans and log records; once per process (a second
/// call returns a layer that exports nothing).
pub fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(SpanSwitch)
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(LogSwitch)
        .build();
    let tracer = tracer_provider.tracer_with_scope(crate::telemetry::otlp::scope());
    let spans = tracing_opentelemetry::layer().with_tracer(tracer);
    let logs =
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&logger_provider);
    let _ = SWITCH.set(Switch {
        spans: RwLock::new(None),
        logs: RwLock::new(None),
        _providers: (tracer_provider, logger_provider),
    });
    spans
        .and_then(logs)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            exported(m.target())
        }))
}

/// Points the daemon's spans and logs at `[telemetry.otlp]` (or nowhere with `None`); the
/// processors replaced are shut down, after a last export, on a thread of their own. Needs a
/// tokio runtime; without [`layer`] it does nothing.
pub fn install(to: Option<(&Otlp, &Attrs)>) -> Result<(), String> {
    let Some(switch) = SWITCH.get() else {
        return Ok(());
    };
    let (spans, logs) = match to {
        None => (None, None),
        Some((config, resource)) => {
            let resource: Resource = sdk_resource(resource);
            let traces = Target {
                url: config.traces_url(),
                headers: &config.traces_headers,
                timeout: config.timeout,
            };
            let mut spans = BatchSpanProcessor::builder(span_exporter(&traces)?, Tokio).build();
            spans.set_resource(&resource);
            let logs_target = Target {
                url: logs_url(config),
                headers: &config.headers,
                timeout: config.timeout,
            };
            let mut logs = BatchLogProcessor::builder(log_exporter(&logs_target)?, Tokio).build();
            logs.set_resource(&resource);
            (Some(Arc::new(spans)), Some(Arc::new(logs)))
        }
    };
    let old_spans = std::mem::replace(
        &mut *switch.spans.write().unwrap_or_else(|p| p.into_inner()),
        spans,
    );
    let old_logs = std::mem::replace(
        &mut *switch.logs.write().unwrap_or_else(|p| p.into_inner()),
        logs,
    );
    if old_spans.is_some() || old_logs.is_some() {
        let _ = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                if let Some(p) = old_spans {
                    let _ = p.shutdown();
                }
                if let Some(p) = old_logs {
                    let _ = p.shutdown();
                }
            });
    }
    Ok(())
}

/// Where log records go: `$OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` as is, else `{endpoint}/v1/logs`.
fn logs_url(config: &Otlp) -> String {
    std::env::var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| format!("{}/v1/logs", config.endpoint.trim_end_matches('/')))
}

/// Exports what is queued (at exit), waiting off the runtime's threads.
pub async fn flush() {
    let Some(switch) = SWITCH.get() else {
        return;
    };
    let spans = current(&switch.spans);
    let logs = current(&switch.logs);
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(p) = logs {
            let _ = p.force_flush();
        }
        if let Some(p) = spans {
            let _ = p.force_flush();
        }
    })
    .await;
}
