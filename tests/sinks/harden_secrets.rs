//! A target's API key never reaches the store, the baseline file or a report, whatever the
//! server does with it: echoed at every offset of a long error body (across the point where the
//! explanation is shortened), inside a JSON error message, or inside a successful answer.
//! Through the real binary, a real local HTTP server and the real SQLite store.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const KEY: &str = "sk-live-7QpZx3Lm9RtVb2Nc8Kd4Hf6Jg1Ws5Ye0Ua7Io3Pl";
/// Error bodies put the key at offsets `0..OFFSETS`, well past the 300-character cut.
const OFFSETS: usize = 360;

/// Odd requests fail with the key at offset `n / 2` of a long body (every fifth one as a JSON
/// error message); even requests succeed with the key inside the answer.
async fn chat(State(n): State<Arc<AtomicUsize>>) -> axum::response::Response {
    let i = n.fetch_add(1, Ordering::SeqCst);
    if i % 2 == 1 && i / 2 < OFFSETS {
        let text = format!("{}{KEY}{}", "e".repeat(i / 2), " tail".repeat(100));
        if i % 5 == 0 {
            let body = serde_json::json!({ "error": { "message": text } });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        return (StatusCode::INTERNAL_SERVER_ERROR, text).into_response();
    }
    axum::Json(serde_json::json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{ "index": 0, "finish_reason": "stop", "message": {
            "role": "assistant",
            "content": format!("Your header was Authorization: Bearer {KEY}; happy to help.")
        }}],
        "usage": { "prompt_tokens": 5, "completion_tokens": 9 }
    }))
    .into_response()
}

async fn models() -> axum::response::Response {
    axum::Json(serde_json::json!({ "object": "list", "data": [{ "id": "m", "object": "model", "owned_by": KEY }] }))
        .into_response()
}

/// Serves the echoing server on a thread; returns its port.
fn server() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/v1/chat/completions", axum::routing::post(chat))
                .route("/v1/models", axum::routing::get(models))
                .with_state(Arc::new(AtomicUsize::new(0)));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

use crate::common_verdict::modelwatch;

/// The first 8-character piece of the key found in `text`.
fn key_piece(text: &str) -> Option<&'static str> {
    (0..=KEY.len() - 8)
        .map(|i| &KEY[i..i + 8])
        .find(|w| text.contains(w))
}

/// Every text and blob of every table in the store at `db`.
fn store_texts(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for c in 0..columns {
                use rusqlite::types::ValueRef;
                let text = match row.get_ref(c).unwrap() {
                    ValueRef::Text(b) | ValueRef::Blob(b) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    _ => continue,
                };
                out.push((t.clone(), text));
            }
        }
    }
    out
}

#[test]
fn the_key_never_reaches_the_store_the_baseline_or_the_report() {
    let port = server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leak.toml"),
        "suite = \"leak\"\n[[probe]]\nid = \"echo\"\nprompt = \"Say hello.\"\n",
    )
    .unwrap();
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n\n[[target]]\nname = \"a\"\nprovider = \"openai\"\n\
             base_url = \"http://127.0.0.1:{port}\"\nmodel = \"m\"\napi_key = \"{KEY}\"\n\
             suites = [\"leak.toml\"]\nstream = false\nretries = 0\nmax_concurrency = 8\n",
            db = dir.path().join("modelwatch.db").display().to_string()
        ),
    )
    .unwrap();
    let samples = (2 * OFFSETS).to_string();
    let baseline = dir.path().join("a.json");
    let out = modelwatch(
        &config,
        &[
            "baseline",
            "record",
            "--target",
            "a",
            "--samples",
            &samples,
            "--force",
            "--out",
            baseline.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(baseline.exists(), "no baseline: {stdout}\n{stderr}");
    assert_eq!(key_piece(&stdout), None, "{stdout}");
    assert_eq!(key_piece(&stderr), None, "{stderr}");
    let report = modelwatch(&config, &["run", "--samples", "20", "--format", "json"]);
    for text in [&report.stdout, &report.stderr] {
        let text = String::from_utf8_lossy(text);
        assert_eq!(key_piece(&text), None, "report: {text}");
    }

    let file = std::fs::read_to_string(&baseline).unwrap();
    assert_eq!(key_piece(&file), None, "baseline file");
    assert!(
        file.contains("[redacted]"),
        "the excerpts are kept, redacted"
    );

    let texts = store_texts(&dir.path().join("modelwatch.db"));
    for (table, text) in &texts {
        assert_eq!(key_piece(text), None, "{table}: {text}");
    }
    // The store really holds what the server said: an error per offset and the answers.
    let conn = rusqlite::Connection::open(dir.path().join("modelwatch.db")).unwrap();
    let errors: i64 = conn
        .query_row(
            "SELECT count(*) FROM samples WHERE error_message LIKE '%[redacted]%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let answers: i64 = conn
        .query_row(
            "SELECT count(*) FROM sample_texts WHERE text LIKE '%Bearer [redacted]; happy%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Offsets past the cut leave no trace of the key at all, so only those before it say so.
    assert!(
        errors >= 250,
        "{errors} error messages mention the redaction"
    );
    assert!(
        answers >= OFFSETS as i64,
        "{answers} answers stored redacted"
    );
    let all_errors: i64 = conn
        .query_row(
            "SELECT count(*) FROM samples WHERE error_message IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(all_errors, OFFSETS as i64);
}
