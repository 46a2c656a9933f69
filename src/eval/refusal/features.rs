//! The classifier's featuriser: which part of a response it reads, and the hashed character
//! n-grams it turns that text into. Training ([`super::train`]) and inference
//! ([`super::classifier`]) call the same functions, so the shipped weights mean exactly what
//! the trainer meant.
//!
//! A refusal sits at the start or the end of an answer, so only two windows are read: the
//! opening sentences and the closing ones, each capped in bytes. That keeps the cost per
//! response bounded whatever its length. Text inside code, quotations, block quotes and
//! dialogue lines (the guards' masked regions) is skipped: a quoted refusal is not a refusal.

use crate::eval::length::{is_cjk, is_cjk_punctuation};
use crate::eval::swar::skip_plain;
use crate::util::floor_char_boundary;
use std::ops::Range;

/// log2 of the number of hash buckets (64 Ki buckets × 3 classes × 1 byte = 192 KiB).
pub const BUCKET_BITS: u32 = 16;
pub const BUCKETS: usize = 1 << BUCKET_BITS;

/// The opening window: at most this many sentences and bytes.
const HEAD_SENTENCES: usize = 3;
const HEAD_BYTES: usize = 320;
/// The closing window: at most this many sentences and bytes.
const TAIL_SENTENCES: usize = 2;
const TAIL_BYTES: usize = 220;

/// Markers that never occur in normalised text: where a window starts (opening or closing),
/// where masked text was skipped, where a window ends.
const HEAD_MARK: u32 = 0x02;
const TAIL_MARK: u32 = 0x03;
const MASK_MARK: u32 = 0x04;
const END_MARK: u32 = 0x05;

/// The byte ranges the classifier reads: the opening window and, when the response is longer
/// than it, the closing one (never overlapping the opening).
pub(crate) fn windows(text: &str) -> (Range<usize>, Option<Range<usize>>) {
    let start = text.len() - text.trim_start().len();
    let end = text.trim_end().len().max(start);
    let head_end = sentences_forward(text, start, end);
    if head_end >= end {
        return (start..end, None);
    }
    let tail_start = sentences_backward(text, head_end, end);
    let tail = (tail_start < end).then_some(tail_start..end);
    (start..head_end, tail)
}

/// A sentence ends at `。！？`, a newline, or `.!?;` followed by whitespace.
fn ends_sentence(c: char, next: Option<char>) -> bool {
    match c {
        '。' | '！' | '？' | '\n' => true,
        '.' | '!' | '?' | ';' => next.is_none_or(char::is_whitespace),
        _ => false,
    }
}

/// Byte offsets (in `text[from..to]`) just after each sentence end, in order: `f` is called
/// with each and stops the scan by returning `false`. Bytes that cannot end a sentence are
/// skipped without decoding (`。！？` start with 0xE3 or 0xEF).
pub(super) fn sentence_ends(
    text: &str,
    from: usize,
    to: usize,
    mut f: impl FnMut(usize, bool) -> bool,
) {
    let bytes = &text.as_bytes()[..to];
    let mut i = from;
    // Bytes before this are looked at one by one; from it, plain ASCII is skipped in blocks.
    let mut block_end = from;
    while i < to {
        if i >= block_end {
            i = skip_plain(bytes, i, [b'.', b'!', b'?', b';', b'\n']);
            block_end = i + 8;
            if i >= to {
                break;
            }
        }
        let b = bytes[i];
        if !matches!(b, b'.' | b'!' | b'?' | b';' | b'\n' | 0xE3 | 0xEF) {
            i += 1;
            continue;
        }
        let Some(c) = text[i..to].chars().next() else {
            break;
        };
        let after = i + c.len_utf8();
        let next = text[after..to].chars().next();
        if ends_sentence(c, next) && !f(after, next.is_some()) {
            return;
        }
        i = after;
    }
}

/// End of the first [`HEAD_SENTENCES`] sentences after `start`, at most [`HEAD_BYTES`] on.
fn sentences_forward(text: &str, start: usize, end: usize) -> usize {
    let limit = floor_char_boundary(text, (start + HEAD_BYTES).min(end));
    let mut count = 0;
    let mut found = None;
    sentence_ends(text, start, limit, |at, _| {
        count += 1;
        if count == HEAD_SENTENCES {
            found = Some(at);
        }
        found.is_none()
    });
    found.unwrap_or(limit)
}

