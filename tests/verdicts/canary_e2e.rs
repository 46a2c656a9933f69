//! End-to-end: `modelwatch canary` through the real binary against simulators on port 0.

use crate::common_verdict;
use common_verdict::*;

/// Identical models give `pass` at the default margins, and no seed gives a regression.
#[test]
fn identical_models_pass_and_never_regress() {
    for seed in [11u64, 12, 13] {
        let sims = Sims::start(&[("clean", seed), ("clean", seed + 100)]);
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &[("current", &sims.url(0)), ("candidate", &sims.url(1))],
            "",
        );
        let out = canary(&config, &["--samples", "200"]);
        let r = report(&out);
        assert!(
            metrics_with(&r, "quality", "regression").is_empty(),
            "seed {seed}: {:#}",
            r["reasons"]
        );
        assert_eq!(r["design"], "paired");
        assert_eq!(r["probes"]["compared"], 5);
        assert_eq!(
            r["metrics"][0]["candidate"]["n"], 1000,
            "{:#}",
            r["metrics"][0]
        );
        assert_eq!(r["verdict"], "pass", "seed {seed}: {:#}", r["reasons"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

/// A model that refuses more, breaks JSON, answers wrong and rambles regresses on exactly those
/// metrics, with exit code 1.
#[test]
fn degraded_model_regresses_on_exactly_the_degraded_metrics() {
    let sims = Sims::start(&[("clean", 21), ("degraded", 22)]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("current", &sims.url(0)), ("candidate", &sims.url(1))],
        "",
    );
    let out = canary(&config, &["--samples", "60"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(r["verdict"], "regression");
    assert_eq!(
        metrics_with(&r, "quality", "regression"),
        [
            "length_chars",
            "length_shape",
            "length_tokens",
            "refusal_rate",
            "structured_failure_rate",
            "task_failure_rate"
        ],
        "{:#}",
        r["metrics"]
    );
    for m in ["empty_rate", "truncation_rate"] {
        let v = r["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["metric"] == m)
            .unwrap();
        assert_ne!(v["verdict"], "regression", "{m}");
    }
    assert!(
        r["flipped"].as_array().is_some_and(|f| !f.is_empty()),
        "flipped probes are listed"
    );
    // The canary's samples are stored for both targets.
    let store = modelwatch::store::Store::open(dir.path().join("modelwatch.db")).unwrap();
    assert_eq!(store.rounds("current", 10).unwrap().len(), 1);
    assert_eq!(store.rounds("candidate", 10).unwrap()[0].samples, 300);
}

/// An unreachable candidate is inconclusive (exit 3), never a quality regression, and the
/// message names the availability errors.
#[test]
fn unreachable_candidate_is_inconclusive_not_a_regression() {
    let sims = Sims::start(&[("clean", 31)]);
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_url();
    let config = write_config(
        dir.path(),
        &[("current", &sims.url(0)), ("candidate", &dead)],
        "",
    );
    let started = std::time::Instant::now();
    let out = canary(&config, &["--samples", "200"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(r["verdict"], "inconclusive");
    assert!(metrics_with(&r, "quality", "regression").is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("candidate could not be measured") && err.contains("connect"),
        "{err}"
    );
    assert!(r["availability"]["candidate"]["by_kind"]["connect"].as_u64() > Some(0));
    // It gives up after the first sample slot instead of collecting 1000 errors.
    assert_eq!(r["availability"]["candidate"]["requests"], 5);
    assert!(started.elapsed().as_secs() < 30);
}

/// With --max-samples, a clear regression stops the canary early and says how many samples it
/// used.
#[test]
fn max_samples_stops_early_on_a_clear_regression() {
    let sims = Sims::start(&[("clean", 41), ("degraded", 42)]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("current", &sims.url(0)), ("candidate", &sims.url(1))],
        "",
    );
    let out = canary(&config, &["--max-samples", "400"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(r["verdict"], "regression");
    let first = r["reasons"][0].as_str().unwrap();
    assert!(
        first.starts_with("sequential canary: stopped early after"),
        "{first}"
    );
    assert!(
        stderr(&out).contains("canary: stopped early after"),
        "{}",
        stderr(&out)
    );
    let used = r["metrics"][0]["candidate"]["n"].as_u64().unwrap();
    assert!(used < 400 * 5 / 4, "used {used} of 2000 pairs");
    assert!(
        r["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["verdict"] == "regression" && m["e_value"].as_f64() >= Some(120.0)),
        "an anytime-valid e-value backs the regression"
    );
}

/// Bad arguments and unusable baselines are usage errors (exit 2), before any request is sent.
#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_url();
    let config = write_config(dir.path(), &[("a", &dead), ("b", &dead)], "");
    let missing = dir.path().join("missing.json");
    let foreign = dir.path().join("foreign.json");
    std::fs::write(&foreign, "{\"hello\": 1}").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["canary", "--current", "a", "--candidate", "a"],
            "same target",
        ),
        (
            vec![
                "canary",
                "--current",
                "a",
                "--candidate",
                "b",
                "--samples",
                "10",
                "--max-samples",
                "5",
            ],
            "more than --max-samples",
        ),
        (
            vec![
                "canary",
                "--candidate",
                "b",
                "--baseline",
                "x.json",
                "--max-samples",
                "5",
            ],
            "cannot be used with",
        ),
        (vec!["canary", "--candidate", "b"], "required"),
        (
            vec!["canary", "--current", "nope", "--candidate", "b"],
            "no target named 'nope'",
        ),
        (
            vec!["compare", "--target", "a", "--since", "5 parsecs"],
            "invalid duration",
        ),
        (
            vec!["compare", "--target", "a", "--since", "1h", "--rounds", "2"],
            "cannot be used with",
        ),
        (
            vec![
                "compare",
                "--target",
                "a",
                "--baseline",
                missing.to_str().unwrap(),
            ],
            "cannot read baseline",
        ),
        (
            vec![
                "compare",
                "--target",
                "a",
                "--baseline",
                foreign.to_str().unwrap(),
            ],
            "not a modelwatch baseline",
        ),
        (
            vec!["baseline", "record", "--target", "zzz"],
            "no target named 'zzz'",
        ),
    ];
    for (args, want) in cases {
        let out = modelwatch(&config, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}
