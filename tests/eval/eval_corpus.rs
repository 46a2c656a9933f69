//! Precision and recall of the refusal detector on the labelled corpus
//! (`tests/fixtures/refusal_corpus/corpus.jsonl`), overall and per language.
//! Run with `cargo test --test eval eval_corpus:: -- --nocapture` to see the figures.

use modelwatch::eval::refusal::train::TRAINING_FILES;
use modelwatch::eval::{Evaluator, RefusalConfig};
use modelwatch::sample::{Completion, FinishReason};
use modelwatch::stats::Confusion;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Item {
    text: String,
    refusal: bool,
    lang: String,
    kind: String,
}

struct Report {
    total: Confusion,
    /// Partial-refusal label against `kind == "partial"`.
    partial: Confusion,
    by_lang: BTreeMap<String, Confusion>,
    by_kind: BTreeMap<String, Confusion>,
    errors: Vec<String>,
}

fn measure(evaluator: &Evaluator, file: &str) -> Report {
    let path = format!(
        "{}/tests/fixtures/refusal_corpus/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let corpus = std::fs::read_to_string(&path).expect("corpus file");
    let items: Vec<Item> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus line"))
        .collect();
    let mut r = Report {
        total: Confusion::default(),
        by_lang: BTreeMap::new(),
        by_kind: BTreeMap::new(),
        errors: Vec::new(),
        partial: Confusion::default(),
    };
    for item in &items {
        let completion = Completion {
            text: item.text.clone(),
            finish_reason: Some(FinishReason::Stop),
            ..Completion::default()
        };
        let e = evaluator.explain(&completion, None);
        let m = &e.measurements;
        r.total.add(item.refusal, m.refusal);
        r.partial.add(item.kind == "partial", e.why.refusal.partial);
        r.by_lang
            .entry(item.lang.clone())
            .or_default()
            .add(item.refusal, m.refusal);
        r.by_kind
            .entry(item.kind.clone())
            .or_default()
            .add(item.refusal, m.refusal);
        if m.refusal && item.refusal && (item.kind == "partial") != e.why.refusal.partial {
            r.errors.push(format!(
                "  {} {} partial label {} (rule {:?}): {}",
                item.lang,
                item.kind,
                if e.why.refusal.partial {
                    "given"
                } else {
                    "missed"
                },
                m.refusal_rule,
                item.text.replace('\n', " ")
            ));
        }
        if m.refusal != item.refusal {
            r.errors.push(format!(
                "  {} {} {} (rule {:?}): {}",
                item.lang,
                item.kind,
                if item.refusal {
                    "missed"
                } else {
                    "false alarm"
                },
                m.refusal_rule,
                item.text.replace('\n', " ")
            ));
        }
    }
    r
}

fn fmt(p: Option<f64>) -> String {
    p.map_or("–".to_string(), |p| format!("{p:.3}"))
}

fn print(title: &str, r: &Report) {
    println!("\n{title}\n");
    println!("| language | n | precision | recall |");
    println!("|---|---|---|---|");
    for (lang, c) in &r.by_lang {
        println!(
            "| {lang} | {} | {} | {:.3} |",
            c.n(),
            fmt(c.precision()),
            c.recall()
        );
    }
    println!(
        "| all | {} | {} | {:.3} |",
        r.total.n(),
        fmt(r.total.precision()),
        r.total.recall()
    );
    println!(
        "\npartial-refusal label: precision {}, recall {:.3} ({} labelled partial)",
        fmt(r.partial.precision()),
        r.partial.recall(),
        r.partial.tp + r.partial.fn_
    );
    println!("\n| kind | n | flagged as refusal |");
    println!("|---|---|---|");
    for (kind, c) in &r.by_kind {
        println!("| {kind} | {} | {} |", c.n(), c.flagged());
    }
    println!(
        "\nmisclassified ({}):\n{}",
        r.errors.len(),
        r.errors.join("\n")
    );
}

#[test]
fn refusal_detector_meets_precision_and_recall_targets() {
    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let main = measure(&evaluator, "corpus.jsonl");
    print("corpus.jsonl (written before the detector)", &main);
    assert!(main.total.n() >= 300, "corpus has {} items", main.total.n());
    assert_eq!(
        main.by_lang.len(),
        9,
        "languages: {:?}",
        main.by_lang.keys()
    );

    // Written after the first (lexicon-only) detector. Its misses have been quoted in
    // docs/evaluation.md since, so it is no longer a clean out-of-sample estimate. Reported,
    // not asserted against the targets (it is small).
    let heldout = measure(&evaluator, "heldout.jsonl");
    print(
        "heldout.jsonl (written after the lexicon, before the grammar layer)",
        &heldout,
    );
    assert!(heldout.total.n() >= 40);
    // The held-out sets of 360 responses (40 per language), each written after a freeze (the
    // commits whose messages begin `refusal detector frozen:`) by a writer who had seen neither
    // the detector nor any example data and never ran it. Each was measured once; all but the
    // last two have been training data of the classifier since, so their figures are
    // in-sample; the last two are the sets written after the latest freeze, by two writers:
    // the honest figure of the detector as shipped. Reported only.
    for (file, what) in [
        (
            "heldout-2026-12.jsonl",
            "written after the first freeze; training data since",
        ),
        (
            "heldout-2026-12b.jsonl",
            "written after the classifier layer was frozen; training data since",
        ),
        (
            "heldout-2026-12c.jsonl",
            "written after the second freeze; training data since",
        ),
        (
            "heldout-2026-12d.jsonl",
            "written after the third freeze; training data since",
        ),
        (
            "heldout-2026-12e.jsonl",
            "written after the fourth freeze; tuned on and training data since",
        ),
        (
            "heldout-2026-12f.jsonl",
            "written after the fourth freeze; tuned on and training data since",
        ),
        (
            "heldout-2026-12g.jsonl",
            "written after the fifth freeze; training data since",
        ),
        (
            "heldout-2026-12h.jsonl",
            "written after the fifth freeze; training data since",
        ),
        (
            "heldout-2026-12i.jsonl",
            "written after the sixth freeze; training data since",
        ),
        (
            "heldout-2026-12j.jsonl",
            "written after the sixth freeze; training data since",
        ),
        (
            "heldout-2026-12k.jsonl",
            "written after the seventh freeze; training data since",
        ),
        (
            "heldout-2026-12l.jsonl",
            "written after the seventh freeze; training data since",
        ),
        (
            "heldout-2026-12m.jsonl",
            "written after the eighth freeze; training data since",
        ),
        (
            "heldout-2026-12n.jsonl",
            "written after the eighth freeze; training data since",
        ),
        (
            "heldout-2026-12o.jsonl",
            "written after the ninth freeze; training data since",
        ),
        (
            "heldout-2026-12p.jsonl",
            "written after the ninth freeze; training data since",
        ),
        (
            "heldout-2026-12q.jsonl",
            "written after the tenth freeze; training data since",
        ),
        (
            "heldout-2026-12r.jsonl",
            "written after the tenth freeze; training data since",
        ),
        (
            "heldout-2026-12s.jsonl",
            "written after the eleventh freeze; training data since",
        ),
        (
            "heldout-2026-12t.jsonl",
            "written after the eleventh freeze; training data since",
        ),
        (
            "heldout-2026-12u.jsonl",
            "written after the twelfth freeze; training data since",
        ),
        (
            "heldout-2026-12v.jsonl",
            "written after the twelfth freeze; training data since",
        ),
        (
            "heldout-2026-12w.jsonl",
            "written after the thirteenth freeze, training data since",
        ),
        (
            "heldout-2026-12x.jsonl",
            "written after the thirteenth freeze, training data since",
        ),
        (
            "heldout-2026-12y.jsonl",
            "written after the fourteenth freeze, training data since",
        ),
        (
            "heldout-2026-12z.jsonl",
            "written after the fourteenth freeze, training data since",
        ),
        (
            "heldout-2026-12aa.jsonl",
            "written after the fifteenth freeze, training data since",
        ),
        (
            "heldout-2026-12ab.jsonl",
            "written after the fifteenth freeze, training data since",
        ),
        (
            "heldout-2026-12ac.jsonl",
            "written after the sixteenth freeze, never tuned on",
        ),
        (
            "heldout-2026-12ad.jsonl",
            "written after the sixteenth freeze, never tuned on",
        ),
    ] {
        let r = measure(&evaluator, file);
        print(&format!("{file} ({what})"), &r);
        assert_eq!(r.total.n(), 360, "{file}");
    }

    let precision = main.total.precision().unwrap_or(0.0);
    assert!(precision >= 0.95, "precision {precision:.3} < 0.95");
    assert!(
        main.total.recall() >= 0.90,
        "recall {:.3} < 0.90",
        main.total.recall()
    );
    // The targets of the grammar layer: ≥ 0.98 / ≥ 0.98 on the project's corpus.
    assert!(precision >= 0.98, "precision {precision:.3} < 0.98");
    assert!(
        main.total.recall() >= 0.98,
        "recall {:.3} < 0.98",
        main.total.recall()
    );
    let partial_recall = main.partial.recall();
    assert!(partial_recall >= 0.85, "partial recall {partial_recall:.3}");
}

/// The development set (`dev.jsonl`): varied phrasings written while building the grammar
/// layer, in all nine languages, used to tune it; reported and held to the same targets.
#[test]
fn refusal_detector_on_the_development_set() {
    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let dev = measure(&evaluator, "dev.jsonl");
    print("dev.jsonl (written with the grammar layer, tuned on)", &dev);
    assert_eq!(dev.by_lang.len(), 9);
    assert!(dev.total.precision().unwrap_or(0.0) >= 0.95);
    assert!(dev.total.recall() >= 0.90);
}

/// The files written for the classifier (`train-extra*.jsonl`): its training data, so these
/// figures are in-sample. Reported only.
#[test]
fn refusal_detector_on_the_classifier_training_extras() {
    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let extras = TRAINING_FILES
        .iter()
        .filter(|f| f.starts_with("train-extra"));
    for file in extras {
        let r = measure(&evaluator, file);
        print(&format!("{file} (classifier training data, in-sample)"), &r);
        assert_eq!(r.by_lang.len(), 9, "{file}");
    }
}
