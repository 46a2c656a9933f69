//! Stratified evidence for one rate metric of the monitor: the whole target (pooled), each suite
//! and each probe, combined so that the false-alarm budget of the metric still holds. Pure: counts
//! in, e-values out.
//!
//! Two statistics, each a weighted average over strata with fixed weights summing to 1:
//!
//! - **Episode e-value** (from the start of the episode, threshold K/α): the pooled beta-binomial
//!   mixture e-process carries weight [`EPISODE_POOLED`]; the rest is split between the suites
//!   and the probes, each stratum testing its own null `rate <= p0ₛ` with a grid-mixture e-process
//!   ([`ShiftGrid`]). A weighted average of e-processes is an e-process for the intersection of
//!   their nulls (linearity of expectation; Vovk & Wang 2021, "E-values: calibration, combination
//!   and applications"), so Ville's inequality still bounds the chance of any false alarm in the
//!   episode by α/K per metric.
//! - **Change detector** (threshold c = K × false-alarm interval in rounds): the grid-averaged
//!   e-CUSUM of every stratum, weighted [`DETECTOR_POOLED`] for the pooled stratum and the rest
//!   split between suites and probes. A weighted average of e-detectors is an e-detector (Shin,
//!   Ramdas & Rinaldo 2024), so the mean number of rounds before a false alarm is still at least
//!   c: each metric keeps its share 1/K of the budget.
//!
//! A regression confined to a few probes moves their strata's statistics by orders of magnitude
//! while the pooled rate barely moves; the weights (1/(2·probes) of the strata share each) cost
//! ln(2·probes / share) nats of extra evidence per probe, paid once, instead of being diluted into
//! the pooled rate. The strata that carry the combined statistic are named in the alert.

use crate::stats::clopper_pearson;
use crate::stats::sequential::{
    BetaBinomialEProcess, BetaBinomialState, ShiftGrid, ShiftGridState, log_sum_exp,
};
use std::collections::{BTreeMap, VecDeque};

/// Weight of the pooled mixture e-process in the episode e-value. Most of the weight stays on the
/// pooled test so that a shift of the whole target is found as fast as before (the threshold
/// rises by ln(1/0.9) = 0.1 nats, about 2 % more samples; BENCHMARKS.md, "Detection").
pub const EPISODE_POOLED: f64 = 0.9;
/// Weight of the pooled e-CUSUM in the change detector. Mid-stream the detector is the only
/// path, so the strata get half: ln 2 nats on a threshold of ~14 for pooled shifts.
pub const DETECTOR_POOLED: f64 = 0.5;
/// Smallest margin of a probe stratum. A probe's baseline holds ~20 samples, which pin its rate
/// only to within 10–20 points; with the metric's own margin (1–3 points) the baseline's
/// sampling error alone pushes a few probes per hundred streams outside their null (measured:
/// 5 % of streams with 70 % truncation false-alarmed within three quiet days). A probe stratum
/// is there to catch a probe that broke, not a drift of a few points, which the pooled and
/// suite strata see.
pub const PROBE_MARGIN: f64 = 0.10;
/// Confidence (two-sided) of the Clopper–Pearson bound on a stratum's baseline rate that sets
/// its null boundary, by kind of stratum. The e-processes are valid only while the boundary sits
/// at or above the true rate, so the chance that a baseline saw far fewer bad outcomes than the
/// model produces (3 task failures in 200 samples from a suite failing 10 %, no JSON failure in
/// 200 samples at 3.9 %) is paid on top of α at every new baseline — measured: 2 false alarms in
/// 3,000 target-days with a fresh baseline every day at 95 %; and with the probe strata at 95 %,
/// a probe whose 20 baseline samples held no structured failure at a true 32.8 % (BENCHMARKS.md,
/// "Detection"). Every stratum therefore uses 99 %. A higher level costs sensitivity where
/// baselines are small (99.8 % halved the share of one-suite regressions caught within 6 h).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NullConfidence {
    pub pooled: f64,
    pub suite: f64,
    pub probe: f64,
}

impl Default for NullConfidence {
    fn default() -> Self {
        NullConfidence {
            pooled: 0.99,
            suite: 0.99,
            probe: 0.99,
        }
    }
}

impl NullConfidence {
    fn of(&self, kind: StratumKind) -> f64 {
        match kind {
            StratumKind::Pooled => self.pooled,
            StratumKind::Suite => self.suite,
            StratumKind::Probe => self.probe,
        }
    }
}

