//! The SQLite store: targets, fingerprints, rounds, samples (raw text kept apart so its retention
//! can be shorter) and events.
//!
//! One [`Store`] owns one connection. Its API is synchronous; async callers move it into
//! `spawn_blocking` or a dedicated thread (`Store` is `Send`). The schema is created and upgraded
//! by forward-only migrations (see [`migrate`]); a database written by a newer modelwatch is
//! refused without being touched. `docs/storage.md` describes every table.
//!
//! Submodules, one job each: [`migrate`] (schema versions), `fingerprints` (swap detection),
//! `rounds`, `samples` (batched ingest, queries, retention), `events`, `alerts` (alert state and
//! silences), `outbox` (notifications awaiting delivery), `readings` (the monitor's evidence per round).

mod alerts;
mod events;
mod fingerprints;
mod health;
mod history;
mod licenses;
mod migrate;
mod monitor;
mod outbox;
mod readings;
mod rounds;
mod samples;
mod traffic;

pub use events::{Event, EventId};
pub use fingerprints::{ConfigChange, FingerprintChange, FingerprintRecord};
pub use health::QUICK_CHECK_LIMIT;
pub use history::{HistoryQuery, RoundSample};
pub use licenses::{LicenseChange, StoredLicense};
pub use monitor::MonitorRow;
pub use outbox::{OutboxRow, OutboxStatus};
pub use readings::{Reading, RoundReading};
pub use rounds::{RoundId, RoundInfo, RoundStatus};
pub use samples::{PruneStats, SampleQuery};
pub use traffic::{TrafficBaseline, TrafficPruned, TrafficRow};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a write waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {path}: the directory {dir} does not exist; create it or set \
         [storage] path to a writable location"
    )]
    MissingDirectory { path: PathBuf, dir: PathBuf },
    #[error(
        "cannot open the database {path}: {dir} is a file, not a directory; set [storage] path \
         to a file in a writable directory"
    )]
    NotADirectory { path: PathBuf, dir: PathBuf },
    #[error(
        "cannot write the database {path}: its directory {dir} is not writable by this user \
         (SQLite keeps {path}-wal and -shm beside it); give the user write access to {dir}, or \
         set [storage] path to a file in a writable directory"
    )]
    ReadOnlyDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot open the database {path}: {error}; check the path and its permissions")]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this modelwatch understands \
         (up to {supported}); it was left untouched: upgrade modelwatch or point [storage] path \
         elsewhere"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("migrating the database to schema version {version} ({description}) failed: {error}")]
    Migration {
        version: i64,
        description: &'static str,
        error: rusqlite::Error,
    },
    #[error("round {0} does not exist in the store")]
    UnknownRound(i64),
    #[error(
        "sample for target {sample_target:?} cannot be stored in round {round}, which belongs to \
         target {round_target:?}"
    )]
    TargetMismatch {
        round: i64,
        round_target: String,
        sample_target: String,
    },
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("stored data is corrupt ({table} row {row}): {detail}")]
    Corrupt {
        table: &'static str,
        row: i64,
        detail: String,
    },
    #[error(
        "the database {path} is read-only (its permissions, those of its -wal/-shm files or \
         of its directory, or a read-only filesystem): nothing is stored until the daemon's \
         user can write it again, which modelwatch notices by itself"
    )]
    ReadOnly { path: PathBuf },
    #[error(
        "the database {path} is damaged (PRAGMA quick_check: {findings}); modelwatch will not \
         write into it: stop modelwatch, keep a copy of the file and recover it as \
         docs/storage.md (\"Recovering a damaged database\") describes"
    )]
    Damaged { path: PathBuf, findings: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The modelwatch database. See the module documentation.
pub struct Store {
    conn: Connection,
    /// The file (None in memory): reopened when it becomes writable again, checked periodically.
    path: Option<PathBuf>,
    health: health::Health,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .finish()
    }
}

/// Whether a file can be created in `dir` (tried, on the error path only).
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".modelwatch-write-test-{}", std::process::id()));
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_ok();
    if ok {
        let _ = std::fs::remove_file(&probe);
    }
    ok
}

