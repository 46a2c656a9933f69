//! Versioned, forward-only schema migrations.
//!
//! The schema version is SQLite's `PRAGMA user_version` (0 for a new file). Each migration runs
//! in its own `BEGIN IMMEDIATE` transaction together with the version bump, so a crash leaves the
//! database at the previous version, and two processes opening the same file at once cannot both
//! apply a step. To change the schema, append a [`Migration`] to [`MIGRATIONS`]: never edit or
//! reorder a released one, since databases in the field have already run it.

use super::{Result, StoreError};
use rusqlite::{Connection, TransactionBehavior};

/// One schema step, taking the database from `version - 1` to `version`.
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "targets, fingerprints, rounds, samples, sample texts",
        sql: r#"
CREATE TABLE targets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    current_fingerprint TEXT
);
CREATE TABLE fingerprints (
    id INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL REFERENCES targets (id),
    fingerprint TEXT NOT NULL,
    details TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    UNIQUE (target_id, fingerprint)
);
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL REFERENCES targets (id),
    fingerprint TEXT,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER,
    status TEXT NOT NULL,
    samples INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES targets (id),
    suite TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    probe_hash TEXT NOT NULL,
    idx INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    latency_ms REAL,
    ttft_ms REAL,
    attempts INTEGER NOT NULL,
    finish_reason TEXT,
    input_tokens INTEGER,
    response_model TEXT,
    system_fingerprint TEXT,
    chars INTEGER,
    words INTEGER,
    lines INTEGER,
    output_tokens INTEGER,
    tokens_estimated INTEGER,
    truncated INTEGER,
    empty INTEGER,
    refusal INTEGER,
    refusal_rule TEXT,
    structured TEXT,
    task_success INTEGER,
    error_kind TEXT,
    error_status INTEGER,
    error_message TEXT,
    error_attempts INTEGER,
    error_latency_ms REAL
);
CREATE TABLE sample_texts (
    sample_id INTEGER PRIMARY KEY REFERENCES samples (id) ON DELETE CASCADE,
    text TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 2,
        description: "query indexes and the events table",
        sql: r#"
CREATE INDEX samples_target_time ON samples (target_id, started_at_ms);
CREATE INDEX samples_round ON samples (round_id);
CREATE INDEX samples_time ON samples (started_at_ms);
CREATE INDEX rounds_target_time ON rounds (target_id, started_at_ms);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL REFERENCES targets (id),
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_target_time ON events (target_id, at_ms);
"#,
    },
    Migration {
        version: 3,
        description: "alert state and silences",
        sql: r#"
CREATE TABLE alert_state (
    target TEXT NOT NULL,
    metric TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (target, metric)
);
CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    metric TEXT,
    created_at_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX silences_until ON silences (until_ms);
"#,
    },
    Migration {
        version: 4,
        description: "alert delivery outbox",
        sql: r#"
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    sink TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    notification TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    last_error TEXT,
    done_at_ms INTEGER,
    UNIQUE (sink, idempotency_key)
);
CREATE INDEX outbox_status ON outbox (status, sink);
"#,
    },
    Migration {
        version: 5,
        description: "partial refusals on samples",
        sql: "ALTER TABLE samples ADD COLUMN partial_refusal INTEGER;",
    },
    Migration {
        version: 6,
        description: "the monitor's saved evidence",
        sql: r#"
CREATE TABLE monitor_state (
    target_id INTEGER PRIMARY KEY REFERENCES targets (id),
    format INTEGER NOT NULL,
    basis TEXT NOT NULL,
    episode_started_ms INTEGER,
    state TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
"#,
    },
    Migration {
        version: 7,
        description: "task_success_rate alerts and silences renamed task_failure_rate",
        // The rate always counted failed tasks; only its name said otherwise. An alert stored
        // under both names keeps the newer one.
        sql: r#"
DELETE FROM alert_state WHERE metric = 'task_success_rate' AND EXISTS (
    SELECT 1 FROM alert_state n
    WHERE n.target = alert_state.target AND n.metric = 'task_failure_rate'
);
UPDATE alert_state
SET metric = 'task_failure_rate',
    state = replace(state, '"task_success_rate"', '"task_failure_rate"')
WHERE metric = 'task_success_rate';
UPDATE silences SET metric = 'task_failure_rate' WHERE metric = 'task_success_rate';
"#,
    },
    Migration {
        version: 8,
        description: "license evidence with each fingerprint",
        sql: r#"
ALTER TABLE fingerprints ADD COLUMN license_id TEXT;
ALTER TABLE fingerprints ADD COLUMN license_sha256 TEXT;
ALTER TABLE fingerprints ADD COLUMN license_source TEXT;
"#,
    },
    Migration {
        version: 9,
        description: "the monitor's readings per round",
        sql: r#"
CREATE TABLE readings (
    round_id INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    log_e_value REAL NOT NULL,
    threshold REAL NOT NULL,
    current REAL,
    samples INTEGER NOT NULL,
    PRIMARY KEY (round_id, metric)
) WITHOUT ROWID;
"#,
    },
    Migration {
        version: 10,
        description: "production traffic: one row of measurements per received completion",
        sql: r#"
CREATE TABLE traffic_completions (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    route TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    timestamp_ms INTEGER,
    chars INTEGER,
    output_tokens INTEGER,
    finish_reason TEXT,
    truncated INTEGER NOT NULL,
    empty INTEGER,
    refusal INTEGER,
    partial_refusal INTEGER,
    refusal_rule TEXT,
    latency_ms REAL
);
CREATE INDEX traffic_completions_received ON traffic_completions (received_at_ms);
CREATE INDEX traffic_completions_stream
    ON traffic_completions (target, route, received_at_ms);
CREATE TABLE traffic_texts (
    completion_id INTEGER PRIMARY KEY
        REFERENCES traffic_completions (id) ON DELETE CASCADE,
    text TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 11,
        description: "production traffic: each route's baseline, kept across restarts",
        sql: r#"
CREATE TABLE traffic_baselines (
    target TEXT NOT NULL,
    route TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    fingerprint TEXT,
    completions TEXT NOT NULL,
    PRIMARY KEY (target, route)
) WITHOUT ROWID;
"#,
    },
    Migration {
        version: 12,
        description: "production traffic: the structured-output outcome of routes with a schema",
        sql: r#"
ALTER TABLE traffic_completions ADD COLUMN structured TEXT;
ALTER TABLE traffic_baselines ADD COLUMN schema TEXT;
"#,
    },
    Migration {
        version: 13,
        description: "the seed each sample's request was sent with, for pairing by seed",
        sql: "ALTER TABLE samples ADD COLUMN seed INTEGER;",
    },
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Refuses a database written by a newer modelwatch. Reads only.
pub(crate) fn check_not_newer(conn: &Connection) -> Result<()> {
    let found = user_version(conn)?;
    if found > LATEST {
        return Err(StoreError::SchemaTooNew {
            path: conn.path().unwrap_or(":memory:").to_string(),
            found,
            supported: LATEST,
        });
    }
    Ok(())
}

/// Applies every migration the database has not seen yet.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST)
}

/// Applies migrations up to and including `target` (tests build old schemas with it).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
        let fail = |error| StoreError::Migration {
            version: m.version,
            description: m.description,
            error,
        };
        // A database already at this version needs no write lock: a read-only command must
        // not wait for (or fail on) another process's write.
        if user_version(conn)? >= m.version {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let current = user_version(&tx)?;
        if current > LATEST {
            return Err(StoreError::SchemaTooNew {
                path: tx.path().unwrap_or(":memory:").to_string(),
                found: current,
                supported: LATEST,
            });
        }
        if current >= m.version {
            continue;
        }
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Fingerprint;
    use crate::sample::{ErrorKind, Measurements, Sample, SampleError, StructuredOutcome};
    use crate::store::{RoundStatus, SampleQuery, Store};

    #[test]
    fn an_up_to_date_store_opens_while_another_process_holds_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        drop(Store::open(&path).unwrap());
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let opened = Store::open(&path);
        assert!(opened.is_ok(), "{:?}", opened.err());
        // Not after waiting out the busy timeout either.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        writer.execute_batch("COMMIT").unwrap();
    }
    use std::collections::BTreeMap;

    #[test]
    fn versions_are_consecutive() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.description);
        }
    }

    fn sample(target: &str, i: u32, error: bool) -> Sample {
        Sample {
            seed: None,
            target: target.into(),
            suite: "core".into(),
            probe_id: format!("p{}", i % 3),
            probe_hash: format!("h{}", i % 3),
            index: i,
            started_at_ms: 1_000 + i as i64,
            latency_ms: 10.5 + i as f64,
            ttft_ms: if i.is_multiple_of(2) {
                Some(2.25)
            } else {
                None
            },
            attempts: 1 + i % 2,
            finish_reason: (!error).then_some(crate::sample::FinishReason::Stop),
            input_tokens: Some(12),
            response_model: Some("m".into()),
            system_fingerprint: None,
            measurements: (!error).then(|| Measurements {
                chars: 100 + i,
                words: 20,
                lines: 2,
                output_tokens: 30,
                tokens_estimated: i % 2 == 1,
                truncated: false,
                empty: false,
                refusal: i == 1,
                refusal_rule: (i == 1).then(|| "lexicon:en:cant_help".into()),
                partial_refusal: false,
                structured: Some(StructuredOutcome::SchemaViolation),
                task_success: Some(i.is_multiple_of(2)),
            }),
            error: error.then(|| SampleError {
                kind: ErrorKind::Timeout,
                status: None,
                message: "total timeout after 30s".into(),
                attempts: 3,
                latency_ms: 30_000.0,
            }),
            text: (!error).then(|| format!("answer {i}")),
        }
    }

    /// Writes one round of data the way a binary at `version` would have (plain SQL, since the
    /// current API assumes the latest schema).
    fn seed_at(conn: &Connection, version: i64, samples: &[Sample]) {
        assert!(version >= 1);
        let fp = Fingerprint {
            provider: "ollama".into(),
            model: "qwen".into(),
            digest: Some("sha256:abc".into()),
            details: BTreeMap::from([("quantization".into(), "Q4_K_M".into())]),
        };
        conn.execute(
            "INSERT INTO targets (id, name, created_at_ms, current_fingerprint) VALUES (1, 'chat', 5, ?1)",
            [fp.id()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO fingerprints (target_id, fingerprint, details, first_seen_ms, last_seen_ms)
             VALUES (1, ?1, ?2, 5, 6)",
            [fp.id(), serde_json::to_string(&fp).unwrap()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO rounds (id, target_id, fingerprint, started_at_ms, ended_at_ms, status, samples, errors)
             VALUES (1, 1, ?1, 1000, 2000, 'completed', ?2, ?3)",
            rusqlite::params![
                fp.id(),
                samples.len() as i64,
                samples.iter().filter(|s| s.is_error()).count() as i64
            ],
        )
        .unwrap();
        // The samples table gained `partial_refusal` in version 5 and `seed` in 13; before
        // that, rows are written by the current encoder into a temporary copy of the column,
        // dropped after.
        let added = [(5, "partial_refusal"), (13, "seed")];
        for (since, column) in added {
            if version < since {
                conn.execute_batch(&format!("ALTER TABLE samples ADD COLUMN {column} INTEGER;"))
                    .unwrap();
            }
        }
        for s in samples {
            crate::store::samples::insert_row(conn, 1, 1, s).unwrap();
        }
        for (since, column) in added {
            if version < since {
                conn.execute_batch(&format!("ALTER TABLE samples DROP COLUMN {column};"))
                    .unwrap();
            }
        }
    }

    #[test]
    fn every_earlier_version_migrates_to_latest_without_losing_data() {
        let samples: Vec<Sample> = (0..6).map(|i| sample("chat", i, i == 4)).collect();
        for from in 1..LATEST {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("old.db");
            {
                let mut conn = Connection::open(&path).unwrap();
                migrate_to(&mut conn, from).unwrap();
                assert_eq!(user_version(&conn).unwrap(), from);
                seed_at(&conn, from, &samples);
            }
            let mut store = Store::open(&path).unwrap();
            assert_eq!(store.schema_version().unwrap(), LATEST, "from v{from}");
            let back = store
                .samples(&SampleQuery {
                    target: Some("chat".into()),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(back, samples, "samples after migrating from v{from}");
            let fp = store.latest_fingerprint("chat").unwrap().unwrap();
            assert_eq!(fp.fingerprint.model, "qwen");
            assert_eq!((fp.first_seen_ms, fp.last_seen_ms), (5, 6));
            let rounds = store.rounds("chat", 10).unwrap();
            assert_eq!(rounds.len(), 1);
            assert_eq!(rounds[0].status, RoundStatus::Completed);
            assert_eq!((rounds[0].samples, rounds[0].errors), (6, 1));
            // The migrated database accepts new writes through the current API.
            let r = store.begin_round("chat", Some(&fp.id), 3000).unwrap();
            store.insert_samples(r, &samples[..1]).unwrap();
            store
                .add_event("chat", "note", 3001, &serde_json::json!({"ok": true}))
                .unwrap();
            assert_eq!(store.events(Some("chat"), 0).unwrap().len(), 1);
        }
    }

    #[test]
    fn newer_database_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("upgrade modelwatch"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "file changed");
        assert!(!dir.path().join("future.db-wal").exists());
    }

    #[test]
    fn reopening_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut store = Store::open(&path).unwrap();
        let r = store.begin_round("t", None, 1).unwrap();
        store.finish_round(r, 2, RoundStatus::Completed).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        assert_eq!(store.rounds("t", 5).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 1).unwrap();
        // Sabotage step 2: an object with the name it wants to create already exists.
        conn.execute_batch("CREATE TABLE events (x)").unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err}"
        );
        assert_eq!(user_version(&conn).unwrap(), 1);
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'samples_round'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "partial migration was committed");
    }

    #[test]
    fn stored_task_success_alerts_and_silences_take_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate_to(&mut conn, 5).unwrap();
            conn.execute_batch(
                r#"
INSERT INTO alert_state VALUES ('chat', 'task_success_rate', 'firing', 1,
    '{"key":{"target":"chat","metric":"task_success_rate"}}');
INSERT INTO alert_state VALUES ('both', 'task_success_rate', 'resolved', 1, '{"old":true}');
INSERT INTO alert_state VALUES ('both', 'task_failure_rate', 'firing', 2, '{"new":true}');
INSERT INTO alert_state VALUES ('chat', 'refusal_rate', 'ok', 1, '{}');
INSERT INTO silences (target, metric, created_at_ms, until_ms, reason)
    VALUES ('chat', 'task_success_rate', 1, 9, 'x');
"#,
            )
            .unwrap();
        }
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<(String, String, String)> = conn
            .prepare("SELECT target, metric, state FROM alert_state ORDER BY target, metric")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let keys: Vec<(&str, &str)> = rows.iter().map(|r| (&*r.0, &*r.1)).collect();
        assert_eq!(
            keys,
            [
                ("both", "task_failure_rate"),
                ("chat", "refusal_rate"),
                ("chat", "task_failure_rate")
            ]
        );
        assert_eq!(rows[0].2, r#"{"new":true}"#);
        assert!(
            rows[2].2.contains(r#""metric":"task_failure_rate""#),
            "{}",
            rows[2].2
        );
        let silenced: String = conn
            .query_row("SELECT metric FROM silences", [], |r| r.get(0))
            .unwrap();
        assert_eq!(silenced, "task_failure_rate");
    }
}
