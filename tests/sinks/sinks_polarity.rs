//! One meaning per metric: a round with a known task failure rate (exactly 25 %: one probe of
//! four always fails its task check, against a baseline that never failed) reads the same —
//! `task_failure_rate` = 0.25, higher is worse — in `/metrics`, `/api/v1/status`, OTLP, Sentry
//! and webhook payloads, every report format and the `run` table.

use crate::sinks_common;
use futures_util::future::BoxFuture;
use modelwatch::config::{self, Loaded, Target};
use modelwatch::daemon::{self, ClientFactory, Options, promote::promote, state::Shared};
use modelwatch::drift::Margins;
use modelwatch::probe::ProbeInput;
use modelwatch::provider::{CompletionRequest, Fingerprint, ModelClient};
use modelwatch::report::{Format, render, summary::summarize};
use modelwatch::runner::{Clock, SystemClock};
use modelwatch::sample::{Completion, SampleError};
use modelwatch::store::{SampleQuery, Store};
use serde_json::Value;
use sinks_common::{
    Http, answer, counted_fingerprint, get_text, lines, poll, run_daemon, start_receiver,
    venv_python,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const WANT: f64 = 0.25;
const METRIC: &str = "task_failure_rate";

/// Answers every task right, or (`broken`) every task of probe `p4` wrong.
struct Answers {
    broken: bool,
    rounds: Arc<AtomicUsize>,
}

impl ModelClient for Answers {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        let ProbeInput::Prompt(prompt) = &request.input else {
            panic!("prompts only")
        };
        let wrong = self.broken && prompt.contains("(p4)");
        Box::pin(async move { Ok(answer(if wrong { "41" } else { "42" }, 1)) })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async move { Ok(counted_fingerprint(&self.rounds)) })
    }
}

fn answers(broken: bool, rounds: Arc<AtomicUsize>) -> ClientFactory {
    Arc::new(move |_: &Target, _| {
        Ok(Arc::new(Answers {
            broken,
            rounds: rounds.clone(),
        }) as Arc<dyn ModelClient>)
    })
}

/// Target `a` on a suite of four task probes, ten samples each, with its baseline in `dir`.
fn config(dir: &Path, extra: &str) -> Loaded {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    let mut suite = String::from("suite = \"t\"\n[defaults]\nsamples = 10\n");
    for i in 1..=4 {
        suite.push_str(&format!(
            "[[probe]]\nid = \"p{i}\"\nprompt = \"What is 6 times 7? (p{i})\"\n\
             expect.task = {{ kind = \"number\", value = 42 }}\n"
        ));
    }
    std::fs::write(probes.join("t.toml"), suite).unwrap();
    let text = format!(
        "probes_dir = {:?}\n{extra}\n[[target]]\nname = \"a\"\nprovider = \"ollama\"\n\
         base_url = \"http://127.0.0.1:9\"\nmodel = \"fake\"\nsuites = [\"t\"]\nbaseline = {:?}\n",
        probes.display().to_string(),
        dir.join("baseline.json").display().to_string()
    );
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    let mut l = config::load_with_suites(&path, &|_: &str| None).unwrap();
    for t in &mut l.config.targets {
        t.interval = Duration::from_millis(200);
        t.daemon.jitter = Duration::ZERO;
        t.daemon.round_deadline = Duration::from_secs(5);
    }
    l
}

/// A webhook receiver on loopback that keeps every JSON body.
async fn webhook() -> (Arc<Mutex<Vec<Value>>>, String) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
                keep.lock().unwrap().push(v);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (got, format!("http://{addr}/hook"))
}

fn close(v: Option<f64>, what: &str) {
    let v = v.unwrap_or_else(|| panic!("{what}: no value"));
    assert!((v - WANT).abs() < 1e-12, "{what}: {v}, expected {WANT}");
}

