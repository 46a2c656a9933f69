//! The alert outbox: one row per (sink, notification), written before the notification is sent.
//!
//! A row is `pending` until its sink accepts it (`delivered`) or the retries run out
//! (`expired`). The `(sink, idempotency_key)` pair is unique, so recording the same notification
//! twice is a no-op, and pending rows are handed to the sinks again after a restart.

use super::{Result, Store, StoreError};
use crate::alert::Notification;
use rusqlite::params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Delivered,
    /// Given up after the last retry.
    Expired,
    /// Refused by the receiver (a 4xx other than 408 and 429); never retried.
    Rejected,
    /// Its sink was removed from the configuration; never delivered.
    Orphaned,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Expired => "expired",
            OutboxStatus::Rejected => "rejected",
            OutboxStatus::Orphaned => "orphaned",
        }
    }
}

/// One notification awaiting delivery to one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub sink: String,
    pub idempotency_key: String,
    pub notification: Notification,
    pub created_at_ms: i64,
    pub attempts: u32,
}

impl Store {
    /// Records a notification for a sink; `None` when the same (sink, key) is already recorded.
    pub fn enqueue_outbox(
        &mut self,
        sink: &str,
        idempotency_key: &str,
        notification: &Notification,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let json = serde_json::to_string(notification)
            .map_err(|e| StoreError::Invalid(format!("notification is not serialisable: {e}")))?;
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox (sink, idempotency_key, notification, created_at_ms, status)
                 VALUES (?1, ?2, ?3, ?4, 'pending')",
            )?
            .execute(params![sink, idempotency_key, json, now_ms])?;
        Ok((n > 0).then(|| self.conn.last_insert_rowid()))
    }

    /// The pending rows of one sink, oldest first.
    pub fn pending_outbox(&self, sink: &str) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, sink, idempotency_key, notification, created_at_ms, attempts FROM outbox
             WHERE status = 'pending' AND sink = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([sink], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sink, key, text, created, attempts) = row?;
            let notification = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                table: "outbox",
                row: id,
                detail: format!("notification is not valid: {e}"),
            })?;
            out.push(OutboxRow {
                id,
                sink,
                idempotency_key: key,
                notification,
                created_at_ms: created,
                attempts: attempts.clamp(0, u32::MAX as i64) as u32,
            });
        }
        Ok(out)
    }

    /// Records an attempt: its count, its error, and the row's new status.
    pub fn update_outbox(
        &mut self,
        id: i64,
        status: OutboxStatus,
        attempts: u32,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        let done = (status != OutboxStatus::Pending).then_some(now_ms);
        self.conn
            .prepare_cached(
                "UPDATE outbox SET status = ?2, attempts = ?3,
                     last_error = COALESCE(?4, last_error), done_at_ms = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), attempts as i64, error, done])?;
        Ok(())
    }

    /// Records one envelope of the daemon's own (the Sentry SDK's) under
    /// [`crate::alert::sentry_sdk::OUTBOX_SINK`]; `None` when the same key is already recorded.
    pub fn enqueue_envelope(&mut self, key: &str, body: &[u8], now_ms: i64) -> Result<Option<i64>> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox (sink, idempotency_key, notification, created_at_ms, status)
                 VALUES (?1, ?2, ?3, ?4, 'pending')",
            )?
            .execute(params![crate::alert::sentry_sdk::OUTBOX_SINK, key, body, now_ms])?;
        Ok((n > 0).then(|| self.conn.last_insert_rowid()))
    }

    /// The pending envelopes of the daemon's own, oldest first: (id, body, attempts).
    pub fn pending_envelopes(&self) -> Result<Vec<(i64, Vec<u8>, u32)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, CAST(notification AS BLOB), attempts FROM outbox
             WHERE status = 'pending' AND sink = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([crate::alert::sentry_sdk::OUTBOX_SINK], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?.clamp(0, u32::MAX as i64) as u32,
            ))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Marks the pending rows of every sink not in `sinks` as `orphaned` (the sink was removed
    /// from the configuration), so they are neither retried nor counted as pending; returns
    /// how many rows per sink.
    pub fn orphan_outbox(&mut self, sinks: &[&str], now_ms: i64) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sink, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY sink ORDER BY sink",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        drop(stmt);
        let mut out = Vec::new();
        for (sink, n) in rows {
            // The SDK's envelopes have no alert sink: they are delivered by its own task.
            if sinks.contains(&sink.as_str()) || sink == crate::alert::sentry_sdk::OUTBOX_SINK {
                continue;
            }
            self.conn
                .prepare_cached(
                    "UPDATE outbox SET status = 'orphaned', done_at_ms = ?2,
                         last_error = 'the sink was removed from the configuration'
                     WHERE status = 'pending' AND sink = ?1",
                )?
                .execute(params![sink, now_ms])?;
            out.push((sink, n.max(0) as u64));
        }
        Ok(out)
    }

    /// Counts rows by (sink, status).
    pub fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sink, status, COUNT(*) FROM outbox GROUP BY sink, status ORDER BY sink, status",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Deletes finished rows older than `before_ms` (pending rows are kept).
    pub fn prune_outbox(&mut self, before_ms: i64) -> Result<u64> {
        let n = self.conn.execute(
            "DELETE FROM outbox WHERE status != 'pending' AND done_at_ms < ?1",
            [before_ms],
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, NotificationKind, Severity};

    fn n(at: i64) -> Notification {
        Notification {
            kind: NotificationKind::Firing,
            key: AlertKey::new("t", "refusal_rate"),
            severity: Severity::Warning,
            incident: "t/refusal_rate#1".into(),
            at_ms: at,
            evidence: None,
            muted: false,
        }
    }

    #[test]
    fn enqueue_is_idempotent_and_pending_rows_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut s = Store::open(&path).unwrap();
        let a = s.enqueue_outbox("webhook", "k1", &n(1), 10).unwrap();
        assert!(a.is_some());
        assert_eq!(s.enqueue_outbox("webhook", "k1", &n(1), 11).unwrap(), None);
        let b = s.enqueue_outbox("sentry", "k1", &n(1), 12).unwrap();
        assert!(b.is_some());
        s.update_outbox(b.unwrap(), OutboxStatus::Delivered, 1, None, 20)
            .unwrap();
        s.update_outbox(a.unwrap(), OutboxStatus::Pending, 2, Some("503"), 20)
            .unwrap();
        drop(s);
        let mut s = Store::open(&path).unwrap();
        let p = s.pending_outbox("webhook").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].attempts, 2);
        assert_eq!(p[0].notification, n(1));
        assert!(s.pending_outbox("sentry").unwrap().is_empty());
        assert_eq!(
            s.outbox_counts().unwrap(),
            vec![
                ("sentry".into(), "delivered".into(), 1),
                ("webhook".into(), "pending".into(), 1)
            ]
        );
        assert_eq!(s.prune_outbox(100).unwrap(), 1);
        assert_eq!(s.pending_outbox("webhook").unwrap().len(), 1);
    }

    #[test]
    fn envelopes_are_kept_apart_from_notifications_and_never_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("m.db")).unwrap();
        let body = b"{\"event_id\":\"e1\"}\n{\"type\":\"event\"}\n{}\n".to_vec();
        let id = s.enqueue_envelope("e1", &body, 10).unwrap().unwrap();
        assert_eq!(s.enqueue_envelope("e1", &body, 11).unwrap(), None);
        s.enqueue_outbox("sentry", "k1", &n(1), 10).unwrap();
        assert_eq!(s.pending_envelopes().unwrap(), vec![(id, body, 0)]);
        assert_eq!(s.pending_outbox("sentry").unwrap().len(), 1);
        assert!(s.orphan_outbox(&["sentry"], 20).unwrap().is_empty());
        s.update_outbox(id, OutboxStatus::Pending, 2, Some("503"), 30)
            .unwrap();
        assert_eq!(s.pending_envelopes().unwrap()[0].2, 2);
        s.update_outbox(id, OutboxStatus::Delivered, 3, None, 40)
            .unwrap();
        assert!(s.pending_envelopes().unwrap().is_empty());
    }

    #[test]
    fn pending_rows_of_removed_sinks_are_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("m.db")).unwrap();
        s.enqueue_outbox("webhook", "k1", &n(1), 10).unwrap();
        s.enqueue_outbox("webhook", "k2", &n(2), 10).unwrap();
        let d = s
            .enqueue_outbox("sentry", "k1", &n(1), 10)
            .unwrap()
            .unwrap();
        s.enqueue_outbox("sentry", "k2", &n(2), 10).unwrap();
        s.update_outbox(d, OutboxStatus::Delivered, 1, None, 11)
            .unwrap();
        assert_eq!(
            s.orphan_outbox(&["log", "sentry"], 20).unwrap(),
            vec![("webhook".to_string(), 2)]
        );
        assert!(s.pending_outbox("webhook").unwrap().is_empty());
        assert_eq!(s.pending_outbox("sentry").unwrap().len(), 1);
        assert!(
            s.outbox_counts()
                .unwrap()
                .contains(&("webhook".into(), "orphaned".into(), 2))
        );
        assert!(s.orphan_outbox(&["log", "sentry"], 30).unwrap().is_empty());
    }
}
