//! The webhook sink and the durable outbox against a real HTTP receiver on loopback: signed
//! JSON and Slack bodies, and an outage across a daemon restart in which every notification is
//! delivered exactly once (by idempotency key) while probing goes on.

use crate::sinks_common;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use modelwatch::alert::webhook::{WebhookSink, signature};
use modelwatch::alert::{
    AlertKey, AlertSink, Notification, NotificationKind, RetryPolicy, Severity,
};
use modelwatch::config::{Secret, Webhook, WebhookFormat};
use modelwatch::daemon::{self, Options, state::Shared};
use modelwatch::store::Store;
use sinks_common::{fake_clients, loaded, poll, run_daemon};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const SECRET: &str = "0123456789abcdef0123";

/// Quick retries, so an outage is retried many times within a test.
const RETRY: RetryPolicy = RetryPolicy {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(200),
    max_attempts: 1000,
    timeout: Duration::from_secs(2),
};

#[derive(Default)]
struct Receiver {
    down: AtomicBool,
    refused: AtomicUsize,
    /// When non-zero, every request is answered with this status (and `retry_after`).
    answer: AtomicU16,
    retry_after: Mutex<Option<String>>,
    /// When each request arrived.
    arrivals: Mutex<Vec<std::time::Instant>>,
    /// (idempotency key, signature valid, body).
    got: Mutex<Vec<(String, bool, serde_json::Value)>>,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    r.arrivals.lock().unwrap().push(std::time::Instant::now());
    let answer = r.answer.load(Ordering::SeqCst);
    if answer != 0 {
        let status = StatusCode::from_u16(answer).unwrap();
        return match r.retry_after.lock().unwrap().clone() {
            Some(v) => (status, [("retry-after", v)]).into_response(),
            None => status.into_response(),
        };
    }
    if r.down.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
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
    StatusCode::NO_CONTENT.into_response()
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
            ca_file: None,
            tls_roots: Default::default(),
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

/// Runs the daemon until `until` returns true (checked every 50 ms), then stops it.
async fn life(
    dir: &std::path::Path,
    url: &str,
    rounds: Arc<AtomicUsize>,
    until: impl Fn(&Shared) -> bool,
) -> Arc<Shared> {
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(rounds),
        sinks: vec![Arc::new(webhook(url, WebhookFormat::Json))],
        retry: RETRY,
        ..Options::default()
    };
    let l = loaded(dir, &["a", "b", "c"], "", true);
    run_daemon(l, &dir.join("m.db"), options, &shared, rx, async {
        poll(30, || {
            if until(&shared) {
                Ok(())
            } else {
                Err(format!("timed out: {:#?}", shared.status()))
            }
        })
        .await;
    })
    .await;
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
    assert_outbox_settled(dir.path(), "delivered", 3);
}

/// Nothing is pending in the store at `dir` and `n` webhook rows ended as `outcome`.
fn assert_outbox_settled(dir: &std::path::Path, outcome: &str, n: u64) {
    let store = Store::open(dir.join("m.db")).unwrap();
    assert!(store.pending_outbox("webhook").unwrap().is_empty());
    assert!(
        store
            .outbox_counts()
            .unwrap()
            .contains(&("webhook".into(), outcome.into(), n))
    );
}

/// Every target's alert has been tried at least twice.
fn r_refused_enough(s: &Shared) -> bool {
    s.status()
        .sinks
        .iter()
        .any(|k| k.name == "webhook" && k.pending == 3 && k.failed >= 6)
}

/// A receiver that refuses the notification itself (400, 401, 404, 410, 413, 422): the
/// delivery is `rejected` after one attempt, never retried, counted and shown in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_rejected_once_and_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (r, url) = receiver().await;
    r.answer.store(400, Ordering::SeqCst);
    let rounds = Arc::new(AtomicUsize::new(0));
    let counted = rounds.clone();
    let shared = life(dir.path(), &url, rounds.clone(), move |s| {
        counted.load(Ordering::SeqCst) >= 15
            && s.status()
                .sinks
                .iter()
                .any(|k| k.name == "webhook" && k.rejected == 3)
    })
    .await;
    // One request per notification (3 targets, one alert each), although rounds went on for
    // far longer than the 50 ms first retry.
    assert_eq!(r.arrivals.lock().unwrap().len(), 3);
    let status = serde_json::to_value(shared.status()).unwrap();
    let hook = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "webhook")
        .unwrap()
        .clone();
    assert_eq!(hook["rejected"], 3, "{hook}");
    assert_eq!(hook["pending"], 0, "{hook}");
    assert_eq!(hook["delivered"], 0, "{hook}");
    assert!(
        hook["last_error"].as_str().unwrap().contains("400"),
        "{hook}"
    );
    let metrics = shared.render_metrics();
    assert!(
        metrics
            .contains("modelwatch_alert_deliveries_total{sink=\"webhook\",outcome=\"rejected\"} 3"),
        "{metrics}"
    );
    assert!(!metrics.contains("outcome=\"failed\""), "{metrics}");
    assert_outbox_settled(dir.path(), "rejected", 3);
}

