//! Continuous, anytime-valid monitoring of one target against its baseline. Pure: samples in,
//! observations out; no clock, no I/O.
//!
//! For every rate metric the baseline applies to (refusals, missed refusals, empty answers,
//! structured-output failures, task failures, truncation), oriented so that an *event* is a bad
//! outcome:
//! - the **interval null** is `rate <= p0` with `p0` = the baseline's upper 95 % Clopper–Pearson
//!   bound plus the metric's practical margin (`drift::Margins`);
//! - evidence is kept **per stratum** (the whole target, each suite, each probe;
//!   `daemon::strata`) and combined by weighted averages, which keeps each metric's share of
//!   the false-alarm budget while a regression confined to a few probes or one suite is found
//!   and named;
//! - an **episode e-value** from the start of the *episode* (the first round with the baseline,
//!   a swap, or a new baseline; a restart continues it, see `monitor_state.rs`): the pooled
//!   beta-binomial mixture e-process (weight 0.9) averaged with per-suite and per-probe
//!   grid-mixture e-processes. It alarms at K/alpha (K monitored metrics; Bonferroni over
//!   e-values is valid by Ville's inequality), so the chance of any false alarm in an episode
//!   is at most `alpha` however often the daemon looks;
//! - a **change detector**: per stratum, e-CUSUMs at a grid of shift sizes from one margin
//!   above p0 to near certainty (`stats::sequential::ShiftGrid`), averaged over the grid and the
//!   strata. It alarms at c = K × the false-alarm interval in observations (rounds × the
//!   metric's observations per round); as an e-detector its mean time to a false alarm is at
//!   least c steps (Shin, Ramdas & Rinaldo 2024), so at least c observations' worth of rounds. Each CUSUM
//!   restarts from zero whenever the evidence is against a change, so the delay after a jump
//!   does not depend on how long the quiet period before it was, and the grid member nearest the
//!   jump sets the pace (a jump to ~100 % is seen in one round).
//!
//! The false-alarm budget `false_alarm_interval` (default 90 days) is split evenly across the K
//! metrics: false alarms of separate monitors add up as rates, so each metric gets a mean
//! time between false alarms of K × the interval.
//!
//! Response length (characters) is monitored with the rank e-process
//! (`stats::sequential::RankEProcess`): each sample's mid-rank placement among the baseline
//! samples of the same probe, against the interval null |E[u] − ½| <= 0.05 + Cliff's-delta
//! margin / 2.
//!
//! A metric reads **clear** only when its episode e-value is below 1 (the data favour the null)
//! and no change-detector incident is open; otherwise it reads *no data*, so an alert neither
//! fires nor resolves on weak evidence. An incident closes, and the detector
//! restarts, once every stratum that carried the alarm serves a rate inside its null again over
//! the last rounds.
//!
//! A breach also needs a practically large effect in a stratum that carries it: the episode rate
//! above the baseline rate by the margin (episode e-value), or the rate since the estimated
//! change point above the null boundary (change detector). Alerts quote the rate being served
//! now (last rounds) beside the episode figure, and name the suites and probes that carry them.

use crate::alert::{Evidence, Observation};
use crate::baseline::Baseline;
use crate::drift::{Expectations, Margins, Metric};
use crate::sample::Sample;
use crate::stats::Alternative;
use crate::stats::clopper_pearson;
use crate::stats::sequential::{BetaBinomialEProcess, BetaPrior, RankEProcess};
use std::collections::BTreeMap;

use super::strata::{
    NullConfidence, ProbeCounts, RECENT_ROUNDS, StratifiedRate, Stratum, StratumKind, null_boundary,
};

#[path = "monitor_length.rs"]
mod length;
#[path = "monitor_state.rs"]
mod state;
use length::{LengthTrack, ShapeTrack, answer_chars, length_metrics};
pub use state::{FORMAT as STATE_FORMAT, MonitorState};

/// Metric id of the length monitor.
pub const LENGTH_METRIC: &str = "length_chars";
/// Metric id of the length-shape monitor (the same name as the fixed-sample shape test).
pub const LENGTH_SHAPE_METRIC: &str = "length_shape";
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
    /// Mean time between false alarms of the change detectors, in rounds
    /// (false_alarm_interval / interval); split across metrics inside.
    pub false_alarm_rounds: f64,
    /// Confidence of the baseline bounds that set the strata's null boundaries.
    pub null_confidence: NullConfidence,
}

