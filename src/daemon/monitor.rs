//! Continuous, anytime-valid monitoring of one target against its baseline. Pure: samples in,
//! observations out; no clock, no I/O.
//!
//! For every rate metric the baseline applies to (refusals, missed refusals, empty answers,
//! structured-output failures, task failures, truncation), oriented so that an *event* is a bad
//! outcome:
//! - the **interval null** is `rate <= p0` with `p0` = the baseline's upper 95 % Clopper–Pearson
//!   bound plus the metric's practical margin (`drift::Margins`);
//! - a **beta-binomial mixture e-process** (`stats::sequential::BetaBinomialEProcess`) tests it
//!   from the start of the *episode* (daemon start, a swap, or a new baseline). It alarms when
//!   its e-value reaches K/alpha (K monitored metrics; Bonferroni over e-values is valid by
//!   Ville's inequality), so the chance of any false alarm in an episode is at most `alpha`
//!   however often the daemon looks;
//! - a **Bernoulli CUSUM** (`BernoulliCusum`, in control at `p0`, out of control at
//!   `p0 + margin`) runs alongside and restarts after each alarm, so a change late in a long
//!   quiet episode (where the e-process has sunk far below 1) is still found quickly. Its threshold is
//!   `h = ln(ARL)` with ARL the metric's share of the false-alarm budget in observations;
//!   by Lorden's bound the in-control run length is then at least ARL (conservative; no
//!   simulation needed at start-up).
//!
//! The false-alarm budget `false_alarm_interval` (default 90 days) is split evenly across the K
//! metrics: false alarms of independent monitors add up as rates, so each metric gets a mean
//! time between false alarms of K × the interval.
//!
//! Response length (characters) is monitored with the rank e-process
//! (`stats::sequential::RankEProcess`): each sample's mid-rank placement among the baseline
//! samples of the same probe, against the interval null |E[u] − ½| <= 0.05 + Cliff's-delta
//! margin / 2.
//!
//! A metric reads **clear** only when its e-value is below 1 (the data favour the null) and no
//! CUSUM alarm is recent; between 1 and the threshold it reads *no data*, so an alert neither
//! fires nor resolves on weak evidence (and a restart, which begins a new episode, does not
//! resolve a firing alert while the model is still bad).
//!
//! A breach also needs a practically large effect: the rate observed in the episode (or in the
//! last rounds, for a CUSUM alarm) must exceed the baseline rate by the margin.

use crate::alert::{Evidence, Observation};
use crate::baseline::Baseline;
use crate::drift::{Expectations, Margins, Metric};
use crate::sample::Sample;
use crate::stats::Alternative;
use crate::stats::clopper_pearson;
use crate::stats::sequential::{BernoulliCusum, BetaBinomialEProcess, BetaPrior, RankEProcess};
use std::collections::{BTreeMap, VecDeque};

/// Metric id of the length monitor.
pub const LENGTH_METRIC: &str = "length_chars";
/// Rounds kept for the "recent" effect of a CUSUM alarm.
const RECENT_ROUNDS: usize = 5;
/// Tolerated drift of the mean placement before the practical margin is added.
const PLACEMENT_SLACK: f64 = 0.05;
/// Weight of the e-process mixture at its centre, in expected events (strength a + b = this / p1).
const PRIOR_EVENTS: f64 = 12.0;
/// Rate metrics monitored, in report order.
const RATES: [Metric; 6] = crate::drift::BINARY;

/// How a monitor is set up.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    pub margins: Margins,
    /// Mean time between false alarms of the CUSUMs, in rounds (false_alarm_interval /
    /// interval); split across metrics inside.
    pub false_alarm_rounds: f64,
}

fn rate_margin(metric: Metric, m: &Margins) -> f64 {
    match metric {
        Metric::RefusalRate | Metric::MissedRefusalRate => m.refusal_points,
        Metric::EmptyRate => m.empty_points,
        Metric::StructuredFailureRate | Metric::StructuredKind(_) => m.structured_points,
        Metric::TaskSuccessRate => m.task_success_points,
        _ => m.truncation_points,
    }
}

