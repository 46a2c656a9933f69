//! The status page at `/` and `modelwatch report --since` in a real browser: a store with a
//! history (a swap, an alert with its evidence, a failed request), the real daemon serving it
//! beside the simulator, and headless Chromium (Debian's `chromium`) rendering both pages:
//! elements present, no console messages, screenshots of the expected size and not blank.

use crate::daemon_proc::{StoreDaemon, wait_until};
use modelwatch::sample::{ErrorKind, Measurements, Sample, SampleError};
use modelwatch::store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sample(target: &str, probe: &str, at: i64, refusal: bool, failed: bool) -> Sample {
    Sample {
        seed: None,
        target: target.into(),
        suite: "disk".into(),
        probe_id: probe.into(),
        probe_hash: format!("hash-{probe}"),
        index: 0,
        started_at_ms: at,
        latency_ms: 100.0,
        ttft_ms: None,
        attempts: 1,
        finish_reason: None,
        input_tokens: None,
        response_model: None,
        system_fingerprint: None,
        measurements: (!failed).then(|| Measurements {
            chars: if refusal { 40 } else { 400 },
            refusal,
            ..Measurements::default()
        }),
        error: failed.then(|| SampleError::new(ErrorKind::Timeout, "timed out")),
        text: Some("text".into()),
    }
}

