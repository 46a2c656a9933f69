//! `modelwatch run`: one round against the selected targets, stored, then summarised.
//!
//! With `--sim`, the built-in simulated model server is started in-process and probed through
//! both provider APIs with the starter probes, so the whole pipeline runs with no server and no
//! configuration file.

use super::{EXIT_INCONCLUSIVE, EXIT_USAGE, OutputFormat};
use anyhow::Context;
use modelwatch::config::{self, Loaded};
use modelwatch::demo::STARTER_SUITES;
use modelwatch::diag;
use modelwatch::eval::{Evaluator, RefusalConfig};
use modelwatch::probe::Probe;
use modelwatch::report::summary;
use modelwatch::runner::{self, Clock, RoundOptions, RoundOutcome, SystemClock, breaker, setup};
use modelwatch::sim;
use modelwatch::store::{FingerprintChange, Store};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this target (repeatable). Default: every target in the configuration.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Only this suite (repeatable). Default: every suite of each target.
    #[arg(long = "suite", value_name = "NAME")]
    pub suites: Vec<String>,
    /// Samples per probe, overriding suites and targets.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub samples: Option<u32>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Text output: one line per probe instead of the compact table (total, then per suite).
    #[arg(long)]
    pub probes: bool,
    /// Ignore the configuration: start the built-in simulator and probe it with the starter
    /// probes through both the Ollama and the OpenAI API. Samples go to `modelwatch-sim.db`.
    #[arg(long)]
    pub sim: bool,
    /// With `--sim`: the simulator profile, a TOML file or a built-in name (`healthy`,
    /// `degraded`, `reworded`, `raw`). Default: `healthy`.
    #[arg(long, value_name = "FILE", requires = "sim")]
    pub sim_profile: Option<PathBuf>,
    /// With `--sim`: the simulator's seed.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "sim")]
    pub sim_seed: u64,
    /// Send no seed with probes that declare none (each request samples freely). By default
    /// they are sent seed 20240601 plus the sample index, so that `compare` can pair these
    /// samples with the baseline's on servers that honour `seed`.
    #[arg(long)]
    pub no_seed_pairing: bool,
}

pub fn exec(args: Args, _global: &super::Global) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args, _global))
}

