//! `modelwatch baseline record | show | list | diff`: recording baselines, and offline work
//! with stored baseline files.

use modelwatch::baseline::{Baseline, ProbeSummary, Summary};
use modelwatch::drift::Margins;
use modelwatch::report::{self, Format};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sample a target until every probe has N samples, store them and write a baseline file.
    /// Refuses (exit 3) when too many requests failed; --force overrides.
    Record(super::record::Args),
    /// Show one baseline: rates with intervals, length quantiles and a per-probe table.
    Show {
        /// The baseline file.
        file: PathBuf,
        #[command(flatten)]
        out: TableOutput,
    },
    /// List the baseline files in a directory.
    List {
        /// Directory holding baseline files (the same as `--dir`).
        #[arg(value_name = "DIR", conflicts_with = "dir")]
        path: Option<PathBuf>,
        /// Directory holding baseline files.
        #[arg(long, default_value = "baselines")]
        dir: PathBuf,
        #[command(flatten)]
        out: TableOutput,
    },
    /// Compare two stored baselines (A as reference, B as candidate) with the verdict
    /// machinery, no server needed. Exit code 0 pass, 1 regression, 3 inconclusive.
    Diff {
        /// Reference baseline.
        a: PathBuf,
        /// Candidate baseline.
        b: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Accept the model a target serves now: write its baseline from the stored samples of
    /// the current fingerprint.
    Promote(super::promote::Args),
}

