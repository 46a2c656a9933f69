//! The length monitors of a target: `length_chars` (location) and `length_shape` (spread), both
//! on answers only, from each answer's placement among its probe's baseline answers.

use super::{Evidence, LENGTH_METRIC, LENGTH_SHAPE_METRIC, Observation, RankEProcess, Sample};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub(super) struct LengthTrack {
    pub(super) baseline: BTreeMap<String, Vec<f64>>,
    pub(super) eprocess: RankEProcess,
    pub(super) margin: f64,
    pub(super) sum_u: f64,
    pub(super) n: u64,
    pub(super) shape: ShapeTrack,
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
/// changed: the rank r is uniform on 0..=n (exchangeability).
fn spread_centre(n: usize) -> f64 {
    let n = n.max(1) as f64;
    let total: f64 = (0..=n as u64)
        .map(|r| (2.0 * r as f64 / n - 1.0).abs())
        .sum();
    (total / (n + 1.0)).max(0.5)
}

/// The share of placements r/n (r uniform on 0..=n) below 0.1 or above 0.9: what no change
/// gives for "beyond the baseline's p10 or p90".
fn outside_share(n: usize) -> f64 {
    let nf = n.max(1) as f64;
    let count = (0..=n.max(1) as u64)
        .filter(|&r| {
            let u = r as f64 / nf;
            !(0.1..=0.9).contains(&u)
        })
        .count();
    count as f64 / (nf + 1.0)
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
    /// Feeds a round's answers to the location and shape e-processes and reads both.
    pub(super) fn observe(
        &mut self,
        samples: &[Sample],
        threshold: f64,
    ) -> [(String, Observation); 2] {
        let mut n = 0;
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
            let spread = (2.0 * u - 1.0).abs() * 0.5 / spread_centre(base.len());
            let shape = &mut self.shape;
            shape.eprocess.update_placement(spread);
            shape.sum_s += spread;
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
        [
            (LENGTH_METRIC.into(), self.read_location(threshold)),
            (LENGTH_SHAPE_METRIC.into(), self.read_shape(threshold)),
        ]
    }

    fn read_location(&self, threshold: f64) -> Observation {
        let mean = self.sum_u / self.n as f64;
        let e = self.eprocess.e_value();
        let breach = (mean - 0.5).abs() > self.margin;
        reading(e, threshold, breach, mean, self.n, || {
            format!(
                "Length (chars): mean placement {mean:.2} among baseline answers of the same \
                 probe (0.5 = unchanged; {} answers; {})",
                self.n,
                crate::report::evidence(e, Some(threshold))
            )
        })
    }

    fn read_shape(&self, threshold: f64) -> Observation {
        let shape = &self.shape;
        let mean = shape.sum_s / self.n as f64;
        let e = shape.eprocess.e_value();
        let location = self.sum_u / self.n as f64;
        let breach = mean - 0.5 > shape.margin && (location - 0.5).abs() <= self.margin;
        let pct = |x: f64| 100.0 * x / self.n as f64;
        reading(e, threshold, breach, mean, self.n, || {
            format!(
                "Length shape (chars): {:.0} % of answers beyond their probe's baseline p10 or \
                 p90, {:.0} % if unchanged (mean spread {mean:.2}, 0.5 = unchanged; {} answers; \
                 {})",
                pct(shape.outside as f64),
                pct(shape.expected_outside),
                self.n,
                crate::report::evidence(e, Some(threshold))
            )
        })
    }
}

/// A length metric's reading: a breach when the evidence reaches the threshold and the effect
/// is practically large (`breach`), clear when the data favour the null (e < 1), otherwise no
/// data (neither fire nor resolve on weak evidence). Both metrics are centred on ½.
fn reading(
    e: f64,
    threshold: f64,
    breach: bool,
    mean: f64,
    n: u64,
    summary: impl FnOnce() -> String,
) -> Observation {
    if e >= threshold && breach {
        Observation::Breach(Evidence {
            summary: summary(),
            baseline: Some(0.5),
            current: Some(mean),
            effect: Some(mean - 0.5),
            lower: None,
            upper: None,
            e_value: Some(e),
            threshold: Some(threshold),
            samples: n,
            flipped_probes: Vec::new(),
        })
    } else if e < 1.0 {
        Observation::Clear
    } else {
        Observation::NoData
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
