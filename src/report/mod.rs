//! Renderers of a drift [`Report`]: terminal table, JSON, Markdown, JUnit XML and HTML.
//!
//! Every renderer is a pure function from a report to a string; writing it somewhere is the
//! caller's job. The JSON layout is documented in `docs/verdicts.md`.

mod html;
mod junit;
mod markdown;
pub mod summary;
mod terminal;
pub mod timeline;
mod timeline_html;
pub mod timeline_load;

pub use html::html;
pub use junit::junit;
pub use markdown::markdown;
pub use terminal::terminal;
pub use timeline_html::timeline_html;

use crate::drift::{Category, MetricResult, Report, Side};

/// Output formats of the verdict commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// A table for the terminal (colour on a TTY).
    #[default]
    Text,
    /// Stable JSON for machines and CI.
    Json,
    /// Fit to paste into a pull request.
    Markdown,
    /// JUnit XML: one test case per metric and per flipped probe.
    Junit,
    /// One self-contained HTML file with inline SVG charts.
    Html,
}

/// An e-value as people read it: "evidence 8.1e6 of threshold 140" (the threshold is where
/// it decides), or "evidence 3.2" when no threshold applies.
pub fn evidence(value: f64, threshold: Option<f64>) -> String {
    match threshold {
        Some(t) => format!("evidence {} of threshold {}", short(value), short(t)),
        None => format!("evidence {}", short(value)),
    }
}

/// A positive magnitude in a few characters: `8.1e6`, `140`, `3.2`, `inf`.
fn short(v: f64) -> String {
    if !v.is_finite() {
        if v > 0.0 {
            "inf".into()
        } else {
            format!("{v}")
        }
    } else if v.abs() >= 1e4 {
        format!("{v:.1e}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Whether output to a stream is coloured: only on a terminal, and never while `NO_COLOR` is
/// set to anything non-empty (<https://no-color.org>).
pub fn color_allowed(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// [`color_allowed`] with this process's `NO_COLOR`.
pub fn use_color(is_terminal: bool) -> bool {
    color_allowed(is_terminal, std::env::var_os("NO_COLOR").as_deref())
}

/// Renders `report` in `format`; `color` only affects [`Format::Text`].
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Text => terminal(report, color),
        Format::Json => json(report),
        Format::Markdown => markdown(report),
        Format::Junit => junit(report),
        Format::Html => html(report),
    }
}

/// The report as pretty JSON (schema in `docs/verdicts.md`; non-finite numbers are `null`).
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        format!(
            "{{\"error\": {}}}",
            serde_json::Value::String(e.to_string())
        )
    });
    s.push('\n');
    s
}

/// Whether a metric's regression changes the overall verdict.
pub(crate) fn decides(report: &Report, m: &MetricResult) -> bool {
    m.category == Category::Quality
        || (m.category == Category::Performance && report.margins.performance_gates)
}

/// A side of a metric in a few characters: `4.0% (8/200)` or `median 412 (p90 730)`.
pub(crate) fn side_text(m: &MetricResult, s: &Side) -> String {
    if m.metric.is_distance() {
        let what = if m.metric == crate::drift::Metric::Behaviour {
            "texts"
        } else {
            "answers"
        };
        return if s.n > 0 {
            format!("{} {what}", s.n)
        } else {
            "no samples".into()
        };
    }
    if m.metric.is_rate() {
        match (s.rate, s.events) {
            (Some(r), Some(x)) => format!("{:.1}% ({x}/{})", r * 100.0, s.n),
            _ => "no samples".into(),
        }
    } else {
        let unit = if matches!(
            m.metric,
            crate::drift::Metric::Latency | crate::drift::Metric::Ttft
        ) {
            " ms"
        } else {
            ""
        };
        match (s.median, s.p90) {
            (Some(a), Some(b)) => format!("median {a:.0}{unit} (p90 {b:.0})"),
            _ => "no samples".into(),
        }
    }
}

/// The effect with its interval: `+12.0 pts [+8.1, +16.0]` or `+23.4% [+15.0, +32.1]`.
/// Cliff's delta, when the verdict rests on it: `δ +0.31 [+0.20, +0.42]`; a KS distance:
/// `D 0.34 [0.21, 0.47]`.
pub(crate) fn effect_text(m: &MetricResult) -> String {
    let e = &m.effect;
    let named = match e.measure.as_str() {
        "cliffs_delta" => Some(("δ", true)),
        "ks_distance" => Some(("D", false)),
        "mmd2" => Some(("MMD²", false)),
        _ => None,
    };
    if let Some((name, signed)) = named {
        let f = |x: f64| {
            let x = crate::util::zero_at_two_decimals(x);
            if signed {
                format!("{x:+.2}")
            } else {
                format!("{x:.2}")
            }
        };
        return match (e.estimate, e.lower, e.upper) {
            (Some(x), Some(l), Some(u)) => format!("{name} {} [{}, {}]", f(x), f(l), f(u)),
            (Some(x), _, _) => format!("{name} {}", f(x)),
            _ => "n/a".into(),
        };
    }
    let f = |x: f64| {
        if m.metric.is_rate() {
            format!("{:+.1}", x * 100.0)
        } else {
            format!("{:+.1}", (x.exp() - 1.0) * 100.0)
        }
    };
    let unit = if m.metric.is_rate() { " pts" } else { "%" };
    match (e.estimate, e.lower, e.upper) {
        (Some(x), Some(l), Some(u)) => format!("{}{unit} [{}, {}]", f(x), f(l), f(u)),
        (Some(x), _, _) => format!("{}{unit}", f(x)),
        _ => "n/a".into(),
    }
}

