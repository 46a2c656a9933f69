//! The simulator's behaviour, read from a TOML profile.
//!
//! Every key is optional; [`Profile::default`] is the `raw` model: healthy rates without the
//! known answers of the starter probes (the `healthy` built-in adds them). Values are checked while
//! parsing so an error points at the offending line and column. `docs/simulator.md` documents
//! every key.

use super::SimError;
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Everything the simulated server does: what it claims to be and how it answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// Model names served; requests for other names get 404. The first is the default for
    /// OpenAI-compatible requests without `model`.
    #[serde(deserialize_with = "de_models")]
    pub models: Vec<String>,
    /// When set, every API request needs `Authorization: Bearer <key>` (401 otherwise).
    pub api_key: Option<Secret>,
    /// Multiplies every simulated delay; 0 never sleeps (benchmarks). Timeouts still hang.
    #[serde(deserialize_with = "de_nonneg")]
    pub latency_scale: f64,
    /// `Retry-After` seconds sent with 429 responses.
    pub retry_after_secs: u32,
    pub fingerprint: FingerprintSpec,
    pub server: ServerSpec,
    pub length: LengthSpec,
    pub latency: LatencySpec,
    pub rates: Rates,
    /// Overrides of rates and length for prompts that match, applied in file order (a later
    /// matching rule overrides an earlier one).
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    /// Known answers; the first matching one is used.
    #[serde(rename = "answer")]
    pub answers: Vec<Answer>,
    /// The prose the model writes around its answers (`plain` or `alternate`): equal lengths
    /// and rates, different words.
    pub wording: Wording,
}

pub use super::text::Wording;

impl Default for Profile {
    fn default() -> Self {
        Profile {
            models: vec!["sim-7b".to_string()],
            api_key: None,
            latency_scale: 1.0,
            retry_after_secs: 1,
            fingerprint: FingerprintSpec::default(),
            server: ServerSpec::default(),
            length: LengthSpec::default(),
            latency: LatencySpec::default(),
            rates: Rates::default(),
            rules: Vec::new(),
            answers: Vec::new(),
            wording: Wording::default(),
        }
    }
}

/// What the server reports about the model it serves; a change is a model swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FingerprintSpec {
    /// Ollama blob digest (64 hex digits), also in `/v1/models`.
    pub digest: String,
    pub family: String,
    pub parameter_size: String,
    /// Quantization level, e.g. `Q4_K_M`.
    pub quantization: String,
    pub format: String,
    /// Model size in bytes.
    pub size: u64,
    pub context_length: u32,
    /// Chat template (Ollama `/api/show`, llama.cpp `/props`).
    pub template: String,
    /// Ollama Modelfile parameters text.
    pub parameters: String,
    /// llama.cpp `model_path`, vLLM `root`.
    pub model_path: String,
    /// `system_fingerprint` in OpenAI-compatible responses.
    pub system_fingerprint: String,
    /// `owned_by` in `/v1/models`.
    pub owned_by: String,
    /// License text served by Ollama `/api/show` (`license`); empty: none.
    pub license: String,
    /// `general.license` in Ollama `/api/show` `model_info`; empty: left out.
    pub license_id: String,
}

impl Default for FingerprintSpec {
    fn default() -> Self {
        FingerprintSpec {
            digest: "5e2c1b7f0d4a9c3e8b6f1a2d7c4e9b0a3f6d8c1e5b7a9d2f4c6e8a0b1d3f5a7c".into(),
            family: "llama".into(),
            parameter_size: "7.2B".into(),
            quantization: "Q4_K_M".into(),
            format: "gguf".into(),
            size: 4_368_439_584,
            context_length: 8192,
            template: "{{- if .System }}<|system|>{{ .System }}<|end|>{{ end }}\
                       {{- range .Messages }}<|{{ .Role }}|>{{ .Content }}<|end|>{{ end }}\
                       <|assistant|>"
                .into(),
            parameters: "stop \"<|end|>\"\ntemperature 0.7".into(),
            model_path: "/models/sim-7b-Q4_K_M.gguf".into(),
            system_fingerprint: "fp_sim_5e2c1b7f".into(),
            owned_by: "modelwatch-sim".into(),
            license: "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n"
                .into(),
            license_id: "apache-2.0".into(),
        }
    }
}

