//! OTLP/HTTP ingest through the real `modelwatch daemon` process: an application instrumented
//! with the official OpenTelemetry Python SDK exports GenAI spans with its OTLP/HTTP protobuf
//! exporter to `POST /v1/traces`, and the same completions sent as JSON lines give the same
//! measurements in `/api/v1/status` and `/metrics`; a refused span is counted in
//! `partial_success`; OTLP/JSON log records are accepted on `POST /v1/logs`; undecodable,
//! oversized, unauthenticated and non-OTLP requests get their classified error.

use crate::daemon_traffic::{TOKEN, env};
use crate::sinks_common::venv_python;
use daemon_proc::wait_until;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::daemon_proc;

/// The same three completions both ways: (text, finish reason, output tokens).
const COMPLETIONS: [(&str, &str, u32); 3] = [
    ("I'm sorry, but I can't help with that request.", "stop", 11),
    ("Restart the router and wait a minute.", "length", 8),
    (
        "Open Settings, then Network, then choose Reset.",
        "stop",
        10,
    ),
];

/// A chat application: each completion is a GenAI client span (inside an HTTP server span
/// that is not GenAI), exported by the SDK's batch processor and OTLP/HTTP protobuf exporter.
const APP: &str = r#"
import json, sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind

endpoint, token, completions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces",
                            headers={"Authorization": "Bearer " + token}, timeout=10)
provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("support-bot")

def chat(model, text, finish, tokens):
    with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER) as http:
        http.set_attribute("http.route", "/chat")
        with tracer.start_as_current_span("chat " + model, kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.response.model", model)
            span.set_attribute("gen_ai.response.finish_reasons", [finish])
            span.set_attribute("gen_ai.usage.output_tokens", tokens)
            span.set_attribute("gen_ai.output.messages", json.dumps([{
                "role": "assistant", "finish_reason": finish,
                "parts": [{"type": "text", "content": text}]}]))
            span.set_attribute("modelwatch.route", "/otel")
            time.sleep(0.005)

for text, finish, tokens in completions:
    chat("sim-7b", text, finish, tokens)
chat("gpt-unknown", "Hello.", "stop", 2)
ok = provider.force_flush(15000)
provider.shutdown()
print("flushed" if ok else "not flushed")
"#;

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..KeyValue::default()
    }
}

/// POSTs `body` to `path` with `content_type` and the token: status, content type, body.
fn post_raw(
    env: &crate::daemon_traffic::Env,
    path: &str,
    content_type: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    env.rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}{path}", env.port))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("the daemon answers");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            r.status().as_u16(),
            ct,
            r.bytes().await.unwrap_or_default().to_vec(),
        )
    })
}

fn stream<'a>(status: &'a serde_json::Value, route: &str) -> &'a serde_json::Value {
    status["traffic"]["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["route"] == route))
        .unwrap_or_else(|| panic!("no stream {route} in {status}"))
}

