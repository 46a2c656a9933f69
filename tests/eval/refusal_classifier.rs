//! The learned refusal classifier: the shipped weights are what the trainer produces from the
//! corpus, and the layer shows up in judgements and in `explain`.

use modelwatch::eval::refusal::classifier::Classifier;
use modelwatch::eval::refusal::train::{TRAINING_FILES, load, train};
use modelwatch::eval::{Evaluator, Layer, RefusalConfig, RefusalDetector};
use modelwatch::sample::{Completion, FinishReason};
use std::path::Path;

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/refusal_corpus")
}

#[test]
fn the_shipped_weights_are_what_the_trainer_produces() {
    let examples = load(&corpus_dir(), TRAINING_FILES).unwrap();
    assert!(examples.len() > 1_000, "{} examples", examples.len());
    let trained = train(&examples).unwrap();
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/refusal_classifier.bin"))
            .unwrap();
    assert_eq!(trained.len(), shipped.len());
    assert!(
        trained == shipped,
        "assets/refusal_classifier.bin is stale: run `cargo run --release --example train_refusal`"
    );
}

fn judge(text: &str) -> modelwatch::eval::refusal::RefusalJudgement {
    static D: std::sync::OnceLock<RefusalDetector> = std::sync::OnceLock::new();
    D.get_or_init(|| RefusalDetector::new(&RefusalConfig::default()).unwrap())
        .judge_text(text)
}

#[test]
fn the_classifier_catches_refusals_no_rule_lists() {
    // Phrasings none of the lexicon rules or grammar frames cover.
    for text in [
        "Yeah, no. Putting that together is a hard pass for me.",
        "Ce genre de texte, très peu pour moi, désolé.",
    ] {
        let j = judge(text);
        assert!(j.refusal, "missed: {text} ({:?})", j.classifier);
        assert_eq!(j.layer, Some(Layer::Classifier), "{text}: {:?}", j.rule);
    }
}

#[test]
fn quoted_and_fenced_refusals_are_not_read_by_the_classifier() {
    for text in [
        "The template says 'Putting that together is a hard pass for me.' and we replaced it.",
        "```\nreturn \"I'd prefer to stay out of that one, count me out.\"\n```",
        "> That's a no from me, I'm going to pass on this one.\n\nThat line is the canned reply.",
    ] {
        let j = judge(text);
        assert!(
            !j.refusal,
            "false alarm ({:?}, {:?}): {text}",
            j.rule, j.classifier
        );
    }
}

#[test]
fn a_response_made_only_of_quotations_gets_no_score() {
    let j = judge("\"I won't do that.\"");
    assert!(!j.refusal);
    assert!(j.classifier.is_none(), "{:?}", j.classifier);
}

#[test]
fn refusal_text_raises_the_score_and_answers_stay_low() {
    let c = Classifier::shipped().unwrap();
    let score = |t: &str| c.score(t, &[]).unwrap().refusal;
    let answer = score("The capital of France is Paris, on the Seine.");
    let declined = score(
        "The capital of France is Paris, on the Seine. I'd rather not get into the rest, though.",
    );
    let refusal = score("I'd rather not get into that topic, sorry.");
    assert!(answer < 0.5, "answer {answer}");
    assert!(declined > answer, "{declined} <= {answer}");
    assert!(refusal > 0.7, "refusal {refusal}");
}

#[test]
fn explain_shows_the_classifier_score_and_segment() {
    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let completion = Completion {
        text: "Yeah, no. Putting that together is a hard pass for me.".into(),
        finish_reason: Some(FinishReason::Stop),
        ..Completion::default()
    };
    let e = evaluator.explain(&completion, None);
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["why"]["refusal"]["layer"], "classifier", "{v}");
    assert!(
        v["why"]["refusal"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("classifier:")
    );
    let c = &v["why"]["refusal"]["classifier"];
    assert!(c["refusal"].as_f64().unwrap() >= 0.5, "{c}");
    assert_eq!(c["segment"], completion.text.as_str());
    assert_eq!(c["span"], serde_json::json!([0, completion.text.len()]));
    // An ordinary answer still carries its (low) score.
    let answer = Completion {
        text: "Paris is the capital of France, on the Seine.".into(),
        ..Completion::default()
    };
    let v = serde_json::to_value(evaluator.explain(&answer, None)).unwrap();
    assert_eq!(v["why"]["refusal"]["outcome"], "answer");
    assert!(
        v["why"]["refusal"]["classifier"]["refusal"]
            .as_f64()
            .unwrap()
            < 0.5
    );
}

#[test]
fn repetition_does_not_amplify_the_classifier() {
    // A JSON array of long repeated strings: the same few n-grams hundreds of times count once,
    // so the answer is judged on what it contains, not on how often.
    let text = serde_json::to_string(&vec!["a".repeat(16_000); 64]).unwrap();
    let j = judge(&text);
    assert!(!j.refusal, "{:?}", j.classifier);
    for filler in [
        "Modest, deliberate edits reveal far more clearly what mattered. ",
        "Afterwards, a quick review confirms that everything behaves as intended. ",
    ] {
        let j = judge(&filler.repeat(20));
        assert!(!j.refusal, "{filler}: {:?}", j.classifier);
        // Once the opening window (three sentences) and the closing one (two) are full — five
        // copies — more copies change nothing: a hundred weigh exactly what five do. (Two
        // copies fill only the opening, so their score differs by the closing window's own
        // n-grams, by an amount that depends on the weights.)
        let score = |n: usize| {
            judge(&filler.repeat(n))
                .classifier
                .map_or(0.0, |s| s.refusal)
        };
        let many = j.classifier.map_or(0.0, |s| s.refusal);
        assert_eq!(score(100), many, "{filler}");
        assert_eq!(score(5), many, "{filler}");
    }
}

#[test]
fn short_answers_that_open_with_no_are_not_refusals() {
    // Task probes get short answers; read by the classifier, "No," at the start of a short
    // answer looks like a curt refusal (these scored 0.91–0.98 when it read from 12 characters).
    for text in [
        "Nope, that's a myth.",
        "No, I don't think so.",
        "Non, c'est faux.",
        "No, non è corretto.",
        "Нет, это не так.",
        "No, Python lists are mutable.",
    ] {
        let j = judge(text);
        assert!(!j.refusal, "{text}: {j:?}");
    }
}