impl MonitorSettings {
    /// The settings the daemon gives a target's monitor.
    pub fn for_target(margins: &Margins, target: &crate::config::Target) -> MonitorSettings {
        MonitorSettings {
            margins: margins.clone(),
            false_alarm_rounds: target.daemon.false_alarm_interval.as_secs_f64()
                / target.interval.as_secs_f64().max(1.0),
            null_confidence: NullConfidence::default(),
        }
    }
}

fn rate_margin(metric: Metric, m: &Margins) -> f64 {
    match metric {
        Metric::RefusalRate | Metric::MissedRefusalRate => m.refusal_points,
        Metric::EmptyRate => m.empty_points,
        Metric::StructuredFailureRate | Metric::StructuredKind(_) => m.structured_points,
        Metric::TaskFailureRate => m.task_failure_points,
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
    strata: StratifiedRate,
    /// The change detector's threshold (set at the first round).
    detector_c: Option<f64>,
    /// A change-detector incident is open (alarmed, not yet recovered).
    incident: bool,
}

pub use crate::telemetry::observer::MetricSnapshot;

/// The monitor of one target.
#[derive(Debug, Clone)]
pub struct TargetMonitor {
    expectations: Expectations,
    rates: Vec<RateTrack>,
    length: Option<LengthTrack>,
    threshold: f64,
    /// K × false-alarm interval in rounds; × a metric's observations per round (counted at
    /// its first round) gives its change-detector threshold c.
    detector_budget: f64,
    settings: MonitorSettings,
    /// Rounds that measured something.
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
            let mut per_probe: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
            for s in samples {
                if let Some(b) = bad(metric, s, &expectations) {
                    let e = per_probe
                        .entry((s.suite.clone(), format!("{}/{}", s.suite, s.probe_id)))
                        .or_default();
                    e.0 += u64::from(b);
                    e.1 += 1;
                }
            }
            let probes: Vec<ProbeCounts> = per_probe
                .into_iter()
                .map(|((suite, key), (x, n))| (suite, key, x, n))
                .collect();
            let (x, n) = probes
                .iter()
                .fold((0, 0), |(a, b), (_, _, x, n)| (a + x, b + n));
            if n == 0 {
                continue;
            }
            let margin = rate_margin(metric, margins);
            let p0 = null_boundary(StratumKind::Pooled, x, n, margin, settings.null_confidence);
            // The mixture is centred one margin above the null boundary (the smallest change
            // worth an alert) with PRIOR_EVENTS expected events' worth of weight there: close
            // to Wald's SPRT for that alternative, and a round of samples still carries larger
            // shifts past the threshold at once (docs/statistics.md, "Monitor").
            let p1 = (p0 + margin.max(0.01)).min(0.99);
            let prior = BetaPrior::centered(p1, PRIOR_EVENTS / p1);
            let Ok(eprocess) = BetaBinomialEProcess::new(p0, prior) else {
                continue;
            };
            let Some(strata) =
                StratifiedRate::new(&probes, margin, eprocess, settings.null_confidence)
            else {
                continue;
            };
            rates.push(RateTrack {
                metric,
                strata,
                detector_c: None,
                incident: false,
            });
        }
        let mut lengths: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in samples {
            if let Some(chars) = answer_chars(s) {
                lengths
                    .entry(format!("{}/{}", s.suite, s.probe_id))
                    .or_default()
                    .push(chars);
            }
        }
        for v in lengths.values_mut() {
            v.sort_by(f64::total_cmp);
        }
        let margin = (PLACEMENT_SLACK + margins.length_cliffs_delta / 2.0).min(0.45);
        // A share q of answers moved into the tails raises E[s] by about q/2 and the KS
        // distance by q/2 to q: half the fixed-sample shape margin is the spread that matters.
        let shape_margin = (PLACEMENT_SLACK + margins.length_shape_ks / 2.0).min(0.45);
        let length = match (
            lengths.is_empty(),
            RankEProcess::new(margin, Alternative::TwoSided),
            RankEProcess::new(shape_margin, Alternative::Greater),
        ) {
            (false, Ok(eprocess), Ok(shape)) => Some(LengthTrack {
                baseline: lengths,
                eprocess,
                margin,
                sum_u: 0.0,
                n: 0,
                shape: ShapeTrack {
                    eprocess: shape,
                    margin: shape_margin,
                    sum_s: 0.0,
                    outside: 0,
                    expected_outside: 0.0,
                },
                detector_c: None,
                recent: Default::default(),
                incident: (false, false),
            }),
            _ => None,
        };
        let k = rates.len() + length_metrics(&length);
        let threshold = k.max(1) as f64 / margins.alpha.clamp(1e-9, 0.5);
        let detector_budget = (k.max(1) as f64 * settings.false_alarm_rounds).max(2.0);
        TargetMonitor {
            expectations,
            rates,
            length,
            threshold,
            detector_budget,
            settings,
            rounds: 0,
        }
    }

    /// How many metrics are monitored (K).
    pub fn metric_count(&self) -> usize {
        self.rates.len() + length_metrics(&self.length)
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
                out.push((LENGTH_SHAPE_METRIC.into(), Observation::NoData));
            }
            return out;
        }
        self.rounds += 1;
        let keys: Vec<String> = samples
            .iter()
            .map(|s| format!("{}/{}", s.suite, s.probe_id))
            .collect();
        let mut out = Vec::new();
        for t in &mut self.rates {
            let outcomes: Vec<(&str, bool)> = samples
                .iter()
                .zip(&keys)
                .filter_map(|(s, k)| bad(t.metric, s, &self.expectations).map(|b| (k.as_str(), b)))
                .collect();
            if outcomes.is_empty() {
                out.push((t.metric.id(), Observation::NoData));
                continue;
            }
            // c in observations, as the earlier CUSUM's budget: the e-detector bound would allow
            // c in rounds, but that is ln(observations per round) nats less conservative and
            // measured false alarms with fresh baselines (docs/statistics.md, "Monitor").
            let c = *t
                .detector_c
                .get_or_insert((self.detector_budget * outcomes.len() as f64).max(2.0));
            t.strata.update(outcomes);
            out.push((
                t.metric.id(),
                read_rate(t, self.threshold, c, self.settings.margins.flip_min_change),
            ));
        }
        if let Some(l) = self.length.as_mut() {
            out.extend(l.observe(samples, self.threshold, self.detector_budget));
        }
        out
    }

    /// Every monitored metric's current reading.
    pub fn snapshot(&self) -> Vec<MetricSnapshot> {
        let mut out: Vec<MetricSnapshot> = self
            .rates
            .iter()
            .map(|t| {
                let pooled = t.strata.pooled();
                MetricSnapshot {
                    metric: t.metric.id(),
                    baseline: pooled.baseline_rate,
                    current: (pooled.trials > 0).then(|| pooled.episode_rate()),
                    null_bound: pooled.p0,
                    e_value: t.strata.log_e_value().exp(),
                    threshold: self.threshold,
                    samples: pooled.trials,
                }
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
            out.push(MetricSnapshot {
                metric: LENGTH_SHAPE_METRIC.into(),
                baseline: 0.5,
                current: (l.n > 0).then(|| l.shape.sum_s / l.n as f64),
                null_bound: 0.5 + l.shape.margin,
                e_value: l.shape.eprocess.e_value(),
                threshold: self.threshold,
                samples: l.n,
            });
        }
        out
    }

    /// What the monitor reads now, per metric, as stored after each round: the evidence as a
    /// natural log, which stays finite where the e-value itself overflows.
    pub fn readings(&self) -> Vec<crate::store::Reading> {
        let mut logs: Vec<f64> = self.rates.iter().map(|t| t.strata.log_e_value()).collect();
        if let Some(l) = &self.length {
            logs.push(l.eprocess.log_e_value());
            logs.push(l.shape.eprocess.log_e_value());
        }
        self.snapshot()
            .into_iter()
            .zip(logs)
            .map(|(s, log_e_value)| crate::store::Reading {
                metric: s.metric,
                log_e_value,
                threshold: s.threshold,
                current: s.current,
                samples: s.samples,
            })
            .collect()
    }

    /// Metric ids this monitor reports on.
    pub fn metric_ids(&self) -> Vec<String> {
        self.snapshot().into_iter().map(|s| s.metric).collect()
    }
}

