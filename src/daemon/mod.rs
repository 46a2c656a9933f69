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

mod apply;
pub mod behaviour;
use behaviour::behaviour_watch;
mod checkins;
mod delivery;
mod housekeeping;
mod identity;
mod license;
mod limit;
mod metrics;
pub mod monitor;
pub mod notify;
pub mod outputs;
mod persist;
pub mod promote;
mod round;
pub mod state;
pub mod strata;
pub mod traffic_watch;
mod trim;

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
use crate::store::{FingerprintChange, Store};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use limit::{LimitedClient, TokenBucket};
use monitor::{MonitorSettings, TargetMonitor};
use notify::Notifier;
use state::{BaselineStatus, PinStatus, RoundSummary, Shared, SinkStatus, TargetStatus};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
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
/// Alert metric of configuration-change notifications (same model, other generation defaults).
pub const CONFIG_CHANGED: &str = "config_changed";
/// Alert metric of behaviour-change notifications (the served texts no longer look like the
/// baseline model's, whatever the fingerprint says).
pub const BEHAVIOUR_CHANGED: &str = "behaviour_changed";
/// Alert metric of license drift (other terms than the pinned or previously served ones).
pub const LICENSE_CHANGED: &str = "license_changed";
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
    #[error("traffic: {0}")]
    Traffic(#[from] crate::traffic::TrafficError),
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
/// The alert lifecycle's settings from `[alerts]`.
pub fn alert_policy(alerts: &crate::config::Alerts) -> Policy {
    Policy {
        reminder_ms: alerts.reminder.map(|d| d.as_millis() as i64),
        resolve_after: alerts.resolve_after,
    }
}

pub fn http_clients() -> ClientFactory {
    Arc::new(|t: &Target, cancel: CancelSignal| setup::build_client_with(t, Some(cancel)))
}

pub use crate::telemetry::observer::{Assessment, ObserverCounter, RoundObserver};
pub use delivery::SdkOutbox;

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
    /// How long one answer's checks may run before the sample is `check_timeout`.
    pub check_budget: Duration,
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
            check_budget: runner::evalpool::CHECK_BUDGET,
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
    /// Computed once per configuration, not per round.
    monitor_settings: MonitorSettings,
}

/// A loaded baseline as the scheduler keeps it between rounds: its file, the modification
/// time it was read at (a newer one is a new baseline) and what the status shows. The stored
/// samples are read when an episode starts (the load itself, a swap) and then dropped: the
/// monitor keeps only counts and lengths, and a 50-probe baseline of 80 samples per probe is
/// about 2 MB per target.
struct HeldBaseline {
    path: PathBuf,
    mtime: Option<SystemTime>,
    fingerprint: String,
    recorded_at: String,
}

impl HeldBaseline {
    fn of(path: PathBuf, mtime: Option<SystemTime>, baseline: &Baseline) -> HeldBaseline {
        HeldBaseline {
            path,
            mtime,
            fingerprint: baseline.fingerprint.id(),
            recorded_at: baseline.recorded.at.clone(),
        }
    }
}

/// Per-target scheduler state that survives reloads.
struct Runtime {
    next_due: Instant,
    running: bool,
    monitor: Option<TargetMonitor>,
    /// The baseline the episode compares against.
    baseline: Option<HeldBaseline>,
    fingerprint: Option<String>,
    episode_started_ms: Option<i64>,
    rounds: u64,
    swaps: u64,
    last_round: Option<RoundSummary>,
    digest: Option<String>,
    /// The served configuration's digest and how often it changed under the same model.
    config_digest: Option<String>,
    config_changes: u64,
    /// The license evidence read with the last fingerprint.
    license: Option<crate::provider::license::LicenseEvidence>,
    /// Whether the served texts still look like the baseline model's (per episode).
    behaviour: Option<behaviour::BehaviourSlot>,
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
            checks: Arc::default(),
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
    let traffic = start_traffic(&loaded.config, &s.shared, &s.options.margins)?;
    s.apply(loaded)?;
    s.store_at_start();
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
                if rounds.is_empty() {
                    trim::release_free_memory();
                }
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
    let shared = s.shared.clone();
    s.shut_down(rounds, reports).await;
    if let Some(worker) = traffic {
        // Accepted completions are measured and stored before the process ends.
        if let Some(t) = shared.traffic() {
            t.close();
        }
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    }
    Ok(())
}