/// Facts about the server software (not the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSpec {
    /// `/api/version`.
    pub version: String,
    /// llama.cpp-style `build_info` in `/props`.
    pub build_info: String,
    /// `total_slots` in `/props`.
    pub total_slots: u32,
}

impl Default for ServerSpec {
    fn default() -> Self {
        ServerSpec {
            version: "0.12.0".into(),
            build_info: "b6000-modelwatch-sim".into(),
            total_slots: 4,
        }
    }
}

/// Output length in tokens: lognormal around `median_tokens` × a per-prompt factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LengthSpec {
    #[serde(deserialize_with = "de_positive")]
    pub median_tokens: f64,
    /// Log-scale standard deviation within one prompt.
    #[serde(deserialize_with = "de_nonneg")]
    pub sigma: f64,
    /// Log-scale standard deviation of the per-prompt median factor (derived from a hash of
    /// the prompt, so each prompt has its own typical length).
    #[serde(deserialize_with = "de_nonneg")]
    pub between_probe_sigma: f64,
    /// Hard cap on generated tokens (the model's own limit).
    pub max_tokens: u32,
}

impl Default for LengthSpec {
    fn default() -> Self {
        LengthSpec {
            median_tokens: 120.0,
            sigma: 0.35,
            between_probe_sigma: 0.5,
            max_tokens: 4096,
        }
    }
}

/// Simulated timing, before `latency_scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencySpec {
    /// Median time to first token (lognormal).
    #[serde(deserialize_with = "de_nonneg")]
    pub ttft_median_ms: f64,
    #[serde(deserialize_with = "de_nonneg")]
    pub ttft_sigma: f64,
    /// Time per generated token.
    #[serde(deserialize_with = "de_nonneg")]
    pub per_token_ms: f64,
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            ttft_median_ms: 50.0,
            ttft_sigma: 0.3,
            per_token_ms: 2.0,
        }
    }
}

/// Probabilities, each in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rates {
    /// Answer with a refusal text.
    #[serde(deserialize_with = "de_prob")]
    pub refusal: f64,
    /// A matching `[[answer]]` is answered correctly (else a plausible wrong answer).
    #[serde(deserialize_with = "de_prob")]
    pub correct: f64,
    /// A JSON answer has broken syntax.
    #[serde(deserialize_with = "de_prob")]
    pub json_invalid: f64,
    /// A JSON answer drops a key or changes a value's type.
    #[serde(deserialize_with = "de_prob")]
    pub json_schema_break: f64,
    /// A JSON answer is wrapped in a Markdown code fence.
    #[serde(deserialize_with = "de_prob")]
    pub json_fenced: f64,
    /// HTTP 500, 502 or 503.
    #[serde(deserialize_with = "de_prob")]
    pub error_5xx: f64,
    /// HTTP 429 with `Retry-After`.
    #[serde(deserialize_with = "de_prob")]
    pub rate_limit: f64,
    /// Accept the request and never answer.
    #[serde(deserialize_with = "de_prob")]
    pub timeout: f64,
    /// A body that is not JSON, JSON of the wrong shape, invalid UTF-8, or a stream without
    /// its final message.
    #[serde(deserialize_with = "de_prob")]
    pub malformed: f64,
    /// Cut the connection mid-body (streaming: mid-stream).
    #[serde(deserialize_with = "de_prob")]
    pub disconnect: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            refusal: 0.02,
            correct: 0.95,
            json_invalid: 0.02,
            json_schema_break: 0.02,
            json_fenced: 0.25,
            error_5xx: 0.0,
            rate_limit: 0.0,
            timeout: 0.0,
            malformed: 0.0,
            disconnect: 0.0,
        }
    }
}

/// Which prompts a rule or answer applies to: a case-insensitive substring or a regex.
#[derive(Debug, Clone, Serialize)]
pub enum Matcher {
    #[serde(rename = "contains")]
    Contains(String),
    #[serde(rename = "regex", serialize_with = "ser_regex")]
    Regex(Regex),
}

impl Matcher {
    /// `prompt_lower` is the prompt lowercased (for `contains`), `prompt` the original.
    pub fn matches(&self, prompt: &str, prompt_lower: &str) -> bool {
        match self {
            Matcher::Contains(s) => prompt_lower.contains(&s.to_lowercase()),
            Matcher::Regex(r) => r.is_match(prompt),
        }
    }
}

