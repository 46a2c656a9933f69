//! The alert state machine of one (target, metric): ok → firing → resolved (→ firing again).
//!
//! - A **breach** observation (evidence that the metric regressed, or that an unapproved model
//!   is served) moves `ok`/`resolved` to `firing` at once and notifies `firing` with the
//!   evidence; while firing, the evidence is refreshed and a `reminder` goes out every
//!   [`Policy::reminder_ms`].
//! - `resolve_after` consecutive **clear** observations move `firing` to `resolved` and notify
//!   `resolved` with the same incident number (the resolve key), so a sink closes the incident
//!   it opened.
//! - **No data** (a failed round) changes nothing: infrastructure failures are never quality.
//!
//! Muting is decided by the caller and passed in: a muted transition still changes the state
//! and still returns its notifications, marked `muted`, so they are recorded but not delivered.

use serde::{Deserialize, Serialize};

/// Identity of an alert: one target, one metric (`refusal_rate`, …, or `unapproved_model`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    pub target: String,
    pub metric: String,
}

impl AlertKey {
    pub fn new(target: impl Into<String>, metric: impl Into<String>) -> AlertKey {
        AlertKey {
            target: target.into(),
            metric: metric.into(),
        }
    }
}

impl std::fmt::Display for AlertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.target, self.metric)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing (a model swap).
    Info,
    /// A quality regression.
    Warning,
    /// An unapproved model is served.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Why an alert fires: what was measured against what, and how strong the evidence is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// One-line human summary.
    pub summary: String,
    /// The baseline value of the metric (rate, or median placement 0.5 for lengths).
    pub baseline: Option<f64>,
    /// The value observed since the episode started.
    pub current: Option<f64>,
    /// Effect: current − baseline (rates) or mean placement − 0.5 (lengths).
    pub effect: Option<f64>,
    /// Confidence interval of the current value.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// The anytime-valid e-value against the interval null.
    pub e_value: Option<f64>,
    /// The evidence threshold the e-value crossed.
    pub threshold: Option<f64>,
    /// Samples observed in the episode.
    pub samples: u64,
    /// Probes whose outcomes moved the most in the bad direction (`suite/probe`).
    pub flipped_probes: Vec<String>,
}

/// One round's reading of a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Breach(Evidence),
    Clear,
    /// Nothing measured (failed round, metric not applicable): no change.
    NoData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// The persisted state of one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub key: AlertKey,
    pub severity: Severity,
    pub status: Status,
    /// When the current status began.
    pub since_ms: i64,
    /// When the last (delivered or muted) firing/reminder notification was produced.
    pub last_notified_ms: Option<i64>,
    /// Consecutive clear observations while firing.
    pub clear_streak: u32,
    /// Incident number, incremented on every firing: the resolve key of sinks.
    pub incident: u64,
    /// The latest evidence while firing (kept after resolution for the record).
    pub evidence: Option<Evidence>,
}

impl AlertState {
    pub fn new(key: AlertKey, severity: Severity, now_ms: i64) -> AlertState {
        AlertState {
            key,
            severity,
            status: Status::Ok,
            since_ms: now_ms,
            last_notified_ms: None,
            clear_streak: 0,
            incident: 0,
            evidence: None,
        }
    }

    /// A stable identifier of the current incident (`target/metric#n`), for deduplication.
    pub fn incident_key(&self) -> String {
        format!("{}#{}", self.key, self.incident)
    }
}

/// Lifecycle parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Repeat a firing notification this often while firing; `None`: never.
    pub reminder_ms: Option<i64>,
    /// Consecutive clear observations needed to resolve (at least 1).
    pub resolve_after: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            reminder_ms: Some(4 * 3_600_000),
            resolve_after: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Firing,
    Reminder,
    Resolved,
    /// A one-off event (a model swap): no state.
    Info,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Info => "info",
        }
    }
}

/// Something to tell the sinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub key: AlertKey,
    pub severity: Severity,
    /// `target/metric#incident`: the same for firing, reminders and the resolution.
    pub incident: String,
    pub at_ms: i64,
    pub evidence: Option<Evidence>,
    /// Muted by a silence or a maintenance window: record, do not deliver.
    pub muted: bool,
}

impl Notification {
    /// A stateless info notification (a model swap).
    pub fn info(key: AlertKey, at_ms: i64, evidence: Evidence, muted: bool) -> Notification {
        Notification::event(key, Severity::Info, at_ms, evidence, muted)
    }

    /// A one-off event of `severity`: no state, no lifecycle (a swap is `Info`; a behaviour
    /// change, which someone should look at, `Warning`).
    pub fn event(
        key: AlertKey,
        severity: Severity,
        at_ms: i64,
        evidence: Evidence,
        muted: bool,
    ) -> Notification {
        Notification {
            kind: NotificationKind::Info,
            incident: format!("{key}@{at_ms}"),
            key,
            severity,
            at_ms,
            evidence: Some(evidence),
            muted,
        }
    }
}

