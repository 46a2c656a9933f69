//! `modelwatch completions <shell>` and `modelwatch man`: generated from the CLI definition,
//! so they never fall behind it.

use clap::ValueEnum;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:\n  \
    modelwatch completions bash > ~/.local/share/bash-completion/completions/modelwatch\n  \
    modelwatch completions zsh > \"${fpath[1]}/_modelwatch\"\n  \
    modelwatch completions fish > ~/.config/fish/completions/modelwatch.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "View it with: modelwatch man | man -l -")]
pub struct ManArgs {}

/// Writes the completion script for `args.shell` to stdout.
pub fn exec(args: Args, mut cli: clap::Command) -> anyhow::Result<ExitCode> {
    use clap_complete::{Shell as S, generate};
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut out = Vec::new();
    generate(shell, &mut cli, "modelwatch", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the roff man page (the main page; subcommands are listed in it) to stdout.
pub fn man(_args: ManArgs, cli: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cli).render(&mut out)?;
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}