/// Overrides for prompts matching `contains` or `regex` (exactly one of them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    #[serde(flatten)]
    pub matcher: Matcher,
    pub median_tokens: Option<f64>,
    pub sigma: Option<f64>,
    pub refusal: Option<f64>,
    pub correct: Option<f64>,
    pub json_invalid: Option<f64>,
    pub json_schema_break: Option<f64>,
    pub json_fenced: Option<f64>,
    pub error_5xx: Option<f64>,
    pub rate_limit: Option<f64>,
    pub timeout: Option<f64>,
    pub malformed: Option<f64>,
    pub disconnect: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    contains: Option<String>,
    #[serde(default, deserialize_with = "de_opt_regex")]
    regex: Option<Regex>,
    #[serde(default, deserialize_with = "de_opt_positive")]
    median_tokens: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_nonneg")]
    sigma: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    refusal: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    correct: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    json_invalid: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    json_schema_break: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    json_fenced: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    error_5xx: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    rate_limit: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    timeout: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    malformed: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_prob")]
    disconnect: Option<f64>,
}

fn matcher_of(
    contains: Option<String>,
    regex: Option<Regex>,
    what: &str,
) -> Result<Matcher, String> {
    match (contains, regex) {
        (Some(c), None) if !c.is_empty() => Ok(Matcher::Contains(c)),
        (Some(_), None) => Err(format!("`contains` of a {what} must not be empty")),
        (None, Some(r)) => Ok(Matcher::Regex(r)),
        (Some(_), Some(_)) => Err(format!(
            "a {what} has both `contains` and `regex`; give exactly one"
        )),
        (None, None) => Err(format!(
            "a {what} needs `contains = \"…\"` or `regex = \"…\"` to say which prompts it matches"
        )),
    }
}

impl TryFrom<RawRule> for Rule {
    type Error = String;
    fn try_from(r: RawRule) -> Result<Self, String> {
        Ok(Rule {
            matcher: matcher_of(r.contains, r.regex, "[[rule]]")?,
            median_tokens: r.median_tokens,
            sigma: r.sigma,
            refusal: r.refusal,
            correct: r.correct,
            json_invalid: r.json_invalid,
            json_schema_break: r.json_schema_break,
            json_fenced: r.json_fenced,
            error_5xx: r.error_5xx,
            rate_limit: r.rate_limit,
            timeout: r.timeout,
            malformed: r.malformed,
            disconnect: r.disconnect,
        })
    }
}

impl Rule {
    /// A rule matching `contains` with no overrides yet (set the fields you need).
    pub fn contains(s: &str) -> Rule {
        Rule {
            matcher: Matcher::Contains(s.to_string()),
            median_tokens: None,
            sigma: None,
            refusal: None,
            correct: None,
            json_invalid: None,
            json_schema_break: None,
            json_fenced: None,
            error_5xx: None,
            rate_limit: None,
            timeout: None,
            malformed: None,
            disconnect: None,
        }
    }
}

/// The correct answer to prompts matching `contains` or `regex`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawAnswer")]
pub struct Answer {
    #[serde(flatten)]
    pub matcher: Matcher,
    /// The answer for prose prompts (also used for JSON prompts when `json` is absent).
    pub text: Option<String>,
    /// The answer object for prompts asking for JSON.
    pub json: Option<serde_json::Value>,
    /// Plausible wrong answers; without them numbers in the answer are perturbed.
    pub wrong: Vec<String>,
    /// Follow the answer with filler text up to the sampled length (`false`: the answer alone,
    /// for checks that need the whole response to equal it).
    pub filler: bool,
    /// Overrides `rates.correct` and rule values for this answer.
    pub correct: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    contains: Option<String>,
    #[serde(default, deserialize_with = "de_opt_regex")]
    regex: Option<Regex>,
    text: Option<String>,
    json: Option<serde_json::Value>,
    #[serde(default)]
    wrong: Vec<String>,
    #[serde(default = "yes")]
    filler: bool,
    #[serde(default, deserialize_with = "de_opt_prob")]
    correct: Option<f64>,
}

fn yes() -> bool {
    true
}

