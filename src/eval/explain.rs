//! `modelwatch explain`: judge saved responses (JSONL) against a suite and say why.
//!
//! Input, one JSON object per line (blank lines are skipped, unknown fields ignored so the
//! refusal corpus can be fed as is):
//! `{"probe": "<id>", "text": "...", "finish_reason": "stop"}`, optionally also
//! `"provider_refusal"` (OpenAI's `refusal` field) and `"output_tokens"`. Without `probe`, only
//! length and refusal are judged. A bad line (invalid UTF-8, not such an object, an unknown
//! probe) is reported with its line number and skipped; the rest are judged.

use super::{CompiledChecks, Evaluator, Explanation};
use crate::sample::{Completion, FinishReason};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A response line that cannot be explained; the message names the input line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    #[error(
        "line {line}: {message}; expected an object like {{\"probe\": \"<id>\", \"text\": \"...\", \"finish_reason\": \"stop\"}}"
    )]
    BadLine { line: usize, message: String },
    #[error("line {line}: unknown probe '{probe}'; suite '{suite}' has: {known}")]
    UnknownProbe {
        line: usize,
        probe: String,
        suite: String,
        known: String,
    },
    #[error(
        "line {line}: response names probe '{probe}' but no suite was given; pass --suite FILE"
    )]
    NoSuite { line: usize, probe: String },
}

#[derive(Deserialize)]
struct InputLine {
    probe: Option<String>,
    text: String,
    finish_reason: Option<String>,
    provider_refusal: Option<String>,
    output_tokens: Option<u32>,
}

/// An unknown probe id is quoted in the error up to this many characters.
const MAX_SHOWN_ID_CHARS: usize = 80;
/// An unknown probe's error lists at most this many of the suite's ids.
const MAX_SHOWN_IDS: usize = 12;

/// The suite's ids for an unknown probe's error: all of a small suite, else the first
/// [`MAX_SHOWN_IDS`] and how many more; a likely typo's correction first.
fn known_ids(ids: &[String], probe: &str) -> String {
    // Edit distances cost length × length: a typo is short.
    let near = (probe.len() <= 2 * MAX_SHOWN_ID_CHARS)
        .then(|| crate::diag::suggest(probe, ids.iter().map(String::as_str)))
        .flatten();
    let mut out = match near {
        Some(near) => format!("(did you mean '{near}'?) "),
        None => String::new(),
    };
    out.push_str(
        &ids.iter()
            .take(MAX_SHOWN_IDS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if ids.len() > MAX_SHOWN_IDS {
        let _ = write!(out, ", … ({} more)", ids.len() - MAX_SHOWN_IDS);
    }
    out
}

/// The suite whose probes responses may name: its name and probe ids in order (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeIds {
    pub suite: String,
    pub ids: Vec<String>,
}

/// Explains every response in `input`, in order; the first bad line is an error (see
/// [`explain_lines`] to skip bad lines and judge the rest).
pub fn explain_jsonl(
    evaluator: &Evaluator,
    suite: Option<&ProbeIds>,
    compiled: &HashMap<String, CompiledChecks>,
    input: &str,
) -> Result<Vec<Explanation>, ExplainError> {
    let out = explain_lines(evaluator, suite, compiled, input.as_bytes());
    match out.bad_lines.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(out.explanations),
    }
}

/// What [`explain_lines`] made of an input: the judged lines, and the lines it skipped with why.
#[derive(Debug, Default)]
pub struct Explained {
    pub explanations: Vec<Explanation>,
    pub bad_lines: Vec<ExplainError>,
}

/// Explains every response in `input` (JSONL bytes), in order. A line that is not valid UTF-8,
/// not a response object, or names an unknown probe is reported with its line number and
/// skipped; the rest are judged. `compiled` holds the suite's compiled checks by probe id (as
/// `probe::compile_suite` gives them).
pub fn explain_lines(
    evaluator: &Evaluator,
    suite: Option<&ProbeIds>,
    compiled: &HashMap<String, CompiledChecks>,
    input: &[u8],
) -> Explained {
    let mut out = Explained::default();
    for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        match explain_line(evaluator, suite, compiled, line, raw) {
            Ok(Some(e)) => out.explanations.push(e),
            Ok(None) => {}
            Err(e) => out.bad_lines.push(e),
        }
    }
    out
}

