//! Unit tests of the traffic monitor.

use super::*;
use crate::rng::Rng;
use crate::traffic::Watch;
use std::sync::{Arc, Mutex};

fn row(route: &str, refusal: bool, at: i64) -> TrafficRow {
    TrafficRow {
        target: "chat".into(),
        route: route.into(),
        received_at_ms: at,
        chars: Some(300),
        finish_reason: Some("stop".into()),
        empty: Some(false),
        refusal: Some(refusal),
        partial_refusal: Some(false),
        ..TrafficRow::default()
    }
}

/// Batches of 100 completions: `support_share` of them on /support (refusing at
/// `support_rate`), the rest on /search (refusing at 10 %).
fn batch(rng: &mut Rng, support_share: f64, support_rate: f64, at: i64) -> Vec<TrafficRow> {
    (0..100)
        .map(|_| {
            if rng.f64() < support_share {
                row("/support", rng.f64() < support_rate, at)
            } else {
                row("/search", rng.f64() < 0.10, at)
            }
        })
        .collect()
}

fn watch(fingerprint: Arc<Mutex<String>>) -> TrafficWatch {
    let settings = MonitorSettings {
        margins: crate::drift::Margins::default(),
        false_alarm_rounds: 129_600.0,
        null_confidence: Default::default(),
    };
    let lookup: SwapLookup =
        Box::new(move |_| Some((fingerprint.lock().unwrap().clone(), Some(7_000))));
    TrafficWatch::new(settings, BASELINE_COMPLETIONS, lookup)
}

#[test]
fn a_mix_shift_alone_raises_nothing_and_a_swap_that_refuses_more_is_named() {
    let fp = Arc::new(Mutex::new("a1b2c3d4e5f6a7b8".to_string()));
    let mut w = watch(fp.clone());
    let mut rng = Rng::new(7);
    for i in 0..10 {
        w.observe(&batch(&mut rng, 0.5, 0.02, i));
    }
    let st = w.status();
    assert_eq!(
        st["targets"]["chat"]["routes"]["/support"]["monitored"],
        true
    );
    // The share of /search (10 % refusals) triples: the pooled rate rises, no route changes.
    for i in 0..60 {
        w.observe(&batch(&mut rng, 0.1, 0.02, 100 + i));
    }
    assert!(w.breaches().is_empty(), "{:?}", w.breaches());
    // The prober saw a swap; /support now refuses 15 %.
    *fp.lock().unwrap() = "c3d4e5f6a7b8c9d0".to_string();
    for i in 0..20 {
        w.observe(&batch(&mut rng, 0.5, 0.15, 200 + i));
    }
    let breaches = w.breaches();
    let refusal = breaches
        .iter()
        .find(|b| b.1 == "/support" && b.2 == "refusal_rate")
        .unwrap_or_else(|| panic!("{breaches:?}"));
    assert!(
        refusal
            .3
            .starts_with("production refusal rate on route /support of chat 3.5 % → 15."),
        "{}",
        refusal.3
    );
    assert!(
        refusal.3.ends_with(
            "since the swap at 1970-01-01 00:00 UTC (fingerprint a1b2c3d4e5f6 → c3d4e5f6a7b8)"
        ),
        "{}",
        refusal.3
    );
    assert!(breaches.iter().all(|b| b.1 == "/support"), "{breaches:?}");
    // The same reading waits for the target's next round as an alert.
    let alerts = w.alerts("chat");
    assert!(
        alerts
            .iter()
            .any(|(m, o)| m == "traffic:/support:refusal_rate"
                && matches!(o, Observation::Breach(ev) if ev.summary == refusal.3)),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .all(|(m, _)| m.starts_with("traffic:/support:"))
    );
}

