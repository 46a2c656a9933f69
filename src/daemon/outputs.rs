//! The sinks and round observers a configuration asks for: the log always, the webhook and
//! Sentry (events and check-ins) when configured. Built once at start; changing them needs a
//! restart.

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
                    },
                )
            })
            .collect();
        let sink = Arc::new(SentrySink::new(s.clone(), targets, SINK_TIMEOUT)?);
        observers.push(Arc::new(SentryCheckIns::new(sink.clone())));
        sinks.push(sink);
    }
    Ok(Outputs { sinks, observers })
}
