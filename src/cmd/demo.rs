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
    /// The demo folder outlives the run (`--dir`): its paths are worth printing.
    kept: bool,
    /// The highest recording count shown: requests finish concurrently, out of order.
    shown: std::sync::Mutex<usize>,
    /// The evidence threshold of the last round, for the detection line.
    threshold: std::sync::Mutex<Option<f64>>,
}

impl DemoProgress for Printer {
    fn event(&self, event: &Event) {
        if let Event::Recording { done, total } = event {
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
        } else if let Some(line) = self.line(event) {
            eprintln!("{line}");
        }
    }
}

impl Printer {
    /// The line shown for an event (recording progress aside).
    fn line(&self, event: &Event) -> Option<String> {
        Some(match event {
            Event::SimStarted { base_url } => {
                format!(
                    "demo: built-in simulator serving a healthy model at {base_url} (Ollama API)"
                )
            }
            Event::Recording { .. } | Event::ReportWritten { .. } => return None,
            Event::BaselineSaved {
                path,
                samples,
                fingerprint,
            } if self.kept => format!(
                "demo: baseline of {samples} samples (fingerprint {fingerprint}) saved to {}",
                path.display()
            ),
            Event::BaselineSaved {
                samples,
                fingerprint,
                ..
            } => format!(
                "demo: baseline of {samples} samples (fingerprint {fingerprint}) recorded in a \
                 temporary folder, removed on exit (`--dir DIR` keeps it)"
            ),
            Event::SwapInjected { round } => format!(
                "demo: >>> before round {round} the simulator is swapped to a degraded model \
                 (more refusals, longer answers, broken JSON)"
            ),
            Event::SwapSeen {
                round,
                previous,
                current,
            } => format!(
                "demo: round {round}: fingerprint swap seen: {previous} -> {current}; \
                 testing the new model against the baseline from scratch"
            ),
            Event::Round(r) => {
                if let Ok(mut t) = self.threshold.lock() {
                    *t = Some(r.threshold);
                }
                let evidence: Vec<String> = r
                    .evidence
                    .iter()
                    .map(|e| format!("{} {}", e.metric.id(), fmt_e(e.e_value)))
                    .collect();
                format!(
                    "demo: round {:>2} [{}] {} samples compared, {} errors | evidence of a \
                     regression (threshold {}): {}",
                    r.round,
                    if r.degraded { "degraded" } else { "healthy " },
                    r.samples,
                    r.errors,
                    fmt_e(r.threshold),
                    evidence.join("  "),
                )
            }
            Event::Detected {
                round,
                samples,
                metrics,
            } => {
                let threshold = self.threshold.lock().ok().and_then(|t| *t);
                let of =
                    threshold.map_or_else(String::new, |t| format!(" of threshold {}", fmt_e(t)));
                let names: Vec<String> = metrics
                    .iter()
                    .map(|e| format!("{} (evidence {}{of})", e.metric.label(), fmt_e(e.e_value)))
                    .collect();
                format!(
                    "demo: REGRESSION detected in round {round}, after {samples} samples of the new \
                     model; regressed by the end of the round: {}",
                    names.join(", ")
                )
            }
        })
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
        kept: args.dir.is_some(),
        shown: std::sync::Mutex::new(0),
        threshold: std::sync::Mutex::new(None),
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

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch::demo::{Evidence, RoundReport};
    use modelwatch::drift::Metric;

    fn printer(kept: bool) -> Printer {
        Printer {
            tty: false,
            kept,
            shown: std::sync::Mutex::new(0),
            threshold: std::sync::Mutex::new(None),
        }
    }

    #[test]
    fn a_baseline_in_a_folder_removed_on_exit_is_not_shown_by_path() {
        let saved = Event::BaselineSaved {
            path: PathBuf::from("/tmp/modelwatch-demo-1/baselines/demo.json"),
            samples: 120,
            fingerprint: "abc".into(),
        };
        let temp = printer(false).line(&saved).unwrap();
        assert!(!temp.contains("/tmp/"), "{temp}");
        assert!(
            temp.contains("removed on exit") && temp.contains("--dir"),
            "{temp}"
        );
        let kept = printer(true).line(&saved).unwrap();
        assert!(
            kept.contains("/tmp/modelwatch-demo-1/baselines/demo.json"),
            "{kept}"
        );
    }

    #[test]
    fn e_values_read_as_evidence_against_the_threshold() {
        let p = printer(false);
        let round = p
            .line(&Event::Round(RoundReport {
                round: 3,
                degraded: true,
                fingerprint: None,
                samples: 200,
                errors: 0,
                evidence: vec![Evidence {
                    metric: Metric::RefusalRate,
                    e_value: 8.1e6,
                }],
                threshold: 140.0,
            }))
            .unwrap();
        assert!(
            round.contains("evidence of a regression (threshold 140.0): refusal_rate 8.1e6"),
            "{round}"
        );
        assert!(!round.contains("e="), "{round}");
        let detected = p
            .line(&Event::Detected {
                round: 3,
                samples: 200,
                metrics: vec![Evidence {
                    metric: Metric::RefusalRate,
                    e_value: 8.1e6,
                }],
            })
            .unwrap();
        assert!(
            detected.contains("Refusal rate (evidence 8.1e6 of threshold 140.0)"),
            "{detected}"
        );
    }
}
