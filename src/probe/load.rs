//! Loading a suite file (`probes/*.toml`) into a [`Suite`]: strict shape checks with every error
//! located, parameters resolved against the suite defaults, and content hashes.
//!
//! What the checks mean (and whether a regex or a schema compiles) is `eval`'s business; here
//! only their shape is validated.

use super::checks::compile_probe;
use super::{
    Expect, GenParams, JsonExtract, JsonSchemaSpec, Location, MatchMode, Message, Probe,
    ProbeInput, Role, Suite, TaskCheck,
};
use super::{GEN_PARAM_KEYS, read_gen_params};
use crate::diag::fields::{Fields, Reader, article, parse_document};
use crate::diag::{Diagnostic, Source};
use crate::eval::CompiledChecks;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// Samples per probe and round when neither the suite nor the probe says.
pub const DEFAULT_SAMPLES: u32 = 3;

const SUITE_KEYS: &[&str] = &["suite", "description", "defaults", "probe"];
const PROBE_KEYS: &[&str] = &[
    "id",
    "description",
    "prompt",
    "messages",
    "samples",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "tags",
    "expect",
];
const EXPECT_KEYS: &[&str] = &["refusal", "json", "json_schema", "task", "margin"];
/// Margins are shares: 20 points is 0.2.
const MARGIN_MAX: f64 = 1.0;
const TASK_KINDS: &[&str] = &[
    "equals",
    "contains",
    "not_contains",
    "regex",
    "starts_with",
    "one_of",
    "number",
    "json_equals",
    "json_contains",
    "all",
    "any",
];

/// Reads and validates a suite file.
pub fn load_suite(path: &Path) -> Result<Suite, Vec<Diagnostic>> {
    load_suite_checked(path).map(|(suite, _)| suite)
}

/// Reads and validates a suite file and returns it with its checks compiled, by probe id: a bad
/// pattern or schema is reported at load, at the probe's `[[probe]]` table, not at run time.
pub fn load_suite_checked(
    path: &Path,
) -> Result<(Suite, HashMap<String, CompiledChecks>), Vec<Diagnostic>> {
    let src = Source::read(path, "suite file").map_err(|d| vec![d])?;
    let suite = parse_suite(&src)?;
    let dir = suite.path.parent().unwrap_or(Path::new("."));
    let mut checks = HashMap::new();
    let mut diags = Vec::new();
    for probe in &suite.probes {
        match compile_probe(probe, dir) {
            Ok(c) => {
                checks.insert(probe.id.clone(), c);
            }
            Err(err) => {
                let message = format!("probe '{}': {err}", probe.id);
                diags.push(match line_span(&src.text, probe.location.line) {
                    Some(span) => src.error(span, message),
                    None => Diagnostic::file(&src.path, message),
                });
            }
        }
    }
    if diags.is_empty() {
        Ok((suite, checks))
    } else {
        Err(diags)
    }
}

/// Byte span of the non-blank part of 1-based line `line`.
fn line_span(text: &str, line: usize) -> Option<std::ops::Range<usize>> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let this = text
        .get(start..)?
        .split('\n')
        .next()?
        .trim_end_matches('\r');
    let indent = this.len() - this.trim_start().len();
    let end = this.trim_end().len();
    (end > indent).then(|| start + indent..start + end)
}

