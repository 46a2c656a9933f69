//! `modelwatch canary`: before a swap, the candidate against the current model on the same
//! probes, paired and interleaved (or against a stored baseline), one verdict and an exit code.

mod evidence;
mod plan;
mod sim;
mod watch;

use super::baseline::{Output, file_label};
use super::progress::Progress;
use super::{EXIT_REGRESSION, EXIT_USAGE, live};
use modelwatch::baseline::Baseline;
use modelwatch::config::{Loaded, Target};
use modelwatch::drift::{
    self, CanaryMonitor, Category, Early, Expectations, Margins, ProbeRegression, Report, Verdict,
};
use modelwatch::probe::Probe;
use modelwatch::report;
use modelwatch::runner::paired::{self, Flow, PairedOptions};
use modelwatch::runner::{SystemClock, setup};
use modelwatch::sample::{Completion, Sample};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use watch::Watch;

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("reference")
        .required(true)
        .args(["current", "baseline", "sim"])
))]
pub struct Args {
    /// The target serving the current model.
    #[arg(long, value_name = "NAME")]
    pub current: Option<String>,
    /// The target serving the candidate model.
    #[arg(long, value_name = "NAME", required_unless_present = "sim")]
    pub candidate: Option<String>,
    /// Ignore the configuration: start two built-in simulators (a healthy current model and
    /// the candidate of --sim-candidate) and run the canary between them on the starter probes.
    #[arg(long, conflicts_with_all = ["current", "candidate", "baseline"])]
    pub sim: bool,
    /// With --sim: the candidate's simulator profile, a TOML file or a built-in name
    /// (`healthy`, `degraded`, `reworded`, `raw`). Default: healthy. `--sim-profile` as in `run`.
    #[arg(
        long,
        visible_alias = "sim-profile",
        value_name = "PROFILE",
        requires = "sim"
    )]
    pub sim_candidate: Option<PathBuf>,
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
    /// Print the plan (pairs and time to a pass for an unchanged candidate, to a regression for
    /// a change at the margin) from a few measured requests, then exit.
    #[arg(long, conflicts_with = "baseline")]
    pub plan: bool,
    /// Margin preset for this run (overrides `[margins]`' rate and length margins).
    #[arg(long, value_enum, value_name = "PRESET")]
    pub sensitivity: Option<modelwatch::config::Sensitivity>,
    /// Send no seed for probes without their own: each side samples freely.
    #[arg(long, conflicts_with = "pair_seed")]
    pub no_seed_pairing: bool,
    #[command(flatten)]
    pub out: Output,
}

/// The default base seed of a paired canary (any fixed value: it only has to be the same on
/// both sides).
pub const DEFAULT_PAIR_SEED: u64 = setup::PAIR_SEED;
/// Samples per probe on each side of a fixed-sample canary, and the least a sequential one
/// takes before it may stop. (A baseline records more: its rates are the daemon's nulls.)
pub const DEFAULT_SAMPLES: u32 = 20;

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    live::runtime()?.block_on(run(args, global))
}

async fn run(mut args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    // Keeps the simulators and their scratch folder alive for the whole canary.
    let mut _sim_guard = None;
    let mut loaded = if args.sim {
        let (loaded, guard) = sim::setup(args.sim_candidate.as_deref(), 1)?;
        _sim_guard = Some(guard);
        args.current = Some("sim-current".into());
        args.candidate = Some("sim-candidate".into());
        loaded
    } else {
        match live::load(global) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        }
    };
    if let Some(preset) = args.sensitivity {
        preset.apply(&mut loaded.config.margins);
    }
    let candidate = live::target(&loaded, args.candidate.as_deref().unwrap_or_default())?;
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
            match paired_canary(&loaded, current, candidate, &args).await? {
                Ok(report) => report,
                Err(code) => return Ok(code),
            }
        }
        (None, Some(path)) => against_baseline(&loaded, candidate, path, &args).await?,
        _ => anyhow::bail!("pass either --current NAME or --baseline FILE"),
    };
    warn_unmeasured(&report);
    args.out
        .emit(&report::render(&report, args.out.format, args.out.color()))?;
    Ok(ExitCode::from(report.exit_code))
}

/// The probes as a target runs them: that target's generation parameters under each probe's
/// own, and the pair seed where a probe has no seed of its own.
fn as_run_by(probes: &[&Probe], target: &Target, pair_seed: Option<u64>) -> Vec<Arc<Probe>> {
    let own = probes
        .iter()
        .map(|probe| {
            let mut p = (*probe).clone();
            p.params = target.params_for(&probe.params);
            Arc::new(p)
        })
        .collect();
    setup::with_pair_seed(own, pair_seed)
}

