//! Rank-based e-process for shifts in response length against a baseline.
//!
//! Each new sample is turned into its mid-rank placement u ∈ [0, 1] within the baseline samples
//! of the same probe ([`crate::stats::placement`]): the fraction of baseline values below it,
//! ties counted half. Placements are free of the probe's scale (a 50-token and a 900-token probe
//! contribute alike) and invariant under monotone transforms. When nothing changed, a placement
//! is 1/2 in expectation; a finite baseline makes the conditional mean wander slightly around
//! 1/2, so the null is the interval H₀: E[u | past] ∈ [1/2 − margin, 1/2 + margin].
//!
//! The test is a bounded-mean betting e-process (Waudby-Smith & Ramdas 2024, "Estimating means
//! of bounded random variables by betting", JRSS-B 86(1)): for H₀ E[u] <= m, the wealth
//! Πᵢ (1 + λ(uᵢ − m)) with λ ∈ [0, 1/m) is a non-negative supermartingale. We average the wealth
//! of a fixed grid of bets λ = f/m, f ∈ {1/2, 1/4, …, 1/32} (a mixture of e-processes is an
//! e-process), which adapts to the effect size without tuning. Two-sided averages the "longer"
//! and "shorter" e-processes.
//!
//! Beside it, the same bets kept as **e-CUSUMs** (Shin, Ramdas & Rinaldo 2024, "E-detectors"):
//! per bet, ln Mₜ = max(ln Mₜ₋₁, 0) + ln(1 + λ(uₜ − m)), averaged like the wealth. Each factor
//! has conditional mean at most 1 under H₀, so this is an e-detector: its mean time to a false
//! alarm at threshold c is at least c observations, and, restarting from zero whenever the
//! evidence is against a change, it finds a change late in a long quiet stream as fast as one at
//! the start.

use super::RunningMax;
use crate::stats::{Alternative, Result, StatsError};

const FRACTIONS: [f64; 5] = [0.5, 0.25, 0.125, 0.0625, 0.03125];

/// The running part of a [`RankEProcess`] (its margin comes from the configuration).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RankState {
    pub log_wealth_up: Vec<super::Exact>,
    pub log_wealth_down: Vec<super::Exact>,
    pub n: u64,
    pub max_log_e: super::Exact,
    /// The e-CUSUMs of the bets.
    pub log_cusum_up: Vec<super::Exact>,
    pub log_cusum_down: Vec<super::Exact>,
}

/// Betting e-process on placements for a length shift.
#[derive(Debug, Clone, PartialEq)]
pub struct RankEProcess {
    alternative: Alternative,
    /// null bound for "longer": E[u] <= hi
    hi: f64,
    /// null bound for "shorter": E[u] >= lo
    lo: f64,
    log_wealth_up: [f64; 5],
    log_wealth_down: [f64; 5],
    log_cusum_up: [f64; 5],
    log_cusum_down: [f64; 5],
    n: u64,
    max: RunningMax,
}

impl RankEProcess {
    /// `margin` in [0, 0.5): tolerated drift of the mean placement around 1/2 (0.05 is a
    /// sensible default with 10–30 baseline samples per probe). `Greater` detects longer
    /// responses, `Less` shorter, `TwoSided` either.
    pub fn new(margin: f64, alternative: Alternative) -> Result<Self> {
        if !(margin.is_finite() && (0.0..0.5).contains(&margin)) {
            return Err(StatsError::OutOfRange {
                what: "rank e-process margin",
                value: margin,
                expected: "a number in [0, 0.5), e.g. 0.05",
            });
        }
        Ok(RankEProcess {
            alternative,
            hi: 0.5 + margin,
            lo: 0.5 - margin,
            log_wealth_up: [0.0; 5],
            log_wealth_down: [0.0; 5],
            log_cusum_up: [0.0; 5],
            log_cusum_down: [0.0; 5],
            n: 0,
            max: RunningMax::new(),
        })
    }

    /// Record one placement u ∈ [0, 1] (values outside are clamped; NaN is ignored).
    pub fn update_placement(&mut self, u: f64) {
        if u.is_nan() {
            return;
        }
        let u = u.clamp(0.0, 1.0);
        self.n += 1;
        for (k, f) in FRACTIONS.iter().enumerate() {
            let lam_up = f / self.hi;
            let up = (lam_up * (u - self.hi)).ln_1p();
            self.log_wealth_up[k] += up;
            self.log_cusum_up[k] = self.log_cusum_up[k].max(0.0) + up;
            let lam_down = f / (1.0 - self.lo);
            let down = (lam_down * (self.lo - u)).ln_1p();
            self.log_wealth_down[k] += down;
            self.log_cusum_down[k] = self.log_cusum_down[k].max(0.0) + down;
        }
        self.max.observe(self.log_e_value());
    }

