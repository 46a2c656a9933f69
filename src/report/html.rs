//! One self-contained HTML file: no scripts, no external assets, charts as inline SVG.
//! Every piece of text from the report is escaped.

use super::{decides, effect_text, flip_values, moved_lines, p_text, side_text};
use crate::drift::{Category, MetricResult, Report, SuiteLengths, Verdict};
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const BASE_COLOR: &str = "#4e79a7";
const CAND_COLOR: &str = "#f28e2b";

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;\
max-width:1100px;color:#222;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid #ddd;\
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f5f5f5}\
.v{font-weight:600;padding:.1rem .4rem;border-radius:.25rem}.pass{background:#d9f2dd;color:#17622a}\
.improvement{background:#dcecf7;color:#1b4f72}.inconclusive{background:#fdf1d3;color:#7a5a00}\
.regression{background:#f8d7d7;color:#8b1a1a}.changed{background:#fde2c8;color:#8a4b00}.excerpt{font-family:ui-monospace,monospace;\
font-size:.8rem;white-space:pre-wrap;background:#fafafa}.muted{color:#666}svg{display:block;\
margin:.5rem 0}.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;\
vertical-align:middle}";

fn badge(v: Verdict) -> String {
    format!("<span class=\"v {0}\">{0}</span>", v.as_str())
}

pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let title = format!(
        "modelwatch: {} vs {} — {}",
        r.baseline_label, r.candidate_label, r.verdict
    );
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(
        o,
        "<h1 id=\"verdict\" data-verdict=\"{v}\">modelwatch verdict: {}</h1>\
         <p class=\"muted\">{} vs {} · {} probes compared · exit code {}</p>",
        badge(r.verdict),
        esc(&r.baseline_label),
        esc(&r.candidate_label),
        r.probes.compared,
        r.exit_code,
        v = r.verdict.as_str()
    );
    o.push_str("<ul id=\"reasons\">");
    for reason in &r.reasons {
        let _ = write!(o, "<li>{}</li>", esc(reason));
    }
    o.push_str("</ul>\n");
    metric_table(&mut o, r);
    let moved = moved_lines(r);
    if !moved.is_empty() {
        o.push_str("<h2>Strata, shape and behaviour</h2><ul id=\"moved\">");
        for (label, line) in &moved {
            let _ = write!(o, "<li><strong>{}</strong>: {}</li>", esc(label), esc(line));
        }
        o.push_str("</ul>\n");
    }
    rate_chart(&mut o, r);
    for s in &r.lengths {
        ecdf(&mut o, r, s);
    }
    flipped(&mut o, r);
    let a = &r.availability;
    let _ = writeln!(
        o,
        "<h2>Availability</h2><p>Infrastructure errors are never counted as quality. {}: {} of \
         {} requests failed. {}: {} of {} failed.</p>",
        esc(&r.baseline_label),
        a.baseline.errors,
        a.baseline.requests,
        esc(&r.candidate_label),
        a.candidate.errors,
        a.candidate.requests
    );
    if !r.probes.changed.is_empty() {
        let _ = writeln!(
            o,
            "<p>Changed probes, excluded: {}</p>",
            esc(&r.probes.changed.join(", "))
        );
    }
    o.push_str("</body></html>\n");
    o
}

fn metric_table(o: &mut String, r: &Report) {
    let _ = write!(
        o,
        "<h2>Metrics</h2><table id=\"metrics\"><thead><tr><th>Metric</th><th>{}</th><th>{}</th>\
         <th>Effect [{:.0}% CI]</th><th>Test</th><th>Adj. p</th><th>Margin</th><th>Verdict</th>\
         </tr></thead><tbody>",
        esc(&r.baseline_label),
        esc(&r.candidate_label),
        r.margins.confidence * 100.0
    );
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
        let _ = write!(o, "<tr><th colspan=\"8\">{title}</th></tr>");
        for m in r.metrics_in(cat) {
            let mut note = String::new();
            if m.verdict == Verdict::Inconclusive
                && let Some(n) = m.more_samples
            {
                note = format!(" <span class=\"muted\">~{n} more samples</span>");
            }
            if m.verdict == Verdict::Regression && !decides(r, m) {
                note = " <span class=\"muted\">not gating</span>".into();
            }
            let _ = write!(
                o,
                "<tr data-metric=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}{note}</td></tr>",
                esc(&m.metric.id()),
                esc(&m.label),
                esc(&side_text(m, &m.baseline)),
                esc(&side_text(m, &m.candidate)),
                esc(&effect_text(m)),
                esc(&m.test),
                esc(&p_text(m)),
                esc(&m.margin),
                badge(m.verdict)
            );
        }
    }
    o.push_str("</tbody></table>\n");
}

