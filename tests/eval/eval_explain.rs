//! `modelwatch explain` end to end: the real binary on the fixture suite and responses.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn explain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("explain")
        .args(args)
        .output()
        .expect("run modelwatch")
}

/// `explain` of `responses` judged with the probes of `suite`, `args` added.
fn explain_with(suite: &Path, responses: &Path, args: &[&str]) -> Output {
    let mut all = vec![
        "--suite",
        suite.to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    explain(&all)
}

/// The error output of a run refused as bad input (exit 2).
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn json_output_has_one_object_per_line_in_order() {
    let suite = fixture("explain/suite.toml");
    let responses = fixture("explain/responses.jsonl");
    let out = explain_with(&suite, &responses, &["--format", "json"]);
    let v = json_lines(&out);
    assert_eq!(v.len(), 11);
    let refusal: Vec<bool> = v.iter().map(|o| o["refusal"].as_bool().unwrap()).collect();
    assert_eq!(
        refusal,
        [
            false, true, false, false, false, false, false, false, false, true, false
        ]
    );
    for (i, o) in v.iter().enumerate() {
        assert_eq!(o["line"], i + 1);
    }
    assert_eq!(v[1]["refusal_rule"], "lexicon:en:cant_help");
    assert_eq!(v[1]["why"]["refusal"]["matched"], "I can't help");
    assert_eq!(v[1]["why"]["task"]["reason"], "refused");
    let structured: Vec<&str> = v[2..7]
        .iter()
        .map(|o| o["structured"].as_str().unwrap())
        .collect();
    assert_eq!(
        structured,
        [
            "ok",
            "schema_violation",
            "truncated",
            "invalid_json",
            "no_json"
        ]
    );
    assert_eq!(
        v[3]["why"]["structured"]["violations"][0]["pointer"],
        "/total"
    );
    assert_eq!(v[5]["why"]["structured"]["error"]["line"], 1);
    assert_eq!(v[5]["why"]["structured"]["error"]["column"], 14);
    assert_eq!(v[6]["empty"], true);
    let tasks: Vec<Value> = v.iter().map(|o| o["task_success"].clone()).collect();
    assert_eq!(tasks[0], true);
    assert_eq!(tasks[2], true);
    assert_eq!(tasks[3], false);
    assert_eq!(tasks[7], true);
    assert_eq!(tasks[8], false);
    assert_eq!(v[8]["why"]["task"]["checks"][1]["passed"], true);
    assert!(v[9]["task_success"].is_null() && v[9]["probe"].is_null());
    assert_eq!(v[9]["refusal_rule"], "lexicon:es:no_puedo");
}

#[test]
fn text_output_says_why() {
    let suite = fixture("explain/suite.toml");
    let responses = fixture("explain/responses.jsonl");
    let out = explain_with(&suite, &responses, &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "refusal     yes, rule lexicon:en:cant_help matched \"I can't help\" at bytes 15..27",
        "structured  schema_violation (body JSON at bytes 0..41)",
        "    /total: \"42.50\" is not of type \"number\"",
        "structured  truncated (body JSON): EOF while parsing a string at line 1 column 28 (never closed)",
        "task        FAIL json_equals: /total: expected 42.5, found \"42.50\"",
        "refusal     no: empty response (its own outcome)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn explains_the_refusal_corpus_without_a_suite() {
    let corpus = fixture("refusal_corpus/corpus.jsonl");
    let out = explain(&["--responses", corpus.to_str().unwrap(), "--format", "json"]);
    let v = json_lines(&out);
    let lines = std::fs::read_to_string(&corpus).unwrap().lines().count();
    assert_eq!(v.len(), lines);
    assert!(v.iter().all(|o| o["refusal"].is_boolean()));
}

#[test]
fn unknown_probe_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let responses = dir.path().join("r.jsonl");
    std::fs::write(
        &responses,
        "{\"probe\": \"arith\", \"text\": \"144\"}\n{\"probe\": \"nope\", \"text\": \"x\"}\n",
    )
    .unwrap();
    let suite = fixture("explain/suite.toml");
    let out = explain_with(&suite, &responses, &[]);
    let err = refused(&out);
    assert!(
        err.contains("line 2: unknown probe 'nope'; suite 'explain-demo' has: kill-hung-process, invoice-json, sentiment, arith"),
        "{err}"
    );
}

#[test]
fn input_without_a_response_judges_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.jsonl", ""), ("blank.jsonl", "\n  \n")] {
        let responses = dir.path().join(name);
        std::fs::write(&responses, text).unwrap();
        let out = explain(&["--responses", responses.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {err}");
        assert!(err.contains("no responses in"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
    }
}

#[test]
fn bad_json_line_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let responses = dir.path().join("r.jsonl");
    std::fs::write(
        &responses,
        "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n",
    )
    .unwrap();
    let out = explain(&["--responses", responses.to_str().unwrap()]);
    let err = refused(&out);
    assert!(
        err.contains("line 2: not a response object: EOF while parsing a string (column "),
        "{err}"
    );
    // One line number: the file's, not serde's count within the line.
    assert!(!err.contains("at line 1"), "{err}");
}

#[test]
fn invalid_check_config_names_probe_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("bad.toml");
    std::fs::write(
        &suite,
        "suite = \"bad\"\n[[probe]]\nid = \"p\"\nprompt = \"x\"\nexpect.task = { kind = \"all\", checks = [{ kind = \"contains\", values = [\"a\"] }, { kind = \"regex\", pattern = \"(\" }] }\n",
    )
    .unwrap();
    let responses = fixture("explain/responses.jsonl");
    let out = explain_with(&suite, &responses, &[]);
    let err = refused(&out);
    assert!(
        err.contains(
            "probe 'p': check 'regex' (task.checks[1]): invalid regex \"(\": unclosed group"
        ),
        "{err}"
    );

    std::fs::write(
        &suite,
        "suite = \"bad\"\n[[probe]]\nid = \"j\"\nprompt = \"x\"\nexpect.json_schema = \"missing.json\"\n",
    )
    .unwrap();
    let out = explain_with(&suite, &responses, &[]);
    let err = refused(&out);
    assert!(err.contains("probe 'j': json_schema ("), "{err}");
    assert!(
        err.contains("missing.json): cannot read the schema file"),
        "{err}"
    );
}

#[test]
fn bad_lines_are_skipped_and_the_rest_judged() {
    let dir = tempfile::tempdir().unwrap();
    let responses = dir.path().join("r.jsonl");
    let mut bytes = b"{\"text\": \"I can't help with that.\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"text\": \"na\xefve\"}\n"); // one Latin-1 byte
    bytes.extend_from_slice(b"not json\n");
    bytes.extend_from_slice(b"{\"text\": \"The phrase 'I cannot comply' is a template.\"}\n");
    std::fs::write(&responses, bytes).unwrap();
    let out = explain(&[
        "--responses",
        responses.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = v.iter().map(|o| o["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 4]);
    assert_eq!(v[0]["refusal"], true);
    assert_eq!(v[1]["refusal"], false);
    assert_eq!(v[1]["why"]["refusal"]["layer"], "guard");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: not valid UTF-8 (invalid byte at column 13)"),
        "{err}"
    );
    assert!(err.contains("line 3: not a response object"), "{err}");
    assert!(err.contains("2 of 4 non-blank lines skipped"), "{err}");
}
