//! Property tests with seeded simulation: p-values in [0, 1], symmetry, invariance of rank tests
//! under monotone transforms, anytime validity of the e-processes under the null, detection
//! under clear alternatives, and detection delay against Wald's SPRT floor.

use modelwatch::rng::Rng;
use modelwatch::stats::sequential::{
    BernoulliCusum, BetaBinomialEProcess, BetaPrior, McNemarSequential, MixtureSprt, RankEProcess,
};
use modelwatch::stats::{self, Alternative, KsMethod, StatsError};
use serde_json::Value;

fn lognormal_sample(rng: &mut Rng, n: usize, median: f64) -> Vec<f64> {
    (0..n).map(|_| rng.lognormal(median, 0.6).round()).collect()
}

#[test]
fn p_values_are_probabilities_and_two_sided_tests_are_symmetric() {
    let mut rng = Rng::new(11);
    for trial in 0..60 {
        let n = 3 + (trial % 25);
        let m = 2 + (trial * 7 % 31);
        let x = lognormal_sample(&mut rng, n, 100.0);
        let y = lognormal_sample(&mut rng, m, 100.0 + trial as f64);
        for a in [
            Alternative::TwoSided,
            Alternative::Less,
            Alternative::Greater,
        ] {
            for p in [
                stats::mann_whitney_u(&x, &y, a).unwrap().p_value,
                stats::ks_2samp(&x, &y, a, KsMethod::Auto).unwrap().p_value,
                stats::ks_2samp(&x, &y, a, KsMethod::Asymptotic)
                    .unwrap()
                    .p_value,
            ] {
                assert!((0.0..=1.0).contains(&p), "p = {p}");
            }
        }
        let mw_xy = stats::mann_whitney_u(&x, &y, Alternative::TwoSided)
            .unwrap()
            .p_value;
        let mw_yx = stats::mann_whitney_u(&y, &x, Alternative::TwoSided)
            .unwrap()
            .p_value;
        assert!((mw_xy - mw_yx).abs() < 1e-12);
        let ks_xy = stats::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Exact)
            .unwrap()
            .p_value;
        let ks_yx = stats::ks_2samp(&y, &x, Alternative::TwoSided, KsMethod::Exact)
            .unwrap()
            .p_value;
        assert!((ks_xy - ks_yx).abs() < 1e-12);
        // One-sided directions swap with the samples.
        let g = stats::ks_2samp(&x, &y, Alternative::Greater, KsMethod::Exact)
            .unwrap()
            .p_value;
        let l = stats::ks_2samp(&y, &x, Alternative::Less, KsMethod::Exact)
            .unwrap()
            .p_value;
        assert!((g - l).abs() < 1e-12);
        let d_xy = stats::cliffs_delta(&x, &y, 0.95).unwrap();
        let d_yx = stats::cliffs_delta(&y, &x, 0.95).unwrap();
        assert!((d_xy.estimate + d_yx.estimate).abs() < 1e-12);
        assert!((d_xy.lower + d_yx.upper).abs() < 1e-9);
        let hl_xy = stats::hodges_lehmann(&x, &y, 0.95).unwrap().estimate;
        let hl_yx = stats::hodges_lehmann(&y, &x, 0.95).unwrap().estimate;
        assert_eq!(hl_xy, -hl_yx);
    }
    for _ in 0..100 {
        let t: Vec<u64> = (0..4).map(|_| rng.below(30)).collect();
        if t.iter().sum::<u64>() == 0 {
            continue;
        }
        let p = stats::fisher_exact(t[0], t[1], t[2], t[3], Alternative::TwoSided)
            .unwrap()
            .p_value;
        let pt = stats::fisher_exact(t[0], t[2], t[1], t[3], Alternative::TwoSided)
            .unwrap()
            .p_value;
        assert!(
            (0.0..=1.0).contains(&p) && (p - pt).abs() < 1e-12,
            "transpose symmetry"
        );
    }
}

