//! `modelwatch doctor` (and `check-config --connect`): per target, within a short time budget,
//! whether the server answers, speaks the configured API, serves the named model, and which
//! fingerprint it has; each failure comes with what it most likely means and what to do.
//!
//! One request to the API's model list tells most failures apart (refused connection, redirect,
//! 401, an HTML page, a 404 under `/v1`); the provider client then reads the fingerprint exactly
//! as a round would, with no retries and the budget as every timeout.

use super::{EXIT_INCONCLUSIVE, EXIT_USAGE, OutputFormat, live};
use modelwatch::config::duration::{DURATION_EXPECTED, format_duration, parse_duration};
use modelwatch::config::{Loaded, Provider, Target};
use modelwatch::provider::{self, http::outbound_client};
use modelwatch::runner::setup;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The default time allowed for all checks of one target.
pub const DEFAULT_TIMEOUT: &str = "2s";
/// How much of the model list (or an error page) is read.
const MAX_LIST_BYTES: usize = 256 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check only this target (repeatable). Default: every target.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options shared with `check-config --connect`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Time allowed for all checks of one target (`500ms`, `2s`); every request uses it as its
    /// timeout and none is retried.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT)]
    pub timeout: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut targets = Vec::new();
    for name in &args.targets {
        targets.push(live::target(&loaded, name)?);
    }
    if targets.is_empty() {
        targets = loaded.config.targets.iter().collect();
    }
    check_targets(&targets, &args.check)
}

/// Checks every target of `loaded` (for `check-config --connect`).
pub fn check_all(loaded: &Loaded, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let targets: Vec<&Target> = loaded.config.targets.iter().collect();
    check_targets(&targets, args)
}

fn check_targets(targets: &[&Target], args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let Some(budget) = parse_duration(&args.timeout).filter(|d| !d.is_zero()) else {
        eprintln!(
            "error: invalid duration `{}` for --timeout: {DURATION_EXPECTED}",
            args.timeout
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let checks = targets.iter().map(|t| check(t, budget));
    let results = live::runtime()?.block_on(futures_util::future::join_all(checks));
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            for r in &results {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        OutputFormat::Text => {
            for r in &results {
                write!(out, "{}", render(r))?;
            }
            let healthy = results.iter().filter(|r| r.problem.is_none()).count();
            writeln!(
                out,
                "doctor: {healthy} of {} target{} healthy (budget {} per target)",
                results.len(),
                if results.len() == 1 { "" } else { "s" },
                format_duration(budget)
            )?;
        }
    }
    Ok(exit_code(&results))
}

/// 0 when every target is healthy; 3 when a server could not be reached or failed (the
/// configuration may be right); else 2: the configuration or setup needs fixing.
fn exit_code(results: &[Checked]) -> ExitCode {
    let problems = || results.iter().filter_map(|r| r.problem);
    if problems().any(Problem::is_availability) {
        ExitCode::from(EXIT_INCONCLUSIVE)
    } else if problems().next().is_some() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// What went wrong, named for what it most likely means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Nothing accepts connections at the address.
    Unreachable,
    /// No answer within the budget.
    Timeout,
    /// The server answered 5xx or 429.
    ServerError,
    /// A 3xx: never followed.
    Redirect,
    /// 401 or 403.
    Unauthorized,
    /// A web page where an API was expected.
    HtmlPage,
    /// An Ollama `base_url` ending in `/v1`.
    OllamaV1,
    /// The server does not speak the configured API.
    WrongApi,
    /// The model is not among those the server lists.
    MissingModel,
    /// Anything else; the message says what.
    Failed,
}

impl Problem {
    fn is_availability(self) -> bool {
        matches!(
            self,
            Problem::Unreachable | Problem::Timeout | Problem::ServerError
        )
    }

    fn label(self) -> &'static str {
        match self {
            Problem::Unreachable => "dead port",
            Problem::Timeout => "no answer",
            Problem::ServerError => "server error",
            Problem::Redirect => "redirect",
            Problem::Unauthorized => "unauthorized",
            Problem::HtmlPage => "HTML page",
            Problem::OllamaV1 => "Ollama URL ends in /v1",
            Problem::WrongApi => "wrong API",
            Problem::MissingModel => "missing model",
            Problem::Failed => "failed",
        }
    }
}

/// The outcome for one target.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub target: String,
    pub provider: &'static str,
    /// `base_url` without any password.
    pub base_url: String,
    pub model: String,
    pub ok: bool,
    pub problem: Option<Problem>,
    pub message: Option<String>,
    pub hint: Option<String>,
    pub fingerprint: Option<String>,
    pub digest: Option<String>,
    pub elapsed_ms: u64,
}