#[derive(Debug, clap::Args)]
pub struct Output {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

/// The output options of `show` and `list`: tables, so no verdict formats.
#[derive(Debug, clap::Args)]
pub struct TableOutput {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    pub format: TableFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Text,
    Json,
    Markdown,
}

impl TableOutput {
    /// The same options as a report's, for writing.
    fn output(&self) -> Output {
        Output {
            format: match self.format {
                TableFormat::Text => Format::Text,
                TableFormat::Json => Format::Json,
                TableFormat::Markdown => Format::Markdown,
            },
            output: self.output.clone(),
            color: self.color,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

impl Output {
    pub(super) fn color(&self) -> bool {
        match self.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                self.output.is_none()
                    && modelwatch::report::use_color(std::io::stdout().is_terminal())
            }
        }
    }

    pub(super) fn emit(&self, text: &str) -> anyhow::Result<()> {
        match &self.output {
            Some(path) => std::fs::write(path, text).map_err(|e| {
                anyhow::anyhow!(
                    "cannot write {}: {e}; check the directory exists",
                    path.display()
                )
            }),
            None => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                Ok(())
            }
        }
    }
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Record(args) => super::record::exec(args, global),
        Command::Show { file, out } => {
            let out = out.output();
            let b = Baseline::load(&file)?;
            let s = b.summary();
            let text = match out.format {
                Format::Json => to_json(&s)?,
                Format::Markdown => show_markdown(&s),
                _ => show_text(&s),
            };
            out.emit(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List { path, dir, out } => {
            let out = out.output();
            let entries = list(&path.unwrap_or(dir))?;
            let text = match out.format {
                Format::Json => to_json(&entries)?,
                Format::Markdown => list_markdown(&entries),
                _ => list_text(&entries),
            };
            out.emit(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { a, b, out } => {
            let (ba, bb) = (Baseline::load(&a)?, Baseline::load(&b)?);
            if ba.suites.keys().ne(bb.suites.keys()) {
                tracing::warn!(
                    "{} and {} cover different suites; only probes present in both are compared",
                    a.display(),
                    b.display()
                );
            }
            // Compared probes have equal content hashes, hence equal expectations: the union
            // of both files' is exact.
            let mut expect = ba.expectations();
            expect
                .refusal_expected
                .extend(bb.expectations().refusal_expected);
            let margins = match margins_if_configured(global) {
                Ok(m) => m,
                Err(code) => return Ok(code),
            };
            // Paired by seed as `compare` is, so a diff of two files and the live comparison of
            // the same samples agree.
            let (mut report, pairing) =
                super::compare::against(&ba.samples(), &bb.samples(), &margins, &expect);
            report = report.with_labels(&file_label(&a), &file_label(&b));
            eprintln!("note: {pairing}");
            report.reasons.push(pairing);
            out.emit(&report::render(&report, out.format, out.color()))?;
            if out.output.is_some() {
                tracing::info!(verdict = %report.verdict, "report written");
            }
            Ok(ExitCode::from(report.exit_code))
        }
        Command::Promote(args) => super::promote::exec(args, global),
    }
}

/// The `[margins]` of the configuration when its file exists (a broken one is a usage error),
/// else the defaults: `baseline diff` needs no configuration.
fn margins_if_configured(global: &super::Global) -> Result<Margins, ExitCode> {
    if !global.config.is_file() {
        return Ok(Margins::default());
    }
    modelwatch::config::load(&global.config, &modelwatch::config::process_env)
        .map(|c| c.margins)
        .map_err(|diags| {
            eprint!("{}", modelwatch::diag::render_all(&diags));
            ExitCode::from(super::EXIT_USAGE)
        })
}

pub(super) fn file_label(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

/// A probe's refusal share, starred when the probe expects refusals.
fn refusal_cell(p: &ProbeSummary) -> String {
    let mut c = pct(p.refusal_rate);
    if p.refusal_expected {
        c.push('*');
    }
    c
}

fn show_text(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "baseline for target {} · model {} · fingerprint {} · recorded {}\n{} samples, {} \
         infrastructure errors\n",
        s.target, s.model, s.fingerprint_id, s.recorded_at, s.samples, s.errors
    );
    for m in &s.metrics {
        match (m.rate, m.quantiles) {
            (Some(r), _) => {
                let _ = writeln!(
                    o,
                    "  {:<26} {:>6}  [{} – {}]  n = {}",
                    m.metric,
                    pct(Some(r)),
                    pct(m.lower),
                    pct(m.upper),
                    m.n
                );
            }
            (None, Some(q)) => {
                let _ = writeln!(
                    o,
                    "  {:<26} p10 {:.0} · median {:.0} · p90 {:.0}  n = {}",
                    m.metric, q[0], q[1], q[2], m.n
                );
            }
            _ => {}
        }
    }
    let _ = writeln!(
        o,
        "\n  {:<34} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "probe", "samples", "errors", "refusal", "json fail", "task fail", "trunc", "chars"
    );
    for p in &s.probes {
        let _ = writeln!(
            o,
            "  {:<34} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
            format!("{}/{}", p.suite, p.id),
            p.samples,
            p.errors,
            refusal_cell(p),
            pct(p.structured_failure_rate),
            pct(p.task_failure_rate),
            pct(p.truncation_rate),
            p.median_chars
                .map(|c| format!("{c:.0}"))
                .unwrap_or_else(|| "–".into())
        );
    }
    if s.probes.iter().any(|p| p.refusal_expected) {
        o.push_str("\n  * the probe expects a refusal\n");
    }
    o
}

fn show_markdown(s: &Summary) -> String {
    let mut o = format!(
        "## Baseline `{}`\n\nModel {} · fingerprint `{}` · recorded {} · {} samples, {} errors\n\n\
         | Metric | Value | 95% interval / quantiles | n |\n|---|---|---|---|\n",
        s.target, s.model, s.fingerprint_id, s.recorded_at, s.samples, s.errors
    );
    for m in &s.metrics {
        let (value, extra) = match (m.rate, m.quantiles) {
            (Some(r), _) => (pct(Some(r)), format!("{} – {}", pct(m.lower), pct(m.upper))),
            (None, Some(q)) => (
                format!("median {:.0}", q[1]),
                format!("p10 {:.0}, p90 {:.0}", q[0], q[2]),
            ),
            _ => continue,
        };
        let _ = writeln!(o, "| {} | {value} | {extra} | {} |", m.metric, m.n);
    }
    o.push_str("\n| Probe | Samples | Errors | Refusal | JSON failures | Task failures | Median chars |\n|---|---|---|---|---|---|---|\n");
    for p in &s.probes {
        let _ = writeln!(
            o,
            "| {}/{} | {} | {} | {} | {} | {} | {} |",
            p.suite,
            p.id,
            p.samples,
            p.errors,
            refusal_cell(p),
            pct(p.structured_failure_rate),
            pct(p.task_failure_rate),
            p.median_chars
                .map(|c| format!("{c:.0}"))
                .unwrap_or_else(|| "–".into())
        );
    }
    o
}

/// One row of `baseline list`.
#[derive(Debug, serde::Serialize)]
struct Entry {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<usize>,
    /// Why the file could not be read as a baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn list(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot list {}: {e}; pass --dir with the directory holding baseline files",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| match Baseline::load(&p) {
            Ok(b) => Entry {
                file: p.display().to_string(),
                target: Some(b.target.clone()),
                fingerprint: Some(b.fingerprint.id()),
                model: Some(b.fingerprint.model.clone()),
                recorded_at: Some(b.recorded.at.clone()),
                probes: Some(b.probes.len()),
                samples: Some(b.counts().0),
                error: None,
            },
            Err(e) => Entry {
                file: p.display().to_string(),
                target: None,
                fingerprint: None,
                model: None,
                recorded_at: None,
                probes: None,
                samples: None,
                error: Some(e.to_string()),
            },
        })
        .collect())
}

fn list_text(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "no baseline files\n".into();
    }
    let mut o = String::new();
    for e in entries {
        let _ = match &e.error {
            Some(err) => writeln!(o, "{}  (unreadable: {err})", e.file),
            None => writeln!(
                o,
                "{}  target {} · model {} · fingerprint {} · recorded {} · {} probes, {} samples",
                e.file,
                e.target.as_deref().unwrap_or(""),
                e.model.as_deref().unwrap_or(""),
                e.fingerprint.as_deref().unwrap_or(""),
                e.recorded_at.as_deref().unwrap_or(""),
                e.probes.unwrap_or(0),
                e.samples.unwrap_or(0)
            ),
        };
    }
    o
}

fn list_markdown(entries: &[Entry]) -> String {
    let mut o = String::from(
        "| File | Target | Model | Fingerprint | Recorded | Probes | Samples |\n|---|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            e.file,
            e.target.as_deref().unwrap_or("–"),
            e.model.as_deref().unwrap_or("–"),
            e.fingerprint.as_deref().unwrap_or("–"),
            e.recorded_at.as_deref().unwrap_or("–"),
            e.probes
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into()),
            e.error.as_deref().map_or_else(
                || e.samples.unwrap_or(0).to_string(),
                |err| format!("unreadable: {}", err.replace('|', "\\|"))
            )
        );
    }
    o
}
