//! Error rates of the sequential canary, measured on simulated paired canaries.
//!
//! Drives `drift::CanaryMonitor` exactly as `modelwatch canary` does: pairs slot by slot (every
//! probe once per slot), a look at each slot end, probes dropped once their metrics settled.
//! The simulated suite: 60 probes, 40 with a task check (20 of them expecting JSON); bad-outcome
//! rates per pair side: refusal 2 %, empty 0.5 %, truncation 1 %, JSON failure 4 %, task
//! failure 5 %. Default margins. Two designs:
//!
//! - *independent*: each side draws its own outcomes (servers that ignore `seed`);
//! - *seed-paired*: both sides share one uniform draw per outcome, so equal models give equal
//!   pairs and a worse one is worse only where its extra failures fall.
//!
//! Scenarios: the candidate's task failure exactly at the margin (+3 points: a pass of
//! `task_failure_rate` is a false pass), and equal models (a regression is a false regression).
//! `cargo bench --bench canary [-- RUNS]` (default 200 runs per scenario, fixed seeds: the same
//! command prints the same figures).

use modelwatch::drift::{CanaryMonitor, Early, Expectations, Margins, Metric};
use modelwatch::rng::Rng;
use modelwatch::sample::{FinishReason, Measurements, Sample, StructuredOutcome};

const PROBES: usize = 60;
const TASK_PROBES: usize = 40;
const JSON_PROBES: usize = 20;
const MAX_SLOTS: u32 = 400;

#[derive(Clone, Copy)]
struct Rates {
    refusal: f64,
    empty: f64,
    truncation: f64,
    json: f64,
    task: f64,
}

const BASE: Rates = Rates {
    refusal: 0.02,
    empty: 0.005,
    truncation: 0.01,
    json: 0.04,
    task: 0.05,
};

fn sample(target: &str, probe: usize, index: u32, m: Measurements) -> Sample {
    Sample {
        seed: None,
        target: target.into(),
        suite: if probe < JSON_PROBES { "json" } else { "core" }.into(),
        probe_id: format!("p{probe:03}"),
        probe_hash: format!("h{probe:03}"),
        index,
        started_at_ms: 0,
        latency_ms: 100.0,
        ttft_ms: None,
        attempts: 1,
        finish_reason: Some(FinishReason::Stop),
        input_tokens: None,
        response_model: None,
        system_fingerprint: None,
        measurements: Some(m),
        error: None,
        text: None,
    }
}

/// One side's measurements given a uniform draw per outcome.
fn measure(probe: usize, u: [f64; 5], r: Rates) -> Measurements {
    let refusal = u[0] < r.refusal;
    Measurements {
        chars: 400,
        words: 80,
        lines: 4,
        output_tokens: 100,
        tokens_estimated: false,
        truncated: u[1] < r.truncation,
        empty: u[2] < r.empty,
        refusal,
        refusal_rule: None,
        partial_refusal: false,
        structured: (probe < JSON_PROBES).then(|| {
            if u[3] < r.json {
                StructuredOutcome::InvalidJson
            } else {
                StructuredOutcome::Ok
            }
        }),
        task_success: (probe < TASK_PROBES).then_some(u[4] >= r.task),
    }
}

struct Outcome {
    decision: Early,
    pairs: u64,
    task_passed: bool,
}

fn canary(seed: u64, candidate: Rates, paired_seeds: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let margins = Margins::default();
    let mut m = CanaryMonitor::with_probes(&margins, PROBES);
    let expect = Expectations::default();
    let mut active = [true; PROBES];
    let mut decision = Early::Continue;
    for slot in 0..MAX_SLOTS {
        for (p, on) in active.iter().enumerate() {
            if !on {
                continue;
            }
            let ua: [f64; 5] = std::array::from_fn(|_| rng.f64());
            let ub: [f64; 5] = if paired_seeds {
                ua
            } else {
                std::array::from_fn(|_| rng.f64())
            };
            let a = sample("cur", p, slot, measure(p, ua, BASE));
            let b = sample("cand", p, slot, measure(p, ub, candidate));
            m.push(&a, &b, &expect);
        }
        decision = m.decision();
        if decision != Early::Continue {
            break;
        }
        for (p, on) in active.iter_mut().enumerate() {
            let suite = if p < JSON_PROBES { "json" } else { "core" };
            *on = m.needed(suite, &format!("p{p:03}"));
        }
    }
    let task_passed = m.bounds(Metric::TaskFailureRate).is_some_and(|b| b.passed);
    Outcome {
        decision,
        pairs: m.pairs(),
        task_passed,
    }
}

fn quantile(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let runs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let margins = Margins::default();
    let at_margin = Rates {
        task: BASE.task + margins.task_failure_points,
        ..BASE
    };
    println!(
        "| design | scenario | runs | pass | regression | undecided in {MAX_SLOTS} slots | task metric passed | pairs to decision (median, p90) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for paired in [true, false] {
        for (name, cand) in [
            ("task failure at the margin (+3 points)", at_margin),
            ("equal models", BASE),
        ] {
            let (mut pass, mut reg, mut open, mut task) = (0, 0, 0, 0);
            let mut pairs = Vec::new();
            for r in 0..runs {
                let o = canary(10_000 + r, cand, paired);
                match o.decision {
                    Early::NonInferior => pass += 1,
                    Early::Regression(_) => reg += 1,
                    Early::Continue => open += 1,
                }
                task += usize::from(o.task_passed);
                if o.decision != Early::Continue {
                    pairs.push(o.pairs);
                }
            }
            let design = if paired { "seed-paired" } else { "independent" };
            let spread = if pairs.is_empty() {
                "–".to_string()
            } else {
                format!(
                    "{}, {}",
                    quantile(&mut pairs, 0.5),
                    quantile(&mut pairs, 0.9)
                )
            };
            let pct = |k: usize| format!("{:.1} %", 100.0 * k as f64 / runs as f64);
            println!(
                "| {design} | {name} | {runs} | {} | {} | {} | {} | {spread} |",
                pct(pass),
                pct(reg),
                pct(open),
                pct(task)
            );
        }
    }
    println!(
        "\nStated: per metric a false pass at the margin ≤ {:.0} %, a false regression between \
         equal models ≤ {:.2} % (pooled) per metric.",
        100.0 * margins.alpha,
        100.0 * margins.alpha / 12.0
    );
}
