//! Executes one round: every probe of a target sampled `samples` times, requests interleaved
//! across probes and bounded by a concurrency limit, each response evaluated into a
//! [`Sample`]. No storage and no printing here: the caller decides what to do with the round.

pub mod paired;
pub mod recording;
pub mod setup;

use crate::probe::Probe;
use crate::provider::{CompletionRequest, Fingerprint, ModelClient};
use crate::sample::{Completion, ErrorKind, Measurements, Sample, SampleError};
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;

pub use crate::time::{Clock, SystemClock};

/// Turns a successful response into measurements (the `eval` module, or a fake in tests).
pub type Evaluate<'a> = dyn Fn(&Probe, &Completion) -> Measurements + Send + Sync + 'a;

/// One request of a round: a probe and the index of the sample.
#[derive(Debug, Clone)]
pub struct PlanItem {
    pub probe: Arc<Probe>,
    pub index: u32,
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
    params.seed = params.seed.map(|s| s.wrapping_add(item.index as u64));
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
    /// Stopped early (shutdown, round deadline).
    Cancelled,
}

impl RoundStatus {
    pub const ALL: [RoundStatus; 4] = [
        RoundStatus::Running,
        RoundStatus::Completed,
        RoundStatus::Failed,
        RoundStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoundStatus::Running => "running",
            RoundStatus::Completed => "completed",
            RoundStatus::Failed => "failed",
            RoundStatus::Cancelled => "cancelled",
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

    /// How the round ended: `Completed` when it measured something, `Failed` when every
    /// request failed.
    pub fn status(&self) -> RoundStatus {
        if self.measured() {
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

/// Runs one round against `client`. Never fails as a whole: each request's failure is recorded
/// in its sample as an infrastructure error.
pub async fn run_round(
    client: &dyn ModelClient,
    probes: &[Arc<Probe>],
    options: &RoundOptions,
    evaluate: &Evaluate<'_>,
    clock: &dyn Clock,
) -> RoundOutcome {
    let started_at_ms = clock.now_ms();
    let fingerprint = client.fingerprint().await;
    let items = plan(probes, options.samples_override);
    let concurrency = options.concurrency.max(1);
    // Unordered, so a slow request never holds a free slot idle behind it; plan order is
    // restored afterwards.
    let mut done: Vec<(usize, Sample)> =
        stream::iter(items.iter().enumerate().map(|(i, item)| async move {
            let request = request_for(item, options.stream);
            let at = clock.now_ms();
            let result = client.complete(&request).await;
            let sample = to_sample(
                &options.target,
                item,
                at,
                result,
                evaluate,
                options.keep_text,
            );
            (i, sample)
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    done.sort_unstable_by_key(|(i, _)| *i);
    let samples: Vec<Sample> = done.into_iter().map(|(_, s)| s).collect();
    RoundOutcome {
        fingerprint,
        started_at_ms,
        ended_at_ms: clock.now_ms(),
        samples,
    }
}

/// Builds the stored sample from a request's result.
pub fn to_sample(
    target: &str,
    item: &PlanItem,
    started_at_ms: i64,
    result: Result<Completion, SampleError>,
    evaluate: &Evaluate<'_>,
    keep_text: bool,
) -> Sample {
    let probe = &item.probe;
    let mut sample = Sample::pending(
        target,
        &probe.suite,
        &probe.id,
        &probe.hash,
        item.index,
        started_at_ms,
    );
    match result {
        Ok(completion) => {
            sample.measurements = Some(evaluate(probe, &completion));
            sample.latency_ms = completion.latency_ms;
            sample.ttft_ms = completion.ttft_ms;
            sample.attempts = completion.attempts.max(1);
            sample.finish_reason = completion.finish_reason;
            sample.input_tokens = completion.input_tokens;
            sample.response_model = completion.response_model;
            sample.system_fingerprint = completion.system_fingerprint;
            if keep_text {
                sample.text = Some(completion.text);
            }
        }
        Err(error) => {
            sample.latency_ms = error.latency_ms;
            sample.attempts = error.attempts.max(1);
            sample.error = Some(error);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Expect, GenParams, Location, ProbeInput};
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn probe(id: &str, samples: u32, seed: Option<u64>) -> Arc<Probe> {
        Arc::new(Probe {
            id: id.into(),
            suite: "s".into(),
            description: None,
            input: ProbeInput::Prompt(format!("prompt {id}")),
            params: GenParams {
                seed,
                ..GenParams::default()
            },
            samples,
            tags: vec![],
            expect: Expect::default(),
            location: Location::default(),
            hash: format!("hash-{id}"),
        })
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
        let expected: Vec<(String, u32)> =
            [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("c", 2)]
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
}
