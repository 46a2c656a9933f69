//! Production completions received by the daemon: one row of measurements each in
//! `traffic_completions`, the text (only with `[traffic] store_text = true`) apart in
//! `traffic_texts`, so that it is pruned as early as the probes' raw texts. Retention follows
//! `[storage]` exactly as for samples: texts after `raw_text_retention`, rows after
//! `sample_retention`, both by the time the daemon received the completion.

use super::{Result, Store};
use crate::sample::StructuredOutcome;
use rusqlite::params;

/// What is kept of one received completion (the field list of `docs/traffic.md`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TrafficRow {
    pub target: String,
    /// The route or prompt class the application gave (`default` when none).
    pub route: String,
    /// When the daemon accepted it (Unix ms); retention counts from here.
    pub received_at_ms: i64,
    /// When the application says the completion happened, if it said.
    pub timestamp_ms: Option<i64>,
    /// `None` when only a token count was sent.
    pub chars: Option<u32>,
    pub output_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    pub truncated: bool,
    /// `None` when only lengths were sent (nothing to judge).
    pub empty: Option<bool>,
    pub refusal: Option<bool>,
    pub partial_refusal: Option<bool>,
    pub refusal_rule: Option<String>,
    pub latency_ms: Option<f64>,
    /// The structured-output outcome, when the route declares a JSON Schema and the text was
    /// sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredOutcome>,
    /// The route declared a JSON Schema when the completion was measured (a completion sent
    /// as lengths only then has no outcome, and is counted as such). Not stored.
    #[serde(skip)]
    pub declares_schema: bool,
    /// Only with `store_text = true` (never part of a stored baseline).
    #[serde(skip)]
    pub text: Option<String>,
}

/// A route's traffic baseline as kept in `traffic_baselines` (one per target and route): the
/// measurements of the completions it was made of, never their texts.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficBaseline {
    pub target: String,
    pub route: String,
    /// `recorded` (the route's first completions), `window` (the window before a swap) or
    /// `file` (`[traffic] baseline_file`).
    pub source: String,
    pub recorded_at_ms: i64,
    /// The target's fingerprint when it was made, when known.
    pub fingerprint: Option<String>,
    /// The digest of the route's JSON Schema its outcomes were judged against, if it had one.
    pub schema: Option<String>,
    pub rows: Vec<TrafficRow>,
}

/// What [`Store::prune_traffic`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficPruned {
    pub texts: u64,
    pub completions: u64,
}

const INSERT: &str = "INSERT INTO traffic_completions (
    target, route, received_at_ms, timestamp_ms, chars, output_tokens, finish_reason,
    truncated, empty, refusal, partial_refusal, refusal_rule, latency_ms, structured
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// A stored structured outcome (an unknown word reads as none).
fn outcome(value: Option<String>) -> Option<StructuredOutcome> {
    value.as_deref().and_then(StructuredOutcome::parse)
}

