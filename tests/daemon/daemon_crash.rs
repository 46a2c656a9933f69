//! `kill -9` of the real `modelwatch daemon` at random (seeded) moments, many times over, against
//! the real simulator and a webhook receiver on 127.0.0.1.
//!
//! Between lives the simulator switches at random between two models (two digests), and the
//! target is pinned to one of them, so lives see swaps (info notifications) and the pin alert
//! fire and resolve. After every kill the test checks with its own connection that the database
//! passes `PRAGMA integrity_check` and still holds every sample it saw committed before the
//! kill. At the end a last life runs until the outbox is empty, and the test checks the delivery
//! contract of `src/alert/outbox.rs` (at least once, deduplicable): every outbox row delivered,
//! every key received at least once, a repeated key always with the same body, no transition
//! recorded twice (one `firing` and at most one `resolved` per incident), and no transition of
//! the pin alert missing from the outbox.

use crate::daemon_proc;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use daemon_proc::{free_port, integrity, runtime, server_config, write_suite};
use modelwatch::rng::Rng;
use modelwatch::sim::{self, Profile};
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CYCLES: usize = 50;
const TARGETS: usize = 4;
const PROBES: usize = 4;
const SEED: u64 = 0x6b696c6c;

fn digest(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn profile(c: char) -> Profile {
    let mut p = Profile::builtin("healthy").unwrap();
    p.latency_scale = 0.0;
    p.fingerprint.digest = digest(c);
    p
}

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver recording every delivery (idempotency key, body); it answers after a
/// short pseudo-random pause so that kills also land between a delivery and its record.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let pause = {
                    let mut l = log.lock().unwrap();
                    l.push((key, body.to_vec()));
                    (l.len() * 7919 % 40) as u64
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), received)
}

