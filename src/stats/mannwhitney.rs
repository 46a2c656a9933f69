//! Mann–Whitney U test (Mann & Whitney 1947), matching scipy's `mannwhitneyu`.
//!
//! Asymptotic: normal approximation with the tie-corrected variance
//! σ² = n₁n₂/12 · ((n+1) − Σ(t³−t)/(n(n−1))) and a ½ continuity correction.
//! Exact (no ties): the null law of U is given by the coefficients of the Gaussian binomial
//! [n₁+n₂ choose n₁]_q (Mann & Whitney 1947), built by polynomial division/multiplication in
//! O(min(n₁,n₂) · u) instead of enumerating the C(n₁+n₂, n₁) arrangements.

use super::dist::{ln_choose, norm_sf};
use super::rank::rank_sum;
use super::{Alternative, Result, StatsError, TestResult, check_sample, clip_p};

/// How to compute the Mann–Whitney p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MwuMethod {
    /// scipy's `auto`: exact when one sample has at most 8 values and there are no ties,
    /// asymptotic otherwise.
    Auto,
    /// Exact null distribution (ties ignored, as in scipy).
    Exact,
    /// Normal approximation.
    Asymptotic,
}

/// Mann–Whitney U with scipy's defaults (`method="auto"`, continuity correction on).
/// The statistic is U₁ = R₁ − n₁(n₁+1)/2 for the first sample; `Greater` means x tends to be
/// larger than y.
pub fn mann_whitney_u(x: &[f64], y: &[f64], alternative: Alternative) -> Result<TestResult> {
    mann_whitney_u_with(x, y, alternative, MwuMethod::Auto, true)
}

/// Mann–Whitney U with an explicit method and continuity correction (asymptotic only).
pub fn mann_whitney_u_with(
    x: &[f64],
    y: &[f64],
    alternative: Alternative,
    method: MwuMethod,
    continuity: bool,
) -> Result<TestResult> {
    check_sample("Mann-Whitney first sample", x, 1)?;
    check_sample("Mann-Whitney second sample", y, 1)?;
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let rs = rank_sum(x, y);
    let u1 = rs.r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let (u, factor) = match alternative {
        Alternative::TwoSided => (u1.max(u2), 2.0),
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
    };
    let exact = match method {
        MwuMethod::Exact => true,
        MwuMethod::Asymptotic => false,
        MwuMethod::Auto => x.len().min(y.len()) <= 8 && !rs.has_ties,
    };
    let (p, name) = if exact {
        (
            factor * exact_sf(x.len() as u64, y.len() as u64, u.trunc() as u64)?,
            "exact",
        )
    } else {
        let n = n1 + n2;
        let s = (n1 * n2 / 12.0 * ((n + 1.0) - rs.tie_term / (n * (n - 1.0)))).sqrt();
        let mut num = u - n1 * n2 / 2.0;
        if continuity {
            num -= 0.5;
        }
        let p = if s > 0.0 {
            norm_sf(num / s)
        } else if num > 0.0 {
            0.0
        } else {
            1.0
        };
        (factor * p, "asymptotic")
    };
    Ok(TestResult {
        statistic: u1,
        p_value: clip_p(p),
        method: name,
    })
}

/// P(U >= k) under the null for sample sizes n1, n2 (no ties).
fn exact_sf(n1: u64, n2: u64, k: u64) -> Result<f64> {
    let total_u = n1 * n2;
    if k == 0 {
        return Ok(1.0);
    }
    if k > total_u {
        return Ok(0.0);
    }
    // By symmetry P(U >= k) = P(U <= n1n2 − k); sum whichever tail is shorter.
    let kc = total_u - k;
    let (s, t) = (n1.min(n2), n1.max(n2));
    let ln_total = ln_choose(n1 + n2, s);
    if ln_total > 700.0 {
        return Err(StatsError::TooLarge {
            what: "exact Mann-Whitney distribution",
            detail: format!(
                "C({}, {}) arrangements overflow double precision",
                n1 + n2,
                s
            ),
        });
    }
    if k <= kc {
        // 1 − P(U <= k−1)
        let lower = lower_tail(s, t, k - 1, ln_total);
        Ok(1.0 - lower)
    } else {
        Ok(lower_tail(s, t, kc, ln_total))
    }
}

