//! The configuration file (`modelwatch.toml`): storage, HTTP server, probe directory and the
//! targets to watch.
//!
//! Loading collects every error of the file (syntax, unknown keys, types, values, cross-field
//! rules) as [`Diagnostic`]s pointing at the offending value; [`load_with_suites`] also loads
//! every referenced suite and checks what needs both. The format is documented in
//! `docs/configuration.md`.

pub mod daemon;
pub mod duration;
pub use crate::diag::env;
use crate::files;
mod margins;
pub use margins::Sensitivity;
pub mod secret;
pub mod server;
pub mod sinks;
mod values;

pub use daemon::{Alerts, DaemonSettings, MaintenanceWindow, Pin, TargetDaemon};
pub use env::{Env, process_env};
pub use secret::Secret;
pub use server::Server;
pub use sinks::{Otlp, Sentry, Telemetry, Webhook, WebhookFormat};

use crate::diag::fields::{self, Fields, Reader, parse_document};
use crate::diag::{Diagnostic, Source};
use crate::eval::CompiledChecks;
use crate::probe::{GEN_PARAM_KEYS, read_gen_params};
use crate::probe::{GenParams, Location, ProbeInput, Suite};
use duration::{DURATION_EXPECTED, SIZE_EXPECTED, format_duration, parse_duration, parse_size};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;
use values::{MAX_RESPONSE_BYTES, header_problem, secret_url};

/// The shortest allowed `interval`: probing faster measures the server's load, not the model.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// A loaded, validated configuration. Relative paths are already resolved against the
/// configuration file's directory.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration file itself.
    pub path: PathBuf,
    pub storage: Storage,
    pub server: Server,
    /// Where suites named without a path live.
    pub probes_dir: PathBuf,
    pub targets: Vec<Target>,
    /// Practical margins of the verdict commands (`[margins]`, defaults when absent).
    pub margins: crate::drift::Margins,
    /// `[daemon]`: process-wide limits of `modelwatch daemon`.
    pub daemon: DaemonSettings,
    /// `[alerts]`: the alert lifecycle and its sinks.
    pub alerts: Alerts,
    /// `[telemetry]`: OpenTelemetry export.
    pub telemetry: Telemetry,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// SQLite database file.
    pub path: PathBuf,
    /// How long raw response text is kept (measurements are kept longer).
    pub raw_text_retention: Duration,
    /// How long samples (measurements) are kept.
    pub sample_retention: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ollama,
    OpenAi,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Ollama => "ollama",
            Provider::OpenAi => "openai",
        }
    }
}

/// Which endpoint of an OpenAI-compatible server is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions` (Ollama: `/api/chat`).
    Chat,
    /// `/v1/completions`, raw text in and out, for base models.
    Completion,
}

/// A suite a target runs, as written in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteRef {
    /// As written: a name (`core`) or a path (`extra/rag.toml`).
    pub reference: String,
    /// The resolved file.
    pub path: PathBuf,
    pub location: Location,
    /// Byte range of the reference in the configuration file, for diagnostics.
    pub span: Range<usize>,
}

/// One served model endpoint to watch.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub provider: Provider,
    /// Without a trailing slash.
    pub base_url: String,
    pub model: String,
    pub api: Api,
    pub api_key: Option<Secret>,
    /// Extra HTTP headers sent with every request (values are secrets: they may carry tokens).
    pub headers: Vec<(String, Secret)>,
    pub suites: Vec<SuiteRef>,
    /// Generation parameters under the suites' and probes' own (`[target.params]`).
    pub params: GenParams,
    /// Overrides every probe's sample count when set.
    pub samples: Option<u32>,
    /// Time between rounds in the daemon.
    pub interval: Duration,
    /// Baseline file.
    pub baseline: Option<PathBuf>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    /// Retries after a connection error, 429 or 5xx.
    pub retries: u32,
    /// Requests in flight at once against this target.
    pub max_concurrency: u32,
    /// Stream responses (needed for time to first token).
    pub stream: bool,
    /// Responses larger than this are cut off and recorded as an error.
    pub max_response_bytes: u64,
    /// Daemon settings: pin, jitter, false-alarm budget, rate limit, round deadline.
    pub daemon: TargetDaemon,
    /// Where the `[[target]]` table starts.
    pub location: Location,
}

impl Target {
    /// Generation parameters for a probe: the probe's resolved parameters, then the target's.
    pub fn params_for(&self, probe: &GenParams) -> GenParams {
        probe.or(&self.params)
    }

    /// Samples per round for a probe: the target override, else the probe's own.
    pub fn samples_for(&self, probe_samples: u32) -> u32 {
        self.samples.unwrap_or(probe_samples)
    }
}

/// A configuration together with every suite its targets reference.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Each referenced suite file once, in order of first reference.
    pub suites: Vec<Suite>,
    /// Every probe's checks, compiled once when its suite was loaded, by probe hash (as rounds
    /// look them up).
    pub checks: Arc<HashMap<String, CompiledChecks>>,
    /// Problems that do not stop a run but deserve a fix (a config file holding secrets that
    /// others can read). Commands print them to stderr.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The suites a target runs, in the order it lists them.
    pub fn target_suites<'a>(&'a self, target: &'a Target) -> impl Iterator<Item = &'a Suite> {
        target
            .suites
            .iter()
            .filter_map(|r| self.suites.iter().find(|s| s.path == r.path))
    }

    pub fn probe_count(&self) -> usize {
        self.suites.iter().map(|s| s.probes.len()).sum()
    }
}

