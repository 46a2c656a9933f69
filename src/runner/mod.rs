//! Executes one round: every probe of a target sampled `samples` times, requests interleaved
//! across probes and bounded by a concurrency limit, each response evaluated into a
//! [`Sample`]. No storage and no printing here: the caller decides what to do with the round.

pub mod breaker;
pub mod evalpool;
pub mod paired;
pub mod recording;
pub mod setup;

use crate::probe::Probe;
use crate::provider::{CompletionRequest, Fingerprint, ModelClient};
use crate::sample::{Completion, ErrorKind, Measurements, Sample, SampleError};
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;

pub use crate::time::{Clock, SystemClock};

/// Turns a successful response into measurements (the `eval` module, or a fake in tests).
pub type Evaluate<'a> = dyn Fn(&Probe, &Completion) -> Measurements + Send + Sync + 'a;

/// One request of a round: a probe and the index of the sample.
#[derive(Debug, Clone)]
pub struct PlanItem {
    pub probe: Arc<Probe>,
    pub index: u32,
}

impl PlanItem {
    /// The sample of this item of `target`'s round, started at `at_ms`, not yet filled.
    pub fn pending_sample(&self, target: &str, at_ms: i64) -> Sample {
        let probe = &self.probe;
        let mut sample = Sample::pending(
            target,
            &probe.suite,
            &probe.id,
            &probe.hash,
            self.index,
            at_ms,
        );
        sample.seed = self.seed();
        sample
    }

    /// The seed this sample's request carries: the probe's, advanced by the sample index.
    pub fn seed(&self) -> Option<u64> {
        self.probe
            .params
            .seed
            .map(|s| s.wrapping_add(u64::from(self.index)))
    }
}

/// The order of a round's requests: sample 0 of every probe, then sample 1 of every probe, …
/// so that slow drifts during a round spread over all probes instead of hitting the last ones.
/// `samples_override` replaces every probe's own sample count.
pub fn plan(probes: &[Arc<Probe>], samples_override: Option<u32>) -> Vec<PlanItem> {
    let count = |p: &Probe| samples_override.unwrap_or(p.samples);
    let max = probes.iter().map(|p| count(p)).max().unwrap_or(0);
    let mut items = Vec::new();
    for index in 0..max {
        for probe in probes {
            if index < count(probe) {
                items.push(PlanItem {
                    probe: Arc::clone(probe),
                    index,
                });
            }
        }
    }
    items
}

/// The request sent for one plan item. A probe that declares a `seed` gets `seed + index`, so
/// samples of one round differ but rounds repeat; without a seed the server samples freely,
/// which keeps rounds independent (what the drift tests assume).
pub fn request_for(item: &PlanItem, stream: bool) -> CompletionRequest {
    let mut params = item.probe.params.clone();
    params.seed = item.seed();
    CompletionRequest {
        input: item.probe.input.clone(),
        params,
        stream,
    }
}

/// Where a round stands. A round left `Running` after a crash stays so: readers see it was
/// never finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundStatus {
    Running,
    /// Every probe was attempted (some samples may still be errors).
    Completed,
    /// The round could not measure anything (e.g. every request failed).
    Failed,
    /// Stopped early (shutdown).
    Cancelled,
    /// The round deadline passed: what finished was kept, the rest are `deadline` errors.
    Deadline,
}

impl RoundStatus {
    pub const ALL: [RoundStatus; 5] = [
        RoundStatus::Running,
        RoundStatus::Completed,
        RoundStatus::Failed,
        RoundStatus::Cancelled,
        RoundStatus::Deadline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoundStatus::Running => "running",
            RoundStatus::Completed => "completed",
            RoundStatus::Failed => "failed",
            RoundStatus::Cancelled => "cancelled",
            RoundStatus::Deadline => "deadline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a round produced.
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    /// The fingerprint read at the start of the round, or why it could not be read.
    pub fingerprint: Result<Fingerprint, SampleError>,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    /// One sample per plan item, in plan order.
    pub samples: Vec<Sample>,
    /// The round deadline passed before every request finished.
    pub cut: bool,
}

impl RoundOutcome {
    /// Samples that failed for infrastructure reasons.
    pub fn errors(&self) -> usize {
        self.samples.iter().filter(|s| s.is_error()).count()
    }

    /// True when at least one sample was measured: the round says something about quality.
    pub fn measured(&self) -> bool {
        self.samples.iter().any(|s| !s.is_error())
    }

