use super::*;
use crate::sample::{ErrorKind, FinishReason, Measurements, SampleError, StructuredOutcome};

fn ok(target: &str, probe: &str, chars: u32, tokens: u32, latency: f64) -> Sample {
    Sample {
        seed: None,
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

#[test]
fn the_compact_table_puts_the_total_first_then_one_line_per_suite() {
    let s = summarize(&fixture());
    let chat = &s.targets[1];
    assert_eq!(
        chat.suites
            .iter()
            .map(|x| x.suite.as_str())
            .collect::<Vec<_>>(),
        ["core", "json"]
    );
    let probes_in = |suite: &str| chat.probes.iter().filter(|p| p.suite == suite).count();
    assert_eq!(probes_in("core") + probes_in("json"), chat.probes.len());
    let text = s.render_suites(false);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == "target chat").unwrap();
    assert!(lines[at + 1].trim_start().starts_with("suite"));
    assert!(lines[at + 2].trim_start().starts_with("total"));
    assert!(lines[at + 3].trim_start().starts_with("core "));
    assert!(lines[at + 4].trim_start().starts_with("json "));
    // The suite's figures are its probes pooled: the json suite is the one json probe here.
    let json = chat.suites.iter().find(|x| x.suite == "json").unwrap();
    let probe = chat.probes.iter().find(|p| p.suite == "json").unwrap();
    assert_eq!(json.figures, probe.figures);
    assert!(lines[at + 4].contains("66.7%"), "{}", lines[at + 4]);
    assert!(lines[at + 1].contains("json fail") && !lines[at + 1].contains("finish"));
    let widest = |t: &str| t.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest(&text) < widest(&s.render_text(false)));
    assert_eq!(strip_ansi(&s.render_suites(true)), text);
}

#[test]
fn colour_needs_a_terminal_and_no_no_color() {
    use crate::report::color_allowed;
    use std::ffi::OsStr;
    assert!(color_allowed(true, None));
    assert!(color_allowed(true, Some(OsStr::new(""))));
    assert!(!color_allowed(true, Some(OsStr::new("1"))));
    assert!(!color_allowed(false, None));
}
