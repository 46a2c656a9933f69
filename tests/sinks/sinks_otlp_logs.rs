//! The real daemon's own log records reach an OTLP receiver through the OpenTelemetry logs
//! bridge, with the daemon's resource, and the last one ("stopped") is flushed at exit.

use crate::daemon_proc::{free_port, runtime, server_config, start_piped, write_suite};
use crate::sinks_common::{lines, start_receiver, venv_python};
use modelwatch::sim::{self, Profile};
use serde_json::Value;

/// Every log record the receiver decoded, with its resource attributes.
fn records(path: &std::path::Path) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for item in lines(path).into_iter().filter(|i| i["path"] == "/v1/logs") {
        for rl in item["body"]["resourceLogs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    out.push((rl["resource"]["attributes"].clone(), r.clone()));
                }
            }
        }
    }
    out
}

fn body(r: &Value) -> String {
    r["body"]["stringValue"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn attr(attrs: &Value, key: &str) -> Option<String> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str().map(String::from))
}

#[test]
fn the_daemons_log_records_reach_the_collector() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let receiver = start_receiver(&py, "otlp_receiver.py", &[out.to_str().unwrap()]);
    let rt = runtime(1);
    let sim = rt.block_on(async {
        sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 3).unwrap()
    });
    let probes = dir.path().join("probes");
    write_suite(&probes, "logs", ["Say hello.".to_string()]);
    let cfg = dir.path().join("modelwatch.toml");
    let text = server_config(&probes, &dir.path().join("m.db"), free_port())
        + &format!(
            "[[target]]\nname = \"sim0\"\nprovider = \"ollama\"\nbase_url = \"http://{}\"\nmodel = \"sim-7b\"\nsuites = [\"logs\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\n\n[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{}\"\n",
            sim.addr(),
            receiver.port
        );
    std::fs::write(&cfg, text).unwrap();
    let (mut child, log) = start_piped(&cfg);
    let found = |out: &std::path::Path| {
        records(out)
            .iter()
            .any(|(_, r)| body(r) == "first fingerprint")
    };
    for _ in 0..400 {
        if found(&out) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        found(&out),
        "no log record at the receiver: {:#?}\ndaemon log:\n{}",
        lines(&out),
        log.lock().unwrap()
    );
    let (resource, record) = records(&out)
        .into_iter()
        .find(|(_, r)| body(r) == "first fingerprint")
        .unwrap();
    assert_eq!(record["severityText"], "INFO", "{record}");
    assert_eq!(record["severityNumber"], "SEVERITY_NUMBER_INFO", "{record}");
    assert_eq!(
        attr(&record["attributes"], "target").as_deref(),
        Some("sim0")
    );
    assert_eq!(
        attr(&resource, "service.name").as_deref(),
        Some("modelwatch")
    );
    assert_eq!(
        attr(&resource, "service.instance.id").map(|i| i.len()),
        Some(36)
    );
    // SIGTERM: the daemon stops and flushes its last records on the way out.
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", log.lock().unwrap());
    let bodies: Vec<String> = records(&out).iter().map(|(_, r)| body(r)).collect();
    assert!(bodies.iter().any(|b| b == "stopped"), "{bodies:?}");
    // The export's own records never loop back into it.
    assert!(
        records(&out)
            .iter()
            .all(|(_, r)| !r.to_string().contains("opentelemetry")),
        "{bodies:?}"
    );
}
