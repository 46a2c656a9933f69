//! The daemon's HTTP endpoint (default `127.0.0.1:9464`):
//!
//! - `GET /`: the status page: the status below as HTML with each target's newest rounds as
//!   small charts (see [`page`]);
//! - `GET /healthz`: the process is alive;
//! - `GET /readyz`: configuration loaded, store writable, scheduler ticking (503 with the
//!   reason otherwise);
//! - `GET /metrics`: Prometheus text format;
//! - `GET /api/v1/status`: JSON status (targets, fingerprints, alerts with evidence, last
//!   rounds, sink delivery);
//! - `POST /api/v1/silence`: mute a target's notifications for a while; needs
//!   `Authorization: Bearer <[server] token>` and is refused when no token is configured.
//! - `POST /api/v1/ingest`: production completions as JSON lines (see [`ingest`]); needs
//!   `Authorization: Bearer <[traffic] token>` and answers `404` without a `[traffic]` section.
//! - `POST /v1/traces`, `POST /v1/logs`: the same as OTLP/HTTP GenAI spans and log records (see
//!   [`otlp_ingest`]), with the same token.
//!
//! Bound to a non-loopback address ([`Access::exposed`]), every endpoint but `/healthz` and
//! `/readyz` (and `/metrics` with `[server] public_metrics = true`) needs the bearer token, and
//! is refused when none is configured: the status API shows models, digests, pins and alert
//! evidence. Request bodies are limited to [`MAX_BODY`] bytes; connections, header size and
//! timeouts are limited by [`serve::Limits`].

mod ingest;
mod otlp_ingest;
pub mod page;
pub mod serve;

use crate::config::Secret;
use crate::config::duration::parse_duration;
use crate::daemon::Command;
use crate::daemon::state::Shared;
use crate::runner::{Clock, SystemClock};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Largest accepted request body.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest silence accepted through the API.
const MAX_SILENCE_MS: u128 = 30 * 86_400_000;
/// Shortest silence accepted: anything shorter is a typo (`1ms` for `1m`) and mutes nothing.
pub const MIN_SILENCE_MS: u128 = 60_000;

/// The metrics an alert can be about: the monitor's rate metrics, `length_chars`,
/// `length_shape`, `unapproved_model` and `license_changed`. A silence naming anything else would silently
/// mute nothing.
pub fn alert_metrics() -> Vec<String> {
    let mut ids: Vec<String> = crate::drift::BINARY.iter().map(|m| m.id()).collect();
    ids.push(crate::daemon::monitor::LENGTH_METRIC.to_string());
    ids.push(crate::daemon::monitor::LENGTH_SHAPE_METRIC.to_string());
    ids.push(crate::daemon::UNAPPROVED_MODEL.to_string());
    ids.push(crate::daemon::LICENSE_CHANGED.to_string());
    ids
}

/// Checks a silence's metric and duration; the error says what is accepted.
pub fn check_silence(metric: Option<&str>, duration: std::time::Duration) -> Result<(), String> {
    if let Some(m) = metric {
        let known = alert_metrics();
        if !known.iter().any(|k| k == m) {
            return Err(format!(
                "unknown metric `{m}`: expected one of {}, or none for every alert of the target",
                known.join(", ")
            ));
        }
    }
    if duration.as_millis() < MIN_SILENCE_MS {
        return Err("a silence must last at least 1m".into());
    }
    if duration.as_millis() > MAX_SILENCE_MS {
        return Err("a silence may last at most 30d".into());
    }
    Ok(())
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    token: Option<Secret>,
    history: Option<page::History>,
}

/// Who may read what: see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Bearer token (`[server] token`).
    pub token: Option<Secret>,
    /// Bound to a non-loopback address: reading needs the token too.
    pub exposed: bool,
    /// `/metrics` is served without the token even when exposed.
    pub public_metrics: bool,
}

impl Access {
    /// The access rules of a server listening on `listen`.
    pub fn for_listen(
        listen: std::net::SocketAddr,
        token: Option<Secret>,
        public_metrics: bool,
    ) -> Access {
        Access {
            token,
            exposed: !listen.ip().is_loopback(),
            public_metrics,
        }
    }
}

/// The routes, ready to serve, for a loopback listener.
pub fn router(
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    token: Option<Secret>,
) -> Router {
    router_with(
        shared,
        commands,
        Access {
            token,
            ..Access::default()
        },
    )
}

/// The routes, ready to serve, under `access`.
pub fn router_with(shared: Arc<Shared>, commands: mpsc::Sender<Command>, access: Access) -> Router {
    router_with_history(shared, commands, access, None)
}

/// The routes under `access`, the status page charting the history `history` points at.
pub fn router_with_history(
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    access: Access,
    history: Option<page::History>,
) -> Router {
    let token = access.token.clone();
    Router::new()
        .route("/", get(status_page))
        .route("/report", get(report_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/silence", post(silence))
        .route("/api/v1/ingest", post(ingest::ingest))
        .route("/v1/traces", post(otlp_ingest::traces))
        .route("/v1/logs", post(otlp_ingest::logs))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(access),
            guard,
        ))
        .with_state(AppState {
            shared,
            commands,
            token,
            history,
        })
}

