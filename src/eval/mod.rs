//! Response evaluation: turns one [`Completion`] into the [`Measurements`] the statistics work
//! on, and explains every judgement on request. Pure: text and compiled checks in, data out.
//!
//! - [`length`]: characters, words, lines, tokens (from usage, else estimated), truncation;
//! - [`refusal`]: provider signals, empty responses, then a one-pass multilingual lexicon;
//! - [`structured`]: JSON extraction and its outcome for probes that expect JSON;
//! - [`task`]: task success checks;
//! - [`checks`]: a probe's checks compiled once at load;
//! - [`explain`]: `modelwatch explain` over JSONL responses.

mod checks;
pub mod expect;
pub mod explain;
pub mod length;
pub mod refusal;
pub mod structured;
mod swar;
mod task;

pub use checks::{CheckError, CompiledChecks};
pub use expect::{Expect, JsonExtract, JsonSchemaSpec, MatchMode, TaskCheck};
pub use refusal::{Layer, RefusalConfig, RefusalConfigError, RefusalDetector};
pub use task::CheckResult;

use crate::sample::{Completion, FinishReason, Measurements, StructuredOutcome};
use serde::Serialize;
use structured::{Extracted, ParseFailure, Source, Violation};
use task::Subject;

/// Holds the compiled refusal lexicon; build once and share (it is `Send + Sync`).
#[derive(Debug, Clone)]
pub struct Evaluator {
    refusal: RefusalDetector,
}

/// Everything judged about one response, before it is reduced to measurements or explained.
struct Judged {
    length: length::Length,
    output_tokens: u32,
    tokens_estimated: bool,
    truncated: bool,
    refusal: refusal::RefusalJudgement,
    extracted: Option<Extracted>,
    violations: Vec<Violation>,
    structured: Option<StructuredOutcome>,
    task: Option<CheckResult>,
}

impl Evaluator {
    /// Compiles the built-in lexicon plus the configured patterns.
    pub fn new(refusal_config: &RefusalConfig) -> Result<Self, RefusalConfigError> {
        Ok(Evaluator {
            refusal: RefusalDetector::new(refusal_config)?,
        })
    }

    /// Measures one response. `checks` are the probe's compiled checks (`None`: only length and
    /// refusal are judged).
    pub fn evaluate(
        &self,
        completion: &Completion,
        checks: Option<&CompiledChecks>,
    ) -> Measurements {
        let j = self.judge(completion, checks);
        measurements(&j)
    }

    /// Measures one response and says why for each judgement.
    pub fn explain(&self, completion: &Completion, checks: Option<&CompiledChecks>) -> Explanation {
        let j = self.judge(completion, checks);
        let text = completion.text.as_str();
        let guarded = j.refusal.guarded.as_ref();
        let refusal_why = RefusalWhy {
            outcome: if j.refusal.refusal {
                "refusal"
            } else if j.refusal.empty {
                "empty"
            } else {
                "answer"
            },
            partial: j.refusal.partial,
            layer: j.refusal.layer.or(guarded.map(|_| Layer::Guard)),
            rule: j.refusal.rule.clone(),
            matched: j
                .refusal
                .span
                .as_ref()
                .and_then(|s| text.get(s.clone()))
                .map(str::to_string),
            span: j.refusal.span.as_ref().map(|s| [s.start, s.end]),
            guard: guarded.map(|g| GuardWhy {
                rule: g.rule.clone(),
                reason: g.reason,
                matched: text.get(g.span.clone()).map(structured::excerpt),
                span: [g.span.start, g.span.end],
            }),
            classifier: j.refusal.classifier.as_ref().map(|c| ClassifierWhy {
                refusal: round3(c.refusal),
                partial: round3(c.partial),
                segment: text.get(c.segment.clone()).map(structured::excerpt),
                span: [c.segment.start, c.segment.end],
            }),
        };
        let structured_why = j.structured.map(|outcome| {
            let (source, span, error) = match &j.extracted {
                Some(Extracted::Json { source, span, .. }) => {
                    (Some(*source), Some([span.0, span.1]), None)
                }
                Some(Extracted::Invalid { source, failure }) => {
                    (Some(*source), None, Some(failure.clone()))
                }
                _ => (None, None, None),
            };
            StructuredWhy {
                outcome,
                source,
                span,
                error,
                violations: j.violations.clone(),
            }
        });
        let measurements = measurements(&j);
        Explanation {
            line: None,
            probe: None,
            why: Why {
                length: LengthWhy {
                    token_source: if j.tokens_estimated {
                        "estimate"
                    } else {
                        "usage"
                    },
                    token_rule: j.tokens_estimated.then_some(length::TOKEN_ESTIMATE_RULE),
                    finish_reason: completion.finish_reason.as_ref().map(|f| f.to_string()),
                },
                refusal: refusal_why,
                structured: structured_why,
                task: j.task,
            },
            measurements,
        }
    }

