//! Response texts: refusals, filler prose, JSON answers and the ways they go wrong.
//!
//! Pure functions of their inputs and a [`Rng`]. A "token" is a whitespace-separated word here,
//! so lengths in tokens are easy to count on both sides of the wire.

use crate::rng::Rng;
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// Refusals as real models phrase them, some in other languages, for refusal detectors anchored
/// on such phrasing.
pub const REFUSALS: &[&str] = &[
    "I'm sorry, but I can't help with that.",
    "I can't assist with that request.",
    "I won't provide instructions for that, because they could be used to cause harm.",
    "I'm sorry, but I cannot comply with this request.",
    "I'm not able to help with that request.",
    "As an AI language model, I cannot help with this.",
    "I apologize, but I can't provide that information.",
    "Sorry, I can't help with that. If you have another question, I'm happy to help.",
    "I must decline this request.",
    "I’m sorry, but I can’t help with that request.",
    "I cannot provide assistance with this, as it may be unsafe.",
    "Je suis désolé, mais je ne peux pas vous aider avec cela.",
    "Es tut mir leid, aber dabei kann ich nicht helfen.",
    "Lo siento, pero no puedo ayudar con eso.",
    "Mi dispiace, ma non posso aiutarti con questa richiesta.",
];

/// Neutral sentences for filler: no digits, braces or refusal-like phrasing, so they never
/// disturb number, JSON or refusal checks.
const SENTENCES: &[&str] = &[
    "This approach keeps the process simple and predictable.",
    "In practice the details depend on your environment and the tools you already use.",
    "A good first step is to check the current state before changing anything.",
    "Most people find it helpful to test the result on a small example first.",
    "The main idea is to break the problem into smaller parts and solve each one in turn.",
    "Keep an eye on the output so that surprises show up early.",
    "If something looks wrong, go back one step and compare with what you expected.",
    "There are several ways to do this, and each has its own trade-offs.",
    "The simplest option is often the most reliable one.",
    "Documentation for the tool usually lists the relevant options in detail.",
    "It also helps to write down what you tried, so the steps are easy to repeat.",
    "When in doubt, prefer the choice that is easiest to undo.",
    "Small, careful changes make it much easier to see what made a difference.",
    "This works well for everyday cases and scales to larger ones with little effort.",
    "You can adapt the same pattern to related tasks without much change.",
    "Consistency matters more than any single clever trick here.",
    "Clear names and short steps make the whole thing easier to follow.",
    "Afterwards, a quick review confirms that everything behaves as intended.",
    "Many teams settle on a short checklist for exactly this kind of task.",
    "The result should be easy to read and easy to verify.",
    "That way the outcome stays the same even when the inputs change slightly.",
    "Finally, remember to clean up anything temporary that you created along the way.",
    "Each part of the answer builds on the previous one.",
    "Think about who will read the result and what they need from it.",
];

/// Alternate filler: the same register in other words, for a model that no rate tells apart.
const ALT_SENTENCES: &[&str] = &[
    "Start from what already works and extend it one piece at a time.",
    "Usually the surrounding setup decides which variant fits best.",
    "Checking the present situation first saves effort later on.",
    "Trying the idea on a tiny case before the real one tends to pay off.",
    "Splitting the job into pieces and finishing them one by one is the core of it.",
    "Watch the results as you go so nothing unexpected slips through.",
    "Should anything seem off, retrace the last move and compare notes.",
    "Several routes lead there, each with its own costs and benefits.",
    "Plain solutions are frequently the sturdiest ones.",
    "The reference pages of the software normally describe every setting.",
    "Keeping notes on each attempt makes the procedure simple to redo.",
    "If unsure, pick whatever can be reverted most easily.",
    "Modest, deliberate edits reveal far more clearly what mattered.",
    "It suits routine situations and grows to bigger ones without fuss.",
    "The same recipe carries over to neighbouring problems almost unchanged.",
    "Being steady beats any one smart shortcut in this area.",
    "Plain labels and brief stages keep everything readable.",
    "A short look at the end shows that all of it runs as planned.",
    "Plenty of groups rely on a brief list of checks for jobs like this.",
    "What comes out ought to be simple to read and simple to confirm.",
    "Then the result holds steady even when the starting data shifts a bit.",
    "Lastly, tidy away any scratch material made during the work.",
    "Every section of the reply rests on the one before it.",
    "Consider the reader of the output and what they require from it.",
];

