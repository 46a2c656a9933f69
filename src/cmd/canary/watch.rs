//! The loop state of a sequential canary: each finished pair goes to the monitor; the first
//! pair of a new slot closes the previous one, where the monitor looks and probes whose metrics
//! settled are dropped. Once every rate passed, the lengths are judged at spent looks
//! ([`LengthLooks`]); until they pass too, every probe is sampled again, so a suite whose
//! probes were dropped early gathers the answers its length tests need.

use super::evidence::Agreement;
use crate::cmd::progress::Progress;
use modelwatch::drift::{
    self, CanaryMonitor, Category, Early, Expectations, LengthLooks, Margins, Verdict,
};
use modelwatch::runner::paired::Flow;
use modelwatch::sample::Sample;
use std::collections::BTreeMap;
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
    /// Looks at the length tests, and whether the last one passed them.
    pub lengths: LengthLooks,
    pub lengths_passed: bool,
    margins: Margins,
    /// The pairs so far without their text, for the length looks.
    kept: (Vec<Sample>, Vec<Sample>),
    /// Answered pairs per suite.
    per_suite: BTreeMap<String, u64>,
    /// The rates passed but the lengths have not yet: every probe stays sampled.
    holding: bool,
    slot: u32,
    done: usize,
    failed: (usize, usize),
    started: Instant,
}

impl<'a> Watch<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        monitor: CanaryMonitor,
        margins: &Margins,
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
            lengths: LengthLooks::default(),
            lengths_passed: false,
            margins: margins.clone(),
            kept: (Vec::new(), Vec::new()),
            per_suite: BTreeMap::new(),
            holding: false,
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
                if self.decision == Early::NonInferior && !self.lengths_settled() {
                    self.decision = Early::Continue;
                }
                if self.decision != Early::Continue {
                    return Flow::Stop;
                }
                if !self.holding {
                    for (flag, (suite, id)) in self.active.iter().zip(&self.keys) {
                        if !self.monitor.needed(suite, id) {
                            flag.store(false, Ordering::Relaxed);
                        }
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
        if self.sequential {
            if !a.is_error() && !b.is_error() {
                *self.per_suite.entry(a.suite.clone()).or_default() += 1;
            }
            self.kept.0.push(Sample {
                text: None,
                ..a.clone()
            });
            self.kept.1.push(Sample {
                text: None,
                ..b.clone()
            });
        }
        // A side whose every request of the first sample slot failed is unreachable: going
        // on would only collect more errors.
        if self.done >= self.keys.len()
            && (self.failed.0 == self.done || self.failed.1 == self.done)
        {
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// Pairs handed to the monitor: the report judges exactly these (the pair that closed the
    /// last slot belongs to the next one).
    pub fn consumed(&self) -> usize {
        self.done
    }

    /// Whether the length tests pass at a look due now; when not, every probe is sampled again
    /// until they do.
    fn lengths_settled(&mut self) -> bool {
        let smallest = self.per_suite.values().copied().min().unwrap_or(0);
        let base = self.margins.confidence;
        if !self
            .lengths
            .due(smallest, base, self.margins.length_shape_ks)
        {
            self.hold();
            return false;
        }
        let margins = Margins {
            confidence: self.lengths.take(smallest, base),
            ..self.margins.clone()
        };
        let report = drift::compare_paired(&self.kept.0, &self.kept.1, &margins, self.expect);
        self.lengths_passed = report
            .metrics
            .iter()
            .filter(|m| m.category == Category::Quality && !m.metric.is_rate())
            .all(|m| matches!(m.verdict, Verdict::Pass | Verdict::Improvement));
        if !self.lengths_passed {
            self.hold();
        }
        self.lengths_passed
    }

    /// Samples every probe again from the next slot on.
    fn hold(&mut self) {
        if !self.holding {
            self.holding = true;
            for flag in self.active.iter() {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// After the run: the last slot has no successor to close it.
    pub fn finish(&mut self, stopped_early: bool) {
        if self.sequential && self.decision == Early::Continue && !stopped_early && self.done > 0 {
            self.decision = self.monitor.decision();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch::sample::Measurements;

    const PROBES: usize = 6;

    fn key(i: usize) -> (String, String) {
        // Five probes in suite "a", one in suite "b".
        let suite = if i < 5 { "a" } else { "b" };
        (suite.into(), format!("p{i}"))
    }

    fn sample(target: &str, i: usize, index: u32, chars: u32) -> Sample {
        let (suite, probe_id) = key(i);
        let mut s = Sample::pending(target, &suite, &probe_id, &format!("h{i}"), index, 0);
        s.latency_ms = 10.0;
        s.attempts = 1;
        s.measurements = Some(Measurements {
            chars,
            words: chars / 5,
            lines: 1,
            output_tokens: chars / 4,
            ..Measurements::default()
        });
        s
    }

    /// Feeds slot after slot, each active probe once per slot (as the paired runner does),
    /// with probe 5 (suite "b") dropped after slot 2 as if its metrics had settled.
    /// `stretch` multiplies the candidate's lengths. Returns the watch and whether it stopped.
    fn drive(stretch: u32, slots: u32) -> (Watch<'static>, bool) {
        let expect: &'static Expectations = Box::leak(Box::default());
        let progress: &'static Progress = Box::leak(Box::new(Progress::new("test", 0)));
        let margins = Margins::default();
        let active: Arc<Vec<AtomicBool>> =
            Arc::new((0..PROBES).map(|_| AtomicBool::new(true)).collect());
        let mut w = Watch::new(
            CanaryMonitor::with_probes(&margins, PROBES),
            &margins,
            true,
            1,
            (0..PROBES).map(key).collect(),
            Arc::clone(&active),
            expect,
            progress,
            Box::new(|_| {}),
        );
        for slot in 0..slots {
            if slot == 3 {
                active[5].store(false, Ordering::Relaxed);
            }
            for (i, flag) in active.iter().enumerate() {
                if !flag.load(Ordering::Relaxed) {
                    continue;
                }
                let chars = 100 + 10 * i as u32 + (slot * 7) % 31;
                let a = sample("cur", i, slot, chars);
                let b = sample("cand", i, slot, chars * stretch);
                if w.on_pair(&a, &b) == Flow::Stop {
                    return (w, true);
                }
            }
        }
        w.finish(false);
        (w, false)
    }

    #[test]
    fn a_suite_dropped_early_is_sampled_again_until_its_lengths_pass() {
        let (w, stopped) = drive(1, 2_000);
        assert!(stopped);
        assert_eq!(w.decision, Early::NonInferior);
        // Suite "b" had 3 pairs when its probe was dropped; the first length look needs 71.
        let b = w.per_suite["b"];
        assert!(b >= 71, "suite b: {b} pairs");
        assert!(w.holding);
        assert_eq!((w.lengths.looks(), w.lengths_passed), (1, true));
    }

    #[test]
    fn lengths_that_moved_keep_a_canary_from_passing_early() {
        let (w, stopped) = drive(3, 1_000);
        assert!(!stopped, "stopped after {} pairs", w.consumed());
        assert_eq!(w.decision, Early::NonInferior, "the rates alone pass");
        assert!(!w.lengths_passed);
        // Looks at 71 pairs in suite "b", then at each doubling: 71, 142, 284, 568 of ~1,000.
        assert_eq!(w.lengths.looks(), 4);
    }
}
