//! Stored traffic texts through the real daemon (`store_text = true`): the ingest token and
//! credential shapes in a completion are redacted in `traffic_texts`, while the measurements
//! are those of the text as received.

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
