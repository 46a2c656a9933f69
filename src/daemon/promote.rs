//! `baseline promote` and `inventory`: accepting the model a target serves now as its new
//! baseline, and listing what every target serves under which approval.

use crate::alert::Status;
use crate::baseline::{self, Baseline, RecordInfo};
use crate::config::{Loaded, Target};
use crate::probe::Suite;
use crate::store::{SampleQuery, Store};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Why a promotion is impossible.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("no target named '{0}' in the configuration")]
    UnknownTarget(String),
    #[error(
        "target '{0}' has no `baseline` path: set `baseline = \"baselines/{0}.json\"` in its \
         [[target]] table"
    )]
    NoBaselinePath(String),
    #[error(
        "no fingerprint stored for target '{0}': let the daemon (or `modelwatch run`) complete a \
         round first"
    )]
    NoFingerprint(String),
    #[error(
        "no stored samples of target '{target}' from the model it serves now ({fingerprint}) \
         for the current probes: let the daemon complete a round first"
    )]
    NoSamples { target: String, fingerprint: String },
    #[error(
        "{failed} of {total} requests failed ({kinds}) in the newest {rounds} stored rounds of \
         target '{target}', above the {limit_percent:.0}% limit: an outage in those rounds counts; \
         pass --rounds N to take only the rounds since (`modelwatch report` shows them), or let \
         the server complete more rounds"
    )]
    TooManyErrors {
        target: String,
        rounds: u32,
        failed: usize,
        total: usize,
        kinds: String,
        limit_percent: f64,
    },
    #[error("cannot create the baseline directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Baseline(#[from] baseline::BaselineError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Builds and writes a new baseline for `target` from the newest `rounds` stored rounds of the
/// fingerprint it serves now. Returns the baseline and where it was written.
pub fn promote(
    loaded: &Loaded,
    store: &Store,
    target: &str,
    rounds: u32,
    now_ms: i64,
) -> Result<(Baseline, PathBuf), PromoteError> {
    let t = find(loaded, target)?;
    let path = t
        .baseline
        .clone()
        .ok_or_else(|| PromoteError::NoBaselinePath(target.into()))?;
    let fp = store
        .latest_fingerprint(target)?
        .ok_or_else(|| PromoteError::NoFingerprint(target.into()))?;
    let suites: Vec<Suite> = loaded.target_suites(t).cloned().collect();
    let hashes: Vec<String> = suites
        .iter()
        .flat_map(|s| s.probes.iter().map(|p| p.hash.clone()))
        .collect();
    let mut samples = store.samples(&SampleQuery {
        target: Some(target.into()),
        fingerprint: Some(fp.id.clone()),
        last_rounds: Some(rounds.max(1)),
        probe_hashes: Some(hashes),
        ..SampleQuery::default()
    })?;
    if samples.is_empty() {
        return Err(PromoteError::NoSamples {
            target: target.into(),
            fingerprint: fp.id,
        });
    }
    match baseline::check_recording(&samples, baseline::DEFAULT_MAX_ERROR_RATE) {
        Err(baseline::BaselineError::TooManyErrors {
            failed,
            total,
            kinds,
            limit_percent,
        }) => {
            return Err(PromoteError::TooManyErrors {
                target: target.into(),
                rounds: rounds.max(1),
                failed,
                total,
                kinds,
                limit_percent,
            });
        }
        other => other?,
    }
    // Several rounds reuse sample indices: renumber per probe in time order.
    samples.sort_by(|a, b| {
        (&a.suite, &a.probe_id, a.started_at_ms, a.index).cmp(&(
            &b.suite,
            &b.probe_id,
            b.started_at_ms,
            b.index,
        ))
    });
    let mut per_probe = 0u32;
    let mut last: Option<(String, String)> = None;
    let mut counter = 0u32;
    for s in &mut samples {
        let key = (s.suite.clone(), s.probe_id.clone());
        if last.as_ref() != Some(&key) {
            last = Some(key);
            counter = 0;
        }
        s.index = counter;
        counter += 1;
        per_probe = per_probe.max(counter);
    }
    let b = Baseline::from_samples(
        target,
        fp.fingerprint,
        &suites,
        &samples,
        RecordInfo {
            at_unix_ms: now_ms,
            samples_per_probe: per_probe,
            params: t.params.clone(),
        },
    )?;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| PromoteError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    b.save(&path)?;
    Ok((b, path))
}

/// The rounds `promote` freezes unless told: enough of the newest for every probe of `target`
/// to reach the samples `baseline record` takes (the daemon's nulls are only as tight as the
/// baseline), at the fewest samples any of its probes gets per round.
pub fn default_rounds(loaded: &Loaded, target: &str) -> Result<u32, PromoteError> {
    let t = find(loaded, target)?;
    let per_round = loaded
        .target_suites(t)
        .flat_map(|s| s.probes.iter())
        .map(|p| t.samples_for(p.samples))
        .min()
        .unwrap_or(1)
        .max(1);
    Ok(baseline::DEFAULT_SAMPLES_PER_PROBE.div_ceil(per_round))
}

fn find<'a>(loaded: &'a Loaded, target: &str) -> Result<&'a Target, PromoteError> {
    loaded
        .config
        .targets
        .iter()
        .find(|t| t.name == target)
        .ok_or_else(|| PromoteError::UnknownTarget(target.into()))
}

