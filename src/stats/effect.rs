//! Effect sizes for two samples with confidence intervals: Cliff's delta (ordinal dominance) and
//! the Hodges–Lehmann shift. Both are rank-based, robust to heavy tails and to monotone
//! transforms (delta fully, HL in its ordering), which suits response lengths.

use super::dist::norm_ppf;
use super::rank::sorted;
use super::{Interval, Result, check_conf, check_sample};

/// Cliff's delta δ = (#(x > y) − #(x < y)) / (n m), in [−1, 1], with Cliff's (1993) variance
/// estimate and the asymmetric interval of Feng & Cliff (2004):
/// (δ − δ³ ± z s √((1 − δ²)² + z² s²)) / (1 − δ² + z² s²), which stays inside [−1, 1].
/// O((n + m) log(n + m)).
pub fn cliffs_delta(x: &[f64], y: &[f64], conf: f64) -> Result<Interval> {
    check_sample("Cliff's delta first sample", x, 1)?;
    check_sample("Cliff's delta second sample", y, 1)?;
    check_conf(conf)?;
    let sx = sorted(x);
    let sy = sorted(y);
    let (n, m) = (sx.len() as f64, sy.len() as f64);
    // Row dominance d_i. for each x_i and column dominance d_.j for each y_j.
    let dom = |v: f64, s: &[f64]| {
        let below = s.partition_point(|&w| w < v) as f64;
        let above = (s.len() - s.partition_point(|&w| w <= v)) as f64;
        (below, above)
    };
    let mut gt = 0.0;
    let mut lt = 0.0;
    let mut rows = Vec::with_capacity(sx.len());
    for &v in &sx {
        let (below, above) = dom(v, &sy);
        gt += below;
        lt += above;
        rows.push((below - above) / m);
    }
    let cols: Vec<f64> = sy
        .iter()
        .map(|&v| {
            let (below, above) = dom(v, &sx);
            (above - below) / n
        })
        .collect();
    let delta = (gt - lt) / (n * m);
    let ties = n * m - gt - lt;
    let ss_rows: f64 = rows.iter().map(|d| (d - delta).powi(2)).sum();
    let ss_cols: f64 = cols.iter().map(|d| (d - delta).powi(2)).sum();
    let ss_all = (n * m - ties) - n * m * delta * delta;
    let var = if n > 1.0 && m > 1.0 {
        (m * m * ss_rows + n * n * ss_cols - ss_all) / (n * m * (n - 1.0) * (m - 1.0))
    } else {
        f64::INFINITY
    };
    // Cliff's floor keeps the variance positive when the samples separate completely.
    // (At |δ| = 1 the floor uses |δ| = 1 − 1/(nm) so the interval stays non-degenerate.)
    let d_floor = delta.abs().min(1.0 - 1.0 / (n * m).max(2.0));
    let var = var.max((1.0 - d_floor * d_floor) / (n * m - 1.0).max(1.0));
    let z = norm_ppf(1.0 - (1.0 - conf) / 2.0);
    let (lower, upper) = if var.is_finite() {
        let s = var.sqrt();
        let dc = delta.signum() * d_floor;
        let d2 = dc * dc;
        let root = z * s * ((1.0 - d2).powi(2) + z * z * s * s).sqrt();
        let den = 1.0 - d2 + z * z * s * s;
        (
            ((dc - dc * d2 - root) / den).max(-1.0),
            ((dc - dc * d2 + root) / den).min(1.0),
        )
    } else {
        (-1.0, 1.0)
    };
    Ok(Interval {
        estimate: delta,
        lower: lower.min(delta),
        upper: upper.max(delta),
    })
}

/// Hodges–Lehmann shift: the median of all n·m differences y_j − x_i (positive when y tends to
/// be larger), with the distribution-free interval of Lehmann (1963) / Bauer (1972):
/// [D₍k₎, D₍nm+1−k₎], k = ⌊nm/2 − z √(nm(n+m+1)/12)⌋ (normal approximation to the
/// Mann–Whitney critical value). Order statistics of the differences are found by bisection
/// with O(n + m) counting, so large samples never materialise the n·m differences.
pub fn hodges_lehmann(x: &[f64], y: &[f64], conf: f64) -> Result<Interval> {
    check_sample("Hodges-Lehmann first sample", x, 1)?;
    check_sample("Hodges-Lehmann second sample", y, 1)?;
    check_conf(conf)?;
    let sx = sorted(x);
    let sy = sorted(y);
    let total = sx.len() as u64 * sy.len() as u64;
    let diffs = Diffs::new(&sx, &sy);
    let estimate = if total % 2 == 1 {
        diffs.kth(total / 2)
    } else {
        0.5 * (diffs.kth(total / 2 - 1) + diffs.kth(total / 2))
    };
    let (n, m) = (sx.len() as f64, sy.len() as f64);
    let z = norm_ppf(1.0 - (1.0 - conf) / 2.0);
    let k = (n * m / 2.0 - z * (n * m * (n + m + 1.0) / 12.0).sqrt()).floor();
    let (lower, upper) = if k >= 1.0 {
        let k = k as u64;
        (diffs.kth(k - 1), diffs.kth(total - k))
    } else {
        (diffs.kth(0), diffs.kth(total - 1))
    };
    Ok(Interval {
        estimate,
        lower,
        upper,
    })
}

/// Order statistics of the pairwise differences y_j − x_i of two sorted samples.
struct Diffs<'a> {
    sx: &'a [f64],
    sy: &'a [f64],
    all: Option<Vec<f64>>,
}

impl<'a> Diffs<'a> {
    const MATERIALISE_LIMIT: u64 = 1 << 12;

