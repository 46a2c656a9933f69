//! Recording: rounds against one target until every probe has the wanted number of samples
//! (baselines, and a candidate compared with a stored baseline).
//!
//! Each round gives every unfinished probe at most its usual per-round sample count, so a
//! recording is made of ordinary rounds (stored as such) and slow drifts spread over all
//! probes. Sample indices continue across rounds (0‥N−1 per probe) and a probe's declared seed
//! advances with them, so no two samples of a recording repeat the same request.

use super::{Clock, Evaluate, RoundOptions, RoundOutcome, run_round};
use crate::probe::Probe;
use crate::provider::{CompletionRequest, Fingerprint, ModelClient};
use crate::sample::{Completion, SampleError};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The probes of the next round: each probe with fewer than `target` samples so far gets
/// `min(its per-round count, what is missing)` samples, its declared seed advanced by what it
/// already has. Empty when every probe is done.
pub fn next_round(probes: &[Arc<Probe>], done: &[u32], target: u32) -> Vec<Arc<Probe>> {
    probes
        .iter()
        .zip(done)
        .filter(|(_, d)| **d < target)
        .map(|(p, &d)| {
            let mut p = Probe::clone(p);
            p.samples = p.samples.max(1).min(target - d);
            p.params.seed = p.params.seed.map(|s| s.wrapping_add(u64::from(d)));
            Arc::new(p)
        })
        .collect()
}

/// What a recording produced.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Every round, samples re-indexed to continue across rounds.
    pub rounds: Vec<RoundOutcome>,
    /// True when it stopped because a whole round failed (the server is unreachable).
    pub aborted: bool,
}

impl Recording {
    /// All samples of all rounds.
    pub fn samples(&self) -> Vec<crate::sample::Sample> {
        self.rounds
            .iter()
            .flat_map(|r| r.samples.iter().cloned())
            .collect()
    }

    /// The fingerprint of the last round that could read one.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.rounds
            .iter()
            .rev()
            .find_map(|r| r.fingerprint.as_ref().ok())
    }
}

/// Counts finished requests for a progress display.
struct Counting<'a> {
    inner: &'a dyn ModelClient,
    done: &'a AtomicUsize,
    on_done: &'a (dyn Fn(usize) + Send + Sync),
}

impl ModelClient for Counting<'_> {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            let r = self.inner.complete(request).await;
            let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
            (self.on_done)(n);
            r
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        self.inner.fingerprint()
    }
}

