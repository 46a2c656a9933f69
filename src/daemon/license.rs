//! License drift and triage in the daemon: every reading of the served model's license
//! evidence is compared with the terms served before (stored with the previous fingerprint) and
//! with the pin's approved terms. Other terms raise `license_changed` through the same alert
//! lifecycle and sinks as the quality alerts: critical when the new license is not in
//! `[policy] allowed_licenses`, a warning otherwise. Against a pinned license it keeps firing
//! until the served terms or the pin change; without one it fires for the round of the change
//! and then resolves (the event stays in the history).

use super::*;
use crate::config::policy::{self, Triage, TriageInput};

impl Scheduler {
    /// Records the round's license evidence before its fingerprint (the store compares it with
    /// the stored one) and returns the `license_changed` observation.
    pub(super) fn check_license(
        &mut self,
        name: &str,
        outcome: &RoundOutcome,
    ) -> Option<(String, Severity, Observation)> {
        let Ok(fp) = &outcome.fingerprint else {
            return None;
        };
        let evidence = fp.license()?;
        let change = match self.store.record_license(name, fp, outcome.started_at_ms) {
            Ok(change) => change,
            Err(e) => {
                self.shared.store_failed("fingerprint", &e.to_string());
                tracing::error!(target = name, error = %e, "cannot store the license evidence");
                None
            }
        };
        if let Some(rt) = self.runtime.get_mut(name) {
            rt.license = Some(evidence.clone());
        }
        let target = &self.prepared.get(name)?.target;
        let allowed = &self.loaded.config.policy.allowed_licenses;
        let disallowed = evidence
            .license
            .as_deref()
            .filter(|id| !allowed.is_empty() && !allowed.iter().any(|a| a == id));
        let mut reasons = Vec::new();
        if let Some(c) = &change {
            tracing::warn!(
                target = name,
                previous = ?c.previous.license,
                current = ?c.current.license,
                source = ?c.current.source,
                "the served model's license changed (license_changed)"
            );
            reasons.push(format!(
                "license {} → {} ({})",
                label(c.previous.license.as_deref(), c.previous.sha256.as_deref()),
                label(c.current.license.as_deref(), c.current.sha256.as_deref()),
                evidence.source_label()
            ));
        }
        if let Some(pin) = &target.daemon.pin {
            if let (Some(want), Some(got)) = (&pin.license, &evidence.license)
                && want != got
            {
                reasons.push(format!("serves license {got}, the pin approved {want}"));
            }
            if let (Some(want), Some(got)) = (&pin.license_sha256, &evidence.sha256)
                && !want.eq_ignore_ascii_case(got)
            {
                reasons.push("the license text differs from the approved text".into());
            }
        }
        let severity = if disallowed.is_some() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        if reasons.is_empty() {
            return Some((LICENSE_CHANGED.into(), severity, Observation::Clear));
        }
        if let Some(id) = disallowed {
            reasons.push(format!("{id} is not in allowed_licenses"));
        }
        // A new firing takes the severity of what it is about now.
        let key = AlertKey::new(name, LICENSE_CHANGED);
        if let Some(st) = self.alerts.get_mut(&key)
            && st.status != Status::Firing
        {
            st.severity = severity;
        }
        Some((
            LICENSE_CHANGED.into(),
            severity,
            Observation::Breach(Evidence {
                summary: format!("license change on {name}: {}", reasons.join("; ")),
                ..Evidence::default()
            }),
        ))
    }

    /// The triage of a target from its pin, the policy and the last license evidence.
    pub(super) fn triage_of(&self, target: &Target, rt: &Runtime, now_ms: i64) -> Triage {
        policy::triage(
            &self.loaded.config.policy,
            TriageInput {
                pin: target.daemon.pin.as_ref(),
                pin_matches: rt.fingerprint.as_ref().and_then(|id| {
                    let pin = target.daemon.pin.as_ref()?;
                    Some(pin.matches(id, rt.digest.as_deref()))
                }),
                evidence: rt.license.as_ref(),
                now_ms,
            },
        )
    }
}

/// `gemma`, or the start of the text hash when there is no identifier.
fn label(license: Option<&str>, sha256: Option<&str>) -> String {
    match (license, sha256) {
        (Some(l), _) => l.to_string(),
        (None, Some(s)) => format!("text sha256 {}", &s[..s.len().min(12)]),
        (None, None) => "unknown".into(),
    }
}