/// Rounds in the "now" window quoted in alerts and used to judge recovery.
pub const RECENT_ROUNDS: usize = 5;

/// What a stratum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StratumKind {
    Pooled,
    Suite,
    Probe,
}

/// One stratum: its null, its statistics and its counts.
#[derive(Debug, Clone)]
pub struct Stratum {
    pub kind: StratumKind,
    /// "all probes", the suite name, or `suite/probe`.
    pub name: String,
    pub baseline_rate: f64,
    /// Null boundary: upper Clopper–Pearson bound of the baseline + margin ([`null_boundary`]).
    pub p0: f64,
    /// The stratum's practical margin (the metric's; at least [`PROBE_MARGIN`] for a probe).
    pub margin: f64,
    grid: ShiftGrid,
    ln_w_episode: f64,
    ln_w_detector: f64,
    pub events: u64,
    pub trials: u64,
    recent: VecDeque<(u64, u64)>,
}

impl Stratum {
    fn new(
        kind: StratumKind,
        name: String,
        (x, n): (u64, u64),
        margin: f64,
        conf: NullConfidence,
    ) -> Option<Stratum> {
        if n == 0 {
            return None;
        }
        let p0 = null_boundary(kind, x, n, margin, conf);
        let grid = ShiftGrid::new(p0, margin.max(0.01)).ok()?;
        Some(Stratum {
            kind,
            name,
            baseline_rate: x as f64 / n as f64,
            p0,
            margin,
            grid,
            ln_w_episode: f64::NEG_INFINITY,
            ln_w_detector: f64::NEG_INFINITY,
            events: 0,
            trials: 0,
            recent: VecDeque::new(),
        })
    }

    /// Bad-outcome rate over the episode.
    pub fn episode_rate(&self) -> f64 {
        self.events as f64 / self.trials.max(1) as f64
    }

    /// (events, trials) over the last [`RECENT_ROUNDS`] rounds.
    pub fn recent(&self) -> (u64, u64) {
        self.recent
            .iter()
            .fold((0, 0), |(a, b), (x, n)| (a + x, b + n))
    }

    /// (events, trials) since the change point estimated by the e-CUSUM.
    pub fn since_change(&self) -> (u64, u64) {
        self.grid.since_change()
    }
}

/// A stratum's null boundary p0: the upper Clopper–Pearson bound of its baseline rate (at
/// the [`NullConfidence`] of its kind) plus its margin, capped at 0.98.
pub fn null_boundary(kind: StratumKind, x: u64, n: u64, margin: f64, conf: NullConfidence) -> f64 {
    let upper = clopper_pearson(x, n, conf.of(kind))
        .map(|i| i.upper)
        .unwrap_or(1.0);
    (upper + margin).min(0.98)
}

/// The running part of a stratum, named so that it is restored into the same stratum.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StratumState {
    pub name: String,
    pub grid: ShiftGridState,
    pub events: u64,
    pub trials: u64,
    /// (events, trials) of the last rounds, oldest first.
    pub recent: Vec<(u64, u64)>,
}

/// The running part of a [`StratifiedRate`]; its nulls and weights follow from the baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StratifiedState {
    pub mixture: BetaBinomialState,
    pub strata: Vec<StratumState>,
}

/// Baseline counts of one probe: (suite, probe key `suite/probe`, events, trials).
pub type ProbeCounts = (String, String, u64, u64);

/// The stratified statistics of one rate metric.
#[derive(Debug, Clone)]
pub struct StratifiedRate {
    mixture: BetaBinomialEProcess,
    ln_w_mixture: f64,
    /// Index 0 is the pooled stratum.
    strata: Vec<Stratum>,
    probe_index: BTreeMap<String, usize>,
    /// Suite stratum of each probe stratum (by index).
    suite_of: BTreeMap<usize, usize>,
}

