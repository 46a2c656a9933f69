//! License drift end to end, in process, against the simulator's Ollama API over HTTP and a
//! real SQLite file: the served model's terms come from `/api/show`, a pinned target with an
//! allowed license is *safe*, an unpinned one *watch*; a swap to a model under other terms
//! (not in `allowed_licenses`) fires a critical `license_changed` through the sinks, turns
//! the tier to *act* in the status and `/metrics`, and the inventory shows both states.

use crate::sinks_common;
use modelwatch::alert::{MemorySink, NotificationKind, Severity, Status};
use modelwatch::config::{self, Loaded};
use modelwatch::daemon::{Options, promote::inventory, state::Shared, state::StatusDoc};
use modelwatch::runner::{Clock, SystemClock};
use modelwatch::sim::{self, Profile};
use modelwatch::store::Store;
use sinks_common::{poll, run_daemon};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const GEMMA_DIGEST: &str = "9d2f4c6e8a0b1d3f5a7c5e2c1b7f0d4a9c3e8b6f1a2d7c4e9b0a3f6d8c1e5b7a";

fn apache() -> Profile {
    Profile::builtin("healthy").unwrap()
}

/// Another model behind the same name, under the Gemma terms.
fn gemma() -> Profile {
    let mut p = Profile::builtin("healthy").unwrap();
    p.fingerprint.digest = GEMMA_DIGEST.into();
    p.fingerprint.family = "gemma3".into();
    p.fingerprint.license = "Gemma Terms of Use\nLast modified: March 24, 2025\n".into();
    p.fingerprint.license_id = "gemma".into();
    p
}

fn load(path: &Path) -> Loaded {
    let mut loaded = config::load_with_suites(path, &|_: &str| None).unwrap();
    for t in &mut loaded.config.targets {
        t.interval = Duration::from_millis(50);
        t.daemon.round_deadline = Duration::from_secs(60);
    }
    loaded
}

fn target<'a>(s: &'a StatusDoc, name: &str) -> &'a modelwatch::daemon::state::TargetStatus {
    s.targets.iter().find(|t| t.name == name).unwrap()
}

