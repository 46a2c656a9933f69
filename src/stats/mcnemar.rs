//! McNemar's test for paired binary outcomes (McNemar 1947), on the discordant pairs only:
//! `b` = pairs where only the first arm succeeded, `c` = pairs where only the second did.
//! Under the null of marginal homogeneity, b ~ Binomial(b + c, 1/2).

use super::dist::{binom_cdf, chi2_sf, ln_choose};
use super::{Result, StatsError, TestResult, clip_p};

/// Which McNemar p-value to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McNemarMethod {
    /// Exact two-sided binomial test on the discordant pairs.
    Exact,
    /// Mid-p version of the exact test (less conservative; Fagerland et al. 2013).
    MidP,
    /// Chi-square with 1 df and Edwards' continuity correction, (|b − c| − 1)² / (b + c).
    ChiSquareCorrected,
    /// Chi-square with 1 df, (b − c)² / (b + c).
    ChiSquare,
}

/// Exact McNemar test (scipy `binomtest(b, b + c, 0.5)` two-sided). Statistic: min(b, c).
pub fn mcnemar_exact(b: u64, c: u64) -> Result<TestResult> {
    mcnemar(b, c, McNemarMethod::Exact)
}

/// McNemar's test by the chosen method. No discordant pairs (b = c = 0) is an error: the data
/// carry no information about a difference.
pub fn mcnemar(b: u64, c: u64, method: McNemarMethod) -> Result<TestResult> {
    let n = b + c;
    if n == 0 {
        return Err(StatsError::ZeroTotal {
            what: "McNemar test (no discordant pairs)",
        });
    }
    let lo = b.min(c);
    let nf = n as f64;
    let diff = b.abs_diff(c) as f64;
    let (statistic, p, name) = match method {
        McNemarMethod::Exact => (lo as f64, 2.0 * binom_cdf(lo, n, 0.5), "exact"),
        McNemarMethod::MidP => {
            let pmf_lo = (ln_choose(n, lo) - nf * std::f64::consts::LN_2).exp();
            (
                lo as f64,
                2.0 * (binom_cdf(lo, n, 0.5) - 0.5 * pmf_lo),
                "mid-p",
            )
        }
        McNemarMethod::ChiSquareCorrected => {
            let s = (diff - 1.0).powi(2) / nf;
            (s, chi2_sf(s, 1.0), "chi-square, continuity corrected")
        }
        McNemarMethod::ChiSquare => {
            let s = diff * diff / nf;
            (s, chi2_sf(s, 1.0), "chi-square")
        }
    };
    Ok(TestResult {
        statistic,
        p_value: clip_p(p),
        method: name,
    })
}
