//! Unit tests of one round: order, concurrency, deadlines and the breaker.

use super::*;
use crate::probe::GenParams;
use futures_util::future::BoxFuture;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

fn probe(id: &str, samples: u32, seed: Option<u64>) -> Arc<Probe> {
    let params = GenParams {
        seed,
        ..GenParams::default()
    };
    test_probe(id, samples, params)
}

/// Answers with the prompt text; fails every `fail_every`-th request; records concurrency.
struct Fake {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    fail_every: usize,
    seen: Mutex<Vec<CompletionRequest>>,
}

impl Fake {
    fn new(fail_every: usize) -> Self {
        Fake {
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            fail_every,
            seen: Mutex::new(vec![]),
        }
    }
}

impl ModelClient for Fake {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.seen.lock().unwrap().push(request.clone());
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.fail_every > 0 && n.is_multiple_of(self.fail_every) {
                let mut e = SampleError::new(ErrorKind::HttpStatus, "boom");
                e.status = Some(503);
                e.attempts = 3;
                return Err(e);
            }
            Ok(Completion {
                text: request.input.text(),
                latency_ms: 5.0,
                attempts: 1,
                ..Completion::default()
            })
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async { Ok(Fingerprint::default()) })
    }
}

struct FixedClock;
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        1_000
    }
}

fn measure(_p: &Probe, c: &Completion) -> Measurements {
    Measurements {
        chars: c.text.chars().count() as u32,
        ..Measurements::default()
    }
}

#[test]
fn plan_interleaves_probes_and_honours_counts() {
    let probes = vec![
        probe("a", 2, None),
        probe("b", 1, None),
        probe("c", 3, None),
    ];
    let order: Vec<(String, u32)> = plan(&probes, None)
        .iter()
        .map(|i| (i.probe.id.clone(), i.index))
        .collect();
    let expected: Vec<(String, u32)> = [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("c", 2)]
        .iter()
        .map(|(p, i)| (p.to_string(), *i))
        .collect();
    assert_eq!(order, expected);
    assert_eq!(plan(&probes, Some(4)).len(), 12);
}

#[test]
fn declared_seed_advances_per_sample_and_absent_seed_stays_absent() {
    let seeded = PlanItem {
        probe: probe("a", 3, Some(100)),
        index: 2,
    };
    assert_eq!(request_for(&seeded, false).params.seed, Some(102));
    let free = PlanItem {
        probe: probe("b", 3, None),
        index: 2,
    };
    assert_eq!(request_for(&free, true).params.seed, None);
    assert!(request_for(&free, true).stream);
    // The sample records the seed its request carried (what `compare` pairs by).
    assert_eq!(seeded.pending_sample("t", 0).seed, Some(102));
    assert_eq!(free.pending_sample("t", 0).seed, None);
    let failed = to_sample(
        "t",
        &seeded,
        0,
        Err(SampleError::new(ErrorKind::Timeout, "timed out")),
        &|_, _| Measurements::default(),
        false,
    );
    assert_eq!(failed.seed, Some(102));
}

#[test]
fn a_pair_seed_goes_to_probes_without_their_own() {
    let probes = vec![probe("a", 1, Some(100)), probe("b", 1, None)];
    let seeded = setup::with_pair_seed(probes.clone(), Some(7));
    let seeds: Vec<_> = seeded.iter().map(|p| p.params.seed).collect();
    assert_eq!(seeds, vec![Some(100), Some(7)]);
    assert_eq!(
        seeded[1].hash, "hash-b",
        "the content hash is the probe's own"
    );
    let free = setup::with_pair_seed(probes, None);
    assert_eq!(free[1].params.seed, None);
}

#[test]
fn daemon_rounds_move_a_declared_seed_past_every_earlier_round() {
    let probes = vec![probe("a", 3, Some(100)), probe("b", 3, None)];
    let seeds = |round: u64| -> Vec<Option<u64>> {
        let probes = setup::with_round_seed(&probes, round);
        plan(&probes, None).iter().map(PlanItem::seed).collect()
    };
    // Round 0 sends the declared seeds (what `run` and the baseline sent) ...
    assert_eq!(
        seeds(0),
        vec![Some(100), None, Some(101), None, Some(102), None]
    );
    // ... and every later round fresh ones: no request of one round repeats another's.
    assert_eq!(
        seeds(1),
        vec![Some(103), None, Some(104), None, Some(105), None]
    );
    let mut all: Vec<u64> = (0..50).flat_map(seeds).flatten().collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a seed repeated across rounds");
    assert_eq!(setup::with_round_seed(&probes, 9)[0].hash, "hash-a");
}

