//! The monitor of production traffic: per target and route, a baseline of the first
//! [`BASELINE_COMPLETIONS`] completions received with their text, then the probes' anytime-valid
//! monitor ([`TargetMonitor`]) against it, fed every batch the traffic task measures.
//!
//! Each route has a monitor of its own, so a change in the routes' shares of the traffic (mix
//! shift) is never read as a change of the model: every route is compared with its own
//! baseline. At most [`MONITORED_ROUTES`] routes per target are monitored, each at α divided by
//! that number (Bonferroni), so the target's false-alarm budget holds across its routes.
//!
//! A swap the prober saw (the target's fingerprint changed) starts a new episode of every route
//! against the same baseline, recorded before the swap; a breach then names the route and the
//! swap: "production refusal rate on route /support of chat 1.1 % → 4.8 % since the swap at …
//! (fingerprint a1b2 → c3d4)". A swap during the recording restarts the recording (a baseline
//! never mixes two models). Breaches are logged, shown under `traffic.watch` in the status, and
//! become alerts (metric `traffic:<route>:<metric>`) through the alert state machine and the
//! sinks at the target's next round.
//!
//! Baselines are kept in the store (`traffic_baselines`) as soon as they are made and reloaded
//! at start, with the fingerprint they were made under: a swap while the daemon was stopped is
//! still seen as one. With `[traffic] baseline_window`, a swap rebuilds each route's baseline
//! from its completions received in that window before the swap (when there are at least
//! [`MIN_WINDOW_COMPLETIONS`]); with `baseline_file`, the routes it names use its completions and
//! are never re-recorded.

use super::monitor::{MonitorSettings, TargetMonitor};
use crate::alert::{Evidence, Observation};
use crate::drift::Expectations;
use crate::sample::{FinishReason, Measurements, Sample};
use crate::store::{Store, TrafficBaseline, TrafficRow};
use serde::Serialize;
use std::collections::BTreeMap;

/// Completions with text recorded per route before it is monitored.
pub const BASELINE_COMPLETIONS: usize = 200;
/// Routes monitored per target (the first to complete their baseline).
pub const MONITORED_ROUTES: usize = 20;
/// Longest wait for the database's lock when a baseline is kept (it is tried again later).
pub const SAVE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Fewest completions of a window that can replace a route's baseline.
pub const MIN_WINDOW_COMPLETIONS: usize = 30;
/// Most completions a window baseline is made of (the most recent).
const MAX_WINDOW_COMPLETIONS: usize = 5_000;
/// The suite name routes are monitored under (each route is one "probe").
const SUITE: &str = "traffic";

/// The served fingerprint of a target and when its episode began (a swap), if known.
pub type SwapLookup = Box<dyn Fn(&str) -> Option<(String, Option<i64>)> + Send>;

/// A swap as the traffic monitor saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SwapSeen {
    pub at_ms: i64,
    pub from: String,
    pub to: String,
}

/// Where a route's baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// The route's first completions with text.
    #[default]
    Recorded,
    /// Its completions in `[traffic] baseline_window` before a swap.
    Window,
    /// `[traffic] baseline_file`: never re-recorded.
    File,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Recorded => "recorded",
            Source::Window => "window",
            Source::File => "file",
        }
    }

    fn parse(s: &str) -> Source {
        match s {
            "window" => Source::Window,
            "file" => Source::File,
            _ => Source::Recorded,
        }
    }
}

#[derive(Default)]
struct RouteWatch {
    /// The baseline's completions (measurements, never texts).
    baseline: Vec<TrafficRow>,
    source: Source,
    /// When the baseline was complete (0 while it is being recorded).
    made_at_ms: i64,
    monitor: Option<TargetMonitor>,
    /// Open breaches: metric → message.
    breaches: BTreeMap<String, String>,
    /// A baseline the store could not take, written again with the route's next batch.
    unkept: Option<PendingSave>,
}

/// A save that failed (the database busy past its timeout, a full disk): the fingerprint the
/// baseline is kept under, and how many times in a row it failed (only the first is a warning).
struct PendingSave {
    fingerprint: Option<String>,
    failures: u32,
}

#[derive(Default)]
struct TargetWatch {
    fingerprint: Option<String>,
    swap: Option<SwapSeen>,
    routes: BTreeMap<String, RouteWatch>,
    /// The latest reading of each alert that has breached: alert metric → observation (a
    /// clear one is kept until the alert is no longer firing).
    alerts: BTreeMap<String, Observation>,
}

/// The alert metric of a traffic breach.
pub fn alert_metric(route: &str, metric: &str) -> String {
    format!("traffic:{route}:{metric}")
}

