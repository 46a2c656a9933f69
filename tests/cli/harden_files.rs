//! Bounded reads and the small defects around them: every file the configuration names is read
//! only if it is a regular file and within a size limit; `check-config` rejects what `run`
//! would; silences name a real metric and last long enough; Slack-style webhook URLs count as
//! secrets; output to a closed pipe ends quietly; what the daemon writes is owner-only; and
//! `max_response_bytes` has an upper bound. One test per item, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TARGET: &str = "[[target]]\nname = \"a\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nsuites = [\"s\"]\n";

/// A configuration directory with the suite `s` and `modelwatch.toml` = `head` + `target`.
fn config(dir: &Path, head: &str, target: &str) -> PathBuf {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(
        probes.join("s.toml"),
        "suite = \"s\"\n[[probe]]\nid = \"p\"\nprompt = \"Hello?\"\n",
    )
    .unwrap();
    let cfg = dir.join("modelwatch.toml");
    std::fs::write(&cfg, format!("{head}\n{target}")).unwrap();
    cfg
}

use crate::common_verdict::modelwatch;

/// `check-config`, killed (and failing the test) if it runs longer than 10 s.
fn check_config(cfg: &Path) -> (ExitStatus, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["check-config", "--config"])
        .arg(cfg)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, err, started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("check-config still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn with_key_file(path: &Path) -> String {
    TARGET.replace(
        "suites",
        &format!("api_key_file = {:?}\nsuites", path.display().to_string()),
    )
}

#[test]
fn a_device_as_api_key_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", &with_key_file(Path::new("/dev/zero")));
    let (status, err, took) = check_config(&cfg);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot read api_key_file `/dev/zero`: not a regular file (it is a device)"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_fifo_as_api_key_file_does_not_hang_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let cfg = config(dir.path(), "", &with_key_file(&fifo));
    let (status, err, _) = check_config(&cfg);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("not a regular file (it is a FIFO)"), "{err}");
}

#[test]
fn an_oversized_api_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, "k".repeat(1 << 20)).unwrap();
    let cfg = config(dir.path(), "", &with_key_file(&big));
    let (status, err, _) = check_config(&cfg);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("larger than the limit of 65536 bytes"),
        "{err}"
    );
}

#[test]
fn check_config_rejects_a_key_that_cannot_be_sent_as_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    // Two lines: the newline inside the key can never go into an Authorization header.
    std::fs::write(&key, "sk-first-line\nsk-second-line\n").unwrap();
    let cfg = config(dir.path(), "", &with_key_file(&key));
    let (status, err, _) = check_config(&cfg);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be sent as an HTTP header"), "{err}");
    assert!(
        !err.contains("sk-first-line"),
        "the key is not printed: {err}"
    );
    // The same key is accepted on one line.
    std::fs::write(&key, "sk-first-line\n").unwrap();
    assert_eq!(check_config(&cfg).0.code(), Some(0));
    // A non-ASCII header value, which the HTTP client refuses too.
    let cfg = config(
        dir.path(),
        "",
        &TARGET.replace("suites", "headers = { X-Team = \"équipe\" }\nsuites"),
    );
    let (status, err, _) = check_config(&cfg);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot be sent as an HTTP header value"),
        "{err}"
    );
}

#[test]
fn silences_name_a_known_metric_and_last_at_least_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", TARGET);
    let silence = |extra: &[&str]| {
        let mut args = vec!["silence", "--offline", "--target", "a"];
        args.extend_from_slice(extra);
        modelwatch(&cfg, &args)
    };
    let unknown = silence(&["--metric", "refusal_ratee", "--for", "1h"]);
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("unknown metric `refusal_ratee`") && err.contains("refusal_rate"),
        "{err}"
    );
    let short = silence(&["--for", "1ms"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 1m"));
    let ok = silence(&["--metric", "unapproved_model", "--for", "1m"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    // The API applies the same rules.
    assert!(modelwatch::http::check_silence(Some("nope"), Duration::from_secs(3600)).is_err());
    assert!(modelwatch::http::check_silence(None, Duration::from_millis(1)).is_err());
    assert!(modelwatch::http::check_silence(Some("length_chars"), Duration::from_secs(60)).is_ok());
}

#[cfg(unix)]
#[test]
fn a_slack_webhook_url_in_a_readable_file_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "[alerts.webhook]\nurl = \"https://hooks.slack.com/services/T000/B000/Zq9fK2mW7pLx\"\n",
        TARGET,
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, err, _) = check_config(&cfg);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning:") && err.contains("holds secrets") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains("Zq9fK2mW7pLx"), "{err}");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!check_config(&cfg).1.contains("holds secrets"));
}

#[cfg(unix)]
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let valid = config(dir.path(), "", TARGET);
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[target]]\nname = 1\n").unwrap();
    for cfg in [&valid, &broken] {
        // Both ends of the output go to a pipe whose reader is already gone.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["check-config", "--config"])
            .arg(cfg)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .status()
            .unwrap();
        assert_ne!(status.code(), Some(101), "panicked: {status:?}");
        assert_eq!(
            status.signal(),
            Some(13),
            "not ended by SIGPIPE: {status:?}"
        );
    }
}

