//! Anytime-valid early stopping for the paired canary: feed pairs as they arrive, ask after
//! each whether the evidence is already decisive. Pure and stateful; the caller owns the loop.
//!
//! Rate metrics only (lengths are judged by the fixed-sample report at the end):
//! - **regression** on a metric when its sequential exact McNemar e-process (H₀: the candidate
//!   is no worse on discordant pairs) reaches K/alpha — Bonferroni over the K monitored
//!   metrics, valid for e-values by Ville's inequality — *and* the paired rate difference is at
//!   least the metric's margin (refusals also need the relative risk);
//! - **non-inferior** when, for every metric observed so far, the upper end of the
//!   normal-mixture confidence sequence (at alpha/K) for the mean paired difference
//!   `bad(candidate) − bad(current)` is below the margin. The differences lie in [−1, 1], so
//!   they are 1-sub-Gaussian and σ² = 1 keeps the sequence valid without knowing the
//!   variance (Howard, Ramdas, McAuliffe & Sekhon 2021). That bound is conservative: with
//!   rare discordance it needs many thousands of pairs at 2-point margins, so early passes come
//!   from loose margins or very long runs, early regressions come quickly.
//!
//! The e-processes and the confidence sequence are `crate::stats::sequential`'s.

use super::{Expectations, Margins, Metric};
use crate::sample::Sample;
use crate::stats::sequential::{McNemarSequential, MixtureSprt};

/// Monitored metrics, in report order.
const MONITORED: [Metric; 6] = [
    Metric::RefusalRate,
    Metric::MissedRefusalRate,
    Metric::EmptyRate,
    Metric::StructuredFailureRate,
    Metric::TaskSuccessRate,
    Metric::TruncationRate,
];

/// What the evidence says so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Early {
    /// Not decisive yet: keep sampling.
    Continue,
    /// The candidate is worse on these metrics, beyond their margins.
    Regression(Vec<Metric>),
    /// Every observed rate excludes a regression beyond its margin.
    NonInferior,
}

#[derive(Debug, Clone)]
struct Track {
    metric: Metric,
    margin: f64,
    mcnemar: McNemarSequential,
    diff: Option<MixtureSprt>,
    pairs: u64,
    bad_current: u64,
    bad_candidate: u64,
}

/// Sequential state of a paired canary.
#[derive(Debug, Clone)]
pub struct CanaryMonitor {
    margins: Margins,
    tracks: Vec<Track>,
    pairs: u64,
}

impl CanaryMonitor {
    pub fn new(margins: &Margins) -> CanaryMonitor {
        let tracks = MONITORED
            .iter()
            .map(|&metric| {
                let margin = super::analyze::rate_margin(metric, margins);
                Track {
                    metric,
                    margin,
                    mcnemar: McNemarSequential::new(),
                    // Mixing scale τ = the margin: the shift worth detecting.
                    diff: MixtureSprt::new(0.0, 1.0, (margin * margin).max(1e-6)).ok(),
                    pairs: 0,
                    bad_current: 0,
                    bad_candidate: 0,
                }
            })
            .collect();
        CanaryMonitor {
            margins: margins.clone(),
            tracks,
            pairs: 0,
        }
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
        for t in &mut self.tracks {
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
            t.pairs += 1;
            t.bad_current += u64::from(bad_a);
            t.bad_candidate += u64::from(bad_b);
            t.mcnemar.update(!bad_a, !bad_b);
            if let Some(d) = t.diff.as_mut() {
                d.update(f64::from(u8::from(bad_b)) - f64::from(u8::from(bad_a)));
            }
        }
    }

    /// Pairs with measurements on both sides so far.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// The regression e-value of a metric (candidate worse), when monitored.
    pub fn e_value(&self, metric: Metric) -> Option<f64> {
        self.tracks
            .iter()
            .find(|t| t.metric == metric)
            .map(|t| t.mcnemar.e_value())
    }

    pub fn decision(&self) -> Early {
        let k = MONITORED.len() as f64;
        let alpha = self.margins.alpha / k;
        let mut regressions = Vec::new();
        for t in self.tracks.iter().filter(|t| t.pairs > 0) {
            let n = t.pairs as f64;
            let worse = (t.bad_candidate as f64 - t.bad_current as f64) / n;
            let rr_ok = t.metric != Metric::RefusalRate
                || t.bad_current == 0
                || t.bad_candidate as f64 / t.bad_current as f64
                    >= self.margins.refusal_relative_risk;
            if t.mcnemar.e_value() >= 1.0 / alpha && worse >= t.margin - 1e-12 && rr_ok {
                regressions.push(t.metric);
            }
        }
        if !regressions.is_empty() {
            return Early::Regression(regressions);
        }
        let observed: Vec<&Track> = self.tracks.iter().filter(|t| t.pairs > 0).collect();
        let all_inside = !observed.is_empty()
            && observed.iter().all(|t| {
                t.diff
                    .as_ref()
                    .is_some_and(|d| d.confidence_sequence(alpha).1 < t.margin)
            });
        if all_inside {
            Early::NonInferior
        } else {
            Early::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::tests::{Profile, synth};

    /// Feeds pairs round by round (probe-major within a round) until a decision.
    fn run(cur: &[Sample], cand: &[Sample], margins: &Margins) -> (Early, u64) {
        let mut m = CanaryMonitor::new(margins);
        let mut order: Vec<usize> = (0..cur.len()).collect();
        order.sort_by_key(|&i| (cur[i].index, cur[i].probe_id.clone()));
        for i in order {
            m.push(&cur[i], &cand[i], &Expectations::default());
            let d = m.decision();
            if d != Early::Continue {
                return (d, m.pairs());
            }
        }
        (Early::Continue, m.pairs())
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
        let (d, used) = run(&cur, &cand, &Margins::default());
        assert_eq!(d, Early::Regression(vec![Metric::RefusalRate]));
        assert!(used < 100, "took {used} pairs");
    }

    #[test]
    fn equal_models_never_stop_as_a_regression() {
        for seed in 0..20 {
            let cur = synth(Profile::default(), 1000 + seed, 20, 30);
            let cand = synth(Profile::default(), 2000 + seed, 20, 30);
            let (d, _) = run(&cur, &cand, &Margins::default());
            assert!(!matches!(d, Early::Regression(_)), "seed {seed}: {d:?}");
        }
    }

    #[test]
    fn non_inferiority_is_shown_early_only_when_the_margins_allow() {
        let good = Profile {
            refusal: 0.0,
            task_fail: 0.0,
            ..Profile::default()
        };
        let (cur, cand) = (synth(good, 63, 20, 30), synth(good, 64, 20, 30));
        let loose = Margins {
            refusal_points: 0.25,
            empty_points: 0.25,
            structured_points: 0.25,
            task_success_points: 0.25,
            truncation_points: 0.25,
            ..Margins::default()
        };
        let (d, used) = run(&cur, &cand, &loose);
        assert_eq!(d, Early::NonInferior);
        assert!(used < 600, "took {used} pairs");
        // At the default 1–3 point margins 600 pairs are not enough for the conservative
        // sequence: the canary keeps sampling (and the fixed-sample report decides at the end).
        let (d, _) = run(&cur, &cand, &Margins::default());
        assert_eq!(d, Early::Continue);
    }
}