/// The report, or an exit code when the run ends before sampling (`--plan`, a budget that
/// cannot pass).
async fn paired_canary(
    loaded: &Loaded,
    current: &Target,
    candidate: &Target,
    args: &Args,
) -> anyhow::Result<Result<Report, ExitCode>> {
    let suites = live::suites(loaded, current);
    warn_suite_mismatch(current, candidate);
    let raw: Vec<&Probe> = suites.iter().flat_map(|s| &s.probes).collect();
    if raw.is_empty() {
        anyhow::bail!("target '{}' has no probes to compare", current.name);
    }
    let pair_seed = (!args.no_seed_pairing).then_some(args.pair_seed);
    let n = raw.len();
    let margins = &loaded.config.margins;
    let kinds: Vec<plan::ProbeKind> = raw.iter().map(|p| plan::ProbeKind::of(p)).collect();
    let ahead = plan::Plan::new(
        &kinds,
        margins,
        CanaryMonitor::with_probes(margins, n).regression_alpha(),
    );
    let concurrency = current.max_concurrency.min(candidate.max_concurrency) as usize;
    let (sequential, per_probe) = match budget(args, &ahead, n, concurrency) {
        Ok(b) => b,
        Err(code) => return Ok(Err(code)),
    };
    let plan = paired::plan_pairs(n, per_probe);

    let judge = live::Judge::new(loaded)?;
    // Probes still worth sampling: a sequential canary drops those whose metrics settled.
    let active: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(true)).collect());
    let sides = Sides {
        current: setup::build_client(current)?,
        candidate: setup::build_client(candidate)?,
        current_probes: as_run_by(&raw, current, pair_seed),
        candidate_probes: as_run_by(&raw, candidate, pair_seed),
        options: PairedOptions {
            current: current.name.clone(),
            candidate: candidate.name.clone(),
            concurrency,
            stream_current: current.stream,
            stream_candidate: candidate.stream,
            keep_text: true,
            active: sequential.then(|| Arc::clone(&active)),
        },
        judge: &judge,
    };
    if args.plan {
        // A few pairs of the first slot measure the time a pair takes at this concurrency.
        let first: Vec<paired::PairItem> = paired::plan_pairs(n, 1)
            .into_iter()
            .take((2 * concurrency).max(4).min(n))
            .collect();
        let out = sides.run(&first, &mut |_, _| Flow::Continue).await;
        let per_pair = seconds_per_pair(&out, concurrency);
        if per_pair.is_none() {
            eprintln!("plan: the time per pair could not be measured: no pair was answered");
        }
        for line in plan_lines(&ahead, n, concurrency, per_pair) {
            println!("{line}");
        }
        return Ok(Err(ExitCode::SUCCESS));
    }
    let expect = Expectations::from_suites(&suites);
    let progress = Progress::new(
        format!("canary {} vs {}", current.name, candidate.name),
        plan.len(),
    );
    let ahead_ref = &ahead;
    let mut watch = Watch::new(
        CanaryMonitor::with_probes(margins, n),
        margins,
        sequential,
        args.samples.unwrap_or(1),
        raw.iter()
            .map(|p| (p.suite.clone(), p.id.clone()))
            .collect(),
        Arc::clone(&active),
        &expect,
        &progress,
        Box::new(move |per_pair| {
            for line in plan_lines(ahead_ref, n, concurrency, Some(per_pair)) {
                eprintln!("canary: after the first slot: {line}");
            }
        }),
    );
    let mut on_pair = |a: &Sample, b: &Sample| watch.on_pair(a, b);
    let out = sides.run(&plan, &mut on_pair).await;
    watch.finish(out.stopped_early);
    progress.finish(&format!("{} pairs", out.pairs));

    store_sides(loaded, current, candidate, &out)?;

    let report = canary_report(
        &watch,
        &out,
        margins,
        per_probe,
        pair_seed.is_some(),
        (&current.name, &candidate.name),
    );
    Ok(Ok(report))
}

/// The canary's report over the pairs the monitor saw. A sequential canary's report is one
/// more look at the lengths (or the one that passed them), at that look's share of the miss
/// chance.
fn canary_report(
    watch: &Watch<'_>,
    out: &paired::PairedOutcome,
    margins: &Margins,
    per_probe: u32,
    seeded: bool,
    (current, candidate): (&str, &str),
) -> Report {
    let judged = if watch.sequential {
        Margins {
            confidence: watch
                .lengths
                .final_confidence(margins.confidence, watch.lengths_passed),
            ..margins.clone()
        }
    } else {
        margins.clone()
    };
    let used = watch.consumed().min(out.pairs);
    let mut report = drift::compare_paired(
        &out.current.samples[..used],
        &out.candidate.samples[..used],
        &judged,
        watch.expect,
    )
    .with_labels(current, candidate);
    if watch.sequential {
        annotate_sequential(
            &mut report,
            &watch.monitor,
            &watch.decision,
            (out, used),
            per_probe,
        );
        let at = report.reasons.len().min(2);
        report.reasons.insert(
            at,
            evidence::length_looks(&watch.lengths, watch.lengths_passed, margins.confidence),
        );
    }
    let pairing = watch.agreement.describe(seeded);
    eprintln!("canary: {pairing}");
    report.reasons.push(pairing);
    report
}