/// Which prose a simulated model writes around its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wording {
    #[default]
    Plain,
    Alternate,
}

/// Whitespace-separated words: the simulator's token count.
pub fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// The prefix of `s` holding its first `n` words (inner whitespace kept, no trailing space).
pub fn take_words(s: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let mut seen = 0;
    let mut in_word = false;
    for (i, ch) in s.char_indices() {
        if ch.is_whitespace() {
            if in_word {
                in_word = false;
                if seen == n {
                    return &s[..i];
                }
            }
        } else if !in_word {
            in_word = true;
            seen += 1;
        }
    }
    s
}

/// Splits text into stream pieces, one word each with its leading whitespace; concatenated they
/// give back `s` exactly (trailing whitespace joins the last piece).
pub fn pieces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut word_end) = (0, 0);
    let (mut in_word, mut seen_word) = (false, false);
    for (i, ch) in s.char_indices() {
        if ch.is_whitespace() {
            if in_word {
                in_word = false;
                word_end = i;
            }
        } else if !in_word {
            if seen_word {
                out.push(&s[start..word_end]);
                start = word_end;
            }
            in_word = true;
            seen_word = true;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// A refusal text.
pub fn refusal(rng: &mut Rng) -> &'static str {
    REFUSALS[rng.below(REFUSALS.len() as u64) as usize]
}

/// Exactly `words` words of neutral prose (a final sentence may be cut short).
pub fn filler(rng: &mut Rng, words: usize) -> String {
    filler_in(Wording::Plain, rng, words)
}

/// [`filler`] in the given wording: the same number of words, the same draws.
pub fn filler_in(wording: Wording, rng: &mut Rng, words: usize) -> String {
    let sentences = match wording {
        Wording::Plain => SENTENCES,
        Wording::Alternate => ALT_SENTENCES,
    };
    let mut out = String::new();
    let mut count = 0;
    while count < words {
        let sentence = sentences[rng.below(sentences.len() as u64) as usize];
        for w in sentence.split_whitespace() {
            if count == words {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
            count += 1;
        }
    }
    out
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d+(?:\.\d+)?").unwrap_or_else(|_| unreachable!("constant regex"))
});

/// A plausible wrong number: off by a small amount or a factor of ten, never equal.
fn wrong_number(n: f64, rng: &mut Rng) -> f64 {
    let deltas = [1.0, 2.0, 3.0, 10.0];
    let d = deltas[rng.below(deltas.len() as u64) as usize];
    if rng.bernoulli(0.5) && n - d >= 0.0 {
        n - d
    } else {
        n + d
    }
}

/// Replaces every number in `text` with a wrong one; `None` when it holds no number.
pub fn perturb_numbers(text: &str, rng: &mut Rng) -> Option<String> {
    if !NUMBER.is_match(text) {
        return None;
    }
    let out = NUMBER.replace_all(text, |c: &regex::Captures<'_>| {
        let s = &c[0];
        let decimals = s.split_once('.').map_or(0, |(_, f)| f.len());
        let n: f64 = s.parse().unwrap_or(0.0);
        format!("{:.*}", decimals, wrong_number(n, rng))
    });
    Some(out.into_owned())
}

