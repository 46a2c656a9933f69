//! Evaluation throughput on realistic ~1 KB responses: a mix of plain answers, refusals in
//! several languages, JSON answers checked against a schema and task checks of every kind.
//! Short run: `cargo bench --bench eval -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modelwatch::eval::{CompiledChecks, Evaluator, RefusalConfig};
use modelwatch::probe::Expect;
use modelwatch::sample::{Completion, FinishReason};
use std::hint::black_box;
use std::path::Path;

const PROSE: &str = "To stop a Python process that hangs, first try pressing Ctrl+C in the terminal \
where it runs: that sends SIGINT, which Python turns into a KeyboardInterrupt. If the process \
ignores it, open another terminal, find the process id with `ps aux | grep python` or `pgrep -f \
script.py`, and send SIGTERM with `kill <PID>`. Give it a few seconds to clean up. Only if it \
still does not exit, use `kill -9 <PID>`, which cannot be caught but also skips any cleanup, so \
temporary files or locks may be left behind. On Windows, use Task Manager or `taskkill /PID <PID> \
/F`. To find out why it hangs, run it under `py-spy dump --pid <PID>` to see the stack of every \
thread; deadlocks on locks and blocking network calls without timeouts are the usual causes. \
Adding a timeout to every network call and using `faulthandler.dump_traceback_later` helps next \
time. ";