impl Store {
    /// Stores `rows`, all or none, in one transaction.
    pub fn insert_traffic(&mut self, rows: &[TrafficRow]) -> Result<()> {
        let tx = self.conn.savepoint()?;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let mut text = tx.prepare_cached(
                "INSERT INTO traffic_texts (completion_id, text) VALUES (?1, ?2)",
            )?;
            for r in rows {
                insert.execute(params![
                    r.target,
                    r.route,
                    r.received_at_ms,
                    r.timestamp_ms,
                    r.chars,
                    r.output_tokens,
                    r.finish_reason,
                    r.truncated,
                    r.empty,
                    r.refusal,
                    r.partial_refusal,
                    r.refusal_rule,
                    r.latency_ms.filter(|l| l.is_finite()),
                    r.structured.map(StructuredOutcome::as_str),
                ])?;
                if let Some(t) = &r.text {
                    text.execute(params![tx.last_insert_rowid(), t])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored completions of `target` received at or after `since_ms`, oldest first.
    pub fn traffic_rows(&self, target: &str, since_ms: i64) -> Result<Vec<TrafficRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.target, c.route, c.received_at_ms, c.timestamp_ms, c.chars,
                    c.output_tokens, c.finish_reason, c.truncated, c.empty, c.refusal,
                    c.partial_refusal, c.refusal_rule, c.latency_ms, t.text, c.structured
             FROM traffic_completions c LEFT JOIN traffic_texts t ON t.completion_id = c.id
             WHERE c.target = ?1 AND c.received_at_ms >= ?2 ORDER BY c.id",
        )?;
        let rows = stmt.query_map(params![target, since_ms], |r| {
            Ok(TrafficRow {
                target: r.get(0)?,
                route: r.get(1)?,
                received_at_ms: r.get(2)?,
                timestamp_ms: r.get(3)?,
                chars: r.get(4)?,
                output_tokens: r.get(5)?,
                finish_reason: r.get(6)?,
                truncated: r.get(7)?,
                empty: r.get(8)?,
                refusal: r.get(9)?,
                partial_refusal: r.get(10)?,
                refusal_rule: r.get(11)?,
                latency_ms: r.get(12)?,
                text: r.get(13)?,
                structured: outcome(r.get(14)?),
                declares_schema: false,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes traffic texts received more than `raw_text_retention_ms` before `now_ms` and
    /// rows received more than `sample_retention_ms` before it (the samples' rules).
    /// Keeps `b` as the baseline of its target and route (replacing the previous one).
    pub fn put_traffic_baseline(&mut self, b: &TrafficBaseline) -> Result<()> {
        let completions = serde_json::to_string(&b.rows).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "INSERT OR REPLACE INTO traffic_baselines
                 (target, route, source, recorded_at_ms, fingerprint, completions, schema)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                b.target,
                b.route,
                b.source,
                b.recorded_at_ms,
                b.fingerprint,
                completions,
                b.schema
            ],
        )?;
        Ok(())
    }

    /// Drops the kept baseline of a target's route (it is recorded again).
    pub fn delete_traffic_baseline(&mut self, target: &str, route: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM traffic_baselines WHERE target = ?1 AND route = ?2",
            params![target, route],
        )?;
        Ok(())
    }

    /// Every kept baseline (a row whose completions cannot be read is skipped).
    pub fn traffic_baselines(&self) -> Result<Vec<TrafficBaseline>> {
        let mut stmt = self.conn.prepare(
            "SELECT target, route, source, recorded_at_ms, fingerprint, completions, schema
             FROM traffic_baselines ORDER BY target, route",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                TrafficBaseline {
                    target: r.get(0)?,
                    route: r.get(1)?,
                    source: r.get(2)?,
                    recorded_at_ms: r.get(3)?,
                    fingerprint: r.get(4)?,
                    schema: r.get(6)?,
                    rows: Vec::new(),
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut b, json) = row?;
            match serde_json::from_str::<Vec<TrafficRow>>(&json) {
                Ok(mut rows) => {
                    for r in &mut rows {
                        r.target.clone_from(&b.target);
                        r.route.clone_from(&b.route);
                    }
                    b.rows = rows;
                    out.push(b);
                }
                Err(e) => {
                    tracing::warn!(target = %b.target, route = %b.route, error = %e, "traffic: a kept baseline cannot be read; it is recorded again");
                }
            }
        }
        Ok(out)
    }

    /// The most recent `limit` completions of a stream judged from their text (refusal known)
    /// received in `[from_ms, to_ms)`, oldest first.
    pub fn traffic_window(
        &self,
        target: &str,
        route: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<TrafficRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT route, received_at_ms, timestamp_ms, chars, output_tokens, finish_reason,
                    truncated, empty, refusal, partial_refusal, refusal_rule, latency_ms,
                    structured
             FROM traffic_completions
             WHERE target = ?1 AND route = ?2 AND received_at_ms >= ?3 AND received_at_ms < ?4
                   AND refusal IS NOT NULL
             ORDER BY received_at_ms DESC, id DESC LIMIT ?5",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![target, route, from_ms, to_ms, limit], |r| {
            Ok(TrafficRow {
                target: target.to_string(),
                route: r.get(0)?,
                received_at_ms: r.get(1)?,
                timestamp_ms: r.get(2)?,
                chars: r.get(3)?,
                output_tokens: r.get(4)?,
                finish_reason: r.get(5)?,
                truncated: r.get(6)?,
                empty: r.get(7)?,
                refusal: r.get(8)?,
                partial_refusal: r.get(9)?,
                refusal_rule: r.get(10)?,
                latency_ms: r.get(11)?,
                text: None,
                structured: outcome(r.get(12)?),
                declares_schema: false,
            })
        })?;
        let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    pub fn prune_traffic(
        &mut self,
        now_ms: i64,
        raw_text_retention_ms: i64,
        sample_retention_ms: i64,
    ) -> Result<TrafficPruned> {
        let (text_cutoff, cutoff) =
            super::samples::retention_cutoffs(now_ms, raw_text_retention_ms, sample_retention_ms)?;
        let tx = self.conn.savepoint()?;
        let texts = tx.execute(
            "DELETE FROM traffic_texts WHERE completion_id IN
                 (SELECT id FROM traffic_completions WHERE received_at_ms < ?1)",
            [text_cutoff],
        )?;
        let completions = tx.execute(
            "DELETE FROM traffic_completions WHERE received_at_ms < ?1",
            [cutoff],
        )?;
        tx.commit()?;
        Ok(TrafficPruned {
            texts: texts as u64,
            completions: completions as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(route: &str, at: i64, text: Option<&str>) -> TrafficRow {
        TrafficRow {
            target: "chat".into(),
            route: route.into(),
            received_at_ms: at,
            chars: Some(12),
            refusal: Some(false),
            latency_ms: Some(f64::NAN),
            text: text.map(str::to_string),
            ..TrafficRow::default()
        }
    }

    #[test]
    fn rows_round_trip_and_prune_by_the_sample_rules() {
        let mut store = Store::open_in_memory().unwrap();
        let rows = vec![
            row("/a", 1_000, Some("old text")),
            row("/b", 2_500, Some("newer text")),
            row("/a", 3_000, None),
        ];
        store.insert_traffic(&rows).unwrap();
        let back = store.traffic_rows("chat", 0).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].text.as_deref(), Some("old text"));
        assert_eq!(back[0].latency_ms, None, "NaN is stored as NULL");
        assert_eq!(back[2].route, "/a");
        assert!(store.traffic_rows("other", 0).unwrap().is_empty());
        // Texts older than 1000 ms, rows older than 2000 ms (at now = 3600).
        let pruned = store.prune_traffic(3_600, 1_000, 2_000).unwrap();
        assert_eq!(
            pruned,
            TrafficPruned {
                texts: 2,
                completions: 1
            }
        );
        let left = store.traffic_rows("chat", 0).unwrap();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|r| r.text.is_none()));
        assert!(store.prune_traffic(0, -1, 0).is_err());
    }