/// See the module documentation.
pub struct TrafficWatch {
    settings: MonitorSettings,
    baseline_size: usize,
    lookup: SwapLookup,
    targets: BTreeMap<String, TargetWatch>,
    /// Where baselines are kept and windows read (none in unit tests).
    store: Option<Store>,
    window_ms: Option<i64>,
    /// The digest of each route's JSON Schema, kept with its baselines.
    schemas: BTreeMap<String, String>,
    /// When a route's schema last changed in this process: a window before a swap starts no
    /// earlier (its outcomes were judged against one schema).
    schema_changed_ms: BTreeMap<String, i64>,
}

impl TrafficWatch {
    /// `settings` as for the probes; α is divided across [`MONITORED_ROUTES`] here.
    pub fn new(settings: MonitorSettings, baseline_size: usize, lookup: SwapLookup) -> Self {
        let mut settings = settings;
        settings.margins.alpha /= MONITORED_ROUTES as f64;
        TrafficWatch {
            settings,
            baseline_size: baseline_size.max(1),
            lookup,
            targets: BTreeMap::new(),
            store: None,
            window_ms: None,
            schemas: BTreeMap::new(),
            schema_changed_ms: BTreeMap::new(),
        }
    }

    /// The routes that declare a JSON Schema, by route: the digest of each (set before
    /// [`TrafficWatch::with_store`]).
    pub fn with_schemas(mut self, schemas: BTreeMap<String, String>) -> Self {
        self.schemas = schemas;
        self
    }

