//! The one-command demo: the built-in simulator serves a healthy model, a baseline is recorded,
//! monitoring rounds compare it with the baseline, the simulator is swapped to a degraded model
//! mid-way, and the anytime-valid canary monitor says as soon as the evidence suffices.
//!
//! Everything runs in-process against real HTTP on 127.0.0.1; what happens is told to a
//! [`DemoProgress`] so the CLI can show it live and tests can watch it silently.

use crate::baseline::{self, Baseline, RecordInfo};
use crate::config::{self, Loaded};
use crate::diag;
use crate::drift::{self, CanaryMonitor, Early, Expectations, Metric, Verdict};
use crate::eval::{Evaluator, RefusalConfig};
use crate::probe::Probe;
use crate::runner::{self, Clock, RoundOptions, RoundOutcome, SystemClock, recording, setup};
use crate::sample::{Completion, Sample};
use crate::sim::{self, Profile};
use crate::store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// The monitor showed a regression after `samples` post-swap samples; `metrics` are those
    /// regressed by the end of that round, with their e-values then.
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

async fn monitor(
    options: &DemoOptions,
    loaded: &Loaded,
    handle: &sim::SimHandle,
    baseline_path: &Path,
    report_path: &Path,
    progress: &dyn DemoProgress,
) -> Result<Monitored, DemoError> {
    let target = loaded
        .config
        .targets
        .first()
        .ok_or_else(|| DemoError::Setup("no target".into()))?;
    let suites: Vec<_> = loaded.target_suites(target).cloned().collect();
    let probes = setup::target_probes(loaded, target, &[]);
    let evaluator =
        Evaluator::new(&RefusalConfig::default()).map_err(|e| DemoError::Setup(e.to_string()))?;
    let checks = loaded.checks.clone();
    let evaluate = |p: &Probe, c: &Completion| evaluator.evaluate(c, checks.get(&p.hash));
    let client = setup::build_client(target).map_err(|e| DemoError::Setup(e.to_string()))?;
    let store_err = |e: anyhow::Error| DemoError::Store {
        path: loaded.config.storage.path.clone(),
        message: format!("{e:#}"),
    };
    let mut store =
        Store::open(&loaded.config.storage.path).map_err(|e| store_err(anyhow::Error::new(e)))?;
    let clock = SystemClock;
    let round_options = RoundOptions {
        target: target.name.clone(),
        concurrency: target.max_concurrency as usize,
        stream: target.stream,
        samples_override: None,
        keep_text: true,
    };

    // 1. The baseline.
    let total = probes.len() * options.baseline_samples as usize;
    let mut rounds = Vec::new();
    let rec = recording::record(
        client.as_ref(),
        &probes,
        options.baseline_samples,
        &round_options,
        &evaluate,
        &clock,
        &|done| progress.event(&Event::Recording { done, total }),
        &mut |round| rounds.push(round.clone()),
    )
    .await;
    for round in &rounds {
        store_round(&mut store, &target.name, round, &clock).map_err(store_err)?;
    }
    let base_samples = rec.samples();
    baseline::check_recording(&base_samples, baseline::DEFAULT_MAX_ERROR_RATE)
        .map_err(|e| DemoError::Baseline(e.to_string()))?;
    let fingerprint = rec
        .fingerprint()
        .cloned()
        .ok_or_else(|| DemoError::Baseline("the simulator's fingerprint was unreadable".into()))?;
    let base = Baseline::from_samples(
        &target.name,
        fingerprint,
        &suites,
        &base_samples,
        RecordInfo {
            at_unix_ms: clock.now_ms(),
            samples_per_probe: options.baseline_samples,
            params: target.params.clone(),
        },
    )
    .map_err(|e| DemoError::Baseline(e.to_string()))?;
    base.save(baseline_path)
        .map_err(|e| DemoError::Baseline(e.to_string()))?;
    let base_id = base.fingerprint.id();
    progress.event(&Event::BaselineSaved {
        path: baseline_path.to_path_buf(),
        samples: base_samples.len(),
        fingerprint: base_id.clone(),
    });

    // 2. Monitoring: each round pairs every probe's sample with a baseline sample of the same
    // probe, so the paired anytime-valid monitor tests "no worse than the baseline".
    let by_probe: HashMap<(&str, &str), Vec<&Sample>> =
        base_samples.iter().fold(HashMap::new(), |mut m, s| {
            m.entry((s.suite.as_str(), s.probe_id.as_str()))
                .or_default()
                .push(s);
            m
        });
    let margins = &loaded.config.margins;
    let mut expect = Expectations::from_suites(&suites);
    expect
        .refusal_expected
        .extend(base.expectations().refusal_expected);
    let threshold = 6.0 / margins.alpha;
    let mut mon = CanaryMonitor::new(margins);
    let mut current_id = base_id.clone();
    let mut since_swap: Vec<Sample> = Vec::new();
    let mut degraded = false;
    let mut swapped_seen = false;
    let last = options.rounds_before_swap + options.max_rounds_after_swap;
    let mut found: Option<(Vec<Metric>, u64)> = None;
    // One sample per probe and round, as a daemon's light monitoring round would take.
    let monitor_options = RoundOptions {
        samples_override: Some(1),
        ..round_options.clone()
    };
    for round in 1..=last {
        if round == options.rounds_before_swap + 1 {
            handle.set_profile(with_latency("degraded", options.latency_scale));
            degraded = true;
            progress.event(&Event::SwapInjected { round });
        }
        let outcome = runner::run_round(
            client.as_ref(),
            &probes,
            &monitor_options,
            &evaluate,
            &clock,
        )
        .await;
        store_round(&mut store, &target.name, &outcome, &clock).map_err(store_err)?;
        let fp = outcome.fingerprint.as_ref().ok().map(|f| f.id());
        if let Some(id) = &fp
            && *id != current_id
        {
            progress.event(&Event::SwapSeen {
                round,
                previous: current_id.clone(),
                current: id.clone(),
            });
            // A new model: its evidence starts from nothing.
            current_id = id.clone();
            mon = CanaryMonitor::new(margins);
            since_swap.clear();
            swapped_seen = true;
        }
        let slot = (round - 1) as usize;
        let mut first_call: Option<(Vec<Metric>, u64)> = None;
        for s in &outcome.samples {
            if let Some(b) = by_probe
                .get(&(s.suite.as_str(), s.probe_id.as_str()))
                .and_then(|v| v.get(slot % v.len().max(1)))
            {
                mon.push(b, s, &expect);
                // Checked after every pair, so the count says exactly when it sufficed.
                if first_call.is_none()
                    && let Early::Regression(metrics) = mon.decision()
                {
                    first_call = Some((metrics, mon.pairs()));
                }
            }
        }
        since_swap.extend(outcome.samples.iter().cloned());
        let evidence: Vec<Evidence> = [
            Metric::RefusalRate,
            Metric::StructuredFailureRate,
            Metric::TaskFailureRate,
            Metric::TruncationRate,
            Metric::EmptyRate,
        ]
        .iter()
        .filter_map(|&m| {
            mon.e_value(m)
                .map(|e_value| Evidence { metric: m, e_value })
        })
        .collect();
        progress.event(&Event::Round(RoundReport {
            round,
            degraded,
            fingerprint: fp,
            samples: mon.pairs(),
            errors: outcome.errors(),
            evidence: evidence.clone(),
            threshold,
        }));
        if let Some((first, n)) = first_call {
            // Every metric shown regressed by the end of the round, not just the first.
            let metrics = match mon.decision() {
                Early::Regression(all) => all,
                _ => first,
            };
            let shown = evidence
                .into_iter()
                .filter(|e| metrics.contains(&e.metric))
                .collect();
            progress.event(&Event::Detected {
                round,
                samples: n,
                metrics: shown,
            });
            found = Some((metrics, n));
            break;
        }
    }

    // 3. The report: the baseline against what was served since the swap (or since monitoring
    // began when no swap was seen), with the monitor's anytime-valid calls.
    let mut report = drift::compare_with(&base.samples(), &since_swap, margins, &expect)
        .with_labels(
            &format!("baseline {base_id}"),
            &format!("served {current_id}"),
        );
    for m in &mut report.metrics {
        if let Some(e) = mon.e_value(m.metric) {
            m.e_value = Some(e);
        }
    }
    if let Some((metrics, n)) = &found {
        let mut reasons = Vec::new();
        for m in report.metrics.iter_mut() {
            if metrics.contains(&m.metric) {
                m.verdict = Verdict::Regression;
                reasons.push(format!(
                    "regression (anytime-valid, {}): {}",
                    crate::report::evidence(m.e_value.unwrap_or(f64::NAN), Some(mon.threshold())),
                    drift::describe(m)
                ));
            }
        }
        if report.verdict != Verdict::Regression {
            report.reasons = reasons;
        }
        report.verdict = Verdict::Regression;
        report.exit_code = Verdict::Regression.exit_code();
        let swap = if swapped_seen {
            "after the fingerprint swap"
        } else {
            "since monitoring began"
        };
        report.reasons.insert(
            0,
            format!("demo monitor: regression shown {n} samples {swap}"),
        );
    }
    let html = crate::report::render(&report, crate::report::Format::Html, false);
    std::fs::write(report_path, html).map_err(|e| DemoError::Files {
        dir: report_path.to_path_buf(),
        source: e,
    })?;
    progress.event(&Event::ReportWritten {
        path: report_path.to_path_buf(),
    });
    let (detected, regressed, n) = match found {
        Some((m, n)) => (true, m, Some(n)),
        None => (false, Vec::new(), None),
    };
    Ok((detected, regressed, n, report.verdict))
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
