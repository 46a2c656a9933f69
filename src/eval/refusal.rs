//! Refusal detection, in layers, each judgement naming the rule that decided it:
//!
//! 1. provider signals: OpenAI's `refusal` field (`provider:refusal_field`), finish reason
//!    `content_filter` (`provider:content_filter`);
//! 2. an empty or whitespace-only response is its own outcome ("empty"), never a refusal;
//! 3. the built-in lexicon ([`lexicon`]), matched in one pass of an Aho-Corasick automaton
//!    walked from each place a pattern may start ([`starts`]) (`lexicon:<lang>:<id>`);
//! 4. the grammar ([`grammar`]), then a learned classifier ([`classifier`]) over hashed
//!    character n-grams of the opening and closing sentences (`classifier:refusal`,
//!    `classifier:partial`);
//! 5. patterns added by a config or suite (`config:extra_patterns[<i>]`).
//!
//! Guards against the classic false positives: triggers inside fenced or inline code, inside
//! double quotation marks (`"…"`, `“…”`, `„…“`, `«…»`, `「…」`, `『…』`) or on `>` quoted lines
//! do not count; exclusion phrases ("can't help but", "no puedo dejar de", configured
//! exclusions) cancel a trigger they overlap; soft phrasings count only in the opening two
//! sentences.

pub mod classifier;
mod exclusions;
mod features;
mod frames;
mod grammar;
mod guards;
pub mod lexicon;
mod partial;
mod starts;
pub mod train;
mod words;

use lexicon::{Form, RULES, Scope};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::cell::OnceCell;
use std::ops::Range;

use super::length::is_cjk;
use classifier::{Classifier, ClassifierScore};
use guards::Guards;

/// Refusal patterns a config or suite adds to the built-in lexicon. Both lists are regular
/// expressions (Rust `regex` syntax; prefix `(?i)` for case-insensitive matching).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalConfig {
    /// A match (outside code and quotes) is a refusal, rule `config:extra_patterns[<i>]`.
    #[serde(default)]
    pub extra_patterns: Vec<String>,
    /// A trigger overlapping a match of one of these is ignored.
    #[serde(default)]
    pub exclusions: Vec<String>,
}

/// A refusal pattern from configuration that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusal.{field}[{index}]: invalid regex {pattern:?}: {message}")]
pub struct RefusalConfigError {
    pub field: &'static str,
    pub index: usize,
    pub pattern: String,
    pub message: String,
}

/// Which layer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Provider,
    Lexicon,
    /// The refusal grammar ([`grammar`]): structure, not listed phrases.
    Grammar,
    /// The learned classifier ([`classifier`]): no listed phrases at all.
    Classifier,
    Config,
    /// A trigger fired but a guard set it aside (quotation, code, dialogue, exclusion, or a
    /// soft phrasing outside the opening); the response is not a refusal.
    Guard,
}

/// The outcome of refusal detection on one response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RefusalJudgement {
    pub refusal: bool,
    pub empty: bool,
    /// Rule id, e.g. `lexicon:en:cant_help`.
    pub rule: Option<String>,
    pub layer: Option<Layer>,
    /// Byte range of the matched text in the response (lexicon, grammar and config rules).
    pub span: Option<Range<usize>>,
    /// A partial refusal: the response answers, but withholds a specific part.
    pub partial: bool,
    /// When nothing fired: the first trigger a guard set aside, and why.
    pub guarded: Option<Guarded>,
    /// The classifier's reading (absent for empty responses and provider signals).
    pub classifier: Option<ClassifierScore>,
}

/// A trigger that a guard set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    pub rule: String,
    /// `quotation, code or dialogue`, `exclusion` or `outside the opening`.
    pub reason: &'static str,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Phrase,
    Head,
    Exclusion,
}

/// What one automaton pattern means: which rule (or exclusion) and which part of it.
#[derive(Debug, Clone, Copy)]
struct PatternMeta {
    rule: usize,
    role: Role,
    /// The pattern starts / ends with a letter of a space-separated script, so the match must
    /// sit on a word boundary there.
    bound_left: bool,
    bound_right: bool,
}

/// A lexicon rule (index into `lexicon::RULES`) and the span it matched.
type Candidate = (usize, Range<usize>);

