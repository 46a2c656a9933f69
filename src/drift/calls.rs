//! Glue to [`crate::stats`]: the orientation the verdict engine uses everywhere (candidate
//! minus baseline, positive = candidate larger) and a neutral answer where a test has no
//! information to work with.

use crate::stats::{self, Alternative, Interval};

/// Two-sided Fisher exact p-value, candidate `xc` of `nc` against baseline `xb` of `nb`.
/// An empty table carries no evidence: 1.
pub(crate) fn fisher_p(xc: u64, nc: u64, xb: u64, nb: u64) -> f64 {
    stats::fisher_exact(xc, nc - xc, xb, nb - xb, Alternative::TwoSided).map_or(1.0, |t| t.p_value)
}

/// Exact McNemar p-value on the discordant pairs (`b`: baseline only, `c`: candidate only).
/// No discordant pair carries no evidence: 1.
pub(crate) fn mcnemar_p(b: u64, c: u64) -> f64 {
    stats::mcnemar_exact(b, c).map_or(1.0, |t| t.p_value)
}

/// Newcombe interval for the rate difference candidate − baseline; `None` when a side is empty.
pub(crate) fn rate_difference(xb: u64, nb: u64, xc: u64, nc: u64, conf: f64) -> Option<Interval> {
    stats::newcombe_diff(xc, nc, xb, nb, conf).ok()
}

/// Wilson interval of one rate; `None` without samples.
pub(crate) fn rate_interval(x: u64, n: u64, conf: f64) -> Option<Interval> {
    stats::wilson(x, n, conf).ok()
}

/// Two-sided Mann–Whitney p-value (scipy's `auto` method). No usable data: 1.
pub(crate) fn shift_p(baseline: &[f64], candidate: &[f64]) -> f64 {
    stats::mann_whitney_u(candidate, baseline, Alternative::TwoSided).map_or(1.0, |t| t.p_value)
}

/// Cliff's delta, positive when the candidate tends to be larger.
pub(crate) fn cliffs_delta(baseline: &[f64], candidate: &[f64], conf: f64) -> Option<Interval> {
    stats::cliffs_delta(candidate, baseline, conf).ok()
}

/// Hodges–Lehmann shift candidate − baseline.
pub(crate) fn hodges_lehmann(baseline: &[f64], candidate: &[f64], conf: f64) -> Option<Interval> {
    stats::hodges_lehmann(baseline, candidate, conf).ok()
}

/// Benjamini–Hochberg adjusted p-values, in input order.
pub(crate) fn bh(p: &[f64]) -> Vec<f64> {
    stats::benjamini_hochberg(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_is_candidate_minus_baseline() {
        let d = rate_difference(5, 100, 15, 100, 0.95).unwrap();
        assert!((d.estimate - 0.10).abs() < 1e-12);
        assert!(d.lower > 0.0);
        let (b, c) = ([1.0, 2.0, 3.0, 4.0], [11.0, 12.0, 13.0, 14.0]);
        assert!(cliffs_delta(&b, &c, 0.95).unwrap().estimate > 0.99);
        assert!((hodges_lehmann(&b, &c, 0.95).unwrap().estimate - 10.0).abs() < 1e-12);
    }

    #[test]
    fn no_information_is_no_evidence() {
        assert_eq!(fisher_p(0, 0, 0, 0), 1.0);
        assert_eq!(mcnemar_p(0, 0), 1.0);
        assert!(rate_interval(0, 0, 0.95).is_none());
        assert_eq!(shift_p(&[], &[1.0]), 1.0);
    }
}
