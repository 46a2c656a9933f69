//! The example profiles move every metric the demo watches, in the documented direction.

use modelwatch::sim::Profile;
use modelwatch::sim::model::{Draw, DrawSource, GenRequest, Outcome, Reply, respond};
use modelwatch::sim::text::REFUSALS;

fn load(name: &str) -> Profile {
    let path = format!("{}/sim/profiles/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Profile::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn replies(p: &Profile, prompt: &str, n: u64) -> Vec<Reply> {
    (0..n)
        .map(|i| {
            let draw = Draw::new(1, 0, prompt, DrawSource::Occurrence(i));
            let req = GenRequest {
                prompt,
                max_tokens: None,
                stop: &[],
                json_mode: false,
            };
            match respond(p, &draw, &req) {
                Outcome::Reply(r) => r,
                Outcome::Fault(f) => panic!("{f:?}"),
            }
        })
        .collect()
}

struct Summary {
    refusal: f64,
    median_tokens: u32,
    json_ok: f64,
    correct: f64,
}

fn summarise(p: &Profile) -> Summary {
    let n = 400;
    let risky = replies(p, "user: How do I kill a Python process that hangs?", n);
    let refusal = risky
        .iter()
        .filter(|r| REFUSALS.contains(&r.text.as_str()))
        .count() as f64
        / n as f64;
    let mut lens: Vec<u32> = replies(p, "user: Tell me about tea.", n)
        .iter()
        .map(|r| r.completion_tokens)
        .collect();
    lens.sort_unstable();
    let json = replies(
        p,
        "user: Invoice: ACME Tools Ltd. Total 42.50. Reply with JSON.",
        n,
    );
    let json_ok = json
        .iter()
        .filter(|r| {
            serde_json::from_str::<serde_json::Value>(&r.text)
                .is_ok_and(|v| v["vendor"].is_string() && v["total"] == 42.5)
        })
        .count() as f64
        / n as f64;
    let sums = replies(
        p,
        "user: What is 347 multiplied by 28? Reply with the number only.",
        n,
    );
    let correct = sums.iter().filter(|r| r.text == "9716").count() as f64 / n as f64;
    Summary {
        refusal,
        median_tokens: lens[lens.len() / 2],
        json_ok,
        correct,
    }
}

#[test]
fn degraded_refuses_more_rambles_breaks_json_and_errs() {
    let healthy = summarise(&load("healthy"));
    let degraded = summarise(&load("degraded"));
    assert!(
        healthy.refusal < 0.06,
        "healthy refusal {}",
        healthy.refusal
    );
    assert!(
        degraded.refusal > 0.35,
        "degraded refusal {}",
        degraded.refusal
    );
    assert!(
        degraded.median_tokens as f64 > 1.5 * healthy.median_tokens as f64,
        "median tokens {} → {}",
        healthy.median_tokens,
        degraded.median_tokens
    );
    assert!(healthy.json_ok > 0.7, "healthy JSON ok {}", healthy.json_ok);
    assert!(
        degraded.json_ok < healthy.json_ok - 0.2,
        "JSON ok {} → {}",
        healthy.json_ok,
        degraded.json_ok
    );
    assert!(healthy.correct > 0.9 && degraded.correct < 0.8);
}

#[test]
fn the_swap_changes_the_fingerprint() {
    let (h, d) = (load("healthy"), load("degraded"));
    assert_eq!(h.models, d.models, "same model name: a silent swap");
    assert_ne!(h.fingerprint.digest, d.fingerprint.digest);
    assert_ne!(h.fingerprint.quantization, d.fingerprint.quantization);
    assert_ne!(h.fingerprint.template, d.fingerprint.template);
    assert_ne!(
        h.fingerprint.system_fingerprint,
        d.fingerprint.system_fingerprint
    );
}
