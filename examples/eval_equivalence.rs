//! Equivalence check for speed work on the evaluator: dumps the `Debug` output of `evaluate`,
//! `explain` and `RefusalDetector::judge_text` (scores printed with `{:?}`, so bit-exact) over
//! every corpus text and every string literal of the evaluator's sources and tests, each in
//! variations, plus seeded random mixtures, under several sets of checks.
//!
//! `cargo run --profile bench --example eval_equivalence -- OUT` writes one digest per text to
//! `OUT` and prints the digest of all; `EQ_SHOW=<index>` prints the full dump of one text.

use modelwatch::eval::{CompiledChecks, Evaluator, Expect, RefusalConfig, RefusalDetector};
use modelwatch::sample::{Completion, FinishReason};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "eq.txt".into());
    let show: Option<usize> = std::env::var("EQ_SHOW").ok().and_then(|s| s.parse().ok());
    let base = texts();
    let mut all: Vec<String> = Vec::new();
    for t in &base {
        for v in 0..VARIATIONS {
            all.push(variation(t, v));
        }
    }
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..MIXTURES {
        all.push(mixture(&base, &mut rng));
    }
    let plain = Evaluator::new(&RefusalConfig::default()).unwrap();
    let config = RefusalConfig {
        extra_patterns: vec!["(?i)not (able|going) to".into(), "(?i)decline".into()],
        exclusions: vec![
            "(?i)can't help (but|feeling)".into(),
            "(?i)sorry for".into(),
        ],
    };
    let configured = Evaluator::new(&config).unwrap();
    let d_plain = RefusalDetector::new(&RefusalConfig::default()).unwrap();
    let d_config = RefusalDetector::new(&config).unwrap();
    let sets: Vec<Option<CompiledChecks>> = CHECKS
        .iter()
        .map(|src| {
            (!src.is_empty()).then(|| {
                let e: Expect = toml::from_str(src).expect(src);
                CompiledChecks::compile(&e, Path::new(".")).expect(src)
            })
        })
        .collect();
    let mut digests = String::new();
    let mut total = Sha256::new();
    let mut evaluations = 0u64;
    let mut dump = String::new();
    for (i, text) in all.iter().enumerate() {
        dump.clear();
        writeln!(dump, "{:?}", d_plain.judge_text(text)).unwrap();
        writeln!(dump, "{:?}", d_config.judge_text(text)).unwrap();
        evaluations += 2;
        for (s, checks) in sets.iter().enumerate() {
            let c = completion(text, i + s);
            let ev = if s % 3 == 2 { &configured } else { &plain };
            writeln!(dump, "{:?}", ev.evaluate(&c, checks.as_ref())).unwrap();
            writeln!(dump, "{:?}", ev.explain(&c, checks.as_ref())).unwrap();
            evaluations += 2;
        }
        if show == Some(i) {
            println!("text {i}: {text:?}\n{dump}");
        }
        let h = Sha256::digest(dump.as_bytes());
        total.update(h);
        writeln!(digests, "{i} {}", hex(&h[..8])).unwrap();
    }
    std::fs::write(&out, digests).unwrap();
    println!(
        "{} texts, {evaluations} evaluations, digest {}",
        all.len(),
        hex(&total.finalize())
    );
}

const VARIATIONS: usize = 15;
const MIXTURES: usize = 20_000;

const CHECKS: &[&str] = &[
    "",
    "refusal = false",
    "refusal = true",
    "json = true",
    "json_schema = { type = 'object', required = ['vendor', 'total'], properties = { total = { type = 'number' } } }\ntask = { kind = 'json_equals', pointer = '/total', value = 42.5 }",
    "json = true\njson_extract = 'embedded'\ntask = { kind = 'json_contains', pointer = '', value = 'a' }",
    "task = { kind = 'contains', values = ['kill', 'ctrl+c'], mode = 'all' }",
    "task = { kind = 'not_contains', values = ['as an ai', 'i cannot'] }",
    "refusal = false\ntask = { kind = 'regex', pattern = '(?i)sorry|kill\\s+-9' }",
    "task = { kind = 'number', value = 9, abs_tol = 0.5 }",
    "task = { kind = 'starts_with', value = 'I' }",
    "task = { kind = 'any', checks = [{ kind = 'equals', value = 'x' }, { kind = 'contains', values = ['SIGTERM', 'help'], case_sensitive = true }] }",
    "task = { kind = 'one_of', values = ['positive', 'negative'], answer = 'positive' }",
    "task = { kind = 'all', checks = [{ kind = 'number', value = 144 }, { kind = 'regex', pattern = '\\b144\\b' }] }",
    "task = { kind = 'equals', value = 'I can not help with that.', case_sensitive = true, normalize_whitespace = false }",
];

fn completion(text: &str, k: usize) -> Completion {
    Completion {
        text: text.to_string(),
        finish_reason: match k % 5 {
            0 | 3 => Some(FinishReason::Stop),
            1 => Some(FinishReason::Length),
            2 => None,
            _ if k.is_multiple_of(7) => Some(FinishReason::ContentFilter),
            _ => Some(FinishReason::ToolCalls),
        },
        output_tokens: k.is_multiple_of(2).then_some(k as u32 % 300),
        refusal: k
            .is_multiple_of(23)
            .then(|| if k.is_multiple_of(2) { " " } else { "no" }.to_string()),
        ..Completion::default()
    }
}

