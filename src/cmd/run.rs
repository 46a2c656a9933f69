//! (in progress)
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, _global: &super::Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
