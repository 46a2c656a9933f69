//! The round summary printed by `modelwatch run`: figures per target, per suite and per (suite,
//! probe), plus a total per target. Pure: samples in, data out; rendering returns a `String`:
//! a compact table (total first, then one row per suite) or the per-probe table.
//!
//! Errors (timeouts, HTTP failures, …) are availability, not quality: they are counted by kind
//! and excluded from every other figure, latency included (a timeout's latency is the timeout).
//! A sample counts as *measured* when it has measurements and no error.
//!
//! Quantiles use linear interpolation between order statistics, Hyndman & Fan (1996) type 7,
//! the default of R's `quantile` and numpy's `percentile`: for sorted `x[0..n]` and probability
//! `p`, `h = (n - 1) p` and `q = x[⌊h⌋] + (h - ⌊h⌋) (x[⌊h⌋ + 1] - x[⌊h⌋])`.
//!
//! JSON field names (`--format json`) are part of the interface; `docs/storage.md` lists them.

use crate::sample::Sample;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Summary of one round (or any set of samples), targets sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundSummary {
    pub targets: Vec<TargetSummary>,
}

/// One target: a row per probe (sorted by suite, then probe id), per suite, and the pooled
/// total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSummary {
    pub target: String,
    pub probes: Vec<ProbeSummary>,
    pub suites: Vec<SuiteSummary>,
    pub total: Figures,
}

/// One suite's figures (its probes pooled).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteSummary {
    pub suite: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One probe's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    pub suite: String,
    pub probe: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Median and upper quantiles of a measurement (type 7, see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
}

/// Outcomes of the samples of probes that expect JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructuredFigures {
    /// Measured samples with a structured-output outcome.
    pub samples: u32,
    /// Count per outcome name (`ok`, `no_json`, `invalid_json`, `schema_violation`,
    /// `truncated`, `refused`); only outcomes that occurred.
    pub outcomes: BTreeMap<String, u32>,
    /// Share of these samples whose structured output failed (any outcome but `ok`).
    pub failure_rate: f64,
}

/// Task-check results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFigures {
    /// Measured samples with a task check result.
    pub samples: u32,
    pub failures: u32,
    pub failure_rate: f64,
}

/// The figures of one group of samples. Optional figures are `None` (JSON `null`) when no
/// measured sample carries them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Every sample, errors included.
    pub samples: u32,
    /// Samples with measurements and no error: the denominator of every rate below.
    pub measured: u32,
    pub errors: u32,
    /// Count per error kind name; only kinds that occurred.
    pub errors_by_kind: BTreeMap<String, u32>,
    pub chars: Option<Quantiles>,
    pub output_tokens: Option<Quantiles>,
    pub latency_ms: Option<Quantiles>,
    /// Time to first token (streaming samples only).
    pub ttft_ms: Option<Quantiles>,
    /// Count per finish reason name; measured samples that reported one.
    pub finish_reasons: BTreeMap<String, u32>,
    pub refusal_rate: Option<f64>,
    pub empty_rate: Option<f64>,
    pub truncation_rate: Option<f64>,
    pub structured: Option<StructuredFigures>,
    pub task: Option<TaskFigures>,
}

pub use crate::stats::quantile;

/// Quantiles of the finite values in `values`, or `None` when there are none.
fn quantiles(mut values: Vec<f64>) -> Option<Quantiles> {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    Some(Quantiles {
        median: quantile(&values, 0.5)?,
        p90: quantile(&values, 0.9)?,
        p95: quantile(&values, 0.95)?,
    })
}

