//! The daemon's behaviour watch with paused tokio time: a fake server keeps its fingerprint and
//! its rates but starts answering in other words (a model changed behind the same name); the
//! first check after the change raises one `behaviour_changed` event (severity warning, no quality
//! alert, not repeated), and a server that keeps answering like the baseline's model raises none.

use futures_util::future::BoxFuture;
use modelwatch::baseline::{Baseline, RecordInfo};
use modelwatch::config::{Loaded, Target};
use modelwatch::daemon::behaviour::BehaviourStatus;
use modelwatch::daemon::{self, Options, state::Shared};
use modelwatch::provider::{CompletionRequest, Fingerprint, ModelClient};
use modelwatch::rng::Rng;
use modelwatch::sample::{Completion, FinishReason, Measurements, Sample, SampleError};
use modelwatch::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const SAME: &[&str] = &[
    "the", "answer", "is", "simple", "first", "we", "add", "then",
];
/// Other words of the same lengths as [`SAME`]'s, so answers keep their length distribution:
/// only the wording changes.
const OTHER: &[&str] = &[
    "you", "mostly", "on", "rather", "think", "it", "let", "step",
];
const HOUR: Duration = Duration::from_secs(3600);

fn answer(rng: &mut Rng, words: &[&str]) -> String {
    (0..12)
        .map(|_| words[(rng.f64() * words.len() as f64) as usize % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same model, as far as the fingerprint can tell, before and after.
fn fingerprint() -> Fingerprint {
    Fingerprint {
        provider: "ollama".into(),
        model: "fake".into(),
        digest: Some("abc".into()),
        details: BTreeMap::new(),
    }
}

/// Answers from the baseline's words until `switch_after`, then from `later`.
struct Server {
    start: tokio::time::Instant,
    switch_after: Duration,
    later: &'static [&'static str],
    rng: Mutex<Rng>,
}

impl ModelClient for Server {
    fn complete<'a>(
        &'a self,
        _request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            let words = if self.start.elapsed() >= self.switch_after {
                self.later
            } else {
                SAME
            };
            Ok(Completion {
                text: answer(&mut self.rng.lock().unwrap(), words),
                refusal: None,
                finish_reason: Some(FinishReason::Stop),
                output_tokens: Some(12),
                input_tokens: Some(10),
                response_model: None,
                system_fingerprint: None,
                latency_ms: 5.0,
                ttft_ms: None,
                attempts: 1,
            })
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async move { Ok(fingerprint()) })
    }
}

/// A target `t` of six probes every ten minutes, two samples each, against a baseline of ten
/// answers per probe in the baseline's words.
fn setup(dir: &Path) -> Loaded {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    let mut suite = String::from("suite = \"core\"\n");
    for i in 0..6 {
        suite.push_str(&format!(
            "\n[[probe]]\nid = \"p{i}\"\nprompt = \"Question {i}?\"\n"
        ));
    }
    std::fs::write(probes.join("core.toml"), suite).unwrap();
    let mut l = crate::sinks_common::fake_targets(dir, &probes, &["t"], "");
    let mut rng = Rng::new(11);
    let samples: Vec<Sample> = l.suites[0]
        .probes
        .iter()
        .flat_map(|p| (0..10u32).map(move |i| (p, i)))
        .map(|(p, i)| {
            let text = answer(&mut rng, SAME);
            Sample {
                measurements: Some(Measurements {
                    chars: text.chars().count() as u32,
                    ..Measurements::default()
                }),
                text: Some(text),
                ..Sample::pending("t", "core", &p.id, &p.hash, i, 0)
            }
        })
        .collect();
    let b = Baseline::from_samples(
        "t",
        fingerprint(),
        &l.suites,
        &samples,
        RecordInfo {
            at_unix_ms: 0,
            samples_per_probe: 10,
            params: Default::default(),
        },
    )
    .unwrap();
    let path = dir.join("baseline.json");
    b.save(&path).unwrap();
    let t: &mut Target = &mut l.config.targets[0];
    t.baseline = Some(path);
    t.interval = Duration::from_secs(600);
    t.samples = Some(2);
    t.daemon.jitter = Duration::ZERO;
    l
}

