//! End-to-end: `baseline record`, `compare` and `baseline diff` through the real binary against
//! simulators on port 0.

use crate::common_verdict;
use common_verdict::*;
use modelwatch::baseline::Baseline;

/// `baseline diff` of two recorded files gives the same verdict, metric by metric, as the live
/// comparison of the stored samples the second file was recorded from.
#[test]
fn diff_of_recorded_files_matches_the_live_comparison() {
    let sims = Sims::start(&[("clean", 51), ("degraded", 52)]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("good", &sims.url(0)), ("bad", &sims.url(1))],
        "",
    );

    // Default path: baselines/<target>.json next to the configuration.
    let out = modelwatch(
        &config,
        &["baseline", "record", "--target", "good", "--samples", "40"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let a = dir.path().join("baselines/good.json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("recorded 200 samples (0 failed requests) of 5 probes"),
        "{stdout}"
    );
    // Not a terminal: plain progress lines, the last one complete.
    assert!(
        stderr(&out).contains("recording good: 200/200 (100%)"),
        "{}",
        stderr(&out)
    );
    let good = Baseline::load(&a).unwrap();
    assert_eq!(good.recorded.samples_per_probe, 40);
    for p in good.probes.values() {
        let idx: Vec<u32> = p.samples.iter().map(|s| s.index).collect();
        assert_eq!(idx, (0..40).collect::<Vec<_>>());
    }

    let b = dir.path().join("bad.json");
    record_ok(&config, "bad", "40", &b);
    // Samples are stored too: 40 per probe at 50 per round is one round.
    let store = modelwatch::store::Store::open(dir.path().join("modelwatch.db")).unwrap();
    assert_eq!(store.rounds("bad", 10).unwrap().len(), 1);
    drop(store);

    let live = compare(&config, "bad", &a, &[]);
    let offline = diff(&config, &a, &b);
    let (rl, ro) = (report(&live), report(&offline));
    assert_eq!(live.status.code(), Some(1), "{}", stderr(&live));
    assert_eq!(offline.status.code(), live.status.code());
    assert_eq!(rl["verdict"], "regression");
    assert_eq!(ro["verdict"], rl["verdict"]);
    assert_eq!(
        ro["metrics"], rl["metrics"],
        "the same samples give the same statistics"
    );
    assert_eq!(
        metrics_with(&rl, "quality", "regression"),
        metrics_with(&ro, "quality", "regression")
    );
    assert!(
        stderr(&live).contains("was recorded from target good"),
        "{}",
        stderr(&live)
    );

    // `--rounds 1` selects the same round; a window with no samples is inconclusive.
    let one = compare(&config, "bad", &a, &["--rounds", "1"]);
    assert_eq!(report(&one)["metrics"], rl["metrics"]);
    let none = modelwatch(&config, &["compare", "--target", "good", "--since", "1ms"]);
    assert_eq!(none.status.code(), Some(3), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("no stored samples"),
        "{}",
        stderr(&none)
    );
    // A window reaching back before the baseline still leaves the baseline's own rounds out:
    // `good` has no rounds but those it was recorded from.
    for window in [["--since", "1h"], ["--rounds", "5"]] {
        let own = modelwatch(
            &config,
            &["compare", "--target", "good", window[0], window[1]],
        );
        assert_eq!(own.status.code(), Some(3), "{window:?}: {}", stderr(&own));
        assert!(
            stderr(&own).contains("no stored samples"),
            "{window:?}: {}",
            stderr(&own)
        );
    }
    let own = modelwatch(&config, &["compare", "--target", "good", "--since", "1h"]);
    assert!(
        stderr(&own).contains("the window starts when the baseline was recorded"),
        "{}",
        stderr(&own)
    );
}

/// Margins from the configuration decide both the live and the offline comparison.
/// Without `--samples` a baseline takes the documented default per probe (docs/verdicts.md):
/// the size the daemon's null boundaries were measured with, not the canary's 20.
#[test]
fn a_baseline_records_the_default_samples_per_probe() {
    let sims = Sims::start(&[("clean", 53)]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("good", &sims.url(0))], "");
    let out = modelwatch(&config, &["baseline", "record", "--target", "good"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("recorded 400 samples (0 failed requests) of 5 probes"),
        "{stdout}"
    );
    let b = Baseline::load(&dir.path().join("baselines/good.json")).unwrap();
    assert_eq!(b.recorded.samples_per_probe, 80);
    assert_eq!(modelwatch::baseline::DEFAULT_SAMPLES_PER_PROBE, 80);
    assert!(b.probes.values().all(|p| p.samples.len() == 80));
}

#[test]
fn configured_margins_apply_to_compare_and_diff() {
    let sims = Sims::start(&[("clean", 61), ("degraded", 62)]);
    let dir = tempfile::tempdir().unwrap();
    let loose = "[margins]\nrefusal_points = 0.9\nrefusal_relative_risk = 1000\n\
                 structured_points = 0.9\ntask_failure_points = 0.9\nlength_cliffs_delta = 1\n\
                 length_log_ratio = 5\nlength_shape_ks = 1\n";
    let config = write_config(
        dir.path(),
        &[("good", &sims.url(0)), ("bad", &sims.url(1))],
        loose,
    );
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    for (t, f) in [("good", &a), ("bad", &b)] {
        record_ok(&config, t, "20", f);
    }
    let live = report(&compare(&config, "bad", &a, &[]));
    let offline = report(&diff(&config, &a, &b));
    for r in [&live, &offline] {
        assert!(
            metrics_with(r, "quality", "regression").is_empty(),
            "{:#}",
            r["reasons"]
        );
        assert_eq!(r["margins"]["refusal_points"], 0.9);
    }
    // Without the configuration the defaults apply and the same files regress.
    let defaults = diff(&dir.path().join("absent.toml"), &a, &b);
    assert_eq!(defaults.status.code(), Some(1), "{}", stderr(&defaults));
}

/// An unreachable target is not recorded (exit 3, says why); --force records anyway.
#[test]
fn recording_an_unreachable_target_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_url();
    let config = write_config(dir.path(), &[("down", &dead)], "");
    let path = dir.path().join("down.json");
    let out = record(&config, "down", "200", &path, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not recording a baseline") && err.contains("connect"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(!path.exists());
    let out = record(&config, "down", "2", &path, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let b = Baseline::load(&path).unwrap();
    assert_eq!(b.counts(), (10, 10));
    // A candidate compared with a baseline is inconclusive when it cannot be reached.
    let sims = Sims::start(&[("clean", 71)]);
    let config = write_config(dir.path(), &[("up", &sims.url(0)), ("down", &dead)], "");
    let good = dir.path().join("good.json");
    record_ok(&config, "up", "10", &good);
    let out = canary_vs_baseline(&config, "down", &good, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = report(&out);
    assert!(metrics_with(&r, "quality", "regression").is_empty());
    assert!(
        stderr(&out).contains("down could not be measured"),
        "{}",
        stderr(&out)
    );
}

/// A candidate compared with a stored baseline of the same model passes; of a degraded one,
/// regresses.
#[test]
fn canary_against_a_baseline() {
    let sims = Sims::start(&[("clean", 81), ("clean", 82), ("degraded", 83)]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("prod", &sims.url(0)),
            ("same", &sims.url(1)),
            ("worse", &sims.url(2)),
        ],
        "",
    );
    let a = dir.path().join("prod.json");
    record_ok(&config, "prod", "200", &a);
    // The baseline was recorded with seeds and the candidate is sent the same ones: paired.
    let same = canary_vs_baseline(&config, "same", &a, &["--samples", "200"]);
    let r = report(&same);
    assert_eq!(r["design"], "paired");
    assert!(
        r["reasons"]
            .to_string()
            .contains("paired by seed: 1000 pairs"),
        "{:#}",
        r["reasons"]
    );
    assert_eq!(same.status.code(), Some(0), "{:#}", r["reasons"]);
    // Without seeds the candidate's answers are independent draws: two sets, unpaired.
    let free = canary_vs_baseline(
        &config,
        "same",
        &a,
        &["--samples", "200", "--no-seed-pairing"],
    );
    let r = report(&free);
    assert_eq!(r["design"], "unpaired");
    assert_eq!(free.status.code(), Some(0), "{:#}", r["reasons"]);
    let worse = canary_vs_baseline(&config, "worse", &a, &["--samples", "30"]);
    assert_eq!(worse.status.code(), Some(1), "{}", stderr(&worse));
}
