//! Unit tests of the paired runner (`runner::paired`).

use super::*;
use crate::probe::GenParams;
use crate::provider::{CompletionRequest, Fingerprint};
use crate::sample::{Completion, Measurements, SampleError};
use futures_util::future::BoxFuture;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

fn probe(id: &str, temperature: f64) -> Arc<Probe> {
    let params = GenParams {
        temperature: Some(temperature),
        ..GenParams::default()
    };
    crate::runner::test_probe(id, 3, params)
}

/// `(side, prompt, temperature)` of every request, in the order they were sent.
type Log = Arc<Mutex<Vec<(String, String, Option<f64>)>>>;

/// Logs every request into a shared log.
struct Logging {
    side: &'static str,
    log: Log,
}

/// A current and a candidate client logging into one shared log.
fn logging_sides() -> (Logging, Logging, Log) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let side = |side| Logging {
        side,
        log: Arc::clone(&log),
    };
    (side("current"), side("candidate"), log)
}

impl ModelClient for Logging {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            self.log.lock().unwrap().push((
                self.side.to_string(),
                request.input.text(),
                request.params.temperature,
            ));
            tokio::task::yield_now().await;
            Ok(Completion {
                text: format!("{} says hi", self.side),
                latency_ms: 1.0,
                attempts: 1,
                ..Completion::default()
            })
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async { Ok(Fingerprint::default()) })
    }
}

/// Targets `cur` and `cand`, `concurrency` pairs at once, no streaming, no texts kept,
/// every probe active.
fn options(concurrency: usize) -> PairedOptions {
    PairedOptions {
        current: "cur".into(),
        candidate: "cand".into(),
        concurrency,
        stream_current: false,
        stream_candidate: false,
        keep_text: false,
        active: None,
    }
}

struct FixedClock;
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        7
    }
}

fn measure(_p: &Probe, c: &Completion) -> Measurements {
    Measurements {
        chars: c.text.len() as u32,
        ..Measurements::default()
    }
}

#[test]
fn plan_is_slot_major_and_alternates_the_first_side() {
    let plan = plan_pairs(3, 4);
    assert_eq!(plan.len(), 12);
    let order: Vec<(usize, u32)> = plan.iter().map(|p| (p.probe, p.index)).collect();
    assert_eq!(&order[..4], &[(0, 0), (1, 0), (2, 0), (0, 1)]);
    // Consecutive pairs alternate; every probe gets both orders equally often.
    for w in plan[..3].windows(2) {
        assert_ne!(w[0].candidate_first, w[1].candidate_first);
    }
    for probe in 0..3 {
        let firsts = plan
            .iter()
            .filter(|p| p.probe == probe && p.candidate_first)
            .count();
        assert_eq!(firsts, 2, "probe {probe}");
    }
    assert!(plan_pairs(0, 5).is_empty());
}

#[tokio::test]
async fn pairs_run_in_the_planned_order_with_each_sides_parameters() {
    let (cur, cand, log) = logging_sides();
    let cur_probes = vec![probe("a", 0.1), probe("b", 0.1)];
    let cand_probes = vec![probe("a", 0.9), probe("b", 0.9)];
    let plan = plan_pairs(2, 3);
    let options = PairedOptions {
        keep_text: true,
        ..options(1)
    };
    let mut seen = 0;
    let out = run_paired(
        &cur,
        &cand,
        &cur_probes,
        &cand_probes,
        &plan,
        &options,
        &measure,
        &FixedClock,
        &mut |a, b| {
            seen += 1;
            assert_eq!((&a.probe_id, a.index), (&b.probe_id, b.index));
            Flow::Continue
        },
    )
    .await;
    assert_eq!((out.pairs, seen, out.stopped_early), (6, 6, false));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 12);
    // Each side asks the plan's items in plan order, with its own parameters; the pair's
    // first request follows the plan's alternation when both sides start it together (the
    // first pair).
    let want: Vec<String> = plan
        .iter()
        .map(|i| format!("prompt {}", ["a", "b"][i.probe]))
        .collect();
    for (side, t) in [("current", 0.1), ("candidate", 0.9)] {
        let asked: Vec<&(String, String, Option<f64>)> =
            log.iter().filter(|(s, _, _)| s == side).collect();
        let prompts: Vec<String> = asked.iter().map(|(_, p, _)| p.clone()).collect();
        assert_eq!(prompts, want, "{side}");
        assert!(asked.iter().all(|(_, _, temp)| *temp == Some(t)), "{side}");
    }
    assert!(!plan[0].candidate_first);
    assert_eq!(log[0].0, "current");
    assert!(out.current.samples.iter().all(|s| s.target == "cur"));
    assert!(out.candidate.samples.iter().all(|s| s.target == "cand"));
    assert_eq!(
        out.candidate.samples[0].text.as_deref(),
        Some("candidate says hi")
    );
}

