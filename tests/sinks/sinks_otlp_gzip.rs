//! OTLP export compression as the SDKs read it from the environment: the real daemon with
//! `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` sends gzip bodies (`Content-Encoding: gzip`) that the
//! receiver inflates and decodes with the official definitions; a signal's own variable wins
//! over the general one; zstd stops the start with an error saying what to set.

use crate::daemon_proc::{free_port, runtime, server_config, start_piped_under, write_suite};
use crate::sinks_common::{lines, start_receiver, venv_python};
use modelwatch::sim::{self, Profile};
use serde_json::Value;
use std::path::Path;

/// A configuration exporting every signal to the receiver on `port`, probing `sim`.
fn config(dir: &Path, sim: &str, port: u16) -> std::path::PathBuf {
    let probes = dir.join("probes");
    write_suite(&probes, "gz", ["Say hello.".to_string()]);
    let cfg = dir.join("modelwatch.toml");
    let text = server_config(&probes, &dir.join("m.db"), free_port())
        + &format!(
            "[[target]]\nname = \"sim0\"\nprovider = \"ollama\"\nbase_url = \"http://{sim}\"\nmodel = \"sim-7b\"\nsuites = [\"gz\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\n\n[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{port}\"\n",
        );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// The requests of `path` (`/v1/traces`, …) the receiver decoded.
fn of<'a>(items: &'a [Value], path: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["path"] == path).collect()
}

#[test]
fn gzip_exports_are_received_and_decoded() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let receiver = start_receiver(&py, "otlp_receiver.py", &[out.to_str().unwrap()]);
    let rt = runtime(1);
    let sim = rt.block_on(async {
        sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 3).unwrap()
    });
    let cfg = config(dir.path(), &sim.addr().to_string(), receiver.port);
    let env: Vec<String> = [
        "env",
        "OTEL_EXPORTER_OTLP_COMPRESSION=gzip",
        // The signal's own variable wins: metrics go uncompressed.
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION=none",
        "OTEL_METRIC_EXPORT_INTERVAL=500",
        "OTEL_BSP_SCHEDULE_DELAY=200",
        "OTEL_BLRP_SCHEDULE_DELAY=200",
    ]
    .map(String::from)
    .to_vec();
    let (mut child, log) = start_piped_under(&env, &cfg);
    let complete = |items: &[Value]| {
        ["/v1/traces", "/v1/metrics", "/v1/logs"]
            .iter()
            .all(|p| !of(items, p).is_empty())
            && items.iter().any(|i| i.to_string().contains("round sim0"))
    };
    for _ in 0..400 {
        if complete(&lines(&out)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let items = lines(&out);
    assert!(
        complete(&items),
        "not every signal arrived: {items:#?}\ndaemon log:\n{}",
        log.lock().unwrap()
    );
    assert!(
        items.iter().all(|i| i.get("error").is_none()),
        "decode errors: {items:#?}"
    );
    for path in ["/v1/traces", "/v1/logs"] {
        for i in of(&items, path) {
            assert_eq!(i["encoding"], "gzip", "{path}: {i}");
        }
    }
    for i in of(&items, "/v1/metrics") {
        assert_eq!(i["encoding"], "identity", "{i}");
    }
    // The inflated bodies are whole requests: the round's span and the daemon's records.
    let spans: Vec<&Value> = of(&items, "/v1/traces")
        .into_iter()
        .flat_map(|i| i["body"]["resourceSpans"].as_array().unwrap().iter())
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().iter())
        .flat_map(|ss| ss["spans"].as_array().unwrap().iter())
        .collect();
    assert!(
        spans.iter().any(|s| s["name"] == "round sim0"),
        "{spans:#?}"
    );
    assert!(
        of(&items, "/v1/logs")
            .iter()
            .any(|i| i.to_string().contains("logRecords")),
        "{items:#?}"
    );
}

#[test]
fn zstd_stops_the_start_with_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "127.0.0.1:9", free_port());
    let env: Vec<String> = ["env", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=zstd"]
        .map(String::from)
        .to_vec();
    let (mut child, log) = start_piped_under(&env, &cfg);
    let status = child.wait().unwrap();
    // The stderr reader may still be copying the last lines.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = log.lock().unwrap().clone();
    assert!(!status.success(), "the daemon started: {log}");
    assert!(
        log.contains("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=zstd") && log.contains("gzip or none"),
        "{log}"
    );
}