/// Whether a sample is a bad outcome for a rate metric (None: not applicable).
fn bad(metric: Metric, s: &Sample, expectations: &Expectations) -> Option<bool> {
    if s.error.is_some() {
        return None;
    }
    let m = s.measurements.as_ref()?;
    let expected = expectations.refusal_expected(&s.suite, &s.probe_id);
    let outcome = metric.outcome(m, expected)?;
    Some(if metric.higher_is_worse() {
        outcome
    } else {
        !outcome
    })
}

#[derive(Debug, Clone)]
struct RateTrack {
    metric: Metric,
    baseline_rate: f64,
    p0: f64,
    margin: f64,
    eprocess: BetaBinomialEProcess,
    cusum: Option<BernoulliCusum>,
    /// Rounds since the last CUSUM alarm (None: no alarm yet).
    since_cusum_alarm: Option<usize>,
    events: u64,
    trials: u64,
    recent: VecDeque<(u64, u64)>,
    /// Baseline bad rate per `suite/probe`.
    baseline_probe: BTreeMap<String, f64>,
    /// Episode (events, trials) per `suite/probe`.
    probes: BTreeMap<String, (u64, u64)>,
}

#[derive(Debug, Clone)]
struct LengthTrack {
    baseline: BTreeMap<String, Vec<f64>>,
    eprocess: RankEProcess,
    margin: f64,
    sum_u: f64,
    n: u64,
}

pub use crate::telemetry::observer::MetricSnapshot;

/// The monitor of one target.
#[derive(Debug, Clone)]
pub struct TargetMonitor {
    expectations: Expectations,
    rates: Vec<RateTrack>,
    length: Option<LengthTrack>,
    threshold: f64,
    settings: MonitorSettings,
    /// Observations of the first round, per rate metric (sizes the CUSUM budget).
    rounds: u64,
}

impl TargetMonitor {
    /// A fresh episode against `baseline`.
    pub fn new(baseline: &Baseline, settings: MonitorSettings) -> TargetMonitor {
        Self::from_samples(&baseline.samples(), baseline.expectations(), settings)
    }

    /// A fresh episode against baseline `samples`.
    pub fn from_samples(
        samples: &[Sample],
        expectations: Expectations,
        settings: MonitorSettings,
    ) -> TargetMonitor {
        let margins = &settings.margins;
        let mut rates = Vec::new();
        for metric in RATES {
            let mut per_probe: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for s in samples {
                if let Some(b) = bad(metric, s, &expectations) {
                    let e = per_probe
                        .entry(format!("{}/{}", s.suite, s.probe_id))
                        .or_default();
                    e.0 += u64::from(b);
                    e.1 += 1;
                }
            }
            let (x, n) = per_probe
                .values()
                .fold((0, 0), |(x, n), (a, b)| (x + a, n + b));
            if n == 0 {
                continue;
            }
            let upper = clopper_pearson(x, n, 0.95).map(|i| i.upper).unwrap_or(1.0);
            let margin = rate_margin(metric, margins);
            let p0 = (upper + margin).min(0.98);
            // The mixture is centred one margin above the null boundary (the smallest change
            // worth an alert) with PRIOR_EVENTS expected events' worth of weight there: close
            // to Wald's SPRT for that alternative, and a round of samples still carries larger
            // shifts past the threshold at once (docs/statistics.md, "Monitor").
            let p1 = (p0 + margin.max(0.01)).min(0.99);
            let prior = BetaPrior::centered(p1, PRIOR_EVENTS / p1);
            let Ok(eprocess) = BetaBinomialEProcess::new(p0, prior) else {
                continue;
            };
            rates.push(RateTrack {
                metric,
                baseline_rate: x as f64 / n as f64,
                p0,
                margin,
                eprocess,
                cusum: None,
                since_cusum_alarm: None,
                events: 0,
                trials: 0,
                recent: VecDeque::new(),
                baseline_probe: per_probe
                    .iter()
                    .map(|(k, (a, b))| (k.clone(), *a as f64 / (*b).max(1) as f64))
                    .collect(),
                probes: BTreeMap::new(),
            });
        }
        let mut lengths: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in samples {
            if s.error.is_none()
                && let Some(m) = &s.measurements
            {
                lengths
                    .entry(format!("{}/{}", s.suite, s.probe_id))
                    .or_default()
                    .push(f64::from(m.chars));
            }
        }
        for v in lengths.values_mut() {
            v.sort_by(f64::total_cmp);
        }
        let margin = (PLACEMENT_SLACK + margins.length_cliffs_delta / 2.0).min(0.45);
        let length = (!lengths.is_empty())
            .then(|| RankEProcess::new(margin, Alternative::TwoSided).ok())
            .flatten()
            .map(|eprocess| LengthTrack {
                baseline: lengths,
                eprocess,
                margin,
                sum_u: 0.0,
                n: 0,
            });
        let k = rates.len() + usize::from(length.is_some());
        let threshold = k.max(1) as f64 / margins.alpha.clamp(1e-9, 0.5);
        TargetMonitor {
            expectations,
            rates,
            length,
            threshold,
            settings,
            rounds: 0,
        }
    }

