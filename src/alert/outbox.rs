//! Durable delivery: idempotency keys, retry schedule, and one delivery worker per sink.
//!
//! The daemon writes every notification to the store's outbox (one row per sink) before it is
//! sent, then hands the row to that sink's worker. A worker delivers its rows in order, retrying
//! failures with exponential backoff and deterministic jitter, and reports every attempt back
//! over a channel; the daemon records the outcome in the store. Each sink has its own worker and
//! queue, so a sink that is down delays only its own notifications, never probing or another
//! sink. Rows still pending at shutdown are handed to the workers again at the next start; the
//! idempotency key travels with the notification so a receiver can drop a repeat.

use super::{AlertSink, Notification, SinkError};
use crate::rng::Rng;
use crate::util::hex;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A stable key for one notification: the same notification always hashes to the same key,
/// distinct notifications (another target, metric, transition, incident or time) never collide
/// in practice. 32 hex characters (128 bits of SHA-256).
pub fn idempotency_key(n: &Notification) -> String {
    let mut h = Sha256::new();
    for part in [
        n.key.target.as_str(),
        n.key.metric.as_str(),
        n.kind.as_str(),
        n.incident.as_str(),
        &n.at_ms.to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex(&h.finalize()[..16])
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// Attempts before a notification is given up (`expired`).
    pub max_attempts: u32,
    /// Longest wait for one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 1 s, 2 s, 4 s … capped at 10 min; 60 attempts ≈ 9 hours of outage.
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(600),
            max_attempts: 60,
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `initial · 2^(attempt−1)`,
    /// capped at `max`, scaled by a jitter factor uniform in [0.5, 1) so that many daemons
    /// recovering together do not retry in lockstep.
    pub fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(40);
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(31))
            .min(self.max);
        base.mul_f64(0.5 + 0.5 * rng.f64())
    }
}

/// One outbox row handed to a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub key: String,
    pub notification: Notification,
    /// Attempts already made (in earlier lives of the daemon too).
    pub attempts: u32,
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; will be retried.
    Failed,
    /// Failed for the last time; given up.
    Expired,
    /// Refused by the receiver (a 4xx other than 408 and 429); not retried.
    Rejected,
    /// Not sent: the sink waits out the receiver's rate limit. Retried when it ends; not
    /// counted as an attempt.
    Deferred,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Rejected => "rejected",
            Outcome::Deferred => "deferred",
        }
    }
}

/// A worker's report of one attempt.
#[derive(Debug, Clone)]
pub struct Report {
    pub sink: String,
    pub id: i64,
    pub outcome: Outcome,
    pub attempts: u32,
    pub error: Option<String>,
}

/// Starts the delivery worker of one sink. Jobs go in through the returned sender; every attempt
/// comes back on `reports`. The worker ends when the sender is dropped and its queue is empty
/// (or at once, when `reports` is closed).
pub fn spawn_worker(
    sink: Arc<dyn AlertSink>,
    policy: RetryPolicy,
    seed: u64,
    reports: mpsc::UnboundedSender<Report>,
) -> mpsc::UnboundedSender<Job> {
    spawn_worker_with_handle(sink, policy, seed, reports).0
}

/// [`spawn_worker`], also returning the task so that the worker can be stopped at once (a
/// reload replacing the sink): aborting it abandons the attempt in flight, whose row stays
/// pending.
pub fn spawn_worker_with_handle(
    sink: Arc<dyn AlertSink>,
    policy: RetryPolicy,
    seed: u64,
    reports: mpsc::UnboundedSender<Report>,
) -> (mpsc::UnboundedSender<Job>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(worker(sink, policy, seed, rx, reports));
    (tx, handle)
}

