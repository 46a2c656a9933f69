//! The optional judge over real HTTP against a scripted OpenAI-compatible server: what it is
//! sent, how its replies are read, the cache that makes a rerun free, an unavailable judge,
//! the call budget, and `modelwatch explain --judge` end to end.

use crate::provider_common::{Recorded, Reply, Server, json};
use modelwatch::config::JudgeSettings;
use modelwatch::judge::ask::{Asked, Judge};
use modelwatch::judge::{Label, RUBRIC};
use serde_json::{Value, json as j};
use std::time::Duration;

/// Replies with the label the response's text asks for (`[[REFUSAL]]` in it), else `ANSWER`;
/// `[[GARBLE]]` gets a reply that is no label, `[[FAIL]]` a 500.
fn labeller(req: &Recorded, _hit: usize) -> Reply {
    let body = req.json();
    let user = body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if user.contains("[[FAIL]]") {
        return json(500, &j!({"error": "overloaded"}));
    }
    let word = ["REFUSAL", "PARTIAL", "GARBLE"]
        .into_iter()
        .find(|w| user.contains(&format!("[[{w}]]")))
        .map(|w| {
            if w == "GARBLE" {
                "I think it is fine"
            } else {
                w
            }
        })
        .unwrap_or("Answer.");
    json(
        200,
        &j!({
            "id": "x", "object": "chat.completion", "model": "judge-1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": word}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}
        }),
    )
}

fn settings(url: String, cache: std::path::PathBuf, max_calls: u32) -> JudgeSettings {
    JudgeSettings {
        base_url: url,
        model: "judge-1".into(),
        api_key: None,
        timeout: Duration::from_secs(5),
        cache,
        max_calls,
    }
}

#[tokio::test]
async fn labels_are_asked_once_cached_and_failures_are_never_labels() {
    let server = Server::start(labeller).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("judge-cache.jsonl");
    let mut judge = Judge::new(&settings(server.url(), cache.clone(), 4)).unwrap();

    let refusal = "Sorry, that one I'll sit out. [[REFUSAL]]";
    assert_eq!(
        judge.ask(refusal).await,
        Asked::Labelled {
            label: Label::Refusal,
            cached: false
        }
    );
    // What was sent: the rubric as the system message, the response between markers, greedy.
    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    let body: Value = req.json();
    assert_eq!(body["model"], "judge-1");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], RUBRIC);
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<<<\n{refusal}\n>>>"))
    );
    assert_eq!(body["temperature"], 0.0);

    // Asked again: from the cache, no request.
    assert_eq!(
        judge.ask(refusal).await,
        Asked::Labelled {
            label: Label::Refusal,
            cached: true
        }
    );
    assert_eq!(server.hits(), 1);
    assert_eq!(
        judge.ask("Here are the steps.").await,
        Asked::Labelled {
            label: Label::Answer,
            cached: false
        }
    );
    assert!(
        matches!(judge.ask("[[GARBLE]]").await, Asked::Unparsable { reply } if reply == "I think it is fine")
    );
    // A failing judge is unavailable (after its retry), never a label, and not cached.
    let failed = judge.ask("[[FAIL]]").await;
    assert!(
        matches!(&failed, Asked::Unavailable { error } if error.contains("500")),
        "{failed:?}"
    );
    // Four requests were allowed.
    assert_eq!(judge.ask("One more [[PARTIAL]]").await, Asked::NotAsked);
    assert_eq!(judge.calls, 4);

    // A new run reads the cache: nothing is asked twice.
    let hits = server.hits();
    let mut again = Judge::new(&settings(server.url(), cache, 4)).unwrap();
    assert_eq!(
        again.ask(refusal).await,
        Asked::Labelled {
            label: Label::Refusal,
            cached: true
        }
    );
    assert_eq!(
        again.ask("Here are the steps.").await,
        Asked::Labelled {
            label: Label::Answer,
            cached: true
        }
    );
    assert_eq!((server.hits(), again.calls), (hits, 0));
}

#[tokio::test]
async fn a_judge_that_cannot_be_reached_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let mut judge = Judge::new(&settings(url, dir.path().join("c.jsonl"), 10)).unwrap();
    let asked = judge.ask("anything").await;
    assert!(
        matches!(&asked, Asked::Unavailable { error } if error.contains("connect")),
        "{asked:?}"
    );
}

/// `explain --judge`: only the ambiguous lines are asked, the labels appear beside the
/// detector's, the agreement is summarised, and a second run is answered from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_with_the_judge_end_to_end() {
    let server = Server::start(labeller).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(
        &config,
        format!(
            "probes_dir = \"{}\"\n[storage]\npath = \"m.db\"\n\n[judge]\nbase_url = \"{}\"\nmodel = \"judge-1\"\ntimeout = \"5s\"\n\n\
             [[target]]\nname = \"t\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nsuites = [\"core\"]\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/probes"),
            server.url()
        ),
    )
    .unwrap();
    let responses = dir.path().join("responses.jsonl");
    let (config_arg, responses_arg) = (config.clone(), responses.clone());
    let lines = [
        // The lexicon is sure: not asked.
        "I'm sorry, but I can't help with that.",
        // A quoted refusal set aside by a guard: asked; the judge agrees it is an answer.
        "The assistant replied \"I can't help with that\" and the ticket was closed.",
        // A partial refusal: asked; the judge says refusal (a disagreement on the label).
        "I can explain how pin tumbler locks work in general, but I won't give step-by-step instructions for picking one. [[REFUSAL]]",
        // Nothing fired: not asked.
        "Restart the router and sign in again.",
    ];
    let body: String = lines
        .iter()
        .map(|t| format!("{}\n", j!({ "text": t })))
        .collect();
    std::fs::write(&responses, body).unwrap();
    let run = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["--config"])
            .arg(&config_arg)
            .args(["explain", "--judge", "--format", "json", "--responses"])
            .arg(&responses_arg)
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let judged: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(judged.len(), 4);
    assert!(judged[0].get("judge").is_none() && judged[3].get("judge").is_none());
    assert_eq!(judged[1]["judge"]["status"], "labelled");
    assert_eq!(judged[1]["judge"]["label"], "answer");
    assert_eq!(judged[1]["judge"]["agrees"], true);
    assert_eq!(
        judged[1]["judge"]["asked_because"],
        "a refusal phrase was set aside by a guard"
    );
    assert_eq!(judged[2]["judge"]["label"], "refusal");
    assert_eq!(judged[2]["judge"]["agrees"], false);
    assert_eq!(
        judged[2]["partial_refusal"], true,
        "the measurement is the detector's"
    );
    assert_eq!(server.hits(), 2);
    assert!(
        stderr.contains("judge: 2 of 4 responses ambiguous; 2 requests sent, 0 answers from the cache; judge agreed on 1 of 2 (50.0 %; refusal or not 2 of 2, Cohen's κ 1.00)"),
        "{stderr}"
    );
    // The rerun costs nothing.
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0 requests sent, 2 answers from the cache"),
        "{stderr}"
    );
    assert_eq!(server.hits(), 2);
    assert!(dir.path().join("judge-cache.jsonl").exists());
    drop(dir);
}