async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    // Keeps the simulator and its temporary probe folder alive for the whole round.
    let mut _sim_guard = None;
    let loaded = if args.sim {
        let (loaded, guard) = sim_setup(&args).await?;
        _sim_guard = Some(guard);
        loaded
    } else {
        match config::load_with_suites(&global.config, &config::process_env) {
            Ok(l) => {
                for w in &l.warnings {
                    eprintln!("warning: {w}");
                }
                l
            }
            Err(diags) => {
                eprint!("{}", diag::render_all(&diags));
                super::hint_missing_config(&global.config);
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        }
    };

    let targets = match selected_targets(&loaded.config, &args.targets) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };

    let evaluator = Evaluator::new(&RefusalConfig::default())?;
    let checks = loaded.checks.clone();

    let mut store = super::live::open_store(&loaded)?;

    let clock = SystemClock;
    let evaluate = |probe: &Probe, completion: &modelwatch::sample::Completion| {
        evaluator.evaluate(completion, checks.get(&probe.hash))
    };
    let mut rounds = Vec::new();
    for target in &targets {
        let probes = setup::with_pair_seed(
            setup::target_probes(&loaded, target, &args.suites),
            (!args.no_seed_pairing).then_some(setup::PAIR_SEED),
        );
        if probes.is_empty() {
            tracing::warn!(target = %target.name, "no probes selected; skipping");
            continue;
        }
        let client = setup::build_client(target)?;
        let options = RoundOptions {
            target: target.name.clone(),
            concurrency: target.max_concurrency as usize,
            stream: target.stream,
            samples_override: args.samples,
            keep_text: true,
        };
        rounds.push(async move {
            let outcome =
                runner::run_round(client.as_ref(), &probes, &options, &evaluate, &clock).await;
            (*target, outcome)
        });
    }
    let outcomes = futures_util::future::join_all(rounds).await;

    let mut all_samples = Vec::new();
    // Why each target that measured nothing failed, in one line each.
    let mut failures = Vec::new();
    let mut served = Vec::new();
    // A store that cannot take a round (locked, full) loses that round, not the others, nor
    // the results printed below.
    let mut unstored = Vec::new();
    let mut stored_samples = 0;
    for (target, outcome) in outcomes {
        match store_round(&mut store, &target.name, &outcome, &clock) {
            Ok(()) => stored_samples += outcome.samples.len(),
            Err(e) => unstored.push(format!(
                "cannot store the round of target {} in {}: {e:#}; its results are printed but \
                 not stored",
                target.name,
                loaded.config.storage.path.display()
            )),
        }
        failures.extend(breaker::failure_line(
            &target.name,
            &target.base_url,
            &outcome,
        ));
        if let Ok(fp) = &outcome.fingerprint {
            served.push(format!(
                "{}: fingerprint {}, config {}",
                target.name,
                fp.id(),
                fp.config_digest().unwrap_or_else(|| "not published".into())
            ));
        }
        all_samples.extend(outcome.samples);
    }

    let summary = summary::summarize(&all_samples);
    let stored = Stored {
        samples: stored_samples,
        path: &loaded.config.storage.path,
        served: &served,
        failures: &failures,
    };
    let code = report(&args, &summary, &stored)?;
    if unstored.is_empty() {
        return Ok(code);
    }
    for line in &unstored {
        eprintln!("error: {line}");
    }
    Ok(ExitCode::from(super::EXIT_USAGE))
}

/// The targets named with `--target` (all when none is), or the exit code after saying which
/// name is unknown.
fn selected_targets<'c>(
    config: &'c config::Config,
    names: &[String],
) -> Result<Vec<&'c config::Target>, ExitCode> {
    if let Some(name) = names
        .iter()
        .find(|n| !config.targets.iter().any(|t| &t.name == *n))
    {
        let known: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        eprintln!(
            "error: no target named '{name}' in {}; targets: {}",
            config.path.display(),
            known.join(", ")
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    Ok(config
        .targets
        .iter()
        .filter(|t| names.is_empty() || names.contains(&t.name))
        .collect())
}

/// What a `run` stored and where its targets stood, for the final output.
struct Stored<'a> {
    samples: usize,
    path: &'a std::path::Path,
    /// `target: fingerprint …, config …` per target whose fingerprint was read.
    served: &'a [String],
    /// Why each target that measured nothing failed, one line each.
    failures: &'a [String],
}

