//! The fault matrix: every way a model server can misbehave, for both providers, streaming and
//! not, in repeated trials, through the real round runner and evaluation. Each round samples a
//! healthy probe and a probe whose requests the server spoils; for every trial the spoiled
//! samples carry the right error kind and no measurements, the healthy probe's quality figures
//! are exactly those of a clean round (no quality metric moves), nothing panics, the redirect
//! target sees nothing, and a 100 MB body leaves the process RSS within a few MB.

mod provider_common;

use futures_util::future::join_all;
use modelwatch::eval::{CompiledChecks, Evaluator, RefusalConfig};
use modelwatch::probe::{Expect, GenParams, Location, Probe, ProbeInput};
use modelwatch::provider::{ClientConfig, ModelClient, ProviderKind, build_client};
use modelwatch::report::summary::{Figures, summarize};
use modelwatch::runner::{self, RoundOptions, SystemClock};
use modelwatch::sample::{Completion, ErrorKind, Measurements, Sample};
use modelwatch::sim::{self, Profile};
use provider_common::{Recorded, Reply, Server, Step, Then, chunked, config, hang, respond};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const TRIALS: usize = 5;
const SAMPLES: u32 = 2;
/// The marker in the prompt of the probe whose requests the server spoils.
const FAULTY: &str = "FAULTY";
const ANSWER: &str = "{\"capital\": \"Paris\", \"country\": \"France\"}";

fn probe(id: &str, prompt: &str, seed: u64) -> Arc<Probe> {
    Arc::new(Probe {
        id: id.into(),
        suite: "matrix".into(),
        description: None,
        input: ProbeInput::Prompt(prompt.into()),
        params: GenParams {
            seed: Some(seed),
            max_tokens: Some(200),
            ..GenParams::default()
        },
        samples: SAMPLES,
        tags: vec![],
        expect: Expect {
            json: true,
            refusal: Some(false),
            ..Expect::default()
        },
        location: Location::default(),
        hash: format!("hash-{id}"),
    })
}

fn probes() -> Vec<Arc<Probe>> {
    vec![
        probe(
            "healthy",
            "Answer in JSON: what is the capital of France?",
            7,
        ),
        probe(
            "spoiled",
            &format!("{FAULTY} answer in JSON: name a colour."),
            11,
        ),
    ]
}

/// Runs one round through the real runner and evaluation.
async fn round(client: &dyn ModelClient, stream: bool) -> Vec<Sample> {
    round_with(client, stream, 4).await
}

async fn round_with(client: &dyn ModelClient, stream: bool, concurrency: usize) -> Vec<Sample> {
    let probes = probes();
    // Compiled once: the lexicon is costly to build in debug builds.
    static EVALUATOR: OnceLock<Evaluator> = OnceLock::new();
    let evaluator = EVALUATOR.get_or_init(|| Evaluator::new(&RefusalConfig::default()).unwrap());
    let checks: Vec<(String, CompiledChecks)> = probes
        .iter()
        .map(|p| {
            (
                p.hash.clone(),
                CompiledChecks::compile(&p.expect, Path::new(".")).unwrap(),
            )
        })
        .collect();
    let evaluate = |p: &Probe, c: &Completion| -> Measurements {
        let compiled = checks.iter().find(|(h, _)| *h == p.hash).map(|(_, c)| c);
        evaluator.evaluate(c, compiled)
    };
    let options = RoundOptions {
        target: "t".into(),
        concurrency,
        stream,
        samples_override: None,
        keep_text: false,
    };
    runner::run_round(client, &probes, &options, &evaluate, &SystemClock)
        .await
        .samples
}

/// The quality side of a summary: everything but timing and error counts.
fn quality(f: &Figures) -> String {
    serde_json::to_string(&json!({
        "measured": f.measured,
        "chars": f.chars,
        "output_tokens": f.output_tokens,
        "finish_reasons": f.finish_reasons,
        "refusal_rate": f.refusal_rate,
        "empty_rate": f.empty_rate,
        "truncation_rate": f.truncation_rate,
        "structured": f.structured,
        "task": f.task,
    }))
    .unwrap()
}

