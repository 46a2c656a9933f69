//! Detection power of the daemon's monitor, measured on simulated monitoring streams.
//!
//! Drives the code the daemon runs: a [`Baseline`] built the way `baseline record` stores one
//! (20 samples per probe), a [`TargetMonitor`] made from it with the daemon's settings, and
//! simulated rounds of [`Sample`]s fed to `observe_round`; an alarm is the first `Breach`.
//!
//! The simulated target: 50 probes in 5 suites of 10, per-probe rates drawn from Beta
//! distributions around each metric's base rate (refusal 2 %, task failure 10 %, empty 0.5 %,
//! structured failure 3 % on 10 JSON probes, 5 in each of two suites), lognormal lengths
//! (truncated at a per-probe max-token cap that cuts ~1 %, or ~70 % in one scenario), 3 samples
//! per probe per 10-minute round = 900 samples/hour, `false_alarm_interval` 90 days, default
//! margins. Seeds are fixed: the same command prints the same figures.
//!
//! `cargo bench --bench detection` runs everything; `-- --quick` is a smoke run with few
//! replicates. Results go to stdout (Markdown) and `benches/results/` (JSON and an SVG plot).

use modelwatch::alert::Observation;
use modelwatch::baseline::{
    Baseline, BaselineProbe, DEFAULT_SAMPLES_PER_PROBE, FORMAT_VERSION, Recorded, StoredSample,
};
use modelwatch::daemon::monitor::{MonitorSettings, TargetMonitor};
use modelwatch::daemon::strata::NullConfidence;
use modelwatch::drift::Margins;
use modelwatch::probe::GenParams;
use modelwatch::provider::Fingerprint;
use modelwatch::rng::Rng;
use modelwatch::sample::{FinishReason, Measurements, Sample, StructuredOutcome};
use serde_json::json;
use statrs::distribution::{ChiSquared, ContinuousCDF};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

const PROBES: usize = 50;
const PROBES_PER_SUITE: usize = 10;
/// JSON probes: indices 35..45, i.e. the last 5 of suite s3 and the first 5 of suite s4.
const JSON_FIRST: usize = 35;
const JSON_PROBES: usize = 10;
/// The suite whose structured failures rise in the "one suite" scenario.
const BROKEN_SUITE: usize = 3;
const PER_ROUND: usize = 3;
const ROUND_MINUTES: f64 = 10.0;
const ROUNDS_PER_DAY: usize = (24.0 * 60.0 / ROUND_MINUTES) as usize;
const SAMPLES_PER_ROUND: usize = PROBES * PER_ROUND;
const FALSE_ALARM_DAYS: f64 = 90.0;
/// Beta concentration (a + b) of the per-probe rates: probes differ a lot.
const CONCENTRATION: f64 = 20.0;
/// Log-scale spread of lengths within a probe.
const LENGTH_SIGMA: f64 = 0.35;
/// z of the max-token cap: P(lognormal above the cap) = 1 %.
const CAP_Z: f64 = 2.326;
/// z of a tight max-token cap: P(lognormal above the cap) = 70 %.
const TIGHT_CAP_Z: f64 = -0.5244;

// ---------------------------------------------------------------------------------------------
// The simulated model.

/// Base rates of one model.
#[derive(Debug, Clone, Copy)]
struct Rates {
    refusal: f64,
    task_failure: f64,
    /// z of the max-token cap (share truncated = P(Z > z)).
    cap_z: f64,
}

/// One probe's true behaviour.
#[derive(Debug, Clone, Copy)]
struct ProbeModel {
    refusal: f64,
    task_failure: f64,
    empty: f64,
    json_failure: Option<f64>,
    median_chars: f64,
    cap_chars: f64,
    latency_ms: f64,
    /// 1, or each response's length × this or ÷ this with equal chance (a bimodal shape with
    /// the median unchanged).
    bimodal: f64,
}

/// What changed, applied to a probe's model at a given round after the change.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Latency (and nothing else) ×3: an infrastructure shift.
    Latency,
    /// Additive shift of every probe's refusal rate.
    Refusal(f64),
    /// Additive shift of every probe's task-failure rate.
    TaskFailure(f64),
    /// Task failure +0.5 on 10 % of probes only (every tenth: one per suite).
    FewProbes,
    /// Task failure +0.5 on the first 10 % of probes only (all in one suite).
    FirstProbes,
    /// Structured failures +17 points on the JSON probes of one suite only.
    OneSuiteStructured,
    /// The max-token cap lowered so that every response is cut off.
    TruncateAll,
    /// Every response this much longer.
    Length(f64),
    /// Half the responses this much longer, half this much shorter: the median stays.
    Bimodal(f64),
    /// The same with the max-token cap raised by the factor, so truncation does not rise:
    /// the length monitors alone.
    BimodalUncapped(f64),
    /// The max-token cap lowered so that ~15 % of responses are cut off.
    Truncation,
    /// Refusal rate rising linearly by `delta` over `rounds`.
    Ramp { delta: f64, rounds: usize },
}

