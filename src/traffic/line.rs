//! One line of an ingest body: a JSON object describing one production completion. Parsing is
//! pure and strict: every problem is a [`LineError`] naming the line and the field (as a JSON
//! pointer), so that a sender can fix its emitter from the response alone.

use serde_json::{Map, Value};
use std::fmt;

/// The fields a line may have.
pub const FIELDS: &[&str] = &[
    "target",
    "model",
    "route",
    "output",
    "output_chars",
    "output_tokens",
    "finish_reason",
    "latency_ms",
    "timestamp",
];

/// Longest route name.
const MAX_ROUTE: usize = 200;
/// Longest target, model or finish reason.
const MAX_NAME: usize = 200;

/// One completion as sent, before its target is resolved and its output measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub target: Option<String>,
    pub model: Option<String>,
    pub route: Option<String>,
    pub output: Option<String>,
    pub output_chars: Option<u32>,
    pub output_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    pub latency_ms: Option<f64>,
    pub timestamp_ms: Option<i64>,
}

/// What is wrong with one line: `line N: /field: what` (or `span N`, `log record N` for OTLP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// What `line` counts: `line`, `span`, `log record`.
    pub unit: &'static str,
    /// 1-based.
    pub line: usize,
    /// JSON pointer of the field (`""`: the line itself).
    pub pointer: String,
    pub message: String,
}

impl LineError {
    pub fn new(line: usize, field: &str, message: impl Into<String>) -> LineError {
        LineError {
            unit: "line",
            line,
            pointer: if field.is_empty() {
                String::new()
            } else {
                format!("/{field}")
            },
            message: message.into(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{} {}: {}", self.unit, self.line, self.message)
        } else {
            write!(
                f,
                "{} {}: {}: {}",
                self.unit, self.line, self.pointer, self.message
            )
        }
    }
}

/// Parses line `n` (1-based) of a body.
pub fn parse_line(n: usize, text: &str) -> Result<Record, LineError> {
    let obj: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        Ok(other) => {
            return Err(LineError::new(
                n,
                "",
                format!(
                    "expected a JSON object (one completion per line), found {}",
                    kind(&other)
                ),
            ));
        }
        Err(e) => {
            return Err(LineError::new(
                n,
                "",
                format!("not valid JSON ({e}); expected one JSON object per line"),
            ));
        }
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(LineError::new(
            n,
            k,
            format!("unknown field; expected one of {}", FIELDS.join(", ")),
        ));
    }
    let r = Record {
        target: name(n, &obj, "target", MAX_NAME)?,
        model: name(n, &obj, "model", MAX_NAME)?,
        route: name(n, &obj, "route", MAX_ROUTE)?,
        output: match obj.get("output") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(wrong(n, "output", "a string (the completion text)", v)),
        },
        output_chars: count(n, &obj, "output_chars")?,
        output_tokens: count(n, &obj, "output_tokens")?,
        finish_reason: name(n, &obj, "finish_reason", MAX_NAME)?,
        latency_ms: latency(n, &obj)?,
        timestamp_ms: timestamp(n, &obj)?,
    };
    if r.target.is_none() && r.model.is_none() {
        return Err(LineError::new(
            n,
            "target",
            "missing: expected `target` (a configured target's name) or `model` (its model)",
        ));
    }
    if r.output.is_none() && r.output_chars.is_none() && r.output_tokens.is_none() {
        return Err(LineError::new(
            n,
            "output",
            "missing: expected `output` (the text) or `output_chars` / `output_tokens`",
        ));
    }
    Ok(r)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(n: usize, field: &str, expected: &str, found: &Value) -> LineError {
    LineError::new(
        n,
        field,
        format!("expected {expected}, found {}", kind(found)),
    )
}

/// A short, non-empty string without control characters.
fn name(
    n: usize,
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, LineError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                Err(LineError::new(n, field, "must not be empty"))
            } else if s.chars().count() > max {
                Err(LineError::new(
                    n,
                    field,
                    format!("longer than {max} characters"),
                ))
            } else if s.chars().any(char::is_control) {
                Err(LineError::new(n, field, "contains control characters"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(v) => Err(wrong(n, field, "a string", v)),
    }
}

fn count(n: usize, obj: &Map<String, Value>, field: &str) -> Result<Option<u32>, LineError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .map(Some)
            .ok_or_else(|| wrong(n, field, "a non-negative integer below 2^32", v)),
    }
}

