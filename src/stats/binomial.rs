//! Binomial test and intervals for proportions: Clopper–Pearson (exact), Wilson (score) and
//! Newcombe's hybrid score interval for a difference of proportions.

use super::dist::{beta_ppf, binom_pmf_all, norm_ppf};
use super::{
    Alternative, Interval, Result, StatsError, TestResult, check_conf, check_prob, clip_p,
};

/// Relative tolerance for "as or less likely than observed" (scipy `binomtest`, R `binom.test`).
const REL_TOL: f64 = 1e-7;

/// Largest number of trials the exact test enumerates (memory for the pmf: 8 bytes per trial).
const MAX_EXACT_TRIALS: u64 = 50_000_000;

fn check_counts(what: &'static str, x: u64, n: u64) -> Result<()> {
    if n == 0 {
        return Err(StatsError::ZeroTotal { what });
    }
    if x > n {
        return Err(StatsError::OutOfRange {
            what,
            value: x as f64,
            expected: "a success count no larger than the number of trials",
        });
    }
    Ok(())
}

/// Exact binomial test of `k` successes in `n` trials against success probability `p0`
/// (scipy `binomtest`). `Greater`: P(X >= k); `Less`: P(X <= k); `TwoSided`: total probability
/// of outcomes no more likely than `k`. The statistic is `k / n`.
pub fn binom_test(k: u64, n: u64, p0: f64, alternative: Alternative) -> Result<TestResult> {
    check_counts("binomial test", k, n)?;
    check_prob("binomial test null probability p0", p0, false)?;
    if n > MAX_EXACT_TRIALS {
        return Err(StatsError::TooLarge {
            what: "exact binomial test",
            detail: format!("{n} trials (limit {MAX_EXACT_TRIALS})"),
        });
    }
    let p = if p0 == 0.0 || p0 == 1.0 {
        // Degenerate null: everything but the certain outcome has probability zero.
        let certain = if p0 == 0.0 { 0 } else { n };
        let hit = k == certain;
        match alternative {
            Alternative::TwoSided => f64::from(u8::from(hit)),
            Alternative::Greater => f64::from(u8::from(k <= certain)),
            Alternative::Less => f64::from(u8::from(k >= certain)),
        }
    } else {
        let pmf = binom_pmf_all(n, p0);
        let k = k as usize;
        match alternative {
            Alternative::Greater => pmf[k..].iter().sum(),
            Alternative::Less => pmf[..=k].iter().sum(),
            Alternative::TwoSided => {
                if (k as f64 - p0 * n as f64).abs() < 1e-12 {
                    1.0
                } else {
                    let cut = pmf[k] * (1.0 + REL_TOL);
                    pmf.iter().filter(|&&q| q <= cut).sum()
                }
            }
        }
    };
    Ok(TestResult {
        statistic: k as f64 / n as f64,
        p_value: clip_p(p),
        method: "exact",
    })
}

/// Clopper–Pearson (1934) exact two-sided interval for a binomial proportion: the bounds invert
/// two one-sided binomial tests, via Beta quantiles. Coverage is at least `conf`.
pub fn clopper_pearson(x: u64, n: u64, conf: f64) -> Result<Interval> {
    check_counts("Clopper-Pearson interval", x, n)?;
    check_conf(conf)?;
    let alpha = 1.0 - conf;
    let (xf, nf) = (x as f64, n as f64);
    let lower = if x == 0 {
        0.0
    } else {
        beta_ppf(alpha / 2.0, xf, nf - xf + 1.0)
    };
    let upper = if x == n {
        1.0
    } else {
        beta_ppf(1.0 - alpha / 2.0, xf + 1.0, nf - xf)
    };
    Ok(Interval {
        estimate: xf / nf,
        lower,
        upper,
    })
}

/// Wilson (1927) score interval for a binomial proportion (no continuity correction).
pub fn wilson(x: u64, n: u64, conf: f64) -> Result<Interval> {
    check_counts("Wilson interval", x, n)?;
    check_conf(conf)?;
    let z = norm_ppf(1.0 - (1.0 - conf) / 2.0);
    let (xf, nf) = (x as f64, n as f64);
    let p = xf / nf;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * nf)) / (1.0 + z2 / nf);
    let half = z / (1.0 + z2 / nf) * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    Ok(Interval {
        estimate: p,
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

/// Newcombe (1998, method 10) hybrid score interval for p1 − p2, built from the two Wilson
/// intervals. Good coverage at small counts and rates near 0, unlike the Wald interval.
pub fn newcombe_diff(x1: u64, n1: u64, x2: u64, n2: u64, conf: f64) -> Result<Interval> {
    let w1 = wilson(x1, n1, conf)?;
    let w2 = wilson(x2, n2, conf)?;
    let (p1, p2) = (w1.estimate, w2.estimate);
    let d = p1 - p2;
    let lower = d - ((p1 - w1.lower).powi(2) + (w2.upper - p2).powi(2)).sqrt();
    let upper = d + ((w1.upper - p1).powi(2) + (p2 - w2.lower).powi(2)).sqrt();
    Ok(Interval {
        estimate: d,
        lower: lower.max(-1.0),
        upper: upper.min(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_textbook_value() {
        // 81 of 263 at 95%: Wilson (0.2553, 0.3662), Newcombe (1998) Table I style check.
        let w = wilson(81, 263, 0.95).unwrap();
        assert!(
            (w.lower - 0.25528).abs() < 1e-4 && (w.upper - 0.36622).abs() < 1e-4,
            "{w:?}"
        );
    }

    #[test]
    fn newcombe_matches_published_example() {
        // Newcombe (1998) example (56/70 vs 48/80), method 10: 0.0524 to 0.3339.
        let i = newcombe_diff(56, 70, 48, 80, 0.95).unwrap();
        assert!(
            (i.lower - 0.0524).abs() < 1e-4 && (i.upper - 0.3339).abs() < 1e-4,
            "{i:?}"
        );
    }

    #[test]
    fn zero_trials_and_bad_confidence_are_errors() {
        assert!(wilson(0, 0, 0.95).is_err());
        assert!(clopper_pearson(1, 10, 1.5).is_err());
        assert!(binom_test(11, 10, 0.5, Alternative::TwoSided).is_err());
    }
}