/// One step of the state machine. See the module documentation.
pub fn transition(
    state: &AlertState,
    observation: &Observation,
    now_ms: i64,
    policy: &Policy,
    muted: bool,
) -> (AlertState, Vec<Notification>) {
    let mut next = state.clone();
    let mut out = Vec::new();
    let notify = |s: &AlertState, kind: NotificationKind| Notification {
        kind,
        key: s.key.clone(),
        severity: s.severity,
        incident: s.incident_key(),
        at_ms: now_ms,
        evidence: s.evidence.clone(),
        muted,
    };
    match (state.status, observation) {
        (_, Observation::NoData) => {}
        (Status::Ok | Status::Resolved, Observation::Breach(ev)) => {
            next.status = Status::Firing;
            next.since_ms = now_ms;
            next.incident = state.incident + 1;
            next.evidence = Some(ev.clone());
            next.clear_streak = 0;
            next.last_notified_ms = Some(now_ms);
            out.push(notify(&next, NotificationKind::Firing));
        }
        (Status::Ok | Status::Resolved, Observation::Clear) => {}
        (Status::Firing, Observation::Breach(ev)) => {
            next.evidence = Some(ev.clone());
            next.clear_streak = 0;
            let due = match (policy.reminder_ms, state.last_notified_ms) {
                (Some(every), Some(last)) => now_ms.saturating_sub(last) >= every,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if due {
                next.last_notified_ms = Some(now_ms);
                out.push(notify(&next, NotificationKind::Reminder));
            }
        }
        (Status::Firing, Observation::Clear) => {
            next.clear_streak = state.clear_streak.saturating_add(1);
            if next.clear_streak >= policy.resolve_after.max(1) {
                next.status = Status::Resolved;
                next.since_ms = now_ms;
                next.clear_streak = 0;
                // Says why it ended, so the firing text is not read as the present state.
                let mut n = notify(&next, NotificationKind::Resolved);
                let rounds = policy.resolve_after.max(1);
                n.evidence = next.evidence.as_ref().map(|e| Evidence {
                    summary: format!(
                        "cleared: no breach in {rounds} consecutive round{}; it fired on: {}",
                        if rounds == 1 { "" } else { "s" },
                        e.summary
                    ),
                    ..e.clone()
                });
                out.push(n);
            }
        }
    }
    (next, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(e: f64) -> Evidence {
        Evidence {
            summary: "refusal rate 30% vs 2%".into(),
            e_value: Some(e),
            samples: 40,
            ..Evidence::default()
        }
    }

    fn start() -> AlertState {
        AlertState::new(AlertKey::new("t", "refusal_rate"), Severity::Warning, 0)
    }

    #[test]
    fn fires_once_reminds_on_schedule_and_resolves_with_the_same_incident() {
        let policy = Policy {
            reminder_ms: Some(1000),
            resolve_after: 2,
        };
        let s = start();
        let (s, n) = transition(&s, &Observation::Breach(ev(50.0)), 10, &policy, false);
        assert_eq!(s.status, Status::Firing);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, NotificationKind::Firing);
        assert_eq!(n[0].incident, "t/refusal_rate#1");
        assert_eq!(n[0].evidence.as_ref().unwrap().e_value, Some(50.0));
        // Still breaching before the reminder interval: silent, evidence refreshed.
        let (s, n) = transition(&s, &Observation::Breach(ev(80.0)), 500, &policy, false);
        assert!(n.is_empty());
        assert_eq!(s.evidence.as_ref().unwrap().e_value, Some(80.0));
        let (s, n) = transition(&s, &Observation::Breach(ev(90.0)), 1010, &policy, false);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, NotificationKind::Reminder);
        // No data never resolves nor fires.
        let (s, n) = transition(&s, &Observation::NoData, 1500, &policy, false);
        assert!(n.is_empty());
        assert_eq!(s.status, Status::Firing);
        // One clear is not enough with resolve_after = 2; a breach resets the streak.
        let (s, n) = transition(&s, &Observation::Clear, 1600, &policy, false);
        assert!(n.is_empty());
        let (s, _) = transition(&s, &Observation::Breach(ev(90.0)), 1700, &policy, false);
        let (s, _) = transition(&s, &Observation::Clear, 1800, &policy, false);
        let (s, n) = transition(&s, &Observation::Clear, 1900, &policy, false);
        assert_eq!(s.status, Status::Resolved);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, NotificationKind::Resolved);
        assert_eq!(n[0].incident, "t/refusal_rate#1");
        // It says why it ended, then what it fired on; the state keeps the firing evidence.
        assert_eq!(
            n[0].evidence.as_ref().unwrap().summary,
            "cleared: no breach in 2 consecutive rounds; it fired on: refusal rate 30% vs 2%"
        );
        assert_eq!(
            s.evidence.as_ref().unwrap().summary,
            "refusal rate 30% vs 2%"
        );
        // A new breach is a new incident.
        let (s, n) = transition(&s, &Observation::Breach(ev(60.0)), 5000, &policy, false);
        assert_eq!(s.incident, 2);
        assert_eq!(n[0].incident, "t/refusal_rate#2");
    }

    #[test]
    fn clear_while_ok_is_silent_and_no_reminders_when_disabled() {
        let policy = Policy {
            reminder_ms: None,
            resolve_after: 1,
        };
        let (s, n) = transition(&start(), &Observation::Clear, 5, &policy, false);
        assert_eq!(s.status, Status::Ok);
        assert!(n.is_empty());
        let (s, _) = transition(&s, &Observation::Breach(ev(40.0)), 6, &policy, false);
        let (_, n) = transition(
            &s,
            &Observation::Breach(ev(40.0)),
            i64::MAX / 2,
            &policy,
            false,
        );
        assert!(n.is_empty());
    }

    #[test]
    fn muted_transitions_change_state_and_mark_notifications() {
        let policy = Policy::default();
        let (s, n) = transition(&start(), &Observation::Breach(ev(40.0)), 6, &policy, true);
        assert_eq!(s.status, Status::Firing);
        assert!(n[0].muted);
        // After the silence ends the resolution is delivered.
        let (_, n) = transition(&s, &Observation::Clear, 7, &policy, false);
        assert_eq!(n[0].kind, NotificationKind::Resolved);
        assert!(!n[0].muted);
    }

    #[test]
    fn state_round_trips_through_json() {
        let (s, _) = transition(
            &start(),
            &Observation::Breach(ev(40.0)),
            6,
            &Policy::default(),
            false,
        );
        let text = serde_json::to_string(&s).unwrap();
        let back: AlertState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