impl Change {
    fn apply(self, p: &ProbeModel, index: usize, since: usize) -> ProbeModel {
        let mut q = *p;
        match self {
            Change::Latency => q.latency_ms *= 3.0,
            Change::Refusal(d) => q.refusal = (p.refusal + d).min(1.0),
            Change::TaskFailure(d) => q.task_failure = (p.task_failure + d).min(1.0),
            Change::FewProbes => {
                if index.is_multiple_of(10) {
                    q.task_failure = (p.task_failure + 0.5).min(1.0);
                }
            }
            Change::FirstProbes => {
                if index < PROBES / 10 {
                    q.task_failure = (p.task_failure + 0.5).min(1.0);
                }
            }
            Change::OneSuiteStructured => {
                if index / PROBES_PER_SUITE == BROKEN_SUITE {
                    q.json_failure = p.json_failure.map(|f| (f + 0.17).min(1.0));
                }
            }
            Change::TruncateAll => q.cap_chars = p.median_chars * (-5.0 * LENGTH_SIGMA).exp(),
            Change::Length(f) => q.median_chars *= f,
            Change::Bimodal(f) => q.bimodal = f,
            Change::BimodalUncapped(f) => {
                q.bimodal = f;
                q.cap_chars = p.cap_chars * f;
            }
            Change::Truncation => {
                // P(z > 1.036) = 15 %.
                q.cap_chars = p.median_chars * (1.036 * LENGTH_SIGMA).exp();
            }
            Change::Ramp { delta, rounds } => {
                let share = ((since + 1) as f64 / rounds as f64).min(1.0);
                q.refusal = (p.refusal + delta * share).min(1.0);
            }
        }
        q
    }

    /// The rate metric whose true rate the change moves, with its pooled changed rate.
    fn bernoulli_target(self, probes: &[ProbeModel]) -> Option<(&'static str, f64)> {
        let changed: Vec<ProbeModel> = probes
            .iter()
            .enumerate()
            .map(|(i, p)| self.apply(p, i, usize::MAX / 2))
            .collect();
        let mean_changed = |f: &dyn Fn(&ProbeModel) -> f64| {
            changed.iter().map(f).sum::<f64>() / changed.len() as f64
        };
        match self {
            Change::Refusal(_) | Change::Ramp { .. } => {
                Some(("refusal_rate", mean_changed(&|p| p.refusal)))
            }
            Change::TaskFailure(_) | Change::FewProbes | Change::FirstProbes => {
                Some(("task_failure_rate", mean_changed(&|p| p.task_failure)))
            }
            Change::OneSuiteStructured => {
                let json: Vec<f64> = changed.iter().filter_map(|p| p.json_failure).collect();
                Some((
                    "structured_failure_rate",
                    json.iter().sum::<f64>() / json.len().max(1) as f64,
                ))
            }
            Change::Truncation | Change::TruncateAll => Some((
                "truncation_rate",
                mean_changed(&|p| upper_tail((p.cap_chars / p.median_chars).ln() / LENGTH_SIGMA)),
            )),
            _ => None,
        }
    }
}

/// P(Z > z) for a standard normal.
fn upper_tail(z: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2)
}

