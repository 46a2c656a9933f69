use super::*;

fn pin(license: Option<&str>, approved_on: Option<&str>) -> Pin {
    Pin {
        model: "sha256:abc".into(),
        approved_by: Some("legal".into()),
        approved_on: approved_on.map(str::to_string),
        license_reviewed: false,
        license: license.map(str::to_string),
        license_sha256: None,
    }
}

fn evidence(license: Option<&str>) -> LicenseEvidence {
    match license {
        Some(l) => LicenseEvidence {
            license: Some(l.into()),
            source: "gguf".into(),
            ..LicenseEvidence::default()
        },
        None => LicenseEvidence::none("the server publishes no license"),
    }
}

fn policy() -> Policy {
    Policy {
        allowed_licenses: vec!["apache-2.0".into(), "mit".into()],
        review_after: Some(Duration::from_secs(180 * 86_400)),
    }
}

#[test]
fn dates_parse_to_midnight_utc_and_bad_ones_are_refused() {
    assert_eq!(parse_date("1970-01-01"), Some(0));
    assert_eq!(parse_date("2026-11-01"), Some(1_793_491_200_000));
    assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800_000));
    for bad in [
        "2023-02-29",
        "2026-13-01",
        "2026-1-01",
        "01/11/2026",
        "",
        "2026-11-31",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn the_tiers_follow_the_rules() {
    let now = parse_date("2026-12-01").unwrap();
    let p = policy();
    let t = |pin: Option<&Pin>, matches: Option<bool>, ev: Option<&LicenseEvidence>| {
        triage(
            &p,
            TriageInput {
                pin,
                pin_matches: matches,
                evidence: ev,
                now_ms: now,
            },
        )
    };
    let apache = evidence(Some("apache-2.0"));
    let gemma = evidence(Some("gemma"));
    let unknown = evidence(None);
    let good = pin(Some("apache-2.0"), Some("2026-10-01"));

    let safe = t(Some(&good), Some(true), Some(&apache));
    assert_eq!(safe.tier, Tier::Safe, "{safe:?}");
    assert_eq!(safe.review_age_days, Some(61));
    assert!(safe.reason().contains("apache-2.0"), "{}", safe.reason());

    let unpinned = t(None, Some(true), Some(&apache));
    assert_eq!(unpinned.tier, Tier::Watch);
    assert!(unpinned.reason().contains("unpinned"));

    let overdue = t(
        Some(&pin(Some("apache-2.0"), Some("2026-01-02"))),
        Some(true),
        Some(&apache),
    );
    assert_eq!(overdue.tier, Tier::Watch);
    assert!(
        overdue
            .reason()
            .contains("review overdue: approved 333 days ago"),
        "{}",
        overdue.reason()
    );

    let undated = t(
        Some(&pin(Some("apache-2.0"), None)),
        Some(true),
        Some(&apache),
    );
    assert_eq!(undated.tier, Tier::Watch);
    assert!(undated.reason().contains("no approved_on"));

    let unknown_terms = t(Some(&good), Some(true), Some(&unknown));
    assert_eq!(unknown_terms.tier, Tier::Watch);
    assert!(unknown_terms.reason().contains("terms unknown"));

    let no_license_in_pin = t(
        Some(&pin(None, Some("2026-10-01"))),
        Some(true),
        Some(&apache),
    );
    assert_eq!(no_license_in_pin.tier, Tier::Watch);
    let reviewed = Pin {
        license_reviewed: true,
        ..pin(None, Some("2026-10-01"))
    };
    assert_eq!(
        t(Some(&reviewed), Some(true), Some(&apache)).tier,
        Tier::Safe
    );

    // A managed API reviewed by hand: no evidence to read, nothing to check against.
    assert_eq!(
        t(Some(&reviewed), Some(true), Some(&unknown)).tier,
        Tier::Safe
    );

    let not_observed = t(Some(&good), None, None);
    assert_eq!(not_observed.tier, Tier::Watch);
    assert!(not_observed.reason().contains("not observed yet"));

    // Act: terms other than the approved or allowed ones, or another model.
    let swapped = t(Some(&good), Some(false), Some(&gemma));
    assert_eq!(swapped.tier, Tier::Act);
    let r = swapped.reason();
    assert!(r.contains("gemma is not in allowed_licenses"), "{r}");
    assert!(
        r.contains("serves license gemma, the pin approved apache-2.0"),
        "{r}"
    );
    assert!(r.contains("other than the pinned"), "{r}");
    let unpinned_disallowed = t(None, None, Some(&gemma));
    assert_eq!(unpinned_disallowed.tier, Tier::Act);
    assert!(unpinned_disallowed.reasons[0].contains("allowed_licenses"));

    // A new text under the approved identifier.
    let mut text_pin = good.clone();
    text_pin.license_sha256 = Some("a".repeat(64));
    let mut new_text = apache.clone();
    new_text.sha256 = Some("b".repeat(64));
    let changed = t(Some(&text_pin), Some(true), Some(&new_text));
    assert_eq!(changed.tier, Tier::Act);
    assert!(changed.reason().contains("text differs"));
    new_text.sha256 = Some("A".repeat(64));
    assert_eq!(
        t(Some(&text_pin), Some(true), Some(&new_text)).tier,
        Tier::Safe
    );

    // No policy: any identified license is acceptable, no review period.
    let open = triage(
        &Policy::default(),
        TriageInput {
            pin: Some(&pin(Some("gemma"), None)),
            pin_matches: Some(true),
            evidence: Some(&gemma),
            now_ms: now,
        },
    );
    assert_eq!(open.tier, Tier::Safe, "{open:?}");
}

const TARGET: &str = r#"
[[target]]
name = "t"
provider = "openai"
base_url = "http://h:1"
model = "m"
suites = ["core"]
"#;

fn parse(text: &str) -> Result<super::super::Config, Vec<crate::diag::Diagnostic>> {
    super::super::parse(
        crate::diag::Source::new("conf/modelwatch.toml", text),
        &|_: &str| None,
    )
}

#[test]
fn pins_with_terms_policy_and_evidence_paths_are_read() {
    let sha = "AB".repeat(32);
    let text = format!(
        "[policy]\nallowed_licenses = [\"Apache-2.0\", \"mit\"]\nreview_after = \"180d\"\n{TARGET}\
         model_file = \"models/smol.gguf\"\nmodel_dir = \"/srv/qwen\"\n\
         pin = {{ model = \"abc\", approved_by = \"legal\", approved_on = \"2026-11-01\", \
         license = \"Apache-2.0\", license_sha256 = \"{sha}\" }}\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.policy.allowed_licenses, vec!["apache-2.0", "mit"]);
    assert_eq!(
        c.policy.review_after,
        Some(Duration::from_secs(180 * 86_400))
    );
    let t = &c.targets[0];
    let pin = t.daemon.pin.as_ref().unwrap();
    assert_eq!(pin.license.as_deref(), Some("apache-2.0"));
    assert_eq!(
        pin.license_sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(
        t.license_files.model_file.as_deref(),
        Some(std::path::Path::new("conf/models/smol.gguf"))
    );
    assert_eq!(
        t.license_files.model_dir.as_deref(),
        Some(std::path::Path::new("/srv/qwen"))
    );
    // Absent: no restriction, no review period.
    let c = parse(TARGET).unwrap();
    assert_eq!(c.policy, Policy::default());
}

#[test]
fn bad_pin_and_policy_values_are_located_errors() {
    let text = format!(
        "[policy]\nallowed_licenses = [\"\"]\nreview_after = \"soon\"\nreviewers = 2\n{TARGET}\
         pin = {{ model = \"abc\", approved_on = \"01/11/2026\", license_sha256 = \"xyz\", licence = \"mit\" }}\n"
    );
    let diags = parse(&text).unwrap_err();
    let all = crate::diag::render_all(&diags);
    assert!(
        all.contains("empty license identifier in `allowed_licenses`"),
        "{all}"
    );
    assert!(all.contains("unknown key `reviewers` in [policy]"), "{all}");
    assert!(all.contains("review_after"), "{all}");
    assert!(
        all.contains("invalid `approved_on` `01/11/2026`: expected a date YYYY-MM-DD"),
        "{all}"
    );
    assert!(
        all.contains("invalid `license_sha256`: expected 64 hex digits"),
        "{all}"
    );
    assert!(all.contains("unknown key `licence`"), "{all}");
    let at: Vec<(usize, usize)> = diags.iter().map(|d| (d.line, d.column)).collect();
    assert!(at.contains(&(2, 21)), "{at:?}\n{all}");
    assert!(at.iter().any(|(l, c)| *l == 12 && *c > 1), "{at:?}\n{all}");
}
