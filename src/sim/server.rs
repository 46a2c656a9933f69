//! The HTTP side: shared state, the router, the handle, and what both APIs have in common
//! (auth, model lookup, faults, delays, streaming with cuts).

use super::model::{self, Draw, DrawSource, Fault, GenRequest, Notes, Outcome};
use super::profile::Profile;
use super::{admin, ollama, openai};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Unix time stamped on every response, fixed so that bodies are byte-identical across runs.
pub(super) const EPOCH_SECS: u64 = 1_735_689_600;
/// [`EPOCH_SECS`] as RFC 3339.
pub(super) const EPOCH_RFC3339: &str = "2025-01-01T00:00:00Z";

/// How long a "timeout" fault keeps the request open (unless the server stops first).
const HANG: Duration = Duration::from_secs(3600);

/// The profile in force and the per-prompt request counters that belong to it.
pub(super) struct Active {
    pub profile: Arc<Profile>,
    pub generation: u64,
    occurrences: Mutex<HashMap<u64, u64>>,
}

impl Active {
    fn new(profile: Profile, generation: u64) -> Self {
        Active {
            profile: Arc::new(profile),
            generation,
            occurrences: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    content: BTreeMap<&'static str, u64>,
}

/// State shared by every request.
pub(super) struct Shared {
    seed: u64,
    active: RwLock<Arc<Active>>,
    counters: Mutex<Counters>,
    stopping: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Swaps the profile atomically; requests in flight finish with the old one.
    pub fn set_profile(&self, profile: Profile) -> u64 {
        let mut slot = self.active.write().unwrap_or_else(|p| p.into_inner());
        let generation = slot.generation + 1;
        *slot = Arc::new(Active::new(profile, generation));
        generation
    }

    pub fn record(&self, endpoint: &'static str, outcome: &'static str) {
        let mut c = lock(&self.counters);
        *c.requests
            .entry(endpoint)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }

    fn record_notes(&self, n: &Notes) {
        let mut c = lock(&self.counters);
        for (flag, name) in [
            (n.refused, "refusal"),
            (n.json, "json"),
            (n.wrong_answer, "wrong_answer"),
            (n.json_invalid, "json_invalid"),
            (n.json_schema_break, "json_schema_break"),
            (n.truncated, "truncated"),
        ] {
            if flag {
                *c.content.entry(name).or_default() += 1;
            }
        }
    }

    pub fn stats(&self) -> SimStats {
        let c = lock(&self.counters);
        let requests: BTreeMap<String, BTreeMap<String, u64>> = c
            .requests
            .iter()
            .map(|(e, m)| {
                (
                    e.to_string(),
                    m.iter().map(|(o, n)| (o.to_string(), *n)).collect(),
                )
            })
            .collect();
        SimStats {
            generation: self.active().generation,
            total: requests.values().flat_map(|m| m.values()).sum(),
            requests,
            content: c.content.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    /// Decides the outcome of one generation request and counts it.
    pub fn generate(
        &self,
        active: &Active,
        request_seed: Option<u64>,
        req: &GenRequest<'_>,
    ) -> Outcome {
        let source = match request_seed {
            Some(s) => DrawSource::RequestSeed(s),
            None => {
                let key = crate::rng::hash_str(req.prompt);
                let mut occ = lock(&active.occurrences);
                let n = occ.entry(key).or_insert(0);
                let source = DrawSource::Occurrence(*n);
                *n += 1;
                source
            }
        };
        let draw = Draw::new(self.seed, active.generation, req.prompt, source);
        let outcome = model::respond(&active.profile, &draw, req);
        if let Outcome::Reply(r) = &outcome
            && r.malformed.is_none()
        {
            self.record_notes(&r.notes);
        }
        outcome
    }

    /// Sleeps `d` scaled by the profile's `latency_scale`.
    pub async fn delay(&self, active: &Active, d: Duration) {
        let scaled = scale(d, active.profile.latency_scale);
        if !scaled.is_zero() {
            tokio::time::sleep(scaled).await;
        }
    }

    /// Waits for a very long time, or until the server stops.
    async fn hang(&self) {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            _ = tokio::time::sleep(HANG) => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
    }
}

fn scale(d: Duration, factor: f64) -> Duration {
    let secs = d.as_secs_f64() * factor;
    if secs.is_finite() && secs > 0.0 {
        Duration::from_secs_f64(secs.min(HANG.as_secs_f64()))
    } else {
        Duration::ZERO
    }
}

/// Request counts by endpoint and outcome, and what the replies contained.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SimStats {
    /// Profile generation: 0 for the initial profile, +1 per swap.
    pub generation: u64,
    pub total: u64,
    /// endpoint → outcome (`ok`, `error_5xx`, `rate_limit`, `timeout`, `malformed`,
    /// `disconnect`, `unauthorized`, `not_found`, `bad_request`) → count.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Replies that were refusals, JSON, wrong answers, broken JSON, truncated.
    pub content: BTreeMap<String, u64>,
}

impl SimStats {
    /// Requests to `endpoint` with `outcome`.
    pub fn count(&self, endpoint: &str, outcome: &str) -> u64 {
        self.requests
            .get(endpoint)
            .and_then(|m| m.get(outcome))
            .copied()
            .unwrap_or(0)
    }
}

/// A running simulator. Dropping it stops the server; [`SimHandle::shutdown`] also waits.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the base URL for both APIs.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Swaps the served model (fingerprint and behaviour) atomically; returns the new
    /// generation. Per-prompt request counters restart.
    pub fn set_profile(&self, profile: Profile) -> u64 {
        self.shared.set_profile(profile)
    }

    pub fn profile(&self) -> Arc<Profile> {
        self.shared.active().profile.clone()
    }

    pub fn generation(&self) -> u64 {
        self.shared.active().generation
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Stops accepting, lets requests in flight finish (hung "timeout" requests are released)
    /// and waits up to five seconds before aborting the rest.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves the simulator on `listener`, spawned on the current tokio runtime.
///
/// Responses are a pure function of `seed`, the profile generation, the prompt and the
/// request's `seed` (or the prompt's occurrence count), see [`model`].
pub fn serve(listener: TcpListener, profile: Profile, seed: u64) -> SimHandle {
    // A bound listener always has an address; the fallback only avoids a panic path.
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        seed,
        active: RwLock::new(Arc::new(Active::new(profile, 0))),
        counters: Mutex::new(Counters::default()),
        stopping: stopping.clone(),
    });
    let app = router(shared.clone());
    let mut stopping = stopping;
    let task = tokio::spawn(async move {
        use axum::serve::ListenerExt;
        // Small frames go out at once, so streamed time to first token is real.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });
    SimHandle {
        addr,
        shared,
        stop,
        task: Some(task),
    }
}

/// Binds 127.0.0.1 on a free port and serves there. Must run inside a tokio runtime.
pub fn spawn_on_free_port(profile: Profile, seed: u64) -> std::io::Result<SimHandle> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    Ok(serve(listener, profile, seed))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { "Ollama is running" }))
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(ollama::show))
        .route("/api/version", get(ollama::version))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/props", get(openai::props))
        .route(
            "/admin/profile",
            get(admin::get_profile).put(admin::put_profile),
        )
        .route("/admin/stats", get(admin::stats))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": "not found"})),
            )
        })
        .with_state(shared)
}

