//! Whether the database can be written, and getting back to writable on its own.
//!
//! Two conditions stop writes:
//! - **read-only**: SQLite opens a file it may not write (permissions, a read-only filesystem)
//!   read-only without complaint. Such a store reads normally; [`Store::begin`] reopens the file
//!   (at most once per back-off, 5 s doubling to 1 min) and carries on as soon as a fresh
//!   connection can write, without a restart.
//! - **damaged**: `PRAGMA quick_check` found broken pages, at open (the open fails) or in the
//!   periodic check ([`Store::poll_check`], on a connection of its own so that a large file does
//!   not hold up the caller). From then on every write is refused (`PRAGMA query_only`), so
//!   nothing is written into a damaged file; recovery is the operator's (docs/storage.md).

use super::{Result, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Problems `quick_check` reports at most (it stops there; one is enough to refuse writes).
pub const QUICK_CHECK_LIMIT: u32 = 10;
/// First wait before reopening a read-only database; doubles after each failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The write health of a [`Store`].
#[derive(Debug)]
pub(super) struct Health {
    /// The connection cannot write (opened read-only, or a write failed with SQLITE_READONLY).
    pub read_only: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// What `quick_check` found; writes are refused while set.
    pub damaged: Option<String>,
    /// When the last check started (or the store was opened, which checks too).
    checked_at: Instant,
    /// A check running on its own connection.
    check: Option<mpsc::Receiver<std::result::Result<Vec<String>, String>>>,
}

impl Health {
    pub fn new(read_only: bool) -> Health {
        Health {
            read_only,
            // Just opened read-only: the next attempt after the first back-off.
            retry_at: read_only.then(|| Instant::now() + FIRST_BACKOFF),
            backoff: FIRST_BACKOFF,
            damaged: None,
            checked_at: Instant::now(),
            check: None,
        }
    }
}

/// `PRAGMA quick_check(N)` on `conn`: empty when the file is sound, else what is wrong.
/// A page too broken to be read at all is reported as an error, which is a finding too.
pub(super) fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let run = || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(&format!("PRAGMA quick_check({QUICK_CHECK_LIMIT})"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    match run() {
        Ok(found) if found.len() == 1 && found[0] == "ok" => Ok(Vec::new()),
        Ok(found) => Ok(found),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            Ok(vec![e.to_string()])
        }
        Err(e) => Err(e),
    }
}

/// The error for what `quick_check` found in `path`.
pub(super) fn damaged(path: &Path, found: &[String]) -> StoreError {
    StoreError::Damaged {
        path: path.to_path_buf(),
        findings: found.join("; "),
    }
}

/// Gives the `-wal` and `-shm` files of a writable database the database's own mode when they
/// cannot be written. SQLite creates them with the mode of the database file, so after a
/// read-only spell they stay read-only when only the database is made writable again, and every
/// later connection would be read-only. Best effort: what cannot be changed is left as it is.
pub(super) fn fix_sidecars(path: &Path) {
    let writable = std::fs::OpenOptions::new().write(true).open(path).is_ok();
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if !writable {
        return;
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let side = PathBuf::from(name);
        // The owner's write bit, not an attempt to open: the same answer for every user.
        let stuck = std::fs::metadata(&side).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o200 == 0
        });
        if stuck && std::fs::set_permissions(&side, meta.permissions()).is_ok() {
            tracing::info!(file = %side.display(), "gave the database's own mode to a read-only companion file");
        }
    }
}

impl Store {
    /// Whether writes can go ahead now: `Err` naming the reason when the file is damaged or
    /// still read-only (a read-only store is reopened here when its back-off has passed).
    pub fn writable(&mut self) -> Result<()> {
        if let Some(found) = &self.health.damaged {
            return Err(damaged(self.file(), std::slice::from_ref(found)));
        }
        if self.health.read_only {
            self.reopen_if_due()?;
        }
        Ok(())
    }

