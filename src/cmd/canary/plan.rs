//! Planning a sequential canary before spending: how many pairs (and so how long) until a pass
//! for an unchanged candidate, and until a regression for a change at the margin, from the
//! suites, the margins and the sequential design's own expected path
//! (`stats::sequential::pairs_to_show_below/above`).
//!
//! Assumed bad-outcome rates of the current model (documented in docs/verdicts.md): refusal
//! 2 %, missed refusal 10 %, empty 1 %, JSON failure 5 %, task failure 5 %, truncation 2 %.
//! Two designs bracket the truth: answers identical pair by pair (seed pairing effective) and
//! answers drawn independently on each side (a server that ignores `seed`).

use modelwatch::drift::{LengthLooks, Margins, Metric};
use modelwatch::probe::Probe;
use modelwatch::stats::sequential::{pairs_to_show_above, pairs_to_show_below};
use std::collections::BTreeMap;

/// Slots (samples per probe) beyond which a plan says "out of reach".
pub const MAX_SLOTS: u32 = 100_000;

/// What the plan assumes and computes for one metric.
#[derive(Debug, Clone, PartialEq)]
struct MetricPlan {
    metric: Metric,
    margin: f64,
    /// Positions of the probes the metric applies to.
    probes: Vec<usize>,
    /// Assumed bad-outcome rate of the current model.
    base: f64,
}

/// The plan of a canary over a list of probes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    metrics: Vec<MetricPlan>,
    probes: usize,
    /// Each probe's suite (a hash of its name).
    suites: Vec<u64>,
    /// Pairs every suite needs before the first length look can pass (see `LengthLooks`).
    first_look: u64,
    pass_alpha: f64,
    regression_alpha: f64,
}

/// What the plan needs to know of a probe: which metrics it informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeKind {
    pub refusal_expected: bool,
    pub json: bool,
    pub task: bool,
    /// Its suite (a hash of the name): the lengths are judged per suite.
    pub suite: u64,
}

impl ProbeKind {
    pub fn of(p: &Probe) -> ProbeKind {
        ProbeKind {
            refusal_expected: p.expect.refusal == Some(true),
            json: p.expect.expects_json(),
            task: p.expect.task.is_some(),
            suite: modelwatch::rng::hash_str(&p.suite),
        }
    }
}

/// Pairs and samples per probe until a decision (None: beyond [`MAX_SLOTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub slots: u32,
    pub pairs: u64,
}

impl Plan {
    /// `regression_alpha` is the pooled regression level of the monitor (alpha/2K).
    pub fn new(probes: &[ProbeKind], margins: &Margins, regression_alpha: f64) -> Plan {
        let rate = |m: Metric| modelwatch_margin(m, margins);
        let applies = |f: &dyn Fn(&ProbeKind) -> bool| -> Vec<usize> {
            probes
                .iter()
                .enumerate()
                .filter(|(_, p)| f(p))
                .map(|(i, _)| i)
                .collect()
        };
        let specs: [(Metric, Vec<usize>, f64); 6] = [
            (Metric::RefusalRate, applies(&|p| !p.refusal_expected), 0.02),
            (
                Metric::MissedRefusalRate,
                applies(&|p| p.refusal_expected),
                0.10,
            ),
            (Metric::EmptyRate, applies(&|_| true), 0.01),
            (Metric::StructuredFailureRate, applies(&|p| p.json), 0.05),
            (Metric::TaskFailureRate, applies(&|p| p.task), 0.05),
            (Metric::TruncationRate, applies(&|_| true), 0.02),
        ];
        Plan {
            metrics: specs
                .into_iter()
                .filter(|(_, probes, _)| !probes.is_empty())
                .map(|(metric, probes, base)| MetricPlan {
                    metric,
                    margin: rate(metric),
                    probes,
                    base,
                })
                .collect(),
            probes: probes.len(),
            suites: probes.iter().map(|p| p.suite).collect(),
            first_look: LengthLooks::fewest(margins.confidence, margins.length_shape_ks, 1),
            pass_alpha: margins.alpha,
            regression_alpha,
        }
    }

