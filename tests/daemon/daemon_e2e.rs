//! The daemon end to end, in process, against the real simulator over HTTP and a real SQLite
//! file: baseline promotion, a model swap that fires alerts visible in /api/v1/status and
//! /metrics, resolution after promoting the new model, and a restart in the middle of a firing
//! alert (no duplicate notification, state intact).
//!
//! The interval is shortened after loading (the configuration floor is 10 s) so a round follows
//! the previous one at once.

use crate::sinks_common;
use modelwatch::alert::{MemorySink, NotificationKind, Status};
use modelwatch::config::{self, Loaded};
use modelwatch::daemon::{self, Command, Options, promote::promote, state::Shared};
use modelwatch::runner::{Clock, SystemClock};
use modelwatch::sim::{self, Profile, SimHandle};
use modelwatch::store::Store;
use sinks_common::{Http, get_json, get_text, poll, run_daemon};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Env {
    _dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    sim: SimHandle,
}

fn setup() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 11).unwrap();
    let probes = std::fs::canonicalize("probes").unwrap();
    let db = dir.path().join("m.db");
    let text = format!(
        r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[alerts]
reminder = "0s"
[[target]]
name = "sim"
provider = "ollama"
base_url = "{url}"
model = "sim-7b"
suites = ["core", "json", "tasks"]
samples = 1
max_concurrency = 16
baseline = "baselines/sim.json"
jitter = "0s"
"#,
        probes = probes.display().to_string(),
        db = db.display().to_string(),
        url = sim.base_url(),
    );
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(&config, text).unwrap();
    Env {
        _dir: dir,
        config,
        db,
        sim,
    }
}

fn load(path: &Path) -> Loaded {
    let mut loaded = config::load_with_suites(path, &|_: &str| None).unwrap();
    for t in &mut loaded.config.targets {
        t.interval = Duration::from_millis(50);
        t.daemon.round_deadline = Duration::from_secs(60);
    }
    loaded
}

/// Polls `f` on the status every 50 ms for up to `secs`.
async fn wait_for(
    shared: &Shared,
    secs: u64,
    what: &str,
    f: impl Fn(&daemon::state::StatusDoc) -> bool,
) {
    poll(secs, || {
        if f(&shared.status()) {
            Ok(())
        } else {
            Err(format!(
                "timed out waiting for {what}: {:#?}",
                shared.status()
            ))
        }
    })
    .await;
}

fn rounds(s: &daemon::state::StatusDoc) -> u64 {
    s.targets.first().map(|t| t.rounds).unwrap_or(0)
}

