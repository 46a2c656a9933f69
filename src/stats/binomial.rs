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

/// Newcombe (1998b, "Improved confidence intervals for the difference between binomial
/// proportions based on paired data", Stat Med 17:2635, method 10) interval for p1 − p2 on
/// paired data: cells `both` (event on both sides), `only1`, `only2`, `neither`, so that
/// p1 = (both + only1)/n and p2 = (both + only2)/n. The two Wilson intervals are combined
/// with the correlation φ of the 2×2 table (its numerator ad − bc reduced by n/2 when
/// above it, 0 when in [0, n/2]), so pairs that agree (identical answers) narrow the interval
/// far below the unpaired one; with φ = 0 it is the unpaired [`newcombe_diff`].
pub fn newcombe_paired_diff(
    both: u64,
    only1: u64,
    only2: u64,
    neither: u64,
    conf: f64,
) -> Result<Interval> {
    let n = both + only1 + only2 + neither;
    let w1 = wilson(both + only1, n, conf)?;
    let w2 = wilson(both + only2, n, conf)?;
    let (p1, p2) = (w1.estimate, w2.estimate);
    let (a, b, c, d) = (both as f64, only1 as f64, only2 as f64, neither as f64);
    let det = a * d - b * c;
    let nf = n as f64;
    let numerator = if det > nf / 2.0 {
        det - nf / 2.0
    } else if det < 0.0 {
        det
    } else {
        0.0
    };
    let margins = (a + b) * (c + d) * (a + c) * (b + d);
    let phi = if margins > 0.0 {
        numerator / margins.sqrt()
    } else {
        0.0
    };
    let (dl1, du1) = (p1 - w1.lower, w1.upper - p1);
    let (dl2, du2) = (p2 - w2.lower, w2.upper - p2);
    let est = p1 - p2;
    let delta = (dl1 * dl1 - 2.0 * phi * dl1 * du2 + du2 * du2)
        .max(0.0)
        .sqrt();
    let epsilon = (du1 * du1 - 2.0 * phi * du1 * dl2 + dl2 * dl2)
        .max(0.0)
        .sqrt();
    Ok(Interval {
        estimate: est,
        lower: (est - delta).max(-1.0),
        upper: (est + epsilon).min(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_newcombe_without_correlation_is_the_unpaired_one() {
        // ad − bc = 0: φ = 0, so the paired interval is the unpaired one on the margins.
        let p = newcombe_paired_diff(10, 10, 10, 10, 0.95).unwrap();
        let u = newcombe_diff(20, 40, 20, 40, 0.95).unwrap();
        assert!((p.lower - u.lower).abs() < 1e-12 && (p.upper - u.upper).abs() < 1e-12);
        // 0 ≤ ad − bc = 4 ≤ n/2 = 10: φ is taken as 0 too.
        let p = newcombe_paired_diff(1, 3, 3, 13, 0.95).unwrap();
        let u = newcombe_diff(4, 20, 4, 20, 0.95).unwrap();
        assert!((p.lower - u.lower).abs() < 1e-12 && (p.upper - u.upper).abs() < 1e-12);
    }

    #[test]
    fn paired_newcombe_matches_an_independent_implementation() {
        // Reference: biostatUZH::confIntPairedProportion (Rufibach, after Newcombe 1998b and
        // Altman et al. 2000, p. 52), its R code evaluated in Python.
        let i = newcombe_paired_diff(8, 5, 1, 16, 0.95).unwrap();
        assert!((i.estimate - 4.0 / 30.0).abs() < 1e-12);
        assert!(
            (i.lower + 0.031_799).abs() < 1e-5 && (i.upper - 0.287_216).abs() < 1e-5,
            "{i:?}"
        );
        // Identical pairs (3 of 60 bad on both sides): far narrower than unpaired (±9.3).
        let p = newcombe_paired_diff(3, 0, 0, 57, 0.95).unwrap();
        assert!(
            (p.lower + 0.062_734).abs() < 1e-5 && (p.upper - 0.062_734).abs() < 1e-5,
            "{p:?}"
        );
        let u = newcombe_diff(3, 60, 3, 60, 0.95).unwrap();
        assert!(p.upper < 0.7 * u.upper, "{p:?} vs {u:?}");
        let q = newcombe_paired_diff(10, 10, 10, 10, 0.95).unwrap();
        assert!((q.upper - 0.209_310).abs() < 1e-5, "{q:?}");
    }

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
