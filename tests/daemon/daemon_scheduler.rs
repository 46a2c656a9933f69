//! The scheduler with paused tokio time (no real sleeps) and fake model clients: first round
//! at start, interval plus jitter, per-target and global concurrency limits, the request rate
//! limit and the round deadline.

use futures_util::future::BoxFuture;
use modelwatch::config::{Loaded, Target};
use modelwatch::daemon::{self, Options, state::Shared};
use modelwatch::provider::{CompletionRequest, Fingerprint, ModelClient};
use modelwatch::sample::{Completion, FinishReason, SampleError};
use modelwatch::store::Store;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

#[derive(Default)]
struct Log {
    /// (target, time) of each fingerprint read: one per round.
    rounds: Mutex<Vec<(String, Instant)>>,
    requests: Mutex<Vec<(String, Instant)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// The `seed` of every request, in order.
    seeds: Mutex<Vec<Option<u64>>>,
}

struct Fake {
    target: String,
    latency: Duration,
    log: Arc<Log>,
}

impl ModelClient for Fake {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            self.log.seeds.lock().unwrap().push(request.params.seed);
            let now = self.log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.log.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.log
                .requests
                .lock()
                .unwrap()
                .push((self.target.clone(), Instant::now()));
            tokio::time::sleep(self.latency).await;
            self.log.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(Completion {
                text: "Use kill -9 on the process id.".into(),
                refusal: None,
                finish_reason: Some(FinishReason::Stop),
                output_tokens: Some(8),
                input_tokens: Some(10),
                response_model: None,
                system_fingerprint: None,
                latency_ms: self.latency.as_secs_f64() * 1000.0,
                ttft_ms: None,
                attempts: 1,
            })
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async move {
            self.log
                .rounds
                .lock()
                .unwrap()
                .push((self.target.clone(), Instant::now()));
            Ok(Fingerprint {
                provider: "ollama".into(),
                model: "fake".into(),
                digest: Some("abc".into()),
                details: BTreeMap::new(),
            })
        })
    }
}

fn loaded(
    dir: &std::path::Path,
    targets: &[&str],
    extra: &str,
    tweak: impl Fn(&mut Target),
) -> Loaded {
    // A fixed suite of its own (9 probes), so the timings below do not depend on the starter
    // library's size.
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    let mut suite = String::from("suite = \"core\"\n");
    for i in 0..9 {
        suite.push_str(&format!(
            "\n[[probe]]\nid = \"p{i}\"\nprompt = \"Question {i}?\"\n"
        ));
    }
    std::fs::write(probes.join("core.toml"), suite).unwrap();
    let mut l = crate::sinks_common::fake_targets(dir, &probes, targets, extra);
    for t in &mut l.config.targets {
        tweak(t);
    }
    l
}

/// Runs the daemon for `run_for` of (paused) time with fake clients.
async fn run(loaded: Loaded, latency: Duration, run_for: Duration) -> (Arc<Log>, Arc<Shared>) {
    let log = Arc::new(Log::default());
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let clients_log = log.clone();
    let options = Options {
        clients: Arc::new(move |t: &Target, _| {
            Ok(Arc::new(Fake {
                target: t.name.clone(),
                latency,
                log: clients_log.clone(),
            }) as Arc<dyn ModelClient>)
        }),
        sinks: Vec::new(),
        seed: 5,
        ..Options::default()
    };
    let store = Store::open_in_memory().unwrap();
    let fut = daemon::run(loaded, store, options, shared.clone(), rx, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    });
    let driver = async {
        tokio::time::sleep(run_for).await;
        stop_tx.send(true).unwrap();
    };
    let (r, ()) = tokio::join!(fut, driver);
    r.unwrap();
    (log, shared)
}

#[tokio::test(start_paused = true)]
async fn first_round_at_start_then_every_interval_plus_jitter() {
    let dir = tempfile::tempdir().unwrap();
    let l = loaded(dir.path(), &["a"], "", |t| {
        t.interval = Duration::from_secs(60);
        t.daemon.jitter = Duration::from_secs(10);
    });
    let start = Instant::now();
    let (log, shared) = run(l, Duration::from_millis(10), Duration::from_secs(600)).await;
    let rounds: Vec<Instant> = log.rounds.lock().unwrap().iter().map(|r| r.1).collect();
    assert!(
        rounds[0] - start < Duration::from_secs(1),
        "first round late"
    );
    for w in rounds.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_secs(60) && gap <= Duration::from_secs(71),
            "gap {gap:?}"
        );
    }
    // 600 s at 60–70 s per round: 9 to 11 rounds.
    assert!((9..=11).contains(&rounds.len()), "{} rounds", rounds.len());
    // The jitter actually varies the gaps.
    let gaps: Vec<Duration> = rounds.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().any(|g| *g != gaps[0]));
    assert_eq!(shared.status().targets[0].rounds as usize, rounds.len());
}

