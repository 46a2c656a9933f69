//! Statistics core: exact and asymptotic two-sample tests, intervals, effect sizes,
//! multiple-testing control and anytime-valid sequential tests.
//!
//! Everything here is pure: functions over slices (or small stateful structs fed one observation
//! at a time), no I/O, no clock, no globals. Randomness (permutation p-values, CUSUM calibration)
//! comes from [`crate::rng::Rng`] with an explicit seed, so every result is reproducible.
//!
//! Conventions follow scipy (see `docs/statistics.md`): p-values are two-sided unless an
//! [`Alternative`] says otherwise, and "greater" means "the first sample tends to be larger".

mod anderson;
mod binomial;
mod cmh;
mod confusion;
mod contingency;
pub mod dist;
mod effect;
mod fisher;
mod ks;
mod mannwhitney;
mod mcnemar;
mod mmd;
mod multiple;
mod quantile;
mod rank;
pub mod sequential;

pub use anderson::{AndersonResult, anderson_ksamp};
pub use binomial::{binom_test, clopper_pearson, newcombe_diff, newcombe_paired_diff, wilson};
pub use cmh::{CmhResult, Table2x2, cmh};
pub use confusion::Confusion;
pub use contingency::{ContingencyResult, chi2_contingency, g_test};
pub use effect::{cliffs_delta, hodges_lehmann};
pub use fisher::fisher_exact;
pub use ks::{KsMethod, ks_2samp};
pub use mannwhitney::{MwuMethod, mann_whitney_u, mann_whitney_u_with};
pub use mcnemar::{McNemarMethod, mcnemar, mcnemar_exact};
pub use mmd::{MmdResult, PromptTexts, hamming, mmd_test, same_words};
pub use multiple::{benjamini_hochberg, benjamini_yekutieli, e_bh, holm};
pub use quantile::quantile;
pub use rank::{midranks, placement};

/// Errors from the statistics core. Each says which input is wrong and what to do.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StatsError {
    #[error("{what} is empty: a test needs at least {min} observation(s); collect more samples")]
    Empty { what: &'static str, min: usize },
    #[error(
        "{what} contains a non-finite value (NaN or infinity) at index {index}; drop or fix that sample"
    )]
    NonFinite { what: &'static str, index: usize },
    #[error("{what}: the total is zero, so the test has no information; collect more samples")]
    ZeroTotal { what: &'static str },
    #[error("{what} = {value} is out of range: expected {expected}")]
    OutOfRange {
        what: &'static str,
        value: f64,
        expected: &'static str,
    },
    #[error("{what}: all observations are identical, so the test is undefined; nothing to compare")]
    Degenerate { what: &'static str },
    #[error("{what}: exact computation is too large ({detail}); use the asymptotic method")]
    TooLarge { what: &'static str, detail: String },
}

/// Result alias for the statistics core.
pub type Result<T> = std::result::Result<T, StatsError>;

/// Direction of the alternative hypothesis, scipy's convention: `Greater` means the first sample
/// (or the first row / cell) tends to be larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alternative {
    TwoSided,
    Less,
    Greater,
}

/// Outcome of a hypothesis test. `p_value` is always in [0, 1] and never NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
    /// Which method produced the p-value (e.g. "exact", "asymptotic").
    pub method: &'static str,
}

/// A point estimate with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    /// True when `x` lies in the closed interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
}

/// Rejects empty slices and non-finite values.
pub(crate) fn check_sample(what: &'static str, xs: &[f64], min: usize) -> Result<()> {
    if xs.len() < min.max(1) {
        return Err(StatsError::Empty {
            what,
            min: min.max(1),
        });
    }
    if let Some(index) = xs.iter().position(|v| !v.is_finite()) {
        return Err(StatsError::NonFinite { what, index });
    }
    Ok(())
}

/// Checks a confidence level is in (0, 1).
pub(crate) fn check_conf(conf: f64) -> Result<()> {
    if conf.is_finite() && conf > 0.0 && conf < 1.0 {
        Ok(())
    } else {
        Err(StatsError::OutOfRange {
            what: "confidence level",
            value: conf,
            expected: "a value strictly between 0 and 1, e.g. 0.95",
        })
    }
}

/// Checks a probability is in [lo, hi] (closed) and finite.
pub(crate) fn check_prob(what: &'static str, p: f64, open: bool) -> Result<()> {
    let ok = p.is_finite()
        && if open {
            p > 0.0 && p < 1.0
        } else {
            (0.0..=1.0).contains(&p)
        };
    if ok {
        Ok(())
    } else {
        Err(StatsError::OutOfRange {
            what,
            value: p,
            expected: if open {
                "a probability strictly between 0 and 1"
            } else {
                "a probability between 0 and 1"
            },
        })
    }
}

/// Clamps a computed probability into [0, 1]; NaN (which cannot arise from validated input)
/// maps to 1, the conservative answer.
pub(crate) fn clip_p(p: f64) -> f64 {
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}
