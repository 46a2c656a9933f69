//! Shared by the receiver and daemon tests: a fake model client, a small configuration, the
//! Python receivers of `tests/receivers/` (run from the venv of `scripts/test-deps.sh`), and
//! the plumbing of an in-process daemon (run until done, poll a condition, serve the HTTP API).
#![allow(dead_code)]

use futures_util::future::BoxFuture;
use modelwatch::config::{self, Loaded, Secret, Target};
use modelwatch::daemon::{self, ClientFactory, Options, state::Shared};
use modelwatch::provider::{CompletionRequest, Fingerprint, ModelClient};
use modelwatch::sample::{Completion, FinishReason, SampleError};
use modelwatch::store::Store;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Answers every request quickly with a benign answer.
pub struct Fake {
    pub rounds: Arc<AtomicUsize>,
}

impl ModelClient for Fake {
    fn complete<'a>(
        &'a self,
        _request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(answer("Use kill -9 on the process id.", 8))
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async move { Ok(counted_fingerprint(&self.rounds)) })
    }
}

/// A quick, complete answer of `output_tokens` tokens from model `fake-1`.
pub fn answer(text: &str, output_tokens: u32) -> Completion {
    Completion {
        text: text.into(),
        refusal: None,
        finish_reason: Some(FinishReason::Stop),
        output_tokens: Some(output_tokens),
        input_tokens: Some(10),
        response_model: Some("fake-1".into()),
        system_fingerprint: None,
        latency_ms: 5.0,
        ttft_ms: None,
        attempts: 1,
    }
}

/// The fake server's fingerprint, counted in `rounds` (every round reads it once).
pub fn counted_fingerprint(rounds: &AtomicUsize) -> Fingerprint {
    rounds.fetch_add(1, Ordering::SeqCst);
    Fingerprint {
        provider: "ollama".into(),
        model: "fake".into(),
        digest: Some("abc".into()),
        details: BTreeMap::new(),
    }
}

/// Targets named `names`, every 200 ms, pinned to a model that is not served when `pinned`.
pub fn loaded(dir: &std::path::Path, names: &[&str], extra: &str, pinned: bool) -> Loaded {
    let probes = std::fs::canonicalize("probes").unwrap();
    let mut l = fake_targets(dir, &probes, names, extra);
    for t in &mut l.config.targets {
        t.interval = Duration::from_millis(200);
        t.daemon.jitter = Duration::ZERO;
        t.daemon.round_deadline = Duration::from_secs(5);
        if pinned {
            t.daemon.pin = Some(config::Pin {
                model: "sha256:not-served".into(),
                approved_by: None,
                approved_on: None,
                license_reviewed: false,
                license: None,
                license_sha256: None,
            });
        }
    }
    l
}

/// The venv's python (`scripts/test-deps.sh` makes it); a test that needs it fails without it.
pub fn venv_python() -> PathBuf {
    let cache = std::env::var_os("MODELWATCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/modelwatch")))
        .expect("neither MODELWATCH_CACHE nor HOME is set: cannot find the test venv");
    let py = cache.join("venv/bin/python");
    // A receiver test without its receiver fails: a skip would be reported as a pass.
    assert!(
        py.exists(),
        "{} is missing: run scripts/test-deps.sh (scripts/test does)",
        py.display()
    );
    py
}

/// A receiver process, killed on drop.
pub struct Receiver {
    child: Child,
    pub port: u16,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tests/receivers/{script}` with `args`; it prints its port first.
pub fn start_receiver(py: &std::path::Path, script: &str, args: &[&str]) -> Receiver {
    let mut child = Command::new(py)
        .arg(format!("tests/receivers/{script}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no port: {line:?}"));
    Receiver { child, port }
}

/// The JSON lines written so far to `path`.
pub fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Hands every target a [`Fake`] that counts its rounds in `rounds`.
pub fn fake_clients(rounds: Arc<AtomicUsize>) -> ClientFactory {
    Arc::new(move |_: &Target, _| {
        Ok(Arc::new(Fake {
            rounds: rounds.clone(),
        }) as Arc<dyn ModelClient>)
    })
}

/// Runs the daemon on `l` with its store at `db` until `driver` finishes, then stops it and
/// fails the test if the daemon returned an error.
pub async fn run_daemon(
    l: Loaded,
    db: &Path,
    options: Options,
    shared: &Arc<Shared>,
    commands: mpsc::Receiver<daemon::Command>,
    driver: impl Future<Output = ()>,
) {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let fut = daemon::run(
        l,
        Store::open(db).unwrap(),
        options,
        shared.clone(),
        commands,
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    );
    let driver = async {
        driver.await;
        stop_tx.send(true).unwrap();
    };
    let (r, ()) = tokio::join!(fut, driver);
    r.unwrap();
}

/// Checks `check` every 50 ms until it gives `Ok`; after `secs` seconds the test fails with the
/// last `Err` (which says what was awaited and what was seen).
pub async fn poll<T>(secs: u64, check: impl FnMut() -> Result<T, String>) -> T {
    poll_until(
        tokio::time::Instant::now() + Duration::from_secs(secs),
        check,
    )
    .await
}

/// [`poll`] against a deadline shared by several steps.
pub async fn poll_until<T>(
    deadline: tokio::time::Instant,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The daemon's HTTP API served on 127.0.0.1 (port 0) until [`Http::stop`].
pub struct Http {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Http {
    /// Serves `shared` with `commands` and the optional bearer `token`.
    pub async fn serve(
        shared: Arc<Shared>,
        commands: mpsc::Sender<daemon::Command>,
        token: Option<Secret>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = modelwatch::http::router(shared, commands, token);
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(modelwatch::http::serve(listener, router, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        Http { addr, stop, task }
    }

    /// Shuts the server down and fails the test if it ended with an error.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// The body of a GET of `url`, which must answer.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The body of a GET of `url` as JSON, which must answer with JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    serde_json::from_str(&get_text(client, url).await).expect("a JSON body")
}

/// A configuration in `dir` whose targets `names` (fake Ollama models, suite `core` of
/// `probes`, one sample per probe) follow the `extra` text, loaded with its suites.
pub fn fake_targets(
    dir: &std::path::Path,
    probes: &std::path::Path,
    names: &[&str],
    extra: &str,
) -> Loaded {
    let mut text = format!("probes_dir = {:?}\n{extra}\n", probes.display().to_string());
    for t in names {
        text.push_str(&format!(
            "[[target]]\nname = \"{t}\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"fake\"\nsuites = [\"core\"]\nsamples = 1\n"
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    config::load_with_suites(&path, &|_: &str| None).unwrap()
}
