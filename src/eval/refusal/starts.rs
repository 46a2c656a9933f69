//! The one pass that finds the lexicon's phrases, its pair heads, the exclusions and the
//! grammar's anchors in a response.
//!
//! Every one of these patterns starts with a letter or digit of a script that separates words
//! with spaces, and then counts only on a word start, or with a CJK character, which may sit
//! anywhere. So instead of an unanchored Aho-Corasick search, which walks its automaton
//! through every byte, including the middles of words where no match can count, the same
//! automaton is walked anchored from each place a pattern may start: each word start and each
//! CJK character. A bitset of the patterns' first four bytes sends most places away with one
//! lookup ("the ", "process", "with" start no pattern). The result is exactly the unanchored
//! search's, minus the matches that a word-boundary check would drop, in the same order; a
//! test compares the two on every labelled response.

use super::is_spaced_letter;
use crate::eval::length::{is_cjk, is_cjk_punctuation};
use crate::eval::swar::{all_ascii, byte_bits, chunk_at, in_range, lower_letters};
use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, PatternID};

/// One match: pattern index, start and end (byte offsets).
pub(super) type Found = (usize, usize, usize);

/// Bits in the first-bytes filter (8 KiB).
const FILTER_BITS: u32 = 16;

/// The patterns, compiled for anchored walks, with the filter of their first bytes.
#[derive(Debug, Clone)]
pub(super) struct Starts {
    nfa: NFA,
    /// One bit per hash of a pattern's first four bytes ([`key`]).
    firsts: Box<[u64]>,
}

/// A pattern this search cannot find where an unanchored search would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum StartsError {
    #[error(
        "pattern {0:?} must start with a letter, a digit or a CJK character and be at least \
         three bytes long"
    )]
    Pattern(String),
    #[error("{0}")]
    Build(String),
}

impl Starts {
    /// Compiles `patterns` (ASCII case-insensitive). Each must start with a letter or digit of
    /// a spaced script or a CJK character, and be at least three bytes long.
    pub(super) fn new(patterns: &[String]) -> Result<Self, StartsError> {
        let mut firsts = vec![0u64; 1 << (FILTER_BITS - 6)].into_boxed_slice();
        for p in patterns {
            let lead = p.chars().next();
            if p.len() < 3 || !lead.is_some_and(|c| is_spaced_letter(c) || is_cjk(c)) {
                return Err(StartsError::Pattern(p.clone()));
            }
            // A three-byte pattern may be followed by any byte, or by none.
            let first: Vec<u8> = p.bytes().take(4).collect();
            let fourth: Vec<u8> = match first.get(3) {
                Some(&b) => vec![b],
                None => (0..=255).collect(),
            };
            for b in fourth {
                let k = key(&[first[0], first[1], first[2], b], 0);
                firsts[k / 64] |= 1 << (k % 64);
            }
        }
        let nfa = NFA::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .map_err(|e| StartsError::Build(e.to_string()))?;
        Ok(Starts { nfa, firsts })
    }

    /// Appends every match starting on a word start or a CJK character, ordered as an
    /// overlapping unanchored search reports them: by end, then start, then pattern.
    pub(super) fn find_all(&self, text: &str, out: &mut Vec<Found>) {
        let bytes = text.as_bytes();
        let first = out.len();
        let mut prev_word = false;
        let mut i = 0;
        while i < bytes.len() {
            // Eight ASCII bytes at a time: a word start is a letter or digit after neither.
            if let Some(x) = chunk_at(bytes, i).filter(|&x| all_ascii(x)) {
                let word =
                    byte_bits(in_range(x, b'0', b'9') | in_range(lower_letters(x), b'a', b'z'));
                let mut starts = word & !((word << 1) | u32::from(prev_word));
                while starts != 0 {
                    self.try_at(bytes, i + starts.trailing_zeros() as usize, out);
                    starts &= starts - 1;
                }
                prev_word = word & 0x80 != 0;
                i += 8;
                continue;
            }
            let (word, start, len) = if bytes[i] < 0x80 {
                let word = bytes[i].is_ascii_alphanumeric();
                (word, word && !prev_word, 1)
            } else {
                let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
                // CJK first: most of such text is CJK or its punctuation, and
                // `is_alphanumeric` is a slower lookup.
                if is_cjk(c) {
                    (false, true, c.len_utf8())
                } else if is_cjk_punctuation(c) {
                    (false, false, c.len_utf8())
                } else {
                    let word = c.is_alphanumeric();
                    (word, word && !prev_word, c.len_utf8())
                }
            };
            if start {
                self.try_at(bytes, i, out);
            }
            prev_word = word;
            i += len;
        }
        out[first..].sort_unstable_by_key(|&(p, s, e)| (e, s, p));
    }

