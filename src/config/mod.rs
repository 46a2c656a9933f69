//! The configuration file (`modelwatch.toml`): storage, HTTP server, probe directory and the
//! targets to watch.
//!
//! Loading collects every error of the file (syntax, unknown keys, types, values, cross-field
//! rules) as [`Diagnostic`]s pointing at the offending value; [`load_with_suites`] also loads
//! every referenced suite and checks what needs both. The format is documented in
//! `docs/configuration.md`.

mod daemon;
pub mod duration;
mod judge;
pub use crate::diag::env;
use crate::files;
use target::{available_suites, read_target};
mod margins;
pub mod policy;
pub use margins::Sensitivity;
mod secret;
pub mod server;
pub mod sinks;
mod target;
mod tls;
pub mod traffic;
mod values;

pub use crate::provider::tls::TlsRoots;
pub use daemon::{Alerts, DaemonSettings, MaintenanceWindow, Pin, TargetDaemon};
pub use env::{Env, process_env};
pub use judge::JudgeSettings;
pub use policy::{Policy, Tier, Triage};
pub use secret::Secret;
pub use server::Server;
pub use sinks::{Otlp, Sentry, Telemetry, Webhook, WebhookFormat};
pub use tls::CaFile;
pub use traffic::TrafficSettings;

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
    /// `[policy]`: allowed licenses and the review period of approvals.
    pub policy: Policy,
    /// `[traffic]`: production completions received by the daemon (`None`: off).
    pub traffic: Option<TrafficSettings>,
    /// `[judge]`: a model `explain --judge` asks about ambiguous refusals (`None`: none).
    pub judge: Option<JudgeSettings>,
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
    /// Where the served model's license evidence can be read on this host (`model_file`,
    /// `model_dir`).
    pub license_files: crate::provider::license::LicenseFiles,
    /// Extra trusted root certificates (`ca_file`), for a server behind an internal CA.
    pub ca_file: Option<CaFile>,
    /// The root set the server's certificate is checked against (`tls_roots`).
    pub tls_roots: TlsRoots,
    /// Where the `[[target]]` table starts.
    pub location: Location,
}

impl Target {
    /// What the target's client trusts.
    pub fn trust(&self) -> crate::provider::tls::Trust {
        CaFile::trust(self.tls_roots, self.ca_file.as_ref())
    }

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
    "policy",
    "traffic",
    "judge",
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
    "behaviour_check",
    "model_file",
    "model_dir",
    "ca_file",
    "tls_roots",
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
    let policy = policy::read_policy(&mut r, &top);
    // `None` reported an error, so no configuration is built below.
    let traffic = traffic::read_traffic(&mut r, &top, &dir).flatten();
    let judge = judge::read_judge(
        &mut r,
        &top,
        &dir,
        storage.as_ref().map(|s| s.path.as_path()),
    )
    .flatten();
    let probes_dir = r
        .nonempty_string(&top, "probes_dir", false)
        .map(|s| dir.join(s.get_ref()))
        .unwrap_or_else(|| dir.join("probes"));

    let mut suite_refs: Vec<SuiteRef> = Vec::new();
    let targets = read_targets(&mut r, &top, &dir, &probes_dir, &mut suite_refs);

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
                policy,
                traffic,
                judge,
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

/// The `[[target]]` tables (the broken ones reported and left out), collecting every suite
/// reference into `suite_refs`, also of broken targets.
fn read_targets(
    r: &mut Reader,
    top: &Fields,
    dir: &Path,
    probes_dir: &Path,
    suite_refs: &mut Vec<SuiteRef>,
) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
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
                if let Some(t) = read_target(r, item, dir, probes_dir, suite_refs) {
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
    targets
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
    spans.extend(traffic::literal_token_span(doc));
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
    if let Some(DeValue::Table(j)) = doc.get("judge").map(|v| v.get_ref()) {
        spans.extend(j.get("api_key").and_then(literal));
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

#[cfg(test)]
mod tests;
