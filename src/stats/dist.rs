//! Distribution functions the tests need, thin wrappers over statrs' special functions plus the
//! finite-n Kolmogorov distribution (`kstwo`), which statrs lacks.
//!
//! Inputs here are already validated by the callers; the functions return finite values in
//! [0, 1] for probabilities.

use statrs::function::beta::beta_reg;
use statrs::function::erf::{erfc, erfc_inv};
use statrs::function::gamma::{gamma_ur, ln_gamma};

/// Standard normal upper tail P(Z > z).
pub fn norm_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Standard normal CDF P(Z <= z).
pub fn norm_cdf(z: f64) -> f64 {
    norm_sf(-z)
}

/// Standard normal quantile, `q` in (0, 1).
pub fn norm_ppf(q: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * q)
}

/// Chi-square upper tail with `df` degrees of freedom.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if df == 1.0 {
        // Exact identity; keeps full relative precision far in the tail.
        return erfc((x / 2.0).sqrt());
    }
    gamma_ur(df / 2.0, x / 2.0)
}

/// ln(n choose k).
pub fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// The whole probability mass function of a distribution on 0..=len-1 given by its unnormalised
/// log-mass at the mode and the ratio pmf(k+1)/pmf(k). Walking outward from the mode by ratios
/// keeps neighbouring terms mutually consistent (so "sum of terms <= pmf(observed)" is exact up to
/// rounding) and avoids repeated `ln_gamma`.
fn pmf_by_ratios(
    len: usize,
    mode: usize,
    ln_at_mode: f64,
    ratio: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let mut p = vec![0.0; len];
    p[mode] = ln_at_mode.exp();
    for k in mode..len - 1 {
        p[k + 1] = p[k] * ratio(k);
    }
    for k in (0..mode).rev() {
        let r = ratio(k);
        p[k] = if r > 0.0 { p[k + 1] / r } else { 0.0 };
    }
    p
}

/// Binomial(n, p) pmf for k = 0..=n, `p` in (0, 1).
pub fn binom_pmf_all(n: u64, p: f64) -> Vec<f64> {
    let len = n as usize + 1;
    let mode = (((n + 1) as f64 * p).floor() as usize).min(n as usize);
    let ln_mode =
        ln_choose(n, mode as u64) + mode as f64 * p.ln() + (n - mode as u64) as f64 * (-p).ln_1p();
    let odds = p / (1.0 - p);
    pmf_by_ratios(len, mode, ln_mode, |k| {
        (n - k as u64) as f64 / (k as f64 + 1.0) * odds
    })
}

/// Binomial lower tail P(X <= k) via the regularised incomplete beta function.
pub fn binom_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    beta_reg((n - k) as f64, k as f64 + 1.0, 1.0 - p)
}

/// Binomial upper tail P(X > k).
pub fn binom_sf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 0.0;
    }
    beta_reg(k as f64 + 1.0, (n - k) as f64, p)
}

/// Hypergeometric pmf for the top-left cell of a 2×2 table with row-1 total `r1`, column-1 total
/// `c1` and grand total `n`: returns (lowest support value, masses over the support).
pub fn hypergeom_pmf_all(r1: u64, c1: u64, n: u64) -> (u64, Vec<f64>) {
    let lo = (r1 + c1).saturating_sub(n);
    let hi = r1.min(c1);
    let len = (hi - lo) as usize + 1;
    let mode = (((r1 + 1) as f64 * (c1 + 1) as f64 / (n + 2) as f64).floor() as u64).clamp(lo, hi);
    let ln_mode = ln_choose(c1, mode) + ln_choose(n - c1, r1 - mode) - ln_choose(n, r1);
    let ratio = |i: usize| {
        let k = lo + i as u64;
        ((r1 - k) as f64 * (c1 - k) as f64)
            / ((k + 1) as f64 * (n as f64 - r1 as f64 - c1 as f64 + k as f64 + 1.0))
    };
    (lo, pmf_by_ratios(len, (mode - lo) as usize, ln_mode, ratio))
}

