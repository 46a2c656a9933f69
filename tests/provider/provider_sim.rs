//! Both provider clients against the built-in simulator over real HTTP: streaming and not,
//! usage and timing, fingerprints and swaps, and every fault the simulator injects recorded as
//! the right infrastructure error with bounded retries.

use modelwatch::probe::{GenParams, ProbeInput};
use modelwatch::provider::{
    Api, ClientConfig, CompletionRequest, ModelClient, ProviderKind, build_client,
};
use modelwatch::sample::{ErrorKind, FinishReason};
use modelwatch::sim::{self, Profile, SimHandle};
use std::sync::Arc;
use std::time::Duration;

const KINDS: [ProviderKind; 2] = [ProviderKind::Ollama, ProviderKind::OpenAi];

fn quick(mut p: Profile) -> Profile {
    p.latency_scale = 0.0;
    p.retry_after_secs = 0;
    p
}

fn client(sim: &SimHandle, kind: ProviderKind, stream: bool, retries: u32) -> Arc<dyn ModelClient> {
    let model = sim.profile().models[0].clone();
    build_client(ClientConfig {
        kind,
        api: Api::Chat,
        base_url: format!("http://{}", sim.addr()),
        model,
        stream,
        retries,
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_millis(700),
        total_timeout: Duration::from_millis(700),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .expect("client")
}

fn request(prompt: &str, seed: u64) -> CompletionRequest {
    CompletionRequest {
        input: ProbeInput::Prompt(prompt.into()),
        params: GenParams {
            max_tokens: Some(400),
            seed: Some(seed),
            ..GenParams::default()
        },
        stream: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_providers_stream_and_not_with_usage_timing_and_fingerprints() {
    let sim = sim::spawn_on_free_port(quick(Profile::default()), 5).unwrap();
    let mut ids = Vec::new();
    for kind in KINDS {
        for stream in [false, true] {
            let c = client(&sim, kind, stream, 0);
            for seed in 0..5 {
                let out = c
                    .complete(&request("Explain how a hash map works.", seed))
                    .await
                    .unwrap_or_else(|e| panic!("{kind:?} stream={stream}: {e}"));
                assert!(!out.text.trim().is_empty());
                // The simulator's token is a whitespace-separated word.
                let words = out.text.split_whitespace().count() as u32;
                assert_eq!(out.output_tokens, Some(words), "{kind:?} stream={stream}");
                assert!(matches!(
                    out.finish_reason,
                    Some(FinishReason::Stop | FinishReason::Length)
                ));
                assert_eq!(out.ttft_ms.is_some(), stream, "{kind:?} stream={stream}");
                assert_eq!(out.attempts, 1);
            }
        }
        let fp = client(&sim, kind, false, 0).fingerprint().await.unwrap();
        assert!(
            fp.digest.is_some() || !fp.details.is_empty(),
            "{kind:?}: empty fingerprint {fp:?}"
        );
        ids.push(fp.id());
    }

    // A swap changes what both APIs report.
    sim.set_profile(quick(Profile::builtin("degraded").unwrap()));
    for (kind, before) in KINDS.iter().zip(&ids) {
        let after = client(&sim, *kind, false, 0).fingerprint().await.unwrap();
        assert_ne!(&after.id(), before, "{kind:?}: swap not visible");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_is_the_right_error_with_bounded_retries() {
    // (rate to set, expected kind, retried?)
    type Setter = fn(&mut sim::profile::Rates);
    let faults: [(&str, Setter, ErrorKind, bool); 5] = [
        (
            "error_5xx",
            |r| r.error_5xx = 1.0,
            ErrorKind::HttpStatus,
            true,
        ),
        (
            "rate_limit",
            |r| r.rate_limit = 1.0,
            ErrorKind::HttpStatus,
            true,
        ),
        ("timeout", |r| r.timeout = 1.0, ErrorKind::Timeout, true),
        (
            "malformed",
            |r| r.malformed = 1.0,
            ErrorKind::MalformedBody,
            false,
        ),
        (
            "disconnect",
            |r| r.disconnect = 1.0,
            ErrorKind::MalformedBody,
            false,
        ),
    ];
    let retries = 2;
    for (name, set, kind, retried) in faults {
        for provider in KINDS {
            for stream in [false, true] {
                let mut profile = quick(Profile::default());
                set(&mut profile.rates);
                let sim = sim::spawn_on_free_port(profile, 9).unwrap();
                let c = client(&sim, provider, stream, retries);
                let err = c
                    .complete(&request("Name three primary colours.", 1))
                    .await
                    .expect_err(name);
                let what = format!("{name} via {provider:?} stream={stream}: {err}");
                assert_eq!(err.kind, kind, "{what}");
                let expected_attempts = if retried { retries + 1 } else { 1 };
                assert_eq!(err.attempts, expected_attempts, "{what}");
                if name == "rate_limit" {
                    assert_eq!(err.status, Some(429), "{what}");
                }
                if name == "error_5xx" {
                    assert!(matches!(err.status, Some(500 | 502 | 503)), "{what}");
                }
                // The server saw exactly the attempts the client reports: retries are bounded.
                let endpoint = match provider {
                    ProviderKind::Ollama => "/api/chat",
                    ProviderKind::OpenAi => "/v1/chat/completions",
                };
                let seen = sim.stats().count(endpoint, name);
                assert_eq!(seen, expected_attempts as u64, "{what}: server saw {seen}");
                sim.shutdown().await;
            }
        }
    }
}
