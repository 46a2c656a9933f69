//! The loop state of a sequential canary: each finished pair goes to the monitor; the first
//! pair of a new slot closes the previous one, where the monitor looks and probes whose metrics
//! settled are dropped.

use super::evidence::Agreement;
use crate::cmd::progress::Progress;
use modelwatch::drift::{CanaryMonitor, Early, Expectations};
use modelwatch::runner::paired::Flow;
use modelwatch::sample::Sample;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct Watch<'a> {
    pub monitor: CanaryMonitor,
    pub agreement: Agreement,
    pub decision: Early,
    /// Look and stop early (false: a fixed number of samples).
    pub sequential: bool,
    /// Slots to complete before the first look.
    pub min_slots: u32,
    /// (suite, id) of the probes, by position.
    pub keys: Vec<(String, String)>,
    /// Shared with the paired runner: probes still sampled.
    pub active: Arc<Vec<AtomicBool>>,
    pub expect: &'a Expectations,
    pub progress: &'a Progress,
    /// Called once the first slot is done, with the measured seconds per pair.
    pub after_first_slot: Box<dyn Fn(f64) + Send + 'a>,
    slot: u32,
    done: usize,
    failed: (usize, usize),
    started: Instant,
}

impl<'a> Watch<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        monitor: CanaryMonitor,
        sequential: bool,
        min_slots: u32,
        keys: Vec<(String, String)>,
        active: Arc<Vec<AtomicBool>>,
        expect: &'a Expectations,
        progress: &'a Progress,
        after_first_slot: Box<dyn Fn(f64) + Send + 'a>,
    ) -> Self {
        Watch {
            monitor,
            agreement: Agreement::default(),
            decision: Early::Continue,
            sequential,
            min_slots,
            keys,
            active,
            expect,
            progress,
            after_first_slot,
            slot: 0,
            done: 0,
            failed: (0, 0),
            started: Instant::now(),
        }
    }

    /// One finished pair, in plan order.
    pub fn on_pair(&mut self, a: &Sample, b: &Sample) -> Flow {
        // The first pair of a new slot closes the previous one: look there, where the pooled
        // evidence is valid (see drift::sequential), then drop probes no longer needed.
        if self.sequential && a.index != self.slot {
            let completed = self.slot + 1;
            self.slot = a.index;
            if completed == 1 {
                let per_pair = self.started.elapsed().as_secs_f64() / self.done.max(1) as f64;
                (self.after_first_slot)(per_pair);
            }
            if completed >= self.min_slots {
                self.decision = self.monitor.decision();
                if self.decision != Early::Continue {
                    return Flow::Stop;
                }
                for (flag, (suite, id)) in self.active.iter().zip(&self.keys) {
                    if !self.monitor.needed(suite, id) {
                        flag.store(false, Ordering::Relaxed);
                    }
                }
            }
        }
        self.done += 1;
        self.failed.0 += usize::from(a.is_error());
        self.failed.1 += usize::from(b.is_error());
        self.progress.update(self.done);
        self.monitor.push(a, b, self.expect);
        self.agreement.push(a, b);
        // A side whose every request of the first sample slot failed is unreachable: going
        // on would only collect more errors.
        if self.done >= self.keys.len()
            && (self.failed.0 == self.done || self.failed.1 == self.done)
        {
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// After the run: the last slot has no successor to close it.
    pub fn finish(&mut self, stopped_early: bool) {
        if self.sequential && self.decision == Early::Continue && !stopped_early && self.done > 0 {
            self.decision = self.monitor.decision();
        }
    }
}