#[test]
fn sdk_spans_give_the_same_measurements_as_json_lines() {
    let env = env("max_body_bytes = 8192");
    let mut child = env.start();

    let completions: Vec<serde_json::Value> = COMPLETIONS
        .iter()
        .map(|(t, f, n)| serde_json::json!([t, f, n]))
        .collect();
    let out = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(APP)
        .arg(format!("http://127.0.0.1:{}", env.port))
        .arg(TOKEN)
        .arg(serde_json::Value::Array(completions).to_string())
        .output()
        .expect("the venv's python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the application failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "flushed");
    assert!(
        !stderr.contains("Failed to export"),
        "the exporter's requests succeed: {stderr}"
    );

    let lines: String = COMPLETIONS
        .iter()
        .map(|(t, f, n)| {
            serde_json::json!({"model": "sim-7b", "route": "/jsonl", "output": t,
                "finish_reason": f, "output_tokens": n})
            .to_string()
                + "\n"
        })
        .collect();
    let (code, _, reply) = env.post(Some(TOKEN), lines);
    assert_eq!(code, 200, "{reply}");

    wait_until("both ways to be processed", 20, || {
        env.status()["traffic"]["processed"] == 6
    });
    let status = env.status();
    // The unknown model's span is refused, the HTTP spans skipped.
    assert_eq!(status["traffic"]["accepted"], 6, "{status}");
    assert_eq!(status["traffic"]["invalid"], 1, "{status}");
    let (otel, jsonl) = (stream(&status, "/otel"), stream(&status, "/jsonl"));
    assert_eq!(otel["target"], "chat");
    for field in [
        "completions",
        "judged",
        "rates",
        "mean_length_chars",
        "finish_reasons",
    ] {
        assert_eq!(otel[field], jsonl[field], "{field}: {otel} vs {jsonl}");
    }
    assert_eq!(otel["completions"], 3);
    assert_eq!(otel["finish_reasons"]["length"], 1);
    assert!(
        (otel["rates"]["refusal_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{otel}"
    );
    // The span duration is the latency.
    assert!(otel["mean_latency_ms"].as_f64().unwrap() >= 5.0, "{otel}");

    let metrics = env.get("/metrics").1;
    for family in [
        "modelwatch_traffic_completions_total{target=\"chat\",route=\"ROUTE\"} 3\n",
        "modelwatch_traffic_quality_ratio{target=\"chat\",route=\"ROUTE\",metric=\"refusal_rate\"} ",
        "modelwatch_traffic_quality_ratio{target=\"chat\",route=\"ROUTE\",metric=\"truncation_rate\"} ",
    ] {
        let line = |route: &str| {
            let prefix = family.replace("ROUTE", route);
            metrics
                .lines()
                .find(|l| format!("{l}\n").starts_with(&prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
                .split(' ')
                .next_back()
                .unwrap()
                .to_string()
        };
        assert_eq!(line("/otel"), line("/jsonl"), "{family}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn gen_ai_span(model: Option<&str>, text: &str) -> Span {
    let mut attributes = vec![
        kv("gen_ai.operation.name", "chat"),
        kv(
            "gen_ai.output.messages",
            &serde_json::json!([{"role":"assistant","parts":[{"type":"text","content":text}]}])
                .to_string(),
        ),
    ];
    if let Some(m) = model {
        attributes.push(kv("gen_ai.request.model", m));
    }
    Span {
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_250_000_000,
        attributes,
        ..Span::default()
    }
}

#[test]
fn refused_spans_are_counted_and_bad_exports_classified() {
    let env = env("max_body_bytes = 4096");
    let mut child = env.start();
    let pb = "application/x-protobuf";
    let export = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    gen_ai_span(Some("sim-7b"), "Fine."),
                    gen_ai_span(None, "No model."),
                    gen_ai_span(Some("other"), "Unknown model."),
                ],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec();
    let (code, ct, body) = post_raw(&env, "/v1/traces", pb, Some(TOKEN), export.clone());
    assert_eq!((code, ct.as_str()), (200, pb));
    let reply = ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
    let partial = reply.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("span 2: /gen_ai.request.model: missing"),
        "{}",
        partial.error_message
    );
    assert!(
        partial
            .error_message
            .contains("span 3: /gen_ai.request.model: no configured target serves model `other`"),
        "{}",
        partial.error_message
    );

    // OTLP/JSON log records: a `gen_ai.choice` event.
    let logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1769868120000000000",
        "eventName":"gen_ai.choice","attributes":[{"key":"gen_ai.response.model","value":{"stringValue":"sim-7b"}},
        {"key":"modelwatch.route","value":{"stringValue":"/logs"}}],
        "body":{"kvlistValue":{"values":[{"key":"finish_reason","value":{"stringValue":"stop"}},
        {"key":"message","value":{"kvlistValue":{"values":[{"key":"content","value":{"stringValue":"Yes."}}]}}}]}}}]}]}]}"#;
    let (code, ct, body) = post_raw(
        &env,
        "/v1/logs",
        "application/json",
        Some(TOKEN),
        logs.into(),
    );
    assert_eq!(
        (code, ct.as_str()),
        (200, "application/json"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(reply["partialSuccess"].is_null(), "{reply}");

    // Bad input: each classified, nothing accepted.
    let (code, _, body) = post_raw(
        &env,
        "/v1/traces",
        pb,
        Some(TOKEN),
        b"\xff\xff\xff".to_vec(),
    );
    assert_eq!(code, 400);
    let message = String::from_utf8_lossy(&body);
    assert!(
        message.contains("not a protobuf ExportTraceServiceRequest"),
        "{message}"
    );
    let (code, ct, body) = post_raw(
        &env,
        "/v1/traces",
        "application/json",
        Some(TOKEN),
        b"{\"resourceSpans\": {}}".to_vec(),
    );
    assert_eq!((code, ct.as_str()), (400, "application/json"));
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["code"], 3, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("not an OTLP/JSON ExportTraceServiceRequest"),
        "{status}"
    );
    let (code, _, body) = post_raw(
        &env,
        "/v1/traces",
        "text/plain",
        Some(TOKEN),
        export.clone(),
    );
    assert_eq!(code, 415, "{}", String::from_utf8_lossy(&body));
    let (code, _, _) = post_raw(&env, "/v1/traces", pb, None, export.clone());
    assert_eq!(code, 401);
    let (code, _, body) = post_raw(&env, "/v1/traces", pb, Some(TOKEN), export.repeat(40));
    assert_eq!(code, 413);
    assert!(String::from_utf8_lossy(&body).contains("[traffic] max_body_bytes"));

    wait_until("the accepted records to be processed", 20, || {
        env.status()["traffic"]["processed"] == 2
    });
    let traffic = env.status()["traffic"].clone();
    assert_eq!(traffic["accepted"], 2, "{traffic}");
    assert_eq!(traffic["invalid"], 2, "{traffic}");
    assert_eq!(traffic["refused"]["malformed"], 2, "{traffic}");
    assert_eq!(traffic["refused"]["unsupported"], 1, "{traffic}");
    assert_eq!(traffic["refused"]["unauthorized"], 1, "{traffic}");
    assert_eq!(traffic["refused"]["too_large"], 1, "{traffic}");
    assert_eq!(stream(&env.status(), "/logs")["finish_reasons"]["stop"], 1);
    let _ = child.kill();
    let _ = child.wait();
}
