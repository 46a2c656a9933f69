//! Model server clients behind one trait, [`ModelClient`]: Ollama's native API and the
//! OpenAI-compatible API (vLLM, llama.cpp server, TGI, LM Studio, OpenAI itself).
//!
//! Clients turn every failure into a classified [`SampleError`]; they never judge quality.
//!
//! Build one client per target with [`build_client`] from a [`ClientConfig`]; `http` holds the
//! transport both clients share (timeouts, retries, size cap, classification).

pub mod gguf;
pub mod http;
pub mod license;
pub mod ollama;
pub mod openai;
pub(crate) mod redact;
pub mod tls;
pub mod trace;

pub use http::{CancelSignal, CancelTrigger};

use crate::probe::{GenParams, ProbeInput};
use crate::sample::{Completion, SampleError};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub input: ProbeInput,
    pub params: GenParams,
    /// Stream the response (needed for time to first token).
    pub stream: bool,
}

/// What is actually being served. A change of [`Fingerprint::id`] between rounds is a swap.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `ollama` or `openai`.
    pub provider: String,
    /// The model name as configured.
    pub model: String,
    /// The strongest identity the server offers (Ollama digest, llama.cpp model path + type,
    /// vLLM root), when it offers one.
    pub digest: Option<String>,
    /// Everything else read from the server that identifies the model (family, quantization,
    /// template hash, context size, server version, …). Sorted for a stable hash.
    pub details: BTreeMap<String, String>,
}

impl Fingerprint {
    /// Short stable identity: the first 16 hex digits of sha256 over provider, model, digest and
    /// details. Facts that change on every call (creation timestamps, slot counts) are left out
    /// by the clients; the server version and build are kept, because a server upgrade can change
    /// outputs (sampling, templates, kernels) and is therefore reported as a swap.
    ///
    /// The server's published generation defaults (`details` keys under [`CONFIG_PREFIX`]) are
    /// not part of it: they make the [`Fingerprint::config_digest`], so a server restarted
    /// with other sampling defaults keeps its model identity and shows a configuration change.
    /// The license evidence (keys under [`license::LICENSE_PREFIX`]) is not part of it either:
    /// a change of terms is reported as `license_changed`, not as a swap.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.provider.as_bytes());
        h.update([0]);
        h.update(self.model.as_bytes());
        h.update([0]);
        h.update(self.digest.as_deref().unwrap_or("").as_bytes());
        for (k, v) in self.details.iter().filter(|(k, _)| {
            !k.starts_with(CONFIG_PREFIX) && !k.starts_with(license::LICENSE_PREFIX)
        }) {
            h.update([0]);
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        crate::util::hex(&h.finalize()[..8])
    }

    /// The generation defaults the server publishes (llama.cpp `/props`
    /// `default_generation_settings`, Ollama `/api/show` `parameters`), prefix removed.
    pub fn config(&self) -> BTreeMap<&str, &str> {
        self.details
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(CONFIG_PREFIX)?, v.as_str())))
            .collect()
    }

    /// Short stable digest of [`Fingerprint::config`] (16 hex digits of sha256), or `None`
    /// when the server publishes no generation defaults.
    pub fn config_digest(&self) -> Option<String> {
        use sha2::{Digest, Sha256};
        let config = self.config();
        if config.is_empty() {
            return None;
        }
        let mut h = Sha256::new();
        for (k, v) in config {
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        Some(crate::util::hex(&h.finalize()[..8]))
    }
}

/// Prefix of the [`Fingerprint::details`] keys that hold the server's published generation
/// defaults (sampling settings, per-slot context): the configuration, not the model.
pub const CONFIG_PREFIX: &str = "config.";

/// At most this many configuration entries are kept from one server answer, each value cut to
/// [`CONFIG_VALUE_CHARS`]: the answer is the server's to shape, the fingerprint stays small.
pub(crate) const CONFIG_ENTRIES: usize = 128;
pub(crate) const CONFIG_VALUE_CHARS: usize = 256;

/// `text` with the secrets of the target `cfg` describes (API key, header values, URL
/// password) replaced by `[redacted]`: for what a command prints from a server's answer
/// without going through a client (`doctor`'s model lists and page titles).
pub fn redact_secrets(cfg: &ClientConfig, text: &str) -> String {
    redact::Redactor::for_config(cfg).apply(text)
}

/// A JSON string or number from a server's metadata as text; empty strings count as absent.
pub(crate) fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Adds one configuration entry under [`CONFIG_PREFIX`], bounded as above.
pub(crate) fn insert_config(details: &mut BTreeMap<String, String>, key: &str, value: String) {
    let kept = details
        .keys()
        .filter(|k| k.starts_with(CONFIG_PREFIX))
        .count();
    if kept >= CONFIG_ENTRIES || key.is_empty() || key.len() > 64 {
        return;
    }
    let value: String = value.chars().take(CONFIG_VALUE_CHARS).collect();
    details.insert(format!("{CONFIG_PREFIX}{key}"), value);
}

/// A client for one target's model server.
///
/// Implementations: [`ollama::OllamaClient`], [`openai::OpenAiClient`]; tests may use fakes.
pub trait ModelClient: Send + Sync {
    /// Generates one response. Retries, timeouts and size caps are the client's job; the error
    /// says which infrastructure failure ended it.
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>>;

    /// Reads what the server is serving; cheap enough to call every round.
    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>>;
}

/// Which API family the target's server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Ollama's native API (`/api/chat`, `/api/generate`, `/api/tags`, …).
    #[default]
    Ollama,
    /// The OpenAI-compatible API (`/v1/chat/completions`, `/v1/completions`, `/v1/models`).
    OpenAi,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Ollama => "ollama",
            ProviderKind::OpenAi => "openai",
        }
    }
}