/// Figures of the probe `id` in a round's summary.
fn probe_figures(samples: &[Sample], id: &str) -> Figures {
    let s = summarize(samples);
    s.targets[0]
        .probes
        .iter()
        .find(|p| p.probe == id)
        .map(|p| p.figures.clone())
        .unwrap_or_else(|| panic!("no probe {id} in summary"))
}

/// Checks one faulty round against the clean reference: spoiled samples are errors of `kind`
/// with nothing measured; the healthy probe and the pooled total measure exactly what a clean
/// round measures.
fn check_round(label: &str, samples: &[Sample], clean: &[Sample], kind: ErrorKind, all: bool) {
    assert_eq!(samples.len(), 2 * SAMPLES as usize, "{label}");
    for s in samples {
        let spoiled = all || s.probe_id == "spoiled";
        if spoiled {
            let e = s
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("{label}: {} measured", s.probe_id));
            assert_eq!(e.kind, kind, "{label}: {e}");
            assert!(s.measurements.is_none(), "{label}: error sample measured");
        } else {
            assert!(
                s.error.is_none(),
                "{label}: healthy sample failed: {:?}",
                s.error
            );
            assert!(s.measurements.is_some(), "{label}");
        }
    }
    let spoiled = probe_figures(samples, "spoiled");
    assert_eq!(spoiled.measured, 0, "{label}");
    assert_eq!(spoiled.errors, SAMPLES, "{label}");
    assert_eq!(
        spoiled.errors_by_kind.get(kind.as_str()).copied(),
        Some(SAMPLES),
        "{label}"
    );
    assert!(
        spoiled.chars.is_none() && spoiled.refusal_rate.is_none(),
        "{label}"
    );
    assert!(
        spoiled.structured.is_none() && spoiled.empty_rate.is_none(),
        "{label}"
    );
    if all {
        return;
    }
    let healthy = probe_figures(samples, "healthy");
    let reference = probe_figures(clean, "healthy");
    assert_eq!(
        quality(&healthy),
        quality(&reference),
        "{label}: healthy moved"
    );
    // The pooled total is the healthy probe alone: errors add nothing to any quality figure.
    let total = summarize(samples).targets[0].total.clone();
    assert_eq!(quality(&total), quality(&reference), "{label}: total moved");
    assert_eq!(total.errors, SAMPLES, "{label}");
}

// ---------------------------------------------------------------------------------------------
// The raw misbehaving server

fn is_stream(r: &Recorded) -> bool {
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v.get("stream").and_then(|s| s.as_bool()))
        .unwrap_or(false)
}

fn is_ollama(r: &Recorded) -> bool {
    r.path.starts_with("/api/")
}

/// A well-formed answer in the API and mode the request asked for.
fn healthy(r: &Recorded) -> Reply {
    let words: Vec<String> = ANSWER.split(' ').map(str::to_string).collect();
    let pieces: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == 0 { w.clone() } else { format!(" {w}") })
        .collect();
    let n = words.len();
    match (is_ollama(r), is_stream(r)) {
        (true, false) => provider_common::json(
            200,
            &json!({"model":"m","message":{"role":"assistant","content":ANSWER},
                    "done":true,"done_reason":"stop","eval_count":n}),
        ),
        (true, true) => {
            let mut lines: Vec<(u64, serde_json::Value)> = pieces
                .iter()
                .map(|p| {
                    (
                        0,
                        json!({"message":{"role":"assistant","content":p},"done":false}),
                    )
                })
                .collect();
            lines.push((
                0,
                json!({"message":{"role":"assistant","content":""},"done":true,
                       "done_reason":"stop","eval_count":n}),
            ));
            provider_common::ndjson(&lines, true)
        }
        (false, false) => provider_common::json(
            200,
            &json!({"model":"m","choices":[{"index":0,"message":{"role":"assistant",
                    "content":ANSWER},"finish_reason":"stop"}],
                    "usage":{"prompt_tokens":5,"completion_tokens":n}}),
        ),
        (false, true) => {
            let mut events: Vec<(u64, String)> = pieces
                .iter()
                .map(|p| {
                    (
                        0,
                        json!({"choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]})
                            .to_string(),
                    )
                })
                .collect();
            events.push((
                0,
                json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
                       "usage":{"prompt_tokens":5,"completion_tokens":n}})
                .to_string(),
            ));
            events.push((0, "[DONE]".into()));
            provider_common::sse(&events, true)
        }
    }
}

