//! The OpenAI-compatible client against a scripted server over real HTTP, with the response
//! shapes of OpenAI, vLLM and llama.cpp: chat and completions, buffered and SSE, usage in a
//! trailing chunk or in the final choice, refusals, fingerprints.

use crate::provider_common;
use modelwatch::probe::{GenParams, ProbeInput};
use modelwatch::provider::{Api, CompletionRequest, ProviderKind, build_client};
use modelwatch::sample::{ErrorKind, FinishReason};
use provider_common::{Recorded, Reply, Server, config, json, sse};
use serde_json::{Value, json};

fn req(prompt: &str, stream: bool) -> CompletionRequest {
    CompletionRequest {
        input: ProbeInput::Prompt(prompt.into()),
        params: GenParams {
            temperature: Some(0.7),
            top_p: Some(0.9),
            max_tokens: Some(96),
            seed: Some(11),
            stop: Some(vec!["\n".into()]),
        },
        stream,
    }
}

fn chunk(v: Value) -> String {
    v.to_string()
}

#[tokio::test]
async fn buffered_chat_sends_bearer_auth_and_reads_refusal_usage_and_fingerprint() {
    let server = Server::start(|_, _| {
        json(
            200,
            &json!({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",
                "system_fingerprint":"fp_abc","choices":[{"index":0,"message":{"role":"assistant",
                "content":null,"refusal":"I'm sorry, I can't help with that."},"logprobs":null,
                "finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}),
        )
    })
    .await;
    let mut cfg = config(
        ProviderKind::OpenAi,
        Api::Chat,
        format!("{}/v1", server.url()),
        "gpt-4o",
    );
    cfg.api_key = Some("sk-test-123".into());
    cfg.headers = vec![("OpenAI-Organization".into(), "org-1".into())];
    let c = build_client(cfg)
        .unwrap()
        .complete(&req("hi", false))
        .await
        .unwrap();
    assert_eq!(c.text, "");
    assert_eq!(
        c.refusal.as_deref(),
        Some("I'm sorry, I can't help with that.")
    );
    assert_eq!(c.finish_reason, Some(FinishReason::Stop));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(12), Some(9)));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.system_fingerprint.as_deref(), Some("fp_abc"));
    let r = &server.requests()[0];
    assert_eq!(
        r.path, "/v1/chat/completions",
        "base_url ending in /v1 is not doubled"
    );
    assert_eq!(r.header("authorization"), Some("Bearer sk-test-123"));
    assert_eq!(r.header("openai-organization"), Some("org-1"));
    assert_eq!(
        r.header("accept-encoding"),
        None,
        "compression is never negotiated"
    );
    let body = r.json();
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["max_tokens"], 96);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["seed"], 11);
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}

