//! The time view: per target, each metric round by round, with the swaps (the served
//! fingerprint changed), the alerts and their evidence, and the current verdicts. The daemon's
//! status page and `report --since` build it from the store and render it with
//! [`timeline_html`](super::timeline_html).
//!
//! Building is pure: stored samples, rounds' fingerprints and alert records in, a
//! [`Timeline`] out. Rates are computed per round by the same [`Metric::outcome`] the verdicts
//! use, so a chart and a verdict never disagree about what a rate counts.

use crate::alert::AlertState;
use crate::drift::{BINARY, Metric};
use crate::store::{Event, RoundReading, RoundSample};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the page shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub title: String,
    /// What the window is ("last 7d", "last 50 rounds").
    pub window: String,
    pub generated_at_ms: i64,
    pub targets: Vec<TargetTimeline>,
    /// Links shown in the header (label, href), e.g. the status JSON.
    pub links: Vec<(String, String)>,
}

/// One target's history and current state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetTimeline {
    pub name: String,
    pub model: String,
    pub fingerprint: Option<String>,
    pub rounds: Vec<RoundPoint>,
    /// The series charted, in order: every rate metric that applied in the window, then the
    /// median length and the share of failed requests.
    pub series: Vec<Series>,
    /// The monitor's evidence against the baseline per metric, round by round (empty when the
    /// target had no baseline in the window).
    pub evidence: Vec<EvidenceSeries>,
    pub swaps: Vec<Marker>,
    pub alerts: Vec<Marker>,
    pub verdicts: Vec<VerdictRow>,
    /// A link to more of this target's history (label, href), shown beside its name.
    pub link: Option<(String, String)>,
    /// The silences in force, in words ("refusal_rate muted until …: reason").
    pub silenced: Vec<String>,
}

/// One round's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoundPoint {
    pub round: i64,
    pub started_at_ms: i64,
    pub fingerprint: Option<String>,
    pub samples: u32,
    pub errors: u32,
}

/// One charted quantity, one value per round (`None` where nothing applied).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Machine name (`refusal_rate`, `length_chars`, `request_failures`).
    pub id: String,
    pub label: String,
    /// A share in 0..=1 (shown as %) rather than a count.
    pub is_rate: bool,
    /// Infrastructure, not model quality (failed requests).
    pub availability: bool,
    pub values: Vec<Option<f64>>,
    /// Samples behind each value.
    pub counts: Vec<u32>,
    /// The baseline's value, drawn as a reference line.
    pub baseline: Option<f64>,
}

/// One metric's evidence against the baseline after each round: the anytime-valid e-value of
/// the monitor (Ramdas et al., "Game-theoretic statistics and safe anytime-valid inference",
/// 2023), which alarms where it crosses `threshold` (1/α). It restarts with a new episode (a new
/// baseline, a swap), so a drop to 1 marks a restart, not evidence that went away.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceSeries {
    pub metric: String,
    pub label: String,
    pub threshold: f64,
    /// Natural log of the e-value per round (`None` where the round has no reading).
    pub log_e: Vec<Option<f64>>,
    /// Samples behind each reading.
    pub samples: Vec<u64>,
}

/// Something that happened at a time: a swap (`from → to`) or an alert notification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Marker {
    pub at_ms: i64,
    /// The metric, for alerts.
    pub metric: Option<String>,
    /// `firing`, `resolved`, `reminder`, `info`… for alerts; `swap` for swaps.
    pub kind: String,
    pub text: String,
}

/// The current reading of one metric.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerdictRow {
    pub metric: String,
    pub label: String,
    /// `ok`, `firing`, `resolved`.
    pub status: String,
    pub current: Option<f64>,
    pub baseline: Option<f64>,
    pub e_value: Option<f64>,
    pub threshold: Option<f64>,
    pub samples: u64,
    pub summary: String,
}

/// The id of the failed-request series: availability, never model quality.
pub const REQUEST_FAILURES: &str = "request_failures";
/// The id of the median-length series (not the `length_chars` verdict, a placement).
pub const LENGTH_CHARS: &str = "length_chars_median";

