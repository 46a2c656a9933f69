//! `modelwatch canary`: before a swap, the candidate against the current model on the same
//! probes, paired and interleaved (or against a stored baseline), one verdict and an exit code.

mod evidence;

use super::baseline::{Output, file_label};
use super::progress::Progress;
use super::{EXIT_REGRESSION, EXIT_USAGE, live};
use evidence::Agreement;
use modelwatch::baseline::{self, Baseline};
use modelwatch::config::{Loaded, Target};
use modelwatch::drift::{
    self, CanaryMonitor, Category, Early, Expectations, ProbeRegression, Report, Verdict,
};
use modelwatch::probe::Probe;
use modelwatch::report;
use modelwatch::runner::paired::{self, Flow, PairedOptions};
use modelwatch::runner::{SystemClock, setup};
use modelwatch::sample::{Completion, Sample};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("reference").required(true).args(["current", "baseline"])))]
pub struct Args {
    /// The target serving the current model.
    #[arg(long, value_name = "NAME")]
    pub current: Option<String>,
    /// The target serving the candidate model.
    #[arg(long, value_name = "NAME")]
    pub candidate: String,
    /// Compare the candidate with this stored baseline instead of a live current model.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["current", "max_samples"])]
    pub baseline: Option<PathBuf>,
    /// Samples per probe on each side (default 20). With --max-samples: the minimum per probe
    /// before stopping early.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: Option<u32>,
    /// Sample up to M per probe, stopping as soon as the anytime-valid evidence is decisive
    /// (a regression shown, or non-inferiority shown).
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_samples: Option<u32>,
    /// Seed both sides' requests alike (seed + sample index, for probes without their own
    /// seed), so that identical models on servers that honour `seed` give identical pairs.
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_PAIR_SEED)]
    pub pair_seed: u64,
    /// Send no seed for probes without their own: each side samples freely.
    #[arg(long, conflicts_with = "pair_seed")]
    pub no_seed_pairing: bool,
    #[command(flatten)]
    pub out: Output,
}

/// The default base seed of a paired canary (any fixed value: it only has to be the same on
/// both sides).
pub const DEFAULT_PAIR_SEED: u64 = 20_240_601;

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    live::runtime()?.block_on(run(args, global))
}

