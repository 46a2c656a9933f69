use super::*;
use crate::drift::tests::{Profile, synth};
use crate::probe::{Expect, Location, Probe, ProbeInput};
use std::path::Path;

/// Suites matching the probes `synth` generates (`core` even, `json` odd).
pub(crate) fn suites(probes: usize) -> Vec<Suite> {
    let mut core = Vec::new();
    let mut json = Vec::new();
    for p in 0..probes {
        let suite = if p % 2 == 1 { "json" } else { "core" };
        let probe = Probe {
            id: format!("p{p:03}"),
            suite: suite.into(),
            description: None,
            input: ProbeInput::Prompt(format!("prompt {p}")),
            params: GenParams::default(),
            samples: 10,
            tags: Vec::new(),
            expect: Expect::default(),
            location: Location::default(),
            hash: format!("h{p:03}"),
        };
        if p % 2 == 1 {
            json.push(probe)
        } else {
            core.push(probe)
        }
    }
    [("core", core), ("json", json)]
        .into_iter()
        .map(|(name, probes)| Suite {
            name: name.into(),
            description: None,
            path: format!("probes/{name}.toml").into(),
            defaults: GenParams::default(),
            samples: 10,
            probes,
            hash: format!("suite-{name}"),
        })
        .collect()
}

fn fingerprint() -> Fingerprint {
    Fingerprint {
        provider: "ollama".into(),
        model: "qwen2.5:7b-instruct".into(),
        digest: Some("sha256:abc".into()),
        details: BTreeMap::from([("quantization".into(), "Q4_K_M".into())]),
    }
}

fn info() -> RecordInfo {
    RecordInfo {
        at_unix_ms: 1_764_174_600_123,
        samples_per_probe: 10,
        params: GenParams {
            temperature: Some(0.7),
            max_tokens: Some(256),
            ..GenParams::default()
        },
    }
}

pub(crate) fn recorded(profile: Profile, seed: u64, probes: usize, samples: u32) -> Baseline {
    let s = synth(profile, seed, probes, samples);
    Baseline::from_samples("chat-prod", fingerprint(), &suites(probes), &s, info())
        .expect("valid samples")
}

#[test]
fn round_trips_through_its_file_text() {
    let b = recorded(
        Profile {
            error: 0.1,
            ..Profile::default()
        },
        1,
        6,
        5,
    );
    let text = b.to_json();
    let back = Baseline::parse(Path::new("b.json"), &text).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.to_json(), text, "writing is deterministic");
    assert_eq!(b.recorded.at, "2025-11-26T16:30:00.123Z");
    assert_eq!(b.suites["json"], "suite-json");
    assert_eq!(b.probes["p003"].suite, "json");
    assert!(b.counts().1 > 0, "errors are kept as errors");
}

#[test]
fn file_layout_is_one_sample_per_line() {
    let b = recorded(Profile::default(), 2, 4, 3);
    let text = b.to_json();
    let sample_lines = text
        .lines()
        .filter(|l| l.trim_start().starts_with("{\"excerpt\"") || l.contains("\"index\":"))
        .count();
    assert_eq!(sample_lines, 12);
    assert!(text.starts_with("{\n  \"fingerprint\": {\n"));
    assert!(text.contains("\n  \"format_version\": 1,\n"));
    assert!(text.ends_with("}\n"));
}

#[test]
fn stored_samples_keep_every_measurement() {
    let samples = synth(Profile::default(), 3, 4, 3);
    let b = Baseline::from_samples("t", fingerprint(), &suites(4), &samples, info()).unwrap();
    let back = b.samples();
    assert_eq!(back.len(), samples.len());
    for s in &samples {
        let r = back
            .iter()
            .find(|r| r.probe_id == s.probe_id && r.index == s.index)
            .unwrap();
        assert_eq!(r.measurements, s.measurements);
        assert_eq!(r.latency_ms, s.latency_ms);
        assert_eq!(r.finish_reason, s.finish_reason);
        assert_eq!(r.probe_hash, s.probe_hash);
        assert_eq!(r.suite, s.suite);
    }
}

