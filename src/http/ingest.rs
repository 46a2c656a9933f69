//! `POST /api/v1/ingest`: production completions, one JSON object per line (`docs/traffic.md`).
//!
//! Checked before anything is read: ingestion is configured (`404` otherwise), the bearer token
//! is `[traffic] token` (`401`), the declared size is within `[traffic] max_body_bytes` (`413`),
//! and a parser slot is free (`503` with `Retry-After` otherwise). The body is then read up to
//! that size (`413` past it) within 30 s (`408` after) and handed to [`crate::traffic::Traffic::ingest`] on a blocking
//! thread, whose reply lists every refused line as `line N: /field: what is wrong`.

use super::{AppState, bearer_matches, error};
use crate::runner::{Clock, SystemClock};
use crate::traffic::{Reply, Traffic};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

pub(super) async fn ingest(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (traffic, permit, bytes) = match receive(&s, &headers, body).await {
        Ok(r) => r,
        Err(reply) => return respond(reply),
    };
    let now = SystemClock.now_ms();
    let work = move || {
        let _permit = permit;
        traffic.ingest(&bytes, now)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(reply) => respond(reply),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the batch could not be processed; nothing of it was accepted",
        ),
    }
}

/// The checks every ingest endpoint makes before parsing (traffic configured, token, declared
/// size, a free parser slot) and the body, read within its bounds; or the refusal to send.
pub(super) async fn receive(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<Traffic>, OwnedSemaphorePermit, Bytes), Reply> {
    let Some(traffic) = s.shared.traffic() else {
        return Err(plain(
            404,
            "production traffic ingestion is off: add a [traffic] section with a token \
             (docs/traffic.md) and restart the daemon",
        ));
    };
    if !bearer_matches(headers, traffic.token()) {
        traffic.refuse("unauthorized");
        return Err(plain(
            401,
            "missing or wrong bearer token: send Authorization: Bearer <[traffic] token>",
        ));
    }
    let max = traffic.settings().max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        traffic.refuse("too_large");
        return Err(too_large(max));
    }
    let Some(permit) = traffic.try_parser() else {
        traffic.refuse("busy");
        return Err(Reply {
            status: 503,
            retry_after_s: Some(1),
            body: serde_json::json!({
                "error": "other ingest requests are being parsed: retry after 1 s; nothing of this request was accepted",
                "accepted": 0,
            }),
        });
    };
    let read = tokio::time::timeout(BODY_TIMEOUT, read_bounded(body, max)).await;
    match read.unwrap_or(Err(Read::Slow)) {
        Ok(b) => Ok((traffic, permit, b)),
        Err(Read::Slow) => {
            traffic.refuse("slow");
            Err(plain(
                408,
                format!(
                    "the request body took longer than {} s to arrive: send smaller batches",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        }
        Err(Read::TooLarge) => {
            traffic.refuse("too_large");
            Err(too_large(max))
        }
        Err(Read::Failed(e)) => Err(plain(
            400,
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// A refusal with the body `{"error": message}`.
fn plain(status: u16, message: impl Into<String>) -> Reply {
    Reply {
        status,
        retry_after_s: None,
        body: serde_json::json!({ "error": message.into() }),
    }
}

/// Longest time a body may take to arrive (it holds one of the parser slots meanwhile).
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

enum Read {
    TooLarge,
    Slow,
    Failed(String),
}

/// The body, or [`Read::TooLarge`] as soon as it passes `max` bytes.
async fn read_bounded(body: Body, max: usize) -> Result<Bytes, Read> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Read::Failed(e.to_string()))?;
        if buf.len() + chunk.len() > max {
            return Err(Read::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

fn too_large(max: usize) -> Reply {
    Reply {
        status: 413,
        retry_after_s: None,
        body: serde_json::json!({
            "error": format!(
                "request body larger than {max} bytes ([traffic] max_body_bytes): split it into smaller batches"
            ),
            "accepted": 0,
        }),
    }
}

pub(super) fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(reply.body)).into_response();
    if let Some(s) = reply.retry_after_s
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
