//! Where a refusal trigger does not count, computed in time linear in the response length.
//!
//! Masked: fenced code blocks, inline code, `>` quoted lines, screenplay / transcript speaker
//! lines (`DETECTIVE: I can't help you if …`), and quoted passages (double, single and
//! typographic quotation marks, within one paragraph or line, at most [`QUOTE_WINDOW`] bytes).
//! Every region is found in one forward pass; lookups are binary searches over sorted,
//! merged ranges, so a 5 MB response of quoted phrases costs a few passes, not one pass per
//! trigger.

use super::lexicon::Scope as RuleScope;
use crate::eval::length::is_cjk;
use crate::eval::swar::skip_plain;
use crate::util::floor_char_boundary;
use std::ops::Range;

/// A quotation closes at most this many bytes after it opens.
pub(crate) const QUOTE_WINDOW: usize = 600;

/// Regions where a trigger does not count, and where the opening of the response ends.
pub(crate) struct Guards<'a> {
    text: &'a str,
    /// Sorted, non-overlapping.
    masked: Vec<Range<usize>>,
    /// Sorted, non-overlapping.
    exclusions: Vec<Range<usize>>,
    /// Where the opening ends: found only when a rule of the opening asks.
    opening_end: std::cell::OnceCell<usize>,
}

impl<'a> Guards<'a> {
    pub(crate) fn new(text: &'a str, exclusions: Vec<Range<usize>>) -> Self {
        Guards {
            text,
            masked: merge(masked_regions(text)),
            exclusions: merge(exclusions),
            opening_end: std::cell::OnceCell::new(),
        }
    }

    /// The span starts inside code or a quotation, or overlaps an exclusion.
    pub(crate) fn blocked(&self, span: Range<usize>) -> bool {
        self.masked_at(span.start) || {
            let i = self.exclusions.partition_point(|e| e.end <= span.start);
            self.exclusions
                .get(i)
                .is_some_and(|e| e.start < span.end.max(span.start + 1))
        }
    }

    /// Why a trigger at `span` of a rule with `scope` does not count, if it does not.
    pub(crate) fn reason(&self, span: Range<usize>, scope: RuleScope) -> Option<&'static str> {
        if self.masked_at(span.start) {
            Some("quotation, code or dialogue")
        } else if self.blocked(span.clone()) {
            Some("exclusion")
        } else if scope == RuleScope::Opening
            && span.start >= *self.opening_end.get_or_init(|| opening_end(self.text))
        {
            Some("outside the opening")
        } else {
            None
        }
    }

    /// What the classifier does not read: masked regions and exclusions ("can't help but",
    /// "no puedo dejar de"), sorted and non-overlapping.
    pub(crate) fn unread(&self) -> std::borrow::Cow<'_, [Range<usize>]> {
        if self.exclusions.is_empty() {
            std::borrow::Cow::Borrowed(&self.masked)
        } else {
            let all = self
                .masked
                .iter()
                .chain(&self.exclusions)
                .cloned()
                .collect();
            std::borrow::Cow::Owned(merge(all))
        }
    }

    /// `pos` lies inside code or a quotation.
    pub(crate) fn masked_at(&self, pos: usize) -> bool {
        let i = self.masked.partition_point(|m| m.end <= pos);
        self.masked.get(i).is_some_and(|m| m.start <= pos)
    }
}

/// Sorts and merges overlapping or touching ranges.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Every masked region (unsorted across kinds, possibly overlapping).
pub(crate) fn masked_regions(text: &str) -> Vec<Range<usize>> {
    let lines = line_regions(text);
    let mut out = inline_regions(text, &lines);
    out.extend(lines);
    out
}

