//! Production traffic ingest throughput: completions per second through `Traffic::ingest`
//! (split, parse, validate, measure with the refusal evaluator, queue) on the calling thread,
//! and until the traffic task has stored them in SQLite (its own thread). Batches of 1,000
//! lines, 9 in 10 with text (5 % refusals), 1 in 10 lengths only. Prints the median of 5 runs.
//! Then a sustained 1,000 completions/s (batches of 100 every 100 ms) for 20 s: the CPU it
//! costs (user + system time of the process over wall time) and the RSS at the end.
//!
//! `cargo bench --bench traffic`

use modelwatch::config::{Secret, Storage, TrafficSettings};
use modelwatch::traffic::{self, KnownTarget};
use std::time::{Duration, Instant};

const LINES: usize = 1_000;
const BATCHES: usize = 20;
const RUNS: usize = 5;

fn body() -> String {
    let mut b = String::new();
    for i in 0..LINES {
        let route = ["/support", "/search", "/billing"][i % 3];
        let line = if i % 10 == 9 {
            format!(
                r#"{{"target":"chat","route":"{route}","output_chars":{},"output_tokens":{},"finish_reason":"stop"}}"#,
                300 + i,
                80 + i / 4
            )
        } else if i % 20 == 0 {
            format!(
                r#"{{"target":"chat","route":"{route}","output":"I'm sorry, but I can't help with that request.","finish_reason":"stop","latency_ms":{i}}}"#
            )
        } else {
            format!(
                r#"{{"target":"chat","route":"{route}","output":"To reset the device, hold the power button for ten seconds, wait for the light to blink twice, then release it and sign in again with your account {i}.","finish_reason":"stop","latency_ms":{i}}}"#
            )
        };
        b.push_str(&line);
        b.push('\n');
    }
    b
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS in KiB.
fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// 1,000 completions/s for `secs` seconds; returns (CPU share of one core, RSS MiB).
fn sustained(t: &traffic::Traffic, body: &str, secs: u64, mut total: u64) -> (f64, f64) {
    let batch: String = body.lines().take(100).map(|l| format!("{l}\n")).collect();
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let start = Instant::now();
    for i in 0..secs * 10 {
        let due = start + Duration::from_millis(100 * i);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let reply = t.ingest(batch.as_bytes(), 0);
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        total += 100;
    }
    while t.status().stored < total {
        std::thread::sleep(Duration::from_millis(2));
    }
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu0;
    let wall = start.elapsed().as_secs_f64();
    (
        cpu / wall,
        rss_kib().map(|k| k as f64 / 1024.0).unwrap_or(f64::NAN),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = TrafficSettings::with_token(Secret::new("0123456789abcdef"));
    settings.max_rate = 1_000_000;
    settings.queue = 1_024;
    let storage = Storage {
        path: dir.path().join("bench.db"),
        raw_text_retention: Duration::from_secs(86_400),
        sample_retention: Duration::from_secs(86_400),
    };
    let targets = vec![KnownTarget {
        name: "chat".into(),
        model: "m".into(),
    }];
    let (t, worker) = traffic::start(&settings, &storage, targets).unwrap();
    let body = body();
    let (mut ingest, mut stored) = (Vec::new(), Vec::new());
    let mut total = 0u64;
    for _ in 0..RUNS {
        let start = Instant::now();
        for _ in 0..BATCHES {
            let reply = t.ingest(body.as_bytes(), 0);
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
        let ingested = start.elapsed().as_secs_f64();
        total += (LINES * BATCHES) as u64;
        while t.status().stored < total {
            std::thread::sleep(Duration::from_millis(2));
        }
        let done = start.elapsed().as_secs_f64();
        let n = (LINES * BATCHES) as f64;
        ingest.push(n / ingested);
        stored.push(n / done);
    }
    let (cpu, rss) = sustained(&t, &body, 20, total);
    t.close();
    worker.join();
    println!(
        "sustained 1,000 completions/s for 20 s: {:.1} % of one core, RSS {rss:.1} MiB at the end",
        cpu * 100.0
    );
    println!(
        "traffic ingest: {:.0} completions/s parsed and measured on one thread (median of {RUNS} runs of {} completions)",
        median(ingest),
        LINES * BATCHES
    );
    println!(
        "traffic ingest: {:.0} completions/s until stored by the traffic task",
        median(stored)
    );
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}
