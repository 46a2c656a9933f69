//! `[judge]`: an optional OpenAI-compatible model that `modelwatch explain --judge` asks about
//! the refusal judgements the built-in detector is least sure of. Never required: without it
//! the detector decides alone, and nothing else reads this table.

use super::{Secret, positive_duration};
use crate::diag::fields::{Fields, Reader};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) const JUDGE_KEYS: &[&str] = &[
    "base_url",
    "model",
    "api_key",
    "api_key_file",
    "timeout",
    "cache",
    "max_calls",
];

/// The judge model and how it is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeSettings {
    /// An OpenAI-compatible server (`/v1/chat/completions`), without a trailing slash.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    /// Per request, connection included.
    pub timeout: Duration,
    /// Answers already given, keyed by a hash of the rubric, the model and the response: a rerun
    /// asks nothing twice. Default: `judge-cache.jsonl` beside the database.
    pub cache: PathBuf,
    /// At most this many requests per run; the rest are reported as not asked.
    pub max_calls: u32,
}

/// `Some(None)`: no `[judge]`; `None`: an error was reported.
pub(super) fn read_judge(
    r: &mut Reader,
    top: &Fields,
    dir: &Path,
    database: Option<&Path>,
) -> Option<Option<JudgeSettings>> {
    let Some(v) = top.get("judge") else {
        return Some(None);
    };
    let f = r.table_value(v, "[judge]", JUDGE_KEYS)?;
    let errors_before = r.diags.len();
    let base_url = super::target::read_base_url(r, &f);
    let model = r.nonempty_string(&f, "model", true);
    let api_key = super::target::read_api_key(r, &f, dir);
    let timeout = positive_duration(r, &f, "timeout").unwrap_or(Duration::from_secs(60));
    let cache = r
        .nonempty_string(&f, "cache", false)
        .map(|c| dir.join(c.get_ref()))
        .unwrap_or_else(|| {
            database
                .and_then(Path::parent)
                .unwrap_or(dir)
                .join("judge-cache.jsonl")
        });
    let max_calls = r
        .uint(&f, "max_calls", 1, 1_000_000)
        .map(|n| *n.get_ref() as u32)
        .unwrap_or(500);
    if r.diags.len() > errors_before {
        return None;
    }
    Some(Some(JudgeSettings {
        base_url: base_url?,
        model: model?.into_inner(),
        api_key: api_key?,
        timeout,
        cache,
        max_calls,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Source, parse};
    use std::path::Path;

    const TARGET: &str = "[[target]]\nname = \"t\"\nprovider = \"ollama\"\nbase_url = \"http://h:1\"\nmodel = \"m\"\nsuites = [\"core\"]\n";

    fn parse_judge(judge: &str) -> Result<Option<super::JudgeSettings>, String> {
        let text = format!("{judge}\n{TARGET}");
        parse(Source::new("conf/modelwatch.toml", &text), &|_| None)
            .map(|c| c.judge)
            .map_err(|d| crate::diag::render_all(&d))
    }

    #[test]
    fn absent_is_none_and_defaults_are_documented() {
        assert_eq!(parse_judge("").unwrap(), None);
        let j = parse_judge("[judge]\nbase_url = \"http://127.0.0.1:8080/\"\nmodel = \"qwen\"")
            .unwrap()
            .unwrap();
        assert_eq!(j.base_url, "http://127.0.0.1:8080");
        assert_eq!(j.model, "qwen");
        assert_eq!(j.api_key, None);
        assert_eq!(j.timeout, std::time::Duration::from_secs(60));
        assert_eq!(j.max_calls, 500);
        // Beside the database (which defaults to beside the configuration).
        assert_eq!(j.cache, Path::new("conf/judge-cache.jsonl"));
        let j = parse_judge(
            "[storage]\npath = \"/var/lib/mw/m.db\"\n[judge]\nbase_url = \"http://j:1\"\nmodel = \"q\"\n\
             api_key = \"sk-judge\"\ntimeout = \"5s\"\ncache = \"cache/j.jsonl\"\nmax_calls = 20",
        )
        .unwrap()
        .unwrap();
        assert_eq!(j.api_key.unwrap().expose(), "sk-judge");
        assert_eq!(j.timeout, std::time::Duration::from_secs(5));
        assert_eq!(j.cache, Path::new("conf/cache/j.jsonl"));
        assert_eq!(j.max_calls, 20);
    }

    #[test]
    fn mistakes_are_located_and_say_what_to_do() {
        let e = parse_judge("[judge]\nbase_url = \"http://j:1\"").unwrap_err();
        assert!(
            e.contains("model") && e.contains("modelwatch.toml:1:"),
            "{e}"
        );
        let e = parse_judge("[judge]\nbase_url = \"http://j:1\"\nmodel = \"q\"\nmodle = 1")
            .unwrap_err();
        assert!(e.contains("modle") && e.contains(":4:"), "{e}");
        let e = parse_judge("[judge]\nbase_url = \"ftp://j\"\nmodel = \"q\"").unwrap_err();
        assert!(e.contains("base_url"), "{e}");
        let e = parse_judge("[judge]\nbase_url = \"http://j:1\"\nmodel = \"q\"\nmax_calls = 0")
            .unwrap_err();
        assert!(e.contains("max_calls"), "{e}");
    }

    #[test]
    fn its_key_never_shows_in_a_snippet() {
        // A key that cannot be sent: the error points at it and masks it.
        let e = parse_judge(
            "[judge]\nbase_url = \"http://j:1\"\nmodel = \"q\"\napi_key = \"sk-secret-judge\\u0007\"",
        )
        .unwrap_err();
        assert!(e.contains("api_key") && e.contains(":4:"), "{e}");
        assert!(!e.contains("sk-secret-judge"), "{e}");
    }
}
