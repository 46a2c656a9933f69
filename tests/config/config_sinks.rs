//! `[alerts.webhook]`, `[alerts.sentry]` and `[telemetry.otlp]`: every key, the environment
//! fallbacks (`SENTRY_DSN`, `OTEL_EXPORTER_OTLP_*`), and secrets kept out of debug output.

use modelwatch::config::{self, WebhookFormat};
use modelwatch::diag::render_all;
use std::path::Path;
use std::time::Duration;

#[test]
fn every_sink_key_is_read_and_secrets_stay_hidden() {
    let c = config::load(Path::new("tests/fixtures/valid/sinks.toml"), &|_: &str| {
        None
    })
    .unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let w = c.alerts.webhook.as_ref().unwrap();
    assert_eq!(w.url, "https://hooks.example.com/modelwatch");
    assert_eq!(w.format, WebhookFormat::Slack);
    assert_eq!(
        w.secret.as_ref().unwrap().expose(),
        "0123456789abcdef0123456789abcdef"
    );
    let s = c.alerts.sentry.as_ref().unwrap();
    assert_eq!(s.dsn.expose(), "https://publickey@o1.ingest.example.com/42");
    assert_eq!(
        (s.environment.as_str(), s.release.as_str()),
        ("staging", "modelwatch@1.2.3")
    );
    let o = c.telemetry.otlp.as_ref().unwrap();
    assert_eq!(o.endpoint, "http://127.0.0.1:4318");
    assert_eq!(o.timeout, Duration::from_secs(5));
    assert_eq!(o.headers[0].0, "authorization");
    let debug = format!("{c:?}");
    for secret in ["0123456789abcdef0123", "publickey", "otlp-token"] {
        assert!(!debug.contains(secret), "{secret} printed");
    }
}

#[test]
fn environment_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(
        &path,
        "[alerts.sentry]\n\n[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"chat\"]\n",
    )
    .unwrap();
    let env = |k: &str| match k {
        "SENTRY_DSN" => Some("http://k@127.0.0.1:9/3".to_string()),
        "SENTRY_ENVIRONMENT" => Some("canary".to_string()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_string()),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=abc%20def,x-team=ml".to_string()),
        _ => None,
    };
    let c = config::load(&path, &env).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let s = c.alerts.sentry.unwrap();
    assert_eq!(s.dsn.expose(), "http://k@127.0.0.1:9/3");
    assert_eq!(s.environment, "canary");
    assert!(s.release.starts_with("modelwatch@"));
    let o = c.telemetry.otlp.unwrap();
    assert_eq!(o.endpoint, "http://collector:4318");
    let h: Vec<(&str, &str)> = o
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(h, [("api-key", "abc def"), ("x-team", "ml")]);

    // Without any DSN, [alerts.sentry] is an error that says where to put one.
    let err = config::load(&path, &|_: &str| None).unwrap_err();
    let text = render_all(&err);
    assert!(text.contains("[alerts.sentry] has no DSN"), "{text}");
    assert!(text.contains("SENTRY_DSN"), "{text}");
}

