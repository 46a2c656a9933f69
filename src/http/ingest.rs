//! `POST /api/v1/ingest`: production completions, one JSON object per line (`docs/traffic.md`).
//!
//! Checked before anything is read: ingestion is configured (`404` otherwise), the bearer token
//! is `[traffic] token` (`401`), the declared size is within `[traffic] max_body_bytes` (`413`),
//! and a parser slot is free (`503` with `Retry-After` otherwise). The body is then read up to
//! that size (`413` past it) within 30 s (`408` after) and handed to [`crate::traffic::Traffic::ingest`] on a blocking
//! thread, whose reply lists every refused line as `line N: /field: what is wrong`.

use super::{AppState, bearer_matches, error};
use crate::runner::{Clock, SystemClock};
use crate::traffic::Reply;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

pub(super) async fn ingest(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(traffic) = s.shared.traffic() else {
        return error(
            StatusCode::NOT_FOUND,
            "production traffic ingestion is off: add a [traffic] section with a token \
             (docs/traffic.md) and restart the daemon",
        );
    };
    if !bearer_matches(&headers, traffic.token()) {
        traffic.refuse("unauthorized");
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send Authorization: Bearer <[traffic] token>",
        );
    }
    let max = traffic.settings().max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        traffic.refuse("too_large");
        return too_large(max);
    }
    let Some(permit) = traffic.try_parser() else {
        traffic.refuse("busy");
        return respond(Reply {
            status: 503,
            retry_after_s: Some(1),
            body: serde_json::json!({
                "error": "other ingest requests are being parsed: retry after 1 s; nothing of this request was accepted",
                "accepted": 0,
            }),
        });
    };
    let read = tokio::time::timeout(BODY_TIMEOUT, read_bounded(body, max)).await;
    let bytes = match read.unwrap_or(Err(Read::Slow)) {
        Ok(b) => b,
        Err(Read::Slow) => {
            traffic.refuse("slow");
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body took longer than {} s to arrive: send smaller batches",
                    BODY_TIMEOUT.as_secs()
                ),
            );
        }
        Err(Read::TooLarge) => {
            traffic.refuse("too_large");
            return too_large(max);
        }
        Err(Read::Failed(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            );
        }
    };
    let now = SystemClock.now_ms();
    let t = traffic.clone();
    let work = move || {
        let _permit = permit;
        t.ingest(&bytes, now)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(reply) => respond(reply),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the batch could not be processed; nothing of it was accepted",
        ),
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

fn too_large(max: usize) -> Response {
    respond(Reply {
        status: 413,
        retry_after_s: None,
        body: serde_json::json!({
            "error": format!(
                "request body larger than {max} bytes ([traffic] max_body_bytes): split it into smaller batches"
            ),
            "accepted": 0,
        }),
    })
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(reply.body)).into_response();
    if let Some(s) = reply.retry_after_s
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