/// Runs the daemon for `run_for` of paused time; returns the stored notifications' payloads
/// and the behaviour watch as the status showed it last.
async fn run(
    dir: &Path,
    switch_after: Duration,
    later: &'static [&'static str],
    run_for: Duration,
) -> (Vec<serde_json::Value>, BehaviourStatus) {
    let loaded = setup(dir);
    let db = dir.join("m.db");
    let store = Store::open(&db).unwrap();
    let start = tokio::time::Instant::now();
    let (_tx, rx) = mpsc::channel(1);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let options = Options {
        clients: Arc::new(move |_: &Target, _| {
            Ok(Arc::new(Server {
                start,
                switch_after,
                later,
                rng: Mutex::new(Rng::new(99)),
            }) as Arc<dyn ModelClient>)
        }),
        sinks: Vec::new(),
        seed: 5,
        ..Options::default()
    };
    let shared = Arc::new(Shared::default());
    let fut = daemon::run(loaded, store, options, shared.clone(), rx, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    });
    // Paused time runs on while the runtime is idle, also while a check computes on its
    // blocking thread: every ten paused minutes the runtime is held for 50 ms of real time,
    // which the check shares, as it would share a real interval.
    let driver = async {
        let mut left = run_for;
        while !left.is_zero() {
            let step = left.min(Duration::from_secs(600));
            tokio::time::sleep(step).await;
            std::thread::sleep(Duration::from_millis(50));
            left -= step;
        }
        stop_tx.send(true).unwrap();
    };
    let (r, ()) = tokio::join!(fut, driver);
    r.unwrap();
    let store = Store::open(&db).unwrap();
    let events = store
        .events(Some("t"), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "alert")
        .map(|e| e.payload)
        .collect();
    let status = shared.status().targets[0].behaviour.clone().unwrap();
    (events, status)
}

fn behaviour_events(events: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    events
        .iter()
        .filter(|p| p["key"]["metric"] == "behaviour_changed")
        .collect()
}

#[tokio::test(start_paused = true)]
async fn other_words_under_the_same_fingerprint_raise_one_behaviour_event() {
    let dir = tempfile::tempdir().unwrap();
    // Checks start at 6 h and 12 h; the words change at 7 h; the one flag stops the checks
    // for the rest of the episode.
    let (events, status) = run(dir.path(), 7 * HOUR, OTHER, 30 * HOUR).await;
    assert!(status.changed, "{status:?}");
    assert_eq!(
        status.checks, 2,
        "a quiet check, the flag, then no more: {status:?}"
    );
    assert!(status.last_p_value.unwrap() < status.alpha_per_check);
    let flagged = behaviour_events(&events);
    assert_eq!(flagged.len(), 1, "one event per episode: {events:#?}");
    let e = flagged[0];
    assert_eq!(e["severity"], "warning", "{e}");
    assert_eq!(
        e["kind"], "info",
        "an event, not an alert with a lifecycle: {e}"
    );
    let summary = e["evidence"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("changed without a fingerprint change"),
        "{summary}"
    );
    // The rates did not move: no quality alert fired.
    assert!(events.iter().all(|p| p["kind"] != "firing"), "{events:#?}");
}

#[tokio::test(start_paused = true)]
async fn the_same_model_with_new_samples_raises_no_behaviour_event() {
    let dir = tempfile::tempdir().unwrap();
    // Four checks (6, 12, 18, 24 h) of a server that never changes its words.
    let (events, status) = run(dir.path(), 100 * HOUR, OTHER, 24 * HOUR + HOUR / 2).await;
    assert!(behaviour_events(&events).is_empty(), "{events:#?}");
    // The checks ran, and found the same model.
    assert!(status.checks >= 3, "{status:?}");
    assert!(!status.changed);
    assert!(status.last_p_value.unwrap() > status.alpha_per_check);
}
