//! Batched ingest: 10,000 samples in one transaction. The correctness test always runs; the
//! throughput figure is an ignored test, run on demand:
//! `cargo test --release --test store store_ingest:: -- --ignored --nocapture`.

use modelwatch::sample::{FinishReason, Measurements, Sample, StructuredOutcome};
use modelwatch::store::{SampleQuery, Store};
use std::time::Instant;

const N: usize = 10_000;

fn samples(n: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            seed: None,
            target: "bench".into(),
            suite: "core".into(),
            probe_id: format!("probe-{}", i % 50),
            probe_hash: format!("{:016x}", i % 50),
            index: (i / 50) as u32,
            started_at_ms: 1_700_000_000_000 + i as i64,
            latency_ms: 300.0 + (i % 97) as f64,
            ttft_ms: Some(35.5),
            attempts: 1,
            finish_reason: Some(FinishReason::Stop),
            input_tokens: Some(42),
            response_model: Some("qwen2.5:7b-instruct".into()),
            system_fingerprint: None,
            measurements: Some(Measurements {
                chars: 800 + (i % 300) as u32,
                words: 140,
                lines: 9,
                output_tokens: 190,
                tokens_estimated: false,
                truncated: false,
                empty: false,
                refusal: i % 40 == 0,
                refusal_rule: (i % 40 == 0).then(|| "lexicon:en:cant_help".into()),
                partial_refusal: false,
                structured: (i % 5 == 0).then_some(StructuredOutcome::Ok),
                task_success: (i % 5 == 0).then_some(true),
            }),
            error: None,
            text: Some("x".repeat(800 + i % 300)),
        })
        .collect()
}

#[test]
fn ten_thousand_samples_in_one_batch_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("ingest.db")).unwrap();
    let batch = samples(N);
    let round = store.begin_round("bench", Some("fp"), 0).unwrap();
    store.insert_samples(round, &batch).unwrap();
    let back = store.samples(&SampleQuery::default()).unwrap();
    assert_eq!(back.len(), N);
    assert_eq!(back[N - 1], batch[N - 1]);
    assert_eq!(store.round(round).unwrap().unwrap().samples as usize, N);
}

#[test]
#[ignore = "throughput figure; run with --release --ignored --nocapture"]
fn ingest_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("ingest.db")).unwrap();
    let batch = samples(N);
    let mut rates = Vec::new();
    for run in 0..5 {
        let round = store.begin_round("bench", Some("fp"), run).unwrap();
        let start = Instant::now();
        store.insert_samples(round, &batch).unwrap();
        rates.push(N as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "ingest of {N} samples (with ~950 B raw text each) in one transaction, file DB, WAL, \
         synchronous=NORMAL: median {:.0} samples/s (min {:.0}, max {:.0}) over 5 batches",
        rates[2], rates[0], rates[4]
    );
}
