//! The Sentry sink against an envelope endpoint that parses with sentry-sdk's own parser:
//! fingerprint, level, tags and evidence of the alert event, and the per-round cron check-ins.

use crate::sinks_common;
use modelwatch::config::Target;
use modelwatch::daemon::{self, Options, state::Shared};
use modelwatch::provider::ModelClient;
use modelwatch::sample::{ErrorKind, SampleError};
use sinks_common::{
    Fake, Receiver, fake_clients, lines, loaded, poll, run_daemon, start_receiver, venv_python,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::sync::mpsc;

/// A Sentry receiver that writes what it parsed to `envelopes.jsonl` in `dir`: the receiver
/// (stopped on drop), that file, and the DSN of project 7 with the key `publickey` at it.
fn sentry_receiver(py: &Path, dir: &Path) -> (Receiver, PathBuf, String) {
    let out = dir.join("envelopes.jsonl");
    let receiver = start_receiver(py, "sentry_receiver.py", &[out.to_str().unwrap()]);
    let dsn = format!("http://publickey@127.0.0.1:{}/7", receiver.port);
    (receiver, out, dsn)
}

/// Waits (up to 30 s) until the items the receiver wrote to `out` satisfy `done`.
async fn envelopes_until(out: &Path, done: impl Fn(&[serde_json::Value]) -> bool) {
    poll(30, || {
        let items = lines(out);
        if done(&items) {
            Ok(())
        } else {
            Err(format!("{items:#?}"))
        }
    })
    .await;
}

/// How many check-ins among `items` have `status`.
fn check_ins(items: &[serde_json::Value], status: &str) -> usize {
    items
        .iter()
        .filter(|i| i["type"] == "check_in" && i["payload"]["status"] == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_check_ins_parse_with_the_official_envelope_parser() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let (_receiver, out, dsn) = sentry_receiver(&py, dir.path());
    let extra = format!(
        "[alerts.sentry]\ndsn = \"{dsn}\"\nenvironment = \"staging\"\nrelease = \"modelwatch@test\"\n"
    );
    let l = loaded(dir.path(), &["a"], &extra, true);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    assert_eq!(outputs.sinks.len(), 2, "log and sentry");
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        sinks: outputs.sinks,
        observers: outputs.observers,
        ..Options::default()
    };
    let db = dir.path().join("m.db");
    run_daemon(l, &db, options, &shared, rx, async {
        envelopes_until(&out, |items| {
            let events = items.iter().filter(|i| i["type"] == "event").count();
            events >= 1 && check_ins(items, "ok") >= 2
        })
        .await;
    })
    .await;

    let items = lines(&out);
    let event = items.iter().find(|i| i["type"] == "event").unwrap();
    assert!(event["path"] == "/api/7/envelope/", "{event}");
    assert_eq!(
        event["parsed_as_json"], true,
        "the SDK parsed the event item"
    );
    assert!(
        event["auth"]
            .as_str()
            .unwrap()
            .contains("sentry_key=publickey")
    );
    let p = &event["payload"];
    assert_eq!(
        p["fingerprint"],
        serde_json::json!(["modelwatch", "a", "unapproved_model"])
    );
    // `error` is the protocol's default level: the SDK leaves it out, and Sentry's ingestion
    // reads a missing level as `error` (Relay, `relay-event-normalization/src/event.rs`:
    // `event.level.get_or_insert_with(..)` gives `Level::Error` to all but transactions).
    assert_eq!(p["level"].as_str().unwrap_or("error"), "error");
    assert_eq!(p["environment"], "staging");
    assert_eq!(p["release"], "modelwatch@test");
    // One id in the envelope's header and in the event. The SDK writes the header's hyphenated
    // and the event's as 32 hex; Sentry's ingestion reads both as the same UUID (Relay,
    // `relay-event-schema/src/protocol/event.rs`: `impl FromStr for EventId` is `Uuid`'s
    // parser, which takes the simple and the hyphenated form; the envelope header's `event_id`
    // is an `EventId` too, `relay-server/src/envelope/mod.rs`).
    let id = |v: &serde_json::Value| sentry::types::Uuid::try_parse(v.as_str().unwrap()).unwrap();
    assert_eq!(id(&event["envelope"]["event_id"]), id(&p["event_id"]));
    assert_eq!(p["event_id"].as_str().unwrap().len(), 32, "{p}");
    let tags = &p["tags"];
    assert_eq!(tags["target"], "a");
    assert_eq!(tags["metric"], "unapproved_model");
    assert_eq!(tags["model"], "fake");
    assert_eq!(tags["provider"], "ollama");
    assert_eq!(
        tags["model.fingerprint"].as_str().unwrap().len(),
        12,
        "{tags}"
    );
    assert_eq!(tags["alert.state"], "firing");
    assert_eq!(tags["environment"], "staging");
    assert_eq!(tags["alert.fingerprint"].as_str().unwrap().len(), 12);
    for (k, v) in tags.as_object().unwrap() {
        assert!(k.len() <= 32 && v.as_str().unwrap().len() <= 200, "{k}");
    }
    assert!(
        p["contexts"]["evidence"]["summary"].as_str().is_some(),
        "{p}"
    );
    // Exactly one event: the alert stays firing without repeats (no reminder within 4 h).
    assert_eq!(items.iter().filter(|i| i["type"] == "event").count(), 1);

    // Check-ins: every closing one matches an opening one of the same round.
    let check_ins: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["type"] == "check_in")
        .map(|i| &i["payload"])
        .collect();
    for c in &check_ins {
        assert_eq!(c["monitor_slug"], "modelwatch-rounds");
        assert_eq!(c["environment"], "staging");
        assert_eq!(c["check_in_id"].as_str().unwrap().len(), 32);
    }
    for ok in check_ins.iter().filter(|c| c["status"] == "ok") {
        assert!(ok["duration"].as_f64().unwrap() >= 0.0);
        assert!(
            check_ins
                .iter()
                .any(|c| c["status"] == "in_progress" && c["check_in_id"] == ok["check_in_id"]),
            "{ok}"
        );
    }
    let status = shared.status();
    let sentry = status.sinks.iter().find(|k| k.name == "sentry").unwrap();
    assert_eq!((sentry.delivered, sentry.pending), (1, 0), "{sentry:?}");
}

