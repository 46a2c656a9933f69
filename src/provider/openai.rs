//! The OpenAI-compatible API as served by vLLM, llama.cpp server, TGI, LM Studio and OpenAI:
//! `/v1/chat/completions` (messages) and `/v1/completions` (prompt text, for base models),
//! buffered or streamed as server-sent events; fingerprint from `/v1/models` plus llama.cpp's
//! `/props` and TGI's `/info` when the server has them.
//!
//! Streaming asks for `stream_options.include_usage`; servers that ignore it, or that put
//! `usage` on the chunk carrying `finish_reason` (llama.cpp, TGI), are read the same way: the
//! last `usage` seen wins. A stream is complete at `data: [DONE]`, or at its end once a
//! `finish_reason` arrived; anything shorter is a truncated stream.

use super::http::{Body, Transport, parse_base_url, shorten};
use super::{
    Api, ClientConfig, CompletionRequest, Fingerprint, ModelClient, ProviderError, scalar,
};
use crate::sample::{Completion, ErrorKind, FinishReason, SampleError};
use crate::util::sha256_hex;
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Client for one model on one OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiClient {
    transport: Transport,
    model: String,
    api: Api,
    stream: bool,
    /// License evidence of the served file (`/props` `model_path`), read again only when the
    /// file changes.
    gguf: std::sync::Arc<super::license::GgufCache>,
}

impl OpenAiClient {
    /// `base_url` may be the server root or end in `/v1`; both reach the same endpoints.
    pub fn new(cfg: ClientConfig) -> Result<Self, ProviderError> {
        let mut root = parse_base_url(&cfg.base_url)?;
        if let Some(prefix) = root.path().strip_suffix("v1/").map(str::to_string) {
            root.set_path(&prefix);
        }
        let transport = Transport::new(&cfg, root)?;
        Ok(OpenAiClient {
            transport,
            model: cfg.model.trim().to_string(),
            api: cfg.api,
            stream: cfg.stream,
            gguf: Default::default(),
        })
    }

    async fn generate(&self, request: &CompletionRequest) -> Result<Completion, SampleError> {
        let stream = self.stream && request.stream;
        let path = match self.api {
            Api::Chat => "v1/chat/completions",
            Api::Completion => "v1/completions",
        };
        let payload = request_body(&self.model, self.api, request, stream);
        let mut body = self
            .transport
            .open(Method::POST, path, Some(&payload))
            .await?;
        let mut acc = Accumulator::default();
        let mut ttft_ms = None;
        if stream {
            while let Some(line) = body.line().await? {
                let data = match sse_field(&line) {
                    SseLine::Data(d) => d,
                    SseLine::Error(e) => {
                        return Err(body.error(
                            ErrorKind::MalformedBody,
                            format!("server reported an error mid-stream: {}", shorten(e)),
                        ));
                    }
                    SseLine::Other => continue,
                };
                if data.trim() == "[DONE]" {
                    acc.done = true;
                    break;
                }
                let reply: Reply = serde_json::from_str(data).map_err(|e| {
                    body.error(
                        ErrorKind::MalformedBody,
                        format!("stream chunk is not an OpenAI-compatible chunk: {e}"),
                    )
                })?;
                let content = acc
                    .push(reply, self.api, true)
                    .map_err(|m| body.error(ErrorKind::MalformedBody, m))?;
                if content && ttft_ms.is_none() {
                    ttft_ms = Some(body.elapsed_ms());
                }
            }
            if !acc.done && acc.finish.is_none() {
                return Err(body.error(
                    ErrorKind::MalformedBody,
                    "stream ended without `data: [DONE]` or a finish_reason (truncated stream)",
                ));
            }
        } else {
            let reply: Reply = body.json().await?;
            acc.push(reply, self.api, false)
                .map_err(|m| body.error(ErrorKind::MalformedBody, m))?;
        }
        Ok(acc.finish(&body, ttft_ms))
    }