    /// The patterns that start at `at`, when the filter lets the place through. The filter is
    /// inlined at each call; the walk, rarely needed, is not.
    #[inline(always)]
    fn try_at(&self, bytes: &[u8], at: usize, out: &mut Vec<Found>) {
        let k = key(bytes, at);
        if self.firsts[k / 64] & (1 << (k % 64)) != 0 {
            self.walk(bytes, at, out);
        }
    }

    /// The patterns that start at `at`.
    #[inline(never)]
    fn walk(&self, bytes: &[u8], at: usize, out: &mut Vec<Found>) {
        let nfa = &self.nfa;
        let Ok(mut sid) = nfa.start_state(Anchored::Yes) else {
            return;
        };
        for (n, &b) in bytes[at..].iter().enumerate() {
            sid = nfa.next_state(Anchored::Yes, sid, b);
            if !nfa.is_special(sid) {
                continue;
            }
            if nfa.is_dead(sid) {
                return;
            }
            if nfa.is_match(sid) {
                // A state also carries the matches of its suffixes (for unanchored searches);
                // only the patterns as long as the walk start here.
                for m in 0..nfa.match_len(sid) {
                    let pattern: PatternID = nfa.match_pattern(sid, m);
                    if nfa.pattern_len(pattern) == n + 1 {
                        out.push((pattern.as_usize(), at, at + n + 1));
                    }
                }
            }
        }
    }
}

/// Hash of the four bytes at `at` (missing bytes as zero), each with bit 5 set so that ASCII
/// letters hash alike in either case (other bytes merge in pairs, which only lets a few more
/// places through).
#[inline]
fn key(bytes: &[u8], at: usize) -> usize {
    let word = match bytes.get(at..at + 4) {
        Some(four) => u32::from_le_bytes([four[0], four[1], four[2], four[3]]),
        None => {
            let b = |i: usize| u32::from(bytes.get(at + i).copied().unwrap_or(0));
            b(0) | b(1) << 8 | b(2) << 16 | b(3) << 24
        }
    };
    ((word | 0x2020_2020).wrapping_mul(0x9E37_79B1) >> (32 - FILTER_BITS)) as usize
}

/// What [`Starts::find_all`] must find, for tests: every match of an overlapping unanchored
/// search with `ac` (built over the same patterns), minus those starting with a word character
/// right after another one.
#[cfg(test)]
pub(super) fn reference(ac: &aho_corasick::AhoCorasick, text: &str) -> Vec<Found> {
    ac.find_overlapping_iter(text)
        .filter(|m| {
            let first = text[m.start()..].chars().next();
            !(first.is_some_and(is_spaced_letter)
                && text[..m.start()]
                    .chars()
                    .next_back()
                    .is_some_and(is_spaced_letter))
        })
        .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind};

    fn patterns() -> Vec<String> {
        [
            "I can't",
            "can't help",
            "i won't",
            "won't",
            "我不能",
            "不能",
            "Je ne peux",
            "ne peux pas",
            "i'd",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The reference: every overlapping match of an unanchored search over `patterns`.
    fn unanchored(patterns: &[String], text: &str) -> Vec<Found> {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(patterns)
            .unwrap();
        reference(&ac, text)
    }

    fn found(patterns: &[String], text: &str) -> Vec<Found> {
        let mut out = Vec::new();
        Starts::new(patterns).unwrap().find_all(text, &mut out);
        out
    }

    #[test]
    fn finds_what_the_unanchored_search_finds_on_word_starts() {
        let ps = patterns();
        for text in [
            "I CAN'T help with that, and I won't.",
            "Scan't is no word; xwon't neither, but \u{e9}won't starts after a letter.",
            "他说我不能去。不能！",
            "Je ne peux pas, d\u{e9}sol\u{e9}. Je ne peux",
            "短い i can't help 我不能 mixed, 12won't",
            "",
            "i",
            "I'd",
            "Well, I'D. i'dx i'd",
        ] {
            assert_eq!(found(&ps, text), unanchored(&ps, text), "{text:?}");
        }
        // Overlapping matches are all there, in the unanchored search's order.
        assert_eq!(found(&ps, "I can't help"), vec![(0, 0, 7), (1, 2, 12)]);
        // No match in the middle of a word, whether the search ran on eight-byte blocks or not.
        assert!(found(&ps, "Xcan't help").is_empty());
        assert!(found(&ps, "0123456 abcdefgXcan't help").is_empty());
    }

    #[test]
    fn a_pattern_that_could_be_missed_is_refused() {
        for bad in ["'tis", "no", " can't"] {
            let e = Starts::new(&[bad.to_string()]).unwrap_err();
            assert_eq!(e, StartsError::Pattern(bad.to_string()));
        }
    }
}
