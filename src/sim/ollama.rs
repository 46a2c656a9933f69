//! Ollama's native API: `/api/chat`, `/api/generate` (NDJSON streaming by default),
//! `/api/tags`, `/api/show`, `/api/version`.

use super::model::{GenRequest, Outcome, Reply};
use super::profile::Profile;
use super::server::{
    Api, EPOCH_RFC3339, Shared, Stop, StreamPlan, authorize, error_response, fault_response,
    json_reply, parameter_count, parse_body, reply_label, seed_of, stream_response, unknown_model,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

const API: Api = Api::Ollama;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Options {
    num_predict: Option<i64>,
    seed: Option<Value>,
    stop: Option<Stop>,
    // temperature and top_p are accepted; variation comes from the seed.
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
    stream: Option<bool>,
    options: Option<Options>,
    format: Option<Value>,
}

#[derive(Deserialize)]
struct GenerateRequest {
    model: Option<String>,
    #[serde(default)]
    prompt: String,
    system: Option<String>,
    stream: Option<bool>,
    options: Option<Options>,
    format: Option<Value>,
}

/// `format: "json"` or a JSON Schema object asks for JSON.
fn json_mode(format: &Option<Value>) -> bool {
    match format {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(_)) => true,
        _ => false,
    }
}

/// Which field carries the generated text.
#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Generate,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Chat => "/api/chat",
            Kind::Generate => "/api/generate",
        }
    }

    fn content(self, text: &str) -> (&'static str, Value) {
        match self {
            Kind::Chat => ("message", json!({ "role": "assistant", "content": text })),
            Kind::Generate => ("response", Value::String(text.to_string())),
        }
    }
}

struct Parsed {
    model: String,
    prompt: String,
    stream: bool,
    options: Options,
    json_mode: bool,
}

pub(super) async fn chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse_body::<ChatRequest>(API, &body).map(|r| Parsed {
        model: r.model.unwrap_or_default(),
        prompt: r
            .messages
            .iter()
            .map(|m| format!("{}: {}", m.role, m.content))
            .collect::<Vec<_>>()
            .join("\n"),
        stream: r.stream.unwrap_or(true),
        json_mode: json_mode(&r.format),
        options: r.options.unwrap_or_default(),
    });
    handle(&shared, &headers, Kind::Chat, parsed).await
}

pub(super) async fn generate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse_body::<GenerateRequest>(API, &body).map(|r| Parsed {
        model: r.model.unwrap_or_default(),
        prompt: match r.system {
            Some(system) if !system.is_empty() => format!("{system}\n{}", r.prompt),
            _ => r.prompt,
        },
        stream: r.stream.unwrap_or(true),
        json_mode: json_mode(&r.format),
        options: r.options.unwrap_or_default(),
    });
    handle(&shared, &headers, Kind::Generate, parsed).await
}

async fn handle(
    shared: &Shared,
    headers: &HeaderMap,
    kind: Kind,
    parsed: Result<Parsed, Response>,
) -> Response {
    let ep = kind.endpoint();
    let active = shared.active();
    if let Err(resp) = authorize(&active, headers, API) {
        shared.record(ep, "unauthorized");
        return resp;
    }
    let p = match parsed {
        Ok(p) if !p.model.is_empty() => p,
        Ok(_) => {
            shared.record(ep, "bad_request");
            return error_response(API, StatusCode::BAD_REQUEST, "model is required", "");
        }
        Err(resp) => {
            shared.record(ep, "bad_request");
            return resp;
        }
    };
    if !active.profile.serves(&p.model) {
        shared.record(ep, "not_found");
        return unknown_model(API, &p.model);
    }
    let stop = p.options.stop.map(Stop::into_vec).unwrap_or_default();
    let req = GenRequest {
        prompt: &p.prompt,
        max_tokens: p
            .options
            .num_predict
            .filter(|n| *n > 0)
            .map(|n| n.min(u32::MAX as i64) as u32),
        stop: &stop,
        json_mode: p.json_mode,
    };
    let reply = match shared.generate(&active, seed_of(p.options.seed.as_ref()), &req) {
        Outcome::Fault(fault) => {
            shared.record(ep, fault.label());
            return fault_response(shared, API, fault).await;
        }
        Outcome::Reply(reply) => reply,
    };
    shared.record(ep, reply_label(&reply));
    if p.stream {
        let plan = stream_plan(kind, &p.model, &reply);
        stream_response(&active, API, &reply, plan)
    } else {
        let mut body = final_chunk(kind, &p.model, &reply);
        let (field, value) = kind.content(&reply.text);
        body[field] = value;
        json_reply(shared, &active, &reply, &body).await
    }
}

