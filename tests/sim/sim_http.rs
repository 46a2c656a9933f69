//! The simulator over real HTTP on 127.0.0.1 port 0: endpoint shapes, streaming framing,
//! determinism, profile swaps, faults and their rates.

use modelwatch::sim::{self, Profile, SimHandle};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The default (healthy) profile without sleeping.
fn fast() -> Profile {
    Profile {
        latency_scale: 0.0,
        ..Profile::default()
    }
}

/// A fast, well-behaved profile: no sleeping, no random breakage.
fn quiet() -> Profile {
    let mut p = fast();
    p.rates.refusal = 0.0;
    p.rates.json_invalid = 0.0;
    p.rates.json_schema_break = 0.0;
    p.rates.json_fenced = 0.0;
    p.rates.correct = 1.0;
    p
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(req: reqwest::RequestBuilder) -> Result<Resp, reqwest::Error> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await?.to_vec();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

async fn post(c: &reqwest::Client, sim: &SimHandle, path: &str, body: Value) -> Resp {
    send(c.post(format!("{}{path}", sim.base_url())).json(&body))
        .await
        .unwrap()
}

async fn get(c: &reqwest::Client, sim: &SimHandle, path: &str) -> Resp {
    send(c.get(format!("{}{path}", sim.base_url())))
        .await
        .unwrap()
}

fn ollama_chat(prompt: &str, stream: bool) -> Value {
    json!({"model": "sim-7b", "messages": [{"role": "user", "content": prompt}], "stream": stream})
}

fn openai_chat(prompt: &str, stream: bool) -> Value {
    json!({"model": "sim-7b", "messages": [{"role": "user", "content": prompt}], "stream": stream})
}

fn ndjson(body: &[u8]) -> Vec<Value> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// SSE `data:` payloads in order (`[DONE]` kept as a string).
fn sse(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.ends_with("\n\n"), "events end with a blank line");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn ollama_endpoints_have_the_real_shape() {
    let sim = sim::spawn_on_free_port(quiet(), 1).unwrap();
    let c = client();

    let tags = get(&c, &sim, "/api/tags").await.json();
    let m = &tags["models"][0];
    assert_eq!(m["name"], "sim-7b:latest");
    assert_eq!(m["digest"], Profile::default().fingerprint.digest);
    assert!(m["size"].as_u64().unwrap() > 0);
    for key in ["family", "parameter_size", "quantization_level", "format"] {
        assert!(m["details"][key].is_string(), "details.{key}");
    }

    let show = post(&c, &sim, "/api/show", json!({"model": "sim-7b"}))
        .await
        .json();
    assert!(show["template"].as_str().unwrap().contains("assistant"));
    assert!(show["parameters"].is_string());
    assert_eq!(show["details"]["quantization_level"], "Q4_K_M");
    assert!(
        show["model_info"]["general.parameter_count"]
            .as_u64()
            .unwrap()
            > 1_000_000
    );
    let missing = post(&c, &sim, "/api/show", json!({"model": "nope"})).await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].as_str().unwrap().contains("nope"));

    let v = get(&c, &sim, "/api/version").await.json();
    assert!(v["version"].as_str().unwrap().contains('.'));

    let chat = post(
        &c,
        &sim,
        "/api/chat",
        ollama_chat("Tell me about tea.", false),
    )
    .await;
    assert_eq!(chat.status, 200);
    let chat = chat.json();
    assert_eq!(chat["model"], "sim-7b");
    assert_eq!(chat["done"], true);
    assert_eq!(chat["done_reason"], "stop");
    assert_eq!(chat["message"]["role"], "assistant");
    let content = chat["message"]["content"].as_str().unwrap();
    assert_eq!(
        chat["eval_count"].as_u64().unwrap() as usize,
        content.split_whitespace().count()
    );
    assert_eq!(chat["prompt_eval_count"], 5); // "user: Tell me about tea."
    for key in ["eval_duration", "total_duration", "prompt_eval_duration"] {
        assert!(chat[key].as_u64().unwrap() > 0, "{key}");
    }

    let gen_body = json!({"model": "sim-7b", "prompt": "Once upon a time", "stream": false});
    let generated = post(&c, &sim, "/api/generate", gen_body).await.json();
    assert!(!generated["response"].as_str().unwrap().is_empty());
    assert_eq!(generated["done"], true);
    sim.shutdown().await;
}