/// Starts production traffic ingestion when `[traffic]` is configured.
fn start_traffic(
    config: &crate::config::Config,
    shared: &Arc<Shared>,
    margins: &Margins,
) -> Result<Option<crate::traffic::worker::Worker>, DaemonError> {
    let Some(settings) = &config.traffic else {
        return Ok(None);
    };
    let (traffic, worker) =
        crate::traffic::start(settings, &config.storage, known_targets(config))?;
    // The monitor learns of swaps from the status the scheduler publishes.
    let status = Arc::downgrade(shared);
    let lookup: traffic_watch::SwapLookup = Box::new(move |target| {
        let shared = status.upgrade()?;
        let mut found = None;
        shared.update_status(|doc| {
            found = doc
                .targets
                .iter()
                .find(|t| t.name == target)
                .and_then(|t| Some((t.fingerprint.clone()?, t.episode_started_ms)));
        });
        found
    });
    let monitor = MonitorSettings {
        margins: margins.clone(),
        // A batch is read as a round; about one a minute over the 90 days of the probes'
        // default false-alarm interval.
        false_alarm_rounds: 90.0 * 24.0 * 60.0,
        null_confidence: Default::default(),
    };
    let files = match &settings.baseline_file {
        Some(path) => traffic
            .baseline_file(path, crate::time::now_ms())
            .map_err(crate::traffic::TrafficError::Baseline)?,
        None => Vec::new(),
    };
    let mut kept = crate::store::Store::open(&config.storage.path)
        .map_err(crate::traffic::TrafficError::Store)?;
    // The monitor writes a baseline while it holds the traffic state; a busy database holds it
    // (and the status and the ingest with it) at most this long, and the write is tried again
    // with the route's next batch.
    kept.set_busy_timeout(traffic_watch::SAVE_WAIT)
        .map_err(crate::traffic::TrafficError::Store)?;
    traffic.set_watch(Box::new(
        traffic_watch::TrafficWatch::new(monitor, traffic_watch::BASELINE_COMPLETIONS, lookup)
            .with_schemas(traffic.schema_digests())
            .with_store(kept, settings.baseline_window)
            .with_file_baselines(files),
    ));
    set_traffic_secrets(&traffic, config);
    shared.set_traffic(Some(traffic));
    tracing::info!(
        store_text = settings.store_text,
        "production traffic ingestion on (POST /api/v1/ingest)"
    );
    Ok(Some(worker))
}

/// Stored traffic texts never hold the daemon's own secrets: the targets' API keys, header
/// values and URL passwords, and the server token, of the configuration applied (at start and
/// on every reload, so a target added by a reload is covered at once).
fn set_traffic_secrets(traffic: &crate::traffic::Traffic, config: &crate::config::Config) {
    let mut secrets: Vec<String> = Vec::new();
    for t in &config.targets {
        let values = t.api_key.iter().chain(t.headers.iter().map(|(_, v)| v));
        secrets.extend(values.map(|s| s.expose().to_string()));
        let url = reqwest::Url::parse(t.base_url.trim()).ok();
        secrets.extend(url.and_then(|u| u.password().map(str::to_string)));
    }
    secrets.extend(config.server.token.as_ref().map(|t| t.expose().to_string()));
    traffic.set_secrets(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The targets traffic lines may name.
fn known_targets(config: &crate::config::Config) -> Vec<crate::traffic::KnownTarget> {
    config
        .targets
        .iter()
        .map(|t| crate::traffic::KnownTarget {
            name: t.name.clone(),
            model: t.model.clone(),
        })
        .collect()
}

impl Scheduler {
    /// Stops scheduling, gives the rounds in flight `shutdown_grace` to finish (then cancels
    /// their requests), lets the sink workers report what they delivered, and closes the store.
    async fn shut_down(
        mut self,
        mut rounds: Rounds,
        mut reports: mpsc::UnboundedReceiver<alert::outbox::Report>,
    ) {
        self.options.notifier.stopping();
        tracing::info!(
            in_flight = rounds.len(),
            "stopping: no new rounds; waiting for rounds in flight"
        );
        let grace = self.loaded.config.daemon.shutdown_grace;
        let deadline = Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, rounds.next()).await {
                Ok(Some((name, generation, outcome))) => {
                    self.finish_round(&name, generation, outcome).await
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = rounds.len(),
                        "shutdown grace elapsed: cancelling the requests still in flight"
                    );
                    self.cancel.cancel();
                    // Cancelled requests end quickly; their rounds are stored as far as they got.
                    while let Ok(Some((name, generation, outcome))) =
                        tokio::time::timeout(Duration::from_secs(5), rounds.next()).await
                    {
                        self.finish_round(&name, generation, outcome).await;
                    }
                    break;
                }
            }
        }
        // Stop the workers; what they reported so far is recorded, the rest stays pending and is
        // delivered after the next start.
        self.workers.clear();
        self.report_tx = None;
        let deadline = Instant::now() + grace.min(DELIVERY_GRACE);
        while self.sink_status.values().any(|k| k.pending > 0) {
            match tokio::time::timeout_at(deadline, reports.recv()).await {
                Ok(Some(r)) => self.record_delivery(r),
                _ => break,
            }
        }
        self.publish();
        drop(self.store);
        tracing::info!("stopped");
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