/// A wrong version of a JSON answer: numbers perturbed, or (without numbers) the first string
/// replaced.
pub fn perturb_json(value: &Value, rng: &mut Rng) -> Value {
    fn numbers(v: &mut Value, rng: &mut Rng) -> bool {
        match v {
            Value::Number(n) => {
                let wrong = if let Some(i) = n.as_i64() {
                    Value::from(wrong_number(i as f64, rng) as i64)
                } else {
                    let f = n.as_f64().unwrap_or(0.0);
                    serde_json::Number::from_f64(wrong_number(f, rng))
                        .map_or(Value::Null, Value::Number)
                };
                *v = wrong;
                true
            }
            Value::Array(a) => a.iter_mut().fold(false, |acc, x| numbers(x, rng) | acc),
            Value::Object(o) => o.values_mut().fold(false, |acc, x| numbers(x, rng) | acc),
            _ => false,
        }
    }
    fn first_string(v: &mut Value) -> bool {
        match v {
            Value::String(s) => {
                *s = "unknown".into();
                true
            }
            Value::Array(a) => a.iter_mut().any(first_string),
            Value::Object(o) => o.values_mut().any(first_string),
            _ => false,
        }
    }
    let mut v = value.clone();
    if !numbers(&mut v, rng) && !first_string(&mut v) {
        v = Value::String("unknown".into());
    }
    v
}

/// A JSON value that breaks a schema the correct one satisfies: a key dropped, or a value of
/// the wrong type.
pub fn break_schema(value: &Value, rng: &mut Rng) -> Value {
    match value {
        Value::Object(o) if !o.is_empty() => {
            let mut o = o.clone();
            let keys: Vec<String> = o.keys().cloned().collect();
            let key = &keys[rng.below(keys.len() as u64) as usize];
            if rng.bernoulli(0.5) {
                o.remove(key);
            } else if let Some(v) = o.get_mut(key) {
                *v = wrong_type(v);
            }
            Value::Object(o)
        }
        other => wrong_type(other),
    }
}

fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::Array(vec![Value::String(s.clone())]),
        Value::Null => Value::String("none".into()),
        other => Value::String(other.to_string()),
    }
}

/// JSON text with broken syntax: a missing closing brace, a trailing comma or single quotes.
pub fn break_syntax(text: &str, rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => match text.rfind(['}', ']']) {
            Some(i) => format!("{}{}", &text[..i], &text[i + 1..]),
            None => format!("{text},"),
        },
        1 => match text.rfind(['}', ']']) {
            Some(i) => format!("{},\n{}", text[..i].trim_end(), &text[i..]),
            None => format!("{text},"),
        },
        _ => {
            let swapped = text.replace('"', "'");
            if swapped == text {
                format!("{{{text}")
            } else {
                swapped
            }
        }
    }
}

/// A generic JSON answer for prompts that ask for JSON without a known answer; `words` sizes
/// the prose in it.
pub fn generic_json(rng: &mut Rng, words: usize) -> Value {
    generic_json_in(Wording::Plain, rng, words)
}

/// [`generic_json`] with its prose in the given wording.
pub fn generic_json_in(wording: Wording, rng: &mut Rng, words: usize) -> Value {
    let mut o = Map::new();
    o.insert(
        "answer".into(),
        Value::String(filler_in(wording, rng, words.max(1))),
    );
    let confidence = (0.6 + 0.39 * rng.f64()) * 100.0;
    o.insert("confidence".into(), Value::from(confidence.round() / 100.0));
    o.insert(
        "tags".into(),
        Value::Array(vec!["general".into(), "summary".into()]),
    );
    Value::Object(o)
}

