//! Where alerts and telemetry go: `[alerts.webhook]`, `[alerts.sentry]` and `[telemetry.otlp]`.
//!
//! Secrets (the webhook's signing secret, the Sentry DSN, OTLP header values) are [`Secret`]s:
//! never printed, masked in error snippets. Documented in `docs/alerting.md`.

use super::tls::{CaFile, read_ca_file, read_tls_roots};
use super::{Secret, positive_duration};
use crate::diag::fields::{Fields, Reader};
use crate::provider::tls::{TlsRoots, Trust};
use std::path::Path;
use std::time::Duration;
use toml::de::DeValue;

pub(super) const WEBHOOK_KEYS: &[&str] = &["url", "secret", "format", "ca_file", "tls_roots"];
pub(super) const SENTRY_KEYS: &[&str] = &[
    "dsn",
    "dsn_file",
    "environment",
    "release",
    "monitor",
    "ca_file",
    "tls_roots",
];
pub(super) const TELEMETRY_KEYS: &[&str] = &["otlp"];
pub(super) const OTLP_KEYS: &[&str] = &["endpoint", "headers", "timeout"];

/// Body format of the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// The documented modelwatch JSON payload.
    #[default]
    Json,
    /// `{"text": "…"}`, accepted by Slack incoming webhooks and compatible services.
    Slack,
}

/// `[alerts.webhook]`: a JSON POST per notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    /// Signs each request with HMAC-SHA256: the Standard Webhooks headers (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`) and, deprecated, `X-Modelwatch-Signature`.
    pub secret: Option<Secret>,
    pub format: WebhookFormat,
    /// Extra trusted root certificates (`ca_file`), for a receiver behind an internal CA.
    pub ca_file: Option<CaFile>,
    /// The root set the receiver's certificate is checked against (`tls_roots`).
    pub tls_roots: TlsRoots,
}

/// Prefix of a Standard Webhooks secret: the rest is the key, base64-encoded.
pub const WHSEC_PREFIX: &str = "whsec_";

impl Webhook {
    /// What the webhook's client trusts.
    pub fn trust(&self) -> Trust {
        CaFile::trust(self.tls_roots, self.ca_file.as_ref())
    }

    /// The HMAC key of the `webhook-signature` header: a `whsec_<base64>` secret is decoded as
    /// the Standard Webhooks libraries do; any other secret is used as its UTF-8 bytes.
    pub fn signing_key(secret: &Secret) -> Result<Vec<u8>, String> {
        use base64::Engine;
        match secret.expose().strip_prefix(WHSEC_PREFIX) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                // The decoder's message would quote a byte of the secret: say only what is wrong.
                .map_err(|_| {
                    format!(
                        "the part after `{WHSEC_PREFIX}` is not base64 (standard alphabet, padded)"
                    )
                })
                .and_then(|k| {
                    if k.len() < 16 {
                        Err(format!(
                            "the key after `{WHSEC_PREFIX}` is {} bytes: expected at least 16",
                            k.len()
                        ))
                    } else {
                        Ok(k)
                    }
                }),
            None => Ok(secret.expose().as_bytes().to_vec()),
        }
    }
}

/// `[alerts.sentry]`: an event per alert transition and a cron check-in per round.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentry {
    /// `{scheme}://{public_key}@{host}/{project_id}`.
    pub dsn: Secret,
    pub environment: String,
    pub release: String,
    /// Monitor slug of the per-round check-ins (default `modelwatch-rounds`).
    pub monitor: String,
    /// Extra trusted root certificates (`ca_file`), for a self-hosted Sentry behind an
    /// internal CA.
    pub ca_file: Option<CaFile>,
    /// The root set Sentry's certificate is checked against (`tls_roots`).
    pub tls_roots: TlsRoots,
}

impl Sentry {
    /// What the Sentry client trusts.
    pub fn trust(&self) -> Trust {
        CaFile::trust(self.tls_roots, self.ca_file.as_ref())
    }
}

