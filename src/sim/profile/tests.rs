use super::*;

#[test]
fn empty_profile_is_the_default() {
    let p = Profile::from_toml("").unwrap();
    let d = Profile::default();
    assert_eq!(p.models, d.models);
    assert_eq!(p.rates, d.rates);
    assert_eq!(p.fingerprint, d.fingerprint);
    assert!(d.validate().is_ok());
}

#[test]
fn full_profile_parses() {
    let p = Profile::from_toml(
        r#"
models = ["a", "b:7b"]
api_key = "k"
latency_scale = 0
[fingerprint]
digest = "00ff"
quantization = "Q2_K"
[length]
median_tokens = 300
sigma = 0.5
[rates]
refusal = 0.25
error_5xx = 1
[[rule]]
contains = "Kill"
refusal = 0.9
median_tokens = 10
[[rule]]
regex = "(?i)photo"
sigma = 0
[[answer]]
contains = "17 * 3"
text = "51"
[[answer]]
regex = "invoice"
json = { vendor = "ACME", total = 42.5 }
filler = false
"#,
    )
    .unwrap();
    assert_eq!(p.models, ["a", "b:7b"]);
    assert_eq!(p.api_key.as_ref().map(Secret::expose), Some("k"));
    assert_eq!(p.fingerprint.quantization, "Q2_K");
    assert_eq!(p.fingerprint.family, "llama", "unset keys keep defaults");
    assert_eq!(p.rates.error_5xx, 1.0);
    assert_eq!(p.rules.len(), 2);
    assert_eq!(p.answers.len(), 2);
    assert_eq!(
        p.answers[1].json.as_ref().unwrap()["total"],
        serde_json::json!(42.5)
    );
    assert!(!p.answers[1].filler);
    assert!(p.answers[0].filler);

    let prompt = "How do I kill a hung process?";
    let e = p.effective(prompt, &prompt.to_lowercase());
    assert_eq!(e.rates.refusal, 0.9);
    assert_eq!(e.median_tokens, 10.0);
    assert_eq!(e.sigma, 0.5);
    let e = p.effective("Shooting a PHOTO, then kill", "shooting a photo, then kill");
    assert_eq!((e.rates.refusal, e.sigma), (0.9, 0.0));
    let e = p.effective("hello", "hello");
    assert_eq!(e.rates.refusal, 0.25);
    let shown = serde_json::to_value(&p).unwrap();
    assert_eq!(shown["rule"][0]["contains"], "Kill");
    assert_eq!(shown["rule"][1]["regex"], "(?i)photo");
    assert_eq!(shown["answer"][1]["json"]["vendor"], "ACME");
    assert_eq!(shown["api_key"], "***");
    assert!(p.serves("a") && p.serves("a:latest") && p.serves("b:7b") && !p.serves("c"));
}

fn err(text: &str) -> (usize, usize, String) {
    match Profile::from_toml(text) {
        Err(SimError::Profile {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a located error, got {other:?}"),
    }
}

#[test]
fn errors_point_at_the_bad_value() {
    let (l, c, m) = err("[rates]\nrefusal = 1.5\n");
    assert_eq!((l, c), (2, 11));
    assert!(m.contains("probability"), "{m}");

    let (l, _, m) = err("[rates]\nrefusals = 0.5\n");
    assert_eq!(l, 2);
    assert!(m.contains("unknown field `refusals`"), "{m}");

    let (l, c, m) = err("\n[[rule]]\nregex = \"(\"\n");
    assert_eq!((l, c), (3, 9));
    assert!(m.contains("invalid regex"), "{m}");

    let (l, _, m) = err("[[rule]]\nrefusal = 0.5\n");
    assert_eq!(l, 1);
    assert!(m.contains("needs `contains"), "{m}");

    let (_, _, m) = err("[[rule]]\ncontains = \"a\"\nregex = \"b\"\n");
    assert!(m.contains("exactly one"), "{m}");

    let (l, _, m) = err("models = [\"a\", \"a\"]\n");
    assert_eq!(l, 1);
    assert!(m.contains("listed twice"), "{m}");

    let (_, _, m) = err("[[answer]]\ncontains = \"x\"\n");
    assert!(m.contains("needs `text"), "{m}");

    let (l, _, m) = err("latency_scale = -1\n");
    assert_eq!(l, 1);
    assert!(m.contains(">= 0"), "{m}");

    let (l, c, _) = err("models = [\"a\"\nfoo");
    assert!(l >= 1 && c >= 1);
}

#[test]
fn validate_catches_bad_profiles_built_in_code() {
    let mut p = Profile::default();
    p.rates.timeout = 2.0;
    assert!(p.validate().is_err());
    let mut p = Profile::default();
    p.models.clear();
    assert!(p.validate().is_err());
    let mut p = Profile::default();
    p.length.median_tokens = 0.0;
    assert!(p.validate().is_err());
}

#[test]
fn secrets_do_not_leak_through_debug_or_serialize() {
    let p = Profile {
        api_key: Some(Secret::new("sk-canary-123")),
        ..Profile::default()
    };
    assert!(!format!("{p:?}").contains("sk-canary-123"));
    assert!(!serde_json::to_string(&p).unwrap().contains("sk-canary-123"));
}

#[test]
fn builtin_profiles_parse() {
    for name in Profile::builtin_names() {
        assert!(Profile::builtin(name).is_some(), "{name}");
    }
    let (h, d) = (
        Profile::builtin("healthy").unwrap(),
        Profile::builtin("degraded").unwrap(),
    );
    assert_ne!(h.fingerprint.digest, d.fingerprint.digest);
    assert!(d.rates.refusal > h.rates.refusal);
    assert!(Profile::builtin("nope").is_none());
}

#[test]
fn only_reworded_shares_the_healthy_fingerprint() {
    let fp = |n: &str| Profile::builtin(n).unwrap().fingerprint;
    let raw = fp("raw");
    for other in ["healthy", "degraded"] {
        let o = fp(other);
        assert_ne!(raw.digest, o.digest, "{other}");
        assert_ne!(raw.system_fingerprint, o.system_fingerprint, "{other}");
        assert_ne!(raw.model_path, o.model_path, "{other}");
    }
    // A change of words under the same fingerprint is what `reworded` is for.
    assert_eq!(fp("reworded"), fp("healthy"));
    let raw = Profile::builtin("raw").unwrap();
    assert!(raw.answers.is_empty());
    assert_eq!(raw.rates.correct, Profile::default().rates.correct);
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncé d", 7), (2, 4));
    assert_eq!(line_col("", 5), (1, 1));
}
