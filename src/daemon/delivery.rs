//! Notifications into the durable outbox and out through the sink workers; their reports.
//! The Sentry SDK's envelopes (the daemon's own panics and errors) into the same outbox.

use super::*;
use crate::alert::sentry_sdk::{EnvelopeStore, Finish, SAVE_WAIT};
use std::sync::Mutex;

/// The outbox for the Sentry SDK's envelopes: a connection of its own to the daemon's store,
/// so that a panicking thread can write its event without the scheduler (which may be the
/// thread that panics). SQLite serialises it with the scheduler's writes (its busy timeout).
pub struct SdkOutbox {
    store: Mutex<Store>,
}

impl SdkOutbox {
    /// Opens a second connection to the (already opened and migrated) store at `path`.
    pub fn open(path: &std::path::Path) -> crate::store::Result<SdkOutbox> {
        Ok(SdkOutbox {
            store: Mutex::new(Store::open(path)?),
        })
    }

    /// The store, waiting at most [`SAVE_WAIT`] for another thread's write: `try_lock`, so a
    /// thread that panics while holding it gets an error instead of waiting for itself.
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Store>, String> {
        let deadline = std::time::Instant::now() + SAVE_WAIT;
        loop {
            match self.store.try_lock() {
                Ok(s) => return Ok(s),
                Err(std::sync::TryLockError::Poisoned(_)) => {
                    return Err("the store's connection was poisoned by a panic".into());
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(format!("the store was busy for {SAVE_WAIT:?}"));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

impl EnvelopeStore for SdkOutbox {
    fn save(&self, key: &str, body: &[u8]) -> Result<Option<i64>, String> {
        self.lock()?
            .enqueue_envelope(key, body, crate::time::now_ms())
            .map_err(|e| e.to_string())
    }

    fn pending(&self) -> Result<Vec<(i64, Vec<u8>, u32)>, String> {
        self.lock()?.pending_envelopes().map_err(|e| e.to_string())
    }

    fn record(&self, id: i64, finish: Finish, attempts: u32, error: Option<&str>) {
        use crate::store::OutboxStatus;
        let status = match finish {
            Finish::Delivered => OutboxStatus::Delivered,
            Finish::Retry => OutboxStatus::Pending,
            Finish::Rejected => OutboxStatus::Rejected,
            Finish::Expired => OutboxStatus::Expired,
        };
        let result = self.lock().and_then(|mut s| {
            s.update_outbox(id, status, attempts, error, crate::time::now_ms())
                .map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            // Not `error!`: that would make another event for Sentry.
            tracing::warn!(error = %e, "cannot record the delivery of a Sentry event of the daemon's own");
        }
    }
}

impl Scheduler {
    /// Writes a round's notifications (events and outbox rows) inside the open transaction and
    /// returns the delivery jobs, to be handed to the workers once the transaction commits.
    pub(super) fn record_notifications(
        &mut self,
        notifications: &[Notification],
    ) -> Vec<(usize, alert::outbox::Job)> {
        let mut jobs = Vec::new();
        for n in notifications {
            jobs.extend(self.record_notification(n));
        }
        jobs
    }

    /// Hands committed delivery jobs to their sinks' workers.
    pub(super) fn dispatch(&mut self, jobs: Vec<(usize, alert::outbox::Job)>) {
        for (i, job) in jobs {
            if let Some((name, tx, _)) = self.workers.get(i) {
                self.sink_status
                    .entry(name.clone())
                    .or_insert_with(|| SinkStatus {
                        name: name.clone(),
                        ..SinkStatus::default()
                    })
                    .pending += 1;
                let _ = tx.send(job);
            }
        }
    }

    /// Records a notification as an event and, unless muted, as one outbox row per sink;
    /// returns the delivery jobs (worker index, job) for the rows written.
    pub(super) fn record_notification(
        &mut self,
        n: &Notification,
    ) -> Vec<(usize, alert::outbox::Job)> {
        if let Ok(payload) = serde_json::to_value(n)
            && let Err(e) = self
                .store
                .add_event(&n.key.target, "alert", n.at_ms, &payload)
        {
            self.store_error("event", &e);
            tracing::error!(error = %e, "cannot record the alert event");
        }
        if n.muted {
            tracing::info!(alert = %n.key, kind = n.kind.as_str(), "notification muted (silence or maintenance window)");
            return Vec::new();
        }
        let now_ms = self.clock.now_ms();
        let key = alert::idempotency_key(n);
        let mut jobs = Vec::new();
        for i in 0..self.workers.len() {
            let name = self.workers[i].0.clone();
            match self.store.enqueue_outbox(&name, &key, n, now_ms) {
                Ok(Some(id)) => jobs.push((
                    i,
                    alert::outbox::Job {
                        id,
                        key: key.clone(),
                        notification: n.clone(),
                        attempts: 0,
                    },
                )),
                Ok(None) => {
                    tracing::debug!(sink = %name, key = %key, "notification already in the outbox")
                }
                Err(e) => {
                    self.store_error("outbox", &e);
                    tracing::error!(sink = %name, error = %e, "cannot write the notification to the outbox")
                }
            }
        }
        jobs
    }

    /// Starts one delivery worker per sink and hands it the rows left pending by an earlier run
    /// (or by the workers a reload replaced). Pending rows of sinks that are not configured
    /// are marked `orphaned`.
    pub(super) fn start_workers(&mut self, reports: mpsc::UnboundedSender<alert::outbox::Report>) {
        let sinks = self.options.sinks.clone();
        for (i, sink) in sinks.into_iter().enumerate() {
            let mut name = sink.name().to_string();
            if self.workers.iter().any(|(n, _, _)| *n == name) {
                name = format!("{name}-{}", i + 1);
            }
            let (tx, handle) = alert::outbox::spawn_worker_with_handle(
                sink,
                self.options.retry,
                self.options.seed,
                reports.clone(),
            );
            let pending = match self.store.pending_outbox(&name) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(sink = %name, error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            if !pending.is_empty() {
                tracing::info!(sink = %name, pending = pending.len(), "resuming undelivered notifications");
            }
            self.sink_entry(&name).pending += pending.len() as u64;
            for row in pending {
                let _ = tx.send(alert::outbox::Job {
                    id: row.id,
                    key: row.idempotency_key,
                    notification: row.notification,
                    attempts: row.attempts,
                });
            }
            self.workers.push((name, tx, Some(handle)));
        }
        let names: Vec<&str> = self.workers.iter().map(|w| w.0.as_str()).collect();
        match self.store.orphan_outbox(&names, self.clock.now_ms()) {
            Ok(orphaned) => {
                for (sink, n) in orphaned {
                    tracing::warn!(sink = %sink, notifications = n, "the sink is no longer configured: its undelivered notifications are marked orphaned");
                    let entry = self.sink_entry(&sink);
                    entry.orphaned += n;
                    entry.pending = 0;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot mark the outbox rows of removed sinks"),
        }
    }

    pub(super) fn sink_entry(&mut self, name: &str) -> &mut SinkStatus {
        self.sink_status
            .entry(name.to_string())
            .or_insert_with(|| SinkStatus {
                name: name.to_string(),
                ..SinkStatus::default()
            })
    }

    /// Records one delivery attempt reported by a worker: store, status, counters.
    pub(super) fn record_delivery(&mut self, r: alert::outbox::Report) {
        use crate::store::OutboxStatus;
        use alert::outbox::Outcome;
        let now_ms = self.clock.now_ms();
        let status = match r.outcome {
            Outcome::Delivered => OutboxStatus::Delivered,
            Outcome::Failed | Outcome::Deferred => OutboxStatus::Pending,
            Outcome::Expired => OutboxStatus::Expired,
            Outcome::Rejected => OutboxStatus::Rejected,
        };
        if let Err(e) =
            self.store
                .update_outbox(r.id, status, r.attempts, r.error.as_deref(), now_ms)
        {
            self.store_error("outbox", &e);
            tracing::error!(sink = %r.sink, error = %e, "cannot record the delivery");
        }
        self.shared.count_delivery(&r.sink, r.outcome.as_str());
        let entry = self.sink_entry(&r.sink);
        match r.outcome {
            Outcome::Delivered => {
                entry.delivered += 1;
                entry.pending = entry.pending.saturating_sub(1);
            }
            Outcome::Deferred => {
                tracing::info!(sink = %r.sink, error = r.error.as_deref().unwrap_or(""), "alert delivery waits for the receiver's rate limit");
                entry.last_error = r.error;
            }
            Outcome::Failed => {
                entry.failed += 1;
                tracing::warn!(sink = %r.sink, attempts = r.attempts, error = r.error.as_deref().unwrap_or(""), "alert delivery failed; will retry");
                entry.last_error = r.error;
            }
            Outcome::Expired | Outcome::Rejected => {
                // Final failures: the row leaves the queue.
                let why = if r.outcome == Outcome::Expired {
                    entry.expired += 1;
                    "alert delivery given up after the last retry"
                } else {
                    entry.rejected += 1;
                    "alert delivery rejected by the receiver; not retried (check the sink's configuration)"
                };
                entry.failed += 1;
                entry.pending = entry.pending.saturating_sub(1);
                tracing::error!(sink = %r.sink, attempts = r.attempts, error = r.error.as_deref().unwrap_or(""), "{why}");
                entry.last_error = r.error;
            }
        }
    }
}
