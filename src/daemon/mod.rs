//! `modelwatch daemon`: rounds on a schedule, swap detection, continuous monitoring, alerts.
//!
//! One scheduler task owns the store, the monitors and the alert states, so none of them
//! needs a lock: rounds run as separate tasks (bounded per target by `max_concurrency`,
//! process-wide by `[daemon] max_concurrency`, and by a per-target token bucket) and hand
//! their outcome back to the scheduler, which stores it, checks the fingerprint (a change is
//! a swap: an info alert and a new monitoring episode), checks the pin, feeds the monitor and
//! steps every alert. The HTTP server reads [`state::Shared`] and sends commands (silences)
//! over a channel. Shutdown is a future passed in: scheduling stops, in-flight rounds get
//! `[daemon] shutdown_grace` to finish, then their requests are cancelled and the store is
//! flushed.
//!
//! Submodules: [`monitor`] (the statistics, pure), [`limit`] (rate and concurrency limits),
//! [`notify`] (systemd notifications), [`state`] (status and metrics).

pub mod checkins;
pub mod limit;
pub mod monitor;
pub mod notify;
pub mod outputs;
pub mod promote;
pub mod state;
pub mod strata;

use crate::alert::{
    self, AlertKey, AlertSink, AlertState, Evidence, MaintenanceWindow, Notification, Observation,
    Policy, Severity, Silence, Status,
};
use crate::baseline::Baseline;
use crate::config::{Loaded, Target};
use crate::drift::Margins;
use crate::eval::{CompiledChecks, Evaluator, RefusalConfig};
use crate::probe::Probe;
use crate::provider::{self, CancelSignal, CancelTrigger, ModelClient};
use crate::rng::Rng;
use crate::runner::{self, Clock, RoundOptions, RoundOutcome, setup};
use crate::sample::Completion;
use crate::store::{FingerprintChange, RoundStatus, Store};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use limit::{LimitedClient, TokenBucket};
use monitor::{MetricSnapshot, MonitorSettings, TargetMonitor};
use notify::Notifier;
use state::{BaselineStatus, PinStatus, RoundSummary, Shared, SinkStatus, TargetStatus};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// Alert metric of the pin check.
pub const UNAPPROVED_MODEL: &str = "unapproved_model";
/// Alert metric of swap notifications.
pub const SWAP: &str = "swap";
/// How long shutdown waits for notifications being delivered (the rest are resumed at the next
/// start).
const DELIVERY_GRACE: Duration = Duration::from_secs(5);
/// How often retention pruning runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How long rounds go unstored after the store could not start a transaction.
const STORE_RETRY: Duration = Duration::from_secs(10);
/// Longest sleep of the scheduler loop (it also pings the watchdog).
const MAX_TICK: Duration = Duration::from_secs(5);

/// Everything that can stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot build the client of target {target}: {source}")]
    Client {
        target: String,
        source: provider::ProviderError,
    },
    #[error("probe {probe}: {message}")]
    Checks { probe: String, message: String },
    #[error("the refusal detector could not be built: {0}")]
    Refusal(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Commands from outside the scheduler (HTTP API, signal handlers).
pub enum Command {
    /// Apply a new, already validated configuration.
    Reload(Box<Loaded>),
    /// Add a silence; the reply carries the stored silence or an error message.
    Silence {
        target: String,
        metric: Option<String>,
        duration: Duration,
        reason: String,
        reply: oneshot::Sender<Result<Silence, String>>,
    },
}

/// Builds the model client of a target; the default talks HTTP, tests may substitute fakes.
pub type ClientFactory = Arc<
    dyn Fn(&Target, CancelSignal) -> Result<Arc<dyn ModelClient>, provider::ProviderError>
        + Send
        + Sync,
>;

/// The HTTP clients of the configuration.
pub fn http_clients() -> ClientFactory {
    Arc::new(|t: &Target, cancel: CancelSignal| {
        provider::build_client(setup::client_config(t, Some(cancel)))
    })
}

/// Told when rounds start and finish (Sentry check-ins, OpenTelemetry export). Called on the
/// scheduler: implementations must not block (queue or spawn the work).
pub trait RoundObserver: Send + Sync {
    fn round_started(&self, target: &Target, started_ms: i64) {
        let _ = (target, started_ms);
    }
    /// `outcome` is `None` for a round cut off by its deadline; `status` is `completed`,
    /// `failed` or `deadline`.
    fn round_finished(
        &self,
        target: &Target,
        started_ms: i64,
        outcome: Option<&RoundOutcome>,
        status: &str,
    ) {
        let _ = (target, started_ms, outcome, status);
    }
    /// After a finished round was stored and its monitor and alerts stepped (also after a
    /// round cut off by its deadline): the target's readings as they are now.
    fn round_assessed(&self, target: &Target, assessment: &Assessment<'_>) {
        let _ = (target, assessment);
    }
    /// Counters for `/metrics`, read at every scrape.
    fn counters(&self) -> Vec<ObserverCounter> {
        Vec::new()
    }
}

/// A target's readings after a round: what `/metrics` shows of it, for the observers.
#[derive(Debug, Clone, Copy)]
pub struct Assessment<'a> {
    /// The monitored metrics of the episode: value, baseline, e-value (the evidence).
    pub metrics: &'a [MetricSnapshot],
    /// The target's alert states (every metric that ever had one).
    pub alerts: &'a [AlertState],
    /// Last-round rates and response-length quantiles.
    pub quality: &'a crate::telemetry::quality::TargetQuality,
}

/// One sample of a counter family an observer keeps (its name ends in `_total`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserverCounter {
    pub family: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: u64,
}

