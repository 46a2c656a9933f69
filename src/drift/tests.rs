//! Verdict engine tests on seeded synthetic sample sets, plus a generator other tests reuse.

use super::*;
use crate::rng::Rng;
use crate::sample::{ErrorKind, FinishReason, Measurements, SampleError};

/// How a synthetic model behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    pub refusal: f64,
    pub json_fail: f64,
    pub task_fail: f64,
    pub median_chars: f64,
    pub truncation: f64,
    pub error: f64,
    pub latency_ms: f64,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            refusal: 0.01,
            json_fail: 0.0,
            task_fail: 0.05,
            median_chars: 400.0,
            truncation: 0.0,
            error: 0.0,
            latency_ms: 800.0,
        }
    }
}

/// `probes` probes (odd ones in suite `json`, expecting JSON with a task check), `samples`
/// samples each. Probe `p` has a natural length of `median_chars × (1 + p mod 5)`.
pub(crate) fn synth(profile: Profile, seed: u64, probes: usize, samples: u32) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for p in 0..probes {
        let json = p % 2 == 1;
        let suite = if json { "json" } else { "core" };
        for index in 0..samples {
            let mut s = Sample {
                seed: None,
                target: "t".into(),
                suite: suite.into(),
                probe_id: format!("p{p:03}"),
                probe_hash: format!("h{p:03}"),
                index,
                started_at_ms: 0,
                latency_ms: rng.lognormal(profile.latency_ms, 0.2),
                ttft_ms: None,
                attempts: 1,
                finish_reason: Some(FinishReason::Stop),
                input_tokens: None,
                response_model: None,
                system_fingerprint: None,
                measurements: None,
                error: None,
                text: None,
            };
            if rng.bernoulli(profile.error) {
                s.error = Some(SampleError::new(ErrorKind::Timeout, "timed out"));
                out.push(s);
                continue;
            }
            let refusal = rng.bernoulli(profile.refusal);
            let truncated = rng.bernoulli(profile.truncation);
            let natural = profile.median_chars * (1.0 + (p % 5) as f64);
            let chars = if refusal {
                60
            } else {
                rng.lognormal(natural, 0.25).round() as u32
            };
            let structured = json.then(|| {
                if refusal {
                    StructuredOutcome::Refused
                } else if rng.bernoulli(profile.json_fail) {
                    StructuredOutcome::InvalidJson
                } else {
                    StructuredOutcome::Ok
                }
            });
            let task_success = json.then(|| {
                structured == Some(StructuredOutcome::Ok) && !rng.bernoulli(profile.task_fail)
            });
            s.text = Some(if refusal {
                "I can't help with that request.".to_string()
            } else {
                format!(
                    "Answer to probe {p}: {}",
                    "word ".repeat((chars / 5) as usize)
                )
            });
            s.measurements = Some(Measurements {
                chars,
                words: chars / 5,
                lines: 1,
                output_tokens: chars / 4,
                tokens_estimated: false,
                truncated,
                empty: false,
                refusal,
                refusal_rule: refusal.then(|| "lexicon:en:cant_help".into()),
                partial_refusal: false,
                structured,
                task_success,
            });
            out.push(s);
        }
    }
    out
}

fn get<'a>(r: &'a Report, id: &str) -> &'a MetricResult {
    r.metrics
        .iter()
        .find(|m| m.metric.id() == id)
        .unwrap_or_else(|| panic!("metric {id} missing"))
}

fn regressions(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Regression && m.category == Category::Quality)
        .map(|m| m.metric.id())
        .collect();
    v.sort();
    v
}

#[test]
fn identical_profiles_pass_with_enough_samples() {
    // Tight default margins (1 point on JSON failures, 3 on task success) need hundreds of
    // samples per side to show non-inferiority.
    let good = Profile {
        refusal: 0.0,
        task_fail: 0.02,
        ..Profile::default()
    };
    let base = synth(good, 1, 40, 25);
    let recent = synth(good, 2, 40, 25);
    let r = compare(&base, &recent, &Margins::default());
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.reasons);
    assert_eq!(r.exit_code, 0);
    assert!(r.flipped.is_empty(), "{:?}", r.flipped);
    assert_eq!(r.probes.compared, 40);
}

