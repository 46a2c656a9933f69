//! Anytime-valid early stopping for the paired canary: feed pairs as they arrive, look at the
//! end of every slot (each probe sampled once more) whether the evidence is already decisive.
//! Pure and stateful; the caller owns the loop.
//!
//! Rate metrics here; lengths are judged by the fixed-sample tests at a few looks that share
//! the miss chance (see [`LengthLooks`]). For each metric the paired differences
//! d = bad(candidate) − bad(current) ∈ {−1, 0, 1} feed a betting confidence sequence for
//! their mean (Waudby-Smith & Ramdas 2023, see [`crate::stats::sequential::PairedDiffCs`]);
//! the decision is two-sided:
//!
//! - **pass** on a metric once the sequence's upper end falls below the metric's margin: the
//!   test of H₀ "worse by the margin or more" rejects at level alpha. The canary passes when
//!   every observed metric passed. An overall pass needs every metric's null rejected
//!   (an intersection–union test, Berger 1982), so each metric keeps the whole alpha: the
//!   chance of a pass when some metric is exactly at its margin is at most alpha.
//! - **regression** on a metric when the sequence excludes zero on the bad side (H₀ "no worse"
//!   rejected at alpha/(2K), Bonferroni over the K monitored metrics) *and* the paired rate
//!   difference is at least the margin (refusals also need the relative risk);
//! - **regression of a probe** when that probe's own sequence excludes zero on the bad side at
//!   alpha/(2·P·K) — Bonferroni over the P·K probe-metric strata declared up front — and its
//!   own rate moved at least `flip_min_change`. Pooled tests miss a regression confined to a
//!   few probes; the stratified ones name them. With both halves the chance of any false
//!   regression between equal models stays at most alpha.
//!
//! Looks belong at slot ends: there the pooled wealth is a supermartingale even though the
//! probes' own rates differ (see `PairedDiffCs`); each probe's own sequence is valid at any
//! time.

use super::{Expectations, Margins, Metric};
use crate::sample::Sample;
use crate::stats::sequential::PairedDiffCs;
use std::collections::BTreeMap;

/// Monitored metrics, in report order.
const MONITORED: [Metric; 6] = [
    Metric::RefusalRate,
    Metric::MissedRefusalRate,
    Metric::EmptyRate,
    Metric::StructuredFailureRate,
    Metric::TaskFailureRate,
    Metric::TruncationRate,
];
const K: usize = MONITORED.len();

/// What the evidence says so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Early {
    /// Not decisive yet: keep sampling.
    Continue,
    /// The candidate is worse on these metrics, beyond their margins (pooled, or on the probes
    /// [`CanaryMonitor::probe_regressions`] names).
    Regression(Vec<Metric>),
    /// Every observed rate excludes a regression beyond its margin.
    NonInferior,
}

/// A probe whose own rate worsened, with anytime-valid evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRegression {
    pub suite: String,
    pub probe_id: String,
    pub metric: Metric,
    pub pairs: u64,
    /// Bad-outcome rates (for task success: failures) on each side.
    pub current_bad: f64,
    pub candidate_bad: f64,
    pub e_value: f64,
}

/// A metric's paired difference so far: estimate and the confidence sequence's ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub pairs: u64,
    /// Mean of bad(candidate) − bad(current).
    pub estimate: f64,
    /// Lower end at the regression level (alpha/2K).
    pub lower: f64,
    /// Upper end at the pass level (alpha).
    pub upper: f64,
    /// Whether the pass test rejected at some look.
    pub passed: bool,
}

#[derive(Debug, Clone, Default)]
struct Side {
    cs: PairedDiffCs,
    bad_current: u64,
    bad_candidate: u64,
}

