//! Seeded mutation fuzzing, bounded to seconds: provider response parsing over real HTTP (Ollama
//! NDJSON lines and buffered bodies, OpenAI-compatible SSE frames and buffered bodies), JSON
//! extraction and evaluation of random and mutated texts, and baseline files. Nothing may
//! panic; every failure is a classified error; what parses obeys simple invariants.

use crate::provider_common;
use modelwatch::baseline::Baseline;
use modelwatch::eval::{CompiledChecks, Evaluator, RefusalConfig, structured};
use modelwatch::probe::{Expect, GenParams, ProbeInput};
use modelwatch::provider::{Api, CompletionRequest, ProviderKind, build_client};
use modelwatch::rng::Rng;
use modelwatch::sample::{Completion, ErrorKind, FinishReason};
use provider_common::{Server, chunked, config, respond};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const PUNCT: &[u8] = b"{}[]\":,\n\\ 0123456789.-eE:datnulrfs\xc3\xa9";

/// One to four byte-level mutations: flips, deletions, insertions, truncation, duplication.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(6) {
            0 => bytes[at] = PUNCT[rng.below(PUNCT.len() as u64) as usize],
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, PUNCT[rng.below(PUNCT.len() as u64) as usize]),
            3 => bytes.truncate(at),
            4 => {
                let end = (at + 1 + rng.below(40) as usize).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
            _ => bytes[at] = rng.below(256) as u8,
        }
    }
    bytes
}