/// Running counts of one round.
#[derive(Default)]
struct Tally {
    point: RoundPoint,
    /// metric id → (bad, applicable).
    rates: BTreeMap<String, (u32, u32)>,
    chars: Vec<u32>,
}

/// Per-round points and series from a target's samples, oldest round first (as
/// `Store::history` streams them). `refusal_expected` says, by probe hash, whether a probe
/// expects a refusal (it decides which refusal metric a refusal counts for).
pub fn rounds_and_series(
    samples: impl IntoIterator<Item = RoundSample>,
    refusal_expected: &dyn Fn(&str) -> bool,
) -> (Vec<RoundPoint>, Vec<Series>) {
    let mut b = SeriesBuilder::new(usize::MAX);
    for r in samples {
        b.push(&r, refusal_expected);
    }
    b.finish()
}

/// Folds samples into per-round tallies one at a time, keeping only the newest `max_rounds`
/// rounds, so any window is read in bounded memory.
pub struct SeriesBuilder {
    tallies: std::collections::VecDeque<Tally>,
    max_rounds: usize,
}

impl SeriesBuilder {
    pub fn new(max_rounds: usize) -> SeriesBuilder {
        SeriesBuilder {
            tallies: std::collections::VecDeque::new(),
            max_rounds: max_rounds.max(1),
        }
    }

    pub fn push(&mut self, r: &RoundSample, refusal_expected: &dyn Fn(&str) -> bool) {
        if self
            .tallies
            .back()
            .is_none_or(|t| t.point.round != r.round.0)
        {
            if self.tallies.len() == self.max_rounds {
                self.tallies.pop_front();
            }
            self.tallies.push_back(Tally {
                point: RoundPoint {
                    round: r.round.0,
                    started_at_ms: r.sample.started_at_ms,
                    fingerprint: r.fingerprint.clone(),
                    ..RoundPoint::default()
                },
                ..Tally::default()
            });
        }
        let Some(t) = self.tallies.back_mut() else {
            return;
        };
        t.point.samples += 1;
        t.point.started_at_ms = t.point.started_at_ms.min(r.sample.started_at_ms);
        if r.sample.error.is_some() {
            t.point.errors += 1;
            return;
        }
        let Some(m) = &r.sample.measurements else {
            return;
        };
        let expected = refusal_expected(&r.sample.probe_hash);
        for metric in BINARY {
            if let Some(outcome) = metric.outcome(m, expected) {
                // The bad outcome, as the monitor and its alerts count it.
                let bad = outcome == metric.higher_is_worse();
                let e = t.rates.entry(metric.id()).or_default();
                e.0 += u32::from(bad);
                e.1 += 1;
            }
        }
        t.chars.push(m.chars);
    }

    pub fn finish(self) -> (Vec<RoundPoint>, Vec<Series>) {
        let tallies: Vec<Tally> = self.tallies.into();
        let series = series_of(&tallies);
        (tallies.into_iter().map(|t| t.point).collect(), series)
    }
}

fn series_of(tallies: &[Tally]) -> Vec<Series> {
    let mut out = Vec::new();
    for metric in BINARY {
        let id = metric.id();
        if !tallies.iter().any(|t| t.rates.contains_key(&id)) {
            continue;
        }
        let (values, counts) = tallies
            .iter()
            .map(|t| match t.rates.get(&id) {
                Some(&(bad, n)) if n > 0 => (Some(f64::from(bad) / f64::from(n)), n),
                _ => (None, 0),
            })
            .unzip();
        out.push(Series {
            label: metric_label(&id),
            id,
            is_rate: true,
            availability: false,
            values,
            counts,
            baseline: None,
        });
    }
    let (values, counts) = tallies
        .iter()
        .map(|t| (median(&t.chars), t.chars.len() as u32))
        .unzip();
    out.push(Series {
        id: LENGTH_CHARS.into(),
        label: Metric::LengthChars.label() + ", median",
        is_rate: false,
        availability: false,
        values,
        counts,
        baseline: None,
    });
    let (values, counts) = tallies
        .iter()
        .map(|t| {
            let n = t.point.samples;
            let share = (n > 0).then(|| f64::from(t.point.errors) / f64::from(n));
            (share, n)
        })
        .unzip();
    out.push(Series {
        id: REQUEST_FAILURES.into(),
        label: "Failed requests (availability)".into(),
        is_rate: true,
        availability: true,
        values,
        counts,
        baseline: None,
    });
    out
}

