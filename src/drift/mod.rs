//! The verdict engine: two sample sets in, a [`Report`] out. Pure: no I/O, no clock.
//!
//! [`compare_with`] (or [`compare`], all probes benign) tests recent or candidate samples
//! against baseline samples; [`compare_paired`] tests a candidate against the current model on
//! the same probes and sample slots (canary); [`CanaryMonitor`] decides when a running canary
//! may stop early.
//! For every metric the engine runs the right test (see `analyze`), adjusts the p-values across
//! metrics with Benjamini–Hochberg, and decides:
//! - **regression**: adjusted p < alpha *and* an effect beyond the practical margin;
//! - **improvement**: the same evidence and size in the good direction;
//! - **pass**: the confidence interval excludes a regression beyond the margin
//!   (non-inferiority);
//! - **inconclusive**: neither, with an estimate of how many more samples would settle it.
//!
//! Infrastructure errors never count as quality; above `Margins::max_error_rate` on either
//! side the overall verdict is inconclusive. See `docs/verdicts.md`.

mod analyze;
mod behaviour;
mod calls;
mod flips;
mod margins;
mod metric;
mod prepare;
mod seeds;
pub mod sequential;
mod shape;
mod strata;

pub use behaviour::stored_form;
pub use margins::Margins;
pub use metric::{BINARY, Category, DIAGNOSTIC_RATES, Metric};
pub use seeds::{MIN_PAIRED_SHARE, SeedPairs, distinct_later, pair_by_seed};
pub use sequential::{Bounds, CanaryMonitor, Early, LengthLooks, ProbeRegression};

use crate::probe::Suite;
use crate::sample::{Sample, StructuredOutcome};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the JSON report layout (see `docs/verdicts.md`).
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The decision for one metric, or overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Improvement,
    Inconclusive,
    Regression,
    /// The behaviour metric only: the served texts differ from the reference's. A warning,
    /// never an overall verdict.
    Changed,
}

impl Verdict {
    /// Process exit code: 0 pass (or improvement), 1 regression, 3 inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass | Verdict::Improvement | Verdict::Changed => 0,
            Verdict::Regression => 1,
            Verdict::Inconclusive => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Improvement => "improvement",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Regression => "regression",
            Verdict::Changed => "changed",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the two sample sets relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// Independent samples (baseline vs recent, or two stored baselines).
    Unpaired,
    /// Same probe and sample index on both sides (canary).
    Paired,
}

/// An effect size: candidate minus baseline (or its ratio), with its interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    /// `rate_difference`, `relative_risk`, `hodges_lehmann_log_ratio` or `cliffs_delta`.
    /// A metric's `effect` is the one its verdict rests on (for distributions Cliff's delta
    /// when it alone decided, else the Hodges–Lehmann shift), `secondary` the other.
    pub measure: String,
    pub estimate: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// One side of a comparison for one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// Samples the metric applies to.
    pub n: u64,
    /// Rates: samples with the outcome, the rate and its Wilson interval.
    pub events: Option<u64>,
    pub rate: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Distributions: median and 90th percentile of the raw values.
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

/// The verdict for one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    pub metric: Metric,
    pub label: String,
    pub category: Category,
    pub verdict: Verdict,
    /// `fisher_exact`, `mcnemar_exact` or `mann_whitney_u`.
    pub test: String,
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg adjusted across all metrics of the report.
    pub p_adjusted: Option<f64>,
    /// For anytime-valid (sequential) decisions.
    pub e_value: Option<f64>,
    pub effect: Effect,
    pub secondary: Option<Effect>,
    pub baseline: Side,
    pub candidate: Side,
    /// The practical margin in words.
    pub margin: String,
    /// For inconclusive: roughly how many more samples per side would settle it (none when
    /// out of reach).
    pub more_samples: Option<u64>,
    /// The effect in plain words where numbers alone do not read well (length shape,
    /// behaviour), e.g. `core: p90 length +140% (410 → 985 chars); answers under 57 chars
    /// 10% → 41%`.
    pub detail: Option<String>,
    /// Strata (suites, probes) that moved on their own, most significant first.
    pub strata: Vec<Stratum>,
}

