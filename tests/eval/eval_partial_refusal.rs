//! Partial refusals as a measurement: judged by the evaluator, stored in a real SQLite store
//! and read back, and absent from (then defaulted in) sample JSON written before the field.

use modelwatch::eval::{Evaluator, RefusalConfig};
use modelwatch::provider::Fingerprint;
use modelwatch::sample::{Completion, FinishReason, Measurements, Sample};
use modelwatch::store::{RoundStatus, SampleQuery, Store};
use std::collections::BTreeMap;

fn measure(text: &str) -> Measurements {
    let ev = Evaluator::new(&RefusalConfig::default()).unwrap();
    ev.evaluate(
        &Completion {
            text: text.into(),
            finish_reason: Some(FinishReason::Stop),
            ..Completion::default()
        },
        None,
    )
}

fn sample(index: u32, m: Measurements) -> Sample {
    Sample {
        seed: None,
        target: "chat".into(),
        suite: "core".into(),
        probe_id: "dosage".into(),
        probe_hash: "dosage-v1".into(),
        index,
        started_at_ms: 1000 + i64::from(index),
        latency_ms: 200.0,
        ttft_ms: None,
        attempts: 1,
        finish_reason: Some(FinishReason::Stop),
        input_tokens: Some(12),
        response_model: None,
        system_fingerprint: None,
        measurements: Some(m),
        error: None,
        text: None,
    }
}

#[test]
fn partial_refusals_are_measured_stored_and_read_back() {
    let partial = measure(
        "I can't give exact dosages for your child, but in general, paracetamol for children is \
         dosed by weight, and the leaflet has a table by age and weight.",
    );
    assert!(partial.refusal && partial.partial_refusal, "{partial:?}");
    let plain = measure("I'm sorry, but I can't help with that.");
    assert!(plain.refusal && !plain.partial_refusal);
    let answer = measure("Paracetamol is dosed by weight; see the leaflet.");
    assert!(!answer.refusal && !answer.partial_refusal);

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let fp = Fingerprint {
        provider: "openai".into(),
        model: "m".into(),
        digest: None,
        details: BTreeMap::new(),
    };
    store.record_fingerprint("chat", &fp, 1000).unwrap();
    let r = store.begin_round("chat", Some(&fp.id()), 1000).unwrap();
    let samples = vec![sample(0, partial), sample(1, plain), sample(2, answer)];
    store.insert_samples(r, &samples).unwrap();
    store.finish_round(r, 2000, RoundStatus::Completed).unwrap();
    let back = store
        .samples(&SampleQuery {
            target: Some("chat".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(back, samples);
    let flags: Vec<bool> = back
        .iter()
        .map(|s| s.measurements.as_ref().unwrap().partial_refusal)
        .collect();
    assert_eq!(flags, [true, false, false]);
}

#[test]
fn older_measurement_json_loads_and_false_is_not_written() {
    let old = r#"{"chars": 10, "words": 2, "lines": 1, "output_tokens": 3,
        "tokens_estimated": true, "truncated": false, "empty": false, "refusal": true,
        "refusal_rule": "lexicon:en:cant_help", "structured": null, "task_success": null}"#;
    let m: Measurements = serde_json::from_str(old).unwrap();
    assert!(m.refusal && !m.partial_refusal);
    let json = serde_json::to_value(&m).unwrap();
    assert!(json.get("partial_refusal").is_none(), "{json}");
    let partial = Measurements {
        partial_refusal: true,
        ..m
    };
    assert_eq!(
        serde_json::to_value(&partial).unwrap()["partial_refusal"],
        true
    );
}
