//! The length monitors of a target: `length_chars` (location) and `length_shape` (spread), both
//! on answers only, from each answer's placement among its probe's baseline answers.

//!
//! Each has two routes to an alarm, as the rates do: the episode e-process (threshold K/α) and
//! its bets' e-CUSUMs (`RankEProcess::log_detector`, threshold c = K × the false-alarm interval
//! in rounds × the answers of a round, so a mean time to a false alarm of at least K × the
//! interval), which find a change late in a long quiet episode as fast as one at its start. A
//! detector alarm needs the last rounds' mean to be past the margin; the incident closes, and
//! the detector starts again, once that mean is back inside.

use super::RECENT_ROUNDS;
use super::{Evidence, LENGTH_METRIC, LENGTH_SHAPE_METRIC, Observation, RankEProcess, Sample};
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone)]
pub(super) struct LengthTrack {
    pub(super) baseline: BTreeMap<String, Vec<f64>>,
    pub(super) eprocess: RankEProcess,
    pub(super) margin: f64,
    pub(super) sum_u: f64,
    pub(super) n: u64,
    pub(super) shape: ShapeTrack,
    /// The change detectors' threshold in answers (set at the first round that measured).
    pub(super) detector_c: Option<f64>,
    /// The last rounds (at most [`RECENT_ROUNDS`]): answers, Σu, Σs.
    pub(super) recent: VecDeque<(u64, f64, f64)>,
    /// A change-detector incident is open, of the location and of the shape.
    pub(super) incident: (bool, bool),
}

/// The length-shape monitor: how far answers sit from the middle of their probe's baseline.
/// With u an answer's placement among its probe's n baseline answers, the spread
/// s = |2u − 1| · ½ / c_n (c_n = E|2u − 1| when nothing changed, `spread_centre`) has mean ½
/// under no change whatever the baseline size (at most ½ with ties: mid-ranks pull toward the
/// centre and |2u − 1| is convex), and grows when answers move into both tails at once — a
/// change of shape that leaves the mean placement, and so [`LENGTH_METRIC`], where it was. It
/// is tested one-sided with the same betting e-process (Waudby-Smith & Ramdas 2024) against
/// E[s] <= ½ + slack + margin. A shift of every answer also spreads them from the middle; that
/// is the location metric's alert, so shape breaches only while the mean placement stays inside
/// the location margin (a condition that can only remove alarms, so the error bound holds).
#[derive(Debug, Clone)]
pub(super) struct ShapeTrack {
    pub(super) eprocess: RankEProcess,
    pub(super) margin: f64,
    pub(super) sum_s: f64,
    /// Answers below the baseline's p10 or above its p90 of the same probe …
    pub(super) outside: u64,
    /// … and how many of them no change would give (summed per answer over its probe's
    /// baseline size).
    pub(super) expected_outside: f64,
}

/// E|2u − 1| for a new answer's placement u = r/n among n baseline answers when nothing
/// changed: the rank r is uniform on 0..=n (exchangeability). Σᵣ |2r − n| / (n(n + 1)) in closed
/// form, (n + 2) / (2(n + 1)) for even n and (n + 1) / 2n for odd n, so each answer costs O(1).
fn spread_centre(n: usize) -> f64 {
    let n = n.max(1) as f64;
    if n % 2.0 == 0.0 {
        (n + 2.0) / (2.0 * (n + 1.0))
    } else {
        (n + 1.0) / (2.0 * n)
    }
}

/// The share of placements r/n (r uniform on 0..=n) below 0.1 or above 0.9: what no change
/// gives for "beyond the baseline's p10 or p90". r/n < 0.1 ⇔ 10r < n, for ⌈n / 10⌉ ranks,
/// and as many above 0.9 by symmetry.
fn outside_share(n: usize) -> f64 {
    let n = n.max(1);
    (2 * n.div_ceil(10)) as f64 / (n + 1) as f64
}

/// Whether a sample's length is an answer's: refusals and empty responses are set apart
/// (their own rates count them), as in the fixed-sample verdicts.
pub(super) fn answer_chars(s: &Sample) -> Option<f64> {
    if s.error.is_some() {
        return None;
    }
    let m = s.measurements.as_ref()?;
    (!m.refusal && !m.empty).then_some(f64::from(m.chars))
}

