//! Ollama's native API: `/api/chat` (messages) and `/api/generate` with `raw` (plain completion
//! for base models), buffered (`"stream": false`) or streamed as NDJSON; fingerprint from
//! `/api/tags`, `/api/show` and `/api/version`.

use super::http::{Body, Transport, parse_base_url};
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

/// Client for one model on one Ollama server.
#[derive(Debug)]
pub struct OllamaClient {
    transport: Transport,
    model: String,
    api: Api,
    stream: bool,
}

impl OllamaClient {
    pub fn new(cfg: ClientConfig) -> Result<Self, ProviderError> {
        let root = parse_base_url(&cfg.base_url)?;
        let transport = Transport::new(&cfg, root)?;
        Ok(OllamaClient {
            transport,
            model: cfg.model.trim().to_string(),
            api: cfg.api,
            stream: cfg.stream,
        })
    }

    async fn generate(&self, request: &CompletionRequest) -> Result<Completion, SampleError> {
        let stream = self.stream && request.stream;
        let path = match self.api {
            Api::Chat => "api/chat",
            Api::Completion => "api/generate",
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
                if line.trim().is_empty() {
                    continue;
                }
                let reply: Reply = serde_json::from_str(&line).map_err(|e| {
                    body.error(
                        ErrorKind::MalformedBody,
                        format!("stream line is not an Ollama reply: {e}"),
                    )
                })?;
                let content = acc
                    .push(reply, self.api)
                    .map_err(|m| body.error(ErrorKind::MalformedBody, m))?;
                if content && ttft_ms.is_none() {
                    ttft_ms = Some(body.elapsed_ms());
                }
                if acc.done {
                    break;
                }
            }
            if !acc.done {
                return Err(body.error(
                    ErrorKind::MalformedBody,
                    "stream ended before the final `done` message (truncated stream)",
                ));
            }
        } else {
            let reply: Reply = body.json().await?;
            acc.push(reply, self.api)
                .map_err(|m| body.error(ErrorKind::MalformedBody, m))?;
        }
        Ok(acc.finish(&body, ttft_ms))
    }

    async fn read_fingerprint(&self) -> Result<Fingerprint, SampleError> {
        let mut body = self.transport.open_first(Method::GET, "api/tags").await?;
        let tags: Value = body.json().await?;
        let entry = find_model(&tags, &self.model)
            .map_err(|m| body.error(ErrorKind::HttpStatus, m))?
            .clone();
        drop(body);

        let mut body = self
            .transport
            .open(
                Method::POST,
                "api/show",
                Some(&json!({ "model": self.model })),
            )
            .await?;
        let show: Value = body.json().await?;
        drop(body);

        let version = match self.transport.open(Method::GET, "api/version", None).await {
            Ok(mut body) => {
                let v: Value = body.json().await?;
                v.get("version").and_then(scalar)
            }
            Err(e) if e.status == Some(404) => None,
            Err(e) => return Err(e),
        };
        let mut fp = fingerprint_from(&self.model, &entry, &show, version);
        super::license::from_ollama_show(&show).insert_into(&mut fp.details);
        Ok(fp)
    }
}