impl Side {
    fn push(&mut self, bad_a: bool, bad_b: bool) {
        self.cs.push(bad_a, bad_b);
        self.bad_current += u64::from(bad_a);
        self.bad_candidate += u64::from(bad_b);
    }
    fn rates(&self) -> (f64, f64) {
        let n = self.cs.count().max(1) as f64;
        (self.bad_current as f64 / n, self.bad_candidate as f64 / n)
    }
}

#[derive(Debug, Clone)]
struct Track {
    metric: Metric,
    margin: f64,
    pooled: Side,
    passed: bool,
}

/// Sequential state of a paired canary.
#[derive(Debug, Clone)]
pub struct CanaryMonitor {
    margins: Margins,
    tracks: Vec<Track>,
    /// Per probe (suite, id), per monitored metric.
    probes: BTreeMap<(String, String), [Side; K]>,
    /// Probes declared up front for the stratified tests (0: pooled tests only).
    planned_probes: usize,
    pairs: u64,
}

impl CanaryMonitor {
    /// Pooled tests only, each regression at alpha/K (the daemon-like demo uses this).
    pub fn new(margins: &Margins) -> CanaryMonitor {
        Self::with_probes(margins, 0)
    }

    /// Pooled and per-probe tests for a canary over `probes` probes, the regression budget
    /// split evenly between the two families.
    pub fn with_probes(margins: &Margins, probes: usize) -> CanaryMonitor {
        let tracks = MONITORED
            .iter()
            .map(|&metric| Track {
                metric,
                margin: super::analyze::rate_margin(metric, margins),
                pooled: Side::default(),
                passed: false,
            })
            .collect();
        CanaryMonitor {
            margins: margins.clone(),
            tracks,
            probes: BTreeMap::new(),
            planned_probes: probes,
            pairs: 0,
        }
    }

    /// Level of each pooled regression test.
    pub fn regression_alpha(&self) -> f64 {
        let split = if self.planned_probes > 0 { 2.0 } else { 1.0 };
        self.margins.alpha / (split * K as f64)
    }

    /// Level of each per-probe regression test (None without declared probes).
    pub fn probe_alpha(&self) -> Option<f64> {
        (self.planned_probes > 0)
            .then(|| self.margins.alpha / (2.0 * (self.planned_probes * K) as f64))
    }

    /// Level of each metric's pass test (the whole alpha: intersection–union).
    pub fn pass_alpha(&self) -> f64 {
        self.margins.alpha
    }

    /// The e-value a pooled metric needs for a regression.
    pub fn threshold(&self) -> f64 {
        1.0 / self.regression_alpha()
    }

    /// Records one pair (same probe, same sample slot). Pairs where either request failed
    /// carry no quality information and are skipped.
    pub fn push(&mut self, current: &Sample, candidate: &Sample, expectations: &Expectations) {
        let (Some(mc), Some(md)) = (&current.measurements, &candidate.measurements) else {
            return;
        };
        if current.error.is_some() || candidate.error.is_some() {
            return;
        }
        self.pairs += 1;
        let expected = expectations.refusal_expected(&current.suite, &current.probe_id);
        let per_probe = self.planned_probes > 0;
        let mut probe_sides = per_probe.then(|| {
            self.probes
                .entry((current.suite.clone(), current.probe_id.clone()))
                .or_default()
        });
        for (i, t) in self.tracks.iter_mut().enumerate() {
            let (Some(a), Some(b)) = (
                t.metric.outcome(mc, expected),
                t.metric.outcome(md, expected),
            ) else {
                continue;
            };
            // Orient so that `true` means a bad outcome.
            let (bad_a, bad_b) = if t.metric.higher_is_worse() {
                (a, b)
            } else {
                (!a, !b)
            };
            // A metric shown within its margin is settled (the pass is anytime-valid); its
            // pooled sequence stops here, so that dropping probes only it needed leaves no
            // partial cycles behind.
            if !t.passed {
                t.pooled.push(bad_a, bad_b);
            }
            if let Some(sides) = probe_sides.as_mut() {
                sides[i].push(bad_a, bad_b);
            }
        }
    }

