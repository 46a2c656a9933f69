//! Detection delay of the production-traffic monitor, on simulated traffic fed to the code the
//! daemon runs: a [`TrafficWatch`] built with the daemon's settings (default margins, one batch
//! read as a round over the 90-day false-alarm interval, α split over the monitored routes, a
//! baseline of the first `BASELINE_COMPLETIONS` completions of each route), fed batches of
//! [`TrafficRow`]s as the ingest worker hands them over.
//!
//! The scenario is the end-to-end test's (`tests/daemon/daemon_traffic.rs`): batches of 100
//! completions on `/support` (refusing 2 %) and 100 on `/search` (refusing 10 %); three batches
//! before the swap (the baselines), then the prober's fingerprint changes and `/support` refuses
//! at the new rate. The delay is the number of `/support` completions after the swap until the
//! monitor reports the breach. Each completion's refusal is a Bernoulli draw here (the test's
//! stream is periodic, which is less variable), so these quantiles bound the test's delay.
//!
//! Also: no change after the swap (40,000 completions per route), and a mix shift alone
//! (`/support` from 50 % to 90 % of the traffic, rates unchanged): breaches there are false
//! alarms.
//!
//! `cargo bench --bench traffic_delay` (fixed seeds: the same command prints the same figures).
//! `BASELINE=2000 cargo bench --bench traffic_delay` takes a larger baseline per route (what
//! `baseline_window` or a baseline file gives a low-rate route), recorded over as many batches
//! before the swap.

use modelwatch::daemon::monitor::MonitorSettings;
use modelwatch::daemon::traffic_watch::{BASELINE_COMPLETIONS, SwapLookup, TrafficWatch};
use modelwatch::drift::Margins;
use modelwatch::rng::Rng;
use modelwatch::store::TrafficRow;
use modelwatch::traffic::Watch;
use std::sync::{Arc, Mutex};

const REPLICATES: u64 = 400;
const BATCH: usize = 100;
/// The baseline per route: `BASELINE` from the environment, else the daemon's default.
fn baseline() -> usize {
    std::env::var("BASELINE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(BASELINE_COMPLETIONS)
}

/// Batches per route before the swap: the baseline and one monitored batch (300 completions
/// with the default baseline).
fn before() -> usize {
    baseline().div_ceil(BATCH) + 1
}
/// Completions per route after which a replicate counts as missed.
const GIVE_UP: usize = 40_000;

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

/// The daemon's traffic watch (see `src/daemon/mod.rs`), with a fingerprint the test flips.
fn watch(fingerprint: Arc<Mutex<String>>) -> TrafficWatch {
    let settings = MonitorSettings {
        margins: Margins::default(),
        false_alarm_rounds: 90.0 * 24.0 * 60.0,
        null_confidence: Default::default(),
    };
    let lookup: SwapLookup =
        Box::new(move |_| Some((fingerprint.lock().unwrap().clone(), Some(1_000))));
    TrafficWatch::new(settings, baseline(), lookup)
}

/// One batch: `support` completions on /support refusing at `rate`, `search` on /search at 10 %.
fn batch(rng: &mut Rng, support: usize, rate: f64, search: usize, at: i64) -> Vec<TrafficRow> {
    let mut rows: Vec<TrafficRow> = (0..support)
        .map(|_| row("/support", rng.f64() < rate, at))
        .collect();
    rows.extend((0..search).map(|_| row("/search", rng.f64() < 0.10, at)));
    rows
}

fn breached(w: &TrafficWatch, route: &str) -> bool {
    w.breaches().iter().any(|(_, r, _, _)| r == route)
}

/// `/support` completions after the swap until its breach (None: none within [`GIVE_UP`]),
/// and whether `/search` (unchanged) breached meanwhile.
fn replicate(
    seed: u64,
    after_rate: f64,
    support_after: usize,
    search_after: usize,
) -> (Option<usize>, bool) {
    let mut rng = Rng::new(seed);
    let fp = Arc::new(Mutex::new("a1b2c3d4e5f6a7b8".to_string()));
    let mut w = watch(fp.clone());
    let mut at = 0;
    for _ in 0..before() {
        at += 1;
        w.observe(&batch(&mut rng, BATCH, 0.02, BATCH, at));
    }
    *fp.lock().unwrap() = "c3d4e5f6a7b8c9d0".into();
    let mut sent = 0;
    while sent < GIVE_UP {
        at += 1;
        w.observe(&batch(
            &mut rng,
            support_after,
            after_rate,
            search_after,
            at,
        ));
        sent += support_after;
        if breached(&w, "/search") {
            return (breached(&w, "/support").then_some(sent), true);
        }
        if breached(&w, "/support") {
            return (Some(sent), false);
        }
    }
    (None, false)
}

fn quantile(sorted: &[usize], q: f64) -> usize {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    println!(
        "## Traffic monitor: detection delay ({REPLICATES} replicates per row; batches of \
         {BATCH} completions per route; baseline {} per route; 90-day \
         false-alarm interval, one batch read as a round)\n",
        baseline()
    );
    println!(
        "| /support refusal rate after the swap | detected | median | p90 | p95 | p99 | max | /search false alarms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (label, rate) in [
        ("2 % → 4.8 %", 0.048),
        ("2 % → 10 %", 0.10),
        ("2 % → 16.7 % (the end-to-end test)", 1.0 / 6.0),
    ] {
        let mut delays = Vec::new();
        let mut false_alarms = 0;
        for seed in 0..REPLICATES {
            let (d, other) = replicate(1000 + seed, rate, BATCH, BATCH);
            false_alarms += usize::from(other);
            delays.extend(d);
        }
        delays.sort_unstable();
        let q = |p| {
            if delays.is_empty() {
                "—".to_string()
            } else {
                quantile(&delays, p).to_string()
            }
        };
        println!(
            "| {label} | {}/{REPLICATES} | {} | {} | {} | {} | {} | {false_alarms} |",
            delays.len(),
            q(0.5),
            q(0.9),
            q(0.95),
            q(0.99),
            q(1.0),
        );
    }
    println!("\nCompletions counted on `/support` after the swap until its breach is reported.\n");

    println!(
        "| null scenario (after the swap, {GIVE_UP} completions per route) | replicates with a breach |"
    );
    println!("|---|---|");
    for (label, support, search) in [
        ("no change", BATCH, BATCH),
        (
            "mix shift only: /support 50 % → 90 % of the traffic",
            180,
            20,
        ),
    ] {
        let alarms = (0..REPLICATES / 4)
            .filter(|seed| {
                let (d, other) = replicate(5000 + seed, 0.02, support, search);
                d.is_some() || other
            })
            .count();
        println!("| {label} | {alarms}/{} |", REPLICATES / 4);
    }
}
