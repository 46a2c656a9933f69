//! The refusal grammar: a second layer that recognises the *structure* of a refusal instead of
//! listing its phrasings, in the nine languages of the lexicon.
//!
//! A frame is an anchor (a closed-class construction: first person + negated modal or volition,
//! "il m'est impossible de", "rather than", "no es algo …") plus open word classes that must
//! sit in the same sentence, after or before it:
//!
//! - negated ability / volition + a request verb: `I'm not going to` … `walk you through`,
//!   `no estoy dispuesto a` … `detallar`, `писать` … `я не буду` (object and verb fronted);
//! - existential "not something I …": `isn't something I'll` … `do`, `no es algo en lo que`
//!   … `pueda`;
//! - German verb-final order: `ich werde` … `nicht` … `erklären`;
//! - redirection: `rather than` … `explaining` … `point you to` (opening only);
//! - abstention idioms with a first-person future: `I think I'll` … `sit this one out`;
//! - a curt refusal standing as its own sentence: `Hors de question.`, `这个不聊。`.
//!
//! The verb classes are stems (`provid` matches provide / providing) matched on a word start,
//! so one entry covers the inflections a lexicon would have to list. Frames add recall where
//! the lexicon's phrase list ends; the guards (code, quotations, dialogue, exclusions) apply
//! to both layers alike. References: the negation-scope view of refusal follows the cue +
//! scope decomposition of negation detection (Morante & Daelemans 2009, "A metalearning
//! approach to processing the scope of negation"); here cue = anchor, scope = the class window.

use super::frames::{FRAMES, Frame, Need};
use std::ops::Range;

/// One open word class, compiled: its words (with their case and apostrophe variants,
/// whether they must start a word and whether they must end one), bucketed by lower-cased
/// first byte.
#[derive(Debug, Clone)]
struct Class {
    buckets: Vec<Vec<(String, bool, bool)>>,
}

impl Class {
    fn new(alternatives: &str) -> Self {
        let mut buckets = vec![Vec::new(); 256];
        for alternative in alternatives.split('|') {
            // `scrivo$`: the whole word, not a stem ("scrivono" is another person).
            let whole = alternative.ends_with('$');
            for w in super::variants(alternative.trim_end_matches('$')) {
                let bound = w.chars().next().is_some_and(super::is_spaced_letter);
                if let Some(&b) = w.as_bytes().first() {
                    buckets[usize::from(b.to_ascii_lowercase())].push((w, bound, whole));
                }
            }
        }
        Class { buckets }
    }

    /// Start and end of the first word of the class starting in `text[from..to]` (`from` a
    /// character boundary), in the same clause (no sentence break or comma before it).
    fn find(&self, text: &str, from: usize, to: usize) -> Option<(usize, usize)> {
        self.find_in(text, from, to, Across::Nothing)
    }

    /// [`Class::find`], crossing what `across` allows: commas for the second word of a
    /// two-word frame, which may sit in the next clause ("Rather than explaining X, let me
    /// point you to …", "I can explain X, but not Y"); sentences for a reason, which often
    /// follows in a sentence of its own ("I took that line out. It reads as a threat.").
    fn find_in(
        &self,
        text: &str,
        from: usize,
        to: usize,
        across: Across,
    ) -> Option<(usize, usize)> {
        let bytes = text.as_bytes();
        let to = crate::util::floor_char_boundary(text, to.min(text.len()));
        if from >= to {
            return None;
        }
        for (off, c) in text[from..to].char_indices() {
            let p = from + off;
            let comma = c == ',' || c == '，';
            let stop = match across {
                Across::Nothing => super::is_sentence_break(c) || comma,
                Across::Commas => super::is_sentence_break(c),
                Across::Sentences => false,
            };
            if stop {
                return None;
            }
            let bucket = &self.buckets[usize::from(bytes[p].to_ascii_lowercase())];
            if bucket.is_empty() {
                continue;
            }
            let rest = &bytes[p..];
            let after_letter = || {
                text[..p]
                    .chars()
                    .next_back()
                    .is_some_and(super::is_spaced_letter)
            };
            for (w, bound, whole) in bucket {
                let w = w.as_bytes();
                if rest.len() >= w.len()
                    && rest[..w.len()].eq_ignore_ascii_case(w)
                    && !(*bound && after_letter())
                    && !(*whole
                        && text[p + w.len()..]
                            .chars()
                            .next()
                            .is_some_and(super::is_spaced_letter))
                {
                    return Some((p, p + w.len()));
                }
            }
        }
        None
    }

    /// Start of the first word of the class in the `gap` bytes before `at`, within the
    /// sentence that contains `at`.
    fn find_before(&self, text: &str, at: usize, gap: usize) -> Option<usize> {
        let lo = crate::util::floor_char_boundary(text, at.saturating_sub(gap));
        let start = text[lo..at]
            .char_indices()
            .rfind(|(_, c)| super::is_sentence_break(*c) || matches!(c, ',' | '，'))
            .map_or(lo, |(i, c)| lo + i + c.len_utf8());
        self.find(text, start, at).map(|(s, _)| s)
    }
}

/// What a word-class search may cross ([`Class::find_in`]).
#[derive(Debug, Clone, Copy)]
enum Across {
    Nothing,
    Commas,
    Sentences,
}

#[derive(Debug, Clone)]
enum Compiled {
    Nothing,
    After(Class, usize),
    Before(Class, usize),
    Around(Class, usize),
    Then(Class, usize, Class, usize),
    Reason(Class, usize),
    Alone(usize),
}

