//! `modelwatch explain`: judge saved responses against a suite and print every measurement
//! with the reason for each judgement.
//!
//! The probes come from `--suite FILE`, else from every suite the configuration names (when
//! there is one). A line may name a probe as `run` prints it, `suite/id`, or by its bare id
//! when no other suite has one of that name; `modelwatch export` writes such lines.

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
    /// Suite file the responses answer. Default: the suites of the configuration (--config),
    /// when it exists.
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
    /// Ask the configuration's [judge] model about ambiguous judgements (a refusal phrase a
    /// guard set aside, the grammar layer deciding, a partial refusal) and report its agreement
    /// with the detector. Its labels are shown, never used as the measurement.
    #[arg(long)]
    pub judge: bool,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let evaluator = Evaluator::new(&RefusalConfig {
        extra_patterns: args.refusal_patterns,
        exclusions: args.refusal_exclusions,
    })?;
    let suites = match &args.suite {
        Some(path) => vec![read_suite(path)?],
        None => match config_suites(global) {
            Ok(s) => s,
            Err(code) => return Ok(code),
        },
    };
    let (suite, compiled) = if suites.is_empty() {
        (None, HashMap::new())
    } else {
        let (ids, compiled) = probe_table(&suites)?;
        (Some(ids), compiled)
    };
    let input = read_input(&args.responses)?;
    let explained = eval::explain::explain_lines(&evaluator, suite.as_ref(), &compiled, &input);
    let judged = match args.judge {
        false => None,
        true => match judge(global)? {
            Ok(mut j) => Some(super::explain_judge::judge_all(
                &mut j,
                &input,
                &explained.explanations,
            )?),
            Err(code) => return Ok(code),
        },
    };
    let note = |i: usize| judged.as_ref().and_then(|j| j.notes[i].as_ref());

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, e) in explained.explanations.iter().enumerate() {
        match args.format {
            OutputFormat::Json => {
                let mut v = serde_json::to_value(e)?;
                if let Some(n) = note(i) {
                    v["judge"] = serde_json::to_value(n)?;
                }
                writeln!(out, "{v}")?
            }
            OutputFormat::Text => {
                writeln!(out, "{}", eval::explain::render_text(e))?;
                if let Some(n) = note(i) {
                    writeln!(out, "{}", super::explain_judge::render(n))?;
                }
            }
        }
    }
    out.flush()?;
    if let Some(j) = &judged {
        eprintln!("{}", j.summary);
    }
    if explained.bad_lines.is_empty() && explained.explanations.is_empty() {
        // An empty file, or `export` that found nothing: not a clean bill of health.
        eprintln!(
            "error: no responses in {}: nothing was judged; give one JSON object per line \
             ({{\"probe\": \"<id>\", \"text\": \"...\"}})",
            args.responses.display()
        );
        return Ok(ExitCode::from(super::EXIT_INCONCLUSIVE));
    }
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

/// The configuration's judge, or the exit code after saying why there is none.
fn judge(
    global: &super::Global,
) -> anyhow::Result<Result<modelwatch::judge::ask::Judge, ExitCode>> {
    let loaded = match super::live::load(global) {
        Ok(l) => l,
        Err(code) => return Ok(Err(code)),
    };
    let Some(settings) = &loaded.config.judge else {
        eprintln!(
            "error: --judge needs a [judge] table in {} (base_url and model of an \
             OpenAI-compatible server); see docs/evaluation.md, \"The optional judge\"",
            global.config.display()
        );
        return Ok(Err(ExitCode::from(super::EXIT_USAGE)));
    };
    Ok(modelwatch::judge::ask::Judge::new(settings).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(super::EXIT_USAGE)
    }))
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
fn read_suite(path: &Path) -> anyhow::Result<Suite> {
    modelwatch::probe::load::load_suite_checked(path)
        .map(|(suite, _)| suite)
        .map_err(|diags| anyhow::anyhow!("invalid suite\n{}", modelwatch::diag::render_all(&diags)))
}

/// The suites of the configuration: none when no configuration was named and the default one
/// does not exist; its errors (printed) when it is invalid.
fn config_suites(global: &super::Global) -> Result<Vec<Suite>, ExitCode> {
    let named = global.config != Path::new(super::DEFAULT_CONFIG)
        || std::env::var_os("MODELWATCH_CONFIG").is_some();
    if !named && !global.config.exists() {
        return Ok(Vec::new());
    }
    super::live::load(global).map(|loaded| loaded.suites)
}

/// The probes lines may name, with their compiled checks: `suite/id` for every probe, and the
/// bare id of every probe whose id no other suite uses.
fn probe_table(suites: &[Suite]) -> anyhow::Result<(ProbeIds, HashMap<String, CompiledChecks>)> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for p in suites.iter().flat_map(|s| &s.probes) {
        *uses.entry(p.id.as_str()).or_default() += 1;
    }
    let mut ids = Vec::new();
    let mut compiled = HashMap::new();
    for suite in suites {
        let compile = || {
            modelwatch::probe::compile_suite(suite)
                .with_context(|| format!("suite {} ({})", suite.name, suite.path.display()))
        };
        for (id, checks) in compile()? {
            compiled.insert(format!("{}/{id}", suite.name), checks);
        }
        for (id, checks) in compile()? {
            if uses.get(id.as_str()) == Some(&1) {
                compiled.insert(id, checks);
            }
        }
        for p in &suite.probes {
            ids.push(format!("{}/{}", suite.name, p.id));
        }
    }
    // Bare ids first: with one suite, the list reads as its probes.
    let bare = suites
        .iter()
        .flat_map(|s| &s.probes)
        .filter(|p| uses.get(p.id.as_str()) == Some(&1))
        .map(|p| p.id.clone());
    let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
    let ids = ProbeIds {
        suite: names.join(", "),
        ids: bare.chain(ids).collect(),
    };
    Ok((ids, compiled))
}
