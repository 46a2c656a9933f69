//! Structured output: find the JSON in a response and classify it.
//!
//! Where the JSON may be is the probe's choice (`expect.json.extract`, [`JsonExtract`]):
//!
//! - `whole` (default): the whole response (trimmed) is the JSON, or the whole response is one
//!   fenced ```` ```json ```` block (or an unlabelled fence whose content starts with `{` / `[`).
//!   Anything else that looks like JSON is `invalid_json`, whatever inner fragment would parse:
//!   `{"colors": […],}` is invalid as a whole, and `[…]` inside it is never judged.
//! - `embedded`: the whole response, else the first fenced JSON block, else the first
//!   *top-level* balanced `{…}` / `[…]` in the prose that parses (string-aware bracket
//!   matching; a candidate that does not parse is skipped whole, never searched for inner
//!   fragments). The outcome says which fragment was judged (source and byte span).
//!
//! Classification precedence: empty body → `no_json`; refusal → `refused`; parsed → `ok` or
//! `schema_violation`; not parsed and finish reason `length` → `truncated`; otherwise
//! `invalid_json` (something JSON-like did not parse) or `no_json`.
//!
//! Every step is linear in the response length, and messages quote at most [`EXCERPT_CHARS`]
//! characters of the response.

use super::expect::JsonExtract;
use crate::sample::StructuredOutcome;
use serde::Serialize;
use serde_json::Value;

/// Where the JSON was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The whole response (trimmed).
    Body,
    /// A fenced code block.
    Fenced,
    /// A balanced `{…}` / `[…]` inside prose.
    Embedded,
}

/// A parse failure, positioned in the whole response (1-based line and column, columns in
/// characters as `serde_json` counts them within a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseFailure {
    pub message: String,
    pub line: usize,
    pub column: usize,
    /// The candidate never closed its outermost bracket (typical of truncation).
    pub unclosed: bool,
}

/// What extraction found.
#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    Json {
        value: Value,
        source: Source,
        /// Byte range of the JSON text in the response.
        span: (usize, usize),
    },
    Invalid {
        source: Source,
        failure: ParseFailure,
    },
    None,
}

/// One schema violation: where in the instance (JSON pointer) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

/// At most this many violations are reported per response.
pub const MAX_VIOLATIONS: usize = 3;

/// At most this many characters of the response appear in any message.
pub const EXCERPT_CHARS: usize = 200;

/// `s` cut to [`EXCERPT_CHARS`] characters, with an ellipsis saying how much was left out.
pub fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &s[..cut], s.len() - cut),
    }
}

/// Finds the JSON in `text`, where `mode` allows it to be.
pub fn extract(text: &str, mode: JsonExtract) -> Extracted {
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    if trimmed.is_empty() {
        return Extracted::None;
    }
    let looks_like_json = trimmed.starts_with(['{', '[']);
    let body = if looks_like_json || trimmed.starts_with('"') {
        serde_json::from_str::<Value>(trimmed).map_err(Some)
    } else {
        Err(None)
    };
    if let Ok(value) = body {
        return Extracted::Json {
            value,
            source: Source::Body,
            span: (lead, lead + trimmed.len()),
        };
    }
    match mode {
        JsonExtract::Whole => {
            if let Some((start, end)) = whole_fence(text, lead) {
                return parse_fenced(text, start, end);
            }
            // Invalid as a whole: report the whole body's first error, never an inner fragment.
            match body {
                Err(Some(e)) => Extracted::Invalid {
                    source: Source::Body,
                    failure: failure(text, lead, &e, balanced_end(trimmed).is_none()),
                },
                _ => prose_around_json(text),
            }
        }
        JsonExtract::Embedded => {
            if let Err(Some(e)) = body
                && looks_like_json
            {
                // The response is JSON-shaped and invalid as a whole: inner fragments do not count.
                let unclosed = balanced_end(trimmed).is_none();
                return Extracted::Invalid {
                    source: Source::Body,
                    failure: failure(text, lead, &e, unclosed),
                };
            }
            if let Some((start, end)) = fenced_block(text) {
                return parse_fenced(text, start, end);
            }
            embedded(text)
        }
    }
}