#[tokio::test]
async fn ollama_streams_ndjson_unless_told_not_to() {
    let sim = sim::spawn_on_free_port(quiet(), 2).unwrap();
    let c = client();
    let mut body = ollama_chat("Explain rainbows.", true);
    body["options"] = json!({"seed": 5});
    body.as_object_mut().unwrap().remove("stream"); // streaming is the default
    let r = post(&c, &sim, "/api/chat", body.clone()).await;
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let lines = ndjson(&r.body);
    let (last, chunks) = lines.split_last().unwrap();
    assert!(chunks.len() > 3);
    assert!(chunks.iter().all(|c| c["done"] == false));
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"].as_u64().unwrap() as usize, chunks.len());
    let streamed: String = chunks
        .iter()
        .map(|c| c["message"]["content"].as_str().unwrap())
        .collect();

    body["stream"] = json!(false);
    let whole = post(&c, &sim, "/api/chat", body).await.json();
    assert_eq!(whole["message"]["content"].as_str().unwrap(), streamed);

    let gen_body = json!({"model": "sim-7b", "prompt": "Once", "options": {"num_predict": 5}});
    let lines = ndjson(&post(&c, &sim, "/api/generate", gen_body).await.body);
    let (last, chunks) = lines.split_last().unwrap();
    assert_eq!(chunks.len(), 5);
    assert!(chunks[0]["response"].is_string());
    assert_eq!(last["done_reason"], "length");
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_endpoints_have_the_real_shape() {
    let sim = sim::spawn_on_free_port(quiet(), 3).unwrap();
    let c = client();
    let r = post(
        &c,
        &sim,
        "/v1/chat/completions",
        openai_chat("Hi there", false),
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "sim-7b");
    assert_eq!(v["system_fingerprint"], "fp_sim_5e2c1b7f");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let usage = &v["usage"];
    assert_eq!(
        usage["completion_tokens"].as_u64().unwrap() as usize,
        content.split_whitespace().count()
    );
    assert_eq!(usage["prompt_tokens"], 3); // "user: Hi there"
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    // Content as a list of parts, no model (llama.cpp serves its one model).
    let parts =
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]});
    let v = post(&c, &sim, "/v1/chat/completions", parts).await.json();
    assert_eq!(v["model"], "sim-7b");

    // Clients that send null for unset fields.
    let nulls = json!({"model": "sim-7b", "messages": [{"role": "user", "content": "Hi"}],
                       "stream": null, "stream_options": null, "max_tokens": null,
                       "stop": null, "seed": null, "response_format": null});
    let r = post(&c, &sim, "/v1/chat/completions", nulls).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let nulls = json!({"model": "sim-7b", "prompt": "Hi", "stream": false, "options": null});
    assert_eq!(post(&c, &sim, "/api/generate", nulls).await.status, 200);

    let comp = json!({"model": "sim-7b", "prompt": "Once upon a time", "max_tokens": 7});
    let v = post(&c, &sim, "/v1/completions", comp).await.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 7);
    assert_eq!(
        v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        7
    );

    let models = get(&c, &sim, "/v1/models").await.json();
    assert_eq!(models["object"], "list");
    let d = &models["data"][0];
    assert_eq!(d["id"], "sim-7b");
    assert_eq!(d["owned_by"], "modelwatch-sim");
    assert!(d["meta"]["n_params"].as_u64().unwrap() > 0);
    assert!(d["meta"]["n_ctx_train"].as_u64().unwrap() > 0);
    assert_eq!(
        models["models"][0]["digest"],
        Profile::default().fingerprint.digest
    );

    let props = get(&c, &sim, "/props").await.json();
    assert!(props["model_path"].as_str().unwrap().ends_with(".gguf"));
    assert!(props["chat_template"].is_string());
    assert!(props["build_info"].is_string());
    assert_eq!(props["total_slots"], 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_streams_sse_with_optional_usage() {
    let sim = sim::spawn_on_free_port(quiet(), 4).unwrap();
    let c = client();
    let mut body = openai_chat("Describe the sea.", true);
    body["seed"] = json!(11);
    let r = post(&c, &sim, "/v1/chat/completions", body.clone()).await;
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let events = sse(&r.body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        chunks[1..chunks.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );

    body["stream"] = json!(false);
    let whole = post(&c, &sim, "/v1/chat/completions", body.clone())
        .await
        .json();
    assert_eq!(
        whole["choices"][0]["message"]["content"].as_str().unwrap(),
        streamed
    );

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = sse(&post(&c, &sim, "/v1/chat/completions", body).await.body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], whole["usage"]);
    let before: Value = serde_json::from_str(&events[0]).unwrap();
    assert!(before["usage"].is_null() && before.get("usage").is_some());

    let comp = json!({"model": "sim-7b", "prompt": "Once", "stream": true, "max_tokens": 4,
                      "stream_options": {"include_usage": true}});
    let events = sse(&post(&c, &sim, "/v1/completions", comp).await.body);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text.split_whitespace().count(), 4);
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn auth_unknown_models_and_bad_bodies_answer_like_the_real_apis() {
    let mut p = quiet();
    p.api_key = Some(sim::Secret::new("sk-test-key"));
    let sim = sim::spawn_on_free_port(p, 5).unwrap();
    let c = client();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let r = send(c.post(&url).json(&openai_chat("hi", false)))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    assert!(!r.text().contains("sk-test-key"));
    let r = send(
        c.post(&url)
            .bearer_auth("wrong")
            .json(&openai_chat("hi", false)),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
    let r = send(c.get(format!("{}/v1/models", sim.base_url())))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let r = send(
        c.post(&url)
            .bearer_auth("sk-test-key")
            .json(&openai_chat("hi", false)),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);

    let mut body = openai_chat("hi", false);
    body["model"] = json!("gpt-nonexistent");
    let r = send(c.post(&url).bearer_auth("sk-test-key").json(&body))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let r = send(
        c.post(format!("{}/api/chat", sim.base_url()))
            .bearer_auth("sk-test-key")
            .json(&json!({"model": "llama9", "messages": []})),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("not found"));

    let r = send(
        c.post(&url)
            .bearer_auth("sk-test-key")
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].is_string());
    let r = send(
        c.post(&url)
            .bearer_auth("sk-test-key")
            .json(&json!({"model": "sim-7b", "messages": []})),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);

    let s = sim.stats();
    assert_eq!(s.count("/v1/chat/completions", "unauthorized"), 2);
    assert_eq!(s.count("/v1/chat/completions", "not_found"), 1);
    assert_eq!(s.count("/v1/chat/completions", "bad_request"), 2);
    assert_eq!(s.count("/v1/chat/completions", "ok"), 1);
    let admin = get(&c, &sim, "/admin/stats").await.json();
    assert_eq!(admin["requests"]["/api/chat"]["not_found"], 1);
    sim.shutdown().await;
}

/// A fixed mix of requests, answered one after another.
async fn script(sim: &SimHandle) -> Vec<Vec<u8>> {
    let c = client();
    let mut out = Vec::new();
    for prompt in ["alpha", "beta", "alpha", "Return JSON for a cat", "alpha"] {
        out.push(
            post(&c, sim, "/api/chat", ollama_chat(prompt, false))
                .await
                .body,
        );
        out.push(
            post(&c, sim, "/v1/chat/completions", openai_chat(prompt, true))
                .await
                .body,
        );
    }
    let mut seeded = openai_chat("gamma", false);
    seeded["seed"] = json!(99);
    out.push(post(&c, sim, "/v1/chat/completions", seeded).await.body);
    out
}

#[tokio::test]
async fn responses_are_a_function_of_the_seed() {
    let p = fast();
    let a = sim::spawn_on_free_port(p.clone(), 42).unwrap();
    let b = sim::spawn_on_free_port(p.clone(), 42).unwrap();
    let c = sim::spawn_on_free_port(p, 43).unwrap();
    let (ra, rb, rc) = (script(&a).await, script(&b).await, script(&c).await);
    assert_eq!(ra, rb, "same seed, same bodies");
    assert_ne!(ra[0], rc[0], "a different seed gives different bodies");
    assert_ne!(ra[0], ra[4], "repeats of a prompt differ");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn concurrency_order_does_not_change_seeded_responses() {
    let sim = sim::spawn_on_free_port(fast(), 7).unwrap();
    let c = client();
    let body = |i: u64| {
        let mut b = openai_chat(&format!("question {}", i % 5), false);
        b["seed"] = json!(i);
        b
    };
    let mut sequential = Vec::new();
    for i in 0..40 {
        sequential.push(post(&c, &sim, "/v1/chat/completions", body(i)).await.body);
    }
    let futures = (0..40).rev().map(|i| {
        let c = c.clone();
        let url = format!("{}/v1/chat/completions", sim.base_url());
        let b = body(i);
        async move { (i, send(c.post(url).json(&b)).await.unwrap().body) }
    });
    let mut concurrent = futures_util::future::join_all(futures).await;
    concurrent.sort_by_key(|(i, _)| *i);
    let concurrent: Vec<Vec<u8>> = concurrent.into_iter().map(|(_, b)| b).collect();
    assert_eq!(sequential, concurrent);
    sim.shutdown().await;
}

const DEGRADED: &str = r#"
models = ["sim-7b"]
latency_scale = 0
[fingerprint]
digest = "9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
quantization = "Q2_K"
parameter_size = "7.2B"
size = 2800000000
template = "<s>[INST] {{ .Prompt }} [/INST]"
model_path = "/models/sim-7b-Q2_K.gguf"
system_fingerprint = "fp_sim_9a0b1c2d"
[rates]
refusal = 1.0
"#;

/// What each fingerprint source answers: Ollama's tags, OpenAI's models, llama.cpp's props,
/// a chat completion (its `system_fingerprint`) and Ollama's show.
async fn fingerprint_sources(
    c: &reqwest::Client,
    sim: &SimHandle,
) -> (Value, Value, Value, Value, Value) {
    (
        get(c, sim, "/api/tags").await.json(),
        get(c, sim, "/v1/models").await.json(),
        get(c, sim, "/props").await.json(),
        post(c, sim, "/v1/chat/completions", openai_chat("hi", false))
            .await
            .json(),
        post(c, sim, "/api/show", json!({"model": "sim-7b"}))
            .await
            .json(),
    )
}

async fn put_profile(c: &reqwest::Client, sim: &SimHandle, toml: &str) -> Resp {
    send(
        c.put(format!("{}/admin/profile", sim.base_url()))
            .body(toml.to_string()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_profile_swap_changes_every_fingerprint_source() {
    let sim = sim::spawn_on_free_port(quiet(), 8).unwrap();
    let c = client();
    let before = fingerprint_sources(&c, &sim).await;
    assert_eq!(
        get(&c, &sim, "/admin/profile").await.json()["generation"],
        0
    );

    let bad = put_profile(&c, &sim, "[rates]\nrefusal = 3\n").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("line 2, column 11")
    );
    assert_eq!(sim.generation(), 0, "a bad profile keeps the old one");

    let ok = put_profile(&c, &sim, DEGRADED).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["generation"], 1);
    let after = fingerprint_sources(&c, &sim).await;
    assert_ne!(
        before.0["models"][0]["digest"],
        after.0["models"][0]["digest"]
    );
    assert_eq!(
        after.0["models"][0]["details"]["quantization_level"],
        "Q2_K"
    );
    assert_ne!(before.1["data"][0]["meta"], after.1["data"][0]["meta"]);
    assert_ne!(before.1["data"][0]["root"], after.1["data"][0]["root"]);
    assert_ne!(before.2["model_path"], after.2["model_path"]);
    assert_ne!(before.2["chat_template"], after.2["chat_template"]);
    assert_eq!(after.3["system_fingerprint"], "fp_sim_9a0b1c2d");
    assert_ne!(
        before.3["system_fingerprint"],
        after.3["system_fingerprint"]
    );
    assert_ne!(before.4["template"], after.4["template"]);
    // The new behaviour is in force too.
    let text = after.3["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(sim::text::REFUSALS.contains(&text), "{text}");
    let shown = get(&c, &sim, "/admin/profile").await.json();
    assert_eq!(shown["generation"], 1);
    assert_eq!(shown["profile"]["fingerprint"]["quantization"], "Q2_K");

    // The library swap does the same.
    assert_eq!(sim.set_profile(quiet()), 2);
    let tags = get(&c, &sim, "/api/tags").await.json();
    assert_eq!(tags["models"][0]["digest"], before.0["models"][0]["digest"]);
    assert_eq!(sim.stats().generation, 2);
    sim.shutdown().await;
}

fn with(f: impl FnOnce(&mut Profile)) -> Profile {
    let mut p = quiet();
    f(&mut p);
    p
}

#[tokio::test]
async fn every_fault_kind_happens_at_rate_one() {
    let c = client();

    let sim = sim::spawn_on_free_port(with(|p| p.rates.error_5xx = 1.0), 9).unwrap();
    let mut statuses = std::collections::BTreeSet::new();
    for i in 0..30 {
        let r = post(
            &c,
            &sim,
            "/v1/chat/completions",
            openai_chat(&format!("q{i}"), false),
        )
        .await;
        statuses.insert(r.status);
        let r = post(&c, &sim, "/api/chat", ollama_chat(&format!("q{i}"), true)).await;
        statuses.insert(r.status);
    }
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [500, 502, 503]);
    sim.shutdown().await;

    let sim = sim::spawn_on_free_port(
        with(|p| {
            p.rates.rate_limit = 1.0;
            p.retry_after_secs = 3;
        }),
        9,
    )
    .unwrap();
    for body in [openai_chat("x", false), openai_chat("x", true)] {
        let r = post(&c, &sim, "/v1/chat/completions", body).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.headers["retry-after"], "3");
        assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    }
    sim.shutdown().await;

    // Timeout: the server accepts and never answers; stopping the server releases it.
    let sim = sim::spawn_on_free_port(with(|p| p.rates.timeout = 1.0), 9).unwrap();
    let started = Instant::now();
    let err = send(
        c.post(format!("{}/api/chat", sim.base_url()))
            .timeout(Duration::from_millis(300))
            .json(&ollama_chat("x", false)),
    )
    .await
    .err()
    .expect("a hung request");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let stopping = Instant::now();
    sim.shutdown().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "shutdown releases hung requests"
    );

    // Malformed: every variant is unusable as a response.
    let sim = sim::spawn_on_free_port(with(|p| p.rates.malformed = 1.0), 9).unwrap();
    for i in 0..40 {
        let r = post(
            &c,
            &sim,
            "/v1/chat/completions",
            openai_chat(&format!("m{i}"), false),
        )
        .await;
        assert_eq!(r.status, 200);
        let usable = serde_json::from_slice::<Value>(&r.body).ok().and_then(|v| {
            v["choices"][0]["message"]["content"]
                .as_str()
                .map(String::from)
        });
        assert!(usable.is_none(), "{}", r.text());
        let r = post(&c, &sim, "/api/chat", ollama_chat(&format!("m{i}"), true)).await;
        let text = String::from_utf8(r.body.clone());
        let usable = text.ok().is_some_and(|t| {
            let lines: Vec<Option<Value>> =
                t.lines().map(|l| serde_json::from_str(l).ok()).collect();
            lines.iter().all(|l| {
                l.as_ref()
                    .is_some_and(|v| v["message"]["content"].is_string())
            }) && lines
                .last()
                .is_some_and(|l| l.as_ref().is_some_and(|v| v["done"] == true))
        });
        assert!(!usable, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(sim.stats().count("/api/chat", "malformed"), 40);
    sim.shutdown().await;

    // Disconnect: the body ends early with a transport error, streaming or not.
    let sim = sim::spawn_on_free_port(with(|p| p.rates.disconnect = 1.0), 9).unwrap();
    for (path, body) in [
        ("/v1/chat/completions", openai_chat("d", false)),
        ("/v1/chat/completions", openai_chat("d", true)),
        ("/api/chat", ollama_chat("d", false)),
        ("/api/chat", ollama_chat("d", true)),
    ] {
        let r = c
            .post(format!("{}{path}", sim.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.is_err(), "{path} {body}");
    }
    assert_eq!(sim.stats().count("/api/chat", "disconnect"), 2);
    sim.shutdown().await;
}

/// What a client saw for one request.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Seen {
    Ok,
    Refusal,
    Status(u16),
    Malformed,
    Broken,
    Timeout,
}

async fn observe(c: &reqwest::Client, url: &str, prompt: String, timeout: Duration) -> Seen {
    let req = c
        .post(url)
        .timeout(timeout)
        .json(&openai_chat(&prompt, false));
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Seen::Timeout,
        Err(_) => return Seen::Broken,
    };
    if r.status() != 200 {
        return Seen::Status(r.status().as_u16());
    }
    let Ok(body) = r.bytes().await else {
        return Seen::Broken;
    };
    let content = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .map(String::from)
    });
    match content {
        None => Seen::Malformed,
        Some(t) if sim::text::REFUSALS.contains(&t.as_str()) => Seen::Refusal,
        Some(_) => Seen::Ok,
    }
}

