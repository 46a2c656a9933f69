//! The paired design of a canary: the current and the candidate model get the same probes and
//! sample slots. The two sides run apart, each with its own requests open, but never more than a
//! few requests' time from each other: slow drifts (server load, caches warming up, time of day)
//! hit both sides alike and cancel in the paired tests, and neither server idles while the other
//! finishes a slower answer. When both sides start a pair together, which goes first (by
//! microseconds) alternates from pair to pair.
//!
//! [`plan_pairs`] is the pure order; [`run_paired`] executes it against two clients, hands each
//! finished pair to the caller (who may stop early) and returns both sides' samples.

use super::{Clock, Evaluate, PlanItem, RoundOutcome, request_for, to_sample};
use crate::probe::Probe;
use crate::provider::ModelClient;
use crate::sample::Sample;
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

/// One side of a paired run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Current,
    Candidate,
}

impl Side {
    const BOTH: [Side; 2] = [Side::Current, Side::Candidate];

    /// Its position in per-side arrays.
    fn at(self) -> usize {
        self as usize
    }

    /// 0 when this side of `item` is sent first if both sides could start it, else 1.
    fn rank(self, item: &PairItem) -> usize {
        usize::from((self == Side::Candidate) != item.candidate_first)
    }
}

/// Options of a paired run.
#[derive(Debug, Clone)]
pub struct PairedOptions {
    /// Target names stored in the samples.
    pub current: String,
    pub candidate: String,
    /// Requests each side has open at most (its pairs in flight).
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

/// Which request each side starts next, and the finished ones waiting for their other side.
struct Lanes {
    /// The items both sides run, in the order the leading side took them from the plan (a
    /// probe the caller dropped is skipped when its turn comes, for both sides alike).
    taken: Vec<PairItem>,
    /// Per side: the position in `taken` of its next request, and its requests open.
    next: [usize; 2],
    open: [usize; 2],
    finished: [BTreeMap<usize, Sample>; 2],
    /// Pairs handed to the caller.
    handed: usize,
    width: usize,
    window: usize,
}

impl Lanes {
    fn new(width: usize, window: usize) -> Lanes {
        Lanes {
            taken: Vec::new(),
            next: [0; 2],
            open: [0; 2],
            finished: [BTreeMap::new(), BTreeMap::new()],
            handed: 0,
            width,
            window,
        }
    }

    /// Whether `side` may start a request now: a slot free, and within the window ahead of
    /// the first pair not yet handed out.
    fn ready(&self, side: Side) -> bool {
        self.open[side.at()] < self.width && self.next[side.at()] < self.handed + self.window
    }

    /// The next request to start, as (side, position in `taken`): the side behind goes first,
    /// at a tie the pair's own order. Takes a new item from `pending` when a ready side has
    /// run every item taken so far.
    fn next_start<'p>(
        &mut self,
        pending: &mut impl Iterator<Item = &'p PairItem>,
    ) -> Option<(Side, usize)> {
        if Side::BOTH
            .iter()
            .any(|s| self.ready(*s) && self.next[s.at()] == self.taken.len())
            && let Some(item) = pending.next()
        {
            self.taken.push(*item);
        }
        let side = Side::BOTH
            .into_iter()
            .filter(|s| self.ready(*s) && self.next[s.at()] < self.taken.len())
            .min_by_key(|s| (self.next[s.at()], s.rank(&self.taken[self.next[s.at()]])))?;
        let seq = self.next[side.at()];
        self.next[side.at()] += 1;
        self.open[side.at()] += 1;
        Some((side, seq))
    }

    /// `side`'s request at position `seq` ended with `sample`.
    fn ended(&mut self, side: Side, seq: usize, sample: Sample) {
        self.open[side.at()] -= 1;
        self.finished[side.at()].insert(seq, sample);
    }

    /// The next pair in plan order, once both its sides ended: (current, candidate).
    fn next_pair(&mut self) -> Option<(Sample, Sample)> {
        let [cur, cand] = &mut self.finished;
        if !(cur.contains_key(&self.handed) && cand.contains_key(&self.handed)) {
            return None;
        }
        let pair = (cur.remove(&self.handed)?, cand.remove(&self.handed)?);
        self.handed += 1;
        Some(pair)
    }
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
    // The two sides run apart: each keeps its own `concurrency` requests open and goes on to
    // its next item as soon as one ends, so neither server waits for the other's slower
    // answer (a pair in lockstep would take as long as its slower side). Both sides take the
    // items in the same order, and neither starts more than `LOOKAHEAD` slots' worth of
    // concurrency ahead of the first pair not yet handed to the caller: the two requests of a
    // pair are sent within a few requests' time of each other, so slow drifts (server load,
    // caches warming up) still hit both sides alike, and a stuck request cannot make the run
    // spend far past a stop it would have decided. Pairs reach the caller in plan order (its
    // looks happen at slot ends).
    let width = options.concurrency.max(1);
    let request = |side: Side, seq: usize, item: &PairItem| {
        let (client, target, probes, stream) = match side {
            Side::Current => (
                current,
                &options.current,
                current_probes,
                options.stream_current,
            ),
            Side::Candidate => (
                candidate,
                &options.candidate,
                candidate_probes,
                options.stream_candidate,
            ),
        };
        let sample = one(
            client,
            target,
            side_item(probes, item),
            stream,
            evaluate,
            clock,
            options.keep_text,
        );
        async move { (side, seq, sample.await) }
    };
    let mut running = FuturesUnordered::new();
    let mut lanes = Lanes::new(width, LOOKAHEAD * width);
    let (mut cur_samples, mut cand_samples) = (Vec::new(), Vec::new());
    let mut stopped_early = false;
    'run: loop {
        while let Some((side, seq)) = lanes.next_start(&mut pending) {
            running.push(request(side, seq, &lanes.taken[seq]));
        }
        let Some((side, seq, sample)) = running.next().await else {
            break;
        };
        lanes.ended(side, seq, sample);
        while let Some((a, b)) = lanes.next_pair() {
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
#[path = "paired_tests.rs"]
mod tests;