async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let candidate = live::target(&loaded, &args.candidate)?;
    let report = match (&args.current, &args.baseline) {
        (Some(current), None) => {
            let current = live::target(&loaded, current)?;
            if current.name == candidate.name {
                eprintln!("error: --current and --candidate name the same target");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            if let (Some(min), Some(max)) = (args.samples, args.max_samples)
                && min > max
            {
                eprintln!("error: --samples {min} is more than --max-samples {max}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            paired_canary(&loaded, current, candidate, &args).await?
        }
        (None, Some(path)) => against_baseline(&loaded, candidate, path, &args).await?,
        _ => anyhow::bail!("pass either --current NAME or --baseline FILE"),
    };
    warn_unmeasured(&report);
    args.out
        .emit(&report::render(&report, args.out.format, args.out.color()))?;
    Ok(ExitCode::from(report.exit_code))
}

/// A probe as a target runs it: that target's generation parameters under the probe's own.
fn as_run_by(probe: &Probe, target: &Target, pair_seed: Option<u64>) -> Arc<Probe> {
    let mut p = probe.clone();
    p.params = target.params_for(&probe.params);
    if p.params.seed.is_none() {
        p.params.seed = pair_seed;
    }
    Arc::new(p)
}

async fn paired_canary(
    loaded: &Loaded,
    current: &Target,
    candidate: &Target,
    args: &Args,
) -> anyhow::Result<Report> {
    let suites = live::suites(loaded, current);
    let cand_suites: Vec<&std::path::Path> =
        candidate.suites.iter().map(|s| s.path.as_path()).collect();
    if current
        .suites
        .iter()
        .map(|s| s.path.as_path())
        .ne(cand_suites)
    {
        eprintln!(
            "warning: targets {} and {} list different suites; both run the suites of {}",
            current.name, candidate.name, current.name
        );
    }
    let raw: Vec<&Probe> = suites.iter().flat_map(|s| &s.probes).collect();
    if raw.is_empty() {
        anyhow::bail!("target '{}' has no probes to compare", current.name);
    }
    let pair_seed = (!args.no_seed_pairing).then_some(args.pair_seed);
    let cur_probes: Vec<Arc<Probe>> = raw
        .iter()
        .map(|p| as_run_by(p, current, pair_seed))
        .collect();
    let cand_probes: Vec<Arc<Probe>> = raw
        .iter()
        .map(|p| as_run_by(p, candidate, pair_seed))
        .collect();
    let n = raw.len();
    let (sequential, per_probe) = match args.max_samples {
        Some(m) => (true, m),
        None => (
            false,
            args.samples.unwrap_or(baseline::DEFAULT_SAMPLES_PER_PROBE),
        ),
    };
    let min_slots = args.samples.unwrap_or(1);
    let plan = paired::plan_pairs(n, per_probe);

    let judge = live::Judge::new(loaded)?;
    let (cur_client, cand_client) = (
        setup::build_client(current)?,
        setup::build_client(candidate)?,
    );
    // Probes still worth sampling: a sequential canary drops those whose metrics settled.
    let active: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(true)).collect());
    let options = PairedOptions {
        current: current.name.clone(),
        candidate: candidate.name.clone(),
        concurrency: current.max_concurrency.min(candidate.max_concurrency) as usize,
        stream_current: current.stream,
        stream_candidate: candidate.stream,
        keep_text: true,
        active: sequential.then(|| Arc::clone(&active)),
    };
    let margins = &loaded.config.margins;
    let expect = Expectations::from_suites(&suites);
    let mut monitor = CanaryMonitor::with_probes(margins, n);
    let mut agreement = Agreement::default();
    let mut decision = Early::Continue;
    let progress = Progress::new(
        format!("canary {} vs {}", current.name, candidate.name),
        plan.len(),
    );
    let (mut done, mut failed_cur, mut failed_cand) = (0usize, 0usize, 0usize);
    let mut slot = 0u32;
    let mut on_pair = |a: &Sample, b: &Sample| {
        // The first pair of a new slot closes the previous one: look there, where the pooled
        // evidence is valid (see drift::sequential), then drop probes no longer needed.
        if sequential && a.index != slot {
            let completed = slot + 1;
            slot = a.index;
            if completed >= min_slots {
                decision = monitor.decision();
                if decision != Early::Continue {
                    return Flow::Stop;
                }
                for (flag, p) in active.iter().zip(&raw) {
                    if !monitor.needed(&p.suite, &p.id) {
                        flag.store(false, Ordering::Relaxed);
                    }
                }
            }
        }
        done += 1;
        failed_cur += usize::from(a.is_error());
        failed_cand += usize::from(b.is_error());
        progress.update(done);
        monitor.push(a, b, &expect);
        agreement.push(a, b);
        // A side whose every request of the first sample slot failed is unreachable: going
        // on would only collect more errors.
        if done >= n && (failed_cur == done || failed_cand == done) {
            return Flow::Stop;
        }
        Flow::Continue
    };
    let evaluate = |p: &Probe, c: &Completion| judge.evaluate(p, c);
    let clock = SystemClock;
    let out = paired::run_paired(
        cur_client.as_ref(),
        cand_client.as_ref(),
        &cur_probes,
        &cand_probes,
        &plan,
        &options,
        &evaluate,
        &clock,
        &mut on_pair,
    )
    .await;
    // The last slot has no successor to close it.
    if sequential && decision == Early::Continue && !out.stopped_early && out.pairs > 0 {
        decision = monitor.decision();
    }
    let per_probe_used = out
        .current
        .samples
        .iter()
        .map(|s| s.index + 1)
        .max()
        .unwrap_or(0);
    progress.finish(&format!(
        "{} pairs, {per_probe_used} of {per_probe} samples per probe",
        out.pairs
    ));

    let mut store = live::open_store(loaded)?;
    for (name, outcome) in [
        (&current.name, &out.current),
        (&candidate.name, &out.candidate),
    ] {
        if let Err(e) = super::run::store_round(&mut store, name, outcome, &clock) {
            eprintln!("warning: the canary samples of {name} could not be stored: {e:#}");
        }
    }

    let mut report = drift::compare_paired(
        &out.current.samples,
        &out.candidate.samples,
        margins,
        &expect,
    )
    .with_labels(&current.name, &candidate.name);
    if sequential {
        for m in &mut report.metrics {
            if let Some(e) = monitor.e_value(m.metric) {
                m.e_value = Some(e);
            }
        }
        let probes = monitor.probe_regressions();
        apply_early(&mut report, &decision, &probes);
        let used = format!(
            "{} pairs (up to {per_probe_used} of at most {per_probe} samples per probe)",
            out.pairs
        );
        let note = match &decision {
            Early::Regression(_) => format!("stopped early after {used}: regression shown"),
            Early::NonInferior => format!("stopped early after {used}: non-inferiority shown"),
            Early::Continue if out.stopped_early => {
                format!("stopped after {used}: a side could not be measured")
            }
            Early::Continue => format!(
                "used all {used} without a decisive sequential result; the fixed-sample tests \
                 decide"
            ),
        };
        eprintln!("canary: {note}");
        let mut head = vec![
            format!("sequential canary: {note}"),
            evidence::error_rates(&monitor),
        ];
        head.extend(evidence::sequences(&monitor));
        report.reasons.splice(0..0, head);
    }
    let pairing = agreement.describe(pair_seed.is_some());
    eprintln!("canary: {pairing}");
    report.reasons.push(pairing);
    Ok(report)
}