#[test]
fn excerpts_are_short_and_on_one_line() {
    let long = format!("first line\n\n  second   line {}", "x".repeat(500));
    let e = excerpt(&long);
    assert!(e.chars().count() <= EXCERPT_CHARS, "{}", e.chars().count());
    assert!(e.starts_with("first line second line x"));
    assert!(e.ends_with('…'));
    assert!(!e.contains('\n'));
    assert_eq!(excerpt("  short  answer "), "short answer");
    let words = "word ".repeat(100);
    let e = excerpt(&words);
    assert!(e.chars().count() <= EXCERPT_CHARS);
    assert!(e.ends_with("word…"), "{e}");
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
}

fn load_err(text: &str) -> String {
    Baseline::parse(Path::new("baselines/x.json"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn load_errors_say_what_and_where() {
    let e = load_err("{\n  \"format_version\": 1,\n  oops\n}");
    assert!(e.starts_with("baselines/x.json:3:3: not valid JSON"), "{e}");
    let e = load_err("{\"name\": \"package\", \"version\": \"1.0\"}");
    assert!(e.contains("is not a modelwatch baseline"), "{e}");
    let e = load_err("[1, 2]");
    assert!(e.contains("is not a modelwatch baseline"), "{e}");
    let e = load_err("{\"format_version\": 7, \"probes\": {}}");
    assert!(e.contains("format version 7"), "{e}");
    assert!(e.contains("reads version(s) 1"), "{e}");
    let good = recorded(Profile::default(), 4, 2, 1).to_json();
    let bad = good.replacen("\"target\"", "\"targt\"", 1);
    let e = load_err(&bad);
    assert!(e.contains("invalid baseline: unknown field `targt`"), "{e}");
    assert!(e.starts_with("baselines/x.json:"), "{e}");
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baselines").join("chat-prod.json");
    let b = recorded(Profile::default(), 5, 4, 2);
    b.save(&path).unwrap();
    let mut b2 = b.clone();
    b2.target = "other".into();
    b2.save(&path).unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), b2);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["chat-prod.json"]);
    let missing = Baseline::load(&dir.path().join("nope.json")).unwrap_err();
    assert!(missing.to_string().contains("cannot read baseline"));
}

#[test]
fn compatibility_lists_changed_added_and_removed_probes() {
    let b = recorded(Profile::default(), 6, 6, 2);
    let mut now = suites(6);
    now[0].probes[0].hash = "edited".into(); // core/p000
    now[1].probes.pop(); // json/p005 removed
    let mut extra = now[0].probes[1].clone();
    extra.id = "p100".into();
    now[0].probes.push(extra);
    let c = b.check(&now).unwrap();
    assert_eq!(c.changed.len(), 1);
    assert_eq!(c.changed[0].id, "p000");
    assert_eq!(c.added, ["core/p100"]);
    assert_eq!(c.removed, ["json/p005"]);
    let w = c.warnings();
    assert!(
        w[0].contains("core/p000 changed") && w[0].contains("excluded"),
        "{w:?}"
    );
    let usable = b.comparable_samples(&c);
    assert!(
        usable
            .iter()
            .all(|s| s.probe_id != "p000" && s.probe_id != "p005")
    );
    assert_eq!(usable.len(), 4 * 2);
}

#[test]
fn a_baseline_for_another_suite_set_is_an_error() {
    let b = recorded(Profile::default(), 7, 4, 1);
    let mut now = suites(4);
    now[1].name = "extraction".into();
    let e = b.check(&now).unwrap_err().to_string();
    assert!(e.contains("suites [core, json]"), "{e}");
    assert!(e.contains("now uses [core, extraction]"), "{e}");
}

