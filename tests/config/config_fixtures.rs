//! Every invalid configuration and suite under `tests/fixtures/invalid/` fails with exactly the
//! error text in its `.expected` file; every file under `tests/fixtures/valid/` loads.
//!
//! To regenerate the expected texts after a deliberate message change, run with
//! `MODELWATCH_BLESS=1` and review the diff.

use modelwatch::config;
use modelwatch::diag::{Diagnostic, render_all};
use modelwatch::probe::load::load_suite;
use std::path::{Path, PathBuf};

/// The environment every fixture sees: fixed, never the process environment.
fn env(name: &str) -> Option<String> {
    match name {
        "MODEL_HOST" => Some("http://127.0.0.1:11434".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn check_expected(path: &Path, diags: &[Diagnostic], failures: &mut Vec<String>) {
    let actual = render_all(diags);
    let expected_path = path.with_extension("expected");
    if std::env::var_os("MODELWATCH_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    match std::fs::read_to_string(&expected_path) {
        Err(_) => failures.push(format!(
            "{}: missing {} (actual output:\n{actual})",
            path.display(),
            expected_path.display()
        )),
        Ok(expected) if expected != actual => failures.push(format!(
            "{}: expected\n{expected}\n---- but got\n{actual}",
            path.display()
        )),
        Ok(_) => {}
    }
}

#[test]
fn invalid_configs_fail_with_the_expected_errors() {
    let files = toml_files("tests/fixtures/invalid");
    assert!(files.len() >= 25, "only {} config fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        match config::load_with_suites(path, &env) {
            Ok(_) => failures.push(format!("{}: loaded, expected errors", path.display())),
            Err(diags) => check_expected(path, &diags, &mut failures),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn invalid_suites_fail_with_the_expected_errors() {
    let files = toml_files("tests/fixtures/invalid/suites");
    assert!(files.len() >= 20, "only {} suite fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        match load_suite(path) {
            Ok(_) => failures.push(format!("{}: loaded, expected errors", path.display())),
            Err(diags) => check_expected(path, &diags, &mut failures),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_expected_file_has_a_fixture() {
    for dir in ["tests/fixtures/invalid", "tests/fixtures/invalid/suites"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "expected") {
                assert!(
                    path.with_extension("toml").is_file(),
                    "{} has no fixture",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn valid_configs_load() {
    for path in toml_files("tests/fixtures/valid") {
        if let Err(diags) = config::load_with_suites(&path, &env) {
            panic!("{}:\n{}", path.display(), render_all(&diags));
        }
    }
}
