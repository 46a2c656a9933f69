//! Behavioural identity: is the served model the same one? A two-sample test on the texts.
//!
//! Gao, Liang & Guestrin (2024), *Model Equality Testing: Which Model Is This API Serving?*
//! (arXiv:2410.20247): the maximum mean discrepancy (Gretton et al. 2012, JMLR 13) between the
//! two sides' completions, per prompt, averaged over prompts, with a permutation p-value. The
//! kernel is the mean of two positive semi-definite kernels on whitespace-separated words:
//! their Hamming kernel `(1/L) Σ_{i<L} 1[x_i = y_i]` (both sequences padded to `L` with an
//! end marker; sensitive to the same words in the same places, as a replay gives) and the
//! cosine of word-count vectors (a bag-of-words spectrum kernel, Leslie et al. 2002;
//! sensitive to vocabulary wherever it sits, which free sampling scatters). Per prompt `j` with `m` and `n`
//! samples the unbiased estimate is
//! `MMD²_j = Σ_{i≠i'} k(x_i, x_i')/(m(m−1)) + Σ_{l≠l'} k(y_l, y_l')/(n(n−1)) − 2 Σ k(x_i, y_l)/(mn)`,
//! and the statistic is the mean over prompts. Under the null the labels are exchangeable
//! within each prompt, so the p-value permutes labels prompt by prompt:
//! `(1 + #{T_b ≥ T}) / (1 + B)` with `B` permutations from a seeded [`Rng`] (Phipson & Smyth
//! 2010: never zero, exact level), stopping early once 20 permutations reached the observed
//! value (Besag & Clifford 1991: then p = 20 / permutations run).

use super::{Result, StatsError};
use crate::rng::Rng;

/// One prompt's two samples of texts.
pub struct PromptTexts<'a> {
    pub baseline: Vec<&'a str>,
    pub candidate: Vec<&'a str>,
}

/// The outcome of [`mmd_test`].
#[derive(Debug, Clone, PartialEq)]
pub struct MmdResult {
    /// Mean over prompts of the unbiased MMD² estimate.
    pub statistic: f64,
    pub p_value: f64,
    /// Each prompt's MMD² (in input order; `None` for prompts left out: fewer than two
    /// samples on a side).
    pub per_prompt: Vec<Option<f64>>,
    pub prompts: usize,
    /// Permutations run (fewer than asked when stopped early).
    pub permutations: usize,
}

/// Exceedances after which the permutations stop early (Besag & Clifford 1991).
pub const STOP_AFTER: usize = 20;

/// Longest word sequence compared; longer texts are cut (the first words carry the wording).
pub const MAX_WORDS: usize = 256;

/// A prompt's texts as word ids with the Gram matrix of the Hamming kernel.
struct Gram {
    m: usize,
    n: usize,
    k: Vec<f64>,
}

impl Gram {
    fn new(p: &PromptTexts) -> Gram {
        let words: Vec<Vec<&str>> = p
            .baseline
            .iter()
            .chain(&p.candidate)
            .map(|t| t.split_whitespace().take(MAX_WORDS).collect())
            .collect();
        let len = words.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let bags: Vec<Vec<(&str, f64)>> = words.iter().map(|w| bag(w)).collect();
        let total = words.len();
        let mut k = vec![0.0; total * total];
        for i in 0..total {
            for j in i..total {
                let v = (hamming(&words[i], &words[j], len) + cosine(&bags[i], &bags[j])) / 2.0;
                k[i * total + j] = v;
                k[j * total + i] = v;
            }
        }
        Gram {
            m: p.baseline.len(),
            n: p.candidate.len(),
            k,
        }
    }

    /// Unbiased MMD² with `labels[i]` true for the candidate side: twice the sum over pairs
    /// i < j of k_ij weighted 1/(m(m−1)) within the baseline, 1/(n(n−1)) within the
    /// candidate and −1/(mn) across.
    fn mmd2(&self, labels: &[bool]) -> f64 {
        let total = self.m + self.n;
        let (m, n) = (self.m as f64, self.n as f64);
        let w = [
            [1.0 / (m * (m - 1.0)), -1.0 / (m * n)],
            [-1.0 / (m * n), 1.0 / (n * (n - 1.0))],
        ];
        let mut sum = 0.0;
        for i in 0..total {
            let row = &self.k[i * total..(i + 1) * total];
            let wi = &w[usize::from(labels[i])];
            sum += row[i + 1..]
                .iter()
                .zip(&labels[i + 1..])
                .map(|(k, &l)| k * wi[usize::from(l)])
                .sum::<f64>();
        }
        2.0 * sum
    }
}

