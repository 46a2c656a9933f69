//! Task success checks: compiled once from a probe's [`TaskCheck`], then run on each response.
//! Every check returns pass/fail and a short reason.
//!
//! Normalisation: `equals`, `contains`, `not_contains` and `starts_with` compare
//! case-insensitively unless `case_sensitive`; `equals` trims and (by default) collapses runs
//! of whitespace. `one_of` labels are trimmed, stripped of surrounding punctuation, quotes and
//! Markdown emphasis (`**Positive**.` → `positive`), whitespace-collapsed and lower-cased.
//! `number` takes the first number in the response (`-1,234.5e3` style; thousands commas
//! allowed) and passes within `abs_tol` or `rel_tol` × |value| (exact when neither is given).

use super::checks::CheckError;
use super::expect::{MatchMode, TaskCheck};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

/// One check's result, with the results of its sub-checks for `all` / `any`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub kind: &'static str,
    pub passed: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

impl CheckResult {
    fn new(kind: &'static str, passed: bool, reason: impl Into<String>) -> Self {
        CheckResult {
            kind,
            passed,
            reason: reason.into(),
            checks: Vec::new(),
        }
    }
}

/// A [`TaskCheck`] with its regex compiled and its expected values normalised.
#[derive(Debug, Clone)]
pub enum CompiledTask {
    Equals {
        value: String,
        case_sensitive: bool,
        normalize_whitespace: bool,
    },
    Contains {
        values: Vec<String>,
        mode: MatchMode,
        case_sensitive: bool,
        negate: bool,
    },
    Regex(Regex),
    StartsWith {
        value: String,
        case_sensitive: bool,
    },
    OneOf {
        values: Vec<String>,
        answer: Option<String>,
    },
    Number {
        value: f64,
        abs_tol: Option<f64>,
        rel_tol: Option<f64>,
    },
    JsonEquals {
        pointer: String,
        value: Value,
    },
    JsonContains {
        pointer: String,
        value: Value,
    },
    All(Vec<CompiledTask>),
    Any(Vec<CompiledTask>),
}

/// What a check looks at: the response text and the JSON extracted from it, if any.
pub struct Subject<'a> {
    pub text: &'a str,
    pub json: Option<&'a Value>,
}

