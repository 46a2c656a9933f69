//! The `modelwatch daemon` process: sd_notify messages (EXTEND_TIMEOUT_USEC at start-up, READY,
//! WATCHDOG, RELOADING with MONOTONIC_USEC, STOPPING) on a NOTIFY_SOCKET the test listens on, SIGHUP with a broken configuration
//! (rejected, monitoring continues, reload metric 0) and with a good one (applied), and
//! SIGTERM (clean exit 0).

use crate::daemon_proc;
use daemon_proc::{free_port, runtime, server_config, wait_until, write_suite};
use modelwatch::sim::{self, Profile};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(probes: &str, db: &str, port: u16, sim_url: &str, second: bool) -> String {
    let mut s = server_config(Path::new(probes), Path::new(db), port);
    s.push_str(&format!(
        r#"[[target]]
name = "sim"
provider = "ollama"
base_url = "{sim_url}"
model = "sim-7b"
suites = ["core"]
samples = 1
interval = "10s"
jitter = "0s"
"#
    ));
    if second {
        s.push_str(&format!(
            "[[target]]\nname = \"second\"\nprovider = \"openai\"\nbase_url = \"{sim_url}\"\nmodel = \"sim-7b\"\nsuites = [\"core\"]\nsamples = 1\n"
        ));
    }
    s
}

/// Receives datagrams until one contains `want`, returning everything received.
fn expect(sock: &UnixDatagram, want: &str, within: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let hit = msg.lines().any(|l| l == want);
            seen.push(msg);
            if hit {
                return;
            }
        }
    }
    panic!("no {want} within {within:?}; received {seen:?}");
}

/// CLOCK_MONOTONIC in microseconds, as systemd compares `MONOTONIC_USEC` with it.
fn monotonic_usec() -> i128 {
    match sd_notify::NotifyState::monotonic_usec_now().unwrap() {
        sd_notify::NotifyState::MonotonicUsec(u) => u,
        other => panic!("{other:?}"),
    }
}

/// The value of `KEY=` in one message.
fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn get(port: u16, path: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

fn rounds(port: u16, target: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&get(port, "/api/v1/status")).unwrap();
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == target)
        .map(|t| t["rounds"].as_u64().unwrap())
        .unwrap_or(0)
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn notify_reload_and_stop() {
    let rt = runtime(1);
    let sim = rt.block_on(async {
        sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 2).unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    // A small suite of its own, so rounds stay short and the timings below do not depend on
    // the starter library's size or the machine's load.
    let probes_dir = dir.path().join("probes");
    write_suite(
        &probes_dir,
        "core",
        (0..5).map(|i| format!("Explain topic {i} briefly.")),
    );
    let probes = probes_dir.display().to_string();
    let db = dir.path().join("m.db").display().to_string();
    let port = free_port();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(&cfg, config(&probes, &db, port, &sim.base_url(), false)).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["daemon", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "600000")
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "modelwatch=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = Vec::new();
    let run = || {
        expect(&sock, "READY=1", Duration::from_secs(30), &mut seen);
        // Start-up asked for time before opening the store, in a message before READY=1.
        let extend = seen
            .iter()
            .position(|m| field(m, "EXTEND_TIMEOUT_USEC").is_some());
        assert!(
            extend.is_some_and(|i| i < seen.len() - 1),
            "no EXTEND_TIMEOUT_USEC before READY=1: {seen:?}"
        );
        expect(&sock, "WATCHDOG=1", Duration::from_secs(5), &mut seen);
        wait_until("/readyz", 30, || get(port, "/readyz") == "ready\n");
        wait_until("a round", 30, || rounds(port, "sim") >= 1);

        // A broken configuration: rejected, the daemon keeps monitoring.
        std::fs::write(&cfg, "this is [not valid").unwrap();
        signal(pid, "-HUP");
        expect(&sock, "RELOADING=1", Duration::from_secs(30), &mut seen);
        wait_until("reload metric 0", 10, || {
            get(port, "/metrics").contains("modelwatch_config_last_reload_successful 0")
        });
        let before = rounds(port, "sim");
        wait_until("another round after the rejected reload", 30, || {
            rounds(port, "sim") > before
        });
        expect(&sock, "WATCHDOG=1", Duration::from_secs(5), &mut seen);

        // A good configuration with a second target: applied.
        std::fs::write(&cfg, config(&probes, &db, port, &sim.base_url(), true)).unwrap();
        let sent_at = monotonic_usec();
        signal(pid, "-HUP");
        expect(&sock, "RELOADING=1", Duration::from_secs(30), &mut seen);
        let after = monotonic_usec();
        // Type=notify-reload: MONOTONIC_USEC in the RELOADING=1 message, taken after the signal.
        let reloading = seen.last().unwrap().clone();
        let usec: i128 = field(&reloading, "MONOTONIC_USEC")
            .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"))
            .parse()
            .unwrap();
        assert!(
            sent_at <= usec && usec <= after,
            "{sent_at} ≤ {usec} ≤ {after}"
        );
        let reloads = seen.len();
        expect(&sock, "READY=1", Duration::from_secs(30), &mut seen);
        assert!(seen.len() > reloads, "READY=1 after RELOADING=1: {seen:?}");
        wait_until("the second target", 30, || rounds(port, "second") >= 1);
        assert!(get(port, "/metrics").contains("modelwatch_config_last_reload_successful 1"));

        signal(pid, "-TERM");
        expect(&sock, "STOPPING=1", Duration::from_secs(30), &mut seen);
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    if outcome.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    if let Err(e) = outcome {
        eprintln!(
            "{}",
            std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
        );
        std::panic::resume_unwind(e);
    }
    assert_eq!(status.code(), Some(0), "{status:?}");
}