#[test]
fn identical_profiles_never_regress_across_seeds() {
    for seed in 0..6 {
        let base = synth(Profile::default(), 100 + seed, 20, 10);
        let recent = synth(Profile::default(), 200 + seed, 20, 10);
        let r = compare(&base, &recent, &Margins::default());
        assert_ne!(
            r.verdict,
            Verdict::Regression,
            "seed {seed}: {:#?}",
            r.reasons
        );
    }
}

#[test]
fn degraded_profile_regresses_on_exactly_the_degraded_metrics() {
    let base = synth(Profile::default(), 3, 40, 20);
    let worse = Profile {
        refusal: 0.15,
        json_fail: 0.25,
        task_fail: 0.30,
        median_chars: 600.0,
        ..Profile::default()
    };
    let recent = synth(worse, 4, 40, 20);
    let r = compare(&base, &recent, &Margins::default());
    assert_eq!(r.verdict, Verdict::Regression);
    assert_eq!(r.exit_code, 1);
    assert_eq!(
        regressions(&r),
        [
            "length_chars",
            "length_tokens",
            "refusal_rate",
            "structured_failure_rate",
            "task_failure_rate"
        ]
    );
    assert_ne!(get(&r, "empty_rate").verdict, Verdict::Regression);
    assert_ne!(get(&r, "truncation_rate").verdict, Verdict::Regression);
    let refusal = get(&r, "refusal_rate");
    assert_eq!(refusal.test, "fisher_exact");
    let d = refusal.effect.estimate.unwrap();
    assert!(
        d > 0.1 && refusal.effect.lower.unwrap() > 0.0,
        "{refusal:?}"
    );
    let len = get(&r, "length_chars");
    let ratio = len.effect.estimate.unwrap().exp();
    assert!((1.3..1.7).contains(&ratio), "length ratio {ratio}");
    // The structured breakdown names the kind that broke.
    assert_eq!(
        get(&r, "structured_failure_rate.invalid_json").verdict,
        Verdict::Regression
    );
    assert!(r.reasons.iter().any(|s| s.contains("refusal_rate")));
}

#[test]
fn partial_refusals_are_a_diagnostic_breakdown_of_refusals() {
    let base = synth(Profile::default(), 3, 40, 20);
    // No partial refusal on either side: the breakdown is not shown.
    let r = compare(
        &base,
        &synth(Profile::default(), 4, 40, 20),
        &Margins::default(),
    );
    assert!(
        r.metrics
            .iter()
            .all(|m| m.metric.id() != "partial_refusal_rate")
    );
    // The candidate refuses more, and most of its refusals are partial.
    let mut recent = synth(
        Profile {
            refusal: 0.15,
            ..Profile::default()
        },
        4,
        40,
        20,
    );
    let mut partial = 0;
    for s in recent.iter_mut() {
        let m = s.measurements.as_mut().unwrap();
        if m.refusal && s.index % 4 != 0 {
            m.partial_refusal = true;
            partial += 1;
        }
    }
    let r = compare(&base, &recent, &Margins::default());
    let p = get(&r, "partial_refusal_rate");
    assert_eq!(p.category, Category::Diagnostic);
    assert_eq!(p.test, "fisher_exact");
    assert!(p.effect.lower.unwrap() > 0.0, "{p:?}");
    // Counted among refusals too; the refusal rate is what decides.
    assert!(regressions(&r).contains(&"refusal_rate".to_string()));
    assert_eq!(p.candidate.events, Some(partial));
    assert_eq!(p.candidate.n, get(&r, "refusal_rate").candidate.n);
}

#[test]
fn shorter_answers_are_a_regression_too() {
    let base = synth(Profile::default(), 5, 20, 20);
    let shorter = Profile {
        median_chars: 250.0,
        ..Profile::default()
    };
    let r = compare(&base, &synth(shorter, 6, 20, 20), &Margins::default());
    let len = get(&r, "length_chars");
    assert_eq!(len.verdict, Verdict::Regression);
    assert!(len.effect.estimate.unwrap() < 0.0);
    assert!(r.flipped.iter().any(|f| f.kind == FlipKind::Shorter));
}

#[test]
fn better_task_success_is_an_improvement_not_a_regression() {
    let base = synth(
        Profile {
            task_fail: 0.4,
            ..Profile::default()
        },
        7,
        40,
        20,
    );
    let better = synth(
        Profile {
            task_fail: 0.05,
            ..Profile::default()
        },
        8,
        40,
        20,
    );
    let r = compare(&base, &better, &Margins::default());
    assert_eq!(get(&r, "task_failure_rate").verdict, Verdict::Improvement);
    assert_ne!(r.verdict, Verdict::Regression);
}

