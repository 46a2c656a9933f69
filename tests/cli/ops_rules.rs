//! The shipped alert rules behave as documented, checked by promtool's rule unit tests
//! (`ops/prometheus/modelwatch-rules.test.yml`): a dead target fires `ModelTargetDown` one
//! minute after its first failed round and `ModelServerUnavailable` after fifteen, and not
//! `ModelwatchNoRounds` (failed rounds are rounds); a daemon whose rounds stop fires
//! `ModelwatchNoRounds`; a quality alert and a critical `license_changed` each go to their own
//! rule, the license one with the daemon's severity.

#[test]
fn promtool_rule_tests_pass() {
    let out =
        crate::ops_files::promtool(&["test", "rules", "ops/prometheus/modelwatch-rules.test.yml"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rule_tests_cover_the_availability_quality_and_license_rules() {
    let tests = std::fs::read_to_string("ops/prometheus/modelwatch-rules.test.yml").unwrap();
    let rules = std::fs::read_to_string("ops/prometheus/modelwatch-rules.yml").unwrap();
    for alert in [
        "ModelTargetDown",
        "ModelServerUnavailable",
        "ModelwatchNoRounds",
        "ModelQualityRegression",
        "ModelLicenseChanged",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no promtool test"
        );
    }
}