    /// Record a new value against the sorted baseline of the same probe.
    pub fn update(&mut self, sorted_baseline: &[f64], x: f64) {
        if sorted_baseline.is_empty() || !x.is_finite() {
            return;
        }
        self.update_placement(crate::stats::placement(sorted_baseline, x));
    }

    fn log_mean_exp(v: &[f64; 5]) -> f64 {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + (v.iter().map(|x| (x - m).exp()).sum::<f64>() / v.len() as f64).ln()
    }

    pub fn log_e_value(&self) -> f64 {
        self.combine(&self.log_wealth_up, &self.log_wealth_down)
    }

    /// The change detector: the bets' e-CUSUMs averaged as the wealth is (see the module
    /// documentation); compare with a threshold in observations.
    pub fn log_detector(&self) -> f64 {
        self.combine(&self.log_cusum_up, &self.log_cusum_down)
    }

    /// Starts the change detector again (after an incident closed).
    pub fn restart_detector(&mut self) {
        self.log_cusum_up = [0.0; 5];
        self.log_cusum_down = [0.0; 5];
    }

    fn combine(&self, up: &[f64; 5], down: &[f64; 5]) -> f64 {
        let up = Self::log_mean_exp(up);
        let down = Self::log_mean_exp(down);
        match self.alternative {
            Alternative::Greater => up,
            Alternative::Less => down,
            Alternative::TwoSided => {
                let m = up.max(down);
                m + (0.5 * ((up - m).exp() + (down - m).exp())).ln()
            }
        }
    }

    pub fn e_value(&self) -> f64 {
        self.log_e_value().exp()
    }

    pub fn p_value(&self) -> f64 {
        self.max.p_value()
    }

    pub fn rejected(&self, alpha: f64) -> bool {
        self.max.rejected(alpha)
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// What [`Self::restore`] needs to continue where this process is.
    pub fn state(&self) -> RankState {
        RankState {
            log_wealth_up: self.log_wealth_up.map(super::Exact::of).to_vec(),
            log_wealth_down: self.log_wealth_down.map(super::Exact::of).to_vec(),
            n: self.n,
            max_log_e: super::Exact::of(self.max.max_log_e),
            log_cusum_up: self.log_cusum_up.map(super::Exact::of).to_vec(),
            log_cusum_down: self.log_cusum_down.map(super::Exact::of).to_vec(),
        }
    }

    /// Continues from a saved state; `Err` when it has another number of bets.
    pub fn restore(&mut self, s: &RankState) -> std::result::Result<(), String> {
        let n = FRACTIONS.len();
        if [
            &s.log_wealth_up,
            &s.log_wealth_down,
            &s.log_cusum_up,
            &s.log_cusum_down,
        ]
        .iter()
        .any(|v| v.len() != n)
        {
            return Err(format!(
                "{} bets saved, {n} expected",
                s.log_wealth_up.len()
            ));
        }
        for k in 0..n {
            self.log_wealth_up[k] = s.log_wealth_up[k].get();
            self.log_wealth_down[k] = s.log_wealth_down[k].get();
            self.log_cusum_up[k] = s.log_cusum_up[k].get();
            self.log_cusum_down[k] = s.log_cusum_down[k].get();
        }
        self.n = s.n;
        self.max.max_log_e = s.max_log_e.get();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_half_placements_never_grow_wealth() {
        let mut e = RankEProcess::new(0.0, Alternative::TwoSided).unwrap();
        for _ in 0..1000 {
            e.update_placement(0.5);
        }
        assert!((e.e_value() - 1.0).abs() < 1e-12);
        for _ in 0..40 {
            e.update_placement(1.0);
        }
        assert!(e.rejected(0.01));
    }

    #[test]
    fn the_detector_sees_a_late_shift_as_fast_as_an_early_one() {
        let mut early = RankEProcess::new(0.05, Alternative::Greater).unwrap();
        let mut late = early.clone();
        // A long quiet stream sinks the e-process's wealth; the CUSUM stays at zero.
        for i in 0..5000 {
            late.update_placement(if i % 2 == 0 { 0.2 } else { 0.6 });
        }
        assert!(late.log_e_value() < -20.0);
        let steps = |e: &mut RankEProcess| {
            (1..=200)
                .find(|_| {
                    e.update_placement(0.95);
                    e.log_detector() >= 1000f64.ln()
                })
                .unwrap()
        };
        let (a, b) = (steps(&mut early), steps(&mut late));
        assert_eq!(a, b, "the quiet period must not delay the detector");
        assert!(
            late.log_e_value() < 1000f64.ln(),
            "the episode e-value lags"
        );
        late.restart_detector();
        assert_eq!(late.log_detector(), 0.0);
    }
}
