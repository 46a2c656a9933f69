//! The license evidence stored with each fingerprint (identifier, text hash, source), and
//! license drift: other terms than those of the model served before are a `license_changed`
//! event, whether or not the model identity changed with them.

use super::{Result, Store, existing_target_id, target_id};
use crate::provider::Fingerprint;
use crate::provider::license::LicenseEvidence;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// The license columns of one stored fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredLicense {
    pub license: Option<String>,
    pub sha256: Option<String>,
    pub source: Option<String>,
}

impl StoredLicense {
    pub fn of(ev: &LicenseEvidence) -> Self {
        StoredLicense {
            license: ev.license.clone(),
            sha256: ev.sha256.clone(),
            source: Some(ev.source_label()),
        }
    }

    /// Whether `other` names other terms: a different identifier or a different text hash,
    /// compared only where both sides know it (evidence from a GGUF header has no text).
    pub fn differs_from(&self, other: &StoredLicense) -> bool {
        let both_differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        both_differ(&self.license, &other.license) || both_differ(&self.sha256, &other.sha256)
    }
}

/// What [`Store::record_license`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseChange {
    /// Fingerprint ids before and after (equal when the file changed under the same name).
    pub previous_fingerprint: String,
    pub current_fingerprint: String,
    pub previous: StoredLicense,
    pub current: StoredLicense,
}

/// Writes the license columns of a fingerprint row from its evidence (nothing when the
/// evidence identifies no terms, so the last known terms are kept to compare with).
pub(super) fn store_license_columns(
    conn: &Connection,
    tid: i64,
    id: &str,
    fingerprint: &Fingerprint,
) -> Result<()> {
    let Some(ev) = fingerprint.license().filter(LicenseEvidence::identified) else {
        return Ok(());
    };
    let s = StoredLicense::of(&ev);
    conn.execute(
        "UPDATE fingerprints SET license_id = ?3, license_sha256 = ?4, license_source = ?5
         WHERE target_id = ?1 AND fingerprint = ?2",
        params![tid, id, s.license, s.sha256, s.source],
    )?;
    Ok(())
}

impl Store {
    /// The license stored with the fingerprint `target` served at its last
    /// [`Store::record_fingerprint`], and that fingerprint's id.
    pub fn current_license(&self, target: &str) -> Result<Option<(String, StoredLicense)>> {
        let Some(tid) = existing_target_id(&self.conn, target)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT f.fingerprint, f.license_id, f.license_sha256, f.license_source
                 FROM targets t JOIN fingerprints f
                   ON f.target_id = t.id AND f.fingerprint = t.current_fingerprint
                 WHERE t.id = ?1",
                [tid],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        StoredLicense {
                            license: r.get(1)?,
                            sha256: r.get(2)?,
                            source: r.get(3)?,
                        },
                    ))
                },
            )
            .optional()?)
    }

    /// Compares the license evidence of `fingerprint` with the one stored for the model
    /// `target` served until now; other terms are stored as a `license_changed` event
    /// (payload: both fingerprints and both licenses) and returned. Call it before
    /// [`Store::record_fingerprint`] for the same reading, which then stores the new terms.
    pub fn record_license(
        &mut self,
        target: &str,
        fingerprint: &Fingerprint,
        at_ms: i64,
    ) -> Result<Option<LicenseChange>> {
        let Some(ev) = fingerprint.license() else {
            return Ok(None);
        };
        let Some((previous_fingerprint, previous)) = self.current_license(target)? else {
            return Ok(None);
        };
        let current = StoredLicense::of(&ev);
        if !previous.differs_from(&current) {
            return Ok(None);
        }
        let change = LicenseChange {
            previous_fingerprint,
            current_fingerprint: fingerprint.id(),
            previous,
            current,
        };
        let payload = serde_json::to_string(&change)
            .map_err(|e| super::StoreError::Invalid(format!("license change: {e}")))?;
        let tx = self.conn.savepoint()?;
        let tid = target_id(&tx, target, at_ms)?;
        tx.execute(
            "INSERT INTO events (target_id, kind, at_ms, payload) VALUES (?1, 'license_changed', ?2, ?3)",
            params![tid, at_ms, payload],
        )?;
        tx.commit()?;
        Ok(Some(change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fp(file: &str, license: Option<&str>, sha: Option<&str>) -> Fingerprint {
        let mut f = Fingerprint {
            provider: "openai".into(),
            model: "alias".into(),
            digest: Some(file.into()),
            details: BTreeMap::new(),
        };
        LicenseEvidence {
            license: license.map(str::to_string),
            sha256: sha.map(str::to_string),
            source: "gguf".into(),
            location: Some(format!("/m/{file}")),
            ..LicenseEvidence::default()
        }
        .insert_into(&mut f.details);
        f
    }

    #[test]
    fn licenses_are_stored_with_the_fingerprint_and_changes_become_events() {
        let mut store = Store::open_in_memory().unwrap();
        let gemma = fp("gemma.gguf", Some("gemma"), None);
        assert_eq!(
            store.record_license("t", &gemma, 10).unwrap(),
            None,
            "first"
        );
        store.record_fingerprint("t", &gemma, 10).unwrap();
        let (id, stored) = store.current_license("t").unwrap().unwrap();
        assert_eq!(id, gemma.id());
        assert_eq!(stored.license.as_deref(), Some("gemma"));
        assert_eq!(stored.source.as_deref(), Some("gguf /m/gemma.gguf"));
        assert_eq!(store.record_license("t", &gemma, 20).unwrap(), None, "same");
        store.record_fingerprint("t", &gemma, 20).unwrap();

        let smol = fp("smol.gguf", Some("apache-2.0"), None);
        let change = store.record_license("t", &smol, 30).unwrap().unwrap();
        assert_eq!(change.previous.license.as_deref(), Some("gemma"));
        assert_eq!(change.current.license.as_deref(), Some("apache-2.0"));
        assert_eq!(change.previous_fingerprint, gemma.id());
        assert_eq!(change.current_fingerprint, smol.id());
        store.record_fingerprint("t", &smol, 30).unwrap();
        assert_eq!(store.record_license("t", &smol, 40).unwrap(), None);
        let events: Vec<_> = store
            .events(Some("t"), 0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "license_changed")
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payload["current"]["license"], "apache-2.0");
    }

    #[test]
    fn a_new_text_under_the_same_identifier_and_model_is_a_change() {
        let mut store = Store::open_in_memory().unwrap();
        let v1 = fp("m.gguf", Some("gemma"), Some("aaaa"));
        store.record_fingerprint("t", &v1, 10).unwrap();
        let v2 = fp("m.gguf", Some("gemma"), Some("bbbb"));
        assert_eq!(v1.id(), v2.id(), "same model identity");
        let change = store.record_license("t", &v2, 20).unwrap().unwrap();
        assert_eq!(change.previous.sha256.as_deref(), Some("aaaa"));
        // Unknown on one side is not a change: no evidence is not other terms.
        store.record_fingerprint("t", &v2, 20).unwrap();
        let unknown = fp("m.gguf", None, None);
        assert_eq!(store.record_license("t", &unknown, 30).unwrap(), None);
    }
}