/// A suite or probe that moved on its own within one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stratum {
    /// `suite` or `probe`.
    pub level: String,
    /// The suite name, or `suite/probe_id`.
    pub name: String,
    pub baseline_n: u64,
    pub candidate_n: u64,
    /// Rates: the stratum's rate on each side; length shape: none.
    pub baseline_rate: Option<f64>,
    pub candidate_rate: Option<f64>,
    /// The stratum's own p-value, adjusted for the strata it is tested among (see
    /// `docs/statistics.md`).
    pub p_adjusted: f64,
    /// What moved, in words.
    pub summary: String,
}

/// How a probe changed behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipKind {
    StartedRefusing,
    /// A probe that should be refused got answered.
    StoppedRefusing,
    StartedEmpty,
    BrokeJson,
    LostTaskSuccess,
    StartedTruncating,
    Longer,
    Shorter,
}

impl FlipKind {
    pub fn describe(self) -> &'static str {
        match self {
            FlipKind::StartedRefusing => "started refusing",
            FlipKind::StoppedRefusing => "stopped refusing a should-refuse prompt",
            FlipKind::StartedEmpty => "started answering empty",
            FlipKind::BrokeJson => "broke JSON",
            FlipKind::LostTaskSuccess => "started failing its task",
            FlipKind::StartedTruncating => "started truncating",
            FlipKind::Longer => "longer answers",
            FlipKind::Shorter => "shorter answers",
        }
    }
}

/// A probe that flipped, with excerpts of both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlippedProbe {
    pub suite: String,
    pub probe_id: String,
    pub kind: FlipKind,
    pub metric: Metric,
    /// The probe's rate (or median length in chars) on each side.
    pub baseline_value: f64,
    pub candidate_value: f64,
    pub baseline_n: u64,
    pub candidate_n: u64,
    /// Per-probe test, Benjamini–Hochberg adjusted across probes (rates only).
    pub p_adjusted: Option<f64>,
    pub baseline_excerpt: Option<String>,
    pub candidate_excerpt: Option<String>,
}

/// Infrastructure failures on one side: availability, never quality.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ErrorCounts {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Availability {
    pub baseline: ErrorCounts,
    pub candidate: ErrorCounts,
}

/// Which probes were compared, and which were left out and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProbeSets {
    pub compared: usize,
    /// `suite/id` sampled only on the baseline side.
    pub only_baseline: Vec<String>,
    pub only_candidate: Vec<String>,
    /// Probes whose content hash differs between the sides: never compared.
    pub changed: Vec<String>,
    /// Paired designs: measured samples without a measured partner, left out.
    pub unpaired_samples: usize,
}

/// Raw lengths (chars) of answers (refusals and empty responses set apart) per suite, for
/// distribution plots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteLengths {
    pub suite: String,
    pub baseline: Vec<f64>,
    pub candidate: Vec<f64>,
}

/// Everything a renderer needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub design: Design,
    pub baseline_label: String,
    pub candidate_label: String,
    pub verdict: Verdict,
    pub exit_code: u8,
    /// Why the overall verdict is what it is, one sentence each.
    pub reasons: Vec<String>,
    /// The behaviour metric says the served texts changed (a warning; see `behaviour`).
    pub behaviour_changed: bool,
    pub metrics: Vec<MetricResult>,
    pub flipped: Vec<FlippedProbe>,
    pub availability: Availability,
    pub probes: ProbeSets,
    pub margins: Margins,
    /// For plots only; left out of the JSON report.
    #[serde(skip)]
    pub lengths: Vec<SuiteLengths>,
}

impl Report {
    /// Names the two sides in rendered output (defaults: "baseline", "candidate").
    pub fn with_labels(mut self, baseline: &str, candidate: &str) -> Report {
        self.baseline_label = baseline.to_string();
        self.candidate_label = candidate.to_string();
        self
    }

    /// Metrics of one category, in report order.
    pub fn metrics_in(&self, category: Category) -> impl Iterator<Item = &MetricResult> {
        self.metrics.iter().filter(move |m| m.category == category)
    }
}