impl CompiledTask {
    /// Compiles `check`; `at` names its place for errors (`task`, `task.checks[1]`).
    pub fn compile(check: &TaskCheck, at: &str) -> Result<Self, CheckError> {
        let invalid = |message: String| CheckError::InvalidCheck {
            kind: check.kind(),
            at: at.to_string(),
            message,
        };
        Ok(match check {
            TaskCheck::Equals {
                value,
                case_sensitive,
                normalize_whitespace,
            } => CompiledTask::Equals {
                value: normalise(value, *case_sensitive, *normalize_whitespace),
                case_sensitive: *case_sensitive,
                normalize_whitespace: *normalize_whitespace,
            },
            TaskCheck::Contains {
                values,
                mode,
                case_sensitive,
            }
            | TaskCheck::NotContains {
                values,
                mode,
                case_sensitive,
            } => {
                if values.is_empty() {
                    return Err(invalid(
                        "`values` is empty; list at least one string".into(),
                    ));
                }
                CompiledTask::Contains {
                    values: values
                        .iter()
                        .map(|v| fold(v, *case_sensitive).into_owned())
                        .collect(),
                    mode: *mode,
                    case_sensitive: *case_sensitive,
                    negate: matches!(check, TaskCheck::NotContains { .. }),
                }
            }
            TaskCheck::Regex { pattern } => {
                CompiledTask::Regex(Regex::new(pattern).map_err(|e| CheckError::InvalidRegex {
                    kind: check.kind(),
                    at: at.to_string(),
                    pattern: pattern.clone(),
                    message: super::refusal::regex_message(&e),
                })?)
            }
            TaskCheck::StartsWith {
                value,
                case_sensitive,
            } => CompiledTask::StartsWith {
                value: fold(value.trim(), *case_sensitive).into_owned(),
                case_sensitive: *case_sensitive,
            },
            TaskCheck::OneOf { values, answer } => {
                if values.is_empty() {
                    return Err(invalid("`values` is empty; list the allowed labels".into()));
                }
                let values: Vec<String> = values.iter().map(|v| label(v)).collect();
                let answer = answer.as_deref().map(label);
                if let Some(a) = &answer
                    && !values.contains(a)
                {
                    return Err(invalid(format!(
                        "answer {a:?} is not one of the values {values:?}"
                    )));
                }
                CompiledTask::OneOf { values, answer }
            }
            TaskCheck::Number {
                value,
                abs_tol,
                rel_tol,
            } => number_check(*value, *abs_tol, *rel_tol).map_err(invalid)?,
            TaskCheck::JsonEquals { pointer, value }
            | TaskCheck::JsonContains { pointer, value } => {
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(invalid(format!(
                        "pointer {pointer:?} is not a JSON pointer (RFC 6901): it must be empty or start with '/'"
                    )));
                }
                let (pointer, value) = (pointer.clone(), value.clone());
                if matches!(check, TaskCheck::JsonEquals { .. }) {
                    CompiledTask::JsonEquals { pointer, value }
                } else {
                    CompiledTask::JsonContains { pointer, value }
                }
            }
            TaskCheck::All { checks } | TaskCheck::Any { checks } => {
                if checks.is_empty() {
                    return Err(invalid("`checks` is empty; list at least one check".into()));
                }
                let compiled = checks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| CompiledTask::compile(c, &format!("{at}.checks[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if matches!(check, TaskCheck::All { .. }) {
                    CompiledTask::All(compiled)
                } else {
                    CompiledTask::Any(compiled)
                }
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CompiledTask::Equals { .. } => "equals",
            CompiledTask::Contains { negate: false, .. } => "contains",
            CompiledTask::Contains { negate: true, .. } => "not_contains",
            CompiledTask::Regex(_) => "regex",
            CompiledTask::StartsWith { .. } => "starts_with",
            CompiledTask::OneOf { .. } => "one_of",
            CompiledTask::Number { .. } => "number",
            CompiledTask::JsonEquals { .. } => "json_equals",
            CompiledTask::JsonContains { .. } => "json_contains",
            CompiledTask::All(_) => "all",
            CompiledTask::Any(_) => "any",
        }
    }

    /// Whether this check (or a sub-check) reads the JSON in the response.
    pub fn needs_json(&self) -> bool {
        match self {
            CompiledTask::JsonEquals { .. } | CompiledTask::JsonContains { .. } => true,
            CompiledTask::All(cs) | CompiledTask::Any(cs) => cs.iter().any(Self::needs_json),
            _ => false,
        }
    }

    /// Runs the check.
    pub fn run(&self, s: &Subject<'_>) -> CheckResult {
        let kind = self.kind();
        match self {
            CompiledTask::Equals {
                value,
                case_sensitive,
                normalize_whitespace,
            } => {
                let got = normalise(s.text, *case_sensitive, *normalize_whitespace);
                if &got == value {
                    CheckResult::new(kind, true, format!("equals {value:?}"))
                } else {
                    CheckResult::new(
                        kind,
                        false,
                        format!("expected {value:?}, got {:?}", clip(&got)),
                    )
                }
            }
            CompiledTask::Contains {
                values,
                mode,
                case_sensitive,
                negate,
            } => run_contains(kind, s.text, values, *mode, *case_sensitive, *negate),
            CompiledTask::Regex(re) => match re.find(s.text) {
                Some(m) => CheckResult::new(
                    kind,
                    true,
                    format!(
                        "/{}/ matched {:?} at byte {}",
                        re.as_str(),
                        clip(m.as_str()),
                        m.start()
                    ),
                ),
                None => CheckResult::new(kind, false, format!("/{}/ did not match", re.as_str())),
            },
            CompiledTask::StartsWith {
                value,
                case_sensitive,
            } => run_starts_with(kind, s.text, value, *case_sensitive),
            CompiledTask::OneOf { values, answer } => {
                run_one_of(kind, s.text, values, answer.as_deref())
            }
            CompiledTask::Number {
                value,
                abs_tol,
                rel_tol,
            } => run_number(kind, s.text, *value, *abs_tol, *rel_tol),
            CompiledTask::JsonEquals { pointer, value } => match at_pointer(s, pointer) {
                Err(reason) => CheckResult::new(kind, false, reason),
                Ok(found) if json_eq(found, value) => {
                    CheckResult::new(kind, true, format!("{} is {value}", show_ptr(pointer)))
                }
                Ok(found) => CheckResult::new(
                    kind,
                    false,
                    format!(
                        "{}: expected {value}, found {}",
                        show_ptr(pointer),
                        clip(&found.to_string())
                    ),
                ),
            },
            CompiledTask::JsonContains { pointer, value } => match at_pointer(s, pointer) {
                Err(reason) => CheckResult::new(kind, false, reason),
                Ok(found) if json_contains(found, value) => CheckResult::new(
                    kind,
                    true,
                    format!("{} contains {value}", show_ptr(pointer)),
                ),
                Ok(found) => CheckResult::new(
                    kind,
                    false,
                    format!(
                        "{}: {} does not contain {value}",
                        show_ptr(pointer),
                        clip(&found.to_string())
                    ),
                ),
            },
            CompiledTask::All(cs) | CompiledTask::Any(cs) => {
                let results: Vec<CheckResult> = cs.iter().map(|c| c.run(s)).collect();
                combine(kind, matches!(self, CompiledTask::All(_)), results)
            }
        }
    }
}

/// `contains` / `not_contains`: which values were found, and the reason that decided.
fn run_contains(
    kind: &'static str,
    text: &str,
    values: &[String],
    mode: MatchMode,
    case_sensitive: bool,
    negate: bool,
) -> CheckResult {
    let hay = fold(text, case_sensitive);
    let (found, missing): (Vec<&String>, Vec<&String>) =
        values.iter().partition(|v| hay.contains(v.as_str()));
    let contains = match mode {
        MatchMode::Any => !found.is_empty(),
        MatchMode::All => missing.is_empty(),
    };
    let passed = contains != negate;
    let reason = match (negate, mode, passed) {
        (false, MatchMode::Any, true) | (true, MatchMode::Any, false) => {
            format!("found {:?}", found[0])
        }
        (false, MatchMode::Any, false) => format!("none of {values:?} found"),
        (true, MatchMode::Any, true) => format!("none of {values:?} found"),
        (false, MatchMode::All, true) | (true, MatchMode::All, false) => {
            format!("all of {values:?} found")
        }
        (_, MatchMode::All, _) => format!("missing {missing:?}"),
    };
    CheckResult::new(kind, passed, reason)
}

fn run_starts_with(
    kind: &'static str,
    text: &str,
    value: &str,
    case_sensitive: bool,
) -> CheckResult {
    // Only the first characters matter: fold just that prefix.
    let n = value.chars().count();
    let text = text.trim_start();
    let end = text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let got = fold(&text[..end], case_sensitive);
    if got.starts_with(value) {
        CheckResult::new(kind, true, format!("starts with {value:?}"))
    } else {
        let head: String = text.chars().take(n.max(12)).collect();
        CheckResult::new(
            kind,
            false,
            format!("expected to start with {value:?}, starts with {head:?}"),
        )
    }
}

fn run_one_of(
    kind: &'static str,
    text: &str,
    values: &[String],
    answer: Option<&str>,
) -> CheckResult {
    let got = label(text);
    match (values.contains(&got), answer) {
        (false, _) => CheckResult::new(
            kind,
            false,
            format!("label {:?} is not one of {values:?}", clip(&got)),
        ),
        (true, Some(a)) if got != a => CheckResult::new(
            kind,
            false,
            format!("label {got:?} is allowed but the answer is {a:?}"),
        ),
        (true, Some(_)) => CheckResult::new(kind, true, format!("label {got:?} is the answer")),
        (true, None) => CheckResult::new(kind, true, format!("label {got:?} is one of {values:?}")),
    }
}

fn run_number(
    kind: &'static str,
    text: &str,
    value: f64,
    abs_tol: Option<f64>,
    rel_tol: Option<f64>,
) -> CheckResult {
    let Some(x) = first_number(text) else {
        return CheckResult::new(kind, false, "no number in the response");
    };
    let diff = (x - value).abs();
    let within = match (abs_tol, rel_tol) {
        (None, None) => diff == 0.0,
        (a, r) => a.is_some_and(|a| diff <= a) || r.is_some_and(|r| diff <= r * value.abs()),
    };
    let tol = match (abs_tol, rel_tol) {
        (None, None) => "exactly".to_string(),
        (Some(a), None) => format!("within {a}"),
        (None, Some(r)) => format!("within {r} relative"),
        (Some(a), Some(r)) => format!("within {a} or {r} relative"),
    };
    let mut reason = format!("found {x}, expected {value} {tol}");
    if !within {
        reason.push_str(&format!(" (off by {diff})"));
    }
    CheckResult::new(kind, within, reason)
}

/// `all` / `any` over the sub-checks' results, naming the sub-check that decided.
fn combine(kind: &'static str, all: bool, results: Vec<CheckResult>) -> CheckResult {
    let passed_n = results.iter().filter(|r| r.passed).count();
    let passed = if all {
        passed_n == results.len()
    } else {
        passed_n > 0
    };
    // The first sub-check with the deciding outcome, 1-based.
    let decided_by = |outcome: bool| {
        results
            .iter()
            .enumerate()
            .find(|(_, r)| r.passed == outcome)
            .map(|(i, r)| (i, r.kind))
            .unwrap_or((0, ""))
    };
    let reason = match (all, passed) {
        (true, true) => format!("all {} checks passed", results.len()),
        (false, false) => format!("none of {} checks passed", results.len()),
        (true, false) => {
            let (i, r) = decided_by(false);
            format!("check {} ({r}) failed", i + 1)
        }
        (false, true) => {
            let (i, r) = decided_by(true);
            format!("passed by check {} ({r})", i + 1)
        }
    };
    CheckResult {
        kind,
        passed,
        reason,
        checks: results,
    }
}

fn show_ptr(p: &str) -> &str {
    if p.is_empty() { "(root)" } else { p }
}

fn at_pointer<'a>(s: &Subject<'a>, pointer: &str) -> Result<&'a Value, String> {
    let json = s
        .json
        .ok_or_else(|| "no JSON in the response".to_string())?;
    json.pointer(pointer)
        .ok_or_else(|| format!("no value at {}", show_ptr(pointer)))
}

