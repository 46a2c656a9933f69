//! The Ollama client against a scripted server over real HTTP: chat and generate, buffered and
//! streamed, usage, time to first token, fingerprints, connection reuse.

use crate::provider_common;
use modelwatch::probe::{GenParams, ProbeInput};
use modelwatch::provider::{Api, CompletionRequest, ProviderKind, build_client};
use modelwatch::sample::{ErrorKind, FinishReason};
use provider_common::{Server, config, json, ndjson};
use serde_json::json;

fn req(prompt: &str, stream: bool) -> CompletionRequest {
    CompletionRequest {
        input: ProbeInput::Prompt(prompt.into()),
        params: GenParams {
            temperature: Some(0.5),
            max_tokens: Some(40),
            seed: Some(3),
            stop: Some(vec!["###".into()]),
            ..GenParams::default()
        },
        stream,
    }
}

#[tokio::test]
async fn buffered_chat_reads_text_usage_and_done_reason_over_one_pooled_connection() {
    let server = Server::start(|_, _| {
        json(
            200,
            &json!({"model":"qwen2.5:7b","created_at":"2024-01-01T00:00:00Z",
                "message":{"role":"assistant","content":"Use kill -9."},
                "done_reason":"stop","done":true,"total_duration":5,"prompt_eval_count":26,
                "eval_count":4,"eval_duration":3}),
        )
    })
    .await;
    let cfg = config(ProviderKind::Ollama, Api::Chat, server.url(), "qwen2.5:7b");
    let client = build_client(cfg).unwrap();
    for _ in 0..3 {
        let c = client.complete(&req("How?", false)).await.unwrap();
        assert_eq!(c.text, "Use kill -9.");
        assert_eq!(c.finish_reason, Some(FinishReason::Stop));
        assert_eq!((c.output_tokens, c.input_tokens), (Some(4), Some(26)));
        assert_eq!(c.response_model.as_deref(), Some("qwen2.5:7b"));
        assert_eq!(c.attempts, 1);
        assert_eq!(c.ttft_ms, None);
        assert!(c.latency_ms > 0.0);
    }
    let reqs = server.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/api/chat");
    let body = reqs[0].json();
    assert_eq!(body["stream"], false);
    assert_eq!(body["messages"][0]["content"], "How?");
    assert_eq!(body["options"]["num_predict"], 40);
    assert_eq!(body["options"]["stop"][0], "###");
    assert_eq!(
        server.connections(),
        1,
        "one pooled connection for all requests"
    );
}

