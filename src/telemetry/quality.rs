//! Quality readings of a target's recent rounds: the bad-outcome rate of each rate metric in
//! the last round, response-length quantiles over a window of recent responses, and the
//! distributions of response length and latency since the start, kept in HDR histograms
//! (bounded memory, exact merges) and exported as fixed-bucket histograms that add up across
//! a fleet. Computed once by the scheduler and shown by both `/metrics` and the OTLP exporter,
//! so the two agree in names and values. Pure: samples in, numbers out.

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

/// Upper bounds (seconds) of the response-latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A distribution of non-negative values since the start: an HDR histogram at two significant
/// digits (a value is placed within 1 % of itself; a few kB whatever the count) plus the exact
/// sum. Values are recorded in integer `unit`s (1 for characters, 1e-3 for seconds as ms).
#[derive(Debug, Clone)]
pub struct Distribution {
    hist: hdrhistogram::Histogram<u64>,
    /// Size of one recorded unit, in the distribution's unit.
    unit: f64,
    pub sum: f64,
}

impl Distribution {
    /// Values of `unit` granularity up to `max` (larger ones are recorded as `max`).
    pub fn new(unit: f64, max: f64) -> Distribution {
        let high = (max / unit).ceil().max(2.0) as u64;
        Distribution {
            hist: hdrhistogram::Histogram::new_with_bounds(1, high, 2).expect("valid HDR bounds"),
            unit,
            sum: 0.0,
        }
    }

    /// Response lengths in characters, up to 16 M.
    pub fn lengths() -> Distribution {
        Distribution::new(1.0, 16_777_216.0)
    }

    /// Latencies in seconds at millisecond granularity, up to an hour.
    pub fn latency() -> Distribution {
        Distribution::new(0.001, 3600.0)
    }

    pub fn record(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        let units = (v / self.unit).round().clamp(1.0, self.hist.high() as f64) as u64;
        self.hist.saturating_record(units);
        self.sum += v;
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Adds `other` (same unit): exact, whatever the order of merges.
    pub fn merge(&mut self, other: &Distribution) {
        let _ = self.hist.add(&other.hist);
        self.sum += other.sum;
    }

    /// Per bucket of `bounds` (upper bounds, ascending) and one more above the last: how many
    /// values fall there. Sums to [`Distribution::count`].
    pub fn bucket_counts(&self, bounds: &[f64]) -> Vec<u64> {
        let mut counts = vec![0u64; bounds.len() + 1];
        for v in self.hist.iter_recorded() {
            let at = self.hist.lowest_equivalent(v.value_iterated_to()) as f64 * self.unit;
            let i = bounds
                .iter()
                .position(|b| at <= *b + self.unit / 2.0)
                .unwrap_or(bounds.len());
            counts[i] += v.count_at_value();
        }
        counts
    }

    /// Cumulative counts at each bound (Prometheus `le`), without the `+Inf` one.
    pub fn cumulative(&self, bounds: &[f64]) -> Vec<u64> {
        self.bucket_counts(bounds)
            .iter()
            .take(bounds.len())
            .scan(0u64, |acc, n| {
                *acc += n;
                Some(*acc)
            })
            .collect()
    }
}

impl PartialEq for Distribution {
    fn eq(&self, other: &Self) -> bool {
        self.unit == other.unit && self.sum == other.sum && self.hist == other.hist
    }
}

/// Rate metrics read per round, named like the monitor's metrics, and the partial refusals
/// (a breakdown of `refusal_rate`, read but not monitored).
const RATES: [Metric; 7] = {
    let b = crate::drift::BINARY;
    [
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        Metric::PartialRefusalRate,
    ]
};

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
#[derive(Debug, Clone, PartialEq)]
pub struct TargetQuality {
    /// (metric id, bad outcomes, applicable samples) of the last round that measured anything.
    last_round: Vec<(String, u64, u64)>,
    pub length: LengthWindow,
    /// Lengths (characters) of every successful response since the start.
    pub lengths: Distribution,
    /// Latency (seconds) of every successful response since the start.
    pub latency: Distribution,
}

impl Default for TargetQuality {
    fn default() -> Self {
        TargetQuality {
            last_round: Vec::new(),
            length: LengthWindow::default(),
            lengths: Distribution::lengths(),
            latency: Distribution::latency(),
        }
    }
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
                self.lengths.record(f64::from(m.chars));
            }
            self.latency.record(s.latency_ms / 1000.0);
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
    fn distributions_bucket_every_value_and_merge_exactly() {
        let mut a = Distribution::lengths();
        for v in [10.0, 16.0, 17.0, 30.0, 100.0, 5000.0, 40000.0] {
            a.record(v);
        }
        a.record(f64::NAN);
        a.record(-1.0);
        let counts = a.bucket_counts(&LENGTH_BUCKETS);
        assert_eq!(counts.len(), LENGTH_BUCKETS.len() + 1);
        // ≤16: 10, 16; ≤32: 17, 30; ≤128: 100; ≤8192: 5000; above 32768: 40000.
        assert_eq!(&counts[..4], &[2, 2, 0, 1]);
        assert_eq!(counts[9], 1);
        assert_eq!(counts[12], 1);
        assert_eq!(counts.iter().sum::<u64>(), a.count());
        assert_eq!(a.count(), 7);
        assert_eq!(a.sum, 45173.0);
        let cumulative = a.cumulative(&LENGTH_BUCKETS);
        assert_eq!(cumulative[1], 4);
        assert_eq!(*cumulative.last().unwrap(), 6);
        // Merging is the same as recording everything in one.
        let mut b = Distribution::lengths();
        b.record(20.0);
        let mut one = a.clone();
        one.record(20.0);
        a.merge(&b);
        assert_eq!(a, one);
        // Latency in seconds at millisecond granularity: 0.1 s falls in the 0.1 bucket.
        let mut l = Distribution::latency();
        for v in [0.004, 0.1, 0.101, 2.0] {
            l.record(v);
        }
        assert_eq!(&l.bucket_counts(&LATENCY_BUCKETS)[..3], &[1, 1, 1]);
        assert_eq!(l.count(), 4);
    }

    #[test]
    fn round_rates_follow_the_monitor_metric_ids() {
        let mut samples = synth(
            Profile {
                refusal: 1.0,
                ..Profile::default()
            },
            1,
            4,
            3,
        );
        // One refusal in four is partial: read beside the refusals, under its own id.
        for s in samples.iter_mut().step_by(4) {
            s.measurements.as_mut().unwrap().partial_refusal = true;
        }
        let mut q = TargetQuality::default();
        q.record(&samples, &|_, _| false);
        let rates = q.round_rates();
        let get = |id: &str| rates.iter().find(|(m, _)| m == id).map(|r| r.1);
        assert_eq!(get("refusal_rate"), Some(1.0), "{rates:?}");
        assert_eq!(get("partial_refusal_rate"), Some(0.25), "{rates:?}");
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
