//! The `[margins]` table: practical margins and decision parameters of the verdict engine
//! (`drift::Margins`), each key optional over the documented default.

use crate::diag::fields::{Fields, Reader};
use crate::drift::Margins;
use toml::Spanned;
use toml::de::DeValue;

/// How small a change the verdicts treat as a regression: a preset of the rate and length
/// margins. `fine` halves the default margins (more samples to decide), `coarse` widens them
/// (fewer samples; only larger changes count). Explicit `[margins]` keys override a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Sensitivity {
    Coarse,
    #[default]
    Default,
    Fine,
}

impl Sensitivity {
    pub const NAMES: [&'static str; 3] = ["coarse", "default", "fine"];

    pub fn from_name(name: &str) -> Option<Sensitivity> {
        match name {
            "coarse" => Some(Sensitivity::Coarse),
            "default" => Some(Sensitivity::Default),
            "fine" => Some(Sensitivity::Fine),
            _ => None,
        }
    }

    /// Applies the preset's margins to `m`, leaving the decision parameters (alpha,
    /// confidence, error budget, gates, flips) as they are.
    pub fn apply(self, m: &mut Margins) {
        let d = Margins::default();
        let (points, cliffs, ratio) = match self {
            Sensitivity::Default => (1.0, d.length_cliffs_delta, 1.15f64),
            Sensitivity::Coarse => (2.5, 0.33, 1.30),
            Sensitivity::Fine => (0.5, 0.11, 1.075),
        };
        m.refusal_points = d.refusal_points * points;
        m.empty_points = d.empty_points * points;
        m.structured_points = d.structured_points * points;
        m.task_failure_points = d.task_failure_points * points;
        m.truncation_points = d.truncation_points * points;
        m.length_cliffs_delta = cliffs;
        m.length_log_ratio = ratio.ln();
    }
}

/// Keys of `[margins]`: the preset and the fields of [`Margins`].
pub(crate) const MARGIN_KEYS: &[&str] = &[
    "sensitivity",
    "refusal_points",
    "refusal_relative_risk",
    "empty_points",
    "structured_points",
    "task_failure_points",
    // Deprecated name of `task_failure_points`, accepted for one release.
    "task_success_points",
    "truncation_points",
    "length_cliffs_delta",
    "length_log_ratio",
    "length_shape_ks",
    "latency_log_ratio",
    "latency_cliffs_delta",
    "alpha",
    "behaviour_alpha",
    "confidence",
    "max_error_rate",
    "performance_gates",
    "flip_min_change",
    "max_length_flips",
];

/// Rate margins are shares, not percentages: `2` where `0.02` was meant is the common mistake.
const SHARE_HELP: &str = "margins on rates are shares: 2 percentage points is 0.02";

/// Reads `[margins]` over the defaults. Every error is reported at its value.
pub(crate) fn read_margins(r: &mut Reader, value: Option<&Spanned<DeValue>>) -> Margins {
    let mut m = Margins::default();
    let Some(v) = value else {
        return m;
    };
    let Some(f) = r.table_value(v, "[margins]", MARGIN_KEYS) else {
        return m;
    };
    if let Some(name) = r.string(&f, "sensitivity") {
        match Sensitivity::from_name(name.get_ref()) {
            Some(s) => s.apply(&mut m),
            None => r.error(
                name.span(),
                format!(
                    "`sensitivity` in [margins] is \"{}\"; expected one of {}",
                    name.get_ref(),
                    Sensitivity::NAMES.join(", ")
                ),
            ),
        }
    }
    let share = |r: &mut Reader, key: &str, slot: &mut f64| {
        if let Some(x) = number(r, &f, key, 0.0, 1.0, Some(SHARE_HELP)) {
            *slot = x;
        }
    };
    share(r, "refusal_points", &mut m.refusal_points);
    share(r, "empty_points", &mut m.empty_points);
    share(r, "structured_points", &mut m.structured_points);
    share(r, "task_failure_points", &mut m.task_failure_points);
    if let Some(old) = f.key_span("task_success_points") {
        if f.get("task_failure_points").is_some() {
            r.error(
                old,
                "`task_success_points` is the deprecated name of `task_failure_points`; keep only \
                 `task_failure_points`",
            );
        } else {
            share(r, "task_success_points", &mut m.task_failure_points);
        }
    }
    share(r, "truncation_points", &mut m.truncation_points);
    share(r, "max_error_rate", &mut m.max_error_rate);
    share(r, "flip_min_change", &mut m.flip_min_change);
    let delta_help = Some("Cliff's delta lies between 0 and 1; 0.147 is a small effect");
    if let Some(x) = number(r, &f, "length_cliffs_delta", 0.0, 1.0, delta_help) {
        m.length_cliffs_delta = x;
    }
    if let Some(x) = number(r, &f, "latency_cliffs_delta", 0.0, 1.0, delta_help) {
        m.latency_cliffs_delta = x;
    }
    let ks_help = Some("a Kolmogorov–Smirnov distance lies between 0 and 1; 0.25 by default");
    if let Some(x) = number(r, &f, "length_shape_ks", 0.0, 1.0, ks_help) {
        m.length_shape_ks = x;
    }
    let log_help = Some("a natural log of a ratio: 15 % longer is ln(1.15) = 0.1398");
    if let Some(x) = number(r, &f, "length_log_ratio", 0.0, 10.0, log_help) {
        m.length_log_ratio = x;
    }
    if let Some(x) = number(r, &f, "latency_log_ratio", 0.0, 10.0, log_help) {
        m.latency_log_ratio = x;
    }
    if let Some(x) = number(
        r,
        &f,
        "refusal_relative_risk",
        1.0,
        1000.0,
        Some("a ratio of rates: 1.5 means half as many refusals again"),
    ) {
        m.refusal_relative_risk = x;
    }
    for (key, slot) in [
        ("alpha", &mut m.alpha),
        ("behaviour_alpha", &mut m.behaviour_alpha),
        ("confidence", &mut m.confidence),
    ] {
        if let Some(x) = number(r, &f, key, 0.0, 1.0, Some("a share: 95 % is 0.95")) {
            if x <= 0.0 || x >= 1.0 {
                let span = f.get(key).map(|v| v.span()).unwrap_or(0..0);
                r.error(
                    span,
                    format!("`{key}` in [margins] must be strictly between 0 and 1"),
                );
            } else {
                *slot = x;
            }
        }
    }
    if let Some(b) = r.bool(&f, "performance_gates") {
        m.performance_gates = *b.get_ref();
    }
    if let Some(n) = r.uint(&f, "max_length_flips", 0, 1000) {
        m.max_length_flips = *n.get_ref() as usize;
    }
    m
}

/// A number in `min..=max`, with a help text when it is out of range.
fn number(
    r: &mut Reader,
    f: &Fields,
    key: &str,
    min: f64,
    max: f64,
    help: Option<&str>,
) -> Option<f64> {
    let before = r.diags.len();
    let x = r.number(f, key, min, max).map(Spanned::into_inner);
    if let Some(help) = help
        && r.diags.len() > before
        && let Some(last) = r.diags.pop()
    {
        r.diags.push(last.with_help(help));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_scale_the_rate_margins_and_keep_the_decision_parameters() {
        let mut m = Margins {
            alpha: 0.01,
            ..Margins::default()
        };
        Sensitivity::Coarse.apply(&mut m);
        assert!((m.structured_points - 0.025).abs() < 1e-12);
        assert!((m.task_failure_points - 0.075).abs() < 1e-12);
        assert_eq!(m.alpha, 0.01);
        Sensitivity::Fine.apply(&mut m);
        assert!((m.refusal_points - 0.01).abs() < 1e-12);
        Sensitivity::Default.apply(&mut m);
        assert_eq!(Margins { alpha: 0.05, ..m }, Margins::default());
        for n in Sensitivity::NAMES {
            assert!(Sensitivity::from_name(n).is_some());
        }
    }

    #[test]
    fn the_deprecated_task_success_points_still_sets_the_task_failure_margin() {
        let read = |body: &str| {
            let text = format!(
                "[[target]]\nname = \"t\"\nprovider = \"ollama\"\nbase_url = \"http://h:1\"\n\
                 model = \"m\"\nsuites = [\"core\"]\n[margins]\n{body}\n"
            );
            crate::config::parse(crate::diag::Source::new("m.toml", &text), &|_| None)
        };
        let c = read("task_success_points = 0.07").unwrap();
        assert_eq!(c.margins.task_failure_points, 0.07);
        let c = read("task_failure_points = 0.06").unwrap();
        assert_eq!(c.margins.task_failure_points, 0.06);
        let err = read("task_failure_points = 0.06\ntask_success_points = 0.07").unwrap_err();
        let all = crate::diag::render_all(&err);
        assert!(
            all.contains("deprecated name of `task_failure_points`"),
            "{all}"
        );
    }
}
