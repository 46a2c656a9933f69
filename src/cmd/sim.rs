//! `modelwatch sim`: serve the built-in simulated model server until SIGINT/SIGTERM; SIGHUP
//! re-reads the profile file.

use anyhow::Context;
use modelwatch::sim::{self, Profile};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:11435")]
    pub listen: SocketAddr,
    /// Profile (TOML file) describing the simulated model, or a built-in one: `healthy` (the
    /// default: the starter probes pass), `degraded` (a bad swap), `reworded` (other words,
    /// same fingerprint) or `raw` (no known answers: task and JSON probes fail).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Seed: the same seed, profile and requests give the same responses.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Reads a profile file; a name of a built-in profile that is not a file also works.
pub fn load(path: &Path) -> anyhow::Result<Profile> {
    if !path.exists()
        && let Some(p) = path.to_str().and_then(Profile::builtin)
    {
        return Ok(p);
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read simulator profile {}; give a profile file or a built-in name ({})",
            path.display(),
            Profile::builtin_names().collect::<Vec<_>>().join(", ")
        )
    })?;
    Profile::from_toml(&text).with_context(|| format!("in {}", path.display()))
}

pub fn exec(args: Args, _global: &super::Global) -> anyhow::Result<ExitCode> {
    let profile = match &args.profile {
        Some(path) => match load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        },
        None => Profile::builtin("healthy").context("the built-in healthy profile")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args, profile))
}

async fn run(args: Args, profile: Profile) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = sim::serve(listener, profile, args.seed);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "modelwatch sim listening on {}", handle.base_url())?;
        out.flush()?;
    }
    tracing::info!(addr = %handle.addr(), seed = args.seed, "simulator started");

    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    loop {
        tokio::select! {
            _ = hup.recv() => match &args.profile {
                Some(path) => match load(path) {
                    Ok(p) => {
                        let generation = handle.set_profile(p);
                        tracing::info!(generation, path = %path.display(), "profile reloaded");
                    }
                    Err(e) => tracing::error!("profile reload failed, keeping the old one: {e:#}"),
                },
                None => tracing::warn!("SIGHUP ignored: no --profile file to reload"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("simulator stopping");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
