//! The simulated model itself: a pure function from (profile, draw, request) to an
//! [`Outcome`]. No I/O, no clock; the server layer turns outcomes into HTTP.
//!
//! Every random decision has its own stream, `Rng::from_parts([seed, generation, prompt hash,
//! source, purpose])`, so changing one rate in a profile does not reshuffle the others, and the
//! result never depends on the order in which concurrent requests arrive.

use super::profile::Profile;
use super::text;
use crate::rng::{Rng, hash_str};
use std::time::Duration;

/// What the server knows about one generation request, API-independent.
#[derive(Debug, Clone, Copy)]
pub struct GenRequest<'a> {
    /// The prompt as one text (chat messages rendered as `role: content` lines).
    pub prompt: &'a str,
    /// `max_tokens` / `num_predict`, when positive.
    pub max_tokens: Option<u32>,
    pub stop: &'a [String],
    /// The request asked for JSON (`format: "json"`, `response_format`).
    pub json_mode: bool,
}

/// Where a request's randomness comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawSource {
    /// The request's own `seed`.
    RequestSeed(u64),
    /// The n-th request (from 0) for this prompt without a seed since the profile was set.
    Occurrence(u64),
}

/// The identity of one draw: the same draw always yields the same outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub seed: u64,
    pub generation: u64,
    pub prompt_hash: u64,
    pub source: DrawSource,
}

#[derive(Clone, Copy)]
enum Purpose {
    Timeout = 1,
    ServerError,
    RateLimit,
    Malformed,
    Disconnect,
    Refusal,
    Correct,
    Json,
    Length,
    Latency,
    Text,
    Id,
}

/// Seed part of the per-prompt length factor: it depends on the prompt alone, so a prompt
/// keeps its typical length across seeds and profiles.
const PROBE_FACTOR: u64 = 0x5052_4f42_455f_4c45;

impl Draw {
    /// A draw for `prompt` given the server seed and profile generation.
    pub fn new(seed: u64, generation: u64, prompt: &str, source: DrawSource) -> Draw {
        Draw {
            seed,
            generation,
            prompt_hash: hash_str(prompt),
            source,
        }
    }

    fn rng(&self, purpose: Purpose) -> Rng {
        // A request seed fixes the sampling as on a real server: the same weights (profile)
        // and the same request seed give the same answer whatever the server's own seed.
        let (tag, value, server) = match self.source {
            DrawSource::RequestSeed(s) => (1, s, 0),
            DrawSource::Occurrence(n) => (2, n, self.seed),
        };
        Rng::from_parts(&[
            server,
            self.generation,
            self.prompt_hash,
            tag,
            value,
            purpose as u64,
        ])
    }
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Reply(Reply),
    Fault(Fault),
}

/// An infrastructure failure instead of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Accept and never answer.
    Timeout,
    /// HTTP 500, 502 or 503.
    ServerError { status: u16 },
    /// HTTP 429 with `Retry-After`.
    RateLimit { retry_after_secs: u32 },
}

impl Fault {
    /// The outcome label used in stats.
    pub fn label(&self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::ServerError { .. } => "error_5xx",
            Fault::RateLimit { .. } => "rate_limit",
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// What the reply is, for stats (the client must find this out from the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notes {
    pub refused: bool,
    pub json: bool,
    pub wrong_answer: bool,
    pub json_invalid: bool,
    pub json_schema_break: bool,
    pub truncated: bool,
}

/// A generated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub finish: Finish,
    pub completion_tokens: u32,
    pub prompt_tokens: u32,
    /// Simulated time to first token, before `latency_scale`.
    pub ttft: Duration,
    /// Simulated time per generated token, before `latency_scale`.
    pub per_token: Duration,
    /// Cut the connection half-way through the body.
    pub disconnect: bool,
    /// Send a broken body instead (`variant` picks how; see the server); wins over
    /// `disconnect`.
    pub malformed: Option<u8>,
    /// Hex id for `chatcmpl-…` style identifiers.
    pub id: String,
    pub notes: Notes,
}

impl Reply {
    /// Total simulated generation time, before `latency_scale`.
    pub fn duration(&self) -> Duration {
        self.ttft + self.per_token * self.completion_tokens
    }
}