    /// How the round ended: `Deadline` when the deadline cut it, else `Completed` when it
    /// measured something, `Failed` when every request failed.
    pub fn status(&self) -> RoundStatus {
        if self.cut {
            RoundStatus::Deadline
        } else if self.measured() {
            RoundStatus::Completed
        } else {
            RoundStatus::Failed
        }
    }
}

/// Options for one round.
#[derive(Debug, Clone)]
pub struct RoundOptions {
    pub target: String,
    /// Requests in flight at once for this target (at least 1).
    pub concurrency: usize,
    pub stream: bool,
    pub samples_override: Option<u32>,
    /// Keep the raw response text in the sample.
    pub keep_text: bool,
}

/// Limits of one round beyond its options.
#[derive(Clone, Default)]
pub struct RoundLimits {
    /// Where answers are checked: on the pool's threads within its budget (see
    /// [`evalpool`]), or inline with `evaluate` when `None`.
    pub checks: Option<Arc<evalpool::EvalPool>>,
    /// How long the round may take from its start. When it passes, the requests in flight are
    /// cancelled and they and the ones not yet sent become `deadline` errors; what finished is
    /// kept and the round is returned like any other (status `deadline`).
    pub deadline: Option<std::time::Duration>,
}

/// Runs one round against `client` with no deadline. See [`run_round_within`].
pub async fn run_round(
    client: &dyn ModelClient,
    probes: &[Arc<Probe>],
    options: &RoundOptions,
    evaluate: &Evaluate<'_>,
    clock: &dyn Clock,
) -> RoundOutcome {
    let limits = RoundLimits::default();
    run_round_within(client, probes, options, &limits, evaluate, clock).await
}

/// Runs one round against `client`. Never fails as a whole: each request's failure is recorded
/// in its sample as an infrastructure error. A server that cannot be reached (see
/// [`breaker::Breaker`]) costs one request: the rest fail fast with the same error.
pub async fn run_round_within(
    client: &dyn ModelClient,
    probes: &[Arc<Probe>],
    options: &RoundOptions,
    limits: &RoundLimits,
    evaluate: &Evaluate<'_>,
    clock: &dyn Clock,
) -> RoundOutcome {
    let started_at_ms = clock.now_ms();
    let deadline = limits.deadline.map(|d| tokio::time::Instant::now() + d);
    let breaker = breaker::Breaker::new(&options.target);
    let items = plan(probes, options.samples_override);
    let Some(fingerprint) = before(deadline, client.fingerprint()).await else {
        // Not even the fingerprint came back in time: no probe was sent.
        let cut_ms = clock.now_ms();
        let text = deadline_text(limits);
        let hung =
            |sent| breaker::fingerprint_hung(&options.target, &text, sent, started_at_ms, cut_ms);
        let error = hung(true);
        let samples = items
            .iter()
            .map(|item| breaker::cut_sample(&options.target, item, hung(false), cut_ms))
            .collect();
        return RoundOutcome {
            fingerprint: Err(error),
            started_at_ms,
            ended_at_ms: cut_ms,
            samples,
            cut: true,
        };
    };
    if let Err(e) = &fingerprint {
        breaker.observe(e);
    }
    let round = Round {
        client,
        options,
        limits,
        evaluate,
        clock,
        breaker,
    };
    // When each request was sent (-1: not yet), for the ones the deadline cuts.
    let sent_at: Vec<AtomicI64> = items.iter().map(|_| AtomicI64::new(-1)).collect();
    let mut done: Vec<Option<Sample>> = vec![None; items.len()];
    {
        // Unordered, so a slow request never holds a free slot idle behind it; plan order is
        // restored by index.
        let mut requests = stream::iter(items.iter().enumerate().map(|(i, item)| {
            let (round, sent) = (&round, &sent_at[i]);
            async move { (i, round.sample(item, sent).await) }
        }))
        .buffer_unordered(options.concurrency.max(1));
        while let Some(Some((i, sample))) = before(deadline, requests.next()).await {
            done[i] = Some(sample);
        }
    }
    let cut = done.iter().any(Option::is_none);
    let ended_at_ms = clock.now_ms();
    let text = deadline_text(limits);
    let samples = done
        .into_iter()
        .zip(&items)
        .zip(&sent_at)
        .map(|((s, item), sent)| {
            s.unwrap_or_else(|| {
                let sent = Some(sent.load(Relaxed)).filter(|t| *t >= 0);
                breaker::deadline_sample(&options.target, item, &text, sent, ended_at_ms)
            })
        })
        .collect();
    RoundOutcome {
        fingerprint,
        started_at_ms,
        ended_at_ms,
        samples,
        cut,
    }
}

/// What every request of a round shares.
struct Round<'a> {
    client: &'a dyn ModelClient,
    options: &'a RoundOptions,
    limits: &'a RoundLimits,
    evaluate: &'a Evaluate<'a>,
    clock: &'a dyn Clock,
    breaker: breaker::Breaker,
}

