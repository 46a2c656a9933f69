//! What the sequential canary tells the reader besides the verdict: the error rates of its
//! design, each metric's confidence sequence, the probes it named, and whether pairing by seed
//! made the two sides' answers identical.

use modelwatch::drift::{CanaryMonitor, LengthLooks, ProbeRegression};
use modelwatch::sample::Sample;

/// Share of answered pairs whose two texts are byte-identical.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreement {
    pub answered: usize,
    pub identical: usize,
}

impl Agreement {
    pub fn push(&mut self, a: &Sample, b: &Sample) {
        if let (Some(x), Some(y)) = (&a.text, &b.text)
            && a.error.is_none()
            && b.error.is_none()
        {
            self.answered += 1;
            self.identical += usize::from(x == y);
        }
    }

    pub fn share(&self) -> f64 {
        self.identical as f64 / self.answered.max(1) as f64
    }

    /// One line for the report: whether pairing by seed took effect.
    pub fn describe(&self, seeded: bool) -> String {
        let share = format!(
            "{} of {} answered pairs identical ({:.0} %)",
            self.identical,
            self.answered,
            100.0 * self.share()
        );
        if !seeded {
            return format!("seed pairing off: {share}");
        }
        let verdict = if self.answered == 0 {
            "not measured"
        } else if self.share() >= 0.5 {
            "effective"
        } else if self.identical > 0 {
            "partly effective (the servers or the models differ in places)"
        } else {
            "not effective: the servers ignore `seed`, sample on their own, or the models differ"
        };
        format!("seed pairing {verdict}: {share}")
    }
}

fn pct(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

/// The design's error rates, stated once per report.
pub fn error_rates(monitor: &CanaryMonitor) -> String {
    let per_probe = monitor
        .probe_alpha()
        .map(|a| format!(", per probe and metric ≤ {:.4} %", 100.0 * a))
        .unwrap_or_default();
    format!(
        "anytime-valid design (betting confidence sequences, looked at after every slot): per \
         metric a false pass at the margin ≤ {:.1} %, a false regression between equal models \
         ≤ {:.2} %{per_probe}",
        100.0 * monitor.pass_alpha(),
        100.0 * monitor.regression_alpha()
    )
}

/// How the lengths were judged: at which look, at what confidence.
pub fn length_looks(looks: &LengthLooks, passed: bool, base: f64) -> String {
    let look = if passed {
        looks.looks()
    } else {
        looks.looks() + 1
    };
    format!(
        "lengths: fixed-sample tests at look {look} (looks at each doubling of the smallest \
         suite's pairs once every rate passed), confidence {:.4} — look j keeps \
         (1 − {base})/(j(j+1)), so together the looks' false-pass chance stays within the \
         fixed test's",
        looks.final_confidence(base, passed)
    )
}

/// One line per observed metric: paired difference and its confidence sequence, in points.
pub fn sequences(monitor: &CanaryMonitor) -> Vec<String> {
    monitor
        .observed()
        .into_iter()
        .filter_map(|(metric, margin)| {
            let b = monitor.bounds(metric)?;
            // Task success is oriented as failures: worse is positive everywhere.
            Some(format!(
                "{}: paired difference (worse is +) {} points over {} pairs, sequence [{}, {}] \
                 points, margin {:.1}{}",
                metric.id(),
                pct(b.estimate),
                b.pairs,
                pct(b.lower),
                pct(b.upper),
                100.0 * margin,
                if b.passed { ", within" } else { "" }
            ))
        })
        .collect()
}

/// One line per probe that regressed on its own.
/// `threshold`: the e-value a single probe needs for a regression.
pub fn probe_lines(probes: &[ProbeRegression], threshold: Option<f64>) -> Vec<String> {
    probes
        .iter()
        .map(|p| {
            format!(
                "regression (anytime-valid, per probe, {}): {}/{} {} bad {:.0} % → \
                 {:.0} % over {} pairs",
                modelwatch::report::evidence(p.e_value, threshold),
                p.suite,
                p.probe_id,
                p.metric.id(),
                100.0 * p.current_bad,
                100.0 * p.candidate_bad,
                p.pairs
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: Option<&str>) -> Sample {
        Sample {
            latency_ms: 1.0,
            text: text.map(str::to_string),
            ..Sample::pending("t", "s", "p", "h", 0, 0)
        }
    }

    #[test]
    fn agreement_counts_identical_answered_pairs() {
        let mut a = Agreement::default();
        a.push(&sample(Some("x")), &sample(Some("x")));
        a.push(&sample(Some("x")), &sample(Some("y")));
        a.push(&sample(None), &sample(Some("y")));
        assert_eq!((a.answered, a.identical), (2, 1));
        assert!(a.describe(true).starts_with("seed pairing effective"));
        a.push(&sample(Some("x")), &sample(Some("z")));
        assert!(a.describe(true).contains("partly"), "{}", a.describe(true));
        assert!(a.describe(false).starts_with("seed pairing off"));
    }
}
