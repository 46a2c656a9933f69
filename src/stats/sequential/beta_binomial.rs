//! Beta-binomial mixture e-process for a Bernoulli rate (e.g. refusal or task-failure rate)
//! against the one-sided interval null H₀: p <= p0.
//!
//! For any alternative q > p0 the likelihood ratio Πᵢ (q/p0)^{xᵢ} ((1−q)/(1−p0))^{1−xᵢ} is a
//! non-negative supermartingale under every p <= p0 (its one-step expectation
//! p·q/p0 + (1−p)(1−q)/(1−p0) is <= 1 when p <= p0 < q), so any mixture over q > p0 is too.
//! Mixing with a Beta(a, b) prior truncated to (p0, 1] gives the closed form
//!
//!   Eₜ = B(a+S, b+t−S) · Ī_{p0}(a+S, b+t−S) / (B(a, b) · Ī_{p0}(a, b)) / (p0^S (1−p0)^{t−S})
//!
//! (S successes in t trials, Ī the regularised upper incomplete beta). By Ville's inequality
//! P_{H₀}(∃t: Eₜ >= 1/α) <= α (Robbins 1970; Ramdas et al. 2023, "Game-theoretic statistics
//! and safe anytime-valid inference"). Testing against the boundary p0 of an interval null
//! (baseline rate plus a practical margin) makes small, harmless drifts inside the margin
//! invisible by design.
//!
//! Tuning: the prior decides which alternatives are detected fastest. A prior concentrated
//! near the smallest rate worth detecting p1 approaches Wald's SPRT for p1
//! (see [`BetaPrior::centered`] and `docs/statistics.md` for measured delays).

use super::RunningMax;
use crate::stats::{Result, StatsError, check_prob};
use statrs::function::beta::{beta_reg, ln_beta};

/// Beta(a, b) mixing distribution over the alternative rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetaPrior {
    pub a: f64,
    pub b: f64,
}

impl BetaPrior {
    /// Uniform prior Beta(1, 1): detects every alternative, none fastest.
    pub fn uniform() -> Self {
        BetaPrior { a: 1.0, b: 1.0 }
    }

    /// Prior with mean `p1` (the smallest rate worth detecting) and `strength` = a + b
    /// pseudo-observations. Larger strength concentrates the mixture near `p1`, approaching
    /// the SPRT for `p1` there at the cost of slower detection of larger shifts.
    pub fn centered(p1: f64, strength: f64) -> Self {
        BetaPrior {
            a: p1 * strength,
            b: (1.0 - p1) * strength,
        }
    }

    /// The default used by the monitor: mean p1, strength 2/p1 (about two expected events'
    /// worth of prior information at p1; see `docs/statistics.md`).
    pub fn for_alternative(p1: f64) -> Self {
        Self::centered(p1, 2.0 / p1)
    }
}

/// log of the (two-sided) beta-binomial mixture e-value against the point p0:
/// ln B(a+S, b+t−S) − ln B(a, b) − S ln p0 − (t−S) ln(1−p0).
pub fn log_beta_binomial_mixture(s: u64, t: u64, p0: f64, prior: BetaPrior) -> f64 {
    let (sf, ff) = (s as f64, (t - s.min(t)) as f64);
    ln_beta(prior.a + sf, prior.b + ff)
        - ln_beta(prior.a, prior.b)
        - sf * p0.ln()
        - ff * (-p0).ln_1p()
}

/// ln of the regularised upper incomplete beta Ī_x(a, b) = I_{1−x}(b, a).
fn ln_upper_beta(a: f64, b: f64, x: f64) -> f64 {
    beta_reg(b, a, 1.0 - x).ln()
}

/// The running part of a [`BetaBinomialEProcess`] (its null and prior come from the baseline).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BetaBinomialState {
    pub successes: u64,
    pub trials: u64,
    pub log_e: super::Exact,
    pub max_log_e: super::Exact,
}

/// One-sided beta-binomial mixture e-process for H₀: p <= p0.
#[derive(Debug, Clone, PartialEq)]
pub struct BetaBinomialEProcess {
    p0: f64,
    prior: BetaPrior,
    ln_prior_mass: f64,
    successes: u64,
    trials: u64,
    log_e: f64,
    max: RunningMax,
}

