//! The time view as one self-contained HTML page: no scripts, no external assets, small charts
//! as inline SVG (one per metric and target, rounds left to right), swap and alert markers on
//! every chart, the current verdicts as a table. Every piece of text is escaped.

use super::html::esc;
use super::timeline::{EvidenceSeries, Marker, Series, TargetTimeline, Timeline, num, num_from_ln};
use std::fmt::Write;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem auto;\
max-width:1200px;color:#222;padding:0 1rem}h1{font-size:1.4rem;margin-bottom:.2rem}\
h2{font-size:1.15rem;margin:2rem 0 .3rem}table{border-collapse:collapse;width:100%;font-size:.85rem}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}th{background:#f5f5f5}\
.muted{color:#666;font-size:.85rem}.silenced{color:#8a5a00;font-size:.85rem}.charts{display:flex;flex-wrap:wrap;gap:.6rem;margin:.6rem 0}\
figure{margin:0;border:1px solid #e3e3e3;border-radius:.3rem;padding:.3rem .4rem;width:270px}\
figcaption{font-size:.8rem;font-weight:600;display:flex;justify-content:space-between}\
figcaption .last{font-weight:400;color:#444}svg{display:block}\
.v{font-weight:600;padding:.1rem .4rem;border-radius:.25rem;font-size:.8rem}\
.ok{background:#d9f2dd;color:#17622a}.firing{background:#f8d7d7;color:#8b1a1a}\
.resolved{background:#dcecf7;color:#1b4f72}.nodata{background:#eee;color:#555}\
ul.events{font-size:.85rem;padding-left:1.2rem}.legend{font-size:.8rem;color:#444}\
.legend i{display:inline-block;width:1.2rem;height:0;border-top:2px solid;margin:0 .3rem 0 .8rem;\
vertical-align:middle}";

const LINE: &str = "#4e79a7";
const AVAILABILITY: &str = "#8c8c8c";
const BASELINE: &str = "#59a14f";
const SWAP: &str = "#b07aa1";
const ALERT: &str = "#e15759";
const W: f64 = 260.0;
const H: f64 = 70.0;
const PAD: f64 = 4.0;

/// The whole page. `refresh_secs` adds a meta refresh (the daemon's live page).
pub fn timeline_html(t: &Timeline, refresh_secs: Option<u32>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{}\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        refresh_secs
            .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
            .unwrap_or_default(),
        esc(&t.title),
        esc(&t.title)
    );
    let links: Vec<String> = t
        .links
        .iter()
        .map(|(label, href)| format!("<a href=\"{}\">{}</a>", esc(href), esc(label)))
        .collect();
    let _ = writeln!(
        o,
        "<p class=\"muted\" id=\"meta\">{} · generated {} · {} target{}{}{}</p>",
        esc(&t.window),
        esc(&crate::time::rfc3339_utc(t.generated_at_ms)),
        t.targets.len(),
        if t.targets.len() == 1 { "" } else { "s" },
        if links.is_empty() { "" } else { " · " },
        links.join(" · ")
    );
    let _ = writeln!(
        o,
        "<p class=\"legend\"><i style=\"border-color:{LINE}\"></i>per round\
         <i style=\"border-color:{BASELINE};border-top-style:dashed\"></i>baseline\
         <i style=\"border-color:{SWAP};border-top-style:dotted\"></i>model swap\
         <i style=\"border-color:{ALERT}\"></i>alert</p>"
    );
    if t.targets.is_empty() {
        o.push_str("<p id=\"empty\">No rounds stored yet in this window.</p>\n");
    }
    if t.targets.len() > 1 {
        o.push_str("<nav id=\"targets\">");
        for tt in &t.targets {
            let _ = write!(o, "<a href=\"#t-{0}\">{0}</a> ", esc(&tt.name));
        }
        o.push_str("</nav>\n");
    }
    for tt in &t.targets {
        target_section(&mut o, tt);
    }
    o.push_str("</body></html>\n");
    o
}

fn target_section(o: &mut String, t: &TargetTimeline) {
    let firing = t.verdicts.iter().filter(|v| v.status == "firing").count();
    let _ = writeln!(
        o,
        "<section class=\"target\" id=\"t-{0}\" data-target=\"{0}\">\n<h2>{0} \
         <span class=\"v {1}\">{2}</span></h2>\n<p class=\"muted\">model {3} · fingerprint {4} \
         · charted: {5} round{11}, {6} swap{7}, {8} alert event{9}{10}</p>",
        esc(&t.name),
        if firing > 0 { "firing" } else { "ok" },
        if firing > 0 {
            format!(
                "{firing} alert{} firing",
                if firing == 1 { "" } else { "s" }
            )
        } else {
            "no alert firing".to_string()
        },
        esc(&t.model),
        esc(t.fingerprint.as_deref().unwrap_or("unknown")),
        t.rounds.len(),
        t.swaps.len(),
        if t.swaps.len() == 1 { "" } else { "s" },
        t.alerts.len(),
        if t.alerts.len() == 1 { "" } else { "s" },
        t.link
            .as_ref()
            .map(|(label, href)| format!(
                " · <a class=\"more\" href=\"{}\">{}</a>",
                esc(href),
                esc(label)
            ))
            .unwrap_or_default(),
        if t.rounds.len() == 1 { "" } else { "s" },
    );
    for line in &t.silenced {
        let _ = writeln!(o, "<p class=\"silenced\">Silenced: {}</p>", esc(line));
    }
    verdict_table(o, t);
    o.push_str("<div class=\"charts\">\n");
    for s in &t.series {
        chart(o, t, s);
    }
    o.push_str("</div>\n");
    if !t.evidence.is_empty() {
        o.push_str(
            "<p class=\"muted evidence-note\">Evidence against the baseline after each round \
             (anytime-valid e-value, log scale): an alert fires where it crosses the threshold; \
             it starts again at 1 with a new baseline or a swap.</p>\n<div class=\"charts \
             evidence\">\n",
        );
        for e in &t.evidence {
            evidence_chart(o, t, e);
        }
        o.push_str("</div>\n");
    }
    events_list(o, t);
    o.push_str("</section>\n");
}

fn verdict_table(o: &mut String, t: &TargetTimeline) {
    if t.verdicts.is_empty() {
        o.push_str("<p class=\"muted verdicts-none\">No verdicts yet (no baseline, or no rounds since it).</p>\n");
        return;
    }
    o.push_str(
        "<table class=\"verdicts\"><tr><th>Metric</th><th>Status</th><th>Now</th>\
         <th>Baseline</th><th>Evidence</th><th>Samples</th><th>Summary</th></tr>\n",
    );
    for v in &t.verdicts {
        let evidence = match (v.e_value, v.threshold) {
            (Some(e), Some(th)) => format!("{} of threshold {}", num(e), num(th)),
            (Some(e), None) => num(e),
            _ => "–".into(),
        };
        // The names /metrics gives these values: modelwatch_length_placement and _spread.
        let shown = |x: f64| match v.metric.as_str() {
            "length_shape" => format!("spread {x:.2}"),
            m if m.starts_with("length") => format!("placement {x:.2}"),
            _ => value_text(x),
        };
        let _ = writeln!(
            o,
            "<tr data-metric=\"{0}\"><td title=\"{0}\">{1}</td><td><span class=\"v {2}\">{2}</span>\
             </td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td><td>{7}</td></tr>",
            esc(&v.metric),
            esc(&v.label),
            esc(&v.status),
            v.current.map_or("–".into(), shown),
            v.baseline.map_or("–".into(), shown),
            esc(&evidence),
            v.samples,
            esc(&v.summary)
        );
    }
    o.push_str("</table>\n");
}

/// A rate as a percentage, anything else as a number.
fn value_text(v: f64) -> String {
    if (0.0..=1.0).contains(&v) {
        format!("{:.1}%", v * 100.0)
    } else {
        num(v)
    }
}

fn fmt_value(s: &Series, v: f64) -> String {
    if s.is_rate {
        format!("{:.1}%", v * 100.0)
    } else {
        num(v)
    }
}

/// The x position of round `i` of `n`.
fn x_of(i: usize, n: usize) -> f64 {
    if n <= 1 {
        W / 2.0
    } else {
        PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
    }
}

/// The index of the first round starting at or after `at_ms` (the last round if none).
fn round_index(t: &TargetTimeline, at_ms: i64) -> Option<usize> {
    if t.rounds.is_empty() {
        return None;
    }
    Some(
        t.rounds
            .iter()
            .position(|r| r.started_at_ms >= at_ms)
            .unwrap_or(t.rounds.len() - 1),
    )
}

fn chart(o: &mut String, t: &TargetTimeline, s: &Series) {
    let n = s.values.len();
    let top = s
        .values
        .iter()
        .flatten()
        .copied()
        .chain(s.baseline)
        .fold(0.0f64, f64::max);
    let top = if s.is_rate {
        (top * 1.15).clamp(0.01, 1.0)
    } else {
        (top * 1.15).max(1.0)
    };
    let y_of = |v: f64| H - PAD - (H - 2.0 * PAD) * (v / top).clamp(0.0, 1.0);
    let last = s.values.iter().rev().flatten().next().copied();
    let _ = write!(
        o,
        "<figure class=\"chart\" data-metric=\"{0}\"><figcaption><span>{1}</span>\
         <span class=\"last\">{2}</span></figcaption>\
         <svg class=\"chart\" data-metric=\"{0}\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{1} per round\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fbfbfb\"/>\
         <text x=\"3\" y=\"9\" font-size=\"8\" fill=\"#888\">{3}</text>",
        esc(&s.id),
        esc(&s.label),
        last.map_or("no data".to_string(), |v| format!(
            "last {}",
            fmt_value(s, v)
        )),
        fmt_value(s, top),
    );
    markers(o, t, &s.id, n);
    if let Some(b) = s.baseline {
        let y = y_of(b);
        let _ = write!(
            o,
            "<line class=\"baseline\" x1=\"0\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
             stroke=\"{BASELINE}\" stroke-dasharray=\"4,3\"><title>baseline {}</title></line>",
            fmt_value(s, b)
        );
    }
    let color = if s.availability { AVAILABILITY } else { LINE };
    let mut path = String::new();
    for (i, v) in s.values.iter().enumerate() {
        match v {
            Some(v) => {
                let cmd = if path.is_empty() || s.values[i - 1].is_none() {
                    'M'
                } else {
                    'L'
                };
                let _ = write!(path, "{cmd}{:.1},{:.1} ", x_of(i, n), y_of(*v));
            }
            None => continue,
        }
    }
    if !path.is_empty() {
        let _ = write!(
            o,
            "<path class=\"series\" d=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>",
            path.trim_end()
        );
    }
    for (i, v) in s.values.iter().enumerate() {
        let Some(v) = v else { continue };
        let r = &t.rounds[i.min(t.rounds.len().saturating_sub(1))];
        let _ = write!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{color}\"><title>round {} · {} · {} \
             (n={})</title></circle>",
            x_of(i, n),
            y_of(*v),
            r.round,
            esc(&crate::time::rfc3339_utc(r.started_at_ms)),
            fmt_value(s, *v),
            s.counts.get(i).copied().unwrap_or(0)
        );
    }
    o.push_str("</svg></figure>\n");
}

/// The evidence for `e.metric` round by round, on a log scale from 1 (no evidence) to above
/// the threshold, with the threshold as a line.
fn evidence_chart(o: &mut String, t: &TargetTimeline, e: &EvidenceSeries) {
    let n = e.log_e.len();
    let log_th = e.threshold.max(std::f64::consts::E).ln();
    let highest = e.log_e.iter().flatten().copied().fold(0.0f64, f64::max);
    // Enough room to show the crossing; an e-value of 10^300 is not drawn to scale.
    let top = (highest * 1.1).clamp(log_th * 1.5, log_th * 4.0);
    let y_of = |l: f64| H - PAD - (H - 2.0 * PAD) * (l / top).clamp(0.0, 1.0);
    let last = e.log_e.iter().rev().flatten().next().copied();
    let _ = write!(
        o,
        "<figure class=\"chart evidence\" data-metric=\"{0}\"><figcaption><span>{1}</span>\
         <span class=\"last\">{2}</span></figcaption>\
         <svg class=\"evidence\" data-metric=\"{0}\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"evidence for {3} per round\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fbfbfb\"/>",
        esc(&e.metric),
        esc(&e.label),
        last.map_or("no data".to_string(), |l| format!(
            "{} of {}",
            num_from_ln(l),
            num(e.threshold)
        )),
        esc(&e.label),
    );
    markers(o, t, &e.metric, n);
    let y = y_of(log_th);
    let _ = write!(
        o,
        "<line class=\"threshold\" x1=\"0\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
         stroke=\"{ALERT}\" stroke-dasharray=\"4,3\"><title>threshold {}</title></line>",
        num(e.threshold)
    );
    let mut path = String::new();
    for (i, l) in e.log_e.iter().enumerate() {
        let Some(l) = l else { continue };
        let cmd = if path.is_empty() || e.log_e[i - 1].is_none() {
            'M'
        } else {
            'L'
        };
        let _ = write!(path, "{cmd}{:.1},{:.1} ", x_of(i, n), y_of(*l));
    }
    if !path.is_empty() {
        let _ = write!(
            o,
            "<path class=\"series\" d=\"{}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"1.5\"/>",
            path.trim_end()
        );
    }
    for (i, l) in e.log_e.iter().enumerate() {
        let Some(l) = l else { continue };
        let Some(r) = t.rounds.get(i) else { continue };
        let _ = write!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{LINE}\"><title>round {} · {} · \
             evidence {} of threshold {} (n={})</title></circle>",
            x_of(i, n),
            y_of(*l),
            r.round,
            esc(&crate::time::rfc3339_utc(r.started_at_ms)),
            num_from_ln(*l),
            num(e.threshold),
            e.samples.get(i).copied().unwrap_or(0)
        );
    }
    o.push_str("</svg></figure>\n");
}

/// The swaps, and the alerts of `metric`, as vertical lines over a chart of `n` rounds.
fn markers(o: &mut String, t: &TargetTimeline, metric: &str, n: usize) {
    for m in &t.swaps {
        marker_line(o, t, m, n, SWAP, "swap", "2,2");
    }
    for m in t
        .alerts
        .iter()
        .filter(|m| m.metric.as_deref() == Some(metric))
    {
        marker_line(o, t, m, n, ALERT, "alert", "");
    }
}

fn marker_line(
    o: &mut String,
    t: &TargetTimeline,
    m: &Marker,
    n: usize,
    color: &str,
    class: &str,
    dash: &str,
) {
    let Some(i) = round_index(t, m.at_ms) else {
        return;
    };
    let x = x_of(i, n);
    let _ = write!(
        o,
        "<line class=\"{class}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{H}\" stroke=\"{color}\" \
         stroke-width=\"1.5\" stroke-dasharray=\"{dash}\"><title>{}</title></line>",
        esc(&m.text)
    );
}

fn events_list(o: &mut String, t: &TargetTimeline) {
    let mut all: Vec<&Marker> = t.swaps.iter().chain(&t.alerts).collect();
    if all.is_empty() {
        return;
    }
    all.sort_by_key(|m| std::cmp::Reverse(m.at_ms));
    o.push_str("<ul class=\"events\">\n");
    for m in all.iter().take(20) {
        let _ = writeln!(
            o,
            "<li class=\"{}\">{} — {}</li>",
            esc(&m.kind),
            esc(&crate::time::rfc3339_utc(m.at_ms)),
            esc(&m.text)
        );
    }
    o.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::{RoundPoint, VerdictRow};

    fn page() -> Timeline {
        let rounds: Vec<RoundPoint> = (0..4)
            .map(|i| RoundPoint {
                round: i + 1,
                started_at_ms: 1000 * i,
                fingerprint: Some(if i < 2 { "aaa" } else { "bbb" }.into()),
                samples: 10,
                errors: 0,
            })
            .collect();
        let swaps = super::super::timeline::swaps(&rounds);
        Timeline {
            title: "modelwatch <status>".into(),
            window: "last 4 rounds".into(),
            generated_at_ms: 0,
            links: vec![("status JSON".into(), "/api/v1/status".into())],
            targets: vec![TargetTimeline {
                name: "chat".into(),
                model: "m".into(),
                fingerprint: Some("bbb".into()),
                series: vec![Series {
                    id: "refusal_rate".into(),
                    label: "Refusal rate".into(),
                    is_rate: true,
                    availability: false,
                    values: vec![Some(0.0), None, Some(0.1), Some(0.4)],
                    counts: vec![10, 0, 10, 10],
                    baseline: Some(0.05),
                }],
                evidence: vec![EvidenceSeries {
                    metric: "refusal_rate".into(),
                    label: "Refusal rate".into(),
                    threshold: 20.0,
                    log_e: vec![Some(0.0), None, Some(1.0), Some(1000.0)],
                    samples: vec![10, 0, 20, 30],
                }],
                rounds,
                swaps,
                alerts: vec![Marker {
                    at_ms: 3000,
                    metric: Some("refusal_rate".into()),
                    kind: "firing".into(),
                    text: "firing: refusal_rate".into(),
                }],
                verdicts: vec![VerdictRow {
                    metric: "refusal_rate".into(),
                    label: "Refusal rate".into(),
                    status: "firing".into(),
                    current: Some(0.4),
                    baseline: Some(0.05),
                    e_value: Some(8.1e6),
                    threshold: Some(20.0),
                    samples: 30,
                    summary: "<b>up</b>".into(),
                }],
                link: Some((
                    "report over 7 days".into(),
                    "/report?target=chat&since=7d".into(),
                )),
                silenced: vec!["all alerts muted until 2026-12-08T03:00:00Z: <deploy>".into()],
            }],
        }
    }

    #[test]
    fn the_page_has_charts_markers_verdicts_and_escapes_text() {
        let html = timeline_html(&page(), Some(60));
        for needle in [
            "<meta http-equiv=\"refresh\" content=\"60\">",
            "<title>modelwatch &lt;status&gt;</title>",
            "<section class=\"target\" id=\"t-chat\" data-target=\"chat\">",
            "<svg class=\"chart\" data-metric=\"refusal_rate\"",
            "<line class=\"swap\"",
            "<line class=\"alert\"",
            "<line class=\"baseline\"",
            "8.1 million of threshold 20.0",
            "&lt;b&gt;up&lt;/b&gt;",
            "1 alert firing",
            "<a class=\"more\" href=\"/report?target=chat&amp;since=7d\">report over 7 days</a>",
            "<a href=\"/api/v1/status\">status JSON</a>",
            "<svg class=\"evidence\" data-metric=\"refusal_rate\"",
            "aria-label=\"evidence for Refusal rate per round\"",
            "<line class=\"threshold\"",
            // An e-value past f64's range still reads as a number.
            "<span class=\"last\">2.0×10^434 of 20.0</span>",
            "evidence 2.72 of threshold 20.0 (n=20)",
            "<p class=\"silenced\">Silenced: all alerts muted until 2026-12-08T03:00:00Z: &lt;deploy&gt;</p>",
        ] {
            assert!(html.contains(needle), "page lacks {needle}:\n{html}");
        }
        assert!(!html.contains("<b>up</b>"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
        // The gap round breaks each line: two segments per chart, the second starting with M.
        assert_eq!(html.matches("<path class=\"series\" d=\"M").count(), 2);
        assert!(html.contains(" M"), "a gap starts a new segment");
    }

    #[test]
    fn length_values_carry_the_names_the_metrics_endpoint_gives_them() {
        let mut p = page();
        let row = p.targets[0].verdicts[0].clone();
        p.targets[0].verdicts = ["length_chars", "length_shape"]
            .into_iter()
            .map(|metric| VerdictRow {
                metric: metric.into(),
                current: Some(0.62),
                baseline: Some(0.5),
                ..row.clone()
            })
            .collect();
        let html = timeline_html(&p, None);
        let row_of = |metric: &str| {
            let at = html.find(&format!("data-metric=\"{metric}\"><td")).unwrap();
            html[at..].split("</tr>").next().unwrap().to_string()
        };
        assert!(row_of("length_chars").contains("placement 0.62"), "{html}");
        let shape = row_of("length_shape");
        assert!(
            shape.contains("spread 0.62") && shape.contains("spread 0.50"),
            "{shape}"
        );
        assert!(!shape.contains("placement"), "{shape}");
    }
}
