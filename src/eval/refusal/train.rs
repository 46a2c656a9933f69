//! Trains the refusal classifier ([`super::classifier`]) from labelled responses. Deterministic:
//! a fixed shuffle seed, a fixed number of epochs and a fixed learning-rate schedule, so the
//! same corpus gives the same bytes on every run (the shipped `assets/refusal_classifier.bin` is checked
//! against a retrain). Run by `cargo run --release --example train_refusal`.

use super::classifier::{CLASSES, Class, Classifier, probabilities};
use super::features::{BUCKETS, for_each_feature, windows};
use super::{RefusalConfig, RefusalConfigError, RefusalDetector};
use serde::Deserialize;

const SEED: u64 = 0x5EED_2026_1205;

/// Training settings. [`Params::default`] made the shipped weights.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty, applied to the weights an example touches.
    pub l2: f32,
    /// How much an `answer` example weighs against a refusal: false alarms cost more.
    pub answer_weight: f32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            epochs: 30,
            learning_rate: 0.5,
            l2: 5e-4,
            answer_weight: 2.0,
        }
    }
}

/// The training corpus, files under `tests/fixtures/refusal_corpus/`, in training order.
pub const TRAINING_FILES: &[&str] = &[
    "corpus.jsonl",
    "dev.jsonl",
    "heldout.jsonl",
    "heldout-2026-12.jsonl",
    "train-extra.jsonl",
    "heldout-2026-12b.jsonl",
    "train-extra2.jsonl",
    "heldout-2026-12c.jsonl",
    "train-extra3.jsonl",
    "train-extra4.jsonl",
    "heldout-2026-12d.jsonl",
    "train-extra5.jsonl",
    "train-extra6.jsonl",
    "heldout-2026-12e.jsonl",
    "heldout-2026-12f.jsonl",
    "heldout-2026-12g.jsonl",
    "heldout-2026-12h.jsonl",
    "train-extra7.jsonl",
    "heldout-2026-12i.jsonl",
    "heldout-2026-12j.jsonl",
    "heldout-2026-12k.jsonl",
    "heldout-2026-12l.jsonl",
    "train-extra8.jsonl",
    "heldout-2026-12m.jsonl",
    "heldout-2026-12n.jsonl",
    "train-extra9.jsonl",
    "heldout-2026-12o.jsonl",
    "heldout-2026-12p.jsonl",
    "heldout-2026-12q.jsonl",
    "heldout-2026-12r.jsonl",
    "heldout-2026-12s.jsonl",
    "heldout-2026-12t.jsonl",
    "heldout-2026-12u.jsonl",
    "heldout-2026-12v.jsonl",
    "heldout-2026-12w.jsonl",
    "heldout-2026-12x.jsonl",
    "heldout-2026-12y.jsonl",
    "heldout-2026-12z.jsonl",
    "heldout-2026-12aa.jsonl",
    "heldout-2026-12ab.jsonl",
];

/// Reads the named corpus files from `dir`, in order.
pub fn load(dir: &std::path::Path, files: &[&str]) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for f in files {
        let path = dir.join(f);
        let source =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.extend(examples_from_jsonl(&source, f)?);
    }
    Ok(out)
}

/// One labelled response.
#[derive(Debug, Clone)]
pub struct Example {
    pub text: String,
    pub class: Class,
}

#[derive(Deserialize)]
struct Line {
    text: String,
    kind: String,
}

/// Reads the corpus format (`tests/fixtures/refusal_corpus/*.jsonl`): `plain` and `soft` are
/// refusals, `partial` partial refusals, `negative` and `hard_negative` answers.
pub fn examples_from_jsonl(source: &str, name: &str) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for (i, line) in source.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).map_err(|e| format!("{name}:{}: {e}", i + 1))?;
        let class = match l.kind.as_str() {
            "plain" | "soft" => Class::Refusal,
            "partial" => Class::Partial,
            "negative" | "hard_negative" => Class::Answer,
            other => {
                return Err(format!(
                    "{name}:{}: unknown kind {other:?} (plain, soft, partial, negative, hard_negative)",
                    i + 1
                ));
            }
        };
        out.push(Example {
            text: l.text,
            class,
        });
    }
    Ok(out)
}