/// Validates suite text; `src.path` names the file in errors and in [`Location`]s.
pub fn parse_suite(src: &Source) -> Result<Suite, Vec<Diagnostic>> {
    let doc = parse_document(src, &src.text).map_err(|mut diags| {
        // JSON or YAML given as a suite: one error that says so, not a stream of TOML ones.
        let ext = src.path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ["json", "yaml", "yml"].contains(&ext.to_ascii_lowercase().as_str()) {
            diags.truncate(1);
            for d in &mut diags {
                d.help = Some(format!(
                    "suite files are TOML, not {ext}: write the probes as [[probe]] tables \
                     (docs/probes.md, \"Anatomy of a suite\")"
                ));
            }
        }
        diags
    })?;
    let mut r = Reader::new(src, None);
    let top = r.fields(doc.get_ref(), doc.span(), "the suite", SUITE_KEYS);

    let stem = src
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match r.nonempty_string(&top, "suite", false) {
        Some(n) => {
            check_ident(&mut r, &n, "suite name");
            n.into_inner()
        }
        None => stem,
    };
    let description = r.string(&top, "description").map(Spanned::into_inner);

    let (defaults, samples, margin) = match top.get("defaults") {
        Some(v) => {
            let allowed: Vec<&str> = GEN_PARAM_KEYS
                .iter()
                .copied()
                .chain(["samples", "margin"])
                .collect();
            match r.table_value(v, "[defaults]", &allowed) {
                Some(f) => (
                    read_gen_params(&mut r, &f),
                    samples(&mut r, &f),
                    r.number(&f, "margin", 0.0, MARGIN_MAX)
                        .map(Spanned::into_inner),
                ),
                None => (GenParams::default(), None, None),
            }
        }
        None => (GenParams::default(), None, None),
    };
    let samples = samples.unwrap_or(DEFAULT_SAMPLES);

    let mut probes: Vec<Probe> = Vec::new();
    match top.get("probe") {
        None => r.error_help(
            0..0,
            "no probes: expected at least one [[probe]] table",
            "add a [[probe]] with an `id` and a `prompt`",
        ),
        Some(v) => match v.get_ref() {
            DeValue::Array(items) if items.is_empty() => r.error_help(
                v.span(),
                "no probes: expected at least one [[probe]] table",
                "add a [[probe]] with an `id` and a `prompt`",
            ),
            DeValue::Array(items) if items.iter().all(|i| i.get_ref().is_table()) => {
                // Where each id was first defined (a map: a suite may hold many probes).
                let mut ids: std::collections::HashMap<String, Location> =
                    std::collections::HashMap::new();
                for item in items.iter() {
                    // Duplicates are found on the raw ids, so that a broken first probe still
                    // counts.
                    if let Some(id) = item.get_ref().as_table().and_then(|t| t.get("id"))
                        && let Some(s) = id.get_ref().as_str()
                    {
                        match ids.get(s) {
                            Some(first) => r.error_help(
                                id.span(),
                                format!("duplicate probe id `{s}`: expected unique ids in a suite"),
                                format!("first defined at {first}"),
                            ),
                            None => {
                                ids.insert(s.to_owned(), r.src.location(&item.span()));
                            }
                        }
                    }
                    if let Some(mut p) = read_probe(&mut r, item, &name, &defaults, samples) {
                        p.expect.margin = p.expect.margin.or(margin);
                        probes.push(p);
                    }
                }
            }
            _ => r.error_help(
                v.span(),
                "wrong type for `probe`: expected an array of tables",
                "write each probe as a [[probe]] table",
            ),
        },
    }

    if !r.diags.is_empty() {
        return Err(r.diags);
    }
    let hash = suite_hash(&probes);
    Ok(Suite {
        name,
        description,
        path: src.path.clone(),
        defaults,
        samples,
        probes,
        hash,
    })
}

fn samples(r: &mut Reader, f: &Fields) -> Option<u32> {
    let s = r.u32(f, "samples", 0)?;
    if *s.get_ref() == 0 {
        r.error(
            s.span(),
            format!("`samples` in {} must be at least 1", f.what),
        );
        return None;
    }
    Some(*s.get_ref())
}

/// Ids and names: letters, digits, `-`, `_`, `.` (they appear in reports, metrics and URLs).
fn check_ident(r: &mut Reader, s: &Spanned<String>, what: &str) -> bool {
    let ok = s
        .get_ref()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        r.error(
            s.span(),
            format!(
                "invalid {what} `{}`: expected letters, digits, `-`, `_` or `.`",
                s.get_ref()
            ),
        );
    }
    ok
}

