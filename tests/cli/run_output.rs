//! What `modelwatch run` prints: the compact table by default (total first, then per suite),
//! the per-probe table with `--probes`, colour only on a terminal and never with `NO_COLOR`,
//! and logs without escape codes when they do not go to a terminal.

use std::process::{Command, Output};

const ROUND: [&str; 6] = ["run", "--sim", "--suite", "tasks", "--samples", "1"];

fn run(dir: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(ROUND)
        .args(extra)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_compact_table_is_the_default_and_probes_are_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let first = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in\n{text}"))
    };
    assert!(first("suite") < first("total") && first("total") < first("tasks"));
    assert!(!text.contains("tasks/multiply-3digit"), "{text}");
    assert!(lines[first("suite")].contains("task fail"), "{text}");
    // Both APIs of the simulator are targets: one block each.
    assert_eq!(lines.iter().filter(|l| l.starts_with("target ")).count(), 2);
    // Piped: no colour, and no escape codes in the logs either.
    assert!(!text.contains('\x1b'), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(" INFO "), "the round logs: {err}");
    assert!(!err.contains('\x1b'), "{err}");

    let out = run(dir.path(), &["--probes"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("tasks/multiply-3digit"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("probe")));
}

/// `run` on a pseudo-terminal (`script`, util-linux), with `no_color` as `NO_COLOR` when given.
fn on_a_terminal(dir: &std::path::Path, no_color: Option<&str>) -> String {
    let command = format!("{} {}", env!("CARGO_BIN_EXE_modelwatch"), ROUND.join(" "));
    let mut c = Command::new("script");
    c.args(["-qec", &command, "/dev/null"])
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c
        .output()
        .expect("`script` (util-linux) runs the command on a pseudo-terminal");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_only_without_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let tty = on_a_terminal(dir.path(), None);
    assert!(tty.contains("task fail"), "{tty}");
    assert!(tty.contains("\x1b["), "a terminal gets colour:\n{tty}");
    let plain = on_a_terminal(dir.path(), Some("1"));
    assert!(plain.contains("task fail"), "{plain}");
    assert!(
        !plain.contains('\x1b'),
        "NO_COLOR: no escape codes:\n{plain}"
    );
}

/// A store another process keeps locked past the busy timeout: `run` still prints what it
/// measured, names the rounds it could not store, and exits 2.
#[test]
fn a_locked_store_loses_the_rounds_not_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &[]);
    assert!(first.status.success(), "{first:?}");
    let db = dir.path().join("modelwatch-sim.db");
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = run(dir.path(), &[]);
    writer.execute_batch("ROLLBACK").unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(
        text.contains("task fail"),
        "the results are printed: {text}"
    );
    assert!(text.contains("stored 0 samples"), "{text}");
    assert_eq!(
        err.matches("cannot store the round of target").count(),
        2,
        "one line per target: {err}"
    );
}