const TOP_KEYS: &[&str] = &[
    "storage",
    "server",
    "probes_dir",
    "target",
    "margins",
    "daemon",
    "alerts",
    "telemetry",
];
const STORAGE_KEYS: &[&str] = &["path", "raw_text_retention", "sample_retention"];
const TARGET_KEYS: &[&str] = &[
    "name",
    "provider",
    "base_url",
    "model",
    "api",
    "api_key",
    "api_key_file",
    "headers",
    "suites",
    "params",
    "samples",
    "interval",
    "baseline",
    "request_timeout",
    "connect_timeout",
    "first_byte_timeout",
    "retries",
    "max_concurrency",
    "stream",
    "max_response_bytes",
    "pin",
    "jitter",
    "false_alarm_interval",
    "max_requests_per_second",
    "round_deadline",
];

/// Reads and validates a configuration file. Suite files are neither checked for existence nor
/// read; see [`load_with_suites`].
pub fn load(path: &Path, env: Env<'_>) -> Result<Config, Vec<Diagnostic>> {
    let src = read_config(path)?;
    parse(src, env)
}

/// Reads and validates a configuration file and every suite it references, collecting the
/// errors of all of them.
pub fn load_with_suites(path: &Path, env: Env<'_>) -> Result<Loaded, Vec<Diagnostic>> {
    let src = read_config(path)?;
    // Suites are loaded even when the configuration has errors, so that one run reports all.
    let parsed = parse_partial(src.clone(), env);
    let mut diags = parsed.diags;
    let mut suites: Vec<Suite> = Vec::new();
    let mut checks = HashMap::new();
    let mut seen: Vec<&Path> = Vec::new();
    for r in &parsed.suite_refs {
        if !r.path.is_file() {
            diags.push(unknown_suite(&src, r, &parsed.probes_dir));
            continue;
        }
        if seen.contains(&r.path.as_path()) {
            continue;
        }
        seen.push(&r.path);
        match crate::probe::load::load_suite_checked(&r.path) {
            Ok((s, mut by_id)) => {
                for p in &s.probes {
                    if let Some(c) = by_id.remove(&p.id) {
                        checks.insert(p.hash.clone(), c);
                    }
                }
                suites.push(s);
            }
            Err(d) => diags.extend(d),
        }
    }
    let Some(config) = parsed.config else {
        return Err(diags);
    };
    for target in &config.targets {
        check_target_suites(&src, target, &suites, &mut diags);
    }
    if diags.is_empty() {
        let warnings = exposure_warning(path, parsed.holds_secrets, file_mode(path))
            .into_iter()
            .chain(config.server.exposure_warning())
            .collect();
        Ok(Loaded {
            config,
            suites,
            checks: Arc::new(checks),
            warnings,
        })
    } else {
        Err(diags)
    }
}

