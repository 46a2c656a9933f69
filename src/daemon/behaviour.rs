//! The daemon's behaviour watch: is the served model still the baseline's model, whatever the
//! fingerprint says? A gateway, a managed API or a re-quantised file under the same name can
//! change the model with no fingerprint change, and with equal rates the quality monitor sees
//! nothing.
//!
//! Per probe, the newest served texts (cut to the stored excerpt, as the baseline keeps them)
//! go against the baseline's texts into the pooled MMD permutation test of `stats::mmd` (Gao,
//! Liang & Guestrin, "Model Equality Testing: Which Model Is This API Serving?", 2024), the test
//! the verdicts' `behaviour` metric uses. A check runs at most every `every` (6 h by default),
//! once enough texts arrived; each check gets `alpha × every / 30 days` of the false-flag budget
//! (Bonferroni over the checks of any 30 days), so that an unchanged model raises the event in
//! any 30 days with probability at most `alpha` (0.5 %, half the 1 % a target may spend on false
//! alarms of every kind), under any dependence between checks.
//! The permutations are enough to resolve that level (p ≥ 1/(B+1)).
//!
//! A flag is an event (`behaviour_changed`, severity warning), not a quality alert: another
//! model with equal rates is not worse by itself, but someone should know it is another model.

use crate::baseline::Baseline;
use crate::drift::stored_form;
use crate::sample::Sample;
use crate::stats::{PromptTexts, mmd_test};
use std::collections::{BTreeMap, VecDeque};

/// Texts per probe and side a check uses: Gao et al. detect substitutions from about ten.
pub const TEXTS_PER_PROBE: usize = 10;
/// The window of the false-flag budget.
const BUDGET_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;
/// Fixed permutation seed: the same texts always give the same p-value.
const SEED: u64 = 0x6265_6861_7669_6f77;
/// Probes named in a flag.
const NAMED: usize = 3;

/// How often a check runs and with what budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BehaviourSettings {
    /// Shortest time between checks (and from the episode start to the first).
    pub every_ms: i64,
    /// Chance of a false flag in any 30 days for an unchanged model.
    pub alpha: f64,
}

impl Default for BehaviourSettings {
    fn default() -> Self {
        BehaviourSettings {
            every_ms: 6 * 3600 * 1000,
            alpha: 0.005,
        }
    }
}

impl BehaviourSettings {
    /// The level of one check: the budget split over the checks 30 days can hold.
    pub fn alpha_per_check(&self) -> f64 {
        let checks = (BUDGET_WINDOW_MS as f64 / self.every_ms.max(1) as f64).ceil();
        self.alpha / checks.max(1.0)
    }

