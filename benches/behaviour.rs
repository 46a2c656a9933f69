//! Power and false-flag rate of the behaviour metric (pooled MMD with a Hamming kernel on
//! words, Gao, Liang & Guestrin 2024) on the simulator's answers to the starter suites.
//!
//! Texts come from the simulator's own generation function (`sim::model::respond`) for every
//! probe in `probes/*.toml`, prompts rendered as the OpenAI-compatible endpoint renders chat
//! messages, no request seed (the server samples freely). Each replicate draws `n` texts per
//! probe on each side from two independently seeded simulated servers, cuts them to the stored
//! excerpt (`baseline::excerpt`), and runs the verdict engine's test (`stats::mmd_test`, 499
//! permutations, fixed seed) at alpha 0.01:
//! - power: `healthy` against `reworded` (equal rates, lengths and fingerprint, other words);
//! - false flags: `healthy` against `healthy`, new server seeds each replicate.
//!
//! `cargo bench --bench behaviour` prints a Markdown table; `-- --quick` is a smoke run.
//! `-- --daemon` measures the daemon's behaviour check instead: the same test at the level and
//! with the permutations of one check at the default cadence (`daemon::behaviour`), its power
//! against `reworded`, its false flags and the CPU time of one check over the starter suites.
//! Seeds are fixed: the same command prints the same figures.

use modelwatch::baseline::excerpt;
use modelwatch::probe::load::load_suite;
use modelwatch::probe::{Probe, ProbeInput};
use modelwatch::sim::model::{Draw, DrawSource, GenRequest, Outcome, respond};
use modelwatch::sim::profile::Profile;
use modelwatch::stats::{PromptTexts, mmd_test};
use std::path::Path;
use std::time::Instant;

const ALPHA: f64 = 0.01;
const PERMUTATIONS: usize = 499;

fn prompt_of(p: &Probe) -> String {
    match &p.input {
        ProbeInput::Prompt(t) => format!("user: {t}"),
        ProbeInput::Messages(ms) => ms
            .iter()
            .map(|m| format!("{}: {}", m.role.as_str(), m.content))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn starter_prompts() -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new("probes"))
        .expect("run from the repository root: probes/ holds the starter suites")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let suite = load_suite(&f).unwrap_or_else(|_| panic!("{} does not load", f.display()));
        out.extend(suite.probes.iter().map(prompt_of));
    }
    out
}

/// `n` texts per prompt from a simulated server with `profile` and server seed `seed`.
fn texts(profile: &Profile, seed: u64, prompts: &[String], n: usize) -> Vec<Vec<String>> {
    prompts
        .iter()
        .map(|prompt| {
            (0..n as u64)
                .filter_map(|k| {
                    let draw = Draw::new(seed, 0, prompt, DrawSource::Occurrence(k));
                    let req = GenRequest {
                        prompt,
                        max_tokens: Some(256),
                        stop: &[],
                        json_mode: false,
                    };
                    match respond(profile, &draw, &req) {
                        Outcome::Reply(r) => Some(excerpt(&r.text)),
                        Outcome::Fault(_) => None,
                    }
                })
                .collect()
        })
        .collect()
}

/// Each prompt's texts of both sides, as the test takes them.
fn groups<'a>(a: &'a [Vec<String>], b: &'a [Vec<String>]) -> Vec<PromptTexts<'a>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| PromptTexts {
            baseline: x.iter().map(String::as_str).collect(),
            candidate: y.iter().map(String::as_str).collect(),
        })
        .collect()
}

/// The share of replicates flagged at `ALPHA`, and the median p-value.
fn flagged(
    a: &Profile,
    b: &Profile,
    prompts: &[String],
    n: usize,
    replicates: u64,
    base_seed: u64,
) -> (usize, f64) {
    let mut hits = 0;
    let mut ps = Vec::new();
    for r in 0..replicates {
        let ta = texts(a, base_seed + 2 * r, prompts, n);
        let tb = texts(b, base_seed + 2 * r + 1, prompts, n);
        let t = mmd_test(&groups(&ta, &tb), PERMUTATIONS, 0x6265_6861_7669_6f75)
            .expect("texts on both");
        hits += usize::from(t.p_value < ALPHA);
        ps.push(t.p_value);
    }
    ps.sort_by(f64::total_cmp);
    (hits, ps[ps.len() / 2])
}