impl Store {
    /// Opens (creating the file if needed) and migrates the database at `path`.
    ///
    /// The parent directory must exist: a typo in the configured path should be an error, not
    /// a database silently created somewhere unexpected.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let dir = match path.parent() {
            Some(d) if d.as_os_str().is_empty() => Path::new("."),
            Some(d) => d,
            None => Path::new("."),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            });
        }
        if !dir.is_dir() {
            return Err(StoreError::MissingDirectory {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            });
        }
        health::fix_sidecars(path);
        // Created owner-only (SQLite gives its -wal and -shm files the same mode); an
        // existing file keeps its mode. A failure here is reported by the open below.
        let _ = crate::files::create_private_file(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = |error: rusqlite::Error| {
            // A read-only directory shows as a read-only database: say which it is.
            let readonly = matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
            );
            if readonly && !writable(dir) {
                return StoreError::ReadOnlyDirectory {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                };
            }
            StoreError::Open {
                path: path.to_path_buf(),
                error,
            }
        };
        let conn = Connection::open_with_flags(path, flags).map_err(opened)?;
        Self::setup(conn, Some(path)).map_err(|e| match e {
            StoreError::Sqlite(error) => opened(error),
            other => other,
        })
    }

    /// A private database that lives as long as the `Store` (tests, dry runs).
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    /// Waits at most `wait` for another writer's lock (instead of the default 5 s): for a
    /// connection whose writes can be tried again later, so that a busy database holds its
    /// caller only briefly.
    pub fn set_busy_timeout(&mut self, wait: Duration) -> Result<()> {
        self.conn.busy_timeout(wait)?;
        Ok(())
    }

    /// Connection settings, then migrations. The version check and `quick_check` run before
    /// anything that writes (WAL mode changes the file header), so a too-new or damaged
    /// database is never touched. A file that can only be read (SQLite then opens it
    /// read-only) is neither switched to WAL nor migrated: it is reopened once writable.
    fn setup(conn: Connection, path: Option<&Path>) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate::check_not_newer(&conn)?;
        if let Some(path) = path {
            let found = health::quick_check(&conn)?;
            if !found.is_empty() {
                return Err(health::damaged(path, &found));
            }
        }
        let read_only = path.is_some() && conn.is_readonly(rusqlite::MAIN_DB)?;
        let mut store = Store {
            conn,
            path: path.map(Path::to_path_buf),
            health: health::Health::new(read_only),
        };
        if read_only {
            tracing::warn!(path = %store.file().display(), "the database can only be read: nothing is stored until it is writable again");
            return Ok(store);
        }
        if path.is_some() {
            let conn = &store.conn;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    mode,
                    "SQLite refused WAL mode; continuing with this journal"
                );
            }
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        migrate::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// Opens a write transaction spanning several calls, so that what belongs together (a
    /// round, its fingerprint, alert states, events and outbox rows) survives a crash
    /// entirely or not at all. Methods keep their own atomicity inside it (savepoints).
    /// Waits for the lock up to the busy timeout (5 s). Refused while the file is damaged; a
    /// read-only file is reopened first when due (see [`Store::writable`]).
    pub fn begin(&mut self) -> Result<()> {
        self.writable()?;
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            self.note_error(&e);
            return Err(e.into());
        }
        Ok(())
    }

    /// Commits the transaction opened by [`Store::begin`]. When SQLite already rolled it back
    /// (a full disk or an I/O error aborts the whole transaction), says so.
    pub fn commit(&mut self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Err(StoreError::Invalid(
                "the transaction was rolled back after an earlier write error".into(),
            ));
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.note_error(&e);
            return Err(e.into());
        }
        Ok(())
    }

    /// The schema version of the open database (always [`migrate::LATEST`] after `open`).
    pub fn schema_version(&self) -> Result<i64> {
        migrate::user_version(&self.conn)
    }
}

/// The id of `target`, creating its row on first use.
fn target_id(conn: &Connection, target: &str, at_ms: i64) -> Result<i64> {
    if target.is_empty() {
        return Err(StoreError::Invalid("target name is empty".into()));
    }
    conn.prepare_cached(
        "INSERT INTO targets (name, created_at_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
    )?
    .execute(rusqlite::params![target, at_ms])?;
    Ok(conn
        .prepare_cached("SELECT id FROM targets WHERE name = ?1")?
        .query_row([target], |r| r.get(0))?)
}

/// The id of `target` if it has ever been stored.
fn existing_target_id(conn: &Connection, target: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM targets WHERE name = ?1")?
        .query_row([target], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("modelwatch.db");
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::MissingDirectory { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn begin_and_commit_span_several_calls_and_savepoints_nest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut store = Store::open(&path).unwrap();
        store.begin().unwrap();
        // add_event has its own savepoint inside the outer transaction.
        store
            .add_event("t", "note", 1, &serde_json::json!({"n": 1}))
            .unwrap();
        // Not visible to another connection before the commit.
        let other = Connection::open(&path).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&other), 0);
        store.commit().unwrap();
        assert_eq!(count(&other), 1);
        // Commit without an open transaction says so.
        let err = store.commit().unwrap_err();
        assert!(err.to_string().contains("rolled back"), "{err}");
    }

    #[test]
    fn a_file_as_the_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let err = Store::open(dir.path().join("f").join("m.db")).unwrap_err();
        assert!(matches!(err, StoreError::NotADirectory { .. }), "{err}");
        assert!(
            err.to_string().contains("is a file, not a directory"),
            "{err}"
        );
    }

    #[test]
    fn file_database_uses_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("m.db")).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(store.schema_version().unwrap(), migrate::LATEST);
    }

    #[test]
    fn not_a_database_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text long enough to matter",
        )
        .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(err.to_string().contains("junk.db"), "{err}");
    }

    #[test]
    fn empty_target_name_is_rejected() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.begin_round("", None, 0),
            Err(StoreError::Invalid(_))
        ));
    }
}
