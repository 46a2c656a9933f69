//! Per-metric tests and decisions.
//!
//! The binary quality metrics are also tested per suite and per probe; their p-value is the
//! weighted Bonferroni combination of the pooled and the per-stratum tests (see `strata`).
//! Rates, unpaired: Fisher's exact test on counts pooled over probes, with Newcombe's hybrid
//! score interval for the difference. Pooling is valid because every probe contributes the
//! same number of samples to both sides in a balanced recording; per-probe changes are looked
//! at separately (flipped probes). Rates, paired: exact McNemar on the discordant pairs and
//! Newcombe's paired interval (1998b, method 10), which the agreement of the pairs narrows.
//! Distributions: each value is `ln(1 + x)` minus its probe's baseline median, so probes of
//! different natural lengths pool into one shift; then Mann–Whitney U (two-sided), Cliff's
//! delta and the Hodges–Lehmann shift, each with an interval.

use super::calls::{
    cliffs_delta, fisher_p, hodges_lehmann, mcnemar_p, rate_difference, rate_interval, shift_p,
};
use super::metric::BINARY;
use super::prepare::Obs;
use super::strata::{StrataMargins, stratified};
use super::{Effect, Margins, Metric, MetricResult, Side, Verdict};
use crate::stats::Interval;

/// What a decision needs beyond the result itself.
pub(crate) enum Basis {
    Rate {
        xb: u64,
        nb: u64,
        xc: u64,
        nc: u64,
        margin: f64,
        /// Minimum relative risk for a regression (refusal only).
        min_rr: Option<f64>,
        /// A suite or probe moved on its own beyond its margin (see `strata`).
        strata_moved: bool,
        /// Paired designs: the 2×2 table (bad on both, baseline only, candidate only,
        /// neither), for the paired interval.
        table: Option<[u64; 4]>,
    },
    Shift {
        /// Hodges–Lehmann shift of log values and Cliff's delta, with intervals.
        hl: [f64; 3],
        cd: [f64; 3],
        log_margin: f64,
        cd_margin: f64,
        /// Lengths: a change either way counts. Times: only slower counts.
        two_sided: bool,
        n: u64,
    },
    /// Length shape: the suite whose KS band reaches highest decides a pass.
    Shape {
        /// A suite moved significantly and beyond the margin.
        moved: bool,
        /// Highest upper end of a suite's KS band, with that suite's D and half-width.
        upper: f64,
        d: f64,
        half: f64,
        margin: f64,
        n: u64,
    },
    /// One side has no samples for the metric: nothing to decide.
    Unmeasured,
    /// The metric decided its own verdict (behaviour, in a family of its own).
    Decided,
}

fn rate_side(x: u64, n: u64, confidence: f64) -> Side {
    let ci = rate_interval(x, n, confidence);
    Side {
        n,
        events: Some(x),
        rate: (n > 0).then(|| x as f64 / n as f64),
        lower: ci.map(|c| c.lower),
        upper: ci.map(|c| c.upper),
        median: None,
        p90: None,
    }
}

pub(crate) fn rate_margin(metric: Metric, m: &Margins) -> f64 {
    match metric {
        Metric::RefusalRate | Metric::MissedRefusalRate | Metric::PartialRefusalRate => {
            m.refusal_points
        }
        Metric::EmptyRate => m.empty_points,
        Metric::StructuredFailureRate | Metric::StructuredKind(_) => m.structured_points,
        Metric::TaskFailureRate => m.task_failure_points,
        _ => m.truncation_points,
    }
}