/// Prints the summary (compact by default, per probe with `--probes`), then the cause of any
/// failed target; the exit code says whether anything was measured.
fn report(
    args: &Args,
    summary: &summary::RoundSummary,
    stored: &Stored,
) -> anyhow::Result<ExitCode> {
    match args.format {
        OutputFormat::Text => {
            // A table of nothing but errors says less than the cause below.
            let color = modelwatch::report::use_color(std::io::stdout().is_terminal());
            if summary.measured() > 0 {
                let table = if args.probes {
                    summary.render_text(color)
                } else {
                    summary.render_suites(color)
                };
                print!("{table}");
            }
            println!(
                "stored {} samples in {}",
                stored.samples,
                stored.path.display()
            );
            for line in stored.served {
                println!("served by {line}");
            }
        }
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(summary)?),
    }
    if summary.measured() == 0 {
        eprintln!("error: the round measured nothing: every request failed");
        for line in stored.failures {
            eprintln!("error: {line}");
        }
        return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
    }
    for line in stored.failures {
        eprintln!("warning: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Stores one target's round: its configuration (a change under the same model is logged as
/// `config_changed`), its fingerprint (a change is logged as a swap), the round and its
/// samples.
pub(super) fn store_round(
    store: &mut Store,
    target: &str,
    outcome: &RoundOutcome,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let fingerprint_id = match &outcome.fingerprint {
        Ok(fp) => {
            if let Some(c) = store.record_config(target, fp, outcome.started_at_ms)? {
                tracing::warn!(
                    target,
                    fingerprint = %c.fingerprint,
                    previous = %c.previous,
                    current = %c.current,
                    changed = %c.changed.join(","),
                    "the served configuration changed under the same model (config_changed)"
                );
            }
            match store.record_fingerprint(target, fp, outcome.started_at_ms)? {
                FingerprintChange::Swap { previous } => tracing::warn!(
                    target,
                    previous = %previous,
                    current = %fp.id(),
                    "the served model changed since the last round (swap)"
                ),
                FingerprintChange::First => {
                    tracing::info!(target, fingerprint = %fp.id(), "first fingerprint")
                }
                FingerprintChange::None => {}
            }
            Some(fp.id())
        }
        Err(e) => {
            tracing::warn!(target, error = %e, "could not read the fingerprint");
            None
        }
    };
    store.record_round(target, fingerprint_id.as_deref(), outcome, clock.now_ms())?;
    Ok(())
}

/// What `--sim` keeps alive while it runs.
struct SimGuard {
    _handle: sim::SimHandle,
    _dir: super::TempDir,
}

/// Starts the simulator and builds a configuration that probes it through both APIs.
async fn sim_setup(args: &Args) -> anyhow::Result<(Loaded, SimGuard)> {
    let profile = match &args.sim_profile {
        Some(path) => super::sim::load(path)?,
        None => sim::Profile::builtin("healthy").unwrap_or_default(),
    };
    let model = profile
        .models
        .first()
        .cloned()
        .unwrap_or_else(|| "sim".into());
    let handle = sim::spawn_on_free_port(profile, args.sim_seed)
        .context("cannot start the built-in simulator")?;
    let dir = super::TempDir::new("sim")?;
    let probes_dir = starter_probes_dir(dir.path())?;
    let db = std::env::current_dir()
        .context("cannot read the current directory")?
        .join("modelwatch-sim.db");
    let base_url = format!("http://{}", handle.addr());
    let text = format!(
        r#"# Written by `modelwatch run --sim`: the built-in simulator, probed through both APIs.
probes_dir = {probes:?}

[storage]
path = {db:?}

[[target]]
name = "sim-ollama"
provider = "ollama"
base_url = "{base_url}"
model = "{model}"
suites = ["core", "json", "tasks", "format", "multilingual"]

[[target]]
name = "sim-openai"
provider = "openai"
base_url = "{base_url}/v1"
model = "{model}"
suites = ["core", "json", "tasks", "format", "multilingual"]
"#,
        probes = probes_dir.display().to_string(),
        db = db.display().to_string(),
    );
    let config_path = dir.path().join("modelwatch-sim.toml");
    std::fs::write(&config_path, text)?;
    let loaded = config::load_with_suites(&config_path, &config::process_env).map_err(|d| {
        anyhow::anyhow!(
            "the built-in simulator config is invalid:\n{}",
            diag::render_all(&d)
        )
    })?;
    tracing::info!(address = %base_url, "built-in simulator listening");
    Ok((
        loaded,
        SimGuard {
            _handle: handle,
            _dir: dir,
        },
    ))
}

/// `./probes` when it holds the starter suites (so edits there take effect), else the embedded
/// copies written into `scratch`.
fn starter_probes_dir(scratch: &Path) -> anyhow::Result<PathBuf> {
    let local = PathBuf::from("probes");
    if STARTER_SUITES
        .iter()
        .all(|(name, _)| local.join(format!("{name}.toml")).is_file())
    {
        return Ok(std::fs::canonicalize(&local)?);
    }
    let dir = scratch.join("probes");
    modelwatch::demo::write_starter_probes(&dir)?;
    Ok(dir)
}
