//! Evaluation off the async scheduler: checks run on blocking-pool threads, at most a few at
//! once, each sample within a wall-clock budget.
//!
//! A check can be costly in ways no answer size cap prevents (a JSON-schema `pattern` with a
//! backreference against a large answer backtracks for seconds). Run inline, it would stall
//! every round sharing the thread and the watchdog with it. Here each evaluation waits for one
//! of a few permits, runs on a blocking-pool thread, and the round waits for it at most `budget`:
//! past that the sample becomes a `check_timeout` error (the model answered, the answer was not
//! judged). A runaway thread cannot be stopped; it keeps its permit until it ends, so at most
//! 2–4 checks burn CPU at once in the whole process, and a round checks one answer at a time
//! and skips checking while its runaway still runs (see [`EvalPool::evaluate`]), so one
//! hostile target holds at most one thread and the others keep the rest.

use crate::probe::Probe;
use crate::sample::{Completion, ErrorKind, Measurements, SampleError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Evaluation that can move to another thread.
pub type SharedEvaluate = dyn Fn(&Probe, &Completion) -> Measurements + Send + Sync + 'static;

/// How long one sample's checks may run by default.
pub const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// Threads checking at once in the whole process: the CPU a hostile answer can take.
fn shared_permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            Arc::new(Semaphore::new(cores.clamp(2, 4)))
        })
        .clone()
}

/// The evaluation of one round: shared permits, the budget, and the probes whose check ran out
/// of budget earlier in the round.
pub struct EvalPool {
    evaluate: Arc<SharedEvaluate>,
    permits: Arc<Semaphore>,
    budget: Duration,
    /// One check of the round at a time, so a round holds at most one thread.
    turn: Semaphore,
    /// The round's last check thread is still running (after its budget when a new check finds
    /// it so).
    running: Arc<AtomicBool>,
    timed_out: Mutex<HashSet<String>>,
}

impl EvalPool {
    /// A pool over the process-wide permits.
    pub fn new(evaluate: Arc<SharedEvaluate>, budget: Duration) -> EvalPool {
        EvalPool::with_permits(evaluate, budget, shared_permits())
    }

    pub fn with_permits(
        evaluate: Arc<SharedEvaluate>,
        budget: Duration,
        permits: Arc<Semaphore>,
    ) -> EvalPool {
        EvalPool {
            evaluate,
            permits,
            budget,
            turn: Semaphore::new(1),
            running: Arc::new(AtomicBool::new(false)),
            timed_out: Mutex::new(HashSet::new()),
        }
    }

    /// Measures `completion` on a pool thread, or says why it was not judged: past the budget;
    /// an earlier sample of the same probe in this round was (its answers are likely just as
    /// costly); or the round's previous check still runs past its budget (so one round never
    /// holds more than one thread, and other targets keep theirs).
    pub async fn evaluate(
        &self,
        probe: &Arc<Probe>,
        completion: &Arc<Completion>,
    ) -> Result<Measurements, SampleError> {
        let Ok(_turn) = self.turn.acquire().await else {
            return Err(check_timeout("the check pool is closed".into()));
        };
        if self.gave_up_on(&probe.hash) {
            return Err(check_timeout(format!(
                "{}: not checked: an earlier answer to this probe in the round ran past the \
                 check budget ({})",
                probe.id,
                secs(self.budget)
            )));
        }
        if self.running.load(Ordering::Acquire) {
            return Err(check_timeout(format!(
                "{}: not checked: a check of an earlier answer in the round still runs past \
                 the check budget ({})",
                probe.id,
                secs(self.budget)
            )));
        }
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Err(check_timeout("the check pool is closed".into()));
        };
        let (evaluate, p, c) = (self.evaluate.clone(), probe.clone(), completion.clone());
        let running = self.running.clone();
        running.store(true, Ordering::Release);
        // A blocking-pool thread, which also keeps paused test clocks from running ahead while
        // it works.
        let handle = tokio::task::spawn_blocking(move || {
            let m = evaluate(&p, &c);
            running.store(false, Ordering::Release);
            drop(permit);
            m
        });
        match tokio::time::timeout(self.budget, handle).await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(check_timeout(format!(
                "{}: the check failed without a result (it panicked)",
                probe.id
            ))),
            Err(_) => {
                if let Ok(mut t) = self.timed_out.lock() {
                    t.insert(probe.hash.clone());
                }
                tracing::warn!(
                    probe = %probe.id,
                    bytes = completion.text.len(),
                    budget = %secs(self.budget),
                    "checking an answer ran past its budget; the sample is check_timeout"
                );
                Err(check_timeout(format!(
                    "{}: checking the answer ({} bytes) ran past the check budget ({}); \
                     the answer is not judged. A costly pattern in the probe's checks \
                     (e.g. a backreference) against a long answer does this",
                    probe.id,
                    completion.text.len(),
                    secs(self.budget)
                )))
            }
        }
    }

    fn gave_up_on(&self, hash: &str) -> bool {
        self.timed_out.lock().is_ok_and(|t| t.contains(hash))
    }
}

