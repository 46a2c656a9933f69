//! A hostile answer cannot stall the daemon: an answer whose JSON-schema check backtracks for
//! many seconds (a `pattern` with a backreference against a large array of strings) is checked
//! on the check pool, ends as a `check_timeout` sample after the budget, and meanwhile the other
//! target's rounds keep completing and `/healthz` answers. In process, over real HTTP.

use crate::sinks_common::{Http, run_daemon};
use axum::Json;
use axum::routing::{get, post};
use modelwatch::config;
use modelwatch::daemon::{Options, state::Shared};
use modelwatch::sample::ErrorKind;
use modelwatch::sim::{self, Profile};
use modelwatch::store::{SampleQuery, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// An OpenAI-compatible server whose every answer is `answer`.
async fn hostile_server(answer: String) -> String {
    let answer = Arc::new(answer);
    let app = axum::Router::new()
        .route(
            "/v1/models",
            get(|| async { Json(json!({"object": "list", "data": [{"id": "m", "object": "model"}]})) }),
        )
        .route(
            "/v1/chat/completions",
            post(move |_body: Json<Value>| {
                let answer = answer.clone();
                async move {
                    Json(json!({
                        "model": "m",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": *answer}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 1000}
                    }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_answer_times_out_its_check_without_stalling_other_targets() {
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes");
    std::fs::create_dir(&probes).unwrap();
    std::fs::copy("probes/core.toml", probes.join("core.toml")).unwrap();
    // Each string makes the three backreference patterns backtrack to their limit before the
    // last alternative accepts it, so checking the 64 strings (a 1 MB answer) takes seconds: far
    // past the budget.
    std::fs::write(
        probes.join("hostile.toml"),
        r#"suite = "hostile"
[[probe]]
id = "codes"
prompt = "List the codes as a JSON array of strings."
samples = 3
expect.json_schema = { type = "array", items = { anyOf = [{ pattern = "(a|aa)+\\1b" }, { pattern = "(a|aa)+\\1c" }, { pattern = "(a|aa)+\\1d" }, { type = "string" }] } }
"#,
    )
    .unwrap();
    let answer = serde_json::to_string(&vec!["a".repeat(16_000); 64]).unwrap();
    let hostile_url = hostile_server(answer).await;
    let mut profile = Profile::builtin("healthy").unwrap();
    profile.latency_scale = 0.0;
    let sim = sim::spawn_on_free_port(profile, 3).unwrap();
    let db = dir.path().join("m.db");
    let text = format!(
        r#"probes_dir = {probes:?}
[storage]
path = {db:?}
[[target]]
name = "hostile"
provider = "openai"
base_url = "{hostile_url}"
model = "m"
stream = false
suites = ["hostile"]
interval = "10m"
jitter = "0s"
[[target]]
name = "good"
provider = "ollama"
base_url = "{sim_url}"
model = "sim-7b"
suites = ["core"]
samples = 1
interval = "10s"
jitter = "0s"
"#,
        probes = probes.display().to_string(),
        db = db.display().to_string(),
        sim_url = sim.base_url(),
    );
    let path = dir.path().join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    let mut l = config::load_with_suites(&path, &|_: &str| None).unwrap();
    l.config.targets[1].interval = Duration::from_millis(100);
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(1);
    let http = Http::serve(shared.clone(), tx, None).await;
    let healthz = format!("http://{}/healthz", http.addr);
    let client = reqwest::Client::new();
    let options = Options {
        check_budget: Duration::from_millis(300),
        ..Options::default()
    };
    let rounds_of = |name: &str| {
        shared
            .status()
            .targets
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.rounds)
    };
    let mut health = 0;
    run_daemon(l, &db, options, &shared, rx, async {
        // Both rounds start at once; the hostile answer arrives within milliseconds and its
        // check would run for seconds. The good target goes on meanwhile, /healthz answers.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while rounds_of("hostile") == 0 || rounds_of("good") < 5 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "rounds: hostile {}, good {}",
                rounds_of("hostile"),
                rounds_of("good")
            );
            let r = tokio::time::timeout(Duration::from_secs(2), client.get(&healthz).send())
                .await
                .expect("/healthz answers while the check runs")
                .unwrap();
            assert_eq!(r.status(), 200);
            health += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    http.stop().await;
    assert!(health >= 1);
    // The hostile round ended shortly after the budget, not when its check would have.
    let status = shared.status();
    let hostile = status.targets.iter().find(|t| t.name == "hostile").unwrap();
    let last = hostile.last_round.as_ref().unwrap();
    assert!(
        last.ended_at_ms - last.started_at_ms < 2_000,
        "the hostile round took {} ms",
        last.ended_at_ms - last.started_at_ms
    );
    let samples = Store::open(&db)
        .unwrap()
        .samples(&SampleQuery {
            target: Some("hostile".into()),
            skip_text: true,
            ..SampleQuery::default()
        })
        .unwrap();
    assert_eq!(samples.len(), 3);
    let errors: Vec<_> = samples.iter().map(|s| s.error.as_ref().unwrap()).collect();
    for e in &errors {
        assert_eq!(e.kind, ErrorKind::CheckTimeout, "{e}");
    }
    assert_eq!(
        errors
            .iter()
            .filter(|e| e
                .message
                .contains("checking the answer (1024193 bytes) ran past the check budget (0.3s)"))
            .count(),
        1,
        "{errors:?}"
    );
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.message.contains("not checked"))
            .count(),
        2,
        "{errors:?}"
    );
    let metrics = shared.render_metrics();
    assert!(
        metrics
            .contains("modelwatch_requests_total{target=\"hostile\",outcome=\"check_timeout\"} 3"),
        "{metrics}"
    );
    // The model answered: the target is up, and no quality alarm.
    assert!(
        metrics.contains("modelwatch_target_up{target=\"hostile\"} 1"),
        "{metrics}"
    );
    let firing: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("modelwatch_alert_firing{target=\"hostile\"") && l.ends_with(" 1")
        })
        .collect();
    assert!(firing.is_empty(), "{firing:?}");
}
