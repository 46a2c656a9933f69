//! The monitor's evidence as data, saved with every stored round and restored at start, so that
//! a restart neither begins a new episode nor counts a round twice.
//!
//! Only the running statistics are saved; the nulls, weights and thresholds are rebuilt from the
//! baseline. A saved state continues a monitor only when its [`TargetMonitor::basis`] (a digest
//! of what the monitor tests) and its [`FORMAT`] match; otherwise it is dropped and a new
//! episode starts, which is what a changed baseline means anyway.

use super::{LengthTrack, RateTrack, TargetMonitor};
use crate::daemon::strata::StratifiedState;
use crate::stats::sequential::{Exact, RankState};
use sha2::{Digest, Sha256};

/// Version of the saved state. A row of another version is dropped (with a log line), never
/// misread: change it with any change of the types below.
pub const FORMAT: i64 = 2;

/// The running part of a [`TargetMonitor`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MonitorState {
    /// Rounds that measured something.
    pub rounds: u64,
    pub rates: Vec<RateState>,
    pub length: Option<LengthState>,
}

/// The running part of one rate metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateState {
    pub metric: String,
    pub detector_c: Option<Exact>,
    pub incident: bool,
    pub strata: StratifiedState,
}

/// The running part of the length monitor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LengthState {
    pub eprocess: RankState,
    pub sum_u: Exact,
    pub n: u64,
    pub shape: RankState,
    pub sum_s: Exact,
    pub outside: u64,
    pub expected_outside: Exact,
    pub detector_c: Option<Exact>,
    /// The last rounds: answers, Σu, Σs.
    pub recent: Vec<(u64, Exact, Exact)>,
    /// Open change-detector incidents: location, shape.
    pub incident: (bool, bool),
}

impl TargetMonitor {
    /// The evidence gathered so far (see the module documentation).
    pub fn state(&self) -> MonitorState {
        MonitorState {
            rounds: self.rounds,
            rates: self
                .rates
                .iter()
                .map(|t| RateState {
                    metric: t.metric.id(),
                    detector_c: t.detector_c.map(Exact::of),
                    incident: t.incident,
                    strata: t.strata.state(),
                })
                .collect(),
            length: self.length.as_ref().map(|l| LengthState {
                eprocess: l.eprocess.state(),
                sum_u: Exact::of(l.sum_u),
                n: l.n,
                shape: l.shape.eprocess.state(),
                sum_s: Exact::of(l.shape.sum_s),
                outside: l.shape.outside,
                expected_outside: Exact::of(l.shape.expected_outside),
                detector_c: l.detector_c.map(Exact::of),
                recent: l
                    .recent
                    .iter()
                    .map(|&(n, u, s)| (n, Exact::of(u), Exact::of(s)))
                    .collect(),
                incident: l.incident,
            }),
        }
    }

    /// Continues from saved evidence: all of it or, with `Err` saying why, none (the monitor
    /// is left as it was).
    pub fn restore(&mut self, saved: &MonitorState) -> Result<(), String> {
        let ids: Vec<String> = self.rates.iter().map(|t| t.metric.id()).collect();
        let saved_ids: Vec<&str> = saved.rates.iter().map(|r| r.metric.as_str()).collect();
        if ids != saved_ids {
            return Err(format!("metrics {saved_ids:?} saved, {ids:?} monitored"));
        }
        if saved.length.is_some() != self.length.is_some() {
            return Err("the length monitor is saved but not monitored, or the reverse".into());
        }
        let mut rates: Vec<RateTrack> = self.rates.clone();
        for (t, s) in rates.iter_mut().zip(&saved.rates) {
            t.strata
                .restore(&s.strata)
                .map_err(|e| format!("{}: {e}", s.metric))?;
            t.detector_c = s.detector_c.map(Exact::get);
            t.incident = s.incident;
        }
        let mut length: Option<LengthTrack> = self.length.clone();
        if let (Some(l), Some(s)) = (length.as_mut(), &saved.length) {
            l.eprocess.restore(&s.eprocess)?;
            l.sum_u = s.sum_u.get();
            l.n = s.n;
            l.shape.eprocess.restore(&s.shape)?;
            l.shape.sum_s = s.sum_s.get();
            l.shape.outside = s.outside;
            l.shape.expected_outside = s.expected_outside.get();
            l.detector_c = s.detector_c.map(Exact::get);
            l.recent = s
                .recent
                .iter()
                .map(|(n, u, s)| (*n, u.get(), s.get()))
                .collect();
            l.incident = s.incident;
        }
        self.rates = rates;
        self.length = length;
        self.rounds = saved.rounds;
        Ok(())
    }