    /// How many metrics are monitored (K).
    pub fn metric_count(&self) -> usize {
        self.rates.len() + usize::from(self.length.is_some())
    }

    /// The e-value threshold K/alpha.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Feeds one round and reads every monitored metric. A round that measured nothing is
    /// `NoData` for all (infrastructure failures are never quality).
    pub fn observe_round(&mut self, samples: &[Sample]) -> Vec<(String, Observation)> {
        let measured = samples
            .iter()
            .any(|s| s.error.is_none() && s.measurements.is_some());
        if !measured {
            let mut out: Vec<(String, Observation)> = self
                .rates
                .iter()
                .map(|t| (t.metric.id(), Observation::NoData))
                .collect();
            if self.length.is_some() {
                out.push((LENGTH_METRIC.into(), Observation::NoData));
            }
            return out;
        }
        self.rounds += 1;
        let k = self.metric_count().max(1) as f64;
        let threshold = self.threshold;
        let flip = self.settings.margins.flip_min_change;
        let mut out = Vec::new();
        for t in &mut self.rates {
            let (mut x, mut n) = (0u64, 0u64);
            for s in samples {
                if let Some(b) = bad(t.metric, s, &self.expectations) {
                    x += u64::from(b);
                    n += 1;
                    let e = t
                        .probes
                        .entry(format!("{}/{}", s.suite, s.probe_id))
                        .or_default();
                    e.0 += u64::from(b);
                    e.1 += 1;
                }
            }
            if n == 0 {
                out.push((t.metric.id(), Observation::NoData));
                continue;
            }
            // The e-value depends only on the counts, and is read once per round: one update
            // per round costs one incomplete beta function instead of one per sample.
            t.eprocess.update_counts(x, n);
            if t.cusum.is_none() {
                // Budget in observations: rounds × observations per round, × K for the split.
                let arl = (self.settings.false_alarm_rounds * n as f64 * k).max(2.0);
                // Out of control one margin above the null boundary: Page's CUSUM only drifts
                // up for rates above a point between p0 and p1 (≈ p0 + margin / 2), so a wider
                // p1 would leave shifts just past p0 to the e-process, which has sunk after a
                // long quiet episode (see docs/statistics.md, "Monitor").
                let p1 = (t.p0 + t.margin.max(0.01)).min(0.99);
                t.cusum = BernoulliCusum::with_threshold(t.p0, p1, arl.ln()).ok();
            }
            let mut alarm = false;
            if let Some(c) = t.cusum.as_mut() {
                for s in samples {
                    if let Some(b) = bad(t.metric, s, &self.expectations) {
                        alarm |= c.update(b);
                    }
                }
            }
            t.since_cusum_alarm = if alarm {
                Some(0)
            } else {
                t.since_cusum_alarm.map(|r| r + 1)
            };
            t.events += x;
            t.trials += n;
            t.recent.push_back((x, n));
            while t.recent.len() > RECENT_ROUNDS {
                t.recent.pop_front();
            }
            let episode = t.events as f64 / t.trials as f64;
            let (rx, rn) = t
                .recent
                .iter()
                .fold((0, 0), |(a, b), (x, n)| (a + x, b + n));
            let recent = rx as f64 / rn.max(1) as f64;
            let e = t.eprocess.e_value();
            let by_eprocess = e >= threshold && episode >= t.baseline_rate + t.margin;
            let by_cusum = t.since_cusum_alarm.is_some_and(|r| r < RECENT_ROUNDS) && recent >= t.p0;
            if by_eprocess || by_cusum {
                let current = if by_eprocess { episode } else { recent };
                let ci = clopper_pearson(t.events, t.trials, 0.95).ok();
                let mut flipped: Vec<(f64, String)> = t
                    .probes
                    .iter()
                    .filter_map(|(k, (a, b))| {
                        let now = *a as f64 / (*b).max(1) as f64;
                        let before = t.baseline_probe.get(k).copied().unwrap_or(0.0);
                        (now - before >= flip.min(0.34)).then(|| (now - before, k.clone()))
                    })
                    .collect();
                flipped.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let evidence = Evidence {
                    summary: format!(
                        "{}: {:.1}% bad outcomes vs {:.1}% in the baseline ({} samples; {})",
                        t.metric.label(),
                        current * 100.0,
                        t.baseline_rate * 100.0,
                        t.trials,
                        if by_eprocess {
                            format!("e-value {e:.3e} >= {threshold:.0}")
                        } else {
                            "CUSUM alarm".to_string()
                        }
                    ),
                    baseline: Some(t.baseline_rate),
                    current: Some(current),
                    effect: Some(current - t.baseline_rate),
                    lower: ci.map(|c| c.lower),
                    upper: ci.map(|c| c.upper),
                    e_value: Some(e),
                    threshold: Some(threshold),
                    samples: t.trials,
                    flipped_probes: flipped.into_iter().take(5).map(|(_, k)| k).collect(),
                };
                out.push((t.metric.id(), Observation::Breach(evidence)));
            } else if e < 1.0 && t.since_cusum_alarm.is_none_or(|r| r >= RECENT_ROUNDS) {
                out.push((t.metric.id(), Observation::Clear));
            } else {
                // Some evidence, not enough to alarm: neither fire nor resolve.
                out.push((t.metric.id(), Observation::NoData));
            }
        }
        if let Some(l) = self.length.as_mut() {
            let mut n = 0;
            for s in samples {
                if s.error.is_some() {
                    continue;
                }
                let (Some(m), Some(base)) = (
                    &s.measurements,
                    l.baseline.get(&format!("{}/{}", s.suite, s.probe_id)),
                ) else {
                    continue;
                };
                if base.is_empty() {
                    continue;
                }
                let u = crate::stats::placement(base, f64::from(m.chars));
                l.eprocess.update_placement(u);
                l.sum_u += u;
                l.n += 1;
                n += 1;
            }
            if n == 0 {
                out.push((LENGTH_METRIC.into(), Observation::NoData));
            } else {
                let mean = l.sum_u / l.n as f64;
                let e = l.eprocess.e_value();
                if e >= threshold && (mean - 0.5).abs() > l.margin {
                    out.push((
                        LENGTH_METRIC.into(),
                        Observation::Breach(Evidence {
                            summary: format!(
                                "Length (chars): mean placement {mean:.2} among baseline samples \
                                 of the same probe (0.5 = unchanged; {} samples; e-value \
                                 {e:.3e} >= {threshold:.0})",
                                l.n
                            ),
                            baseline: Some(0.5),
                            current: Some(mean),
                            effect: Some(mean - 0.5),
                            lower: None,
                            upper: None,
                            e_value: Some(e),
                            threshold: Some(threshold),
                            samples: l.n,
                            flipped_probes: Vec::new(),
                        }),
                    ));
                } else if e < 1.0 {
                    out.push((LENGTH_METRIC.into(), Observation::Clear));
                } else {
                    out.push((LENGTH_METRIC.into(), Observation::NoData));
                }
            }
        }
        out
    }

