use super::*;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event};

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn s(x: &str) -> Value {
    Value::StringValue(x.into())
}

fn span(attributes: Vec<KeyValue>) -> Span {
    Span {
        name: "chat llama3:8b".into(),
        start_time_unix_nano: 1_769_868_120_000_000_000,
        end_time_unix_nano: 1_769_868_120_812_500_000,
        attributes,
        ..Span::default()
    }
}

fn traces(spans: Vec<Span>, resource: Vec<KeyValue>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

#[test]
fn a_gen_ai_span_maps_to_a_record_and_other_spans_are_skipped() {
    let messages = r#"[{"role":"assistant","parts":[{"type":"text","content":"I'm sorry, "},{"type":"tool_call","id":"x"},{"type":"text","content":"I can't."}],"finish_reason":"stop"}]"#;
    let gen_ai = span(vec![
        kv("gen_ai.operation.name", s("chat")),
        kv("gen_ai.request.model", s("llama3:8b")),
        kv("gen_ai.response.model", s("llama3:8b-q4")),
        kv(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(s("stop")),
                }],
            }),
        ),
        kv("gen_ai.usage.output_tokens", Value::IntValue(7)),
        kv("gen_ai.output.messages", s(messages)),
    ]);
    let http = span(vec![kv("http.request.method", s("POST"))]);
    let body = traces(
        vec![http, gen_ai],
        vec![kv("modelwatch.route", s("/support"))],
    );
    let (records, total) = decode(Signal::Traces, Encoding::Protobuf, &body).unwrap();
    assert_eq!(total, 2);
    assert_eq!(records.len(), 1);
    let (n, r) = &records[0];
    assert_eq!(*n, 1);
    let r = r.as_ref().unwrap();
    assert_eq!(r.model.as_deref(), Some("llama3:8b"));
    assert_eq!(r.route.as_deref(), Some("/support"));
    assert_eq!(r.output.as_deref(), Some("I'm sorry, \nI can't."));
    assert_eq!(r.output_tokens, Some(7));
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.latency_ms, Some(812.5));
    assert_eq!(r.timestamp_ms, Some(1_769_868_120_812));
}

#[test]
fn the_output_comes_from_an_event_when_the_span_has_none() {
    let mut sp = span(vec![
        kv("gen_ai.request.model", s("m")),
        kv("modelwatch.target", s("chat")),
        kv("http.route", s("/faq")),
    ]);
    sp.events = vec![Event {
        name: "gen_ai.content.completion".into(),
        attributes: vec![kv("gen_ai.completion", s("Paris."))],
        ..Event::default()
    }];
    let (records, _) = decode(
        Signal::Traces,
        Encoding::Protobuf,
        &traces(vec![sp], vec![]),
    )
    .unwrap();
    let r = records[0].1.as_ref().unwrap();
    assert_eq!(r.target.as_deref(), Some("chat"));
    assert_eq!(r.route.as_deref(), Some("/faq"));
    assert_eq!(r.output.as_deref(), Some("Paris."));
}

#[test]
fn a_gen_ai_span_without_model_or_output_is_refused_by_number() {
    let no_model = span(vec![kv("gen_ai.output.messages", s("[]"))]);
    let no_output = span(vec![kv("gen_ai.request.model", s("m"))]);
    let bad_tokens = span(vec![
        kv("gen_ai.request.model", s("m")),
        kv("gen_ai.usage.output_tokens", Value::IntValue(-1)),
    ]);
    let (records, _) = decode(
        Signal::Traces,
        Encoding::Protobuf,
        &traces(vec![no_model, no_output, bad_tokens], vec![]),
    )
    .unwrap();
    let errors: Vec<String> = records
        .iter()
        .map(|(_, r)| r.as_ref().unwrap_err().to_string())
        .collect();
    assert!(
        errors[0].starts_with("span 1: /gen_ai.request.model: missing"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("span 2: /gen_ai.output.messages: missing"),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("span 3: /gen_ai.usage.output_tokens: expected a non-negative"),
        "{errors:?}"
    );
}

#[test]
fn otlp_json_with_hex_ids_and_string_integers_decodes() {
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"app"}}]},
      "scopeSpans":[{"scope":{"name":"genai"},"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat m",
        "kind":3,"startTimeUnixNano":"1769868120000000000","endTimeUnixNano":"1769868121000000000",
        "attributes":[
          {"key":"gen_ai.request.model","value":{"stringValue":"llama3:8b"}},
          {"key":"gen_ai.usage.output_tokens","value":{"intValue":"12"}},
          {"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"length"}]}}},
          {"key":"gen_ai.output.messages","value":{"stringValue":"[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"Hello\"}]}]"}}
        ],"status":{"code":1}}]}]}]}"#;
    let (records, total) = decode(Signal::Traces, Encoding::Json, body.as_bytes()).unwrap();
    assert_eq!(total, 1);
    let r = records[0].1.as_ref().unwrap();
    assert_eq!(r.output.as_deref(), Some("Hello"));
    assert_eq!(r.output_tokens, Some(12));
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.latency_ms, Some(1000.0));
}

#[test]
fn malformed_exports_are_refused_with_what_to_send() {
    let e = decode(Signal::Traces, Encoding::Protobuf, b"\xff\xff\xff\xff").unwrap_err();
    assert!(
        e.0.starts_with("not a protobuf ExportTraceServiceRequest"),
        "{e}"
    );
    let e = decode(Signal::Logs, Encoding::Json, b"{\"resourceLogs\": 3}").unwrap_err();
    assert!(
        e.0.starts_with("not an OTLP/JSON ExportLogsServiceRequest"),
        "{e}"
    );
    assert_eq!(
        Encoding::from_content_type("application/json; charset=utf-8"),
        Some(Encoding::Json)
    );
    assert_eq!(Encoding::from_content_type("text/plain"), None);
}

#[test]
fn a_gen_ai_choice_log_record_maps_its_body() {
    let body = Value::KvlistValue(KeyValueList {
        values: vec![
            kv("index", Value::IntValue(0)),
            kv("finish_reason", s("stop")),
            kv(
                "message",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("content", s("The answer is 4."))],
                }),
            ),
        ],
    });
    let choice = LogRecord {
        time_unix_nano: 2_000_000_000,
        event_name: "gen_ai.choice".into(),
        attributes: vec![kv("gen_ai.response.model", s("m"))],
        body: Some(AnyValue { value: Some(body) }),
        ..LogRecord::default()
    };
    let plain = LogRecord {
        body: Some(AnyValue {
            value: Some(s("GET /healthz 200")),
        }),
        ..LogRecord::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![plain, choice],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let (records, total) = decode(Signal::Logs, Encoding::Protobuf, &req.encode_to_vec()).unwrap();
    assert_eq!(total, 2);
    assert_eq!(records.len(), 1);
    let r = records[0].1.as_ref().unwrap();
    assert_eq!(r.model.as_deref(), Some("m"));
    assert_eq!(r.output.as_deref(), Some("The answer is 4."));
    assert_eq!(r.timestamp_ms, Some(2_000));
    assert_eq!(r.latency_ms, None);
}