    /// A digest of what this monitor tests: every stratum's baseline rate, null and margin,
    /// the length baselines and margin, and the alarm threshold. Two monitors with the same
    /// basis test the same hypotheses, so one's evidence may continue in the other.
    pub fn basis(&self) -> String {
        let mut h = Sha256::new();
        let num = |h: &mut Sha256, x: f64| h.update(x.to_bits().to_le_bytes());
        num(&mut h, self.threshold);
        for t in &self.rates {
            h.update(t.metric.id().as_bytes());
            for s in t.strata.all() {
                h.update(s.name.as_bytes());
                h.update([0]);
                num(&mut h, s.baseline_rate);
                num(&mut h, s.p0);
                num(&mut h, s.margin);
            }
        }
        if let Some(l) = &self.length {
            num(&mut h, l.margin);
            num(&mut h, l.shape.margin);
            for (probe, values) in &l.baseline {
                h.update(probe.as_bytes());
                h.update([0]);
                for v in values {
                    num(&mut h, *v);
                }
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::MonitorSettings;
    use super::*;
    use crate::drift::tests::{Profile, synth};
    use crate::drift::{Expectations, Margins};

    fn settings() -> MonitorSettings {
        MonitorSettings {
            margins: Margins::default(),
            false_alarm_rounds: 90.0 * 144.0,
            null_confidence: Default::default(),
        }
    }

    fn monitor(seed: u64) -> TargetMonitor {
        let baseline = synth(Profile::default(), seed, 20, 20);
        TargetMonitor::from_samples(&baseline, Expectations::default(), settings())
    }

    #[test]
    fn a_restored_monitor_reads_and_continues_exactly_like_the_original() {
        let mut original = monitor(3);
        let bad = Profile {
            json_fail: 0.3,
            ..Profile::default()
        };
        for round in 0..30u64 {
            let p = if round < 20 { Profile::default() } else { bad };
            original.observe_round(&synth(p, 700 + round, 20, 1));
        }
        let json = serde_json::to_string(&original.state()).unwrap();
        // What each stored round writes for a target of 20 probes.
        println!("saved evidence, 20 probes: {} bytes", json.len());
        let saved: MonitorState = serde_json::from_str(&json).unwrap();
        let mut restored = monitor(3);
        assert_eq!(restored.basis(), original.basis());
        restored.restore(&saved).unwrap();
        assert_eq!(restored.state(), original.state());
        assert_eq!(
            format!("{:?}", restored.snapshot()),
            format!("{:?}", original.snapshot())
        );
        // The same rounds afterwards give the same readings, breaches included.
        for round in 0..15u64 {
            let samples = synth(bad, 900 + round, 20, 1);
            assert_eq!(
                restored.observe_round(&samples),
                original.observe_round(&samples),
                "round {round}"
            );
        }
        assert_eq!(restored.state(), original.state());
    }

    #[test]
    fn evidence_of_another_baseline_is_refused_and_changes_nothing() {
        let mut a = monitor(3);
        for round in 0..5u64 {
            a.observe_round(&synth(Profile::default(), 10 + round, 20, 1));
        }
        let other = synth(
            Profile {
                truncation: 0.5,
                ..Profile::default()
            },
            4,
            20,
            20,
        );
        let mut b = TargetMonitor::from_samples(&other, Expectations::default(), settings());
        assert_ne!(a.basis(), b.basis());
        let fresh = b.state();
        // A state of another shape is refused as a whole.
        let mut mangled = a.state();
        mangled.rates[0].strata.strata.pop();
        assert!(b.restore(&mangled).is_err());
        assert_eq!(b.state(), fresh);
        let mut renamed = a.state();
        renamed.rates[0].metric = "nope".into();
        assert!(b.restore(&renamed).unwrap_err().contains("nope"));
        assert_eq!(b.state(), fresh);
    }
}