/// Start of the last [`TAIL_SENTENCES`] sentences before `end`, at most [`TAIL_BYTES`] back
/// and never before `floor`.
fn sentences_backward(text: &str, floor: usize, end: usize) -> usize {
    let lower = floor.max(floor_char_boundary(text, end.saturating_sub(TAIL_BYTES)));
    let lower = if lower > floor {
        // Cut mid-word: start at the next whitespace.
        text[lower..end]
            .find(char::is_whitespace)
            .map_or(lower, |i| lower + i)
    } else {
        lower
    };
    // The last TAIL_SENTENCES boundaries that have text after them.
    let mut last = [lower; TAIL_SENTENCES];
    let mut seen = 0;
    sentence_ends(text, lower, end, |at, more| {
        if more {
            last.rotate_left(1);
            last[TAIL_SENTENCES - 1] = at;
            seen += 1;
        }
        true
    });
    let at = if seen >= TAIL_SENTENCES {
        last[0]
    } else {
        lower
    };
    end - text[at..end].trim_start().len()
}

/// Lower case, one apostrophe, one digit, one space.
fn normalise(c: char) -> u32 {
    if c.is_ascii() {
        return u32::from(ASCII_NORMAL[c as usize]);
    }
    match c {
        // CJK characters and their punctuation have no case, and are neither digits nor
        // spaces.
        c if is_cjk(c) || is_cjk_punctuation(c) => c as u32,
        '\u{2019}' | '\u{2018}' | '\u{02BC}' => '\'' as u32,
        c if c.is_whitespace() => ' ' as u32,
        c if c.is_numeric() => '0' as u32,
        c if c.is_uppercase() => c.to_lowercase().next().unwrap_or(c) as u32,
        c => c as u32,
    }
}

/// [`normalise`] of each ASCII character, as a table: most text is ASCII.
const ASCII_NORMAL: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            b'0'
        } else if c.is_ascii_whitespace() {
            b' '
        } else {
            c.to_ascii_lowercase()
        };
        i += 1;
    }
    t
};

#[inline]
fn mix(h: u32, c: u32) -> u32 {
    (h.rotate_left(5) ^ c).wrapping_mul(0x9E37_79B9)
}

#[inline]
fn bucket(h: u32) -> usize {
    (h.wrapping_mul(0x85EB_CA6B) >> (32 - BUCKET_BITS)) as usize
}

/// Which buckets were already emitted, one bit each.
type Seen = [u64; BUCKETS / 64];

/// Collects the n-grams of one window: characters 2 to 4 long, single CJK characters, and
/// words and word pairs of the scripts that separate words with spaces.
struct Grams<'a> {
    /// The last four characters, newest last.
    ring: [u32; 4],
    len: usize,
    /// Hash of the word being read (0: none), and of the one before it.
    word: u32,
    prev_word: u32,
    /// Every bucket, repeats included, in order: `out[..n]`. Sized for the most one window
    /// can emit.
    out: &'a mut [u32],
    n: usize,
}

impl Grams<'_> {
    #[inline(always)]
    fn emit(&mut self, b: usize) {
        self.out[self.n] = b as u32;
        self.n += 1;
    }

    #[inline(always)]
    fn push(&mut self, c: u32) {
        self.ring = [self.ring[1], self.ring[2], self.ring[3], c];
        self.len = (self.len + 1).min(4);
        // ASCII (most text, and the markers) needs no Unicode tables.
        let (cjk, letter) = if c < 0x80 {
            (false, (c as u8).is_ascii_alphanumeric() || c == '\'' as u32)
        } else {
            let ch = char::from_u32(c);
            if ch.is_some_and(is_cjk) {
                (true, true)
            } else if ch.is_some_and(is_cjk_punctuation) {
                (false, false)
            } else {
                (false, ch.is_some_and(char::is_alphanumeric))
            }
        };
        let mut h = mix(0x2545_F491, c);
        if cjk {
            self.emit(bucket(h));
        }
        if self.len == 4 {
            // After the first characters of a window: all three n-grams.
            h = mix(h, self.ring[2]);
            self.emit(bucket(h ^ 2));
            h = mix(h, self.ring[1]);
            self.emit(bucket(h ^ 3));
            h = mix(h, self.ring[0]);
            self.emit(bucket(h ^ 4));
        } else {
            for k in 2..=self.len {
                h = mix(h, self.ring[4 - k]);
                self.emit(bucket(h ^ k as u32));
            }
        }
        if letter && !cjk {
            self.word = mix(self.word | 1, c);
        } else if self.word != 0 {
            self.emit(bucket(mix(self.word, 0x57)));
            if self.prev_word != 0 {
                self.emit(bucket(mix(self.prev_word ^ self.word, 0x5B)));
            }
            self.prev_word = self.word.rotate_left(11);
            self.word = 0;
        }
        if !letter && c != ' ' as u32 {
            // Punctuation ends a phrase: no word pair across it.
            self.prev_word = 0;
        }
    }
}

