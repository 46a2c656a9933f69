//! Confidence sequence by betting for the mean of paired differences of binary outcomes,
//! d = bad(candidate) − bad(current) ∈ {−1, 0, +1}: Waudby-Smith & Ramdas (2023), "Estimating
//! means of bounded random variables by betting", JRSS-B 86(1), with the bets mixed over a fixed
//! grid of betting fractions (Howard, Ramdas, McAuliffe & Sekhon 2021 §5: a mixture of test
//! martingales is a test martingale).
//!
//! To test H₀: E[d] ≥ m (the candidate is worse by the margin m or more) a gambler bets that d
//! falls below m: wealth Wₙ(m) = Πᵢ (1 + c·(m − dᵢ)) with c = λ/(1 − m), λ ∈ (0, 1), so every
//! factor stays positive for d ∈ [−1, 1]. Under H₀ each factor has expectation ≤ 1, so the
//! wealth is a non-negative supermartingale and by Ville's inequality P(∃n: Wₙ ≥ 1/α) ≤ α.
//! The mirror bet tests H₀: E[d] ≤ m. With a fixed λ the wealth depends only on the counts of
//! −1, 0 and +1, so the state is three counters and the bound is order-free.
//!
//! The mixture averages G = 64 fractions λₖ = (k + ½)/G uniformly: when the pairs are mostly
//! identical (d = 0) the large fractions win and the wealth grows like (1 + m)ⁿ, so a margin m
//! is shown in about ln(1/α)/m pairs — the floor for any valid method on [−1, 1] data; with
//! frequent discordance the small fractions adapt to the variance.
//!
//! Pooled over probes visited in a fixed cycle (every probe once per slot), the probes' means
//! differ. Over a whole cycle the expected product of the factors is Πₚ(1 + c(m − μₚ)) ≤
//! (1 + c(m − μ̄))ᴾ ≤ 1 by the AM–GM inequality whenever the pooled mean μ̄ ≥ m, so the wealth
//! read at cycle ends is a supermartingale for the pooled null: looks belong at cycle ends.

/// Grid size of the betting-fraction mixture.
const GRID: usize = 64;

/// Counts of paired differences d = bad(candidate) − bad(current).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairedDiffCs {
    /// d = −1: only the current side was bad.
    pub better: u64,
    /// d = 0: both sides agree.
    pub same: u64,
    /// d = +1: only the candidate was bad.
    pub worse: u64,
}

/// ln Σ exp(xᵢ) without overflow.
fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// n·ln(f), with 0·ln(0) = 0 (no observation of that kind, no factor).
fn n_ln(n: f64, f: f64) -> f64 {
    if n <= 0.0 {
        0.0
    } else if f <= 0.0 {
        f64::NEG_INFINITY
    } else {
        n * f.ln()
    }
}

/// ln of the mixture wealth against E[d] ≥ m for (possibly fractional) counts.
fn log_wealth_below(better: f64, same: f64, worse: f64, m: f64) -> f64 {
    let m = m.clamp(-1.0 + 1e-12, 1.0 - 1e-12);
    let terms = (0..GRID).map(move |k| {
        let lambda = (k as f64 + 0.5) / GRID as f64;
        let c = lambda / (1.0 - m);
        n_ln(better, 1.0 + c * (m + 1.0)) + n_ln(same, 1.0 + c * m) + n_ln(worse, 1.0 - lambda)
    });
    log_sum_exp(terms) - (GRID as f64).ln()
}