/// Lower-cases unless case-sensitive; borrows when nothing changes.
fn fold(s: &str, case_sensitive: bool) -> std::borrow::Cow<'_, str> {
    if case_sensitive || !s.chars().any(char::is_uppercase) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.to_lowercase())
    }
}

/// Trimmed, whitespace runs made one space, lower-cased as `fold` does: built in one string.
fn normalise(s: &str, case_sensitive: bool, whitespace: bool) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len());
    if whitespace {
        for word in s.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    } else {
        out.push_str(s);
    }
    if !case_sensitive && out.chars().any(char::is_uppercase) {
        out = out.to_lowercase();
    }
    out
}

/// A classification label, normalised (see the module docs).
fn label(s: &str) -> String {
    let strip: &[char] = &[
        '*', '_', '`', '"', '\'', '.', ',', ';', ':', '!', '?', '(', ')', '[', ']', '“', '”', '‘',
        '’', '«', '»', '「', '」', '。',
    ];
    let t = s.trim_matches(|c: char| c.is_whitespace() || strip.contains(&c));
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        s.chars().take(MAX).chain("…".chars()).collect()
    }
}

/// The first number in `text`: optional sign (when not glued to a word), digits with optional
/// thousands commas, optional fraction and exponent.
pub fn first_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = 0;
    while i < b.len() {
        let starts = digit(i) || (b[i] == b'.' && digit(i + 1) && !(i > 0 && digit(i - 1)));
        if !starts {
            i += 1;
            continue;
        }
        let mut start = i;
        if i > 0 && matches!(b[i - 1], b'-' | b'+') && (i == 1 || !b[i - 2].is_ascii_alphanumeric())
        {
            start = i - 1;
        }
        let mut j = i;
        while digit(j)
            || (b.get(j) == Some(&b',')
                && digit(j + 1)
                && digit(j + 2)
                && digit(j + 3)
                && !digit(j + 4))
        {
            j += 1;
        }
        if b.get(j) == Some(&b'.') && digit(j + 1) {
            j += 1;
            while digit(j) {
                j += 1;
            }
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            let k = if matches!(b.get(j + 1), Some(b'+' | b'-')) {
                j + 2
            } else {
                j + 1
            };
            if digit(k) {
                j = k;
                while digit(j) {
                    j += 1;
                }
            }
        }
        let literal: String = text[start..j].chars().filter(|c| *c != ',').collect();
        return literal.parse().ok();
    }
    None
}

