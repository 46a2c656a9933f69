//! The daemon's HTTP endpoint and secrets, through the real `modelwatch daemon` process at `-vv`:
//! loopback by default; the state-changing route needs the bearer token (401 without it, with
//! a wrong one, a wrong scheme, a prefix or an extension of it; 201 with it) and other methods
//! are refused; a body over the limit is 413; and the canary secrets (API key, header value,
//! webhook secret, Sentry DSN key, bearer token) appear neither in `/api/v1/status`, `/metrics`,
//! `/readyz`, the answers of the API, the daemon's trace-level log nor its database, although
//! each was really used (the simulator requires the key, webhooks arrive signed, a silence was
//! created with the token).

use crate::daemon_proc;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;
use daemon_proc::{free_port, runtime, server_config};
use modelwatch::sim::{self, Profile};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-canary-7f3a9c0e55d14b2a";
const HEADER: &str = "hdr-canary-1c2d3e4f5a6b7c8d";
const WEBHOOK_SECRET: &str = "whsec-canary-0a1b2c3d4e5f6071";
const DSN_KEY: &str = "dsnkeycanary94e1b7c3a2f0d8e6";
const TOKEN: &str = "tok-canary-5e6f7a8b9c0d1e2f";

#[test]
fn the_endpoint_binds_loopback_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        "[[target]]\nname = \"t\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:11434\"\nmodel = \"m\"\nsuites = [\"core\"]\n",
    )
    .unwrap();
    let loaded = modelwatch::config::load(&cfg, &|_: &str| None).unwrap();
    assert!(loaded.server.listen.ip().is_loopback());
    assert_eq!(loaded.server.listen.to_string(), "127.0.0.1:9464");
    assert!(loaded.server.token.is_none());
}

type Hits = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;