    /// Whether a probe still informs an unsettled metric: not measured yet, or measured on a
    /// metric that has not passed. A canary may stop sampling the others (at a slot end).
    pub fn needed(&self, suite: &str, probe_id: &str) -> bool {
        if self.planned_probes == 0 {
            return true;
        }
        let Some(sides) = self.probes.get(&(suite.to_string(), probe_id.to_string())) else {
            return true;
        };
        sides
            .iter()
            .zip(&self.tracks)
            .any(|(side, t)| side.cs.count() > 0 && !t.passed)
            || sides.iter().all(|side| side.cs.count() == 0)
    }

    /// Pairs with measurements on both sides so far.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// The regression e-value of a metric (candidate worse than current), when observed.
    pub fn e_value(&self, metric: Metric) -> Option<f64> {
        self.tracks
            .iter()
            .find(|t| t.metric == metric && t.pooled.cs.count() > 0)
            .map(|t| t.pooled.cs.log_e_above(0.0).exp())
    }

    /// Observed metrics with their margins, in report order.
    pub fn observed(&self) -> Vec<(Metric, f64)> {
        self.tracks
            .iter()
            .filter(|t| t.pooled.cs.count() > 0)
            .map(|t| (t.metric, t.margin))
            .collect()
    }

    /// Estimate and confidence-sequence ends of a metric's paired difference, when observed.
    pub fn bounds(&self, metric: Metric) -> Option<Bounds> {
        let t = self
            .tracks
            .iter()
            .find(|t| t.metric == metric && t.pooled.cs.count() > 0)?;
        let cs = &t.pooled.cs;
        Some(Bounds {
            pairs: cs.count(),
            estimate: cs.mean(),
            lower: cs.lower(self.regression_alpha()),
            upper: cs.upper(self.pass_alpha()),
            passed: t.passed,
        })
    }

    /// Probes whose own rate worsened by at least `flip_min_change`, with their e-process
    /// beyond the stratified threshold; worst first.
    pub fn probe_regressions(&self) -> Vec<ProbeRegression> {
        let Some(alpha) = self.probe_alpha() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ((suite, id), sides) in &self.probes {
            for (side, &metric) in sides.iter().zip(MONITORED.iter()) {
                let (cur, cand) = side.rates();
                if side.cs.count() > 0
                    && cand - cur >= self.margins.flip_min_change - 1e-12
                    && side.cs.shows_above(0.0, alpha)
                {
                    out.push(ProbeRegression {
                        suite: suite.clone(),
                        probe_id: id.clone(),
                        metric,
                        pairs: side.cs.count(),
                        current_bad: cur,
                        candidate_bad: cand,
                        e_value: side.cs.log_e_above(0.0).exp(),
                    });
                }
            }
        }
        out.sort_by(|a, b| b.e_value.total_cmp(&a.e_value));
        out
    }

    /// One look (at a slot end): regression first, then pass.
    pub fn decision(&mut self) -> Early {
        let alpha_reg = self.regression_alpha();
        let alpha_pass = self.pass_alpha();
        let mut regressions = Vec::new();
        for t in self.tracks.iter().filter(|t| t.pooled.cs.count() > 0) {
            let (cur, cand) = t.pooled.rates();
            let rr_ok = t.metric != Metric::RefusalRate
                || t.pooled.bad_current == 0
                || cand / cur >= self.margins.refusal_relative_risk;
            if cand - cur >= t.margin - 1e-12 && rr_ok && t.pooled.cs.shows_above(0.0, alpha_reg) {
                regressions.push(t.metric);
            }
        }
        for p in self.probe_regressions() {
            if !regressions.contains(&p.metric) {
                regressions.push(p.metric);
            }
        }
        if !regressions.is_empty() {
            regressions.sort_by_key(|m| MONITORED.iter().position(|x| x == m));
            return Early::Regression(regressions);
        }
        for t in self.tracks.iter_mut().filter(|t| t.pooled.cs.count() > 0) {
            t.passed = t.passed || t.pooled.cs.shows_below(t.margin, alpha_pass);
        }
        let mut observed = self.tracks.iter().filter(|t| t.pooled.cs.count() > 0);
        let mut any = false;
        if observed.all(|t| {
            any = true;
            t.passed
        }) && any
        {
            Early::NonInferior
        } else {
            Early::Continue
        }
    }
}