impl ModelClient for OllamaClient {
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

/// The JSON request body: messages for `/api/chat`, raw prompt text for `/api/generate`, and the
/// generation parameters as Ollama `options` (`max_tokens` becomes `num_predict`).
pub fn request_body(model: &str, api: Api, request: &CompletionRequest, stream: bool) -> Value {
    let p = &request.params;
    let mut options = Map::new();
    if let Some(t) = p.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.top_p {
        options.insert("top_p".into(), json!(t));
    }
    if let Some(n) = p.max_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if let Some(s) = p.seed {
        options.insert("seed".into(), json!(s));
    }
    if let Some(stop) = &p.stop {
        options.insert("stop".into(), json!(stop));
    }
    match api {
        Api::Chat => {
            let messages: Vec<Value> = request
                .input
                .messages()
                .iter()
                .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
                .collect();
            json!({ "model": model, "messages": messages, "stream": stream, "options": options })
        }
        Api::Completion => json!({
            "model": model,
            "prompt": request.input.text(),
            "raw": true,
            "stream": stream,
            "options": options,
        }),
    }
}

/// One reply object: the whole buffered body, or one NDJSON line of a stream.
#[derive(Debug, Deserialize)]
struct Reply {
    model: Option<String>,
    message: Option<ReplyMessage>,
    /// `/api/generate` puts the text here.
    response: Option<String>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    eval_count: Option<u32>,
    prompt_eval_count: Option<u32>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: String,
}

/// Folds replies into one completion.
#[derive(Debug, Default)]
struct Accumulator {
    text: String,
    model: Option<String>,
    finish: Option<FinishReason>,
    output_tokens: Option<u32>,
    input_tokens: Option<u32>,
    done: bool,
}

impl Accumulator {
    /// Adds one reply; returns whether it carried generated text. A reply without the text
    /// field (unless it is the final `done` one) or with an `error` is a broken body.
    fn push(&mut self, reply: Reply, api: Api) -> Result<bool, String> {
        if let Some(err) = reply.error {
            let msg = match err {
                Value::String(s) => s,
                other => other.to_string(),
            };
            return Err(format!(
                "server reported an error: {}",
                super::http::shorten(&msg)
            ));
        }
        let piece = match api {
            Api::Chat => reply.message.map(|m| m.content),
            Api::Completion => reply.response,
        };
        let Some(piece) = piece.or_else(|| reply.done.then(String::new)) else {
            let field = match api {
                Api::Chat => "message.content",
                Api::Completion => "response",
            };
            return Err(format!("reply has no `{field}` (not an Ollama reply)"));
        };
        self.text.push_str(&piece);
        if reply.model.is_some() {
            self.model = reply.model;
        }
        if let Some(r) = reply.done_reason.filter(|r| !r.is_empty()) {
            self.finish = Some(FinishReason::parse(&r));
        }
        self.output_tokens = reply.eval_count.or(self.output_tokens);
        self.input_tokens = reply.prompt_eval_count.or(self.input_tokens);
        self.done |= reply.done;
        Ok(!piece.is_empty())
    }

    fn finish(self, body: &Body<'_>, ttft_ms: Option<f64>) -> Completion {
        Completion {
            text: self.text,
            refusal: None,
            finish_reason: self.finish,
            output_tokens: self.output_tokens,
            input_tokens: self.input_tokens,
            response_model: self.model,
            system_fingerprint: None,
            latency_ms: body.elapsed_ms(),
            ttft_ms,
            attempts: body.attempts(),
        }
    }
}

/// The `/api/tags` entry of `model`. A name without a tag means `:latest`, as in Ollama.
fn find_model<'v>(tags: &'v Value, model: &str) -> Result<&'v Value, String> {
    let Some(models) = tags.get("models").and_then(Value::as_array) else {
        return Err("/api/tags has no `models` list (is this an Ollama server?)".into());
    };
    let with_tag = if model.contains(':') {
        model.to_string()
    } else {
        format!("{model}:latest")
    };
    let names = |e: &'v Value| {
        ["name", "model"]
            .into_iter()
            .filter_map(move |k| e.get(k).and_then(Value::as_str))
    };
    models
        .iter()
        .find(|e| names(e).any(|n| n == model || n == with_tag))
        .ok_or_else(|| {
            let available: Vec<&str> = models
                .iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str))
                .take(20)
                .collect();
            format!(
                "model {model:?} is not on this Ollama server (/api/tags lists: {}); pull it \
                 with `ollama pull {model}` or fix the target's model",
                if available.is_empty() {
                    "nothing".to_string()
                } else {
                    available.join(", ")
                }
            )
        })
}

