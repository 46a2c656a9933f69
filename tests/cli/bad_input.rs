//! Bad input that is not a TOML fixture: configuration paths that cannot be read (a directory, a
//! dangling symlink, nothing at all) and corrupt, foreign or future baseline files. Each gives
//! exactly the error expected, through the library and through the binary (usage exit code 2).

use modelwatch::baseline::Baseline;
use modelwatch::config;
use modelwatch::diag::render_all;
use std::path::{Path, PathBuf};
use std::process::Command;

fn no_env(_: &str) -> Option<String> {
    None
}

fn config_error(path: &Path) -> String {
    match config::load_with_suites(path, &no_env) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(d) => render_all(&d),
    }
}

#[test]
fn unreadable_configuration_paths_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let directory = d.join("conf.toml");
    std::fs::create_dir(&directory).unwrap();
    let dangling = d.join("dangling.toml");
    std::os::unix::fs::symlink(d.join("nowhere.toml"), &dangling).unwrap();
    let missing = d.join("missing.toml");
    let help =
        "  = help: pass the configuration with `--config PATH` (or set MODELWATCH_CONFIG)\n\n";
    for (path, cause) in [
        (&directory, "Is a directory (os error 21)"),
        (&dangling, "No such file or directory (os error 2)"),
        (&missing, "No such file or directory (os error 2)"),
    ] {
        let expected = format!(
            "error: cannot read configuration file `{}`: {cause}\n --> {}\n{help}",
            path.display(),
            path.display()
        );
        assert_eq!(config_error(path), expected);
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .arg("--config")
            .arg(path)
            .arg("check-config")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(cause));
    }
}

fn baseline(name: &str) -> PathBuf {
    Path::new("tests/fixtures/baselines/invalid").join(name)
}

/// Every broken baseline fixture and the exact error it gives.
const BASELINES: &[(&str, &str)] = &[
    (
        "array.json",
        "{p} is not a modelwatch baseline (no `format_version` and `probes` at the top level); \
         record one with `modelwatch baseline record`",
    ),
    (
        "foreign.json",
        "{p} is not a modelwatch baseline (no `format_version` and `probes` at the top level); \
         record one with `modelwatch baseline record`",
    ),
    (
        "empty.json",
        "{p}:1:1: not valid JSON: EOF while parsing a value",
    ),
    (
        "truncated.json",
        "{p}:18:173: not valid JSON: EOF while parsing a string",
    ),
    (
        "not-json.json",
        "{p}:4:3: not valid JSON: key must be a string",
    ),
    (
        "nested-deep.json",
        "{p}:1:128: not valid JSON: recursion limit exceeded",
    ),
    (
        "huge-number.json",
        "{p}:16:112: not valid JSON: number out of range",
    ),
    (
        "huge-count.json",
        "{p}:16:157: invalid baseline: invalid type: floating point `1e+20`, expected u32",
    ),
    (
        "negative-count.json",
        "{p}:16:139: invalid baseline: invalid value: integer `-4`, expected u32",
    ),
    (
        "sample-wrong-shape.json",
        "{p}:16:151: invalid baseline: invalid type: string \"four hundred\", expected u32",
    ),
    (
        "samples-not-array.json",
        "{p}:15:17: invalid baseline: invalid type: map, expected a sequence",
    ),
    (
        "unknown-field.json",
        "{p}:39:18: invalid baseline: unknown field `temprature`, expected one of \
         `temperature`, `top_p`, `max_tokens`, `seed`, `stop`",
    ),
    (
        "future-version.json",
        "{p} has baseline format version 2, this modelwatch reads version(s) 1; re-record the \
         baseline or use a matching modelwatch",
    ),
    (
        "version-as-string.json",
        "{p} has baseline format version \"1\", this modelwatch reads version(s) 1; re-record \
         the baseline or use a matching modelwatch",
    ),
    (
        "version-huge.json",
        "{p} has baseline format version 1.8446744073709552e+19, this modelwatch reads \
         version(s) 1; re-record the baseline or use a matching modelwatch",
    ),
    (
        "latin1.json",
        "cannot read baseline {p}: the file is not UTF-8 (first invalid byte at offset 402); a \
         baseline is UTF-8 JSON written by `modelwatch baseline record`",
    ),
    (
        "utf16.json",
        "cannot read baseline {p}: the file is UTF-16 (it starts with a byte order mark); a \
         baseline is UTF-8 JSON written by `modelwatch baseline record`",
    ),
];

#[test]
fn corrupt_foreign_and_future_baselines_give_exact_errors() {
    for (name, expected) in BASELINES {
        let path = baseline(name);
        let expected = expected.replace("{p}", &path.display().to_string());
        let err = Baseline::load(&path).expect_err(name);
        assert_eq!(err.to_string(), expected, "{name}");
    }
    // Every fixture in the folder is covered.
    let count = std::fs::read_dir("tests/fixtures/baselines/invalid")
        .unwrap()
        .count();
    assert_eq!(count, BASELINES.len());
}

#[test]
fn the_binary_rejects_each_broken_baseline_with_a_usage_error() {
    for (name, _) in BASELINES {
        let path = baseline(name);
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["baseline", "show"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}