/// Decides the outcome of one request. Faults are tried in a fixed order (timeout, 5xx, rate
/// limit), at most one per request; a malformed body or a disconnect spoils a generated reply.
pub fn respond(profile: &Profile, draw: &Draw, req: &GenRequest<'_>) -> Outcome {
    let lower = req.prompt.to_lowercase();
    let eff = profile.effective(req.prompt, &lower);
    let rates = &eff.rates;

    if draw.rng(Purpose::Timeout).bernoulli(rates.timeout) {
        return Outcome::Fault(Fault::Timeout);
    }
    let mut rng = draw.rng(Purpose::ServerError);
    if rng.bernoulli(rates.error_5xx) {
        let status = [500, 502, 503][rng.below(3) as usize];
        return Outcome::Fault(Fault::ServerError { status });
    }
    if draw.rng(Purpose::RateLimit).bernoulli(rates.rate_limit) {
        return Outcome::Fault(Fault::RateLimit {
            retry_after_secs: profile.retry_after_secs,
        });
    }
    let mut rng = draw.rng(Purpose::Malformed);
    let malformed = rng.bernoulli(rates.malformed).then(|| rng.below(4) as u8);

    let mut notes = Notes::default();
    let sampled = sample_length(profile, eff.median_tokens, eff.sigma, draw);
    let mut text_rng = draw.rng(Purpose::Text);
    let full = if draw.rng(Purpose::Refusal).bernoulli(rates.refusal) {
        notes.refused = true;
        text::refusal(&mut text_rng).to_string()
    } else {
        let answer = profile.answer_for(req.prompt, &lower);
        let p_correct = answer.and_then(|a| a.correct).unwrap_or(rates.correct);
        let correct = draw.rng(Purpose::Correct).bernoulli(p_correct);
        notes.wrong_answer = answer.is_some() && !correct;
        if req.json_mode || lower.contains("json") {
            notes.json = true;
            let mut value = match answer {
                Some(a) => {
                    let v = a.json.clone().unwrap_or_else(
                        || serde_json::json!({ "answer": a.text.clone().unwrap_or_default() }),
                    );
                    if correct {
                        v
                    } else {
                        text::perturb_json(&v, &mut text_rng)
                    }
                }
                // About eight words of keys and punctuation around the prose.
                None => {
                    text::generic_json_in(profile.wording, &mut text_rng, sampled.saturating_sub(8))
                }
            };
            let mut json_rng = draw.rng(Purpose::Json);
            if json_rng.bernoulli(rates.json_schema_break) {
                notes.json_schema_break = true;
                value = text::break_schema(&value, &mut json_rng);
            }
            let mut t = text::to_json_text(&value);
            if json_rng.bernoulli(rates.json_invalid) {
                notes.json_invalid = true;
                t = text::break_syntax(&t, &mut json_rng);
            }
            if json_rng.bernoulli(rates.json_fenced) {
                t = text::fence(&t);
            }
            t
        } else {
            match answer {
                Some(a) => {
                    let right = a
                        .text
                        .clone()
                        .or_else(|| a.json.as_ref().map(text::to_json_text))
                        .unwrap_or_default();
                    let said = if correct {
                        right
                    } else {
                        wrong_text(&right, &a.wrong, &mut text_rng)
                    };
                    let have = text::word_count(&said);
                    if a.filler && sampled > have {
                        format!(
                            "{said}\n\n{}",
                            text::filler_in(profile.wording, &mut text_rng, sampled - have)
                        )
                    } else {
                        said
                    }
                }
                None => text::filler_in(profile.wording, &mut text_rng, sampled),
            }
        }
    };

    let (text, finish) = cut(&full, req, profile.length.max_tokens);
    notes.truncated = finish == Finish::Length;
    let mut lat = draw.rng(Purpose::Latency);
    let ttft_ms = lat.lognormal(profile.latency.ttft_median_ms, profile.latency.ttft_sigma);
    Outcome::Reply(Reply {
        completion_tokens: text::word_count(&text) as u32,
        prompt_tokens: text::word_count(req.prompt).max(1) as u32,
        text,
        finish,
        ttft: duration_ms(ttft_ms),
        per_token: duration_ms(profile.latency.per_token_ms),
        disconnect: malformed.is_none()
            && draw.rng(Purpose::Disconnect).bernoulli(rates.disconnect),
        malformed,
        id: crate::util::hex(&draw.rng(Purpose::Id).next_u64().to_be_bytes()),
        notes,
    })
}

/// Output tokens: lognormal around the median times the prompt's own factor
/// (`exp(between_probe_sigma · z)`, z from the prompt hash), at least 1, at most the cap.
fn sample_length(profile: &Profile, median: f64, sigma: f64, draw: &Draw) -> usize {
    let z = Rng::from_parts(&[PROBE_FACTOR, draw.prompt_hash]).normal();
    let factor = (profile.length.between_probe_sigma * z).exp();
    let n = draw
        .rng(Purpose::Length)
        .lognormal(median * factor, sigma)
        .round();
    (n.max(1.0) as usize).min(profile.length.max_tokens.max(1) as usize)
}