/// Stores both sides' samples as one round each.
fn store_sides(
    loaded: &Loaded,
    current: &Target,
    candidate: &Target,
    out: &paired::PairedOutcome,
) -> anyhow::Result<()> {
    let mut store = live::open_store(loaded)?;
    for (name, outcome) in [
        (&current.name, &out.current),
        (&candidate.name, &out.candidate),
    ] {
        if let Err(e) = super::run::store_round(&mut store, name, outcome, &SystemClock) {
            eprintln!("warning: the canary samples of {name} could not be stored: {e:#}");
        }
    }
    Ok(())
}

/// Both sides of a paired canary, ready to run a plan.
struct Sides<'a> {
    current: Arc<dyn modelwatch::provider::ModelClient>,
    candidate: Arc<dyn modelwatch::provider::ModelClient>,
    current_probes: Vec<Arc<Probe>>,
    candidate_probes: Vec<Arc<Probe>>,
    options: PairedOptions,
    judge: &'a live::Judge,
}

impl Sides<'_> {
    async fn run(
        &self,
        plan: &[paired::PairItem],
        on_pair: &mut (dyn FnMut(&Sample, &Sample) -> Flow + Send),
    ) -> paired::PairedOutcome {
        let evaluate = |p: &Probe, c: &Completion| self.judge.evaluate(p, c);
        paired::run_paired(
            self.current.as_ref(),
            self.candidate.as_ref(),
            &self.current_probes,
            &self.candidate_probes,
            plan,
            &self.options,
            &evaluate,
            &SystemClock,
            on_pair,
        )
        .await
    }
}

