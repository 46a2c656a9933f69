//! The daemon's HTTP endpoint (default `127.0.0.1:9464`):
//!
//! - `GET /healthz`: the process is alive;
//! - `GET /readyz`: configuration loaded, store writable, scheduler ticking (503 with the
//!   reason otherwise);
//! - `GET /metrics`: Prometheus text format;
//! - `GET /api/v1/status`: JSON status (targets, fingerprints, alerts with evidence, last
//!   rounds, sink delivery);
//! - `POST /api/v1/silence`: mute a target's notifications for a while; needs
//!   `Authorization: Bearer <[server] token>` and is refused when no token is configured.
//!
//! Request bodies are limited to [`MAX_BODY`] bytes.

use crate::config::Secret;
use crate::config::duration::parse_duration;
use crate::daemon::Command;
use crate::daemon::state::Shared;
use crate::runner::{Clock, SystemClock};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
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

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    token: Option<Secret>,
}

/// The routes, ready to serve.
pub fn router(
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    token: Option<Secret>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/silence", post(silence))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            shared,
            commands,
            token,
        })
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
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
        s.shared.render_metrics(),
    )
        .into_response()
}

async fn status(State(s): State<AppState>) -> Response {
    axum::Json(s.shared.status()).into_response()
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

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(token) = &s.token else {
        return error(
            StatusCode::FORBIDDEN,
            "state-changing endpoints are disabled: set [server] token in the configuration",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| same(g.trim().as_bytes(), token.expose().as_bytes())) {
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
    if duration.as_millis() > MAX_SILENCE_MS {
        return error(StatusCode::BAD_REQUEST, "a silence may last at most 30d");
    }
    let (reply, rx) = oneshot::channel();
    let cmd = Command::Silence {
        target: req.target,
        metric: req.metric,
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