fn check_timeout(message: String) -> SampleError {
    SampleError::new(ErrorKind::CheckTimeout, message)
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::GenParams;
    use std::sync::mpsc;

    fn probe(id: &str) -> Arc<Probe> {
        crate::runner::test_probe(id, 1, GenParams::default())
    }

    fn answer(text: &str) -> Arc<Completion> {
        Arc::new(Completion {
            text: text.into(),
            ..Completion::default()
        })
    }

    /// Checks answers "hang" until the test releases them; others measure their length.
    fn pool(release: mpsc::Receiver<()>, permits: usize) -> EvalPool {
        let release = Mutex::new(release);
        let evaluate: Arc<SharedEvaluate> = Arc::new(move |_p: &Probe, c: &Completion| {
            if c.text == "hang" {
                let _ = release.lock().unwrap().recv();
            }
            Measurements {
                chars: c.text.len() as u32,
                ..Measurements::default()
            }
        });
        EvalPool::with_permits(
            evaluate,
            Duration::from_millis(50),
            Arc::new(Semaphore::new(permits)),
        )
    }

    #[tokio::test]
    async fn a_runaway_check_times_out_and_the_round_stops_feeding_it() {
        let (release, rx) = mpsc::channel();
        let pool = pool(rx, 2);
        let (a, b) = (probe("a"), probe("b"));
        assert_eq!(pool.evaluate(&a, &answer("fine")).await.unwrap().chars, 4);

        let e = pool.evaluate(&a, &answer("hang")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::CheckTimeout);
        assert!(
            e.message.contains("ran past the check budget (0.05s)"),
            "{e}"
        );
        // The same probe again: not checked at all.
        let e = pool.evaluate(&a, &answer("fine")).await.unwrap_err();
        assert!(e.message.contains("an earlier answer to this probe"), "{e}");
        // Another probe while the runaway still holds its thread: not checked either.
        let e = pool.evaluate(&b, &answer("fine")).await.unwrap_err();
        assert!(
            e.message.contains("still runs past the check budget"),
            "{e}"
        );
        // Once the runaway ends, the round's other probes are checked again.
        release.send(()).unwrap();
        for _ in 0..200 {
            if !pool.running.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.evaluate(&b, &answer("fine")).await.unwrap().chars, 4);
    }

    #[tokio::test]
    async fn a_runaway_keeps_its_permit_so_cpu_stays_bounded() {
        let (release, rx) = mpsc::channel();
        let permits = Arc::new(Semaphore::new(2));
        let evaluate = pool(rx, 2).evaluate.clone();
        let hostile =
            EvalPool::with_permits(evaluate.clone(), Duration::from_millis(50), permits.clone());
        let other = EvalPool::with_permits(evaluate, Duration::from_millis(50), permits.clone());
        assert!(
            hostile
                .evaluate(&probe("a"), &answer("hang"))
                .await
                .is_err()
        );
        // One of two threads is taken by the runaway; the other target still checks.
        assert_eq!(permits.available_permits(), 1);
        assert_eq!(
            other
                .evaluate(&probe("x"), &answer("ok"))
                .await
                .unwrap()
                .chars,
            2
        );
        release.send(()).unwrap();
        for _ in 0..200 {
            if permits.available_permits() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(permits.available_permits(), 2);
    }
}