/// The compiled lexicon plus configured patterns. Build once, share across threads.
#[derive(Debug, Clone)]
pub struct RefusalDetector {
    /// The lexicon's patterns and the grammar's anchors, searched in one pass from the places
    /// they may start ([`starts`]). A contiguous NFA, not a DFA: the DFAs held 16 MB of memory
    /// (one full transition row per state) for as long as the detector lived.
    starts: starts::Starts,
    /// Lexicon patterns; automaton patterns from this many on are the grammar's anchors.
    patterns: Vec<PatternMeta>,
    /// Tails of pair rules (with their left-boundary flag), indexed like `lexicon::RULES`.
    /// Looked up only in the short window after a head, so common words like "help" never
    /// enter the automaton.
    tails: Vec<Vec<(String, bool)>>,
    /// Per rule, which bytes can start one of its tails (both ASCII cases).
    tail_starts: Vec<[bool; 256]>,
    /// Rule ids, `lexicon:<lang>:<id>`, indexed like `lexicon::RULES`.
    rule_ids: Vec<String>,
    extra: Option<(RegexSet, Vec<Regex>)>,
    exclusions: Vec<Regex>,
    grammar: grammar::Grammar,
    classifier: Classifier,
}

/// The automaton's patterns: the lexicon's phrases and pair heads, the built-in exclusions,
/// then the grammar's anchors; and what each means.
struct Patterns {
    strings: Vec<String>,
    /// Indexed like `strings`, up to the grammar's anchors.
    patterns: Vec<PatternMeta>,
    tails: Vec<Vec<(String, bool)>>,
    grammar: grammar::Grammar,
}

impl Patterns {
    fn built_in() -> Self {
        let mut strings: Vec<String> = Vec::new();
        let mut patterns: Vec<PatternMeta> = Vec::new();
        let mut add = |text: &str, rule: usize, role: Role| {
            for variant in variants(text) {
                let bound_left = variant.chars().next().is_some_and(is_spaced_letter);
                let bound_right = variant.chars().next_back().is_some_and(is_spaced_letter);
                strings.push(variant);
                patterns.push(PatternMeta {
                    rule,
                    role,
                    bound_left,
                    bound_right,
                });
            }
        };
        let mut tails: Vec<Vec<(String, bool)>> = vec![Vec::new(); RULES.len()];
        for (i, rule) in RULES.iter().enumerate() {
            match &rule.form {
                Form::Phrases(ps) => ps.iter().for_each(|p| add(p, i, Role::Phrase)),
                Form::Pair {
                    heads, tails: ts, ..
                } => {
                    heads.iter().for_each(|p| add(p, i, Role::Head));
                    for t in ts.iter().flat_map(|t| variants(t)) {
                        let bound = t.chars().next().is_some_and(is_spaced_letter);
                        tails[i].push((t, bound));
                    }
                }
            }
        }
        for p in exclusions::EXCLUSIONS {
            add(p, usize::MAX, Role::Exclusion);
        }
        let (grammar, anchors) = grammar::Grammar::new();
        strings.extend(anchors);
        Patterns {
            strings,
            patterns,
            tails,
            grammar,
        }
    }
}