/// One-sided 95 % Clopper–Pearson upper bound of a share, `k` events in `n`, by bisection on
/// the binomial CDF.
fn upper_bound(k: usize, n: u64) -> f64 {
    let cdf = |p: f64| -> f64 {
        let mut term = (1.0 - p).powi(n as i32);
        let mut sum = term;
        for i in 0..k {
            term *= (n as f64 - i as f64) / (i as f64 + 1.0) * p / (1.0 - p);
            sum += term;
        }
        sum
    };
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if cdf(mid) > 0.05 { lo = mid } else { hi = mid }
    }
    hi
}

/// The daemon's check: power, false flags and CPU time per check at the default cadence.
fn daemon_check(prompts: &[String], healthy: &Profile, reworded: &Profile, quick: bool) {
    let settings = modelwatch::daemon::behaviour::BehaviourSettings::default();
    let (alpha, permutations) = (settings.alpha_per_check(), settings.permutations());
    let reps: u64 = if quick { 3 } else { 20 };
    let null_reps: u64 = if quick { 5 } else { 100 };
    println!(
        "Daemon behaviour check, starter suites ({} probes), 10 texts per probe and side, \
         alpha per check {alpha:.2e}, {permutations} permutations\n",
        prompts.len()
    );
    println!("| comparison | replicates | flagged | median CPU per check | max |");
    println!("|---|---|---|---|---|");
    for (label, other, n, seed) in [
        ("healthy vs reworded (power)", reworded, reps, 7_000u64),
        (
            "healthy vs healthy, new seeds (false flags)",
            healthy,
            null_reps,
            9_000_000,
        ),
    ] {
        let mut hits = 0;
        let mut times = Vec::new();
        for r in 0..n {
            let ta = texts(healthy, seed + 2 * r, prompts, 10);
            let tb = texts(other, seed + 2 * r + 1, prompts, 10);
            let groups = groups(&ta, &tb);
            let started = Instant::now();
            let t = mmd_test(&groups, permutations, 0x6265_6861_7669_6f77).expect("texts");
            times.push(started.elapsed().as_secs_f64());
            hits += usize::from(t.p_value < alpha);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {label} | {n} | {hits} | {:.3} s | {:.3} s |",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--daemon") {
        let healthy = Profile::builtin("healthy").expect("built-in profile");
        let reworded = Profile::builtin("reworded").expect("built-in profile");
        daemon_check(&starter_prompts(), &healthy, &reworded, quick);
        return;
    }
    let (power_reps, null_reps) = if quick { (10, 20) } else { (100, 500) };
    let healthy = Profile::builtin("healthy").expect("built-in profile");
    let reworded = Profile::builtin("reworded").expect("built-in profile");
    let prompts = starter_prompts();
    println!(
        "Behaviour test on the starter suites ({} probes), alpha {ALPHA}, {PERMUTATIONS} \
         permutations\n",
        prompts.len()
    );
    println!("| comparison | samples per probe | replicates | flagged | share | median p |");
    println!("|---|---|---|---|---|---|");
    let started = Instant::now();
    for n in [5, 10] {
        let (hits, med) = flagged(&healthy, &reworded, &prompts, n, power_reps, 1_000);
        println!(
            "| healthy vs reworded (power) | {n} | {power_reps} | {hits} | {:.1} % | {med:.4} |",
            hits as f64 / power_reps as f64 * 100.0
        );
    }
    let (hits, med) = flagged(&healthy, &healthy, &prompts, 10, null_reps, 500_000);
    println!(
        "| healthy vs healthy, new seeds (false flags) | 10 | {null_reps} | {hits} | {:.1} % \
         (95 % upper bound {:.1} %) | {med:.4} |",
        hits as f64 / null_reps as f64 * 100.0,
        upper_bound(hits, null_reps) * 100.0
    );
    eprintln!("took {:.0} s", started.elapsed().as_secs_f64());
}
