//! The commands of docs/getting-started.md and docs/ci.md that promise an exit code
//! (`# exit N` at the end of the line) run verbatim against the simulator and exit with it.
//! `canary --sim` brings its own simulators; the CI commands run in a scratch folder whose
//! configuration points `chat-prod` and `chat-candidate` at one healthy simulator (an
//! unchanged candidate). The first-run path of getting-started (`init` … `compare`) runs in
//! order in its own folder, its target moved to a healthy simulator, and ends in a pass.

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
    let mut commands: Vec<_> = promised("docs/getting-started.md")
        .into_iter()
        .filter(|(_, args, _)| args[0] == "canary")
        .collect();
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
            "{doc}: modelwatch {} ended with {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The `sh` block of getting-started that starts with `modelwatch init`: each command line
/// (comments dropped) with the exit code it promises, 0 where it promises none.
fn first_run_block() -> Vec<(String, i32)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/getting-started.md"),
    )
    .unwrap();
    let promised: Vec<(Vec<String>, i32)> = promised("docs/getting-started.md")
        .into_iter()
        .map(|(_, a, c)| (a, c))
        .collect();
    let start = text
        .find("```sh\nmodelwatch init\n")
        .expect("getting-started has a block starting with `modelwatch init`");
    let block = &text[start + 6..];
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let words: Vec<String> = l.split_whitespace().skip(1).map(String::from).collect();
            let code = promised
                .iter()
                .find(|(a, _)| *a == words)
                .map_or(0, |(_, c)| *c);
            (l, code)
        })
        .collect()
}

#[test]
fn the_first_run_path_of_getting_started_ends_in_a_pass() {
    let block = first_run_block();
    assert!(
        block
            .iter()
            .any(|(l, c)| l.starts_with("modelwatch compare") && *c == 0),
        "getting-started promises that its compare passes: {block:?}"
    );
    let sims = Sims::of(vec![(fast("healthy"), 11)]);
    let dir = tempfile::tempdir().unwrap();
    let run = |line: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(line.replace(
                "modelwatch ",
                &format!("{} ", env!("CARGO_BIN_EXE_modelwatch")),
            ))
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("MODELWATCH_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "ended with {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    for (line, code) in &block {
        let (got, stderr) = run(line);
        assert_eq!(got, Some(*code), "{line}\n{stderr}");
        if line == "modelwatch init" {
            // Whatever `init` found on this machine, the target is the healthy simulator.
            let path = dir.path().join("modelwatch.toml");
            let config: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(|l| {
                    if l.starts_with("provider = ") {
                        "provider = \"openai\"".to_string()
                    } else if l.starts_with("base_url = ") {
                        format!("base_url = \"{}\"", sims.url(0))
                    } else if l.starts_with("model = ") {
                        "model = \"sim-7b\"".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(&path, config).unwrap();
        }
        if line.starts_with("modelwatch compare") {
            assert!(stderr.contains("paired by seed: "), "{stderr}");
        }
    }
    sims.shutdown();
}