/// The two wire dialects, for error bodies and stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    Ollama,
    OpenAi,
}

impl Api {
    /// One stream frame: an NDJSON line or an SSE `data:` event.
    pub fn frame(self, json: &[u8]) -> Bytes {
        let mut v = Vec::with_capacity(json.len() + 8);
        match self {
            Api::Ollama => {
                v.extend_from_slice(json);
                v.push(b'\n');
            }
            Api::OpenAi => {
                v.extend_from_slice(b"data: ");
                v.extend_from_slice(json);
                v.extend_from_slice(b"\n\n");
            }
        }
        Bytes::from(v)
    }

    fn stream_content_type(self) -> &'static str {
        match self {
            Api::Ollama => "application/x-ndjson",
            Api::OpenAi => "text/event-stream",
        }
    }
}

/// An error in the dialect's shape: Ollama `{"error": "…"}`, OpenAI
/// `{"error": {"message", "type", "param", "code"}}`.
pub(super) fn error_response(api: Api, status: StatusCode, message: &str, code: &str) -> Response {
    let body = match api {
        Api::Ollama => serde_json::json!({ "error": message }),
        Api::OpenAi => serde_json::json!({
            "error": {
                "message": message,
                "type": if status.is_server_error() { "server_error" } else { "invalid_request_error" },
                "param": null,
                "code": code,
            }
        }),
    };
    (status, axum::Json(body)).into_response()
}