#[test]
fn baselines_are_kept_and_reloaded_with_their_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let mut w = watch(fp.clone()).with_store(Store::open(&path).unwrap(), None);
    w.observe(&vec![row("/a", false, 1); BASELINE_COMPLETIONS]);
    assert_eq!(
        w.status()["targets"]["chat"]["routes"]["/a"]["monitored"],
        true
    );
    drop(w);
    // A restart: the baseline is back, monitored before any new completion.
    let mut w = watch(fp.clone()).with_store(Store::open(&path).unwrap(), None);
    let route = &w.status()["targets"]["chat"]["routes"]["/a"];
    assert_eq!(route["monitored"], true, "{route}");
    assert_eq!(route["baseline"], BASELINE_COMPLETIONS);
    assert_eq!(route["baseline_source"], "recorded");
    // The model was swapped while the daemon was stopped: still seen as a swap.
    *fp.lock().unwrap() = "b".repeat(16);
    w.observe(&vec![row("/a", false, 2); 5]);
    let swap = &w.status()["targets"]["chat"]["last_swap"];
    assert_eq!(swap["from"], "a".repeat(16), "{swap}");
    assert_eq!(
        w.status()["targets"]["chat"]["routes"]["/a"]["baseline"],
        BASELINE_COMPLETIONS,
        "a monitored route keeps its baseline across the swap"
    );
}

#[test]
fn a_baseline_the_busy_store_could_not_keep_is_kept_at_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let mut store = Store::open(&path).unwrap();
    store.set_busy_timeout(SAVE_WAIT).unwrap();
    let mut w = watch(fp.clone()).with_store(store, None);
    // Another writer holds the database past the busy timeout while the baseline is made.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    w.observe(&vec![row("/a", false, 1); BASELINE_COMPLETIONS]);
    let route = &w.status()["targets"]["chat"]["routes"]["/a"];
    assert_eq!(route["monitored"], true, "{route}");
    assert_eq!(route["baseline_kept"], false, "{route}");
    other.execute_batch("COMMIT").unwrap();
    w.observe(&vec![row("/a", false, 2); 5]);
    assert_eq!(
        w.status()["targets"]["chat"]["routes"]["/a"]["baseline_kept"],
        true
    );
    drop(w);
    let w = watch(fp).with_store(Store::open(&path).unwrap(), None);
    let route = &w.status()["targets"]["chat"]["routes"]["/a"];
    assert_eq!(route["baseline"], BASELINE_COMPLETIONS, "{route}");
    assert_eq!(route["baseline_kept"], true, "{route}");
}

#[test]
fn a_swap_rebuilds_the_baseline_from_the_window_before_it() {
    let mut store = Store::open_in_memory().unwrap();
    // Stored traffic of the old model: 40 completions in the last hour before the swap at
    // 7,000 ms (10 % refusals), 100 older ones outside the window.
    let mut rows: Vec<TrafficRow> = (0..100).map(|_| row("/a", false, -4_000_000)).collect();
    rows.extend((0..40).map(|i| row("/a", i % 10 == 0, 6_000 - i)));
    store.insert_traffic(&rows).unwrap();
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let mut w = watch(fp.clone()).with_store(store, Some(std::time::Duration::from_secs(3_600)));
    w.observe(&vec![row("/a", false, 1); BASELINE_COMPLETIONS]);
    assert_eq!(
        w.status()["targets"]["chat"]["routes"]["/a"]["baseline_source"],
        "recorded"
    );
    *fp.lock().unwrap() = "b".repeat(16);
    w.observe(&vec![row("/a", false, 8_000); 5]);
    let route = &w.status()["targets"]["chat"]["routes"]["/a"];
    assert_eq!(route["baseline_source"], "window", "{route}");
    assert_eq!(route["baseline"], 40, "{route}");
    assert_eq!(route["baseline_made_at_ms"], 7_000, "{route}");
}

#[test]
fn lengths_only_completions_are_not_monitored_and_a_swap_restarts_the_recording() {
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let mut w = watch(fp.clone());
    let mut lengths_only = row("/a", false, 1);
    lengths_only.refusal = None;
    w.observe(&vec![lengths_only; 50]);
    w.observe(&vec![row("/a", false, 1); 50]);
    assert_eq!(
        w.status()["targets"]["chat"]["routes"]["/a"]["baseline"],
        50
    );
    *fp.lock().unwrap() = "b".repeat(16);
    w.observe(&vec![row("/a", false, 2); 10]);
    assert_eq!(
        w.status()["targets"]["chat"]["routes"]["/a"]["baseline"],
        10,
        "a baseline never mixes two models"
    );
}