fn license_alert(s: &StatusDoc, name: &str) -> Option<(Status, Severity)> {
    s.alerts
        .iter()
        .find(|a| a.key.target == name && a.key.metric == "license_changed")
        .map(|a| (a.status, a.severity))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_to_other_terms_fires_license_changed_and_turns_the_tier_to_act() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim::spawn_on_free_port(apache(), 21).unwrap();
    let probes = std::fs::canonicalize("probes").unwrap();
    let db = dir.path().join("m.db");
    let digest = apache().fingerprint.digest;
    let today = &modelwatch::time::rfc3339_utc(SystemClock.now_ms())[..10];
    let text = format!(
        r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[alerts]
reminder = "0s"
[policy]
allowed_licenses = ["apache-2.0", "mit"]
review_after = "180d"
[[target]]
name = "sim"
provider = "ollama"
base_url = "{url}"
model = "sim-7b"
suites = ["core"]
samples = 1
jitter = "0s"
pin = {{ model = "sha256:{digest}", approved_by = "legal", approved_on = "{today}", license = "apache-2.0" }}
[[target]]
name = "loose"
provider = "ollama"
base_url = "{url}"
model = "sim-7b"
suites = ["core"]
samples = 1
jitter = "0s"
"#,
        probes = probes.display().to_string(),
        db = db.display().to_string(),
        url = sim.base_url(),
    );
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(&cfg, text).unwrap();

    let sink = MemorySink::new();
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(8);
    let options = Options {
        sinks: vec![Arc::new(sink.clone())],
        ..Options::default()
    };
    let (sh, sinkc, simh, cfgp, dbp) = (shared.clone(), sink.clone(), &sim, &cfg, &db);
    let driver = async move {
        poll(60, || {
            let s = sh.status();
            let (a, b) = (target(&s, "sim"), target(&s, "loose"));
            if a.rounds >= 2 && b.rounds >= 2 {
                Ok(())
            } else {
                Err(format!("waiting for rounds: {} {}", a.rounds, b.rounds))
            }
        })
        .await;
        let s = sh.status();
        let a = target(&s, "sim");
        assert_eq!(a.tier, "safe", "{:?}", a.tier_reasons);
        let ev = a.license.as_ref().unwrap();
        assert_eq!(
            (ev.license.as_deref(), ev.source.as_str()),
            (Some("apache-2.0"), "ollama_show")
        );
        assert!(ev.sha256.is_some());
        let b = target(&s, "loose");
        assert_eq!(b.tier, "watch");
        assert!(
            b.tier_reasons[0].contains("unpinned"),
            "{:?}",
            b.tier_reasons
        );
        let metrics = sh.render_metrics();
        for line in [
            "modelwatch_target_tier{target=\"sim\",tier=\"safe\"} 1",
            "modelwatch_target_tier{target=\"loose\",tier=\"watch\"} 1",
            "modelwatch_target_tier{target=\"loose\",tier=\"safe\"} 0",
        ] {
            assert!(metrics.contains(line), "{line}\n{metrics}");
        }
        assert_eq!(
            license_alert(&s, "sim"),
            Some((Status::Ok, Severity::Warning))
        );
        let before = {
            let store = Store::open(dbp).unwrap();
            inventory(&load(cfgp), &store, SystemClock.now_ms()).unwrap()
        };
        let row = before.iter().find(|r| r.target == "sim").unwrap();
        assert_eq!(
            (row.license.as_deref(), row.tier.as_str()),
            (Some("apache-2.0"), "safe")
        );

        // The same name now serves a model under the Gemma terms. A fingerprint is read with
        // two requests (`/api/tags`, then `/api/show`); a switch between them shows the new
        // terms one round before the new digest, so wait for both.
        simh.set_profile(gemma());
        poll(60, || {
            let s = sh.status();
            match (
                license_alert(&s, "sim"),
                license_alert(&s, "loose"),
                target(&s, "sim").swaps,
            ) {
                (Some((Status::Firing, _)), Some((Status::Firing | Status::Resolved, _)), 1) => {
                    Ok(())
                }
                other => Err(format!(
                    "waiting for license_changed and the swap: {other:?}"
                )),
            }
        })
        .await;
        let s = sh.status();
        let a = target(&s, "sim");
        assert_eq!(a.swaps, 1);
        assert_eq!(
            license_alert(&s, "sim"),
            Some((Status::Firing, Severity::Critical))
        );
        assert_eq!(a.tier, "act");
        let reasons = a.tier_reasons.join("; ");
        assert!(
            reasons.contains("gemma is not in allowed_licenses"),
            "{reasons}"
        );
        assert!(
            reasons.contains("serves license gemma, the pin approved apache-2.0"),
            "{reasons}"
        );
        assert!(
            sh.render_metrics()
                .contains("modelwatch_target_tier{target=\"sim\",tier=\"act\"} 1")
        );
        poll(30, || {
            let fired = sinkc.delivered().into_iter().find(|n| {
                n.key.target == "sim"
                    && n.key.metric == "license_changed"
                    && n.kind == NotificationKind::Firing
            });
            fired.ok_or_else(|| "waiting for the delivery".to_string())
        })
        .await;
        let n = sinkc
            .delivered()
            .into_iter()
            .find(|n| n.key.metric == "license_changed" && n.key.target == "sim")
            .unwrap();
        assert_eq!(n.severity, Severity::Critical);
        let summary = n.evidence.unwrap().summary;
        assert!(
            summary.contains("license apache-2.0 → gemma (ollama_show)"),
            "{summary}"
        );
        // The unpinned target: the change fires once (critical: not allowed), then resolves.
        assert!(
            sinkc.delivered().iter().any(|n| n.key.target == "loose"
                && n.key.metric == "license_changed"
                && n.severity == Severity::Critical),
            "{:?}",
            sinkc.delivered()
        );
    };
    run_daemon(load(&cfg), &db, options, &shared, rx, driver).await;

    let store = Store::open(&db).unwrap();
    let events: Vec<_> = store
        .events(Some("sim"), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "license_changed")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].payload["previous"]["license"], "apache-2.0");
    assert_eq!(events[0].payload["current"]["license"], "gemma");
    let after = inventory(&load(&cfg), &store, SystemClock.now_ms()).unwrap();
    let row = after.iter().find(|r| r.target == "sim").unwrap();
    assert_eq!(
        (row.license.as_deref(), row.tier.as_str()),
        (Some("gemma"), "act")
    );
    assert_eq!(row.license_source.as_deref(), Some("ollama_show"));
    assert_eq!(row.pin_status, "unapproved");
    let loose = after.iter().find(|r| r.target == "loose").unwrap();
    assert_eq!(loose.tier, "act", "{:?}", loose.tier_reasons);
}
