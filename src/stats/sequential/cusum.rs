//! Bernoulli CUSUM (Page 1954; Reynolds & Stoumbos 1999) for a rate rising from p0 to p1:
//! Sₜ = max(0, Sₜ₋₁ + ln(p1/p0)·xₜ + ln((1−p1)/(1−p0))·(1−xₜ)), alarm when Sₜ >= h.
//!
//! Guarantee: a chosen in-control average run length ARL₀ (mean observations between false
//! alarms when p = p0), not a type-I error. Lorden's bound ARL₀ >= e^h is loose for rare
//! events, so h is calibrated by seeded Monte Carlo: run lengths under p0 are simulated with
//! common random numbers (the run length is monotone in h on each path), and h is bisected until
//! the mean run length equals the target. Zeros between events only lower Sₜ, so each run jumps
//! from event to event with geometric gaps; a run costs O(ARL₀ · p0) draws, not O(ARL₀).

use crate::rng::Rng;
use crate::stats::{Result, StatsError, check_prob};

/// Runs simulated per candidate threshold during calibration.
const CALIBRATION_RUNS: u64 = 1000;

/// Bernoulli CUSUM with a calibrated threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct BernoulliCusum {
    p0: f64,
    p1: f64,
    h: f64,
    up: f64,
    down: f64,
    s: f64,
    t: u64,
    alarms: u64,
}

impl BernoulliCusum {
    /// A CUSUM with an explicit threshold `h` > 0.
    pub fn with_threshold(p0: f64, p1: f64, h: f64) -> Result<Self> {
        check_prob("CUSUM in-control rate p0", p0, true)?;
        check_prob("CUSUM out-of-control rate p1", p1, true)?;
        if p1 <= p0 {
            return Err(StatsError::OutOfRange {
                what: "CUSUM out-of-control rate p1",
                value: p1,
                expected: "a rate above the in-control rate p0",
            });
        }
        if !(h.is_finite() && h > 0.0) {
            return Err(StatsError::OutOfRange {
                what: "CUSUM threshold h",
                value: h,
                expected: "a positive finite number",
            });
        }
        Ok(BernoulliCusum {
            p0,
            p1,
            h,
            up: (p1 / p0).ln(),
            down: ((1.0 - p1) / (1.0 - p0)).ln(),
            s: 0.0,
            t: 0,
            alarms: 0,
        })
    }

    /// Calibrates h so that the in-control ARL is `target_arl` (>= 2) by seeded simulation.
    /// The same arguments always give the same threshold.
    pub fn calibrate(p0: f64, p1: f64, target_arl: f64, seed: u64) -> Result<Self> {
        let probe = Self::with_threshold(p0, p1, 1.0)?;
        if !(target_arl.is_finite() && target_arl >= 2.0) {
            return Err(StatsError::OutOfRange {
                what: "CUSUM target average run length",
                value: target_arl,
                expected: "a finite number of observations >= 2",
            });
        }
        // Lorden: ARL₀ >= e^h, so h <= ln(target); h = 0 alarms at the first event.
        let (mut lo, mut hi) = (0.0f64, target_arl.ln().max(probe.up));
        // Bisect until h is known to 1e-3 (far below the Monte Carlo error of the ARL).
        while hi - lo > 1e-3 {
            let mid = 0.5 * (lo + hi);
            let arl = probe.mean_run_length(p0, mid, CALIBRATION_RUNS, seed, target_arl * 100.0);
            if arl < target_arl {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Self::with_threshold(p0, p1, hi)
    }

    /// Mean run length until alarm when the true rate is `p`, from `runs` seeded paths, each
    /// capped at `cap` observations.
    pub fn mean_run_length(&self, p: f64, h: f64, runs: u64, seed: u64, cap: f64) -> f64 {
        let total: f64 = (0..runs)
            .map(|r| self.run_length(p, h, &mut Rng::from_parts(&[seed, r]), cap))
            .sum();
        total / runs as f64
    }

    /// One simulated run length from S = 0 with rate `p` (geometric gaps between events).
    pub fn run_length(&self, p: f64, h: f64, rng: &mut Rng, cap: f64) -> f64 {
        let ln_q = (-p).ln_1p();
        let mut s = 0.0f64;
        let mut steps = 0.0f64;
        while steps < cap {
            let u = 1.0 - rng.f64(); // (0, 1]
            let gap = (u.ln() / ln_q).floor();
            s = (s + gap * self.down).max(0.0);
            steps += gap + 1.0;
            s += self.up;
            if s >= h {
                return steps.min(cap);
            }
        }
        cap
    }

    /// Record one outcome; returns true when this observation raises an alarm. After an alarm
    /// the statistic restarts from 0 (the next incident needs fresh evidence).
    pub fn update(&mut self, event: bool) -> bool {
        self.t += 1;
        self.s = (self.s + if event { self.up } else { self.down }).max(0.0);
        if self.s >= self.h {
            self.alarms += 1;
            self.s = 0.0;
            true
        } else {
            false
        }
    }

    pub fn statistic(&self) -> f64 {
        self.s
    }

    pub fn threshold(&self) -> f64 {
        self.h
    }

    pub fn alarms(&self) -> u64 {
        self.alarms
    }

    pub fn rates(&self) -> (f64, f64) {
        (self.p0, self.p1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_run_length_matches_step_by_step_cusum() {
        // Geometric skipping must agree in distribution with stepping one observation at a time.
        let c = BernoulliCusum::with_threshold(0.1, 0.3, 3.0).unwrap();
        let fast = c.mean_run_length(0.3, 3.0, 4000, 9, 1e9);
        let mut rng = Rng::new(10);
        let mut total = 0.0;
        for _ in 0..4000 {
            let mut slow = c.clone();
            let mut n = 0.0;
            loop {
                n += 1.0;
                if slow.update(rng.bernoulli(0.3)) {
                    break;
                }
            }
            total += n;
        }
        let slow = total / 4000.0;
        assert!(
            (fast - slow).abs() / slow < 0.06,
            "fast {fast} vs slow {slow}"
        );
    }

    #[test]
    fn rejects_bad_rates() {
        assert!(BernoulliCusum::with_threshold(0.2, 0.1, 3.0).is_err());
        assert!(BernoulliCusum::calibrate(0.02, 0.07, 1.0, 1).is_err());
    }
}
