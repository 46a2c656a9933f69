//! The learned layer: a multinomial logistic regression over hashed character n-grams
//! ([`super::features`]) with three classes, `answer`, `refusal` and `partial` (answers, but
//! withholds a part). It does not depend on listing phrasings: it recognises refusals by the
//! pieces of words they are made of, in every language of the training corpus.
//!
//! The weights ship in the repository (`assets/refusal_classifier.bin`, written by
//! `cargo run --release --example train_refusal`), one signed byte per bucket and class plus a
//! scale and three biases:
//!
//! ```text
//! "MWRC" | version u8 = 1 | bucket bits u8 | 0u16 | scale f32 LE | bias [f32 LE; 3] | i8 × buckets × 3
//! ```

use super::features::{BUCKET_BITS, BUCKETS, collect_features, windows};
use super::{Layer, RefusalJudgement};
use std::borrow::Cow;
use std::ops::Range;

/// The shipped weights.
static SHIPPED: &[u8] = include_bytes!("../../../assets/refusal_classifier.bin");

const MAGIC: &[u8; 4] = b"MWRC";
const HEADER: usize = 4 + 4 + 4 + 12;
pub const CLASSES: usize = 3;

/// The response is a refusal when the classifier gives `refusal` + `partial` at least this
/// probability. Kept at 0.7 by cross-validation by file over the training corpus, before the
/// held-out measurement and not tuned on it: pooled precision / recall 0.969 / 0.810 at 0.7,
/// 0.958 / 0.841 at 0.6. At 0.6 the simulator's alternate prose (ordinary answers) was flagged
/// 5.1 % of the time against 1.7 % at 0.7 (`train_refusal -- --sim-prose`); a change of
/// wording would read as more refusals (docs/evaluation.md).
pub const THRESHOLD: f32 = 0.7;

/// The classifier judges only a response with at least this many characters outside code and
/// quotations: a fragment of a few words ("Keeping notes", a cut-off answer) gives too few
/// features to read anything into, and a short answer that opens with "No," reads like a
/// curt refusal ("Нет, это не так.", "No, I don't think so."). Short refusals are the rules'
/// ground ("I won't.").
pub const MIN_CHARS: usize = 32;

/// A refusal found by a rule is labelled partial when the classifier gives `partial` at least
/// this probability.
pub const PARTIAL_THRESHOLD: f32 = 0.5;

/// The three labels the classifier knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Answer = 0,
    Refusal = 1,
    Partial = 2,
}

/// A weights file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusal classifier weights: {0}; retrain with `cargo run --release --example train_refusal`"
)]
pub struct WeightsError(pub String);

/// A loaded model. Cheap to clone when it borrows the shipped weights.
#[derive(Debug, Clone)]
pub struct Classifier {
    threshold: f32,
    partial_threshold: f32,
    min_chars: usize,
    scale: f32,
    bias: [f32; CLASSES],
    /// `i8` weights stored as bytes, bucket-major (three classes of one bucket side by side).
    weights: Cow<'static, [u8]>,
}

/// What the classifier made of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierScore {
    /// Probability of `refusal` or `partial`.
    pub refusal: f32,
    /// Probability of `partial`.
    pub partial: f32,
    /// The window that weighed most towards a refusal (the opening or the closing sentences).
    pub segment: Range<usize>,
    /// Every window read.
    pub windows: Vec<Range<usize>>,
    /// The probability from which it is a refusal ([`THRESHOLD`]).
    pub threshold: f32,
    /// The probability of `partial` from which a refusal found by a rule is partial
    /// ([`PARTIAL_THRESHOLD`]).
    pub partial_threshold: f32,
}

impl ClassifierScore {
    pub fn is_refusal(&self) -> bool {
        self.refusal >= self.threshold
    }

    /// When the classifier decides: `partial` outweighs an outright refusal.
    pub fn is_partial(&self) -> bool {
        self.partial * 2.0 > self.refusal
    }

    /// When a rule decided: the classifier reads the response as a partial refusal.
    pub fn backs_partial(&self) -> bool {
        self.partial >= self.partial_threshold
    }
}

impl Classifier {
    /// The weights shipped with this build.
    pub fn shipped() -> Result<Self, WeightsError> {
        Self::parse(Cow::Borrowed(SHIPPED))
    }