/// SIGPIPE's disposition in a running process, from `/proc/<pid>/status` (`SigIgn` is a hex
/// mask with bit n − 1 for signal n).
#[cfg(target_os = "linux")]
fn sigpipe_ignored(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (13 - 1)) != 0
}

#[cfg(target_os = "linux")]
#[test]
fn a_command_that_talks_http_keeps_sigpipe_ignored() {
    use std::io::Read;
    // A server that takes the connection and never answers: `run` waits in its request. With
    // SIGPIPE's default action there, a write to a connection the peer had reset (hyper writes
    // with writev, which cannot ask for no signal) would kill the run instead of recording an
    // error sample.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "",
        &TARGET.replace("http://127.0.0.1:9", &url).replace(
            "suites = [\"s\"]\n",
            "suites = [\"s\"]\nrequest_timeout = \"30s\"\nfirst_byte_timeout = \"30s\"\n",
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["run", "--samples", "1", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the request has arrived, the command is past its start-up.
    let (mut conn, _) = listener.accept().unwrap();
    let mut head = [0u8; 16];
    let _ = conn.read(&mut head);
    let ignored = sigpipe_ignored(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ignored,
        "`run` has SIGPIPE's default action while it talks HTTP"
    );
}

#[cfg(unix)]
#[test]
fn a_command_that_talks_http_still_ends_quietly_on_a_closed_pipe() {
    use std::os::unix::process::ExitStatusExt;
    // `run --sim` hosts the simulator in-process: it keeps SIGPIPE ignored, and its first
    // write to the closed stdout ends it by SIGPIPE instead of a panic.
    let dir = tempfile::tempdir().unwrap();
    for stderr_too in [false, true] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let stderr = if stderr_too {
            Stdio::from(writer.try_clone().unwrap())
        } else {
            Stdio::piped()
        };
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["run", "--sim", "--suite", "tasks", "--samples", "1"])
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(stderr)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(out.status.signal(), Some(13), "{:?}: {err}", out.status);
    }
}

#[cfg(unix)]
#[test]
fn the_store_and_baselines_are_created_owner_only() {
    use modelwatch::sim::{self, Profile};
    use std::os::unix::fs::PermissionsExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut profile = Profile::builtin("healthy").unwrap();
    profile.latency_scale = 0.0;
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 1).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let target = TARGET
        .replace("http://127.0.0.1:9", &sim.base_url())
        .replace("\"m\"", "\"sim-7b\"");
    let cfg = config(dir.path(), "[storage]\npath = \"state.db\"\n", &target);
    // An ordinary umask, as outside systemd.
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" baseline record --target a --samples 3 --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_modelwatch"))
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("state.db")), 0o600);
    assert_eq!(mode(&dir.path().join("baselines")), 0o700);
    assert_eq!(mode(&dir.path().join("baselines/a.json")), 0o600);
}

#[test]
fn max_response_bytes_has_an_upper_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "",
        &TARGET.replace("suites", "max_response_bytes = \"1GiB\"\nsuites"),
    );
    let (status, err, _) = check_config(&cfg);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("`max_response_bytes` must be at most 64MiB"),
        "{err}"
    );
    let cfg = config(
        dir.path(),
        "",
        &TARGET.replace("suites", "max_response_bytes = \"64MiB\"\nsuites"),
    );
    assert_eq!(check_config(&cfg).0.code(), Some(0));
}
