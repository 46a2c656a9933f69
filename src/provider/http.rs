//! The HTTP transport both clients share: one pooled `reqwest::Client` per target, per-attempt
//! connect / first-byte / total timeouts, bounded retries with full-jitter exponential backoff,
//! a size cap enforced while streaming the body, cancellation, and the classification of every
//! failure into a [`SampleError`] whose message never contains a secret.
//!
//! Redirects are not followed: a 3xx is reported as `http_status`. Following them would carry
//! the configured headers (which may hold secrets reqwest does not know about) to whatever host
//! the server names; a monitor should be pointed at the final address instead.
//! Compression is not negotiated (no `Accept-Encoding`), so a compressed body is never inflated.

use super::redact::Redactor;
use super::{ClientConfig, ProviderError};
use crate::rng::Rng;
use crate::sample::{CONNECT_TIMED_OUT, COULD_NOT_CONNECT, ErrorKind, SampleError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The one way to build an outbound HTTP client (model servers, webhook, Sentry, OTLP): every
/// client starts here so none can follow a redirect. A 3xx would carry the request's headers
/// and body (API keys, signatures, Sentry keys, OTLP tokens) to whatever host the answer names,
/// so a redirect is an answer like any other and the caller reports it. It trusts the bundled
/// web roots alone; [`super::tls::Trust::apply`] changes that for a configured client.
pub fn outbound_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_webpki_certs(true)
        .tls_built_in_native_certs(false)
        .user_agent(concat!("modelwatch/", env!("CARGO_PKG_VERSION")))
}

/// How many bytes of an error response are read to explain the failure.
const ERROR_SNIPPET_BYTES: usize = 2048;
/// How many characters of a server's explanation go into an error message.
const ERROR_SNIPPET_CHARS: usize = 300;

/// The receiving side of a cancellation: clone it into every client that should stop together.
#[derive(Debug, Clone)]
pub struct CancelSignal(watch::Receiver<bool>);

/// The sending side: [`CancelTrigger::cancel`] ends every request watching the paired signal.
#[derive(Debug)]
pub struct CancelTrigger(watch::Sender<bool>);

