//! `modelwatch inventory`: every target with the model it actually serves, pin status,
//! baseline age and current verdict.

use super::OutputFormat;
use modelwatch::daemon::promote::inventory;
use modelwatch::runner::{Clock, SystemClock};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match super::live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let store = super::live::open_store(&loaded)?;
    let rows = inventory(&loaded, &store, SystemClock.now_ms())?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Text => {
            println!(
                "{:<20} {:<28} {:<17} {:<17} {:<11} {:<16} {:>8}  verdict",
                "target", "model", "fingerprint", "config", "pin", "approved by", "baseline"
            );
            for r in &rows {
                let age = match (r.baseline_age_days, r.baseline_matches_served) {
                    (Some(d), Some(false)) => format!("{d:.0}d*"),
                    (Some(d), _) => format!("{d:.0}d"),
                    _ => "none".into(),
                };
                let verdict = if r.firing.is_empty() {
                    r.verdict.clone()
                } else {
                    format!("{} ({})", r.verdict, r.firing.join(", "))
                };
                println!(
                    "{:<20} {:<28} {:<17} {:<17} {:<11} {:<16} {:>8}  {}",
                    r.target,
                    r.model,
                    r.fingerprint.as_deref().unwrap_or("-"),
                    r.config_digest.as_deref().unwrap_or("-"),
                    r.pin_status,
                    r.approved_by.as_deref().unwrap_or("-"),
                    age,
                    verdict
                );
            }
            if rows
                .iter()
                .any(|r| r.baseline_matches_served == Some(false))
            {
                println!("* baseline recorded from a different model than the one served now");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