/// The permission bits of a file (`None` where unknown or not Unix).
fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A warning when a configuration file that holds secrets in clear (an `api_key` or header value
/// that does not come from the environment) can be read by group or others.
pub fn exposure_warning(path: &Path, holds_secrets: bool, mode: Option<u32>) -> Option<String> {
    let mode = mode?;
    if !holds_secrets || mode & 0o077 == 0 {
        return None;
    }
    Some(format!(
        "{} holds secrets (api_key, header values, tokens or a webhook URL) and is readable by group or others \
         (mode {:03o}): run `chmod 600 {}`, or move the key to api_key_file or ${{VAR}}",
        path.display(),
        mode & 0o777,
        path.display()
    ))
}

fn unknown_suite(src: &Source, r: &SuiteRef, probes_dir: &Path) -> Diagnostic {
    let names = available_suites(probes_dir);
    let help = if names.is_empty() {
        format!("no suites found in {}", probes_dir.display())
    } else {
        format!(
            "available in {}: {}",
            probes_dir.display(),
            names.join(", ")
        )
    };
    src.error(
        r.span.clone(),
        format!(
            "unknown suite `{}`: no file {}",
            r.reference,
            r.path.display()
        ),
    )
    .with_help(help)
}

fn read_config(path: &Path) -> Result<Source, Vec<Diagnostic>> {
    Source::read(path, "configuration file").map_err(|d| {
        let d = if d.line == 0 {
            d.with_help("pass the configuration with `--config PATH` (or set MODELWATCH_CONFIG)")
        } else {
            d
        };
        vec![d]
    })
}

/// Rules that need both a target and its loaded suites.
fn check_target_suites(
    src: &Source,
    target: &Target,
    suites: &[Suite],
    diags: &mut Vec<Diagnostic>,
) {
    let mut names: HashMap<&str, &SuiteRef> = HashMap::new();
    for r in &target.suites {
        let Some(suite) = suites.iter().find(|s| s.path == r.path) else {
            continue;
        };
        let at = r.span.clone();
        if let Some(first) = names.insert(&suite.name, r) {
            diags.push(
                src.error(
                    at.clone(),
                    format!(
                        "target `{}` runs two suites named `{}`: expected distinct suite names",
                        target.name, suite.name
                    ),
                )
                .with_help(format!(
                    "`{}` and `{}` both declare suite = \"{}\"; rename one",
                    first.reference, r.reference, suite.name
                )),
            );
        }
        if target.api == Api::Completion
            && let Some(p) = suite
                .probes
                .iter()
                .find(|p| matches!(p.input, ProbeInput::Messages(_)))
        {
            diags.push(
                src.error(
                    at,
                    format!(
                        "target `{}` uses api = \"completion\" but suite `{}` has chat probes: expected probes with `prompt` only",
                        target.name, suite.name
                    ),
                )
                .with_help(format!(
                    "probe `{}` at {} uses `messages`; use api = \"chat\" or a suite without `messages`",
                    p.id, p.location
                )),
            );
        }
    }
}

/// Parses configuration text. `src.path` names the file in errors and anchors relative paths.
pub fn parse(src: Source, env: Env<'_>) -> Result<Config, Vec<Diagnostic>> {
    let parsed = parse_partial(src, env);
    match parsed.config {
        Some(c) if parsed.diags.is_empty() => Ok(c),
        _ => Err(parsed.diags),
    }
}

/// What could be read of a configuration: the configuration when it has no error, every suite
/// reference (also of broken targets) and every error.
struct Parsed {
    config: Option<Config>,
    /// Every suite reference of every target, broken targets included.
    suite_refs: Vec<SuiteRef>,
    probes_dir: PathBuf,
    diags: Vec<Diagnostic>,
    /// The text holds an `api_key` or header value in clear (not only `${VAR}` references).
    holds_secrets: bool,
}

fn parse_partial(mut src: Source, env: Env<'_>) -> Parsed {
    let text = src.text.clone();
    let doc = match parse_document(&src, &text) {
        Ok(doc) => doc,
        Err(diags) => {
            return Parsed {
                config: None,
                suite_refs: Vec::new(),
                probes_dir: PathBuf::new(),
                diags,
                holds_secrets: false,
            };
        }
    };
    let mut holds_secrets = false;
    for span in literal_secret_spans(doc.get_ref()) {
        holds_secrets |= text
            .get(span.clone())
            .is_some_and(|raw| !raw.contains("${"));
        src.add_secret(span);
    }
    let dir = src.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut r = Reader::new(&src, Some(env));
    let top = r.fields(doc.get_ref(), doc.span(), "the configuration", TOP_KEYS);

    let storage = read_storage(&mut r, &top, &dir);
    let server = server::read_server(&mut r, &top);
    let margins = margins::read_margins(&mut r, top.get("margins"));
    let daemon_settings = daemon::read_daemon(&mut r, &top);
    let alerts = daemon::read_alerts(&mut r, &top, &dir);
    let telemetry = sinks::read_telemetry(&mut r, &top);
    let probes_dir = r
        .nonempty_string(&top, "probes_dir", false)
        .map(|s| dir.join(s.get_ref()))
        .unwrap_or_else(|| dir.join("probes"));

    let mut targets: Vec<Target> = Vec::new();
    let mut suite_refs: Vec<SuiteRef> = Vec::new();
    match top.get("target").map(|v| v.get_ref()) {
        None => r.error_help(
            0..0,
            "no targets: expected at least one [[target]] table",
            "add a [[target]] with name, provider, base_url, model and suites",
        ),
        Some(DeValue::Array(items)) if items.is_empty() => r.error_help(
            top.get("target").map(|v| v.span()).unwrap_or(0..0),
            "no targets: expected at least one [[target]] table",
            "add a [[target]] with name, provider, base_url, model and suites",
        ),
        Some(DeValue::Array(items)) if items.iter().all(|i| i.get_ref().is_table()) => {
            let mut names: Vec<(String, Location)> = Vec::new();
            for item in items.iter() {
                // Duplicates are found on the raw names, so that a broken first target still
                // counts.
                if let Some(name) = item.get_ref().as_table().and_then(|t| t.get("name"))
                    && let Some(s) = name.get_ref().as_str()
                {
                    let here = r.src.location(&item.span());
                    match names.iter().find(|(other, _)| other == s) {
                        Some((_, first)) => r.error_help(
                            name.span(),
                            format!("duplicate target name `{s}`: expected unique names"),
                            format!("first defined at {first}"),
                        ),
                        None => names.push((s.to_owned(), here)),
                    }
                }
                if let Some(t) = read_target(&mut r, item, &dir, &probes_dir, &mut suite_refs) {
                    targets.push(t);
                }
            }
        }
        Some(_) => {
            let v = top.get("target").map(|v| v.span()).unwrap_or(0..0);
            r.error_help(
                v,
                "wrong type for `target`: expected an array of tables",
                "write each target as a [[target]] table",
            );
        }
    }

    let diags = r.diags;
    let config = match (
        diags.is_empty(),
        storage,
        server,
        daemon_settings,
        alerts,
        telemetry,
    ) {
        (true, Some(storage), Some(server), Some(daemon), Some(alerts), Some(telemetry)) => {
            Some(Config {
                path: src.path.clone(),
                storage,
                server,
                probes_dir: probes_dir.clone(),
                targets,
                margins,
                daemon,
                alerts,
                telemetry,
            })
        }
        _ => None,
    };
    Parsed {
        config,
        suite_refs,
        probes_dir,
        diags,
        holds_secrets,
    }
}

/// Spans of `api_key` and header values, masked in snippets (even a value that only references
/// the environment may hold a secret prefix).
fn literal_secret_spans(doc: &toml::de::DeTable) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let literal = |v: &Spanned<DeValue>| match v.get_ref() {
        DeValue::String(_) => Some(v.span()),
        _ => None,
    };
    if let Some(DeValue::Table(server)) = doc.get("server").map(|v| v.get_ref()) {
        spans.extend(server.get("token").and_then(literal));
    }
    if let Some(DeValue::Table(alerts)) = doc.get("alerts").map(|v| v.get_ref()) {
        if let Some(DeValue::Table(w)) = alerts.get("webhook").map(|v| v.get_ref()) {
            spans.extend(w.get("secret").and_then(literal));
            // A Slack-style URL is itself the credential.
            spans.extend(
                w.get("url")
                    .filter(|u| matches!(u.get_ref(), DeValue::String(u) if secret_url(u)))
                    .and_then(literal),
            );
        }
        if let Some(DeValue::Table(sn)) = alerts.get("sentry").map(|v| v.get_ref()) {
            spans.extend(sn.get("dsn").and_then(literal));
        }
    }
    if let Some(DeValue::Table(tel)) = doc.get("telemetry").map(|v| v.get_ref())
        && let Some(DeValue::Table(o)) = tel.get("otlp").map(|v| v.get_ref())
        && let Some(DeValue::Table(h)) = o.get("headers").map(|v| v.get_ref())
    {
        spans.extend(h.iter().filter_map(|(_, v)| literal(v)));
    }
    let Some(DeValue::Array(targets)) = doc.get("target").map(|v| v.get_ref()) else {
        return spans;
    };
    for t in targets.iter() {
        let Some(t) = t.get_ref().as_table() else {
            continue;
        };
        spans.extend(t.get("api_key").and_then(literal));
        if let Some(DeValue::Table(h)) = t.get("headers").map(|v| v.get_ref()) {
            spans.extend(h.iter().filter_map(|(_, v)| literal(v)));
        }
    }
    spans
}