fn firing(s: &daemon::state::StatusDoc) -> Vec<String> {
    s.alerts
        .iter()
        .filter(|a| a.status == Status::Firing)
        .map(|a| a.key.metric.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_fires_is_visible_over_http_and_resolves_after_promote_and_survives_restart() {
    let env = setup();
    let sink = MemorySink::new();

    // ---- first daemon life ----
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(8);
    let http = Http::serve(shared.clone(), tx.clone(), None).await;
    let addr = http.addr;
    let options = Options {
        sinks: vec![Arc::new(sink.clone())],
        seed: 3,
        ..Options::default()
    };
    let driver = async {
        // A few healthy rounds, then accept them as the baseline.
        wait_for(&shared, 60, "3 rounds", |s| rounds(s) >= 3).await;
        let loaded = load(&env.config);
        {
            let store = Store::open(&env.db).unwrap();
            let (b, _) = promote(&loaded, &store, "sim", 20, SystemClock.now_ms()).unwrap();
            assert!(b.counts().0 >= 3 * 28, "{:?}", b.counts());
        }
        wait_for(&shared, 60, "baseline loaded", |s| {
            s.targets[0].baseline.is_some() && !s.targets[0].metrics.is_empty()
        })
        .await;
        let at_baseline = rounds(&shared.status());
        // Healthy rounds against the baseline: nothing fires.
        wait_for(&shared, 60, "10 healthy rounds", |s| {
            rounds(s) >= at_baseline + 10
        })
        .await;
        assert!(
            firing(&shared.status()).is_empty(),
            "{:#?}",
            shared.status().alerts
        );

        // Swap to the degraded model.
        env.sim.set_profile(Profile::builtin("degraded").unwrap());
        let at_swap = rounds(&shared.status());
        wait_for(&shared, 90, "an alert firing and delivered", |s| {
            !firing(s).is_empty() && s.sinks.iter().all(|k| k.pending == 0)
        })
        .await;
        let after = rounds(&shared.status()) - at_swap;
        assert!(after <= 8, "fired only after {after} rounds");
        let status = shared.status();
        assert_eq!(status.targets[0].swaps, 1);
        assert!(
            sink.delivered()
                .iter()
                .any(|n| n.kind == NotificationKind::Info)
        );

        // Visible over HTTP.
        let client = reqwest::Client::new();
        let json = get_json(&client, &format!("http://{addr}/api/v1/status")).await;
        let alerts = json["alerts"].as_array().unwrap();
        let fired = alerts
            .iter()
            .find(|a| a["status"] == "firing")
            .expect("a firing alert in /api/v1/status");
        assert!(
            fired["evidence"]["e_value"].as_f64().unwrap() > 1.0,
            "{fired}"
        );
        assert!(fired["evidence"]["samples"].as_u64().unwrap() > 0);
        let metrics = get_text(&client, &format!("http://{addr}/metrics")).await;
        let metric = fired["key"]["metric"].as_str().unwrap();
        assert!(
            metrics.contains(&format!(
                "modelwatch_alert_firing{{target=\"sim\",metric=\"{metric}\",severity=\"warning\"}} 1"
            )),
            "{metrics}"
        );
        assert!(metrics.contains("modelwatch_swaps_total{target=\"sim\"} 1"));
        assert!(metrics.contains("modelwatch_requests_total{target=\"sim\",outcome=\"ok\"}"));
        let health = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        // The silence endpoint is refused without a configured token.
        let refused = client
            .post(format!("http://{addr}/api/v1/silence"))
            .body(r#"{"target":"sim","for":"1h"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
    };
    run_daemon(load(&env.config), &env.db, options, &shared, rx, driver).await;
    http.stop().await;
    let firing_before: Vec<String> = {
        let store = Store::open(&env.db).unwrap();
        store
            .alert_states()
            .unwrap()
            .into_iter()
            .filter(|a| a.status == Status::Firing)
            .map(|a| a.key.metric)
            .collect()
    };
    assert!(!firing_before.is_empty());
    let fired_first_life = sink
        .delivered()
        .iter()
        .filter(|n| n.kind == NotificationKind::Firing)
        .count();

    // ---- restart while firing ----
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(8);
    let sink2 = MemorySink::new();
    let options = Options {
        sinks: vec![Arc::new(sink2.clone())],
        seed: 4,
        ..Options::default()
    };
    let driver = async {
        wait_for(&shared, 60, "5 rounds after restart", |s| rounds(s) >= 5).await;
        // Still firing, no second firing notification.
        let now_firing = firing(&shared.status());
        for m in &firing_before {
            assert!(
                now_firing.contains(m),
                "{m} not firing after restart: {now_firing:?}"
            );
        }
        // A metric that was already firing is not notified again (another metric may fire
        // for the first time: that is a new incident, not a duplicate).
        let duplicates: Vec<_> = sink2
            .delivered()
            .into_iter()
            .filter(|n| n.kind == NotificationKind::Firing && firing_before.contains(&n.key.metric))
            .collect();
        assert!(duplicates.is_empty(), "{duplicates:#?}");

        // Accept the degraded model: the alerts resolve.
        let loaded = load(&env.config);
        {
            let store = Store::open(&env.db).unwrap();
            promote(&loaded, &store, "sim", 5, SystemClock.now_ms()).unwrap();
        }
        wait_for(&shared, 90, "alerts resolved and delivered", |s| {
            firing(s).is_empty() && s.sinks.iter().all(|k| k.pending == 0)
        })
        .await;
        let resolved: Vec<_> = sink2
            .delivered()
            .into_iter()
            .filter(|n| n.kind == NotificationKind::Resolved)
            .collect();
        assert!(!resolved.is_empty());
        // Resolution closes the incident opened before the restart.
        for m in &firing_before {
            let n = resolved
                .iter()
                .find(|n| &n.key.metric == m)
                .unwrap_or_else(|| panic!("{m} not resolved: {resolved:#?}"));
            assert!(n.incident.ends_with("#1"), "{n:?}");
        }
    };
    run_daemon(load(&env.config), &env.db, options, &shared, rx, driver).await;
    assert!(fired_first_life >= 1);
}

/// Between rounds the daemon keeps only a summary of the baseline; a swap reads the file
/// again for the new episode. A file that has gone by then leaves the swapped model
/// unmonitored (no baseline in the status, no quality alert against the last model's episode)
/// until it is back, which starts an episode against it that finds the degradation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_reads_the_baseline_again_and_waits_for_it_when_it_has_gone() {
    let env = setup();
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(8);
    let options = Options {
        seed: 5,
        ..Options::default()
    };
    let driver = async {
        wait_for(&shared, 60, "3 rounds", |s| rounds(s) >= 3).await;
        let loaded = load(&env.config);
        let path = loaded.config.targets[0].baseline.clone().unwrap();
        {
            let store = Store::open(&env.db).unwrap();
            promote(&loaded, &store, "sim", 20, SystemClock.now_ms()).unwrap();
        }
        wait_for(&shared, 60, "baseline loaded", |s| {
            s.targets[0].baseline.is_some() && !s.targets[0].metrics.is_empty()
        })
        .await;

        let aside = path.with_extension("aside");
        std::fs::rename(&path, &aside).unwrap();
        env.sim.set_profile(Profile::builtin("degraded").unwrap());
        wait_for(&shared, 60, "the swap", |s| s.targets[0].swaps == 1).await;
        let at_swap = rounds(&shared.status());
        wait_for(&shared, 60, "8 rounds after the swap", |s| {
            rounds(s) >= at_swap + 8
        })
        .await;
        let status = shared.status();
        assert!(
            status.targets[0].baseline.is_none(),
            "{:#?}",
            status.targets[0]
        );
        assert!(
            status.targets[0].metrics.is_empty(),
            "{:#?}",
            status.targets[0]
        );
        assert!(firing(&status).is_empty(), "{:#?}", status.alerts);

        std::fs::rename(&aside, &path).unwrap();
        wait_for(
            &shared,
            90,
            "a quality alert against the restored baseline",
            |s| s.targets[0].baseline.is_some() && !firing(s).is_empty(),
        )
        .await;
    };
    run_daemon(load(&env.config), &env.db, options, &shared, rx, driver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_new_configuration_and_silences_go_through_the_api() {
    let env = setup();
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(8);
    let token = modelwatch::config::Secret::new("0123456789abcdef-token");
    let http = Http::serve(shared.clone(), tx.clone(), Some(token)).await;
    let addr = http.addr;
    let driver = async {
        wait_for(&shared, 60, "a round", |s| rounds(s) >= 1).await;
        // Reload with a second target.
        let mut text = std::fs::read_to_string(&env.config).unwrap();
        text.push_str(&format!(
            "\n[[target]]\nname = \"second\"\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"sim-7b\"\nsuites = [\"core\"]\nsamples = 1\n",
            env.sim.base_url()
        ));
        std::fs::write(&env.config, text).unwrap();
        tx.send(Command::Reload(Box::new(load(&env.config))))
            .await
            .unwrap();
        wait_for(&shared, 60, "the second target's first round", |s| {
            s.targets
                .iter()
                .any(|t| t.name == "second" && t.rounds >= 1)
        })
        .await;
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/v1/silence");
        let token = "0123456789abcdef-token";
        let big = " ".repeat(64 * 1024);
        for (bearer, body, want) in [
            (
                "wrong-token-wrong-token",
                r#"{"target":"sim","for":"2h"}"#,
                401,
            ),
            (
                token,
                r#"{"target":"sim","for":"2h","reason":"upgrade"}"#,
                201,
            ),
            (token, r#"{"target":"nope","for":"2h"}"#, 400),
            (token, big.as_str(), 413),
        ] {
            let answer = client
                .post(&url)
                .bearer_auth(bearer)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let shown = &body[..body.len().min(60)];
            assert_eq!(status, want, "{shown}: {:?}", answer.text().await);
        }
        // The silence in force is visible: in the status JSON and on the status page.
        let status = get_json(&client, &format!("http://{addr}/api/v1/status")).await;
        let silences = status["silences"].as_array().expect("a silences list");
        assert_eq!(silences.len(), 1, "{status:#}");
        assert_eq!(silences[0]["target"], "sim");
        assert_eq!(silences[0]["reason"], "upgrade");
        let page = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("Silenced: all alerts muted until") && page.contains(": upgrade</p>"),
            "{page}"
        );
    };
    let options = Options::default();
    run_daemon(load(&env.config), &env.db, options, &shared, rx, driver).await;
    http.stop().await;
    let store = Store::open(&env.db).unwrap();
    let silences = store.active_silences(SystemClock.now_ms()).unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].reason, "upgrade");
}
