//! The paired design of a canary: the current and the candidate model get the same probes and
//! sample slots. A pair's two requests are sent at the same moment, so slow drifts (server load,
//! caches warming up, time of day) hit both sides alike and cancel in the paired tests, and a
//! pair takes as long as its slower side, not the sum of both. Which side is sent first (by
//! microseconds) still alternates from pair to pair.
//!
//! [`plan_pairs`] is the pure order; [`run_paired`] executes it against two clients, hands each
//! finished pair to the caller (who may stop early) and returns both sides' samples.

use super::{Clock, Evaluate, PlanItem, RoundOutcome, request_for, to_sample};
use crate::probe::Probe;
use crate::provider::ModelClient;
use crate::sample::Sample;
use futures_util::future::join;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One pair: probe `probe` (a position in the probe list), sample slot `index`, on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairItem {
    pub probe: usize,
    pub index: u32,
    /// Whether the candidate is asked before the current model for this pair.
    pub candidate_first: bool,
}

/// The order of a paired run: slot 0 of every probe, then slot 1 of every probe, …, so that
/// stopping early leaves every probe with (nearly) as many pairs as the others. Which side goes
/// first alternates from pair to pair and from slot to slot: each probe gets both orders
/// equally often (up to one), and so does every slot.
pub fn plan_pairs(probes: usize, samples: u32) -> Vec<PairItem> {
    let mut items = Vec::with_capacity(probes * samples as usize);
    for index in 0..samples {
        for probe in 0..probes {
            items.push(PairItem {
                probe,
                index,
                candidate_first: (probe + index as usize) % 2 == 1,
            });
        }
    }
    items
}

/// How many times the concurrency a run may start ahead of the first pair not yet handed to
/// the caller.
const LOOKAHEAD: usize = 4;

/// Whether a paired run goes on after a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Options of a paired run.
#[derive(Debug, Clone)]
pub struct PairedOptions {
    /// Target names stored in the samples.
    pub current: String,
    pub candidate: String,
    /// Pairs in flight at once: each side has at most this many requests open.
    pub concurrency: usize,
    pub stream_current: bool,
    pub stream_candidate: bool,
    /// Keep the raw response text in the samples.
    pub keep_text: bool,
    /// Probes (by position) still worth sampling; pairs of the others are skipped when their
    /// turn comes. The caller may clear entries while the run goes on (a sequential canary
    /// drops probes whose metrics are already decided). `None`: every probe.
    pub active: Option<Arc<Vec<AtomicBool>>>,
}

/// Whether probe `i` is still active (out-of-range positions are not).
fn is_active(active: &Option<Arc<Vec<AtomicBool>>>, i: usize) -> bool {
    active
        .as_ref()
        .is_none_or(|a| a.get(i).is_some_and(|b| b.load(Ordering::Relaxed)))
}

/// What a paired run produced: one outcome per side, samples in plan order, pair by pair.
#[derive(Debug, Clone)]
pub struct PairedOutcome {
    pub current: RoundOutcome,
    pub candidate: RoundOutcome,
    /// Pairs executed (both requests answered or failed).
    pub pairs: usize,
    /// True when the caller stopped the run before the plan was done.
    pub stopped_early: bool,
}

/// One side of a pair: the probe as that side runs it (its target's generation parameters).
fn side_item(probes: &[Arc<Probe>], item: &PairItem) -> PlanItem {
    PlanItem {
        probe: Arc::clone(&probes[item.probe]),
        index: item.index,
    }
}

/// Runs `plan` against both clients. `current_probes` and `candidate_probes` are the same
/// probes in the same order, each with its side's generation parameters; plan items refer to
/// them by position (items out of range are skipped). After each pair, in plan order,
/// `on_pair(current, candidate)` decides whether to go on; on [`Flow::Stop`] the pairs still
/// in flight are dropped.
#[allow(clippy::too_many_arguments)]
pub async fn run_paired(
    current: &dyn ModelClient,
    candidate: &dyn ModelClient,
    current_probes: &[Arc<Probe>],
    candidate_probes: &[Arc<Probe>],
    plan: &[PairItem],
    options: &PairedOptions,
    evaluate: &Evaluate<'_>,
    clock: &dyn Clock,
    on_pair: &mut (dyn FnMut(&Sample, &Sample) -> Flow + Send),
) -> PairedOutcome {
    let started_at_ms = clock.now_ms();
    let (fp_current, fp_candidate) =
        futures_util::future::join(current.fingerprint(), candidate.fingerprint()).await;
    let n = current_probes.len().min(candidate_probes.len());
    let mut pending = plan
        .iter()
        .filter(|i| i.probe < n && is_active(&options.active, i.probe));
    let planned = plan
        .iter()
        .filter(|i| i.probe < n && is_active(&options.active, i.probe))
        .count();
    let pair = |seq: usize, item: &PairItem| {
        let cur = one(
            current,
            &options.current,
            side_item(current_probes, item),
            options.stream_current,
            evaluate,
            clock,
            options.keep_text,
        );
        let cand = one(
            candidate,
            &options.candidate,
            side_item(candidate_probes, item),
            options.stream_candidate,
            evaluate,
            clock,
            options.keep_text,
        );
        let first = item.candidate_first;
        async move {
            if first {
                let (b, a) = join(cand, cur).await;
                (seq, a, b)
            } else {
                let (a, b) = join(cur, cand).await;
                (seq, a, b)
            }
        }
    };
    // Unordered, so a slow pair never holds a free slot idle behind it; the caller still gets
    // the pairs in plan order (its looks happen at slot ends). Pairs are started at most
    // `LOOKAHEAD` slots' worth of concurrency ahead of the first one not yet handed out, so a
    // stuck request cannot make the run spend far past a stop it would have decided.
    let width = options.concurrency.max(1);
    let window = LOOKAHEAD * width;
    let mut running = FuturesUnordered::new();
    let mut finished: BTreeMap<usize, (Sample, Sample)> = BTreeMap::new();
    let (mut started, mut handed) = (0usize, 0usize);
    let (mut cur_samples, mut cand_samples) = (Vec::new(), Vec::new());
    let mut stopped_early = false;
    'run: loop {
        while running.len() < width && started < handed + window {
            let Some(item) = pending.next() else { break };
            running.push(pair(started, item));
            started += 1;
        }
        let Some((seq, a, b)) = running.next().await else {
            break;
        };
        finished.insert(seq, (a, b));
        while let Some((a, b)) = finished.remove(&handed) {
            handed += 1;
            let flow = on_pair(&a, &b);
            cur_samples.push(a);
            cand_samples.push(b);
            if flow == Flow::Stop {
                stopped_early = cur_samples.len() < planned;
                break 'run;
            }
        }
    }
    drop(running);
    let ended_at_ms = clock.now_ms();
    let pairs = cur_samples.len();
    PairedOutcome {
        current: RoundOutcome {
            fingerprint: fp_current,
            started_at_ms,
            ended_at_ms,
            samples: cur_samples,
            cut: false,
        },
        candidate: RoundOutcome {
            fingerprint: fp_candidate,
            started_at_ms,
            ended_at_ms,
            samples: cand_samples,
            cut: false,
        },
        pairs,
        stopped_early,
    }
}