/// The length metrics a monitor carries: location and shape, or none.
pub(super) fn length_metrics(length: &Option<LengthTrack>) -> usize {
    2 * usize::from(length.is_some())
}

impl LengthTrack {
    /// Feeds a round's answers to the location and shape e-processes and reads both;
    /// `detector_budget` × the round's answers sets the change detectors' threshold.
    pub(super) fn observe(
        &mut self,
        samples: &[Sample],
        threshold: f64,
        detector_budget: f64,
    ) -> [(String, Observation); 2] {
        let mut n = 0;
        let (mut round_u, mut round_s) = (0.0, 0.0);
        for s in samples {
            let (Some(chars), Some(base)) = (
                answer_chars(s),
                self.baseline.get(&format!("{}/{}", s.suite, s.probe_id)),
            ) else {
                continue;
            };
            if base.is_empty() {
                continue;
            }
            let u = crate::stats::placement(base, chars);
            self.eprocess.update_placement(u);
            self.sum_u += u;
            round_u += u;
            let spread = (2.0 * u - 1.0).abs() * 0.5 / spread_centre(base.len());
            let shape = &mut self.shape;
            shape.eprocess.update_placement(spread);
            shape.sum_s += spread;
            round_s += spread;
            shape.outside += u64::from(!(0.1..=0.9).contains(&u));
            shape.expected_outside += outside_share(base.len());
            self.n += 1;
            n += 1;
        }
        if n == 0 {
            return [
                (LENGTH_METRIC.into(), Observation::NoData),
                (LENGTH_SHAPE_METRIC.into(), Observation::NoData),
            ];
        }
        if self.recent.len() == RECENT_ROUNDS {
            self.recent.pop_front();
        }
        self.recent.push_back((n, round_u, round_s));
        let c = *self
            .detector_c
            .get_or_insert((detector_budget * n as f64).max(2.0));
        [
            (LENGTH_METRIC.into(), self.read_location(threshold, c)),
            (LENGTH_SHAPE_METRIC.into(), self.read_shape(threshold, c)),
        ]
    }

    /// The last rounds' mean placement and mean spread.
    fn recent_means(&self) -> (f64, f64) {
        let (n, u, s) = self
            .recent
            .iter()
            .fold((0, 0.0, 0.0), |(n, u, s), r| (n + r.0, u + r.1, s + r.2));
        let n = n.max(1) as f64;
        (u / n, s / n)
    }

    fn read_location(&mut self, threshold: f64, c: f64) -> Observation {
        let (now, _) = self.recent_means();
        let moved = |m: f64| (m - 0.5).abs() > self.margin;
        if self.incident.0 && !moved(now) {
            self.eprocess.restart_detector();
            self.incident.0 = false;
        }
        let mean = self.sum_u / self.n as f64;
        let e = self.eprocess.e_value();
        let by_episode = e >= threshold && moved(mean);
        let by_detector = !by_episode && self.eprocess.log_detector() >= c.ln() && moved(now);
        self.incident.0 |= by_detector;
        let route = Route::of(by_episode, by_detector, e, threshold, &self.eprocess, c);
        let current = if by_detector { now } else { mean };
        reading(route, e < 1.0 && !self.incident.0, current, self.n, |r| {
            format!(
                "Length (chars): mean placement {current:.2} among baseline answers of the same \
                 probe {} (0.5 = unchanged; {} answers; {r})",
                if by_detector {
                    "over the last rounds"
                } else {
                    "over the episode"
                },
                self.n,
            )
        })
    }

