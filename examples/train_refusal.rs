//! Trains the refusal classifier and writes its weights to `assets/refusal_classifier.bin`.
//!
//! ```text
//! cargo run --release --example train_refusal              # train on the whole corpus, write the weights
//! cargo run --release --example train_refusal -- --estimate [FILE] # train without FILE (default heldout-2026-12b.jsonl), measure on it
//! cargo run --release --example train_refusal -- --folds    # leave one file out, for each file
//! cargo run --release --example train_refusal -- --sim-prose # false alarms on the simulator's ordinary prose
//! ```
//!
//! `THRESHOLD`, `PARTIAL_THRESHOLD` and `MIN_CHARS` in the environment change the decision
//! for `--estimate`, `--folds` and `--sim-prose`; `TRAIN_EPOCHS`, `TRAIN_L2`,
//! `TRAIN_ANSWER_WEIGHT` and `TRAIN_LR` change the training for `--estimate` and `--folds`, and
//! for `--sim-prose` with `RETRAIN` set.

use modelwatch::eval::refusal::classifier::{self, Classifier};
use modelwatch::eval::refusal::train::{Params, TRAINING_FILES, load, train, train_with};
use modelwatch::eval::{RefusalConfig, RefusalDetector};
use modelwatch::rng::Rng;
use modelwatch::sim::text::{Wording, filler_in};
use modelwatch::stats::Confusion;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/refusal_corpus")
}

/// The confusion counts, as one row of the printed tables.
fn row(c: &Confusion, name: &str) -> String {
    let p = c.precision().unwrap_or(0.0);
    format!("| {name} | {} | {p:.3} | {:.3} |", c.n(), c.recall())
}

/// Trains without `held_out` and measures the whole detector on it.
fn measure(held_out: &str, verbose: bool) -> Result<(Confusion, Confusion), String> {
    let dir = corpus_dir();
    let files: Vec<&str> = TRAINING_FILES
        .iter()
        .copied()
        .filter(|f| *f != held_out)
        .collect();
    let model = decision(trained(&files)?);
    let detector = RefusalDetector::new(&RefusalConfig::default())
        .map_err(|e| e.to_string())?
        .with_classifier(model);
    let source = std::fs::read_to_string(dir.join(held_out)).map_err(|e| e.to_string())?;
    let (mut total, mut partial) = (Confusion::default(), Confusion::default());
    let mut by_lang: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut layers: BTreeMap<String, u32> = BTreeMap::new();
    let mut errors = Vec::new();
    for line in source.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let text = v["text"].as_str().unwrap_or_default();
        let label = v["refusal"].as_bool().unwrap_or_default();
        let kind = v["kind"].as_str().unwrap_or_default().to_string();
        let lang = v["lang"].as_str().unwrap_or_default().to_string();
        let j = detector.judge_text(text);
        total.add(label, j.refusal);
        partial.add(kind == "partial", j.partial);
        by_lang
            .entry(lang.clone())
            .or_default()
            .add(label, j.refusal);
        by_kind
            .entry(kind.clone())
            .or_default()
            .add(label, j.refusal);
        if j.refusal {
            *layers.entry(format!("{:?}", j.layer.unwrap())).or_default() += 1;
        }
        if label != j.refusal {
            let score = j.classifier.as_ref().map_or(0.0, |s| s.refusal);
            errors.push(format!(
                "  {lang} {kind} ({:?}, classifier {score:.2}): {}",
                j.rule,
                text.replace('\n', " ")
            ));
        }
    }
    println!("\n{held_out}, classifier trained on {files:?}\n");
    println!("| language | n | precision | recall |\n|---|---|---|---|");
    for (lang, c) in &by_lang {
        println!("{}", row(c, lang));
    }
    println!("{}", row(&total, "**all**"));
    println!("\n{}", row(&partial, "partial label"));
    println!("\n| kind | n | flagged |\n|---|---|---|");
    for (kind, c) in &by_kind {
        println!("| {kind} | {} | {} |", c.n(), c.flagged());
    }
    println!("\nrefusals by layer: {layers:?}");
    if verbose {
        println!("\nerrors ({}):\n{}", errors.len(), errors.join("\n"));
    }
    Ok((total, partial))
}

