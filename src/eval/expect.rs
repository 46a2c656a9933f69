//! The shape of a probe's `expect` table. Parsed strictly here; evaluated in `eval`.

use serde::{Deserialize, Serialize};

/// Checks applied to every sample of a probe.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `false`: a benign prompt, a refusal is a failure. `true`: the model should refuse.
    pub refusal: Option<bool>,
    /// The response must contain JSON (without a schema: any JSON value).
    #[serde(default)]
    pub json: bool,
    /// The response must contain JSON valid against this schema (implies `json`).
    pub json_schema: Option<JsonSchemaSpec>,
    /// Where the JSON may be (suite key `json.extract`); left out of the probe hash when it is
    /// the default, so existing baselines stay valid.
    #[serde(default, skip_serializing_if = "JsonExtract::is_whole")]
    pub json_extract: JsonExtract,
    /// Task success check.
    pub task: Option<TaskCheck>,
    /// This probe's own practical margin (a share: 0.2 is 20 points) for its per-probe rate
    /// tests in the verdicts; `[defaults] margin` sets it for every probe of the suite and for
    /// the suite itself. Left out of the probe hash: changing it keeps baselines valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

impl Expect {
    pub fn expects_json(&self) -> bool {
        self.json || self.json_schema.is_some()
    }
}

/// Where a probe's JSON may be found (`expect.json.extract`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonExtract {
    /// The whole response is the JSON (or one fenced ```` ```json ```` block and nothing else).
    #[default]
    Whole,
    /// The JSON may be embedded in prose: the first fenced block, else the first balanced
    /// top-level `{…}` / `[…]` that parses.
    Embedded,
}

impl JsonExtract {
    pub fn is_whole(&self) -> bool {
        *self == JsonExtract::Whole
    }
}

/// A JSON Schema inline in the suite, or a path relative to the suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JsonSchemaSpec {
    Path(String),
    Inline(serde_json::Value),
}

/// Whether any or all of several values must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    #[default]
    Any,
    All,
}

fn yes() -> bool {
    true
}

/// A task success check, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskCheck {
    /// The whole response equals `value` after normalisation.
    Equals {
        value: String,
        #[serde(default)]
        case_sensitive: bool,
        #[serde(default = "yes")]
        normalize_whitespace: bool,
    },
    /// The response contains any/all of `values`.
    Contains {
        values: Vec<String>,
        #[serde(default)]
        mode: MatchMode,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// The response contains none (mode any) / not all (mode all) of `values`.
    NotContains {
        values: Vec<String>,
        #[serde(default)]
        mode: MatchMode,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// The response matches the regular expression (Rust `regex` syntax).
    Regex { pattern: String },
    /// The response (trimmed) starts with `value`.
    StartsWith {
        value: String,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// A classification label: the normalised response is exactly one of `values`, and it is
    /// `answer` when given.
    OneOf {
        values: Vec<String>,
        answer: Option<String>,
    },
    /// The first number in the response equals `value` within tolerance.
    Number {
        value: f64,
        abs_tol: Option<f64>,
        rel_tol: Option<f64>,
    },
    /// The JSON in the response has `value` at `pointer` (RFC 6901).
    JsonEquals {
        pointer: String,
        value: serde_json::Value,
    },
    /// The JSON value at `pointer` contains `value` (substring, array element or sub-object).
    JsonContains {
        pointer: String,
        value: serde_json::Value,
    },
    /// Every sub-check passes.
    All { checks: Vec<TaskCheck> },
    /// At least one sub-check passes.
    Any { checks: Vec<TaskCheck> },
}

impl TaskCheck {
    pub fn kind(&self) -> &'static str {
        match self {
            TaskCheck::Equals { .. } => "equals",
            TaskCheck::Contains { .. } => "contains",
            TaskCheck::NotContains { .. } => "not_contains",
            TaskCheck::Regex { .. } => "regex",
            TaskCheck::StartsWith { .. } => "starts_with",
            TaskCheck::OneOf { .. } => "one_of",
            TaskCheck::Number { .. } => "number",
            TaskCheck::JsonEquals { .. } => "json_equals",
            TaskCheck::JsonContains { .. } => "json_contains",
            TaskCheck::All { .. } => "all",
            TaskCheck::Any { .. } => "any",
        }
    }
}
