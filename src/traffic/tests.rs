use super::*;
use crate::config::Secret;

fn targets() -> Vec<KnownTarget> {
    vec![
        KnownTarget {
            name: "chat".into(),
            model: "llama3:8b".into(),
        },
        KnownTarget {
            name: "chat-b".into(),
            model: "qwen".into(),
        },
        KnownTarget {
            name: "chat-c".into(),
            model: "qwen".into(),
        },
    ]
}

fn setup(
    edit: impl FnOnce(&mut TrafficSettings),
) -> (tempfile::TempDir, Arc<Traffic>, worker::Worker) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = TrafficSettings::with_token(Secret::new("0123456789abcdef"));
    edit(&mut settings);
    let storage = Storage {
        path: dir.path().join("m.db"),
        raw_text_retention: Duration::from_secs(86_400),
        sample_retention: Duration::from_secs(86_400 * 30),
    };
    let (t, w) = start(&settings, &storage, targets()).unwrap();
    (dir, t, w)
}

fn finish(t: &Traffic, w: worker::Worker) {
    t.close();
    w.join();
}

#[test]
fn lines_are_measured_per_stream_and_bad_lines_are_listed() {
    let (dir, t, w) = setup(|s| s.store_text = true);
    let body = concat!(
        r#"{"target":"chat","route":"/support","output":"I'm sorry, but I can't help with that.","finish_reason":"stop"}"#,
        "\n",
        r#"{"model":"llama3:8b","route":"/support","output":"Sure: restart the router, then wait a minute.","finish_reason":"length","latency_ms":420}"#,
        "\n\n",
        r#"{"target":"nope","output":"x"}"#,
        "\n",
        r#"{"model":"qwen","output":"x"}"#,
        "\n",
        r#"{"target":"chat","output_chars":"12"}"#,
        "\r\n",
        r#"{"target":"chat","output_chars":120,"output_tokens":30}"#,
        "\n",
    );
    let reply = t.ingest(body.as_bytes(), 1_000);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["accepted"], 3);
    assert_eq!(reply.body["rejected"], 3);
    let errors: Vec<String> = serde_json::from_value(reply.body["errors"].clone()).unwrap();
    assert_eq!(errors.len(), 3);
    assert!(
        errors[0].starts_with(
            "line 4: /target: unknown target `nope`: expected one of chat, chat-b, chat-c"
        ),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("line 5: /model: model `qwen` is served by several targets"),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("line 6: /output_chars: expected a non-negative integer"),
        "{errors:?}"
    );
    finish(&t, w);
    let st = t.status();
    assert_eq!(
        (st.accepted, st.invalid, st.processed, st.stored),
        (3, 3, 3, 3)
    );
    let support = st.streams.iter().find(|s| s.route == "/support").unwrap();
    assert_eq!(support.completions, 2);
    assert_eq!(support.rates["refusal_rate"], 0.5);
    assert_eq!(support.rates["truncation_rate"], 0.5);
    let default = st
        .streams
        .iter()
        .find(|s| s.route == DEFAULT_ROUTE)
        .unwrap();
    assert_eq!(default.judged, 0);
    assert_eq!(default.mean_length_chars, Some(120.0));
    let mut o = String::new();
    t.render_metrics(&mut o);
    assert!(
        o.contains("modelwatch_traffic_ingest_lines_total{outcome=\"invalid\"} 3\n"),
        "{o}"
    );
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let rows = store.traffic_rows("chat", 0).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].refusal, Some(true));
    assert!(rows[0].text.as_deref().unwrap().starts_with("I'm sorry"));
    assert_eq!(rows[2].refusal, None, "lengths only: nothing to judge");
}

#[test]
fn texts_are_not_kept_unless_enabled() {
    let (dir, t, w) = setup(|_| {});
    let reply = t.ingest(br#"{"target":"chat","output":"a secret answer"}"#, 5);
    assert_eq!(reply.status, 200);
    finish(&t, w);
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let rows = store.traffic_rows("chat", 0).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text, None);
    assert_eq!(rows[0].chars, Some(15));
}

#[test]
fn stored_texts_are_redacted_and_measured_as_received() {
    let (dir, t, w) = setup(|s| s.store_text = true);
    t.set_secrets(&["gw-internal-token-77"]);
    let text = "Use sk-proj-abcdefghijklmnop1234 with gw-internal-token-77 and the token 0123456789abcdef.";
    let line = serde_json::json!({"target": "chat", "output": text}).to_string();
    assert_eq!(t.ingest(line.as_bytes(), 5).status, 200);
    finish(&t, w);
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let rows = store.traffic_rows("chat", 0).unwrap();
    assert_eq!(
        rows[0].text.as_deref(),
        Some("Use [redacted] with [redacted] and the token [redacted].")
    );
    assert_eq!(rows[0].chars, Some(text.chars().count() as u32));
}

#[test]
fn a_body_of_only_bad_lines_is_a_400_and_too_many_lines_a_413() {
    let (_dir, t, w) = setup(|s| s.max_rate = 3);
    let reply = t.ingest(b"not json\n", 5);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body["errors"][0].as_str().unwrap().split(':').next(),
        Some("line 1")
    );
    let reply = t.ingest(b"{}\n{}\n{}\n{}\n", 5);
    assert_eq!(reply.status, 413);
    assert!(reply.body["error"].as_str().unwrap().contains("at most 3"));
    finish(&t, w);
    assert_eq!(t.status().refused["too_large"], 1);
}

