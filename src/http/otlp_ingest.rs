//! `POST /v1/traces` and `POST /v1/logs`: OTLP/HTTP exports of GenAI spans and log records
//! (`docs/traffic.md`), so that an OpenTelemetry SDK or collector can export production
//! traffic to the daemon. Same token, body cap, parser slots, rate limit and queue as
//! `POST /api/v1/ingest` ([`super::ingest::receive`]); decoding and measuring run on a blocking
//! thread.
//!
//! Answers follow the OTLP/HTTP specification, in the request's encoding: `200` with an
//! `Export…ServiceResponse` whose `partial_success` counts the refused spans (log records)
//! and says why; a request refused as a whole gets its status (`400` undecodable, `401`,
//! `413`, `415` unsupported content type or compression, `429`/`503` with `Retry-After`) and a
//! `google.rpc.Status` body.

use super::AppState;
use super::ingest::receive;
use crate::runner::{Clock, SystemClock};
use crate::traffic::Reply;
use crate::traffic::otlp::{Encoding, Signal};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;

pub(super) async fn traces(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(&s, &headers, body, Signal::Traces).await
}

pub(super) async fn logs(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(&s, &headers, body, Signal::Logs).await
}

async fn export(s: &AppState, headers: &HeaderMap, body: Body, signal: Signal) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = Encoding::from_content_type(content_type);
    // Errors before the encoding is known are sent as JSON.
    let answer_in = encoding.unwrap_or(Encoding::Json);
    let (traffic, permit, bytes) = match receive(s, headers, body).await {
        Ok(r) => r,
        Err(reply) => return status(answer_in, &reply),
    };
    let Some(encoding) = encoding else {
        traffic.refuse("unsupported");
        return status(
            answer_in,
            &refusal(
                415,
                format!(
                    "Content-Type `{content_type}` is not OTLP/HTTP: send application/x-protobuf or application/json"
                ),
            ),
        );
    };
    let compression = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    if !compression.eq_ignore_ascii_case("identity") {
        traffic.refuse("unsupported");
        return status(
            encoding,
            &refusal(
                415,
                format!(
                    "Content-Encoding `{compression}` is not supported: configure the exporter with compression none"
                ),
            ),
        );
    }
    let now = SystemClock.now_ms();
    let work = move || {
        let _permit = permit;
        traffic.ingest_otlp(signal, encoding, &bytes, now)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok((outcome, _total))) => {
            let rejected = outcome.errors.len() as i64;
            let message = outcome.listed_errors().join("; ");
            let body = match (signal, encoding) {
                (Signal::Traces, e) => encode(
                    e,
                    &ExportTraceServiceResponse {
                        partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                            rejected_spans: rejected,
                            error_message: message,
                        }),
                    },
                ),
                (Signal::Logs, e) => encode(
                    e,
                    &ExportLogsServiceResponse {
                        partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                            rejected_log_records: rejected,
                            error_message: message,
                        }),
                    },
                ),
            };
            with_type(StatusCode::OK, encoding, body)
        }
        Ok(Err(reply)) => status(encoding, &reply),
        Err(_) => status(
            encoding,
            &refusal(
                500,
                "the export could not be processed; nothing of it was accepted".into(),
            ),
        ),
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error response.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn refusal(status: u16, message: String) -> Reply {
    Reply {
        status,
        retry_after_s: None,
        body: serde_json::json!({ "error": message }),
    }
}

/// A refusal as an OTLP/HTTP error response: the HTTP status, `Retry-After`, and a
/// `google.rpc.Status` with the message.
fn status(encoding: Encoding, reply: &Reply) -> Response {
    let http = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = reply.body["error"]
        .as_str()
        .unwrap_or("refused")
        .to_string();
    let code = match reply.status {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        404 => 12,            // UNIMPLEMENTED
        408 => 4,             // DEADLINE_EXCEEDED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    };
    let body = match encoding {
        Encoding::Protobuf => RpcStatus { code, message }.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&RpcStatus { code, message }).unwrap_or_default(),
    };
    let mut response = with_type(http, encoding, body);
    if let Some(s) = reply.retry_after_s
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn encode<M: Message + serde::Serialize>(encoding: Encoding, message: &M) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(message).unwrap_or_default(),
    }
}

fn with_type(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}