/// The last object of a response: `done: true` with Ollama's counters (durations in ns).
fn final_chunk(kind: Kind, model: &str, r: &Reply) -> Value {
    let (field, value) = kind.content("");
    let eval = r.per_token * r.completion_tokens;
    let mut v = json!({
        "model": model,
        "created_at": EPOCH_RFC3339,
        "done": true,
        "done_reason": r.finish.as_str(),
        "total_duration": (r.ttft + eval).as_nanos() as u64,
        "load_duration": 0,
        "prompt_eval_count": r.prompt_tokens,
        "prompt_eval_duration": r.ttft.as_nanos() as u64,
        "eval_count": r.completion_tokens,
        "eval_duration": eval.as_nanos() as u64,
    });
    v[field] = value;
    v
}

fn stream_plan(kind: Kind, model: &str, r: &Reply) -> StreamPlan {
    let body = super::text::pieces(&r.text)
        .into_iter()
        .map(|piece| {
            let (field, value) = kind.content(piece);
            let mut chunk = json!({ "model": model, "created_at": EPOCH_RFC3339, "done": false });
            chunk[field] = value;
            API.frame(&serde_json::to_vec(&chunk).unwrap_or_default())
        })
        .collect();
    let last = serde_json::to_vec(&final_chunk(kind, model, r)).unwrap_or_default();
    StreamPlan {
        head: Vec::new(),
        body,
        tail: vec![API.frame(&last)],
    }
}

fn details(p: &Profile) -> Value {
    let f = &p.fingerprint;
    json!({
        "parent_model": "",
        "format": f.format,
        "family": f.family,
        "families": [f.family],
        "parameter_size": f.parameter_size,
        "quantization_level": f.quantization,
    })
}

/// Ollama lists untagged names with `:latest`.
fn listed_name(name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

pub(super) async fn tags(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let active = shared.active();
    if let Err(resp) = authorize(&active, &headers, API) {
        shared.record("/api/tags", "unauthorized");
        return resp;
    }
    shared.record("/api/tags", "ok");
    let p = &active.profile;
    let models: Vec<Value> = p
        .models
        .iter()
        .map(|m| {
            let name = listed_name(m);
            json!({
                "name": name,
                "model": name,
                "modified_at": EPOCH_RFC3339,
                "size": p.fingerprint.size,
                "digest": p.fingerprint.digest,
                "details": details(p),
            })
        })
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}

#[derive(Deserialize)]
struct ShowRequest {
    model: Option<String>,
    name: Option<String>,
}

pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const EP: &str = "/api/show";
    let active = shared.active();
    if let Err(resp) = authorize(&active, &headers, API) {
        shared.record(EP, "unauthorized");
        return resp;
    }
    let name = match parse_body::<ShowRequest>(API, &body) {
        Ok(r) => r.model.or(r.name).unwrap_or_default(),
        Err(resp) => {
            shared.record(EP, "bad_request");
            return resp;
        }
    };
    let p = &active.profile;
    if !p.serves(&name) {
        shared.record(EP, "not_found");
        return error_response(
            API,
            StatusCode::NOT_FOUND,
            &format!("model '{name}' not found"),
            "",
        );
    }
    shared.record(EP, "ok");
    let f = &p.fingerprint;
    let params = f
        .parameters
        .lines()
        .map(|l| format!("PARAMETER {l}\n"))
        .collect::<String>();
    let modelfile = format!(
        "# Modelfile generated by \"ollama show\"\nFROM {}\nTEMPLATE \"\"\"{}\"\"\"\n{params}",
        f.model_path, f.template
    );
    let mut info = serde_json::Map::new();
    info.insert("general.architecture".into(), json!(f.family));
    info.insert(
        "general.parameter_count".into(),
        json!(parameter_count(&f.parameter_size)),
    );
    info.insert("general.quantization_version".into(), json!(2));
    info.insert(
        format!("{}.context_length", f.family),
        json!(f.context_length),
    );
    if !f.license_id.is_empty() {
        info.insert("general.license".into(), json!(f.license_id));
    }
    let mut show = json!({
        "modelfile": modelfile,
        "parameters": f.parameters,
        "template": f.template,
        "details": details(p),
        "model_info": info,
        "capabilities": ["completion"],
        "modified_at": EPOCH_RFC3339,
    });
    if !f.license.is_empty() {
        show["license"] = json!(f.license);
    }
    axum::Json(show).into_response()
}

pub(super) async fn version(State(shared): State<Arc<Shared>>) -> Response {
    shared.record("/api/version", "ok");
    axum::Json(json!({ "version": shared.active().profile.server.version })).into_response()
}