    /// Keeps baselines in `store`, starting from the ones it has (except those judged against
    /// another JSON Schema than the route's); rebuilds them from `window` before each swap when
    /// set.
    pub fn with_store(mut self, store: Store, window: Option<std::time::Duration>) -> Self {
        self.window_ms = window.map(|w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX));
        match store.traffic_baselines() {
            Ok(kept) => {
                for b in kept {
                    if b.schema.as_ref() != self.schemas.get(&b.route) {
                        tracing::info!(target = %b.target, route = %b.route, "traffic: the kept baseline was judged against another JSON Schema; it is recorded again");
                        continue;
                    }
                    self.install(b);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "traffic: kept baselines cannot be read; they are recorded again")
            }
        }
        self.store = Some(store);
        self
    }

    /// Monitors the routes of `baselines` against them from the start (they replace kept ones).
    pub fn with_file_baselines(mut self, baselines: Vec<TrafficBaseline>) -> Self {
        for b in baselines {
            self.install(b);
        }
        self
    }

    /// Monitors `b.route` of `b.target` against `b` (within [`MONITORED_ROUTES`]).
    fn install(&mut self, b: TrafficBaseline) {
        let settings = self.settings.clone();
        let tw = self.targets.entry(b.target.clone()).or_default();
        let monitored = tw.routes.values().filter(|r| r.monitor.is_some()).count();
        if monitored >= MONITORED_ROUTES && !tw.routes.contains_key(&b.route) {
            return;
        }
        if tw.fingerprint.is_none() {
            tw.fingerprint.clone_from(&b.fingerprint);
        }
        let samples: Vec<Sample> = b.rows.iter().filter_map(to_sample).collect();
        if samples.is_empty() {
            return;
        }
        tw.routes.insert(
            b.route.clone(),
            RouteWatch {
                monitor: Some(TargetMonitor::from_samples(
                    &samples,
                    Expectations::default(),
                    settings,
                )),
                baseline: b.rows,
                source: Source::parse(&b.source),
                made_at_ms: b.recorded_at_ms,
                breaches: BTreeMap::new(),
                unkept: None,
            },
        );
    }

    /// Whether the route's baseline is in the store (it survives a restart): every made
    /// baseline is saved when it is made, so it is unless that save is still pending; a file
    /// baseline is read from its file instead.
    fn kept(&self, rw: &RouteWatch) -> bool {
        self.store.is_some()
            && rw.monitor.is_some()
            && rw.source != Source::File
            && rw.unkept.is_none()
    }

    fn route_mut(&mut self, target: &str, route: &str) -> Option<&mut RouteWatch> {
        self.targets
            .get_mut(target)
            .and_then(|t| t.routes.get_mut(route))
    }

    /// Keeps the baseline of `route` (after it was made); on failure, marks it to be written
    /// again with the route's next batch.
    fn save(&mut self, target: &str, route: &str, fingerprint: Option<String>) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let Some(rw) = self
            .targets
            .get_mut(target)
            .and_then(|t| t.routes.get_mut(route))
        else {
            return;
        };
        if rw.source == Source::File {
            return;
        }
        let b = TrafficBaseline {
            target: target.to_string(),
            route: route.to_string(),
            source: rw.source.as_str().to_string(),
            recorded_at_ms: rw.made_at_ms,
            fingerprint,
            schema: self.schemas.get(route).cloned(),
            rows: rw.baseline.clone(),
        };
        match store.put_traffic_baseline(&b) {
            Ok(()) => rw.unkept = None,
            Err(e) => {
                let failures = rw.unkept.as_ref().map_or(0, |p| p.failures) + 1;
                if failures == 1 {
                    tracing::warn!(target, route, error = %e, "traffic: cannot keep the baseline; it is tried again with each batch of the route until it is kept");
                } else {
                    tracing::debug!(target, route, failures, error = %e, "traffic: the baseline is still not kept");
                }
                rw.unkept = Some(PendingSave {
                    fingerprint: b.fingerprint,
                    failures,
                });
            }
        }
    }

    /// The open breaches, as `(target, route, metric, message)`.
    pub fn breaches(&self) -> Vec<(String, String, String, String)> {
        let mut out = Vec::new();
        for (t, tw) in &self.targets {
            for (r, rw) in &tw.routes {
                for (m, msg) in &rw.breaches {
                    out.push((t.clone(), r.clone(), m.clone(), msg.clone()));
                }
            }
        }
        out
    }

    /// Notices a swap of `target` since the last batch.
    fn check_swap(&mut self, target: &str, now_ms: i64) {
        let seen = (self.lookup)(target);
        let tw = self.targets.entry(target.to_string()).or_default();
        let Some((fingerprint, started)) = seen else {
            return;
        };
        let swapped = tw
            .fingerprint
            .as_ref()
            .is_some_and(|old| *old != fingerprint);
        let from = tw.fingerprint.replace(fingerprint.clone());
        if !swapped {
            return;
        }
        let swap = SwapSeen {
            at_ms: started.unwrap_or(now_ms),
            from: from.unwrap_or_default(),
            to: fingerprint,
        };
        tracing::info!(target, from = %swap.from, to = %swap.to, "traffic: the target was swapped; every route starts a new episode against its baseline");
        let at = swap.at_ms;
        let old = swap.from.clone();
        tw.swap = Some(swap);
        let routes: Vec<String> = tw.routes.keys().cloned().collect();
        for route in routes {
            let window = self.window(target, &route, at);
            let settings = self.settings.clone();
            let Some(rw) = self.route_mut(target, &route) else {
                continue;
            };
            rw.breaches.clear();
            if let Some(rows) = window.filter(|_| rw.source != Source::File) {
                tracing::info!(target, route = %route, completions = rows.len(), "traffic: the route's baseline is rebuilt from the window before the swap");
                rw.baseline = rows;
                rw.source = Source::Window;
                rw.made_at_ms = at;
                self.restart(target, &route, settings);
                self.save(target, &route, Some(old.clone()));
            } else if rw.monitor.is_some() {
                self.restart(target, &route, settings);
            } else {
                rw.baseline.clear();
            }
        }
    }

    /// The judged completions of a route in `[traffic] baseline_window` before `at_ms`, when
    /// a window is configured and holds at least [`MIN_WINDOW_COMPLETIONS`].
    fn window(&self, target: &str, route: &str, at_ms: i64) -> Option<Vec<TrafficRow>> {
        let (store, w) = (self.store.as_ref()?, self.window_ms?);
        let since = self
            .schema_changed_ms
            .get(route)
            .copied()
            .unwrap_or(i64::MIN);
        match store.traffic_window(
            target,
            route,
            at_ms.saturating_sub(w).max(since),
            at_ms,
            MAX_WINDOW_COMPLETIONS,
        ) {
            Ok(rows) if rows.len() >= MIN_WINDOW_COMPLETIONS => Some(rows),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(target, route, error = %e, "traffic: cannot read the window before the swap; the route keeps its baseline");
                None
            }
        }
    }

    /// A new episode of `route` against its baseline.
    fn restart(&mut self, target: &str, route: &str, settings: MonitorSettings) {
        if let Some(rw) = self.route_mut(target, route) {
            let samples: Vec<Sample> = rw.baseline.iter().filter_map(to_sample).collect();
            rw.monitor = Some(TargetMonitor::from_samples(
                &samples,
                Expectations::default(),
                settings,
            ));
        }
    }

    /// Feeds the judged completions `rows` of a route: to its baseline while it is recorded,
    /// then to its monitor.
    fn observe_route(&mut self, target: &str, route: &str, mut rows: Vec<TrafficRow>) {
        let size = self.baseline_size;
        let Some(tw) = self.targets.get_mut(target) else {
            return;
        };
        let monitored = tw.routes.values().filter(|r| r.monitor.is_some()).count();
        let fingerprint = tw.fingerprint.clone();
        let rw = tw.routes.entry(route.to_string()).or_default();
        if let Some(fingerprint) = rw.unkept.as_ref().map(|p| p.fingerprint.clone()) {
            self.save(target, route, fingerprint);
        }
        let Some(rw) = self.route_mut(target, route) else {
            return;
        };
        if rw.monitor.is_none() {
            let take = rows.len().min(size.saturating_sub(rw.baseline.len()));
            rw.baseline.extend(rows.drain(..take));
            if rw.baseline.len() < size || monitored >= MONITORED_ROUTES {
                return;
            }
            rw.source = Source::Recorded;
            rw.made_at_ms = rw.baseline.last().map_or(0, |r| r.received_at_ms);
            let settings = self.settings.clone();
            self.restart(target, route, settings);
            self.save(target, route, fingerprint);
            if rows.is_empty() {
                return;
            }
        }
        let samples: Vec<Sample> = rows.iter().filter_map(to_sample).collect();
        self.step(target, route, &samples);
    }

    /// One monitor step of a route; breaches are named and kept for the alerts.
    fn step(&mut self, target: &str, route: &str, samples: &[Sample]) {
        let Some(tw) = self.targets.get_mut(target) else {
            return;
        };
        let swap = tw.swap.clone();
        let alerts = &mut tw.alerts;
        let Some(rw) = tw.routes.get_mut(route) else {
            return;
        };
        let Some(m) = rw.monitor.as_mut() else {
            return;
        };
        for (metric, obs) in m.observe_round(samples) {
            let key = alert_metric(route, &metric);
            match obs {
                Observation::Breach(mut ev) => {
                    let msg = message(target, route, &metric, &ev, swap.as_ref());
                    if !rw.breaches.contains_key(&metric) {
                        tracing::warn!(target, route, metric = %metric, "{msg}");
                    }
                    ev.summary = msg.clone();
                    rw.breaches.insert(metric, msg);
                    alerts.insert(key, Observation::Breach(ev));
                }
                Observation::Clear => {
                    rw.breaches.remove(&metric);
                    if let Some(a) = alerts.get_mut(&key) {
                        *a = Observation::Clear;
                    }
                }
                Observation::NoData => {}
            }
        }
    }
}

