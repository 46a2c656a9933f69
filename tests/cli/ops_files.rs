//! The shipped Prometheus rules and Grafana dashboard stay valid and only use metrics the daemon
//! exports: `promtool check rules` accepts the rules, and every `modelwatch_*` name they use is
//! one `/metrics` writes.

use std::collections::BTreeSet;
use std::process::Command;

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("modelwatch_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every metric family the daemon's exposition writes (the histogram's `_bucket` / `_count` /
/// `_sum` series included).
fn exported() -> BTreeSet<String> {
    let src = std::fs::read_to_string("src/daemon/metrics.rs").unwrap();
    let mut names = metric_names(&src);
    for base in names.clone() {
        for suffix in ["_bucket", "_count", "_sum"] {
            names.insert(format!("{base}{suffix}"));
        }
    }
    names
}

#[test]
fn rules_and_dashboard_use_only_exported_metrics() {
    let exported = exported();
    assert!(exported.contains("modelwatch_alert_firing"));
    for file in [
        "ops/prometheus/modelwatch-rules.yml",
        "ops/grafana/modelwatch-dashboard.json",
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no modelwatch metric");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses unknown metrics {unknown:?}"
        );
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("ops/grafana/modelwatch-dashboard.json").unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 6));
}

/// The families whose help text in `src/daemon/metrics.rs` begins "Deprecated": the name is
/// the last `modelwatch_*` string before that help.
fn deprecated() -> BTreeSet<String> {
    let src = std::fs::read_to_string("src/daemon/metrics.rs").unwrap();
    let mut out = BTreeSet::new();
    for (at, _) in src.match_indices("\"Deprecated") {
        let before = &src[..at];
        let name = before.rfind("\"modelwatch_").map(|i| {
            let rest = &before[i + 1..];
            rest[..rest.find('"').unwrap()].to_string()
        });
        out.extend(name);
    }
    out
}

#[test]
fn rules_and_dashboard_use_no_deprecated_family() {
    let old = deprecated();
    for name in [
        "modelwatch_metric_value",
        "modelwatch_round_metric_value",
        "modelwatch_request_duration_seconds",
    ] {
        assert!(old.contains(name), "{name} not found deprecated: {old:?}");
    }
    for file in [
        "ops/prometheus/modelwatch-rules.yml",
        "ops/grafana/modelwatch-dashboard.json",
    ] {
        let used = metric_names(&std::fs::read_to_string(file).unwrap());
        for name in &old {
            for series in ["", "_bucket", "_count", "_sum"] {
                let series = format!("{name}{series}");
                assert!(!used.contains(&series), "{file} still uses {series}");
            }
        }
    }
    let dashboard = std::fs::read_to_string("ops/grafana/modelwatch-dashboard.json").unwrap();
    assert!(dashboard.contains("modelwatch_quality_ratio"));
    assert!(dashboard.contains("modelwatch_response_length_chars_bucket"));
}

/// `promtool` with `args`; a missing promtool fails the test (a skip would read as a pass).
pub fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool cannot run ({e}): run scripts/test-deps.sh (scripts/test does)")
        })
}

#[test]
fn promtool_accepts_the_rules_and_the_scrape_config() {
    let out = promtool(&["check", "rules", "ops/prometheus/modelwatch-rules.yml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("promtool")
        .args(["check", "config", "ops/prometheus/scrape.yml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