/// Line-based regions, in order and non-overlapping: fenced blocks, `>` quoted lines and
/// speaker lines.
fn line_regions(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut speakers: Vec<(Range<usize>, &str, bool)> = Vec::new();
    let mut dashed: Vec<Range<usize>> = Vec::new();
    let mut offset = 0;
    let mut fence_start: Option<(usize, &str)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let line_end = offset + line.len();
        match fence_start {
            Some((start, fence)) => {
                if trimmed.starts_with(fence) {
                    out.push(start..line_end);
                    fence_start = None;
                }
            }
            None => {
                if trimmed.starts_with("```") {
                    fence_start = Some((offset, "```"));
                } else if trimmed.starts_with("~~~") {
                    fence_start = Some((offset, "~~~"));
                } else if trimmed.starts_with('>') {
                    out.push(offset..line_end);
                } else if let Some((name, all_caps)) = speaker_label(trimmed) {
                    speakers.push((offset..line_end, name, all_caps));
                } else if dialogue_dash(trimmed) {
                    dashed.push(offset..line_end);
                }
            }
        }
        offset = line_end;
    }
    if let Some((start, _)) = fence_start {
        out.push(start..text.len());
    }
    // An all-caps label is a screenplay cue on its own; a mixed-case one ("Alice: …") only
    // when some speaker talks twice or two alternate on consecutive lines, i.e. the text reads as a dialogue rather than as a list
    // of headings ("Note: …", "Summary: …").
    let names: Vec<&str> = speakers.iter().map(|s| s.1).collect();
    let repeated = |name: &str| names.iter().filter(|n| **n == name).count() >= 2;
    // Two different speakers on consecutive lines also read as a dialogue.
    let exchange = speakers
        .windows(2)
        .any(|w| w[0].0.end == w[1].0.start && w[0].1 != w[1].1);
    let dialogue = exchange || speakers.iter().any(|s| repeated(s.1));
    out.extend(
        speakers
            .into_iter()
            .filter(|(_, _, caps)| *caps || dialogue)
            .map(|(r, _, _)| r),
    );
    // Lines opened by a dash are a dialogue without speaker labels ("—No puedo, Manuel
    // —dijo…", "— Не могу."), once there are two of them; one alone may be an aside.
    if dashed.len() >= 2 {
        out.extend(dashed);
    }
    out.sort_unstable_by_key(|r| r.start);
    out
}

/// A line opened by an em, en or horizontal-bar dash (not a Markdown `-` list item).
fn dialogue_dash(line: &str) -> bool {
    let mut chars = line.chars();
    matches!(chars.next(), Some('\u{2014}' | '\u{2013}' | '\u{2015}'))
        && chars
            .find(|c| !c.is_whitespace())
            .is_some_and(|c| c.is_alphabetic() || matches!(c, '¿' | '¡' | '«' | '"' | '…'))
}

/// Capitalised labels that introduce the writer's own words, not a speaker's.
const NOT_SPEAKERS: &[&str] = &[
    "NOTE",
    "NOTES",
    "WARNING",
    "IMPORTANT",
    "DISCLAIMER",
    "CAUTION",
    "UPDATE",
    "EDIT",
    "ANSWER",
    "RESPONSE",
    "SUMMARY",
    "TLDR",
    "PS",
    "NB",
    "TIP",
    "REMINDER",
    "CONCLUSION",
];

/// A speaker label at the start of `line` (`DETECTIVE:`, `**Mary:**`, `NARRATOR (V.O.):`):
/// one to three capitalised words of letters, then a colon and a space. Returns the name and
/// whether it is all capitals.
fn speaker_label(line: &str) -> Option<(&str, bool)> {
    let line = line.trim_start_matches(['*', '_']);
    // Every label starts with a capital, or is a Chinese or Japanese name: most lines are out
    // at their first character.
    let first = line.chars().next()?;
    if is_cjk(first) {
        return cjk_label(line);
    }
    if !first.is_uppercase() {
        return None;
    }
    let Some(colon) = line.get(..48).unwrap_or(line).find([':', '\u{FF1A}']) else {
        return theatre_cue(line);
    };
    let (label, rest) = line.split_at(colon);
    let colon_len = rest.chars().next().map_or(1, char::len_utf8);
    let after = rest[colon_len..]
        .trim_start_matches(['*', '_'])
        .chars()
        .next();
    if !rest.starts_with('\u{FF1A}') && !after.is_none_or(char::is_whitespace) {
        return None;
    }
    let label = label.trim_end_matches(['*', '_']);
    // Drop a parenthesised extension: "NARRATOR (V.O.)".
    let name = match label.find('(') {
        Some(p) if label.ends_with(')') => label[..p].trim_end(),
        Some(_) => return None,
        None => label,
    };
    let mut words = 0;
    for w in name.split([' ', '.', '-', '\'']).filter(|w| !w.is_empty()) {
        words += 1;
        let capitalised = w.chars().next().is_some_and(char::is_uppercase);
        if words > 3 || !capitalised || !w.chars().all(char::is_alphabetic) {
            return None;
        }
    }
    let letters = name.chars().filter(|c| c.is_alphabetic()).count();
    let all_caps = letters >= 2 && !name.chars().any(char::is_lowercase);
    let plain: String = name.chars().filter(|c| c.is_alphabetic()).collect();
    if words == 0 || NOT_SPEAKERS.iter().any(|n| plain.eq_ignore_ascii_case(n)) {
        return None;
    }
    Some((name, all_caps))
}

