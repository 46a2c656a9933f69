//! `modelwatch export`: stored responses of a target, round, probe or time window as JSONL, one
//! response per line, in the form `explain` reads as is (`probe` as `run` prints it,
//! `suite/id`; `text`; `finish_reason`; `output_tokens`), with where each came from (`target`,
//! `round`, `fingerprint`, `sample`, `started_at`, `latency_ms`).
//!
//! Failed requests have no response and are left out (counted on stderr); so are samples whose
//! text the retention already removed.

use super::{EXIT_INCONCLUSIVE, EXIT_USAGE, live};
use anyhow::Context;
use modelwatch::config::duration::{DURATION_EXPECTED, parse_duration};
use modelwatch::store::{HistoryQuery, RoundSample, Store};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this target's responses. Default: every target.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Only this round (its number, as `/api/v1/status` and the reports show it).
    #[arg(long, value_name = "ID")]
    pub round: Option<i64>,
    /// Only this probe: `suite/id` as `run` prints it, or a bare probe id.
    #[arg(long, value_name = "SUITE/ID")]
    pub probe: Option<String>,
    /// Only responses of the last DURATION (`90m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// One exported response.
#[derive(Debug, Serialize)]
struct Line<'a> {
    probe: String,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u32>,
    target: &'a str,
    round: i64,
    fingerprint: Option<&'a str>,
    sample: u32,
    started_at: String,
    latency_ms: f64,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let since_ms = match &args.since {
        Some(s) => match parse_duration(s) {
            Some(d) => Some(live::now_ms() - d.as_millis() as i64),
            None => {
                eprintln!("error: invalid duration `{s}` for --since: {DURATION_EXPECTED}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        None => None,
    };
    let loaded = match live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    if let Some(t) = &args.target {
        live::target(&loaded, t)?;
    }
    let (suite, probe_id) = match args.probe.as_deref().map(|p| p.split_once('/')) {
        Some(Some((s, p))) => (Some(s.to_string()), Some(p.to_string())),
        Some(None) => (None, args.probe.clone()),
        None => (None, None),
    };
    let path = &loaded.config.storage.path;
    if !path.exists() {
        eprintln!(
            "error: no sample store at {} ([storage] path); run `modelwatch run` first",
            path.display()
        );
        return Ok(ExitCode::from(EXIT_INCONCLUSIVE));
    }
    let store = Store::open_read_only(path)
        .with_context(|| format!("cannot open the sample store {}", path.display()))?;
    let query = HistoryQuery {
        target: args.target.clone(),
        since_ms,
        until_ms: None,
        round: args.round,
        suite,
        probe_id,
        skip_text: false,
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let counts = write_lines(&store, &query, &mut out)?;
    out.flush()?;
    eprintln!("{}", counts.summary());
    Ok(if counts.written == 0 {
        ExitCode::from(EXIT_INCONCLUSIVE)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Default)]
struct Counts {
    written: u64,
    errors: u64,
    pruned: u64,
}

impl Counts {
    fn summary(&self) -> String {
        let mut s = format!("exported {} responses", self.written);
        if self.errors > 0 {
            s.push_str(&format!(
                "; {} failed requests left out (no response)",
                self.errors
            ));
        }
        if self.pruned > 0 {
            s.push_str(&format!(
                "; {} responses left out whose text the retention removed (raw_text_retention)",
                self.pruned
            ));
        }
        if self.written == 0 {
            s.push_str("; nothing matched: check --target, --round, --probe and --since");
        }
        s
    }
}

/// Streams the matching samples as lines; a write error stops the query and is returned.
fn write_lines(store: &Store, query: &HistoryQuery, out: &mut dyn Write) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    let mut failed: Option<std::io::Error> = None;
    store.history(query, |r| match line(&r) {
        Ok(Some(l)) => {
            let written = serde_json::to_writer(&mut *out, &l)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            match written {
                Ok(()) => {
                    counts.written += 1;
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        }
        Ok(None) => {
            counts.pruned += 1;
            true
        }
        Err(()) => {
            counts.errors += 1;
            true
        }
    })?;
    if let Some(e) = failed {
        return Err(e).context("cannot write the exported responses");
    }
    Ok(counts)
}

/// The line of a sample: `Err` for a failed request, `None` when its text is gone.
fn line(r: &RoundSample) -> Result<Option<Line<'_>>, ()> {
    let s = &r.sample;
    if s.error.is_some() {
        return Err(());
    }
    let Some(text) = s.text.as_deref() else {
        return Ok(None);
    };
    Ok(Some(Line {
        probe: format!("{}/{}", s.suite, s.probe_id),
        text,
        finish_reason: s.finish_reason.as_ref().map(|f| f.as_str()),
        // An estimate is left out: `explain` estimates it again by the same rule.
        output_tokens: s
            .measurements
            .as_ref()
            .filter(|m| !m.tokens_estimated)
            .map(|m| m.output_tokens),
        target: &s.target,
        round: r.round.0,
        fingerprint: r.fingerprint.as_deref(),
        sample: s.index,
        started_at: modelwatch::time::rfc3339_utc(s.started_at_ms),
        latency_ms: s.latency_ms,
    }))
}
