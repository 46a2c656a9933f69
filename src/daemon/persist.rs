//! The scheduler's side of the store's health: readiness at start, the periodic integrity check.

use super::*;
use crate::store::{MonitorRow, RoundId};
use behaviour::BehaviourSlot;
use monitor::MonitorState;

/// How often the database's pages are checked (`PRAGMA quick_check`) while the daemon runs.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);

impl Scheduler {
    /// At start: a store that can only be read is not ready (with the reason) until a round
    /// finds it writable again; otherwise it is.
    pub(super) fn store_at_start(&mut self) {
        match self.store.writable() {
            Ok(()) => self.shared.store_ok.store(true, Ordering::Relaxed),
            Err(e) => {
                tracing::error!(error = %e, "the store cannot be written at start; probing goes on, rounds are stored once it can");
                self.store_error("open", &e);
            }
        }
    }

    /// Starts the periodic integrity check when due and acts on its outcome: damage refuses
    /// every later write and is shown in `/readyz`, the log and `/metrics` until a restart.
    pub(super) fn check_store(&mut self) {
        match self.store.poll_check(CHECK_EVERY) {
            None | Some(Ok(())) => {}
            Some(Err(e @ crate::store::StoreError::Damaged { .. })) => {
                tracing::error!(error = %e, "DATABASE DAMAGED: nothing more is written into it");
                self.shared.store_is_damaged(&e.to_string());
            }
            Some(Err(e)) => tracing::warn!(error = %e, "the periodic database check did not run"),
        }
    }
}

impl Scheduler {
    /// Saves the monitor's evidence of `name` inside the round's transaction (or forgets it when
    /// the target has no monitor), so that what a restart finds always matches the stored rounds,
    /// and the readings it took after `round`, which the status page charts over time.
    pub(super) fn save_monitor(&mut self, name: &str, now_ms: i64, round: Option<RoundId>) {
        let Some(rt) = self.runtime.get(name) else {
            return;
        };
        if let (Some(round), Some(m)) = (round, &rt.monitor) {
            let readings = m.readings();
            if let Err(e) = self.store.record_readings(round, &readings) {
                self.store_error("readings", &e);
                tracing::error!(target = name, error = %e, "cannot store the monitor's readings");
            }
        }
        let Some(rt) = self.runtime.get(name) else {
            return;
        };
        let saved = match &rt.monitor {
            None => self.store.clear_monitor_state(name),
            Some(m) => match serde_json::to_string(&m.state()) {
                Ok(state) => self.store.save_monitor_state(
                    name,
                    &MonitorRow {
                        format: monitor::STATE_FORMAT,
                        basis: m.basis(),
                        episode_started_ms: rt.episode_started_ms,
                        state,
                        updated_at_ms: now_ms,
                    },
                ),
                Err(e) => Err(crate::store::StoreError::Invalid(e.to_string())),
            },
        };
        if let Err(e) = saved {
            self.store_error("monitor", &e);
            tracing::error!(target = name, error = %e, "cannot save the monitor's evidence");
        }
    }

    /// The monitor of `target` as the last stored round left it, with its baseline, or `None`
    /// (a new episode starts at the first round) when nothing usable was saved: no baseline, no
    /// saved evidence, or evidence of another format or another baseline (logged).
    pub(super) fn restored_monitor(&self, p: &Prepared) -> Option<RestoredMonitor> {
        let name = &p.target.name;
        let path = p.target.baseline.clone()?;
        let row = match self.store.monitor_state(name) {
            Ok(row) => row?,
            Err(e) => {
                tracing::warn!(target = %name, error = %e, "cannot read the monitor's saved evidence: a new episode starts");
                return None;
            }
        };
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let baseline = match Baseline::load(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(target = %name, error = %e, "cannot load the baseline to restore the monitor: a new episode starts once it loads");
                return None;
            }
        };
        let mut monitor = TargetMonitor::new(&baseline, p.monitor_settings.clone());
        let why = if row.format != monitor::STATE_FORMAT {
            format!(
                "saved in format {}, this build reads {}",
                row.format,
                monitor::STATE_FORMAT
            )
        } else if row.basis != monitor.basis() {
            "saved against another baseline or other margins".to_string()
        } else {
            match serde_json::from_str::<MonitorState>(&row.state)
                .map_err(|e| e.to_string())
                .and_then(|s| monitor.restore(&s).map(|()| s.rounds))
            {
                Ok(rounds) => {
                    tracing::info!(target = %name, rounds, episode_started_ms = ?row.episode_started_ms, "monitor restored: the episode goes on");
                    return Some(RestoredMonitor {
                        behaviour: behaviour_watch(&p.target, &baseline, self.clock.now_ms()),
                        baseline: HeldBaseline::of(path, mtime, &baseline),
                        monitor,
                        episode_started_ms: row.episode_started_ms,
                    });
                }
                Err(e) => e,
            }
        };
        tracing::warn!(target = %name, reason = %why, "the monitor's saved evidence is dropped: a new episode starts");
        None
    }
}

/// A monitor restored at start, with the baseline it was built from and a fresh behaviour watch.
pub(super) struct RestoredMonitor {
    pub baseline: HeldBaseline,
    pub monitor: TargetMonitor,
    pub behaviour: Option<BehaviourSlot>,
    pub episode_started_ms: Option<i64>,
}

impl Scheduler {
    /// After a round's transaction failed: the monitor of `name` goes back to the evidence the
    /// store holds, as a restart would find it, so that it never counts a round that is not
    /// stored.
    pub(super) fn monitor_as_stored(&mut self, name: &str) {
        let Some(p) = self.prepared.get(name) else {
            return;
        };
        // The store cannot even be read: keep what there is rather than lose the episode.
        if self.store.monitor_state(name).is_err() {
            return;
        }
        let restored = self.restored_monitor(p);
        let Some(rt) = self.runtime.get_mut(name) else {
            return;
        };
        match restored {
            Some(r) => {
                rt.behaviour = r.behaviour;
                rt.baseline = Some(r.baseline);
                rt.monitor = Some(r.monitor);
                rt.episode_started_ms = r.episode_started_ms;
            }
            None => {
                rt.baseline = None;
                rt.monitor = None;
                rt.behaviour = None;
                rt.episode_started_ms = None;
            }
        }
    }
}
