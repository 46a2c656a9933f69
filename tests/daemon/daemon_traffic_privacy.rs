//! Stored traffic texts through the real daemon (`store_text = true`): the ingest token and
//! credential shapes in a completion are redacted in `traffic_texts`, while the measurements
//! are those of the text as received; the key of a target added by a reload is redacted from
//! the next text on.

use crate::daemon_traffic::{TOKEN, env};
use daemon_proc::wait_until;

use crate::daemon_proc;

#[test]
fn stored_texts_are_redacted() {
    let env = env("store_text = true");
    let mut child = env.start();
    let text = format!(
        "Your key is sk-proj-abcdefghijklmnop1234 and the ingest token {TOKEN}; connect to postgres://app:hunter2secret@db:5432/x."
    );
    let line = serde_json::json!({"target": "chat", "output": text}).to_string();
    let (code, _, reply) = env.post(Some(TOKEN), line);
    assert_eq!(code, 200, "{reply}");
    wait_until("the completion to be stored", 20, || {
        env.status()["traffic"]["stored"] == 1
    });
    let _ = child.kill();
    let _ = child.wait();
    let db = rusqlite::Connection::open(env.dir.path().join("m.db")).unwrap();
    let (stored, chars): (String, i64) = db
        .query_row(
            "SELECT t.text, c.chars FROM traffic_texts t JOIN traffic_completions c ON c.id = t.completion_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        stored,
        "Your key is [redacted] and the ingest token [redacted]; connect to postgres://app:[redacted]@db:5432/x."
    );
    assert_eq!(chars, text.chars().count() as i64);
}

/// A target added by a reload: its key is redacted from the texts stored after the reload
/// (before it, the daemon did not know the value, and it is no credential shape).
#[test]
fn a_key_of_a_target_added_by_a_reload_is_redacted_at_once() {
    const KEY: &str = "gw7-added-target-key-0042";
    let env = env("store_text = true");
    let mut child = env.start();
    let post = |text: &str| {
        let line = serde_json::json!({"target": "chat", "output": text}).to_string();
        let (code, _, reply) = env.post(Some(TOKEN), line);
        assert_eq!(code, 200, "{reply}");
    };
    post(&format!("before the reload: {KEY}"));
    wait_until("the first completion to be stored", 20, || {
        env.status()["traffic"]["stored"] == 1
    });

    std::fs::write(env.dir.path().join("added.key"), format!("{KEY}\n")).unwrap();
    let config = std::fs::read_to_string(&env.cfg).unwrap();
    let added = format!(
        "{config}\n[[target]]\nname = \"added\"\nprovider = \"ollama\"\nbase_url = \"{}\"\n\
         model = \"sim-7b\"\napi_key_file = \"added.key\"\nsuites = [\"core\"]\nsamples = 1\n\
         interval = \"10s\"\njitter = \"0s\"\n",
        env.sim.base_url()
    );
    std::fs::write(&env.cfg, added).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_until("the reload to add the target", 20, || {
        env.status()["targets"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t["name"] == "added"))
    });
    post(&format!("after the reload: {KEY}"));
    wait_until("the second completion to be stored", 20, || {
        env.status()["traffic"]["stored"] == 2
    });
    let _ = child.kill();
    let _ = child.wait();
    let db = rusqlite::Connection::open(env.dir.path().join("m.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT text FROM traffic_texts ORDER BY completion_id")
        .unwrap();
    let stored: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        stored,
        [
            format!("before the reload: {KEY}"),
            "after the reload: [redacted]".to_string()
        ]
    );
}