impl RefusalDetector {
    pub fn new(config: &RefusalConfig) -> Result<Self, RefusalConfigError> {
        let Patterns {
            strings,
            patterns,
            tails,
            grammar,
        } = Patterns::built_in();
        let tail_starts = tails
            .iter()
            .map(|ts| {
                let mut set = [false; 256];
                for (t, _) in ts {
                    if let Some(&b) = t.as_bytes().first() {
                        set[usize::from(b.to_ascii_lowercase())] = true;
                        set[usize::from(b.to_ascii_uppercase())] = true;
                    }
                }
                set
            })
            .collect();
        let starts = starts::Starts::new(&strings).map_err(|e| RefusalConfigError {
            field: "lexicon",
            index: 0,
            pattern: String::new(),
            message: format!("the built-in lexicon does not compile: {e}"),
        })?;
        let rule_ids = RULES
            .iter()
            .map(|r| format!("lexicon:{}:{}", r.lang, r.id))
            .collect();

        let compile = |field: &'static str, list: &[String]| -> Result<Vec<Regex>, _> {
            list.iter()
                .enumerate()
                .map(|(index, p)| {
                    Regex::new(p).map_err(|e| RefusalConfigError {
                        field,
                        index,
                        pattern: p.clone(),
                        message: regex_message(&e),
                    })
                })
                .collect()
        };
        let extra_regexes = compile("extra_patterns", &config.extra_patterns)?;
        let extra = if extra_regexes.is_empty() {
            None
        } else {
            let set = RegexSet::new(&config.extra_patterns).map_err(|e| RefusalConfigError {
                field: "extra_patterns",
                index: 0,
                pattern: String::new(),
                message: regex_message(&e),
            })?;
            Some((set, extra_regexes))
        };
        let exclusions = compile("exclusions", &config.exclusions)?;
        let classifier = Classifier::shipped().map_err(|e| RefusalConfigError {
            field: "classifier",
            index: 0,
            pattern: String::new(),
            message: e.to_string(),
        })?;
        Ok(RefusalDetector {
            classifier,
            grammar,
            starts,
            patterns,
            tails,
            tail_starts,
            rule_ids,
            extra,
            exclusions,
        })
    }

    /// The same detector with other classifier weights (e.g. freshly trained ones).
    pub fn with_classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// Judges `text`: the lexicon, the grammar, the classifier, configured patterns (layers 2–5;
    /// provider signals are the caller's, see [`super::Evaluator`]). A trigger that a guard
    /// set aside is reported in `guarded` when nothing else fired.
    pub fn judge_text(&self, text: &str) -> RefusalJudgement {
        if text.trim().is_empty() {
            return RefusalJudgement {
                empty: true,
                ..RefusalJudgement::default()
            };
        }
        let Scan {
            candidates,
            exclusions,
            anchors,
        } = self.scan(text);
        let guards: OnceCell<Guards> = OnceCell::new();
        let guards = || {
            guards.get_or_init(|| {
                let mut ex = exclusions.clone();
                for re in &self.exclusions {
                    ex.extend(re.find_iter(text).map(|m| m.range()));
                }
                Guards::new(text, ex)
            })
        };
        let mut guarded: Option<Guarded> = None;
        let mut admit = |rule: &str, scope: Scope, span: Range<usize>| -> bool {
            let reason = guards().reason(span.clone(), scope);
            if let (Some(reason), None) = (reason, &guarded) {
                guarded = Some(Guarded {
                    rule: rule.to_string(),
                    reason,
                    span: span.clone(),
                });
            }
            reason.is_none()
        };
        let mut best: Option<(usize, Range<usize>)> = None;
        for (rule, span) in candidates {
            if best.as_ref().is_some_and(|(_, b)| b.start <= span.start) {
                continue;
            }
            if admit(&self.rule_ids[rule], RULES[rule].scope, span.clone()) {
                best = Some((rule, span));
            }
        }
        let score = || self.classifier.score(text, &guards().unread());
        if let Some((rule, span)) = best {
            let rule = self.rule_ids[rule].clone();
            return refusal(text, rule, Layer::Lexicon, span, score());
        }
        let ids = &self.grammar.ids;
        let hit = self.grammar.first(text, &anchors, |i, frame, anchor| {
            admit(&ids[i], frame.scope, anchor)
        });
        if let Some((frame, span)) = hit {
            let rule = self.grammar.ids[frame].clone();
            let mut j = refusal(text, rule, Layer::Grammar, span, score());
            j.partial |= frames::FRAMES[frame].withholds_part();
            return j;
        }
        let score = score();
        if let Some(s) = score.as_ref().filter(|s| s.is_refusal()) {
            let mut j = classifier::judgement(s.clone());
            if !j.partial
                && let Some(span) = self.refusing_sentence(text, &s.windows, &guards().unread())
                && partial::follows_answer(text, span.clone())
            {
                j.partial = true;
                j.span = Some(span);
            }
            return j;
        }
        if let Some((set, regexes)) = self.extra.as_ref() {
            let hits = set.matches(text);
            for i in hits.iter() {
                if let Some(m) = regexes[i]
                    .find_iter(text)
                    .find(|m| !guards().blocked(m.range()))
                {
                    let rule = format!("config:extra_patterns[{i}]");
                    return refusal(text, rule, Layer::Config, m.range(), score);
                }
            }
        }
        RefusalJudgement {
            guarded,
            classifier: score,
            ..RefusalJudgement::default()
        }
    }

    /// Where an outright refusal the classifier found sits: the first sentence of the windows
    /// it read that it flags on its own (too short a sentence is not judged). When an answer
    /// that opens with a delivery comes before it ([`partial::follows_answer`]), the refusal
    /// is partial: "Here is the itinerary. With the trick to dodge the fine, I can't help."
    /// Runs only when the classifier flagged the response, so it costs nothing on answers.
    fn refusing_sentence(
        &self,
        text: &str,
        windows: &[Range<usize>],
        unread: &[Range<usize>],
    ) -> Option<Range<usize>> {
        windows
            .iter()
            .flat_map(|w| sentences(text, w.clone()))
            .find(|s| {
                let masked: Vec<Range<usize>> = unread
                    .iter()
                    .filter(|u| u.start < s.end && u.end > s.start)
                    .map(|u| u.start.max(s.start) - s.start..u.end.min(s.end) - s.start)
                    .collect();
                self.classifier
                    .score(&text[s.clone()], &masked)
                    .is_some_and(|sc| sc.is_refusal())
            })
    }

    /// What the classifier skips in `text`: code, quotations, dialogue and exclusions (the
    /// trainer reads exactly what inference reads).
    pub(crate) fn unread(&self, text: &str) -> Vec<Range<usize>> {
        Guards::new(text, self.scan(text).exclusions)
            .unread()
            .into_owned()
    }

    /// Lexicon candidates (phrases, and heads followed by one of their tails), the spans of
    /// built-in exclusions and the grammar's anchors, from one automaton pass.
    fn scan(&self, text: &str) -> Scan {
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut exclusions: Vec<Range<usize>> = Vec::new();
        let mut anchors: Vec<grammar::Anchor> = Vec::new();
        let mut found = Vec::new();
        self.starts.find_all(text, &mut found);
        for (pattern, start, end) in found {
            let Some(&meta) = self.patterns.get(pattern) else {
                anchors.push((pattern - self.patterns.len(), start, end));
                continue;
            };
            if !on_boundaries(text, start, end, meta) {
                continue;
            }
            match (meta.role, RULES.get(meta.rule).map(|r| &r.form)) {
                (Role::Exclusion, _) => exclusions.push(start..end),
                (Role::Phrase, _) => candidates.push((meta.rule, start..end)),
                (Role::Head, Some(Form::Pair { max_gap, .. })) => {
                    if let Some(end) = self.tail_after(text, meta.rule, end, *max_gap) {
                        candidates.push((meta.rule, start..end));
                    }
                }
                _ => {}
            }
        }
        Scan {
            candidates,
            exclusions,
            anchors,
        }
    }
}