impl CancelSignal {
    /// A new trigger and the signal it controls.
    pub fn pair() -> (CancelTrigger, CancelSignal) {
        let (tx, rx) = watch::channel(false);
        (CancelTrigger(tx), CancelSignal(rx))
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once cancelled; never resolves if the trigger is dropped without cancelling.
    async fn wait(&self) {
        let mut rx = self.0.clone();
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl CancelTrigger {
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

async fn cancelled(signal: Option<&CancelSignal>) {
    match signal {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}

/// A failure before it gets its attempt count and latency.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
    status: Option<u16>,
    message: String,
    retryable: bool,
    /// Server-requested delay (`Retry-After` seconds).
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            status: None,
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

/// The shared transport of one target.
pub(crate) struct Transport {
    client: reqwest::Client,
    /// Base URL whose path ends with `/`; endpoint paths are joined onto it.
    root: Url,
    /// `host:port` for messages (never the full URL: it may carry credentials).
    authority: String,
    first_byte_timeout: Duration,
    total_timeout: Duration,
    retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    max_response_bytes: usize,
    retry_seed: u64,
    requests: AtomicU64,
    redactor: Redactor,
    cancel: Option<CancelSignal>,
}

/// Names the server and the limits, never the credentials.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("authority", &self.authority)
            .field("path", &self.root.path())
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("retries", &self.retries)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// A URL for display: any password replaced by `[redacted]`, unparsable text withheld.
pub(crate) fn display_url(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("[redacted]"));
            }
            u.to_string()
        }
        Err(_) => "[not a URL]".to_string(),
    }
}

/// Parses and checks a base URL: http(s) only, path normalised to end with `/`.
pub(crate) fn parse_base_url(base_url: &str) -> Result<Url, ProviderError> {
    let mut url = Url::parse(base_url.trim()).map_err(|e| ProviderError::BaseUrl {
        reason: e.to_string(),
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ProviderError::BaseUrl {
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    if url.host_str().is_none() {
        return Err(ProviderError::BaseUrl {
            reason: "no host".into(),
        });
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

impl Transport {
    /// Builds the transport for `cfg`, sending requests relative to `root` (see
    /// [`parse_base_url`]; clients may adjust the path first).
    pub(crate) fn new(cfg: &ClientConfig, root: Url) -> Result<Self, ProviderError> {
        for (field, d) in [
            ("connect_timeout", cfg.connect_timeout),
            ("first_byte_timeout", cfg.first_byte_timeout),
            ("total_timeout", cfg.total_timeout),
        ] {
            if d.is_zero() {
                return Err(ProviderError::Zero { field });
            }
        }
        if cfg.max_response_bytes == 0 {
            return Err(ProviderError::Zero {
                field: "max_response_bytes",
            });
        }
        if cfg.model.trim().is_empty() {
            return Err(ProviderError::EmptyModel);
        }

        let mut headers = HeaderMap::new();
        if let Some(key) = &cfg.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .map_err(|_| ProviderError::ApiKey)?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        for (name, value) in &cfg.headers {
            let n = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                ProviderError::Header {
                    name: name.clone(),
                    reason: "not a valid header name".into(),
                }
            })?;
            let mut v = HeaderValue::from_str(value).map_err(|_| ProviderError::Header {
                name: name.clone(),
                reason: "the value contains characters not allowed in a header".into(),
            })?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }

        let client = cfg
            .tls
            .apply(outbound_client())
            .map_err(ProviderError::Tls)?
            .connect_timeout(cfg.connect_timeout)
            // Connections idle between rounds are closed instead of held for the default
            // 90 s: the pool (at most the target's concurrency) shrinks back while idle.
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .map_err(|e| ProviderError::Http(e.without_url().to_string()))?;

        let host = root.host_str().unwrap_or_default();
        let authority = match root.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let redactor = Redactor::for_config(cfg);

        Ok(Transport {
            client,
            root,
            authority,
            first_byte_timeout: cfg.first_byte_timeout,
            total_timeout: cfg.total_timeout,
            retries: cfg.retries,
            backoff_base: cfg.backoff_base,
            backoff_max: cfg.backoff_max,
            max_response_bytes: cfg.max_response_bytes,
            retry_seed: cfg.retry_seed,
            requests: AtomicU64::new(0),
            redactor,
            cancel: cfg.cancel.clone(),
        })
    }

    fn sample_error(&self, f: Failure, attempts: u32, started: Instant) -> SampleError {
        SampleError {
            kind: f.kind,
            status: f.status,
            message: self.redactor.apply(&f.message),
            attempts,
            latency_ms: ms(started.elapsed()),
        }
    }

    /// Sends a request (JSON body when given), retrying what is worth retrying, and returns the
    /// successful response with its body still unread.
    pub(crate) async fn open(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Body<'_>, SampleError> {
        self.send(method, path, body, true).await
    }

    /// [`Transport::open`] for the first contact of a round (the fingerprint): a server that
    /// cannot be reached at all is not tried again, so a dead server costs one connection
    /// attempt per round; the round's circuit breaker fails the rest without the network.
    pub(crate) async fn open_first(
        &self,
        method: Method,
        path: &str,
    ) -> Result<Body<'_>, SampleError> {
        self.send(method, path, None, false).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        retry_unreachable: bool,
    ) -> Result<Body<'_>, SampleError> {
        let started = Instant::now();
        let url = match self.root.join(path) {
            Ok(u) => u,
            Err(e) => {
                let f = Failure::new(
                    ErrorKind::Connect,
                    format!("{method} {path}: bad path: {e}"),
                );
                return Err(self.sample_error(f, 1, started));
            }
        };
        let what = format!("{method} {} on {}", url.path(), self.authority);
        let payload = match body.map(serde_json::to_vec).transpose() {
            Ok(p) => p,
            Err(e) => {
                let f = Failure::new(
                    ErrorKind::MalformedBody,
                    format!("{what}: request not serialisable: {e}"),
                );
                return Err(self.sample_error(f, 1, started));
            }
        };
        let request_no = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng::from_parts(&[self.retry_seed, request_no]);
        let max_attempts = self.retries.saturating_add(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let attempt_start = Instant::now();
            let deadline = attempt_start + self.total_timeout;
            let header_deadline = deadline.min(attempt_start + self.first_byte_timeout);
            let mut req = self.client.request(method.clone(), url.clone());
            if let Some(tp) = super::trace::traceparent() {
                req = req.header("traceparent", tp);
            }
            if let Some(p) = &payload {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(p.clone());
            }
            let outcome = tokio::select! {
                biased;
                _ = cancelled(self.cancel.as_ref()) => {
                    let f = Failure::new(ErrorKind::Cancelled, format!("{what}: cancelled"));
                    return Err(self.sample_error(f, attempt, started));
                }
                r = tokio::time::timeout_at(header_deadline, req.send()) => r,
            };
            let failure = match outcome {
                Err(_) => Failure {
                    retryable: true,
                    ..Failure::new(
                        ErrorKind::Timeout,
                        format!(
                            "{what}: no response headers within {} (first_byte_timeout / \
                             total_timeout); check the server's load or raise the timeout",
                            secs(header_deadline - attempt_start)
                        ),
                    )
                },
                Ok(Err(e)) => classify_send_error(&what, e),
                Ok(Ok(resp)) if resp.status().is_success() => {
                    let declared = resp.content_length();
                    let timing = (started, attempt_start, deadline);
                    let body = Body::new(self, resp, timing, attempt, what);
                    if let Some(len) = declared
                        && len > self.max_response_bytes as u64
                    {
                        return Err(body.error(
                            ErrorKind::TooLarge,
                            format!(
                                "declared body of {len} bytes exceeds max_response_bytes ({})",
                                self.max_response_bytes
                            ),
                        ));
                    }
                    return Ok(body);
                }
                Ok(Ok(resp)) => self.status_failure(&what, resp, deadline).await,
            };
            let unreachable = failure.message.contains(COULD_NOT_CONNECT)
                || failure.message.contains(CONNECT_TIMED_OUT);
            if failure.retryable && attempt < max_attempts && (retry_unreachable || !unreachable) {
                self.wait_to_retry(&what, &failure, attempt, started, &mut rng)
                    .await?;
                continue;
            }
            let mut f = failure;
            if attempt > 1 {
                f.message = format!("{} (after {attempt} attempts)", f.message);
            }
            return Err(self.sample_error(f, attempt, started));
        }
    }

    /// Waits before retry `attempt + 1` (the server's `Retry-After`, else full jitter), or ends
    /// the request as cancelled when the round is cancelled meanwhile.
    async fn wait_to_retry(
        &self,
        what: &str,
        failure: &Failure,
        attempt: u32,
        started: Instant,
        rng: &mut Rng,
    ) -> Result<(), SampleError> {
        let delay = match failure.retry_after {
            Some(d) => d.min(self.backoff_max),
            None => full_jitter(rng, self.backoff_base, self.backoff_max, attempt),
        };
        tracing::debug!(
            request = %what,
            attempt,
            kind = %failure.kind,
            delay_ms = delay.as_millis() as u64,
            "retrying model server request"
        );
        tokio::select! {
            biased;
            _ = cancelled(self.cancel.as_ref()) => {
                let f = Failure::new(
                    ErrorKind::Cancelled,
                    format!("{what}: cancelled while waiting to retry ({})", failure.message),
                );
                Err(self.sample_error(f, attempt, started))
            }
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Turns a non-success response into a failure, with the server's explanation when it gives
    /// one in the first bytes of the body.
    async fn status_failure(
        &self,
        what: &str,
        mut resp: reqwest::Response,
        deadline: Instant,
    ) -> Failure {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::time::parse_retry_after(v, std::time::SystemTime::now()));
        let redirect_to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| resp.url().join(v).ok())
            .map(|u| {
                let host = u.host_str().unwrap_or_default().to_string();
                match u.port_or_known_default() {
                    Some(p) => format!("{}://{host}:{p}", u.scheme()),
                    None => format!("{}://{host}", u.scheme()),
                }
            });
        let mut snippet = Vec::new();
        let snippet_deadline = deadline.min(Instant::now() + Duration::from_secs(1));
        while snippet.len() < ERROR_SNIPPET_BYTES {
            match tokio::time::timeout_at(snippet_deadline, resp.chunk()).await {
                Ok(Ok(Some(c))) => snippet.extend_from_slice(&c),
                _ => break,
            }
        }
        snippet.truncate(ERROR_SNIPPET_BYTES);
        let explanation = explain_error_body(&snippet, &self.redactor);
        let mut message = format!("{what}: server answered {status}");
        if (300..400).contains(&status) {
            message.push_str(&format!(
                "; redirects are not followed (to {}): set base_url to the final address",
                redirect_to.as_deref().unwrap_or("an unnamed location")
            ));
        }
        if !explanation.is_empty() {
            message.push_str(": ");
            message.push_str(&explanation);
        }
        let retryable = status == 429 || (500..600).contains(&status);
        Failure {
            kind: ErrorKind::HttpStatus,
            status: Some(status),
            message,
            retryable,
            retry_after: if status == 429 || status == 503 {
                retry_after
            } else {
                None
            },
        }
    }
}

/// Classifies an error from sending a request (no response yet).
fn classify_send_error(what: &str, e: reqwest::Error) -> Failure {
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    let e = e.without_url();
    let cause = error_chain(&e);
    if let Some(tls) = super::tls::tls_failure(&e) {
        return tls_send_failure(what, tls, &cause);
    }
    if let Some(head) = unparsable_head(&e) {
        // The server answered, with a head no HTTP client accepts (an endless or huge header,
        // garbage): the same again next time, so not retried.
        let kind = if head.is_parse_too_large() {
            ErrorKind::TooLarge
        } else {
            ErrorKind::MalformedBody
        };
        return Failure::new(
            kind,
            format!("{what}: the response head is unusable: {cause}"),
        );
    }
    let (kind, message) = if timeout {
        (
            ErrorKind::Timeout,
            format!("{what}: {CONNECT_TIMED_OUT}: {cause}"),
        )
    } else if connect {
        (
            ErrorKind::Connect,
            format!("{what}: {COULD_NOT_CONNECT}: {cause}; is the server running at base_url?"),
        )
    } else {
        (
            ErrorKind::Connect,
            format!("{what}: connection failed before a response: {cause}"),
        )
    };
    Failure {
        retryable: true,
        ..Failure::new(kind, message)
    }
}

/// The HTTP parse error behind a failed send, when the server's response head could not be
/// read as HTTP.
fn unparsable_head<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e hyper::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_parse()
        {
            return Some(h);
        }
        cur = err.source();
    }
    None
}