/// One request of one side, evaluated into a sample.
#[allow(clippy::too_many_arguments)]
async fn one(
    client: &dyn ModelClient,
    target: &str,
    item: PlanItem,
    stream: bool,
    evaluate: &Evaluate<'_>,
    clock: &dyn Clock,
    keep_text: bool,
) -> Sample {
    let request = request_for(&item, stream);
    let at = clock.now_ms();
    let result = client.complete(&request).await;
    to_sample(target, &item, at, result, evaluate, keep_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Expect, GenParams, Location, ProbeInput};
    use crate::provider::{CompletionRequest, Fingerprint};
    use crate::sample::{Completion, Measurements, SampleError};
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    fn probe(id: &str, temperature: f64) -> Arc<Probe> {
        Arc::new(Probe {
            id: id.into(),
            suite: "s".into(),
            description: None,
            input: ProbeInput::Prompt(format!("prompt {id}")),
            params: GenParams {
                temperature: Some(temperature),
                ..GenParams::default()
            },
            samples: 3,
            tags: vec![],
            expect: Expect::default(),
            location: Location::default(),
            hash: format!("hash-{id}"),
        })
    }

    /// `(side, prompt, temperature)` of every request, in the order they were sent.
    type Log = Arc<Mutex<Vec<(String, String, Option<f64>)>>>;

    /// Logs every request into a shared log.
    struct Logging {
        side: &'static str,
        log: Log,
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
        let log = Arc::new(Mutex::new(Vec::new()));
        let cur = Logging {
            side: "current",
            log: Arc::clone(&log),
        };
        let cand = Logging {
            side: "candidate",
            log: Arc::clone(&log),
        };
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
        for (k, item) in plan.iter().enumerate() {
            let (first, second) = (&log[2 * k], &log[2 * k + 1]);
            let want_first = if item.candidate_first {
                "candidate"
            } else {
                "current"
            };
            assert_eq!(first.0, want_first, "pair {k}");
            assert_ne!(first.0, second.0);
            assert_eq!(first.1, second.1, "same prompt on both sides");
            for (side, _, t) in [first, second] {
                let want = if side == "current" { 0.1 } else { 0.9 };
                assert_eq!(*t, Some(want));
            }
        }
        assert!(out.current.samples.iter().all(|s| s.target == "cur"));
        assert!(out.candidate.samples.iter().all(|s| s.target == "cand"));
        assert_eq!(
            out.candidate.samples[0].text.as_deref(),
            Some("candidate says hi")
        );
    }

    #[tokio::test]
    async fn stopping_early_keeps_only_the_pairs_handed_out() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let cur = Logging {
            side: "current",
            log: Arc::clone(&log),
        };
        let cand = Logging {
            side: "candidate",
            log: Arc::clone(&log),
        };
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
                Ok(Completion {
                    text: "ok".into(),
                    latency_ms: ms as f64,
                    attempts: 1,
                    ..Completion::default()
                })
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
        let options = options(2);
        let mut seen = Vec::new();
        let out = run_paired(
            &client,
            &client,
            &probes,
            &probes,
            &plan,
            &options,
            &measure,
            &FixedClock,
            &mut |a, b| {
                assert_eq!((&a.probe_id, a.index), (&b.probe_id, b.index));
                seen.push((a.probe_id.clone(), a.index));
                Flow::Continue
            },
        )
        .await;
        assert_eq!(out.pairs, 30);
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

    #[tokio::test]
    async fn dropped_probes_are_skipped_from_their_next_turn() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let cur = Logging {
            side: "current",
            log: Arc::clone(&log),
        };
        let cand = Logging {
            side: "candidate",
            log: Arc::clone(&log),
        };
        let probes = vec![probe("a", 0.5), probe("b", 0.5), probe("c", 0.5)];
        let plan = plan_pairs(3, 4);
        let active: Arc<Vec<AtomicBool>> =
            Arc::new((0..3).map(|_| AtomicBool::new(true)).collect());
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
        let b_only: Vec<(String, u32)> = (1..4).map(|i| ("b".to_string(), i)).collect();
        assert_eq!(seen[3..], b_only[..]);
        assert_eq!((out.pairs, out.stopped_early), (6, false));
    }
}
