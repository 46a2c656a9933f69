//! Secrets never leave: every command runs through the real binary at `-vv` with a canary API key
//! (literal in the configuration, really required by the simulator) and a canary header value,
//! and every output is searched for them: stdout, stderr, the SQLite files, the baseline file
//! and every report format. Error paths are included: an unreachable base URL and a server that
//! echoes the credentials it received into its error body. A configuration holding secrets that
//! others can read gets a warning with the fix.

use crate::common_verdict;
use common_verdict::{FIXTURES, dead_url};
use modelwatch::sim::{self, Profile, SimHandle};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const KEY: &str = "sk-canary-d41d8cd98f00b204";
const HEADER: &str = "hdr-canary-9e107d9d372bb682";

/// Requests the echo server received carrying both secrets (and so echoed them back).
static ECHOED: AtomicUsize = AtomicUsize::new(0);

struct World {
    _rt: tokio::runtime::Runtime,
    sims: Vec<SimHandle>,
    dir: tempfile::TempDir,
    config: PathBuf,
    /// Every output seen so far, with where it came from.
    outputs: Vec<(String, Vec<u8>)>,
}

/// A server that answers every request with a 400 whose body repeats the request head
/// (Authorization and custom headers included), like a careless proxy. Returns its base URL.
fn echo_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got).replace(['"', '\r', '\n'], " ");
                if head.contains(KEY) && head.contains(HEADER) {
                    ECHOED.fetch_add(1, Ordering::SeqCst);
                }
                let body = format!(
                    "{{\"error\": {{\"message\": \"bad request: {head}\", \"type\": \"invalid_request_error\"}}}}"
                );
                let reply = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\nX-Echo: {head}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
            });
        }
    });
    format!("http://{addr}")
}

fn profile_with_key() -> Profile {
    let path = Path::new(FIXTURES).join("clean.toml");
    let text = std::fs::read_to_string(path).unwrap();
    Profile::from_toml(&format!("api_key = \"{KEY}\"\n{text}")).unwrap()
}

