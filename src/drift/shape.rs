//! Length as a distribution: a test of shape per suite, beside the location shift.
//!
//! A swap that makes some answers much shorter and others much longer keeps the median (and
//! so the location tests) where it was. Per suite, answers' lengths (refusals and empty
//! responses set apart) are normalised per probe like the location test (`ln(1 + chars)` minus
//! the probe's baseline median, so the probe mix does not matter), each side centred on its
//! own median (the location test already judges location), then compared with the two-sample
//! Kolmogorov–Smirnov test (Smirnov 1939). Centring on estimated medians makes the KS null
//! law approximate (it brings the samples closer, so the test errs conservative); the null
//! scenarios of the tests and the bench check the false-flag rate. Suites are combined with Holm's step-down
//! adjustment (Holm 1979), valid under any dependence; the smallest adjusted p-value is the
//! metric's p-value and enters the Benjamini–Hochberg family with the other metrics.
//!
//! The effect is the KS distance D (largest gap between the two CDFs) of the suite that moved
//! most, with the band D ± c·√((n+m)/(nm)), c = √(−ln((1 − conf)/2)/2) (the Kolmogorov
//! critical value; 1.358 at 95 %). A regression needs the adjusted p below alpha and D at or
//! beyond `Margins::length_shape_ks`; a pass needs every suite's upper end below it. The words
//! (`detail`) come from the raw lengths: the tail quantile that moved more and the share of
//! answers beyond the baseline's p10 or p90.

use super::analyze::{Basis, is_answer};
use super::prepare::Obs;
use super::{Category, Effect, Margins, Metric, MetricResult, Side, Stratum, Verdict};
use crate::stats::quantile as quantile_sorted;
use crate::stats::{Alternative, KsMethod, holm, ks_2samp};
use std::collections::BTreeMap;

/// Fewest answers per side for a suite to be tested.
const MIN_PER_SIDE: usize = 5;

/// One suite's normalised and raw answer lengths.
#[derive(Default)]
struct SuiteData {
    nb: Vec<f64>,
    nc: Vec<f64>,
    rb: Vec<f64>,
    rc: Vec<f64>,
}

/// One suite's test.
struct SuiteTest {
    suite: String,
    d: f64,
    half: f64,
    p: f64,
    p_holm: f64,
    n: (usize, usize),
    words: String,
}

fn by_suite(probes: &[(String, String)], b: &[Obs], c: &[Obs]) -> BTreeMap<String, SuiteData> {
    let mut refs: Vec<Vec<f64>> = vec![Vec::new(); probes.len()];
    for o in b.iter().filter(|o| is_answer(o)) {
        refs[o.probe].push(f64::from(o.m.chars).ln_1p());
    }
    let refs: Vec<Option<f64>> = refs
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            quantile_sorted(v, 0.5)
        })
        .collect();
    let mut out: BTreeMap<String, SuiteData> = BTreeMap::new();
    for (side, obs) in [(0, b), (1, c)] {
        for o in obs.iter().filter(|o| is_answer(o)) {
            let Some(r) = refs[o.probe] else { continue };
            let raw = f64::from(o.m.chars);
            let e = out.entry(probes[o.probe].0.clone()).or_default();
            let (n, rw) = if side == 0 {
                (&mut e.nb, &mut e.rb)
            } else {
                (&mut e.nc, &mut e.rc)
            };
            n.push(raw.ln_1p() - r);
            rw.push(raw);
        }
    }
    out
}

/// Subtracts the median: the shape test looks past a change of location, which the
/// location test (Hodges–Lehmann, Cliff's delta) already judges.
fn centre(v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    if let Some(m) = quantile_sorted(v, 0.5) {
        v.iter_mut().for_each(|x| *x -= m);
    }
}

/// The Kolmogorov critical constant at confidence `conf`: √(−ln((1 − conf)/2)/2).
pub(crate) fn kolmogorov_c(conf: f64) -> f64 {
    (-((1.0 - conf) / 2.0).ln() / 2.0).sqrt()
}

fn share(v: &[f64], pred: impl Fn(f64) -> bool) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().filter(|&&x| pred(x)).count() as f64 / v.len() as f64
    }
}

/// The shape change in words, from raw lengths (sorted in place).
pub(crate) fn words(suite: &str, rb: &mut [f64], rc: &mut [f64]) -> String {
    rb.sort_by(f64::total_cmp);
    rc.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| quantile_sorted(v, p).unwrap_or(0.0);
    let (b10, b90, c10, c90) = (q(rb, 0.1), q(rb, 0.9), q(rc, 0.1), q(rc, 0.9));
    let lr = |c: f64, b: f64| ((1.0 + c) / (1.0 + b)).ln();
    let (qname, qb, qc) = if lr(c90, b90).abs() >= lr(c10, b10).abs() {
        ("p90", b90, c90)
    } else {
        ("p10", b10, c10)
    };
    let change = if qb > 0.0 {
        format!("{:+.0}%", (qc / qb - 1.0) * 100.0)
    } else {
        "from 0".into()
    };
    let under = (share(rb, |x| x < b10), share(rc, |x| x < b10));
    let over = (share(rb, |x| x > b90), share(rc, |x| x > b90));
    let (dir, at, (sb, sc)) = if (under.1 - under.0).abs() >= (over.1 - over.0).abs() {
        ("under", b10, under)
    } else {
        ("over", b90, over)
    };
    format!(
        "{suite}: {qname} length {change} ({qb:.0} → {qc:.0} chars); answers {dir} {at:.0} \
         chars {:.0}% → {:.0}%",
        sb * 100.0,
        sc * 100.0
    )
}

