//! `ca_file` on the webhook and Sentry sinks against a real HTTPS receiver whose certificate a
//! private CA issued: without the CA the TLS handshake fails (a transient, visible error, and
//! the receiver gets nothing); with it the notification arrives.

use crate::sinks_common;
use modelwatch::alert::sentry::SentrySink;
use modelwatch::alert::webhook::WebhookSink;
use modelwatch::alert::{AlertKey, AlertSink, Notification, NotificationKind, Severity};
use modelwatch::config::{CaFile, Secret, Sentry, Webhook, WebhookFormat};
use sinks_common::{lines, start_receiver, venv_python};
use std::path::Path;
use std::time::Duration;

fn ca() -> CaFile {
    let path = Path::new("tests/fixtures/tls/ca.pem").to_path_buf();
    CaFile {
        pem: std::fs::read(&path).unwrap(),
        path,
    }
}

fn note() -> Notification {
    Notification {
        kind: NotificationKind::Firing,
        key: AlertKey::new("chat", "refusal_rate"),
        severity: Severity::Warning,
        incident: "chat/refusal_rate#1".into(),
        at_ms: 1_764_000_000_000,
        evidence: None,
        muted: false,
    }
}

#[tokio::test]
async fn sinks_reach_a_receiver_behind_a_private_ca_only_with_its_ca_file() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("requests.jsonl");
    let receiver = start_receiver(
        &py,
        "https_receiver.py",
        &[
            "tests/fixtures/tls/server.pem",
            "tests/fixtures/tls/server.key",
            out.to_str().unwrap(),
        ],
    );
    let base = format!("https://127.0.0.1:{}", receiver.port);
    let webhook = |ca_file| {
        WebhookSink::new(
            Webhook {
                url: format!("{base}/hook"),
                secret: Some(Secret::new("0123456789abcdef0123")),
                format: WebhookFormat::Json,
                ca_file,
                tls_roots: Default::default(),
            },
            Duration::from_secs(5),
        )
        .unwrap()
    };
    let e = webhook(None)
        .deliver_keyed("k1", &note())
        .await
        .unwrap_err();
    assert!(!e.permanent, "a TLS failure is retried: {e}");
    assert!(
        e.to_string().contains("TLS handshake failed") && e.to_string().contains("ca_file"),
        "names TLS and what to set: {e}"
    );
    assert!(lines(&out).is_empty(), "nothing reached the receiver");
    webhook(Some(ca()))
        .deliver_keyed("k2", &note())
        .await
        .expect("trusted through ca_file");

    let sentry = |ca_file| {
        SentrySink::new(
            Sentry {
                dsn: Secret::new(format!("https://publickey@127.0.0.1:{}/7", receiver.port)),
                environment: "test".into(),
                release: "r".into(),
                monitor: "m".into(),
                ca_file,
                tls_roots: Default::default(),
            },
            Default::default(),
            Duration::from_secs(5),
        )
        .unwrap()
    };
    let e = sentry(None).deliver(&note()).await.unwrap_err();
    assert!(e.to_string().contains("TLS handshake failed"), "{e}");
    sentry(Some(ca()))
        .deliver(&note())
        .await
        .expect("trusted through ca_file");
    let got = lines(&out);
    let paths: Vec<&str> = got.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/hook", "/api/7/envelope/"], "{got:?}");
}

/// The HTTPS receiver answering as an OpenAI-compatible server serving model `m`; requests
/// are logged to `out`.
fn model_server(py: &Path, dir: &Path, out: &Path) -> sinks_common::Receiver {
    let answers = dir.join("answers.json");
    std::fs::write(
        &answers,
        serde_json::json!({
            "/v1/models": {"object": "list", "data": [{"id": "m", "object": "model"}]},
            "/v1/chat/completions": {
                "id": "c1", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "hello"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1}
            }
        })
        .to_string(),
    )
    .unwrap();
    start_receiver(
        py,
        "https_receiver.py",
        &[
            "tests/fixtures/tls/server.pem",
            "tests/fixtures/tls/server.key",
            out.to_str().unwrap(),
            answers.to_str().unwrap(),
        ],
    )
}