/// Checks the bearer token when the profile sets `api_key`.
#[allow(clippy::result_large_err)] // the error is the ready response; boxing buys nothing
pub(super) fn authorize(active: &Active, headers: &HeaderMap, api: Api) -> Result<(), Response> {
    let Some(key) = &active.profile.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), key.expose().as_bytes())) {
        return Ok(());
    }
    let mut resp = match api {
        Api::Ollama => error_response(api, StatusCode::UNAUTHORIZED, "unauthorized", ""),
        Api::OpenAi => error_response(
            api,
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_api_key",
        ),
    };
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(resp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// 404 for a model the profile does not serve, worded like the real server.
pub(super) fn unknown_model(api: Api, name: &str) -> Response {
    match api {
        Api::Ollama => error_response(
            api,
            StatusCode::NOT_FOUND,
            &format!("model \"{name}\" not found, try pulling it first"),
            "",
        ),
        Api::OpenAi => error_response(
            api,
            StatusCode::NOT_FOUND,
            &format!("The model `{name}` does not exist or you do not have access to it."),
            "model_not_found",
        ),
    }
}

/// Turns a fault into a response.
pub(super) async fn fault_response(shared: &Shared, api: Api, fault: Fault) -> Response {
    match fault {
        Fault::Timeout => {
            shared.hang().await;
            error_response(
                api,
                StatusCode::SERVICE_UNAVAILABLE,
                "server shutting down",
                "",
            )
        }
        Fault::ServerError { status: 502 } => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        Fault::ServerError { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "server busy, please try again. maximum pending requests exceeded"
            } else {
                "The server had an error while processing your request. Sorry about that!"
            };
            error_response(api, status, message, "")
        }
        Fault::RateLimit { retry_after_secs } => {
            let mut resp = error_response(
                api,
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests. Please try again later.",
                "rate_limit_exceeded",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            resp
        }
    }
}

/// A 200 response whose body a client cannot use.
fn malformed_body(variant: u8) -> Response {
    let (ctype, body): (&str, Vec<u8>) = match variant {
        0 => (
            "application/json",
            br#"{"id": "chatcmpl-0", "choices": [{"message": {"role": "assistant", "content": "Hel"#
                .to_vec(),
        ),
        1 => (
            "application/json",
            br#"{"status": "ok", "result": {"output": ["Hello"]}, "version": 2}"#.to_vec(),
        ),
        2 => (
            "application/json",
            b"<!DOCTYPE html><html><body><h1>It works!</h1></body></html>".to_vec(),
        ),
        _ => {
            let mut b = br#"{"message": {"role": "assistant", "content": ""#.to_vec();
            b.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
            b.extend_from_slice(br#""}, "done": true}"#);
            ("application/json", b)
        }
    };
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// Error from a body stream: makes hyper abort the connection mid-body.
#[derive(Debug, thiserror::Error)]
#[error("simulated disconnect")]
struct Disconnect;

/// Frames and the delay to wait before each, ending in a cut when `cut` is set.
fn frames_body(frames: VecDeque<(Bytes, Duration)>, cut: bool) -> Body {
    let stream = futures_util::stream::unfold((frames, cut), |(mut frames, cut)| async move {
        match frames.pop_front() {
            Some((bytes, delay)) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok(bytes), (frames, cut)))
            }
            None if cut => {
                // Let hyper flush what was sent, so the client sees a partial body.
                tokio::task::yield_now().await;
                Some((Err(Disconnect), (frames, false)))
            }
            None => None,
        }
    });
    Body::from_stream(stream)
}

