//! Interim statistics used by the verdict engine until `crate::stats` provides them.
//!
//! Every function here has the name and meaning of its planned `crate::stats` counterpart, so
//! switching over is a matter of replacing this module with re-exports. Only the handful of
//! tests the verdict engine needs, in their textbook forms.

use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::factorial::ln_binomial;

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// An estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

fn z_for(confidence: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    n.inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

fn norm_sf(z: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    1.0 - n.cdf(z)
}

/// Fisher's exact test on the 2×2 table [[a, b], [c, d]], two-sided by the R/scipy convention
/// (sum of the probabilities of tables no more likely than the observed one).
pub fn fisher_exact_two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let row1 = a + b;
    let col1 = a + c;
    let n = a + b + c + d;
    if n == 0 {
        return 1.0;
    }
    let lo = col1.saturating_sub(n - row1);
    let hi = row1.min(col1);
    let ln_denom = ln_binomial(n, col1);
    let lp = |x: u64| ln_binomial(row1, x) + ln_binomial(n - row1, col1 - x) - ln_denom;
    let observed = lp(a);
    let p: f64 = (lo..=hi)
        .map(lp)
        .filter(|&l| l <= observed + 1e-7)
        .map(f64::exp)
        .sum();
    p.clamp(0.0, 1.0)
}

/// Exact McNemar test: two-sided binomial test of `b` successes in `b + c` trials at 1/2.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let tail: f64 = (0..=k)
        .map(|i| (ln_binomial(n, i) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    (2.0 * tail).min(1.0)
}

/// Wilson score interval for `x` successes in `n` trials.
pub fn wilson(x: u64, n: u64, confidence: f64) -> Interval {
    if n == 0 {
        return Interval {
            lower: 0.0,
            upper: 1.0,
        };
    }
    let z = z_for(confidence);
    let n = n as f64;
    let p = x as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Interval {
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    }
}

/// Newcombe's hybrid score interval (method 10, Newcombe 1998) for p2 − p1.
pub fn newcombe_diff(x1: u64, n1: u64, x2: u64, n2: u64, confidence: f64) -> Interval {
    let p1 = if n1 == 0 { 0.0 } else { x1 as f64 / n1 as f64 };
    let p2 = if n2 == 0 { 0.0 } else { x2 as f64 / n2 as f64 };
    let w1 = wilson(x1, n1, confidence);
    let w2 = wilson(x2, n2, confidence);
    let d = p2 - p1;
    let lower = d - ((p2 - w2.lower).powi(2) + (w1.upper - p1).powi(2)).sqrt();
    let upper = d + ((w2.upper - p2).powi(2) + (p1 - w1.lower).powi(2)).sqrt();
    Interval {
        lower: lower.max(-1.0),
        upper: upper.min(1.0),
    }
}

/// Mann–Whitney U, two-sided, normal approximation with tie-corrected variance and continuity
/// correction (scipy's `asymptotic` method). Returns the p-value.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(f64, usize)> = x
        .iter()
        .map(|&v| (v, 0))
        .chain(y.iter().map(|&v| (v, 1)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let mid = (i + j) as f64 / 2.0 + 1.0;
        tie_term += t * t * t - t;
        rank_sum_x += all[i..=j].iter().filter(|e| e.1 == 0).count() as f64 * mid;
        i = j + 1;
    }
    let u = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let nn = n1 + n2;
    let var = n1 * n2 / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - n1 * n2 / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * norm_sf(z)).min(1.0)
}

/// Cliff's delta P(y > x) − P(y < x), with an interval from the null variance of U
/// (a simple approximation).
pub fn cliffs_delta(x: &[f64], y: &[f64], confidence: f64) -> Estimate {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return Estimate {
            estimate: 0.0,
            lower: -1.0,
            upper: 1.0,
        };
    }
    let mut xs = x.to_vec();
    xs.sort_by(f64::total_cmp);
    let mut greater = 0.0;
    let mut less = 0.0;
    for &v in y {
        let below = xs.partition_point(|&a| a < v) as f64;
        let not_above = xs.partition_point(|&a| a <= v) as f64;
        greater += below;
        less += n1 - not_above;
    }
    let d = (greater - less) / (n1 * n2);
    let se = ((n1 + n2 + 1.0) / (3.0 * n1 * n2)).sqrt();
    let z = z_for(confidence);
    Estimate {
        estimate: d,
        lower: (d - z * se).max(-1.0),
        upper: (d + z * se).min(1.0),
    }
}

/// Hodges–Lehmann shift (median of y − x over all pairs) with the distribution-free interval
/// from the Mann–Whitney critical value (normal approximation).
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> Estimate {
    if x.is_empty() || y.is_empty() {
        return Estimate {
            estimate: 0.0,
            lower: f64::NEG_INFINITY,
            upper: f64::INFINITY,
        };
    }
    let mut diffs: Vec<f64> = Vec::with_capacity(x.len() * y.len());
    for &b in y {
        for &a in x {
            diffs.push(b - a);
        }
    }
    diffs.sort_by(f64::total_cmp);
    let m = diffs.len();
    let median = if m % 2 == 1 {
        diffs[m / 2]
    } else {
        (diffs[m / 2 - 1] + diffs[m / 2]) / 2.0
    };
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let z = z_for(confidence);
    let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).floor();
    let k = if k < 0.0 { 0 } else { k as usize };
    let lower = diffs[k.min(m - 1)];
    let upper = diffs[(m - 1).saturating_sub(k)];
    Estimate {
        estimate: median,
        lower,
        upper,
    }
}

/// Benjamini–Hochberg adjusted p-values (step-up), in input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut out = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank_from_top, &i) in order.iter().enumerate() {
        let rank = (m - rank_from_top) as f64;
        running = running.min(p[i] * m as f64 / rank);
        out[i] = running.min(1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fisher_matches_scipy_on_a_classic_table() {
        // scipy.stats.fisher_exact([[8, 2], [1, 5]]) → p = 0.034965034965035
        let p = fisher_exact_two_sided(8, 2, 1, 5);
        assert!((p - 0.034965034965035).abs() < 1e-12, "{p}");
    }

    #[test]
    fn mcnemar_exact_is_a_binomial_tail() {
        // binomtest(1, 10, 0.5).pvalue = 0.021484375
        assert!((mcnemar_exact(1, 9) - 0.021484375).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }

    #[test]
    fn newcombe_contains_the_difference() {
        let i = newcombe_diff(5, 100, 15, 100, 0.95);
        assert!(i.lower < 0.10 && 0.10 < i.upper);
        assert!(i.lower > 0.0, "a clear increase excludes zero: {i:?}");
    }

    #[test]
    fn bh_is_monotone_and_bounded() {
        let adj = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        assert!((adj[0] - 0.04).abs() < 1e-12);
        assert!((adj[1] - 0.04 * 4.0 / 3.0).abs() < 1e-12);
        assert!((adj[2] - 0.04 * 4.0 / 3.0).abs() < 1e-12);
        assert!((adj[3] - 0.5).abs() < 1e-12);
    }
}