/// A failed TLS handshake: no connection, so availability, named as TLS with what to set. An
/// untrusted certificate is not retried: it will not change between attempts.
fn tls_send_failure(what: &str, tls: &rustls::Error, cause: &str) -> Failure {
    let certificate = super::tls::untrusted_certificate(tls);
    let help = if certificate {
        super::tls::UNTRUSTED_HELP
    } else {
        "does the server speak TLS at base_url (https://)?"
    };
    Failure {
        retryable: !certificate,
        ..Failure::new(
            ErrorKind::Connect,
            format!("{what}: {COULD_NOT_CONNECT}: TLS handshake failed: {cause}; {help}"),
        )
    }
}

/// Display of an error and its sources, `a: b: c`, without repeats.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The server's own explanation from an error body: OpenAI-style `error.message`, Ollama-style
/// `error`, or the text itself, stripped of secrets, then shortened and stripped of control
/// characters. Redaction comes first: a secret crossing the cut would otherwise no longer be
/// recognised and its first part would be kept.
fn explain_error_body(bytes: &[u8], redactor: &Redactor) -> String {
    let text = redactor.apply(&String::from_utf8_lossy(bytes));
    let from_json = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| match v.get("error") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(e) => e
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string),
            None => v
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string),
        });
    // JSON escapes may have hidden a secret from the first pass.
    let chosen = from_json.map_or(text, |m| redactor.apply(&m));
    shorten(&chosen)
}

/// At most [`ERROR_SNIPPET_CHARS`] characters, control characters replaced by spaces.
pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .take(ERROR_SNIPPET_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.trim().chars().count() > ERROR_SNIPPET_CHARS {
        out.push('…');
    }
    out
}

/// Full-jitter backoff (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog 2015):
/// uniform in `[0, min(max, base · 2^(retry-1)))` for the `retry`-th retry (1-based).
pub(crate) fn full_jitter(rng: &mut Rng, base: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 1u32 << retry.saturating_sub(1).min(20);
    let cap = base.saturating_mul(factor).min(max);
    cap.mul_f64(rng.f64())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

mod body;
pub(crate) use body::Body;

#[cfg(test)]
mod tests;
