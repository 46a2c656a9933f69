//! Subcommands. Each module has clap `Args` and an `exec` that returns the process exit code.
//!
//! Exit codes, shared by every command: 0 ok/pass, 1 regression, 2 usage or configuration
//! error, 3 inconclusive or could not measure.

pub mod baseline;
pub mod canary;
pub mod check_config;
pub mod compare;
pub mod completions;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod explain;
pub mod explain_judge;
pub mod export;
pub mod init;
pub mod inventory;
pub mod journal;
mod live;
pub mod pipe;
mod progress;
pub mod promote;
mod record;
pub mod report;
pub mod run;
pub mod silence;
pub mod sim;

use clap::ValueEnum;
use std::path::PathBuf;

/// The configuration file used when neither --config nor MODELWATCH_CONFIG names one.
pub const DEFAULT_CONFIG: &str = "modelwatch.toml";

pub const EXIT_REGRESSION: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INCONCLUSIVE: u8 = 3;

/// Options every subcommand accepts.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "MODELWATCH_CONFIG",
        default_value = DEFAULT_CONFIG
    )]
    pub config: PathBuf,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Output format for commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// `n` and the noun, plural unless `n` is 1: "1 round", "3 rounds".
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// When the configuration file does not exist, says which path was tried and how to get one.
/// Printed after the configuration errors.
pub fn hint_missing_config(path: &std::path::Path) {
    if !path.exists() {
        eprintln!(
            "hint: no configuration at {} (from --config, MODELWATCH_CONFIG or the default); \
             `modelwatch init` writes a commented starter one for a local model server, or try \
             `modelwatch demo` / `modelwatch run --sim`, which need none",
            path.display()
        );
    }
}

pub fn init_logging(global: &Global) {
    use tracing_subscriber::EnvFilter;
    let default = match global.verbose {
        0 => "modelwatch=info,warn",
        1 => "modelwatch=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Escape codes only for a person at a terminal: never in files, pipes or with NO_COLOR.
    let ansi = modelwatch::report::use_color(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // Under systemd, lines carry their syslog priority for the journal.
    let journal = journal::stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref());
    // The daemon's spans and log records also go to `[telemetry.otlp]` once it is configured.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi && !journal)
        .with_writer(journal::Stderr { journal });
    // The Sentry SDK's layer: inert until the daemon binds a client (`[alerts.sentry]`).
    use modelwatch::alert::sentry_sdk::SdkLayer;
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(modelwatch::telemetry::bridge::layer())
        .with(SdkLayer::default());
    let _ = match global.log_format {
        LogFormat::Human => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json()).try_init(),
    };
}

/// A private scratch folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("modelwatch-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