/// A text's words as a sorted bag with unit Euclidean norm (an empty text: an empty bag).
fn bag<'a>(words: &[&'a str]) -> Vec<(&'a str, f64)> {
    let mut sorted: Vec<&str> = words.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(&str, f64)> = Vec::new();
    for w in sorted {
        match out.last_mut() {
            Some((last, c)) if *last == w => *c += 1.0,
            _ => out.push((w, 1.0)),
        }
    }
    let norm = out.iter().map(|(_, c)| c * c).sum::<f64>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|(_, c)| *c /= norm);
    }
    out
}

/// The cosine (linear) kernel on word bags: 1 for the same words in any order, 0 for no word
/// in common; two empty texts count as alike.
pub(crate) fn cosine(a: &[(&str, f64)], b: &[(&str, f64)]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    dot
}

/// The Hamming kernel on word sequences padded to `len`: the share of positions that agree.
pub fn hamming(a: &[&str], b: &[&str], len: usize) -> f64 {
    if len == 0 {
        return 1.0;
    }
    let same = (0..len)
        .filter(|&i| match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => x == y,
            (None, None) => true,
            _ => false,
        })
        .count();
    same as f64 / len as f64
}

/// Pooled MMD permutation test over prompts. Prompts with fewer than two texts on a side are
/// left out; an error when none is left or `permutations` is zero.
pub fn mmd_test(prompts: &[PromptTexts], permutations: usize, seed: u64) -> Result<MmdResult> {
    if permutations == 0 {
        return Err(StatsError::Empty {
            what: "MMD permutations",
            min: 1,
        });
    }
    let grams: Vec<Option<Gram>> = prompts
        .iter()
        .map(|p| (p.baseline.len() >= 2 && p.candidate.len() >= 2).then(|| Gram::new(p)))
        .collect();
    let used: Vec<&Gram> = grams.iter().flatten().collect();
    if used.is_empty() {
        return Err(StatsError::Empty {
            what: "MMD prompts with two texts on each side",
            min: 1,
        });
    }
    let labels: Vec<Vec<bool>> = used
        .iter()
        .map(|g| (0..g.m + g.n).map(|i| i >= g.m).collect())
        .collect();
    let stat_of = |labels: &[Vec<bool>]| -> f64 {
        used.iter().zip(labels).map(|(g, l)| g.mmd2(l)).sum::<f64>() / used.len() as f64
    };
    let observed = stat_of(&labels);
    let mut rng = Rng::new(seed);
    let mut shuffled = labels.clone();
    let (mut at_least, mut done) = (0usize, 0usize);
    while done < permutations {
        for l in shuffled.iter_mut() {
            rng.shuffle(l);
        }
        done += 1;
        // A relative tolerance so that permutations equal to the observed value up to
        // rounding count as at least as large.
        if stat_of(&shuffled) >= observed - 1e-12 * observed.abs().max(1.0) {
            at_least += 1;
            if at_least == STOP_AFTER {
                break;
            }
        }
    }
    let p_value = if at_least == STOP_AFTER && done < permutations {
        // Besag & Clifford (1991) sequential Monte Carlo p-value: stopped after h exceedances
        // in l permutations, p = h / l (valid, and far above any alpha worth testing at).
        STOP_AFTER as f64 / done as f64
    } else {
        (1 + at_least) as f64 / (1 + permutations) as f64
    };
    let per_prompt = grams
        .iter()
        .map(|g| {
            g.as_ref()
                .map(|g| g.mmd2(&(0..g.m + g.n).map(|i| i >= g.m).collect::<Vec<_>>()))
        })
        .collect();
    Ok(MmdResult {
        statistic: observed,
        p_value,
        per_prompt,
        prompts: used.len(),
        permutations: done,
    })
}

