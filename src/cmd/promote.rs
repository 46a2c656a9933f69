//! `modelwatch baseline promote --target T`: accept the model a target serves now.

use modelwatch::daemon::promote::{default_rounds, promote};
use modelwatch::runner::{Clock, SystemClock};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target whose current model becomes the baseline.
    #[arg(long)]
    pub target: String,
    /// How many of the newest stored rounds of the current model to freeze. Default: enough
    /// for 80 samples per probe, as `baseline record` takes (27 rounds at 3 per round).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rounds: Option<u32>,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match super::live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let rounds = match args.rounds {
        Some(r) => r,
        None => default_rounds(&loaded, &args.target)?,
    };
    let store = super::live::open_store(&loaded)?;
    let (b, path) = promote(&loaded, &store, &args.target, rounds, SystemClock.now_ms())?;
    let (n, errors) = b.counts();
    println!(
        "wrote {} ({} samples, {} errors) from fingerprint {}; a running daemon picks it up at \
         the next round",
        path.display(),
        n,
        errors,
        b.fingerprint.id()
    );
    Ok(ExitCode::SUCCESS)
}