impl crate::traffic::Watch for TrafficWatch {
    fn observe(&mut self, rows: &[TrafficRow]) {
        let mut by: BTreeMap<(String, String), Vec<TrafficRow>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.refusal.is_some()) {
            by.entry((r.target.clone(), r.route.clone()))
                .or_default()
                .push(TrafficRow {
                    text: None,
                    ..r.clone()
                });
        }
        let now = rows.iter().map(|r| r.received_at_ms).max().unwrap_or(0);
        let mut checked: Option<String> = None;
        for ((target, route), samples) in by {
            if checked.as_deref() != Some(target.as_str()) {
                self.check_swap(&target, now);
                checked = Some(target.clone());
            }
            self.observe_route(&target, &route, samples);
        }
    }

    fn status(&self) -> serde_json::Value {
        let mut targets = serde_json::Map::new();
        for (t, tw) in &self.targets {
            let mut routes = serde_json::Map::new();
            for (r, rw) in &tw.routes {
                routes.insert(
                    r.clone(),
                    serde_json::json!({
                        "baseline": rw.baseline.len(),
                        "baseline_source": rw.source.as_str(),
                        "baseline_made_at_ms": (rw.made_at_ms > 0).then_some(rw.made_at_ms),
                        "baseline_kept": self.kept(rw),
                        "monitored": rw.monitor.is_some(),
                        "readings": rw.monitor.as_ref().map(|m| m.snapshot()).unwrap_or_default(),
                        "breaches": rw.breaches.values().collect::<Vec<_>>(),
                    }),
                );
            }
            targets.insert(
                t.clone(),
                serde_json::json!({ "last_swap": tw.swap, "routes": routes }),
            );
        }
        serde_json::json!({
            "baseline_completions": self.baseline_size,
            "baseline_window_ms": self.window_ms,
            "targets": targets,
        })
    }

    fn alerts(&self, target: &str) -> Vec<(String, Observation)> {
        self.targets
            .get(target)
            .map(|t| {
                t.alerts
                    .iter()
                    .map(|(k, o)| (k.clone(), o.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn settled(&mut self, target: &str, metric: &str) {
        if let Some(t) = self.targets.get_mut(target)
            && matches!(t.alerts.get(metric), Some(Observation::Clear))
        {
            t.alerts.remove(metric);
        }
    }

    /// The route's schema changed: its baselines (every target's) are recorded again, and its
    /// open breaches are cleared.
    fn route_changed(&mut self, route: &str, schema: Option<&str>) {
        match schema {
            Some(s) => self.schemas.insert(route.to_string(), s.to_string()),
            None => self.schemas.remove(route),
        };
        self.schema_changed_ms
            .insert(route.to_string(), crate::time::now_ms());
        for (target, tw) in &mut self.targets {
            if tw.routes.remove(route).is_none() {
                continue;
            }
            let prefix = alert_metric(route, "");
            for (_, obs) in tw.alerts.iter_mut().filter(|(k, _)| k.starts_with(&prefix)) {
                *obs = Observation::Clear;
            }
            tracing::info!(target = %target, route, "traffic: the route's JSON Schema changed; its baseline is recorded again");
            if let Some(store) = self.store.as_mut()
                && let Err(e) = store.delete_traffic_baseline(target, route)
            {
                tracing::warn!(target = %target, route, error = %e, "traffic: cannot drop the kept baseline");
            }
        }
    }
}

impl super::Scheduler {
    /// The traffic alerts of target `name` to step with its round: every breached one's latest
    /// reading, and clear readings only while the alert is still firing.
    pub(super) fn traffic_observations(
        &self,
        name: &str,
    ) -> Vec<(String, crate::alert::Severity, Observation)> {
        let Some(traffic) = self.shared.traffic() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (metric, obs) in traffic.watch_alerts(name) {
            let firing = self
                .alerts
                .get(&crate::alert::AlertKey::new(name, metric.as_str()))
                .is_some_and(|s| s.status == crate::alert::Status::Firing);
            if obs == Observation::Clear && !firing {
                traffic.watch_settled(name, &metric);
                continue;
            }
            out.push((metric, crate::alert::Severity::Warning, obs));
        }
        out
    }
}

/// A completion judged from its text as the monitor's sample (lengths-only completions carry
/// no refusal judgement and are not monitored).
fn to_sample(r: &TrafficRow) -> Option<Sample> {
    let refusal = r.refusal?;
    let mut s = Sample::pending(&r.target, SUITE, &r.route, "", 0, r.received_at_ms);
    s.finish_reason = r.finish_reason.as_deref().map(FinishReason::parse);
    s.latency_ms = r.latency_ms.unwrap_or(f64::NAN);
    s.measurements = Some(Measurements {
        chars: r.chars.unwrap_or(0),
        output_tokens: r.output_tokens.unwrap_or(0),
        tokens_estimated: r.output_tokens.is_none(),
        truncated: r.truncated,
        empty: r.empty.unwrap_or(false),
        refusal,
        refusal_rule: r.refusal_rule.clone(),
        partial_refusal: r.partial_refusal.unwrap_or(false),
        structured: r.structured,
        ..Measurements::default()
    });
    Some(s)
}

/// "production refusal rate on route /support of chat 1.1 % → 4.8 % since the swap at …".
fn message(
    target: &str,
    route: &str,
    metric: &str,
    ev: &Evidence,
    swap: Option<&SwapSeen>,
) -> String {
    let what = match metric {
        super::monitor::LENGTH_METRIC => Some("length (mean placement among the baseline's)"),
        super::monitor::LENGTH_SHAPE_METRIC => {
            Some("length shape (mean spread from the middle of the baseline's)")
        }
        _ => None,
    };
    let show = |v: Option<f64>| match v {
        Some(v) if what.is_none() => format!("{:.1} %", v * 100.0),
        Some(v) => format!("{v:.2}"),
        None => "?".into(),
    };
    let what = what.map_or_else(|| metric.replace('_', " "), str::to_string);
    let since = match swap {
        Some(s) => format!(
            "since the swap at {} (fingerprint {} → {})",
            minute(s.at_ms),
            short(&s.from),
            short(&s.to)
        ),
        None => "since the traffic baseline".into(),
    };
    format!(
        "production {what} on route {route} of {target} {} → {} {since}",
        show(ev.baseline),
        show(ev.current)
    )
}

/// `2026-01-31 14:02 UTC`.
fn minute(ms: i64) -> String {
    let t = crate::time::rfc3339_utc(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

#[cfg(test)]
#[path = "traffic_watch_tests.rs"]
mod tests;
