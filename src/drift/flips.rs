//! Flipped probes: which probes changed behaviour, with a short excerpt of each side.
//!
//! A probe flipped on a rate when its own rate moved at least `Margins::flip_min_change` in
//! the bad direction with at least five samples on each side, or when its per-probe Fisher test, Benjamini–Hochberg adjusted across
//! all probes and rates, is significant in the bad direction. Lengths list the probes whose
//! median log length moved most, beyond the length margin, and whose per-probe Mann–Whitney
//! test (Benjamini–Hochberg adjusted across probes) is significant.

use super::analyze::is_answer;
use super::calls::{bh, fisher_p, shift_p};
use super::metric::BINARY;
use super::prepare::Obs;
use super::{FlipKind, FlippedProbe, Margins, Metric};
use crate::util::excerpt;

/// Fewest samples per side for a flip claimed from the size of the change alone.
pub(crate) const FLIP_MIN_SAMPLES: u64 = 5;

fn kind_for(metric: Metric) -> FlipKind {
    match metric {
        Metric::RefusalRate => FlipKind::StartedRefusing,
        Metric::MissedRefusalRate => FlipKind::StoppedRefusing,
        Metric::EmptyRate => FlipKind::StartedEmpty,
        Metric::StructuredFailureRate => FlipKind::BrokeJson,
        Metric::TaskFailureRate => FlipKind::LostTaskSuccess,
        _ => FlipKind::StartedTruncating,
    }
}

fn text_of(o: Option<&Obs>) -> Option<String> {
    o.and_then(|o| o.text).map(excerpt)
}

pub(crate) fn find(
    probes: &[(String, String)],
    b: &[Obs],
    c: &[Obs],
    margins: &Margins,
) -> Vec<FlippedProbe> {
    let mut by_probe_b: Vec<Vec<&Obs>> = vec![Vec::new(); probes.len()];
    let mut by_probe_c: Vec<Vec<&Obs>> = vec![Vec::new(); probes.len()];
    for o in b {
        by_probe_b[o.probe].push(o);
    }
    for o in c {
        by_probe_c[o.probe].push(o);
    }
    // (probe, metric, worse change, rates, counts, p)
    let mut cands = Vec::new();
    let mut pvals = Vec::new();
    for (i, (ob, oc)) in by_probe_b.iter().zip(&by_probe_c).enumerate() {
        for metric in BINARY {
            let count = |v: &[&Obs]| {
                let vals: Vec<bool> = v.iter().filter_map(|o| o.outcome(metric)).collect();
                (
                    vals.iter().filter(|&&x| x).count() as u64,
                    vals.len() as u64,
                )
            };
            let ((xb, nb), (xc, nc)) = (count(ob), count(oc));
            if nb == 0 || nc == 0 {
                continue;
            }
            let (rb, rc) = (xb as f64 / nb as f64, xc as f64 / nc as f64);
            let s = if metric.higher_is_worse() { 1.0 } else { -1.0 };
            let p = fisher_p(xc, nc, xb, nb);
            pvals.push(p);
            cands.push((i, metric, s * (rc - rb), rb, rc, nb, nc));
        }
    }
    let adjusted = bh(&pvals);
    let mut flips: Vec<FlippedProbe> = Vec::new();
    for (&(i, metric, worse, rb, rc, nb, nc), &padj) in cands.iter().zip(&adjusted) {
        // A change alone is claimed only from enough samples on both sides: 0% → 100% from
        // one sample each is noise at any sampling temperature.
        let by_change =
            worse >= margins.flip_min_change && nb >= FLIP_MIN_SAMPLES && nc >= FLIP_MIN_SAMPLES;
        if worse <= 0.0 || (!by_change && padj >= margins.alpha) {
            continue;
        }
        let bad = metric.higher_is_worse();
        let pick = |v: &[&Obs], outcome: bool| -> Option<String> {
            let o = v
                .iter()
                .find(|o| o.outcome(metric) == Some(outcome) && o.text.is_some())
                .or_else(|| v.iter().find(|o| o.text.is_some()))?;
            o.text.map(excerpt)
        };
        flips.push(FlippedProbe {
            suite: probes[i].0.clone(),
            probe_id: probes[i].1.clone(),
            kind: kind_for(metric),
            metric,
            baseline_value: rb,
            candidate_value: rc,
            baseline_n: nb,
            candidate_n: nc,
            p_adjusted: Some(padj),
            baseline_excerpt: pick(&by_probe_b[i], !bad),
            candidate_excerpt: pick(&by_probe_c[i], bad),
        });
    }
    // Grouped by kind (in the order of the rate metrics), largest change first.
    let rank = |k: FlipKind| BINARY.iter().position(|&m| kind_for(m) == k);
    flips.sort_by(|x, y| {
        let wx = (x.candidate_value - x.baseline_value).abs();
        let wy = (y.candidate_value - y.baseline_value).abs();
        rank(x.kind)
            .cmp(&rank(y.kind))
            .then_with(|| wy.total_cmp(&wx))
            .then_with(|| x.suite.cmp(&y.suite))
            .then_with(|| x.probe_id.cmp(&y.probe_id))
    });
    flips.extend(length_flips(probes, &by_probe_b, &by_probe_c, margins));
    flips
}

