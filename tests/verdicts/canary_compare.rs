//! End-to-end: `modelwatch compare` judges the rounds since the baseline was recorded, of the
//! fingerprint being served, never the baseline's own rounds; rounds of another fingerprint in
//! the window are excluded and counted.

use crate::common_verdict;

use common_verdict::*;
use modelwatch::sim::{self, Profile};

#[test]
fn a_bad_round_of_another_fingerprint_in_the_window_is_excluded_and_counted() {
    let mut other = profile("degraded");
    other.fingerprint.digest = "b".repeat(64);
    other.fingerprint.quantization = "Q2_K".into();
    let clean: Profile = profile("clean");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (good, bad) = {
        let _guard = rt.enter();
        (
            sim::spawn_on_free_port(clean, 1).unwrap(),
            sim::spawn_on_free_port(other, 2).unwrap(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let point_at = |url: &str| write_config(dir.path(), &[("local", url)], "");
    let ok = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", stderr(out));
    };

    let cfg = point_at(&good.base_url());
    ok(&modelwatch(
        &cfg,
        &["baseline", "record", "--target", "local", "--samples", "50"],
    ));
    // Another server answers under the same target name for one round, then the good one again.
    let cfg = point_at(&bad.base_url());
    let _ = modelwatch(&cfg, &["run", "--target", "local"]);
    let cfg = point_at(&good.base_url());
    for _ in 0..2 {
        ok(&modelwatch(&cfg, &["run", "--target", "local"]));
    }

    let out = modelwatch(&cfg, &["compare", "--target", "local", "--format", "json"]);
    let r = report(&out);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(1), "{err}\n{:#}", r["reasons"]);
    assert!(
        metrics_with(&r, "quality", "regression").is_empty(),
        "{:#}",
        r["reasons"]
    );
    assert!(
        err.contains("1 round(s) (250 samples) in the window were served by another fingerprint"),
        "{err}"
    );
    let reasons = r["reasons"].to_string();
    assert!(reasons.contains("are excluded"), "{reasons}");
    // The two good rounds after the baseline, not the baseline's own round: 2 × 50 × 5. Both
    // sent the baseline's seeds: the newer one pairs with it, the older one is left out.
    let label = r["candidate_label"].as_str().unwrap();
    assert!(label.contains("since the baseline"), "{label}");
    let n: u64 = r["availability"]["candidate"]["requests"].as_u64().unwrap();
    assert_eq!(n, 250, "{:#}", r["availability"]);
    assert!(
        err.contains(
            "paired by seed: 250 pairs of a baseline sample and a later one sent the same seed; \
             left out: 250 later samples repeating a seed a newer round sent again, 0 without a \
             partner in the baseline"
        ),
        "{err}"
    );

    // An explicit window still wins: the newest round of the judged fingerprint only.
    let out = modelwatch(
        &cfg,
        &[
            "compare", "--target", "local", "--rounds", "1", "--format", "json",
        ],
    );
    let r = report(&out);
    assert_eq!(r["availability"]["candidate"]["requests"], 250);
    drop(rt);
}

#[test]
fn compare_says_when_the_baseline_comes_from_another_model() {
    let mut other = profile("clean");
    other.fingerprint.digest = "c".repeat(64);
    other.fingerprint.quantization = "Q8_0".into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (first, second) = {
        let _guard = rt.enter();
        (
            sim::spawn_on_free_port(profile("clean"), 1).unwrap(),
            sim::spawn_on_free_port(other, 2).unwrap(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let point_at = |url: &str| write_config(dir.path(), &[("local", url)], "");
    let cfg = point_at(&first.base_url());
    let out = modelwatch(
        &cfg,
        &["baseline", "record", "--target", "local", "--samples", "5"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = modelwatch(&cfg, &["run", "--target", "local"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = modelwatch(&cfg, &["compare", "--target", "local", "--format", "json"]);
    assert!(
        !stderr(&out).contains("different models"),
        "{}",
        stderr(&out)
    );

    // The same target name now serves another model: said on stderr and in the report.
    let cfg = point_at(&second.base_url());
    let out = modelwatch(&cfg, &["run", "--target", "local"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = modelwatch(
        &cfg,
        &[
            "compare", "--target", "local", "--rounds", "1", "--format", "json",
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains("note: different models: the baseline was recorded from"),
        "{err}"
    );
    let r = report(&out);
    let reasons = r["reasons"].to_string();
    assert!(reasons.contains("different models"), "{reasons}");
    drop(rt);
}
