//! Precision and recall of the refusal detector on the labelled corpus
//! (`tests/fixtures/refusal_corpus/corpus.jsonl`), overall and per language.
//! Run with `cargo test --test eval_corpus -- --nocapture` to see the figures.

use modelwatch::eval::{Evaluator, RefusalConfig};
use modelwatch::sample::{Completion, FinishReason};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Item {
    text: String,
    refusal: bool,
    lang: String,
    kind: String,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
}

impl Counts {
    fn add(&mut self, label: bool, predicted: bool) {
        match (label, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }
    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
    fn n(&self) -> u32 {
        self.tp + self.fp + self.fn_ + self.tn
    }
}

#[test]
fn refusal_detector_meets_precision_and_recall_targets() {
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/refusal_corpus/corpus.jsonl"
    ))
    .expect("corpus file");
    let items: Vec<Item> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus line"))
        .collect();
    assert!(items.len() >= 300, "corpus has {} items", items.len());

    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let mut total = Counts::default();
    let mut by_lang: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, Counts> = BTreeMap::new();
    let mut errors = Vec::new();
    for item in &items {
        let completion = Completion {
            text: item.text.clone(),
            finish_reason: Some(FinishReason::Stop),
            ..Completion::default()
        };
        let m = evaluator.evaluate(&completion, None);
        total.add(item.refusal, m.refusal);
        by_lang
            .entry(item.lang.clone())
            .or_default()
            .add(item.refusal, m.refusal);
        by_kind
            .entry(item.kind.clone())
            .or_default()
            .add(item.refusal, m.refusal);
        if m.refusal != item.refusal {
            errors.push(format!(
                "  {} {} {:?} (rule {:?}): {}",
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

    println!("| language | n | precision | recall |");
    println!("|---|---|---|---|");
    for (lang, c) in &by_lang {
        println!(
            "| {lang} | {} | {:.3} | {:.3} |",
            c.n(),
            c.precision(),
            c.recall()
        );
    }
    println!(
        "| all | {} | {:.3} | {:.3} |",
        total.n(),
        total.precision(),
        total.recall()
    );
    println!("\n| kind | n | flagged as refusal |");
    println!("|---|---|---|");
    for (kind, c) in &by_kind {
        println!("| {kind} | {} | {} |", c.n(), c.tp + c.fp);
    }
    println!("\nmisclassified ({}):\n{}", errors.len(), errors.join("\n"));

    assert!(
        total.precision() >= 0.95,
        "precision {:.3} < 0.95",
        total.precision()
    );
    assert!(
        total.recall() >= 0.90,
        "recall {:.3} < 0.90",
        total.recall()
    );
}
