//! Sentry Crons check-ins per round: `in_progress` when a round starts, `ok` when it measured
//! something, `error` when it failed or hit its deadline. Sent off the scheduler (spawned, at
//! most a few at once; a check-in that finds the queue full is dropped and counted), so a slow
//! Sentry never delays a round. Every check-in carries the monitor's `monitor_config` (from the
//! targets' intervals seen so far), so the first one creates the monitor. While Sentry
//! rate-limits check-ins none is sent. Outcomes are counted on `/metrics` as
//! `modelwatch_sentry_checkins_total{outcome="sent|failed|dropped|rate_limited"}`.

use super::{ObserverCounter, RoundObserver};
use crate::alert::sentry::{CheckInError, CheckInStatus, MonitorSchedule, SentrySink};
use crate::config::Target;
use crate::runner::RoundOutcome;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Check-ins not sent: Sentry rate-limits the `monitor` category.
    pub rate_limited: Arc<AtomicU64>,
    /// The monitor's schedule, from every target seen so far.
    schedule: Mutex<Option<MonitorSchedule>>,
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
            rate_limited: Arc::new(AtomicU64::new(0)),
            schedule: Mutex::new(None),
        }
    }

    /// Takes the target's interval into the monitor's schedule; returns the schedule.
    fn schedule_with(&self, target: &Target) -> Option<MonitorSchedule> {
        let own = MonitorSchedule {
            interval: target.interval,
            jitter: target.daemon.jitter,
            deadline: target.daemon.round_deadline,
        };
        let mut s = self.schedule.lock().ok()?;
        let merged = s.map_or(own, |s| s.merge(own));
        *s = Some(merged);
        Some(merged)
    }

    fn send(
        &self,
        target: &Target,
        started_ms: i64,
        status: CheckInStatus,
        duration: Option<Duration>,
    ) {
        let schedule = self.schedule_with(target);
        if self
            .sink
            .limited(crate::alert::ratelimit::Category::Monitor)
            .is_some()
        {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let sink = self.sink.clone();
        let (sent, failed) = (self.sent.clone(), self.failed.clone());
        let rate_limited = self.rate_limited.clone();
        let id = SentrySink::check_in_id(&target.name, started_ms);
        let now_ms = started_ms + duration.map(|d| d.as_millis() as i64).unwrap_or(0);
        let target = target.name.clone();
        tokio::spawn(async move {
            let result = sink
                .send_check_in(&id, status, duration, now_ms, schedule.as_ref())
                .await;
            match result {
                Ok(()) => {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(CheckInError::RateLimited(wait)) => {
                    rate_limited.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target = %target, ?wait, "Sentry check-in skipped: rate-limited");
                }
                Err(CheckInError::Failed(e)) => {
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
            "Sentry cron check-ins by outcome: sent (accepted), failed (not accepted), dropped (not sent: too many in flight), rate_limited (not sent: Sentry rate-limits check-ins).",
            &[
                ("sent", &self.sent),
                ("failed", &self.failed),
                ("dropped", &self.dropped),
                ("rate_limited", &self.rate_limited),
            ],
        )
    }

    fn round_started(&self, target: &Target, started_ms: i64) {
        self.send(target, started_ms, CheckInStatus::InProgress, None);
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
        self.send(target, started_ms, s, Some(duration));
    }
}
