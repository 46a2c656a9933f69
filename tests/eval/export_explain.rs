//! From stored responses to `explain`: `run` against the simulator into a real store, `export`
//! a target's probe as JSONL, and `explain` reads it as is with the configuration's suites and
//! the probe ids in the form `run` prints them.

use modelwatch::sim::{self, Profile};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn modelwatch(cfg: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .arg("-c")
        .arg(cfg)
        .env_remove("MODELWATCH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exported_responses_explain_as_is_with_the_configured_suites() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(async {
        let mut p = Profile::builtin("healthy").unwrap();
        p.latency_scale = 0.0;
        sim::spawn_on_free_port(p, 3).unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let probes = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "probes_dir = {:?}\n[storage]\npath = {:?}\n[[target]]\nname = \"local\"\n\
             provider = \"ollama\"\nbase_url = \"{}\"\nmodel = \"sim-7b\"\nsuites = [\"json\"]\n",
            probes.display().to_string(),
            dir.path().join("m.db").display().to_string(),
            sim.base_url()
        ),
    )
    .unwrap();
    let out = modelwatch(&cfg, &["run", "--samples", "3"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = modelwatch(
        &cfg,
        &[
            "export",
            "--target",
            "local",
            "--probe",
            "json/meeting-date",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exported 3 responses"),
        "{}",
        text(&out.stderr)
    );
    let exported = out.stdout;
    let lines: Vec<Value> = text(&exported)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["probe"], "json/meeting-date");
        assert_eq!(l["target"], "local");
        assert_eq!(l["round"], 1);
        assert_eq!(l["sample"], i);
        assert_eq!(l["fingerprint"].as_str().unwrap().len(), 16);
        assert!(!l["text"].as_str().unwrap().is_empty(), "{l}");
        assert!(l["started_at"].as_str().unwrap().ends_with('Z'));
    }

    // No --suite: the configuration's suites judge the lines, schema and task included.
    let out = modelwatch(
        &cfg,
        &["explain", "--responses", "-", "--format", "json"],
        Some(&exported),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let explained: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(explained.len(), 3);
    for e in &explained {
        assert_eq!(e["probe"], "json/meeting-date");
        assert!(e["why"]["structured"].is_object(), "{e}");
        assert_eq!(e["why"]["task"]["kind"], "json_equals", "{e}");
    }
    let out = modelwatch(&cfg, &["explain", "--responses", "-"], Some(&exported));
    let shown = text(&out.stdout);
    assert!(shown.contains("line 1  probe json/meeting-date"), "{shown}");
    assert!(shown.contains("  structured  "), "{shown}");
    assert!(shown.contains("json_equals"), "{shown}");

    // The bare id works while no other suite has a probe of that name.
    let bare = text(&exported).replace("\"json/meeting-date\"", "\"meeting-date\"");
    let out = modelwatch(
        &cfg,
        &["explain", "--responses", "-"],
        Some(bare.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // An unknown probe is named with some of the ones that exist (a bounded list), and a
    // near miss with its correction.
    for (wrong, said) in [
        (
            "json/nope",
            &[
                "unknown probe 'json/nope'; suite 'json' has: invoice-json,",
                " more); line skipped",
            ][..],
        ),
        (
            "json/meeting-dat",
            &["(did you mean 'json/meeting-date'?)"][..],
        ),
    ] {
        let input = text(&exported).replace("json/meeting-date", wrong);
        let out = modelwatch(
            &cfg,
            &["explain", "--responses", "-"],
            Some(input.as_bytes()),
        );
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(said.iter().all(|s| err.contains(s)), "{err}");
    }

    // Narrowing to nothing says so.
    let out = modelwatch(&cfg, &["export", "--round", "999"], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("nothing matched"),
        "{}",
        text(&out.stderr)
    );
}