impl Round<'_> {
    /// Sends one request (unless the breaker has tripped) and evaluates the answer; `sent`
    /// records when it went out.
    async fn sample(&self, item: &PlanItem, sent: &AtomicI64) -> Sample {
        let (options, at) = (self.options, self.clock.now_ms());
        let result = match self.breaker.fast_fail() {
            Some(e) => Err(e),
            None => {
                sent.store(at, Relaxed);
                let request = request_for(item, options.stream);
                let p = &item.probe;
                let result = crate::provider::trace::in_request(
                    &p.suite,
                    &p.id,
                    item.index,
                    self.client.complete(&request),
                )
                .await;
                if let Err(e) = &result {
                    self.breaker.observe(e);
                }
                result
            }
        };
        match (result, self.limits.checks.as_ref()) {
            (Ok(completion), Some(pool)) => {
                let completion = Arc::new(completion);
                let judged = pool.evaluate(&item.probe, &completion).await;
                let completion = Arc::try_unwrap(completion).unwrap_or_else(|c| (*c).clone());
                answered_sample(
                    &options.target,
                    item,
                    at,
                    completion,
                    judged,
                    options.keep_text,
                )
            }
            (result, _) => to_sample(
                &options.target,
                item,
                at,
                result,
                self.evaluate,
                options.keep_text,
            ),
        }
    }
}

/// Awaits `f` until `deadline` (forever without one); `None` when the deadline came first.
async fn before<T>(
    deadline: Option<tokio::time::Instant>,
    f: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        // Checked first: a future that is always ready would otherwise outrun the timer.
        Some(d) if tokio::time::Instant::now() >= d => None,
        Some(d) => tokio::time::timeout_at(d, f).await.ok(),
        None => Some(f.await),
    }
}

fn deadline_text(limits: &RoundLimits) -> String {
    limits
        .deadline
        .map(|d| format!("{}s", d.as_secs_f64()))
        .unwrap_or_default()
}

/// Builds the stored sample from a request's result, evaluated inline.
pub fn to_sample(
    target: &str,
    item: &PlanItem,
    started_at_ms: i64,
    result: Result<Completion, SampleError>,
    evaluate: &Evaluate<'_>,
    keep_text: bool,
) -> Sample {
    match result {
        Ok(completion) => {
            let measured = evaluate(&item.probe, &completion);
            answered_sample(
                target,
                item,
                started_at_ms,
                completion,
                Ok(measured),
                keep_text,
            )
        }
        Err(error) => {
            let mut sample = item.pending_sample(target, started_at_ms);
            sample.latency_ms = error.latency_ms;
            // 0 attempts: never sent (see `breaker`).
            sample.attempts = error.attempts;
            sample.error = Some(error);
            sample
        }
    }
}

/// The sample of an answer: its measurements, or why it was not judged (a `check_timeout`
/// error that keeps the answer's timing and text).
pub fn answered_sample(
    target: &str,
    item: &PlanItem,
    started_at_ms: i64,
    completion: Completion,
    judged: Result<Measurements, SampleError>,
    keep_text: bool,
) -> Sample {
    let mut sample = item.pending_sample(target, started_at_ms);
    sample.latency_ms = completion.latency_ms;
    sample.ttft_ms = completion.ttft_ms;
    sample.attempts = completion.attempts.max(1);
    sample.finish_reason = completion.finish_reason;
    sample.input_tokens = completion.input_tokens;
    sample.response_model = completion.response_model;
    sample.system_fingerprint = completion.system_fingerprint;
    match judged {
        Ok(m) => sample.measurements = Some(m),
        Err(mut e) => {
            e.latency_ms = completion.latency_ms;
            e.attempts = sample.attempts;
            sample.error = Some(e);
        }
    }
    if keep_text {
        sample.text = Some(completion.text);
    }
    sample
}

/// Error kinds counted over samples, for summaries and logs.
pub fn errors_by_kind(samples: &[Sample]) -> Vec<(ErrorKind, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for e in samples.iter().filter_map(|s| s.error.as_ref()) {
        *counts.entry(e.kind).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

/// A probe for the runner's unit tests: prompt `prompt {id}`, suite `s`, hash `hash-{id}`.
#[cfg(test)]
pub(crate) fn test_probe(id: &str, samples: u32, params: crate::probe::GenParams) -> Arc<Probe> {
    use crate::probe::{Expect, Location, ProbeInput};
    Arc::new(Probe {
        id: id.into(),
        suite: "s".into(),
        description: None,
        input: ProbeInput::Prompt(format!("prompt {id}")),
        params,
        samples,
        tags: vec![],
        expect: Expect::default(),
        location: Location::default(),
        hash: format!("hash-{id}"),
    })
}

#[cfg(test)]
mod tests;
