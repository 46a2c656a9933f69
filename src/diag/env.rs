//! `${VAR}` and `${VAR:-default}` expansion inside configuration string values.
//!
//! Expansion runs after TOML parsing, on string values only, so positions in errors stay those
//! of the file. `$${` writes a literal `${`; any other `$` is kept as is. As in POSIX shells,
//! `:-` also applies when the variable is set but empty.

use std::ops::Range;

/// Where the environment comes from: the process environment in production, a map in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Why a value could not be expanded; `range` is a byte range inside the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub range: Range<usize>,
    pub message: String,
    pub help: String,
}

/// Expands every `${…}` reference in `value`.
pub fn expand(value: &str, env: Env<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = 0;
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"$${") {
            out.push_str(&value[rest..i]);
            out.push_str("${");
            i += 3;
            rest = i;
        } else if bytes[i..].starts_with(b"${") {
            out.push_str(&value[rest..i]);
            let Some(close) = value[i..].find('}').map(|c| i + c) else {
                return Err(ExpandError {
                    range: i..value.len(),
                    message: "unterminated `${` in value: expected `${NAME}` or `${NAME:-default}`"
                        .into(),
                    help: "close the reference with `}`, or write `$${` for a literal `${`".into(),
                });
            };
            let inner = &value[i + 2..close];
            let (name, default) = match inner.find(":-") {
                Some(d) => (&inner[..d], Some(&inner[d + 2..])),
                None => (inner, None),
            };
            if !valid_name(name) {
                return Err(ExpandError {
                    range: i..close + 1,
                    message: format!(
                        "invalid environment variable name `{name}`: expected letters, digits and `_`, not starting with a digit"
                    ),
                    help: "write `${NAME}` or `${NAME:-default}`; `$${` writes a literal `${`"
                        .into(),
                });
            }
            match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ExpandError {
                        range: i..close + 1,
                        message: format!("environment variable `{name}` is not set"),
                        help: format!(
                            "set `{name}`, or give a default with `${{{name}:-default}}`"
                        ),
                    });
                }
            }
            i = close + 1;
            rest = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&value[rest..]);
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("gpu1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(expand("http://${HOST}:1", &env).unwrap(), "http://gpu1:1");
        assert_eq!(expand("${NOPE:-x}/${HOST:-y}", &env).unwrap(), "x/gpu1");
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
    }

    #[test]
    fn non_ascii_text_around_references() {
        assert_eq!(expand("é${HOST}ü$", &env).unwrap(), "égpu1ü$");
        assert_eq!(expand("ø${NOPE:-å}", &env).unwrap(), "øå");
    }

    #[test]
    fn escapes_and_lone_dollars_are_literal() {
        assert_eq!(
            expand("$${HOST} costs $5", &env).unwrap(),
            "${HOST} costs $5"
        );
        assert_eq!(expand("a$", &env).unwrap(), "a$");
    }

    #[test]
    fn unset_variable_names_it_and_its_range() {
        let e = expand("key-${SECRET_KEY}", &env).unwrap_err();
        assert_eq!(e.range, 4..17);
        assert!(e.message.contains("`SECRET_KEY`"));
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(
            expand("${HOST", &env)
                .unwrap_err()
                .message
                .contains("unterminated")
        );
        assert!(
            expand("${1X}", &env)
                .unwrap_err()
                .message
                .contains("invalid")
        );
        assert!(expand("${}", &env).is_err());
    }
}