fn rate(x: u64, n: u64) -> f64 {
    x as f64 / n.max(1) as f64
}

/// How a stratum is named in an alert.
fn stratum_label(s: &Stratum) -> String {
    match s.kind {
        StratumKind::Pooled => "all probes".into(),
        StratumKind::Suite => format!("suite {}", s.name),
        StratumKind::Probe => format!("probe {}", s.name),
    }
}

/// "probe s/p 62.0% since the change (30 samples) vs 10.0%" for each named stratum.
fn stratum_figures(named: &[&Stratum], detector: bool) -> Vec<String> {
    named
        .iter()
        .map(|s| {
            let (x, n) = if detector {
                s.since_change()
            } else {
                (s.events, s.trials)
            };
            format!(
                "{} {:.1}% {} vs {:.1}%",
                stratum_label(s),
                rate(x, n) * 100.0,
                if detector {
                    format!("since the change ({n} samples)")
                } else {
                    format!("({n} samples)")
                },
                s.baseline_rate * 100.0
            )
        })
        .collect()
}

/// Episode samples a probe needs before a move of its own rate is claimed as a flip: 0% → 100%
/// from one sample is noise at any temperature (as for `compare`'s flipped probes).
const FLIP_MIN_SAMPLES: u64 = 5;

/// Named probe strata first, then the probes that moved most in the bad direction from enough
/// samples; at most 5.
fn flipped_probes(strata: &StratifiedRate, named: &[&Stratum], flip: f64) -> Vec<String> {
    let mut flipped: Vec<String> = named
        .iter()
        .filter(|s| s.kind == StratumKind::Probe)
        .map(|s| s.name.clone())
        .collect();
    let mut moved: Vec<(f64, &str)> = strata
        .probes()
        .filter_map(|s| {
            let d = s.episode_rate() - s.baseline_rate;
            (s.trials >= FLIP_MIN_SAMPLES && d >= flip.min(0.34)).then_some((d, s.name.as_str()))
        })
        .collect();
    moved.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    for (_, k) in moved {
        if !flipped.iter().any(|f| f == k) {
            flipped.push(k.to_string());
        }
    }
    flipped.truncate(5);
    flipped
}