/// `whole` mode, the response is not JSON-shaped: invalid when it holds a JSON-like fragment
/// (positioned at the fragment's error, or at the fragment when it would parse, with a hint
/// about `json.extract`), no JSON otherwise.
fn prose_around_json(text: &str) -> Extracted {
    match embedded(text) {
        Extracted::Json { span, .. } => {
            let (line, column) = position(text, span.0);
            Extracted::Invalid {
                source: Source::Embedded,
                failure: ParseFailure {
                    message: "the response is not JSON as a whole: it has text around the \
                              JSON; set `json.extract = \"embedded\"` on the probe if JSON \
                              inside prose is acceptable"
                        .into(),
                    line,
                    column,
                    unclosed: false,
                },
            }
        }
        other => other,
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses the content of a fenced block at `start..end`.
fn parse_fenced(text: &str, start: usize, end: usize) -> Extracted {
    let inner = &text[start..end];
    let inner_trim = inner.trim();
    let off = start + (inner.len() - inner.trim_start().len());
    match serde_json::from_str::<Value>(inner_trim) {
        Ok(value) => Extracted::Json {
            value,
            source: Source::Fenced,
            span: (off, off + inner_trim.len()),
        },
        Err(e) => Extracted::Invalid {
            source: Source::Fenced,
            failure: failure(text, off, &e, balanced_end(inner_trim).is_none()),
        },
    }
}

/// The first top-level balanced candidate in prose that parses; else the first one's error.
/// A candidate that does not parse is skipped whole (its inner brackets are not candidates).
fn embedded(text: &str) -> Extracted {
    let mut first_failure: Option<ParseFailure> = None;
    let mut from = 0;
    for _ in 0..8 {
        let Some(rel) = text[from..].find(['{', '[']) else {
            break;
        };
        let start = from + rel;
        let candidate = &text[start..];
        let Some(len) = balanced_end(candidate) else {
            if first_failure.is_none() {
                let e = serde_json::from_str::<Value>(candidate).err();
                first_failure = Some(match e {
                    Some(e) => failure(text, start, &e, true),
                    None => ParseFailure {
                        message: "unclosed bracket".into(),
                        line: 1,
                        column: 1,
                        unclosed: true,
                    },
                });
            }
            break;
        };
        match serde_json::from_str::<Value>(&candidate[..len]) {
            Ok(value) => {
                return Extracted::Json {
                    value,
                    source: Source::Embedded,
                    span: (start, start + len),
                };
            }
            Err(e) => {
                first_failure.get_or_insert_with(|| failure(text, start, &e, false));
            }
        }
        from = start + len;
    }
    match first_failure {
        Some(failure) => Extracted::Invalid {
            source: Source::Embedded,
            failure,
        },
        None => Extracted::None,
    }
}

/// Classifies a response to a JSON probe (see the module docs for the precedence).
pub fn classify(
    text: &str,
    refused: bool,
    truncated_by_length: bool,
    extracted: &Extracted,
    violations: &[Violation],
) -> StructuredOutcome {
    if text.trim().is_empty() {
        return StructuredOutcome::NoJson;
    }
    if refused {
        return StructuredOutcome::Refused;
    }
    match extracted {
        Extracted::Json { .. } if violations.is_empty() => StructuredOutcome::Ok,
        Extracted::Json { .. } => StructuredOutcome::SchemaViolation,
        Extracted::Invalid { .. } if truncated_by_length => StructuredOutcome::Truncated,
        Extracted::Invalid { .. } => StructuredOutcome::InvalidJson,
        Extracted::None => StructuredOutcome::NoJson,
    }
}

/// Validates `value`, returning the first [`MAX_VIOLATIONS`] violations.
pub fn violations(validator: &jsonschema::Validator, value: &Value) -> Vec<Violation> {
    if validator.is_valid(value) {
        return Vec::new();
    }
    validator
        .iter_errors(value)
        .take(MAX_VIOLATIONS)
        .map(|e| Violation {
            pointer: e.instance_path().as_str().to_string(),
            message: excerpt(&e.to_string()),
        })
        .collect()
}

/// Byte range of the content of the first fenced block labelled `json` (or unlabelled with
/// content starting with `{` / `[`). An unclosed fence runs to the end of the text.
fn fenced_block(text: &str) -> Option<(usize, usize)> {
    let mut search = 0;
    while let Some(rel) = text[search..].find("```") {
        let fence = search + rel;
        let after = fence + 3;
        let line_end = text[after..].find('\n').map_or(text.len(), |i| after + i);
        let label = text[after..line_end].trim();
        let content_start = (line_end + 1).min(text.len());
        let content_end = text[content_start..]
            .find("```")
            .map_or(text.len(), |i| content_start + i);
        let content = text[content_start..content_end].trim_start();
        let is_json = label.eq_ignore_ascii_case("json")
            || label.eq_ignore_ascii_case("jsonc")
            || (label.is_empty() && content.starts_with(['{', '[']));
        if is_json {
            return Some((content_start, content_end));
        }
        if content_end >= text.len() {
            return None;
        }
        search = content_end + 3;
    }
    None
}

/// Content range of the fenced JSON block that is the whole response (`lead` is where the
/// trimmed response starts), if it is one.
fn whole_fence(text: &str, lead: usize) -> Option<(usize, usize)> {
    let trimmed = text.trim_end();
    if !text[lead..].starts_with("```") || !trimmed.ends_with("```") {
        return None;
    }
    let (start, end) = fenced_block(&text[lead..])?;
    let (start, end) = (lead + start, lead + end);
    // The block's closing fence must be the end of the response.
    (end + 3 == trimmed.len() && text[lead..start].matches("```").count() == 1)
        .then_some((start, end))
}

/// Length in bytes of the balanced bracket expression at the start of `s` (which starts with
/// `{` or `[`), skipping brackets inside strings; `None` when it never closes.
fn balanced_end(s: &str) -> Option<usize> {
    let mut depth: usize = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A serde error positioned in the whole response: `offset` is where the candidate starts.
fn failure(text: &str, offset: usize, e: &serde_json::Error, unclosed: bool) -> ParseFailure {
    let (base_line, base_col) = position(text, offset);
    let (line, column) = if e.line() <= 1 {
        (base_line, base_col + e.column().saturating_sub(1))
    } else {
        (base_line + e.line() - 1, e.column().max(1))
    };
    let message = e.to_string();
    // serde_json appends " at line L column C" relative to the candidate: drop it.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m)
        .to_string();
    ParseFailure {
        message: excerpt(&message),
        line,
        column,
        unclosed: unclosed || e.is_eof(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JsonExtract::{Embedded, Whole};
    use serde_json::json;

    fn outcome(text: &str, refused: bool, length: bool) -> StructuredOutcome {
        classify(text, refused, length, &extract(text, Embedded), &[])
    }

    #[test]
    fn extracts_body_fenced_and_embedded_json() {
        match extract("  {\"a\": 1}\n", Embedded) {
            Extracted::Json {
                value,
                source,
                span,
            } => {
                assert_eq!(value, json!({"a": 1}));
                assert_eq!(source, Source::Body);
                assert_eq!(span, (2, 10));
            }
            other => panic!("{other:?}"),
        }
        match extract(
            "Here you go:\n```json\n{\"total\": 42.5}\n```\nDone.",
            Embedded,
        ) {
            Extracted::Json { value, source, .. } => {
                assert_eq!(value, json!({"total": 42.5}));
                assert_eq!(source, Source::Fenced);
            }
            other => panic!("{other:?}"),
        }
        match extract(
            "The result [see below] is {\"ok\": true, \"s\": \"}{\"} as requested.",
            Embedded,
        ) {
            Extracted::Json { value, source, .. } => {
                assert_eq!(value, json!({"ok": true, "s": "}{"}));
                assert_eq!(source, Source::Embedded);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_outcome_is_reachable() {
        assert_eq!(outcome("{\"a\": 1}", false, false), StructuredOutcome::Ok);
        assert_eq!(outcome("", false, false), StructuredOutcome::NoJson);
        assert_eq!(outcome("   ", true, true), StructuredOutcome::NoJson);
        assert_eq!(
            outcome("no json here", false, false),
            StructuredOutcome::NoJson
        );
        assert_eq!(
            outcome("{\"a\": 1,}", false, false),
            StructuredOutcome::InvalidJson
        );
        assert_eq!(
            outcome("{\"a\": [1, 2", false, true),
            StructuredOutcome::Truncated
        );
        assert_eq!(
            outcome("{\"a\": [1, 2", false, false),
            StructuredOutcome::InvalidJson
        );
        assert_eq!(
            outcome("I can't help with that.", true, false),
            StructuredOutcome::Refused
        );
        let v = [Violation {
            pointer: "/a".into(),
            message: "bad".into(),
        }];
        assert_eq!(
            classify(
                "{\"a\": 1}",
                false,
                false,
                &extract("{\"a\": 1}", Embedded),
                &v
            ),
            StructuredOutcome::SchemaViolation
        );
    }

    #[test]
    fn parse_errors_are_positioned_in_the_response() {
        let text = "Result:\n{\"a\": 1,\n \"b\": }";
        match extract(text, Embedded) {
            Extracted::Invalid { failure, .. } => {
                assert_eq!((failure.line, failure.column), (3, 7), "{failure:?}");
                assert!(failure.message.starts_with("expected value"), "{failure:?}");
                assert!(!failure.unclosed);
            }
            other => panic!("{other:?}"),
        }
        match extract("{\"a\": \"unterminated", Embedded) {
            Extracted::Invalid { failure, .. } => assert!(failure.unclosed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn schema_violations_carry_json_pointers() {
        let schema = json!({"type": "object", "required": ["total"],
            "properties": {"total": {"type": "number"}, "items": {"type": "array", "items": {"type": "string"}}}});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let v = violations(&validator, &json!({"total": "42", "items": ["a", 3]}));
        let pointers: Vec<&str> = v.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/total"), "{v:?}");
        assert!(pointers.contains(&"/items/1"), "{v:?}");
        assert!(violations(&validator, &json!({"total": 1})).is_empty());
    }

    fn outcome_in(text: &str, mode: JsonExtract, schema: Option<&Value>) -> StructuredOutcome {
        let extracted = extract(text, mode);
        let v = match (schema, &extracted) {
            (Some(schema), Extracted::Json { value, .. }) => {
                violations(&jsonschema::validator_for(schema).unwrap(), value)
            }
            _ => Vec::new(),
        };
        classify(text, false, false, &extracted, &v)
    }

    #[test]
    fn invalid_as_a_whole_is_invalid_json_whatever_fragment_parses() {
        let schema = json!({"type": "object", "required": ["colors"],
            "properties": {"colors": {"type": "array"}, "a": {"type": "object",
            "properties": {"b": {"type": "boolean"}}}}});
        for text in [
            // Trailing comma at top level: the inner array parses, the response does not.
            "{\"colors\": [\"red\", \"green\", \"blue\"],}",
            // Python literal and trailing comma in a nested object.
            "{\"colors\": [], \"a\": {\"b\": True}}",
            "{\"colors\": [], \"a\": {\"b\": false,}}",
            "[{\"colors\": [\"red\"]}, ]",
        ] {
            for mode in [Whole, Embedded] {
                assert_eq!(
                    outcome_in(text, mode, Some(&schema)),
                    StructuredOutcome::InvalidJson,
                    "{mode:?}: {text}"
                );
            }
            match extract(text, Embedded) {
                Extracted::Invalid { source, .. } => assert_eq!(source, Source::Body),
                other => panic!("{other:?}"),
            }
        }
        // The error is the whole response's: the Python `True` at column 29.
        match extract("{\"colors\": [], \"a\": {\"b\": True}}", Whole) {
            Extracted::Invalid { failure, .. } => {
                assert_eq!((failure.line, failure.column), (1, 27), "{failure:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn whole_mode_accepts_the_body_or_one_fenced_block_only() {
        let fenced = "\n```json\n{\"a\": 1}\n```\n";
        assert_eq!(outcome_in(fenced, Whole, None), StructuredOutcome::Ok);
        match extract(fenced, Whole) {
            Extracted::Json { source, span, .. } => {
                assert_eq!(source, Source::Fenced);
                assert_eq!(&fenced[span.0..span.1], "{\"a\": 1}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            outcome_in("```\n[1, 2]\n```", Whole, None),
            StructuredOutcome::Ok
        );
        assert_eq!(
            outcome_in("```json\n{\"a\": 1,}\n```", Whole, None),
            StructuredOutcome::InvalidJson
        );
        for prose in [
            "Sure! {\"a\": 1} Hope that helps.",
            "Here you go:\n```json\n{\"a\": 1}\n```",
            "```json\n{\"a\": 1}\n```\nAnd a second one:\n```json\n{\"b\": 2}\n```",
        ] {
            assert_eq!(
                outcome_in(prose, Whole, None),
                StructuredOutcome::InvalidJson,
                "{prose}"
            );
            assert_eq!(
                outcome_in(prose, Embedded, None),
                StructuredOutcome::Ok,
                "{prose}"
            );
        }
        match extract("Sure! {\"a\": 1}", Whole) {
            Extracted::Invalid { failure, .. } => {
                assert!(failure.message.contains("json.extract"), "{failure:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            outcome_in("no json here", Whole, None),
            StructuredOutcome::NoJson
        );
    }

    #[test]
    fn embedded_mode_judges_top_level_fragments_and_says_which() {
        // The first candidate does not parse and is skipped whole; the second is judged.
        let text = "First try {\"a\": 1,} then {\"b\": [2]} done.";
        match extract(text, Embedded) {
            Extracted::Json {
                value,
                source,
                span,
            } => {
                assert_eq!(value, json!({"b": [2]}));
                assert_eq!(source, Source::Embedded);
                assert_eq!(&text[span.0..span.1], "{\"b\": [2]}");
            }
            other => panic!("{other:?}"),
        }
        // An inner value of a broken candidate is never a fragment of its own.
        let text = "Result: {\"x\": {\"b\": 1}, \"y\": True}";
        assert_eq!(
            outcome_in(text, Embedded, None),
            StructuredOutcome::InvalidJson
        );
        match extract(text, Embedded) {
            Extracted::Invalid { source, failure } => {
                assert_eq!(source, Source::Embedded);
                assert_eq!((failure.line, failure.column), (1, 30), "{failure:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_quote_a_bounded_excerpt() {
        let big = "x".repeat(5_000_000);
        let schema = json!({"type": "object", "properties": {"a": {"type": "number"}}});
        let value = json!({ "a": big });
        let v = violations(&jsonschema::validator_for(&schema).unwrap(), &value);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.chars().count() < 300,
            "{} chars",
            v[0].message.len()
        );
        assert!(v[0].message.contains("… ("), "{}", &v[0].message[..100]);
        assert_eq!(excerpt("short"), "short");
        let e = excerpt(&"é".repeat(300));
        assert!(
            e.starts_with(&"é".repeat(200)) && e.ends_with("… (200 more bytes)"),
            "{e}"
        );
    }
}
