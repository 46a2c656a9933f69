//! `GET /`: the status page. The same data as `/api/v1/status` (targets, fingerprints, current
//! metric readings, alerts) plus each target's newest rounds read from the store, rendered as
//! the time view (one self-contained HTML page, inline SVG, no scripts, refreshing itself).
//! `GET /report?target=T&since=7d`: one target's report over a longer window, linked from it.

use crate::daemon::state::StatusDoc;
use crate::report::timeline::{Timeline, VerdictRow, attach_baselines, metric_label};
use crate::report::timeline_html;
use crate::report::timeline_load::{TargetInfo, load_target};
use crate::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Rounds per target the page charts.
pub const PAGE_ROUNDS: u32 = 60;
/// Rounds at most in a `/report` view.
pub const REPORT_ROUNDS: u32 = 500;
/// The window of the report each target links to.
const REPORT_WINDOW: &str = "7d";

/// One target over a window (`/report`) instead of every target's newest rounds (`/`).
#[derive(Debug, Clone)]
pub struct Focus {
    pub target: String,
    pub since: std::time::Duration,
}
/// Seconds between the page's own reloads.
const REFRESH_SECS: u32 = 30;

/// Where the page reads history from: the daemon's store (opened read-only per request) and
/// which probes expect a refusal, by probe hash.
#[derive(Debug, Clone)]
pub struct History {
    pub store: PathBuf,
    pub refusal_expected: Arc<HashMap<String, bool>>,
}

impl History {
    /// The history of a loaded configuration: its store and its probes' expectations.
    pub fn of(loaded: &crate::config::Loaded) -> History {
        History {
            store: loaded.config.storage.path.clone(),
            refusal_expected: Arc::new(
                loaded
                    .checks
                    .iter()
                    .map(|(hash, c)| (hash.clone(), c.expect_refusal == Some(true)))
                    .collect(),
            ),
        }
    }
}

/// The page for `status`, with history when `history` is given and readable (an unreadable
/// store is said on the page; the current state is still shown).
pub fn render(
    status: &StatusDoc,
    history: Option<&History>,
    now_ms: i64,
    focus: Option<&Focus>,
) -> String {
    let mut problem = None;
    let store = history.and_then(|h| match Store::open_read_only(&h.store) {
        Ok(s) => Some(s),
        Err(e) => {
            problem = Some(format!("history unavailable: {e}"));
            None
        }
    });
    let expected = |hash: &str| {
        history
            .and_then(|h| h.refusal_expected.get(hash).copied())
            .unwrap_or(false)
    };
    let (since_ms, max_rounds) = match focus {
        Some(f) => (Some(now_ms - f.since.as_millis() as i64), REPORT_ROUNDS),
        None => (None, PAGE_ROUNDS),
    };
    let mut targets = Vec::new();
    for t in status
        .targets
        .iter()
        .filter(|t| focus.is_none_or(|f| f.target == t.name))
    {
        let info = TargetInfo {
            name: t.name.clone(),
            model: t.model.clone(),
            fingerprint: t.fingerprint.clone(),
        };
        let mut tl = match &store {
            Some(s) => match load_target(s, &info, since_ms, max_rounds, &expected) {
                Ok(tl) => tl,
                Err(e) => {
                    problem = Some(format!("history unavailable: {e}"));
                    empty(&info)
                }
            },
            None => empty(&info),
        };
        tl.verdicts = t
            .metrics
            .iter()
            .map(|m| {
                let alert = status
                    .alerts
                    .iter()
                    .find(|a| a.key.target == t.name && a.key.metric == m.metric);
                VerdictRow {
                    metric: m.metric.clone(),
                    label: metric_label(&m.metric),
                    status: alert.map_or("ok", |a| a.status.as_str()).to_string(),
                    current: m.current,
                    baseline: Some(m.baseline),
                    e_value: Some(m.e_value),
                    threshold: Some(m.threshold),
                    samples: m.samples,
                    summary: alert
                        .and_then(|a| a.evidence.as_ref())
                        .map(|e| e.summary.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        tl.silenced = silenced(status, &t.name);
        attach_baselines(&mut tl);
        if focus.is_none() {
            tl.link = Some((
                format!("report over {REPORT_WINDOW}"),
                format!("/report?target={}&since={REPORT_WINDOW}", encode(&t.name)),
            ));
        }
        targets.push(tl);
    }
    let mut window = match focus {
        Some(f) => format!(
            "last {} (at most {REPORT_ROUNDS} rounds)",
            crate::config::duration::format_duration(f.since)
        ),
        None => format!("last {PAGE_ROUNDS} rounds per target"),
    };
    if let Some(p) = problem {
        window.push_str(&format!(" ({p})"));
    }
    let mut links = vec![
        ("status JSON".to_string(), "/api/v1/status".to_string()),
        ("metrics".to_string(), "/metrics".to_string()),
    ];
    let title = match focus {
        Some(f) => {
            links.insert(0, ("status page".into(), "/".into()));
            format!("modelwatch: {} over time", f.target)
        }
        None => format!("modelwatch {} status", status.version),
    };
    let page = Timeline {
        title,
        window,
        generated_at_ms: now_ms,
        targets,
        links,
    };
    timeline_html(&page, focus.is_none().then_some(REFRESH_SECS))
}

/// Percent-encodes a target name for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The silences of `target` in force, in words: "refusal_rate muted until …: reason".
fn silenced(status: &StatusDoc, target: &str) -> Vec<String> {
    status
        .silences
        .iter()
        .filter(|s| s.target == target)
        .map(|s| {
            let reason = if s.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", s.reason)
            };
            format!(
                "{} muted until {}{reason}",
                s.metric.as_deref().unwrap_or("all alerts"),
                crate::time::rfc3339_utc(s.until_ms),
            )
        })
        .collect()
}

fn empty(info: &TargetInfo) -> crate::report::timeline::TargetTimeline {
    crate::report::timeline::TargetTimeline {
        name: info.name.clone(),
        model: info.model.clone(),
        fingerprint: info.fingerprint.clone(),
        ..Default::default()
    }
}