/// The compiled grammar. Build once, share across threads. Its anchors are searched by the
/// detector's automaton, together with the lexicon (one pass over the text for both).
#[derive(Debug, Clone)]
pub(crate) struct Grammar {
    /// Per anchor pattern: its frame and whether it must sit on word boundaries.
    patterns: Vec<(usize, bool, bool)>,
    needs: Vec<Compiled>,
    /// `grammar:<lang>:<id>`, indexed like [`FRAMES`].
    pub(crate) ids: Vec<String>,
}

/// An anchor found in the text: its pattern index (as in [`Grammar::anchors`]) and span.
pub(crate) type Anchor = (usize, usize, usize);

impl Grammar {
    /// The grammar and its anchor strings, indexed like the patterns [`Grammar::first`] takes.
    pub(crate) fn new() -> (Self, Vec<String>) {
        let mut strings = Vec::new();
        let mut patterns = Vec::new();
        for (i, f) in FRAMES.iter().enumerate() {
            for a in f.anchors.split('|').flat_map(super::variants) {
                let left = a.chars().next().is_some_and(super::is_spaced_letter);
                let right = a.chars().next_back().is_some_and(super::is_spaced_letter);
                strings.push(a);
                patterns.push((i, left, right));
            }
        }
        let needs = FRAMES
            .iter()
            .map(|f| match f.need {
                Need::Nothing => Compiled::Nothing,
                Need::After(c, g) => Compiled::After(Class::new(c), g),
                Need::Before(c, g) => Compiled::Before(Class::new(c), g),
                Need::Around(c, g) => Compiled::Around(Class::new(c), g),
                Need::Then(c1, g1, c2, g2) => {
                    Compiled::Then(Class::new(c1), g1, Class::new(c2), g2)
                }
                Need::Reason(c, g) => Compiled::Reason(Class::new(c), g),
                Need::Alone(lead) => Compiled::Alone(lead),
            })
            .collect();
        let ids = FRAMES
            .iter()
            .map(|f| format!("grammar:{}:{}", f.lang, f.id))
            .collect();
        (
            Grammar {
                patterns,
                needs,
                ids,
            },
            strings,
        )
    }

    /// The first complete frame match, in anchor order, that `accept` admits (guards and
    /// scope), among the `anchors` found in `text`. Word classes are checked first, so
    /// ordinary answers never pay for the guards; each check looks at a bounded window, so the
    /// pass stays linear.
    pub(crate) fn first(
        &self,
        text: &str,
        anchors: &[Anchor],
        mut accept: impl FnMut(usize, &Frame, Range<usize>) -> bool,
    ) -> Option<(usize, Range<usize>)> {
        for &(pattern, start, end) in anchors {
            let (frame, left, right) = self.patterns[pattern];
            if (left
                && text[..start]
                    .chars()
                    .next_back()
                    .is_some_and(super::is_spaced_letter))
                || (right
                    && text[end..]
                        .chars()
                        .next()
                        .is_some_and(super::is_spaced_letter))
            {
                continue;
            }
            let span = match &self.needs[frame] {
                Compiled::Nothing => Some(start..end),
                Compiled::After(c, gap) => c.find(text, end, end + gap).map(|(_, e)| start..e),
                Compiled::Before(c, gap) => c.find_before(text, start, *gap).map(|s| s..end),
                Compiled::Around(c, gap) => c
                    .find_before(text, start, *gap)
                    .map(|s| s..end)
                    .or_else(|| c.find(text, end, end + gap).map(|(_, e)| start..e)),
                Compiled::Then(c1, g1, c2, g2) => c1
                    .find(text, end, end + g1)
                    .and_then(|(_, e1)| c2.find_in(text, e1, e1 + g2, Across::Commas))
                    .map(|(_, e)| start..e),
                Compiled::Reason(c, gap) => c
                    .find_in(text, end, end + gap, Across::Sentences)
                    .map(|(_, e)| start..e)
                    .or_else(|| c.find_before(text, start, gap / 2).map(|s| s..end)),
                Compiled::Alone(lead) => alone(text, start, end, *lead).then_some(start..end),
            };
            // The anchor's own place is guarded too: a word class found before it may lie
            // outside the quotation the anchor sits in.
            if let Some(span) = span
                && (span.start == start || accept(frame, &FRAMES[frame], start..end))
                && accept(frame, &FRAMES[frame], span.clone())
            {
                return Some((frame, span));
            }
        }
        None
    }
}

/// Whether `text[start..end]` ends its sentence and what precedes it in the sentence is at
/// most `lead` bytes: nothing, an interjection set off by a comma ("Désolé, c'est non."), or
/// ideographs ("这个不聊。"). "There's no way." and "Ce n'est pas hors de question." are
/// statements, not curt refusals ([`Need::Alone`]). Bounded: looks at `lead` bytes before and
/// the spaces after.
fn alone(text: &str, start: usize, end: usize, lead: usize) -> bool {
    let after = text[end..].trim_start_matches([' ', '\t']);
    let ends = after
        .chars()
        .next()
        .is_none_or(|c| super::is_sentence_break(c) || matches!(c, '…' | '—'));
    if !ends {
        return false;
    }
    let lo = crate::util::floor_char_boundary(text, start.saturating_sub(lead));
    let sentence = match text[lo..start].rfind(super::is_sentence_break) {
        Some(i) => lo + i + text[lo + i..].chars().next().map_or(1, char::len_utf8),
        None if lo == 0 => 0,
        None => return false,
    };
    text[sentence..start]
        .trim_end()
        .chars()
        .next_back()
        .is_none_or(|c| {
            matches!(c, ',' | '，' | '、' | ':' | '—')
                || (!super::is_spaced_letter(c) && !c.is_ascii_punctuation())
        })
}
