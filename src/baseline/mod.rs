//! Baseline files: frozen samples from a known-good fingerprint, stored as JSON under
//! `baselines/` and versioned in git like code.
//!
//! The file keeps the raw per-sample measurements (not summaries) so any test can be run again
//! later, plus a short text excerpt per sample for the flipped-probe view. Keys are sorted,
//! the top levels are indented and each sample sits on one line, so a re-recording diffs well.
//! Building, loading and checking are pure; only [`Baseline::load`] and [`Baseline::save`] touch
//! the file system.

mod file;
mod summary;

pub use file::BaselineError;
pub use summary::{MetricSummary, ProbeSummary, Summary};

use crate::drift::Expectations;
use crate::probe::{GenParams, Probe, Suite};
use crate::provider::Fingerprint;
use crate::sample::{ErrorKind, FinishReason, Measurements, Sample, SampleError};
pub use crate::time::rfc3339_utc;
pub use crate::util::{EXCERPT_CHARS, excerpt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The format this build writes.
pub const FORMAT_VERSION: u32 = 1;
/// Formats this build reads.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];
/// Samples per probe a recording aims for unless told otherwise. The daemon's null for each
/// stratum is its baseline rate's 99 % upper bound plus a margin, so the baseline's size sets
/// how small a regression of one probe or one suite can be caught: 20 samples pin a probe's
/// 10 % rate only to below 39 %, 80 to below 22 % (docs/statistics.md, "Null boundaries").
pub const DEFAULT_SAMPLES_PER_PROBE: u32 = 80;
/// Above this share of failed requests a recording is refused (unless forced).
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.20;

/// Refuses a recording whose requests failed too often: a baseline of mostly timeouts says
/// little about the model. `max_error_rate` is a share (e.g. [`DEFAULT_MAX_ERROR_RATE`]).
pub fn check_recording(samples: &[Sample], max_error_rate: f64) -> Result<(), BaselineError> {
    let failed: Vec<&SampleError> = samples.iter().filter_map(|s| s.error.as_ref()).collect();
    if samples.is_empty() {
        return Err(BaselineError::NothingRecorded);
    }
    let rate = failed.len() as f64 / samples.len() as f64;
    if rate <= max_error_rate {
        return Ok(());
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &failed {
        *kinds.entry(e.kind.as_str()).or_default() += 1;
    }
    Err(BaselineError::TooManyErrors {
        failed: failed.len(),
        total: samples.len(),
        kinds: kinds
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        limit_percent: max_error_rate * 100.0,
    })
}

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub format_version: u32,
    /// The target the samples were recorded from.
    pub target: String,
    /// What the target was serving while recording.
    pub fingerprint: Fingerprint,
    /// Suite name → suite content hash.
    pub suites: BTreeMap<String, String>,
    /// Probe id → its suite, content hash and samples.
    pub probes: BTreeMap<String, BaselineProbe>,
    pub recorded: Recorded,
}

/// One probe's frozen samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineProbe {
    pub suite: String,
    /// Content hash of the probe when recorded (see `probe::Probe::hash`).
    pub hash: String,
    /// `true` when the probe expects a refusal (`expect.refusal = true`), so that an offline
    /// comparison of two files knows which refusals are correct.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refusal_expected: bool,
    pub samples: Vec<StoredSample>,
}

/// When and how a baseline was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// RFC 3339, UTC.
    pub at: String,
    pub modelwatch_version: String,
    pub samples_per_probe: u32,
    /// The target's generation parameters (probes may override them; their hash covers that).
    pub params: GenParams,
}

/// One sample as stored: the measurements of [`Sample`] without the identity the file already
/// gives, plus an excerpt of the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSample {
    pub index: u32,
    pub latency_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Present exactly when the request failed; such samples never count as quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Measurements>,
    /// At most [`EXCERPT_CHARS`] characters of the response, whitespace collapsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// The `seed` the request was sent with (see [`Sample::seed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// How a recording was made, passed in so building a baseline needs no clock.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordInfo {
    /// Unix time of the recording, in milliseconds.
    pub at_unix_ms: i64,
    pub samples_per_probe: u32,
    pub params: GenParams,
}