/// A failed check: the problem, what was seen, what to do.
struct Finding {
    problem: Problem,
    message: String,
    hint: String,
}

fn finding(problem: Problem, message: impl Into<String>, hint: impl Into<String>) -> Finding {
    Finding {
        problem,
        message: message.into(),
        hint: hint.into(),
    }
}

async fn check(target: &Target, budget: Duration) -> Checked {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(budget, diagnose(target, budget)).await {
        Ok(r) => r,
        Err(_) => Err(finding(
            Problem::Timeout,
            format!(
                "the checks did not finish within {}",
                format_duration(budget)
            ),
            "the server accepts connections but answers slowly or not at all; check its load, \
             or allow more with --timeout",
        )),
    };
    let mut c = Checked {
        target: target.name.clone(),
        provider: target.provider.as_str(),
        base_url: display_url(&target.base_url),
        model: target.model.clone(),
        ok: outcome.is_ok(),
        problem: None,
        message: None,
        hint: None,
        fingerprint: None,
        digest: None,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    match outcome {
        Ok(fp) => {
            c.fingerprint = Some(fp.id());
            c.digest = fp.digest;
        }
        Err(f) => {
            // A server may echo the credentials into a page title or a model list.
            let cfg = setup::client_config(target, None);
            c.problem = Some(f.problem);
            c.message = Some(provider::redact_secrets(&cfg, &f.message));
            c.hint = Some(provider::redact_secrets(&cfg, &f.hint));
        }
    }
    c
}

/// A URL for display: any password replaced, unparsable text withheld.
fn display_url(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("[redacted]"));
            }
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => "[not a URL]".to_string(),
    }
}

/// The root a target's paths are joined onto: its `base_url` with a trailing `/`.
fn root(target: &Target) -> Result<Url, Finding> {
    let mut url = Url::parse(target.base_url.trim()).map_err(|e| {
        finding(
            Problem::Failed,
            format!("base_url is not a URL: {e}"),
            "set base_url to e.g. http://127.0.0.1:11434",
        )
    })?;
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

fn ends_in_v1(root: &Url) -> bool {
    root.path().trim_end_matches('/').ends_with("/v1")
}

/// The model list of the configured API, relative to the root.
fn list_path(provider: Provider, root: &Url) -> &'static str {
    match provider {
        Provider::Ollama => "api/tags",
        Provider::OpenAi if ends_in_v1(root) => "models",
        Provider::OpenAi => "v1/models",
    }
}

fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// The client for the raw requests: the providers' builder (no redirects), the target's
/// credentials and headers, the budget as every timeout.
fn raw_client(target: &Target, budget: Duration) -> Result<reqwest::Client, Finding> {
    let bad = |what: &str| {
        finding(
            Problem::Failed,
            format!("{what} cannot be sent as an HTTP header"),
            "fix the value in the configuration",
        )
    };
    let mut headers = HeaderMap::new();
    if let Some(key) = &target.api_key {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose().trim()))
            .map_err(|_| bad("api_key"))?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    for (name, value) in &target.headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad(name))?;
        let mut v = HeaderValue::from_str(value.expose()).map_err(|_| bad(name))?;
        v.set_sensitive(true);
        headers.insert(n, v);
    }
    target
        .trust()
        .apply(outbound_client())
        .map_err(|e| finding(Problem::Failed, e, "fix the target's ca_file"))?
        .connect_timeout(budget)
        .timeout(budget)
        .default_headers(headers)
        .build()
        .map_err(|e| finding(Problem::Failed, e.without_url().to_string(), "report this"))
}

