//! `modelwatch compare`: recent stored samples of a target against its baseline.

use super::baseline::Output;
use super::{EXIT_INCONCLUSIVE, EXIT_USAGE, live};
use modelwatch::baseline::Baseline;
use modelwatch::config::duration::{DURATION_EXPECTED, format_duration, parse_duration};
use modelwatch::drift::{self, Expectations, Margins};
use modelwatch::report;
use modelwatch::sample::Sample;
use modelwatch::store::SampleQuery;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The window used when neither `--since` nor `--rounds` is given and the baseline's
/// recording time cannot be read.
const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target whose recent samples are judged.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Baseline file. Default: the target's `baseline` key, else `baselines/<target>.json`.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Samples of the last DURATION (`90m`, `24h`, `7d`). Default: the rounds since the
    /// baseline was recorded (never the baseline's own).
    #[arg(long, value_name = "DURATION", conflicts_with = "rounds")]
    pub since: Option<String>,
    /// Samples of the newest N rounds instead of a time window.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: Option<u32>,
    #[command(flatten)]
    pub out: Output,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let since = match parse_since(args.since.as_deref()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
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
    if !path.exists() {
        return Ok(missing_baseline(
            &target.name,
            &path,
            args.baseline.is_some(),
        ));
    }
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
    let hashes = unchanged(&suites, &baseline);
    let (since_ms, window) = window(since, args.rounds, &baseline.recorded.at);
    let excluded = other_fingerprints(&store, &target.name, since_ms, &fingerprint.id)?;
    let query = SampleQuery {
        target: Some(target.name.clone()),
        since_ms,
        fingerprint: Some(fingerprint.id.clone()),
        last_rounds: args.rounds,
        probe_hashes: Some(hashes),
        skip_text: false,
    };
    let recent = store.samples(&query)?;
    if let Some(note) = &excluded {
        eprintln!("note: {note}");
    }
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
    let (report, pairing) = against(
        &baseline.comparable_samples(&compat),
        &recent,
        &loaded.config.margins,
        &expect,
    );
    let mut report = report.with_labels(
        &super::baseline::file_label(&path),
        &format!("{} ({window})", target.name),
    );
    report.reasons.extend(excluded);
    eprintln!("note: {pairing}");
    report.reasons.push(pairing);
    let model_change = other_model(&baseline.fingerprint, &fingerprint.fingerprint);
    if let Some(note) = &model_change {
        eprintln!("note: {note}");
    }
    report.reasons.extend(model_change);
    args.out
        .emit(&report::render(&report, args.out.format, args.out.color()))?;
    Ok(ExitCode::from(report.exit_code))
}

/// Content hashes of the probes unchanged since the baseline was recorded: only those are
/// compared.
fn unchanged(suites: &[modelwatch::probe::Suite], baseline: &Baseline) -> Vec<String> {
    suites
        .iter()
        .flat_map(|s| &s.probes)
        .filter(|p| baseline.unchanged(p))
        .map(|p| p.hash.clone())
        .collect()
}

/// Later samples against baseline samples: paired by seed when enough of them pair, as two
/// independent sets otherwise; with the line that says which.
pub(super) fn against(
    baseline: &[Sample],
    recent: &[Sample],
    margins: &Margins,
    expect: &Expectations,
) -> (drift::Report, String) {
    let by_seed = drift::pair_by_seed(baseline, recent);
    if by_seed.usable() {
        let report = drift::compare_paired(&by_seed.baseline, &by_seed.recent, margins, expect);
        return (report, seed_pairing(&by_seed));
    }
    let (later, repeats) = drift::distinct_later(recent);
    let report = drift::compare_with(baseline, &later, margins, expect);
    let mut line = seed_pairing(&by_seed);
    if repeats > 0 {
        line.push_str(&format!(
            "; left out: {repeats} later samples repeating a seed a newer one was sent"
        ));
    }
    (report, line)
}

/// Whether the samples were judged pair by pair (same probe, same seed) or as two sets.
fn seed_pairing(p: &drift::SeedPairs) -> String {
    if p.usable() {
        let mut line = format!(
            "paired by seed: {} pairs of a baseline sample and a later one sent the same seed",
            p.pairs()
        );
        if p.repeated + p.unmatched > 0 {
            line.push_str(&format!(
                "; left out: {} later samples repeating a seed a newer round sent again, {} \
                 without a partner in the baseline",
                p.repeated, p.unmatched
            ));
        }
        line
    } else {
        format!(
            "judged as two independent sets: {} of the {} seeded baseline samples pair by \
             seed with a later one (pairing needs all of them, and half of the later samples; \
             `run` and `baseline record` send seeds unless --no-seed-pairing, the daemon does \
             not)",
            p.pairs(),
            p.baseline_seeded
        )
    }
}

