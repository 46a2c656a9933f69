//! Pairs by seed: a baseline sample and a later sample of the same probe (same content hash)
//! sent with the same `seed` are a pair. On a server that honours `seed`, an unchanged model
//! answers both alike, so a paired test sees no discordance and settles with far fewer samples
//! than two independent sets need (McNemar 1947; the same design as the seed-paired canary).
//! Samples sent without a seed never pair.

use crate::sample::Sample;
use std::collections::BTreeMap;

/// Share of the later samples (not counting repeats of a paired seed) that must find a
/// partner for the paired design to be used.
pub const MIN_PAIRED_SHARE: f64 = 0.5;

/// The two sides lined up pair by pair, and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedPairs {
    /// Baseline samples, each with its partner at the same position in `recent`.
    pub baseline: Vec<Sample>,
    /// Later samples; each carries its baseline partner's sample index, so that the paired
    /// engine (which pairs by probe and sample index) pairs exactly these.
    pub recent: Vec<Sample>,
    /// Later samples whose seed is already paired by a newer one (the same seed sent again,
    /// by a later round).
    pub repeated: usize,
    /// Later samples with no baseline partner (no seed, or a seed the baseline never sent).
    pub unmatched: usize,
    /// Baseline samples sent a seed: the paired design needs every one of them paired.
    pub baseline_seeded: usize,
}

impl SeedPairs {
    pub fn pairs(&self) -> usize {
        self.baseline.len()
    }

    /// Whether the paired design applies: every seeded baseline sample found a partner (the
    /// pairs leave none of the baseline out: with only part of it paired, a change would be
    /// judged on fewer baseline samples than the unpaired design uses, and detected later),
    /// and so did at least half of the later samples. Repeats of a paired seed do not count
    /// against it: on a server that honours `seed` they replay the pair.
    pub fn usable(&self) -> bool {
        let later = (self.pairs() + self.unmatched) as f64;
        let n = self.pairs();
        n > 0 && n >= self.baseline_seeded && n as f64 >= MIN_PAIRED_SHARE * later
    }
}

type Key<'a> = (&'a str, &'a str, &'a str, u64);

fn key(s: &Sample) -> Option<Key<'_>> {
    Some((&s.suite, &s.probe_id, &s.probe_hash, s.seed?))
}

/// Pairs `recent` with `baseline` by (suite, probe, content hash, seed). When several later
/// samples carry the same seed, the newest pairs (the latest state of the served model).
pub fn pair_by_seed(baseline: &[Sample], recent: &[Sample]) -> SeedPairs {
    let mut base: BTreeMap<Key<'_>, &Sample> = BTreeMap::new();
    for s in baseline {
        if let Some(k) = key(s) {
            base.entry(k).or_insert(s);
        }
    }
    let mut newest: BTreeMap<Key<'_>, &Sample> = BTreeMap::new();
    let mut unmatched = 0;
    for s in recent {
        match key(s).filter(|k| base.contains_key(k)) {
            None => unmatched += 1,
            Some(k) => {
                let slot = newest.entry(k).or_insert(s);
                if s.started_at_ms > slot.started_at_ms {
                    *slot = s;
                }
            }
        }
    }
    let repeated = recent.len() - unmatched - newest.len();
    let (mut b, mut r) = (Vec::new(), Vec::new());
    for (k, later) in newest {
        let partner = base[&k];
        b.push(partner.clone());
        let mut later = later.clone();
        later.index = partner.index;
        r.push(later);
    }
    SeedPairs {
        baseline: b,
        recent: r,
        repeated,
        unmatched,
        baseline_seeded: base.len(),
    }
}