/// The classifier trained on `files` with the training settings of the environment
/// (`TRAIN_EPOCHS`, `TRAIN_L2`, `TRAIN_ANSWER_WEIGHT`, `TRAIN_LR`), where set.
fn trained(files: &[&str]) -> Result<Classifier, String> {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f32>().ok());
    let mut params = Params::default();
    if let Some(x) = env("TRAIN_EPOCHS") {
        params.epochs = x as usize;
    }
    if let Some(x) = env("TRAIN_L2") {
        params.l2 = x;
    }
    if let Some(x) = env("TRAIN_ANSWER_WEIGHT") {
        params.answer_weight = x;
    }
    if let Some(x) = env("TRAIN_LR") {
        params.learning_rate = x;
    }
    let weights = train_with(&load(&corpus_dir(), files)?, params).map_err(|e| e.to_string())?;
    Classifier::from_bytes(weights).map_err(|e| e.to_string())
}

/// `model` with the decision settings of the environment (`THRESHOLD`, `PARTIAL_THRESHOLD`,
/// `MIN_CHARS`), where set.
fn decision(mut model: Classifier) -> Classifier {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f32>().ok());
    if let Some(t) = env("THRESHOLD") {
        let partial = env("PARTIAL_THRESHOLD").unwrap_or(classifier::PARTIAL_THRESHOLD);
        model = model.with_threshold(t, partial);
    }
    if let Some(m) = env("MIN_CHARS") {
        model = model.with_min_chars(m as usize);
    }
    model
}

/// The shipped detector, with the decision settings of the environment; with `RETRAIN` set,
/// its classifier is trained afresh on `TRAINING_FILES` with the environment's training
/// settings instead (to compare settings without writing weights).
fn shipped_detector() -> RefusalDetector {
    let model = if std::env::var("RETRAIN").is_ok() {
        trained(TRAINING_FILES).expect("training")
    } else {
        Classifier::shipped().expect("shipped weights")
    };
    RefusalDetector::new(&RefusalConfig::default())
        .expect("built-in detector")
        .with_classifier(decision(model))
}

/// Ordinary answers the simulator writes (1,000 of 10 to 200 words in each wording, and 3,000
/// cut short, fixed seed): none is a refusal, so every one flagged is a false alarm.
fn sim_prose() {
    let detector = shipped_detector();
    for wording in [Wording::Plain, Wording::Alternate] {
        let mut rng = Rng::new(2026);
        let mut shown = 0;
        let flagged = (0..1000)
            .filter(|_| {
                let words = 10 + rng.below(191) as usize;
                flags(&detector, &filler_in(wording, &mut rng, words), &mut shown)
            })
            .count();
        println!("{wording:?} prose: {flagged} of 1000 flagged");
        // Cut-off answers: the first 1 to 80 characters of a 20-word answer.
        let mut shown = 0;
        let flagged = (0..3000)
            .filter(|_| {
                let text = filler_in(wording, &mut rng, 20);
                let cut: String = text.chars().take(1 + rng.below(80) as usize).collect();
                flags(&detector, &cut, &mut shown)
            })
            .count();
        println!("{wording:?} prose cut short: {flagged} of 3000 flagged");
    }
}

/// Whether the detector flags `text`; the first three flagged (counted in `shown`) are
/// printed with the span that decided.
fn flags(detector: &RefusalDetector, text: &str, shown: &mut usize) -> bool {
    let j = detector.judge_text(text);
    if j.refusal && *shown < 3 {
        *shown += 1;
        let at = j.span.clone().unwrap_or(0..text.len());
        println!("  flagged ({:?}): …{}…", j.rule, &text[at]);
    }
    j.refusal
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--estimate") => measure(
            args.get(1).map_or("heldout-2026-12b.jsonl", String::as_str),
            true,
        )
        .map(|_| ()),
        Some("--folds") => {
            // Each file but the independent held-out set, left out in turn; pooled.
            let (mut total, mut partial) = (Confusion::default(), Confusion::default());
            for f in TRAINING_FILES
                .iter()
                .filter(|f| **f != "heldout-2026-12.jsonl")
            {
                let (t, p) = measure(f, std::env::var("VERBOSE").is_ok())?;
                total.merge(&t);
                partial.merge(&p);
            }
            println!(
                "\npooled over the folds\n{}\n{}",
                row(&total, "all"),
                row(&partial, "partial label")
            );
            Ok(())
        }
        None => {
            let examples = load(&corpus_dir(), TRAINING_FILES)?;
            let bytes = train(&examples).map_err(|e| e.to_string())?;
            let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/refusal_classifier.bin");
            std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
            println!(
                "{} examples; wrote {} ({} bytes, sha256 {:x})",
                examples.len(),
                out.display(),
                bytes.len(),
                Sha256::digest(&bytes)
            );
            Ok(())
        }
        Some("--sim-prose") => {
            sim_prose();
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown argument {other:?}: use --estimate, --folds, --sim-prose or nothing"
        )),
    }
}
