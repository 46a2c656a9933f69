//! Shared by the `llama_*` test files: finding the installed `llama-server` and model, starting
//! servers on free loopback ports (killed on drop), writing configurations, running the
//! `modelwatch` binary and its daemon, and reading the daemon's status API.
//!
//! The binary and the models come from `MODELWATCH_LLAMA_SERVER`, `MODELWATCH_LLAMA_MODEL`
//! (Gemma 3 270M) and `MODELWATCH_LLAMA_MODEL2` (SmolLM2-135M-Instruct), the lines
//! `scripts/llama/install.sh` prints. The tests are `#[ignore]`d, so a plain
//! `cargo test` reports them as ignored, not passed; `scripts/test` runs them with `--ignored`
//! when those variables are set, and always in CI (`CI` or `MODELWATCH_REQUIRE_LLAMA` set), where
//! their absence is a broken pipeline and fails them.

#![allow(dead_code)]

pub mod gateway;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The alias every scenario serves unless it changes it on purpose.
pub const ALIAS: &str = "gemma-3-270m";

/// Gemma 3's token id of "\n": the stop sequence of the suite. A server started with
/// `--logit-bias 107+6` answers empty about half the time and in a few words otherwise: a
/// silent server-side sampling change that the fingerprint does not show.
pub const NEWLINE_TOKEN: u32 = 107;

/// Four story openings: plain completions of these read sensibly for a base model.
pub const SUITE: &str = r#"
suite = "stories"
description = "Plain-text story openings for a base model, one line each"

[defaults]
samples = 8
temperature = 0.7
stop = ["\n"]

[[probe]]
id = "once-upon"
prompt = "Once upon a time"

[[probe]]
id = "lighthouse"
prompt = "The old lighthouse keeper"

[[probe]]
id = "village-morning"
prompt = "In the morning, the village"

[[probe]]
id = "letter"
prompt = "She opened the letter and"
"#;

/// Probes in [`SUITE`].
pub const PROBES: u32 = 4;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of one file one at a time: two tests generating at once on a small machine
/// would disturb each other's latency and the fault timing.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("MODELWATCH_REQUIRE_LLAMA").is_some()
}

/// The installed binary and model, or `None` (after saying so) when they are not configured
/// outside CI.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (
        var("MODELWATCH_LLAMA_SERVER"),
        var("MODELWATCH_LLAMA_MODEL"),
    ) {
        (Some(s), Some(m)) => {
            assert!(
                s.is_file(),
                "MODELWATCH_LLAMA_SERVER={} does not exist: run scripts/llama/install.sh",
                s.display()
            );
            assert!(
                m.is_file(),
                "MODELWATCH_LLAMA_MODEL={} does not exist: run scripts/llama/install.sh",
                m.display()
            );
            Some((s, m))
        }
        _ if in_ci() => panic!(
            "CI (or MODELWATCH_REQUIRE_LLAMA) is set but MODELWATCH_LLAMA_SERVER / \
             MODELWATCH_LLAMA_MODEL are not: the llama.cpp tests must run in CI; run \
             `eval \"$(scripts/llama/install.sh)\"` and export both before the tests (.ci/run \
             does)"
        ),
        _ => {
            eprintln!(
                "skipped: MODELWATCH_LLAMA_SERVER / MODELWATCH_LLAMA_MODEL are not set; \
                 run scripts/llama/install.sh and export the two lines it prints"
            );
            None
        }
    }
}