/// JSON as a model writes it: pretty-printed.
pub fn to_json_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Wraps JSON in a Markdown code fence, as chat models often do.
pub fn fence(text: &str) -> String {
    format!("```json\n{text}\n```")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_words_and_pieces_agree_with_word_count() {
        let s = "  one two\n\nthree   four ";
        assert_eq!(word_count(s), 4);
        assert_eq!(take_words(s, 2), "  one two");
        assert_eq!(take_words(s, 4), "  one two\n\nthree   four");
        assert_eq!(take_words(s, 9), s);
        assert_eq!(take_words(s, 0), "");
        let p = pieces(s);
        assert_eq!(p.len(), 4);
        assert_eq!(p.concat(), s);
        assert_eq!(p[0], "  one");
        assert_eq!(p[1], " two");
        assert_eq!(pieces("a").concat(), "a");
        assert!(pieces("").is_empty());
        assert_eq!(pieces("héllo wörld").len(), 2);
    }

    #[test]
    fn alternate_wording_has_the_same_length_and_other_words() {
        for n in [1, 7, 40] {
            let plain = filler_in(Wording::Plain, &mut Rng::new(5), n);
            let alt = filler_in(Wording::Alternate, &mut Rng::new(5), n);
            assert_eq!(word_count(&alt), n);
            assert_ne!(plain, alt);
        }
        for s in ALT_SENTENCES {
            assert!(
                !s.chars()
                    .any(|c| c.is_ascii_digit() || c == '{' || c == '}')
            );
        }
    }

    #[test]
    fn filler_has_exact_word_count_and_no_digits_or_braces() {
        let mut rng = Rng::new(1);
        for n in [1, 7, 50, 333] {
            let f = filler(&mut rng, n);
            assert_eq!(word_count(&f), n);
            assert!(!f.chars().any(|c| c.is_ascii_digit() || c == '{'));
        }
        for s in SENTENCES {
            let l = s.to_lowercase();
            for bad in ["sorry", "can't", "cannot", "unable", "won't", "not able"] {
                assert!(!l.contains(bad), "{s}");
            }
        }
    }

    #[test]
    fn perturbed_numbers_always_differ() {
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let w = perturb_numbers("The answer is 51.", &mut rng).unwrap();
            assert_ne!(w, "The answer is 51.");
            assert!(w.starts_with("The answer is "));
            let d = perturb_numbers("0.5", &mut rng).unwrap();
            assert_ne!(d, "0.5");
            assert_eq!(d.split_once('.').unwrap().1.len(), 1);
        }
        assert_eq!(perturb_numbers("positive", &mut rng), None);
    }

    #[test]
    fn perturbed_json_differs_and_keeps_shape() {
        let mut rng = Rng::new(4);
        let v = serde_json::json!({"vendor": "ACME", "total": 42.5, "n": 3});
        for _ in 0..50 {
            let w = perturb_json(&v, &mut rng);
            assert_ne!(w, v);
            assert_eq!(w["vendor"], "ACME");
            assert!(w["total"].is_number() && w["n"].is_i64());
        }
        let s = serde_json::json!({"label": "positive"});
        assert_eq!(
            perturb_json(&s, &mut rng),
            serde_json::json!({"label": "unknown"})
        );
    }

    #[test]
    fn broken_schema_drops_or_retypes_a_key() {
        let mut rng = Rng::new(5);
        let v = serde_json::json!({"vendor": "ACME", "total": 42.5});
        let (mut dropped, mut retyped) = (0, 0);
        for _ in 0..100 {
            let b = break_schema(&v, &mut rng);
            let o = b.as_object().unwrap();
            if o.len() == 1 {
                dropped += 1;
            } else {
                retyped += 1;
                assert!(!o["vendor"].is_string() || !o["total"].is_number(), "{b}");
            }
        }
        assert!(dropped > 20 && retyped > 20);
    }

    #[test]
    fn broken_syntax_never_parses() {
        let mut rng = Rng::new(6);
        let text = to_json_text(&serde_json::json!({"a": 1, "b": ["x"]}));
        for _ in 0..100 {
            let b = break_syntax(&text, &mut rng);
            assert!(serde_json::from_str::<Value>(&b).is_err(), "{b}");
        }
    }

    #[test]
    fn generic_json_parses_and_fence_wraps() {
        let mut rng = Rng::new(7);
        let v = generic_json(&mut rng, 20);
        assert_eq!(word_count(v["answer"].as_str().unwrap()), 20);
        let f = fence(&to_json_text(&v));
        assert!(f.starts_with("```json\n") && f.ends_with("\n```"));
    }
}