/// A complete JSON body after the simulated generation time; with `disconnect`, the
/// connection drops half-way through the promised `Content-Length`.
pub(super) async fn json_reply(
    shared: &Shared,
    active: &Active,
    reply: &model::Reply,
    body: &serde_json::Value,
) -> Response {
    shared.delay(active, reply.duration()).await;
    if let Some(variant) = reply.malformed {
        return malformed_body(variant);
    }
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    if !reply.disconnect {
        return ([(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    }
    let len = bytes.len();
    let half = Bytes::from(bytes).slice(..len / 2);
    let mut resp = Response::new(frames_body(VecDeque::from([(half, Duration::ZERO)]), true));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// The frames of one streamed reply: `head` before the first token, one `body` frame per
/// token, `tail` after the last (final chunk, usage, `[DONE]`).
pub(super) struct StreamPlan {
    pub head: Vec<Bytes>,
    pub body: Vec<Bytes>,
    pub tail: Vec<Bytes>,
}

/// Streams a reply with simulated timing: time to first token before the first content frame,
/// per-token time between frames. A disconnect cuts after half the tokens; a malformed variant
/// inserts a broken frame, replaces frames with wrong-shaped ones, drops the final frames, or
/// sends invalid UTF-8.
pub(super) fn stream_response(
    active: &Active,
    api: Api,
    reply: &model::Reply,
    plan: StreamPlan,
) -> Response {
    let scale_by = active.profile.latency_scale;
    let ttft = scale(reply.ttft, scale_by);
    let per_token = scale(reply.per_token, scale_by);
    let StreamPlan {
        head,
        mut body,
        mut tail,
    } = plan;
    let mut cut = false;
    match reply.malformed {
        Some(0) => {
            let at = body.len() / 2;
            body.insert(
                at,
                api.frame(br#"{"choices": [{"delta": {"content": "trunc"#),
            );
        }
        Some(1) => {
            for f in body.iter_mut() {
                *f = api.frame(br#"{"object": "event", "payload": {"value": 1}}"#);
            }
        }
        Some(2) => tail.clear(),
        Some(_) => {
            let mut bad = br#"{"message": {"content": ""#.to_vec();
            bad.extend_from_slice(&[0xff, 0xfe]);
            bad.extend_from_slice(br#""}}"#);
            body.insert(body.len() / 2, api.frame(&bad));
        }
        None if reply.disconnect => {
            body.truncate(body.len() / 2);
            tail.clear();
            cut = true;
        }
        None => {}
    }
    let mut frames = VecDeque::with_capacity(head.len() + body.len() + tail.len());
    frames.extend(head.into_iter().map(|f| (f, Duration::ZERO)));
    let mut first = true;
    for f in body {
        let delay = if first { ttft } else { per_token };
        first = false;
        frames.push_back((f, delay));
    }
    for f in tail {
        let delay = if first { ttft } else { Duration::ZERO };
        first = false;
        frames.push_back((f, delay));
    }
    let mut resp = Response::new(frames_body(frames, cut));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(api.stream_content_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The outcome label of a generated reply for stats.
pub(super) fn reply_label(reply: &model::Reply) -> &'static str {
    if reply.malformed.is_some() {
        "malformed"
    } else if reply.disconnect {
        "disconnect"
    } else {
        "ok"
    }
}

/// Parameters from a size like `7.2B` or `270M`.
pub(super) fn parameter_count(size: &str) -> u64 {
    let s = size.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('B') => (&s[..s.len() - 1], 1e9),
        Some('M') => (&s[..s.len() - 1], 1e6),
        Some('K') => (&s[..s.len() - 1], 1e3),
        _ => (s, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map_or(0, |v| (v * mult).round() as u64)
}

/// Reads a request body as JSON, answering 400 in the dialect's shape when it is not.
#[allow(clippy::result_large_err)] // the error is the ready response; boxing buys nothing
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(
    api: Api,
    body: &[u8],
) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error_response(
            api,
            StatusCode::BAD_REQUEST,
            &format!("invalid request body: {e}"),
            "invalid_request_body",
        )
    })
}

/// Stop sequences given as one string or a list.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// A request seed as any JSON integer (negative values wrap, as some clients send them).
pub(super) fn seed_of(v: Option<&serde_json::Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| v.as_i64().map(|i| i as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_safe_for_odd_factors() {
        let d = Duration::from_millis(100);
        assert_eq!(scale(d, 0.0), Duration::ZERO);
        assert_eq!(scale(d, f64::NAN), Duration::ZERO);
        assert_eq!(scale(d, -1.0), Duration::ZERO);
        assert_eq!(scale(d, 0.5), Duration::from_millis(50));
        assert_eq!(scale(d, f64::INFINITY), Duration::ZERO);
        assert_eq!(scale(d, 1e30), HANG);
    }

    #[test]
    fn frames_follow_each_dialect() {
        assert_eq!(&Api::Ollama.frame(b"{}")[..], b"{}\n");
        assert_eq!(&Api::OpenAi.frame(b"{}")[..], b"data: {}\n\n");
    }

    #[test]
    fn parameter_counts_parse() {
        assert_eq!(parameter_count("7.2B"), 7_200_000_000);
        assert_eq!(parameter_count("270M"), 270_000_000);
        assert_eq!(parameter_count("12"), 12);
        assert_eq!(parameter_count("big"), 0);
        assert_eq!(parameter_count(""), 0);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
