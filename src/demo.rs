//! The one-command demo: the built-in simulator serves a healthy model, a baseline is recorded,
//! monitoring rounds compare it with the baseline, the simulator is swapped to a degraded model
//! mid-way, and an alert fires as soon as the evidence suffices. The rounds are judged by the
//! daemon's own pieces (its monitor, its alert lifecycle, its store), so what the demo shows is
//! what the daemon would do.
//!
//! Everything runs in-process against real HTTP on 127.0.0.1; what happens is told to a
//! [`DemoProgress`] so the CLI can show it live and tests can watch it silently.

use crate::alert::{self, AlertKey, AlertState, Policy, Severity, Status};
use crate::baseline::{self, Baseline, RecordInfo};
use crate::config::{self, Loaded, Target};
use crate::daemon::{
    self,
    monitor::{MonitorSettings, TargetMonitor},
};
use crate::diag;
use crate::drift::{self, Expectations, Margins, Metric, Report, Verdict};
use crate::eval::{Evaluator, RefusalConfig};
use crate::probe::{Probe, Suite};
use crate::provider::ModelClient;
use crate::runner::{self, Clock, RoundOptions, RoundOutcome, SystemClock, recording, setup};
use crate::sample::{Completion, Measurements, Sample};
use crate::sim::{self, Profile};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The starter suites, embedded so the demo runs from any directory.
pub const STARTER_SUITES: [(&str, &str); 5] = [
    ("core", include_str!("../probes/core.toml")),
    ("json", include_str!("../probes/json.toml")),
    ("tasks", include_str!("../probes/tasks.toml")),
    ("format", include_str!("../probes/format.toml")),
    ("multilingual", include_str!("../probes/multilingual.toml")),
];

/// The JSON Schema files the starter suites refer to, by path relative to `probes/`.
pub const STARTER_SCHEMAS: [(&str, &str); 2] = [
    (
        "schemas/order.json",
        include_str!("../probes/schemas/order.json"),
    ),
    (
        "schemas/job-posting.json",
        include_str!("../probes/schemas/job-posting.json"),
    ),
];

/// The demo's target name.
pub const TARGET: &str = "demo";

/// Writes the embedded starter suites and their schemas into `dir`.
pub fn write_starter_probes(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("schemas"))?;
    for (name, text) in STARTER_SUITES {
        std::fs::write(dir.join(format!("{name}.toml")), text)?;
    }
    for (path, text) in STARTER_SCHEMAS {
        std::fs::write(dir.join(path), text)?;
    }
    Ok(())
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the configuration, probes, database, baseline and report go.
    pub dir: PathBuf,
    /// The simulator's seed.
    pub seed: u64,
    /// Samples per probe in the baseline.
    pub baseline_samples: u32,
    /// Monitoring rounds against the healthy model before the swap.
    pub rounds_before_swap: u32,
    /// Monitoring rounds after the swap before giving up.
    pub max_rounds_after_swap: u32,
    /// The simulator's `latency_scale` (small keeps the demo quick).
    pub latency_scale: f64,
}

impl DemoOptions {
    pub fn new(dir: PathBuf, seed: u64) -> DemoOptions {
        DemoOptions {
            dir,
            seed,
            baseline_samples: 5,
            rounds_before_swap: 3,
            max_rounds_after_swap: 10,
            latency_scale: 0.05,
        }
    }
}

/// The evidence on one monitored metric after a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub metric: Metric,
    /// The sequential regression e-value (candidate worse); decisive at `threshold`.
    pub e_value: f64,
}

/// What a monitoring round showed.
#[derive(Debug, Clone)]
pub struct RoundReport {
    /// 1-based monitoring round.
    pub round: u32,
    /// Whether the simulator serves the degraded model in this round.
    pub degraded: bool,
    /// The fingerprint id read at the start of the round.
    pub fingerprint: Option<String>,
    /// Samples compared since the last swap (or since monitoring began).
    pub samples: u64,
    pub errors: usize,
    pub evidence: Vec<Evidence>,
    /// The e-value a metric must reach to be called a regression.
    pub threshold: f64,
}

/// What happens, in order.
#[derive(Debug, Clone)]
pub enum Event {
    SimStarted {
        base_url: String,
    },
    /// `done` of `total` baseline requests finished.
    Recording {
        done: usize,
        total: usize,
    },
    BaselineSaved {
        path: PathBuf,
        samples: usize,
        fingerprint: String,
    },
    /// The simulator now serves the degraded model (before round `round`).
    SwapInjected {
        round: u32,
    },
    /// The fingerprint differs from the baseline's: the served model changed.
    SwapSeen {
        round: u32,
        previous: String,
        current: String,
    },
    Round(RoundReport),
    /// An alert fired after `samples` post-swap samples; `metrics` are those whose alerts are
    /// firing by the end of that round, with their e-values then.
    Detected {
        round: u32,
        samples: u64,
        metrics: Vec<Evidence>,
    },
    ReportWritten {
        path: PathBuf,
    },
}