/// `[telemetry.otlp]`: OTLP/HTTP protobuf export of metrics and traces.
#[derive(Debug, Clone, PartialEq)]
pub struct Otlp {
    /// Base URL; `/v1/metrics` and `/v1/traces` are appended.
    pub endpoint: String,
    pub headers: Vec<(String, Secret)>,
    /// The headers of trace exports: `headers` with `$OTEL_EXPORTER_OTLP_TRACES_HEADERS` over
    /// the environment's general ones (the table's keys still win).
    pub traces_headers: Vec<(String, Secret)>,
    /// The same for metrics (`$OTEL_EXPORTER_OTLP_METRICS_HEADERS`).
    pub metrics_headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Full URL for traces (`$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), used as is.
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics (`$OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`), used as is.
    pub metrics_endpoint: Option<String>,
}

impl Otlp {
    /// Where traces go: the signal's own URL, else `{endpoint}/v1/traces`.
    pub fn traces_url(&self) -> String {
        self.traces_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/v1/traces", self.endpoint.trim_end_matches('/')))
    }

    /// Where metrics go: the signal's own URL, else `{endpoint}/v1/metrics`.
    pub fn metrics_url(&self) -> String {
        self.metrics_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/v1/metrics", self.endpoint.trim_end_matches('/')))
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry {
    pub otlp: Option<Otlp>,
}

fn http_url(
    r: &mut Reader,
    f: &Fields,
    key: &str,
    required: bool,
    example: &str,
) -> Option<String> {
    let s = r.nonempty_string(f, key, required)?;
    let v = s.get_ref().trim().to_string();
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        r.error_help(
            s.span(),
            format!("`{key}` in {} is not an http(s) URL", f.what),
            format!("e.g. \"{example}\""),
        );
        return None;
    }
    Some(v)
}

/// `[alerts.webhook]`; `Some(None)` when absent, `None` after an error.
pub(super) fn read_webhook(
    r: &mut Reader,
    v: &toml::Spanned<DeValue<'_>>,
    dir: &Path,
) -> Option<Webhook> {
    let f = r.table_value(v, "[alerts.webhook]", WEBHOOK_KEYS)?;
    let ca_file = read_ca_file(r, &f, dir);
    let tls_roots = read_tls_roots(r, &f);
    let url = http_url(r, &f, "url", true, "https://hooks.example.com/modelwatch");
    let secret = match r.string(&f, "secret") {
        Some(s) if s.get_ref().len() < 16 => {
            r.error_help(
                s.span(),
                "`secret` in [alerts.webhook] is too short: expected at least 16 characters",
                "generate one with `openssl rand -hex 32` and pass it as \"${MODELWATCH_WEBHOOK_SECRET}\"",
            );
            None
        }
        Some(s) => {
            let secret = Secret::new(s.get_ref().as_str());
            match Webhook::signing_key(&secret) {
                Ok(_) => Some(Some(secret)),
                Err(e) => {
                    r.error_help(
                        s.span(),
                        format!("`secret` in [alerts.webhook] is not a valid signing secret: {e}"),
                        "a `whsec_` secret is `whsec_` + base64 of at least 16 random bytes, e.g. \
                         `echo whsec_$(openssl rand -base64 32)`; any other secret is used as it is",
                    );
                    None
                }
            }
        }
        None if f.get("secret").is_some() => None,
        None => Some(None),
    };
    let format = match r.string(&f, "format") {
        None if f.get("format").is_some() => None,
        None => Some(WebhookFormat::Json),
        Some(s) => match s.get_ref().as_str() {
            "json" => Some(WebhookFormat::Json),
            "slack" => Some(WebhookFormat::Slack),
            other => {
                r.error_help(
                    s.span(),
                    format!("unknown webhook `format` `{other}`"),
                    "expected \"json\" or \"slack\"",
                );
                None
            }
        },
    };
    Some(Webhook {
        url: url?,
        secret: secret?,
        format: format?,
        ca_file: ca_file?,
        tls_roots: tls_roots?,
    })
}

/// `[alerts.sentry]`: the DSN from `dsn`, `dsn_file` (a credential file), or `$SENTRY_DSN`.
pub(super) fn read_sentry(
    r: &mut Reader,
    v: &toml::Spanned<DeValue<'_>>,
    dir: &Path,
) -> Option<Sentry> {
    let f = r.table_value(v, "[alerts.sentry]", SENTRY_KEYS)?;
    let dsn = match (
        r.string(&f, "dsn"),
        r.nonempty_string(&f, "dsn_file", false),
    ) {
        (Some(d), None) => Some(d),
        (None, Some(file)) => {
            let path = super::target::resolve_credential(file.get_ref(), dir, r);
            match crate::files::read_text_limited(&path, crate::files::MAX_CREDENTIAL_BYTES) {
                Ok(s) => Some(toml::Spanned::new(file.span(), s.trim().to_string())),
                Err(e) => {
                    r.error_help(
                        file.span(),
                        format!("cannot read dsn_file `{}`: {e}", path.display()),
                        "relative paths are resolved against $CREDENTIALS_DIRECTORY when set, else the configuration file's directory",
                    );
                    return None;
                }
            }
        }
        (Some(_), Some(file)) => {
            r.error_help(
                file.span(),
                "both `dsn` and `dsn_file` are set in [alerts.sentry]: expected at most one",
                "keep `dsn_file` (the DSN stays out of the config)",
            );
            return None;
        }
        (None, None) => match r.env("SENTRY_DSN").filter(|s| !s.trim().is_empty()) {
            Some(d) => Some(toml::Spanned::new(f.span.clone(), d.trim().to_string())),
            None => {
                r.error_help(
                    f.span.clone(),
                    "[alerts.sentry] has no DSN",
                    "set `dsn`, `dsn_file`, or the SENTRY_DSN environment variable",
                );
                return None;
            }
        },
    }?;
    if let Err(e) = Dsn::parse(dsn.get_ref()) {
        r.error(
            dsn.span(),
            format!("invalid Sentry DSN in [alerts.sentry]: {e}"),
        );
        return None;
    }
    let environment = r
        .nonempty_string(&f, "environment", false)
        .map(|s| s.into_inner())
        .or_else(|| r.env("SENTRY_ENVIRONMENT").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "production".into());
    let release = r
        .nonempty_string(&f, "release", false)
        .map(|s| s.into_inner())
        .or_else(|| r.env("SENTRY_RELEASE").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| format!("modelwatch@{}", env!("CARGO_PKG_VERSION")));
    let monitor = r
        .nonempty_string(&f, "monitor", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "modelwatch-rounds".into());
    let ca_file = read_ca_file(r, &f, dir)?;
    let tls_roots = read_tls_roots(r, &f)?;
    Some(Sentry {
        dsn: Secret::new(dsn.into_inner()),
        environment,
        release,
        monitor,
        ca_file,
        tls_roots,
    })
}

/// `[telemetry]`; the OTLP exporter is on when `[telemetry.otlp]` is present or
/// `$OTEL_EXPORTER_OTLP_ENDPOINT` (or a signal's own endpoint variable) is set; the table's
/// keys win over the environment. `OTEL_SDK_DISABLED=true` turns it off.
pub(super) fn read_telemetry(r: &mut Reader, top: &Fields) -> Option<Telemetry> {
    let nonempty = |r: &Reader, k: &str| {
        r.env(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let env_endpoint = nonempty(r, "OTEL_EXPORTER_OTLP_ENDPOINT");
    let traces_endpoint = nonempty(r, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let metrics_endpoint = nonempty(r, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    // Milliseconds, per the specification; unparsable values are ignored.
    let env_timeout = nonempty(r, "OTEL_EXPORTER_OTLP_TIMEOUT")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    let disabled = nonempty(r, "OTEL_SDK_DISABLED").is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let env_headers = |r: &Reader, k: &str| parse_otel_headers(&r.env(k).unwrap_or_default());
    let mut headers = env_headers(r, "OTEL_EXPORTER_OTLP_HEADERS");
    let traces_env = merge_headers(
        &headers,
        &env_headers(r, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
    );
    let metrics_env = merge_headers(
        &headers,
        &env_headers(r, "OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
    );
    let mut table: Vec<(String, Secret)> = Vec::new();
    let default_endpoint = || "http://127.0.0.1:4318".to_string();
    let Some(v) = top.get("telemetry") else {
        let on = env_endpoint.is_some() || traces_endpoint.is_some() || metrics_endpoint.is_some();
        return Some(Telemetry {
            otlp: (on && !disabled).then(|| Otlp {
                endpoint: env_endpoint.unwrap_or_else(default_endpoint),
                headers,
                traces_headers: traces_env,
                metrics_headers: metrics_env,
                timeout: env_timeout.unwrap_or(Duration::from_secs(10)),
                traces_endpoint,
                metrics_endpoint,
            }),
        });
    };
    let f = r.table_value(v, "[telemetry]", TELEMETRY_KEYS)?;
    let Some(ov) = f.get("otlp") else {
        return Some(Telemetry::default());
    };
    if disabled {
        return Some(Telemetry::default());
    }
    let o = r.table_value(ov, "[telemetry.otlp]", OTLP_KEYS)?;
    let endpoint = match o.get("endpoint") {
        Some(_) => http_url(r, &o, "endpoint", true, "http://127.0.0.1:4318"),
        None => Some(env_endpoint.unwrap_or_else(default_endpoint)),
    };
    if let Some(h) = o.get("headers") {
        let DeValue::Table(t) = h.get_ref() else {
            r.error(
                h.span(),
                "wrong type for `headers` in [telemetry.otlp]: expected a table of strings",
            );
            return None;
        };
        for (k, val) in t.iter() {
            let DeValue::String(s) = val.get_ref() else {
                r.error(
                    val.span(),
                    format!(
                        "header `{}` in [telemetry.otlp] must be a string",
                        k.get_ref()
                    ),
                );
                return None;
            };
            let s = r.expand(s, val.span())?;
            table.push((k.get_ref().to_string(), Secret::new(s)));
        }
    }
    let timeout = if o.get("timeout").is_some() {
        positive_duration(r, &o, "timeout")?
    } else {
        env_timeout.unwrap_or(Duration::from_secs(10))
    };
    headers = merge_headers(&headers, &table);
    Some(Telemetry {
        otlp: Some(Otlp {
            endpoint: endpoint?,
            headers,
            traces_headers: merge_headers(&traces_env, &table),
            metrics_headers: merge_headers(&metrics_env, &table),
            timeout,
            traces_endpoint,
            metrics_endpoint,
        }),
    })
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `key1=value1,key2=value2`, values percent-decoded (W3C
/// Baggage encoding, as the OpenTelemetry SDKs read it); malformed pairs are skipped.
pub fn parse_otel_headers(s: &str) -> Vec<(String, Secret)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), Secret::new(percent_decode(v.trim()))))
        })
        .collect()
}

/// `base` with every header of `over` replacing the one of the same name (case-insensitive).
fn merge_headers(base: &[(String, Secret)], over: &[(String, Secret)]) -> Vec<(String, Secret)> {
    let mut out: Vec<(String, Secret)> = base
        .iter()
        .filter(|(k, _)| !over.iter().any(|(o, _)| o.eq_ignore_ascii_case(k)))
        .cloned()
        .collect();
    out.extend(over.iter().cloned());
    out
}

/// Decodes every `%XX` escape (UTF-8 bytes); a `%` not followed by two hex digits is kept as
/// written, and bytes that do not form UTF-8 are replaced (U+FFFD) rather than refused.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed DSN: `{scheme}://{public_key}@{host}/{path/}{project_id}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    pub scheme: String,
    pub public_key: String,
    /// Host with an optional port.
    pub host: String,
    /// Path prefix before the project id (usually empty).
    pub path: String,
    pub project_id: String,
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dsn({}://[redacted]@{}/{})",
            self.scheme, self.host, self.project_id
        )
    }
}

