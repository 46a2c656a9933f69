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
            },
            Default::default(),
            Duration::from_secs(5),
        )
        .unwrap()
    };
    assert!(sentry(None).deliver(&note()).await.is_err());
    sentry(Some(ca()))
        .deliver(&note())
        .await
        .expect("trusted through ca_file");
    let got = lines(&out);
    let paths: Vec<&str> = got.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/hook", "/api/7/envelope/"], "{got:?}");
}
