//! Production traffic through the real `modelwatch daemon` process: JSON lines posted to
//! `POST /api/v1/ingest` over real HTTP show up per stream in `/api/v1/status` and `/metrics`
//! and in the database (measurements only); a wrong token is 401, an oversized body 413, a bad
//! line a per-line error naming line and field; a flood of ingest requests neither loses what
//! was accepted nor delays the prober's rounds; and after a silent swap the prober detects, a
//! route that refuses more is reported naming the route and the swap, the other route not, and
//! becomes an alert at the next round.

use crate::daemon_proc;
use daemon_proc::{free_port, runtime, server_config, start_piped, wait_until, write_suite};
use modelwatch::sim::{self, Profile, SimHandle};
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) const TOKEN: &str = "ingest-canary-3b9d0e7a41c2";

pub(crate) struct Env {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) sim: SimHandle,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cfg: PathBuf,
    pub(crate) port: u16,
    /// The stderr of the daemon's current life (replaced by each [`Env::start`]).
    log: std::sync::Mutex<Arc<std::sync::Mutex<String>>>,
}

/// The simulator, one target `chat` (model `sim-7b`) every 10 s, and `[traffic]` with
/// `extra` settings and its token in a file.
pub(crate) fn env(extra: &str) -> Env {
    let rt = runtime(2);
    let mut profile = Profile::builtin("healthy").unwrap();
    profile.latency_scale = 0.0;
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 3).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes");
    write_suite(&probes, "core", ["Explain disks.".to_string()]);
    std::fs::write(dir.path().join("ingest.token"), format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let cfg = dir.path().join("modelwatch.toml");
    let text = server_config(&probes, &dir.path().join("m.db"), port)
        + &format!(
            "[traffic]\ntoken_file = \"ingest.token\"\n{extra}\n[[target]]\nname = \"chat\"\nprovider = \"ollama\"\nbase_url = \"{}\"\nmodel = \"sim-7b\"\nsuites = [\"core\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\n",
            sim.base_url()
        );
    std::fs::write(&cfg, text).unwrap();
    Env {
        rt,
        sim,
        dir,
        cfg,
        port,
        log: Default::default(),
    }
}

impl Env {
    /// Starts the daemon and waits until it is ready; it must still be running then (a
    /// daemon that could not bind its port would leave another process answering).
    pub(crate) fn start(&self) -> Child {
        let (mut child, log) = start_piped(&self.cfg);
        *self.log.lock().unwrap() = log.clone();
        wait_until("the daemon to be ready", 30, || {
            self.get("/readyz").0 == 200
        });
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the daemon exited while another process answered on its port:\n{}",
            self.log()
        );
        assert!(!self.log().contains(TOKEN), "the token is never logged");
        child
    }

    /// What the daemon's current life has logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().lock().unwrap().clone()
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        daemon_proc::get(&self.rt, self.port, path)
    }

    pub(crate) fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/api/v1/status").1).unwrap_or_default()
    }

    /// POSTs `body` to the ingest endpoint with `token`: status, `Retry-After`, JSON body.
    pub(crate) fn post(
        &self,
        token: Option<&str>,
        body: String,
    ) -> (u16, Option<String>, serde_json::Value) {
        self.rt.block_on(post(self.port, token, body))
    }
}

/// The alert of `metric` once it fires (waits up to 20 s).
pub(crate) fn firing_alert(env: &Env, metric: &str) -> serde_json::Value {
    let alert = |status: serde_json::Value| {
        status["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["key"]["metric"] == metric).cloned())
    };
    wait_until("the traffic alert", 20, || {
        alert(env.status()).is_some_and(|a| a["status"] == "firing")
    });
    alert(env.status()).expect("the alert")
}

/// Posts `batch()` (100 completions of route `watched` each) until the traffic monitor of
/// target `chat` reports a breach on `watched` or `limit` completions were sent; `quiet` must
/// have none by then. Returns how many were sent and `watched`'s breaches.
pub(crate) fn send_until_breach(
    env: &Env,
    watched: &str,
    quiet: &str,
    limit: usize,
    batch: impl Fn() -> String,
) -> (usize, Vec<serde_json::Value>) {
    let mut sent = 0;
    loop {
        assert_eq!(env.post(Some(TOKEN), batch()).0, 200);
        sent += 100;
        std::thread::sleep(Duration::from_millis(300));
        let routes = env.status()["traffic"]["watch"]["targets"]["chat"]["routes"].clone();
        let breaches = routes[watched]["breaches"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !breaches.is_empty() || sent >= limit {
            assert_eq!(routes[quiet]["breaches"], serde_json::json!([]), "{routes}");
            return (sent, breaches);
        }
    }
}

async fn post(
    port: u16,
    token: Option<&str>,
    body: String,
) -> (u16, Option<String>, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/ingest"))
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (status, retry, r.json().await.unwrap_or_default())
        }
        Err(_) => (0, None, serde_json::Value::Null),
    }
}