fn rate(hits: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| hits as f64 / of as f64)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Figures {
    /// Figures of a group of samples.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Figures {
        let all: Vec<&Sample> = samples.into_iter().collect();
        let mut errors_by_kind = BTreeMap::new();
        for e in all.iter().filter_map(|s| s.error.as_ref()) {
            *errors_by_kind
                .entry(e.kind.as_str().to_string())
                .or_insert(0) += 1;
        }
        let measured: Vec<(&Sample, &crate::sample::Measurements)> = all
            .iter()
            .filter(|s| s.error.is_none())
            .filter_map(|s| s.measurements.as_ref().map(|m| (*s, m)))
            .collect();
        let n = measured.len();
        let mut finish_reasons = BTreeMap::new();
        for fr in measured
            .iter()
            .filter_map(|(s, _)| s.finish_reason.as_ref())
        {
            *finish_reasons.entry(fr.as_str().to_string()).or_insert(0) += 1;
        }
        let structured: Vec<_> = measured.iter().filter_map(|(_, m)| m.structured).collect();
        let structured = (!structured.is_empty()).then(|| {
            let mut outcomes = BTreeMap::new();
            for o in &structured {
                *outcomes.entry(o.as_str().to_string()).or_insert(0) += 1;
            }
            let failed = structured.iter().filter(|o| o.is_failure()).count();
            StructuredFigures {
                samples: count(structured.len()),
                outcomes,
                failure_rate: failed as f64 / structured.len() as f64,
            }
        });
        let tasks: Vec<bool> = measured
            .iter()
            .filter_map(|(_, m)| m.task_success)
            .collect();
        let task = (!tasks.is_empty()).then(|| {
            let failures = tasks.iter().filter(|t| !**t).count();
            TaskFigures {
                samples: count(tasks.len()),
                failures: count(failures),
                failure_rate: failures as f64 / tasks.len() as f64,
            }
        });
        Figures {
            samples: count(all.len()),
            measured: count(n),
            errors: count(all.iter().filter(|s| s.error.is_some()).count()),
            errors_by_kind,
            chars: quantiles(measured.iter().map(|(_, m)| m.chars.into()).collect()),
            output_tokens: quantiles(
                measured
                    .iter()
                    .map(|(_, m)| m.output_tokens.into())
                    .collect(),
            ),
            latency_ms: quantiles(measured.iter().map(|(s, _)| s.latency_ms).collect()),
            ttft_ms: quantiles(measured.iter().filter_map(|(s, _)| s.ttft_ms).collect()),
            finish_reasons,
            refusal_rate: rate(measured.iter().filter(|(_, m)| m.refusal).count(), n),
            empty_rate: rate(measured.iter().filter(|(_, m)| m.empty).count(), n),
            truncation_rate: rate(measured.iter().filter(|(_, m)| m.truncated).count(), n),
            structured,
            task,
        }
    }
}

/// Groups `samples` per target, then per (suite, probe id), and computes every figure.
pub fn summarize(samples: &[Sample]) -> RoundSummary {
    let mut by_target: BTreeMap<&str, BTreeMap<(&str, &str), Vec<&Sample>>> = BTreeMap::new();
    for s in samples {
        by_target
            .entry(&s.target)
            .or_default()
            .entry((&s.suite, &s.probe_id))
            .or_default()
            .push(s);
    }
    let targets = by_target
        .into_iter()
        .map(|(target, probes)| TargetSummary {
            target: target.to_string(),
            total: Figures::of(probes.values().flatten().copied()),
            suites: suites_of(&probes),
            probes: probes
                .into_iter()
                .map(|((suite, probe), group)| ProbeSummary {
                    suite: suite.to_string(),
                    probe: probe.to_string(),
                    figures: Figures::of(group),
                })
                .collect(),
        })
        .collect();
    RoundSummary { targets }
}

/// Per suite (sorted by name): the samples of its probes pooled.
fn suites_of(probes: &BTreeMap<(&str, &str), Vec<&Sample>>) -> Vec<SuiteSummary> {
    let mut by_suite: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for ((suite, _), group) in probes {
        by_suite
            .entry(suite)
            .or_default()
            .extend(group.iter().copied());
    }
    by_suite
        .into_iter()
        .map(|(suite, group)| SuiteSummary {
            suite: suite.to_string(),
            figures: Figures::of(group),
        })
        .collect()
}

impl RoundSummary {
    /// Samples with measurements across all targets: zero means the round measured nothing.
    pub fn measured(&self) -> u32 {
        self.targets.iter().map(|t| t.total.measured).sum()
    }

    /// The compact table: per target, its total first, then one line per suite, in the
    /// columns that carry a quality or availability signal. With `color`, as [`Self::render_text`].
    pub fn render_suites(&self, color: bool) -> String {
        let mut out = String::new();
        if self.targets.is_empty() {
            out.push_str("no samples\n");
            return out;
        }
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let title = format!("target {}", t.target);
            let _ = writeln!(out, "{}", paint(&title, Style::Bold, color));
            let mut rows = vec![header(&COMPACT)];
            rows.push(compact_row("total".to_string(), &t.total, true));
            for s in &t.suites {
                rows.push(compact_row(s.suite.clone(), &s.figures, false));
            }
            render_table(&mut out, &COMPACT, &rows, color);
        }
        out
    }

    /// An aligned table per target: one line per probe, then the target's total. With `color`,
    /// ANSI styles mark the header, errors and quality signals.
    pub fn render_text(&self, color: bool) -> String {
        let mut out = String::new();
        if self.targets.is_empty() {
            out.push_str("no samples\n");
            return out;
        }
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let title = format!("target {}", t.target);
            let _ = writeln!(out, "{}", paint(&title, Style::Bold, color));
            let mut rows = vec![header(&COLUMNS)];
            for p in &t.probes {
                rows.push(row(format!("{}/{}", p.suite, p.probe), &p.figures, false));
            }
            rows.push(row("total".to_string(), &t.total, true));
            render_table(&mut out, &COLUMNS, &rows, color);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Bold,
    Red,
    Yellow,
    Dim,
}

