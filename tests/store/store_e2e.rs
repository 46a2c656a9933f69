//! The store through its public API on a real database file: a daemon-like sequence of rounds
//! with a swap, reopening, concurrent access from two connections, and retention.

use modelwatch::provider::Fingerprint;
use modelwatch::sample::{ErrorKind, FinishReason, Measurements, Sample, SampleError};
use modelwatch::store::{FingerprintChange, RoundStatus, SampleQuery, Store};
use std::collections::BTreeMap;

fn fingerprint(digest: &str) -> Fingerprint {
    Fingerprint {
        provider: "openai".into(),
        model: "llama-3.1-8b".into(),
        digest: Some(digest.into()),
        details: BTreeMap::from([("n_ctx".into(), "8192".into())]),
    }
}

fn sample(probe: &str, index: u32, at: i64) -> Sample {
    Sample {
        seed: None,
        target: "chat".into(),
        suite: "core".into(),
        probe_id: probe.into(),
        probe_hash: format!("{probe}-v1"),
        index,
        started_at_ms: at,
        latency_ms: 250.0 + index as f64,
        ttft_ms: Some(40.0),
        attempts: 1,
        finish_reason: Some(FinishReason::Stop),
        input_tokens: Some(20),
        response_model: Some("llama-3.1-8b".into()),
        system_fingerprint: Some("b4321-abc".into()),
        measurements: Some(Measurements {
            chars: 300 + index,
            words: 50,
            lines: 3,
            output_tokens: 70,
            ..Default::default()
        }),
        error: None,
        text: Some(format!("answer {probe} {index}")),
    }
}

/// One round as the runner would store it: fingerprint, begin, samples, finish.
fn round(store: &mut Store, digest: &str, at: i64) -> FingerprintChange {
    let fp = fingerprint(digest);
    let change = store.record_fingerprint("chat", &fp, at).unwrap();
    let r = store.begin_round("chat", Some(&fp.id()), at).unwrap();
    let mut samples: Vec<Sample> = (0..3)
        .map(|i| sample("explain", i, at + i as i64))
        .collect();
    let mut failed = sample("explain", 3, at + 3);
    failed.measurements = None;
    failed.finish_reason = None;
    failed.text = None;
    failed.error = Some(SampleError {
        kind: ErrorKind::Timeout,
        status: None,
        message: "no first byte within 10s".into(),
        attempts: 2,
        latency_ms: 10_000.0,
    });
    samples.push(failed);
    store.insert_samples(r, &samples).unwrap();
    store
        .finish_round(r, at + 100, RoundStatus::Completed)
        .unwrap();
    change
}

#[test]
fn rounds_swap_reopen_and_prune_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("modelwatch.db");
    let day = 86_400_000;
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(round(&mut store, "old", 0), FingerprintChange::First);
        assert_eq!(round(&mut store, "old", day), FingerprintChange::None);
    }
    let mut store = Store::open(&path).unwrap();
    let old_id = fingerprint("old").id();
    let new_id = fingerprint("new").id();
    assert_eq!(
        round(&mut store, "new", 2 * day),
        FingerprintChange::Swap {
            previous: old_id.clone()
        }
    );
    let swaps = store.events(Some("chat"), 0).unwrap();
    assert_eq!(swaps.len(), 1);
    assert_eq!(swaps[0].payload["current"], new_id);

    let rounds = store.rounds("chat", 10).unwrap();
    assert_eq!(rounds.len(), 3);
    assert_eq!((rounds[0].samples, rounds[0].errors), (4, 1));
    assert_eq!(rounds[0].fingerprint.as_deref(), Some(new_id.as_str()));

    let before_swap = store
        .samples(&SampleQuery {
            target: Some("chat".into()),
            fingerprint: Some(old_id),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(before_swap.len(), 8);
    assert_eq!(before_swap[0], sample("explain", 0, 0));
    assert_eq!(before_swap[3].error.as_ref().unwrap().attempts, 2);

    // Keep raw text one day and samples two days, as of day 2.5.
    let stats = store.prune(2 * day + day / 2, day, 2 * day).unwrap();
    assert_eq!((stats.samples, stats.rounds), (4, 1));
    // Texts of the day-0 and day-1 rounds (errors have none) are past the text retention.
    assert_eq!(stats.texts, 6);
    let left = store
        .samples(&SampleQuery {
            target: Some("chat".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(left.len(), 8);
    assert!(left[..4].iter().all(|s| s.text.is_none()));
    assert_eq!(left[4].text.as_deref(), Some("answer explain 0"));
    assert_eq!(
        store.latest_fingerprint("chat").unwrap().unwrap().id,
        new_id
    );
}

#[test]
fn a_writer_thread_and_a_reader_share_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let mut writer = Store::open(&path).unwrap();
    let reader = Store::open(&path).unwrap();
    let handle = std::thread::spawn(move || {
        for i in 0..20 {
            round(&mut writer, "fp", i * 1000);
        }
        writer
    });
    // Reads never block on the writer in WAL mode; counts only grow.
    let mut last = 0;
    for _ in 0..50 {
        let n = reader.samples(&SampleQuery::default()).unwrap().len();
        assert!(n >= last && n.is_multiple_of(4), "saw a partial batch: {n}");
        last = n;
    }
    let writer = handle.join().unwrap();
    assert_eq!(reader.samples(&SampleQuery::default()).unwrap().len(), 80);
    assert_eq!(writer.rounds("chat", 100).unwrap().len(), 20);
}
