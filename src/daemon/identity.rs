//! The served configuration as part of what is served: under the same model fingerprint, other
//! published generation defaults (llama.cpp `/props`, Ollama `/api/show` parameters) are a
//! `config_changed` event and an info notification, distinct from a swap: the weights are the
//! same, the monitoring episode goes on, and what the server does with unsent parameters moved.

use super::*;

impl Scheduler {
    /// Records the round's configuration before its fingerprint (the store compares it with
    /// the stored one); a change under the same fingerprint becomes an info notification.
    pub(super) fn record_config(
        &mut self,
        name: &str,
        outcome: &RoundOutcome,
        now_ms: i64,
        notifications: &mut Vec<Notification>,
        muted: impl Fn(&AlertKey) -> bool,
    ) {
        let Ok(fp) = &outcome.fingerprint else {
            return;
        };
        let change = match self.store.record_config(name, fp, outcome.started_at_ms) {
            Ok(change) => change,
            Err(e) => {
                self.shared.store_failed("fingerprint", &e.to_string());
                tracing::error!(target = name, error = %e, "cannot store the configuration");
                None
            }
        };
        let Some(rt) = self.runtime.get_mut(name) else {
            return;
        };
        rt.config_digest = fp.config_digest();
        let Some(change) = change else {
            return;
        };
        rt.config_changes += 1;
        tracing::warn!(
            target = name,
            fingerprint = %change.fingerprint,
            previous = %change.previous,
            current = %change.current,
            changed = %change.changed.join(","),
            "the served configuration changed under the same model (config_changed)"
        );
        let key = AlertKey::new(name, CONFIG_CHANGED);
        let muted = muted(&key);
        notifications.push(Notification::info(
            key,
            now_ms,
            Evidence {
                summary: format!(
                    "configuration change on {name}: same model {}, generation defaults {} → {} \
                     ({})",
                    change.fingerprint,
                    change.previous,
                    change.current,
                    change.changed.join(", ")
                ),
                ..Evidence::default()
            },
            muted,
        ));
    }
}