    /// Every monitored metric's current reading.
    pub fn snapshot(&self) -> Vec<MetricSnapshot> {
        let mut out: Vec<MetricSnapshot> = self
            .rates
            .iter()
            .map(|t| MetricSnapshot {
                metric: t.metric.id(),
                baseline: t.baseline_rate,
                current: (t.trials > 0).then(|| t.events as f64 / t.trials as f64),
                null_bound: t.p0,
                e_value: t.eprocess.e_value(),
                threshold: self.threshold,
                samples: t.trials,
            })
            .collect();
        if let Some(l) = &self.length {
            out.push(MetricSnapshot {
                metric: LENGTH_METRIC.into(),
                baseline: 0.5,
                current: (l.n > 0).then(|| l.sum_u / l.n as f64),
                null_bound: 0.5 + l.margin,
                e_value: l.eprocess.e_value(),
                threshold: self.threshold,
                samples: l.n,
            });
        }
        out
    }

    /// Metric ids this monitor reports on.
    pub fn metric_ids(&self) -> Vec<String> {
        self.snapshot().into_iter().map(|s| s.metric).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::tests::{Profile, synth};

    fn settings() -> MonitorSettings {
        MonitorSettings {
            margins: Margins::default(),
            // 90 days of 10-minute rounds.
            false_alarm_rounds: 90.0 * 144.0,
        }
    }

    fn breaches(obs: &[(String, Observation)]) -> Vec<String> {
        obs.iter()
            .filter(|(_, o)| matches!(o, Observation::Breach(_)))
            .map(|(m, _)| m.clone())
            .collect()
    }

    #[test]
    fn a_long_seeded_run_without_a_change_never_breaches() {
        for seed in 0..3u64 {
            let baseline = synth(Profile::default(), 1000 + seed, 20, 20);
            let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
            assert!(m.metric_count() >= 4);
            for round in 0..1500u64 {
                let samples = synth(Profile::default(), seed * 100_000 + round, 20, 1);
                let obs = m.observe_round(&samples);
                assert!(
                    breaches(&obs).is_empty(),
                    "seed {seed} round {round}: {:?}",
                    obs
                );
            }
        }
    }

    #[test]
    fn a_degraded_model_breaches_within_a_few_rounds_with_evidence() {
        let baseline = synth(Profile::default(), 7, 20, 20);
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        let bad = Profile {
            json_fail: 0.4,
            refusal: 0.2,
            ..Profile::default()
        };
        let mut fired_at = None;
        for round in 0..20u64 {
            let obs = m.observe_round(&synth(bad, 500 + round, 20, 1));
            if let Some((metric, Observation::Breach(ev))) = obs
                .iter()
                .find(|(_, o)| matches!(o, Observation::Breach(_)))
            {
                assert!(ev.e_value.unwrap() >= m.threshold(), "{metric}: {ev:?}");
                assert!(ev.effect.unwrap() > 0.0);
                assert!(ev.samples > 0);
                fired_at = Some(round);
                break;
            }
        }
        let at = fired_at.expect("no breach in 20 rounds");
        assert!(at <= 8, "took {} rounds", at + 1);
    }

    #[test]
    fn failed_rounds_are_no_data_and_recovery_clears() {
        let baseline = synth(Profile::default(), 9, 20, 20);
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        let failed = synth(
            Profile {
                error: 1.0,
                ..Profile::default()
            },
            3,
            20,
            1,
        );
        let obs = m.observe_round(&failed);
        assert!(
            obs.iter().all(|(_, o)| *o == Observation::NoData),
            "{obs:?}"
        );
        // Healthy rounds read clear once the e-values sink below 1.
        let mut cleared = false;
        for r in 0..10 {
            let obs = m.observe_round(&synth(Profile::default(), 40 + r, 20, 1));
            if obs.iter().any(|(_, o)| *o == Observation::Clear) {
                cleared = true;
                break;
            }
        }
        assert!(cleared);
    }
}