    async fn read_fingerprint(&self) -> Result<Fingerprint, SampleError> {
        let mut body = self.transport.open_first(Method::GET, "v1/models").await?;
        let models: Value = body.json().await?;
        let (entry, served_id) =
            find_model(&models, &self.model).map_err(|m| body.error(ErrorKind::HttpStatus, m))?;
        let entry = entry.clone();
        drop(body);

        let props = self.optional_json("props").await?;
        let info = self.optional_json("info").await?;
        let mut fp = fingerprint_from(
            &self.model,
            &entry,
            served_id,
            props.as_ref(),
            info.as_ref(),
        );
        // llama.cpp: the served file's GGUF header, when the file is readable on this host.
        if let Some(path) = props
            .as_ref()
            .and_then(|p| p.get("model_path"))
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            let path = std::path::PathBuf::from(path);
            let gguf = self.gguf.clone();
            if let Ok(ev) = tokio::task::spawn_blocking(move || gguf.read(&path)).await {
                ev.insert_into(&mut fp.details);
            }
        }
        Ok(fp)
    }

    /// A server-specific endpoint (llama.cpp `/props`, TGI `/info`): a 4xx other than 429 means
    /// this server does not have it (or protects it) and it is simply absent.
    async fn optional_json(&self, path: &str) -> Result<Option<Value>, SampleError> {
        match self.transport.open(Method::GET, path, None).await {
            Ok(mut body) => Ok(Some(body.json().await?)),
            Err(e)
                if e.status
                    .is_some_and(|s| (400..500).contains(&s) && s != 429) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl ModelClient for OpenAiClient {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(self.generate(request))
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(self.read_fingerprint())
    }
}

/// The JSON request body: `messages` for chat, `prompt` for completions; only the parameters
/// that are set; `stream_options.include_usage` when streaming.
pub fn request_body(model: &str, api: Api, request: &CompletionRequest, stream: bool) -> Value {
    let p = &request.params;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    match api {
        Api::Chat => {
            let messages: Vec<Value> = request
                .input
                .messages()
                .iter()
                .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
                .collect();
            body.insert("messages".into(), json!(messages));
        }
        Api::Completion => {
            body.insert("prompt".into(), json!(request.input.text()));
        }
    }
    if let Some(n) = p.max_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    if let Some(t) = p.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.top_p {
        body.insert("top_p".into(), json!(t));
    }
    if let Some(s) = p.seed {
        body.insert("seed".into(), json!(s));
    }
    if let Some(stop) = &p.stop {
        body.insert("stop".into(), json!(stop));
    }
    body.insert("stream".into(), json!(stream));
    if stream {
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Value::Object(body)
}

/// What one line of a server-sent event stream carries. Every OpenAI-compatible server sends
/// one JSON chunk per `data:` line, so each such line is handled on its own.
#[derive(Debug, PartialEq)]
enum SseLine<'a> {
    Data(&'a str),
    /// llama.cpp reports some failures as an `error:` field.
    Error(&'a str),
    /// Blank lines, comments, `event:`, `id:`, `retry:`.
    Other,
}

fn sse_field(line: &str) -> SseLine<'_> {
    let (field, value) = match line.split_once(':') {
        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
        None => (line, ""),
    };
    match field {
        "data" => SseLine::Data(value),
        "error" => SseLine::Error(value),
        _ => SseLine::Other,
    }
}

/// A whole response or one stream chunk.
#[derive(Debug, Deserialize)]
struct Reply {
    model: Option<String>,
    system_fingerprint: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    index: Option<u32>,
    message: Option<ChatMessage>,
    delta: Option<ChatMessage>,
    /// `/v1/completions` puts the text here.
    text: Option<String>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

/// Folds a response, or the chunks of a stream, into one completion (first choice only).
#[derive(Debug, Default)]
struct Accumulator {
    text: String,
    refusal: String,
    finish: Option<FinishReason>,
    output_tokens: Option<u32>,
    input_tokens: Option<u32>,
    model: Option<String>,
    system_fingerprint: Option<String>,
    /// `data: [DONE]` arrived.
    done: bool,
}

impl Accumulator {
    /// Adds one response or chunk; returns whether it carried generated text.
    fn push(&mut self, reply: Reply, api: Api, streaming: bool) -> Result<bool, String> {
        if let Some(err) = reply.error {
            let msg = match &err {
                Value::String(s) => s.clone(),
                other => other
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| other.to_string()),
            };
            return Err(format!("server reported an error: {}", shorten(&msg)));
        }
        if let Some(m) = reply.model.filter(|m| !m.is_empty()) {
            self.model = Some(m);
        }
        if let Some(f) = reply.system_fingerprint.filter(|f| !f.is_empty()) {
            self.system_fingerprint = Some(f);
        }
        if let Some(u) = reply.usage {
            self.output_tokens = u.completion_tokens.or(self.output_tokens);
            self.input_tokens = u.prompt_tokens.or(self.input_tokens);
        }
        let choices = reply.choices.unwrap_or_default();
        let Some(choice) = choices.into_iter().find(|c| c.index.unwrap_or(0) == 0) else {
            if streaming {
                // The usage chunk has no choices.
                return Ok(false);
            }
            return Err("response has no choices (not an OpenAI-compatible response)".into());
        };
        if let Some(r) = choice.finish_reason.filter(|r| !r.is_empty()) {
            self.finish = Some(FinishReason::parse(&r));
        }
        let (content, refusal) = match (api, streaming) {
            (Api::Completion, _) => match choice.text {
                Some(t) => (Some(t), None),
                None if streaming => (None, None),
                None => return Err("choice has no `text` (not a completions response)".into()),
            },
            (Api::Chat, true) => match choice.delta {
                Some(d) => (d.content, d.refusal),
                None => (None, None),
            },
            (Api::Chat, false) => match choice.message {
                Some(m) => (m.content, m.refusal),
                None => return Err("choice has no `message` (not a chat response)".into()),
            },
        };
        let mut produced = false;
        if let Some(c) = content {
            produced |= !c.is_empty();
            self.text.push_str(&c);
        }
        if let Some(r) = refusal {
            produced |= !r.is_empty();
            self.refusal.push_str(&r);
        }
        Ok(produced)
    }

    fn finish(self, body: &Body<'_>, ttft_ms: Option<f64>) -> Completion {
        Completion {
            text: self.text,
            refusal: (!self.refusal.is_empty()).then_some(self.refusal),
            finish_reason: self.finish,
            output_tokens: self.output_tokens,
            input_tokens: self.input_tokens,
            response_model: self.model,
            system_fingerprint: self.system_fingerprint,
            latency_ms: body.elapsed_ms(),
            ttft_ms,
            attempts: body.attempts(),
        }
    }
}

/// The `/v1/models` entry for `model`. Single-model servers (llama.cpp, TGI) answer whatever
/// name is asked for, so when the name is not listed and exactly one model is, that one is
/// served; its id is returned too so the fingerprint records it.
fn find_model<'v>(models: &'v Value, model: &str) -> Result<(&'v Value, Option<String>), String> {
    let Some(data) = models.get("data").and_then(Value::as_array) else {
        return Err("/v1/models has no `data` list (is this an OpenAI-compatible server?)".into());
    };
    let id = |e: &Value| e.get("id").and_then(Value::as_str).map(str::to_string);
    if let Some(e) = data.iter().find(|e| id(e).as_deref() == Some(model)) {
        return Ok((e, None));
    }
    match data.as_slice() {
        [only] => Ok((only, id(only))),
        _ => {
            let listed: Vec<String> = data.iter().filter_map(id).take(20).collect();
            Err(format!(
                "model {model:?} is not served here (/v1/models lists: {}); fix the target's model",
                if listed.is_empty() {
                    "nothing".to_string()
                } else {
                    listed.join(", ")
                }
            ))
        }
    }
}

/// The fingerprint from the `/v1/models` entry (vLLM `root` / `max_model_len`, llama.cpp
/// `meta`), llama.cpp's `/props` and TGI's `/info` when present. Per-call values (`created`,
/// slots) are left out so the same model always gives the same fingerprint.
fn fingerprint_from(
    model: &str,
    entry: &Value,
    served_id: Option<String>,
    props: Option<&Value>,
    info: Option<&Value>,
) -> Fingerprint {
    let mut details = BTreeMap::new();
    if let Some(id) = served_id {
        details.insert("served_id".to_string(), id);
    }
    for key in ["owned_by", "root", "parent", "max_model_len"] {
        if let Some(v) = entry.get(key).and_then(scalar) {
            details.insert(key.to_string(), v);
        }
    }
    if let Some(meta) = entry.get("meta") {
        for key in ["n_params", "size", "n_ctx_train", "n_vocab"] {
            if let Some(v) = meta.get(key).and_then(scalar) {
                details.insert(key.to_string(), v);
            }
        }
    }
    let mut digest = details.get("root").cloned();
    // Servers other than llama.cpp may answer /props with 200 and an error object (LM Studio):
    // only a body with llama.cpp's fields counts.
    if let Some(p) = props.filter(|p| {
        ["model_path", "chat_template", "build_info"]
            .iter()
            .any(|k| p.get(k).is_some())
    }) {
        let file = p
            .get("model_path")
            .and_then(Value::as_str)
            .and_then(|path| path.rsplit(['/', '\\']).next())
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        let ftype = p.get("model_ftype").and_then(scalar);
        if let Some(f) = &file {
            details.insert("model_file".to_string(), f.clone());
            digest = Some(match &ftype {
                Some(t) => format!("{f} ({t})"),
                None => f.clone(),
            });
        }
        if let Some(t) = ftype {
            details.insert("model_ftype".to_string(), t);
        }
        if let Some(t) = p.get("chat_template").and_then(Value::as_str) {
            details.insert("chat_template_sha256".to_string(), sha256_hex(t.as_bytes()));
        }
        if let Some(b) = p.get("build_info").and_then(scalar) {
            details.insert("build_info".to_string(), b);
        }
        if let Some(settings) = p.get("default_generation_settings") {
            config_from_props(settings, &mut details);
        }
    }
    // TGI: the Hub revision of the weights is the strongest identity it offers.
    if let Some(i) = info.filter(|i| i.get("model_id").is_some()) {
        for (from, to) in [
            ("model_sha", "model_sha"),
            ("model_dtype", "model_dtype"),
            ("version", "server_version"),
        ] {
            if let Some(v) = i.get(from).and_then(scalar) {
                details.insert(to.to_string(), v);
            }
        }
        if let Some(sha) = details.get("model_sha") {
            digest = Some(sha.clone());
        }
    }
    Fingerprint {
        provider: "openai".into(),
        model: model.to_string(),
        digest,
        details,
    }
}

/// llama.cpp's `default_generation_settings`: the sampling defaults every request gets for
/// what it does not send (`params`), and the per-slot context (`n_ctx`). Scalars are kept as
/// text, lists (the sampler chain) as compact JSON; nested objects are left out.
fn config_from_props(settings: &Value, details: &mut BTreeMap<String, String>) {
    if let Some(n) = settings.get("n_ctx").and_then(scalar) {
        super::insert_config(details, "n_ctx", n);
    }
    let Some(params) = settings.get("params").and_then(Value::as_object) else {
        return;
    };
    for (key, v) in params {
        let text = match v {
            Value::Bool(b) => Some(b.to_string()),
            Value::Array(_) => serde_json::to_string(v).ok(),
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Null | Value::Object(_) => None,
        };
        if let Some(text) = text {
            super::insert_config(details, key, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{GenParams, ProbeInput};

    fn request(input: ProbeInput, params: GenParams) -> CompletionRequest {
        CompletionRequest {
            input,
            params,
            stream: true,
        }
    }

    #[test]
    fn chat_body_sends_only_set_parameters_and_asks_for_usage_when_streaming() {
        let params = GenParams {
            temperature: Some(0.2),
            max_tokens: Some(32),
            seed: Some(7),
            stop: Some(vec!["\n".into()]),
            ..GenParams::default()
        };
        let body = request_body(
            "m",
            Api::Chat,
            &request(ProbeInput::Prompt("hi".into()), params),
            true,
        );
        assert_eq!(
            body,
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":32,
                   "temperature":0.2,"seed":7,"stop":["\n"],"stream":true,
                   "stream_options":{"include_usage":true}})
        );
    }

    #[test]
    fn completion_body_sends_prompt_text_without_stream_options_when_buffered() {
        let body = request_body(
            "base",
            Api::Completion,
            &request(
                ProbeInput::Prompt("Once upon a time".into()),
                GenParams::default(),
            ),
            false,
        );
        assert_eq!(
            body,
            json!({"model":"base","prompt":"Once upon a time","stream":false})
        );
    }

    #[test]
    fn sse_lines_are_classified() {
        assert_eq!(sse_field("data: {\"a\":1}"), SseLine::Data("{\"a\":1}"));
        assert_eq!(sse_field("data:[DONE]"), SseLine::Data("[DONE]"));
        assert_eq!(sse_field("error: boom"), SseLine::Error("boom"));
        assert_eq!(sse_field(": keep-alive"), SseLine::Other);
        assert_eq!(sse_field("event: message"), SseLine::Other);
        assert_eq!(sse_field(""), SseLine::Other);
    }

    fn reply(v: Value) -> Reply {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn stream_chunks_fold_with_usage_in_a_trailing_chunk_or_the_final_choice() {
        // OpenAI / vLLM: usage in a last chunk without choices.
        let mut a = Accumulator::default();
        a.push(reply(json!({"model":"m","system_fingerprint":"fp1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})), Api::Chat, true).unwrap();
        assert!(
            a.push(
                reply(json!({"choices":[{"index":0,"delta":{"content":"Hi"}}]})),
                Api::Chat,
                true
            )
            .unwrap()
        );
        a.push(
            reply(json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})),
            Api::Chat,
            true,
        )
        .unwrap();
        a.push(
            reply(json!({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}})),
            Api::Chat,
            true,
        )
        .unwrap();
        assert_eq!(a.text, "Hi");
        assert_eq!(a.finish, Some(FinishReason::Stop));
        assert_eq!((a.input_tokens, a.output_tokens), (Some(5), Some(1)));
        assert_eq!(a.system_fingerprint.as_deref(), Some("fp1"));
        // llama.cpp / TGI: usage on the chunk with finish_reason.
        let mut b = Accumulator::default();
        b.push(
            reply(json!({"choices":[{"index":0,"text":"Once"}]})),
            Api::Completion,
            true,
        )
        .unwrap();
        b.push(reply(json!({"choices":[{"index":0,"text":"","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":9}})), Api::Completion, true).unwrap();
        assert_eq!(b.text, "Once");
        assert_eq!(b.finish, Some(FinishReason::Length));
        assert_eq!(b.output_tokens, Some(9));
    }

    #[test]
    fn buffered_responses_need_their_shape_and_keep_the_refusal_field() {
        let mut a = Accumulator::default();
        a.push(reply(json!({"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]})), Api::Chat, false).unwrap();
        assert_eq!(a.refusal, "I can't help with that.");
        let e = Accumulator::default()
            .push(
                reply(json!({"id":"x","object":"chat.completion"})),
                Api::Chat,
                false,
            )
            .unwrap_err();
        assert!(e.contains("no choices"), "{e}");
        let e = Accumulator::default()
            .push(
                reply(json!({"choices":[{"index":0,"text":"x"}]})),
                Api::Chat,
                false,
            )
            .unwrap_err();
        assert!(e.contains("no `message`"), "{e}");
        let e = Accumulator::default()
            .push(
                reply(json!({"error":{"message":"context length exceeded"}})),
                Api::Chat,
                true,
            )
            .unwrap_err();
        assert!(e.contains("context length exceeded"), "{e}");
    }

    #[test]
    fn model_lookup_falls_back_to_the_only_model_and_rejects_unknown_names_otherwise() {
        let one = json!({"object":"list","data":[{"id":"/models/gemma.gguf","object":"model"}]});
        let (e, served) = find_model(&one, "anything").unwrap();
        assert_eq!(e["id"], "/models/gemma.gguf");
        assert_eq!(served.as_deref(), Some("/models/gemma.gguf"));
        let two = json!({"data":[{"id":"a"},{"id":"b"}]});
        assert_eq!(find_model(&two, "b").unwrap().1, None);
        let err = find_model(&two, "c").unwrap_err();
        assert!(err.contains("\"c\"") && err.contains("a, b"), "{err}");
        assert!(find_model(&json!({"models": []}), "a").is_err());
    }

    #[test]
    fn fingerprint_ignores_per_call_values_and_lm_studio_style_error_props() {
        let entry = json!({"id":"Qwen/Qwen2.5-7B-Instruct","created":1,"owned_by":"vllm",
                           "root":"/models/qwen","max_model_len":32768});
        let later = json!({"id":"Qwen/Qwen2.5-7B-Instruct","created":2,"owned_by":"vllm",
                           "root":"/models/qwen","max_model_len":32768});
        let a = fingerprint_from("m", &entry, None, None, None);
        assert_eq!(a.digest.as_deref(), Some("/models/qwen"));
        assert_eq!(a.details["max_model_len"], "32768");
        assert_eq!(a.id(), fingerprint_from("m", &later, None, None, None).id());
        let lm = json!({"error":"Unexpected endpoint or method. (GET /props)"});
        assert_eq!(a, fingerprint_from("m", &entry, None, Some(&lm), Some(&lm)));
    }

    /// `/props` of llama-server (shortened), started plain and with `--repeat-penalty 1.5`.
    fn props(repeat_penalty: f64, n_ctx: u64) -> Value {
        json!({
            "default_generation_settings": {
                "params": {"seed": 4294967295u64, "temperature": 0.800000011920929,
                    "top_k": 40, "top_p": 0.949999988079071, "min_p": 0.05000000074505806,
                    "repeat_last_n": 64, "repeat_penalty": repeat_penalty,
                    "presence_penalty": 0.0, "ignore_eos": false, "chat_format": "Content-only",
                    "samplers": ["penalties", "dry", "top_k", "top_p", "min_p", "temperature"],
                    "lora": [], "nested": {"ignored": 1}},
                "n_ctx": n_ctx
            },
            "total_slots": 2, "model_alias": "gemma-3-270m", "model_ftype": "Q4_K - Medium",
            "model_path": "/models/gemma-3-270m-q4_k_m.gguf", "chat_template": "gemma",
            "media_marker": "<__media_random__>", "build_info": "b0-unknown"
        })
    }

    #[test]
    fn llama_cpp_sampling_defaults_change_the_config_digest_not_the_model_fingerprint() {
        let entry = json!({"id":"gemma-3-270m","object":"model","owned_by":"llamacpp",
                           "meta":{"n_params":268098176,"n_vocab":262144}});
        let plain = fingerprint_from("m", &entry, None, Some(&props(1.0, 1024)), None);
        let config = plain.config();
        assert_eq!(config["repeat_penalty"], "1.0");
        assert_eq!(config["top_k"], "40");
        assert_eq!(config["n_ctx"], "1024");
        assert_eq!(config["ignore_eos"], "false");
        assert_eq!(
            config["samplers"],
            r#"["penalties","dry","top_k","top_p","min_p","temperature"]"#
        );
        assert!(!config.contains_key("nested"), "{config:?}");
        assert!(
            !config.contains_key("total_slots"),
            "per-server, not sampling"
        );
        let digest = plain
            .config_digest()
            .expect("llama.cpp publishes its defaults");
        // Read again: the same digest and id.
        let again = fingerprint_from("m", &entry, None, Some(&props(1.0, 1024)), None);
        assert_eq!(
            (again.id(), again.config_digest()),
            (plain.id(), Some(digest.clone()))
        );

        let penalised = fingerprint_from("m", &entry, None, Some(&props(1.5, 1024)), None);
        assert_eq!(
            penalised.id(),
            plain.id(),
            "same weights, same model fingerprint"
        );
        assert_ne!(penalised.config_digest().unwrap(), digest);
        let shrunk = fingerprint_from("m", &entry, None, Some(&props(1.0, 256)), None);
        assert_eq!(shrunk.id(), plain.id());
        assert_ne!(
            shrunk.config_digest().unwrap(),
            digest,
            "a smaller slot context"
        );

        // A server without the settings (an older build, a gateway): no configuration at all.
        let mut bare = props(1.0, 1024);
        bare.as_object_mut()
            .unwrap()
            .remove("default_generation_settings");
        let bare = fingerprint_from("m", &entry, None, Some(&bare), None);
        assert_eq!(bare.config_digest(), None);
        assert_eq!(bare.id(), plain.id());
    }

    #[test]
    fn fingerprint_from_tgi_info_uses_the_model_revision() {
        let entry = json!({"id":"meta-llama/Llama-3.1-8B-Instruct","object":"model","created":0,
                           "owned_by":"meta-llama/Llama-3.1-8B-Instruct"});
        let info = json!({"model_id":"meta-llama/Llama-3.1-8B-Instruct",
            "model_sha":"0e9e39f249a16976918f6564b8830bc894c89659","model_dtype":"torch.bfloat16",
            "model_device_type":"cuda","max_input_tokens":4095,"version":"3.0.1","sha":"abc"});
        let fp = fingerprint_from("tgi", &entry, None, None, Some(&info));
        assert_eq!(
            fp.digest.as_deref(),
            Some("0e9e39f249a16976918f6564b8830bc894c89659")
        );
        assert_eq!(fp.details["model_dtype"], "torch.bfloat16");
        assert_eq!(fp.details["server_version"], "3.0.1");
    }
}
