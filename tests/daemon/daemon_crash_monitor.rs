//! `kill -9` of the real `modelwatch daemon` at random (seeded) moments, 50 times, with targets
//! monitored against their baselines: the monitor's evidence is saved in each round's
//! transaction and restored at start, so a restart neither resets nor duplicates it. Between
//! lives the simulator now and then serves another model (another digest): the swap begins a
//! new episode, which must stay begun across the kills that follow.
//!
//! After every kill the test reads, with its own connection, the evidence the last committed
//! round left and checks that it counts exactly the committed rounds and samples (a reset counts
//! fewer, a duplicate more). Each next life's first status, published before its first round
//! ends (the simulator answers in a few hundred milliseconds), must show exactly that evidence:
//! the test rebuilds the monitor from the baseline and the saved state and compares the
//! readings. At the end the final evidence must equal a replay of every stored round.

use crate::daemon_proc;
use daemon_proc::{free_port, integrity, runtime, server_config, write_suite};
use modelwatch::baseline::Baseline;
use modelwatch::daemon::monitor::{MonitorSettings, MonitorState, TargetMonitor};
use modelwatch::drift::Margins;
use modelwatch::rng::Rng;
use modelwatch::sim::{self, Profile};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CYCLES: usize = 50;
const TARGETS: usize = 2;
const PROBES: usize = 4;
const SEED: u64 = 0x6d6f6e69;

