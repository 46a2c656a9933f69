use super::target::check_url;
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_str(text: &str, env: Env<'_>) -> Result<Config, Vec<Diagnostic>> {
    parse(Source::new("conf/modelwatch.toml", text), env)
}

const MINIMAL: &str = r#"
[[target]]
name = "t"
provider = "ollama"
base_url = "http://h:1"
model = "m"
suites = ["core", "x/y.toml"]
"#;

fn holds_secrets(text: &str) -> bool {
    parse_partial(Source::new("c.toml", text), &no_env).holds_secrets
}

#[test]
fn only_secrets_written_in_clear_count_as_held_by_the_file() {
    assert!(!holds_secrets(MINIMAL));
    let key = MINIMAL.replace("suites", "api_key = \"sk-1\"\nsuites");
    assert!(holds_secrets(&key));
    let from_env = MINIMAL.replace("suites", "api_key = \"${KEY}\"\nsuites");
    assert!(!holds_secrets(&from_env));
    let header = MINIMAL.replace("suites", "headers = { X-Token = \"t0k\" }\nsuites");
    assert!(holds_secrets(&header));
    let slack = format!(
        "[alerts.webhook]\nurl = \"https://hooks.slack.com/services/T0/B0/abcdef\"\n{MINIMAL}"
    );
    assert!(holds_secrets(&slack));
    let plain = format!("[alerts.webhook]\nurl = \"https://hooks.example.com/mw\"\n{MINIMAL}");
    assert!(!holds_secrets(&plain));
    let header_env = MINIMAL.replace("suites", "headers = { X-Token = \"${T}\" }\nsuites");
    assert!(!holds_secrets(&header_env));
}

#[test]
fn exposure_warning_needs_secrets_and_group_or_other_bits() {
    let p = Path::new("/etc/modelwatch.toml");
    assert_eq!(exposure_warning(p, true, Some(0o100600)), None);
    assert_eq!(exposure_warning(p, true, Some(0o100400)), None);
    assert_eq!(exposure_warning(p, false, Some(0o100644)), None);
    assert_eq!(exposure_warning(p, true, None), None);
    let w = exposure_warning(p, true, Some(0o100640)).unwrap();
    assert!(w.contains("readable by group or others (mode 640)"), "{w}");
    assert!(w.contains("chmod 600 /etc/modelwatch.toml"), "{w}");
    assert!(exposure_warning(p, true, Some(0o100604)).is_some());
}

#[test]
fn defaults_and_relative_paths() {
    let c = parse_str(MINIMAL, &no_env).unwrap();
    assert_eq!(c.storage.path, Path::new("conf/modelwatch.db"));
    assert_eq!(c.storage.raw_text_retention, Duration::from_secs(7 * 86400));
    assert_eq!(c.storage.sample_retention, Duration::from_secs(90 * 86400));
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(c.probes_dir, Path::new("conf/probes"));
    let t = &c.targets[0];
    assert_eq!(t.api, Api::Chat);
    assert_eq!(t.interval, Duration::from_secs(600));
    assert_eq!(t.request_timeout, Duration::from_secs(120));
    assert_eq!(t.connect_timeout, Duration::from_secs(5));
    assert_eq!(t.first_byte_timeout, t.request_timeout);
    assert_eq!((t.retries, t.max_concurrency, t.stream), (2, 4, true));
    assert_eq!(t.max_response_bytes, 4 << 20);
    assert_eq!(t.samples, None);
    assert!(t.api_key.is_none() && t.headers.is_empty());
    let paths: Vec<&Path> = t.suites.iter().map(|s| s.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("conf/probes/core.toml"),
            Path::new("conf/x/y.toml")
        ]
    );
    assert_eq!(t.location.line, 2);
}

#[test]
fn margins_default_and_override_per_key() {
    let c = parse_str(MINIMAL, &no_env).unwrap();
    assert_eq!(c.margins, crate::drift::Margins::default());
    let text = format!(
        "{MINIMAL}\n[margins]\nrefusal_points = 0.05\nalpha = 0.01\nperformance_gates = true\nmax_length_flips = 3\n"
    );
    let c = parse_str(&text, &no_env).unwrap();
    assert_eq!(c.margins.refusal_points, 0.05);
    assert_eq!(c.margins.alpha, 0.01);
    assert!(c.margins.performance_gates);
    assert_eq!(c.margins.max_length_flips, 3);
    assert_eq!(
        c.margins.structured_points,
        crate::drift::Margins::default().structured_points
    );
}

#[test]
fn a_sensitivity_preset_sets_the_margins_and_keys_override_it() {
    let text =
        format!("{MINIMAL}\n[margins]\nsensitivity = \"coarse\"\ntask_failure_points = 0.04\n");
    let c = parse_str(&text, &no_env).unwrap();
    let mut coarse = crate::drift::Margins::default();
    Sensitivity::Coarse.apply(&mut coarse);
    assert_eq!(c.margins.structured_points, coarse.structured_points);
    assert_eq!(c.margins.task_failure_points, 0.04);
    let text = format!("{MINIMAL}\n[margins]\nsensitivity = \"medium\"\n");
    let all = crate::diag::render_all(&parse_str(&text, &no_env).unwrap_err());
    assert!(
        all.contains("expected one of coarse, default, fine"),
        "{all}"
    );
}

