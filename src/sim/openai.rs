//! The OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions` (JSON or SSE with
//! `stream_options.include_usage`), `/v1/models` (with llama.cpp's `meta` and vLLM's `root`),
//! and llama.cpp's `/props`.

use super::model::{GenRequest, Outcome, Reply};
use super::server::{
    Api, EPOCH_SECS, Shared, Stop, StreamPlan, authorize, error_response, fault_response,
    json_reply, parameter_count, parse_body, reply_label, seed_of, stream_response, unknown_model,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

const API: Api = Api::OpenAi;

#[derive(Deserialize, Default)]
#[serde(default)]
struct StreamOptions {
    include_usage: bool,
}

/// Message content: a string or a list of parts (`{"type": "text", "text": …}`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    content: Option<Content>,
}

/// A completion prompt: one string or a list holding one string.
#[derive(Deserialize)]
#[serde(untagged)]
enum PromptSpec {
    One(String),
    Many(Vec<String>),
}

/// Fields shared by both generation endpoints (the rest is accepted and ignored:
/// temperature, top_p, n, …).
#[derive(Deserialize)]
struct Request {
    model: Option<String>,
    messages: Option<Vec<Message>>,
    prompt: Option<PromptSpec>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    stop: Option<Stop>,
    seed: Option<Value>,
    response_format: Option<Value>,
}

#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Completion,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Chat => "/v1/chat/completions",
            Kind::Completion => "/v1/completions",
        }
    }
}

pub(super) async fn chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, &headers, Kind::Chat, &body).await
}

pub(super) async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, &headers, Kind::Completion, &body).await
}

fn bad_request(shared: &Shared, ep: &'static str, message: &str) -> Response {
    shared.record(ep, "bad_request");
    error_response(
        API,
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
    )
}

/// The prompt as one text: chat messages as `role: content` lines.
fn prompt_of(kind: Kind, r: &Request) -> Result<String, &'static str> {
    match kind {
        Kind::Chat => {
            let messages = r
                .messages
                .as_ref()
                .filter(|m| !m.is_empty())
                .ok_or("`messages` must be a non-empty array")?;
            Ok(messages
                .iter()
                .map(|m| {
                    let content = match &m.content {
                        Some(Content::Text(t)) => t.clone(),
                        Some(Content::Parts(parts)) => parts
                            .iter()
                            .filter_map(|p| p.text.as_deref())
                            .collect::<Vec<_>>()
                            .join("\n"),
                        None => String::new(),
                    };
                    format!("{}: {content}", m.role)
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        Kind::Completion => match &r.prompt {
            Some(PromptSpec::One(p)) => Ok(p.clone()),
            Some(PromptSpec::Many(v)) if v.len() == 1 => Ok(v[0].clone()),
            Some(PromptSpec::Many(_)) => Err("only one prompt per request is supported"),
            None => Err("`prompt` is required"),
        },
    }
}

async fn handle(shared: &Shared, headers: &HeaderMap, kind: Kind, body: &[u8]) -> Response {
    let ep = kind.endpoint();
    let active = shared.active();
    if let Err(resp) = authorize(&active, headers, API) {
        shared.record(ep, "unauthorized");
        return resp;
    }
    let r: Request = match parse_body(API, body) {
        Ok(r) => r,
        Err(resp) => {
            shared.record(ep, "bad_request");
            return resp;
        }
    };
    let prompt = match prompt_of(kind, &r) {
        Ok(p) => p,
        Err(m) => return bad_request(shared, ep, m),
    };
    // Like llama.cpp, a request without `model` goes to the served model.
    let model = match r.model.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => active.profile.models.first().cloned().unwrap_or_default(),
    };
    if !active.profile.serves(&model) {
        shared.record(ep, "not_found");
        return unknown_model(API, &model);
    }
    let limit = r.max_completion_tokens.or(r.max_tokens);
    if limit.is_some_and(|m| m < 0) {
        return bad_request(shared, ep, "`max_tokens` must be at least 0");
    }
    let json_mode = r
        .response_format
        .as_ref()
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "json_object" || t == "json_schema");
    let stop = r.stop.map(Stop::into_vec).unwrap_or_default();
    let req = GenRequest {
        prompt: &prompt,
        max_tokens: limit.map(|m| m.min(u32::MAX as i64) as u32),
        stop: &stop,
        json_mode,
    };
    let reply = match shared.generate(&active, seed_of(r.seed.as_ref()), &req) {
        Outcome::Fault(fault) => {
            shared.record(ep, fault.label());
            return fault_response(shared, API, fault).await;
        }
        Outcome::Reply(reply) => reply,
    };
    shared.record(ep, reply_label(&reply));
    let fp = &active.profile.fingerprint.system_fingerprint;
    let env = Envelope {
        kind,
        model: &model,
        fingerprint: fp,
        reply: &reply,
    };
    if r.stream == Some(true) {
        let include_usage = r.stream_options.is_some_and(|o| o.include_usage);
        let plan = env.stream_plan(include_usage);
        stream_response(&active, API, &reply, plan)
    } else {
        json_reply(shared, &active, &reply, &env.full()).await
    }
}

/// What every chunk of one response repeats.
struct Envelope<'a> {
    kind: Kind,
    model: &'a str,
    fingerprint: &'a str,
    reply: &'a Reply,
}

