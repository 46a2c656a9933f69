//! Mutation fuzzing of configuration and suite parsing: thousands of corrupted variants of the
//! valid files (byte flips, deletions, insertions of TOML punctuation, truncations, non-ASCII)
//! must each load or fail with located diagnostics, never panic.

use modelwatch::config;
use modelwatch::diag::Source;
use modelwatch::probe::load::parse_suite;
use modelwatch::rng::Rng;

const ALPHABET: &[u8] = b"[]{}=\"'#,.\n $\\-_0123456789abcdekindvalue";

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(5) {
            0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len() as u64) as usize],
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len() as u64) as usize]),
            3 => bytes.truncate(at),
            _ => {
                let s = "é${X}ü";
                for (i, b) in s.bytes().enumerate() {
                    bytes.insert(at + i, b);
                }
            }
        }
    }
    // Keep it text: the UTF-8 check has its own fixtures.
    String::from_utf8_lossy(&bytes).into_owned()
}

fn env(name: &str) -> Option<String> {
    (name == "X").then(|| "x".to_owned())
}

#[test]
fn corrupted_suites_never_panic() {
    let seeds = ["probes/core.toml", "probes/json.toml", "probes/tasks.toml"];
    let mut rng = Rng::new(20_261_126);
    let mut failures = 0;
    for seed in seeds {
        let text = std::fs::read_to_string(seed).unwrap();
        for _ in 0..400 {
            let mutated = mutate(&mut rng, &text);
            if let Err(diags) = parse_suite(&Source::new(seed, mutated.clone())) {
                failures += 1;
                for d in &diags {
                    assert!(d.line >= 1, "unlocated error for:\n{mutated}\n{d}");
                    assert!(!d.message.is_empty());
                }
            }
        }
    }
    assert!(failures > 100, "mutations too gentle: {failures} failures");
}

#[test]
fn corrupted_configs_never_panic() {
    let seeds = ["tests/fixtures/valid/full.toml", "modelwatch.example.toml"];
    let mut rng = Rng::new(7);
    for seed in seeds {
        let text = std::fs::read_to_string(seed).unwrap();
        for _ in 0..400 {
            let mutated = mutate(&mut rng, &text);
            if let Err(diags) = config::parse(Source::new(seed, mutated.clone()), &env) {
                for d in &diags {
                    assert!(!d.message.is_empty(), "empty message for:\n{mutated}");
                    let _ = d.to_string();
                }
            }
        }
    }
}
