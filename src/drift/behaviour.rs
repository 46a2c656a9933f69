//! The `behaviour` metric: do the two sides' texts come from the same model?
//!
//! Per probe, the texts of both sides (cut to the stored excerpt, so a live side and a stored
//! baseline compare alike) go into the pooled MMD permutation test of `stats::mmd` (Gao, Liang
//! & Guestrin 2024). Its p-value is judged at `Margins::behaviour_alpha` (0.01) in a family of
//! its own: a change is reported as `changed`, a warning beside the quality verdict, never a
//! quality regression (the same weights with other sampling settings, or a different model with
//! equal rates, is not worse by itself; it is a different served behaviour).
//!
//! Seed-paired replay agreement: where a probe declares a seed, sample `i` was sent with
//! `seed + i` on both sides; the share of such pairs whose texts are the same words in the same
//! order is shown beside the kernel test (a server that honours seeds replays itself).

use super::analyze::Basis;
use super::prepare::Obs;
use super::{Category, Effect, Margins, Metric, MetricResult, Side, Verdict};
use crate::stats::{PromptTexts, mmd_test, same_words};
use crate::util::excerpt;
use std::collections::{BTreeMap, BTreeSet};

/// Permutations of the MMD test: p-values resolve to 1/500, fine against alpha 0.01.
pub(crate) const PERMUTATIONS: usize = 499;
/// Fixed seed of the permutations: the same inputs always give the same p-value.
const SEED: u64 = 0x6265_6861_7669_6f75;
/// Probes named as differing most.
const NAMED: usize = 3;

/// A text as a baseline stores it, normalised: `excerpt` can end one character over its
/// length when a word ends exactly at the limit, and an excerpt of such an excerpt is cut
/// once more; applied twice it is a fixed point, so a live text and a stored excerpt of the
/// same answer compare equal.
pub fn stored_form(text: &str) -> String {
    excerpt(&excerpt(text))
}

fn texts(probes: usize, obs: &[Obs]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); probes];
    for o in obs {
        if let Some(t) = o.text {
            out[o.probe].push(stored_form(t));
        }
    }
    out
}

/// Seed-paired agreement: `(same, pairs)` over samples of seeded probes with the same index.
fn agreement(b: &[Obs], c: &[Obs], seeded: &BTreeSet<usize>) -> (u64, u64) {
    let mut first: BTreeMap<(usize, u32), &str> = BTreeMap::new();
    for o in b.iter().filter(|o| seeded.contains(&o.probe)) {
        if let Some(t) = o.text {
            first.entry((o.probe, o.index)).or_insert(t);
        }
    }
    let (mut same, mut pairs) = (0, 0);
    let mut seen = BTreeSet::new();
    for o in c.iter().filter(|o| seeded.contains(&o.probe)) {
        let (Some(t), Some(r)) = (o.text, first.get(&(o.probe, o.index))) else {
            continue;
        };
        if seen.insert((o.probe, o.index)) {
            pairs += 1;
            same += u64::from(same_words(t, r));
        }
    }
    (same, pairs)
}

/// The behaviour metric, or `None` when no probe has two texts on each side (texts not kept).
pub(crate) fn behaviour(
    probes: &[(String, String)],
    b: &[Obs],
    c: &[Obs],
    margins: &Margins,
    seeded: &BTreeSet<String>,
) -> Option<(MetricResult, Basis)> {
    let (tb, tc) = (texts(probes.len(), b), texts(probes.len(), c));
    let prompts: Vec<PromptTexts> = tb
        .iter()
        .zip(&tc)
        .map(|(x, y)| PromptTexts {
            baseline: x.iter().map(String::as_str).collect(),
            candidate: y.iter().map(String::as_str).collect(),
        })
        .collect();
    let r = mmd_test(&prompts, PERMUTATIONS, SEED).ok()?;
    let changed = r.p_value < margins.behaviour_alpha;
    let mut ranked: Vec<(f64, usize)> = r
        .per_prompt
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (v, i)))
        .collect();
    ranked.sort_by(|x, y| y.0.total_cmp(&x.0));
    let seeded_idx: BTreeSet<usize> = probes
        .iter()
        .enumerate()
        .filter(|(_, (s, id))| seeded.contains(&format!("{s}/{id}")))
        .map(|(i, _)| i)
        .collect();
    let (same, pairs) = agreement(b, c, &seeded_idx);
    let mut words = Vec::new();
    if pairs > 0 {
        words.push(format!(
            "seed-paired replay agreement {:.0}% ({same} of {pairs} pairs identical)",
            same as f64 / pairs as f64 * 100.0
        ));
    }
    if changed {
        let top: Vec<String> = ranked
            .iter()
            .take(NAMED)
            .map(|(v, i)| format!("{}/{} (MMD² {v:.2})", probes[*i].0, probes[*i].1))
            .collect();
        words.push(format!("texts differ most on {}", top.join(", ")));
    } else {
        words.push(format!(
            "texts consistent with the same model ({} probes)",
            r.prompts
        ));
    }
    let count = |t: &[Vec<String>]| t.iter().map(Vec::len).sum::<usize>() as u64;
    let side = |n: u64| Side {
        n,
        events: None,
        rate: None,
        lower: None,
        upper: None,
        median: None,
        p90: None,
    };
    let result = MetricResult {
        metric: Metric::Behaviour,
        label: Metric::Behaviour.label(),
        category: Category::Behaviour,
        verdict: if changed {
            Verdict::Changed
        } else {
            Verdict::Pass
        },
        test: "mmd_permutation".into(),
        p_value: Some(r.p_value),
        // A family of its own: nothing to adjust for.
        p_adjusted: Some(r.p_value),
        e_value: None,
        effect: Effect {
            measure: "mmd2".into(),
            estimate: Some(r.statistic),
            lower: None,
            upper: None,
        },
        secondary: (pairs > 0).then(|| Effect {
            measure: "replay_agreement".into(),
            estimate: Some(same as f64 / pairs as f64),
            lower: None,
            upper: None,
        }),
        baseline: side(count(&tb)),
        candidate: side(count(&tc)),
        margin: format!(
            "p < {} (no practical margin: any change)",
            margins.behaviour_alpha
        ),
        more_samples: None,
        detail: Some(words.join("; ")),
        strata: Vec::new(),
    };
    Some((result, Basis::Decided))
}

#[cfg(test)]
mod tests {
    use super::stored_form;

    #[test]
    fn the_stored_form_of_a_stored_excerpt_is_the_same() {
        // 240 characters of words exactly, then more: the first excerpt is 241 characters.
        let full = format!("abcde{} more words follow", " abcd".repeat(47));
        let once = crate::util::excerpt(&full);
        assert_eq!(once.chars().count(), 241);
        assert_eq!(stored_form(&full), stored_form(&once));
        assert!(stored_form(&full).chars().count() <= crate::baseline::EXCERPT_CHARS);
    }
}