/// Tests one rate metric. `paired` treats `b[i]`, `c[i]` as pairs (same length). The binary
/// quality metrics are also tested per suite and per probe (see `strata`).
pub(crate) fn rate(
    metric: Metric,
    probes: &[(String, String)],
    (b, c): (&[Obs], &[Obs]),
    paired: bool,
    margins: &Margins,
    own: &StrataMargins,
) -> Option<(MetricResult, Basis)> {
    let (vb, vc): (Vec<Option<bool>>, Vec<Option<bool>>) = if paired {
        b.iter()
            .zip(c)
            .filter_map(|(x, y)| {
                let (p, q) = (x.outcome(metric)?, y.outcome(metric)?);
                Some((Some(p), Some(q)))
            })
            .unzip()
    } else {
        (
            b.iter().map(|o| o.outcome(metric)).collect(),
            c.iter().map(|o| o.outcome(metric)).collect(),
        )
    };
    let count = |v: &[Option<bool>]| {
        let n = v.iter().flatten().count() as u64;
        let x = v.iter().flatten().filter(|&&b| b).count() as u64;
        (x, n)
    };
    let ((xb, nb), (xc, nc)) = (count(&vb), count(&vc));
    if nb == 0 && nc == 0 {
        return None;
    }
    let mut table = None;
    let (test, p) = if paired {
        let disc_b = vb
            .iter()
            .zip(&vc)
            .filter(|(x, y)| **x == Some(true) && **y == Some(false));
        let disc_c = vb
            .iter()
            .zip(&vc)
            .filter(|(x, y)| **x == Some(false) && **y == Some(true));
        let (db, dc) = (disc_b.count() as u64, disc_c.count() as u64);
        let both = xb - db;
        table = Some([both, db, dc, nb - both - db - dc]);
        ("mcnemar_exact", mcnemar_p(db, dc))
    } else {
        ("fisher_exact", fisher_p(xc, nc, xb, nb))
    };
    let conf = margins.confidence;
    let ci = difference(xb, nb, xc, nc, table, conf);
    let pb = if nb > 0 { xb as f64 / nb as f64 } else { 0.0 };
    let pc = if nc > 0 { xc as f64 / nc as f64 } else { 0.0 };
    let min_rr = (metric == Metric::RefusalRate).then_some(margins.refusal_relative_risk);
    let secondary = min_rr.map(|_| Effect {
        measure: "relative_risk".into(),
        estimate: if pb > 0.0 { Some(pc / pb) } else { None },
        lower: None,
        upper: None,
    });
    let margin = rate_margin(metric, margins);
    let strat = BINARY
        .contains(&metric)
        .then(|| stratified(metric, probes, b, c, paired, p, margin, own, margins.alpha));
    let p = strat.as_ref().map_or(p, |s| s.p);
    let strata = strat.map(|s| s.moved).unwrap_or_default();
    let result = MetricResult {
        metric,
        label: metric.label(),
        category: metric.category(),
        verdict: Verdict::Inconclusive,
        test: test.into(),
        p_value: Some(p),
        p_adjusted: None,
        e_value: None,
        effect: Effect {
            measure: "rate_difference".into(),
            estimate: ci.map(|c| c.estimate),
            lower: ci.map(|c| c.lower),
            upper: ci.map(|c| c.upper),
        },
        secondary,
        baseline: rate_side(xb, nb, conf),
        candidate: rate_side(xc, nc, conf),
        margin: if metric.higher_is_worse() {
            format!("+{:.1} points", margin * 100.0)
        } else {
            format!("−{:.1} points", margin * 100.0)
        } + &min_rr
            .map(|r| format!(" and relative risk ≥ {r}"))
            .unwrap_or_default(),
        more_samples: None,
        detail: None,
        strata,
    };
    let basis = Basis::Rate {
        strata_moved: !result.strata.is_empty(),
        xb,
        nb,
        xc,
        nc,
        margin,
        min_rr,
        table,
    };
    Some((result, basis))
}

/// The interval for the rate difference candidate − baseline: Newcombe's paired interval
/// when the samples are pairs, the unpaired one otherwise.
fn difference(
    xb: u64,
    nb: u64,
    xc: u64,
    nc: u64,
    table: Option<[u64; 4]>,
    conf: f64,
) -> Option<crate::stats::Interval> {
    match table {
        Some([both, only_b, only_c, neither]) => {
            crate::stats::newcombe_paired_diff(both, only_c, only_b, neither, conf).ok()
        }
        None => rate_difference(xb, nb, xc, nc, conf),
    }
}

/// Whether a sample is an answer: not a refusal and not empty. Lengths are judged on answers
/// only; refusals and empty responses are counted by their own metrics, and a refusal's short
/// text would otherwise pull the length of answers toward it (and a swap that refuses more and
/// rambles more would look unchanged).
pub(crate) fn is_answer(o: &Obs) -> bool {
    !o.m.refusal && !o.m.empty
}

