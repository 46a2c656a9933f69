//! The OpenTelemetry semantic-convention names the export uses, each spelled once here and
//! pinned by a test to a copy of the convention registry
//! (`tests/fixtures/semconv/gen_ai_names.txt`), and the GenAI attributes of a probe request
//! and its evaluation results. Literals, not the `opentelemetry-semantic-conventions` crate:
//! its `gen_ai` constants are deprecated upstream since the GenAI conventions moved to their
//! own repository.

use super::{Attrs, RoundRecord, s};
use crate::sample::{Sample, StructuredOutcome};
use opentelemetry::{Array, StringValue, Value};

pub const OPERATION_NAME: &str = "gen_ai.operation.name";
pub const OPERATION_CHAT: &str = "chat";
pub const OPERATION_TEXT_COMPLETION: &str = "text_completion";
pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
pub const REQUEST_MODEL: &str = "gen_ai.request.model";
pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
pub const REQUEST_TOP_P: &str = "gen_ai.request.top_p";
pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
pub const REQUEST_SEED: &str = "gen_ai.request.seed";
pub const REQUEST_STREAM: &str = "gen_ai.request.stream";
pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
pub const RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
pub const OUTPUT_TYPE: &str = "gen_ai.output.type";
pub const OUTPUT_TEXT: &str = "text";
pub const OUTPUT_JSON: &str = "json";
pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const TOKEN_TYPE: &str = "gen_ai.token.type";
pub const TOKEN_INPUT: &str = "input";
pub const TOKEN_OUTPUT: &str = "output";
pub const EVALUATION_NAME: &str = "gen_ai.evaluation.name";
pub const EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
pub const EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
pub const EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
pub const SYSTEM_FINGERPRINT: &str = "openai.response.system_fingerprint";
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
pub const ERROR_TYPE: &str = "error.type";
/// The event of one evaluation outcome, on the span of the request it evaluates.
pub const EVENT_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
pub const METRIC_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
pub const METRIC_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
pub const METRIC_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";

/// What the exporter knows of a target's requests beyond each sample: the API family, where
/// the server is, and the generation parameters the target sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestInfo {
    /// [`OPERATION_CHAT`] or [`OPERATION_TEXT_COMPLETION`].
    pub operation: &'static str,
    pub server_address: Option<String>,
    pub server_port: Option<u16>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<u64>,
    pub stream: bool,
}

impl RequestInfo {
    pub fn of(target: &crate::config::Target) -> RequestInfo {
        RequestInfo::new(target.api, &target.base_url, &target.params, target.stream)
    }

    pub fn new(
        api: crate::config::Api,
        base_url: &str,
        p: &crate::probe::GenParams,
        stream: bool,
    ) -> RequestInfo {
        let url = reqwest::Url::parse(base_url).ok();
        RequestInfo {
            operation: match api {
                crate::config::Api::Completion => OPERATION_TEXT_COMPLETION,
                crate::config::Api::Chat => OPERATION_CHAT,
            },
            server_address: url.as_ref().and_then(|u| u.host_str().map(String::from)),
            server_port: url.as_ref().and_then(|u| u.port_or_known_default()),
            temperature: p.temperature,
            top_p: p.top_p,
            max_tokens: p.max_tokens,
            seed: p.seed,
            stream,
        }
    }
}

/// The attributes of a request on its metrics: operation, provider, models, server, error,
/// and the target (so two targets, or two daemons, never share a series).
pub(super) fn gen_ai_attrs(r: &RoundRecord, sample: &Sample) -> Attrs {
    let mut a = vec![
        s(OPERATION_NAME, r.request.operation),
        s(PROVIDER_NAME, r.provider.clone()),
        s(REQUEST_MODEL, r.model.clone()),
    ];
    if let Some(m) = &sample.response_model {
        a.push(s(RESPONSE_MODEL, m.clone()));
    }
    if let Some(h) = &r.request.server_address {
        a.push(s(SERVER_ADDRESS, h.clone()));
    }
    if let Some(p) = r.request.server_port {
        a.push(s(SERVER_PORT, Value::I64(i64::from(p))));
    }
    if let Some(e) = &sample.error {
        a.push(s(ERROR_TYPE, e.kind.as_str().to_string()));
    }
    a.push(s("modelwatch.target", r.target.clone()));
    a
}