/// A Chinese or Japanese speaker label: one to four CJK characters and a colon (`小李：`,
/// `田中：`). Such names have no capitals, so they count only in a dialogue, as mixed-case
/// labels do.
fn cjk_label(line: &str) -> Option<(&str, bool)> {
    let (end, colon) = line
        .char_indices()
        .take(5)
        .find(|(_, c)| matches!(c, ':' | '\u{FF1A}'))?;
    let name = &line[..end];
    let n = name.chars().count();
    let after = line[end + colon.len_utf8()..].chars().next();
    let spaced = colon == '\u{FF1A}' || after.is_none_or(char::is_whitespace);
    ((1..=4).contains(&n) && name.chars().all(is_cjk) && spaced).then_some((name, false))
}

/// A French-style theatre cue without a colon: `MARIE. — Je ne peux pas…` (all capitals only).
fn theatre_cue(line: &str) -> Option<(&str, bool)> {
    let head = line.get(..48).unwrap_or(line);
    let dot = head
        .find(". \u{2014}")
        .or_else(|| head.find(". \u{2013}"))?;
    let name = &line[..dot];
    let letters = name.chars().filter(|c| c.is_alphabetic()).count();
    let words = name.split(' ').filter(|w| !w.is_empty()).count();
    let caps = name
        .chars()
        .all(|c| c.is_uppercase() || c == ' ' || c == '-' || c == '\'');
    (letters >= 2 && (1..=3).contains(&words) && caps).then_some((name, true))
}

/// Kinds of inline openers: the closers they accept and how far they may reach.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Within one line (inline code, single quotes).
    Line,
    /// Within one paragraph (double quotes and their typographic forms).
    Paragraph,
}

/// Opener character → (slot for bookkeeping, closers, scope, needs word-boundary rules).
fn opener(c: char) -> Option<(usize, &'static [char], Scope, bool)> {
    Some(match c {
        '`' => (0, &['`'], Scope::Line, false),
        '"' => (1, &['"'], Scope::Paragraph, false),
        '\u{201C}' => (2, &['\u{201D}'], Scope::Paragraph, false),
        '\u{201E}' => (3, &['\u{201C}', '\u{201D}'], Scope::Paragraph, false),
        '\u{00AB}' => (4, &['\u{00BB}'], Scope::Paragraph, false),
        '\u{300C}' => (5, &['\u{300D}'], Scope::Paragraph, false),
        '\u{300E}' => (6, &['\u{300F}'], Scope::Paragraph, false),
        '\'' => (7, &['\''], Scope::Line, true),
        '\u{2018}' => (8, &['\u{2019}'], Scope::Line, true),
        '\u{201A}' => (9, &['\u{2018}', '\u{2019}'], Scope::Line, true),
        '\u{2039}' => (10, &['\u{203A}'], Scope::Line, false),
        // Less common conventions: German »…« and ›…‹, Swedish and Finnish ”…”, Chinese
        // 《…》 and 〈…〉, 〝…〟, full-width ＂…＂. The reversed guillemets and ” also close
        // other quotes, so they open one only where an opening mark can stand.
        '\u{00BB}' => (11, &['\u{00AB}'], Scope::Paragraph, true),
        '\u{203A}' => (12, &['\u{2039}'], Scope::Line, true),
        '\u{201D}' => (13, &['\u{201D}'], Scope::Paragraph, true),
        '\u{300A}' => (14, &['\u{300B}'], Scope::Paragraph, false),
        '\u{3008}' => (15, &['\u{3009}'], Scope::Paragraph, false),
        '\u{301D}' => (16, &['\u{301F}', '\u{301E}'], Scope::Paragraph, false),
        '\u{FF02}' => (17, &['\u{FF02}'], Scope::Paragraph, false),
        _ => return None,
    })
}
const SLOTS: usize = 18;

/// Bytes an opener can start with: the ASCII openers and the lead bytes of the others.
static OPENER_LEAD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = matches!(i as u8, b'`' | b'"' | b'\'' | 0xC2 | 0xE2 | 0xE3 | 0xEF);
        i += 1;
    }
    t
};