/// The raw value of a distribution metric on one sample.
pub(crate) fn raw(metric: Metric, o: &Obs) -> Option<f64> {
    match metric {
        Metric::LengthChars => is_answer(o).then(|| f64::from(o.m.chars)),
        Metric::LengthTokens => is_answer(o).then(|| f64::from(o.m.output_tokens)),
        Metric::Latency => Some(o.latency_ms).filter(|v| v.is_finite() && *v >= 0.0),
        Metric::Ttft => o.ttft_ms.filter(|v| v.is_finite() && *v >= 0.0),
        _ => None,
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    crate::stats::quantile(v, 0.5)
}

fn dist_side(mut v: Vec<f64>) -> Side {
    v.sort_by(f64::total_cmp);
    Side {
        n: v.len() as u64,
        events: None,
        rate: None,
        lower: None,
        upper: None,
        median: crate::stats::quantile(&v, 0.5),
        p90: crate::stats::quantile(&v, 0.9),
    }
}

/// Per-probe normalised log values: `ln(1 + x)` minus the probe's baseline median.
pub(crate) fn normalised(
    metric: Metric,
    probes: usize,
    b: &[Obs],
    c: &[Obs],
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut per_probe: Vec<Vec<f64>> = vec![Vec::new(); probes];
    for o in b {
        if let Some(v) = raw(metric, o) {
            per_probe[o.probe].push(v.ln_1p());
        }
    }
    let refs: Vec<Option<f64>> = per_probe.iter_mut().map(|v| median(v)).collect();
    let norm = |side: &[Obs]| -> (Vec<f64>, Vec<f64>) {
        side.iter()
            .filter_map(|o| {
                let v = raw(metric, o)?;
                Some((v.ln_1p() - refs[o.probe]?, v))
            })
            .unzip()
    };
    let (nb, rb) = norm(b);
    let (nc, rc) = norm(c);
    (nb, nc, rb, rc)
}

/// Tests one distribution metric.
pub(crate) fn shift(
    metric: Metric,
    probes: usize,
    b: &[Obs],
    c: &[Obs],
    margins: &Margins,
) -> Option<(MetricResult, Basis)> {
    let (nb, nc, rb, rc) = normalised(metric, probes, b, c);
    if nb.is_empty() && nc.is_empty() {
        return None;
    }
    let conf = margins.confidence;
    let p = (!nb.is_empty() && !nc.is_empty()).then(|| shift_p(&nb, &nc));
    let cd = cliffs_delta(&nb, &nc, conf);
    let hl = hodges_lehmann(&nb, &nc, conf);
    let two_sided = matches!(metric, Metric::LengthChars | Metric::LengthTokens);
    let (log_margin, cd_margin) = if two_sided {
        (margins.length_log_ratio, margins.length_cliffs_delta)
    } else {
        (margins.latency_log_ratio, margins.latency_cliffs_delta)
    };
    let finite = |x: f64| x.is_finite().then_some(x);
    let result = MetricResult {
        metric,
        label: metric.label(),
        category: metric.category(),
        verdict: Verdict::Inconclusive,
        test: "mann_whitney_u".into(),
        p_value: p,
        p_adjusted: None,
        e_value: None,
        effect: Effect {
            measure: "hodges_lehmann_log_ratio".into(),
            estimate: hl.and_then(|i| finite(i.estimate)),
            lower: hl.and_then(|i| finite(i.lower)),
            upper: hl.and_then(|i| finite(i.upper)),
        },
        secondary: Some(Effect {
            measure: "cliffs_delta".into(),
            estimate: cd.map(|i| i.estimate),
            lower: cd.map(|i| i.lower),
            upper: cd.map(|i| i.upper),
        }),
        baseline: dist_side(rb),
        candidate: dist_side(rc),
        margin: shift_margin_text(two_sided, log_margin, cd_margin),
        more_samples: None,
        detail: None,
        strata: Vec::new(),
    };
    let basis = match (hl, cd) {
        (Some(hl), Some(cd)) => Basis::Shift {
            hl: [hl.estimate, hl.lower, hl.upper],
            cd: [cd.estimate, cd.lower, cd.upper],
            log_margin,
            cd_margin,
            two_sided,
            n: nb.len().min(nc.len()) as u64,
        },
        _ => Basis::Unmeasured,
    };
    Some((result, basis))
}

/// The margin of a distribution metric in words, bars balanced: `|HL shift| ≥ 15% or
/// |Cliff's delta| ≥ 0.147` (either direction) or `HL shift ≥ 25% or Cliff's delta ≥ 0.147`.
pub(crate) fn shift_margin_text(two_sided: bool, log_margin: f64, cd_margin: f64) -> String {
    let pct = (log_margin.exp() - 1.0) * 100.0;
    if two_sided {
        format!("|HL shift| ≥ {pct:.0}% or |Cliff's delta| ≥ {cd_margin}")
    } else {
        format!("HL shift ≥ {pct:.0}% or Cliff's delta ≥ {cd_margin}")
    }
}

/// Small slack so that a change of exactly the margin counts as reaching it.
const EPS: f64 = 1e-12;

/// Sets the verdict and, when inconclusive, the estimate of samples still needed.
pub(crate) fn decide(r: &mut MetricResult, basis: &Basis, m: &Margins) {
    let significant = r.p_adjusted.is_some_and(|p| p < m.alpha);
    match *basis {
        Basis::Rate { .. } => decide_rate(r, basis, significant, m),
        Basis::Shift {
            hl,
            cd,
            log_margin,
            cd_margin,
            two_sided,
            n,
        } => {
            // In the worse direction: for lengths the larger of the two directions.
            let reaches = |e: [f64; 3], margin: f64| {
                if two_sided {
                    e[0].abs() >= margin - EPS
                } else {
                    e[0] >= margin - EPS
                }
            };
            let inside = |e: [f64; 3], margin: f64| e[2] < margin && (!two_sided || e[1] > -margin);
            let beyond = reaches(hl, log_margin) || reaches(cd, cd_margin);
            let better = !two_sided && (better_hl(hl, log_margin) || better_cd(cd, cd_margin));
            r.verdict = if n == 0 {
                Verdict::Inconclusive
            } else if significant && beyond {
                Verdict::Regression
            } else if significant && better {
                Verdict::Improvement
            } else if inside(hl, log_margin) && inside(cd, cd_margin) {
                Verdict::Pass
            } else {
                Verdict::Inconclusive
            };
            if r.verdict == Verdict::Inconclusive && n > 0 {
                let more = more_shift_samples(hl, cd, log_margin, cd_margin, beyond, n);
                r.more_samples = adjusted_level(more, beyond, r.p_adjusted, m, n);
            }
            // Report first the effect the verdict rests on: Cliff's delta when it alone
            // reached its margin (regression, improvement) or alone kept the metric from
            // passing (inconclusive); for a pass, the one whose interval came nearer its
            // margin (ties can collapse the shift's interval to [0, 0] while Cliff's delta
            // decides); the Hodges–Lehmann shift otherwise.
            let hl_moved = reaches(hl, log_margin) || (!two_sided && better_hl(hl, log_margin));
            let cd_moved = reaches(cd, cd_margin) || (!two_sided && better_cd(cd, cd_margin));
            let reach = |e: [f64; 3], margin: f64| {
                let far = if two_sided { e[2].max(-e[1]) } else { e[2] };
                far / margin
            };
            let on_cd = match r.verdict {
                Verdict::Regression | Verdict::Improvement => cd_moved && !hl_moved,
                Verdict::Inconclusive => {
                    inside(hl, log_margin) && !inside(cd, cd_margin) || cd_moved && !hl_moved
                }
                Verdict::Pass => reach(cd, cd_margin) > reach(hl, log_margin),
                Verdict::Changed => false,
            };
            if on_cd && let Some(secondary) = r.secondary.take() {
                r.secondary = Some(std::mem::replace(&mut r.effect, secondary));
            }
        }
        Basis::Shape {
            moved,
            upper,
            d,
            half,
            margin,
            n,
        } => {
            r.verdict = if significant && moved {
                Verdict::Regression
            } else if upper < margin {
                Verdict::Pass
            } else {
                Verdict::Inconclusive
            };
            // The band narrows as 1/√n: the factor at which D + half·/√k falls below the
            // margin (out of reach when D itself is at or beyond it).
            if r.verdict == Verdict::Inconclusive && n > 0 && d < margin {
                let factor = (half / (margin - d)).powi(2);
                if factor.is_finite() && factor <= MAX_FACTOR {
                    r.more_samples = Some(((n as f64) * (factor - 1.0)).ceil().max(1.0) as u64);
                }
            }
        }
        Basis::Unmeasured => r.verdict = Verdict::Inconclusive,
        Basis::Decided => {}
    }
}

/// [`decide`] for a rate: regression, improvement or pass from the interval of the difference.
fn decide_rate(r: &mut MetricResult, basis: &Basis, significant: bool, m: &Margins) {
    let Basis::Rate {
        xb,
        nb,
        xc,
        nc,
        margin,
        min_rr,
        strata_moved,
        table,
    } = *basis
    else {
        return;
    };
    let s = if r.metric.higher_is_worse() {
        1.0
    } else {
        -1.0
    };
    let Some(ci) = difference(xb, nb, xc, nc, table, m.confidence) else {
        r.verdict = Verdict::Inconclusive;
        return;
    };
    let (worse, worse_hi, _) = worse_view(s, ci);
    let rr_ok = match (min_rr, r.secondary.as_ref().and_then(|e| e.estimate)) {
        (None, _) => true,
        (Some(min), Some(rr)) => rr >= min - EPS,
        // A rate rising from zero has an unbounded relative risk.
        (Some(_), None) => worse > 0.0,
    };
    r.verdict = if significant && (worse >= margin - EPS && rr_ok || strata_moved) {
        Verdict::Regression
    } else if significant && -worse >= margin - EPS {
        Verdict::Improvement
    } else if worse_hi < margin {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    if r.verdict == Verdict::Inconclusive {
        let more = more_rate_samples(s, [xb, nb, xc, nc], table, margin, m.confidence);
        r.more_samples = adjusted_level(more, worse >= margin - EPS, r.p_adjusted, m, nc);
    }
}

fn better_hl(hl: [f64; 3], log_margin: f64) -> bool {
    hl[0] <= -log_margin + EPS
}

fn better_cd(cd: [f64; 3], cd_margin: f64) -> bool {
    cd[0] <= -cd_margin + EPS
}

/// The estimate and the interval's worse and better ends, turned so that positive means worse.
fn worse_view(s: f64, ci: Interval) -> (f64, f64, f64) {
    if s > 0.0 {
        (ci.estimate, ci.upper, ci.lower)
    } else {
        (-ci.estimate, -ci.lower, -ci.upper)
    }
}

/// An estimate of the samples a change beyond its margin needs to become a regression, raised
/// to what its adjusted p-value needs: the interval alone ignores the multiplicity adjustment,
/// so an adjusted p of 0.5 could sit beside "about 1 more sample". With the effect unchanged,
/// the test statistic grows as √n: from the adjusted p's normal score to alpha's takes
/// n·((z_alpha / z_p)² − 1) more samples per side (`None` when that is out of reach).
/// `beyond`: the observed change is beyond the margin (otherwise the estimate stands).
fn adjusted_level(
    estimate: Option<u64>,
    beyond: bool,
    p_adjusted: Option<f64>,
    m: &Margins,
    n: u64,
) -> Option<u64> {
    let (true, Some(p), Some(estimate)) = (beyond, p_adjusted, estimate) else {
        return estimate;
    };
    if p <= m.alpha {
        return Some(estimate);
    }
    let z = |p: f64| crate::stats::dist::norm_ppf(1.0 - p.clamp(1e-300, 1.0 - 1e-12) / 2.0);
    let factor = (z(m.alpha) / z(p)).powi(2);
    if !factor.is_finite() || factor > MAX_FACTOR {
        return None;
    }
    let needed = ((n as f64) * (factor - 1.0)).ceil().max(1.0) as u64;
    Some(estimate.max(needed))
}

/// Largest growth factor tried before giving up ("not within reach").
const MAX_FACTOR: f64 = 1000.0;

/// Samples per side still needed for a rate to settle, assuming the observed rates persist
/// and both sides grow in proportion: the smallest growth factor at which the Newcombe
/// interval either excludes a regression beyond the margin (observed change below it) or
/// excludes no change (observed change at or beyond it). Found by doubling then bisection.
/// `counts`: bad and all on each side, `[xb, nb, xc, nc]`; `table`: the paired 2×2 table.
fn more_rate_samples(
    s: f64,
    [xb, nb, xc, nc]: [u64; 4],
    table: Option<[u64; 4]>,
    margin: f64,
    conf: f64,
) -> Option<u64> {
    let (pb, pc) = (xb as f64 / nb as f64, xc as f64 / nc as f64);
    let worse = s * (pc - pb);
    let settled = |k: f64| {
        let (nb2, nc2) = ((nb as f64 * k).round(), (nc as f64 * k).round());
        // Paired: the same table, every cell k times as large.
        let scaled = table.map(|t| t.map(|x| (x as f64 * k).round() as u64));
        let Some(ci) = difference(
            (pb * nb2).round() as u64,
            nb2 as u64,
            (pc * nc2).round() as u64,
            nc2 as u64,
            scaled,
            conf,
        ) else {
            return false;
        };
        let (_, hi, lo) = worse_view(s, ci);
        if worse < margin {
            hi < margin
        } else {
            lo > 0.0
        }
    };
    let mut hi = 1.0;
    while !settled(hi) {
        hi *= 2.0;
        if hi > MAX_FACTOR {
            return None;
        }
    }
    let mut lo = hi / 2.0;
    for _ in 0..30 {
        let mid = (lo + hi) / 2.0;
        if settled(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(((nc as f64) * (hi - 1.0)).ceil().max(1.0) as u64)
}

/// Samples per side still needed for a shift to settle, from interval widths shrinking as
/// 1/√n: to a width that fits inside the margins (pass), or that excludes zero when the
/// observed shift is already beyond a margin (regression).
fn more_shift_samples(
    hl: [f64; 3],
    cd: [f64; 3],
    log_margin: f64,
    cd_margin: f64,
    beyond: bool,
    n: u64,
) -> Option<u64> {
    let half = |e: [f64; 3]| ((e[2] - e[1]) / 2.0).max(0.0);
    let factor = if beyond {
        let need = hl[0].abs();
        (half(hl) / need).powi(2)
    } else {
        let f = |e: [f64; 3], margin: f64| (half(e) / (margin - e[0].abs())).powi(2);
        f(hl, log_margin).max(f(cd, cd_margin))
    };
    if !factor.is_finite() || factor > MAX_FACTOR {
        return None;
    }
    Some(((n as f64) * (factor - 1.0)).ceil().max(1.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_estimate_of_a_few_samples_next_to_an_adjusted_p_far_from_alpha() {
        let m = Margins::default();
        // An adjusted p of 0.512 with 20 samples per side: the interval alone said "about 1
        // more"; reaching alpha = 0.05 at the same effect takes about 8 times the samples.
        let more = adjusted_level(Some(1), true, Some(0.512), &m, 20).unwrap();
        let z = |p: f64| crate::stats::dist::norm_ppf(1.0 - p / 2.0);
        let factor = (z(0.05) / z(0.512)).powi(2);
        assert!((7.5..9.5).contains(&factor), "{factor}");
        assert_eq!(more, (20.0 * (factor - 1.0)).ceil() as u64);
        // Near the level the interval's estimate stands; below it nothing changes.
        assert_eq!(adjusted_level(Some(40), true, Some(0.06), &m, 20), Some(40));
        assert_eq!(adjusted_level(Some(3), true, Some(0.01), &m, 20), Some(3));
        // Out of reach: no estimate rather than a huge one.
        assert_eq!(adjusted_level(Some(3), true, Some(0.9999), &m, 20), None);
        assert_eq!(adjusted_level(None, true, Some(0.3), &m, 20), None);
        // A change inside the margin: the interval's estimate is about passing, not p.
        assert_eq!(adjusted_level(Some(3), false, Some(0.9), &m, 20), Some(3));
    }
}
