//! What the daemon shows the outside: the status document (`/api/v1/status`) and the counters
//! behind `/metrics`. Written by the scheduler after every round, read by the HTTP server.

use super::monitor::MetricSnapshot;
use crate::alert::AlertState;
use crate::sample::Sample;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Upper bounds of the latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Upper bounds of the output-token histogram.
pub const TOKEN_BUCKETS: [f64; 10] = [
    8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

#[derive(Debug, Clone, Default, Serialize)]
pub struct PinStatus {
    pub model: String,
    pub approved_by: Option<String>,
    pub approved_on: Option<String>,
    pub license_reviewed: bool,
    /// Whether the served model matches (None before the first fingerprint).
    pub matches: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BaselineStatus {
    pub path: String,
    pub fingerprint: String,
    pub recorded_at: String,
    /// Whether the baseline was recorded from the model served now.
    pub same_fingerprint: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RoundSummary {
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub samples: usize,
    pub errors: usize,
    /// `completed`, `failed` (nothing measured) or `deadline` (cut off).
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetStatus {
    pub name: String,
    pub provider: String,
    pub model: String,
    pub fingerprint: Option<String>,
    pub digest: Option<String>,
    /// Digest of the generation defaults the server publishes (`None`: it publishes none).
    pub config_digest: Option<String>,
    /// Configuration changes seen under the same model fingerprint (`config_changed` events).
    pub config_changes: u64,
    pub pin: Option<PinStatus>,
    /// The served model's license evidence (`None` before the first fingerprint).
    pub license: Option<crate::provider::license::LicenseEvidence>,
    /// Triage: `safe`, `watch` or `act`, with every reason (docs/inventory.md).
    pub tier: String,
    pub tier_reasons: Vec<String>,
    pub baseline: Option<BaselineStatus>,
    /// When the current monitoring episode began (start, swap or new baseline).
    pub episode_started_ms: Option<i64>,
    pub last_round: Option<RoundSummary>,
    pub rounds: u64,
    pub swaps: u64,
    pub metrics: Vec<MetricSnapshot>,
    /// The behaviour watch of the current episode (`None`: off, or no baseline with texts).
    pub behaviour: Option<super::behaviour::BehaviourStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStatus {
    pub name: String,
    /// Notifications delivered.
    pub delivered: u64,
    /// Failed attempts (each retried later, until the notification expires).
    pub failed: u64,
    /// Notifications in the outbox awaiting delivery.
    pub pending: u64,
    /// Notifications given up after the last retry.
    pub expired: u64,
    /// Notifications the receiver refused (a 4xx other than 408 and 429), not retried.
    pub rejected: u64,
    /// Pending notifications of this sink dropped because the sink was removed from the
    /// configuration.
    pub orphaned: u64,
    pub last_error: Option<String>,
}

/// The `/api/v1/status` document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusDoc {
    pub version: &'static str,
    pub config: String,
    pub targets: Vec<TargetStatus>,
    pub alerts: Vec<AlertState>,
    pub sinks: Vec<SinkStatus>,
    /// Silences in force (`modelwatch silence`): their alerts fire and resolve as usual, their
    /// notifications are recorded, not delivered.
    pub silences: Vec<crate::alert::Silence>,
}

#[derive(Debug, Default)]
pub(super) struct Histogram {
    pub(super) counts: Vec<u64>,
    pub(super) sum: f64,
    pub(super) count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    /// (target, outcome) → requests.
    pub(super) requests: BTreeMap<(String, String), u64>,
    /// (target, status) → rounds.
    pub(super) rounds: BTreeMap<(String, String), u64>,
    pub(super) latency: BTreeMap<String, Histogram>,
    pub(super) tokens: BTreeMap<String, Histogram>,
    /// (kind) → notifications.
    /// By (target, kind).
    pub(super) notifications: BTreeMap<(String, String), u64>,
    /// (sink, outcome) → delivery attempts.
    pub(super) deliveries: BTreeMap<(String, String), u64>,
    /// target → whether its last round got at least one answer from the model.
    pub(super) up: BTreeMap<String, bool>,
}

/// Shared between the scheduler and the HTTP server.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<StatusDoc>,
    pub(super) counters: Mutex<Counters>,
    pub config_loaded: AtomicBool,
    pub reload_ok: AtomicBool,
    pub reload_at_ms: AtomicI64,
    /// Unix ms of the scheduler's last loop iteration (readiness).
    pub last_tick_ms: AtomicI64,
    pub store_ok: AtomicBool,
    /// Longest acceptable gap between scheduler ticks before `/readyz` fails.
    pub tick_budget_ms: AtomicI64,
    /// Counters of the round observers and per-target quality readings (sinks block).
    pub(super) sinks: Mutex<SinkMetrics>,
    /// Store failures: counts per operation and the last error (`/metrics`, `/readyz`).
    store_health: Mutex<StoreHealth>,
    /// What `quick_check` found in the database: `/readyz` fails for as long as the process
    /// runs (writes are refused; recovery needs a stop).
    store_damaged: Mutex<Option<String>>,
    /// Production traffic ingestion (`[traffic]`), when configured.
    traffic: Mutex<Option<std::sync::Arc<crate::traffic::Traffic>>>,
}

/// Failed store operations since the start, and the latest error message.
#[derive(Debug, Default)]
struct StoreHealth {
    /// (operation) → failures.
    errors: BTreeMap<String, u64>,
    last_error: Option<String>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            status: Mutex::new(StatusDoc {
                version: env!("CARGO_PKG_VERSION"),
                ..StatusDoc::default()
            }),
            counters: Mutex::new(Counters::default()),
            config_loaded: AtomicBool::new(false),
            reload_ok: AtomicBool::new(true),
            reload_at_ms: AtomicI64::new(0),
            last_tick_ms: AtomicI64::new(0),
            store_ok: AtomicBool::new(false),
            tick_budget_ms: AtomicI64::new(60_000),
            sinks: Mutex::new(SinkMetrics::default()),
            store_health: Mutex::new(StoreHealth::default()),
            store_damaged: Mutex::new(None),
            traffic: Mutex::new(None),
        }
    }
}

impl Shared {
    pub fn status(&self) -> StatusDoc {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Production traffic ingestion, when `[traffic]` is configured.
    pub fn traffic(&self) -> Option<std::sync::Arc<crate::traffic::Traffic>> {
        self.traffic.lock().ok().and_then(|t| t.clone())
    }

    pub fn set_traffic(&self, traffic: Option<std::sync::Arc<crate::traffic::Traffic>>) {
        if let Ok(mut t) = self.traffic.lock() {
            *t = traffic;
        }
    }

    pub fn update_status(&self, f: impl FnOnce(&mut StatusDoc)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    pub fn count_round(&self, target: &str, status: &str, samples: &[Sample]) {
        let Ok(mut c) = self.counters.lock() else {
            return;
        };
        *c.rounds
            .entry((target.to_string(), status.to_string()))
            .or_default() += 1;
        let answered = samples
            .iter()
            .any(|s| s.error.as_ref().is_none_or(|e| e.kind.answered()));
        c.up.insert(target.to_string(), answered);
        for s in samples {
            let outcome = s.error.as_ref().map(|e| e.kind.as_str()).unwrap_or("ok");
            *c.requests
                .entry((target.to_string(), outcome.to_string()))
                .or_default() += 1;
            if s.error.is_none() {
                if s.latency_ms.is_finite() {
                    c.latency
                        .entry(target.to_string())
                        .or_default()
                        .observe(&LATENCY_BUCKETS, s.latency_ms / 1000.0);
                }
                if let Some(m) = &s.measurements {
                    c.tokens
                        .entry(target.to_string())
                        .or_default()
                        .observe(&TOKEN_BUCKETS, f64::from(m.output_tokens));
                }
            }
        }
    }

    pub fn count_notification(&self, target: &str, kind: &str) {
        if let Ok(mut c) = self.counters.lock() {
            *c.notifications
                .entry((target.to_string(), kind.to_string()))
                .or_default() += 1;
        }
    }

    /// Counts one delivery attempt of a sink (`delivered`, `failed`, `expired`).
    pub fn count_delivery(&self, sink: &str, outcome: &str) {
        if let Ok(mut c) = self.counters.lock() {
            *c.deliveries
                .entry((sink.to_string(), outcome.to_string()))
                .or_default() += 1;
        }
    }

    /// Records a failed store operation (`begin`, `commit`, `round`, `fingerprint`,
    /// `alert_state`, `event`, `outbox`, `prune`): counted, and the store is not ready until
    /// the next successful write.
    pub fn store_failed(&self, operation: &str, error: &str) {
        self.store_ok.store(false, Ordering::Relaxed);
        if let Ok(mut h) = self.store_health.lock() {
            *h.errors.entry(operation.to_string()).or_default() += 1;
            h.last_error = Some(format!("{operation}: {error}"));
        }
    }

    /// The database is damaged: counted as a failed `quick_check`, and not ready from now on,
    /// whatever succeeds later.
    pub fn store_is_damaged(&self, error: &str) {
        self.store_failed("quick_check", error);
        if let Ok(mut d) = self.store_damaged.lock() {
            *d = Some(error.to_string());
        }
    }

    /// Store failures per operation since the start.
    pub fn store_errors(&self) -> BTreeMap<String, u64> {
        self.store_health
            .lock()
            .map(|h| h.errors.clone())
            .unwrap_or_default()
    }

    /// Whether the daemon is ready: configuration loaded, store writable, scheduler ticking.
    pub fn ready(&self, now_ms: i64) -> Result<(), String> {
        if !self.config_loaded.load(Ordering::Relaxed) {
            return Err("configuration not loaded".into());
        }
        if let Some(e) = self.store_damaged.lock().ok().and_then(|d| d.clone()) {
            return Err(format!("store damaged, writes refused ({e})"));
        }
        if !self.store_ok.load(Ordering::Relaxed) {
            let last = self
                .store_health
                .lock()
                .ok()
                .and_then(|h| h.last_error.clone());
            return Err(match last {
                Some(e) => format!("store not writable (last error: {e})"),
                None => "store not writable".into(),
            });
        }
        let last = self.last_tick_ms.load(Ordering::Relaxed);
        let budget = self.tick_budget_ms.load(Ordering::Relaxed);
        if last == 0 || now_ms - last > budget {
            return Err(format!(
                "scheduler not ticking (last tick {} ms ago)",
                now_ms - last
            ));
        }
        Ok(())
    }
}

// ---- Sinks and telemetry: observer counters and quality readings ----

/// What the sinks block of `/metrics` renders: the live observers' counters (plus the final
/// counts of observers replaced by a reload, so counters never go backwards) and the quality
/// readings of each target's last rounds.
/// A counter sample's family and labels.
type CounterKey = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
pub(super) struct SinkMetrics {
    pub(super) observers: Vec<std::sync::Arc<dyn super::RoundObserver>>,
    /// (family, labels) → count carried over from replaced observers.
    pub(super) carried: BTreeMap<CounterKey, u64>,
    pub(super) helps: BTreeMap<&'static str, &'static str>,
    pub(super) quality: BTreeMap<String, crate::telemetry::quality::TargetQuality>,
}

impl std::fmt::Debug for SinkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkMetrics")
            .field("observers", &self.observers.len())
            .field("carried", &self.carried)
            .finish()
    }
}

impl Shared {
    /// Replaces the round observers whose counters `/metrics` shows.
    pub fn set_observers(&self, observers: Vec<std::sync::Arc<dyn super::RoundObserver>>) {
        let Ok(mut m) = self.sinks.lock() else {
            return;
        };
        let old = std::mem::replace(&mut m.observers, observers);
        for o in old {
            for c in o.counters() {
                m.helps.insert(c.family, c.help);
                *m.carried.entry((c.family, c.labels)).or_default() += c.value;
            }
        }
    }

    /// Adds a finished round's samples to the quality readings of its target and returns
    /// them (the observers show the same readings).
    pub fn record_quality(
        &self,
        target: &str,
        samples: &[Sample],
        refusal_expected: &dyn Fn(&str, &str) -> bool,
    ) -> crate::telemetry::quality::TargetQuality {
        let Ok(mut m) = self.sinks.lock() else {
            return Default::default();
        };
        let q = m.quality.entry(target.to_string()).or_default();
        q.record(samples, refusal_expected);
        q.clone()
    }

    /// Forgets targets no longer configured.
    pub fn retain_quality(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut m) = self.sinks.lock() {
            m.quality.retain(|t, _| keep(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKey, AlertState, Severity};

    #[test]
    fn a_damaged_store_stays_not_ready_whatever_succeeds_later() {
        let shared = Shared::default();
        shared.config_loaded.store(true, Ordering::Relaxed);
        shared.last_tick_ms.store(1_000, Ordering::Relaxed);
        shared.store_ok.store(true, Ordering::Relaxed);
        shared.store_is_damaged("the database m.db is damaged (PRAGMA quick_check: x)");
        let why = shared.ready(1_000).unwrap_err();
        assert!(why.starts_with("store damaged, writes refused"), "{why}");
        shared.store_ok.store(true, Ordering::Relaxed);
        assert!(shared.ready(1_000).is_err());
        assert_eq!(shared.store_errors().get("quick_check"), Some(&1));
    }

    #[test]
    fn store_failures_are_counted_shown_and_cleared_by_a_success() {
        let shared = Shared::default();
        shared.config_loaded.store(true, Ordering::Relaxed);
        shared.last_tick_ms.store(1_000, Ordering::Relaxed);
        shared.store_ok.store(true, Ordering::Relaxed);
        assert_eq!(shared.ready(1_000), Ok(()));
        shared.store_failed("begin", "database is locked");
        shared.store_failed("begin", "database is locked");
        shared.store_failed("commit", "disk I/O error");
        let why = shared.ready(1_000).unwrap_err();
        assert_eq!(
            why,
            "store not writable (last error: commit: disk I/O error)"
        );
        let text = shared.render_metrics();
        lint(&text).unwrap();
        assert!(text.contains("modelwatch_store_up 0\n"), "{text}");
        assert!(text.contains("modelwatch_store_errors_total{operation=\"begin\"} 2\n"));
        assert!(text.contains("modelwatch_store_errors_total{operation=\"commit\"} 1\n"));
        shared.store_ok.store(true, Ordering::Relaxed);
        assert_eq!(shared.ready(1_000), Ok(()));
        assert!(shared.render_metrics().contains("modelwatch_store_up 1\n"));
    }

    /// Checks the text exposition format: HELP then TYPE before each family's samples, sample
    /// names belong to the declared family, counters end in `_total`, values parse, every
    /// metric is prefixed.
    fn lint(text: &str) -> Result<(), String> {
        let mut family: Option<(String, String)> = None;
        let mut seen = std::collections::BTreeSet::new();
        let mut help: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = rest.split_whitespace().next().map(str::to_string);
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                if help.as_deref() != Some(name) {
                    return Err(format!("TYPE without HELP: {line}"));
                }
                if !seen.insert(name.to_string()) {
                    return Err(format!("family declared twice: {name}"));
                }
                // The standard process families keep their conventional names.
                if !name.starts_with("modelwatch_") && !name.starts_with("process_") {
                    return Err(format!("unprefixed: {name}"));
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return Err(format!("counter without _total: {name}"));
                }
                family = Some((name.to_string(), kind.to_string()));
                continue;
            }
            let (name_labels, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("no value: {line}"))?;
            let name = name_labels.split('{').next().unwrap_or("");
            let Some((fam, kind)) = &family else {
                return Err(format!("sample before TYPE: {line}"));
            };
            let ok = name == fam
                || (kind == "summary"
                    && [format!("{fam}_sum"), format!("{fam}_count")].contains(&name.to_string()))
                || (kind == "histogram"
                    && [
                        format!("{fam}_bucket"),
                        format!("{fam}_sum"),
                        format!("{fam}_count"),
                    ]
                    .contains(&name.to_string()));
            if !ok {
                return Err(format!("sample {name} outside family {fam}"));
            }
            if value.parse::<f64>().is_err() && !["+Inf", "-Inf", "NaN"].contains(&value) {
                return Err(format!("bad value: {line}"));
            }
        }
        Ok(())
    }

    #[test]
    fn metrics_follow_the_exposition_format() {
        let shared = Shared::default();
        let samples = crate::drift::tests::synth(crate::drift::tests::Profile::default(), 1, 4, 3);
        shared.count_round("a", "completed", &samples);
        shared.record_quality("a", &samples, &|_, _| false);
        shared.count_notification("a", "firing");
        shared.update_status(|s| {
            s.targets.push(TargetStatus {
                name: "a".into(),
                swaps: 2,
                metrics: vec![MetricSnapshot {
                    metric: "refusal_rate".into(),
                    baseline: 0.01,
                    current: Some(0.2),
                    null_bound: 0.05,
                    e_value: f64::INFINITY,
                    threshold: 140.0,
                    samples: 12,
                }],
                ..TargetStatus::default()
            });
            s.alerts.push(AlertState::new(
                AlertKey::new("a", "refusal_rate"),
                Severity::Warning,
                0,
            ));
        });
        let text = shared.render_metrics();
        lint(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(
            text.contains("modelwatch_metric_e_value{target=\"a\",metric=\"refusal_rate\"} +Inf")
        );
        assert!(text.contains("modelwatch_requests_total{target=\"a\",outcome=\"ok\"} 12"));
        assert!(text.contains("modelwatch_request_duration_seconds_count{target=\"a\"} 12"));
        assert!(text.contains(
            "modelwatch_alert_firing{target=\"a\",metric=\"refusal_rate\",severity=\"warning\"} 0"
        ));
        assert!(text.contains("modelwatch_build_info{version="));
        assert!(
            text.contains("modelwatch_response_length_chars_bucket{target=\"a\",le=\"+Inf\"} 12")
        );
        assert!(
            text.contains("modelwatch_quality_ratio{target=\"a\",metric=\"refusal_rate\"} 0.2\n")
        );
        assert!(text.contains("modelwatch_build_info{version=") && text.contains("revision=\""));
        assert!(text.contains("modelwatch_notifications_total{target=\"a\",kind=\"firing\"} 1\n"));
        assert!(text.contains("modelwatch_response_length_chars_count{target=\"a\"} 12"));
        assert!(
            text.contains("modelwatch_round_metric_value{target=\"a\",metric=\"refusal_rate\"}")
        );
    }

    /// Counts of observers replaced by a reload carry on, so counters never go backwards.
    #[test]
    fn observer_counters_survive_replacement() {
        struct Counting(u64);
        impl crate::daemon::RoundObserver for Counting {
            fn counters(&self) -> Vec<crate::daemon::ObserverCounter> {
                vec![crate::daemon::ObserverCounter {
                    family: "modelwatch_test_things_total",
                    help: "Things.",
                    labels: vec![("outcome", "ok".into())],
                    value: self.0,
                }]
            }
        }
        let shared = Shared::default();
        shared.set_observers(vec![std::sync::Arc::new(Counting(5))]);
        assert!(
            shared
                .render_metrics()
                .contains("modelwatch_test_things_total{outcome=\"ok\"} 5")
        );
        shared.set_observers(vec![std::sync::Arc::new(Counting(2))]);
        let text = shared.render_metrics();
        assert!(
            text.contains("modelwatch_test_things_total{outcome=\"ok\"} 7"),
            "{text}"
        );
        lint(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }

    #[test]
    fn readiness_needs_config_store_and_a_recent_tick() {
        let s = Shared::default();
        assert!(s.ready(1000).is_err());
        s.config_loaded.store(true, Ordering::Relaxed);
        s.store_ok.store(true, Ordering::Relaxed);
        assert!(s.ready(1000).unwrap_err().contains("scheduler"));
        s.last_tick_ms.store(1000, Ordering::Relaxed);
        assert!(s.ready(2000).is_ok());
        assert!(s.ready(1000 + 61_000).is_err());
    }
}
