//! `GET /`: the status page. The same data as `/api/v1/status` (targets, fingerprints, current
//! metric readings, alerts) plus each target's newest rounds read from the store, rendered as
//! the time view (one self-contained HTML page, inline SVG, no scripts, refreshing itself).

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
pub fn render(status: &StatusDoc, history: Option<&History>, now_ms: i64) -> String {
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
    let mut targets = Vec::new();
    for t in &status.targets {
        let info = TargetInfo {
            name: t.name.clone(),
            model: t.model.clone(),
            fingerprint: t.fingerprint.clone(),
        };
        let mut tl = match &store {
            Some(s) => match load_target(s, &info, None, PAGE_ROUNDS, &expected) {
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
        attach_baselines(&mut tl);
        targets.push(tl);
    }
    let mut window = format!("last {PAGE_ROUNDS} rounds per target");
    if let Some(p) = problem {
        window.push_str(&format!(" ({p})"));
    }
    let page = Timeline {
        title: format!("modelwatch {} status", status.version),
        window,
        generated_at_ms: now_ms,
        targets,
        links: vec![
            ("status JSON".into(), "/api/v1/status".into()),
            ("metrics".into(), "/metrics".into()),
        ],
    };
    timeline_html(&page, Some(REFRESH_SECS))
}

fn empty(info: &TargetInfo) -> crate::report::timeline::TargetTimeline {
    crate::report::timeline::TargetTimeline {
        name: info.name.clone(),
        model: info.model.clone(),
        fingerprint: info.fingerprint.clone(),
        ..Default::default()
    }
}