/// Says so when the baseline was recorded from another model than the one judged (their
/// fingerprints differ): the comparison is then between two models, not a model and its past.
fn other_model(
    baseline: &modelwatch::provider::Fingerprint,
    judged: &modelwatch::provider::Fingerprint,
) -> Option<String> {
    let (b, j) = (baseline.id(), judged.id());
    (b != j).then(|| {
        format!(
            "different models: the baseline was recorded from {} (fingerprint {b}), the judged \
             samples come from {} (fingerprint {j})",
            baseline.model, judged.model
        )
    })
}

/// Rounds of the window served by another fingerprint than the one judged: excluded, and said.
fn other_fingerprints(
    store: &modelwatch::store::Store,
    target: &str,
    since_ms: Option<i64>,
    judged: &str,
) -> anyhow::Result<Option<String>> {
    let Some(since) = since_ms else {
        return Ok(None);
    };
    let others: Vec<_> = store
        .rounds(target, 100_000)?
        .into_iter()
        .filter(|r| r.started_at_ms >= since && r.fingerprint.as_deref() != Some(judged))
        .collect();
    if others.is_empty() {
        return Ok(None);
    }
    let samples: u64 = others.iter().map(|r| u64::from(r.samples)).sum();
    let mut ids: Vec<&str> = others
        .iter()
        .map(|r| r.fingerprint.as_deref().unwrap_or("unknown"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(format!(
        "{} round(s) ({samples} samples) in the window were served by another fingerprint ({}) \
         and are excluded; judged: fingerprint {judged}",
        others.len(),
        ids.join(", ")
    )))
}

/// Reads the RFC 3339 UTC time a baseline stores (`2026-11-26T16:30:00.123Z`) as unix
/// milliseconds (days-from-civil, H. Hinnant's algorithm, the inverse of
/// `baseline::rfc3339_utc`). None when it is not of that form.
fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60 + sec) * 1000) + ms)
}

/// `--since`, when given; a bad duration is reported.
fn parse_since(since: Option<&str>) -> Result<Option<Duration>, ExitCode> {
    let Some(s) = since else { return Ok(None) };
    match parse_duration(s) {
        Some(d) => Ok(Some(d)),
        None => {
            eprintln!("error: invalid duration `{s}` for --since: {DURATION_EXPECTED}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// A missing baseline file: says which path was tried and the command that records one.
fn missing_baseline(target: &str, path: &std::path::Path, explicit: bool) -> ExitCode {
    let out = if explicit {
        format!(" --out {}", path.display())
    } else {
        String::new()
    };
    eprintln!(
        "error: cannot read baseline {}: no such file, so target {target} has no baseline \
         yet\nhint: record one from the model as it serves now with `modelwatch baseline record \
         --target {target}{out}`",
        path.display(),
    );
    ExitCode::from(EXIT_USAGE)
}

/// Where the window of recent samples starts (`None`: the newest `--rounds` whatever their
/// time) and how to name it. Every window starts after the baseline's recording (`recorded_at`):
/// its own rounds, stored by `baseline record`, are never judged against it, whatever --since
/// or --rounds reach back to.
fn window(
    since: Option<std::time::Duration>,
    rounds: Option<u32>,
    recorded_at: &str,
) -> (Option<i64>, String) {
    let floor = parse_rfc3339_utc(recorded_at).map(|at| at + 1);
    match (since, rounds) {
        (Some(d), _) => {
            let from = live::now_ms() - d.as_millis() as i64;
            if floor.is_some_and(|f| f > from) {
                eprintln!(
                    "note: the window starts when the baseline was recorded ({recorded_at}), not \
                     {} ago: its own rounds are not judged against it",
                    format_duration(d)
                );
            }
            let since_ms = floor.map_or(from, |f| f.max(from));
            (Some(since_ms), format!("last {}", format_duration(d)))
        }
        (None, Some(n)) => (floor, format!("last {}", super::count(n as usize, "round"))),
        (None, None) if floor.is_some() => (floor, format!("since the baseline, {recorded_at}")),
        (None, None) => (
            Some(live::now_ms() - DEFAULT_SINCE.as_millis() as i64),
            format!("last {}", format_duration(DEFAULT_SINCE)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_times_round_trip() {
        for ms in [0i64, 1_764_174_600_123, 951_782_400_000, 4_102_444_799_999] {
            let text = modelwatch::baseline::rfc3339_utc(ms);
            assert_eq!(parse_rfc3339_utc(&text), Some(ms), "{text}");
        }
        assert_eq!(parse_rfc3339_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("yesterday"), None);
        assert_eq!(
            parse_rfc3339_utc("2026-11-26T16:30:00Z"),
            parse_rfc3339_utc("2026-11-26T16:30:00.000Z")
        );
    }
}