/// Appends to `out` the bucket of every feature of `text` within `windows` (window 0 is the
/// opening, 1 the closing) that is not there yet, in order of first appearance, skipping
/// `masked` (sorted, non-overlapping byte ranges). Returns how many the opening window added
/// and the number of characters read. Features are present or absent, never counted: a run
/// of one repeated string ("aaaa…") is one feature, not hundreds outvoting the rest.
pub(crate) fn collect_features(
    text: &str,
    windows: &[Range<usize>],
    masked: &[Range<usize>],
    out: &mut Vec<u32>,
) -> (usize, usize) {
    let mut seen: Seen = [0; BUCKETS / 64];
    out.reserve(windows.iter().map(room).sum());
    let (mut opening, mut read) = (0, 0);
    for (w, range) in windows.iter().enumerate() {
        let before = out.len();
        read += window_features(text, w, range, masked, &mut seen, out);
        if w == 0 {
            opening = out.len() - before;
        }
    }
    (opening, read)
}

/// Calls `emit(window, bucket)` once for every distinct feature, as [`collect_features`]
/// finds them. Returns the number of features and of characters read.
pub(crate) fn for_each_feature<F: FnMut(usize, usize)>(
    text: &str,
    windows: &[Range<usize>],
    masked: &[Range<usize>],
    mut emit: F,
) -> (usize, usize) {
    let mut seen: Seen = [0; BUCKETS / 64];
    let mut out = Vec::new();
    let mut read = 0;
    for (w, range) in windows.iter().enumerate() {
        let before = out.len();
        read += window_features(text, w, range, masked, &mut seen, &mut out);
        out[before..].iter().for_each(|&b| emit(w, b as usize));
    }
    (out.len(), read)
}

/// The most buckets one window can emit, repeats included: a mark or a character is at most
/// one push per byte, plus the two marks around the window, and a push emits at most six
/// features (a CJK unigram, three n-grams, a word and a word pair).
fn room(range: &Range<usize>) -> usize {
    6 * (range.len() + 2)
}

/// What one CJK character counts for in the characters read, against the classifier's
/// minimum (`MIN_CHARS`): a Chinese or Japanese character carries about as much as a word of
/// three Latin letters, so "药物剂量的问题，建议您咨询医生。" (16 characters) is read like an
/// English sentence of some fifty.
const WIDE: usize = 3;

