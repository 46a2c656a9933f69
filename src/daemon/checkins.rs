//! Sentry Crons check-ins per round: `in_progress` when a round starts, `ok` when it measured
//! something, `error` when it failed or hit its deadline. Sent off the scheduler (spawned, at
//! most a few at once; a check-in that finds the queue full is dropped and counted), so a slow
//! Sentry never delays a round. Outcomes are counted on `/metrics` as
//! `modelwatch_sentry_checkins_total{outcome="sent|failed|dropped"}`.

use super::{ObserverCounter, RoundObserver};
use crate::alert::sentry::{CheckInStatus, SentrySink};
use crate::config::Target;
use crate::runner::RoundOutcome;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Most check-ins in flight at once.
const IN_FLIGHT: usize = 8;

pub struct SentryCheckIns {
    sink: Arc<SentrySink>,
    permits: Arc<Semaphore>,
    /// Check-ins dropped unsent (too many in flight: Sentry slow or down).
    pub dropped: Arc<AtomicU64>,
    /// Check-ins Sentry accepted.
    pub sent: Arc<AtomicU64>,
    /// Check-ins sent but not accepted (network error, non-2xx).
    pub failed: Arc<AtomicU64>,
}

impl SentryCheckIns {
    pub fn new(sink: Arc<SentrySink>) -> SentryCheckIns {
        SentryCheckIns::with_limit(sink, IN_FLIGHT)
    }

    /// At most `in_flight` check-ins at once (tests use small limits).
    pub fn with_limit(sink: Arc<SentrySink>, in_flight: usize) -> SentryCheckIns {
        SentryCheckIns {
            sink,
            permits: Arc::new(Semaphore::new(in_flight)),
            dropped: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(AtomicU64::new(0)),
        }
    }

    fn send(
        &self,
        target: &str,
        started_ms: i64,
        status: CheckInStatus,
        duration: Option<Duration>,
    ) {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let sink = self.sink.clone();
        let (sent, failed) = (self.sent.clone(), self.failed.clone());
        let id = SentrySink::check_in_id(target, started_ms);
        let now_ms = started_ms + duration.map(|d| d.as_millis() as i64).unwrap_or(0);
        let target = target.to_string();
        tokio::spawn(async move {
            match sink.send_check_in(&id, status, duration, now_ms).await {
                Ok(()) => {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target = %target, error = %e, "Sentry check-in failed");
                }
            }
            drop(permit);
        });
    }
}

impl RoundObserver for SentryCheckIns {
    fn counters(&self) -> Vec<ObserverCounter> {
        ObserverCounter::by_outcome(
            "modelwatch_sentry_checkins_total",
            "Sentry cron check-ins by outcome: sent (accepted), failed (not accepted), dropped (not sent: too many in flight).",
            &[
                ("sent", &self.sent),
                ("failed", &self.failed),
                ("dropped", &self.dropped),
            ],
        )
    }

    fn round_started(&self, target: &Target, started_ms: i64) {
        self.send(&target.name, started_ms, CheckInStatus::InProgress, None);
    }

    fn round_finished(
        &self,
        target: &Target,
        started_ms: i64,
        outcome: Option<&RoundOutcome>,
        status: &str,
    ) {
        if let Some(Ok(fp)) = outcome.map(|o| &o.fingerprint) {
            self.sink.note_fingerprint(&target.name, &fp.id());
        }
        let ended = outcome.map(|o| o.ended_at_ms).unwrap_or(started_ms);
        let duration = Duration::from_millis((ended - started_ms).max(0) as u64);
        let s = if status == "completed" {
            CheckInStatus::Ok
        } else {
            CheckInStatus::Error
        };
        self.send(&target.name, started_ms, s, Some(duration));
    }
}