/// The value of one sample line of the exposition.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Runs the daemon with Sentry at `dsn` until `/metrics` satisfies `done`; returns it.
async fn checkins_until(dsn: &str, done: impl Fn(&str) -> bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[alerts.sentry]\ndsn = \"{dsn}\"\n");
    let l = loaded(dir.path(), &["a"], &extra, false);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        sinks: Vec::new(),
        observers: outputs.observers,
        ..Options::default()
    };
    let db = dir.path().join("m.db");
    run_daemon(l, &db, options, &shared, rx, async {
        poll(30, || {
            let text = shared.render_metrics();
            if done(&text) { Ok(()) } else { Err(text) }
        })
        .await;
    })
    .await;
    shared.render_metrics()
}

/// Check-ins that Sentry never answers fill the in-flight budget; the rest are dropped, and
/// `/metrics` counts both the drops and the failures of a Sentry that refuses connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_failed_check_ins_are_counted() {
    const DROPPED: &str = "modelwatch_sentry_checkins_total{outcome=\"dropped\"}";
    const FAILED: &str = "modelwatch_sentry_checkins_total{outcome=\"failed\"}";
    const SENT: &str = "modelwatch_sentry_checkins_total{outcome=\"sent\"}";
    // Accepts connections (the kernel's backlog) and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hung.local_addr().unwrap().port();
    let text = checkins_until(&format!("http://k@127.0.0.1:{port}/1"), |t| {
        sample(t, DROPPED).is_some_and(|n| n >= 3)
    })
    .await;
    assert_eq!(sample(&text, SENT), Some(0), "{text}");
    assert!(text.contains("# TYPE modelwatch_sentry_checkins_total counter"));
    drop(hung);

    // Nothing listens: every check-in fails at once, none needs dropping.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = checkins_until(&format!("http://k@127.0.0.1:{port}/1"), |t| {
        sample(t, FAILED).is_some_and(|n| n >= 4)
    })
    .await;
    assert_eq!(sample(&text, DROPPED), Some(0), "{text}");
    assert_eq!(sample(&text, SENT), Some(0), "{text}");
}

/// Healthy for three rounds, then another model behind the same name (a swap) that fails
/// every request.
struct SwapThenFail {
    fingerprints: AtomicUsize,
}

impl SwapThenFail {
    fn swapped(&self) -> bool {
        self.fingerprints.load(std::sync::atomic::Ordering::SeqCst) > 3
    }
}