fn latency(n: usize, obj: &Map<String, Value>) -> Result<Option<f64>, LineError> {
    match obj.get("latency_ms") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
            _ => Err(wrong(
                n,
                "latency_ms",
                "a non-negative number of milliseconds",
                v,
            )),
        },
    }
}

fn timestamp(n: usize, obj: &Map<String, Value>) -> Result<Option<i64>, LineError> {
    let expected =
        "Unix milliseconds (an integer) or an RFC 3339 time such as \"2026-01-31T14:02:00Z\"";
    match obj.get("timestamp") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_rfc3339(s)
            .map(Some)
            .ok_or_else(|| LineError::new(n, "timestamp", format!("`{s}` is not {expected}"))),
        Some(v) => v
            .as_i64()
            .filter(|x| *x >= 0)
            .map(Some)
            .ok_or_else(|| wrong(n, "timestamp", expected, v)),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse_line(7, line).unwrap_err().to_string()
    }

    #[test]
    fn a_full_line_parses() {
        let r = parse_line(
            1,
            r#"{"target":"chat","route":"/support","output":"Hi there","finish_reason":"stop","latency_ms":812.5,"timestamp":"2026-01-31T14:02:00.250+01:00"}"#,
        )
        .unwrap();
        assert_eq!(r.target.as_deref(), Some("chat"));
        assert_eq!(r.route.as_deref(), Some("/support"));
        assert_eq!(r.output.as_deref(), Some("Hi there"));
        assert_eq!(r.latency_ms, Some(812.5));
        assert_eq!(r.timestamp_ms, Some(1_769_868_120_250 - 3_600_000));
        let lengths = parse_line(2, r#"{"model":"m","output_chars":40,"timestamp":5}"#).unwrap();
        assert_eq!(lengths.output_chars, Some(40));
        assert_eq!(lengths.timestamp_ms, Some(5));
    }

    #[test]
    fn every_problem_names_the_line_and_the_field() {
        assert!(err("{\"target\":").starts_with("line 7: not valid JSON"));
        assert_eq!(
            err("[1]"),
            "line 7: expected a JSON object (one completion per line), found an array"
        );
        assert!(err(r#"{"target":"a","ouput":"x"}"#).starts_with("line 7: /ouput: unknown field"));
        assert_eq!(
            err(r#"{"target":"a","output_chars":-3}"#),
            "line 7: /output_chars: expected a non-negative integer below 2^32, found a number"
        );
        assert!(err(r#"{"output":"x"}"#).starts_with("line 7: /target: missing"));
        assert!(err(r#"{"target":"a"}"#).starts_with("line 7: /output: missing"));
        assert!(
            err(r#"{"target":"a","output":"x","latency_ms":"fast"}"#)
                .starts_with("line 7: /latency_ms: expected a non-negative number")
        );
        assert!(
            err(r#"{"target":"a","output":"x","timestamp":"yesterday"}"#)
                .starts_with("line 7: /timestamp: `yesterday` is not Unix milliseconds")
        );
        assert_eq!(
            err(r#"{"target":"a","output":"x","route":""}"#),
            "line 7: /route: must not be empty"
        );
        assert_eq!(
            err(r#"{"target":7,"output":"x"}"#),
            "line 7: /target: expected a string, found a number"
        );
    }

    #[test]
    fn rfc3339_times_convert_to_unix_ms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(
            parse_rfc3339("2026-01-31T14:02:00.1Z"),
            Some(1_769_868_120_100)
        );
        assert_eq!(parse_rfc3339("2026-01-31T14:02:00"), None);
        assert_eq!(parse_rfc3339("2026-13-31T14:02:00Z"), None);
        assert_eq!(parse_rfc3339("2026-01-31T14:02:00+0100"), None);
    }
}
