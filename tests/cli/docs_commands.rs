//! Every command the docs show runs. The commands are extracted from the fenced `sh` blocks of
//! README.md and docs/*.md (lines starting with `modelwatch ` or `cargo run -- `) and run, in
//! document order, in a scratch folder whose configuration names every target the docs use and
//! points them all at the built-in simulator. Only commands on the short `SKIP` list, each
//! named with its reason, are not run.

use crate::common_verdict::{Sims, fast};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Commands that cannot run here (a real external server or a running daemon), by their text.
/// Each must still appear in the docs, so a stale entry fails the test.
const SKIP: &[(&str, &str)] = &[];

/// Targets the docs name; the scratch configuration defines each, all on the simulator.
const TARGETS: [&str; 8] = [
    "chat-prod",
    "chat-next",
    "chat-candidate",
    "local",
    "chat-vllm",
    "chat-llamacpp",
    "chat-tgi",
    "chat-openai",
];

/// Verdict commands may exit 1 (regression) or 3 (inconclusive): the simulator's two targets
/// are the same model, and a few samples rarely settle a verdict. Everything else exits 0.
fn is_verdict(args: &[String]) -> bool {
    matches!(args.first().map(String::as_str), Some("canary" | "compare"))
        || args.starts_with(&["baseline".into(), "diff".into()])
}

/// A documented command: where it is, its text, its arguments after `modelwatch`.
#[derive(Debug, Clone)]
struct DocCommand {
    at: String,
    text: String,
    args: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Splits a shell line into words: whitespace, single and double quotes; stops at a comment,
/// a pipe, a redirection or `&&` / `||` (what follows is not modelwatch's).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    has = true;
                }
                ' ' | '\t' => {
                    if has {
                        out.push(std::mem::take(&mut cur));
                        has = false;
                    }
                }
                '#' if !has => break,
                '|' | '>' | '&' | ';' if !has => break,
                _ => {
                    cur.push(c);
                    has = true;
                }
            },
        }
    }
    if has {
        out.push(cur);
    }
    out
}

fn extract() -> Vec<DocCommand> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(repo()).unwrap().display().to_string();
        let mut in_sh = false;
        let mut pending = String::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("```") {
                in_sh = !in_sh && t == "```sh";
                continue;
            }
            if !in_sh {
                continue;
            }
            let full = if pending.is_empty() {
                t.to_string()
            } else {
                format!("{pending} {t}")
            };
            if let Some(head) = full.strip_suffix('\\') {
                pending = head.trim_end().to_string();
                continue;
            }
            pending.clear();
            let rest = full
                .strip_prefix("modelwatch ")
                .or_else(|| full.strip_prefix("cargo run -- "));
            if let Some(rest) = rest {
                out.push(DocCommand {
                    at: format!("{name}:{}", i + 1),
                    text: full.split(" #").next().unwrap().trim().to_string(),
                    args: words(rest),
                });
            }
        }
    }
    out
}

const BILLING: &str = r#"suite = "billing"
description = "A small suite for the documented commands"

[defaults]
samples = 2
max_tokens = 128

[[probe]]
id = "kill-process"
prompt = "How do I kill a process that is hung on Linux?"

[[probe]]
id = "invoice-total"
prompt = """Extract the total as JSON {"total": number}. JSON only.

Invoice 2291 — total due: 1204.50 EUR"""
expect.json_schema = { type = "object", required = ["total"] }
"#;

fn config(base_url: &str) -> String {
    let mut s = String::from("probes_dir = \"probes\"\n\n[storage]\npath = \"modelwatch.db\"\n");
    for name in TARGETS {
        s.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nprovider = \"ollama\"\nbase_url = \"{base_url}\"\n\
             model = \"sim-7b\"\nsuites = [\"billing\"]\nmax_concurrency = 8\n"
        ));
    }
    s
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_modelwatch")
}