    /// Pairs every suite needs before the lengths' first look can pass.
    pub fn first_look(&self) -> u64 {
        self.first_look
    }

    /// The margin the plan uses for a metric (None: no probe informs it).
    pub fn margin(&self, metric: Metric) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.metric == metric)
            .map(|m| m.margin)
    }

    /// Slots a metric needs, given its pairs-needed figure.
    fn slots(m: &MetricPlan, pairs: Option<u64>) -> Option<u32> {
        let per_slot = m.probes.len() as u64;
        pairs
            .map(|n| n.div_ceil(per_slot))
            .filter(|&s| s <= u64::from(MAX_SLOTS))
            .map(|s| s as u32)
    }

    /// Until every metric passed, each probe sampled until its last metric settled (the
    /// canary drops probes whose metrics passed); then, until every suite has the pairs the
    /// first length look needs, every probe again.
    fn pass(&self, identical: bool) -> Option<(Estimate, Metric)> {
        let mut settle = vec![0u32; self.probes];
        let mut slowest = (0u32, None);
        for m in &self.metrics {
            let q = if identical {
                0.0
            } else {
                m.base * (1.0 - m.base)
            };
            let max = u64::from(MAX_SLOTS) * m.probes.len() as u64;
            let slots = Self::slots(m, pairs_to_show_below(q, q, m.margin, self.pass_alpha, max))?;
            for &p in &m.probes {
                settle[p] = settle[p].max(slots);
            }
            if slots >= slowest.0 {
                slowest = (slots, Some(m.metric));
            }
        }
        let mut by_suite: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for (&suite, &s) in self.suites.iter().zip(&settle) {
            let e = by_suite.entry(suite).or_default();
            *e = (e.0 + u64::from(s), e.1 + 1);
        }
        let more = by_suite
            .values()
            .map(|&(pairs, n)| self.first_look.saturating_sub(pairs).div_ceil(n))
            .max()
            .unwrap_or(0);
        let rates: u64 = settle.iter().map(|&s| u64::from(s)).sum();
        Some((
            Estimate {
                slots: slowest.0.saturating_add(more as u32),
                pairs: rates + more * self.probes as u64,
            },
            slowest.1?,
        ))
    }

    /// An unchanged candidate whose answers are identical pair by pair; with the metric that
    /// takes longest.
    pub fn pass_identical(&self) -> Option<(Estimate, Metric)> {
        self.pass(true)
    }

    /// An unchanged candidate drawing its answers independently.
    pub fn pass_independent(&self) -> Option<(Estimate, Metric)> {
        self.pass(false)
    }

    /// A change of exactly the margin on the metric slowest to show it, every probe sampled;
    /// `identical`: the candidate's extra failures are its only discordant pairs.
    pub fn regression_at_margin(&self, identical: bool) -> Option<(Estimate, Metric)> {
        let mut worst: Option<(Estimate, Metric)> = None;
        for m in &self.metrics {
            let (p, d) = (m.base, m.margin);
            let (better, worse) = if identical {
                (0.0, d)
            } else {
                (p * (1.0 - p - d).max(0.0), (p + d) * (1.0 - p))
            };
            let max = u64::from(MAX_SLOTS) * m.probes.len() as u64;
            let slots = Self::slots(
                m,
                pairs_to_show_above(better, worse, 0.0, self.regression_alpha, max),
            )?;
            let e = Estimate {
                slots,
                pairs: u64::from(slots) * self.probes as u64,
            };
            if worst.is_none_or(|(w, _)| e.slots > w.slots) {
                worst = Some((e, m.metric));
            }
        }
        worst
    }
}

/// The margin of a monitored rate (the same table as the verdict engine's).
fn modelwatch_margin(metric: Metric, m: &Margins) -> f64 {
    match metric {
        Metric::RefusalRate | Metric::MissedRefusalRate => m.refusal_points,
        Metric::EmptyRate => m.empty_points,
        Metric::StructuredFailureRate => m.structured_points,
        Metric::TaskFailureRate => m.task_failure_points,
        _ => m.truncation_points,
    }
}

