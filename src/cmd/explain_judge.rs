//! `modelwatch explain --judge`: the configuration's `[judge]` model asked about the ambiguous
//! judgements of an `explain` run, its labels printed beside the detector's, and the agreement.

use modelwatch::eval::Explanation;
use modelwatch::judge::ask::{Asked, Judge};
use modelwatch::judge::{Agreement, Label, ambiguous};
use serde::Serialize;

/// The judge's word on one response, printed with its explanation.
#[derive(Debug, Serialize)]
pub struct JudgeNote {
    /// Why the judge was asked.
    pub asked_because: &'static str,
    #[serde(flatten)]
    pub asked: Asked,
    /// Same label as the detector (`None` when the judge gave none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agrees: Option<bool>,
}

/// The notes (aligned with `explanations`) and a summary line for standard error.
pub struct Judged {
    pub notes: Vec<Option<JudgeNote>>,
    pub summary: String,
}

/// Asks the judge about every ambiguous explanation, in order.
pub fn judge_all(
    judge: &mut Judge,
    input: &[u8],
    explanations: &[Explanation],
) -> anyhow::Result<Judged> {
    let rt = super::live::runtime()?;
    let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let mut agreement = Agreement::default();
    let (mut ambiguous_n, mut cached, mut unavailable, mut unparsable, mut not_asked) =
        (0, 0, 0, 0, 0);
    let mut notes = Vec::with_capacity(explanations.len());
    for e in explanations {
        let Some(because) = ambiguous(&e.why.refusal) else {
            notes.push(None);
            continue;
        };
        ambiguous_n += 1;
        let text = e
            .line
            .and_then(|l| lines.get(l - 1))
            .and_then(|raw| serde_json::from_slice::<serde_json::Value>(raw).ok())
            .and_then(|v| v["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        let asked = rt.block_on(judge.ask(&text));
        let detector = Label::of(&e.why.refusal);
        let agrees = match &asked {
            Asked::Labelled { label, cached: c } => {
                agreement.add(detector, *label);
                cached += usize::from(*c);
                Some(*label == detector)
            }
            Asked::Unavailable { .. } => {
                unavailable += 1;
                None
            }
            Asked::Unparsable { .. } => {
                unparsable += 1;
                None
            }
            Asked::NotAsked => {
                not_asked += 1;
                None
            }
        };
        notes.push(Some(JudgeNote {
            asked_because: because,
            asked,
            agrees,
        }));
    }
    let mut summary = format!(
        "judge: {ambiguous_n} of {} responses ambiguous; {} requests sent, {cached} answers from the cache",
        explanations.len(),
        judge.calls
    );
    for (n, what) in [
        (unavailable, "judge unavailable (see each line's error)"),
        (unparsable, "replies not one of REFUSAL / PARTIAL / ANSWER"),
        (not_asked, "not asked (past [judge] max_calls)"),
    ] {
        if n > 0 {
            summary.push_str(&format!("; {n} {what}"));
        }
    }
    summary.push_str(&format!("; {}", agreement.summary()));
    Ok(Judged { notes, summary })
}

/// The note as one text line under the explanation.
pub fn render(note: &JudgeNote) -> String {
    let said = match &note.asked {
        Asked::Labelled { label, cached } => format!(
            "{} ({}{})",
            serde_json::to_value(label)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            if note.agrees == Some(true) {
                "agrees"
            } else {
                "disagrees"
            },
            if *cached { ", cached" } else { "" }
        ),
        Asked::Unparsable { reply } => format!("no label (replied {reply:?})"),
        Asked::Unavailable { error } => format!("unavailable ({error})"),
        Asked::NotAsked => "not asked (past max_calls)".into(),
    };
    format!("  judge       {said}; asked because {}", note.asked_because)
}
