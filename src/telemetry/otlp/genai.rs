//! The GenAI semantic-convention attributes of a probe request and its evaluation results.

use super::{Attrs, RoundRecord, s};
use crate::sample::{Sample, StructuredOutcome};

pub(super) fn gen_ai_attrs(r: &RoundRecord, sample: &Sample) -> Attrs {
    let mut a = vec![
        s("gen_ai.operation.name", "chat"),
        s("gen_ai.provider.name", r.provider.as_str()),
        s("gen_ai.request.model", r.model.as_str()),
    ];
    if let Some(m) = &sample.response_model {
        a.push(s("gen_ai.response.model", m.as_str()));
    }
    if let Some(e) = &sample.error {
        a.push(s("error.type", e.kind.as_str()));
    }
    a
}

/// The evaluation outcomes of a sample: (name, score, label, explanation).
pub(super) fn evaluations(sample: &Sample) -> Vec<(&'static str, f64, String, String)> {
    let Some(m) = &sample.measurements else {
        return Vec::new();
    };
    let yes = |b: bool| if b { 1.0 } else { 0.0 };
    let mut out = vec![
        (
            "refusal",
            yes(m.refusal),
            if m.refusal { "refused" } else { "answered" }.to_string(),
            m.refusal_rule
                .clone()
                .map(|r| format!("matched refusal rule {r}"))
                .unwrap_or_default(),
        ),
        (
            "empty",
            yes(m.empty),
            if m.empty { "empty" } else { "non_empty" }.into(),
            String::new(),
        ),
        (
            "truncated",
            yes(m.truncated),
            if m.truncated { "truncated" } else { "complete" }.into(),
            String::new(),
        ),
    ];
    if let Some(st) = m.structured {
        out.push((
            "structured_output",
            yes(st == StructuredOutcome::Ok),
            st.as_str().to_string(),
            String::new(),
        ));
    }
    if let Some(t) = m.task_success {
        out.push((
            "task",
            yes(t),
            if t { "pass" } else { "fail" }.into(),
            String::new(),
        ));
    }
    out
}