    /// Permutations that resolve [`Self::alpha_per_check`] with room: 2/α − 1.
    pub fn permutations(&self) -> usize {
        ((2.0 / self.alpha_per_check()).ceil() as usize).saturating_sub(1)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourCheck {
    pub p_value: f64,
    pub alpha: f64,
    pub changed: bool,
    pub probes: usize,
    /// The probes whose texts differ most (`probe (MMD² x)`), when changed.
    pub differ_most: Vec<String>,
}

impl BehaviourCheck {
    /// The event's text.
    pub fn summary(&self, target: &str) -> String {
        if self.changed {
            format!(
                "served behaviour of {target} changed without a fingerprint change: its answers \
                 no longer look like the baseline model's (MMD permutation test over {} probes, \
                 p = {:.1e} < {:.1e}); texts differ most on {}",
                self.probes,
                self.p_value,
                self.alpha,
                self.differ_most.join(", ")
            )
        } else {
            format!(
                "served behaviour of {target} consistent with the baseline model ({} probes, \
                 p = {:.2})",
                self.probes, self.p_value
            )
        }
    }
}

/// One target's watch over one episode (a new baseline or a swap starts another).
#[derive(Debug, Clone)]
pub struct BehaviourWatch {
    settings: BehaviourSettings,
    /// Probe id → (content hash, the baseline's texts).
    baseline: BTreeMap<String, (String, Vec<String>)>,
    /// Probe id → the newest served texts since the last check.
    window: BTreeMap<String, VecDeque<String>>,
    /// When the window started (the episode start or the last check).
    since_ms: i64,
    /// A check flagged this episode.
    flagged: bool,
    /// Checks finished this episode, and the newest one's p-value.
    checks: u64,
    last_p_value: Option<f64>,
}

/// What `/api/v1/status` shows of a target's behaviour watch.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BehaviourStatus {
    /// Checks finished in this episode.
    pub checks: u64,
    /// The newest check's p-value.
    pub last_p_value: Option<f64>,
    /// The level of each check.
    pub alpha_per_check: f64,
    /// A check of this episode found another model (one `behaviour_changed` event).
    pub changed: bool,
}

impl BehaviourWatch {
    /// A watch against `baseline`, or `None` when it keeps too few texts to test (two per
    /// probe at least: baselines recorded without excerpts cannot be compared).
    pub fn new(baseline: &Baseline, settings: BehaviourSettings, now_ms: i64) -> Option<Self> {
        let probes: BTreeMap<String, (String, Vec<String>)> = baseline
            .probes
            .iter()
            .filter_map(|(id, p)| {
                let texts: Vec<String> = p
                    .samples
                    .iter()
                    .filter_map(|s| s.excerpt.as_deref())
                    .map(stored_form)
                    .take(TEXTS_PER_PROBE)
                    .collect();
                (texts.len() >= 2).then(|| (id.clone(), (p.hash.clone(), texts)))
            })
            .collect();
        (!probes.is_empty()).then(|| BehaviourWatch {
            settings,
            baseline: probes,
            window: BTreeMap::new(),
            since_ms: now_ms,
            flagged: false,
            checks: 0,
            last_p_value: None,
        })
    }

    /// Keeps the newest texts of the round's answered samples of probes the baseline knows
    /// (same content hash).
    pub fn observe(&mut self, samples: &[Sample]) {
        for s in samples {
            let (Some(text), None) = (&s.text, &s.error) else {
                continue;
            };
            if self.baseline.get(&s.probe_id).map(|(h, _)| h) != Some(&s.probe_hash) {
                continue;
            }
            let w = self.window.entry(s.probe_id.clone()).or_default();
            w.push_back(stored_form(text));
            if w.len() > TEXTS_PER_PROBE {
                w.pop_front();
            }
        }
    }

    /// A check is due once `every` has passed since the window started and at least half the
    /// baseline's probes have two served texts or more, unless this episode was flagged.
    pub fn due(&self, now_ms: i64) -> bool {
        let ready = self.window.values().filter(|w| w.len() >= 2).count();
        !self.flagged
            && now_ms - self.since_ms >= self.settings.every_ms
            && ready * 2 >= self.baseline.len()
    }

    /// Runs the test on the window and starts a new one. `None` when nothing could be tested.
    pub fn check(&mut self, now_ms: i64) -> Option<BehaviourCheck> {
        let c = self.take_job(now_ms).run();
        if let Some(c) = &c {
            self.record(c);
        }
        c
    }

    /// The window as a test to run (off the scheduler: it may take a second), and a new window.
    pub fn take_job(&mut self, now_ms: i64) -> CheckJob {
        let mut window = std::mem::take(&mut self.window);
        self.since_ms = now_ms;
        CheckJob {
            probes: self
                .baseline
                .iter()
                .map(|(id, (_, texts))| {
                    let served = window.remove(id).map(Vec::from).unwrap_or_default();
                    (id.clone(), texts.clone(), served)
                })
                .collect(),
            alpha: self.settings.alpha_per_check(),
            permutations: self.settings.permutations(),
        }
    }

    /// Takes a check's outcome: after a flag the watch stays quiet for the rest of the episode
    /// (a swap or a new baseline starts another); one event says it, not one every check.
    pub fn record(&mut self, check: &BehaviourCheck) {
        self.flagged |= check.changed;
        self.checks += 1;
        self.last_p_value = Some(check.p_value);
    }