/// Receives the demo's events (a progress display, or a log in tests).
pub trait DemoProgress: Send + Sync {
    /// Called from the request tasks too (recording progress), hence `&self`.
    fn event(&self, event: &Event);
}

/// Ignores every event.
pub struct Quiet;

impl DemoProgress for Quiet {
    fn event(&self, _: &Event) {}
}

/// What the demo produced.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    pub detected: bool,
    /// Metrics shown regressed by the anytime-valid monitor.
    pub regressed: Vec<Metric>,
    /// Post-swap samples it took.
    pub samples_to_detect: Option<u64>,
    pub config: PathBuf,
    pub database: PathBuf,
    pub baseline: PathBuf,
    pub report: PathBuf,
    pub verdict: Verdict,
}

/// Why the demo could not run (not: the demo ran and detected nothing).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot write the demo files in {dir}: {source}; pass --dir to use another folder")]
    Files {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the built-in simulator: {0}")]
    Sim(std::io::Error),
    #[error("the demo configuration is invalid (a bug):\n{0}")]
    Config(String),
    #[error("cannot set up the demo: {0}")]
    Setup(String),
    #[error("the baseline could not be recorded: {0}")]
    Baseline(String),
    #[error("cannot store samples in {path}: {message}")]
    Store { path: PathBuf, message: String },
}

fn files(dir: &Path) -> impl Fn(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Files {
        dir: dir.to_path_buf(),
        source,
    }
}

fn with_latency(name: &str, scale: f64) -> Profile {
    let mut p = Profile::builtin(name).unwrap_or_default();
    p.latency_scale = scale;
    p
}

/// Runs the whole demo. Needs a Tokio runtime with timers and I/O.
pub async fn run(
    options: &DemoOptions,
    progress: &dyn DemoProgress,
) -> Result<DemoOutcome, DemoError> {
    let dir = options.dir.as_path();
    std::fs::create_dir_all(dir).map_err(files(dir))?;
    let dir = std::fs::canonicalize(dir).map_err(files(dir))?;
    let probes_dir = dir.join("probes");
    write_starter_probes(&probes_dir).map_err(files(&dir))?;
    let database = dir.join("modelwatch.db");
    let baseline_path = dir.join("baselines").join(format!("{TARGET}.json"));
    let report_path = dir.join("report.html");

    let handle =
        sim::spawn_on_free_port(with_latency("healthy", options.latency_scale), options.seed)
            .map_err(DemoError::Sim)?;
    let base_url = handle.base_url();
    progress.event(&Event::SimStarted {
        base_url: base_url.clone(),
    });
    let config_path = dir.join("modelwatch.toml");
    let text = format!(
        r#"# Written by `modelwatch demo`: the built-in simulator (gone once the demo ends).
probes_dir = "probes"

[storage]
path = "modelwatch.db"

[[target]]
name = "{TARGET}"
provider = "ollama"
base_url = "{base_url}"
model = "sim-7b"
suites = ["core", "json", "tasks", "format", "multilingual"]
max_concurrency = 8
# Whole responses: streaming would pace every token, which only slows the demo down.
stream = false
baseline = "baselines/{TARGET}.json"
"#
    );
    std::fs::write(&config_path, text).map_err(files(&dir))?;
    let loaded = config::load_with_suites(&config_path, &config::process_env)
        .map_err(|d| DemoError::Config(diag::render_all(&d)))?;
    let result = monitor(
        options,
        &loaded,
        &handle,
        &baseline_path,
        &report_path,
        progress,
    )
    .await;
    handle.shutdown().await;
    let (detected, regressed, samples_to_detect, verdict) = result?;
    Ok(DemoOutcome {
        detected,
        regressed,
        samples_to_detect,
        config: config_path,
        database,
        baseline: baseline_path,
        report: report_path,
        verdict,
    })
}

type Monitored = (bool, Vec<Metric>, Option<u64>, Verdict);

