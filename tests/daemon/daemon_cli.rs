//! `baseline promote`, `inventory` and `silence` through the binary, on a store filled by
//! `modelwatch run` against the simulator.

use modelwatch::sim::{self, Profile};
use std::process::{Command, Output};

fn mw(args: &[&str], cfg: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn promote_inventory_and_silence() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(async {
        sim::spawn_on_free_port(Profile::builtin("healthy").unwrap(), 5).unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let probes = std::fs::canonicalize("probes").unwrap();
    let dir_probes = probes.clone();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"probes_dir = {probes:?}
[[target]]
name = "sim"
provider = "ollama"
base_url = "{url}"
model = "sim-7b"
suites = ["core", "json"]
samples = 1
baseline = "baselines/sim.json"
pin = {{ model = "sha256:0000", approved_by = "ops", approved_on = "2026-11-01", license_reviewed = true }}

[[target]]
name = "idle"
provider = "openai"
base_url = "{url}"
model = "sim-7b"
suites = ["core"]
"#,
            probes = probes.display().to_string(),
            url = sim.base_url()
        ),
    )
    .unwrap();

    // Before any round: nothing to promote.
    let out = mw(&["baseline", "promote", "--target", "sim"], &cfg);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no fingerprint stored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for _ in 0..2 {
        let out = mw(&["run", "--target", "sim"], &cfg);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = mw(&["baseline", "promote", "--target", "sim"], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let baseline = dir.path().join("baselines/sim.json");
    let b = modelwatch::baseline::Baseline::load(&baseline).unwrap();
    // Two rounds of every probe of the target's suites, one sample each, renumbered per probe.
    let probes: usize = ["core", "json"]
        .iter()
        .map(|s| {
            modelwatch::probe::load::load_suite(&dir_probes.join(format!("{s}.toml")))
                .unwrap()
                .probes
                .len()
        })
        .sum();
    assert_eq!(b.counts().0, 2 * probes);
    assert!(
        b.probes
            .values()
            .all(|p| p.samples.iter().map(|s| s.index).eq(0..2))
    );
    // Without --rounds, promote asks for as many rounds as 80 samples per probe take, as
    // `baseline record` records: 80 rounds of `samples = 1`, 27 of the suites' 3.
    let loaded = modelwatch::config::load_with_suites(&cfg, &|_: &str| None).expect("config loads");
    let rounds = |t| modelwatch::daemon::promote::default_rounds(&loaded, t).unwrap();
    assert_eq!((rounds("sim"), rounds("idle")), (80, 27));

    let out = mw(&["inventory", "--format", "json"], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sim_row = &rows[0];
    assert_eq!(sim_row["target"], "sim");
    assert_eq!(sim_row["pin_status"], "unapproved");
    assert_eq!(sim_row["approved_by"], "ops");
    assert_eq!(sim_row["verdict"], "unapproved");
    assert_eq!(sim_row["baseline_matches_served"], true);
    assert!(sim_row["fingerprint"].is_string());
    let idle = &rows[1];
    assert_eq!(idle["pin_status"], "unpinned");
    assert_eq!(idle["verdict"], "no_baseline");
    assert!(idle["fingerprint"].is_null());
    let text = mw(&["inventory"], &cfg);
    assert!(String::from_utf8_lossy(&text.stdout).contains("unapproved"));

    let out = mw(
        &[
            "silence", "--target", "sim", "--for", "2h", "--reason", "upgrade",
        ],
        &cfg,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = modelwatch::store::Store::open(dir.path().join("modelwatch.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let active = store.active_silences(now).unwrap();
    assert_eq!(active.len(), 1);
    assert!(active[0].until_ms - now > 7_100_000 && active[0].until_ms - now <= 7_200_000);
    let bad = mw(&["silence", "--target", "sim", "--for", "soon"], &cfg);
    assert_eq!(bad.status.code(), Some(2));
    let unknown = mw(&["silence", "--target", "nope", "--for", "1h"], &cfg);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn a_silence_under_the_deprecated_task_success_name_silences_task_failures() {
    let dir = tempfile::tempdir().unwrap();
    let probes = std::fs::canonicalize("probes").unwrap();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "probes_dir = {:?}\n[[target]]\nname = \"sim\"\nprovider = \"ollama\"\n\
             base_url = \"http://127.0.0.1:9\"\nmodel = \"sim-7b\"\nsuites = [\"tasks\"]\n",
            probes.display().to_string()
        ),
    )
    .unwrap();
    let out = mw(
        &[
            "silence",
            "--target",
            "sim",
            "--metric",
            "task_success_rate",
            "--for",
            "1h",
        ],
        &cfg,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = modelwatch::store::Store::open(dir.path().join("modelwatch.db")).unwrap();
    let active = store.active_silences(0).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].metric.as_deref(), Some("task_failure_rate"));
    let unknown = mw(
        &[
            "silence",
            "--target",
            "sim",
            "--metric",
            "task_rate",
            "--for",
            "1h",
        ],
        &cfg,
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("task_failure_rate"));
}
