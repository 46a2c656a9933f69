//! Read-only history queries: stored samples together with their round and its fingerprint,
//! narrowed to a target, a round, a probe and a time window, streamed in order. `export` writes
//! them out; the time view (status page, `report --since`) charts them per round.

use super::rounds::RoundId;
use super::samples::{SELECT_SAMPLE, read_sample};
use super::{Result, Store, StoreError};
use crate::sample::Sample;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use std::path::Path;
use std::time::Duration;

/// Which samples [`Store::history`] streams. Every set field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub target: Option<String>,
    /// Samples whose request started at or after this time.
    pub since_ms: Option<i64>,
    /// Samples whose request started before this time.
    pub until_ms: Option<i64>,
    pub round: Option<i64>,
    pub suite: Option<String>,
    pub probe_id: Option<String>,
    /// Leave `Sample::text` as `None` (cheaper when only measurements are needed).
    pub skip_text: bool,
}

/// A stored sample with the round it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundSample {
    pub round: RoundId,
    /// The fingerprint id the round was served by, when it was read.
    pub fingerprint: Option<String>,
    pub sample: Sample,
}

impl Store {
    /// Opens an existing database for reading only (a second connection beside a running
    /// daemon's): nothing is created, migrated or written.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open_error = |error| StoreError::Open {
            path: path.to_path_buf(),
            error,
        };
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        super::migrate::check_not_newer(&conn)?;
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
            health: super::health::Health::new(true),
        })
    }

    /// Calls `each` for every sample matching `query`, oldest round first, in insertion order
    /// within a round, until it returns `false`. Rows are read one at a time, so memory stays
    /// bounded whatever the window.
    pub fn history(
        &self,
        query: &HistoryQuery,
        mut each: impl FnMut(RoundSample) -> bool,
    ) -> Result<()> {
        let mut sql = String::from(SELECT_SAMPLE);
        sql.push_str(if query.skip_text {
            ", NULL"
        } else {
            ", (SELECT text FROM sample_texts x WHERE x.sample_id = s.id)"
        });
        sql.push_str(
            ", s.round_id, r.fingerprint FROM samples s JOIN targets t ON t.id = s.target_id \
             JOIN rounds r ON r.id = s.round_id WHERE 1",
        );
        let mut args: Vec<Value> = Vec::new();
        let mut narrow = |clause: &str, v: Value| {
            sql.push_str(clause);
            args.push(v);
        };
        if let Some(t) = &query.target {
            narrow(" AND t.name = ?", Value::Text(t.clone()));
        }
        if let Some(ms) = query.since_ms {
            narrow(" AND s.started_at_ms >= ?", Value::Integer(ms));
        }
        if let Some(ms) = query.until_ms {
            narrow(" AND s.started_at_ms < ?", Value::Integer(ms));
        }
        if let Some(r) = query.round {
            narrow(" AND s.round_id = ?", Value::Integer(r));
        }
        if let Some(s) = &query.suite {
            narrow(" AND s.suite = ?", Value::Text(s.clone()));
        }
        if let Some(p) = &query.probe_id {
            narrow(" AND s.probe_id = ?", Value::Text(p.clone()));
        }
        sql.push_str(" ORDER BY r.started_at_ms, s.round_id, s.id");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            let sample = read_sample(row)??;
            let item = RoundSample {
                round: RoundId(row.get(33)?),
                fingerprint: row.get(34)?,
                sample,
            };
            if !each(item) {
                break;
            }
        }
        Ok(())
    }

    /// The names of the targets with stored rounds, sorted.
    pub fn target_names(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM targets WHERE id IN (SELECT target_id FROM rounds) ORDER BY name",
        )?;
        let names = stmt.query_map([], |r| r.get(0))?;
        Ok(names.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Measurements;

    fn sample(target: &str, probe: &str, at: i64, text: &str) -> Sample {
        Sample {
            latency_ms: 10.0,
            measurements: Some(Measurements {
                chars: text.len() as u32,
                ..Measurements::default()
            }),
            text: Some(text.into()),
            ..Sample::pending(target, "core", probe, &format!("h-{probe}"), 0, at)
        }
    }

    fn store() -> (Store, RoundId, RoundId) {
        let mut s = Store::open_in_memory().unwrap();
        let r1 = s.begin_round("a", Some("fp1"), 100).unwrap();
        s.insert_samples(
            r1,
            &[sample("a", "p", 100, "one"), sample("a", "q", 101, "two")],
        )
        .unwrap();
        let r2 = s.begin_round("a", Some("fp2"), 200).unwrap();
        s.insert_samples(r2, &[sample("a", "p", 200, "three")])
            .unwrap();
        let rb = s.begin_round("b", None, 150).unwrap();
        s.insert_samples(rb, &[sample("b", "p", 150, "other")])
            .unwrap();
        (s, r1, r2)
    }

    fn texts(s: &Store, q: &HistoryQuery) -> Vec<(i64, Option<String>, String)> {
        let mut out = Vec::new();
        s.history(q, |r| {
            out.push((r.round.0, r.fingerprint, r.sample.text.unwrap_or_default()));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn history_narrows_by_target_round_probe_and_window() {
        let (s, r1, r2) = store();
        let a = HistoryQuery {
            target: Some("a".into()),
            ..HistoryQuery::default()
        };
        assert_eq!(
            texts(&s, &a),
            [
                (r1.0, Some("fp1".into()), "one".into()),
                (r1.0, Some("fp1".into()), "two".into()),
                (r2.0, Some("fp2".into()), "three".into())
            ]
        );
        let round = HistoryQuery {
            round: Some(r2.0),
            ..a.clone()
        };
        assert_eq!(texts(&s, &round).len(), 1);
        let probe = HistoryQuery {
            probe_id: Some("q".into()),
            ..a.clone()
        };
        assert_eq!(texts(&s, &probe)[0].2, "two");
        let window = HistoryQuery {
            since_ms: Some(101),
            until_ms: Some(200),
            ..a.clone()
        };
        assert_eq!(texts(&s, &window)[0].2, "two");
        assert_eq!(texts(&s, &window).len(), 1);
        assert_eq!(s.target_names().unwrap(), ["a", "b"]);
    }

    #[test]
    fn history_stops_when_asked_and_can_skip_texts() {
        let (s, _, _) = store();
        let mut n = 0;
        s.history(&HistoryQuery::default(), |r| {
            assert!(r.sample.text.is_some());
            n += 1;
            n < 2
        })
        .unwrap();
        assert_eq!(n, 2);
        let q = HistoryQuery {
            skip_text: true,
            ..HistoryQuery::default()
        };
        s.history(&q, |r| {
            assert!(r.sample.text.is_none());
            true
        })
        .unwrap();
    }
}