impl ModelClient for SwapThenFail {
    fn complete<'a>(
        &'a self,
        request: &'a modelwatch::provider::CompletionRequest,
    ) -> futures_util::future::BoxFuture<'a, Result<modelwatch::sample::Completion, SampleError>>
    {
        Box::pin(async move {
            if self.swapped() {
                return Err(SampleError::new(ErrorKind::Connect, "connection refused"));
            }
            Fake {
                rounds: Arc::new(AtomicUsize::new(0)),
            }
            .complete(request)
            .await
        })
    }

    fn fingerprint(
        &self,
    ) -> futures_util::future::BoxFuture<'_, Result<modelwatch::provider::Fingerprint, SampleError>>
    {
        Box::pin(async move {
            let n = self
                .fingerprints
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(modelwatch::provider::Fingerprint {
                provider: "ollama".into(),
                model: "fake".into(),
                digest: Some(if n >= 3 { "def" } else { "abc" }.into()),
                details: Default::default(),
            })
        })
    }
}

/// A swap is an `info` event of its own issue (`swap`); a round in which every request fails
/// closes its check-in with `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_are_info_events_and_failed_rounds_check_in_error() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let (_receiver, out, dsn) = sentry_receiver(&py, dir.path());
    let extra = format!("[alerts.sentry]\ndsn = \"{dsn}\"\n");
    let l = loaded(dir.path(), &["a"], &extra, false);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let client = Arc::new(SwapThenFail {
        fingerprints: AtomicUsize::new(0),
    });
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: Arc::new(move |_: &Target, _| Ok(client.clone() as Arc<dyn ModelClient>)),
        sinks: outputs.sinks,
        observers: outputs.observers,
        ..Options::default()
    };
    let db = dir.path().join("m.db");
    run_daemon(l, &db, options, &Arc::new(Shared::default()), rx, async {
        envelopes_until(&out, |items| {
            let swap = items.iter().any(|i| i["type"] == "event");
            swap && check_ins(items, "error") >= 1
        })
        .await;
    })
    .await;
    let items = lines(&out);
    let events: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["type"] == "event")
        .map(|i| &i["payload"])
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = events[0];
    assert_eq!(e["level"], "info");
    assert_eq!(
        e["fingerprint"],
        serde_json::json!(["modelwatch", "a", "swap"])
    );
    assert_eq!(e["tags"]["alert.state"], "info");
    assert!(
        e["contexts"]["evidence"]["summary"]
            .as_str()
            .unwrap()
            .contains("swap"),
        "{e}"
    );
    let check_ins: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["type"] == "check_in")
        .map(|i| &i["payload"])
        .collect();
    let error = check_ins.iter().find(|c| c["status"] == "error").unwrap();
    assert!(
        check_ins
            .iter()
            .any(|c| c["status"] == "in_progress" && c["check_in_id"] == error["check_in_id"])
    );
    assert!(
        check_ins.iter().any(|c| c["status"] == "ok"),
        "healthy rounds first"
    );
}

