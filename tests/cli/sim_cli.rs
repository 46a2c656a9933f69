//! The `modelwatch sim` binary: prints its address, answers, reloads on SIGHUP, stops on
//! SIGTERM, and rejects a bad profile file with its location.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sim {
    child: Child,
    url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("modelwatch sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "port 0 resolved to a real port");
    Sim { child, url }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

async fn tags_digest(c: &reqwest::Client, url: &str) -> String {
    let v: serde_json::Value = c
        .get(format!("{url}/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["models"][0]["digest"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn prints_its_address_answers_reloads_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        "latency_scale = 0\n[fingerprint]\ndigest = \"aaaa\"\n",
    )
    .unwrap();
    let mut sim = start(&[
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "5",
        "--profile",
        profile.to_str().unwrap(),
    ]);
    let c = reqwest::Client::new();
    let body =
        serde_json::json!({"model": "sim-7b", "messages": [{"role": "user", "content": "hi"}]});
    let r = c
        .post(format!("{}/v1/chat/completions", sim.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(tags_digest(&c, &sim.url).await, "aaaa");

    // A broken file on SIGHUP keeps the old profile; a good one swaps.
    std::fs::write(&profile, "[rates]\nrefusal = 7\n").unwrap();
    signal(&sim.child, "-HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tags_digest(&c, &sim.url).await, "aaaa");
    std::fs::write(
        &profile,
        "latency_scale = 0\n[fingerprint]\ndigest = \"bbbb\"\n",
    )
    .unwrap();
    signal(&sim.child, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while tags_digest(&c, &sim.url).await != "bbbb" {
        assert!(Instant::now() < deadline, "SIGHUP reloads the profile");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    signal(&sim.child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = sim.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "SIGTERM stops the simulator");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_bad_profile_file_is_a_usage_error_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.toml");
    std::fs::write(&profile, "models = [\"a\"]\n[rates]\nrefusal = 1.5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["sim", "--listen", "127.0.0.1:0", "--profile"])
        .arg(&profile)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("line 3, column 11"), "{err}");
    assert!(err.contains("probability"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn serves_a_builtin_profile_by_name() {
    let sim = start(&["--listen", "127.0.0.1:0", "--profile", "degraded"]);
    let c = reqwest::Client::new();
    let expected = modelwatch::sim::Profile::builtin("degraded").unwrap();
    assert_eq!(tags_digest(&c, &sim.url).await, expected.fingerprint.digest);
}

#[test]
fn the_example_profiles_are_valid() {
    for name in ["healthy", "degraded"] {
        let path = format!("{}/sim/profiles/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = modelwatch::sim::Profile::from_toml(&text) {
            panic!("{path}: {e}");
        }
    }
}

/// The fingerprint digest of the model the simulator at `url` serves.
async fn served_digest(url: &str) -> String {
    tags_digest(&reqwest::Client::new(), url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_sim_is_the_healthy_model_and_passes_the_starter_suites() {
    let plain = start(&["--listen", "127.0.0.1:0", "--seed", "3"]);
    let healthy = start(&["--listen", "127.0.0.1:0", "--profile", "healthy"]);
    let raw = start(&["--listen", "127.0.0.1:0", "--profile", "raw"]);
    let digest = served_digest(&plain.url).await;
    assert_eq!(digest, served_digest(&healthy.url).await);
    assert_ne!(
        digest,
        served_digest(&raw.url).await,
        "raw has its own fingerprint"
    );

    // One round of every starter suite against plain `sim`: healthy figures.
    let dir = tempfile::tempdir().unwrap();
    let probes = std::fs::canonicalize("probes").unwrap();
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(
        &config,
        format!(
            "probes_dir = {:?}\n[storage]\npath = {:?}\n[[target]]\nname = \"sim\"\n\
             provider = \"ollama\"\nbase_url = \"{}\"\nmodel = \"sim-7b\"\n\
             suites = [\"core\", \"json\", \"tasks\", \"format\", \"multilingual\"]\nsamples = 2\n",
            probes.display().to_string(),
            dir.path().join("m.db").display().to_string(),
            plain.url
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = &v["targets"][0]["total"];
    assert_eq!(total["errors"], 0, "{total:#}");
    let rate = |f: &serde_json::Value| f.as_f64().unwrap_or_else(|| panic!("{total:#}"));
    assert!(rate(&total["task"]["failure_rate"]) <= 0.1, "{total:#}");
    assert!(
        rate(&total["structured"]["failure_rate"]) <= 0.1,
        "{total:#}"
    );
    assert!(rate(&total["refusal_rate"]) <= 0.1, "{total:#}");
}