fn median(v: &[u32]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        f64::from(s[mid])
    } else {
        (f64::from(s[mid - 1]) + f64::from(s[mid])) / 2.0
    })
}

/// Evidence series from stored readings, aligned on `rounds` (readings of rounds not shown are
/// left out), one per metric, rates in the order of their charts, then length.
pub fn evidence_series(rounds: &[RoundPoint], readings: &[RoundReading]) -> Vec<EvidenceSeries> {
    let index: BTreeMap<i64, usize> = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| (r.round, i))
        .collect();
    let mut out: Vec<EvidenceSeries> = Vec::new();
    for r in readings {
        let Some(&i) = index.get(&r.round.0) else {
            continue;
        };
        let g = &r.reading;
        let pos = match out.iter().position(|s| s.metric == g.metric) {
            Some(p) => p,
            None => {
                out.push(EvidenceSeries {
                    metric: g.metric.clone(),
                    label: metric_label(&g.metric),
                    threshold: g.threshold,
                    log_e: vec![None; rounds.len()],
                    samples: vec![0; rounds.len()],
                });
                out.len() - 1
            }
        };
        let s = &mut out[pos];
        s.log_e[i] = Some(g.log_e_value);
        s.samples[i] = g.samples;
        // The newest threshold is the one in force.
        s.threshold = g.threshold;
    }
    // In the order of the rate charts, length last.
    let order = |m: &str| {
        BINARY
            .iter()
            .map(|b| b.id())
            .chain([Metric::LengthChars.id()])
            .position(|id| id == m)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(|s| order(&s.metric));
    out
}

/// Swap markers: where a round's fingerprint differs from the previous known one.
pub fn swaps(rounds: &[RoundPoint]) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for r in rounds {
        let Some(fp) = r.fingerprint.as_deref() else {
            continue;
        };
        if let Some(prev) = last
            && prev != fp
        {
            out.push(Marker {
                at_ms: r.started_at_ms,
                metric: None,
                kind: "swap".into(),
                text: format!("model swap: fingerprint {prev} → {fp}"),
            });
        }
        last = Some(fp);
    }
    out
}

/// Alert markers from the store's `alert` events (notification records).
pub fn alert_markers(events: &[Event]) -> Vec<Marker> {
    events
        .iter()
        .filter(|e| e.kind == "alert")
        .map(|e| {
            let p = &e.payload;
            let kind = p["kind"].as_str().unwrap_or("alert").to_string();
            let metric = p["key"]["metric"].as_str().map(str::to_string);
            let evidence = &p["evidence"];
            let mut text = format!("{kind}: {}", metric.as_deref().unwrap_or("?"));
            if let Some(s) = evidence["summary"].as_str() {
                text.push_str(" — ");
                text.push_str(s);
            }
            if let (Some(e), Some(t)) =
                (evidence["e_value"].as_f64(), evidence["threshold"].as_f64())
            {
                text.push_str(&format!(" (evidence {} of threshold {})", num(e), num(t)));
            }
            Marker {
                at_ms: e.at_ms,
                metric,
                kind,
                text,
            }
        })
        .collect()
}

/// The human name of a metric id, the id itself when it names no known metric. Every rate on
/// the page is the share of bad outcomes (as the monitor and its alerts count it); a metric
/// named for the good outcome says so.
pub fn metric_label(id: &str) -> String {
    BINARY
        .iter()
        .chain(&[
            Metric::LengthChars,
            Metric::LengthTokens,
            Metric::LengthShape,
        ])
        .find(|m| m.id() == id)
        .map_or_else(|| id.to_string(), |m| m.label())
}