/// Records the baseline, monitors round by round across the swap, and writes the report.
async fn monitor(
    options: &DemoOptions,
    loaded: &Loaded,
    handle: &sim::SimHandle,
    baseline_path: &Path,
    report_path: &Path,
    progress: &dyn DemoProgress,
) -> Result<Monitored, DemoError> {
    let session = Session::open(loaded)?;
    let mut store = Store::open(&loaded.config.storage.path)
        .map_err(|e| store_error(loaded, anyhow::Error::new(e)))?;
    let base = record_baseline(&session, &mut store, options, baseline_path, progress).await?;
    let margins = &loaded.config.margins;
    let mut expect = Expectations::from_suites(&session.suites);
    expect
        .refusal_expected
        .extend(base.expectations().refusal_expected);
    let settings = MonitorSettings::for_target(margins, session.target);
    let start = Watch {
        baseline: &base,
        monitor: TargetMonitor::new(&base, settings.clone()),
        settings,
        policy: daemon::alert_policy(&loaded.config.alerts),
        current_id: base.fingerprint.id(),
        expect,
        since_swap: Vec::new(),
        swapped_seen: false,
        alerts: BTreeMap::new(),
        found: None,
    };
    let watch = watch(&session, &mut store, options, handle, start, progress).await?;
    let verdict = write_report(&base, &watch, margins, report_path, progress)?;
    let (detected, regressed, n) = match watch.found {
        Some((m, n)) => (true, m, Some(n)),
        None => (false, Vec::new(), None),
    };
    Ok((detected, regressed, n, verdict))
}

/// What every step of the demo works with: the target's suites and probes, how a response is
/// judged, and the client. (The store, not shareable across threads, goes beside it.)
struct Session<'a> {
    loaded: &'a Loaded,
    target: &'a Target,
    suites: Vec<Suite>,
    probes: Vec<Arc<Probe>>,
    evaluator: Evaluator,
    client: Arc<dyn ModelClient>,
    clock: SystemClock,
    round_options: RoundOptions,
}

impl<'a> Session<'a> {
    fn open(loaded: &'a Loaded) -> Result<Session<'a>, DemoError> {
        let target = loaded
            .config
            .targets
            .first()
            .ok_or_else(|| DemoError::Setup("no target".into()))?;
        let evaluator = Evaluator::new(&RefusalConfig::default())
            .map_err(|e| DemoError::Setup(e.to_string()))?;
        let client = setup::build_client(target).map_err(|e| DemoError::Setup(e.to_string()))?;
        Ok(Session {
            loaded,
            target,
            suites: loaded.target_suites(target).cloned().collect(),
            probes: setup::target_probes(loaded, target, &[]),
            evaluator,
            client,
            clock: SystemClock,
            round_options: RoundOptions {
                target: target.name.clone(),
                concurrency: target.max_concurrency as usize,
                stream: target.stream,
                samples_override: None,
                keep_text: true,
            },
        })
    }

    fn evaluate(&self, p: &Probe, c: &Completion) -> Measurements {
        self.evaluator.evaluate(c, self.loaded.checks.get(&p.hash))
    }

    /// Runs one monitoring round: one sample per probe, as a daemon's light round takes.
    async fn round(&self) -> RoundOutcome {
        let options = RoundOptions {
            samples_override: Some(1),
            ..self.round_options.clone()
        };
        let evaluate = |p: &Probe, c: &Completion| self.evaluate(p, c);
        runner::run_round(
            self.client.as_ref(),
            &self.probes,
            &options,
            &evaluate,
            &self.clock,
        )
        .await
    }

    fn store(&self, store: &mut Store, outcome: &RoundOutcome) -> Result<(), DemoError> {
        store_round(store, &self.target.name, outcome, &self.clock)
            .map_err(|e| store_error(self.loaded, e))
    }
}

fn store_error(loaded: &Loaded, e: anyhow::Error) -> DemoError {
    DemoError::Store {
        path: loaded.config.storage.path.clone(),
        message: format!("{e:#}"),
    }
}

/// Step 1: records the baseline from the healthy model, stores its rounds and saves it.
async fn record_baseline(
    s: &Session<'_>,
    store: &mut Store,
    options: &DemoOptions,
    baseline_path: &Path,
    progress: &dyn DemoProgress,
) -> Result<Baseline, DemoError> {
    let total = s.probes.len() * options.baseline_samples as usize;
    let mut rounds = Vec::new();
    let evaluate = |p: &Probe, c: &Completion| s.evaluate(p, c);
    let rec = recording::record(
        s.client.as_ref(),
        &s.probes,
        options.baseline_samples,
        &s.round_options,
        &evaluate,
        &s.clock,
        &|done| progress.event(&Event::Recording { done, total }),
        &mut |round| rounds.push(round.clone()),
    )
    .await;
    for round in &rounds {
        s.store(store, round)?;
    }
    let base_samples = rec.samples();
    let failed = |e: &dyn std::fmt::Display| DemoError::Baseline(e.to_string());
    baseline::check_recording(&base_samples, baseline::DEFAULT_MAX_ERROR_RATE)
        .map_err(|e| failed(&e))?;
    let fingerprint = rec
        .fingerprint()
        .cloned()
        .ok_or_else(|| failed(&"the simulator's fingerprint was unreadable"))?;
    let base = Baseline::from_samples(
        &s.target.name,
        fingerprint,
        &s.suites,
        &base_samples,
        RecordInfo {
            at_unix_ms: s.clock.now_ms(),
            samples_per_probe: options.baseline_samples,
            params: s.target.params.clone(),
        },
    )
    .map_err(|e| failed(&e))?;
    base.save(baseline_path).map_err(|e| failed(&e))?;
    progress.event(&Event::BaselineSaved {
        path: baseline_path.to_path_buf(),
        samples: base_samples.len(),
        fingerprint: base.fingerprint.id(),
    });
    Ok(base)
}

/// The daemon's pieces run after each round, in the daemon's order: the fingerprint (a swap
/// starts a new episode against the baseline), the monitor ([`TargetMonitor`]), then the alert
/// transitions; the alert states are stored as the daemon stores them.
struct Watch<'b> {
    baseline: &'b Baseline,
    settings: MonitorSettings,
    policy: Policy,
    monitor: TargetMonitor,
    /// The fingerprint id of the model being watched.
    current_id: String,
    /// What the probes expect (refusals included), as the baseline was judged.
    expect: Expectations,
    since_swap: Vec<Sample>,
    swapped_seen: bool,
    /// Alert states by metric id.
    alerts: BTreeMap<String, AlertState>,
    /// The metrics whose alerts fired and the samples it took, once one did.
    found: Option<(Vec<Metric>, u64)>,
}