#[test]
fn few_samples_are_inconclusive_with_an_estimate() {
    let base = synth(Profile::default(), 9, 4, 5);
    let recent = synth(Profile::default(), 10, 4, 5);
    let r = compare(&base, &recent, &Margins::default());
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.exit_code, 3);
    let refusal = get(&r, "refusal_rate");
    assert_eq!(refusal.verdict, Verdict::Inconclusive);
    let more = refusal.more_samples.expect("an estimate");
    assert!(more > 20, "{more}");
    // The estimate is honest: with that many more samples per side at the same (zero) rates
    // the refusal metric passes.
    let total = 20 + more;
    let per_probe = (total / 4 + 1) as u32;
    let r2 = compare(
        &synth(
            Profile {
                refusal: 0.0,
                ..Profile::default()
            },
            11,
            4,
            per_probe,
        ),
        &synth(
            Profile {
                refusal: 0.0,
                ..Profile::default()
            },
            12,
            4,
            per_probe,
        ),
        &Margins::default(),
    );
    assert_eq!(get(&r2, "refusal_rate").verdict, Verdict::Pass);
}

#[test]
fn infrastructure_errors_never_count_as_quality() {
    let base = synth(Profile::default(), 13, 40, 20);
    let flaky = Profile {
        error: 0.5,
        ..Profile::default()
    };
    let r = compare(&base, &synth(flaky, 14, 40, 20), &Margins::default());
    // Refusal rate is computed over answered samples only: no change.
    assert_ne!(get(&r, "refusal_rate").verdict, Verdict::Regression);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(r.reasons[0].contains("candidate"), "{:?}", r.reasons);
    assert!(r.reasons[0].contains("timeout"));
    assert!(r.availability.candidate.error_rate > 0.4);
}

#[test]
fn unreachable_candidate_is_inconclusive() {
    let base = synth(Profile::default(), 15, 10, 10);
    let down = Profile {
        error: 1.0,
        ..Profile::default()
    };
    let r = compare(&base, &synth(down, 16, 10, 10), &Margins::default());
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.exit_code, 3);
}

#[test]
fn changed_probes_are_never_compared() {
    let base = synth(Profile::default(), 17, 6, 10);
    let mut recent = synth(Profile::default(), 18, 7, 10);
    for s in recent.iter_mut().filter(|s| s.probe_id == "p000") {
        s.probe_hash = "edited".into();
        s.measurements.as_mut().unwrap().refusal = true;
    }
    let r = compare(&base, &recent, &Margins::default());
    assert_eq!(r.probes.changed, ["core/p000"]);
    assert_eq!(r.probes.only_candidate, ["core/p006"]);
    assert_eq!(r.probes.compared, 5);
    assert_eq!(
        get(&r, "refusal_rate").candidate.events,
        Some(
            recent
                .iter()
                .filter(|s| s.probe_id != "p000" && s.probe_id != "p006")
                .filter(|s| s.measurements.as_ref().is_some_and(|m| m.refusal))
                .count() as u64
        )
    );
}

#[test]
fn a_probe_that_starts_refusing_is_listed_with_excerpts() {
    let base = synth(Profile::default(), 19, 10, 20);
    let mut recent = synth(Profile::default(), 20, 10, 20);
    for s in recent.iter_mut().filter(|s| s.probe_id == "p004") {
        let m = s.measurements.as_mut().unwrap();
        m.refusal = true;
        s.text = Some("I'm sorry, I cannot assist with stopping processes.".into());
    }
    let r = compare(&base, &recent, &Margins::default());
    let flip = r
        .flipped
        .iter()
        .find(|f| f.kind == FlipKind::StartedRefusing)
        .expect("flip listed");
    assert_eq!(flip.probe_id, "p004");
    assert!(flip.baseline_value < 0.2 && flip.candidate_value == 1.0);
    assert!(
        flip.baseline_excerpt
            .as_deref()
            .unwrap()
            .starts_with("Answer to probe 4")
    );
    assert!(
        flip.candidate_excerpt
            .as_deref()
            .unwrap()
            .contains("cannot assist")
    );
    assert!(flip.p_adjusted.unwrap() < 0.05);
}

