//! End-to-end: the sequential canary on the starter suites against built-in simulator profiles,
//! through the real binary. Stratified evidence names probes that broke on their own; identical
//! models with paired seeds give identical pairs and pass.

use crate::common_verdict::{self, Sims, fast, modelwatch, report, starter_config};
use modelwatch::sim::Rule;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Writes a configuration with the starter suites of `probes/` and one target per simulator.
fn config(dir: &Path, sims: &Sims) -> PathBuf {
    starter_config(
        dir,
        sims,
        "suites = [\"core\", \"json\", \"tasks\", \"format\", \"multilingual\"]\n\
         stream = false\nretries = 0\nmax_concurrency = 8\n",
    )
}

fn canary(config: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let out = common_verdict::canary(config, extra);
    let report = report(&out);
    (out, report)
}

fn reasons(r: &serde_json::Value) -> String {
    r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_probes_always_wrong_end_in_a_regression_that_names_them() {
    let mut broken = fast("healthy");
    for prompt in ["347 multiplied by 28", "A crate holds 24 apples"] {
        let mut rule = Rule::contains(prompt);
        rule.correct = Some(0.0);
        broken.rules.push(rule);
    }
    for (seed, pairing) in [(1u64, true), (2, false)] {
        let sims = Sims::of(vec![(fast("healthy"), seed), (broken.clone(), seed + 100)]);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &sims);
        let extra: &[&str] = if pairing {
            &["--max-samples", "40"]
        } else {
            &["--max-samples", "40", "--no-seed-pairing"]
        };
        let (out, r) = canary(&cfg, extra);
        let text = reasons(&r);
        assert_eq!(out.status.code(), Some(1), "pairing {pairing}:\n{text}");
        assert_eq!(r["verdict"], "regression");
        assert!(text.contains("regression shown"), "{text}");
        // Named by their own anytime-valid evidence, or else among the flipped probes.
        let flipped: Vec<&str> = r["flipped"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "lost_task_success")
            .map(|f| f["probe_id"].as_str().unwrap())
            .collect();
        for id in ["multiply-3digit", "apples-word-problem"] {
            assert!(
                text.contains(&format!("tasks/{id} task_failure_rate")) || flipped.contains(&id),
                "pairing {pairing}: {id} not named:\n{text}\nflipped: {flipped:?}"
            );
        }
        assert!(
            text.contains("per probe"),
            "pairing {pairing}: no probe-level evidence:\n{text}"
        );
    }
}

#[test]
fn identical_models_with_paired_seeds_pass_with_identical_pairs() {
    let sims = Sims::of(vec![(fast("healthy"), 3), (fast("healthy"), 4)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sims);
    let (out, r) = canary(&cfg, &["--max-samples", "60"]);
    let text = reasons(&r);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(r["verdict"], "pass");
    assert!(text.contains("non-inferiority shown"), "{text}");
    assert!(
        text.contains("seed pairing effective") && text.contains("(100 %)"),
        "{text}"
    );
    assert!(text.contains("false pass at the margin ≤ 5.0 %"), "{text}");
}

#[test]
fn the_plan_is_printed_and_a_budget_that_cannot_pass_is_refused() {
    let sims = Sims::of(vec![(fast("healthy"), 5), (fast("healthy"), 6)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sims);
    let run = |extra: &[&str]| {
        let mut args = vec!["canary", "--current", "current", "--candidate", "candidate"];
        args.extend_from_slice(extra);
        modelwatch(&cfg, &args)
    };
    let out = run(&["--plan"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("ms per pair measured"), "{text}");
    let samples = |line: &str| -> u32 {
        let at = line.find(" samples per probe").unwrap();
        let start = line[..at].rfind('(').unwrap() + 1;
        line[start..at].parse().unwrap()
    };
    let identical = text
        .lines()
        .find(|l| l.contains("identical answers (seed pairing effective): pass after about"))
        .unwrap_or_else(|| panic!("{text}"));
    let need = samples(identical);
    assert!((10..=40).contains(&need), "{identical}");
    // One sample per probe fewer than identical answers need: refused before sampling.
    let too_few = (need - 1).to_string();
    let out = run(&["--max-samples", &too_few]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("too small to ever pass"), "{err}");
    // A coarser preset needs fewer samples, so the same budget is accepted.
    let out = run(&["--plan", "--sensitivity", "coarse"]);
    let coarse = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = coarse
        .lines()
        .find(|l| l.contains("identical answers"))
        .unwrap();
    assert!(samples(line) < need, "{line}");
}