    /// The watch as the status shows it.
    pub fn status(&self) -> BehaviourStatus {
        BehaviourStatus {
            checks: self.checks,
            last_p_value: self.last_p_value,
            alpha_per_check: self.settings.alpha_per_check(),
            changed: self.flagged,
        }
    }
}

/// One check's data, owned, so it can run on a blocking thread.
#[derive(Debug, Clone)]
pub struct CheckJob {
    /// Probe id, the baseline's texts, the served texts.
    probes: Vec<(String, Vec<String>, Vec<String>)>,
    alpha: f64,
    permutations: usize,
}

impl CheckJob {
    /// The pooled MMD permutation test at the check's level.
    pub fn run(self) -> Option<BehaviourCheck> {
        let prompts: Vec<PromptTexts> = self
            .probes
            .iter()
            .map(|(_, b, c)| PromptTexts {
                baseline: b.iter().map(String::as_str).collect(),
                candidate: c.iter().map(String::as_str).collect(),
            })
            .collect();
        let r = mmd_test(&prompts, self.permutations, SEED).ok()?;
        let changed = r.p_value < self.alpha;
        let mut ranked: Vec<(f64, &String)> = r
            .per_prompt
            .iter()
            .zip(&self.probes)
            .filter_map(|(v, (id, _, _))| v.map(|v| (v, id)))
            .collect();
        ranked.sort_by(|x, y| y.0.total_cmp(&x.0));
        Some(BehaviourCheck {
            p_value: r.p_value,
            alpha: self.alpha,
            changed,
            probes: r.prompts,
            differ_most: if changed {
                ranked
                    .iter()
                    .take(NAMED)
                    .map(|(v, id)| format!("{id} (MMD² {v:.2})"))
                    .collect()
            } else {
                Vec::new()
            },
        })
    }
}

/// A target's watch with the check running in the background, if any (dropped with the
/// episode: a check of an old episode is not reported).
#[derive(Debug)]
pub struct BehaviourSlot {
    pub watch: BehaviourWatch,
    pub running: Option<tokio::task::JoinHandle<Option<BehaviourCheck>>>,
}

/// The watch a target's daemon settings ask for against `baseline` (none when switched off or
/// when the baseline keeps no texts).
pub fn behaviour_watch(
    target: &crate::config::Target,
    baseline: &Baseline,
    now_ms: i64,
) -> Option<BehaviourSlot> {
    let every = target.daemon.behaviour_check?;
    let settings = BehaviourSettings {
        every_ms: i64::try_from(every.as_millis()).unwrap_or(i64::MAX),
        ..BehaviourSettings::default()
    };
    BehaviourWatch::new(baseline, settings, now_ms).map(|watch| BehaviourSlot {
        watch,
        running: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{BaselineProbe, Recorded, StoredSample};
    use crate::rng::Rng;

    const PROBES: usize = 6;

    /// A model's answer: twelve words drawn from its own vocabulary.
    fn answer(rng: &mut Rng, vocabulary: &[&str]) -> String {
        (0..12)
            .map(|_| vocabulary[(rng.f64() * vocabulary.len() as f64) as usize % vocabulary.len()])
            .collect::<Vec<_>>()
            .join(" ")
    }

    const A: &[&str] = &[
        "the", "answer", "is", "simple", "first", "we", "add", "then",
    ];
    const B: &[&str] = &[
        "well",
        "let",
        "us",
        "think",
        "about",
        "it",
        "step",
        "carefully",
    ];

    fn baseline(rng: &mut Rng, texts: usize) -> Baseline {
        Baseline {
            format_version: 1,
            target: "t".into(),
            fingerprint: Default::default(),
            suites: BTreeMap::new(),
            probes: (0..PROBES)
                .map(|p| {
                    let samples = (0..texts)
                        .map(|i| StoredSample {
                            seed: None,
                            index: i as u32,
                            latency_ms: 1.0,
                            ttft_ms: None,
                            finish_reason: None,
                            error: None,
                            measurements: None,
                            excerpt: Some(answer(rng, A)),
                        })
                        .collect();
                    let probe = BaselineProbe {
                        suite: "s".into(),
                        hash: format!("h{p}"),
                        refusal_expected: false,
                        samples,
                    };
                    (format!("p{p}"), probe)
                })
                .collect(),
            recorded: Recorded {
                at: String::new(),
                modelwatch_version: String::new(),
                samples_per_probe: texts as u32,
                params: Default::default(),
            },
        }
    }

    fn round(rng: &mut Rng, vocabulary: &[&str]) -> Vec<Sample> {
        (0..PROBES)
            .map(|p| Sample {
                text: Some(answer(rng, vocabulary)),
                ..Sample::pending("t", "s", &format!("p{p}"), &format!("h{p}"), 0, 0)
            })
            .collect()
    }

    fn run(seed: u64, vocabulary: &[&str]) -> Option<BehaviourCheck> {
        let mut rng = Rng::new(seed);
        let b = baseline(&mut rng, 10);
        let mut w = BehaviourWatch::new(&b, BehaviourSettings::default(), 0).unwrap();
        let hour = 3_600_000;
        for r in 0..10 {
            assert!(!w.due(r * hour / 2), "due before six hours");
            w.observe(&round(&mut rng, vocabulary));
        }
        assert!(w.due(6 * hour));
        let c = w.check(6 * hour);
        assert!(!w.due(7 * hour), "a check starts a new window");
        c
    }

    #[test]
    fn the_budget_is_split_over_the_checks_of_thirty_days() {
        let s = BehaviourSettings::default();
        assert!((s.alpha_per_check() - 0.005 / 120.0).abs() < 1e-12);
        assert_eq!(s.permutations(), 47_999);
        let daily = BehaviourSettings {
            every_ms: 24 * 3600 * 1000,
            alpha: 0.01,
        };
        assert!((daily.alpha_per_check() - 0.01 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn another_model_is_flagged_and_the_same_model_with_new_seeds_is_not() {
        for seed in 0..5 {
            let c = run(seed, B).unwrap();
            assert!(c.changed, "seed {seed}: {c:?}");
            assert!(c.changed, "seed {seed}: {c:?}");
            assert_eq!(c.differ_most.len(), NAMED);
            assert!(c.summary("chat").contains("without a fingerprint change"));
        }
        let quiet = (100..140)
            .filter(|&seed| !run(seed, A).unwrap().changed)
            .count();
        assert_eq!(quiet, 40, "false flags of the same model");
    }

    #[test]
    fn texts_of_other_probe_versions_and_failed_requests_are_not_compared() {
        let mut rng = Rng::new(1);
        let b = baseline(&mut rng, 10);
        let mut w = BehaviourWatch::new(&b, BehaviourSettings::default(), 0).unwrap();
        let mut samples = round(&mut rng, B);
        for s in &mut samples {
            s.probe_hash = "edited".into();
        }
        let mut failed = round(&mut rng, B);
        for s in &mut failed {
            s.error = Some(crate::sample::SampleError::new(
                crate::sample::ErrorKind::Timeout,
                "timed out",
            ));
        }
        for _ in 0..5 {
            w.observe(&samples);
            w.observe(&failed);
        }
        assert!(!w.due(i64::MAX / 2), "nothing comparable arrived");
        assert!(w.check(i64::MAX / 2).is_none());
    }

    #[test]
    fn a_baseline_without_texts_has_no_watch() {
        let mut rng = Rng::new(1);
        let mut b = baseline(&mut rng, 10);
        for p in b.probes.values_mut() {
            for s in &mut p.samples {
                s.excerpt = None;
            }
        }
        assert!(BehaviourWatch::new(&b, BehaviourSettings::default(), 0).is_none());
    }
}
