//! Normal-mixture sequential probability ratio test (mSPRT) for a mean, Johari, Koomen, Pekelis
//! & Walsh (2022), "Always valid inference: continuous monitoring of A/B tests", Oper. Res.
//! 70(3). Observations xᵢ with known (or plug-in) variance σ²; H₀: mean = θ₀; the alternative
//! mean is mixed over N(θ₀, τ²):
//!
//!   Λₙ = √(σ² / (σ² + nτ²)) · exp(n²τ² (x̄ₙ − θ₀)² / (2σ²(σ² + nτ²)))
//!
//! a non-negative martingale under H₀, so P(∃n: Λₙ >= 1/α) <= α. For a difference of two
//! arms feed paired differences with σ² the variance of a difference. τ² sets the effect
//! size detected fastest (τ ≈ the smallest shift worth detecting).

use super::RunningMax;
use crate::stats::{Result, StatsError};

/// Streaming mSPRT for a mean against θ₀ (two-sided).
#[derive(Debug, Clone, PartialEq)]
pub struct MixtureSprt {
    theta0: f64,
    sigma2: f64,
    tau2: f64,
    n: u64,
    sum: f64,
    max: RunningMax,
}

impl MixtureSprt {
    pub fn new(theta0: f64, sigma2: f64, tau2: f64) -> Result<Self> {
        for (what, v) in [
            ("mSPRT variance sigma2", sigma2),
            ("mSPRT mixing variance tau2", tau2),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(StatsError::OutOfRange {
                    what,
                    value: v,
                    expected: "a positive finite number",
                });
            }
        }
        if !theta0.is_finite() {
            return Err(StatsError::OutOfRange {
                what: "mSPRT null mean theta0",
                value: theta0,
                expected: "a finite number",
            });
        }
        Ok(MixtureSprt {
            theta0,
            sigma2,
            tau2,
            n: 0,
            sum: 0.0,
            max: RunningMax::new(),
        })
    }

    /// ln Λₙ for n observations with mean x̄ (closed form above).
    pub fn log_lambda(n: u64, mean_minus_theta0: f64, sigma2: f64, tau2: f64) -> f64 {
        let nf = n as f64;
        let v = sigma2 + nf * tau2;
        0.5 * (sigma2 / v).ln()
            + nf * nf * tau2 * mean_minus_theta0 * mean_minus_theta0 / (2.0 * sigma2 * v)
    }

    /// Record one observation; non-finite values are ignored (they carry no information).
    pub fn update(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        self.sum += x;
        self.max.observe(self.log_e_value());
    }

    pub fn log_e_value(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let mean = self.sum / self.n as f64;
        Self::log_lambda(self.n, mean - self.theta0, self.sigma2, self.tau2)
    }

    pub fn e_value(&self) -> f64 {
        self.log_e_value().exp()
    }

    pub fn p_value(&self) -> f64 {
        self.max.p_value()
    }

    pub fn rejected(&self, alpha: f64) -> bool {
        self.max.rejected(alpha)
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Confidence sequence for the mean: x̄ₙ ± [`normal_mixture_halfwidth`] with ρ = σ⁴/τ²
    /// (the set of θ₀ the mSPRT would not reject).
    pub fn confidence_sequence(&self, alpha: f64) -> (f64, f64) {
        if self.n == 0 {
            return (f64::NEG_INFINITY, f64::INFINITY);
        }
        let mean = self.sum / self.n as f64;
        let rho = self.sigma2 * self.sigma2 / self.tau2;
        let hw = normal_mixture_halfwidth(self.n, self.sigma2, rho, alpha);
        (mean - hw, mean + hw)
    }
}

/// Half-width of the two-sided normal-mixture confidence sequence for a mean after t
/// observations of variance σ² (Howard, Ramdas, McAuliffe & Sekhon 2021, eq. (14)):
/// √((V + ρ) ln((V + ρ) / (ρ α²))) / t with V = σ² t.
pub fn normal_mixture_halfwidth(t: u64, sigma2: f64, rho: f64, alpha: f64) -> f64 {
    let tf = t as f64;
    let v = sigma2 * tf;
    ((v + rho) * ((v + rho) / (rho * alpha * alpha)).ln()).sqrt() / tf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_closed_form_and_cs_matches_rejection() {
        let mut m = MixtureSprt::new(0.0, 1.0, 0.1).unwrap();
        for i in 0..50 {
            m.update(if i % 2 == 0 { 0.6 } else { 0.2 });
        }
        let closed = MixtureSprt::log_lambda(50, 0.4, 1.0, 0.1);
        assert!((m.log_e_value() - closed).abs() < 1e-12);
        // θ₀ on the CS boundary gives Λ = 1/α exactly.
        let (lo, _) = m.confidence_sequence(0.05);
        let at_boundary = MixtureSprt::log_lambda(50, 0.4 - lo, 1.0, 0.1);
        assert!((at_boundary - (1.0f64 / 0.05).ln()).abs() < 1e-9);
    }
}