/// Applies an anytime-valid early decision of the canary to the fixed-sample report (whose
/// p-values are not corrected for stopping when the evidence looked decisive). Only when both
/// sides were measured well enough to judge at all.
fn apply_early(report: &mut Report, decision: &Early, probes: &[ProbeRegression]) {
    let limit = report.margins.max_error_rate;
    if report.availability.baseline.error_rate > limit
        || report.availability.candidate.error_rate > limit
        || report.probes.compared == 0
    {
        return;
    }
    match decision {
        Early::Continue => {}
        Early::Regression(metrics) => {
            let mut reasons = Vec::new();
            for m in report.metrics.iter_mut() {
                if metrics.contains(&m.metric) {
                    m.verdict = Verdict::Regression;
                    reasons.push(format!(
                        "regression (anytime-valid, e-value {:.0}): {}",
                        m.e_value.unwrap_or(f64::NAN),
                        drift::describe(m)
                    ));
                }
            }
            reasons.extend(evidence::probe_lines(probes));
            if report.verdict != Verdict::Regression {
                report.reasons = reasons;
            } else {
                report.reasons.extend(evidence::probe_lines(probes));
            }
            report.verdict = Verdict::Regression;
            report.exit_code = EXIT_REGRESSION;
        }
        Early::NonInferior => {
            for m in report.metrics.iter_mut() {
                if m.category == Category::Quality
                    && m.metric.is_rate()
                    && m.verdict == Verdict::Inconclusive
                {
                    m.verdict = Verdict::Pass;
                }
            }
            let gates = report.margins.performance_gates;
            let deciding: Vec<Verdict> = report
                .metrics
                .iter()
                .filter(|m| {
                    m.category == Category::Quality
                        || (gates && m.category == Category::Performance)
                })
                .map(|m| m.verdict)
                .collect();
            if report.verdict == Verdict::Inconclusive
                && deciding
                    .iter()
                    .all(|v| matches!(v, Verdict::Pass | Verdict::Improvement))
            {
                report.verdict = Verdict::Pass;
                report.exit_code = Verdict::Pass.exit_code();
                report.reasons = vec![format!(
                    "all {} quality metrics are within their margins (rates by the \
                     anytime-valid confidence sequence)",
                    deciding.len()
                )];
            }
        }
    }
}

async fn against_baseline(
    loaded: &Loaded,
    candidate: &Target,
    path: &Path,
    args: &Args,
) -> anyhow::Result<Report> {
    let baseline = Baseline::load(path)?;
    let suites = live::suites(loaded, candidate);
    let compat = baseline.check(&suites)?;
    for w in compat.warnings() {
        eprintln!("warning: {w}");
    }
    let probes: Vec<Arc<Probe>> = setup::target_probes(loaded, candidate, &[])
        .into_iter()
        .filter(|p| {
            baseline
                .probes
                .get(&p.id)
                .is_some_and(|b| b.suite == p.suite && b.hash == p.hash)
        })
        .collect();
    if probes.is_empty() {
        anyhow::bail!(
            "no probe of target '{}' is in {} with the same content; record a new baseline",
            candidate.name,
            path.display()
        );
    }
    let samples = args.samples.unwrap_or(baseline::DEFAULT_SAMPLES_PER_PROBE);
    let judge = live::Judge::new(loaded)?;
    let mut store = live::open_store(loaded)?;
    let rec = live::record(
        candidate,
        &probes,
        samples,
        &judge,
        &mut store,
        &format!("canary {}", candidate.name),
    )
    .await?;
    let mut expect = Expectations::from_suites(&suites);
    expect
        .refusal_expected
        .extend(baseline.expectations().refusal_expected);
    Ok(drift::compare_with(
        &baseline.comparable_samples(&compat),
        &rec.samples(),
        &loaded.config.margins,
        &expect,
    )
    .with_labels(&file_label(path), &candidate.name))
}