fn read_probe(
    r: &mut Reader,
    item: &Spanned<DeValue>,
    suite: &str,
    defaults: &GenParams,
    suite_samples: u32,
) -> Option<Probe> {
    let f = r.table_value(item, "[[probe]]", PROBE_KEYS)?;
    let before = r.diags.len();
    let id = r.nonempty_string(&f, "id", true);
    if let Some(id) = &id {
        check_ident(r, id, "probe id");
    }
    let description = r.string(&f, "description").map(Spanned::into_inner);
    let input = read_input(r, &f);
    let params = read_gen_params(r, &f).or(defaults);
    let samples = samples(r, &f).unwrap_or(suite_samples);
    let tags = r
        .strings(&f, "tags")
        .map(|t| t.into_iter().map(Spanned::into_inner).collect())
        .unwrap_or_default();
    let expect = match f.get("expect") {
        Some(v) => read_expect(r, v),
        None => Some(Expect::default()),
    };
    if r.diags.len() > before {
        return None;
    }
    let location = r.src.location(&item.span());
    let mut probe = Probe {
        id: id?.into_inner(),
        suite: suite.to_owned(),
        description,
        input: input?,
        params,
        samples,
        tags,
        expect: expect?,
        location,
        hash: String::new(),
    };
    probe.hash = probe_hash(&probe);
    Some(probe)
}

/// Exactly one of `prompt` and `messages`.
fn read_input(r: &mut Reader, f: &Fields) -> Option<ProbeInput> {
    match (f.get("prompt"), f.get("messages")) {
        (Some(_), Some(m)) => {
            r.error_help(
                f.key_span("messages").unwrap_or(m.span()),
                "probe has both `prompt` and `messages`: expected exactly one",
                "use `prompt` for a single user turn, `messages` for a conversation",
            );
            None
        }
        (None, None) => {
            r.error_help(
                f.span.start..f.span.start + 1,
                "probe has neither `prompt` nor `messages`: expected exactly one",
                "add prompt = \"...\" or messages = [{ role = \"user\", content = \"...\" }]",
            );
            None
        }
        (Some(_), None) => r
            .nonempty_string(f, "prompt", true)
            .map(|p| ProbeInput::Prompt(p.into_inner())),
        (None, Some(_)) => read_messages(r, f).map(ProbeInput::Messages),
    }
}

