//! `modelwatch check-config`: validates the configuration and every suite it references, prints
//! every error, exits 0 when valid and 2 otherwise. With `--connect` it then runs `doctor`'s
//! checks against every target and exits as `doctor` does.

use modelwatch::config::{self, Loaded};
use modelwatch::diag::render_all;
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
    let diags = match config::load_with_suites(&global.config, &config::process_env) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                writeln!(stderr, "warning: {w}")?;
            }
            writeln!(stdout, "{}", summary(&loaded))?;
            if args.connect {
                drop(stdout);
                return super::doctor::check_all(&loaded, &args.check);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(diags) => diags,
    };
    write!(stderr, "{}", render_all(&diags))?;
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
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "config OK: {}, {}, {}",
        plural(loaded.config.targets.len(), "target"),
        plural(loaded.suites.len(), "suite"),
        plural(loaded.probe_count(), "probe"),
    )
}
