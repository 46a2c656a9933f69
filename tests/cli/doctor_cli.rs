//! `modelwatch doctor` and `check-config --connect` against local servers: the simulator
//! (healthy, an Ollama URL ending in `/v1`, a model it does not have, a key it wants), a dead
//! port, and small fixed-answer servers (an HTML page, a redirect, the other API, a server that
//! never answers). Each ends with the hint for its case and the exit code for its class;
//! `--timeout` bounds every case, so none can take longer than its budget.

use modelwatch::sim::{self, Profile};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server answering every request by `answer(path)` (status line, headers and body), counting
/// the requests it saw. `None` keeps the connection open without answering.
fn fixed_server(
    answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let answer = Arc::new(answer);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                match answer(&path) {
                    Some(a) => {
                        let _ = stream.write_all(a.as_bytes());
                    }
                    None => std::thread::sleep(std::time::Duration::from_secs(30)),
                }
            });
        }
    });
    (url, hits)
}

fn response(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A configuration with one target per `(name, provider, base_url, model, extra)`.
fn config(dir: &Path, targets: &[(&str, &str, &str, &str, &str)]) -> std::path::PathBuf {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(
        probes.join("mini.toml"),
        "suite = \"mini\"\n[[probe]]\nid = \"hello\"\nprompt = \"Say hello.\"\n",
    )
    .unwrap();
    let mut text = "probes_dir = \"probes\"\n".to_string();
    for (name, provider, url, model, extra) in targets {
        text.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nprovider = \"{provider}\"\nbase_url = \"{url}\"\n\
             model = \"{model}\"\nsuites = [\"mini\"]\n{extra}\n"
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `modelwatch ARGS -c CFG`: exit code, stdout, stderr.
fn run(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .arg("-c")
        .arg(cfg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `doctor` on one target: exit code and the whole output.
fn doctor_one(provider: &str, url: &str, model: &str, extra: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("t", provider, url, model, extra)]);
    let (code, out, err) = run(&cfg, &["doctor", "--timeout", "1s"]);
    (code, format!("{out}{err}"))
}

#[test]
fn a_healthy_simulator_passes_with_its_fingerprint() {
    let rt = runtime();
    let sim = rt.block_on(async { sim::spawn_on_free_port(Profile::default(), 1).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let url = sim.base_url();
    let v1 = format!("{url}/v1");
    let cfg = config(
        dir.path(),
        &[
            ("native", "ollama", &url, "sim-7b", ""),
            ("compat", "openai", &v1, "sim-7b", ""),
        ],
    );
    let (code, out, err) = run(&cfg, &["doctor", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in &lines {
        assert_eq!(l["ok"], true, "{l}");
        let fp = l["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 16, "{l}");
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()), "{l}");
    }
    let (code, out, _) = run(&cfg, &["doctor", "--target", "native"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok    native  ollama"), "{out}");
    assert!(out.contains("doctor: 1 of 1 target healthy"), "{out}");
}

#[test]
fn a_dead_port_is_unreachable_with_exit_3() {
    let port = free_port();
    let (code, out) = doctor_one("ollama", &format!("http://127.0.0.1:{port}"), "m", "");
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("dead port: GET /api/tags on 127.0.0.1:")
            && out.contains("could not connect: Connection refused"),
        "{out}"
    );
    assert!(
        out.contains(&format!("hint: nothing answers at 127.0.0.1:{port}")),
        "{out}"
    );
}

#[test]
fn an_html_page_is_named_as_a_web_server() {
    let (url, _) = fixed_server(|_| {
        Some(response(
            "200 OK",
            "content-type: text/html\r\n",
            "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body></body></html>",
        ))
    });
    let (code, out) = doctor_one("openai", &url, "m", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("HTML page: GET /v1/models") && out.contains("\"Welcome to nginx!\""),
        "{out}"
    );
    assert!(out.contains("base_url reaches a web server"), "{out}");
    assert!(
        !out.contains("<!DOCTYPE"),
        "the raw page is not printed: {out}"
    );
}

/// A server that echoes the credentials into a page title or a model list: doctor prints
/// neither the key nor a header value.
#[test]
fn credentials_a_server_echoes_are_redacted() {
    const KEY: &str = "sk-doctor-canary-7f3a";
    const HEADER: &str = "hdr-doctor-canary-51b2";
    let extra = format!("api_key = \"{KEY}\"\nheaders = {{ X-Token = \"{HEADER}\" }}\n");
    let (page, _) = fixed_server(|_| {
        Some(response(
            "200 OK",
            "content-type: text/html\r\n",
            &format!("<html><head><title>Bearer {KEY} {HEADER}</title></head></html>"),
        ))
    });
    let (list, _) = fixed_server(|_| {
        let body =
            format!("{{\"data\":[{{\"id\":\"a\"}},{{\"id\":\"{KEY}\"}},{{\"id\":\"{HEADER}\"}}]}}");
        Some(response(
            "200 OK",
            "content-type: application/json\r\n",
            &body,
        ))
    });
    for url in [page, list] {
        let (code, out) = doctor_one("openai", &url, "m", &extra);
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("[redacted]"),
            "the echo reached the output: {out}"
        );
        assert!(!out.contains(KEY) && !out.contains(HEADER), "{out}");
    }
}

#[test]
fn an_ollama_url_ending_in_v1_says_to_remove_it() {
    let rt = runtime();
    let sim = rt.block_on(async { sim::spawn_on_free_port(Profile::default(), 1).unwrap() });
    let (code, out) = doctor_one("ollama", &format!("{}/v1", sim.base_url()), "sim-7b", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Ollama URL ends in /v1"), "{out}");
    assert!(out.contains("hint: remove `/v1` from base_url"), "{out}");
}

#[test]
fn a_missing_model_names_what_to_pull_and_what_is_there() {
    let rt = runtime();
    let sim = rt.block_on(async { sim::spawn_on_free_port(Profile::default(), 1).unwrap() });
    let (code, out) = doctor_one("ollama", &sim.base_url(), "llama3", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing model: model \"llama3\""), "{out}");
    assert!(out.contains("`ollama pull llama3`"), "{out}");
    assert!(out.contains("it offers: sim-7b"), "{out}");
    // An OpenAI-compatible server with one model answers for any name (llama.cpp does): only
    // a list of several can miss.
    let (url, _) = fixed_server(|_| {
        Some(response(
            "200 OK",
            "content-type: application/json\r\n",
            "{\"object\":\"list\",\"data\":[{\"id\":\"qwen\"},{\"id\":\"gemma\"}]}",
        ))
    });
    let (code, out) = doctor_one("openai", &url, "gpt-9", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("set model to one the server serves (it offers: qwen, gemma)"),
        "{out}"
    );
}

#[test]
fn a_401_points_at_the_key_and_never_shows_it() {
    let rt = runtime();
    let profile = Profile {
        api_key: Some(sim::Secret::new("right-key")),
        ..Profile::default()
    };
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 1).unwrap() });
    let (code, out) = doctor_one("openai", &sim.base_url(), "sim-7b", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unauthorized: GET /v1/models"), "{out}");
    assert!(out.contains("set api_key_file"), "{out}");
    let (code, out) = doctor_one(
        "openai",
        &sim.base_url(),
        "sim-7b",
        "api_key = \"wrong-key-123\"",
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("rejected the configured key"), "{out}");
    assert!(!out.contains("wrong-key-123"), "{out}");
    let (code, out) = doctor_one(
        "openai",
        &sim.base_url(),
        "sim-7b",
        "api_key = \"right-key\"",
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_redirect_is_reported_and_not_followed() {
    let (elsewhere, hits) = fixed_server(|_| Some(response("200 OK", "", "{\"models\":[]}")));
    let target = format!("{elsewhere}/api/tags");
    let (url, _) = fixed_server(move |_| {
        Some(response(
            "302 Found",
            &format!("location: {target}\r\n"),
            "",
        ))
    });
    let (code, out) = doctor_one("ollama", &url, "m", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("redirect: GET /api/tags"), "{out}");
    assert!(
        out.contains(&format!("answered 302 redirecting to {elsewhere}")),
        "{out}"
    );
    assert!(
        out.contains("hint: set base_url to the final address"),
        "{out}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn the_other_api_is_recognised() {
    let (url, _) = fixed_server(|path| {
        Some(if path == "/v1/models" {
            response(
                "200 OK",
                "content-type: application/json\r\n",
                "{\"object\":\"list\",\"data\":[{\"id\":\"qwen\"}]}",
            )
        } else {
            response(
                "404 Not Found",
                "content-type: application/json\r\n",
                "{\"detail\":\"Not Found\"}",
            )
        })
    });
    let (code, out) = doctor_one("ollama", &url, "qwen", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("wrong API: GET /api/tags"), "{out}");
    assert!(
        out.contains("speaks the OpenAI-compatible API: set provider = \"openai\""),
        "{out}"
    );
}

#[test]
fn a_server_that_never_answers_ends_at_the_budget() {
    let (url, hits) = fixed_server(|_| None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("slow", "ollama", &url, "m", "")]);
    let (code, out, err) = run(&cfg, &["doctor", "--timeout", "300ms"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("no answer"), "{out}");
    assert!(out.contains("budget 300ms per target"), "{out}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no retries");
}

#[test]
fn check_config_connect_runs_the_same_checks() {
    let rt = runtime();
    let sim = rt.block_on(async { sim::spawn_on_free_port(Profile::default(), 1).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = config(
        dir.path(),
        &[
            ("up", "ollama", &sim.base_url(), "sim-7b", ""),
            ("down", "ollama", &dead, "sim-7b", ""),
        ],
    );
    let (code, out, _) = run(&cfg, &["check-config"]);
    assert_eq!(code, 0, "without --connect nothing is contacted: {out}");
    let (code, out, err) = run(&cfg, &["check-config", "--connect", "--timeout", "1s"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.starts_with("config OK: 2 targets"), "{out}");
    assert!(out.contains("ok    up  ollama"), "{out}");
    assert!(out.contains("FAIL  down  ollama"), "{out}");
    assert!(out.contains("doctor: 1 of 2 targets healthy"), "{out}");

    // JSON: every stdout line parses, the configuration's first, then one per target.
    let (code, out, err) = run(
        &cfg,
        &[
            "check-config",
            "--connect",
            "--timeout",
            "1s",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 3, "{out}{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["targets"], 2);
    // An invalid configuration: the errors as JSON on stdout, positions included.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\nbogus = 1\n")).unwrap();
    let (code, out, err) = run(&cfg, &["check-config", "--format", "json"]);
    assert_eq!(code, 2, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["valid"], false);
    let e = &v["errors"][0];
    assert!(e["message"].as_str().unwrap().contains("bogus"), "{v}");
    assert!(e["line"].as_u64().unwrap() > 1 && e["column"] == 1, "{v}");
}

/// The daemon refuses an OpenTelemetry environment it cannot export with; check-config (the
/// unit's ExecStartPre) refuses it first, so a restart loop never starts.
#[test]
fn check_config_refuses_an_otlp_environment_the_daemon_would() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:4318\"\n";
    let cfg = config(
        dir.path(),
        &[("t", "ollama", "http://127.0.0.1:9", "m", "")],
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n{extra}")).unwrap();
    let check = |protocol: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelwatch"));
        cmd.args(["check-config", "-c"]).arg(&cfg);
        cmd.env_remove("OTEL_EXPORTER_OTLP_PROTOCOL");
        if let Some(p) = protocol {
            cmd.env("OTEL_EXPORTER_OTLP_PROTOCOL", p);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(check(None).0, Some(0), "{}", check(None).1);
    let (code, err) = check(Some("grpc"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"),
        "{err}"
    );
}

#[test]
fn compare_without_a_baseline_says_how_to_record_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &[("t", "ollama", "http://127.0.0.1:9", "m", "")],
    );
    let (code, _, err) = run(&cfg, &["compare", "--target", "t"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("target t has no baseline yet"), "{err}");
    assert!(
        err.contains(
            "hint: record one from the model as it serves now with `modelwatch \
                      baseline record --target t`"
        ),
        "{err}"
    );
}