impl Watch<'_> {
    /// A new fingerprint is a new model: a new episode, its evidence starting from nothing.
    fn note_fingerprint(&mut self, round: u32, id: &str, progress: &dyn DemoProgress) {
        if id == self.current_id {
            return;
        }
        progress.event(&Event::SwapSeen {
            round,
            previous: self.current_id.clone(),
            current: id.to_string(),
        });
        self.current_id = id.to_string();
        self.monitor = TargetMonitor::new(self.baseline, self.settings.clone());
        self.since_swap.clear();
        self.swapped_seen = true;
    }

    /// Feeds a round to the monitor and steps the alerts (stored); returns the metrics whose
    /// alerts are firing after a round in which one started to fire.
    fn push_round(
        &mut self,
        store: &mut Store,
        samples: &[Sample],
        now_ms: i64,
    ) -> anyhow::Result<Option<Vec<Metric>>> {
        self.since_swap.extend(samples.iter().cloned());
        let mut fired = false;
        for (metric, obs) in self.monitor.observe_round(samples) {
            let key = AlertKey::new(TARGET, metric.as_str());
            let current = self
                .alerts
                .get(&metric)
                .cloned()
                .unwrap_or_else(|| AlertState::new(key, Severity::Warning, now_ms));
            let (next, _) = alert::transition(&current, &obs, now_ms, &self.policy, false);
            fired |= next.status == Status::Firing && current.status != Status::Firing;
            if next != current {
                store.save_alert_state(&next, now_ms)?;
            }
            self.alerts.insert(metric, next);
        }
        Ok(fired.then(|| self.firing()))
    }

    fn firing(&self) -> Vec<Metric> {
        self.alerts
            .iter()
            .filter(|(_, st)| st.status == Status::Firing)
            .filter_map(|(id, _)| metric_of(id))
            .collect()
    }

    /// Samples the monitor has judged in this episode.
    fn samples(&self) -> u64 {
        self.monitor
            .snapshot()
            .iter()
            .map(|m| m.samples)
            .max()
            .unwrap_or(0)
    }

    /// The e-value of every monitored metric.
    fn evidence(&self) -> Vec<Evidence> {
        self.monitor
            .snapshot()
            .iter()
            .filter_map(|m| {
                Some(Evidence {
                    metric: metric_of(&m.metric)?,
                    e_value: m.e_value,
                })
            })
            .collect()
    }
}

/// The monitor's metric of an id.
fn metric_of(id: &str) -> Option<Metric> {
    drift::BINARY
        .into_iter()
        .chain([Metric::LengthChars, Metric::LengthShape])
        .find(|m| m.id() == id)
}

