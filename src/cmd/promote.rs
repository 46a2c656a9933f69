//! `modelwatch baseline promote --target T`: accept the model a target serves now.

use super::EXIT_USAGE;
use anyhow::Context;
use modelwatch::config;
use modelwatch::daemon::promote::promote;
use modelwatch::diag;
use modelwatch::runner::{Clock, SystemClock};
use modelwatch::store::Store;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target whose current model becomes the baseline.
    #[arg(long)]
    pub target: String,
    /// How many of the newest stored rounds of the current model to freeze.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rounds: u32,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match config::load_with_suites(&global.config, &config::process_env) {
        Ok(l) => l,
        Err(diags) => {
            eprint!("{}", diag::render_all(&diags));
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let store = Store::open(&loaded.config.storage.path).with_context(|| {
        format!(
            "cannot open the sample store {}",
            loaded.config.storage.path.display()
        )
    })?;
    let (b, path) = promote(
        &loaded,
        &store,
        &args.target,
        args.rounds,
        SystemClock.now_ms(),
    )?;
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