#[test]
fn the_rate_limit_refuses_with_retry_after() {
    let (_dir, t, w) = setup(|s| s.max_rate = 2);
    let line = br#"{"target":"chat","output_chars":1}
{"target":"chat","output_chars":2}"#;
    assert_eq!(t.ingest(line, 5).status, 200);
    let reply = t.ingest(line, 5);
    assert_eq!(reply.status, 429);
    assert_eq!(reply.retry_after_s, Some(1));
    finish(&t, w);
    assert_eq!(t.status().accepted, 2);
}

#[test]
fn routes_beyond_max_streams_are_refused_per_line() {
    let (_dir, t, w) = setup(|s| s.max_streams = 2);
    let body = br#"{"target":"chat","route":"/a","output_chars":1}
{"target":"chat","route":"/b","output_chars":1}
{"target":"chat","route":"/c","output_chars":1}
{"target":"chat","route":"/a","output_chars":1}"#;
    let reply = t.ingest(body, 5);
    assert_eq!(reply.body["accepted"], 3);
    assert!(
        reply.body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("line 3: /route: a new stream beyond")
    );
    finish(&t, w);
}

#[test]
fn after_close_nothing_is_accepted_and_what_was_queued_is_processed() {
    let (_dir, t, w) = setup(|_| {});
    for _ in 0..20 {
        assert_eq!(
            t.ingest(br#"{"target":"chat","output_chars":7}"#, 5).status,
            200
        );
    }
    t.close();
    let reply = t.ingest(br#"{"target":"chat","output_chars":7}"#, 5);
    assert_eq!(reply.status, 503);
    w.join();
    let st = t.status();
    assert_eq!((st.accepted, st.processed, st.queue_depth), (20, 20, 0));
    assert_eq!(st.refused["closed"], 1);
}

#[test]
fn a_route_with_a_schema_gets_structured_outcomes_and_others_none() {
    let schema = crate::config::traffic::RouteSchema::new(
        "/extract".into(),
        serde_json::json!({"type": "object", "required": ["name"]}),
        crate::eval::JsonExtract::Whole,
        "inline".into(),
    )
    .unwrap();
    let (dir, t, w) = setup(|s| s.routes = vec![schema.clone()]);
    let line = |route: &str, output: &str| {
        serde_json::json!({"target": "chat", "route": route, "output": output}).to_string()
    };
    let body = [
        line("/extract", r#"{"name": "Ada"}"#),
        line("/extract", r#"{"name": "Ada",}"#),
        line("/extract", r#"{"age": 3}"#),
        line("/extract", "I'm sorry, but I can't help with that."),
        r#"{"target":"chat","route":"/extract","output_chars":40}"#.to_string(),
        line("/chat", r#"{"name": "Ada",}"#),
    ]
    .join("\n");
    assert_eq!(t.ingest(body.as_bytes(), 1_000).body["accepted"], 6);
    // A reload that changes nothing changes no route; dropping the schema changes /extract.
    assert!(t.set_routes(&[schema]).unwrap().is_empty());
    finish(&t, w);
    let st = t.status();
    let extract = st.streams.iter().find(|s| s.route == "/extract").unwrap();
    let structured = extract.structured.as_ref().unwrap();
    assert_eq!(structured.checked, 4);
    assert_eq!(structured.lengths_only, 1);
    assert_eq!(
        structured.outcomes,
        BTreeMap::from([
            ("ok".to_string(), 1),
            ("invalid_json".to_string(), 1),
            ("schema_violation".to_string(), 1),
            ("refused".to_string(), 1),
        ])
    );
    assert_eq!(extract.rates["structured_failure_rate"], 0.75);
    let chat = st.streams.iter().find(|s| s.route == "/chat").unwrap();
    assert_eq!(chat.structured, None);
    assert!(!chat.rates.contains_key("structured_failure_rate"));
    let mut metrics = String::new();
    t.render_metrics(&mut metrics);
    assert!(metrics.contains(
        "modelwatch_traffic_quality_ratio{target=\"chat\",route=\"/extract\",metric=\"structured_failure_rate\"} 0.75\n"
    ), "{metrics}");
    assert!(metrics.contains(
        "modelwatch_traffic_structured_outcomes_total{target=\"chat\",route=\"/extract\",outcome=\"invalid_json\"} 1\n"
    ));
    assert!(!metrics.contains("route=\"/chat\",metric=\"structured_failure_rate\""));
    assert_eq!(t.set_routes(&[]).unwrap(), vec!["/extract"]);
    assert!(t.schema_routes().is_empty());
    // The outcomes are stored with the measurements.
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let rows = store.traffic_rows("chat", 0).unwrap();
    let outcomes: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.structured.map(crate::sample::StructuredOutcome::as_str))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            Some("ok"),
            Some("invalid_json"),
            Some("schema_violation"),
            Some("refused"),
            None,
            None
        ]
    );
}