fn read_messages(r: &mut Reader, f: &Fields) -> Option<Vec<Message>> {
    let items = r.array(f, "messages", "an array of { role, content } tables")?;
    if items.is_empty() {
        let span = f.get("messages").map(|v| v.span()).unwrap_or(0..0);
        r.error(span, "`messages` is empty: expected at least one message");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in items.iter() {
        let Some(m) = r.table_value(item, "a message", &["role", "content"]) else {
            ok = false;
            continue;
        };
        let before = r.diags.len();
        let role = r
            .required_string(&m, "role")
            .and_then(|role| match role.get_ref().as_str() {
                "system" => Some(Role::System),
                "user" => Some(Role::User),
                "assistant" => Some(Role::Assistant),
                other => {
                    r.error(
                        role.span(),
                        format!(
                            "unknown role `{other}`: expected \"system\", \"user\" or \"assistant\""
                        ),
                    );
                    None
                }
            });
        let content = r.required_string(&m, "content");
        match (role, content) {
            (Some(role), Some(content)) if r.diags.len() == before => out.push(Message {
                role,
                content: content.into_inner(),
            }),
            _ => ok = false,
        }
    }
    if ok && !out.iter().any(|m| m.role == Role::User) {
        let span = f.get("messages").map(|v| v.span()).unwrap_or(0..0);
        r.error(
            span,
            "`messages` has no user turn: expected at least one message with role = \"user\"",
        );
        return None;
    }
    ok.then_some(out)
}

fn read_expect(r: &mut Reader, v: &Spanned<DeValue>) -> Option<Expect> {
    let f = r.table_value(v, "`expect`", EXPECT_KEYS)?;
    let before = r.diags.len();
    let refusal = r.bool(&f, "refusal").map(Spanned::into_inner);
    let (json, json_extract) = read_json_key(r, &f);
    let json_schema = f.get("json_schema").and_then(|s| match s.get_ref() {
        DeValue::String(p) if p.trim().is_empty() => {
            r.error(s.span(), "`json_schema` is empty: expected a path or an inline schema");
            None
        }
        DeValue::String(p) => Some(JsonSchemaSpec::Path(p.to_string())),
        DeValue::Table(_) | DeValue::Boolean(_) => json_value(r, s).map(JsonSchemaSpec::Inline),
        other => {
            r.error(
                s.span(),
                format!(
                    "wrong type for `json_schema` in `expect`: expected a path (string) or an inline schema (table), found {}",
                    article(other)
                ),
            );
            None
        }
    });
    let task = f.get("task").and_then(|t| read_task(r, t, "`expect.task`"));
    let margin = r
        .number(&f, "margin", 0.0, MARGIN_MAX)
        .map(Spanned::into_inner);
    if r.diags.len() > before {
        return None;
    }
    Some(Expect {
        refusal,
        json,
        json_schema,
        json_extract,
        task,
        margin,
    })
}

/// `json = true`, or `json = { extract = "whole" | "embedded" }` (which implies `true`).
fn read_json_key(r: &mut Reader, f: &Fields) -> (bool, JsonExtract) {
    let Some(v) = f.get("json") else {
        return (false, JsonExtract::Whole);
    };
    if !matches!(v.get_ref(), DeValue::Table(_)) {
        return (
            r.bool(f, "json").is_some_and(Spanned::into_inner),
            JsonExtract::Whole,
        );
    }
    let Some(t) = r.table_value(v, "`expect.json`", &["extract"]) else {
        return (true, JsonExtract::Whole);
    };
    let extract = match r.string(&t, "extract") {
        None => JsonExtract::Whole,
        Some(s) => match s.get_ref().as_str() {
            "whole" => JsonExtract::Whole,
            "embedded" => JsonExtract::Embedded,
            other => {
                r.error(
                    s.span(),
                    format!(
                        "unknown value {other:?} for `extract` in `expect.json`: expected \"whole\" (the response is the JSON) or \"embedded\" (the JSON may sit in prose)"
                    ),
                );
                JsonExtract::Whole
            }
        },
    };
    (true, extract)
}

/// A TOML value as JSON (inline schemas and expected JSON values).
fn json_value(r: &mut Reader, v: &Spanned<DeValue>) -> Option<serde_json::Value> {
    match serde_json::Value::deserialize(ValueDeserializer::from(v.clone())) {
        Ok(j) => Some(j),
        Err(e) => {
            r.error(
                e.span().unwrap_or(v.span()),
                format!("cannot convert value to JSON: {}", e.message()),
            );
            None
        }
    }
}

/// What a required check field holds, for "missing key" messages.
fn field_expected(kind: &str, key: &str) -> &'static str {
    match (kind, key) {
        ("number", "value") => "a number",
        (_, "value") if kind.starts_with("json_") => "the expected JSON value",
        (_, "value") => "a string",
        (_, "values") => "an array of strings",
        (_, "pattern") => "a regular expression",
        (_, "pointer") => "a JSON pointer such as \"/total\"",
        _ => "an array of checks",
    }
}

/// The fields each check kind takes: (required, optional).
fn task_fields(kind: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        "equals" => (&["value"], &["case_sensitive", "normalize_whitespace"]),
        "contains" | "not_contains" => (&["values"], &["mode", "case_sensitive"]),
        "regex" => (&["pattern"], &[]),
        "starts_with" => (&["value"], &["case_sensitive"]),
        "one_of" => (&["values"], &["answer"]),
        "number" => (&["value"], &["abs_tol", "rel_tol"]),
        "json_equals" | "json_contains" => (&["pointer", "value"], &[]),
        _ => (&["checks"], &[]),
    }
}

