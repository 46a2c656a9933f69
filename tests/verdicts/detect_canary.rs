//! End-to-end: the canary's final report on the starter suites finds what pooled rates miss —
//! two task probes gone wrong (named as strata), and another model with equal rates (the
//! behaviour metric) — and stays quiet on the same model with other seeds.

use crate::common_verdict;

use common_verdict::{Sims, fast, metrics_with, report, starter_config, stderr};
use modelwatch::sim::profile::Rule;
use std::path::{Path, PathBuf};

/// A configuration with targets `current` and `candidate` on the starter suites.
fn config(dir: &Path, sims: &Sims) -> PathBuf {
    starter_config(
        dir,
        sims,
        "suites = [\"core\", \"format\", \"json\", \"multilingual\", \"tasks\"]\n\
         stream = false\nretries = 0\nmax_concurrency = 16\nconnect_timeout = \"2s\"\n\
         request_timeout = \"10s\"\n",
    )
}

fn canary(config: &Path, samples: &str) -> (serde_json::Value, Option<i32>) {
    let out = common_verdict::canary(config, &["--samples", samples]);
    let code = out.status.code();
    assert!(code != Some(2), "{}", stderr(&out));
    (report(&out), code)
}

fn metric<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == id)
        .unwrap_or_else(|| panic!("no {id} in {:#}", r["metrics"]))
}

/// Two arithmetic probes always wrong, everything else (fingerprint included) unchanged: the
/// pooled task success moves by a few points only; the verdict is a regression naming them.
#[test]
fn two_task_probes_gone_wrong_regress_and_are_named() {
    let mut broken = fast("healthy");
    for prompt in ["347 multiplied by 28", "A crate holds 24 apples"] {
        let mut rule = Rule::contains(prompt);
        rule.correct = Some(0.0);
        broken.rules.push(rule);
    }
    let sims = Sims::of(vec![(fast("healthy"), 71), (broken, 72)]);
    let dir = tempfile::tempdir().unwrap();
    let (r, code) = canary(&config(dir.path(), &sims), "20");
    assert_eq!(r["verdict"], "regression", "{:#}", r["reasons"]);
    assert_eq!(code, Some(1));
    let task = metric(&r, "task_failure_rate");
    assert_eq!(task["verdict"], "regression", "{task:#}");
    let pooled = task["effect"]["estimate"].as_f64().unwrap();
    assert!(pooled > -0.06, "pooled change {pooled} is small");
    let mut named: Vec<&str> = task["strata"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["level"] == "probe")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    named.sort();
    assert_eq!(
        named,
        ["tasks/apples-word-problem", "tasks/multiply-3digit"],
        "{task:#}"
    );
    assert!(
        r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("tasks/multiply-3digit")),
        "{:#}",
        r["reasons"]
    );
}

/// Another wording with equal rates and fingerprint: no quality regression, but the behaviour
/// metric says the served model changed; the same model with another seed is not flagged.
#[test]
fn other_wording_is_a_behaviour_change_and_the_same_model_is_not() {
    let sims = Sims::of(vec![(fast("healthy"), 81), (fast("reworded"), 82)]);
    let dir = tempfile::tempdir().unwrap();
    let (r, code) = canary(&config(dir.path(), &sims), "10");
    assert!(
        metrics_with(&r, "quality", "regression").is_empty(),
        "{:#}",
        r["reasons"]
    );
    assert_ne!(code, Some(1));
    assert_eq!(
        r["behaviour_changed"],
        true,
        "{:#}",
        metric(&r, "behaviour")
    );
    let b = metric(&r, "behaviour");
    assert_eq!(b["verdict"], "changed");
    assert_eq!(b["category"], "behaviour");
    assert!(b["p_value"].as_f64().unwrap() < 0.01);

    drop(sims);
    let same = Sims::of(vec![(fast("healthy"), 81), (fast("healthy"), 83)]);
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = canary(&config(dir.path(), &same), "10");
    assert_eq!(
        r["behaviour_changed"],
        false,
        "{:#}",
        metric(&r, "behaviour")
    );
    assert_eq!(metric(&r, "behaviour")["verdict"], "pass");
}