#[tokio::test]
async fn stopping_early_keeps_only_the_pairs_handed_out() {
    let (cur, cand, log) = logging_sides();
    let probes = vec![probe("a", 0.5), probe("b", 0.5), probe("c", 0.5)];
    let plan = plan_pairs(3, 100);
    let options = PairedOptions {
        stream_current: true,
        stream_candidate: true,
        ..options(4)
    };
    let mut n = 0;
    let out = run_paired(
        &cur,
        &cand,
        &probes,
        &probes,
        &plan,
        &options,
        &measure,
        &FixedClock,
        &mut |_, _| {
            n += 1;
            if n == 10 { Flow::Stop } else { Flow::Continue }
        },
    )
    .await;
    assert_eq!(out.pairs, 10);
    assert!(out.stopped_early);
    assert_eq!(out.current.samples.len(), 10);
    assert_eq!(out.candidate.samples.len(), 10);
    // At most the buffered pairs beyond the stop were started.
    assert!(log.lock().unwrap().len() <= 2 * (10 + 4));
}

/// The answer "ok" after `ms` milliseconds.
fn answered_ok(ms: u64) -> Completion {
    Completion {
        text: "ok".into(),
        latency_ms: ms as f64,
        attempts: 1,
        ..Completion::default()
    }
}

/// Answers after a delay by prompt (`prompt slow`: 50 ms, else 10 ms) and counts the
/// requests open at once and when each ended, on the paused tokio clock.
struct Timed {
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
    ended: Arc<Mutex<Vec<(String, u128)>>>,
    start: tokio::time::Instant,
}

impl ModelClient for Timed {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_open.fetch_max(now, Ordering::SeqCst);
            let prompt = request.input.text();
            let ms = if prompt == "prompt slow" { 50 } else { 10 };
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            self.open.fetch_sub(1, Ordering::SeqCst);
            let at = self.start.elapsed().as_millis();
            self.ended.lock().unwrap().push((prompt, at));
            Ok(answered_ok(ms))
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async { Ok(Fingerprint::default()) })
    }
}

#[tokio::test(start_paused = true)]
async fn both_sides_of_a_pair_are_asked_at_once_and_a_slow_pair_leaves_no_slot_idle() {
    let (open, most_open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let client = Timed {
        open: Arc::clone(&open),
        most_open: Arc::clone(&most_open),
        ended: Arc::clone(&ended),
        start: tokio::time::Instant::now(),
    };
    let probes = vec![probe("slow", 0.5), probe("b", 0.5), probe("c", 0.5)];
    let plan = plan_pairs(3, 10);
    let seen = run_all(&client, &client, &probes, 10, 2).await;
    assert_eq!(seen.len(), 30);
    // Handed out in plan order although they finished out of order.
    let want: Vec<(String, u32)> = plan
        .iter()
        .map(|i| (["slow", "b", "c"][i.probe].to_string(), i.index))
        .collect();
    assert_eq!(seen, want);
    // Two pairs at once, both sides of each: four requests open together.
    assert_eq!(most_open.load(Ordering::SeqCst), 4);
    // While the first slow pair (0–50 ms) was open, the other slot went on: pairs b and c of
    // slot 0 both ended before it (with an order-preserving buffer only b would have, its
    // slot then idle until the slow pair was handed out).
    let before_slow = ended
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, at)| p != "prompt slow" && *at < 50)
        .count();
    assert_eq!(before_slow, 2 * 2, "requests ended under the slow pair");
}

/// `(prompt, started, ended)` of every request, in milliseconds since the client was made.
type Timeline = Arc<Mutex<Vec<(String, u128, u128)>>>;

/// Answers after `ms(prompt)` milliseconds on the paused tokio clock and logs each
/// request's prompt, start and end.
struct Paced {
    ms: fn(&str) -> u64,
    log: Timeline,
    start: tokio::time::Instant,
}

impl Paced {
    fn new(ms: fn(&str) -> u64) -> Self {
        Paced {
            ms,
            log: Arc::new(Mutex::new(Vec::new())),
            start: tokio::time::Instant::now(),
        }
    }
}

impl ModelClient for Paced {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            let prompt = request.input.text();
            let began = self.start.elapsed().as_millis();
            let ms = (self.ms)(&prompt);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            let ended = self.start.elapsed().as_millis();
            self.log.lock().unwrap().push((prompt, began, ended));
            Ok(answered_ok(ms))
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async { Ok(Fingerprint::default()) })
    }
}