/// Verdict rows from stored alert states (the `report` command's view of the present).
pub fn verdicts_from_alerts(states: &[AlertState], target: &str) -> Vec<VerdictRow> {
    states
        .iter()
        .filter(|s| s.key.target == target)
        .map(|s| {
            let ev = s.evidence.as_ref();
            VerdictRow {
                metric: s.key.metric.clone(),
                label: metric_label(&s.key.metric),
                status: s.status.as_str().to_string(),
                current: ev.and_then(|e| e.current),
                baseline: ev.and_then(|e| e.baseline),
                e_value: ev.and_then(|e| e.e_value),
                threshold: ev.and_then(|e| e.threshold),
                samples: ev.map_or(0, |e| e.samples),
                summary: ev.map(|e| e.summary.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

/// Sets each series' baseline from the verdict of the same metric, when it has one.
pub fn attach_baselines(t: &mut TargetTimeline) {
    for s in &mut t.series {
        s.baseline = t
            .verdicts
            .iter()
            .find(|v| v.metric == s.id)
            .and_then(|v| v.baseline);
    }
}

/// A number for people: `8.1e6` becomes `8.1 million`, small ones keep two decimals.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "∞".into();
    }
    let a = v.abs();
    if a >= 1e12 {
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}{}", scientific(a.log10()))
    } else if a >= 1e9 {
        format!("{:.1} billion", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1} million", v / 1e6)
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// [`num`] of `exp(ln_v)`, also where `exp` overflows (e-values of 10^400 happen).
pub fn num_from_ln(ln_v: f64) -> String {
    let log10 = ln_v / std::f64::consts::LN_10;
    if log10 >= 12.0 && log10.is_finite() {
        scientific(log10)
    } else {
        num(ln_v.exp())
    }
}

/// `m.m×10^e` of the number whose decimal log is `log10`: the one place that form is written.
fn scientific(log10: f64) -> String {
    let mut exp = log10.floor();
    let mut m = (10f64.powf(log10 - exp) * 10.0).round() / 10.0;
    if m >= 10.0 {
        m /= 10.0;
        exp += 1.0;
    }
    format!("{m:.1}×10^{exp}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{ErrorKind, Measurements, Sample, SampleError};
    use crate::store::RoundId;

    fn rs(round: i64, fp: &str, at: i64, refusal: bool, chars: u32, error: bool) -> RoundSample {
        RoundSample {
            round: RoundId(round),
            fingerprint: Some(fp.into()),
            sample: Sample {
                seed: None,
                target: "t".into(),
                suite: "s".into(),
                probe_id: "p".into(),
                probe_hash: if refusal {
                    "h-expects".into()
                } else {
                    "h".into()
                },
                index: 0,
                started_at_ms: at,
                latency_ms: 1.0,
                ttft_ms: None,
                attempts: 1,
                finish_reason: None,
                input_tokens: None,
                response_model: None,
                system_fingerprint: None,
                measurements: (!error).then(|| Measurements {
                    chars,
                    refusal,
                    ..Measurements::default()
                }),
                error: error.then(|| SampleError::new(ErrorKind::Connect, "refused")),
                text: None,
            },
        }
    }

    #[test]
    fn rates_follow_the_metric_definitions_round_by_round() {
        let samples = vec![
            rs(1, "a", 10, false, 100, false),
            rs(1, "a", 11, false, 300, false),
            rs(2, "b", 20, true, 200, false),
            rs(2, "b", 21, false, 200, false),
            rs(2, "b", 22, false, 0, true),
        ];
        // Nothing expects a refusal: every refusal counts for the refusal rate.
        let (rounds, series) = rounds_and_series(samples.clone(), &|_| false);
        assert_eq!(rounds.len(), 2);
        assert_eq!((rounds[1].samples, rounds[1].errors), (3, 1));
        let refusal = series.iter().find(|s| s.id == "refusal_rate").unwrap();
        assert_eq!(refusal.values, [Some(0.0), Some(0.5)]);
        assert_eq!(refusal.counts, [2, 2]);
        let length = series.iter().find(|s| s.id == LENGTH_CHARS).unwrap();
        assert_eq!(length.values, [Some(200.0), Some(200.0)]);
        let failed = series.iter().find(|s| s.id == REQUEST_FAILURES).unwrap();
        assert!(failed.availability);
        assert_eq!(failed.values[1], Some(1.0 / 3.0));
        assert!(
            !series.iter().any(|s| s.id == "missed_refusal_rate"),
            "a metric that never applied is not charted"
        );
        // A probe expecting refusals moves its refusal to the other metric.
        let (_, series) = rounds_and_series(samples, &|h| h == "h-expects");
        let refusal = series.iter().find(|s| s.id == "refusal_rate").unwrap();
        assert_eq!(refusal.values, [Some(0.0), Some(0.0)]);
        let missed = series
            .iter()
            .find(|s| s.id == "missed_refusal_rate")
            .unwrap();
        assert_eq!(missed.values, [None, Some(0.0)]);
        let swaps = swaps(&rounds);
        assert_eq!(swaps.len(), 1);
        assert_eq!(swaps[0].at_ms, 20);
        assert!(swaps[0].text.contains("a → b"));
    }

    #[test]
    fn every_rate_is_the_share_of_bad_outcomes_as_alerts_count_it() {
        let mut samples = vec![rs(1, "a", 10, false, 100, false); 4];
        for (i, s) in samples.iter_mut().enumerate() {
            if let Some(m) = s.sample.measurements.as_mut() {
                m.task_success = Some(i != 0);
            }
        }
        let (_, series) = rounds_and_series(samples, &|_| false);
        let task = series.iter().find(|s| s.id == "task_failure_rate").unwrap();
        assert_eq!(task.values, [Some(0.25)], "one failure in four");
        assert_eq!(task.label, "Task failures");
        assert_eq!(metric_label("refusal_rate"), "Refusal rate");
    }

    #[test]
    fn evidence_is_aligned_on_the_rounds_shown_one_series_per_metric() {
        let rounds: Vec<RoundPoint> = [7, 9, 12]
            .iter()
            .map(|&round| RoundPoint {
                round,
                ..RoundPoint::default()
            })
            .collect();
        let reading = |round: i64, metric: &str, log_e: f64, threshold: f64| RoundReading {
            round: RoundId(round),
            started_at_ms: round,
            reading: crate::store::Reading {
                metric: metric.into(),
                log_e_value: log_e,
                threshold,
                current: None,
                samples: round as u64,
            },
        };
        let got = evidence_series(
            &rounds,
            &[
                reading(5, "refusal_rate", 9.0, 10.0), // a round not shown
                reading(7, "refusal_rate", 0.5, 10.0),
                reading(9, "length_chars", 1.5, 10.0),
                reading(12, "refusal_rate", 2.0, 50.0),
            ],
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].metric, "refusal_rate");
        assert_eq!(got[0].log_e, [Some(0.5), None, Some(2.0)]);
        assert_eq!(got[0].samples, [7, 0, 12]);
        assert_eq!(got[0].threshold, 50.0, "the newest threshold is in force");
        assert_eq!(got[1].metric, "length_chars", "length after the rates");
        assert_eq!(got[1].log_e, [None, Some(1.5), None]);
        assert_eq!(got[1].label, metric_label("length_chars"));
    }

    #[test]
    fn numbers_read_as_words_for_people() {
        assert_eq!(num(8.1e6), "8.1 million");
        assert_eq!(num(2.751e32), "2.8×10^32");
        assert_eq!(num(20.0), "20.0");
        assert_eq!(num(0.5), "0.50");
        assert_eq!(num(f64::INFINITY), "∞");
        assert_eq!(num_from_ln(20f64.ln()), "20.0");
        assert_eq!(num_from_ln(1000.0 * std::f64::consts::LN_10), "1.0×10^1000");
    }
}
