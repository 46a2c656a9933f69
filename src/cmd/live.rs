//! What the live verdict commands (`baseline record`, `compare`, `canary`) share: loading the
//! configuration, finding targets, evaluating responses, recording and storing rounds.

use super::EXIT_USAGE;
use super::progress::Progress;
use anyhow::Context;
use modelwatch::config::{self, Loaded, Target};
use modelwatch::diag;
use modelwatch::eval::{CompiledChecks, Evaluator, RefusalConfig};
use modelwatch::probe::{Probe, Suite};
use modelwatch::runner::recording::{self, Recording};
use modelwatch::runner::{Clock, RoundOptions, SystemClock, setup};
use modelwatch::sample::{Completion, Measurements};
use modelwatch::store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The configuration with its suites; on errors they are printed and the usage exit code is
/// returned.
pub fn load(global: &super::Global) -> Result<Loaded, ExitCode> {
    let loaded =
        config::load_with_suites(&global.config, &config::process_env).map_err(|diags| {
            eprint!("{}", diag::render_all(&diags));
            super::hint_missing_config(&global.config);
            ExitCode::from(EXIT_USAGE)
        })?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded)
}

/// The named target, or an error naming the known ones.
pub fn target<'a>(loaded: &'a Loaded, name: &str) -> anyhow::Result<&'a Target> {
    loaded
        .config
        .targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = loaded
                .config
                .targets
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            anyhow::anyhow!(
                "no target named '{name}' in {}; targets: {}",
                loaded.config.path.display(),
                known.join(", ")
            )
        })
}

/// The suites a target runs, in its order.
pub fn suites(loaded: &Loaded, target: &Target) -> Vec<Suite> {
    loaded.target_suites(target).cloned().collect()
}

/// A target's baseline file: its `baseline` key, else `baselines/<target>.json` next to the
/// configuration.
pub fn default_baseline(loaded: &Loaded, target: &Target) -> PathBuf {
    target.baseline.clone().unwrap_or_else(|| {
        loaded
            .config
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join("baselines")
            .join(format!("{}.json", target.name))
    })
}

/// Evaluation with every probe's checks compiled once.
pub struct Judge {
    evaluator: Evaluator,
    checks: Arc<HashMap<String, CompiledChecks>>,
}

impl Judge {
    pub fn new(loaded: &Loaded) -> anyhow::Result<Judge> {
        let evaluator = Evaluator::new(&RefusalConfig::default())?;
        let checks = loaded.checks.clone();
        Ok(Judge { evaluator, checks })
    }

    pub fn evaluate(&self, probe: &Probe, completion: &Completion) -> Measurements {
        self.evaluator
            .evaluate(completion, self.checks.get(&probe.hash))
    }
}

pub fn open_store(loaded: &Loaded) -> anyhow::Result<Store> {
    Store::open(&loaded.config.storage.path).with_context(|| {
        format!(
            "cannot open the sample store {}",
            loaded.config.storage.path.display()
        )
    })
}

/// Records `samples` per probe of `probes` from `target` in rounds, each round stored, with a
/// progress display.
pub async fn record(
    target: &Target,
    probes: &[Arc<Probe>],
    samples: u32,
    judge: &Judge,
    store: &mut Store,
    label: &str,
) -> anyhow::Result<Recording> {
    let client = setup::build_client(target)?;
    let options = RoundOptions {
        target: target.name.clone(),
        concurrency: target.max_concurrency as usize,
        stream: target.stream,
        samples_override: None,
        keep_text: true,
    };
    let total = probes.len() * samples as usize;
    let progress = Progress::new(label, total);
    let evaluate = |p: &Probe, c: &Completion| judge.evaluate(p, c);
    let clock = SystemClock;
    let mut store_error = None;
    let rec = recording::record(
        client.as_ref(),
        probes,
        samples,
        &options,
        &evaluate,
        &clock,
        &|n| progress.update(n),
        &mut |round| {
            if store_error.is_none()
                && let Err(e) = super::run::store_round(store, &target.name, round, &clock)
            {
                store_error = Some(e);
            }
        },
    )
    .await;
    let all = rec.samples();
    let errors = all.iter().filter(|s| s.is_error()).count();
    progress.finish(&format!(
        "{} samples in {}, {errors} failed requests",
        all.len(),
        super::count(rec.rounds.len(), "round")
    ));
    if let Some(e) = store_error {
        return Err(e.context("cannot store the recorded samples"));
    }
    Ok(rec)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}
