//! Server configuration as identity, on a real llama.cpp server: `/props` publishes the sampling
//! defaults (`default_generation_settings`); the same weights restarted with
//! `--repeat-penalty 1.5` keep their model fingerprint, change their config digest, and the
//! daemon watching them records one `config_changed` event (no swap), shown in its status and
//! in `modelwatch inventory`.

use crate::llama_support;
use llama_support::*;
use modelwatch::store::Store;

fn config_digest(status: &serde_json::Value) -> Option<String> {
    target_status(status, "gemma")["config_digest"]
        .as_str()
        .map(String::from)
}

#[test]
#[ignore = "needs llama-server and the model; scripts/test runs it when MODELWATCH_LLAMA_SERVER is set (always in CI)"]
fn other_sampling_defaults_are_a_config_change_not_a_swap() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (port, daemon_port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let config = write_config(
        dir.path(),
        &[Target {
            samples: Some(1),
            max_tokens: 8,
            ..Target::new("gemma", &url)
        }],
        Some(daemon_port),
    );
    let mut server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());

    // `run` shows what is served: the model fingerprint and the configuration digest.
    let run = modelwatch(&config, &["run", "--target", "gemma", "--samples", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let served = run
        .stdout
        .lines()
        .find(|l| l.starts_with("served by gemma: fingerprint "))
        .unwrap_or_else(|| panic!("{}", run.stdout))
        .to_string();
    assert!(!served.ends_with("config not published"), "{served}");

    let daemon = Daemon::start(&config, daemon_port);
    let before = daemon.wait_until("a round with a config digest", 120, |s| {
        s.is_some_and(|s| config_digest(s).is_some())
    });
    let (fingerprint, digest) = (
        target_status(&before, "gemma")["fingerprint"].clone(),
        config_digest(&before).unwrap(),
    );
    assert!(served.contains(&format!("config {digest}")), "{served}");
    eprintln!("before: fingerprint {fingerprint}, config {digest}");

    // The same weights and arguments, plus a sampling default the client does not send.
    server.kill();
    server = Llama::start(
        &bin,
        &model,
        port,
        ALIAS,
        &["--repeat-penalty", "1.5"],
        dir.path(),
    );
    let after = daemon.wait_until("a config_changed on the restarted server", 180, |s| {
        s.is_some_and(|s| target_status(s, "gemma")["config_changes"] == 1)
    });
    let t = target_status(&after, "gemma");
    eprintln!(
        "after: fingerprint {}, config {}, swaps {}, config changes {}",
        t["fingerprint"], t["config_digest"], t["swaps"], t["config_changes"]
    );
    assert_eq!(
        t["fingerprint"], fingerprint,
        "the model fingerprint is unchanged"
    );
    assert_eq!(t["swaps"], 0, "not a swap");
    assert_ne!(config_digest(&after).unwrap(), digest);
    assert!(daemon.log_text().contains("config_changed"));
    assert_eq!(daemon.stop(), Some(0));
    drop(server);

    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let events = store.events(Some("gemma"), 0).unwrap();
    assert!(events.iter().all(|e| e.kind != "swap"), "{events:?}");
    let changes: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "config_changed")
        .collect();
    assert_eq!(changes.len(), 1, "{events:?}");
    let payload = &changes[0].payload;
    assert_eq!(payload["fingerprint"], fingerprint);
    assert_eq!(payload["previous"], digest.as_str());
    assert_eq!(
        payload["changed"]["repeat_penalty"]["current"], "1.5",
        "{payload}"
    );
    assert_eq!(
        payload["changed"].as_object().map(|c| c.len()),
        Some(1),
        "only the repeat penalty changed: {payload}"
    );

    let inventory = modelwatch(&config, &["inventory", "--format", "json"]);
    assert_eq!(inventory.code, 0, "{}", inventory.stderr);
    let rows = inventory.json();
    assert_eq!(rows[0]["fingerprint"], fingerprint);
    assert_eq!(rows[0]["config_digest"], config_digest(&after).unwrap());
}
