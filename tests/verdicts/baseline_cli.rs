//! End-to-end: the `modelwatch baseline` commands on real files, through the real binary.

use modelwatch::baseline::{Baseline, RecordInfo};
use modelwatch::drift::{self, Margins, Verdict};
use modelwatch::probe::{Expect, GenParams, Location, Probe, ProbeInput, Suite};
use modelwatch::provider::Fingerprint;
use modelwatch::rng::Rng;
use modelwatch::sample::{FinishReason, Measurements, Sample, StructuredOutcome};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PROBES: usize = 40;

#[derive(Clone, Copy)]
struct Model {
    refusal: f64,
    json_fail: f64,
    task_fail: f64,
    chars: f64,
}

const GOOD: Model = Model {
    refusal: 0.0,
    json_fail: 0.0,
    task_fail: 0.02,
    chars: 300.0,
};

const DEGRADED: Model = Model {
    refusal: 0.15,
    json_fail: 0.2,
    task_fail: 0.3,
    chars: 480.0,
};

fn probe_hash(p: usize) -> String {
    format!("{:016x}", modelwatch::rng::hash_str(&format!("probe {p}")))
}

fn samples(model: Model, seed: u64, per_probe: u32) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for p in 0..PROBES {
        let json = p % 2 == 1;
        for index in 0..per_probe {
            let refusal = rng.bernoulli(model.refusal);
            let chars = if refusal {
                40
            } else {
                rng.lognormal(model.chars * (1 + p % 3) as f64, 0.2).round() as u32
            };
            let structured = json.then(|| {
                if refusal {
                    StructuredOutcome::Refused
                } else if rng.bernoulli(model.json_fail) {
                    StructuredOutcome::SchemaViolation
                } else {
                    StructuredOutcome::Ok
                }
            });
            let ok = structured == Some(StructuredOutcome::Ok);
            let task_success = json.then(|| ok && !rng.bernoulli(model.task_fail));
            out.push(Sample {
                seed: None,
                target: "chat-prod".into(),
                suite: if json { "json" } else { "core" }.into(),
                probe_id: format!("probe-{p:02}"),
                probe_hash: probe_hash(p),
                index,
                started_at_ms: 1_764_000_000_000,
                latency_ms: rng.lognormal(700.0, 0.2),
                ttft_ms: Some(rng.lognormal(90.0, 0.2)),
                attempts: 1,
                finish_reason: Some(FinishReason::Stop),
                input_tokens: Some(20),
                response_model: None,
                system_fingerprint: None,
                measurements: Some(Measurements {
                    chars,
                    words: chars / 6,
                    lines: 1,
                    output_tokens: chars / 4,
                    tokens_estimated: false,
                    truncated: false,
                    empty: false,
                    refusal,
                    refusal_rule: None,
                    partial_refusal: false,
                    structured,
                    task_success,
                }),
                error: None,
                text: Some(if refusal {
                    "I can't help with that.".into()
                } else {
                    format!("Answer {p}/{index} with {chars} characters")
                }),
            });
        }
    }
    out
}

fn suites() -> Vec<Suite> {
    ["core", "json"]
        .iter()
        .enumerate()
        .map(|(k, name)| Suite {
            name: name.to_string(),
            description: None,
            path: PathBuf::from(format!("probes/{name}.toml")),
            defaults: GenParams::default(),
            samples: 25,
            probes: (0..PROBES)
                .filter(|p| p % 2 == k)
                .map(|p| Probe {
                    id: format!("probe-{p:02}"),
                    suite: name.to_string(),
                    description: None,
                    input: ProbeInput::Prompt(format!("prompt {p}")),
                    params: GenParams::default(),
                    samples: 25,
                    tags: Vec::new(),
                    expect: Expect::default(),
                    location: Location::default(),
                    hash: probe_hash(p),
                })
                .collect(),
            hash: format!("suite-{name}"),
        })
        .collect()
}

fn record(dir: &Path, name: &str, samples: &[Sample]) -> PathBuf {
    let fp = Fingerprint {
        provider: "ollama".into(),
        model: "qwen2.5:7b-instruct".into(),
        digest: Some(format!("sha256:{name}")),
        ..Fingerprint::default()
    };
    let info = RecordInfo {
        at_unix_ms: 1_764_000_000_000,
        samples_per_probe: 25,
        params: GenParams::default(),
    };
    let b = Baseline::from_samples("chat-prod", fp, &suites(), samples, info).unwrap();
    let path = dir.join(format!("{name}.json"));
    b.save(&path).unwrap();
    path
}

