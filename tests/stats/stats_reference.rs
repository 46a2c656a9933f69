//! Every applicable value of `tests/fixtures/stats/reference_values.json` (computed with scipy by
//! `make_reference.py`): exact methods to 1e-10 relative, asymptotic to 1e-8, permutation
//! p-values within Monte Carlo error.

use modelwatch::stats::sequential::{
    BetaBinomialEProcess, BetaPrior, MixtureSprt, log_beta_binomial_mixture,
    normal_mixture_halfwidth,
};
use modelwatch::stats::{self, Alternative, KsMethod, McNemarMethod, MwuMethod, dist};
use serde_json::Value;

const EXACT: f64 = 1e-10;
const ASYMP: f64 = 1e-8;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stats/reference_values.json"
    ))
    .expect("reference fixture is present");
    serde_json::from_str(&text).expect("reference fixture is valid JSON")
}

#[track_caller]
fn close(got: f64, want: f64, rel: f64, what: &str) {
    let ok = if want == 0.0 {
        got.abs() <= 1e-300
    } else {
        ((got - want) / want).abs() <= rel
    };
    assert!(
        ok,
        "{what}: got {got:e}, want {want:e} (rel err {:e})",
        ((got - want) / want).abs()
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn vecf(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

fn alt(s: &str) -> Alternative {
    match s {
        "two-sided" => Alternative::TwoSided,
        "less" => Alternative::Less,
        "greater" => Alternative::Greater,
        other => panic!("unknown alternative {other}"),
    }
}

fn sample(r: &Value, case: &str) -> (Vec<f64>, Vec<f64>) {
    (
        vecf(&r["samples"][case]["x"]),
        vecf(&r["samples"][case]["y"]),
    )
}

#[test]
fn ks_2samp_matches_scipy() {
    let r = reference();
    let mut checked = 0;
    for rec in r["ks_2samp"].as_array().unwrap() {
        let case = rec["case"].as_str().unwrap();
        let a = alt(rec["alternative"].as_str().unwrap());
        let (x, y) = sample(&r, case);
        let what = format!("KS case {case} {a:?}");
        let ex = stats::ks_2samp(&x, &y, a, KsMethod::Exact).unwrap();
        let asy = stats::ks_2samp(&x, &y, a, KsMethod::Asymptotic).unwrap();
        let auto = stats::ks_2samp(&x, &y, a, KsMethod::Auto).unwrap();
        assert!(
            (ex.statistic - f(&rec["statistic"]).abs()).abs() < 1e-12,
            "{what} statistic"
        );
        close(
            ex.p_value,
            f(&rec["p_exact"]),
            EXACT,
            &format!("{what} exact"),
        );
        close(
            asy.p_value,
            f(&rec["p_asymp"]),
            ASYMP,
            &format!("{what} asymp"),
        );
        assert_eq!(
            auto.p_value, ex.p_value,
            "{what}: auto is exact at this size"
        );
        if let Some(lim) = rec.get("kolmogorov_limit_p") {
            let z = ex.statistic * f(&rec["en"]).sqrt();
            close(
                dist::kstwobign_sf(z),
                f(lim),
                ASYMP,
                &format!("{what} Kolmogorov limit"),
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn mann_whitney_matches_scipy() {
    let r = reference();
    for rec in r["mannwhitneyu"].as_array().unwrap() {
        let case = rec["case"].as_str().unwrap();
        let a = alt(rec["alternative"].as_str().unwrap());
        let (x, y) = sample(&r, case);
        let what = format!("MWU case {case} {a:?}");
        let cc = stats::mann_whitney_u_with(&x, &y, a, MwuMethod::Asymptotic, true).unwrap();
        let nocc = stats::mann_whitney_u_with(&x, &y, a, MwuMethod::Asymptotic, false).unwrap();
        assert_eq!(cc.statistic, f(&rec["U1"]), "{what} U1");
        close(
            cc.p_value,
            f(&rec["p_asymptotic_cc"]),
            ASYMP,
            &format!("{what} cc"),
        );
        close(
            nocc.p_value,
            f(&rec["p_asymptotic_nocc"]),
            ASYMP,
            &format!("{what} no cc"),
        );
        if let Some(pe) = rec.get("p_exact") {
            let e = stats::mann_whitney_u_with(&x, &y, a, MwuMethod::Exact, true).unwrap();
            close(e.p_value, f(pe), EXACT, &format!("{what} exact"));
        }
        let auto = stats::mann_whitney_u(&x, &y, a).unwrap();
        let tol = if auto.method == "exact" { EXACT } else { ASYMP };
        close(
            auto.p_value,
            f(&rec["p_auto"]),
            tol,
            &format!("{what} auto"),
        );
    }
}

#[test]
fn effect_sizes_match_scipy() {
    let r = reference();
    for rec in r["effect_sizes"].as_array().unwrap() {
        let case = rec["case"].as_str().unwrap();
        let (x, y) = sample(&r, case);
        let d = stats::cliffs_delta(&x, &y, 0.95).unwrap();
        close(
            d.estimate,
            f(&rec["cliffs_delta_x_vs_y"]),
            1e-12,
            &format!("Cliff's delta {case}"),
        );
        assert!(
            d.lower < d.estimate && d.estimate < d.upper,
            "{case}: {d:?}"
        );
        // P(X > Y) + ½P(X = Y) = (δ + 1) / 2.
        close(
            (d.estimate + 1.0) / 2.0,
            f(&rec["prob_x_gt_y_plus_half_ties"]),
            1e-12,
            "AUC",
        );
        let hl = stats::hodges_lehmann(&x, &y, 0.95).unwrap();
        close(
            hl.estimate,
            f(&rec["hodges_lehmann_shift_y_minus_x"]),
            1e-12,
            &format!("HL {case}"),
        );
        assert!(hl.lower <= hl.estimate && hl.estimate <= hl.upper);
    }
}

#[test]
fn fisher_exact_matches_scipy() {
    let r = reference();
    for rec in r["fisher_exact"].as_array().unwrap() {
        let t = &rec["table"];
        let c = |i: usize, j: usize| t[i][j].as_u64().unwrap();
        for (key, a) in [
            ("p_two-sided", Alternative::TwoSided),
            ("p_less", Alternative::Less),
            ("p_greater", Alternative::Greater),
        ] {
            let res = stats::fisher_exact(c(0, 0), c(0, 1), c(1, 0), c(1, 1), a).unwrap();
            close(
                res.p_value,
                f(&rec[key]),
                EXACT,
                &format!("Fisher {t} {key}"),
            );
            let or = f(&rec["odds_ratio_sample"]);
            if or.is_finite() {
                close(res.statistic, or, 1e-14, "odds ratio");
            }
        }
    }
}

#[test]
fn mcnemar_matches_scipy() {
    let r = reference();
    for rec in r["mcnemar"].as_array().unwrap() {
        let (b, c) = (rec["b"].as_u64().unwrap(), rec["c"].as_u64().unwrap());
        let what = format!("McNemar b={b} c={c}");
        close(
            stats::mcnemar_exact(b, c).unwrap().p_value,
            f(&rec["p_exact_two_sided"]),
            EXACT,
            &what,
        );
        let g = stats::binom_test(c, b + c, 0.5, Alternative::Greater).unwrap();
        close(
            g.p_value,
            f(&rec["p_exact_greater_c_gt_b"]),
            EXACT,
            &format!("{what} one-sided"),
        );
        close(
            stats::mcnemar(b, c, McNemarMethod::MidP).unwrap().p_value,
            f(&rec["midp_two_sided"]),
            EXACT,
            &format!("{what} mid-p"),
        );
        let cc = stats::mcnemar(b, c, McNemarMethod::ChiSquareCorrected).unwrap();
        close(
            cc.statistic,
            f(&rec["chi2_cc"]),
            1e-14,
            &format!("{what} chi2 cc"),
        );
        close(
            cc.p_value,
            f(&rec["p_chi2_cc"]),
            ASYMP,
            &format!("{what} p chi2 cc"),
        );
        let nc = stats::mcnemar(b, c, McNemarMethod::ChiSquare).unwrap();
        close(
            nc.statistic,
            f(&rec["chi2_nocc"]),
            1e-14,
            &format!("{what} chi2"),
        );
        close(
            nc.p_value,
            f(&rec["p_chi2_nocc"]),
            ASYMP,
            &format!("{what} p chi2"),
        );
    }
}

#[test]
fn binomial_test_and_clopper_pearson_match_scipy() {
    let r = reference();
    for rec in r["binomtest"].as_array().unwrap() {
        let (k, n, p0) = (
            rec["k"].as_u64().unwrap(),
            rec["n"].as_u64().unwrap(),
            f(&rec["p0"]),
        );
        let a = alt(rec["alternative"].as_str().unwrap());
        let what = format!("binomtest k={k} n={n} p0={p0} {a:?}");
        close(
            stats::binom_test(k, n, p0, a).unwrap().p_value,
            f(&rec["pvalue"]),
            EXACT,
            &what,
        );
        if let Some(ci) = rec["clopper_pearson_95"].as_array() {
            let i = stats::clopper_pearson(k, n, 0.95).unwrap();
            close(i.lower, f(&ci[0]), EXACT, &format!("{what} CP lower"));
            close(i.upper, f(&ci[1]), EXACT, &format!("{what} CP upper"));
        }
    }
}

#[test]
fn anderson_ksamp_matches_scipy() {
    let r = reference();
    for rec in r["anderson_ksamp"].as_array().unwrap() {
        let case = rec["case"].as_str().unwrap();
        let midrank = rec["midrank"].as_bool().unwrap();
        let samples: Vec<Vec<f64>> = if case == "ABy3" {
            vec![
                vecf(&r["samples"]["A"]["x"]),
                vecf(&r["samples"]["A"]["y"]),
                vecf(&r["samples"]["B"]["y"]),
            ]
        } else {
            let (x, y) = sample(&r, case);
            vec![x, y]
        };
        let refs: Vec<&[f64]> = samples.iter().map(|s| s.as_slice()).collect();
        let what = format!("AD case {case} midrank={midrank}");
        let res = stats::anderson_ksamp(&refs, midrank, None).unwrap();
        close(
            res.statistic,
            f(&rec["statistic"]),
            EXACT,
            &format!("{what} statistic"),
        );
        let crit = vecf(&rec["critical_values_sig_0.25_0.10_0.05_0.025_0.01_0.005_0.001"]);
        for (got, want) in res.critical_values.iter().zip(&crit) {
            close(*got, *want, 1e-12, &format!("{what} critical value"));
        }
        close(
            res.p_value,
            f(&rec["pvalue_interpolated_clipped"]),
            ASYMP,
            &format!("{what} interpolated p"),
        );
        if let Some(pp) = rec.get("pvalue_permutation") {
            let want = f(pp);
            let perm = stats::anderson_ksamp(&refs, midrank, Some((20_000, 7))).unwrap();
            // Two independent Monte Carlo estimates of the same p: allow 5 combined SDs.
            let sd = (2.0 * want.max(1e-3) * (1.0 - want) / 20_000.0).sqrt();
            assert!(
                (perm.p_value - want).abs() <= 5.0 * sd + 1.0 / 20_001.0,
                "{what} permutation: {} vs {want}",
                perm.p_value
            );
        }
    }
}

#[test]
fn contingency_tests_match_scipy() {
    let r = reference();
    for rec in r["chi2_contingency"].as_array().unwrap() {
        let rows: Vec<Vec<u64>> = rec["table"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect()
            })
            .collect();
        let table: Vec<&[u64]> = rows.iter().map(|r| r.as_slice()).collect();
        for corr in [true, false] {
            let res = stats::chi2_contingency(&table, corr).unwrap();
            let what = format!("chi2 {:?} correction={corr}", rows);
            close(
                res.test.statistic,
                f(&rec[format!("chi2_correction_{}", if corr { "True" } else { "False" })]),
                1e-12,
                &what,
            );
            close(
                res.test.p_value,
                f(&rec[format!("p_correction_{}", if corr { "True" } else { "False" })]),
                ASYMP,
                &what,
            );
            assert_eq!(res.dof, rec["dof"].as_u64().unwrap());
            for (got_row, want_row) in res.expected.iter().zip(rec["expected"].as_array().unwrap())
            {
                for (g, w) in got_row.iter().zip(vecf(want_row)) {
                    close(*g, w, 1e-14, "expected count");
                }
            }
        }
        let g = stats::g_test(&table, false).unwrap();
        close(
            g.test.statistic,
            f(&rec["g_test_stat_nocorr"]),
            1e-12,
            "G statistic",
        );
        close(
            g.test.p_value,
            f(&rec["g_test_p_nocorr"]),
            ASYMP,
            "G p-value",
        );
    }
}

#[test]
fn multiple_testing_matches_scipy() {
    let r = reference();
    let m = &r["benjamini_hochberg"];
    let p = vecf(&m["pvalues"]);
    for (got, want) in stats::benjamini_hochberg(&p)
        .iter()
        .zip(vecf(&m["bh_adjusted"]))
    {
        close(*got, want, 1e-14, "BH");
    }
    for (got, want) in stats::benjamini_yekutieli(&p)
        .iter()
        .zip(vecf(&m["by_adjusted"]))
    {
        close(*got, want, 1e-14, "BY");
    }
    for (got, want) in stats::holm(&p).iter().zip(vecf(&m["holm_adjusted"])) {
        close(*got, want, 1e-14, "Holm");
    }
    let rejected: Vec<bool> = stats::benjamini_hochberg(&p)
        .iter()
        .map(|&q| q <= 0.05)
        .collect();
    let want: Vec<bool> = m["bh_rejected_at_q_0.05"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    assert_eq!(rejected, want);
}

#[test]
fn distributions_match_scipy() {
    let r = reference();
    let d = &r["distributions"];
    let key = |k: &str| k.parse::<f64>().unwrap();
    for (k, v) in d["norm_ppf"].as_object().unwrap() {
        close(dist::norm_ppf(key(k)), f(v), ASYMP, "norm.ppf");
    }
    for (k, v) in d["norm_sf"].as_object().unwrap() {
        close(dist::norm_sf(key(k)), f(v), ASYMP, "norm.sf");
    }
    for (k, v) in d["chi2_sf_df1"].as_object().unwrap() {
        close(dist::chi2_sf(key(k), 1.0), f(v), ASYMP, "chi2.sf");
    }
    for (k, v) in d["binom_sf_k_n100_p0.02"].as_object().unwrap() {
        close(
            dist::binom_sf(key(k) as u64, 100, 0.02),
            f(v),
            EXACT,
            "binom.sf",
        );
    }
    let (lo, pmf) = dist::hypergeom_pmf_all(9, 10, 16);
    for (k, v) in d["hypergeom_pmf_M16_n10_N9_k"].as_object().unwrap() {
        close(
            pmf[(key(k) as u64 - lo) as usize],
            f(v),
            EXACT,
            "hypergeom.pmf",
        );
    }
    close(
        dist::beta_ppf(0.975, 8.0, 94.0),
        f(&d["beta_ppf"]["a=8,b=94,q=0.975"]),
        EXACT,
        "beta.ppf",
    );
    close(
        dist::beta_ppf(0.025, 7.0, 94.0),
        f(&d["beta_ppf"]["a=7,b=94,q=0.025"]),
        EXACT,
        "beta.ppf",
    );
    for (k, v) in d["kstwo_sf_n10"].as_object().unwrap() {
        close(
            dist::kstwo_sf(10, key(k)),
            f(v),
            ASYMP,
            &format!("kstwo.sf({k}, 10)"),
        );
    }
    for (k, v) in d["kstwobign_sf"].as_object().unwrap() {
        close(
            dist::kstwobign_sf(key(k)),
            f(v),
            ASYMP,
            &format!("kstwobign.sf({k})"),
        );
    }
}

#[test]
fn sequential_building_blocks_match_closed_forms() {
    let r = reference();
    let s = &r["sequential"];
    for rec in s["msprt_normal"].as_array().unwrap() {
        let n = rec["n"].as_u64().unwrap();
        let (md, s2, t2) = (
            f(&rec["mean_minus_theta0"]),
            f(&rec["sigma2"]),
            f(&rec["tau2"]),
        );
        close(
            MixtureSprt::log_lambda(n, md, s2, t2).exp(),
            f(&rec["Lambda"]),
            1e-12,
            "mSPRT Lambda",
        );
        // Streaming: n observations with that mean, first look = always-valid p.
        let mut m = MixtureSprt::new(0.0, s2, t2).unwrap();
        for _ in 0..n {
            m.update(md);
        }
        close(m.e_value(), f(&rec["Lambda"]), 1e-9, "streamed mSPRT");
        if f(&rec["Lambda"]) > 1.0 {
            close(
                m.p_value(),
                f(&rec["always_valid_p_if_first_look"]),
                1e-9,
                "mSPRT p",
            );
        }
    }
    for rec in s["beta_binomial_mixture_log_e"].as_array().unwrap() {
        let (sc, t) = (rec["S"].as_u64().unwrap(), rec["t"].as_u64().unwrap());
        let (p0, a, b) = (f(&rec["p0"]), f(&rec["a"]), f(&rec["b"]));
        let prior = BetaPrior { a, b };
        close(
            log_beta_binomial_mixture(sc, t, p0, prior),
            f(&rec["log_e_two_sided"]),
            1e-10,
            "two-sided mixture",
        );
        let mut e = BetaBinomialEProcess::new(p0, prior).unwrap();
        e.update_counts(sc, t);
        close(
            e.log_e_value(),
            f(&rec["log_e_one_sided_truncated_prior"]),
            1e-9,
            "one-sided mixture",
        );
    }
    for rec in s["normal_mixture_cs_halfwidth"].as_array().unwrap() {
        let t = rec["t"].as_u64().unwrap();
        let hw = normal_mixture_halfwidth(t, f(&rec["sigma2"]), f(&rec["rho"]), f(&rec["alpha"]));
        close(
            hw,
            f(&rec["halfwidth_of_mean"]),
            1e-12,
            "normal mixture CS half-width",
        );
    }
}