fn paint(text: &str, style: Style, color: bool) -> String {
    let code = match style {
        _ if !color => return text.to_string(),
        Style::Plain => return text.to_string(),
        Style::Bold => "1",
        Style::Red => "31",
        Style::Yellow => "33",
        Style::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

struct Cell {
    text: String,
    style: Style,
}

const COLUMNS: [(&str, Align); 14] = [
    ("probe", Align::Left),
    ("n", Align::Right),
    ("err", Align::Right),
    ("chars p50/p90", Align::Right),
    ("tokens p50/p90", Align::Right),
    ("latency ms p50/p95", Align::Right),
    ("ttft ms p50/p95", Align::Right),
    ("refusal", Align::Right),
    ("empty", Align::Right),
    ("trunc", Align::Right),
    ("json fail", Align::Right),
    ("task fail", Align::Right),
    ("finish", Align::Left),
    ("errors", Align::Left),
];

/// The compact table's columns: a subset of [`COLUMNS`], in the same meanings.
const COMPACT: [(&str, Align); 11] = [
    ("suite", Align::Left),
    ("n", Align::Right),
    ("err", Align::Right),
    ("chars p50/p90", Align::Right),
    ("latency ms p50/p95", Align::Right),
    ("refusal", Align::Right),
    ("empty", Align::Right),
    ("trunc", Align::Right),
    ("json fail", Align::Right),
    ("task fail", Align::Right),
    ("errors", Align::Left),
];

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

fn header(columns: &[(&str, Align)]) -> Vec<Cell> {
    columns
        .iter()
        .map(|(name, _)| Cell {
            text: name.to_string(),
            style: Style::Bold,
        })
        .collect()
}

/// Integers without decimals, anything else with one.
fn num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn pair(q: Option<Quantiles>, upper: fn(&Quantiles) -> f64) -> String {
    match q {
        Some(q) => format!("{}/{}", num(q.median), num(upper(&q))),
        None => "-".into(),
    }
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn counts(map: &BTreeMap<String, u32>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn row(label: String, f: &Figures, total: bool) -> Vec<Cell> {
    let plain = if total { Style::Bold } else { Style::Plain };
    let cell = |text: String, style: Style| Cell {
        style: if text == "-" { Style::Dim } else { style },
        text,
    };
    let warn_if = |bad: bool| if bad { Style::Yellow } else { plain };
    let errors = if f.errors > 0 { Style::Red } else { plain };
    vec![
        cell(label, plain),
        cell(f.samples.to_string(), plain),
        cell(f.errors.to_string(), errors),
        cell(pair(f.chars, |q| q.p90), plain),
        cell(pair(f.output_tokens, |q| q.p90), plain),
        cell(pair(f.latency_ms, |q| q.p95), plain),
        cell(pair(f.ttft_ms, |q| q.p95), plain),
        cell(
            percent(f.refusal_rate),
            warn_if(f.refusal_rate.is_some_and(|r| r > 0.0)),
        ),
        cell(
            percent(f.empty_rate),
            warn_if(f.empty_rate.is_some_and(|r| r > 0.0)),
        ),
        cell(
            percent(f.truncation_rate),
            warn_if(f.truncation_rate.is_some_and(|r| r > 0.0)),
        ),
        cell(
            percent(f.structured.as_ref().map(|s| s.failure_rate)),
            warn_if(f.structured.as_ref().is_some_and(|s| s.failure_rate > 0.0)),
        ),
        cell(
            percent(f.task.as_ref().map(|t| t.failure_rate)),
            warn_if(f.task.as_ref().is_some_and(|t| t.failure_rate > 0.0)),
        ),
        cell(counts(&f.finish_reasons), plain),
        cell(counts(&f.errors_by_kind), errors),
    ]
}

/// A row of the compact table: the cells of [`row`] for the columns of [`COMPACT`].
fn compact_row(label: String, f: &Figures, total: bool) -> Vec<Cell> {
    let full = row(label, f, total);
    let keep: Vec<usize> = COMPACT
        .iter()
        .map(|(name, _)| match *name {
            "suite" => 0,
            name => COLUMNS.iter().position(|(c, _)| *c == name).unwrap_or(0),
        })
        .collect();
    let mut cells: Vec<Option<Cell>> = full.into_iter().map(Some).collect();
    keep.into_iter()
        .filter_map(|i| cells.get_mut(i).and_then(Option::take))
        .collect()
}

/// Pads on the plain text (so escape codes never disturb alignment), then paints.
fn render_table(out: &mut String, columns: &[(&str, Align)], rows: &[Vec<Cell>], color: bool) {
    let mut widths = vec![0usize; columns.len()];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.text.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, ((c, w), (_, align))) in r.iter().zip(&widths).zip(columns).enumerate() {
            let pad = " ".repeat(w - c.text.chars().count());
            let last = i + 1 == columns.len();
            line.push_str("  ");
            match align {
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(&paint(&c.text, c.style, color));
                }
                Align::Left => {
                    line.push_str(&paint(&c.text, c.style, color));
                    if !last {
                        line.push_str(&pad);
                    }
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests;