/// One rate metric's reading after its round was fed (see the module doc).
fn read_rate(t: &mut RateTrack, threshold: f64, detector_threshold: f64, flip: f64) -> Observation {
    // An open incident closes once every stratum that carried it is back inside its null.
    if t.incident
        && t.strata
            .carriers(true, detector_threshold.ln())
            .iter()
            .all(|s| {
                let (x, n) = s.recent();
                rate(x, n) < s.p0
            })
    {
        t.strata.restart_detector();
        t.incident = false;
    }
    // Exact sums only near a threshold (or 1, for a clear reading); otherwise their upper
    // bounds decide the same way.
    let (ue, ud) = t.strata.upper_bounds();
    let log_e = if ue >= 0.0 {
        t.strata.log_e_value()
    } else {
        ue
    };
    let log_d = if ud >= detector_threshold.ln() {
        t.strata.log_detector()
    } else {
        ud
    };
    let by_episode: Vec<&Stratum> = if log_e >= threshold.ln() {
        t.strata
            .carriers(false, threshold.ln())
            .into_iter()
            .filter(|s| s.episode_rate() >= s.baseline_rate + s.margin)
            .collect()
    } else {
        Vec::new()
    };
    let by_detector: Vec<&Stratum> = if log_d >= detector_threshold.ln() {
        t.strata
            .carriers(true, detector_threshold.ln())
            .into_iter()
            .filter(|s| {
                let (x, n) = s.since_change();
                n > 0 && rate(x, n) >= s.p0
            })
            .collect()
    } else {
        Vec::new()
    };
    if by_episode.is_empty() && by_detector.is_empty() {
        return if log_e < 0.0 && !t.incident {
            Observation::Clear
        } else {
            // Some evidence, not enough to alarm: neither fire nor resolve.
            Observation::NoData
        };
    }
    let detector = by_episode.is_empty();
    let named = if detector { &by_detector } else { &by_episode };
    let pooled = t.strata.pooled();
    let (rx, rn) = pooled.recent();
    let now = rate(rx, rn);
    let episode = pooled.episode_rate();
    let current = if detector { now } else { episode };
    let where_ = stratum_figures(named, detector);
    let flipped = flipped_probes(&t.strata, named, flip);
    let (value, bound) = if detector {
        (log_d.exp(), detector_threshold)
    } else {
        (log_e.exp(), threshold)
    };
    let ci = clopper_pearson(pooled.events, pooled.trials, 0.95).ok();
    let summary = format!(
        "{}: {:.1}% bad outcomes now (last {} rounds, {rn} samples), {:.1}% over the episode \
         ({} samples), {:.1}% in the baseline; {}: {}; carried by {}",
        t.metric.label(),
        now * 100.0,
        RECENT_ROUNDS,
        episode * 100.0,
        pooled.trials,
        pooled.baseline_rate * 100.0,
        if detector {
            "change detector"
        } else {
            "anytime-valid test"
        },
        crate::report::evidence(value, Some(bound)),
        where_.join(", ")
    );
    if detector {
        t.incident = true;
    }
    let pooled = t.strata.pooled();
    Observation::Breach(Evidence {
        summary,
        baseline: Some(pooled.baseline_rate),
        current: Some(current),
        effect: Some(current - pooled.baseline_rate),
        lower: ci.map(|c| c.lower),
        upper: ci.map(|c| c.upper),
        e_value: Some(value),
        threshold: Some(bound),
        samples: pooled.trials,
        flipped_probes: flipped,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::drift::tests::{Profile, synth};

    pub(in crate::daemon) fn settings() -> MonitorSettings {
        MonitorSettings {
            margins: Margins::default(),
            // 90 days of 10-minute rounds.
            false_alarm_rounds: 90.0 * 144.0,
            null_confidence: NullConfidence::default(),
        }
    }

    pub(in crate::daemon) fn breaches(obs: &[(String, Observation)]) -> Vec<String> {
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

    /// One round of `synth` samples with probe `p003` (a JSON task probe) always failing.
    fn broken_probe_round(seed: u64, per_probe: u32) -> Vec<Sample> {
        let mut v = synth(Profile::default(), seed, 20, per_probe);
        for s in &mut v {
            if s.probe_id == "p003"
                && let Some(m) = s.measurements.as_mut()
            {
                m.task_success = Some(false);
            }
        }
        v
    }

    #[test]
    fn one_broken_probe_mid_stream_raises_an_alert_that_names_it() {
        let baseline = synth(Profile::default(), 11, 20, 20);
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        for round in 0..500u64 {
            let obs = m.observe_round(&synth(Profile::default(), 20_000 + round, 20, 3));
            assert!(breaches(&obs).is_empty(), "quiet round {round}: {obs:?}");
        }
        let mut found = None;
        for round in 0..60u64 {
            let obs = m.observe_round(&broken_probe_round(30_000 + round, 3));
            if let Some((metric, Observation::Breach(ev))) = obs
                .iter()
                .find(|(_, o)| matches!(o, Observation::Breach(_)))
            {
                found = Some((round, metric.clone(), ev.clone()));
                break;
            }
        }
        let (round, metric, ev) = found.expect("no breach within 60 rounds");
        assert_eq!(metric, Metric::TaskFailureRate.id());
        assert_eq!(
            ev.flipped_probes.first().map(String::as_str),
            Some("json/p003")
        );
        assert!(ev.summary.contains("probe json/p003"), "{}", ev.summary);
        assert!(ev.summary.contains("now (last 5 rounds"), "{}", ev.summary);
        assert!(round < 40, "took {} rounds", round + 1);
    }

    #[test]
    fn a_jump_after_a_long_quiet_period_is_seen_within_three_rounds_quoting_the_rate_now() {
        let baseline = synth(
            Profile {
                truncation: 0.7,
                ..Profile::default()
            },
            13,
            20,
            20,
        );
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        let quiet = Profile {
            truncation: 0.7,
            ..Profile::default()
        };
        for round in 0..1000u64 {
            let obs = m.observe_round(&synth(quiet, 40_000 + round, 20, 3));
            assert!(breaches(&obs).is_empty(), "quiet round {round}: {obs:?}");
        }
        let jump = Profile {
            truncation: 1.0,
            ..Profile::default()
        };
        let mut at = None;
        for round in 0..3u64 {
            let obs = m.observe_round(&synth(jump, 50_000 + round, 20, 3));
            if let Some((metric, Observation::Breach(ev))) = obs
                .iter()
                .find(|(m, o)| m == "truncation_rate" && matches!(o, Observation::Breach(_)))
            {
                assert_eq!(metric, "truncation_rate");
                // The rate served now is quoted beside the (lower) episode figure.
                assert!(ev.current.unwrap() > 0.7, "{ev:?}");
                assert!(ev.summary.contains("over the episode"), "{}", ev.summary);
                at = Some(round);
                break;
            }
        }
        assert!(
            at.is_some(),
            "truncation 70 % -> 100 % not seen within 3 rounds"
        );
    }

    #[test]
    fn a_probe_is_claimed_as_flipped_only_from_enough_samples() {
        let probes: Vec<ProbeCounts> = (0..4)
            .map(|i| ("s".to_string(), format!("s/p{i}"), 0, 20))
            .collect();
        let mixture = BetaBinomialEProcess::new(0.2, BetaPrior::centered(0.23, 12.0)).unwrap();
        let mut strata =
            StratifiedRate::new(&probes, 0.03, mixture, NullConfidence::default()).unwrap();
        // p0 goes bad once, p1 five times; p2 and p3 stay good.
        strata.update([("s/p0", true), ("s/p2", false), ("s/p3", false)]);
        for _ in 0..FLIP_MIN_SAMPLES {
            strata.update([("s/p1", true)]);
        }
        assert_eq!(flipped_probes(&strata, &[], 0.5), ["s/p1"]);
    }
}
