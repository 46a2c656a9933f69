//! Fingerprints seen per target, and swap detection: a fingerprint different from the target's
//! current one is a swap, stored as a `swap` event in the same transaction. Under the same
//! fingerprint, a different configuration digest (the server's published generation defaults)
//! is a `config_changed` event: the same model served with other sampling settings.

use super::{Result, Store, StoreError, existing_target_id, target_id};
use crate::provider::Fingerprint;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// What [`Store::record_fingerprint`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum FingerprintChange {
    /// Same fingerprint as last time.
    None,
    /// The first fingerprint ever seen for the target.
    First,
    /// The target now serves something else; `previous` is the fingerprint id it served before.
    Swap { previous: String },
}

/// The same model served with other published generation defaults ([`Store::record_config`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// The model fingerprint, unchanged.
    pub fingerprint: String,
    /// Configuration digests before and after.
    pub previous: String,
    pub current: String,
    /// The configuration entries whose values differ (added, removed or changed), sorted.
    pub changed: Vec<String>,
}

/// A stored fingerprint with when it was first and last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintRecord {
    /// [`Fingerprint::id`] at the time it was recorded.
    pub id: String,
    pub fingerprint: Fingerprint,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

impl Store {
    /// Records that `target` serves `fingerprint` at `at_ms` and says whether that is a change.
    ///
    /// A swap (including a swap back to a model seen before) also stores an event of kind
    /// `"swap"` with payload `{"previous": id, "current": id, "previous_fingerprint": {..},
    /// "current_fingerprint": {..}}`, so a swap is never detected without being recorded.
    pub fn record_fingerprint(
        &mut self,
        target: &str,
        fingerprint: &Fingerprint,
        at_ms: i64,
    ) -> Result<FingerprintChange> {
        let id = fingerprint.id();
        let details = serde_json::to_string(fingerprint)
            .map_err(|e| StoreError::Invalid(format!("fingerprint cannot be encoded: {e}")))?;
        let tx = self.conn.savepoint()?;
        let tid = target_id(&tx, target, at_ms)?;
        let current: Option<String> = tx.query_row(
            "SELECT current_fingerprint FROM targets WHERE id = ?1",
            [tid],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO fingerprints (target_id, fingerprint, details, first_seen_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (target_id, fingerprint) DO UPDATE SET
                 details = excluded.details,
                 first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                 last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            params![tid, id, details, at_ms],
        )?;
        super::licenses::store_license_columns(&tx, tid, &id, fingerprint)?;
        let change = match current {
            None => FingerprintChange::First,
            Some(prev) if prev == id => FingerprintChange::None,
            Some(prev) => {
                let prev_details: Option<String> = tx
                    .query_row(
                        "SELECT details FROM fingerprints WHERE target_id = ?1 AND fingerprint = ?2",
                        params![tid, prev],
                        |r| r.get(0),
                    )
                    .optional()?;
                let prev_fp = prev_details
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                    .unwrap_or(serde_json::Value::Null);
                let payload = serde_json::json!({
                    "previous": prev,
                    "current": id,
                    "previous_fingerprint": prev_fp,
                    "current_fingerprint": fingerprint,
                });
                tx.execute(
                    "INSERT INTO events (target_id, kind, at_ms, payload) VALUES (?1, 'swap', ?2, ?3)",
                    params![tid, at_ms, payload.to_string()],
                )?;
                FingerprintChange::Swap { previous: prev }
            }
        };
        if change != FingerprintChange::None {
            tx.execute(
                "UPDATE targets SET current_fingerprint = ?2 WHERE id = ?1",
                params![tid, id],
            )?;
        }
        tx.commit()?;
        Ok(change)
    }

    /// Checks whether `target`, still serving the model of its current fingerprint, now
    /// publishes other generation defaults than when that fingerprint was last stored; if so,
    /// stores a `config_changed` event (payload: `fingerprint`, `previous` and `current` config
    /// digests, the `changed` entries with their previous and current values) and the new
    /// configuration, in one transaction, and returns the change. Call it before
    /// [`Store::record_fingerprint`] for the same reading.
    ///
    /// A swap is not a configuration change (the swap event carries both fingerprints whole),
    /// and neither is a server starting or ceasing to publish its defaults: both digests must
    /// be known.
    pub fn record_config(
        &mut self,
        target: &str,
        fingerprint: &Fingerprint,
        at_ms: i64,
    ) -> Result<Option<ConfigChange>> {
        let Some(current) = fingerprint.config_digest() else {
            return Ok(None);
        };
        let Some(stored) = self.latest_fingerprint(target)? else {
            return Ok(None);
        };
        let id = fingerprint.id();
        if stored.id != id {
            return Ok(None);
        }
        let Some(previous) = stored.fingerprint.config_digest() else {
            return Ok(None);
        };
        if previous == current {
            return Ok(None);
        }
        let (before, after) = (stored.fingerprint.config(), fingerprint.config());
        let keys: std::collections::BTreeSet<&str> =
            before.keys().chain(after.keys()).copied().collect();
        let changed: serde_json::Map<String, serde_json::Value> = keys
            .into_iter()
            .filter(|k| before.get(k) != after.get(k))
            .map(|k| {
                (
                    k.to_string(),
                    serde_json::json!({"previous": before.get(k), "current": after.get(k)}),
                )
            })
            .collect();
        let change = ConfigChange {
            fingerprint: id.clone(),
            previous,
            current,
            changed: changed.keys().cloned().collect(),
        };
        let payload = serde_json::json!({
            "fingerprint": id,
            "previous": change.previous,
            "current": change.current,
            "changed": changed,
        });
        let details = serde_json::to_string(fingerprint)
            .map_err(|e| StoreError::Invalid(format!("fingerprint cannot be encoded: {e}")))?;
        let tx = self.conn.savepoint()?;
        let tid = target_id(&tx, target, at_ms)?;
        tx.execute(
            "INSERT INTO events (target_id, kind, at_ms, payload) VALUES (?1, 'config_changed', ?2, ?3)",
            params![tid, at_ms, payload.to_string()],
        )?;
        tx.execute(
            "UPDATE fingerprints SET details = ?3 WHERE target_id = ?1 AND fingerprint = ?2",
            params![tid, id, details],
        )?;
        tx.commit()?;
        Ok(Some(change))
    }

    /// The fingerprint `target` served at its last [`Store::record_fingerprint`].
    pub fn latest_fingerprint(&self, target: &str) -> Result<Option<FingerprintRecord>> {
        let Some(tid) = existing_target_id(&self.conn, target)? else {
            return Ok(None);
        };
        let row = self
            .conn
            .query_row(
                "SELECT f.id, f.fingerprint, f.details, f.first_seen_ms, f.last_seen_ms
                 FROM targets t JOIN fingerprints f
                   ON f.target_id = t.id AND f.fingerprint = t.current_fingerprint
                 WHERE t.id = ?1",
                [tid],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((row, id, details, first_seen_ms, last_seen_ms)) = row else {
            return Ok(None);
        };
        let fingerprint = serde_json::from_str(&details).map_err(|e| StoreError::Corrupt {
            table: "fingerprints",
            row,
            detail: format!("details are not a fingerprint: {e}"),
        })?;
        Ok(Some(FingerprintRecord {
            id,
            fingerprint,
            first_seen_ms,
            last_seen_ms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fp(digest: &str) -> Fingerprint {
        Fingerprint {
            provider: "ollama".into(),
            model: "qwen2.5:7b".into(),
            digest: Some(digest.into()),
            details: BTreeMap::from([("family".into(), "qwen2".into())]),
        }
    }

    #[test]
    fn first_same_swap_and_swap_back() {
        let mut store = Store::open_in_memory().unwrap();
        let (a, b) = (fp("aaa"), fp("bbb"));
        assert_eq!(
            store.record_fingerprint("t", &a, 10).unwrap(),
            FingerprintChange::First
        );
        assert_eq!(
            store.record_fingerprint("t", &a, 20).unwrap(),
            FingerprintChange::None
        );
        let rec = store.latest_fingerprint("t").unwrap().unwrap();
        assert_eq!(
            (rec.id.as_str(), rec.first_seen_ms, rec.last_seen_ms),
            (a.id().as_str(), 10, 20)
        );
        assert_eq!(rec.fingerprint, a);

        assert_eq!(
            store.record_fingerprint("t", &b, 30).unwrap(),
            FingerprintChange::Swap { previous: a.id() }
        );
        assert_eq!(
            store.latest_fingerprint("t").unwrap().unwrap().fingerprint,
            b
        );
        assert_eq!(
            store.record_fingerprint("t", &a, 40).unwrap(),
            FingerprintChange::Swap { previous: b.id() }
        );
        let rec = store.latest_fingerprint("t").unwrap().unwrap();
        assert_eq!((rec.first_seen_ms, rec.last_seen_ms), (10, 40));

        let events = store.events(Some("t"), 0).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.kind == "swap"));
        assert_eq!(events[0].at_ms, 30);
        assert_eq!(events[0].payload["previous"], a.id());
        assert_eq!(events[0].payload["current"], b.id());
        assert_eq!(events[0].payload["previous_fingerprint"]["digest"], "aaa");
        assert_eq!(events[1].payload["current_fingerprint"]["digest"], "aaa");
    }

    fn llama(repeat_penalty: &str) -> Fingerprint {
        let mut f = fp("gemma.gguf (Q4_K - Medium)");
        crate::provider::insert_config(&mut f.details, "repeat_penalty", repeat_penalty.into());
        crate::provider::insert_config(&mut f.details, "top_k", "40".into());
        f
    }

    #[test]
    fn other_generation_defaults_under_the_same_model_are_a_config_change_not_a_swap() {
        let mut store = Store::open_in_memory().unwrap();
        let (plain, penalised) = (llama("1.0"), llama("1.5"));
        assert_eq!(plain.id(), penalised.id());
        // Nothing stored yet: nothing to compare with.
        assert_eq!(store.record_config("t", &plain, 10).unwrap(), None);
        store.record_fingerprint("t", &plain, 10).unwrap();
        assert_eq!(store.record_config("t", &plain, 20).unwrap(), None);
        assert_eq!(
            store.record_fingerprint("t", &plain, 20).unwrap(),
            FingerprintChange::None
        );

        let change = store
            .record_config("t", &penalised, 30)
            .unwrap()
            .expect("a configuration change");
        assert_eq!(change.fingerprint, plain.id());
        assert_eq!(change.previous, plain.config_digest().unwrap());
        assert_eq!(change.current, penalised.config_digest().unwrap());
        assert_eq!(change.changed, vec!["repeat_penalty".to_string()]);
        assert_eq!(
            store.record_fingerprint("t", &penalised, 30).unwrap(),
            FingerprintChange::None,
            "the model is the same"
        );
        // Recorded once: the next reading of the same configuration is no change.
        assert_eq!(store.record_config("t", &penalised, 40).unwrap(), None);
        let events = store.events(Some("t"), 0).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, "config_changed");
        assert_eq!(events[0].at_ms, 30);
        assert_eq!(events[0].payload["fingerprint"], plain.id());
        assert_eq!(
            events[0].payload["changed"]["repeat_penalty"],
            serde_json::json!({"previous": "1.0", "current": "1.5"})
        );
        assert_eq!(
            store.latest_fingerprint("t").unwrap().unwrap().fingerprint,
            penalised
        );

        // A swap is not a configuration change; nor is a server that stops publishing.
        let other = {
            let mut f = llama("1.0");
            f.digest = Some("other.gguf".into());
            f
        };
        assert_eq!(store.record_config("t", &other, 50).unwrap(), None);
        assert_eq!(
            store
                .record_config("t", &fp("gemma.gguf (Q4_K - Medium)"), 60)
                .unwrap(),
            None
        );
        assert_eq!(store.events(Some("t"), 0).unwrap().len(), 1);
    }

    #[test]
    fn targets_are_independent() {
        let mut store = Store::open_in_memory().unwrap();
        store.record_fingerprint("t", &fp("aaa"), 1).unwrap();
        assert_eq!(
            store.record_fingerprint("u", &fp("bbb"), 2).unwrap(),
            FingerprintChange::First
        );
        assert_eq!(store.latest_fingerprint("nobody").unwrap(), None);
        assert!(store.events(None, 0).unwrap().is_empty());
    }
}
