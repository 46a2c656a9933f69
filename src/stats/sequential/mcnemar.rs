//! Sequential exact McNemar test for a paired canary: both models answer the same probe; only
//! discordant pairs carry information, and under H₀ (the second arm is no worse) each discordant
//! pair is "second arm worse" with probability <= 1/2. The exact Bernoulli likelihood of the
//! discordant pairs feeds a beta-binomial mixture e-process with p0 = 1/2, so the test is exact
//! (no normal approximation) and anytime-valid.

use super::{BetaBinomialEProcess, BetaPrior};
use crate::stats::Result;

/// Anytime-valid one-sided McNemar test: H₀ P(second worse | discordant) <= 1/2.
#[derive(Debug, Clone, PartialEq)]
pub struct McNemarSequential {
    inner: BetaBinomialEProcess,
    /// pairs where only the first arm succeeded (second arm worse)
    pub second_worse: u64,
    /// pairs where only the second arm succeeded
    pub second_better: u64,
}

impl McNemarSequential {
    /// Uniform prior over the discordance probability above 1/2.
    pub fn new() -> Self {
        Self::with_prior(BetaPrior::uniform())
            .unwrap_or_else(|_| unreachable!("uniform prior is valid"))
    }

    /// Custom prior on P(second worse | discordant).
    pub fn with_prior(prior: BetaPrior) -> Result<Self> {
        Ok(McNemarSequential {
            inner: BetaBinomialEProcess::new(0.5, prior)?,
            second_worse: 0,
            second_better: 0,
        })
    }

    /// Record one pair of outcomes (`true` = success) for the same probe and sample slot.
    pub fn update(&mut self, first_ok: bool, second_ok: bool) {
        match (first_ok, second_ok) {
            (true, false) => {
                self.second_worse += 1;
                self.inner.update(true);
            }
            (false, true) => {
                self.second_better += 1;
                self.inner.update(false);
            }
            _ => {}
        }
    }

    pub fn e_value(&self) -> f64 {
        self.inner.e_value()
    }

    pub fn p_value(&self) -> f64 {
        self.inner.p_value()
    }

    pub fn rejected(&self, alpha: f64) -> bool {
        self.inner.rejected(alpha)
    }
}

impl Default for McNemarSequential {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concordant_pairs_carry_no_evidence() {
        let mut m = McNemarSequential::new();
        for _ in 0..1000 {
            m.update(true, true);
            m.update(false, false);
        }
        assert_eq!(m.e_value(), 1.0);
        for _ in 0..30 {
            m.update(true, false);
        }
        assert!(m.rejected(0.01));
        assert_eq!(m.second_worse, 30);
    }
}