/// 429 and 503 are retried; the receiver's `Retry-After` is waited out although the backoff
/// alone would retry after 20 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_retried_after_retry_after() {
    use modelwatch::alert::outbox::{Job, Outcome, spawn_worker};
    let (r, url) = receiver().await;
    let policy = RetryPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_secs(5),
        max_attempts: 10,
        timeout: Duration::from_secs(2),
    };
    for (status, retry_after) in [(429u16, "1"), (503, "1"), (408, "1")] {
        r.arrivals.lock().unwrap().clear();
        r.got.lock().unwrap().clear();
        r.answer.store(status, Ordering::SeqCst);
        *r.retry_after.lock().unwrap() = Some(retry_after.into());
        let (tx, mut reports) = mpsc::unbounded_channel();
        let jobs = spawn_worker(Arc::new(webhook(&url, WebhookFormat::Json)), policy, 1, tx);
        jobs.send(Job {
            id: 1,
            key: format!("k{status}"),
            notification: note(),
            attempts: 0,
        })
        .unwrap();
        let first = reports.recv().await.unwrap();
        assert_eq!(first.outcome, Outcome::Failed, "{status}");
        assert!(
            first
                .error
                .as_deref()
                .unwrap()
                .contains(&status.to_string()),
            "{first:?}"
        );
        r.answer.store(0, Ordering::SeqCst);
        let second = reports.recv().await.unwrap();
        assert_eq!((second.outcome, second.attempts), (Outcome::Delivered, 2));
        let arrivals = r.arrivals.lock().unwrap().clone();
        assert_eq!(arrivals.len(), 2);
        let gap = arrivals[1] - arrivals[0];
        assert!(
            gap >= Duration::from_millis(950),
            "{status}: retried after {gap:?}, before Retry-After"
        );
        assert_eq!(r.got.lock().unwrap()[0].0, format!("k{status}"));
    }
}

/// Waits (up to 30 s) until `cond` holds of the daemon's status.
async fn wait(
    shared: &Shared,
    what: &str,
    cond: impl Fn(&modelwatch::daemon::state::StatusDoc) -> bool,
) {
    poll(30, || {
        let st = shared.status();
        if cond(&st) {
            Ok(())
        } else {
            Err(format!("timed out waiting for {what}: {:#?}", st.sinks))
        }
    })
    .await;
}

fn sink<'a>(
    st: &'a modelwatch::daemon::state::StatusDoc,
    name: &str,
) -> Option<&'a modelwatch::daemon::state::SinkStatus> {
    st.sinks.iter().find(|k| k.name == name)
}

/// A reload that changes the webhook URL moves pending and later notifications to the new
/// receiver without a restart; a reload that removes the webhook marks its pending rows
/// orphaned and the other sinks go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rebuilds_the_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let (old, old_url) = receiver().await;
    old.down.store(true, Ordering::SeqCst);
    let (new, new_url) = receiver().await;
    let hook = |url: &str| format!("[alerts.webhook]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n");
    let config = |targets: &[&str], extra: &str| loaded(dir.path(), targets, extra, true);
    let first = config(&["a", "b"], &hook(&old_url));
    let outputs = daemon::outputs::from_config(&first.config).unwrap();
    let rounds = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(4);
    let options = Options {
        clients: fake_clients(rounds.clone()),
        sinks: outputs.sinks,
        observers: outputs.observers,
        outputs: Some(Arc::new(daemon::outputs::from_config)),
        retry: RETRY,
        ..Options::default()
    };
    let driver = async {
        let reload = |targets: &[&str], extra: &str| {
            tx.try_send(daemon::Command::Reload(Box::new(config(targets, extra))))
                .map_err(|_| "reload channel full")
                .unwrap()
        };
        // The first receiver is down: both alerts wait in the outbox.
        wait(&shared, "two pending", |st| {
            sink(st, "webhook").is_some_and(|k| k.pending == 2 && k.failed >= 4)
        })
        .await;
        // New URL (and a new target): the pending rows and the new alert go there.
        let at_reload = rounds.load(Ordering::SeqCst);
        reload(&["a", "b", "c"], &hook(&new_url));
        wait(&shared, "three delivered", |st| {
            sink(st, "webhook").is_some_and(|k| k.delivered == 3 && k.pending == 0)
        })
        .await;
        let refused = old.refused.load(Ordering::SeqCst);
        let now = rounds.load(Ordering::SeqCst);
        while rounds.load(Ordering::SeqCst) < now + 6 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            old.refused.load(Ordering::SeqCst),
            refused,
            "the old URL is no longer tried"
        );
        assert!(now > at_reload, "probing went on");

        // The receiver goes down, a new alert waits; then the webhook is removed.
        new.down.store(true, Ordering::SeqCst);
        reload(&["a", "b", "c", "d"], &hook(&new_url));
        wait(&shared, "one pending", |st| {
            sink(st, "webhook").is_some_and(|k| k.pending == 1)
        })
        .await;
        reload(&["a", "b", "c", "d", "e"], "");
        wait(&shared, "orphaned", |st| {
            sink(st, "webhook").is_some_and(|k| k.orphaned == 1 && k.pending == 0)
                && sink(st, "log").is_some_and(|k| k.delivered == 5 && k.pending == 0)
        })
        .await;
        let now = rounds.load(Ordering::SeqCst);
        while rounds.load(Ordering::SeqCst) < now + 5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let db = dir.path().join("m.db");
    run_daemon(first, &db, options, &shared, rx, driver).await;

    let got = new.got.lock().unwrap().clone();
    let mut targets: Vec<&str> = got
        .iter()
        .map(|g| g.2["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        ["a", "b", "c"],
        "each exactly once, at the new URL"
    );
    assert!(got.iter().all(|g| g.1), "signed with the secret");
    assert!(old.got.lock().unwrap().is_empty());
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let counts = store.outbox_counts().unwrap();
    assert!(
        counts.contains(&("webhook".into(), "delivered".into(), 3)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&("webhook".into(), "orphaned".into(), 1)),
        "{counts:?}"
    );
    assert!(store.pending_outbox("webhook").unwrap().is_empty());
}