impl Dsn {
    /// Parses a DSN; errors name the part that is wrong, never the key.
    pub fn parse(s: &str) -> Result<Dsn, String> {
        let s = s.trim();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or("expected {scheme}://{public_key}@{host}/{project_id}")?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme `{scheme}` is not http or https"));
        }
        let (auth, rest) = rest.split_once('@').ok_or("no public key before `@`")?;
        let public_key = auth.split(':').next().unwrap_or("");
        if public_key.is_empty() {
            return Err("empty public key".into());
        }
        let (host, path) = rest.split_once('/').ok_or("no project id after the host")?;
        if host.is_empty() {
            return Err("empty host".into());
        }
        let path = path.trim_end_matches('/');
        let (prefix, project) = match path.rsplit_once('/') {
            Some((p, id)) => (format!("/{p}"), id),
            None => (String::new(), path),
        };
        if project.is_empty() || !project.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("project id `{project}` is not alphanumeric"));
        }
        Ok(Dsn {
            scheme: scheme.into(),
            public_key: public_key.into(),
            host: host.into(),
            path: prefix,
            project_id: project.into(),
        })
    }

    /// `{scheme}://{host}{path}/api/{project}/envelope/`.
    pub fn envelope_url(&self) -> String {
        format!(
            "{}://{}{}/api/{}/envelope/",
            self.scheme, self.host, self.path, self.project_id
        )
    }

    /// The `X-Sentry-Auth` header.
    pub fn auth_header(&self) -> String {
        format!(
            "Sentry sentry_version=7, sentry_client=modelwatch/{}, sentry_key={}",
            env!("CARGO_PKG_VERSION"),
            self.public_key
        )
    }
}
