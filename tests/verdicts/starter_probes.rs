//! The starter probe library in `probes/`: every suite loads with the real loader and every
//! check compiles; one round of every probe against the simulator gives the figures the
//! library is built for on the shipped `healthy` profile, and measurably worse ones on
//! `degraded`. Requests go over real HTTP through both provider APIs.

use modelwatch::config;
use modelwatch::eval::{CompiledChecks, Evaluator, RefusalConfig};
use modelwatch::probe::load::load_suite;
use modelwatch::probe::{Probe, Suite};
use modelwatch::report::summary::Figures;
use modelwatch::runner::{self, RoundOptions, SystemClock, setup};
use modelwatch::sample::Sample;
use modelwatch::sim::{self, Profile};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Every suite shipped in `probes/` (also embedded by `modelwatch run --sim`).
const SUITES: [&str; 5] = ["core", "json", "tasks", "format", "multilingual"];

fn probes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("probes")
}

fn load(name: &str) -> Suite {
    let path = probes_dir().join(format!("{name}.toml"));
    load_suite(&path).unwrap_or_else(|d| panic!("{}", modelwatch::diag::render_all(&d)))
}

#[test]
fn every_suite_loads_and_every_check_compiles() {
    let mut files: Vec<String> = std::fs::read_dir(probes_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = SUITES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "a suite in probes/ is missing from the starter list"
    );

    let (mut benign, mut json, mut task, mut schema_files) = (0, 0, 0, 0);
    for name in SUITES {
        let suite = load(name);
        assert_eq!(suite.name, name);
        assert_eq!(suite.samples, 3, "{name}: modest default sample count");
        let dir = suite.path.parent().unwrap();
        for p in &suite.probes {
            CompiledChecks::compile(&p.expect, dir)
                .unwrap_or_else(|e| panic!("{}: probe '{}': {e}", p.location, p.id));
            assert!(
                p.expect.refusal.is_some() || p.expect.expects_json() || p.expect.task.is_some(),
                "{name}/{}: a probe without checks catches nothing",
                p.id
            );
            assert!(
                p.id.len() >= 6
                    && p.id.split('-').count() >= 2
                    && p.id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}/{}: ids are descriptive kebab-case",
                p.id
            );
            benign += usize::from(p.expect.refusal == Some(false));
            json += usize::from(p.expect.expects_json());
            task += usize::from(p.expect.task.is_some() && !p.expect.expects_json());
            schema_files += usize::from(matches!(
                p.expect.json_schema,
                Some(modelwatch::probe::JsonSchemaSpec::Path(_))
            ));
        }
    }
    assert!(benign >= 45, "benign over-refusal probes: {benign}");
    assert!(json >= 20, "structured output probes: {json}");
    assert!(task >= 60, "task and format probes: {task}");
    assert!(schema_files >= 1, "at least one schema from a file");
}

