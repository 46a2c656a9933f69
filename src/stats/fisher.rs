//! Fisher's exact test for a 2×2 table (Fisher 1935; two-sided by the R / scipy convention).

use super::dist::hypergeom_pmf_all;
use super::{Alternative, Result, StatsError, TestResult, clip_p};

/// Relative tolerance for "as or less likely than the observed table" (R's `fisher.test`).
const REL_TOL: f64 = 1e-7;

/// Fisher's exact test for the table `[[a, b], [c, d]]`.
///
/// The statistic is the sample odds ratio `ad / bc` (∞ when `bc = 0 < ad`, NaN-free: 0/0 → 1).
/// Under the null (row and column totals fixed) `a` is hypergeometric. `Greater` tests odds
/// ratio > 1 (`P(A >= a)`), `Less` odds ratio < 1, `TwoSided` sums the probabilities of all
/// tables no more likely than the observed one.
pub fn fisher_exact(
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    alternative: Alternative,
) -> Result<TestResult> {
    let n = a + b + c + d;
    if n == 0 {
        return Err(StatsError::ZeroTotal {
            what: "Fisher's exact test table",
        });
    }
    let num = a as f64 * d as f64;
    let den = b as f64 * c as f64;
    let odds = if den > 0.0 {
        num / den
    } else if num > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let r1 = a + b;
    let c1 = a + c;
    let (lo, pmf) = hypergeom_pmf_all(r1, c1, n);
    let i = (a - lo) as usize;
    let p = match alternative {
        Alternative::Less => pmf[..=i].iter().sum::<f64>(),
        Alternative::Greater => pmf[i..].iter().sum::<f64>(),
        Alternative::TwoSided => {
            let cut = pmf[i] * (1.0 + REL_TOL);
            pmf.iter().filter(|&&q| q <= cut).sum::<f64>()
        }
    };
    Ok(TestResult {
        statistic: odds,
        p_value: clip_p(p),
        method: "exact",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tea_tasting_one_sided() {
        // Fisher's lady tasting tea: 3 of 4 right, P = 17/70.
        let r = fisher_exact(3, 1, 1, 3, Alternative::Greater).unwrap();
        assert!((r.p_value - 17.0 / 70.0).abs() < 1e-14);
        assert_eq!(r.statistic, 9.0);
    }

    #[test]
    fn swapping_rows_mirrors_direction() {
        let g = fisher_exact(8, 2, 1, 5, Alternative::Greater)
            .unwrap()
            .p_value;
        let l = fisher_exact(1, 5, 8, 2, Alternative::Less).unwrap().p_value;
        assert!((g - l).abs() < 1e-14);
    }

    #[test]
    fn empty_table_is_an_error() {
        assert!(fisher_exact(0, 0, 0, 0, Alternative::TwoSided).is_err());
    }
}