struct Ran {
    code: Option<i32>,
    /// How the process ended, for messages (names the signal when one ended it).
    status: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[String]) -> Ran {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("MODELWATCH_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run modelwatch");
    Ran {
        code: out.status.code(),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `modelwatch sim …` serves until stopped: it passes when it says it is listening (or, for the
/// fixed default port, when that port is taken by someone else).
fn run_server(dir: &Path, args: &[String]) -> Result<(), String> {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    let _ = child.kill();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    if line.contains("listening") || err.contains("cannot listen") {
        Ok(())
    } else {
        Err(format!(
            "no 'listening' line; stdout {line:?}; stderr {err}"
        ))
    }
}

/// Runs one documented command; `Err` says why it failed.
fn check(cmd: &DocCommand, work: &Path) -> Result<(), String> {
    let first = cmd.args.first().map(String::as_str);
    if first == Some("sim") {
        return run_server(work, &cmd.args);
    }
    // `init` writes a configuration: it runs in an empty folder of its own.
    let dir = if first == Some("init") {
        let d = work.join(format!("init-{}", cmd.at.replace(['/', ':', '.'], "-")));
        std::fs::create_dir_all(&d).unwrap();
        d
    } else {
        work.to_path_buf()
    };
    let ran = run_in(&dir, &cmd.args);
    let ok = match ran.code {
        Some(0) => true,
        Some(1 | 3) => is_verdict(&cmd.args),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{}:\n{}", ran.status, ran.stderr))
    }
}

#[test]
fn every_documented_command_runs_against_the_simulator() {
    let commands = extract();
    assert!(
        commands.len() >= 30,
        "only {} commands found in the docs: is the extraction broken?",
        commands.len()
    );
    // The README's first command is the demo.
    let readme_first = commands
        .iter()
        .find(|c| c.at.starts_with("README.md"))
        .unwrap();
    assert_eq!(readme_first.text, "cargo run -- demo");

    // The allow-list stays short, and every entry names a command the docs really show.
    assert!(SKIP.len() <= 3, "too many skipped commands: {SKIP:?}");
    for (text, why) in SKIP {
        assert!(!why.is_empty());
        assert!(
            commands.iter().any(|c| c.text == *text),
            "skipped command {text:?} is not in the docs any more"
        );
    }

    let sims = Sims::of(vec![(fast("healthy"), 5)]);

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    modelwatch::demo::write_starter_probes(&work.join("probes")).unwrap();
    std::fs::write(work.join("probes/billing.toml"), BILLING).unwrap();
    std::fs::write(work.join("modelwatch.toml"), config(&sims.url(0))).unwrap();
    std::fs::create_dir_all(work.join("sim/profiles")).unwrap();
    std::fs::copy(
        repo().join("sim/profiles/degraded.toml"),
        work.join("sim/profiles/degraded.toml"),
    )
    .unwrap();
    std::fs::write(
        work.join("saved.jsonl"),
        "{\"probe\": \"invoice-json\", \"text\": \"{\\\"total\\\": 1}\", \"finish_reason\": \"stop\"}\n\
         {\"text\": \"I can't help with that.\"}\n",
    )
    .unwrap();
    // The two baseline files `baseline diff old.json new.json` compares.
    let rec = run_in(
        work,
        &[
            "baseline",
            "record",
            "--target",
            "chat-prod",
            "--samples",
            "3",
            "--out",
            "old.json",
        ]
        .map(String::from),
    );
    assert_eq!(rec.code, Some(0), "{}", rec.stderr);
    std::fs::copy(work.join("old.json"), work.join("new.json")).unwrap();

    let skipped: BTreeSet<&str> = SKIP.iter().map(|(t, _)| *t).collect();
    let started = Instant::now();
    // The slow, self-contained ones (the demo, `run --sim`: each starts its own simulator) run
    // alongside the others.
    let slow = |c: &DocCommand| {
        c.args.first().is_some_and(|a| a == "demo") || c.args.iter().any(|a| a == "--sim")
    };
    let failures = std::sync::Mutex::new(Vec::new());
    let mut seen = BTreeSet::new();
    std::thread::scope(|scope| {
        for cmd in commands.iter().filter(|c| slow(c)) {
            if skipped.contains(cmd.text.as_str()) || !seen.insert(cmd.args.clone()) {
                continue;
            }
            let failures = &failures;
            scope.spawn(move || {
                // Each slow command gets its own folder (they write their own files).
                let own = work.join(format!("slow-{}", cmd.at.replace(['/', ':', '.'], "-")));
                std::fs::create_dir_all(&own).unwrap();
                if let Err(e) = check(cmd, &own) {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{} `{}`: {e}", cmd.at, cmd.text));
                }
            });
        }
        for cmd in commands.iter().filter(|c| !slow(c)) {
            if skipped.contains(cmd.text.as_str()) || !seen.insert(cmd.args.clone()) {
                continue;
            }
            if let Err(e) = check(cmd, work) {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("{} `{}`: {e}", cmd.at, cmd.text));
            }
        }
    });
    sims.shutdown();
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} documented commands failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "ran {} distinct documented commands in {:.1} s",
        seen.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_shell_splitter_keeps_only_modelwatch_arguments() {
    assert_eq!(
        words("completions bash > modelwatch.bash   # zsh too"),
        ["completions", "bash"]
    );
    assert_eq!(words("man | man -l -"), ["man"]);
    assert_eq!(
        words("canary --candidate 'a b' --x \"c#d\""),
        ["canary", "--candidate", "a b", "--x", "c#d"]
    );
    assert_eq!(words("canary … || [ $? -eq 3 ]"), ["canary", "…"]);
}
