//! Probe suites: the prompts modelwatch replays, their generation parameters and their checks.
//!
//! `probe` owns the data model and the loading of `probes/*.toml` (see `load`), which compiles
//! every probe's checks once (see `checks`); the check language and its meaning live in `eval`.

mod checks;
pub mod load;
mod params;

pub use crate::diag::Location;
pub use crate::eval::expect::{Expect, JsonExtract, JsonSchemaSpec, MatchMode, TaskCheck};
pub use checks::{SuiteCheckError, compile_suite};
pub(crate) use params::{GEN_PARAM_KEYS, read_gen_params};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Generation parameters. Unset fields fall back to the suite defaults, then the target's,
/// then the server's own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenParams {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<u64>,
    pub stop: Option<Vec<String>>,
}

impl GenParams {
    /// `self` with every unset field taken from `fallback`.
    pub fn or(&self, fallback: &GenParams) -> GenParams {
        GenParams {
            temperature: self.temperature.or(fallback.temperature),
            top_p: self.top_p.or(fallback.top_p),
            max_tokens: self.max_tokens.or(fallback.max_tokens),
            seed: self.seed.or(fallback.seed),
            stop: self.stop.clone().or_else(|| fallback.stop.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What is sent: a single prompt (a user turn in chat mode, the raw text in completion mode) or
/// a list of chat messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeInput {
    Prompt(String),
    Messages(Vec<Message>),
}

impl ProbeInput {
    /// The chat messages for this input (a prompt becomes one user turn).
    pub fn messages(&self) -> Vec<Message> {
        match self {
            ProbeInput::Prompt(p) => vec![Message {
                role: Role::User,
                content: p.clone(),
            }],
            ProbeInput::Messages(m) => m.clone(),
        }
    }

    /// Plain text for completion-style endpoints: the prompt, or the turns joined by newlines.
    pub fn text(&self) -> String {
        match self {
            ProbeInput::Prompt(p) => p.clone(),
            ProbeInput::Messages(m) => m
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One probe, with parameters already resolved against the suite defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub id: String,
    pub suite: String,
    pub description: Option<String>,
    pub input: ProbeInput,
    pub params: GenParams,
    /// Samples per round.
    pub samples: u32,
    pub tags: Vec<String>,
    pub expect: Expect,
    /// Where the probe's `[[probe]]` table starts.
    pub location: Location,
    /// Content hash (hex sha256 of input, resolved parameters and checks): a baseline only
    /// compares samples of a probe whose hash is unchanged.
    pub hash: String,
}

/// A file of probes.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub defaults: GenParams,
    pub samples: u32,
    pub probes: Vec<Probe>,
    /// Hash over the probe hashes in order.
    pub hash: String,
}
