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
    let py = venv_python();
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
    let py = venv_python();
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
        ..ExportSettings::default()
    };
    let exporter = OtlpExporter::start(&config, settings, resource(&|_: &str| None, None)).unwrap();
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

/// The targets named in a metrics export's gauges.
fn gauge_targets(item: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in item["body"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for p in m["gauge"]["dataPoints"].as_array().into_iter().flatten() {
            for a in p["attributes"].as_array().into_iter().flatten() {
                if a["key"] == "modelwatch.target" {
                    out.push(a["value"]["stringValue"].as_str().unwrap().to_string());
                }
            }
        }
    }
    out
}

/// A reload that removes a target ends its series, the alert state included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_target_leaves_the_export() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let receiver = start_receiver(&py, "otlp_receiver.py", &[out.to_str().unwrap()]);
    let extra = format!(
        "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{}\"\n",
        receiver.port
    );
    // Pinned to a model that is not served: both targets have a firing alert.
    let l = loaded(dir.path(), &["a", "b"], &extra, true);
    let outputs = modelwatch::daemon::outputs::from_config(&l.config).unwrap();
    let (tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: sinks_common::fake_clients(Arc::new(std::sync::atomic::AtomicUsize::new(0))),
        sinks: outputs.sinks,
        observers: outputs.observers,
        outputs: Some(Arc::new(modelwatch::daemon::outputs::from_config)),
        ..Options::default()
    };
    let metrics = |p: &std::path::Path| -> Vec<Value> {
        lines(p)
            .into_iter()
            .filter(|i| i["path"] == "/v1/metrics")
            .collect()
    };
    let path = out.clone();
    let driver = async {
        poll(30, || {
            let seen = metrics(&path).iter().any(|m| {
                let t = gauge_targets(m);
                t.contains(&"a".to_string()) && t.contains(&"b".to_string())
            });
            if seen {
                Ok(())
            } else {
                Err("no export with both targets".to_string())
            }
        })
        .await;
        let reloaded = loaded(dir.path(), &["a"], &extra, true);
        tx.send(modelwatch::daemon::Command::Reload(Box::new(reloaded)))
            .await
            .unwrap();
        let at = metrics(&path).len();
        // Exports in flight at the reload may still name b; the ones after do not.
        poll(30, || {
            let all = metrics(&path);
            let later: Vec<&Value> = all.iter().skip(at + 2).collect();
            if later.len() >= 2 && later.iter().all(|m| gauge_targets(m).contains(&"a".into())) {
                Ok(later.iter().map(|m| gauge_targets(m)).collect::<Vec<_>>())
            } else {
                Err(format!("{} exports after the reload", all.len() - at))
            }
        })
        .await;
    };
    run_daemon(
        l,
        &dir.path().join("m.db"),
        options,
        &Arc::new(Shared::default()),
        rx,
        driver,
    )
    .await;
    let all = metrics(&out);
    let last = all.last().unwrap();
    let targets = gauge_targets(last);
    assert!(targets.contains(&"a".to_string()), "{targets:?}");
    assert!(!targets.contains(&"b".to_string()), "{targets:?}");
    let firing = last["body"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "modelwatch.alert.firing")
        .expect("alert state of a");
    assert!(!firing.to_string().contains("\"b\""), "{firing}");
}

/// A collector that answers 503 once: the export is retried and counted once as exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_export_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::<usize>::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                // One request per connection is enough: read the head and the body.
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    let Some(head) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if buf.len() >= head + 4 + len {
                        break;
                    }
                }
                let first = {
                    let mut s = seen.lock().unwrap();
                    s.push(buf.len());
                    s.len() == 1
                };
                let status = if first {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    let config = Otlp {
        endpoint: format!("http://127.0.0.1:{port}"),
        headers: Vec::new(),
        traces_headers: Vec::new(),
        metrics_headers: Vec::new(),
        timeout: Duration::from_secs(5),
        traces_endpoint: None,
        metrics_endpoint: None,
    };
    let settings = ExportSettings {
        interval: Duration::from_millis(200),
        ..ExportSettings::default()
    };
    let exporter = OtlpExporter::start(&config, settings, resource(&|_: &str| None, None)).unwrap();
    poll(20, || {
        let n = exporter
            .stats
            .exported
            .load(std::sync::atomic::Ordering::Relaxed);
        if n >= 1 {
            Ok(())
        } else {
            Err(format!("{n} exported"))
        }
    })
    .await;
    let sizes = bodies.lock().unwrap().clone();
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert_eq!(sizes[0], sizes[1], "the same export sent again: {sizes:?}");
    assert_eq!(
        exporter
            .stats
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
