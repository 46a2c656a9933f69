//! `[traffic]`: production completions sent to `POST /api/v1/ingest`. Absent, ingestion is
//! off. The section needs its own bearer token (`token`, usually `"${VAR}"`, or `token_file`),
//! separate from `[server] token` so that applications can send traffic without being able to
//! silence alerts. See `docs/traffic.md`.

use super::Secret;
#[path = "traffic_route.rs"]
mod route;
use crate::diag::fields::{Fields, Reader};
pub use route::RouteSchema;
use std::path::Path;
use toml::Spanned;
use toml::de::DeValue;

pub(super) const TRAFFIC_KEYS: &[&str] = &[
    "token",
    "token_file",
    "store_text",
    "max_body_bytes",
    "max_line_bytes",
    "max_rate",
    "queue",
    "max_streams",
    "baseline_window",
    "baseline_file",
    "route",
];

/// Shortest accepted ingest token.
const MIN_TOKEN: usize = 16;

/// How traffic is received, bounded and kept.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSettings {
    /// Bearer token of `POST /api/v1/ingest`.
    pub token: Secret,
    /// Keep the completion texts (off: measurements only).
    pub store_text: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest line of a body.
    pub max_line_bytes: usize,
    /// Completions accepted per second, all senders together (also the most lines a request
    /// may hold).
    pub max_rate: u32,
    /// Batches waiting for the traffic task; a full queue answers `503` with `Retry-After`.
    pub queue: usize,
    /// Distinct (target, route) streams; lines of further routes are refused, which keeps the
    /// label sets of `/metrics` bounded.
    pub max_streams: usize,
    /// At a swap, rebuild each route's baseline from its completions received this long before
    /// the swap (`None`: keep the baseline recorded from the first completions).
    pub baseline_window: Option<std::time::Duration>,
    /// A baseline per route from a JSON-lines file in the ingest format, instead of recording
    /// one (resolved against the configuration's directory).
    pub baseline_file: Option<std::path::PathBuf>,
    /// `[[traffic.route]]`: routes whose answers must satisfy a JSON Schema (read again at
    /// each reload).
    pub routes: Vec<RouteSchema>,
}

impl TrafficSettings {
    /// The defaults with `token`.
    pub fn with_token(token: Secret) -> TrafficSettings {
        TrafficSettings {
            token,
            store_text: false,
            max_body_bytes: 4 * 1024 * 1024,
            max_line_bytes: 64 * 1024,
            max_rate: 5_000,
            queue: 64,
            max_streams: 200,
            baseline_window: None,
            baseline_file: None,
            routes: Vec::new(),
        }
    }
}

/// Reads `[traffic]`: `Some(None)` when absent, `None` after an error was reported.
pub(super) fn read_traffic(
    r: &mut Reader,
    top: &Fields,
    dir: &Path,
) -> Option<Option<TrafficSettings>> {
    let Some(v) = top.get("traffic") else {
        return Some(None);
    };
    let f = r.table_value(v, "[traffic]", TRAFFIC_KEYS)?;
    let token = read_token(r, &f, dir)?;
    let mut t = TrafficSettings::with_token(token);
    if let Some(b) = r.bool(&f, "store_text") {
        t.store_text = *b.get_ref();
    }
    if let Some(n) = r.uint(&f, "max_body_bytes", 1024, 64 * 1024 * 1024) {
        t.max_body_bytes = *n.get_ref() as usize;
    }
    if let Some(n) = r.uint(&f, "max_line_bytes", 256, 16 * 1024 * 1024) {
        t.max_line_bytes = *n.get_ref() as usize;
    }
    if let Some(n) = r.uint(&f, "max_rate", 1, 1_000_000) {
        t.max_rate = *n.get_ref() as u32;
    }
    if let Some(n) = r.uint(&f, "queue", 1, 65_536) {
        t.queue = *n.get_ref() as usize;
    }
    if let Some(n) = r.uint(&f, "max_streams", 1, 10_000) {
        t.max_streams = *n.get_ref() as usize;
    }
    if f.get("baseline_window").is_some() {
        t.baseline_window = Some(super::positive_duration(r, &f, "baseline_window")?);
    }
    if let Some(p) = r.nonempty_string(&f, "baseline_file", false) {
        t.baseline_file = Some(dir.join(p.get_ref()));
    }
    t.routes = route::read_routes(r, &f, dir)?;
    Some(Some(t))
}

