//! `modelwatch report`: the time view of stored rounds as a file: per target each metric round
//! by round, swaps, alerts with their evidence, and the alert states as the current verdicts;
//! the same page the daemon serves at `/`, over a chosen window.

use super::{EXIT_INCONCLUSIVE, EXIT_USAGE, live};
use anyhow::Context;
use modelwatch::config::duration::{DURATION_EXPECTED, format_duration, parse_duration};
use modelwatch::report::timeline::{Timeline, attach_baselines, verdicts_from_alerts};
use modelwatch::report::timeline_html;
use modelwatch::report::timeline_load::{TargetInfo, load_target};
use modelwatch::store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to show (repeatable). Default: every target of the configuration.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// The window: rounds of the last DURATION (`24h`, `7d`).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub since: String,
    /// At most this many rounds per target (the newest).
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rounds: u32,
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let Some(since) = parse_duration(&args.since) else {
        eprintln!(
            "error: invalid duration `{}` for --since: {DURATION_EXPECTED}",
            args.since
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let loaded = match live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut targets = Vec::new();
    for name in &args.targets {
        targets.push(live::target(&loaded, name)?);
    }
    if targets.is_empty() {
        targets = loaded.config.targets.iter().collect();
    }
    let path = &loaded.config.storage.path;
    if !path.exists() {
        eprintln!(
            "error: no sample store at {} ([storage] path); run `modelwatch run` or the daemon \
             first",
            path.display()
        );
        return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
    }
    let store = Store::open_read_only(path)
        .with_context(|| format!("cannot open the sample store {}", path.display()))?;
    let now = live::now_ms();
    let since_ms = now - since.as_millis() as i64;
    let expected = |hash: &str| {
        loaded
            .checks
            .get(hash)
            .is_some_and(|c| c.expect_refusal == Some(true))
    };
    let states = store.alert_states()?;
    let mut timelines = Vec::new();
    for t in &targets {
        let info = TargetInfo {
            name: t.name.clone(),
            model: t.model.clone(),
            fingerprint: None,
        };
        let mut tl = load_target(&store, &info, Some(since_ms), args.rounds, &expected)?;
        tl.verdicts = verdicts_from_alerts(&states, &t.name);
        attach_baselines(&mut tl);
        timelines.push(tl);
    }
    let rounds: usize = timelines.iter().map(|t| t.rounds.len()).sum();
    let page = Timeline {
        title: "modelwatch report over time".into(),
        window: format!(
            "last {} (at most {} rounds per target)",
            format_duration(since),
            args.rounds
        ),
        generated_at_ms: now,
        targets: timelines,
        links: Vec::new(),
    };
    let text = match args.format {
        Format::Html => timeline_html(&page, None),
        Format::Json => serde_json::to_string_pretty(&page)? + "\n",
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("wrote {} ({rounds} rounds)", p.display());
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    if rounds == 0 {
        eprintln!(
            "note: no rounds stored in the last {}; widen --since or check the targets",
            format_duration(since)
        );
        return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
    }
    Ok(ExitCode::SUCCESS)
}