fn write_setup(dir: &Path, sim_url: &str, port: u16) -> PathBuf {
    let probes = dir.join("probes");
    write_suite(
        &probes,
        "mon",
        (0..PROBES).map(|i| format!("Explain topic {i} in two sentences.")),
    );
    let mut cfg = server_config(&probes, &dir.join("m.db"), port);
    for t in 0..TARGETS {
        cfg.push_str(&format!(
            r#"
[[target]]
name = "t{t}"
provider = "ollama"
base_url = "{sim_url}"
model = "sim-7b"
suites = ["mon"]
samples = 1
interval = "10s"
jitter = "0s"
baseline = "baselines/t{t}.json"
"#
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start(cfg: &Path, log: &Path) -> Child {
    daemon_proc::start_logged(cfg, log)
}

fn read_only(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// The saved evidence of `target` (None before its first monitored round).
fn saved(db: &Path, target: &str) -> Option<MonitorState> {
    let c = read_only(db);
    let json: Option<String> = c
        .query_row(
            "SELECT m.state FROM monitor_state m JOIN targets t ON t.id = m.target_id \
             WHERE t.name = ?1",
            [target],
            |r| r.get(0),
        )
        .ok();
    json.map(|j| serde_json::from_str(&j).unwrap())
}

/// The first round of `target`'s current episode: the round of its last swap, or the first one
/// after round `after` (the baselines' own).
fn episode_start(db: &Path, target: &str, after: i64) -> i64 {
    let c = read_only(db);
    let swap: Option<i64> = c
        .query_row(
            "SELECT MAX(e.at_ms) FROM events e JOIN targets t ON t.id = e.target_id \
             WHERE t.name = ?1 AND e.kind = 'swap'",
            [target],
            |r| r.get(0),
        )
        .unwrap();
    c.query_row(
        "SELECT COALESCE(MIN(r.id), 1 << 62) FROM rounds r JOIN targets t ON t.id = r.target_id \
         WHERE t.name = ?1 AND r.id > ?2 AND r.started_at_ms >= ?3",
        rusqlite::params![target, after, swap.unwrap_or(0)],
        |r| r.get(0),
    )
    .unwrap()
}

/// Rounds of `target`'s current episode (after round `after`), and their samples that measured
/// something.
fn committed(db: &Path, target: &str, after: i64) -> (u64, u64) {
    let from = episode_start(db, target, after);
    let c = read_only(db);
    c.query_row(
        "SELECT COUNT(DISTINCT r.id), COUNT(s.id) FROM rounds r JOIN targets t ON t.id = r.target_id \
         JOIN samples s ON s.round_id = r.id AND s.error_kind IS NULL \
         WHERE t.name = ?1 AND r.id >= ?2",
        rusqlite::params![target, from],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

/// Rounds stored so far, of every target.
fn all_rounds(db: &Path) -> i64 {
    read_only(db)
        .query_row("SELECT COUNT(*) FROM rounds", [], |r| r.get(0))
        .unwrap()
}

fn profile(digest: char) -> Profile {
    let mut p = Profile::builtin("healthy").unwrap();
    p.latency_scale = 0.15;
    p.fingerprint.digest = std::iter::repeat_n(digest, 64).collect();
    p
}

fn monitor(dir: &Path, target: &str) -> TargetMonitor {
    let b = Baseline::load(&dir.join(format!("baselines/{target}.json"))).unwrap();
    TargetMonitor::new(
        &b,
        MonitorSettings {
            margins: Margins::default(),
            false_alarm_rounds: 90.0 * 24.0 * 360.0,
            null_confidence: Default::default(),
        },
    )
}

/// The readings the daemon must show for `state` (its `/api/v1/status` metrics).
fn readings(dir: &Path, target: &str, state: &MonitorState) -> serde_json::Value {
    let mut m = monitor(dir, target);
    m.restore(state).unwrap();
    serde_json::to_value(m.snapshot()).unwrap()
}

/// Checks that the saved evidence of every target counts exactly its committed rounds.
fn check_counts(db: &Path, first_round: i64, cycle: usize) -> u64 {
    let mut rounds = 0;
    for t in 0..TARGETS {
        let name = format!("t{t}");
        let (n_rounds, n_samples) = committed(db, &name, first_round);
        let Some(s) = saved(db, &name) else {
            assert_eq!(
                n_rounds, 0,
                "kill {cycle}: {name} has rounds but no evidence"
            );
            continue;
        };
        assert_eq!(
            s.rounds, n_rounds,
            "kill {cycle}: {name}'s evidence counts {} rounds, {n_rounds} are stored",
            s.rounds
        );
        let empty = s.rates.iter().find(|r| r.metric == "empty_rate").unwrap();
        assert_eq!(
            empty.strata.mixture.trials, n_samples,
            "kill {cycle}: {name}'s evidence counts other samples than the stored ones"
        );
        rounds += n_rounds;
    }
    rounds
}

/// Checks that the readings stored with each target's newest round are what its saved evidence
/// reads (both are written in the round's transaction, so a kill never separates them).
fn check_readings(dir: &Path, db: &Path, cycle: usize) {
    let store = modelwatch::store::Store::open(db).unwrap();
    for t in 0..TARGETS {
        let name = format!("t{t}");
        let Some(state) = saved(db, &name) else {
            continue;
        };
        let want = readings(dir, &name, &state);
        let stored = store.readings(&name, 0).unwrap();
        let newest = stored.last().map(|r| r.round).unwrap();
        let got: Vec<_> = stored.iter().filter(|r| r.round == newest).collect();
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "kill {cycle}: {name}: {got:?}");
        for w in want {
            let metric = w["metric"].as_str().unwrap();
            let g = got
                .iter()
                .map(|g| &g.reading)
                .find(|g| g.metric == metric)
                .unwrap_or_else(|| panic!("kill {cycle}: {name} has no reading of {metric}"));
            assert_eq!(
                g.samples,
                w["samples"].as_u64().unwrap(),
                "kill {cycle}: {name}"
            );
            let e = w["e_value"].as_f64().unwrap();
            assert!(
                (g.log_e_value - e.ln()).abs() < 1e-9,
                "kill {cycle}: {name} {}: stored ln e {} vs {}",
                g.metric,
                g.log_e_value,
                e.ln()
            );
        }
    }
}

#[test]
fn kill_9_at_random_moments_keeps_the_monitor_evidence_of_the_committed_rounds() {
    let started = Instant::now();
    let rt = runtime(1);
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile('a'), 11).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_setup(dir.path(), &sim.base_url(), port);
    let db = dir.path().join("m.db");
    let log = dir.path().join("daemon.log");
    for t in 0..TARGETS {
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["baseline", "record", "--samples", "5", "--target"])
            .arg(format!("t{t}"))
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Rounds after the baselines' own are the monitor's.
    let first_round: i64 = read_only(&db)
        .query_row("SELECT COALESCE(MAX(id), 0) FROM rounds", [], |r| r.get(0))
        .unwrap();
    let mut rng = Rng::new(SEED);
    let status = |port: u16| -> Option<serde_json::Value> {
        rt.block_on(async {
            let r = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/status"))
                .await
                .ok()?;
            r.json().await.ok()
        })
    };
    let mut compared = 0;
    let mut restored_rounds = 0;
    let mut swaps = 0;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for cycle in 0..CYCLES {
            let expected: Vec<Option<MonitorState>> =
                (0..TARGETS).map(|t| saved(&db, &format!("t{t}"))).collect();
            if cycle > 0 && rng.f64() < 0.15 {
                let next = if sim.profile().fingerprint.digest.starts_with('a') {
                    'b'
                } else {
                    'a'
                };
                sim.set_profile(profile(next));
                swaps += 1;
            }
            let before = all_rounds(&db);
            let mut child = start(&cfg, &log);
            // The first status, published before the first round ends, shows what was restored.
            let deadline = Instant::now() + Duration::from_secs(20);
            let first = loop {
                assert!(
                    Instant::now() < deadline,
                    "life {cycle}: no status within 20 s"
                );
                if let Some(s) = status(port)
                    && s["targets"].as_array().is_some_and(|t| t.len() == TARGETS)
                {
                    break s;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            for (t, exp) in expected.iter().enumerate() {
                let shown = &first["targets"][t];
                assert_eq!(shown["name"], format!("t{t}"));
                let (Some(exp), Some(0)) = (exp, shown["rounds"].as_u64()) else {
                    continue;
                };
                assert_eq!(
                    shown["metrics"],
                    readings(dir.path(), &format!("t{t}"), exp),
                    "life {cycle}: t{t} restored other evidence than the last committed round's"
                );
                compared += 1;
                restored_rounds += exp.rounds;
            }
            // Kill at a random moment: most after a round was committed, some during the start.
            if rng.f64() < 0.8 {
                let until = Instant::now() + Duration::from_secs(20);
                while all_rounds(&db) == before {
                    assert!(Instant::now() < until, "life {cycle}: no round within 20 s");
                    std::thread::sleep(Duration::from_millis(2));
                }
                std::thread::sleep(Duration::from_millis((rng.f64() * 150.0) as u64));
            } else {
                std::thread::sleep(Duration::from_millis((rng.f64() * 300.0) as u64));
            }
            child.kill().unwrap(); // SIGKILL
            let exit = child.wait().unwrap();
            assert!(
                exit.code().is_none(),
                "the daemon exited on its own: {exit:?}"
            );
            assert_eq!(integrity(&db), "ok", "integrity after kill {cycle}");
            check_counts(&db, first_round, cycle);
            check_readings(dir.path(), &db, cycle);
        }
    }));
    if let Err(e) = outcome {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        std::panic::resume_unwind(e);
    }
    let episode_rounds = check_counts(&db, first_round, CYCLES);
    let rounds = all_rounds(&db) - first_round;
    // The final evidence is a replay of every stored round, in order.
    let store = modelwatch::store::Store::open(&db).unwrap();
    for t in 0..TARGETS {
        let name = format!("t{t}");
        let mut replay = monitor(dir.path(), &name);
        // Samples in the store's order (oldest round first), cut into their rounds.
        let sizes: Vec<(i64, usize)> = read_only(&db)
            .prepare(
                "SELECT r.started_at_ms, COUNT(s.id) FROM rounds r \
                 JOIN targets t ON t.id = r.target_id JOIN samples s ON s.round_id = r.id \
                 WHERE t.name = ?1 GROUP BY r.id ORDER BY r.started_at_ms, r.id",
            )
            .unwrap()
            .query_map([&name], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let all = store
            .samples(&modelwatch::store::SampleQuery {
                target: Some(name.clone()),
                skip_text: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), sizes.iter().map(|s| s.1).sum::<usize>());
        // Rounds before the episode (the baselines', earlier episodes') are not replayed.
        let baseline_rounds = read_only(&db)
            .query_row(
                "SELECT COUNT(*) FROM rounds r JOIN targets t ON t.id = r.target_id \
                 WHERE t.name = ?1 AND r.id < ?2 \
                 AND EXISTS (SELECT 1 FROM samples s WHERE s.round_id = r.id)",
                rusqlite::params![name, episode_start(&db, &name, first_round)],
                |r| r.get::<_, i64>(0),
            )
            .unwrap() as usize;
        let mut at = 0;
        for (i, (_, n)) in sizes.iter().enumerate() {
            if i >= baseline_rounds {
                replay.observe_round(&all[at..at + n]);
            }
            at += n;
        }
        let last = saved(&db, &name).unwrap();
        let replayed = replay.state();
        assert_eq!(replayed.rounds, last.rounds, "{name}");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        for (x, y) in replay
            .snapshot()
            .iter()
            .zip(readings(dir.path(), &name, &last).as_array().unwrap())
        {
            assert_eq!(
                x.samples,
                y["samples"].as_u64().unwrap(),
                "{name} {}",
                x.metric
            );
            assert!(
                close(x.e_value, y["e_value"].as_f64().unwrap()),
                "{name} {}: replay {} saved {}",
                x.metric,
                x.e_value,
                y["e_value"]
            );
        }
    }
    println!(
        "kill -9 with the monitor saved: {CYCLES} lives, {rounds} rounds stored \
         ({episode_rounds} in the targets' current episodes), \
         restored evidence compared with the last committed round {compared} times \
         ({restored_rounds} rounds of evidence carried over), {swaps} swaps, final evidence = \
         replay of the episode's stored rounds; wall time {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(compared >= CYCLES, "too few restarts compared: {compared}");
    assert!(swaps >= 3, "too few swaps: {swaps}");
}

fn record(cfg: &Path, target: &str, samples: u32) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["baseline", "record", "--samples"])
        .arg(samples.to_string())
        .args(["--target", target, "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One life: start, wait until every target's evidence counts more rounds than `at_least`,
/// stop with SIGTERM.
fn life(cfg: &Path, db: &Path, log: &Path, at_least: &[u64]) {
    let mut child = start(cfg, log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(0..TARGETS).all(|t| saved(db, &format!("t{t}")).is_some_and(|s| s.rounds > at_least[t]))
    {
        assert!(Instant::now() < deadline, "no monitored round within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_restart_keeps_the_evidence_unless_the_baseline_changed_meanwhile() {
    let rt = runtime(1);
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile('a'), 12).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_setup(dir.path(), &sim.base_url(), free_port());
    let db = dir.path().join("m.db");
    let log = dir.path().join("daemon.log");
    for t in 0..TARGETS {
        record(&cfg, &format!("t{t}"), 5);
    }
    let first_round = all_rounds(&db);
    life(&cfg, &db, &log, &[0, 0]);
    let first: Vec<MonitorState> = (0..TARGETS)
        .map(|t| saved(&db, &format!("t{t}")).unwrap())
        .collect();
    // t1 gets a new baseline while the daemon is down: its evidence tested other nulls.
    record(&cfg, "t1", 6);
    std::fs::write(&log, "").unwrap();
    life(&cfg, &db, &log, &[first[0].rounds, 0]);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = |needle: &str, target: &str| {
        text.lines().any(|l| {
            l.contains(needle)
                && (l.contains(&format!("target={target} "))
                    || l.ends_with(&format!("target={target}"))
                    || l.contains(&format!("target=\"{target}\"")))
        })
    };
    assert!(
        line("monitor restored: the episode goes on", "t0"),
        "{text}"
    );
    assert!(
        line("saved against another baseline", "t1"),
        "t1's evidence was not dropped:\n{text}"
    );
    assert!(!line("monitor restored", "t1"), "{text}");
    let t0 = saved(&db, "t0").unwrap();
    let t1 = saved(&db, "t1").unwrap();
    // t0 went on from its evidence; t1 began again.
    assert!(
        t0.rounds > first[0].rounds,
        "{} -> {}",
        first[0].rounds,
        t0.rounds
    );
    assert_eq!(t0.rounds, committed(&db, "t0", first_round).0);
    assert!(t1.rounds < first[1].rounds + 1, "t1 kept its evidence");
    println!(
        "restart: t0's evidence went on ({} -> {} rounds); t1's, saved against its old baseline, was dropped ({} -> {} rounds)",
        first[0].rounds, t0.rounds, first[1].rounds, t1.rounds
    );
}