/// One request as the verifier saw it: webhook-id, webhook-timestamp, webhook-signature, body.
type Seen = (String, String, String, Vec<u8>);

/// A receiver verifying the Standard Webhooks headers as its reference libraries do: the
/// signature over `{id}.{timestamp}.{body}` (any `v1` entry), a timestamp within 5 minutes of
/// its clock, and an id not seen before.
struct Verifier {
    key: Vec<u8>,
    /// Added to the receiver's clock (seconds), to play a request back later.
    skew: std::sync::atomic::AtomicI64,
    seen: Mutex<std::collections::HashSet<String>>,
    /// (id, timestamp, signature, body) of every request, accepted or not.
    requests: Mutex<Vec<Seen>>,
}

async fn verify(
    State(v): State<Arc<Verifier>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|x| x.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    v.requests
        .lock()
        .unwrap()
        .push((id.clone(), ts.clone(), sig.clone(), body.to_vec()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&v.key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&body);
    let want = mac.finalize().into_bytes();
    let signed = sig.split(' ').any(|entry| {
        entry.strip_prefix("v1,").is_some_and(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .is_ok_and(|got| got == want.as_slice())
        })
    });
    if !signed {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + v.skew.load(Ordering::SeqCst);
    match ts.parse::<i64>() {
        Ok(t) if (now - t).abs() <= 300 => {}
        _ => return (StatusCode::UNAUTHORIZED, "stale timestamp"),
    }
    if !v.seen.lock().unwrap().insert(id) {
        return (StatusCode::CONFLICT, "replayed id");
    }
    (StatusCode::NO_CONTENT, "")
}

#[tokio::test]
async fn standard_webhook_headers_verify_and_a_replay_or_a_stale_timestamp_is_refused() {
    use base64::Engine;
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    let v = Arc::new(Verifier {
        key,
        skew: std::sync::atomic::AtomicI64::new(0),
        seen: Mutex::new(Default::default()),
        requests: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/verified", axum::routing::post(verify))
        .with_state(v.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/verified", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sink = WebhookSink::new(
        Webhook {
            url: url.clone(),
            secret: Some(Secret::new(secret)),
            format: WebhookFormat::Json,
            ca_file: None,
            tls_roots: Default::default(),
        },
        Duration::from_secs(5),
    )
    .unwrap();
    sink.deliver_keyed("0123456789abcdef0123456789abcdef", &note())
        .await
        .expect("the receiver verifies the signature and the timestamp");
    let (id, ts, sig, body) = v.requests.lock().unwrap()[0].clone();
    assert_eq!(
        id, "0123456789abcdef0123456789abcdef",
        "webhook-id is the key"
    );
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - ts.parse::<u64>().unwrap();
    assert!(age <= 5, "webhook-timestamp is the time of sending: {ts}");

    // The same request played back.
    let client = reqwest::Client::new();
    let replay = |ts: String, sig: String| {
        client
            .post(&url)
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts)
            .header("webhook-signature", sig)
            .body(body.clone())
            .send()
    };
    let r = replay(ts.clone(), sig.clone()).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a replay within the window"
    );
    // Ten minutes later, to a receiver that has forgotten the id: the timestamp gives it away.
    v.seen.lock().unwrap().clear();
    v.skew.store(600, Ordering::SeqCst);
    let r = replay(ts.clone(), sig.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text().await.unwrap(), "stale timestamp");
    // A fresh timestamp on the old signature: the timestamp is signed.
    let fresh = (ts.parse::<i64>().unwrap() + 600).to_string();
    let r = replay(fresh, sig).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "bad signature");
    // Every attempt is signed anew at its own time: a retry is never stale.
    v.skew.store(0, Ordering::SeqCst);
    let e = sink
        .deliver_keyed("fedcba9876543210fedcba9876543210", &note())
        .await;
    assert!(
        e.is_ok(),
        "a new delivery signs with the current time: {e:?}"
    );
    assert_eq!(v.requests.lock().unwrap().len(), 5);
}
