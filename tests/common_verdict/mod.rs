//! Shared set-up of the verdict end-to-end tests: simulators on port 0 with the profiles of
//! `tests/fixtures/canary/`, a configuration naming them as targets, and the real binary.

#![allow(dead_code)]

use modelwatch::sim::{self, Profile, SimHandle};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const FIXTURES: &str = "tests/fixtures/canary";

/// A simulator profile from the fixtures (`clean`, `degraded`).
pub fn profile(name: &str) -> Profile {
    let path = Path::new(FIXTURES).join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Profile::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The built-in simulator profile `name` without simulated delays (the answers are what
/// matters, not the timing).
pub fn fast(name: &str) -> Profile {
    let mut p = Profile::builtin(name).expect("built-in profile");
    p.latency_scale = 0.0;
    p
}

/// Simulators served from a runtime of their own while the test thread runs the binary.
pub struct Sims {
    pub rt: tokio::runtime::Runtime,
    pub handles: Vec<SimHandle>,
}

impl Sims {
    /// Simulators of the fixture profiles `name` with their seeds.
    pub fn start(profiles: &[(&str, u64)]) -> Sims {
        Sims::of(
            profiles
                .iter()
                .map(|(name, seed)| (profile(name), *seed))
                .collect(),
        )
    }

    /// Simulators of the given profiles with their seeds.
    pub fn of(profiles: Vec<(Profile, u64)>) -> Sims {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handles = {
            let _guard = rt.enter();
            profiles
                .into_iter()
                .map(|(p, seed)| sim::spawn_on_free_port(p, seed).unwrap())
                .collect()
        };
        Sims { rt, handles }
    }

    pub fn url(&self, i: usize) -> String {
        self.handles[i].base_url()
    }

    /// Stops every simulator and waits until each has.
    pub fn shutdown(self) {
        let Sims { rt, handles } = self;
        for h in handles {
            rt.block_on(h.shutdown());
        }
    }
}

/// A base URL where nothing listens (a port bound and released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// The settings of every target [`write_config`] writes: the focus suite, no retries, short
/// timeouts.
const FOCUS_TARGET: &str = "suites = [\"focus\"]\nstream = false\nretries = 0\n\
     max_concurrency = 16\nconnect_timeout = \"2s\"\nrequest_timeout = \"10s\"\n";

/// Writes `modelwatch.toml` in `dir` with one openai target per `(name, base_url)`, the focus
/// suite, and `extra` appended (e.g. a `[margins]` table).
pub fn write_config(dir: &Path, targets: &[(&str, &str)], extra: &str) -> PathBuf {
    let probes = Path::new(FIXTURES).join("probes");
    config_file(dir, &probes, targets, FOCUS_TARGET, extra)
}

/// Writes `modelwatch.toml` in `dir` with targets `current` and `candidate` on the first two
/// simulators, the starter suites of `probes/`, and `settings` (TOML lines: `suites`, limits)
/// in each target.
pub fn starter_config(dir: &Path, sims: &Sims, settings: &str) -> PathBuf {
    let targets: Vec<(&str, String)> = ["current", "candidate"]
        .into_iter()
        .zip(sims.handles.iter().map(SimHandle::base_url))
        .collect();
    let targets: Vec<(&str, &str)> = targets.iter().map(|(n, u)| (*n, u.as_str())).collect();
    config_file(dir, Path::new("probes"), &targets, settings, "")
}

/// Writes `modelwatch.toml` in `dir`: `probes` as the probes folder, the store in `dir`, one
/// openai target per `(name, base_url)` with `settings` (TOML lines) added, then `extra`.
pub fn config_file(
    dir: &Path,
    probes: &Path,
    targets: &[(&str, &str)],
    settings: &str,
    extra: &str,
) -> PathBuf {
    let probes = std::fs::canonicalize(probes).unwrap();
    let mut text = format!(
        "probes_dir = {:?}\n\n[storage]\npath = {:?}\n\n",
        probes.display().to_string(),
        dir.join("modelwatch.db").display().to_string()
    );
    for (name, url) in targets {
        text.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nprovider = \"openai\"\nbase_url = \"{url}\"\n\
             model = \"sim-7b\"\n{settings}\n"
        ));
    }
    text.push_str(extra);
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the real binary with `--config config`.
pub fn modelwatch(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs the real binary with `--config config`, `command` and then `args`.
fn modelwatch_with(config: &Path, command: &[&str], args: &[&str]) -> Output {
    let all: Vec<&str> = command.iter().chain(args).copied().collect();
    modelwatch(config, &all)
}

/// [`modelwatch_with`], asking for the JSON report.
fn with_json_report(config: &Path, command: &[&str], args: &[&str]) -> Output {
    modelwatch_with(config, &[command, &["--format", "json"]].concat(), args)
}

/// `modelwatch canary` of target `candidate` against target `current`, a JSON report on
/// stdout, with `args` added.
pub fn canary(config: &Path, args: &[&str]) -> Output {
    let command = ["canary", "--current", "current", "--candidate", "candidate"];
    with_json_report(config, &command, args)
}

/// `modelwatch baseline record` of `target` into `out`, `args` added.
pub fn record(config: &Path, target: &str, samples: &str, out: &Path, args: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let command = [
        "baseline",
        "record",
        "--target",
        target,
        "--samples",
        samples,
        "--out",
        out,
    ];
    modelwatch_with(config, &command, args)
}

/// [`record`] that must succeed.
pub fn record_ok(config: &Path, target: &str, samples: &str, out: &Path) {
    let o = record(config, target, samples, out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `modelwatch compare` of `target`'s stored samples with `baseline`, a JSON report, `args`
/// added.
pub fn compare(config: &Path, target: &str, baseline: &Path, args: &[&str]) -> Output {
    let baseline = baseline.to_str().unwrap();
    let command = ["compare", "--target", target, "--baseline", baseline];
    with_json_report(config, &command, args)
}

/// `modelwatch baseline diff a b`, a JSON report.
pub fn diff(config: &Path, a: &Path, b: &Path) -> Output {
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    modelwatch(config, &["baseline", "diff", a, b, "--format", "json"])
}

/// `modelwatch canary` of `candidate` against the recorded `baseline`, a JSON report, `args`
/// added.
pub fn canary_vs_baseline(
    config: &Path,
    candidate: &str,
    baseline: &Path,
    args: &[&str],
) -> Output {
    let baseline = baseline.to_str().unwrap();
    let command = ["canary", "--candidate", candidate, "--baseline", baseline];
    with_json_report(config, &command, args)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON report on stdout.
pub fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// Metric ids of `category` with `verdict`, sorted.
pub fn metrics_with(report: &serde_json::Value, category: &str, verdict: &str) -> Vec<String> {
    let mut v: Vec<String> = report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["category"] == category && m["verdict"] == verdict)
        .map(|m| m["metric"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}
