//! `modelwatch run` against a server that is down answers at once with one line naming the
//! cause, instead of retrying every request: the fingerprint finds the port closed and no probe
//! request is sent.

use modelwatch::store::{SampleQuery, Store};
use std::process::Command;

#[test]
fn run_against_a_dead_port_fails_fast_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let probes = std::fs::canonicalize("probes").unwrap();
    let db = dir.path().join("m.db");
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[[target]]
name = "chat"
provider = "openai"
base_url = "http://127.0.0.1:{port}/v1"
model = "m"
suites = ["core", "json", "tasks", "format", "multilingual"]
"#,
            probes = probes.display().to_string(),
            db = db.display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some(
            format!(
                "error: target chat: connection refused at http://127.0.0.1:{port}/v1 — is the \
                 server running?"
            )
            .as_str()
        ),
        "{stderr}"
    );
    // The fingerprint's one connection attempt was the only one: a server that cannot be
    // reached is not tried again at the start of a round (retries = 2 would say "after 3").
    assert!(!stderr.contains("attempts)"), "{stderr}");
    assert!(stderr.contains("could not connect"), "{stderr}");
    // No table of errors: a count of what was stored, then the cause.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let samples = Store::open(&db)
        .unwrap()
        .samples(&SampleQuery {
            target: Some("chat".into()),
            skip_text: true,
            ..SampleQuery::default()
        })
        .unwrap();
    assert!(samples.len() > 100, "{} samples", samples.len());
    assert!(stdout.contains(&format!("stored {} samples", samples.len())));
    for s in &samples {
        let e = s.error.as_ref().unwrap();
        assert_eq!(e.kind, modelwatch::sample::ErrorKind::Connect);
        assert!(e.message.contains("Connection refused"), "{e}");
        assert_eq!(s.attempts, 0, "not sent: {e}");
    }
}
