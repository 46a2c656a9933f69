//! Alert state (one row per target and metric, the state as JSON) and silences.
//!
//! The daemon writes an alert's state after every transition and reads all of them at start,
//! so a restart continues where it stopped: a firing alert stays firing without a second
//! notification, and its resolution is still delivered.

use super::{Result, Store, StoreError};
use crate::alert::{AlertState, Silence};
use rusqlite::params;

impl Store {
    /// Writes (inserts or replaces) the state of one alert.
    pub fn save_alert_state(&mut self, state: &AlertState, at_ms: i64) -> Result<()> {
        let json = serde_json::to_string(state)
            .map_err(|e| StoreError::Invalid(format!("alert state is not serialisable: {e}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO alert_state (target, metric, status, updated_at_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (target, metric) DO UPDATE SET
                     status = excluded.status, updated_at_ms = excluded.updated_at_ms,
                     state = excluded.state",
            )?
            .execute(params![
                state.key.target,
                state.key.metric,
                state.status.as_str(),
                at_ms,
                json
            ])?;
        Ok(())
    }

    /// Every stored alert state, ordered by target and metric.
    pub fn alert_states(&self) -> Result<Vec<AlertState>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT rowid, state FROM alert_state ORDER BY target, metric")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row?;
            let state = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                table: "alert_state",
                row: id,
                detail: format!("state is not a valid alert state: {e}"),
            })?;
            out.push(state);
        }
        Ok(out)
    }

    /// Adds a silence and returns it with its id.
    pub fn add_silence(
        &mut self,
        target: &str,
        metric: Option<&str>,
        created_ms: i64,
        until_ms: i64,
        reason: &str,
    ) -> Result<Silence> {
        if target.is_empty() {
            return Err(StoreError::Invalid("silence target is empty".into()));
        }
        if until_ms <= created_ms {
            return Err(StoreError::Invalid(format!(
                "silence ends ({until_ms}) before it starts ({created_ms})"
            )));
        }
        self.conn
            .prepare_cached(
                "INSERT INTO silences (target, metric, created_at_ms, until_ms, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![target, metric, created_ms, until_ms, reason])?;
        Ok(Silence {
            id: self.conn.last_insert_rowid(),
            target: target.to_string(),
            metric: metric.map(str::to_string),
            created_ms,
            until_ms,
            reason: reason.to_string(),
        })
    }

    /// Silences still in force at `now_ms`, oldest first.
    pub fn active_silences(&self, now_ms: i64) -> Result<Vec<Silence>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, target, metric, created_at_ms, until_ms, reason FROM silences
             WHERE until_ms > ?1 ORDER BY created_at_ms, id",
        )?;
        let rows = stmt.query_map([now_ms], |r| {
            Ok(Silence {
                id: r.get(0)?,
                target: r.get(1)?,
                metric: r.get(2)?,
                created_ms: r.get(3)?,
                until_ms: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Removes silences that ended before `now_ms`.
    pub fn prune_silences(&mut self, now_ms: i64) -> Result<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM silences WHERE until_ms <= ?1", [now_ms])? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, Evidence, Observation, Policy, Severity, Status, transition};

    #[test]
    fn alert_state_survives_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let start = AlertState::new(AlertKey::new("t", "refusal_rate"), Severity::Warning, 0);
        let ev = Evidence {
            summary: "worse".into(),
            e_value: Some(99.0),
            flipped_probes: vec!["core/a".into()],
            ..Evidence::default()
        };
        let (firing, _) = transition(
            &start,
            &Observation::Breach(ev),
            5,
            &Policy::default(),
            false,
        );
        {
            let mut store = Store::open(&path).unwrap();
            store.save_alert_state(&start, 0).unwrap();
            store.save_alert_state(&firing, 5).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let states = store.alert_states().unwrap();
        assert_eq!(states, vec![firing]);
        assert_eq!(states[0].status, Status::Firing);
    }

    #[test]
    fn silences_expire() {
        let mut store = Store::open_in_memory().unwrap();
        let s = store.add_silence("t", None, 10, 100, "upgrade").unwrap();
        store
            .add_silence("u", Some("empty_rate"), 10, 50, "")
            .unwrap();
        assert_eq!(store.active_silences(20).unwrap().len(), 2);
        assert_eq!(store.active_silences(60).unwrap(), vec![s]);
        assert_eq!(store.prune_silences(60).unwrap(), 1);
        assert!(store.active_silences(100).unwrap().is_empty());
        assert!(store.add_silence("t", None, 10, 10, "").is_err());
    }
}