#[tokio::test]
async fn streamed_chat_measures_time_to_first_content() {
    let server = Server::start(|_, _| {
        ndjson(
            &[
                (0, json!({"model":"m","message":{"role":"assistant","content":""},"done":false})),
                (150, json!({"model":"m","message":{"role":"assistant","content":"Hel"},"done":false})),
                (100, json!({"model":"m","message":{"role":"assistant","content":"lo"},"done":false})),
                (0, json!({"model":"m","message":{"role":"assistant","content":""},"done":true,
                           "done_reason":"length","prompt_eval_count":5,"eval_count":2})),
            ],
            true,
        )
    })
    .await;
    let client = build_client(config(ProviderKind::Ollama, Api::Chat, server.url(), "m")).unwrap();
    let c = client.complete(&req("hi", true)).await.unwrap();
    assert_eq!(c.text, "Hello");
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    assert_eq!((c.output_tokens, c.input_tokens), (Some(2), Some(5)));
    let ttft = c.ttft_ms.expect("ttft measured when streaming");
    assert!(ttft >= 140.0, "ttft {ttft} counts the empty first chunk");
    assert!(
        c.latency_ms >= ttft + 90.0,
        "latency {} ttft {ttft}",
        c.latency_ms
    );
    assert_eq!(server.requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn target_without_streaming_sends_buffered_requests() {
    let server = Server::start(|_, _| {
        json(
            200,
            &json!({"message":{"content":"x"},"done":true,"done_reason":"stop"}),
        )
    })
    .await;
    let mut cfg = config(ProviderKind::Ollama, Api::Chat, server.url(), "m");
    cfg.stream = false;
    let c = build_client(cfg)
        .unwrap()
        .complete(&req("hi", true))
        .await
        .unwrap();
    assert_eq!(c.text, "x");
    assert_eq!(server.requests()[0].json()["stream"], false);
}

#[tokio::test]
async fn completion_api_uses_raw_generate_streamed() {
    let server = Server::start(|_, _| {
        ndjson(
            &[
                (0, json!({"model":"base","response":"Once","done":false})),
                (0, json!({"model":"base","response":" more","done":false})),
                (
                    0,
                    json!({"model":"base","response":"","done":true,"done_reason":"stop",
                           "context":[1,2],"prompt_eval_count":3,"eval_count":2}),
                ),
            ],
            true,
        )
    })
    .await;
    let mut cfg = config(ProviderKind::Ollama, Api::Completion, server.url(), "base");
    cfg.api_key = Some("ollama-cloud-key".into());
    let c = build_client(cfg)
        .unwrap()
        .complete(&req("Tell", true))
        .await
        .unwrap();
    assert_eq!(c.text, "Once more");
    assert_eq!(c.output_tokens, Some(2));
    let r = &server.requests()[0];
    assert_eq!(r.path, "/api/generate");
    assert_eq!(r.json()["raw"], true);
    assert_eq!(r.json()["prompt"], "Tell");
    assert_eq!(r.header("authorization"), Some("Bearer ollama-cloud-key"));
}

#[tokio::test]
async fn stream_without_done_and_error_lines_are_broken_bodies() {
    let server = Server::start(|_, hit| {
        if hit == 0 {
            ndjson(
                &[(0, json!({"message":{"content":"par"},"done":false}))],
                true,
            )
        } else {
            ndjson(
                &[
                    (0, json!({"message":{"content":"par"},"done":false})),
                    (
                        0,
                        json!({"error":"an error was encountered while running the model"}),
                    ),
                ],
                true,
            )
        }
    })
    .await;
    let client = build_client(config(ProviderKind::Ollama, Api::Chat, server.url(), "m")).unwrap();
    let e = client.complete(&req("hi", true)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedBody);
    assert!(e.message.contains("truncated"), "{e}");
    let e = client.complete(&req("hi", true)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedBody);
    assert!(e.message.contains("running the model"), "{e}");
    assert_eq!(server.hits(), 2, "broken bodies are not retried");
}

fn ollama_fingerprint_server(
    version: &'static str,
    template: &'static str,
) -> impl Fn(&provider_common::Recorded, usize) -> provider_common::Reply {
    move |r, _| match r.path.as_str() {
        "/api/tags" => json(
            200,
            &json!({"models":[
                {"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2024-10-01T00:00:00Z",
                 "size":2019393189u64,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                 "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],
                            "parameter_size":"3.2B","quantization_level":"Q4_K_M"}},
                {"name":"qwen2.5:7b-instruct","model":"qwen2.5:7b-instruct","size":4683087332u64,
                 "digest":"845dbda0ea48ed749caafd9e6037047aa19acfcfd82e704d7ca97d631a0b697e",
                 "details":{"format":"gguf","family":"qwen2","parameter_size":"7.6B","quantization_level":"Q4_K_M"}}
            ]}),
        ),
        "/api/show" => json(
            200,
            &json!({"modelfile":"FROM /x","parameters":"stop \"<|eot_id|>\"","template":template,
                    "details":{"family":"llama"},"model_info":{"general.architecture":"llama"}}),
        ),
        "/api/version" => json(200, &json!({"version": version})),
        _ => json(404, &json!({"error":"not found"})),
    }
}

#[tokio::test]
async fn fingerprint_reads_tags_show_and_version() {
    let server = Server::start(ollama_fingerprint_server("0.5.1", "{{ .Prompt }}")).await;
    let client = build_client(config(
        ProviderKind::Ollama,
        Api::Chat,
        server.url(),
        "llama3.2",
    ))
    .unwrap();
    let fp = client.fingerprint().await.unwrap();
    assert_eq!(fp.provider, "ollama");
    assert_eq!(fp.model, "llama3.2");
    assert_eq!(
        fp.digest.as_deref(),
        Some("a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72")
    );
    assert_eq!(fp.details["family"], "llama");
    assert_eq!(fp.details["parameter_size"], "3.2B");
    assert_eq!(fp.details["quantization_level"], "Q4_K_M");
    assert_eq!(fp.details["size"], "2019393189");
    assert_eq!(fp.details["server_version"], "0.5.1");
    assert_eq!(fp.details["template_sha256"].len(), 64);
    assert!(fp.details.contains_key("parameters_sha256"));
    let show = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/show")
        .unwrap();
    assert_eq!(show.json()["model"], "llama3.2");
    // Same server, same answer; a new server version or template is another fingerprint.
    assert_eq!(fp.id(), client.fingerprint().await.unwrap().id());
    let upgraded = Server::start(ollama_fingerprint_server("0.6.0", "{{ .Prompt }}")).await;
    let other = build_client(config(
        ProviderKind::Ollama,
        Api::Chat,
        upgraded.url(),
        "llama3.2",
    ))
    .unwrap();
    assert_ne!(fp.id(), other.fingerprint().await.unwrap().id());
    let retemplated = Server::start(ollama_fingerprint_server(
        "0.5.1",
        "{{ .System }}{{ .Prompt }}",
    ))
    .await;
    let other = build_client(config(
        ProviderKind::Ollama,
        Api::Chat,
        retemplated.url(),
        "llama3.2",
    ))
    .unwrap();
    assert_ne!(fp.id(), other.fingerprint().await.unwrap().id());
}

#[tokio::test]
async fn fingerprint_of_a_model_the_server_lacks_is_a_clear_error() {
    let server = Server::start(ollama_fingerprint_server("0.5.1", "t")).await;
    let client = build_client(config(
        ProviderKind::Ollama,
        Api::Chat,
        server.url(),
        "mistral:7b",
    ))
    .unwrap();
    let e = client.fingerprint().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert_eq!(e.status, None);
    assert!(e.message.contains("\"mistral:7b\""), "{e}");
    assert!(
        e.message.contains("llama3.2:latest, qwen2.5:7b-instruct"),
        "{e}"
    );
    assert!(e.message.contains("ollama pull mistral:7b"), "{e}");
}
