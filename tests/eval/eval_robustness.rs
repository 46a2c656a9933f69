//! Evaluation never panics: random texts built from the characters that drive the guards and
//! the parsers (quotes, fences, brackets, multi-byte letters, refusal fragments), judged with
//! every kind of check, with finish reasons `stop`, `length` and `content_filter`.

use modelwatch::eval::{CompiledChecks, Evaluator, RefusalConfig};
use modelwatch::probe::Expect;
use modelwatch::rng::Rng;
use modelwatch::sample::{Completion, FinishReason};
use std::path::Path;

const PIECES: &[&str] = &[
    "I can't",
    " help",
    " with that",
    "\"",
    "“",
    "”",
    "„",
    "«",
    "»",
    "「",
    "」",
    "`",
    "```json\n",
    "```",
    "\n",
    "\n\n",
    "> ",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"a\"",
    "1",
    "-2.5e3",
    "1,234",
    ".",
    "!",
    "?",
    "。",
    "не могу",
    " помочь",
    "我无法",
    "帮",
    "お手伝いできません",
    "ich kann",
    " nicht helfen",
    "no puedo",
    " ayudar",
    "can't help but",
    "é",
    "🙂",
    " ",
    "\t",
    "\\",
    "’",
    "I'd rather not",
    "sorry",
    "\u{3000}",
    "\u{0}",
];

const EXPECTS: &[&str] = &[
    "json = true\ntask = { kind = 'json_equals', pointer = '/a', value = 1 }",
    "json_schema = { type = 'object', required = ['a'] }\ntask = { kind = 'json_contains', pointer = '', value = { a = 1 } }",
    "task = { kind = 'all', checks = [{ kind = 'equals', value = 'x' }, { kind = 'contains', values = ['é'] }, { kind = 'not_contains', values = ['🙂'], mode = 'all' }] }",
    "task = { kind = 'any', checks = [{ kind = 'regex', pattern = '\\d+' }, { kind = 'starts_with', value = 'Ün' }, { kind = 'one_of', values = ['a', 'b'] }, { kind = 'number', value = 1, rel_tol = 0.1 }] }",
];

#[test]
fn random_texts_never_panic_and_measure_consistently() {
    let evaluator = Evaluator::new(&RefusalConfig {
        extra_patterns: vec!["(?i)computer says no".into()],
        exclusions: vec!["(?i)sorry".into()],
    })
    .unwrap();
    let checks: Vec<CompiledChecks> = EXPECTS
        .iter()
        .map(|e| {
            let expect: Expect = toml::from_str(e).unwrap();
            CompiledChecks::compile(&expect, Path::new(".")).unwrap()
        })
        .collect();
    let mut rng = Rng::new(7);
    for round in 0..3000 {
        let n = rng.below(40) as usize;
        let text: String = (0..n)
            .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
            .collect();
        let completion = Completion {
            text: text.clone(),
            finish_reason: Some(match rng.below(10) {
                0..=2 => FinishReason::Length,
                3 => FinishReason::ContentFilter,
                _ => FinishReason::Stop,
            }),
            ..Completion::default()
        };
        let c = &checks[round % checks.len()];
        let m = evaluator.evaluate(&completion, Some(c));
        let e = evaluator.explain(&completion, Some(c));
        assert_eq!(
            m, e.measurements,
            "evaluate and explain disagree on {text:?}"
        );
        assert_eq!(m.chars as usize, text.chars().count());
        assert_eq!(m.lines as usize, text.lines().count());
        assert!(!(m.empty && m.refusal), "empty and refusal on {text:?}");
        if let Some([a, b]) = e.why.refusal.span {
            assert!(
                text.get(a..b).is_some(),
                "span {a}..{b} not on char boundaries"
            );
        }
        serde_json::to_string(&e).unwrap();
    }
}
