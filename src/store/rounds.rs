//! Rounds: one pass over a target's probes, with its fingerprint, timing, status and counts.

use super::{Result, Store, StoreError, existing_target_id, target_id};
use crate::runner::RoundOutcome;
pub use crate::runner::RoundStatus;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Row id of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoundId(pub i64);

impl fmt::Display for RoundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundInfo {
    pub id: RoundId,
    pub target: String,
    pub fingerprint: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub status: RoundStatus,
    /// Samples stored in the round, errors included.
    pub samples: u32,
    /// Samples that are infrastructure errors.
    pub errors: u32,
}

impl Store {
    /// Starts a round for `target` (created on first use) served by `fingerprint_id`.
    pub fn begin_round(
        &mut self,
        target: &str,
        fingerprint_id: Option<&str>,
        at_ms: i64,
    ) -> Result<RoundId> {
        let tx = self.conn.savepoint()?;
        let tid = target_id(&tx, target, at_ms)?;
        tx.execute(
            "INSERT INTO rounds (target_id, fingerprint, started_at_ms, status) VALUES (?1, ?2, ?3, ?4)",
            params![tid, fingerprint_id, at_ms, RoundStatus::Running.as_str()],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(RoundId(id))
    }

    /// Records the end of a round. Its sample counts are kept by `insert_samples`.
    pub fn finish_round(&mut self, round: RoundId, at_ms: i64, status: RoundStatus) -> Result<()> {
        if status == RoundStatus::Running {
            return Err(StoreError::Invalid(format!(
                "round {round} cannot finish with status running; use completed, failed or cancelled"
            )));
        }
        let n = self.conn.execute(
            "UPDATE rounds SET ended_at_ms = ?2, status = ?3 WHERE id = ?1",
            params![round.0, at_ms, status.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownRound(round.0));
        }
        Ok(())
    }

    /// Stores a round as it ended: begun when it started, its samples, finished at
    /// `ended_at_ms` (or when its last request ended, if later) with the status its samples give.
    /// The one place a round is written, for `run`, the demo and the daemon alike.
    pub fn record_round(
        &mut self,
        target: &str,
        fingerprint_id: Option<&str>,
        outcome: &RoundOutcome,
        ended_at_ms: i64,
    ) -> Result<RoundId> {
        let round = self.begin_round(target, fingerprint_id, outcome.started_at_ms)?;
        self.insert_samples(round, &outcome.samples)?;
        self.finish_round(
            round,
            ended_at_ms.max(outcome.ended_at_ms),
            outcome.status(),
        )?;
        Ok(round)
    }

    /// The newest `limit` rounds of `target`, newest first.
    pub fn rounds(&self, target: &str, limit: u32) -> Result<Vec<RoundInfo>> {
        let Some(tid) = existing_target_id(&self.conn, target)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, t.name, r.fingerprint, r.started_at_ms, r.ended_at_ms, r.status,
                    r.samples, r.errors
             FROM rounds r JOIN targets t ON t.id = r.target_id
             WHERE r.target_id = ?1
             ORDER BY r.started_at_ms DESC, r.id DESC
             LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![tid, limit], read_round)?;
        rows.map(|r| r?).collect()
    }

    /// One round by id.
    pub fn round(&self, round: RoundId) -> Result<Option<RoundInfo>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, t.name, r.fingerprint, r.started_at_ms, r.ended_at_ms, r.status,
                    r.samples, r.errors
             FROM rounds r JOIN targets t ON t.id = r.target_id
             WHERE r.id = ?1",
        )?;
        stmt.query_row([round.0], read_round)
            .optional()?
            .transpose()
    }
}

fn read_round(r: &Row<'_>) -> rusqlite::Result<Result<RoundInfo>> {
    let id: i64 = r.get(0)?;
    let status: String = r.get(5)?;
    let Some(status) = RoundStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt {
            table: "rounds",
            row: id,
            detail: format!("unknown status {status:?}"),
        }));
    };
    Ok(Ok(RoundInfo {
        id: RoundId(id),
        target: r.get(1)?,
        fingerprint: r.get(2)?,
        started_at_ms: r.get(3)?,
        ended_at_ms: r.get(4)?,
        status,
        samples: r.get(6)?,
        errors: r.get(7)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_listed_newest_first_with_their_status() {
        let mut store = Store::open_in_memory().unwrap();
        let a = store.begin_round("t", Some("fp1"), 100).unwrap();
        let b = store.begin_round("t", Some("fp2"), 200).unwrap();
        let _other = store.begin_round("u", None, 300).unwrap();
        store.finish_round(a, 150, RoundStatus::Failed).unwrap();
        let rounds = store.rounds("t", 10).unwrap();
        assert_eq!(rounds.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b, a]);
        assert_eq!(rounds[0].status, RoundStatus::Running);
        assert_eq!(rounds[0].ended_at_ms, None);
        assert_eq!(rounds[1].status, RoundStatus::Failed);
        assert_eq!(rounds[1].ended_at_ms, Some(150));
        assert_eq!(rounds[1].fingerprint.as_deref(), Some("fp1"));
        assert_eq!(store.rounds("t", 1).unwrap().len(), 1);
        assert!(store.rounds("missing", 10).unwrap().is_empty());
        assert_eq!(store.round(a).unwrap().unwrap().target, "t");
        assert_eq!(store.round(RoundId(999)).unwrap(), None);
    }

    #[test]
    fn finishing_an_unknown_round_or_as_running_is_an_error() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.finish_round(RoundId(42), 1, RoundStatus::Completed),
            Err(StoreError::UnknownRound(42))
        ));
        let r = store.begin_round("t", None, 1).unwrap();
        assert!(matches!(
            store.finish_round(r, 2, RoundStatus::Running),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn status_names_round_trip() {
        for s in RoundStatus::ALL {
            assert_eq!(RoundStatus::parse(s.as_str()), Some(s));
        }
    }
}
