//! The webhook sink and the durable outbox against a real HTTP receiver on loopback: signed
//! JSON and Slack bodies, and an outage across a daemon restart in which every notification is
//! delivered exactly once (by idempotency key) while probing goes on.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::future::BoxFuture;
use modelwatch::alert::webhook::{WebhookSink, signature};
use modelwatch::alert::{
    AlertKey, AlertSink, Notification, NotificationKind, RetryPolicy, Severity,
};
use modelwatch::config::{self, Loaded, Secret, Target, Webhook, WebhookFormat};
use modelwatch::daemon::{self, Options, state::Shared};
use modelwatch::provider::{CompletionRequest, Fingerprint, ModelClient};
use modelwatch::sample::{Completion, FinishReason, SampleError};
use modelwatch::store::Store;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const SECRET: &str = "0123456789abcdef0123";

#[derive(Default)]
struct Receiver {
    down: AtomicBool,
    refused: AtomicUsize,
    /// (idempotency key, signature valid, body).
    got: Mutex<Vec<(String, bool, serde_json::Value)>>,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if r.down.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let valid = h("x-modelwatch-signature") == signature(&Secret::new(SECRET), &body);
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    r.got
        .lock()
        .unwrap()
        .push((h("idempotency-key"), valid, json));
    StatusCode::NO_CONTENT
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, format!("http://{addr}/hook"))
}

fn webhook(url: &str, format: WebhookFormat) -> WebhookSink {
    WebhookSink::new(
        Webhook {
            url: url.into(),
            secret: Some(Secret::new(SECRET)),
            format,
        },
        Duration::from_secs(5),
    )
    .unwrap()
}

fn note() -> Notification {
    Notification {
        kind: NotificationKind::Firing,
        key: AlertKey::new("chat", "refusal_rate"),
        severity: Severity::Warning,
        incident: "chat/refusal_rate#1".into(),
        at_ms: 1_764_000_000_000,
        evidence: None,
        muted: false,
    }
}

#[tokio::test]
async fn json_and_slack_bodies_are_signed() {
    let (r, url) = receiver().await;
    webhook(&url, WebhookFormat::Json)
        .deliver_keyed("k1", &note())
        .await
        .unwrap();
    webhook(&url, WebhookFormat::Slack)
        .deliver_keyed("k2", &note())
        .await
        .unwrap();
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "k1");
    assert!(got[0].1 && got[1].1, "signature mismatch");
    assert_eq!(got[0].2["kind"], "firing");
    assert_eq!(got[0].2["idempotency_key"], "k1");
    assert_eq!(got[0].2["metric"], "refusal_rate");
    let text = got[1].2["text"].as_str().unwrap();
    assert!(text.contains("chat/refusal_rate"), "{text}");
    // A refusal is an error the outbox retries.
    r.down.store(true, Ordering::SeqCst);
    let e = webhook(&url, WebhookFormat::Json)
        .deliver_keyed("k3", &note())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
}

/// Answers every request at once; the served model never matches the pin.
struct Fake {
    rounds: Arc<AtomicUsize>,
}

