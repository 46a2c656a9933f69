//! End to end against a real llama.cpp `llama-server`: the server killed in the middle of a
//! canary, with the `modelwatch daemon` process watching it.
//!
//! - The canary against the baseline counts the unanswered requests as availability errors and
//!   exits 3 (inconclusive), never 1; `run` against the dead server exits 3 too.
//! - The daemon keeps running through the outage, raises no alert, and measures again by itself
//!   once the server is back on its port, with the same fingerprint (no swap).
//! - The same server restarted under another `--alias` is a swap event in the daemon.

use crate::llama_support;
use llama_support::*;
use modelwatch::store::Store;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs llama-server and the model; scripts/test runs it when MODELWATCH_LLAMA_SERVER is set (always in CI)"]
fn killed_server_is_inconclusive_the_daemon_recovers_and_an_alias_change_is_a_swap() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baselines").join("gemma.json");
    let baseline_s = baseline.display().to_string();
    let (port, daemon_port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let config = write_config(
        dir.path(),
        &[Target {
            samples: Some(1),
            baseline: Some(&baseline_s),
            ..Target::new("gemma", &url)
        }],
        Some(daemon_port),
    );
    let mut server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let record = modelwatch(
        &config,
        &["baseline", "record", "--target", "gemma", "--samples", "3"],
    );
    assert_eq!(record.code, 0, "{}", record.stderr);

    let daemon = Daemon::start(&config, daemon_port);
    let first = daemon.wait_until("a first daemon round", 120, |s| rounds(s, "gemma") >= 1);
    let fingerprint = target_status(&first, "gemma")["fingerprint"].clone();
    assert!(fingerprint.is_string(), "{first}");

    // A long canary; the server is killed once a few of its requests have been answered.
    let before = server.completions();
    let args = canary_args("gemma", &baseline_s, "8");
    let canary = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("-c")
        .arg(&config)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("modelwatch canary runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.completions() < before + 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();
    let killed_at = Instant::now();
    let out = canary.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let avail = &report["availability"]["candidate"];
    eprintln!(
        "canary, server killed mid-round: exit {:?}, verdict {}, {} of {} requests failed {}",
        out.status.code(),
        report["verdict"],
        avail["errors"],
        avail["requests"],
        avail["by_kind"]
    );
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert_eq!(report["verdict"], "inconclusive");
    // Every request after the kill fails (the round may stop early once the server is gone);
    // more than max_error_rate failed, which alone makes the verdict inconclusive.
    assert!(avail["errors"].as_u64().unwrap() >= 2, "{avail}");
    assert!(avail["error_rate"].as_f64().unwrap() > 0.2, "{avail}");
    assert!(
        avail["by_kind"]["connect"].as_u64().unwrap_or(0) >= 1,
        "{avail}"
    );
    assert!(
        report["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["verdict"] != "regression"),
        "no quality alarm from a crash: {}",
        metrics_line(&report)
    );
    assert!(
        report["reasons"].to_string().contains("requests failed"),
        "{}",
        report["reasons"]
    );

    // Nothing is listening: `run` measures nothing and exits 3.
    let dead = modelwatch(&config, &["run", "--target", "gemma", "--samples", "1"]);
    assert_eq!(dead.code, 3, "{}", dead.stderr);
    assert!(dead.stderr.contains("measured nothing"), "{}", dead.stderr);

    // The daemon lives through the outage: a round of errors only, no alert.
    let outage = daemon.wait_until("a daemon round against the dead server", 120, |s| {
        s.is_some_and(|s| {
            let last = &target_status(s, "gemma")["last_round"];
            last["errors"].as_u64().unwrap_or(0) > 0 && last["samples"] == last["errors"]
        })
    });
    eprintln!(
        "daemon during the outage: last round {} — {}",
        target_status(&outage, "gemma")["last_round"],
        readings(&outage, "gemma")
    );
    assert!(
        ever_alerted(&outage, "gemma").is_empty(),
        "{}",
        outage["alerts"]
    );

    // Back on the same port: the daemon measures again by itself, same fingerprint.
    let rounds_down = rounds(Some(&outage), "gemma");
    let mut server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let back = daemon.wait_until("a measured daemon round after the restart", 120, |s| {
        s.is_some_and(|s| {
            let t = target_status(s, "gemma");
            t["rounds"].as_u64().unwrap_or(0) > rounds_down
                && t["last_round"]["errors"] == 0
                && t["last_round"]["samples"].as_u64().unwrap_or(0) > 0
        })
    });
    let t = target_status(&back, "gemma");
    eprintln!(
        "daemon measured again {:.1} s after the kill: last round {}",
        killed_at.elapsed().as_secs_f64(),
        t["last_round"]
    );
    assert_eq!(t["fingerprint"], fingerprint);
    assert_eq!(t["swaps"], 0, "a restart of the same model is not a swap");
    assert!(
        ever_alerted(&back, "gemma").is_empty(),
        "{}",
        back["alerts"]
    );

    // The same weights under another alias: a swap event in the daemon.
    server.kill();
    let _server = Llama::start(&bin, &model, port, "gemma-3-270m-other", &[], dir.path());
    let swapped = daemon.wait_until("the daemon to see the swap", 120, |s| {
        s.is_some_and(|s| target_status(s, "gemma")["swaps"] == 1)
    });
    let t = target_status(&swapped, "gemma");
    eprintln!(
        "daemon after the alias change: fingerprint {} (was {fingerprint})",
        t["fingerprint"]
    );
    assert_ne!(t["fingerprint"], fingerprint);
    assert_eq!(daemon.stop(), Some(0));
    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let swaps: Vec<_> = store
        .events(Some("gemma"), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "swap")
        .collect();
    assert_eq!(swaps.len(), 1, "{swaps:?}");
    assert_eq!(swaps[0].payload["previous"], fingerprint);
    assert_eq!(swaps[0].payload["current"], t["fingerprint"]);
    eprintln!("test wall time {:.1} s", started.elapsed().as_secs_f64());
}
