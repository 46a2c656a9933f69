//! The daemon's own failures through the Sentry SDK, against the envelope endpoint that parses
//! with sentry-sdk's own parser: a panic inside the real daemon binary (the
//! `MODELWATCH_TEST_PANIC` test hook) arrives as a panic event with the log lines before it as
//! breadcrumbs, and an `error!` (a reload rejected for an invalid configuration) as an error
//! event; the daemon keeps running through both. A panic while Sentry is unreachable is kept
//! in the store's outbox and arrives once after a restart.

use crate::sinks_common::{lines, start_receiver, venv_python};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 30 s) for an event among the receiver's items whose payload contains `needle`.
fn event_with(out: &Path, needle: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = lines(out);
        if let Some(e) = items
            .iter()
            .find(|i| i["type"] == "event" && i["payload"].to_string().contains(needle))
        {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no event with {needle:?}: {items:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The real daemon, killed on drop.
struct Daemon {
    child: std::process::Child,
    cfg: std::path::PathBuf,
    config: String,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `modelwatch daemon` in `dir` with `[alerts.sentry]` at the receiver on `port`, one
/// target at a dead port, and the panic test hook set.
fn start_daemon(dir: &Path, port: u16) -> Daemon {
    start_daemon_with(dir, port, true)
}

/// [`start_daemon`], with the panic test hook set or not.
fn start_daemon_with(dir: &Path, port: u16, panic: bool) -> Daemon {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(
        probes.join("mini.toml"),
        "suite = \"mini\"\n[[probe]]\nid = \"hello\"\nprompt = \"Say hello.\"\n",
    )
    .unwrap();
    let cfg = dir.join("modelwatch.toml");
    let config = format!(
        "probes_dir = \"probes\"\n[storage]\npath = \"mw.db\"\n[server]\nlisten = \"127.0.0.1:{}\"\n\
         [alerts.sentry]\ndsn = \"http://publickey@127.0.0.1:{port}/7\"\nenvironment = \"test\"\n\
         release = \"modelwatch@sdk-test\"\n\
         [[target]]\nname = \"t\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:9\"\n\
         model = \"m\"\nsuites = [\"mini\"]\nretries = 0\n",
        free_port(),
    );
    std::fs::write(&cfg, &config).unwrap();
    let log = dir.join("daemon.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelwatch"));
    if panic {
        command.env("MODELWATCH_TEST_PANIC", "1");
    } else {
        command.env_remove("MODELWATCH_TEST_PANIC");
    }
    let child = command
        .args(["daemon", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "modelwatch=info")
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Daemon {
        child,
        cfg,
        config,
        log,
    }
}

#[test]
fn the_daemons_own_panics_and_errors_reach_sentry_through_the_sdk() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("envelopes.jsonl");
    let receiver = start_receiver(&py, "sentry_receiver.py", &[out.to_str().unwrap()]);
    let mut daemon = start_daemon(dir.path(), receiver.port);

    let panic = event_with(&out, "deliberate panic (MODELWATCH_TEST_PANIC=1)");
    let p = &panic["payload"];
    assert_eq!(p["level"], "fatal", "{p:#}");
    let exception = &p["exception"]["values"][0];
    assert_eq!(exception["mechanism"]["type"], "panic", "{p:#}");
    assert_eq!(exception["mechanism"]["handled"], false, "{p:#}");
    assert_eq!(p["release"], "modelwatch@sdk-test");
    assert_eq!(p["environment"], "test");
    assert!(p["server_name"].is_string(), "{p:#}");
    let crumbs = p["breadcrumbs"]["values"].to_string();
    assert!(
        crumbs.contains("HTTP endpoint listening"),
        "the log lines before the panic are its breadcrumbs: {p:#}"
    );
    assert!(
        panic["auth"]
            .as_str()
            .unwrap()
            .contains("sentry_key=publickey")
    );

    // An `error!` of the daemon: a reload of a broken configuration is rejected.
    let broken = daemon.config.replace("[[target]]", "[[target]]\nbogus = 1");
    std::fs::write(&daemon.cfg, broken).unwrap();
    let pid = daemon.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let error = event_with(&out, "the new configuration is invalid");
    // `error` is the protocol's default level: the SDK leaves it out.
    let level = error["payload"]["level"].as_str().unwrap_or("error");
    assert_eq!(level, "error", "{error:#}");
    assert!(
        error["payload"]["breadcrumbs"]
            .to_string()
            .contains("SIGHUP: reloading the configuration"),
        "{error:#}"
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon kept running: {}",
        std::fs::read_to_string(&daemon.log).unwrap_or_default()
    );
    // The panic and the error were sent once each.
    let events: Vec<_> = lines(&out)
        .into_iter()
        .filter(|i| i["type"] == "event")
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
}

/// Sentry rate-limits the `error` category for 6 s from the first request: the panic's event
/// is not resent into the pause (one refused request, then the wait), and arrives once after.
#[test]
fn the_sdks_events_wait_out_a_rate_limit_and_arrive_once() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("envelopes.jsonl");
    let limit = serde_json::json!({
        "seconds": 6,
        "status": 429,
        "headers": {"X-Sentry-Rate-Limits": "6:error;monitor:organization"}
    });
    let receiver = start_receiver(
        &py,
        "sentry_receiver.py",
        &[out.to_str().unwrap(), &limit.to_string()],
    );
    let _daemon = start_daemon(dir.path(), receiver.port);
    let panic = event_with(&out, "deliberate panic (MODELWATCH_TEST_PANIC=1)");
    let items = lines(&out);
    let refused: Vec<f64> = items
        .iter()
        .filter(|i| i["type"] == "limited")
        .map(|i| i["received_at"].as_f64().unwrap())
        .collect();
    assert!(!refused.is_empty(), "the pause was exercised: {items:#?}");
    let arrived = panic["received_at"].as_f64().unwrap();
    assert!(
        arrived >= refused[0] + 6.0,
        "after the pause: {arrived} vs {refused:?}"
    );
    // In the pause: the opening check-in, the one event request that learnt the limit, at
    // most one more check-in already in flight. Retries ignoring the limit (backoff 1 s, 2 s,
    // 4 s) would add more.
    assert!(refused.len() <= 3, "{refused:?}");
    std::thread::sleep(Duration::from_secs(2));
    let panics = lines(&out)
        .iter()
        .filter(|i| i["type"] == "event" && i["payload"].to_string().contains("deliberate panic"))
        .count();
    assert_eq!(panics, 1, "delivered once");
}

/// Sentry is unreachable when the daemon panics: the event is written to the store's outbox on
/// the panicking thread, survives the process being killed, and is sent once by the next run,
/// which finds Sentry back.
#[test]
fn a_panic_while_sentry_is_down_arrives_once_after_a_restart() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let mut down = start_daemon_with(dir.path(), free_port(), true);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(&down.log).unwrap_or_default();
        // The default panic message is printed after the SDK has captured (and stored) the event.
        if log.contains("deliberate panic (MODELWATCH_TEST_PANIC=1)") {
            break;
        }
        assert!(Instant::now() < deadline, "no panic: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed, not stopped: nothing is flushed at shutdown.
    down.child.kill().unwrap();
    down.child.wait().unwrap();
    let log = std::fs::read_to_string(&down.log).unwrap_or_default();
    assert!(!log.contains("kept in memory only"), "{log}");
    drop(down);

    let out = dir.path().join("envelopes.jsonl");
    let receiver = start_receiver(&py, "sentry_receiver.py", &[out.to_str().unwrap()]);
    let up = start_daemon_with(dir.path(), receiver.port, false);
    let panic = event_with(&out, "deliberate panic (MODELWATCH_TEST_PANIC=1)");
    assert_eq!(panic["payload"]["level"], "fatal", "{panic:#}");
    assert_eq!(panic["payload"]["release"], "modelwatch@sdk-test");
    // Marked delivered: neither resent by this run nor by the next.
    std::thread::sleep(Duration::from_secs(3));
    drop(up);
    let again = start_daemon_with(dir.path(), receiver.port, false);
    std::thread::sleep(Duration::from_secs(4));
    let log = std::fs::read_to_string(&again.log).unwrap_or_default();
    assert!(
        !log.contains("kept by an earlier run"),
        "nothing left pending: {log}"
    );
    let panics: Vec<_> = lines(&out)
        .into_iter()
        .filter(|i| i["type"] == "event" && i["payload"].to_string().contains("deliberate panic"))
        .collect();
    assert_eq!(panics.len(), 1, "delivered exactly once: {panics:#?}");
}