#[tokio::test]
async fn round_records_errors_as_errors_and_bounds_concurrency() {
    let fake = Fake::new(4);
    let probes = vec![probe("a", 5, None), probe("b", 5, None)];
    let options = RoundOptions {
        target: "t".into(),
        concurrency: 3,
        stream: false,
        samples_override: None,
        keep_text: true,
    };
    let out = run_round(&fake, &probes, &options, &measure, &FixedClock).await;
    assert_eq!(out.samples.len(), 10);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 10);
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= 3);
    assert!(fake.max_in_flight.load(Ordering::SeqCst) >= 2);
    // Every 4th call failed: 2 errors, each with no measurements.
    assert_eq!(out.errors(), 2);
    for s in &out.samples {
        assert_eq!(s.error.is_some(), s.measurements.is_none());
        if let Some(e) = &s.error {
            assert_eq!(e.kind, ErrorKind::HttpStatus);
            assert_eq!(s.attempts, 3);
            assert!(s.text.is_none());
        } else {
            let m = s.measurements.as_ref().unwrap();
            assert_eq!(m.chars as usize, format!("prompt {}", s.probe_id).len());
        }
    }
    assert_eq!(
        errors_by_kind(&out.samples),
        vec![(ErrorKind::HttpStatus, 2)]
    );
    assert!(out.measured());
    assert_eq!(out.started_at_ms, 1_000);
}

/// Answers after `slow` for probe "slow", at once for the others; `refuse` makes the
/// fingerprint or the requests fail as an unreachable server would.
struct Scripted {
    slow: std::time::Duration,
    refuse_fingerprint: bool,
    refuse_requests: bool,
    calls: AtomicUsize,
}

impl Scripted {
    /// A server whose `slow` probe takes `slow`, the fingerprint and requests refused as
    /// given.
    fn new(slow: std::time::Duration, refuse_fingerprint: bool, refuse_requests: bool) -> Self {
        Scripted {
            slow,
            refuse_fingerprint,
            refuse_requests,
            calls: AtomicUsize::new(0),
        }
    }
}

/// A round of `probes` on two slots with a 10 s deadline.
async fn two_slots_ten_seconds(client: &Scripted, probes: &[Arc<Probe>]) -> RoundOutcome {
    let limits = RoundLimits {
        deadline: Some(std::time::Duration::from_secs(10)),
        ..RoundLimits::default()
    };
    run_round_within(client, probes, &options(2), &limits, &measure, &FixedClock).await
}

fn refused() -> SampleError {
    SampleError::new(
        ErrorKind::Connect,
        format!(
            "on 127.0.0.1:9: {}: Connection refused",
            crate::sample::COULD_NOT_CONNECT
        ),
    )
}

impl ModelClient for Scripted {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.refuse_requests {
                return Err(refused());
            }
            if request.input.text().contains("slow") {
                tokio::time::sleep(self.slow).await;
            }
            Ok(Completion {
                text: "answer".into(),
                attempts: 1,
                ..Completion::default()
            })
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        let refuse = self.refuse_fingerprint;
        Box::pin(async move {
            if refuse {
                Err(refused())
            } else {
                Ok(Fingerprint::default())
            }
        })
    }
}

