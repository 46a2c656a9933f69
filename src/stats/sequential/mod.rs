//! Anytime-valid sequential tests for a monitor that looks again every few minutes forever.
//!
//! A fixed-sample p-value checked repeatedly inflates false alarms without bound. These methods
//! keep their guarantee under continuous monitoring and optional stopping:
//!
//! - [`BetaBinomialEProcess`]: Bernoulli rate against the interval null p <= p0, with an
//!   always-valid p-value and a confidence sequence for p.
//! - [`McNemarSequential`]: paired binary outcomes (canary), on discordant pairs.
//! - [`MixtureSprt`]: normal-mixture SPRT for a mean (Johari et al. 2017/2022).
//! - [`PairedDiffCs`]: a betting confidence sequence for the mean paired difference of binary
//!   outcomes (canary equivalence: pass inside the margin, regression outside).
//! - [`BernoulliCusum`]: Page's CUSUM with a simulation-calibrated threshold for a target
//!   average run length (false-alarm interval), reproducible from a seed.
//! - [`RankEProcess`]: a betting e-process on mid-rank placements against a baseline, for
//!   length shifts.
//! - [`ShiftGrid`]: likelihood ratios at a grid of shift sizes, as an e-process and as an
//!   e-CUSUM change detector whose delay does not depend on the quiet period before a jump.
//!
//! The e-processes satisfy Ville's inequality: under the null, P(∃t: Eₜ >= 1/α) <= α. The
//! always-valid p-value is pₜ = min(1, 1 / max_{s<=t} Eₛ).

mod beta_binomial;
mod cusum;
mod mcnemar;
mod msprt;
mod paired_diff;
mod rank;
mod shift_grid;

pub use beta_binomial::{
    BetaBinomialEProcess, BetaBinomialState, BetaPrior, log_beta_binomial_mixture,
};
pub use cusum::BernoulliCusum;
pub use mcnemar::McNemarSequential;
pub use msprt::{MixtureSprt, normal_mixture_halfwidth};
pub use paired_diff::{PairedDiffCs, pairs_to_show_above, pairs_to_show_below};
pub use rank::{RankEProcess, RankState};
pub use shift_grid::{ShiftGrid, ShiftGridState, log_sum_exp};

/// An `f64` kept exactly, as its bit pattern: a JSON number loses infinities (an empty
/// e-process holds ln 0 = −∞) and may round, and a restored statistic must equal the saved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Exact(pub u64);

impl Exact {
    pub fn of(x: f64) -> Exact {
        Exact(x.to_bits())
    }
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// Running maximum of a log e-value, shared by the e-processes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunningMax {
    pub max_log_e: f64,
}

impl RunningMax {
    pub fn new() -> Self {
        RunningMax { max_log_e: 0.0 }
    }
    pub fn observe(&mut self, log_e: f64) {
        if log_e > self.max_log_e {
            self.max_log_e = log_e;
        }
    }
    /// Always-valid p-value min(1, 1 / max Eₛ).
    pub fn p_value(&self) -> f64 {
        (-self.max_log_e).exp().min(1.0)
    }
    pub fn rejected(&self, alpha: f64) -> bool {
        alpha > 0.0 && self.max_log_e >= -alpha.ln()
    }
}
