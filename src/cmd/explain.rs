//! `modelwatch explain`: judge saved responses against a suite and print every measurement
//! with the reason for each judgement.

use super::OutputFormat;
use anyhow::Context;
use modelwatch::eval::{self, Evaluator, RefusalConfig};
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
    let compiled = match &suite {
        Some(s) => eval::compile_suite(s)?,
        None => HashMap::new(),
    };
    let input = read_input(&args.responses)?;
    let explanations = eval::explain::explain_jsonl(&evaluator, suite.as_ref(), &compiled, &input)
        .with_context(|| format!("in {}", args.responses.display()))?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in &explanations {
        match args.format {
            OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(e)?)?,
            OutputFormat::Text => writeln!(out, "{}", eval::explain::render_text(e))?,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read responses from standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read responses file {}", path.display()))
}

/// Loads and validates a suite; errors are printed located, like `check-config`'s.
fn read_suite(path: &Path) -> anyhow::Result<Suite> {
    modelwatch::probe::load::load_suite(path)
        .map_err(|diags| anyhow::anyhow!("invalid suite\n{}", modelwatch::diag::render_all(&diags)))
}