#[test]
fn ingested_lines_show_up_per_stream_in_status_metrics_and_store() {
    let env = env("max_body_bytes = 4096");
    let mut child = env.start();
    let good = [
        r#"{"target":"chat","route":"/support","output":"I'm sorry, but I can't help with that request.","finish_reason":"stop","latency_ms":300}"#,
        r#"{"model":"sim-7b","route":"/support","output":"Restart the router and wait a minute.","finish_reason":"length"}"#,
        r#"{"target":"chat","output_chars":240,"output_tokens":60,"finish_reason":"stop"}"#,
    ];
    let body = format!(
        "{}\n{}\n{}\n{{\"target\":\"chat\",\"output_chars\":\"many\"}}\n",
        good[0], good[1], good[2]
    );

    assert_eq!(env.post(None, body.clone()).0, 401);
    assert_eq!(
        env.post(Some("ingest-canary-3b9d0e7a41c3"), body.clone()).0,
        401
    );
    let (code, _, reply) = env.post(Some(TOKEN), body);
    assert_eq!(code, 200, "{reply}");
    assert_eq!(reply["accepted"], 3);
    assert_eq!(
        reply["errors"][0],
        "line 4: /output_chars: expected a non-negative integer below 2^32, found a string"
    );
    let (code, _, reply) = env.post(Some(TOKEN), r#"{"target":"billing","output":"x"}"#.into());
    assert_eq!(code, 400);
    assert_eq!(
        reply["errors"][0],
        "line 1: /target: unknown target `billing`: expected one of chat"
    );
    let (code, _, reply) = env.post(Some(TOKEN), format!("{}\n", good[2]).repeat(60));
    assert_eq!(code, 413, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("larger than 4096 bytes ([traffic] max_body_bytes)"),
        "{reply}"
    );

    wait_until("the accepted lines to be processed", 20, || {
        env.status()["traffic"]["processed"] == 3
    });
    let traffic = env.status()["traffic"].clone();
    assert_eq!(traffic["accepted"], 3);
    assert_eq!(traffic["invalid"], 2);
    assert_eq!(traffic["refused"]["unauthorized"], 2);
    assert_eq!(traffic["refused"]["too_large"], 1);
    let streams = traffic["streams"].as_array().unwrap();
    let support = streams.iter().find(|s| s["route"] == "/support").unwrap();
    assert_eq!(support["target"], "chat");
    assert_eq!(support["completions"], 2);
    assert_eq!(support["rates"]["refusal_rate"], 0.5);
    assert_eq!(support["rates"]["truncation_rate"], 0.5);
    let metrics = env.get("/metrics").1;
    assert!(
        metrics.contains(
            "modelwatch_traffic_completions_total{target=\"chat\",route=\"/support\"} 2\n"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "modelwatch_traffic_quality_ratio{target=\"chat\",route=\"/support\",metric=\"refusal_rate\"} 0.5\n"
    ));
    assert!(
        metrics.contains(
            "modelwatch_traffic_completions_total{target=\"chat\",route=\"default\"} 1\n"
        )
    );
    assert!(
        metrics.contains("modelwatch_traffic_ingest_refused_total{reason=\"unauthorized\"} 2\n")
    );
    for text in [env.get("/metrics").1, env.get("/api/v1/status").1] {
        assert!(!text.contains(TOKEN));
    }
    let _ = child.kill();
    let _ = child.wait();

    // Measurements only: the texts are not in the database.
    let db = rusqlite::Connection::open(env.dir.path().join("m.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM traffic_completions", [], |r| r.get(0))
        .unwrap();
    let texts: i64 = db
        .query_row("SELECT count(*) FROM traffic_texts", [], |r| r.get(0))
        .unwrap();
    assert_eq!((rows, texts), (3, 0));
}

#[test]
fn a_flood_loses_nothing_accepted_and_does_not_delay_the_rounds() {
    let env = env("max_rate = 1000000\nqueue = 2");
    let mut child = env.start();
    wait_until("the first round", 30, || {
        env.status()["targets"][0]["rounds"].as_u64() >= Some(1)
    });
    let line = r#"{"target":"chat","route":"/flood","output":"Here is a fairly ordinary answer of moderate length, with nothing special in it.","finish_reason":"stop","latency_ms":120}"#;
    let body = format!("{line}\n").repeat(2000);
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<std::sync::Mutex<std::collections::BTreeMap<u16, u64>>> = Arc::default();
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (stop, accepted, outcomes, body) = (
            stop.clone(),
            accepted.clone(),
            outcomes.clone(),
            body.clone(),
        );
        let port = env.port;
        senders.push(env.rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (code, retry, reply) = post(port, Some(TOKEN), body.clone()).await;
                if code == 503 {
                    assert_eq!(
                        retry.as_deref(),
                        Some("1"),
                        "busy answers say when to retry"
                    );
                }
                accepted.fetch_add(reply["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                *outcomes.lock().unwrap().entry(code).or_default() += 1;
            }
        }));
    }
    // Watch the round starts for three intervals while the flood runs.
    let mut starts: Vec<i64> = Vec::new();
    let until = Instant::now() + Duration::from_secs(32);
    while Instant::now() < until {
        if let Some(s) = env.status()["targets"][0]["last_round"]["started_at_ms"].as_i64()
            && starts.last() != Some(&s)
        {
            starts.push(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        env.rt.block_on(s).unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let accepted = accepted.load(Ordering::Relaxed);
    wait_until("every accepted line to be processed", 60, || {
        env.status()["traffic"]["processed"].as_u64() == Some(accepted)
    });
    let traffic = env.status()["traffic"].clone();
    println!(
        "flood: {accepted} completions accepted, responses {outcomes:?}, round starts {starts:?}"
    );
    assert_eq!(traffic["accepted"].as_u64(), Some(accepted));
    assert!(
        accepted >= 2000,
        "the flood was accepted at least once: {outcomes:?}"
    );
    assert!(
        outcomes.keys().all(|c| [200, 503].contains(c)),
        "only accepted or busy: {outcomes:?}"
    );
    // Rounds every 10 s: at least three starts, none more than 2.5 s late.
    assert!(
        starts.len() >= 3,
        "rounds stalled under the flood: {starts:?}"
    );
    for w in starts.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            (9_000..=12_500).contains(&gap),
            "a round started {gap} ms after the previous one (interval 10 s): {starts:?}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `n` completions on `route`, one in `every` a refusal.
fn lines(route: &str, n: usize, every: usize) -> String {
    (0..n)
        .map(|i| {
            let output = if i % every == every - 1 {
                "I'm sorry, but I can't help with that request."
            } else {
                "Restart the router, wait a minute, then sign in again."
            };
            format!(
                "{{\"target\":\"chat\",\"route\":\"{route}\",\"output\":\"{output}\",\"finish_reason\":\"stop\"}}\n"
            )
        })
        .collect()
}

#[test]
fn production_drift_after_a_swap_names_the_route_and_the_swap() {
    let env = env("");
    let mut child = env.start();
    wait_until("the first fingerprint", 30, || {
        env.status()["targets"][0]["fingerprint"].is_string()
    });
    // The baseline: /support refuses 2 %, /search 10 %.
    for _ in 0..3 {
        let body = lines("/support", 100, 50) + &lines("/search", 100, 10);
        assert_eq!(env.post(Some(TOKEN), body).0, 200);
    }
    wait_until("both baselines", 20, || {
        let w = &env.status()["traffic"]["watch"]["targets"]["chat"]["routes"];
        w["/support"]["monitored"] == true && w["/search"]["monitored"] == true
    });
    env.sim.set_profile(Profile::builtin("degraded").unwrap());
    wait_until("the prober to see the swap", 30, || {
        env.status()["targets"][0]["swaps"] == 1
    });
    // After the swap /support refuses one in six; /search is unchanged.
    let (sent, breaches) = send_until_breach(&env, "/support", "/search", 3_000, || {
        lines("/support", 100, 6) + &lines("/search", 100, 10)
    });
    println!("production drift reported after {sent} completions on /support: {breaches:?}");
    // Within the delay `cargo bench --bench traffic_delay` predicts for 2 % → 16.7 % with this
    // baseline and batch size: median 300, p99 1,300 completions (Bernoulli refusals there; this
    // stream is periodic, so less variable). The status is read after each batch is sent,
    // possibly before the traffic task has measured it, which can only make `sent` larger.
    assert!(
        sent <= 1_300,
        "{sent} completions before the breach: slower than the bench's p99 of 1,300"
    );
    let msg = breaches
        .iter()
        .filter_map(|b| b.as_str())
        .find(|b| b.starts_with("production refusal rate on route /support of chat 2.0 % → "))
        .unwrap_or_else(|| panic!("no refusal breach: {breaches:?}"));
    assert!(msg.contains(" since the swap at "), "{msg}");
    assert!(msg.contains("(fingerprint "), "{msg}");
    let swap = &env.status()["traffic"]["watch"]["targets"]["chat"]["last_swap"];
    assert!(swap["from"] != swap["to"], "{swap}");
    // At the target's next round the breach is an alert, with the same words.
    let a = firing_alert(&env, "traffic:/support:refusal_rate");
    assert_eq!(a["key"]["target"], "chat");
    let summary = a["evidence"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("production refusal rate on route /support of chat 2.0 % → ")
            && summary.ends_with(msg.split_once(" since ").unwrap().1),
        "{a}"
    );
    assert!(
        env.get("/metrics").1.contains(
            "modelwatch_alert_firing{target=\"chat\",metric=\"traffic:/support:refusal_rate\",severity=\"warning\"} 1"
        )
    );
    let _ = child.kill();
    let _ = child.wait();
}
