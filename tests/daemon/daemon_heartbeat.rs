//! A healthy daemon round leaves one info line in the log: a quiet log still shows the daemon at
//! work.

use crate::daemon_proc::{StoreDaemon, wait_until};
use std::path::Path;

#[test]
fn every_stored_round_logs_one_heartbeat_line() {
    let env = StoreDaemon::new(Path::new("m.db"), "Explain locks.", 1);
    let (mut child, log) = env.start();
    wait_until("a heartbeat line", 30, || {
        log.lock().unwrap().contains("round stored")
    });
    let _ = child.kill();
    let _ = child.wait();
    let log = log.lock().unwrap().clone();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("round stored")).collect();
    let line = lines[0];
    assert!(line.contains(" INFO "), "{line}");
    for field in [
        "target=\"sim0\"",
        "status=\"completed\"",
        "samples=2",
        "errors=0",
        "firing=0",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert_eq!(lines.len() as u64, 1, "one line per round:\n{log}");
}