/// The first half of a healthy streamed answer, then the connection is cut (`complete =
/// false`) or the stream ends cleanly without its final message (`complete = true`).
fn truncated_stream(r: &Recorded, complete: bool) -> Reply {
    if is_ollama(r) {
        let lines = vec![
            (
                0,
                json!({"message":{"role":"assistant","content":"{\"capital\":"},"done":false}),
            ),
            (
                10,
                json!({"message":{"role":"assistant","content":" \"Paris\""},"done":false}),
            ),
        ];
        provider_common::ndjson(&lines, complete)
    } else {
        let delta = |s: &str| {
            json!({"choices":[{"index":0,"delta":{"content":s},"finish_reason":null}]}).to_string()
        };
        provider_common::sse(
            &[(0, delta("{\"capital\":")), (10, delta(" \"Paris\""))],
            complete,
        )
    }
}

type Spoil = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// One kind of fault.
struct Fault {
    name: &'static str,
    /// `None`: both modes; `Some(s)`: only streaming (`true`) or buffered (`false`) requests.
    stream: Option<bool>,
    kind: ErrorKind,
    spoil: Spoil,
}

fn fault(
    name: &'static str,
    stream: Option<bool>,
    kind: ErrorKind,
    spoil: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> Fault {
    Fault {
        name,
        stream,
        kind,
        spoil: Arc::new(spoil),
    }
}

fn chunk_of(piece: &[u8]) -> Vec<u8> {
    let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
    c.extend_from_slice(piece);
    c.extend_from_slice(b"\r\n");
    c
}

/// Faults that a live server produces. The redirect fault is built per trial (it needs the
/// other host's address); see [`redirect`].
fn server_faults() -> Vec<Fault> {
    use ErrorKind::*;
    vec![
        fault("accepts and never answers", None, Timeout, |_| hang()),
        fault("timeout before headers", None, Timeout, |_| Reply {
            steps: vec![Step::Sleep(Duration::from_millis(3000))],
            then: Then::Close,
        }),
        fault(
            "body drips slower than the total timeout",
            None,
            Timeout,
            |_| {
                let mut r = chunked("application/json", &[], false);
                for _ in 0..60 {
                    r.steps.push(Step::Sleep(Duration::from_millis(80)));
                    r.steps.push(Step::Write(chunk_of(b" ")));
                }
                r
            },
        ),
        fault("429 with Retry-After", None, HttpStatus, |_| {
            respond(
                429,
                &[("Retry-After", "0"), ("Content-Type", "application/json")],
                br#"{"error":"rate limited"}"#,
            )
        }),
        fault("500", None, HttpStatus, |_| {
            provider_common::json(500, &json!({"error": "internal"}))
        }),
        fault("502", None, HttpStatus, |_| {
            respond(
                502,
                &[("Content-Type", "text/html")],
                b"<html>Bad Gateway</html>",
            )
        }),
        fault("503", None, HttpStatus, |_| respond(503, &[], b"")),
        fault("malformed JSON", Some(false), MalformedBody, |_| {
            respond(
                200,
                &[("Content-Type", "application/json")],
                b"{\"choices\": [tru",
            )
        }),
        fault(
            "valid JSON of the wrong shape",
            Some(false),
            MalformedBody,
            |_| provider_common::json(200, &json!({"result": "ok", "items": [1, 2]})),
        ),
        fault(
            "stream frames of the wrong shape",
            Some(true),
            MalformedBody,
            |r| {
                if is_ollama(r) {
                    provider_common::ndjson(&[(0, json!({"items": [1, 2]}))], true)
                } else {
                    provider_common::sse(&[(0, "[1, 2, 3]".into())], true)
                }
            },
        ),
        fault("malformed stream frame", Some(true), MalformedBody, |r| {
            let ct = if is_ollama(r) {
                "application/x-ndjson"
            } else {
                "text/event-stream"
            };
            let frame: &[u8] = if is_ollama(r) {
                b"{\"message\": {\"content\": \"a\"\n"
            } else {
                b"data: {\"choices\": [\n\n"
            };
            chunked(ct, &[(0, frame)], true)
        }),
        fault("truncated stream", Some(true), MalformedBody, |r| {
            truncated_stream(r, true)
        }),
        fault("disconnect mid-stream", Some(true), MalformedBody, |r| {
            truncated_stream(r, false)
        }),
        fault("disconnect mid-body", Some(false), MalformedBody, |_| {
            Reply {
            steps: vec![Step::Write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"choices\":"
                    .to_vec(),
            )],
            then: Then::Close,
        }
        }),
        fault("invalid UTF-8", None, MalformedBody, |r| {
            if is_stream(r) {
                let (ct, frame): (&str, &[u8]) = if is_ollama(r) {
                    (
                        "application/x-ndjson",
                        b"{\"message\":{\"content\":\"\xff\xfe\"},\"done\":true}\n",
                    )
                } else {
                    ("text/event-stream", b"data: {\"x\":\"\xc3\x28\"}\n\n")
                };
                chunked(ct, &[(0, frame)], true)
            } else {
                respond(
                    200,
                    &[("Content-Type", "application/json")],
                    b"{\"a\":\"\xff\xfe\"}",
                )
            }
        }),
        fault("gzip bomb", None, MalformedBody, |_| {
            // A valid gzip header and the start of a deflate stream that would inflate to far
            // more than it weighs; the client never asked for gzip and must not inflate it.
            let mut body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".to_vec();
            body.extend_from_slice(&[0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2, 0xa0]);
            body.extend(std::iter::repeat_n(0u8, 64 * 1024));
            respond(
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                ],
                &body,
            )
        }),
        fault("100 MB body", None, TooLarge, |_| {
            let mut r = chunked("application/json", &[], false);
            r.steps
                .push(Step::Repeat(chunk_of(&vec![b'a'; 64 * 1024]), 1600));
            r
        }),
    ]
}