#[tokio::test]
async fn rates_of_point_three_come_out_near_point_three() {
    let c = client();
    let n = 1000;
    type Case = (fn(&mut Profile), fn(Seen) -> bool);
    let cases: [Case; 6] = [
        (
            |p| p.rates.error_5xx = 0.3,
            |s| matches!(s, Seen::Status(500 | 502 | 503)),
        ),
        (|p| p.rates.rate_limit = 0.3, |s| s == Seen::Status(429)),
        (|p| p.rates.malformed = 0.3, |s| s == Seen::Malformed),
        (|p| p.rates.disconnect = 0.3, |s| s == Seen::Broken),
        (|p| p.rates.refusal = 0.3, |s| s == Seen::Refusal),
        (|p| p.rates.timeout = 0.3, |s| s == Seen::Timeout),
    ];
    for (k, (set, hit)) in cases.into_iter().enumerate() {
        let sim = sim::spawn_on_free_port(with(set), 100 + k as u64).unwrap();
        let url = format!("{}/v1/chat/completions", sim.base_url());
        // Only the timeout case waits for its client timeout; it is generous so that a slow,
        // loaded machine does not turn answers into timeouts.
        let (timeout, batch) = if k == 5 {
            (Duration::from_secs(3), 250)
        } else {
            (Duration::from_secs(60), 100)
        };
        let mut seen = Vec::with_capacity(n);
        for batch in (0..n).collect::<Vec<_>>().chunks(batch) {
            let futures = batch
                .iter()
                .map(|i| observe(&c, &url, format!("probe number {}", i % 37), timeout));
            seen.extend(futures_util::future::join_all(futures).await);
        }
        let hits = seen.iter().filter(|s| hit(**s)).count();
        // What the client saw is what the server decided.
        let stats = sim.stats();
        let label = [
            "error_5xx",
            "rate_limit",
            "malformed",
            "disconnect",
            "refusal",
            "timeout",
        ][k];
        let decided = match label {
            "refusal" => stats.content.get("refusal").copied().unwrap_or(0),
            _ => stats.count("/v1/chat/completions", label),
        };
        assert_eq!(hits as u64, decided, "case {k}");
        let others = seen.iter().filter(|s| !hit(**s) && **s != Seen::Ok).count();
        let rate = hits as f64 / n as f64;
        assert!((rate - 0.3).abs() < 0.045, "case {k}: rate {rate}");
        assert_eq!(others, 0, "case {k}: no other outcome");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn answers_json_and_truncation_over_http() {
    let p = Profile::from_toml(
        r#"
latency_scale = 0
[rates]
refusal = 0
correct = 1
json_invalid = 0
json_schema_break = 0
json_fenced = 0
[[answer]]
contains = "17 * 3"
text = "51"
filler = false
[[answer]]
contains = "invoice"
json = { vendor = "ACME", total = 42.5 }
"#,
    )
    .unwrap();
    let sim = sim::spawn_on_free_port(p, 10).unwrap();
    let c = client();
    let v = post(
        &c,
        &sim,
        "/v1/chat/completions",
        openai_chat("What is 17 * 3?", false),
    )
    .await
    .json();
    assert_eq!(v["choices"][0]["message"]["content"], "51");
    let v = post(
        &c,
        &sim,
        "/api/chat",
        ollama_chat("Extract the invoice vendor and total as JSON.", false),
    )
    .await
    .json();
    let parsed: Value = serde_json::from_str(v["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(parsed, json!({"vendor": "ACME", "total": 42.5}));

    let mut body = ollama_chat("Write an essay.", false);
    body["options"] = json!({"num_predict": 3});
    let v = post(&c, &sim, "/api/chat", body).await.json();
    assert_eq!(v["done_reason"], "length");
    assert_eq!(v["eval_count"], 3);
    let mut body = openai_chat("Write an essay.", false);
    body["max_tokens"] = json!(3);
    let v = post(&c, &sim, "/v1/chat/completions", body).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_follows_the_profile() {
    let p = with(|p| {
        p.latency_scale = 1.0;
        p.latency.ttft_median_ms = 200.0;
        p.latency.ttft_sigma = 0.0;
        p.latency.per_token_ms = 10.0;
    });
    let sim = sim::spawn_on_free_port(p, 11).unwrap();
    let c = client();
    let mut body = openai_chat("Tell a story.", true);
    body["max_tokens"] = json!(20);
    let started = Instant::now();
    let mut r = c
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    // The role chunk comes at once; the first token after the time to first token.
    let mut got = Vec::new();
    let mut first_token = None;
    while let Some(chunk) = r.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
        if first_token.is_none() && String::from_utf8_lossy(&got).matches("data: ").count() >= 2 {
            first_token = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let ttft = first_token.unwrap();
    assert!(ttft >= Duration::from_millis(190), "ttft {ttft:?}");
    assert!(total >= Duration::from_millis(380), "total {total:?}");
    assert!(total < Duration::from_secs(3), "total {total:?}");
    sim.shutdown().await;
}

/// Throughput with latency_scale 0. Run with `--ignored --nocapture` to print the figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn throughput_with_latency_scale_zero() {
    let sim = sim::spawn_on_free_port(with(|p| p.length.median_tokens = 100.0), 12).unwrap();
    let c = client();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let n = 5000;
    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|w| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                for i in 0..n / 32 {
                    let r = c
                        .post(&url)
                        .json(&openai_chat(&format!("prompt {w} {}", i % 50), false))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = (n / 32) * 32;
    println!(
        "{done} requests in {secs:.2} s: {:.0} requests/s",
        done as f64 / secs
    );
    sim.shutdown().await;
}