/// A probe whose content changed since the baseline was recorded: its samples are excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedProbe {
    pub suite: String,
    pub id: String,
    pub baseline_hash: String,
    pub current_hash: String,
}

/// The result of checking a baseline against the current suites.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Compatibility {
    /// Probes whose content hash differs: never compared.
    pub changed: Vec<ChangedProbe>,
    /// `suite/id` of probes in the suites but not in the baseline.
    pub added: Vec<String>,
    /// `suite/id` of probes in the baseline but no longer in the suites.
    pub removed: Vec<String>,
}

impl Compatibility {
    /// One line per problem, for warnings on stderr.
    pub fn warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .changed
            .iter()
            .map(|c| {
                format!(
                    "probe {}/{} changed since the baseline was recorded (hash {} → {}); it is \
                     excluded from comparison — re-record the baseline to include it",
                    c.suite,
                    c.id,
                    short(&c.baseline_hash),
                    short(&c.current_hash)
                )
            })
            .collect();
        w.extend(self.added.iter().map(|p| {
            format!("probe {p} is not in the baseline; it is not compared until re-recorded")
        }));
        w.extend(
            self.removed
                .iter()
                .map(|p| format!("probe {p} is in the baseline but no longer in the suites")),
        );
        w
    }

    /// Whether the samples of `probe_id` may be compared.
    pub fn is_comparable(&self, suite: &str, probe_id: &str) -> bool {
        let key = format!("{suite}/{probe_id}");
        !self
            .changed
            .iter()
            .any(|c| c.suite == suite && c.id == probe_id)
            && !self.removed.contains(&key)
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl Baseline {
    /// Freezes `samples` of `target` into a baseline. Every probe of `suites` gets an entry
    /// (possibly without samples); samples of probes not in `suites`, or recorded against a
    /// different probe hash, are rejected.
    pub fn from_samples(
        target: &str,
        fingerprint: Fingerprint,
        suites: &[Suite],
        samples: &[Sample],
        info: RecordInfo,
    ) -> Result<Baseline, BaselineError> {
        let mut probes: BTreeMap<String, BaselineProbe> = BTreeMap::new();
        let mut suite_hashes = BTreeMap::new();
        for suite in suites {
            suite_hashes.insert(suite.name.clone(), suite.hash.clone());
            for probe in &suite.probes {
                if let Some(other) = probes.get(&probe.id) {
                    return Err(BaselineError::DuplicateProbe {
                        id: probe.id.clone(),
                        first: other.suite.clone(),
                        second: suite.name.clone(),
                    });
                }
                probes.insert(
                    probe.id.clone(),
                    BaselineProbe {
                        suite: suite.name.clone(),
                        hash: probe.hash.clone(),
                        refusal_expected: probe.expect.refusal == Some(true),
                        samples: Vec::new(),
                    },
                );
            }
        }
        for s in samples {
            let Some(entry) = probes.get_mut(&s.probe_id).filter(|p| p.suite == s.suite) else {
                return Err(BaselineError::UnknownProbe {
                    suite: s.suite.clone(),
                    id: s.probe_id.clone(),
                });
            };
            if entry.hash != s.probe_hash {
                return Err(BaselineError::HashMismatch {
                    suite: s.suite.clone(),
                    id: s.probe_id.clone(),
                });
            }
            entry.samples.push(StoredSample::from_sample(s));
        }
        for p in probes.values_mut() {
            p.samples.sort_by_key(|s| s.index);
        }
        Ok(Baseline {
            format_version: FORMAT_VERSION,
            target: target.to_string(),
            fingerprint,
            suites: suite_hashes,
            probes,
            recorded: Recorded {
                at: rfc3339_utc(info.at_unix_ms),
                modelwatch_version: env!("CARGO_PKG_VERSION").to_string(),
                samples_per_probe: info.samples_per_probe,
                params: info.params,
            },
        })
    }

    /// Whether `probe` is in the baseline with the same suite and content: only such probes
    /// are compared with it.
    pub fn unchanged(&self, probe: &Probe) -> bool {
        self.probes
            .get(&probe.id)
            .is_some_and(|b| b.suite == probe.suite && b.hash == probe.hash)
    }

    /// Checks the baseline against the current suites of its target. A different set of suite
    /// names is an error; changed, added and removed probes are listed.
    pub fn check(&self, suites: &[Suite]) -> Result<Compatibility, BaselineError> {
        let have: BTreeSet<&str> = self.suites.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = suites.iter().map(|s| s.name.as_str()).collect();
        if have != want {
            return Err(BaselineError::SuiteSetMismatch {
                baseline: have.iter().map(|s| s.to_string()).collect(),
                current: want.iter().map(|s| s.to_string()).collect(),
            });
        }
        let mut c = Compatibility::default();
        let mut current: BTreeSet<(String, String)> = BTreeSet::new();
        for suite in suites {
            for probe in &suite.probes {
                current.insert((suite.name.clone(), probe.id.clone()));
                match self.probes.get(&probe.id).filter(|p| p.suite == suite.name) {
                    None => c.added.push(format!("{}/{}", suite.name, probe.id)),
                    Some(b) if b.hash != probe.hash => c.changed.push(ChangedProbe {
                        suite: suite.name.clone(),
                        id: probe.id.clone(),
                        baseline_hash: b.hash.clone(),
                        current_hash: probe.hash.clone(),
                    }),
                    Some(_) => {}
                }
            }
        }
        for (id, p) in &self.probes {
            if !current.contains(&(p.suite.clone(), id.clone())) {
                c.removed.push(format!("{}/{}", p.suite, id));
            }
        }
        Ok(c)
    }

    /// All stored samples as [`Sample`]s (identity restored from the file, excerpt as text).
    pub fn samples(&self) -> Vec<Sample> {
        self.probes
            .iter()
            .flat_map(|(id, p)| p.samples.iter().map(|s| s.to_sample(&self.target, id, p)))
            .collect()
    }

    /// The stored samples of the probes `compat` allows to be compared.
    pub fn comparable_samples(&self, compat: &Compatibility) -> Vec<Sample> {
        self.samples()
            .into_iter()
            .filter(|s| compat.is_comparable(&s.suite, &s.probe_id))
            .collect()
    }

    /// Which probes expect a refusal, as recorded.
    pub fn expectations(&self) -> Expectations {
        Expectations {
            refusal_expected: self
                .probes
                .iter()
                .filter(|(_, p)| p.refusal_expected)
                .map(|(id, p)| format!("{}/{id}", p.suite))
                .collect(),
            ..Expectations::default()
        }
    }

    /// Total stored samples, and how many of them are infrastructure errors.
    pub fn counts(&self) -> (usize, usize) {
        let all = self.probes.values().flat_map(|p| &p.samples);
        let (mut n, mut e) = (0, 0);
        for s in all {
            n += 1;
            e += usize::from(s.error.is_some());
        }
        (n, e)
    }
}

impl StoredSample {
    fn from_sample(s: &Sample) -> StoredSample {
        StoredSample {
            index: s.index,
            latency_ms: s.latency_ms,
            ttft_ms: s.ttft_ms,
            finish_reason: s.finish_reason.clone(),
            error: s.error.as_ref().map(|e| e.kind),
            measurements: if s.error.is_some() {
                None
            } else {
                s.measurements.clone()
            },
            excerpt: s.text.as_deref().map(excerpt).filter(|e| !e.is_empty()),
            seed: s.seed,
        }
    }

    fn to_sample(&self, target: &str, id: &str, probe: &BaselineProbe) -> Sample {
        Sample {
            seed: self.seed,
            target: target.to_string(),
            suite: probe.suite.clone(),
            probe_id: id.to_string(),
            probe_hash: probe.hash.clone(),
            index: self.index,
            started_at_ms: 0,
            latency_ms: self.latency_ms,
            ttft_ms: self.ttft_ms,
            attempts: 1,
            finish_reason: self.finish_reason.clone(),
            input_tokens: None,
            response_model: None,
            system_fingerprint: None,
            measurements: self.measurements.clone(),
            error: self.error.map(|kind| {
                let mut e = SampleError::new(kind, "recorded in the baseline");
                e.latency_ms = self.latency_ms;
                e
            }),
            text: self.excerpt.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
