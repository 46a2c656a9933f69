//! The HTML report displays in a real browser: headless Chromium (Debian's `chromium`) renders
//! a regression report, takes a screenshot, and its DOM has the key elements.

use modelwatch::drift::{Margins, compare};
use modelwatch::report::html;
use modelwatch::sample::{FinishReason, Measurements, Sample};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sample(probe: usize, index: u32, refusal: bool, chars: u32) -> Sample {
    Sample {
        seed: None,
        target: "t".into(),
        suite: if probe.is_multiple_of(2) {
            "core"
        } else {
            "chat"
        }
        .into(),
        probe_id: format!("probe-{probe}"),
        probe_hash: format!("h{probe}"),
        index,
        started_at_ms: 0,
        latency_ms: 500.0 + f64::from(index),
        ttft_ms: None,
        attempts: 1,
        finish_reason: Some(FinishReason::Stop),
        input_tokens: None,
        response_model: None,
        system_fingerprint: None,
        measurements: Some(Measurements {
            chars,
            output_tokens: chars / 4,
            refusal,
            ..Measurements::default()
        }),
        error: None,
        text: Some(if refusal {
            "I can't help with <that> & \"this\".".into()
        } else {
            format!("An answer of {chars} characters")
        }),
    }
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

fn run(browser: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let mut base = Vec::new();
    let mut cand = Vec::new();
    for p in 0..10 {
        for i in 0..30u32 {
            base.push(sample(p, i, false, 300 + 7 * i + 40 * p as u32));
            cand.push(sample(
                p,
                i,
                p == 3 || i % 4 == 0,
                420 + 9 * i + 40 * p as u32,
            ));
        }
    }
    let report = compare(&base, &cand, &Margins::default());
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html(&report)).unwrap();
    let url = format!("file://{}", page.display());
    let browser = chromium();
    let profile = dir.path().join("profile");

    let shot = dir.path().join("shot.png");
    let out = run(
        &browser,
        &profile,
        &[
            "--window-size=1200,1800",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank page of this size compresses to a few kilobytes; charts and tables do not.
    assert!(
        png.len() > 30_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );

    let out = run(&browser, &profile, &["--dump-dom", &url]);
    assert!(out.status.success());
    let dom = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "data-verdict=\"regression\"",
        "<svg id=\"rates\"",
        "class=\"ecdf\" data-suite=\"chat\"",
        "class=\"ecdf\" data-suite=\"core\"",
        "<table id=\"flipped\">",
        "data-metric=\"refusal_rate\"",
        "data-metric=\"length_shape\"",
        "data-metric=\"behaviour\"",
        "<ul id=\"moved\">",
        "probe chat/probe-3: 0% → 100% (30 vs 30 samples)",
        "I can't help with &lt;that&gt; &amp; \"this\".",
    ] {
        assert!(dom.contains(needle), "rendered page lacks {needle}");
    }
    assert!(!dom.contains("<that>"), "excerpt text must stay escaped");
}
