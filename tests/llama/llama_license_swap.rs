//! License drift on a real llama.cpp server: the daemon watches an alias served from the
//! Gemma 3 270M file (`general.license = gemma`, pinned and allowed: *safe*), then the server
//! is restarted from the SmolLM2-135M-Instruct file (`apache-2.0`) behind the same alias and
//! port. The daemon reads each file's GGUF header through `/props` `model_path`, reports the
//! swap, fires a critical `license_changed` (apache-2.0 is not in this policy's allowed list)
//! and turns the tier to *act*; `inventory` shows both states.

use crate::llama_support::{
    ALIAS, Daemon, Llama, Target, firing, free_port, http_get, installed, installed_second,
    modelwatch, serial, target_status, write_config,
};

fn inventory_row(config: &std::path::Path) -> serde_json::Value {
    let out = modelwatch(config, &["inventory", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()[0].clone()
}

#[test]
#[ignore = "needs llama-server and both model files (scripts/llama/install.sh)"]
fn restarting_from_gemma_to_smollm2_reports_swap_license_change_and_tier_change() {
    let _serial = serial();
    let Some((bin, gemma)) = installed() else {
        return;
    };
    let Some(smol) = installed_second() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, daemon_port) = (free_port(), free_port());
    let mut server = Llama::start(&bin, &gemma, port, ALIAS, &[], dir.path());
    // Pin the Gemma file as llama.cpp identifies it: file name and type from /props.
    let (_, props) = http_get(port, "/props").expect("/props answers");
    let props: serde_json::Value = serde_json::from_str(&props).unwrap();
    let file = gemma.file_name().unwrap().to_string_lossy().into_owned();
    let digest = format!("{file} ({})", props["model_ftype"].as_str().unwrap());
    let url = server.url();
    let mut target = Target::new("edge", &url);
    target.samples = Some(1);
    let config = write_config(dir.path(), &[target], Some(daemon_port));
    let today = &modelwatch::time::rfc3339_utc(modelwatch::time::now_ms())[..10];
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[target.pin]\nmodel = {digest:?}\napproved_by = \"legal\"\napproved_on = \"{today}\"\n\
         license = \"gemma\"\n\n[policy]\nallowed_licenses = [\"gemma\"]\nreview_after = \"180d\"\n"
    ));
    std::fs::write(&config, text).unwrap();

    let daemon = Daemon::start(&config, daemon_port);
    let before = daemon.wait_until("a round with license evidence", 300, |s| {
        s.is_some_and(|s| target_status(s, "edge")["license"]["license"] == "gemma")
    });
    let t = target_status(&before, "edge");
    assert_eq!(t["license"]["source"], "gguf", "{t}");
    assert_eq!(t["tier"], "safe", "{t}");
    assert_eq!(t["pin"]["matches"], true, "{t}");
    let row = inventory_row(&config);
    assert_eq!(
        (&row["license"], &row["tier"], &row["pin_status"]),
        (&"gemma".into(), &"safe".into(), &"approved".into()),
        "{row}"
    );
    assert!(
        row["license_source"].as_str().unwrap().ends_with(&file),
        "{row}"
    );

    // The same alias on the same port, now from the SmolLM2 file.
    server.kill();
    let server = Llama::start(&bin, &smol, port, ALIAS, &[], dir.path());
    let after = daemon.wait_until("license_changed firing after the swap", 300, |s| {
        s.is_some_and(|s| firing(s, "edge").iter().any(|m| m == "license_changed"))
    });
    let t = target_status(&after, "edge");
    assert!(t["swaps"].as_u64().unwrap() >= 1, "{t}");
    assert_eq!(t["license"]["license"], "apache-2.0", "{t}");
    assert_eq!(t["license"]["source"], "gguf", "{t}");
    assert_eq!(t["tier"], "act", "{t}");
    let reasons = t["tier_reasons"].to_string();
    assert!(
        reasons.contains("apache-2.0 is not in allowed_licenses"),
        "{reasons}"
    );
    assert!(reasons.contains("the pin approved gemma"), "{reasons}");
    let alert = after["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"]["metric"] == "license_changed")
        .unwrap();
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert!(
        alert["evidence"]["summary"]
            .as_str()
            .unwrap()
            .contains("license gemma → apache-2.0"),
        "{alert}"
    );
    let row = inventory_row(&config);
    assert_eq!(
        (&row["license"], &row["tier"], &row["pin_status"]),
        (&"apache-2.0".into(), &"act".into(), &"unapproved".into()),
        "{row}"
    );
    let log = daemon.log_text();
    assert!(log.contains("license_changed"), "{log}");
    assert_eq!(daemon.stop(), Some(0));
    drop(server);
}