#[tokio::test(start_paused = true)]
async fn a_declared_seed_moves_on_every_round_so_no_answer_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = loaded(dir.path(), &["a"], "", |t| {
        t.interval = Duration::from_secs(60);
        t.samples = Some(2);
    });
    // Every probe of the suite declares a seed, as a suite written for replays would.
    for p in &mut l.suites[0].probes {
        p.params.seed = Some(42);
    }
    let (log, shared) = run(l, Duration::from_millis(10), Duration::from_secs(300)).await;
    let rounds = shared.status().targets[0].rounds as usize;
    assert!(rounds >= 4, "{rounds} rounds");
    let seeds = log.seeds.lock().unwrap().clone();
    assert!(seeds.iter().all(Option::is_some), "{seeds:?}");
    // 9 probes × 2 samples a round; each round's seeds are new (its two samples differ by 1).
    let mut distinct: Vec<u64> = seeds.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 2 * rounds, "{seeds:?}");
}

#[tokio::test(start_paused = true)]
async fn global_concurrency_limit_holds_across_targets() {
    let dir = tempfile::tempdir().unwrap();
    let l = loaded(
        dir.path(),
        &["a", "b"],
        "[daemon]\nmax_concurrency = 3\n",
        |t| {
            t.max_concurrency = 8;
        },
    );
    let (log, _) = run(l, Duration::from_secs(1), Duration::from_secs(30)).await;
    assert_eq!(log.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn per_target_concurrency_limit_holds() {
    let dir = tempfile::tempdir().unwrap();
    let l = loaded(dir.path(), &["a"], "", |t| t.max_concurrency = 2);
    let (log, _) = run(l, Duration::from_secs(1), Duration::from_secs(30)).await;
    assert_eq!(log.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn request_rate_limit_spaces_requests() {
    let dir = tempfile::tempdir().unwrap();
    let l = loaded(dir.path(), &["a"], "", |t| {
        t.max_concurrency = 16;
        t.daemon.max_requests_per_second = Some(2.0);
        t.interval = Duration::from_secs(600);
    });
    let (log, _) = run(l, Duration::from_millis(1), Duration::from_secs(60)).await;
    let times: Vec<Instant> = log.requests.lock().unwrap().iter().map(|r| r.1).collect();
    assert!(times.len() >= 9, "{} requests", times.len());
    // Burst of 2, then 2 per second: n requests need at least (n - 2) / 2 seconds.
    let span = *times.last().unwrap() - times[0];
    let floor = Duration::from_secs_f64((times.len() - 2) as f64 / 2.0);
    assert!(
        span >= floor - Duration::from_millis(5),
        "{span:?} < {floor:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_round_past_its_deadline_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let l = loaded(dir.path(), &["a"], "", |t| {
        t.interval = Duration::from_secs(60);
        t.daemon.round_deadline = Duration::from_secs(5);
    });
    let (_, shared) = run(l, Duration::from_secs(100), Duration::from_secs(30)).await;
    let status = shared.status();
    let last = status.targets[0].last_round.as_ref().unwrap();
    assert_eq!(last.status, "deadline");
}

/// A sink that never finishes delivering: it stalls the scheduler loop.
struct Hang;

impl modelwatch::alert::AlertSink for Hang {
    fn name(&self) -> &str {
        "hang"
    }
    fn deliver<'a>(
        &'a self,
        _n: &'a modelwatch::alert::Notification,
    ) -> modelwatch::alert::sink::SinkFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// Answers like [`Fake`], but its first request blocks the thread that polls it for `block`
/// after the latency: a scheduler stuck in synchronous work.
struct Blocking {
    inner: Fake,
    block: Duration,
    blocked: std::sync::atomic::AtomicBool,
}

impl ModelClient for Blocking {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            let out = self.inner.complete(request).await;
            if !self.blocked.swap(true, Ordering::SeqCst) {
                std::thread::sleep(self.block);
            }
            out
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        self.inner.fingerprint()
    }
}

/// Watchdog pings come from the scheduler loop: when the loop is stuck, the pings stop and
/// systemd would restart the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_scheduler_stops_the_watchdog_pings() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let l = loaded(dir.path(), &["a"], "", |t| t.max_concurrency = 16);
    let log = Arc::new(Log::default());
    let clients_log = log.clone();
    let notify_path = sock_path.to_str().unwrap().to_string();
    // The daemon runs on its own thread, so the stall blocks it and not the test.
    std::thread::spawn(move || {
        let (_tx, rx) = mpsc::channel(1);
        let options = Options {
            clients: Arc::new(move |t: &Target, _| {
                Ok(Arc::new(Blocking {
                    inner: Fake {
                        target: t.name.clone(),
                        latency: Duration::from_millis(600),
                        log: clients_log.clone(),
                    },
                    block: Duration::from_secs(4),
                    blocked: Default::default(),
                }) as Arc<dyn ModelClient>)
            }),
            sinks: Vec::new(),
            notifier: daemon::notify::Notifier::with_socket(
                &notify_path,
                Some(Duration::from_millis(300)),
            ),
            ..Options::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(daemon::run(
            l,
            Store::open_in_memory().unwrap(),
            options,
            Arc::new(Shared::default()),
            rx,
            std::future::pending(),
        ));
    });
    let pings = |sock: &UnixDatagram| {
        let mut buf = [0u8; 512];
        let mut n = 0;
        while let Ok(len) = sock.recv(&mut buf) {
            n += usize::from(&buf[..len] == b"WATCHDOG=1");
        }
        n
    };
    // Started (the first ping), then, while the first requests run (600 ms), the loop pings.
    let started = Instant::now();
    while pings(&sock) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no ping at all"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = pings(&sock);
    assert!(early >= 2, "{early} pings while healthy");
    // A request blocks the scheduler's thread: no more pings.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = pings(&sock);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        pings(&sock),
        0,
        "pings continued while the scheduler was stuck"
    );
}

/// A sink that never answers delays only its own notifications: the scheduler keeps running
/// rounds and pinging the watchdog while the alert's delivery hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sink_does_not_stop_the_scheduler() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let l = loaded(dir.path(), &["a"], "", |t| {
        t.max_concurrency = 16;
        t.interval = Duration::from_millis(300);
        t.daemon.jitter = Duration::ZERO;
        t.daemon.round_deadline = Duration::from_millis(300);
        t.daemon.pin = Some(modelwatch::config::Pin {
            model: "sha256:not-served".into(),
            approved_by: None,
            approved_on: None,
            license_reviewed: false,
            license: None,
            license_sha256: None,
        })
    });
    let log = Arc::new(Log::default());
    let clients_log = log.clone();
    let (_tx, rx) = mpsc::channel(1);
    let shared = Arc::new(Shared::default());
    let options = Options {
        clients: Arc::new(move |t: &Target, _| {
            Ok(Arc::new(Fake {
                target: t.name.clone(),
                latency: Duration::from_millis(50),
                log: clients_log.clone(),
            }) as Arc<dyn ModelClient>)
        }),
        sinks: vec![Arc::new(Hang)],
        notifier: daemon::notify::Notifier::with_socket(
            sock_path.to_str().unwrap(),
            Some(Duration::from_millis(300)),
        ),
        ..Options::default()
    };
    let fut = daemon::run(
        l,
        Store::open_in_memory().unwrap(),
        options,
        shared.clone(),
        rx,
        std::future::pending(),
    );
    let driver = async {
        // The unapproved-model alert fires in the first round; its delivery hangs.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let _ = sock.recv(&mut [0u8; 512]);
        let before = log.rounds.lock().unwrap().len();
        let mut buf = [0u8; 512];
        while sock.recv(&mut buf).is_ok() {}
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut pings = 0;
        while let Ok(len) = sock.recv(&mut buf) {
            pings += usize::from(&buf[..len] == b"WATCHDOG=1");
        }
        let after = log.rounds.lock().unwrap().len();
        assert!(pings >= 3, "{pings} pings while a sink hangs");
        assert!(after >= before + 2, "rounds stopped: {before} → {after}");
        let status = shared.status();
        let hang = status.sinks.iter().find(|k| k.name == "hang").unwrap();
        assert_eq!(hang.pending, 1, "{hang:?}");
        assert!(
            status
                .alerts
                .iter()
                .any(|a| a.key.metric == "unapproved_model")
        );
    };
    tokio::select! {
        _ = fut => panic!("the daemon stopped"),
        _ = driver => {}
    }
}