fn legend(o: &mut String, r: &Report) {
    let _ = write!(
        o,
        "<p class=\"legend\"><span style=\"background:{BASE_COLOR}\"></span>{}\
         <span style=\"background:{CAND_COLOR}\"></span>{}</p>",
        esc(&r.baseline_label),
        esc(&r.candidate_label)
    );
}

/// Horizontal bars per rate, baseline above candidate, with Wilson interval whiskers.
fn rate_chart(o: &mut String, r: &Report) {
    let rates: Vec<&MetricResult> = r
        .metrics
        .iter()
        .filter(|m| m.metric.is_rate() && m.baseline.n > 0 && m.candidate.n > 0)
        .collect();
    if rates.is_empty() {
        return;
    }
    let max = rates
        .iter()
        .flat_map(|m| [m.baseline.upper, m.candidate.upper])
        .flatten()
        .fold(0.05f64, f64::max)
        .min(1.0);
    let (x0, width, row) = (230.0, 380.0, 46.0);
    let height = row * rates.len() as f64 + 30.0;
    let x = |v: f64| x0 + width * (v / max).clamp(0.0, 1.0);
    o.push_str("<h2>Rates</h2>");
    legend(o, r);
    let _ = write!(
        o,
        "<svg id=\"rates\" xmlns=\"http://www.w3.org/2000/svg\" width=\"660\" height=\"{height}\" \
         viewBox=\"0 0 660 {height}\" role=\"img\" aria-label=\"Rates with confidence intervals\">"
    );
    for (i, m) in rates.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let _ = write!(
            o,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 20.0,
            esc(&m.label)
        );
        for (k, side, color) in [
            (0.0, &m.baseline, BASE_COLOR),
            (1.0, &m.candidate, CAND_COLOR),
        ] {
            let yy = y + k * 18.0;
            let rate = side.rate.unwrap_or(0.0);
            let _ = write!(
                o,
                "<rect x=\"{x0}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{color}\">\
                 <title>{}</title></rect>",
                x(rate) - x0,
                esc(&side_text(m, side))
            );
            if let (Some(lo), Some(hi)) = (side.lower, side.upper) {
                let ym = yy + 7.0;
                let _ = write!(
                    o,
                    "<path d=\"M{:.1} {ym:.1}H{:.1}M{:.1} {:.1}V{:.1}M{:.1} {:.1}V{:.1}\" \
                     stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\"/>",
                    x(lo),
                    x(hi),
                    x(lo),
                    ym - 5.0,
                    ym + 5.0,
                    x(hi),
                    ym - 5.0,
                    ym + 5.0
                );
            }
        }
    }
    let axis_y = row * rates.len() as f64 + 10.0;
    for t in [0.0, max / 2.0, max] {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{:.1}%</text>",
            x(t),
            axis_y + 12.0,
            t * 100.0
        );
    }
    o.push_str("</svg>\n");
}

/// At most `points` (value, cumulative share) steps of the empirical CDF.
fn ecdf_points(values: &[f64], points: usize) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(points).max(1);
    let mut out: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (v[i], (i + 1) as f64 / n as f64))
        .collect();
    out.push((v[n - 1], 1.0));
    out
}

