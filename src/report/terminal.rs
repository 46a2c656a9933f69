//! The terminal table.

use super::{decides, effect_text, flip_values, moved_lines, p_text, side_text};
use crate::drift::{Category, MetricResult, Report, Verdict};
use std::fmt::Write;

const RED: &str = "\x1b[31;1m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Flipped probes shown in the terminal; the other formats list all.
const MAX_FLIPS: usize = 12;

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("{code}{s}{RESET}")
    } else {
        s.to_string()
    }
}

fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => GREEN,
        Verdict::Improvement => CYAN,
        Verdict::Inconclusive => YELLOW,
        Verdict::Regression => RED,
        Verdict::Changed => YELLOW,
    }
}

/// Left-aligns to `width` characters (not bytes: the table has arrows and minus signs).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

/// The strata, shape and behaviour lines, then the flipped probes with excerpts.
fn moved_and_flips(out: &mut String, r: &Report, color: bool) {
    let moved = moved_lines(r);
    if !moved.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            paint("Strata, shape and behaviour", BOLD, color)
        );
        for (label, line) in &moved {
            let _ = writeln!(out, "  {}: {line}", paint(label, DIM, color));
        }
    }
    if !r.flipped.is_empty() {
        let _ = writeln!(out, "\n{}", paint("Flipped probes", BOLD, color));
        for f in r.flipped.iter().take(MAX_FLIPS) {
            let _ = writeln!(
                out,
                "  {}/{}  {}  {}",
                f.suite,
                f.probe_id,
                paint(f.kind.describe(), YELLOW, color),
                flip_values(f)
            );
            for (label, e) in [
                (&r.baseline_label, &f.baseline_excerpt),
                (&r.candidate_label, &f.candidate_excerpt),
            ] {
                if let Some(e) = e {
                    let _ = writeln!(out, "    {}: {}", paint(label, DIM, color), e);
                }
            }
        }
    }
    if r.flipped.len() > MAX_FLIPS {
        let _ = writeln!(
            out,
            "  … and {} more (all in --format json, markdown or html)",
            r.flipped.len() - MAX_FLIPS
        );
    }
}

/// A plain-text report; `color` adds ANSI colours.
pub fn terminal(r: &Report, color: bool) -> String {
    let mut out = String::new();
    headline(&mut out, r, color);
    metric_tables(&mut out, r, color);
    moved_and_flips(&mut out, r, color);
    availability_and_probes(&mut out, r);
    out
}

/// The verdict line and its reasons.
fn headline(out: &mut String, r: &Report, color: bool) {
    let v = r.verdict;
    let _ = writeln!(
        out,
        "{} {}  ({} vs {}, {} design, {} probes compared, exit {})",
        paint("modelwatch verdict:", BOLD, color),
        paint(&v.as_str().to_uppercase(), verdict_color(v), color),
        r.baseline_label,
        r.candidate_label,
        match r.design {
            crate::drift::Design::Paired => "paired",
            crate::drift::Design::Unpaired => "unpaired",
        },
        r.probes.compared,
        r.exit_code
    );
    for reason in &r.reasons {
        let _ = writeln!(out, "  • {reason}");
    }
}

/// One table per metric category that has metrics, columns aligned.
fn metric_tables(out: &mut String, r: &Report, color: bool) {
    let headers = [
        "metric",
        r.baseline_label.as_str(),
        r.candidate_label.as_str(),
        "effect [CI]",
        "test",
        "adj. p",
        "verdict",
    ];
    for (cat, title) in [
        (Category::Quality, "Quality"),
        (Category::Diagnostic, "Structured-output failures by kind"),
        (Category::Performance, "Performance"),
        (
            Category::Behaviour,
            "Served behaviour (a warning, not a quality verdict)",
        ),
    ] {
        let rows: Vec<[String; 7]> = r.metrics_in(cat).map(|m| metric_row(r, m)).collect();
        if rows.is_empty() {
            continue;
        }
        let mut widths = headers.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(out, "\n{}", paint(title, BOLD, color));
        let head: Vec<String> = headers
            .iter()
            .zip(&widths)
            .map(|(h, &w)| pad(h, w))
            .collect();
        let _ = writeln!(out, "  {}", paint(head.join("  ").trim_end(), DIM, color));
        for (row, m) in rows.iter().zip(r.metrics_in(cat)) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, &w))| {
                    let cell = pad(c, w);
                    if i == 6 {
                        paint(cell.trim_end(), verdict_color(m.verdict), color)
                    } else {
                        cell
                    }
                })
                .collect();
            let _ = writeln!(out, "  {}", cells.join("  "));
        }
    }
}

/// A metric's cells; the verdict says how many more samples an inconclusive one needs and
/// whether a regression gates.
fn metric_row(r: &Report, m: &MetricResult) -> [String; 7] {
    let mut verdict = m.verdict.as_str().to_string();
    if m.verdict == Verdict::Inconclusive
        && let Some(n) = m.more_samples
    {
        verdict.push_str(&format!(" (~{n} more)"));
    }
    if m.verdict == Verdict::Regression && !decides(r, m) {
        verdict.push_str(" (not gating)");
    }
    [
        m.label.clone(),
        side_text(m, &m.baseline),
        side_text(m, &m.candidate),
        effect_text(m),
        m.test.clone(),
        p_text(m),
        verdict,
    ]
}

/// Failed requests on each side (never quality), then the probes left out of the comparison.
fn availability_and_probes(out: &mut String, r: &Report) {
    let a = &r.availability;
    let _ = writeln!(
        out,
        "\nAvailability (never counted as quality): {} {} of {} requests failed; {} {} of {} failed",
        r.baseline_label,
        a.baseline.errors,
        a.baseline.requests,
        r.candidate_label,
        a.candidate.errors,
        a.candidate.requests
    );
    let p = &r.probes;
    for (what, list) in [
        ("changed (excluded)", &p.changed),
        (
            &format!("only in {}", r.baseline_label) as &str,
            &p.only_baseline,
        ),
        (
            &format!("only in {}", r.candidate_label) as &str,
            &p.only_candidate,
        ),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "Probes {what}: {}", list.join(", "));
        }
    }
    if p.unpaired_samples > 0 {
        let _ = writeln!(
            out,
            "Samples without a partner (left out): {}",
            p.unpaired_samples
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{degraded_report, passing_report};

    #[test]
    fn plain_text_has_verdict_rows_and_flips() {
        let r = degraded_report();
        let t = terminal(&r, false);
        assert!(t.starts_with("modelwatch verdict: REGRESSION"), "{t}");
        assert!(!t.contains('\x1b'));
        let refusal = t
            .lines()
            .find(|l| l.trim_start().starts_with("Refusal rate"))
            .unwrap();
        assert!(
            refusal.contains("fisher_exact") && refusal.ends_with("regression"),
            "{refusal}"
        );
        assert!(t.contains("core/p002  started refusing"));
        assert!(t.contains("<script>"), "the terminal shows text verbatim");
        assert!(t.contains("Availability"));
    }

    #[test]
    fn colour_only_when_asked() {
        let r = passing_report();
        let plain = terminal(&r, false);
        let coloured = terminal(&r, true);
        assert!(plain.contains("PASS"));
        assert!(coloured.contains(&format!("{GREEN}PASS{RESET}")));
        assert!(!plain.contains('\x1b'));
    }
}
