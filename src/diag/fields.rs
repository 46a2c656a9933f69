//! Reading TOML tables field by field, collecting every error instead of stopping at the first.
//!
//! Shared by the configuration and the suite loader: both parse with toml's span-keeping
//! document parser, then walk the tables with a [`Reader`], which knows the allowed keys of each
//! table, the expected type of each value and where to point when something is wrong.

use super::env::{Env, expand};
use super::{Diagnostic, Source, suggest};
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// Parses a document, turning every syntax error into a diagnostic.
pub(crate) fn parse_document<'i>(
    src: &Source,
    text: &'i str,
) -> Result<Spanned<DeTable<'i>>, Vec<Diagnostic>> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Ok(doc);
    }
    // The file did not parse, so its secrets are unknown: a line that may hold one (an API
    // key, a header value) is shown with its strings masked.
    let mut shown = src.clone();
    for e in &errors {
        let at = e.span().map_or(0, |r| r.start);
        if let Some(span) = super::secret_line_strings(&src.text, at) {
            shown.add_secret(span);
        }
    }
    let src = &shown;
    Err(errors
        .iter()
        .map(|e| {
            let span = e.span().unwrap_or(0..0);
            let mut message = e.message().to_owned();
            if message == "duplicate key"
                && let Some(key) = src.text.get(span.clone())
            {
                message = format!("duplicate key `{key}`: each key may appear once per table");
            }
            src.error(span, format!("invalid TOML: {message}"))
                .with_help("see https://toml.io for the syntax")
        })
        .collect())
}

/// Walks one file, collecting diagnostics.
pub(crate) struct Reader<'s> {
    pub src: &'s Source,
    pub diags: Vec<Diagnostic>,
    /// Expands `${VAR}` in string values when set (configuration files, not suites).
    env: Option<Env<'s>>,
}

/// One table being read: its entries, where it is, how to name it in messages.
pub(crate) struct Fields<'a, 'i> {
    table: &'a DeTable<'i>,
    pub span: Range<usize>,
    /// How the table is named in messages, e.g. `[[target]]` or `[storage]`.
    pub what: String,
}

impl<'a, 'i> Fields<'a, 'i> {
    pub fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
    }
}

/// Where a diagnostic about a table itself points: its header line.
fn header_span(span: &Range<usize>) -> Range<usize> {
    span.start..span.start + 1
}

impl<'s> Reader<'s> {
    pub fn new(src: &'s Source, env: Option<Env<'s>>) -> Self {
        Reader {
            src,
            diags: Vec::new(),
            env,
        }
    }

    /// Looks up an environment variable (none when this reader does not expand).
    pub fn env(&self, name: &str) -> Option<String> {
        self.env.and_then(|e| e(name))
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(self.src.error(span, message));
    }

    pub fn error_help(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(self.src.error(span, message).with_help(help));
    }