#[tokio::test]
async fn streamed_chat_asks_for_usage_and_reads_it_from_the_trailing_chunk() {
    // OpenAI / vLLM shape: role chunk, content deltas, finish chunk, usage chunk, [DONE].
    let server = Server::start(|_, _| {
        sse(
            &[
                (0, chunk(json!({"id":"c","object":"chat.completion.chunk","model":"qwen","system_fingerprint":null,
                    "choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}))),
                (120, chunk(json!({"id":"c","object":"chat.completion.chunk","model":"qwen",
                    "choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}))),
                (80, chunk(json!({"id":"c","object":"chat.completion.chunk","model":"qwen",
                    "choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]}))),
                (0, chunk(json!({"id":"c","object":"chat.completion.chunk","model":"qwen",
                    "choices":[{"index":0,"delta":{},"finish_reason":"length"}]}))),
                (0, chunk(json!({"id":"c","object":"chat.completion.chunk","model":"qwen","choices":[],
                    "usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}))),
                (0, "[DONE]".to_string()),
            ],
            true,
        )
    })
    .await;
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Chat,
        server.url(),
        "qwen",
    ))
    .unwrap();
    let c = client.complete(&req("hi", true)).await.unwrap();
    assert_eq!(c.text, "Hello world");
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(7), Some(2)));
    let ttft = c.ttft_ms.unwrap();
    assert!(ttft >= 110.0, "ttft {ttft}");
    assert!(c.latency_ms >= ttft + 70.0);
    let body = server.requests()[0].json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn streams_with_usage_in_the_final_choice_or_without_done_are_read_like_llama_cpp_and_tgi() {
    let server = Server::start(|_, hit| {
        let mut events = vec![
            (0, chunk(json!({"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],
                "model":"gemma","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}))),
            (0, chunk(json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"model":"gemma",
                "system_fingerprint":"b0-unknown","object":"chat.completion.chunk",
                "usage":{"completion_tokens":1,"prompt_tokens":4,"total_tokens":5},
                "timings":{"predicted_n":1}}))),
        ];
        if hit == 0 {
            events.push((0, "[DONE]".into()));
        }
        sse(&events, true)
    })
    .await;
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Chat,
        server.url(),
        "gemma",
    ))
    .unwrap();
    for _ in 0..2 {
        let c = client.complete(&req("hi", true)).await.unwrap();
        assert_eq!(c.text, "Hi");
        assert_eq!(c.output_tokens, Some(1));
        assert_eq!(c.system_fingerprint.as_deref(), Some("b0-unknown"));
        assert_eq!(c.finish_reason, Some(FinishReason::Stop));
    }
}

#[tokio::test]
async fn completions_api_sends_the_prompt_text_buffered_and_streamed() {
    let server = Server::start(|r, _| {
        if r.json()["stream"] == true {
            sse(
                &[
                    (0, chunk(json!({"object":"text_completion","model":"base","choices":[{"index":0,"text":" there","finish_reason":null}]}))),
                    (0, chunk(json!({"object":"text_completion","model":"base","choices":[{"index":0,"text":" was","finish_reason":"stop"}]}))),
                    (0, chunk(json!({"object":"text_completion","model":"base","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}))),
                    (0, "[DONE]".into()),
                ],
                true,
            )
        } else {
            json(
                200,
                &json!({"id":"cmpl-1","object":"text_completion","model":"base",
                    "choices":[{"index":0,"text":" there was a fox","logprobs":null,"finish_reason":"length"}],
                    "usage":{"prompt_tokens":4,"completion_tokens":4,"total_tokens":8}}),
            )
        }
    })
    .await;
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Completion,
        server.url(),
        "base",
    ))
    .unwrap();
    let c = client
        .complete(&req("Once upon a time", false))
        .await
        .unwrap();
    assert_eq!(c.text, " there was a fox");
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    let s = client
        .complete(&req("Once upon a time", true))
        .await
        .unwrap();
    assert_eq!(s.text, " there was");
    assert_eq!(s.output_tokens, Some(2));
    assert!(s.ttft_ms.is_some());
    for r in server.requests() {
        assert_eq!(r.path, "/v1/completions");
        assert_eq!(r.json()["prompt"], "Once upon a time");
        assert!(r.json().get("messages").is_none());
    }
}

fn vllm(r: &Recorded, _: usize) -> Reply {
    match r.path.as_str() {
        "/v1/models" => json(
            200,
            &json!({"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model",
                "created":1732000000,"owned_by":"vllm","root":"/models/Qwen2.5-7B-Instruct-AWQ",
                "parent":null,"max_model_len":32768,"permission":[{"id":"modelperm-1","object":"model_permission",
                "created":1732000000,"allow_sampling":true}]}]}),
        ),
        _ => json(404, &json!({"detail":"Not Found"})),
    }
}

#[tokio::test]
async fn fingerprint_from_vllm_uses_root_and_max_model_len_and_treats_missing_props_as_absent() {
    let server = Server::start(vllm).await;
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Chat,
        server.url(),
        "Qwen/Qwen2.5-7B-Instruct",
    ))
    .unwrap();
    let fp = client.fingerprint().await.unwrap();
    assert_eq!(fp.provider, "openai");
    assert_eq!(
        fp.digest.as_deref(),
        Some("/models/Qwen2.5-7B-Instruct-AWQ")
    );
    assert_eq!(fp.details["owned_by"], "vllm");
    assert_eq!(fp.details["max_model_len"], "32768");
    assert!(!fp.details.contains_key("served_id"));
    assert!(!fp.details.contains_key("created"));
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/models", "/props", "/info"]);
}

fn llama_cpp(build: &'static str) -> impl Fn(&Recorded, usize) -> Reply {
    move |r, hit| match r.path.as_str() {
        "/v1/models" => json(
            200,
            &json!({"models":[{"name":"gemma-3-270m-it-Q4_K_M.gguf","model":"gemma-3-270m-it-Q4_K_M.gguf",
                "modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],
                "capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf",
                "family":"","families":[""],"parameter_size":"","quantization_level":""}}],
                "object":"list","data":[{"id":"/srv/models/gemma-3-270m-it-Q4_K_M.gguf","object":"model",
                "created":1764000000 + hit,"owned_by":"llamacpp","meta":{"vocab_type":1,"n_vocab":262144,
                "n_ctx_train":32768,"n_embd":640,"n_params":268098176,"size":253007360}}]}),
        ),
        "/props" => json(
            200,
            &json!({"default_generation_settings":{"n_ctx":4096,"params":{"temperature":0.8}},
                "total_slots":2,"model_alias":"gemma","model_path":"/srv/models/gemma-3-270m-it-Q4_K_M.gguf",
                "model_ftype":"Q4_K - Medium","modalities":{"vision":false,"audio":false},
                "chat_template":"{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m.content }}{% endfor %}",
                "bos_token":"<bos>","eos_token":"<eos>","build_info":build}),
        ),
        _ => json(
            404,
            &json!({"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}),
        ),
    }
}

#[tokio::test]
async fn fingerprint_from_llama_cpp_reads_meta_and_props() {
    let server = Server::start(llama_cpp("b6100-1234abcd")).await;
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Completion,
        server.url(),
        "gemma",
    ))
    .unwrap();
    let fp = client.fingerprint().await.unwrap();
    assert_eq!(
        fp.digest.as_deref(),
        Some("gemma-3-270m-it-Q4_K_M.gguf (Q4_K - Medium)")
    );
    assert_eq!(
        fp.details["served_id"],
        "/srv/models/gemma-3-270m-it-Q4_K_M.gguf"
    );
    assert_eq!(fp.details["n_params"], "268098176");
    assert_eq!(fp.details["n_ctx_train"], "32768");
    assert_eq!(fp.details["n_vocab"], "262144");
    assert_eq!(fp.details["size"], "253007360");
    assert_eq!(fp.details["model_file"], "gemma-3-270m-it-Q4_K_M.gguf");
    assert_eq!(fp.details["chat_template_sha256"].len(), 64);
    assert_eq!(fp.details["build_info"], "b6100-1234abcd");
    // `created` changes on every call; the fingerprint must not.
    assert_eq!(fp.id(), client.fingerprint().await.unwrap().id());
    let rebuilt = Server::start(llama_cpp("b6200-99999999")).await;
    let other = build_client(config(
        ProviderKind::OpenAi,
        Api::Completion,
        rebuilt.url(),
        "gemma",
    ))
    .unwrap();
    assert_ne!(fp.id(), other.fingerprint().await.unwrap().id());
}

#[tokio::test]
async fn protected_props_is_absent_and_an_unlisted_model_on_a_multi_model_server_is_an_error() {
    let server = Server::start(|r, _| match r.path.as_str() {
        "/v1/models" => json(
            200,
            &json!({"object":"list","data":[{"id":"gpt-4o","object":"model","created":1,"owned_by":"system"},
                {"id":"gpt-4o-mini","object":"model","created":2,"owned_by":"system"}]}),
        ),
        _ => json(401, &json!({"error":{"message":"Invalid URL (GET /props)","type":"invalid_request_error"}})),
    })
    .await;
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Chat,
        server.url(),
        "gpt-4o",
    ))
    .unwrap();
    let fp = client.fingerprint().await.unwrap();
    assert_eq!(fp.digest, None);
    assert_eq!(fp.details["owned_by"], "system");
    let client = build_client(config(
        ProviderKind::OpenAi,
        Api::Chat,
        server.url(),
        "gpt-5",
    ))
    .unwrap();
    let e = client.fingerprint().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert!(
        e.message.contains("\"gpt-5\"") && e.message.contains("gpt-4o, gpt-4o-mini"),
        "{e}"
    );
}