#[test]
fn recording_rejects_samples_that_do_not_match_the_suites() {
    let mut s = synth(Profile::default(), 8, 2, 1);
    s[0].probe_hash = "stale".into();
    let e = Baseline::from_samples("t", fingerprint(), &suites(2), &s, info()).unwrap_err();
    assert!(matches!(e, BaselineError::HashMismatch { .. }), "{e}");
    let s = synth(Profile::default(), 8, 3, 1);
    let e = Baseline::from_samples("t", fingerprint(), &suites(2), &s, info()).unwrap_err();
    assert!(e.to_string().contains("p002"), "{e}");
    let mut dup = suites(2);
    let mut p = dup[0].probes[0].clone();
    p.suite = "json".into();
    dup[1].probes.push(p);
    let e = Baseline::from_samples("t", fingerprint(), &dup, &[], info()).unwrap_err();
    assert!(matches!(e, BaselineError::DuplicateProbe { .. }), "{e}");
}

#[test]
fn stored_files_give_the_same_verdicts_as_the_live_samples() {
    let worse = Profile {
        refusal: 0.2,
        median_chars: 550.0,
        ..Profile::default()
    };
    let (sa, sb) = (
        synth(Profile::default(), 9, 10, 10),
        synth(worse, 10, 10, 10),
    );
    let a = Baseline::from_samples("t", fingerprint(), &suites(10), &sa, info()).unwrap();
    let b = Baseline::from_samples("t", fingerprint(), &suites(10), &sb, info()).unwrap();
    let m = crate::drift::Margins::default();
    let live = crate::drift::compare(&sa, &sb, &m);
    let stored = crate::drift::compare_with(&a.samples(), &b.samples(), &m, &a.expectations());
    assert_eq!(live.verdict, crate::drift::Verdict::Regression);
    assert_eq!(stored.verdict, live.verdict);
    assert_eq!(stored.metrics, live.metrics);
}

#[test]
fn summary_reports_rates_quantiles_and_probes() {
    let b = recorded(
        Profile {
            refusal: 0.5,
            ..Profile::default()
        },
        11,
        4,
        20,
    );
    let s = b.summary();
    assert_eq!(s.samples, 80);
    let r = s
        .metrics
        .iter()
        .find(|m| m.metric == "refusal_rate")
        .unwrap();
    let rate = r.rate.unwrap();
    assert!(r.lower.unwrap() < rate && rate < r.upper.unwrap());
    let len = s
        .metrics
        .iter()
        .find(|m| m.metric == "length_chars")
        .unwrap();
    let q = len.quantiles.unwrap();
    assert!(q[0] <= q[1] && q[1] <= q[2]);
    assert_eq!(s.probes.len(), 4);
    assert!(s.probes[1].structured_failure_rate.is_some());
    assert!(s.probes[0].structured_failure_rate.is_none());
}

#[test]
fn recorded_expectations_come_back_from_the_file() {
    let mut s = suites(4);
    s[0].probes[1].expect.refusal = Some(true); // core/p002
    s[1].probes[0].expect.refusal = Some(false); // json/p001: benign, stays default
    let samples = synth(Profile::default(), 12, 4, 2);
    let b = Baseline::from_samples("t", fingerprint(), &s, &samples, info()).unwrap();
    let back = Baseline::parse(Path::new("b.json"), &b.to_json()).unwrap();
    assert_eq!(
        back.expectations(),
        crate::drift::Expectations::from_suites(&s)
    );
    assert!(back.expectations().refusal_expected("core", "p002"));
    assert!(!back.expectations().refusal_expected("json", "p001"));
    assert_eq!(b.to_json().matches("\"refusal_expected\": true").count(), 1);
}

#[test]
fn recordings_with_too_many_failures_are_refused() {
    let ok = synth(Profile::default(), 13, 4, 10);
    assert!(check_recording(&ok, DEFAULT_MAX_ERROR_RATE).is_ok());
    let flaky = synth(
        Profile {
            error: 0.5,
            ..Profile::default()
        },
        14,
        4,
        10,
    );
    let e = check_recording(&flaky, DEFAULT_MAX_ERROR_RATE)
        .unwrap_err()
        .to_string();
    assert!(e.contains("requests failed (timeout: "), "{e}");
    assert!(
        e.contains("above the 20% limit") && e.contains("--force"),
        "{e}"
    );
    assert!(check_recording(&flaky, 0.9).is_ok());
    assert!(matches!(
        check_recording(&[], DEFAULT_MAX_ERROR_RATE),
        Err(BaselineError::NothingRecorded)
    ));
}
