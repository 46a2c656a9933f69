//! The traces of the export: one trace per round, one client span per probe request.

use super::genai::{evaluations, gen_ai_attrs};
use super::{Attrs, RoundRecord, ms_to_ns, resource_msg, s, scope_msg};
use crate::rng::Rng;
use crate::telemetry::proto::{Msg, Value, attributes};

/// `ExportTraceServiceRequest`: one trace per round, one client span per request.
pub fn encode_traces(resource: &Attrs, r: &RoundRecord, rng: &mut Rng) -> Vec<u8> {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    trace_id[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    let mut scope = Msg::new();
    scope.msg(1, &scope_msg());
    for sample in &r.samples {
        let latency = sample
            .error
            .as_ref()
            .map(|e| e.latency_ms)
            .unwrap_or(sample.latency_ms);
        let start = ms_to_ns(sample.started_at_ms);
        let end = start + (latency.max(0.0) * 1e6) as u64;
        let mut span = Msg::new();
        span.bytes(1, &trace_id)
            .bytes(2, &rng.next_u64().max(1).to_le_bytes())
            .string(5, &format!("chat {}", r.model))
            .uint(6, 3) // SPAN_KIND_CLIENT
            .fixed64(7, start)
            .fixed64(8, end);
        let mut attrs = gen_ai_attrs(r, sample);
        if let Some(n) = sample.input_tokens {
            attrs.push(s("gen_ai.usage.input_tokens", Value::Int(i64::from(n))));
        }
        if let Some(m) = &sample.measurements {
            attrs.push(s(
                "gen_ai.usage.output_tokens",
                Value::Int(i64::from(m.output_tokens)),
            ));
        }
        attrs.push(s("modelwatch.target", r.target.as_str()));
        attrs.push(s(
            "modelwatch.probe",
            format!("{}/{}", sample.suite, sample.probe_id),
        ));
        attributes(&mut span, 9, &attrs);
        for (name, score, label, explanation) in evaluations(sample) {
            let mut ev = Msg::new();
            ev.fixed64(1, end).string(2, "gen_ai.evaluation.result");
            let mut a = vec![
                s("gen_ai.evaluation.name", name),
                s("gen_ai.evaluation.score.value", Value::Double(score)),
                s("gen_ai.evaluation.score.label", label),
            ];
            if !explanation.is_empty() {
                a.push(s("gen_ai.evaluation.explanation", explanation));
            }
            attributes(&mut ev, 3, &a);
            span.msg(11, &ev);
        }
        let mut status = Msg::new();
        match &sample.error {
            Some(e) => status.string(2, &e.message).uint(3, 2),
            None => status.uint(3, 1),
        };
        span.msg(15, &status);
        scope.msg(2, &span);
    }
    let mut rs = Msg::new();
    rs.msg(1, &resource_msg(resource)).msg(2, &scope);
    let mut req = Msg::new();
    req.msg(1, &rs);
    req.0
}
