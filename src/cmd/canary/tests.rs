//! Unit tests of the canary's early decisions on fixed-sample reports.

use super::*;
use modelwatch::drift::{Margins, Metric};
use modelwatch::sample::{ErrorKind, Measurements, SampleError};

/// 10 probes × `per` samples; `refuses(probe, index)` decides the refusals.
fn side(target: &str, per: u32, refuses: impl Fn(usize, u32) -> bool) -> Vec<Sample> {
    let mut out = Vec::new();
    for p in 0..10 {
        for index in 0..per {
            let refusal = refuses(p, index);
            let (id, hash) = (format!("p{p}"), format!("h{p}"));
            out.push(Sample {
                latency_ms: 10.0,
                measurements: Some(Measurements {
                    chars: 100 + p as u32 + index % 7,
                    words: 20,
                    lines: 1,
                    output_tokens: 25 + index % 3,
                    refusal,
                    ..Measurements::default()
                }),
                ..Sample::pending(target, "s", &id, &hash, index, 0)
            });
        }
    }
    out
}

fn paired(cur: &[Sample], cand: &[Sample]) -> Report {
    drift::compare_paired(cur, cand, &Margins::default(), &Expectations::default())
}

#[test]
fn a_sequential_regression_decides_the_report() {
    // Few pairs: the fixed-sample report alone is not sure yet.
    let cur = side("a", 2, |_, _| false);
    let cand = side("b", 2, |p, _| p < 2);
    let mut r = paired(&cur, &cand);
    assert_ne!(r.verdict, Verdict::Regression, "{:?}", r.reasons);
    apply_early(
        &mut r,
        &Early::Regression(vec![Metric::RefusalRate]),
        &[],
        (140.0, None),
    );
    assert_eq!(
        (r.verdict, r.exit_code),
        (Verdict::Regression, EXIT_REGRESSION)
    );
    let m = r
        .metrics
        .iter()
        .find(|m| m.metric == Metric::RefusalRate)
        .unwrap();
    assert_eq!(m.verdict, Verdict::Regression);
    assert!(r.reasons.iter().any(|x| x.contains("anytime-valid")));
    assert!(
        r.reasons.iter().any(|x| x.contains("of threshold 140)")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn sequential_non_inferiority_passes_inconclusive_rates_only() {
    let cur = side("a", 3, |_, _| false);
    let cand = side("b", 3, |_, _| false);
    let mut r = paired(&cur, &cand);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    apply_early(&mut r, &Early::NonInferior, &[], (140.0, None));
    for m in r.metrics.iter().filter(|m| m.category == Category::Quality) {
        if m.metric.is_rate() {
            assert_eq!(m.verdict, Verdict::Pass, "{:?}", m.metric);
        }
    }
    // Lengths stay with the fixed-sample tests; whatever they say decides the rest.
    let lengths_pass = r
        .metrics
        .iter()
        .filter(|m| m.category == Category::Quality && !m.metric.is_rate())
        .all(|m| matches!(m.verdict, Verdict::Pass | Verdict::Improvement));
    assert_eq!(r.verdict == Verdict::Pass, lengths_pass);
}

#[test]
fn an_early_decision_keeps_the_warnings() {
    let warning = "warning: the served behaviour changed (not a quality verdict): x";
    let cur = side("a", 2, |_, _| false);
    let cand = side("b", 2, |p, _| p < 2);
    let mut r = paired(&cur, &cand);
    r.reasons.push(warning.into());
    let early = Early::Regression(vec![Metric::RefusalRate]);
    apply_early(&mut r, &early, &[], (140.0, None));
    assert_eq!(r.verdict, Verdict::Regression);
    assert_eq!(r.reasons.last().map(String::as_str), Some(warning));

    let same = side("a", 20, |_, _| false);
    let mut r = paired(&same, &side("b", 20, |_, _| false));
    r.reasons.push(warning.into());
    apply_early(&mut r, &Early::NonInferior, &[], (140.0, None));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    assert!(r.reasons[0].starts_with("all "), "{:?}", r.reasons);
    assert_eq!(r.reasons.last().map(String::as_str), Some(warning));
}

#[test]
fn an_unmeasured_side_is_never_overridden() {
    let cur = side("a", 2, |_, _| false);
    let mut cand = side("b", 2, |p, _| p < 4);
    for s in cand.iter_mut().skip(5) {
        s.measurements = None;
        s.error = Some(SampleError::new(ErrorKind::Connect, "refused"));
    }
    let mut r = paired(&cur, &cand);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    let before = r.clone();
    apply_early(
        &mut r,
        &Early::Regression(vec![Metric::RefusalRate]),
        &[],
        (140.0, None),
    );
    assert_eq!(r, before);
}