/// Beta(a, b) quantile by bisection on the regularised incomplete beta function (robust to
/// 1e-15 absolute; statrs' Newton inverse is not accurate enough in the tails for
/// Clopper–Pearson bounds).
pub fn beta_ppf(q: f64, a: f64, b: f64) -> f64 {
    if q <= 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_reg(a, b, mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Upper tail of the limiting Kolmogorov distribution, P(K > x) (scipy `kstwobign.sf`).
pub fn kstwobign_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        // Jacobi-transformed series converges fast for small x: CDF = sqrt(2π)/x Σ e^{-(2k-1)²π²/(8x²)}.
        let mut cdf = 0.0;
        for k in 1..=20 {
            let m = (2 * k - 1) as f64;
            cdf += (-m * m * std::f64::consts::PI.powi(2) / (8.0 * x * x)).exp();
        }
        cdf *= (2.0 * std::f64::consts::PI).sqrt() / x;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * x * x).exp();
        s += if k % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

/// One-sided exact Smirnov upper tail P(D⁺ₙ >= x) by the Birnbaum–Tingey (1951) sum
/// x Σ_{j=0}^{⌊n(1−x)⌋} C(n,j) (1−x−j/n)^{n−j} (x+j/n)^{j−1}, summed in log space.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let jmax = (nf * (1.0 - x)).floor() as u64;
    let ln_nfact = ln_gamma(nf + 1.0);
    let mut terms = Vec::with_capacity(jmax as usize + 1);
    let mut maxlog = f64::NEG_INFINITY;
    for j in 0..=jmax {
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        if a <= 0.0 {
            break;
        }
        let lt = ln_nfact - ln_gamma(jf + 1.0) - ln_gamma(nf - jf + 1.0)
            + (nf - jf) * a.ln()
            + (jf - 1.0) * (x + jf / nf).ln();
        terms.push(lt);
        if lt > maxlog {
            maxlog = lt;
        } else if lt < maxlog - 745.0 {
            // Terms are unimodal in j: everything further is below double precision.
            break;
        }
    }
    let s: f64 = terms.iter().map(|lt| (lt - maxlog).exp()).sum();
    (x * s.ln().exp() * maxlog.exp()).clamp(0.0, 1.0)
}

/// Upper tail of the finite-n two-sided Kolmogorov statistic, P(Dₙ > x) (scipy `kstwo.sf`).
///
/// Follows Simard & L'Ecuyer (2011), "Computing the two-sided Kolmogorov–Smirnov distribution",
/// J. Stat. Softw. 39(11), with scipy's branch points: Ruben–Gambino closed forms at the extremes,
/// 2·Smirnov where the one-sided tails are (numerically) disjoint, the Durbin matrix
/// (Marsaglia, Tsang & Wang 2003) for the exact CDF, and the Pelz–Good series for huge n.
pub fn kstwo_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        // P(Dₙ <= x) = n!/nⁿ (2t−1)ⁿ for 1/(2n) <= x <= 1/n.
        let ln_cdf = ln_gamma(nf + 1.0) - nf * nf.ln() + nf * (2.0 * t - 1.0).ln();
        return (-ln_cdf.exp()).ln_1p().exp().clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx2 = t * x;
    if n <= 140 {
        if nx2 <= 4.0 {
            return (1.0 - durbin_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nx2 >= 370.0 {
        return 0.0;
    }
    if nx2 >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// Exact P(Dₙ < x) by the Durbin matrix method, Marsaglia, Tsang & Wang (2003), "Evaluating
/// Kolmogorov's distribution", J. Stat. Softw. 8(18). Entries of H are non-negative, so the matrix
/// power has no cancellation; a running power-of-two exponent prevents overflow.
fn durbin_cdf(n: u64, d: f64) -> f64 {
    let nf = n as f64;
    let k = (nf * d).floor() as usize + 1;
    let m = 2 * k - 1;
    let h = k as f64 - nf * d;
    let mut hm = vec![0.0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                hm[i * m + j] = 1.0;
            }
        }
    }
    for i in 0..m {
        hm[i * m] -= h.powi(i as i32 + 1);
        hm[(m - 1) * m + i] -= h.powi((m - i) as i32);
    }
    hm[(m - 1) * m] += if 2.0 * h - 1.0 > 0.0 {
        (2.0 * h - 1.0).powi(m as i32)
    } else {
        0.0
    };
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                let f = i + 1 - j;
                for g in 1..=f {
                    hm[i * m + j] /= g as f64;
                }
            }
        }
    }
    let (q, e) = mat_pow(&hm, m, n);
    let mut s = q[(k - 1) * m + (k - 1)];
    // Multiply by n!/nⁿ in log space together with the tracked exponent.
    let ln = ln_gamma(nf + 1.0) - nf * nf.ln() + e as f64 * std::f64::consts::LN_2;
    s *= ln.exp();
    s.clamp(0.0, 1.0)
}

