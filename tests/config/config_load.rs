//! Loading real files: every key of a full configuration, the starter suites through the
//! example configuration, and the `check-config` command end to end.

use modelwatch::config::{self, Api, Provider};
use modelwatch::diag::render_all;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn env(name: &str) -> Option<String> {
    match name {
        "MODEL_HOST" => Some("http://127.0.0.1:11434".into()),
        _ => None,
    }
}

#[test]
fn full_config_sets_every_key() {
    let loaded = config::load_with_suites(Path::new("tests/fixtures/valid/full.toml"), &env)
        .unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let c = &loaded.config;
    let dir = Path::new("tests/fixtures/valid");
    assert_eq!(c.storage.path, dir.join("data/watch.db"));
    assert_eq!(c.storage.raw_text_retention, Duration::from_secs(86_400));
    assert_eq!(c.storage.sample_retention, Duration::from_secs(30 * 86_400));
    assert_eq!(c.server.listen.to_string(), "[::1]:9999");
    assert_eq!(c.probes_dir, dir.join("probes"));

    let local = &c.targets[0];
    assert_eq!(local.name, "local");
    assert_eq!(local.provider, Provider::Ollama);
    assert_eq!(local.base_url, "http://127.0.0.1:11434");
    assert_eq!(local.api, Api::Chat);
    assert_eq!(local.samples, Some(5));
    assert_eq!(local.interval, Duration::from_secs(5400));
    assert_eq!(
        local.baseline.as_deref(),
        Some(dir.join("baselines/local.json").as_path())
    );
    assert_eq!(local.request_timeout, Duration::from_secs(60));
    assert_eq!(local.connect_timeout, Duration::from_secs(2));
    assert_eq!(local.first_byte_timeout, Duration::from_secs(20));
    assert_eq!((local.retries, local.max_concurrency), (0, 1));
    assert!(!local.stream);
    assert_eq!(local.max_response_bytes, 65_536);
    assert_eq!(local.params.temperature, Some(1.0));
    assert_eq!(local.params.top_p, Some(0.9));
    assert_eq!(local.params.max_tokens, Some(128));
    assert_eq!(local.params.seed, Some(7));
    assert_eq!(local.params.stop.as_deref(), Some(&["</s>".to_owned()][..]));

    let base = &c.targets[1];
    assert_eq!(base.provider, Provider::OpenAi);
    assert_eq!(base.api, Api::Completion);
    assert_eq!(base.base_url, "https://llm.example.com:8443/prefix");
    assert_eq!(base.model, "mistral-7b");
    assert_eq!(
        base.api_key.as_ref().map(|k| k.expose()),
        Some("sk-valid-fixture")
    );
    assert_eq!(base.max_response_bytes, 1 << 20);
    let headers: Vec<(&str, &str)> = base
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert!(headers.contains(&("X-Team", "ml")));
    assert!(headers.contains(&("X-Literal", "${not-expanded}")));

    // Suites: each file once, in order of first reference, with probe settings resolved.
    let names: Vec<&str> = loaded.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["mini", "chat"]);
    let local_suites: Vec<&str> = loaded
        .target_suites(local)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(local_suites, ["mini", "chat"]);
    assert_eq!(loaded.target_suites(base).count(), 1);
    let chat = &loaded.suites[1].probes[0];
    assert_eq!(chat.params.max_tokens, Some(16));
    assert_eq!(chat.params.temperature, Some(0.3));
    assert_eq!(local.params_for(&chat.params).seed, Some(7));
    assert_eq!(local.samples_for(chat.samples), 5);
    assert_eq!(base.samples_for(chat.samples), 2);
}

#[test]
fn example_config_and_starter_suites_are_valid() {
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("candidate.key"), "sk-example\n").unwrap();
    let creds_dir = creds.path().display().to_string();
    let env = move |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| creds_dir.clone());
    let loaded = config::load_with_suites(Path::new("modelwatch.example.toml"), &env)
        .unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(loaded.config.targets.len(), 2);
    assert_eq!(loaded.suites.len(), 3);
    assert_eq!(loaded.config.targets[0].base_url, "http://127.0.0.1:11434");
    assert_eq!(
        loaded.config.targets[1]
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("sk-example")
    );
}

fn check_config(config: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["check-config", "--config", config])
        .env_remove("MODELWATCH_CONFIG")
        .env("MODEL_HOST", "http://127.0.0.1:11434")
        .output()
        .expect("run modelwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_reports_ok_with_a_summary() {
    let (code, stdout, stderr) = check_config("tests/fixtures/valid/full.toml");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "config OK: 2 targets, 2 suites, 2 probes\n");
    // The fixture holds a literal header value; a checkout readable by others is warned about
    // (whether it is depends on the umask of the checkout).
    assert!(
        stderr.is_empty()
            || stderr.starts_with("warning: ")
                && stderr.contains("chmod 600 tests/fixtures/valid/full.toml")
                && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn check_config_prints_every_error_and_exits_2() {
    let (code, stdout, stderr) =
        check_config("tests/fixtures/invalid/broken-suite-and-config.toml");
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    let expected =
        std::fs::read_to_string("tests/fixtures/invalid/broken-suite-and-config.expected").unwrap();
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.ends_with("not valid: 3 errors\n"), "{stderr}");
}

#[test]
fn check_config_names_a_missing_file_and_suggests_the_flag() {
    let (code, _, stderr) = check_config("does/not/exist.toml");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read configuration file `does/not/exist.toml`"),
        "{stderr}"
    );
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn check_config_never_prints_a_literal_secret() {
    let (code, stdout, stderr) = check_config("tests/fixtures/invalid/secret-on-error-line.toml");
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid header name `X Bad`"), "{stderr}");
    assert!(
        !stderr.contains("sk-canary") && !stdout.contains("sk-canary"),
        "{stderr}"
    );
}
