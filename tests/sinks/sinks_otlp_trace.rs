//! OTLP traces joined by a traced model server, and metrics on the export interval: the
//! requests of a round carry `traceparent` with the round's trace id and their own span id,
//! and the exported trace has a root round span with the request spans under it.

use crate::sinks_common;
use modelwatch::config::{Otlp, Secret};
use modelwatch::daemon::{Options, state::Shared};
use modelwatch::sim::{self, Profile};
use modelwatch::telemetry::otlp::{ExportSettings, OtlpExporter, resource};
use serde_json::Value;
use sinks_common::{lines, loaded, poll, run_daemon, start_receiver, venv_python};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A TCP proxy in front of `upstream` that keeps every `traceparent` header sent through it:
/// it stands for a model server that joins its callers' traces.
async fn traced_proxy(upstream: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let mut text = String::new();
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    // Complete header lines only; a split line waits for the next read.
                    while let Some(end) = text.find("\r\n") {
                        let line: String = text.drain(..end + 2).collect();
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("traceparent:") {
                            keep.lock().unwrap().push(v.trim().to_string());
                        }
                    }
                }
            });
        }
    });
    (url, seen)
}

fn spans(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .filter(|i| i["path"] == "/v1/traces")
        .flat_map(|t| {
            t["body"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_server_sees_the_round_trace_in_traceparent() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let receiver = start_receiver(&py, "otlp_receiver.py", &[out.to_str().unwrap()]);
    let sim = sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 4).unwrap();
    let (proxy, seen) = traced_proxy(sim.addr()).await;
    let extra = format!(
        "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{}\"\n",
        receiver.port
    );
    let mut l = loaded(dir.path(), &["a"], &extra, false);
    l.config.targets[0].base_url = proxy;
    l.config.targets[0].model = "sim-7b".into();
    let outputs = modelwatch::daemon::outputs::from_config(&l.config).unwrap();
    let options = Options {
        sinks: outputs.sinks,
        observers: outputs.observers,
        ..Options::default()
    };
    let (_tx, rx) = mpsc::channel(1);
    let path = out.clone();
    let shared = Arc::new(Shared::default());
    run_daemon(l, &dir.path().join("m.db"), options, &shared, rx, async {
        poll(40, || {
            let n = spans(&lines(&path)).len();
            if n >= 2 {
                Ok(())
            } else {
                Err(format!("{n} spans exported"))
            }
        })
        .await;
    })
    .await;
    let all = spans(&lines(&out));
    let roots: Vec<&Value> = all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_INTERNAL")
        .collect();
    let requests: Vec<&Value> = all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_CLIENT")
        .collect();
    assert!(!roots.is_empty() && !requests.is_empty(), "{all:#?}");
    for root in &roots {
        assert_eq!(root["name"], "round a");
        assert!(root.get("parentSpanId").is_none(), "{root}");
    }
    // Every request span hangs under the root span of its own trace.
    for span in &requests {
        let root = roots
            .iter()
            .find(|r| r["traceId"] == span["traceId"])
            .unwrap_or_else(|| panic!("no root for {span}"));
        assert_eq!(span["parentSpanId"], root["spanId"], "{span}");
    }
    // The server saw each exported request span as the parent of its work.
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no traceparent reached the server");
    let exported: Vec<(String, String)> = requests
        .iter()
        .map(|s| {
            (
                s["traceId"].as_str().unwrap().to_string(),
                s["spanId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for tp in &seen {
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!((parts[0], parts[3]), ("00", "01"), "{tp}");
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16), "{tp}");
    }
    for (trace, span) in &exported {
        let want = format!("00-{trace}-{span}-01");
        assert!(
            seen.contains(&want),
            "{want} never reached the server: {seen:?}"
        );
    }
}

/// No round at all: metrics still go out on the export interval, with the metrics headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_pushed_on_the_export_interval() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let receiver = start_receiver(&py, "otlp_receiver.py", &[out.to_str().unwrap()]);
    let config = Otlp {
        endpoint: format!("http://127.0.0.1:{}", receiver.port),
        headers: Vec::new(),
        traces_headers: Vec::new(),
        metrics_headers: vec![("Authorization".into(), Secret::new("Bearer m"))],
        timeout: Duration::from_secs(5),
        traces_endpoint: None,
        metrics_endpoint: None,
    };
    let settings = ExportSettings {
        interval: Duration::from_millis(300),
    };
    let exporter =
        OtlpExporter::start(&config, settings, resource(&|_: &str| None, None), 0).unwrap();
    let started = std::time::Instant::now();
    poll(20, || {
        let n = lines(&out).len();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} exports"))
        }
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(800));
    let items = lines(&out);
    for i in &items {
        assert_eq!(i["path"], "/v1/metrics");
        assert_eq!(i["auth"], "Bearer m");
        let attrs = &i["body"]["resourceMetrics"][0]["resource"]["attributes"];
        let id = attrs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "service.instance.id")
            .unwrap_or_else(|| panic!("{attrs}"));
        assert_eq!(id["value"]["stringValue"].as_str().unwrap().len(), 36);
    }
    drop(exporter);
}