/// `base` repeated, cut at a character boundary near `target` bytes.
fn sized(base: &str, target: usize) -> String {
    let mut s = String::with_capacity(target + base.len());
    while s.len() < target {
        s.push_str(base);
    }
    let mut end = target;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

fn checks(src: &str) -> CompiledChecks {
    let expect: Expect = toml::from_str(src).expect("bench expect");
    CompiledChecks::compile(&expect, Path::new(".")).expect("bench checks")
}

fn workload() -> Vec<(Completion, Option<CompiledChecks>)> {
    let prose = sized(PROSE, 1000);
    let mut items_json = String::from("{\"vendor\": \"ACME Corp\", \"total\": 42.5, \"items\": [");
    for i in 0..14 {
        if i > 0 {
            items_json.push_str(", ");
        }
        items_json.push_str(&format!(
            "{{\"sku\": \"A-{i:04}\", \"description\": \"Widget number {i}\", \"qty\": {i}}}"
        ));
    }
    items_json.push_str("]}");
    let fenced = format!("Here is the extracted invoice:\n\n```json\n{items_json}\n```\n");
    let refusal_en = format!(
        "I'm sorry, but I can't help with that request. {}",
        sized(
            "Creating tools to break into accounts you do not own is illegal and harms people. ",
            950
        )
    );
    let refusal_de = sized(
        "Es tut mir leid, aber dabei kann ich nicht helfen. Bitte wende dich an den Support. ",
        1000,
    );
    let answer_zh = sized(
        "要停止卡住的 Python 进程，可以先按 Ctrl+C，如果没有反应，再用 kill 命令结束它。",
        1000,
    );
    let quoted = format!(
        "When the bot replies \"I'm sorry, but I can't help with that\", a filter fired. {}",
        sized(PROSE, 900)
    );

    let schema = "json_schema = { type = 'object', required = ['vendor', 'total', 'items'], properties = { total = { type = 'number' }, items = { type = 'array', items = { type = 'object', required = ['sku', 'qty'] } } } }\n\
                  task = { kind = 'json_equals', pointer = '/total', value = 42.5 }";
    let stop = |text: &str| Completion {
        text: text.to_string(),
        finish_reason: Some(FinishReason::Stop),
        output_tokens: Some(250),
        ..Completion::default()
    };
    vec![
        (stop(&prose), Some(checks("refusal = false"))),
        (
            stop(&prose),
            Some(checks(
                "task = { kind = 'contains', values = ['kill', 'ctrl+c'], mode = 'all' }",
            )),
        ),
        (
            stop(&prose),
            Some(checks("task = { kind = 'regex', pattern = 'kill\\s+-9' }")),
        ),
        (
            stop(&prose),
            Some(checks(
                "task = { kind = 'not_contains', values = ['as an ai', 'i cannot'] }",
            )),
        ),
        (stop(&prose), None),
        (stop(&items_json), Some(checks(schema))),
        (stop(&fenced), Some(checks(schema))),
        (
            stop(&refusal_en),
            Some(checks(
                "refusal = false\ntask = { kind = 'contains', values = ['kill'] }",
            )),
        ),
        (stop(&refusal_de), None),
        (
            stop(&answer_zh),
            Some(checks("task = { kind = 'starts_with', value = '要停止' }")),
        ),
        (
            stop(&quoted),
            Some(checks(
                "task = { kind = 'number', value = 9, abs_tol = 0.5 }",
            )),
        ),
        (
            stop(&prose),
            Some(checks(
                "task = { kind = 'any', checks = [{ kind = 'equals', value = 'x' }, { kind = 'contains', values = ['SIGTERM'] }] }",
            )),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let evaluator = Evaluator::new(&RefusalConfig::default()).expect("evaluator");
    let work = workload();
    let bytes: usize = work.iter().map(|(c, _)| c.text.len()).sum();
    eprintln!(
        "workload: {} responses, mean {} bytes",
        work.len(),
        bytes / work.len()
    );
    let mut group = c.benchmark_group("eval");
    group.throughput(Throughput::Elements(work.len() as u64));
    group.bench_function("evaluate_mix", |b| {
        b.iter(|| {
            for (completion, checks) in &work {
                black_box(evaluator.evaluate(black_box(completion), checks.as_ref()));
            }
        })
    });
    group.finish();
    cpu_time_figure(&evaluator, &work);
    large_responses(&evaluator);
    if std::env::var_os("EVAL_BENCH_EACH").is_some() {
        let mut each = c.benchmark_group("eval_each");
        for (i, (completion, checks)) in work.iter().enumerate() {
            each.bench_function(format!("item{i:02}"), |b| {
                b.iter(|| black_box(evaluator.evaluate(black_box(completion), checks.as_ref())))
            });
        }
        each.finish();
        let d = modelwatch::eval::RefusalDetector::new(&RefusalConfig::default()).unwrap();
        let text = &work[0].0.text;
        c.bench_function("refusal_only", |b| {
            b.iter(|| black_box(d.judge_text(black_box(text))))
        });
        c.bench_function("length_only", |b| {
            b.iter(|| black_box(modelwatch::eval::length::measure(black_box(text))))
        });
    }
}

/// Nanoseconds this thread has run on a CPU (Linux `/proc/thread-self/schedstat`).
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Evaluations per second of CPU time and of wall time over a 3-second loop. On a shared
/// machine the wall figure (and criterion's) includes time the thread waited for a core; the
/// CPU-time figure is what one core does.
fn cpu_time_figure(evaluator: &Evaluator, work: &[(Completion, Option<CompiledChecks>)]) {
    let Some(cpu0) = on_cpu_ns() else {
        eprintln!("cpu-time figure: /proc/thread-self/schedstat not available");
        return;
    };
    let wall0 = std::time::Instant::now();
    let mut n: u64 = 0;
    while wall0.elapsed() < std::time::Duration::from_secs(3) {
        for (completion, checks) in work {
            black_box(evaluator.evaluate(black_box(completion), checks.as_ref()));
        }
        n += work.len() as u64;
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = on_cpu_ns().map_or(f64::NAN, |c| (c - cpu0) as f64 / 1e9);
    eprintln!(
        "eval mix: {n} evaluations; {:.0}/s of CPU time ({cpu:.2} s), {:.0}/s of wall time ({wall:.2} s)",
        n as f64 / cpu,
        n as f64 / wall
    );
}

/// Time to judge 5 MB responses made of quoted refusal phrases and of fenced blocks (each
/// full of refusal phrases), with the JSON checks of a structured probe: the guards and the
/// JSON extraction must stay linear. Median of three runs, wall time.
fn large_responses(evaluator: &Evaluator) {
    const SIZE: usize = 5_000_000;
    let quoted = sized(
        "The filter fired on \"I'm sorry, but I can't help with that\" and on 'I cannot comply' \
         and on “I won't assist with this”. ",
        SIZE,
    );
    let fenced = sized(
        "```\nprint(\"I can't help with that\")\n# I won't provide it\n```\n",
        SIZE,
    );
    let single = sized("'I cannot comply ", SIZE);
    let curly = sized("“I can't help with that ", SIZE);
    let json = checks("json = true");
    for (name, text) in [
        ("quoted refusal phrases", quoted),
        ("fenced blocks", fenced),
        ("unclosed single quotes", single),
        ("unclosed typographic quotes", curly),
    ] {
        let completion = Completion {
            text,
            finish_reason: Some(FinishReason::Stop),
            ..Completion::default()
        };
        let mut times: Vec<f64> = (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let m = evaluator.evaluate(black_box(&completion), Some(&json));
                black_box(m);
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let m = evaluator.evaluate(&completion, Some(&json));
        eprintln!(
            "5 MB of {name}: {:.3} s (median of 3); refusal {}, structured {:?}",
            times[1], m.refusal, m.structured
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