/// The fingerprint from the model's `/api/tags` entry, its `/api/show` answer and the server
/// version. Hashes stand in for the template, parameters and system prompt (long texts).
fn fingerprint_from(
    model: &str,
    entry: &Value,
    show: &Value,
    version: Option<String>,
) -> Fingerprint {
    let mut details = BTreeMap::new();
    if let Some(size) = entry.get("size").and_then(scalar) {
        details.insert("size".to_string(), size);
    }
    if let Some(d) = entry.get("details") {
        for key in ["format", "family", "parameter_size", "quantization_level"] {
            if let Some(v) = d.get(key).and_then(scalar) {
                details.insert(key.to_string(), v);
            }
        }
    }
    for key in ["template", "parameters", "system"] {
        if let Some(text) = show.get(key).and_then(Value::as_str) {
            details.insert(format!("{key}_sha256"), sha256_hex(text.as_bytes()));
        }
    }
    if let Some(text) = show.get("parameters").and_then(Value::as_str) {
        config_from_parameters(text, &mut details);
    }
    if let Some(v) = version {
        details.insert("server_version".to_string(), v);
    }
    Fingerprint {
        provider: "ollama".into(),
        model: model.to_string(),
        digest: entry.get("digest").and_then(scalar),
        details,
    }
}

/// Ollama's `parameters`: one `name value` per line (the model's `PARAMETER` lines; `stop` may
/// repeat). Values of a repeated name are kept in order, joined by a comma.
fn config_from_parameters(text: &str, details: &mut BTreeMap<String, String>) {
    let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in text.lines().take(super::CONFIG_ENTRIES * 4) {
        if let Some((name, value)) = line.trim().split_once(char::is_whitespace) {
            values.entry(name).or_default().push(value.trim());
        }
    }
    for (name, v) in values {
        super::insert_config(details, name, v.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{GenParams, Message, ProbeInput, Role};

    fn request(input: ProbeInput, params: GenParams) -> CompletionRequest {
        CompletionRequest {
            input,
            params,
            stream: true,
        }
    }

    #[test]
    fn chat_body_maps_parameters_to_options() {
        let params = GenParams {
            temperature: Some(0.7),
            top_p: Some(0.9),
            max_tokens: Some(64),
            seed: Some(42),
            stop: Some(vec!["\n".into()]),
        };
        let input = ProbeInput::Messages(vec![
            Message {
                role: Role::System,
                content: "be brief".into(),
            },
            Message {
                role: Role::User,
                content: "hi".into(),
            },
        ]);
        let body = request_body("m:7b", Api::Chat, &request(input, params), false);
        assert_eq!(
            body,
            json!({
                "model": "m:7b",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"}
                ],
                "stream": false,
                "options": {"temperature": 0.7, "top_p": 0.9, "num_predict": 64, "seed": 42, "stop": ["\n"]}
            })
        );
    }

    #[test]
    fn completion_body_is_raw_prompt_with_only_set_options() {
        let params = GenParams {
            max_tokens: Some(8),
            ..GenParams::default()
        };
        let body = request_body(
            "base",
            Api::Completion,
            &request(ProbeInput::Prompt("Once upon".into()), params),
            true,
        );
        assert_eq!(
            body,
            json!({"model": "base", "prompt": "Once upon", "raw": true, "stream": true,
                   "options": {"num_predict": 8}})
        );
    }

    fn reply(v: Value) -> Reply {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn accumulator_folds_a_stream_and_reads_usage_from_the_last_line() {
        let mut acc = Accumulator::default();
        assert!(
            acc.push(
                reply(
                    json!({"model":"m","message":{"role":"assistant","content":"Hel"},"done":false})
                ),
                Api::Chat
            )
            .unwrap()
        );
        assert!(
            !acc.push(
                reply(
                    json!({"model":"m","message":{"role":"assistant","content":""},"done":false})
                ),
                Api::Chat
            )
            .unwrap()
        );
        acc.push(
            reply(json!({"model":"m","message":{"content":"lo"},"done":false})),
            Api::Chat,
        )
        .unwrap();
        acc.push(
            reply(
                json!({"model":"m","message":{"content":""},"done":true,"done_reason":"length",
                         "eval_count":7,"prompt_eval_count":3}),
            ),
            Api::Chat,
        )
        .unwrap();
        assert!(acc.done);
        assert_eq!(acc.text, "Hello");
        assert_eq!(acc.finish, Some(FinishReason::Length));
        assert_eq!((acc.output_tokens, acc.input_tokens), (Some(7), Some(3)));
    }

    #[test]
    fn wrong_shapes_and_error_lines_are_rejected() {
        let mut acc = Accumulator::default();
        let e = acc.push(reply(json!({"foo": 1})), Api::Chat).unwrap_err();
        assert!(e.contains("message.content"), "{e}");
        let e = acc
            .push(reply(json!({"message": {"content": "x"}})), Api::Completion)
            .unwrap_err();
        assert!(e.contains("`response`"), "{e}");
        let e = acc
            .push(reply(json!({"error": "model runner crashed"})), Api::Chat)
            .unwrap_err();
        assert!(e.contains("model runner crashed"), "{e}");
    }

    #[test]
    fn model_lookup_accepts_the_implicit_latest_tag_and_names_the_alternatives() {
        let tags = json!({"models": [
            {"name": "llama3:latest", "model": "llama3:latest", "digest": "aa"},
            {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "digest": "bb"}
        ]});
        assert_eq!(find_model(&tags, "llama3").unwrap()["digest"], "aa");
        assert_eq!(find_model(&tags, "qwen2.5:7b").unwrap()["digest"], "bb");
        let e = find_model(&tags, "mistral").unwrap_err();
        assert!(e.contains("\"mistral\"") && e.contains("qwen2.5:7b"), "{e}");
        assert!(find_model(&json!({"data": []}), "x").is_err());
    }

    #[test]
    fn fingerprint_hashes_template_and_parameters_and_keeps_the_version() {
        let entry = json!({"name":"m:1","digest":"d1","size":123,
            "details":{"format":"gguf","family":"qwen2","parameter_size":"7.6B","quantization_level":"Q4_K_M"}});
        let show = json!({"template":"{{ .Prompt }}","parameters":"stop \"<|im_end|>\""});
        let fp = fingerprint_from("m:1", &entry, &show, Some("0.5.1".into()));
        assert_eq!(fp.digest.as_deref(), Some("d1"));
        assert_eq!(fp.details["size"], "123");
        assert_eq!(fp.details["quantization_level"], "Q4_K_M");
        assert_eq!(fp.details["template_sha256"], sha256_hex(b"{{ .Prompt }}"));
        assert_eq!(fp.details["server_version"], "0.5.1");
        let other = fingerprint_from("m:1", &entry, &json!({"template":"{{ .System }}"}), None);
        assert_ne!(fp.id(), other.id());
    }

    #[test]
    fn show_parameters_become_the_configuration() {
        let entry = json!({"name":"m:1","digest":"d1"});
        let show = |params: &str| json!({"template":"{{ .Prompt }}","parameters": params});
        let a = fingerprint_from(
            "m:1",
            &entry,
            &show(
                "stop                           \"<|im_start|>\"\nstop \"<|im_end|>\"\ntemperature 0.7\nrepeat_penalty 1.05",
            ),
            None,
        );
        let config = a.config();
        assert_eq!(config["temperature"], "0.7");
        assert_eq!(config["repeat_penalty"], "1.05");
        assert_eq!(config["stop"], "\"<|im_start|>\", \"<|im_end|>\"");
        let b = fingerprint_from(
            "m:1",
            &entry,
            &show(
                "stop \"<|im_start|>\"\nstop \"<|im_end|>\"\ntemperature 0.7\nrepeat_penalty 1.5",
            ),
            None,
        );
        assert_ne!(a.config_digest(), b.config_digest());
        assert!(a.config_digest().is_some());
        // No parameters (a model without PARAMETER lines): no configuration.
        let none = fingerprint_from("m:1", &entry, &json!({"template":"{{ .Prompt }}"}), None);
        assert_eq!(none.config_digest(), None);
    }
}