/// Runs `probes` × `samples` pairs at `concurrency`, every pair handed out; returns the
/// pairs in the order the caller saw them.
async fn run_all(
    cur: &dyn ModelClient,
    cand: &dyn ModelClient,
    probes: &[Arc<Probe>],
    samples: u32,
    concurrency: usize,
) -> Vec<(String, u32)> {
    let plan = plan_pairs(probes.len(), samples);
    let mut seen = Vec::new();
    run_paired(
        cur,
        cand,
        probes,
        probes,
        &plan,
        &options(concurrency),
        &measure,
        &FixedClock,
        &mut |a, b| {
            assert_eq!((&a.probe_id, a.index), (&b.probe_id, b.index));
            seen.push((a.probe_id.clone(), a.index));
            Flow::Continue
        },
    )
    .await;
    seen
}

#[tokio::test(start_paused = true)]
async fn neither_side_waits_for_the_others_slower_answer() {
    // The current model is slow on even probes, the candidate on odd ones: in lockstep
    // every pair would take 50 ms, 16 pairs one at a time 800 ms. Apart, each side spends
    // 8 × 50 + 8 × 10 = 480 ms.
    let slow_even = |p: &str| {
        if p.ends_with(['0', '2', '4', '6']) {
            50
        } else {
            10
        }
    };
    let slow_odd = |p: &str| {
        if p.ends_with(['1', '3', '5', '7']) {
            50
        } else {
            10
        }
    };
    let (cur, cand) = (Paced::new(slow_even), Paced::new(slow_odd));
    let probes: Vec<Arc<Probe>> = (0..8).map(|i| probe(&format!("p{i}"), 0.5)).collect();
    let seen = run_all(&cur, &cand, &probes, 2, 1).await;
    let want: Vec<(String, u32)> = plan_pairs(8, 2)
        .iter()
        .map(|i| (format!("p{}", i.probe), i.index))
        .collect();
    assert_eq!(seen, want);
    let end = |log: &Timeline| log.lock().unwrap().iter().map(|r| r.2).max().unwrap_or(0);
    let took = end(&cur.log).max(end(&cand.log));
    assert!((480..=540).contains(&took), "took {took} ms");
}

#[tokio::test(start_paused = true)]
async fn the_faster_side_runs_at_most_the_lookahead_ahead() {
    // The current model answers in 10 ms, the candidate in 50: one request at a time per
    // side, the current side may be at most `LOOKAHEAD` items ahead of the last pair both
    // finished, so its request k starts only after the candidate's request k - 4 ended.
    let (cur, cand) = (Paced::new(|_| 10), Paced::new(|_| 50));
    let probes: Vec<Arc<Probe>> = (0..6).map(|i| probe(&format!("p{i}"), 0.5)).collect();
    let seen = run_all(&cur, &cand, &probes, 2, 1).await;
    assert_eq!(seen.len(), 12);
    let (cur_log, cand_log) = (cur.log.lock().unwrap(), cand.log.lock().unwrap());
    assert_eq!((cur_log.len(), cand_log.len()), (12, 12));
    for k in 0..12 {
        let began = cur_log[k].1;
        if k < LOOKAHEAD {
            assert_eq!(
                began,
                10 * k as u128,
                "request {k} started when its slot freed"
            );
        } else {
            let gate = cand_log[k - LOOKAHEAD].2;
            assert_eq!(began, gate.max(10 * k as u128), "request {k}");
        }
    }
    // The candidate side never waited: its twelve requests back to back.
    assert_eq!(cand_log[11].2, 12 * 50);
}

#[tokio::test]
async fn dropped_probes_are_skipped_from_their_next_turn() {
    let (cur, cand, _) = logging_sides();
    let probes = vec![probe("a", 0.5), probe("b", 0.5), probe("c", 0.5)];
    let plan = plan_pairs(3, 4);
    let active: Arc<Vec<AtomicBool>> = Arc::new((0..3).map(|_| AtomicBool::new(true)).collect());
    let options = PairedOptions {
        active: Some(Arc::clone(&active)),
        ..options(1)
    };
    let mut seen = Vec::new();
    let out = run_paired(
        &cur,
        &cand,
        &probes,
        &probes,
        &plan,
        &options,
        &measure,
        &FixedClock,
        &mut |a, _| {
            seen.push((a.probe_id.clone(), a.index));
            // After slot 0, only probe "b" is still needed.
            if seen.len() == 3 {
                active[0].store(false, Ordering::Relaxed);
                active[2].store(false, Ordering::Relaxed);
            }
            Flow::Continue
        },
    )
    .await;
    // One request at a time per side: the side ahead had taken at most one item when the
    // probes were dropped, so at most that one pair of theirs still comes.
    let b_only: Vec<(String, u32)> = (1..4).map(|i| ("b".to_string(), i)).collect();
    let late = seen.len() - 3 - b_only.len();
    assert!(late <= 1, "{seen:?}");
    assert_eq!(seen[3 + late..], b_only[..]);
    if late == 1 {
        assert_eq!(seen[3], ("a".to_string(), 1));
    }
    assert_eq!((out.pairs, out.stopped_early), (6 + late, false));
}
