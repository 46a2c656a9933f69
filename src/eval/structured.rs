//! Structured output: find the JSON in a response and classify it.
//!
//! Extraction tries, in order: the whole body, the first fenced ```` ```json ```` block (or an
//! unlabelled fence whose content starts with `{` or `[`), then the first balanced object or
//! array in the text (string-aware bracket matching). Classification precedence:
//! empty body → `no_json`; refusal → `refused`; parsed → `ok` or `schema_violation`;
//! not parsed and finish reason `length` → `truncated`; otherwise `invalid_json` (something
//! JSON-like did not parse) or `no_json`.

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

/// Finds the JSON in `text`.
pub fn extract(text: &str) -> Extracted {
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    if trimmed.is_empty() {
        return Extracted::None;
    }
    if trimmed.starts_with(['{', '[', '"'])
        && let Ok(value) = serde_json::from_str::<Value>(trimmed)
    {
        return Extracted::Json {
            value,
            source: Source::Body,
            span: (lead, lead + trimmed.len()),
        };
    }
    if let Some((start, end)) = fenced_block(text) {
        let inner = &text[start..end];
        let inner_trim = inner.trim();
        let off = start + (inner.len() - inner.trim_start().len());
        return match serde_json::from_str::<Value>(inner_trim) {
            Ok(value) => Extracted::Json {
                value,
                source: Source::Fenced,
                span: (off, off + inner_trim.len()),
            },
            Err(e) => Extracted::Invalid {
                source: Source::Fenced,
                failure: failure(text, off, &e, balanced_end(inner_trim).is_none()),
            },
        };
    }
    // Balanced candidates in prose: the first that parses wins; else the first one's error.
    let mut first_failure: Option<ParseFailure> = None;
    let mut from = 0;
    for _ in 0..8 {
        let Some(rel) = text[from..].find(['{', '[']) else {
            break;
        };
        let start = from + rel;
        let candidate = &text[start..];
        match balanced_end(candidate) {
            Some(len) => {
                let slice = &candidate[..len];
                match serde_json::from_str::<Value>(slice) {
                    Ok(value) => {
                        return Extracted::Json {
                            value,
                            source: if start == lead && start + len == lead + trimmed.len() {
                                Source::Body
                            } else {
                                Source::Embedded
                            },
                            span: (start, start + len),
                        };
                    }
                    Err(e) => {
                        first_failure.get_or_insert_with(|| failure(text, start, &e, false));
                    }
                }
                from = start + 1;
            }
            None => {
                if first_failure.is_none() {
                    let e = serde_json::from_str::<Value>(candidate).err();
                    let f = match e {
                        Some(e) => failure(text, start, &e, true),
                        None => ParseFailure {
                            message: "unclosed bracket".into(),
                            line: 1,
                            column: 1,
                            unclosed: true,
                        },
                    };
                    first_failure = Some(f);
                }
                break;
            }
        }
    }
    match first_failure {
        Some(failure) => Extracted::Invalid {
            source: if text[lead..].starts_with(['{', '[']) {
                Source::Body
            } else {
                Source::Embedded
            },
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
            message: e.to_string(),
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
    let before = &text[..offset];
    let base_line = before.matches('\n').count() + 1;
    let base_col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let (line, column) = if e.line() <= 1 {
        (base_line, base_col + e.column().saturating_sub(1))
    } else {
        (base_line + e.line() - 1, e.column())
    };
    let message = e.to_string();
    // serde_json appends " at line L column C" relative to the candidate: drop it.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m)
        .to_string();
    ParseFailure {
        message,
        line,
        column,
        unclosed: unclosed || e.is_eof(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(text: &str, refused: bool, length: bool) -> StructuredOutcome {
        classify(text, refused, length, &extract(text), &[])
    }

    #[test]
    fn extracts_body_fenced_and_embedded_json() {
        match extract("  {\"a\": 1}\n") {
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
        match extract("Here you go:\n```json\n{\"total\": 42.5}\n```\nDone.") {
            Extracted::Json { value, source, .. } => {
                assert_eq!(value, json!({"total": 42.5}));
                assert_eq!(source, Source::Fenced);
            }
            other => panic!("{other:?}"),
        }
        match extract("The result [see below] is {\"ok\": true, \"s\": \"}{\"} as requested.") {
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
            classify("{\"a\": 1}", false, false, &extract("{\"a\": 1}"), &v),
            StructuredOutcome::SchemaViolation
        );
    }

    #[test]
    fn parse_errors_are_positioned_in_the_response() {
        let text = "Result:\n{\"a\": 1,\n \"b\": }";
        match extract(text) {
            Extracted::Invalid { failure, .. } => {
                assert_eq!((failure.line, failure.column), (3, 7), "{failure:?}");
                assert!(failure.message.starts_with("expected value"), "{failure:?}");
                assert!(!failure.unclosed);
            }
            other => panic!("{other:?}"),
        }
        match extract("{\"a\": \"unterminated") {
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
}
