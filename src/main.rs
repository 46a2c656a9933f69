//! The `modelwatch` command line. Parsing and dispatch only; each subcommand lives in `cmd/`.

mod cmd;

use clap::{CommandFactory, Parser, Subcommand};
use cmd::pipe::ClosedPipe;
use std::process::ExitCode;

/// The version with build information: git commit, target triple, profile.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MODELWATCH_GIT_COMMIT"),
    ", ",
    env!("MODELWATCH_TARGET"),
    ", ",
    env!("MODELWATCH_PROFILE"),
    ")"
);

/// Catches silent quality regressions in served language models.
#[derive(Debug, Parser)]
#[command(name = "modelwatch", version = VERSION, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one round of probes against the configured targets and store the samples.
    Run(cmd::run::Args),
    /// Validate the configuration and every suite it references.
    CheckConfig(cmd::check_config::Args),
    /// Check in about a second per target that its server answers, speaks the configured
    /// API, serves the model, and which fingerprint it has; a hint for each failure.
    Doctor(cmd::doctor::Args),
    /// Judge saved responses against a suite and explain every measurement.
    Explain(cmd::explain::Args),
    /// Write stored responses (a target, round, probe or time window) as JSONL that `explain`
    /// reads as is.
    Export(cmd::export::Args),
    /// Serve the built-in simulated model server (Ollama and OpenAI APIs).
    Sim(cmd::sim::Args),
    /// Record, show, list and compare baseline files.
    Baseline(cmd::baseline::Args),
    /// Judge a target's recent stored samples against its baseline (exit 0 pass,
    /// 1 regression, 3 inconclusive).
    Compare(cmd::compare::Args),
    /// Before a swap: a candidate against the current model on the same probes, paired and
    /// interleaved, or against a stored baseline (exit 0 pass, 1 regression, 3 inconclusive).
    Canary(cmd::canary::Args),
    /// The time view of stored rounds as an HTML (or JSON) file: each metric round by round,
    /// swaps, alerts and their evidence, current verdicts.
    Report(cmd::report::Args),
    /// Run continuously: scheduled rounds, swap detection, monitoring, alerts, HTTP status.
    Daemon(cmd::daemon::Args),
    /// List every target with the model it serves, pin status, baseline age and verdict.
    Inventory(cmd::inventory::Args),
    /// Mute a target's alert notifications for a while (they are still recorded).
    Silence(cmd::silence::Args),
    /// The whole story in under a minute: simulator, baseline, a model swap caught live, an
    /// HTML report. No server, no configuration.
    Demo(cmd::demo::Args),
    /// Write a commented starter configuration for a local Ollama or OpenAI-compatible
    /// server, or the built-in simulator when none is found.
    Init(cmd::init::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
    /// Print the man page (roff).
    Man(cmd::completions::ManArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { cmd::EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A command whose output is cut short (`modelwatch … | head`) ends quietly by SIGPIPE, as
    // Unix tools do; how depends on whether it has sockets (`cmd::pipe`).
    let closed_pipe = match cli.command {
        Command::Daemon(_) | Command::Sim(_) => ClosedPipe::Ignore,
        Command::CheckConfig(_)
        | Command::Export(_)
        | Command::Compare(_)
        | Command::Report(_)
        | Command::Inventory(_)
        | Command::Completions(_)
        | Command::Man(_) => ClosedPipe::Signal,
        _ => ClosedPipe::EndOnOutput,
    };
    closed_pipe.install();
    cmd::init_logging(&cli.global);
    let result = match cli.command {
        Command::Run(args) => cmd::run::exec(args, &cli.global),
        Command::CheckConfig(args) => cmd::check_config::exec(args, &cli.global),
        Command::Doctor(args) => cmd::doctor::exec(args, &cli.global),
        Command::Explain(args) => cmd::explain::exec(args, &cli.global),
        Command::Export(args) => cmd::export::exec(args, &cli.global),
        Command::Sim(args) => cmd::sim::exec(args, &cli.global),
        Command::Baseline(args) => cmd::baseline::exec(args, &cli.global),
        Command::Compare(args) => cmd::compare::exec(args, &cli.global),
        Command::Canary(args) => cmd::canary::exec(args, &cli.global),
        Command::Report(args) => cmd::report::exec(args, &cli.global),
        Command::Daemon(args) => cmd::daemon::exec(args, &cli.global),
        Command::Inventory(args) => cmd::inventory::exec(args, &cli.global),
        Command::Silence(args) => cmd::silence::exec(args, &cli.global),
        Command::Demo(args) => cmd::demo::exec(args, &cli.global),
        Command::Init(args) => cmd::init::exec(args, &cli.global),
        Command::Completions(args) => cmd::completions::exec(args, Cli::command()),
        Command::Man(args) => cmd::completions::man(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) if closed_pipe == ClosedPipe::EndOnOutput && cmd::pipe::is_closed_pipe(&e) => {
            cmd::pipe::end_by_sigpipe()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cmd::EXIT_USAGE)
        }
    }
}