/// Planning: the number of pairs after which the *expected* counts (shares `q_better` of
/// d = −1 and `q_worse` of d = +1) show the mean below `m` at level alpha — how long a pass
/// takes when the truth is as assumed. None when not within `max` pairs.
pub fn pairs_to_show_below(
    q_better: f64,
    q_worse: f64,
    m: f64,
    alpha: f64,
    max: u64,
) -> Option<u64> {
    let q_same = (1.0 - q_better - q_worse).max(0.0);
    let shown = |n: u64| {
        let n = n as f64;
        log_wealth_below(n * q_better, n * q_same, n * q_worse, m) >= -alpha.ln()
    };
    let mut hi = 1u64;
    while !shown(hi) {
        if hi >= max {
            return None;
        }
        hi = (hi * 2).min(max);
    }
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if shown(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Planning: pairs until the expected counts show the mean above `m` (the mirror of
/// [`pairs_to_show_below`]).
pub fn pairs_to_show_above(
    q_better: f64,
    q_worse: f64,
    m: f64,
    alpha: f64,
    max: u64,
) -> Option<u64> {
    pairs_to_show_below(q_worse, q_better, -m, alpha, max)
}

impl PairedDiffCs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one pair: whether each side's outcome was bad.
    pub fn push(&mut self, bad_current: bool, bad_candidate: bool) {
        match (bad_current, bad_candidate) {
            (true, false) => self.better += 1,
            (false, true) => self.worse += 1,
            _ => self.same += 1,
        }
    }

    /// Pairs seen.
    pub fn count(&self) -> u64 {
        self.better + self.same + self.worse
    }

    /// The mean difference so far (NaN before the first pair).
    pub fn mean(&self) -> f64 {
        (self.worse as f64 - self.better as f64) / self.count() as f64
    }

    /// ln of the mixture wealth against H₀: E[d] ≥ m (evidence that the mean is below m).
    /// `m` must lie in (−1, 1).
    pub fn log_e_below(&self, m: f64) -> f64 {
        log_wealth_below(self.better as f64, self.same as f64, self.worse as f64, m)
    }

    /// ln of the mixture wealth against H₀: E[d] ≤ m (evidence that the mean is above m).
    pub fn log_e_above(&self, m: f64) -> f64 {
        let mirrored = PairedDiffCs {
            better: self.worse,
            same: self.same,
            worse: self.better,
        };
        mirrored.log_e_below(-m)
    }

    /// Whether H₀: E[d] ≥ m is rejected at level alpha (the mean is shown below m).
    pub fn shows_below(&self, m: f64, alpha: f64) -> bool {
        alpha > 0.0 && self.log_e_below(m) >= -alpha.ln()
    }

    /// Whether H₀: E[d] ≤ m is rejected at level alpha (the mean is shown above m).
    pub fn shows_above(&self, m: f64, alpha: f64) -> bool {
        alpha > 0.0 && self.log_e_above(m) >= -alpha.ln()
    }

    /// Upper end of the one-sided confidence sequence at level 1 − alpha: the smallest m such
    /// that E[d] ≥ m is rejected (1 when nothing is rejected). The wealth against E[d] ≥ m
    /// grows with m, so bisection finds it.
    pub fn upper(&self, alpha: f64) -> f64 {
        if !self.shows_below(1.0 - 1e-9, alpha) {
            return 1.0;
        }
        let (mut lo, mut hi) = (-1.0 + 1e-9, 1.0 - 1e-9);
        if self.shows_below(lo, alpha) {
            return -1.0;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.shows_below(mid, alpha) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// Lower end of the one-sided confidence sequence at level 1 − alpha.
    pub fn lower(&self, alpha: f64) -> f64 {
        let mirrored = PairedDiffCs {
            better: self.worse,
            same: self.same,
            worse: self.better,
        };
        -mirrored.upper(alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn counts(better: u64, same: u64, worse: u64) -> PairedDiffCs {
        PairedDiffCs {
            better,
            same,
            worse,
        }
    }

    #[test]
    fn identical_pairs_show_a_margin_in_about_ln_one_over_alpha_over_m_pairs() {
        // ln(20)/0.01 ≈ 300 is the floor for any valid bound on [−1, 1] data; the mixture
        // costs a little more.
        let first = (1..5000u64)
            .find(|&n| counts(0, n, 0).shows_below(0.01, 0.05))
            .unwrap();
        assert!((300..=500).contains(&first), "took {first}");
        // A 3-point margin needs a third of that.
        let first3 = (1..5000u64)
            .find(|&n| counts(0, n, 0).shows_below(0.03, 0.05))
            .unwrap();
        assert!(first3 * 5 < first * 2, "{first3} vs {first}");
    }

    #[test]
    fn wealth_is_monotone_in_m_and_bounds_bracket_the_mean() {
        let c = counts(30, 900, 70);
        let mut prev = f64::NEG_INFINITY;
        for i in -9..10 {
            let e = c.log_e_below(i as f64 / 10.0);
            assert!(e >= prev, "at {i}");
            prev = e;
        }
        let (lo, hi) = (c.lower(0.05), c.upper(0.05));
        assert!(lo < c.mean() && c.mean() < hi, "{lo} {} {hi}", c.mean());
        assert!(lo > 0.0, "40 net worse pairs in 1000 exclude zero: {lo}");
        assert!(hi < 0.08, "{hi}");
    }

    #[test]
    fn planning_follows_the_expected_path() {
        // Identical pairs: the same count as feeding zeros one by one.
        let direct = (1..5000u64)
            .find(|&n| counts(0, n, 0).shows_below(0.01, 0.05))
            .unwrap();
        assert_eq!(
            pairs_to_show_below(0.0, 0.0, 0.01, 0.05, 100_000),
            Some(direct)
        );
        // Discordance in both directions needs far more; a tiny budget is not enough.
        let noisy = pairs_to_show_below(0.05, 0.05, 0.01, 0.05, 1_000_000).unwrap();
        assert!(noisy > 20 * direct, "{noisy} vs {direct}");
        assert_eq!(pairs_to_show_below(0.05, 0.05, 0.01, 0.05, 100), None);
        // A change of 10 points shows above zero in tens of pairs.
        let up = pairs_to_show_above(0.0, 0.1, 0.0, 0.004, 10_000).unwrap();
        assert!((20..200).contains(&up), "{up}");
    }

    #[test]
    fn no_data_rejects_nothing() {
        let c = PairedDiffCs::new();
        assert_eq!(c.log_e_below(0.01), 0.0);
        assert_eq!((c.lower(0.05), c.upper(0.05)), (-1.0, 1.0));
    }

    #[test]
    fn a_mean_exactly_at_the_margin_is_rarely_shown_below_it() {
        // Ville: at most alpha of the streams with mean m ever cross. Streams with 5 % bad on
        // the current side and 5 % + m on the candidate side, independent, 2000 pairs each,
        // looked at after every pair.
        let (m, alpha, runs) = (0.03, 0.05, 400);
        let mut crossed = 0;
        for seed in 0..runs {
            let mut rng = Rng::new(9_000 + seed);
            let mut c = PairedDiffCs::new();
            for _ in 0..2000 {
                c.push(rng.bernoulli(0.05), rng.bernoulli(0.05 + m));
                if c.shows_below(m, alpha) {
                    crossed += 1;
                    break;
                }
            }
        }
        assert!(
            (crossed as f64) < alpha * runs as f64,
            "{crossed} of {runs} crossed"
        );
    }

    #[test]
    fn a_clear_worsening_is_shown_above_zero_quickly() {
        let mut rng = Rng::new(5);
        let mut c = PairedDiffCs::new();
        let mut n = 0;
        while !c.shows_above(0.0, 0.05 / 12.0) {
            c.push(rng.bernoulli(0.02), rng.bernoulli(0.30));
            n += 1;
            assert!(n < 200, "not shown after 200 pairs");
        }
        assert!(c.mean() > 0.1);
    }
}
