//! The traces of the export: one trace per round, a root span for the round and one client
//! span per probe request under it. The ids are those the round's requests carried in
//! `traceparent` ([`crate::provider::trace`]), so a traced model server's spans join the trace.
//! Evaluation outcomes are `gen_ai.evaluation.result` events on the request span they evaluate,
//! as the GenAI conventions define them (an event parented to the evaluated operation).

use super::genai::{self, evaluations, span_attrs};
use super::{Attrs, RoundRecord, ms_to_ns, resource_msg, s, scope_msg};
use crate::provider::trace::{IdKey, TraceId, request_span, round_span};
use crate::telemetry::proto::{Msg, Value, attributes};

const SPAN_KIND_INTERNAL: u64 = 1;
const SPAN_KIND_CLIENT: u64 = 3;
const STATUS_OK: u64 = 1;
const STATUS_ERROR: u64 = 2;

/// The trace id of a round, as its requests carried it.
pub fn round_trace_id(key: &IdKey, r: &RoundRecord) -> TraceId {
    key.round_trace(&r.target, r.started_ms)
}

/// `ExportTraceServiceRequest`: the round's root span and one client span per request.
pub fn encode_traces(resource: &Attrs, r: &RoundRecord, key: &IdKey) -> Vec<u8> {
    let trace_id = round_trace_id(key, r);
    let root_id = round_span(&trace_id);
    let mut scope = Msg::new();
    scope.msg(1, &scope_msg());
    let round_start = ms_to_ns(r.started_ms);
    let mut round_end = round_start;
    for sample in &r.samples {
        let latency = sample
            .error
            .as_ref()
            .map(|e| e.latency_ms)
            .unwrap_or(sample.latency_ms);
        let start = ms_to_ns(sample.started_at_ms);
        let end = start + (latency.max(0.0) * 1e6) as u64;
        round_end = round_end.max(end);
        let mut span = Msg::new();
        span.bytes(1, &trace_id)
            .bytes(
                2,
                &request_span(&trace_id, &sample.suite, &sample.probe_id, sample.index),
            )
            .bytes(4, &root_id)
            .string(5, &format!("{} {}", r.request.operation, r.model))
            .uint(6, SPAN_KIND_CLIENT)
            .fixed64(7, start)
            .fixed64(8, end);
        attributes(&mut span, 9, &span_attrs(r, sample));
        for (name, score, label, explanation) in evaluations(sample) {
            let mut ev = Msg::new();
            ev.fixed64(1, end).string(2, genai::EVENT_EVALUATION_RESULT);
            let mut a = vec![
                s(genai::EVALUATION_NAME, name),
                s(genai::EVALUATION_SCORE_VALUE, Value::Double(score)),
                s(genai::EVALUATION_SCORE_LABEL, label),
            ];
            if !explanation.is_empty() {
                a.push(s(genai::EVALUATION_EXPLANATION, explanation));
            }
            attributes(&mut ev, 3, &a);
            span.msg(11, &ev);
        }
        let mut status = Msg::new();
        match &sample.error {
            Some(e) => status.string(2, &e.message).uint(3, STATUS_ERROR),
            None => status.uint(3, STATUS_OK),
        };
        span.msg(15, &status);
        scope.msg(2, &span);
    }
    let mut root = Msg::new();
    root.bytes(1, &trace_id)
        .bytes(2, &root_id)
        .string(5, &format!("round {}", r.target))
        .uint(6, SPAN_KIND_INTERNAL)
        .fixed64(7, round_start)
        .fixed64(8, round_end);
    let errors = r.samples.iter().filter(|x| x.error.is_some()).count();
    attributes(
        &mut root,
        9,
        &[
            s("modelwatch.target", r.target.as_str()),
            s("modelwatch.status", r.status.as_str()),
            s(
                "modelwatch.round.requests",
                Value::Int(r.samples.len() as i64),
            ),
            s("modelwatch.round.errors", Value::Int(errors as i64)),
        ],
    );
    let mut status = Msg::new();
    status.uint(
        3,
        if r.status == "completed" {
            STATUS_OK
        } else {
            STATUS_ERROR
        },
    );
    root.msg(15, &status);
    scope.msg(2, &root);
    let mut rs = Msg::new();
    rs.msg(1, &resource_msg(resource)).msg(2, &scope);
    let mut req = Msg::new();
    req.msg(1, &rs);
    req.0
}
