//! JUnit XML: one test case per metric and per flipped probe, for CI dashboards.
//!
//! A regression that decides the overall verdict is a `<failure>`; an inconclusive metric is
//! `<skipped>` with the reason; regressions that do not gate (diagnostic breakdowns, ungated
//! performance) and passes are passing test cases with a note in `<system-out>`.

use super::{decides, effect_text, flip_values, p_text, side_text};
use crate::drift::{Report, Verdict, describe};
use std::fmt::Write;

/// Escapes XML text and attribute values, dropping characters XML 1.0 forbids.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

struct Case {
    class: String,
    name: String,
    /// `("failure" | "skipped", message)`.
    outcome: Option<(&'static str, String)>,
    out: String,
}

/// One metric's test case: a gating regression fails, an inconclusive metric is skipped.
fn metric_case(r: &Report, m: &crate::drift::MetricResult) -> Case {
    let detail = format!(
        "{}: {} → {}; effect {}; {} adjusted p = {}; margin {}",
        m.metric.id(),
        side_text(m, &m.baseline),
        side_text(m, &m.candidate),
        effect_text(m),
        m.test,
        p_text(m),
        m.margin
    );
    let outcome = match m.verdict {
        Verdict::Regression if decides(r, m) => {
            Some(("failure", format!("regression: {}", describe(m))))
        }
        Verdict::Inconclusive => Some((
            "skipped",
            format!(
                "inconclusive: {}{}",
                describe(m),
                m.more_samples
                    .map(|n| format!("; about {n} more samples per side would settle it"))
                    .unwrap_or_default()
            ),
        )),
        _ => None,
    };
    let mut text = format!("{} ({})", detail, m.verdict);
    if let Some(d) = &m.detail {
        text.push_str(&format!("\n{d}"));
    }
    for s in &m.strata {
        text.push_str(&format!(
            "\n{} {}: {} (adj. p = {})",
            s.level,
            s.name,
            s.summary,
            crate::drift::fmt_p(s.p_adjusted)
        ));
    }
    Case {
        class: format!("modelwatch.{}", serde_plain(m.category)),
        name: m.metric.id(),
        outcome,
        out: text,
    }
}

pub fn junit(r: &Report) -> String {
    let mut cases: Vec<Case> = r.metrics.iter().map(|m| metric_case(r, m)).collect();
    for f in &r.flipped {
        let gating = r
            .metrics
            .iter()
            .any(|m| m.metric == f.metric && m.verdict == Verdict::Regression && decides(r, m));
        let text = format!(
            "{}/{} {}: {}\n{}: {}\n{}: {}",
            f.suite,
            f.probe_id,
            f.kind.describe(),
            flip_values(f),
            r.baseline_label,
            f.baseline_excerpt.as_deref().unwrap_or("(no text)"),
            r.candidate_label,
            f.candidate_excerpt.as_deref().unwrap_or("(no text)")
        );
        cases.push(Case {
            class: format!("modelwatch.probe.{}", f.suite),
            name: format!("{}: {}", f.probe_id, f.kind.describe()),
            outcome: gating.then(|| {
                (
                    "failure",
                    format!("{} {}: {}", f.probe_id, f.kind.describe(), flip_values(f)),
                )
            }),
            out: text,
        });
    }
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Some(("failure", _))))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Some(("skipped", _))))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"modelwatch\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\">",
        xml(&format!(
            "modelwatch {} vs {}: {}",
            r.baseline_label, r.candidate_label, r.verdict
        )),
        cases.len()
    );
    for c in &cases {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\">",
            xml(&c.class),
            xml(&c.name)
        );
        match &c.outcome {
            Some(("failure", msg)) => {
                let _ = write!(
                    out,
                    "<failure type=\"regression\" message=\"{}\">{}</failure>",
                    xml(msg),
                    xml(&c.out)
                );
            }
            Some((_, msg)) => {
                let _ = write!(out, "<skipped message=\"{}\"/>", xml(msg));
            }
            None => {}
        }
        let _ = writeln!(out, "<system-out>{}</system-out></testcase>", xml(&c.out));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn serde_plain(c: crate::drift::Category) -> &'static str {
    match c {
        crate::drift::Category::Quality => "quality",
        crate::drift::Category::Diagnostic => "diagnostic",
        crate::drift::Category::Performance => "performance",
        crate::drift::Category::Behaviour => "behaviour",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{degraded_report, passing_report};

    #[test]
    fn regressions_are_failures_and_text_is_escaped() {
        let r = degraded_report();
        let x = junit(&r);
        assert!(x.starts_with("<?xml"));
        let refusal = x
            .lines()
            .find(|l| l.contains("name=\"refusal_rate\""))
            .unwrap();
        assert!(
            refusal.contains("<failure type=\"regression\""),
            "{refusal}"
        );
        let flip = x
            .lines()
            .find(|l| l.contains("name=\"p002: started refusing\""))
            .unwrap();
        assert!(flip.contains("<failure"));
        assert!(!x.contains("<script>"));
        assert!(x.contains("&lt;script&gt;"));
        let cases = x.matches("<testcase ").count();
        assert_eq!(cases, r.metrics.len() + r.flipped.len());
        let failures = x.matches("<failure ").count();
        assert!(x.contains(&format!("failures=\"{failures}\"")));
    }

    #[test]
    fn a_pass_has_no_failures() {
        let x = junit(&passing_report());
        assert!(x.contains("failures=\"0\""), "{x}");
        assert!(!x.contains("<failure"));
    }

    #[test]
    fn xml_escaping_drops_forbidden_characters() {
        assert_eq!(xml("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }
}