/// Answers 200 to anything and records it: the webhook and the Sentry ingest endpoint.
async fn receiver() -> (u16, Hits) {
    let hits: Hits = Arc::default();
    let log = hits.clone();
    let app = Router::new().fallback(any(
        move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push((uri.to_string(), headers, body.to_vec()));
                "{}"
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

#[test]
fn tokens_limits_and_no_secret_in_any_output() {
    let rt = runtime(1);
    let mut profile = Profile::from_toml(&format!("api_key = \"{KEY}\"\n")).unwrap();
    profile.latency_scale = 0.0;
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 5).unwrap() });
    let (rport, hits) = rt.block_on(receiver());
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(
        probes.join("s.toml"),
        "suite = \"s\"\n[[probe]]\nid = \"a\"\nprompt = \"Explain secrets.\"\n",
    )
    .unwrap();
    let db = dir.path().join("m.db");
    let port = free_port();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        server_config(&probes, &db, port)
            + &format!(
                r#"token = "{TOKEN}"
[alerts.webhook]
url = "http://127.0.0.1:{rport}/hook"
secret = "{WEBHOOK_SECRET}"
[alerts.sentry]
dsn = "http://{DSN_KEY}@127.0.0.1:{rport}/42"
[[target]]
name = "sim"
provider = "openai"
base_url = "{url}"
model = "sim-7b"
api_key = "{KEY}"
headers = {{ x-canary = "{HEADER}" }}
suites = ["s"]
samples = 1
interval = "10s"
jitter = "0s"
pin = "{pin}"
"#,
                url = sim.base_url(),
                pin = "0".repeat(64),
            ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let log_path = dir.path().join("daemon.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["daemon", "-vv", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::fs::File::create(dir.path().join("daemon.out")).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut outputs: Vec<(String, String)> = Vec::new();
    let run = || {
        rt.block_on(async {
            let client = reqwest::Client::new();
            let get = |path: &str| {
                let c = client.clone();
                let url = format!("{base}{path}");
                async move {
                    match c.get(url).send().await {
                        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                        Err(_) => (0, String::new()),
                    }
                }
            };
            // A measured round and both alerts delivered (pin: firing, to webhook and Sentry).
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                let (_, status) = get("/api/v1/status").await;
                let v: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
                let measured = v["targets"][0]["last_round"]["errors"] == 0
                    && v["targets"][0]["rounds"].as_u64().unwrap_or(0) >= 1;
                let delivered = v["sinks"]
                    .as_array()
                    .is_some_and(|s| s.len() == 3 && s.iter().all(|k| k["delivered"] == 1));
                if measured && delivered {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no measured round / delivery: {status}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let url = format!("{base}/api/v1/silence");
            let body = r#"{"target":"sim","for":"1h","reason":"maintenance"}"#;
            let post = |auth: Option<String>, body: Vec<u8>| {
                let c = client.clone();
                let url = url.clone();
                async move {
                    let mut req = c.post(url).body(body);
                    if let Some(a) = auth {
                        req = req.header("authorization", a);
                    }
                    let r = req.send().await.unwrap();
                    (r.status().as_u16(), r.text().await.unwrap_or_default())
                }
            };
            let refused = [
                None,
                Some(format!("Bearer {}", "x".repeat(TOKEN.len()))),
                Some("Bearer ".to_string()),
                Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
                Some(format!("Bearer {TOKEN}x")),
                Some(format!("Basic {TOKEN}")),
                Some(format!("bearer{TOKEN}")),
                Some(TOKEN.to_string()),
            ];
            for auth in refused {
                let (code, text) = post(auth.clone(), body.as_bytes().to_vec()).await;
                assert_eq!(code, 401, "{auth:?}: {text}");
                outputs.push((format!("401 {auth:?}"), text));
            }
            let (code, text) =
                post(Some(format!("Bearer {TOKEN}")), body.as_bytes().to_vec()).await;
            assert_eq!(code, 201, "{text}");
            outputs.push(("201".into(), text));
            // Over the limit (16 KiB): 413, with or without the token, in JSON like every
            // other API error.
            for auth in [Some(format!("Bearer {TOKEN}")), None] {
                let (code, text) = post(auth, vec![b' '; 17 * 1024]).await;
                assert_eq!(code, 413);
                let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
                assert!(
                    v["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("request body")),
                    "{v}"
                );
            }
            // No other method changes anything.
            for method in [
                reqwest::Method::DELETE,
                reqwest::Method::PUT,
                reqwest::Method::PATCH,
            ] {
                let r = client
                    .request(method.clone(), &url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 405, "{method}");
            }
            for path in ["/api/v1/status", "/metrics", "/readyz", "/healthz", "/"] {
                let (code, text) = get(path).await;
                assert_eq!(code, 200, "{path}");
                outputs.push((path.to_string(), text));
            }
        });
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .status();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Err(e) = outcome {
        eprintln!("{log}");
        std::panic::resume_unwind(e);
    }
    assert_eq!(status.code(), Some(0));

    // The secrets were really used.
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "not at debug level"
    );
    let hits = hits.lock().unwrap().clone();
    let webhook = hits.iter().find(|h| h.0 == "/hook").expect("no webhook");
    assert!(
        webhook.1.contains_key("x-modelwatch-signature"),
        "webhook not signed"
    );
    let sentry = hits
        .iter()
        .find(|h| h.0.starts_with("/api/42/"))
        .expect("no Sentry event");
    let auth = sentry
        .1
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(auth.contains(DSN_KEY), "Sentry did not use the DSN key");

    outputs.push(("daemon log (-vv)".into(), log));
    outputs.push((
        "daemon stdout".into(),
        std::fs::read_to_string(dir.path().join("daemon.out")).unwrap_or_default(),
    ));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("m.db") {
            let bytes = std::fs::read(&path).unwrap();
            outputs.push((name, String::from_utf8_lossy(&bytes).to_string()));
        }
    }
    let mut bytes = 0;
    for (what, text) in &outputs {
        bytes += text.len();
        for secret in [KEY, HEADER, WEBHOOK_SECRET, DSN_KEY, TOKEN] {
            assert!(
                !text.contains(secret),
                "{what} contains the secret {secret}"
            );
        }
    }
    println!(
        "daemon secrets: {} outputs, {} KiB searched, no occurrence of 5 secrets",
        outputs.len(),
        bytes / 1024
    );
}
