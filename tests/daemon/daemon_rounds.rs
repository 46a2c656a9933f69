//! Rounds that never go blind: a round past its deadline stores what it measured (the rest as
//! `deadline` errors), and a dead model server shows as `modelwatch_target_up 0` within one
//! round, with the refusal stored in the error samples and no quality alarm. In process, over
//! real HTTP and a real SQLite file.

use crate::daemon_proc::free_port;
use crate::sinks_common::{Http, get_text, poll, run_daemon};
use modelwatch::config::{self, Loaded};
use modelwatch::daemon::{Options, state::Shared};
use modelwatch::runner::RoundStatus;
use modelwatch::sample::ErrorKind;
use modelwatch::sim::{self, Profile};
use modelwatch::store::{SampleQuery, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A configuration of one target `name` at `base_url` with `suites` of the starter probes,
/// one sample per probe, a 10 s interval.
fn config(dir: &Path, name: &str, provider: &str, base_url: &str, suites: &str) -> Loaded {
    let probes = std::fs::canonicalize("probes").unwrap();
    let text = format!(
        r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[[target]]
name = "{name}"
provider = "{provider}"
base_url = "{base_url}"
model = "sim-7b"
suites = [{suites}]
samples = 1
max_concurrency = 2
interval = "10s"
jitter = "0s"
"#,
        probes = probes.display().to_string(),
        db = dir.join("m.db").display().to_string(),
    );
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    config::load_with_suites(&path, &|_: &str| None).unwrap()
}

fn samples(db: &Path, target: &str) -> Vec<modelwatch::sample::Sample> {
    Store::open(db)
        .unwrap()
        .samples(&SampleQuery {
            target: Some(target.into()),
            skip_text: true,
            ..SampleQuery::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_past_its_deadline_stores_what_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 5).unwrap();
    // The five starter suites at two requests at a time take several seconds against the
    // simulator: far more than the deadline.
    let mut l = config(
        dir.path(),
        "sim",
        "ollama",
        &sim.base_url(),
        r#""core", "json", "tasks", "format", "multilingual""#,
    );
    l.config.targets[0].daemon.round_deadline = Duration::from_millis(1500);
    let db = dir.path().join("m.db");
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    run_daemon(l, &db, Options::default(), &shared, rx, async {
        poll(30, || {
            let st = shared.status();
            match st.targets[0].last_round.as_ref() {
                Some(r) if r.status == "deadline" => Ok(()),
                other => Err(format!("waiting for a cut round: {other:?}")),
            }
        })
        .await;
    })
    .await;
    let store = Store::open(&db).unwrap();
    let rounds = store.rounds("sim", 10).unwrap();
    assert_eq!(rounds.len(), 1, "{rounds:?}");
    assert_eq!(rounds[0].status, RoundStatus::Deadline);
    let all = samples(&db, "sim");
    let measured = all.iter().filter(|s| s.measurements.is_some()).count();
    let cut: Vec<_> = all.iter().filter_map(|s| s.error.as_ref()).collect();
    assert_eq!(rounds[0].samples as usize, all.len());
    assert!(
        all.len() > 50,
        "every planned request is stored: {}",
        all.len()
    );
    assert!(measured > 0, "what finished before the deadline is kept");
    assert!(!cut.is_empty(), "the round was cut");
    for e in &cut {
        assert_eq!(e.kind, ErrorKind::Deadline, "{e}");
        assert!(e.message.contains("round deadline (1.5s)"), "{e}");
    }
    // Cancelled in flight (one attempt) and never sent (none) are told apart.
    let in_flight = all
        .iter()
        .filter(|s| s.is_error() && s.attempts == 1)
        .count();
    let unsent = all
        .iter()
        .filter(|s| s.is_error() && s.attempts == 0)
        .count();
    assert!((1..=2).contains(&in_flight), "{in_flight} in flight");
    assert_eq!(in_flight + unsent, cut.len());
    let metrics = shared.render_metrics();
    assert!(
        metrics.contains("modelwatch_rounds_total{target=\"sim\",status=\"deadline\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("modelwatch_target_up{target=\"sim\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_down_within_one_round_with_the_refusal_stored_and_no_quality_alarm() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on a port that was just free.
    let base_url = format!("http://127.0.0.1:{}/v1", free_port());
    let l = config(dir.path(), "dead", "openai", &base_url, r#""core", "json""#);
    let db = dir.path().join("m.db");
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(1);
    let http = Http::serve(shared.clone(), tx, None).await;
    let url = format!("http://{}/metrics", http.addr);
    let client = reqwest::Client::new();
    let metrics = {
        let (client, url) = (&client, &url);
        let mut seen = String::new();
        run_daemon(l, &db, Options::default(), &shared, rx, async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                seen = get_text(client, url).await;
                if seen.contains("modelwatch_target_up{target=\"dead\"} 0") {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "{seen}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        seen
    };
    http.stop().await;
    assert!(
        metrics.contains("modelwatch_rounds_total{target=\"dead\",status=\"failed\"} 1"),
        "one round was enough: {metrics}"
    );
    let all = samples(&db, "dead");
    assert!(all.len() > 10, "{} samples", all.len());
    assert!(metrics.contains(&format!(
        "modelwatch_requests_total{{target=\"dead\",outcome=\"connect\"}} {}",
        all.len()
    )));
    for s in &all {
        let e = s.error.as_ref().expect("an error sample");
        assert_eq!(e.kind, ErrorKind::Connect);
        assert!(
            e.message.to_lowercase().contains("connection refused"),
            "the cause is stored: {e}"
        );
        // The fingerprint found the server down: no request went out.
        assert_eq!(s.attempts, 0, "{e}");
    }
    let firing: Vec<_> = shared
        .status()
        .alerts
        .iter()
        .filter(|a| a.status == modelwatch::alert::Status::Firing)
        .map(|a| a.key.to_string())
        .collect();
    assert!(firing.is_empty(), "availability is not quality: {firing:?}");
    assert!(!metrics.contains("modelwatch_alert_firing{target=\"dead\""));
}
