//! `[traffic] baseline_file`: a baseline per route from completions the operator chose (a
//! known-good week exported from logs, say), in the ingest's JSON-lines format. Read once at
//! start, measured with the same evaluator as live traffic; a route needs at least
//! [`MIN_FILE_COMPLETIONS`] completions with their text.

use super::Traffic;
use crate::store::{TrafficBaseline, TrafficRow};
use std::collections::BTreeMap;
use std::path::Path;

/// Fewest completions with text a route of the file needs.
pub const MIN_FILE_COMPLETIONS: usize = 30;
/// Largest baseline file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Problems listed in the error.
const LISTED: usize = 5;

impl Traffic {
    /// The baselines of the routes named in the file at `path`, or what is wrong with it.
    pub fn baseline_file(&self, path: &Path, now_ms: i64) -> Result<Vec<TrafficBaseline>, String> {
        let shown = path.display();
        let text = crate::files::read_text_limited(path, MAX_FILE_BYTES)
            .map_err(|e| format!("[traffic] baseline_file `{shown}`: {e}"))?;
        let records: Vec<super::Numbered> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, self.parse_raw(i + 1, l.as_bytes())))
            .collect();
        let targets = self.targets.read().map(|t| t.clone()).unwrap_or_default();
        let mut by: BTreeMap<(String, String), Vec<TrafficRow>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (n, parsed) in records {
            match parsed
                .and_then(|r| self.resolve(n, &targets, r))
                .map(|(key, r)| self.measure(key, r, now_ms))
            {
                Ok(row) if row.refusal.is_some() => by
                    .entry((row.target.clone(), row.route.clone()))
                    .or_default()
                    .push(TrafficRow { text: None, ..row }),
                Ok(_) => errors.push(format!(
                    "line {n}: /output: missing: a baseline needs the completion's text"
                )),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for ((target, route), rows) in &by {
            if rows.len() < MIN_FILE_COMPLETIONS {
                errors.push(format!(
                    "route {route} of {target} has {} completions; at least {MIN_FILE_COMPLETIONS} are needed",
                    rows.len()
                ));
            }
        }
        if by.is_empty() && errors.is_empty() {
            errors.push("no completions: expected one JSON object per line".into());
        }
        if !errors.is_empty() {
            let more = errors.len().saturating_sub(LISTED);
            let mut listed = errors
                .into_iter()
                .take(LISTED)
                .collect::<Vec<_>>()
                .join("; ");
            if more > 0 {
                listed.push_str(&format!("; … and {more} more"));
            }
            return Err(format!(
                "[traffic] baseline_file `{shown}`: {listed} (the format of POST /api/v1/ingest, docs/traffic.md)"
            ));
        }
        Ok(by
            .into_iter()
            .map(|((target, route), rows)| TrafficBaseline {
                target,
                schema: self.schema_digests().remove(&route),
                route,
                source: "file".into(),
                recorded_at_ms: now_ms,
                fingerprint: None,
                rows,
            })
            .collect())
    }
}
