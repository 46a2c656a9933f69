//! The monitor's readings, one row per round and metric: the evidence against the baseline as it
//! stood after the round, so the status page can chart it over time. Written in the round's
//! transaction; pruned with the round (foreign key, `ON DELETE CASCADE`).

use super::{Result, RoundId, Store, existing_target_id};
use rusqlite::params;

/// What the monitor read for one metric after one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: String,
    /// Natural log of the e-value (finite where the e-value itself would overflow).
    pub log_e_value: f64,
    /// The e-value at which the metric alarms (1/α).
    pub threshold: f64,
    /// The episode's value so far (a rate, or a length placement), when it has samples.
    pub current: Option<f64>,
    /// Samples behind the evidence.
    pub samples: u64,
}

/// A stored reading with the round it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReading {
    pub round: RoundId,
    pub started_at_ms: i64,
    pub reading: Reading,
}

impl Store {
    /// Stores the readings taken after `round` (replacing any stored for it).
    pub fn record_readings(&mut self, round: RoundId, readings: &[Reading]) -> Result<()> {
        let tx = self.conn.savepoint()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO readings
                     (round_id, metric, log_e_value, threshold, current, samples)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in readings {
                // NaN would be stored as NULL and break the NOT NULL column: a reading that
                // cannot be expressed is left out, not invented.
                if r.log_e_value.is_nan() {
                    continue;
                }
                let log_e = r.log_e_value.clamp(-f64::MAX, f64::MAX);
                stmt.execute(params![
                    round.0,
                    r.metric,
                    log_e,
                    r.threshold,
                    r.current.filter(|c| c.is_finite()),
                    r.samples.min(i64::MAX as u64) as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The readings of `target`'s rounds that started at or after `since_ms`, oldest first.
    pub fn readings(&self, target: &str, since_ms: i64) -> Result<Vec<RoundReading>> {
        let Some(tid) = existing_target_id(&self.conn, target)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.started_at_ms, g.metric, g.log_e_value, g.threshold, g.current,
                    g.samples
             FROM readings g JOIN rounds r ON r.id = g.round_id
             WHERE r.target_id = ?1 AND r.started_at_ms >= ?2
             ORDER BY r.started_at_ms, r.id, g.metric",
        )?;
        let rows = stmt.query_map(params![tid, since_ms], |row| {
            Ok(RoundReading {
                round: RoundId(row.get(0)?),
                started_at_ms: row.get(1)?,
                reading: Reading {
                    metric: row.get(2)?,
                    log_e_value: row.get(3)?,
                    threshold: row.get(4)?,
                    current: row.get(5)?,
                    samples: row.get::<_, i64>(6)?.max(0) as u64,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RoundStatus;

    fn reading(metric: &str, log_e: f64) -> Reading {
        Reading {
            metric: metric.into(),
            log_e_value: log_e,
            threshold: 100.0,
            current: Some(0.25),
            samples: 40,
        }
    }

    #[test]
    fn readings_come_back_per_round_oldest_first_and_only_for_the_target() {
        let mut store = Store::open_in_memory().unwrap();
        let a1 = store.begin_round("a", None, 10).unwrap();
        let b1 = store.begin_round("b", None, 15).unwrap();
        let a2 = store.begin_round("a", None, 20).unwrap();
        store
            .record_readings(a2, &[reading("refusal_rate", 3.0)])
            .unwrap();
        store
            .record_readings(a1, &[reading("refusal_rate", 1.0), reading("x", 0.5)])
            .unwrap();
        store.record_readings(b1, &[reading("y", 9.0)]).unwrap();
        let got = store.readings("a", 0).unwrap();
        let keys: Vec<(i64, &str, f64)> = got
            .iter()
            .map(|r| (r.round.0, &*r.reading.metric, r.reading.log_e_value))
            .collect();
        assert_eq!(
            keys,
            [
                (a1.0, "refusal_rate", 1.0),
                (a1.0, "x", 0.5),
                (a2.0, "refusal_rate", 3.0)
            ]
        );
        assert_eq!(store.readings("a", 20).unwrap().len(), 1);
        assert!(store.readings("nobody", 0).unwrap().is_empty());
    }

    #[test]
    fn an_overflowing_e_value_is_stored_as_a_finite_log_and_nan_is_left_out() {
        let mut store = Store::open_in_memory().unwrap();
        let r = store.begin_round("a", None, 10).unwrap();
        store
            .record_readings(
                r,
                &[reading("big", f64::INFINITY), reading("nan", f64::NAN)],
            )
            .unwrap();
        let got = store.readings("a", 0).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].reading.metric, "big");
        assert_eq!(got[0].reading.log_e_value, f64::MAX);
    }

    #[test]
    fn readings_go_with_their_round_when_it_is_pruned() {
        let mut store = Store::open_in_memory().unwrap();
        let r = store.begin_round("a", None, 10).unwrap();
        store.finish_round(r, 11, RoundStatus::Completed).unwrap();
        store.record_readings(r, &[reading("m", 1.0)]).unwrap();
        store.prune(1_000_000, 0, 0).unwrap();
        assert!(store.rounds("a", 5).unwrap().is_empty(), "round pruned");
        assert!(store.readings("a", 0).unwrap().is_empty());
    }
}