fn modelwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run modelwatch")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn diff_gives_the_same_verdicts_as_the_live_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (samples(GOOD, 1, 25), samples(DEGRADED, 2, 25));
    let live = drift::compare(&a, &b, &Margins::default());
    assert_eq!(live.verdict, Verdict::Regression);
    let (pa, pb) = (
        record(dir.path(), "good", &a),
        record(dir.path(), "degraded", &b),
    );
    let out = modelwatch(&["baseline", "diff", s(&pa), s(&pb), "--format", "json"]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "regression");
    assert_eq!(v["baseline_label"], "good.json");
    let metrics = v["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), live.metrics.len());
    for (json, m) in metrics.iter().zip(&live.metrics) {
        assert_eq!(json["metric"], m.metric.id());
        assert_eq!(json["verdict"], m.verdict.as_str(), "{}", m.metric.id());
        assert_eq!(json["p_value"].as_f64(), m.p_value);
    }
    let mut regressed: Vec<&str> = metrics
        .iter()
        .filter(|m| m["category"] == "quality" && m["verdict"] == "regression")
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    regressed.sort();
    assert_eq!(
        regressed,
        [
            "length_chars",
            "length_tokens",
            "refusal_rate",
            "structured_failure_rate",
            "task_failure_rate"
        ]
    );
}

#[test]
fn diff_of_equivalent_recordings_passes_and_renders_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let pa = record(dir.path(), "a", &samples(GOOD, 3, 25));
    let pb = record(dir.path(), "b", &samples(GOOD, 4, 25));
    let out = modelwatch(&["baseline", "diff", s(&pa), s(&pb)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.starts_with("modelwatch verdict: PASS"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
    for (format, marker) in [
        ("markdown", "## modelwatch: ✅ pass"),
        ("junit", "<testsuites name=\"modelwatch\""),
        ("html", "data-verdict=\"pass\""),
    ] {
        let file = dir.path().join(format!("report.{format}"));
        let out = modelwatch(&[
            "baseline",
            "diff",
            s(&pa),
            s(&pb),
            "--format",
            format,
            "--output",
            s(&file),
        ]);
        assert_eq!(code(&out), 0, "{format}");
        assert!(out.stdout.is_empty(), "{format}: report goes to the file");
        let body = std::fs::read_to_string(&file).unwrap();
        assert!(body.contains(marker), "{format}: {body}");
    }
}

#[test]
fn show_and_list_describe_stored_files() {
    let dir = tempfile::tempdir().unwrap();
    let pa = record(dir.path(), "chat-prod", &samples(GOOD, 5, 5));
    std::fs::write(dir.path().join("notes.json"), "{\"hello\": 1}").unwrap();
    let out = modelwatch(&["baseline", "show", s(&pa)]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("baseline for target chat-prod"), "{text}");
    assert!(text.contains("refusal_rate"));
    assert!(text.contains("json/probe-01"));
    let out = modelwatch(&["baseline", "show", s(&pa), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["samples"], 200);
    assert_eq!(v["probes"].as_array().unwrap().len(), PROBES);
    let out = modelwatch(&[
        "baseline",
        "list",
        "--dir",
        s(dir.path()),
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["target"], "chat-prod");
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a modelwatch baseline")
    );
    let out = modelwatch(&["baseline", "show", s(&pa), "--format", "html"]);
    assert_eq!(code(&out), 2);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/baselines")
        .join(name)
}

#[test]
fn broken_files_are_usage_errors_with_clear_messages() {
    let cases = [
        ("invalid/not-json.json", "not-json.json:4:3: not valid JSON"),
        ("invalid/foreign.json", "is not a modelwatch baseline"),
        (
            "invalid/future-version.json",
            "has baseline format version 2, this modelwatch reads version(s) 1",
        ),
        ("invalid/unknown-field.json", "unknown field `temprature`"),
    ];
    let good = fixture("small-v1.json");
    for (file, expected) in cases {
        let out = modelwatch(&["baseline", "diff", s(&good), s(&fixture(file))]);
        assert_eq!(code(&out), 2, "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{file}: {err}");
    }
}

#[test]
fn the_committed_v1_fixture_still_loads() {
    let b = Baseline::load(&fixture("small-v1.json")).unwrap();
    assert_eq!(b.format_version, 1);
    assert_eq!(b.target, "chat-prod");
    let text = std::fs::read_to_string(fixture("small-v1.json")).unwrap();
    assert_eq!(
        b.to_json(),
        text,
        "the writer still produces the committed layout"
    );
    let out = modelwatch(&[
        "baseline",
        "diff",
        s(&fixture("small-v1.json")),
        s(&fixture("small-v1.json")),
    ]);
    // Too few samples to show non-inferiority: inconclusive, not pass.
    assert_eq!(code(&out), 3);
}

#[test]
fn list_takes_the_directory_as_its_help_says() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), "chat-prod", &samples(GOOD, 5, 5));
    let by_flag = modelwatch(&["baseline", "list", "--dir", s(dir.path())]);
    let by_arg = modelwatch(&["baseline", "list", s(dir.path())]);
    assert_eq!(
        code(&by_arg),
        0,
        "{}",
        String::from_utf8_lossy(&by_arg.stderr)
    );
    assert_eq!(by_arg.stdout, by_flag.stdout);
    assert!(String::from_utf8_lossy(&by_arg.stdout).contains("chat-prod"));
    let both = modelwatch(&["baseline", "list", s(dir.path()), "--dir", s(dir.path())]);
    assert_eq!(code(&both), 2);
}