/// `token` or `token_file`, exactly one, at least [`MIN_TOKEN`] characters.
fn read_token(r: &mut Reader, f: &Fields, dir: &Path) -> Option<Secret> {
    let inline = r.string(f, "token");
    let file = r.nonempty_string(f, "token_file", false);
    let (value, span) = match (inline, file) {
        (Some(_), Some(file)) => {
            r.error_help(
                file.span(),
                "both `token` and `token_file` are set in [traffic]: expected at most one",
                "keep `token_file` (the token stays out of the config) and remove `token`",
            );
            return None;
        }
        (Some(t), None) => (t.get_ref().trim().to_string(), t.span()),
        (None, Some(file)) => {
            let path = super::target::resolve_credential(file.get_ref(), dir, r);
            match crate::files::read_text_limited(&path, crate::files::MAX_CREDENTIAL_BYTES) {
                Ok(s) => (s.trim().to_string(), file.span()),
                Err(e) => {
                    r.error_help(
                        file.span(),
                        format!("cannot read token_file `{}`: {e}", path.display()),
                        "relative paths are resolved against $CREDENTIALS_DIRECTORY when set, else the configuration file's directory",
                    );
                    return None;
                }
            }
        }
        (None, None) => {
            if f.get("token").is_none() && f.get("token_file").is_none() {
                r.error_help(
                    f.span.start..f.span.start + 1,
                    "[traffic] needs `token` or `token_file`: ingestion is never open",
                    "generate one with `openssl rand -hex 32` and set token = \"${MODELWATCH_INGEST_TOKEN}\"",
                );
            }
            return None;
        }
    };
    if value.len() < MIN_TOKEN {
        r.error_help(
            span,
            format!("the [traffic] token is too short: expected at least {MIN_TOKEN} characters"),
            "generate one with `openssl rand -hex 32`",
        );
        return None;
    }
    Some(Secret::new(value))
}

/// The span of a literal `[traffic] token`, masked in snippets.
pub(super) fn literal_token_span(doc: &toml::de::DeTable) -> Option<std::ops::Range<usize>> {
    let Some(DeValue::Table(t)) = doc.get("traffic").map(|v| v.get_ref()) else {
        return None;
    };
    t.get("token")
        .filter(|v: &&Spanned<DeValue>| matches!(v.get_ref(), DeValue::String(_)))
        .map(|v| v.span())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::diag::Source;

    fn load(section: &str) -> Result<Option<super::TrafficSettings>, String> {
        let text = format!(
            "[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"core\"]\n{section}"
        );
        let src = Source::new("conf/modelwatch.toml", text);
        let env = |k: &str| (k == "INGEST").then(|| "0123456789abcdef0123".to_string());
        parse(src, &env)
            .map(|c| c.traffic)
            .map_err(|d| crate::diag::render_all(&d))
    }

    #[test]
    fn absent_means_off_and_defaults_apply() {
        assert_eq!(load("").unwrap(), None);
        let t = load("[traffic]\ntoken = \"${INGEST}\"\n").unwrap().unwrap();
        assert_eq!(t.token.expose(), "0123456789abcdef0123");
        assert!(!t.store_text);
        assert_eq!(t.max_body_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn a_section_without_a_usable_token_is_refused() {
        let e = load("[traffic]\nstore_text = true\n").unwrap_err();
        assert!(e.contains("needs `token` or `token_file`"), "{e}");
        let e = load("[traffic]\ntoken = \"short\"\n").unwrap_err();
        assert!(e.contains("too short"), "{e}");
        assert!(!e.contains("\"short\""), "the token is masked: {e}");
        let e = load("[traffic]\ntoken = \"${INGEST}\"\nmax_rate = 0\n").unwrap_err();
        assert!(
            e.contains("`max_rate` in [traffic] must be between 1"),
            "{e}"
        );
        let e = load("[traffic]\ntoken = \"${INGEST}\"\nqueue_len = 3\n").unwrap_err();
        assert!(e.contains("queue_len"), "{e}");
    }
}