    /// The path of the database file (`:memory:` for a private one).
    pub fn file(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(":memory:"))
    }

    /// Notes a failed write: a read-only answer makes the next [`Store::begin`] reopen the file.
    pub(super) fn note_error(&mut self, e: &rusqlite::Error) {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
            && self.health.damaged.is_none()
            && self.path.is_some()
        {
            self.health.read_only = true;
        }
    }

    fn reopen_if_due(&mut self) -> Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let read_only = || StoreError::ReadOnly { path: path.clone() };
        if self.health.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(read_only());
        }
        let outcome = match Store::open(&path) {
            Ok(fresh) if !fresh.health.read_only => {
                let Store { conn, .. } = fresh;
                self.conn = conn;
                self.health = Health::new(false);
                tracing::info!(path = %path.display(), "the database is writable again");
                return Ok(());
            }
            Ok(_) => read_only(),
            Err(e @ StoreError::Damaged { .. }) => {
                self.refuse_writes(&e);
                return Err(e);
            }
            Err(e) => e,
        };
        let wait = self.health.backoff;
        self.health.retry_at = Some(Instant::now() + wait);
        self.health.backoff = (wait * 2).min(MAX_BACKOFF);
        tracing::warn!(path = %path.display(), retry_in_s = wait.as_secs(), error = %outcome, "the database is still not writable");
        Err(outcome)
    }

    /// From now on every write fails: the file is damaged.
    fn refuse_writes(&mut self, e: &StoreError) {
        if let StoreError::Damaged { findings, .. } = e {
            self.health.damaged = Some(findings.clone());
        }
        let _ = self.conn.pragma_update(None, "query_only", true);
    }

    /// Once `every` has passed since the last check, starts `quick_check` on a read-only
    /// connection of its own (in a thread); returns its outcome once finished (`Err(Damaged)`
    /// refuses every later write). `None` while nothing new is known.
    pub fn poll_check(&mut self, every: Duration) -> Option<Result<()>> {
        let path = self.path.clone()?;
        if let Some(rx) = &self.health.check {
            let found = match rx.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => Err("the check stopped".to_string()),
                Ok(found) => found,
            };
            self.health.check = None;
            return Some(match found {
                Ok(found) if found.is_empty() => Ok(()),
                Ok(found) => {
                    let e = damaged(&path, &found);
                    self.refuse_writes(&e);
                    Err(e)
                }
                Err(error) => Err(StoreError::Invalid(format!(
                    "the integrity check of {} could not run: {error}",
                    path.display()
                ))),
            });
        }
        if self.health.checked_at.elapsed() < every {
            return None;
        }
        self.health.checked_at = Instant::now();
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("store-check".into())
            .spawn(move || {
                let _ = tx.send(check_file(&path));
            });
        if spawned.is_ok() {
            self.health.check = Some(rx);
        }
        None
    }
}

/// `quick_check` of the file at `path` through a read-only connection.
fn check_file(path: &Path) -> std::result::Result<Vec<String>, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    quick_check(&conn).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of a few dozen pages, closed (its WAL checkpointed into the file).
    fn filled(path: &Path) {
        let mut store = Store::open(path).unwrap();
        for i in 0..200 {
            let payload = serde_json::json!({ "i": i, "pad": "x".repeat(1000) });
            store.add_event("t", "note", i, &payload).unwrap();
        }
    }

    /// Overwrites the page in the middle of the file with garbage.
    fn corrupt_a_middle_page(path: &Path) {
        use std::io::{Seek, SeekFrom, Write};
        let len = std::fs::metadata(path).unwrap().len();
        let pages = len / 4096;
        assert!(pages > 10, "{pages} pages");
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(pages / 2 * 4096)).unwrap();
        f.write_all(&[0xA5; 4096]).unwrap();
    }

    #[test]
    fn a_file_with_a_damaged_page_is_refused_at_open_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        filled(&path);
        corrupt_a_middle_page(&path);
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("m.db is damaged"), "{text}");
        assert!(text.contains("quick_check"), "{text}");
        assert!(text.contains("Recovering a damaged database"), "{text}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was written"
        );
    }

    #[test]
    fn the_periodic_check_finds_damage_under_an_open_store_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        filled(&path);
        let mut store = Store::open(&path).unwrap();
        // Not due yet: nothing starts.
        assert!(store.poll_check(Duration::from_secs(3600)).is_none());
        assert!(store.health.check.is_none());
        // A sound file checks clean.
        assert!(store.poll_check(Duration::ZERO).is_none());
        let outcome = wait_for_check(&mut store);
        assert!(outcome.is_ok(), "{outcome:?}");
        store.begin().unwrap();
        store
            .add_event("t", "note", 1, &serde_json::json!({}))
            .unwrap();
        store.commit().unwrap();
        store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        corrupt_a_middle_page(&path);
        assert!(store.poll_check(Duration::ZERO).is_none());
        let err = wait_for_check(&mut store).unwrap_err();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        let len = std::fs::metadata(&path).unwrap().len();
        let wal = dir.path().join("m.db-wal");
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        // Every write is refused from now on: a transaction, and a write outside one.
        let begin = store.begin().unwrap_err();
        assert!(begin.to_string().contains("is damaged"), "{begin}");
        assert!(
            store
                .add_event("t", "note", 2, &serde_json::json!({}))
                .is_err()
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert_eq!(
            std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
            wal_len
        );
    }

    fn wait_for_check(store: &mut Store) -> Result<()> {
        for _ in 0..500 {
            if let Some(outcome) = store.poll_check(Duration::from_secs(3600)) {
                return outcome;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the check did not finish in 5 s");
    }

    #[test]
    fn read_only_companion_files_of_a_writable_database_get_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let shm = dir.path().join("m.db-shm");
        std::fs::write(&shm, b"").unwrap();
        std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o444)).unwrap();
        fix_sidecars(&path);
        let mode = std::fs::metadata(&shm).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // A database that cannot be written leaves them alone.
        std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::remove_file(&path).unwrap();
        fix_sidecars(&path);
        let mode = std::fs::metadata(&shm).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
    }
}
