//! One round of a target, from launch to the effects of its outcome: stored with its
//! fingerprint, the pin checked, the monitor fed, the alerts stepped.

use super::*;
use crate::runner::evalpool::{EvalPool, SharedEvaluate};

/// What a finished round changes outside the scheduler's own state, published to the shared
/// status once.
struct RoundEffects<'o> {
    /// `deadline`, or the round's [`crate::runner::RoundStatus`].
    status: &'static str,
    samples: &'o [crate::sample::Sample],
    summary: RoundSummary,
    notifications: Vec<Notification>,
    /// The outbox jobs of the notifications, when the round's transaction committed (a round
    /// not stored delivers nothing and logs no heartbeat).
    delivery: Option<Vec<(usize, alert::outbox::Job)>>,
}

impl<'o> RoundEffects<'o> {
    /// A finished round's effects before anything is stored: counted and shown only.
    fn of(outcome: &'o RoundOutcome) -> RoundEffects<'o> {
        let status = outcome.status().as_str();
        RoundEffects {
            status,
            samples: &outcome.samples,
            summary: RoundSummary {
                started_at_ms: outcome.started_at_ms,
                ended_at_ms: outcome.ended_at_ms,
                samples: outcome.samples.len(),
                errors: outcome.errors(),
                status: status.into(),
            },
            notifications: Vec::new(),
            delivery: None,
        }
    }

    /// A round cut off by its deadline: nothing measured, nothing stored.
    fn deadline(now_ms: i64) -> RoundEffects<'static> {
        RoundEffects {
            status: "deadline",
            samples: &[],
            summary: RoundSummary {
                started_at_ms: now_ms,
                ended_at_ms: now_ms,
                samples: 0,
                errors: 0,
                status: "deadline".into(),
            },
            notifications: Vec::new(),
            delivery: None,
        }
    }
}

/// The silences and maintenance windows in force while a round's alerts are stepped.
struct Mutes {
    silences: Vec<Silence>,
    windows: Vec<MaintenanceWindow>,
}

impl Mutes {
    fn muted(&self, key: &AlertKey, now_ms: i64) -> bool {
        alert::is_muted(key, now_ms, &self.silences, &self.windows)
    }
}

impl Scheduler {
    pub(super) fn launch_due(&mut self, rounds: &mut Rounds) {
        let now = Instant::now();
        for (name, p) in &self.prepared {
            let Some(rt) = self.runtime.get_mut(name) else {
                continue;
            };
            if rt.running || rt.next_due > now {
                continue;
            }
            if p.probes.is_empty() {
                rt.next_due = now + p.target.interval;
                continue;
            }
            rt.running = true;
            let jitter = p.target.daemon.jitter;
            let extra = if jitter.is_zero() {
                Duration::ZERO
            } else {
                jitter.mul_f64(self.rng.f64())
            };
            // The next round is due one interval (plus jitter) after this one starts.
            rt.next_due = now + p.target.interval + extra;
            let client = p.client.clone();
            // Rounds are numbered by the clock (start ÷ interval), so the seeds a probe declares
            // move on every round, across restarts too.
            let round_number =
                (self.clock.now_ms().max(0) as u64) / (p.target.interval.as_millis().max(1) as u64);
            let probes = setup::with_round_seed(&p.probes, round_number);
            let options = RoundOptions {
                target: name.clone(),
                concurrency: p.target.max_concurrency as usize,
                stream: p.target.stream,
                samples_override: None,
                keep_text: true,
            };
            let deadline = p.target.daemon.round_deadline;
            let started_ms = self.clock.now_ms();
            self.round_starts.insert(name.clone(), started_ms);
            for o in &self.options.observers {
                o.round_started(&p.target, started_ms);
            }
            let evaluator = self.evaluator.clone();
            let checks = self.checks.clone();
            let clock = self.clock;
            let check_budget = self.options.check_budget;
            let name = name.clone();
            let generation = self.generation;
            let trace = crate::provider::trace::IdKey::process().round_trace(&name, started_ms);
            rounds.push(Box::pin(crate::provider::trace::in_round(
                trace,
                async move {
                    let evaluate = evaluate_fn(evaluator.clone(), checks.clone());
                    // Checks run on the pool's threads within their budget, never on the
                    // scheduler's; the deadline ends the round, not its result: what finished is
                    // stored and the rest are `deadline` errors.
                    let shared: Arc<SharedEvaluate> = Arc::new(move |p: &Probe, c: &Completion| {
                        evaluator.evaluate(c, checks.get(&p.hash))
                    });
                    let limits = runner::RoundLimits {
                        deadline: Some(deadline),
                        checks: Some(Arc::new(EvalPool::new(shared, check_budget))),
                    };
                    let outcome = runner::run_round_within(
                        client.as_ref(),
                        &probes,
                        &options,
                        &limits,
                        &*evaluate,
                        &clock,
                    )
                    .await;
                    (name, generation, Some(outcome))
                },
            )));
        }
    }