fn read_task(r: &mut Reader, v: &Spanned<DeValue>, what: &str) -> Option<TaskCheck> {
    let DeValue::Table(t) = v.get_ref() else {
        r.error(
            v.span(),
            format!(
                "wrong type for {what}: expected a table with a `kind`, found {}",
                article(v.get_ref())
            ),
        );
        return None;
    };
    let kind = task_kind(r, v, t.get("kind"), what)?;
    let (required, optional) = task_fields(&kind);
    let allowed: Vec<&str> = ["kind"]
        .iter()
        .chain(required)
        .chain(optional)
        .copied()
        .collect();
    let what = format!("{what} (kind = \"{kind}\")");
    let before = r.diags.len();
    let f = r.fields(t, v.span(), what, &allowed);
    for key in required {
        if f.get(key).is_none() {
            r.missing(&f, key, field_expected(&kind, key));
        }
    }
    if r.diags.len() > before {
        return None;
    }
    let case_sensitive = r
        .bool(&f, "case_sensitive")
        .map(Spanned::into_inner)
        .unwrap_or(false);
    let check = match kind.as_str() {
        "equals" => TaskCheck::Equals {
            value: r.string(&f, "value")?.into_inner(),
            case_sensitive,
            normalize_whitespace: r
                .bool(&f, "normalize_whitespace")
                .map(Spanned::into_inner)
                .unwrap_or(true),
        },
        "contains" | "not_contains" => read_contains(r, &f, &kind, case_sensitive)?,
        "regex" => TaskCheck::Regex {
            pattern: r.nonempty_string(&f, "pattern", true)?.into_inner(),
        },
        "starts_with" => TaskCheck::StartsWith {
            value: r.nonempty_string(&f, "value", true)?.into_inner(),
            case_sensitive,
        },
        "one_of" => read_one_of(r, &f)?,
        "number" => read_number(r, &f)?,
        "json_equals" | "json_contains" => read_json_check(r, &f, &kind)?,
        _ => read_composite(r, &f, &kind, v.span())?,
    };
    (r.diags.len() == before).then_some(check)
}

/// The check's `kind`: present, a string, and one of [`TASK_KINDS`].
fn task_kind(
    r: &mut Reader,
    v: &Spanned<DeValue>,
    kind_v: Option<&Spanned<DeValue>>,
    what: &str,
) -> Option<String> {
    let Some(kind_v) = kind_v else {
        r.error_help(
            v.span().start..v.span().start + 1,
            format!(
                "missing key `kind` in {what}: expected one of: {}",
                TASK_KINDS.join(", ")
            ),
            "e.g. task = { kind = \"equals\", value = \"42\" }",
        );
        return None;
    };
    let DeValue::String(kind) = kind_v.get_ref() else {
        r.error(
            kind_v.span(),
            format!(
                "wrong type for `kind` in {what}: expected a string, found {}",
                article(kind_v.get_ref())
            ),
        );
        return None;
    };
    if !TASK_KINDS.contains(&kind.as_ref()) {
        let help = match crate::diag::suggest(kind, TASK_KINDS.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected one of: {}", TASK_KINDS.join(", ")),
        };
        r.error_help(
            kind_v.span(),
            format!(
                "unknown check kind `{kind}`: expected one of: {}",
                TASK_KINDS.join(", ")
            ),
            help,
        );
        return None;
    }
    Some(kind.to_string())
}

/// `contains` / `not_contains`: the values and the `mode` (`any` unless given).
fn read_contains(
    r: &mut Reader,
    f: &Fields,
    kind: &str,
    case_sensitive: bool,
) -> Option<TaskCheck> {
    let values = nonempty_strings(r, f, "values")?;
    let mode = match r.string(f, "mode") {
        None => MatchMode::Any,
        Some(m) if m.get_ref() == "any" => MatchMode::Any,
        Some(m) if m.get_ref() == "all" => MatchMode::All,
        Some(m) => {
            r.error(
                m.span(),
                format!(
                    "unknown mode `{}`: expected \"any\" or \"all\"",
                    m.get_ref()
                ),
            );
            return None;
        }
    };
    Some(if kind == "contains" {
        TaskCheck::Contains {
            values,
            mode,
            case_sensitive,
        }
    } else {
        TaskCheck::NotContains {
            values,
            mode,
            case_sensitive,
        }
    })
}