fn tests(data: BTreeMap<String, SuiteData>, conf: f64) -> Vec<SuiteTest> {
    let c = kolmogorov_c(conf);
    let mut out = Vec::new();
    for (suite, mut d) in data {
        if d.nb.len() < MIN_PER_SIDE || d.nc.len() < MIN_PER_SIDE {
            continue;
        }
        centre(&mut d.nb);
        centre(&mut d.nc);
        let Ok(t) = ks_2samp(&d.nc, &d.nb, Alternative::TwoSided, KsMethod::Auto) else {
            continue;
        };
        let (n, m) = (d.nb.len() as f64, d.nc.len() as f64);
        let words = words(&suite, &mut d.rb, &mut d.rc);
        out.push(SuiteTest {
            suite,
            d: t.statistic,
            half: c * ((n + m) / (n * m)).sqrt(),
            p: t.p_value,
            p_holm: 1.0,
            n: (d.nb.len(), d.nc.len()),
            words,
        });
    }
    let adjusted = holm(&out.iter().map(|t| t.p).collect::<Vec<_>>());
    for (t, p) in out.iter_mut().zip(adjusted) {
        t.p_holm = p;
    }
    out
}

/// The `length_shape` metric: per-suite KS tests on answers' lengths, Holm across suites.
pub(crate) fn length_shape(
    probes: &[(String, String)],
    b: &[Obs],
    c: &[Obs],
    margins: &Margins,
) -> Option<(MetricResult, Basis)> {
    let suites = tests(by_suite(probes, b, c), margins.confidence);
    let margin = margins.length_shape_ks;
    // The suite the effect is shown for: the most significant, then the largest D.
    let worst = suites.iter().min_by(|x, y| {
        x.p_holm
            .total_cmp(&y.p_holm)
            .then_with(|| y.d.total_cmp(&x.d))
    })?;
    let moved_words: Vec<&str> = suites
        .iter()
        .filter(|t| t.p_holm < margins.alpha && t.d >= margin)
        .map(|t| t.words.as_str())
        .collect();
    let moved: Vec<Stratum> = suites
        .iter()
        .filter(|t| t.p_holm < margins.alpha && t.d >= margin)
        .map(|t| Stratum {
            level: "suite".into(),
            name: t.suite.clone(),
            baseline_n: t.n.0 as u64,
            candidate_n: t.n.1 as u64,
            baseline_rate: None,
            candidate_rate: None,
            p_adjusted: t.p_holm,
            // The stratum names its suite already: its words without the "core: " prefix.
            summary: format!(
                "{} (KS D = {:.2})",
                t.words
                    .strip_prefix(&format!("{}: ", t.suite))
                    .unwrap_or(&t.words),
                t.d
            ),
        })
        .collect();
    // Pass needs every suite's band below the margin; the suite furthest from that decides
    // how many more samples would settle it.
    let widest = suites
        .iter()
        .max_by(|x, y| (x.d + x.half).total_cmp(&(y.d + y.half)))?;
    let side = |n: usize| Side {
        n: n as u64,
        events: None,
        rate: None,
        lower: None,
        upper: None,
        median: None,
        p90: None,
    };
    let (nb, nc) = suites
        .iter()
        .fold((0, 0), |acc, t| (acc.0 + t.n.0, acc.1 + t.n.1));
    let result = MetricResult {
        metric: Metric::LengthShape,
        label: Metric::LengthShape.label(),
        category: Category::Quality,
        verdict: Verdict::Inconclusive,
        test: "kolmogorov_smirnov_holm".into(),
        p_value: Some(worst.p_holm),
        p_adjusted: None,
        e_value: None,
        effect: Effect {
            measure: "ks_distance".into(),
            estimate: Some(worst.d),
            lower: Some((worst.d - worst.half).max(0.0)),
            upper: Some((worst.d + worst.half).min(1.0)),
        },
        secondary: None,
        baseline: side(nb),
        candidate: side(nc),
        margin: format!("KS distance ≥ {margin} in a suite"),
        more_samples: None,
        detail: Some(if moved_words.is_empty() {
            worst.words.clone()
        } else {
            moved_words.join("; ")
        }),
        strata: moved,
    };
    let basis = Basis::Shape {
        moved: !result.strata.is_empty(),
        upper: widest.d + widest.half,
        d: widest.d,
        half: widest.half,
        margin,
        n: widest.n.0.min(widest.n.1) as u64,
    };
    Some((result, basis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_constant_matches_the_table() {
        assert!((kolmogorov_c(0.95) - 1.3581).abs() < 1e-3);
        assert!((kolmogorov_c(0.99) - 1.6276).abs() < 1e-3);
    }

    #[test]
    fn words_name_the_tail_that_moved() {
        let mut b: Vec<f64> = (0..100).map(|i| 100.0 + f64::from(i)).collect();
        // Equal median, a third of the answers very short and a third very long.
        let mut c: Vec<f64> = (0..100)
            .map(|i| match i % 3 {
                0 => 10.0,
                1 => 150.0,
                _ => 600.0,
            })
            .collect();
        let w = words("core", &mut b, &mut c);
        assert!(
            w.starts_with("core: p10 length -91% (110 → 10 chars)"),
            "{w}"
        );
        assert!(w.contains("answers under 110 chars 10% → 34%"), "{w}");
    }
}
