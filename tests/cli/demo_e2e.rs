//! `modelwatch demo` end to end, as a new user runs it: the binary, the real simulator on
//! 127.0.0.1, real SQLite; then the report it wrote, opened in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct DemoRun {
    dir: PathBuf,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// One demo run shared by the tests of this file (it takes a while in debug builds).
fn demo() -> &'static DemoRun {
    static RUN: OnceLock<DemoRun> = OnceLock::new();
    RUN.get_or_init(|| {
        // Under the target folder, not /tmp: it outlives the tests, for a look afterwards.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-e2e");
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["demo", "--seed", "7", "--dir"])
            .arg(&dir)
            .env_remove("MODELWATCH_CONFIG")
            .output()
            .expect("run modelwatch demo");
        DemoRun {
            dir,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
}

/// The `<tr data-metric="ID">` row of the HTML report.
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<tr data-metric=\"{id}\">"))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = html[start..]
        .find("</tr>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

#[test]
fn demo_detects_the_swap_and_writes_a_report_naming_the_regressed_metrics() {
    let run = demo();
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    // The live display: healthy rounds, the swap seen by fingerprint, then the detection.
    let swap = run
        .stderr
        .find("fingerprint swap seen")
        .expect("swap shown");
    let detected = run
        .stderr
        .find("REGRESSION detected")
        .expect("detection shown");
    assert!(swap < detected);
    assert!(run.stderr.contains("round  1 [healthy ]"), "{}", run.stderr);
    assert!(
        !run.stderr[..swap].contains("REGRESSION"),
        "false alarm before the swap"
    );
    assert!(run.stdout.contains("caught the degraded model after"));

    for f in [
        "modelwatch.toml",
        "modelwatch.db",
        "baselines/demo.json",
        "report.html",
    ] {
        assert!(
            run.dir.join(f).is_file(),
            "{f} missing in {}",
            run.dir.display()
        );
    }
    let report_line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .expect("report path printed");
    assert_eq!(
        Path::new(report_line),
        run.dir.canonicalize().unwrap().join("report.html")
    );

    let html = std::fs::read_to_string(run.dir.join("report.html")).unwrap();
    assert!(html.contains("data-verdict=\"regression\""));
    // The degraded profile refuses benign prompts and gets answers wrong: both must be named
    // as regressions.
    for id in ["refusal_rate", "task_failure_rate"] {
        let r = row(&html, id);
        assert!(
            r.contains("regression"),
            "{id} not marked as a regression: {r}"
        );
    }
    // The baseline file is a real baseline the other commands read.
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["baseline", "show"])
        .arg(run.dir.join("baselines/demo.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("headless Chromium is needed for this test: install Debian's `chromium` package");
}

#[test]
fn demo_report_opens_in_headless_chromium() {
    let run = demo();
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let page = run.dir.join("report.html");
    let profile = run.dir.join("chromium-profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "data-verdict=\"regression\"",
        "data-metric=\"refusal_rate\"",
        "data-metric=\"task_failure_rate\"",
        "<svg",
    ] {
        assert!(dom.contains(needle), "rendered page lacks {needle}");
    }
}

/// The control: without the swap, the same monitoring raises nothing (no false alarm), and the
/// demo says it did not detect anything.
#[test]
fn without_a_swap_the_demo_detects_nothing() {
    struct Log(std::sync::Mutex<Vec<String>>);
    impl modelwatch::demo::DemoProgress for Log {
        fn event(&self, e: &modelwatch::demo::Event) {
            self.0.lock().unwrap().push(format!("{e:?}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = modelwatch::demo::DemoOptions::new(dir.path().join("d"), 11);
    options.rounds_before_swap = 3;
    options.max_rounds_after_swap = 0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = Log(Default::default());
    let out = rt.block_on(modelwatch::demo::run(&options, &log)).unwrap();
    let log = log.0.into_inner().unwrap();
    assert!(!out.detected, "false alarm: {log:?}");
    assert!(out.regressed.is_empty());
    assert_ne!(out.verdict, modelwatch::drift::Verdict::Regression);
    let rounds = log.iter().filter(|e| e.starts_with("Round(")).count();
    assert_eq!(rounds, 3);
    assert!(!log.iter().any(|e| e.starts_with("SwapSeen")));
    assert!(out.report.is_file());
}