#[test]
fn a_schema_route_is_monitored_for_structured_failures_and_restarts_when_its_schema_changes() {
    use crate::sample::StructuredOutcome;
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let mut w = watch(fp.clone());
    let mut rng = Rng::new(11);
    let extract = |fail: f64, at: i64, rng: &mut Rng| -> Vec<TrafficRow> {
        (0..100)
            .map(|_| {
                let mut r = row("/extract", false, at);
                r.structured = Some(if rng.f64() < fail {
                    StructuredOutcome::InvalidJson
                } else {
                    StructuredOutcome::Ok
                });
                r
            })
            .collect()
    };
    for i in 0..3 {
        w.observe(&extract(0.02, i, &mut rng));
    }
    for i in 0..20 {
        w.observe(&extract(0.02, 10 + i, &mut rng));
    }
    assert!(w.breaches().is_empty(), "{:?}", w.breaches());
    *fp.lock().unwrap() = "b".repeat(16);
    for i in 0..10 {
        w.observe(&extract(0.30, 100 + i, &mut rng));
    }
    let breaches = w.breaches();
    let b = breaches
        .iter()
        .find(|b| b.2 == "structured_failure_rate")
        .unwrap_or_else(|| panic!("{breaches:?}"));
    assert!(
        b.3.starts_with("production structured failure rate on route /extract of chat "),
        "{}",
        b.3
    );
    assert!(b.3.contains(" since the swap at "), "{}", b.3);
    w.route_changed("/extract", Some("0f0f"));
    assert!(w.breaches().is_empty());
    assert!(w.status()["targets"]["chat"]["routes"]["/extract"].is_null());
    assert!(
        w.alerts("chat")
            .iter()
            .all(|(_, o)| *o == Observation::Clear)
    );
}

#[test]
fn a_kept_baseline_judged_against_another_schema_is_recorded_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let schemas = |d: &str| BTreeMap::from([("/a".to_string(), d.to_string())]);
    let mut w = watch(fp.clone())
        .with_schemas(schemas("1111"))
        .with_store(Store::open(&path).unwrap(), None);
    w.observe(&vec![row("/a", false, 1); BASELINE_COMPLETIONS]);
    drop(w);
    let same = watch(fp.clone())
        .with_schemas(schemas("1111"))
        .with_store(Store::open(&path).unwrap(), None);
    assert_eq!(
        same.status()["targets"]["chat"]["routes"]["/a"]["monitored"],
        true
    );
    drop(same);
    let other = watch(fp.clone())
        .with_schemas(schemas("2222"))
        .with_store(Store::open(&path).unwrap(), None);
    assert!(
        other.status()["targets"]["chat"]["routes"]["/a"].is_null(),
        "{}",
        other.status()
    );
}

#[test]
fn a_window_never_reaches_back_before_the_schema_changed() {
    let mut store = Store::open_in_memory().unwrap();
    // Judged against the old schema: 40 completions in the hour before the swap at 7,000 ms.
    let rows: Vec<TrafficRow> = (0..40).map(|i| row("/a", false, 6_000 - i)).collect();
    store.insert_traffic(&rows).unwrap();
    let fp = Arc::new(Mutex::new("a".repeat(16)));
    let mut w = watch(fp.clone()).with_store(store, Some(std::time::Duration::from_secs(3_600)));
    w.route_changed("/a", Some("0f0f"));
    w.observe(&vec![row("/a", false, 1); BASELINE_COMPLETIONS]);
    *fp.lock().unwrap() = "b".repeat(16);
    w.observe(&vec![row("/a", false, 8_000); 5]);
    let route = &w.status()["targets"]["chat"]["routes"]["/a"];
    assert_eq!(route["baseline_source"], "recorded", "{route}");
    assert_eq!(route["baseline"], BASELINE_COMPLETIONS, "{route}");
}

#[test]
fn length_alerts_read_as_placements_and_rates_as_percentages() {
    let ev = |baseline: f64, current: f64| Evidence {
        baseline: Some(baseline),
        current: Some(current),
        ..Evidence::default()
    };
    let shape = message("chat", "/x", "length_shape", &ev(0.5, 0.86), None);
    assert!(
        shape.contains("length shape (mean spread from the middle of the baseline's) on route /x of chat 0.50 → 0.86"),
        "{shape}"
    );
    let length = message("chat", "/x", "length_chars", &ev(0.5, 0.71), None);
    assert!(
        length.contains("0.50 → 0.71") && !length.contains('%'),
        "{length}"
    );
    let rate = message("chat", "/x", "refusal_rate", &ev(0.011, 0.048), None);
    assert!(
        rate.contains("refusal rate on route /x of chat 1.1 % → 4.8 %"),
        "{rate}"
    );
}