/// P(U <= maxu): coefficients of the Gaussian binomial up to degree maxu, normalised.
/// Integer arithmetic (exact) when it fits in i128, otherwise f64.
fn lower_tail(s: u64, t: u64, maxu: u64, ln_total: f64) -> f64 {
    let len = maxu as usize + 1;
    // Intermediate coefficients are at most total · (maxu + 1).
    let fits_int = ln_total + ((maxu + 1) as f64).ln() < 80.0; // e^80 ≈ 5.5e34 < 1.7e38
    if fits_int {
        let mut c = vec![0i128; len];
        c[0] = 1;
        gaussian_binomial(&mut c, s, t);
        let sum: i128 = c.iter().sum();
        (sum as f64 / choose_f64(s + t, s)).min(1.0)
    } else {
        let mut c = vec![0.0f64; len];
        c[0] = 1.0;
        gaussian_binomial(&mut c, s, t);
        let sum: f64 = c.iter().sum();
        (sum / choose_f64(s + t, s)).min(1.0)
    }
}

/// C(n, k) in floating point by the product Π (n−k+i)/i (relative error ~ k ulp).
fn choose_f64(n: u64, k: u64) -> f64 {
    (1..=k).fold(1.0, |acc, i| acc * (n - k + i) as f64 / i as f64)
}

/// In place: c ← c · Π_{k=1..s} (1 − q^{t+k}) / (1 − q^k), truncated to c's length.
fn gaussian_binomial<T>(c: &mut [T], s: u64, t: u64)
where
    T: Copy + std::ops::AddAssign + std::ops::SubAssign,
{
    let len = c.len();
    for k in 1..=s as usize {
        // Divide by (1 − q^k): prefix sums with stride k (all terms stay positive).
        for u in k..len {
            let prev = c[u - k];
            c[u] += prev;
        }
        // Multiply by (1 − q^{t+k}); descending so each source is the pre-update value.
        let shift = t as usize + k;
        if shift < len {
            for u in (shift..len).rev() {
                let prev = c[u - shift];
                c[u] -= prev;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_distribution_matches_enumeration_for_3_and_4() {
        // U for n1 = 3, n2 = 4 over all C(7,3) = 35 arrangements.
        let mut counts = [0u32; 13];
        for mask in 0u32..128 {
            if mask.count_ones() != 3 {
                continue;
            }
            let mut u = 0;
            let mut ys_before = 0;
            for k in 0..7 {
                if mask & (1 << k) != 0 {
                    u += ys_before;
                } else {
                    ys_before += 1;
                }
            }
            counts[u] += 1;
        }
        for k in 0..=12u64 {
            let want: u32 = counts[k as usize..].iter().sum();
            let got = exact_sf(3, 4, k).unwrap();
            assert!((got - want as f64 / 35.0).abs() < 1e-15, "k={k}");
        }
    }

    #[test]
    fn float_path_agrees_with_integer_path() {
        let (s, t, maxu) = (6u64, 30u64, 60u64);
        let ln_total = ln_choose(s + t, s);
        let mut ci = vec![0i128; maxu as usize + 1];
        ci[0] = 1;
        gaussian_binomial(&mut ci, s, t);
        let mut cf = vec![0.0f64; maxu as usize + 1];
        cf[0] = 1.0;
        gaussian_binomial(&mut cf, s, t);
        for (a, b) in ci.iter().zip(&cf) {
            assert!((*a as f64 - b).abs() <= 1e-12 * b.max(1.0));
        }
        assert!(lower_tail(s, t, maxu, ln_total) < 1.0);
    }
}