/// Chat (messages through the server's chat template) or plain text completion (for base
/// models: Ollama `/api/generate` with `raw`, OpenAI-compatible `/v1/completions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    #[default]
    Chat,
    Completion,
}

/// Everything a client needs to talk to one target's model server.
///
/// Timeouts apply per attempt: `connect_timeout` to open the connection (DNS included),
/// `first_byte_timeout` until the response headers arrive, `total_timeout` until the whole body
/// has been read. Retries (`retries` extra attempts) happen only for connection failures,
/// timeouts before the headers, 429 and 5xx, with full-jitter exponential backoff drawn from a
/// [`crate::rng::Rng`] seeded by `retry_seed` and a per-client request counter.
#[derive(Clone)]
pub struct ClientConfig {
    pub kind: ProviderKind,
    pub api: Api,
    /// Server root (`http://127.0.0.1:11434`), or for OpenAI-compatible servers optionally ending
    /// in `/v1` (`https://api.openai.com/v1`); a path prefix of a reverse proxy is kept.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …`; never appears in errors or logs.
    pub api_key: Option<String>,
    /// Extra request headers. Their values are treated as secrets in error messages.
    pub headers: Vec<(String, String)>,
    /// Whether the target streams. A request streams only when both this and
    /// [`CompletionRequest::stream`] say so, so a target can turn streaming off for a proxy that
    /// breaks it.
    pub stream: bool,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub total_timeout: Duration,
    pub retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The body (streamed or not) is read chunk by chunk and abandoned past this many bytes.
    pub max_response_bytes: usize,
    pub retry_seed: u64,
    /// When triggered, in-flight requests and backoff sleeps end with `ErrorKind::Cancelled`.
    pub cancel: Option<CancelSignal>,
    /// The roots the server's certificate is checked against (`tls_roots`, `ca_file`).
    pub tls: tls::Trust,
}

/// Prints everything except secrets: the API key and header values show as `[redacted]`.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, _)| (n.as_str(), "[redacted]"))
            .collect();
        f.debug_struct("ClientConfig")
            .field("kind", &self.kind)
            .field("api", &self.api)
            .field("base_url", &http::display_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("headers", &headers)
            .field("stream", &self.stream)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("retries", &self.retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retry_seed", &self.retry_seed)
            .field("cancel", &self.cancel.is_some())
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            kind: ProviderKind::Ollama,
            api: Api::Chat,
            base_url: "http://127.0.0.1:11434".into(),
            model: String::new(),
            api_key: None,
            headers: Vec::new(),
            stream: true,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(120),
            retries: 2,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_response_bytes: 4 * 1024 * 1024,
            retry_seed: 0,
            cancel: None,
            tls: tls::Trust::default(),
        }
    }
}

/// Why a client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("base_url is not a usable URL: {reason}; expected e.g. http://127.0.0.1:11434")]
    BaseUrl { reason: String },
    #[error("model is empty; set the target's model to the name the server serves")]
    EmptyModel,
    #[error("header {name:?} is invalid: {reason}")]
    Header { name: String, reason: String },
    #[error("api_key cannot be sent as an HTTP header (it contains control characters)")]
    ApiKey,
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("could not build the HTTP client: {0}")]
    Http(String),
    #[error("the TLS trust settings cannot be used: {0}; check the target's ca_file")]
    Tls(String),
}

/// Builds the client for one target. Each client owns one pooled HTTP connection pool, so build
/// it once per target and share the `Arc`.
pub fn build_client(cfg: ClientConfig) -> Result<Arc<dyn ModelClient>, ProviderError> {
    let client: Arc<dyn ModelClient> = match cfg.kind {
        ProviderKind::Ollama => Arc::new(ollama::OllamaClient::new(cfg.clone())?),
        ProviderKind::OpenAi => Arc::new(openai::OpenAiClient::new(cfg.clone())?),
    };
    // A server may echo a secret even in a successful answer: nothing it says is kept as is.
    Ok(redact::Redacting::wrap(client, &cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_id_is_stable_and_sensitive() {
        let mut a = Fingerprint {
            provider: "ollama".into(),
            model: "m".into(),
            digest: Some("abc".into()),
            details: BTreeMap::new(),
        };
        let id = a.id();
        assert_eq!(id.len(), 16);
        assert_eq!(id, a.clone().id());
        a.details.insert("quantization".into(), "Q4_K_M".into());
        assert_ne!(id, a.id());
    }

    #[test]
    fn configuration_entries_make_the_config_digest_not_the_id() {
        let mut a = Fingerprint {
            provider: "openai".into(),
            model: "m".into(),
            digest: Some("model.gguf".into()),
            details: BTreeMap::new(),
        };
        let id = a.id();
        assert_eq!(a.config_digest(), None, "nothing published, no digest");
        insert_config(&mut a.details, "repeat_penalty", "1.0".into());
        insert_config(&mut a.details, "top_k", "40".into());
        let config = a.config_digest().expect("a digest");
        assert_eq!(config.len(), 16);
        assert_eq!(a.id(), id, "sampling defaults are not the model");
        assert_eq!(a.config()["top_k"], "40");
        insert_config(&mut a.details, "repeat_penalty", "1.5".into());
        assert_ne!(a.config_digest().unwrap(), config);
        assert_eq!(a.id(), id);
        // Bounded: long values are cut, entries beyond the limit dropped.
        insert_config(&mut a.details, "long", "x".repeat(10_000));
        assert_eq!(a.config()["long"].len(), CONFIG_VALUE_CHARS);
        for i in 0..2 * CONFIG_ENTRIES {
            insert_config(&mut a.details, &format!("k{i}"), "v".into());
        }
        assert_eq!(a.config().len(), CONFIG_ENTRIES);
    }
}
