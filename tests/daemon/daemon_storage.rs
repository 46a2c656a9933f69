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

use crate::daemon_proc;
use daemon_proc::{StoreDaemon, integrity, wait_until};
use rusqlite::{Connection, OpenFlags};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Targets: enough that a scheduler waiting the whole busy timeout (5 s) for every round on a
/// locked database would stall longer than the readiness budget (20 s).
const TARGETS: usize = 6;

fn samples(db: &Path) -> i64 {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
        .unwrap_or(0)
}

fn store_errors(env: &StoreDaemon, operation: &str) -> u64 {
    let (_, metrics) = env.get("/metrics");
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
    fault: impl FnOnce(&StoreDaemon, u32) -> G,
) {
    let env = StoreDaemon::new(Path::new("m.db"), "Explain locks.", TARGETS);
    let (mut child, log) = env.start();
    let run = || {
        wait_until("the first stored round of every target", 30, || {
            env.get("/readyz").0 == 200 && env.db.exists() && samples(&env.db) == 2 * TARGETS as i64
        });
        let stored = samples(&env.db);
        let guard = fault(&env, child.id());
        let rounds_at_fault = env.rounds();
        wait_until("/readyz 503 with the reason", 40, || {
            let (code, body) = env.get("/readyz");
            code == 503 && body.contains(reason)
        });
        let (_, why) = env.get("/readyz");
        let counted: u64 = operations.iter().map(|op| store_errors(&env, op)).sum();
        assert!(counted >= 1, "{name}: no store error counted");
        let (_, metrics) = env.get("/metrics");
        assert!(metrics.contains("modelwatch_store_up 0"), "{name}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: the daemon exited"
        );
        // Every target keeps probing, and the scheduler never stalls on the store for long
        // enough to be reported as not ticking.
        wait_until("rounds during the fault", 30, || {
            let (_, why) = env.get("/readyz");
            assert!(!why.contains("scheduler"), "{name}: {why}");
            env.rounds() >= rounds_at_fault + TARGETS as u64
        });
        assert_eq!(
            samples(&env.db),
            stored,
            "{name}: samples stored during the fault?"
        );
        drop(guard);
        let cleared = Instant::now();
        wait_until("recovery: /readyz 200 and samples stored again", 40, || {
            env.get("/readyz").0 == 200 && samples(&env.db) > stored
        });
        let recovered_after = cleared.elapsed();
        let (_, metrics) = env.get("/metrics");
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
    assert_eq!(integrity(&env.db), "ok", "{name}");
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
        daemon_proc::skip("full disk: `prlimit` (util-linux) is not installed");
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
    let env = StoreDaemon::new(Path::new("not-a-dir/m.db"), "Explain locks.", TARGETS);
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