fn options(concurrency: usize) -> RoundOptions {
    RoundOptions {
        target: "t".into(),
        concurrency,
        stream: false,
        samples_override: None,
        keep_text: false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_round_past_its_deadline_keeps_what_finished_and_marks_the_rest() {
    let client = Scripted::new(std::time::Duration::from_secs(60), false, false);
    // Plan: fast0, slow0, fast1, slow1, fast2, fast3; two slots, so the two slow requests
    // hold both slots until the deadline and fast2, fast3 are never sent.
    let probes = vec![probe("fast", 4, None), probe("slow", 2, None)];
    let out = two_slots_ten_seconds(&client, &probes).await;
    assert_eq!(out.samples.len(), 6);
    assert!(out.cut);
    assert_eq!(out.status(), RoundStatus::Deadline);
    let by = |id: &str, index: u32| {
        out.samples
            .iter()
            .find(|s| s.probe_id == id && s.index == index)
            .unwrap()
    };
    assert!(by("fast", 0).measurements.is_some());
    assert!(by("fast", 1).measurements.is_some());
    for i in 0..2 {
        let s = by("slow", i);
        let e = s.error.as_ref().expect("cut");
        assert_eq!((e.kind, s.attempts), (ErrorKind::Deadline, 1));
        assert!(e.message.contains("cancelled"), "{}", e.message);
    }
    for i in 2..4 {
        let s = by("fast", i);
        let e = s.error.as_ref().expect("never sent");
        assert_eq!((e.kind, s.attempts), (ErrorKind::Deadline, 0));
    }
    assert_eq!(client.calls.load(Ordering::SeqCst), 4);
    assert!(out.measured());
}

/// A server that accepts the fingerprint request and never answers it.
struct Hung;

impl ModelClient for Hung {
    fn complete<'a>(
        &'a self,
        _: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        unreachable!("no probe is sent before the fingerprint")
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_fingerprint_request_is_blamed_on_the_server_not_the_deadline() {
    let limits = RoundLimits {
        deadline: Some(std::time::Duration::from_secs(10)),
        ..RoundLimits::default()
    };
    let probes = vec![probe("a", 3, None)];
    let out = run_round_within(&Hung, &probes, &options(2), &limits, &measure, &FixedClock).await;
    assert_eq!(out.status(), RoundStatus::Deadline);
    let e = out.fingerprint.as_ref().unwrap_err();
    assert_eq!((e.kind, e.attempts), (ErrorKind::Deadline, 1));
    assert!(
        e.message.contains("no answer to the fingerprint request"),
        "{}",
        e.message
    );
    assert!(e.message.contains("modelwatch doctor"), "{}", e.message);
    for s in &out.samples {
        let e = s.error.as_ref().unwrap();
        assert_eq!((e.kind, s.attempts), (ErrorKind::Deadline, 0));
        assert!(
            e.message.contains("not sent: no answer to the fingerprint"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("max_concurrency"), "{}", e.message);
    }
}

#[tokio::test(start_paused = true)]
async fn a_round_within_its_deadline_is_not_cut() {
    let client = Scripted::new(std::time::Duration::from_secs(1), false, false);
    let probes = vec![probe("fast", 2, None), probe("slow", 2, None)];
    let out = two_slots_ten_seconds(&client, &probes).await;
    assert!(!out.cut);
    assert_eq!(out.status(), RoundStatus::Completed);
    assert_eq!(out.errors(), 0);
}

#[tokio::test]
async fn an_unreachable_server_costs_one_request_per_round() {
    let probes = vec![probe("a", 5, None), probe("b", 5, None)];
    // The fingerprint finds the server down: no request is sent at all.
    let down = Scripted::new(std::time::Duration::ZERO, true, true);
    let out = run_round(&down, &probes, &options(4), &measure, &FixedClock).await;
    assert_eq!(down.calls.load(Ordering::SeqCst), 0);
    assert_eq!(out.errors(), 10);
    assert_eq!(out.status(), RoundStatus::Failed);
    for s in &out.samples {
        let e = s.error.as_ref().unwrap();
        assert_eq!((e.kind, s.attempts), (ErrorKind::Connect, 0));
        assert!(e.message.contains("Connection refused"), "{}", e.message);
    }
    // The fingerprint passed, then the server went away: one request finds out.
    let gone = Scripted::new(std::time::Duration::ZERO, false, true);
    let out = run_round(&gone, &probes, &options(1), &measure, &FixedClock).await;
    assert_eq!(gone.calls.load(Ordering::SeqCst), 1);
    assert_eq!(out.errors(), 10);
    assert_eq!(out.samples.iter().map(|s| s.attempts).sum::<u32>(), 1);
}
