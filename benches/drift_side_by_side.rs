//! Side-by-side timing against scipy (driven by `benches/scipy_compare/run.sh`).
//!
//! `generate <input.json>` writes a seeded, realistic drift workload: 200 probes × 20 baseline
//! and 20 recent response lengths plus three binary metrics per probe, and two samples of
//! 100,000 lengths. `run <input.json>` performs the drift analysis (per probe Mann–Whitney and
//! KS on lengths, Fisher's exact test on each binary metric, Benjamini–Hochberg across all
//! p-values) and the two large single tests, and prints median timings and the p-values as JSON.

use modelwatch::rng::Rng;
use modelwatch::stats::{self, Alternative, KsMethod};
use serde_json::{Value, json};
use std::time::Instant;

const PROBES: usize = 200;
const PER_ARM: usize = 20;
const LARGE: usize = 100_000;

fn generate(path: &str) -> Result<(), String> {
    let mut rng = Rng::new(20_240_601);
    let mut probes = Vec::new();
    for p in 0..PROBES {
        let median = 40.0 + (p as f64 * 37.0) % 900.0;
        // One probe in ten really drifted (longer answers, more refusals).
        let drift = p % 10 == 0;
        let baseline: Vec<f64> = (0..PER_ARM)
            .map(|_| rng.lognormal(median, 0.5).round())
            .collect();
        let recent: Vec<f64> = (0..PER_ARM)
            .map(|_| {
                rng.lognormal(if drift { median * 1.8 } else { median }, 0.5)
                    .round()
            })
            .collect();
        let rates = [
            (0.05, if drift { 0.4 } else { 0.05 }),
            (0.92, 0.92),
            (0.85, if drift { 0.5 } else { 0.85 }),
        ];
        let binary: Vec<[u64; 4]> = rates
            .iter()
            .map(|&(pb, pr)| {
                let kb = (0..PER_ARM).filter(|_| rng.bernoulli(pb)).count() as u64;
                let kr = (0..PER_ARM).filter(|_| rng.bernoulli(pr)).count() as u64;
                [kb, PER_ARM as u64, kr, PER_ARM as u64]
            })
            .collect();
        probes.push(json!({"baseline": baseline, "recent": recent, "binary": binary}));
    }
    let x: Vec<f64> = (0..LARGE)
        .map(|_| rng.lognormal(300.0, 0.6).round())
        .collect();
    let y: Vec<f64> = (0..LARGE)
        .map(|_| rng.lognormal(303.0, 0.6).round())
        .collect();
    let doc = json!({"probes": probes, "large": {"x": x, "y": y}});
    std::fs::write(path, doc.to_string()).map_err(|e| format!("cannot write {path}: {e}"))
}

struct Probe {
    baseline: Vec<f64>,
    recent: Vec<f64>,
    binary: Vec<[u64; 4]>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn analyse(probes: &[Probe]) -> Result<Vec<f64>, stats::StatsError> {
    let mut p = Vec::with_capacity(probes.len() * 5);
    for pr in probes {
        p.push(stats::mann_whitney_u(&pr.baseline, &pr.recent, Alternative::TwoSided)?.p_value);
        p.push(
            stats::ks_2samp(
                &pr.baseline,
                &pr.recent,
                Alternative::TwoSided,
                KsMethod::Auto,
            )?
            .p_value,
        );
        for &[kb, nb, kr, nr] in &pr.binary {
            p.push(stats::fisher_exact(kb, nb - kb, kr, nr - kr, Alternative::TwoSided)?.p_value);
        }
    }
    Ok(stats::benjamini_hochberg(&p))
}

fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn run(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {path}: {e}; run `generate` first"))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{path} is not valid JSON: {e}"))?;
    let probes: Vec<Probe> = doc["probes"]
        .as_array()
        .ok_or("input has no probes")?
        .iter()
        .map(|p| Probe {
            baseline: floats(&p["baseline"]),
            recent: floats(&p["recent"]),
            binary: p["binary"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| {
                            let v: Vec<u64> =
                                m.as_array()?.iter().filter_map(Value::as_u64).collect();
                            (v.len() == 4).then(|| [v[0], v[1], v[2], v[3]])
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let x = floats(&doc["large"]["x"]);
    let y = floats(&doc["large"]["y"]);
    let adjusted = analyse(&probes).map_err(|e| e.to_string())?;
    for _ in 0..3 {
        let _ = analyse(&probes);
    }
    let drift = median_secs(31, || {
        std::hint::black_box(analyse(std::hint::black_box(&probes)).ok());
    });
    let mwu = stats::mann_whitney_u(&x, &y, Alternative::TwoSided).map_err(|e| e.to_string())?;
    let ks = stats::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Auto)
        .map_err(|e| e.to_string())?;
    let mwu_t = median_secs(11, || {
        std::hint::black_box(stats::mann_whitney_u(&x, &y, Alternative::TwoSided).ok());
    });
    let ks_t = median_secs(11, || {
        std::hint::black_box(stats::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Auto).ok());
    });
    let out = json!({
        "drift_median_s": drift,
        "mwu_large_median_s": mwu_t,
        "ks_large_median_s": ks_t,
        "mwu_large_p": mwu.p_value,
        "ks_large_p": ks.p_value,
        "bh_adjusted": adjusted,
    });
    println!("{out}");
    Ok(())
}

fn main() {
    // `cargo bench` appends `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let result = match args.as_slice() {
        [cmd, path] if cmd == "generate" => generate(path),
        [cmd, path] if cmd == "run" => run(path),
        _ => Err("usage: drift_side_by_side (generate|run) <input.json>".to_string()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