/// Step 2: monitoring rounds, the degraded model swapped in after `rounds_before_swap`, until
/// an alert fires or the rounds run out. Each round is judged as the daemon judges it: the
/// anytime-valid monitor against the baseline, the alert lifecycle on its readings.
async fn watch<'b>(
    s: &Session<'_>,
    store: &mut Store,
    options: &DemoOptions,
    handle: &sim::SimHandle,
    mut w: Watch<'b>,
    progress: &dyn DemoProgress,
) -> Result<Watch<'b>, DemoError> {
    let mut degraded = false;
    let last = options.rounds_before_swap + options.max_rounds_after_swap;
    for round in 1..=last {
        if round == options.rounds_before_swap + 1 {
            handle.set_profile(with_latency("degraded", options.latency_scale));
            degraded = true;
            progress.event(&Event::SwapInjected { round });
        }
        let outcome = s.round().await;
        s.store(store, &outcome)?;
        let fp = outcome.fingerprint.as_ref().ok().map(|f| f.id());
        if let Some(id) = &fp {
            w.note_fingerprint(round, id, progress);
        }
        let fired = w
            .push_round(store, &outcome.samples, s.clock.now_ms())
            .map_err(|e| store_error(s.loaded, e))?;
        let evidence = w.evidence();
        let samples = w.samples();
        progress.event(&Event::Round(RoundReport {
            round,
            degraded,
            fingerprint: fp,
            samples,
            errors: outcome.errors(),
            evidence: evidence.clone(),
            threshold: w.monitor.threshold(),
        }));
        if let Some(metrics) = fired {
            let shown = evidence
                .into_iter()
                .filter(|e| metrics.contains(&e.metric))
                .collect();
            progress.event(&Event::Detected {
                round,
                samples,
                metrics: shown,
            });
            w.found = Some((metrics, samples));
            break;
        }
    }
    Ok(w)
}

/// Step 3: the report, the baseline against what was served since the swap (or since
/// monitoring began when no swap was seen), with the monitor's anytime-valid calls. Returns
/// its verdict.
fn write_report(
    base: &Baseline,
    w: &Watch,
    margins: &Margins,
    report_path: &Path,
    progress: &dyn DemoProgress,
) -> Result<Verdict, DemoError> {
    let mut report = drift::compare_with(&base.samples(), &w.since_swap, margins, &w.expect)
        .with_labels(
            &format!("baseline {}", base.fingerprint.id()),
            &format!("served {}", w.current_id),
        );
    for e in w.evidence() {
        if let Some(m) = report.metrics.iter_mut().find(|m| m.metric == e.metric) {
            m.e_value = Some(e.e_value);
        }
    }
    if let Some((metrics, n)) = &w.found {
        mark_regressed(&mut report, w, metrics, *n);
    }
    let html = crate::report::render(&report, crate::report::Format::Html, false);
    std::fs::write(report_path, html).map_err(|e| DemoError::Files {
        dir: report_path.to_path_buf(),
        source: e,
    })?;
    progress.event(&Event::ReportWritten {
        path: report_path.to_path_buf(),
    });
    Ok(report.verdict)
}

/// The monitor's regression call overrides the fixed-sample verdict: the regressed metrics are
/// marked, with their evidence, and the first reason says when the call came.
fn mark_regressed(report: &mut Report, w: &Watch, metrics: &[Metric], n: u64) {
    let mut reasons = Vec::new();
    for m in report.metrics.iter_mut() {
        if metrics.contains(&m.metric) {
            m.verdict = Verdict::Regression;
            reasons.push(format!(
                "regression (the daemon's monitor, {}): {}",
                crate::report::evidence(m.e_value.unwrap_or(f64::NAN), Some(w.monitor.threshold())),
                drift::describe(m)
            ));
        }
    }
    if report.verdict != Verdict::Regression {
        report.reasons = reasons;
    }
    report.verdict = Verdict::Regression;
    report.exit_code = Verdict::Regression.exit_code();
    let swap = if w.swapped_seen {
        "after the fingerprint swap"
    } else {
        "since monitoring began"
    };
    report
        .reasons
        .insert(0, format!("daemon monitor: alert fired {n} samples {swap}"));
}

/// Stores one round: fingerprint, round and samples.
fn store_round(
    store: &mut Store,
    target: &str,
    outcome: &RoundOutcome,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let fingerprint_id = match &outcome.fingerprint {
        Ok(fp) => {
            store.record_fingerprint(target, fp, outcome.started_at_ms)?;
            Some(fp.id())
        }
        Err(_) => None,
    };
    store.record_round(target, fingerprint_id.as_deref(), outcome, clock.now_ms())?;
    Ok(())
}