/// A redirect to another live host: the request must not follow, so the other host sees nothing.
fn redirect(other: String) -> Fault {
    fault(
        "redirect to another host",
        None,
        ErrorKind::HttpStatus,
        move |r| {
            let loc = format!("{other}{}", r.path);
            respond(307, &[("Location", loc.as_str())], b"")
        },
    )
}

fn client_for(kind: ProviderKind, base_url: String, stream: bool) -> Arc<dyn ModelClient> {
    let mut cfg: ClientConfig = config(kind, modelwatch::provider::Api::Chat, base_url, "m");
    cfg.stream = stream;
    cfg.api_key = Some("sk-matrix-secret".into());
    cfg.retries = 1;
    // Healthy answers arrive at once; the margins keep a loaded machine from turning them
    // into timeouts, and the slow faults outlast them by far.
    cfg.first_byte_timeout = Duration::from_millis(1000);
    cfg.total_timeout = Duration::from_millis(2500);
    build_client(cfg).unwrap()
}

/// Serves healthy answers, except for the spoiled probe's requests and fingerprint paths (404,
/// fast, so the round goes straight to its samples).
async fn scripted(spoil: Option<Spoil>) -> Server {
    Server::start(move |r, _| {
        let completion = r.path.ends_with("/chat") || r.path.ends_with("/completions");
        if !completion {
            return provider_common::json(404, &json!({"error": "not here"}));
        }
        match &spoil {
            Some(s) if String::from_utf8_lossy(&r.body).contains(FAULTY) => s(r),
            _ => healthy(r),
        }
    })
    .await
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Figures of one kind of fault: how many trials it survived.
#[derive(Default)]
struct Tally {
    rows: std::sync::Mutex<Vec<(String, usize)>>,
}

impl Tally {
    fn add(&self, name: &str) {
        let mut rows = self.rows.lock().unwrap();
        match rows.iter_mut().find(|(n, _)| n == name) {
            Some(r) => r.1 += 1,
            None => rows.push((name.to_string(), 1)),
        }
    }
}

const MODES: [(ProviderKind, bool); 4] = [
    (ProviderKind::Ollama, false),
    (ProviderKind::Ollama, true),
    (ProviderKind::OpenAi, false),
    (ProviderKind::OpenAi, true),
];

fn mode_label(kind: ProviderKind, stream: bool) -> String {
    format!(
        "{}/{}",
        kind.as_str(),
        if stream { "stream" } else { "buffered" }
    )
}

async fn clean_rounds() -> Vec<Vec<Sample>> {
    let server = scripted(None).await;
    let mut out = Vec::new();
    for (kind, stream) in MODES {
        let client = client_for(kind, server.url(), stream);
        let samples = round(client.as_ref(), stream).await;
        assert!(
            samples.iter().all(|s| s.error.is_none()),
            "clean round failed"
        );
        out.push(samples);
    }
    out
}

async fn server_trial(f: &Fault, mode: usize, trial: usize, clean: &[Sample], tally: &Tally) {
    let (kind, stream) = MODES[mode];
    let label = format!("{} / {} / trial {trial}", mode_label(kind, stream), f.name);
    let server = scripted(Some(f.spoil.clone())).await;
    let client = client_for(kind, server.url(), stream);
    let samples = round(client.as_ref(), stream).await;
    check_round(&label, &samples, clean, f.kind, false);
    // Every request carried the credentials (so a redirect had something to leak) and never
    // offered to accept a compressed body.
    for r in server.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer sk-matrix-secret"),
            "{label}"
        );
        assert!(r.header("accept-encoding").is_none(), "{label}");
    }
    tally.add(&format!("{} ({})", f.name, mode_label(kind, stream)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_survives_repeated_trials_without_moving_quality() {
    let clean = clean_rounds().await;
    let tally = Tally::default();
    let started = std::time::Instant::now();
    let faults = server_faults();
    let (big, rest): (Vec<&Fault>, Vec<&Fault>) =
        faults.iter().partition(|f| f.kind == ErrorKind::TooLarge);

    // Live-server faults, every kind and mode of one trial concurrently.
    for trial in 0..TRIALS {
        let mut runs = Vec::new();
        for f in &rest {
            for (m, (_, stream)) in MODES.iter().enumerate() {
                if f.stream.is_none_or(|s| s == *stream) {
                    runs.push(server_trial(f, m, trial, &clean[m], &tally));
                }
            }
        }
        join_all(runs).await;
    }

    println!("live-server faults: {:?}", started.elapsed());
    // Redirects: the other host is live and must never be reached.
    let other_hits = Arc::new(AtomicUsize::new(0));
    for trial in 0..TRIALS {
        let hits = other_hits.clone();
        let other = Server::start(move |_, _| {
            hits.fetch_add(1, Ordering::SeqCst);
            provider_common::json(200, &json!({}))
        })
        .await;
        let f = redirect(other.url());
        for (m, clean) in clean.iter().enumerate() {
            server_trial(&f, m, trial, clean, &tally).await;
        }
        assert_eq!(other.hits(), 0, "the redirect target was reached");
    }
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);

    // The 100 MB body, one trial at a time, with the process RSS measured around it.
    let mut growth_max = 0i64;
    for f in big {
        for (m, _) in MODES.iter().enumerate() {
            // A warm-up trial settles allocator pools and the runtime before measuring.
            server_trial(f, m, 0, &clean[m], &Tally::default()).await;
            for trial in 0..TRIALS {
                let before = rss_bytes() as i64;
                server_trial(f, m, trial, &clean[m], &tally).await;
                let growth = rss_bytes() as i64 - before;
                growth_max = growth_max.max(growth);
            }
        }
    }
    assert!(
        growth_max < 8 * 1024 * 1024,
        "RSS grew by {growth_max} bytes over a 100 MB body"
    );

    println!("through the 100 MB bodies: {:?}", started.elapsed());
    // Connection refused (a port just released) and an unresolvable host.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for (name, url) in [
        ("connection refused", refused),
        (
            "unresolvable host",
            "http://modelwatch-fault.invalid:11434".to_string(),
        ),
    ] {
        for trial in 0..TRIALS {
            for (kind, stream) in MODES {
                let label = format!("{} / {name} / trial {trial}", mode_label(kind, stream));
                // Generous timeouts: a resolver that drops a query answers only on its retry (5 s
                // later); the answer "no such name" is what is tested here.
                let mut cfg = config(kind, modelwatch::provider::Api::Chat, url.clone(), "m");
                cfg.stream = stream;
                cfg.retries = 0;
                cfg.connect_timeout = Duration::from_secs(12);
                cfg.first_byte_timeout = Duration::from_secs(12);
                cfg.total_timeout = Duration::from_secs(12);
                let client = build_client(cfg).unwrap();
                let samples = round_with(client.as_ref(), stream, 1).await;
                check_round(&label, &samples, &[], ErrorKind::Connect, true);
                let total = summarize(&samples).targets[0].total.clone();
                assert_eq!(total.measured, 0, "{label}");
                assert!(
                    total.chars.is_none() && total.structured.is_none(),
                    "{label}"
                );
                tally.add(&format!("{name} ({})", mode_label(kind, stream)));
            }
        }
    }

    let rows = tally.rows.into_inner().unwrap();
    let combos = rows.len();
    let kinds = server_faults().len() + 3;
    let survived: usize = rows.iter().map(|(_, n)| n).sum();
    assert!(rows.iter().all(|(_, n)| *n == TRIALS), "{rows:?}");
    for (name, n) in &rows {
        println!("  {name}: {n}/{TRIALS}");
    }
    println!(
        "raw-server fault matrix: {kinds} kinds, {combos} kind × provider × mode combinations \
         × {TRIALS} trials survived ({survived} rounds of {} samples)",
        2 * SAMPLES
    );
    println!("total: {:?}", started.elapsed());
    println!(
        "largest RSS growth over a 100 MB body: {} KiB",
        growth_max / 1024
    );
}

