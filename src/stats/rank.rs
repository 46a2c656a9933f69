//! Ranking helpers shared by the rank tests.

/// Sorts a copy of `xs` (validated finite) ascending.
pub(crate) fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// Mid-ranks (1-based, ties get the average rank) of `xs`, like scipy's `rankdata`.
pub fn midranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_unstable_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Mid-rank placement of `x` within a sorted reference sample: the fraction of reference values
/// below `x`, counting ties as one half. In [0, 1]; exactly 1/2 in expectation when `x` and the
/// reference are exchangeable.
pub fn placement(sorted_reference: &[f64], x: f64) -> f64 {
    if sorted_reference.is_empty() {
        return 0.5;
    }
    let below = sorted_reference.partition_point(|&v| v < x);
    let not_above = sorted_reference.partition_point(|&v| v <= x);
    (below as f64 + 0.5 * (not_above - below) as f64) / sorted_reference.len() as f64
}

/// Statistics of two samples merged in sorted order: the rank sum of the first sample (mid-ranks)
/// and Σ(t³ − t) over tie groups. O((n+m) log(n+m)).
pub(crate) struct RankSum {
    pub r1: f64,
    pub tie_term: f64,
    pub has_ties: bool,
}

pub(crate) fn rank_sum(x: &[f64], y: &[f64]) -> RankSum {
    let sx = sorted(x);
    let sy = sorted(y);
    let (mut i, mut j) = (0usize, 0usize);
    let mut rank = 0usize; // number of values already placed
    let mut r1 = 0.0;
    let mut tie_term = 0.0;
    let mut has_ties = false;
    while i < sx.len() || j < sy.len() {
        let v = match (sx.get(i), sy.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let mut cx = 0usize;
        while i < sx.len() && sx[i] == v {
            i += 1;
            cx += 1;
        }
        let mut cy = 0usize;
        while j < sy.len() && sy[j] == v {
            j += 1;
            cy += 1;
        }
        let t = cx + cy;
        let mid = rank as f64 + (t as f64 + 1.0) / 2.0;
        r1 += cx as f64 * mid;
        if t > 1 {
            has_ties = true;
            let tf = t as f64;
            tie_term += tf * tf * tf - tf;
        }
        rank += t;
    }
    RankSum {
        r1,
        tie_term,
        has_ties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midranks_average_ties() {
        assert_eq!(
            midranks(&[10.0, 20.0, 10.0, 30.0]),
            vec![1.5, 3.0, 1.5, 4.0]
        );
    }

    #[test]
    fn rank_sum_matches_midranks() {
        let x = [3.0, 1.0, 4.0, 1.0, 5.0];
        let y = [9.0, 2.0, 6.0, 5.0];
        let all: Vec<f64> = x.iter().chain(y.iter()).copied().collect();
        let r = midranks(&all);
        let rs = rank_sum(&x, &y);
        assert_eq!(rs.r1, r[..5].iter().sum::<f64>());
        assert_eq!(rs.tie_term, 12.0);
        assert!(rs.has_ties);
    }

    #[test]
    fn placement_counts_half_ties() {
        let r = [1.0, 2.0, 2.0, 3.0];
        assert_eq!(placement(&r, 2.0), 0.5);
        assert_eq!(placement(&r, 0.0), 0.0);
        assert_eq!(placement(&r, 9.0), 1.0);
    }
}