/// Sequential or fixed, and samples per probe: `--max-samples`, else `--samples` (fixed), else
/// what the plan says an unchanged candidate needs. Prints the plan of a sequential run and
/// refuses a budget too small to ever pass.
fn budget(
    args: &Args,
    ahead: &plan::Plan,
    n: usize,
    concurrency: usize,
) -> Result<(bool, u32), ExitCode> {
    let (sequential, per_probe) = match (args.max_samples, args.samples) {
        (Some(m), _) => (true, m),
        (None, Some(fixed)) => (false, fixed),
        // Twice what an unchanged candidate is expected to need when the answers are not
        // identical: the expected path is typical, not a bound, and a run that needs more
        // should still reach a verdict (the canary stops at the first decisive look anyway).
        (None, None) => (
            true,
            ahead
                .pass_independent()
                .map_or(plan::MAX_SLOTS, |(e, _)| {
                    e.slots.saturating_mul(2).min(plan::MAX_SLOTS)
                })
                .max(DEFAULT_SAMPLES),
        ),
    };
    if !sequential || args.plan {
        return Ok((sequential, per_probe));
    }
    for line in plan_lines(ahead, n, concurrency, None) {
        eprintln!("{line}");
    }
    if let Some((need, metric)) = ahead.pass_identical()
        && per_probe < need.slots
    {
        eprintln!(
            "error: --max-samples {per_probe} is too small to ever pass: even identical answers \
             need {} samples per probe to pass ({} within its margin of {:.1} points, and {} \
             pairs in every suite for the lengths' first look); raise --max-samples or choose a \
             coarser --sensitivity",
            need.slots,
            metric.id(),
            100.0 * ahead.margin(metric).unwrap_or(f64::NAN),
            ahead.first_look()
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    Ok((sequential, per_probe))
}

/// Warns when the two targets list different suites (both run the current one's).
fn warn_suite_mismatch(current: &Target, candidate: &Target) {
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
}

/// The median answered pair's time over the concurrency (a pair's two requests are sent at
/// once, so a pair takes as long as its slower side; `concurrency` pairs at once).
fn seconds_per_pair(out: &paired::PairedOutcome, concurrency: usize) -> Option<f64> {
    let mut answered: Vec<f64> = out
        .current
        .samples
        .iter()
        .zip(&out.candidate.samples)
        .filter(|(a, b)| !a.is_error() && !b.is_error())
        .map(|(a, b)| a.latency_ms.max(b.latency_ms) / 1000.0)
        .collect();
    answered.sort_by(f64::total_cmp);
    (!answered.is_empty()).then(|| answered[answered.len() / 2] / concurrency.max(1) as f64)
}

/// The sequential canary's part of the report: e-values, the early decision, how far it went,
/// the design's error rates and each metric's confidence sequence. `used`: the pairs the
/// monitor judged (a pair answered after its decision is stored, not counted).
fn annotate_sequential(
    report: &mut Report,
    monitor: &CanaryMonitor,
    decision: &Early,
    (out, used): (&paired::PairedOutcome, usize),
    per_probe: u32,
) {
    for m in &mut report.metrics {
        if let Some(e) = monitor.e_value(m.metric) {
            m.e_value = Some(e);
        }
    }
    let probes = monitor.probe_regressions();
    let thresholds = (monitor.threshold(), monitor.probe_alpha().map(|a| 1.0 / a));
    apply_early(report, decision, &probes, thresholds);
    let per_probe_used = out.current.samples[..used]
        .iter()
        .map(|s| s.index + 1)
        .max()
        .unwrap_or(0);
    let used =
        format!("{used} pairs (up to {per_probe_used} of at most {per_probe} samples per probe)");
    let note = match decision {
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
        evidence::error_rates(monitor),
    ];
    head.extend(evidence::sequences(monitor));
    report.reasons.splice(0..0, head);
}

/// The plan as printed at the start of a canary (and by `--plan`).
fn plan_lines(
    ahead: &plan::Plan,
    probes: usize,
    concurrency: usize,
    per_pair: Option<f64>,
) -> Vec<String> {
    let timing = match per_pair {
        Some(s) => format!("{:.0} ms per pair measured at this concurrency", 1000.0 * s),
        None => "time per pair measured after the first slot".to_string(),
    };
    vec![
        format!("plan: {probes} probes, {concurrency} pairs at once, {timing}"),
        format!(
            "plan: unchanged candidate, identical answers (seed pairing effective): pass after {}",
            plan::describe(ahead.pass_identical(), per_pair)
        ),
        format!(
            "plan: unchanged candidate, independent answers: pass after {}",
            plan::describe(ahead.pass_independent(), per_pair)
        ),
        format!(
            "plan: a change of one margin: regression after {} (identical answers elsewhere), {} \
             (independent answers)",
            plan::describe(ahead.regression_at_margin(true), per_pair),
            plan::describe(ahead.regression_at_margin(false), per_pair)
        ),
    ]
}

/// Applies an anytime-valid early decision of the canary to the fixed-sample report (whose
/// p-values are not corrected for stopping when the evidence looked decisive). Only when both
/// sides were measured well enough to judge at all.
/// `thresholds`: the e-value a pooled metric needs for a regression, and a single probe's.
fn apply_early(
    report: &mut Report,
    decision: &Early,
    probes: &[ProbeRegression],
    thresholds: (f64, Option<f64>),
) {
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
                        "regression (anytime-valid, {}): {}",
                        modelwatch::report::evidence(
                            m.e_value.unwrap_or(f64::NAN),
                            Some(thresholds.0)
                        ),
                        drift::describe(m)
                    ));
                }
            }
            reasons.extend(evidence::probe_lines(probes, thresholds.1));
            if report.verdict != Verdict::Regression {
                report.reasons = with_warnings(&report.reasons, reasons);
            } else {
                report
                    .reasons
                    .extend(evidence::probe_lines(probes, thresholds.1));
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
                let pass = format!(
                    "all {} quality metrics are within their margins (rates by the \
                     anytime-valid confidence sequence)",
                    deciding.len()
                );
                report.reasons = with_warnings(&report.reasons, vec![pass]);
            }
        }
    }
}

/// `reasons`, followed by the `warning:` lines of `old` (a change of served behaviour, say):
/// the sequential decision replaces the fixed-sample reasons, never the warnings beside them.
fn with_warnings(old: &[String], mut reasons: Vec<String>) -> Vec<String> {
    reasons.extend(old.iter().filter(|r| r.starts_with("warning: ")).cloned());
    reasons
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
    let seeded = (!args.no_seed_pairing).then_some(args.pair_seed);
    let probes: Vec<Arc<Probe>> =
        setup::with_pair_seed(setup::target_probes(loaded, candidate, &[]), seeded)
            .into_iter()
            .filter(|p| baseline.unchanged(p))
            .collect();
    if probes.is_empty() {
        anyhow::bail!(
            "no probe of target '{}' is in {} with the same content; record a new baseline",
            candidate.name,
            path.display()
        );
    }
    let samples = args.samples.unwrap_or(DEFAULT_SAMPLES);
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
    // Paired by seed when the baseline was recorded with the same seeds (see `compare`).
    let (report, pairing) = super::compare::against(
        &baseline.comparable_samples(&compat),
        &rec.samples(),
        &loaded.config.margins,
        &expect,
    );
    let mut report = report.with_labels(&file_label(path), &candidate.name);
    eprintln!("canary: {pairing}");
    report.reasons.push(pairing);
    Ok(report)
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
mod tests;