/// The later samples for the unpaired design when samples carry seeds: one per seed (the
/// newest). On a server that honours `seed`, a seed sent again (a later `run` of the same
/// samples) replays its answer: repeats are not new draws and counting them would overstate
/// the evidence. Samples without a seed are all kept. (Later samples that share a seed with a
/// baseline sample stay: an unchanged model answers both alike, which only makes the unpaired
/// test more cautious.)
pub fn distinct_later(recent: &[Sample]) -> (Vec<Sample>, usize) {
    let mut newest: BTreeMap<Key<'_>, &Sample> = BTreeMap::new();
    let mut out = Vec::new();
    for s in recent {
        match key(s) {
            None => out.push(s.clone()),
            Some(k) => {
                let slot = newest.entry(k).or_insert(s);
                if s.started_at_ms > slot.started_at_ms {
                    *slot = s;
                }
            }
        }
    }
    let repeats = recent.len() - out.len() - newest.len();
    out.extend(newest.into_values().cloned());
    (out, repeats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(probe: &str, seed: Option<u64>, index: u32, at: i64) -> Sample {
        let mut x = Sample::pending("t", "core", probe, "h1", index, at);
        x.seed = seed;
        x
    }

    #[test]
    fn same_probe_hash_and_seed_pair_and_the_newest_later_sample_wins() {
        let baseline = vec![
            s("a", Some(10), 0, 1),
            s("a", Some(11), 1, 1),
            s("b", None, 0, 1),
        ];
        let recent = vec![
            s("a", Some(10), 0, 5),
            s("a", Some(10), 0, 9), // a later round, same seed: this one pairs
            s("a", Some(12), 2, 5), // the baseline never sent 12
            s("b", None, 0, 5),     // no seed: never pairs
        ];
        let p = pair_by_seed(&baseline, &recent);
        assert_eq!(p.pairs(), 1);
        assert_eq!((p.repeated, p.unmatched), (1, 2));
        assert_eq!(p.recent[0].started_at_ms, 9);
        assert_eq!(p.baseline[0].seed, Some(10));
        assert!(!p.usable(), "1 of 3 distinct later seeds paired");
        // Three more rounds repeating the paired seed change nothing.
        let more: Vec<Sample> = (0..3).map(|i| s("a", Some(10), 0, 10 + i)).collect();
        let p = pair_by_seed(&baseline, &[recent.clone(), more].concat());
        assert_eq!((p.pairs(), p.repeated, p.unmatched), (1, 4, 2));
        assert_eq!(p.recent[0].started_at_ms, 12);
        let p = pair_by_seed(
            &baseline[..1],
            &[s("a", Some(10), 0, 5), s("a", Some(10), 0, 6)],
        );
        assert!(p.usable(), "a repeat does not count against pairing");
    }

    #[test]
    fn another_content_hash_never_pairs_and_the_partner_index_is_taken() {
        let baseline = vec![s("a", Some(10), 3, 1)];
        let mut other = s("a", Some(10), 0, 5);
        other.probe_hash = "h2".into();
        let p = pair_by_seed(&baseline, &[other, s("a", Some(10), 0, 6)]);
        assert_eq!((p.pairs(), p.unmatched), (1, 1));
        assert_eq!(p.recent[0].index, 3);
        assert!(p.usable());
    }

    #[test]
    fn a_partly_paired_baseline_stays_unpaired() {
        // Every later sample pairs, but 3 of the 4 baseline samples would be left out.
        let baseline: Vec<Sample> = (0..4).map(|i| s("a", Some(10 + i), i as u32, 1)).collect();
        let p = pair_by_seed(&baseline, &[s("a", Some(10), 0, 5)]);
        assert_eq!((p.pairs(), p.unmatched, p.baseline_seeded), (1, 0, 4));
        assert!(!p.usable());
        let later: Vec<Sample> = (0..4).map(|i| s("a", Some(10 + i), i as u32, 5)).collect();
        assert!(
            pair_by_seed(&baseline, &later).usable(),
            "the whole baseline pairs"
        );
    }

    #[test]
    fn distinct_later_samples_keep_the_newest_of_each_seed() {
        let mut recent: Vec<Sample> = (0..3).map(|r| s("a", Some(10), 0, 5 + r)).collect();
        recent.push(s("a", None, 0, 9));
        recent.push(s("a", None, 1, 9));
        let (kept, repeats) = distinct_later(&recent);
        assert_eq!(repeats, 2);
        let mut later: Vec<_> = kept.iter().map(|x| (x.seed, x.started_at_ms)).collect();
        later.sort();
        assert_eq!(later, vec![(None, 9), (None, 9), (Some(10), 7)]);
    }
}