#[test]
fn rank_tests_are_invariant_under_monotone_transforms() {
    let mut rng = Rng::new(12);
    let x = lognormal_sample(&mut rng, 40, 120.0);
    let y = lognormal_sample(&mut rng, 35, 150.0);
    let tf = |v: &[f64]| {
        v.iter()
            .map(|z| z.ln() * 3.0 + z.powi(3) * 1e-6)
            .collect::<Vec<_>>()
    };
    let (tx, ty) = (tf(&x), tf(&y));
    let mw = stats::mann_whitney_u(&x, &y, Alternative::TwoSided).unwrap();
    let mwt = stats::mann_whitney_u(&tx, &ty, Alternative::TwoSided).unwrap();
    assert_eq!(mw, mwt);
    let ks = stats::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Auto).unwrap();
    let kst = stats::ks_2samp(&tx, &ty, Alternative::TwoSided, KsMethod::Auto).unwrap();
    assert_eq!(ks, kst);
    assert_eq!(
        stats::cliffs_delta(&x, &y, 0.9).unwrap(),
        stats::cliffs_delta(&tx, &ty, 0.9).unwrap()
    );
    let ad = stats::anderson_ksamp(&[&x, &y], true, None).unwrap();
    let adt = stats::anderson_ksamp(&[&tx, &ty], true, None).unwrap();
    assert!((ad.statistic - adt.statistic).abs() < 1e-12);
}

#[test]
fn fixed_sample_tests_hold_their_level_and_detect_shifts() {
    // 2,000 null datasets of 20 vs 20: rejection rate at 5% stays at or below ~5%.
    let mut rng = Rng::new(13);
    let (mut mw_rej, mut ks_rej) = (0, 0);
    let reps = 2000;
    for _ in 0..reps {
        let x = lognormal_sample(&mut rng, 20, 200.0);
        let y = lognormal_sample(&mut rng, 20, 200.0);
        mw_rej += usize::from(
            stats::mann_whitney_u(&x, &y, Alternative::TwoSided)
                .unwrap()
                .p_value
                <= 0.05,
        );
        ks_rej += usize::from(
            stats::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Auto)
                .unwrap()
                .p_value
                <= 0.05,
        );
    }
    let limit = (0.05 + 3.0 * (0.05f64 * 0.95 / reps as f64).sqrt()) * reps as f64;
    assert!(
        (mw_rej as f64) <= limit && (ks_rej as f64) <= limit,
        "MWU {mw_rej}, KS {ks_rej} of {reps}"
    );
    // Doubling the typical length is found nearly always (power ≈ 0.9 at 20 vs 20).
    let mut found = 0;
    for _ in 0..200 {
        let x = lognormal_sample(&mut rng, 20, 200.0);
        let y = lognormal_sample(&mut rng, 20, 400.0);
        found += usize::from(
            stats::mann_whitney_u(&x, &y, Alternative::Less)
                .unwrap()
                .p_value
                <= 0.05,
        );
    }
    assert!(found >= 165, "found {found}/200");
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    assert!(matches!(
        stats::mann_whitney_u(&[], &[1.0], Alternative::TwoSided),
        Err(StatsError::Empty { .. })
    ));
    assert!(matches!(
        stats::ks_2samp(
            &[1.0, f64::NAN],
            &[1.0],
            Alternative::TwoSided,
            KsMethod::Auto
        ),
        Err(StatsError::NonFinite { index: 1, .. })
    ));
    assert!(stats::cliffs_delta(&[1.0], &[f64::INFINITY], 0.95).is_err());
    assert!(stats::hodges_lehmann(&[1.0], &[2.0], 0.0).is_err());
    assert!(stats::anderson_ksamp(&[&[1.0, 1.0], &[1.0]], true, None).is_err());
    assert!(stats::chi2_contingency(&[&[0, 0], &[1, 2]], false).is_err());
    assert!(stats::cmh(&[]).is_err());
    assert!(stats::mcnemar_exact(0, 0).is_err());
    assert!(stats::newcombe_diff(1, 0, 1, 10, 0.95).is_err());
    assert!(BetaBinomialEProcess::new(f64::NAN, BetaPrior::uniform()).is_err());
    assert!(MixtureSprt::new(0.0, 0.0, 1.0).is_err());
    assert!(RankEProcess::new(0.7, Alternative::Greater).is_err());
}

