//! `modelwatch compare`: recent stored samples of a target against its baseline.

use super::baseline::Output;
use super::{EXIT_INCONCLUSIVE, EXIT_USAGE, live};
use modelwatch::baseline::Baseline;
use modelwatch::config::duration::{DURATION_EXPECTED, format_duration, parse_duration};
use modelwatch::drift::{self, Expectations};
use modelwatch::report;
use modelwatch::store::SampleQuery;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The window used when neither `--since` nor `--rounds` is given.
const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target whose recent samples are judged.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Baseline file. Default: the target's `baseline` key, else `baselines/<target>.json`.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Samples of the last DURATION (`90m`, `24h`, `7d`). Default: 24h.
    #[arg(long, value_name = "DURATION", conflicts_with = "rounds")]
    pub since: Option<String>,
    /// Samples of the newest N rounds instead of a time window.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: Option<u32>,
    #[command(flatten)]
    pub out: Output,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        Some(s) => match parse_duration(s) {
            Some(d) => Some(d),
            None => {
                eprintln!("error: invalid duration `{s}` for --since: {DURATION_EXPECTED}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        None if args.rounds.is_none() => Some(DEFAULT_SINCE),
        None => None,
    };

    let loaded = match live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let target = live::target(&loaded, &args.target)?;
    let suites = live::suites(&loaded, target);
    let path = args
        .baseline
        .clone()
        .unwrap_or_else(|| live::default_baseline(&loaded, target));
    let baseline = Baseline::load(&path)?;
    let compat = baseline.check(&suites)?;
    for w in compat.warnings() {
        eprintln!("warning: {w}");
    }
    if baseline.target != target.name {
        eprintln!(
            "warning: {} was recorded from target {}, compared here with target {}",
            path.display(),
            baseline.target,
            target.name
        );
    }
    let store = live::open_store(&loaded)?;
    let Some(fingerprint) = store.latest_fingerprint(&target.name)? else {
        eprintln!(
            "error: no rounds of target {} are stored in {}; run `modelwatch run --target {}` \
             first",
            target.name,
            loaded.config.storage.path.display(),
            target.name
        );
        return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
    };
    // Only probes whose content is unchanged since the baseline was recorded.
    let hashes: Vec<String> = suites
        .iter()
        .flat_map(|s| &s.probes)
        .filter(|p| {
            baseline
                .probes
                .get(&p.id)
                .is_some_and(|b| b.suite == p.suite && b.hash == p.hash)
        })
        .map(|p| p.hash.clone())
        .collect();
    let query = SampleQuery {
        target: Some(target.name.clone()),
        since_ms: since.map(|d| live::now_ms() - d.as_millis() as i64),
        fingerprint: Some(fingerprint.id.clone()),
        last_rounds: args.rounds,
        probe_hashes: Some(hashes),
        skip_text: false,
    };
    let recent = store.samples(&query)?;
    let window = match (since, args.rounds) {
        (Some(d), _) => format!("last {}", format_duration(d)),
        (None, Some(n)) => format!("last {n} rounds"),
        (None, None) => "all".into(),
    };
    if recent.is_empty() {
        eprintln!(
            "error: no stored samples of target {} ({window}, fingerprint {}) for the probes of \
             the baseline; run `modelwatch run --target {}` or widen the window with --since \
             or --rounds",
            target.name, fingerprint.id, target.name
        );
        return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
    }
    let mut expect = Expectations::from_suites(&suites);
    expect
        .refusal_expected
        .extend(baseline.expectations().refusal_expected);
    let report = drift::compare_with(
        &baseline.comparable_samples(&compat),
        &recent,
        &loaded.config.margins,
        &expect,
    )
    .with_labels(
        &super::baseline::file_label(&path),
        &format!("{} ({window})", target.name),
    );
    args.out
        .emit(&report::render(&report, args.out.format, args.out.color()))?;
    Ok(ExitCode::from(report.exit_code))
}
