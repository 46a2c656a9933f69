//! Errors that point into a file: a headline that says what is wrong and what is expected, then
//! `--> file:line:column`, the offending line and a caret under the span (rustc style).
//!
//! Lines and columns are 1-based; columns count characters, not bytes.

use crate::util::floor_char_boundary;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub mod env;
pub(crate) mod fields;

/// Where something was defined, for error messages (`file:line:column`, 1-based).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One error about an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file (missing, unreadable).
    pub line: usize,
    /// 1-based, in characters; 0 with `line`.
    pub column: usize,
    /// The headline: what is wrong and what is expected.
    pub message: String,
    /// A hint on how to fix it.
    pub help: Option<String>,
    /// The gutter, the offending line and the caret, ready to print (empty without a position).
    pub snippet: String,
}

impl Diagnostic {
    /// An error about a whole file, without a position.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            snippet: String::new(),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:column`, or just `file` without a position.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let width = if self.line == 0 {
            1
        } else {
            self.line.to_string().len()
        };
        let pad = " ".repeat(width);
        write!(f, "{pad}--> {}", self.location())?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Renders diagnostics one after the other, separated by blank lines, in file/line order.
pub fn render_all(diags: &[Diagnostic]) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    let mut out = String::new();
    for d in sorted {
        out.push_str(&d.to_string());
        out.push_str("\n\n");
    }
    out
}