/// "about 1068 pairs (23 samples per probe, slowest metric …)" or "out of reach".
pub fn describe(e: Option<(Estimate, Metric)>, seconds_per_pair: Option<f64>) -> String {
    match e {
        None => format!("out of reach (more than {MAX_SLOTS} samples per probe)"),
        Some((e, metric)) => {
            let time = seconds_per_pair
                .map(|s| format!(", ≈ {}", duration(e.pairs as f64 * s)))
                .unwrap_or_default();
            format!(
                "about {} pairs ({} samples per probe, slowest metric {}){time}",
                e.pairs,
                e.slots,
                metric.id()
            )
        }
    }
}

/// Seconds as "45 s", "12 min", "3.5 h".
pub fn duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes() -> Vec<ProbeKind> {
        (0..60)
            .map(|i| ProbeKind {
                refusal_expected: false,
                json: i < 20,
                task: i < 40,
                suite: 0,
            })
            .collect()
    }

    #[test]
    fn a_suite_whose_probes_settle_early_waits_for_the_first_length_look() {
        // Suite 0: 2 probes whose rates (refusal, empty, truncation) settle early; suite 1:
        // 20 JSON probes, sampled until the 1-point JSON margin is shown.
        let refs: Vec<ProbeKind> = (0..22)
            .map(|i| ProbeKind {
                json: i >= 2,
                suite: u64::from(i >= 2),
                ..ProbeKind::default()
            })
            .collect();
        let plan = Plan::new(&refs, &Margins::default(), 0.05 / 12.0);
        assert_eq!(plan.first_look, 71);
        let rates_only = Plan {
            first_look: 0,
            ..plan.clone()
        };
        let (e, _) = plan.pass_identical().unwrap();
        let (r, _) = rates_only.pass_identical().unwrap();
        // Every probe is sampled `more` slots longer: all 22 probes each time.
        let more = e.slots - r.slots;
        assert!(more >= 1, "{e:?} {r:?}");
        assert_eq!(e.pairs - r.pairs, u64::from(more) * 22);
        // One suite of the same probes: it has its 71 pairs long before the JSON margin.
        let one: Vec<ProbeKind> = refs.iter().map(|p| ProbeKind { suite: 0, ..*p }).collect();
        let (o, _) = Plan::new(&one, &Margins::default(), 0.05 / 12.0)
            .pass_identical()
            .unwrap();
        assert_eq!(o, r);
    }

    #[test]
    fn identical_answers_pass_far_sooner_than_independent_ones() {
        let refs = probes();
        let plan = Plan::new(&refs, &Margins::default(), 0.05 / 12.0);
        let (same, slowest) = plan.pass_identical().unwrap();
        // The 1-point margins (empty answers on every probe, JSON failures on 20) decide.
        assert_eq!(slowest, Metric::StructuredFailureRate);
        assert!((15..=30).contains(&same.slots), "{same:?}");
        // Probes without JSON are dropped once their metrics settled.
        assert!(same.pairs < u64::from(same.slots) * 60, "{same:?}");
        let (indep, _) = plan.pass_independent().unwrap();
        assert!(indep.slots > 10 * same.slots, "{indep:?} vs {same:?}");
        let (reg, _) = plan.regression_at_margin(true).unwrap();
        assert!(reg.slots < indep.slots);
        // Coarser margins pass sooner.
        let mut coarse = Margins::default();
        modelwatch::config::Sensitivity::Coarse.apply(&mut coarse);
        let (c, _) = Plan::new(&refs, &coarse, 0.05 / 12.0)
            .pass_identical()
            .unwrap();
        assert!(c.slots < same.slots);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(45.2), "45 s");
        assert_eq!(duration(720.0), "12 min");
        assert_eq!(duration(3.5 * 3600.0), "3.5 h");
    }
}
