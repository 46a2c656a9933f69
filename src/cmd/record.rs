//! `modelwatch baseline record`: sample a target until every probe has N samples, store them,
//! and freeze them into a baseline file.

use super::EXIT_INCONCLUSIVE;
use super::live;
use modelwatch::baseline::{self, Baseline, RecordInfo};
use modelwatch::provider::Fingerprint;
use modelwatch::runner::setup;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to record.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Samples per probe (default 80: the baseline's rates are the daemon's nulls, and more
    /// samples pin them closer).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: Option<u32>,
    /// Baseline file to write. Default: the target's `baseline` key, else
    /// `baselines/<target>.json` next to the configuration.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the baseline even when too many requests failed or the served model changed
    /// while recording.
    #[arg(long)]
    pub force: bool,
    /// Send no seed with probes that declare none (each request samples freely). By default
    /// they are sent seed 20240601 plus the sample index, so that `compare` can pair these
    /// samples with the baseline's on servers that honour `seed`.
    #[arg(long)]
    pub no_seed_pairing: bool,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    live::runtime()?.block_on(run(args, global))
}

async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let target = live::target(&loaded, &args.target)?;
    let suites = live::suites(&loaded, target);
    let samples = args.samples.unwrap_or(baseline::DEFAULT_SAMPLES_PER_PROBE);
    let info = |at_unix_ms| RecordInfo {
        at_unix_ms,
        samples_per_probe: samples,
        params: target.params.clone(),
    };
    // Checks the suites can form a baseline (unique probe ids) before sampling anything.
    Baseline::from_samples(&target.name, Fingerprint::default(), &suites, &[], info(0))?;
    let probes = setup::with_pair_seed(
        setup::target_probes(&loaded, target, &[]),
        (!args.no_seed_pairing).then_some(setup::PAIR_SEED),
    );
    if probes.is_empty() {
        anyhow::bail!("target '{}' has no probes to record", target.name);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| live::default_baseline(&loaded, target));
    let judge = live::Judge::new(&loaded)?;
    let mut store = live::open_store(&loaded)?;
    let rec = live::record(
        target,
        &probes,
        samples,
        &judge,
        &mut store,
        &format!("recording {}", target.name),
    )
    .await?;
    let all = rec.samples();

    let mut refusals = Vec::new();
    if let Err(e) = baseline::check_recording(&all, baseline::DEFAULT_MAX_ERROR_RATE) {
        refusals.push(e.to_string());
    }
    let ids: BTreeSet<String> = rec
        .rounds
        .iter()
        .filter_map(|r| r.fingerprint.as_ref().ok().map(|f| f.id()))
        .collect();
    if ids.len() > 1 {
        refusals.push(format!(
            "the served model changed while recording (fingerprints {}); record again once \
             the target is stable, or pass --force",
            ids.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let fingerprint = match rec.fingerprint() {
        Some(f) => f.clone(),
        None => {
            let why = rec
                .rounds
                .iter()
                .find_map(|r| r.fingerprint.as_ref().err())
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no round ran".into());
            refusals.push(format!(
                "could not read what the target serves ({why}); pass --force to record \
                 without a fingerprint"
            ));
            Fingerprint::default()
        }
    };
    if !refusals.is_empty() {
        if !args.force {
            for r in &refusals {
                eprintln!("error: not recording a baseline: {r}");
            }
            return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
        }
        for r in &refusals {
            eprintln!("warning: recording anyway (--force): {r}");
        }
    }
    let b = Baseline::from_samples(
        &target.name,
        fingerprint,
        &suites,
        &all,
        info(live::now_ms()),
    )?;
    b.save(&out)?;
    let (n, errors) = b.counts();
    println!(
        "recorded {n} samples ({errors} failed requests) of {} probes from target {} \
         (fingerprint {}) in {}: {}",
        b.probes.len(),
        b.target,
        b.fingerprint.id(),
        super::count(rec.rounds.len(), "round"),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