fn read_storage(r: &mut Reader, top: &Fields, dir: &Path) -> Option<Storage> {
    let mut storage = Storage {
        path: dir.join("modelwatch.db"),
        raw_text_retention: Duration::from_secs(7 * 86_400),
        sample_retention: Duration::from_secs(90 * 86_400),
    };
    let Some(v) = top.get("storage") else {
        return Some(storage);
    };
    let f = r.table_value(v, "[storage]", STORAGE_KEYS)?;
    if let Some(p) = r.nonempty_string(&f, "path", false) {
        storage.path = dir.join(p.get_ref());
    }
    if let Some(d) = duration(r, &f, "raw_text_retention") {
        storage.raw_text_retention = d;
    }
    if let Some(d) = duration(r, &f, "sample_retention") {
        storage.sample_retention = d;
    }
    Some(storage)
}

pub(crate) fn duration(r: &mut Reader, f: &Fields, key: &str) -> Option<Duration> {
    let s = r.string(f, key)?;
    match parse_duration(s.get_ref()) {
        Some(d) => Some(d),
        None => {
            r.error(
                s.span(),
                format!(
                    "invalid duration `{}` for `{key}`: {DURATION_EXPECTED}",
                    s.get_ref()
                ),
            );
            None
        }
    }
}

/// A duration that must be strictly positive.
pub(crate) fn positive_duration(r: &mut Reader, f: &Fields, key: &str) -> Option<Duration> {
    let d = duration(r, f, key)?;
    if d.is_zero() {
        let span = f.get(key).map(|v| v.span()).unwrap_or(0..0);
        r.error(span, format!("`{key}` in {} must be longer than 0", f.what));
        return None;
    }
    Some(d)
}