/// Gamma(shape, 1) by Marsaglia–Tsang (with the shape < 1 boost).
fn gamma(rng: &mut Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u = 1.0 - rng.f64();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.f64();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Beta with the given mean and concentration a + b.
fn beta(rng: &mut Rng, mean: f64, concentration: f64) -> f64 {
    let x = gamma(rng, mean * concentration);
    let y = gamma(rng, (1.0 - mean) * concentration);
    x / (x + y)
}

fn draw_probes(rng: &mut Rng, rates: Rates) -> Vec<ProbeModel> {
    (0..PROBES)
        .map(|i| {
            let median_chars = rng.lognormal(600.0, 0.6).max(20.0);
            ProbeModel {
                refusal: beta(rng, rates.refusal, CONCENTRATION),
                task_failure: beta(rng, rates.task_failure, CONCENTRATION),
                empty: beta(rng, 0.005, CONCENTRATION),
                json_failure: (JSON_FIRST..JSON_FIRST + JSON_PROBES)
                    .contains(&i)
                    .then(|| beta(rng, 0.03, CONCENTRATION)),
                median_chars,
                cap_chars: median_chars * (rates.cap_z * LENGTH_SIGMA).exp(),
                latency_ms: rng.lognormal(800.0, 0.3),
                bimodal: 1.0,
            }
        })
        .collect()
}

/// Fills `s` with one simulated response of probe model `p`.
fn respond(rng: &mut Rng, p: &ProbeModel, s: &mut Sample) {
    let mut chars = rng.lognormal(p.median_chars, LENGTH_SIGMA);
    if p.bimodal != 1.0 {
        chars *= if rng.bernoulli(0.5) {
            p.bimodal
        } else {
            1.0 / p.bimodal
        };
    }
    let truncated = chars >= p.cap_chars;
    let empty = rng.bernoulli(p.empty);
    let chars = if empty { 0.0 } else { chars.min(p.cap_chars) };
    let m = s.measurements.get_or_insert_with(Measurements::default);
    m.chars = chars.round() as u32;
    m.words = m.chars / 6;
    m.truncated = truncated && !empty;
    m.empty = empty;
    m.refusal = rng.bernoulli(p.refusal);
    m.task_success = Some(!rng.bernoulli(p.task_failure));
    m.structured = p.json_failure.map(|f| {
        if rng.bernoulli(f) {
            StructuredOutcome::InvalidJson
        } else {
            StructuredOutcome::Ok
        }
    });
    s.finish_reason = Some(if m.truncated {
        FinishReason::Length
    } else {
        FinishReason::Stop
    });
    s.latency_ms = rng.lognormal(p.latency_ms, 0.3);
}

/// One round's worth of sample slots (identity filled once, measurements rewritten per round).
fn round_template() -> Vec<Sample> {
    (0..PROBES)
        .flat_map(|i| {
            (0..PER_ROUND).map(move |k| Sample {
                seed: None,
                target: "sim".into(),
                suite: suite_name(i),
                probe_id: format!("p{i:02}"),
                probe_hash: format!("h{i:02}"),
                index: k as u32,
                started_at_ms: 0,
                latency_ms: 0.0,
                ttft_ms: None,
                attempts: 1,
                finish_reason: None,
                input_tokens: None,
                response_model: None,
                system_fingerprint: None,
                measurements: None,
                error: None,
                text: None,
            })
        })
        .collect()
}

fn suite_name(probe: usize) -> String {
    format!("s{}", probe / PROBES_PER_SUITE)
}

fn fill_round(rng: &mut Rng, probes: &[ProbeModel], slots: &mut [Sample]) {
    for (j, s) in slots.iter_mut().enumerate() {
        respond(rng, &probes[j / PER_ROUND], s);
    }
}

/// Samples per probe in a recorded baseline: `baseline record`'s default, or
/// `DETECTION_BASELINE_SAMPLES` (how the sensitivity grows with the baseline's size).
fn baseline_samples() -> u32 {
    std::env::var("DETECTION_BASELINE_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES_PER_PROBE)
}

/// A baseline as `baseline record` stores it: every probe sampled [`baseline_samples`] times
/// from the (unchanged) model.
fn record_baseline(rng: &mut Rng, probes: &[ProbeModel]) -> Baseline {
    let per_probe = baseline_samples();
    let mut template = round_template();
    let mut out: BTreeMap<String, BaselineProbe> = BTreeMap::new();
    for i in 0..PROBES {
        out.insert(
            format!("p{i:02}"),
            BaselineProbe {
                suite: suite_name(i),
                hash: format!("h{i:02}"),
                refusal_expected: false,
                samples: Vec::new(),
            },
        );
    }
    let rounds = (per_probe as usize).div_ceil(PER_ROUND);
    for r in 0..rounds {
        fill_round(rng, probes, &mut template);
        for s in &template {
            let index = (r * PER_ROUND) as u32 + s.index;
            if index >= per_probe {
                continue;
            }
            let entry = out.get_mut(&s.probe_id).expect("probe in template");
            entry.samples.push(StoredSample {
                seed: None,
                index,
                latency_ms: s.latency_ms,
                ttft_ms: None,
                finish_reason: s.finish_reason.clone(),
                error: None,
                measurements: s.measurements.clone(),
                excerpt: None,
            });
        }
    }
    Baseline {
        format_version: FORMAT_VERSION,
        target: "sim".into(),
        fingerprint: Fingerprint::default(),
        suites: (0..PROBES / PROBES_PER_SUITE)
            .map(|k| (format!("s{k}"), format!("suitehash{k}")))
            .collect(),
        probes: out,
        recorded: Recorded {
            at: "2026-01-01T00:00:00Z".into(),
            modelwatch_version: env!("CARGO_PKG_VERSION").into(),
            samples_per_probe: per_probe,
            params: GenParams::default(),
        },
    }
}

fn settings() -> MonitorSettings {
    MonitorSettings {
        margins: Margins::default(),
        false_alarm_rounds: FALSE_ALARM_DAYS * ROUNDS_PER_DAY as f64,
        null_confidence: null_confidence(),
    }
}

/// The monitor's null confidence; `DETECTION_NULL_CONF=pooled,suite,probe` (two-sided levels)
/// overrides the default to compare levels without rebuilding.
fn null_confidence() -> NullConfidence {
    let mut c = NullConfidence::default();
    if let Ok(v) = std::env::var("DETECTION_NULL_CONF") {
        let l: Vec<f64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        if let [pooled, suite, probe] = l[..] {
            c = NullConfidence {
                pooled,
                suite,
                probe,
            };
        }
    }
    c
}

/// First metric that breached in a round, if any.
fn breach(obs: &[(String, Observation)]) -> Option<String> {
    obs.iter()
        .find(|(_, o)| matches!(o, Observation::Breach(_)))
        .map(|(m, _)| m.clone())
}

// ---------------------------------------------------------------------------------------------
// Null scenarios: time to the first (false) alarm, censored at the horizon.

#[derive(Debug, Clone, Copy)]
enum Null {
    NoChange,
    /// Latency ×3 from a random round on.
    LatencyOnly,
    /// The baseline re-recorded from the same model every day (a new episode each time).
    FreshBaselineDaily,
}

impl Null {
    fn name(self) -> &'static str {
        match self {
            Null::NoChange => "no change",
            Null::LatencyOnly => "latency-only shift (×3 from a random round)",
            Null::FreshBaselineDaily => "fresh baseline of the same model every day",
        }
    }
}

/// `DETECTION_SEED_OFFSET=N`: another set of streams (nulls and alternatives), to check a
/// figure on replicates that were not looked at when a setting was chosen.
fn seed_offset() -> u64 {
    std::env::var("DETECTION_SEED_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Rounds until the first alarm (None: none within `rounds`).
fn null_replicate(kind: Null, seed: u64, rounds: usize) -> Option<usize> {
    let offset = seed_offset();
    let mut rng = Rng::from_parts(&[0x4e55_4c4c, kind as u64, seed + offset]);
    let rates = Rates {
        refusal: 0.02,
        task_failure: 0.10,
        cap_z: CAP_Z,
    };
    let probes = draw_probes(&mut rng, rates);
    let change_at = rng.below(rounds as u64) as usize;
    let mut monitor = TargetMonitor::new(&record_baseline(&mut rng, &probes), settings());
    let mut slots = round_template();
    let mut current = probes.clone();
    for r in 0..rounds {
        if matches!(kind, Null::FreshBaselineDaily) && r > 0 && r % ROUNDS_PER_DAY == 0 {
            monitor = TargetMonitor::new(&record_baseline(&mut rng, &probes), settings());
        }
        if matches!(kind, Null::LatencyOnly) && r == change_at {
            current = probes
                .iter()
                .enumerate()
                .map(|(i, p)| Change::Latency.apply(p, i, 0))
                .collect();
        }
        fill_round(&mut rng, &current, &mut slots);
        let observed = monitor.observe_round(&slots);
        if let Some(metric) = breach(&observed) {
            if std::env::var_os("DETECTION_EXPLAIN").is_some() {
                explain_alarm(kind, seed, r, &metric, &observed);
            }
            return Some(r);
        }
    }
    None
}

/// `DETECTION_EXPLAIN=1`: what a null alarm rested on (metric, evidence, strata), on stderr.
fn explain_alarm(kind: Null, seed: u64, round: usize, metric: &str, obs: &[(String, Observation)]) {
    for (m, o) in obs {
        if let (true, Observation::Breach(e)) = (m == metric, o) {
            eprintln!(
                "null alarm {kind:?} seed {seed} round {round} (day {}, round {} of the day): {m}: {} [e {:?} / {:?}; strata {:?}]",
                round / ROUNDS_PER_DAY,
                round % ROUNDS_PER_DAY,
                e.summary,
                e.e_value,
                e.threshold,
                e.flipped_probes
            );
        }
    }
}

struct NullResult {
    kind: Null,
    replicates: usize,
    days: f64,
    alarms: usize,
    exposure_days: f64,
    p30_point: f64,
    p30_upper: f64,
}

/// Exponential (constant-hazard) extrapolation: λ̂ = alarms / exposure, one-sided 95 % upper
/// bound χ²₀.₉₅(2(x+1)) / (2·exposure) (exact Poisson), P(alarm within 30 d) = 1 − e^{−30λ}.
fn extrapolate(alarms: usize, exposure_days: f64) -> (f64, f64) {
    let point = alarms as f64 / exposure_days;
    let chi = ChiSquared::new(2.0 * (alarms as f64 + 1.0)).expect("positive dof");
    let upper = chi.inverse_cdf(0.95) / (2.0 * exposure_days);
    (1.0 - (-30.0 * point).exp(), 1.0 - (-30.0 * upper).exp())
}

fn run_null(kind: Null, replicates: usize, days: usize, threads: usize) -> NullResult {
    let rounds = days * ROUNDS_PER_DAY;
    let firsts = parallel(replicates, threads, |i| {
        null_replicate(kind, i as u64, rounds)
    });
    let alarms = firsts.iter().filter(|f| f.is_some()).count();
    let exposure_rounds: usize = firsts.iter().map(|f| f.map_or(rounds, |r| r + 1)).sum();
    let exposure_days = exposure_rounds as f64 / ROUNDS_PER_DAY as f64;
    let (p30_point, p30_upper) = extrapolate(alarms, exposure_days);
    NullResult {
        kind,
        replicates,
        days: days as f64,
        alarms,
        exposure_days,
        p30_point,
        p30_upper,
    }
}

// ---------------------------------------------------------------------------------------------
// Alternatives: delay from the change to the first alarm.

/// When the change starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// From the first round after the baseline.
    Episode,
    /// At a uniformly random round below this one.
    Random(usize),
    /// At exactly this round (after a quiet period).
    After(usize),
}

#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    rates: Rates,
    change: Change,
    starts: Vec<(&'static str, Start)>,
    /// A detection window to report the share caught within (rounds, label).
    within: Option<(usize, &'static str)>,
}

#[derive(Debug, Clone)]
struct Detection {
    /// Samples from the change to the end of the alarming round (None: missed within the cap).
    delay: Option<usize>,
    /// The metric of the first alarm after the change.
    metric: Option<String>,
    /// Alarms before the change (false alarms on the way).
    early: bool,
    /// The metric of the first alarm before the change.
    early_metric: Option<String>,
    /// Same-hypotheses Wald figure ln(K/α)/KL(p_true ‖ p0), in samples (None: not a rate shift
    /// or the true rate is inside the null).
    wald: Option<f64>,
    /// Lorden's figure ln(c)/KL(p_true ‖ p0) at the change detector's threshold c.
    lorden: Option<f64>,
    p0: f64,
    p_true: f64,
}

fn kl(p: f64, q: f64) -> f64 {
    let t = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * (a / b).ln() };
    t(p, q) + t(1.0 - p, 1.0 - q)
}

fn alt_replicate(sc: &Scenario, seed: u64, start: Start, cap_rounds: usize) -> Detection {
    let mut rng = Rng::from_parts(&[0x414c_5400, seed + seed_offset()]);
    let probes = draw_probes(&mut rng, sc.rates);
    let change_at = match start {
        Start::Episode => 0,
        Start::Random(r) => rng.below(r as u64) as usize,
        Start::After(r) => r,
    };
    let mut monitor = TargetMonitor::new(&record_baseline(&mut rng, &probes), settings());
    // The hypotheses the monitor tests for the moved metric.
    let k = monitor.metric_count() as f64;
    let alpha = Margins::default().alpha;
    let (mut wald, mut lorden, mut p0, mut p_true) = (None, None, f64::NAN, f64::NAN);
    if let Some((metric, truth)) = sc.change.bernoulli_target(&probes)
        && let Some(snap) = monitor.snapshot().into_iter().find(|s| s.metric == metric)
    {
        p0 = snap.null_bound;
        p_true = truth;
        // A ramp has no fixed alternative: its delay is reported, not compared.
        if truth > p0 && !matches!(sc.change, Change::Ramp { .. }) {
            let d = kl(truth, p0);
            wald = Some((k / alpha).ln() / d);
            // The detector's threshold c = K × the false-alarm interval in rounds.
            let c = FALSE_ALARM_DAYS * ROUNDS_PER_DAY as f64 * k;
            lorden = Some(c.ln() / d);
        }
    }
    let mut slots = round_template();
    let mut early = false;
    let mut delay = None;
    let mut alarm_metric = None;
    let mut early_metric = None;
    for r in 0..change_at + cap_rounds {
        let since = r.checked_sub(change_at);
        let current: Vec<ProbeModel> = match since {
            None => probes.clone(),
            Some(t) => probes
                .iter()
                .enumerate()
                .map(|(i, p)| sc.change.apply(p, i, t))
                .collect(),
        };
        fill_round(&mut rng, &current, &mut slots);
        if let Some(metric) = breach(&monitor.observe_round(&slots)) {
            match since {
                None => {
                    if !early {
                        early_metric = Some(metric);
                    }
                    early = true;
                }
                Some(t) => {
                    delay = Some((t + 1) * SAMPLES_PER_ROUND);
                    alarm_metric = Some(metric);
                    break;
                }
            }
        }
    }
    Detection {
        delay,
        metric: alarm_metric,
        early_metric,
        early,
        wald,
        lorden,
        p0,
        p_true,
    }
}

/// `q`-quantile of delays, misses counted as +∞ (None when the quantile is a miss).
fn quantile(delays: &[Option<usize>], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = delays
        .iter()
        .map(|d| d.map_or(f64::INFINITY, |x| x as f64))
        .collect();
    v.sort_by(f64::total_cmp);
    let x = v[((v.len() as f64 - 1.0) * q).round() as usize];
    x.is_finite().then_some(x)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

struct AltResult {
    name: String,
    start: &'static str,
    replicates: usize,
    cap_days: f64,
    median: Option<f64>,
    p90: Option<f64>,
    miss: f64,
    early: f64,
    wald: Option<f64>,
    lorden: Option<f64>,
    ratio_wald: Option<f64>,
    /// Against Wald rounded up to whole rounds (no per-round monitor can alarm sooner).
    ratio_wald_rounds: Option<f64>,
    ratio_lorden: Option<f64>,
    /// Streams whose changed rate stayed inside the null (no Wald figure).
    inside_null: usize,
    p0: Option<f64>,
    p_true: Option<f64>,
    /// Caught within the scenario's window (count, label).
    within: Option<(usize, &'static str)>,
    /// Metrics of the first alarms, most frequent first, with counts.
    metrics: Vec<(String, usize)>,
}

fn run_alt(
    sc: &Scenario,
    replicates: usize,
    start: (&'static str, Start),
    cap_rounds: usize,
    threads: usize,
) -> AltResult {
    let seed0 = match start.1 {
        Start::Episode => 0,
        Start::Random(_) => 1_000_000,
        Start::After(_) => 2_000_000,
    };
    let ds = parallel(replicates, threads, |i| {
        alt_replicate(sc, seed0 + i as u64, start.1, cap_rounds)
    });
    let delays: Vec<Option<usize>> = ds.iter().map(|d| d.delay).collect();
    // Per-replicate ratios (a miss is +∞); the median of ratios is the efficiency.
    // Streams whose changed rate stayed inside the null (p <= p0: the baseline's upper bound
    // plus the margin already covers it) have no Wald figure and are left out of the ratio.
    let ratio = |f: &dyn Fn(&Detection) -> Option<f64>| {
        let v: Vec<f64> = ds
            .iter()
            .filter_map(|d| f(d).map(|w| d.delay.map_or(f64::INFINITY, |x| x as f64) / w))
            .collect();
        median(v).filter(|x| x.is_finite())
    };
    let inside_null = ds
        .iter()
        .filter(|d| d.p_true.is_finite() && d.wald.is_none())
        .count();
    let finite = |v: Vec<f64>| median(v.into_iter().filter(|x| x.is_finite()).collect());
    let within = sc.within.map(|(rounds, label)| {
        let caught = delays
            .iter()
            .filter(|d| d.is_some_and(|x| x <= rounds * SAMPLES_PER_ROUND))
            .count();
        (caught, label)
    });
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in ds.iter().filter_map(|d| d.metric.clone()) {
        *counts.entry(m).or_default() += 1;
    }
    for m in ds.iter().filter_map(|d| d.early_metric.clone()) {
        *counts.entry(format!("{m} before the change")).or_default() += 1;
    }
    let mut metrics: Vec<(String, usize)> = counts.into_iter().collect();
    metrics.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    AltResult {
        within,
        metrics,
        name: sc.name.clone(),
        start: start.0,
        replicates,
        cap_days: cap_rounds as f64 / ROUNDS_PER_DAY as f64,
        median: quantile(&delays, 0.5),
        p90: quantile(&delays, 0.9),
        miss: delays.iter().filter(|d| d.is_none()).count() as f64 / replicates as f64,
        early: ds.iter().filter(|d| d.early).count() as f64 / replicates as f64,
        wald: median(ds.iter().filter_map(|d| d.wald).collect()),
        lorden: median(ds.iter().filter_map(|d| d.lorden).collect()),
        ratio_wald: ratio(&|d| d.wald),
        ratio_wald_rounds: ratio(&|d| {
            d.wald
                .map(|w| (w / SAMPLES_PER_ROUND as f64).ceil() * SAMPLES_PER_ROUND as f64)
        }),
        ratio_lorden: ratio(&|d| d.lorden),
        inside_null,
        p0: finite(ds.iter().map(|d| d.p0).collect()),
        p_true: finite(ds.iter().map(|d| d.p_true).collect()),
    }
}

/// Runs `f(0..n)` on `threads` threads; results in index order.
fn parallel<T: Send, F: Fn(usize) -> T + Sync>(n: usize, threads: usize, f: F) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunks: Vec<_> = out.chunks_mut(n.div_ceil(threads)).enumerate().collect();
        let size = n.div_ceil(threads);
        for (c, chunk) in chunks {
            let f = &f;
            scope.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(f(c * size + j));
                }
            });
        }
    });
    out.into_iter()
        .map(|x| x.expect("every slot filled"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn hours(samples: f64) -> f64 {
    samples / 900.0
}

fn fmt_opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or("—".into(), f)
}

/// (effect in points, median delay, Wald floor, Lorden figure).
type SweepPoint = (f64, Option<f64>, Option<f64>, Option<f64>);

/// Median delay against effect size beside the floors, log-scale y.
fn svg(points: &[SweepPoint], base: f64) -> String {
    let (w, h, l, r, t, b) = (640.0, 400.0, 70.0, 20.0, 30.0, 50.0);
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let (x0, x1) = (0.0, xs.iter().cloned().fold(0.0, f64::max) * 1.05);
    let ys: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.1, p.2, p.3])
        .flatten()
        .collect();
    let ymin = ys.iter().cloned().fold(f64::INFINITY, f64::min).max(1.0);
    let ymax = ys.iter().cloned().fold(1.0, f64::max);
    let (ly0, ly1) = (
        ymin.log10().floor(),
        ymax.log10().ceil().max(ymin.log10().floor() + 1.0),
    );
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| t + (ly1 - y.log10()) / (ly1 - ly0) * (h - t - b);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{}" y="18" text-anchor="middle" font-size="14">Refusal rate {:.0} % → {:.0} % + effect: detection delay (samples)</text>
"##,
        w / 2.0,
        base * 100.0,
        base * 100.0
    );
    for d in (ly0 as i32)..=(ly1 as i32) {
        let y = py(10f64.powi(d));
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0,
            10u64.pow(d.max(0) as u32)
        );
    }
    for x in &xs {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">+{:.0}</text>"##,
            px(*x),
            h - b + 18.0,
            x
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">effect (percentage points above the baseline rate)</text>"##,
        (l + w - r) / 2.0,
        h - 10.0
    );
    let _ = writeln!(
        s,
        r##"<line x1="{l}" y1="{t}" x2="{l}" y2="{:.1}" stroke="black"/><line x1="{l}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"##,
        h - b,
        h - b,
        w - r,
        h - b
    );
    let series: [(&str, &str, usize); 3] = [
        ("#1f77b4", "median delay (monitor)", 1),
        ("#2ca02c", "Wald floor ln(K/α)/KL(p‖p0)", 2),
        ("#d62728", "Lorden figure ln(ARL)/KL(p‖p0)", 3),
    ];
    for (i, (color, label, idx)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| {
                let y = match idx {
                    1 => p.1,
                    2 => p.2,
                    _ => p.3,
                }?;
                Some((px(p.0), py(y)))
            })
            .collect();
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let dash = if *idx == 1 {
            ""
        } else {
            r#" stroke-dasharray="6 4""#
        };
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"##,
            path.join(" ")
        );
        for (x, y) in &pts {
            let _ = writeln!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"/>"##
            );
        }
        let ly = t + 16.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{label}</text>"##,
            w - r - 250.0,
            w - r - 225.0,
            w - r - 220.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; filters are not supported.
    let quick = args.iter().any(|a| a == "--quick");
    // `--only TEXT`: just the alternatives whose name contains TEXT (no nulls, no sweep);
    // `--replicates N`: replicates per alternative.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let reps_arg = args
        .iter()
        .position(|a| a == "--replicates")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok());
    let threads = std::env::var("DETECTION_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize);
    let started = Instant::now();
    let (null_reps, null_days, alt_reps) = if quick { (6, 1, 12) } else { (1000, 3, 200) };
    let alt_reps = reps_arg.unwrap_or(alt_reps);
    // `--nulls-only DAYS`: just the null scenarios, 1,000 replicates × DAYS each (a longer
    // exposure tightens the upper bound of each scenario on its own).
    let nulls_only = args
        .iter()
        .position(|a| a == "--nulls-only")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok());
    let null_days = nulls_only.unwrap_or(null_days);
    let results_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results");
    let _ = std::fs::create_dir_all(results_dir);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Detection (monitor of the daemon; 50 probes × {PER_ROUND} samples per 10-minute \
         round = 900 samples/h; false_alarm_interval {FALSE_ALARM_DAYS} d; default margins)\n"
    );

    // Nulls.
    let _ = writeln!(
        md,
        "### False alarms: P(any alarm within 30 days), exponential extrapolation\n\n\
         | scenario | replicates × horizon | alarms | exposure (target-days) | P30 point | P30 95 % upper |\n|---|---|---|---|---|---|"
    );
    let mut nulls_json = Vec::new();
    let nulls = if only.is_some() {
        Vec::new()
    } else {
        vec![Null::NoChange, Null::LatencyOnly, Null::FreshBaselineDaily]
    };
    // `DETECTION_NULLS=fresh` (a substring of the scenario name): only the matching nulls.
    let nulls: Vec<Null> = match std::env::var("DETECTION_NULLS") {
        Ok(f) => nulls
            .into_iter()
            .filter(|n| n.name().contains(f.as_str()))
            .collect(),
        Err(_) => nulls,
    };
    for kind in nulls {
        let t0 = Instant::now();
        let r = run_null(kind, null_reps, null_days, threads);
        eprintln!("null {:?}: {:.1}s", kind, t0.elapsed().as_secs_f64());
        let _ = writeln!(
            md,
            "| {} | {} × {} d | {} | {:.0} | {:.2} % | {:.2} % |",
            r.kind.name(),
            r.replicates,
            r.days,
            r.alarms,
            r.exposure_days,
            r.p30_point * 100.0,
            r.p30_upper * 100.0
        );
        nulls_json.push(json!({
            "scenario": r.kind.name(), "replicates": r.replicates, "horizon_days": r.days,
            "alarms": r.alarms, "exposure_days": r.exposure_days,
            "p30_point": r.p30_point, "p30_upper95": r.p30_upper,
        }));
    }
    if nulls_only.is_some() {
        print!("{md}");
        let _ = std::fs::write(format!("{results_dir}/detection_nulls.md"), &md);
        eprintln!("total {:.0}s", started.elapsed().as_secs_f64());
        return;
    }

    // Alternatives.
    let base = Rates {
        refusal: 0.02,
        task_failure: 0.10,
        cap_z: CAP_Z,
    };
    let both: Vec<(&'static str, Start)> = vec![
        ("episode start", Start::Episode),
        (
            "random round in days 0–3",
            Start::Random(3 * ROUNDS_PER_DAY),
        ),
    ];
    let after_quiet: Vec<(&'static str, Start)> =
        vec![("after 3 quiet days", Start::After(3 * ROUNDS_PER_DAY))];
    let sc = |name: &str, rates: Rates, change: Change| Scenario {
        name: name.into(),
        rates,
        change,
        starts: both.clone(),
        within: None,
    };
    let scenarios = vec![
        sc("refusal 2 % → 7 %", base, Change::Refusal(0.05)),
        sc(
            "refusal 5 % → 10 %",
            Rates {
                refusal: 0.05,
                ..base
            },
            Change::Refusal(0.05),
        ),
        sc("task failure 10 % → 20 %", base, Change::TaskFailure(0.10)),
        Scenario {
            within: Some((ROUNDS_PER_DAY, "24 h")),
            ..sc(
                "10 % of probes (one per suite): task failure +50 points (pooled 10 % → 15 %)",
                base,
                Change::FewProbes,
            )
        },
        Scenario {
            within: Some((ROUNDS_PER_DAY, "24 h")),
            ..sc(
                "10 % of probes (the first 5, one suite): task failure +50 points (pooled 10 % → 15 %)",
                base,
                Change::FirstProbes,
            )
        },
        Scenario {
            within: Some((ROUNDS_PER_DAY / 4, "6 h")),
            ..sc(
                "one suite's structured failures 3 % → 20 % (5 of 10 JSON probes; others unchanged)",
                base,
                Change::OneSuiteStructured,
            )
        },
        sc("length ×1.15", base, Change::Length(1.15)),
        sc("length ×1.3", base, Change::Length(1.3)),
        sc(
            "length bimodal: half ×1.5, half ÷1.5 (median unchanged)",
            base,
            Change::Bimodal(1.5),
        ),
        sc(
            "length bimodal: half ×2, half ÷2 (median unchanged)",
            base,
            Change::Bimodal(2.0),
        ),
        sc(
            "length bimodal ×1.5 / ÷1.5, max-token cap raised ×1.5 (truncation does not rise)",
            base,
            Change::BimodalUncapped(1.5),
        ),
        sc(
            "length bimodal ×2 / ÷2, max-token cap raised ×2 (truncation does not rise)",
            base,
            Change::BimodalUncapped(2.0),
        ),
        sc(
            "truncation at max tokens (1 % → 15 % cut off)",
            base,
            Change::Truncation,
        ),
        Scenario {
            starts: after_quiet.clone(),
            within: Some((3, "3 rounds")),
            ..sc(
                "truncation 70 % → 100 %",
                Rates {
                    cap_z: TIGHT_CAP_Z,
                    ..base
                },
                Change::TruncateAll,
            )
        },
        Scenario {
            starts: after_quiet.clone(),
            within: Some((3, "3 rounds")),
            ..sc("refusal 2 % → 20 %", base, Change::Refusal(0.18))
        },
        sc(
            "slow ramp: refusal 2 % → 7 % over 2 days",
            base,
            Change::Ramp {
                delta: 0.05,
                rounds: 2 * ROUNDS_PER_DAY,
            },
        ),
    ];
    let cap_rounds = 7 * ROUNDS_PER_DAY;
    let _ = writeln!(
        md,
        "\n### Alternatives: delay from the change to the first alarm (cap {} days; misses count as +∞)\n\n\
         | change | changed at | median delay (samples / h) | p90 (samples / h) | miss | caught within | first alarm (metric: streams) | alarm before change | p0 → p (median) | Wald ln(K/α)/KL | delay / Wald | delay / Wald in whole rounds | Lorden ln(c)/KL | delay / Lorden |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        cap_rounds / ROUNDS_PER_DAY
    );
    let mut alts_json = Vec::new();
    for sc in &scenarios {
        if only.as_ref().is_some_and(|o| !sc.name.contains(o.as_str())) {
            continue;
        }
        for &start in &sc.starts {
            let t0 = Instant::now();
            let r = run_alt(sc, alt_reps, start, cap_rounds, threads);
            eprintln!(
                "alt {} / {}: {:.1}s",
                sc.name,
                start.0,
                t0.elapsed().as_secs_f64()
            );
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} % | {} | {} | {:.1} % | {} | {} | {} | {} | {} | {} |",
                r.name,
                r.start,
                fmt_opt(r.median, |x| format!("{x:.0} / {:.1} h", hours(x))),
                fmt_opt(r.p90, |x| format!("{x:.0} / {:.1} h", hours(x))),
                r.miss * 100.0,
                r.within.map_or("—".into(), |(n, label)| format!(
                    "{:.1} % ({n}/{}) ≤ {label}",
                    n as f64 * 100.0 / r.replicates as f64,
                    r.replicates
                )),
                r.metrics
                    .iter()
                    .take(2)
                    .map(|(m, n)| format!("{m}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.early * 100.0,
                match (r.p0, r.p_true) {
                    (Some(a), Some(b)) if r.inside_null > 0 && r.wald.is_some() => format!(
                        "{:.1} % → {:.1} % ({} inside the null)",
                        a * 100.0,
                        b * 100.0,
                        r.inside_null
                    ),
                    (Some(a), Some(b)) => format!("{:.1} % → {:.1} %", a * 100.0, b * 100.0),
                    _ => "—".into(),
                },
                fmt_opt(r.wald, |x| format!("{x:.0}")),
                fmt_opt(r.ratio_wald, |x| format!("{x:.2}")),
                fmt_opt(r.ratio_wald_rounds, |x| format!("{x:.2}")),
                fmt_opt(r.lorden, |x| format!("{x:.0}")),
                fmt_opt(r.ratio_lorden, |x| format!("{x:.2}")),
            );
            alts_json.push(json!({
                "scenario": r.name, "changed_at": r.start, "replicates": r.replicates,
                "cap_days": r.cap_days, "median_delay_samples": r.median, "p90_delay_samples": r.p90,
                "miss_rate": r.miss, "alarm_before_change": r.early, "p0_median": r.p0,
                "p_true_median": r.p_true, "wald_same_hypotheses": r.wald,
                "median_delay_over_wald": r.ratio_wald,
                "median_delay_over_wald_whole_rounds": r.ratio_wald_rounds, "lorden_same_hypotheses": r.lorden,
                "median_delay_over_lorden": r.ratio_lorden,
                "caught_within": r.within.map(|(n, label)| json!({"window": label, "caught": n})),
                "first_alarm_metrics": r.metrics.iter().map(|(m, n)| json!({"metric": m, "streams": n})).collect::<Vec<_>>(),
                "streams_inside_null": r.inside_null,
            }));
        }
    }

    // Against the published floors (p0 = the pre-change rate, alpha 0.01, beta 0.05).
    let floors: serde_json::Value =
        serde_json::from_str(include_str!("data/detection_floors.json"))
            .expect("benches/data/detection_floors.json parses");
    let _ = writeln!(
        md,
        "\n### Against the reference floors (`benches/data/detection_floors.json`: SPRT of the \
         pre-change rate against the changed rate, α = 0.01, β = 0.05)\n\n\
         | change | floor E₁[N] (Wald) | monitor median delay, episode start | ratio |\n|---|---|---|---|"
    );
    for (floor_name, ours) in [
        ("refusal 2%->7%", "refusal 2 % → 7 %"),
        ("refusal 5%->10%", "refusal 5 % → 10 %"),
        (
            "task failure 10%->20% (success 90%->80%)",
            "task failure 10 % → 20 %",
        ),
    ] {
        let floor = floors["sprt"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == floor_name))
            .and_then(|e| e["E1N_wald"].as_f64());
        let delay = alts_json
            .iter()
            .find(|a| a["scenario"] == ours && a["changed_at"] == "episode start")
            .and_then(|a| a["median_delay_samples"].as_f64());
        let _ = writeln!(
            md,
            "| {ours} | {} | {} | {} |",
            fmt_opt(floor, |x| format!("{x:.0}")),
            fmt_opt(delay, |x| format!("{x:.0}")),
            match (delay, floor) {
                (Some(d), Some(f)) => format!("{:.1}", d / f),
                _ => "—".into(),
            }
        );
    }

    // Effect-size sweep for the plot (refusal from 2 %, change at episode start).
    let mut points = Vec::new();
    let sweep_reps = if quick { 8 } else { 100 };
    if only.is_some() {
        print!("{md}");
        return;
    }
    for effect in [0.03, 0.04, 0.05, 0.07, 0.10, 0.15] {
        let sc = Scenario {
            name: format!("refusal +{:.0} points", effect * 100.0),
            rates: base,
            change: Change::Refusal(effect),
            starts: Vec::new(),
            within: None,
        };
        let r = run_alt(
            &sc,
            sweep_reps,
            ("episode start", Start::Episode),
            cap_rounds,
            threads,
        );
        points.push((effect * 100.0, r.median, r.wald, r.lorden));
    }
    let plot = svg(&points, base.refusal);
    let svg_name = if quick {
        "detection_delay-quick.svg"
    } else {
        "detection_delay.svg"
    };
    let _ = std::fs::write(format!("{results_dir}/{svg_name}"), plot);
    let _ = writeln!(
        md,
        "\n### Effect-size sweep (refusal from 2 %, change at episode start, {sweep_reps} replicates)\n\n\
         | effect (points) | median delay | Wald | Lorden |\n|---|---|---|---|"
    );
    for (e, m, w, l) in &points {
        let _ = writeln!(
            md,
            "| +{e:.0} | {} | {} | {} |",
            fmt_opt(*m, |x| format!("{x:.0}")),
            fmt_opt(*w, |x| format!("{x:.0}")),
            fmt_opt(*l, |x| format!("{x:.0}"))
        );
    }
    let _ = writeln!(
        md,
        "\n(wall time {:.0} s, {threads} threads{})",
        started.elapsed().as_secs_f64(),
        if quick { ", --quick" } else { "" }
    );
    print!("{md}");
    let doc = json!({
        "quick": quick, "nulls": nulls_json, "alternatives": alts_json,
        "sweep": points.iter().map(|(e, m, w, l)| json!({"effect_points": e, "median_delay": m, "wald": w, "lorden": l})).collect::<Vec<_>>(),
    });
    let name = if quick {
        "detection-quick"
    } else {
        "detection"
    };
    let _ = std::fs::write(
        format!("{results_dir}/{name}.json"),
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    );
    let _ = std::fs::write(format!("{results_dir}/{name}.md"), md);
}