    /// Opens a table, reporting every key not in `allowed`.
    pub fn fields<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        span: Range<usize>,
        what: impl Into<String>,
        allowed: &[&str],
    ) -> Fields<'a, 'i> {
        self.fields_hinted(table, span, what, allowed, &|_| None)
    }

    /// [`Reader::fields`], with a help text for some unknown keys (e.g. where they belong).
    pub fn fields_hinted<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        span: Range<usize>,
        what: impl Into<String>,
        allowed: &[&str],
        hint: &dyn Fn(&str) -> Option<String>,
    ) -> Fields<'a, 'i> {
        let what = what.into();
        for (key, _) in table.iter() {
            let name = key.get_ref().as_ref();
            if allowed.contains(&name) {
                continue;
            }
            let help = match suggest(name, allowed.iter().copied()) {
                _ if hint(name).is_some() => hint(name).unwrap_or_default(),
                Some(s) => format!(
                    "did you mean `{s}`? expected one of: {}",
                    allowed.join(", ")
                ),
                None => format!("expected one of: {}", allowed.join(", ")),
            };
            self.error_help(key.span(), format!("unknown key `{name}` in {what}"), help);
        }
        Fields { table, span, what }
    }

    /// Opens a value that must be a table.
    pub fn table_value<'a, 'i>(
        &mut self,
        value: &'a Spanned<DeValue<'i>>,
        what: impl Into<String>,
        allowed: &[&str],
    ) -> Option<Fields<'a, 'i>> {
        let what = what.into();
        match value.get_ref() {
            DeValue::Table(t) => Some(self.fields(t, value.span(), what, allowed)),
            other => {
                self.error(
                    value.span(),
                    format!(
                        "wrong type for {what}: expected a table, found {}",
                        article(other)
                    ),
                );
                None
            }
        }
    }

    fn wrong_type(&mut self, f: &Fields, key: &str, value: &Spanned<DeValue>, expected: &str) {
        self.error(
            value.span(),
            format!(
                "wrong type for `{key}` in {}: expected {expected}, found {}",
                f.what,
                article(value.get_ref())
            ),
        );
    }

    /// Reports a missing required key at the table's header.
    pub fn missing(&mut self, f: &Fields, key: &str, expected: &str) {
        self.error(
            header_span(&f.span),
            format!("missing key `{key}` in {}: expected {expected}", f.what),
        );
    }

    /// A string value, with `${VAR}` expanded when this reader expands.
    pub fn string(&mut self, f: &Fields, key: &str) -> Option<Spanned<String>> {
        let value = f.get(key)?;
        let DeValue::String(s) = value.get_ref() else {
            self.wrong_type(f, key, value, "a string");
            return None;
        };
        self.expand(s, value.span())
            .map(|s| Spanned::new(value.span(), s))
    }

    /// Expands a string found at `span` (unchanged when this reader does not expand).
    pub fn expand(&mut self, s: &str, span: Range<usize>) -> Option<String> {
        let Some(env) = self.env else {
            return Some(s.to_owned());
        };
        match expand(s, env) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = self.inner_span(s, span, e.range);
                self.error_help(at, e.message, e.help);
                None
            }
        }
    }

    /// Maps a byte range inside a string value to the file, when the literal has no escapes;
    /// otherwise the whole value.
    fn inner_span(&self, value: &str, span: Range<usize>, inner: Range<usize>) -> Range<usize> {
        let raw = self.src.text.get(span.clone()).unwrap_or("");
        for quote in ["\"", "'"] {
            if raw.len() == value.len() + 2
                && raw.starts_with(quote)
                && raw.ends_with(quote)
                && &raw[1..raw.len() - 1] == value
            {
                return span.start + 1 + inner.start..span.start + 1 + inner.end;
            }
        }
        span
    }

    pub fn required_string(&mut self, f: &Fields, key: &str) -> Option<Spanned<String>> {
        if f.get(key).is_none() {
            self.missing(f, key, "a string");
            return None;
        }
        self.string(f, key)
    }

    /// A non-empty string.
    pub fn nonempty_string(
        &mut self,
        f: &Fields,
        key: &str,
        required: bool,
    ) -> Option<Spanned<String>> {
        let s = if required {
            self.required_string(f, key)?
        } else {
            self.string(f, key)?
        };
        if s.get_ref().trim().is_empty() {
            self.error(s.span(), format!("`{key}` in {} must not be empty", f.what));
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, f: &Fields, key: &str) -> Option<Spanned<bool>> {
        let value = f.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(value.span(), *b)),
            _ => {
                self.wrong_type(f, key, value, "true or false");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn uint(&mut self, f: &Fields, key: &str, min: u64, max: u64) -> Option<Spanned<u64>> {
        let value = f.get(key)?;
        let DeValue::Integer(i) = value.get_ref() else {
            self.wrong_type(f, key, value, "an integer");
            return None;
        };
        let n = i64::from_str_radix(i.as_str(), i.radix()).ok();
        match n {
            Some(n) if n >= 0 && (n as u64) >= min && (n as u64) <= max => {
                Some(Spanned::new(value.span(), n as u64))
            }
            _ => {
                self.error(
                    value.span(),
                    format!("`{key}` in {} must be between {min} and {max}", f.what),
                );
                None
            }
        }
    }

    pub fn u32(&mut self, f: &Fields, key: &str, min: u32) -> Option<Spanned<u32>> {
        self.uint(f, key, u64::from(min), u64::from(u32::MAX))
            .map(|v| Spanned::new(v.span(), *v.get_ref() as u32))
    }

    /// A number (integer or float) in `min..=max`.
    pub fn number(&mut self, f: &Fields, key: &str, min: f64, max: f64) -> Option<Spanned<f64>> {
        let value = f.get(key)?;
        let n = match value.get_ref() {
            DeValue::Float(x) => x.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            _ => {
                self.wrong_type(f, key, value, "a number");
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() && n >= min && n <= max => Some(Spanned::new(value.span(), n)),
            _ => {
                let range = match (min == f64::MIN, max == f64::MAX) {
                    (true, true) => "a finite number".to_owned(),
                    (false, true) => format!("a number of at least {min}"),
                    _ => format!("a number from {min} to {max}"),
                };
                self.error(
                    value.span(),
                    format!("`{key}` in {} must be {range}", f.what),
                );
                None
            }
        }
    }

    /// An array value.
    pub fn array<'a, 'i>(
        &mut self,
        f: &Fields<'a, 'i>,
        key: &str,
        expected: &str,
    ) -> Option<&'a DeArray<'i>> {
        let value = f.get(key)?;
        match value.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.wrong_type(f, key, value, expected);
                None
            }
        }
    }

    /// An array of strings (each expanded when this reader expands).
    pub fn strings(&mut self, f: &Fields, key: &str) -> Option<Vec<Spanned<String>>> {
        let items = self.array(f, key, "an array of strings")?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => match self.expand(s, item.span()) {
                    Some(v) => out.push(Spanned::new(item.span(), v)),
                    None => ok = false,
                },
                other => {
                    ok = false;
                    self.error(
                        item.span(),
                        format!(
                            "wrong type for an element of `{key}` in {}: expected a string, found {}",
                            f.what,
                            article(other)
                        ),
                    );
                }
            }
        }
        ok.then_some(out)
    }
}

/// "a string", "an integer", … for messages.
pub(crate) fn article(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
