//! Quality readings of a target's recent rounds: the bad-outcome rate of each rate metric in
//! the last round and response-length quantiles over a window of recent responses. Computed
//! once by the scheduler and shown by both `/metrics` and the OTLP exporter, so the two agree
//! in names and values. Pure: samples in, numbers out.

use crate::drift::Metric;
use crate::sample::Sample;
use std::collections::VecDeque;

/// Quantiles reported for response lengths.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];
/// Responses the length quantiles are computed over (the most recent ones).
pub const LENGTH_WINDOW: usize = 256;
/// Upper bounds (characters) of the response-length histogram: cumulative since the start,
/// so fleets can add targets' buckets and take quantiles of the sum.
pub const LENGTH_BUCKETS: [f64; 12] = [
    16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
];

/// Rate metrics read per round, named like the monitor's metrics.
const RATES: [Metric; 6] = crate::drift::BINARY;

/// Recent response lengths (characters) plus totals since the start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LengthWindow {
    recent: VecDeque<f64>,
    /// Sum of every length observed.
    pub sum: f64,
    /// Count of every length observed.
    pub count: u64,
    /// Per bound of [`LENGTH_BUCKETS`]: lengths observed at or below it (cumulative).
    pub buckets: [u64; LENGTH_BUCKETS.len()],
}

impl LengthWindow {
    pub fn observe(&mut self, chars: f64) {
        if !chars.is_finite() {
            return;
        }
        if self.recent.len() == LENGTH_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(chars);
        self.sum += chars;
        self.count += 1;
        for (n, bound) in self.buckets.iter_mut().zip(LENGTH_BUCKETS) {
            *n += u64::from(chars <= bound);
        }
    }

    /// `(q, value)` for each of [`QUANTILES`], linearly interpolated between order statistics
    /// (numpy's default); empty before the first response.
    pub fn quantiles(&self) -> Vec<(f64, f64)> {
        if self.recent.is_empty() {
            return Vec::new();
        }
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        QUANTILES
            .iter()
            .filter_map(|&q| Some((q, crate::stats::quantile(&v, q)?)))
            .collect()
    }
}

/// The quality readings of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetQuality {
    /// (metric id, bad outcomes, applicable samples) of the last round that measured anything.
    last_round: Vec<(String, u64, u64)>,
    pub length: LengthWindow,
}

impl TargetQuality {
    /// Adds a round. `refusal_expected(suite, probe)`: the probe expects a refusal (its
    /// refusals count for `missed_refusal_rate`, not `refusal_rate`).
    pub fn record(&mut self, samples: &[Sample], refusal_expected: &dyn Fn(&str, &str) -> bool) {
        let mut rates: Vec<(String, u64, u64)> = Vec::new();
        for metric in RATES {
            let (mut bad, mut n) = (0u64, 0u64);
            for s in samples.iter().filter(|s| s.error.is_none()) {
                let Some(m) = &s.measurements else { continue };
                let expected = refusal_expected(&s.suite, &s.probe_id);
                if let Some(outcome) = metric.outcome(m, expected) {
                    n += 1;
                    bad += u64::from(outcome == metric.higher_is_worse());
                }
            }
            if n > 0 {
                rates.push((metric.id(), bad, n));
            }
        }
        if !rates.is_empty() {
            self.last_round = rates;
        }
        for s in samples.iter().filter(|s| s.error.is_none()) {
            if let Some(m) = &s.measurements {
                self.length.observe(f64::from(m.chars));
            }
        }
    }

    /// (metric id, bad-outcome rate) of the last round: every rate counts the bad outcome
    /// (refusals, failed tasks, …), as in the monitor.
    pub fn round_rates(&self) -> Vec<(String, f64)> {
        self.last_round
            .iter()
            .map(|(m, bad, n)| (m.clone(), *bad as f64 / *n as f64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::tests::{Profile, synth};

    #[test]
    fn quantiles_interpolate_like_numpy_over_the_recent_window() {
        let mut w = LengthWindow::default();
        assert!(w.quantiles().is_empty());
        for v in 1..=11 {
            w.observe(f64::from(v * 10));
        }
        // numpy.quantile([10..110], [.5, .9, .99]) = 60, 100, 109
        let q = w.quantiles();
        assert_eq!(q[0], (0.5, 60.0));
        assert!(
            (q[1].1 - 100.0).abs() < 1e-9 && (q[2].1 - 109.0).abs() < 1e-9,
            "{q:?}"
        );
        assert_eq!((w.sum, w.count), (660.0, 11));
        for _ in 0..LENGTH_WINDOW {
            w.observe(5.0);
        }
        assert_eq!(w.quantiles()[2].1, 5.0, "old values left the window");
        assert_eq!(w.count, 11 + LENGTH_WINDOW as u64);
        w.observe(f64::NAN);
        assert_eq!(w.count, 11 + LENGTH_WINDOW as u64);
        // Buckets are cumulative and count every observation since the start: 10 and 5 ≤ 16,
        // 10..=30 ≤ 32, everything ≤ 128.
        assert_eq!(w.buckets[0], 1 + LENGTH_WINDOW as u64);
        assert_eq!(w.buckets[1], 3 + LENGTH_WINDOW as u64);
        assert_eq!(w.buckets[3], w.count);
        assert!(w.buckets.windows(2).all(|b| b[0] <= b[1]));
    }

    #[test]
    fn round_rates_follow_the_monitor_metric_ids() {
        let samples = synth(
            Profile {
                refusal: 1.0,
                ..Profile::default()
            },
            1,
            4,
            3,
        );
        let mut q = TargetQuality::default();
        q.record(&samples, &|_, _| false);
        let rates = q.round_rates();
        let get = |id: &str| rates.iter().find(|(m, _)| m == id).map(|r| r.1);
        assert_eq!(get("refusal_rate"), Some(1.0), "{rates:?}");
        assert_eq!(get("missed_refusal_rate"), None);
        // Every probe expecting a refusal: the refusals are correct, none is missed.
        q.record(&samples, &|_, _| true);
        let rates = q.round_rates();
        let get = |id: &str| rates.iter().find(|(m, _)| m == id).map(|r| r.1);
        assert_eq!(get("refusal_rate"), None);
        assert_eq!(get("missed_refusal_rate"), Some(0.0));
        // A round that measured nothing keeps the previous reading.
        q.record(&[], &|_, _| false);
        assert_eq!(q.round_rates(), rates);
        assert_eq!(q.length.count, 2 * samples.len() as u64);
    }
}