/// What the probes expect, beyond what each sample's measurements say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expectations {
    /// `suite/id` of probes with `expect.refusal = true`: a refusal there is correct, an
    /// answer is a miss (`missed_refusal_rate`), and they stay out of `refusal_rate`.
    pub refusal_expected: BTreeSet<String>,
    /// Margins of rate metrics for one suite (`suite`) or probe (`suite/id`), from the suite
    /// file's `margin` key, used for that stratum's own test (see `docs/probes.md`).
    pub stratum_margins: BTreeMap<String, f64>,
    /// `suite/id` of probes that declare a `seed`: sample `i` is sent with `seed + i`, so
    /// both sides' `i`-th samples can be compared word for word (replay agreement).
    pub seeded: BTreeSet<String>,
}

impl Expectations {
    /// Reads the expectations of the current suites.
    pub fn from_suites(suites: &[Suite]) -> Expectations {
        let refusal_expected = suites
            .iter()
            .flat_map(|s| &s.probes)
            .filter(|p| p.expect.refusal == Some(true))
            .map(|p| format!("{}/{}", p.suite, p.id))
            .collect();
        let seeded = suites
            .iter()
            .flat_map(|s| &s.probes)
            .filter(|p| p.params.seed.is_some())
            .map(|p| format!("{}/{}", p.suite, p.id))
            .collect();
        let mut stratum_margins = BTreeMap::new();
        for s in suites {
            for p in &s.probes {
                if let Some(m) = p.expect.margin {
                    stratum_margins.insert(format!("{}/{}", p.suite, p.id), m);
                }
            }
            // The suite's own: the margin every one of its probes carries (`[defaults]`).
            let first = s.probes.first().and_then(|p| p.expect.margin);
            if let Some(m) = first
                && s.probes.iter().all(|p| p.expect.margin == Some(m))
            {
                stratum_margins.insert(s.name.clone(), m);
            }
        }
        Expectations {
            refusal_expected,
            stratum_margins,
            seeded,
        }
    }

    pub fn refusal_expected(&self, suite: &str, probe_id: &str) -> bool {
        !self.refusal_expected.is_empty()
            && self
                .refusal_expected
                .contains(&format!("{suite}/{probe_id}"))
    }
}

/// Baseline (or any reference) samples against recent or candidate samples, unpaired.
/// Every probe is taken as benign (no probe expects a refusal); see [`compare_with`].
pub fn compare(baseline: &[Sample], candidate: &[Sample], margins: &Margins) -> Report {
    compare_with(baseline, candidate, margins, &Expectations::default())
}

/// [`compare`] with the probes' expectations (from the suites or the baseline file).
pub fn compare_with(
    baseline: &[Sample],
    candidate: &[Sample],
    margins: &Margins,
    expectations: &Expectations,
) -> Report {
    run(baseline, candidate, margins, expectations, Design::Unpaired)
}

/// Current against candidate on the same probes and sample indices (canary), paired.
/// Samples without a partner on the other side are left out and counted.
pub fn compare_paired(
    current: &[Sample],
    candidate: &[Sample],
    margins: &Margins,
    expectations: &Expectations,
) -> Report {
    run(current, candidate, margins, expectations, Design::Paired)
}