/// Every corpus and fixture text, and the string literals of the evaluator's code and tests,
/// read under `EQ_ROOT` (default `.`): point it at an unchanging copy of the sources, so that
/// the inputs stay the same while the code under test changes.
fn texts() -> Vec<String> {
    let root = std::path::PathBuf::from(std::env::var("EQ_ROOT").unwrap_or_else(|_| ".".into()));
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/fixtures/refusal_corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.push(root.join("tests/fixtures/explain/responses.jsonl"));
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(t) = v.get("text").and_then(|t| t.as_str())
            {
                out.push(t.to_string());
            }
        }
    }
    let mut sources = Vec::new();
    for dir in ["src/eval", "src/eval/refusal", "tests/eval"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "rs") {
                sources.push(p);
            }
        }
    }
    sources.push(root.join("benches/eval.rs"));
    sources.sort();
    for p in sources {
        out.extend(literals(&std::fs::read_to_string(p).unwrap()));
    }
    for (unit, n) in [
        (
            "The filter fired on \"I'm sorry, but I can't help with that\" and on 'I cannot comply' and on “I won't assist with this”. ",
            200,
        ),
        (
            "```\nprint(\"I can't help with that\")\n# I won't provide it\n```\n",
            300,
        ),
        ("'I cannot comply ", 1000),
        ("“I can't help with that ", 800),
    ] {
        out.push(unit.repeat(n));
    }
    out
}

/// The string literals of a Rust source (plain and raw), escapes decoded.
fn literals(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i] == b'\'' {
            // A char literal ('"', '\'') or a lifetime.
            let rest = &src[i + 1..];
            if let Some(end) = rest.find('\'')
                && end <= 10
                && !rest[..end].contains(char::is_whitespace)
            {
                i += end + 2;
                continue;
            }
            i += 1;
            continue;
        }
        if b[i] == b'r' && (b.get(i + 1) == Some(&b'#') || b.get(i + 1) == Some(&b'"')) {
            let hashes = src[i + 1..].bytes().take_while(|&c| c == b'#').count();
            if b.get(i + 1 + hashes) == Some(&b'"') {
                let start = i + 2 + hashes;
                let close = format!("\"{}", "#".repeat(hashes));
                if let Some(end) = src[start..].find(&close) {
                    out.push(src[start..start + end].to_string());
                    i = start + end + close.len();
                    continue;
                }
            }
        }
        if b[i] == b'"' {
            let mut s = String::new();
            let mut chars = src[i + 1..].char_indices();
            let mut end = src.len();
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        end = i + 1 + k + 1;
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some('0') => s.push('\0'),
                        Some('u') => {
                            let mut hexs = String::new();
                            for (_, c) in chars.by_ref() {
                                if c == '}' {
                                    break;
                                }
                                if c != '{' {
                                    hexs.push(c);
                                }
                            }
                            if let Some(c) =
                                u32::from_str_radix(&hexs, 16).ok().and_then(char::from_u32)
                            {
                                s.push(c);
                            }
                        }
                        Some('\n') => {
                            let mut peek = chars.clone();
                            while let Some((_, c)) = peek.next() {
                                if !c.is_whitespace() {
                                    break;
                                }
                                chars = peek.clone();
                            }
                        }
                        Some(c) => s.push(c),
                        None => {}
                    },
                    c => s.push(c),
                }
            }
            out.push(s);
            i = end;
            continue;
        }
        i += 1;
    }
    out
}

fn floor(s: &str, n: usize) -> &str {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn variation(t: &str, v: usize) -> String {
    match v {
        0 => t.to_string(),
        1 => t.to_uppercase(),
        2 => t.to_lowercase(),
        3 => format!("\"{t}\""),
        4 => format!("'{t}'"),
        5 => format!("“{t}”"),
        6 => format!("```\n{t}\n```"),
        7 => floor(t, 24).to_string(),
        8 => floor(t, 64).to_string(),
        9 => floor(t, 160).to_string(),
        10 => floor(t, 400).to_string(),
        11 => t.lines().map(|l| format!("> {l}\n")).collect(),
        12 => format!("Sure, here is the answer.\n\n{t}\n\nI hope this helps."),
        13 => {
            let mut s = String::new();
            while s.len() < 1000 && !t.is_empty() {
                s.push_str(t);
                s.push(' ');
            }
            floor(&s, 1000).to_string()
        }
        _ => format!("  \n{}\t \n", t.replace('\'', "\u{2019}")),
    }
}

fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

fn mixture(base: &[String], rng: &mut u64) -> String {
    let parts = 2 + next(rng) % 5;
    let mut s = String::new();
    for _ in 0..parts {
        let t = &base[(next(rng) % base.len() as u64) as usize];
        let t = variation(t, (next(rng) % VARIATIONS as u64) as usize);
        s.push_str(&t);
        s.push_str(["", " ", "\n\n", ". ", "\n> ", " \"", "\n```\n"][(next(rng) % 7) as usize]);
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
