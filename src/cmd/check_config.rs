//! `modelwatch check-config`: validates the configuration and every suite it references, prints
//! every error, exits 0 when valid and 2 otherwise. With `--connect` it then runs `doctor`'s
//! checks against every target and exits as `doctor` does. `--format json` prints one JSON
//! line for the configuration (then `doctor`'s lines), for scripts.

use super::OutputFormat;
use modelwatch::config::{self, Loaded};
use modelwatch::diag::{Diagnostic, render_all};
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also check every target's server, as `modelwatch doctor` does.
    #[arg(long)]
    pub connect: bool,
    #[command(flatten)]
    pub check: super::doctor::CheckArgs,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let json = args.check.format == OutputFormat::Json;
    let loaded = config::load_with_suites(&global.config, &config::process_env).and_then(|l| {
        match environment_error(&l) {
            Some(e) => Err(vec![Diagnostic::file(&global.config, e)]),
            None => Ok(l),
        }
    });
    let diags = match loaded {
        Ok(loaded) => {
            for w in &loaded.warnings {
                writeln!(stderr, "warning: {w}")?;
            }
            if json {
                writeln!(stdout, "{}", valid_json(global, &loaded))?;
            } else {
                writeln!(stdout, "{}", summary(&loaded))?;
            }
            if args.connect {
                drop(stdout);
                return super::doctor::check_all(&loaded, &args.check);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(diags) => diags,
    };
    write!(stderr, "{}", render_all(&diags))?;
    if json {
        writeln!(stdout, "{}", invalid_json(global, &diags))?;
    }
    let n = diags.len();
    if n == 1 && diags[0].line == 0 {
        // A file that could not be read: the one error says it all.
        super::hint_missing_config(&global.config);
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    writeln!(
        stderr,
        "error: {} not valid: {n} error{}",
        global.config.display(),
        if n == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::from(super::EXIT_USAGE))
}

/// "config OK: 2 targets, 3 suites, 31 probes".
fn summary(loaded: &Loaded) -> String {
    use super::count as plural;
    format!(
        "config OK: {}, {}, {}",
        plural(loaded.config.targets.len(), "target"),
        plural(loaded.suites.len(), "suite"),
        plural(loaded.probe_count(), "probe"),
    )
}

/// `{"config": …, "valid": true, "targets": 2, "suites": 3, "probes": 31, "warnings": […]}`.
fn valid_json(global: &super::Global, loaded: &Loaded) -> serde_json::Value {
    serde_json::json!({
        "config": global.config.display().to_string(),
        "valid": true,
        "targets": loaded.config.targets.len(),
        "suites": loaded.suites.len(),
        "probes": loaded.probe_count(),
        "warnings": loaded.warnings,
    })
}

/// `{"config": …, "valid": false, "errors": [{"file", "line", "column", "message", "help"}]}`:
/// positions are 1-based, 0 for an error about a whole file.
fn invalid_json(global: &super::Global, diags: &[Diagnostic]) -> serde_json::Value {
    let errors: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            serde_json::json!({
                "file": d.file.display().to_string(),
                "line": d.line,
                "column": d.column,
                "message": d.message,
                "help": d.help,
            })
        })
        .collect();
    serde_json::json!({
        "config": global.config.display().to_string(),
        "valid": false,
        "errors": errors,
    })
}

/// What the daemon would refuse at start that the file does not show: the OpenTelemetry
/// exporter's environment (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`, an unknown compression).
fn environment_error(loaded: &Loaded) -> Option<String> {
    loaded.config.telemetry.otlp.as_ref()?;
    let env = |k: &str| std::env::var(k).ok();
    modelwatch::telemetry::otlp::ExportSettings::from_env(&env)
        .err()
        .map(|e| format!("[telemetry.otlp] cannot export with this environment: {e}"))
}
