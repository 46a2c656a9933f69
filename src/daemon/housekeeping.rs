//! What the scheduler does between rounds: retention, the watchdog, store errors, and
//! publishing the status document.

use super::*;

impl Scheduler {
    /// Scheduler heartbeat: readiness, watchdog, retention.
    pub(super) fn tick(&mut self) {
        let now = Instant::now();
        self.shared
            .last_tick_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let ping_every = self
            .options
            .notifier
            .watchdog()
            .map(|w| w / 2)
            .unwrap_or(MAX_TICK);
        if self.last_ping.is_none_or(|p| now - p >= ping_every / 2) {
            let stuck = self.overdue_rounds();
            if stuck.is_empty() {
                self.options.notifier.watchdog_ping();
                self.last_ping = Some(now);
            } else {
                // The loop turns but rounds do not end: feeding the watchdog would hide it.
                tracing::error!(
                    targets = ?stuck,
                    "rounds are running far past their deadline: the scheduler makes no \
                     progress; the watchdog is no longer fed, so systemd restarts the daemon"
                );
            }
        }
        self.check_store();
        if self.last_prune.is_none_or(|p| now - p >= PRUNE_EVERY) {
            self.last_prune = Some(now);
            let storage = &self.loaded.config.storage;
            let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
            let now_ms = self.clock.now_ms();
            match self.store.prune(
                now_ms,
                ms(storage.raw_text_retention),
                ms(storage.sample_retention),
            ) {
                Ok(stats) => {
                    let _ = self.store.prune_silences(now_ms);
                    // Delivered and expired outbox rows are kept as long as samples.
                    let _ = self
                        .store
                        .prune_outbox(now_ms - ms(storage.sample_retention));
                    if stats.samples + stats.texts > 0 {
                        tracing::info!(
                            texts = stats.texts,
                            samples = stats.samples,
                            rounds = stats.rounds,
                            "retention: pruned old data"
                        );
                    }
                    // A prune that deleted nothing wrote nothing: only a committed round
                    // marks the store writable again.
                    if stats.rounds + stats.samples + stats.texts > 0 {
                        self.shared.store_ok.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    self.store_error("prune", &e);
                    tracing::error!(error = %e, "retention pruning failed");
                }
            }
        }
    }

    /// Targets whose running round is far past its deadline (see [`overdue`]).
    fn overdue_rounds(&self) -> Vec<&str> {
        let now_ms = self.clock.now_ms();
        self.round_starts
            .iter()
            .filter(|(name, started)| {
                self.prepared
                    .get(*name)
                    .is_some_and(|p| overdue(**started, now_ms, p.target.daemon.round_deadline))
            })
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Counts a failed store operation and marks the store as not writable until the next
    /// successful write (`/readyz` shows the reason).
    pub(super) fn store_error(&self, operation: &str, e: &crate::store::StoreError) {
        self.shared.store_failed(operation, &e.to_string());
    }

    /// Publishes the status document.
    pub(super) fn publish(&self) {
        let now_ms = self.clock.now_ms();
        let mut targets = Vec::new();
        for (name, p) in &self.prepared {
            let Some(rt) = self.runtime.get(name) else {
                continue;
            };
            let t = &p.target;
            let triage = self.triage_of(t, rt, now_ms);
            targets.push(TargetStatus {
                name: name.clone(),
                provider: t.provider.as_str().to_string(),
                model: t.model.clone(),
                fingerprint: rt.fingerprint.clone(),
                digest: rt.digest.clone(),
                config_digest: rt.config_digest.clone(),
                config_changes: rt.config_changes,
                pin: t.daemon.pin.as_ref().map(|pin| PinStatus {
                    model: pin.model.clone(),
                    approved_by: pin.approved_by.clone(),
                    approved_on: pin.approved_on.clone(),
                    license_reviewed: pin.license_reviewed,
                    matches: rt
                        .fingerprint
                        .as_ref()
                        .map(|id| pin.matches(id, rt.digest.as_deref())),
                }),
                license: rt.license.clone(),
                tier: triage.tier.as_str().into(),
                tier_reasons: triage.reasons,
                baseline: rt.baseline.as_ref().map(|b| BaselineStatus {
                    path: b.path.display().to_string(),
                    fingerprint: b.fingerprint.clone(),
                    recorded_at: b.recorded_at.clone(),
                    same_fingerprint: rt.fingerprint.as_ref().map(|f| *f == b.fingerprint),
                }),
                episode_started_ms: rt.episode_started_ms,
                last_round: rt.last_round.clone(),
                rounds: rt.rounds,
                swaps: rt.swaps,
                metrics: rt
                    .monitor
                    .as_ref()
                    .map(|m| m.snapshot())
                    .unwrap_or_default(),
                behaviour: rt.behaviour.as_ref().map(|b| b.watch.status()),
            });
        }
        let alerts: Vec<AlertState> = self.alerts.values().cloned().collect();
        let sinks: Vec<SinkStatus> = self.sink_status.values().cloned().collect();
        let silences = self.store.active_silences(now_ms).unwrap_or_default();
        self.shared.update_status(|s| {
            s.targets = targets;
            s.alerts = alerts;
            s.sinks = sinks;
            s.silences = silences;
        });
    }
}

/// Slack past twice the deadline before a running round counts as stuck.
const STUCK_SLACK_MS: i64 = 30_000;

/// A round ends by its deadline (the runner cuts it), so one still running at twice its deadline
/// plus some slack means the scheduler no longer makes progress.
fn overdue(started_ms: i64, now_ms: i64, deadline: Duration) -> bool {
    let deadline_ms = i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX / 4);
    now_ms - started_ms > deadline_ms.saturating_mul(2).saturating_add(STUCK_SLACK_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_overdue_only_well_past_its_deadline() {
        let d = Duration::from_secs(60);
        assert!(!overdue(0, 60_000, d), "at its deadline");
        assert!(
            !overdue(0, 150_000, d),
            "within twice the deadline plus slack"
        );
        assert!(overdue(0, 150_001, d));
        assert!(!overdue(0, i64::MAX / 2, Duration::MAX), "no overflow");
    }
}
