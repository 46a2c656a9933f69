//! Events: things that happened to a target (a model swap, later alert transitions), each a
//! kind, a time and a JSON payload.

use super::{Result, Store, StoreError, existing_target_id, target_id};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// Row id of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub i64);

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub target: String,
    /// e.g. `"swap"`.
    pub kind: String,
    pub at_ms: i64,
    pub payload: serde_json::Value,
}

impl Store {
    /// Stores an event for `target` (created on first use).
    pub fn add_event(
        &mut self,
        target: &str,
        kind: &str,
        at_ms: i64,
        payload: &serde_json::Value,
    ) -> Result<EventId> {
        if kind.is_empty() {
            return Err(StoreError::Invalid("event kind is empty".into()));
        }
        let tx = self.conn.savepoint()?;
        let tid = target_id(&tx, target, at_ms)?;
        tx.execute(
            "INSERT INTO events (target_id, kind, at_ms, payload) VALUES (?1, ?2, ?3, ?4)",
            params![tid, kind, at_ms, payload.to_string()],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(EventId(id))
    }

    /// Events at or after `since_ms`, oldest first; of one target, or of all when `None`.
    pub fn events(&self, target: Option<&str>, since_ms: i64) -> Result<Vec<Event>> {
        let tid = match target {
            Some(t) => match existing_target_id(&self.conn, t)? {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id, t.name, e.kind, e.at_ms, e.payload
             FROM events e JOIN targets t ON t.id = e.target_id
             WHERE (?1 IS NULL OR e.target_id = ?1) AND e.at_ms >= ?2
             ORDER BY e.at_ms, e.id",
        )?;
        let rows = stmt.query_map(params![tid, since_ms], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, target, kind, at_ms, payload) = row?;
            let payload = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                table: "events",
                row: id,
                detail: format!("payload is not JSON: {e}"),
            })?;
            out.push(Event {
                id: EventId(id),
                target,
                kind,
                at_ms,
                payload,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_filter_by_target_and_time() {
        let mut store = Store::open_in_memory().unwrap();
        let first = store.add_event("t", "swap", 10, &json!({"a": 1})).unwrap();
        store.add_event("u", "swap", 20, &json!(null)).unwrap();
        let third = store
            .add_event("t", "note", 30, &json!({"list": [1, 2]}))
            .unwrap();
        let t = store.events(Some("t"), 0).unwrap();
        assert_eq!(
            t.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![first, third]
        );
        assert_eq!(t[1].payload, json!({"list": [1, 2]}));
        assert_eq!(t[1].kind, "note");
        let late = store.events(Some("t"), 11).unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].at_ms, 30);
        assert_eq!(store.events(None, 0).unwrap().len(), 3);
        assert_eq!(store.events(None, 15).unwrap()[0].target, "u");
        assert!(store.events(Some("nobody"), 0).unwrap().is_empty());
        assert!(matches!(
            store.add_event("t", "", 1, &json!({})),
            Err(StoreError::Invalid(_))
        ));
    }
}