#[test]
fn otel_variables_and_the_sentry_credential_file() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("sentry-dsn"), "http://filekey@127.0.0.1:9/5\n").unwrap();
    let path = dir.path().join("m.toml");
    let target = "[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"chat\"]\n";
    std::fs::write(
        &path,
        format!("[alerts.sentry]\ndsn_file = \"sentry-dsn\"\n\n{target}"),
    )
    .unwrap();
    let creds_dir = creds.display().to_string();
    let vars = |extra: &'static [(&'static str, &'static str)]| {
        let creds_dir = creds_dir.clone();
        move |k: &str| {
            if k == "CREDENTIALS_DIRECTORY" {
                return Some(creds_dir.clone());
            }
            extra
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = config::load(
        &path,
        &vars(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/custom/traces",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]),
    )
    .unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(
        c.alerts.sentry.unwrap().dsn.expose(),
        "http://filekey@127.0.0.1:9/5"
    );
    let o = c
        .telemetry
        .otlp
        .expect("a signal's endpoint alone turns the exporter on");
    assert_eq!(o.traces_url(), "http://traces:4318/custom/traces");
    assert_eq!(o.metrics_url(), "http://127.0.0.1:4318/v1/metrics");
    assert_eq!(o.timeout, Duration::from_millis(2500));

    // OTEL_SDK_DISABLED wins over the endpoint variables and the table.
    let off = vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ("OTEL_SDK_DISABLED", "true"),
    ]);
    assert!(config::load(&path, &off).unwrap().telemetry.otlp.is_none());
    std::fs::write(
        &path,
        format!("[alerts.sentry]\ndsn_file = \"sentry-dsn\"\n[telemetry.otlp]\n\n{target}"),
    )
    .unwrap();
    assert!(config::load(&path, &off).unwrap().telemetry.otlp.is_none());
    let on = config::load(
        &path,
        &vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]),
    )
    .unwrap()
    .telemetry
    .otlp
    .unwrap();
    assert_eq!(on.traces_url(), "http://collector:4318/v1/traces");
    assert_eq!(on.timeout, Duration::from_secs(10));
}

/// Per-signal header variables override the general one key by key; the table's keys win
/// over both; every `%XX` is decoded.
#[test]
fn otlp_headers_per_signal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(
        &path,
        "[telemetry.otlp]\nheaders = { x-team = \"from-file\" }\n\n[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"chat\"]\n",
    )
    .unwrap();
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=general,x-team=env".to_string()),
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS" => {
            Some("api-key=tr%C3%A4ces%3D%2C%25,x-team=env-traces".to_string())
        }
        _ => None,
    };
    let c = config::load(&path, &env).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let o = c.telemetry.otlp.unwrap();
    let flat = |h: &[(String, modelwatch::config::Secret)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        v.sort();
        v
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        flat(&o.traces_headers),
        pairs(&[("api-key", "träces=,%"), ("x-team", "from-file")])
    );
    assert_eq!(
        flat(&o.metrics_headers),
        pairs(&[("api-key", "general"), ("x-team", "from-file")])
    );
    assert_eq!(flat(&o.headers), flat(&o.metrics_headers));
}

#[test]
fn a_whsec_webhook_secret_must_decode_and_the_error_quotes_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    let target = "[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"chat\"]\n";
    let write = |secret: &str| {
        std::fs::write(
            &path,
            format!(
                "[alerts.webhook]\nurl = \"https://hooks.example.com/x\"\nsecret = \"{secret}\"\n\n{target}"
            ),
        )
        .unwrap();
    };
    write("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let c = config::load(&path, &|_: &str| None).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert!(c.alerts.webhook.unwrap().secret.is_some());
    write("whsec_MfKQ9r8GKYqr!wjUPD8ILPZIo2LaLaSw");
    let text = render_all(&config::load(&path, &|_: &str| None).unwrap_err());
    assert!(text.contains("m.toml:3:"), "{text}");
    assert!(
        text.contains("not a valid signing secret") && text.contains("not base64"),
        "{text}"
    );
    assert!(text.contains("openssl rand -base64 32"), "{text}");
    assert!(
        !text.contains("MfKQ9r8GKYqr"),
        "the secret is quoted: {text}"
    );
}

