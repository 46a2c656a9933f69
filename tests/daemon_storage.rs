//! Storage faults under the real `modelwatch daemon` process, against the real simulator: the
//! database locked by another process (a connection here holding `BEGIN EXCLUSIVE`) and a full
//! disk (a real OS limit: `RLIMIT_FSIZE` lowered on the running daemon with `prlimit`, so every
//! write past the first byte of a file fails with EFBIG). For each: the error is logged,
//! `/readyz` answers 503 with the reason, `modelwatch_store_errors_total` counts it, the daemon
//! keeps running and probing, and once the condition clears it recovers by itself (`/readyz` 200,
//! samples stored again, `PRAGMA integrity_check` ok). A database path whose directory is a file
//! stops the start with a clear error.
//!
//! Rounds of six targets run every 10 s (the shortest interval allowed), so each case takes about
//! 25 s.

use modelwatch::sim::{self, Profile, SimHandle};
use rusqlite::{Connection, OpenFlags};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Targets: enough that a scheduler waiting the whole busy timeout (5 s) for every round on a
/// locked database would stall longer than the readiness budget (20 s).
const TARGETS: usize = 6;

struct Env {
    rt: tokio::runtime::Runtime,
    _sim: SimHandle,
    dir: tempfile::TempDir,
    cfg: PathBuf,
    db: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn setup(db_path: Option<&str>) -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut profile = Profile::builtin("healthy").unwrap();
    profile.latency_scale = 0.0;
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 3).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(
        probes.join("disk.toml"),
        "suite = \"disk\"\n[[probe]]\nid = \"a\"\nprompt = \"Explain disks.\"\n[[probe]]\nid = \"b\"\nprompt = \"Explain locks.\"\n",
    )
    .unwrap();
    let db = match db_path {
        Some(p) => dir.path().join(p),
        None => dir.path().join("m.db"),
    };
    let port = free_port();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[server]
listen = "127.0.0.1:{port}"
"#,
            probes = probes.display().to_string(),
            db = db.display().to_string(),
        ) + &(0..TARGETS)
            .map(|i| {
                format!(
                    "[[target]]\nname = \"sim{i}\"\nprovider = \"ollama\"\nbase_url = \"{}\"\nmodel = \"sim-7b\"\nsuites = [\"disk\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\n",
                    sim.base_url()
                )
            })
            .collect::<String>(),
    )
    .unwrap();
    Env {
        rt,
        _sim: sim,
        dir,
        cfg,
        db,
        port,
    }
}

/// The daemon with its stderr collected through a pipe (a pipe is not subject to the file
/// size limit, so logging still works while the disk is "full").
fn start(env: &Env) -> (Child, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["daemon", "--config"])
        .arg(&env.cfg)
        .env("RUST_LOG", "modelwatch=info")
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, log)
}

fn get(env: &Env, path: &str) -> (u16, String) {
    env.rt.block_on(async {
        match reqwest::get(format!("http://127.0.0.1:{}{path}", env.port)).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

fn samples(db: &Path) -> i64 {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
        .unwrap_or(0)
}

fn rounds(env: &Env) -> u64 {
    let (_, body) = get(env, "/api/v1/status");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["rounds"].as_u64()).sum())
        })
        .unwrap_or(0)
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

