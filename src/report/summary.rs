//! The round summary printed by `modelwatch run`: figures per target, then per (suite, probe),
//! plus a total row per target. Pure: samples in, data out; rendering returns a `String`.
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

/// One target: a row per probe (sorted by suite, then probe id) and the pooled total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSummary {
    pub target: String,
    pub probes: Vec<ProbeSummary>,
    pub total: Figures,
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

impl RoundSummary {
    /// Samples with measurements across all targets: zero means the round measured nothing.
    pub fn measured(&self) -> u32 {
        self.targets.iter().map(|t| t.total.measured).sum()
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
            let mut rows = vec![header()];
            for p in &t.probes {
                rows.push(row(format!("{}/{}", p.suite, p.probe), &p.figures, false));
            }
            rows.push(row("total".to_string(), &t.total, true));
            render_table(&mut out, &rows, color);
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

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

fn header() -> Vec<Cell> {
    COLUMNS
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

/// Pads on the plain text (so escape codes never disturb alignment), then paints.
fn render_table(out: &mut String, rows: &[Vec<Cell>], color: bool) {
    let mut widths = [0usize; COLUMNS.len()];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.text.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, ((c, w), (_, align))) in r.iter().zip(widths).zip(COLUMNS).enumerate() {
            let pad = " ".repeat(w - c.text.chars().count());
            let last = i + 1 == COLUMNS.len();
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
mod tests {
    use super::*;
    use crate::sample::{ErrorKind, FinishReason, Measurements, SampleError, StructuredOutcome};

    fn ok(target: &str, probe: &str, chars: u32, tokens: u32, latency: f64) -> Sample {
        Sample {
            target: target.into(),
            suite: "core".into(),
            probe_id: probe.into(),
            probe_hash: "h".into(),
            index: 0,
            started_at_ms: 0,
            latency_ms: latency,
            ttft_ms: None,
            attempts: 1,
            finish_reason: Some(FinishReason::Stop),
            input_tokens: None,
            response_model: None,
            system_fingerprint: None,
            measurements: Some(Measurements {
                chars,
                output_tokens: tokens,
                ..Default::default()
            }),
            error: None,
            text: None,
        }
    }

    fn err(target: &str, probe: &str, kind: ErrorKind) -> Sample {
        let mut s = ok(target, probe, 0, 0, 30_000.0);
        s.measurements = None;
        s.finish_reason = None;
        s.error = Some(SampleError::new(kind, "boom"));
        s
    }

    #[test]
    fn quantile_type_7_matches_hand_computation() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&x, 0.5), Some(2.5));
        // h = 3 * 0.9 = 2.7 → 3 + 0.7 * (4 - 3)
        assert!((quantile(&x, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert!((quantile(&x, 0.95).unwrap() - 3.85).abs() < 1e-12);
        assert_eq!(quantile(&x, 0.0), Some(1.0));
        assert_eq!(quantile(&x, 1.0), Some(4.0));
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&x, 1.5), None);
        // numpy.percentile([10, 20, 30, 40, 50], 90) == 46.0
        assert_eq!(quantile(&[10.0, 20.0, 30.0, 40.0, 50.0], 0.9), Some(46.0));
    }

    #[test]
    fn quantiles_ignore_order_and_non_finite_values() {
        let q = quantiles(vec![4.0, f64::NAN, 1.0, 3.0, 2.0, f64::INFINITY]).unwrap();
        assert_eq!(q.median, 2.5);
        assert_eq!(quantiles(vec![f64::NAN]), None);
    }

    fn fixture() -> Vec<Sample> {
        let mut v = vec![
            ok("chat", "a", 40, 4, 400.0),
            ok("chat", "a", 10, 1, 100.0),
            ok("chat", "a", 30, 3, 300.0),
            ok("chat", "a", 20, 2, 200.0),
            err("chat", "a", ErrorKind::Timeout),
        ];
        v[0].measurements.as_mut().unwrap().refusal = true;
        v[1].measurements.as_mut().unwrap().truncated = true;
        v[1].finish_reason = Some(FinishReason::Length);
        v[0].ttft_ms = Some(50.0);
        v[1].ttft_ms = Some(10.0);
        let mut json = Vec::new();
        for (i, outcome) in [
            StructuredOutcome::Ok,
            StructuredOutcome::Ok,
            StructuredOutcome::SchemaViolation,
        ]
        .into_iter()
        .enumerate()
        {
            let mut s = ok("chat", "invoice", 100, 10, 1000.0);
            s.suite = "json".into();
            let m = s.measurements.as_mut().unwrap();
            m.structured = Some(outcome);
            m.task_success = Some(i == 0);
            m.empty = i == 2;
            json.push(s);
        }
        v.extend(json);
        v.push(err("chat", "invoice", ErrorKind::HttpStatus));
        v.last_mut().unwrap().suite = "json".into();
        v.push(ok("batch", "a", 5, 5, 5.0));
        v
    }

    #[test]
    fn figures_per_probe_match_hand_computation() {
        let s = summarize(&fixture());
        assert_eq!(
            s.targets
                .iter()
                .map(|t| t.target.as_str())
                .collect::<Vec<_>>(),
            vec!["batch", "chat"]
        );
        let chat = &s.targets[1];
        assert_eq!(
            chat.probes
                .iter()
                .map(|p| (p.suite.as_str(), p.probe.as_str()))
                .collect::<Vec<_>>(),
            vec![("core", "a"), ("json", "invoice")]
        );
        let a = &chat.probes[0].figures;
        assert_eq!((a.samples, a.measured, a.errors), (5, 4, 1));
        assert_eq!(a.errors_by_kind, BTreeMap::from([("timeout".into(), 1)]));
        // chars 10 20 30 40: median 25, p90 h=2.7 → 37, p95 h=2.85 → 38.5
        let chars = a.chars.unwrap();
        assert_eq!(chars.median, 25.0);
        assert!((chars.p90 - 37.0).abs() < 1e-9);
        assert!((chars.p95 - 38.5).abs() < 1e-9);
        let tokens = a.output_tokens.unwrap();
        assert!((tokens.p90 - 3.7).abs() < 1e-9);
        // The timeout's 30 s latency is excluded: p95 of 100..400 is 385.
        let latency = a.latency_ms.unwrap();
        assert_eq!(latency.median, 250.0);
        assert!((latency.p95 - 385.0).abs() < 1e-9);
        // ttft from the two streaming samples: 10, 50 → median 30, p95 48
        let ttft = a.ttft_ms.unwrap();
        assert_eq!(ttft.median, 30.0);
        assert!((ttft.p95 - 48.0).abs() < 1e-9);
        assert_eq!(
            a.finish_reasons,
            BTreeMap::from([("length".into(), 1), ("stop".into(), 3)])
        );
        assert_eq!(a.refusal_rate, Some(0.25));
        assert_eq!(a.truncation_rate, Some(0.25));
        assert_eq!(a.empty_rate, Some(0.0));
        assert_eq!(a.structured, None);
        assert_eq!(a.task, None);

        let inv = &chat.probes[1].figures;
        assert_eq!((inv.samples, inv.measured, inv.errors), (4, 3, 1));
        let st = inv.structured.as_ref().unwrap();
        assert_eq!(st.samples, 3);
        assert_eq!(
            st.outcomes,
            BTreeMap::from([("ok".into(), 2), ("schema_violation".into(), 1)])
        );
        assert!((st.failure_rate - 1.0 / 3.0).abs() < 1e-12);
        let task = inv.task.as_ref().unwrap();
        assert_eq!((task.samples, task.failures), (3, 2));
        assert!((inv.empty_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(inv.ttft_ms, None);
    }

    #[test]
    fn total_row_pools_every_probe_of_the_target() {
        let s = summarize(&fixture());
        let total = &s.targets[1].total;
        assert_eq!((total.samples, total.measured, total.errors), (9, 7, 2));
        assert_eq!(
            total.errors_by_kind,
            BTreeMap::from([("http_status".into(), 1), ("timeout".into(), 1)])
        );
        // chars 10 20 30 40 100 100 100 → median 40; p90 h=5.4 → 100
        let chars = total.chars.unwrap();
        assert_eq!((chars.median, chars.p90), (40.0, 100.0));
        assert!((total.refusal_rate.unwrap() - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(total.structured.as_ref().unwrap().samples, 3);
        assert_eq!(s.targets[0].total.samples, 1);
        assert_eq!(s.measured(), 8);
    }

    #[test]
    fn only_errors_leaves_quality_figures_empty() {
        let s = summarize(&[err("t", "p", ErrorKind::Connect)]);
        let f = &s.targets[0].total;
        assert_eq!((f.samples, f.measured, f.errors), (1, 0, 1));
        assert_eq!(f.latency_ms, None);
        assert_eq!(f.refusal_rate, None);
        assert!(f.finish_reasons.is_empty());
        assert_eq!(s.measured(), 0);
        let text = s.render_text(false);
        assert!(text.contains("connect=1"), "{text}");
        assert!(!text.contains("NaN"), "{text}");
    }

    #[test]
    fn text_table_is_aligned_and_colour_is_optional() {
        let s = summarize(&fixture());
        let plain = s.render_text(false);
        assert!(!plain.contains('\x1b'));
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines[0], "target batch");
        let chat = lines.iter().position(|l| *l == "target chat").unwrap();
        let block = &lines[chat + 1..];
        assert!(block[0].trim_start().starts_with("probe"));
        assert!(block[1].trim_start().starts_with("core/a"));
        assert!(block[2].trim_start().starts_with("json/invoice"));
        assert!(block[3].trim_start().starts_with("total"));
        // Right-aligned columns end at the same position on every line of the block.
        for col in ["chars p50/p90", "latency ms p50/p95", "json fail"] {
            let end = block[0].find(col).unwrap() + col.len();
            for l in &block[1..4] {
                assert_ne!(l.as_bytes()[end - 1], b' ', "{col} misaligned in {l:?}");
                assert!(
                    l.len() == end || l.as_bytes()[end] == b' ',
                    "{col} misaligned in {l:?}"
                );
            }
        }
        assert!(block[1].contains("25/37"), "{}", block[1]);
        assert!(block[1].contains("250/385"), "{}", block[1]);
        assert!(block[1].contains("25.0%"), "{}", block[1]);
        assert!(block[1].contains("length=1 stop=3"), "{}", block[1]);
        assert!(block[1].contains("timeout=1"), "{}", block[1]);
        assert!(block[2].contains("66.7%"), "{}", block[2]);

        let colored = s.render_text(true);
        assert!(colored.contains("\x1b[31m1\x1b[0m"), "error count in red");
        let stripped = strip_ansi(&colored);
        assert_eq!(stripped, plain, "colour must not change layout");
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn json_field_names_are_stable() {
        let s = summarize(&fixture());
        let v = serde_json::to_value(&s).unwrap();
        let probe = &v["targets"][1]["probes"][1];
        assert_eq!(probe["suite"], "json");
        assert_eq!(probe["probe"], "invoice");
        for key in [
            "samples",
            "measured",
            "errors",
            "errors_by_kind",
            "chars",
            "output_tokens",
            "latency_ms",
            "ttft_ms",
            "finish_reasons",
            "refusal_rate",
            "empty_rate",
            "truncation_rate",
            "structured",
            "task",
        ] {
            assert!(probe.get(key).is_some(), "missing {key}");
        }
        assert_eq!(probe["structured"]["outcomes"]["ok"], 2);
        assert_eq!(probe["task"]["failures"], 2);
        assert!((probe["task"]["failure_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(probe["ttft_ms"], serde_json::Value::Null);
        assert_eq!(v["targets"][1]["total"]["chars"]["median"], 40.0);
    }

    #[test]
    fn empty_input_renders_a_note() {
        let s = summarize(&[]);
        assert!(s.targets.is_empty());
        assert_eq!(s.render_text(false), "no samples\n");
    }
}