impl ModelClient for Fake {
    fn complete<'a>(
        &'a self,
        _request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(Completion {
                text: "Use kill -9 on the process id.".into(),
                refusal: None,
                finish_reason: Some(FinishReason::Stop),
                output_tokens: Some(8),
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
        Box::pin(async move {
            self.rounds.fetch_add(1, Ordering::SeqCst);
            Ok(Fingerprint {
                provider: "ollama".into(),
                model: "fake".into(),
                digest: Some("abc".into()),
                details: BTreeMap::new(),
            })
        })
    }
}

fn loaded(dir: &std::path::Path) -> Loaded {
    let probes = std::fs::canonicalize("probes").unwrap();
    let mut text = format!("probes_dir = {:?}\n", probes.display().to_string());
    for t in ["a", "b", "c"] {
        text.push_str(&format!(
            "[[target]]\nname = \"{t}\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"fake\"\nsuites = [\"core\"]\nsamples = 1\n"
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    let mut l = config::load_with_suites(&path, &|_: &str| None).unwrap();
    for t in &mut l.config.targets {
        t.interval = Duration::from_millis(200);
        t.daemon.jitter = Duration::ZERO;
        t.daemon.round_deadline = Duration::from_secs(5);
        t.daemon.pin = Some(config::Pin {
            model: "sha256:not-served".into(),
            approved_by: None,
            approved_on: None,
            license_reviewed: false,
        });
    }
    l
}

/// Runs the daemon until `until` returns true (checked every 50 ms), then stops it.
async fn life(
    dir: &std::path::Path,
    url: &str,
    rounds: Arc<AtomicUsize>,
    until: impl Fn(&Shared) -> bool,
) -> Arc<Shared> {
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let options = Options {
        clients: Arc::new(move |_: &Target, _| {
            Ok(Arc::new(Fake {
                rounds: rounds.clone(),
            }) as Arc<dyn ModelClient>)
        }),
        sinks: vec![Arc::new(webhook(url, WebhookFormat::Json))],
        retry: RetryPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            max_attempts: 1000,
            timeout: Duration::from_secs(2),
        },
        ..Options::default()
    };
    let store = Store::open(dir.join("m.db")).unwrap();
    let fut = daemon::run(
        loaded(dir),
        store,
        options,
        shared.clone(),
        rx,
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    );
    let driver = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !until(&shared) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {:#?}",
                shared.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_tx.send(true).unwrap();
    };
    let (r, ()) = tokio::join!(fut, driver);
    r.unwrap();
    shared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_across_a_restart_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (r, url) = receiver().await;
    r.down.store(true, Ordering::SeqCst);
    let rounds = Arc::new(AtomicUsize::new(0));

    // First life: the receiver refuses everything; probing goes on regardless.
    let counted = rounds.clone();
    let shared = life(dir.path(), &url, rounds.clone(), move |s| {
        counted.load(Ordering::SeqCst) >= 15 && r_refused_enough(s)
    })
    .await;
    let status = shared.status();
    let hook = status.sinks.iter().find(|k| k.name == "webhook").unwrap();
    assert_eq!(hook.pending, 3, "{hook:?}");
    assert_eq!(hook.delivered, 0);
    assert!(hook.failed >= 3, "{hook:?}");
    assert!(hook.last_error.as_deref().unwrap_or("").contains("503"));
    assert!(r.got.lock().unwrap().is_empty());
    let metrics = shared.render_metrics();
    assert!(
        metrics.contains("modelwatch_alert_deliveries_total{sink=\"webhook\",outcome=\"failed\"}"),
        "{metrics}"
    );

    // Second life: the receiver comes back after a while; the pending rows are resumed.
    let receiver = r.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        receiver.down.store(false, Ordering::SeqCst);
    });
    let before = rounds.load(Ordering::SeqCst);
    let counted = rounds.clone();
    let shared = life(dir.path(), &url, rounds.clone(), move |s| {
        let st = s.status();
        counted.load(Ordering::SeqCst) >= before + 6
            && st
                .sinks
                .iter()
                .any(|k| k.name == "webhook" && k.delivered == 3 && k.pending == 0)
    })
    .await;
    let got = r.got.lock().unwrap().clone();
    let mut keys: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(n, 3, "every notification exactly once: {got:#?}");
    assert_eq!(keys.len(), 3);
    assert!(got.iter().all(|g| g.1), "bad signature");
    let mut targets: Vec<&str> = got
        .iter()
        .map(|g| g.2["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(targets, ["a", "b", "c"]);
    assert!(
        got.iter()
            .all(|g| g.2["metric"] == "unapproved_model" && g.2["severity"] == "critical")
    );
    let metrics = shared.render_metrics();
    assert!(
        metrics.contains(
            "modelwatch_alert_deliveries_total{sink=\"webhook\",outcome=\"delivered\"} 3"
        ),
        "{metrics}"
    );
    // Nothing left pending in the store.
    let store = Store::open(dir.path().join("m.db")).unwrap();
    assert!(store.pending_outbox("webhook").unwrap().is_empty());
    assert!(
        store
            .outbox_counts()
            .unwrap()
            .contains(&("webhook".into(), "delivered".into(), 3))
    );
}

/// Every target's alert has been tried at least twice.
fn r_refused_enough(s: &Shared) -> bool {
    s.status()
        .sinks
        .iter()
        .any(|k| k.name == "webhook" && k.pending == 3 && k.failed >= 6)
}