fn read_target(
    r: &mut Reader,
    item: &Spanned<DeValue>,
    dir: &Path,
    probes_dir: &Path,
    suite_refs: &mut Vec<SuiteRef>,
) -> Option<Target> {
    let DeValue::Table(table) = item.get_ref() else {
        return None;
    };
    let f = r.fields_hinted(table, item.span(), "[[target]]", TARGET_KEYS, &|key| {
        GEN_PARAM_KEYS
            .contains(&key)
            .then(|| format!("generation parameters belong in [target.params]; move `{key}` there"))
    });
    let errors_before = r.diags.len();
    let location = r.src.location(&item.span());

    let name = r.nonempty_string(&f, "name", true);
    if let Some(n) = &name
        && !n
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        r.error_help(
            n.span(),
            format!(
                "invalid target name `{}`: expected letters, digits, `-`, `_` or `.`",
                n.get_ref()
            ),
            "the name appears in metrics labels, alerts and file names",
        );
    }

    let provider = r
        .required_string(&f, "provider")
        .and_then(|p| match p.get_ref().as_str() {
            "ollama" => Some(Provider::Ollama),
            "openai" => Some(Provider::OpenAi),
            other => {
                r.error_help(
                p.span(),
                format!("unknown provider `{other}`: expected \"ollama\" or \"openai\""),
                "use \"openai\" for any OpenAI-compatible server (vLLM, llama.cpp, TGI, LM Studio)",
            );
                None
            }
        });

    let base_url = r
        .required_string(&f, "base_url")
        .and_then(|u| match check_url(u.get_ref()) {
            Ok(()) => Some(u.get_ref().trim_end_matches('/').to_owned()),
            Err(why) => {
                r.error_help(
                    u.span(),
                    format!("invalid `base_url` `{}`: {why}", u.get_ref()),
                    "e.g. \"http://127.0.0.1:11434\" or \"https://api.example.com\"",
                );
                None
            }
        });
    let model = r.nonempty_string(&f, "model", true);

    let api = match r.string(&f, "api") {
        None => Api::Chat,
        Some(a) => match a.get_ref().as_str() {
            "chat" => Api::Chat,
            "completion" => {
                if provider == Some(Provider::Ollama) {
                    r.error_help(
                        a.span(),
                        "api = \"completion\" needs provider = \"openai\": Ollama targets use the chat API",
                        "remove `api`, or use provider = \"openai\" with a server offering /v1/completions",
                    );
                }
                Api::Completion
            }
            other => {
                r.error(
                    a.span(),
                    format!("unknown api `{other}`: expected \"chat\" or \"completion\""),
                );
                Api::Chat
            }
        },
    };

    let api_key = read_api_key(r, &f, dir);
    let headers = read_headers(r, &f);
    let suites = read_suite_refs(r, &f, dir, probes_dir, suite_refs);

    let params = match f.get("params") {
        Some(v) => match r.table_value(v, "[target.params]", &GEN_PARAM_KEYS) {
            Some(pf) => read_gen_params(r, &pf),
            None => GenParams::default(),
        },
        None => GenParams::default(),
    };
    let samples = r.u32(&f, "samples", 0).and_then(|s| {
        if *s.get_ref() == 0 {
            r.error(s.span(), "`samples` in [[target]] must be at least 1");
            None
        } else {
            Some(*s.get_ref())
        }
    });

    let interval = duration(r, &f, "interval").unwrap_or(Duration::from_secs(600));
    if interval < MIN_INTERVAL
        && let Some(v) = f.get("interval")
    {
        r.error_help(
            v.span(),
            format!(
                "`interval` {} is too short: expected at least {}",
                format_duration(interval),
                format_duration(MIN_INTERVAL)
            ),
            "shorter intervals measure the server's load rather than the model",
        );
    }
    let baseline = r
        .nonempty_string(&f, "baseline", false)
        .map(|b| dir.join(b.get_ref()));
    let request_timeout =
        positive_duration(r, &f, "request_timeout").unwrap_or(Duration::from_secs(120));
    let connect_timeout =
        positive_duration(r, &f, "connect_timeout").unwrap_or(Duration::from_secs(5));
    let first_byte_timeout =
        positive_duration(r, &f, "first_byte_timeout").unwrap_or(request_timeout);
    let retries = r
        .uint(&f, "retries", 0, 10)
        .map(|v| *v.get_ref() as u32)
        .unwrap_or(2);
    let max_concurrency = r
        .uint(&f, "max_concurrency", 1, 1024)
        .map(|v| *v.get_ref() as u32)
        .unwrap_or(4);
    let stream = r.bool(&f, "stream").map(|v| *v.get_ref()).unwrap_or(true);
    let max_response_bytes = read_size(r, &f, "max_response_bytes").unwrap_or(4 << 20);
    let daemon = daemon::read_target_daemon(r, &f, interval);

    if r.diags.len() > errors_before {
        return None;
    }
    Some(Target {
        name: name?.into_inner(),
        provider: provider?,
        base_url: base_url?,
        model: model?.into_inner(),
        api,
        api_key: api_key?,
        headers: headers?,
        suites: suites?,
        params,
        samples,
        interval,
        baseline,
        request_timeout,
        connect_timeout,
        first_byte_timeout,
        retries,
        max_concurrency,
        stream,
        max_response_bytes,
        daemon: daemon?,
        location,
    })
}