/// The attributes only a request's span carries: parameters sent, what came back.
pub(super) fn span_attrs(r: &RoundRecord, sample: &Sample) -> Attrs {
    let q = &r.request;
    let mut a = gen_ai_attrs(r, sample);
    if let Some(t) = q.temperature {
        a.push(s(REQUEST_TEMPERATURE, Value::F64(t)));
    }
    if let Some(t) = q.top_p {
        a.push(s(REQUEST_TOP_P, Value::F64(t)));
    }
    if let Some(n) = q.max_tokens {
        a.push(s(REQUEST_MAX_TOKENS, Value::I64(i64::from(n))));
    }
    if let Some(n) = q.seed {
        // Each sample of a seeded probe is sent `seed + index`.
        let sent = n.wrapping_add(u64::from(sample.index));
        a.push(s(REQUEST_SEED, Value::I64(sent as i64)));
    }
    a.push(s(REQUEST_STREAM, Value::Bool(q.stream)));
    let structured = sample
        .measurements
        .as_ref()
        .is_some_and(|m| m.structured.is_some());
    a.push(s(
        OUTPUT_TYPE,
        if structured { OUTPUT_JSON } else { OUTPUT_TEXT },
    ));
    if let Some(f) = &sample.finish_reason {
        a.push(s(
            RESPONSE_FINISH_REASONS,
            Value::Array(Array::String(vec![StringValue::from(
                f.as_str().to_string(),
            )])),
        ));
    }
    if let Some(ms) = sample.ttft_ms.filter(|v| v.is_finite()) {
        a.push(s(RESPONSE_TIME_TO_FIRST_CHUNK, Value::F64(ms / 1000.0)));
    }
    if let Some(fp) = &sample.system_fingerprint {
        a.push(s(SYSTEM_FINGERPRINT, fp.clone()));
    }
    if let Some(n) = sample.input_tokens {
        a.push(s(USAGE_INPUT_TOKENS, Value::I64(i64::from(n))));
    }
    if let Some(m) = &sample.measurements {
        a.push(s(
            USAGE_OUTPUT_TOKENS,
            Value::I64(i64::from(m.output_tokens)),
        ));
    }
    a.push(s(
        "modelwatch.probe",
        format!("{}/{}", sample.suite, sample.probe_id),
    ));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry copy: one name per line, `#` comments.
    const REGISTRY: &str = include_str!("../../../tests/fixtures/semconv/gen_ai_names.txt");

    #[test]
    fn every_name_is_in_the_convention_registry() {
        let known: std::collections::BTreeSet<&str> = REGISTRY
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let attributes = [
            OPERATION_NAME,
            PROVIDER_NAME,
            REQUEST_MODEL,
            REQUEST_TEMPERATURE,
            REQUEST_TOP_P,
            REQUEST_MAX_TOKENS,
            REQUEST_SEED,
            REQUEST_STREAM,
            RESPONSE_MODEL,
            RESPONSE_FINISH_REASONS,
            RESPONSE_TIME_TO_FIRST_CHUNK,
            OUTPUT_TYPE,
            USAGE_INPUT_TOKENS,
            USAGE_OUTPUT_TOKENS,
            TOKEN_TYPE,
            EVALUATION_NAME,
            EVALUATION_SCORE_VALUE,
            EVALUATION_SCORE_LABEL,
            EVALUATION_EXPLANATION,
            SYSTEM_FINGERPRINT,
            SERVER_ADDRESS,
            SERVER_PORT,
            ERROR_TYPE,
        ];
        let values = [
            (OPERATION_NAME, OPERATION_CHAT),
            (OPERATION_NAME, OPERATION_TEXT_COMPLETION),
            (OUTPUT_TYPE, OUTPUT_TEXT),
            (OUTPUT_TYPE, OUTPUT_JSON),
            (TOKEN_TYPE, TOKEN_INPUT),
            (TOKEN_TYPE, TOKEN_OUTPUT),
        ];
        let mut missing: Vec<String> = attributes
            .iter()
            .map(|a| a.to_string())
            .chain(values.iter().map(|(k, v)| format!("{k}={v}")))
            .chain(
                [
                    METRIC_OPERATION_DURATION,
                    METRIC_TOKEN_USAGE,
                    METRIC_TIME_TO_FIRST_CHUNK,
                ]
                .iter()
                .map(|m| format!("metric:{m}")),
            )
            .chain(std::iter::once(format!("event:{EVENT_EVALUATION_RESULT}")))
            .collect();
        missing.retain(|n| !known.contains(n.as_str()));
        assert!(missing.is_empty(), "not in the registry: {missing:?}");
    }

    #[test]
    fn the_operation_follows_the_api_and_the_server_comes_from_the_base_url() {
        use crate::config::Api;
        let p = crate::probe::GenParams::default();
        let info = RequestInfo::new(Api::Completion, "https://llm.internal:8443/v1", &p, false);
        assert_eq!(info.operation, "text_completion");
        assert_eq!(info.server_address.as_deref(), Some("llm.internal"));
        assert_eq!(info.server_port, Some(8443));
        let info = RequestInfo::new(Api::Chat, "http://localhost", &p, false);
        assert_eq!((info.operation, info.server_port), ("chat", Some(80)));
    }
}