/// Serves `router` on `listener` with the default [`serve::Limits`] inside this process's
/// descriptor budget, until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = serve::Limits::within_budget(serve::DEFAULT_MAX_CONNECTIONS, serve::soft_nofile());
    serve::serve_with(listener, router, limits, shutdown).await
}

/// Lets a request through when `access` allows it without the token, or it carries the token.
async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = !access.exposed
        || matches!(
            path,
            "/healthz"
                | "/readyz"
                | "/api/v1/silence"
                | "/api/v1/ingest"
                | "/v1/traces"
                | "/v1/logs"
        )
        || (path == "/metrics" && access.public_metrics);
    if open {
        return next.run(req).await;
    }
    let Some(token) = &access.token else {
        return error(
            StatusCode::FORBIDDEN,
            "the HTTP endpoint listens on a non-loopback address without a token: set [server] \
             token (and send Authorization: Bearer <token>), or listen on 127.0.0.1",
        );
    };
    if !bearer_matches(req.headers(), token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send Authorization: Bearer <[server] token>",
        );
    }
    next.run(req).await
}

/// The request carries `Authorization: Bearer <token>`.
pub(crate) fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| same(g.trim().as_bytes(), token.expose().as_bytes()))
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.shared.ready(SystemClock.now_ms()) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = s.shared.render_metrics();
            if let Some(t) = s.shared.traffic() {
                t.render_metrics(&mut text);
            }
            text
        },
    )
        .into_response()
}

async fn status_page(State(s): State<AppState>) -> Response {
    html_page(s, None).await
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    target: String,
    since: Option<String>,
}

/// `GET /report?target=T&since=7d`: one target's time view over a window.
async fn report_page(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ReportQuery>,
) -> Response {
    let since = q.since.as_deref().unwrap_or("7d");
    let Some(since) = parse_duration(since).filter(|d| !d.is_zero()) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid duration `{since}` for since: expected e.g. \"24h\" or \"7d\""),
        );
    };
    if !s.shared.status().targets.iter().any(|t| t.name == q.target) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no target named `{}`", q.target),
        );
    }
    html_page(
        s,
        Some(page::Focus {
            target: q.target,
            since,
        }),
    )
    .await
}

async fn html_page(s: AppState, focus: Option<page::Focus>) -> Response {
    let status = s.shared.status();
    let history = s.history.clone();
    let now = SystemClock.now_ms();
    // SQLite reads block: off the async workers.
    let render = move || page::render(&status, history.as_ref(), now, focus.as_ref());
    match tokio::task::spawn_blocking(render).await {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        ),
    }
}

async fn status(State(s): State<AppState>) -> Response {
    let doc = s.shared.status();
    match s.shared.traffic() {
        None => axum::Json(doc).into_response(),
        Some(t) => {
            let mut v = serde_json::to_value(doc).unwrap_or_default();
            if let (Some(obj), Ok(traffic)) = (v.as_object_mut(), serde_json::to_value(t.status()))
            {
                obj.insert("traffic".into(), traffic);
            }
            axum::Json(v).into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    target: String,
    metric: Option<String>,
    /// A duration such as `"2h"`.
    #[serde(rename = "for")]
    duration: String,
    #[serde(default)]
    reason: String,
}

pub(crate) fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

/// Compares in time independent of where the first difference is.
/// Constant-time equality (the length is not secret), so a token cannot be guessed byte by
/// byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

async fn silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // A body over the limit answers in JSON like every other API error.
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!(
                    "cannot read the request body: {e}; a silence request is a small JSON object"
                ),
            );
        }
    };
    let Some(token) = &s.token else {
        return error(
            StatusCode::FORBIDDEN,
            "state-changing endpoints are disabled: set [server] token in the configuration",
        );
    };
    if !bearer_matches(&headers, token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send Authorization: Bearer <[server] token>",
        );
    }
    let req: SilenceRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid silence request: {e}; expected {{\"target\": \"name\", \"for\": \"2h\", \"metric\": optional, \"reason\": optional}}"
                ),
            );
        }
    };
    let Some(duration) = parse_duration(&req.duration).filter(|d| !d.is_zero()) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid duration `{}`: expected e.g. \"2h\" or \"30m\"",
                req.duration
            ),
        );
    };
    let metric = req
        .metric
        .map(|m| crate::drift::Metric::canonical_id(&m).to_string());
    if let Err(why) = check_silence(metric.as_deref(), duration) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let (reply, rx) = oneshot::channel();
    let cmd = Command::Silence {
        target: req.target,
        metric,
        duration,
        reason: req.reason,
        reply,
    };
    if s.commands.send(cmd).await.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler is shutting down",
        );
    }
    match rx.await {
        Ok(Ok(silence)) => (StatusCode::CREATED, axum::Json(silence)).into_response(),
        Ok(Err(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler is shutting down",
        ),
    }
}