/// Says on stderr which side could not be measured and why (the report says it too, but a CI
/// log should show it without opening the report).
fn warn_unmeasured(report: &Report) {
    let limit = report.margins.max_error_rate;
    for (label, side) in [
        (&report.baseline_label, &report.availability.baseline),
        (&report.candidate_label, &report.availability.candidate),
    ] {
        if side.requests > 0 && side.error_rate > limit {
            let kinds: Vec<String> = side
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            eprintln!(
                "error: {label} could not be measured: {} of {} requests failed ({}); the \
                 verdict is inconclusive, not a quality regression — check that the server is \
                 up and reachable",
                side.errors,
                side.requests,
                kinds.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch::drift::{Margins, Metric};
    use modelwatch::sample::{ErrorKind, Measurements, SampleError};

    /// 10 probes × `per` samples; `refuses(probe, index)` decides the refusals.
    fn side(target: &str, per: u32, refuses: impl Fn(usize, u32) -> bool) -> Vec<Sample> {
        let mut out = Vec::new();
        for p in 0..10 {
            for index in 0..per {
                let refusal = refuses(p, index);
                out.push(Sample {
                    target: target.into(),
                    suite: "s".into(),
                    probe_id: format!("p{p}"),
                    probe_hash: format!("h{p}"),
                    index,
                    started_at_ms: 0,
                    latency_ms: 10.0,
                    ttft_ms: None,
                    attempts: 1,
                    finish_reason: None,
                    input_tokens: None,
                    response_model: None,
                    system_fingerprint: None,
                    measurements: Some(Measurements {
                        chars: 100 + p as u32 + index % 7,
                        words: 20,
                        lines: 1,
                        output_tokens: 25 + index % 3,
                        refusal,
                        ..Measurements::default()
                    }),
                    error: None,
                    text: None,
                });
            }
        }
        out
    }

    fn paired(cur: &[Sample], cand: &[Sample]) -> Report {
        drift::compare_paired(cur, cand, &Margins::default(), &Expectations::default())
    }

    #[test]
    fn a_sequential_regression_decides_the_report() {
        // Few pairs: the fixed-sample report alone is not sure yet.
        let cur = side("a", 2, |_, _| false);
        let cand = side("b", 2, |p, _| p < 2);
        let mut r = paired(&cur, &cand);
        assert_ne!(r.verdict, Verdict::Regression, "{:?}", r.reasons);
        apply_early(&mut r, &Early::Regression(vec![Metric::RefusalRate]), &[]);
        assert_eq!(
            (r.verdict, r.exit_code),
            (Verdict::Regression, EXIT_REGRESSION)
        );
        let m = r
            .metrics
            .iter()
            .find(|m| m.metric == Metric::RefusalRate)
            .unwrap();
        assert_eq!(m.verdict, Verdict::Regression);
        assert!(r.reasons.iter().any(|x| x.contains("anytime-valid")));
    }

    #[test]
    fn sequential_non_inferiority_passes_inconclusive_rates_only() {
        let cur = side("a", 3, |_, _| false);
        let cand = side("b", 3, |_, _| false);
        let mut r = paired(&cur, &cand);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        apply_early(&mut r, &Early::NonInferior, &[]);
        for m in r.metrics.iter().filter(|m| m.category == Category::Quality) {
            if m.metric.is_rate() {
                assert_eq!(m.verdict, Verdict::Pass, "{:?}", m.metric);
            }
        }
        // Lengths stay with the fixed-sample tests; whatever they say decides the rest.
        let lengths_pass = r
            .metrics
            .iter()
            .filter(|m| m.category == Category::Quality && !m.metric.is_rate())
            .all(|m| matches!(m.verdict, Verdict::Pass | Verdict::Improvement));
        assert_eq!(r.verdict == Verdict::Pass, lengths_pass);
    }

    #[test]
    fn an_unmeasured_side_is_never_overridden() {
        let cur = side("a", 2, |_, _| false);
        let mut cand = side("b", 2, |p, _| p < 4);
        for s in cand.iter_mut().skip(5) {
            s.measurements = None;
            s.error = Some(SampleError::new(ErrorKind::Connect, "refused"));
        }
        let mut r = paired(&cur, &cand);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        let before = r.clone();
        apply_early(&mut r, &Early::Regression(vec![Metric::RefusalRate]), &[]);
        assert_eq!(r, before);
    }
}
