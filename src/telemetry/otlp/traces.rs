//! The traces of the export: one trace per round, a root span for the round and one client
//! span per probe request under it, started and ended through the SDK tracer at the times the
//! round recorded. The ids are those the round's requests carried in `traceparent`
//! ([`crate::provider::trace`], handed to the SDK by [`super::pipeline::DerivedIds`]), so a
//! traced model server's spans join the trace. Evaluation outcomes are
//! `gen_ai.evaluation.result` events on the request span they evaluate, as the GenAI
//! conventions define them (an event parented to the evaluated operation).

use super::genai::{self, evaluations, span_attrs};
use super::pipeline::with_ids;
use super::{RoundRecord, ms_to_ns, s};
use crate::provider::trace::{IdKey, TraceId, request_span, round_span};
use opentelemetry::trace::{Event, Span as _, SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::SdkTracer;
use std::time::{Duration, SystemTime};

/// The trace id of a round, as its requests carried it.
pub fn round_trace_id(key: &IdKey, r: &RoundRecord) -> TraceId {
    key.round_trace(&r.target, r.started_ms)
}

fn at(ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Start and end (ns) of each request of the round.
fn request_times(r: &RoundRecord) -> Vec<(u64, u64)> {
    r.samples
        .iter()
        .map(|sample| {
            let latency = sample
                .error
                .as_ref()
                .map(|e| e.latency_ms)
                .unwrap_or(sample.latency_ms);
            let start = ms_to_ns(sample.started_at_ms);
            (start, start + (latency.max(0.0) * 1e6) as u64)
        })
        .collect()
}

/// Records the round's root span and one client span per request with `tracer`.
pub fn record_trace(tracer: &SdkTracer, r: &RoundRecord, key: &IdKey) {
    let trace_id = round_trace_id(key, r);
    let root_id = round_span(&trace_id);
    let times = request_times(r);
    let round_start = ms_to_ns(r.started_ms);
    let round_end = times.iter().map(|t| t.1).fold(round_start, u64::max);
    let errors = r.samples.iter().filter(|x| x.error.is_some()).count();
    let root = with_ids(trace_id, root_id, || {
        SpanBuilder::from_name(format!("round {}", r.target))
            .with_kind(SpanKind::Internal)
            .with_start_time(at(round_start))
            .with_attributes([
                s("modelwatch.target", r.target.clone()),
                s("modelwatch.status", r.status.clone()),
                s("modelwatch.round.requests", r.samples.len() as i64),
                s("modelwatch.round.errors", errors as i64),
            ])
            .start_with_context(tracer, &Context::new())
    });
    let cx = Context::new().with_span(root);
    for (sample, &(start, end)) in r.samples.iter().zip(&times) {
        let events = evaluations(sample)
            .into_iter()
            .map(|(name, score, label, explanation)| {
                let mut a = vec![
                    s(genai::EVALUATION_NAME, name),
                    s(genai::EVALUATION_SCORE_VALUE, Value::F64(score)),
                    s(genai::EVALUATION_SCORE_LABEL, label),
                ];
                if !explanation.is_empty() {
                    a.push(s(genai::EVALUATION_EXPLANATION, explanation));
                }
                Event::new(genai::EVENT_EVALUATION_RESULT, at(end), a, 0)
            })
            .collect();
        let span_id = request_span(&trace_id, &sample.suite, &sample.probe_id, sample.index);
        let mut span = with_ids(trace_id, span_id, || {
            SpanBuilder::from_name(format!("{} {}", r.request.operation, r.model))
                .with_kind(SpanKind::Client)
                .with_start_time(at(start))
                .with_attributes(span_attrs(r, sample))
                .with_events(events)
                .start_with_context(tracer, &cx)
        });
        span.set_status(match &sample.error {
            Some(e) => Status::error(e.message.clone()),
            None => Status::Ok,
        });
        span.end_with_timestamp(at(end));
    }
    let root = cx.span();
    root.set_status(if r.status == "completed" {
        Status::Ok
    } else {
        Status::error(r.status.clone())
    });
    root.end_with_timestamp(at(round_end));
}
