//! The sinks and round observers a configuration asks for: the log always, the webhook,
//! Sentry (events and check-ins) and the OTLP exporter when configured. Built at start, and
//! again by a reload that changes them (see [`super::Options::outputs`]).

use super::RoundObserver;
use super::checkins::SentryCheckIns;
use crate::alert::sentry::{SentrySink, TargetInfo};
use crate::alert::webhook::WebhookSink;
use crate::alert::{AlertSink, LogSink, SinkError};
use crate::config::Config;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for one webhook or Sentry request.
pub const SINK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Outputs {
    pub sinks: Vec<Arc<dyn AlertSink>>,
    pub observers: Vec<Arc<dyn RoundObserver>>,
}

pub fn from_config(config: &Config) -> Result<Outputs, SinkError> {
    let mut sinks: Vec<Arc<dyn AlertSink>> = vec![Arc::new(LogSink)];
    let mut observers: Vec<Arc<dyn RoundObserver>> = Vec::new();
    if let Some(w) = &config.alerts.webhook {
        sinks.push(Arc::new(WebhookSink::new(w.clone(), SINK_TIMEOUT)?));
    }
    if let Some(s) = &config.alerts.sentry {
        let targets: BTreeMap<String, TargetInfo> = config
            .targets
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    TargetInfo {
                        provider: t.provider.as_str().to_string(),
                        model: t.model.clone(),
                        fingerprint: None,
                    },
                )
            })
            .collect();
        let sink = Arc::new(SentrySink::new(s.clone(), targets, SINK_TIMEOUT)?);
        observers.push(Arc::new(SentryCheckIns::new(sink.clone())));
        sinks.push(sink);
    }
    if let Some(o) = &config.telemetry.otlp {
        let env = |k: &str| std::env::var(k).ok();
        let otlp_err = |reason| SinkError::permanent("otlp", "", reason);
        let settings = crate::telemetry::otlp::ExportSettings::from_env(&env).map_err(otlp_err)?;
        let resource = crate::telemetry::otlp::resource(&env, crate::telemetry::otlp::host_name());
        crate::telemetry::bridge::install(Some((o, &resource))).map_err(otlp_err)?;
        let exporter =
            crate::telemetry::otlp::OtlpExporter::start(o, settings, resource).map_err(otlp_err)?;
        observers.push(Arc::new(exporter));
    } else {
        let _ = crate::telemetry::bridge::install(None);
    }
    Ok(Outputs { sinks, observers })
}