impl TryFrom<RawAnswer> for Answer {
    type Error = String;
    fn try_from(a: RawAnswer) -> Result<Self, String> {
        if a.text.is_none() && a.json.is_none() {
            return Err("an [[answer]] needs `text = \"…\"` or `json = { … }`".into());
        }
        Ok(Answer {
            matcher: matcher_of(a.contains, a.regex, "[[answer]]")?,
            text: a.text,
            json: a.json,
            wrong: a.wrong,
            filler: a.filler,
            correct: a.correct,
        })
    }
}

/// An API key that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// The values that apply to one prompt after rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub rates: Rates,
    pub median_tokens: f64,
    pub sigma: f64,
}

/// The example profiles shipped in `sim/profiles/`, compiled in so a demo needs no files.
const BUILTIN: &[(&str, &str)] = &[
    ("healthy", include_str!("../../sim/profiles/healthy.toml")),
    ("degraded", include_str!("../../sim/profiles/degraded.toml")),
    ("reworded", include_str!("../../sim/profiles/reworded.toml")),
];

/// The built-in profile without the known answers of the starter probes.
pub const RAW: &str = "raw";

impl Profile {
    /// A shipped example profile by name: `healthy` (a baseline), `degraded` (a bad swap:
    /// more refusals of benign prompts, longer answers, broken JSON, lower correctness),
    /// `reworded` (the healthy rates and fingerprint, other words: a change no fingerprint
    /// shows) or `raw` (the code defaults: no known answers, so task and JSON probes fail,
    /// and full-scale latency; a fingerprint of its own).
    pub fn builtin(name: &str) -> Option<Profile> {
        if name == RAW {
            return Some(Profile::raw());
        }
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Profile::from_toml(text).ok()
    }

