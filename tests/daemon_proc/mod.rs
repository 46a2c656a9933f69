//! Shared by the tests that run the real `modelwatch daemon` binary: a free loopback port, a
//! runtime for the simulator, the configuration of the storage-fault tests, starting the daemon
//! with its stderr collected, HTTP GET of its API, reading its status, and waiting for a
//! condition.
#![allow(dead_code)]

use modelwatch::sim::{self, Profile, SimHandle};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 at the time of the call, for the daemon's HTTP server.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A multi-threaded runtime with `workers` threads, for the simulator and HTTP clients.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// The head of a daemon configuration: probes from `probes`, the database at `db`, the HTTP
/// server on 127.0.0.1:`port` (sections and targets follow).
pub fn server_config(probes: &Path, db: &Path, port: u16) -> String {
    format!(
        r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[server]
listen = "127.0.0.1:{port}"
"#,
        probes = probes.display().to_string(),
        db = db.display().to_string(),
    )
}

/// The configuration of the storage-fault tests: `targets` Ollama targets named `sim0`… on
/// the suite `disk`, every 10 s without jitter, storing into `db`.
pub fn disk_config(probes: &Path, db: &Path, port: u16, sim_url: &str, targets: usize) -> String {
    server_config(probes, db, port)
        + &(0..targets)
        .map(|i| {
            format!(
                "[[target]]\nname = \"sim{i}\"\nprovider = \"ollama\"\nbase_url = \"{sim_url}\"\nmodel = \"sim-7b\"\nsuites = [\"disk\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\n",
            )
        })
        .collect::<String>()
}

/// The daemon on `cfg` with its stderr collected through a pipe into the returned log (a pipe
/// is subject to neither file size limits nor a full or read-only disk, so logging keeps
/// working whatever the storage does).
pub fn start_piped(cfg: &Path) -> (Child, Arc<Mutex<String>>) {
    start_piped_under(&[], cfg)
}

/// A test that cannot run here says so and returns; under CI (where `scripts/test-deps.sh` and
/// the machine provide what it needs) that is a failure, never a silent pass.
pub fn skip(reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot run under CI: {reason}"
    );
    println!("SKIPPED {reason}");
}

/// The daemon on `cfg` with its stderr appended to the file `log` (kept across restarts, so a
/// crash test reads every life's log in one place).
pub fn start_logged(cfg: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["daemon", "--config"])
        .arg(cfg)
        .env("RUST_LOG", "modelwatch=info")
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

/// [`start_piped`] with the daemon run through `wrapper` (a command and its arguments that end
/// by running the daemon, such as `setpriv …`); an empty wrapper runs it directly.
pub fn start_piped_under(wrapper: &[String], cfg: &Path) -> (Child, Arc<Mutex<String>>) {
    let mut argv: Vec<String> = wrapper.to_vec();
    argv.push(env!("CARGO_BIN_EXE_modelwatch").to_string());
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .args(["daemon", "--config"])
        .arg(cfg)
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

/// GET `path` of the daemon on `port`: status and body, or `(0, "")` when it does not answer.
pub fn get(rt: &tokio::runtime::Runtime, port: u16, path: &str) -> (u16, String) {
    rt.block_on(async {
        match reqwest::get(format!("http://127.0.0.1:{port}{path}")).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

/// Rounds completed by all targets together, from a `/api/v1/status` body (0 if unreadable).
pub fn total_rounds(status: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(status)
        .ok()
        .and_then(|v| {
            v["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["rounds"].as_u64()).sum())
        })
        .unwrap_or(0)
}

/// Writes the suite `name` to `dir/NAME.toml`, creating `dir`: one probe a prompt, with ids
/// `p0`, `p1`….
pub fn write_suite(dir: &Path, name: &str, prompts: impl IntoIterator<Item = String>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut suite = format!("suite = \"{name}\"\n");
    for (i, prompt) in prompts.into_iter().enumerate() {
        suite.push_str(&format!(
            "\n[[probe]]\nid = \"p{i}\"\nprompt = \"{prompt}\"\n"
        ));
    }
    std::fs::write(dir.join(format!("{name}.toml")), suite).unwrap();
}

/// The answer of `PRAGMA integrity_check` on `db` through a connection of the test's own
/// (`"ok"` for a sound database).
pub fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A daemon of the storage-fault tests, ready to start: the simulator (healthy, no latency),
/// the suite `disk` of two probes and [`disk_config`] in a fresh temporary directory.
pub struct StoreDaemon {
    pub rt: tokio::runtime::Runtime,
    _sim: SimHandle,
    /// Holds the probes and the configuration (and the database when `db` was relative).
    pub dir: tempfile::TempDir,
    pub cfg: PathBuf,
    pub db: PathBuf,
    pub port: u16,
}

impl StoreDaemon {
    /// `db` relative to the temporary directory, or absolute (on a filesystem of the test's
    /// own); `second_prompt` is the prompt of the suite's second probe.
    pub fn new(db: &Path, second_prompt: &str, targets: usize) -> Self {
        let rt = runtime(1);
        let mut profile = Profile::builtin("healthy").unwrap();
        profile.latency_scale = 0.0;
        let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 3).unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let probes = dir.path().join("probes");
        std::fs::create_dir_all(&probes).unwrap();
        std::fs::write(
            probes.join("disk.toml"),
            format!(
                "suite = \"disk\"\n[[probe]]\nid = \"a\"\nprompt = \"Explain disks.\"\n[[probe]]\nid = \"b\"\nprompt = \"{second_prompt}\"\n"
            ),
        )
        .unwrap();
        let db = dir.path().join(db);
        let port = free_port();
        let cfg = dir.path().join("modelwatch.toml");
        std::fs::write(
            &cfg,
            disk_config(&probes, &db, port, &sim.base_url(), targets),
        )
        .unwrap();
        StoreDaemon {
            rt,
            _sim: sim,
            dir,
            cfg,
            db,
            port,
        }
    }

    /// Starts the daemon, its stderr collected through a pipe ([`start_piped`]).
    pub fn start(&self) -> (Child, Arc<Mutex<String>>) {
        start_piped(&self.cfg)
    }

    /// GET `path` of the daemon ([`get`]).
    pub fn get(&self, path: &str) -> (u16, String) {
        get(&self.rt, self.port, path)
    }

    /// Rounds completed by all targets together ([`total_rounds`]).
    pub fn rounds(&self) -> u64 {
        total_rounds(&self.get("/api/v1/status").1)
    }
}