impl BetaBinomialEProcess {
    /// `p0` in (0, 1): the null boundary (baseline rate plus margin). Prior parameters must be
    /// positive and give the region above p0 positive mass.
    pub fn new(p0: f64, prior: BetaPrior) -> Result<Self> {
        check_prob("e-process null boundary p0", p0, true)?;
        for (what, v) in [("beta prior a", prior.a), ("beta prior b", prior.b)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(StatsError::OutOfRange {
                    what,
                    value: v,
                    expected: "a positive finite number",
                });
            }
        }
        let ln_prior_mass = ln_upper_beta(prior.a, prior.b, p0);
        if !ln_prior_mass.is_finite() {
            return Err(StatsError::OutOfRange {
                what: "beta prior mass above p0",
                value: ln_prior_mass.exp(),
                expected: "a prior with positive mass above p0",
            });
        }
        Ok(BetaBinomialEProcess {
            p0,
            prior,
            ln_prior_mass,
            successes: 0,
            trials: 0,
            log_e: 0.0,
            max: RunningMax::new(),
        })
    }

    /// Record one Bernoulli outcome (`true` = event, e.g. a refusal).
    pub fn update(&mut self, event: bool) {
        self.update_counts(u64::from(event), 1);
    }

    /// Record a batch: `events` among `trials` new observations.
    pub fn update_counts(&mut self, events: u64, trials: u64) {
        self.successes += events.min(trials);
        self.trials += trials;
        self.log_e = self.log_e_at(self.successes, self.trials);
        self.max.observe(self.log_e);
    }

    /// ln Eₜ for S events in t trials (closed form above).
    fn log_e_at(&self, s: u64, t: u64) -> f64 {
        let (a, b) = (self.prior.a + s as f64, self.prior.b + (t - s) as f64);
        log_beta_binomial_mixture(s, t, self.p0, self.prior) + ln_upper_beta(a, b, self.p0)
            - self.ln_prior_mass
    }

    /// Current e-value Eₜ.
    pub fn e_value(&self) -> f64 {
        self.log_e.exp()
    }

    /// What [`Self::restore`] needs to continue where this process is.
    pub fn state(&self) -> BetaBinomialState {
        BetaBinomialState {
            successes: self.successes,
            trials: self.trials,
            log_e: super::Exact::of(self.log_e),
            max_log_e: super::Exact::of(self.max.max_log_e),
        }
    }

    /// Continues from a saved state (of a process with the same null and prior).
    pub fn restore(&mut self, s: &BetaBinomialState) {
        self.successes = s.successes.min(s.trials);
        self.trials = s.trials;
        self.log_e = s.log_e.get();
        self.max.max_log_e = s.max_log_e.get();
    }

    /// Current ln Eₜ (finite or −∞).
    pub fn log_e_value(&self) -> f64 {
        self.log_e
    }

    /// Always-valid p-value min(1, 1 / max_{s<=t} Eₛ).
    pub fn p_value(&self) -> f64 {
        self.max.p_value()
    }

    /// True once the e-process has reached 1/α at some time.
    pub fn rejected(&self, alpha: f64) -> bool {
        self.max.rejected(alpha)
    }

    pub fn events(&self) -> u64 {
        self.successes
    }

    pub fn trials(&self) -> u64 {
        self.trials
    }

    /// Confidence sequence for p at time t: {p : Mₜ(p) < 1/α}, with Mₜ(p) the two-sided
    /// beta-binomial mixture against p (Robbins 1970). Covers the true p at all times
    /// simultaneously with probability >= 1 − α; intersecting over time stays valid.
    pub fn confidence_sequence(&self, alpha: f64) -> (f64, f64) {
        let (s, t) = (self.successes, self.trials);
        if t == 0 || !(alpha > 0.0 && alpha < 1.0) {
            return (0.0, 1.0);
        }
        let bound = -alpha.ln();
        let m = |p: f64| log_beta_binomial_mixture(s, t, p, self.prior);
        let phat = (s as f64 / t as f64).clamp(1e-300, 1.0 - 1e-16);
        // ln Mₜ(p) is convex in p with its minimum at p̂: bisect each side.
        let root = |mut inside: f64, mut outside: f64| {
            for _ in 0..100 {
                let mid = 0.5 * (inside + outside);
                if m(mid) < bound {
                    inside = mid
                } else {
                    outside = mid
                }
            }
            inside
        };
        let lower = if s == 0 || m(1e-300) < bound {
            0.0
        } else {
            root(phat, 0.0)
        };
        let upper = if s == t || m(1.0 - 1e-16) < bound {
            1.0
        } else {
            root(phat, 1.0)
        };
        (lower, upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_and_single_updates_agree() {
        let mut a = BetaBinomialEProcess::new(0.05, BetaPrior::uniform()).unwrap();
        let mut b = a.clone();
        for i in 0..40 {
            a.update(i % 7 == 0);
        }
        b.update_counts(6, 40);
        assert!((a.log_e_value() - b.log_e_value()).abs() < 1e-12);
    }

    #[test]
    fn confidence_sequence_contains_the_estimate_and_shrinks() {
        let mut e = BetaBinomialEProcess::new(0.05, BetaPrior::uniform()).unwrap();
        e.update_counts(10, 100);
        let (l1, u1) = e.confidence_sequence(0.05);
        assert!(l1 < 0.1 && 0.1 < u1);
        e.update_counts(90, 900);
        let (l2, u2) = e.confidence_sequence(0.05);
        assert!(l2 > l1 && u2 < u1, "({l1},{u1}) then ({l2},{u2})");
    }

    #[test]
    fn invalid_parameters_are_errors() {
        assert!(BetaBinomialEProcess::new(0.0, BetaPrior::uniform()).is_err());
        assert!(BetaBinomialEProcess::new(0.1, BetaPrior { a: -1.0, b: 1.0 }).is_err());
    }
}
