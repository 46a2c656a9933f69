//! OTLP/HTTP exports (`POST /v1/traces`, `POST /v1/logs`, protobuf or OTLP/JSON) turned into
//! the same [`Record`]s as the JSON lines, decoded with the official generated OTLP types.
//! Pure: bytes in, records out.
//!
//! A span or log record is a completion when it carries a `gen_ai.*` attribute (or, for a log
//! record, a `gen_ai.*` event name); anything else an application or collector exports (HTTP
//! spans, database spans, ordinary logs) is skipped, neither accepted nor rejected. The mapping
//! (`docs/traffic.md`):
//!
//! | record field | from |
//! | --- | --- |
//! | target | `modelwatch.target` |
//! | model | `gen_ai.request.model`, else `gen_ai.response.model` |
//! | route | `modelwatch.route`, else `http.route` |
//! | output | `gen_ai.output.messages` (text parts), else `gen_ai.completion`, on the span, one of its events, or the log record (also a `gen_ai.choice` body's `message.content`) |
//! | output tokens | `gen_ai.usage.output_tokens` (else `gen_ai.usage.completion_tokens`) |
//! | finish reason | the first of `gen_ai.response.finish_reasons` |
//! | latency | the span's end − start |
//! | timestamp | the span's end time, the log record's time |
//!
//! Each key is looked up on the span (log record) first, then on its resource.

use super::Numbered;
use super::line::{LineError, Record};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use prost::Message;

/// Longest route, target, model or finish reason taken from an attribute.
const MAX_NAME: usize = 200;

/// How an export is encoded (its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON: hex ids, enums as integers, camelCase names).
    Json,
}

impl Encoding {
    /// The encoding of a `Content-Type` value, parameters ignored.
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    /// How errors name one completion of this signal.
    pub fn unit(self) -> &'static str {
        match self {
            Signal::Traces => "span",
            Signal::Logs => "log record",
        }
    }
}

/// The export could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The completions of an export, numbered among its GenAI spans (log records) from 1, and how
/// many spans (log records) it held in all.
pub fn decode(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<(Vec<Numbered>, usize), DecodeError> {
    match signal {
        Signal::Traces => decode_traces(encoding, body).map(|r| spans(&r)),
        Signal::Logs => decode_logs(encoding, body).map(|r| logs(&r)),
    }
}

fn decode_traces(
    encoding: Encoding,
    body: &[u8],
) -> Result<ExportTraceServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| {
            DecodeError(format!(
                "not a protobuf ExportTraceServiceRequest ({e}): send OTLP/HTTP protobuf, or OTLP/JSON with Content-Type: application/json"
            ))
        }),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| {
            DecodeError(format!(
                "not an OTLP/JSON ExportTraceServiceRequest ({e}): expected {{\"resourceSpans\": [...]}} with hex ids and camelCase names"
            ))
        }),
    }
}

fn decode_logs(encoding: Encoding, body: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body).map_err(|e| {
            DecodeError(format!(
                "not a protobuf ExportLogsServiceRequest ({e}): send OTLP/HTTP protobuf, or OTLP/JSON with Content-Type: application/json"
            ))
        }),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| {
            DecodeError(format!(
                "not an OTLP/JSON ExportLogsServiceRequest ({e}): expected {{\"resourceLogs\": [...]}} with hex ids and camelCase names"
            ))
        }),
    }
}

/// The attribute a record field comes from, for a JSON pointer into a line (`/model`).
pub fn attribute_of(pointer: &str) -> Option<&'static str> {
    match pointer {
        "/target" => Some("modelwatch.target"),
        "/model" => Some("gen_ai.request.model"),
        "/route" => Some("modelwatch.route"),
        _ => None,
    }
}

/// Attributes looked up in order: the span's (log record's) own, then its resource's.
struct Attrs<'a> {
    own: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.own
            .iter()
            .chain(self.resource)
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn is_gen_ai(&self) -> bool {
        self.own.iter().any(|kv| kv.key.starts_with("gen_ai."))
    }
}

