//! Strata: a rate that moved in a few probes or in one suite, not in the pool.
//!
//! A swap that breaks one capability (the JSON probes, one language, the arithmetic tasks)
//! moves a pooled rate by a few points only. Beside the pooled test each rate metric is tested
//! per suite (when there are several) and per probe with the same exact test (Fisher unpaired,
//! McNemar paired), and the tests are combined by a weighted Bonferroni union bound
//! (Holm 1979; Westfall & Young 1993, ch. 2): the pooled test gets weight 1/2, the suites 1/4
//! split evenly, the probes 1/4 split evenly (1/2 when there is one suite). The metric's
//! p-value is `min_i p_i / w_i`; under the null of no change anywhere the chance that it falls
//! below α is at most Σ α·w_i = α, whatever the dependence, so the family-wise error of the
//! metric holds and the metric then enters the Benjamini–Hochberg family across metrics as
//! before. A stratum moved when its own `p_i / w_i` is below alpha and its change in the bad
//! direction reaches its margin (the stratum's own margin from the suite file, else the
//! metric's).

use super::calls::{fisher_p, mcnemar_p};
use super::prepare::Obs;
use super::{Metric, Stratum};
use std::collections::BTreeMap;

/// Weight of the pooled test in the union bound.
const POOLED_WEIGHT: f64 = 0.5;

/// One stratum's counts: `(xb, nb, xc, nc)`, and for pairs the discordant counts.
#[derive(Default, Clone, Copy)]
struct Counts {
    xb: u64,
    nb: u64,
    xc: u64,
    nc: u64,
    /// Paired: baseline-only and candidate-only events.
    db: u64,
    dc: u64,
}

impl Counts {
    fn add_b(&mut self, v: bool) {
        self.nb += 1;
        self.xb += u64::from(v);
    }
    fn add_c(&mut self, v: bool) {
        self.nc += 1;
        self.xc += u64::from(v);
    }
    fn p(&self, paired: bool) -> f64 {
        if paired {
            mcnemar_p(self.db, self.dc)
        } else {
            fisher_p(self.xc, self.nc, self.xb, self.nb)
        }
    }
    fn rates(&self) -> Option<(f64, f64)> {
        (self.nb > 0 && self.nc > 0).then(|| {
            (
                self.xb as f64 / self.nb as f64,
                self.xc as f64 / self.nc as f64,
            )
        })
    }
}

/// The outcome of the stratified tests of one rate metric.
pub(crate) struct Stratified {
    /// `min_i p_i / w_i` over the pooled test and every stratum, at most 1.
    pub p: f64,
    /// Strata that moved, most significant first.
    pub moved: Vec<Stratum>,
}

/// Per-stratum margins, `suite` or `suite/probe` → margin in points (share).
pub(crate) type StrataMargins = BTreeMap<String, f64>;

/// Tests `metric` pooled, per suite and per probe. `pooled_p` is the pooled test's p-value;
/// `margin` the metric's margin, overridden per stratum by `own`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stratified(
    metric: Metric,
    probes: &[(String, String)],
    b: &[Obs],
    c: &[Obs],
    paired: bool,
    pooled_p: f64,
    margin: f64,
    own: &StrataMargins,
    alpha: f64,
) -> Stratified {
    let mut per_probe = vec![Counts::default(); probes.len()];
    if paired {
        for (x, y) in b.iter().zip(c) {
            let (Some(p), Some(q)) = (x.outcome(metric), y.outcome(metric)) else {
                continue;
            };
            let k = &mut per_probe[x.probe];
            k.add_b(p);
            k.add_c(q);
            k.db += u64::from(p && !q);
            k.dc += u64::from(!p && q);
        }
    } else {
        for o in b {
            if let Some(v) = o.outcome(metric) {
                per_probe[o.probe].add_b(v);
            }
        }
        for o in c {
            if let Some(v) = o.outcome(metric) {
                per_probe[o.probe].add_c(v);
            }
        }
    }
    let mut per_suite: BTreeMap<&str, Counts> = BTreeMap::new();
    for (k, (suite, _)) in per_probe.iter().zip(probes) {
        let s = per_suite.entry(suite.as_str()).or_default();
        s.xb += k.xb;
        s.nb += k.nb;
        s.xc += k.xc;
        s.nc += k.nc;
        s.db += k.db;
        s.dc += k.dc;
    }
    let measured = |k: &Counts| k.nb > 0 && k.nc > 0;
    let suites: Vec<(String, Counts)> = per_suite
        .into_iter()
        .filter(|(_, k)| measured(k))
        .map(|(s, k)| (s.to_string(), k))
        .collect();
    let probe_strata: Vec<(String, String, Counts)> = per_probe
        .iter()
        .zip(probes)
        .filter(|(k, _)| measured(k))
        .map(|(k, (s, id))| (format!("{s}/{id}"), s.clone(), *k))
        .collect();
    let rest = 1.0 - POOLED_WEIGHT;
    let (w_suites, w_probes) = if suites.len() >= 2 {
        (rest / 2.0, rest / 2.0)
    } else {
        (0.0, rest)
    };
    let sign = if metric.higher_is_worse() { 1.0 } else { -1.0 };
    let mut p = (pooled_p / POOLED_WEIGHT).min(1.0);
    let mut moved: Vec<(f64, Stratum)> = Vec::new();
    let mut consider = |level: &str, name: &str, suite: &str, k: &Counts, w: f64| {
        let raw = k.p(paired);
        let adj = (raw / w).min(1.0);
        p = p.min(adj);
        let Some((rb, rc)) = k.rates() else { return };
        let m = own
            .get(name)
            .or_else(|| own.get(suite))
            .copied()
            .unwrap_or(margin);
        let worse = sign * (rc - rb);
        if adj < alpha && worse > 0.0 && worse >= m - 1e-12 {
            moved.push((
                adj,
                Stratum {
                    level: level.into(),
                    name: name.into(),
                    baseline_n: k.nb,
                    candidate_n: k.nc,
                    baseline_rate: Some(rb),
                    candidate_rate: Some(rc),
                    p_adjusted: adj,
                    summary: format!(
                        "{:.0}% → {:.0}% ({} vs {} samples)",
                        rb * 100.0,
                        rc * 100.0,
                        k.nb,
                        k.nc
                    ),
                },
            ));
        }
    };
    if w_suites > 0.0 {
        let w = w_suites / suites.len() as f64;
        for (s, k) in &suites {
            consider("suite", s, s, k, w);
        }
    }
    if !probe_strata.is_empty() {
        let w = w_probes / probe_strata.len() as f64;
        for (name, suite, k) in &probe_strata {
            consider("probe", name, suite, k, w);
        }
    }
    moved.sort_by(|x, y| x.0.total_cmp(&y.0).then_with(|| x.1.name.cmp(&y.1.name)));
    Stratified {
        p,
        moved: moved.into_iter().map(|m| m.1).collect(),
    }
}