/// `http` or `https`, a host, an optional numeric port, no whitespace.
fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("expected an http:// or https:// URL".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "scheme `{scheme}` is not supported: expected http or https"
        ));
    }
    if url.chars().any(char::is_whitespace) {
        return Err("URLs cannot contain whitespace".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err("unterminated IPv6 address: expected `]`".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("expected a host name after the scheme".into());
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(format!("port `{p}` is not a number from 0 to 65535"));
    }
    if rest.contains(['?', '#']) {
        return Err("expected a base URL without query or fragment".into());
    }
    Ok(())
}

fn read_size(r: &mut Reader, f: &Fields, key: &str) -> Option<u64> {
    let v = f.get(key)?;
    let n = match v.get_ref() {
        DeValue::Integer(_) => r.uint(f, key, 1, u64::MAX).map(|n| *n.get_ref()),
        DeValue::String(_) => {
            let s = r.string(f, key)?;
            match parse_size(s.get_ref()) {
                Some(n) => Some(n),
                None => {
                    r.error(
                        s.span(),
                        format!(
                            "invalid size `{}` for `{key}`: {SIZE_EXPECTED}",
                            s.get_ref()
                        ),
                    );
                    return None;
                }
            }
        }
        other => {
            r.error(
                v.span(),
                format!(
                    "wrong type for `{key}` in {}: expected a size (integer or string), found {}",
                    f.what,
                    fields::article(other)
                ),
            );
            return None;
        }
    }?;
    if n < 1024 {
        r.error(v.span(), format!("`{key}` must be at least 1KiB"));
        return None;
    }
    if n > MAX_RESPONSE_BYTES {
        r.error_help(
            v.span(),
            format!("`{key}` must be at most 64MiB"),
            "an answer larger than that is a fault to report, not to read: keep the default 4MiB",
        );
        return None;
    }
    Some(n)
}

/// `api_key` or `api_key_file`. `Some(None)`: no key; `None`: an error was reported.
fn read_api_key(r: &mut Reader, f: &Fields, dir: &Path) -> Option<Option<Secret>> {
    let key = r.string(f, "api_key");
    let file = r.nonempty_string(f, "api_key_file", false);
    if f.get("api_key").is_some() && key.is_none()
        || f.get("api_key_file").is_some() && file.is_none()
    {
        return None;
    }
    match (key, file) {
        (Some(_), Some(file)) => {
            r.error_help(
                file.span(),
                "both `api_key` and `api_key_file` are set: expected at most one",
                "keep `api_key_file` (the key stays out of the config) and remove `api_key`",
            );
            None
        }
        (Some(k), None) => {
            if k.get_ref().trim().is_empty() {
                r.error_help(
                    k.span(),
                    "`api_key` is empty: expected a key",
                    "remove `api_key` for servers without authentication",
                );
                return None;
            }
            if let Some(why) = header_problem(k.get_ref()) {
                r.error(
                    k.span(),
                    format!("`api_key` cannot be sent as an HTTP header: {why}"),
                );
                return None;
            }
            Some(Some(Secret::new(k.into_inner())))
        }
        (None, Some(file)) => {
            let path = resolve_credential(file.get_ref(), dir, r);
            match files::read_text_limited(&path, files::MAX_CREDENTIAL_BYTES) {
                Ok(s) if !s.trim().is_empty() => {
                    let key = s.trim_end_matches(['\n', '\r']);
                    if let Some(why) = header_problem(key) {
                        r.error_help(
                            file.span(),
                            format!(
                                "api_key_file `{}` cannot be sent as an HTTP header: {why}",
                                path.display()
                            ),
                            "the file should hold the key alone, on one line",
                        );
                        return None;
                    }
                    Some(Some(Secret::new(key)))
                }
                Ok(_) => {
                    r.error(
                        file.span(),
                        format!(
                            "api_key_file `{}` is empty: expected the key",
                            path.display()
                        ),
                    );
                    None
                }
                Err(e) => {
                    r.error_help(
                        file.span(),
                        format!("cannot read api_key_file `{}`: {e}", path.display()),
                        "relative paths are resolved against $CREDENTIALS_DIRECTORY when set, else the configuration file's directory",
                    );
                    None
                }
            }
        }
        (None, None) => Some(None),
    }
}

/// A relative credential path: under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`) when
/// that is set, else under the configuration directory.
fn resolve_credential(file: &str, dir: &Path, r: &Reader) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match r.env("CREDENTIALS_DIRECTORY") {
        Some(creds) if !creds.is_empty() => Path::new(&creds).join(p),
        _ => dir.join(p),
    }
}

