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
}

/// A base URL where nothing listens (a port bound and released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Writes `modelwatch.toml` in `dir` with one openai target per `(name, base_url)`, the focus
/// suite, and `extra` appended (e.g. a `[margins]` table).
pub fn write_config(dir: &Path, targets: &[(&str, &str)], extra: &str) -> PathBuf {
    let probes = std::fs::canonicalize(Path::new(FIXTURES).join("probes")).unwrap();
    let mut text = format!(
        "probes_dir = {:?}\n\n[storage]\npath = {:?}\n\n",
        probes.display().to_string(),
        dir.join("modelwatch.db").display().to_string()
    );
    for (name, url) in targets {
        text.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nprovider = \"openai\"\nbase_url = \"{url}\"\n\
             model = \"sim-7b\"\nsuites = [\"focus\"]\nstream = false\nretries = 0\n\
             max_concurrency = 16\nconnect_timeout = \"2s\"\nrequest_timeout = \"10s\"\n\n"
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
