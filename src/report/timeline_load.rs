//! Reads one target's time view out of the store: its newest rounds within a window, folded
//! into per-round series as the samples stream by, plus the monitor's stored readings, swaps and
//! alert events.

use super::timeline::{SeriesBuilder, TargetTimeline, alert_markers, evidence_series, swaps};
use crate::store::{HistoryQuery, Result, Store};

/// What is known about a target besides its stored history.
#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    pub name: String,
    pub model: String,
    /// The fingerprint served now, when known (else the newest round's).
    pub fingerprint: Option<String>,
}

/// The time view of `info`'s newest `max_rounds` rounds that started at or after `since_ms`.
/// Verdicts are left empty: the caller knows where the present state lives.
pub fn load_target(
    store: &Store,
    info: &TargetInfo,
    since_ms: Option<i64>,
    max_rounds: u32,
    refusal_expected: &dyn Fn(&str) -> bool,
) -> Result<TargetTimeline> {
    let newest = store.rounds(&info.name, max_rounds.max(1))?;
    let oldest_kept = newest.iter().map(|r| r.started_at_ms).min();
    let since = match (since_ms, oldest_kept) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut builder = SeriesBuilder::new(max_rounds as usize);
    if !newest.is_empty() {
        let query = HistoryQuery {
            target: Some(info.name.clone()),
            since_ms: since,
            skip_text: true,
            ..HistoryQuery::default()
        };
        store.history(&query, |r| {
            builder.push(&r, refusal_expected);
            true
        })?;
    }
    let (rounds, series) = builder.finish();
    let events = store.events(Some(&info.name), since.unwrap_or(0))?;
    let readings = match rounds.first() {
        Some(first) => store.readings(&info.name, first.started_at_ms)?,
        None => Vec::new(),
    };
    let fingerprint = info
        .fingerprint
        .clone()
        .or_else(|| rounds.iter().rev().find_map(|r| r.fingerprint.clone()));
    Ok(TargetTimeline {
        name: info.name.clone(),
        model: info.model.clone(),
        fingerprint,
        swaps: swaps(&rounds),
        evidence: evidence_series(&rounds, &readings),
        alerts: alert_markers(&events),
        rounds,
        series,
        verdicts: Vec::new(),
        link: None,
        silenced: Vec::new(),
    })
}