fn target(name: &str, provider: &str, url: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\nprovider = \"{provider}\"\nbase_url = \"{url}\"\n\
         model = \"sim-7b\"\nsuites = [\"focus\"]\nretries = 1\nmax_concurrency = 8\n\
         connect_timeout = \"2s\"\nrequest_timeout = \"10s\"\napi_key = \"{KEY}\"\n\
         headers = {{ X-Canary = \"{HEADER}\" }}\n\n"
    )
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sims: Vec<SimHandle> = {
            let _g = rt.enter();
            (0..2)
                .map(|i| sim::spawn_on_free_port(profile_with_key(), 40 + i).unwrap())
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let probes = std::fs::canonicalize(Path::new(FIXTURES).join("probes")).unwrap();
        let mut text = format!(
            "probes_dir = {:?}\n\n[storage]\npath = {:?}\n\n",
            probes.display().to_string(),
            dir.path().join("modelwatch.db").display().to_string()
        );
        text.push_str(&target("current", "openai", &sims[0].base_url()));
        text.push_str(&target("candidate", "ollama", &sims[1].base_url()));
        text.push_str(&target("unreachable", "openai", &dead_url()));
        let echo = echo_server();
        text.push_str(&target("echo-openai", "openai", &echo));
        text.push_str(&target("echo-ollama", "ollama", &echo));
        let config = dir.path().join("modelwatch.toml");
        std::fs::write(&config, text).unwrap();
        World {
            _rt: rt,
            sims,
            dir,
            config,
            outputs: Vec::new(),
        }
    }

    /// Runs the binary at `-vv` and keeps stdout and stderr for the search.
    fn run(&mut self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .arg("--config")
            .arg(&self.config)
            .arg("-vv")
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let what = args.join(" ");
        self.outputs
            .push((format!("stdout of `{what}`"), out.stdout.clone()));
        self.outputs
            .push((format!("stderr of `{what}`"), out.stderr.clone()));
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_output_of_any_command_contains_a_secret() {
    let mut w = World::new();
    std::fs::set_permissions(&w.config, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = w.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cfg = w.config.display().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("readable by group or others (mode 644)")
            && stderr.contains(&format!("chmod 600 {cfg}")),
        "{stderr}"
    );

    let out = w.run(&["run", "--target", "current", "--samples", "4"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Debug logging is really on.
    assert!(text(&out).contains("DEBUG"), "{}", text(&out));
    assert!(text(&out).contains(&format!("chmod 600 {cfg}")));

    // From here the file is private: no warning.
    std::fs::set_permissions(&w.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = w.run(&[
        "run",
        "--target",
        "candidate",
        "--samples",
        "4",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("chmod 600"), "{}", text(&out));

    // The key was really required and used: the simulators answered, and a wrong key fails.
    for sim in &w.sims {
        let ok: u64 = ["/v1/chat/completions", "/api/chat"]
            .iter()
            .map(|e| sim.stats().count(e, "ok"))
            .sum();
        assert!(ok >= 20, "authenticated requests answered: {ok}");
    }

    let baseline = w.path("baselines/current.json");
    let b = baseline.display().to_string();
    let out = w.run(&[
        "baseline",
        "record",
        "--target",
        "current",
        "--samples",
        "6",
        "--out",
        &b,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A round after the baseline for compare to judge: a baseline's own rounds never are.
    let out = w.run(&["run", "--target", "current", "--samples", "4"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for format in ["text", "json", "markdown", "junit", "html"] {
        let report = w.path(&format!("compare.{format}"));
        let r = report.display().to_string();
        let out = w.run(&[
            "compare",
            "--target",
            "current",
            "--baseline",
            &b,
            "--since",
            "24h",
            "--format",
            format,
            "--output",
            &r,
        ]);
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 3)),
            "{}",
            text(&out)
        );
        let bytes = std::fs::read(&report).unwrap();
        assert!(!bytes.is_empty(), "compare {format} wrote nothing");
        w.outputs.push((format!("compare report {format}"), bytes));
    }
    for format in ["text", "json", "markdown", "junit", "html"] {
        let report = w.path(&format!("canary.{format}"));
        let r = report.display().to_string();
        let out = w.run(&[
            "canary",
            "--current",
            "current",
            "--candidate",
            "candidate",
            "--samples",
            "4",
            "--format",
            format,
            "--output",
            &r,
        ]);
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 3)),
            "{}",
            text(&out)
        );
        let bytes = std::fs::read(&report).unwrap();
        w.outputs.push((format!("canary report {format}"), bytes));
    }
    let out = w.run(&[
        "canary",
        "--candidate",
        "candidate",
        "--baseline",
        &b,
        "--samples",
        "4",
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "{}",
        text(&out)
    );

    let responses = w.path("responses.jsonl");
    std::fs::write(
        &responses,
        "{\"probe\": \"multiply-3digit\", \"text\": \"9716\", \"finish_reason\": \"stop\"}\n",
    )
    .unwrap();
    let suite = std::fs::canonicalize(Path::new(FIXTURES).join("probes/focus.toml")).unwrap();
    let (s, r) = (suite.display().to_string(), responses.display().to_string());
    for format in ["text", "json"] {
        let out = w.run(&[
            "explain",
            "--suite",
            &s,
            "--responses",
            &r,
            "--format",
            format,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }

    // Error paths: nothing listening, and a server echoing the credentials back.
    let out = w.run(&["run", "--target", "unreachable", "--samples", "1"]);
    assert!(text(&out).contains("connect"), "{}", text(&out));
    for t in ["echo-openai", "echo-ollama"] {
        let out = w.run(&["run", "--target", t, "--samples", "1"]);
        let all = text(&out);
        assert!(all.contains("400"), "{all}");
        let out = w.run(&[
            "canary",
            "--current",
            "current",
            "--candidate",
            t,
            "--samples",
            "2",
        ]);
        assert!(matches!(out.status.code(), Some(1 | 3)), "{}", text(&out));
    }
    assert!(
        ECHOED.load(Ordering::SeqCst) >= 4,
        "the echo server got the credentials"
    );
    let out = w.run(&[
        "baseline",
        "record",
        "--target",
        "echo-openai",
        "--samples",
        "2",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));

    // Files: the database (with its journal files), the baseline.
    for entry in std::fs::read_dir(w.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("modelwatch.db") {
            w.outputs.push((name, std::fs::read(&p).unwrap()));
        }
    }
    w.outputs
        .push(("baseline file".into(), std::fs::read(&baseline).unwrap()));

    // The search itself, after checking it can find what it looks for.
    assert!(contains(&std::fs::read(&w.config).unwrap(), KEY));
    let mut leaks = Vec::new();
    let mut bytes = 0;
    for (what, data) in &w.outputs {
        bytes += data.len();
        for secret in [KEY, HEADER, "canary-d41d8", "canary-9e107"] {
            if contains(data, secret) {
                leaks.push(format!("{what} contains {secret}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
    println!(
        "searched {} outputs ({} KiB) for the canary secrets: none found",
        w.outputs.len(),
        bytes / 1024
    );
}

#[test]
fn secrets_from_the_environment_or_a_file_are_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("probes")).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("probes/focus.toml"),
        dir.path().join("probes/focus.toml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("key"), KEY).unwrap();
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(
        &config,
        "[[target]]\nname = \"t\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\n\
         model = \"m\"\nsuites = [\"focus\"]\napi_key_file = \"key\"\n\
         headers = { X-Token = \"${TOKEN}\" }\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env("TOKEN", HEADER)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(!all.contains("warning"), "{all}");
    assert!(!all.contains(KEY) && !all.contains(HEADER), "{all}");
}
