//! `modelwatch demo`: the whole story in under a minute, with no server and no configuration.
//! The logic is `modelwatch::demo`; this file prints its progress on stderr.

use super::EXIT_INCONCLUSIVE;
use modelwatch::demo::{self, DemoOptions, DemoProgress, Event};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the configuration, database, baseline and report in this folder (created if
    /// missing). Default: a temporary folder, removed afterwards except for the report.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The simulator's seed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

/// Prints each step on stderr; on a terminal the recording line updates in place.
struct Printer {
    tty: bool,
    /// The highest recording count shown: requests finish concurrently, out of order.
    shown: std::sync::Mutex<usize>,
}

impl DemoProgress for Printer {
    fn event(&self, event: &Event) {
        match event {
            Event::SimStarted { base_url } => eprintln!(
                "demo: built-in simulator serving a healthy model at {base_url} (Ollama API)"
            ),
            Event::Recording { done, total } => {
                let Ok(mut shown) = self.shown.lock() else {
                    return;
                };
                if *done <= *shown {
                    return;
                }
                *shown = *done;
                if self.tty {
                    eprint!("\rdemo: recording the baseline: {done}/{total} samples");
                    if done >= total {
                        eprintln!();
                    }
                } else if done >= total {
                    eprintln!("demo: recording the baseline: {done}/{total} samples");
                }
            }
            Event::BaselineSaved {
                path,
                samples,
                fingerprint,
            } => eprintln!(
                "demo: baseline of {samples} samples (fingerprint {fingerprint}) saved to {}",
                path.display()
            ),
            Event::SwapInjected { round } => eprintln!(
                "demo: >>> before round {round} the simulator is swapped to a degraded model \
                 (more refusals, longer answers, broken JSON)"
            ),
            Event::SwapSeen {
                round,
                previous,
                current,
            } => eprintln!(
                "demo: round {round}: fingerprint swap seen: {previous} -> {current}; \
                 testing the new model against the baseline from scratch"
            ),
            Event::Round(r) => {
                let evidence: Vec<String> = r
                    .evidence
                    .iter()
                    .map(|e| format!("{} e={}", e.metric.id(), fmt_e(e.e_value)))
                    .collect();
                eprintln!(
                    "demo: round {:>2} [{}] {} samples compared, {} errors | {} (regression at \
                     e>={:.0})",
                    r.round,
                    if r.degraded { "degraded" } else { "healthy " },
                    r.samples,
                    r.errors,
                    evidence.join("  "),
                    r.threshold
                );
            }
            Event::Detected {
                round,
                samples,
                metrics,
            } => {
                let names: Vec<String> = metrics
                    .iter()
                    .map(|e| format!("{} (e-value {})", e.metric.label(), fmt_e(e.e_value)))
                    .collect();
                eprintln!(
                    "demo: REGRESSION detected in round {round}, after {samples} samples of the new \
                     model; regressed by the end of the round: {}",
                    names.join(", ")
                );
            }
            Event::ReportWritten { .. } => {}
        }
    }
}

fn fmt_e(e: f64) -> String {
    if e >= 1e4 {
        format!("{e:.1e}")
    } else {
        format!("{e:.1}")
    }
}

pub fn exec(args: Args, _global: &super::Global) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let scratch;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            scratch = super::TempDir::new("demo")?;
            scratch.path().to_path_buf()
        }
    };
    let options = DemoOptions::new(dir, args.seed);
    let printer = Printer {
        tty: std::io::stderr().is_terminal(),
        shown: std::sync::Mutex::new(0),
    };
    let outcome = super::live::runtime()?.block_on(demo::run(&options, &printer))?;
    let report = if args.dir.is_some() {
        outcome.report.clone()
    } else {
        // The temporary folder goes away; the report is worth keeping.
        let keep = std::env::temp_dir().join(format!(
            "modelwatch-demo-report-{}.html",
            std::process::id()
        ));
        std::fs::copy(&outcome.report, &keep)?;
        keep
    };
    let secs = started.elapsed().as_secs_f64();
    if outcome.detected {
        println!(
            "modelwatch caught the degraded model after {} samples ({:.0} s in all).",
            outcome.samples_to_detect.unwrap_or(0),
            secs
        );
    } else {
        println!("the degraded model was NOT detected within the demo's rounds ({secs:.0} s).");
    }
    println!("report: {}", report.display());
    if args.dir.is_some() {
        println!(
            "kept: {} (config), {} (samples), {} (baseline)",
            outcome.config.display(),
            outcome.database.display(),
            outcome.baseline.display()
        );
    }
    println!(
        "next: `modelwatch run --sim` probes the simulator once; `modelwatch init` writes a config for your own server."
    );
    Ok(if outcome.detected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCONCLUSIVE)
    })
}
