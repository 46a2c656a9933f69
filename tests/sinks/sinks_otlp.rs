//! OTLP/HTTP export against a receiver that decodes with the official opentelemetry-proto
//! definitions: GenAI metric names and attributes, spans per request with evaluation events,
//! resource attributes and headers; and a dead collector that does not slow probing.

use crate::sinks_common;
use modelwatch::daemon::{self, Options, promote::promote, state::Shared};
use modelwatch::runner::{Clock, SystemClock};
use modelwatch::store::Store;
use serde_json::Value;
use sinks_common::{
    fake_clients, lines, loaded, poll, poll_until, run_daemon, start_receiver, venv_python,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// `Ok` once `n` reaches `want`, else `why`.
fn at_least(n: usize, want: usize, why: &str) -> Result<(), String> {
    if n >= want {
        Ok(())
    } else {
        Err(why.to_string())
    }
}

fn attr<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn attr_str(attrs: &Value, key: &str) -> Option<String> {
    attr(attrs, key).and_then(|v| v["stringValue"].as_str().map(String::from))
}

/// Runs the daemon on `l` until `done(rounds)` (which may act, e.g. promote a baseline).
async fn run_loaded(
    dir: &std::path::Path,
    l: modelwatch::config::Loaded,
    mut done: impl FnMut(usize) -> bool,
) -> (usize, Arc<Shared>) {
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let rounds = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(rounds.clone()),
        sinks: outputs.sinks,
        observers: outputs.observers,
        ..Options::default()
    };
    run_daemon(l, &dir.join("m.db"), options, &shared, rx, async {
        poll(40, || {
            if done(rounds.load(Ordering::SeqCst)) {
                Ok(())
            } else {
                Err("timed out".to_string())
            }
        })
        .await;
    })
    .await;
    (rounds.load(Ordering::SeqCst), shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_spans_decode_with_the_official_definitions() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let receiver = start_receiver(&py, "otlp_receiver.py", &[out.to_str().unwrap()]);
    let extra = format!(
        "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{}\"\nheaders = {{ Authorization = \"Bearer otlp-test-token\" }}\ntimeout = \"5s\"\n",
        receiver.port
    );
    // Pinned to a model that is not served (an alert fires); after a few rounds they become
    // the baseline, so the monitor reports evidence.
    let mut l = loaded(dir.path(), &["a"], &extra, true);
    let baseline = dir.path().join("baseline.json");
    l.config.targets[0].baseline = Some(baseline.clone());
    let for_promote = loaded(dir.path(), &["a"], &extra, true);
    let mut for_promote = for_promote;
    for_promote.config.targets[0].baseline = Some(baseline.clone());
    let db = dir.path().join("m.db");
    let path = out.clone();
    let (_, shared) = run_loaded(dir.path(), l, move |rounds| {
        if rounds >= 3 && !baseline.exists() {
            let store = Store::open(&db).unwrap();
            promote(&for_promote, &store, "a", 20, SystemClock.now_ms()).unwrap();
        }
        let items = lines(&path);
        items.iter().filter(|i| i["path"] == "/v1/traces").count() >= 2
            && items.iter().any(|i| {
                i["path"] == "/v1/metrics" && i.to_string().contains("modelwatch.metric.e_value")
            })
    })
    .await;
    let items = lines(&out);
    assert!(
        items.iter().all(|i| i.get("error").is_none()),
        "decode errors: {items:#?}"
    );
    assert!(items.iter().all(|i| i["auth"] == "Bearer otlp-test-token"));

    // Metrics: the latest cumulative export.
    let m = items
        .iter()
        .rev()
        .find(|i| i["path"] == "/v1/metrics")
        .unwrap();
    let rm = &m["body"]["resourceMetrics"][0];
    assert!(attr_str(&rm["resource"]["attributes"], "service.name").is_some());
    let metrics = rm["scopeMetrics"][0]["metrics"].as_array().unwrap();
    let by_name = |n: &str| {
        metrics
            .iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {metrics:#?}"))
    };
    let dur = by_name("gen_ai.client.operation.duration");
    assert_eq!(dur["unit"], "s");
    let p = &dur["histogram"]["dataPoints"][0];
    assert_eq!(
        dur["histogram"]["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    for (key, want) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "ollama"),
        ("gen_ai.request.model", "fake"),
        ("gen_ai.response.model", "fake-1"),
        ("modelwatch.target", "a"),
        ("server.address", "127.0.0.1"),
    ] {
        let got = attr_str(&p["attributes"], key);
        assert_eq!(got.as_deref(), Some(want), "{key}: {p}");
    }
    assert_eq!(
        attr(&p["attributes"], "server.port").unwrap()["intValue"],
        "9"
    );
    let instance = attr_str(&rm["resource"]["attributes"], "service.instance.id").unwrap();
    assert_eq!(instance.len(), 36, "{instance}");
    let count: u64 = p["count"].as_str().unwrap().parse().unwrap();
    let buckets: u64 = p["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(count > 0 && buckets == count, "{p}");
    let tokens = by_name("gen_ai.client.token.usage");
    let types: Vec<String> = tokens["histogram"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| attr_str(&p["attributes"], "gen_ai.token.type"))
        .collect();
    assert!(
        types.contains(&"input".into()) && types.contains(&"output".into()),
        "{types:?}"
    );
    let rounds = by_name("modelwatch.rounds");
    assert_eq!(rounds["sum"]["isMonotonic"], true);
    let rates = by_name("modelwatch.round.quality_ratio");
    let names: Vec<String> = rates["gauge"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| attr_str(&p["attributes"], "modelwatch.metric"))
        .collect();
    assert!(names.contains(&"refusal_rate".into()), "{names:?}");
    by_name("modelwatch.requests");

    // Quality metrics: evidence per metric, alert state, last-round rates, length quantiles.
    let points = |n: &str| -> Vec<(String, f64, Value)> {
        by_name(n)["gauge"]["dataPoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    attr_str(&p["attributes"], "modelwatch.metric").unwrap_or_default(),
                    p["asDouble"].as_f64().unwrap_or(f64::NAN),
                    p["attributes"].clone(),
                )
            })
            .collect()
    };
    for n in [
        "modelwatch.metric.value",
        "modelwatch.metric.baseline_value",
        "modelwatch.metric.e_value",
    ] {
        let metrics: Vec<String> = points(n).into_iter().map(|p| p.0).collect();
        for want in ["refusal_rate", "empty_rate", "length_chars"] {
            assert!(metrics.contains(&want.to_string()), "{n}: {metrics:?}");
        }
    }
    // Gauges carry no unit (unit `1` would be translated to a `_ratio` suffix).
    for n in [
        "modelwatch.metric.e_value",
        "modelwatch.quality.ratio",
        "modelwatch.alert.firing",
    ] {
        assert!(by_name(n).get("unit").is_none(), "{}", by_name(n));
    }
    let e = points("modelwatch.metric.e_value");
    assert!(e.iter().all(|p| p.1 >= 0.0), "{e:?}");
    let threshold = &points("modelwatch.metric.e_value_threshold")[0];
    assert!(threshold.1 > 1.0);
    assert_eq!(attr_str(&threshold.2, "modelwatch.target").unwrap(), "a");
    let firing = points("modelwatch.alert.firing");
    let pin = firing
        .iter()
        .find(|p| p.0 == "unapproved_model")
        .unwrap_or_else(|| panic!("{firing:?}"));
    assert_eq!(pin.1, 1.0);
    assert_eq!(attr_str(&pin.2, "modelwatch.severity").unwrap(), "critical");
    let round: Vec<(String, f64)> = points("modelwatch.round.metric_value")
        .into_iter()
        .map(|p| (p.0, p.1))
        .collect();
    assert!(
        round
            .iter()
            .any(|r| r == &("refusal_rate".to_string(), 0.0)),
        "{round:?}"
    );
    let length = by_name("modelwatch.response.length_chars");
    assert_eq!(length["unit"], "{char}");
    assert_eq!(
        length["histogram"]["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    let p = &length["histogram"]["dataPoints"][0];
    assert_eq!(
        attr_str(&p["attributes"], "modelwatch.target").unwrap(),
        "a"
    );
    let buckets: Vec<u64> = p["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().parse().unwrap())
        .collect();
    let bounds: Vec<f64> = p["explicitBounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_f64().unwrap())
        .collect();
    // Every answer of the fake is the same sentence: all of them in the bucket (16, 32].
    let chars = "Use kill -9 on the process id.".chars().count() as f64;
    let count: u64 = p["count"].as_str().unwrap().parse().unwrap();
    assert!(count > 0);
    assert_eq!(p["sum"].as_f64().unwrap(), count as f64 * chars);
    assert_eq!(buckets.len(), bounds.len() + 1, "{p}");
    let at = bounds.iter().position(|&b| b >= chars).unwrap();
    assert!(bounds[at - 1] < chars, "{bounds:?}");
    assert_eq!(buckets[at], count, "{p}");
    assert_eq!(buckets.iter().sum::<u64>(), count, "{p}");

    // The latency distribution (HDR, at fixed bounds): every request of the fake takes 5 ms.
    let latency = by_name("modelwatch.response.latency_seconds");
    assert_eq!(latency["unit"], "s");
    let p = &latency["histogram"]["dataPoints"][0];
    let count: u64 = p["count"].as_str().unwrap().parse().unwrap();
    let buckets: Vec<u64> = p["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(count > 0);
    assert_eq!(buckets.iter().sum::<u64>(), count, "{p}");
    assert_eq!(
        buckets[0], count,
        "all within the first bound (0.05 s): {p}"
    );
    assert!(
        (p["sum"].as_f64().unwrap() - count as f64 * 0.005).abs() < 1e-9,
        "{p}"
    );

    // Named like /metrics: every modelwatch.* metric is a Prometheus family once dots become
    // underscores (and monotonic sums get `_total`), and every quality family of /metrics is
    // exported.
    let prom = shared.render_metrics();
    let families: Vec<&str> = prom
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let otlp_names: Vec<&str> = metrics.iter().filter_map(|m| m["name"].as_str()).collect();
    for m in metrics {
        let name = m["name"].as_str().unwrap();
        if !name.starts_with("modelwatch.") {
            continue;
        }
        let mut want = name.replace('.', "_");
        if m["sum"]["isMonotonic"] == true {
            want.push_str("_total");
        }
        assert!(
            families.contains(&want.as_str()),
            "{name} → {want}: {families:?}"
        );
    }
    for fam in [
        "modelwatch_metric_value",
        "modelwatch_metric_baseline_value",
        "modelwatch_metric_e_value",
        "modelwatch_metric_e_value_threshold",
        "modelwatch_alert_firing",
        "modelwatch_round_metric_value",
        "modelwatch_round_quality_ratio",
        "modelwatch_quality_ratio",
        "modelwatch_quality_baseline_ratio",
        "modelwatch_length_placement",
        "modelwatch_response_length_chars",
        "modelwatch_response_latency_seconds",
        "modelwatch_rounds_total",
        "modelwatch_requests_total",
    ] {
        let otel = fam.trim_end_matches("_total").replacen('_', ".", 1);
        let found = otlp_names
            .iter()
            .any(|n| n.replace('.', "_") == fam.trim_end_matches("_total"));
        assert!(
            found,
            "{fam} has no OTLP counterpart (like {otel}): {otlp_names:?}"
        );
    }
    assert!(
        prom.contains("modelwatch_otlp_exports_total{outcome=\"exported\"}"),
        "{prom}"
    );

    // Traces: a root span per round, a client span per request under it with evaluation
    // events. The batch span processor puts several rounds into one export (and may split
    // one): one root per trace over every export.
    let all: Vec<Value> = items
        .iter()
        .filter(|i| i["path"] == "/v1/traces")
        .flat_map(|t| {
            t["body"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let (roots, spans): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|s| s["kind"] == "SPAN_KIND_INTERNAL");
    assert!(!roots.is_empty(), "{all:#?}");
    for root in &roots {
        assert_eq!(root["name"], "round a");
        let same = roots
            .iter()
            .filter(|r| r["traceId"] == root["traceId"])
            .count();
        assert_eq!(same, 1, "one root per trace: {all:#?}");
    }
    // The run stops at any moment: the newest round's request spans may have gone out in one
    // batch and its root (ended after them) not yet. At most that one trace lacks its root.
    let rootless: std::collections::BTreeSet<String> = spans
        .iter()
        .filter(|s| !roots.iter().any(|r| r["traceId"] == s["traceId"]))
        .map(|s| s["traceId"].to_string())
        .collect();
    assert!(
        rootless.len() <= 1,
        "request spans without a root: {all:#?}"
    );
    let spans: Vec<&Value> = spans
        .into_iter()
        .filter(|s| !rootless.contains(&s["traceId"].to_string()))
        .collect();
    assert!(!spans.is_empty());
    for span in &spans {
        let root = roots
            .iter()
            .find(|r| r["traceId"] == span["traceId"])
            .unwrap_or_else(|| panic!("no root for {span}"));
        assert_eq!(span["parentSpanId"], root["spanId"]);
        for (key, want) in [
            ("gen_ai.output.type", "text"),
            ("modelwatch.target", "a"),
            ("server.address", "127.0.0.1"),
        ] {
            assert_eq!(
                attr_str(&span["attributes"], key).as_deref(),
                Some(want),
                "{key}"
            );
        }
        let reasons = attr(&span["attributes"], "gen_ai.response.finish_reasons").unwrap();
        assert_eq!(reasons["arrayValue"]["values"][0]["stringValue"], "stop");
        assert_eq!(
            attr(&span["attributes"], "gen_ai.request.stream").unwrap()["boolValue"],
            true, // the default of `stream`
            "{span}"
        );
    }
    for span in &spans {
        assert_eq!(span["name"], "chat fake");
        assert_eq!(span["kind"], "SPAN_KIND_CLIENT");
        assert_eq!(
            attr_str(&span["attributes"], "gen_ai.operation.name").unwrap(),
            "chat"
        );
        let events = span["events"].as_array().unwrap();
        assert!(events.len() >= 3, "{span}");
        for e in events {
            assert_eq!(e["name"], "gen_ai.evaluation.result");
            assert!(attr_str(&e["attributes"], "gen_ai.evaluation.name").is_some());
            assert!(attr(&e["attributes"], "gen_ai.evaluation.score.value").is_some());
            assert!(attr_str(&e["attributes"], "gen_ai.evaluation.score.label").is_some());
        }
    }
    let names: Vec<String> = spans[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| attr_str(&e["attributes"], "gen_ai.evaluation.name"))
        .collect();
    assert!(names.contains(&"refusal".into()), "{names:?}");
}

/// A collector that accepts connections and never answers: rounds keep their pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_does_not_slow_probing() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let extra =
        format!("[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{port}\"\ntimeout = \"30s\"\n");
    let started = std::time::Instant::now();
    // Rounds every 200 ms: 10 rounds in about 2 s, although no export ever completes.
    let l = loaded(dir.path(), &["a"], &extra, false);
    let (n, shared) = run_loaded(dir.path(), l, |n| n >= 10).await;
    assert!(n >= 10);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The round itself took as long as its requests (5 ms each), not an export's timeout.
    let last = shared.status().targets[0].last_round.clone().unwrap();
    assert!(last.ended_at_ms - last.started_at_ms < 1000, "{last:?}");
    let text = shared.render_metrics();
    assert!(
        text.contains("modelwatch_otlp_exports_total{outcome=\"exported\"} 0"),
        "{text}"
    );
    drop(listener);
}

/// A reload that points `[telemetry.otlp]` at another collector moves the export there without
/// a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_the_export_to_a_new_collector() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let (out_a, out_b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let first = start_receiver(&py, "otlp_receiver.py", &[out_a.to_str().unwrap()]);
    let second = start_receiver(&py, "otlp_receiver.py", &[out_b.to_str().unwrap()]);
    let extra = |port: u16| format!("[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{port}\"\n");
    let l = loaded(dir.path(), &["a"], &extra(first.port), false);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let (tx, rx) = mpsc::channel(1);
    let options = Options {
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        sinks: outputs.sinks,
        observers: outputs.observers,
        outputs: Some(Arc::new(daemon::outputs::from_config)),
        ..Options::default()
    };
    let metrics = |p: &std::path::Path| {
        lines(p)
            .iter()
            .filter(|i| i["path"] == "/v1/metrics")
            .count()
    };
    // One deadline for the whole exchange.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let driver = async {
        poll_until(deadline, || {
            at_least(metrics(&out_a), 2, "no export to the first collector")
        })
        .await;
        let reloaded = loaded(dir.path(), &["a"], &extra(second.port), false);
        tx.send(daemon::Command::Reload(Box::new(reloaded)))
            .await
            .unwrap();
        poll_until(deadline, || {
            at_least(metrics(&out_b), 2, "no export to the new collector")
        })
        .await;
        let at_a = metrics(&out_a);
        let at_b = metrics(&out_b);
        poll_until(deadline, || {
            at_least(metrics(&out_b), at_b + 3, "the export stopped")
        })
        .await;
        assert_eq!(metrics(&out_a), at_a, "the old collector gets nothing more");
    };
    let db = dir.path().join("m.db");
    run_daemon(l, &db, options, &Arc::new(Shared::default()), rx, driver).await;
    assert!(lines(&out_b).iter().all(|i| i.get("error").is_none()));
}