fn spans(req: &ExportTraceServiceRequest) -> (Vec<Numbered>, usize) {
    let mut out = Vec::new();
    let mut total = 0;
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            total += 1;
            let attrs = Attrs {
                own: &span.attributes,
                resource,
            };
            if !attrs.is_gen_ai() {
                continue;
            }
            let n = out.len() + 1;
            let events = span.events.iter().map(|e| e.attributes.as_slice());
            let latency_ms = (span.end_time_unix_nano >= span.start_time_unix_nano
                && span.start_time_unix_nano > 0)
                .then(|| (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6);
            let time = ns_to_ms(span.end_time_unix_nano);
            out.push((n, record(n, "span", &attrs, events, None, latency_ms, time)));
        }
    }
    (out, total)
}

fn logs(req: &ExportLogsServiceRequest) -> (Vec<Numbered>, usize) {
    let mut out = Vec::new();
    let mut total = 0;
    for rl in &req.resource_logs {
        let resource = rl
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for log in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
            total += 1;
            let attrs = Attrs {
                own: &log.attributes,
                resource,
            };
            let event_name = if log.event_name.is_empty() {
                attrs.get("event.name").and_then(as_str).unwrap_or_default()
            } else {
                log.event_name.as_str()
            };
            if !attrs.is_gen_ai() && !event_name.starts_with("gen_ai.") {
                continue;
            }
            let n = out.len() + 1;
            let time = if log.time_unix_nano > 0 {
                log.time_unix_nano
            } else {
                log.observed_time_unix_nano
            };
            let body = log.body.as_ref().and_then(|b| b.value.as_ref());
            out.push((
                n,
                record(
                    n,
                    "log record",
                    &attrs,
                    std::iter::empty(),
                    body,
                    None,
                    ns_to_ms(time),
                ),
            ));
        }
    }
    (out, total)
}

fn ns_to_ms(ns: u64) -> Option<i64> {
    (ns > 0).then(|| i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
}

/// One completion from its attributes, its events' attributes and a log record's body.
fn record<'a>(
    n: usize,
    unit: &'static str,
    attrs: &Attrs<'a>,
    events: impl Iterator<Item = &'a [KeyValue]>,
    body: Option<&'a Value>,
    latency_ms: Option<f64>,
    timestamp_ms: Option<i64>,
) -> Result<Record, LineError> {
    let err = |field: &str, msg: String| {
        let mut e = LineError::new(n, field, msg);
        e.unit = unit;
        e
    };
    let name = |key: &str| -> Result<Option<String>, LineError> {
        match attrs.get(key) {
            None => Ok(None),
            Some(v) => match as_str(v) {
                Some(s) if valid_name(s) => Ok(Some(s.to_string())),
                Some(_) => Err(err(
                    key,
                    format!(
                        "must be a non-empty string of at most {MAX_NAME} characters without control characters"
                    ),
                )),
                None => Err(err(key, "expected a string attribute".into())),
            },
        }
    };
    let model = match name("gen_ai.request.model")? {
        Some(m) => Some(m),
        None => name("gen_ai.response.model")?,
    };
    let route = match name("modelwatch.route")? {
        Some(r) => Some(r),
        None => name("http.route")?,
    };
    let output_tokens = match attrs
        .get("gen_ai.usage.output_tokens")
        .or_else(|| attrs.get("gen_ai.usage.completion_tokens"))
    {
        None => None,
        Some(Value::IntValue(i)) => Some(u32::try_from(*i).map_err(|_| {
            err(
                "gen_ai.usage.output_tokens",
                "expected a non-negative integer below 2^32".into(),
            )
        })?),
        Some(_) => {
            return Err(err(
                "gen_ai.usage.output_tokens",
                "expected an integer attribute".into(),
            ));
        }
    };
    let finish_reason = match attrs.get("gen_ai.response.finish_reasons") {
        None => None,
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .filter_map(|v| v.value.as_ref().and_then(as_str))
            .find(|s| valid_name(s))
            .map(str::to_string),
        Some(v) => as_str(v).filter(|s| valid_name(s)).map(str::to_string),
    }
    .or_else(|| {
        let body = body.map(to_json)?;
        let reason = body.get("finish_reason")?.as_str()?;
        valid_name(reason).then(|| reason.to_string())
    });
    let events: Vec<&[KeyValue]> = events.collect();
    let output = output_text(attrs.own)
        .or_else(|| events.iter().find_map(|e| output_text(e)))
        .or_else(|| body.and_then(body_text));
    let r = Record {
        target: name("modelwatch.target")?,
        model,
        route,
        output,
        output_chars: None,
        output_tokens,
        finish_reason,
        latency_ms,
        timestamp_ms,
    };
    if r.target.is_none() && r.model.is_none() {
        return Err(err(
            "gen_ai.request.model",
            "missing: expected `gen_ai.request.model` (a configured target's model) or `modelwatch.target`".into(),
        ));
    }
    if r.output.is_none() && r.output_tokens.is_none() {
        return Err(err(
            "gen_ai.output.messages",
            "missing: expected the output (`gen_ai.output.messages`) or `gen_ai.usage.output_tokens`".into(),
        ));
    }
    Ok(r)
}