/// The second installed model (SmolLM2-135M-Instruct, `MODELWATCH_LLAMA_MODEL2`), or `None`
/// (after saying so) when it is not configured outside CI.
pub fn installed_second() -> Option<PathBuf> {
    match std::env::var_os("MODELWATCH_LLAMA_MODEL2").filter(|v| !v.is_empty()) {
        Some(m) => {
            let m = PathBuf::from(m);
            assert!(
                m.is_file(),
                "MODELWATCH_LLAMA_MODEL2={} does not exist: run scripts/llama/install.sh",
                m.display()
            );
            Some(m)
        }
        None if in_ci() => panic!(
            "CI (or MODELWATCH_REQUIRE_LLAMA) is set but MODELWATCH_LLAMA_MODEL2 is not: run \
             `eval \"$(scripts/llama/install.sh)\"` and export the lines it prints (.ci/run does)"
        ),
        None => {
            eprintln!(
                "skipped: MODELWATCH_LLAMA_MODEL2 is not set; run scripts/llama/install.sh and \
                 export the lines it prints"
            );
            None
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One `llama-server` process, killed on drop.
pub struct Llama {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl Llama {
    /// Starts the server with the standard arguments (`-np 2 -t 1`, the Gemma chat template),
    /// `alias` as the served model name (a repeated `--alias` would add a name, not replace it)
    /// and `extra` (later arguments win), and waits for `/health`. Start-up is 1–6 s on an idle
    /// machine; the timeout allows for a loaded one.
    pub fn start(
        bin: &Path,
        model: &Path,
        port: u16,
        alias: &str,
        extra: &[&str],
        dir: &Path,
    ) -> Llama {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let log = dir.join(format!("llama-{port}-{n}.log"));
        let out = std::fs::File::create(&log).expect("server log file");
        let err = out.try_clone().expect("server log file");
        let port_s = port.to_string();
        let mut args = vec![
            "-m",
            model.to_str().expect("utf-8 model path"),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            &port_s,
            "-c",
            "2048",
            "-np",
            "2",
            "-t",
            "1",
            "--no-jinja",
            "--chat-template",
            "gemma",
        ];
        args.extend_from_slice(extra);
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("llama-server starts");
        let mut server = Llama {
            child: Some(child),
            port,
            log,
        };
        server.wait_ready(Duration::from_secs(180));
        server
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "llama-server exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            if http_get(self.port, "/health").map(|r| r.0) == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "llama-server on port {} not ready within {timeout:?}:\n{}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Requests the server has finished (it logs "stop processing" when a slot is done).
    pub fn completions(&self) -> usize {
        self.log_text().matches("stop processing").count()
    }

    /// SIGKILL: the server dies mid-request, as in a crash or an OOM kill.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain `GET` on loopback: the status and the body, or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(after.get(..n)?);
        rest = after.get(n + 2..)?;
    }
}

/// One completion target of a test configuration.
pub struct Target<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub seed: u64,
    pub max_tokens: u32,
    pub retries: u32,
    /// Target-level samples per probe (the daemon's round size); `None`: the suite's.
    pub samples: Option<u32>,
    /// The baseline file the target is watched against, relative to the configuration.
    pub baseline: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn new(name: &'a str, url: &'a str) -> Target<'a> {
        Target {
            name,
            url,
            seed: 1_000,
            max_tokens: 24,
            retries: 0,
            samples: None,
            baseline: None,
        }
    }
}

/// Writes the stories suite and a configuration with `targets` under `dir`; `daemon_port` adds
/// the daemon's `[server]` section. Verdicts use `alpha = 0.001` (see docs/llama-cpp.md: the
/// bound on a false regression of an unchanged server).
pub fn write_config(dir: &Path, targets: &[Target], daemon_port: Option<u16>) -> PathBuf {
    write_config_with(dir, SUITE, targets, daemon_port)
}

/// [`SUITE`] at `temperature` with `seed` declared in its defaults: sample `i` of every probe
/// is sent with `seed + i` on every side, and the verdicts show seed-paired replay agreement.
pub fn seeded_suite(seed: u64, temperature: f64) -> String {
    let suite = SUITE
        .replacen(
            "stop = [\"\\n\"]",
            &format!("stop = [\"\\n\"]\nseed = {seed}"),
            1,
        )
        .replacen(
            "temperature = 0.7",
            &format!("temperature = {temperature}"),
            1,
        );
    assert!(
        suite.contains(&format!("seed = {seed}"))
            && suite.contains(&format!("temperature = {temperature}")),
        "the suite's defaults name its stop sequence and temperature"
    );
    suite
}

/// [`write_config`] with another text for the `stories` suite.
pub fn write_config_with(
    dir: &Path,
    suite: &str,
    targets: &[Target],
    daemon_port: Option<u16>,
) -> PathBuf {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(probes.join("stories.toml"), suite).unwrap();
    let mut text = format!(
        "probes_dir = {:?}\n\n[storage]\npath = {:?}\n\n[margins]\nalpha = 0.001\n\n\
         [alerts]\nreminder = \"0s\"\n",
        probes.display().to_string(),
        dir.join("modelwatch.db").display().to_string()
    );
    if let Some(port) = daemon_port {
        text.push_str(&format!("\n[server]\nlisten = \"127.0.0.1:{port}\"\n"));
    }
    for t in targets {
        text.push_str(&format!(
            r#"
[[target]]
name = "{name}"
provider = "openai"
api = "completion"
base_url = "{url}"
model = "{ALIAS}"
suites = ["stories"]
max_concurrency = 2
retries = {retries}
connect_timeout = "2s"
request_timeout = "120s"
interval = "10s"
jitter = "0s"
round_deadline = "300s"
"#,
            name = t.name,
            url = t.url,
            retries = t.retries,
        ));
        if let Some(n) = t.samples {
            text.push_str(&format!("samples = {n}\n"));
        }
        if let Some(b) = t.baseline {
            text.push_str(&format!("baseline = {b:?}\n"));
        }
        text.push_str(&format!(
            "[target.params]\nseed = {}\nmax_tokens = {}\n",
            t.seed, t.max_tokens
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A configuration with two targets, `current` and `candidate`, answering with at most
/// `max_tokens` tokens, for a paired `canary --current current --candidate candidate`.
pub fn pair_config(
    dir: &Path,
    suite: &str,
    current: &str,
    candidate: &str,
    max_tokens: u32,
) -> PathBuf {
    write_config_with(
        dir,
        suite,
        &[
            Target {
                max_tokens,
                ..Target::new("current", current)
            },
            Target {
                max_tokens,
                ..Target::new("candidate", candidate)
            },
        ],
        None,
    )
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
}

impl Output {
    /// The JSON report or summary on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs the `modelwatch` binary with `-c CONFIG ARGS...` to the end.
pub fn modelwatch(config: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("modelwatch runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall: started.elapsed(),
    }
}

/// `modelwatch canary --candidate TARGET --baseline FILE --samples N --format json`.
pub fn canary_args<'a>(target: &'a str, baseline: &'a str, samples: &'a str) -> Vec<&'a str> {
    vec![
        "canary",
        "--candidate",
        target,
        "--baseline",
        baseline,
        "--samples",
        samples,
        "--format",
        "json",
    ]
}

/// The verdict of one metric in a JSON report.
pub fn metric_verdict(report: &serde_json::Value, metric: &str) -> String {
    report["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["metric"] == metric))
        .and_then(|m| m["verdict"].as_str())
        .unwrap_or("absent")
        .to_string()
}

/// One line per metric: verdict and adjusted p.
pub fn metrics_line(report: &serde_json::Value) -> String {
    report["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{}={} (p_adj {})",
                        m["metric"].as_str().unwrap_or("?"),
                        m["verdict"].as_str().unwrap_or("?"),
                        m["p_adjusted"]
                            .as_f64()
                            .map(|p| format!("{p:.2e}"))
                            .unwrap_or_else(|| "-".into())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A `modelwatch daemon` process, killed on drop (stopped with SIGTERM by [`Daemon::stop`]).
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, port: u16) -> Daemon {
        let log = config.with_file_name("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .arg("-c")
            .arg(config)
            .arg("daemon")
            .env("RUST_LOG", "modelwatch=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("modelwatch daemon starts");
        let d = Daemon {
            child: Some(child),
            port,
            log,
        };
        d.wait_until("the daemon's status API", 60, |s| s.is_some());
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v1/status`, or `None` while it does not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, body) = http_get(self.port, "/api/v1/status")?;
        if code != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    /// Polls the status every 250 ms until `f` holds; panics with the daemon's log after
    /// `secs` seconds or when the process has exited.
    pub fn wait_until(
        &self,
        what: &str,
        secs: u64,
        f: impl Fn(Option<&serde_json::Value>) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if f(s.as_ref()) {
                return s.unwrap_or(serde_json::Value::Null);
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {what}; last status {}\ndaemon log:\n{}",
                s.map(|s| s.to_string()).unwrap_or_default(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().ok()?.code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A target's entry in the daemon status.
pub fn target_status<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == name))
        .unwrap_or(&serde_json::Value::Null)
}

/// Rounds the daemon finished for a target.
pub fn rounds(status: Option<&serde_json::Value>, name: &str) -> u64 {
    status
        .map(|s| target_status(s, name)["rounds"].as_u64().unwrap_or(0))
        .unwrap_or(0)
}

/// The metrics of a target's firing alerts.
pub fn firing(status: &serde_json::Value, name: &str) -> Vec<String> {
    status["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| a["key"]["target"] == name && a["status"] == "firing")
                .filter_map(|a| a["key"]["metric"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every alert of a target that ever left `ok` (firing or resolved).
pub fn ever_alerted(status: &serde_json::Value, name: &str) -> Vec<String> {
    status["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| a["key"]["target"] == name && a["status"] != "ok")
                .filter_map(|a| a["key"]["metric"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `metric: e-value / threshold (n samples)` for each monitored metric of a target.
pub fn readings(status: &serde_json::Value, name: &str) -> String {
    target_status(status, name)["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{} e={:.3}/{:.0} n={}",
                        m["metric"].as_str().unwrap_or("?"),
                        m["e_value"].as_f64().unwrap_or(f64::NAN),
                        m["threshold"].as_f64().unwrap_or(f64::NAN),
                        m["samples"].as_u64().unwrap_or(0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