    /// A model from bytes in the format above (e.g. one just trained).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, WeightsError> {
        Self::parse(Cow::Owned(bytes))
    }

    fn parse(bytes: Cow<'static, [u8]>) -> Result<Self, WeightsError> {
        let err = |m: &str| WeightsError(m.to_string());
        if bytes.len() < HEADER || &bytes[..4] != MAGIC || bytes[4] != 1 {
            return Err(err("not a version 1 weights file (bad magic or version)"));
        }
        if u32::from(bytes[5]) != BUCKET_BITS {
            return Err(err(&format!(
                "{} bucket bits, the featuriser uses {BUCKET_BITS}",
                bytes[5]
            )));
        }
        if bytes.len() != HEADER + BUCKETS * CLASSES {
            return Err(err(&format!(
                "{} bytes, expected {}",
                bytes.len(),
                HEADER + BUCKETS * CLASSES
            )));
        }
        let f = |at: usize| {
            f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let scale = f(8);
        let bias = [f(12), f(16), f(20)];
        if !scale.is_finite() || bias.iter().any(|b| !b.is_finite()) {
            return Err(err("scale or bias is not a finite number"));
        }
        let weights = match bytes {
            Cow::Borrowed(b) => Cow::Borrowed(&b[HEADER..]),
            Cow::Owned(mut b) => {
                b.drain(..HEADER);
                Cow::Owned(b)
            }
        };
        Ok(Classifier {
            threshold: THRESHOLD,
            partial_threshold: PARTIAL_THRESHOLD,
            min_chars: MIN_CHARS,
            scale,
            bias,
            weights,
        })
    }

    /// The same model deciding at another probability (for measurements).
    pub fn with_threshold(mut self, threshold: f32, partial_threshold: f32) -> Self {
        self.threshold = threshold;
        self.partial_threshold = partial_threshold;
        self
    }

    /// The same model reading responses from another length (for measurements).
    pub fn with_min_chars(mut self, min_chars: usize) -> Self {
        self.min_chars = min_chars;
        self
    }

    /// Serialises a model (used by the trainer).
    pub(crate) fn encode(scale: f32, bias: [f32; CLASSES], weights: &[i8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, BUCKET_BITS as u8, 0, 0]);
        out.extend_from_slice(&scale.to_le_bytes());
        for b in bias {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out.extend(weights.iter().map(|&w| w as u8));
        out
    }

    /// Scores `text`, skipping `masked` (sorted, non-overlapping byte ranges of code,
    /// quotations and dialogue). `None` when fewer than [`MIN_CHARS`] characters are left to
    /// read.
    pub fn score(&self, text: &str, masked: &[Range<usize>]) -> Option<ClassifierScore> {
        let (head, tail) = windows(text);
        let windows: Vec<Range<usize>> = std::iter::once(head).chain(tail).collect();
        // Buckets first, sums after: adding into the sums as each feature is found makes every
        // addition wait for the previous one through memory.
        // The opening's features all come before the closing's.
        let mut buckets: Vec<u32> = Vec::new();
        let (opening, read) = collect_features(text, &windows, masked, &mut buckets);
        let n = buckets.len();
        if read < self.min_chars {
            return None;
        }
        let w: &[u8] = &self.weights;
        let (head, tail) = buckets.split_at(opening);
        let sums = [head, tail].map(|bs| {
            let (mut s0, mut s1, mut s2) = (0i32, 0i32, 0i32);
            for &b in bs {
                let row = &w[b as usize * CLASSES..b as usize * CLASSES + CLASSES];
                s0 += i32::from(row[0] as i8);
                s1 += i32::from(row[1] as i8);
                s2 += i32::from(row[2] as i8);
            }
            [s0, s1, s2]
        });
        let total: [i32; CLASSES] = std::array::from_fn(|k| sums[0][k] + sums[1][k]);
        let p = self.probabilities(total, n);
        let lean = |s: &[i32; CLASSES]| s[1].max(s[2]) - s[0];
        let segment = if windows.len() > 1 && lean(&sums[1]) > lean(&sums[0]) {
            windows[1].clone()
        } else {
            windows[0].clone()
        };
        Some(ClassifierScore {
            refusal: p[1] + p[2],
            partial: p[2],
            segment,
            windows,
            threshold: self.threshold,
            partial_threshold: self.partial_threshold,
        })
    }

    fn probabilities(&self, sums: [i32; CLASSES], n: usize) -> [f32; CLASSES] {
        probabilities(self.bias, sums.map(|s| s as f32 * self.scale), n)
    }
}

/// The judgement when the classifier decides: rule `classifier:partial` or
/// `classifier:refusal`, span the window that weighed most.
pub(crate) fn judgement(score: ClassifierScore) -> RefusalJudgement {
    let partial = score.is_partial();
    RefusalJudgement {
        refusal: true,
        empty: false,
        partial,
        rule: Some(format!(
            "classifier:{}",
            if partial { "partial" } else { "refusal" }
        )),
        layer: Some(Layer::Classifier),
        span: Some(score.segment.clone()),
        guarded: None,
        classifier: Some(score),
    }
}

/// Softmax of `bias + sums / sqrt(n)`: features are counted, and a long window should not
/// outvote a short one by length alone.
pub(crate) fn probabilities(
    bias: [f32; CLASSES],
    sums: [f32; CLASSES],
    n: usize,
) -> [f32; CLASSES] {
    let v = 1.0 / (n.max(1) as f32).sqrt();
    let logits: [f32; CLASSES] = std::array::from_fn(|k| bias[k] + sums[k] * v);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e = logits.map(|l| (l - max).exp());
    let z: f32 = e.iter().sum();
    e.map(|x| x / z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_weights_load() {
        let c = Classifier::shipped().unwrap();
        assert_eq!(c.weights.len(), BUCKETS * CLASSES);
    }

    #[test]
    fn a_broken_weights_file_is_a_clear_error() {
        let e = Classifier::from_bytes(b"nope".to_vec()).unwrap_err();
        assert!(e.to_string().contains("retrain with"), "{e}");
        let mut short = SHIPPED.to_vec();
        short.truncate(HEADER + 10);
        let e = Classifier::from_bytes(short).unwrap_err();
        assert!(e.to_string().contains("bytes, expected"), "{e}");
    }

    #[test]
    fn probabilities_sum_to_one_and_follow_the_sums() {
        let p = probabilities([0.0; 3], [0.0, 4.0, 0.0], 4);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[0] && p[1] > p[2]);
        // More evidence for a class never lowers its probability.
        let q = probabilities([0.0; 3], [0.0, 8.0, 0.0], 4);
        assert!(q[1] > p[1]);
    }

    #[test]
    fn a_cjk_character_counts_for_three_towards_the_minimum() {
        let c = Classifier::shipped().unwrap();
        // 21 characters: read (63 ≥ 32), where 21 Latin letters would not be.
        assert!(
            c.score("药物剂量的问题，建议您咨询医生或者药师哦。", &[])
                .is_some()
        );
        assert!(c.score("Ask the pharmacist.", &[]).is_none());
        // Ten characters stay below it, like a short task answer.
        assert!(c.score("答案是四十二，没错。", &[]).is_none());
    }
}
