//! Lines the two sample sets up: which probes can be compared, which samples are errors,
//! and (for paired designs) which samples form pairs.

use super::{ErrorCounts, Expectations, ProbeSets};
use crate::sample::{Measurements, Sample};
use std::collections::{BTreeMap, BTreeSet};

impl Obs<'_> {
    /// The sample's outcome on a rate metric, when the metric applies to it.
    pub fn outcome(&self, metric: super::Metric) -> Option<bool> {
        metric.outcome(self.m, self.refusal_expected)
    }
}

/// One measured sample of a compared probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obs<'a> {
    /// Index into [`Prepared::probes`].
    pub probe: usize,
    pub m: &'a Measurements,
    /// The probe expects a refusal (`expect.refusal = true`).
    pub refusal_expected: bool,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub text: Option<&'a str>,
    /// The sample's index within its probe (a seeded probe sends `seed + index`).
    pub index: u32,
}

pub(crate) struct Prepared<'a> {
    /// Compared probes as (suite, id), sorted.
    pub probes: Vec<(String, String)>,
    pub baseline: Vec<Obs<'a>>,
    pub candidate: Vec<Obs<'a>>,
    pub availability: (ErrorCounts, ErrorCounts),
    pub sets: ProbeSets,
}

fn counts(samples: &[Sample]) -> ErrorCounts {
    let mut c = ErrorCounts {
        requests: samples.len() as u64,
        ..ErrorCounts::default()
    };
    for s in samples {
        if let Some(e) = &s.error {
            c.errors += 1;
            *c.by_kind.entry(e.kind.as_str().to_string()).or_default() += 1;
        }
    }
    c.error_rate = if c.requests == 0 {
        0.0
    } else {
        c.errors as f64 / c.requests as f64
    };
    c
}

type Key = (String, String);

/// Samples of one side grouped by (probe, sample index), each with its start time; `None`
/// where the request failed.
type Groups<'a> = BTreeMap<(usize, u32), Vec<(i64, Option<Obs<'a>>)>>;

fn hashes(samples: &[Sample]) -> BTreeMap<Key, BTreeSet<&str>> {
    let mut m: BTreeMap<Key, BTreeSet<&str>> = BTreeMap::new();
    for s in samples {
        m.entry((s.suite.clone(), s.probe_id.clone()))
            .or_default()
            .insert(&s.probe_hash);
    }
    m
}

/// Compares only probes present on both sides with one and the same content hash. With
/// `paired`, the k-th sample of (probe, sample index) on one side — in order of start time —
/// pairs with the k-th on the other (so repeated rounds pair round by round); a pair where
/// either side failed is left out, and so are samples without a partner.
pub(crate) fn prepare<'a>(
    baseline: &'a [Sample],
    candidate: &'a [Sample],
    expectations: &Expectations,
    paired: bool,
) -> Prepared<'a> {
    let hb = hashes(baseline);
    let hc = hashes(candidate);
    let mut sets = ProbeSets::default();
    let mut probes = Vec::new();
    for (key, b) in &hb {
        match hc.get(key) {
            None => sets.only_baseline.push(format!("{}/{}", key.0, key.1)),
            Some(c) if c == b && b.len() == 1 => probes.push(key.clone()),
            Some(_) => sets.changed.push(format!("{}/{}", key.0, key.1)),
        }
    }
    for key in hc.keys() {
        if !hb.contains_key(key) {
            sets.only_candidate.push(format!("{}/{}", key.0, key.1));
        }
    }
    sets.compared = probes.len();
    let index: BTreeMap<&Key, usize> = probes.iter().enumerate().map(|(i, k)| (k, i)).collect();
    // Every sample of a compared probe, grouped by (probe, sample index) in start order;
    // `None` where the request failed.
    let grouped = |samples: &'a [Sample]| {
        let mut g: Groups<'a> = BTreeMap::new();
        for s in samples {
            let Some(&probe) = index.get(&(s.suite.clone(), s.probe_id.clone())) else {
                continue;
            };
            let obs = s
                .measurements
                .as_ref()
                .filter(|_| s.error.is_none())
                .map(|m| Obs {
                    probe,
                    m,
                    refusal_expected: expectations.refusal_expected(&s.suite, &s.probe_id),
                    latency_ms: s.latency_ms,
                    ttft_ms: s.ttft_ms,
                    text: s.text.as_deref(),
                    index: s.index,
                });
            g.entry((probe, s.index))
                .or_default()
                .push((s.started_at_ms, obs));
        }
        for v in g.values_mut() {
            v.sort_by_key(|e| e.0);
        }
        g
    };
    let (gb, gc) = (grouped(baseline), grouped(candidate));
    let (mut ob, mut oc) = (Vec::new(), Vec::new());
    if paired {
        let measured = |g: &Groups| g.values().flatten().filter(|e| e.1.is_some()).count();
        let total = measured(&gb) + measured(&gc);
        for (key, vb) in &gb {
            let Some(vc) = gc.get(key) else { continue };
            for (b, c) in vb.iter().zip(vc) {
                if let (Some(b), Some(c)) = (b.1, c.1) {
                    ob.push(b);
                    oc.push(c);
                }
            }
        }
        sets.unpaired_samples = total - ob.len() - oc.len();
    } else {
        ob = gb.into_values().flatten().filter_map(|e| e.1).collect();
        oc = gc.into_values().flatten().filter_map(|e| e.1).collect();
    }
    Prepared {
        probes,
        baseline: ob,
        candidate: oc,
        availability: (counts(baseline), counts(candidate)),
        sets,
    }
}
