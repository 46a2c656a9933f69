//! The two-sided sequential canary on a real model, the way CI would run it before a swap:
//! `modelwatch canary --current A --candidate B` with seed pairing (the default) and
//! `--sensitivity coarse`, no `--samples`, so the canary stops at the first decisive look.
//!
//! - The same llama.cpp server with Gemma 3 270M on both sides ends in PASS (exit 0): the
//!   server honours `seed`, so the pairs replay each other and the report says so.
//! - The same weights served with `--logit-bias 107+6` (the newline token made more likely: a
//!   sampling setting the fingerprint does not show) end in REGRESSION (exit 1).
//!
//! The configuration is the llama tests' own (the stories suite, `alpha = 0.001`, two slots
//! per server, 16 tokens per answer).

use crate::llama_support;
use llama_support::*;
use std::time::Instant;

/// Short answers keep a canary of a few hundred pairs within minutes on two cores, and fewer
/// tokens leave fewer places for the two sides of a pair to part (llama.cpp does not promise
/// bit-identical logits across batch shapes, so a seed replays most pairs, not all).
const MAX_TOKENS: u32 = 8;
/// The suite's sampling temperature: the pairs agree through the seed, not through greedy
/// decoding.
const TEMPERATURE: f64 = 0.7;

struct Canary {
    code: i32,
    verdict: String,
    reasons: Vec<String>,
    secs: f64,
    stderr: String,
}

impl Canary {
    fn reason(&self, starts: &str) -> Option<&str> {
        self.reasons
            .iter()
            .find(|r| r.starts_with(starts))
            .map(String::as_str)
    }
}

impl std::fmt::Display for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "verdict {} exit {} in {:.1} s; {}",
            self.verdict,
            self.code,
            self.secs,
            self.reasons.join(" | ")
        )
    }
}

fn canary(dir: &std::path::Path, current: &str, candidate: &str) -> Canary {
    let config = pair_config(
        dir,
        &seeded_suite(1_000, TEMPERATURE),
        current,
        candidate,
        MAX_TOKENS,
    );
    let out = modelwatch(
        &config,
        &[
            "canary",
            "--current",
            "current",
            "--candidate",
            "candidate",
            "--sensitivity",
            "coarse",
            "--format",
            "json",
        ],
    );
    assert!(matches!(out.code, 0 | 1 | 3), "{}", out.stderr);
    let report = out.json();
    Canary {
        code: out.code,
        verdict: report["verdict"].as_str().unwrap_or("?").to_string(),
        reasons: report["reasons"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        secs: out.wall.as_secs_f64(),
        stderr: out.stderr,
    }
}

#[test]
#[ignore = "needs llama-server and the model; scripts/test runs it when MODELWATCH_LLAMA_SERVER is set (always in CI)"]
fn the_same_server_passes_and_a_silent_sampling_change_regresses() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Llama::start(&bin, &model, free_port(), ALIAS, &[], dir.path());

    let same = canary(dir.path(), &server.url(), &server.url());
    eprintln!("same server against itself: {same}");
    assert_eq!(
        (same.code, same.verdict.as_str()),
        (0, "pass"),
        "{same}\n{}",
        same.stderr
    );
    let pairing = same
        .reason("seed pairing")
        .unwrap_or_else(|| panic!("the report says whether the seeds paired: {same}"));
    eprintln!("{pairing}");
    assert!(
        same.reason("sequential canary: stopped early").is_some(),
        "a pass at the first decisive look: {same}"
    );

    let bias = format!("{NEWLINE_TOKEN}+6");
    let changed = Llama::start(
        &bin,
        &model,
        free_port(),
        ALIAS,
        &["--logit-bias", &bias],
        dir.path(),
    );
    let worse = canary(dir.path(), &server.url(), &changed.url());
    eprintln!("--logit-bias {bias}: {worse}");
    assert_eq!(
        (worse.code, worse.verdict.as_str()),
        (1, "regression"),
        "{worse}\n{}",
        worse.stderr
    );
    eprintln!("test wall time {:.1} s", started.elapsed().as_secs_f64());
}