fn run(
    baseline: &[Sample],
    candidate: &[Sample],
    margins: &Margins,
    expectations: &Expectations,
    design: Design,
) -> Report {
    let paired = design == Design::Paired;
    let prep = prepare::prepare(baseline, candidate, expectations, paired);
    let (b, c) = (&prep.baseline, &prep.candidate);

    let diagnostics: Vec<Metric> = metric::DIAGNOSTIC_RATES
        .into_iter()
        .chain(
            StructuredOutcome::ALL
                .into_iter()
                .filter(|k| k.is_failure())
                .map(Metric::StructuredKind),
        )
        .filter(|m| {
            b.iter()
                .chain(c.iter())
                .any(|o| o.outcome(*m) == Some(true))
        })
        .collect();
    let mut analysed: Vec<(MetricResult, analyze::Basis)> = Vec::new();
    for metric in metric::BINARY.into_iter().chain(diagnostics) {
        analysed.extend(analyze::rate(
            metric,
            &prep.probes,
            (b, c),
            paired,
            margins,
            &expectations.stratum_margins,
        ));
    }
    for metric in metric::CONTINUOUS {
        analysed.extend(analyze::shift(metric, prep.probes.len(), b, c, margins));
        if metric == Metric::LengthTokens {
            analysed.extend(shape::length_shape(&prep.probes, b, c, margins));
        }
    }
    // Report order: quality, then its diagnostics, then performance.
    analysed.sort_by_key(|(r, _)| match r.category {
        Category::Quality => 0,
        Category::Diagnostic => 1,
        Category::Performance => 2,
        Category::Behaviour => 3,
    });
    // One Benjamini–Hochberg family: every metric that has a p-value.
    let ps: Vec<f64> = analysed.iter().filter_map(|(r, _)| r.p_value).collect();
    let mut adjusted = calls::bh(&ps).into_iter();
    let mut metrics = Vec::with_capacity(analysed.len());
    for (mut r, basis) in analysed {
        if r.p_value.is_some() {
            r.p_adjusted = adjusted.next();
        }
        analyze::decide(&mut r, &basis, margins);
        metrics.push(r);
    }

    let flipped = flips::find(&prep.probes, b, c, margins);
    let lengths = suite_lengths(&prep.probes, b, c);
    let availability = Availability {
        baseline: prep.availability.0.clone(),
        candidate: prep.availability.1.clone(),
    };
    let (verdict, mut reasons) = overall(&metrics, &availability, &prep.sets, margins);
    // Behaviour: its own family and its own level, after the quality verdict; a change is a
    // warning in the reasons, never the verdict or the exit code.
    let behaviour = behaviour::behaviour(&prep.probes, b, c, margins, &expectations.seeded);
    let mut behaviour_changed = false;
    if let Some((m, _)) = behaviour {
        if m.verdict == Verdict::Changed {
            behaviour_changed = true;
            reasons.push(format!(
                "warning: the served behaviour changed (not a quality verdict): {}",
                describe(&m)
            ));
        }
        metrics.push(m);
    }
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        design,
        baseline_label: if paired { "current" } else { "baseline" }.into(),
        candidate_label: "candidate".into(),
        verdict,
        exit_code: verdict.exit_code(),
        reasons,
        behaviour_changed,
        metrics,
        flipped,
        availability,
        probes: prep.sets,
        margins: margins.clone(),
        lengths,
    }
}

fn suite_lengths(
    probes: &[(String, String)],
    b: &[prepare::Obs],
    c: &[prepare::Obs],
) -> Vec<SuiteLengths> {
    let mut by_suite: BTreeMap<&str, SuiteLengths> = BTreeMap::new();
    for (side, obs) in [(0, b), (1, c)] {
        for o in obs.iter().filter(|o| analyze::is_answer(o)) {
            let suite = probes[o.probe].0.as_str();
            let e = by_suite.entry(suite).or_insert_with(|| SuiteLengths {
                suite: suite.to_string(),
                baseline: Vec::new(),
                candidate: Vec::new(),
            });
            let v = if side == 0 {
                &mut e.baseline
            } else {
                &mut e.candidate
            };
            v.push(f64::from(o.m.chars));
        }
    }
    by_suite.into_values().collect()
}