impl StratifiedRate {
    /// Strata from the baseline's per-probe counts; `mixture` is the pooled episode e-process.
    /// None when the baseline has no sample for the metric.
    pub fn new(
        probes: &[ProbeCounts],
        margin: f64,
        mixture: BetaBinomialEProcess,
        conf: NullConfidence,
    ) -> Option<StratifiedRate> {
        let (x, n) = probes
            .iter()
            .fold((0, 0), |(a, b), (_, _, x, n)| (a + x, b + n));
        let pooled = Stratum::new(
            StratumKind::Pooled,
            "all probes".into(),
            (x, n),
            margin,
            conf,
        )?;
        let mut suites: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (suite, _, x, n) in probes {
            let e = suites.entry(suite.as_str()).or_default();
            e.0 += x;
            e.1 += n;
        }
        let mut strata = vec![pooled];
        let mut suite_index = BTreeMap::new();
        if suites.len() > 1 {
            for (name, (x, n)) in &suites {
                if let Some(s) =
                    Stratum::new(StratumKind::Suite, (*name).into(), (*x, *n), margin, conf)
                {
                    suite_index.insert(name.to_string(), strata.len());
                    strata.push(s);
                }
            }
        }
        let mut probe_index = BTreeMap::new();
        let mut suite_of = BTreeMap::new();
        let probe_margin = margin.max(PROBE_MARGIN);
        for (suite, key, x, n) in probes {
            if let Some(s) = Stratum::new(
                StratumKind::Probe,
                key.clone(),
                (*x, *n),
                probe_margin,
                conf,
            ) {
                if let Some(&si) = suite_index.get(suite) {
                    suite_of.insert(strata.len(), si);
                }
                probe_index.insert(key.clone(), strata.len());
                strata.push(s);
            }
        }
        let n_suites = suite_index.len();
        let n_probes = probe_index.len();
        // The strata share: split evenly between suites and probes (all to probes with one
        // suite), evenly within each.
        let share = |pooled: f64, kind: StratumKind| -> f64 {
            let rest = 1.0 - pooled;
            match kind {
                StratumKind::Pooled => pooled,
                StratumKind::Suite => rest / 2.0 / n_suites.max(1) as f64,
                StratumKind::Probe if n_suites == 0 => rest / n_probes.max(1) as f64,
                StratumKind::Probe => rest / 2.0 / n_probes.max(1) as f64,
            }
        };
        for s in &mut strata {
            // The pooled stratum's episode weight goes to the beta-binomial mixture instead.
            if s.kind != StratumKind::Pooled {
                s.ln_w_episode = share(EPISODE_POOLED, s.kind).ln();
            }
            s.ln_w_detector = share(DETECTOR_POOLED, s.kind).ln();
        }
        // With no strata besides the pooled one, the pooled tests take all the weight.
        let alone = strata.len() == 1;
        if alone {
            strata[0].ln_w_detector = 0.0;
        }
        Some(StratifiedRate {
            mixture,
            ln_w_mixture: if alone { 0.0 } else { EPISODE_POOLED.ln() },
            strata,
            probe_index,
            suite_of,
        })
    }

