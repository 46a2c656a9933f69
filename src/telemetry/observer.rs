//! What the daemon tells its observers (Sentry check-ins, OpenTelemetry export) about rounds,
//! and the readings it shares with them. Defined here, below the daemon, so the daemon calls
//! observers without the observers depending on the daemon.

use crate::alert::AlertState;
use crate::config::Target;
use crate::runner::RoundOutcome;
use std::sync::atomic::Ordering;

/// Told when rounds start and finish (Sentry check-ins, OpenTelemetry export). Called on the
/// scheduler: implementations must not block (queue or spawn the work).
pub trait RoundObserver: Send + Sync {
    fn round_started(&self, target: &Target, started_ms: i64) {
        let _ = (target, started_ms);
    }
    /// `outcome` is `None` for a round cut off by its deadline; `status` is `completed`,
    /// `failed` or `deadline`.
    fn round_finished(
        &self,
        target: &Target,
        started_ms: i64,
        outcome: Option<&RoundOutcome>,
        status: &str,
    ) {
        let _ = (target, started_ms, outcome, status);
    }
    /// After a finished round was stored and its monitor and alerts stepped (also after a
    /// round cut off by its deadline): the target's readings as they are now.
    fn round_assessed(&self, target: &Target, assessment: &Assessment<'_>) {
        let _ = (target, assessment);
    }
    /// Counters for `/metrics`, read at every scrape.
    fn counters(&self) -> Vec<ObserverCounter> {
        Vec::new()
    }
}

/// A target's readings after a round: what `/metrics` shows of it, for the observers.
#[derive(Debug, Clone, Copy)]
pub struct Assessment<'a> {
    /// The monitored metrics of the episode: value, baseline, e-value (the evidence).
    pub metrics: &'a [MetricSnapshot],
    /// The target's alert states (every metric that ever had one).
    pub alerts: &'a [AlertState],
    /// Last-round rates and response-length quantiles.
    pub quality: &'a super::quality::TargetQuality,
}

/// One sample of a counter family an observer keeps (its name ends in `_total`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserverCounter {
    pub family: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: u64,
}

impl ObserverCounter {
    /// One counter per `(outcome, value)` of a family labelled by `outcome`.
    pub fn by_outcome(
        family: &'static str,
        help: &'static str,
        outcomes: &[(&str, &std::sync::atomic::AtomicU64)],
    ) -> Vec<ObserverCounter> {
        outcomes
            .iter()
            .map(|(outcome, v)| ObserverCounter {
                family,
                help,
                labels: vec![("outcome", outcome.to_string())],
                value: v.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// A metric's current reading, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricSnapshot {
    pub metric: String,
    /// Baseline value (bad-outcome rate, or ½ for length placements).
    pub baseline: f64,
    /// Value in the current episode (None before any sample).
    pub current: Option<f64>,
    /// Null bound (rate) or placement bound.
    pub null_bound: f64,
    pub e_value: f64,
    pub threshold: f64,
    pub samples: u64,
}