/// Eight rounds of `sim0` in the last hour: the model is swapped at round 5, refusals climb
/// after it, an alert fires at round 7, one request fails in round 6.
fn seed_history(db: &Path) {
    let mut store = Store::open(db).unwrap();
    let start = modelwatch::time::now_ms() - 3_600_000;
    for r in 0..8i64 {
        let at = start + r * 300_000;
        let fp = if r < 4 {
            "aaaa000011112222"
        } else {
            "bbbb333344445555"
        };
        let round = store.begin_round("sim0", Some(fp), at).unwrap();
        let samples: Vec<Sample> = (0..10)
            .map(|i| {
                let refusal = r >= 4 && i < (r - 2) as usize;
                sample(
                    "sim0",
                    if i % 2 == 0 { "a" } else { "b" },
                    at + i as i64,
                    refusal,
                    r == 5 && i == 9,
                )
            })
            .collect();
        store.insert_samples(round, &samples).unwrap();
        // The monitor's refusal evidence climbs after the swap and crosses the threshold
        // (20) at round 7, where the alert fires.
        let log_e = if r < 4 { -0.2 } else { (r - 3) as f64 * 1.2 };
        store
            .record_readings(
                round,
                &[modelwatch::store::Reading {
                    metric: "refusal_rate".into(),
                    log_e_value: log_e,
                    threshold: 20.0,
                    current: Some(0.1),
                    samples: 10 * (r as u64 + 1),
                }],
            )
            .unwrap();
    }
    let payload = serde_json::json!({
        "kind": "firing",
        "key": {"target": "sim0", "metric": "refusal_rate"},
        "evidence": {"summary": "refusals 4% → 50%", "e_value": 8.1e6, "threshold": 20.0},
    });
    store
        .add_event("sim0", "alert", start + 6 * 300_000 + 5, &payload)
        .unwrap();
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

/// Renders `page` (a file) in headless Chromium: its DOM after loading, and a screenshot.
fn render(page: &Path, shot: &Path) -> String {
    let profile = page.with_extension("profile");
    let url = format!("file://{}", page.display());
    let run = |args: &[&str]| {
        Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(&url)
            .output()
            .expect("run chromium")
    };
    let out = run(&[
        "--window-size=1200,1400",
        &format!("--screenshot={}", shot.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 1400), "screenshot size");
    // A blank page of this size compresses to a few kilobytes; charts and tables do not.
    assert!(
        png.len() > 30_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );

    let out = run(&["--dump-dom"]);
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_page_and_time_report_render_in_headless_chromium() {
    let d = StoreDaemon::new(Path::new("m.db"), "Say hi.", 2);
    seed_history(&d.db);
    let (mut child, log) = d.start();
    wait_until("a round of each target", 60, || d.rounds() >= 2);
    let (code, page) = d.get("/");
    let (_, status) = d.get("/api/v1/status");
    // Each target links to its report over a longer window, served by the daemon too.
    let link = "/report?target=sim0&amp;since=7d";
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    let (report_code, served_report) = d.get(&link.replace("&amp;", "&"));
    let (unknown, _) = d.get("/report?target=nope");
    let (bad_window, _) = d.get("/report?target=sim0&since=soon");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{}", log.lock().unwrap());
    assert_eq!((report_code, unknown, bad_window), (200, 404, 400));
    assert!(served_report.contains("data-target=\"sim0\""));
    assert!(!served_report.contains("data-target=\"sim1\""));
    assert!(served_report.contains("<line class=\"swap\""));

    // The same data as the status API: every target with the fingerprint it serves.
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    for t in status["targets"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        assert!(page.contains(&format!("data-target=\"{name}\"")), "{name}");
        assert!(page.contains(t["fingerprint"].as_str().unwrap()), "{name}");
    }
    assert!(page.contains("<a href=\"/api/v1/status\">status JSON</a>"));
    assert!(!page.contains("<script"), "no scripts");
    assert!(!page.contains("https://"), "no external assets");

    let dir = d.dir.path();
    let file = dir.join("status.html");
    std::fs::write(&file, &page).unwrap();
    let dom = render(&file, &dir.join("status.png"));
    let sim0 = &dom[dom.find("data-target=\"sim0\"").unwrap()..];
    let sim0 = &sim0[..sim0.find("</section>").unwrap()];
    for needle in [
        "<svg class=\"chart\" data-metric=\"refusal_rate\"",
        "<svg class=\"chart\" data-metric=\"length_chars_median\"",
        "<svg class=\"chart\" data-metric=\"request_failures\"",
        "<line class=\"swap\"",
        "model swap: fingerprint aaaa000011112222 → bbbb333344445555",
        "<line class=\"alert\"",
        "refusals 4% → 50% (evidence 8.1 million of threshold 20.0)",
        "<svg class=\"evidence\" data-metric=\"refusal_rate\"",
        "<line class=\"threshold\"",
        "aria-label=\"evidence for Refusal rate per round\"",
    ] {
        assert!(sim0.contains(needle), "status page lacks {needle}");
    }
    // The seeded eight rounds and the daemon's own are charted, one point per round.
    let refusal = &sim0[sim0.find("data-metric=\"refusal_rate\" width").unwrap()..];
    let refusal = &refusal[..refusal.find("</svg>").unwrap()];
    assert!(refusal.matches("<circle").count() >= 9, "{refusal}");
    // The evidence chart: one point per seeded round (the daemon's rounds have no baseline
    // here), the last one past the threshold, as the alert says.
    let evidence = &sim0[sim0.find("<svg class=\"evidence\"").unwrap()..];
    let evidence = &evidence[..evidence.find("</svg>").unwrap()];
    assert_eq!(evidence.matches("<circle").count(), 8, "{evidence}");
    assert!(
        evidence.contains("evidence 121.5 of threshold 20.0 (n=80)"),
        "{evidence}"
    );

    let report = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args([
            "report", "--target", "sim0", "--since", "7d", "--format", "html", "-o",
        ])
        .arg(&report)
        .arg("--config")
        .arg(&d.cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = render(&report, &dir.join("report.png"));
    assert!(dom.contains("data-target=\"sim0\""));
    assert!(
        !dom.contains("data-target=\"sim1\""),
        "only the asked target"
    );
    assert!(dom.contains("<line class=\"swap\""));
    assert!(dom.contains("<line class=\"alert\""));
    assert!(dom.contains("Failed requests (availability)"));
    assert!(dom.contains("<svg class=\"evidence\" data-metric=\"refusal_rate\""));
}