    fn read_shape(&mut self, threshold: f64, c: f64) -> Observation {
        let (now_u, now_s) = self.recent_means();
        let located = |u: f64| (u - 0.5).abs() <= self.margin;
        let shape = &mut self.shape;
        let spread = |s: f64| s - 0.5 > shape.margin;
        if self.incident.1 && !spread(now_s) {
            shape.eprocess.restart_detector();
            self.incident.1 = false;
        }
        let mean = shape.sum_s / self.n as f64;
        let e = shape.eprocess.e_value();
        let by_episode = e >= threshold && spread(mean) && located(self.sum_u / self.n as f64);
        let by_detector = !by_episode
            && shape.eprocess.log_detector() >= c.ln()
            && spread(now_s)
            && located(now_u);
        self.incident.1 |= by_detector;
        let route = Route::of(by_episode, by_detector, e, threshold, &shape.eprocess, c);
        let current = if by_detector { now_s } else { mean };
        let pct = |x: f64| 100.0 * x / self.n as f64;
        let (outside, expected) = (pct(shape.outside as f64), pct(shape.expected_outside));
        reading(route, e < 1.0 && !self.incident.1, current, self.n, |r| {
            format!(
                "Length shape (chars): {outside:.0} % of answers beyond their probe's baseline \
                 p10 or p90 over the episode, {expected:.0} % if unchanged (mean spread \
                 {current:.2} {}, 0.5 = unchanged; {} answers; {r})",
                if by_detector {
                    "over the last rounds"
                } else {
                    "over the episode"
                },
                self.n,
            )
        })
    }
}

/// Which route alarmed, with its evidence and threshold.
enum Route {
    None,
    Alarm { value: f64, bound: f64 },
}

impl Route {
    fn of(
        by_episode: bool,
        by_detector: bool,
        e: f64,
        threshold: f64,
        process: &RankEProcess,
        c: f64,
    ) -> Route {
        if by_episode {
            Route::Alarm {
                value: e,
                bound: threshold,
            }
        } else if by_detector {
            Route::Alarm {
                value: process.log_detector().exp(),
                bound: c,
            }
        } else {
            Route::None
        }
    }
}

