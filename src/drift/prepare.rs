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
    pub index: u32,
    pub m: &'a Measurements,
    /// The probe expects a refusal (`expect.refusal = true`).
    pub refusal_expected: bool,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub text: Option<&'a str>,
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

fn hashes(samples: &[Sample]) -> BTreeMap<Key, BTreeSet<&str>> {
    let mut m: BTreeMap<Key, BTreeSet<&str>> = BTreeMap::new();
    for s in samples {
        m.entry((s.suite.clone(), s.probe_id.clone()))
            .or_default()
            .insert(&s.probe_hash);
    }
    m
}

/// Compares only probes present on both sides with one and the same content hash.
pub(crate) fn prepare<'a>(
    baseline: &'a [Sample],
    candidate: &'a [Sample],
    expectations: &Expectations,
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
    let obs = |samples: &'a [Sample]| -> Vec<Obs<'a>> {
        samples
            .iter()
            .filter(|s| s.error.is_none())
            .filter_map(|s| {
                let key = (s.suite.clone(), s.probe_id.clone());
                let probe = *index.get(&key)?;
                Some(Obs {
                    probe,
                    index: s.index,
                    m: s.measurements.as_ref()?,
                    refusal_expected: expectations.refusal_expected(&s.suite, &s.probe_id),
                    latency_ms: s.latency_ms,
                    ttft_ms: s.ttft_ms,
                    text: s.text.as_deref(),
                })
            })
            .collect()
    };
    let (ob, oc) = (obs(baseline), obs(candidate));
    Prepared {
        probes,
        baseline: ob,
        candidate: oc,
        availability: (counts(baseline), counts(candidate)),
        sets,
    }
}

/// Keeps only samples that have a partner (same probe, same sample index) on the other side,
/// in matching order. Duplicated (probe, index) keys keep their first occurrence.
pub(crate) fn pair<'a>(p: &mut Prepared<'a>) -> usize {
    let key = |o: &Obs| (o.probe, o.index);
    let mut b: BTreeMap<(usize, u32), Obs<'a>> = BTreeMap::new();
    for o in &p.baseline {
        b.entry(key(o)).or_insert(*o);
    }
    let mut c: BTreeMap<(usize, u32), Obs<'a>> = BTreeMap::new();
    for o in &p.candidate {
        c.entry(key(o)).or_insert(*o);
    }
    let (mut nb, mut nc) = (Vec::new(), Vec::new());
    for (k, ob) in &b {
        if let Some(oc) = c.get(k) {
            nb.push(*ob);
            nc.push(*oc);
        }
    }
    let unpaired = p.baseline.len() + p.candidate.len() - 2 * nb.len();
    p.baseline = nb;
    p.candidate = nc;
    unpaired
}
