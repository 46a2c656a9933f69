//! Under systemd, log lines carry their syslog priority (`<N>`) for the journal: the real
//! daemon, its stderr a file whose device and inode `JOURNAL_STREAM` names, in human and JSON
//! logs; with `JOURNAL_STREAM` naming another file (stderr redirected away from the journal),
//! no prefix.

use crate::daemon_proc;
use daemon_proc::{free_port, server_config, wait_until, write_suite};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs the daemon (a target whose server refuses connections, so a round warns) with its
/// stderr in `log` and `JOURNAL_STREAM` set to `stream`, until a warning is logged; returns the
/// log's lines.
fn daemon_log(dir: &Path, format: &str, stream: &str) -> Vec<String> {
    let probes = dir.join("probes");
    write_suite(&probes, "core", ["Say hi.".to_string()]);
    let closed = free_port();
    let mut cfg = server_config(&probes, &dir.join("m.db"), free_port());
    cfg.push_str(&format!(
        "[[target]]\nname = \"down\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:{closed}\"\nmodel = \"m\"\nsuites = [\"core\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\nretries = 0\n"
    ));
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, cfg).unwrap();
    let log = dir.join(format!("{format}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let m = file.metadata().unwrap();
    let stream = stream
        .replace("DEV", &m.dev().to_string())
        .replace("INO", &m.ino().to_string());
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["--log-format", format, "daemon", "--config"])
        .arg(&path)
        .env("RUST_LOG", "modelwatch=info")
        .env("JOURNAL_STREAM", &stream)
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let outcome = std::panic::catch_unwind(|| {
        wait_until("a warning in the log", 30, || {
            read()
                .lines()
                .any(|l| l.contains("WARN") || l.contains("\"WARN\""))
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        eprintln!("{}", read());
        std::panic::resume_unwind(e);
    }
    read().lines().map(str::to_string).collect()
}

#[test]
fn lines_carry_their_priority_when_stderr_is_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let human = daemon_log(dir.path(), "human", "DEV:INO");
    assert!(!human.is_empty());
    for l in &human {
        let want = if l.contains(" WARN ") {
            "<4>"
        } else if l.contains(" ERROR ") {
            "<3>"
        } else {
            "<6>"
        };
        assert!(l.starts_with(want), "{want} expected: {l}");
    }
    assert!(human.iter().any(|l| l.starts_with("<6>")), "{human:#?}");
    assert!(human.iter().any(|l| l.starts_with("<4>")), "{human:#?}");

    let dir = tempfile::tempdir().unwrap();
    let json = daemon_log(dir.path(), "json", "DEV:INO");
    for l in &json {
        let (prefix, rest) = l.split_at(3);
        let v: serde_json::Value =
            serde_json::from_str(rest).unwrap_or_else(|e| panic!("{e}: {l}"));
        let want = match v["level"].as_str().unwrap() {
            "ERROR" => "<3>",
            "WARN" => "<4>",
            "INFO" => "<6>",
            _ => "<7>",
        };
        assert_eq!(prefix, want, "{l}");
    }
    assert!(json.iter().any(|l| l.starts_with("<4>{")), "{json:#?}");
}

#[test]
fn no_prefix_when_the_journal_stream_is_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let lines = daemon_log(dir.path(), "human", "DEV:1");
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(!l.starts_with('<'), "{l}");
    }
}