/// `one_of`: the labels, and the `answer`, which must be one of them.
fn read_one_of(r: &mut Reader, f: &Fields) -> Option<TaskCheck> {
    let values = nonempty_strings(r, f, "values")?;
    let answer = r.string(f, "answer");
    if let Some(a) = &answer
        && !values.iter().any(|v| v.eq_ignore_ascii_case(a.get_ref()))
    {
        r.error(
            a.span(),
            format!(
                "`answer` `{}` is not one of `values`: expected one of: {}",
                a.get_ref(),
                values.join(", ")
            ),
        );
        return None;
    }
    Some(TaskCheck::OneOf {
        values,
        answer: answer.map(Spanned::into_inner),
    })
}

/// `number`: the value and its tolerances, every bad field reported at once.
fn read_number(r: &mut Reader, f: &Fields) -> Option<TaskCheck> {
    let before = r.diags.len();
    let value = r.number(f, "value", f64::MIN, f64::MAX);
    let abs_tol = r
        .number(f, "abs_tol", 0.0, f64::MAX)
        .map(Spanned::into_inner);
    let rel_tol = r
        .number(f, "rel_tol", 0.0, f64::MAX)
        .map(Spanned::into_inner);
    if r.diags.len() > before {
        return None;
    }
    Some(TaskCheck::Number {
        value: value?.into_inner(),
        abs_tol,
        rel_tol,
    })
}

/// `json_equals` / `json_contains`: an RFC 6901 pointer and the expected JSON value.
fn read_json_check(r: &mut Reader, f: &Fields, kind: &str) -> Option<TaskCheck> {
    let pointer = r.string(f, "pointer");
    if let Some(p) = &pointer
        && !(p.get_ref().is_empty() || p.get_ref().starts_with('/'))
    {
        r.error_help(
            p.span(),
            format!(
                "invalid JSON pointer `{}`: expected \"\" or a path starting with `/`",
                p.get_ref()
            ),
            "JSON pointers follow RFC 6901, e.g. \"/items/0/name\"",
        );
        return None;
    }
    let value = json_value(r, f.get("value")?)?;
    let pointer = pointer?.into_inner();
    Some(if kind == "json_equals" {
        TaskCheck::JsonEquals { pointer, value }
    } else {
        TaskCheck::JsonContains { pointer, value }
    })
}

/// `all` / `any`: a non-empty array of sub-checks, each read (and reported) in turn.
fn read_composite(
    r: &mut Reader,
    f: &Fields,
    kind: &str,
    span: std::ops::Range<usize>,
) -> Option<TaskCheck> {
    let items = r.array(f, "checks", "an array of checks")?;
    if items.is_empty() {
        let span = f.get("checks").map(|c| c.span()).unwrap_or(span);
        r.error(
            span,
            format!("`checks` of an `{kind}` check is empty: expected at least one check"),
        );
        return None;
    }
    let checks: Vec<Option<TaskCheck>> = items
        .iter()
        .map(|c| read_task(r, c, "a sub-check"))
        .collect();
    let checks: Option<Vec<TaskCheck>> = checks.into_iter().collect();
    Some(if kind == "all" {
        TaskCheck::All { checks: checks? }
    } else {
        TaskCheck::Any { checks: checks? }
    })
}

fn nonempty_strings(r: &mut Reader, f: &Fields, key: &str) -> Option<Vec<String>> {
    let values = r.strings(f, key)?;
    if values.is_empty() {
        let span = f.get(key).map(|v| v.span()).unwrap_or(f.span.clone());
        r.error(
            span,
            format!(
                "`{key}` in {} is empty: expected at least one string",
                f.what
            ),
        );
        return None;
    }
    Some(values.into_iter().map(Spanned::into_inner).collect())
}

mod hash;
pub use hash::{probe_hash, suite_hash};

#[cfg(test)]
mod tests;