fn openai_bodies(stream: bool) -> Vec<u8> {
    if stream {
        let mut s = String::new();
        for w in ["Hello", " there", ", ", "{\"a\": 1}"] {
            s.push_str(&format!(
                "data: {}\n\n",
                json!({"choices":[{"index":0,"delta":{"content":w},"finish_reason":null}]})
            ));
        }
        s.push_str(&format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
                   "usage":{"prompt_tokens":3,"completion_tokens":4}})
        ));
        s.into_bytes()
    } else {
        json!({"id":"x","model":"m","system_fingerprint":"fp","choices":[{"index":0,
               "message":{"role":"assistant","content":"Hello {\"a\": 1}"},
               "finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}})
        .to_string()
        .into_bytes()
    }
}

fn ollama_bodies(stream: bool) -> Vec<u8> {
    if stream {
        let mut s = String::new();
        for w in ["Hello", " there", " {\"a\": 1}"] {
            s.push_str(&format!(
                "{}\n",
                json!({"model":"m","message":{"role":"assistant","content":w},"done":false})
            ));
        }
        s.push_str(&format!(
            "{}\n",
            json!({"model":"m","message":{"role":"assistant","content":""},"done":true,
                   "done_reason":"stop","eval_count":3,"prompt_eval_count":2})
        ));
        s.into_bytes()
    } else {
        json!({"model":"m","message":{"role":"assistant","content":"Hello {\"a\": 1}"},
               "done":true,"done_reason":"stop","eval_count":3})
        .to_string()
        .into_bytes()
    }
}

const CASES_PER_MODE: usize = 150;

async fn fuzz_provider(kind: ProviderKind, stream: bool, seed: u64) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let valid = match kind {
        ProviderKind::OpenAi => openai_bodies(stream),
        ProviderKind::Ollama => ollama_bodies(stream),
    };
    // Case 0 is the valid body itself, so the harness is known to accept good input.
    let mut bodies = vec![valid.clone()];
    bodies.extend((1..CASES_PER_MODE).map(|_| mutate(&mut rng, &valid)));
    let bodies = Arc::new(bodies);
    let served = bodies.clone();
    let server = Server::start(move |_, hit| {
        let body = &served[hit % served.len()];
        if stream {
            let ct = match kind {
                ProviderKind::OpenAi => "text/event-stream",
                ProviderKind::Ollama => "application/x-ndjson",
            };
            // Split the body into a few chunks at arbitrary points: frames straddle chunks.
            let cut = [body.len() / 3, 2 * body.len() / 3];
            let parts = [
                (0u64, &body[..cut[0]]),
                (0, &body[cut[0]..cut[1]]),
                (0, &body[cut[1]..]),
            ];
            let parts: Vec<(u64, &[u8])> =
                parts.into_iter().filter(|(_, b)| !b.is_empty()).collect();
            chunked(ct, &parts, true)
        } else {
            respond(200, &[("Content-Type", "application/json")], body)
        }
    })
    .await;
    let mut cfg = config(kind, Api::Chat, server.url(), "m");
    cfg.stream = stream;
    cfg.retries = 0;
    let client = build_client(cfg).unwrap();
    let request = CompletionRequest {
        input: ProbeInput::Prompt("hi".into()),
        params: GenParams::default(),
        stream,
    };
    let (mut ok, mut err) = (0, 0);
    for i in 0..CASES_PER_MODE {
        let label = format!("{} stream={stream} case {i}", kind.as_str());
        match client.complete(&request).await {
            Ok(c) => {
                ok += 1;
                assert!(c.latency_ms >= 0.0, "{label}");
                if i == 0 {
                    assert!(c.text.starts_with("Hello"), "{label}: {c:?}");
                }
            }
            Err(e) => {
                err += 1;
                assert!(i > 0, "{label}: the valid body failed: {e}");
                assert!(e.kind == ErrorKind::MalformedBody, "{label}: {e}");
            }
        }
    }
    assert_eq!(server.hits(), CASES_PER_MODE);
    (ok, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_provider_responses_parse_or_fail_as_malformed_never_panic() {
    let mut total = (0, 0);
    for (i, (kind, stream)) in [
        (ProviderKind::OpenAi, false),
        (ProviderKind::OpenAi, true),
        (ProviderKind::Ollama, false),
        (ProviderKind::Ollama, true),
    ]
    .into_iter()
    .enumerate()
    {
        let (ok, err) = fuzz_provider(kind, stream, 1000 + i as u64).await;
        // Mutations must reach both sides, or the fuzzer tests nothing.
        assert!(
            ok > 1 && err > 10,
            "{kind:?} stream={stream}: {ok} ok, {err} errors"
        );
        total.0 += ok;
        total.1 += err;
    }
    println!(
        "provider fuzz: {} mutated responses, {} parsed, {} malformed, no panic",
        total.0 + total.1,
        total.0,
        total.1
    );
}

const WORDS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "```json",
    "```",
    "\n",
    " ",
    "answer",
    "42",
    "-3.5e2",
    "null",
    "true",
    "I'm sorry, but I can't help with that.",
    "Je ne peux pas",
    "é",
    "😀",
    "\\u00e9",
    "\\",
    "total",
    "vendor",
    "ACME",
    "\u{0}",
    "\u{202e}",
    "<think>",
    "</think>",
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(60) as usize;
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect()
}

fn expect(schema: serde_json::Value) -> Expect {
    let text = format!(
        "suite = \"f\"\n[[probe]]\nid = \"p\"\nprompt = \"x\"\n[probe.expect]\njson_schema = {}\n\
         [probe.expect.task]\nkind = \"json_equals\"\npointer = \"/total\"\nvalue = 42.5\n",
        toml_inline(&schema)
    );
    let suite =
        modelwatch::probe::load::parse_suite(&modelwatch::diag::Source::new("f.toml", text))
            .unwrap_or_else(|d| panic!("{}", modelwatch::diag::render_all(&d)));
    suite.probes[0].expect.clone()
}

fn toml_inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k:?} = {}", toml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_inline).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[test]
fn extraction_and_evaluation_survive_random_and_mutated_texts() {
    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let schema = json!({"type": "object", "required": ["vendor", "total"],
                        "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}}});
    let checks = CompiledChecks::compile(&expect(schema), Path::new(".")).unwrap();
    let seeds = [
        "```json\n{\"vendor\": \"ACME Tools Ltd.\", \"total\": 42.5}\n```",
        "Sure! {\"vendor\": \"ACME\", \"total\": 42.5} Hope that helps.",
        "I'm sorry, but I can't help with that.",
        "",
    ];
    let mut rng = Rng::new(77);
    let mut outcomes = std::collections::BTreeMap::new();
    let cases = 3000;
    for i in 0..cases {
        let text = if i % 2 == 0 {
            random_text(&mut rng)
        } else {
            let base = seeds[rng.below(seeds.len() as u64) as usize];
            String::from_utf8_lossy(&mutate(&mut rng, base.as_bytes())).into_owned()
        };
        let _ = structured::extract(&text, modelwatch::probe::JsonExtract::Embedded);
        let finish = [None, Some(FinishReason::Stop), Some(FinishReason::Length)]
            [rng.below(3) as usize]
            .clone();
        let completion = Completion {
            text: text.clone(),
            finish_reason: finish,
            ..Completion::default()
        };
        let with = evaluator.evaluate(&completion, Some(&checks));
        let without = evaluator.evaluate(&completion, None);
        assert_eq!(with.chars as usize, text.chars().count(), "{text:?}");
        assert_eq!(with.chars, without.chars);
        assert_eq!(with.refusal, without.refusal, "{text:?}");
        assert!(
            with.structured.is_some(),
            "a JSON probe always has an outcome"
        );
        assert!(without.structured.is_none());
        if with.empty {
            assert!(text.trim().is_empty() || with.chars == 0 || with.words == 0);
        }
        *outcomes
            .entry(format!("{:?}", with.structured.unwrap()))
            .or_insert(0) += 1;
        let _ = evaluator.explain(&completion, Some(&checks));
    }
    // The fuzzer reaches every kind of outcome, including success.
    assert!(outcomes.len() >= 4, "{outcomes:?}");
    println!("evaluation fuzz: {cases} texts, structured outcomes {outcomes:?}, no panic");
}

#[test]
fn mutated_baseline_files_load_or_fail_with_a_clear_error() {
    let path = Path::new("tests/fixtures/baselines/small-v1.json");
    let valid = std::fs::read(path).unwrap();
    let mut rng = Rng::new(5);
    let (mut ok, mut err) = (0, 0);
    for i in 0..1500 {
        let text = String::from_utf8_lossy(&mutate(&mut rng, &valid)).into_owned();
        match Baseline::parse(path, &text) {
            Ok(b) => {
                ok += 1;
                // What loads survives its own writer unchanged.
                let again = Baseline::parse(path, &b.to_json())
                    .unwrap_or_else(|e| panic!("case {i}: re-parse failed: {e}"));
                assert_eq!(again, b, "case {i}");
            }
            Err(e) => {
                err += 1;
                let msg = e.to_string();
                assert!(msg.contains("small-v1.json"), "case {i}: {msg}");
            }
        }
    }
    assert!(ok > 5 && err > 100, "{ok} ok, {err} errors");
    println!("baseline fuzz: 1500 mutated files, {ok} loaded and round-tripped, {err} rejected");
}