/// A response reduced to what the diagnosis needs; the body is read up to a bound.
struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    body: Vec<u8>,
}

async fn get(client: &reqwest::Client, url: Url) -> Result<Answer, reqwest::Error> {
    let mut resp = client.get(url).send().await?;
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| resp.url().join(v).ok())
        .map(|u| format!("{}://{}", u.scheme(), authority(&u)));
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while body.len() < MAX_LIST_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    body.truncate(MAX_LIST_BYTES);
    Ok(Answer {
        status,
        content_type,
        location,
        body,
    })
}

async fn diagnose(target: &Target, budget: Duration) -> Result<provider::Fingerprint, Finding> {
    let root = root(target)?;
    let client = raw_client(target, budget)?;
    let path = list_path(target.provider, &root);
    let url = root.join(path).map_err(|e| {
        finding(
            Problem::Failed,
            format!("bad path {path}: {e}"),
            "fix base_url",
        )
    })?;
    let what = format!("GET {} on {}", url.path(), authority(&root));
    let answer = match get(&client, url).await {
        Ok(a) => a,
        Err(e) => return Err(send_failure(&what, &root, &e)),
    };
    let listed = classify(target, &root, &client, &what, &answer).await?;
    fingerprint(target, budget, &listed).await
}

fn send_failure(what: &str, root: &Url, e: &reqwest::Error) -> Finding {
    let cause = cause(e);
    if e.is_timeout() {
        return finding(
            Problem::Timeout,
            format!("{what}: no answer ({cause})"),
            "the server accepts connections but answers slowly or not at all; check its load, \
             or allow more with --timeout",
        );
    }
    if let Some(tls) = provider::tls::tls_failure(e) {
        let help = if provider::tls::untrusted_certificate(tls) {
            provider::tls::UNTRUSTED_HELP
        } else {
            "does the server speak TLS at base_url (https://)?"
        };
        return finding(
            Problem::Unreachable,
            format!("{what}: could not connect: TLS handshake failed: {cause}"),
            help,
        );
    }
    finding(
        Problem::Unreachable,
        format!("{what}: could not connect: {cause}"),
        format!(
            "nothing answers at {}: start the model server (`ollama serve`, `modelwatch sim`, \
             …) or fix the host and port in base_url",
            authority(root)
        ),
    )
}