/// Looks at the fixed-sample length tests (`length_chars`, `length_tokens`, `length_shape`)
/// inside a sequential canary, which has no confidence sequence for them. Look j = 1, 2, …
/// judges them at confidence 1 − (1 − conf)/(j(j+1)): since Σ 1/(j(j+1)) = 1, the chances that
/// any look's interval misses add up to at most 1 − conf (a union bound over looks, valid
/// whatever their dependence), so stopping at the first look where lengths pass keeps the
/// fixed-sample test's false-pass rate. A look is due when the smallest suite's pairs have at
/// least doubled since the last one (intervals narrow by about 1/√2 between looks, so few
/// looks are spent) and are enough for the look to pass at all.
#[derive(Debug, Clone, Default)]
pub struct LengthLooks {
    looks: u32,
    last: u64,
}

impl LengthLooks {
    /// Confidence of look `look` (1-based; 0 is taken as 1).
    pub fn confidence(base: f64, look: u32) -> f64 {
        let j = f64::from(look.max(1));
        1.0 - (1.0 - base) / (j * (j + 1.0))
    }

    /// Whether a look is due with `smallest` pairs in the least-sampled suite: at least
    /// doubled since the last look, and enough for the next look's KS band around a distance
    /// of zero, c·√(2/n), to fall below `ks_margin` (a look that cannot pass is not spent).
    pub fn due(&self, smallest: u64, base: f64, ks_margin: f64) -> bool {
        let fewest = Self::fewest(base, ks_margin, self.looks + 1);
        smallest >= fewest && (self.looks == 0 || smallest >= 2 * self.last)
    }

    /// Pairs per suite for look `look` to pass at all: 2c²/margin² (c the Kolmogorov constant
    /// at that look's confidence), so that the band c·√(2/n) around D = 0 lies below it.
    pub fn fewest(base: f64, ks_margin: f64, look: u32) -> u64 {
        let c = super::shape::kolmogorov_c(Self::confidence(base, look));
        ((2.0 * c * c / (ks_margin * ks_margin)).floor() as u64 + 1).max(1)
    }

    /// Takes the next look at `smallest` pairs; returns its confidence.
    pub fn take(&mut self, smallest: u64, base: f64) -> f64 {
        self.looks += 1;
        self.last = smallest;
        Self::confidence(base, self.looks)
    }

    /// Looks taken so far.
    pub fn looks(&self) -> u32 {
        self.looks
    }

