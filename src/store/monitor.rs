//! The monitor's saved evidence, one row per target: written inside each round's transaction
//! (so it always matches the stored rounds, whatever crashes) and read at start. The store keeps
//! it as opaque JSON with its format version and basis; the daemon decides what they mean.

use super::{Result, Store, existing_target_id, target_id};
use rusqlite::OptionalExtension;

/// A target's saved monitor evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRow {
    /// Version of the JSON's layout.
    pub format: i64,
    /// Digest of what the monitor tests (its baseline's nulls); evidence continues only in a
    /// monitor with the same basis.
    pub basis: String,
    pub episode_started_ms: Option<i64>,
    pub state: String,
    pub updated_at_ms: i64,
}

impl Store {
    /// Replaces the saved evidence of `target` (inside the round's transaction).
    pub fn save_monitor_state(&mut self, target: &str, row: &MonitorRow) -> Result<()> {
        let id = target_id(&self.conn, target, row.updated_at_ms)?;
        self.conn
            .prepare_cached(
                "INSERT INTO monitor_state
                     (target_id, format, basis, episode_started_ms, state, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (target_id) DO UPDATE SET format = excluded.format,
                     basis = excluded.basis, episode_started_ms = excluded.episode_started_ms,
                     state = excluded.state, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(rusqlite::params![
                id,
                row.format,
                row.basis,
                row.episode_started_ms,
                row.state,
                row.updated_at_ms
            ])?;
        Ok(())
    }

    /// Forgets the saved evidence of `target` (it has no monitor any more).
    pub fn clear_monitor_state(&mut self, target: &str) -> Result<()> {
        if let Some(id) = existing_target_id(&self.conn, target)? {
            self.conn
                .prepare_cached("DELETE FROM monitor_state WHERE target_id = ?1")?
                .execute([id])?;
        }
        Ok(())
    }

    /// The saved evidence of `target`, if any.
    pub fn monitor_state(&self, target: &str) -> Result<Option<MonitorRow>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT m.format, m.basis, m.episode_started_ms, m.state, m.updated_at_ms
                 FROM monitor_state m JOIN targets t ON t.id = m.target_id WHERE t.name = ?1",
            )?
            .query_row([target], |r| {
                Ok(MonitorRow {
                    format: r.get(0)?,
                    basis: r.get(1)?,
                    episode_started_ms: r.get(2)?,
                    state: r.get(3)?,
                    updated_at_ms: r.get(4)?,
                })
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, at: i64) -> MonitorRow {
        MonitorRow {
            format: 1,
            basis: "b".into(),
            episode_started_ms: Some(5),
            state: state.into(),
            updated_at_ms: at,
        }
    }

    #[test]
    fn saved_evidence_is_replaced_read_back_and_cleared_per_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.monitor_state("a").unwrap(), None);
        store.save_monitor_state("a", &row("{\"n\":1}", 1)).unwrap();
        store.save_monitor_state("b", &row("{\"n\":9}", 1)).unwrap();
        store.save_monitor_state("a", &row("{\"n\":2}", 2)).unwrap();
        drop(store);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.monitor_state("a").unwrap(), Some(row("{\"n\":2}", 2)));
        assert_eq!(store.monitor_state("b").unwrap(), Some(row("{\"n\":9}", 1)));
        store.clear_monitor_state("a").unwrap();
        store.clear_monitor_state("never").unwrap();
        assert_eq!(store.monitor_state("a").unwrap(), None);
        assert!(store.monitor_state("b").unwrap().is_some());
    }

    #[test]
    fn evidence_saved_in_a_rolled_back_transaction_is_not_kept() {
        let mut store = Store::open_in_memory().unwrap();
        store.save_monitor_state("a", &row("{\"n\":1}", 1)).unwrap();
        store.begin().unwrap();
        store.save_monitor_state("a", &row("{\"n\":2}", 2)).unwrap();
        store.conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(store.monitor_state("a").unwrap(), Some(row("{\"n\":1}", 1)));
    }
}