/// Inline code and quotations outside the line regions `lines` (sorted).
///
/// Linear: each opener kind remembers up to where its closer is known to be absent, so a run
/// of unclosed openers never rescans the same window; the next line and paragraph breaks are
/// found once per position.
fn inline_regions(text: &str, lines: &[Range<usize>]) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut no_closer_until = [0usize; SLOTS];
    let mut next_line = 0usize; // position of the next '\n' at or after the cursor (or len)
    let mut next_para = 0usize; // position of the next "\n\n" at or after the cursor (or len)
    let mut li = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Openers start with one of these bytes (ASCII ones, and the lead bytes of the others):
        // skip to the next one in a tight loop.
        match next_opener(bytes, i) {
            Some(p) => i = p,
            None => break,
        }
        while li < lines.len() && lines[li].end <= i {
            li += 1;
        }
        if li < lines.len() && lines[li].start <= i {
            i = lines[li].end;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        let open_end = i + c.len_utf8();
        let Some((slot, closers, scope, word_rules)) = opener(c) else {
            i = open_end;
            continue;
        };
        if word_rules && !opens_quote(text, i, open_end) {
            i = open_end;
            continue;
        }
        if next_line < open_end {
            next_line = text[open_end..]
                .find('\n')
                .map_or(text.len(), |p| open_end + p);
        }
        if next_para < open_end {
            next_para = paragraph_break(text, open_end);
        }
        let reach = match scope {
            Scope::Line => next_line,
            Scope::Paragraph => next_para,
        };
        let window_end = floor_char_boundary(text, reach.min(open_end + QUOTE_WINDOW));
        let from = open_end.max(no_closer_until[slot]);
        match find_closer(text, from, window_end, closers, word_rules) {
            Some(end) => {
                out.push(i..end);
                i = end;
            }
            None => {
                no_closer_until[slot] = no_closer_until[slot].max(window_end);
                i = open_end;
            }
        }
    }
    out
}

/// Position of the first opener lead byte ([`OPENER_LEAD`]) at or after `from`: plain ASCII
/// is skipped eight bytes at a time, the rest looked up a byte at a time.
fn next_opener(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        from = skip_plain(bytes, from, [b'`', b'"', b'\'']);
        let end = (from + 8).min(bytes.len());
        if let Some(p) = bytes
            .get(from..end)?
            .iter()
            .position(|&b| OPENER_LEAD[usize::from(b)])
        {
            return Some(from + p);
        }
        if end == bytes.len() {
            return None;
        }
        from = end;
    }
}

/// Position of the first "\n\n" at or after `from` (or the end): a search for the newline
/// byte, without building a substring searcher for each opener.
fn paragraph_break(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(p) = text[at..].find('\n') {
        let nl = at + p;
        if bytes.get(nl + 1) == Some(&b'\n') {
            return nl;
        }
        at = nl + 1;
    }
    text.len()
}

/// A single quotation mark opens a quote only after a non-letter (so not the apostrophe of
/// "can't" or "students'") and before a non-space.
fn opens_quote(text: &str, start: usize, end: usize) -> bool {
    let before_ok = !text[..start]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric);
    let after_ok = text[end..]
        .chars()
        .next()
        .is_some_and(|c| !c.is_whitespace());
    before_ok && after_ok
}

/// End (exclusive) of the first closer in `text[from..to]`. With `word_rules`, a closer must
/// follow a non-space and not be followed by a letter (so "can't" inside the quote does not
/// close it).
fn find_closer(
    text: &str,
    from: usize,
    to: usize,
    closers: &[char],
    word_rules: bool,
) -> Option<usize> {
    if from >= to {
        return None;
    }
    if let ([closer], false) = (closers, word_rules) {
        // Any occurrence closes: a byte search finds the first.
        return text[from..to]
            .find(*closer)
            .map(|p| from + p + closer.len_utf8());
    }
    let mut prev_space = text[..from]
        .chars()
        .next_back()
        .is_none_or(char::is_whitespace);
    for (off, c) in text[from..to].char_indices() {
        if closers.contains(&c) {
            let end = from + off + c.len_utf8();
            if !word_rules {
                return Some(end);
            }
            let next_letter = text[end..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric);
            if !prev_space && !next_letter {
                return Some(end);
            }
        }
        prev_space = c.is_whitespace();
    }
    None
}

/// Byte offset where the opening two sentences end (at most 400 bytes in). A sentence ends at
/// `。！？`, a newline, or `.!?` followed by whitespace.
pub(crate) fn opening_end(text: &str) -> usize {
    let limit = floor_char_boundary(text, text.len().min(400));
    let start = text.len() - text.trim_start().len();
    if start >= limit {
        return limit;
    }
    let mut sentences = 0;
    let mut chars = text[start..limit].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = match c {
            '。' | '！' | '？' | '\n' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if ends {
            sentences += 1;
            if sentences == 2 {
                return start + i + c.len_utf8();
            }
        }
    }
    limit
}
