//! Applying a configuration (at start and on reload): clients, probes, checks, monitor
//! settings per target; rebuilding the sinks; the commands the HTTP API and signals send.

use super::*;

impl Scheduler {
    /// Applies a configuration: clients, probes, the checks compiled at load; keeps the runtime of
    /// targets that stay.
    pub(super) fn apply(&mut self, loaded: Loaded) -> Result<(), DaemonError> {
        // Rounds still running on the previous configuration keep its limit until they end.
        let global = Arc::new(Semaphore::new(
            loaded.config.daemon.max_concurrency as usize,
        ));
        let mut prepared = BTreeMap::new();
        for t in &loaded.config.targets {
            let inner =
                (self.options.clients)(t, self.cancel_signal.clone()).map_err(|source| {
                    DaemonError::Client {
                        target: t.name.clone(),
                        source,
                    }
                })?;
            let bucket = t
                .daemon
                .max_requests_per_second
                .map(|r| Arc::new(TokenBucket::new(r, r.max(1.0))));
            let client: Arc<dyn ModelClient> =
                Arc::new(LimitedClient::new(inner, global.clone(), bucket));
            prepared.insert(
                t.name.clone(),
                Prepared {
                    target: t.clone(),
                    probes: setup::target_probes(&loaded, t, &[]),
                    client,
                    monitor_settings: MonitorSettings::for_target(&self.options.margins, t),
                },
            );
        }
        if let Some(t) = self.shared.traffic() {
            t.set_targets(known_targets(&loaded.config));
            set_traffic_secrets(&t, &loaded.config);
            let routes = loaded.config.traffic.as_ref().map(|c| c.routes.as_slice());
            match t.set_routes(routes.unwrap_or_default()) {
                Ok(changed) if !changed.is_empty() => {
                    tracing::info!(routes = ?changed, "traffic: JSON Schemas of routes applied");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "traffic: the routes' schemas were not applied")
                }
            }
        }
        let now = Instant::now();
        self.runtime.retain(|name, _| prepared.contains_key(name));
        for (name, p) in &prepared {
            if self.runtime.contains_key(name) {
                continue;
            }
            // A target new to this process continues the episode its last stored round left.
            let restored = self.restored_monitor(p);
            let (baseline, monitor, behaviour, episode_started_ms) = match restored {
                Some(r) => (
                    Some(r.baseline),
                    Some(r.monitor),
                    r.behaviour,
                    r.episode_started_ms,
                ),
                None => (None, None, None, None),
            };
            self.runtime.insert(
                name.clone(),
                Runtime {
                    next_due: now,
                    running: false,
                    monitor,
                    baseline,
                    fingerprint: None,
                    episode_started_ms,
                    rounds: 0,
                    swaps: 0,
                    last_round: None,
                    digest: None,
                    config_digest: None,
                    config_changes: 0,
                    license: None,
                    behaviour,
                },
            );
        }
        // A changed baseline path or margins: start a new episode.
        for (name, rt) in self.runtime.iter_mut() {
            let want = prepared.get(name).and_then(|p| p.target.baseline.clone());
            if rt.baseline.as_ref().map(|b| &b.path) != want.as_ref() {
                rt.baseline = None;
                rt.monitor = None;
                rt.behaviour = None;
            }
        }
        self.global = global;
        self.checks = loaded.checks.clone();
        self.prepared = prepared;
        let kept = &self.prepared;
        self.shared.retain_quality(|t| kept.contains_key(t));
        self.loaded = Arc::new(loaded);
        self.generation += 1;
        self.shared.config_loaded.store(true, Ordering::Relaxed);
        self.shared.reload_ok.store(true, Ordering::Relaxed);
        self.shared
            .reload_at_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let path = self.loaded.config.path.display().to_string();
        self.shared.update_status(|s| s.config = path);
        self.end_removed_targets_alerts();
        Ok(())
    }

    /// Resolves the firing alerts of targets no longer in the configuration (removed by a
    /// reload or before a restart): nothing watches them any more, so nothing else would ever
    /// end them. The resolution keeps the incident key, so a sink closes what it opened; it is
    /// stored and queued in one transaction, and tried again at the next apply if the store
    /// fails.
    fn end_removed_targets_alerts(&mut self) {
        let gone: Vec<AlertKey> = self
            .alerts
            .iter()
            .filter(|(k, st)| st.status == Status::Firing && !self.prepared.contains_key(&k.target))
            .map(|(k, _)| k.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        if let Err(e) = self.store.begin() {
            self.store_error("begin", &e);
            tracing::error!(error = %e, "cannot resolve the alerts of removed targets now; trying again at the next reload");
            return;
        }
        let now_ms = self.clock.now_ms();
        let policy = Policy {
            reminder_ms: None,
            resolve_after: 1,
        };
        let mut notifications = Vec::new();
        let mut states = Vec::new();
        for key in gone {
            let mut current = self.alerts[&key].clone();
            let mut evidence = current.evidence.take().unwrap_or_default();
            evidence.summary = format!(
                "resolved: target '{}' is no longer in the configuration ({})",
                key.target, evidence.summary
            );
            current.evidence = Some(evidence);
            let (next, mut out) =
                alert::transition(&current, &Observation::Clear, now_ms, &policy, false);
            if let Err(e) = self.store.save_alert_state(&next, now_ms) {
                self.store_error("alert_state", &e);
            }
            tracing::info!(alert = %key, "alert resolved: its target was removed from the configuration");
            notifications.append(&mut out);
            states.push(next);
        }
        let jobs = self.record_notifications(&notifications);
        if let Err(e) = self.store.commit() {
            self.store_error("commit", &e);
            tracing::error!(error = %e, "cannot resolve the alerts of removed targets now; trying again at the next reload");
            return;
        }
        for st in states {
            self.alerts.insert(st.key.clone(), st);
        }
        for n in &notifications {
            self.shared
                .count_notification(&n.key.target, n.kind.as_str());
        }
        self.dispatch(jobs);
    }

    pub(super) async fn command(
        &mut self,
        cmd: Command,
        reports: &mut mpsc::UnboundedReceiver<alert::outbox::Report>,
    ) {
        match cmd {
            Command::Reload(loaded) => {
                // The sender has announced RELOADING=1 (it validated the file first).
                let previous = self.loaded.config.clone();
                match self.apply(*loaded) {
                    Ok(()) => {
                        tracing::info!("configuration reloaded");
                        for key in start_only_changes(&previous, &self.loaded.config) {
                            tracing::warn!(
                                key,
                                "{key} changed in the file but is read at start only: the \
                                 reload applied everything else, the daemon keeps the value it \
                                 started with; restart it to apply the new one"
                            );
                        }
                        self.reload_outputs(&previous, reports).await;
                    }
                    Err(e) => {
                        self.shared.reload_ok.store(false, Ordering::Relaxed);
                        tracing::error!(error = %e, "reload failed; keeping the previous configuration");
                    }
                }
                self.publish();
                self.options
                    .notifier
                    .ready(&format!("watching {} target(s)", self.prepared.len()));
            }
            Command::Silence {
                target,
                metric,
                duration,
                reason,
                reply,
            } => {
                let result = if !self.prepared.contains_key(&target) {
                    Err(format!("no target named '{target}'"))
                } else {
                    let now = self.clock.now_ms();
                    let until = now.saturating_add(duration.as_millis() as i64);
                    self.store
                        .add_silence(&target, metric.as_deref(), now, until, &reason)
                        .map_err(|e| e.to_string())
                };
                if let Ok(s) = &result {
                    tracing::info!(target = %s.target, until_ms = s.until_ms, "silence added");
                    self.publish();
                }
                let _ = reply.send(result);
            }
        }
    }

    /// After a reload: rebuilds the sinks and observers when their configuration changed.
    /// The old workers are stopped (a delivery in flight is abandoned and sent again, with
    /// the same idempotency key, by the new worker), their reports recorded, and the new
    /// workers take over the pending rows of their sink; rows of a sink that is gone are
    /// marked `orphaned`.
    pub(super) async fn reload_outputs(
        &mut self,
        previous: &crate::config::Config,
        reports: &mut mpsc::UnboundedReceiver<alert::outbox::Report>,
    ) {
        let Some(factory) = self.options.outputs.clone() else {
            return;
        };
        let config = &self.loaded.config;
        let models = |c: &crate::config::Config| -> Vec<(String, String, String)> {
            c.targets
                .iter()
                .map(|t| {
                    let provider = t.provider.as_str().to_string();
                    (t.name.clone(), provider, t.model.clone())
                })
                .collect()
        };
        if previous.alerts.webhook == config.alerts.webhook
            && previous.alerts.sentry == config.alerts.sentry
            && previous.telemetry == config.telemetry
            && models(previous) == models(config)
        {
            return;
        }
        let outputs = match factory(config) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the reloaded sinks; keeping the previous ones");
                return;
            }
        };
        for (name, _, handle) in std::mem::take(&mut self.workers) {
            if let Some(h) = handle {
                h.abort();
                let _ = h.await;
            }
            tracing::debug!(sink = %name, "delivery worker stopped for the reload");
        }
        // Every report the old workers sent is in the channel now.
        while let Ok(r) = reports.try_recv() {
            self.record_delivery(r);
        }
        for st in self.sink_status.values_mut() {
            st.pending = 0;
        }
        self.options.sinks = outputs.sinks;
        self.options.observers = outputs.observers;
        self.shared.set_observers(self.options.observers.clone());
        if let Some(tx) = self.report_tx.clone() {
            self.start_workers(tx);
        }
        tracing::info!(
            sinks = ?self.workers.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(),
            observers = self.options.observers.len(),
            "alert sinks and telemetry rebuilt for the new configuration"
        );
    }
}