    #[test]
    fn baselines_round_trip_without_texts_and_windows_hold_judged_rows() {
        let mut store = Store::open_in_memory().unwrap();
        let mut b = TrafficBaseline {
            target: "chat".into(),
            route: "/a".into(),
            source: "recorded".into(),
            recorded_at_ms: 5,
            fingerprint: Some("f1".into()),
            schema: Some("5e1f".into()),
            rows: vec![row("/a", 1, Some("never kept")), row("/a", 2, None)],
        };
        store.put_traffic_baseline(&b).unwrap();
        b.source = "window".into();
        store.put_traffic_baseline(&b).unwrap();
        let kept = store.traffic_baselines().unwrap();
        assert_eq!(kept.len(), 1, "one baseline per target and route");
        assert_eq!(kept[0].source, "window");
        assert_eq!(kept[0].fingerprint.as_deref(), Some("f1"));
        assert_eq!(kept[0].schema.as_deref(), Some("5e1f"));
        assert_eq!(kept[0].rows.len(), 2);
        assert!(kept[0].rows.iter().all(|r| r.text.is_none()));
        assert_eq!(kept[0].rows[0].route, "/a");
        assert_eq!(kept[0].rows[1].chars, Some(12));

        let mut lengths_only = row("/a", 150, None);
        lengths_only.refusal = None;
        store
            .insert_traffic(&[
                row("/a", 50, None),
                row("/a", 100, None),
                lengths_only,
                row("/b", 120, None),
                row("/a", 200, None),
            ])
            .unwrap();
        let w = store.traffic_window("chat", "/a", 60, 200, 10).unwrap();
        assert_eq!(
            w.iter().map(|r| r.received_at_ms).collect::<Vec<_>>(),
            vec![100]
        );
        let w = store.traffic_window("chat", "/a", 0, 1_000, 2).unwrap();
        assert_eq!(
            w.iter().map(|r| r.received_at_ms).collect::<Vec<_>>(),
            vec![100, 200],
            "the most recent, oldest first"
        );
    }
}