fn mat_mul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for l in 0..m {
            let av = a[i * m + l];
            if av == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += av * b[l * m + j];
            }
        }
    }
    c
}

/// A^n as (matrix, exponent) meaning matrix · 2^exponent.
fn mat_pow(a: &[f64], m: usize, n: u64) -> (Vec<f64>, i64) {
    let mut result: Option<(Vec<f64>, i64)> = None;
    let mut base = (a.to_vec(), 0i64);
    let mut e = n;
    while e > 0 {
        if e & 1 == 1 {
            result = Some(match result {
                None => base.clone(),
                Some((r, re)) => renorm(mat_mul(&r, &base.0, m), re + base.1, m),
            });
        }
        e >>= 1;
        if e > 0 {
            base = renorm(mat_mul(&base.0, &base.0, m), 2 * base.1, m);
        }
    }
    result.unwrap_or_else(|| {
        let mut id = vec![0.0; m * m];
        for i in 0..m {
            id[i * m + i] = 1.0;
        }
        (id, 0)
    })
}

fn renorm(mut a: Vec<f64>, mut e: i64, m: usize) -> (Vec<f64>, i64) {
    let centre = a[(m / 2) * m + m / 2];
    if centre > 0.0 && centre.is_finite() {
        let shift = centre.log2().floor() as i64;
        if shift.abs() > 100 {
            let f = (-(shift as f64) * std::f64::consts::LN_2).exp();
            for v in &mut a {
                *v *= f;
            }
            e += shift;
        }
    }
    (a, e)
}

/// Pelz & Good (1976) asymptotic series for P(Dₙ <= x), as in Simard & L'Ecuyer (2011) §2.
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z * z * z, z.powi(4), z.powi(6));
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut kk = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil().max(1.0) as u64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qp = q.powf(8.0 * k as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for i in 0..4 {
            kk[i] = kk[i] * qp + coeffs[i];
        }
    }
    let sqrt2pi = (2.0 * PI).sqrt();
    let denom = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for i in 0..4 {
        kk[i] *= q * sqrt2pi / denom[i];
    }
    let q2 = (-pi2 / 2.0 / z2).exp();
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    let sqrt3z = 3f64.sqrt() * z;
    for k in 1..=maxk {
        let kf = k as f64;
        let qk = q2.powf(kf * kf);
        k2extra += kf * kf * qk;
        let kpi = PI * kf;
        k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * kf * kf * qk;
    }
    kk[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let mut s = 0.0;
    for (i, v) in kk.iter().enumerate() {
        s += v / nf.powf(i as f64 / 2.0);
    }
    s.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_pmf_sums_to_one_and_matches_tails() {
        let p = binom_pmf_all(100, 0.02);
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        let tail: f64 = p[5..].iter().sum();
        assert!((tail - binom_sf(4, 100, 0.02)).abs() < 1e-13);
    }

    #[test]
    fn kstwo_branches_agree_with_each_other() {
        // Durbin matrix vs 2·Smirnov where both are (near) exact.
        for &(n, x) in &[(50u64, 0.3f64), (100, 0.2)] {
            let d = 1.0 - durbin_cdf(n, x);
            let s = 2.0 * smirnov_sf(n, x);
            assert!((d - s).abs() / d < 1e-6, "n={n} x={x}: {d} vs {s}");
        }
        // Pelz–Good vs Durbin at large n.
        let (n, x) = (5_000u64, 0.012);
        let a = durbin_cdf(n, x);
        let b = pelz_good_cdf(n, x);
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}