/// The features of one response, exactly as inference computes them (with the built-in
/// exclusions of `detector`, and no configured ones).
fn featurise(detector: &RefusalDetector, text: &str) -> Vec<u32> {
    let (head, tail) = windows(text);
    let ws: Vec<_> = std::iter::once(head).chain(tail).collect();
    let mut out = Vec::new();
    let _ = for_each_feature(text, &ws, &detector.unread(text), |_, b| out.push(b as u32));
    out
}

/// xorshift64*: a fixed, dependency-free shuffle.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        order.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// Trains on `examples` with the default settings and returns the weights file.
pub fn train(examples: &[Example]) -> Result<Vec<u8>, RefusalConfigError> {
    train_with(examples, Params::default())
}

/// Trains on `examples` with `params` and returns the weights file. Fails only when the
/// built-in detector (whose guards decide what is read) does not compile.
pub fn train_with(examples: &[Example], params: Params) -> Result<Vec<u8>, RefusalConfigError> {
    let detector = RefusalDetector::new(&RefusalConfig::default())?;
    let data: Vec<(Vec<u32>, usize)> = examples
        .iter()
        .map(|e| (featurise(&detector, &e.text), e.class as usize))
        .collect();
    let mut w = vec![0f32; BUCKETS * CLASSES];
    let mut bias = [0f32; CLASSES];
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut state = SEED;
    for epoch in 0..params.epochs {
        shuffle(&mut order, &mut state);
        let lr = params.learning_rate / (1.0 + epoch as f32 * 0.2);
        for &i in &order {
            let (feats, y) = &data[i];
            let mut sums = [0f32; CLASSES];
            for &b in feats {
                let row = &w[b as usize * CLASSES..][..CLASSES];
                for k in 0..CLASSES {
                    sums[k] += row[k];
                }
            }
            let p = probabilities(bias, sums, feats.len());
            let v = 1.0 / (feats.len().max(1) as f32).sqrt();
            let weight = if *y == Class::Answer as usize {
                params.answer_weight
            } else {
                1.0
            };
            let g: [f32; CLASSES] = std::array::from_fn(|k| (p[k] - f32::from(k == *y)) * weight);
            for &b in feats {
                let row = &mut w[b as usize * CLASSES..][..CLASSES];
                for k in 0..CLASSES {
                    row[k] -= lr * (g[k] * v + params.l2 * row[k]);
                }
            }
            for k in 0..CLASSES {
                bias[k] -= lr * g[k] * 0.1;
            }
        }
    }
    Ok(quantise(&w, bias))
}

/// One signed byte per weight: the scale maps the largest magnitude to 127.
fn quantise(w: &[f32], bias: [f32; CLASSES]) -> Vec<u8> {
    let max = w.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let scale = max / 127.0;
    let q: Vec<i8> = w
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    Classifier::encode(scale, bias, &q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, class: Class) -> Example {
        Example {
            text: text.into(),
            class,
        }
    }

    #[test]
    fn training_is_deterministic_and_learns_the_labels() {
        let examples = vec![
            ex("I won't do that, not for anyone.", Class::Refusal),
            ex("No, I will not write that for you.", Class::Refusal),
            ex("Here is the recipe: flour, water, salt.", Class::Answer),
            ex("Sure, the answer to your question is 42.", Class::Answer),
            ex(
                "Here is the outline. I won't give the exact amounts.",
                Class::Partial,
            ),
        ];
        let a = train(&examples).unwrap();
        assert_eq!(a, train(&examples).unwrap());
        let c = Classifier::from_bytes(a).unwrap();
        let s = |t: &str| c.score(t, &[]).unwrap();
        assert!(s("I won't do that, not for anyone.").is_refusal());
        assert!(!s("Sure, the answer to your question is 42.").is_refusal());
        // Too short to read anything into.
        assert!(c.score("I won't.", &[]).is_none());
    }

    #[test]
    fn unknown_kinds_are_reported_with_their_line() {
        let e = examples_from_jsonl("\n{\"text\":\"x\",\"kind\":\"odd\"}", "f.jsonl").unwrap_err();
        assert!(e.starts_with("f.jsonl:2: unknown kind \"odd\""), "{e}");
    }
}