// ---------------------------------------------------------------------------------------------
// The simulator's injected faults

fn sim_profile(rate: Option<&str>) -> Profile {
    let mut toml = String::from("latency_scale = 0\nretry_after_secs = 0\n");
    if let Some(rate) = rate {
        toml.push_str(&format!(
            "[[rule]]\ncontains = \"{FAULTY}\"\n{rate} = 1.0\n"
        ));
    }
    Profile::from_toml(&toml).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulator_fault_survives_repeated_trials_without_moving_quality() {
    let faults = [
        ("error_5xx", ErrorKind::HttpStatus),
        ("rate_limit", ErrorKind::HttpStatus),
        ("timeout", ErrorKind::Timeout),
        ("malformed", ErrorKind::MalformedBody),
        ("disconnect", ErrorKind::MalformedBody),
    ];
    let mut survived = 0;
    for (kind, stream) in MODES {
        let clean_sim = sim::spawn_on_free_port(sim_profile(None), 3).unwrap();
        let model = clean_sim.profile().models[0].clone();
        let mk = |addr: std::net::SocketAddr| {
            let mut cfg = config(
                kind,
                modelwatch::provider::Api::Chat,
                format!("http://{addr}"),
                &model,
            );
            cfg.stream = stream;
            cfg.retries = 1;
            // Healthy answers arrive at once; the margins keep a loaded machine from turning them
            // into timeouts, and the slow faults outlast them by far.
            cfg.first_byte_timeout = Duration::from_millis(1000);
            cfg.total_timeout = Duration::from_millis(2500);
            build_client(cfg).unwrap()
        };
        let clean = round(mk(clean_sim.addr()).as_ref(), stream).await;
        assert!(clean.iter().all(|s| s.error.is_none()), "clean sim round");
        clean_sim.shutdown().await;
        let mut runs = Vec::new();
        for (rate, err) in faults {
            for trial in 0..TRIALS {
                let sim = sim::spawn_on_free_port(sim_profile(Some(rate)), 3).unwrap();
                let client = mk(sim.addr());
                let clean = &clean;
                runs.push(async move {
                    let label =
                        format!("sim {} / {rate} / trial {trial}", mode_label(kind, stream));
                    let samples = round(client.as_ref(), stream).await;
                    check_round(&label, &samples, clean, err, false);
                    sim.shutdown().await;
                });
            }
        }
        survived += runs.len();
        join_all(runs).await;
    }
    assert_eq!(survived, faults.len() * MODES.len() * TRIALS);
    println!(
        "simulator fault matrix: {} kinds × {} modes × {TRIALS} trials survived",
        faults.len(),
        MODES.len()
    );
}