/// Fraction of `streams` null streams of length `horizon` whose e-process ever reaches 1/α.
fn null_crossing_rate(
    streams: u64,
    horizon: usize,
    alpha: f64,
    mut step: impl FnMut(&mut Rng) -> Box<dyn FnMut(&mut Rng) -> bool>,
) -> f64 {
    let mut crossed = 0;
    for s in 0..streams {
        let mut rng = Rng::from_parts(&[0xE0, s]);
        let mut stream = step(&mut rng);
        for _ in 0..horizon {
            if stream(&mut rng) {
                crossed += 1;
                break;
            }
        }
    }
    let _ = alpha;
    crossed as f64 / streams as f64
}

#[test]
fn e_processes_keep_the_level_under_continuous_monitoring() {
    let alpha = 0.05;
    let streams = 2000;
    // Allowed: α plus three binomial standard errors.
    let limit = alpha + 3.0 * (alpha * (1.0 - alpha) / streams as f64).sqrt();

    // Bernoulli rate exactly at the null boundary (the worst case of p <= p0).
    let rate = null_crossing_rate(streams, 300, alpha, |_| {
        let mut e = BetaBinomialEProcess::new(0.1, BetaPrior::for_alternative(0.2)).unwrap();
        Box::new(move |rng: &mut Rng| {
            e.update(rng.bernoulli(0.1));
            e.rejected(alpha)
        })
    });
    assert!(rate <= limit, "beta-binomial e-process crossed in {rate}");

    let rate = null_crossing_rate(streams, 300, alpha, |_| {
        let mut m = McNemarSequential::new();
        Box::new(move |rng: &mut Rng| {
            let first = rng.bernoulli(0.8);
            let second = rng.bernoulli(0.8);
            m.update(first, second);
            m.rejected(alpha)
        })
    });
    assert!(rate <= limit, "sequential McNemar crossed in {rate}");

    let rate = null_crossing_rate(streams, 500, alpha, |_| {
        let mut m = MixtureSprt::new(0.0, 1.0, 0.05).unwrap();
        Box::new(move |rng: &mut Rng| {
            m.update(rng.normal());
            m.rejected(alpha)
        })
    });
    assert!(rate <= limit, "mSPRT crossed in {rate}");

    // Placements of fresh values against per-probe baselines of 20 from the same distribution,
    // rotating over 30 probes, with the default margin.
    let rate = null_crossing_rate(streams, 600, alpha, |rng| {
        let baselines: Vec<Vec<f64>> = (0..30)
            .map(|p| {
                let mut b = lognormal_sample(rng, 20, 50.0 + 10.0 * p as f64);
                b.sort_by(f64::total_cmp);
                b
            })
            .collect();
        let mut e = RankEProcess::new(0.05, Alternative::TwoSided).unwrap();
        let mut t = 0usize;
        Box::new(move |rng: &mut Rng| {
            let p = t % 30;
            t += 1;
            let x = rng.lognormal(50.0 + 10.0 * p as f64, 0.6).round();
            e.update(&baselines[p], x);
            e.rejected(alpha)
        })
    });
    assert!(rate <= limit, "rank e-process crossed in {rate}");
}

