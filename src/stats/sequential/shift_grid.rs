//! Bernoulli likelihood ratios against the interval null H₀: p <= p0 at a grid of shift sizes,
//! kept two ways: from the start (an e-process) and as an e-CUSUM (a change detector).
//!
//! For an alternative q > p0 the per-observation likelihood ratio
//! Λ = (q/p0)^x ((1−q)/(1−p0))^{1−x} has expectation <= 1 under every p <= p0 (see
//! `beta_binomial.rs`), so:
//!
//! - the product since the start, averaged over the grid, is an e-process (a finite mixture of
//!   test supermartingales; Ville's inequality bounds P(∃t: Eₜ >= 1/α) by α);
//! - the **e-CUSUM** ln Mₜ = max(ln Mₜ₋₁, 0) + ln Λₜ (one step per batch) is dominated by the
//!   Shiryaev–Roberts statistic Rₜ = (Rₜ₋₁ + 1) Λₜ, and Rₜ − t is a supermartingale under the
//!   null, so the grid average of the Mₜ is an *e-detector*: the first time it reaches c comes
//!   after at least c steps on average, whatever the null path (Shin, Ramdas & Rinaldo 2024,
//!   "E-detectors: a nonparametric framework for sequential change detection"; Page 1954;
//!   Lorden 1971). Because each CUSUM restarts from ln M = 0 whenever the evidence is against
//!   a change, its delay after a jump does not depend on how long the quiet period was, and the
//!   grid member nearest the true rate sets the pace: ln(c·J)/KL(p ‖ q) steps for J members.
//!
//! The grid doubles the shift from one margin above p0 up to 98 % of the way to certainty, so a
//! small shift and a jump to nearly 100 % both have a member close to them.

use crate::stats::{Result, StatsError, check_prob};

/// ln(Σ exp(xᵢ)) without overflow (−∞ for an empty slice).
pub fn log_sum_exp(xs: impl IntoIterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + xs.into_iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// One alternative of the grid with its running statistics.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    q: f64,
    /// ln Λ of one event and of one non-event.
    up: f64,
    down: f64,
    /// ln of the likelihood ratio since the start.
    episode: f64,
    /// ln Mₜ of the e-CUSUM.
    cusum: f64,
    /// (events, trials) since the e-CUSUM last left ln M <= 0: its change-point estimate.
    since: (u64, u64),
}

/// The running part of a [`ShiftGrid`], per member (the alternatives follow from p0 and the
/// smallest shift): (ln ratio since the start, ln Mₜ of the e-CUSUM, its events and trials).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShiftGridState {
    pub members: Vec<(super::Exact, super::Exact, u64, u64)>,
}

/// Likelihood ratios of a Bernoulli rate at a grid of alternatives above `p0`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftGrid {
    p0: f64,
    members: Vec<Member>,
    ln_j: f64,
}

impl ShiftGrid {
    /// Grid q = p0 + shift·2ʲ (j = 0, 1, …) below p0 + 0.98 (1 − p0), plus that last point.
    /// `shift` is the smallest change worth detecting (at least 0.005).
    pub fn new(p0: f64, shift: f64) -> Result<Self> {
        check_prob("shift grid null boundary p0", p0, true)?;
        if !(shift.is_finite() && shift > 0.0) {
            return Err(StatsError::OutOfRange {
                what: "shift grid smallest shift",
                value: shift,
                expected: "a positive rate difference",
            });
        }
        let top = p0 + 0.98 * (1.0 - p0);
        let mut qs = Vec::new();
        let mut d = shift.max(0.005);
        while p0 + d < top {
            qs.push(p0 + d);
            d *= 2.0;
        }
        qs.push(top);
        let members: Vec<Member> = qs
            .into_iter()
            .map(|q| Member {
                q,
                up: (q / p0).ln(),
                down: ((1.0 - q) / (1.0 - p0)).ln(),
                episode: 0.0,
                cusum: 0.0,
                since: (0, 0),
            })
            .collect();
        let ln_j = (members.len() as f64).ln();
        Ok(ShiftGrid { p0, members, ln_j })
    }

    /// Records `events` among `trials` new observations as one step.
    pub fn update_counts(&mut self, events: u64, trials: u64) {
        let x = events.min(trials);
        let (xf, ff) = (x as f64, (trials - x) as f64);
        for m in &mut self.members {
            let llr = xf * m.up + ff * m.down;
            m.episode += llr;
            if m.cusum <= 0.0 {
                m.cusum = llr;
                m.since = (x, trials);
            } else {
                m.cusum += llr;
                m.since = (m.since.0 + x, m.since.1 + trials);
            }
        }
    }

    /// ln of the grid-mixture e-process since the start.
    pub fn log_e_value(&self) -> f64 {
        log_sum_exp(self.members.iter().map(|m| m.episode)) - self.ln_j
    }

    /// ln of the grid-averaged e-CUSUM (the e-detector).
    pub fn log_detector(&self) -> f64 {
        log_sum_exp(self.members.iter().map(|m| m.cusum)) - self.ln_j
    }

    /// Cheap upper bounds (the largest member; a mean never exceeds its largest term) of
    /// [`Self::log_e_value`] and [`Self::log_detector`], for skipping exact sums far from any
    /// threshold.
    pub fn upper_bounds(&self) -> (f64, f64) {
        self.members
            .iter()
            .fold((f64::NEG_INFINITY, f64::NEG_INFINITY), |(e, d), m| {
                (e.max(m.episode), d.max(m.cusum))
            })
    }