/// One line of `modelwatch inventory`; also what `inventory --from` reads back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InventoryRow {
    /// The host whose daemon or store the row comes from.
    pub host: Option<String>,
    pub target: String,
    pub provider: String,
    pub model: String,
    /// Fingerprint id served at the last round, and its digest.
    pub fingerprint: Option<String>,
    pub digest: Option<String>,
    /// Digest of the generation defaults the server published at the last round (`None`: it
    /// publishes none).
    pub config_digest: Option<String>,
    pub last_seen_ms: Option<i64>,
    /// `approved`, `unapproved`, `unpinned` or `unknown` (no round yet).
    pub pin_status: String,
    pub pin: Option<String>,
    pub approved_by: Option<String>,
    pub approved_on: Option<String>,
    pub license_reviewed: Option<bool>,
    pub baseline: Option<String>,
    pub baseline_recorded_at: Option<String>,
    pub baseline_age_days: Option<f64>,
    /// Whether the baseline was recorded from the model served now.
    pub baseline_matches_served: Option<bool>,
    /// `ok`, `regression` (alerts firing: listed), `unapproved`, `no_baseline`.
    pub verdict: String,
    pub firing: Vec<String>,
    /// The served model's terms as the evidence states them, and the evidence itself.
    pub license: Option<String>,
    pub license_sha256: Option<String>,
    pub license_source: Option<String>,
    pub license_evidence: Option<crate::provider::license::LicenseEvidence>,
    pub pin_license: Option<String>,
    /// Days since the pin's `approved_on`.
    pub review_age_days: Option<i64>,
    /// `safe`, `watch` or `act`, and every reason for it.
    pub tier: String,
    pub tier_reasons: Vec<String>,
}

/// What every target serves, under which approval, against which baseline.
pub fn inventory(
    loaded: &Loaded,
    store: &Store,
    now_ms: i64,
) -> Result<Vec<InventoryRow>, PromoteError> {
    let alerts = store.alert_states()?;
    let mut rows = Vec::new();
    for t in &loaded.config.targets {
        let fp = store.latest_fingerprint(&t.name)?;
        let (id, digest) = match &fp {
            Some(r) => (Some(r.id.clone()), r.fingerprint.digest.clone()),
            None => (None, None),
        };
        let pin_status = match (&t.daemon.pin, &id) {
            (None, _) => "unpinned",
            (Some(_), None) => "unknown",
            (Some(p), Some(id)) if p.matches(id, digest.as_deref()) => "approved",
            (Some(_), Some(_)) => "unapproved",
        };
        let b = t.baseline.as_ref().and_then(|p| Baseline::load(p).ok());
        let recorded_ms = b.as_ref().and_then(|_| {
            std::fs::metadata(t.baseline.as_ref()?)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
        });
        let firing: Vec<String> = alerts
            .iter()
            .filter(|a| a.key.target == t.name && a.status == Status::Firing)
            .map(|a| a.key.metric.clone())
            .collect();
        let verdict = if pin_status == "unapproved" {
            "unapproved"
        } else if !firing.is_empty() {
            "regression"
        } else if b.is_none() {
            "no_baseline"
        } else {
            "ok"
        };
        let evidence = fp.as_ref().and_then(|r| r.fingerprint.license());
        let triage = crate::config::policy::triage(
            &loaded.config.policy,
            crate::config::policy::TriageInput {
                pin: t.daemon.pin.as_ref(),
                pin_matches: id
                    .as_ref()
                    .and(t.daemon.pin.as_ref())
                    .map(|_| pin_status == "approved"),
                evidence: evidence.as_ref(),
                now_ms,
            },
        );
        rows.push(InventoryRow {
            host: None,
            license: evidence.as_ref().and_then(|e| e.license.clone()),
            license_sha256: evidence.as_ref().and_then(|e| e.sha256.clone()),
            license_source: evidence.as_ref().map(|e| e.source_label()),
            license_evidence: evidence,
            pin_license: t.daemon.pin.as_ref().and_then(|p| p.license.clone()),
            review_age_days: triage.review_age_days,
            tier: triage.tier.as_str().into(),
            tier_reasons: triage.reasons,
            target: t.name.clone(),
            provider: t.provider.as_str().into(),
            model: t.model.clone(),
            fingerprint: id.clone(),
            digest,
            config_digest: fp.as_ref().and_then(|r| r.fingerprint.config_digest()),
            last_seen_ms: fp.as_ref().map(|r| r.last_seen_ms),
            pin_status: pin_status.into(),
            pin: t.daemon.pin.as_ref().map(|p| p.model.clone()),
            approved_by: t.daemon.pin.as_ref().and_then(|p| p.approved_by.clone()),
            approved_on: t.daemon.pin.as_ref().and_then(|p| p.approved_on.clone()),
            license_reviewed: t.daemon.pin.as_ref().map(|p| p.license_reviewed),
            baseline: t.baseline.as_ref().map(|p| p.display().to_string()),
            baseline_recorded_at: b.as_ref().map(|b| b.recorded.at.clone()),
            baseline_age_days: recorded_ms.map(|r| (now_ms - r) as f64 / 86_400_000.0),
            baseline_matches_served: match (&b, &id) {
                (Some(b), Some(id)) => Some(b.fingerprint.id() == *id),
                _ => None,
            },
            verdict: verdict.into(),
            firing,
        });
    }
    Ok(rows)
}