    fn judge(&self, c: &Completion, checks: Option<&CompiledChecks>) -> Judged {
        let text = c.text.as_str();
        let len = length::measure(text);
        let (output_tokens, tokens_estimated) = match c.output_tokens {
            Some(t) => (t, false),
            None => (length::estimate_tokens(&len), true),
        };
        let truncated = c.finish_reason == Some(FinishReason::Length);

        let refusal = if c.refusal.as_deref().is_some_and(|r| !r.trim().is_empty()) {
            provider_refusal("provider:refusal_field")
        } else if c.finish_reason == Some(FinishReason::ContentFilter) {
            provider_refusal("provider:content_filter")
        } else {
            self.refusal.judge_text(text)
        };

        let mut j = Judged {
            length: len,
            output_tokens,
            tokens_estimated,
            truncated,
            refusal,
            extracted: None,
            violations: Vec::new(),
            structured: None,
            task: None,
        };
        let Some(checks) = checks else { return j };

        let refused = j.refusal.refusal;
        if checks.needs_json() && !refused {
            let extracted = structured::extract(text, checks.json_extract);
            if let (Some(schema), Extracted::Json { value, .. }) = (&checks.schema, &extracted) {
                j.violations = structured::violations(schema, value);
            }
            j.extracted = Some(extracted);
        }
        if checks.expects_json {
            let none = Extracted::None;
            j.structured = Some(structured::classify(
                text,
                refused,
                truncated,
                j.extracted.as_ref().unwrap_or(&none),
                &j.violations,
            ));
        }
        j.task = checks.task.as_ref().map(|t| {
            if refused {
                CheckResult {
                    kind: t.kind(),
                    passed: false,
                    reason: "refused".into(),
                    checks: Vec::new(),
                }
            } else {
                let json = match &j.extracted {
                    Some(Extracted::Json { value, .. }) => Some(value),
                    _ => None,
                };
                t.run(&Subject { text, json })
            }
        });
        j
    }
}

/// A provider-signalled refusal. Never also `empty`, even with an empty body: the two outcomes
/// are exclusive so that rates do not count one response twice.
fn provider_refusal(rule: &str) -> refusal::RefusalJudgement {
    refusal::RefusalJudgement {
        refusal: true,
        empty: false,
        rule: Some(rule.to_string()),
        layer: Some(Layer::Provider),
        ..refusal::RefusalJudgement::default()
    }
}

fn measurements(j: &Judged) -> Measurements {
    Measurements {
        chars: j.length.chars,
        words: j.length.words,
        lines: j.length.lines,
        output_tokens: j.output_tokens,
        tokens_estimated: j.tokens_estimated,
        truncated: j.truncated,
        empty: j.refusal.empty,
        refusal: j.refusal.refusal,
        refusal_rule: j.refusal.rule.clone(),
        partial_refusal: j.refusal.partial,
        structured: j.structured,
        task_success: j.task.as_ref().map(|t| t.passed),
    }
}

/// Every measurement of one response and the reason for each judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Input line number (`modelwatch explain`), 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The probe the response was judged against, if any.
    pub probe: Option<String>,
    #[serde(flatten)]
    pub measurements: Measurements,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Why {
    pub length: LengthWhy,
    pub refusal: RefusalWhy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredWhy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthWhy {
    /// `usage` (reported by the server) or `estimate`.
    pub token_source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_rule: Option<&'static str>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusalWhy {
    /// `refusal`, `empty` or `answer`.
    pub outcome: &'static str,
    /// A partial refusal: answers, but withholds a specific part.
    pub partial: bool,
    /// Which layer decided: `provider`, `lexicon`, `grammar`, `classifier`, `config`, or `guard` (a trigger
    /// fired but was set aside: the response is an answer).
    pub layer: Option<Layer>,
    pub rule: Option<String>,
    /// The text the rule matched.
    pub matched: Option<String>,
    /// Byte range of `matched` in the response.
    pub span: Option<[usize; 2]>,
    /// The trigger a guard set aside, when the outcome is `answer` because of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardWhy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierWhy>,
}

/// The classifier's reading of a response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifierWhy {
    /// Probability of a refusal (outright or partial); a refusal from
    /// [`refusal::classifier::THRESHOLD`].
    pub refusal: f64,
    /// Probability of a partial refusal.
    pub partial: f64,
    /// The window (opening or closing sentences) that weighed most towards a refusal.
    pub segment: Option<String>,
    pub span: [usize; 2],
}

fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardWhy {
    pub rule: String,
    /// `quotation, code or dialogue`, `exclusion` or `outside the opening`.
    pub reason: &'static str,
    pub matched: Option<String>,
    pub span: [usize; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructuredWhy {
    pub outcome: StructuredOutcome,
    /// Where the JSON (or JSON-like text) was found.
    pub source: Option<Source>,
    /// Byte range of the parsed JSON in the response.
    pub span: Option<[usize; 2]>,
    /// Why it did not parse, positioned in the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ParseFailure>,
    /// The first schema violations, by JSON pointer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Expect;
    use std::path::Path;

    fn evaluator() -> &'static Evaluator {
        static E: std::sync::OnceLock<Evaluator> = std::sync::OnceLock::new();
        E.get_or_init(|| Evaluator::new(&RefusalConfig::default()).unwrap())
    }

    fn completion(text: &str) -> Completion {
        Completion {
            text: text.into(),
            finish_reason: Some(FinishReason::Stop),
            ..Completion::default()
        }
    }

    fn checks(src: &str) -> CompiledChecks {
        let e: Expect = toml::from_str(src).unwrap();
        CompiledChecks::compile(&e, Path::new(".")).unwrap()
    }

    #[test]
    fn evaluator_and_checks_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Evaluator>();
        assert_send_sync::<CompiledChecks>();
    }

    #[test]
    fn fills_length_and_token_fields() {
        let m = evaluator().evaluate(&completion("Hello there,\nworld"), None);
        assert_eq!((m.chars, m.words, m.lines), (18, 3, 2));
        assert_eq!((m.output_tokens, m.tokens_estimated), (5, true));
        assert!(!m.truncated && !m.refusal && !m.empty);
        assert_eq!((m.structured, m.task_success), (None, None));
        let mut c = completion("x");
        c.output_tokens = Some(9);
        c.finish_reason = Some(FinishReason::Length);
        let m = evaluator().evaluate(&c, None);
        assert_eq!(
            (m.output_tokens, m.tokens_estimated, m.truncated),
            (9, false, true)
        );
    }

    #[test]
    fn provider_signals_come_first() {
        let mut c = completion("Here is the answer.");
        c.refusal = Some("I can't help with that.".into());
        let m = evaluator().evaluate(&c, None);
        assert!(m.refusal);
        assert_eq!(m.refusal_rule.as_deref(), Some("provider:refusal_field"));
        let mut c = completion("");
        c.finish_reason = Some(FinishReason::ContentFilter);
        let m = evaluator().evaluate(&c, None);
        assert_eq!(m.refusal_rule.as_deref(), Some("provider:content_filter"));
        assert!(m.refusal && !m.empty);
    }

    #[test]
    fn empty_is_not_a_refusal_and_has_no_json() {
        let c = checks("json = true");
        let m = evaluator().evaluate(&completion("  "), Some(&c));
        assert!(m.empty && !m.refusal);
        assert_eq!(m.structured, Some(StructuredOutcome::NoJson));
    }

    #[test]
    fn refusal_on_a_json_probe_is_refused_and_fails_the_task() {
        let c = checks("json = true\ntask = { kind = 'json_equals', pointer = '/a', value = 1 }");
        let e = evaluator().explain(
            &completion("I'm sorry, but I can't help with that."),
            Some(&c),
        );
        assert_eq!(e.measurements.structured, Some(StructuredOutcome::Refused));
        assert_eq!(e.measurements.task_success, Some(false));
        assert_eq!(e.why.task.as_ref().unwrap().reason, "refused");
        assert_eq!(e.why.refusal.matched.as_deref(), Some("I can't help"));
    }

    #[test]
    fn truncated_json_on_length() {
        let c = checks("json = true");
        let mut comp = completion("{\"items\": [1, 2, 3");
        comp.finish_reason = Some(FinishReason::Length);
        let e = evaluator().explain(&comp, Some(&c));
        assert_eq!(
            e.measurements.structured,
            Some(StructuredOutcome::Truncated)
        );
        assert!(e.why.structured.unwrap().error.unwrap().unclosed);
    }

    #[test]
    fn schema_violation_is_explained_by_pointer() {
        let c = checks(
            "json_schema = { type = 'object', required = ['vendor', 'total'], properties = { total = { type = 'number' } } }\n\
             task = { kind = 'json_equals', pointer = '/total', value = 42.5 }",
        );
        let e = evaluator().explain(
            &completion("```json\n{\"vendor\": \"Acme\", \"total\": \"42.5\"}\n```"),
            Some(&c),
        );
        assert_eq!(
            e.measurements.structured,
            Some(StructuredOutcome::SchemaViolation)
        );
        let s = e.why.structured.unwrap();
        assert_eq!(s.source, Some(Source::Fenced));
        assert_eq!(s.violations[0].pointer, "/total");
        assert_eq!(e.measurements.task_success, Some(false));
        let ok = evaluator().evaluate(
            &completion("{\"vendor\": \"Acme\", \"total\": 42.5}"),
            Some(&c),
        );
        assert_eq!(ok.structured, Some(StructuredOutcome::Ok));
        assert_eq!(ok.task_success, Some(true));
    }

    #[test]
    fn explanation_serialises_flat_measurements() {
        let e = evaluator().explain(&completion("I won't help with this."), None);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["refusal"], serde_json::json!(true));
        assert_eq!(v["refusal_rule"], serde_json::json!("lexicon:en:cant_help"));
        assert_eq!(v["why"]["refusal"]["layer"], serde_json::json!("lexicon"));
        assert_eq!(v["why"]["refusal"]["span"], serde_json::json!([0, 12]));
    }
}