#[test]
fn paired_canary_uses_mcnemar() {
    let cur = synth(Profile::default(), 21, 30, 20);
    let cand = synth(
        Profile {
            refusal: 0.2,
            ..Profile::default()
        },
        22,
        30,
        20,
    );
    let r = compare_paired(&cur, &cand, &Margins::default(), &Expectations::default());
    assert_eq!(r.design, Design::Paired);
    let refusal = get(&r, "refusal_rate");
    assert_eq!(refusal.test, "mcnemar_exact");
    assert_eq!(refusal.verdict, Verdict::Regression);
    assert_eq!(refusal.baseline.n, refusal.candidate.n);
    assert_eq!(r.verdict, Verdict::Regression);
}

#[test]
fn paired_design_drops_samples_without_a_partner() {
    let cur = synth(Profile::default(), 23, 4, 10);
    let mut cand = synth(Profile::default(), 24, 4, 10);
    cand.retain(|s| s.index < 8);
    let r = compare_paired(&cur, &cand, &Margins::default(), &Expectations::default());
    assert_eq!(r.probes.unpaired_samples, 8);
    assert_eq!(get(&r, "refusal_rate").baseline.n, 32);
}

#[test]
fn latency_is_performance_and_does_not_decide_by_default() {
    let base = synth(Profile::default(), 25, 60, 20);
    let slow = Profile {
        latency_ms: 2000.0,
        ..Profile::default()
    };
    let recent = synth(slow, 26, 60, 20);
    let r = compare(&base, &recent, &Margins::default());
    let lat = get(&r, "latency");
    assert_eq!(lat.category, Category::Performance);
    assert_eq!(lat.verdict, Verdict::Regression);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    let gated = Margins {
        performance_gates: true,
        ..Margins::default()
    };
    assert_eq!(compare(&base, &recent, &gated).verdict, Verdict::Regression);
}

#[test]
fn refusals_on_should_refuse_probes_are_correct_and_misses_are_regressions() {
    // Probe p000 expects a refusal: the baseline refuses it, the candidate answers it.
    let mut base = synth(Profile::default(), 27, 10, 30);
    let mut cand = synth(Profile::default(), 28, 10, 30);
    for s in base.iter_mut().filter(|s| s.probe_id == "p000") {
        s.measurements.as_mut().unwrap().refusal = true;
        s.text = Some("I won't help with that.".into());
    }
    for s in cand.iter_mut().filter(|s| s.probe_id == "p000") {
        s.measurements.as_mut().unwrap().refusal = false;
    }
    let expect = Expectations {
        refusal_expected: ["core/p000".to_string()].into(),
        ..Expectations::default()
    };
    let r = compare_with(&base, &cand, &Margins::default(), &expect);
    let missed = get(&r, "missed_refusal_rate");
    assert_eq!(missed.baseline.rate, Some(0.0));
    assert_eq!(missed.candidate.rate, Some(1.0));
    assert_eq!(missed.verdict, Verdict::Regression);
    // The should-refuse probe stays out of the benign refusal rate.
    assert_eq!(get(&r, "refusal_rate").baseline.n, 270);
    assert!(
        r.flipped
            .iter()
            .any(|f| f.kind == FlipKind::StoppedRefusing)
    );
    assert_eq!(r.verdict, Verdict::Regression);
    // Without the expectation the same data reads as fewer refusals: not a regression there.
    let naive = compare(&base, &cand, &Margins::default());
    assert!(
        naive
            .metrics
            .iter()
            .all(|m| m.metric != Metric::MissedRefusalRate)
    );
    assert_ne!(get(&naive, "refusal_rate").verdict, Verdict::Regression);
}

#[test]
fn paired_design_pairs_round_by_round_and_drops_failed_pairs() {
    // Two rounds of the same probes: indices repeat, start times tell the rounds apart.
    let round = |seed, t0: i64| {
        let mut v = synth(Profile::default(), seed, 3, 4);
        for s in &mut v {
            s.started_at_ms = t0 + i64::from(s.index);
        }
        v
    };
    let cur: Vec<Sample> = round(41, 1000).into_iter().chain(round(42, 5000)).collect();
    let mut cand: Vec<Sample> = round(43, 1001).into_iter().chain(round(44, 5001)).collect();
    // The candidate's first round failed once: that pair is dropped, the others stay aligned.
    cand[0].error = Some(SampleError::new(ErrorKind::Timeout, "timed out"));
    cand[0].measurements = None;
    let r = compare_paired(&cur, &cand, &Margins::default(), &Expectations::default());
    assert_eq!(get(&r, "refusal_rate").baseline.n, 23);
    assert_eq!(get(&r, "refusal_rate").candidate.n, 23);
    assert_eq!(r.probes.unpaired_samples, 1);
}