    /// The confidence the final report judges lengths at: that of the look that passed them,
    /// else of one more look (the report is a look too).
    pub fn final_confidence(&self, base: f64, passed: bool) -> f64 {
        Self::confidence(base, if passed { self.looks } else { self.looks + 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::tests::{Profile, synth};

    /// Feeds pairs slot by slot (probe-major within a slot), looking at each slot end.
    fn run(cur: &[Sample], cand: &[Sample], m: &mut CanaryMonitor) -> (Early, u64) {
        let mut order: Vec<usize> = (0..cur.len()).collect();
        order.sort_by_key(|&i| (cur[i].index, cur[i].probe_id.clone()));
        let mut slot = None;
        for i in order {
            if slot.is_some_and(|s| s != cur[i].index) {
                let d = m.decision();
                if d != Early::Continue {
                    return (d, m.pairs());
                }
            }
            slot = Some(cur[i].index);
            m.push(&cur[i], &cand[i], &Expectations::default());
        }
        (m.decision(), m.pairs())
    }

    fn monitor(margins: &Margins) -> CanaryMonitor {
        CanaryMonitor::with_probes(margins, 20)
    }

    #[test]
    fn a_clearly_worse_candidate_stops_early_as_a_regression() {
        let cur = synth(Profile::default(), 61, 20, 30);
        let cand = synth(
            Profile {
                refusal: 0.3,
                ..Profile::default()
            },
            62,
            20,
            30,
        );
        let (d, used) = run(&cur, &cand, &mut monitor(&Margins::default()));
        assert_eq!(d, Early::Regression(vec![Metric::RefusalRate]));
        assert!(used <= 100, "took {used} pairs");
    }

    #[test]
    fn equal_models_never_stop_as_a_regression() {
        for seed in 0..20 {
            let cur = synth(Profile::default(), 1000 + seed, 20, 60);
            let cand = synth(Profile::default(), 2000 + seed, 20, 60);
            let mut m = monitor(&Margins::default());
            let (d, _) = run(&cur, &cand, &mut m);
            assert!(!matches!(d, Early::Regression(_)), "seed {seed}: {d:?}");
            assert!(m.probe_regressions().is_empty());
        }
    }

    #[test]
    fn identical_answers_pass_at_the_default_margins() {
        // Seed-paired identical models: no discordant pair. The 1-point margins need about
        // ln(1/alpha)/0.01 pairs of the metric, the floor for any valid bound.
        let cur = synth(Profile::default(), 63, 20, 60);
        let (d, used) = run(&cur, &cur, &mut monitor(&Margins::default()));
        assert_eq!(d, Early::NonInferior);
        assert!(used <= 900, "took {used} pairs");
    }

    #[test]
    fn independent_equal_models_pass_when_the_margins_allow() {
        let good = Profile {
            refusal: 0.0,
            task_fail: 0.0,
            ..Profile::default()
        };
        let (cur, cand) = (synth(good, 63, 20, 30), synth(good, 64, 20, 30));
        let loose = Margins {
            refusal_points: 0.05,
            empty_points: 0.05,
            structured_points: 0.05,
            task_failure_points: 0.05,
            truncation_points: 0.05,
            ..Margins::default()
        };
        let (d, used) = run(&cur, &cand, &mut monitor(&loose));
        assert_eq!(d, Early::NonInferior);
        assert!(used < 600, "took {used} pairs");
        // Noisy task success at a 3-point margin needs thousands of pairs.
        let noisy = Profile::default();
        let (cur, cand) = (synth(noisy, 65, 20, 30), synth(noisy, 66, 20, 30));
        let (d, _) = run(&cur, &cand, &mut monitor(&Margins::default()));
        assert_eq!(d, Early::Continue);
    }

    #[test]
    fn two_broken_probes_are_named_though_the_pooled_rate_barely_moves() {
        // 40 task-checked probes of 80; two always wrong moves pooled task failure ≈ +4.75
        // points, near the 3-point margin, so the pooled test is slow.
        let cur = synth(Profile::default(), 70, 80, 40);
        let mut cand = synth(Profile::default(), 71, 80, 40);
        for s in cand.iter_mut() {
            if (s.probe_id == "p003" || s.probe_id == "p017")
                && let Some(m) = s.measurements.as_mut()
            {
                m.task_success = Some(false);
            }
        }
        let mut m = CanaryMonitor::with_probes(&Margins::default(), 80);
        let (d, used) = run(&cur, &cand, &mut m);
        assert_eq!(d, Early::Regression(vec![Metric::TaskFailureRate]));
        let named = |m: &CanaryMonitor| {
            let mut v: Vec<String> = m
                .probe_regressions()
                .iter()
                .map(|p| p.probe_id.clone())
                .collect();
            v.sort();
            v
        };
        let first = named(&m);
        assert!(
            !first.is_empty() && first.iter().all(|p| p == "p003" || p == "p017"),
            "{first:?} after {used} pairs"
        );
        // Every pair of the 40 slots: both probes named, no other.
        let mut all = CanaryMonitor::with_probes(&Margins::default(), 80);
        for (a, b) in cur.iter().zip(&cand) {
            all.push(a, b, &Expectations::default());
        }
        assert_eq!(named(&all), ["p003", "p017"]);
        // The pooled tests alone need longer, or never get there within 40 slots.
        let mut pooled = CanaryMonitor::new(&Margins::default());
        let (d, used_pooled) = run(&cur, &cand, &mut pooled);
        assert!(
            d == Early::Continue || used_pooled > used,
            "{d:?} after {used_pooled} pairs"
        );
    }

    #[test]
    fn probes_of_settled_metrics_are_no_longer_needed() {
        // Identical answers: refusal, empty and truncation settle first; then only the JSON
        // probes (odd ones, with structured output and task checks) are still needed.
        let cur = synth(Profile::default(), 90, 20, 60);
        let mut m = monitor(&Margins::default());
        let mut dropped_at = None;
        for slot in 0..60 {
            for s in cur.iter().filter(|s| s.index == slot) {
                m.push(s, s, &Expectations::default());
            }
            if m.decision() != Early::Continue {
                break;
            }
            if dropped_at.is_none() && !m.needed("core", "p000") {
                dropped_at = Some(slot);
                assert!(m.needed("json", "p001"), "slot {slot}");
            }
        }
        assert!(dropped_at.is_some(), "core probes never dropped");
        assert!(m.needed("core", "p999"), "an unseen probe is needed");
    }

    #[test]
    fn bounds_report_the_pass_and_regression_ends() {
        let cur = synth(Profile::default(), 80, 20, 10);
        let mut m = monitor(&Margins::default());
        run(&cur, &cur, &mut m);
        let b = m.bounds(Metric::TaskFailureRate).unwrap();
        assert_eq!(b.estimate, 0.0);
        assert!(b.lower < 0.0 && b.upper > 0.0 && b.upper < 0.1, "{b:?}");
        assert!(m.bounds(Metric::MissedRefusalRate).is_none());
    }

    #[test]
    fn length_looks_spend_at_most_the_fixed_miss_chance() {
        let base = 0.95;
        let spent: f64 = (1..=10_000)
            .map(|j| 1.0 - LengthLooks::confidence(base, j))
            .sum();
        assert!(spent <= 1.0 - base + 1e-12, "{spent}");
        assert!(spent > 0.9999 * (1.0 - base), "{spent}");
        assert!((LengthLooks::confidence(base, 1) - 0.975).abs() < 1e-12);
        assert!((LengthLooks::confidence(base, 3) - (1.0 - 0.05 / 12.0)).abs() < 1e-12);
    }

    #[test]
    fn length_looks_are_due_at_each_doubling() {
        let mut l = LengthLooks::default();
        // Look 1 (confidence 0.975, c = 1.4835) needs 2c²/0.25² = 70.4, so 71 pairs.
        assert!(!l.due(0, 0.95, 0.25));
        assert!(!l.due(70, 0.95, 0.25));
        assert!(l.due(71, 0.95, 0.25));
        assert_eq!(LengthLooks::fewest(0.95, 0.25, 1), 71);
        assert!((l.take(100, 0.95) - 0.975).abs() < 1e-12);
        assert!(!l.due(199, 0.95, 0.25));
        assert!(l.due(200, 0.95, 0.25));
        l.take(200, 0.95);
        assert_eq!(l.looks(), 2);
        assert!((l.final_confidence(0.95, true) - (1.0 - 0.05 / 6.0)).abs() < 1e-12);
        assert!((l.final_confidence(0.95, false) - (1.0 - 0.05 / 12.0)).abs() < 1e-12);
    }
}