fn read_headers(r: &mut Reader, f: &Fields) -> Option<Vec<(String, Secret)>> {
    let Some(v) = f.get("headers") else {
        return Some(Vec::new());
    };
    let DeValue::Table(t) = v.get_ref() else {
        r.error(
            v.span(),
            format!(
                "wrong type for `headers` in [[target]]: expected a table of strings, found {}",
                fields::article(v.get_ref())
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, val) in t.iter() {
        let name = k.get_ref().as_ref();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            r.error(
                k.span(),
                format!("invalid header name `{name}`: expected letters, digits and `-`"),
            );
            ok = false;
            continue;
        }
        let DeValue::String(s) = val.get_ref() else {
            r.error(
                val.span(),
                format!(
                    "wrong type for header `{name}`: expected a string, found {}",
                    fields::article(val.get_ref())
                ),
            );
            ok = false;
            continue;
        };
        match r.expand(s, val.span()) {
            Some(s) if header_problem(&s).is_some() => {
                let why = header_problem(&s).unwrap_or_default();
                r.error(
                    val.span(),
                    format!("header `{name}` cannot be sent as an HTTP header value: {why}; expected printable text"),
                );
                ok = false;
            }
            Some(s) => out.push((name.to_owned(), Secret::new(s))),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_suite_refs(
    r: &mut Reader,
    f: &Fields,
    dir: &Path,
    probes_dir: &Path,
    suite_refs: &mut Vec<SuiteRef>,
) -> Option<Vec<SuiteRef>> {
    let Some(list) = r.strings(f, "suites") else {
        if f.get("suites").is_none() {
            r.missing(f, "suites", "an array of suite names, e.g. [\"core\"]");
        }
        return None;
    };
    if list.is_empty() {
        let span = f.get("suites").map(|v| v.span()).unwrap_or(0..0);
        r.error(span, "`suites` is empty: expected at least one suite name");
        return None;
    }
    let mut out: Vec<SuiteRef> = Vec::new();
    let mut ok = true;
    for s in list {
        let reference = s.get_ref().clone();
        let path = if reference.ends_with(".toml") {
            dir.join(&reference)
        } else if !reference.is_empty()
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            probes_dir.join(format!("{reference}.toml"))
        } else {
            r.error_help(
                s.span(),
                format!("invalid suite reference `{reference}`: expected a suite name or a path ending in .toml"),
                format!("a name `x` means {}", probes_dir.join("x.toml").display()),
            );
            ok = false;
            continue;
        };
        if out.iter().any(|o| o.path == path) {
            r.error(
                s.span(),
                format!("suite `{reference}` is listed twice: expected each suite once"),
            );
            ok = false;
            continue;
        }
        let suite_ref = SuiteRef {
            reference,
            location: r.src.location(&s.span()),
            span: s.span(),
            path,
        };
        suite_refs.push(suite_ref.clone());
        out.push(suite_ref);
    }
    ok.then_some(out)
}

/// Suite names in the probes directory, sorted.
fn available_suites(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_str(text: &str, env: Env<'_>) -> Result<Config, Vec<Diagnostic>> {
        parse(Source::new("conf/modelwatch.toml", text), env)
    }

    const MINIMAL: &str = r#"
[[target]]
name = "t"
provider = "ollama"
base_url = "http://h:1"
model = "m"
suites = ["core", "x/y.toml"]
"#;

    fn holds_secrets(text: &str) -> bool {
        parse_partial(Source::new("c.toml", text), &no_env).holds_secrets
    }

    #[test]
    fn only_secrets_written_in_clear_count_as_held_by_the_file() {
        assert!(!holds_secrets(MINIMAL));
        let key = MINIMAL.replace("suites", "api_key = \"sk-1\"\nsuites");
        assert!(holds_secrets(&key));
        let from_env = MINIMAL.replace("suites", "api_key = \"${KEY}\"\nsuites");
        assert!(!holds_secrets(&from_env));
        let header = MINIMAL.replace("suites", "headers = { X-Token = \"t0k\" }\nsuites");
        assert!(holds_secrets(&header));
        let slack = format!(
            "[alerts.webhook]\nurl = \"https://hooks.slack.com/services/T0/B0/abcdef\"\n{MINIMAL}"
        );
        assert!(holds_secrets(&slack));
        let plain = format!("[alerts.webhook]\nurl = \"https://hooks.example.com/mw\"\n{MINIMAL}");
        assert!(!holds_secrets(&plain));
        let header_env = MINIMAL.replace("suites", "headers = { X-Token = \"${T}\" }\nsuites");
        assert!(!holds_secrets(&header_env));
    }

    #[test]
    fn exposure_warning_needs_secrets_and_group_or_other_bits() {
        let p = Path::new("/etc/modelwatch.toml");
        assert_eq!(exposure_warning(p, true, Some(0o100600)), None);
        assert_eq!(exposure_warning(p, true, Some(0o100400)), None);
        assert_eq!(exposure_warning(p, false, Some(0o100644)), None);
        assert_eq!(exposure_warning(p, true, None), None);
        let w = exposure_warning(p, true, Some(0o100640)).unwrap();
        assert!(w.contains("readable by group or others (mode 640)"), "{w}");
        assert!(w.contains("chmod 600 /etc/modelwatch.toml"), "{w}");
        assert!(exposure_warning(p, true, Some(0o100604)).is_some());
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse_str(MINIMAL, &no_env).unwrap();
        assert_eq!(c.storage.path, Path::new("conf/modelwatch.db"));
        assert_eq!(c.storage.raw_text_retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.storage.sample_retention, Duration::from_secs(90 * 86400));
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.probes_dir, Path::new("conf/probes"));
        let t = &c.targets[0];
        assert_eq!(t.api, Api::Chat);
        assert_eq!(t.interval, Duration::from_secs(600));
        assert_eq!(t.request_timeout, Duration::from_secs(120));
        assert_eq!(t.connect_timeout, Duration::from_secs(5));
        assert_eq!(t.first_byte_timeout, t.request_timeout);
        assert_eq!((t.retries, t.max_concurrency, t.stream), (2, 4, true));
        assert_eq!(t.max_response_bytes, 4 << 20);
        assert_eq!(t.samples, None);
        assert!(t.api_key.is_none() && t.headers.is_empty());
        let paths: Vec<&Path> = t.suites.iter().map(|s| s.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                Path::new("conf/probes/core.toml"),
                Path::new("conf/x/y.toml")
            ]
        );
        assert_eq!(t.location.line, 2);
    }

    #[test]
    fn margins_default_and_override_per_key() {
        let c = parse_str(MINIMAL, &no_env).unwrap();
        assert_eq!(c.margins, crate::drift::Margins::default());
        let text = format!(
            "{MINIMAL}\n[margins]\nrefusal_points = 0.05\nalpha = 0.01\nperformance_gates = true\nmax_length_flips = 3\n"
        );
        let c = parse_str(&text, &no_env).unwrap();
        assert_eq!(c.margins.refusal_points, 0.05);
        assert_eq!(c.margins.alpha, 0.01);
        assert!(c.margins.performance_gates);
        assert_eq!(c.margins.max_length_flips, 3);
        assert_eq!(
            c.margins.structured_points,
            crate::drift::Margins::default().structured_points
        );
    }

    #[test]
    fn a_sensitivity_preset_sets_the_margins_and_keys_override_it() {
        let text =
            format!("{MINIMAL}\n[margins]\nsensitivity = \"coarse\"\ntask_success_points = 0.04\n");
        let c = parse_str(&text, &no_env).unwrap();
        let mut coarse = crate::drift::Margins::default();
        Sensitivity::Coarse.apply(&mut coarse);
        assert_eq!(c.margins.structured_points, coarse.structured_points);
        assert_eq!(c.margins.task_success_points, 0.04);
        let text = format!("{MINIMAL}\n[margins]\nsensitivity = \"medium\"\n");
        let all = crate::diag::render_all(&parse_str(&text, &no_env).unwrap_err());
        assert!(
            all.contains("expected one of coarse, default, fine"),
            "{all}"
        );
    }

    #[test]
    fn bad_margins_are_located_errors() {
        let text = format!("{MINIMAL}\n[margins]\nrefusal_points = 2\nalpha = 1\nrefusal = 0.1\n");
        let diags = parse_str(&text, &no_env).unwrap_err();
        let all = crate::diag::render_all(&diags);
        assert_eq!(diags.len(), 3, "{all}");
        assert!(
            all.contains("`refusal_points` in [margins] must be a number from 0 to 1"),
            "{all}"
        );
        assert!(all.contains("2 percentage points is 0.02"), "{all}");
        assert!(
            all.contains("`alpha` in [margins] must be strictly between 0 and 1"),
            "{all}"
        );
        assert!(all.contains("unknown key `refusal` in [margins]"), "{all}");
        let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
        assert!(lines.contains(&10) && lines.contains(&11), "{all}");
    }

    #[test]
    fn first_byte_timeout_follows_request_timeout() {
        let text = MINIMAL.replace("suites", "request_timeout = \"30s\"\nsuites");
        let c = parse_str(&text, &no_env).unwrap();
        assert_eq!(c.targets[0].first_byte_timeout, Duration::from_secs(30));
    }

    #[test]
    fn env_is_expanded_in_string_values_only_after_parsing() {
        let env = |k: &str| (k == "HOST").then(|| "gpu1".to_owned());
        let text = MINIMAL
            .replace("http://h:1", "http://${HOST}:${PORT:-8080}/")
            .replace("\"m\"", "\"$${literal}\"");
        let c = parse_str(&text, &env).unwrap();
        assert_eq!(c.targets[0].base_url, "http://gpu1:8080");
        assert_eq!(c.targets[0].model, "${literal}");
    }

    #[test]
    fn api_key_file_prefers_credentials_directory() {
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("k"), "sk-from-creds\n").unwrap();
        let dir = creds.path().display().to_string();
        let env = move |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| dir.clone());
        let text = MINIMAL.replace("suites", "api_key_file = \"k\"\nsuites");
        let c = parse_str(&text, &env).unwrap();
        assert_eq!(
            c.targets[0].api_key.as_ref().unwrap().expose(),
            "sk-from-creds"
        );
        // Without the variable, the same relative path is read next to the config: missing.
        let errs = parse_str(&text, &no_env).unwrap_err();
        assert!(errs[0].message.contains("conf/k"), "{}", errs[0]);
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let text = MINIMAL.replace(
            "suites",
            "api_key = \"sk-canary-77\"\nheaders = { X-Token = \"tok-canary-88\" }\nsuites",
        );
        let c = parse_str(&text, &no_env).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert_eq!(c.targets[0].headers[0].1.expose(), "tok-canary-88");
    }

    #[test]
    fn every_error_is_collected() {
        let text = r#"
[storage]
sample_retention = "forever"
[[target]]
name = "a"
provider = "x"
base_url = "ftp://h"
model = "m"
suites = ["core"]
interval = "1s"
"#;
        let errs = parse_str(text, &no_env).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|d| d.line).collect();
        assert_eq!(errs.len(), 4, "{}", crate::diag::render_all(&errs));
        for line in [3, 6, 7, 10] {
            assert!(lines.contains(&line), "{lines:?}");
        }
    }

    #[test]
    fn target_overrides_apply_under_probe_settings() {
        let text = MINIMAL.replace(
            "suites",
            "samples = 7\nparams = { temperature = 0.1, seed = 3 }\nsuites",
        );
        let c = parse_str(&text, &no_env).unwrap();
        let t = &c.targets[0];
        let probe = GenParams {
            temperature: Some(0.9),
            ..GenParams::default()
        };
        let p = t.params_for(&probe);
        assert_eq!((p.temperature, p.seed), (Some(0.9), Some(3)));
        assert_eq!(t.samples_for(3), 7);
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:11434").is_ok());
        assert!(check_url("HTTPS://api.example.com/v1/").is_ok());
        assert!(check_url("http://[::1]:8000").is_ok());
        assert!(check_url("http://user@host").is_ok());
        assert!(check_url("ftp://h").is_err());
        assert!(check_url("h:80").is_err());
        assert!(check_url("http://").is_err());
        assert!(check_url("http://h:x").is_err());
        assert!(check_url("http://h/a?b=1").is_err());
        assert!(check_url("http://h /").is_err());
    }
}
