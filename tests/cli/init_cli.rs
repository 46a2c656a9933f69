//! `modelwatch init` as a new user meets it: a missing configuration points at it, it writes a
//! valid starter configuration (here for the simulator it detects), and never overwrites one
//! without `--force`.

use crate::common_verdict::Sims;
use modelwatch::sim::Profile;
use std::process::{Command, Output};

fn modelwatch(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .current_dir(dir)
        .env_remove("MODELWATCH_CONFIG")
        .output()
        .expect("run modelwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_missing_configuration_suggests_init() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["run"][..],
        &["check-config"],
        &["compare", "--target", "x"],
    ] {
        let out = modelwatch(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("no configuration at modelwatch.toml"),
            "{args:?}: {err}"
        );
        assert!(err.contains("modelwatch init"), "{args:?}: {err}");
    }
}

#[test]
fn init_writes_a_working_config_for_a_detected_server_and_never_overwrites() {
    let sims = Sims::of(vec![(Profile::builtin("healthy").unwrap(), 3)]);
    let dir = tempfile::tempdir().unwrap();
    let url = sims.url(0);
    let out = modelwatch(dir.path(), &["init", "--detect", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("found Ollama"),
        "{}",
        text(&out.stdout)
    );
    let config = std::fs::read_to_string(dir.path().join("modelwatch.toml")).unwrap();
    assert!(config.contains(&format!("base_url = \"{url}\"")));
    assert!(config.contains("model = \"sim-7b"), "{config}");
    assert!(dir.path().join("probes/core.toml").is_file());

    let out = modelwatch(dir.path(), &["check-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = modelwatch(dir.path(), &["run", "--samples", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A second init refuses; the file is untouched.
    let out = modelwatch(dir.path(), &["init", "--detect", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("modelwatch.toml")).unwrap(),
        config
    );
    // With --force and nothing listening, the simulator fallback replaces it.
    let out = modelwatch(
        dir.path(),
        &["init", "--force", "--detect", "http://127.0.0.1:9"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("modelwatch sim"));
    let replaced = std::fs::read_to_string(dir.path().join("modelwatch.toml")).unwrap();
    assert!(replaced.contains("base_url = \"http://127.0.0.1:11435\""));
    let out = modelwatch(dir.path(), &["check-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    sims.shutdown();
}

/// Detection reads a model list up to a bound: a server answering megabytes is not taken for a
/// model server (the read stops at 1 MiB), and init falls back to the simulator.
#[test]
fn a_huge_model_list_is_not_read_to_its_end() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let mut body = String::from("{\"models\":[");
            body.push_str(&"{\"name\":\"padding\"},".repeat(150_000));
            body.push_str("{\"name\":\"m\"}]}");
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = modelwatch(dir.path(), &["init", "--detect", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("found Ollama"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("modelwatch sim"),
        "{}",
        text(&out.stdout)
    );
}