#[test]
fn e_processes_detect_clear_alternatives() {
    let mut rng = Rng::new(21);
    let mut e = BetaBinomialEProcess::new(0.05, BetaPrior::for_alternative(0.10)).unwrap();
    for _ in 0..2000 {
        e.update(rng.bernoulli(0.25));
    }
    assert!(e.rejected(0.001) && e.p_value() < 1e-6);

    let mut m = McNemarSequential::new();
    for _ in 0..400 {
        m.update(rng.bernoulli(0.9), rng.bernoulli(0.6));
    }
    assert!(m.rejected(0.001));

    let mut s = MixtureSprt::new(0.0, 1.0, 0.05).unwrap();
    for _ in 0..400 {
        s.update(0.5 + rng.normal());
    }
    assert!(s.rejected(0.001));

    let mut base = lognormal_sample(&mut rng, 20, 100.0);
    base.sort_by(f64::total_cmp);
    let mut r = RankEProcess::new(0.05, Alternative::TwoSided).unwrap();
    for _ in 0..200 {
        r.update(&base, rng.lognormal(160.0, 0.6).round());
    }
    assert!(r.rejected(0.001));
}

#[test]
fn cusum_calibration_is_reproducible_and_hits_the_target_arl() {
    let target = 2000.0;
    let a = BernoulliCusum::calibrate(0.05, 0.10, target, 42).unwrap();
    let b = BernoulliCusum::calibrate(0.05, 0.10, target, 42).unwrap();
    assert_eq!(a.threshold(), b.threshold());
    // Lorden: ARL₀ >= e^h, so the calibrated h is below ln(target).
    assert!(a.threshold() > 0.0 && a.threshold() < target.ln());
    // An independent simulation (different seed) lands near the target.
    let arl = a.mean_run_length(0.05, a.threshold(), 3000, 4242, 1e9);
    assert!(
        (arl - target).abs() / target < 0.12,
        "ARL0 {arl} vs target {target}"
    );
    // Out of control, alarms come much sooner.
    let delay = a.mean_run_length(0.10, a.threshold(), 1000, 7, 1e9);
    assert!(delay < target / 5.0, "delay {delay}");
}

/// Median and 90th percentile of the detection delay of the default beta-binomial e-process
/// (null boundary p0, prior for p1, α = 0.01), `runs` seeded streams at the true rate p1.
fn delays(p0: f64, p1: f64, runs: u64, cap: u64) -> (f64, f64, f64) {
    let mut out = Vec::new();
    let mut censored = 0;
    for r in 0..runs {
        let mut rng = Rng::from_parts(&[0xDE1A, r]);
        let mut e = BetaBinomialEProcess::new(p0, BetaPrior::for_alternative(p1)).unwrap();
        let mut n = 0;
        while n < cap && !e.rejected(0.01) {
            e.update(rng.bernoulli(p1));
            n += 1;
        }
        if n >= cap {
            censored += 1;
        }
        out.push(n as f64);
    }
    out.sort_by(f64::total_cmp);
    let q = |f: f64| out[((out.len() - 1) as f64 * f).round() as usize];
    (q(0.5), q(0.9), censored as f64 / runs as f64)
}

#[test]
fn detection_delay_is_within_a_small_factor_of_the_wald_floor() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stats/detection_floors.json"
    ))
    .unwrap();
    let floors: Value = serde_json::from_str(&text).unwrap();
    let wanted = [
        "refusal 2%->7%",
        "refusal 5%->10%",
        "task failure 10%->20% (success 90%->80%)",
    ];
    for rec in floors["sprt"].as_array().unwrap() {
        let name = rec["name"].as_str().unwrap();
        if !wanted.contains(&name) {
            continue;
        }
        let (p0, p1) = (rec["p0"].as_f64().unwrap(), rec["p1"].as_f64().unwrap());
        let wald = rec["E1N_wald"].as_f64().unwrap();
        let sprt_median = rec["sim_under_H1"]["median_N"].as_f64().unwrap();
        let (median, p90, censored) = delays(p0, p1, 300, (wald * 20.0) as u64);
        eprintln!(
            "{name}: median {median}, p90 {p90} (Wald E1N {wald:.1}, SPRT median {sprt_median})"
        );
        assert!(
            censored < 0.02,
            "{name}: {censored} of streams never detected"
        );
        assert!(
            median <= 2.0 * wald,
            "{name}: median delay {median} vs Wald {wald}"
        );
        assert!(
            median >= 0.5 * sprt_median,
            "{name}: implausibly fast ({median})"
        );
    }
}