/// Strata named in a one-sentence description; the report lists all.
const REASON_STRATA: usize = 5;

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// One sentence about a metric's change, for reasons and summaries.
pub fn describe(r: &MetricResult) -> String {
    let p = r
        .p_adjusted
        .map(|p| {
            let f = fmt_p(p);
            if f.starts_with('<') {
                format!(", adjusted p {f}")
            } else {
                format!(", adjusted p = {f}")
            }
        })
        .unwrap_or_default();
    if r.metric.is_rate() {
        let (b, c) = (
            r.baseline.rate.unwrap_or(0.0),
            r.candidate.rate.unwrap_or(0.0),
        );
        let ci = match (r.effect.lower, r.effect.upper) {
            (Some(l), Some(u)) => format!(" (CI {:+.1} to {:+.1} points)", l * 100.0, u * 100.0),
            _ => String::new(),
        };
        let strata = if r.strata.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = r
                .strata
                .iter()
                .take(REASON_STRATA)
                .map(|s| format!("{} {}", s.name, s.summary))
                .collect();
            let more = r.strata.len().saturating_sub(REASON_STRATA);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("; moved in {}{more}", names.join(", "))
        };
        format!("{} {} → {}{ci}{p}{strata}", r.metric.id(), pct(b), pct(c))
    } else if r.metric.is_distance() {
        let name = if r.metric == Metric::Behaviour {
            "MMD²"
        } else {
            "KS distance"
        };
        let two = crate::util::zero_at_two_decimals;
        let ci = match (r.effect.lower, r.effect.upper) {
            (Some(l), Some(u)) => format!(" (CI {:.2} to {:.2})", two(l), two(u)),
            _ => String::new(),
        };
        let words = r
            .detail
            .as_ref()
            .map(|w| format!(" — {w}"))
            .unwrap_or_default();
        let est = r
            .effect
            .estimate
            .map_or_else(|| "n/a".into(), |v| format!("{:.2}", two(v)));
        let p = if r.metric == Metric::Behaviour {
            p.replace("adjusted p", "p")
        } else {
            p
        };
        format!("{} {name} {est}{ci}{p}{words}", r.metric.id())
    } else if r.effect.measure == "cliffs_delta" {
        let d = |x: Option<f64>| x.map_or_else(|| "n/a".into(), |v| format!("{v:+.2}"));
        format!(
            "{} Cliff's delta {} (CI {} to {}){p}",
            r.metric.id(),
            d(r.effect.estimate),
            d(r.effect.lower),
            d(r.effect.upper),
        )
    } else {
        let ratio = |x: Option<f64>| x.map(|v| format!("{:+.1}%", (v.exp() - 1.0) * 100.0));
        format!(
            "{} shift {} (CI {} to {}){p}",
            r.metric.id(),
            ratio(r.effect.estimate).unwrap_or_else(|| "n/a".into()),
            ratio(r.effect.lower).unwrap_or_else(|| "n/a".into()),
            ratio(r.effect.upper).unwrap_or_else(|| "n/a".into()),
        )
    }
}

/// A p-value for humans: three significant digits, `< 1e-16` at the floor.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-16 {
        "< 1e-16".into()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn overall(
    metrics: &[MetricResult],
    avail: &Availability,
    sets: &ProbeSets,
    margins: &Margins,
) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    for (name, side) in [
        ("baseline", &avail.baseline),
        ("candidate", &avail.candidate),
    ] {
        if side.requests > 0 && side.error_rate > margins.max_error_rate {
            let kinds: Vec<String> = side
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            reasons.push(format!(
                "{name}: {} of {} requests failed ({}; {}), above the {} limit — too little \
                 was measured to judge quality",
                side.errors,
                side.requests,
                pct(side.error_rate),
                kinds.join(", "),
                pct(margins.max_error_rate)
            ));
        }
    }
    if sets.compared == 0 {
        reasons.push("no probe was measured on both sides with the same content".into());
    }
    let deciding: Vec<&MetricResult> = metrics
        .iter()
        .filter(|m| {
            m.category == Category::Quality
                || (margins.performance_gates && m.category == Category::Performance)
        })
        .collect();
    if deciding
        .iter()
        .all(|m| m.baseline.n == 0 || m.candidate.n == 0)
    {
        reasons.push("no quality metric has measured samples on both sides".into());
    }
    if !reasons.is_empty() {
        return (Verdict::Inconclusive, reasons);
    }
    let regressions: Vec<&&MetricResult> = deciding
        .iter()
        .filter(|m| m.verdict == Verdict::Regression)
        .collect();
    if !regressions.is_empty() {
        let reasons = regressions
            .iter()
            .map(|m| format!("regression: {}", describe(m)))
            .collect();
        return (Verdict::Regression, reasons);
    }
    let open: Vec<&&MetricResult> = deciding
        .iter()
        .filter(|m| m.verdict == Verdict::Inconclusive)
        .collect();
    if open.is_empty() {
        return (
            Verdict::Pass,
            vec![format!(
                "all {} quality metrics are within their margins",
                deciding.len()
            )],
        );
    }
    let reasons = open
        .iter()
        .map(|m| {
            let more = m
                .more_samples
                .map(|n| format!("about {n} more samples per side would settle it"))
                .unwrap_or_else(|| "more samples alone are unlikely to settle it".into());
            format!("inconclusive: {} — {more}", describe(m))
        })
        .collect();
    (Verdict::Inconclusive, reasons)
}

#[cfg(test)]
pub(crate) mod tests;