impl Envelope<'_> {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    fn base(&self, chunk: bool, choices: Value) -> Value {
        let prefix = match self.kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        json!({
            "id": format!("{prefix}-{}", self.reply.id),
            "object": self.object(chunk),
            "created": EPOCH_SECS,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        })
    }

    fn usage(&self) -> Value {
        let (p, c) = (self.reply.prompt_tokens, self.reply.completion_tokens);
        json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
    }

    fn full(&self) -> Value {
        let r = self.reply;
        let choice = match self.kind {
            Kind::Chat => json!({
                "index": 0,
                "message": { "role": "assistant", "content": r.text, "refusal": null },
                "logprobs": null,
                "finish_reason": r.finish.as_str(),
            }),
            Kind::Completion => json!({
                "index": 0,
                "text": r.text,
                "logprobs": null,
                "finish_reason": r.finish.as_str(),
            }),
        };
        let mut v = self.base(false, json!([choice]));
        v["usage"] = self.usage();
        v
    }

    fn chunk(&self, delta: Option<Value>, text: &str, finish: Option<&str>, usage: bool) -> Bytes {
        let choice = match self.kind {
            Kind::Chat => json!({
                "index": 0,
                "delta": delta.unwrap_or_else(|| json!({ "content": text })),
                "logprobs": null,
                "finish_reason": finish,
            }),
            Kind::Completion => json!({
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": finish,
            }),
        };
        let mut v = self.base(true, json!([choice]));
        if usage {
            // With include_usage every chunk carries `usage: null` until the last.
            v["usage"] = Value::Null;
        }
        API.frame(&serde_json::to_vec(&v).unwrap_or_default())
    }

    fn stream_plan(&self, include_usage: bool) -> StreamPlan {
        let head = match self.kind {
            Kind::Chat => vec![self.chunk(
                Some(json!({ "role": "assistant", "content": "" })),
                "",
                None,
                include_usage,
            )],
            Kind::Completion => Vec::new(),
        };
        let body = super::text::pieces(&self.reply.text)
            .into_iter()
            .map(|piece| self.chunk(None, piece, None, include_usage))
            .collect();
        let finish = self.reply.finish.as_str();
        let mut tail = vec![self.chunk(Some(json!({})), "", Some(finish), include_usage)];
        if include_usage {
            let mut v = self.base(true, json!([]));
            v["usage"] = self.usage();
            tail.push(API.frame(&serde_json::to_vec(&v).unwrap_or_default()));
        }
        tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
        StreamPlan { head, body, tail }
    }
}

pub(super) async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let active = shared.active();
    if let Err(resp) = authorize(&active, &headers, API) {
        shared.record("/v1/models", "unauthorized");
        return resp;
    }
    shared.record("/v1/models", "ok");
    let p = &active.profile;
    let f = &p.fingerprint;
    let data: Vec<Value> = p
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m,
                "object": "model",
                "created": EPOCH_SECS,
                "owned_by": f.owned_by,
                "root": f.model_path,
                "parent": null,
                "max_model_len": f.context_length,
                "meta": {
                    "vocab_type": 2,
                    "n_vocab": 32000,
                    "n_ctx_train": f.context_length,
                    "n_params": parameter_count(&f.parameter_size),
                    "size": f.size,
                },
            })
        })
        .collect();
    // llama.cpp also lists models Ollama-style.
    let listed: Vec<Value> = p
        .models
        .iter()
        .map(|m| {
            json!({
                "name": m,
                "model": m,
                "modified_at": "",
                "size": "",
                "digest": f.digest,
                "type": "model",
                "description": "",
                "tags": [""],
                "capabilities": ["completion"],
                "parameters": "",
                "details": {
                    "parent_model": "",
                    "format": f.format,
                    "family": f.family,
                    "families": [f.family],
                    "parameter_size": f.parameter_size,
                    "quantization_level": f.quantization,
                },
            })
        })
        .collect();
    axum::Json(json!({ "object": "list", "data": data, "models": listed })).into_response()
}

pub(super) async fn props(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let active = shared.active();
    if let Err(resp) = authorize(&active, &headers, API) {
        shared.record("/props", "unauthorized");
        return resp;
    }
    shared.record("/props", "ok");
    let p = &active.profile;
    let f = &p.fingerprint;
    axum::Json(json!({
        "default_generation_settings": {
            "n_ctx": f.context_length,
            "params": { "n_predict": -1, "temperature": 0.8, "top_p": 0.95 },
        },
        "total_slots": p.server.total_slots,
        "model_path": f.model_path,
        "model_ftype": f.quantization,
        "chat_template": f.template,
        "modalities": { "vision": false, "audio": false },
        "build_info": p.server.build_info,
    }))
    .into_response()
}