/// Whitespace-normalised equality: the same words in the same order.
pub fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(words: &[&str], n: usize, rng: &mut Rng, len: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                (0..len)
                    .map(|_| words[rng.below(words.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn prompts<'a>(b: &'a [Vec<String>], c: &'a [Vec<String>]) -> Vec<PromptTexts<'a>> {
        b.iter()
            .zip(c)
            .map(|(x, y)| PromptTexts {
                baseline: x.iter().map(String::as_str).collect(),
                candidate: y.iter().map(String::as_str).collect(),
            })
            .collect()
    }

    #[test]
    fn hamming_counts_agreeing_positions_with_padding() {
        assert_eq!(hamming(&["a", "b"], &["a", "c"], 2), 0.5);
        assert_eq!(hamming(&["a"], &["a"], 4), 1.0);
        assert_eq!(hamming(&["a", "b"], &["a"], 4), 0.75);
        assert_eq!(hamming(&[], &[], 0), 1.0);
    }

    #[test]
    fn mmd_of_a_hand_computed_case() {
        // Baseline texts identical, candidate texts identical, no position agrees across:
        // k = 1 within a side, 0 across, so MMD² = 1 + 1 − 0 = 2.
        let p = PromptTexts {
            baseline: vec!["a b", "a b"],
            candidate: vec!["c d", "c d"],
        };
        let r = mmd_test(&[p], 99, 1).unwrap();
        assert!((r.statistic - 2.0).abs() < 1e-12, "{r:?}");
        // Of the 6 labellings of 2+2, 2 give the observed split: p ≈ 1/3.
        assert!((0.2..0.5).contains(&r.p_value), "{r:?}");
    }

    #[test]
    fn different_vocabularies_are_told_apart_and_the_same_one_is_not() {
        let mut rng = Rng::new(7);
        let a = ["alpha", "beta", "gamma", "delta"];
        let b = ["alpha", "beta", "kappa", "omega"];
        let base: Vec<Vec<String>> = (0..20).map(|_| texts(&a, 10, &mut rng, 12)).collect();
        let same: Vec<Vec<String>> = (0..20).map(|_| texts(&a, 10, &mut rng, 12)).collect();
        let other: Vec<Vec<String>> = (0..20).map(|_| texts(&b, 10, &mut rng, 12)).collect();
        let r = mmd_test(&prompts(&base, &other), 200, 3).unwrap();
        assert!(r.p_value < 0.01, "{r:?}");
        assert!(r.statistic > 0.0);
        let mut small = 0;
        for seed in 0..20 {
            let r = mmd_test(&prompts(&base, &same), 200, seed).unwrap();
            small += usize::from(r.p_value < 0.05);
        }
        assert!(small <= 3, "{small} of 20 same-model runs below 0.05");
    }

    #[test]
    fn reproducible_and_bounded() {
        let p = || PromptTexts {
            baseline: vec!["x y", "x z", "x y"],
            candidate: vec!["x z", "w z", "x y"],
        };
        let r1 = mmd_test(&[p()], 300, 11).unwrap();
        let r2 = mmd_test(&[p()], 300, 11).unwrap();
        assert_eq!(r1, r2);
        assert!(r1.p_value > 0.0 && r1.p_value <= 1.0);
        assert!(mmd_test(&[p()], 0, 1).is_err());
        let single = PromptTexts {
            baseline: vec!["x"],
            candidate: vec!["y", "z"],
        };
        assert!(mmd_test(&[single], 10, 1).is_err());
    }

    #[test]
    fn cosine_of_word_bags() {
        let (a, b, c) = (bag(&["x", "y", "x"]), bag(&["y", "x", "x"]), bag(&["z"]));
        assert!((cosine(&a, &b) - 1.0).abs() < 1e-12);
        assert_eq!(cosine(&a, &c), 0.0);
        // (2, 1) · (1, 1) / (√5 · √2)
        let d = bag(&["x", "y"]);
        assert!((cosine(&a, &d) - 3.0 / 10f64.sqrt()).abs() < 1e-12);
        assert_eq!(cosine(&bag(&[]), &bag(&[])), 1.0);
    }

    #[test]
    fn same_words_ignores_whitespace_only() {
        assert!(same_words("a  b\n c", "a b c"));
        assert!(!same_words("a b c", "a c b"));
    }
}