impl ObserverCounter {
    /// One counter per `(outcome, value)` of a family labelled by `outcome`.
    pub fn by_outcome(
        family: &'static str,
        help: &'static str,
        outcomes: &[(&str, &std::sync::atomic::AtomicU64)],
    ) -> Vec<ObserverCounter> {
        outcomes
            .iter()
            .map(|(outcome, v)| ObserverCounter {
                family,
                help,
                labels: vec![("outcome", outcome.to_string())],
                value: v.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// How the daemon runs, beyond its configuration.
pub struct Options {
    pub notifier: Notifier,
    pub sinks: Vec<Arc<dyn AlertSink>>,
    pub clients: ClientFactory,
    /// Seeds the jitter.
    pub seed: u64,
    /// Decision margins (the same defaults as `compare`).
    pub margins: Margins,
    /// How failed alert deliveries are retried.
    pub retry: alert::RetryPolicy,
    /// Told about every round.
    pub observers: Vec<Arc<dyn RoundObserver>>,
    /// Builds the sinks and observers of a configuration: when set, a reload that changes
    /// them (`[alerts.webhook]`, `[alerts.sentry]`, `[telemetry]`, the targets' models)
    /// replaces `sinks` and `observers` without a restart. `None` keeps them as given.
    pub outputs: Option<OutputsFactory>,
}

/// See [`Options::outputs`]; [`outputs::from_config`] is the real one.
pub type OutputsFactory =
    Arc<dyn Fn(&crate::config::Config) -> Result<outputs::Outputs, alert::SinkError> + Send + Sync>;

impl Default for Options {
    fn default() -> Self {
        Options {
            notifier: Notifier::default(),
            sinks: vec![Arc::new(alert::LogSink)],
            clients: http_clients(),
            seed: 0,
            margins: Margins::default(),
            retry: alert::RetryPolicy::default(),
            observers: Vec::new(),
            outputs: None,
        }
    }
}

/// Unix time in ms that follows tokio's clock (so paused-time tests move it too).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_ms: i64,
    base: Instant,
}

impl TokioClock {
    pub fn new() -> TokioClock {
        TokioClock {
            base_ms: runner::SystemClock.now_ms(),
            base: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.base_ms + self.base.elapsed().as_millis() as i64
    }
}

/// A target ready to run: its probes, limited client and limits.
struct Prepared {
    target: Target,
    probes: Vec<Arc<Probe>>,
    client: Arc<dyn ModelClient>,
}

/// Per-target scheduler state that survives reloads.
struct Runtime {
    next_due: Instant,
    running: bool,
    monitor: Option<TargetMonitor>,
    /// Baseline file and the modification time it was loaded at.
    baseline: Option<(PathBuf, Option<SystemTime>, Baseline)>,
    fingerprint: Option<String>,
    episode_started_ms: Option<i64>,
    rounds: u64,
    swaps: u64,
    last_round: Option<RoundSummary>,
    digest: Option<String>,
}

type RoundResult = (String, u64, Option<RoundOutcome>);
/// Rounds in flight. They run inside the scheduler task (the round future borrows its probes
/// and is not provably `Send`), concurrently with each other and with the scheduler loop.
type Rounds = FuturesUnordered<Pin<Box<dyn Future<Output = RoundResult>>>>;

struct Scheduler {
    loaded: Arc<Loaded>,
    evaluator: Arc<Evaluator>,
    checks: Arc<HashMap<String, CompiledChecks>>,
    prepared: BTreeMap<String, Prepared>,
    runtime: BTreeMap<String, Runtime>,
    alerts: BTreeMap<AlertKey, AlertState>,
    store: Store,
    shared: Arc<Shared>,
    options: Options,
    global: Arc<Semaphore>,
    cancel: CancelTrigger,
    cancel_signal: CancelSignal,
    clock: TokioClock,
    rng: Rng,
    /// Generation of the configuration (rounds of an old one are still stored).
    generation: u64,
    sink_status: BTreeMap<String, SinkStatus>,
    /// The outbox worker of each sink, by outbox name.
    workers: Vec<(
        String,
        mpsc::UnboundedSender<alert::outbox::Job>,
        Option<tokio::task::JoinHandle<()>>,
    )>,
    /// Where the workers report (kept to start new workers after a reload).
    report_tx: Option<mpsc::UnboundedSender<alert::outbox::Report>>,
    /// When the running round of each target was launched (for the observers).
    round_starts: HashMap<String, i64>,
    last_prune: Option<Instant>,
    last_ping: Option<Instant>,
    /// After the store could not start a transaction (locked, gone), rounds are not stored
    /// until then: each attempt may wait the whole busy timeout, which must not stall the
    /// scheduler round after round.
    store_retry_at: Option<Instant>,
}

/// Runs the daemon until `shutdown` completes. `commands` carries reloads and silences.
pub async fn run(
    loaded: Loaded,
    store: Store,
    options: Options,
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<Command>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let evaluator = Arc::new(
        Evaluator::new(&RefusalConfig::default())
            .map_err(|e| DaemonError::Refusal(e.to_string()))?,
    );
    let (cancel, cancel_signal) = CancelSignal::pair();
    let clock = TokioClock::new();
    let mut s = Scheduler {
        global: Arc::new(Semaphore::new(
            loaded.config.daemon.max_concurrency as usize,
        )),
        loaded: Arc::new(Loaded {
            config: loaded.config.clone(),
            suites: Vec::new(),
            warnings: Vec::new(),
        }),
        evaluator,
        checks: Arc::new(HashMap::new()),
        prepared: BTreeMap::new(),
        runtime: BTreeMap::new(),
        alerts: BTreeMap::new(),
        store,
        shared,
        rng: Rng::new(options.seed),
        options,
        cancel,
        cancel_signal,
        clock,
        generation: 0,
        sink_status: BTreeMap::new(),
        workers: Vec::new(),
        report_tx: None,
        round_starts: HashMap::new(),
        last_prune: None,
        last_ping: None,
        store_retry_at: None,
    };
    for st in s.store.alert_states()? {
        s.alerts.insert(st.key.clone(), st);
    }
    let (report_tx, mut reports) = mpsc::unbounded_channel();
    s.shared.set_observers(s.options.observers.clone());
    s.start_workers(report_tx.clone());
    s.report_tx = Some(report_tx);
    s.apply(loaded)?;
    s.shared.store_ok.store(true, Ordering::Relaxed);
    s.publish();
    let tick = s
        .options
        .notifier
        .watchdog()
        .map(|w| (w / 3).min(MAX_TICK))
        .unwrap_or(MAX_TICK)
        .max(Duration::from_millis(10));
    s.shared
        .tick_budget_ms
        .store((tick.as_millis() as i64 * 4).max(10_000), Ordering::Relaxed);
    s.options
        .notifier
        .ready(&format!("watching {} target(s)", s.prepared.len()));
    let mut rounds: Rounds = FuturesUnordered::new();
    tokio::pin!(shutdown);
    loop {
        s.tick();
        s.launch_due(&mut rounds);
        let wake = s
            .runtime
            .values()
            .filter(|r| !r.running)
            .map(|r| r.next_due)
            .min()
            .unwrap_or_else(|| Instant::now() + tick)
            .min(Instant::now() + tick);
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some((name, generation, outcome)) = rounds.next(), if !rounds.is_empty() => {
                s.finish_round(&name, generation, outcome).await;
            }
            Some(cmd) = commands.recv() => s.command(cmd, &mut reports).await,
            Some(report) = reports.recv() => {
                s.record_delivery(report);
                while let Ok(r) = reports.try_recv() {
                    s.record_delivery(r);
                }
                s.publish();
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    s.options.notifier.stopping();
    tracing::info!(
        in_flight = rounds.len(),
        "stopping: no new rounds; waiting for rounds in flight"
    );
    let grace = s.loaded.config.daemon.shutdown_grace;
    let deadline = Instant::now() + grace;
    loop {
        match tokio::time::timeout_at(deadline, rounds.next()).await {
            Ok(Some((name, generation, outcome))) => {
                s.finish_round(&name, generation, outcome).await
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    in_flight = rounds.len(),
                    "shutdown grace elapsed: cancelling the requests still in flight"
                );
                s.cancel.cancel();
                // Cancelled requests end quickly; their rounds are stored as far as they got.
                while let Ok(Some((name, generation, outcome))) =
                    tokio::time::timeout(Duration::from_secs(5), rounds.next()).await
                {
                    s.finish_round(&name, generation, outcome).await;
                }
                break;
            }
        }
    }
    // Stop the workers; what they reported so far is recorded, the rest stays pending and is
    // delivered after the next start.
    s.workers.clear();
    s.report_tx = None;
    let deadline = Instant::now() + grace.min(DELIVERY_GRACE);
    while s.sink_status.values().any(|k| k.pending > 0) {
        match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some(r)) => s.record_delivery(r),
            _ => break,
        }
    }
    s.publish();
    drop(s.store);
    tracing::info!("stopped");
    Ok(())
}

impl Scheduler {
    /// Applies a configuration: clients, probes, checks; keeps the runtime of targets that stay.
    fn apply(&mut self, loaded: Loaded) -> Result<(), DaemonError> {
        let mut checks = HashMap::new();
        for suite in &loaded.suites {
            let dir = suite.path.parent().unwrap_or(Path::new("."));
            for p in &suite.probes {
                let compiled =
                    CompiledChecks::compile(&p.expect, dir).map_err(|e| DaemonError::Checks {
                        probe: format!("{}: {}", p.location, p.id),
                        message: e.to_string(),
                    })?;
                checks.insert(p.hash.clone(), compiled);
            }
        }
        // Rounds still running on the previous configuration keep its limit until they end.
        let global = Arc::new(Semaphore::new(
            loaded.config.daemon.max_concurrency as usize,
        ));
        let mut prepared = BTreeMap::new();
        for t in &loaded.config.targets {
            let inner =
                (self.options.clients)(t, self.cancel_signal.clone()).map_err(|source| {
                    DaemonError::Client {
                        target: t.name.clone(),
                        source,
                    }
                })?;
            let bucket = t
                .daemon
                .max_requests_per_second
                .map(|r| Arc::new(TokenBucket::new(r, r.max(1.0))));
            let client: Arc<dyn ModelClient> =
                Arc::new(LimitedClient::new(inner, global.clone(), bucket));
            prepared.insert(
                t.name.clone(),
                Prepared {
                    target: t.clone(),
                    probes: setup::target_probes(&loaded, t, &[]),
                    client,
                },
            );
        }
        let now = Instant::now();
        self.runtime.retain(|name, _| prepared.contains_key(name));
        for name in prepared.keys() {
            self.runtime.entry(name.clone()).or_insert(Runtime {
                next_due: now,
                running: false,
                monitor: None,
                baseline: None,
                fingerprint: None,
                episode_started_ms: None,
                rounds: 0,
                swaps: 0,
                last_round: None,
                digest: None,
            });
        }
        // A changed baseline path or margins: start a new episode.
        for (name, rt) in self.runtime.iter_mut() {
            let want = prepared.get(name).and_then(|p| p.target.baseline.clone());
            if rt.baseline.as_ref().map(|b| &b.0) != want.as_ref() {
                rt.baseline = None;
                rt.monitor = None;
            }
        }
        self.global = global;
        self.checks = Arc::new(checks);
        self.prepared = prepared;
        let kept = &self.prepared;
        self.shared.retain_quality(|t| kept.contains_key(t));
        self.loaded = Arc::new(loaded);
        self.generation += 1;
        self.shared.config_loaded.store(true, Ordering::Relaxed);
        self.shared.reload_ok.store(true, Ordering::Relaxed);
        self.shared
            .reload_at_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let path = self.loaded.config.path.display().to_string();
        self.shared.update_status(|s| s.config = path);
        Ok(())
    }

    async fn command(
        &mut self,
        cmd: Command,
        reports: &mut mpsc::UnboundedReceiver<alert::outbox::Report>,
    ) {
        match cmd {
            Command::Reload(loaded) => {
                // The sender has announced RELOADING=1 (it validated the file first).
                let previous = self.loaded.config.clone();
                match self.apply(*loaded) {
                    Ok(()) => {
                        tracing::info!("configuration reloaded");
                        self.reload_outputs(&previous, reports).await;
                    }
                    Err(e) => {
                        self.shared.reload_ok.store(false, Ordering::Relaxed);
                        tracing::error!(error = %e, "reload failed; keeping the previous configuration");
                    }
                }
                self.publish();
                self.options
                    .notifier
                    .ready(&format!("watching {} target(s)", self.prepared.len()));
            }
            Command::Silence {
                target,
                metric,
                duration,
                reason,
                reply,
            } => {
                let result = if !self.prepared.contains_key(&target) {
                    Err(format!("no target named '{target}'"))
                } else {
                    let now = self.clock.now_ms();
                    let until = now.saturating_add(duration.as_millis() as i64);
                    self.store
                        .add_silence(&target, metric.as_deref(), now, until, &reason)
                        .map_err(|e| e.to_string())
                };
                if let Ok(s) = &result {
                    tracing::info!(target = %s.target, until_ms = s.until_ms, "silence added");
                }
                let _ = reply.send(result);
            }
        }
    }

    /// Scheduler heartbeat: readiness, watchdog, retention.
    fn tick(&mut self) {
        let now = Instant::now();
        self.shared
            .last_tick_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let ping_every = self
            .options
            .notifier
            .watchdog()
            .map(|w| w / 2)
            .unwrap_or(MAX_TICK);
        if self.last_ping.is_none_or(|p| now - p >= ping_every / 2) {
            self.options.notifier.watchdog_ping();
            self.last_ping = Some(now);
        }
        if self.last_prune.is_none_or(|p| now - p >= PRUNE_EVERY) {
            self.last_prune = Some(now);
            let storage = &self.loaded.config.storage;
            let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
            let now_ms = self.clock.now_ms();
            match self.store.prune(
                now_ms,
                ms(storage.raw_text_retention),
                ms(storage.sample_retention),
            ) {
                Ok(stats) => {
                    let _ = self.store.prune_silences(now_ms);
                    // Delivered and expired outbox rows are kept as long as samples.
                    let _ = self
                        .store
                        .prune_outbox(now_ms - ms(storage.sample_retention));
                    if stats.samples + stats.texts > 0 {
                        tracing::info!(
                            texts = stats.texts,
                            samples = stats.samples,
                            rounds = stats.rounds,
                            "retention: pruned old data"
                        );
                    }
                    self.shared.store_ok.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    self.store_error("prune", &e);
                    tracing::error!(error = %e, "retention pruning failed");
                }
            }
        }
    }

    fn launch_due(&mut self, rounds: &mut Rounds) {
        let now = Instant::now();
        for (name, p) in &self.prepared {
            let Some(rt) = self.runtime.get_mut(name) else {
                continue;
            };
            if rt.running || rt.next_due > now {
                continue;
            }
            if p.probes.is_empty() {
                rt.next_due = now + p.target.interval;
                continue;
            }
            rt.running = true;
            let jitter = p.target.daemon.jitter;
            let extra = if jitter.is_zero() {
                Duration::ZERO
            } else {
                jitter.mul_f64(self.rng.f64())
            };
            // The next round is due one interval (plus jitter) after this one starts.
            rt.next_due = now + p.target.interval + extra;
            let client = p.client.clone();
            let probes = p.probes.clone();
            let options = RoundOptions {
                target: name.clone(),
                concurrency: p.target.max_concurrency as usize,
                stream: p.target.stream,
                samples_override: None,
                keep_text: true,
            };
            let deadline = p.target.daemon.round_deadline;
            let started_ms = self.clock.now_ms();
            self.round_starts.insert(name.clone(), started_ms);
            for o in &self.options.observers {
                o.round_started(&p.target, started_ms);
            }
            let evaluator = self.evaluator.clone();
            let checks = self.checks.clone();
            let clock = self.clock;
            let name = name.clone();
            let generation = self.generation;
            rounds.push(Box::pin(async move {
                let evaluate = evaluate_fn(evaluator, checks);
                let outcome = tokio::time::timeout(
                    deadline,
                    runner::run_round(client.as_ref(), &probes, &options, &*evaluate, &clock),
                )
                .await
                .ok();
                (name, generation, outcome)
            }));
        }
    }

    /// Stores a finished round and steps the monitor and the alerts.
    async fn finish_round(&mut self, name: &str, _generation: u64, outcome: Option<RoundOutcome>) {
        let now_ms = self.clock.now_ms();
        let Some(rt) = self.runtime.get_mut(name) else {
            return; // target removed by a reload
        };
        rt.running = false;
        rt.rounds += 1;
        if let Some(p) = self.prepared.get(name) {
            let started = self.round_starts.remove(name).unwrap_or(now_ms);
            let status = match &outcome {
                None => "deadline",
                Some(o) if o.measured() => "completed",
                Some(_) => "failed",
            };
            for o in &self.options.observers {
                o.round_finished(&p.target, started, outcome.as_ref(), status);
            }
        }
        let Some(outcome) = outcome else {
            tracing::warn!(target = name, "round cut off by the round deadline");
            rt.last_round = Some(RoundSummary {
                started_at_ms: now_ms,
                ended_at_ms: now_ms,
                samples: 0,
                errors: 0,
                status: "deadline".into(),
            });
            self.shared.count_round(name, "deadline", &[]);
            let quality = self.record_quality(name, &[]);
            self.assess(name, &quality);
            self.publish();
            return;
        };
        if self.store_retry_at.is_some_and(|t| Instant::now() < t) {
            tracing::warn!(
                target = name,
                "round not stored: the database was not available moments ago"
            );
            self.unstored_round(name, &outcome);
            return;
        }
        self.store_retry_at = None;
        if let Err(e) = self.store.begin() {
            self.store_retry_at = Some(Instant::now() + STORE_RETRY);
            // The database is locked, unreadable or gone: probing goes on, the round is
            // counted and shown, but neither stored nor fed to the monitor (its alerts could
            // not be recorded).
            self.store_error("begin", &e);
            tracing::error!(target = name, error = %e, "cannot store the round: the database is not available");
            self.unstored_round(name, &outcome);
            return;
        }
        // Everything the round changes (fingerprint, samples, alert states, events, outbox
        // rows) commits in one transaction: a crash keeps all of it or none, so a transition
        // is never stored without its notification, nor a swap without its alert.
        let notifications = self.step_round(name, &outcome, now_ms);
        let jobs = self.record_notifications(&notifications);
        let committed = match self.store.commit() {
            Ok(()) => true,
            Err(e) => {
                self.store_error("commit", &e);
                tracing::error!(target = name, error = %e, "cannot commit the round; its notifications are not sent");
                // Back to the stored alert states, so that the transitions lost with the
                // transaction happen again (and notify) once the store works.
                if let Ok(states) = self.store.alert_states() {
                    self.alerts = states.into_iter().map(|st| (st.key.clone(), st)).collect();
                }
                false
            }
        };
        for n in &notifications {
            self.shared.count_notification(n.kind.as_str());
        }
        if committed {
            for (i, job) in jobs {
                if let Some((name, tx, _)) = self.workers.get(i) {
                    self.sink_status
                        .entry(name.clone())
                        .or_insert_with(|| SinkStatus {
                            name: name.clone(),
                            ..SinkStatus::default()
                        })
                        .pending += 1;
                    let _ = tx.send(job);
                }
            }
        }
        self.publish();
    }

    /// Counts and shows a round that could not be stored.
    fn unstored_round(&mut self, name: &str, outcome: &RoundOutcome) {
        let status = if outcome.measured() {
            "completed"
        } else {
            "failed"
        };
        self.shared.count_round(name, status, &outcome.samples);
        if let Some(rt) = self.runtime.get_mut(name) {
            rt.last_round = Some(RoundSummary {
                started_at_ms: outcome.started_at_ms,
                ended_at_ms: outcome.ended_at_ms,
                samples: outcome.samples.len(),
                errors: outcome.errors(),
                status: status.into(),
            });
        }
        let quality = self.record_quality(name, &outcome.samples);
        self.assess(name, &quality);
        self.publish();
    }

    /// Stores the round, checks fingerprint and pin, feeds the monitor and steps the alerts;
    /// returns the notifications produced.
    fn step_round(&mut self, name: &str, outcome: &RoundOutcome, now_ms: i64) -> Vec<Notification> {
        let mut notifications = Vec::new();
        let Some(rt) = self.runtime.get_mut(name) else {
            return notifications;
        };
        let silences = self.store.active_silences(now_ms).unwrap_or_default();
        let windows = self.loaded.config.alerts.maintenance.clone();

        // Fingerprint: swaps and pins.
        let mut swapped = false;
        let fingerprint_id = match &outcome.fingerprint {
            Ok(fp) => {
                let id = fp.id();
                match self
                    .store
                    .record_fingerprint(name, fp, outcome.started_at_ms)
                {
                    Ok(FingerprintChange::Swap { previous }) => {
                        swapped = true;
                        rt.swaps += 1;
                        tracing::warn!(
                            target = name,
                            previous = %previous,
                            current = %id,
                            "the served model changed (swap): new monitoring episode"
                        );
                        let key = AlertKey::new(name, SWAP);
                        let muted = alert::is_muted(&key, now_ms, &silences, &windows);
                        notifications.push(Notification::info(
                            key,
                            now_ms,
                            Evidence {
                                summary: format!(
                                    "model swap on {name}: fingerprint {previous} → {id}"
                                ),
                                ..Evidence::default()
                            },
                            muted,
                        ));
                    }
                    Ok(FingerprintChange::First) => {
                        tracing::info!(target = name, fingerprint = %id, "first fingerprint")
                    }
                    Ok(FingerprintChange::None) => {}
                    Err(e) => {
                        self.shared.store_failed("fingerprint", &e.to_string());
                        tracing::error!(target = name, error = %e, "cannot store the fingerprint");
                    }
                }
                rt.digest = fp.digest.clone();
                Some(id)
            }
            Err(e) => {
                tracing::warn!(target = name, error = %e, "could not read the fingerprint");
                None
            }
        };
        if fingerprint_id.is_some() {
            rt.fingerprint = fingerprint_id.clone();
        }

        // Store the round.
        let stored = (|| -> Result<(), crate::store::StoreError> {
            let round =
                self.store
                    .begin_round(name, fingerprint_id.as_deref(), outcome.started_at_ms)?;
            self.store.insert_samples(round, &outcome.samples)?;
            let status = if outcome.measured() {
                RoundStatus::Completed
            } else {
                RoundStatus::Failed
            };
            self.store
                .finish_round(round, now_ms.max(outcome.ended_at_ms), status)?;
            Ok(())
        })();
        match stored {
            Ok(()) => self.shared.store_ok.store(true, Ordering::Relaxed),
            Err(e) => {
                self.shared.store_failed("round", &e.to_string());
                tracing::error!(target = name, error = %e, "cannot store the round");
            }
        }
        let status = if outcome.measured() {
            "completed"
        } else {
            "failed"
        };
        self.shared.count_round(name, status, &outcome.samples);
        let quality = self.record_quality(name, &outcome.samples);
        let Some(rt) = self.runtime.get_mut(name) else {
            return notifications;
        };
        rt.last_round = Some(RoundSummary {
            started_at_ms: outcome.started_at_ms,
            ended_at_ms: outcome.ended_at_ms,
            samples: outcome.samples.len(),
            errors: outcome.errors(),
            status: status.into(),
        });

        let Some(p) = self.prepared.get(name) else {
            return notifications;
        };
        let target = p.target.clone();
        let mut observations: Vec<(String, Severity, Observation)> = Vec::new();

        // Pin: before any statistics.
        if let (Some(pin), Some(id)) = (&target.daemon.pin, &fingerprint_id) {
            let ok = pin.matches(id, rt.digest.as_deref());
            observations.push((
                UNAPPROVED_MODEL.into(),
                Severity::Critical,
                if ok {
                    Observation::Clear
                } else {
                    Observation::Breach(Evidence {
                        summary: format!(
                            "{name} serves {} (digest {}), not the approved model {}",
                            id,
                            rt.digest.as_deref().unwrap_or("unknown"),
                            pin.model
                        ),
                        ..Evidence::default()
                    })
                },
            ));
        }

        // Baseline (re)load and the monitoring episode.
        let settings = MonitorSettings {
            margins: self.options.margins.clone(),
            false_alarm_rounds: target.daemon.false_alarm_interval.as_secs_f64()
                / target.interval.as_secs_f64().max(1.0),
        };
        let mut reset = swapped;
        if let Some(path) = &target.baseline {
            let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let changed = match &rt.baseline {
                None => true,
                Some((p, t, _)) => p != path || *t != mtime,
            };
            if changed && mtime.is_some() {
                match Baseline::load(path) {
                    Ok(b) => {
                        tracing::info!(target = name, baseline = %path.display(), fingerprint = %b.fingerprint.id(), "baseline loaded: new monitoring episode");
                        rt.baseline = Some((path.clone(), mtime, b));
                        reset = true;
                    }
                    Err(e) => {
                        if rt.baseline.is_none() {
                            tracing::warn!(target = name, error = %e, "cannot load the baseline; monitoring waits for one");
                        }
                    }
                }
            }
        }
        if (reset || rt.monitor.is_none())
            && let Some((_, _, b)) = &rt.baseline
        {
            rt.monitor = Some(TargetMonitor::new(b, settings));
            rt.episode_started_ms = Some(now_ms);
            // Alerts of metrics the new episode no longer tracks are cleared.
        }
        let tracked: Vec<String> = rt
            .monitor
            .as_ref()
            .map(|m| m.metric_ids())
            .unwrap_or_default();
        if let Some(m) = rt.monitor.as_mut() {
            for (metric, obs) in m.observe_round(&outcome.samples) {
                observations.push((metric, Severity::Warning, obs));
            }
        }
        if reset {
            for (key, st) in &self.alerts {
                if key.target == name
                    && st.status == Status::Firing
                    && key.metric != UNAPPROVED_MODEL
                    && !tracked.contains(&key.metric)
                {
                    observations.push((key.metric.clone(), st.severity, Observation::Clear));
                }
            }
        }

        let policy = Policy {
            reminder_ms: self
                .loaded
                .config
                .alerts
                .reminder
                .map(|d| d.as_millis() as i64),
            resolve_after: self.loaded.config.alerts.resolve_after,
        };
        for (metric, severity, obs) in observations {
            let key = AlertKey::new(name, metric);
            let current = self
                .alerts
                .get(&key)
                .cloned()
                .unwrap_or_else(|| AlertState::new(key.clone(), severity, now_ms));
            let muted = alert::is_muted(&key, now_ms, &silences, &windows);
            let (next, mut out) = alert::transition(&current, &obs, now_ms, &policy, muted);
            if next != current || !self.alerts.contains_key(&key) {
                if let Err(e) = self.store.save_alert_state(&next, now_ms) {
                    self.shared.store_failed("alert_state", &e.to_string());
                    tracing::error!(alert = %key, error = %e, "cannot persist the alert state");
                }
                self.alerts.insert(key, next);
            }
            notifications.append(&mut out);
        }
        self.assess(name, &quality);
        notifications
    }

    /// Reads a round's quality figures into the shared state (for `/metrics` and OTLP).
    fn record_quality(
        &self,
        name: &str,
        samples: &[crate::sample::Sample],
    ) -> crate::telemetry::quality::TargetQuality {
        match self.prepared.get(name) {
            Some(p) => {
                let expects: std::collections::HashSet<(&str, &str)> = p
                    .probes
                    .iter()
                    .filter(|pr| pr.expect.refusal == Some(true))
                    .map(|pr| (pr.suite.as_str(), pr.id.as_str()))
                    .collect();
                self.shared.record_quality(name, samples, &|suite, probe| {
                    expects.contains(&(suite, probe))
                })
            }
            None => self.shared.record_quality(name, &[], &|_, _| false),
        }
    }

    /// Tells the observers a target's readings after a round.
    fn assess(&self, name: &str, quality: &crate::telemetry::quality::TargetQuality) {
        let (Some(p), Some(rt)) = (self.prepared.get(name), self.runtime.get(name)) else {
            return;
        };
        let metrics = rt
            .monitor
            .as_ref()
            .map(|m| m.snapshot())
            .unwrap_or_default();
        let alerts: Vec<AlertState> = self
            .alerts
            .values()
            .filter(|a| a.key.target == name)
            .cloned()
            .collect();
        let assessment = Assessment {
            metrics: &metrics,
            alerts: &alerts,
            quality,
        };
        for o in &self.options.observers {
            o.round_assessed(&p.target, &assessment);
        }
    }

    /// Writes a round's notifications (events and outbox rows) inside the open transaction and
    /// returns the delivery jobs, to be handed to the workers once the transaction commits.
    fn record_notifications(
        &mut self,
        notifications: &[Notification],
    ) -> Vec<(usize, alert::outbox::Job)> {
        let mut jobs = Vec::new();
        for n in notifications {
            jobs.extend(self.record_notification(n));
        }
        jobs
    }

    /// Records a notification as an event and, unless muted, as one outbox row per sink;
    /// returns the delivery jobs (worker index, job) for the rows written.
    fn record_notification(&mut self, n: &Notification) -> Vec<(usize, alert::outbox::Job)> {
        if let Ok(payload) = serde_json::to_value(n)
            && let Err(e) = self
                .store
                .add_event(&n.key.target, "alert", n.at_ms, &payload)
        {
            self.store_error("event", &e);
            tracing::error!(error = %e, "cannot record the alert event");
        }
        if n.muted {
            tracing::info!(alert = %n.key, kind = n.kind.as_str(), "notification muted (silence or maintenance window)");
            return Vec::new();
        }
        let now_ms = self.clock.now_ms();
        let key = alert::idempotency_key(n);
        let mut jobs = Vec::new();
        for i in 0..self.workers.len() {
            let name = self.workers[i].0.clone();
            match self.store.enqueue_outbox(&name, &key, n, now_ms) {
                Ok(Some(id)) => jobs.push((
                    i,
                    alert::outbox::Job {
                        id,
                        key: key.clone(),
                        notification: n.clone(),
                        attempts: 0,
                    },
                )),
                Ok(None) => {
                    tracing::debug!(sink = %name, key = %key, "notification already in the outbox")
                }
                Err(e) => {
                    self.store_error("outbox", &e);
                    tracing::error!(sink = %name, error = %e, "cannot write the notification to the outbox")
                }
            }
        }
        jobs
    }

    /// Counts a failed store operation and marks the store as not writable until the next
    /// successful write (`/readyz` shows the reason).
    fn store_error(&self, operation: &str, e: &crate::store::StoreError) {
        self.shared.store_failed(operation, &e.to_string());
    }

    /// After a reload: rebuilds the sinks and observers when their configuration changed.
    /// The old workers are stopped (a delivery in flight is abandoned and sent again, with
    /// the same idempotency key, by the new worker), their reports recorded, and the new
    /// workers take over the pending rows of their sink; rows of a sink that is gone are
    /// marked `orphaned`.
    async fn reload_outputs(
        &mut self,
        previous: &crate::config::Config,
        reports: &mut mpsc::UnboundedReceiver<alert::outbox::Report>,
    ) {
        let Some(factory) = self.options.outputs.clone() else {
            return;
        };
        let config = &self.loaded.config;
        let models = |c: &crate::config::Config| -> Vec<(String, String, String)> {
            c.targets
                .iter()
                .map(|t| {
                    let provider = t.provider.as_str().to_string();
                    (t.name.clone(), provider, t.model.clone())
                })
                .collect()
        };
        if previous.alerts.webhook == config.alerts.webhook
            && previous.alerts.sentry == config.alerts.sentry
            && previous.telemetry == config.telemetry
            && models(previous) == models(config)
        {
            return;
        }
        let outputs = match factory(config) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the reloaded sinks; keeping the previous ones");
                return;
            }
        };
        for (name, _, handle) in std::mem::take(&mut self.workers) {
            if let Some(h) = handle {
                h.abort();
                let _ = h.await;
            }
            tracing::debug!(sink = %name, "delivery worker stopped for the reload");
        }
        // Every report the old workers sent is in the channel now.
        while let Ok(r) = reports.try_recv() {
            self.record_delivery(r);
        }
        for st in self.sink_status.values_mut() {
            st.pending = 0;
        }
        self.options.sinks = outputs.sinks;
        self.options.observers = outputs.observers;
        self.shared.set_observers(self.options.observers.clone());
        if let Some(tx) = self.report_tx.clone() {
            self.start_workers(tx);
        }
        tracing::info!(
            sinks = ?self.workers.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(),
            observers = self.options.observers.len(),
            "alert sinks and telemetry rebuilt for the new configuration"
        );
    }

    /// Starts one delivery worker per sink and hands it the rows left pending by an earlier run
    /// (or by the workers a reload replaced). Pending rows of sinks that are not configured
    /// are marked `orphaned`.
    fn start_workers(&mut self, reports: mpsc::UnboundedSender<alert::outbox::Report>) {
        let sinks = self.options.sinks.clone();
        for (i, sink) in sinks.into_iter().enumerate() {
            let mut name = sink.name().to_string();
            if self.workers.iter().any(|(n, _, _)| *n == name) {
                name = format!("{name}-{}", i + 1);
            }
            let (tx, handle) = alert::outbox::spawn_worker_with_handle(
                sink,
                self.options.retry,
                self.options.seed,
                reports.clone(),
            );
            let pending = match self.store.pending_outbox(&name) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(sink = %name, error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            if !pending.is_empty() {
                tracing::info!(sink = %name, pending = pending.len(), "resuming undelivered notifications");
            }
            self.sink_entry(&name).pending += pending.len() as u64;
            for row in pending {
                let _ = tx.send(alert::outbox::Job {
                    id: row.id,
                    key: row.idempotency_key,
                    notification: row.notification,
                    attempts: row.attempts,
                });
            }
            self.workers.push((name, tx, Some(handle)));
        }
        let names: Vec<&str> = self.workers.iter().map(|w| w.0.as_str()).collect();
        match self.store.orphan_outbox(&names, self.clock.now_ms()) {
            Ok(orphaned) => {
                for (sink, n) in orphaned {
                    tracing::warn!(sink = %sink, notifications = n, "the sink is no longer configured: its undelivered notifications are marked orphaned");
                    let entry = self.sink_entry(&sink);
                    entry.orphaned += n;
                    entry.pending = 0;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot mark the outbox rows of removed sinks"),
        }
    }

    fn sink_entry(&mut self, name: &str) -> &mut SinkStatus {
        self.sink_status
            .entry(name.to_string())
            .or_insert_with(|| SinkStatus {
                name: name.to_string(),
                ..SinkStatus::default()
            })
    }

    /// Records one delivery attempt reported by a worker: store, status, counters.
    fn record_delivery(&mut self, r: alert::outbox::Report) {
        use crate::store::OutboxStatus;
        use alert::outbox::Outcome;
        let now_ms = self.clock.now_ms();
        let status = match r.outcome {
            Outcome::Delivered => OutboxStatus::Delivered,
            Outcome::Failed => OutboxStatus::Pending,
            Outcome::Expired => OutboxStatus::Expired,
            Outcome::Rejected => OutboxStatus::Rejected,
        };
        if let Err(e) =
            self.store
                .update_outbox(r.id, status, r.attempts, r.error.as_deref(), now_ms)
        {
            self.store_error("outbox", &e);
            tracing::error!(sink = %r.sink, error = %e, "cannot record the delivery");
        }
        self.shared.count_delivery(&r.sink, r.outcome.as_str());
        let entry = self.sink_entry(&r.sink);
        match r.outcome {
            Outcome::Delivered => {
                entry.delivered += 1;
                entry.pending = entry.pending.saturating_sub(1);
            }
            Outcome::Failed => {
                entry.failed += 1;
                tracing::warn!(sink = %r.sink, attempts = r.attempts, error = r.error.as_deref().unwrap_or(""), "alert delivery failed; will retry");
                entry.last_error = r.error;
            }
            Outcome::Expired | Outcome::Rejected => {
                // Final failures: the row leaves the queue.
                let why = if r.outcome == Outcome::Expired {
                    entry.expired += 1;
                    "alert delivery given up after the last retry"
                } else {
                    entry.rejected += 1;
                    "alert delivery rejected by the receiver; not retried (check the sink's configuration)"
                };
                entry.failed += 1;
                entry.pending = entry.pending.saturating_sub(1);
                tracing::error!(sink = %r.sink, attempts = r.attempts, error = r.error.as_deref().unwrap_or(""), "{why}");
                entry.last_error = r.error;
            }
        }
    }

    /// Publishes the status document.
    fn publish(&self) {
        let mut targets = Vec::new();
        for (name, p) in &self.prepared {
            let Some(rt) = self.runtime.get(name) else {
                continue;
            };
            let t = &p.target;
            targets.push(TargetStatus {
                name: name.clone(),
                provider: t.provider.as_str().to_string(),
                model: t.model.clone(),
                fingerprint: rt.fingerprint.clone(),
                digest: rt.digest.clone(),
                pin: t.daemon.pin.as_ref().map(|pin| PinStatus {
                    model: pin.model.clone(),
                    approved_by: pin.approved_by.clone(),
                    approved_on: pin.approved_on.clone(),
                    license_reviewed: pin.license_reviewed,
                    matches: rt
                        .fingerprint
                        .as_ref()
                        .map(|id| pin.matches(id, rt.digest.as_deref())),
                }),
                baseline: rt.baseline.as_ref().map(|(path, _, b)| BaselineStatus {
                    path: path.display().to_string(),
                    fingerprint: b.fingerprint.id(),
                    recorded_at: b.recorded.at.clone(),
                    same_fingerprint: rt.fingerprint.as_ref().map(|f| *f == b.fingerprint.id()),
                }),
                episode_started_ms: rt.episode_started_ms,
                last_round: rt.last_round.clone(),
                rounds: rt.rounds,
                swaps: rt.swaps,
                metrics: rt
                    .monitor
                    .as_ref()
                    .map(|m| m.snapshot())
                    .unwrap_or_default(),
            });
        }
        let alerts: Vec<AlertState> = self.alerts.values().cloned().collect();
        let sinks: Vec<SinkStatus> = self.sink_status.values().cloned().collect();
        self.shared.update_status(|s| {
            s.targets = targets;
            s.alerts = alerts;
            s.sinks = sinks;
        });
    }
}

/// The evaluation of a round, owning what it needs (rounds run as separate tasks).
fn evaluate_fn(
    evaluator: Arc<Evaluator>,
    checks: Arc<HashMap<String, CompiledChecks>>,
) -> Box<runner::Evaluate<'static>> {
    Box::new(move |probe: &Probe, c: &Completion| evaluator.evaluate(c, checks.get(&probe.hash)))
}

/// Windows type re-exported for callers building configurations in code.
pub type Windows = Vec<MaintenanceWindow>;
