//! End to end against a real llama.cpp `llama-server`: what is served is read from
//! `/v1/models` and `/props` through the provider; the same server started again gives the same
//! fingerprint, a different alias or chat template a different one, and `modelwatch run` stores
//! each change as a swap event. (The daemon's view of a swap: `tests/llama/llama_fault.rs`.)

use crate::llama_support;
use llama_support::*;
use modelwatch::provider::{self, Api, ClientConfig, Fingerprint, ProviderKind};
use modelwatch::store::Store;

fn fingerprint_of(url: &str, model: &str) -> Fingerprint {
    let client = provider::build_client(ClientConfig {
        kind: ProviderKind::OpenAi,
        api: Api::Completion,
        base_url: url.into(),
        model: model.into(),
        retries: 0,
        ..ClientConfig::default()
    })
    .expect("client");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.fingerprint())
        .expect("fingerprint")
}

/// Scenario: what is served is read from `/v1/models` and `/props`; the same server started
/// again gives the same fingerprint, a different alias or chat template a different one, and
/// `modelwatch run` stores the change as a swap event.
#[test]
#[ignore = "needs llama-server and the model; scripts/test runs it when MODELWATCH_LLAMA_SERVER is set (always in CI)"]
fn fingerprint_reads_models_and_props_and_a_changed_alias_or_template_is_a_swap() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = write_config(
        dir.path(),
        &[Target {
            seed: 1,
            max_tokens: 8,
            ..Target::new("fp", &url)
        }],
        None,
    );

    let mut server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let a = fingerprint_of(&server.url(), ALIAS);
    eprintln!("fingerprint {}: {:?}", a.id(), a);
    assert_eq!(a.provider, "openai");
    assert_eq!(
        a.digest.as_deref(),
        Some("gemma-3-270m-q4_k_m.gguf (Q4_K - Medium)"),
        "digest from /props model_path and model_ftype"
    );
    for key in [
        "n_params",
        "size",
        "n_vocab",
        "n_ctx_train",
        "chat_template_sha256",
        "build_info",
    ] {
        assert!(
            a.details.contains_key(key),
            "{key} missing from {:?}",
            a.details
        );
    }
    assert!(
        !a.details.contains_key("served_id"),
        "the alias is the listed model id"
    );
    let n_params: u64 = a.details["n_params"].parse().unwrap();
    assert!(
        (200_000_000..400_000_000).contains(&n_params),
        "Gemma 3 270M has about 270M parameters, /v1/models says {n_params}"
    );
    // Per-call values (created, slots) are not part of it: read again, same id.
    assert_eq!(fingerprint_of(&server.url(), ALIAS).id(), a.id());

    let first = modelwatch(&config, &["run", "--target", "fp", "--samples", "1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);

    // The same model file and arguments after a restart: the same fingerprint.
    server.kill();
    server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    assert_eq!(fingerprint_of(&server.url(), ALIAS).id(), a.id());

    // Another alias: the configured name is no longer listed; the single served model is used
    // and recorded as served_id, so the fingerprint differs.
    server.kill();
    server = Llama::start(&bin, &model, port, "gemma-3-270m-other", &[], dir.path());
    let b = fingerprint_of(&server.url(), ALIAS);
    assert_eq!(
        b.details.get("served_id").map(String::as_str),
        Some("gemma-3-270m-other")
    );
    assert_ne!(b.id(), a.id());
    let second = modelwatch(&config, &["run", "--target", "fp", "--samples", "1"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("swap"),
        "the run logs the swap: {}",
        second.stderr
    );

    // Another chat template, same weights and alias: the template hash differs.
    server.kill();
    server = Llama::start(
        &bin,
        &model,
        port,
        ALIAS,
        &["--chat-template", "chatml"],
        dir.path(),
    );
    let c = fingerprint_of(&server.url(), ALIAS);
    assert_ne!(
        c.details.get("chat_template_sha256"),
        a.details.get("chat_template_sha256")
    );
    assert_eq!(c.digest, a.digest, "same weights");
    assert_ne!(c.id(), a.id());
    assert_ne!(c.id(), b.id());
    let third = modelwatch(&config, &["run", "--target", "fp", "--samples", "1"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    drop(server);

    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let swaps: Vec<(String, String)> = store
        .events(Some("fp"), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "swap")
        .map(|e| {
            (
                e.payload["previous"].as_str().unwrap().to_string(),
                e.payload["current"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(swaps, vec![(a.id(), b.id()), (b.id(), c.id())]);
}