/// A length metric's reading: a breach when a route alarmed, clear when the data favour the
/// null and no incident is open, otherwise no data (neither fire nor resolve on weak evidence).
/// Both metrics are centred on ½.
fn reading(
    route: Route,
    clear: bool,
    current: f64,
    n: u64,
    summary: impl FnOnce(String) -> String,
) -> Observation {
    match route {
        Route::Alarm { value, bound } => Observation::Breach(Evidence {
            summary: summary(crate::report::evidence(value, Some(bound))),
            baseline: Some(0.5),
            current: Some(current),
            effect: Some(current - 0.5),
            lower: None,
            upper: None,
            e_value: Some(value),
            threshold: Some(bound),
            samples: n,
            flipped_probes: Vec::new(),
        }),
        Route::None if clear => Observation::Clear,
        Route::None => Observation::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::super::TargetMonitor;
    use super::super::tests::{breaches, settings};
    use super::*;
    use crate::drift::Expectations;
    use crate::drift::tests::{Profile, synth};

    /// Answers of a `synth` round made bimodal: every other answer twice as long, the rest
    /// half as long, so the median placement stays where it was.
    fn bimodal(mut samples: Vec<Sample>, factor: f64) -> Vec<Sample> {
        for (i, s) in samples.iter_mut().enumerate() {
            if let Some(m) = s.measurements.as_mut()
                && !m.refusal
            {
                let f = if i % 2 == 0 { factor } else { 1.0 / factor };
                m.chars = (f64::from(m.chars) * f).round() as u32;
            }
        }
        samples
    }

    #[test]
    fn a_bimodal_change_with_the_same_median_breaches_length_shape_only() {
        let baseline = synth(Profile::default(), 11, 20, 20);
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        let mut fired = None;
        for round in 0..10u64 {
            let obs = m.observe_round(&bimodal(synth(Profile::default(), 300 + round, 20, 1), 2.0));
            let b = breaches(&obs);
            assert!(
                !b.contains(&LENGTH_METRIC.to_string()),
                "round {round}: {obs:?}"
            );
            if let Some((_, Observation::Breach(ev))) =
                obs.iter().find(|(id, _)| id == LENGTH_SHAPE_METRIC)
            {
                fired = Some((round, ev.clone()));
                break;
            }
        }
        let (round, ev) = fired.expect("length_shape never breached");
        assert!(round <= 3, "took {} rounds", round + 1);
        assert!(ev.current.unwrap() > 0.8, "{ev:?}");
        // The words say how many answers left the baseline's middle, and how many would have.
        assert!(
            ev.summary
                .contains("of answers beyond their probe's baseline p10"),
            "{}",
            ev.summary
        );
        let snap = m.snapshot();
        let shape = snap
            .iter()
            .find(|s| s.metric == LENGTH_SHAPE_METRIC)
            .unwrap();
        let location = snap.iter().find(|s| s.metric == LENGTH_METRIC).unwrap();
        assert!(
            (location.current.unwrap() - 0.5).abs() < 0.1,
            "{location:?}"
        );
        assert!(shape.e_value >= m.threshold());
    }

    #[test]
    fn a_longer_answer_moves_length_not_shape_and_refusals_are_not_lengths() {
        // ×1.5 moves every answer up: the location test fires; spread stays under its margin
        // for long enough that the location alert comes first.
        let baseline = synth(Profile::default(), 12, 20, 20);
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        let longer = Profile {
            median_chars: 600.0,
            ..Profile::default()
        };
        let obs = (0..10u64)
            .map(|r| m.observe_round(&synth(longer, 400 + r, 20, 1)))
            .find(|obs| !breaches(obs).is_empty())
            .expect("no breach");
        assert_eq!(breaches(&obs), vec![LENGTH_METRIC.to_string()], "{obs:?}");
        // Refusals (60 chars) are set apart: a model refusing more is not "shorter".
        let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
        let refusing = Profile {
            refusal: 0.3,
            ..Profile::default()
        };
        for r in 0..10u64 {
            let obs = m.observe_round(&synth(refusing, 500 + r, 20, 1));
            let b = breaches(&obs);
            assert!(
                !b.contains(&LENGTH_METRIC.to_string())
                    && !b.contains(&LENGTH_SHAPE_METRIC.to_string()),
                "round {r}: {obs:?}"
            );
        }
    }

    #[test]
    fn length_changes_after_a_long_quiet_episode_are_seen_within_a_few_rounds() {
        let baseline = synth(Profile::default(), 13, 20, 20);
        let longer = Profile {
            median_chars: 600.0,
            ..Profile::default()
        };
        for (name, metric) in [("longer", LENGTH_METRIC), ("bimodal", LENGTH_SHAPE_METRIC)] {
            let mut m = TargetMonitor::from_samples(&baseline, Expectations::default(), settings());
            for r in 0..432u64 {
                let obs = m.observe_round(&synth(Profile::default(), 10_000 + r, 20, 1));
                assert!(
                    breaches(&obs).is_empty(),
                    "{name}, quiet round {r}: {obs:?}"
                );
            }
            let fired = (0..20u64).find_map(|r| {
                let round = if name == "longer" {
                    synth(longer, 20_000 + r, 20, 1)
                } else {
                    bimodal(synth(Profile::default(), 20_000 + r, 20, 1), 2.0)
                };
                let obs = m.observe_round(&round);
                obs.into_iter()
                    .find(|(id, o)| id == metric && matches!(o, Observation::Breach(_)))
                    .map(|(_, o)| (r, o))
            });
            let (r, o) = fired.unwrap_or_else(|| panic!("{name}: no {metric} alarm"));
            assert!(r <= 5, "{name}: {} rounds after three quiet days", r + 1);
            let Observation::Breach(ev) = o else {
                unreachable!()
            };
            assert!(
                ev.summary.contains("over the last rounds"),
                "{}",
                ev.summary
            );
        }
    }

    #[test]
    fn the_spread_is_centred_for_every_baseline_size() {
        assert!((spread_centre(20) - 0.5238).abs() < 1e-3);
        assert!((spread_centre(5) - 0.6).abs() < 1e-12);
        assert!((outside_share(20) - 4.0 / 21.0).abs() < 1e-12);
        // Under no change the scaled spread has mean exactly 1/2 (rank uniform on 0..=n).
        for n in [1usize, 2, 5, 19, 20, 200] {
            let c = spread_centre(n);
            let mean: f64 = (0..=n)
                .map(|r| (2.0 * r as f64 / n as f64 - 1.0).abs() * 0.5 / c)
                .sum::<f64>()
                / (n + 1) as f64;
            assert!((mean - 0.5).abs() < 1e-12, "n {n}: {mean}");
        }
    }
}