    fn new(sx: &'a [f64], sy: &'a [f64]) -> Self {
        let total = sx.len() as u64 * sy.len() as u64;
        let all = (total <= Self::MATERIALISE_LIMIT).then(|| Self::all_sorted(sx, sy));
        Diffs { sx, sy, all }
    }

    /// Every difference, sorted (small samples: simpler and faster than bisection).
    fn all_sorted(sx: &[f64], sy: &[f64]) -> Vec<f64> {
        let mut v: Vec<f64> = sy
            .iter()
            .flat_map(|&b| sx.iter().map(move |&a| b - a))
            .collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    /// Number of differences <= t (two pointers; y_j − x_i is monotone in both indices even
    /// under rounding).
    fn count_le(&self, t: f64) -> u64 {
        let mut i = 0usize; // first index with y_j − x_i <= t
        let mut count = 0u64;
        for &b in self.sy {
            while i < self.sx.len() && b - self.sx[i] > t {
                i += 1;
            }
            count += (self.sx.len() - i) as u64;
        }
        count
    }

    /// The smallest difference strictly above `t` (+∞ if none).
    fn next_above(&self, t: f64) -> f64 {
        let mut best = f64::INFINITY;
        let mut end = 0usize; // number of x with b − x > t; grows with b
        for &b in self.sy {
            while end < self.sx.len() && b - self.sx[end] > t {
                end += 1;
            }
            if end > 0 {
                best = best.min(b - self.sx[end - 1]);
            }
        }
        best
    }

    /// The k-th smallest difference, 0-based.
    fn kth(&self, k: u64) -> f64 {
        if let Some(all) = &self.all {
            return all[k as usize];
        }
        let (sx, sy) = (self.sx, self.sy);
        let mut lo = sy[0] - sx[sx.len() - 1];
        let mut hi = sy[sy.len() - 1] - sx[0];
        let mut c_lo = self.count_le(lo);
        if c_lo > k {
            return lo;
        }
        // Invariant: count_le(lo) <= k < count_le(hi).
        let limit = (sx.len() + sy.len()) as u64 * 4;
        let mut c_hi = sx.len() as u64 * sy.len() as u64;
        loop {
            // Jump to the next distinct difference above lo: with heavily tied data (integer
            // token counts) the answer is often a value of huge multiplicity, found here.
            let v = self.next_above(lo);
            let c_v = self.count_le(v);
            if c_v > k {
                return v;
            }
            (lo, c_lo) = (v, c_v);
            let mid = lo + (hi - lo) / 2.0;
            if c_hi - c_lo <= limit || mid <= lo || mid >= hi {
                break;
            }
            let c_mid = self.count_le(mid);
            if c_mid > k {
                (hi, c_hi) = (mid, c_mid);
            } else {
                // (c_lo is refreshed by the jump at the top of the loop.)
                lo = mid;
            }
        }
        // Enumerate the few differences in (lo, hi] and select.
        let mut window = Vec::new();
        for &b in sy {
            let start = sx.partition_point(|&a| b - a > hi);
            let end = sx.partition_point(|&a| b - a > lo);
            window.extend(sx[start..end].iter().map(|&a| b - a));
        }
        let idx = (k - c_lo) as usize;
        if idx >= window.len() {
            return hi;
        }
        let (_, v, _) = window.select_nth_unstable_by(idx, f64::total_cmp);
        *v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn bisection_selection_agrees_with_sorting() {
        let mut r = Rng::new(3);
        let x: Vec<f64> = (0..300)
            .map(|_| (r.lognormal(100.0, 0.5)).round())
            .collect();
        let y: Vec<f64> = (0..250)
            .map(|_| (r.lognormal(110.0, 0.5)).round())
            .collect();
        let sx = sorted(&x);
        let sy = sorted(&y);
        let full = Diffs {
            sx: &sx,
            sy: &sy,
            all: Some(Diffs::all_sorted(&sx, &sy)),
        };
        let lazy = Diffs {
            sx: &sx,
            sy: &sy,
            all: None,
        };
        for k in [0u64, 1, 999, 37_499, 37_500, 74_999] {
            assert_eq!(full.kth(k), lazy.kth(k), "k={k}");
        }
        // Heavy ties: few distinct values, each difference repeated thousands of times.
        let x: Vec<f64> = (0..400).map(|_| r.below(5) as f64).collect();
        let y: Vec<f64> = (0..300).map(|_| r.below(6) as f64).collect();
        let (sx, sy) = (sorted(&x), sorted(&y));
        let full = Diffs {
            sx: &sx,
            sy: &sy,
            all: Some(Diffs::all_sorted(&sx, &sy)),
        };
        let lazy = Diffs {
            sx: &sx,
            sy: &sy,
            all: None,
        };
        for k in [0u64, 5_000, 59_999, 60_000, 119_999] {
            assert_eq!(full.kth(k), lazy.kth(k), "tied k={k}");
        }
    }

    #[test]
    fn cliffs_delta_complete_separation() {
        let d = cliffs_delta(&[5.0, 6.0, 7.0], &[1.0, 2.0, 3.0], 0.95).unwrap();
        assert_eq!(d.estimate, 1.0);
        assert!(d.lower > 0.0 && d.upper <= 1.0);
    }

    #[test]
    fn hodges_lehmann_recovers_a_pure_shift() {
        let x: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 7.0).collect();
        let hl = hodges_lehmann(&x, &y, 0.95).unwrap();
        assert_eq!(hl.estimate, 7.0);
        assert!(hl.lower < 7.0 && hl.upper > 7.0);
    }
}
