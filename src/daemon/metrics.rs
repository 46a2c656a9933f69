//! The Prometheus text exposition of `/metrics`, one function per block, each writing its
//! families with [`family`] (the `# HELP`/`# TYPE` header) and escaped label values.

use super::state::{Histogram, LATENCY_BUCKETS, Shared, StatusDoc, TOKEN_BUCKETS};
use crate::alert::Status as AlertStatus;
use crate::daemon::monitor::{LENGTH_METRIC, LENGTH_SHAPE_METRIC};
use crate::telemetry::process::ProcessStats;
use crate::telemetry::quality::{Distribution, LENGTH_BUCKETS, TargetQuality};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

impl Shared {
    /// The Prometheus text exposition of everything the daemon measures.
    pub fn render_metrics(&self) -> String {
        let status = self.status();
        let mut o = String::new();
        self.render_daemon(&mut o);
        render_monitor(&mut o, &status);
        render_targets(&mut o, &status);
        self.render_target_up(&mut o, &status);
        self.render_counters(&mut o);
        self.render_sink_metrics(&mut o);
        self.render_store(&mut o);
        render_process(&mut o);
        o
    }

    /// Build, configuration and reload state.
    fn render_daemon(&self, o: &mut String) {
        family(
            o,
            "modelwatch_build_info",
            "gauge",
            "Build information; always 1.",
        );
        let _ = writeln!(
            o,
            "modelwatch_build_info{{version=\"{}\",revision=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            env!("MODELWATCH_GIT_COMMIT")
        );
        family(
            o,
            "modelwatch_config_last_reload_successful",
            "gauge",
            "1 when the last configuration (re)load succeeded, 0 when it was rejected.",
        );
        let _ = writeln!(
            o,
            "modelwatch_config_last_reload_successful {}",
            u8::from(self.reload_ok.load(Ordering::Relaxed))
        );
        family(
            o,
            "modelwatch_config_last_reload_success_timestamp_seconds",
            "gauge",
            "When the configuration was last loaded successfully.",
        );
        let _ = writeln!(
            o,
            "modelwatch_config_last_reload_success_timestamp_seconds {}",
            self.reload_at_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }

    /// Rounds, requests, notifications and deliveries; latency and token histograms.
    fn render_counters(&self, o: &mut String) {
        let Ok(c) = self.counters.lock() else {
            return;
        };
        family(
            o,
            "modelwatch_rounds_total",
            "counter",
            "Rounds by target and status.",
        );
        for ((t, s), v) in &c.rounds {
            let _ = writeln!(
                o,
                "modelwatch_rounds_total{{target=\"{}\",status=\"{s}\"}} {v}",
                esc(t)
            );
        }
        family(
            o,
            "modelwatch_requests_total",
            "counter",
            "Probe requests by target and outcome (ok or the infrastructure error kind).",
        );
        for ((t, out), v) in &c.requests {
            let _ = writeln!(
                o,
                "modelwatch_requests_total{{target=\"{}\",outcome=\"{out}\"}} {v}",
                esc(t)
            );
        }
        family(
            o,
            "modelwatch_notifications_total",
            "counter",
            "Alert notifications by target and kind (muted ones included).",
        );
        for ((t, k), v) in &c.notifications {
            let _ = writeln!(
                o,
                "modelwatch_notifications_total{{target=\"{}\",kind=\"{k}\"}} {v}",
                esc(t)
            );
        }
        family(
            o,
            "modelwatch_alert_deliveries_total",
            "counter",
            "Alert delivery attempts by sink and outcome (delivered; failed, to be retried; expired after the last retry; rejected by the receiver, not retried).",
        );
        for ((sink, out), v) in &c.deliveries {
            let _ = writeln!(
                o,
                "modelwatch_alert_deliveries_total{{sink=\"{}\",outcome=\"{out}\"}} {v}",
                esc(sink)
            );
        }
        let hist = |o: &mut String,
                    name: &str,
                    help: &str,
                    bounds: &[f64],
                    data: &BTreeMap<String, Histogram>| {
            family(o, name, "histogram", help);
            for (t, h) in data {
                let t = esc(t);
                for (i, b) in bounds.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "{name}_bucket{{target=\"{t}\",le=\"{b}\"}} {}",
                        h.counts.get(i).copied().unwrap_or(0)
                    );
                }
                let _ = writeln!(o, "{name}_bucket{{target=\"{t}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(o, "{name}_sum{{target=\"{t}\"}} {}", h.sum);
                let _ = writeln!(o, "{name}_count{{target=\"{t}\"}} {}", h.count);
            }
        };
        hist(
            o,
            "modelwatch_request_duration_seconds",
            "Deprecated (removed in the next release): modelwatch_response_latency_seconds, the same latencies in an HDR histogram that forgets removed targets.",
            &LATENCY_BUCKETS,
            &c.latency,
        );
        hist(
            o,
            "modelwatch_output_tokens",
            "Output tokens of successful probe responses.",
            &TOKEN_BUCKETS,
            &c.tokens,
        );
    }

    /// Whether each target's last round got an answer from the model (blackbox_exporter's
    /// `probe_success`): 0 when the server is down, unreachable or failed every request.
    fn render_target_up(&self, o: &mut String, status: &StatusDoc) {
        let Ok(c) = self.counters.lock() else {
            return;
        };
        family(
            o,
            "modelwatch_target_up",
            "gauge",
            "1 when the target's last round got at least one answer from the model, 0 when every request failed (server down, unreachable, erroring or past the round deadline).",
        );
        for t in &status.targets {
            if let Some(up) = c.up.get(&t.name) {
                let _ = writeln!(
                    o,
                    "modelwatch_target_up{{target=\"{}\"}} {}",
                    esc(&t.name),
                    u8::from(*up)
                );
            }
        }
    }

    /// Store health.
    fn render_store(&self, o: &mut String) {
        // Store health.
        family(
            o,
            "modelwatch_store_up",
            "gauge",
            "1 when the last store write succeeded, 0 while the database cannot be written.",
        );
        let _ = writeln!(
            o,
            "modelwatch_store_up {}",
            u8::from(self.store_ok.load(Ordering::Relaxed))
        );
        family(
            o,
            "modelwatch_store_errors_total",
            "counter",
            "Failed store operations (begin, commit, round, fingerprint, alert_state, event, outbox, prune).",
        );
        for (op, n) in self.store_errors() {
            let _ = writeln!(
                o,
                "modelwatch_store_errors_total{{operation=\"{}\"}} {n}",
                esc(&op)
            );
        }
    }

    fn render_sink_metrics(&self, o: &mut String) {
        let Ok(m) = self.sinks.lock() else {
            return;
        };
        let mut counters = m.carried.clone();
        let mut helps = m.helps.clone();
        for obs in &m.observers {
            for c in obs.counters() {
                helps.insert(c.family, c.help);
                *counters.entry((c.family, c.labels)).or_default() += c.value;
            }
        }
        for (name, help) in &helps {
            family(o, name, "counter", help);
            for ((_, labels), v) in counters.iter().filter(|((f, _), _)| f == name) {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
                    .collect();
                let _ = writeln!(o, "{name}{{{}}} {v}", labels.join(","));
            }
        }
        for (name, help) in [
            (
                "modelwatch_round_quality_ratio",
                "Bad-outcome rate (0-1, higher is worse) of the target's newest round with answers, by rate metric (a round without answers keeps it: see modelwatch_target_up).",
            ),
            (
                "modelwatch_round_metric_value",
                "Deprecated: the same as modelwatch_round_quality_ratio; removed in the next release.",
            ),
        ] {
            family(o, name, "gauge", help);
            for (t, q) in &m.quality {
                for (metric, v) in q.round_rates() {
                    let _ = writeln!(o, "{name}{{target=\"{}\",metric=\"{metric}\"}} {v}", esc(t));
                }
            }
        }
        for (name, help, bounds, of) in [
            (
                "modelwatch_response_length_chars",
                "Response length in characters of successful probe responses since start.",
                &LENGTH_BUCKETS[..],
                (|q| &q.lengths) as fn(&TargetQuality) -> &Distribution,
            ),
            (
                "modelwatch_response_latency_seconds",
                "Latency of successful probe responses since start.",
                &LATENCY_BUCKETS[..],
                |q| &q.latency,
            ),
        ] {
            family(o, name, "histogram", help);
            for (t, q) in &m.quality {
                distribution(o, name, &esc(t), bounds, of(q));
            }
        }
    }
}

/// One target's histogram of a distribution: cumulative buckets, `+Inf`, sum and count.
fn distribution(o: &mut String, name: &str, t: &str, bounds: &[f64], d: &Distribution) {
    for (bound, n) in bounds.iter().zip(d.cumulative(bounds)) {
        let _ = writeln!(o, "{name}_bucket{{target=\"{t}\",le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(
        o,
        "{name}_bucket{{target=\"{t}\",le=\"+Inf\"}} {}",
        d.count()
    );
    let _ = writeln!(o, "{name}_sum{{target=\"{t}\"}} {}", d.sum);
    let _ = writeln!(o, "{name}_count{{target=\"{t}\"}} {}", d.count());
}

/// The monitored metrics of each target's episode: value, baseline, evidence, threshold.
fn render_monitor(o: &mut String, status: &StatusDoc) {
    // The rates, the length placement and the length spread are three kinds of value, each in
    // its own family.
    let current = |kind: &'static str| {
        status.targets.iter().flat_map(move |t| {
            t.metrics
                .iter()
                .filter(move |m| {
                    let of = match m.metric.as_str() {
                        LENGTH_METRIC => "placement",
                        LENGTH_SHAPE_METRIC => "spread",
                        _ => "rate",
                    };
                    of == kind
                })
                .filter_map(move |m| Some((esc(&t.name), &m.metric, m.current?, m.baseline)))
        })
    };
    family(
        o,
        "modelwatch_quality_ratio",
        "gauge",
        "Bad-outcome rate (0-1, higher is worse) of a monitored rate metric in this episode.",
    );
    for (t, metric, v, _) in current("rate") {
        let _ = writeln!(
            o,
            "modelwatch_quality_ratio{{target=\"{t}\",metric=\"{metric}\"}} {v}"
        );
    }
    family(
        o,
        "modelwatch_quality_baseline_ratio",
        "gauge",
        "Bad-outcome rate (0-1) of a monitored rate metric in the target's baseline.",
    );
    for (t, metric, _, b) in current("rate") {
        let _ = writeln!(
            o,
            "modelwatch_quality_baseline_ratio{{target=\"{t}\",metric=\"{metric}\"}} {b}"
        );
    }
    family(
        o,
        "modelwatch_length_placement",
        "gauge",
        "Mean placement (0-1) of this episode's response lengths among the baseline's: 0.5 is the baseline, higher is longer.",
    );
    for (t, metric, v, _) in current("placement") {
        let _ = writeln!(
            o,
            "modelwatch_length_placement{{target=\"{t}\",metric=\"{metric}\"}} {v}"
        );
    }
    family(
        o,
        "modelwatch_length_spread",
        "gauge",
        "Mean spread (0-1) of this episode's answer lengths away from the middle of their probe's baseline: 0.5 is the baseline, higher means more answers in both tails (a change of shape).",
    );
    for (t, metric, v, _) in current("spread") {
        let _ = writeln!(
            o,
            "modelwatch_length_spread{{target=\"{t}\",metric=\"{metric}\"}} {v}"
        );
    }
    render_metric_evidence(o, status);
}

/// Every monitored metric by id: value (deprecated), baseline, evidence and its threshold.
fn render_metric_evidence(o: &mut String, status: &StatusDoc) {
    family(
        o,
        "modelwatch_metric_value",
        "gauge",
        "Deprecated (removed in the next release): modelwatch_quality_ratio for rates, modelwatch_length_placement for length_chars, modelwatch_length_spread for length_shape.",
    );
    for t in &status.targets {
        for m in &t.metrics {
            if let Some(v) = m.current {
                let _ = writeln!(
                    o,
                    "modelwatch_metric_value{{target=\"{}\",metric=\"{}\"}} {v}",
                    esc(&t.name),
                    m.metric
                );
            }
        }
    }
    family(
        o,
        "modelwatch_metric_baseline_value",
        "gauge",
        "Baseline value of a monitored metric.",
    );
    for t in &status.targets {
        for m in &t.metrics {
            let _ = writeln!(
                o,
                "modelwatch_metric_baseline_value{{target=\"{}\",metric=\"{}\"}} {}",
                esc(&t.name),
                m.metric,
                m.baseline
            );
        }
    }
    family(
        o,
        "modelwatch_metric_e_value",
        "gauge",
        "Anytime-valid e-value of the monitored metric against its interval null.",
    );
    for t in &status.targets {
        for m in &t.metrics {
            let _ = writeln!(
                o,
                "modelwatch_metric_e_value{{target=\"{}\",metric=\"{}\"}} {}",
                esc(&t.name),
                m.metric,
                fmt_f(m.e_value)
            );
        }
    }
    family(
        o,
        "modelwatch_metric_e_value_threshold",
        "gauge",
        "E-value at which the metric alarms (metrics / alpha).",
    );
    for t in &status.targets {
        if let Some(m) = t.metrics.first() {
            let _ = writeln!(
                o,
                "modelwatch_metric_e_value_threshold{{target=\"{}\"}} {}",
                esc(&t.name),
                fmt_f(m.threshold)
            );
        }
    }
}

/// Alerts, pins, swaps and the last round of each target.
fn render_targets(o: &mut String, status: &StatusDoc) {
    family(
        o,
        "modelwatch_alert_firing",
        "gauge",
        "1 while the alert of a target and metric fires.",
    );
    for a in &status.alerts {
        let _ = writeln!(
            o,
            "modelwatch_alert_firing{{target=\"{}\",metric=\"{}\",severity=\"{}\"}} {}",
            esc(&a.key.target),
            esc(&a.key.metric),
            a.severity.as_str(),
            u8::from(a.status == AlertStatus::Firing)
        );
    }
    family(
        o,
        "modelwatch_target_pin_match",
        "gauge",
        "1 when the served model is the pinned one, 0 when not (targets with a pin).",
    );
    for t in &status.targets {
        if let Some(m) = t.pin.as_ref().and_then(|p| p.matches) {
            let _ = writeln!(
                o,
                "modelwatch_target_pin_match{{target=\"{}\"}} {}",
                esc(&t.name),
                u8::from(m)
            );
        }
    }
    family(
        o,
        "modelwatch_target_tier",
        "gauge",
        "1 for the target's triage tier (safe, watch, act), 0 for the others.",
    );
    for t in &status.targets {
        for tier in ["safe", "watch", "act"] {
            let v = u8::from(t.tier == tier);
            let n = esc(&t.name);
            let _ = writeln!(
                o,
                "modelwatch_target_tier{{target=\"{n}\",tier=\"{tier}\"}} {v}"
            );
        }
    }
    family(
        o,
        "modelwatch_swaps_total",
        "counter",
        "Model swaps seen since the daemon started.",
    );
    for t in &status.targets {
        let _ = writeln!(
            o,
            "modelwatch_swaps_total{{target=\"{}\"}} {}",
            esc(&t.name),
            t.swaps
        );
    }
    family(
        o,
        "modelwatch_last_round_timestamp_seconds",
        "gauge",
        "When the target's last round ended.",
    );
    for t in &status.targets {
        if let Some(r) = &t.last_round {
            let _ = writeln!(
                o,
                "modelwatch_last_round_timestamp_seconds{{target=\"{}\"}} {}",
                esc(&t.name),
                r.ended_at_ms as f64 / 1000.0
            );
        }
    }
}

/// Prometheus float: `+Inf` for infinity.
fn fmt_f(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

/// A label value escaped for the Prometheus text exposition.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// The standard `process_*` families, read from `/proc/self` (nothing where it is missing).
fn render_process(o: &mut String) {
    let Some(p) = ProcessStats::read() else {
        return;
    };
    let families = [
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_memory_bytes.map(|v| v as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_memory_bytes.map(|v| v as f64),
        ),
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds.map(|v| v as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds.map(|v| v as f64),
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            p.threads.map(|v| v as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        if let Some(v) = value {
            family(o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        }
    }
}