#[test]
fn ca_file_is_read_and_checked_where_it_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    let target = "[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"chat\"]\n";
    let ca = std::fs::read(Path::new("tests/fixtures/tls/ca.pem")).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    // Well-formed PEM whose DER is not a certificate: the first base64 line (the DER's outer
    // SEQUENCE header) zeroed, so only the TLS stack's parser can refuse it.
    let text = String::from_utf8(ca.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1] = "A".repeat(lines[1].len());
    std::fs::write(dir.path().join("broken.pem"), lines.join("\n") + "\n").unwrap();
    let write = |file: &str| {
        std::fs::write(
            &path,
            format!(
                "[alerts.webhook]\nurl = \"https://hooks.example.com/x\"\nca_file = \"{file}\"\n\n[alerts.sentry]\ndsn = \"https://k@sentry.internal/3\"\nca_file = \"{file}\"\n\n{target}"
            ),
        )
        .unwrap();
    };
    write("ca.pem");
    let c = config::load(&path, &|_: &str| None).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let w = c.alerts.webhook.unwrap().ca_file.unwrap();
    assert_eq!(w.pem, ca, "relative to the configuration's directory");
    assert!(c.alerts.sentry.unwrap().ca_file.is_some());

    for (file, want) in [
        ("missing.pem", "cannot read ca_file"),
        ("junk.pem", "holds no PEM certificate"),
        ("broken.pem", "a certificate is not valid"),
    ] {
        write(file);
        let text = render_all(&config::load(&path, &|_: &str| None).unwrap_err());
        assert!(text.contains(want), "{file}: {text}");
        assert!(text.contains(file), "{file}: {text}");
        // Both tables are checked, each error at its own line.
        assert!(
            text.contains("m.toml:3:") && text.contains("m.toml:7:"),
            "{file}: {text}"
        );
        assert!(text.contains("[alerts.webhook]") && text.contains("[alerts.sentry]"));
    }
}

#[test]
fn tls_roots_and_a_targets_ca_file_are_checked_where_they_are_set() {
    use modelwatch::config::TlsRoots;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    let ca = std::fs::read(Path::new("tests/fixtures/tls/ca.pem")).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let write = |target_tls: &str, sink_roots: &str| {
        std::fs::write(
            &path,
            format!(
                "[alerts.webhook]\nurl = \"https://hooks.example.com/x\"\ntls_roots = \"{sink_roots}\"\n\n\
                 [alerts.sentry]\ndsn = \"https://k@sentry.internal/3\"\ntls_roots = \"{sink_roots}\"\n\n\
                 [[target]]\nname = \"a\"\nprovider = \"openai\"\nbase_url = \"https://10.0.0.1:8000\"\n\
                 model = \"m\"\nsuites = [\"chat\"]\n{target_tls}\n"
            ),
        )
        .unwrap();
    };
    let load = || config::load(&path, &|_: &str| None);

    write("ca_file = \"ca.pem\"\ntls_roots = \"both\"", "both");
    let c = load().unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let t = &c.targets[0];
    assert_eq!(t.tls_roots, TlsRoots::Both);
    assert_eq!(
        t.ca_file.as_ref().unwrap().pem,
        ca,
        "relative to the configuration"
    );
    assert_eq!(t.trust().extra_pem.as_deref(), Some(&ca[..]));
    assert_eq!(c.alerts.webhook.unwrap().tls_roots, TlsRoots::Both);
    assert_eq!(c.alerts.sentry.unwrap().tls_roots, TlsRoots::Both);

    // Unset: the bundled roots alone, as before the settings existed.
    write("", "bundled");
    let c = load().unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(c.targets[0].tls_roots, TlsRoots::Bundled);
    assert!(c.targets[0].ca_file.is_none());

    write("ca_file = \"junk.pem\"\ntls_roots = \"native\"", "os");
    let text = render_all(&load().unwrap_err());
    for (line, want) in [
        ("m.toml:3:", "unknown `tls_roots` `os` in [alerts.webhook]"),
        ("m.toml:7:", "unknown `tls_roots` `os` in [alerts.sentry]"),
        ("m.toml:15:", "ca_file `"),
        ("m.toml:16:", "unknown `tls_roots` `native` in [[target]]"),
    ] {
        assert!(text.contains(line) && text.contains(want), "{want}: {text}");
    }
    assert!(text.contains("holds no PEM certificate"), "{text}");
    assert!(
        text.contains("\"bundled\""),
        "says what is expected: {text}"
    );
}