/// Runs rounds until every probe has `samples` samples (errors included: a failed request is a
/// sample of the server's availability). `on_done(n)` is told after every request how many
/// have finished; `on_round` gets each finished round. Stops early when a round measured
/// nothing at all.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    client: &dyn ModelClient,
    probes: &[Arc<Probe>],
    samples: u32,
    options: &RoundOptions,
    evaluate: &Evaluate<'_>,
    clock: &dyn Clock,
    on_done: &(dyn Fn(usize) + Send + Sync),
    on_round: &mut (dyn FnMut(&RoundOutcome) + Send),
) -> Recording {
    let position: HashMap<(&str, &str), usize> = probes
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.suite.as_str(), p.id.as_str()), i))
        .collect();
    let mut done = vec![0u32; probes.len()];
    let counter = AtomicUsize::new(0);
    let counting = Counting {
        inner: client,
        done: &counter,
        on_done,
    };
    let options = RoundOptions {
        samples_override: None,
        ..options.clone()
    };
    let mut rounds = Vec::new();
    let mut aborted = false;
    loop {
        let round = next_round(probes, &done, samples);
        if round.is_empty() {
            break;
        }
        let mut outcome = run_round(&counting, &round, &options, evaluate, clock).await;
        let before = done.clone();
        for s in &mut outcome.samples {
            if let Some(&i) = position.get(&(s.suite.as_str(), s.probe_id.as_str())) {
                s.index += before[i];
                done[i] += 1;
            }
        }
        on_round(&outcome);
        let measured = outcome.measured();
        rounds.push(outcome);
        if !measured {
            aborted = true;
            break;
        }
    }
    Recording { rounds, aborted }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::GenParams;
    use crate::sample::{ErrorKind, Measurements};
    use std::sync::Mutex;

    fn probe(id: &str, per_round: u32, seed: Option<u64>) -> Arc<Probe> {
        let params = GenParams {
            seed,
            ..GenParams::default()
        };
        crate::runner::test_probe(id, per_round, params)
    }

    /// Echoes the request seed; fails everything when `down`.
    struct Echo {
        down: bool,
        seeds: Mutex<Vec<Option<u64>>>,
    }

    impl ModelClient for Echo {
        fn complete<'a>(
            &'a self,
            request: &'a CompletionRequest,
        ) -> BoxFuture<'a, Result<Completion, SampleError>> {
            Box::pin(async move {
                self.seeds.lock().unwrap().push(request.params.seed);
                if self.down {
                    return Err(SampleError::new(ErrorKind::Connect, "refused"));
                }
                Ok(Completion {
                    text: "ok".into(),
                    attempts: 1,
                    ..Completion::default()
                })
            })
        }

        fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
            Box::pin(async { Ok(Fingerprint::default()) })
        }
    }

    struct Zero;
    impl Clock for Zero {
        fn now_ms(&self) -> i64 {
            0
        }
    }

    fn measure(_: &Probe, _: &Completion) -> Measurements {
        Measurements::default()
    }

    fn options() -> RoundOptions {
        RoundOptions {
            target: "t".into(),
            concurrency: 3,
            stream: false,
            samples_override: Some(99),
            keep_text: false,
        }
    }

    #[test]
    fn next_round_tops_up_and_advances_seeds() {
        let probes = vec![probe("a", 3, Some(10)), probe("b", 5, None)];
        let r = next_round(&probes, &[6, 5], 7);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].samples, r[0].params.seed), (1, Some(16)));
        assert_eq!((r[1].samples, r[1].params.seed), (2, None));
        assert!(next_round(&probes, &[7, 7], 7).is_empty());
        let r = next_round(&probes, &[7, 0], 7);
        assert_eq!((r.len(), r[0].id.as_str()), (1, "b"));
    }

    #[tokio::test]
    async fn rounds_until_every_probe_has_its_samples_with_unique_indices_and_seeds() {
        let echo = Echo {
            down: false,
            seeds: Mutex::new(vec![]),
        };
        let probes = vec![probe("a", 3, Some(100)), probe("b", 4, None)];
        let seen = AtomicUsize::new(0);
        let mut rounds_seen = 0;
        let rec = record(
            &echo,
            &probes,
            10,
            &options(),
            &measure,
            &Zero,
            &|n| {
                seen.fetch_max(n, Ordering::SeqCst);
            },
            &mut |_| rounds_seen += 1,
        )
        .await;
        assert!(!rec.aborted);
        // a: 3+3+3+1, b: 4+4+2 → four rounds.
        assert_eq!((rec.rounds.len(), rounds_seen), (4, 4));
        let all = rec.samples();
        assert_eq!(all.len(), 20);
        assert_eq!(seen.load(Ordering::SeqCst), 20);
        for id in ["a", "b"] {
            let mut idx: Vec<u32> = all
                .iter()
                .filter(|s| s.probe_id == id)
                .map(|s| s.index)
                .collect();
            idx.sort();
            assert_eq!(idx, (0..10).collect::<Vec<_>>(), "probe {id}");
        }
        let mut seeds: Vec<u64> = echo
            .seeds
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect();
        seeds.sort();
        assert_eq!(seeds, (100..110).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_round_that_measured_nothing_stops_the_recording() {
        let echo = Echo {
            down: true,
            seeds: Mutex::new(vec![]),
        };
        let probes = vec![probe("a", 2, None)];
        let rec = record(
            &echo,
            &probes,
            50,
            &options(),
            &measure,
            &Zero,
            &|_| {},
            &mut |_| {},
        )
        .await;
        assert!(rec.aborted);
        assert_eq!(rec.rounds.len(), 1);
        assert_eq!(echo.seeds.lock().unwrap().len(), 2);
    }
}