/// Sentry answers everything with a 429 and `X-Sentry-Rate-Limits` for 3 s: the daemon sends
/// nothing more of either category until the limit has passed (check-ins are skipped and
/// counted), then the alert event waiting in the outbox arrives exactly once. Check-ins carry
/// the `monitor_config` that creates the monitor, events the `server_name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_pause_both_categories_and_the_alert_arrives_once_after() {
    const LIMITED: &str = "modelwatch_sentry_checkins_total{outcome=\"rate_limited\"}";
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("envelopes.jsonl");
    let limit = serde_json::json!({
        "seconds": 3,
        "status": 429,
        "headers": {
            "X-Sentry-Rate-Limits": "3:error;monitor:organization:quota_exceeded, 60:transaction:key",
            "Retry-After": "1",
        },
    });
    let receiver = start_receiver(
        &py,
        "sentry_receiver.py",
        &[out.to_str().unwrap(), &limit.to_string()],
    );
    let dsn = format!("http://publickey@127.0.0.1:{}/7", receiver.port);
    let extra = format!("[alerts.sentry]\ndsn = \"{dsn}\"\n");
    let l = loaded(dir.path(), &["a"], &extra, true);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        sinks: outputs.sinks,
        observers: outputs.observers,
        ..Options::default()
    };
    let db = dir.path().join("m.db");
    run_daemon(l, &db, options, &shared, rx, async {
        envelopes_until(&out, |items| {
            let events = items.iter().filter(|i| i["type"] == "event").count();
            events >= 1 && check_ins(items, "ok") >= 2
        })
        .await;
        // Time for a second delivery of the event, were there one.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    })
    .await;

    let items = lines(&out);
    let at = |i: &serde_json::Value| i["received_at"].as_f64().unwrap();
    let limited: Vec<f64> = items
        .iter()
        .filter(|i| i["type"] == "limited")
        .map(at)
        .collect();
    let first = limited[0];
    // Only what was already on its way when the first 429 came back: no request in the pause.
    assert!(
        limited.len() <= 3,
        "{} requests in the limit: {limited:?}",
        limited.len()
    );
    let accepted: Vec<&serde_json::Value> =
        items.iter().filter(|i| i["type"] != "limited").collect();
    for i in &accepted {
        assert!(at(i) >= first + 3.0, "sent during the limit: {i}");
    }
    let events: Vec<&&serde_json::Value> =
        accepted.iter().filter(|i| i["type"] == "event").collect();
    assert_eq!(events.len(), 1, "exactly once: {events:#?}");
    let host = events[0]["payload"]["server_name"].as_str().unwrap_or("");
    assert!(!host.is_empty(), "{}", events[0]);
    let check_in = accepted.iter().find(|i| i["type"] == "check_in").unwrap();
    assert_eq!(
        check_in["payload"]["monitor_config"],
        serde_json::json!({
            "schedule": { "type": "interval", "value": 1, "unit": "minute" },
            "checkin_margin": 1,
            "max_runtime": 1,
            "timezone": "UTC",
        })
    );
    let metrics = shared.render_metrics();
    assert!(
        sample(&metrics, LIMITED).is_some_and(|n| n >= 5),
        "rounds every 200 ms skip their check-ins for 3 s: {metrics}"
    );
    let status = shared.status();
    let sentry = status.sinks.iter().find(|k| k.name == "sentry").unwrap();
    assert_eq!(
        (
            sentry.delivered,
            sentry.pending,
            sentry.expired,
            sentry.rejected
        ),
        (1, 0, 0, 0),
        "{sentry:?}"
    );
    drop(receiver);
}

/// Runs one daemon life with Sentry at `dsn` (an unapproved model: one alert) until the Sentry
/// sink's status satisfies `done`; returns it.
async fn sentry_life(
    dir: &Path,
    dsn: &str,
    done: impl Fn(&modelwatch::daemon::state::SinkStatus) -> bool,
) -> modelwatch::daemon::state::SinkStatus {
    let extra = format!("[alerts.sentry]\ndsn = \"{dsn}\"\n");
    let l = loaded(dir, &["a"], &extra, true);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        sinks: outputs.sinks,
        observers: outputs.observers,
        retry: modelwatch::alert::RetryPolicy {
            initial: std::time::Duration::from_millis(50),
            max: std::time::Duration::from_millis(200),
            max_attempts: 1000,
            timeout: std::time::Duration::from_secs(2),
        },
        ..Options::default()
    };
    let sentry = |s: &Shared| s.status().sinks.into_iter().find(|k| k.name == "sentry");
    run_daemon(l, &dir.join("m.db"), options, &shared, rx, async {
        poll(30, || match sentry(&shared) {
            Some(k) if done(&k) => Ok(()),
            k => Err(format!("{k:?}")),
        })
        .await;
    })
    .await;
    sentry(&shared).unwrap()
}

/// Sentry refuses connections when the alert fires: its event waits in the outbox through
/// failed attempts and a restart; the next life, Sentry back, delivers it exactly once, with
/// the event id it had from the start (the row's idempotency key), and nothing stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_during_an_outage_arrives_once_after_a_restart_with_its_first_id() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = format!("http://publickey@127.0.0.1:{port}/7");
    let first = sentry_life(dir.path(), &down, |k| k.pending == 1 && k.failed >= 2).await;
    assert_eq!(first.delivered, 0, "{first:?}");
    let store = modelwatch::store::Store::open(dir.path().join("m.db")).unwrap();
    let rows = store.pending_outbox("sentry").unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let key = rows[0].idempotency_key.clone();
    drop(store);

    let (_receiver, out, dsn) = sentry_receiver(&py, dir.path());
    let second = sentry_life(dir.path(), &dsn, |k| k.delivered == 1 && k.pending == 0).await;
    assert_eq!((second.expired, second.rejected), (0, 0), "{second:?}");
    let events: Vec<serde_json::Value> = lines(&out)
        .into_iter()
        .filter(|i| i["type"] == "event")
        .collect();
    assert_eq!(events.len(), 1, "exactly once: {events:#?}");
    let p = &events[0]["payload"];
    assert_eq!(p["event_id"], key.as_str(), "{p}");
    assert_eq!(
        p["fingerprint"],
        serde_json::json!(["modelwatch", "a", "unapproved_model"])
    );
    let store = modelwatch::store::Store::open(dir.path().join("m.db")).unwrap();
    assert!(store.pending_outbox("sentry").unwrap().is_empty());
}