    /// Names accepted by [`Profile::builtin`].
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n).chain([RAW])
    }

    /// [`Profile::default`] under a fingerprint of its own, so it is never mistaken for the
    /// healthy model.
    pub fn raw() -> Profile {
        let mut p = Profile::default();
        let f = &mut p.fingerprint;
        f.digest = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0".into();
        f.quantization = "F16".into();
        f.size = 14_484_731_904;
        f.model_path = "/models/sim-7b-raw-F16.gguf".into();
        f.system_fingerprint = "fp_sim_0f1e2d3c".into();
        p
    }

    /// Parses and validates a profile. Errors carry the line and column of the bad value.
    pub fn from_toml(text: &str) -> Result<Profile, SimError> {
        let profile: Profile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            SimError::Profile {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks a profile built in code (parsing already checks each value where it stands).
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |message: String| Err(SimError::InvalidProfile { message });
        if let Err(m) = check_models(&self.models) {
            return invalid(m);
        }
        if let Err(m) = check_nonneg(self.latency_scale) {
            return invalid(format!("latency_scale: {m}"));
        }
        let r = &self.rates;
        for (name, v) in rate_fields(r) {
            if let Err(m) = check_prob(v) {
                return invalid(format!("rates.{name}: {m}"));
            }
        }
        if let Err(m) = check_positive(self.length.median_tokens) {
            return invalid(format!("length.median_tokens: {m}"));
        }
        for (name, v) in [
            ("length.sigma", self.length.sigma),
            (
                "length.between_probe_sigma",
                self.length.between_probe_sigma,
            ),
            ("latency.ttft_median_ms", self.latency.ttft_median_ms),
            ("latency.ttft_sigma", self.latency.ttft_sigma),
            ("latency.per_token_ms", self.latency.per_token_ms),
        ] {
            if let Err(m) = check_nonneg(v) {
                return invalid(format!("{name}: {m}"));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let probs = [
                rule.refusal,
                rule.correct,
                rule.json_invalid,
                rule.json_schema_break,
                rule.json_fenced,
                rule.error_5xx,
                rule.rate_limit,
                rule.timeout,
                rule.malformed,
                rule.disconnect,
            ];
            for v in probs.into_iter().flatten() {
                if let Err(m) = check_prob(v) {
                    return invalid(format!("rule {}: {m}", i + 1));
                }
            }
        }
        for (i, a) in self.answers.iter().enumerate() {
            if a.text.is_none() && a.json.is_none() {
                return invalid(format!("answer {}: needs `text` or `json`", i + 1));
            }
        }
        Ok(())
    }

    /// Whether `name` is served (`name:latest` also matches `name`, as in Ollama).
    pub fn serves(&self, name: &str) -> bool {
        self.models
            .iter()
            .any(|m| m == name || name.strip_suffix(":latest") == Some(m.as_str()))
    }

    /// Rates and length parameters for one prompt after applying every matching rule.
    pub fn effective(&self, prompt: &str, prompt_lower: &str) -> Effective {
        let mut e = Effective {
            rates: self.rates.clone(),
            median_tokens: self.length.median_tokens,
            sigma: self.length.sigma,
        };
        for rule in &self.rules {
            if !rule.matcher.matches(prompt, prompt_lower) {
                continue;
            }
            let r = &mut e.rates;
            let set = |slot: &mut f64, v: Option<f64>| {
                if let Some(v) = v {
                    *slot = v;
                }
            };
            set(&mut e.median_tokens, rule.median_tokens);
            set(&mut e.sigma, rule.sigma);
            set(&mut r.refusal, rule.refusal);
            set(&mut r.correct, rule.correct);
            set(&mut r.json_invalid, rule.json_invalid);
            set(&mut r.json_schema_break, rule.json_schema_break);
            set(&mut r.json_fenced, rule.json_fenced);
            set(&mut r.error_5xx, rule.error_5xx);
            set(&mut r.rate_limit, rule.rate_limit);
            set(&mut r.timeout, rule.timeout);
            set(&mut r.malformed, rule.malformed);
            set(&mut r.disconnect, rule.disconnect);
        }
        e
    }

    /// The first `[[answer]]` matching the prompt.
    pub fn answer_for(&self, prompt: &str, prompt_lower: &str) -> Option<&Answer> {
        self.answers
            .iter()
            .find(|a| a.matcher.matches(prompt, prompt_lower))
    }
}

fn rate_fields(r: &Rates) -> [(&'static str, f64); 10] {
    [
        ("refusal", r.refusal),
        ("correct", r.correct),
        ("json_invalid", r.json_invalid),
        ("json_schema_break", r.json_schema_break),
        ("json_fenced", r.json_fenced),
        ("error_5xx", r.error_5xx),
        ("rate_limit", r.rate_limit),
        ("timeout", r.timeout),
        ("malformed", r.malformed),
        ("disconnect", r.disconnect),
    ]
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn check_prob(v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("expected a probability between 0 and 1, found {v}"))
    }
}

fn check_nonneg(v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("expected a finite number >= 0, found {v}"))
    }
}

fn check_positive(v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("expected a finite number > 0, found {v}"))
    }
}

fn check_models(models: &[String]) -> Result<(), String> {
    if models.is_empty() {
        return Err("`models` must name at least one model".into());
    }
    for (i, m) in models.iter().enumerate() {
        if m.trim().is_empty() {
            return Err("model names must not be empty".into());
        }
        if models[..i].contains(m) {
            return Err(format!("model `{m}` is listed twice in `models`"));
        }
    }
    Ok(())
}

/// Reads a number given as a TOML integer or float.
fn de_number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
    }
    match Num::deserialize(d)? {
        Num::I(i) => Ok(i as f64),
        Num::F(f) => Ok(f),
    }
}

fn checked<'de, D: Deserializer<'de>>(
    d: D,
    check: fn(f64) -> Result<(), String>,
) -> Result<f64, D::Error> {
    let v = de_number(d)?;
    check(v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

fn de_prob<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    checked(d, check_prob)
}
fn de_nonneg<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    checked(d, check_nonneg)
}
fn de_positive<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    checked(d, check_positive)
}
fn de_opt_prob<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    checked(d, check_prob).map(Some)
}
fn de_opt_nonneg<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    checked(d, check_nonneg).map(Some)
}
fn de_opt_positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    checked(d, check_positive).map(Some)
}

fn de_models<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let models = Vec::<String>::deserialize(d)?;
    check_models(&models).map_err(serde::de::Error::custom)?;
    Ok(models)
}

fn de_opt_regex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
    let s = String::deserialize(d)?;
    Regex::new(&s)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid regex: {e}")))
}

fn ser_regex<S: Serializer>(r: &Regex, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

#[cfg(test)]
mod tests;