/// The features of window `w` ([`collect_features`]), appended to `out`; returns the
/// characters read (CJK characters counting [`WIDE`]).
fn window_features(
    text: &str,
    w: usize,
    range: &Range<usize>,
    masked: &[Range<usize>],
    seen: &mut Seen,
    out: &mut Vec<u32>,
) -> usize {
    let start = out.len();
    out.resize(start + room(range), 0);
    let mut grams = Grams {
        ring: [0; 4],
        len: 0,
        word: 0,
        prev_word: 0,
        out: &mut out[start..],
        n: 0,
    };
    grams.push(if w == 0 { HEAD_MARK } else { TAIL_MARK });
    let mut read = 0usize;
    let mut m = masked.partition_point(|r| r.end <= range.start);
    // Where `masked[m]` starts: characters before it need no look at the masked regions.
    let mut next_mask = masked.get(m).map_or(usize::MAX, |r| r.start);
    let mut in_mask = false;
    let mut prev_space = false;
    let bytes = text.as_bytes();
    let mut pos = range.start;
    while pos < range.end {
        // Decode by hand: ASCII is one byte, the rest goes through `chars`.
        let b = bytes[pos];
        let (c, len, weight) = if b < 0x80 {
            (u32::from(ASCII_NORMAL[usize::from(b)]), 1, 1)
        } else {
            let c = text[pos..].chars().next().unwrap_or('\u{FFFD}');
            let weight = if is_cjk(c) { WIDE } else { 1 };
            (normalise(c), c.len_utf8(), weight)
        };
        let at = pos;
        pos += len;
        if at >= next_mask {
            while m < masked.len() && masked[m].end <= at {
                m += 1;
            }
            next_mask = masked.get(m).map_or(usize::MAX, |r| r.start);
            if next_mask <= at {
                if !in_mask {
                    grams.push(MASK_MARK);
                    in_mask = true;
                }
                continue;
            }
        }
        in_mask = false;
        read += weight;
        let space = c == ' ' as u32;
        if !(space && prev_space) {
            grams.push(c);
        }
        prev_space = space;
    }
    grams.push(END_MARK);
    // Keep the first occurrence of each bucket not seen before, in place. Whether a bucket is
    // new is as good as random, so the outcome only moves the end, without a branch.
    let all = grams.n;
    let kept = &mut out[start..start + all];
    let mut n = 0;
    for i in 0..all {
        let b = kept[i] as usize;
        let (word, bit) = (b / 64, 1u64 << (b % 64));
        let old = seen[word];
        seen[word] = old | bit;
        kept[n] = b as u32;
        n += usize::from(old & bit == 0);
    }
    out.truncate(start + n);
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str, masked: &[Range<usize>]) -> Vec<(usize, usize)> {
        let (head, tail) = windows(text);
        let ws: Vec<Range<usize>> = std::iter::once(head).chain(tail).collect();
        let mut out = Vec::new();
        for_each_feature(text, &ws, masked, |w, b| out.push((w, b)));
        out
    }

    #[test]
    fn features_are_deterministic_and_normalised() {
        let a = features("I can't  help with THAT.", &[]);
        assert_eq!(a, features("I can't  help with THAT.", &[]));
        // Case, runs of whitespace and typographic apostrophes do not change the features.
        assert_eq!(a, features("i can\u{2019}t help\twith that.", &[]));
        assert_ne!(a, features("I can help with that.", &[]));
        assert!(a.iter().all(|&(w, b)| w == 0 && b < BUCKETS));
    }

    #[test]
    fn cjk_text_yields_single_characters_and_grams() {
        // 5 characters + markers: each CJK character adds a unigram beside its 2–4-grams (and
        // CJK text yields no word features, as symbols do not).
        let zh = features("我不能帮你", &[]);
        let latin = features("+-*/=", &[]);
        assert_eq!(zh.len(), latin.len() + 5);
        // Repetition adds nothing: each feature counts once.
        assert_eq!(
            features("aaaaaaaa", &[]).len(),
            features("aaaaaaaaaaaaaaaa", &[]).len()
        );
        assert_ne!(features("我不能帮你", &[]), features("我可以帮你", &[]));
    }

    #[test]
    fn masked_text_is_skipped() {
        let text = "He wrote \"I can't help with that\" on the wall.";
        let start = text.find('"').unwrap();
        let end = text.rfind('"').unwrap() + 1;
        let masked = features(text, std::slice::from_ref(&(start..end)));
        let other = "He wrote \"we can have tea and cake\" on the wall.";
        let o_end = other.rfind('"').unwrap() + 1;
        // What was inside the quotation does not matter once masked.
        assert_eq!(
            masked,
            features(other, std::slice::from_ref(&(start..o_end)))
        );
    }

    #[test]
    fn windows_are_the_opening_and_the_closing_sentences() {
        let short = "  Sorry, I can't help with that.  ";
        assert_eq!(windows(short), (2..32, None));
        let long = format!(
            "One. Two. Three. {}Closing one. I won't go further.",
            "Middle sentence here. ".repeat(40)
        );
        let (head, tail) = windows(&long);
        assert_eq!(&long[head], "One. Two. Three.");
        assert_eq!(&long[tail.unwrap()], "Closing one. I won't go further.");
        // A huge response still reads a bounded amount.
        let huge = "word ".repeat(1_000_000);
        let (head, tail) = windows(&huge);
        assert!(head.len() <= HEAD_BYTES && tail.unwrap().len() <= TAIL_BYTES);
    }
}
