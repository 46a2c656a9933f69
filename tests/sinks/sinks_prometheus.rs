//! A real Prometheus (Debian package `prometheus`, see scripts/test-deps.sh) scrapes the
//! daemon's /metrics on loopback; the series are read back through Prometheus' HTTP API, and
//! `promtool check metrics` finds no problem in the exposition (delivery counters included).

use crate::sinks_common;
use modelwatch::alert::MemorySink;
use modelwatch::daemon::{self, Options, state::Shared};
use sinks_common::{Http, fake_clients, get_text, loaded, run_daemon};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use tokio::sync::mpsc;

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fails when `tool` is missing: a skip would be reported as a pass.
fn need(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{tool} is missing: run scripts/test-deps.sh (scripts/test does)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_daemon_and_promtool_finds_no_problem() {
    need("prometheus");
    need("promtool");
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(8);
    let http = Http::serve(shared.clone(), tx, None).await;
    let addr = http.addr;

    let prom_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: modelwatch\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let _prom = Kill(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Pinned to a model that is not served: an alert fires and is delivered. Sentry check-ins
    // and the OTLP exporter point at a closed port, so their counters show (and are linted).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let extra = format!(
        "[alerts.sentry]\ndsn = \"http://k@127.0.0.1:{dead}/1\"\n[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{dead}\"\n"
    );
    let l = loaded(dir.path(), &["a"], &extra, true);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let options = Options {
        observers: outputs.observers,
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        sinks: vec![Arc::new(MemorySink::new())],
        ..Options::default()
    };
    let driver = async {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let query = |q: &'static str| {
            let client = client.clone();
            async move {
                let v: serde_json::Value = client
                    .get(format!("http://127.0.0.1:{prom_port}/api/v1/query"))
                    .query(&[("query", q)])
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let r = v["data"]["result"].as_array()?.clone();
                (!r.is_empty()).then_some(r)
            }
        };
        let (rounds, deliveries, median, checkins) = loop {
            let rounds = query("modelwatch_rounds_total{target=\"a\",status=\"completed\"}").await;
            let deliveries =
                query("modelwatch_alert_deliveries_total{sink=\"memory\",outcome=\"delivered\"}")
                    .await;
            // Every answer has the same length: the histogram's mean is that length.
            let median = query(
                "modelwatch_response_length_chars_sum{target=\"a\"} / modelwatch_response_length_chars_count{target=\"a\"}",
            )
            .await;
            let checkins = query("modelwatch_sentry_checkins_total{outcome=\"failed\"} > 0").await;
            if let (Some(r), Some(d), Some(m), Some(c)) = (rounds, deliveries, median, checkins) {
                break (r, d, m, c);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus never saw the series"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let value = |r: &[serde_json::Value]| -> f64 {
            r[0]["value"][1].as_str().unwrap().parse().unwrap()
        };
        assert!(value(&rounds) >= 1.0, "{rounds:?}");
        assert_eq!(value(&deliveries), 1.0, "{deliveries:?}");
        let chars = "Use kill -9 on the process id.".chars().count() as f64;
        assert_eq!(value(&median), chars, "{median:?}");
        assert!(value(&checkins) >= 1.0, "{checkins:?}");
        assert_eq!(rounds[0]["metric"]["job"], "modelwatch");

        // promtool on the exposition as served.
        let text = get_text(&client, &format!("http://{addr}/metrics")).await;
        for family in [
            "# TYPE modelwatch_alert_deliveries_total counter",
            "# TYPE modelwatch_response_length_chars histogram",
            "# TYPE modelwatch_round_quality_ratio gauge",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE modelwatch_round_metric_value gauge",
            "# TYPE modelwatch_sentry_checkins_total counter",
            "# TYPE modelwatch_otlp_exports_total counter",
        ] {
            assert!(text.contains(family), "{family}\n{text}");
        }
        let mut lint = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        lint.stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = lint.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool: {report}\n{text}"
        );
    };
    let db = dir.path().join("m.db");
    run_daemon(l, &db, options, &shared, rx, driver).await;
    http.stop().await;
}