    /// (events, trials) since the change estimated by the member with the largest statistic.
    pub fn since_change(&self) -> (u64, u64) {
        self.members
            .iter()
            .max_by(|a, b| a.cusum.total_cmp(&b.cusum))
            .map_or((0, 0), |m| m.since)
    }

    /// Forgets the e-CUSUM evidence (after an incident is over), keeping the episode.
    pub fn restart_detector(&mut self) {
        for m in &mut self.members {
            m.cusum = 0.0;
            m.since = (0, 0);
        }
    }

    pub fn p0(&self) -> f64 {
        self.p0
    }

    /// What [`Self::restore`] needs to continue where this grid is.
    pub fn state(&self) -> ShiftGridState {
        use super::Exact;
        ShiftGridState {
            members: self
                .members
                .iter()
                .map(|m| {
                    (
                        Exact::of(m.episode),
                        Exact::of(m.cusum),
                        m.since.0,
                        m.since.1,
                    )
                })
                .collect(),
        }
    }

    /// Continues from a saved state; `Err` when it has another number of members (another
    /// null or shift).
    pub fn restore(&mut self, s: &ShiftGridState) -> std::result::Result<(), String> {
        if s.members.len() != self.members.len() {
            return Err(format!(
                "{} grid members saved, {} expected",
                s.members.len(),
                self.members.len()
            ));
        }
        for (m, (episode, cusum, x, n)) in self.members.iter_mut().zip(&s.members) {
            m.episode = episode.get();
            m.cusum = cusum.get();
            m.since = (*x, *n);
        }
        Ok(())
    }

    /// The alternatives of the grid.
    pub fn alternatives(&self) -> Vec<f64> {
        self.members.iter().map(|m| m.q).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn grid_spans_small_shifts_to_near_certainty() {
        let g = ShiftGrid::new(0.05, 0.02).unwrap();
        let q = g.alternatives();
        assert!((q[0] - 0.07).abs() < 1e-12 && (q[1] - 0.09).abs() < 1e-12);
        assert!((q.last().unwrap() - 0.981).abs() < 1e-12, "{q:?}");
        assert!(q.windows(2).all(|w| w[0] < w[1]));
        assert!(ShiftGrid::new(0.0, 0.02).is_err());
        assert!(ShiftGrid::new(0.5, 0.0).is_err());
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let v = log_sum_exp([1000.0, 1000.0]);
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-9);
        assert_eq!(log_sum_exp(Vec::<f64>::new()), f64::NEG_INFINITY);
    }

    /// Mean steps to reach `c` at rate `p`, capped.
    fn mean_run(p: f64, c: f64, runs: u64, batch: u64, cap: u64) -> f64 {
        let mut total = 0u64;
        for r in 0..runs {
            let mut rng = Rng::from_parts(&[77, r]);
            let mut g = ShiftGrid::new(0.1, 0.03).unwrap();
            let mut t = 0;
            while t < cap {
                t += 1;
                let x = (0..batch).filter(|_| rng.bernoulli(p)).count() as u64;
                g.update_counts(x, batch);
                if g.log_detector() >= c.ln() {
                    break;
                }
            }
            total += t;
        }
        total as f64 / runs as f64
    }

    #[test]
    fn detector_run_length_under_the_null_boundary_exceeds_its_threshold() {
        // E-detector guarantee: mean steps to the first alarm >= c, at the null boundary
        // itself (the hardest null). Runs capped at 5c still bound the mean from below.
        let c = 50.0;
        let arl = mean_run(0.1, c, 300, 10, 250);
        assert!(arl >= c, "ARL {arl} < {c}");
    }

    #[test]
    fn delay_after_a_jump_does_not_depend_on_the_quiet_period() {
        // 10 % → 60 %: same delay after 10 or after 2,000 quiet steps.
        let delay = |quiet: u64| {
            let mut sum = 0;
            for r in 0..200u64 {
                let mut rng = Rng::from_parts(&[5, r]);
                let mut g = ShiftGrid::new(0.15, 0.03).unwrap();
                for _ in 0..quiet {
                    let x = (0..10).filter(|_| rng.bernoulli(0.1)).count() as u64;
                    g.update_counts(x, 10);
                }
                let mut t = 0;
                loop {
                    t += 1;
                    let x = (0..10).filter(|_| rng.bernoulli(0.6)).count() as u64;
                    g.update_counts(x, 10);
                    if g.log_detector() >= 1e6f64.ln() {
                        break;
                    }
                }
                sum += t;
            }
            sum as f64 / 200.0
        };
        let (short, long) = (delay(10), delay(2000));
        assert!(short <= 6.0 && long <= 6.0, "{short} vs {long}");
        assert!((short - long).abs() <= 1.0, "{short} vs {long}");
        // The episode e-process, by contrast, has sunk far below 1 after a long quiet period.
        let mut g = ShiftGrid::new(0.15, 0.03).unwrap();
        g.update_counts(200, 2000);
        assert!(g.log_e_value() < -20.0, "{}", g.log_e_value());
    }

    #[test]
    fn change_estimate_counts_from_the_jump() {
        let mut g = ShiftGrid::new(0.1, 0.03).unwrap();
        for _ in 0..50 {
            g.update_counts(0, 10);
        }
        for _ in 0..3 {
            g.update_counts(10, 10);
        }
        assert_eq!(g.since_change(), (30, 30));
        let (ue, ud) = g.upper_bounds();
        assert!(ue >= g.log_e_value() && ud >= g.log_detector());
        g.restart_detector();
        assert_eq!(g.since_change(), (0, 0));
        assert!(g.log_detector() <= 1e-12);
    }
}