/// The root cause of a failed request (`Connection refused (os error 111)`), without the URL
/// (it may carry credentials) or control characters.
fn cause(e: &reqwest::Error) -> String {
    let mut root = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    root.unwrap_or_else(|| "request failed".to_string())
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

/// The model names of a list answer, or `None` when it is not the configured API's list.
fn model_names(provider: Provider, v: &Value) -> Option<Vec<String>> {
    let (list, key) = match provider {
        Provider::Ollama => (v.get("models")?.as_array()?, "name"),
        Provider::OpenAi => (v.get("data")?.as_array()?, "id"),
    };
    Some(
        list.iter()
            .filter_map(|m| m.get(key).and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
    )
}

/// Whether the server lists `model`, by the rules the clients apply: Ollama's implicit
/// `:latest`, and an OpenAI-compatible server with one model answers for any name.
fn lists_model(provider: Provider, names: &[String], model: &str) -> bool {
    let latest = format!("{model}:latest");
    names
        .iter()
        .any(|n| n == model || (!model.contains(':') && *n == latest))
        || (provider == Provider::OpenAi && names.len() == 1)
}

fn is_html(a: &Answer) -> bool {
    if a.content_type.contains("html") {
        return true;
    }
    let head = String::from_utf8_lossy(&a.body[..a.body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<body")
}

/// The page's `<title>`, shortened, when it has one.
fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title: String = text[open_end..close]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    (!title.is_empty()).then_some(title)
}

/// Turns the model-list answer into the listed names, or the finding that explains it.
async fn classify(
    target: &Target,
    root: &Url,
    client: &reqwest::Client,
    what: &str,
    a: &Answer,
) -> Result<Vec<String>, Finding> {
    let api = api_name(target.provider);
    if (300..400).contains(&a.status) {
        return Err(finding(
            Problem::Redirect,
            format!(
                "{what}: answered {} redirecting to {} (redirects are never followed: they \
                 would carry the credentials elsewhere)",
                a.status,
                a.location.as_deref().unwrap_or("an unnamed location")
            ),
            "set base_url to the final address",
        ));
    }
    if a.status == 401 || a.status == 403 {
        let hint = if target.api_key.is_some() {
            "the server rejected the configured key: check api_key / api_key_file (and any \
             headers the server expects)"
        } else {
            "the server wants a key: set api_key_file (or api_key = \"${ENV_VAR}\") in the \
             target"
        };
        return Err(finding(
            Problem::Unauthorized,
            format!("{what}: answered {}", a.status),
            hint,
        ));
    }
    if is_html(a) {
        let title = html_title(&a.body)
            .map(|t| format!(" titled {t:?}"))
            .unwrap_or_default();
        return Err(finding(
            Problem::HtmlPage,
            format!("{what}: answered {} with an HTML page{title}", a.status),
            format!(
                "base_url reaches a web server, not an {api} API: point it at the model server \
                 (Ollama listens on port 11434 by default)"
            ),
        ));
    }
    if a.status == 429 || a.status >= 500 {
        return Err(finding(
            Problem::ServerError,
            format!("{what}: answered {}", a.status),
            "the server is up but failing or overloaded; check its logs",
        ));
    }
    if a.status == 404 && target.provider == Provider::Ollama && ends_in_v1(root) {
        return Err(finding(
            Problem::OllamaV1,
            format!("{what}: answered 404"),
            "remove `/v1` from base_url: Ollama's own API lives at the server root (or set \
             provider = \"openai\" to use its OpenAI-compatible API under /v1)",
        ));
    }
    let parsed: Option<Value> = serde_json::from_slice(&a.body).ok();
    let names = parsed
        .as_ref()
        .and_then(|v| model_names(target.provider, v));
    match names {
        Some(names) if (200..300).contains(&a.status) => Ok(names),
        _ => Err(wrong_api(target, root, client, what, a).await),
    }
}

fn api_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Ollama => "Ollama",
        Provider::OpenAi => "OpenAI-compatible",
    }
}

/// The server answered, but not as the configured API: says which API it does speak when the
/// other one's model list answers.
async fn wrong_api(
    target: &Target,
    root: &Url,
    client: &reqwest::Client,
    what: &str,
    a: &Answer,
) -> Finding {
    let api = api_name(target.provider);
    let (other, other_path) = match target.provider {
        Provider::Ollama => (Provider::OpenAi, "v1/models"),
        Provider::OpenAi => (Provider::Ollama, "../api/tags"),
    };
    let other_path = if target.provider == Provider::OpenAi && !ends_in_v1(root) {
        "api/tags"
    } else {
        other_path
    };
    let speaks_other = match root.join(other_path) {
        Ok(u) => get(client, u).await.ok().is_some_and(|o| {
            (200..300).contains(&o.status)
                && serde_json::from_slice::<Value>(&o.body)
                    .ok()
                    .and_then(|v| model_names(other, &v))
                    .is_some()
        }),
        Err(_) => false,
    };
    let hint = if speaks_other {
        format!(
            "the server speaks the {} API: set provider = \"{}\"",
            api_name(other),
            other.as_str()
        )
    } else {
        format!("point base_url at a server that speaks the {api} API, or fix provider")
    };
    finding(
        Problem::WrongApi,
        format!(
            "{what}: answered {} but not with the {api} model list",
            a.status
        ),
        hint,
    )
}

/// Reads the fingerprint as a round would (no retries, the budget as every timeout).
async fn fingerprint(
    target: &Target,
    budget: Duration,
    listed: &[String],
) -> Result<provider::Fingerprint, Finding> {
    if !lists_model(target.provider, listed, &target.model) {
        let offered = if listed.is_empty() {
            "the server lists no models".to_string()
        } else {
            format!("it offers: {}", listed.join(", "))
        };
        let hint = match target.provider {
            Provider::Ollama => format!(
                "pull it with `ollama pull {}`, or set model to one it has ({offered})",
                target.model
            ),
            Provider::OpenAi => {
                format!("set model to one the server serves ({offered})")
            }
        };
        return Err(finding(
            Problem::MissingModel,
            format!(
                "model {:?} is not served at {}",
                target.model,
                display_url(&target.base_url)
            ),
            hint,
        ));
    }
    let mut cfg = setup::client_config(target, None);
    cfg.retries = 0;
    cfg.connect_timeout = cfg.connect_timeout.min(budget);
    cfg.first_byte_timeout = budget;
    cfg.total_timeout = budget;
    let client = provider::build_client(cfg).map_err(|e| {
        finding(
            Problem::Failed,
            e.to_string(),
            "fix the target in the configuration",
        )
    })?;
    client.fingerprint().await.map_err(|e| {
        finding(
            Problem::Failed,
            format!("reading the fingerprint failed: {} ({})", e.message, e.kind),
            "the model list answers but the model's details do not; check the server's logs",
        )
    })
}

fn render(r: &Checked) -> String {
    let head = format!(
        "{:<5} {}  {} {}  model {}",
        if r.ok { "ok" } else { "FAIL" },
        r.target,
        r.provider,
        r.base_url,
        r.model
    );
    match (&r.problem, &r.message, &r.hint) {
        (Some(p), Some(m), Some(h)) => {
            format!("{head}\n      {}: {m}\n      hint: {h}\n", p.label())
        }
        _ => format!(
            "{head}  fingerprint {}{}  ({} ms)\n",
            r.fingerprint.as_deref().unwrap_or("?"),
            r.digest
                .as_deref()
                .map(|d| format!(" (digest {})", short(d)))
                .unwrap_or_default(),
            r.elapsed_ms
        ),
    }
}

fn short(s: &str) -> String {
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    s.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_read_from_html_and_shortened() {
        let page = b"<!DOCTYPE html><html><head><TITLE>\n  Welcome to   nginx!</title>";
        assert_eq!(html_title(page).as_deref(), Some("Welcome to nginx!"));
        assert_eq!(html_title(b"<html><body>x</body></html>"), None);
    }

    #[test]
    fn model_lookup_follows_the_clients_rules() {
        let names = vec!["llama3:latest".to_string(), "qwen:7b".to_string()];
        assert!(lists_model(Provider::Ollama, &names, "llama3"));
        assert!(lists_model(Provider::Ollama, &names, "qwen:7b"));
        assert!(!lists_model(Provider::Ollama, &names, "qwen"));
        assert!(!lists_model(Provider::OpenAi, &names, "gemma"));
        let one = vec!["/models/gemma.gguf".to_string()];
        assert!(lists_model(Provider::OpenAi, &one, "anything"));
        assert!(!lists_model(Provider::Ollama, &one, "anything"));
    }

    #[test]
    fn list_paths_follow_the_provider_and_a_v1_base() {
        let r = |s: &str| Url::parse(s).unwrap();
        assert_eq!(list_path(Provider::Ollama, &r("http://h:1/")), "api/tags");
        assert_eq!(list_path(Provider::OpenAi, &r("http://h:1/")), "v1/models");
        assert_eq!(list_path(Provider::OpenAi, &r("http://h:1/v1/")), "models");
        assert!(ends_in_v1(&r("http://h:1/v1/")));
        assert!(!ends_in_v1(&r("http://h:1/v10/")));
    }

    #[test]
    fn passwords_never_reach_the_output() {
        let shown = display_url("http://user:hunter2@h:1/x");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