fn wrong_text(right: &str, wrong: &[String], rng: &mut Rng) -> String {
    if !wrong.is_empty() {
        return wrong[rng.below(wrong.len() as u64) as usize].clone();
    }
    text::perturb_numbers(right, rng).unwrap_or_else(|| "unknown".to_string())
}

/// Applies stop sequences, then the token limit.
fn cut(full: &str, req: &GenRequest<'_>, cap: u32) -> (String, Finish) {
    let stop_at = req
        .stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| full.find(s.as_str()))
        .min();
    let text = stop_at.map_or(full, |i| &full[..i]);
    let limit = req.max_tokens.map_or(cap, |m| m.min(cap)) as usize;
    if text::word_count(text) > limit {
        (text::take_words(text, limit).to_string(), Finish::Length)
    } else {
        (text.to_string(), Finish::Stop)
    }
}

fn duration_ms(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::from_secs_f64((ms / 1000.0).min(86_400.0))
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::profile::{Answer, Matcher};

    fn req(prompt: &str) -> GenRequest<'_> {
        GenRequest {
            prompt,
            max_tokens: None,
            stop: &[],
            json_mode: false,
        }
    }

    fn draw(prompt: &str, n: u64) -> Draw {
        Draw::new(7, 0, prompt, DrawSource::Occurrence(n))
    }

    fn reply(o: Outcome) -> Reply {
        match o {
            Outcome::Reply(r) => r,
            Outcome::Fault(f) => panic!("unexpected fault {f:?}"),
        }
    }

    fn quiet() -> Profile {
        let mut p = Profile::default();
        p.rates.refusal = 0.0;
        p.rates.json_invalid = 0.0;
        p.rates.json_schema_break = 0.0;
        p.rates.json_fenced = 0.0;
        p.rates.correct = 1.0;
        p
    }

    #[test]
    fn same_draw_same_outcome_and_sources_differ() {
        let p = Profile::default();
        let a = respond(&p, &draw("hello", 0), &req("hello"));
        let b = respond(&p, &draw("hello", 0), &req("hello"));
        assert_eq!(a, b);
        let c = respond(&p, &draw("hello", 1), &req("hello"));
        assert_ne!(a, c);
        let s = Draw::new(7, 0, "hello", DrawSource::RequestSeed(0));
        assert_ne!(a, respond(&p, &s, &req("hello")));
        let g = Draw::new(7, 1, "hello", DrawSource::Occurrence(0));
        assert_ne!(a, respond(&p, &g, &req("hello")));
        // A request seed does not depend on the server's seed (seed-paired canaries).
        let other = Draw::new(8, 0, "hello", DrawSource::RequestSeed(0));
        assert_eq!(
            respond(&p, &s, &req("hello")),
            respond(&p, &other, &req("hello"))
        );
    }

    #[test]
    fn lengths_follow_median_and_per_prompt_factor() {
        let mut p = quiet();
        p.length.between_probe_sigma = 0.0;
        p.length.median_tokens = 100.0;
        let mut lens: Vec<u32> = (0..2001)
            .map(|n| reply(respond(&p, &draw("q", n), &req("q"))).completion_tokens)
            .collect();
        lens.sort_unstable();
        let median = lens[1000] as f64;
        assert!((median - 100.0).abs() < 6.0, "median {median}");

        // With heterogeneity, two prompts get different typical lengths.
        p.length.between_probe_sigma = 1.0;
        p.length.sigma = 0.0;
        let a = reply(respond(&p, &draw("first", 0), &req("first"))).completion_tokens;
        let b = reply(respond(&p, &draw("second", 0), &req("second"))).completion_tokens;
        assert_ne!(a, b);
        let a2 = reply(respond(&p, &draw("first", 5), &req("first"))).completion_tokens;
        assert_eq!(a, a2, "sigma 0: a prompt always has its own length");
    }

    #[test]
    fn truncation_and_stop_sequences() {
        let mut p = quiet();
        p.length.median_tokens = 200.0;
        p.length.sigma = 0.0;
        p.length.between_probe_sigma = 0.0;
        let r = reply(respond(
            &p,
            &draw("q", 0),
            &GenRequest {
                max_tokens: Some(16),
                ..req("q")
            },
        ));
        assert_eq!(r.finish, Finish::Length);
        assert_eq!(r.completion_tokens, 16);
        assert!(r.notes.truncated);
        let r = reply(respond(&p, &draw("q", 0), &req("q")));
        assert_eq!((r.finish, r.completion_tokens), (Finish::Stop, 200));
        let stop = vec![".".to_string()];
        let r = reply(respond(
            &p,
            &draw("q", 0),
            &GenRequest {
                stop: &stop,
                ..req("q")
            },
        ));
        assert_eq!(r.finish, Finish::Stop);
        assert!(!r.text.contains('.') && r.completion_tokens < 30);
    }

    #[test]
    fn answers_are_right_at_the_configured_rate() {
        let mut p = quiet();
        p.rates.correct = 0.7;
        p.answers.push(Answer {
            matcher: Matcher::Contains("17 * 3".into()),
            text: Some("51".into()),
            json: None,
            wrong: vec![],
            filler: false,
            correct: None,
        });
        let prompt = "What is 17 * 3? Answer with the number only.";
        let mut right = 0;
        for n in 0..2000 {
            let r = reply(respond(&p, &draw(prompt, n), &req(prompt)));
            if r.text == "51" {
                right += 1;
                assert!(!r.notes.wrong_answer);
            } else {
                assert!(r.notes.wrong_answer);
                assert!(r.text.parse::<u32>().is_ok(), "{}", r.text);
            }
        }
        let rate = right as f64 / 2000.0;
        assert!((rate - 0.7).abs() < 0.035, "correct rate {rate}");
    }

    #[test]
    fn json_prompts_get_json_and_breakage_is_as_configured() {
        let mut p = quiet();
        let prompt = "Give me a JSON object describing a cat.";
        for n in 0..50 {
            let r = reply(respond(&p, &draw(prompt, n), &req(prompt)));
            let v: serde_json::Value = serde_json::from_str(&r.text).unwrap();
            assert!(v["answer"].is_string() && v["confidence"].is_number());
        }
        p.rates.json_invalid = 1.0;
        for n in 0..50 {
            let r = reply(respond(&p, &draw(prompt, n), &req(prompt)));
            assert!(serde_json::from_str::<serde_json::Value>(&r.text).is_err());
            assert!(r.notes.json_invalid);
        }
        p.rates.json_invalid = 0.0;
        p.rates.json_fenced = 1.0;
        let r = reply(respond(&p, &draw(prompt, 0), &req(prompt)));
        assert!(r.text.starts_with("```json\n"));
        // JSON mode without the word in the prompt.
        p.rates.json_fenced = 0.0;
        let r = reply(respond(
            &p,
            &draw("describe a cat", 0),
            &GenRequest {
                json_mode: true,
                ..req("describe a cat")
            },
        ));
        assert!(serde_json::from_str::<serde_json::Value>(&r.text).is_ok());
    }

    #[test]
    fn refusals_and_faults_at_rate_one() {
        let mut p = quiet();
        p.rates.refusal = 1.0;
        let r = reply(respond(&p, &draw("x", 0), &req("x")));
        assert!(r.notes.refused && text::REFUSALS.contains(&r.text.as_str()));
        p.rates.disconnect = 1.0;
        let r = reply(respond(&p, &draw("x", 0), &req("x")));
        assert!(r.disconnect && r.malformed.is_none());
        p.rates.malformed = 1.0;
        let variants: std::collections::BTreeSet<u8> = (0..100)
            .map(|n| reply(respond(&p, &draw("x", n), &req("x"))))
            .map(|r| {
                assert!(!r.disconnect, "malformed wins over disconnect");
                r.malformed.unwrap()
            })
            .collect();
        assert_eq!(variants.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
        p.rates.rate_limit = 1.0;
        p.retry_after_secs = 7;
        assert_eq!(
            respond(&p, &draw("x", 0), &req("x")),
            Outcome::Fault(Fault::RateLimit {
                retry_after_secs: 7
            })
        );
        p.rates.error_5xx = 1.0;
        let mut statuses = std::collections::BTreeSet::new();
        for n in 0..100 {
            match respond(&p, &draw("x", n), &req("x")) {
                Outcome::Fault(Fault::ServerError { status }) => statuses.insert(status),
                other => panic!("{other:?}"),
            };
        }
        assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [500, 502, 503]);
        p.rates.timeout = 1.0;
        assert_eq!(
            respond(&p, &draw("x", 0), &req("x")),
            Outcome::Fault(Fault::Timeout)
        );
    }

    #[test]
    fn changing_one_rate_keeps_other_decisions() {
        let a = quiet();
        let mut b = quiet();
        b.rates.json_fenced = 0.5;
        for n in 0..20 {
            let ra = reply(respond(&a, &draw("plain", n), &req("plain")));
            let rb = reply(respond(&b, &draw("plain", n), &req("plain")));
            assert_eq!(ra.text, rb.text);
        }
    }
}