/// Overlaid length ECDFs of one suite.
fn ecdf(o: &mut String, r: &Report, s: &SuiteLengths) {
    let (pb, pc) = (
        ecdf_points(&s.baseline, 300),
        ecdf_points(&s.candidate, 300),
    );
    if pb.is_empty() && pc.is_empty() {
        return;
    }
    let max = pb.iter().chain(&pc).map(|p| p.0).fold(1.0f64, f64::max);
    let (x0, y0, w, h) = (50.0, 10.0, 580.0, 200.0);
    let px = |v: f64| x0 + w * v / max;
    let py = |q: f64| y0 + h * (1.0 - q);
    let _ = write!(o, "<h2>Length distribution: suite {}</h2>", esc(&s.suite));
    legend(o, r);
    let _ = write!(
        o,
        "<svg class=\"ecdf\" data-suite=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"660\" \
         height=\"250\" viewBox=\"0 0 660 250\" role=\"img\" aria-label=\"Empirical CDF of \
         response length in characters\"><path d=\"M{x0} {y0}V{:.1}H{:.1}\" stroke=\"#888\" \
         fill=\"none\"/>",
        esc(&s.suite),
        y0 + h,
        x0 + w
    );
    for (pts, color) in [(&pb, BASE_COLOR), (&pc, CAND_COLOR)] {
        if pts.is_empty() {
            continue;
        }
        let mut d = format!("M{:.1} {:.1}", px(pts[0].0), py(0.0));
        for &(v, q) in pts.iter() {
            let _ = write!(d, "H{:.1}V{:.1}", px(v), py(q));
        }
        let _ = write!(
            o,
            "<path d=\"{d}\" stroke=\"{color}\" stroke-width=\"2\" fill=\"none\"/>"
        );
    }
    for t in [0.0, max / 2.0, max] {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{t:.0}</text>",
            px(t),
            y0 + h + 16.0
        );
    }
    for q in [0.0, 0.5, 1.0] {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{q}</text>",
            x0 - 6.0,
            py(q) + 4.0
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"245\" font-size=\"11\" text-anchor=\"middle\">characters</text></svg>",
        x0 + w / 2.0
    );
}

fn flipped(o: &mut String, r: &Report) {
    if r.flipped.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<h2>Flipped probes</h2><table id=\"flipped\"><thead><tr><th>Probe</th><th>Change</th>\
         <th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(&r.baseline_label),
        esc(&r.candidate_label)
    );
    for f in &r.flipped {
        let _ = write!(
            o,
            "<tr><td>{}/{}</td><td>{}<br><span class=\"muted\">{}</span></td>\
             <td class=\"excerpt\">{}</td><td class=\"excerpt\">{}</td></tr>",
            esc(&f.suite),
            esc(&f.probe_id),
            esc(f.kind.describe()),
            esc(&flip_values(f)),
            esc(f.baseline_excerpt.as_deref().unwrap_or("")),
            esc(f.candidate_excerpt.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{degraded_report, passing_report};

    #[test]
    fn self_contained_with_charts_and_escaped_text() {
        let r = degraded_report();
        let h = html(&r);
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert!(h.contains("data-verdict=\"regression\""));
        assert!(h.contains("<svg id=\"rates\""));
        assert_eq!(
            h.matches("<svg class=\"ecdf\"").count(),
            2,
            "core and json suites"
        );
        assert!(h.contains("<table id=\"flipped\">"));
        assert!(!h.contains("<script"), "text is escaped, no scripts");
        assert!(h.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; I &quot;won&#39;t&quot;"
        ));
        for external in ["src=", "href=", "url(", "@import"] {
            assert!(!h.contains(external), "external reference {external}");
        }
        // Two bars and two whiskers per rate shown.
        let rates = r
            .metrics
            .iter()
            .filter(|m| m.metric.is_rate() && m.baseline.n > 0 && m.candidate.n > 0)
            .count();
        let svg = &h[h.find("<svg id=\"rates\"").unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        assert_eq!(svg.matches("<rect ").count(), 2 * rates);
        assert_eq!(svg.matches("<path ").count(), 2 * rates);
    }

    #[test]
    fn ecdf_ends_at_one_and_is_monotone() {
        let pts = ecdf_points(&[3.0, 1.0, 2.0, 2.0, f64::NAN], 300);
        assert_eq!(pts.first().unwrap(), &(1.0, 0.25));
        assert_eq!(pts.last().unwrap(), &(3.0, 1.0));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let many: Vec<f64> = (0..10_000).map(f64::from).collect();
        assert!(ecdf_points(&many, 300).len() <= 302);
    }

    #[test]
    fn a_pass_renders_without_flips() {
        let h = html(&passing_report());
        assert!(h.contains("data-verdict=\"pass\""));
        assert!(!h.contains("id=\"flipped\""));
    }
}