    /// Stores a finished round and steps the monitor and the alerts; what the round changed is
    /// then published once ([`Scheduler::publish_round`]).
    pub(super) async fn finish_round(
        &mut self,
        name: &str,
        _generation: u64,
        outcome: Option<RoundOutcome>,
    ) {
        let now_ms = self.clock.now_ms();
        let Some(rt) = self.runtime.get_mut(name) else {
            return; // target removed by a reload
        };
        rt.running = false;
        rt.rounds += 1;
        if let Some(p) = self.prepared.get(name) {
            let started = self.round_starts.remove(name).unwrap_or(now_ms);
            let status = match &outcome {
                None => "deadline",
                Some(o) => o.status().as_str(),
            };
            for o in &self.options.observers {
                o.round_finished(&p.target, started, outcome.as_ref(), status);
            }
        }
        let Some(outcome) = outcome else {
            tracing::warn!(target = name, "round cut off by the round deadline");
            self.publish_round(name, RoundEffects::deadline(now_ms));
            return;
        };
        let effects = self.round_effects(name, &outcome, now_ms);
        self.publish_round(name, effects);
    }

    /// Stores the round in one transaction and returns its effects; a round the database
    /// cannot take is counted and shown, but neither stored nor fed to the monitor (its
    /// alerts could not be recorded).
    fn round_effects<'o>(
        &mut self,
        name: &str,
        outcome: &'o RoundOutcome,
        now_ms: i64,
    ) -> RoundEffects<'o> {
        let mut effects = RoundEffects::of(outcome);
        if self.store_retry_at.is_some_and(|t| Instant::now() < t) {
            tracing::warn!(
                target = name,
                "round not stored: the database was not available moments ago"
            );
            return effects;
        }
        self.store_retry_at = None;
        if let Err(e) = self.store.begin() {
            self.store_retry_at = Some(Instant::now() + STORE_RETRY);
            self.store_error("begin", &e);
            tracing::error!(target = name, error = %e, "cannot store the round: the database is not available");
            return effects;
        }
        // Everything the round changes (fingerprint, samples, alert states, events, outbox
        // rows) commits in one transaction: a crash keeps all of it or none, so a transition
        // is never stored without its notification, nor a swap without its alert.
        effects.notifications = self.step_round(name, outcome, now_ms);
        let jobs = self.record_notifications(&effects.notifications);
        match self.store.commit() {
            Ok(()) => {
                // Only a commit proves the store writable: the writes inside the transaction
                // can succeed on a full disk and the commit still fail.
                self.shared.store_ok.store(true, Ordering::Relaxed);
                effects.delivery = Some(jobs);
            }
            Err(e) => {
                self.store_error("commit", &e);
                tracing::error!(target = name, error = %e, "cannot commit the round; its notifications are not sent");
                // Back to the stored alert states, so that the transitions lost with the
                // transaction happen again (and notify) once the store works.
                if let Ok(states) = self.store.alert_states() {
                    self.alerts = states.into_iter().map(|st| (st.key.clone(), st)).collect();
                }
                self.monitor_as_stored(name);
            }
        }
        effects
    }

    /// Publishes a round's effects: the round's summary and counts, its quality readings and
    /// notifications in the shared status, the observers told, and (for a stored round) the
    /// heartbeat line and the notifications' delivery.
    fn publish_round(&mut self, name: &str, effects: RoundEffects<'_>) {
        if let Some(rt) = self.runtime.get_mut(name) {
            rt.last_round = Some(effects.summary.clone());
        }
        self.shared
            .count_round(name, effects.status, effects.samples);
        let quality = self.record_quality(name, effects.samples);
        for n in &effects.notifications {
            self.shared
                .count_notification(&n.key.target, n.kind.as_str());
        }
        self.assess(name, &quality);
        if let Some(jobs) = effects.delivery {
            self.heartbeat(name, &effects.summary);
            self.dispatch(jobs);
        }
        self.publish();
    }

    /// One info line per stored round, so a quiet log still shows the daemon at work.
    fn heartbeat(&self, name: &str, summary: &RoundSummary) {
        let firing = self
            .alerts
            .values()
            .filter(|a| a.key.target == name && a.status == Status::Firing)
            .count();
        tracing::info!(
            target = name,
            status = summary.status.as_str(),
            samples = summary.samples,
            errors = summary.errors,
            firing,
            "round stored"
        );
    }

    /// Inside the round's transaction: stores the round, checks fingerprint and pin, feeds the
    /// monitor and steps the alerts; returns the notifications produced.
    pub(super) fn step_round(
        &mut self,
        name: &str,
        outcome: &RoundOutcome,
        now_ms: i64,
    ) -> Vec<Notification> {
        let mut notifications = Vec::new();
        if !self.runtime.contains_key(name) {
            return notifications;
        }
        let mutes = Mutes {
            silences: self.store.active_silences(now_ms).unwrap_or_default(),
            windows: self.loaded.config.alerts.maintenance.clone(),
        };
        self.record_config(name, outcome, now_ms, &mut notifications, |k| {
            mutes.muted(k, now_ms)
        });
        let license = self.check_license(name, outcome);
        let (fingerprint_id, swapped) =
            self.record_fingerprint(name, outcome, now_ms, &mutes, &mut notifications);
        let round = self.store_round(name, fingerprint_id.as_deref(), outcome, now_ms);
        let Some(p) = self.prepared.get(name) else {
            return notifications;
        };
        let target = p.target.clone();
        let settings = p.monitor_settings.clone();
        let mut observations: Vec<(String, Severity, Observation)> = Vec::new();
        // Pin: before any statistics.
        observations.extend(self.pin_observation(name, &target, fingerprint_id.as_deref()));
        observations.extend(license);
        // No pin any more (removed by a reload or before a restart): nothing is unapproved, so
        // an `unapproved_model` alert still firing from the old pin resolves.
        let unapproved = AlertKey::new(name, UNAPPROVED_MODEL);
        if target.daemon.pin.is_none()
            && self
                .alerts
                .get(&unapproved)
                .is_some_and(|st| st.status == Status::Firing)
        {
            observations.push((
                UNAPPROVED_MODEL.into(),
                Severity::Critical,
                Observation::Clear,
            ));
        }
        observations
            .extend(self.monitor_observations(name, &target, settings, outcome, swapped, now_ms));
        notifications.extend(self.behaviour_event(name, outcome, now_ms, &mutes));
        observations.extend(self.traffic_observations(name));
        notifications.append(&mut self.step_alerts(name, observations, now_ms, &mutes));
        self.save_monitor(name, now_ms, round);
        notifications
    }

    /// Records the round's fingerprint; a change is a swap (an info notification). Returns the
    /// fingerprint id, when it could be read, and whether the model was swapped.
    fn record_fingerprint(
        &mut self,
        name: &str,
        outcome: &RoundOutcome,
        now_ms: i64,
        mutes: &Mutes,
        notifications: &mut Vec<Notification>,
    ) -> (Option<String>, bool) {
        let Some(rt) = self.runtime.get_mut(name) else {
            return (None, false);
        };
        let mut swapped = false;
        let fingerprint_id = match &outcome.fingerprint {
            Ok(fp) => {
                let id = fp.id();
                match self
                    .store
                    .record_fingerprint(name, fp, outcome.started_at_ms)
                {
                    Ok(FingerprintChange::Swap { previous }) => {
                        swapped = true;
                        rt.swaps += 1;
                        tracing::warn!(
                            target = name,
                            previous = %previous,
                            current = %id,
                            "the served model changed (swap): new monitoring episode"
                        );
                        let key = AlertKey::new(name, SWAP);
                        let muted = mutes.muted(&key, now_ms);
                        notifications.push(Notification::info(
                            key,
                            now_ms,
                            Evidence {
                                summary: format!(
                                    "model swap on {name}: fingerprint {previous} → {id}"
                                ),
                                ..Evidence::default()
                            },
                            muted,
                        ));
                    }
                    Ok(FingerprintChange::First) => {
                        tracing::info!(target = name, fingerprint = %id, "first fingerprint")
                    }
                    Ok(FingerprintChange::None) => {}
                    Err(e) => {
                        self.shared.store_failed("fingerprint", &e.to_string());
                        tracing::error!(target = name, error = %e, "cannot store the fingerprint");
                    }
                }
                rt.digest = fp.digest.clone();
                Some(id)
            }
            Err(e) => {
                tracing::warn!(target = name, error = %e, "could not read the fingerprint");
                None
            }
        };
        if fingerprint_id.is_some() {
            rt.fingerprint = fingerprint_id.clone();
        }
        (fingerprint_id, swapped)
    }

    /// Stores the round and its samples (inside the round's transaction).
    fn store_round(
        &mut self,
        name: &str,
        fingerprint_id: Option<&str>,
        outcome: &RoundOutcome,
        now_ms: i64,
    ) -> Option<crate::store::RoundId> {
        let stored = self
            .store
            .record_round(name, fingerprint_id, outcome, now_ms);
        match stored {
            Ok(id) => Some(id),
            Err(e) => {
                self.shared.store_failed("round", &e.to_string());
                tracing::error!(target = name, error = %e, "cannot store the round");
                None
            }
        }
    }

    /// The pin check of a round whose fingerprint was read.
    fn pin_observation(
        &self,
        name: &str,
        target: &Target,
        fingerprint_id: Option<&str>,
    ) -> Option<(String, Severity, Observation)> {
        let (Some(pin), Some(id)) = (&target.daemon.pin, fingerprint_id) else {
            return None;
        };
        let digest = self.runtime.get(name).and_then(|rt| rt.digest.as_deref());
        let ok = pin.matches(id, digest);
        Some((
            UNAPPROVED_MODEL.into(),
            Severity::Critical,
            if ok {
                Observation::Clear
            } else {
                Observation::Breach(Evidence {
                    summary: format!(
                        "{name} serves {} (digest {}), not the approved model {}",
                        id,
                        digest.unwrap_or("unknown"),
                        pin.model
                    ),
                    ..Evidence::default()
                })
            },
        ))
    }

    /// Loads a new or changed baseline, starts a new episode after a swap or a new baseline,
    /// and feeds the round to the monitor. After a reset, firing alerts of metrics the new
    /// episode no longer tracks are cleared.
    fn monitor_observations(
        &mut self,
        name: &str,
        target: &Target,
        settings: MonitorSettings,
        outcome: &RoundOutcome,
        swapped: bool,
        now_ms: i64,
    ) -> Vec<(String, Severity, Observation)> {
        let mut observations = Vec::new();
        let Some(rt) = self.runtime.get_mut(name) else {
            return observations;
        };
        let mut reset = swapped;
        // The baseline an episode starting now compares against, read from its file.
        let mut fresh = None;
        if let Some(path) = &target.baseline {
            let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let changed = match &rt.baseline {
                None => true,
                Some(b) => b.path != *path || b.mtime != mtime,
            };
            if changed && mtime.is_some() {
                match Baseline::load(path) {
                    Ok(b) => {
                        tracing::info!(target = name, baseline = %path.display(), fingerprint = %b.fingerprint.id(), "baseline loaded: new monitoring episode");
                        fresh = Some((path.clone(), mtime, b));
                        reset = true;
                    }
                    Err(e) => {
                        if rt.baseline.is_none() {
                            tracing::warn!(target = name, error = %e, "cannot load the baseline; monitoring waits for one");
                        }
                    }
                }
            }
        }
        // The samples are not kept between episodes (`HeldBaseline`): a swap reads the file
        // again. One that cannot be read any more leaves the target unmonitored until it can,
        // rather than compare the new model with the last one's episode.
        if fresh.is_none()
            && (reset || rt.monitor.is_none())
            && let Some(held) = &rt.baseline
        {
            match Baseline::load(&held.path) {
                Ok(b) => fresh = Some((held.path.clone(), held.mtime, b)),
                Err(e) => {
                    tracing::warn!(target = name, error = %e, "cannot read the baseline again for the new episode; monitoring waits for it");
                    rt.baseline = None;
                    rt.monitor = None;
                    rt.behaviour = None;
                }
            }
        }
        if let Some((path, mtime, b)) = fresh {
            // What the status shows is what the episode compares against.
            rt.baseline = Some(HeldBaseline::of(path, mtime, &b));
            rt.monitor = Some(TargetMonitor::new(&b, settings));
            rt.behaviour = behaviour_watch(target, &b, now_ms);
            rt.episode_started_ms = Some(now_ms);
        }
        let tracked: Vec<String> = rt
            .monitor
            .as_ref()
            .map(|m| m.metric_ids())
            .unwrap_or_default();
        if let Some(m) = rt.monitor.as_mut() {
            for (metric, obs) in m.observe_round(&outcome.samples) {
                observations.push((metric, Severity::Warning, obs));
            }
        }
        if reset {
            for (key, st) in &self.alerts {
                if key.target == name
                    && st.status == Status::Firing
                    && key.metric != UNAPPROVED_MODEL
                    && !tracked.contains(&key.metric)
                {
                    observations.push((key.metric.clone(), st.severity, Observation::Clear));
                }
            }
        }
        observations
    }

    /// Feeds the round's texts to the behaviour watch; starts a due check on a blocking thread
    /// (it can take a second, which the rounds in flight must not wait for) and reports a
    /// finished one. A flag is a `behaviour_changed` event (severity warning), never a quality
    /// alert.
    fn behaviour_event(
        &mut self,
        name: &str,
        outcome: &RoundOutcome,
        now_ms: i64,
        mutes: &Mutes,
    ) -> Option<Notification> {
        let slot = self.runtime.get_mut(name)?.behaviour.as_mut()?;
        slot.watch.observe(&outcome.samples);
        let finished = match slot.running.take() {
            Some(h) if h.is_finished() => futures_util::FutureExt::now_or_never(h)
                .and_then(Result::ok)
                .flatten(),
            Some(h) => {
                slot.running = Some(h);
                None
            }
            None => None,
        };
        if slot.running.is_none() && slot.watch.due(now_ms) {
            let job = slot.watch.take_job(now_ms);
            slot.running = Some(tokio::task::spawn_blocking(move || job.run()));
        }
        let check = finished?;
        slot.watch.record(&check);
        let summary = check.summary(name);
        if !check.changed {
            tracing::info!(
                target = name,
                p_value = check.p_value,
                probes = check.probes,
                "{summary}"
            );
            return None;
        }
        tracing::warn!(
            target = name,
            p_value = check.p_value,
            alpha = check.alpha,
            "{summary}"
        );
        let key = AlertKey::new(name, BEHAVIOUR_CHANGED);
        let muted = mutes.muted(&key, now_ms);
        Some(Notification::event(
            key,
            Severity::Warning,
            now_ms,
            Evidence {
                summary,
                ..Evidence::default()
            },
            muted,
        ))
    }

    /// Steps the alert of each observation (pure transitions), persists the states that
    /// changed and returns the notifications.
    fn step_alerts(
        &mut self,
        name: &str,
        observations: Vec<(String, Severity, Observation)>,
        now_ms: i64,
        mutes: &Mutes,
    ) -> Vec<Notification> {
        let mut notifications = Vec::new();
        let policy = alert_policy(&self.loaded.config.alerts);
        for (metric, severity, obs) in observations {
            let key = AlertKey::new(name, metric);
            let current = self
                .alerts
                .get(&key)
                .cloned()
                .unwrap_or_else(|| AlertState::new(key.clone(), severity, now_ms));
            let muted = mutes.muted(&key, now_ms);
            let (next, mut out) = alert::transition(&current, &obs, now_ms, &policy, muted);
            if next != current || !self.alerts.contains_key(&key) {
                if let Err(e) = self.store.save_alert_state(&next, now_ms) {
                    self.shared.store_failed("alert_state", &e.to_string());
                    tracing::error!(alert = %key, error = %e, "cannot persist the alert state");
                }
                self.alerts.insert(key, next);
            }
            notifications.append(&mut out);
        }
        notifications
    }

    /// Reads a round's quality figures into the shared state (for `/metrics` and OTLP).
    pub(super) fn record_quality(
        &self,
        name: &str,
        samples: &[crate::sample::Sample],
    ) -> crate::telemetry::quality::TargetQuality {
        match self.prepared.get(name) {
            Some(p) => {
                let expects: std::collections::HashSet<(&str, &str)> = p
                    .probes
                    .iter()
                    .filter(|pr| pr.expect.refusal == Some(true))
                    .map(|pr| (pr.suite.as_str(), pr.id.as_str()))
                    .collect();
                self.shared.record_quality(name, samples, &|suite, probe| {
                    expects.contains(&(suite, probe))
                })
            }
            None => self.shared.record_quality(name, &[], &|_, _| false),
        }
    }

    /// Tells the observers a target's readings after a round.
    pub(super) fn assess(&self, name: &str, quality: &crate::telemetry::quality::TargetQuality) {
        let (Some(p), Some(rt)) = (self.prepared.get(name), self.runtime.get(name)) else {
            return;
        };
        let metrics = rt
            .monitor
            .as_ref()
            .map(|m| m.snapshot())
            .unwrap_or_default();
        let alerts: Vec<AlertState> = self
            .alerts
            .values()
            .filter(|a| a.key.target == name)
            .cloned()
            .collect();
        let assessment = Assessment {
            metrics: &metrics,
            alerts: &alerts,
            quality,
        };
        for o in &self.options.observers {
            o.round_assessed(&p.target, &assessment);
        }
    }
}
