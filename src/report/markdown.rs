//! Markdown fit for a pull request (GitHub-flavoured tables, details blocks).

use super::{decides, effect_text, flip_values, moved_lines, p_text, side_text};
use crate::drift::{Category, Report, Verdict};
use std::fmt::Write;

/// Escapes text for a table cell or a line: no HTML, no pipes, no code or emphasis markup.
pub(crate) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ pass",
        Verdict::Improvement => "✅ improvement",
        Verdict::Inconclusive => "⚠️ inconclusive",
        Verdict::Regression => "❌ regression",
        Verdict::Changed => "🔶 changed",
    }
}

pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## modelwatch: {}\n\n{} vs {} · {} probes compared · exit code {}\n",
        badge(r.verdict),
        md(&r.baseline_label),
        md(&r.candidate_label),
        r.probes.compared,
        r.exit_code
    );
    for reason in &r.reasons {
        let _ = writeln!(out, "- {}", md(reason));
    }
    for (cat, title) in [
        (Category::Quality, "Quality"),
        (Category::Diagnostic, "Structured-output failures by kind"),
        (Category::Performance, "Performance (reported separately)"),
        (
            Category::Behaviour,
            "Served behaviour (a warning, not a quality verdict)",
        ),
    ] {
        if r.metrics_in(cat).next().is_none() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n### {title}\n\n| Metric | {} | {} | Effect [{:.0}% CI] | Test | Adj. p | Verdict |\n|---|---|---|---|---|---|---|",
            md(&r.baseline_label),
            md(&r.candidate_label),
            r.margins.confidence * 100.0
        );
        for m in r.metrics_in(cat) {
            let mut verdict = badge(m.verdict).to_string();
            if m.verdict == Verdict::Inconclusive
                && let Some(n) = m.more_samples
            {
                verdict.push_str(&format!(" (~{n} more samples)"));
            }
            if m.verdict == Verdict::Regression && !decides(r, m) {
                verdict.push_str(" (not gating)");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&m.label),
                md(&side_text(m, &m.baseline)),
                md(&side_text(m, &m.candidate)),
                md(&effect_text(m)),
                md(&m.test),
                md(&p_text(m)),
                verdict
            );
        }
    }
    let moved = moved_lines(r);
    if !moved.is_empty() {
        let _ = writeln!(out, "\n### Strata, shape and behaviour\n");
        for (label, line) in &moved {
            let _ = writeln!(out, "- **{}**: {}", md(label), md(line));
        }
    }
    if !r.flipped.is_empty() {
        let _ = writeln!(
            out,
            "\n### Flipped probes\n\n| Probe | Change | Values |\n|---|---|---|"
        );
        for f in &r.flipped {
            let _ = writeln!(
                out,
                "| {}/{} | {} | {} |",
                md(&f.suite),
                md(&f.probe_id),
                f.kind.describe(),
                md(&flip_values(f))
            );
        }
        let _ = writeln!(out, "\n<details><summary>Excerpts</summary>\n");
        for f in &r.flipped {
            let _ = writeln!(
                out,
                "**{}/{}** ({})\n",
                md(&f.suite),
                md(&f.probe_id),
                f.kind.describe()
            );
            for (label, e) in [
                (&r.baseline_label, &f.baseline_excerpt),
                (&r.candidate_label, &f.candidate_excerpt),
            ] {
                if let Some(e) = e {
                    let _ = writeln!(out, "> {}: {}\n", md(label), md(e));
                }
            }
        }
        let _ = writeln!(out, "</details>");
    }
    let a = &r.availability;
    let _ = writeln!(
        out,
        "\n_Infrastructure errors (never counted as quality): {} {}/{}, {} {}/{}._",
        md(&r.baseline_label),
        a.baseline.errors,
        a.baseline.requests,
        md(&r.candidate_label),
        a.candidate.errors,
        a.candidate.requests
    );
    if !r.probes.changed.is_empty() {
        let _ = writeln!(
            out,
            "\n_Changed probes, excluded: {}_",
            md(&r.probes.changed.join(", "))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::degraded_report;

    #[test]
    fn table_rows_and_escaped_excerpts() {
        let r = degraded_report();
        let m = markdown(&r);
        assert!(m.starts_with("## modelwatch: ❌ regression"));
        let row = m
            .lines()
            .find(|l| l.starts_with("| Refusal rate |"))
            .unwrap();
        assert_eq!(row.matches(" | ").count(), 6, "{row}");
        assert!(row.contains("❌ regression"));
        assert!(!m.contains("<script>"));
        assert!(m.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; I \"won't\" \\| help"));
        assert!(m.contains("| core/p002 | started refusing |"));
    }

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            md("a|b `c` *d* [e](f)\nnext"),
            "a\\|b \\`c\\` \\*d\\* \\[e\\](f) next"
        );
    }
}