/// What the automaton pass found.
struct Scan {
    candidates: Vec<Candidate>,
    exclusions: Vec<Range<usize>>,
    anchors: Vec<grammar::Anchor>,
}

impl RefusalDetector {
    /// End of the first tail of `rule` starting at most `max_gap` bytes after `from`, with no
    /// sentence break before it.
    fn tail_after(&self, text: &str, rule: usize, from: usize, max_gap: usize) -> Option<usize> {
        let bytes = text.as_bytes();
        for (off, c) in text[from..].char_indices() {
            if off > max_gap {
                break;
            }
            let p = from + off;
            let rest = &bytes[p..];
            if is_sentence_break(c) {
                break;
            }
            if !self.tail_starts[rule][usize::from(rest[0])] {
                continue;
            }
            let after_letter = || text[..p].chars().next_back().is_some_and(is_spaced_letter);
            for (tail, bound_left) in &self.tails[rule] {
                let t = tail.as_bytes();
                if rest.len() >= t.len()
                    && rest[..t.len()].eq_ignore_ascii_case(t)
                    && !(*bound_left && after_letter())
                {
                    return Some(p + t.len());
                }
            }
        }
        None
    }
}

/// A refusal found by a rule at `span`: partial when its position says so ([`partial`]) or the
/// classifier reads the response as a partial refusal.
fn refusal(
    text: &str,
    rule: String,
    layer: Layer,
    span: Range<usize>,
    classifier: Option<ClassifierScore>,
) -> RefusalJudgement {
    let by_classifier = classifier
        .as_ref()
        .is_some_and(ClassifierScore::backs_partial);
    RefusalJudgement {
        refusal: true,
        empty: false,
        partial: partial::is_partial(text, span.clone()) || by_classifier,
        rule: Some(rule),
        layer: Some(layer),
        span: Some(span),
        guarded: None,
        classifier,
    }
}

/// The lower-case pattern, its capitalised form when it starts with a non-ASCII letter (ASCII
/// case is folded by the automaton), and each with typographic apostrophes.
fn variants(p: &str) -> Vec<String> {
    let mut out = vec![p.to_string()];
    if let Some(first) = p.chars().next()
        && !first.is_ascii()
        && first.is_lowercase()
    {
        let cap: String = first.to_uppercase().chain(p.chars().skip(1)).collect();
        if cap != p {
            out.push(cap);
        }
    }
    if p.contains('\'') {
        let curly: Vec<String> = out.iter().map(|s| s.replace('\'', "\u{2019}")).collect();
        out.extend(curly);
    }
    out
}

/// A letter or digit of a script that separates words with spaces.
fn is_spaced_letter(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

fn on_boundaries(text: &str, start: usize, end: usize, meta: PatternMeta) -> bool {
    let left_ok = !meta.bound_left
        || !text[..start]
            .chars()
            .next_back()
            .is_some_and(is_spaced_letter);
    let right_ok = !meta.bound_right || !text[end..].chars().next().is_some_and(is_spaced_letter);
    left_ok && right_ok
}

/// The sentences of `text[range]` (trimmed, non-empty), in order, split where the
/// classifier's windows split them ([`features::sentence_ends`]).
fn sentences(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = range.start;
    let mut push = |end: usize, from: usize| {
        let s = &text[from..end];
        let start = from + (s.len() - s.trim_start().len());
        if start < from + s.trim_end().len() {
            out.push(start..from + s.trim_end().len());
        }
    };
    features::sentence_ends(text, range.start, range.end, |at, _| {
        push(at, from);
        from = at;
        true
    });
    push(range.end, from);
    out
}

fn is_sentence_break(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';' | '\n' | '。' | '！' | '？' | '；')
}

/// The one-line reason of a regex error (the last `error:` line of a syntax error).
pub(crate) fn regex_message(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(s)
            .to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