#[test]
fn bad_margins_are_located_errors() {
    let text = format!("{MINIMAL}\n[margins]\nrefusal_points = 2\nalpha = 1\nrefusal = 0.1\n");
    let diags = parse_str(&text, &no_env).unwrap_err();
    let all = crate::diag::render_all(&diags);
    assert_eq!(diags.len(), 3, "{all}");
    assert!(
        all.contains("`refusal_points` in [margins] must be a number from 0 to 1"),
        "{all}"
    );
    assert!(all.contains("2 percentage points is 0.02"), "{all}");
    assert!(
        all.contains("`alpha` in [margins] must be strictly between 0 and 1"),
        "{all}"
    );
    assert!(all.contains("unknown key `refusal` in [margins]"), "{all}");
    let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
    assert!(lines.contains(&10) && lines.contains(&11), "{all}");
}

#[test]
fn first_byte_timeout_follows_request_timeout() {
    let text = MINIMAL.replace("suites", "request_timeout = \"30s\"\nsuites");
    let c = parse_str(&text, &no_env).unwrap();
    assert_eq!(c.targets[0].first_byte_timeout, Duration::from_secs(30));
}

#[test]
fn env_is_expanded_in_string_values_only_after_parsing() {
    let env = |k: &str| (k == "HOST").then(|| "gpu1".to_owned());
    let text = MINIMAL
        .replace("http://h:1", "http://${HOST}:${PORT:-8080}/")
        .replace("\"m\"", "\"$${literal}\"");
    let c = parse_str(&text, &env).unwrap();
    assert_eq!(c.targets[0].base_url, "http://gpu1:8080");
    assert_eq!(c.targets[0].model, "${literal}");
}

#[test]
fn api_key_file_prefers_credentials_directory() {
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("k"), "sk-from-creds\n").unwrap();
    let dir = creds.path().display().to_string();
    let env = move |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| dir.clone());
    let text = MINIMAL.replace("suites", "api_key_file = \"k\"\nsuites");
    let c = parse_str(&text, &env).unwrap();
    assert_eq!(
        c.targets[0].api_key.as_ref().unwrap().expose(),
        "sk-from-creds"
    );
    // Without the variable, the same relative path is read next to the config: missing.
    let errs = parse_str(&text, &no_env).unwrap_err();
    assert!(errs[0].message.contains("conf/k"), "{}", errs[0]);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text = MINIMAL.replace(
        "suites",
        "api_key = \"sk-canary-77\"\nheaders = { X-Token = \"tok-canary-88\" }\nsuites",
    );
    let c = parse_str(&text, &no_env).unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("canary"), "{shown}");
    assert_eq!(c.targets[0].headers[0].1.expose(), "tok-canary-88");
}

#[test]
fn every_error_is_collected() {
    let text = r#"
[storage]
sample_retention = "forever"
[[target]]
name = "a"
provider = "x"
base_url = "ftp://h"
model = "m"
suites = ["core"]
interval = "1s"
"#;
    let errs = parse_str(text, &no_env).unwrap_err();
    let lines: Vec<usize> = errs.iter().map(|d| d.line).collect();
    assert_eq!(errs.len(), 4, "{}", crate::diag::render_all(&errs));
    for line in [3, 6, 7, 10] {
        assert!(lines.contains(&line), "{lines:?}");
    }
}

#[test]
fn target_overrides_apply_under_probe_settings() {
    let text = MINIMAL.replace(
        "suites",
        "samples = 7\nparams = { temperature = 0.1, seed = 3 }\nsuites",
    );
    let c = parse_str(&text, &no_env).unwrap();
    let t = &c.targets[0];
    let probe = GenParams {
        temperature: Some(0.9),
        ..GenParams::default()
    };
    let p = t.params_for(&probe);
    assert_eq!((p.temperature, p.seed), (Some(0.9), Some(3)));
    assert_eq!(t.samples_for(3), 7);
}

#[test]
fn urls() {
    assert!(check_url("http://127.0.0.1:11434").is_ok());
    assert!(check_url("HTTPS://api.example.com/v1/").is_ok());
    assert!(check_url("http://[::1]:8000").is_ok());
    assert!(check_url("http://user@host").is_ok());
    assert!(check_url("ftp://h").is_err());
    assert!(check_url("h:80").is_err());
    assert!(check_url("http://").is_err());
    assert!(check_url("http://h:x").is_err());
    assert!(check_url("http://h/a?b=1").is_err());
    assert!(check_url("http://h /").is_err());
}

#[test]
fn behaviour_checks_are_on_every_six_hours_can_be_slower_or_off_never_too_frequent() {
    let with = |v: &str| MINIMAL.replace("suites", &format!("behaviour_check = {v}\nsuites"));
    let every = |text: &str| {
        parse_str(text, &no_env).unwrap().targets[0]
            .daemon
            .behaviour_check
    };
    assert_eq!(every(MINIMAL), Some(Duration::from_secs(6 * 3600)));
    assert_eq!(every(&with("\"1d\"")), Some(Duration::from_secs(86_400)));
    assert_eq!(every(&with("\"off\"")), None);
    assert_eq!(every(&with("\"3h\"")), Some(Duration::from_secs(3 * 3600)));
    let err = parse_str(&with("\"2h\""), &no_env).unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("`behaviour_check` is shorter than 3h"),
        "{text}"
    );
}