async fn worker(
    sink: Arc<dyn AlertSink>,
    policy: RetryPolicy,
    seed: u64,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let name = sink.name().to_string();
    let mut rng = Rng::from_parts(&[seed, crate::rng::hash_str(&name)]);
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut open = true;
    loop {
        if queue.is_empty() {
            if !open {
                return;
            }
            match jobs.recv().await {
                Some(j) => queue.push_back(j),
                None => return,
            }
        }
        while let Ok(j) = jobs.try_recv() {
            queue.push_back(j);
        }
        let Some(job) = queue.front_mut() else {
            continue;
        };
        let result = match tokio::time::timeout(
            policy.timeout,
            sink.deliver_keyed(&job.key, &job.notification),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SinkError::transient(
                name.clone(),
                job.notification.incident.clone(),
                format!("no answer within {:?}", policy.timeout),
            )),
        };
        let deferred = matches!(&result, Err(e) if e.deferred);
        if !deferred {
            job.attempts += 1;
        }
        let mut retry_after = None;
        let (outcome, error) = match result {
            Ok(()) => (Outcome::Delivered, None),
            Err(e) if e.permanent => (Outcome::Rejected, Some(e.to_string())),
            Err(e) if e.deferred => {
                retry_after = e.retry_after;
                (Outcome::Deferred, Some(e.to_string()))
            }
            Err(e) if job.attempts >= policy.max_attempts => {
                (Outcome::Expired, Some(e.to_string()))
            }
            Err(e) => {
                retry_after = e.retry_after;
                (Outcome::Failed, Some(e.to_string()))
            }
        };
        let report = Report {
            sink: name.clone(),
            id: job.id,
            outcome,
            attempts: job.attempts,
            error,
        };
        if reports.send(report).is_err() {
            return;
        }
        if matches!(outcome, Outcome::Failed | Outcome::Deferred) {
            // The receiver's Retry-After is honoured, up to the longest backoff.
            let wait = policy
                .backoff(job.attempts, &mut rng)
                .max(retry_after.unwrap_or_default().min(policy.max));
            tracing::debug!(sink = %name, attempts = job.attempts, ?wait, "delivery failed; retrying later");
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            // Keep accepting jobs while waiting, so the sender never backs up.
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    j = jobs.recv(), if open => match j {
                        Some(j) => queue.push_back(j),
                        None => open = false,
                    },
                }
            }
        } else {
            queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, NotificationKind, Severity, SinkFuture};
    use std::sync::Mutex;

    fn n(kind: NotificationKind, at: i64) -> Notification {
        Notification {
            kind,
            key: AlertKey::new("t", "refusal_rate"),
            severity: Severity::Warning,
            incident: "t/refusal_rate#1".into(),
            at_ms: at,
            evidence: None,
            muted: false,
        }
    }

    #[test]
    fn keys_are_stable_and_distinguish_notifications() {
        let a = idempotency_key(&n(NotificationKind::Firing, 1));
        assert_eq!(a, idempotency_key(&n(NotificationKind::Firing, 1)));
        assert_eq!(a.len(), 32);
        assert_ne!(a, idempotency_key(&n(NotificationKind::Resolved, 1)));
        assert_ne!(a, idempotency_key(&n(NotificationKind::Firing, 2)));
        let mut other = n(NotificationKind::Firing, 1);
        other.key.metric = "empty_rate".into();
        assert_ne!(a, idempotency_key(&other));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 10,
            timeout: Duration::from_secs(1),
        };
        let mut rng = Rng::new(7);
        for attempt in 1..=12u32 {
            let d = p.backoff(attempt, &mut rng);
            let base = Duration::from_secs(1u64 << (attempt - 1).min(20)).min(p.max);
            assert!(d >= base / 2 && d < base, "attempt {attempt}: {d:?}");
        }
        // Deterministic for a seed.
        let a: Vec<_> = (1..5).map(|i| p.backoff(i, &mut Rng::new(1))).collect();
        let b: Vec<_> = (1..5).map(|i| p.backoff(i, &mut Rng::new(1))).collect();
        assert_eq!(a, b);
        assert!(p.backoff(u32::MAX, &mut rng) <= p.max);
    }

    /// Fails its first `fail` deliveries, then records.
    struct Flaky {
        fail: Mutex<u32>,
        got: Mutex<Vec<String>>,
    }

    impl AlertSink for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn deliver<'a>(&'a self, n: &'a Notification) -> SinkFuture<'a> {
            Box::pin(async move {
                let mut f = self.fail.lock().unwrap();
                if *f > 0 {
                    *f -= 1;
                    return Err(SinkError::transient("flaky", n.incident.clone(), "down"));
                }
                self.got.lock().unwrap().push(n.incident.clone());
                Ok(())
            })
        }
    }

    /// Defers its first `defer` deliveries (a rate limit of `wait`), then records.
    struct Limited {
        defer: Mutex<u32>,
        got: Mutex<Vec<(String, tokio::time::Instant)>>,
    }

    impl AlertSink for Limited {
        fn name(&self) -> &str {
            "limited"
        }
        fn deliver<'a>(&'a self, n: &'a Notification) -> SinkFuture<'a> {
            Box::pin(async move {
                let mut d = self.defer.lock().unwrap();
                if *d > 0 {
                    *d -= 1;
                    return Err(SinkError::deferred(
                        "limited",
                        n.incident.clone(),
                        "rate limited",
                        Duration::from_secs(30),
                    ));
                }
                let now = tokio::time::Instant::now();
                self.got.lock().unwrap().push((n.incident.clone(), now));
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deferrals_wait_out_the_limit_and_never_use_up_attempts() {
        let sink = Arc::new(Limited {
            defer: Mutex::new(20),
            got: Mutex::new(Vec::new()),
        });
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(600),
            max_attempts: 3,
            timeout: Duration::from_secs(1),
        };
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let jobs = spawn_worker(sink.clone(), policy, 1, rtx);
        let start = tokio::time::Instant::now();
        let note = n(NotificationKind::Firing, 1);
        jobs.send(Job {
            id: 1,
            key: idempotency_key(&note),
            notification: note,
            attempts: 0,
        })
        .unwrap();
        drop(jobs);
        let mut reports = Vec::new();
        while let Some(r) = rrx.recv().await {
            reports.push((r.outcome, r.attempts));
        }
        // 20 deferrals (more than max_attempts), each 30 s apart, then one delivery.
        assert_eq!(reports.len(), 21);
        assert!(reports[..20].iter().all(|r| *r == (Outcome::Deferred, 0)));
        assert_eq!(reports[20], (Outcome::Delivered, 1));
        let got = sink.got.lock().unwrap();
        assert_eq!(got.len(), 1, "delivered once");
        assert!(got[0].1 - start >= Duration::from_secs(20 * 30));
    }

    #[tokio::test(start_paused = true)]
    async fn worker_retries_in_order_until_delivered_and_expires_after_the_last_attempt() {
        let sink = Arc::new(Flaky {
            fail: Mutex::new(3),
            got: Mutex::new(Vec::new()),
        });
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: 5,
            timeout: Duration::from_secs(1),
        };
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let jobs = spawn_worker(sink.clone(), policy, 1, rtx);
        for (i, at) in [(1, 10), (2, 20)] {
            let mut note = n(NotificationKind::Firing, at);
            note.incident = format!("t/refusal_rate#{i}");
            jobs.send(Job {
                id: i,
                key: idempotency_key(&note),
                notification: note,
                attempts: 0,
            })
            .unwrap();
        }
        drop(jobs);
        let mut reports = Vec::new();
        while let Some(r) = rrx.recv().await {
            reports.push((r.id, r.outcome, r.attempts));
        }
        assert_eq!(
            reports,
            vec![
                (1, Outcome::Failed, 1),
                (1, Outcome::Failed, 2),
                (1, Outcome::Failed, 3),
                (1, Outcome::Delivered, 4),
                (2, Outcome::Delivered, 1),
            ]
        );
        assert_eq!(
            *sink.got.lock().unwrap(),
            vec!["t/refusal_rate#1", "t/refusal_rate#2"]
        );

        // A sink that never recovers: the job expires after max_attempts.
        let dead = Arc::new(Flaky {
            fail: Mutex::new(u32::MAX),
            got: Mutex::new(Vec::new()),
        });
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let jobs = spawn_worker(dead, policy, 1, rtx);
        let note = n(NotificationKind::Firing, 1);
        jobs.send(Job {
            id: 9,
            key: idempotency_key(&note),
            notification: note,
            attempts: 3,
        })
        .unwrap();
        drop(jobs);
        let mut last = None;
        while let Some(r) = rrx.recv().await {
            last = Some((r.outcome, r.attempts));
        }
        assert_eq!(last, Some((Outcome::Expired, 5)));
    }
}
