//! Nothing outbound follows a redirect. A receiver answering `307` to another local port must
//! never lead the webhook (body and signature), Sentry (`x-sentry-auth` with the key) or OTLP
//! (`x-api-key`) senders to that port (the model client's case is in `provider_faults.rs`);
//! and every outbound client in the sources is built by the one shared builder, so this cannot
//! regress.

use crate::sinks_common;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use modelwatch::daemon::{self, Options, state::Shared};
use sinks_common::{fake_clients, loaded, poll, run_daemon};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a receiver saw: `(path, header names)` per request.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, Vec<String>)>>);

impl Seen {
    fn paths(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// Starts a receiver on a free loopback port; with `redirect_to`, it answers every request
/// `307 Temporary Redirect` to the same path on that port, else `200`.
async fn receiver(redirect_to: Option<u16>) -> (u16, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .fallback(
            |State((seen, to)): State<(Arc<Seen>, Option<u16>)>, req: Request| async move {
                let names = req.headers().keys().map(|k| k.to_string()).collect();
                let path = req.uri().path().to_string();
                seen.0.lock().unwrap().push((path.clone(), names));
                match to {
                    Some(port) => (
                        StatusCode::TEMPORARY_REDIRECT,
                        [("location", format!("http://127.0.0.1:{port}{path}"))],
                    )
                        .into_response(),
                    None => (StatusCode::OK, "{}").into_response(),
                }
            },
        )
        .with_state((seen.clone(), redirect_to));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sink_follows_a_redirect() {
    let (trap_port, trap) = receiver(None).await;
    let (port, redirector) = receiver(Some(trap_port)).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[alerts.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"0123456789abcdef0123\"\n\n\
         [alerts.sentry]\ndsn = \"http://publickey@127.0.0.1:{port}/42\"\n\n\
         [telemetry.otlp]\nendpoint = \"http://127.0.0.1:{port}\"\nheaders = {{ x-api-key = \"otlp-secret-token\" }}\n"
    );
    // Pinned to a model that is not served: an `unapproved_model` alert fires at once, so the
    // webhook and Sentry both have something to send; OTLP exports every round.
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
    let seen = redirector.clone();
    run_daemon(
        l,
        &dir.path().join("m.db"),
        options,
        &shared,
        rx,
        async move {
            poll(30, || {
                let paths = seen.paths();
                let has = |p: &str| paths.iter().any(|x| x.starts_with(p));
                if has("/hook") && has("/api/42/") && has("/v1/traces") && has("/v1/metrics") {
                    Ok(())
                } else {
                    Err(format!("waiting for every sink to send; seen {paths:?}"))
                }
            })
            .await;
            // Time for a follow-up request, were one to be made.
            tokio::time::sleep(Duration::from_millis(500)).await;
        },
    )
    .await;
    let sent: Vec<(String, Vec<String>)> = redirector.0.lock().unwrap().clone();
    let carried = |path: &str, header: &str| {
        sent.iter()
            .any(|(p, h)| p.starts_with(path) && h.iter().any(|n| n == header))
    };
    // The credentials were on the redirected requests, so following would have carried them.
    assert!(carried("/hook", "x-modelwatch-signature"), "{sent:?}");
    assert!(carried("/api/42/", "x-sentry-auth"), "{sent:?}");
    assert!(carried("/v1/", "x-api-key"), "{sent:?}");
    assert_eq!(
        trap.paths(),
        Vec::<String>::new(),
        "the redirect target received requests"
    );
}

/// The envelopes of the Sentry SDK (the daemon's own panics and errors) leave through the
/// Sentry sink's client: a `307` is an answer, the key is not carried on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_envelopes_follow_no_redirect() {
    use modelwatch::alert::sentry::SentrySink;
    let (trap_port, trap) = receiver(None).await;
    let (port, redirector) = receiver(Some(trap_port)).await;
    let sink = SentrySink::new(
        modelwatch::config::Sentry {
            dsn: modelwatch::config::Secret::new(format!("http://publickey@127.0.0.1:{port}/42")),
            environment: "test".into(),
            release: "r".into(),
            monitor: "m".into(),
            ca_file: None,
            tls_roots: Default::default(),
        },
        Default::default(),
        Duration::from_secs(5),
    )
    .unwrap();
    let envelope = b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n".to_vec();
    let e = sink.post_envelope(envelope).await.unwrap_err();
    assert!(e.to_string().contains("307"), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(redirector.paths(), ["/api/42/envelope/"]);
    assert_eq!(trap.paths(), Vec::<String>::new(), "followed the redirect");
}

/// Every outbound client is built by `provider::http::outbound_client`, which refuses
/// redirects; a client built any other way would follow up to ten.
#[test]
fn every_outbound_client_comes_from_the_shared_builder() {
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for pattern in [
                "reqwest::Client::",
                "ClientBuilder::new",
                "reqwest::get(",
                "use reqwest::Client",
            ] {
                if text.contains(pattern) && !path.ends_with("provider/http.rs") {
                    offenders.push(format!("{}: {pattern}", path.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}