fn store_errors(env: &Env, operation: &str) -> u64 {
    let (_, metrics) = get(env, "/metrics");
    let prefix = format!("modelwatch_store_errors_total{{operation=\"{operation}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `fault` (which makes the store fail and returns a guard ending the fault when
/// dropped) on a running daemon and checks the whole cycle: failure visible, daemon alive and
/// probing, recovery.
fn fault_cycle<G>(
    name: &str,
    reason: &str,
    operations: &[&str],
    fault: impl FnOnce(&Env, u32) -> G,
) {
    let env = setup(None);
    let (mut child, log) = start(&env);
    let run = || {
        wait_until("the first stored round of every target", 30, || {
            get(&env, "/readyz").0 == 200
                && env.db.exists()
                && samples(&env.db) == 2 * TARGETS as i64
        });
        let stored = samples(&env.db);
        let guard = fault(&env, child.id());
        let rounds_at_fault = rounds(&env);
        wait_until("/readyz 503 with the reason", 40, || {
            let (code, body) = get(&env, "/readyz");
            code == 503 && body.contains(reason)
        });
        let (_, why) = get(&env, "/readyz");
        let counted: u64 = operations.iter().map(|op| store_errors(&env, op)).sum();
        assert!(counted >= 1, "{name}: no store error counted");
        let (_, metrics) = get(&env, "/metrics");
        assert!(metrics.contains("modelwatch_store_up 0"), "{name}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: the daemon exited"
        );
        // Every target keeps probing, and the scheduler never stalls on the store for long
        // enough to be reported as not ticking.
        wait_until("rounds during the fault", 30, || {
            let (_, why) = get(&env, "/readyz");
            assert!(!why.contains("scheduler"), "{name}: {why}");
            rounds(&env) >= rounds_at_fault + TARGETS as u64
        });
        assert_eq!(
            samples(&env.db),
            stored,
            "{name}: samples stored during the fault?"
        );
        drop(guard);
        let cleared = Instant::now();
        wait_until("recovery: /readyz 200 and samples stored again", 40, || {
            get(&env, "/readyz").0 == 200 && samples(&env.db) > stored
        });
        let recovered_after = cleared.elapsed();
        let (_, metrics) = get(&env, "/metrics");
        assert!(metrics.contains("modelwatch_store_up 1"), "{name}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: the daemon exited"
        );
        let text = log.lock().unwrap().clone();
        assert!(
            text.contains("cannot store") || text.contains("cannot commit"),
            "{name}: no error logged:\n{text}"
        );
        println!(
            "{name}: /readyz said `{}`, {counted} store error(s) counted, recovered {:.1} s after the fault cleared",
            why.trim(),
            recovered_after.as_secs_f64()
        );
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        eprintln!("{}", log.lock().unwrap());
        std::panic::resume_unwind(e);
    }
    let c = Connection::open(&env.db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "{name}");
}

#[test]
fn database_locked_by_another_process() {
    fault_cycle(
        "locked database",
        "database is locked",
        &["begin", "commit"],
        |env, _pid| {
            // This test process is the other process: it holds the write lock until dropped.
            let c = Connection::open(&env.db).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            c.execute_batch("CREATE TABLE IF NOT EXISTS lock_holder (x)")
                .unwrap();
            c
        },
    );
}

struct Limit {
    pid: u32,
    soft: String,
}

impl Drop for Limit {
    fn drop(&mut self) {
        let ok = Command::new("prlimit")
            .arg(format!("--pid={}", self.pid))
            .arg(format!("--fsize={}:", self.soft))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot restore the file size limit");
    }
}

#[test]
fn full_disk_via_file_size_limit() {
    let available = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        println!("SKIPPED full disk: `prlimit` (util-linux) is not installed");
        return;
    }
    fault_cycle(
        "full disk",
        "store not writable",
        &["begin", "commit", "round", "fingerprint"],
        |_env, pid| {
            let out = Command::new("prlimit")
                .arg(format!("--pid={pid}"))
                .args(["--fsize", "--raw", "--noheadings", "--output=SOFT"])
                .output()
                .unwrap();
            let soft = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(!soft.is_empty(), "cannot read the file size limit");
            let ok = Command::new("prlimit")
                .arg(format!("--pid={pid}"))
                .arg("--fsize=1:")
                .status()
                .unwrap();
            assert!(ok.success(), "cannot lower the file size limit");
            Limit { pid, soft }
        },
    );
}

#[test]
fn database_directory_that_is_a_file_stops_the_start_with_a_clear_error() {
    let env = setup(Some("not-a-dir/m.db"));
    std::fs::write(env.dir.path().join("not-a-dir"), "a file").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["daemon", "--config"])
        .arg(&env.cfg)
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not-a-dir is a file, not a directory"),
        "the error names the path and the problem: {stderr}"
    );
    println!(
        "directory is a file: exit {:?}, `{}`",
        out.status.code(),
        stderr.trim()
    );
}