fn explain_line(
    evaluator: &Evaluator,
    suite: Option<&ProbeIds>,
    compiled: &HashMap<String, CompiledChecks>,
    line: usize,
    raw: &[u8],
) -> Result<Option<Explanation>, ExplainError> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = std::str::from_utf8(raw).map_err(|e| ExplainError::BadLine {
        line,
        message: format!(
            "not valid UTF-8 (invalid byte at column {}); save the file as UTF-8",
            e.valid_up_to() + 1
        ),
    })?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let parsed: InputLine = serde_json::from_str(raw).map_err(|e| {
        // serde_json counts lines within this one input line: keep only its column.
        let text = e.to_string();
        let what = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(m, _)| m);
        ExplainError::BadLine {
            line,
            message: format!(
                "not a response object: {what} (column {})",
                e.column().max(1)
            ),
        }
    })?;
    let checks = match (&parsed.probe, suite) {
        (None, _) => None,
        (Some(p), None) => {
            return Err(ExplainError::NoSuite {
                line,
                probe: p.clone(),
            });
        }
        (Some(p), Some(s)) => {
            if !s.ids.iter().any(|q| q == p) {
                return Err(ExplainError::UnknownProbe {
                    line,
                    probe: crate::util::excerpt_chars(p, MAX_SHOWN_ID_CHARS),
                    suite: s.suite.clone(),
                    known: known_ids(&s.ids, p),
                });
            }
            compiled.get(p)
        }
    };
    let completion = Completion {
        text: parsed.text,
        refusal: parsed.provider_refusal,
        finish_reason: parsed.finish_reason.as_deref().map(FinishReason::parse),
        output_tokens: parsed.output_tokens,
        attempts: 1,
        ..Completion::default()
    };
    let mut e = evaluator.explain(&completion, checks);
    e.line = Some(line);
    e.probe = parsed.probe;
    Ok(Some(e))
}

/// Human-readable rendering of one explanation.
pub fn render_text(e: &Explanation) -> String {
    let m = &e.measurements;
    let w = &e.why;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "line {}{}",
        e.line.map_or("-".to_string(), |l| l.to_string()),
        e.probe
            .as_deref()
            .map_or(String::new(), |p| format!("  probe {p}"))
    );
    let tokens = match w.length.token_rule {
        Some(rule) => format!("{} tokens (estimated: {rule})", m.output_tokens),
        None => format!("{} tokens (server usage)", m.output_tokens),
    };
    let _ = writeln!(
        s,
        "  length      {} chars, {} words, {} lines, {tokens}; finish {}{}",
        m.chars,
        m.words,
        m.lines,
        w.length.finish_reason.as_deref().unwrap_or("unknown"),
        if m.truncated { " (truncated)" } else { "" }
    );
    let refusal = match w.refusal.outcome {
        "refusal" => {
            let mut r = format!("yes, rule {}", w.refusal.rule.as_deref().unwrap_or("?"));
            if let (Some(text), Some([a, b])) = (&w.refusal.matched, w.refusal.span) {
                let _ = write!(r, " matched {text:?} at bytes {a}..{b}");
            }
            if let Some(layer) = w.refusal.layer {
                let _ = write!(r, "; layer {}", serde_plain(&layer));
            }
            if w.refusal.partial {
                r.push_str("; partial refusal: answers but withholds a part");
            }
            r
        }
        "empty" => "no: empty response (its own outcome)".to_string(),
        _ => match &w.refusal.guard {
            Some(g) => format!(
                "no: guard set aside rule {} ({}) matched {:?} at bytes {}..{}",
                g.rule,
                g.reason,
                g.matched.as_deref().unwrap_or(""),
                g.span[0],
                g.span[1]
            ),
            None => "no: no refusal rule fired".to_string(),
        },
    };
    let _ = writeln!(s, "  refusal     {refusal}");
    if let Some(c) = &w.refusal.classifier {
        let _ = writeln!(
            s,
            "  classifier  refusal {:.3}, partial {:.3} on {:?} at bytes {}..{}",
            c.refusal,
            c.partial,
            c.segment.as_deref().unwrap_or(""),
            c.span[0],
            c.span[1]
        );
    }
    if let Some(st) = &w.structured {
        let mut line = st.outcome.to_string();
        if let Some(src) = st.source {
            let _ = write!(line, " ({} JSON", serde_plain(&src));
            if let Some([a, b]) = st.span {
                let _ = write!(line, " at bytes {a}..{b}");
            }
            line.push(')');
        }
        if let Some(err) = &st.error {
            let _ = write!(
                line,
                ": {} at line {} column {}{}",
                err.message,
                err.line,
                err.column,
                if err.unclosed { " (never closed)" } else { "" }
            );
        }
        let _ = writeln!(s, "  structured  {line}");
        for v in &st.violations {
            let ptr = if v.pointer.is_empty() {
                "(root)"
            } else {
                &v.pointer
            };
            let _ = writeln!(s, "    {ptr}: {}", v.message);
        }
    }
    if let Some(t) = &w.task {
        render_check(&mut s, t, 0);
    }
    s
}

fn render_check(s: &mut String, c: &super::CheckResult, depth: usize) {
    let label = if depth == 0 { "task" } else { "" };
    let indent = "  ".repeat(depth);
    let _ = writeln!(
        s,
        "  {label:<10}  {indent}{} {}: {}",
        if c.passed { "pass" } else { "FAIL" },
        c.kind,
        c.reason
    );
    for sub in &c.checks {
        render_check(s, sub, depth + 1);
    }
}

fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::RefusalConfig;
    use crate::probe::{Expect, GenParams, Location, Probe, ProbeInput, Suite};
    use std::path::PathBuf;

    fn suite() -> (ProbeIds, HashMap<String, CompiledChecks>) {
        let expect: Expect = toml::from_str(
            "json = true\ntask = { kind = 'json_equals', pointer = '/n', value = 2 }",
        )
        .unwrap();
        let probe = Probe {
            id: "count".into(),
            suite: "s".into(),
            description: None,
            input: ProbeInput::Prompt("Count".into()),
            params: GenParams::default(),
            samples: 1,
            tags: vec![],
            expect,
            location: Location::default(),
            hash: String::new(),
        };
        let suite = Suite {
            name: "s".into(),
            description: None,
            path: PathBuf::from("s.toml"),
            defaults: GenParams::default(),
            samples: 1,
            probes: vec![probe],
            hash: String::new(),
        };
        let compiled = crate::probe::compile_suite(&suite).unwrap();
        let ids = ProbeIds {
            suite: suite.name.clone(),
            ids: suite.probes.iter().map(|p| p.id.clone()).collect(),
        };
        (ids, compiled)
    }

    #[test]
    fn explains_lines_in_order_and_names_bad_lines() {
        let ev = Evaluator::new(&RefusalConfig::default()).unwrap();
        let (suite, compiled) = suite();
        let input = "{\"probe\": \"count\", \"text\": \"{\\\"n\\\": 2}\", \"finish_reason\": \"stop\"}\n\n{\"text\": \"I can't help with that.\"}\n";
        let out = explain_jsonl(&ev, Some(&suite), &compiled, input).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].line, Some(1));
        assert_eq!(out[0].measurements.task_success, Some(true));
        assert_eq!(out[1].line, Some(3));
        assert!(out[1].measurements.refusal);
        assert!(
            render_text(&out[1])
                .contains("yes, rule lexicon:en:cant_help matched \"I can't help\" at bytes 0..12")
        );

        let err = explain_jsonl(&ev, Some(&suite), &compiled, "{\"text\": 1}").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "line 1: not a response object: invalid type: integer `1`, expected a string"
            ),
            "{err}"
        );
        let err = explain_jsonl(
            &ev,
            Some(&suite),
            &compiled,
            "\n{\"probe\": \"nope\", \"text\": \"x\"}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: unknown probe 'nope'; suite 's' has: count"
        );
        // A large suite: a few ids and the count; a typo's correction; a long id cut.
        let big = ProbeIds {
            suite: "big".into(),
            ids: (0..300).map(|i| format!("probe-{i:03}")).collect(),
        };
        let line = |probe: &str| format!("{{\"probe\": \"{probe}\", \"text\": \"x\"}}");
        let err = explain_jsonl(&ev, Some(&big), &compiled, &line("prob-042")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: unknown probe 'prob-042'; suite 'big' has: (did you mean 'probe-042'?) \
             probe-000, probe-001, probe-002, probe-003, probe-004, probe-005, probe-006, \
             probe-007, probe-008, probe-009, probe-010, probe-011, … (288 more)"
        );
        let long = "x".repeat(100_000);
        let err = explain_jsonl(&ev, Some(&big), &compiled, &line(&long)).unwrap_err();
        assert!(err.to_string().len() < 400, "{err}");
        let err = explain_jsonl(
            &ev,
            None,
            &compiled,
            "{\"probe\": \"count\", \"text\": \"x\"}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: response names probe 'count' but no suite was given; pass --suite FILE"
        );
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let ev = Evaluator::new(&RefusalConfig::default()).unwrap();
        let (suite, compiled) = suite();
        let mut input = b"{\"text\": \"I can't help with that.\"}\n".to_vec();
        input.extend_from_slice(b"{\"text\": \"caf\xe9\"}\n"); // Latin-1, not UTF-8
        input.extend_from_slice(b"{\"text\": \"unterminated}\r\n");
        input.extend_from_slice(b"{\"probe\": \"nope\", \"text\": \"x\"}\n");
        input.extend_from_slice(b"\n{\"probe\": \"count\", \"text\": \"{\\\"n\\\": 2}\"}");
        let out = explain_lines(&ev, Some(&suite), &compiled, &input);
        let judged: Vec<usize> = out.explanations.iter().filter_map(|e| e.line).collect();
        assert_eq!(judged, [1, 6]);
        assert!(out.explanations[0].measurements.refusal);
        assert_eq!(out.explanations[1].measurements.task_success, Some(true));
        let bad: Vec<String> = out.bad_lines.iter().map(ToString::to_string).collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(
            bad[0].starts_with("line 2: not valid UTF-8 (invalid byte at column 14)"),
            "{}",
            bad[0]
        );
        assert!(
            bad[1].starts_with("line 3: not a response object: EOF"),
            "{}",
            bad[1]
        );
        assert!(
            bad[2].starts_with("line 4: unknown probe 'nope'"),
            "{}",
            bad[2]
        );
    }
}