/// JSON equality with numbers compared by value (`42` equals `42.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// `found` contains `expected`: a substring of a string, an element of an array (every element
/// when `expected` is an array), a sub-object of an object; otherwise equality.
pub fn json_contains(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::String(f), Value::String(e)) => f.contains(e.as_str()),
        (Value::Array(f), Value::Array(e)) => e.iter().all(|x| f.iter().any(|y| json_eq(y, x))),
        (Value::Array(f), e) => f.iter().any(|y| json_eq(y, e)),
        (Value::Object(f), Value::Object(e)) => e.iter().all(|(k, v)| {
            f.get(k)
                .is_some_and(|w| json_eq(w, v) || (w.is_object() && json_contains(w, v)))
        }),
        (f, e) => json_eq(f, e),
    }
}

/// A `number` check: a finite value and finite, non-negative tolerances.
fn number_check(
    value: f64,
    abs_tol: Option<f64>,
    rel_tol: Option<f64>,
) -> Result<CompiledTask, String> {
    if !value.is_finite() {
        return Err("`value` must be a finite number".into());
    }
    for (name, tol) in [("abs_tol", abs_tol), ("rel_tol", rel_tol)] {
        if let Some(t) = tol
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(format!("`{name}` must be a finite number >= 0, got {t}"));
        }
    }
    Ok(CompiledTask::Number {
        value,
        abs_tol,
        rel_tol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_src: &str) -> CompiledTask {
        let c: TaskCheck = toml::from_str(toml_src).unwrap();
        CompiledTask::compile(&c, "task").unwrap()
    }

    fn run(c: &CompiledTask, text: &str) -> CheckResult {
        let json =
            match super::super::structured::extract(text, crate::probe::JsonExtract::Embedded) {
                super::super::structured::Extracted::Json { value, .. } => Some(value),
                _ => None,
            };
        c.run(&Subject {
            text,
            json: json.as_ref(),
        })
    }

    #[test]
    fn equals_normalises_case_and_whitespace() {
        let c = check("kind = 'equals'\nvalue = 'Hello   World'");
        assert!(run(&c, "  hello world \n").passed);
        assert!(!run(&c, "hello worlds").passed);
        let cs = check("kind = 'equals'\nvalue = 'Hello'\ncase_sensitive = true");
        assert!(!run(&cs, "hello").passed);
        assert!(run(&cs, "Hello").passed);
        let ws = check("kind = 'equals'\nvalue = 'a b'\nnormalize_whitespace = false");
        assert!(!run(&ws, "a  b").passed);
        assert_eq!(
            run(&c, "nope").reason,
            "expected \"hello world\", got \"nope\""
        );
    }

    #[test]
    fn contains_any_and_all() {
        let any = check("kind = 'contains'\nvalues = ['kill', 'SIGTERM']");
        assert!(run(&any, "Use KILL -9").passed);
        assert!(!run(&any, "Use Ctrl+C").passed);
        let all = check("kind = 'contains'\nvalues = ['kill', 'pid']\nmode = 'all'");
        assert!(run(&all, "kill the PID").passed);
        let r = run(&all, "kill it");
        assert!(!r.passed);
        assert_eq!(r.reason, "missing [\"pid\"]");
        let cs = check("kind = 'contains'\nvalues = ['PID']\ncase_sensitive = true");
        assert!(!run(&cs, "pid").passed);
    }

    #[test]
    fn not_contains_any_and_all() {
        let none = check("kind = 'not_contains'\nvalues = ['as an ai', 'sorry']");
        assert!(run(&none, "Here you go.").passed);
        let r = run(&none, "Sorry, here you go.");
        assert!(!r.passed);
        assert_eq!(r.reason, "found \"sorry\"");
        let not_all = check("kind = 'not_contains'\nvalues = ['a', 'b']\nmode = 'all'");
        assert!(run(&not_all, "only a").passed);
        assert!(!run(&not_all, "a and b").passed);
    }

    #[test]
    fn regex_and_starts_with() {
        let re = check("kind = 'regex'\npattern = '\\d{3}-\\d{4}'");
        let r = run(&re, "Call 555-1234 now");
        assert!(r.passed);
        assert_eq!(r.reason, "/\\d{3}-\\d{4}/ matched \"555-1234\" at byte 5");
        assert!(!run(&re, "no phone").passed);
        let sw = check("kind = 'starts_with'\nvalue = 'Yes'");
        assert!(run(&sw, "  yes, indeed").passed);
        assert!(!run(&sw, "No").passed);
    }

    #[test]
    fn one_of_normalises_labels() {
        let c = check("kind = 'one_of'\nvalues = ['positive', 'negative']\nanswer = 'Positive'");
        assert!(run(&c, "**Positive**.").passed);
        let wrong = run(&c, "negative");
        assert!(!wrong.passed);
        assert_eq!(
            wrong.reason,
            "label \"negative\" is allowed but the answer is \"positive\""
        );
        assert!(!run(&c, "The sentiment is positive").passed);
        let no_answer = check("kind = 'one_of'\nvalues = ['a', 'b']");
        assert!(run(&no_answer, "B").passed);
    }

    #[test]
    fn number_with_tolerances() {
        let exact = check("kind = 'number'\nvalue = 144");
        assert!(run(&exact, "The answer is 144.").passed);
        assert!(!run(&exact, "The answer is 145.").passed);
        assert_eq!(run(&exact, "no idea").reason, "no number in the response");
        let abs = check("kind = 'number'\nvalue = 3.14\nabs_tol = 0.01");
        assert!(run(&abs, "pi ≈ 3.1415").passed);
        let rel = check("kind = 'number'\nvalue = 1000000\nrel_tol = 0.01");
        assert!(run(&rel, "About 1,005,000 people").passed);
        assert!(!run(&rel, "About 1,020,000 people").passed);
        let neg = check("kind = 'number'\nvalue = -2.5e3");
        assert!(run(&neg, "Result: -2.5e3").passed);
        assert_eq!(first_number("item-7 costs 5"), Some(7.0));
        assert_eq!(first_number("x = .5"), Some(0.5));
    }

    #[test]
    fn json_equals_and_contains() {
        let eq = check("kind = 'json_equals'\npointer = '/total'\nvalue = 42.5");
        assert!(run(&eq, "{\"vendor\": \"Acme\", \"total\": 42.50}").passed);
        let wrong = run(&eq, "{\"total\": \"42.5\"}");
        assert!(!wrong.passed);
        assert_eq!(wrong.reason, "/total: expected 42.5, found \"42.5\"");
        assert_eq!(run(&eq, "{\"sum\": 1}").reason, "no value at /total");
        assert_eq!(run(&eq, "plain text").reason, "no JSON in the response");
        let int = check("kind = 'json_equals'\npointer = '/n'\nvalue = 3");
        assert!(run(&int, "{\"n\": 3.0}").passed);

        let sub = check("kind = 'json_contains'\npointer = '/name'\nvalue = 'Acme'");
        assert!(run(&sub, "{\"name\": \"Acme Corp\"}").passed);
        let arr = check("kind = 'json_contains'\npointer = '/tags'\nvalue = 'b'");
        assert!(run(&arr, "{\"tags\": [\"a\", \"b\"]}").passed);
        assert!(!run(&arr, "{\"tags\": [\"a\"]}").passed);
        let obj = check("kind = 'json_contains'\npointer = ''\nvalue = { a = 1 }");
        assert!(run(&obj, "{\"a\": 1, \"b\": 2}").passed);
        assert!(!run(&obj, "{\"a\": 2}").passed);
    }

    #[test]
    fn composites_report_which_sub_check_decided() {
        let all = check(
            "kind = 'all'\nchecks = [{ kind = 'contains', values = ['kill'] }, { kind = 'regex', pattern = 'PID' }]",
        );
        let ok = run(&all, "kill <PID>");
        assert!(ok.passed);
        assert_eq!(ok.checks.len(), 2);
        let bad = run(&all, "kill it");
        assert!(!bad.passed);
        assert_eq!(bad.reason, "check 2 (regex) failed");
        let any = check(
            "kind = 'any'\nchecks = [{ kind = 'equals', value = 'x' }, { kind = 'starts_with', value = 'y' }]",
        );
        assert_eq!(run(&any, "yes").reason, "passed by check 2 (starts_with)");
        assert!(!run(&any, "no").passed);
    }

    #[test]
    fn invalid_checks_are_config_errors_naming_the_check() {
        let err = |src: &str| {
            let c: TaskCheck = toml::from_str(src).unwrap();
            CompiledTask::compile(&c, "task").unwrap_err().to_string()
        };
        assert_eq!(
            err(
                "kind = 'any'\nchecks = [{ kind = 'equals', value = 'x' }, { kind = 'regex', pattern = '(' }]"
            ),
            "check 'regex' (task.checks[1]): invalid regex \"(\": unclosed group"
        );
        assert_eq!(
            err("kind = 'one_of'\nvalues = ['a']\nanswer = 'b'"),
            "check 'one_of' (task): answer \"b\" is not one of the values [\"a\"]"
        );
        assert_eq!(
            err("kind = 'json_equals'\npointer = 'total'\nvalue = 1"),
            "check 'json_equals' (task): pointer \"total\" is not a JSON pointer (RFC 6901): it must be empty or start with '/'"
        );
        assert_eq!(
            err("kind = 'number'\nvalue = 1\nabs_tol = -1"),
            "check 'number' (task): `abs_tol` must be a finite number >= 0, got -1"
        );
        assert_eq!(
            err("kind = 'contains'\nvalues = []"),
            "check 'contains' (task): `values` is empty; list at least one string"
        );
    }
}