/// The settings a reload cannot change, because the listener and the store are opened at start:
/// those that differ between `before` and `after`, named as in the file.
fn start_only_changes(
    before: &crate::config::Config,
    after: &crate::config::Config,
) -> Vec<&'static str> {
    let (a, b) = (&before.server, &after.server);
    [
        ("[server] listen", a.listen != b.listen),
        ("[server] token", a.token != b.token),
        (
            "[server] max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "[server] public_metrics",
            a.public_metrics != b.public_metrics,
        ),
        ("[storage] path", before.storage.path != after.storage.path),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> crate::config::Config {
        let text = format!(
            "{extra}\n[[target]]\nname = \"t\"\nprovider = \"ollama\"\n\
             base_url = \"http://127.0.0.1:11434\"\nmodel = \"m\"\nsuites = [\"core\"]\n"
        );
        crate::config::parse(crate::diag::Source::new("m.toml", &text), &|_| None).unwrap()
    }

    #[test]
    fn a_reload_names_the_settings_it_cannot_apply() {
        let before = config("");
        assert!(start_only_changes(&before, &config("")).is_empty());
        let after = config("[storage]\npath = \"other.db\"\n[server]\nlisten = \"127.0.0.1:9999\"");
        assert_eq!(
            start_only_changes(&before, &after),
            ["[server] listen", "[storage] path"]
        );
    }
}