fn median_obs<'a>(v: &[&'a Obs<'a>]) -> Option<(f64, &'a Obs<'a>)> {
    let mut logs: Vec<(f64, &Obs)> = v
        .iter()
        .filter(|o| is_answer(o))
        .map(|o| (f64::from(o.m.chars).ln_1p(), *o))
        .collect();
    if logs.is_empty() {
        return None;
    }
    logs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let vals: Vec<f64> = logs.iter().map(|l| l.0).collect();
    let med = crate::stats::quantile(&vals, 0.5)?;
    let nearest = logs
        .iter()
        .filter(|l| l.1.text.is_some())
        .min_by(|a, b| (a.0 - med).abs().total_cmp(&(b.0 - med).abs()))
        .or(logs.first())?;
    Some((med, nearest.1))
}

fn length_flips(
    probes: &[(String, String)],
    b: &[Vec<&Obs>],
    c: &[Vec<&Obs>],
    margins: &Margins,
) -> Vec<FlippedProbe> {
    let logs = |v: &[&Obs]| -> Vec<f64> {
        v.iter()
            .filter(|o| is_answer(o))
            .map(|o| f64::from(o.m.chars).ln_1p())
            .collect()
    };
    let pvals: Vec<f64> = b
        .iter()
        .zip(c)
        .map(|(ob, oc)| shift_p(&logs(ob), &logs(oc)))
        .collect();
    let adjusted = bh(&pvals);
    let mut out: Vec<(f64, FlippedProbe)> = Vec::new();
    for (i, (ob, oc)) in b.iter().zip(c).enumerate() {
        let (Some((mb, eb)), Some((mc, ec))) = (median_obs(ob), median_obs(oc)) else {
            continue;
        };
        let shift = mc - mb;
        if shift.abs() < margins.length_log_ratio || adjusted[i] >= margins.alpha {
            continue;
        }
        out.push((
            shift.abs(),
            FlippedProbe {
                suite: probes[i].0.clone(),
                probe_id: probes[i].1.clone(),
                kind: if shift > 0.0 {
                    FlipKind::Longer
                } else {
                    FlipKind::Shorter
                },
                metric: Metric::LengthChars,
                baseline_value: mb.exp_m1(),
                candidate_value: mc.exp_m1(),
                baseline_n: ob.iter().filter(|o| is_answer(o)).count() as u64,
                candidate_n: oc.iter().filter(|o| is_answer(o)).count() as u64,
                p_adjusted: Some(adjusted[i]),
                baseline_excerpt: text_of(Some(eb)),
                candidate_excerpt: text_of(Some(ec)),
            },
        ));
    }
    out.sort_by(|x, y| y.0.total_cmp(&x.0));
    out.into_iter()
        .take(margins.max_length_flips)
        .map(|x| x.1)
        .collect()
}