fn valid_name(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= MAX_NAME && !s.chars().any(char::is_control)
}

fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The output text among `attrs`: `gen_ai.output.messages` (a JSON string of messages with
/// text parts, or the same structure as attribute values), else `gen_ai.completion`.
fn output_text(attrs: &[KeyValue]) -> Option<String> {
    let get = |key: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    };
    if let Some(v) = get("gen_ai.output.messages") {
        let json = match v {
            Value::StringValue(s) => serde_json::from_str(s).ok(),
            other => Some(to_json(other)),
        };
        if let Some(text) = json.as_ref().and_then(messages_text) {
            return Some(text);
        }
    }
    match get("gen_ai.completion") {
        Some(Value::StringValue(s)) => Some(
            serde_json::from_str::<serde_json::Value>(s)
                .ok()
                .as_ref()
                .and_then(messages_text)
                .unwrap_or_else(|| s.clone()),
        ),
        _ => None,
    }
}

/// The text of a `gen_ai.choice` event body (`{message: {content}}`), or a plain string body.
fn body_text(body: &Value) -> Option<String> {
    match body {
        Value::StringValue(s) => Some(s.clone()),
        Value::KvlistValue(_) => {
            let json = to_json(body);
            json.pointer("/message/content")
                .and_then(content_text)
                .or_else(|| messages_text(&json))
        }
        _ => None,
    }
}

/// The assistant text of output messages: `[{role, parts: [{type: "text", content}]}]` (the
/// current GenAI conventions) or `[{role, content}]` (older ones), parts joined.
fn messages_text(v: &serde_json::Value) -> Option<String> {
    let messages: Vec<&serde_json::Value> = match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Object(_) => vec![v],
        _ => return None,
    };
    let mut texts = Vec::new();
    for m in messages {
        if let Some(parts) = m.get("parts").and_then(|p| p.as_array()) {
            for p in parts {
                let is_text = p.get("type").and_then(|t| t.as_str()) == Some("text");
                if let (true, Some(t)) = (is_text, p.get("content").and_then(|c| c.as_str())) {
                    texts.push(t.to_string());
                }
            }
        } else if let Some(t) = m.get("content").and_then(content_text) {
            texts.push(t);
        }
    }
    (!texts.is_empty()).then(|| texts.join("\n"))
}

fn content_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(_) => messages_text(&serde_json::json!([{ "parts": v }])),
        _ => None,
    }
}

/// An attribute value as JSON (maps for key-value lists, arrays for arrays).
fn to_json(v: &Value) -> serde_json::Value {
    let any = |a: &AnyValue| a.value.as_ref().map(to_json).unwrap_or_default();
    match v {
        Value::StringValue(s) => serde_json::Value::String(s.clone()),
        Value::BoolValue(b) => serde_json::Value::Bool(*b),
        Value::IntValue(i) => serde_json::Value::from(*i),
        Value::DoubleValue(d) => serde_json::Value::from(*d),
        Value::ArrayValue(a) => serde_json::Value::Array(a.values.iter().map(any).collect()),
        Value::KvlistValue(l) => serde_json::Value::Object(
            l.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map(any).unwrap_or_default();
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
        Value::BytesValue(_) | Value::StringValueStrindex(_) => serde_json::Value::Null,
    }
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;