#[test]
fn margins_are_configurable_with_documented_defaults() {
    let m: Margins = toml::from_str("alpha = 0.01\nrefusal_points = 0.05").unwrap();
    assert_eq!(m.alpha, 0.01);
    assert_eq!(m.refusal_points, 0.05);
    assert_eq!(m.structured_points, Margins::default().structured_points);
    assert!((Margins::default().length_log_ratio - 1.15f64.ln()).abs() < 1e-15);
    let err = toml::from_str::<Margins>("refusal_pts = 0.05").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn a_larger_margin_turns_a_small_regression_into_a_pass() {
    let base = synth(Profile::default(), 51, 40, 20);
    let recent = synth(
        Profile {
            refusal: 0.06,
            ..Profile::default()
        },
        52,
        40,
        20,
    );
    let strict = compare(&base, &recent, &Margins::default());
    assert_eq!(get(&strict, "refusal_rate").verdict, Verdict::Regression);
    let loose = Margins {
        refusal_points: 0.15,
        ..Margins::default()
    };
    let r = compare(&base, &recent, &loose);
    assert_eq!(get(&r, "refusal_rate").verdict, Verdict::Pass);
}

/// Candidate lengths scaled per sample by `f(index)`, answers of suite `suite` only.
fn reshape(samples: &mut [Sample], suite: &str, f: impl Fn(u32) -> f64) {
    for s in samples.iter_mut().filter(|s| s.suite == suite) {
        if let Some(m) = s.measurements.as_mut().filter(|m| !m.refusal) {
            m.chars = (f64::from(m.chars) * f(s.index)).round() as u32;
            m.output_tokens = m.chars / 4;
        }
    }
}

#[test]
fn a_bimodal_change_with_equal_median_is_a_shape_regression_in_words() {
    let base = synth(Profile::default(), 41, 40, 20);
    let mut cand = synth(Profile::default(), 42, 40, 20);
    // A third much shorter, a third much longer, the middle third (and the median) kept.
    reshape(&mut cand, "core", |i| match i % 3 {
        0 => 0.15,
        1 => 1.0,
        _ => 3.0,
    });
    let r = compare(&base, &cand, &Margins::default());
    let shape = get(&r, "length_shape");
    assert_eq!(shape.verdict, Verdict::Regression, "{shape:#?}");
    assert_eq!(shape.effect.measure, "ks_distance");
    assert!(shape.effect.estimate.unwrap() > 0.25, "{shape:?}");
    assert_eq!(shape.strata.len(), 1, "only the core suite moved");
    assert_eq!(shape.strata[0].name, "core");
    let words = shape.detail.as_deref().unwrap();
    assert!(words.starts_with("core: p10 length -"), "{words}");
    assert!(words.contains("answers under"), "{words}");
    // The stratum's own line names the suite once ("suite core: p10 …").
    let summary = &shape.strata[0].summary;
    assert!(summary.starts_with("p10 length -"), "{summary}");
    assert_eq!(r.verdict, Verdict::Regression);
    assert!(r.reasons.iter().any(|s| s.contains("length_shape")));
}

#[test]
fn a_pure_location_change_is_not_a_shape_regression() {
    let base = synth(Profile::default(), 43, 40, 20);
    let longer = Profile {
        median_chars: 520.0,
        ..Profile::default()
    };
    let r = compare(&base, &synth(longer, 44, 40, 20), &Margins::default());
    assert_eq!(get(&r, "length_chars").verdict, Verdict::Regression);
    assert_ne!(get(&r, "length_shape").verdict, Verdict::Regression);
}

#[test]
fn identical_profiles_never_flag_a_shape_across_seeds() {
    for seed in 0..20 {
        let base = synth(Profile::default(), 300 + seed, 20, 10);
        let recent = synth(Profile::default(), 400 + seed, 20, 10);
        let r = compare(&base, &recent, &Margins::default());
        let shape = get(&r, "length_shape");
        assert_ne!(shape.verdict, Verdict::Regression, "seed {seed}: {shape:?}");
    }
}

#[test]
fn lengths_are_judged_on_answers_not_refusals() {
    // More refusals (short texts) and longer answers: with refusals counted as answers the
    // two cancel; judged on answers the length is longer.
    let base = synth(Profile::default(), 45, 40, 20);
    let worse = Profile {
        refusal: 0.35,
        median_chars: 560.0,
        ..Profile::default()
    };
    let r = compare(&base, &synth(worse, 46, 40, 20), &Margins::default());
    let len = get(&r, "length_chars");
    assert_eq!(len.verdict, Verdict::Regression, "{len:#?}");
    assert!(len.effect.estimate.unwrap() > 0.0, "{len:?}");
    let answers = r.metrics.iter().find(|m| m.metric == Metric::RefusalRate);
    let refusals = answers.unwrap().candidate.events.unwrap();
    assert_eq!(
        len.candidate.n + refusals,
        get(&r, "empty_rate").candidate.n
    );
}

/// Baseline (seed `seed`) and candidate (`seed + 1`), 20 probes × 20 samples, every one an
/// answer of exactly 100 characters: ties everywhere, so the Hodges–Lehmann shift is zero.
fn all_answers_100_chars(seed: u64) -> (Vec<Sample>, Vec<Sample>) {
    let mut base = synth(Profile::default(), seed, 20, 20);
    let mut cand = synth(Profile::default(), seed + 1, 20, 20);
    for s in base.iter_mut().chain(cand.iter_mut()) {
        if let Some(m) = s.measurements.as_mut() {
            m.refusal = false;
            m.chars = 100;
        }
    }
    (base, cand)
}

#[test]
fn the_effect_shown_is_the_one_the_verdict_rests_on() {
    // Every baseline answer of a probe has the same length: the Hodges–Lehmann shift is zero
    // while 40 % of candidate answers triple, so Cliff's delta alone reaches its margin.
    let (base, mut cand) = all_answers_100_chars(47);
    for s in cand.iter_mut().filter(|s| s.index % 5 < 2) {
        s.measurements.as_mut().unwrap().chars = 300;
    }
    let r = compare(&base, &cand, &Margins::default());
    let len = get(&r, "length_chars");
    assert_eq!(len.verdict, Verdict::Regression);
    assert_eq!(len.effect.measure, "cliffs_delta", "{len:#?}");
    assert!((len.effect.estimate.unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(
        len.secondary.as_ref().unwrap().measure,
        "hodges_lehmann_log_ratio"
    );
    assert!(
        describe(len).contains("Cliff's delta +0.40"),
        "{}",
        describe(len)
    );
    assert_eq!(len.margin, "|HL shift| ≥ 15% or |Cliff's delta| ≥ 0.147");
}

#[test]
fn a_pass_shows_the_effect_nearer_its_margin() {
    // Every answer but a few is 100 characters long: the Hodges–Lehmann shift and its interval
    // are exactly zero, Cliff's delta carries the uncertainty the pass had to overcome.
    let (base, mut cand) = all_answers_100_chars(51);
    for s in cand
        .iter_mut()
        .filter(|s| s.index == 0 && s.probe_id.as_str() < "p005")
    {
        s.measurements.as_mut().unwrap().chars = 104;
    }
    let r = compare(&base, &cand, &Margins::default());
    let len = get(&r, "length_chars");
    assert_eq!(len.verdict, Verdict::Pass, "{len:#?}");
    assert_eq!(len.effect.measure, "cliffs_delta", "{len:#?}");
    assert!(len.effect.upper.unwrap() > 0.0, "{len:#?}");
    let hl = len.secondary.as_ref().unwrap();
    assert_eq!(hl.measure, "hodges_lehmann_log_ratio");
    assert_eq!((hl.lower, hl.upper), (Some(0.0), Some(0.0)), "{hl:#?}");
}

#[test]
fn one_probe_always_wrong_is_a_regression_naming_it() {
    // 80 probes, 40 with a task check; one of them always fails: pooled task success moves
    // about 2.4 points (below the 3-point margin), the probe alone about 95 % → 0 %.
    let base = synth(Profile::default(), 49, 80, 20);
    let mut cand = synth(Profile::default(), 50, 80, 20);
    for s in cand.iter_mut().filter(|s| s.probe_id == "p007") {
        s.measurements.as_mut().unwrap().task_success = Some(false);
    }
    let r = compare(&base, &cand, &Margins::default());
    let task = get(&r, "task_failure_rate");
    assert_eq!(task.verdict, Verdict::Regression, "{task:#?}");
    let names: Vec<&str> = task.strata.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["json/p007"]);
    assert!(
        task.strata[0]
            .summary
            .ends_with("→ 100% (20 vs 20 samples)")
    );
    assert!(r.reasons.iter().any(|s| s.contains("moved in json/p007")));
    // The same sets without the broken probe: no stratum moves.
    let clean = synth(Profile::default(), 50, 80, 20);
    let r = compare(&base, &clean, &Margins::default());
    assert!(get(&r, "task_failure_rate").strata.is_empty());
}

#[test]
fn a_flip_needs_enough_samples_to_be_claimed_from_its_size() {
    let base = synth(Profile::default(), 51, 10, 1);
    let mut cand = synth(Profile::default(), 52, 10, 1);
    for s in cand.iter_mut().filter(|s| s.probe_id == "p001") {
        s.measurements.as_mut().unwrap().task_success = Some(false);
    }
    let r = compare(&base, &cand, &Margins::default());
    assert!(
        r.flipped
            .iter()
            .all(|f| f.metric != Metric::TaskFailureRate),
        "{:?}",
        r.flipped
    );
}

#[test]
fn other_wording_with_equal_rates_is_a_behaviour_change_not_a_regression() {
    let base = synth(Profile::default(), 53, 20, 10);
    let mut cand = synth(Profile::default(), 54, 20, 10);
    for s in cand.iter_mut() {
        if let Some(t) = s.text.as_mut() {
            *t = t.replace("Answer to probe", "Here is the reply for item");
        }
    }
    let r = compare(&base, &cand, &Margins::default());
    let b = get(&r, "behaviour");
    assert_eq!(b.verdict, Verdict::Changed, "{b:#?}");
    assert_eq!(b.category, Category::Behaviour);
    assert!(b.p_value.unwrap() < 0.01);
    assert!(r.behaviour_changed);
    assert_ne!(r.verdict, Verdict::Regression);
    assert!(
        r.reasons
            .iter()
            .any(|s| s.starts_with("warning: the served behaviour changed")),
        "{:?}",
        r.reasons
    );
    let same = compare(
        &base,
        &synth(Profile::default(), 55, 20, 10),
        &Margins::default(),
    );
    assert_eq!(get(&same, "behaviour").verdict, Verdict::Pass);
    assert!(!same.behaviour_changed);
}

#[test]
fn seed_paired_replay_agreement_is_shown_for_seeded_probes() {
    let base = synth(Profile::default(), 56, 6, 8);
    // The same seeds replayed: identical texts on the seeded probes.
    let cand = base.clone();
    let expect = Expectations {
        seeded: ["core/p000".to_string(), "json/p001".to_string()].into(),
        ..Expectations::default()
    };
    let r = compare_paired(&base, &cand, &Margins::default(), &expect);
    let b = get(&r, "behaviour");
    let agreement = b.secondary.as_ref().unwrap();
    assert_eq!(agreement.measure, "replay_agreement");
    assert_eq!(agreement.estimate, Some(1.0));
    assert!(
        b.detail
            .as_deref()
            .unwrap()
            .starts_with("seed-paired replay agreement 100% (16 of 16 pairs identical)"),
        "{:?}",
        b.detail
    );
    // Without seeded probes there is nothing to replay.
    let r = compare_paired(&base, &cand, &Margins::default(), &Expectations::default());
    assert!(get(&r, "behaviour").secondary.is_none());
}

#[test]
fn a_stratum_can_carry_its_own_margin() {
    let base = synth(Profile::default(), 49, 80, 20);
    let mut cand = synth(Profile::default(), 50, 80, 20);
    for s in cand.iter_mut().filter(|s| s.probe_id == "p007") {
        s.measurements.as_mut().unwrap().task_success = Some(false);
    }
    // The probe is allowed to move all the way: nothing moved beyond its margin.
    let loose = Expectations {
        stratum_margins: [("json/p007".to_string(), 1.0)].into(),
        ..Expectations::default()
    };
    let r = compare_with(&base, &cand, &Margins::default(), &loose);
    let task = get(&r, "task_failure_rate");
    assert!(task.strata.is_empty(), "{:?}", task.strata);
    assert_ne!(task.verdict, Verdict::Regression);
    // A suite margin applies to its probes that have none of their own.
    let suite = Expectations {
        stratum_margins: [("json".to_string(), 1.0)].into(),
        ..Expectations::default()
    };
    let r = compare_with(&base, &cand, &Margins::default(), &suite);
    assert!(get(&r, "task_failure_rate").strata.is_empty());
}
