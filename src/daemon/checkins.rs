//! Sentry Crons check-ins per round: `in_progress` when a round starts, `ok` when it measured
//! something, `error` when it failed or hit its deadline. Sent off the scheduler (spawned, at
//! most a few at once; a check-in that finds the queue full is dropped and counted), so a slow
//! Sentry never delays a round.

use super::RoundObserver;
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
    /// Check-ins dropped (queue full) or failed.
    pub dropped: Arc<AtomicU64>,
}

impl SentryCheckIns {
    pub fn new(sink: Arc<SentrySink>) -> SentryCheckIns {
        SentryCheckIns {
            sink,
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
            dropped: Arc::new(AtomicU64::new(0)),
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
        let dropped = self.dropped.clone();
        let id = SentrySink::check_in_id(target, started_ms);
        let now_ms = started_ms + duration.map(|d| d.as_millis() as i64).unwrap_or(0);
        let target = target.to_string();
        tokio::spawn(async move {
            if let Err(e) = sink.send_check_in(&id, status, duration, now_ms).await {
                dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target = %target, error = %e, "Sentry check-in failed");
            }
            drop(permit);
        });
    }
}

impl RoundObserver for SentryCheckIns {
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