/// The value of the `/metrics` sample `series` (exact name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_task_failure_rate_reads_the_same_everywhere() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");

    // A baseline of rounds that never fail a task.
    let rounds = Arc::new(AtomicUsize::new(0));
    let l = config(dir.path(), "");
    let options = Options {
        clients: answers(false, rounds.clone()),
        ..Options::default()
    };
    let (_tx, rx) = mpsc::channel(1);
    let shared = Arc::new(Shared::default());
    run_daemon(l, &db, options, &shared, rx, async {
        poll(60, || match rounds.load(Ordering::SeqCst) {
            n if n >= 6 => Ok(()),
            n => Err(format!("{n} rounds")),
        })
        .await;
    })
    .await;
    let l = config(dir.path(), "");
    promote(&l, &Store::open(&db).unwrap(), "a", 5, SystemClock.now_ms()).unwrap();

    // The broken model, watched with every output on.
    let otlp_out = dir.path().join("otlp.jsonl");
    let otlp = start_receiver(&py, "otlp_receiver.py", &[otlp_out.to_str().unwrap()]);
    let sentry_out = dir.path().join("sentry.jsonl");
    let sentry = start_receiver(&py, "sentry_receiver.py", &[sentry_out.to_str().unwrap()]);
    let (hooks, hook_url) = webhook().await;
    let extra = format!(
        "[alerts.webhook]\nurl = \"{hook_url}\"\n[alerts.sentry]\ndsn = \"http://k@127.0.0.1:{}/7\"\n\
         [telemetry.otlp]\nendpoint = \"http://127.0.0.1:{}\"\n",
        sentry.port, otlp.port
    );
    let l = config(dir.path(), &extra);
    let outputs = daemon::outputs::from_config(&l.config).unwrap();
    let started = SystemClock.now_ms();
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(4);
    let http = Http::serve(shared.clone(), tx, None).await;
    let options = Options {
        clients: answers(true, Arc::new(AtomicUsize::new(0))),
        sinks: outputs.sinks,
        observers: outputs.observers,
        ..Options::default()
    };
    let client = reqwest::Client::new();
    let seen = AtomicBool::new(false);
    let (metrics, status) = {
        let mut read = (String::new(), Value::Null);
        run_daemon(l, &db, options, &shared, rx, async {
            poll(90, || {
                let hooked = hooks.lock().unwrap().iter().any(|h| h["metric"] == METRIC);
                let sentried = lines(&sentry_out)
                    .iter()
                    .any(|i| i["type"] == "event" && i["payload"]["tags"]["metric"] == METRIC);
                let exported = lines(&otlp_out)
                    .iter()
                    .any(|i| i["path"] == "/v1/metrics" && i.to_string().contains(METRIC));
                if hooked && sentried && exported {
                    seen.store(true, Ordering::SeqCst);
                    Ok(())
                } else {
                    Err(format!(
                        "webhook {hooked}, sentry {sentried}, otlp {exported}"
                    ))
                }
            })
            .await;
            read.0 = get_text(&client, &format!("http://{}/metrics", http.addr)).await;
            let status = get_text(&client, &format!("http://{}/api/v1/status", http.addr)).await;
            read.1 = serde_json::from_str(&status).unwrap();
        })
        .await;
        read
    };
    http.stop().await;
    assert!(seen.load(Ordering::SeqCst));

    // /metrics
    let series = |family: &str| format!("{family}{{target=\"a\",metric=\"{METRIC}\"}}");
    for family in [
        "modelwatch_quality_ratio",
        "modelwatch_round_quality_ratio",
        "modelwatch_metric_value",
    ] {
        close(sample(&metrics, &series(family)), family);
    }
    assert_eq!(
        sample(&metrics, &series("modelwatch_quality_baseline_ratio")),
        Some(0.0)
    );
    assert!(
        metrics.contains(&format!(
            "modelwatch_alert_firing{{target=\"a\",metric=\"{METRIC}\",severity=\"warning\"}} 1"
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("task_success"), "{metrics}");

    // /api/v1/status
    let m = status["targets"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == METRIC)
        .unwrap_or_else(|| panic!("{status:#}"));
    close(m["current"].as_f64(), "status current");
    assert_eq!(m["baseline"].as_f64(), Some(0.0));
    let alert = status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"]["metric"] == METRIC)
        .unwrap_or_else(|| panic!("{status:#}"));
    close(alert["evidence"]["current"].as_f64(), "status alert");

    // OTLP: the latest cumulative export.
    let items = lines(&otlp_out);
    let export = items
        .iter()
        .rev()
        .find(|i| i["path"] == "/v1/metrics" && i.to_string().contains(METRIC))
        .unwrap();
    let all = export["body"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap();
    for name in ["modelwatch.quality.ratio", "modelwatch.round.quality_ratio"] {
        let point = all
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| {
                m["gauge"]["dataPoints"].as_array()?.iter().find(|p| {
                    p["attributes"].as_array().is_some_and(|a| {
                        a.iter().any(|kv| {
                            kv["key"] == "modelwatch.metric" && kv["value"]["stringValue"] == METRIC
                        })
                    })
                })
            })
            .unwrap_or_else(|| panic!("no {name} point in {export:#}"));
        close(point["asDouble"].as_f64(), name);
    }

    // Webhook and Sentry payloads: the firing notification's evidence.
    let hook = hooks
        .lock()
        .unwrap()
        .iter()
        .find(|h| h["metric"] == METRIC)
        .cloned()
        .unwrap();
    close(hook["evidence"]["current"].as_f64(), "webhook");
    assert_eq!(hook["evidence"]["baseline"].as_f64(), Some(0.0));
    let event = lines(&sentry_out)
        .into_iter()
        .find(|i| i["type"] == "event" && i["payload"]["tags"]["metric"] == METRIC)
        .unwrap();
    close(
        event["payload"]["contexts"]["evidence"]["current"].as_f64(),
        "sentry",
    );

    // Reports of the broken rounds against the baseline, in every format, and the run table.
    let store = Store::open(&db).unwrap();
    let query = |since_ms: Option<i64>| SampleQuery {
        target: Some("a".into()),
        since_ms,
        ..Default::default()
    };
    let broken = store.samples(&query(Some(started))).unwrap();
    let base = modelwatch::baseline::Baseline::load(&dir.path().join("baseline.json"))
        .unwrap()
        .samples();
    assert!(
        broken.len() >= 40 && broken.len().is_multiple_of(40),
        "{}",
        broken.len()
    );
    let report = modelwatch::drift::compare(&base, &broken, &Margins::default());
    let json: Value = serde_json::from_str(&render(&report, Format::Json, false)).unwrap();
    let task = json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == METRIC)
        .unwrap_or_else(|| panic!("{json:#}"));
    close(task["candidate"]["rate"].as_f64(), "json report");
    assert_eq!(task["baseline"]["rate"].as_f64(), Some(0.0));
    assert_eq!(task["verdict"], "regression");
    for format in [Format::Text, Format::Markdown, Format::Html, Format::Junit] {
        let text = render(&report, format, false);
        assert!(
            text.contains("Task failures") || text.contains(METRIC),
            "{format:?}: {text}"
        );
        assert!(text.contains("25.0%"), "{format:?}: {text}");
        assert!(!text.contains("75.0%"), "{format:?}: {text}");
        assert!(!text.to_lowercase().contains("task success"), "{format:?}");
    }
    let table = summarize(&broken);
    let total = &table.targets[0].total;
    close(total.task.as_ref().map(|t| t.failure_rate), "run json");
    let text = table.render_text(false);
    let header = text.lines().nth(1).unwrap();
    let col = header.find("task fail").unwrap() + "task fail".len();
    let last = text.lines().last().unwrap();
    assert_eq!(&last[col - 5..col], "25.0%", "{text}");
}