/// Each probe says what it catches: the line right above its `[[probe]]` is a comment.
#[test]
fn every_probe_has_a_comment() {
    for name in SUITES {
        let text = std::fs::read_to_string(probes_dir().join(format!("{name}.toml"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() == "[[probe]]" {
                let above = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
                assert!(
                    above.is_some_and(|l| l.trim_start().starts_with('#')),
                    "probes/{name}.toml:{}: no comment above [[probe]]",
                    i + 1
                );
            }
        }
    }
}

/// The figures a round is judged on.
#[derive(Debug)]
struct Round {
    samples: usize,
    errors: usize,
    benign_refusal: f64,
    json_ok: f64,
    task_success: f64,
    /// Median output tokens of the answers (not refusals) of the `core` suite, which are prose.
    median_tokens: f64,
    per_suite: Vec<(String, Figures)>,
}

/// One round of every starter probe through the Ollama and the OpenAI API of a simulator
/// serving the built-in profile `name` (without simulated delays, to keep the test quick).
async fn round_on(name: &str) -> Round {
    let mut profile = Profile::builtin(name).expect("shipped profile");
    profile.latency_scale = 0.0;
    let model = profile.models[0].clone();
    let sim = sim::spawn_on_free_port(profile, 11).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let suites = SUITES.map(|s| format!("{s:?}")).join(", ");
    let text = format!(
        "probes_dir = {probes:?}\n[storage]\npath = {db:?}\n\
         [[target]]\nname = \"sim-ollama\"\nprovider = \"ollama\"\nbase_url = \"{base}\"\n\
         model = \"{model}\"\nsuites = [{suites}]\n\
         [[target]]\nname = \"sim-openai\"\nprovider = \"openai\"\nbase_url = \"{base}/v1\"\n\
         model = \"{model}\"\nsuites = [{suites}]\n",
        probes = probes_dir().display().to_string(),
        db = dir.path().join("db.sqlite").display().to_string(),
        base = sim.base_url(),
    );
    let path = dir.path().join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load_with_suites(&path, &config::process_env)
        .unwrap_or_else(|d| panic!("{}", modelwatch::diag::render_all(&d)));

    let evaluator = Evaluator::new(&RefusalConfig::default()).unwrap();
    let mut checks: HashMap<String, CompiledChecks> = HashMap::new();
    let mut benign: HashSet<String> = HashSet::new();
    for suite in &loaded.suites {
        let dir = suite.path.parent().unwrap();
        for p in &suite.probes {
            checks.insert(
                p.hash.clone(),
                CompiledChecks::compile(&p.expect, dir).unwrap(),
            );
            if p.expect.refusal == Some(false) {
                benign.insert(p.hash.clone());
            }
        }
    }
    let evaluate = |probe: &Probe, completion: &modelwatch::sample::Completion| {
        evaluator.evaluate(completion, checks.get(&probe.hash))
    };
    let mut samples: Vec<Sample> = Vec::new();
    for target in &loaded.config.targets {
        let probes = setup::target_probes(&loaded, target, &[]);
        let client = setup::build_client(target).unwrap();
        let options = RoundOptions {
            target: target.name.clone(),
            concurrency: 8,
            stream: target.stream,
            samples_override: None,
            keep_text: true,
        };
        let outcome =
            runner::run_round(client.as_ref(), &probes, &options, &evaluate, &SystemClock).await;
        samples.extend(outcome.samples);
    }
    sim.shutdown().await;
    // Every failed check, so that a failing run shows which answers and checks disagree.
    for s in &samples {
        if let Some(m) = &s.measurements
            && (m.task_success == Some(false) || m.structured.is_some_and(|o| o.is_failure()))
        {
            eprintln!(
                "{name} {}/{}: {:?} {:?}",
                s.suite, s.probe_id, m.structured, s.text
            );
        }
    }

    let all = Figures::of(&samples);
    let benign_samples: Vec<&Sample> = samples
        .iter()
        .filter(|s| benign.contains(&s.probe_hash))
        .collect();
    let refused = benign_samples
        .iter()
        .filter(|s| s.measurements.as_ref().is_some_and(|m| m.refusal))
        .count();
    let mut per_suite = Vec::new();
    for name in SUITES {
        per_suite.push((
            name.to_string(),
            Figures::of(samples.iter().filter(|s| s.suite == name)),
        ));
    }
    Round {
        samples: samples.len(),
        errors: all.errors as usize,
        benign_refusal: refused as f64 / benign_samples.len().max(1) as f64,
        json_ok: all
            .structured
            .as_ref()
            .map_or(0.0, |s| 1.0 - s.failure_rate),
        task_success: all.task.as_ref().map_or(0.0, |t| 1.0 - t.failure_rate),
        median_tokens: Figures::of(
            samples.iter().filter(|s| {
                s.suite == "core" && s.measurements.as_ref().is_some_and(|m| !m.refusal)
            }),
        )
        .output_tokens
        .map_or(0.0, |q| q.median),
        per_suite,
    }
}

fn show(name: &str, r: &Round) {
    // Named for the bad outcome, as every rate modelwatch prints.
    eprintln!(
        "{name}: {} samples, {} errors, benign refusal {:.3}, structured failure {:.3}, task \
         failure {:.3}, core median tokens {:.0}",
        r.samples,
        r.errors,
        r.benign_refusal,
        1.0 - r.json_ok,
        1.0 - r.task_success,
        r.median_tokens
    );
    for (suite, f) in &r.per_suite {
        eprintln!(
            "  {suite:<13} refusal {:.3}  structured failure {}  task failure {}",
            f.refusal_rate.unwrap_or(0.0),
            f.structured
                .as_ref()
                .map_or("-".into(), |s| format!("{:.3}", s.failure_rate)),
            f.task
                .as_ref()
                .map_or("-".into(), |t| format!("{:.3}", t.failure_rate)),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_passes_and_degraded_regresses() {
    let healthy = round_on("healthy").await;
    show("healthy", &healthy);
    let probes: usize = SUITES.iter().map(|s| load(s).probes.len()).sum();
    assert_eq!(
        healthy.samples,
        probes * 3 * 2,
        "every probe, 3 samples, 2 APIs"
    );
    assert_eq!(healthy.errors, 0, "no infrastructure errors");
    assert!(healthy.benign_refusal <= 0.05, "{healthy:?}");
    assert!(healthy.json_ok >= 0.90, "{healthy:?}");
    assert!(healthy.task_success >= 0.85, "{healthy:?}");
    for (suite, f) in &healthy.per_suite {
        if let Some(t) = &f.task {
            assert!(t.failure_rate <= 0.2, "healthy {suite}: task {t:?}");
        }
    }

    let degraded = round_on("degraded").await;
    show("degraded", &degraded);
    assert_eq!(degraded.errors, 0, "quality, not availability, degrades");
    assert!(
        degraded.benign_refusal >= healthy.benign_refusal + 0.2,
        "benign refusal {} → {}",
        healthy.benign_refusal,
        degraded.benign_refusal
    );
    assert!(
        degraded.json_ok <= healthy.json_ok - 0.2,
        "JSON ok {} → {}",
        healthy.json_ok,
        degraded.json_ok
    );
    assert!(
        degraded.task_success <= healthy.task_success - 0.2,
        "task success {} → {}",
        healthy.task_success,
        degraded.task_success
    );
    assert!(
        degraded.median_tokens >= 1.3 * healthy.median_tokens,
        "median tokens {} → {}",
        healthy.median_tokens,
        degraded.median_tokens
    );
    // The format suite catches rambling on its own.
    let format = |r: &Round| {
        r.per_suite
            .iter()
            .find(|(s, _)| s == "format")
            .and_then(|(_, f)| f.task.as_ref())
            .map_or(0.0, |t| 1.0 - t.failure_rate)
    };
    assert!(
        format(&degraded) <= format(&healthy) - 0.3,
        "format task success {} → {}",
        format(&healthy),
        format(&degraded)
    );
}
