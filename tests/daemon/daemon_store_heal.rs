//! A store that heals, under the real `modelwatch daemon` process against the real simulator:
//! a database that can only be read at start leaves the daemon running and probing with
//! `/readyz` 503 and the reason, and once the file is writable again rounds are stored and
//! `/readyz` answers 200 without a restart. A database with damaged pages is refused at start
//! with a clear error and not written into.
//!
//! Read-only means what the daemon's user may do: the test makes the file mode 0444, and when it
//! runs as root (which writes any file) it starts the daemon without the capability to override
//! file permissions (`setpriv`).

use crate::daemon_proc;
use daemon_proc::{StoreDaemon, integrity, wait_until};
use rusqlite::{Connection, OpenFlags};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGETS: usize = 2;
/// Drops the capabilities that let root write a file whatever its mode.
const NO_OVERRIDE: &str = "--bounding-set=-dac_override,-dac_read_search";

fn samples(db: &Path) -> i64 {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
        .unwrap_or(0)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process writes files whatever their mode (root), and if so whether `setpriv`
/// can take that away from the daemon. `None`: the test cannot make a file read-only here.
fn read_only_wrapper(dir: &Path) -> Option<Vec<String>> {
    let probe = dir.join("probe");
    std::fs::write(&probe, "x").unwrap();
    chmod(&probe, 0o444);
    let overrides = std::fs::OpenOptions::new().write(true).open(&probe).is_ok();
    if !overrides {
        return Some(Vec::new());
    }
    let works = Command::new("setpriv")
        .args([NO_OVERRIDE, "--", "sh", "-c"])
        .arg(format!("! true >> {}", probe.display()))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    works.then(|| vec!["setpriv".into(), NO_OVERRIDE.into(), "--".into()])
}

/// The daemon (behind `wrapper`) with its stderr collected, as `daemon_proc::start_piped`.
fn start(env: &StoreDaemon, wrapper: &[String]) -> (Child, Arc<Mutex<String>>) {
    daemon_proc::start_piped_under(wrapper, &env.cfg)
}

#[test]
fn a_database_read_only_at_start_is_used_as_soon_as_it_is_writable_again() {
    let env = StoreDaemon::new(Path::new("m.db"), "Explain permissions.", TARGETS);
    let Some(wrapper) = read_only_wrapper(env.dir.path()) else {
        daemon_proc::skip(
            "read-only at start: running as root and `setpriv` cannot drop the override",
        );
        return;
    };
    // A database of the current schema, closed, then made read-only.
    drop(modelwatch::store::Store::open(&env.db).unwrap());
    chmod(&env.db, 0o444);
    let (mut child, log) = start(&env, &wrapper);
    let run = || {
        wait_until("/readyz 503 saying the database is read-only", 30, || {
            let (code, body) = env.get("/readyz");
            code == 503 && body.contains("read-only")
        });
        let (_, why) = env.get("/readyz");
        let (_, metrics) = env.get("/metrics");
        assert!(metrics.contains("modelwatch_store_up 0"), "{metrics}");
        // Probing goes on; nothing is stored.
        wait_until("rounds while read-only", 30, || {
            env.rounds() >= TARGETS as u64
        });
        assert_eq!(samples(&env.db), 0, "samples stored into a read-only file?");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        // Only the database file is made writable again: the daemon gives its -wal and -shm
        // files (created read-only beside it while it could only read) the same mode itself.
        chmod(&env.db, 0o600);
        let fixed = Instant::now();
        wait_until(
            "rounds stored and /readyz 200 without a restart",
            60,
            || env.get("/readyz").0 == 200 && samples(&env.db) > 0,
        );
        let healed = fixed.elapsed();
        let (_, metrics) = env.get("/metrics");
        assert!(metrics.contains("modelwatch_store_up 1"), "{metrics}");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        let text = log.lock().unwrap().clone();
        assert!(text.contains("the database is writable again"), "{text}");
        println!(
            "read-only at start: /readyz said `{}`; rounds stored {:.1} s after the file was made writable, without a restart",
            why.trim(),
            healed.as_secs_f64()
        );
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        eprintln!("{}", log.lock().unwrap());
        std::panic::resume_unwind(e);
    }
    assert_eq!(integrity(&env.db), "ok");
}

#[test]
fn a_database_with_a_damaged_page_is_refused_at_start_and_not_written_into() {
    let env = StoreDaemon::new(Path::new("m.db"), "Explain pages.", TARGETS);
    {
        let mut store = modelwatch::store::Store::open(&env.db).unwrap();
        for i in 0..200 {
            let payload = serde_json::json!({ "i": i, "pad": "x".repeat(1000) });
            store.add_event("sim0", "note", i, &payload).unwrap();
        }
    }
    // Garbage over a page in the middle of the file (a b-tree page of the events table).
    let pages = std::fs::metadata(&env.db).unwrap().len() / 4096;
    let mut bytes = std::fs::read(&env.db).unwrap();
    let at = (pages / 2 * 4096) as usize;
    bytes[at..at + 4096].fill(0xA5);
    std::fs::write(&env.db, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["daemon", "--config"])
        .arg(&env.cfg)
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("m.db is damaged"), "{stderr}");
    assert!(stderr.contains("PRAGMA quick_check"), "{stderr}");
    assert!(stderr.contains("will not write into it"), "{stderr}");
    assert_eq!(
        std::fs::read(&env.db).unwrap(),
        bytes,
        "the damaged file was written"
    );
    let wal = env.dir.path().join("m.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "something was written to the WAL"
    );
    println!(
        "damaged page ({pages} pages): exit {:?}, `{}`",
        out.status.code(),
        stderr.trim()
    );
}
