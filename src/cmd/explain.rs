//! `modelwatch explain`: judge saved responses against a suite and print every measurement
//! with the reason for each judgement.

use super::OutputFormat;
use anyhow::Context;
use modelwatch::eval::explain::ProbeIds;
use modelwatch::eval::{self, CompiledChecks, Evaluator, RefusalConfig};
use modelwatch::probe::Suite;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suite file the responses answer (needed when lines name a `probe`).
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// Responses, one JSON object per line: {"probe": "<id>", "text": "...",
    /// "finish_reason": "stop"}; `-` reads standard input.
    #[arg(long, value_name = "FILE.jsonl")]
    pub responses: PathBuf,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Extra refusal pattern (regex), on top of the built-in lexicon. Repeatable.
    #[arg(long = "refusal-pattern", value_name = "REGEX")]
    pub refusal_patterns: Vec<String>,
    /// Refusal exclusion (regex): a trigger overlapping a match is ignored. Repeatable.
    #[arg(long = "refusal-exclusion", value_name = "REGEX")]
    pub refusal_exclusions: Vec<String>,
}

pub fn exec(args: Args, _global: &super::Global) -> anyhow::Result<ExitCode> {
    let evaluator = Evaluator::new(&RefusalConfig {
        extra_patterns: args.refusal_patterns,
        exclusions: args.refusal_exclusions,
    })?;
    let suite = args.suite.as_deref().map(read_suite).transpose()?;
    let (suite, compiled) = match suite {
        Some((s, compiled)) => {
            let ids = ProbeIds {
                suite: s.name.clone(),
                ids: s.probes.iter().map(|p| p.id.clone()).collect(),
            };
            (Some(ids), compiled)
        }
        None => (None, HashMap::new()),
    };
    let input = read_input(&args.responses)?;
    let explained = eval::explain::explain_lines(&evaluator, suite.as_ref(), &compiled, &input);

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in &explained.explanations {
        match args.format {
            OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(e)?)?,
            OutputFormat::Text => writeln!(out, "{}", eval::explain::render_text(e))?,
        }
    }
    out.flush()?;
    if explained.bad_lines.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &explained.bad_lines {
        eprintln!("error: in {}: {e}; line skipped", args.responses.display());
    }
    eprintln!(
        "{} of {} non-blank lines skipped; the others were judged",
        explained.bad_lines.len(),
        explained.bad_lines.len() + explained.explanations.len()
    );
    Ok(ExitCode::from(super::EXIT_USAGE))
}

/// Responses files larger than this are refused rather than read into memory.
const MAX_INPUT_BYTES: u64 = 1 << 30;

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let n = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut buf)
            .context("cannot read responses from standard input")?
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf))
            .with_context(|| format!("cannot read responses file {}", path.display()))?
    };
    if n as u64 > MAX_INPUT_BYTES {
        anyhow::bail!(
            "responses input {} is larger than {} MiB; split it into smaller files",
            path.display(),
            MAX_INPUT_BYTES >> 20
        );
    }
    Ok(buf)
}

/// Loads and validates a suite; errors are printed located, like `check-config`'s.
fn read_suite(path: &Path) -> anyhow::Result<(Suite, HashMap<String, CompiledChecks>)> {
    modelwatch::probe::load::load_suite_checked(path)
        .map_err(|diags| anyhow::anyhow!("invalid suite\n{}", modelwatch::diag::render_all(&diags)))
}