/// What moved beneath the pooled figures, one line per item: the words of a metric's effect
/// (length shape, behaviour) and each stratum that moved on its own. `(metric label, line)`.
pub(crate) fn moved_lines(r: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in &r.metrics {
        if let Some(d) = &m.detail
            && m.strata.is_empty()
        {
            out.push((m.label.clone(), d.clone()));
        }
        for s in &m.strata {
            let p = crate::drift::fmt_p(s.p_adjusted);
            let p = if p.starts_with('<') {
                format!("adj. p {p}")
            } else {
                format!("adj. p = {p}")
            };
            out.push((
                m.label.clone(),
                format!("{} {}: {} ({p})", s.level, s.name, s.summary),
            ));
        }
    }
    out
}

pub(crate) fn p_text(m: &MetricResult) -> String {
    m.p_adjusted
        .map(crate::drift::fmt_p)
        .unwrap_or_else(|| "n/a".into())
}

/// One probe flip's values: `5% → 100%` for rates, `412 → 690 chars` for lengths.
pub(crate) fn flip_values(f: &crate::drift::FlippedProbe) -> String {
    if f.metric.is_rate() {
        format!(
            "{:.0}% → {:.0}% ({} vs {} samples)",
            f.baseline_value * 100.0,
            f.candidate_value * 100.0,
            f.baseline_n,
            f.candidate_n
        )
    } else {
        format!(
            "median {:.0} → {:.0} chars",
            f.baseline_value, f.candidate_value
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::drift::tests::{Profile, synth};
    use crate::drift::{Margins, Report, compare};

    #[test]
    fn e_values_read_as_evidence_of_a_threshold() {
        use crate::report::evidence;
        assert_eq!(
            evidence(8.1e6, Some(140.0)),
            "evidence 8.1e6 of threshold 140"
        );
        assert_eq!(evidence(3.25, Some(20.0)), "evidence 3.2 of threshold 20.0");
        assert_eq!(evidence(f64::INFINITY, None), "evidence inf");
    }

    #[test]
    fn an_effect_a_hair_below_zero_prints_as_zero() {
        let mut m = degraded_report().metrics[0].clone();
        m.effect.measure = "mmd2".into();
        (m.effect.estimate, m.effect.lower, m.effect.upper) =
            (Some(-0.001), Some(-0.004), Some(0.02));
        assert_eq!(crate::report::effect_text(&m), "MMD² 0.00 [0.00, 0.02]");
        m.effect.lower = Some(-0.006);
        assert_eq!(crate::report::effect_text(&m), "MMD² 0.00 [-0.01, 0.02]");
    }

    /// A report with regressions, a flipped probe with awkward text, and errors.
    pub(crate) fn degraded_report() -> Report {
        let base = synth(Profile::default(), 31, 12, 15);
        let mut recent = synth(
            Profile {
                refusal: 0.2,
                json_fail: 0.3,
                median_chars: 650.0,
                error: 0.05,
                ..Profile::default()
            },
            32,
            12,
            15,
        );
        for s in recent.iter_mut().filter(|s| s.probe_id == "p002") {
            if let Some(m) = s.measurements.as_mut() {
                m.refusal = true;
                s.text = Some("<script>alert('x')</script> & I \"won't\" | help".into());
            }
        }
        compare(&base, &recent, &Margins::default()).with_labels("baseline.json", "recent")
    }

    pub(crate) fn passing_report() -> Report {
        let good = Profile {
            refusal: 0.0,
            task_fail: 0.0,
            ..Profile::default()
        };
        // Looser margins than the defaults so a small sample set can show non-inferiority.
        let margins = Margins {
            structured_points: 0.03,
            empty_points: 0.03,
            ..Margins::default()
        };
        let r = compare(&synth(good, 33, 20, 20), &synth(good, 34, 20, 20), &margins);
        assert_eq!(r.verdict, crate::drift::Verdict::Pass, "{:?}", r.reasons);
        r
    }

    #[test]
    fn json_is_stable_and_documented() {
        let r = degraded_report();
        let v: serde_json::Value = serde_json::from_str(&super::json(&r)).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["verdict"], "regression");
        assert_eq!(v["exit_code"], 1);
        let m = &v["metrics"][0];
        assert_eq!(m["metric"], "refusal_rate");
        for key in [
            "verdict",
            "test",
            "p_value",
            "p_adjusted",
            "e_value",
            "effect",
            "baseline",
            "candidate",
            "margin",
            "category",
        ] {
            assert!(m.get(key).is_some(), "missing {key}");
        }
        assert_eq!(m["effect"]["measure"], "rate_difference");
        assert!(m["baseline"]["n"].as_u64().unwrap() > 0);
        assert!(v.get("lengths").is_none(), "plot data stays out of JSON");
        assert_eq!(super::json(&r), super::json(&r));
    }
}