    /// Feeds one round: (probe key, bad outcome) per applicable sample.
    pub fn update<'a>(&mut self, outcomes: impl IntoIterator<Item = (&'a str, bool)>) {
        let mut counts = vec![(0u64, 0u64); self.strata.len()];
        for (key, bad) in outcomes {
            let mut add = |i: usize| {
                counts[i].0 += u64::from(bad);
                counts[i].1 += 1;
            };
            add(0);
            if let Some(&p) = self.probe_index.get(key) {
                add(p);
                if let Some(&s) = self.suite_of.get(&p) {
                    add(s);
                }
            }
        }
        self.mixture.update_counts(counts[0].0, counts[0].1);
        for (s, (x, n)) in self.strata.iter_mut().zip(counts) {
            if n == 0 {
                continue;
            }
            s.grid.update_counts(x, n);
            s.events += x;
            s.trials += n;
            s.recent.push_back((x, n));
            while s.recent.len() > RECENT_ROUNDS {
                s.recent.pop_front();
            }
        }
    }

    /// ln of each stratum's weighted term in the episode e-value (pooled: the mixture).
    fn episode_terms(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        self.strata.iter().enumerate().map(|(i, s)| {
            if i == 0 {
                self.ln_w_mixture + self.mixture.log_e_value()
            } else {
                s.ln_w_episode + s.grid.log_e_value()
            }
        })
    }

    fn detector_terms(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        self.strata
            .iter()
            .map(|s| s.ln_w_detector + s.grid.log_detector())
    }

    /// Upper bounds of ln of the combined episode e-value and change detector: the largest
    /// weighted term plus ln(number of terms), from each stratum's largest grid member.
    pub fn upper_bounds(&self) -> (f64, f64) {
        let ln_n = (self.strata.len() as f64).ln();
        let (mut e, mut d) = (
            self.ln_w_mixture + self.mixture.log_e_value(),
            f64::NEG_INFINITY,
        );
        for (i, s) in self.strata.iter().enumerate() {
            let (ue, ud) = s.grid.upper_bounds();
            if i > 0 {
                e = e.max(s.ln_w_episode + ue);
            }
            d = d.max(s.ln_w_detector + ud);
        }
        (e + ln_n, d + ln_n)
    }

    /// ln of the combined episode e-value.
    pub fn log_e_value(&self) -> f64 {
        log_sum_exp(self.episode_terms())
    }

    /// ln of the combined change detector.
    pub fn log_detector(&self) -> f64 {
        log_sum_exp(self.detector_terms())
    }

    /// Strata whose weighted term reaches a hundredth of the combined statistic or of the
    /// threshold (ln `log_threshold`), largest first, at most 5: those that carry an alarm,
    /// including a second broken probe whose evidence is strong but smaller than the first's.
    pub fn carriers(&self, detector: bool, log_threshold: f64) -> Vec<&Stratum> {
        let terms: Vec<f64> = if detector {
            self.detector_terms().collect()
        } else {
            self.episode_terms().collect()
        };
        let total = log_sum_exp(terms.iter().copied());
        let mut idx: Vec<usize> = (0..terms.len())
            .filter(|&i| terms[i] >= total.min(log_threshold) - 100f64.ln())
            .collect();
        idx.sort_by(|&a, &b| terms[b].total_cmp(&terms[a]));
        idx.into_iter().take(5).map(|i| &self.strata[i]).collect()
    }

    /// Forgets the change detector's evidence (the incident is over).
    pub fn restart_detector(&mut self) {
        for s in &mut self.strata {
            s.grid.restart_detector();
        }
    }

    /// The pooled stratum.
    pub fn pooled(&self) -> &Stratum {
        &self.strata[0]
    }

    /// The pooled episode e-process.
    pub fn mixture(&self) -> &BetaBinomialEProcess {
        &self.mixture
    }

    /// Every stratum, the pooled one first.
    pub fn all(&self) -> impl Iterator<Item = &Stratum> {
        self.strata.iter()
    }

    /// The probe strata.
    pub fn probes(&self) -> impl Iterator<Item = &Stratum> {
        self.strata.iter().filter(|s| s.kind == StratumKind::Probe)
    }

    /// What [`Self::restore`] needs to continue where these statistics are.
    pub fn state(&self) -> StratifiedState {
        StratifiedState {
            mixture: self.mixture.state(),
            strata: self
                .strata
                .iter()
                .map(|s| StratumState {
                    name: s.name.clone(),
                    grid: s.grid.state(),
                    events: s.events,
                    trials: s.trials,
                    recent: s.recent.iter().copied().collect(),
                })
                .collect(),
        }
    }

    /// Continues from a saved state. `Err` (nothing changed) unless it has the same strata in
    /// the same order with grids of the same size: built from another baseline, it would test
    /// other nulls.
    pub fn restore(&mut self, saved: &StratifiedState) -> Result<(), String> {
        if saved.strata.len() != self.strata.len() {
            return Err(format!(
                "{} strata saved, {} expected",
                saved.strata.len(),
                self.strata.len()
            ));
        }
        let mut next = self.clone();
        for (s, st) in next.strata.iter_mut().zip(&saved.strata) {
            if s.name != st.name {
                return Err(format!("stratum {:?} saved where {:?} is", st.name, s.name));
            }
            s.grid.restore(&st.grid)?;
            s.events = st.events.min(st.trials);
            s.trials = st.trials;
            s.recent = st
                .recent
                .iter()
                .rev()
                .take(RECENT_ROUNDS)
                .rev()
                .copied()
                .collect();
        }
        next.mixture.restore(&saved.mixture);
        *self = next;
        Ok(())
    }

    /// Number of strata (pooled included).
    pub fn len(&self) -> usize {
        self.strata.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strata.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::stats::sequential::BetaPrior;

    /// Two suites of 10 probes, 20 baseline samples each at `rate`.
    fn make(rate: f64, seed: u64) -> StratifiedRate {
        let mut rng = Rng::new(seed);
        let probes: Vec<ProbeCounts> = (0..20)
            .map(|i| {
                let suite = if i < 10 { "a" } else { "b" };
                let x = (0..20).filter(|_| rng.bernoulli(rate)).count() as u64;
                (suite.to_string(), format!("{suite}/p{i}"), x, 20)
            })
            .collect();
        let (x, n) = probes.iter().fold((0, 0), |(a, b), p| (a + p.2, b + p.3));
        let p0 = clopper_pearson(x, n, 0.95).unwrap().upper + 0.03;
        let mixture = BetaBinomialEProcess::new(p0, BetaPrior::centered(p0 + 0.03, 12.0)).unwrap();
        StratifiedRate::new(&probes, 0.03, mixture, NullConfidence::default()).unwrap()
    }

    fn round(rng: &mut Rng, rate: impl Fn(usize) -> f64) -> Vec<(String, bool)> {
        (0..20)
            .flat_map(|i| {
                let suite = if i < 10 { "a" } else { "b" };
                let p = rate(i);
                (0..3)
                    .map(|_| (format!("{suite}/p{i}"), rng.bernoulli(p)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn weights_sum_to_one() {
        let s = make(0.1, 1);
        assert_eq!(s.len(), 1 + 2 + 20);
        let ep: f64 = s.ln_w_mixture.exp()
            + s.strata[1..]
                .iter()
                .map(|x| x.ln_w_episode.exp())
                .sum::<f64>();
        let det: f64 = s.strata.iter().map(|x| x.ln_w_detector.exp()).sum();
        assert!(
            (ep - 1.0).abs() < 1e-12 && (det - 1.0).abs() < 1e-12,
            "{ep} {det}"
        );
    }

    #[test]
    fn two_broken_probes_are_found_and_named_while_the_pooled_rate_barely_moves() {
        let mut s = make(0.1, 2);
        let mut rng = Rng::new(3);
        // Quiet for 300 rounds, then probes 3 and 15 fail 90 % of the time.
        for _ in 0..300 {
            let r = round(&mut rng, |_| 0.1);
            s.update(r.iter().map(|(k, b)| (k.as_str(), *b)));
        }
        assert!(s.log_detector() < 1000f64.ln());
        let at_change = (s.pooled().events, s.pooled().trials);
        let mut rounds = 0;
        while s.log_detector() < 1e5f64.ln() {
            rounds += 1;
            assert!(rounds < 200, "not detected in 200 rounds");
            let r = round(&mut rng, |i| if i == 3 || i == 15 { 0.9 } else { 0.1 });
            s.update(r.iter().map(|(k, b)| (k.as_str(), *b)));
        }
        // Only the broken probes (or their suites) carry the alarm; with more rounds, both.
        let names: Vec<&str> = s
            .carriers(true, 1e5f64.ln())
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            !names.is_empty()
                && names
                    .iter()
                    .all(|n| ["a/p3", "b/p15", "a", "b"].contains(n)),
            "{names:?}"
        );
        for _ in 0..30 {
            let r = round(&mut rng, |i| if i == 3 || i == 15 { 0.9 } else { 0.1 });
            s.update(r.iter().map(|(k, b)| (k.as_str(), *b)));
        }
        let names: Vec<&str> = s
            .carriers(true, 1e5f64.ln())
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            names.contains(&"a/p3") && names.contains(&"b/p15"),
            "{names:?}"
        );
        assert!(!names.contains(&"all probes"), "{names:?}");
        // The pooled rate moved by 8 points only (10 % → 18 %): about its own null boundary.
        let (x, n) = (
            s.pooled().events - at_change.0,
            s.pooled().trials - at_change.1,
        );
        let rate = x as f64 / n as f64;
        assert!(
            (0.14..s.pooled().p0 + 0.05).contains(&rate),
            "{x}/{n} p0 {}",
            s.pooled().p0
        );
    }

    #[test]
    fn an_unchanged_target_keeps_the_detector_low() {
        let mut s = make(0.1, 4);
        let mut rng = Rng::new(5);
        let mut max = f64::NEG_INFINITY;
        for _ in 0..2000 {
            let r = round(&mut rng, |_| 0.1);
            s.update(r.iter().map(|(k, b)| (k.as_str(), *b)));
            max = max.max(s.log_detector());
        }
        // c for 90 days of 10-minute rounds and 7 metrics is ~9e4 (ln 11.4).
        assert!(max < 9e4f64.ln(), "max ln detector {max}");
        let (ue, ud) = s.upper_bounds();
        assert!(ue >= s.log_e_value() && ud >= s.log_detector());
        assert!(s.log_e_value() < 0.0);
    }
}