#[tokio::test]
async fn a_target_behind_a_private_ca_is_reached_only_with_its_ca_file() {
    use modelwatch::probe::{GenParams, ProbeInput};
    use modelwatch::provider::tls::{TlsRoots, Trust};
    use modelwatch::provider::{Api, ClientConfig, CompletionRequest, ProviderKind};
    use modelwatch::sample::ErrorKind;
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("requests.jsonl");
    let server = model_server(&py, dir.path(), &out);
    let client = |tls: Trust| {
        modelwatch::provider::build_client(ClientConfig {
            kind: ProviderKind::OpenAi,
            api: Api::Chat,
            base_url: format!("https://127.0.0.1:{}", server.port),
            model: "m".into(),
            stream: false,
            retries: 2,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(10),
            tls,
            ..ClientConfig::default()
        })
        .unwrap()
    };
    let request = CompletionRequest {
        input: ProbeInput::Prompt("hi".into()),
        params: GenParams::default(),
        stream: false,
    };

    // The bundled web roots do not know the private CA: an availability failure naming TLS
    // and what to set, not retried (the certificate will not change), nothing received.
    let e = client(Trust::default())
        .complete(&request)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect, "{e:?}");
    assert!(e.unreachable(), "availability, not quality: {e:?}");
    assert!(
        e.message.contains("TLS handshake failed") && e.message.contains("ca_file"),
        "{e:?}"
    );
    assert_eq!(
        e.attempts, 1,
        "an untrusted certificate is not retried: {e:?}"
    );
    assert!(lines(&out).is_empty(), "nothing reached the server");

    let trusted = Trust {
        roots: TlsRoots::Bundled,
        extra_pem: Some(ca().pem),
    };
    let done = client(trusted).complete(&request).await.expect("ca_file");
    assert_eq!(done.text, "hello");
    let got = lines(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["path"], "/v1/chat/completions");
}

/// A configuration with one OpenAI-compatible target at `url` and the `extra` keys.
fn target_config(dir: &Path, url: &str, extra: &str) -> std::path::PathBuf {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(
        probes.join("mini.toml"),
        "suite = \"mini\"\n[[probe]]\nid = \"hello\"\nprompt = \"Say hello.\"\n",
    )
    .unwrap();
    let path = dir.join("modelwatch.toml");
    std::fs::write(
        &path,
        format!(
            "probes_dir = \"probes\"\n[[target]]\nname = \"t\"\nprovider = \"openai\"\n\
             base_url = \"{url}\"\nmodel = \"m\"\nsuites = [\"mini\"]\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

/// `modelwatch doctor` on `cfg` with `$SSL_CERT_FILE` set to `cert_file`: exit code, output.
fn doctor(cfg: &Path, cert_file: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["doctor", "--format", "json", "--timeout", "10s", "-c"])
        .arg(cfg)
        .env("SSL_CERT_FILE", cert_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `tls_roots = "system"` trusts the host's store, here `$SSL_CERT_FILE` holding the private
/// CA (the variable is how a host's store is pointed elsewhere, as for curl and OpenSSL): the
/// daemon's own process reaches the target with it, and the default bundled roots do not.
/// An unusable store is a configuration error at the line of `tls_roots`.
#[test]
fn system_roots_are_the_hosts_store() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("requests.jsonl");
    let server = model_server(&py, dir.path(), &out);
    let url = format!("https://127.0.0.1:{}", server.port);
    let store = std::fs::canonicalize("tests/fixtures/tls/ca.pem").unwrap();

    let cfg = target_config(dir.path(), &url, "tls_roots = \"system\"");
    let (code, text) = doctor(&cfg, &store);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"ok\":true"), "{text}");
    assert!(
        lines(&out).iter().any(|l| l["path"] == "/v1/models"),
        "{:?}",
        lines(&out)
    );

    let cfg = target_config(dir.path(), &url, "");
    let (code, text) = doctor(&cfg, &store);
    assert_eq!(code, 3, "unreachable is availability: {text}");
    assert!(text.contains("TLS") && text.contains("tls_roots"), "{text}");

    let cfg = target_config(dir.path(), &url, "tls_roots = \"system\"");
    let (code, text) = doctor(&cfg, &dir.path().join("absent.pem"));
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("modelwatch.toml:8:") && text.contains("tls_roots"),
        "{text}"
    );
}