/// The text of an input file, with what is needed to turn byte spans into diagnostics.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
    /// Byte spans whose characters are masked in snippets (literal secrets).
    secrets: Vec<Range<usize>>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path: path.into(),
            text,
            line_starts,
            secrets: Vec::new(),
        }
    }

    /// Reads a file as UTF-8. A missing, unreadable or non-UTF-8 file is a diagnostic; the
    /// non-UTF-8 one points at the first invalid byte.
    pub fn read(path: &Path, what: &str) -> Result<Source, Diagnostic> {
        let bytes =
            crate::files::read_limited(path, crate::files::MAX_TEXT_BYTES).map_err(|e| {
                Diagnostic::file(
                    path,
                    format!("cannot read {what} `{}`: {e}", path.display()),
                )
            })?;
        let utf16 = match bytes.get(..2) {
            Some([0xff, 0xfe]) => Some("UTF-16 little-endian"),
            Some([0xfe, 0xff]) => Some("UTF-16 big-endian"),
            _ => None,
        };
        if let Some(encoding) = utf16 {
            // A snippet of UTF-16 read as bytes is noise; the byte order mark says it all.
            let mut d = Diagnostic::file(
                path,
                format!("{what} is {encoding} (it starts with a byte order mark): expected UTF-8"),
            )
            .with_help("re-save the file as UTF-8, e.g. `iconv -f UTF-16 -t UTF-8`");
            (d.line, d.column) = (1, 1);
            return Err(d);
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source::new(path, text)),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let lossy = String::from_utf8_lossy(&bytes).into_owned();
                // The lossy text agrees with the original up to `valid`, so the span holds.
                let mut src = Source::new(path, lossy);
                // The file was never parsed, so its secrets are unknown: a line that may hold
                // one (an API key, a header value) is shown with its strings masked.
                if let Some(span) = secret_line_strings(&src.text, valid) {
                    src.add_secret(span);
                }
                Err(src
                    .error(
                        valid..valid + 1,
                        format!("{what} is not valid UTF-8: expected UTF-8 encoded text"),
                    )
                    .with_help("TOML files must be UTF-8: re-save the file as UTF-8"))
            }
        }
    }

    /// Masks the characters in `span` whenever a snippet shows them.
    pub fn add_secret(&mut self, span: Range<usize>) {
        self.secrets.push(span);
    }

    /// 1-based line and character column of a byte offset (clamped to the text).
    pub fn position(&self, byte: usize) -> (usize, usize) {
        let byte = floor_char_boundary(&self.text, byte.min(self.text.len()));
        let line = match self.line_starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self.text[start..byte].chars().count() + 1;
        (line + 1, column)
    }

    /// The [`Location`](Location) of a byte offset.
    pub fn location(&self, span: &Range<usize>) -> Location {
        let (line, column) = self.position(span.start);
        Location {
            file: self.path.clone(),
            line,
            column,
        }
    }

    /// A diagnostic pointing at `span`.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.position(span.start);
        Diagnostic {
            file: self.path.clone(),
            line,
            column,
            message: message.into(),
            help: None,
            snippet: self.snippet(span, line),
        }
    }

    fn snippet(&self, span: Range<usize>, line: usize) -> String {
        let start = self.line_starts[line - 1];
        let mut end = self
            .line_starts
            .get(line)
            .map(|next| next - 1)
            .unwrap_or(self.text.len());
        if end > start && self.text.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
        let span_start = floor_char_boundary(&self.text, span.start.clamp(start, end));
        let span_end = floor_char_boundary(&self.text, span.end.clamp(span_start, end));
        let mut shown = String::new();
        let mut pad = String::new();
        let mut carets = 0;
        for (i, c) in self.text[start..end].char_indices() {
            let at = start + i;
            let masked = self.secrets.iter().any(|s| s.contains(&at));
            shown.push(if masked { '*' } else { c });
            if at < span_start {
                pad.push(if c == '\t' { '\t' } else { ' ' });
            } else if at < span_end {
                carets += 1;
            }
        }
        let carets = "^".repeat(carets.max(1));
        let number = line.to_string();
        let gutter = " ".repeat(number.len());
        format!("{gutter} |\n{number} | {shown}\n{gutter} | {pad}{carets}")
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, when it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The span from the first quote to the end of the line holding byte `at` when that line may hold a secret: an
/// `api_key` (or `*_key`, `*token*`, `*secret*`, `*password*`) value, or any value inside a
/// `headers` table. Used only for text that could not be parsed.
fn secret_line_strings(text: &str, at: usize) -> Option<Range<usize>> {
    let at = floor_char_boundary(text, at.min(text.len()));
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = &text[start..end];
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let secret_key = ["key", "token", "secret", "password", "authorization"]
        .iter()
        .any(|w| key.contains(w));
    let in_headers = line.contains("headers")
        || text[..start]
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('['))
            .is_some_and(|h| h.contains("headers"));
    if !secret_key && !in_headers {
        return None;
    }
    // Mask from the first quote to the end of the line: an unterminated or odd string is
    // masked too.
    let q = line.find(['"', '\''])?;
    Some(start + q..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_not_bytes() {
        let src = Source::new("f.toml", "a = 1\nné = \"x\"\n");
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // `=` after "né " : byte 10, character column 4.
        assert_eq!(src.position(10), (2, 4));
    }

    #[test]
    fn renders_rustc_style_with_caret_under_span() {
        let src = Source::new("dir/f.toml", "x = 1\nnamé = \"abc\"\n");
        let d = src
            .error(14..19, "wrong thing: expected another")
            .with_help("fix it");
        assert_eq!((d.line, d.column), (2, 8));
        assert_eq!(
            d.to_string(),
            "error: wrong thing: expected another\n --> dir/f.toml:2:8\n  |\n2 | namé = \"abc\"\n  |        ^^^^^\n  = help: fix it"
        );
    }

    #[test]
    fn secrets_are_masked_in_snippets() {
        let mut src = Source::new("f.toml", "api_key = \"sk-123\"\n");
        src.add_secret(10..18);
        let d = src.error(0..7, "bad");
        assert!(!d.to_string().contains("sk-123"), "{d}");
        assert!(d.snippet.contains("api_key = ********"), "{}", d.snippet);
    }

    #[test]
    fn non_utf8_lines_that_may_hold_a_secret_are_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        for (text, secret) in [
            (
                &b"[[target]]\napi_key = \"sk-\xe9tude-42\"\n"[..],
                "tude-42",
            ),
            (b"[target.headers]\nX-Auth = \"caf\xe9-77\"\n", "-77"),
            (b"headers = { A = \"t\xf6k-88\" }\n", "-88"),
        ] {
            std::fs::write(&path, text).unwrap();
            let d = Source::read(&path, "configuration file").unwrap_err();
            assert!(d.message.contains("not valid UTF-8"), "{d}");
            assert!(!d.to_string().contains(secret), "{d}");
            assert!(d.to_string().contains('*'), "{d}");
        }
        std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
        let d = Source::read(&path, "configuration file").unwrap_err();
        assert!(d.to_string().contains("name = \"caf"), "{d}");
    }

    #[test]
    fn syntax_errors_on_lines_that_may_hold_a_secret_are_masked() {
        for (text, secret) in [
            (
                "[[target]]\napi_key = \"sk-canary-1234\" x\n",
                "canary-1234",
            ),
            ("headers = { X-Tok = \"hdr-canary-99\" },\n", "canary-99"),
            (
                "[[target]]\napi_key = \"sk-unterminated-77\n",
                "unterminated-77",
            ),
        ] {
            let src = Source::new("c.toml", text);
            let diags = fields::parse_document(&src, &src.text).unwrap_err();
            let shown = render_all(&diags);
            assert!(shown.contains("invalid TOML"), "{shown}");
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains('*'), "{shown}");
        }
        // Other lines keep their text.
        let src = Source::new("c.toml", "name = \"chat\" x\n");
        let diags = fields::parse_document(&src, &src.text).unwrap_err();
        assert!(render_all(&diags).contains("name = \"chat\" x"));
    }

    #[test]
    fn utf16_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        for (bom, name) in [([0xff, 0xfe], "little"), ([0xfe, 0xff], "big")] {
            let mut bytes = bom.to_vec();
            bytes.extend(b"a\0=\0");
            std::fs::write(&path, bytes).unwrap();
            let d = Source::read(&path, "suite file").unwrap_err();
            assert!(d.message.contains(&format!("UTF-16 {name}-endian")), "{d}");
            assert_eq!((d.line, d.column), (1, 1));
        }
    }

    #[test]
    fn non_utf8_points_at_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, b"a = 1\nb = \"caf\xe9\"\n").unwrap();
        let d = Source::read(&path, "suite").unwrap_err();
        assert_eq!((d.line, d.column), (2, 9));
        assert!(d.message.contains("not valid UTF-8"));
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["temperature", "top_p", "max_tokens"];
        assert_eq!(suggest("temprature", keys), Some("temperature"));
        assert_eq!(suggest("max_token", keys), Some("max_tokens"));
        assert_eq!(suggest("colour", keys), None);
    }
}