fn write_setup(dir: &Path, sim_url: &str, hook: &str, port: u16) -> PathBuf {
    let probes = dir.join("probes");
    write_suite(
        &probes,
        "crash",
        (0..PROBES).map(|i| format!("Explain topic {i} in two sentences.")),
    );
    let mut cfg = server_config(&probes, &dir.join("m.db"), port);
    cfg.push_str(&format!(
        r#"[alerts]
reminder = "0s"
resolve_after = 1
[alerts.webhook]
url = "{hook}"
"#
    ));
    for t in 0..TARGETS {
        cfg.push_str(&format!(
            r#"
[[target]]
name = "t{t}"
provider = "{provider}"
base_url = "{sim_url}"
model = "sim-7b"
suites = ["crash"]
samples = 1
interval = "10s"
jitter = "0s"
pin = "{pin}"
"#,
            provider = if t % 2 == 0 { "ollama" } else { "openai" },
            pin = digest('a'),
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start(cfg: &Path, log: &Path) -> Child {
    daemon_proc::start_logged(cfg, log)
}

fn read_only(db: &Path) -> Option<Connection> {
    if !db.exists() {
        return None;
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    Some(c)
}

/// Sample ids committed so far (empty before the schema exists).
fn sample_ids(db: &Path) -> BTreeSet<i64> {
    let Some(c) = read_only(db) else {
        return BTreeSet::new();
    };
    let Ok(mut stmt) = c.prepare("SELECT id FROM samples") else {
        return BTreeSet::new();
    };
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn pending(db: &Path) -> i64 {
    read_only(db)
        .and_then(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .ok()
        })
        .unwrap_or(i64::MAX)
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_duplicates_nothing() {
    let started = Instant::now();
    let rt = runtime(1);
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile('a'), 7).unwrap() });
    let (hook, received) = rt.block_on(receiver());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_setup(dir.path(), &sim.base_url(), &hook, port);
    let db = dir.path().join("m.db");
    let log = dir.path().join("daemon.log");
    let mut rng = Rng::new(SEED);
    let mut kills_with_new_samples = 0;
    // Kills after some of a life's rounds were stored and before the others.
    let mut kills_between_rounds = 0;
    let get = |path: &str| {
        rt.block_on(async {
            reqwest::get(format!("http://127.0.0.1:{port}{path}"))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
    };
    let mut max_samples = 0;

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for cycle in 0..CYCLES {
            // Switch the served model at random: swaps, and the pin alert fires or resolves.
            if rng.f64() < 0.5 {
                let c = if sim.profile().fingerprint.digest == digest('a') {
                    'b'
                } else {
                    'a'
                };
                sim.set_profile(profile(c));
            }
            let before = sample_ids(&db);
            let mut child = start(&cfg, &log);
            // A random moment during the life's rounds (they start right away): nine kills in
            // ten after its first round was committed, while the others are running or being
            // stored; the rest during the start itself.
            if rng.f64() < 0.9 {
                let first = Instant::now() + Duration::from_secs(20);
                while sample_ids(&db).len() == before.len() {
                    assert!(Instant::now() < first, "life {cycle}: no round within 20 s");
                    std::thread::sleep(Duration::from_millis(2));
                }
                std::thread::sleep(Duration::from_millis((rng.f64() * 60.0) as u64));
            } else {
                std::thread::sleep(Duration::from_millis((rng.f64() * 200.0) as u64));
            }
            let seen = sample_ids(&db);
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            assert!(
                status.code().is_none(),
                "the daemon exited on its own: {status:?}"
            );
            let new = seen.len() - before.len().min(seen.len());
            if new > 0 {
                kills_with_new_samples += 1;
            }
            if new > 0 && new < TARGETS * PROBES {
                kills_between_rounds += 1;
            }
            let check = integrity(&db);
            assert_eq!(check, "ok", "integrity after kill {cycle}");
            let after = sample_ids(&db);
            let lost: Vec<_> = seen.difference(&after).collect();
            assert!(
                lost.is_empty(),
                "kill {cycle}: {} committed samples lost: {lost:?}",
                lost.len()
            );
            max_samples = after.len();
        }

        // A last life that runs until everything is delivered.
        let mut child = start(&cfg, &log);
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = || get("/readyz");
        while !ready() || pending(&db) != 0 {
            assert!(
                Instant::now() < deadline,
                "the outbox still holds {} pending rows",
                pending(&db)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
    }));
    if let Err(e) = outcome {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: String = text
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        eprintln!("{tail}");
        std::panic::resume_unwind(e);
    }

    assert_eq!(integrity(&db), "ok");
    let c = read_only(&db).unwrap();
    // The outbox: unique keys per sink, everything delivered.
    let rows: Vec<(String, String, String)> = c
        .prepare("SELECT idempotency_key, status, notification FROM outbox WHERE sink = 'webhook'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let keys: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        keys.len(),
        rows.len(),
        "an idempotency key twice in the outbox"
    );
    for (key, status, _) in &rows {
        assert_eq!(status, "delivered", "outbox row {key}");
    }
    // The receiver: every key at least once, a repeat always identical, nothing unknown.
    let received = received.lock().unwrap().clone();
    let mut bodies: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (key, body) in &received {
        bodies.entry(key.as_str()).or_default().push(body);
    }
    for key in &keys {
        assert!(
            bodies.contains_key(key),
            "notification {key} never delivered"
        );
    }
    let mut repeats = 0;
    for (key, list) in &bodies {
        assert!(
            keys.contains(key),
            "received a key that is not in the outbox: {key}"
        );
        assert!(
            list.iter().all(|b| *b == list[0]),
            "key {key} delivered with different bodies"
        );
        repeats += list.len() - 1;
    }
    // Transitions: one firing and at most one resolution per incident.
    let mut per_incident: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, n) in &rows {
        let v: serde_json::Value = serde_json::from_str(n).unwrap();
        let kind = v["kind"].as_str().unwrap().to_string();
        *kinds.entry(kind.clone()).or_default() += 1;
        if kind == "firing" || kind == "resolved" {
            *per_incident
                .entry((v["incident"].as_str().unwrap().to_string(), kind))
                .or_default() += 1;
        }
    }
    for ((incident, kind), n) in &per_incident {
        assert_eq!(*n, 1, "{kind} of {incident} recorded {n} times");
    }
    // No transition of the pin alert missing: every incident up to the stored one fired, and
    // every incident before it (and it, if resolved) resolved.
    let states: Vec<(String, String, String)> = c
        .prepare("SELECT target, status, state FROM alert_state WHERE metric = 'unapproved_model'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut incidents = 0;
    for (target, status, state) in &states {
        let v: serde_json::Value = serde_json::from_str(state).unwrap();
        let last = v["incident"].as_u64().unwrap();
        for i in 1..=last {
            let incident = format!("{target}/unapproved_model#{i}");
            assert!(
                per_incident.contains_key(&(incident.clone(), "firing".into())),
                "{incident} fired (alert state) but no firing notification is in the outbox"
            );
            if i < last || status != "firing" {
                assert!(
                    per_incident.contains_key(&(incident.clone(), "resolved".into())),
                    "{incident} resolved (alert state {status}) but no resolution is in the outbox"
                );
            }
        }
        incidents += last;
    }
    let samples: i64 = c
        .query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
        .unwrap();
    println!(
        "kill -9 cycles: {CYCLES}, kills after new samples were committed: {kills_with_new_samples} \
         (between two rounds of a life: {kills_between_rounds}), \
         samples stored: {samples} (after the last kill: {max_samples}), notifications: {} {kinds:?}, \
         pin incidents: {incidents}, deliveries received: {} (repeats of a key: {repeats}), \
         wall time {:.1} s",
        rows.len(),
        received.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills_with_new_samples >= CYCLES * 3 / 4 && kills_between_rounds >= 8,
        "too few kills landed during rounds: {kills_with_new_samples}"
    );
    assert!(incidents >= 3, "too few pin incidents: {incidents}");
    assert!(
        kinds.get("info").copied().unwrap_or(0) >= 3,
        "too few swaps: {kinds:?}"
    );
}
