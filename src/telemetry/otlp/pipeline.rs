//! The OpenTelemetry SDK pipeline of one `[telemetry.otlp]`: a tracer provider with a batch
//! span processor and a meter provider with a periodic reader, both on the tokio runtime
//! (tasks, not threads), exporting OTLP/HTTP protobuf through [`ReqwestClient`]; the resource
//! of every signal; the ids of round and request spans; and a shutdown that never blocks a
//! runtime thread.

use super::Attrs;
use super::client::ReqwestClient;
use super::export::{ExportSettings, ExportStats};
use crate::config::Secret;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SdkTracerProvider, SpanData, SpanExporter,
};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The SDK resource of `attrs` (built by [`super::resource`]; no SDK detectors: the
/// environment is read there, once).
pub fn sdk_resource(attrs: &Attrs) -> Resource {
    Resource::builder_empty()
        .with_attributes(attrs.iter().cloned())
        .build()
}

/// Where one signal goes and what it carries.
pub struct Target<'a> {
    pub url: String,
    pub headers: &'a [(String, Secret)],
    pub timeout: Duration,
}

impl Target<'_> {
    fn client(&self) -> Result<ReqwestClient, String> {
        ReqwestClient::new(self.timeout, self.headers.to_vec())
    }
}

fn build_err(signal: &str) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> String + '_ {
    move |e| format!("cannot build the OTLP {signal} exporter: {e}")
}

/// The OTLP span exporter of `t`.
pub fn span_exporter(t: &Target<'_>) -> Result<opentelemetry_otlp::SpanExporter, String> {
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(t.client()?)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(t.url.clone())
        .with_timeout(t.timeout)
        .build()
        .map_err(build_err("traces"))
}

/// The OTLP log exporter of `t`.
pub fn log_exporter(t: &Target<'_>) -> Result<opentelemetry_otlp::LogExporter, String> {
    opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_http_client(t.client()?)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(t.url.clone())
        .with_timeout(t.timeout)
        .build()
        .map_err(build_err("logs"))
}

thread_local! {
    /// The ids the next span built on this thread gets ([`with_ids`]).
    static GIVEN: Cell<Option<([u8; 16], [u8; 8])>> = const { Cell::new(None) };
}

/// Span ids for the round traces: the ids the round's requests already carried in
/// `traceparent` ([`crate::provider::trace`]) when set by [`with_ids`], random ones otherwise.
#[derive(Debug, Default)]
pub struct DerivedIds;

impl IdGenerator for DerivedIds {
    fn new_trace_id(&self) -> TraceId {
        match GIVEN.get() {
            Some((t, _)) => TraceId::from_bytes(t),
            None => RandomIdGenerator::default().new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match GIVEN.get() {
            Some((_, s)) => SpanId::from_bytes(s),
            None => RandomIdGenerator::default().new_span_id(),
        }
    }
}

/// Runs `build` (which starts one span) with the given trace and span ids.
pub fn with_ids<T>(trace: [u8; 16], span: [u8; 8], build: impl FnOnce() -> T) -> T {
    GIVEN.set(Some((trace, span)));
    let out = build();
    GIVEN.set(None);
    out
}

/// An exporter that counts its exports for `modelwatch_otlp_exports_total` (the SDK's retries
/// are inside one export: `failed` means every attempt failed).
#[derive(Debug)]
pub struct Counted<E> {
    inner: E,
    stats: Arc<ExportStats>,
    signal: &'static str,
}

impl<E> Counted<E> {
    pub fn new(inner: E, stats: Arc<ExportStats>, signal: &'static str) -> Self {
        Counted {
            inner,
            stats,
            signal,
        }
    }

    fn count(&self, r: OTelSdkResult) -> OTelSdkResult {
        match &r {
            Ok(()) => self.stats.exported.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!(error = %e, signal = self.signal, "OTLP export failed");
                self.stats.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        r
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let r = self.inner.export(batch).await;
        self.count(r)
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Counted<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        self.count(r)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The two providers of one configuration. Dropping them shuts them down (a last export) on a
/// thread of its own: the SDK's shutdown waits for its tokio task, which a runtime thread must
/// not do.
pub struct Providers {
    pub tracer: SdkTracerProvider,
    pub meter: SdkMeterProvider,
}

impl Providers {
    /// Builds both on the current tokio runtime.
    pub fn build(
        traces: &Target<'_>,
        metrics: &Target<'_>,
        settings: &ExportSettings,
        resource: &Attrs,
        stats: &Arc<ExportStats>,
    ) -> Result<Providers, String> {
        let resource = sdk_resource(resource);
        let spans = Counted::new(span_exporter(traces)?, stats.clone(), "traces");
        let processor =
            opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                spans, Tokio,
            )
            .build();
        let tracer = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(DerivedIds)
            .with_resource(resource.clone())
            .build();
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(metrics.client()?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(metrics.url.clone())
            .with_timeout(metrics.timeout)
            .with_temporality(settings.temporality)
            .build()
            .map_err(build_err("metrics"))?;
        let reader =
            opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
                Counted::new(exporter, stats.clone(), "metrics"),
                Tokio,
            )
            .with_interval(settings.interval)
            .build();
        let meter = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource)
            .build();
        Ok(Providers { tracer, meter })
    }

    /// Pushes the metrics now (after an assessment), waiting off the runtime's threads.
    pub async fn flush_metrics(&self) {
        let meter = self.meter.clone();
        let _ = tokio::task::spawn_blocking(move || meter.force_flush()).await;
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        let tracer = self.tracer.clone();
        let meter = self.meter.clone();
        let shut = move || {
            let _ = tracer.shutdown();
            let _ = meter.shutdown();
        };
        if std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(shut)
            .is_err()
        {
            tracing::debug!("cannot start the OTLP shutdown thread; the last export is skipped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ids_are_used_once_and_random_ones_otherwise() {
        let ids = DerivedIds;
        let (t, s) = with_ids([7; 16], [9; 8], || (ids.new_trace_id(), ids.new_span_id()));
        assert_eq!(t, TraceId::from_bytes([7; 16]));
        assert_eq!(s, SpanId::from_bytes([9; 8]));
        let (a, b) = (ids.new_span_id(), ids.new_span_id());
        assert!(a != SpanId::from_bytes([9; 8]) && a != b && a != SpanId::INVALID);
        assert_ne!(ids.new_trace_id(), TraceId::from_bytes([7; 16]));
    }
}
