//! `[policy]`: which licenses the organisation accepts and how often approvals are reviewed,
//! and the triage of a target against it: *safe* (terms reviewed for the version served, and
//! pinned), *watch* (terms unknown or unreviewed, version unpinned, review overdue) or *act*
//! (the served terms are not the approved or allowed ones). Pure: configuration and evidence
//! in, a tier and its reasons out.

use super::{Pin, duration};
use crate::diag::fields::{Fields, Reader};
use crate::provider::license::LicenseEvidence;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub(super) const POLICY_KEYS: &[&str] = &["allowed_licenses", "review_after"];

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// License identifiers in use may carry (lower case); empty: no restriction.
    pub allowed_licenses: Vec<String>,
    /// An approval older than this (`approved_on`) is due for review; `None`: never.
    pub review_after: Option<Duration>,
}

/// Reads `[policy]`; errors go to the reader's diagnostics (which fail the configuration).
pub(super) fn read_policy(r: &mut Reader, top: &Fields) -> Policy {
    let mut p = Policy::default();
    let Some(v) = top.get("policy") else {
        return p;
    };
    let Some(f) = r.table_value(v, "[policy]", POLICY_KEYS) else {
        return p;
    };
    if let Some(list) = r.strings(&f, "allowed_licenses") {
        for s in list {
            let id = s.get_ref().trim().to_lowercase();
            if id.is_empty() {
                r.error_help(
                    s.span(),
                    "empty license identifier in `allowed_licenses`",
                    "use identifiers as models declare them, e.g. \"apache-2.0\", \"mit\", \"gemma\"",
                );
            } else {
                p.allowed_licenses.push(id);
            }
        }
    }
    if let Some(d) = duration(r, &f, "review_after") {
        p.review_after = (!d.is_zero()).then_some(d);
    }
    p
}

/// `YYYY-MM-DD` → Unix milliseconds at midnight UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

/// The triage tier, in rising order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Safe,
    Watch,
    Act,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Safe => "safe",
            Tier::Watch => "watch",
            Tier::Act => "act",
        }
    }
}

/// A target's tier and every reason for it (for *safe*, what makes it safe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    pub tier: Tier,
    pub reasons: Vec<String>,
    /// Days since `approved_on`, when it is set.
    pub review_age_days: Option<i64>,
}

impl Triage {
    pub fn reason(&self) -> String {
        self.reasons.join("; ")
    }
}

/// What the triage looks at for one target.
#[derive(Debug, Clone, Copy)]
pub struct TriageInput<'a> {
    pub pin: Option<&'a Pin>,
    /// Whether the served model is the pinned one; `None`: nothing observed yet.
    pub pin_matches: Option<bool>,
    /// The license evidence of the served model; `None`: nothing observed yet.
    pub evidence: Option<&'a LicenseEvidence>,
    pub now_ms: i64,
}

/// Triage of one target under `policy`. Every applicable reason is listed; the tier is the
/// most urgent among them.
pub fn triage(policy: &Policy, input: TriageInput<'_>) -> Triage {
    let mut act = Vec::new();
    let mut watch = Vec::new();
    let served = input.evidence.and_then(|e| e.license.as_deref());
    let served_sha = input.evidence.and_then(|e| e.sha256.as_deref());
    // A review done by hand (`license_reviewed` without a `license` to check) stands in for
    // evidence a server cannot give (managed APIs).
    let reviewed_by_hand = input
        .pin
        .is_some_and(|p| p.license_reviewed && p.license.is_none());
    match input.evidence {
        None => watch.push("not observed yet: no round has read the served model".to_string()),
        Some(e) if !e.identified() && !reviewed_by_hand => watch.push(format!(
            "terms unknown: no license evidence ({})",
            e.note.as_deref().unwrap_or("source none")
        )),
        Some(_) => {}
    }
    if let Some(id) = served
        && !policy.allowed_licenses.is_empty()
        && !policy.allowed_licenses.iter().any(|a| a == id)
    {
        act.push(format!("license {id} is not in allowed_licenses"));
    }
    let mut review_age_days = None;
    match input.pin {
        None => watch.push("unpinned: no approved version".into()),
        Some(pin) => {
            if input.pin_matches == Some(false) {
                act.push(format!(
                    "serves a model other than the pinned {}",
                    pin.model
                ));
            }
            match (&pin.license, served) {
                (Some(want), Some(got)) if want != got => {
                    act.push(format!("serves license {got}, the pin approved {want}"))
                }
                (Some(want), None) if input.evidence.is_some() => watch.push(format!(
                    "the pin approved {want} but the served license cannot be read"
                )),
                (None, _) if !pin.license_reviewed => {
                    watch.push("the pin names no reviewed license".into())
                }
                _ => {}
            }
            if let (Some(want), Some(got)) = (&pin.license_sha256, served_sha)
                && !want.eq_ignore_ascii_case(got)
            {
                act.push("the license text differs from the approved text".into());
            }
            let approved = pin.approved_on.as_deref().and_then(parse_date);
            review_age_days = approved.map(|at| (input.now_ms - at).div_euclid(86_400_000));
            if let Some(every) = policy.review_after {
                let every_days = (every.as_secs() / 86_400) as i64;
                match review_age_days {
                    Some(age) if age > every_days => watch.push(format!(
                        "review overdue: approved {age} days ago, review_after is {every_days} days"
                    )),
                    Some(_) => {}
                    None => watch.push("no approved_on: review age unknown".into()),
                }
            }
        }
    }
    let (tier, reasons) = if !act.is_empty() {
        // The urgent reasons first, then what is merely uncertain.
        (Tier::Act, act.into_iter().chain(watch).collect())
    } else if !watch.is_empty() {
        (Tier::Watch, watch)
    } else {
        let license = served.or(served_sha).unwrap_or("reviewed terms");
        let age = review_age_days
            .map(|d| format!(" {d} days ago"))
            .unwrap_or_default();
        (
            Tier::Safe,
            vec![format!("pinned, license {license} approved{age}")],
        )
    };
    Triage {
        tier,
        reasons,
        review_age_days,
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
