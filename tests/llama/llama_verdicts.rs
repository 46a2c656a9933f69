//! End to end against a real llama.cpp `llama-server` with the real Gemma 3 270M model, through
//! the product's own decision path: `modelwatch baseline record`, `modelwatch canary` against
//! the baseline, and the `modelwatch daemon` process watching two servers with that baseline.
//!
//! - No change: the same server, and the same server after a restart, never give a regression
//!   verdict or an alert.
//! - A real change: a second server started with `--logit-bias 107+6` (the newline token made
//!   more likely, a sampling setting the fingerprint does not show) answers empty about half the
//!   time and in a few words otherwise. The canary exits 1 and the test prints how many samples
//!   per probe it took; the daemon watching that server fires an alert, the one watching the
//!   unchanged server does not.
//!
//! Every target sends the same `seed` (sample i gets seed + i), so a no-change replays the
//! baseline's requests, and the canary runs at `alpha = 0.001`: see docs/llama-cpp.md for the
//! bound on a false regression.

use crate::llama_support;
use llama_support::*;
use modelwatch::sample::Sample;
use modelwatch::store::{SampleQuery, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Samples per probe in the baseline (and the most the canary ladder may use).
const PER_PROBE: u32 = 5;
/// Samples per probe of the no-change canary.
const NO_CHANGE: &str = "4";
/// Samples per probe in one daemon round: the changed server, and the unchanged one (kept
/// small, so the daemon leaves the unchanged server's two slots to the canaries).
const PER_ROUND: u32 = 2;
const PER_ROUND_UNCHANGED: u32 = 1;

fn samples_of(db: &Path, target: &str) -> Vec<Sample> {
    Store::open(db)
        .expect("store")
        .samples(&SampleQuery {
            target: Some(target.into()),
            ..SampleQuery::default()
        })
        .expect("samples")
}

/// How many of `later`'s answers repeat the baseline's answer to the same probe and sample
/// index byte for byte (the seeds are the same).
fn replayed(baseline: &[Sample], later: &[Sample]) -> usize {
    let first: BTreeMap<(String, u32), Option<String>> = baseline
        .iter()
        .map(|s| ((s.probe_id.clone(), s.index), s.text.clone()))
        .collect();
    later
        .iter()
        .filter(|s| s.text.is_some() && first.get(&(s.probe_id.clone(), s.index)) == Some(&s.text))
        .count()
}

#[test]
#[ignore = "needs llama-server and the model; scripts/test runs it when MODELWATCH_LLAMA_SERVER is set (always in CI)"]
fn no_change_never_flags_and_a_silent_sampling_change_fails_canary_and_fires_the_daemon() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("modelwatch.db");
    let baseline = dir.path().join("baselines").join("gemma.json");
    let baseline_s = baseline.display().to_string();
    let (same_port, swapped_port, daemon_port) = (free_port(), free_port(), free_port());
    let bias = format!("{NEWLINE_TOKEN}+6");
    let same = Llama::start(&bin, &model, same_port, ALIAS, &[], dir.path());
    let swapped = Llama::start(
        &bin,
        &model,
        swapped_port,
        ALIAS,
        &["--logit-bias", &bias],
        dir.path(),
    );
    let (same_url, swapped_url) = (same.url(), swapped.url());
    let config = write_config(
        dir.path(),
        &[
            Target {
                samples: Some(PER_ROUND_UNCHANGED),
                baseline: Some(&baseline_s),
                ..Target::new("gemma", &same_url)
            },
            Target {
                samples: Some(PER_ROUND),
                baseline: Some(&baseline_s),
                ..Target::new("swapped", &swapped_url)
            },
        ],
        Some(daemon_port),
    );
    let per_probe = PER_PROBE.to_string();

    // The baseline, from the unchanged server.
    let record = modelwatch(
        &config,
        &[
            "baseline",
            "record",
            "--target",
            "gemma",
            "--samples",
            &per_probe,
        ],
    );
    assert_eq!(record.code, 0, "{}", record.stderr);
    assert!(baseline.is_file(), "{}", record.stderr);
    let base = samples_of(&db, "gemma");
    assert_eq!(base.len(), (PROBES * PER_PROBE) as usize);
    assert!(base.iter().all(|s| !s.is_error()));
    let latency: Vec<f64> = base.iter().map(|s| s.latency_ms).collect();
    eprintln!(
        "baseline record: {} samples in {:.1} s, mean latency {:.0} ms (2 in flight)",
        base.len(),
        record.wall.as_secs_f64(),
        latency.iter().sum::<f64>() / latency.len() as f64
    );

    // The daemon watches both servers with that baseline from now on, while the canaries run.
    let daemon = Daemon::start(&config, daemon_port);
    let t0 = Instant::now();
    // Polls the status while the canaries run: the round at which the alert first shows.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(s) = http_get(daemon_port, "/api/v1/status")
                    .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                    && !firing(&s, "swapped").is_empty()
                {
                    return Some((rounds(Some(&s), "swapped"), t0.elapsed()));
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            None
        })
    };

    // No change: the canary against the baseline on the same server.
    let no_change = modelwatch(&config, &canary_args("gemma", &baseline_s, NO_CHANGE));
    let report = no_change.json();
    eprintln!(
        "no change: exit {} ({}) in {:.1} s — {}",
        no_change.code,
        report["verdict"],
        no_change.wall.as_secs_f64(),
        metrics_line(&report)
    );
    assert_ne!(no_change.code, 1, "{}", no_change.stdout);
    assert!(matches!(no_change.code, 0 | 3), "{}", no_change.stderr);
    assert_ne!(report["verdict"], "regression");
    let all = samples_of(&db, "gemma");
    let again = all.get(base.len()..).unwrap_or_default();
    eprintln!(
        "no change: {} of {} later answers (canary and daemon rounds so far) repeat the \
         baseline's answer to the same probe and seed byte for byte",
        replayed(&base, again),
        again.len()
    );

    // The changed server: the canary until it fails, one more sample per probe each time.
    let mut took = None;
    for k in 1..=PER_PROBE {
        let k_s = k.to_string();
        let out = modelwatch(&config, &canary_args("swapped", &baseline_s, &k_s));
        let report = out.json();
        eprintln!(
            "changed server, {k} per probe ({} samples): exit {} in {:.1} s — {}",
            PROBES * k,
            out.code,
            out.wall.as_secs_f64(),
            metrics_line(&report)
        );
        assert_ne!(out.code, 2, "{}", out.stderr);
        if out.code == 1 {
            assert_eq!(report["verdict"], "regression");
            // It is the lengths and empty answers that moved, not truncation (which fell).
            let moved: Vec<&str> = ["length_chars", "length_tokens", "empty_rate"]
                .into_iter()
                .filter(|m| metric_verdict(&report, m) == "regression")
                .collect();
            assert!(!moved.is_empty(), "{}", metrics_line(&report));
            assert_ne!(metric_verdict(&report, "truncation_rate"), "regression");
            took = Some(k);
            break;
        }
    }
    let took = took.expect("the canary detects the changed server within the baseline's size");
    eprintln!(
        "canary detected the change with {took} samples per probe ({} samples)",
        PROBES * took
    );

    // The daemon: an alert on the changed server, none on the unchanged one.
    let fired = daemon.wait_until("an alert on the changed server", 180, |s| {
        s.is_some_and(|s| !firing(s, "swapped").is_empty())
    });
    done.store(true, Ordering::SeqCst);
    let (detect_rounds, detect_after) = watcher
        .join()
        .unwrap()
        .unwrap_or_else(|| (rounds(Some(&fired), "swapped"), t0.elapsed()));
    eprintln!(
        "daemon: alert {:?} on the changed server after {detect_rounds} rounds ({} samples), \
         {:.1} s after start — {}",
        firing(&fired, "swapped"),
        u64::from(PROBES * PER_ROUND) * detect_rounds,
        detect_after.as_secs_f64(),
        readings(&fired, "swapped")
    );
    assert!(detect_rounds >= 1);
    assert_eq!(
        target_status(&fired, "swapped")["swaps"],
        0,
        "no fingerprint change"
    );
    // The unchanged server gets at least as many rounds, and no alert.
    let watched = daemon.wait_until("rounds on the unchanged server", 120, |s| {
        rounds(s, "gemma") >= detect_rounds.max(3)
    });
    eprintln!(
        "daemon: unchanged server after {} rounds — {}",
        rounds(Some(&watched), "gemma"),
        readings(&watched, "gemma")
    );
    assert!(
        ever_alerted(&watched, "gemma").is_empty(),
        "{}",
        watched["alerts"]
    );

    // The unchanged server restarted: the canary still passes or is inconclusive, and the
    // daemon, which keeps running, neither alerts nor sees a swap.
    drop(same);
    let _same = Llama::start(&bin, &model, same_port, ALIAS, &[], dir.path());
    let restarted_at = rounds(daemon.status().as_ref(), "gemma");
    let after = modelwatch(&config, &canary_args("gemma", &baseline_s, "2"));
    let report = after.json();
    eprintln!(
        "no change after restart: exit {} ({}) — {}",
        after.code,
        report["verdict"],
        metrics_line(&report)
    );
    assert!(matches!(after.code, 0 | 3), "{}", after.stdout);
    assert_ne!(report["verdict"], "regression");
    let last = daemon.wait_until("daemon rounds after the restart", 120, |s| {
        rounds(s, "gemma") > restarted_at
            && s.is_some_and(|s| target_status(s, "gemma")["last_round"]["errors"] == 0)
    });
    eprintln!(
        "daemon: unchanged server after restart, {} rounds — {}",
        rounds(Some(&last), "gemma"),
        readings(&last, "gemma")
    );
    assert!(
        ever_alerted(&last, "gemma").is_empty(),
        "{}",
        last["alerts"]
    );
    assert_eq!(target_status(&last, "gemma")["swaps"], 0);
    assert!(!firing(&last, "swapped").is_empty(), "still firing");
    assert_eq!(daemon.stop(), Some(0));
    drop(swapped);
    eprintln!("test wall time {:.1} s", started.elapsed().as_secs_f64());
}
