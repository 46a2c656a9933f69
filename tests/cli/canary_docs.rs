//! The canary commands of docs/getting-started.md and docs/ci.md that promise an exit code
//! (`# exit N` at the end of the line) run verbatim against the simulator and exit with it.
//! `canary --sim` brings its own simulators; the CI commands run in a scratch folder whose
//! configuration points `chat-prod` and `chat-candidate` at one healthy simulator (an
//! unchanged candidate).

use crate::common_verdict::{Sims, fast};
use std::path::Path;
use std::process::Command;

/// (document, command words after `modelwatch`, promised exit code)
fn promised(doc: &str) -> Vec<(String, Vec<String>, i32)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let Some((cmd, comment)) = line.split_once('#') else {
            continue;
        };
        let Some(code) = comment
            .trim()
            .strip_prefix("exit ")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
        else {
            continue;
        };
        let cmd = cmd.trim();
        let Some(rest) = cmd
            .strip_prefix("modelwatch ")
            .or_else(|| cmd.strip_prefix("cargo run -- "))
        else {
            continue;
        };
        out.push((
            doc.to_string(),
            rest.split_whitespace().map(String::from).collect(),
            code,
        ));
    }
    out
}

#[test]
fn documented_canary_exit_codes_hold() {
    let mut commands = promised("docs/getting-started.md");
    let ci = promised("docs/ci.md");
    assert!(
        commands.len() >= 2 && !ci.is_empty(),
        "the docs promise exit codes for their canary commands: {commands:?} {ci:?}"
    );
    commands.extend(ci);

    let sims = Sims::of(vec![(fast("healthy"), 9)]);
    let dir = tempfile::tempdir().unwrap();
    modelwatch::demo::write_starter_probes(&dir.path().join("probes")).unwrap();
    let mut config = String::from("probes_dir = \"probes\"\n\n[storage]\npath = \"mw.db\"\n");
    for name in ["chat-prod", "chat-candidate"] {
        config.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
             model = \"sim-7b\"\nsuites = [\"core\", \"json\", \"tasks\"]\nmax_concurrency = 8\n",
            sims.url(0)
        ));
    }
    std::fs::write(dir.path().join("modelwatch.toml"), config).unwrap();

    for (doc, args, code) in &commands {
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{doc}: modelwatch {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
